/* door.c — see door.h.
 *
 * Threads: each loop's own thread does everything for its connections (read, check, answer,
 * close); the journal's flusher only calls s_wake, which puts a connection on its loop's done list
 * under the loop's lock and writes the loop's eventfd when the list was empty. A connection waiting
 * for its record (S_WAIT) is never closed or freed until it has been woken: its memory holds the
 * journal's registration (webhook_wait_t). At stop the loops accept and read nothing more but run
 * until every waiting connection has been woken and answered (at most a group commit away).
 *
 * Reading: epoll edge-triggered, registered once per connection (no epoll_ctl per request). A
 * connection is marked readable on an event and read until a read comes back short (the socket is
 * then empty, and the next bytes bring a new event); while a request is being answered nothing is
 * read, so pipelined requests wait in the socket, bounded by the kernel's buffer. */
#include "web/door.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "schema/json.h"
#include "schema/log.h"
#include "web/connguard.h"
#include "web/http.h"

#define DOOR_THREADS 2
#define DOOR_CONNECTION_LIMIT 2048
#define DOOR_PER_CLIENT_LIMIT 64
#define DOOR_HEADER_TIMEOUT_MS 5000
#define DOOR_IDLE_TIMEOUT_MS 30000
#define DOOR_RESERVE_FDS 256         /* descriptors kept for everything but connections */
#define DOOR_BACKLOG 1024
#define DOOR_EVENTS 64               /* epoll events taken per wait */
#define DOOR_BUF_FIRST 4096          /* a connection's first buffer; grown as a request needs */
#define DOOR_READ_MAX 16384          /* bytes asked of one recv at most */
#define DOOR_LINE_MAX 256            /* a chunk-size line */
#define DOOR_TRAILER_MAX 2048        /* a chunked body's trailer section */
#define DOOR_PATH_MAX 256

/* ---- the request reader ------------------------------------------------------------------------ */

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

static size_t s_limit(const door_reader_t *r)
{
    return DOOR_HEAD_MAX + r->max_body + DOOR_SLACK;
}

void door_read_init(door_reader_t *r, char *buf, size_t cap, size_t max_body)
{
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->cap = cap;
    r->max_body = max_body;
}

size_t door_read_room(const door_reader_t *r)
{
    if (r->done)
        return 0;
    size_t limit = s_limit(r);
    return r->len < limit ? limit - r->len : 0;
}

/* The request is whole (or answered without its body: close set). */
static int s_done(door_reader_t *r, int status, int close_after)
{
    if (status && !r->status)
        r->status = status;
    if (close_after)
        r->close = 1;
    r->done = 1;
    return DOOR_REQUEST;
}

static int s_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* 1 if the comma-separated list value holds token (any case). */
static int s_list_has(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t) (t - p) == n && strncasecmp(p, token, n) == 0)
            return 1;
        p = e;
    }
    return 0;
}

/* The route's decision for method and target: 0 (POST /cobo/webhook), 400 (a control byte, or an
 * encoded '/', '\' or NUL in the path), 404 or 405. */
