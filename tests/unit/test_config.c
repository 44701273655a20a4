/* test_config.c — configuration: file syntax, environment overrides, defaults, every check,
 * and secrets never printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "actors/cobo_auth.h"
#include "tests/check.h"
#include "schema/config.h"

static char s_dir[128];
static char s_path[256];
static char s_api_key[65];
#define SEED "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988"

/* Every key that a test might set in the environment: cleared before each test. */
static const char *const s_env_keys[] = {
    "KASA_LISTEN", "KASA_WEBHOOK_LISTEN", "KASA_JOURNAL_DIR", "KASA_MONITOR", "KASA_CONTROL", "KASA_STATIC_DIR",
    "KASA_PUBLIC_URL", "KASA_MAX_BODY", "KASA_HTTP_THREADS", "KASA_MAX_DEPOSITS",
    "COBO_API_URL", "COBO_API_KEY", "COBO_API_SECRET",
    "COBO_WEBHOOK_PUBKEY", "COBO_ENV", "COBO_WALLET_ID", "KASA_CHAINS", "MT5_URL", "MT5_LOGIN",
    "MT5_PASSWORD", "MT5_CA_FILE", "MT5_DIGITS", "TELEGRAM_API_URL", "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID", "KASA_NOTICE_LANG", "KASA_TELEGRAM_APPROVERS", "KASA_TELEGRAM_POLL_S", "KASA_AUTO_CREDIT_LIMIT", "KASA_DUAL_APPROVAL_LIMIT", "KASA_CREDITERS", "KASA_LOCKERS", "KASA_NOTIFIERS", "KASA_TOKEN_TRON_USDT",
    "KASA_TOKEN_ETH_USDT", "KASA_TOKEN_TRON_USDT__EUR", "KASA_TOKEN_TRON_USDT__USD", "KASA_PENDING_AGE_S",
    "KASA_PENDING_POLL_S", "KASA_COBO_CONFIRM_WAIT_S",
    "KASA_CATCHUP_INTERVAL", "KASA_CATCHUP_LOOKBACK", "KASA_METRICS_LISTEN", "KASA_LOG_FORMAT",
    "KASA_MONGO_URI", "KASA_CLUSTER",
};

static void s_env_clear(void)
{
    for (size_t i = 0; i < sizeof s_env_keys / sizeof s_env_keys[0]; i++)
        unsetenv(s_env_keys[i]);
}

/* A complete, valid file, with extra text appended. */
static void s_write(const char *extra)
{
    FILE *f = fopen(s_path, "w");
    fprintf(f,
            "# kasa test configuration\n"
            "\n"
            "KASA_JOURNAL_DIR=/tmp/kasa-j\n"
            "COBO_API_URL=http://127.0.0.1:9001/v2\n"
            "COBO_API_KEY=%s\n"
            "COBO_API_SECRET=%s\n"
            "MT5_URL=https://mt5.example.com:443\n"
            "MT5_LOGIN=1001\n"
            "MT5_PASSWORD='pa ss#word'\n"
            "TELEGRAM_BOT_TOKEN=\"123:ABCsecretTOKEN\"\n"
            "TELEGRAM_CHAT_ID=-1001234567890\n"
            "%s",
            s_api_key, SEED, extra);
    fclose(f);
}

static int s_load(config_t *cfg, const char *extra, char *err, size_t errlen)
{
    s_write(extra);
    return config_load(cfg, s_path, err, errlen);
}

static void test_valid_file_loads_with_defaults(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_STR(cfg.listen, "127.0.0.1:8000");
    CHECK_EQ_STR(cfg.webhook_listen, "127.0.0.1:8001");   /* the next port: webhooks apart */
    CHECK_EQ_STR(cfg.journal_dir, "/tmp/kasa-j");
    CHECK_EQ_STR(cfg.monitor, "tcp://127.0.0.1:5560");
    CHECK_EQ_STR(cfg.control, "ipc:///tmp/kasa-j/control.sock");
    CHECK_EQ_INT(cfg.max_body, 65536);
    CHECK_EQ_INT(cfg.http_threads, 16);
    CHECK_EQ_STR(cfg.cobo_env, "prod");
    CHECK_EQ_STR(cfg.cobo_webhook_pubkey, "8d4a482641adb2a34b726f05827dba9a9653e5857469b8749052bf4458a86729");
    CHECK_EQ_STR(cfg.mt5_password, "pa ss#word");          /* single quotes kept the '#' */
    CHECK_EQ_STR(cfg.telegram_bot_token, "123:ABCsecretTOKEN");
    CHECK_EQ_INT(cfg.mt5_login, 1001);
    CHECK_EQ_INT(cfg.pending_age_s, 1800);
    CHECK_EQ_INT(cfg.pending_poll_s, 300);
    CHECK_EQ_INT(cfg.cobo_confirm_wait_s, 600);
    CHECK_EQ_INT(cfg.crediters, 2);
    CHECK_EQ_INT(cfg.lockers, 4);
    CHECK_EQ_INT(cfg.notifiers, 2);
    CHECK_EQ_INT(cfg.chain_count, 3);
    CHECK_EQ_STR(cfg.chains[0], "TRON_USDT");
    CHECK_EQ_STR(cfg.telegram_api_url, "https://api.telegram.org");
    CHECK(cfg.auto_credit_limit == 0);
    CHECK_EQ_INT(cfg.token_count, 0);
}

