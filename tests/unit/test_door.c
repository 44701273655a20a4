/* test_door.c — the webhook listener (web/door.h) over real sockets: keep-alive, pipelining,
 * chunked bodies, requests and answers in pieces, Expect: 100-continue, the errors it answers
 * itself (400, 404, 405, 411, 413, 431, 501, 505), the head and body timeouts, the connection
 * limits, and deposits that wait for their record's fdatasync on a real pipeline (answered only
 * once durable, also when the listener stops meanwhile). Also the request reader alone. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "actors/cobo_auth.h"
#include "actors/pipeline.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tests/unit/support_pipeline.h"
#include "web/door.h"
#include "web/webhook.h"

#define FUZZ_NO_ENTRY 1
#include "tests/fuzz/fuzz_door.c"

#define SEED_COBO  "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define SEED_OTHER "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
#define MAX_BODY 8192

static cobo_signer_t *s_cobo, *s_other;
static int s_port;
static door_t *s_door;

/* ---- the ingest: 201 for a new transaction, 200 for one seen before ------------------------ */

static char s_seen[64][96];
static int s_seen_count;
static pthread_mutex_t s_seen_lock = PTHREAD_MUTEX_INITIALIZER;

static int s_ingest(void *arg, const cobo_tx_t *tx, char *err, size_t errlen)
{
    (void) arg;
    (void) err;
    (void) errlen;
    pthread_mutex_lock(&s_seen_lock);
    int code = 201;
    for (int i = 0; i < s_seen_count; i++)
        if (strcmp(s_seen[i], tx->tx_id) == 0)
            code = 200;
    if (code == 201 && s_seen_count < 64)
        snprintf(s_seen[s_seen_count++], sizeof s_seen[0], "%s", tx->tx_id);
    pthread_mutex_unlock(&s_seen_lock);
    return code;
}

/* ---- a client --------------------------------------------------------------------------------- */

typedef struct {
    int fd;
    jbuf_t in;          /* bytes received, not yet taken as an answer */
} client_t;

/* rcvbuf: the client's receive buffer, set before connecting (0: the default). */
static int s_connect_rcvbuf(client_t *c, int port, int rcvbuf)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    jbuf_init(&c->in);
    jbuf_add(&c->in, "", 0);
    return connect(c->fd, (struct sockaddr *) &a, sizeof a);
}

static int s_connect(client_t *c, int port) { return s_connect_rcvbuf(c, port, 0); }

static void s_disconnect(client_t *c)
{
    close(c->fd);
    jbuf_free(&c->in);
}

static int s_send(client_t *c, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

static int s_sends(client_t *c, const char *text) { return s_send(c, text, strlen(text)); }

/* Reads more within ms: bytes read, 0 at the end of the connection, -1 on timeout or error. */
static int s_recv_more(client_t *c, int ms)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    if (poll(&p, 1, ms) != 1)
        return -1;
    char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0)
        return errno == ECONNRESET ? 0 : -1;
    jbuf_add(&c->in, buf, (size_t) n);
    return (int) n;
}

typedef struct {
    int status;
    char head[2048];
    char body[2048];
} answer_t;

/* Takes one whole answer (head, then Content-Length bytes): its status, or -1 (none within 5 s,
 * or the connection ended first). */
static int s_answer(client_t *c, answer_t *a)
{
    memset(a, 0, sizeof *a);
    for (int tries = 0; tries < 1000; tries++) {
        char *end = c->in.len ? strstr(c->in.data, "\r\n\r\n") : NULL;
        if (end) {
            size_t head = (size_t) (end - c->in.data) + 4;
            const char *cl = strcasestr(c->in.data, "\r\nContent-Length: ");
            size_t body = cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0;
            if (c->in.len >= head + body) {
                snprintf(a->head, sizeof a->head, "%.*s", (int) head, c->in.data);
                snprintf(a->body, sizeof a->body, "%.*s", (int) body, c->in.data + head);
                a->status = atoi(c->in.data + 9);
                memmove(c->in.data, c->in.data + head + body, c->in.len - head - body + 1);
                c->in.len -= head + body;
                return a->status;
            }
        }
        if (s_recv_more(c, 5000) <= 0)
            return -1;
    }
    return -1;
}