static int s_route(const char *method, const char *target)
{
    char path[DOOR_PATH_MAX];
    size_t n = strcspn(target, "?");
    if (n >= sizeof path)
        return 404;
    memcpy(path, target, n);
    path[n] = '\0';
    http_unescape(path);
    for (const char *p = path; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return 400;
    if (strcmp(path, WEBHOOK_PATH) != 0)
        return 404;
    return strcmp(method, "POST") == 0 ? 0 : 405;
}

/* Parses the head buf[0..head_len) (it ends in CRLF CRLF): fields, and the status when the request
 * gets an answer of the server's own. Values are NUL-terminated in place. */
static void s_head_parse(door_reader_t *r)
{
    char *b = r->buf;
    size_t end = r->head_len - 2;          /* the final empty line's CRLF */
    char *eol = memchr(b, '\n', end);
    if (!eol || eol == b || eol[-1] != '\r') {
        s_done(r, 400, 1);
        return;
    }
    eol[-1] = '\0';
    /* request line: METHOD SP target SP HTTP/x.y */
    char *method = b;
    char *sp = strchr(method, ' ');
    if (!sp || sp == method || sp - method > 16) {
        s_done(r, 400, 1);
        return;
    }
    for (char *p = method; p < sp; p++)
        if (!s_tchar((unsigned char) *p)) {
            s_done(r, 400, 1);
            return;
        }
    *sp = '\0';
    char *target = sp + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2 || sp2 == target || *target != '/') {
        s_done(r, 400, 1);
        return;
    }
    *sp2 = '\0';
    for (char *p = target; *p; p++)
        if ((unsigned char) *p <= 0x20 || *p == 0x7f) {
            s_done(r, 400, 1);
            return;
        }
    const char *version = sp2 + 1;
    if (strncmp(version, "HTTP/", 5) != 0 || strlen(version) != 8 || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
        s_done(r, 400, 1);
        return;
    }
    if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0) {
        s_done(r, 505, 1);
        return;
    }
    r->http10 = version[7] == '0';
    if (r->http10)
        r->close = 1;

    int count = 0, has_cl = 0, te = 0, te_bad = 0, ts_dash = 0, sig_dash = 0;
    for (char *line = eol + 1; line < b + end;) {
        char *nl = memchr(line, '\n', (size_t) (b + end - line));
        if (!nl || nl == line || nl[-1] != '\r') {
            s_done(r, 400, 1);
            return;
        }
        nl[-1] = '\0';
        if (++count > DOOR_HEADERS_MAX) {
            s_done(r, 431, 1);
            return;
        }
        char *colon = line;
        while (colon < nl - 1 && s_tchar((unsigned char) *colon))
            colon++;
        if (colon == line || *colon != ':') {   /* no name, a space before ':', a folded line */
            s_done(r, 400, 1);
            return;
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = nl - 1;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        *ve = '\0';
        for (char *p = v; p < ve; p++)
            if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f) {
                s_done(r, 400, 1);
                return;
            }
        size_t off = (size_t) (v - b);
        const char *name = line;
        if (strcasecmp(name, "Content-Length") == 0) {
            if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 18) {
                s_done(r, 400, 1);
                return;
            }
            uint64_t n = strtoull(v, NULL, 10);
            if (has_cl && n != r->content_length) {
                s_done(r, 400, 1);
                return;
            }
            has_cl = 1;
            r->content_length = n;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            if (te || strcasecmp(v, "chunked") != 0)
                te_bad = 1;
            te = 1;
        } else if (strcasecmp(name, "Connection") == 0) {
            if (s_list_has(v, "close"))
                r->close = 1;
        } else if (strcasecmp(name, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0)
                r->expect = 1;
        } else if (strcasecmp(name, "Content-Type") == 0) {
            if (!r->content_type)
                r->content_type = off;
        } else if (strcasecmp(name, "Biz-Timestamp") == 0 || strcasecmp(name, "Biz_Timestamp") == 0) {
            int dash = name[3] == '-';
            if (!r->timestamp || (dash && !ts_dash))   /* the first, the dashed name first */
                r->timestamp = off;
            ts_dash |= dash;
        } else if (strcasecmp(name, "Biz-Resp-Signature") == 0 || strcasecmp(name, "Biz_Resp_Signature") == 0) {
            int dash = name[3] == '-';
            if (!r->signature || (dash && !sig_dash))
                r->signature = off;
            sig_dash |= dash;
        } else if (strcasecmp(name, "X-Forwarded-For") == 0) {
            if (r->xff_count < (int) (sizeof r->xff / sizeof r->xff[0]))
                r->xff[r->xff_count++] = off;
        } else if (strcasecmp(name, "X-Real-IP") == 0) {
            if (!r->real_ip)
                r->real_ip = off;
        }
        line = nl + 1;
    }
    if (te_bad) {
        s_done(r, 501, 1);
        return;
    }
    if (te && has_cl) {   /* two framings: one would be believed by someone else */
        s_done(r, 400, 1);
        return;
    }
    r->chunked = te;
    int route = s_route(method, target);
    if (route) {
        r->status = route;   /* answered once any body has been read and dropped */
        r->bad_path = route == 400;
        return;
    }
    if (!te && !has_cl)
        s_done(r, 411, 1);
    else if (!te && r->content_length > r->max_body)
        r->status = 413;
}

/* Drops n bytes at off. */
static void s_drop(door_reader_t *r, size_t off, size_t n)
{
    memmove(r->buf + off, r->buf + off + n, r->len - off - n);
    r->len -= n;
}

