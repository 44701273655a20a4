/* connguard.h — what a connection may cost the HTTP server before it has said anything useful.
 *
 * Two rules against slow and numerous connections (slowloris):
 *   - A head deadline: the whole head of a request (request line and headers) must arrive within
 *     header_timeout_ms of the connection opening, or of the previous answer on a keep-alive
 *     connection. libmicrohttpd's own timeout restarts on every byte, so a client trickling one
 *     header line every few seconds would hold its connection for ever; here the clock does not
 *     restart. A late connection is shut down (shutdown(2): the server sees the end and closes it
 *     itself). While a request is being handled, or its answer streamed, no deadline applies.
 *   - At most max_per_client connections per client (an IPv4 address, an IPv6 /64); peers in the
 *     trusted list (reverse proxies, which carry many clients) are exempt.
 * And one helper for the process: raise RLIMIT_NOFILE to what the connection limit needs, or lower
 * the limit to what the hard file limit allows.
 *
 * A reaper thread checks the deadlines a few times per deadline. Thread-safe: open/close and the
 * head/idle marks may come from any thread. */
#ifndef KASA_WEB_CONNGUARD_H
#define KASA_WEB_CONNGUARD_H

#include <stdint.h>
#include <sys/socket.h>

#include "schema/netaddr.h"

typedef struct connguard_t connguard_t;
typedef struct connguard_conn_t connguard_conn_t;

typedef struct {
    int header_timeout_ms;       /* default 5000 */
    int max_per_client;          /* default 64 */
    netlist_t trusted;           /* exempt from max_per_client */
} connguard_opts_t;

/* opts may be NULL (defaults). Starts the reaper. NULL without memory or a thread. */
connguard_t *connguard_new(const connguard_opts_t *opts);
/* Stops the reaper and frees; every connection must have been closed. Nulls *self_p; safe twice. */
void connguard_destroy(connguard_t **self_p);

/* A connection from peer on socket fd has opened: its head deadline starts. NULL when its client
 * is already at max_per_client (nothing counted; the caller closes the connection), or without
 * memory (then the connection is allowed, unguarded). *refused is set to 1 in the first case. */
connguard_conn_t *connguard_open(connguard_t *self, const struct sockaddr *peer, int fd, int *refused);
/* The head of a request has arrived: no deadline until connguard_idle. c may be NULL. */
void connguard_head_done(connguard_t *self, connguard_conn_t *c);
/* The answer is done; the connection waits for the next head: a new deadline starts. c may be NULL. */
void connguard_idle(connguard_t *self, connguard_conn_t *c);
/* The connection has closed (before its socket is): forgets it. Nulls *c_p; c may be NULL. */
void connguard_close(connguard_t *self, connguard_conn_t **c_p);

/* Counters: connections open now, cut for a late head, refused over the per-client limit. */
int connguard_open_count(connguard_t *self);
uint64_t connguard_cut_count(connguard_t *self);
uint64_t connguard_refused_count(connguard_t *self);

/* Makes RLIMIT_NOFILE fit max_connections plus reserve_fds (journal, clients, sockets): raises the
 * soft limit as far as the hard limit allows. Returns the connection limit that fits: max_connections,
 * or less (at least 16) when the hard limit is lower — logged as a warning. */
int connguard_fit_nofile(int max_connections, int reserve_fds);

#endif
