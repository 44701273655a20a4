/* stage.c — see stage.h. The loop every stage actor runs. */
#include "actors/stage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/log.h"

void stage_endpoint(const stage_ctx_t *ctx, stage_kind_t kind, int index, char *buf, size_t len)
{
    switch (kind) {
    case STAGE_LOCKER: snprintf(buf, len, "%s-locker-%d", ctx->prefix, index); break;
    case STAGE_CREDITER: snprintf(buf, len, "%s-crediter-%d", ctx->prefix, index); break;
    case STAGE_ACCOUNTS: snprintf(buf, len, "%s-accounts-%d", ctx->prefix, index); break;
    case STAGE_WITHDRAWER: snprintf(buf, len, "%s-withdrawer-%d", ctx->prefix, index); break;
    default: snprintf(buf, len, "%s-notifier-%d", ctx->prefix, index); break;
    }
}

/* Where actor index of stage kind keeps its depth; NULL without gauges or beyond them. */
static _Atomic int *s_depth_slot(const stage_ctx_t *ctx, stage_kind_t kind, int index)
{
    if (!ctx->gauges || (unsigned) kind >= STAGE_KINDS || index < 0 || index >= STAGE_GAUGE_ACTORS)
        return NULL;
    return &ctx->gauges->depth[kind][index];
}

int stage_depth(const stage_ctx_t *ctx, stage_kind_t kind)
{
    int sum = 0, n = stage_count(ctx, kind);
    for (int i = 0; i < n; i++) {
        _Atomic int *slot = s_depth_slot(ctx, kind, i);
        sum += slot ? atomic_load_explicit(slot, memory_order_relaxed) : 0;
    }
    return sum;
}

int stage_count(const stage_ctx_t *ctx, stage_kind_t kind)
{
    int n = kind == STAGE_LOCKER ? ctx->lockers : kind == STAGE_CREDITER ? ctx->crediters
          : kind == STAGE_ACCOUNTS ? ctx->accounts : kind == STAGE_WITHDRAWER ? 1 : ctx->notifiers;
    return n > 0 ? n : 1;
}

uint64_t stage_tx_hash(const char *tx_id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; tx_id && tx_id[i] && i < 256; i++) {
        h ^= (unsigned char) tx_id[i];
        h *= 0x100000001b3ull;
    }
    /* FNV's low bits depend on few input bits (the lowest is the parity of the bytes' lowest
     * bits): mix every bit into them before anyone takes h % n. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

int stage_route(const stage_ctx_t *ctx, stage_kind_t kind, const char *tx_id, uint64_t login)
{
    uint64_t n = (uint64_t) stage_count(ctx, kind);
    uint64_t key = kind == STAGE_CREDITER ? login : stage_tx_hash(tx_id);
    return (int) (key % n);
}

int stage_crediter_of(const stage_ctx_t *ctx, uint64_t login)
{
    return stage_route(ctx, STAGE_CREDITER, NULL, login);
}

/* A PULL socket bound at endpoint, or a PUSH socket connected to it; STAGE_HWM, no linger. */
static zsock_t *s_socket_new(int type, const char *endpoint)
{
    zsock_t *s = zsock_new(type);
    if (!s)
        return NULL;
    if (type == ZMQ_PULL)
        zsock_set_rcvhwm(s, STAGE_HWM);
    else
        zsock_set_sndhwm(s, STAGE_HWM);
    zsock_set_linger(s, 0);
    int rc = type == ZMQ_PULL ? zsock_bind(s, "%s", endpoint) : zsock_connect(s, "%s", endpoint);
    if (rc != 0)
        zsock_destroy(&s);
    return s;
}

zsock_t *stage_pull_new(const char *endpoint) { return s_socket_new(ZMQ_PULL, endpoint); }

zsock_t *stage_push_new(const char *endpoint) { return s_socket_new(ZMQ_PUSH, endpoint); }