static int s_body_length(door_reader_t *r)
{
    size_t have = r->len - r->head_len;
    if (!r->status) {
        if (have < r->content_length)
            return DOOR_MORE;
        r->body_len = (size_t) r->content_length;
        return s_done(r, 0, 0);
    }
    uint64_t left = r->content_length - r->discarded;
    size_t take = have < left ? have : (size_t) left;
    s_drop(r, r->head_len, take);
    r->discarded += take;
    return r->discarded == r->content_length ? s_done(r, 0, 0) : DOOR_MORE;
}

/* Parses a chunk-size line at p (CRLF at nl): 0 with the size, or -1. */
static int s_chunk_size(const char *p, const char *nl, uint64_t *size)
{
    if (nl == p || nl[-1] != '\r')
        return -1;
    uint64_t n = 0;
    int digits = 0;
    for (; p < nl - 1; p++, digits++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
              : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;
        if (d < 0)
            break;
        if (digits >= 15)
            return -1;
        n = n * 16 + (uint64_t) d;
    }
    if (!digits)
        return -1;
    while (p < nl - 1 && (*p == ' ' || *p == '\t'))
        p++;
    if (p < nl - 1 && *p != ';')   /* only a chunk extension may follow (ignored) */
        return -1;
    for (; p < nl - 1; p++)
        if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f)
            return -1;
    *size = n;
    return 0;
}

/* Decodes what is there of a chunked body in place: data moves down to head_len + body_len (or is
 * dropped when the body is being discarded), framing is dropped. */
static int s_body_chunked(door_reader_t *r)
{
    size_t w = r->head_len + r->body_len, p = r->raw;
    int rc = DOOR_MORE;
    while (p < r->len && rc == DOOR_MORE) {
        char *at = r->buf + p;
        size_t avail = r->len - p;
        if (r->chunk_state == CH_SIZE || r->chunk_state == CH_TRAILER) {
            size_t max = r->chunk_state == CH_SIZE ? DOOR_LINE_MAX : DOOR_TRAILER_MAX - r->trailer_len;
            char *nl = memchr(at, '\n', avail < max ? avail : max);
            if (!nl) {
                if (avail >= max)
                    rc = s_done(r, 400, 1);
                break;
            }
            size_t line = (size_t) (nl - at) + 1;
            if (r->chunk_state == CH_SIZE) {
                if (s_chunk_size(at, nl, &r->chunk_left) != 0) {
                    rc = s_done(r, 400, 1);
                    break;
                }
                r->chunk_state = r->chunk_left ? CH_DATA : CH_TRAILER;
            } else {
                if (nl == at || nl[-1] != '\r') {
                    rc = s_done(r, 400, 1);
                    break;
                }
                r->trailer_len += line;
                if (line == 2)
                    rc = s_done(r, 0, 0);   /* the empty line: the body is whole */
            }
            p += line;
        } else if (r->chunk_state == CH_DATA) {
            size_t n = avail < r->chunk_left ? avail : (size_t) r->chunk_left;
            if (!r->status && r->body_len + n > r->max_body)
                r->status = 413;
            if (!r->status) {
                memmove(r->buf + w, at, n);
                w += n;
                r->body_len += n;
            } else {
                r->discarded += n;
                if (r->discarded > DOOR_DRAIN_MAX)
                    rc = s_done(r, 413, 1);   /* a flood: answered now, then closed */
            }
            p += n;
            r->chunk_left -= n;
            if (!r->chunk_left)
                r->chunk_state = CH_DATA_END;
        } else {   /* CH_DATA_END: the CRLF after a chunk's data */
            if (avail < 2)
                break;
            if (at[0] != '\r' || at[1] != '\n') {
                rc = s_done(r, 400, 1);
                break;
            }
            p += 2;
            r->chunk_state = CH_SIZE;
        }
    }
    s_drop(r, w, p - w);
    r->raw = w;
    return rc;
}

