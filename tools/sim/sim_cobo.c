/* sim_cobo.c — a Cobo WaaS 2.0 simulator on loopback (see sim.h).
 *
 * API (signed with Cobo Auth, answers signed with the simulator's key):
 *   GET  /v2/transactions/{id}                    the Transaction JSON (as in a webhook's data)
 *   GET  /v2/transactions                          ?types=&statuses=&wallet_ids=&transaction_ids=
 *                                                  &chain_ids=&token_ids=&min_created_timestamp=
 *                                                  &max_created_timestamp=&limit=&after=&before=
 *                                                  &direction=ASC|DESC -> {data, pagination}
 *   POST /v2/wallets/{wallet_id}/addresses         {"chain_id","count"} -> 201 [{address, chain_id, ...}]
 *   GET  /v2/wallets/{wallet_id}/addresses         ?chain_ids=&limit=&after= -> {data, pagination}
 *   GET  /v2/wallets/tokens/{token_id}             token metadata (decimal, ...)
 *   POST /v2/transactions/transfer                 {request_id, source{source_type Asset|Org-Controlled,
 *                                                  wallet_id, address}, token_id, destination{destination_type
 *                                                  Address, account_output{address, amount}}, fee_level,
 *                                                  description} -> 201 {request_id, transaction_id, status};
 *                                                  a used request_id -> 400 error 12009 (or 30001); the
 *                                                  transfer goes Submitted → PendingScreening →
 *                                                  PendingAuthorization → PendingSignature → Broadcasting →
 *                                                  Confirming → Completed as signed webhooks (type Withdrawal)
 *   GET  /v2/transactions?request_id=ID            the transfer asked for with ID
 *   GET  /v2/wallets/{wallet_id}/tokens            ?limit=&after=&before= -> {data: [{token_id, balance}],
 *                                                  pagination}: each token's balance in the wallet
 *   GET  /v2/wallets/{wallet_id}/tokens/{token_id} ?addresses=&limit=&after=&before= -> {data: [{address,
 *                                                  balance}], pagination}: the token's balance per address
 *                                                  (balance {total, available, pending, locked, frozen}, exact
 *                                                  sums of the wallet's deposits and withdrawals: see s_bal_t)
 * Control (unsigned, loopback):
 *   POST /sim/deposit          {"address","amount","token_id","chain_id","confirmations","final",
 *                               "duplicates","reorder","from","cobo_category"} -> {"transaction_id"};
 *                               from: the sender (default a random outside address); cobo_category:
 *                               Cobo's own mark ("AutoFueling": a Fee Station gas top-up); the lifecycle goes out
 *                               as signed webhooks to --webhook-url
 *   GET  /sim/deposits         transactions and the answer codes of each webhook event
 *   POST /sim/transactions/{id} {"status","sub_status","confirmed_num","notify"} change a transaction
 *   POST /sim/faults           {"create_address_timeout_once","bad_signature_once","bad_signatures",
 *                               "fail_next","hang_ms","fail_rate_pct","delay_ms","underscore_headers",
 *                               "confirming_lag_ms","drop_webhooks","drop_deposit_webhooks","rate_limit_next"}
 *                               -> the faults now set; confirming_lag_ms makes the API show a Completed transaction
 *                               as Confirming for that long after it completed (Cobo's API can lag its
 *                               own webhooks); drop_webhooks: every webhook is lost, never sent;
 *                               drop_deposit_webhooks: a deposit's are lost, a transfer's still sent;
 *                               rate_limit_next N: the next N API calls get 429 {"error_code":2010}
 *                               with Retry-After: 1; transfers: "transfer_timeout_once" (created, answered
 *                               after hang_ms), "transfer_5xx_once" (created, answered 503),
 *                               "duplicate_code" 12009|30001, "transfer_final" Failed|Rejected (Failed
 *                               after Broadcasting, Rejected after PendingAuthorization),
 *                               "transfer_stop_at" STATUS (stays there until POST /sim/transactions/{id})
 *   POST /sim/sweep            {"address","token_id","amount","to","deposit_leg"} Cobo's own sweep of a
 *                               deposit address: a Withdrawal without kasa's request_id and, unless
 *                               deposit_leg is false, the Deposit leg into the sweep-to address
 *   POST /sim/balances         {"wallet_id","token_id","amount"}: a wallet's opening funds (added to its
 *                               balances; a transfer it cannot pay fails with InsufficientBalance);
 *                               GET: each funded wallet/token's available amount
 * A request with a missing/invalid Biz-Api-* signature, an unknown key or a nonce more than five
 * minutes off gets 401 {"error_code":2024,...}; injected failures are 503 {"error_code":2026,...}. */
#include "tools/sim/sim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "actors/cobo_auth.h"
#include "schema/chainaddr.h"
#include "schema/json.h"
#include "schema/money.h"
#include "tools/sim/sim_http.h"

#define S_MAX_TX 100000
#define S_TX_INDEX (1 << 18) /* open-addressing index of transaction ids: a power of two > 2 * S_MAX_TX */
#define S_MAX_ADDR 100000
#define S_MAX_EVENTS 64          /* events per transaction, copies included */
#define S_MAX_JOBS 100000
#define S_MAX_BODY (1u << 20)
#define S_ATTEMPTS 10
#define S_WORKERS 4
#define S_NONCE_WINDOW_MS (5 * 60 * 1000)

/* ---- state ------------------------------------------------------------------------------------ */

typedef struct {
    char event_id[40];
    char type[40];
    char status[24];
    int confirmed;
    int attempts;
    int codes[S_ATTEMPTS];      /* the HTTP status of each attempt (0 = no answer) */
    int ncodes;
    int delivered;              /* answered 2xx */
    int given_up;
    int outstanding;            /* copies not yet delivered nor given up (queued or chained) */
} s_event_t;

typedef struct {
    char id[40], cobo_id[24], wallet_id[80], status[24], sub_status[48];
    char chain_id[24], token_id[40], address[128], amount[48], hash[72], from[72];
    char type[16];              /* "Deposit" (default when empty) or "Withdrawal" */
    char request_id[80];        /* a transfer's request_id ("" for a deposit or a sweep) */
    char category[32];          /* cobo_category's one entry ("AutoFueling": Fee Station's gas), "" for none */
    char src_type[24];          /* a withdrawal's source_type: "Asset", "Org-Controlled" */
    char description[96];
    int confirmed, threshold;
    int64_t block_number, created_ms, updated_ms;
    int64_t completed_ms;       /* when its status became Completed (0: not Completed) */
    s_event_t events[S_MAX_EVENTS];
    int nevents;
} s_tx_t;

typedef struct {
    char wallet_id[80], chain_id[24], address[72];
} s_addr_t;

