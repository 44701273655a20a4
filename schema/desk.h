/* desk.h — what an operator's action does to a deposit, as one table (the operators' desk).
 *
 * An operator acts on a deposit with one of DESK_ACTIONS. desk_step() says, from the deposit's state
 * and its approvals, whether the action is refused (nothing is journaled), only noted (an approval
 * is journaled and the deposit waits for another approver) or moves the deposit by a deposit event
 * (schema/deposit.c then says where to). It is pure: no I/O, no clock, no globals.
 *
 * Approvals: a deposit over KASA_AUTO_CREDIT_LIMIT needs one approver, over KASA_DUAL_APPROVAL_LIMIT
 * two different ones (desk_approvals_needed). An approval is an ADMIN_ACTION record "approve"; the
 * approval that completes the count moves the deposit (ADMIN_APPROVE: back through the locker, which
 * then lets the amount pass). Approvals stay with the deposit: one held again later (MT5 refused)
 * is not approved twice. */
#ifndef KASA_SCHEMA_DESK_H
#define KASA_SCHEMA_DESK_H

#include "schema/deposit.h"
#include "schema/money.h"

#include <stdint.h>

#define DESK_ACTIONS(X) \
    X(RETRY)    /* send a HELD deposit through the locker again (the crediter reconciles first) */ \
    X(ASSIGN)   /* credit a HELD deposit to a given MT5 login                                    */ \
    X(APPROVE)  /* approve a deposit held over the auto-credit limit                             */ \
    X(REJECT)   /* reject a HELD deposit for good                                               */

#define DESK_ENUM_(name) DESK_##name,
typedef enum { DESK_ACTIONS(DESK_ENUM_) DESK_ACTION_COUNT } desk_action_t;
#undef DESK_ENUM_

#define DESK_MAX_APPROVERS 2   /* the most approvals any deposit needs */

typedef enum {
    DESK_REFUSE, /* does not apply: nothing journaled, why says so                       */
    DESK_NOTE,   /* an approval counted; the deposit waits for another approver         */
    DESK_MOVE,   /* journal the action, then the deposit event                          */
} desk_outcome_t;

typedef struct {
    deposit_state_t state;  /* the deposit's state now */
    int approvals_needed;   /* desk_approvals_needed() for its amount: 0, 1 or 2 */
    int approvals;          /* distinct approvers so far */
    int actor_approved;     /* 1 if the acting admin is one of them */
} desk_facts_t;

typedef struct {
    desk_outcome_t outcome;
    deposit_event_t event;  /* DESK_MOVE: the deposit event to commit */
    const char *why;        /* DESK_REFUSE: a sentence for the operator (static) */
} desk_step_t;

/* One operator's action, as every door (control socket, command line, admin API, Telegram) hands it in. */
typedef struct {
    const char *tx_id;
    desk_action_t action;
    uint64_t login;       /* DESK_ASSIGN: the login to credit; 0 otherwise */
    const char *actor;    /* who: "admin:alice", "cli:root", "telegram:ahmet" */
    const char *origin;   /* from where: "cli:host pts/1", "ip:203.0.113.7", "telegram:12345" */
    const char *reason;   /* why: required, one line, at most 150 bytes */
} desk_request_t;

/* The pure step: what action does to a deposit with these facts. An out-of-range action or state
 * is refused. */
desk_step_t desk_step(desk_action_t action, const desk_facts_t *facts);

/* Approvals a deposit of amount needs: 0 at or under auto_limit (0 = no limit), 2 over dual_limit
 * (0 = never two), else 1. */
int desk_approvals_needed(money_atto_t amount, money_atto_t auto_limit, money_atto_t dual_limit);

/* One sentence for the operator on what an accepted action did (noted: an approval that waits for
 * another approver), e.g. "assigned TX to login 100001: back to the locker". */
#include <stddef.h>
void desk_describe(desk_action_t action, int noted, const char *tx_id, uint64_t login, char *buf, size_t len);

/* "retry", "assign", "approve", "reject"; "?" out of range. Name → value, -1 if unknown. */
const char *desk_action_name(desk_action_t action);
int desk_action_from_name(const char *name);

#endif
