/* deposit.c — the deposit state machine: one table, and everything derived from it.
 *
 * s_table[state][event] is the whole machine. A cell left out of the table is ILLEGAL: the step is
 * logged and ignored by the caller, and the deposit does not move. deposit_step() reads the table;
 * the names come from the X-macro lists in deposit.h; deposit_state_is_final() is computed from the
 * table (a state no event can leave). Nothing else in kasa decides what a transition is.
 *
 * Guarantees the table gives (tests/unit/test_deposit.c proves them over random event sequences):
 *  - A deposit never goes backwards: CREDITED, NOTIFIED and REJECTED are never left for an earlier
 *    state, a late or reordered webhook (SEEN_PENDING after PENDING, a repeated SEEN_COMPLETED) is SAME.
 *  - CREDITED is entered at most once (only on CREDIT_OK: from LOCKED, or from HELD when a credit
 *    that was in flight as the deposit was held turns out to have succeeded), and after it no step
 *    ever asks for a CREDIT effect again: from CREDITED and NOTIFIED no row leads back to LOCKED or HELD.
 *  - A second CREDIT effect for one deposit can only come after LOCKED --HOLD--> HELD --ADMIN_RETRY/
 *    ADMIN_ASSIGN/ADMIN_APPROVE--> RECEIVED --CONFIRMED--> LOCKED, i.e. after MT5 refused or a failure was reported
 *    while a credit may have been in flight. The crediter therefore reconciles before every send: it
 *    searches the balance deals of every login ever tried for the deposit's reference and journals
 *    CREDIT_OK with the found ticket instead of sending again (actors/crediter.h).
 */
#include "schema/deposit.h"

#include <string.h>

typedef struct {
    unsigned char defined; /* 0: the cell is not in the table, i.e. ILLEGAL */
    unsigned char outcome; /* deposit_outcome_t */
    unsigned char to;      /* deposit_state_t; == from unless MOVE (or a PENDING self-move) */
    unsigned char effects; /* DEPOSIT_EFFECT_* */
} s_cell_t;

#define S_MOVE(to_, fx) { 1, DEPOSIT_STEP_MOVE, DEPOSIT_##to_, (fx) }
#define S_SAME(st, fx)  { 1, DEPOSIT_STEP_SAME, DEPOSIT_##st, (fx) }
#define S_AT(st, ev)    [DEPOSIT_##st][DEPOSIT_EV_##ev]

#define LOCK   DEPOSIT_EFFECT_LOCK
#define CREDIT DEPOSIT_EFFECT_CREDIT
#define NOTIFY DEPOSIT_EFFECT_NOTIFY
#define ALERT  DEPOSIT_EFFECT_ALERT
#define NOFX   DEPOSIT_EFFECT_NONE

