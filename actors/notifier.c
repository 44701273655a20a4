/* notifier.c — see notifier.h. */
#include "actors/notifier.h"

#include <string.h>

#include "actors/mt5.h"
#include "actors/telegram.h"
#include "schema/json.h"
#include "tools/log.h"

typedef struct {
    const stage_ctx_t *ctx;
    telegram_t *tg;          /* NULL when Telegram is not configured: notices are recorded as failed */
    uint64_t rng;
    int ok;
    char err[200];
} s_notifier_t;

char *notifier_message(const deposit_view_t *d)
{
    char credited[48] = "?", login[24], ticket[24];
    if (mt5_format_amount(d->credit_minor, d->digits, credited, sizeof credited) != 0)
        snprintf(credited, sizeof credited, "%lld minor units", (long long) d->credit_minor);
    snprintf(login, sizeof login, "%llu", (unsigned long long) d->login);
    snprintf(ticket, sizeof ticket, "%llu", (unsigned long long) d->ticket);
    char *amount = telegram_escape_html(d->amount);
    char *token = telegram_escape_html(d->token_id);
    char *tx = telegram_escape_html(d->tx_id);
    char *cred = telegram_escape_html(credited);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b,
                "<b>Deposit credited</b>\n"
                "Account: <code>%s</code>\n"
                "Credited: <b>%s</b>\n"
                "Received: %s %s\n"
                "Transaction: <code>%s</code>\n"
                "MT5 deal: <code>%s</code>",
                login, cred, amount, token, tx, ticket);
    free(amount);
    free(token);
    free(tx);
    free(cred);
    return jbuf_take(&b);
}

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

static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_notifier_t *self = arg;
    record_t seen;
    if (stage_decode(item->bytes, item->len, &seen, "notifier") != 0)
        return 0;
    registry_entry_t e;
    if (registry_get(self->ctx->registry, seen.tx_id, &e) != 0 || e.view.state != DEPOSIT_CREDITED ||
        e.notice_failed || registry_failed(self->ctx->registry))
        return 0;
    const char *tx = e.view.tx_id;
    if (!self->tg || !self->ctx->cfg->telegram_chat_id[0]) {
        s_failed(self, tx, e.view.login, "Telegram is not configured");
        return 0;
    }
    char *text = notifier_message(&e.view);
    char err[200] = "";
    telegram_result_t rc = telegram_send(self->tg, self->ctx->cfg->telegram_chat_id, text, err, sizeof err);
    free(text);
    if (rc == TELEGRAM_OK) {
        record_t r;
        record_init(&r, RECORD_DEPOSIT);
        snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
        r.event = DEPOSIT_EV_NOTICE_SENT;
        registry_result_t res = registry_commit(self->ctx->registry, self->ctx->journal, &r, NULL, NULL, NULL,
                                                err, sizeof err);
        if (res != REGISTRY_MOVED)
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

static void s_actor(zsock_t *pipe, void *args)
{
    s_notifier_t *self = args;
    const config_t *cfg = self->ctx->cfg;
    self->rng = ((uint64_t) stage_mono_ms() << 8 ^ (uint64_t) (uintptr_t) self) | 1;
    char ep[96];
    stage_endpoint(self->ctx, STAGE_NOTIFIER, 0, ep, sizeof ep);
    zsock_t *pull = stage_pull_new(ep);
    workq_t *q = workq_new(STAGE_QUEUE);
    if (cfg->telegram_bot_token[0] && cfg->telegram_api_url[0])
        self->tg = telegram_new(cfg->telegram_api_url, cfg->telegram_bot_token, (long) self->ctx->telegram_timeout_ms);
    self->ok = pull && q;
    if (!self->ok)
        snprintf(self->err, sizeof self->err, "notifier: cannot bind %s", ep);
    zsock_signal(pipe, 0);
    if (self->ok) {
        stage_ops_t ops = { s_handle, NULL, NULL };
        stage_loop(pipe, pull, q, &ops, self);
    } else {
        stage_wait_term(pipe);
    }
    telegram_destroy(&self->tg);
    workq_destroy(&q);
    zsock_destroy(&pull);
    free(self);
}

zactor_t *notifier_new(const stage_ctx_t *ctx, char *err, size_t errlen)
{
    s_notifier_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    self->ctx = ctx;
    zactor_t *actor = zactor_new(s_actor, self);
    if (!actor) {
        free(self);
        snprintf(err, errlen, "notifier: cannot start");
        return NULL;
    }
    if (!self->ok) {
        snprintf(err, errlen, "%s", self->err);
        zactor_destroy(&actor);
        return NULL;
    }
    return actor;
}
