/* test_webhook.c — POST /cobo/webhook over real HTTP, with Cobo-style signatures made by a test
 * key, deposits journaled into a real journal in a temp dir: a forged, altered, missing, malformed
 * or old-format signature is refused 401, a bad body 400, an oversized one 413, other events are
 * ignored with 200 — and the journal does not change on any of them. Also webhook_check() alone. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "actors/cobo_auth.h"
#include "actors/pipeline.h"
#include "journal/fio.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "schema/record.h"
#include "tests/check.h"
#include "tests/cobo_body.h"
#include "tests/unit/support_pipeline.h"
#include "web/http.h"
#include "web/webhook.h"
#include "web/webhook_json.h"

#define SEED_COBO  "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define SEED_OTHER "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
#define MAX_BODY 8192

static cobo_signer_t *s_cobo, *s_other;
static char s_dir[128];
static journal_t *s_journal;
static char s_base[64];
static int s_fail_ingest;

/* ---- the ingest under test: each new (tx, status) becomes one journaled RECORD_DEPOSIT ---- */

typedef struct {
    char key[128];
} seen_t;
static seen_t s_seen[256];
static int s_seen_count;
static pthread_mutex_t s_seen_lock = PTHREAD_MUTEX_INITIALIZER;

static int s_ingest(void *arg, const cobo_tx_t *tx, char *err, size_t errlen)
{
    journal_t *j = arg;
    if (s_fail_ingest) {
        snprintf(err, errlen, "journal failed");
        return 503;
    }
    char key[128];
    snprintf(key, sizeof key, "%s/%s", tx->tx_id, tx->status);
    pthread_mutex_lock(&s_seen_lock);
    for (int i = 0; i < s_seen_count; i++)
        if (strcmp(s_seen[i].key, key) == 0) {
            pthread_mutex_unlock(&s_seen_lock);
            return 200;
        }
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = 1;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx->tx_id);
    r.from = DEPOSIT_NONE;
    r.to = strcmp(tx->status, "Completed") == 0 ? DEPOSIT_RECEIVED : DEPOSIT_PENDING;
    r.event = strcmp(tx->status, "Completed") == 0 ? DEPOSIT_EV_SEEN_COMPLETED : DEPOSIT_EV_SEEN_PENDING;
    snprintf(r.status, sizeof r.status, "%s", tx->status);
    snprintf(r.amount, sizeof r.amount, "%s", tx->amount);
    snprintf(r.address, sizeof r.address, "%s", tx->address);
    uint8_t *buf;
    size_t len;
    int code = 503;
    if (record_encode(&r, &buf, &len, err, errlen) == 0) {
        if (journal_append(j, buf, len) > 0) {
            snprintf(s_seen[s_seen_count++].key, sizeof s_seen[0].key, "%s", key);
            code = 201;
        } else {
            snprintf(err, errlen, "journal append failed");
        }
        free(buf);
    }
    pthread_mutex_unlock(&s_seen_lock);
    return code;
}

/* Records in the journal, counted by reading it back. */
static int s_journal_count(void)
{
    char err[256];
    journal_reader_t *rd = journal_reader_open(s_dir, 1, err, sizeof err);
    if (!rd)
        return -1;
    journal_entry_t e;
    int n = 0;
    while (journal_reader_next(rd, &e) == 1)
        n++;
    journal_reader_destroy(&rd);
    return n;
}

/* ---- bodies and signatures ----------------------------------------------------------------- */

static char *s_deposit(const char *tx_id, const char *status, const char *type)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b,
                "{\"event_id\":\"ev-%s-%s\",\"url\":\"https://kasa.example/cobo/webhook\","
                "\"created_timestamp\":1764140000000,\"type\":\"wallets.transaction.updated\","
                "\"data\":{\"data_type\":\"Transaction\",\"transaction_id\":\"%s\",\"cobo_id\":\"123\","
                "\"wallet_id\":\"w-1\",\"type\":\"%s\",\"status\":\"%s\",\"sub_status\":null,"
                "\"chain_id\":\"TRON\",\"token_id\":\"TRON_USDT\",\"asset_id\":\"USDT\","
                "\"source\":{\"source_type\":\"DepositFromAddress\",\"addresses\":[\"TXa\"]},"
                "\"destination\":{\"destination_type\":\"DepositToAddress\",\"address\":\"TQ1addr\","
                "\"amount\":\"250.5\",\"memo\":null},\"transaction_hash\":\"abc123\","
                "\"confirmed_num\":20,\"confirming_threshold\":20,\"created_timestamp\":1764140000000,"
                "\"updated_timestamp\":1764140001000}}",
                tx_id, status, tx_id, type, status);
    return jbuf_take(&b);
}

typedef struct {
    long status;
    jbuf_t body;
} resp_t;

static size_t s_write(char *p, size_t sz, size_t n, void *arg)
{
    jbuf_add(arg, p, sz * n);
    return sz * n;
}

/* POSTs body with the given header lines (NULL-terminated). */
static long s_post(const char *body, size_t len, const char *const *headers, resp_t *r)
{
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/cobo/webhook", s_base);
    struct curl_slist *hl = NULL;
    int has_type = 0;
    for (int i = 0; headers && headers[i]; i++) {
        hl = curl_slist_append(hl, headers[i]);
        has_type |= strncasecmp(headers[i], "Content-Type:", 13) == 0;
    }
    if (!has_type)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    jbuf_init(&r->body);
    jbuf_puts(&r->body, "");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    r->status = 0;
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return r->status;
}

