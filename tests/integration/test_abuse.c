/* test_abuse.c — the front door under abuse: `kasa serve` and the simulators as child processes,
 * attacked the way a review attacked the demo.
 *
 *   - Behind a proxy (KASA_TRUSTED_PROXIES=127.0.0.1, clients named by X-Forwarded-For): failures of
 *     many clients lock out nobody else; an attacker failing on an account waits longer and longer
 *     while the owner, elsewhere, logs in; forwarding headers from an untrusted peer are ignored;
 *     junk logins from thousands of fresh addresses do not reset an attacker's delay.
 *   - Investor (read-only) passwords are refused; cookies are Secure by default; QR codes and API
 *     answers are not stored; a Cobo refusal reaches the investor as a request id, its words only
 *     the log. */
#include "tests/integration/harness.h"

#include "tests/check.h"

static h_env_t s_env;

/* ---- requests as a client behind the proxy ----------------------------------------------------- */

typedef struct {
    long status;
    char *body;
    jbuf_t headers;
} s_ans_t;

static void s_ans_free(s_ans_t *a)
{
    free(a->body);
    jbuf_free(&a->headers);
    memset(a, 0, sizeof *a);
}

/* A request to kasa from source (a loopback address, NULL: 127.0.0.1) with X-Forwarded-For xff
 * (NULL: none), the session cookie sid and CSRF token csrf (NULL: none), and a JSON body (NULL: none). */
static s_ans_t s_req(const char *source, const char *xff, const char *method, const char *path, const char *sid,
                     const char *csrf, const char *body)
{
    char url[256], hx[128], hc[128], ht[128];
    snprintf(url, sizeof url, "%s%s", s_env.kasa_url, path);
    const char *headers[4] = { 0 };
    int n = 0;
    if (xff) {
        snprintf(hx, sizeof hx, "X-Forwarded-For: %s", xff);
        headers[n++] = hx;
    }
    if (sid) {
        snprintf(hc, sizeof hc, "Cookie: kasa_sid=%s", sid);
        headers[n++] = hc;
    }
    if (csrf) {
        snprintf(ht, sizeof ht, "X-CSRF-Token: %s", csrf);
        headers[n++] = ht;
    }
    s_ans_t a;
    memset(&a, 0, sizeof a);
    jbuf_init(&a.headers);
    h_resp_t r = h_http_full(NULL, method, url, headers, body, body ? strlen(body) : 0, 15000, source, &a.headers);
    jbuf_add(&a.headers, "", 0);
    a.status = r.status;
    a.body = r.body;
    return a;
}

/* The value of header name in a (case-insensitive) into out; 0, or -1. */
static int s_header(const s_ans_t *a, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = a->headers.data; p && *p;) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            snprintf(out, len, "%.*s", (int) strcspn(p, "\r\n"), p);
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

typedef struct {
    char sid[80];
    char csrf[80];
} s_sess_t;

/* A login as client xff (through the proxy 127.0.0.1); the status, and on 200 the session in *s. */
static long s_login_as(const char *source, const char *xff, uint64_t login, const char *password, s_sess_t *s,
                       long *retry_after)
{
    char body[200];
    snprintf(body, sizeof body, "{\"login\":\"%llu\",\"password\":\"%s\"}", (unsigned long long) login, password);
    s_ans_t a = s_req(source, xff, "POST", "/api/login", NULL, NULL, body);
    char v[300] = "";
    if (retry_after)
        *retry_after = s_header(&a, "Retry-After", v, sizeof v) == 0 ? atol(v) : -1;
    if (a.status == 200 && s) {
        s_header(&a, "Set-Cookie", v, sizeof v);
        const char *id = strstr(v, "kasa_sid=");
        snprintf(s->sid, sizeof s->sid, "%.64s", id ? id + 9 : "");
        const char *c = strstr(a.body, "\"csrf\":\"");
        snprintf(s->csrf, sizeof s->csrf, "%.64s", c ? c + 8 : "");
    }
    long st = a.status;
    s_ans_free(&a);
    return st;
}

/* ---- finding: behind a proxy, failed logins lock out everyone ------------------------------------ */

static void test_behind_a_proxy_failures_of_many_clients_lock_out_nobody(void)
{
    char xff[64];
    for (int i = 0; i < 25; i++) {      /* 25 clients, one wrong password each, on several accounts */
        snprintf(xff, sizeof xff, "198.51.100.%d", 10 + i);
        CHECK_EQ_INT(s_login_as(NULL, xff, H_MT5_FIRST + (uint64_t) (i % 4), "wrong", NULL, NULL), 401);
    }
    /* one investor more, through the same proxy: not limited by the others' failures */
    CHECK_EQ_INT(s_login_as(NULL, "203.0.113.9", H_MT5_FIRST + 8, H_MT5_PW, NULL, NULL), 200);
    /* and the accounts others failed on still open for their owners */
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(s_login_as(NULL, "203.0.113.20", H_MT5_FIRST + (uint64_t) i, H_MT5_PW, NULL, NULL), 200);
}