/* 1 if the server closes the connection within ms (what it sent before is kept in c->in). */
static int s_closed_within(client_t *c, int ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = ms - (int) ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return 0;
        int n = s_recv_more(c, left);
        if (n == 0)
            return 1;
        if (n < 0)
            return 0;
    }
}

/* A signed deposit webhook for tx_id as a whole request (malloc'd). chunked: its body in chunks of
 * 100 bytes. extra: more header lines (each ending in CRLF) or "". */
static char *s_webhook(cobo_signer_t *signer, const char *tx_id, int chunked, const char *extra)
{
    jbuf_t body;
    jbuf_init(&body);
    jbuf_printf(&body,
                "{\"event_id\":\"ev-%s\",\"url\":\"https://kasa.example/cobo/webhook\","
                "\"created_timestamp\":1764140000000,\"type\":\"wallets.transaction.updated\","
                "\"data\":{\"data_type\":\"Transaction\",\"transaction_id\":\"%s\",\"cobo_id\":\"123\","
                "\"wallet_id\":\"w-1\",\"type\":\"Deposit\",\"status\":\"Confirming\",\"sub_status\":null,"
                "\"chain_id\":\"TRON\",\"token_id\":\"TRON_USDT\",\"asset_id\":\"USDT\","
                "\"source\":{\"source_type\":\"DepositFromAddress\",\"addresses\":[\"TXa\"]},"
                "\"destination\":{\"destination_type\":\"DepositToAddress\",\"address\":\"TQ1addr\","
                "\"amount\":\"250.5\",\"memo\":null},\"transaction_hash\":\"abc123\","
                "\"confirmed_num\":3,\"confirming_threshold\":20,\"created_timestamp\":1764140000000,"
                "\"updated_timestamp\":1764140001000}}", tx_id, tx_id);
    char sig[COBO_SIG_HEX_LEN + 1];
    const char *ts = "1764140001234";
    cobo_sign_response(signer, body.data, body.len, ts, sig);
    jbuf_t r;
    jbuf_init(&r);
    jbuf_printf(&r, "POST /cobo/webhook HTTP/1.1\r\nHost: kasa\r\nContent-Type: application/json\r\n"
                    "Biz-Timestamp: %s\r\nBiz-Resp-Signature: %s\r\n%s", ts, sig, extra);
    if (!chunked) {
        jbuf_printf(&r, "Content-Length: %zu\r\n\r\n", body.len);
        jbuf_add(&r, body.data, body.len);
    } else {
        jbuf_puts(&r, "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0; off < body.len; off += 100) {
            size_t n = body.len - off < 100 ? body.len - off : 100;
            jbuf_printf(&r, "%zx;ext=1\r\n", n);
            jbuf_add(&r, body.data + off, n);
            jbuf_puts(&r, "\r\n");
        }
        jbuf_puts(&r, "0\r\nX-Trailer: t\r\n\r\n");
    }
    jbuf_free(&body);
    return jbuf_take(&r);
}

static door_t *s_start(const door_opts_t *o, webhook_t *wh, int *port)
{
    char err[256];
    door_t *d = door_new("127.0.0.1:0", o, err, sizeof err);
    CHECK(d != NULL);
    if (!d)
        return NULL;
    CHECK_EQ_INT(door_start(d, wh, err, sizeof err), 0);
    *port = door_port(d);
    return d;
}

/* ---- over sockets -------------------------------------------------------------------------- */

