/* stage.c — see stage.h. The loop every stage actor runs. */
#include "actors/stage.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "tools/log.h"

void stage_endpoint(const stage_ctx_t *ctx, stage_kind_t kind, int index, char *buf, size_t len)
{
    switch (kind) {
    case STAGE_LOCKER: snprintf(buf, len, "%s-locker", ctx->prefix); break;
    case STAGE_CREDITER: snprintf(buf, len, "%s-crediter-%d", ctx->prefix, index); break;
    default: snprintf(buf, len, "%s-notifier", ctx->prefix); break;
    }
}

int stage_crediter_of(const stage_ctx_t *ctx, uint64_t login)
{
    return ctx->crediters > 0 ? (int) (login % (uint64_t) ctx->crediters) : 0;
}

zsock_t *stage_pull_new(const char *endpoint)
{
    zsock_t *s = zsock_new(ZMQ_PULL);
    if (!s)
        return NULL;
    zsock_set_rcvhwm(s, STAGE_HWM);
    zsock_set_linger(s, 0);
    if (zsock_bind(s, "%s", endpoint) != 0) {
        zsock_destroy(&s);
        return NULL;
    }
    return s;
}

zsock_t *stage_push_new(const char *endpoint)
{
    zsock_t *s = zsock_new(ZMQ_PUSH);
    if (!s)
        return NULL;
    zsock_set_sndhwm(s, STAGE_HWM);
    zsock_set_linger(s, 0);
    if (zsock_connect(s, "%s", endpoint) != 0) {
        zsock_destroy(&s);
        return NULL;
    }
    return s;
}

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

/* Reads every waiting message into q while it has room. -1 if the context is ending. */
static int s_drain(zsock_t *pull, workq_t *q, const stage_ops_t *ops, void *arg)
{
    while (!workq_full(q)) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        int rc = zmq_msg_recv(&msg, zsock_resolve(pull), ZMQ_DONTWAIT);
        if (rc < 0) {
            zmq_msg_close(&msg);
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        const uint8_t *data = zmq_msg_data(&msg);
        size_t size = zmq_msg_size(&msg);
        uint64_t key = ops->key ? ops->key(arg, data, size) : 0;
        if (workq_push(q, data, size, key, stage_mono_ms()) != 0)   /* room was checked: no memory */
            log_error("stage.dropped", "len=%zu reason=\"no memory\" action=\"resumes on restart\"", size);
        zmq_msg_close(&msg);
    }
    return 0;
}

void stage_loop(zsock_t *pipe, zsock_t *pull, workq_t *q, const stage_ops_t *ops, void *arg)
{
    for (;;) {
        int64_t now = stage_mono_ms();
        workq_item_t *item = workq_next(q, now);
        long timeout = 0;
        if (!item) {
            int64_t wait = workq_wait_ms(q, now);
            int64_t idle = ops->idle ? ops->idle(arg, now) : -1;
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
        now = stage_mono_ms();
        item = workq_next(q, now);
        if (!item)
            continue;
        int64_t retry_ms = ops->handle(arg, item);
        if (retry_ms <= 0) {
            workq_remove(q, item);
        } else {
            item->tries++;
            item->due_ms = stage_mono_ms() + retry_ms;
        }
    }
}