static void test_syntax_export_quotes_comments_trailing_spaces(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg,
                        "export KASA_LISTEN=0.0.0.0:9000   \n"
                        "   # an indented comment\n"
                        "KASA_STATIC_DIR=/srv/www # trailing comment\n"
                        "COBO_WALLET_ID = \"w-123\"  \n"
                        "KASA_CHAINS=TRON_USDT, ETH_USDT\n"
                        "PATH_LIKE_OTHER_TOOL=ignored\n",
                        err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_STR(cfg.listen, "0.0.0.0:9000");
    CHECK_EQ_STR(cfg.static_dir, "/srv/www");
    CHECK_EQ_STR(cfg.cobo_wallet_id, "w-123");
    CHECK_EQ_INT(cfg.chain_count, 2);
    CHECK_EQ_STR(cfg.chains[1], "ETH_USDT");
}

static void test_webhook_listener_is_given_or_the_next_port(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "KASA_LISTEN=0.0.0.0:9000\nKASA_WEBHOOK_LISTEN=127.0.0.1:7001\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.webhook_listen, "127.0.0.1:7001");
    CHECK_EQ_INT(s_load(&cfg, "KASA_LISTEN=[::1]:9000\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.webhook_listen, "[::1]:9001");
    CHECK_EQ_INT(s_load(&cfg, "KASA_LISTEN=127.0.0.1:0\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.webhook_listen, "127.0.0.1:0");   /* any free port, as the other */
}

static void test_environment_overrides_file(void)
{
    s_env_clear();
    setenv("KASA_LISTEN", "127.0.0.1:7777", 1);
    setenv("MT5_LOGIN", "2002", 1);
    setenv("KASA_TOKEN_TRON_USDT", "1:0.5:10", 1);
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "KASA_LISTEN=127.0.0.1:1\nKASA_TOKEN_TRON_USDT=2:0:1\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.listen, "127.0.0.1:7777");
    CHECK_EQ_INT(cfg.mt5_login, 2002);
    const config_token_t *t = config_token(&cfg, "TRON_USDT");
    CHECK(t != NULL);
    if (t) {
        CHECK(t->rate == (money_atto_t) 1000000000000000000ULL);
        CHECK(t->fee == (money_atto_t) 500000000000000000ULL);
        CHECK(t->minimum == (money_atto_t) 10 * 1000000000000000000ULL);
    }
    CHECK(config_token(&cfg, "ETH_USDT") == NULL);
    s_env_clear();
}

static void test_environment_alone_is_enough(void)
{
    s_env_clear();
    setenv("KASA_JOURNAL_DIR", "/tmp/j2", 1);
    setenv("COBO_API_URL", "https://api.cobo.com/v2", 1);
    setenv("COBO_API_KEY", s_api_key, 1);
    setenv("COBO_API_SECRET", SEED, 1);
    setenv("MT5_URL", "http://localhost:8443", 1);
    setenv("MT5_LOGIN", "5", 1);
    setenv("MT5_PASSWORD", "x", 1);
    setenv("TELEGRAM_BOT_TOKEN", "t", 1);
    setenv("TELEGRAM_CHAT_ID", "@kasa_ops", 1);
    setenv("COBO_ENV", "dev", 1);
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(config_load(&cfg, NULL, err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_STR(cfg.cobo_webhook_pubkey, "a04ea1d5fa8da71f1dcfccf972b9c4eba0a2d8aba1f6da26f49977b08a0d2718");
    CHECK_EQ_STR(cfg.mt5_url, "http://localhost:8443");
    CHECK_EQ_STR(cfg.telegram_chat_id, "@kasa_ops");
    s_env_clear();
}

static void test_tokens_and_limit_parse_exactly(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "KASA_TOKEN_ETH_USDT=0.999:1.25:0.000001\nKASA_AUTO_CREDIT_LIMIT=5000.5\n",
                        err, sizeof err), 0);
    const config_token_t *t = config_token(&cfg, "ETH_USDT");
    CHECK(t != NULL);
    if (t) {
        CHECK(t->rate == (money_atto_t) 999000000000000000ULL);
        CHECK(t->fee == (money_atto_t) 1250000000000000000ULL);
        CHECK(t->minimum == (money_atto_t) 1000000000000ULL);
    }
    CHECK(cfg.auto_credit_limit == (money_atto_t) 50005 * 100000000000000000ULL);
    CHECK(cfg.dual_approval_limit == 0);
    CHECK_EQ_INT(s_load(&cfg, "KASA_AUTO_CREDIT_LIMIT=100\nKASA_DUAL_APPROVAL_LIMIT=100\n", err, sizeof err), 0);
    CHECK(cfg.dual_approval_limit == (money_atto_t) 100 * 1000000000000000000ULL);
}

/* Each bad value produces a problem line naming its key, and the load fails. */
static void s_expect_problem(const char *extra, const char *needle)
{
    config_t cfg;
    char err[2048];
    int rc = s_load(&cfg, extra, err, sizeof err);
    if (rc != -1 || !strstr(err, needle))
        fprintf(stderr, "  for [%s] expected \"%s\", got rc=%d err=[%s]\n", extra, needle, rc, err);
    CHECK_EQ_INT(rc, -1);
    CHECK(strstr(err, needle) != NULL);
}

/* The same for a bad value given in the environment (which overrides the file's). */
static void s_expect_env_problem(const char *key, const char *value, const char *needle)
{
    setenv(key, value, 1);
    s_expect_problem("", needle);
    unsetenv(key);
}

/* 1 when the configuration's webhook key decodes to a valid Ed25519 point. */
static int s_pubkey_valid(const config_t *cfg)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    size_t n = 0;
    return sodium_hex2bin(pk, sizeof pk, cfg->cobo_webhook_pubkey, strlen(cfg->cobo_webhook_pubkey), NULL, &n,
                          NULL) == 0 && n == sizeof pk && crypto_core_ed25519_is_valid_point(pk);
}

/* A webhook key given is checked to be a point of the curve; the built-in ones (prod, dev), which a
 * load does not check again, are valid points. */
static void test_webhook_pubkey_given_is_checked_built_in_ones_are_valid(void)
{
    s_env_clear();
    CHECK(sodium_init() >= 0);
    config_t cfg;
    char err[2048];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), 0);
    CHECK(s_pubkey_valid(&cfg));
    config_clear(&cfg);
    CHECK_EQ_INT(s_load(&cfg, "COBO_ENV=dev\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.cobo_env, "dev");
    CHECK(s_pubkey_valid(&cfg));
    config_clear(&cfg);
    /* y = p - 1 = -1: the point (0, -1), of order 2, not a valid public key */
    s_expect_problem("COBO_WEBHOOK_PUBKEY=ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f\n",
                     "COBO_WEBHOOK_PUBKEY: not a valid Ed25519 public key");
}

/* Notices: Turkish unless KASA_NOTICE_LANG=en; Telegram approvers as ID:NAME pairs, each id once. */
static void test_notice_language_and_telegram_approvers(void)
{
    config_t cfg;
    char err[2048];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.notice_lang, "tr");
    CHECK_EQ_INT(cfg.telegram_approver_count, 0);
    CHECK_EQ_INT(cfg.telegram_poll_s, 25);
    config_clear(&cfg);
    CHECK_EQ_INT(s_load(&cfg, "KASA_NOTICE_LANG=en\nKASA_TELEGRAM_APPROVERS=5551:ayse,77:mehmet.k\n"
                              "KASA_TELEGRAM_POLL_S=2\n", err, sizeof err), 0);
    CHECK_EQ_STR(cfg.notice_lang, "en");
    CHECK_EQ_INT(cfg.telegram_approver_count, 2);
    CHECK_EQ_INT(cfg.telegram_approvers[0].user_id, 5551);
    CHECK_EQ_STR(cfg.telegram_approvers[1].admin, "mehmet.k");
    CHECK_EQ_INT(cfg.telegram_poll_s, 2);
    config_clear(&cfg);
    s_expect_problem("KASA_NOTICE_LANG=fr\n", "KASA_NOTICE_LANG: tr or en");
    s_expect_problem("KASA_TELEGRAM_APPROVERS=ayse\n", "KASA_TELEGRAM_APPROVERS: expected");
    s_expect_problem("KASA_TELEGRAM_APPROVERS=-5:ayse\n", "KASA_TELEGRAM_APPROVERS: expected");
    s_expect_problem("KASA_TELEGRAM_APPROVERS=5:Ayse!\n", "KASA_TELEGRAM_APPROVERS:");
    s_expect_problem("KASA_TELEGRAM_APPROVERS=5:ayse,5:mehmet\n", "listed twice");
    s_expect_problem("KASA_TELEGRAM_POLL_S=60\n", "KASA_TELEGRAM_POLL_S");
}

/* A rule per token and account currency: KASA_TOKEN_<TOKEN>__<CURRENCY>; KASA_TOKEN_<TOKEN> alone is
 * the USD rule. Each is found by token and currency (any case), no other currency gets one, and the
 * printed configuration shows every rule under its key. */
static void test_rules_per_token_and_account_currency(void)
{
    s_env_clear();
    setenv("KASA_TOKEN_TRON_USDT__EUR", "0.9:0.45:2", 1);   /* the environment adds a rule */
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "KASA_TOKEN_TRON_USDT=1:0.5:1\nKASA_TOKEN_TRON_USDT__USC=100:50:1\n"
                              "KASA_TOKEN_TRON_USDT__EUR=0.92:0.46:1\nKASA_TOKEN_TRON__USD=0.12:0:10\n",
                        err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(cfg.token_count, 4);
    const config_token_t *usd = config_rule(&cfg, "TRON_USDT", "USD");
    const config_token_t *usc = config_rule(&cfg, "TRON_USDT", "usc");
    const config_token_t *eur = config_rule(&cfg, "TRON_USDT", "EUR");
    const config_token_t *trx = config_rule(&cfg, "TRON", "USD");
    CHECK(usd && usc && eur && trx);
    if (usd && usc && eur && trx) {
        CHECK(usd->rate == (money_atto_t) 1000000000000000000ULL);
        CHECK(usd->fee == (money_atto_t) 500000000000000000ULL);
        CHECK(usc->rate == (money_atto_t) 100 * 1000000000000000000ULL);
        CHECK(usc->fee == (money_atto_t) 50 * 1000000000000000000ULL);
        CHECK(eur->rate == (money_atto_t) 900000000000000000ULL);   /* the environment won */
        CHECK(eur->minimum == (money_atto_t) 2 * 1000000000000000000ULL);
        CHECK(trx->rate == (money_atto_t) 120000000000000000ULL);
        CHECK_EQ_STR(usc->currency, "USC");
    }
    CHECK(config_rule(&cfg, "TRON_USDT", "JPY") == NULL);
    CHECK(config_rule(&cfg, "TRON", "EUR") == NULL);
    CHECK(config_rule(&cfg, "ETH_USDT", "USD") == NULL);
    CHECK(config_token(&cfg, "TRON") != NULL);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print(&cfg, out);
    fclose(out);
    CHECK(strstr(text, "KASA_TOKEN_TRON_USDT=1:0.5:1\n") != NULL);
    CHECK(strstr(text, "KASA_TOKEN_TRON_USDT__USC=100:50:1\n") != NULL);
    CHECK(strstr(text, "KASA_TOKEN_TRON_USDT__EUR=0.9:0.45:2\n") != NULL);
    CHECK(strstr(text, "KASA_TOKEN_TRON=0.12:0:10\n") != NULL);
    free(text);
    s_env_clear();
}

/* A live rule takes its rate from the price source: live/SYMBOL or live/SYMBOL*N; the source's keys
 * have defaults (Binance, 60 s, 10 s); the printed configuration shows the rule as written. */
static void test_live_rules_and_the_rate_source(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "KASA_TOKEN_TRON=live/TRXUSDT:0.5:10\nKASA_TOKEN_TRON__USC=live/TRXUSDT*100:0:10\n"
                              "KASA_TOKEN_TRON_USDT=1:0:1\n", err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    const config_token_t *usd = config_rule(&cfg, "TRON", "USD"), *usc = config_rule(&cfg, "TRON", "USC");
    const config_token_t *usdt = config_rule(&cfg, "TRON_USDT", "USD");
    CHECK(usd && usc && usdt);
    if (usd && usc && usdt) {
        CHECK(usd->live && usc->live && !usdt->live);
        CHECK_EQ_STR(usd->symbol, "TRXUSDT");
        CHECK_EQ_INT(usd->factor, 1);
        CHECK_EQ_INT(usc->factor, 100);
        CHECK(usd->fee == (money_atto_t) 500000000000000000ULL);
        CHECK(usd->minimum == (money_atto_t) 10 * 1000000000000000000ULL);
    }
    CHECK_EQ_STR(cfg.rate_url, "https://api.binance.com");
    CHECK_EQ_INT(cfg.rate_max_age_s, 60);
    CHECK_EQ_INT(cfg.rate_refresh_s, 10);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print(&cfg, out);
    fclose(out);
    CHECK(strstr(text, "KASA_TOKEN_TRON=live/TRXUSDT:0.5:10\n") != NULL);
    CHECK(strstr(text, "KASA_TOKEN_TRON__USC=live/TRXUSDT*100:0:10\n") != NULL);
    CHECK(strstr(text, "KASA_RATE_MAX_AGE_S=60\n") != NULL);
    free(text);
    s_expect_problem("KASA_TOKEN_TRON=live:0:1\n", "KASA_TOKEN_TRON: rate: expected a decimal number or live/SYMBOL");
    s_expect_problem("KASA_TOKEN_TRON=livexx:0:1\n", "KASA_TOKEN_TRON: rate: expected a decimal number or live/SYMBOL");
    s_expect_problem("KASA_TOKEN_TRON=live/:0:1\n", "KASA_TOKEN_TRON: rate: the symbol after live/");
    s_expect_problem("KASA_TOKEN_TRON=live/trxusdt:0:1\n", "KASA_TOKEN_TRON: rate: the symbol after live/");
    s_expect_problem("KASA_TOKEN_TRON=live/TRXUSDT*0:0:1\n", "KASA_TOKEN_TRON: rate: the factor after *");
    s_expect_problem("KASA_TOKEN_TRON=live/TRXUSDT*1.5:0:1\n", "KASA_TOKEN_TRON: rate: the factor after *");
    s_expect_problem("KASA_RATE_URL=http://prices.example.com\n", "KASA_RATE_URL: must use https://");
    s_expect_problem("KASA_RATE_MAX_AGE_S=2\n", "KASA_RATE_MAX_AGE_S");
    s_expect_problem("KASA_RATE_MAX_AGE_S=30\nKASA_RATE_REFRESH_S=30\n", "KASA_RATE_REFRESH_S (30) must be below");
    s_env_clear();
}

/* MT5_DIGITS is no longer read (digits come from the account's group, never from a default): set in
 * the file or in the environment it is an error that says so, not a value silently ignored. */
static void test_retired_mt5_digits_is_an_error_that_says_why(void)
{
    s_env_clear();
    s_expect_problem("MT5_DIGITS=2\n", "MT5_DIGITS: no longer read: an account's digits (and currency) come from its "
                                       "MT5 group");
    s_expect_env_problem("MT5_DIGITS", "2", "MT5_DIGITS (environment): no longer read");
    s_env_clear();
}

static void test_each_validation_error_is_reported(void)
{
    s_env_clear();
    s_expect_problem("KASA_LISTEN=localhost\n", "KASA_LISTEN: expected host:port");
    s_expect_problem("KASA_LISTEN=127.0.0.1:70000\n", "KASA_LISTEN: expected host:port");
    s_expect_problem("KASA_LISTEN=1 27.0.0.1:80\n", "KASA_LISTEN: expected host:port");
    s_expect_problem("KASA_WEBHOOK_LISTEN=8001\n", "KASA_WEBHOOK_LISTEN: expected host:port");
    s_expect_problem("KASA_LISTEN=127.0.0.1:9000\nKASA_WEBHOOK_LISTEN=127.0.0.1:9000\n",
                     "KASA_WEBHOOK_LISTEN: must differ from KASA_LISTEN");
    s_expect_problem("KASA_LISTEN=127.0.0.1:65535\n", "KASA_WEBHOOK_LISTEN: set it");
    s_expect_problem("COBO_WEBHOOK_PUBKEY=abcd\n", "COBO_WEBHOOK_PUBKEY: expected 64 hex characters");
    s_expect_problem("COBO_WEBHOOK_PUBKEY=zz4a482641adb2a34b726f05827dba9a9653e5857469b8749052bf4458a86729\n",
                     "non-hex");
    s_expect_env_problem("MT5_URL", "http://mt5.example.com", "MT5_URL: must use https://");
    s_expect_env_problem("MT5_URL", "ftp://x", "MT5_URL: expected an https:// URL");
    s_expect_env_problem("COBO_API_URL", "http://api.cobo.com/v2", "COBO_API_URL: must use https://");
    s_expect_env_problem("MT5_LOGIN", "abc", "MT5_LOGIN: expected a positive whole number");
    s_expect_problem("KASA_PENDING_AGE_S=0\n", "KASA_PENDING_AGE_S: expected a whole number from 1");
    s_expect_problem("KASA_PENDING_POLL_S=86401\n", "KASA_PENDING_POLL_S: expected a whole number from 1");
    s_expect_problem("KASA_COBO_CONFIRM_WAIT_S=soon\n", "KASA_COBO_CONFIRM_WAIT_S: expected a whole number");
    s_expect_problem("KASA_MAX_BODY=10\n", "KASA_MAX_BODY");
    s_expect_problem("KASA_HTTP_THREADS=0\n", "KASA_HTTP_THREADS");
    s_expect_problem("KASA_CREDITERS=-1\n", "KASA_CREDITERS");
    s_expect_problem("KASA_LOCKERS=0\n", "KASA_LOCKERS");
    s_expect_problem("KASA_LOCKERS=65\n", "KASA_LOCKERS");
    s_expect_problem("KASA_NOTIFIERS=0\n", "KASA_NOTIFIERS");
    s_expect_problem("KASA_CATCHUP_INTERVAL=-5\n", "KASA_CATCHUP_INTERVAL");
    s_expect_problem("KASA_CATCHUP_LOOKBACK=99999999\n", "KASA_CATCHUP_LOOKBACK");
    s_expect_problem("KASA_METRICS_LISTEN=nowhere\n", "KASA_METRICS_LISTEN: expected host:port");
    s_expect_problem("KASA_LOG_FORMAT=xml\n", "KASA_LOG_FORMAT: expected text or json");
    s_expect_problem("COBO_ENV=staging\n", "COBO_ENV: expected prod or dev");
    s_expect_problem("KASA_MONITOR=127.0.0.1:5560\n", "KASA_MONITOR: expected a ZeroMQ endpoint");
    s_expect_problem("TELEGRAM_CHAT_ID=chat\n", "TELEGRAM_CHAT_ID");
    s_expect_problem("KASA_TOKEN_TRON_USDT=1:0\n", "KASA_TOKEN_TRON_USDT: expected rate:fee:minimum");
    s_expect_problem("KASA_TOKEN_TRON_USDT=1:0:1:2\n", "KASA_TOKEN_TRON_USDT: expected rate:fee:minimum");
    s_expect_problem("KASA_TOKEN_TRON_USDT=1e3:0:1\n", "KASA_TOKEN_TRON_USDT: rate:");
    s_expect_problem("KASA_TOKEN_TRON_USDT=1:-1:1\n", "KASA_TOKEN_TRON_USDT: fee:");
    s_expect_problem("KASA_TOKEN_tron=1:0:1\n", "bad key name");
    s_expect_problem("KASA_TOKEN_TRON_USDT__eur=1:0:1\n", "bad key name");
    s_expect_problem("KASA_TOKEN_TRON_USDT__=1:0:1\n", "KASA_TOKEN_TRON_USDT__: bad key name");
    s_expect_problem("KASA_TOKEN___EUR=1:0:1\n", "KASA_TOKEN___EUR: bad key name");
    s_expect_problem("KASA_TOKEN_TRON_USDT__EUR=0:0:1\n", "KASA_TOKEN_TRON_USDT__EUR: rate must be above 0");
    s_expect_problem("KASA_TOKEN_TRON_USDT=1:0:1\nKASA_TOKEN_TRON_USDT__USD=2:0:1\n",
                     "KASA_TOKEN_TRON_USDT__USD: a second rule for TRON_USDT on USD accounts");
    s_expect_problem("KASA_AUTO_CREDIT_LIMIT=lots\n", "KASA_AUTO_CREDIT_LIMIT:");
    s_expect_problem("KASA_DUAL_APPROVAL_LIMIT=lots\n", "KASA_DUAL_APPROVAL_LIMIT:");
    s_expect_problem("KASA_AUTO_CREDIT_LIMIT=100\nKASA_DUAL_APPROVAL_LIMIT=99\n", "KASA_DUAL_APPROVAL_LIMIT: must be");
    s_expect_problem("KASA_DUAL_APPROVAL_LIMIT=99\n", "KASA_DUAL_APPROVAL_LIMIT: must be");
    s_expect_problem("KASA_CHAINS=TRON_USDT,eth usdt\n", "KASA_CHAINS: bad token id");
    s_expect_problem("KASA_LISTN=127.0.0.1:1\n", "KASA_LISTN: unknown key");
    s_expect_problem("MT5_PASWORD=x\n", "MT5_PASWORD: unknown key");
    s_expect_problem("TELEGRAM_CHATID=1\n", "TELEGRAM_CHATID: unknown key");
    s_expect_problem("MT5_LOGIN=7\n", "MT5_LOGIN: duplicate key");
    s_expect_problem("just words\n", "expected KEY=VALUE");
    s_expect_problem("COBO_WALLET_ID=\"open\n", "unbalanced quotes");
}

/* KASA_MAX_DEPOSITS bounds the deposits held in memory: 200000 by default, a whole number from 1
 * to 100000000 from the file or the environment (which wins), anything else refused by name. */
static void test_max_deposits_default_override_and_bounds(void)
{
    s_env_clear();
    config_t cfg;
    char err[2048];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.max_deposits, 200000);
    CHECK_EQ_INT(s_load(&cfg, "KASA_MAX_DEPOSITS=1\n", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.max_deposits, 1);
    CHECK_EQ_INT(s_load(&cfg, "KASA_MAX_DEPOSITS=100000000\n", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.max_deposits, 100000000);
    setenv("KASA_MAX_DEPOSITS", "5000", 1);
    CHECK_EQ_INT(s_load(&cfg, "KASA_MAX_DEPOSITS=7\n", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.max_deposits, 5000);
    unsetenv("KASA_MAX_DEPOSITS");
    s_expect_problem("KASA_MAX_DEPOSITS=0\n", "KASA_MAX_DEPOSITS: expected a whole number from 1 to 100000000");
    s_expect_problem("KASA_MAX_DEPOSITS=100000001\n", "KASA_MAX_DEPOSITS: expected a whole number");
    s_expect_problem("KASA_MAX_DEPOSITS=-5\n", "KASA_MAX_DEPOSITS: expected a whole number");
    s_expect_problem("KASA_MAX_DEPOSITS=20k\n", "KASA_MAX_DEPOSITS: expected a whole number");
    s_expect_env_problem("KASA_MAX_DEPOSITS", "lots", "KASA_MAX_DEPOSITS: expected a whole number");
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK_EQ_INT(s_load(&cfg, "KASA_MAX_DEPOSITS=12345\n", err, sizeof err), 0);
    config_print(&cfg, out);
    fclose(out);
    CHECK(strstr(text, "KASA_MAX_DEPOSITS=12345\n") != NULL);
    free(text);
}

static void test_base_file_is_valid(void)
{
    /* the file every problem case extends is itself valid: each failure above is its own line's */
    s_env_clear();
    config_t cfg;
    char err[256];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), 0);
}

static void test_missing_required_keys_each_named(void)
{
    s_env_clear();
    FILE *f = fopen(s_path, "w");
    fprintf(f, "KASA_LISTEN=127.0.0.1:8000\n");
    fclose(f);
    config_t cfg;
    char err[2048];
    CHECK_EQ_INT(config_load(&cfg, s_path, err, sizeof err), -1);
    static const char *const required[] = { "KASA_JOURNAL_DIR", "COBO_API_URL", "COBO_API_KEY",
                                            "COBO_API_SECRET", "MT5_URL", "MT5_LOGIN", "MT5_PASSWORD",
                                            "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID" };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s: required but not set", required[i]);
        CHECK(strstr(err, line) != NULL);
    }
    /* one line per problem */
    int lines = 1;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    CHECK_EQ_INT(lines, 9);
}

static void test_api_key_must_match_secret(void)
{
    s_env_clear();
    setenv("COBO_API_KEY", "8d4a482641adb2a34b726f05827dba9a9653e5857469b8749052bf4458a86729", 1);
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), -1);
    CHECK(strstr(err, "COBO_API_KEY: is not the public key of COBO_API_SECRET") != NULL);
    CHECK(strstr(err, SEED) == NULL);
    s_env_clear();
}

