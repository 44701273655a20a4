/* http.c — see http.h.
 *
 * libmicrohttpd runs a pool of internal polling threads (epoll); each request is handled on the
 * thread that owns its connection. Handlers may block (an API call waiting for a journal append),
 * so the pool is sized by the caller; a blocked handler delays only the connections of its own
 * thread. A handler that would wait long suspends its connection instead (http_later), and the
 * thread goes on with its other connections.
 *
 * Bodies are accumulated up to max_body. A body over it is known from Content-Length before any
 * of it is read, or from a chunked body growing past it; either way the rest is read and discarded
 * (bounded memory) and 413 is answered once it is complete. Answering before the client has sent
 * its body would make the kernel reset the connection on the unread bytes, and the client would
 * lose the 413. A body above HTTP_DRAIN_MAX is not worth reading: a Content-Length that large is
 * answered 413 at once (the client may see a reset), a chunked flood is cut off.
 *
 * Streams (Server-Sent Events): when the handler's stream function has nothing to send, the
 * connection is suspended (it costs no thread) and a waker thread resumes every suspended stream
 * every HTTP_STREAM_TICK_MS, so the stream function is polled a few times a second per client.
 *
 * Answers given later (http_later): the connection is suspended inside the handler, before the
 * handle can reach another thread, so a reply can never come before the suspension. The handle
 * has two owners (the connection and the replier) and is freed by the last one. A reply stores
 * the answer and resumes the connection under the handle's lock; the server's thread, called
 * again after the resumption, takes the answer and sends it. A wake (http_later_wake) stores a
 * fill function instead, which that thread calls to make the answer (a connection closed first
 * gets fill(arg, NULL, NULL) from the completion notice, so arg is always let go). At stop the server answers every
 * handle still waiting with 503 and resumes it (libmicrohttpd must not stop with a suspended
 * connection); a reply after that finds the handle answered and only lets go of it. Lock order:
 * the server's lock, then a handle's lock; libmicrohttpd's own locks only inside those. */
#include "web/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema/json.h"
#include "schema/log.h"
#include "schema/netaddr.h"
#include "web/connguard.h"

#define HTTP_MAX_ROUTES 64
#define HTTP_STREAM_TICK_MS 50        /* how often suspended streams are polled again */
#define HTTP_MAX_STREAMS 1024         /* suspended streams tracked at once */
#define HTTP_CONNECTION_LIMIT 2048   /* defaults of http_limits */
#define HTTP_HEADER_TIMEOUT_MS 5000
#define HTTP_PER_CLIENT_LIMIT 64
#define HTTP_RESERVE_FDS 256          /* descriptors kept for everything but connections */
#define HTTP_LISTEN_BACKLOG 1024
#define HTTP_CONNECTION_TIMEOUT_S 30
#define HTTP_LATER_DRAIN_MS 2000      /* at stop, how long answers given later get to be sent */
#define HTTP_DRAIN_MAX (16u << 20)    /* an oversized body is read and discarded up to this, then dropped */

#define CSP_STATIC "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
#define CSP_API    "default-src 'none'; frame-ancestors 'none'"

/* Marks a byte the path must not contain once decoded (an encoded '/', '\\' or NUL). */
#define HTTP_BAD_BYTE '\x01'

typedef struct {
    char method[12];
    char path[256];
    int prefix;                 /* path ends in '*': match by prefix (without the '*') */
    http_handler_fn *fn;
    void *arg;
} route_t;

typedef struct stream_ctx_t stream_ctx_t;

struct http_later_t {
    pthread_mutex_t mu;
    atomic_int refs;             /* the connection's and the replier's */
    int answered;                /* res holds the answer (given, or the server's 503 at stop) */
    int taken;                   /* the server's thread took res to send it */
    http_fill_fn *fill;          /* http_later_wake: makes the answer on the server's thread */
    void *fill_arg;
    struct MHD_Connection *conn;
    http_response_t *res;        /* the answer given (NULL until then, and for a wake: most handles
                                  * are woken, and an http_response_t is 4 KiB) */
    http_later_t *prev, *next;   /* the server's list of handles whose connection lives; under its lock */
};

struct http_server_t {
    struct MHD_Daemon *daemon;   /* NULL until http_server_start */
    int listen_fd;               /* bound and listening from http_server_new; MHD owns it once started */
    unsigned mhd_flags;
    int threads;
    size_t max_body;
    int port;
    /* Routes may be added while the server already accepts: an entry is written first, then
     * published by a release store of route_count; readers load it with acquire and read only
     * entries below it. static_dir is published the same way by static_ready. */
    route_t routes[HTTP_MAX_ROUTES];
    atomic_int route_count;
    char static_dir[512];
    atomic_int static_ready;
    /* suspended streams, resumed by the waker */
    pthread_mutex_t lock;
    struct MHD_Connection *sleepers[HTTP_MAX_STREAMS];
    int sleeper_count;
    int stopping;
    pthread_t waker;
    int waker_started;
    pthread_cond_t wake_cond;
    /* who may tell us the client's address (X-Forwarded-For, X-Real-IP); set before start */
    netlist_t trusted;
    /* slow and numerous connections (web/connguard.h); the limits are set before start */
    connguard_t *guard;
    int max_connections;
    int header_timeout_ms;
    int max_per_client;
    /* request ids: a random start, then one more per request */
    uint64_t rid_base;
    atomic_uint_fast64_t rid_next;
    http_later_t *laters;        /* answers pending or being sent; under lock */
};

