/* config.h — kasa's configuration: a .env-style file (KEY=VALUE, '#' comments, optional quotes),
 * every key overridable by the environment (the environment wins). Checked once at start;
 * config_load() refuses a configuration with a clear message per problem. Secrets
 * (COBO_API_SECRET, MT5_PASSWORD, TELEGRAM_BOT_TOKEN, KASA_MONGO_URI's password) are never printed:
 * config_print() shows them as "(set)" / "(unset)". */
#ifndef KASA_SCHEMA_CONFIG_H
#define KASA_SCHEMA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "schema/money.h"
#include "schema/netaddr.h"
#include "schema/withdrawal.h"

#define CONFIG_MAX_TOKENS 64   /* money rules (token x account currency) */
#define CONFIG_MAX_CHAINS 8
#define CONFIG_MAX_TG_APPROVERS 32   /* KASA_TELEGRAM_APPROVERS entries */
#define CONFIG_DEFAULT_MAX_DEPOSITS 200000   /* KASA_MAX_DEPOSITS when unset */
#define CONFIG_DEFAULT_CLAIM_LEASE_MS 30000   /* KASA_CLAIM_LEASE_MS when unset */
#define CONFIG_DEFAULT_MT5_SETTLE_S 60       /* KASA_MT5_SETTLE_S when unset (see README, exactly once) */
#define CONFIG_DEFAULT_COBO_TIMEOUT_MS 10000 /* KASA_COBO_TIMEOUT_MS when unset */
#define CONFIG_DEFAULT_MT5_TIMEOUT_MS 10000  /* KASA_MT5_TIMEOUT_MS when unset */
#define CONFIG_DEFAULT_SNAPSHOT_EVERY_RECORDS 100000 /* KASA_SNAPSHOT_EVERY_RECORDS when unset */
#define CONFIG_DEFAULT_SNAPSHOT_EVERY_S 3600         /* KASA_SNAPSHOT_EVERY_S when unset */
#define CONFIG_MAX_MAX_DEPOSITS 100000000    /* the largest KASA_MAX_DEPOSITS accepted */

#define CONFIG_DEFAULT_PENDING_AGE_S 1800     /* KASA_PENDING_AGE_S when unset */
#define CONFIG_DEFAULT_PENDING_POLL_S 300     /* KASA_PENDING_POLL_S when unset */
#define CONFIG_DEFAULT_COBO_CONFIRM_WAIT_S 600 /* KASA_COBO_CONFIRM_WAIT_S when unset */

#define CONFIG_DEFAULT_RATE_URL "https://api.binance.com"  /* KASA_RATE_URL when unset */
#define CONFIG_DEFAULT_RATE_MAX_AGE_S 60   /* KASA_RATE_MAX_AGE_S when unset (see README, live rates) */
#define CONFIG_DEFAULT_RATE_REFRESH_S 10   /* KASA_RATE_REFRESH_S when unset */

/* One money rule: how a token becomes money on accounts of one currency.
 *   KASA_TOKEN_<TOKEN_ID>__<CURRENCY>=rate:fee:minimum   e.g. KASA_TOKEN_TRON_USDT__EUR=0.92:0.46:1
 *   KASA_TOKEN_<TOKEN_ID>=rate:fee:minimum               the USD rule (same as __USD)
 * rate may be live/SYMBOL or live/SYMBOL*N instead of a number (KASA_TOKEN_TRON=live/TRXUSDT:0:10,
 * KASA_TOKEN_TRON__USC=live/TRXUSDT*100:0:1000): the price of SYMBOL at the price source
 * (KASA_RATE_URL), times the whole number N (1..1000000; 100 turns dollars into cents), fetched by
 * actors/rates.h and never older than KASA_RATE_MAX_AGE_S when a deposit is locked.
 * Two underscores part the token from the currency: token ids hold single underscores (TRON_USDT),
 * so KASA_TOKEN_TRON_USDT_EUR could not tell token TRON_USDT in EUR from a token TRON_USDT_EUR.
 * rate = account currency per whole token, fee = flat fee in account currency, minimum = token
 * amount. The currency is the MT5 group's Currency (upper case; "USC" for cent accounts). */
