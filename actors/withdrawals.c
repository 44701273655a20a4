/* withdrawals.c — see withdrawals.h. Withdrawals in a czmq hash (id → entry) plus a vector in
 * arrival order (for "newest first" listings). One function, s_apply_locked(), turns a record into
 * memory, for replay and for live commits alike. */
#include "actors/withdrawals.h"

#include <czmq.h>
#undef LOG_DEBUG
#undef LOG_INFO
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/log.h"
#include "schema/money.h"
#include <inttypes.h>

/* Copies src into the array dst, cut to fit (every field's width is checked when it is journaled). */
#define S_COPY(dst, src) s_copy((dst), sizeof(dst), (src))

static void s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

struct withdrawals_t {
    pthread_mutex_t lock;
    size_t max;
    zhashx_t *by_id;              /* id → withdrawal_view_t * (owned by entries[]) */
    withdrawal_view_t **entries;  /* arrival order */
    size_t count, cap;
    atomic_int failed;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

withdrawals_t *withdrawals_new(size_t max)
{
    withdrawals_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_id = zhashx_new();
    if (!self->by_id) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->max = max ? max : 1;
    return self;
}

void withdrawals_destroy(withdrawals_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    withdrawals_t *self = *self_p;
    zhashx_destroy(&self->by_id);
    for (size_t i = 0; i < self->count; i++)
        free(self->entries[i]);
    free(self->entries);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int withdrawals_owns(const record_t *r)
{
    return r->kind == RECORD_WITHDRAWAL || r->kind == RECORD_WITHDRAWAL_ATTEMPT ||
           ((r->kind == RECORD_ADMIN_ACTION || r->kind == RECORD_ALERT) && withdrawal_id_valid(r->tx_id));
}

static withdrawal_view_t *s_find(withdrawals_t *self, const char *id)
{
    return zhashx_lookup(self->by_id, id);
}

static withdrawal_view_t *s_create(withdrawals_t *self, const char *id)
{
    if (self->count >= self->max)
        return NULL;
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        withdrawal_view_t **grown = realloc(self->entries, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->entries = grown;
        self->cap = cap;
    }
    withdrawal_view_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    S_COPY(w->id, id);
    if (zhashx_insert(self->by_id, w->id, w) != 0) {
        free(w);
        return NULL;
    }
    self->entries[self->count++] = w;
    return w;
}

int withdrawals_learned(const record_t *r)
{
    return r->kind == RECORD_WITHDRAWAL && strcmp(r->actor, WITHDRAWALS_LEARNED_ACTOR) == 0;
}

/* A learned record (withdrawals_learn) sets what the holder's document said: the transfer number
 * (attempt) and its request_id, Cobo's fields, the tickets (ticket: the debit, ticket2: the refund),
 * who asked (requester) and who approved (approver, approver2: added to those known here). */
static void s_apply_learned(withdrawal_view_t *w, const record_t *r)
{
    if (r->attempt != w->transfers)
        w->transfer_attempts = 0;
    w->transfers = r->attempt;
    S_COPY(w->request_id, r->request_id);
    S_COPY(w->cobo_id, r->cobo_id);
    S_COPY(w->cobo_status, r->status);
    S_COPY(w->tx_hash, r->tx_hash);
    w->debit_ticket = r->ticket;
    w->refund_ticket = r->ticket2;
    if (r->requester[0])
        S_COPY(w->actor, r->requester);
    const char *names[] = { r->approver, r->approver2 };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int known = !names[i][0];
        for (uint32_t j = 0; j < w->approvals && j < WITHDRAWALS_MAX_APPROVERS && !known; j++)
            known = strcmp(w->approvers[j], names[i]) == 0;
        if (known)
            continue;
        if (w->approvals < WITHDRAWALS_MAX_APPROVERS)
            S_COPY(w->approvers[w->approvals], names[i]);
        w->approvals++;
    }
}

static void s_apply_transition(withdrawal_view_t *w, const record_t *r)
{
    int moved = w->state != r->wto;
    int learned = withdrawals_learned(r);
    w->state = r->wto;
    if (r->login) w->login = r->login;
    if (r->token_id[0]) S_COPY(w->token_id, r->token_id);
    if (r->chain_id[0]) S_COPY(w->chain_id, r->chain_id);
    if (r->address[0]) S_COPY(w->address, r->address);
    if (r->amount[0]) S_COPY(w->amount, r->amount);
    if (r->fee[0]) S_COPY(w->fee, r->fee);
    if (r->credit_minor) {
        w->amount_minor = r->credit_minor;
        w->digits = r->digits;
    }
    if (r->currency[0]) S_COPY(w->currency, r->currency);
    if (r->wevent == WITHDRAWAL_EV_REQUEST && (!learned || !w->actor[0])) {
        S_COPY(w->actor, r->actor);
        S_COPY(w->origin, r->origin);
    }
    if (!learned && (r->wevent == WITHDRAWAL_EV_APPROVE || r->wevent == WITHDRAWAL_EV_RETRANSFER)) {
        /* A new transfer: its number and request_id; Cobo's answers about the last one are history. */
        w->transfers++;
        withdrawal_request_id(w->id, w->transfers, w->request_id);
        w->transfer_attempts = 0;
        w->cobo_id[0] = w->cobo_status[0] = w->tx_hash[0] = '\0';
    }
    if (r->cobo_id[0]) S_COPY(w->cobo_id, r->cobo_id);
    if (r->status[0]) S_COPY(w->cobo_status, r->status);
    if (r->tx_hash[0]) S_COPY(w->tx_hash, r->tx_hash);
    if (r->ticket && r->wevent == WITHDRAWAL_EV_DEBIT_OK && !learned) w->debit_ticket = r->ticket;
    if (r->ticket && r->wevent == WITHDRAWAL_EV_REFUND_OK && !learned) w->refund_ticket = r->ticket;
    if (moved || r->reason[0])
        S_COPY(w->reason, r->reason);
    if (!w->created_ms)
        w->created_ms = r->time_ms;
    w->updated_ms = r->time_ms;
    if (learned)
        s_apply_learned(w, r);   /* exactly what the holder's document said */
}

static void s_apply_attempt(withdrawal_view_t *w, const record_t *r)
{
    if (strcmp(r->action, "transfer") == 0) {
        if (r->attempt > w->transfer_attempts)
            w->transfer_attempts = r->attempt;
        return;
    }
    int refund = strcmp(r->action, "refund") == 0;
    uint32_t *n = refund ? &w->refund_attempts : &w->debit_attempts;
    int64_t *first = refund ? &w->refund_first_ms : &w->debit_first_ms;
    int64_t *last = refund ? &w->refund_last_ms : &w->debit_last_ms;
    if (r->attempt > *n)
        *n = r->attempt;
    if (!*first)
        *first = r->time_ms;
    *last = r->time_ms;
}

static void s_apply_admin(withdrawal_view_t *w, const record_t *r)
{
    if (strcmp(r->action, "approve") != 0)
        return;
    for (uint32_t i = 0; i < w->approvals; i++)
        if (strcmp(w->approvers[i], r->actor) == 0)
            return;
    if (w->approvals < WITHDRAWALS_MAX_APPROVERS)
        S_COPY(w->approvers[w->approvals], r->actor);
    w->approvals++;
}

static int s_apply_locked(withdrawals_t *self, const record_t *r, uint64_t lsn)
{
    if (!withdrawals_owns(r) || !r->tx_id[0])
        return 0;
    withdrawal_view_t *w = s_find(self, r->tx_id);
    if (!w) {
        if (r->kind != RECORD_WITHDRAWAL)
            return 0;
        w = s_create(self, r->tx_id);
        if (!w)
            return -1;
    }
    switch (r->kind) {
    case RECORD_WITHDRAWAL: s_apply_transition(w, r); break;
    case RECORD_WITHDRAWAL_ATTEMPT: s_apply_attempt(w, r); break;
    case RECORD_ADMIN_ACTION: s_apply_admin(w, r); break;
    case RECORD_ALERT:
        w->alert_count++;
        S_COPY(w->alert, r->alert);
        break;
    default: break;
    }
    if (lsn && (!w->first_lsn || lsn < w->first_lsn))
        w->first_lsn = lsn;
    if (lsn > w->last_lsn)
        w->last_lsn = lsn;
    return 0;
}

int withdrawals_apply(withdrawals_t *self, const record_t *r, uint64_t lsn)
{
    pthread_mutex_lock(&self->lock);
    int rc = s_apply_locked(self, r, lsn);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* ---- snapshot section ------------------------------------------------------------------------------ */

/* The layout withdrawals_save writes: bump it when the fields below change. withdrawals_load reads it
 * and the older layouts s_layout_has names (a bump adds a case there). */
#define S_PICKLE_LAYOUT 2u

#define S_HAS_FIRST_LSN 1   /* each withdrawal's first LSN (without it: 1, its timeline read from the start) */

/* What a withdrawal of a layout withdrawals_load reads holds beyond the fields every one has; -1 for
 * a layout it does not read (a newer kasa's). */
static int s_layout_has(uint32_t layout)
{
    switch (layout) {
    case 1: return 0;
    case 2: return S_HAS_FIRST_LSN;
    default: return -1;
    }
}

/* Every field of a withdrawal, in one order, for both directions (journal/snapshot.h). A field added
 * to withdrawal_view_t must be added here, or a start from a snapshot would lose it (test_checkpoint
 * proves start-from-snapshot equals start-from-journal byte for byte). */
static void s_pickle(snap_pk_t *p, withdrawal_view_t *w, int has)
{
    SNAP_PK_STR(p, w->id);
    int state = (int) w->state;
    snap_pk_int(p, &state);
    if (state < 0 || state >= WITHDRAWAL_STATE_COUNT)
        p->bad = 1;
    w->state = (withdrawal_state_t) state;
    snap_pk_u64(p, &w->login);
    SNAP_PK_STR(p, w->token_id);
    SNAP_PK_STR(p, w->chain_id);
    SNAP_PK_STR(p, w->address);
    SNAP_PK_STR(p, w->amount);
    SNAP_PK_STR(p, w->fee);
    snap_pk_i64(p, &w->amount_minor);
    snap_pk_i32(p, &w->digits);
    SNAP_PK_STR(p, w->currency);
    SNAP_PK_STR(p, w->actor);
    SNAP_PK_STR(p, w->origin);
    snap_pk_u32(p, &w->transfers);
    SNAP_PK_STR(p, w->request_id);
    snap_pk_u32(p, &w->transfer_attempts);
    SNAP_PK_STR(p, w->cobo_id);
    SNAP_PK_STR(p, w->cobo_status);
    SNAP_PK_STR(p, w->tx_hash);
    snap_pk_u64(p, &w->debit_ticket);
    snap_pk_u64(p, &w->refund_ticket);
    snap_pk_u32(p, &w->debit_attempts);
    snap_pk_u32(p, &w->refund_attempts);
    snap_pk_i64(p, &w->debit_first_ms);
    snap_pk_i64(p, &w->debit_last_ms);
    snap_pk_i64(p, &w->refund_first_ms);
    snap_pk_i64(p, &w->refund_last_ms);
    snap_pk_u32(p, &w->approvals);
    for (uint32_t i = 0; i < w->approvals && i < WITHDRAWALS_MAX_APPROVERS; i++)
        SNAP_PK_STR(p, w->approvers[i]);
    SNAP_PK_STR(p, w->reason);
    snap_pk_u32(p, &w->alert_count);
    SNAP_PK_STR(p, w->alert);
    snap_pk_i64(p, &w->created_ms);
    snap_pk_i64(p, &w->updated_ms);
    if (has & S_HAS_FIRST_LSN)
        snap_pk_u64(p, &w->first_lsn);
    snap_pk_u64(p, &w->last_lsn);
}

int withdrawals_save(withdrawals_t *self, snap_pk_t *p)
{
    return withdrawals_save_layout(self, p, S_PICKLE_LAYOUT);
}

int withdrawals_save_layout(withdrawals_t *self, snap_pk_t *p, uint32_t layout)
{
    int has = s_layout_has(layout);
    if (has < 0)
        return -1;
    pthread_mutex_lock(&self->lock);
    snap_pk_u32(p, &layout);
    uint64_t count = self->count;
    snap_pk_u64(p, &count);
    for (size_t i = 0; i < self->count && !p->bad; i++)   /* arrival order: the listings' order */
        s_pickle(p, self->entries[i], has);
    pthread_mutex_unlock(&self->lock);
    return p->bad ? -1 : 0;
}

int withdrawals_load(withdrawals_t *self, snap_pk_t *p, char *err, size_t errlen)
{
    uint32_t layout = 0;
    uint64_t count = 0;
    snap_pk_u32(p, &layout);
    snap_pk_u64(p, &count);
    withdrawal_view_t *tmp = malloc(sizeof *tmp);
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    int has = s_layout_has(layout);
    if (!tmp || has < 0 || self->count) {
        snprintf(err, errlen, !tmp ? "no memory" : self->count ? "withdrawals not empty"
                 : "withdrawals layout %u, not one this kasa reads (1 to %u)", layout, S_PICKLE_LAYOUT);
        goto out;
    }
    for (uint64_t i = 0; i < count; i++) {
        memset(tmp, 0, sizeof *tmp);
        s_pickle(p, tmp, has);
        if (!(has & S_HAS_FIRST_LSN))
            tmp->first_lsn = 1;   /* unknown: its timeline from the journal's start; 0 would let the next
                                   * record's LSN pass for its first */
        withdrawal_view_t *w = p->bad || !withdrawal_id_valid(tmp->id) || s_find(self, tmp->id)
                                   ? NULL : s_create(self, tmp->id);
        if (!w) {
            snprintf(err, errlen, p->bad || !withdrawal_id_valid(tmp->id)
                     ? "withdrawal %llu does not decode" : "withdrawal %llu: duplicate, or more than %zu "
                     "withdrawals: raise KASA_MAX_DEPOSITS", (unsigned long long) i, self->max);
            goto out;
        }
        *w = *tmp;   /* the same id: the hash's key (w->id) keeps its bytes */
    }
    if (p->bad || p->pos != p->len) {
        snprintf(err, errlen, "the withdrawals section does not decode");
        goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&self->lock);
    free(tmp);
    return rc;
}

int withdrawals_failed(withdrawals_t *self)
{
    return atomic_load(&self->failed);
}

static void s_set_failed(withdrawals_t *self, const char *why)
{
    if (atomic_exchange(&self->failed, 1) == 0)
        log_error("withdrawals.failed", "reason=\"%s\" action=\"refusing every withdrawal transition; restart kasa\"",
                  why);
}

/* Encodes r and submits it under the lock: its LSN, or 0 (failed: err says why). */
static uint64_t s_submit_locked(withdrawals_t *self, journal_t *journal, const record_t *r, char *err, size_t errlen)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (record_encode(r, &bytes, &len, err, errlen) != 0)
        return 0;
    uint64_t lsn = journal_submit(journal, bytes, len);
    free(bytes);
    if (!lsn) {
        snprintf(err, errlen, "journal refused the record");
        s_set_failed(self, "journal_submit failed");
    }
    return lsn;
}

static int s_wait(withdrawals_t *self, journal_t *journal, uint64_t lsn)
{
    if (!lsn || journal_wait(journal, lsn) == 0)
        return 0;
    s_set_failed(self, "journal_wait failed");
    return -1;
}

/* Fills what the event does not bring from the entry, so every record stands on its own. */
static void s_complete(record_t *r, const withdrawal_view_t *w)
{
    if (!r->login) r->login = w->login;
    if (!r->token_id[0]) S_COPY(r->token_id, w->token_id);
    if (!r->chain_id[0]) S_COPY(r->chain_id, w->chain_id);
    if (!r->address[0]) S_COPY(r->address, w->address);
    if (!r->amount[0]) S_COPY(r->amount, w->amount);
    if (!r->fee[0]) S_COPY(r->fee, w->fee);
    if (!r->credit_minor) {
        r->credit_minor = w->amount_minor;
        r->digits = w->digits;
    }
    if (!r->currency[0]) S_COPY(r->currency, w->currency);
    if (!r->request_id[0]) S_COPY(r->request_id, w->request_id);
}

static void s_log_transition(const record_t *r, uint64_t lsn)
{
    char event[48];
    snprintf(event, sizeof event, "withdrawal.%s", withdrawal_state_name(r->wto));
    for (char *p = event; *p; p++)
        *p = (char) tolower((unsigned char) *p);
    log_level_t level = r->wto == WITHDRAWAL_HELD ? LOG_WARN : LOG_INFO;
    log_event(level, event, "id=%s login=%llu amount=%s token=%s from=%s event=%s request_id=%s lsn=%llu%s%s%s",
              r->tx_id, (unsigned long long) r->login, r->amount, r->token_id, withdrawal_state_name(r->wfrom),
              withdrawal_event_name(r->wevent), r->request_id[0] ? r->request_id : "-", (unsigned long long) lsn,
              r->reason[0] ? " reason=\"" : "", r->reason, r->reason[0] ? "\"" : "");
}

/* The step and its journaling, under the lock. Returns the result; *lsn the record's on MOVE. */
static registry_result_t s_commit_locked(withdrawals_t *self, journal_t *journal, record_t *r, unsigned *effects,
                                         uint64_t *lsn, char *err, size_t errlen)
{
    withdrawal_view_t *w = s_find(self, r->tx_id);
    withdrawal_state_t from = w ? w->state : WITHDRAWAL_NONE;
    withdrawal_step_t step = withdrawal_step(from, r->wevent);
    *effects = step.effects;
    if (step.outcome == WITHDRAWAL_STEP_ILLEGAL) {
        snprintf(err, errlen, "%s is not allowed for a withdrawal in %s", withdrawal_event_name(r->wevent),
                 withdrawal_state_name(from));
        return REGISTRY_ILLEGAL;
    }
    if (step.outcome == WITHDRAWAL_STEP_SAME)
        return REGISTRY_SAME;
    if (!w && self->count >= self->max) {
        snprintf(err, errlen, "more than %zu withdrawals held", self->max);
        return REGISTRY_FULL;
    }
    r->wfrom = from;
    r->wto = step.to;
    if (w)
        s_complete(r, w);
    /* A new transfer's request_id is known only once the transition is applied: name it here. */
    if (w && (r->wevent == WITHDRAWAL_EV_APPROVE || r->wevent == WITHDRAWAL_EV_RETRANSFER))
        withdrawal_request_id(w->id, w->transfers + 1, r->request_id);
    *lsn = s_submit_locked(self, journal, r, err, errlen);
    if (!*lsn)
        return REGISTRY_FAILED;
    if (s_apply_locked(self, r, *lsn) != 0) {
        snprintf(err, errlen, "no memory for the withdrawal");
        s_set_failed(self, "applying a durable record failed");
        return REGISTRY_FAILED;
    }
    s_log_transition(r, *lsn);
    return REGISTRY_MOVED;
}

registry_result_t withdrawals_commit(withdrawals_t *self, journal_t *journal, record_t *r, unsigned *effects,
                                     char *err, size_t errlen)
{
    unsigned fx = 0;
    if (!effects)
        effects = &fx;
    *effects = 0;
    r->kind = RECORD_WITHDRAWAL;
    r->version = RECORD_VERSION;
    if (!r->time_ms)
        r->time_ms = s_now_ms();
    if (withdrawals_failed(self)) {
        snprintf(err, errlen, "journal failed: not accepting");
        return REGISTRY_FAILED;
    }
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->lock);
    registry_result_t res = s_commit_locked(self, journal, r, effects, &lsn, err, errlen);
    withdrawal_view_t *w = s_find(self, r->tx_id);
    uint64_t last = w ? w->last_lsn : 0;
    pthread_mutex_unlock(&self->lock);
    if (res == REGISTRY_MOVED)
        return s_wait(self, journal, lsn) == 0 ? REGISTRY_MOVED : REGISTRY_FAILED;
    if (res == REGISTRY_SAME || res == REGISTRY_ILLEGAL)
        (void) s_wait(self, journal, last);   /* answer only on what is durable */
    return res;
}