static const s_cell_t s_table[DEPOSIT_STATE_COUNT][DEPOSIT_EVENT_COUNT] = {
    /* ---- webhooks: SEEN_PENDING (Confirming, PendingScreening, Pending) ---- */
    /* First sight of a deposit that is not final yet: show it to the investor. */
    S_AT(NONE, SEEN_PENDING)      = S_MOVE(PENDING, NOFX),
    /* Self-move: confirmations may have changed. The ingress journals it as a confirmation update
     * (from == to == PENDING) only if confirmations or status really changed; otherwise it drops it. */
    S_AT(PENDING, SEEN_PENDING)   = S_MOVE(PENDING, NOFX),
    /* Late or reordered non-final webhooks never move a deposit backwards. */
    S_AT(RECEIVED, SEEN_PENDING)  = S_SAME(RECEIVED, NOFX),
    S_AT(LOCKED, SEEN_PENDING)    = S_SAME(LOCKED, NOFX),
    S_AT(CREDITED, SEEN_PENDING)  = S_SAME(CREDITED, NOFX),
    S_AT(NOTIFIED, SEEN_PENDING)  = S_SAME(NOTIFIED, NOFX),
    S_AT(HELD, SEEN_PENDING)      = S_SAME(HELD, NOFX),
    S_AT(REJECTED, SEEN_PENDING)  = S_SAME(REJECTED, NOFX),

    /* ---- webhooks: SEEN_COMPLETED ---- */
    /* Cobo says Completed: hand it to the locker, which re-confirms with Cobo's API. */
    S_AT(NONE, SEEN_COMPLETED)     = S_MOVE(RECEIVED, LOCK),
    S_AT(PENDING, SEEN_COMPLETED)  = S_MOVE(RECEIVED, LOCK),
    /* Repeats (Cobo retries, several event types per transaction) change nothing. */
    S_AT(RECEIVED, SEEN_COMPLETED) = S_SAME(RECEIVED, NOFX),
    S_AT(LOCKED, SEEN_COMPLETED)   = S_SAME(LOCKED, NOFX),
    S_AT(CREDITED, SEEN_COMPLETED) = S_SAME(CREDITED, NOFX),
    S_AT(NOTIFIED, SEEN_COMPLETED) = S_SAME(NOTIFIED, NOFX),
    S_AT(HELD, SEEN_COMPLETED)     = S_SAME(HELD, NOFX),
    /* Rejected for good (by Cobo or a person): a late Completed does not revive it, but the money may
     * have arrived after all, so a person is told (a completed_after_rejected ALERT). */
    S_AT(REJECTED, SEEN_COMPLETED) = S_SAME(REJECTED, ALERT),

    /* ---- webhooks: SEEN_FAILED (Rejected, Failed, sub-status ReOrged) ---- */
    /* Nothing was credited yet and no credit can be in flight: reject. */
    S_AT(NONE, SEEN_FAILED)     = S_MOVE(REJECTED, NOFX),
    S_AT(PENDING, SEEN_FAILED)  = S_MOVE(REJECTED, NOFX),
    S_AT(RECEIVED, SEEN_FAILED) = S_MOVE(REJECTED, NOFX),
    /* LOCKED: a crediter may be calling MT5 right now. Stop and let a person decide. */
    S_AT(LOCKED, SEEN_FAILED)   = S_MOVE(HELD, ALERT),
    /* Already credited: a reorg after the credit. The money is in MT5; a person must act. */
    S_AT(CREDITED, SEEN_FAILED) = S_SAME(CREDITED, ALERT),
    S_AT(NOTIFIED, SEEN_FAILED) = S_SAME(NOTIFIED, ALERT),
    /* Already with a person, or already rejected. */
    S_AT(HELD, SEEN_FAILED)     = S_SAME(HELD, NOFX),
    S_AT(REJECTED, SEEN_FAILED) = S_SAME(REJECTED, NOFX),

    /* ---- locker ---- */
    /* Cobo re-confirmed Completed and the money rules pass: credit it. */
    S_AT(RECEIVED, CONFIRMED) = S_MOVE(LOCKED, CREDIT),
    /* Unlinked address, over the auto-credit limit, token not accepted, no rule for the account's
     * currency, below the minimum (the money arrived: a person decides), Cobo's API still not
     * Completed after the wait. */
    S_AT(RECEIVED, HOLD)      = S_MOVE(HELD, ALERT),
    /* Cobo's API says it failed. */
    S_AT(RECEIVED, REFUSE)    = S_MOVE(REJECTED, NOFX),

    /* ---- crediter ---- */
    /* The MT5 deal exists (sent now, or found by its reference): the only way into CREDITED. */
    S_AT(LOCKED, CREDIT_OK) = S_MOVE(CREDITED, NOTIFY),
    /* MT5 refused permanently (wrong login, no rights, over its limit). */
    S_AT(LOCKED, HOLD)      = S_MOVE(HELD, ALERT),
    /* The deposit was held (a failure reported, a person) while a balance call was in flight, and
     * that call (or a reconcile) shows the deal exists: the money is on the account, so the deposit
     * is CREDITED with its ticket, and a person is told (the crediter journals a credit_after_hold
     * ALERT). Refusing it would leave the deal only in a log line. */
    S_AT(HELD, CREDIT_OK)   = S_MOVE(CREDITED, NOTIFY | ALERT),

    /* ---- notifier ---- */
    S_AT(CREDITED, NOTICE_SENT) = S_MOVE(NOTIFIED, NOFX),

    /* ---- a person ---- */
    /* Back through the locker, which re-confirms with Cobo and re-applies the rules. If the hold came
     * from LOCKED, the crediter finds the earlier CREDIT_ATTEMPT and reconciles before any send. */
    S_AT(HELD, ADMIN_RETRY)  = S_MOVE(RECEIVED, LOCK),
    S_AT(HELD, ADMIN_ASSIGN) = S_MOVE(RECEIVED, LOCK),
    S_AT(HELD, ADMIN_REJECT) = S_MOVE(REJECTED, NOFX),
    /* Over the auto-credit limit and now approved by as many approvers as its amount needs (the
     * approvals are ADMIN_ACTION records; schema/desk.c counts them): the locker credits it. */
    S_AT(HELD, ADMIN_APPROVE) = S_MOVE(RECEIVED, LOCK),
};