int stage_send(zsock_t *push, const void *bytes, size_t len)
{
    for (;;) {
        int rc = zmq_send(zsock_resolve(push), bytes, len, 0);
        if (rc >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

void stage_wait_term(zsock_t *pipe)
{
    for (;;) {
        zmsg_t *msg = zmsg_recv(pipe);
        if (!msg)
            return;
        char *cmd = zmsg_popstr(msg);
        int term = cmd && strcmp(cmd, "$TERM") == 0;
        zstr_free(&cmd);
        zmsg_destroy(&msg);
        if (term)
            return;
    }
}

int64_t stage_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int stage_decode(const uint8_t *bytes, size_t len, record_t *r, const char *stage)
{
    char why[128];
    if (record_decode(bytes, len, r, why, sizeof why) == 0 && r->kind == RECORD_DEPOSIT)
        return 0;
    log_error("stage.bad_message", "stage=%s len=%zu reason=\"%s\"", stage, len,
              r->kind == RECORD_DEPOSIT ? why : "not a deposit record");
    return -1;
}

/* Reads every waiting message into q while it has room (at most STAGE_QUEUE messages, counting
 * those forwarded, so the loop gets back to $TERM and its own work). -1 if the context is ending. */
static int s_drain(zsock_t *pull, workq_t *q, const stage_ops_t *ops, void *arg)
{
    for (int read = 0; read < STAGE_QUEUE && !workq_full(q); read++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        int rc = zmq_msg_recv(&msg, zsock_resolve(pull), ZMQ_DONTWAIT);
        if (rc < 0) {
            zmq_msg_close(&msg);
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        const uint8_t *data = zmq_msg_data(&msg);
        size_t size = zmq_msg_size(&msg);
        if (ops->forward && ops->forward(arg, data, size)) {
            zmq_msg_close(&msg);
            continue;
        }
        uint64_t key = ops->key ? ops->key(arg, data, size) : 0;
        if (workq_push(q, data, size, key, stage_mono_ms()) != 0)   /* room was checked: no memory */
            log_error("stage.dropped", "len=%zu reason=\"no memory\" action=\"resumes on restart\"", size);
        zmq_msg_close(&msg);
    }
    return 0;
}

static void s_gauge(_Atomic int *depth, const workq_t *q)
{
    if (depth)
        atomic_store_explicit(depth, (int) workq_size(q), memory_order_relaxed);
}

void stage_loop(zsock_t *pipe, zsock_t *pull, workq_t *q, const stage_ops_t *ops, void *arg, _Atomic int *depth)
{
    int64_t idle_due = -1;   /* monotonic ms the idle hook asked to run at; -1: only when nothing is due */
    for (;;) {
        int64_t now = stage_mono_ms();
        workq_item_t *item = workq_next(q, now);
        if (ops->idle && (!item || (idle_due >= 0 && now >= idle_due))) {
            int64_t again = ops->idle(arg, q, now);
            idle_due = again >= 0 ? now + again : -1;
            item = workq_next(q, now);   /* it may have queued work */
            s_gauge(depth, q);
        }
        long timeout = 0;
        if (!item) {
            int64_t wait = workq_wait_ms(q, now);
            int64_t idle = idle_due >= 0 ? (idle_due > now ? idle_due - now : 0) : -1;
            if (idle >= 0 && (wait < 0 || idle < wait))
                wait = idle;
            timeout = wait < 0 ? -1 : (long) wait;
        }
        zmq_pollitem_t items[2] = {
            { zsock_resolve(pipe), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve(pull), 0, ZMQ_POLLIN, 0 },
        };
        int n = workq_full(q) ? 1 : 2;
        int rc = zmq_poll(items, n, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv(pipe);
            if (!msg)
                break;
            char *cmd = zmsg_popstr(msg);
            int term = cmd && strcmp(cmd, "$TERM") == 0;
            zstr_free(&cmd);
            zmsg_destroy(&msg);
            if (term)
                break;
        }
        if (n == 2 && (items[1].revents & ZMQ_POLLIN) && s_drain(pull, q, ops, arg) != 0)
            break;
        s_gauge(depth, q);
        now = stage_mono_ms();
        item = workq_next(q, now);
        if (!item)
            continue;
        int64_t retry_ms = ops->handle(arg, item);
        if (retry_ms <= 0) {
            workq_remove(q, item);
            s_gauge(depth, q);
        } else {
            item->tries++;
            item->due_ms = stage_mono_ms() + retry_ms;
        }
    }
}

int stage_fetch(const stage_ctx_t *ctx, const workq_item_t *item, const char *stage, deposit_state_t want,
                record_t *seen, registry_entry_t *e)
{
    if (stage_decode(item->bytes, item->len, seen, stage) != 0)
        return -1;
    if (registry_get(ctx->registry, seen->tx_id, e) != 0 || e->view.state != want || registry_failed(ctx->registry))
        return -1;
    return 0;
}

void stage_event_record(record_t *r, const char *tx_id, deposit_event_t ev, const char *reason)
{
    record_init(r, RECORD_DEPOSIT);
    snprintf(r->tx_id, sizeof r->tx_id, "%s", tx_id);
    r->event = ev;
    if (reason)
        snprintf(r->reason, sizeof r->reason, "%s", reason);
}

registry_result_t stage_commit(const stage_ctx_t *ctx, record_t *r, unsigned effect, zsock_t *next,
                               const char *stage, char *err, size_t errlen)
{
    if (!effect || !next)
        return registry_commit(ctx->registry, ctx->journal, r, NULL, NULL, NULL, err, errlen);
    uint8_t *bytes = NULL;
    size_t len = 0;
    unsigned effects = 0;
    registry_result_t res = registry_commit(ctx->registry, ctx->journal, r, &effects, &bytes, &len, err, errlen);
    if (res == REGISTRY_MOVED && (effects & effect) && stage_send(next, bytes, len) != 0) {
        char event[48];
        snprintf(event, sizeof event, "%s.handoff_failed", stage);
        log_warn(event, "tx=%s (resumes on restart)", r->tx_id);
    }
    free(bytes);
    return res;
}

uint64_t stage_seed(const void *self)
{
    uint64_t x = (uint64_t) stage_mono_ms() ^ (uint64_t) (uintptr_t) self ^ 0x9E3779B97F4A7C15ull;
    return x ? x : 1;
}

/* ---- the actor every stage runs as ---------------------------------------------------------------- */

typedef struct {
    const stage_ctx_t *ctx;
    const stage_def_t *def;
    int index;
    void *state;
    int ok;
    char label[32];   /* "locker", "crediter 2": how errors name the stage */
    char err[200];
} s_runner_t;

static void s_runner(zsock_t *pipe, void *args)
{
    s_runner_t *run = args;
    const stage_def_t *def = run->def;
    char ep[96];
    stage_endpoint(run->ctx, def->kind, run->index, ep, sizeof ep);
    zsock_t *pull = stage_pull_new(ep);
    workq_t *q = workq_new(STAGE_QUEUE);
    run->ok = pull && q && def->init(run->state, run->ctx, run->index, run->err, sizeof run->err) == 0;
    if (!run->ok && !run->err[0])
        snprintf(run->err, sizeof run->err, "%s: cannot bind %s", run->label, ep);
    zsock_signal(pipe, 0);
    if (run->ok)
        stage_loop(pipe, pull, q, &def->ops, run->state, s_depth_slot(run->ctx, def->kind, run->index));
    else
        stage_wait_term(pipe);   /* the creator reads run->err before it ends us */
    def->destroy(run->state);
    _Atomic int *slot = run->ok ? s_depth_slot(run->ctx, def->kind, run->index) : NULL;
    if (slot)
        atomic_store(slot, 0);   /* its list goes with it */
    workq_destroy(&q);
    zsock_destroy(&pull);
    free(run->state);
    free(run);
}

zactor_t *stage_actor_new(const stage_ctx_t *ctx, const stage_def_t *def, int index, char *err, size_t errlen)
{
    s_runner_t *run = calloc(1, sizeof *run);
    void *state = calloc(1, def->state_size);
    if (!run || !state) {
        free(run);
        free(state);
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    run->ctx = ctx;
    run->def = def;
    run->index = index;
    run->state = state;
    if (def->kind == STAGE_CREDITER || stage_count(ctx, def->kind) > 1)
        snprintf(run->label, sizeof run->label, "%s %d", def->name, index);
    else
        snprintf(run->label, sizeof run->label, "%s", def->name);
    zactor_t *actor = zactor_new(s_runner, run);
    if (!actor) {
        snprintf(err, errlen, "%s: cannot start", run->label);
        free(state);
        free(run);
        return NULL;
    }
    if (!run->ok) {
        /* The actor frees run when it ends, which it does at once when its start failed. */
        snprintf(err, errlen, "%s", run->err);
        zactor_destroy(&actor);
        return NULL;
    }
    return actor;
}
