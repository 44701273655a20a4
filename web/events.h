/* events.h — live updates for the investor and admin panels: journal commits fanned out as
 * Server-Sent Events.
 *
 * events_publish() is called on the journal's commit path (journal_on_commit: events_on_commit is
 * a ready-made callback). It must be quick and never block: it decodes the record once, and for a
 * deposit record copies one small SSE message into the bounded queue of each subscriber of that
 * record's MT5 login. A subscriber whose queue is full (a slow reader) loses its queue and gets a
 * single "resync" event instead: the panel then reloads everything, so nothing is silently missed.
 *
 * Messages (text/event-stream):
 *   id: <lsn>\nevent: deposit\ndata: {"id":tx,"state":"CREDITED","status":..,"confirmations":n,
 *         "threshold":m,"token":..,"amount":..,"credited":"250.00"|null,"ticket":n|null}\n\n
 *   event: resync\ndata: {}\n\n         (the queue overflowed: reload)
 *   : hb\n\n                            (a comment every heartbeat, ~15 s, to keep proxies open)
 * A staff stream (events_subscribe_all: the admin panel) gets every record that changes what the
 * panel shows, each with its LSN as the SSE id, so a browser reconnects with Last-Event-ID:
 *   event: deposit  data: {"lsn","id":tx,"from":state,"state":state,"login":n,"time":ms}
 *   event: admin    data: {"lsn","id":tx or "","kind":"ADMIN_ACTION"|"ADMIN_ACCOUNT","actor","action","login","time"}
 *   event: link     data: {"lsn","address","login","time"}
 *   event: resync   (its queue overflowed, or records were published after the Last-Event-ID it
 *                    came back with: reload)
 * Thread-safe. */
#ifndef KASA_WEB_EVENTS_H
#define KASA_WEB_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "schema/record.h"
#include "web/http.h"

typedef struct events_t events_t;
typedef struct events_sub_t events_sub_t;

#define EVENTS_MAX_SUBSCRIBERS 1024  /* in all */
#define EVENTS_MAX_PER_LOGIN   8     /* open streams of one login (more tabs: the oldest is ended) */
#define EVENTS_QUEUE_BYTES     (64 * 1024)

/* heartbeat_ms 0 means 15000. NULL only without memory. */
events_t *events_new(int heartbeat_ms);
/* Ends every stream and frees. Call after the HTTP server stopped. Nulls *self_p; safe twice. */
void events_destroy(events_t **self_p);

/* Publishes one committed journal record (msgpack, schema/record.h). Never blocks on a subscriber,
 * never fails loudly: an undecodable payload is skipped. */
void events_publish(events_t *self, uint64_t lsn, const void *payload, size_t len);
/* The same for a record the caller decoded already (the commit path decodes once for everyone). */
void events_publish_record(events_t *self, uint64_t lsn, const record_t *r);
/* A journal_commit_fn: arg is the events_t. */
void events_on_commit(void *arg, uint64_t lsn, const void *payload, size_t len);

/* Also hands every decoded record to fn (on the commit path: fn must be quick and not block).
 * Up to 4 listeners; returns 0, or -1 when full. Add listeners before traffic. */
typedef void (events_record_fn)(void *arg, uint64_t lsn, const record_t *r);
int events_listen(events_t *self, events_record_fn *fn, void *arg);

/* A deposit record that carries no login is matched through this (e.g. address -> login). Optional;
 * it is called on the commit path, so it must be quick and never wait for the journal. */
void events_set_resolver(events_t *self, uint64_t (*login_of)(void *arg, const char *address), void *arg);

/* A subscription to login's events. NULL when EVENTS_MAX_SUBSCRIBERS are open. */
events_sub_t *events_subscribe(events_t *self, uint64_t login);
/* A staff subscription: every deposit, admin and link record. key names the staff member (at most
 * EVENTS_MAX_PER_LOGIN streams per key); since_lsn (0: none) is the last record the client saw
 * (Last-Event-ID): the stream starts with a resync when anything was published after it. NULL
 * when EVENTS_MAX_SUBSCRIBERS are open. */
events_sub_t *events_subscribe_all(events_t *self, uint64_t key, uint64_t since_lsn);
/* Writes the next SSE text (whole messages only) into buf: > 0 bytes, 0 nothing yet, -1 ended
 * (the hub is closing, or alive() said no). */
ssize_t events_sub_read(events_sub_t *sub, char *buf, size_t max);
/* Optional: alive(arg) is asked at least every 250 ms while the stream is read; 0 ends it. arg_free(arg) runs at unsubscribe. */
void events_sub_set_alive(events_sub_t *sub, int (*alive)(void *arg), void *arg, void (*arg_free)(void *arg));
void events_unsubscribe(events_sub_t **sub_p);

/* Turns res into an SSE stream of login's events (content type, no-cache headers, stream
 * callbacks). alive/arg/arg_free as in events_sub_set_alive (may be NULL). 0, or -1 when full
 * (res is then a 503 error and arg_free(arg) has run). */
int events_stream(events_t *self, uint64_t login, http_response_t *res,
                  int (*alive)(void *arg), void *arg, void (*arg_free)(void *arg));

/* events_stream for a staff subscription (events_subscribe_all). */
int events_stream_all(events_t *self, uint64_t key, uint64_t since_lsn, http_response_t *res,
                      int (*alive)(void *arg), void *arg, void (*arg_free)(void *arg));

/* Subscribers now open. */
int events_subscriber_count(events_t *self);

#endif