registry_result_t withdrawals_append(withdrawals_t *self, journal_t *journal, record_t *r, char *err, size_t errlen)
{
    r->version = RECORD_VERSION;
    if (!r->time_ms)
        r->time_ms = s_now_ms();
    if (withdrawals_failed(self)) {
        snprintf(err, errlen, "journal failed: not accepting");
        return REGISTRY_FAILED;
    }
    pthread_mutex_lock(&self->lock);
    if (!s_find(self, r->tx_id)) {
        pthread_mutex_unlock(&self->lock);
        snprintf(err, errlen, "no withdrawal %s", r->tx_id);
        return REGISTRY_ILLEGAL;
    }
    uint64_t lsn = s_submit_locked(self, journal, r, err, errlen);
    if (lsn)
        s_apply_locked(self, r, lsn);
    pthread_mutex_unlock(&self->lock);
    if (!lsn)
        return REGISTRY_FAILED;
    return s_wait(self, journal, lsn) == 0 ? REGISTRY_MOVED : REGISTRY_FAILED;
}

/* The event that enters state (the learned record names it, for the history's reader). */
static withdrawal_event_t s_entering(withdrawal_state_t st)
{
    switch (st) {
    case WITHDRAWAL_DEBITED: return WITHDRAWAL_EV_DEBIT_OK;
    case WITHDRAWAL_APPROVED: return WITHDRAWAL_EV_APPROVE;
    case WITHDRAWAL_SENT: return WITHDRAWAL_EV_TRANSFER_SENT;
    case WITHDRAWAL_COMPLETED: return WITHDRAWAL_EV_TRANSFER_DONE;
    case WITHDRAWAL_HELD: return WITHDRAWAL_EV_TRANSFER_FAILED;
    case WITHDRAWAL_REJECTED: return WITHDRAWAL_EV_DEBIT_REFUSED;
    case WITHDRAWAL_REFUNDING: return WITHDRAWAL_EV_REJECT;
    case WITHDRAWAL_REFUNDED: return WITHDRAWAL_EV_REFUND_OK;
    default: return WITHDRAWAL_EV_REQUEST;
    }
}

