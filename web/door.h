/* door.h — the webhook listener (KASA_WEBHOOK_LISTEN): a small HTTP/1.1 server of kasa's own that
 * serves POST /cobo/webhook alone (web/webhook.h), so that a webhook costs what it must.
 *
 * A few event loops (epoll, one thread each) share the listening socket; a connection stays on the
 * loop that accepted it. A loop reads a request, checks it and takes it in (webhook_take) on its own
 * thread; a deposit whose answer waits for its record's group commit leaves its connection as it is
 * (still in epoll, nothing read meanwhile), and the journal's flusher, once the batch is durable,
 * only puts the connection on its loop's list and wakes the loop (one eventfd write per batch and
 * loop, not per webhook): the loop then finishes the deposit (webhook_wait_end) and writes the answer
 * from the connection's own buffer. So a webhook costs a read, a write and its share of the loop's
 * epoll_wait, with no thread woken for it alone.
 *
 * HTTP: HTTP/1.1 (keep-alive unless "Connection: close"; pipelined requests answered in order, one
 * at a time) and HTTP/1.0 (closed after the answer). A body comes with Content-Length or
 * Transfer-Encoding: chunked (a POST with neither: 411); "Expect: 100-continue" is answered
 * "100 Continue" before the body is read. Errors are JSON {"error": ...} with the headers every kasa
 * answer carries: 400 a malformed request (the connection is closed after it), or a path with a
 * control byte or an encoded '/', '\' or NUL; 404 another path; 405 another method (Allow: POST);
 * 411; 413 a body over max_body (read and discarded first up to DOOR_DRAIN_MAX, so the client sees
 * the answer; above that answered at once and closed); 431 a head over DOOR_HEAD_MAX bytes or
 * DOOR_HEADERS_MAX lines; 501 a Transfer-Encoding other than chunked; 505 an HTTP version other than
 * 1.0 and 1.1; and the webhook's own answers (web/webhook.h).
 *
 * Protections, as on the other listener (web/connguard.h): at most max_connections open (more are
 * closed at once), max_per_client per client address (trusted proxies exempt); a request's whole head
 * within header_timeout_ms of the connection or of the previous answer; a body being read or an
 * answer being written makes progress within idle_timeout_ms, or the connection is closed. A webhook
 * waiting for its record has no timeout (it is at most a group commit away). */
#ifndef KASA_WEB_DOOR_H
#define KASA_WEB_DOOR_H

#include <stddef.h>
#include <stdint.h>

#include "schema/netaddr.h"
#include "web/webhook.h"

#define DOOR_HEAD_MAX 8192           /* request line and headers, bytes */
#define DOOR_HEADERS_MAX 64          /* header lines */
#define DOOR_DRAIN_MAX (16u << 20)   /* an oversized body is read and discarded up to this */

typedef struct {
    size_t max_body;                 /* 413 above (KASA_MAX_BODY) */
    int threads;                     /* event loops; 0: 2 */
    int max_connections;             /* 0: 2048 (fitted to RLIMIT_NOFILE at start) */
    int max_per_client;              /* 0: 64 */
    int header_timeout_ms;           /* 0: 5000 */
    int idle_timeout_ms;             /* 0: 30000 */
    netlist_t trusted;               /* reverse proxies: their X-Forwarded-For / X-Real-IP are believed */
    int sndbuf;                      /* SO_SNDBUF of each connection; 0: the kernel's (a test's small
                                      * one makes answers go out in pieces) */
} door_opts_t;

typedef struct door_t door_t;

/* Binds and listens on listen ("127.0.0.1:8001"; port 0: any) but accepts nothing until door_start
 * (connections wait in the kernel's backlog). NULL with a reason in err. */
door_t *door_new(const char *listen, const door_opts_t *opts, char *err, size_t errlen);
/* Starts the loops, taking webhooks into webhook (not owned; it must outlive the door). 0, or -1
 * with a reason in err. */
int door_start(door_t *self, webhook_t *webhook, char *err, size_t errlen);
/* The port bound. */
int door_port(const door_t *self);
/* Connections open now, cut for a late head or a stalled body or answer, and refused (over a limit). */
int door_open_count(door_t *self);
uint64_t door_cut_count(door_t *self);
uint64_t door_refused_count(door_t *self);
/* Stops: accepts and reads nothing more, answers every webhook still waiting for its record once it
 * is durable (at most a group commit away), closes every connection and frees. Call before
 * webhook_destroy. Nulls *self_p; safe on NULL and twice. */
void door_destroy(door_t **self_p);

/* ---- the request reader, without a connection (tests/fuzz/fuzz_door.c feeds it directly) ----
 * A connection's bytes are appended to buf (len of cap used); door_read_step says what they hold:
 * DOOR_MORE (give it more bytes; the head, or the body's next piece, is incomplete), DOOR_REQUEST
 * (a whole request: status 0 for a POST /cobo/webhook with its body at buf + head_len, body_len
 * bytes, or the answer it gets without a handler: 400, 404, 405, 411, 413, 431, 501, 505) or
 * DOOR_CONTINUE (a webhook's head asked "Expect: 100-continue" and its body has not started: send
 * "100 Continue", then read on). After a request is answered, door_read_next drops its bytes (a
 * pipelined request's bytes move to the front of buf). close is set when the connection must close
 * after the answer (HTTP/1.0, "Connection: close", or a request whose end cannot be known).
 * A body is never kept beyond max_body: bytes of a body being discarded are dropped from buf. */
enum { DOOR_MORE = 0, DOOR_REQUEST = 1, DOOR_CONTINUE = 2 };

typedef struct {
    size_t max_body;
    char *buf;                        /* the caller's; it may grow it (door_read_room), the reader
                                       * keeps offsets only */
    size_t len, cap;
    /* the request's head, once parsed (offsets into buf, each value NUL-terminated) */
    size_t head_len;                  /* 0 until the head is complete */
    int status;                       /* see above */
    int close;
    int http10;
    int chunked;
    int expect;                       /* Expect: 100-continue, not yet answered */
    int expect_cut;                   /* answered before its body, which an Expect: 100-continue
                                       * client then never sends: closed after the answer */
    int bad_path;                     /* status 400 for the path (an encoded '/', '\' or NUL, a
                                       * control byte), not for the request's syntax */
    uint64_t content_length;
    size_t timestamp, signature, content_type, real_ip;   /* value offsets, 0 when absent */
    size_t xff[8];                    /* X-Forwarded-For values, in order */
    int xff_count;
    /* the body */
    size_t body_len;                  /* bytes at buf + head_len (decoded when chunked) */
    uint64_t discarded;               /* bytes dropped (a body over max_body, or of an early answer) */
    size_t raw;                       /* chunked: where the undecoded bytes start */
    uint64_t chunk_left;              /* chunked: data bytes left in the current chunk */
    int chunk_state;
    size_t trailer_len;
    int done;                         /* the request is whole */
} door_reader_t;

/* Prepares r for a new connection over buf (cap bytes). */
void door_read_init(door_reader_t *r, char *buf, size_t cap, size_t max_body);
int door_read_step(door_reader_t *r);
void door_read_next(door_reader_t *r);
/* How many more bytes the reader may be given now: buf may hold len + this (bounded by
 * DOOR_HEAD_MAX + max_body + DOOR_SLACK); 0 once a request is whole. */
#define DOOR_SLACK 4096
size_t door_read_room(const door_reader_t *r);

#endif
