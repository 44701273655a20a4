/* withdrawer.c — see withdrawer.h. */
#include "actors/withdrawer.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "actors/claims.h"
#include "actors/cobo.h"
#include "actors/credit_check.h"
#include "actors/mt5.h"
#include "actors/wdshared.h"
#include "schema/log.h"

#define S_RETRY_BASE_MS 100
#define S_RETRY_CAP_MS 30000
#define S_PERSON_MS 60000     /* a problem a person must look at: look again this often */
#define S_MEMO 16             /* attempts remembered (never sent / refused) */
#define S_PING_MS 20000

typedef enum { S_DEBIT, S_REFUND } s_op_t;

typedef struct {
    char id[24];
    uint32_t attempt;
    int refund;
} s_memo_t;

typedef struct {
    const stage_ctx_t *ctx;
    mt5_client_t *mt5;
    const withdrawer_cobo_t *cobo;
    void *cobo_state;
    uint64_t rng;
    int64_t last_call_ms;
    int64_t last_poll_ms;
    s_memo_t unsent[S_MEMO], refused[S_MEMO];
    unsigned unsent_next, refused_next;
} s_withdrawer_t;

static _Atomic(const withdrawer_cobo_t *) s_cobo_seam;

void withdrawer_set_cobo(const withdrawer_cobo_t *cobo)
{
    atomic_store(&s_cobo_seam, cobo);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int withdrawer_approvals_needed(const config_t *cfg, const withdrawal_view_t *w)
{
    money_atto_t unit = 1;
    for (int i = 0; i < 18 - w->digits; i++)
        unit *= 10;
    money_atto_t amount = (money_atto_t) (w->amount_minor > 0 ? w->amount_minor : 0) * unit;
    return withdrawal_approvals_needed(amount, cfg->withdraw_auto_limit, cfg->withdraw_dual_limit);
}

static void s_memo(s_memo_t *ring, unsigned *next, const char *id, uint32_t attempt, int refund)
{
    s_memo_t *m = &ring[(*next)++ % S_MEMO];
    snprintf(m->id, sizeof m->id, "%s", id);
    m->attempt = attempt;
    m->refund = refund;
}

static int s_memo_has(const s_memo_t *ring, const char *id, uint32_t attempt, int refund)
{
    for (int i = 0; i < S_MEMO; i++)
        if (ring[i].attempt == attempt && ring[i].refund == refund && strcmp(ring[i].id, id) == 0)
            return 1;
    return 0;
}

static int64_t s_retry(s_withdrawer_t *self, const workq_item_t *item, const char *id, const char *what,
                       const char *why)
{
    int64_t ms = workq_backoff_ms(item->tries, S_RETRY_BASE_MS, S_RETRY_CAP_MS, &self->rng);
    log_warn("withdrawer.retry", "id=%s step=%s try=%u retry_ms=%lld reason=\"%s\"", id, what, item->tries + 1,
             (long long) ms, why);
    return ms;
}

/* Journals an ALERT on withdrawal id (see withdrawer_alert). */
static void s_alert(s_withdrawer_t *self, const char *id, record_alert_t alert, uint64_t login, uint64_t ticket,
                    uint64_t ticket2, const char *reason)
{
    withdrawer_alert(self->ctx->withdrawals, self->ctx->journal, id, alert, login, ticket, ticket2, reason);
}

void withdrawer_alert(withdrawals_t *wd, journal_t *journal, const char *id, record_alert_t alert, uint64_t login,
                      uint64_t ticket, uint64_t ticket2, const char *reason)
{
    record_t r;
    record_init(&r, RECORD_ALERT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", id);
    snprintf(r.alert, sizeof r.alert, "%s", record_alert_name(alert));
    r.login = login;
    r.ticket = ticket;
    r.ticket2 = ticket2;
    snprintf(r.reason, sizeof r.reason, "%s", reason ? reason : "");
    char err[160];
    if (withdrawals_append(wd, journal, &r, err, sizeof err) == REGISTRY_MOVED)
        log_error("withdrawal.alert", "id=%s alert=%s login=%llu ticket=%llu ticket2=%llu reason=\"%s\"", id, r.alert,
                  (unsigned long long) login, (unsigned long long) ticket, (unsigned long long) ticket2, r.reason);
}

void withdrawer_alert_of(withdrawals_t *wd, journal_t *journal, const record_t *r, registry_result_t res)
{
    record_alert_t a = RECORD_ALERT_TRANSFER_FAILED;
    if (r->wevent == WITHDRAWAL_EV_TRANSFER_DONE)
        a = res == REGISTRY_MOVED ? RECORD_ALERT_COMPLETED_AFTER_REJECTED : RECORD_ALERT_TRANSFER_AFTER_REFUND;
    else if (r->wevent == WITHDRAWAL_EV_TRANSFER_FAILED && res == REGISTRY_SAME)
        a = RECORD_ALERT_FAILED_AFTER_CREDIT;
    char why[160];
    snprintf(why, sizeof why, "%s: Cobo says %.32s%s%.90s", withdrawal_event_name(r->wevent),
             r->status[0] ? r->status : "-", r->reason[0] ? "; " : "", r->reason);
    withdrawer_alert(wd, journal, r->tx_id, a, r->login, 0, 0, why);
}

/* Journals event ev on w (with the fields r already holds); logs a refusal. The result. */
static registry_result_t s_commit(s_withdrawer_t *self, record_t *r)
{
    char err[200] = "";
    unsigned fx = 0;
    registry_result_t res = withdrawals_commit(self->ctx->withdrawals, self->ctx->journal, r, &fx, err, sizeof err);
    if (res != REGISTRY_MOVED && res != REGISTRY_SAME)
        log_warn("withdrawer.skipped", "id=%s event=%s reason=\"%s\"", r->tx_id, withdrawal_event_name(r->wevent), err);
    if (fx & WITHDRAWAL_EFFECT_ALERT)
        withdrawer_alert_of(self->ctx->withdrawals, self->ctx->journal, r, res);
    return res;
}

/* ---- cluster mode: the claim, the shared document, the fence --------------------------------------- */

/* Before anything is done on w in cluster mode (KASA_CLUSTER=on, actors/wdshared.h): this node holds
 * w's claim, and MongoDB's document says what this node's journal says. A document another holder
 * wrote (or this node on an older epoch: a claim lost and taken back) is the truth: it is learned
 * first, and the withdrawer then reconciles as after a restart (MT5 searched by reference, Cobo by
 * request_id; the claim's settle time after a take-over keeps every send back meanwhile). A document
 * this node wrote on its epoch is behind or equal: this node's state is written over it. 0: go on
 * (*w current); -1: nothing to do on this node (another node's live claim, a final one, or a newer
 * holder wrote the document); > 0: MongoDB did not answer, look again then (never decided on a guess). */
static int64_t s_gate(s_withdrawer_t *self, workq_item_t *item, withdrawal_view_t *w)
{
    claims_t *claims = self->ctx->claims;
    char holder[64] = "", err[200] = "";
    claims_result_t r = claims_acquire(claims, w->id, 0, holder);
    if (r == CLAIMS_HELD_ELSEWHERE || r == CLAIMS_FINAL) {
        log_info("withdrawer.elsewhere", "id=%s holder=%s final=%d", w->id, holder, r == CLAIMS_FINAL);
        return -1;
    }
    int32_t epoch = r == CLAIMS_HELD ? claims_epoch(claims, w->id) : 0;
    if (!epoch)
        return s_retry(self, item, w->id, "claim", "MongoDB did not answer");
    withdrawal_view_t doc;
    char node[64];
    int32_t doc_epoch = 0;
    int rc = wdshared_get(self->ctx->wdshared, w->id, &doc, node, &doc_epoch);
    if (rc < 0)
        return s_retry(self, item, w->id, "shared", "MongoDB did not answer: the withdrawal waits");
    if (rc == 1 && (strcmp(node, claims_node(claims)) != 0 || doc_epoch != epoch)) {
        registry_result_t lr = withdrawals_learn(self->ctx->withdrawals, self->ctx->journal, &doc, node, err, sizeof err);
        if (lr != REGISTRY_MOVED && lr != REGISTRY_SAME)
            return s_retry(self, item, w->id, "learn", err);
        if (withdrawals_get(self->ctx->withdrawals, w->id, w) != 0)
            return -1;
        log_info("withdrawer.adopted", "id=%s state=%s from=%s doc_epoch=%d epoch=%d", w->id,
                 withdrawal_state_name(w->state), node, doc_epoch, epoch);
    }
    int put = wdshared_put(self->ctx->wdshared, w, epoch);
    if (put == 0)
        return -1;
    if (put < 0)
        return s_retry(self, item, w->id, "shared", "MongoDB did not answer: the withdrawal waits");
    if (withdrawals_final(w->state)) {
        claims_release(claims, w->id);
        return -1;
    }
    return 0;
}

/* After the step on w (its state before it: before): the new state written to MongoDB, and the claim
 * released once final. next: what the step asked; a document MongoDB did not take is written by the
 * next pass's gate before anything else happens. */
static int64_t s_publish(s_withdrawer_t *self, const char *id, withdrawal_state_t before, int64_t next)
{
    withdrawal_view_t w;
    int32_t epoch = claims_epoch(self->ctx->claims, id);
    if (!epoch || withdrawals_get(self->ctx->withdrawals, id, &w) != 0 || w.state == before)
        return next;
    int put = wdshared_put(self->ctx->wdshared, &w, epoch);
    if (put < 0)
        return next > 0 && next < S_RETRY_CAP_MS ? next : 1000;   /* the gate writes it first */
    if (put == 1 && withdrawals_final(w.state))
        claims_release(self->ctx->claims, id);
    return next;
}

/* The fence immediately before an MT5 balance call or a Cobo transfer request on id: 0 send now; -1
 * the claim is lost (never send on it: drop); > 0 wait that long (the settle time after a take-over,
 * a lease too short to send on, MongoDB not answering). */
static int64_t s_fence(s_withdrawer_t *self, const char *id)
{
    if (!self->ctx->claims)
        return 0;
    int64_t wait = 0;
    char holder[64] = "";
    claims_fence_t f = claims_fence(self->ctx->claims, id, &wait, holder);
    if (f == CLAIMS_SEND)
        return 0;
    log_info("withdrawer.fenced", "id=%s answer=%s wait_ms=%lld holder=%s", id, claims_fence_name(f), (long long) wait,
             holder[0] ? holder : "-");
    if (f == CLAIMS_LOST)
        return -1;
    return wait > 0 ? wait : 1;
}

/* The last check, with no I/O, just before the request leaves: 1 may send. */
static int s_may_send(s_withdrawer_t *self, const char *id)
{
    return !self->ctx->claims || claims_may_send(self->ctx->claims, id);
}

/* ---- MT5: the debit and the refund ---------------------------------------------------------------- */

/* The withdrawal's op as the crediter's search sees a deposit: one login, the signed amount, the
 * attempts and their times, the reference. */
static void s_as_entry(const withdrawal_view_t *w, s_op_t op, const char *ref, registry_entry_t *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->view.tx_id, sizeof e->view.tx_id, "%s", w->id);
    e->view.login = w->login;
    e->view.credit_minor = op == S_REFUND ? w->amount_minor : -w->amount_minor;
    e->view.digits = w->digits;
    e->view.created_ms = w->created_ms;
    e->attempts = op == S_REFUND ? w->refund_attempts : w->debit_attempts;
    e->first_attempt_ms = op == S_REFUND ? w->refund_first_ms : w->debit_first_ms;
    e->last_attempt_ms = op == S_REFUND ? w->refund_last_ms : w->debit_last_ms;
    if (e->attempts) {
        snprintf(e->ref, sizeof e->ref, "%s", ref);
        e->attempt_login = w->login;
        e->tried[0] = (registry_tried_t) { w->login, e->view.credit_minor, w->digits, e->first_attempt_ms,
                                           e->last_attempt_ms };
        e->tried_count = 1;
    }
}

/* The op's outcome event: the deal exists (ticket). */
static int64_t s_mt5_done(s_withdrawer_t *self, const withdrawal_view_t *w, s_op_t op, uint64_t ticket)
{
    record_t r;
    withdrawals_event_record(&r, w->id, op == S_REFUND ? WITHDRAWAL_EV_REFUND_OK : WITHDRAWAL_EV_DEBIT_OK, NULL);
    r.ticket = ticket;
    withdrawal_debit_ref(w->id, r.ref);
    if (op == S_REFUND)
        withdrawal_refund_ref(w->id, r.ref);
    s_commit(self, &r);
    return op == S_DEBIT ? 1 : 0;   /* a debit goes on to its approval */
}

static int64_t s_debit_refused(s_withdrawer_t *self, const withdrawal_view_t *w, const char *why)
{
    record_t r;
    withdrawals_event_record(&r, w->id, WITHDRAWAL_EV_DEBIT_REFUSED, why);
    s_commit(self, &r);
    return 0;
}

static int64_t s_mt5_op(s_withdrawer_t *self, workq_item_t *item, const withdrawal_view_t *w, s_op_t op)
{
    const char *what = op == S_REFUND ? "refund" : "debit";
    char ref[32], err[200] = "";
    if (op == S_REFUND)
        withdrawal_refund_ref(w->id, ref);
    else
        withdrawal_debit_ref(w->id, ref);
    registry_entry_t e;
    s_as_entry(w, op, ref, &e);
    int64_t now = s_now_ms();
    /* Read first, before every send: an attempt may be missing from the journal. */
    credit_check_t rc;
    credit_check_answer_t a = credit_check_run(self->mt5, &e, ref, now, &rc);
    self->last_call_ms = stage_mono_ms();
    log_info("withdrawer.reconciled", "id=%s op=%s login=%llu ref=\"%s\" attempts=%u answer=%s matches=%d ticket=%llu",
             w->id, what, (unsigned long long) w->login, ref, e.attempts, credit_check_answer_name(a), rc.matches,
             (unsigned long long) rc.deal.ticket);
    switch (a) {
    case CREDIT_CHECK_FOUND:
        if (rc.ticket2 && w->alert_count == 0)
            s_alert(self, w->id, RECORD_ALERT_DOUBLE_DEBIT, w->login, rc.deal.ticket, rc.ticket2,
                    "two balance deals carry this withdrawal's reference");
        if (rc.mismatch) {
            if (w->alert_count == 0)
                s_alert(self, w->id, RECORD_ALERT_DEAL_MISMATCH, rc.login, rc.deal.ticket, 0, rc.why);
            return S_PERSON_MS;   /* never moved on a deal that is not what was sent */
        }
        return s_mt5_done(self, w, op, rc.deal.ticket);
    case CREDIT_CHECK_REFUSED:
    case CREDIT_CHECK_CANNOT_TELL:
        return s_retry(self, item, w->id, "reconcile", rc.why);   /* never send on "cannot tell" */
    case CREDIT_CHECK_NOT_THERE:
        break;
    }
    int refund = op == S_REFUND;
    int unsent = s_memo_has(self->unsent, w->id, e.attempts, refund);
    int64_t settle_end = e.attempts && !unsent ? e.last_attempt_ms + self->ctx->mt5_settle_ms : 0;
    if (now < settle_end)
        return settle_end - now < self->ctx->mt5_settle_ms / 5 + 1 ? settle_end - now : self->ctx->mt5_settle_ms / 5 + 1;
    /* MT5 refused the last attempt and every earlier one has settled without a deal: refused. */
    if (!refund && e.attempts && s_memo_has(self->refused, w->id, e.attempts, 0))
        return s_debit_refused(self, w, "MT5 refused the debit");
    int64_t fence = s_fence(self, w->id);   /* cluster mode: the claim, right before the send */
    if (fence)
        return fence < 0 ? 0 : fence;

    record_t at;
    record_init(&at, RECORD_WITHDRAWAL_ATTEMPT);
    snprintf(at.tx_id, sizeof at.tx_id, "%s", w->id);
    snprintf(at.action, sizeof at.action, "%s", what);
    snprintf(at.ref, sizeof at.ref, "%s", ref);
    at.login = w->login;
    at.credit_minor = e.view.credit_minor;
    at.digits = w->digits;
    at.attempt = e.attempts + 1;
    if (withdrawals_append(self->ctx->withdrawals, self->ctx->journal, &at, err, sizeof err) != REGISTRY_MOVED) {
        log_warn("withdrawer.skipped", "id=%s step=%s_attempt reason=\"%s\"", w->id, what, err);
        return 0;   /* not durable: never call MT5 */
    }
    if (!s_may_send(self, w->id)) {   /* the lease grew short since the fence: this attempt never leaves */
        s_memo(self->unsent, &self->unsent_next, w->id, at.attempt, refund);
        return s_retry(self, item, w->id, what, "the claim's lease is too short to send on");
    }
    uint64_t ticket = 0;
    mt5_result_t r = mt5_balance(self->mt5, w->login, e.view.credit_minor, w->digits, ref, &ticket, err, sizeof err);
    self->last_call_ms = stage_mono_ms();
    switch (r) {
    case MT5_OK:
        return s_mt5_done(self, w, op, ticket);
    case MT5_PERMANENT: {
        char reason[160];
        snprintf(reason, sizeof reason, "MT5 refused the %s (retcode %d): %.100s", what, mt5_last_retcode(self->mt5),
                 err);
        if (!refund && at.attempt == 1)
            return s_debit_refused(self, w, reason);   /* the only attempt, refused: nothing moved */
        if (!refund) {
            /* An earlier attempt was ambiguous: it may still execute. Refused only after it settles. */
            s_memo(self->refused, &self->refused_next, w->id, at.attempt, 0);
            return self->ctx->mt5_settle_ms;
        }
        if (w->alert_count == 0)
            s_alert(self, w->id, RECORD_ALERT_CREDIT_NOT_RECORDED, w->login, 0, 0, reason);
        log_error("withdrawer.refund_refused", "id=%s login=%llu reason=\"%s\"", w->id, (unsigned long long) w->login,
                  reason);
        return S_PERSON_MS;
    }
    case MT5_AMBIGUOUS:
        log_warn("withdrawer.ambiguous", "id=%s op=%s login=%llu attempt=%u reason=\"%s\" next=reconcile", w->id, what,
                 (unsigned long long) w->login, at.attempt, err);
        return self->ctx->mt5_settle_ms / 5 + 1;
    default:   /* TRANSIENT, AUTH_FAILED: the request never left */
        s_memo(self->unsent, &self->unsent_next, w->id, at.attempt, refund);
        return s_retry(self, item, w->id, mt5_result_name(r), err);
    }
}

/* ---- Cobo: the transfer ------------------------------------------------------------------------------ */

/* Journals what Cobo says of w's current transfer (answer a). SAME for a status that moves nothing. */
static void s_cobo_said(s_withdrawer_t *self, const withdrawal_view_t *w, const withdrawer_answer_t *a)
{
    record_t r;
    withdrawals_event_record(&r, w->id, withdrawals_cobo_event(a->status), NULL);
    snprintf(r.cobo_id, sizeof r.cobo_id, "%s", a->cobo_id);
    snprintf(r.status, sizeof r.status, "%s", a->status);
    snprintf(r.tx_hash, sizeof r.tx_hash, "%s", a->tx_hash);
    snprintf(r.request_id, sizeof r.request_id, "%s", w->request_id);
    if (r.wevent == WITHDRAWAL_EV_TRANSFER_FAILED)
        snprintf(r.reason, sizeof r.reason, "Cobo says %.30s for %.60s", a->status, w->request_id);
    /* Pending after Pending changes no state; one after APPROVED moves it to SENT. */
    s_commit(self, &r);
}

static int64_t s_transfer(s_withdrawer_t *self, workq_item_t *item, const withdrawal_view_t *w)
{
    if (!self->cobo)
        return s_retry(self, item, w->id, "transfer", "no Cobo client (see withdrawer.no_cobo)");
    withdrawer_answer_t ans;
    if (w->transfer_attempts > 0 || self->ctx->claims) {
        /* An earlier attempt may have reached Cobo: find it before anything is sent again (in cluster
         * mode always: another node may have sent it, and this journal does not know). */
        memset(&ans, 0, sizeof ans);
        withdrawer_find_t f = self->cobo->find(self->cobo_state, w->request_id, &ans);
        if (f == WITHDRAWER_FIND_FOUND) {
            s_cobo_said(self, w, &ans);
            return 0;
        }
        if (f == WITHDRAWER_FIND_CANNOT_TELL)
            return s_retry(self, item, w->id, "find", ans.message[0] ? ans.message : "Cobo did not answer");
        /* Not there: sending again under the same request_id is safe (Cobo refuses a second one). */
    }
    int64_t fence = s_fence(self, w->id);   /* cluster mode: the claim, right before the request */
    if (fence)
        return fence < 0 ? 0 : fence;
    record_t at;
    record_init(&at, RECORD_WITHDRAWAL_ATTEMPT);
    snprintf(at.tx_id, sizeof at.tx_id, "%s", w->id);
    snprintf(at.action, sizeof at.action, "transfer");
    snprintf(at.request_id, sizeof at.request_id, "%s", w->request_id);
    snprintf(at.address, sizeof at.address, "%s", w->address);
    snprintf(at.amount, sizeof at.amount, "%s", w->amount);
    snprintf(at.token_id, sizeof at.token_id, "%s", w->token_id);
    at.login = w->login;
    at.attempt = w->transfer_attempts + 1;
    char err[200] = "";
    if (withdrawals_append(self->ctx->withdrawals, self->ctx->journal, &at, err, sizeof err) != REGISTRY_MOVED) {
        log_warn("withdrawer.skipped", "id=%s step=transfer_attempt reason=\"%s\"", w->id, err);
        return 0;   /* not durable: never call Cobo */
    }
    if (!s_may_send(self, w->id))
        return s_retry(self, item, w->id, "transfer", "the claim's lease is too short to send on");
    memset(&ans, 0, sizeof ans);
    withdrawer_create_t c = self->cobo->create(self->cobo_state, self->ctx->cfg, w, &ans);
    log_info("withdrawer.transfer", "id=%s request_id=%s attempt=%u answer=%d cobo_id=%s status=%s", w->id,
             w->request_id, at.attempt, (int) c, ans.cobo_id, ans.status);
    switch (c) {
    case WITHDRAWER_COBO_CREATED:
        if (!ans.status[0])
            snprintf(ans.status, sizeof ans.status, "Submitted");
        s_cobo_said(self, w, &ans);
        return 0;
    case WITHDRAWER_COBO_REFUSED: {
        record_t r;
        char reason[160];
        snprintf(reason, sizeof reason, "Cobo refused the transfer: %.120s", ans.message);
        withdrawals_event_record(&r, w->id, WITHDRAWAL_EV_TRANSFER_REFUSED, reason);
        s_commit(self, &r);
        return 0;
    }
    case WITHDRAWER_COBO_EXISTS:   /* the first request exists: the next pass finds it, never a new id */
    case WITHDRAWER_COBO_BUSY:
    case WITHDRAWER_COBO_UNKNOWN:
    default:
        return s_retry(self, item, w->id, "transfer", ans.message[0] ? ans.message : "look the request up");
    }
}

/* A sent transfer: ask Cobo how it stands; again after KASA_WITHDRAW_POLL_S while not final. */
static int64_t s_poll(s_withdrawer_t *self, workq_item_t *item, const withdrawal_view_t *w)
{
    if (!self->cobo)
        return 0;
    withdrawer_answer_t ans;
    memset(&ans, 0, sizeof ans);
    withdrawer_find_t f = self->cobo->find(self->cobo_state, w->request_id, &ans);
    if (f == WITHDRAWER_FIND_FOUND)
        s_cobo_said(self, w, &ans);
    else if (f == WITHDRAWER_FIND_CANNOT_TELL)
        return s_retry(self, item, w->id, "poll", ans.message[0] ? ans.message : "Cobo did not answer");
    else
        log_error("withdrawer.transfer_missing", "id=%s request_id=%s cobo_id=%s", w->id, w->request_id, w->cobo_id);
    (void) item;
    return 0;   /* the schedule asks again while it is SENT */
}

/* The step w's state asks for. */
static int64_t s_step(s_withdrawer_t *self, workq_item_t *item, withdrawal_view_t *wp)
{
    withdrawal_view_t w = *wp;
    switch (w.state) {
    case WITHDRAWAL_REQUESTED: return s_mt5_op(self, item, &w, S_DEBIT);
    case WITHDRAWAL_REFUNDING: return s_mt5_op(self, item, &w, S_REFUND);
    case WITHDRAWAL_APPROVED: return s_transfer(self, item, &w);
    case WITHDRAWAL_SENT: return s_poll(self, item, &w);
    case WITHDRAWAL_DEBITED:
        if (withdrawer_approvals_needed(self->ctx->cfg, &w) == 0) {
            record_t r;
            withdrawals_event_record(&r, w.id, WITHDRAWAL_EV_APPROVE, "under the approval limit");
            snprintf(r.actor, sizeof r.actor, "kasa");
            s_commit(self, &r);
            item->tries = 0;
            return 1;   /* on to the transfer */
        }
        return 0;       /* waits for people */
    default:
        return 0;
    }
}

static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_withdrawer_t *self = arg;
    record_t seen;
    char why[128];
    withdrawal_view_t w;
    if (record_decode(item->bytes, item->len, &seen, why, sizeof why) != 0 ||
        withdrawals_get(self->ctx->withdrawals, seen.tx_id, &w) != 0 || withdrawals_failed(self->ctx->withdrawals))
        return 0;
    if (!self->ctx->claims || !self->ctx->wdshared)
        return s_step(self, item, &w);
    int64_t gate = s_gate(self, item, &w);
    if (gate)
        return gate < 0 ? 0 : gate;
    return s_publish(self, w.id, w.state, s_step(self, item, &w));
}

