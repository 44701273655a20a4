/* events.c — Server-Sent Events fan-out of journal commits (see events.h).
 *
 * One mutex guards the subscriber table and every queue. The commit path holds it only to append
 * a few hundred bytes to the matching queues; a reader holds it only to copy bytes out. A queue is
 * a byte buffer of whole SSE messages bounded by EVENTS_QUEUE_BYTES: a message that does not fit
 * empties it and leaves a "resync" mark instead, so a slow reader costs the commit path nothing. */
#include "web/events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/json.h"
#include "schema/money.h"

#define S_MAX_LISTENERS 4
#define S_RESYNC "event: resync\ndata: {}\n\n"
#define S_HELLO "retry: 5000\n: kasa\n\n"
#define S_ALIVE_MS 250   /* how often a stream asks whether its session still lives: logout ends it within this */

struct events_sub_t {
    events_t *hub;            /* NULL once the hub is gone */
    uint64_t login;           /* whose records (an investor's stream), or the staff member's key (all) */
    int all;                  /* a staff stream: every deposit, admin and link record */
    char *q;                  /* EVENTS_QUEUE_BYTES of pending SSE text */
    size_t q_len;
    int resync;               /* the queue overflowed: send S_RESYNC next */
    int closed;               /* end the stream */
    int hello_sent;
    int64_t last_write_ms;
    int64_t last_alive_ms;
    int64_t opened_ms;
    int (*alive)(void *arg);
    void *alive_arg;
    void (*alive_free)(void *arg);
};

struct events_t {
    pthread_mutex_t mu;
    int heartbeat_ms;
    events_sub_t *subs[EVENTS_MAX_SUBSCRIBERS];
    int sub_count;
    struct { events_record_fn *fn; void *arg; } listeners[S_MAX_LISTENERS];
    int listener_count;
    uint64_t (*login_of)(void *arg, const char *address);
    void *login_of_arg;
    uint64_t last_lsn;        /* the newest record published */
};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

events_t *events_new(int heartbeat_ms)
{
    events_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 15000;
    pthread_mutex_init(&self->mu, NULL);
    return self;
}

