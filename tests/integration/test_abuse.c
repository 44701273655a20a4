/* test_abuse.c — the front door under abuse: `kasa serve` and the simulators as child processes,
 * attacked the way a review attacked the demo.
 *
 *   - Behind a proxy (KASA_TRUSTED_PROXIES=127.0.0.1, clients named by X-Forwarded-For): failures of
 *     many clients lock out nobody else; an attacker failing on an account waits longer and longer
 *     while the owner, elsewhere, logs in; forwarding headers from an untrusted peer are ignored;
 *     junk logins from thousands of fresh addresses do not reset an attacker's delay.
 *   - Investor (read-only) passwords are refused; cookies are Secure by default; QR codes and API
 *     answers are not stored; a Cobo refusal reaches the investor as a request id, its words only
 *     the log.
 *   - The event stream ends within a second of logout; static files are never served through a
 *     symlink; the journal (0700, files 0600) and the control socket (0600) are private; a config
 *     file others may read is warned about. */
#include "tests/integration/harness.h"

#include <dirent.h>

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

/* ---- finding: what outlives a session, what leaks through files ------------------------------------ */

typedef struct {
    char sid[80];
    jbuf_t text;
    int64_t ended_ms;
} s_stream_t;

static size_t s_stream_sink(char *p, size_t size, size_t n, void *arg)
{
    jbuf_add(&((s_stream_t *) arg)->text, p, size * n);
    return size * n;
}

static void *s_stream_read(void *arg)
{
    s_stream_t *st = arg;
    char url[160], cookie[128];
    snprintf(url, sizeof url, "%s/api/events", s_env.kasa_url);
    snprintf(cookie, sizeof cookie, "Cookie: kasa_sid=%s", st->sid);
    CURL *c = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, cookie);
    hl = curl_slist_append(hl, "X-Forwarded-For: 203.0.113.80");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_stream_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 12000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_perform(c);
    st->ended_ms = h_now_ms();
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return NULL;
}

static void test_logout_ends_the_event_stream_within_a_second(void)
{
    s_sess_t s;
    CHECK_EQ_INT(s_login_as(NULL, "203.0.113.80", H_MT5_FIRST + 2, H_MT5_PW, &s, NULL), 200);
    s_stream_t st;
    memset(&st, 0, sizeof st);
    snprintf(st.sid, sizeof st.sid, "%s", s.sid);
    jbuf_init(&st.text);
    pthread_t th;
    pthread_create(&th, NULL, s_stream_read, &st);
    h_sleep_ms(500);                              /* the stream is open */
    int64_t t0 = h_now_ms();
    s_ans_t a = s_req(NULL, "203.0.113.80", "POST", "/api/logout", s.sid, s.csrf, NULL);
    CHECK_EQ_INT(a.status, 200);
    s_ans_free(&a);
    pthread_join(th, NULL);
    jbuf_add(&st.text, "", 0);
    h_log("the stream ended %lld ms after logout", (long long) (st.ended_ms - t0));
    CHECK(strstr(st.text.data, "retry:") != NULL);   /* it was open */
    CHECK(st.ended_ms - t0 < 1000);
    jbuf_free(&st.text);
}

static void test_static_files_are_never_served_through_a_symlink(void)
{
    s_ans_t a = s_req(NULL, NULL, "GET", "/real/ok.txt", NULL, NULL, NULL);
    CHECK_EQ_INT(a.status, 200);
    CHECK(strstr(a.body, "public") != NULL);
    s_ans_free(&a);
    const char *refused[] = { "/linked/secret.txt", "/secret-link.txt", "/linked/", "/real/../linked/secret.txt" };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        a = s_req(NULL, NULL, "GET", refused[i], NULL, NULL, NULL);
        CHECK(a.status == 404 || a.status == 400);
        CHECK(strstr(a.body, "top secret") == NULL);
        s_ans_free(&a);
    }
}

static void test_journal_and_control_socket_are_private(void)
{
    struct stat st;
    CHECK_EQ_INT(stat(s_env.journal, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0700);
    DIR *d = opendir(s_env.journal);
    CHECK(d != NULL);
    int files = 0, sockets = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[900];
        snprintf(path, sizeof path, "%s/%s", s_env.journal, e->d_name);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISSOCK(st.st_mode))
            sockets++;
        else
            files++;
        if ((st.st_mode & 0777) != 0600)
            h_log("%s has mode %04o", e->d_name, (unsigned) (st.st_mode & 0777));
        CHECK_EQ_INT(st.st_mode & 0777, 0600);
    }
    if (d)
        closedir(d);
    CHECK(files >= 2);                            /* a segment and the lock */
    CHECK_EQ_INT(sockets, 1);                     /* control.sock */
}

static void test_a_config_file_others_may_read_is_warned_about(void)
{
    size_t len = 0;
    char *log = h_read_file(s_env.kasa_log, &len);
    CHECK(log && strstr(log, "event=config.not_private") != NULL && strstr(log, "chmod 600") != NULL);
    free(log);
}

static void test_kasa_stops_cleanly(void)
{
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);       /* exit 0, sanitizers quiet */
}

/* A static folder with a file, a symlinked folder and a symlinked file leading out of it. */
static int s_static_setup(char *extra, size_t len)
{
    char dir[600], cmd[8192];
    snprintf(dir, sizeof dir, "%s/static", s_env.dir);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/real' '%s/outside' && echo public > '%s/real/ok.txt' && echo 'top secret' > '%s/outside/secret.txt'"
             " && echo '<html></html>' > '%s/index.html' && ln -s '%s/outside' '%s/linked'"
             " && ln -s '%s/outside/secret.txt' '%s/secret-link.txt'",
             dir, s_env.dir, dir, s_env.dir, dir, s_env.dir, dir, s_env.dir, dir);
    snprintf(extra, len, "KASA_TRUSTED_PROXIES=127.0.0.1\nKASA_STATIC_DIR=%s\n", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    char extra[800];
    if (h_env_init(&s_env, "abuse") != 0 || h_sims_start(&s_env, NULL) != 0 || s_static_setup(extra, sizeof extra) != 0 ||
        h_config_write(&s_env, extra) != 0 || chmod(s_env.config, 0644) != 0 || h_kasa_start(&s_env) != 0) {
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
    RUN(test_logout_ends_the_event_stream_within_a_second);
    RUN(test_static_files_are_never_served_through_a_symlink);
    RUN(test_journal_and_control_socket_are_private);
    RUN(test_a_config_file_others_may_read_is_warned_about);
    RUN(test_kasa_stops_cleanly);
    int failed = check_done();
    h_env_finish(&s_env, failed != 0);
    return failed;
}