static void test_webhooks_on_one_kept_alive_connection(void)
{
    client_t c;
    CHECK_EQ_INT(s_connect(&c, s_port), 0);
    char *a = s_webhook(s_cobo, "tx-ka-1", 0, ""), *b = s_webhook(s_cobo, "tx-ka-2", 0, "");
    answer_t r;
    CHECK_EQ_INT(s_sends(&c, a), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 201);
    CHECK(strstr(r.body, "\"tx\":\"tx-ka-1\"") != NULL);
    CHECK(strstr(r.head, "X-Content-Type-Options: nosniff\r\n") != NULL);
    CHECK(strstr(r.head, "Content-Type: application/json\r\n") != NULL);
    CHECK(strstr(r.head, "Cache-Control: no-store\r\n") != NULL);
    CHECK(strstr(r.head, "Connection: close") == NULL);
    CHECK_EQ_INT(s_sends(&c, b), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 201);
    CHECK_EQ_INT(s_sends(&c, a), 0);   /* Cobo's retry */
    CHECK_EQ_INT(s_answer(&c, &r), 200);
    CHECK(strstr(r.body, "already recorded") != NULL);
    free(a);
    free(b);
    s_disconnect(&c);
}

static void test_pipelined_requests_are_answered_in_order(void)
{
    client_t c;
    CHECK_EQ_INT(s_connect(&c, s_port), 0);
    char *a = s_webhook(s_cobo, "tx-pipe-1", 0, ""), *b = s_webhook(s_other, "tx-pipe-2", 0, "");
    jbuf_t all;
    jbuf_init(&all);
    jbuf_puts(&all, a);
    jbuf_puts(&all, "GET /cobo/webhook HTTP/1.1\r\n\r\n");
    jbuf_puts(&all, b);
    jbuf_puts(&all, "GET /elsewhere HTTP/1.1\r\n\r\n");
    CHECK_EQ_INT(s_send(&c, all.data, all.len), 0);
    answer_t r;
    CHECK_EQ_INT(s_answer(&c, &r), 201);
    CHECK_EQ_INT(s_answer(&c, &r), 405);
    CHECK(strstr(r.head, "Allow: POST\r\n") != NULL);
    CHECK_EQ_INT(s_answer(&c, &r), 401);   /* signed by another key */
    CHECK(strstr(r.body, "bad signature") != NULL);
    CHECK_EQ_INT(s_answer(&c, &r), 404);
    jbuf_free(&all);
    free(a);
    free(b);
    s_disconnect(&c);
}

static void test_chunked_body_is_taken_as_its_decoded_bytes(void)
{
    client_t c;
    CHECK_EQ_INT(s_connect(&c, s_port), 0);
    char *a = s_webhook(s_cobo, "tx-chunked-1", 1, "");
    answer_t r;
    CHECK_EQ_INT(s_sends(&c, a), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 201);   /* the signature is over the decoded body */
    CHECK_EQ_INT(s_sends(&c, a), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 200);
    free(a);
    s_disconnect(&c);
}

static void test_request_in_single_bytes_is_answered(void)
{
    client_t c;
    CHECK_EQ_INT(s_connect(&c, s_port), 0);
    char *a = s_webhook(s_cobo, "tx-bytes-1", 1, "");
    for (size_t i = 0; a[i]; i++) {
        CHECK_EQ_INT(s_send(&c, a + i, 1), 0);
        if (i % 97 == 0)
            usleep(200);
    }
    answer_t r;
    CHECK_EQ_INT(s_answer(&c, &r), 201);
    free(a);
    s_disconnect(&c);
}

