/* bench_ingest_gen.c — the load side of tests/bench/bench_ingest.sh (run alone, it does nothing).
 *
 *   bench_ingest_gen gen    --count N --out FILE [--tag T]
 *       N distinct signed deposit webhooks (status Confirming: each is a new durable record), one
 *       per line "TIMESTAMP<TAB>SIGNATURE<TAB>BODY", for wrk and tests/bench/ingest.lua.
 *   bench_ingest_gen load   --port P --rate R --seconds S [--conns C] [--tag T]
 *       Open-loop load: request i is due at t0 + i/R; its latency runs from that due time to the
 *       last byte of the answer (a request that waits for a free connection waits on the clock).
 *       Prints "LOAD sent=.. ok=.. bad=.. rate=.. p50_us=.. p90_us=.. p99_us=.. max_us=..".
 *   bench_ingest_gen credit --port P --cobo URL --monitor ENDPOINT --rate R --seconds S
 *                           --address A:LOGIN [--address ...] [--conns C]
 *       Registers R*S completed deposits with the Cobo simulator, subscribes to kasa's monitor
 *       feed, sends their signed "succeeded" webhooks open-loop at R/s, and measures from each
 *       due time to the arrival of its CREDITED record on the feed (committed before published).
 *       Prints "CREDIT n=.. credited=.. p50_us=.. p90_us=.. p99_us=.. max_us=..".
 *   bench_ingest_gen sink   --port P
 *       Answers every HTTP request on 127.0.0.1:P with 200 and an empty body, until killed: where
 *       the Cobo simulator's own webhooks go during the benchmark (so that they neither race the
 *       timed ones to kasa nor pile up as retries).
 *   bench_ingest_gen fsync  --dir DIR
 *       The floor under every durable ack: 200 appends of 4 KiB to a file in DIR, each followed by
 *       fdatasync. Prints "FSYNC avg_us=.. p50_us=.. p99_us=.. max_us=..".
 *   bench_ingest_gen burst  --port P --sid SID [--size N] [--seconds S]
 *       An investor's burst: every second for S seconds, N parallel GET /api/me with the session
 *       cookie SID to kasa's panel listener (threads in this process: no process per request).
 *       Prints "BURST sent=.. s200=.. s429=.. s503=.. other=..".
 * Webhooks are signed with the test key of tests/integration/harness.h (H_COBO_KEY_SEED). */
#include <czmq.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>

#include "tests/integration/harness.h"

typedef struct {
    char *text;      /* the whole HTTP request */
    size_t len;
    int64_t due_ns;
    int64_t done_ns; /* 0 until answered */
    int status;
    char tx_id[40];
} s_req_t;

static int64_t s_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *s_opt(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return dflt;
}

/* A signed webhook for tx as a complete HTTP request to 127.0.0.1:port (or its parts). */
static void s_build(const h_tx_t *tx, const char *event_id, const char *type, int port, s_req_t *out,
                    FILE *line_out)
{
    jbuf_t body;
    jbuf_init(&body);
    h_webhook_body(&body, event_id, type, tx);
    char ts[32], sig[COBO_SIG_HEX_LEN + 1];
    snprintf(ts, sizeof ts, "%" PRId64, h_wall_ms());
    h_sign(H_COBO_KEY_SEED, body.data, body.len, ts, sig);
    if (line_out) {
        fprintf(line_out, "%s\t%s\t%s\n", ts, sig, body.data);
    } else {
        jbuf_t req;
        jbuf_init(&req);
        jbuf_printf(&req,
                    "POST /cobo/webhook HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                    "Biz-Timestamp: %s\r\nBiz-Resp-Signature: %s\r\nContent-Length: %zu\r\n\r\n",
                    port, ts, sig, body.len);
        jbuf_add(&req, body.data, body.len);
        out->len = req.len;
        out->text = jbuf_take(&req);
        snprintf(out->tx_id, sizeof out->tx_id, "%s", tx->tx_id);
    }
    jbuf_free(&body);
}

static void s_pending_tx(h_tx_t *tx, const char *tag, uint64_t i)
{
    memset(tx, 0, sizeof *tx);
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = tag; *p; p++)
        h = (h ^ (uint8_t) *p) * 1099511628211ULL;
    h_uuid(h, i, tx->tx_id);
    snprintf(tx->address, sizeof tx->address, "TBenchAddr%023" PRIu64, i % 1000);
    snprintf(tx->amount, sizeof tx->amount, "%" PRIu64 ".%06" PRIu64, 1 + i % 5000, i % 1000000);
    snprintf(tx->token_id, sizeof tx->token_id, "TRON_USDT");
    snprintf(tx->chain_id, sizeof tx->chain_id, "TRON");
    snprintf(tx->status, sizeof tx->status, "Confirming");
    tx->confirmations = 1;
    tx->threshold = 20;
}