struct http_request_t {
    http_server_t *server;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    char *body;
    size_t len, cap;
    size_t discarded;           /* bytes dropped after the body went past max_body */
    int too_large;
    int route;                  /* index of the matched route, -1 for none */
    int early;                  /* decided before the body: 400, 404, 405, or 200 for a static file */
    char allow[128];            /* 405: the methods the path has */
    netaddr_t client;           /* the client: the peer, or behind a trusted proxy the address it reports */
    char ip[NETADDR_TEXT];      /* client as text */
    char rid[17];               /* request id (16 hex), for logs and answers an investor can quote */
    http_later_t *later;        /* set by http_later(): the answer comes from another thread */
};

struct stream_ctx_t {
    http_server_t *server;
    struct MHD_Connection *conn;
    ssize_t (*stream)(void *arg, char *buf, size_t max);
    void (*stream_free)(void *arg);
    void *arg;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static int s_header_set(const http_response_t *res, const char *name)
{
    for (int i = 0; i < res->header_count; i++)
        if (strcasecmp(res->headers[i][0], name) == 0)
            return 1;
    return 0;
}

static void s_common_headers(struct MHD_Response *r, const http_response_t *res, int is_static)
{
    for (int i = 0; res && i < res->header_count; i++)
        MHD_add_response_header(r, res->headers[i][0], res->headers[i][1]);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    if (!res || !s_header_set(res, "Content-Security-Policy"))
        MHD_add_response_header(r, "Content-Security-Policy", is_static ? CSP_STATIC : CSP_API);
    if (!res || !s_header_set(res, "Cache-Control"))
        MHD_add_response_header(r, "Cache-Control", is_static ? "no-cache" : "no-store");
}

/* Queues a body response (body is malloc'd or NULL; taken). Returns MHD's result. */
static enum MHD_Result s_send(struct MHD_Connection *conn, int status, const char *content_type,
                              char *body, size_t len, const http_response_t *res, int is_static)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (void *) "",
                                                             body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type && content_type[0] ? content_type : "application/json");
    s_common_headers(r, res, is_static);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned) status, r);
    MHD_destroy_response(r);
    return rc;
}

static char *s_error_json(const char *reason, size_t *len)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"error\":");
    jbuf_str(&b, reason);
    jbuf_puts(&b, "}");
    *len = b.len;
    return jbuf_take(&b);
}

static enum MHD_Result s_send_error(struct MHD_Connection *conn, int status, const char *reason,
                                    const char *allow)
{
    size_t len;
    char *body = s_error_json(reason, &len);
    http_response_t res;
    memset(&res, 0, sizeof res);
    if (allow)
        http_add_header(&res, "Allow", allow);
    return s_send(conn, status, "application/json", body, len, &res, 0);
}

/* ---- routing ------------------------------------------------------------------------------ */

static int s_path_match(const route_t *rt, const char *path)
{
    if (rt->prefix)
        return strncmp(path, rt->path, strlen(rt->path)) == 0;
    return strcmp(path, rt->path) == 0;
}

/* The route for method+path, or -1. *path_known is set if some route has that path. */
static int s_route_find(http_server_t *self, const char *method, const char *path,
                        int *path_known, char *allow, size_t allow_len)
{
    *path_known = 0;
    allow[0] = '\0';
    size_t used = 0;
    int count = atomic_load_explicit(&self->route_count, memory_order_acquire);
    for (int i = 0; i < count; i++) {
        const route_t *rt = &self->routes[i];
        if (!s_path_match(rt, path))
            continue;
        if (strcmp(rt->method, method) == 0)
            return i;
        *path_known = 1;
        if (!strstr(allow, rt->method) && used + strlen(rt->method) + 3 < allow_len)
            used += (size_t) snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", rt->method);
    }
    return -1;
}

/* ---- static files ------------------------------------------------------------------------- */

