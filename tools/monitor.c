/* monitor.c — see monitor.h. */
#include "tools/monitor.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "schema/record.h"

struct monitor_t {
    zsock_t *pub;
    void *handle;          /* the libzmq socket, for non-blocking sends */
    uint64_t sent, dropped;
    pthread_mutex_t mu;    /* the socket is used by the commit path and by monitor_note's callers */
    char endpoint[300];
};

monitor_t *monitor_new(const char *endpoint, char *err, size_t errlen)
{
    monitor_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pub = zsock_new(ZMQ_PUB);
    if (!self->pub) {
        snprintf(err, errlen, "cannot create the monitor socket");
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    zsock_set_sndhwm(self->pub, MONITOR_SNDHWM);
    zsock_set_linger(self->pub, 0);
    if (zsock_bind(self->pub, "%s", endpoint) < 0) {
        snprintf(err, errlen, "cannot bind the monitor feed on %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&self->pub);
        free(self);
        return NULL;
    }
    self->handle = zsock_resolve(self->pub);
    char *last = zsock_last_endpoint(self->pub);
    snprintf(self->endpoint, sizeof self->endpoint, "%s", last ? last : endpoint);
    free(last);
    return self;
}

void monitor_destroy(monitor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    monitor_t *self = *self_p;
    *self_p = NULL;
    zsock_destroy(&self->pub);
    pthread_mutex_destroy(&self->mu);
    free(self);
}

/* Sends [topic][payload][lsn] without waiting; counts it as sent or dropped. */
static void s_send(monitor_t *self, const char *topic, const void *payload, size_t len, uint64_t lsn)
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t) (lsn >> (56 - 8 * i));
    pthread_mutex_lock(&self->mu);
    /* PUB drops a whole multipart message at the high-water mark, never a part of one */
    int ok = zmq_send(self->handle, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
          && zmq_send(self->handle, payload, len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
          && zmq_send(self->handle, be, sizeof be, ZMQ_DONTWAIT) >= 0;
    if (ok)
        self->sent++;
    else
        self->dropped++;
    pthread_mutex_unlock(&self->mu);
}

void monitor_note(monitor_t *self, const char *topic, const char *text, uint64_t lsn)
{
    if (self)
        s_send(self, topic, text, strlen(text), lsn);
}

void monitor_publish(monitor_t *self, uint64_t lsn, const void *payload, size_t len)
{
    if (!self)
        return;
    record_t rec;   /* on the commit thread's stack: no allocation per record */
    char err[96];
    int ok = record_decode(payload, len, &rec, err, sizeof err) == 0;
    monitor_publish_record(self, lsn, payload, len, ok ? &rec : NULL);
}

void monitor_publish_record(monitor_t *self, uint64_t lsn, const void *payload, size_t len, const record_t *r)
{
    if (!self)
        return;
    const char *topic = r ? record_topic(r) : "?";
    char err[96];
    uint8_t *redacted = NULL;
    /* an account's password hash and TOTP secret never leave the journal */
    if (r && r->kind == RECORD_ADMIN_ACCOUNT) {
        record_t *copy = malloc(sizeof *copy);
        int bad = !copy;
        if (copy) {
            *copy = *r;
            record_redact(copy);
            bad = record_encode(copy, &redacted, &len, err, sizeof err) != 0;
            free(copy);
        }
        if (bad) {
            self->dropped++;
            return;
        }
        payload = redacted;
    }
    s_send(self, topic, payload, len, lsn);
    free(redacted);
}

const char *monitor_endpoint(const monitor_t *self) { return self ? self->endpoint : ""; }

uint64_t monitor_sent(monitor_t *self) { return self ? self->sent : 0; }
uint64_t monitor_dropped(monitor_t *self) { return self ? self->dropped : 0; }

int monitor_message_parse(zmsg_t *msg, const void **payload, size_t *len, uint64_t *lsn)
{
    if (!msg || zmsg_size(msg) < 2)
        return -1;
    zframe_t *f = zmsg_first(msg);      /* topic */
    f = zmsg_next(msg);                 /* payload */
    *payload = zframe_data(f);
    *len = zframe_size(f);
    *lsn = 0;
    zframe_t *l = zmsg_next(msg);
    if (l && zframe_size(l) == 8) {
        const uint8_t *b = zframe_data(l);
        for (int i = 0; i < 8; i++)
            *lsn = (*lsn << 8) | b[i];
    }
    return 0;
}