static int s_gen(int argc, char **argv)
{
    long count = atol(s_opt(argc, argv, "--count", "100000"));
    const char *path = s_opt(argc, argv, "--out", NULL);
    const char *tag = s_opt(argc, argv, "--tag", "gen");
    if (!path || count <= 0)
        return 2;
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    for (long i = 0; i < count; i++) {
        h_tx_t tx;
        s_pending_tx(&tx, tag, (uint64_t) i);
        char ev[40];
        h_uuid(0xe7e7e7e7ULL, (uint64_t) i, ev);
        s_build(&tx, ev, "wallets.transaction.created", 0, NULL, f);
    }
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- the open-loop sender ------------------------------------------------------------------- */

typedef struct {
    int fd;
    int busy;          /* index of the request in flight, or -1 */
    size_t sent;       /* bytes of it written */
    char in[8192];
    size_t in_len;
} s_conn_t;

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t) port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A complete response in c->in: its status, and it is consumed. 0 if not complete yet. */
static int s_response(s_conn_t *c)
{
    c->in[c->in_len < sizeof c->in ? c->in_len : sizeof c->in - 1] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return 0;
    size_t clen = 0;
    char *cl = strcasestr(c->in, "\r\ncontent-length:");
    if (cl && cl < end)
        clen = (size_t) strtoul(cl + 17, NULL, 10);
    size_t total = (size_t) (end + 4 - c->in) + clen;
    if (c->in_len < total)
        return 0;
    int status = atoi(c->in + 9);
    memmove(c->in, c->in + total, c->in_len - total);
    c->in_len -= total;
    return status ? status : -1;
}

