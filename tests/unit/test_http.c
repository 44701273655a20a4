/* test_http.c — the HTTP server over real sockets (libcurl against 127.0.0.1, port 0). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema/json.h"
#include "tests/check.h"
#include "web/http.h"

#define MAX_BODY 4096

typedef struct {
    long status;
    jbuf_t body;
    jbuf_t headers;
} resp_t;

static size_t s_write(char *p, size_t sz, size_t n, void *arg)
{
    jbuf_add(arg, p, sz * n);
    return sz * n;
}

typedef struct {
    const char *data;
    size_t len, pos;
} upload_t;

static size_t s_read(char *buf, size_t sz, size_t n, void *arg)
{
    upload_t *u = arg;
    size_t want = sz * n;
    if (want > 1000)
        want = 1000;   /* many small pieces */
    size_t left = u->len - u->pos;
    if (want > left)
        want = left;
    memcpy(buf, u->data + u->pos, want);
    u->pos += want;
    return want;
}

static int s_port;
static char s_base[64];

/* Performs one request. headers: NULL-terminated list of "Name: value". chunked: send the body
 * with Transfer-Encoding: chunked. Returns 0 on a completed exchange. */
static int s_request(const char *method, const char *path, const char *body, size_t len,
                     const char *const *headers, int chunked, resp_t *r)
{
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", s_base, path);
    jbuf_init(&r->body);
    jbuf_init(&r->headers);
    r->status = 0;
    struct curl_slist *hl = NULL;
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    upload_t up = { body, len, 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body && chunked) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, s_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    jbuf_add(&r->body, "", 0);
    jbuf_add(&r->headers, "", 0);
    if (!r->body.data) jbuf_puts(&r->body, "");
    if (!r->headers.data) jbuf_puts(&r->headers, "");
    return rc == CURLE_OK ? 0 : -1;
}

static void s_resp_free(resp_t *r)
{
    jbuf_free(&r->body);
    jbuf_free(&r->headers);
}

static int s_has_header(const resp_t *r, const char *line)
{
    return strcasestr(r->headers.data, line) != NULL;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- handlers ---------------------------------------------------------------------------- */

static void h_hello(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    (void) req;
    http_reply(res, 200, "text/plain", "hello", 5);
}

static void h_echo(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    size_t len;
    const char *body = http_body(req, &len);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"method\":");
    jbuf_str(&b, http_method(req));
    jbuf_puts(&b, ",\"path\":");
    jbuf_str(&b, http_path(req));
    jbuf_printf(&b, ",\"len\":%zu,\"x\":", len);
    jbuf_str(&b, http_header(req, "x-test"));
    jbuf_puts(&b, ",\"under\":");
    jbuf_str(&b, http_header(req, "biz_timestamp"));
    jbuf_puts(&b, ",\"q\":");
    jbuf_str(&b, http_query(req, "q"));
    jbuf_puts(&b, ",\"cookie\":");
    jbuf_str(&b, http_cookie(req, "sid"));
    jbuf_puts(&b, ",\"ip\":");
    jbuf_str(&b, http_client_ip(req));
    jbuf_puts(&b, ",\"first\":");
    char first[2] = { len ? body[0] : 0, 0 };
    jbuf_str(&b, first);
    jbuf_puts(&b, "}");
    http_reply_json(res, 200, jbuf_take(&b));
    http_add_header(res, "X-Handler", "echo");
}

static void h_prefix(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    const char *rest = http_path(req) + strlen("/api/items/");
    http_reply(res, 200, "text/plain", rest, strlen(rest));
}

static void h_unhandled(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    (void) req;
    (void) res;   /* status stays 0 */
}

static void h_slow(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    (void) req;
    struct timespec ts = { 0, 50 * 1000000L };
    nanosleep(&ts, NULL);
    http_reply(res, 200, "text/plain", "slow", 4);
}

/* A stream: three events, with "nothing yet" answers in between. */
typedef struct {
    int calls;
    int sent;
} sse_t;
static int s_sse_freed;
static pthread_mutex_t s_sse_lock = PTHREAD_MUTEX_INITIALIZER;

static ssize_t s_sse_next(void *arg, char *buf, size_t max)
{
    sse_t *s = arg;
    s->calls++;
    if (s->sent == 3)
        return -1;
    if (s->calls % 3 != 0)
        return 0;
    int n = snprintf(buf, max, "data: event %d\n\n", s->sent + 1);
    s->sent++;
    return n;
}

