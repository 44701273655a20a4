/* crediter.c — see crediter.h. */
#include "actors/crediter.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "actors/mt5.h"
#include "schema/log.h"

#define S_RETRY_BASE_MS 100
#define S_RETRY_CAP_MS 30000

typedef struct {
    const stage_ctx_t *ctx;
    int index;
    mt5_client_t *mt5;
    zsock_t *to_notifier;
    uint64_t rng;
    int64_t last_call_ms;   /* monotonic: the session's last use */
} s_crediter_t;

void crediter_ref(const char *tx_id, char out[32])
{
    static const char prefix[] = "kasa ";
    size_t n = sizeof prefix - 1;
    memcpy(out, prefix, n);
    for (const char *p = tx_id; p && *p && n < 31; p++)
        if (isxdigit((unsigned char) *p))
            out[n++] = (char) tolower((unsigned char) *p);
    out[n] = '\0';
}

static int64_t s_now_s(void)
{
    return (int64_t) time(NULL);
}

static int64_t s_retry(s_crediter_t *self, const workq_item_t *item, const char *tx_id, const char *what,
                       const char *why)
{
    int64_t ms = workq_backoff_ms(item->tries, S_RETRY_BASE_MS, S_RETRY_CAP_MS, &self->rng);
    log_warn("crediter.retry", "tx=%s worker=%d step=%s try=%u retry_ms=%lld reason=\"%s\"", tx_id, self->index,
             what, item->tries + 1, (long long) ms, why);
    return ms;
}

/* Journals an ALERT (see registry_alert); a failure to journal it is logged there. */
static void s_alert(s_crediter_t *self, const char *tx_id, record_alert_t alert, uint64_t login, uint64_t ticket,
                    uint64_t ticket2, const char *reason)
{
    record_t r;
    record_init(&r, RECORD_ALERT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx_id);
    snprintf(r.alert, sizeof r.alert, "%s", record_alert_name(alert));
    r.login = login;
    r.ticket = ticket;
    r.ticket2 = ticket2;
    snprintf(r.reason, sizeof r.reason, "%s", reason ? reason : "");
    char err[160];
    registry_alert(self->ctx->registry, self->ctx->journal, &r, err, sizeof err);
}

/* Journals CREDIT_OK with ticket (on login) and hands the CREDITED record to the notifier. */
static int64_t s_credited(s_crediter_t *self, const char *tx_id, uint64_t login, const char *ref, uint64_t ticket)
{
    record_t r;
    stage_event_record(&r, tx_id, DEPOSIT_EV_CREDIT_OK, NULL);
    r.login = login;
    r.ticket = ticket;
    snprintf(r.ref, sizeof r.ref, "%s", ref);
    char err[160];
    registry_result_t res = stage_commit(self->ctx, &r, DEPOSIT_EFFECT_NOTIFY, self->to_notifier, "crediter", err,
                                         sizeof err);
    if (res == REGISTRY_MOVED && r.from != DEPOSIT_HELD)
        return 0;
    /* Held while the call was in flight and now CREDITED (a person must know the hold is moot), or
     * the deposit could not take the credit at all (rejected meanwhile, journal failing): either
     * way the deal is journaled as an alert, never left only in a log line. A later reconcile of a
     * deposit that still needs a credit finds this ticket; never credited twice. */
    s_alert(self, tx_id, res == REGISTRY_MOVED ? RECORD_ALERT_CREDIT_AFTER_HOLD : RECORD_ALERT_CREDIT_NOT_RECORDED,
            login, ticket, 0, res == REGISTRY_MOVED ? "a credit in flight as the deposit was held succeeded" : err);
    return 0;
}

static int64_t s_hold(s_crediter_t *self, const char *tx_id, const char *reason)
{
    record_t r;
    stage_event_record(&r, tx_id, DEPOSIT_EV_HOLD, reason);
    char err[160];
    if (stage_commit(self->ctx, &r, 0, NULL, "crediter", err, sizeof err) != REGISTRY_MOVED)
        log_warn("crediter.skipped", "tx=%s event=HOLD reason=\"%s\"", tx_id, err);
    return 0;
}

/* Step 1: looks for an earlier attempt's deal. 0 not found (safe to send), 1 found (*ticket,
 * *on_login), -1 could not tell now (err; retry), -2 MT5 refuses to tell (err; a person must look). */
static int s_reconcile(s_crediter_t *self, const registry_entry_t *e, const char *ref, uint64_t *ticket,
                       uint64_t *on_login, char *err, size_t errlen)
{
    int64_t from = e->first_attempt_ms / 1000 - CREDITER_WINDOW_S;
    int64_t last = e->last_attempt_ms / 1000;
    int64_t now = s_now_s();
    int64_t to = (last > now ? last : now) + CREDITER_WINDOW_S;
    uint64_t logins[2] = { e->view.login, 0 };
    if (e->attempt_login && e->attempt_login != e->view.login)
        logins[1] = e->attempt_login;   /* reassigned since: the earlier attempt went to that login */
    for (int i = 0; i < 2 && logins[i]; i++) {
        const char *refs[2] = { e->ref[0] ? e->ref : ref, ref };
        for (int j = 0; j < 2; j++) {
            if (j == 1 && strcmp(refs[0], refs[1]) == 0)
                break;
            mt5_result_t rc = mt5_find_balance_deal(self->mt5, logins[i], refs[j], from, to, ticket, err, errlen);
            self->last_call_ms = stage_mono_ms();
            if (rc == MT5_OK) {
                *on_login = logins[i];
                return 1;
            }
            if (rc != MT5_NOT_FOUND) {
                size_t n = strlen(err);
                snprintf(err + n, errlen - n, " (%s)", mt5_result_name(rc));
                return rc == MT5_PERMANENT ? -2 : -1;
            }
        }
    }
    return 0;
}