/* Orders the withdrawer's work by MT5 login. */
static uint64_t s_key(void *arg, const uint8_t *bytes, size_t len)
{
    (void) arg;
    record_t r;
    char why[96];
    return record_decode(bytes, len, &r, why, sizeof why) == 0 ? r.login : 0;
}

typedef struct {
    workq_t *q;
    claims_t *claims;
} s_poll_ctx_t;

static void s_queue_sent(void *arg, const withdrawal_view_t *w)
{
    s_poll_ctx_t *p = arg;
    if (w->state != WITHDRAWAL_SENT || workq_full(p->q))
        return;
    if (p->claims && !claims_epoch(p->claims, w->id))
        return;   /* cluster mode: its holder polls it (wdshared hands over one whose lease ran out) */
    record_t r;
    withdrawals_event_record(&r, w->id, WITHDRAWAL_EV_TRANSFER_SENT, NULL);
    r.wfrom = r.wto = w->state;
    r.login = w->login;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[96];
    if (record_encode(&r, &bytes, &len, err, sizeof err) == 0)
        workq_push(p->q, bytes, len, 0, stage_mono_ms());
    free(bytes);
}

static int64_t s_idle(void *arg, workq_t *q, int64_t now_ms)
{
    s_withdrawer_t *self = arg;
    int64_t poll_ms = 1000LL * (self->ctx->cfg->withdraw_poll_s > 0 ? self->ctx->cfg->withdraw_poll_s : 60);
    if (now_ms - self->last_poll_ms >= poll_ms) {
        self->last_poll_ms = now_ms;
        s_poll_ctx_t p = { q, self->ctx->claims };
        withdrawals_each(self->ctx->withdrawals, 0, 0, s_queue_sent, &p);
    }
    int64_t next = poll_ms - (now_ms - self->last_poll_ms);
    if (mt5_auth_count(self->mt5) > 0 && now_ms - self->last_call_ms >= S_PING_MS) {
        char err[160] = "";
        mt5_ping(self->mt5, err, sizeof err);
        self->last_call_ms = stage_mono_ms();
    }
    return next < S_PING_MS ? next : S_PING_MS;
}