#undef LOCK
#undef CREDIT
#undef NOTIFY
#undef ALERT
#undef NOFX

#define S_NAME_(name) #name,
static const char *const s_state_names[DEPOSIT_STATE_COUNT] = { DEPOSIT_STATES(S_NAME_) };
static const char *const s_event_names[DEPOSIT_EVENT_COUNT] = { DEPOSIT_EVENTS(S_NAME_) };
#undef S_NAME_

/* An out-of-range state or event is ILLEGAL (never indexes past the table). */
deposit_step_t deposit_step(deposit_state_t from, deposit_event_t ev)
{
    deposit_step_t step = { DEPOSIT_STEP_ILLEGAL, from, DEPOSIT_EFFECT_NONE };
    if ((unsigned) from >= DEPOSIT_STATE_COUNT || (unsigned) ev >= DEPOSIT_EVENT_COUNT)
        return step;
    const s_cell_t *c = &s_table[from][ev];
    if (!c->defined)
        return step;
    step.outcome = (deposit_outcome_t) c->outcome;
    step.to = (deposit_state_t) c->to;
    step.effects = c->effects;
    return step;
}

const char *deposit_state_name(deposit_state_t state)
{
    return (unsigned) state < DEPOSIT_STATE_COUNT ? s_state_names[state] : "?";
}

const char *deposit_event_name(deposit_event_t ev)
{
    return (unsigned) ev < DEPOSIT_EVENT_COUNT ? s_event_names[ev] : "?";
}

static int s_lookup(const char *const *names, int count, const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int deposit_state_from_name(const char *name)
{
    return s_lookup(s_state_names, DEPOSIT_STATE_COUNT, name);
}

int deposit_event_from_name(const char *name)
{
    return s_lookup(s_event_names, DEPOSIT_EVENT_COUNT, name);
}

/* Final = no event in the table moves the deposit to another state (NOTIFIED, REJECTED). HELD is
 * not final: a person's ADMIN_* event moves it. An out-of-range state is reported final (inert). */
int deposit_state_is_final(deposit_state_t state)
{
    if ((unsigned) state >= DEPOSIT_STATE_COUNT)
        return 1;
    for (int ev = 0; ev < DEPOSIT_EVENT_COUNT; ev++) {
        const s_cell_t *c = &s_table[state][ev];
        if (c->defined && c->outcome == DEPOSIT_STEP_MOVE && c->to != (unsigned char) state)
            return 0;
    }
    return 1;
}

int deposit_state_rank(deposit_state_t state)
{
    static const int rank[DEPOSIT_STATE_COUNT] = {
        [DEPOSIT_NONE] = 0,     [DEPOSIT_PENDING] = 1, [DEPOSIT_RECEIVED] = 2, [DEPOSIT_LOCKED] = 3,
        [DEPOSIT_HELD] = 4,     [DEPOSIT_REJECTED] = 5, [DEPOSIT_CREDITED] = 6, [DEPOSIT_NOTIFIED] = 7,
    };
    return (unsigned) state < DEPOSIT_STATE_COUNT ? rank[state] : 0;
}
