/* http.h — kasa's HTTP server on libmicrohttpd: routes, bounded bodies, JSON answers, streams.
 *
 * A handler runs on one of the server's worker threads with the whole request body in memory
 * (a body over max_body is answered 413 before any handler runs). It fills in an http_response_t;
 * the server sends it. Handlers may block briefly (e.g. waiting for a journal append), so the server
 * runs a pool of threads (libmicrohttpd, epoll, one pool thread per connection at a time); a handler
 * whose work is slow (an MT5 call) hands it elsewhere and answers later (http_later), holding no
 * thread meanwhile.
 * Every response carries X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer,
 * X-Frame-Options: DENY, a Content-Security-Policy (static files: default-src 'self';
 * img-src 'self' data:; API answers: default-src 'none') and Cache-Control, unless the handler set
 * that header itself. Errors the server answers alone are JSON {"error": ...}: 400 bad path (an
 * encoded '/', '\' or NUL, a control byte), 404, 405 (with Allow), 413 body too large.
 * Listens only on the address given; routes may be added while it already serves. Slow and numerous
 * connections are bounded (http_limits, web/connguard.h). */
#ifndef KASA_WEB_HTTP_H
#define KASA_WEB_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "schema/json.h"
#include "schema/netaddr.h"

typedef struct http_server_t http_server_t;
typedef struct http_request_t http_request_t;   /* opaque: use the accessors below */

typedef struct {
    int status;                 /* HTTP status; 0 means "not handled" (the router tries no other route: 404) */
    char *body;                 /* malloc'd; the server frees it */
    size_t body_len;
    char content_type[64];      /* default application/json */
    char headers[8][2][256];    /* extra headers: name, value */
    int header_count;
    /* Streaming (Server-Sent Events): when stream is set, body is ignored and the server calls
     * stream(stream_arg, buf, max) until it returns -1 (end); 0 means "nothing yet" (it is called
     * again shortly: the connection is parked, costing no thread, and polled every ~50 ms).
     * stream_free(stream_arg) is called once when the client goes away or the server stops. */
    ssize_t (*stream)(void *arg, char *buf, size_t max);
    void (*stream_free)(void *arg);
    void *stream_arg;
} http_response_t;

typedef void (http_handler_fn)(void *arg, const http_request_t *req, http_response_t *res);

/* Binds and listens on listen ("127.0.0.1:8000") for threads worker threads, but accepts nothing yet:
 * add the routes, then call http_server_start. Connections that arrive in between wait in the
 * kernel's backlog, so no request ever meets a server whose routes are half added.
 * NULL with a reason in err (bad address, address in use). */
http_server_t *http_server_new(const char *listen, size_t max_body, int threads, char *err, size_t errlen);
/* Starts answering. 0, or -1 with a reason in err. Calling it again does nothing. */
int http_server_start(http_server_t *self, char *err, size_t errlen);
/* A server driven by its caller, for tests and fuzzing: no listening socket and no thread serving
 * connections. Routes, limits and http_server_start as usual; then each connected socket handed
 * to http_server_add_connection (taken: closed by the server, also on failure; peer is the
 * client's address as accept(2) would give it) is served by calls to http_server_step, which does
 * what is ready on the caller's thread and never waits. Not for streams or answers given later
 * (their wake-ups come from other threads). */
#include <sys/socket.h>
http_server_t *http_server_new_driven(size_t max_body, char *err, size_t errlen);
int http_server_add_connection(http_server_t *self, int fd, const struct sockaddr *peer, socklen_t peer_len);
void http_server_step(http_server_t *self);
/* The port actually bound (useful with port 0). */
int http_server_port(const http_server_t *self);
void http_server_destroy(http_server_t **self_p);

/* Adds a route. method "GET", "POST", ...; path is exact ("/cobo/webhook") or, ending in '*',
 * a prefix (e.g. "/api/wallets/" followed by a star). First match wins, in the order added. Add routes before traffic. */
void http_route(http_server_t *self, const char *method, const char *path, http_handler_fn *fn, void *arg);
/* Serves files under dir for GET requests that match no route ("/" → index.html). A symlink anywhere
 * on the path (a folder or the file) is refused (404): nothing outside dir is ever served. */
void http_static(http_server_t *self, const char *dir);

/* Request accessors. Returned strings live as long as the request. */
const char *http_method(const http_request_t *req);
const char *http_path(const http_request_t *req);
const char *http_body(const http_request_t *req, size_t *len);   /* raw bytes exactly as received */
const char *http_header(const http_request_t *req, const char *name); /* case-insensitive; NULL if absent */
const char *http_query(const http_request_t *req, const char *name);
const char *http_cookie(const http_request_t *req, const char *name);
/* The client: the connection's peer, or, when the peer is a trusted proxy (http_trust_proxies),
 * the client its X-Forwarded-For / X-Real-IP name (rightmost untrusted hop, schema/netaddr.h). */