/* POSTs body signed by signer over body|ts, with the dash header names. */
static long s_post_signed(cobo_signer_t *signer, const char *body, const char *ts, resp_t *r)
{
    char sig[COBO_SIG_HEX_LEN + 1];
    cobo_sign_response(signer, body, strlen(body), ts, sig);
    char h1[64], h2[200];
    snprintf(h1, sizeof h1, "Biz-Timestamp: %s", ts);
    snprintf(h2, sizeof h2, "Biz-Resp-Signature: %s", sig);
    const char *hs[] = { h1, h2, NULL };
    return s_post(body, strlen(body), hs, r);
}

/* ---- over HTTP ----------------------------------------------------------------------------- */

static void test_signed_deposit_is_journaled_once(void)
{
    int before = s_journal_count();
    char *body = s_deposit("tx-0001", "Completed", "Deposit");
    resp_t r;
    CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140001234", &r), 201);
    CHECK(strstr(r.body.data, "\"tx\":\"tx-0001\"") != NULL);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_journal_count(), before + 1);
    /* the same webhook again (Cobo retries): 200, nothing more journaled */
    CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140009999", &r), 200);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_journal_count(), before + 1);
    free(body);
}

static void test_underscore_and_lowercase_headers_are_accepted(void)
{
    int before = s_journal_count();
    char *body = s_deposit("tx-0002", "Confirming", "Deposit");
    const char *ts = "1764140002000";
    char sig[COBO_SIG_HEX_LEN + 1];
    cobo_sign_response(s_cobo, body, strlen(body), ts, sig);
    char h1[64], h2[200];
    snprintf(h1, sizeof h1, "biz_timestamp: %s", ts);
    snprintf(h2, sizeof h2, "BIZ_RESP_SIGNATURE: %s", sig);
    const char *hs[] = { h1, h2, NULL };
    resp_t r;
    CHECK_EQ_INT(s_post(body, strlen(body), hs, &r), 201);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_journal_count(), before + 1);
    free(body);
}

/* Each attempt must be answered `code` with an {"error":...} body and leave the journal alone. */
static void s_expect_refused(const char *body, size_t len, const char *const *hs, long code, const char *what)
{
    int before = s_journal_count();
    resp_t r;
    long got = s_post(body, len, hs, &r);
    if (got != code)
        fprintf(stderr, "  %s: got %ld (%s), expected %ld\n", what, got, r.body.data, code);
    CHECK_EQ_INT(got, code);
    CHECK(strncmp(r.body.data, "{\"error\":", 9) == 0);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_journal_count(), before);
}

static void test_bad_signatures_are_401_and_journal_nothing(void)
{
    char *body = s_deposit("tx-0003", "Completed", "Deposit");
    size_t len = strlen(body);
    const char *ts = "1764140003000";
    char good[COBO_SIG_HEX_LEN + 1], forged[COBO_SIG_HEX_LEN + 1], bodyonly[COBO_SIG_HEX_LEN + 1],
        swapped[COBO_SIG_HEX_LEN + 1];
    cobo_sign_response(s_cobo, body, len, ts, good);
    cobo_sign_response(s_other, body, len, ts, forged);           /* another key */
    cobo_sign(s_cobo, body, len, bodyonly);                        /* old format: body alone */
    char msg[4096];
    int mlen = snprintf(msg, sizeof msg, "%s|%s", ts, body);       /* parts in the wrong order */
    cobo_sign(s_cobo, msg, (size_t) mlen, swapped);
    char h_ts[64], h_sig[200];
    snprintf(h_ts, sizeof h_ts, "Biz-Timestamp: %s", ts);

    snprintf(h_sig, sizeof h_sig, "Biz-Resp-Signature: %s", forged);
    const char *forged_h[] = { h_ts, h_sig, NULL };
    s_expect_refused(body, len, forged_h, 401, "forged");

    char h_sig2[200];
    snprintf(h_sig2, sizeof h_sig2, "Biz-Resp-Signature: %s", bodyonly);
    const char *old_h[] = { h_ts, h_sig2, NULL };
    s_expect_refused(body, len, old_h, 401, "body-only signature");

    char h_sig3[200];
    snprintf(h_sig3, sizeof h_sig3, "Biz-Resp-Signature: %s", swapped);
    const char *swapped_h[] = { h_ts, h_sig3, NULL };
    s_expect_refused(body, len, swapped_h, 401, "ts|body signature");

    /* altered body: one byte of the amount changed after signing */
    char *altered = strdup(body);
    char *amt = strstr(altered, "250.5");
    amt[0] = '9';
    char h_good[200];
    snprintf(h_good, sizeof h_good, "Biz-Resp-Signature: %s", good);
    const char *good_h[] = { h_ts, h_good, NULL };
    s_expect_refused(altered, len, good_h, 401, "altered body");
    free(altered);

    /* altered timestamp */
    const char *other_ts[] = { "Biz-Timestamp: 1764140003001", h_good, NULL };
    s_expect_refused(body, len, other_ts, 401, "altered timestamp");

    /* missing headers */
    const char *no_sig[] = { h_ts, NULL };
    s_expect_refused(body, len, no_sig, 401, "missing signature");
    const char *no_ts[] = { h_good, NULL };
    s_expect_refused(body, len, no_ts, 401, "missing timestamp");
    s_expect_refused(body, len, NULL, 401, "no headers");

    /* malformed values */
    const char *short_sig[] = { h_ts, "Biz-Resp-Signature: abcdef", NULL };
    s_expect_refused(body, len, short_sig, 401, "short signature");
    char nonhex[200];
    snprintf(nonhex, sizeof nonhex, "Biz-Resp-Signature: %s", good);
    nonhex[strlen(nonhex) - 1] = 'g';
    const char *nonhex_h[] = { h_ts, nonhex, NULL };
    s_expect_refused(body, len, nonhex_h, 401, "non-hex signature");
    const char *bad_ts[] = { "Biz-Timestamp: 17641400O3000", h_good, NULL };
    s_expect_refused(body, len, bad_ts, 401, "non-numeric timestamp");

    /* the correctly signed original still passes: the refusals above were about the signature */
    resp_t r;
    CHECK_EQ_INT(s_post(body, len, good_h, &r), 201);
    jbuf_free(&r.body);
    free(body);
}