/* ---- the default seam: Cobo's transfer calls (actors/cobo.h) ------------------------------------------ */

static void *s_cobo_open(const config_t *cfg, int *failed, char *err, size_t errlen)
{
    cobo_client_t *c = cobo_client_new(cfg->cobo_api_url, cfg->cobo_api_key, cfg->cobo_api_secret,
                                       cfg->cobo_webhook_pubkey, config_cobo_timeout_ms(cfg), err, errlen);
    *failed = c == NULL;
    return c;
}

static void s_cobo_close(void *state)
{
    cobo_client_t *c = state;
    cobo_client_destroy(&c);
}

static withdrawer_create_t s_cobo_create(void *state, const config_t *cfg, const withdrawal_view_t *w,
                                         withdrawer_answer_t *out)
{
    cobo_transfer_t t = {
        .request_id = w->request_id, .wallet_id = cfg->cobo_withdraw_wallet_id,
        .source_address = cfg->cobo_withdraw_address, .token_id = w->token_id, .address = w->address,
        .amount = w->amount, .description = w->id,
    };
    cobo_transfer_result_t r;
    memset(&r, 0, sizeof r);
    cobo_transfer_outcome_t o = cobo_transfer(state, &t, &r);
    snprintf(out->cobo_id, sizeof out->cobo_id, "%s", r.transaction_id);
    snprintf(out->status, sizeof out->status, "%s", r.status);
    snprintf(out->message, sizeof out->message, "%s", r.message);
    switch (o) {
    case COBO_TRANSFER_CREATED: return WITHDRAWER_COBO_CREATED;
    case COBO_TRANSFER_DUPLICATE: return WITHDRAWER_COBO_EXISTS;
    case COBO_TRANSFER_REFUSED: return r.rate_limited ? WITHDRAWER_COBO_BUSY : WITHDRAWER_COBO_REFUSED;
    case COBO_TRANSFER_INVALID: return WITHDRAWER_COBO_REFUSED;   /* nothing was sent */
    default: return WITHDRAWER_COBO_UNKNOWN;
    }
}