int door_read_step(door_reader_t *r)
{
    if (r->done)
        return DOOR_REQUEST;
    if (!r->head_len) {
        size_t scan = r->len < DOOR_HEAD_MAX ? r->len : DOOR_HEAD_MAX;
        char *end = memmem(r->buf, scan, "\r\n\r\n", 4);
        if (!end)
            return r->len >= DOOR_HEAD_MAX ? s_done(r, 431, 1) : DOOR_MORE;
        r->head_len = (size_t) (end - r->buf) + 4;
        s_head_parse(r);
        if (r->done)
            return DOOR_REQUEST;
        r->raw = r->head_len;
        if (!r->chunked && r->content_length == 0)
            return s_done(r, 0, 0);
        if (!r->chunked && r->content_length > DOOR_DRAIN_MAX)
            return s_done(r, 413, 1);   /* not worth reading: answered now, then closed */
        if (r->expect && r->len == r->head_len) {
            if (r->status) {   /* answered without the body, which then never comes */
                r->expect_cut = 1;
                return s_done(r, 0, 1);
            }
            r->expect = 0;
            return DOOR_CONTINUE;
        }
        r->expect = 0;
    }
    return r->chunked ? s_body_chunked(r) : s_body_length(r);
}

void door_read_next(door_reader_t *r)
{
    size_t used = r->head_len + r->body_len;
    if (!r->done || used > r->len)
        used = r->len;   /* not whole (a caller closing anyway): nothing is kept */
    memmove(r->buf, r->buf + used, r->len - used);
    door_reader_t next;
    door_read_init(&next, r->buf, r->cap, r->max_body);
    next.len = r->len - used;
    *r = next;
}

/* ---- the server ------------------------------------------------------------------------------ */

enum { S_READ, S_WAIT, S_WRITE, S_DEAD };

typedef struct door_loop_t door_loop_t;
typedef struct s_conn_t s_conn_t;

struct s_conn_t {
    door_loop_t *loop;
    int fd;
    connguard_conn_t *guard;
    netaddr_t peer;
    door_reader_t rd;
    int state;
    int readable;                    /* the socket may hold bytes not read yet */
    int head_seen;                   /* connguard told the head has arrived */
    int interim;                     /* out holds "100 Continue": reading goes on after it */
    int adopt;                       /* accepted by another loop, handed to this one (done list) */
    int close_after;
    int64_t last_ms;                 /* last progress (reading a body, writing an answer) */
    jbuf_t out;                      /* the answer being written (kept between requests) */
    size_t out_sent;
    jbuf_t body;                     /* the answer's JSON */
    webhook_wait_t wait;
    s_conn_t *prev, *next;           /* the loop's connections */
    s_conn_t *done_next;             /* the loop's done list */
};

struct door_loop_t {
    door_t *door;
    pthread_t thread;
    int started;
    int epfd, evfd;
    pthread_mutex_t mu;              /* done */
    s_conn_t *done;                  /* woken by the journal, to be answered */
    s_conn_t *conns;
    atomic_int count;                /* connections (read by other loops to balance) */
    s_conn_t *dead;                  /* closed during this round of events: freed after it */
    int waiting;                     /* connections in S_WAIT */
    int listening;
    time_t date_s;
    char date[48];                   /* "Date: ...\r\n" for date_s */
};

struct door_t {
    door_opts_t o;
    int listen_fd;
    int port;
    int max_connections;
    webhook_t *webhook;
    connguard_t *guard;
    door_loop_t *loops;
    int nloops;                      /* loops set up (door_start and door_destroy only) */
    atomic_int balanced;             /* loops that take connections handed over: all, once started */
    atomic_int stop;
    atomic_int open;
    atomic_uint_fast64_t cut, refused;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *s_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

static const char *s_error_text(int status)
{
    switch (status) {
    case 400: return "malformed request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 411: return "Content-Length or chunked Transfer-Encoding required";
    case 413: return "body too large";
    case 431: return "request head too large";
    case 501: return "unsupported Transfer-Encoding";
    case 505: return "HTTP version not supported";
    default: return "error";
    }
}

static const char *s_date(door_loop_t *l)
{
    time_t now = time(NULL);
    if (now != l->date_s) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(l->date, sizeof l->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        l->date_s = now;
    }
    return l->date;
}

/* The answer (status, the JSON in c->body) into c->out, with the headers every kasa answer has. */
static void s_format(s_conn_t *c, int status)
{
    static const char common[] =
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "X-Frame-Options: DENY\r\n"
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
        "Cache-Control: no-store\r\n";
    char line[96];
    jbuf_reset(&c->out);
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status, s_reason(status),
                     c->body.len);
    jbuf_add(&c->out, line, (size_t) n);
    jbuf_add(&c->out, common, sizeof common - 1);
    jbuf_puts(&c->out, s_date(c->loop));
    if (status == 405)
        jbuf_puts(&c->out, "Allow: POST\r\n");
    if (c->close_after)
        jbuf_puts(&c->out, "Connection: close\r\n");
    jbuf_add(&c->out, "\r\n", 2);
    jbuf_add(&c->out, c->body.data ? c->body.data : "", c->body.len);
    c->out_sent = 0;
    c->state = S_WRITE;
}