static void test_signed_garbage_is_400_and_journals_nothing(void)
{
    const char *ts = "1764140004000";
    static const char *const bodies[] = {
        "not json at all",
        "{\"event_id\":\"e\",\"type\":\"wallets.transaction.updated\",\"data\":{\"data_type\":\"Transaction\","
        "\"type\":\"Deposit\",\"status\":\"Completed\"}}",                     /* no transaction_id */
        "{\"event_id\":\"e\",\"type\":\"wallets.transaction.updated\",\"data\":{\"data_type\":\"Transaction\","
        "\"transaction_id\":\"t\",\"type\":\"Deposit\",\"status\":\"Completed\",\"chain_id\":\"TRON\","
        "\"token_id\":\"TRON_USDT\",\"destination\":{\"address\":\"A\",\"amount\":\"1e5\"}}}",  /* bad amount */
        "{\"truncated\": ",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char sig[COBO_SIG_HEX_LEN + 1];
        cobo_sign_response(s_cobo, bodies[i], strlen(bodies[i]), ts, sig);
        char h1[64], h2[200];
        snprintf(h1, sizeof h1, "Biz-Timestamp: %s", ts);
        snprintf(h2, sizeof h2, "Biz-Resp-Signature: %s", sig);
        const char *hs[] = { h1, h2, NULL };
        s_expect_refused(bodies[i], strlen(bodies[i]), hs, 400, bodies[i]);
    }
}

static void test_wrong_content_type_is_415_and_journals_nothing(void)
{
    char *body = s_deposit("tx-0006", "Completed", "Deposit");
    const char *ts = "1764140004500";
    char sig[COBO_SIG_HEX_LEN + 1];
    cobo_sign_response(s_cobo, body, strlen(body), ts, sig);
    char h1[64], h2[200];
    snprintf(h1, sizeof h1, "Biz-Timestamp: %s", ts);
    snprintf(h2, sizeof h2, "Biz-Resp-Signature: %s", sig);
    const char *plain[] = { h1, h2, "Content-Type: text/plain", NULL };
    s_expect_refused(body, strlen(body), plain, 415, "text/plain");
    const char *form[] = { h1, h2, "Content-Type: application/x-www-form-urlencoded", NULL };
    s_expect_refused(body, strlen(body), form, 415, "form");
    free(body);
}

static void test_other_events_are_ignored_with_200(void)
{
    int before = s_journal_count();
    char *wd = s_deposit("tx-w-1", "Completed", "Withdrawal");
    resp_t r;
    CHECK_EQ_INT(s_post_signed(s_cobo, wd, "1764140005000", &r), 200);
    CHECK(strstr(r.body.data, "\"ignored\":") != NULL);
    jbuf_free(&r.body);
    free(wd);
    const char *tss = "{\"event_id\":\"e2\",\"type\":\"wallets.token.created\",\"data\":{\"data_type\":\"TSSRequest\"}}";
    CHECK_EQ_INT(s_post_signed(s_cobo, tss, "1764140005001", &r), 200);
    CHECK(strstr(r.body.data, "\"ignored\":") != NULL);
    jbuf_free(&r.body);
    /* a transaction of another shape (no destination.address): ignored, not refused */
    const char *call = "{\"event_id\":\"e3\",\"type\":\"wallets.transaction.created\",\"data\":{\"data_type\":"
                       "\"Transaction\",\"transaction_id\":\"c1\",\"type\":\"ContractCall\",\"status\":\"Submitted\"}}";
    CHECK_EQ_INT(s_post_signed(s_cobo, call, "1764140005002", &r), 200);
    CHECK(strstr(r.body.data, "\"ignored\":") != NULL);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_journal_count(), before);
}

static void test_oversized_body_is_413_and_journals_nothing(void)
{
    size_t n = MAX_BODY + 100;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    big[0] = '{';
    big[n - 1] = '}';
    char sig[COBO_SIG_HEX_LEN + 1];
    cobo_sign_response(s_cobo, big, n, "1764140006000", sig);
    char h2[200];
    snprintf(h2, sizeof h2, "Biz-Resp-Signature: %s", sig);
    const char *hs[] = { "Biz-Timestamp: 1764140006000", h2, NULL };
    s_expect_refused(big, n, hs, 413, "oversized");
    free(big);
}

static void test_journal_failure_is_503(void)
{
    int before = s_journal_count();
    s_fail_ingest = 1;
    char *body = s_deposit("tx-0005", "Completed", "Deposit");
    resp_t r;
    CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140007000", &r), 503);
    jbuf_free(&r.body);
    s_fail_ingest = 0;
    CHECK_EQ_INT(s_journal_count(), before);
    /* Cobo's retry then succeeds */
    CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140007500", &r), 201);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_journal_count(), before + 1);
    free(body);
}

/* ---- webhook_check alone ----------------------------------------------------------------- */