static const char *s_content_type(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".html", "text/html; charset=utf-8" }, { ".htm", "text/html; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },   { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" },
        { ".json", "application/json" },         { ".svg", "image/svg+xml" },
        { ".png", "image/png" },                 { ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" },
        { ".gif", "image/gif" },                 { ".ico", "image/x-icon" }, { ".webp", "image/webp" },
        { ".txt", "text/plain; charset=utf-8" }, { ".woff2", "font/woff2" }, { ".woff", "font/woff" },
        { ".webmanifest", "application/manifest+json" }, { ".map", "application/json" },
        { ".wasm", "application/wasm" },
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* 0 if path is safe to join to the static dir: absolute, no "..", "." or empty segments, no
 * backslash, no control bytes (an encoded '/', '\\' or NUL shows up as one), no leading dot-file. */
static int s_static_path_ok(const char *path)
{
    if (path[0] != '/')
        return -1;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c < 0x20 || c == 0x7f || c == '\\')
            return -1;
        if (c == '/') {
            const char *seg = p + 1;
            if (seg[0] == '.')   /* "..", ".", and hidden files */
                return -1;
            if (seg[0] == '/')
                return -1;
        }
    }
    return strlen(path) < 400 ? 0 : -1;
}

/* Opens rel ("/a/b.css", already checked by s_static_path_ok) under dir one component at a time,
 * refusing a symlink anywhere on the way (O_NOFOLLOW on every component, not only the last): a
 * link inside the static folder must never lead out of it. The descriptor, or -1. */
static int s_static_open(const char *dir, const char *rel)
{
    int at = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *p = rel;
    while (at >= 0) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        char name[256];
        if (n == 0 || n >= sizeof name) {
            close(at);
            return -1;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        int last = p[n] == '\0';
        int fd = openat(at, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? O_NONBLOCK : O_DIRECTORY));
        close(at);
        if (last || fd < 0)
            return fd;
        at = fd;
        p += n;
    }
    return -1;
}

int http_static_open(const http_server_t *self, const char *path, uint64_t *size, const char **content_type,
                     int *status)
{
    if (s_static_path_ok(path) != 0) {
        *status = 400;
        return -1;
    }
    *status = 404;
    const char *rel = strcmp(path, "/") == 0 ? "/index.html" : path;
    int fd = s_static_open(self->static_dir, rel);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    *status = 200;
    *size = (uint64_t) st.st_size;
    *content_type = s_content_type(rel);
    return fd;
}