/* 1 if shared names an approver w lacks. */
static int s_new_approver(const withdrawal_view_t *w, const withdrawal_view_t *shared)
{
    for (uint32_t i = 0; i < shared->approvals && i < WITHDRAWALS_MAX_APPROVERS; i++) {
        int known = 0;
        for (uint32_t j = 0; j < w->approvals && j < WITHDRAWALS_MAX_APPROVERS && !known; j++)
            known = strcmp(w->approvers[j], shared->approvers[i]) == 0;
        if (!known)
            return 1;
    }
    return 0;
}

/* The requester shared names, "" when it names none or only the learning node's own actor. */
static const char *s_requester(const withdrawal_view_t *shared)
{
    return strcmp(shared->actor, WITHDRAWALS_LEARNED_ACTOR) == 0 ? "" : shared->actor;
}

/* 1 if what shared says differs from w (state, transfer, Cobo's fields, tickets, who asked, a new
 * approver). */
static int s_differs(const withdrawal_view_t *w, const withdrawal_view_t *shared)
{
    const char *requester = s_requester(shared);
    if ((requester[0] && strcmp(w->actor, requester) != 0) || s_new_approver(w, shared))
        return 1;
    return w->state != shared->state || w->transfers != shared->transfers ||
           strcmp(w->request_id, shared->request_id) != 0 || strcmp(w->cobo_id, shared->cobo_id) != 0 ||
           strcmp(w->cobo_status, shared->cobo_status) != 0 || strcmp(w->tx_hash, shared->tx_hash) != 0 ||
           w->debit_ticket != shared->debit_ticket || w->refund_ticket != shared->refund_ticket;
}

