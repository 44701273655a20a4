/* test_badinput.c — the webhook route against a corpus of malformed requests. Each body is signed
 * correctly (so the test is about the body, not the signature) and must get a clear 4xx with a JSON
 * reason; nothing is journaled; the server never crashes and answers a good request afterwards. */
#include "tests/check.h"
#include "tests/integration/harness.h"

static h_env_t s_env;
static int s_ready;

/* A valid pending deposit event (status Confirming: nothing downstream is asked for). */
static char *s_valid_body(const char *tx_id, const char *event_id)
{
    return h_pending_body(tx_id, event_id, "TBadInputAddr000000000000000000001");
}

/* body with the first occurrence of from replaced by to (malloc'd; *len set). */
static char *s_replace(const char *body, const char *from, const char *to, size_t *len)
{
    const char *p = strstr(body, from);
    if (!p) {
        h_log("corpus: '%s' not in the body", from);
        *len = strlen(body);
        return strdup(body);
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_add(&b, body, (size_t) (p - body));
    jbuf_puts(&b, to);
    jbuf_puts(&b, p + strlen(from));
    *len = b.len;
    return jbuf_take(&b);
}

/* POSTs len bytes signed over body|ts; content_type NULL for application/json; extra header may be
 * NULL. Returns the response. */
static h_resp_t s_post(const char *body, size_t len, const char *content_type, const char *extra)
{
    char ts[32], sig[COBO_SIG_HEX_LEN + 1], hts[64], hsig[200], hct[128], url[128];
    snprintf(ts, sizeof ts, "%" PRId64, h_wall_ms());
    h_sign(H_COBO_KEY_SEED, body, len, ts, sig);
    snprintf(hts, sizeof hts, "Biz-Timestamp: %s", ts);
    snprintf(hsig, sizeof hsig, "Biz-Resp-Signature: %s", sig);
    snprintf(hct, sizeof hct, "Content-Type: %s", content_type ? content_type : "application/json");
    const char *headers[] = { hts, hsig, hct, extra, NULL };
    snprintf(url, sizeof url, "%s/cobo/webhook", s_env.webhook_url);
    return h_http_on(NULL, "POST", url, headers, body, len, 15000);
}

/* 1 if the server still answers HTTP at all (any status). */
static int s_alive(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/cobo/webhook", s_env.webhook_url);
    h_resp_t r = h_http("GET", url, NULL);
    int ok = r.status > 0;
    h_resp_free(&r);
    int st;
    return ok && !h_exited(s_env.kasa_pid, &st);
}

/* The shared assertion: a 4xx, a JSON object with an "error" string, nothing journaled, alive. */
static void s_expect_4xx(const char *what, const char *body, size_t len, const char *content_type, int want)
{
    uint64_t before = h_journal_records(s_env.journal);
    h_resp_t r = s_post(body, len, content_type, NULL);
    int ok_status = want ? r.status == want : (r.status >= 400 && r.status < 500);
    CHECK(ok_status);
    bson_t doc;
    char err[128];
    int json_ok = json_parse(r.body, r.len, &doc, err, sizeof err) == 0;
    const char *reason = json_ok ? json_get_str(&doc, "error") : NULL;
    CHECK(reason != NULL && reason[0] != '\0');
    if (!ok_status || !reason)
        h_log("%s: got %ld %.200s (curl %d)", what, r.status, r.body, r.curl_code);
    if (json_ok)
        bson_destroy(&doc);
    h_resp_free(&r);
    CHECK_EQ_INT(h_journal_records(s_env.journal), before);
    CHECK(s_alive());
}

static void test_not_json_is_400(void)
{
    CHECK(s_ready);
    s_expect_4xx("not json", "hello, kasa", 11, NULL, 400);
    s_expect_4xx("empty", "", 0, NULL, 400);
    s_expect_4xx("json array", "[1,2,3]", 7, NULL, 400);
    s_expect_4xx("json string", "\"Deposit\"", 9, NULL, 400);
    s_expect_4xx("json number", "12345", 5, NULL, 400);
    s_expect_4xx("json null", "null", 4, NULL, 400);
}

static void test_truncated_json_is_400(void)
{
    CHECK(s_ready);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000001", "ba0ba0ba-0000-4000-8000-0000000000e1");
    size_t len = strlen(body);
    s_expect_4xx("truncated half", body, len / 2, NULL, 400);
    s_expect_4xx("truncated last byte", body, len - 1, NULL, 400);
    free(body);
}

static void test_missing_fields_are_400(void)
{
    CHECK(s_ready);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000002", "ba0ba0ba-0000-4000-8000-0000000000e2");
    static const struct {
        const char *from, *to;
    } cases[] = {
        { "\"transaction_id\":", "\"transaction_idx\":" },
        { "\"amount\":", "\"amountx\":" },
        { "\"address\":\"TBad", "\"addressx\":\"TBad" },
        { "\"status\":\"Confirming\"", "\"statusx\":\"Confirming\"" },
        { "\"token_id\":", "\"token_idx\":" },
        { "\"data\":{", "\"datax\":{" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *b = s_replace(body, cases[i].from, cases[i].to, &len);
        s_expect_4xx(cases[i].from, b, len, NULL, 400);
        free(b);
    }
    s_expect_4xx("empty object", "{}", 2, NULL, 400);
    free(body);
}

static void test_wrong_types_are_400(void)
{
    CHECK(s_ready);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000003", "ba0ba0ba-0000-4000-8000-0000000000e3");
    static const struct {
        const char *from, *to;
    } cases[] = {
        { "\"transaction_id\":\"ba0ba0ba-0000-4000-8000-000000000003\"", "\"transaction_id\":12345" },
        { "\"amount\":\"250\"", "\"amount\":250" },           /* a JSON number: never a double */
        { "\"amount\":\"250\"", "\"amount\":[\"250\"]" },
        { "\"amount\":\"250\"", "\"amount\":null" },
        { "\"data\":{", "\"data\":[{" },
        { "\"destination\":{", "\"destination\":\"x\",\"y\":{" },
        { "\"status\":\"Confirming\"", "\"status\":true" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *b = s_replace(body, cases[i].from, cases[i].to, &len);
        s_expect_4xx(cases[i].to, b, len, NULL, 400);
        free(b);
    }
    free(body);
}

static void test_absurd_amounts_are_400(void)
{
    CHECK(s_ready);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000004", "ba0ba0ba-0000-4000-8000-0000000000e4");
    static const char *const amounts[] = {
        "\"amount\":\"1e309\"",  "\"amount\":\"-5\"", "\"amount\":\"1.0000000000000000001\"" /* 19 decimals */,
        "\"amount\":\"NaN\"",    "\"amount\":\"\"",   "\"amount\":\"1,5\"", "\"amount\":\" 250\"",
        "\"amount\":\"250.\"",   "\"amount\":\".5\"", "\"amount\":\"+5\"",
        "\"amount\":\"99999999999999999999999999999999\"", "\"amount\":\"0x10\"", "\"amount\":\"Infinity\"",
    };
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        size_t len;
        char *b = s_replace(body, "\"amount\":\"250\"", amounts[i], &len);
        s_expect_4xx(amounts[i], b, len, NULL, 400);
        free(b);
    }
    free(body);
}

static void test_nul_bytes_and_invalid_utf8_are_400(void)
{
    CHECK(s_ready);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000005", "ba0ba0ba-0000-4000-8000-0000000000e5");
    size_t len = strlen(body);
    /* a NUL inside the address string */
    char *nul = strdup(body);
    char *a = strstr(nul, "TBadInput");
    CHECK(a != NULL);
    if (a)
        a[4] = '\0';
    s_expect_4xx("NUL in a string", nul, len, NULL, 400);
    /* a NUL right after the object */
    char *tail = malloc(len + 2);
    memcpy(tail, body, len);
    tail[len] = '\0';
    tail[len + 1] = 'x';
    s_expect_4xx("NUL after the object", tail, len + 2, NULL, 400);
    /* invalid UTF-8 in the address */
    char *bad = strdup(body);
    a = strstr(bad, "TBadInput");
    if (a) {
        a[1] = (char) 0xff;
        a[2] = (char) 0xfe;
    }
    s_expect_4xx("invalid UTF-8", bad, len, NULL, 400);
    /* an overlong encoding of '"' (C0 A2) */
    char *overlong = strdup(body);
    a = strstr(overlong, "TBadInput");
    if (a) {
        a[1] = (char) 0xc0;
        a[2] = (char) 0xa2;
    }
    s_expect_4xx("overlong UTF-8", overlong, len, NULL, 400);
    free(nul);
    free(tail);
    free(bad);
    free(overlong);
    free(body);
}

static void test_oversized_fields_are_400(void)
{
    CHECK(s_ready);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000006", "ba0ba0ba-0000-4000-8000-0000000000e6");
    char big[2100];
    memset(big, 'A', 2000);
    big[2000] = '\0';
    char repl[2200];
    snprintf(repl, sizeof repl, "\"transaction_id\":\"%s\"", big);
    size_t len;
    char *b = s_replace(body, "\"transaction_id\":\"ba0ba0ba-0000-4000-8000-000000000006\"", repl, &len);
    s_expect_4xx("transaction_id of 2000 chars", b, len, NULL, 400);
    free(b);
    snprintf(repl, sizeof repl, "\"address\":\"%s\"", big);
    b = s_replace(body, "\"address\":\"TBadInputAddr000000000000000000001\"", repl, &len);
    s_expect_4xx("address of 2000 chars", b, len, NULL, 400);
    free(b);
    /* deep nesting inside the body limit */
    jbuf_t deep;
    jbuf_init(&deep);
    for (int i = 0; i < 20000; i++)
        jbuf_puts(&deep, "[");
    s_expect_4xx("deep nesting", deep.data, deep.len, NULL, 400);
    jbuf_free(&deep);
    free(body);
}

static void test_body_over_limit_is_413(void)
{
    CHECK(s_ready);
    size_t len = 10u << 20;
    char *big = malloc(len);
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    s_expect_4xx("10 MB body", big, len, NULL, 413);
    /* just over the default 64 KiB limit */
    s_expect_4xx("65537 bytes", big + len - 65537, 65537, NULL, 413);
    free(big);
}

static void test_wrong_content_type_is_4xx(void)
{
    CHECK(s_ready);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000007", "ba0ba0ba-0000-4000-8000-0000000000e7");
    s_expect_4xx("text/plain", body, strlen(body), "text/plain", 0);
    s_expect_4xx("form", body, strlen(body), "application/x-www-form-urlencoded", 0);
    free(body);
}

static void test_huge_header_and_get_are_refused(void)
{
    CHECK(s_ready);
    uint64_t before = h_journal_records(s_env.journal);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000008", "ba0ba0ba-0000-4000-8000-0000000000e8");
    size_t hl = 200000;
    char *hdr = malloc(hl + 16);
    memcpy(hdr, "X-Huge: ", 8);
    memset(hdr + 8, 'h', hl);
    hdr[8 + hl] = '\0';
    h_resp_t r = s_post(body, strlen(body), NULL, hdr);
    /* the server refuses it (4xx) or drops the connection; either way nothing is journaled */
    CHECK(r.status == 0 || (r.status >= 400 && r.status < 500));
    h_resp_free(&r);
    free(hdr);
    CHECK(s_alive());
    char url[128];
    snprintf(url, sizeof url, "%s/cobo/webhook", s_env.webhook_url);
    r = h_http("GET", url, NULL);
    CHECK(r.status >= 400 && r.status < 500);
    h_resp_free(&r);
    r = h_http_on(NULL, "PUT", url, NULL, body, strlen(body), 5000);
    CHECK(r.status >= 400 && r.status < 500);
    h_resp_free(&r);
    CHECK_EQ_INT(h_journal_records(s_env.journal), before);
    free(body);
}

static void test_good_request_still_accepted_afterwards(void)
{
    CHECK(s_ready);
    uint64_t before = h_journal_records(s_env.journal);
    char *body = s_valid_body("ba0ba0ba-0000-4000-8000-000000000009", "ba0ba0ba-0000-4000-8000-0000000000e9");
    h_resp_t r = s_post(body, strlen(body), "application/json; charset=utf-8", NULL);
    CHECK_EQ_INT(r.status, 201);
    h_resp_free(&r);
    CHECK_EQ_INT(h_journal_records(s_env.journal), before + 1);
    free(body);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "journal", "verify", s_env.journal, NULL), 0);
    free(out);
}

int main(void)
{
    s_ready = h_env_init(&s_env, "badinput") == 0 && h_sims_start(&s_env, NULL) == 0 &&
              h_config_write(&s_env, NULL) == 0 && h_kasa_start(&s_env) == 0;
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_not_json_is_400);
    RUN(test_truncated_json_is_400);
    RUN(test_missing_fields_are_400);
    RUN(test_wrong_types_are_400);
    RUN(test_absurd_amounts_are_400);
    RUN(test_nul_bytes_and_invalid_utf8_are_400);
    RUN(test_oversized_fields_are_400);
    RUN(test_body_over_limit_is_413);
    RUN(test_wrong_content_type_is_4xx);
    RUN(test_huge_header_and_get_are_refused);
    RUN(test_good_request_still_accepted_afterwards);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