/* config_parse reads text as config_load reads the file: the same answer for the same bytes, the
 * same line numbers in messages, and the line limits (a too-long line, a last line without '\n'). */
static void test_parse_from_text_matches_the_file(void)
{
    s_env_clear();
    config_t from_file, from_text;
    char err_file[1024], err_text[1024];
    CHECK_EQ_INT(s_load(&from_file, "KASA_HTTP_THREADS=7\nKASA_MAX_BODY=oops", err_file, sizeof err_file), -1);
    FILE *f = fopen(s_path, "r");
    char text[8192];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    CHECK_EQ_INT(config_parse(&from_text, text, n, s_path, err_text, sizeof err_text), -1);
    CHECK_EQ_STR(err_text, err_file);
    CHECK(strstr(err_text, "KASA_MAX_BODY") != NULL);

    CHECK_EQ_INT(s_load(&from_file, "KASA_HTTP_THREADS=7", err_file, sizeof err_file), 0);
    f = fopen(s_path, "r");
    n = fread(text, 1, sizeof text, f);
    fclose(f);
    CHECK_EQ_INT(config_parse(&from_text, text, n, s_path, err_text, sizeof err_text), 0);
    CHECK_EQ_INT(from_text.http_threads, 7);
    CHECK_EQ_INT(from_file.http_threads, 7);
    config_clear(&from_file);
    config_clear(&from_text);

    char *longline = malloc(5000);
    memset(longline, 'x', 4999);
    longline[4999] = '\0';
    CHECK_EQ_INT(s_load(&from_file, longline, err_file, sizeof err_file), -1);
    CHECK(strstr(err_file, ":12: line too long") != NULL);
    free(longline);
}