static enum MHD_Result s_static_serve(http_server_t *self, struct MHD_Connection *conn, const char *path)
{
    uint64_t size = 0;
    const char *type = NULL;
    int status = 404;
    int fd = http_static_open(self, path, &size, &type, &status);
    if (fd < 0)
        return s_send_error(conn, status, status == 400 ? "bad path" : "not found", NULL);
    struct MHD_Response *r = MHD_create_response_from_fd(size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    s_common_headers(r, NULL, 1);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- streams ------------------------------------------------------------------------------ */

static ssize_t s_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    stream_ctx_t *sc = cls;
    http_server_t *self = sc->server;
    pthread_mutex_lock(&self->lock);
    int stopping = self->stopping;
    pthread_mutex_unlock(&self->lock);
    if (stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    ssize_t n = sc->stream(sc->arg, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > 0)
        return n;
    /* nothing yet: park the connection until the waker's next tick */
    pthread_mutex_lock(&self->lock);
    if (self->stopping) {
        pthread_mutex_unlock(&self->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (self->sleeper_count < HTTP_MAX_STREAMS) {
        MHD_suspend_connection(sc->conn);
        self->sleepers[self->sleeper_count++] = sc->conn;
        pthread_cond_signal(&self->wake_cond);
    }
    pthread_mutex_unlock(&self->lock);
    return 0;
}

static void s_stream_done(void *cls)
{
    stream_ctx_t *sc = cls;
    if (sc->stream_free)
        sc->stream_free(sc->arg);
    free(sc);
}

static void *s_waker(void *arg)
{
    http_server_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        if (self->sleeper_count == 0) {
            pthread_cond_wait(&self->wake_cond, &self->lock);
            continue;
        }
        pthread_mutex_unlock(&self->lock);
        struct timespec ts = { 0, HTTP_STREAM_TICK_MS * 1000000L };
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&self->lock);
        for (int i = 0; i < self->sleeper_count; i++)
            MHD_resume_connection(self->sleepers[i]);
        self->sleeper_count = 0;
    }
    for (int i = 0; i < self->sleeper_count; i++)
        MHD_resume_connection(self->sleepers[i]);
    self->sleeper_count = 0;
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static enum MHD_Result s_send_stream(http_server_t *self, struct MHD_Connection *conn, int status,
                                     http_response_t *res)
{
    stream_ctx_t *sc = calloc(1, sizeof *sc);
    if (!sc) {
        if (res->stream_free)
            res->stream_free(res->stream_arg);
        return MHD_NO;
    }
    sc->server = self;
    sc->conn = conn;
    sc->stream = res->stream;
    sc->stream_free = res->stream_free;
    sc->arg = res->stream_arg;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, s_stream_read,
                                                               sc, s_stream_done);
    if (!r) {
        s_stream_done(sc);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", res->content_type[0] ? res->content_type : "text/event-stream");
    if (!s_header_set(res, "Cache-Control"))
        http_add_header(res, "Cache-Control", "no-cache");
    http_add_header(res, "X-Accel-Buffering", "no");
    s_common_headers(r, res, 0);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned) status, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- the client's address ---------------------------------------------------------------- */

/* Collects every X-Forwarded-For header, in order, joined by commas. No cap of its own: the whole
 * head is bounded by the server, and a cap would drop the rightmost entries, the ones a proxy wrote. */
void http_head_forwarded(jbuf_t *chain, const char *name, const char *value)
{
    if (name && value && strcasecmp(name, "X-Forwarded-For") == 0) {
        if (chain->len)
            jbuf_puts(chain, ",");
        jbuf_puts(chain, value);
    }
}

static enum MHD_Result s_xff_each(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    http_head_forwarded(cls, key, value);
    return MHD_YES;
}

void http_head_client(const http_server_t *self, const netaddr_t *peer, const char *xff, const char *x_real_ip,
                      netaddr_t *client)
{
    netaddr_client(peer, &self->trusted, xff, x_real_ip, client);
}

/* Sets req->client and req->ip: the peer's address, or, when the peer is a trusted proxy, the
 * client its forwarding headers name (schema/netaddr.h: the rightmost untrusted hop). */
static void s_client_resolve(http_server_t *self, http_request_t *req)
{
    netaddr_t peer = { 0 };
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || netaddr_from_sockaddr(ci->client_addr, &peer) != 0) {
        snprintf(req->ip, sizeof req->ip, "-");
        return;
    }
    req->client = peer;
    if (self->trusted.count > 0 && netlist_contains(&self->trusted, &peer)) {
        jbuf_t chain;
        jbuf_init(&chain);
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, s_xff_each, &chain);
        jbuf_add(&chain, "", 0);
        http_head_client(self, &peer, chain.len > 0 ? chain.data : NULL,
                         MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Real-IP"), &req->client);
        jbuf_free(&chain);
    }
    netaddr_format(&req->client, req->ip);
}

/* ---- answers given later ------------------------------------------------------------------ */

static void s_later_release(http_later_t *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    if (l->res)
        free(l->res->body);
    free(l->res);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

http_later_t *http_later(const http_request_t *req_c, http_response_t *res)
{
    (void) res;
    http_request_t *req = (http_request_t *) req_c;   /* the server's own request: it owns it */
    http_server_t *self = req->server;
    if (req->later)
        return NULL;   /* one answer per request */
    http_later_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->refs, 2);
    l->conn = req->conn;
    req->later = l;
    pthread_mutex_lock(&self->lock);
    l->next = self->laters;
    if (self->laters)
        self->laters->prev = l;
    self->laters = l;
    pthread_mutex_unlock(&self->lock);
    /* Before the handle leaves this thread: no reply can come before the suspension. */
    MHD_suspend_connection(req->conn);
    return l;
}

/* Stores res as l's answer and resumes its connection, unless it was answered already (the server
 * stopping): then res is freed. Under l->mu. */
static void s_later_answer(http_later_t *l, http_response_t *res)
{
    if (l->answered) {
        free(res->body);
        if (res->stream_free)
            res->stream_free(res->stream_arg);
        return;
    }
    l->res = malloc(sizeof *l->res);
    if (!l->res || res->stream) {   /* a stream cannot be an answer given later */
        if (res->stream_free)
            res->stream_free(res->stream_arg);
        free(res->body);
    }
    if (l->res && !res->stream)
        *l->res = *res;
    else if (l->res) {
        memset(l->res, 0, sizeof *l->res);
        http_reply_error(l->res, 500, "internal error");
    }   /* no memory: l->res stays NULL and 500 is sent */
    l->answered = 1;
    MHD_resume_connection(l->conn);
}

void http_later_reply(http_later_t *l, http_response_t *res)
{
    if (!l) {
        free(res->body);
        return;
    }
    pthread_mutex_lock(&l->mu);
    s_later_answer(l, res);
    pthread_mutex_unlock(&l->mu);
    memset(res, 0, sizeof *res);
    s_later_release(l);
}

int http_later_wake(http_later_t *l, http_fill_fn *fill, void *arg)
{
    if (!l)
        return -1;
    pthread_mutex_lock(&l->mu);
    int rc = l->answered ? -1 : 0;
    if (rc == 0) {
        l->fill = fill;
        l->fill_arg = arg;
        l->answered = 1;
        MHD_resume_connection(l->conn);
    }
    pthread_mutex_unlock(&l->mu);
    s_later_release(l);
    return rc;
}

/* Takes l's answer, or its fill, once: 1 if there was one to take. Under l->mu. */
static int s_later_take(http_later_t *l, http_response_t *res, http_fill_fn **fill, void **fill_arg)
{
    pthread_mutex_lock(&l->mu);
    int ready = l->answered && !l->taken;
    if (ready) {
        if (l->res)
            *res = *l->res;
        else
            memset(res, 0, sizeof *res);
        free(l->res);
        l->res = NULL;
        *fill = l->fill;
        *fill_arg = l->fill_arg;
        l->fill = NULL;
        l->taken = 1;
    }
    pthread_mutex_unlock(&l->mu);
    return ready;
}

/* Called on the connection's thread once the request is resumed: sends the answer (made here
 * first when the handle was woken with a fill). */
static enum MHD_Result s_later_send(http_request_t *req)
{
    http_later_t *l = req->later;
    http_response_t res;
    http_fill_fn *fill;
    void *fill_arg;
    if (!s_later_take(l, &res, &fill, &fill_arg))
        return MHD_YES;   /* still suspended or already sent: nothing to do */
    if (fill) {
        memset(&res, 0, sizeof res);
        fill(fill_arg, req, &res);
        if (res.stream) {   /* a stream cannot be an answer given later */
            if (res.stream_free)
                res.stream_free(res.stream_arg);
            free(res.body);
            memset(&res, 0, sizeof res);
        }
    }
    if (res.status == 0)
        http_reply_error(&res, 500, "internal error");
    return s_send(req->conn, res.status, res.content_type, res.body, res.body_len, &res, 0);
}

/* At stop: every handle still waiting gets 503 and its connection is resumed. */
static void s_later_stop_all(http_server_t *self)
{
    pthread_mutex_lock(&self->lock);
    for (http_later_t *l = self->laters; l; l = l->next) {
        pthread_mutex_lock(&l->mu);
        if (!l->answered) {
            http_response_t res;
            memset(&res, 0, sizeof res);
            http_reply_error(&res, 503, "kasa is stopping; try again");
            s_later_answer(l, &res);
        }
        pthread_mutex_unlock(&l->mu);
    }
    pthread_mutex_unlock(&self->lock);
}

/* Waits (at most HTTP_LATER_DRAIN_MS) until every answer given later has been sent, so the daemon's
 * stop does not close a resumed connection before its answer is out. */
static void s_later_drain(http_server_t *self)
{
    for (int waited = 0; waited < HTTP_LATER_DRAIN_MS; waited += 5) {
        pthread_mutex_lock(&self->lock);
        int left = self->laters != NULL;
        pthread_mutex_unlock(&self->lock);
        if (!left || !self->daemon)
            return;
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    }
    log_warn("http.stop_unanswered", "reason=\"answers still unsent after %d ms\"", HTTP_LATER_DRAIN_MS);
}

/* ---- slow and numerous connections (web/connguard.h) ---------------------------------------- */

/* MHD's connection notice: a new connection is counted against its client and its head deadline
 * starts (over the client's limit it is shut down at once: MHD then closes it); a closed one is
 * forgotten, before MHD closes its socket. */
static void s_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server_t *self = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        connguard_close(self->guard, (connguard_conn_t **) socket_context);
        return;
    }
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ai || !fi)
        return;
    int refused = 0;
    *socket_context = connguard_open(self->guard, ai->client_addr, fi->connect_fd, &refused);
    if (refused)
        shutdown(fi->connect_fd, SHUT_RDWR);
}