void events_destroy(events_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    events_t *self = *self_p;
    pthread_mutex_lock(&self->mu);
    for (int i = 0; i < self->sub_count; i++) {
        self->subs[i]->hub = NULL;     /* a late unsubscribe frees the sub alone */
        self->subs[i]->closed = 1;
    }
    self->sub_count = 0;
    pthread_mutex_unlock(&self->mu);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

int events_listen(events_t *self, events_record_fn *fn, void *arg)
{
    if (self->listener_count >= S_MAX_LISTENERS)
        return -1;
    self->listeners[self->listener_count].fn = fn;
    self->listeners[self->listener_count].arg = arg;
    self->listener_count++;
    return 0;
}

void events_set_resolver(events_t *self, uint64_t (*login_of)(void *arg, const char *address), void *arg)
{
    self->login_of = login_of;
    self->login_of_arg = arg;
}

/* An SSE message's start: its id (the LSN), its event name and the opening of its data object. */
static void s_head(jbuf_t *b, uint64_t lsn, const char *event)
{
    jbuf_printf(b, "id: %llu\nevent: %s\ndata: {\"lsn\":%llu", (unsigned long long) lsn, event, (unsigned long long) lsn);
}

/* A withdrawal's transition as an SSE "withdrawal" event: id, state, token, token_amount, tx_hash. */
static void s_format_withdrawal(const record_t *r, uint64_t lsn, jbuf_t *b)
{
    s_head(b, lsn, "withdrawal");
    jbuf_puts(b, ",\"id\":");
    jbuf_str(b, r->tx_id);
    jbuf_puts(b, ",\"state\":");
    jbuf_str(b, withdrawal_state_name(r->wto));
    jbuf_puts(b, ",\"token\":");
    jbuf_str(b, r->token_id);
    jbuf_puts(b, ",\"token_amount\":");
    jbuf_str(b, r->amount);
    jbuf_puts(b, ",\"tx_hash\":");
    jbuf_str(b, r->tx_hash);
    jbuf_puts(b, "}\n\n");
}

/* The SSE message for a deposit record (or a withdrawal's). */
static void s_format(const record_t *r, uint64_t lsn, jbuf_t *b)
{
    if (r->kind == RECORD_WITHDRAWAL) {
        s_format_withdrawal(r, lsn, b);
        return;
    }
    s_head(b, lsn, "deposit");
    jbuf_puts(b, ",\"id\":");
    jbuf_str(b, r->tx_id);
    jbuf_puts(b, ",\"state\":");
    jbuf_str(b, deposit_state_name(r->to));
    jbuf_puts(b, ",\"status\":");
    jbuf_str(b, r->status);
    jbuf_printf(b, ",\"confirmations\":%d,\"threshold\":%d,\"token\":", (int) r->confirmations,
                (int) r->threshold);
    jbuf_str(b, r->token_id);
    jbuf_puts(b, ",\"amount\":");
    jbuf_str(b, r->amount);
    char credited[64];
    if ((r->to == DEPOSIT_CREDITED || r->to == DEPOSIT_NOTIFIED) && r->credit_minor > 0 &&
        money_format_minor(r->credit_minor, r->digits, credited, sizeof credited) == 0) {
        jbuf_puts(b, ",\"credited\":");
        jbuf_str(b, credited);
    } else {
        jbuf_puts(b, ",\"credited\":null");
    }
    if (r->ticket)
        jbuf_printf(b, ",\"ticket\":%llu", (unsigned long long) r->ticket);
    else
        jbuf_puts(b, ",\"ticket\":null");
    jbuf_printf(b, ",\"time\":%lld}\n\n", (long long) r->time_ms);
}

/* The SSE message of a record for a staff stream (every deposit, withdrawal, admin and link record), or nothing. */
static int s_format_all(const record_t *r, uint64_t lsn, uint64_t login, jbuf_t *b)
{
    if (r->kind == RECORD_DEPOSIT) {
        s_head(b, lsn, "deposit");
        jbuf_puts(b, ",\"id\":");
        jbuf_str(b, r->tx_id);
        jbuf_puts(b, ",\"from\":");
        jbuf_str(b, deposit_state_name(r->from));
        jbuf_puts(b, ",\"state\":");
        jbuf_str(b, deposit_state_name(r->to));
    } else if (r->kind == RECORD_ADMIN_ACTION || r->kind == RECORD_ADMIN_ACCOUNT) {
        s_head(b, lsn, "admin");
        jbuf_puts(b, ",\"id\":");
        jbuf_str(b, r->tx_id);
        jbuf_puts(b, ",\"kind\":");
        jbuf_str(b, record_kind_name(r->kind));
        jbuf_puts(b, ",\"actor\":");
        jbuf_str(b, r->actor);
        jbuf_puts(b, ",\"action\":");
        jbuf_str(b, r->action);
    } else if (r->kind == RECORD_WITHDRAWAL) {
        s_head(b, lsn, "withdrawal");
        jbuf_puts(b, ",\"id\":");
        jbuf_str(b, r->tx_id);
        jbuf_puts(b, ",\"from\":");
        jbuf_str(b, withdrawal_state_name(r->wfrom));
        jbuf_puts(b, ",\"state\":");
        jbuf_str(b, withdrawal_state_name(r->wto));
    } else if (r->kind == RECORD_ADDRESS_LINK) {
        s_head(b, lsn, "link");
        jbuf_puts(b, ",\"address\":");
        jbuf_str(b, r->address);
    } else {
        return -1;
    }
    jbuf_printf(b, ",\"login\":%llu,\"time\":%lld}\n\n", (unsigned long long) login, (long long) r->time_ms);
    return 0;
}

/* Appends msg to sub's queue, or marks it for a resync. Under the lock. */
static void s_enqueue(events_sub_t *sub, const char *msg, size_t len)
{
    if (sub->closed)
        return;
    if (sub->resync || sub->q_len + len > EVENTS_QUEUE_BYTES) {
        sub->q_len = 0;
        sub->resync = 1;
        return;
    }
    memcpy(sub->q + sub->q_len, msg, len);
    sub->q_len += len;
}

void events_publish(events_t *self, uint64_t lsn, const void *payload, size_t len)
{
    record_t r;
    char err[128];
    if (!self || record_decode(payload, len, &r, err, sizeof err) != 0)
        return;
    events_publish_record(self, lsn, &r);
}

void events_publish_record(events_t *self, uint64_t lsn, const record_t *r)
{
    if (!self || !r)
        return;
    for (int i = 0; i < self->listener_count; i++)
        self->listeners[i].fn(self->listeners[i].arg, lsn, r);
    uint64_t login = r->login;
    if (r->kind == RECORD_DEPOSIT && !login && self->login_of && r->address[0])
        login = self->login_of(self->login_of_arg, r->address);
    jbuf_t one, all;   /* the investor's message and the staff's, each written once if someone wants it */
    jbuf_init(&one);
    jbuf_init(&all);
    int have_one = 0, have_all = 0;
    pthread_mutex_lock(&self->mu);
    if (lsn > self->last_lsn)
        self->last_lsn = lsn;
    for (int i = 0; i < self->sub_count; i++) {
        events_sub_t *sub = self->subs[i];
        if (sub->all) {
            if (!have_all)
                have_all = s_format_all(r, lsn, login, &all) == 0 ? 1 : -1;
            if (have_all > 0)
                s_enqueue(sub, all.data, all.len);
        } else if ((r->kind == RECORD_DEPOSIT || r->kind == RECORD_WITHDRAWAL) && login && sub->login == login) {
            if (!have_one) {
                s_format(r, lsn, &one);
                have_one = 1;
            }
            s_enqueue(sub, one.data, one.len);
        }
    }
    pthread_mutex_unlock(&self->mu);
    jbuf_free(&one);
    jbuf_free(&all);
}

void events_on_commit(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    events_publish((events_t *) arg, lsn, payload, len);
}

/* A new subscription; all: a staff stream; since_lsn (all only, 0: none): the last record the
 * client saw, and a resync first if anything came after it. */
static events_sub_t *s_subscribe(events_t *self, uint64_t login, int all, uint64_t since_lsn)
{
    events_sub_t *sub = calloc(1, sizeof *sub);
    if (!sub)
        return NULL;
    sub->q = malloc(EVENTS_QUEUE_BYTES);
    if (!sub->q) {
        free(sub);
        return NULL;
    }
    sub->hub = self;
    sub->login = login;
    sub->all = all;
    sub->opened_ms = sub->last_write_ms = s_mono_ms();
    pthread_mutex_lock(&self->mu);
    if (self->sub_count >= EVENTS_MAX_SUBSCRIBERS) {
        pthread_mutex_unlock(&self->mu);
        free(sub->q);
        free(sub);
        return NULL;
    }
    sub->resync = since_lsn && since_lsn < self->last_lsn;
    /* At most EVENTS_MAX_PER_LOGIN streams per login (per staff key): the oldest open one is ended. */
    int same = 0;
    events_sub_t *oldest = NULL;
    for (int i = 0; i < self->sub_count; i++) {
        events_sub_t *s = self->subs[i];
        if (s->login != login || s->all != all || s->closed)
            continue;
        same++;
        if (!oldest || s->opened_ms < oldest->opened_ms)
            oldest = s;
    }
    if (same >= EVENTS_MAX_PER_LOGIN && oldest)
        oldest->closed = 1;
    self->subs[self->sub_count++] = sub;
    pthread_mutex_unlock(&self->mu);
    return sub;
}

events_sub_t *events_subscribe(events_t *self, uint64_t login)
{
    return s_subscribe(self, login, 0, 0);
}

events_sub_t *events_subscribe_all(events_t *self, uint64_t key, uint64_t since_lsn)
{
    return s_subscribe(self, key, 1, since_lsn);
}

void events_sub_set_alive(events_sub_t *sub, int (*alive)(void *arg), void *arg, void (*arg_free)(void *arg))
{
    sub->alive = alive;
    sub->alive_arg = arg;
    sub->alive_free = arg_free;
}

ssize_t events_sub_read(events_sub_t *sub, char *buf, size_t max)
{
    events_t *hub = sub->hub;
    if (!hub || max < 64)
        return hub ? 0 : -1;
    int64_t now = s_mono_ms();
    ssize_t n = 0;
    pthread_mutex_lock(&hub->mu);
    /* asked every S_ALIVE_MS whatever flows, so neither silence nor a steady stream of events
     * keeps a logged-out session's stream open */
    int check_alive = sub->alive && now - sub->last_alive_ms >= S_ALIVE_MS;
    if (check_alive)
        sub->last_alive_ms = now;
    if (sub->closed) {
        n = -1;
    } else if (!sub->hello_sent) {
        n = (ssize_t) strlen(S_HELLO);
        memcpy(buf, S_HELLO, (size_t) n);
        sub->hello_sent = 1;
    } else if (sub->resync) {
        n = (ssize_t) strlen(S_RESYNC);
        memcpy(buf, S_RESYNC, (size_t) n);
        sub->resync = 0;
    } else if (sub->q_len) {
        size_t take = sub->q_len < max ? sub->q_len : max;
        memcpy(buf, sub->q, take);
        memmove(sub->q, sub->q + take, sub->q_len - take);
        sub->q_len -= take;
        n = (ssize_t) take;
    } else if (now - sub->last_write_ms >= hub->heartbeat_ms) {
        n = (ssize_t) strlen(": hb\n\n");
        memcpy(buf, ": hb\n\n", (size_t) n);
        check_alive = sub->alive != NULL;
    }
    if (n > 0)
        sub->last_write_ms = now;
    pthread_mutex_unlock(&hub->mu);
    if (check_alive && sub->alive && !sub->alive(sub->alive_arg)) {
        pthread_mutex_lock(&hub->mu);
        sub->closed = 1;
        pthread_mutex_unlock(&hub->mu);
        return -1;
    }
    return n;
}

void events_unsubscribe(events_sub_t **sub_p)
{
    if (!sub_p || !*sub_p)
        return;
    events_sub_t *sub = *sub_p;
    events_t *hub = sub->hub;
    if (hub) {
        pthread_mutex_lock(&hub->mu);
        for (int i = 0; i < hub->sub_count; i++) {
            if (hub->subs[i] == sub) {
                hub->subs[i] = hub->subs[--hub->sub_count];
                break;
            }
        }
        pthread_mutex_unlock(&hub->mu);
    }
    if (sub->alive_free)
        sub->alive_free(sub->alive_arg);
    free(sub->q);
    free(sub);
    *sub_p = NULL;
}

static ssize_t s_stream(void *arg, char *buf, size_t max)
{
    return events_sub_read((events_sub_t *) arg, buf, max);
}

static void s_stream_free(void *arg)
{
    events_sub_t *sub = arg;
    events_unsubscribe(&sub);
}

/* Turns res into the stream of sub (NULL: the table is full: 503). */
static int s_stream_reply(events_sub_t *sub, http_response_t *res, int (*alive)(void *arg), void *arg,
                          void (*arg_free)(void *arg))
{
    if (!sub) {
        if (arg_free)
            arg_free(arg);
        http_reply_error(res, 503, "too many open event streams");
        return -1;
    }
    events_sub_set_alive(sub, alive, arg, arg_free);
    res->status = 200;
    snprintf(res->content_type, sizeof res->content_type, "text/event-stream");
    http_add_header(res, "Cache-Control", "no-store");
    http_add_header(res, "X-Accel-Buffering", "no");
    res->stream = s_stream;
    res->stream_free = s_stream_free;
    res->stream_arg = sub;
    return 0;
}

int events_stream(events_t *self, uint64_t login, http_response_t *res,
                  int (*alive)(void *arg), void *arg, void (*arg_free)(void *arg))
{
    return s_stream_reply(events_subscribe(self, login), res, alive, arg, arg_free);
}

int events_stream_all(events_t *self, uint64_t key, uint64_t since_lsn, http_response_t *res,
                      int (*alive)(void *arg), void *arg, void (*arg_free)(void *arg))
{
    return s_stream_reply(events_subscribe_all(self, key, since_lsn), res, alive, arg, arg_free);
}

int events_subscriber_count(events_t *self)
{
    pthread_mutex_lock(&self->mu);
    int n = self->sub_count;
    pthread_mutex_unlock(&self->mu);
    return n;
}