registry_result_t withdrawals_learn(withdrawals_t *self, journal_t *journal, const withdrawal_view_t *shared,
                                    const char *node, char *err, size_t errlen)
{
    if (!withdrawal_id_valid(shared->id) || shared->state <= WITHDRAWAL_NONE ||
        shared->state >= WITHDRAWAL_STATE_COUNT || !shared->login || shared->amount_minor <= 0) {
        snprintf(err, errlen, "the shared withdrawal %.30s is not whole", shared->id);
        return REGISTRY_ILLEGAL;
    }
    if (withdrawals_failed(self)) {
        snprintf(err, errlen, "journal failed: not accepting");
        return REGISTRY_FAILED;
    }
    record_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "no memory");
        return REGISTRY_FAILED;
    }
    registry_result_t res = REGISTRY_SAME;
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->lock);
    withdrawal_view_t *w = s_find(self, shared->id);
    if (w && !s_differs(w, shared))
        goto done;
    if (!w && self->count >= self->max) {
        snprintf(err, errlen, "more than %zu withdrawals held", self->max);
        res = REGISTRY_FULL;
        goto done;
    }
    withdrawals_event_record(r, shared->id, s_entering(shared->state), shared->reason);
    r->kind = RECORD_WITHDRAWAL;
    r->version = RECORD_VERSION;
    r->time_ms = s_now_ms();
    r->wfrom = w ? w->state : WITHDRAWAL_NONE;
    r->wto = shared->state;
    r->login = shared->login;
    S_COPY(r->token_id, shared->token_id);
    S_COPY(r->chain_id, shared->chain_id);
    S_COPY(r->address, shared->address);
    S_COPY(r->amount, shared->amount);
    S_COPY(r->fee, shared->fee);
    r->credit_minor = shared->amount_minor;
    r->digits = shared->digits;
    S_COPY(r->currency, shared->currency);
    S_COPY(r->request_id, shared->request_id);
    r->attempt = shared->transfers;
    S_COPY(r->cobo_id, shared->cobo_id);
    S_COPY(r->status, shared->cobo_status);
    S_COPY(r->tx_hash, shared->tx_hash);
    r->ticket = shared->debit_ticket;
    r->ticket2 = shared->refund_ticket;
    S_COPY(r->requester, s_requester(shared));
    if (shared->approvals > 0)
        S_COPY(r->approver, shared->approvers[0]);
    if (shared->approvals > 1)
        S_COPY(r->approver2, shared->approvers[1]);
    S_COPY(r->actor, WITHDRAWALS_LEARNED_ACTOR);
    snprintf(r->origin, sizeof r->origin, "node:%.58s", node ? node : "?");
    lsn = s_submit_locked(self, journal, r, err, errlen);
    if (!lsn) {
        res = REGISTRY_FAILED;
        goto done;
    }
    if (s_apply_locked(self, r, lsn) != 0) {
        snprintf(err, errlen, "no memory for the withdrawal");
        s_set_failed(self, "applying a durable record failed");
        res = REGISTRY_FAILED;
        goto done;
    }
    res = REGISTRY_MOVED;
    log_info("withdrawal.learned", "id=%s state=%s from=%s node=%s request_id=%s lsn=%llu", r->tx_id,
             withdrawal_state_name(r->wto), withdrawal_state_name(r->wfrom), node ? node : "?",
             r->request_id[0] ? r->request_id : "-", (unsigned long long) lsn);