static connguard_conn_t *s_guard_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void s_guard_head_done(http_server_t *self, struct MHD_Connection *conn)
{
    connguard_head_done(self->guard, s_guard_of(conn));
}

static void s_guard_idle(http_server_t *self, struct MHD_Connection *conn)
{
    connguard_idle(self->guard, s_guard_of(conn));
}

/* ---- request handling --------------------------------------------------------------------- */

static enum MHD_Result s_dispatch(http_server_t *self, http_request_t *req)
{
    const route_t *rt = &self->routes[req->route];
    http_response_t res;
    memset(&res, 0, sizeof res);
    rt->fn(rt->arg, req, &res);
    if (req->later) {   /* suspended: the answer comes through http_later_reply */
        free(res.body);
        if (res.stream_free)
            res.stream_free(res.stream_arg);
        return MHD_YES;
    }
    if (res.status == 0) {
        free(res.body);
        if (res.stream_free)
            res.stream_free(res.stream_arg);
        return s_send_error(req->conn, 404, "not found", NULL);
    }
    if (res.stream) {
        free(res.body);
        return s_send_stream(self, req->conn, res.status, &res);
    }
    return s_send(req->conn, res.status, res.content_type, res.body, res.body_len, &res, 0);
}

void http_head_judge(http_server_t *self, const char *method, const char *path, const char *content_length,
                     http_head_t *out)
{
    memset(out, 0, sizeof *out);
    out->route = -1;
    for (const char *p = path; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            out->early = 400;
            return;
        }
    int path_known;
    out->route = s_route_find(self, method, path, &path_known, out->allow, sizeof out->allow);
    if (out->route < 0) {
        int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if (path_known)
            out->early = 405;
        else if (is_get && atomic_load_explicit(&self->static_ready, memory_order_acquire))
            out->early = 200;   /* a static file */
        else
            out->early = 404;
    }
    if (content_length) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(content_length, &end, 10);
        if (errno == 0 && end != content_length && n > self->max_body)
            out->too_large = n > HTTP_DRAIN_MAX ? 2 : 1;
    }
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    (void) version;
    http_server_t *self = cls;
    http_request_t *req = *con_cls;

    if (!req) {   /* first call: headers are in */
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->server = self;
        req->conn = conn;
        req->method = method;
        req->path = url;
        req->route = -1;
        s_guard_head_done(self, conn);
        s_client_resolve(self, req);
        snprintf(req->rid, sizeof req->rid, "%016llx",
                 (unsigned long long) (self->rid_base + atomic_fetch_add(&self->rid_next, 1)));
        *con_cls = req;

        /* The answer may be known now (bad path, 404, 405, static file), but it is sent only
         * once any body has been read (and discarded): see the top of this file. */
        http_head_t head;
        http_head_judge(self, method, url,
                        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH), &head);
        req->route = head.route;
        req->early = head.early;
        req->too_large = head.too_large != 0;
        memcpy(req->allow, head.allow, sizeof req->allow);
        if (head.too_large == 2)
            return s_send_error(conn, 413, "body too large", NULL);
        return MHD_YES;
    }

    if (*upload_data_size > 0) {   /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->early || req->too_large || req->len + n > self->max_body) {
            if (!req->early)
                req->too_large = 1;
            req->discarded += n;
            if (req->discarded > HTTP_DRAIN_MAX)
                return MHD_NO;   /* stop reading a flood: drop the connection */
            return MHD_YES;
        }
        if (req->len + n + 1 > req->cap) {
            size_t cap = req->cap ? req->cap : 1024;
            while (cap < req->len + n + 1)
                cap *= 2;
            if (cap > self->max_body + 1)
                cap = self->max_body + 1;
            char *nb = realloc(req->body, cap);
            if (!nb)
                return MHD_NO;
            req->body = nb;
            req->cap = cap;
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        req->body[req->len] = '\0';
        return MHD_YES;
    }

    /* the whole request is in */
    if (req->later)
        return s_later_send(req);
    switch (req->early) {
    case 400: return s_send_error(conn, 400, "bad path", NULL);
    case 404: return s_send_error(conn, 404, "not found", NULL);
    case 405: return s_send_error(conn, 405, "method not allowed", req->allow);
    case 200: return s_static_serve(self, conn, url);
    default: break;
    }
    if (req->too_large)
        return s_send_error(conn, 413, "body too large", NULL);
    return s_dispatch(self, req);
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void) toe;
    s_guard_idle(cls, conn);
    http_request_t *req = *con_cls;
    if (!req)
        return;
    if (req->later) {
        http_server_t *self = req->server;
        http_later_t *l = req->later;
        http_response_t res;
        http_fill_fn *fill;
        void *fill_arg;
        if (s_later_take(l, &res, &fill, &fill_arg)) {   /* closed before its answer was sent */
            free(res.body);
            if (fill)
                fill(fill_arg, NULL, NULL);
        }
        pthread_mutex_lock(&l->mu);
        l->answered = l->taken = 1;   /* a reply or wake from now on only lets go of the handle */
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_lock(&self->lock);
        if (l->prev) l->prev->next = l->next; else if (self->laters == l) self->laters = l->next;
        if (l->next) l->next->prev = l->prev;
        l->prev = l->next = NULL;
        pthread_mutex_unlock(&self->lock);
        s_later_release(l);
    }
    free(req->body);
    free(req);
    *con_cls = NULL;
}

