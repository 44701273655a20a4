/* crediter.c — see crediter.h. */
#include "actors/crediter.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "actors/claims.h"
#include "actors/mt5.h"
#include "actors/credit_check.h"
#include "schema/log.h"

#define S_RETRY_BASE_MS 100
#define S_RETRY_CAP_MS 30000
#define S_UNSENT 16                               /* attempts remembered as never sent */
#define S_POST_CHECK_MAX_MS (24LL * 3600 * 1000)  /* a credit older than this is not checked again */

typedef struct {
    char tx_id[80];
    uint32_t attempt;
} s_unsent_t;

typedef struct {
    const stage_ctx_t *ctx;
    int index;
    mt5_client_t *mt5;
    zsock_t *to_notifier;
    uint64_t rng;
    int64_t last_call_ms;   /* monotonic: the session's last use */
    s_unsent_t unsent[S_UNSENT];
    unsigned unsent_next;
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
    if (self->ctx->claims)
        claims_release(self->ctx->claims, tx_id);   /* the deal exists: any node that looks finds it */
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

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remembers that attempt n of tx was never sent (MT5 said so before the balance request left):
 * that attempt needs no settle time. Forgotten on restart, where every attempt counts as sent. */
static void s_mark_unsent(s_crediter_t *self, const char *tx, uint32_t attempt)
{
    s_unsent_t *u = &self->unsent[self->unsent_next++ % S_UNSENT];
    snprintf(u->tx_id, sizeof u->tx_id, "%s", tx);
    u->attempt = attempt;
}

static int s_is_unsent(const s_crediter_t *self, const char *tx, uint32_t attempt)
{
    for (int i = 0; i < S_UNSENT; i++)
        if (self->unsent[i].attempt == attempt && strcmp(self->unsent[i].tx_id, tx) == 0)
            return 1;
    return 0;
}

/* When the settle time of e's last attempt ends (kasa's clock, ms), or 0 if it needs none: no
 * attempt, or its call is known never to have left. Measured from the attempt's journaled time, so
 * a restart with a call in flight waits as long as the run that made it would have. */
static int64_t s_settle_end_ms(const s_crediter_t *self, const registry_entry_t *e)
{
    if (!e->attempts || s_is_unsent(self, e->view.tx_id, e->attempts))
        return 0;
    return e->last_attempt_ms + self->ctx->mt5_settle_ms;
}

/* The next look while waiting until end_ms: searching meanwhile, about five times per settle time. */
static int64_t s_meanwhile_ms(const s_crediter_t *self, int64_t now_ms, int64_t end_ms)
{
    int64_t step = self->ctx->mt5_settle_ms / 5;
    if (step < S_RETRY_BASE_MS)
        step = S_RETRY_BASE_MS;
    int64_t left = end_ms - now_ms;
    return left < step ? (left > 0 ? left : 1) : step;
}

/* Searches MT5 for e's credit (credit_check.h) and logs what it saw. */
static credit_check_answer_t s_reconcile(s_crediter_t *self, const registry_entry_t *e, const char *ref, int64_t now_ms,
                                      credit_check_t *out)
{
    credit_check_answer_t a = credit_check_run(self->mt5, e, ref, now_ms, out);
    self->last_call_ms = stage_mono_ms();
    log_info("crediter.reconciled", "tx=%s login=%llu ref=\"%s\" attempts=%u answer=%s matches=%d ticket=%llu "
             "ticket2=%llu from=%lld to=%lld%s%s%s", e->view.tx_id, (unsigned long long) e->view.login, ref,
             e->attempts, credit_check_answer_name(a), out->matches, (unsigned long long) out->deal.ticket,
             (unsigned long long) out->ticket2, (long long) out->from_s, (long long) out->to_s,
             out->why[0] ? " why=\"" : "", out->why, out->why[0] ? "\"" : "");
    return a;
}

/* A deal was found: records it (CREDITED with its ticket), or, when it is not what was sent, holds
 * the deposit with both figures and an alert. A second deal with the reference is an alert too. */
static int64_t s_found(s_crediter_t *self, const registry_entry_t *e, const char *ref, const credit_check_t *rc)
{
    const char *tx = e->view.tx_id;
    if (rc->ticket2 && !(e->alerts_raised & (1u << RECORD_ALERT_DOUBLE_CREDIT)))
        s_alert(self, tx, RECORD_ALERT_DOUBLE_CREDIT, rc->login, rc->deal.ticket, rc->ticket2,
                "two balance deals carry this deposit's reference");
    if (rc->mismatch) {
        s_alert(self, tx, RECORD_ALERT_DEAL_MISMATCH, rc->login, rc->deal.ticket, 0, rc->why);
        return s_hold(self, tx, rc->why);
    }
    return s_credited(self, tx, rc->login, e->ref[0] ? e->ref : ref, rc->deal.ticket);
}

/* After a credit that followed an ambiguous attempt (attempt 2 or later was sent), one more search a
 * settle time after the last attempt: two deals with the reference raise a double_credit alert.
 * Runs on the deposit in CREDITED or NOTIFIED; its item no longer orders the login's other work.
 * Bounded: a deposit credited more than S_POST_CHECK_MAX_MS ago is not checked any more. */
static int64_t s_post_check(s_crediter_t *self, workq_item_t *item, const registry_entry_t *e)
{
    int64_t now = s_now_ms();
    if (e->attempts < 2 || (e->alerts_raised & (1u << RECORD_ALERT_DOUBLE_CREDIT)) ||
        now - e->last_attempt_ms > S_POST_CHECK_MAX_MS)
        return 0;
    item->key = 0;   /* a check, not a credit: the login's next deposits need not wait for it */
    int64_t due = e->last_attempt_ms + self->ctx->mt5_settle_ms;
    if (now < due)
        return due - now;
    char ref[32];
    crediter_ref(e->view.tx_id, ref);
    credit_check_t rc;
    credit_check_answer_t a = s_reconcile(self, e, ref, now, &rc);
    if (a == CREDIT_CHECK_CANNOT_TELL)
        return s_retry(self, item, e->view.tx_id, "post_check", rc.why);
    if (a == CREDIT_CHECK_FOUND && rc.ticket2)
        s_alert(self, e->view.tx_id, RECORD_ALERT_DOUBLE_CREDIT, rc.login, rc.deal.ticket, rc.ticket2,
                "two balance deals carry this deposit's reference");
    else if (a != CREDIT_CHECK_FOUND)
        log_warn("crediter.post_check", "tx=%s ticket=%llu answer=%s reason=\"%s\"", e->view.tx_id,
                 (unsigned long long) e->view.ticket, credit_check_answer_name(a), rc.why);
    return 0;
}

/* 1 if login already had an attempt for e. */
static int s_tried(const registry_entry_t *e, uint64_t login)
{
    for (uint32_t i = 0; i < e->tried_count; i++)
        if (e->tried[i].login == login)
            return 1;
    return 0;
}

static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_crediter_t *self = arg;
    record_t seen;
    registry_entry_t e;
    if (stage_decode(item->bytes, item->len, &seen, "crediter") != 0 ||
        registry_get(self->ctx->registry, seen.tx_id, &e) != 0 || registry_failed(self->ctx->registry))
        return 0;
    if (e.view.state == DEPOSIT_CREDITED || e.view.state == DEPOSIT_NOTIFIED)
        return s_post_check(self, item, &e);
    if (e.view.state != DEPOSIT_LOCKED)
        return 0;   /* moved on meanwhile */
    if (stage_crediter_of(self->ctx, e.view.login) != self->index)
        return 0;   /* reassigned to a login another worker owns: that worker has it (never two at once) */
    const char *tx = e.view.tx_id;
    uint64_t login = e.view.login;
    char ref[32], err[200] = "";
    crediter_ref(tx, ref);
    if (!s_tried(&e, login) && (e.tried_count >= REGISTRY_MAX_LOGINS || e.tried_overflow)) {
        char reason[160];
        snprintf(reason, sizeof reason, "credit attempts already went to %d logins: a person must decide",
                 REGISTRY_MAX_LOGINS);
        return s_hold(self, tx, reason);
    }

    /* Read first, before every send: an attempt may be missing from the journal (a repair, a
     * restored backup), so the search runs whether or not one is on record. */
    int64_t now = s_now_ms();
    credit_check_t rc;
    switch (s_reconcile(self, &e, ref, now, &rc)) {
    case CREDIT_CHECK_FOUND:
        return s_found(self, &e, ref, &rc);
    case CREDIT_CHECK_REFUSED: {
        char reason[160];
        snprintf(reason, sizeof reason, "cannot reconcile the credit with MT5: %.110s", rc.why);
        return s_hold(self, tx, reason);
    }
    case CREDIT_CHECK_CANNOT_TELL:
        return s_retry(self, item, tx, "reconcile", rc.why);   /* never send on "cannot tell" */
    case CREDIT_CHECK_NOT_THERE:
        break;
    }
    /* Not there yet. After an ambiguous attempt MT5 may still execute it: no send before its settle
     * time has passed, searching again meanwhile. */
    int64_t settle_end = s_settle_end_ms(self, &e);
    if (now < settle_end) {
        int64_t wait = s_meanwhile_ms(self, now, settle_end);
        log_info("crediter.settling", "tx=%s login=%llu attempt=%u left_ms=%lld next_ms=%lld", tx,
                 (unsigned long long) login, e.attempts, (long long) (settle_end - now), (long long) wait);
        return wait;
    }

    if (self->ctx->claims) {   /* cluster mode: the fence on the claim's epoch (actors/claims.h) */
        int64_t wait = claims_crediter_gate(self->ctx, tx);
        if (wait) {
            if (wait >= claims_lease_ms(self->ctx->claims))
                item->key = 0;   /* another node's: this login's other deposits need not wait for it */
            return wait;
        }
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
    registry_entry_t cur;
    if (registry_get(self->ctx->registry, tx, &cur) != 0 || cur.view.state != DEPOSIT_LOCKED ||
        cur.view.login != login || cur.attempts != a.attempt)
        return 0;   /* a person took it meanwhile; the attempt record makes any later credit reconcile */

    if (self->ctx->claims && !claims_may_send(self->ctx->claims, tx)) {
        s_mark_unsent(self, tx, a.attempt);   /* the lease got short since the fence: this call never leaves */
        return s_retry(self, item, tx, "claim", "the claim's lease is too short to send on");
    }
    uint64_t ticket = 0;
    mt5_result_t r = mt5_balance(self->mt5, login, e.view.credit_minor, e.view.digits, ref, &ticket, err,
                                 sizeof err);
    self->last_call_ms = stage_mono_ms();
    switch (r) {
    case MT5_OK:
        s_credited(self, tx, login, ref, ticket);
        if (a.attempt < 2)
            return 0;
        item->key = 0;   /* sent after an ambiguous attempt: check once more a settle time later */
        return self->ctx->mt5_settle_ms;
    case MT5_PERMANENT: {
        char reason[160];
        snprintf(reason, sizeof reason, "MT5 refused the credit (retcode %d): %.100s", mt5_last_retcode(self->mt5),
                 err);
        return s_hold(self, tx, reason);
    }
    case MT5_AMBIGUOUS: {
        int64_t end = a.time_ms + self->ctx->mt5_settle_ms;
        int64_t wait = s_meanwhile_ms(self, s_now_ms(), end);
        log_warn("crediter.ambiguous", "tx=%s login=%llu attempt=%u reason=\"%s\" settle_ms=%lld next=reconcile", tx,
                 (unsigned long long) login, a.attempt, err, (long long) self->ctx->mt5_settle_ms);
        return wait;
    }
    default:   /* TRANSIENT, AUTH_FAILED: the request never left; no settle time needed */
        s_mark_unsent(self, tx, a.attempt);
        return s_retry(self, item, tx, mt5_result_name(r), err);
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