done:
    pthread_mutex_unlock(&self->lock);
    free(r);
    if (res == REGISTRY_MOVED && s_wait(self, journal, lsn) != 0)
        return REGISTRY_FAILED;
    return res;
}

int withdrawals_final(withdrawal_state_t st)
{
    return st == WITHDRAWAL_COMPLETED || st == WITHDRAWAL_REJECTED || st == WITHDRAWAL_REFUNDED;
}

/* 1 if Cobo's last word on w's current transfer is final: a person may refund or transfer again. */
static int s_transfer_final(const withdrawal_view_t *w)
{
    return w->state == WITHDRAWAL_HELD &&
           withdrawals_cobo_event(w->cobo_status) != WITHDRAWAL_EV_TRANSFER_DONE;
}

registry_result_t withdrawals_desk(withdrawals_t *self, journal_t *journal, const char *id, const char *action,
                                   const char *actor, const char *origin, const char *reason, int approvals_needed,
                                   unsigned *effects, int *noted, char *err, size_t errlen)
{
    *effects = 0;
    *noted = 0;
    if (!reason || !reason[0] || strlen(reason) > 150 || strpbrk(reason, "\r\n")) {
        snprintf(err, errlen, "a reason is required: one line, at most 150 bytes");
        return REGISTRY_ILLEGAL;
    }
    withdrawal_event_t ev;
    if (strcmp(action, "approve") == 0)
        ev = WITHDRAWAL_EV_APPROVE;
    else if (strcmp(action, "reject") == 0)
        ev = WITHDRAWAL_EV_REJECT;
    else if (strcmp(action, "refund") == 0)
        ev = WITHDRAWAL_EV_REFUND;
    else if (strcmp(action, "retransfer") == 0)
        ev = WITHDRAWAL_EV_RETRANSFER;
    else {
        snprintf(err, errlen, "unknown action \"%.32s\" (approve, reject, refund, retransfer)", action);
        return REGISTRY_ILLEGAL;
    }
    if (withdrawals_failed(self)) {
        snprintf(err, errlen, "journal failed: not accepting");
        return REGISTRY_FAILED;
    }
    record_t *a = calloc(2, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "no memory");
        return REGISTRY_FAILED;
    }
    record_t *t = a + 1;
    registry_result_t res = REGISTRY_ILLEGAL;
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->lock);
    withdrawal_view_t *w = s_find(self, id);
    if (!w) {
        snprintf(err, errlen, "no withdrawal %.30s", id);
        goto done;
    }
    if (withdrawal_step(w->state, ev).outcome != WITHDRAWAL_STEP_MOVE) {
        snprintf(err, errlen, "cannot %s a withdrawal in %s", action, withdrawal_state_name(w->state));
        goto done;
    }
    if ((ev == WITHDRAWAL_EV_REFUND || ev == WITHDRAWAL_EV_RETRANSFER) && !s_transfer_final(w)) {
        snprintf(err, errlen, "Cobo has not said the transfer %s is final", w->request_id);
        goto done;
    }
    int already = 0;
    for (uint32_t i = 0; i < w->approvals && i < WITHDRAWALS_MAX_APPROVERS; i++)
        already |= strcmp(w->approvers[i], actor) == 0;
    if (ev == WITHDRAWAL_EV_APPROVE && already) {
        snprintf(err, errlen, "%s already approved it: another approver must", actor);
        goto done;
    }
    record_init(a, RECORD_ADMIN_ACTION);
    a->time_ms = s_now_ms();
    S_COPY(a->tx_id, id);
    S_COPY(a->actor, actor);
    S_COPY(a->origin, origin ? origin : "");
    S_COPY(a->action, action);
    S_COPY(a->reason, reason);
    a->login = w->login;
    lsn = s_submit_locked(self, journal, a, err, errlen);
    if (!lsn) {
        res = REGISTRY_FAILED;
        goto done;
    }
    s_apply_locked(self, a, lsn);
    if (ev == WITHDRAWAL_EV_APPROVE && (int) w->approvals < approvals_needed) {
        *noted = 1;
        res = REGISTRY_SAME;
        goto done;
    }
    withdrawals_event_record(t, id, ev, NULL);
    snprintf(t->reason, sizeof t->reason, "%s: %.140s", action, reason);
    S_COPY(t->actor, actor);
    S_COPY(t->origin, origin ? origin : "");
    t->time_ms = a->time_ms;
    uint64_t tl = 0;
    res = s_commit_locked(self, journal, t, effects, &tl, err, errlen);
    if (tl)
        lsn = tl;