static void s_format_error(s_conn_t *c, int status)
{
    jbuf_reset(&c->body);
    jbuf_puts(&c->body, "{\"error\":");
    jbuf_str(&c->body, c->rd.bad_path ? "bad path" : s_error_text(status));
    jbuf_puts(&c->body, "}");
    s_format(c, status);
}

/* Closes c; its memory lives until the end of the round of events (an event of the same round may
 * still name it: s_reap frees it after). */
static void s_close(s_conn_t *c)
{
    door_loop_t *l = c->loop;
    door_t *d = l->door;
    connguard_close(d->guard, &c->guard);   /* before the descriptor can be reused */
    atomic_fetch_sub(&d->open, 1);          /* before the client can see the close */
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->state = S_DEAD;
    c->next = l->dead;
    l->dead = c;
    atomic_fetch_sub(&l->count, 1);
}

static void s_free(s_conn_t *c)
{
    free(c->rd.buf);
    jbuf_free(&c->out);
    jbuf_free(&c->body);
    free(c);
}

static void s_reap(door_loop_t *l)
{
    while (l->dead) {
        s_conn_t *c = l->dead;
        l->dead = c->next;
        s_free(c);
    }
}

/* webhook_in_t.client: the client's address as the other listener names it. */
static void s_client(void *arg, char *out, size_t outlen)
{
    s_conn_t *c = arg;
    const door_reader_t *r = &c->rd;
    jbuf_t chain;
    jbuf_init(&chain);
    for (int i = 0; i < r->xff_count; i++) {
        if (i)
            jbuf_add(&chain, ",", 1);
        jbuf_puts(&chain, r->buf + r->xff[i]);
    }
    netaddr_t client;
    netaddr_client(&c->peer, &c->loop->door->o.trusted, r->xff_count ? chain.data : NULL,
                   r->real_ip ? r->buf + r->real_ip : NULL, &client);
    jbuf_free(&chain);
    char text[NETADDR_TEXT];
    netaddr_format(&client, text);
    snprintf(out, outlen, "%s", text);
}

/* webhook_wake_fn, on the journal's flusher: the connection goes to its loop. */
static void s_wake(void *arg)
{
    s_conn_t *c = arg;
    door_loop_t *l = c->loop;
    pthread_mutex_lock(&l->mu);
    int first = l->done == NULL;
    c->done_next = l->done;
    l->done = c;
    pthread_mutex_unlock(&l->mu);
    if (first) {
        uint64_t one = 1;
        ssize_t n = write(l->evfd, &one, sizeof one);
        (void) n;   /* a full counter (never, at 2^64 - 2) still leaves the eventfd readable */
    }
}

/* A whole request: answered now (S_WRITE) or once its record is durable (S_WAIT). */
static void s_request(s_conn_t *c)
{
    door_reader_t *r = &c->rd;
    c->close_after = r->close;
    if (r->status) {
        s_format_error(c, r->status);
        return;
    }
    webhook_in_t in = {
        .timestamp = r->timestamp ? r->buf + r->timestamp : NULL,
        .signature = r->signature ? r->buf + r->signature : NULL,
        .content_type = r->content_type ? r->buf + r->content_type : NULL,
        .body = r->buf + r->head_len, .len = r->body_len,
        .client = s_client, .client_arg = c,
    };
    int code = webhook_take(c->loop->door->webhook, &in, &c->wait, &c->body);
    if (code) {
        s_format(c, code);
        return;
    }
    c->state = S_WAIT;
    c->loop->waiting++;
    webhook_wait_arm(&c->wait, s_wake, c);
}

/* Writes what is left of c->out: 0 all written, 1 the socket is full (EPOLLOUT comes), -1 gone. */
static int s_flush(s_conn_t *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t) n;
            c->last_ms = s_now_ms();
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads once into the request's buffer (grown as the request needs): 1 read, 0 nothing there, -1
 * the connection ended or failed. */
