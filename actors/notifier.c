/* notifier.c — see notifier.h. */
#include "actors/notifier.h"

#include <stdlib.h>
#include <string.h>

#include "actors/claims.h"
#include "actors/notice.h"
#include "actors/telegram.h"
#include "schema/json.h"
#include "schema/log.h"

typedef struct {
    const stage_ctx_t *ctx;
    int index;                                 /* which notifier (0..ctx->notifiers-1) */
    zsock_t *to_notifier[STAGE_MAX_NOTIFIERS]; /* notifier 0 only: to each other notifier */
    telegram_t *tg;          /* NULL when Telegram is not configured: notices are recorded as failed */
    uint64_t rng;
} s_notifier_t;

static void s_failed(s_notifier_t *self, const char *tx_id, uint64_t login, const char *reason)
{
    record_t r;
    record_init(&r, RECORD_NOTICE_FAILED);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx_id);
    r.login = login;
    snprintf(r.reason, sizeof r.reason, "%s", reason);
    char err[160];
    if (registry_append(self->ctx->registry, self->ctx->journal, &r, err, sizeof err) == REGISTRY_MOVED)
        log_warn("deposit.notice_failed", "tx=%s login=%llu reason=\"%s\"", tx_id, (unsigned long long) login,
                 reason);
    else
        log_warn("notifier.skipped", "tx=%s step=notice_failed reason=\"%s\"", tx_id, err);
}

/* Cluster mode: whether this node sends tx's notice (claims_notice_take). 0 another node does: the
 * deposit is journaled NOTIFIED here with who sent it (never a second notice of one deposit). */
static int s_cluster_take(s_notifier_t *self, const char *tx)
{
    char by[64], err[160];
    int take = claims_notice_take(self->ctx->claims, tx, by);
    if (take != 0)
        return take;
    char reason[160];
    snprintf(reason, sizeof reason, "the notice was sent by node %.63s", by);
    record_t r;
    stage_event_record(&r, tx, DEPOSIT_EV_NOTICE_SENT, reason);
    if (stage_commit(self->ctx, &r, 0, NULL, "notifier", err, sizeof err) != REGISTRY_MOVED)
        log_warn("notifier.skipped", "tx=%s event=NOTICE_SENT reason=\"%s\"", tx, err);
    log_info("notifier.sent_elsewhere", "tx=%s by=%s", tx, by);
    return 0;
}

static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_notifier_t *self = arg;
    record_t seen;
    registry_entry_t e;
    if (stage_fetch(self->ctx, item, "notifier", DEPOSIT_CREDITED, &seen, &e) != 0 || e.notice_failed)
        return 0;
    const char *tx = e.view.tx_id;
    if (!self->tg || !self->ctx->cfg->telegram_chat_id[0]) {
        s_failed(self, tx, e.view.login, "Telegram is not configured");
        return 0;
    }
    char err[200] = "";
    telegram_result_t rc;
    int take = self->ctx->claims ? s_cluster_take(self, tx) : 1;
    if (take == 0)
        return 0;   /* another node sends it */
    if (take < 0) {
        rc = TELEGRAM_TRANSIENT;
        snprintf(err, sizeof err, "MongoDB did not answer whether another node sent the notice");
    } else {
        char *text = notice_credited(&e.view, notice_lang(self->ctx->cfg->notice_lang));
        rc = telegram_send(self->tg, self->ctx->cfg->telegram_chat_id, text, err, sizeof err);
        free(text);
    }
    if (rc == TELEGRAM_OK) {
        record_t r;
        stage_event_record(&r, tx, DEPOSIT_EV_NOTICE_SENT, NULL);
        if (stage_commit(self->ctx, &r, 0, NULL, "notifier", err, sizeof err) != REGISTRY_MOVED)
            log_warn("notifier.skipped", "tx=%s event=NOTICE_SENT reason=\"%s\"", tx, err);
        return 0;
    }
    char reason[160];
    if (rc == TELEGRAM_PERMANENT) {
        snprintf(reason, sizeof reason, "Telegram refused the notice: %.120s", err);
        s_failed(self, tx, e.view.login, reason);
        return 0;
    }
    if (item->tries + 1 >= NOTIFIER_TRIES) {
        snprintf(reason, sizeof reason, "gave up after %d tries: %.120s", NOTIFIER_TRIES, err);
        s_failed(self, tx, e.view.login, reason);
        return 0;
    }
    int64_t ms = workq_backoff_ms(item->tries, NOTIFIER_RETRY_BASE_MS, NOTIFIER_RETRY_CAP_MS, &self->rng);
    int64_t asked = (int64_t) telegram_retry_after_s(self->tg) * 1000;
    if (asked > ms)
        ms = asked < 10 * NOTIFIER_RETRY_CAP_MS ? asked : 10 * NOTIFIER_RETRY_CAP_MS;
    log_warn("notifier.retry", "tx=%s try=%u retry_ms=%lld reason=\"%s\"", tx, item->tries + 1, (long long) ms, err);
    return ms;
}

/* Notifier 0: hands a message that belongs to another notifier on to it (blocking). */
static int s_forward(void *arg, const uint8_t *bytes, size_t len)
{
    s_notifier_t *self = arg;
    if (self->index != 0 || stage_count(self->ctx, STAGE_NOTIFIER) < 2)
        return 0;
    record_t r;
    char why[96];
    if (record_decode(bytes, len, &r, why, sizeof why) != 0 || r.kind != RECORD_DEPOSIT)
        return 0;   /* handled (and logged as bad) here */
    int to = stage_route(self->ctx, STAGE_NOTIFIER, r.tx_id, r.login);
    if (to == 0 || !self->to_notifier[to])
        return 0;
    if (stage_send(self->to_notifier[to], bytes, len) != 0)
        log_warn("notifier.handoff_failed", "tx=%s to=%d (resumes on restart)", r.tx_id, to);
    return 1;
}

static int s_init(void *state, const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    s_notifier_t *self = state;
    const config_t *cfg = ctx->cfg;
    self->ctx = ctx;
    self->index = index;
    self->rng = stage_seed(self);
    for (int i = 1; index == 0 && i < stage_count(ctx, STAGE_NOTIFIER) && i < STAGE_MAX_NOTIFIERS; i++) {
        char ep[96];
        stage_endpoint(ctx, STAGE_NOTIFIER, i, ep, sizeof ep);
        self->to_notifier[i] = stage_push_new(ep);
        if (!self->to_notifier[i]) {
            snprintf(err, errlen, "notifier 0: cannot connect %s", ep);
            return -1;
        }
    }
    if (cfg->telegram_bot_token[0] && cfg->telegram_api_url[0])
        self->tg = telegram_new(cfg->telegram_api_url, cfg->telegram_bot_token, (long) self->ctx->telegram_timeout_ms);
    return 0;   /* without Telegram every notice is recorded as failed */
}

static void s_destroy(void *state)
{
    s_notifier_t *self = state;
    for (int i = 0; i < STAGE_MAX_NOTIFIERS; i++)
        zsock_destroy(&self->to_notifier[i]);
    telegram_destroy(&self->tg);
}

static const stage_def_t s_def = {
    .kind = STAGE_NOTIFIER, .name = "notifier", .ops = { s_handle, NULL, NULL, s_forward },
    .state_size = sizeof(s_notifier_t), .init = s_init, .destroy = s_destroy,
};

zactor_t *notifier_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    return stage_actor_new(ctx, &s_def, index, err, errlen);
}