static void test_missing_file_is_an_error(void)
{
    s_env_clear();
    config_t cfg;
    char err[512];
    CHECK_EQ_INT(config_load(&cfg, "/nonexistent/kasa.env", err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/kasa.env: cannot open") != NULL);
}

static void test_print_never_shows_secrets(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "KASA_TOKEN_TRON_USDT=1:0:1\n", err, sizeof err), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print(&cfg, out);
    fclose(out);
    CHECK(strstr(text, SEED) == NULL);
    CHECK(strstr(text, "pa ss#word") == NULL);
    CHECK(strstr(text, "ABCsecretTOKEN") == NULL);
    CHECK(strstr(text, "COBO_API_SECRET=(set)") != NULL);
    CHECK(strstr(text, "MT5_PASSWORD=(set)") != NULL);
    CHECK(strstr(text, "TELEGRAM_BOT_TOKEN=(set)") != NULL);
    CHECK(strstr(text, "KASA_TOKEN_TRON_USDT=1:0:1") != NULL);
    CHECK(strstr(text, "MT5_LOGIN=1001") != NULL);
    free(text);
    config_clear(&cfg);
    CHECK_EQ_STR(cfg.mt5_password, "");
    CHECK_EQ_STR(cfg.cobo_api_secret, "");
    s_env_clear();
}

static void test_errors_never_echo_secret_values(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    /* a bad secret value: the message names the key, not the value */
    CHECK_EQ_INT(s_load(&cfg, "KASA_LISTN=hunter2secret\n", err, sizeof err), -1);
    CHECK(strstr(err, "hunter2secret") == NULL);
    setenv("COBO_API_SECRET", "notHexButSecret", 1);
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), -1);
    CHECK(strstr(err, "COBO_API_SECRET: expected 64 hex characters") != NULL);
    CHECK(strstr(err, "notHexButSecret") == NULL);
    s_env_clear();
}