static void s_sse_free(void *arg)
{
    pthread_mutex_lock(&s_sse_lock);
    s_sse_freed++;
    pthread_mutex_unlock(&s_sse_lock);
    free(arg);
}

/* An endless stream: one event every ~5 polls, until the client goes away. */
static ssize_t s_ticker_next(void *arg, char *buf, size_t max)
{
    sse_t *s = arg;
    if (++s->calls % 5 != 0)
        return 0;
    return snprintf(buf, max, "data: tick %d\n\n", ++s->sent);
}

static void h_ticker(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    (void) req;
    res->status = 200;
    snprintf(res->content_type, sizeof res->content_type, "text/event-stream");
    res->stream = s_ticker_next;
    res->stream_free = s_sse_free;
    res->stream_arg = calloc(1, sizeof(sse_t));
}

static void h_sse(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    (void) req;
    res->status = 200;
    snprintf(res->content_type, sizeof res->content_type, "text/event-stream");
    res->stream = s_sse_next;
    res->stream_free = s_sse_free;
    res->stream_arg = calloc(1, sizeof(sse_t));
}

/* ---- tests ------------------------------------------------------------------------------- */

static char s_tmp[256];

static void test_exact_route_answers_and_adds_security_headers(void)
{
    resp_t r;
    CHECK(s_request("GET", "/hello", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body.data, "hello");
    CHECK(s_has_header(&r, "X-Content-Type-Options: nosniff"));
    CHECK(s_has_header(&r, "Referrer-Policy: no-referrer"));
    CHECK(s_has_header(&r, "Content-Security-Policy:"));
    CHECK(s_has_header(&r, "Content-Type: text/plain"));
    s_resp_free(&r);
}

static void test_unknown_path_is_404_json(void)
{
    resp_t r;
    CHECK(s_request("POST", "/nope", "x", 1, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 404);
    CHECK_EQ_STR(r.body.data, "{\"error\":\"not found\"}");
    CHECK(s_has_header(&r, "Content-Type: application/json"));
    s_resp_free(&r);
    /* with a large body too: the answer comes after the body, so it is not lost to a reset */
    size_t n = 512 * 1024;
    char *big = malloc(n);
    memset(big, 'x', n);
    CHECK(s_request("POST", "/nope", big, n, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 404);
    s_resp_free(&r);
    CHECK(s_request("PUT", "/echo", big, n, NULL, 1, &r) == 0);
    CHECK_EQ_INT(r.status, 405);
    s_resp_free(&r);
    free(big);
}

static void test_wrong_method_is_405_with_allow(void)
{
    resp_t r;
    CHECK(s_request("DELETE", "/echo", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 405);
    CHECK(strstr(r.body.data, "method not allowed") != NULL);
    CHECK(s_has_header(&r, "Allow: POST"));
    s_resp_free(&r);
}

static void test_prefix_route_matches_rest_of_path(void)
{
    resp_t r;
    CHECK(s_request("GET", "/api/items/42/detail", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body.data, "42/detail");
    s_resp_free(&r);
}

static void test_handler_leaving_status_zero_is_404(void)
{
    resp_t r;
    CHECK(s_request("GET", "/unhandled", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 404);
    s_resp_free(&r);
}

static void test_accessors_see_body_headers_query_cookie_ip(void)
{
    const char *hdrs[] = { "X-Test: abc", "Biz_Timestamp: 1700000000000", "Cookie: a=1; sid=s3cr3t", NULL };
    resp_t r;
    CHECK(s_request("POST", "/echo?q=a%2Fb&z=1", "{\"k\":1}", 7, hdrs, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    bson_t doc;
    char err[64];
    CHECK(json_parse(r.body.data, r.body.len, &doc, err, sizeof err) == 0);
    CHECK_EQ_STR(json_get_str(&doc, "method"), "POST");
    CHECK_EQ_STR(json_get_str(&doc, "path"), "/echo");
    int64_t len = 0;
    CHECK(json_get_i64(&doc, "len", &len) == 0);
    CHECK_EQ_INT(len, 7);
    CHECK_EQ_STR(json_get_str(&doc, "x"), "abc");
    CHECK_EQ_STR(json_get_str(&doc, "under"), "1700000000000");  /* underscore headers survive */
    CHECK_EQ_STR(json_get_str(&doc, "q"), "a/b");                /* encoded '/' fine in a query */
    CHECK_EQ_STR(json_get_str(&doc, "cookie"), "s3cr3t");
    CHECK_EQ_STR(json_get_str(&doc, "ip"), "127.0.0.1");
    CHECK_EQ_STR(json_get_str(&doc, "first"), "{");
    bson_destroy(&doc);
    CHECK(s_has_header(&r, "X-Handler: echo"));
    s_resp_free(&r);
}

static void test_body_at_limit_is_accepted(void)
{
    char *big = malloc(MAX_BODY);
    memset(big, 'a', MAX_BODY);
    resp_t r;
    CHECK(s_request("POST", "/echo", big, MAX_BODY, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body.data, "\"len\":4096") != NULL);
    s_resp_free(&r);
    CHECK(s_request("POST", "/echo", big, MAX_BODY, NULL, 1, &r) == 0);   /* chunked, same size */
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body.data, "\"len\":4096") != NULL);
    s_resp_free(&r);
    free(big);
}

static void test_oversized_body_with_content_length_is_413(void)
{
    size_t n = MAX_BODY + 1;
    char *big = malloc(n);
    memset(big, 'a', n);
    resp_t r;
    s_request("POST", "/echo", big, n, NULL, 0, &r);
    CHECK_EQ_INT(r.status, 413);
    CHECK_EQ_STR(r.body.data, "{\"error\":\"body too large\"}");
    s_resp_free(&r);
    free(big);
    /* far over the limit: still a clean 413 (the body is drained, not reset mid-send) */
    n = 1u << 20;
    big = malloc(n);
    memset(big, 'c', n);
    for (int i = 0; i < 3; i++) {
        CHECK(s_request("POST", "/echo", big, n, NULL, 0, &r) == 0);
        CHECK_EQ_INT(r.status, 413);
        s_resp_free(&r);
    }
    free(big);
}

static void test_oversized_chunked_body_is_413(void)
{
    size_t n = 3 * MAX_BODY;
    char *big = malloc(n);
    memset(big, 'b', n);
    resp_t r;
    s_request("POST", "/echo", big, n, NULL, 1, &r);
    CHECK_EQ_INT(r.status, 413);
    CHECK_EQ_STR(r.body.data, "{\"error\":\"body too large\"}");
    s_resp_free(&r);
    free(big);
}

static void test_static_serves_index_and_types(void)
{
    resp_t r;
    CHECK(s_request("GET", "/", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body.data, "<h1>kasa</h1>");
    CHECK(s_has_header(&r, "Content-Type: text/html; charset=utf-8"));
    CHECK(s_has_header(&r, "Content-Security-Policy: default-src 'self'; img-src 'self' data:"));
    CHECK(s_has_header(&r, "X-Content-Type-Options: nosniff"));
    s_resp_free(&r);
    CHECK(s_request("GET", "/app.js", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body.data, "let x = 1;");
    CHECK(s_has_header(&r, "Content-Type: text/javascript"));
    s_resp_free(&r);
    CHECK(s_request("GET", "/css/site.css", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(s_has_header(&r, "Content-Type: text/css"));
    s_resp_free(&r);
    CHECK(s_request("GET", "/missing.html", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 404);
    s_resp_free(&r);
    CHECK(s_request("GET", "/css", NULL, 0, NULL, 0, &r) == 0);   /* a directory */
    CHECK_EQ_INT(r.status, 404);
    s_resp_free(&r);
}

static void test_static_refuses_traversal(void)
{
    static const char *const attempts[] = {
        "/../secret.txt", "/css/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
        "/css%2f..%2f..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/css/..%5c..%5csecret.txt",
        "/app.js%00.html", "/.hidden", "//etc/passwd", "/css/./site.css",
    };
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        resp_t r;
        s_request("GET", attempts[i], NULL, 0, NULL, 0, &r);
        if (!(r.status == 400 || r.status == 404))
            fprintf(stderr, "  traversal %s -> %ld\n", attempts[i], r.status);
        CHECK(r.status == 400 || r.status == 404);
        CHECK(strstr(r.body.data, "TOPSECRET") == NULL);
        CHECK(strstr(r.body.data, "let x") == NULL);
        s_resp_free(&r);
    }
}

static void test_sse_stream_delivers_chunks_and_frees_once(void)
{
    pthread_mutex_lock(&s_sse_lock);
    int before = s_sse_freed;
    pthread_mutex_unlock(&s_sse_lock);
    resp_t r;
    CHECK(s_request("GET", "/events", NULL, 0, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body.data, "data: event 1\n\ndata: event 2\n\ndata: event 3\n\n");
    CHECK(s_has_header(&r, "Content-Type: text/event-stream"));
    s_resp_free(&r);
    int after = before;
    for (int i = 0; i < 100 && after == before; i++) {
        usleep(10000);
        pthread_mutex_lock(&s_sse_lock);
        after = s_sse_freed;
        pthread_mutex_unlock(&s_sse_lock);
    }
    CHECK_EQ_INT(after, before + 1);
}

/* Stops the transfer once the first event has arrived. */
static size_t s_write_until_tick(char *p, size_t sz, size_t n, void *arg)
{
    jbuf_add(arg, p, sz * n);
    return strstr(((jbuf_t *) arg)->data, "tick 1") ? 0 : sz * n;   /* 0: curl aborts */
}

static void test_endless_stream_is_freed_when_the_client_leaves(void)
{
    pthread_mutex_lock(&s_sse_lock);
    int before = s_sse_freed;
    pthread_mutex_unlock(&s_sse_lock);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/ticker", s_base);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write_until_tick);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);   /* closes the connection */
    CHECK(rc == CURLE_WRITE_ERROR);
    CHECK(strstr(b.data, "data: tick 1") != NULL);
    jbuf_free(&b);
    int after = before;
    for (int i = 0; i < 300 && after == before; i++) {   /* up to 3 s */
        usleep(10000);
        pthread_mutex_lock(&s_sse_lock);
        after = s_sse_freed;
        pthread_mutex_unlock(&s_sse_lock);
    }
    CHECK_EQ_INT(after, before + 1);
}

static size_t s_write_count(char *p, size_t sz, size_t n, void *arg)
{
    (void) p;
    __atomic_add_fetch((int *) arg, 1, __ATOMIC_SEQ_CST);
    return sz * n;
}

typedef struct {
    char url[128];
    int chunks;
} streamer_t;

static void *s_streamer(void *arg)
{
    streamer_t *st = arg;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, st->url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write_count);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &st->chunks);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    return NULL;
}

static void test_stopping_the_server_ends_open_streams(void)
{
    char err[256];
    http_server_t *srv = http_server_new("127.0.0.1:0", MAX_BODY, 2, err, sizeof err);
    CHECK(srv != NULL);
    if (!srv)
        return;
    http_route(srv, "GET", "/ticker", h_ticker, NULL);
    CHECK(http_server_start(srv, err, sizeof err) == 0);
    pthread_mutex_lock(&s_sse_lock);
    int before = s_sse_freed;
    pthread_mutex_unlock(&s_sse_lock);
    streamer_t st;
    memset(&st, 0, sizeof st);
    snprintf(st.url, sizeof st.url, "http://127.0.0.1:%d/ticker", http_server_port(srv));
    pthread_t th;
    pthread_create(&th, NULL, s_streamer, &st);
    for (int i = 0; i < 500 && __atomic_load_n(&st.chunks, __ATOMIC_SEQ_CST) == 0; i++)
        usleep(10000);
    CHECK(__atomic_load_n(&st.chunks, __ATOMIC_SEQ_CST) > 0);
    double t0 = s_now();
    http_server_destroy(&srv);
    CHECK(s_now() - t0 < 3.0);
    pthread_join(th, NULL);
    pthread_mutex_lock(&s_sse_lock);
    int after = s_sse_freed;
    pthread_mutex_unlock(&s_sse_lock);
    CHECK_EQ_INT(after, before + 1);
}

typedef struct {
    int ok;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 5; i++) {
        resp_t r;
        if (s_request("GET", "/slow", NULL, 0, NULL, 0, &r) == 0 && r.status == 200 &&
            strcmp(r.body.data, "slow") == 0)
            w->ok++;
        s_resp_free(&r);
    }
    return NULL;
}


static void test_concurrent_requests_run_in_parallel(void)
{
    enum { N = 8 };
    pthread_t th[N];
    worker_t w[N];
    memset(w, 0, sizeof w);
    double t0 = s_now();
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, s_worker, &w[i]);
    int total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        total += w[i].ok;
    }
    double took = s_now() - t0;
    CHECK_EQ_INT(total, N * 5);
    /* 40 handlers of 50 ms each: serial would be 2 s; the pool (8 threads) overlaps them */
    CHECK(took < 1.5);
}

/* Woken answers (http_later_wake): the answer is made by fill on a server thread once woken, from
 * another thread or at once inside the handler; a handle the stopping server answered 503 refuses
 * the wake, and its fill never runs. */
static pthread_mutex_t s_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static http_later_t *s_wake_handle;
static int s_fills, s_fill_on_waker;
static pthread_t s_waker_thread;

static void s_wake_fill(void *arg, const http_request_t *req, http_response_t *res)
{
    pthread_mutex_lock(&s_wake_lock);
    s_fills++;
    if (pthread_equal(pthread_self(), s_waker_thread))
        s_fill_on_waker++;
    pthread_mutex_unlock(&s_wake_lock);
    if (req && res)
        http_reply(res, 200, "text/plain", arg, strlen(arg));
}

static void h_wake_later(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    http_later_t *l = http_later(req, res);
    if (strcmp(http_path(req), "/wake-now") == 0) {
        CHECK_EQ_INT(http_later_wake(l, s_wake_fill, "now"), 0);   /* inside the handler */
        return;
    }
    pthread_mutex_lock(&s_wake_lock);
    s_wake_handle = l;
    pthread_mutex_unlock(&s_wake_lock);
}

static http_later_t *s_wait_handle(void)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&s_wake_lock);
        http_later_t *l = s_wake_handle;
        s_wake_handle = NULL;
        pthread_mutex_unlock(&s_wake_lock);
        if (l)
            return l;
        usleep(5000);
    }
    return NULL;
}

typedef struct {
    char path[32];
    resp_t r;
    int rc;
} wake_client_t;

static void *s_wake_client(void *arg)
{
    wake_client_t *c = arg;
    c->rc = s_request("GET", c->path, NULL, 0, NULL, 0, &c->r);
    return NULL;
}

static void test_woken_answer_is_made_on_a_server_thread_and_refused_after_stop(void)
{
    char err[256];
    http_server_t *srv = http_server_new("127.0.0.1:0", MAX_BODY, 2, err, sizeof err);
    CHECK(srv != NULL);
    if (!srv)
        return;
    http_route(srv, "GET", "/wake-later", h_wake_later, NULL);
    http_route(srv, "GET", "/wake-now", h_wake_later, NULL);
    CHECK(http_server_start(srv, err, sizeof err) == 0);
    char base[64];
    memcpy(base, s_base, sizeof base);
    snprintf(s_base, sizeof s_base, "http://127.0.0.1:%d", http_server_port(srv));
    s_waker_thread = pthread_self();

    wake_client_t c = { .path = "/wake-later" };
    pthread_t th;
    pthread_create(&th, NULL, s_wake_client, &c);
    http_later_t *l = s_wait_handle();
    CHECK(l != NULL);
    CHECK_EQ_INT(http_later_wake(l, s_wake_fill, "filled"), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(c.rc, 0);
    CHECK_EQ_INT((int) c.r.status, 200);
    CHECK(strcmp(c.r.body.data, "filled") == 0);
    s_resp_free(&c.r);

    wake_client_t now = { .path = "/wake-now" };
    s_wake_client(&now);
    CHECK_EQ_INT((int) now.r.status, 200);
    CHECK(strcmp(now.r.body.data, "now") == 0);
    s_resp_free(&now.r);

    wake_client_t left = { .path = "/wake-later" };
    pthread_create(&th, NULL, s_wake_client, &left);
    l = s_wait_handle();
    CHECK(l != NULL);
    http_server_destroy(&srv);   /* answers the waiting one 503 */
    pthread_join(th, NULL);
    CHECK_EQ_INT((int) left.r.status, 503);
    s_resp_free(&left.r);
    CHECK_EQ_INT(http_later_wake(l, s_wake_fill, "late"), -1);
    pthread_mutex_lock(&s_wake_lock);
    CHECK_EQ_INT(s_fills, 2);
    CHECK_EQ_INT(s_fill_on_waker, 0);
    pthread_mutex_unlock(&s_wake_lock);
    memcpy(s_base, base, sizeof base);
}

typedef struct {
    char url[128];
    long status;
    char body[64];
} early_t;

static void *s_early_client(void *arg)
{
    early_t *e = arg;
    jbuf_t body;
    jbuf_init(&body);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, e->url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &e->status);
    curl_easy_cleanup(c);
    snprintf(e->body, sizeof e->body, "%s", body.data ? body.data : "");
    jbuf_free(&body);
    return NULL;
}

/* A request that arrives while routes are still being added (kasa starting) waits and is then
 * answered by its route: never a 404 from a half-routed server. */
static void test_request_before_start_waits_for_the_routes(void)
{
    char err[128] = "";
    http_server_t *srv = http_server_new("127.0.0.1:0", MAX_BODY, 2, err, sizeof err);
    CHECK(srv != NULL);
    if (!srv)
        return;
    early_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.url, sizeof e.url, "http://127.0.0.1:%d/hello", http_server_port(srv));
    pthread_t th;
    pthread_create(&th, NULL, s_early_client, &e);
    struct timespec pause = { 0, 200 * 1000 * 1000 };
    nanosleep(&pause, NULL);            /* the client has connected and sent its request by now */
    http_route(srv, "GET", "/hello", h_hello, NULL);
    CHECK(http_server_start(srv, err, sizeof err) == 0);
    CHECK(http_server_start(srv, err, sizeof err) == 0);   /* a second start does nothing */
    pthread_join(th, NULL);
    CHECK_EQ_INT(e.status, 200);
    CHECK(strstr(e.body, "hello") != NULL);
    http_server_destroy(&srv);
    CHECK(srv == NULL);
}

static void test_port_zero_gives_a_real_port_and_bad_listen_fails(void)
{
    CHECK(s_port > 0);
    char err[128] = "";
    http_server_t *bad = http_server_new("nonsense", 1024, 1, err, sizeof err);
    CHECK(bad == NULL);
    CHECK(err[0] != '\0');
    /* the port in use is refused with a reason */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s_port);
    err[0] = '\0';
    bad = http_server_new(listen, 1024, 1, err, sizeof err);
    CHECK(bad == NULL);
    CHECK(strstr(err, "cannot listen") != NULL);
    http_server_destroy(&bad);
}

static void s_write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(s_tmp, sizeof s_tmp, "/tmp/kasa-test-http-XXXXXX");
    if (!mkdtemp(s_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char www[300], css[320];
    snprintf(www, sizeof www, "%s/www", s_tmp);
    snprintf(css, sizeof css, "%s/css", www);
    mkdir(www, 0700);
    mkdir(css, 0700);
    s_write_file(www, "index.html", "<h1>kasa</h1>");
    s_write_file(www, "app.js", "let x = 1;");
    s_write_file(www, ".hidden", "TOPSECRET");
    s_write_file(css, "site.css", "body{}");
    s_write_file(s_tmp, "secret.txt", "TOPSECRET");

    char err[256] = "";
    http_server_t *srv = http_server_new("127.0.0.1:0", MAX_BODY, 8, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "server: %s\n", err);
        return 1;
    }
    http_route(srv, "GET", "/hello", h_hello, NULL);
    http_route(srv, "POST", "/echo", h_echo, NULL);
    http_route(srv, "GET", "/api/items/*", h_prefix, NULL);
    http_route(srv, "GET", "/unhandled", h_unhandled, NULL);
    http_route(srv, "GET", "/slow", h_slow, NULL);
    http_route(srv, "GET", "/events", h_sse, NULL);
    http_route(srv, "GET", "/ticker", h_ticker, NULL);
    http_static(srv, www);
    if (http_server_start(srv, err, sizeof err) != 0) {
        fprintf(stderr, "server: %s\n", err);
        return 1;
    }
    s_port = http_server_port(srv);
    snprintf(s_base, sizeof s_base, "http://127.0.0.1:%d", s_port);

    RUN(test_port_zero_gives_a_real_port_and_bad_listen_fails);
    RUN(test_exact_route_answers_and_adds_security_headers);
    RUN(test_unknown_path_is_404_json);
    RUN(test_wrong_method_is_405_with_allow);
    RUN(test_prefix_route_matches_rest_of_path);
    RUN(test_handler_leaving_status_zero_is_404);
    RUN(test_accessors_see_body_headers_query_cookie_ip);
    RUN(test_body_at_limit_is_accepted);
    RUN(test_oversized_body_with_content_length_is_413);
    RUN(test_oversized_chunked_body_is_413);
    RUN(test_static_serves_index_and_types);
    RUN(test_static_refuses_traversal);
    RUN(test_sse_stream_delivers_chunks_and_frees_once);
    RUN(test_endless_stream_is_freed_when_the_client_leaves);
    RUN(test_concurrent_requests_run_in_parallel);
    RUN(test_woken_answer_is_made_on_a_server_thread_and_refused_after_stop);
    RUN(test_stopping_the_server_ends_open_streams);
    RUN(test_request_before_start_waits_for_the_routes);

    http_server_destroy(&srv);
    CHECK(srv == NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    curl_global_cleanup();
    return check_done();
}