/* Sends reqs[0..n) open-loop at their due times over nconn connections; fills done_ns/status. */
static int s_drive(int port, s_req_t *reqs, size_t n, int nconn)
{
    int ep = epoll_create1(0);
    s_conn_t *conns = calloc((size_t) nconn, sizeof *conns);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = s_connect(port);
        conns[i].busy = -1;
        if (conns[i].fd < 0)
            return -1;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t) i };
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    h_sleep_ms(50); /* let the connections be accepted */
    size_t next = 0, answered = 0;
    int64_t t0 = s_ns() + 10000000LL, last_due = 0;
    for (size_t i = 0; i < n; i++)
        reqs[i].due_ns += t0;
    if (n)
        last_due = reqs[n - 1].due_ns;
    int64_t give_up = last_due + 30000000000LL;
    while (answered < n && s_ns() < give_up) {
        int64_t now = s_ns();
        /* hand every due request to a free connection (in due order) */
        for (int i = 0; i < nconn && next < n && reqs[next].due_ns <= now; i++) {
            s_conn_t *c = &conns[i];
            if (c->busy >= 0 || c->fd < 0)
                continue;
            c->busy = (int) next;
            c->sent = 0;
            next++;
            ssize_t w = write(c->fd, reqs[c->busy].text, reqs[c->busy].len);
            if (w > 0)
                c->sent = (size_t) w;
            if (c->sent < reqs[c->busy].len) { /* rare: finish it blocking-ish */
                while (c->sent < reqs[c->busy].len) {
                    w = write(c->fd, reqs[c->busy].text + c->sent, reqs[c->busy].len - c->sent);
                    if (w > 0)
                        c->sent += (size_t) w;
                    else if (w < 0 && errno != EAGAIN)
                        break;
                }
            }
        }
        int timeout_ms = 1;
        if (next < n && reqs[next].due_ns > now)
            timeout_ms = (int) ((reqs[next].due_ns - now) / 1000000LL);
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, timeout_ms > 0 ? (timeout_ms > 5 ? 5 : timeout_ms) : 0);
        for (int e = 0; e < k; e++) {
            s_conn_t *c = &conns[evs[e].data.u32];
            ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                /* closed: the request in flight failed; reconnect */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                if (c->busy >= 0) {
                    reqs[c->busy].done_ns = s_ns();
                    reqs[c->busy].status = 0;
                    answered++;
                    c->busy = -1;
                }
                c->in_len = 0;
                c->fd = s_connect(port);
                if (c->fd >= 0) {
                    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[e].data.u32 };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                }
                continue;
            }
            c->in_len += (size_t) r;
            int st;
            while ((st = s_response(c)) != 0) {
                if (c->busy >= 0) {
                    reqs[c->busy].done_ns = s_ns();
                    reqs[c->busy].status = st;
                    answered++;
                    c->busy = -1;
                }
            }
        }
    }
    for (int i = 0; i < nconn; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    free(conns);
    close(ep);
    return 0;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static void s_percentiles(int64_t *v, size_t n, const char *label)
{
    (void) label;
    if (!n) {
        printf(" p50_us=0 p90_us=0 p99_us=0 max_us=0");
        return;
    }
    qsort(v, n, sizeof *v, s_cmp_i64);
    printf(" p50_us=%" PRId64 " p90_us=%" PRId64 " p99_us=%" PRId64 " max_us=%" PRId64, v[n * 50 / 100] / 1000,
           v[n * 90 / 100] / 1000, v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000, v[n - 1] / 1000);
}

static int s_load(int argc, char **argv)
{
    int port = atoi(s_opt(argc, argv, "--port", "0"));
    long rate = atol(s_opt(argc, argv, "--rate", "2000"));
    long secs = atol(s_opt(argc, argv, "--seconds", "5"));
    int nconn = atoi(s_opt(argc, argv, "--conns", "64"));
    const char *tag = s_opt(argc, argv, "--tag", "load");
    if (port <= 0 || rate <= 0 || secs <= 0)
        return 2;
    size_t n = (size_t) (rate * secs);
    s_req_t *reqs = calloc(n, sizeof *reqs);
    for (size_t i = 0; i < n; i++) {
        h_tx_t tx;
        s_pending_tx(&tx, tag, i);
        char ev[40];
        h_uuid(0x10ad10adULL, i, ev);
        s_build(&tx, ev, "wallets.transaction.created", port, &reqs[i], NULL);
        reqs[i].due_ns = (int64_t) ((double) i * 1e9 / (double) rate);
    }
    if (s_drive(port, reqs, n, nconn) != 0)
        return 1;
    int64_t *lat = malloc(n * sizeof *lat);
    size_t m = 0, ok = 0, bad = 0;
    int64_t first = INT64_MAX, last = 0;
    for (size_t i = 0; i < n; i++) {
        if (!reqs[i].done_ns) {
            bad++;
            continue;
        }
        if (reqs[i].status >= 200 && reqs[i].status < 300)
            ok++;
        else
            bad++;
        lat[m++] = reqs[i].done_ns - reqs[i].due_ns;
        first = reqs[i].due_ns < first ? reqs[i].due_ns : first;
        last = reqs[i].done_ns > last ? reqs[i].done_ns : last;
        free(reqs[i].text);
    }
    double span = last > first ? (double) (last - first) / 1e9 : 1;
    printf("LOAD sent=%zu ok=%zu bad=%zu rate=%.0f", n, ok, bad, (double) m / span);
    s_percentiles(lat, m, "ack");
    printf("\n");
    free(lat);
    free(reqs);
    return bad ? 1 : 0;
}

/* ---- webhook -> CREDITED ------------------------------------------------------------------------ */

typedef struct {
    const char *endpoint;
    zhashx_t *index;        /* tx_id -> index + 1 (read-only while running) */
    int64_t *credited_ns;   /* per request; written by the subscriber thread only */
    volatile int stop;
    volatile size_t credited;
    volatile int ready;
} s_sub_t;

static void *s_subscriber(void *arg)
{
    s_sub_t *s = arg;
    zsock_t *sub = zsock_new_sub(s->endpoint, "");
    if (!sub) {
        s->ready = -1;
        return NULL;
    }
    zsock_set_rcvtimeo(sub, 100);
    s->ready = 1;
    record_t *r = malloc(sizeof *r);
    char err[128];
    while (!s->stop) {
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            continue;
        int64_t now = s_ns();
        for (zframe_t *f = zmsg_first(msg); f; f = zmsg_next(msg)) {
            if (record_decode(zframe_data(f), zframe_size(f), r, err, sizeof err) != 0)
                continue;
            if (r->kind == RECORD_DEPOSIT && r->to == DEPOSIT_CREDITED && r->from != r->to) {
                uintptr_t idx = (uintptr_t) zhashx_lookup(s->index, r->tx_id);
                if (idx && !s->credited_ns[idx - 1]) {
                    s->credited_ns[idx - 1] = now;
                    s->credited++;
                }
            }
            break;
        }
        zmsg_destroy(&msg);
    }
    free(r);
    zsock_destroy(&sub);
    return NULL;
}

static int s_credit(int argc, char **argv)
{
    int port = atoi(s_opt(argc, argv, "--port", "0"));
    const char *cobo = s_opt(argc, argv, "--cobo", NULL);
    const char *monitor = s_opt(argc, argv, "--monitor", NULL);
    long rate = atol(s_opt(argc, argv, "--rate", "1000"));
    long secs = atol(s_opt(argc, argv, "--seconds", "3"));
    int nconn = atoi(s_opt(argc, argv, "--conns", "64"));
    if (port <= 0 || !cobo || !monitor || rate <= 0 || secs <= 0)
        return 2;
    /* the addresses and their logins */
    char addrs[64][80];
    int naddr = 0;
    for (int i = 1; i + 1 < argc && naddr < 64; i++)
        if (strcmp(argv[i], "--address") == 0) {
            snprintf(addrs[naddr], sizeof addrs[naddr], "%s", argv[i + 1]);
            char *colon = strchr(addrs[naddr], ':');
            if (colon)
                *colon = '\0';
            naddr++;
        }
    if (!naddr)
        return 2;
    h_init();
    h_env_t env;
    memset(&env, 0, sizeof env);
    snprintf(env.cobo_url, sizeof env.cobo_url, "%s", cobo);
    size_t n = (size_t) (rate * secs);
    s_req_t *reqs = calloc(n, sizeof *reqs);
    zhashx_t *index = zhashx_new();
    for (size_t i = 0; i < n; i++) {
        h_tx_t tx;
        memset(&tx, 0, sizeof tx);
        snprintf(tx.address, sizeof tx.address, "%s", addrs[i % (size_t) naddr]);
        snprintf(tx.amount, sizeof tx.amount, "%zu.%02zu", 2 + i % 300, i % 100);
        snprintf(tx.token_id, sizeof tx.token_id, "TRON_USDT");
        snprintf(tx.chain_id, sizeof tx.chain_id, "TRON");
        snprintf(tx.status, sizeof tx.status, "Completed");
        tx.confirmations = 1;
        tx.threshold = 1;
        if (h_sim_deposit(&env, &tx, 1, 0, -1) != 0)
            return 1;
        char ev[40];
        h_uuid(0xc4ed17ULL, i, ev);
        s_build(&tx, ev, "wallets.transaction.succeeded", port, &reqs[i], NULL);
        reqs[i].due_ns = (int64_t) ((double) i * 1e9 / (double) rate);
        zhashx_insert(index, reqs[i].tx_id, (void *) (uintptr_t) (i + 1));
    }
    s_sub_t sub = { monitor, index, calloc(n, sizeof(int64_t)), 0, 0, 0 };
    pthread_t th;
    pthread_create(&th, NULL, s_subscriber, &sub);
    while (!sub.ready)
        h_sleep_ms(5);
    h_sleep_ms(500); /* a subscriber misses what was published before it joined */
    if (s_drive(port, reqs, n, nconn) != 0)
        return 1;
    int64_t end = s_ns() + 30000000000LL;
    while (sub.credited < n && s_ns() < end)
        h_sleep_ms(20);
    sub.stop = 1;
    pthread_join(th, NULL);
    int64_t *lat = malloc(n * sizeof *lat);
    size_t m = 0, acked = 0;
    for (size_t i = 0; i < n; i++) {
        acked += reqs[i].status >= 200 && reqs[i].status < 300;
        if (sub.credited_ns[i])
            lat[m++] = sub.credited_ns[i] - reqs[i].due_ns;
        free(reqs[i].text);
    }
    printf("CREDIT n=%zu acked=%zu credited=%zu", n, acked, m);
    s_percentiles(lat, m, "credit");
    printf("\n");
    free(lat);
    free(sub.credited_ns);
    free(reqs);
    zhashx_destroy(&index);
    return m == n ? 0 : 1;
}

static void *s_sink_conn(void *arg)
{
    int fd = (int) (intptr_t) arg;
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t) r;
        buf[have] = '\0';
        for (;;) {
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                break;
            size_t clen = 0;
            char *cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl && cl < end)
                clen = (size_t) strtoul(cl + 17, NULL, 10);
            size_t total = (size_t) (end + 4 - buf) + clen;
            if (total > sizeof buf - 1) {
                have = 0; /* a body larger than we keep: answer and drop it */
                break;
            }
            if (have < total)
                break;
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
            if (write(fd, ok, sizeof ok - 1) < 0)
                break;
            memmove(buf, buf + total, have - total);
            have -= total;
            buf[have] = '\0';
        }
        if (have >= sizeof buf - 1)
            have = 0;
    }
    close(fd);
    return NULL;
}