/* In a path (a string that starts with '/'), an encoded '/', '\\' or NUL becomes HTTP_BAD_BYTE so
 * the router refuses it instead of treating it as a separator. */
size_t http_unescape(char *s)
{
    int is_path = s[0] == '/';
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%' && r[1] && r[2] && strchr("0123456789abcdefABCDEF", r[1]) &&
            strchr("0123456789abcdefABCDEF", r[2])) {
            char hex[3] = { r[1], r[2], 0 };
            unsigned char c = (unsigned char) strtoul(hex, NULL, 16);
            if (is_path && (c == '/' || c == '\\' || c == 0))
                c = (unsigned char) HTTP_BAD_BYTE;
            else if (c == 0)
                c = (unsigned char) HTTP_BAD_BYTE;
            *w++ = (char) c;
            r += 2;
        } else if (*r == '+' && !is_path) {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t) (w - s);
}

/* MHD's unescape callback: the path, and every query name and value. */
static size_t s_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void) cls;
    (void) conn;
    return http_unescape(s);
}

/* libmicrohttpd's messages: fmt is its own printf format (the attribute tells the compiler so). */
static void s_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("http.mhd", "msg=\"%s\"", line);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* A server with the defaults, serving nothing yet (no listening socket: listen_fd -1). */
static http_server_t *s_server_alloc(size_t max_body, int threads, unsigned mhd_flags)
{
    http_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->listen_fd = -1;
    self->max_body = max_body;
    self->max_connections = HTTP_CONNECTION_LIMIT;
    self->header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
    self->max_per_client = HTTP_PER_CLIENT_LIMIT;
    self->threads = threads;
    self->mhd_flags = mhd_flags;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake_cond, NULL);
    if (getrandom(&self->rid_base, sizeof self->rid_base, 0) != (ssize_t) sizeof self->rid_base)
        self->rid_base = (uint64_t) time(NULL) << 20;
    return self;
}