typedef struct s_job {
    struct s_job *next;         /* queue link */
    struct s_job *then;         /* delivered after this one is done (in-order lifecycles) */
    int tx, ev;                 /* indexes into s_txs / its events */
    char *body;
    int attempt;
    int64_t due_ms;
} s_job_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t rng;
    s_tx_t *txs;
    int ntx;
    int *tx_index;              /* S_TX_INDEX slots: tx index + 1, 0 = empty */
    s_addr_t *addrs;
    int naddr;
    s_job_t *queue;
    int njobs;
    volatile sig_atomic_t stop;
    /* configuration */
    char webhook_url[512];
    cobo_signer_t *signer;
    cobo_pubkey_t client_key;
    int dup, reorder;
    /* faults */
    int fail_pct, delay_ms, hang_ms, fail_next, timeout_once, bad_sig, underscore, confirming_lag_ms;
    int drop_webhooks, rate_limit_next, rate_limited;  /* rate_limited: 429s answered so far */
    int drop_deposit_webhooks;  /* deposits' webhooks are lost; transfers' still go out */
    /* transfers (see s_api_transfer) */
    int transfer_timeout_once, transfer_5xx_once, duplicate_code;
    char transfer_final[24], transfer_stop_at[32];
    struct s_funds { char wallet_id[80], token_id[40]; money_atto_t amount; } funds[64];  /* POST /sim/balances */
    int nfunds;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static void s_sleep_ms(int ms)
{
    while (ms > 0 && !S.stop) {
        int step = ms > 50 ? 50 : ms;
        struct timespec ts = { 0, (long) step * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Call with S.lock held. */
static uint64_t s_rand(void) { return sim_http_rand(&S.rng); }

static void s_rand_bytes(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = s_rand();
        for (size_t j = 0; j < 8 && i + j < n; j++)
            out[i + j] = (uint8_t) (r >> (8 * j));
    }
}

static void s_uuid(char out[37])
{
    uint8_t b[16];
    char hex[33];
    s_rand_bytes(b, sizeof b);
    b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
    cobo_hex_encode(b, sizeof b, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* Base58 (Bitcoin alphabet) of n bytes into out (NUL-terminated). */
static void s_base58(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    uint8_t digits[64] = { 0 };
    size_t nd = 0, zeros = 0;
    while (zeros < n && in[zeros] == 0)
        zeros++;
    for (size_t i = 0; i < n; i++) {
        unsigned carry = in[i];
        for (size_t j = 0; j < nd; j++) {
            carry += (unsigned) digits[j] << 8;
            digits[j] = (uint8_t) (carry % 58);
            carry /= 58;
        }
        while (carry && nd < sizeof digits) {
            digits[nd++] = (uint8_t) (carry % 58);
            carry /= 58;
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < zeros && k + 1 < cap; i++)
        out[k++] = '1';
    for (size_t i = nd; i > 0 && k + 1 < cap; i--)
        out[k++] = alpha[digits[i - 1]];
    out[k] = '\0';
}

static int s_is_evm(const char *chain)
{
    return strcmp(chain, "ETH") == 0 || strcmp(chain, "SETH") == 0 || strcmp(chain, "BSC_BNB") == 0
           || strcmp(chain, "ARBITRUM_ETH") == 0 || strcmp(chain, "MATIC") == 0;
}

/* A real-looking address for chain: TRON base58check (0x41 prefix, 'T' + 33), EVM 0x + 40 hex,
 * otherwise base58 of 32 bytes (SOL). Call with S.lock held. */
static void s_make_address(const char *chain, char *out, size_t cap)
{
    if (strcmp(chain, "TRON") == 0 || strcmp(chain, "TTRON") == 0) {
        uint8_t raw[25], h1[32], h2[32];
        raw[0] = 0x41;
        s_rand_bytes(raw + 1, 20);
        crypto_hash_sha256(h1, raw, 21);
        crypto_hash_sha256(h2, h1, 32);
        memcpy(raw + 21, h2, 4);
        s_base58(raw, sizeof raw, out, cap);
    } else if (s_is_evm(chain)) {
        uint8_t raw[20];
        char hex[41];
        s_rand_bytes(raw, sizeof raw);
        cobo_hex_encode(raw, sizeof raw, hex);
        snprintf(out, cap, "0x%s", hex);
    } else {
        uint8_t raw[32];
        s_rand_bytes(raw, sizeof raw);
        raw[0] |= 1;
        s_base58(raw, sizeof raw, out, cap);
    }
}

static void s_make_hash(const char *chain, char *out, size_t cap)
{
    uint8_t raw[32];
    char hex[65];
    s_rand_bytes(raw, sizeof raw);
    cobo_hex_encode(raw, sizeof raw, hex);
    snprintf(out, cap, "%s%s", s_is_evm(chain) ? "0x" : "", hex);
}

static const struct {
    const char *token, *chain, *symbol;
    int decimal;
} s_tokens[] = {
    { "TRON_USDT", "TRON", "USDT", 6 }, { "ETH_USDT", "ETH", "USDT", 6 },
    { "BSC_USDT", "BSC_BNB", "USDT", 18 }, { "TRON", "TRON", "TRX", 6 },
    { "ETH", "ETH", "ETH", 18 }, { "BSC_BNB", "BSC_BNB", "BNB", 18 },
    { "SOL", "SOL", "SOL", 9 }, { "SOL_USDT", "SOL", "USDT", 6 },
    { "TTRON", "TTRON", "TRX", 6 }, { "SETH", "SETH", "ETH", 18 },
};

static int s_token_find(const char *token)
{
    for (size_t i = 0; i < sizeof s_tokens / sizeof s_tokens[0]; i++)
        if (strcmp(s_tokens[i].token, token) == 0)
            return (int) i;
    return -1;
}

/* ---- JSON of a transaction (one writer for the API and the webhooks) -------------------------- */

/* A withdrawal's source and destination (Cobo's transfer shape: destination.account_output). */
static void s_withdrawal_json(jbuf_t *b, const s_tx_t *t)
{
    jbuf_puts(b, ",\"source\":{\"source_type\":");
    jbuf_str(b, t->src_type[0] ? t->src_type : "Asset");
    jbuf_puts(b, ",\"wallet_id\":");
    jbuf_str(b, t->wallet_id);
    jbuf_puts(b, ",\"address\":");
    jbuf_str(b, t->from[0] ? t->from : NULL);
    jbuf_puts(b, "},\"destination\":{\"destination_type\":\"Address\",\"account_output\":{\"address\":");
    jbuf_str(b, t->address);
    jbuf_puts(b, ",\"amount\":");
    jbuf_str(b, t->amount);
    jbuf_puts(b, ",\"memo\":null}},\"result\":null,\"fee\":null,\"initiator\":null,\"initiator_type\":\"API\"");
}

static void s_tx_json(jbuf_t *b, const s_tx_t *t)
{
    jbuf_puts(b, "{\"transaction_id\":");
    jbuf_str(b, t->id);
    jbuf_puts(b, ",\"cobo_id\":");
    jbuf_str(b, t->cobo_id);
    int wd = strcmp(t->type, "Withdrawal") == 0;
    jbuf_puts(b, ",\"request_id\":");
    jbuf_str(b, t->request_id[0] ? t->request_id : NULL);
    jbuf_puts(b, ",\"wallet_id\":");
    jbuf_str(b, t->wallet_id);
    jbuf_puts(b, wd ? ",\"type\":\"Withdrawal\",\"status\":" : ",\"type\":\"Deposit\",\"status\":");
    jbuf_str(b, t->status);
    jbuf_puts(b, ",\"sub_status\":");
    jbuf_str(b, t->sub_status[0] ? t->sub_status : NULL);
    jbuf_puts(b, ",\"failed_reason\":null,\"chain_id\":");
    jbuf_str(b, t->chain_id);
    jbuf_puts(b, ",\"token_id\":");
    jbuf_str(b, t->token_id);
    jbuf_puts(b, ",\"asset_id\":");
    int k = s_token_find(t->token_id);
    jbuf_str(b, k >= 0 ? s_tokens[k].symbol : t->token_id);
    if (wd)
        s_withdrawal_json(b, t);
    else {
        jbuf_puts(b, ",\"source\":{\"source_type\":\"DepositFromAddress\",\"addresses\":[");
        jbuf_str(b, t->from);
        jbuf_puts(b, "]},\"destination\":{\"destination_type\":\"DepositToAddress\",\"address\":");
        jbuf_str(b, t->address);
        jbuf_puts(b, ",\"amount\":");
        jbuf_str(b, t->amount);
        jbuf_puts(b, ",\"memo\":null,\"wallet_id\":");
        jbuf_str(b, t->wallet_id);
        jbuf_puts(b, "},\"result\":null,\"fee\":null,\"initiator\":null,\"initiator_type\":\"External\"");
    }
    jbuf_printf(b, ",\"confirmed_num\":%d,\"confirming_threshold\":%d", t->confirmed, t->threshold);
    jbuf_puts(b, ",\"transaction_hash\":");
    jbuf_str(b, t->hash);
    if (t->confirmed > 0)
        jbuf_printf(b, ",\"block_info\":{\"block_number\":%lld,\"block_timestamp\":%lld,\"block_hash\":\"%016llx%016llx\"}",
                    (long long) t->block_number, (long long) t->created_ms,
                    (unsigned long long) t->block_number * 2654435761ULL, (unsigned long long) t->created_ms);
    else
        jbuf_puts(b, ",\"block_info\":null");
    jbuf_puts(b, ",\"raw_tx_info\":null,\"replacement\":null,\"category\":null,\"cobo_category\":");
    if (t->category[0]) {
        jbuf_puts(b, "[");
        jbuf_str(b, t->category);
        jbuf_puts(b, "]");
    } else {
        jbuf_puts(b, "[]");
    }
    jbuf_puts(b, ",\"description\":");
    jbuf_str(b, t->description[0] ? t->description : NULL);
    jbuf_printf(b, ",\"is_loop\":false,\"created_timestamp\":%lld,\"updated_timestamp\":%lld",
                (long long) t->created_ms, (long long) t->updated_ms);
    jbuf_puts(b, ",\"timeline\":[{\"status\":\"Confirming\",\"finished\":");
    jbuf_puts(b, strcmp(t->status, "Confirming") == 0 ? "false" : "true");
    jbuf_printf(b, ",\"finished_timestamp\":%lld}]}", (long long) t->updated_ms);
}

/* The webhook envelope around a snapshot of t. */
static char *s_event_body(const s_tx_t *t, const char *event_id, const char *type)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"event_id\":");
    jbuf_str(&b, event_id);
    jbuf_puts(&b, ",\"url\":");
    jbuf_str(&b, S.webhook_url);
    jbuf_printf(&b, ",\"created_timestamp\":%lld,\"type\":", (long long) sim_http_now_ms());
    jbuf_str(&b, type);
    jbuf_puts(&b, ",\"data\":{\"data_type\":\"Transaction\",");
    jbuf_t tx;
    jbuf_init(&tx);
    s_tx_json(&tx, t);
    jbuf_add(&b, tx.data + 1, tx.len - 1);  /* the object's fields after its '{' */
    jbuf_free(&tx);
    jbuf_puts(&b, "}");
    return jbuf_take(&b);
}

/* ---- webhook delivery ------------------------------------------------------------------------- */

/* Adds an event to tx (S.lock held). Returns its index, or -1 when the table is full. */
static int s_add_event(s_tx_t *t, const char *type)
{
    if (t->nevents >= S_MAX_EVENTS)
        return -1;
    s_event_t *e = &t->events[t->nevents];
    memset(e, 0, sizeof *e);
    s_uuid(e->event_id);
    snprintf(e->type, sizeof e->type, "%s", type);
    snprintf(e->status, sizeof e->status, "%s", t->status);
    e->confirmed = t->confirmed;
    return t->nevents++;
}

static s_job_t *s_job_new(int tx, int ev, char *body)
{
    s_job_t *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    j->tx = tx;
    j->ev = ev;
    j->body = body;
    return j;
}

static void s_job_free_chain(s_job_t *j)
{
    while (j) {
        s_job_t *n = j->then;
        free(j->body);
        free(j);
        j = n;
    }
}

/* Queues a job (S.lock held); it is due now. */
static void s_enqueue(s_job_t *j)
{
    j->due_ms = 0;
    j->next = S.queue;
    S.queue = j;
    S.njobs++;
    pthread_cond_signal(&S.wake);
}

/* Takes the due job that was queued first (S.lock held), or NULL; *wait_ms = time to the next. */
static s_job_t *s_take_due(int64_t now, int64_t *wait_ms)
{
    s_job_t **best = NULL;
    *wait_ms = 1000;
    for (s_job_t **p = &S.queue; *p; p = &(*p)->next) {
        if ((*p)->due_ms <= now)
            best = p;  /* the list is newest-first: the last due one is the oldest */
        else if ((*p)->due_ms - now < *wait_ms)
            *wait_ms = (*p)->due_ms - now;
    }
    if (!best)
        return NULL;
    s_job_t *j = *best;
    *best = j->next;
    j->next = NULL;
    S.njobs--;
    return j;
}

static size_t s_discard(char *d, size_t s, size_t n, void *a)
{
    (void) d, (void) a;
    return s * n;
}

/* POSTs one signed webhook; returns the HTTP status, or 0 when there was no answer. */
static int s_post_webhook(CURL *c, const char *body)
{
    char ts[24], sig[COBO_SIG_HEX_LEN + 1], h_ts[64], h_sig[200];
    snprintf(ts, sizeof ts, "%lld", (long long) sim_http_now_ms());
    cobo_sign_response(S.signer, body, strlen(body), ts, sig);
    snprintf(h_ts, sizeof h_ts, "Biz-Timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "Biz-Resp-Signature: %s", sig);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, h_ts);
    h = curl_slist_append(h, h_sig);
    h = curl_slist_append(h, "Expect:");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, S.webhook_url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cobo-sim-webhook");
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return (int) status;
}

static void *s_worker(void *arg)
{
    (void) arg;
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&S.lock);
    while (!S.stop) {
        int64_t wait_ms;
        s_job_t *j = s_take_due(sim_http_now_ms(), &wait_ms);
        if (!j) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (wait_ms > 200 ? 200 : wait_ms) * 1000000LL;
            ts.tv_sec += ns / 1000000000LL;
            ts.tv_nsec = ns % 1000000000LL;
            pthread_cond_timedwait(&S.wake, &S.lock, &ts);
            continue;
        }
        int drop = S.drop_webhooks || (S.drop_deposit_webhooks && strcmp(S.txs[j->tx].type, "Withdrawal") != 0);
        pthread_mutex_unlock(&S.lock);
        int code = !drop && c && S.webhook_url[0] ? s_post_webhook(c, j->body) : 0;
        pthread_mutex_lock(&S.lock);
        s_event_t *e = &S.txs[j->tx].events[j->ev];
        if (drop)
            j->attempt = S_ATTEMPTS - 1;  /* lost for good: this attempt is its last */
        e->attempts++;
        if (e->ncodes < S_ATTEMPTS)
            e->codes[e->ncodes++] = code;
        j->attempt++;
        if (code >= 200 && code < 300) {
            e->delivered++;
            e->outstanding--;
        } else if (j->attempt < S_ATTEMPTS) {
            int backoff = 100 << (j->attempt - 1);
            j->due_ms = sim_http_now_ms() + (backoff > 3000 ? 3000 : backoff);
            j->next = S.queue;
            S.queue = j;
            S.njobs++;
            continue;
        } else {
            e->given_up = 1;
            e->outstanding--;
        }
        s_job_t *then = j->then;
        free(j->body);
        free(j);
        if (then)
            s_enqueue(then);
    }
    pthread_mutex_unlock(&S.lock);
    if (c)
        curl_easy_cleanup(c);
    return NULL;
}

/* Emits an event of tx ti now (S.lock held): one job per copy, in order or shuffled. Returns
 * the jobs as an ordered chain, or NULL when the event table is full. */
static s_job_t *s_event_jobs(int ti, const char *type, int copies)
{
    s_tx_t *t = &S.txs[ti];
    int ev = s_add_event(t, type);
    if (ev < 0)
        return NULL;
    s_job_t *first = NULL, **tail = &first;
    t->events[ev].outstanding = copies + 1;
    for (int i = 0; i <= copies; i++) {
        s_job_t *j = s_job_new(ti, ev, s_event_body(t, t->events[ev].event_id, type));
        *tail = j;
        tail = &j->then;
    }
    return first;
}

/* ---- the lifecycle of a deposit -------------------------------------------------------------- */

typedef struct {
    char address[128], amount[48], token[40], chain[24], final[24], wallet[80];
    char from[72];              /* the sender; "" for a random outside address */
    char category[32];          /* cobo_category ("AutoFueling" for a Fee Station top-up), "" for none */
    int confirmations, duplicates, reorder;
} s_deposit_req_t;

static void s_index_tx(int ti);

/* ---- opening funds (S.lock held) ------------------------------------------------------------- */

/* The opening funds set for wallet/token with POST /sim/balances, or NULL: a wallet never funded
 * pays any transfer (its balance is only what its transactions add up to). */
static struct s_funds *s_funds(const char *wallet, const char *token)
{
    for (int i = 0; i < S.nfunds; i++)
        if (strcmp(S.funds[i].wallet_id, wallet) == 0 && strcmp(S.funds[i].token_id, token) == 0)
            return &S.funds[i];
    return NULL;
}

/* 1 if a funded wallet/token has less available than amount (see s_bal_add). */
static int s_short_of(const char *wallet, const char *token, const char *amount);

/* Creates the transaction and queues its lifecycle (S.lock held). Returns the tx index or -1. */
static int s_deposit(const s_deposit_req_t *r, char *err, size_t errlen)
{
    if (S.ntx >= S_MAX_TX || S.njobs + 4 * (r->confirmations + 3) * (r->duplicates + 1) > S_MAX_JOBS) {
        snprintf(err, errlen, "simulator full");
        return -1;
    }
    int ti = S.ntx++;
    s_tx_t *t = &S.txs[ti];
    memset(t, 0, sizeof *t);
    s_uuid(t->id);
    s_index_tx(ti);
    snprintf(t->cobo_id, sizeof t->cobo_id, "%llu", (unsigned long long) (s_rand() % 9000000000000000000ULL + 1000000000000000000ULL));
    snprintf(t->wallet_id, sizeof t->wallet_id, "%s", r->wallet);
    snprintf(t->chain_id, sizeof t->chain_id, "%s", r->chain);
    snprintf(t->token_id, sizeof t->token_id, "%s", r->token);
    snprintf(t->address, sizeof t->address, "%s", r->address);
    snprintf(t->amount, sizeof t->amount, "%s", r->amount);
    s_make_hash(r->chain, t->hash, sizeof t->hash);
    snprintf(t->category, sizeof t->category, "%s", r->category);
    if (r->from[0])
        snprintf(t->from, sizeof t->from, "%s", r->from);
    else
        s_make_address(r->chain, t->from, sizeof t->from);
    t->threshold = r->confirmations;
    t->block_number = 60000000 + (int64_t) (s_rand() % 1000000);
    t->created_ms = t->updated_ms = sim_http_now_ms();
    snprintf(t->status, sizeof t->status, "Confirming");

    /* the lifecycle, as Cobo sends it: created, one update per confirmation, the final status */
    s_job_t *jobs[S_MAX_EVENTS];
    int n = 0;
    jobs[n++] = s_event_jobs(ti, "wallets.transaction.created", r->duplicates);
    for (int k = 1; k <= r->confirmations && n < S_MAX_EVENTS - 3; k++) {
        t->confirmed = k;
        t->updated_ms = sim_http_now_ms();
        if (k < r->confirmations || !r->final[0])
            jobs[n++] = s_event_jobs(ti, "wallets.transaction.updated", r->duplicates);
    }
    if (r->final[0]) {
        snprintf(t->status, sizeof t->status, "%s", r->final);
        if (strcmp(r->final, "Rejected") == 0 || strcmp(r->final, "Failed") == 0)
            t->confirmed = 0;
        t->updated_ms = sim_http_now_ms();
        t->completed_ms = strcmp(r->final, "Completed") == 0 ? t->updated_ms : 0;
        jobs[n++] = s_event_jobs(ti, "wallets.transaction.updated", r->duplicates);
        jobs[n++] = s_event_jobs(ti, strcmp(r->final, "Completed") == 0 ? "wallets.transaction.succeeded"
                                                                         : "wallets.transaction.failed",
                                 r->duplicates);
    }
    /* flatten into one chain (in order) or a shuffled set */
    s_job_t *all[S_MAX_EVENTS * 16];
    int na = 0;
    for (int i = 0; i < n; i++)
        for (s_job_t *j = jobs[i]; j; j = j->then)
            if (na < (int) (sizeof all / sizeof all[0]))
                all[na++] = j;
    if (r->reorder) {
        for (int i = na - 1; i > 0; i--) {
            int k = (int) (s_rand() % (uint64_t) (i + 1));
            s_job_t *x = all[i];
            all[i] = all[k];
            all[k] = x;
        }
        for (int i = 0; i < na; i++) {
            all[i]->then = NULL;
            s_enqueue(all[i]);
        }
    } else {
        for (int i = 0; i < na; i++)
            all[i]->then = i + 1 < na ? all[i + 1] : NULL;
        if (na)
            s_enqueue(all[0]);
    }
    return ti;
}

static uint32_t s_id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char) *id) * 16777619u;
    return h ^ (h >> 15);
}