done:
    pthread_mutex_unlock(&self->lock);
    free(a);
    if ((res == REGISTRY_MOVED || res == REGISTRY_SAME) && s_wait(self, journal, lsn) != 0)
        return REGISTRY_FAILED;
    return res;
}

int withdrawals_get(withdrawals_t *self, const char *id, withdrawal_view_t *out)
{
    pthread_mutex_lock(&self->lock);
    withdrawal_view_t *w = id ? s_find(self, id) : NULL;
    if (w)
        *out = *w;
    pthread_mutex_unlock(&self->lock);
    return w ? 0 : -1;
}

int withdrawals_by_request(withdrawals_t *self, const char *request_id, withdrawal_view_t *out)
{
    /* "kasa-<id>-<n>": the id is in the request_id. */
    char id[24];
    if (!request_id || strncmp(request_id, "kasa-", 5) != 0)
        return -1;
    const char *dash = strchr(request_id + 5, '-');
    if (!dash || dash - (request_id + 5) >= (long) sizeof id)
        return -1;
    memcpy(id, request_id + 5, (size_t) (dash - (request_id + 5)));
    id[dash - (request_id + 5)] = '\0';
    return withdrawal_id_valid(id) ? withdrawals_get(self, id, out) : -1;
}

int withdrawals_each(withdrawals_t *self, uint64_t login, int limit,
                     void (*fn)(void *arg, const withdrawal_view_t *w), void *arg)
{
    int n = 0;
    pthread_mutex_lock(&self->lock);
    for (size_t i = self->count; i > 0 && (limit <= 0 || n < limit); i--) {
        const withdrawal_view_t *w = self->entries[i - 1];
        if (login && w->login != login)
            continue;
        fn(arg, w);
        n++;
    }
    pthread_mutex_unlock(&self->lock);
    return n;
}