/* kasa.env.example documents every key config_print shows, and parses once the required
 * secrets are given (here through the environment). */
static void test_example_file_documents_every_key_and_loads(void)
{
    s_env_clear();
    FILE *f = fopen("tools/kasa.env.example", "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char *example = calloc(1, 65536);
    size_t n = fread(example, 1, 65535, f);
    fclose(f);
    example[n] = '\0';
    config_t cfg;
    char err[2048];
    setenv("COBO_API_KEY", s_api_key, 1);
    setenv("COBO_API_SECRET", SEED, 1);
    setenv("MT5_LOGIN", "1001", 1);
    setenv("MT5_PASSWORD", "x", 1);
    setenv("TELEGRAM_BOT_TOKEN", "t", 1);
    setenv("TELEGRAM_CHAT_ID", "-100", 1);
    int rc = config_load(&cfg, "tools/kasa.env.example", err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "  example: %s\n", err);
    CHECK_EQ_INT(rc, 0);
    setenv("KASA_TOKEN_TRON_USDT", "1:0:1", 1);
    CHECK_EQ_INT(config_load(&cfg, "tools/kasa.env.example", err, sizeof err), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print(&cfg, out);
    fclose(out);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (strncmp(line, "KASA_TOKEN_", 11) == 0)
            continue;
        if (!strstr(example, line))
            fprintf(stderr, "  %s is not documented in kasa.env.example\n", line);
        CHECK(strstr(example, line) != NULL);
    }
    CHECK(strstr(example, "KASA_TOKEN_") != NULL);
    free(text);
    free(example);
    s_env_clear();
}

/* Runs a shell command, collects its output (stdout and stderr) and exit status. */
static int s_run(const char *cmd, char *out, size_t outlen)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `kasa config check` (the binary tests/run.sh names in KASA_BIN). */
static void test_config_check_command(void)
{
    const char *bin = getenv("KASA_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        printf("# KASA_BIN not set: `kasa config check` not exercised\n");
        return;
    }
    s_env_clear();
    s_write("KASA_TOKEN_TRON_USDT=1:0:1\n");
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' config check --config '%s' 2>&1", bin, s_path);
    CHECK_EQ_INT(s_run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "configuration ok") != NULL);
    CHECK(strstr(out, "MT5_PASSWORD=(set)") != NULL);
    CHECK(strstr(out, "KASA_TOKEN_TRON_USDT=1:0:1") != NULL);
    CHECK(strstr(out, SEED) == NULL);
    CHECK(strstr(out, "pa ss#word") == NULL);
    CHECK(strstr(out, "ABCsecretTOKEN") == NULL);
    s_write("MT5_DIGITS=12\nKASA_LISTN=1\n");
    CHECK_EQ_INT(s_run(cmd, out, sizeof out), 1);
    CHECK(strstr(out, "MT5_DIGITS") != NULL);
    CHECK(strstr(out, "KASA_LISTN: unknown key") != NULL);
    CHECK(strstr(out, "configuration ok") == NULL);
    CHECK(strstr(out, SEED) == NULL);
}