/* The index of transaction id, or -1. Constant time: the simulator answers kasa's re-confirmations
 * at benchmark rates, so it must not slow down as transactions accumulate. */
static int s_find_tx(const char *id)
{
    for (uint32_t slot = s_id_hash(id) & (S_TX_INDEX - 1);; slot = (slot + 1) & (S_TX_INDEX - 1)) {
        int v = S.tx_index[slot];
        if (v == 0)
            return -1;
        if (strcmp(S.txs[v - 1].id, id) == 0)
            return v - 1;
    }
}

static void s_index_tx(int ti)
{
    uint32_t slot = s_id_hash(S.txs[ti].id) & (S_TX_INDEX - 1);
    while (S.tx_index[slot] != 0)
        slot = (slot + 1) & (S_TX_INDEX - 1);
    S.tx_index[slot] = ti + 1;
}

/* ---- the lifecycle of a transfer (a withdrawal kasa asked for, or Cobo's own sweep) ------------ */

typedef struct {
    char request_id[80], wallet[80], src_type[24], from[72], token[40], chain[24], address[128], amount[48];
    char description[96];
} s_transfer_req_t;

/* Appends the event of t's current status to the chain *tail (S.lock held). */
static void s_chain_event(int ti, const char *type, s_job_t ***tail)
{
    s_job_t *j = s_event_jobs(ti, type, 0);
    if (!j)
        return;
    **tail = j;
    *tail = &j->then;
}

/* Creates a Withdrawal transaction and queues its statuses as signed webhooks (S.lock held):
 * Submitted → PendingScreening → PendingAuthorization → PendingSignature → Broadcasting → Confirming
 * → Completed. It stops at S.transfer_stop_at when set (a person then moves it with POST
 * /sim/transactions/{id}); S.transfer_final "Rejected" ends it after PendingAuthorization
 * (RejectedApproverAuth), "Failed" after Broadcasting (FailedOnChain); a funded wallet too short
 * fails it after Submitted (InsufficientBalance). The balances the API shows follow from the
 * transactions (s_bal_add). Returns the tx index or -1 when the simulator is full. */
static int s_transfer_start(const s_transfer_req_t *r)
{
    static const char *const steps[] = { "Submitted", "PendingScreening", "PendingAuthorization",
                                         "PendingSignature", "Broadcasting", "Confirming", "Completed" };
    if (S.ntx >= S_MAX_TX || S.njobs + 16 > S_MAX_JOBS)
        return -1;
    int ti = S.ntx++;
    s_tx_t *t = &S.txs[ti];
    memset(t, 0, sizeof *t);
    s_uuid(t->id);
    s_index_tx(ti);
    snprintf(t->cobo_id, sizeof t->cobo_id, "%llu", (unsigned long long) (s_rand() % 9000000000000000000ULL + 1000000000000000000ULL));
    snprintf(t->type, sizeof t->type, "Withdrawal");
    snprintf(t->request_id, sizeof t->request_id, "%s", r->request_id);
    snprintf(t->wallet_id, sizeof t->wallet_id, "%s", r->wallet);
    snprintf(t->src_type, sizeof t->src_type, "%s", r->src_type);
    snprintf(t->from, sizeof t->from, "%s", r->from);
    snprintf(t->chain_id, sizeof t->chain_id, "%s", r->chain);
    snprintf(t->token_id, sizeof t->token_id, "%s", r->token);
    snprintf(t->address, sizeof t->address, "%s", r->address);
    snprintf(t->amount, sizeof t->amount, "%s", r->amount);
    snprintf(t->description, sizeof t->description, "%s", r->description);
    t->threshold = 1;
    t->block_number = 60000000 + (int64_t) (s_rand() % 1000000);
    t->created_ms = t->updated_ms = sim_http_now_ms();
    int short_balance = s_short_of(r->wallet, r->token, r->amount);
    const char *final = short_balance ? "Failed" : S.transfer_final[0] ? S.transfer_final : "Completed";
    s_job_t *first = NULL, **tail = &first;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        const char *st = steps[k];
        int ends = 0;
        if (strcmp(st, "Completed") == 0 || (short_balance && k == 1)
            || (strcmp(final, "Rejected") == 0 && k == 3) || (strcmp(final, "Failed") == 0 && k == 5)) {
            st = final;
            ends = 1;
        }
        snprintf(t->status, sizeof t->status, "%s", st);
        if (ends && strcmp(st, "Completed") != 0)
            snprintf(t->sub_status, sizeof t->sub_status, "%s", short_balance ? "InsufficientBalance"
                                                               : strcmp(st, "Rejected") == 0 ? "RejectedApproverAuth"
                                                                                            : "FailedOnChain");
        if (k == 4)
            s_make_hash(r->chain, t->hash, sizeof t->hash);
        t->confirmed = strcmp(st, "Completed") == 0 ? 1 : 0;
        t->updated_ms = sim_http_now_ms();
        s_chain_event(ti, k == 0 ? "wallets.transaction.created" : "wallets.transaction.updated", &tail);
        if (ends) {
            t->completed_ms = strcmp(st, "Completed") == 0 ? t->updated_ms : 0;
            if (strcmp(st, "Completed") == 0)
                s_chain_event(ti, "wallets.transaction.succeeded", &tail);
            else
                s_chain_event(ti, "wallets.transaction.failed", &tail);
            break;
        }
        if (S.transfer_stop_at[0] && strcmp(S.transfer_stop_at, st) == 0)
            break;
    }
    if (first)
        s_enqueue(first);
    return ti;
}

/* The transaction that carries request_id, or -1 (S.lock held). */
static int s_find_request(const char *request_id)
{
    for (int i = S.ntx - 1; i >= 0; i--)
        if (S.txs[i].request_id[0] && strcmp(S.txs[i].request_id, request_id) == 0)
            return i;
    return -1;
}

/* ---- HTTP ------------------------------------------------------------------------------------- */

/* Sends body with status, signed (Biz-Timestamp, Biz-Resp-Signature) when sign is set, with one
 * extra header when hname is not NULL. */
static enum MHD_Result s_reply_hdr(struct MHD_Connection *con, unsigned status, const char *body, int sign,
                                   const char *hname, const char *hvalue)
{
    struct MHD_Response *resp = sim_http_json(body);
    if (!resp)
        return MHD_NO;
    if (hname)
        MHD_add_response_header(resp, hname, hvalue);
    if (sign) {
        char ts[24], sig[COBO_SIG_HEX_LEN + 1];
        snprintf(ts, sizeof ts, "%lld", (long long) sim_http_now_ms());
        cobo_sign_response(S.signer, body, strlen(body), ts, sig);
        pthread_mutex_lock(&S.lock);
        if (S.bad_sig > 0) {
            S.bad_sig--;
            sig[0] = sig[0] == '0' ? '1' : '0';
        }
        int underscore = S.underscore;  /* Cobo's own code also spells them with '_' */
        pthread_mutex_unlock(&S.lock);
        MHD_add_response_header(resp, underscore ? "biz_timestamp" : "Biz-Timestamp", ts);
        MHD_add_response_header(resp, underscore ? "BIZ_RESP_SIGNATURE" : "Biz-Resp-Signature", sig);
    }
    return sim_http_send(con, status, resp);
}

static enum MHD_Result s_reply(struct MHD_Connection *con, unsigned status, const char *body, int sign)
{
    return s_reply_hdr(con, status, body, sign, NULL, NULL);
}

/* An error answer as Cobo shapes it, signed, with one extra header (hname may be NULL). */
static enum MHD_Result s_error_hdr(struct MHD_Connection *con, unsigned status, int code, const char *msg,
                                   const char *hname, const char *hvalue)
{
    char id[37], body[512];
    pthread_mutex_lock(&S.lock);
    s_uuid(id);
    pthread_mutex_unlock(&S.lock);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"error_code\":%d,\"error_message\":", code);
    jbuf_str(&b, msg);
    jbuf_puts(&b, ",\"error_id\":");
    jbuf_str(&b, id);
    jbuf_puts(&b, "}");
    snprintf(body, sizeof body, "%s", b.data);
    jbuf_free(&b);
    return s_reply_hdr(con, status, body, 1, hname, hvalue);
}

static enum MHD_Result s_error(struct MHD_Connection *con, unsigned status, int code, const char *msg)
{
    return s_error_hdr(con, status, code, msg, NULL, NULL);
}

static enum MHD_Result s_reply_buf(struct MHD_Connection *con, unsigned status, jbuf_t *b, int sign)
{
    enum MHD_Result rc = s_reply(con, status, b->data ? b->data : "", sign);
    jbuf_free(b);
    return rc;
}