static int s_sink(int argc, char **argv)
{
    int port = atoi(s_opt(argc, argv, "--port", "0"));
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t) port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (port <= 0 || bind(ls, (struct sockaddr *) &a, sizeof a) != 0 || listen(ls, 64) != 0) {
        fprintf(stderr, "sink: cannot listen on port %d\n", port);
        return 1;
    }
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t th;
        if (pthread_create(&th, NULL, s_sink_conn, (void *) (intptr_t) fd) == 0)
            pthread_detach(th);
        else
            close(fd);
    }
}

static int s_fsync(int argc, char **argv)
{
    const char *dir = s_opt(argc, argv, "--dir", ".");
    char path[600];
    snprintf(path, sizeof path, "%s/fsync-probe.tmp", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0)
        return 1;
    char buf[4096];
    memset(buf, 'k', sizeof buf);
    int64_t lat[200], sum = 0;
    for (int i = 0; i < 200; i++) {
        if (write(fd, buf, sizeof buf) != (ssize_t) sizeof buf)
            return 1;
        int64_t t = s_ns();
        fdatasync(fd);
        lat[i] = s_ns() - t;
        sum += lat[i];
    }
    close(fd);
    unlink(path);
    printf("FSYNC avg_us=%" PRId64, sum / 200 / 1000);
    s_percentiles(lat, 200, "fsync");
    printf("\n");
    return 0;
}