/* KASA_CLUSTER: off by default; on only together with a MongoDB URI, and printed. */
static void test_cluster_needs_mongo(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.cluster, 0);
    config_clear(&cfg);
    CHECK(s_load(&cfg, "KASA_CLUSTER=on\n", err, sizeof err) != 0);
    CHECK(strstr(err, "KASA_CLUSTER=on needs KASA_MONGO_URI") != NULL);
    CHECK(s_load(&cfg, "KASA_CLUSTER=maybe\nKASA_MONGO_URI=mongodb://127.0.0.1:1\n", err, sizeof err) != 0);
    CHECK(strstr(err, "KASA_CLUSTER") != NULL);
    CHECK_EQ_INT(s_load(&cfg, "KASA_CLUSTER=on\nKASA_MONGO_URI=mongodb://127.0.0.1:1\n", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.cluster, 1);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print(&cfg, out);
    fclose(out);
    CHECK(strstr(text, "KASA_CLUSTER=on\n") != NULL);
    free(text);
    config_clear(&cfg);
}

/* KASA_COBO_TIMEOUT_MS and KASA_MT5_TIMEOUT_MS: 10000 by default, a range with a clear error, printed;
 * a config_t left 0 reads the default through config_*_timeout_ms. */
static void test_cobo_and_mt5_timeouts_default_range_and_print(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, "", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.cobo_timeout_ms, 10000);
    CHECK_EQ_INT(cfg.mt5_timeout_ms, 10000);
    config_clear(&cfg);
    CHECK_EQ_INT(s_load(&cfg, "KASA_COBO_TIMEOUT_MS=2500\nKASA_MT5_TIMEOUT_MS=4000\n", err, sizeof err), 0);
    CHECK_EQ_INT(config_cobo_timeout_ms(&cfg), 2500);
    CHECK_EQ_INT(config_mt5_timeout_ms(&cfg), 4000);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print(&cfg, out);
    fclose(out);
    CHECK(strstr(text, "KASA_COBO_TIMEOUT_MS=2500\n") != NULL);
    CHECK(strstr(text, "KASA_MT5_TIMEOUT_MS=4000\n") != NULL);
    free(text);
    config_clear(&cfg);
    s_expect_problem("KASA_COBO_TIMEOUT_MS=99\n", "KASA_COBO_TIMEOUT_MS: expected a whole number from 100 to 120000");
    s_expect_problem("KASA_COBO_TIMEOUT_MS=10s\n", "KASA_COBO_TIMEOUT_MS: expected a whole number");
    s_expect_problem("KASA_MT5_TIMEOUT_MS=120001\n", "KASA_MT5_TIMEOUT_MS: expected a whole number from 100 to 120000");
    config_t zero;
    memset(&zero, 0, sizeof zero);
    CHECK_EQ_INT(config_cobo_timeout_ms(&zero), CONFIG_DEFAULT_COBO_TIMEOUT_MS);
    CHECK_EQ_INT(config_mt5_timeout_ms(&zero), CONFIG_DEFAULT_MT5_TIMEOUT_MS);
}