/* Finds key in a raw query string and form-decodes its value into out. Returns 0 or -1. */
static int s_query_get(const char *query, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t) (amp - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t k = 0;
            for (size_t i = kl + 1; i < len && k + 1 < cap; i++) {
                if (p[i] == '+') {
                    out[k++] = ' ';
                } else if (p[i] == '%' && i + 2 < len && isxdigit((unsigned char) p[i + 1])
                           && isxdigit((unsigned char) p[i + 2])) {
                    char h[3] = { p[i + 1], p[i + 2], 0 };
                    out[k++] = (char) strtol(h, NULL, 16);
                    i += 2;
                } else {
                    out[k++] = p[i];
                }
            }
            out[k] = '\0';
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return -1;
}

/* Checks Cobo Auth on an API request. Returns 0, or -1 after queueing the 401. */
static int s_check_auth(struct MHD_Connection *con, const char *method, const char *path,
                        const char *query, const sim_request_t *r, enum MHD_Result *rc)
{
    const char *key = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Biz-Api-Key");
    const char *nonce = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Biz-Api-Nonce");
    const char *sig = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Biz-Api-Signature");
    const char *why = NULL;
    uint8_t kb[32];
    if (!key || !nonce || !sig)
        why = "missing Biz-Api-Key, Biz-Api-Nonce or Biz-Api-Signature";
    else if (cobo_hex_decode(key, kb, sizeof kb) != 0 || cobo_ct_compare(kb, S.client_key.bytes, 32) != 0)
        why = "unknown API key";
    else {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(nonce, &end, 10);
        int64_t now = sim_http_now_ms();
        if (errno || !end || *end || end == nonce || n < now - S_NONCE_WINDOW_MS || n > now + S_NONCE_WINDOW_MS)
            why = "nonce is not a time in ms within five minutes";
        else if (cobo_verify_request(&S.client_key, method, path, nonce, query, r->body.data,
                                     r->body.len, sig) != 0)
            why = "signature verification failed";
    }
    if (!why)
        return 0;
    *rc = s_error(con, MHD_HTTP_UNAUTHORIZED, 2024, why);
    return -1;
}

static const char *s_segment(const char *path, const char *prefix, char *out, size_t cap,
                             const char *suffix)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return NULL;
    const char *s = path + pl;
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= cap || strcmp(s + n, suffix) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) s[i]) && !strchr("-._~", s[i]))
            return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static enum MHD_Result s_api_create_addresses(struct MHD_Connection *con, const char *wallet,
                                              const sim_request_t *r)
{
    bson_t doc;
    char jerr[64], chain[24];
    if (json_parse(r->body.data ? r->body.data : "", r->body.len, &doc, jerr, sizeof jerr) != 0) {
        bson_destroy(&doc);
        return s_error(con, 400, 2006, jerr);
    }
    const char *c = json_get_str(&doc, "chain_id");
    int64_t count = 1;
    if (json_has(&doc, "count") && json_get_i64(&doc, "count", &count) != 0)
        count = -1;
    int ok = c && strlen(c) < sizeof chain && count >= 1 && count <= 50;
    if (ok)
        snprintf(chain, sizeof chain, "%s", c);
    bson_destroy(&doc);
    if (!ok)
        return s_error(con, 400, 2006, "chain_id required, count 1..50");
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "[");
    pthread_mutex_lock(&S.lock);
    int hang = S.timeout_once;
    S.timeout_once = 0;
    int hang_ms = S.hang_ms;
    if (S.naddr + count > S_MAX_ADDR) {
        pthread_mutex_unlock(&S.lock);
        jbuf_free(&b);
        return s_error(con, 503, 2026, "simulator address table full");
    }
    for (int64_t i = 0; i < count; i++) {
        s_addr_t *a = &S.addrs[S.naddr++];
        snprintf(a->wallet_id, sizeof a->wallet_id, "%s", wallet);
        snprintf(a->chain_id, sizeof a->chain_id, "%s", chain);
        s_make_address(chain, a->address, sizeof a->address);
        jbuf_puts(&b, i ? ",{\"address\":" : "{\"address\":");
        jbuf_str(&b, a->address);
        jbuf_puts(&b, ",\"chain_id\":");
        jbuf_str(&b, chain);
        jbuf_puts(&b, ",\"memo\":null,\"path\":null,\"encoding\":null,\"pubkey\":null,\"x_only_pubkey\":null,"
                      "\"root_pubkey\":null,\"taproot_script_tree_hash\":null,\"taproot_internal_address\":null}");
    }
    pthread_mutex_unlock(&S.lock);
    jbuf_puts(&b, "]");
    if (hang)
        s_sleep_ms(hang_ms);  /* applied, but answered after the client gave up */
    return s_reply_buf(con, 201, &b, 1);
}

/* A listing's page from its query: limit (1..50, default 10) and the first entry, after cursor "a<i>"
 * (read on past entry i) or before cursor "b<i>" (the page that ends just before entry i), as
 * Cobo's opaque cursors. NULL, or what is wrong. */
static const char *s_page_window(const char *query, int *limit, int *start)
{
    char limit_s[16] = "", after[32] = "", before[32] = "";
    s_query_get(query, "limit", limit_s, sizeof limit_s);
    s_query_get(query, "after", after, sizeof after);
    s_query_get(query, "before", before, sizeof before);
    *limit = limit_s[0] ? atoi(limit_s) : 10;
    *start = 0;
    if (*limit < 1 || *limit > 50)
        return "limit must be 1..50";
    if ((after[0] && (after[0] != 'a' || !isdigit((unsigned char) after[1]))) ||
        (before[0] && (before[0] != 'b' || !isdigit((unsigned char) before[1]))))
        return "bad cursor";
    if (after[0])
        *start = atoi(after + 1) + 1;
    else if (before[0])
        *start = atoi(before + 1) - *limit > 0 ? atoi(before + 1) - *limit : 0;
    return NULL;
}