static void test_an_attacker_cannot_lock_the_owner_out(void)
{
    const uint64_t victim = H_MT5_FIRST + 4;
    long ra = 0;
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(s_login_as(NULL, "198.51.100.66", victim, "guess", NULL, NULL), 401);
    CHECK_EQ_INT(s_login_as(NULL, "198.51.100.66", victim, "guess", NULL, &ra), 429);
    CHECK(ra >= 1 && ra <= 2);                    /* a delay, growing: not a 15-minute lock */
    CHECK_EQ_INT(s_login_as(NULL, "198.51.100.66", victim, H_MT5_PW, NULL, NULL), 429);   /* the attacker waits */
    h_sleep_ms(1100);
    CHECK_EQ_INT(s_login_as(NULL, "198.51.100.66", victim, "guess", NULL, NULL), 401);
    CHECK_EQ_INT(s_login_as(NULL, "198.51.100.66", victim, "guess", NULL, &ra), 429);
    CHECK(ra >= 2 && ra <= 3);                    /* twice as long */
    /* the owner, at home, is not slowed at all */
    s_sess_t s;
    CHECK_EQ_INT(s_login_as(NULL, "203.0.113.44", victim, H_MT5_PW, &s, NULL), 200);
    CHECK_EQ_INT(strlen(s.sid), 64);
}

static void test_forwarded_headers_from_an_untrusted_peer_are_ignored(void)
{
    const uint64_t login = H_MT5_FIRST + 5;
    char xff[64];
    for (int i = 0; i < 5; i++) {       /* a direct client (127.0.0.2) naming a new address each time */
        snprintf(xff, sizeof xff, "100.64.0.%d", i + 1);
        CHECK_EQ_INT(s_login_as("127.0.0.2", xff, login, "guess", NULL, NULL), 401);
    }
    CHECK_EQ_INT(s_login_as("127.0.0.2", "100.64.0.99", login, "guess", NULL, NULL), 429);   /* it is 127.0.0.2 */
    /* a client that prepends a fake address to the proxy's chain is known by the proxy's entry */
    for (int i = 0; i < 5; i++) {
        snprintf(xff, sizeof xff, "100.64.1.%d, 198.51.100.88", i + 1);
        CHECK_EQ_INT(s_login_as(NULL, xff, login, "guess", NULL, NULL), 401);
    }
    CHECK_EQ_INT(s_login_as(NULL, "100.64.1.99, 198.51.100.88", login, "guess", NULL, NULL), 429);
}

typedef struct {
    int from, to;
    int answered;
} s_junk_t;

static void *s_junk(void *arg)
{
    s_junk_t *j = arg;
    char xff[64];
    for (int i = j->from; i < j->to; i++) {
        snprintf(xff, sizeof xff, "100.%d.%d.1", 70 + (i >> 8), i & 255);
        if (s_login_as(NULL, xff, 900000 + (uint64_t) i, "junk", NULL, NULL) == 401)
            j->answered++;
    }
    return NULL;
}

static void test_junk_logins_from_fresh_addresses_do_not_reset_a_delay(void)
{
    const uint64_t victim = H_MT5_FIRST + 6;
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(s_login_as(NULL, "198.51.100.77", victim, "guess", NULL, NULL), 401);
    enum { THREADS = 4, JUNK = 2100 };
    s_junk_t j[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        j[t] = (s_junk_t){.from = t * JUNK / THREADS, .to = (t + 1) * JUNK / THREADS};
        pthread_create(&th[t], NULL, s_junk, &j[t]);
    }
    int answered = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        answered += j[t].answered;
    }
    CHECK_EQ_INT(answered, JUNK);       /* every junk login was judged (and counted) */
    long ra = 0;
    /* 2,100 logins later the attacker's 5 failures still count: it must wait (the delay that was
     * due at its 5th failure has passed by now, so its 6th guess is judged and the next waits) */
    long st = s_login_as(NULL, "198.51.100.77", victim, "guess", NULL, &ra);
    if (st == 401)
        st = s_login_as(NULL, "198.51.100.77", victim, "guess", NULL, &ra);
    CHECK_EQ_INT(st, 429);
}

/* ---- finding: small leaks ------------------------------------------------------------------------ */

static void test_investor_password_is_refused_by_default(void)
{
    CHECK_EQ_INT(s_login_as(NULL, "203.0.113.50", H_MT5_FIRST + 7, H_MT5_READONLY_PW, NULL, NULL), 401);
    CHECK_EQ_INT(s_login_as(NULL, "203.0.113.50", H_MT5_FIRST + 7, H_MT5_PW, NULL, NULL), 200);
}