/* Cluster mode refuses a lease shorter than 3 x the MT5 timeout (a call started with lease/3 left could
 * outlive the lease) and a settle time shorter than the MT5 timeout, each with the keys and values; the
 * same values pass in single-node mode, and the defaults pass in cluster mode. */
#define S_CLUSTER "KASA_CLUSTER=on\nKASA_MONGO_URI=mongodb://127.0.0.1:1\n"
static void test_cluster_refuses_lease_and_timeouts_that_break_the_margins(void)
{
    s_env_clear();
    config_t cfg;
    char err[1024];
    CHECK_EQ_INT(s_load(&cfg, S_CLUSTER, err, sizeof err), 0);   /* L 30 s, T 10 s, S 60 s */
    config_clear(&cfg);
    CHECK_EQ_INT(s_load(&cfg, S_CLUSTER "KASA_CLAIM_LEASE_MS=1500\nKASA_MT5_TIMEOUT_MS=500\nKASA_MT5_SETTLE_S=1\n",
                        err, sizeof err), 0);
    config_clear(&cfg);
    s_expect_problem(S_CLUSTER "KASA_CLAIM_LEASE_MS=29999\n",
                     "KASA_CLAIM_LEASE_MS (29999) must be at least 3 x KASA_MT5_TIMEOUT_MS (10000)");
    s_expect_problem(S_CLUSTER "KASA_CLAIM_LEASE_MS=1500\nKASA_MT5_TIMEOUT_MS=501\nKASA_MT5_SETTLE_S=1\n",
                     "KASA_CLAIM_LEASE_MS (1500) must be at least 3 x KASA_MT5_TIMEOUT_MS (501)");
    s_expect_problem(S_CLUSTER "KASA_CLAIM_LEASE_MS=60000\nKASA_MT5_TIMEOUT_MS=20000\nKASA_MT5_SETTLE_S=19\n",
                     "KASA_MT5_SETTLE_S (19 s) must be at least KASA_MT5_TIMEOUT_MS (20000 ms)");
    /* single-node mode: the lease is not used, the same values load */
    CHECK_EQ_INT(s_load(&cfg, "KASA_CLAIM_LEASE_MS=1500\nKASA_MT5_SETTLE_S=1\n", err, sizeof err), 0);
    config_clear(&cfg);
}