static int s_read(s_conn_t *c)
{
    door_reader_t *r = &c->rd;
    size_t room = door_read_room(r);
    if (room == 0)
        return -1;
    size_t want = room < DOOR_READ_MAX ? room : DOOR_READ_MAX;
    if (r->cap - r->len < want) {
        size_t cap = r->cap * 2 > r->len + want ? r->cap * 2 : r->len + want;
        char *nb = realloc(r->buf, cap);
        if (!nb)
            return -1;
        r->buf = nb;
        r->cap = cap;
    }
    size_t space = r->cap - r->len < room ? r->cap - r->len : room;
    for (;;) {
        ssize_t n = recv(c->fd, r->buf + r->len, space, 0);
        if (n > 0) {
            r->len += (size_t) n;
            if ((size_t) n < space)
                c->readable = 0;   /* the socket is empty now: new bytes bring a new event */
            c->last_ms = s_now_ms();
            return 1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->readable = 0;
            return 0;
        }
        return -1;
    }
}

/* Does what c can do now. */
static void s_run(s_conn_t *c)
{
    door_t *d = c->loop->door;
    for (;;) {
        if (c->state == S_WAIT || c->state == S_DEAD)
            return;
        if (c->state == S_WRITE) {
            int rc = s_flush(c);
            if (rc == 1)
                return;
            if (rc < 0 || (!c->interim && c->close_after)) {
                s_close(c);
                return;
            }
            c->state = S_READ;
            if (c->interim) {
                c->interim = 0;
                continue;
            }
            door_read_next(&c->rd);
            c->head_seen = 0;
            connguard_idle(d->guard, c->guard);
            c->last_ms = s_now_ms();
            continue;
        }
        if (atomic_load(&d->stop)) {
            s_close(c);
            return;
        }
        int ev = door_read_step(&c->rd);
        if (c->rd.head_len && !c->head_seen) {
            c->head_seen = 1;
            connguard_head_done(d->guard, c->guard);
        }
        if (ev == DOOR_REQUEST) {
            s_request(c);
            continue;
        }
        if (ev == DOOR_CONTINUE) {
            jbuf_reset(&c->out);
            jbuf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            c->out_sent = 0;
            c->interim = 1;
            c->state = S_WRITE;
            continue;
        }
        if (!c->readable)
            return;
        int rc = s_read(c);
        if (rc < 0) {
            s_close(c);
            return;
        }
        if (rc == 0)
            return;
    }
}

/* c joins its loop: listed, and in the loop's epoll (edge-triggered, for its whole life). */
static void s_adopt(s_conn_t *c)
{
    door_loop_t *l = c->loop;
    c->next = l->conns;
    c->prev = NULL;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        s_close(c);   /* freed at the end of this round */
}