static enum MHD_Result s_api_list_addresses(struct MHD_Connection *con, const char *wallet,
                                            const char *query)
{
    char chains[256] = "";
    s_query_get(query, "chain_ids", chains, sizeof chains);
    int limit, start;
    const char *bad = s_page_window(query, &limit, &start);
    if (bad)
        return s_error(con, 400, 2006, bad);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":[");
    int n = 0, last = -1, total = 0, more = 0;
    pthread_mutex_lock(&S.lock);
    for (int i = 0; i < S.naddr; i++) {
        const s_addr_t *a = &S.addrs[i];
        if (strcmp(a->wallet_id, wallet) != 0)
            continue;
        if (chains[0]) {
            int hit = 0;
            for (char *save = NULL, *tok = strtok_r(strcpy((char[256]){ 0 }, chains), ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                hit |= strcmp(tok, a->chain_id) == 0;
            if (!hit)
                continue;
        }
        total++;
        if (i < start)
            continue;
        if (n == limit) {
            more = 1;
            continue;
        }
        jbuf_puts(&b, n ? ",{\"address\":" : "{\"address\":");
        jbuf_str(&b, a->address);
        jbuf_puts(&b, ",\"chain_id\":");
        jbuf_str(&b, a->chain_id);
        jbuf_puts(&b, ",\"memo\":null,\"path\":null,\"encoding\":null,\"pubkey\":null}");
        n++;
        last = i;
    }
    pthread_mutex_unlock(&S.lock);
    jbuf_puts(&b, "],\"pagination\":{\"before\":");
    jbuf_puts(&b, start > 0 && n ? "\"b\"" : "\"\"");
    if (more)
        jbuf_printf(&b, ",\"after\":\"a%d\"", last);
    else
        jbuf_puts(&b, ",\"after\":\"\"");
    jbuf_printf(&b, ",\"total_count\":%d}}", total);
    return s_reply_buf(con, 200, &b, 1);
}

/* 1 if value is one of the comma-separated items of list (an empty list matches everything). */
static int s_in_list(const char *list, const char *value)
{
    if (!list[0])
        return 1;
    size_t vl = strlen(value);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == vl && strncmp(p, value, n) == 0)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* GET /v2/transactions: the filters Cobo documents that apply to a deposit, sorted by creation
 * (the transaction table is in creation order; direction ASC or DESC), paged by opaque cursors
 * ("c" + a transaction id, as Cobo's are opaque object ids): `after` reads on past the cursor in
 * the listing's direction, `before` reads the page that ends just before it. pagination.after names
 * the page's last entry when more follow (else ""), pagination.before its first when some precede
 * (else ""); total_count counts every match. Without min_created_timestamp the window starts 90
 * days ago, as Cobo's does. */
static enum MHD_Result s_api_list_transactions(struct MHD_Connection *con, const char *query)
{
    char types[128] = "", statuses[256] = "", wallets[512] = "", ids[4096] = "", chains[256] = "",
         tokens[256] = "", min_s[24] = "", max_s[24] = "", limit_s[16] = "", after[96] = "", before[96] = "",
         dir[8] = "", request_id[96] = "";
    s_query_get(query, "request_id", request_id, sizeof request_id);
    s_query_get(query, "types", types, sizeof types);
    s_query_get(query, "statuses", statuses, sizeof statuses);
    s_query_get(query, "wallet_ids", wallets, sizeof wallets);
    s_query_get(query, "transaction_ids", ids, sizeof ids);
    s_query_get(query, "chain_ids", chains, sizeof chains);
    s_query_get(query, "token_ids", tokens, sizeof tokens);
    s_query_get(query, "min_created_timestamp", min_s, sizeof min_s);
    s_query_get(query, "max_created_timestamp", max_s, sizeof max_s);
    s_query_get(query, "limit", limit_s, sizeof limit_s);
    s_query_get(query, "after", after, sizeof after);
    s_query_get(query, "before", before, sizeof before);
    s_query_get(query, "direction", dir, sizeof dir);
    int limit = limit_s[0] ? atoi(limit_s) : 10;
    if (limit < 1 || limit > 50)
        return s_error(con, 400, 2006, "limit must be 1..50");
    if (dir[0] && strcmp(dir, "ASC") != 0 && strcmp(dir, "DESC") != 0)
        return s_error(con, 400, 2006, "direction must be ASC or DESC");
    if (after[0] && before[0])
        return s_error(con, 400, 2006, "give after or before, not both");
    int desc = strcmp(dir, "DESC") == 0;
    int64_t min_ms = min_s[0] ? strtoll(min_s, NULL, 10) : sim_http_now_ms() - 90LL * 86400 * 1000;
    int64_t max_ms = max_s[0] ? strtoll(max_s, NULL, 10) : INT64_MAX;
    jbuf_t b;
    jbuf_init(&b);
    pthread_mutex_lock(&S.lock);
    int cur = -1;
    if (after[0] || before[0]) {
        const char *c = after[0] ? after : before;
        cur = c[0] == 'c' ? s_find_tx(c + 1) : -1;
        if (cur < 0) {
            pthread_mutex_unlock(&S.lock);
            jbuf_free(&b);
            return s_error(con, 400, 2006, "bad cursor");
        }
    }
    int *match = malloc((size_t) (S.ntx ? S.ntx : 1) * sizeof *match);
    if (!match) {
        pthread_mutex_unlock(&S.lock);
        jbuf_free(&b);
        return s_error(con, 503, 2000, "out of memory");
    }
    /* pos: a transaction's place in the listing order */
    int nm = 0, cur_pos = cur < 0 ? -1 : desc ? S.ntx - 1 - cur : cur;
    for (int pos = 0; pos < S.ntx; pos++) {
        const s_tx_t *t = &S.txs[desc ? S.ntx - 1 - pos : pos];
        if (!s_in_list(types, t->type[0] ? t->type : "Deposit") || (request_id[0] && strcmp(request_id, t->request_id) != 0)
            || !s_in_list(statuses, t->status) || !s_in_list(wallets, t->wallet_id)
            || !s_in_list(ids, t->id) || !s_in_list(chains, t->chain_id) || !s_in_list(tokens, t->token_id)
            || t->created_ms < min_ms || t->created_ms > max_ms)
            continue;
        match[nm++] = pos;
    }
    int from = 0, to;  /* the page: match[from, to) */
    if (after[0]) {
        while (from < nm && match[from] <= cur_pos)
            from++;
        to = from + limit < nm ? from + limit : nm;
    } else if (before[0]) {
        to = 0;
        while (to < nm && match[to] < cur_pos)
            to++;
        from = to - limit > 0 ? to - limit : 0;
    } else {
        to = limit < nm ? limit : nm;
    }
    for (int k = 0; k < nm; k++)  /* positions back to table indexes */
        match[k] = desc ? S.ntx - 1 - match[k] : match[k];
    jbuf_puts(&b, "{\"data\":[");
    for (int k = from; k < to; k++) {
        if (k > from)
            jbuf_puts(&b, ",");
        s_tx_json(&b, &S.txs[match[k]]);
    }
    jbuf_puts(&b, "],\"pagination\":{\"before\":");
    if (from > 0 && to > from)
        jbuf_printf(&b, "\"c%s\"", S.txs[match[from]].id);
    else
        jbuf_puts(&b, "\"\"");
    jbuf_puts(&b, ",\"after\":");
    if (to < nm && to > from)
        jbuf_printf(&b, "\"c%s\"", S.txs[match[to - 1]].id);
    else
        jbuf_puts(&b, "\"\"");
    jbuf_printf(&b, ",\"total_count\":%d}}", nm);
    pthread_mutex_unlock(&S.lock);
    free(match);
    return s_reply_buf(con, 200, &b, 1);
}

/* Copies the string at key into out; -1 when it is missing, not a string or too long. */
static int s_need_str(const bson_t *doc, const char *key, char *out, size_t cap)
{
    const char *v = json_get_str(doc, key);
    if (!v || !*v || strlen(v) >= cap)
        return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* POST /v2/transactions/transfer (Cobo's "Transfer token"): checks the body as Cobo does, refuses a
 * request_id already used (400, error S.duplicate_code: 12009 unless set), creates the transfer and
 * answers 201 {request_id, transaction_id, status}. Faults: transfer_timeout_once (created, answered
 * after hang_ms: the client has given up), transfer_5xx_once (created, answered 503). */
static enum MHD_Result s_api_transfer(struct MHD_Connection *con, const sim_request_t *r)
{
    bson_t doc;
    char jerr[64];
    if (json_parse(r->body.data ? r->body.data : "", r->body.len, &doc, jerr, sizeof jerr) != 0) {
        bson_destroy(&doc);
        return s_error(con, 400, 2006, jerr);
    }
    s_transfer_req_t q;
    memset(&q, 0, sizeof q);
    const char *bad = NULL, *dtype = json_get_str(&doc, "destination.destination_type");
    char merr[96];
    money_atto_t amount = 0;
    if (s_need_str(&doc, "request_id", q.request_id, sizeof q.request_id) != 0)
        bad = "request_id is required";
    else if (s_need_str(&doc, "source.source_type", q.src_type, sizeof q.src_type) != 0
             || (strcmp(q.src_type, "Asset") != 0 && strcmp(q.src_type, "Org-Controlled") != 0))
        bad = "source.source_type must be Asset or Org-Controlled";
    else if (s_need_str(&doc, "source.wallet_id", q.wallet, sizeof q.wallet) != 0)
        bad = "source.wallet_id is required";
    else if (strcmp(q.src_type, "Org-Controlled") == 0 && s_need_str(&doc, "source.address", q.from, sizeof q.from) != 0)
        bad = "source.address is required for an Org-Controlled wallet on this chain";
    else if (s_need_str(&doc, "token_id", q.token, sizeof q.token) != 0 || s_token_find(q.token) < 0)
        bad = "token_id is not a supported token";
    else if (!dtype || strcmp(dtype, "Address") != 0)
        bad = "destination.destination_type must be Address";
    else if (s_need_str(&doc, "destination.account_output.address", q.address, sizeof q.address) != 0
             || (chainaddr_kind_of_token(q.token) != CHAINADDR_NONE
                 && chainaddr_check_for_token(q.token, q.address, merr, sizeof merr) != 0))
        bad = "destination.account_output.address is not a valid address of the token's chain";
    else if (s_need_str(&doc, "destination.account_output.amount", q.amount, sizeof q.amount) != 0
             || money_parse(q.amount, &amount, merr, sizeof merr) != 0 || amount == 0)
        bad = "destination.account_output.amount must be a positive decimal string";
    const char *desc = json_get_str(&doc, "description");
    snprintf(q.description, sizeof q.description, "%s", desc ? desc : "");
    bson_destroy(&doc);
    if (bad)
        return s_error(con, 400, 2006, bad);
    snprintf(q.chain, sizeof q.chain, "%s", s_tokens[s_token_find(q.token)].chain);

    pthread_mutex_lock(&S.lock);
    if (s_find_request(q.request_id) >= 0) {
        int code = S.duplicate_code ? S.duplicate_code : 12009;
        pthread_mutex_unlock(&S.lock);
        return s_error(con, 400, code, "Duplicate request_id: a transaction with this request_id exists");
    }
    int ti = s_transfer_start(&q);
    char id[40] = "", status[24] = "Submitted";
    if (ti >= 0)
        snprintf(id, sizeof id, "%s", S.txs[ti].id);
    int hang = S.transfer_timeout_once, fail = S.transfer_5xx_once, hang_ms = S.hang_ms;
    S.transfer_timeout_once = S.transfer_5xx_once = 0;
    pthread_mutex_unlock(&S.lock);
    if (ti < 0)
        return s_error(con, 503, 2026, "simulator full");
    if (fail)
        return s_error(con, 503, 2026, "service temporarily unavailable (injected after creating)");
    if (hang)
        s_sleep_ms(hang_ms);  /* created, but answered after the client gave up */
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"request_id\":");
    jbuf_str(&b, q.request_id);
    jbuf_puts(&b, ",\"transaction_id\":");
    jbuf_str(&b, id);
    jbuf_puts(&b, ",\"status\":");
    jbuf_str(&b, status);
    jbuf_puts(&b, "}");
    return s_reply_buf(con, 201, &b, 1);
}

/* ---- balances ---------------------------------------------------------------------------------- */

/* A balance as the API shows it, summed exactly from the wallet's transactions: Completed deposits
 * come in, deposits still on their way (Pending, Confirming, Processing) are pending, Completed
 * withdrawals go out, withdrawals under way are locked; available is in - out - locked (never below
 * zero), total is available + locked + pending; nothing is frozen. */
typedef struct {
    char name[128];                 /* the token id or the address */
    money_atto_t in, coming, out, held;
} s_bal_t;

/* Adds transaction t to the sum named name in bal[0..*n) (at most cap sums). Under S.lock. */
static void s_bal_add(s_bal_t *bal, int *n, int cap, const char *name, const s_tx_t *t)
{
    money_atto_t a;
    int done = strcmp(t->status, "Completed") == 0;
    int dead = strcmp(t->status, "Failed") == 0 || strcmp(t->status, "Rejected") == 0;
    int withdrawal = strcmp(t->type, "Withdrawal") == 0;
    if (dead || !name[0] || money_parse(t->amount, &a, NULL, 0) != 0)
        return;
    int i = 0;
    while (i < *n && strcmp(bal[i].name, name) != 0)
        i++;
    if (i == *n) {
        if (*n == cap)
            return;
        memset(&bal[i], 0, sizeof bal[i]);
        snprintf(bal[i].name, sizeof bal[i].name, "%s", name);
        (*n)++;
    }
    money_atto_t *sum = withdrawal ? (done ? &bal[i].out : &bal[i].held) : (done ? &bal[i].in : &bal[i].coming);
    *sum += a;
}

/* Adds opening funds to the sum named name (as coins that came in). Under S.lock. */
static void s_bal_fund(s_bal_t *bal, int *n, int cap, const char *name, money_atto_t amount)
{
    static s_tx_t t;   /* a stand-in Completed deposit of that amount (under S.lock; too big for a stack) */
    memset(&t, 0, sizeof t);
    snprintf(t.status, sizeof t.status, "Completed");
    if (money_format(amount, t.amount, sizeof t.amount) == 0)
        s_bal_add(bal, n, cap, name, &t);
}

/* What funds f has available now: its opening funds and its wallet's transactions in its token. */
static money_atto_t s_available(const struct s_funds *f)
{
    const char *wallet = f->wallet_id, *token = f->token_id;
    s_bal_t bal;
    memset(&bal, 0, sizeof bal);
    int n = 0;
    for (int i = 0; i < S.ntx; i++)
        if (strcmp(S.txs[i].wallet_id, wallet) == 0 && strcmp(S.txs[i].token_id, token) == 0)
            s_bal_add(&bal, &n, 1, token, &S.txs[i]);
    s_bal_fund(&bal, &n, 1, token, f->amount);
    money_atto_t spent = bal.out + bal.held;
    return bal.in > spent ? bal.in - spent : 0;
}

static int s_short_of(const char *wallet, const char *token, const char *amount)
{
    struct s_funds *f = s_funds(wallet, token);
    money_atto_t want;
    return f && money_parse(amount, &want, NULL, 0) == 0 && s_available(f) < want;
}

static void s_bal_json(jbuf_t *b, const char *key, const s_bal_t *x)
{
    money_atto_t spent = x->out + x->held;
    money_atto_t available = x->in > spent ? x->in - spent : 0;
    char total[64], avail[64], pending[64], locked[64];
    money_format(available + x->held + x->coming, total, sizeof total);
    money_format(available, avail, sizeof avail);
    money_format(x->coming, pending, sizeof pending);
    money_format(x->held, locked, sizeof locked);
    jbuf_printf(b, "{\"%s\":", key);
    jbuf_str(b, x->name);
    jbuf_printf(b, ",\"balance\":{\"total\":\"%s\",\"available\":\"%s\",\"pending\":\"%s\",\"locked\":\"%s\","
                   "\"frozen\":\"0\"}}", total, avail, pending, locked);
}

/* One page of bal[0..n) as {data, pagination} (s_page_window). */
static enum MHD_Result s_bal_page(struct MHD_Connection *con, const char *query, const char *key, const s_bal_t *bal,
                                  int n)
{
    int limit, start;
    const char *bad = s_page_window(query, &limit, &start);
    if (bad)
        return s_error(con, 400, 2006, bad);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":[");
    int end = start + limit < n ? start + limit : n;
    for (int i = start; i < end; i++) {
        jbuf_puts(&b, i > start ? "," : "");
        s_bal_json(&b, key, &bal[i]);
    }
    jbuf_puts(&b, "],\"pagination\":{");
    if (start > 0 && end > start)
        jbuf_printf(&b, "\"before\":\"b%d\"", start);
    else
        jbuf_puts(&b, "\"before\":\"\"");
    if (end < n)
        jbuf_printf(&b, ",\"after\":\"a%d\"", end - 1);
    else
        jbuf_puts(&b, ",\"after\":\"\"");
    jbuf_printf(&b, ",\"total_count\":%d}}", n);
    return s_reply_buf(con, 200, &b, 1);
}

#define S_MAX_BAL 4096

/* GET /v2/wallets/{wallet_id}/tokens: each token's balance in the wallet. */
static enum MHD_Result s_api_token_balances(struct MHD_Connection *con, const char *wallet, const char *query)
{
    s_bal_t *bal = calloc(S_MAX_BAL, sizeof *bal);
    if (!bal)
        return s_error(con, 503, 2026, "simulator out of memory");
    int n = 0;
    pthread_mutex_lock(&S.lock);
    for (int i = 0; i < S.ntx; i++)
        if (strcmp(S.txs[i].wallet_id, wallet) == 0)
            s_bal_add(bal, &n, S_MAX_BAL, S.txs[i].token_id, &S.txs[i]);
    for (int i = 0; i < S.nfunds; i++)
        if (strcmp(S.funds[i].wallet_id, wallet) == 0)
            s_bal_fund(bal, &n, S_MAX_BAL, S.funds[i].token_id, S.funds[i].amount);
    pthread_mutex_unlock(&S.lock);
    enum MHD_Result rc = s_bal_page(con, query, "token_id", bal, n);
    free(bal);
    return rc;
}

/* GET /v2/wallets/{wallet_id}/tokens/{token_id}?addresses=A,B: the token's balance per address. */
static enum MHD_Result s_api_address_balances(struct MHD_Connection *con, const char *wallet, const char *token,
                                              const char *query)
{
    char addresses[4096] = "";
    s_query_get(query, "addresses", addresses, sizeof addresses);
    if (s_token_find(token) < 0)
        return s_error(con, 404, 12002, "token not found");
    s_bal_t *bal = calloc(S_MAX_BAL, sizeof *bal);
    if (!bal)
        return s_error(con, 503, 2026, "simulator out of memory");
    int n = 0;
    pthread_mutex_lock(&S.lock);
    for (int i = 0; i < S.ntx; i++) {
        const s_tx_t *t = &S.txs[i];
        const char *at = strcmp(t->type, "Withdrawal") == 0 ? t->from : t->address;   /* whose balance it moves */
        if (strcmp(t->wallet_id, wallet) == 0 && strcmp(t->token_id, token) == 0 && s_in_list(addresses, at))
            s_bal_add(bal, &n, S_MAX_BAL, at, t);
    }
    pthread_mutex_unlock(&S.lock);
    enum MHD_Result rc = s_bal_page(con, query, "address", bal, n);
    free(bal);
    return rc;
}

/* "/v2/wallets/{wallet}/tokens/{token}": 1 with wallet and token copied (each a safe segment), or 0. */
static int s_wallet_token(const char *path, char *wallet, size_t wcap, char *token, size_t tcap)
{
    if (strncmp(path, "/v2/wallets/", 12) != 0)
        return 0;
    const char *p = path + 12;
    size_t n = strcspn(p, "/");
    char head[128];
    if (n == 0 || n + 9 >= sizeof head)
        return 0;
    snprintf(head, sizeof head, "/%.*s/tokens", (int) n, p);
    return s_segment(head, "/", wallet, wcap, "/tokens") && s_segment(p + n, "/tokens/", token, tcap, "");
}

static enum MHD_Result s_api(struct MHD_Connection *con, const char *method, const char *path,
                             const char *query, sim_request_t *r)
{
    enum MHD_Result rc;
    if (s_check_auth(con, method, path, query, r, &rc) != 0)
        return rc;
    pthread_mutex_lock(&S.lock);
    int delay = S.delay_ms;
    int limited = S.rate_limit_next > 0;
    if (limited) {
        S.rate_limit_next--;
        S.rate_limited++;
    }
    int fail = !limited && (S.fail_next > 0 || (S.fail_pct > 0 && (int) (s_rand() % 100) < S.fail_pct));
    if (S.fail_next > 0 && fail)
        S.fail_next--;
    pthread_mutex_unlock(&S.lock);
    if (delay)
        s_sleep_ms(delay);
    if (limited)
        return s_error_hdr(con, 429, 2010, "rate limit exceeded (injected)", "Retry-After", "1");
    if (fail)
        return s_error(con, 503, 2026, "service temporarily unavailable (injected)");

    char id[80];
    if (strcmp(method, "GET") == 0 && strcmp(path, "/v2/transactions") == 0)
        return s_api_list_transactions(con, query);
    if (strcmp(method, "POST") == 0 && strcmp(path, "/v2/transactions/transfer") == 0)
        return s_api_transfer(con, r);
    if (strcmp(method, "GET") == 0 && s_segment(path, "/v2/transactions/", id, sizeof id, "")) {
        pthread_mutex_lock(&S.lock);
        int ti = s_find_tx(id);
        jbuf_t b;
        jbuf_init(&b);
        if (ti >= 0 && S.confirming_lag_ms > 0 && S.txs[ti].completed_ms &&
            sim_http_now_ms() < S.txs[ti].completed_ms + S.confirming_lag_ms) {
            static s_tx_t lagging;   /* under S.lock; too big for a thread's stack */
            lagging = S.txs[ti];
            snprintf(lagging.status, sizeof lagging.status, "Confirming");
            lagging.confirmed = lagging.threshold > 1 ? lagging.threshold - 1 : 0;
            s_tx_json(&b, &lagging);
        } else if (ti >= 0) {
            s_tx_json(&b, &S.txs[ti]);
        }
        pthread_mutex_unlock(&S.lock);
        if (ti < 0) {
            jbuf_free(&b);
            return s_error(con, 404, 12002, "transaction not found");
        }
        return s_reply_buf(con, 200, &b, 1);
    }
    if (strcmp(method, "GET") == 0 && s_segment(path, "/v2/wallets/tokens/", id, sizeof id, "")) {
        int k = s_token_find(id);
        if (k < 0)
            return s_error(con, 404, 12002, "token not found");
        jbuf_t b;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"token_id\":");
        jbuf_str(&b, s_tokens[k].token);
        jbuf_puts(&b, ",\"chain_id\":");
        jbuf_str(&b, s_tokens[k].chain);
        jbuf_puts(&b, ",\"asset_id\":");
        jbuf_str(&b, s_tokens[k].symbol);
        jbuf_puts(&b, ",\"symbol\":");
        jbuf_str(&b, s_tokens[k].symbol);
        jbuf_printf(&b, ",\"decimal\":%d,\"can_deposit\":true,\"can_withdraw\":true,"
                        "\"dust_threshold\":\"0\",\"custodial_minimum_deposit_threshold\":\"1\"}",
                    s_tokens[k].decimal);
        return s_reply_buf(con, 200, &b, 1);
    }
    char token[48];
    if (strcmp(method, "GET") == 0 && s_segment(path, "/v2/wallets/", id, sizeof id, "/tokens"))
        return s_api_token_balances(con, id, query);
    if (strcmp(method, "GET") == 0 && s_wallet_token(path, id, sizeof id, token, sizeof token))
        return s_api_address_balances(con, id, token, query);
    if (s_segment(path, "/v2/wallets/", id, sizeof id, "/addresses")) {
        if (strcmp(method, "POST") == 0)
            return s_api_create_addresses(con, id, r);
        if (strcmp(method, "GET") == 0)
            return s_api_list_addresses(con, id, query);
    }
    return s_error(con, 404, 2002, "no such API");
}

/* ---- control API ------------------------------------------------------------------------------ */

/* Parses a control request's JSON body into *doc: 0 (the caller destroys doc), or -1. */
static int s_body_json(const sim_request_t *r, bson_t *doc)
{
    char jerr[64];
    if (json_parse(r->body.data ? r->body.data : "", r->body.len, doc, jerr, sizeof jerr) != 0) {
        bson_destroy(doc);
        return -1;
    }
    return 0;
}

static void s_copy_field(const bson_t *doc, const char *key, char *out, size_t cap, const char *dflt)
{
    const char *v = json_get_str(doc, key);
    snprintf(out, cap, "%s", v ? v : dflt);
}

static enum MHD_Result s_ctl_deposit(struct MHD_Connection *con, const sim_request_t *r)
{
    bson_t doc;
    if (s_body_json(r, &doc) != 0)
        return s_reply(con, 400, "{\"error\":\"malformed JSON\"}", 0);
    s_deposit_req_t q;
    memset(&q, 0, sizeof q);
    s_copy_field(&doc, "address", q.address, sizeof q.address, "");
    s_copy_field(&doc, "amount", q.amount, sizeof q.amount, "");
    s_copy_field(&doc, "token_id", q.token, sizeof q.token, "TRON_USDT");
    int k = s_token_find(q.token);
    s_copy_field(&doc, "chain_id", q.chain, sizeof q.chain, k >= 0 ? s_tokens[k].chain : "TRON");
    s_copy_field(&doc, "wallet_id", q.wallet, sizeof q.wallet, "");
    s_copy_field(&doc, "from", q.from, sizeof q.from, "");
    s_copy_field(&doc, "cobo_category", q.category, sizeof q.category, "");
    if (json_has(&doc, "final"))
        s_copy_field(&doc, "final", q.final, sizeof q.final, "");  /* null: stays Confirming */
    else
        snprintf(q.final, sizeof q.final, "Completed");
    int64_t v;
    q.confirmations = json_get_i64(&doc, "confirmations", &v) == 0 ? (int) v : 3;
    q.duplicates = json_get_i64(&doc, "duplicates", &v) == 0 ? (int) v : S.dup;
    bson_iter_t it;
    q.reorder = S.reorder;
    if (bson_iter_init_find(&it, &doc, "reorder") && BSON_ITER_HOLDS_BOOL(&it))
        q.reorder = bson_iter_bool(&it);
    bson_destroy(&doc);
    const char *bad = NULL;
    if (!q.address[0] || !q.amount[0])
        bad = "address and amount are required";
    else if (q.confirmations < 1 || q.confirmations > 40)
        bad = "confirmations must be 1..40";
    else if (q.duplicates < 0 || q.duplicates > 10)
        bad = "duplicates must be 0..10";
    else if (q.final[0] && strcmp(q.final, "Completed") && strcmp(q.final, "Failed") && strcmp(q.final, "Rejected"))
        bad = "final must be Completed, Failed, Rejected or null";
    if (bad) {
        jbuf_t b;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"error\":");
        jbuf_str(&b, bad);
        jbuf_puts(&b, "}");
        return s_reply_buf(con, 400, &b, 0);
    }
    char err[64], id[40];
    pthread_mutex_lock(&S.lock);
    if (!q.wallet[0]) {  /* the wallet that made the address, if it was made here */
        for (int i = 0; i < S.naddr; i++)
            if (strcmp(S.addrs[i].address, q.address) == 0) {
                snprintf(q.wallet, sizeof q.wallet, "%s", S.addrs[i].wallet_id);
                break;
            }
        if (!q.wallet[0])
            snprintf(q.wallet, sizeof q.wallet, "00000000-0000-4000-8000-000000000001");
    }
    int ti = s_deposit(&q, err, sizeof err);
    if (ti >= 0)
        snprintf(id, sizeof id, "%s", S.txs[ti].id);
    pthread_mutex_unlock(&S.lock);
    if (ti < 0)
        return s_reply(con, 503, "{\"error\":\"simulator full\"}", 0);
    char body[96];
    snprintf(body, sizeof body, "{\"transaction_id\":\"%s\"}", id);
    return s_reply(con, 201, body, 0);
}