static void test_cookie_is_secure_and_answers_are_not_stored(void)
{
    char body[200];
    snprintf(body, sizeof body, "{\"login\":\"%d\",\"password\":\"%s\"}", H_MT5_FIRST + 9, H_MT5_PW);
    s_ans_t a = s_req(NULL, "203.0.113.60", "POST", "/api/login", NULL, NULL, body);
    CHECK_EQ_INT(a.status, 200);
    char v[300] = "";
    CHECK_EQ_INT(s_header(&a, "Set-Cookie", v, sizeof v), 0);
    CHECK(strstr(v, "; Secure") != NULL);         /* KASA_COOKIE_SECURE is on unless turned off */
    CHECK_EQ_INT(s_header(&a, "Cache-Control", v, sizeof v), 0);
    CHECK_EQ_STR(v, "no-store");
    s_sess_t s;
    const char *c = strstr(a.body, "\"csrf\":\"");
    snprintf(s.csrf, sizeof s.csrf, "%.64s", c ? c + 8 : "");
    s_header(&a, "Set-Cookie", v, sizeof v);
    snprintf(s.sid, sizeof s.sid, "%.64s", strstr(v, "kasa_sid=") ? strstr(v, "kasa_sid=") + 9 : "");
    s_ans_free(&a);

    a = s_req(NULL, "203.0.113.60", "POST", "/api/wallets", s.sid, s.csrf, "{\"chain\":\"TRON_USDT\"}");
    CHECK_EQ_INT(a.status, 201);
    s_ans_free(&a);
    a = s_req(NULL, "203.0.113.60", "GET", "/api/wallets/TRON_USDT/qr.svg", s.sid, NULL, NULL);
    CHECK_EQ_INT(a.status, 200);
    CHECK_EQ_INT(s_header(&a, "Cache-Control", v, sizeof v), 0);
    CHECK_EQ_STR(v, "no-store");                  /* the address's QR is gone with the session */
    s_ans_free(&a);
    const char *paths[] = { "/api/session", "/api/wallets", "/api/deposits", "/api/me" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        a = s_req(NULL, "203.0.113.60", "GET", paths[i], s.sid, NULL, NULL);
        CHECK_EQ_INT(a.status, 200);
        CHECK_EQ_INT(s_header(&a, "Cache-Control", v, sizeof v), 0);
        CHECK_EQ_STR(v, "no-store");
        s_ans_free(&a);
    }
}

static void test_a_cobo_refusal_shows_a_request_id_not_cobos_words(void)
{
    s_sess_t s;
    CHECK_EQ_INT(s_login_as(NULL, "203.0.113.70", H_MT5_FIRST + 3, H_MT5_PW, &s, NULL), 200);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"bad_signature_once\":true}"), 200);
    s_ans_t a = s_req(NULL, "203.0.113.70", "POST", "/api/wallets", s.sid, s.csrf, "{\"chain\":\"TRON_USDT\"}");
    CHECK_EQ_INT(a.status, 502);
    const char *rid = strstr(a.body, "\"request_id\":\"");
    CHECK(rid != NULL);
    char id[40] = "";
    if (rid)
        snprintf(id, sizeof id, "%.16s", rid + 14);
    CHECK_EQ_INT(strspn(id, "0123456789abcdef"), 16);
    CHECK(strstr(a.body, "Cobo") == NULL && strstr(a.body, "signature") == NULL);   /* no inner words */
    s_ans_free(&a);
    /* the log has the reason, under that id */
    size_t len = 0;
    char *log = h_read_file(s_env.kasa_log, &len);
    char want[64];
    snprintf(want, sizeof want, "req=%s", id);
    const char *line = log ? strstr(log, want) : NULL;
    CHECK(line != NULL);
    if (line) {
        const char *end = strchr(line, '\n');
        CHECK(strstr(line, "reason=") != NULL && (!end || strstr(line, "reason=") < end));
    }
    free(log);
}

static void test_kasa_stops_cleanly(void)
{
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);       /* exit 0, sanitizers quiet */
}

int main(void)
{
    if (h_env_init(&s_env, "abuse") != 0 || h_sims_start(&s_env, NULL) != 0 ||
        h_config_write(&s_env, "KASA_TRUSTED_PROXIES=127.0.0.1\n") != 0 || h_kasa_start(&s_env) != 0) {
        h_env_destroy(&s_env);
        printf("FAIL setup\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_behind_a_proxy_failures_of_many_clients_lock_out_nobody);
    RUN(test_an_attacker_cannot_lock_the_owner_out);
    RUN(test_forwarded_headers_from_an_untrusted_peer_are_ignored);
    RUN(test_junk_logins_from_fresh_addresses_do_not_reset_a_delay);
    RUN(test_investor_password_is_refused_by_default);
    RUN(test_cookie_is_secure_and_answers_are_not_stored);
    RUN(test_a_cobo_refusal_shows_a_request_id_not_cobos_words);
    RUN(test_kasa_stops_cleanly);
    int failed = check_done();
    h_env_finish(&s_env, failed != 0);
    return failed;
}