typedef struct {
    char token_id[40];
    char currency[16];   /* "" (a config_t not made by config_load) is USD */
    money_atto_t rate;
    money_atto_t fee;
    money_atto_t minimum;
    int live;            /* rate is live/SYMBOL[*N]: rate above is unused */
    char symbol[24];     /* live: the price source's symbol, "TRXUSDT" */
    uint32_t factor;     /* live: N, 1 unless given */
} config_token_t;

typedef struct {
    char listen[64];               /* KASA_LISTEN, default 127.0.0.1:8000 */
    char webhook_listen[64];       /* KASA_WEBHOOK_LISTEN: Cobo's webhooks only; default KASA_LISTEN's host, next port */
    char journal_dir[256];         /* KASA_JOURNAL_DIR (required) */
    char monitor[128];             /* KASA_MONITOR, default tcp://127.0.0.1:5560 */
    char control[300];             /* KASA_CONTROL, default ipc://<journal_dir>/control.sock */
    char static_dir[256];          /* KASA_STATIC_DIR, default web/static */
    char public_url[256];          /* KASA_PUBLIC_URL: the panel's public URL; optional */
    int cookie_secure;             /* KASA_COOKIE_SECURE: on (default) | off (plain-http local runs only) */
    int investor_password_login;   /* KASA_INVESTOR_PASSWORD_LOGIN: off (default) | on — accept MT5
                                      investor (read-only) passwords at the panel's login */
    netlist_t trusted_proxies;     /* KASA_TRUSTED_PROXIES: addresses/CIDRs whose X-Forwarded-For /
                                      X-Real-IP are believed; default none */
    int header_timeout_ms;         /* KASA_HEADER_TIMEOUT_MS: a request's whole head must arrive within
                                      it, default 5000 */
    int max_connections;           /* KASA_MAX_CONNECTIONS: open HTTP connections, default 2048 (lowered
                                      at start to what RLIMIT_NOFILE allows) */
    int max_connections_per_ip;    /* KASA_MAX_CONNECTIONS_PER_IP: per client address (IPv6: per /64),
                                      trusted proxies exempt, default 64 */
    size_t max_body;               /* KASA_MAX_BODY bytes, default 65536 */
    int http_threads;              /* KASA_HTTP_THREADS: HTTP worker threads, default 16 */
    size_t max_deposits;           /* KASA_MAX_DEPOSITS: unfinished deposits (and as many address
                                      links) held in memory, 1..CONFIG_MAX_MAX_DEPOSITS, default
                                      200000; beyond it a new deposit gets 503. Finished deposits
                                      (NOTIFIED, REJECTED) do not count: each snapshot moves them to
                                      the index of finished deposits, so lifetime deposits are bounded
                                      by the disk alone. 0 (a config_t not made by config_load) means
                                      the default. */
    uint64_t snapshot_every_records;  /* KASA_SNAPSHOT_EVERY_RECORDS: a snapshot once this many records
                                         followed the last one (default 100000; 0: not by count) */
    int snapshot_every_s;          /* KASA_SNAPSHOT_EVERY_S: a snapshot once this many seconds passed
                                      since the last one and records followed it (default 3600; 0: not
                                      by time). Both 0 (a config_t not made by config_load): none. */

    char cobo_api_url[256];        /* COBO_API_URL, default https://api.cobo.com/v2 (dev: api.dev.cobo.com) */
    char cobo_api_key[65];         /* COBO_API_KEY: 64 hex, the Ed25519 public key */
    char cobo_api_secret[65];      /* COBO_API_SECRET: 64 hex, the Ed25519 seed (secret) */
    char cobo_webhook_pubkey[65];  /* COBO_WEBHOOK_PUBKEY: default Cobo's production key; COBO_ENV=dev the dev key */
    char cobo_env[8];              /* COBO_ENV: prod (default) | dev */
    char cobo_wallet_id[80];       /* COBO_WALLET_ID: the wallet that makes deposit addresses */
    char chains[CONFIG_MAX_CHAINS][24]; /* KASA_CHAINS, comma list of token ids offered, default TRON_USDT,ETH_USDT,TRON */
    int chain_count;

    char mt5_url[256];             /* MT5_URL: https://host:port (http only for a local simulator) */
    uint64_t mt5_login;            /* MT5_LOGIN: the manager account */
    char mt5_password[128];        /* MT5_PASSWORD (secret) */
    char mt5_ca_file[256];         /* MT5_CA_FILE: optional CA for a self-signed access server */
    int mt5_settle_s;              /* KASA_MT5_SETTLE_S: after an ambiguous balance call, no resend before this
                                      many seconds (1..86400, default 60; 0 in a config_t: the default) */
    int mt5_timeout_ms;            /* KASA_MT5_TIMEOUT_MS: bound of one MT5 request (100..120000, default 10000;
                                      0 in a config_t: the default; read it with config_mt5_timeout_ms) */
    int cobo_timeout_ms;           /* KASA_COBO_TIMEOUT_MS: bound of one Cobo API request (100..120000, default
                                      10000; 0 in a config_t: the default; read it with config_cobo_timeout_ms) */

    char telegram_api_url[256];    /* TELEGRAM_API_URL, default https://api.telegram.org */
    char telegram_bot_token[128];  /* TELEGRAM_BOT_TOKEN (secret) */
    char telegram_chat_id[64];     /* TELEGRAM_CHAT_ID */
    char notice_lang[4];           /* KASA_NOTICE_LANG: tr (default) | en — the language of every notice */
    struct {
        int64_t user_id;           /* a Telegram user id ... */
        char admin[64];            /* ... whose button presses act as this admin account */
    } telegram_approvers[CONFIG_MAX_TG_APPROVERS]; /* KASA_TELEGRAM_APPROVERS=ID:NAME,ID:NAME; none: no
                                      buttons on notices and no polling for presses */
    int telegram_approver_count;
    int telegram_poll_s;           /* KASA_TELEGRAM_POLL_S: getUpdates long-poll timeout, 1..50, default 25 */

    config_token_t tokens[CONFIG_MAX_TOKENS]; /* KASA_TOKEN_<ID>[__<CURRENCY>]=rate:fee:minimum */
    int token_count;
    money_atto_t auto_credit_limit;/* KASA_AUTO_CREDIT_LIMIT: token amount above which a deposit is HELD;
                                      0 (the default, or "0"/"none") = no limit */
    money_atto_t dual_approval_limit;/* KASA_DUAL_APPROVAL_LIMIT: token amount above which a HELD deposit needs
                                      two different approvers (one above KASA_AUTO_CREDIT_LIMIT); 0 = never */
    int crediters;                 /* KASA_CREDITERS: crediter workers, default 2 */
    int lockers;                   /* KASA_LOCKERS: locker actors, default 4 (1..64) */
    int notifiers;                 /* KASA_NOTIFIERS: notifier actors, default 2 (1..64) */
    int pending_age_s;             /* KASA_PENDING_AGE_S: a PENDING deposit without news this long is asked
                                      about at Cobo's API, default 1800 (1..604800); 0 = the default */
    int pending_poll_s;            /* KASA_PENDING_POLL_S: then asked again this often until final, default
                                      300 (1..86400); 0 = the default */
    int cobo_confirm_wait_s;       /* KASA_COBO_CONFIRM_WAIT_S: how long a Completed webhook waits for Cobo's
                                      API to say Completed too (retried with backoff), then HELD; default
                                      600 (1..86400); 0 = the default */

    char mongo_uri[512];           /* KASA_MONGO_URI (secret: may hold a password): "" = no MongoDB */
    char mongo_db[64];             /* KASA_MONGO_DB, default kasa */
    char node_id[64];              /* KASA_NODE_ID: this node's name in MongoDB, default the host name */
    int mongo_batch;               /* KASA_MONGO_BATCH: journal records per projection batch, default 512 (1..4096) */
    int cluster;                   /* KASA_CLUSTER: on = one of several nodes agreeing through MongoDB (needs
                                      KASA_MONGO_URI); off (default) = a single node */
    int claim_lease_ms;            /* KASA_CLAIM_LEASE_MS: cluster mode, how long a node's claim on a deposit lasts
                                      unrenewed, default 30000 (300..600000; README "Cluster" has the margins) */
    /* operations */
    int catchup_interval_s;        /* KASA_CATCHUP_INTERVAL: seconds between missed-webhook catch-up passes,
                                      default 60; 0 turns the schedule off */
    int catchup_lookback_s;        /* KASA_CATCHUP_LOOKBACK: seconds the first pass after a start looks back,
                                      default 259200 (3 days) */
    char rate_url[256];            /* KASA_RATE_URL: the price source of live rules, Binance's spot API shape
                                      (GET {url}/api/v3/ticker/price?symbol=S), default https://api.binance.com */
    int rate_max_age_s;            /* KASA_RATE_MAX_AGE_S: a live rate older than this locks nothing (HELD
                                      "no fresh rate"), default 60 (5..3600); 0 in a config_t: the default */
    int rate_refresh_s;            /* KASA_RATE_REFRESH_S: live rates fetched this often, default 10
                                      (1..3600, below KASA_RATE_MAX_AGE_S); 0 in a config_t: the default */
    char metrics_listen[64];       /* KASA_METRICS_LISTEN: /metrics, /healthz, /readyz, default 127.0.0.1:9100;
                                      "off" turns it off */
    /* withdrawals (schema/withdrawal.h) */
    char withdraw_rules_text[1024];/* KASA_WITHDRAW_RULES as given: TOKEN[__CUR]=rate:fee:minimum:maximum:daily,... */
    withdrawal_rules_t withdraw;   /* ... parsed; none: no withdrawals offered */
    money_atto_t withdraw_auto_limit;/* KASA_WITHDRAW_AUTO_APPROVE_LIMIT: account-currency amount at or under which a
                                      withdrawal needs no approver; 0 (default, "none") = every one needs one */
    money_atto_t withdraw_dual_limit;/* KASA_WITHDRAW_DUAL_APPROVAL_LIMIT: above it two different approvers; 0 = never */
    int withdraw_poll_s;           /* KASA_WITHDRAW_POLL_S: a sent transfer is asked about at Cobo this often when no
                                      webhook settles it, default 60 (1..86400) */
    char cobo_withdraw_wallet_id[80]; /* COBO_WITHDRAW_WALLET_ID: the wallet transfers are paid from, default
                                      COBO_WALLET_ID */
    char cobo_withdraw_address[128]; /* COBO_WITHDRAW_ADDRESS: the paying address of an MPC wallet (Org-Controlled);
                                      "" = a custodial (Asset) wallet */
    char own_addresses[2048];      /* KASA_OWN_ADDRESSES: the broker's own sending addresses (hot wallets, the
                                      paying address, gas payers), comma-separated: coins from them into a
                                      deposit address are never a deposit (config_own_address) */
} config_t;