static void test_expect_continue_gets_100_first(void)
{
    client_t c;
    CHECK_EQ_INT(s_connect(&c, s_port), 0);
    char *a = s_webhook(s_cobo, "tx-expect-1", 0, "Expect: 100-continue\r\n");
    char *body = strstr(a, "\r\n\r\n") + 4;
    CHECK_EQ_INT(s_send(&c, a, (size_t) (body - a)), 0);
    answer_t r;
    CHECK_EQ_INT(s_answer(&c, &r), 100);
    CHECK_EQ_INT(s_sends(&c, body), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 201);
    free(a);
    /* a head that will be refused is answered at once, without its body, and the connection closed */
    CHECK_EQ_INT(s_sends(&c, "POST /other HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 404);
    CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    CHECK(s_closed_within(&c, 2000));
    s_disconnect(&c);
}

/* Sends text on a new connection: the status of its answer, and whether the server closed after. */
static int s_one(const char *text, int *closed, answer_t *r)
{
    client_t c;
    CHECK_EQ_INT(s_connect(&c, s_port), 0);
    CHECK_EQ_INT(s_sends(&c, text), 0);
    int status = s_answer(&c, r);
    *closed = s_closed_within(&c, 300);
    s_disconnect(&c);
    return status;
}

static void test_bad_requests_get_clear_errors(void)
{
    answer_t r;
    int closed;
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\nContent-Type: application/json\r\n\r\n", &closed, &r), 411);
    CHECK(closed);
    CHECK(strstr(r.body, "Content-Length") != NULL);
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\nContent-Length: 3\r\n\r\n{}}", &closed, &r), 401);
    CHECK(!closed);
    CHECK_EQ_INT(s_one("BAD\r\n\r\n", &closed, &r), 400);
    CHECK(closed);
    CHECK(strstr(r.body, "malformed request") != NULL);
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", &closed, &r), 400);
    CHECK(closed);
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", &closed, &r), 400);
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                       &closed, &r), 400);
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &closed, &r), 501);
    CHECK(closed);
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/2.0\r\nContent-Length: 0\r\n\r\n", &closed, &r), 505);
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\n Folded: x\r\n\r\n", &closed, &r), 400);
    CHECK_EQ_INT(s_one("POST /cobo%2fwebhook HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &closed, &r), 400);
    CHECK(strstr(r.body, "bad path") != NULL);
    CHECK(!closed);
    CHECK_EQ_INT(s_one("POST /cobo/webhook?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &closed, &r), 401);
    CHECK_EQ_INT(s_one("GET / HTTP/1.0\r\n\r\n", &closed, &r), 404);
    CHECK(closed);   /* HTTP/1.0 */
    CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    /* a bad chunk size */
    CHECK_EQ_INT(s_one("POST /cobo/webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &closed, &r), 400);
    CHECK(closed);
    /* a head too large */
    jbuf_t big;
    jbuf_init(&big);
    jbuf_puts(&big, "POST /cobo/webhook HTTP/1.1\r\n");
    while (big.len < DOOR_HEAD_MAX + 100)
        jbuf_puts(&big, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    CHECK_EQ_INT(s_one(big.data, &closed, &r), 431);
    CHECK(closed);
    jbuf_reset(&big);
    jbuf_puts(&big, "POST /cobo/webhook HTTP/1.1\r\n");
    for (int i = 0; i <= DOOR_HEADERS_MAX; i++)
        jbuf_puts(&big, "X-A: b\r\n");
    jbuf_puts(&big, "\r\n");
    CHECK_EQ_INT(s_one(big.data, &closed, &r), 431);
    jbuf_free(&big);
}

static void test_oversized_bodies_are_413(void)
{
    answer_t r;
    client_t c;
    /* over max_body: read and dropped, then 413, and the connection serves the next request */
    CHECK_EQ_INT(s_connect(&c, s_port), 0);
    char *body = malloc(MAX_BODY + 2);
    memset(body, 'a', MAX_BODY + 1);
    body[MAX_BODY + 1] = '\0';
    char head[128];
    snprintf(head, sizeof head, "POST /cobo/webhook HTTP/1.1\r\nContent-Length: %d\r\n\r\n", MAX_BODY + 1);
    CHECK_EQ_INT(s_sends(&c, head), 0);
    CHECK_EQ_INT(s_sends(&c, body), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 413);
    CHECK(strstr(r.body, "body too large") != NULL);
    char *a = s_webhook(s_cobo, "tx-after-413", 0, "");
    CHECK_EQ_INT(s_sends(&c, a), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 201);
    free(a);
    /* the same over chunks */
    CHECK_EQ_INT(s_sends(&c, "POST /cobo/webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
    for (int i = 0; i < 3; i++) {
        char line[32];
        snprintf(line, sizeof line, "%x\r\n", MAX_BODY / 2);
        CHECK_EQ_INT(s_sends(&c, line), 0);
        CHECK_EQ_INT(s_send(&c, body, MAX_BODY / 2), 0);
        CHECK_EQ_INT(s_sends(&c, "\r\n"), 0);
    }
    CHECK_EQ_INT(s_sends(&c, "0\r\n\r\n"), 0);
    CHECK_EQ_INT(s_answer(&c, &r), 413);
    s_disconnect(&c);
    free(body);
    /* a Content-Length not worth reading: 413 at once, closed */
    int closed;
    char huge[128];
    snprintf(huge, sizeof huge, "POST /cobo/webhook HTTP/1.1\r\nContent-Length: %u\r\n\r\n", DOOR_DRAIN_MAX + 1);
    CHECK_EQ_INT(s_one(huge, &closed, &r), 413);
    CHECK(closed);
}

/* Sends every request, then reads: a client that reads nothing for a while makes the server's
 * writes wait on a full socket (answers written in pieces). */
typedef struct {
    client_t *c;
    const char *data;
    size_t len;
} s_writer_t;

static void *s_writer(void *arg)
{
    s_writer_t *w = arg;
    s_send(w->c, w->data, w->len);
    return NULL;
}

static void test_answers_written_in_pieces_to_a_slow_reader(void)
{
    webhook_t *wh = webhook_new_fn(s_ingest, NULL, cobo_signer_pubkey_hex(s_cobo), NULL, 0);
    door_opts_t o = { .max_body = MAX_BODY, .sndbuf = 4096 };
    int port;
    door_t *d = s_start(&o, wh, &port);
    client_t c;
    CHECK_EQ_INT(s_connect_rcvbuf(&c, port, 16384), 0);
    enum { N = 1000 };   /* about 450 KB of answers: far more than the sockets hold */
    jbuf_t all;
    jbuf_init(&all);
    for (int i = 0; i < N; i++)
        jbuf_puts(&all, i % 100 ? "GET /x HTTP/1.1\r\n\r\n" : "POST /cobo/webhook HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    s_writer_t w = { &c, all.data, all.len };
    pthread_t t;
    pthread_create(&t, NULL, s_writer, &w);
    usleep(300 * 1000);   /* nothing read meanwhile: the server's writes meet a full socket */
    int ok = 0;
    answer_t r;
    for (int i = 0; i < N; i++)
        ok += s_answer(&c, &r) == (i % 100 ? 404 : 401);
    pthread_join(t, NULL);
    CHECK_EQ_INT(ok, N);
    jbuf_free(&all);
    s_disconnect(&c);
    door_destroy(&d);
    webhook_destroy(&wh);
}

static void test_slow_heads_and_stalled_bodies_are_cut(void)
{
    webhook_t *wh = webhook_new_fn(s_ingest, NULL, cobo_signer_pubkey_hex(s_cobo), NULL, 0);
    door_opts_t o = { .max_body = MAX_BODY, .header_timeout_ms = 200, .idle_timeout_ms = 300 };
    int port;
    door_t *d = s_start(&o, wh, &port);
    client_t c;
    /* a head trickled past its deadline */
    CHECK_EQ_INT(s_connect(&c, port), 0);
    CHECK_EQ_INT(s_sends(&c, "POST /cobo/webhook HTTP/1.1\r\n"), 0);
    usleep(120 * 1000);
    CHECK_EQ_INT(s_sends(&c, "Content-Length: 10\r\n"), 0);
    CHECK(s_closed_within(&c, 1500));
    s_disconnect(&c);
    /* an idle kept-alive connection: the next head has the same deadline */
    CHECK_EQ_INT(s_connect(&c, port), 0);
    CHECK(s_closed_within(&c, 1500));
    s_disconnect(&c);
    /* a body that stops coming */
    CHECK_EQ_INT(s_connect(&c, port), 0);
    CHECK_EQ_INT(s_sends(&c, "POST /cobo/webhook HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a\":"), 0);
    CHECK(!s_closed_within(&c, 150));
    CHECK(s_closed_within(&c, 1500));
    s_disconnect(&c);
    CHECK(door_cut_count(d) >= 3);
    door_destroy(&d);
    door_destroy(&d);
    webhook_destroy(&wh);
}

static void test_connection_limits_close_the_extra_ones(void)
{
    webhook_t *wh = webhook_new_fn(s_ingest, NULL, cobo_signer_pubkey_hex(s_cobo), NULL, 0);
    door_opts_t o = { .max_body = MAX_BODY, .max_connections = 3, .max_per_client = 2 };
    int port;
    door_t *d = s_start(&o, wh, &port);
    client_t c[3];
    answer_t r;
    /* the first two are served and stay open; the third (the same client) is closed. Each is
     * answered before the next connects: loops accept side by side, so connections made at once
     * may reach the per-client count in any order */
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(s_connect(&c[i], port), 0);
        CHECK_EQ_INT(s_sends(&c[i], "GET /x HTTP/1.1\r\n\r\n"), 0);
        CHECK_EQ_INT(s_answer(&c[i], &r), 404);
    }
    CHECK_EQ_INT(s_connect(&c[2], port), 0);
    CHECK(s_closed_within(&c[2], 1000));
    CHECK(door_refused_count(d) >= 1);
    CHECK_EQ_INT(door_open_count(d), 2);
    s_disconnect(&c[2]);
    s_disconnect(&c[0]);
    /* a place freed is taken again */
    for (int tries = 0; tries < 100 && door_open_count(d) != 1; tries++)
        usleep(10 * 1000);
    CHECK_EQ_INT(s_connect(&c[0], port), 0);
    CHECK_EQ_INT(s_sends(&c[0], "GET /x HTTP/1.1\r\n\r\n"), 0);
    CHECK_EQ_INT(s_answer(&c[0], &r), 404);
    s_disconnect(&c[0]);
    s_disconnect(&c[1]);
    door_destroy(&d);
    webhook_destroy(&wh);
}

/* ---- deposits that wait for their record ----------------------------------------------------- */

static void test_deposits_are_answered_once_durable_also_at_stop(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/kasa-test-door-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    static config_t cfg;
    support_pipeline_offline(&cfg, dir, SEED_OTHER, cobo_signer_pubkey_hex(s_cobo), MAX_BODY);
    char err[512];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    pipeline_t *p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    CHECK(p != NULL);
    webhook_t *wh = p ? webhook_new(p, cobo_signer_pubkey_hex(s_cobo), err, sizeof err) : NULL;
    CHECK(wh != NULL);
    door_opts_t o = { .max_body = MAX_BODY, .threads = 2 };
    int port = 0;
    door_t *d = wh ? s_start(&o, wh, &port) : NULL;
    if (d) {
        enum { N = 8 };
        client_t c[N];
        answer_t r;
        uint64_t lsn0 = journal_durable_lsn(j);
        for (int i = 0; i < N; i++) {
            char tx[32];
            snprintf(tx, sizeof tx, "tx-durable-%d", i);
            char *a = s_webhook(s_cobo, tx, i % 2, "");
            CHECK_EQ_INT(s_connect(&c[i], port), 0);
            CHECK_EQ_INT(s_sends(&c[i], a), 0);
            free(a);
        }
        for (int i = 0; i < N; i++) {
            CHECK_EQ_INT(s_answer(&c[i], &r), 201);
            CHECK(journal_durable_lsn(j) >= lsn0 + 1);   /* answered only once durable */
        }
        CHECK_EQ_INT(journal_durable_lsn(j), lsn0 + N);
        /* repeats, then more deposits sent just before the listener stops: each answered */
        for (int i = 0; i < N; i++) {
            char tx[32];
            snprintf(tx, sizeof tx, "tx-%s-%d", i < N / 2 ? "durable" : "stop", i);
            char *a = s_webhook(s_cobo, tx, 0, "");
            CHECK_EQ_INT(s_sends(&c[i], a), 0);
            free(a);
        }
        for (int i = 0; i < N / 2; i++)
            CHECK_EQ_INT(s_answer(&c[i], &r), 200);
        door_destroy(&d);
        int answered = 0, cut = 0;
        for (int i = N / 2; i < N; i++) {
            int st = s_answer(&c[i], &r);
            answered += st == 201;
            cut += st == -1;
        }
        CHECK_EQ_INT(answered + cut, N / 2);   /* taken and answered 201, or not read at all */
        CHECK_EQ_INT(journal_durable_lsn(j), lsn0 + N + (uint64_t) answered);
        for (int i = 0; i < N; i++)
            s_disconnect(&c[i]);
        webhook_stats_t st;
        webhook_stats(wh, &st);
        CHECK_EQ_INT((int) st.accepted, N + answered);
        CHECK_EQ_INT((int) st.repeated, N / 2);
    }
    door_destroy(&d);
    webhook_destroy(&wh);
    pipeline_destroy(&p);
    journal_destroy(&j);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

/* ---- the reader alone ------------------------------------------------------------------------ */

/* The fuzz target's runner (tests/fuzz/fuzz_door.c): a stream through a reader, whole (seed 0) or
 * cut into pieces by seed; the requests found. */
static void test_reader_finds_the_same_requests_whatever_the_pieces(void)
{
    const char *text =
        "POST /cobo/webhook HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        "POST /cobo/webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n"
        "DELETE /cobo/webhook HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
        "POST /cobo/webhook HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        "POST /cobo/webhook HTTP/1.1\r\n\r\n";
    for (int seed = 0; seed < 256; seed += 17) {
        fuzz_door_req_t q[FUZZ_DOOR_EVENTS];
        CHECK_EQ_INT(s_door_run((const uint8_t *) text, strlen(text), (uint8_t) seed, q), 5);
        CHECK_EQ_INT(q[0].status, 0);
        CHECK_EQ_INT((int) q[0].body_len, 5);
        CHECK_EQ_INT(q[1].status, 0);
        CHECK_EQ_INT((int) q[1].body_len, 5);
        CHECK(q[1].body_hash == q[0].body_hash);   /* "hello" both ways */
        CHECK_EQ_INT(q[2].status, 405);
        CHECK_EQ_INT(q[3].status, 0);
        CHECK_EQ_INT((int) q[3].body_len, 0);
        CHECK_EQ_INT(q[4].status, 411);
        CHECK_EQ_INT(q[4].close, 1);
    }
}

int main(void)
{
    s_cobo = cobo_signer_new(SEED_COBO);
    s_other = cobo_signer_new(SEED_OTHER);
    if (!s_cobo || !s_other)
        return 1;
    char err[256];
    webhook_t *wh = webhook_new_fn(s_ingest, NULL, cobo_signer_pubkey_hex(s_cobo), err, sizeof err);
    door_opts_t o = { .max_body = MAX_BODY };
    s_door = wh ? s_start(&o, wh, &s_port) : NULL;
    if (!s_door)
        return 1;

    RUN(test_webhooks_on_one_kept_alive_connection);
    RUN(test_pipelined_requests_are_answered_in_order);
    RUN(test_chunked_body_is_taken_as_its_decoded_bytes);
    RUN(test_request_in_single_bytes_is_answered);
    RUN(test_expect_continue_gets_100_first);
    RUN(test_bad_requests_get_clear_errors);
    RUN(test_oversized_bodies_are_413);
    RUN(test_answers_written_in_pieces_to_a_slow_reader);
    RUN(test_slow_heads_and_stalled_bodies_are_cut);
    RUN(test_connection_limits_close_the_extra_ones);
    RUN(test_deposits_are_answered_once_durable_also_at_stop);
    RUN(test_reader_finds_the_same_requests_whatever_the_pieces);

    door_destroy(&s_door);
    webhook_destroy(&wh);
    cobo_signer_destroy(&s_cobo);
    cobo_signer_destroy(&s_other);
    return check_done();
}