static void test_check_verdicts_without_http(void)
{
    cobo_pubkey_t key;
    CHECK(cobo_pubkey_parse(cobo_signer_pubkey_hex(s_cobo), &key) == 0);
    char *body = s_deposit("tx-pure", "Completed", "Deposit");
    size_t len = strlen(body);
    char sig[COBO_SIG_HEX_LEN + 1];
    cobo_sign_response(s_cobo, body, len, "1", sig);
    webhook_result_t *r = malloc(sizeof *r);
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/json", body, len, 0, r), WEBHOOK_DEPOSIT);
    CHECK_EQ_STR(r->event.tx.tx_id, "tx-pure");
    CHECK_EQ_STR(r->event.tx.amount, "250.5");
    CHECK_EQ_INT(webhook_check(&key, "2", sig, "application/json", body, len, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_INT(r->status, 401);
    CHECK_EQ_STR(r->reason, "bad signature");
    CHECK_EQ_INT(webhook_check(&key, NULL, sig, "application/json", body, len, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_STR(r->reason, "missing signature headers");
    CHECK_EQ_INT(webhook_check(&key, "1", "zz", "application/json", body, len, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_STR(r->reason, "malformed signature");
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/json", body, len - 1, 0, r), WEBHOOK_REJECT);   /* truncated */
    CHECK_EQ_INT(r->status, 401);
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/json", body, len, 100, r), WEBHOOK_REJECT);
    CHECK_EQ_INT(r->status, 413);
    /* the signature is checked before the body: a forged garbage body is 401, not 400 */
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/json", "garbage", 7, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_INT(r->status, 401);
    /* the media type must be JSON (parameters allowed), checked after the signature */
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "Application/JSON; charset=utf-8", body, len, 0, r), WEBHOOK_DEPOSIT);
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "text/plain", body, len, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_INT(r->status, 415);
    CHECK_EQ_INT(webhook_check(&key, "1", sig, NULL, body, len, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_INT(r->status, 415);
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/jsonx", body, len, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_INT(webhook_check(&key, "2", sig, "text/plain", body, len, 0, r), WEBHOOK_REJECT);
    CHECK_EQ_INT(r->status, 401);   /* a forgery is a forgery whatever its type */
    /* the reason never echoes the signature */
    CHECK(strstr(r->reason, sig) == NULL);
    free(r);
    free(body);
}

/* ---- withdrawals: statuses of transfers kasa asked for, and Cobo's own sweeps ---------------- */

static webhook_t *s_wh;
static struct {
    int calls, answer;
    char request_id[80], status[32];
} s_wd;

static int s_withdrawal_fn(void *arg, const cobo_tx_t *tx, char *err, size_t errlen)
{
    (void) arg;
    s_wd.calls++;
    snprintf(s_wd.request_id, sizeof s_wd.request_id, "%s", tx->request_id);
    snprintf(s_wd.status, sizeof s_wd.status, "%s", tx->status);
    if (s_wd.answer >= 500)
        snprintf(err, errlen, "not taken");
    return s_wd.answer;
}

/* A Withdrawal webhook (Cobo's transfer shape); request_id NULL is JSON null. */
static char *s_withdrawal(const char *tx_id, const char *request_id, const char *status)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b,
                "{\"event_id\":\"ev-%s-%s\",\"url\":\"https://kasa.example/cobo/webhook\","
                "\"created_timestamp\":1764140000000,\"type\":\"wallets.transaction.updated\","
                "\"data\":{\"data_type\":\"Transaction\",\"transaction_id\":\"%s\",\"cobo_id\":\"124\","
                "\"request_id\":",
                tx_id, status, tx_id);
    jbuf_str(&b, request_id);
    jbuf_printf(&b,
                ",\"wallet_id\":\"w-1\",\"type\":\"Withdrawal\",\"status\":\"%s\",\"sub_status\":null,"
                "\"chain_id\":\"TRON\",\"token_id\":\"TRON_USDT\",\"source\":{\"source_type\":\"Org-Controlled\","
                "\"wallet_id\":\"w-1\",\"address\":\"TQ1addr\"},\"destination\":{\"destination_type\":\"Address\","
                "\"account_output\":{\"address\":\"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t\",\"amount\":\"99.5\","
                "\"memo\":null}},\"transaction_hash\":null,\"confirmed_num\":0,\"confirming_threshold\":20,"
                "\"created_timestamp\":1764140000000,\"updated_timestamp\":1764140001000}}",
                status);
    return jbuf_take(&b);
}

static void test_withdrawal_statuses_reach_the_withdrawal_function_and_sweeps_do_not(void)
{
    int before = s_journal_count();
    resp_t r;
    char *mine = s_withdrawal("tx-wd-1", "kasa-w0123456789abcdef0123-1", "Broadcasting");
    /* no handler yet: ignored (the withdrawal's owner asks Cobo on a schedule) */
    CHECK_EQ_INT(s_post_signed(s_cobo, mine, "1764140006000", &r), 200);
    CHECK(r.body.data && strstr(r.body.data, "no handler") != NULL);
    jbuf_free(&r.body);
    webhook_on_withdrawal(s_wh, s_withdrawal_fn, NULL);
    s_wd.answer = 201;
    CHECK_EQ_INT(s_post_signed(s_cobo, mine, "1764140006001", &r), 201);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_wd.calls, 1);
    CHECK_EQ_STR(s_wd.request_id, "kasa-w0123456789abcdef0123-1");
    CHECK_EQ_STR(s_wd.status, "Broadcasting");
    s_wd.answer = 503;   /* not taken: Cobo must retry */
    CHECK_EQ_INT(s_post_signed(s_cobo, mine, "1764140006002", &r), 503);
    jbuf_free(&r.body);
    free(mine);
    /* Cobo's sweep (no request_id) and a transfer made in Cobo's portal: ignored, never a deposit */
    char *sweep = s_withdrawal("tx-sweep-1", NULL, "Completed");
    char *portal = s_withdrawal("tx-portal-1", "portal-20261130-1", "Completed");
    CHECK_EQ_INT(s_post_signed(s_cobo, sweep, "1764140006003", &r), 200);
    CHECK(r.body.data && strstr(r.body.data, "sweep") != NULL);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_post_signed(s_cobo, portal, "1764140006004", &r), 200);
    jbuf_free(&r.body);
    CHECK_EQ_INT(s_wd.calls, 2);
    CHECK_EQ_INT(s_journal_count(), before);
    webhook_on_withdrawal(s_wh, NULL, NULL);
    /* the pure verdicts */
    cobo_pubkey_t key;
    CHECK(cobo_pubkey_parse(cobo_signer_pubkey_hex(s_cobo), &key) == 0);
    char sig[COBO_SIG_HEX_LEN + 1];
    webhook_result_t *res = malloc(sizeof *res);
    mine = s_withdrawal("tx-wd-2", "kasa-w0123456789abcdef0123-2", "Completed");
    cobo_sign_response(s_cobo, mine, strlen(mine), "1", sig);
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/json", mine, strlen(mine), 0, res), WEBHOOK_WITHDRAWAL);
    CHECK_EQ_STR(res->event.tx.address, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t");
    CHECK_EQ_STR(res->event.tx.source_address, "TQ1addr");
    cobo_sign_response(s_cobo, sweep, strlen(sweep), "1", sig);
    CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/json", sweep, strlen(sweep), 0, res), WEBHOOK_IGNORE);
    free(res);
    free(mine);
    free(sweep);
    free(portal);
}

/* Many webhooks at once through the real pipeline, each waiting for its record without its thread:
 * every 201 comes only once at least as many records are durable as 201s were answered, a repeat
 * is 200, and the journal holds each deposit once. */
typedef struct {
    journal_t *j;
    uint64_t lsn0;
    int id;
    int created, repeated, other, early;
} burst_t;

static atomic_int s_acked;

static void *s_burst_worker(void *arg)
{
    burst_t *b = arg;
    for (int i = 0; i < 10; i++) {
        char tx[64], ts[32];
        snprintf(tx, sizeof tx, "tx-burst-%d-%d", b->id, i);
        char *body = s_deposit(tx, "Confirming", "Deposit");
        for (int k = 0; k < 2; k++) {
            resp_t r;
            snprintf(ts, sizeof ts, "17641400%02d%03d", b->id, i * 2 + k);
            int code = s_post_signed(s_cobo, body, ts, &r);
            jbuf_free(&r.body);
            if (code == 201) {
                int acked = atomic_fetch_add(&s_acked, 1) + 1;
                if (journal_durable_lsn(b->j) - b->lsn0 < (uint64_t) acked)
                    b->early++;
            }
            b->created += code == 201;
            b->repeated += code == 200;
            b->other += code != 201 && code != 200;
        }
        free(body);
    }
    return NULL;
}

static void s_burst(journal_t *j, uint64_t lsn0)
{
    enum { N = 16 };
    static burst_t b[N];
    pthread_t t[N];
    atomic_store(&s_acked, 0);
    for (int i = 0; i < N; i++) {
        b[i] = (burst_t) { .j = j, .lsn0 = lsn0, .id = i };
        pthread_create(&t[i], NULL, s_burst_worker, &b[i]);
    }
    int created = 0, repeated = 0, other = 0, early = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        created += b[i].created;
        repeated += b[i].repeated;
        other += b[i].other;
        early += b[i].early;
    }
    CHECK_EQ_INT(created, N * 10);
    CHECK_EQ_INT(repeated, N * 10);
    CHECK_EQ_INT(other, 0);
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT((int) (journal_durable_lsn(j) - lsn0), N * 10);
}

/* ---- with the real pipeline ---------------------------------------------------------------
 * A second journal and server, with pipeline_new() on it. Deposits stay Confirming (PENDING has no
 * effects), so no stage needs Cobo or MT5, which point at a closed port. */
static void test_real_pipeline_journals_once_and_refuses_forgeries(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/kasa-test-webhook-p-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    static config_t cfg;
    support_pipeline_offline(&cfg, dir, SEED_OTHER, cobo_signer_pubkey_hex(s_cobo), MAX_BODY);
    char err[512];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    pipeline_t *p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    if (!p)
        fprintf(stderr, "  pipeline: %s\n", err);
    CHECK(p != NULL);
    http_server_t *http = http_server_new("127.0.0.1:0", MAX_BODY, 4, err, sizeof err);
    webhook_t *wh = p && http ? webhook_routes(http, p, cfg.cobo_webhook_pubkey, err, sizeof err) : NULL;
    CHECK(wh != NULL);
    CHECK(!wh || http_server_start(http, err, sizeof err) == 0);
    if (p && http && wh) {
        char saved[64];
        snprintf(saved, sizeof saved, "%s", s_base);
        snprintf(s_base, sizeof s_base, "http://127.0.0.1:%d", http_server_port(http));
        uint64_t lsn0 = journal_durable_lsn(j);
        char *body = s_deposit("tx-real-1", "Confirming", "Deposit");
        resp_t r;
        CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140010000", &r), 201);
        jbuf_free(&r.body);
        CHECK_EQ_INT(journal_durable_lsn(j), lsn0 + 1);
        CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140010001", &r), 200);   /* a repeat */
        jbuf_free(&r.body);
        CHECK_EQ_INT(s_post_signed(s_other, body, "1764140010002", &r), 401);  /* forged */
        jbuf_free(&r.body);
        CHECK_EQ_INT(s_post_signed(s_cobo, "{oops", "1764140010003", &r), 400);
        jbuf_free(&r.body);
        CHECK_EQ_INT(journal_durable_lsn(j), lsn0 + 1);
        deposit_view_t v;
        CHECK_EQ_INT(pipeline_deposit(p, "tx-real-1", &v), 0);
        CHECK_EQ_INT(v.state, DEPOSIT_PENDING);
        CHECK_EQ_STR(v.amount, "250.5");
        free(body);
        s_burst(j, journal_durable_lsn(j));
        /* the fdatasync a waiting webhook waits for fails: 503, and nothing is taken after */
        fio_fail_at(FIO_FSYNC, 1, EIO);
        body = s_deposit("tx-real-lost", "Confirming", "Deposit");
        CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140010004", &r), 503);
        jbuf_free(&r.body);
        CHECK_EQ_INT(s_post_signed(s_cobo, body, "1764140010005", &r), 503);
        jbuf_free(&r.body);
        free(body);
        fio_reset();
        snprintf(s_base, sizeof s_base, "%s", saved);
    }
    http_server_destroy(&http);
    webhook_destroy(&wh);
    pipeline_destroy(&p);
    journal_destroy(&j);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

/* ---- the route's body reader (web/webhook_json.h) against cobo_event_parse -------------------- */

/* Parses body both ways, cobo_event_parse and the route's webhook_event_parse: the same result,
 * the same reason, the same event byte for byte. Returns 1 if the direct reader took the body, 0
 * if it declined (cobo_event_parse answered), -1 if the two disagree. */
static int s_agree(const char *body)
{
    size_t len = strlen(body);
    cobo_event_t *old = calloc(1, sizeof *old), *route = calloc(1, sizeof *route), *direct = calloc(1, sizeof *direct);
    char old_err[160] = "", route_err[160] = "";
    int rc_old = cobo_event_parse(body, len, old, old_err, sizeof old_err);
    int rc_route = webhook_event_parse(body, len, route, route_err, sizeof route_err);
    int took = webhook_json_direct(body, len, direct);
    int same = rc_old == rc_route && strcmp(old_err, route_err) == 0
               && (rc_old != 0 || memcmp(old, route, sizeof *old) == 0)
               && (!took || (rc_old == 0 && memcmp(old, direct, sizeof *old) == 0));
    if (!same)
        fprintf(stderr, "# disagree: old %d \"%s\", route %d \"%s\", direct %d: %.120s\n", rc_old, old_err, rc_route,
                route_err, took, body);
    free(old);
    free(route);
    free(direct);
    return same ? took : -1;
}

/* Cobo's deposit (tests/cobo_body.h) with a few more of Cobo's shapes in it: an object, an array of
 * objects, empty arrays (set up by the first test, freed at the end). */
static char *s_full;

static void s_full_make(void)
{
    char *a = cobo_body_edit(COBO_DEPOSIT_BODY, "\"fee\":null",
                             "\"fee\":{\"fee_type\":\"Fixed\",\"token_id\":\"TRON\",\"fee_used\":\"1.1\"}");
    char *b = a ? cobo_body_edit(a, "\"category\":null", "\"category\":[],\"cobo_category\":[]") : NULL;
    s_full = b ? cobo_body_edit(b, "\"timeline\":[]", "\"timeline\":[{\"status\":\"Confirming\",\"finished\":true}]") : NULL;
    free(a);
    free(b);
}

static void test_direct_reader_takes_cobos_bodies_and_agrees_on_every_field(void)
{
    s_full_make();
    CHECK(s_full != NULL);
    if (!s_full)
        return;
    char *dep = s_deposit("tx-direct", "Confirming", "Deposit");
    char *wd = s_withdrawal("tx-wd", "kasa-7-1", "Completed");
    char *wd_null = s_withdrawal("tx-wd2", NULL, "Pending");
    const char *bodies[] = { s_full, dep, wd, wd_null };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        CHECK_EQ_INT(s_agree(bodies[i]), 1);
    /* every field is compared by s_agree (the whole event, byte for byte); a withdrawal's own, read directly */
    cobo_event_t ev;
    CHECK_EQ_INT(webhook_json_direct(wd, strlen(wd), &ev), 1);
    CHECK_EQ_STR(ev.tx.request_id, "kasa-7-1");
    CHECK_EQ_STR(ev.tx.address, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t");   /* destination.account_output */
    CHECK_EQ_STR(ev.tx.amount, "99.5");
    CHECK_EQ_STR(ev.tx.source_address, "TQ1addr");                     /* source.address */
    CHECK_EQ_INT(ev.tx.confirmations, 0);
    /* shapes and values that still read directly, each equal to cobo_event_parse's reading */
    static const struct { const char *from, *to; } took[] = {
        { "\"cobo_category\":[]", "\"cobo_category\":[\"AutoFueling\"]" },
        { "\"cobo_category\":[]", "\"cobo_category\":[\"AutoSweep\",\"BillRefund\",\"A\",\"B\",\"C\"]" },
        { "\"cobo_category\":[]", "\"cobo_category\":[\"AutoSweep\",null,\"BillRefund\"]" },
        { "\"cobo_category\":[]", "\"cobo_category\":[\"AutoSweep\",7]" },
        { "\"cobo_category\":[]", "\"cobo_category\":[\"this-name-is-longer-than-31-bytes!\",\"X\"]" },
        { "\"cobo_category\":[]", "\"cobo_category\":\"AutoFueling\"" },
        { "\"cobo_category\":[]", "\"cobo_category\":null" },
        { "\"addresses\":[\"TJRyWwFs9wTFGZg3JbrVriFbNfCug5tDeC\"]", "\"addresses\":[]" },
        { "\"addresses\":[\"TJRyWwFs9wTFGZg3JbrVriFbNfCug5tDeC\"]", "\"addresses\":[\"\",\"TB\"]" },
        { "\"addresses\":[\"TJRyWwFs9wTFGZg3JbrVriFbNfCug5tDeC\"]", "\"address\":\"TA\",\"addresses\":[7]" },
        { "\"source\":{", "\"source\":[{\"address\":\"TArr\"}],\"s2\":{" },
        { "\"source\":{", "\"source\":null,\"x\":{" },
        { "\"confirmed_num\":20", "\"confirmed_num\":null" },
        { "\"confirmed_num\":20", "\"confirmed_num\":-0" },
        { "\"confirmed_num\":20", "\"confirmed_num\":2147483647" },
        { "\"updated_timestamp\":1764142800000", "\"updated_timestamp\":999999999999999999" },
        { "\"sub_status\":null", "\"sub_status\":\"ReOrged\"" },
        { "\"request_id\":null", "\"request_id\":\"\"" },
        { "\"data_type\":\"Transaction\"", "\"data_type\":\"Address\"" },
        { "\"data_type\":\"Transaction\"", "\"data_type\":null" },
        { "\"data_type\":\"Transaction\"", "\"data_type\":\"\"" },
        { "\"description\":null", "\"description\":\"a \\\"quoted\\\" \\\\ text\\n\\/\\t\"" },
        { "\"description\":null", "\"description\":\"\x7f\"" },
        { "\"description\":null", "\"description\":{\"a\":[1,-2,0,true,false,null,{},[[]]]}" },
        { "\"description\":null", "\"\":1,\"a$b\":2" },
        { "\"block_info\":{", "\"block_info\" : {\"transaction_id\":\"x\",\"data\":{\"type\":7}," },   /* a name counts only where it sits */
        { "{\"event_id\"", " \r\n\t{ \"event_id\" " },
        { "\"url\":", "\"data_type\":\"Transaction\",\"transaction_id\":7,\"url\":" },
    };
    for (size_t i = 0; i < sizeof took / sizeof took[0]; i++) {
        char *b = cobo_body_edit(s_full, took[i].from, took[i].to);
        CHECK(b != NULL);
        if (!b)
            continue;
        int r = s_agree(b);
        if (r != 1)
            fprintf(stderr, "# case %zu: %d\n", i, r);
        CHECK_EQ_INT(r, 1);
        free(b);
    }
    jbuf_t b;   /* pretty-printed, with a trailing newline */
    jbuf_init(&b);
    for (const char *p = s_full; *p; p++) {
        jbuf_add(&b, p, 1);
        if (*p == ',' || *p == '{')
            jbuf_puts(&b, "\n  ");
    }
    jbuf_puts(&b, "\n");
    CHECK_EQ_INT(s_agree(b.data), 1);
    jbuf_free(&b);
    free(dep);
    free(wd);
    free(wd_null);
}

static void test_direct_reader_declines_what_it_does_not_take_and_the_answer_stays_the_same(void)
{
    if (!s_full)
        s_full_make();
    static const struct { const char *from, *to; } cases[] = {
        /* refused by cobo_event_parse: each keeps its reason */
        { "\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", "\"transaction_id\":null" },
        { "\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", "\"transaction_id\":\"\"" },
        { "\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", "\"transaction_id\":42" },
        { "\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"",
          "\"transaction_id\":\"0123456789012345678901234567890123456789012345678901234567890123456789012345678901\"" },
        { "\"status\":\"Completed\"", "\"status\":[\"Completed\"]" },
        { "\"event_id\":\"c3d9a2f4-1b6e-4f0a-9d2c-7e8f5a6b4c3d\"", "\"event_id\":null" },
        { "\"type\":\"wallets.transaction.succeeded\"", "\"kind\":\"x\"" },
        { "\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\"", "\"address\":null" },
        { "\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\"", "\"address\":\"TX\\nYZ\"" },
        { "\"amount\":\"5970.04\"", "\"amount\":5970.04" },
        { "\"amount\":\"5970.04\"", "\"amount\":\"-5\"" },
        { "\"amount\":\"5970.04\"", "\"amount\":\"1e5\"" },
        { "\"confirmed_num\":20", "\"confirmed_num\":-1" },
        { "\"confirmed_num\":20", "\"confirmed_num\":2147483648" },
        { "\"confirmed_num\":20", "\"confirmed_num\":2.5" },
        { "\"confirmed_num\":20", "\"confirmed_num\":true" },
        { "\"sub_status\":null", "\"sub_status\":{}" },
        { "\"data\":{", "\"data\":[{" },
        { "\"addresses\":[\"TJRyWwFs9wTFGZg3JbrVriFbNfCug5tDeC\"]", "\"addresses\":[{\"a\":1}]" },
        { "\"event_id\"", "\"event_id\":1,\"x\"" },               /* malformed JSON */
        { "{\"event_id\"", "{'event_id'" },
        { "\"is_loop\":false", "\"is_loop\":fals" },
        { "\"is_loop\":false", "\"is_loop\":01" },
        { "\"is_loop\":false", "\"is_loop\":-" },
        { "\"is_loop\":false", "\"is_loop\":\"\x01\"" },
        { "\"is_loop\":false", "\"is_loop\":\"\\x\"" },
        { "\"is_loop\":false", "\"is_loop\":false," },
        /* taken by cobo_event_parse, but read by libbson's rules: the direct reader leaves them to it */
        { "\"confirmed_num\":20", "\"confirmed_num\":\"20\"" },
        { "\"confirmed_num\":20", "\"confirmed_num\":20.0" },
        { "\"confirmed_num\":20", "\"confirmed_num\":{\"$numberLong\":\"20\"}" },
        { "\"is_loop\":false", "\"is_loop\":1.5e3" },
        { "\"is_loop\":false", "\"is_loop\":12345678901234567890" },
        { "\"is_loop\":false", "\"is_loop\":99999999999999999999999" },   /* no overflow on the way */
        { "\"description\":null", "\"description\":\"caf\xc3\xa9\"" },
        { "\"description\":null", "\"description\":\"\\u00e9\"" },
        { "\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\"", "\"address\":\"TXYZ\\/opY\"" },
        { "\"status\":\"Completed\"", "\"status\":\"Completed\",\"status\":\"Failed\"" },   /* the first counts */
        { "\"source\":{", "\"source\":{\"addresses\":{\"0\":\"TObj\"}},\"x\":{" },
        { "\"cobo_category\":[]", "\"cobo_category\":{\"0\":\"AutoFueling\"}" },
        { "\"cobo_category\":[]", "\"cobo_category\":[\"Auto\\u0046ueling\"]" },
        { "\"transaction_hash\"", "\"transaction\\u005fhash\":\"h\",\"x\"" },
        { "\"description\":null", "\"$comment\":\"x\"" },
        { "\"timeline\":[", "\"timeline\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]," },
    };
    cobo_pubkey_t key;
    CHECK(cobo_pubkey_parse(cobo_signer_pubkey_hex(s_cobo), &key) == 0);
    webhook_result_t *r = malloc(sizeof *r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *b = cobo_body_edit(s_full, cases[i].from, cases[i].to);
        CHECK(b != NULL);
        if (!b)
            continue;
        int got = s_agree(b);
        if (got != 0)
            fprintf(stderr, "# case %zu: %d\n", i, got);
        CHECK_EQ_INT(got, 0);
        /* through the route's check, signed: a refused body is the same 400 with the same words */
        cobo_event_t ev;
        char err[160] = "";
        if (cobo_event_parse(b, strlen(b), &ev, err, sizeof err) != 0) {
            char sig[COBO_SIG_HEX_LEN + 1];
            cobo_sign_response(s_cobo, b, strlen(b), "1", sig);
            CHECK_EQ_INT(webhook_check(&key, "1", sig, "application/json", b, strlen(b), 0, r), WEBHOOK_REJECT);
            CHECK_EQ_INT(r->status, 400);
            CHECK_EQ_STR(r->reason, err);
        }
        free(b);
    }
    /* whole bodies */
    static const char *bodies[] = { "", "   ", "null", "[1,2]", "{}", "{\"a\":1}x", "{\"a\":1}{}", "\"s\"",
                                    "{\"event_id\":\"e\",\"type\":\"t\",\"data\":\"Transaction\"}",
                                    "{\"event_id\":\"e\",\"type\":\"t\"}" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        CHECK_EQ_INT(s_agree(bodies[i]), 0);
    const char nul[] = "{\"event_id\":\"e\0\",\"type\":\"t\",\"data\":{}}";
    cobo_event_t a, d;
    char ea[160] = "", ed[160] = "";
    CHECK_EQ_INT(webhook_json_direct(nul, sizeof nul - 1, &d), 0);
    CHECK_EQ_INT(cobo_event_parse(nul, sizeof nul - 1, &a, ea, sizeof ea), -1);
    CHECK_EQ_INT(webhook_event_parse(nul, sizeof nul - 1, &d, ed, sizeof ed), -1);
    CHECK_EQ_STR(ed, ea);
    free(r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_cobo = cobo_signer_new(SEED_COBO);
    s_other = cobo_signer_new(SEED_OTHER);
    snprintf(s_dir, sizeof s_dir, "/tmp/kasa-test-webhook-XXXXXX");
    if (!s_cobo || !s_other || !mkdtemp(s_dir))
        return 1;
    char err[256];
    s_journal = journal_open(s_dir, NULL, err, sizeof err);
    if (!s_journal) {
        fprintf(stderr, "journal: %s\n", err);
        return 1;
    }
    http_server_t *http = http_server_new("127.0.0.1:0", MAX_BODY, 4, err, sizeof err);
    if (!http) {
        fprintf(stderr, "http: %s\n", err);
        return 1;
    }
    CHECK(webhook_routes_fn(http, s_ingest, s_journal, "00zz", err, sizeof err) == NULL);   /* bad key */
    webhook_t *wh = webhook_routes_fn(http, s_ingest, s_journal, cobo_signer_pubkey_hex(s_cobo), err, sizeof err);
    s_wh = wh;
    if (!wh || http_server_start(http, err, sizeof err) != 0) {
        fprintf(stderr, "webhook: %s\n", err);
        return 1;
    }
    snprintf(s_base, sizeof s_base, "http://127.0.0.1:%d", http_server_port(http));

    RUN(test_signed_deposit_is_journaled_once);
    RUN(test_underscore_and_lowercase_headers_are_accepted);
    RUN(test_bad_signatures_are_401_and_journal_nothing);
    RUN(test_signed_garbage_is_400_and_journals_nothing);
    RUN(test_wrong_content_type_is_415_and_journals_nothing);
    RUN(test_other_events_are_ignored_with_200);
    RUN(test_oversized_body_is_413_and_journals_nothing);
    RUN(test_journal_failure_is_503);
    RUN(test_check_verdicts_without_http);
    RUN(test_direct_reader_takes_cobos_bodies_and_agrees_on_every_field);
    RUN(test_direct_reader_declines_what_it_does_not_take_and_the_answer_stays_the_same);
    RUN(test_withdrawal_statuses_reach_the_withdrawal_function_and_sweeps_do_not);
    RUN(test_real_pipeline_journals_once_and_refuses_forgeries);

    free(s_full);
    webhook_stats_t st;
    webhook_stats(wh, &st);
    printf("# accepted=%lu repeated=%lu rejected=%lu ignored=%lu failed=%lu\n", st.accepted, st.repeated,
           st.rejected, st.ignored, st.failed);
    http_server_destroy(&http);
    webhook_destroy(&wh);
    webhook_destroy(&wh);
    journal_destroy(&s_journal);
    cobo_signer_destroy(&s_cobo);
    cobo_signer_destroy(&s_other);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    curl_global_cleanup();
    return check_done();
}
