/* desk.c — the operators' desk: one table of what each action does in each deposit state.
 *
 * s_table[state][action] is a cell; a state left out refuses every action with its sentence. Only a
 * HELD deposit is acted on: every other state belongs to a stage (or is final), and an operator who
 * could move it would race that stage. Guards refine a HELD cell by the deposit's approvals:
 *  - S_PLAIN     the action moves the deposit by the cell's event.
 *  - S_NOT_AWAIT refused while the deposit still waits for approval (a retry would only hold it
 *                again for the same reason: approve or reject it instead).
 *  - S_APPROVAL  the deposit must need approval, not have it yet, and not have this admin's already;
 *                the approval that completes the count moves it, an earlier one is only noted.
 * Guarantees (tests/unit/test_desk.c, every cell): nothing but HELD is ever moved; a deposit needing
 * two approvals never moves on one admin's approvals; REJECT and ASSIGN are never refused in HELD. */
#include "schema/desk.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef enum { S_NONE, S_PLAIN, S_NOT_AWAIT, S_APPROVAL } s_guard_t;

typedef struct {
    unsigned char guard;  /* s_guard_t; S_NONE: refused with the state's sentence */
    unsigned char event;  /* deposit_event_t */
} s_cell_t;

#define S_AT(st, act) [DEPOSIT_##st][DESK_##act]
#define S_CELL(g, ev) { g, DEPOSIT_EV_##ev }

static const s_cell_t s_table[DEPOSIT_STATE_COUNT][DESK_ACTION_COUNT] = {
    /* back through the locker: Cobo re-confirms, the rules are applied again; a deposit held by
     * the crediter has a credit attempt, and the crediter reconciles it before any send */
    S_AT(HELD, RETRY)   = S_CELL(S_NOT_AWAIT, ADMIN_RETRY),
    /* the login is checked with MT5 before the action is journaled (actors/desk.c) */
    S_AT(HELD, ASSIGN)  = S_CELL(S_PLAIN, ADMIN_ASSIGN),
    S_AT(HELD, APPROVE) = S_CELL(S_APPROVAL, ADMIN_APPROVE),
    S_AT(HELD, REJECT)  = S_CELL(S_PLAIN, ADMIN_REJECT),
};

/* Why an action does not apply in a state no cell of which is defined. */
static const char *const s_refusal[DEPOSIT_STATE_COUNT] = {
    [DEPOSIT_NONE] = "unknown deposit",
    [DEPOSIT_PENDING] = "the deposit is still confirming at Cobo (PENDING): only a HELD deposit can be acted on",
    [DEPOSIT_RECEIVED] = "the deposit is with the locker (RECEIVED): only a HELD deposit can be acted on",
    [DEPOSIT_LOCKED] = "the deposit is being credited (LOCKED): only a HELD deposit can be acted on",
    [DEPOSIT_CREDITED] = "the deposit is already credited (CREDITED)",
    [DEPOSIT_NOTIFIED] = "the deposit is already credited (NOTIFIED)",
    [DEPOSIT_HELD] = "not an action on a held deposit",
    [DEPOSIT_REJECTED] = "the deposit is rejected for good (REJECTED)",
};

static const char *const s_names[DESK_ACTION_COUNT] = { "retry", "assign", "approve", "reject" };

static desk_step_t s_refuse(const char *why)
{
    desk_step_t s = { DESK_REFUSE, DEPOSIT_EV_ADMIN_RETRY, why };
    return s;
}

desk_step_t desk_step(desk_action_t action, const desk_facts_t *f)
{
    if (!f || (unsigned) action >= DESK_ACTION_COUNT || (unsigned) f->state >= DEPOSIT_STATE_COUNT)
        return s_refuse("not an action kasa knows");
    const s_cell_t *c = &s_table[f->state][action];
    if (c->guard == S_NONE)
        return s_refuse(s_refusal[f->state]);
    int waiting = f->approvals < f->approvals_needed;
    desk_step_t move = { DESK_MOVE, (deposit_event_t) c->event, NULL };
    switch ((s_guard_t) c->guard) {
    case S_NOT_AWAIT:
        return waiting ? s_refuse("the deposit waits for approval: approve or reject it") : move;
    case S_APPROVAL:
        if (f->approvals_needed == 0)
            return s_refuse("the deposit is not over the auto-credit limit: it needs no approval");
        if (!waiting)
            return s_refuse("the deposit is already approved: retry or assign it");
        if (f->actor_approved)
            return s_refuse("you approved this deposit already: it needs another approver");
        if (f->approvals + 1 < f->approvals_needed) {
            desk_step_t note = { DESK_NOTE, (deposit_event_t) c->event, NULL };
            return note;
        }
        return move;
    default:
        return move;
    }
}

int desk_approvals_needed(money_atto_t amount, money_atto_t auto_limit, money_atto_t dual_limit)
{
    if (!auto_limit || amount <= auto_limit)
        return 0;
    return dual_limit && amount > dual_limit ? 2 : 1;
}

const char *desk_action_name(desk_action_t action)
{
    return (unsigned) action < DESK_ACTION_COUNT ? s_names[action] : "?";
}

int desk_action_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < DESK_ACTION_COUNT; i++)
        if (strcmp(s_names[i], name) == 0)
            return i;
    return -1;
}

void desk_describe(desk_action_t action, int noted, const char *tx_id, uint64_t login, char *buf, size_t len)
{
    switch (action) {
    case DESK_RETRY: snprintf(buf, len, "retried %s: back to the locker", tx_id); break;
    case DESK_ASSIGN:
        snprintf(buf, len, "assigned %s to login %" PRIu64 ": back to the locker", tx_id, login);
        break;
    case DESK_APPROVE:
        if (noted)
            snprintf(buf, len, "approval of %s recorded: it waits for a second approver", tx_id);
        else
            snprintf(buf, len, "approved %s: back to the locker, which credits it", tx_id);
        break;
    case DESK_REJECT: snprintf(buf, len, "rejected %s for good", tx_id); break;
    default: snprintf(buf, len, "?"); break;
    }
}