int main(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/kasa-test-config-XXXXXX");
    if (!mkdtemp(s_dir))
        return 1;
    snprintf(s_path, sizeof s_path, "%s/kasa.env", s_dir);
    if (cobo_pubkey_from_seed(SEED, s_api_key) != 0)
        return 1;
    RUN(test_valid_file_loads_with_defaults);
    RUN(test_syntax_export_quotes_comments_trailing_spaces);
    RUN(test_webhook_listener_is_given_or_the_next_port);
    RUN(test_environment_overrides_file);
    RUN(test_environment_alone_is_enough);
    RUN(test_tokens_and_limit_parse_exactly);
    RUN(test_rules_per_token_and_account_currency);
    RUN(test_retired_mt5_digits_is_an_error_that_says_why);
    RUN(test_each_validation_error_is_reported);
    RUN(test_webhook_pubkey_given_is_checked_built_in_ones_are_valid);
    RUN(test_max_deposits_default_override_and_bounds);
    RUN(test_base_file_is_valid);
    RUN(test_missing_required_keys_each_named);
    RUN(test_api_key_must_match_secret);
    RUN(test_missing_file_is_an_error);
    RUN(test_parse_from_text_matches_the_file);
    RUN(test_print_never_shows_secrets);
    RUN(test_notice_language_and_telegram_approvers);
    RUN(test_errors_never_echo_secret_values);
    RUN(test_live_rules_and_the_rate_source);
    RUN(test_example_file_documents_every_key_and_loads);
    RUN(test_config_check_command);
    RUN(test_cluster_needs_mongo);
    RUN(test_cobo_and_mt5_timeouts_default_range_and_print);
    RUN(test_cluster_refuses_lease_and_timeouts_that_break_the_margins);
    unlink(s_path);
    rmdir(s_dir);
    return check_done();
}