static withdrawer_find_t s_cobo_find(void *state, const char *request_id, withdrawer_answer_t *out)
{
    cobo_tx_t tx;
    memset(&tx, 0, sizeof tx);
    cobo_find_t f = cobo_find_transfer(state, request_id, &tx, out->message, sizeof out->message);
    if (f != COBO_FIND_FOUND)
        return f == COBO_FIND_NOT_THERE ? WITHDRAWER_FIND_NOT_THERE : WITHDRAWER_FIND_CANNOT_TELL;
    snprintf(out->cobo_id, sizeof out->cobo_id, "%s", tx.tx_id);
    snprintf(out->status, sizeof out->status, "%s", tx.status);
    snprintf(out->tx_hash, sizeof out->tx_hash, "%s", tx.tx_hash);
    return WITHDRAWER_FIND_FOUND;
}

static const withdrawer_cobo_t s_cobo_default = { s_cobo_open, s_cobo_close, s_cobo_create, s_cobo_find };

static int s_init(void *state, const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    (void) index;
    s_withdrawer_t *self = state;
    const config_t *cfg = ctx->cfg;
    self->ctx = ctx;
    self->rng = stage_seed(self);
    self->last_call_ms = self->last_poll_ms = stage_mono_ms();
    if (!ctx->withdrawals) {
        snprintf(err, errlen, "withdrawer: no withdrawals registry");
        return -1;
    }
    self->mt5 = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                               (long) ctx->mt5_timeout_ms);
    if (!self->mt5) {
        snprintf(err, errlen, "withdrawer: MT5 client: bad MT5_URL or credentials");
        return -1;
    }
    self->cobo = atomic_load(&s_cobo_seam);
    if (!self->cobo)
        self->cobo = &s_cobo_default;
    if (self->cobo->open) {
        int failed = 0;
        char why[200] = "";
        self->cobo_state = self->cobo->open(cfg, &failed, why, sizeof why);
        if (failed) {
            /* Deposits go on; withdrawals wait for their transfer (logged on every try). */
            log_error("withdrawer.no_cobo", "reason=\"%s\" action=\"transfers wait; check COBO_*\"", why);
            self->cobo = NULL;
        }
    }
    return 0;
}

static void s_destroy(void *state)
{
    s_withdrawer_t *self = state;
    if (self->cobo && self->cobo->close)
        self->cobo->close(self->cobo_state);
    mt5_client_destroy(&self->mt5);
}

static const stage_def_t s_def = {
    .kind = STAGE_WITHDRAWER, .name = "withdrawer", .ops = { s_handle, s_key, s_idle, NULL },
    .state_size = sizeof(s_withdrawer_t), .init = s_init, .destroy = s_destroy,
};

zactor_t *withdrawer_new(const stage_ctx_t *ctx, char *err, size_t errlen)
{
    return stage_actor_new(ctx, &s_def, 0, err, errlen);
}