static enum MHD_Result s_ctl_deposits(struct MHD_Connection *con)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "[");
    pthread_mutex_lock(&S.lock);
    for (int i = 0; i < S.ntx; i++) {
        const s_tx_t *t = &S.txs[i];
        jbuf_puts(&b, i ? ",{\"transaction_id\":" : "{\"transaction_id\":");
        jbuf_str(&b, t->id);
        jbuf_puts(&b, ",\"address\":");
        jbuf_str(&b, t->address);
        jbuf_puts(&b, ",\"amount\":");
        jbuf_str(&b, t->amount);
        jbuf_puts(&b, ",\"token_id\":");
        jbuf_str(&b, t->token_id);
        jbuf_puts(&b, ",\"status\":");
        jbuf_str(&b, t->status);
        int pending = 0;
        jbuf_puts(&b, ",\"events\":[");
        for (int e = 0; e < t->nevents; e++) {
            const s_event_t *ev = &t->events[e];
            jbuf_puts(&b, e ? ",{\"event_id\":" : "{\"event_id\":");
            jbuf_str(&b, ev->event_id);
            jbuf_puts(&b, ",\"type\":");
            jbuf_str(&b, ev->type);
            jbuf_puts(&b, ",\"status\":");
            jbuf_str(&b, ev->status);
            jbuf_printf(&b, ",\"confirmed_num\":%d,\"attempts\":%d,\"delivered\":%d,\"given_up\":%s,\"codes\":[",
                        ev->confirmed, ev->attempts, ev->delivered, ev->given_up ? "true" : "false");
            for (int c = 0; c < ev->ncodes; c++)
                jbuf_printf(&b, c ? ",%d" : "%d", ev->codes[c]);
            jbuf_puts(&b, "]}");
            pending |= ev->outstanding > 0;   /* every copy, not just the first to arrive */
        }
        jbuf_printf(&b, "],\"delivery_pending\":%s}", pending ? "true" : "false");
    }
    pthread_mutex_unlock(&S.lock);
    jbuf_puts(&b, "]");
    return s_reply_buf(con, 200, &b, 0);
}