http_server_t *http_server_new_driven(size_t max_body, char *err, size_t errlen)
{
    http_server_t *self = s_server_alloc(max_body, 0, MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET);
    if (!self)
        snprintf(err, errlen, "out of memory");
    return self;
}

int http_server_add_connection(http_server_t *self, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    if (!self || !self->daemon || self->threads != 0) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return MHD_add_connection(self->daemon, fd, peer, peer_len) == MHD_YES ? 0 : -1;
}

void http_server_step(http_server_t *self)
{
    if (self && self->daemon && self->threads == 0)
        MHD_run(self->daemon);
}

http_server_t *http_server_new(const char *listen_addr, size_t max_body, int threads, char *err, size_t errlen)
{
    char host[128];
    const char *colon = listen_addr ? strrchr(listen_addr, ':') : NULL;
    if (!colon || colon == listen_addr || (size_t) (colon - listen_addr) >= sizeof host) {
        snprintf(err, errlen, "listen_addr address must be host:port, got '%s'", listen_addr ? listen_addr : "(null)");
        return NULL;
    }
    memcpy(host, listen_addr, (size_t) (colon - listen_addr));
    host[colon - listen_addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve listen_addr address '%s': %s", listen_addr, gai_strerror(gai));
        return NULL;
    }
    /* Bind and listen_addr now, so the port is known and a busy address fails here; connections that
     * arrive before http_server_start wait in the kernel's backlog instead of meeting a half-routed
     * server. */
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, HTTP_LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "cannot listen_addr on %s: %s", listen_addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    int family = ai->ai_family;
    freeaddrinfo(ai);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    http_server_t *self = s_server_alloc(max_body, threads < 1 ? 1 : threads,
                                         family == AF_INET6 ? flags | MHD_USE_IPv6 : flags);
    if (!self) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->listen_fd = fd;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *) &bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            self->port = ntohs(((struct sockaddr_in *) &bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            self->port = ntohs(((struct sockaddr_in6 *) &bound)->sin6_port);
    }
    return self;
}

int http_server_start(http_server_t *self, char *err, size_t errlen)
{
    if (self->daemon)
        return 0;
    connguard_opts_t go = {.header_timeout_ms = self->header_timeout_ms, .max_per_client = self->max_per_client,
                           .trusted = self->trusted};
    self->guard = connguard_new(&go);
    if (!self->guard) {
        snprintf(err, errlen, "cannot start the connection guard");
        return -1;
    }
    int limit = connguard_fit_nofile(self->max_connections, HTTP_RESERVE_FDS);
    /* a driven server (threads 0) has neither a listening socket nor a pool */
    struct MHD_OptionItem own[3] = { { MHD_OPTION_END, 0, NULL } };
    if (self->threads > 0) {
        own[0] = (struct MHD_OptionItem) { MHD_OPTION_LISTEN_SOCKET, self->listen_fd, NULL };
        own[1] = (struct MHD_OptionItem) { MHD_OPTION_THREAD_POOL_SIZE, self->threads, NULL };
        own[2] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };
    }
    self->daemon = MHD_start_daemon(self->mhd_flags, 0, NULL, NULL, s_access, self,
                                    MHD_OPTION_ARRAY, own,
                                    MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                                    MHD_OPTION_CONNECTION_LIMIT, (unsigned) limit,
                                    MHD_OPTION_NOTIFY_CONNECTION, s_conn_notify, self,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) HTTP_CONNECTION_TIMEOUT_S,
                                    MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, self,
                                    MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
                                    MHD_OPTION_END);
    if (!self->daemon) {
        connguard_destroy(&self->guard);
        snprintf(err, errlen, "cannot start serving on port %d", self->port);
        return -1;
    }
    self->listen_fd = -1;   /* MHD closes it when it stops */
    if (pthread_create(&self->waker, NULL, s_waker, self) == 0)
        self->waker_started = 1;
    return 0;
}

int http_server_port(const http_server_t *self) { return self ? self->port : 0; }