int64_t withdrawals_asked_since(withdrawals_t *self, uint64_t login, int64_t since_ms)
{
    int64_t sum = 0;
    pthread_mutex_lock(&self->lock);
    for (size_t i = self->count; i > 0; i--) {
        const withdrawal_view_t *w = self->entries[i - 1];
        if (w->created_ms < since_ms)
            break;   /* arrival order: everything older is older still */
        if (w->login == login && w->state != WITHDRAWAL_REJECTED && w->state != WITHDRAWAL_REFUNDING &&
            w->state != WITHDRAWAL_REFUNDED)
            sum += w->amount_minor;
    }
    pthread_mutex_unlock(&self->lock);
    return sum;
}

size_t withdrawals_count(withdrawals_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->count;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void withdrawals_event_record(record_t *r, const char *id, withdrawal_event_t ev, const char *reason)
{
    record_init(r, RECORD_WITHDRAWAL);
    S_COPY(r->tx_id, id);
    r->wevent = ev;
    if (reason)
        S_COPY(r->reason, reason);
}

withdrawal_event_t withdrawals_cobo_event(const char *status)
{
    if (!status)
        return WITHDRAWAL_EV_TRANSFER_SENT;
    if (strcmp(status, "Completed") == 0)
        return WITHDRAWAL_EV_TRANSFER_DONE;
    if (strcmp(status, "Failed") == 0 || strcmp(status, "Rejected") == 0)
        return WITHDRAWAL_EV_TRANSFER_FAILED;
    return WITHDRAWAL_EV_TRANSFER_SENT;
}

void withdrawals_view_json(jbuf_t *b, const withdrawal_view_t *w)
{
    char amount[48] = "";
    money_format_minor(w->amount_minor, w->digits, amount, sizeof amount);
    jbuf_puts(b, "{\"id\":");
    jbuf_str(b, w->id);
    jbuf_puts(b, ",\"state\":");
    jbuf_str(b, withdrawal_state_name(w->state));
    jbuf_printf(b, ",\"login\":%" PRIu64 ",\"amount\":", w->login);
    jbuf_str(b, amount);
    jbuf_puts(b, ",\"currency\":");
    jbuf_str(b, w->currency);
    jbuf_puts(b, ",\"fee\":");
    jbuf_str(b, w->fee);
    jbuf_puts(b, ",\"token\":");
    jbuf_str(b, w->token_id);
    jbuf_puts(b, ",\"token_amount\":");
    jbuf_str(b, w->amount);
    jbuf_puts(b, ",\"chain\":");
    jbuf_str(b, w->chain_id);
    jbuf_puts(b, ",\"address\":");
    jbuf_str(b, w->address);
    jbuf_puts(b, ",\"request_id\":");
    jbuf_str(b, w->request_id);
    jbuf_puts(b, ",\"cobo_status\":");
    jbuf_str(b, w->cobo_status);
    jbuf_puts(b, ",\"tx_hash\":");
    jbuf_str(b, w->tx_hash);
    jbuf_printf(b, ",\"debit_ticket\":%" PRIu64 ",\"refund_ticket\":%" PRIu64 ",\"approvals\":%u,\"alerts\":%u",
                w->debit_ticket, w->refund_ticket, (unsigned) w->approvals, (unsigned) w->alert_count);
    jbuf_puts(b, ",\"reason\":");
    jbuf_str(b, w->reason);
    jbuf_printf(b, ",\"created_ms\":%lld,\"updated_ms\":%lld}", (long long) w->created_ms, (long long) w->updated_ms);
}

