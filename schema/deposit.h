/* deposit.h — the deposit state machine. The table in deposit.c is the single source of truth:
 * states, events, which transitions are legal and what each one causes. Enums, names and the legality
 * check are derived from these lists; deposit_step() is pure (no I/O, no clock, no globals).
 *
 *   PENDING ─┐
 *            ▼
 *   (none) ─▶ RECEIVED ─▶ LOCKED ─▶ CREDITED ─▶ NOTIFIED
 *                │           │          ▲
 *                ▼           ▼          │ (a credit in flight as it was held succeeded: ALERT)
 *              HELD ◀────────┘──────────┘  (needs a person: unlinked address, over the limit, below the
 *                │                          minimum, no rule for the account's currency, MT5 refused;
 *                │                          retry, assign or the last approval: back to the locker)
 *                ▼
 *             REJECTED             (terminal: Cobo Rejected/Failed, admin rejected)
 */
#ifndef KASA_SCHEMA_DEPOSIT_H
#define KASA_SCHEMA_DEPOSIT_H

#define DEPOSIT_STATES(X) \
    X(NONE)      /* not yet seen */                                   \
    X(PENDING)   /* seen, not final (Confirming, PendingScreening) */ \
    X(RECEIVED)  /* Cobo says Completed; waits for the locker */      \
    X(LOCKED)    /* re-confirmed with Cobo, rules passed; to credit */ \
    X(CREDITED)  /* one MT5 balance deal exists for it */             \
    X(NOTIFIED)  /* the broker's chat was told */                     \
    X(HELD)      /* needs a person */                                 \
    X(REJECTED)  /* terminal: never credited */

#define DEPOSIT_EVENTS(X) \
    X(SEEN_PENDING)    /* webhook with a non-final status (confirmations may change) */ \
    X(SEEN_COMPLETED)  /* webhook with status Completed */                              \
    X(SEEN_FAILED)     /* webhook with status Rejected or Failed */                     \
    X(CONFIRMED)       /* locker: Cobo re-confirmed it and the money rules pass */      \
    X(HOLD)            /* locker or crediter: needs a person (reason recorded) */       \
    X(REFUSE)          /* locker: Cobo's API says it failed                       */    \
    X(CREDIT_OK)       /* crediter: the MT5 deal exists (sent, or found by reference) */\
    X(NOTICE_SENT)     /* notifier: the Telegram message was accepted */                \
    X(ADMIN_RETRY)     /* admin: send a HELD deposit through the locker again */        \
    X(ADMIN_ASSIGN)    /* admin: link a HELD deposit to a login, then as ADMIN_RETRY */ \
    X(ADMIN_REJECT)    /* admin: reject a HELD deposit for good */                      \
    X(ADMIN_APPROVE)   /* admin: the last approval a deposit over the limit needed */

#define DEPOSIT_ENUM_STATE_(name) DEPOSIT_##name,
#define DEPOSIT_ENUM_EVENT_(name) DEPOSIT_EV_##name,
typedef enum { DEPOSIT_STATES(DEPOSIT_ENUM_STATE_) DEPOSIT_STATE_COUNT } deposit_state_t;
typedef enum { DEPOSIT_EVENTS(DEPOSIT_ENUM_EVENT_) DEPOSIT_EVENT_COUNT } deposit_event_t;
#undef DEPOSIT_ENUM_STATE_
#undef DEPOSIT_ENUM_EVENT_

/* Effects a transition asks of the pipeline (a bit set). */
enum {
    DEPOSIT_EFFECT_NONE   = 0,
    DEPOSIT_EFFECT_LOCK   = 1 << 0, /* hand to the locker                         */
    DEPOSIT_EFFECT_CREDIT = 1 << 1, /* hand to a crediter (reconcile first if an attempt exists) */
    DEPOSIT_EFFECT_NOTIFY = 1 << 2, /* hand to the notifier                       */
    DEPOSIT_EFFECT_ALERT  = 1 << 3, /* a person must look: tell the admins        */
};

typedef enum {
    DEPOSIT_STEP_MOVE,    /* a transition: journal it, then perform the effects          */
    DEPOSIT_STEP_SAME,    /* a repeat or an update that changes no state: nothing to do  */
    DEPOSIT_STEP_ILLEGAL, /* not allowed from this state: log and ignore                 */
} deposit_outcome_t;

typedef struct {
    deposit_outcome_t outcome;
    deposit_state_t to;   /* the state after the step (== from unless MOVE) */
    unsigned effects;     /* DEPOSIT_EFFECT_* bits; NONE unless MOVE (or an ALERT on SAME/ILLEGAL) */
} deposit_step_t;

/* The pure step function: what event ev does to a deposit in state from. */
deposit_step_t deposit_step(deposit_state_t from, deposit_event_t ev);

/* Printable names ("LOCKED", "SEEN_COMPLETED"); "?" for an out-of-range value. */
const char *deposit_state_name(deposit_state_t state);
const char *deposit_event_name(deposit_event_t ev);
/* Name → value; -1 if unknown. */
int deposit_state_from_name(const char *name);
int deposit_event_from_name(const char *name);

/* 1 for a state in which nothing more happens without a person (NOTIFIED, REJECTED) or ever. */
int deposit_state_is_final(deposit_state_t state);

/* How far toward its end a deposit in state is, for choosing among several views of one deposit
 * (the nodes of a cluster, a node's memory and MongoDB): NONE 0 < PENDING < RECEIVED < LOCKED < HELD
 * < REJECTED < CREDITED < NOTIFIED 7. A credit anywhere outranks everything (the money moved); a
 * person's HELD outranks the pipeline's states, REJECTED outranks HELD. One ranking serves the panels'
 * views across nodes, the projector's guarded write and `kasa reconcile` across nodes. 0 for an
 * out-of-range value. */
int deposit_state_rank(deposit_state_t state);

#endif