typedef struct {
    char url[96];
    char cookie[100];
    long status;
} s_burst_req_t;

static void *s_burst_one(void *arg)
{
    s_burst_req_t *r = arg;
    const char *headers[] = { r->cookie, NULL };
    h_resp_t resp = h_http_on(NULL, "GET", r->url, headers, NULL, 0, 30000);
    r->status = resp.status;
    h_resp_free(&resp);
    return NULL;
}

static int s_burst(int argc, char **argv)
{
    int port = atoi(s_opt(argc, argv, "--port", "0"));
    const char *sid = s_opt(argc, argv, "--sid", "");
    int size = atoi(s_opt(argc, argv, "--size", "48"));
    int secs = atoi(s_opt(argc, argv, "--seconds", "5"));
    if (port <= 0 || size <= 0 || size > 1000 || secs <= 0 || secs > 600)
        return 2;
    h_init();
    size_t n = (size_t) size * (size_t) secs;
    s_burst_req_t *reqs = calloc(n, sizeof *reqs);
    pthread_t *th = calloc(n, sizeof *th);
    int64_t t0 = s_ns();
    for (int sec = 0; sec < secs; sec++) {
        while (s_ns() - t0 < (int64_t) sec * 1000000000LL)
            usleep(1000);
        for (int i = 0; i < size; i++) {
            s_burst_req_t *r = &reqs[(size_t) sec * (size_t) size + (size_t) i];
            snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d/api/me", port);
            snprintf(r->cookie, sizeof r->cookie, "Cookie: kasa_sid=%.64s", sid);
            pthread_create(&th[(size_t) sec * (size_t) size + (size_t) i], NULL, s_burst_one, r);
        }
    }
    size_t s200 = 0, s429 = 0, s503 = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        s200 += reqs[i].status == 200;
        s429 += reqs[i].status == 429;
        s503 += reqs[i].status == 503;
        other += reqs[i].status != 200 && reqs[i].status != 429 && reqs[i].status != 503;
    }
    printf("BURST sent=%zu s200=%zu s429=%zu s503=%zu other=%zu\n", n, s200, s429, s503, other);
    free(th);
    free(reqs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("bench_ingest_gen: the load generator of tests/bench/bench_ingest.sh (nothing to do alone)\n");
        return 0;
    }
    h_init();
    if (strcmp(argv[1], "gen") == 0)
        return s_gen(argc, argv);
    if (strcmp(argv[1], "load") == 0)
        return s_load(argc, argv);
    if (strcmp(argv[1], "burst") == 0)
        return s_burst(argc, argv);
    if (strcmp(argv[1], "credit") == 0)
        return s_credit(argc, argv);
    if (strcmp(argv[1], "fsync") == 0)
        return s_fsync(argc, argv);
    if (strcmp(argv[1], "sink") == 0)
        return s_sink(argc, argv);
    fprintf(stderr, "usage: bench_ingest_gen gen|load|credit|burst|sink|fsync ...\n");
    return 2;
}