/* Loads path (may be NULL: environment only) over the defaults, then the environment over that.
 * Returns 0, or -1 after writing one line per problem into err (newline-separated). */
int config_load(config_t *cfg, const char *path, char *err, size_t errlen);

/* As config_load, with the file's text given as text[0..len) (name stands for the file in
 * messages): config_load reads the file whole and parses it here. */
#include <stddef.h>
int config_parse(config_t *cfg, const char *text, size_t len, const char *name, char *err, size_t errlen);

/* A rule of token_id (the first configured, in any currency), or NULL if that token is not accepted. */
const config_token_t *config_token(const config_t *cfg, const char *token_id);

/* The rule of token_id on accounts in currency (compared case-insensitively), or NULL if none. */
const config_token_t *config_rule(const config_t *cfg, const char *token_id, const char *currency);

/* The bound of one Cobo API request / one MT5 request in ms: the configured value, or the default when
 * the config_t leaves it 0 (a config_t built by hand). Every Cobo and MT5 client kasa runs uses them. */
long config_cobo_timeout_ms(const config_t *cfg);
long config_mt5_timeout_ms(const config_t *cfg);

/* Prints every key and its value (secrets as "(set)"/"(unset)") to out, one per line. */
#include <stdio.h>
void config_print(const config_t *cfg, FILE *out);

/* 0 if the file at path is private to its owner; 1 if group or others may read or write it (why
 * says so, with the mode and the fix: it holds secrets); -1 if it cannot be looked at. */
int config_file_private(const char *path, char *why, size_t whylen);

/* Wipes secrets from memory. */
void config_clear(config_t *cfg);

/* 1 if address is one of KASA_OWN_ADDRESSES (exact match), or the paying address COBO_WITHDRAW_ADDRESS. */
int config_own_address(const config_t *cfg, const char *address);

#endif