static enum MHD_Result s_ctl_change(struct MHD_Connection *con, const char *id, const sim_request_t *r)
{
    bson_t doc;
    if (s_body_json(r, &doc) != 0)
        return s_reply(con, 400, "{\"error\":\"malformed JSON\"}", 0);
    bson_iter_t it;
    int notify = !(bson_iter_init_find(&it, &doc, "notify") && BSON_ITER_HOLDS_BOOL(&it) && !bson_iter_bool(&it));
    pthread_mutex_lock(&S.lock);
    int ti = s_find_tx(id);
    if (ti >= 0) {
        s_tx_t *t = &S.txs[ti];
        const char *st = json_get_str(&doc, "status");
        int64_t v;
        if (st) {
            if (strcmp(st, "Completed") == 0 && strcmp(t->status, "Completed") != 0)
                t->completed_ms = sim_http_now_ms();
            else if (strcmp(st, "Completed") != 0)
                t->completed_ms = 0;
            snprintf(t->status, sizeof t->status, "%s", st);
        }
        if (json_has(&doc, "sub_status"))
            s_copy_field(&doc, "sub_status", t->sub_status, sizeof t->sub_status, "");
        if (json_get_i64(&doc, "confirmed_num", &v) == 0 && v >= 0 && v < 1000000)
            t->confirmed = (int) v;
        if (json_get_str(&doc, "amount"))
            s_copy_field(&doc, "amount", t->amount, sizeof t->amount, "");
        t->updated_ms = sim_http_now_ms();
        if (notify) {
            s_job_t *j = s_event_jobs(ti, "wallets.transaction.updated", 0);
            if (j)
                s_enqueue(j);
        }
    }
    pthread_mutex_unlock(&S.lock);
    bson_destroy(&doc);
    if (ti < 0)
        return s_reply(con, 404, "{\"error\":\"no such transaction\"}", 0);
    return s_reply(con, 200, "{\"ok\":true}", 0);
}

/* The transfer faults of a POST /sim/faults body (S.lock held): transfer_timeout_once,
 * transfer_5xx_once, duplicate_code (12009 or 30001), transfer_final ("Completed", "Failed",
 * "Rejected", "" for the default), transfer_stop_at (a status, "" for none). */
static void s_transfer_faults(const bson_t *doc)
{
    bson_iter_t it;
    int64_t v;
    if (bson_iter_init_find(&it, doc, "transfer_timeout_once") && BSON_ITER_HOLDS_BOOL(&it))
        S.transfer_timeout_once = bson_iter_bool(&it);
    if (bson_iter_init_find(&it, doc, "transfer_5xx_once") && BSON_ITER_HOLDS_BOOL(&it))
        S.transfer_5xx_once = bson_iter_bool(&it);
    if (json_get_i64(doc, "duplicate_code", &v) == 0 && (v == 12009 || v == 30001))
        S.duplicate_code = (int) v;
    const char *f = json_get_str(doc, "transfer_final");
    if (f && (!*f || strcmp(f, "Completed") == 0 || strcmp(f, "Failed") == 0 || strcmp(f, "Rejected") == 0))
        snprintf(S.transfer_final, sizeof S.transfer_final, "%s", f);
    const char *stop = json_get_str(doc, "transfer_stop_at");
    if (stop)
        snprintf(S.transfer_stop_at, sizeof S.transfer_stop_at, "%s", stop);
}

static enum MHD_Result s_ctl_faults(struct MHD_Connection *con, const sim_request_t *r)
{
    bson_t doc;
    char jerr[64];
    if (r->body.len && json_parse(r->body.data, r->body.len, &doc, jerr, sizeof jerr) != 0) {
        bson_destroy(&doc);
        return s_reply(con, 400, "{\"error\":\"malformed JSON\"}", 0);
    }
    if (!r->body.len)
        bson_init(&doc);
    bson_iter_t it;
    int64_t v;
    pthread_mutex_lock(&S.lock);
    if (bson_iter_init_find(&it, &doc, "create_address_timeout_once") && BSON_ITER_HOLDS_BOOL(&it))
        S.timeout_once = bson_iter_bool(&it);
    if (bson_iter_init_find(&it, &doc, "bad_signature_once") && BSON_ITER_HOLDS_BOOL(&it))
        S.bad_sig = bson_iter_bool(&it) ? 1 : 0;
    if (bson_iter_init_find(&it, &doc, "underscore_headers") && BSON_ITER_HOLDS_BOOL(&it))
        S.underscore = bson_iter_bool(&it);
    if (json_get_i64(&doc, "bad_signatures", &v) == 0 && v >= 0 && v <= 1000)
        S.bad_sig = (int) v;
    if (json_get_i64(&doc, "fail_next", &v) == 0 && v >= 0 && v <= 1000)
        S.fail_next = (int) v;
    if (json_get_i64(&doc, "hang_ms", &v) == 0 && v >= 0 && v <= 60000)
        S.hang_ms = (int) v;
    if (json_get_i64(&doc, "fail_rate_pct", &v) == 0 && v >= 0 && v <= 100)
        S.fail_pct = (int) v;
    if (json_get_i64(&doc, "delay_ms", &v) == 0 && v >= 0 && v <= 60000)
        S.delay_ms = (int) v;
    if (json_get_i64(&doc, "confirming_lag_ms", &v) == 0 && v >= 0 && v <= 3600000)
        S.confirming_lag_ms = (int) v;
    if (bson_iter_init_find(&it, &doc, "drop_webhooks") && BSON_ITER_HOLDS_BOOL(&it))
        S.drop_webhooks = bson_iter_bool(&it);
    if (bson_iter_init_find(&it, &doc, "drop_deposit_webhooks") && BSON_ITER_HOLDS_BOOL(&it))
        S.drop_deposit_webhooks = bson_iter_bool(&it);
    if (json_get_i64(&doc, "rate_limit_next", &v) == 0 && v >= 0 && v <= 1000)
        S.rate_limit_next = (int) v;
    s_transfer_faults(&doc);
    char body[448];
    snprintf(body, sizeof body,
             "{\"create_address_timeout_once\":%s,\"bad_signatures\":%d,\"fail_next\":%d,\"hang_ms\":%d,"
             "\"fail_rate_pct\":%d,\"delay_ms\":%d,\"underscore_headers\":%s,\"confirming_lag_ms\":%d,"
             "\"drop_webhooks\":%s,\"rate_limit_next\":%d,\"rate_limited\":%d}",
             S.timeout_once ? "true" : "false", S.bad_sig, S.fail_next, S.hang_ms, S.fail_pct, S.delay_ms,
             S.underscore ? "true" : "false", S.confirming_lag_ms, S.drop_webhooks ? "true" : "false",
             S.rate_limit_next, S.rate_limited);
    pthread_mutex_unlock(&S.lock);
    bson_destroy(&doc);
    return s_reply(con, 200, body, 0);
}

/* POST /sim/sweep {"address","token_id","amount","to","wallet_id","deposit_leg"}: Cobo's own sweep
 * of a deposit address: a Withdrawal (no request_id of ours, source the deposit address, destination
 * account_output the sweep-to address `to`, made up when absent) going through its statuses, and
 * when deposit_leg (default true) the Deposit Cobo records for the sweep-to address, from the
 * deposit address. -> 201 {"transaction_id","deposit_transaction_id","to"} */
static enum MHD_Result s_ctl_sweep(struct MHD_Connection *con, const sim_request_t *r)
{
    bson_t doc;
    char jerr[64];
    if (s_body_json(r, &doc) != 0)
        return s_reply(con, 400, "{\"error\":\"malformed JSON\"}", 0);
    s_transfer_req_t q;
    memset(&q, 0, sizeof q);
    char to[72] = "";
    s_copy_field(&doc, "address", q.from, sizeof q.from, "");
    s_copy_field(&doc, "token_id", q.token, sizeof q.token, "TRON_USDT");
    s_copy_field(&doc, "amount", q.amount, sizeof q.amount, "");
    s_copy_field(&doc, "to", to, sizeof to, "");
    s_copy_field(&doc, "wallet_id", q.wallet, sizeof q.wallet, "00000000-0000-4000-8000-000000000001");
    bson_iter_t it;
    int deposit_leg = !(bson_iter_init_find(&it, &doc, "deposit_leg") && BSON_ITER_HOLDS_BOOL(&it)
                        && !bson_iter_bool(&it));
    bson_destroy(&doc);
    int k = s_token_find(q.token);
    money_atto_t v;
    if (!q.from[0] || k < 0 || money_parse(q.amount, &v, jerr, sizeof jerr) != 0)
        return s_reply(con, 400, "{\"error\":\"address, a known token_id and amount are required\"}", 0);
    snprintf(q.chain, sizeof q.chain, "%s", s_tokens[k].chain);
    snprintf(q.src_type, sizeof q.src_type, "Org-Controlled");
    snprintf(q.description, sizeof q.description, "Auto-sweep");
    pthread_mutex_lock(&S.lock);
    if (!to[0])
        s_make_address(q.chain, to, sizeof to);
    snprintf(q.address, sizeof q.address, "%s", to);
    char final_saved[24], stop_saved[32];  /* a sweep is not a transfer of kasa's: no transfer fault */
    memcpy(final_saved, S.transfer_final, sizeof final_saved);
    memcpy(stop_saved, S.transfer_stop_at, sizeof stop_saved);
    S.transfer_final[0] = S.transfer_stop_at[0] = '\0';
    int ti = s_transfer_start(&q), di = -1;
    memcpy(S.transfer_final, final_saved, sizeof final_saved);
    memcpy(S.transfer_stop_at, stop_saved, sizeof stop_saved);
    char err[64], id[40] = "", did[40] = "";
    if (ti >= 0 && deposit_leg) {
        s_deposit_req_t d;
        memset(&d, 0, sizeof d);
        snprintf(d.address, sizeof d.address, "%s", to);
        snprintf(d.amount, sizeof d.amount, "%s", q.amount);
        snprintf(d.token, sizeof d.token, "%s", q.token);
        snprintf(d.chain, sizeof d.chain, "%s", q.chain);
        snprintf(d.final, sizeof d.final, "Completed");
        snprintf(d.wallet, sizeof d.wallet, "%s", q.wallet);
        snprintf(d.from, sizeof d.from, "%s", q.from);
        d.confirmations = 1;
        di = s_deposit(&d, err, sizeof err);
        if (di >= 0)   /* out by the Withdrawal, in by this leg: the wallet's balance is unchanged */
            snprintf(did, sizeof did, "%s", S.txs[di].id);
    }
    if (ti >= 0)
        snprintf(id, sizeof id, "%s", S.txs[ti].id);
    pthread_mutex_unlock(&S.lock);
    if (ti < 0 || (deposit_leg && di < 0))
        return s_reply(con, 503, "{\"error\":\"simulator full\"}", 0);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"transaction_id\":");
    jbuf_str(&b, id);
    jbuf_puts(&b, ",\"deposit_transaction_id\":");
    jbuf_str(&b, did[0] ? did : NULL);
    jbuf_puts(&b, ",\"to\":");
    jbuf_str(&b, to);
    jbuf_puts(&b, "}");
    return s_reply_buf(con, 201, &b, 0);
}

/* POST /sim/balances {"wallet_id","token_id","amount"}: the wallet's opening funds in the token. The
 * API's balances add them to what the transactions add up to, and a transfer the wallet cannot pay
 * then fails (InsufficientBalance). GET /sim/balances: [{"wallet_id","token_id","amount"}], each
 * funded wallet/token's available amount now. */