static void s_accept(door_loop_t *l)
{
    door_t *d = l->door;
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(d->listen_fd, (struct sockaddr *) &ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;   /* EAGAIN (another loop took it), or a transient error: epoll says when again */
        if (atomic_fetch_add(&d->open, 1) >= d->max_connections) {
            atomic_fetch_sub(&d->open, 1);
            atomic_fetch_add(&d->refused, 1);
            close(fd);
            continue;
        }
        int refused = 0;
        connguard_conn_t *g = connguard_open(d->guard, (struct sockaddr *) &ss, fd, &refused);
        s_conn_t *c = refused ? NULL : calloc(1, sizeof *c);
        char *buf = c ? malloc(DOOR_BUF_FIRST) : NULL;
        if (!buf) {
            if (refused)
                atomic_fetch_add(&d->refused, 1);
            connguard_close(d->guard, &g);
            free(c);
            atomic_fetch_sub(&d->open, 1);   /* before the client can see the close */
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (d->o.sndbuf > 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &d->o.sndbuf, sizeof d->o.sndbuf);
        c->loop = l;
        c->fd = fd;
        c->guard = g;
        if (netaddr_from_sockaddr((struct sockaddr *) &ss, &c->peer) != 0)
            memset(&c->peer, 0, sizeof c->peer);
        door_read_init(&c->rd, buf, DOOR_BUF_FIRST, d->o.max_body);
        jbuf_init(&c->out);
        jbuf_init(&c->body);
        c->state = S_READ;
        c->last_ms = s_now_ms();
        /* to the loop with the fewest connections: the kernel wakes whichever loop waits, so one
         * loop could otherwise take a whole burst of connections and leave the others idle */
        door_loop_t *to = l;
        int loops = atomic_load(&d->balanced);
        for (int k = 0; k < loops; k++)
            if (atomic_load(&d->loops[k].count) < atomic_load(&to->count))
                to = &d->loops[k];
        atomic_fetch_add(&to->count, 1);
        c->loop = to;
        if (to != l) {
            c->adopt = 1;
            s_wake(c);   /* its loop adds it (s_answer_done) */
            continue;
        }
        s_adopt(c);
    }
}

/* The journal woke these: finished and answered. */
static void s_answer_done(door_loop_t *l)
{
    uint64_t count;
    ssize_t n = read(l->evfd, &count, sizeof count);
    (void) n;
    pthread_mutex_lock(&l->mu);
    s_conn_t *c = l->done;
    l->done = NULL;
    pthread_mutex_unlock(&l->mu);
    while (c) {
        s_conn_t *next = c->done_next;
        if (c->adopt) {   /* handed over by the loop that accepted it */
            c->adopt = 0;
            s_adopt(c);
            if (atomic_load(&l->door->stop))
                s_close(c);
            c = next;
            continue;
        }
        l->waiting--;
        int code = webhook_wait_end(&c->wait, 1, &c->body);
        s_format(c, code);
        s_run(c);
        c = next;
    }
}

/* Closes connections whose body or answer made no progress within idle_timeout_ms. */
static void s_sweep(door_loop_t *l, int64_t now)
{
    door_t *d = l->door;
    for (s_conn_t *c = l->conns, *next; c; c = next) {
        next = c->next;
        int timed = c->state == S_WRITE || (c->state == S_READ && c->rd.head_len);
        if (timed && now - c->last_ms > d->o.idle_timeout_ms) {
            atomic_fetch_add(&d->cut, 1);
            s_close(c);
        }
    }
}

static void *s_loop(void *arg)
{
    door_loop_t *l = arg;
    door_t *d = l->door;
    pthread_setname_np(pthread_self(), "door");
    struct epoll_event evs[DOOR_EVENTS];
    int tick_ms = d->o.idle_timeout_ms / 4 < 1000 ? d->o.idle_timeout_ms / 4 : 1000;
    if (tick_ms < 10)
        tick_ms = 10;
    int64_t swept = s_now_ms();
    for (;;) {
        int stopping = atomic_load(&d->stop);
        if (stopping) {
            if (l->listening) {
                epoll_ctl(l->epfd, EPOLL_CTL_DEL, d->listen_fd, NULL);
                l->listening = 0;
                for (s_conn_t *c = l->conns, *next; c; c = next) {   /* idle and reading: closed */
                    next = c->next;
                    if (c->state == S_READ)
                        s_close(c);
                }
            }
            if (l->waiting == 0)
                break;
        }
        int n = epoll_wait(l->epfd, evs, DOOR_EVENTS, stopping ? 50 : tick_ms);
        int held = 0;   /* the requests that came together share a group commit */
        for (int i = 0; i < n && !held; i++)
            if (evs[i].data.ptr != &d->listen_fd && evs[i].data.ptr != &l->evfd && (evs[i].events & EPOLLIN))
                held = 1;
        if (held)
            webhook_hold(d->webhook);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &d->listen_fd) {
                s_accept(l);
            } else if (p == &l->evfd) {
                s_answer_done(l);
            } else {
                s_conn_t *c = p;
                if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    c->readable = 1;
                s_run(c);
            }
        }
        if (held)
            webhook_release(d->webhook);
        int64_t now = s_now_ms();
        if (now - swept >= tick_ms) {
            s_sweep(l, now);
            swept = now;
        }
        s_reap(l);
    }
    while (l->conns)   /* answered or being written: what is left is cut */
        s_close(l->conns);
    s_reap(l);
    return NULL;
}

