/* monitor.h — the live monitor feed: every committed journal record published on a ZeroMQ PUB
 * socket, for `kasa monitor` and any other watcher.
 *
 * Message: three frames — [topic][payload][lsn]. topic is record_topic() of the decoded record
 * ("LOCKED", "ADDRESS_LINK", ...) so a subscriber can filter by prefix; payload is the msgpack
 * record exactly as journaled; lsn is 8 bytes, big-endian.
 *
 * The feed is lossy by design: a send never blocks (ZMQ_DONTWAIT, bounded SNDHWM); a slow or absent
 * watcher loses messages, the journal never does. monitor_publish is meant to run on the journal's
 * commit path (journal_on_commit: after the records' appenders were woken, so its decoding does not
 * delay their answers), whose calls are serialised: the PUB socket is only ever used by
 * one thread at a time, and the journal's lock between calls is the memory barrier ZeroMQ requires
 * when a socket moves between threads. Do not call monitor_publish from two threads at once.
 * monitor_note (status messages from other threads) and monitor_publish share one mutex. */
#ifndef KASA_TOOLS_MONITOR_H
#define KASA_TOOLS_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "schema/record.h"

#define MONITOR_SNDHWM 10000   /* messages queued per watcher before the feed drops */

typedef struct monitor_t monitor_t;

/* Binds a PUB socket on endpoint (tcp://127.0.0.1:5560, ipc://...). NULL with a reason in err. */
monitor_t *monitor_new(const char *endpoint, char *err, size_t errlen);
/* The endpoint actually bound (tcp://127.0.0.1:* binds an ephemeral port; this names it). */
const char *monitor_endpoint(const monitor_t *self);
/* Closes the socket (no linger) and frees; nulls *self_p; safe on NULL and twice. */
void monitor_destroy(monitor_t **self_p);

/* Publishes one committed record. Never blocks, never fails loudly (an undecodable payload is
 * published under topic "?"; a full queue drops the message and counts it). */
void monitor_publish(monitor_t *self, uint64_t lsn, const void *payload, size_t len);
/* The same for a record the caller decoded already (r: payload decoded, NULL if it did not decode),
 * so the commit path decodes each record once for every consumer. */
void monitor_publish_record(monitor_t *self, uint64_t lsn, const void *payload, size_t len, const record_t *r);

/* Publishes a status message that is not a record: [topic][text][lsn], e.g. the MongoDB projector's
 * lag under topic MONITOR_MONGO_TOPIC with a JSON object. Never blocks; safe from any thread (the
 * socket is guarded by a mutex that monitor_publish takes too). */
#define MONITOR_MONGO_TOPIC "MONGO"
void monitor_note(monitor_t *self, const char *topic, const char *text, uint64_t lsn);

/* Messages handed to the socket, and sends that failed. A PUB socket drops silently at its
 * high-water mark (libzmq reports no error), so drops at the HWM show only as gaps in the LSNs a
 * watcher sees, not in monitor_dropped. */
uint64_t monitor_sent(monitor_t *self);
uint64_t monitor_dropped(monitor_t *self);

/* Subscriber side: splits a received message. Returns 0 and fills lsn (0 when the frame is absent),
 * or -1 if the message is not a monitor message. */
#include <czmq.h>
int monitor_message_parse(zmsg_t *msg, const void **payload, size_t *len, uint64_t *lsn);

#endif