static enum MHD_Result s_ctl_funds(struct MHD_Connection *con, const char *method, const sim_request_t *r)
{
    if (strcmp(method, "GET") == 0) {
        jbuf_t b;
        jbuf_init(&b);
        jbuf_puts(&b, "[");
        pthread_mutex_lock(&S.lock);
        for (int i = 0; i < S.nfunds; i++) {
            char amount[64];
            money_format(s_available(&S.funds[i]), amount, sizeof amount);
            jbuf_puts(&b, i ? ",{\"wallet_id\":" : "{\"wallet_id\":");
            jbuf_str(&b, S.funds[i].wallet_id);
            jbuf_puts(&b, ",\"token_id\":");
            jbuf_str(&b, S.funds[i].token_id);
            jbuf_puts(&b, ",\"amount\":");
            jbuf_str(&b, amount);
            jbuf_puts(&b, "}");
        }
        pthread_mutex_unlock(&S.lock);
        jbuf_puts(&b, "]");
        return s_reply_buf(con, 200, &b, 0);
    }
    bson_t doc;
    char jerr[64], wallet[80], token[40], amount[48];
    money_atto_t v;
    if (s_body_json(r, &doc) != 0)
        return s_reply(con, 400, "{\"error\":\"malformed JSON\"}", 0);
    int ok = s_need_str(&doc, "wallet_id", wallet, sizeof wallet) == 0
             && s_need_str(&doc, "token_id", token, sizeof token) == 0
             && s_need_str(&doc, "amount", amount, sizeof amount) == 0 && money_parse(amount, &v, jerr, sizeof jerr) == 0;
    bson_destroy(&doc);
    if (!ok)
        return s_reply(con, 400, "{\"error\":\"wallet_id, token_id and a decimal amount are required\"}", 0);
    pthread_mutex_lock(&S.lock);
    struct s_funds *f = s_funds(wallet, token);
    if (!f && S.nfunds < (int) (sizeof S.funds / sizeof S.funds[0])) {
        f = &S.funds[S.nfunds++];
        snprintf(f->wallet_id, sizeof f->wallet_id, "%s", wallet);
        snprintf(f->token_id, sizeof f->token_id, "%s", token);
    }
    if (f)
        f->amount = v;
    pthread_mutex_unlock(&S.lock);
    return f ? s_reply(con, 200, "{\"ok\":true}", 0) : s_reply(con, 503, "{\"error\":\"funds table full\"}", 0);
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *con, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **req_cls)
{
    (void) cls, (void) url, (void) version;
    enum MHD_Result rc;
    sim_request_t *r = sim_http_body(req_cls, upload, upload_size, S_MAX_BODY, &rc);
    if (!r)
        return rc;
    if (r->too_big)
        return s_error(con, 413, 2006, "body too large");
    char path[512];
    const char *q = strchr(r->uri, '?');
    size_t pl = q ? (size_t) (q - r->uri) : strlen(r->uri);
    if (pl >= sizeof path)
        return s_error(con, 414, 2006, "URI too long");
    memcpy(path, r->uri, pl);
    path[pl] = '\0';
    const char *query = q ? q + 1 : "";

    if (strncmp(path, "/v2/", 4) == 0)
        return s_api(con, method, path, query, r);
    char id[80];
    if (strcmp(method, "POST") == 0 && strcmp(path, "/sim/deposit") == 0)
        return s_ctl_deposit(con, r);
    if (strcmp(method, "GET") == 0 && strcmp(path, "/sim/deposits") == 0)
        return s_ctl_deposits(con);
    if (strcmp(method, "POST") == 0 && strcmp(path, "/sim/faults") == 0)
        return s_ctl_faults(con, r);
    if (strcmp(method, "POST") == 0 && strcmp(path, "/sim/sweep") == 0)
        return s_ctl_sweep(con, r);
    if (strcmp(path, "/sim/balances") == 0)
        return s_ctl_funds(con, method, r);
    if (strcmp(method, "POST") == 0 && s_segment(path, "/sim/transactions/", id, sizeof id, ""))
        return s_ctl_change(con, id, r);
    return s_reply(con, 404, "{\"error\":\"not found\"}", 0);
}

/* ---- commands --------------------------------------------------------------------------------- */

static void s_cobo_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa sim cobo --listen 127.0.0.1:PORT --key-seed HEX64 --client-key HEX64\n"
            "                     [--webhook-url URL] [--seed N] [--dup N] [--reorder]\n"
            "                     [--fail-rate PCT] [--delay-ms N]\n"
            "  --listen       loopback address; port 0 picks one (printed as 'listening on HOST:PORT')\n"
            "  --key-seed     the simulator's Ed25519 seed: signs webhooks and responses\n"
            "                 (kasa sim pubkey --key-seed HEX prints the key for COBO_WEBHOOK_PUBKEY)\n"
            "  --client-key   the API public key accepted (kasa's COBO_API_KEY)\n"
            "  --webhook-url  where signed webhooks go (kasa's /cobo/webhook)\n"
            "  --seed         makes ids and addresses deterministic (default 1)\n"
            "  --dup N        send every webhook N extra times;  --reorder  shuffle each lifecycle\n"
            "  --fail-rate    percent (0..100, or a fraction like 0.1) of API calls answered 503/2026\n"
            "  --delay-ms     delay every API answer\n"
            "control (unsigned): POST /sim/deposit, GET /sim/deposits, POST /sim/transactions/{id},\n"
            "                    POST /sim/faults {\"create_address_timeout_once\",\"bad_signature_once\",\n"
            "                    \"bad_signatures\",\"fail_next\",\"hang_ms\",\"fail_rate_pct\",\"delay_ms\",\n"
            "                    \"underscore_headers\",\"confirming_lag_ms\",\"drop_webhooks\",\"drop_deposit_webhooks\",\n"
            "                    \"rate_limit_next\"}\n");
}

/* "0.1" -> 10, "25" -> 25 (percent, no floating point). -1 if bad. */
static int s_parse_pct(const char *s)
{
    if (strncmp(s, "0.", 2) == 0 && isdigit((unsigned char) s[2])) {
        int tenths = s[2] - '0', hund = isdigit((unsigned char) s[3]) ? s[3] - '0' : 0;
        return tenths * 10 + hund;
    }
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v < 0 || v > 100) ? -1 : (int) v;
}

int sim_cobo_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, 0, 'l' }, { "webhook-url", required_argument, 0, 'w' },
        { "key-seed", required_argument, 0, 'k' }, { "client-key", required_argument, 0, 'c' },
        { "seed", required_argument, 0, 's' }, { "dup", required_argument, 0, 'd' },
        { "reorder", no_argument, 0, 'r' }, { "fail-rate", required_argument, 0, 'f' },
        { "delay-ms", required_argument, 0, 'D' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *listen = NULL, *seed_hex = NULL, *client = NULL;
    uint64_t seed = 1;
    S.hang_ms = 3000;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': listen = optarg; break;
        case 'w': snprintf(S.webhook_url, sizeof S.webhook_url, "%s", optarg); break;
        case 'k': seed_hex = optarg; break;
        case 'c': client = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'd': S.dup = atoi(optarg); break;
        case 'r': S.reorder = 1; break;
        case 'f': S.fail_pct = s_parse_pct(optarg); break;
        case 'D': S.delay_ms = atoi(optarg); break;
        case 'h': s_cobo_usage(stdout); return 0;
        default: s_cobo_usage(stderr); return 2;
        }
    }
    struct sockaddr_in sa;
    if (!listen || !seed_hex || !client || sim_http_parse_listen(listen, 1, &sa) != 0 || S.fail_pct < 0
        || S.dup < 0 || S.dup > 10 || S.delay_ms < 0) {
        s_cobo_usage(stderr);
        return 2;
    }
    S.signer = cobo_signer_new(seed_hex);
    if (!S.signer || cobo_pubkey_parse(client, &S.client_key) != 0) {
        fprintf(stderr, "sim cobo: --key-seed and --client-key must be 64 hex (a valid key)\n");
        cobo_signer_destroy(&S.signer);
        return 2;
    }
    S.rng = seed;
    S.txs = calloc(S_MAX_TX, sizeof *S.txs);
    S.tx_index = calloc(S_TX_INDEX, sizeof *S.tx_index);
    S.addrs = calloc(S_MAX_ADDR, sizeof *S.addrs);
    if (!S.txs || !S.tx_index || !S.addrs || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "sim cobo: out of memory\n");
        return 1;
    }
    sigset_t set;
    sim_http_block_signals(&set); /* before any thread starts: they inherit the mask */
    int port = 0;
    sim_http_opts_t o = { .addr = &sa, .handler = s_handle, .timeout_s = 30, .error_log = 1 };
    struct MHD_Daemon *d = sim_http_start(&o, &port);
    if (!d) {
        fprintf(stderr, "sim cobo: cannot listen on %s\n", listen);
        return 1;
    }
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    printf("listening on %s:%d pubkey %s\n", ip, port, cobo_signer_pubkey_hex(S.signer));
    fflush(stdout);
    pthread_t workers[S_WORKERS];
    int nw = 0;
    for (; nw < S_WORKERS; nw++)
        if (pthread_create(&workers[nw], NULL, s_worker, NULL) != 0)
            break;
    sim_http_wait_signal(&set);
    S.stop = 1;
    MHD_stop_daemon(d);
    pthread_mutex_lock(&S.lock);
    pthread_cond_broadcast(&S.wake);
    pthread_mutex_unlock(&S.lock);
    for (int i = 0; i < nw; i++)
        pthread_join(workers[i], NULL);
    while (S.queue) {
        s_job_t *j = S.queue;
        S.queue = j->next;
        s_job_free_chain(j);
    }
    free(S.txs);
    free(S.tx_index);
    free(S.addrs);
    cobo_signer_destroy(&S.signer);
    curl_global_cleanup();
    return 0;
}

int sim_pubkey_main(int argc, char **argv)
{
    const char *seed = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key-seed") == 0 && i + 1 < argc)
            seed = argv[++i];
        else if (strncmp(argv[i], "--key-seed=", 11) == 0)
            seed = argv[i] + 11;
    }
    char pub[COBO_KEY_HEX_LEN + 1];
    if (!seed || cobo_pubkey_from_seed(seed, pub) != 0) {
        fprintf(stderr, "usage: kasa sim pubkey --key-seed HEX64\n");
        return 2;
    }
    printf("%s\n", pub);
    return 0;
}

static size_t s_collect(char *d, size_t s, size_t n, void *a)
{
    jbuf_add(a, d, s * n);
    return s * n;
}

int sim_deposit_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "cobo", required_argument, 0, 'c' }, { "address", required_argument, 0, 'a' },
        { "amount", required_argument, 0, 'm' }, { "token", required_argument, 0, 't' },
        { "chain", required_argument, 0, 'n' }, { "confirmations", required_argument, 0, 'k' },
        { "final", required_argument, 0, 'f' }, { "duplicates", required_argument, 0, 'd' },
        { "reorder", no_argument, 0, 'r' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *cobo = NULL, *addr = NULL, *amount = NULL, *token = "TRON_USDT", *chain = NULL;
    const char *final = "Completed";
    int conf = 3, dup = -1, reorder = -1, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': cobo = optarg; break;
        case 'a': addr = optarg; break;
        case 'm': amount = optarg; break;
        case 't': token = optarg; break;
        case 'n': chain = optarg; break;
        case 'k': conf = atoi(optarg); break;
        case 'f': final = optarg; break;
        case 'd': dup = atoi(optarg); break;
        case 'r': reorder = 1; break;
        default: goto usage;
        }
    }
    if (!cobo || !addr || !amount)
        goto usage;
    jbuf_t body, out;
    jbuf_init(&body);
    jbuf_init(&out);
    jbuf_puts(&body, "{\"address\":");
    jbuf_str(&body, addr);
    jbuf_puts(&body, ",\"amount\":");
    jbuf_str(&body, amount);
    jbuf_puts(&body, ",\"token_id\":");
    jbuf_str(&body, token);
    if (chain) {
        jbuf_puts(&body, ",\"chain_id\":");
        jbuf_str(&body, chain);
    }
    jbuf_printf(&body, ",\"confirmations\":%d,\"final\":", conf);
    jbuf_str(&body, strcmp(final, "null") == 0 ? NULL : final);
    if (dup >= 0)
        jbuf_printf(&body, ",\"duplicates\":%d", dup);
    if (reorder > 0)
        jbuf_puts(&body, ",\"reorder\":true");
    jbuf_puts(&body, "}");
    char url[600];
    snprintf(url, sizeof url, "%s/sim/deposit", cobo);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = 0;
    CURLcode rc = CURLE_FAILED_INIT;
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
    }
    curl_slist_free_all(h);
    int ret = 1;
    bson_t doc;
    char jerr[64];
    if (rc != CURLE_OK) {
        fprintf(stderr, "sim deposit: %s: %s\n", url, curl_easy_strerror(rc));
    } else if (status != 201 || !out.data || json_parse(out.data, out.len, &doc, jerr, sizeof jerr) != 0) {
        fprintf(stderr, "sim deposit: HTTP %ld %s\n", status, out.data ? out.data : "");
        if (status == 201)
            bson_destroy(&doc);
    } else {
        const char *id = json_get_str(&doc, "transaction_id");
        if (id) {
            printf("%s\n", id);
            ret = 0;
        }
        bson_destroy(&doc);
    }
    jbuf_free(&body);
    jbuf_free(&out);
    curl_global_cleanup();
    return ret;
usage:
    fprintf(stderr, "usage: kasa sim deposit --cobo URL --address ADDR --amount 250 [--token TRON_USDT]\n"
                    "                        [--chain TRON] [--confirmations 3] [--final Completed|Failed|Rejected|null]\n"
                    "                        [--duplicates N] [--reorder]\n");
    return 2;
}