static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_crediter_t *self = arg;
    record_t seen;
    registry_entry_t e;
    if (stage_fetch(self->ctx, item, "crediter", DEPOSIT_LOCKED, &seen, &e) != 0)
        return 0;
    if (stage_crediter_of(self->ctx, e.view.login) != self->index)
        return 0;   /* reassigned to a login another worker owns: that worker has it (never two at once) */
    const char *tx = e.view.tx_id;
    uint64_t login = e.view.login;
    char ref[32], err[200] = "";
    crediter_ref(tx, ref);

    if (e.attempts) {
        uint64_t ticket = 0, on_login = 0;
        int found = s_reconcile(self, &e, ref, &ticket, &on_login, err, sizeof err);
        if (found == -2) {
            char reason[160];
            snprintf(reason, sizeof reason, "cannot reconcile an earlier credit attempt: %.100s", err);
            return s_hold(self, tx, reason);
        }
        if (found < 0)
            return s_retry(self, item, tx, "reconcile", err);
        log_info("crediter.reconciled", "tx=%s login=%llu ref=\"%s\" attempts=%u found=%d ticket=%llu", tx,
                 (unsigned long long) login, ref, e.attempts, found, (unsigned long long) ticket);
        if (found)
            return s_credited(self, tx, on_login, e.ref[0] ? e.ref : ref, ticket);
    }

    record_t a;
    record_init(&a, RECORD_CREDIT_ATTEMPT);
    snprintf(a.tx_id, sizeof a.tx_id, "%s", tx);
    a.login = login;
    a.credit_minor = e.view.credit_minor;
    a.digits = e.view.digits;
    a.attempt = e.attempts + 1;
    snprintf(a.ref, sizeof a.ref, "%s", ref);
    if (registry_append(self->ctx->registry, self->ctx->journal, &a, err, sizeof err) != REGISTRY_MOVED) {
        log_warn("crediter.skipped", "tx=%s step=attempt reason=\"%s\"", tx, err);
        return 0;   /* not durable: never call MT5 */
    }
    registry_entry_t now;
    if (registry_get(self->ctx->registry, tx, &now) != 0 || now.view.state != DEPOSIT_LOCKED ||
        now.view.login != login || now.attempts != a.attempt)
        return 0;   /* a person took it meanwhile; the attempt record makes any later credit reconcile */

    uint64_t ticket = 0;
    mt5_result_t rc = mt5_balance(self->mt5, login, e.view.credit_minor, e.view.digits, ref, &ticket, err,
                                  sizeof err);
    self->last_call_ms = stage_mono_ms();
    switch (rc) {
    case MT5_OK:
        return s_credited(self, tx, login, ref, ticket);
    case MT5_PERMANENT: {
        char reason[160];
        snprintf(reason, sizeof reason, "MT5 refused the credit (retcode %d): %.100s", mt5_last_retcode(self->mt5),
                 err);
        return s_hold(self, tx, reason);
    }
    case MT5_AMBIGUOUS:
        log_warn("crediter.ambiguous", "tx=%s login=%llu attempt=%u reason=\"%s\" next=reconcile", tx,
                 (unsigned long long) login, a.attempt, err);
        return s_retry(self, item, tx, "balance", err);
    default:
        return s_retry(self, item, tx, mt5_result_name(rc), err);
    }
}

/* Orders a worker's deposits by MT5 login. */
static uint64_t s_key(void *arg, const uint8_t *bytes, size_t len)
{
    record_t r;
    char why[96];
    if (record_decode(bytes, len, &r, why, sizeof why) != 0)
        return 0;
    return r.login;
}

static int64_t s_idle(void *arg, workq_t *q, int64_t now_ms)
{
    s_crediter_t *self = arg;
    if (mt5_auth_count(self->mt5) == 0)
        return -1;   /* no session yet: nothing to keep alive */
    int64_t since = now_ms - self->last_call_ms;
    if (since < CREDITER_PING_MS)
        return CREDITER_PING_MS - since;
    char err[160] = "";
    mt5_result_t rc = mt5_ping(self->mt5, err, sizeof err);
    self->last_call_ms = stage_mono_ms();
    if (rc != MT5_OK)
        log_warn("crediter.ping_failed", "worker=%d result=%s reason=\"%s\"", self->index, mt5_result_name(rc), err);
    return CREDITER_PING_MS;
}

static int s_init(void *state, const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    s_crediter_t *self = state;
    const config_t *cfg = ctx->cfg;
    self->ctx = ctx;
    self->index = index;
    self->rng = stage_seed(self);
    self->mt5 = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                               (long) self->ctx->mt5_timeout_ms);
    char ep[96];
    stage_endpoint(self->ctx, STAGE_NOTIFIER, 0, ep, sizeof ep);
    self->to_notifier = stage_push_new(ep);
    if (!self->mt5 || !self->to_notifier) {
        snprintf(err, errlen, "crediter %d: %s", self->index,
                 !self->mt5 ? "MT5 client: bad MT5_URL or credentials" : "cannot bind or connect its sockets");
        return -1;
    }
    self->last_call_ms = stage_mono_ms();
    return 0;
}

static void s_destroy(void *state)
{
    s_crediter_t *self = state;
    zsock_destroy(&self->to_notifier);
    mt5_client_destroy(&self->mt5);
}

static const stage_def_t s_def = {
    .kind = STAGE_CREDITER, .name = "crediter", .ops = { s_handle, s_key, s_idle },
    .state_size = sizeof(s_crediter_t), .init = s_init, .destroy = s_destroy,
};

zactor_t *crediter_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    return stage_actor_new(ctx, &s_def, index, err, errlen);
}