void http_server_destroy(http_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    http_server_t *self = *self_p;
    *self_p = NULL;
    pthread_mutex_lock(&self->lock);
    self->stopping = 1;
    pthread_cond_broadcast(&self->wake_cond);
    pthread_mutex_unlock(&self->lock);
    if (self->waker_started)
        pthread_join(self->waker, NULL);
    /* every suspended stream has been resumed and ends at its next read */
    s_later_stop_all(self);
    s_later_drain(self);
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    connguard_destroy(&self->guard);     /* after the daemon: every connection has been forgotten */
    if (self->listen_fd >= 0)
        close(self->listen_fd);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake_cond);
    free(self);
}

void http_route(http_server_t *self, const char *method, const char *path, http_handler_fn *fn, void *arg)
{
    int count = self ? atomic_load_explicit(&self->route_count, memory_order_relaxed) : 0;
    if (!self || count >= HTTP_MAX_ROUTES) {
        log_error("http.route_table_full", "path=%s", path);
        return;
    }
    route_t *rt = &self->routes[count];
    snprintf(rt->method, sizeof rt->method, "%s", method);
    snprintf(rt->path, sizeof rt->path, "%s", path);
    size_t n = strlen(rt->path);
    if (n > 0 && rt->path[n - 1] == '*') {
        rt->path[n - 1] = '\0';
        rt->prefix = 1;
    }
    rt->fn = fn;
    rt->arg = arg;
    atomic_store_explicit(&self->route_count, count + 1, memory_order_release);
}

void http_static(http_server_t *self, const char *dir)
{
    char real[PATH_MAX];
    if (atomic_load(&self->static_ready)) {
        log_warn("http.static_twice", "dir=%s", dir);   /* set once: readers may be using it */
        return;
    }
    if (!realpath(dir, real)) {
        log_warn("http.static_missing", "dir=%s", dir);
        return;
    }
    if (strlen(real) >= sizeof self->static_dir) {
        log_warn("http.static_path_too_long", "dir=%s", dir);
        return;
    }
    memcpy(self->static_dir, real, strlen(real) + 1);
    atomic_store_explicit(&self->static_ready, 1, memory_order_release);
}

/* ---- accessors ---------------------------------------------------------------------------- */

const char *http_method(const http_request_t *req) { return req->method; }
const char *http_path(const http_request_t *req) { return req->path; }

const char *http_body(const http_request_t *req, size_t *len)
{
    if (len)
        *len = req->len;
    return req->body ? req->body : "";
}

const char *http_header(const http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_cookie(const http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *http_client_ip(const http_request_t *req) { return req->ip; }
const netaddr_t *http_client_addr(const http_request_t *req) { return &req->client; }
const char *http_request_id(const http_request_t *req) { return req->rid; }

void http_limits(http_server_t *self, int header_timeout_ms, int max_connections, int max_per_client)
{
    if (self->daemon) {
        log_warn("http.limits_after_start", "ignored=1");
        return;
    }
    if (header_timeout_ms > 0)
        self->header_timeout_ms = header_timeout_ms;
    if (max_connections > 0)
        self->max_connections = max_connections;
    if (max_per_client > 0)
        self->max_per_client = max_per_client;
}

void http_trust_proxies(http_server_t *self, const netlist_t *trusted)
{
    if (self->daemon) {
        log_warn("http.trust_after_start", "count=%d", trusted ? trusted->count : 0);   /* readers may be using it */
        return;
    }
    memset(&self->trusted, 0, sizeof self->trusted);
    if (trusted)
        self->trusted = *trusted;
}

/* ---- response helpers --------------------------------------------------------------------- */

void http_reply(http_response_t *res, int status, const char *content_type, const char *body, size_t len)
{
    free(res->body);
    res->status = status;
    res->body = malloc(len + 1);
    if (!res->body)
        abort();
    if (len)
        memcpy(res->body, body, len);
    res->body[len] = '\0';
    res->body_len = len;
    snprintf(res->content_type, sizeof res->content_type, "%s", content_type ? content_type : "application/json");
}

void http_reply_json(http_response_t *res, int status, char *json_taken)
{
    free(res->body);
    res->status = status;
    res->body = json_taken;
    res->body_len = json_taken ? strlen(json_taken) : 0;
    snprintf(res->content_type, sizeof res->content_type, "application/json");
}

void http_reply_error(http_response_t *res, int status, const char *reason)
{
    size_t len;
    char *body = s_error_json(reason, &len);
    http_reply_json(res, status, body);
}

void http_add_header(http_response_t *res, const char *name, const char *value)
{
    if (res->header_count >= (int) (sizeof res->headers / sizeof res->headers[0]))
        return;
    snprintf(res->headers[res->header_count][0], sizeof res->headers[0][0], "%s", name);
    snprintf(res->headers[res->header_count][1], sizeof res->headers[0][1], "%s", value);
    res->header_count++;
}