/* Splits "host:port" ("[v6]:port") and binds a listening socket. -1 with err. */
static int s_listen(const char *listen_at, int *port, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(listen_at, ':');
    if (!colon || (size_t) (colon - listen_at) >= sizeof host) {
        snprintf(err, errlen, "bad listen address %s (expected host:port)", listen_at);
        return -1;
    }
    memcpy(host, listen_at, (size_t) (colon - listen_at));
    host[colon - listen_at] = '\0';
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = '\0';
        h++;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve %s: %s", listen_at, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, DOOR_BACKLOG) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen_at, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *) &ss, &sl);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                           : ((struct sockaddr_in *) &ss)->sin_port);
    return fd;
}

door_t *door_new(const char *listen_at, const door_opts_t *opts, char *err, size_t errlen)
{
    door_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->o = *opts;
    if (self->o.threads <= 0)
        self->o.threads = DOOR_THREADS;
    if (self->o.max_connections <= 0)
        self->o.max_connections = DOOR_CONNECTION_LIMIT;
    if (self->o.max_per_client <= 0)
        self->o.max_per_client = DOOR_PER_CLIENT_LIMIT;
    if (self->o.header_timeout_ms <= 0)
        self->o.header_timeout_ms = DOOR_HEADER_TIMEOUT_MS;
    if (self->o.idle_timeout_ms <= 0)
        self->o.idle_timeout_ms = DOOR_IDLE_TIMEOUT_MS;
    self->listen_fd = s_listen(listen_at, &self->port, err, errlen);
    if (self->listen_fd < 0) {
        free(self);
        return NULL;
    }
    return self;
}

int door_start(door_t *self, webhook_t *webhook, char *err, size_t errlen)
{
    if (self->loops)
        return 0;
    self->webhook = webhook;
    self->max_connections = connguard_fit_nofile(self->o.max_connections, DOOR_RESERVE_FDS);
    connguard_opts_t go = { .header_timeout_ms = self->o.header_timeout_ms, .max_per_client = self->o.max_per_client,
                            .trusted = self->o.trusted };
    self->guard = connguard_new(&go);
    self->loops = calloc((size_t) self->o.threads, sizeof *self->loops);
    if (!self->guard || !self->loops) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < self->o.threads; i++) {
        door_loop_t *l = &self->loops[i];
        l->door = self;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        pthread_mutex_init(&l->mu, NULL);
        self->nloops++;
        struct epoll_event le = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &self->listen_fd };
        struct epoll_event ee = { .events = EPOLLIN, .data.ptr = &l->evfd };
        if (l->epfd < 0 || l->evfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, self->listen_fd, &le) != 0 ||
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ee) != 0) {
            snprintf(err, errlen, "webhook listener: epoll: %s", strerror(errno));
            return -1;
        }
        l->listening = 1;
        if (pthread_create(&l->thread, NULL, s_loop, l) != 0) {
            snprintf(err, errlen, "webhook listener: cannot start a thread");
            return -1;
        }
        l->started = 1;
    }
    atomic_store(&self->balanced, self->nloops);
    return 0;
}

int door_port(const door_t *self) { return self->port; }
int door_open_count(door_t *self) { return atomic_load(&self->open); }
uint64_t door_cut_count(door_t *self) { return atomic_load(&self->cut) + (self->guard ? connguard_cut_count(self->guard) : 0); }
uint64_t door_refused_count(door_t *self) { return atomic_load(&self->refused); }

void door_destroy(door_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    door_t *self = *self_p;
    *self_p = NULL;
    atomic_store(&self->stop, 1);
    for (int i = 0; i < self->nloops; i++) {
        door_loop_t *l = &self->loops[i];
        if (l->started) {
            uint64_t one = 1;
            ssize_t n = write(l->evfd, &one, sizeof one);
            (void) n;
            pthread_join(l->thread, NULL);
        }
    }
    for (int i = 0; i < self->nloops; i++) {   /* every loop has ended: nothing is handed over now */
        door_loop_t *l = &self->loops[i];
        while (l->done) {   /* handed over as its loop ended (adopt): never served */
            s_conn_t *c = l->done;
            l->done = c->done_next;
            connguard_close(self->guard, &c->guard);
            close(c->fd);
            atomic_fetch_sub(&self->open, 1);
            s_free(c);
        }
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->evfd >= 0)
            close(l->evfd);
        pthread_mutex_destroy(&l->mu);
    }
    close(self->listen_fd);
    connguard_destroy(&self->guard);
    free(self->loops);
    free(self);
}