const char *http_client_ip(const http_request_t *req);
const netaddr_t *http_client_addr(const http_request_t *req);
/* 16 hex characters naming this request in the log; an investor can quote it. */
const char *http_request_id(const http_request_t *req);

/* Connection limits (web/connguard.h), before start; 0 keeps a default: the whole head of a request
 * within header_timeout_ms (5000) of the connection or the previous answer, at most max_connections
 * (2048; RLIMIT_NOFILE is raised to fit at start, or the limit lowered and logged) and
 * max_per_client per client address (64; IPv6 per /64; trusted proxies exempt). */
void http_limits(http_server_t *self, int header_timeout_ms, int max_connections, int max_per_client);
/* The proxies whose forwarding headers are believed (KASA_TRUSTED_PROXIES); also exempt from the
 * per-client connection limit. Before start. */
void http_trust_proxies(http_server_t *self, const netlist_t *trusted);

/* A request's head judged without a connection: what the server decides from the head alone,
 * before any body is read, as pure functions over its routes, static folder and trusted proxies.
 * The server runs exactly these on every request (tests/fuzz/fuzz_http.c feeds them directly). */
typedef struct {
    int route;            /* the route that answers, -1 for none */
    int early;            /* an answer known now: 400 (a control byte or an encoded '/', '\' or NUL
                           * in the path), 404, 405, 200 (a static file); 0: the route answers */
    int too_large;        /* Content-Length over max_body: 1, 413 once the body has been read and
                           * discarded; 2, over what is worth reading: 413 at once */
    char allow[128];      /* 405: the methods the path has */
} http_head_t;

/* Decodes %XX in s in place (libmicrohttpd's unescape step, for the path and for query names and
 * values). In a path (s starts with '/') an encoded '/', '\' or NUL becomes a control byte the
 * path checks refuse; elsewhere '+' is a space and an encoded NUL a control byte. The new length. */
size_t http_unescape(char *s);
/* The server's decision for method and path (already unescaped) with that Content-Length header
 * (NULL if absent). */
void http_head_judge(http_server_t *self, const char *method, const char *path, const char *content_length,
                     http_head_t *out);
/* Adds a header to the X-Forwarded-For chain being collected (chain: the values so far joined by
 * commas) if it is one; the chain is then resolved by netaddr_client with the server's trusted list. */
void http_head_forwarded(jbuf_t *chain, const char *name, const char *value);
/* The client of a request from peer: peer, or when peer is a trusted proxy, the client its
 * forwarding headers name (xff: every X-Forwarded-For joined by commas, or NULL; x_real_ip or NULL). */
void http_head_client(const http_server_t *self, const netaddr_t *peer, const char *xff, const char *x_real_ip,
                      netaddr_t *client);
/* Opens the static file for path (a GET the head judged 200): the descriptor of a regular file
 * inside the static folder, reached without following any symlink, with its size and content type;
 * or -1 with *status 400 (a path that may not be joined to the folder) or 404. */
int http_static_open(const http_server_t *self, const char *path, uint64_t *size, const char **content_type,
                     int *status);

/* Response helpers. */
void http_reply(http_response_t *res, int status, const char *content_type, const char *body, size_t len);
void http_reply_json(http_response_t *res, int status, char *json_taken);   /* takes ownership */
/* {"error": reason} with status. */
void http_reply_error(http_response_t *res, int status, const char *reason);
void http_add_header(http_response_t *res, const char *name, const char *value);

/* Answering later. A handler whose answer needs slow work done elsewhere (an MT5 call on an actor)
 * calls http_later(): the connection is suspended at once (it holds no server thread, and no
 * timeout runs), the handler hands the returned handle to whoever does the work and returns (res
 * is then ignored). Whoever finishes calls http_later_reply() exactly once, from any thread; the
 * answer is sent by the server's own thread. A client that went away meanwhile is noticed when the
 * answer is sent. If the server stops first it answers 503 itself, and a reply that comes
 * afterwards is only freed (the handle outlives the server). NULL without memory (the handler
 * then answers res itself, as usual). */
typedef struct http_later_t http_later_t;
http_later_t *http_later(const http_request_t *req, http_response_t *res);
/* Sends res (status, headers, body; the body is taken; a stream is refused as 500) as the answer of
 * later, and gives the handle up. Thread-safe; never blocks on the network. */
void http_later_reply(http_later_t *later, http_response_t *res);
/* Wakes later without an answer yet: the answer is made on the server's own thread, where
 * fill(arg, req, res) is called when the connection resumes and fills res as a handler would (for
 * work that may block, or must not run on the waker's thread). Thread-safe; never blocks; gives the
 * handle up. 0, or -1 when the request was answered already (the server stopping answered 503):
 * fill is then never called and arg stays the caller's. If the connection closes before its answer
 * is made (the server stopping), fill(arg, NULL, NULL) is called instead, to let go of arg. */
typedef void (http_fill_fn)(void *arg, const http_request_t *req, http_response_t *res);
int http_later_wake(http_later_t *later, http_fill_fn *fill, void *arg);

#endif
