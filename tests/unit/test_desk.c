/* test_desk.c — the operators' desk: every action in every state and approval situation against a
 * table written out here by hand; the approvals a deposit's amount needs; and, through the registry
 * with a real journal, that a refused action journals nothing, that an approval short of the count
 * journals only itself, that two approvals by one admin never count twice, and that a replay
 * restores approvals and decisions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/registry.h"
#include "journal/journal.h"
#include "schema/desk.h"
#include "schema/money.h"
#include "tests/check.h"
#include "tests/unit/support_tmp.h"

/* Approval situations: needed, approvals so far, acting admin among them. */
typedef struct { const char *name; int needed, have, mine; } s_sit_t;
static const s_sit_t s_sits[] = {
    { "needs none", 0, 0, 0 },       { "waits for one", 1, 0, 0 },
    { "waits for two", 2, 0, 0 },    { "one of two by another", 2, 1, 0 },
    { "one of two by me", 2, 1, 1 }, { "approved", 1, 1, 0 },
};
#define S_NSITS 6

/* Expected in HELD, per action (rows) and situation (columns): "x" refused, "n" noted, ">EV" moved. */
static const char *const s_held[DESK_ACTION_COUNT][S_NSITS] = {
    /*               none             wait 1            wait 2        1 of 2 other      1 of 2 mine  approved */
    [DESK_RETRY]   = { ">ADMIN_RETRY",  "x",              "x",          "x",              "x",         ">ADMIN_RETRY" },
    [DESK_ASSIGN]  = { ">ADMIN_ASSIGN", ">ADMIN_ASSIGN",  ">ADMIN_ASSIGN", ">ADMIN_ASSIGN", ">ADMIN_ASSIGN", ">ADMIN_ASSIGN" },
    [DESK_APPROVE] = { "x",             ">ADMIN_APPROVE", "n",          ">ADMIN_APPROVE", "x",         "x" },
    [DESK_REJECT]  = { ">ADMIN_REJECT", ">ADMIN_REJECT",  ">ADMIN_REJECT", ">ADMIN_REJECT", ">ADMIN_REJECT", ">ADMIN_REJECT" },
};

static void test_every_action_in_every_state_and_approval_situation(void)
{
    for (int st = 0; st < DEPOSIT_STATE_COUNT; st++)
        for (int a = 0; a < DESK_ACTION_COUNT; a++)
            for (int i = 0; i < S_NSITS; i++) {
                desk_facts_t f = { (deposit_state_t) st, s_sits[i].needed, s_sits[i].have, s_sits[i].mine };
                desk_step_t got = desk_step((desk_action_t) a, &f);
                const char *want = st == DEPOSIT_HELD ? s_held[a][i] : "x";
                int ok;
                if (want[0] == 'x')
                    ok = got.outcome == DESK_REFUSE && got.why && got.why[0];
                else if (want[0] == 'n')
                    ok = got.outcome == DESK_NOTE && got.event == DEPOSIT_EV_ADMIN_APPROVE;
                else
                    ok = got.outcome == DESK_MOVE && strcmp(deposit_event_name(got.event), want + 1) == 0 &&
                         deposit_step((deposit_state_t) st, got.event).outcome == DEPOSIT_STEP_MOVE;
                if (!ok) {
                    fprintf(stderr, "  %s + %s (%s): got outcome %d event %s, want %s\n",
                            deposit_state_name((deposit_state_t) st), desk_action_name((desk_action_t) a),
                            s_sits[i].name, got.outcome, deposit_event_name(got.event), want);
                    CHECK(0);
                }
            }
}

static void test_refusals_say_why_in_words(void)
{
    desk_facts_t f = { DEPOSIT_CREDITED, 0, 0, 0 };
    CHECK(strstr(desk_step(DESK_RETRY, &f).why, "already credited") != NULL);
    f.state = DEPOSIT_HELD;
    f.approvals_needed = 1;
    CHECK(strstr(desk_step(DESK_RETRY, &f).why, "waits for approval") != NULL);
    f.approvals_needed = 0;
    CHECK(strstr(desk_step(DESK_APPROVE, &f).why, "needs no approval") != NULL);
    CHECK_EQ_INT(desk_step((desk_action_t) DESK_ACTION_COUNT, &f).outcome, DESK_REFUSE);
    CHECK_EQ_INT(desk_step(DESK_RETRY, NULL).outcome, DESK_REFUSE);
    f.state = (deposit_state_t) DEPOSIT_STATE_COUNT;
    CHECK_EQ_INT(desk_step(DESK_REJECT, &f).outcome, DESK_REFUSE);
}

static money_atto_t s_m(const char *text)
{
    money_atto_t v = 0;
    money_parse(text, &v, NULL, 0);
    return v;
}

static void test_approvals_needed_by_amount_and_limits(void)
{
    CHECK_EQ_INT(desk_approvals_needed(s_m("1000000"), 0, 0), 0);              /* no limit */
    CHECK_EQ_INT(desk_approvals_needed(s_m("10000"), s_m("10000"), 0), 0);      /* at the limit: automatic */
    CHECK_EQ_INT(desk_approvals_needed(s_m("10000.000001"), s_m("10000"), 0), 1);
    CHECK_EQ_INT(desk_approvals_needed(s_m("9999999"), s_m("10000"), 0), 1);    /* no second limit */
    CHECK_EQ_INT(desk_approvals_needed(s_m("50000"), s_m("10000"), s_m("50000")), 1);
    CHECK_EQ_INT(desk_approvals_needed(s_m("50000.1"), s_m("10000"), s_m("50000")), 2);
}

static void test_action_names_round_trip(void)
{
    static const char *const names[] = { "retry", "assign", "approve", "reject" };
    for (int i = 0; i < DESK_ACTION_COUNT; i++) {
        CHECK_EQ_STR(desk_action_name((desk_action_t) i), names[i]);
        CHECK_EQ_INT(desk_action_from_name(names[i]), i);
    }
    CHECK_EQ_INT(desk_action_from_name("Retry"), -1);
    CHECK_EQ_INT(desk_action_from_name(NULL), -1);
    CHECK_EQ_STR(desk_action_name((desk_action_t) 9), "?");
}

/* ---- through the registry, with a real journal ---- */

static char s_dir[512];
static config_t s_cfg;

static journal_t *s_journal(const char *name)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "desk", name);
    char err[256];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    if (!j)
        fprintf(stderr, "journal_open: %s\n", err);
    return j;
}

/* A deposit of amount taken to HELD through the commit gate. */
static void s_held_deposit(registry_t *reg, journal_t *j, const char *tx, const char *amount)
{
    char err[160];
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.event = DEPOSIT_EV_SEEN_COMPLETED;
    snprintf(r.amount, sizeof r.amount, "%s", amount);
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.address, sizeof r.address, "TAddr1");
    CHECK_EQ_INT(registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.event = DEPOSIT_EV_HOLD;
    snprintf(r.reason, sizeof r.reason, "over the limit");
    CHECK_EQ_INT(registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
}

static registry_result_t s_act(registry_t *reg, journal_t *j, const char *tx, desk_action_t a, uint64_t login,
                               const char *actor, const char *reason, unsigned *fx, char *err)
{
    desk_request_t req = { tx, a, login, actor, "test", reason };
    return registry_desk(reg, j, &s_cfg, &req, fx, NULL, NULL, err, 200);
}

static void test_refused_actions_journal_nothing(void)
{
    journal_t *j = s_journal("refused");
    registry_t *reg = registry_new(100);
    CHECK(j && reg);
    if (!j || !reg)
        return;
    char err[200];
    s_held_deposit(reg, j, "T1", "5");
    uint64_t before = journal_durable_lsn(j);
    CHECK_EQ_INT(s_act(reg, j, "nope", DESK_RETRY, 0, "admin:a", "why", NULL, err), REGISTRY_ILLEGAL);
    CHECK(strstr(err, "unknown deposit") != NULL);
    CHECK_EQ_INT(s_act(reg, j, "T1", DESK_APPROVE, 0, "admin:a", "why", NULL, err), REGISTRY_ILLEGAL);
    CHECK(strstr(err, "needs no approval") != NULL);
    CHECK_EQ_INT(s_act(reg, j, "T1", DESK_RETRY, 0, "admin:a", "", NULL, err), REGISTRY_ILLEGAL);   /* no reason */
    CHECK_EQ_INT(s_act(reg, j, "T1", DESK_RETRY, 0, "admin:a", "two\nlines", NULL, err), REGISTRY_ILLEGAL);
    CHECK_EQ_INT(s_act(reg, j, "T1", DESK_ASSIGN, 0, "admin:a", "no login", NULL, err), REGISTRY_ILLEGAL);
    CHECK_EQ_INT(s_act(reg, j, "T1", DESK_RETRY, 7, "admin:a", "login on retry", NULL, err), REGISTRY_ILLEGAL);
    CHECK_EQ_INT(journal_durable_lsn(j), before);
    /* a reject moves it; a second reject is refused: REJECTED is final */
    unsigned fx = 99;
    CHECK_EQ_INT(s_act(reg, j, "T1", DESK_REJECT, 0, "admin:a", "scam", &fx, err), REGISTRY_MOVED);
    CHECK_EQ_INT(fx, DEPOSIT_EFFECT_NONE);
    CHECK_EQ_INT(journal_durable_lsn(j), before + 2);   /* the action, then the transition */
    CHECK_EQ_INT(s_act(reg, j, "T1", DESK_REJECT, 0, "admin:a", "again", NULL, err), REGISTRY_ILLEGAL);
    CHECK(strstr(err, "REJECTED") != NULL);
    CHECK_EQ_INT(journal_durable_lsn(j), before + 2);
    registry_destroy(&reg);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

static void test_two_approvers_are_needed_over_the_second_limit_and_replay_keeps_them(void)
{
    journal_t *j = s_journal("approve");
    registry_t *reg = registry_new(100);
    CHECK(j && reg);
    if (!j || !reg)
        return;
    char err[200];
    s_held_deposit(reg, j, "BIG", "60000");
    s_held_deposit(reg, j, "MID", "20000");
    uint64_t before = journal_durable_lsn(j);
    unsigned fx = 0;
    CHECK_EQ_INT(s_act(reg, j, "BIG", DESK_RETRY, 0, "admin:a", "try", NULL, err), REGISTRY_ILLEGAL);
    CHECK_EQ_INT(s_act(reg, j, "BIG", DESK_APPROVE, 0, "admin:a", "known client", &fx, err), REGISTRY_SAME);
    CHECK_EQ_INT(journal_durable_lsn(j), before + 1);   /* the approval alone */
    CHECK_EQ_INT(s_act(reg, j, "BIG", DESK_APPROVE, 0, "admin:a", "me again", NULL, err), REGISTRY_ILLEGAL);
    CHECK(strstr(err, "another approver") != NULL);
    CHECK_EQ_INT(journal_durable_lsn(j), before + 1);
    registry_entry_t e;
    CHECK(registry_get(reg, "BIG", &e) == 0 && e.view.state == DEPOSIT_HELD && e.approvals == 1);
    CHECK_EQ_INT(s_act(reg, j, "BIG", DESK_APPROVE, 0, "admin:b", "checked the chain", &fx, err), REGISTRY_MOVED);
    CHECK_EQ_INT(fx, DEPOSIT_EFFECT_LOCK);
    CHECK(registry_get(reg, "BIG", &e) == 0 && e.view.state == DEPOSIT_RECEIVED && e.approvals == 2);
    CHECK_EQ_STR(e.approvers[0], "admin:a");
    CHECK_EQ_STR(e.approvers[1], "admin:b");
    CHECK_EQ_INT(s_act(reg, j, "MID", DESK_APPROVE, 0, "admin:a", "fine", &fx, err), REGISTRY_MOVED);
    CHECK_EQ_INT(s_act(reg, j, "MID", DESK_APPROVE, 0, "admin:b", "late", &fx, err), REGISTRY_ILLEGAL);

    /* a replay rebuilds the same approvals and states */
    registry_t *again = registry_new(100);
    CHECK(registry_replay(again, s_dir, err, sizeof err) > 0);
    CHECK(registry_get(again, "BIG", &e) == 0 && e.view.state == DEPOSIT_RECEIVED && e.approvals == 2);
    CHECK_EQ_STR(e.approvers[1], "admin:b");
    CHECK(registry_get(again, "MID", &e) == 0 && e.view.state == DEPOSIT_RECEIVED && e.approvals == 1);
    registry_destroy(&again);
    registry_destroy(&reg);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

int main(void)
{
    money_parse("10000", &s_cfg.auto_credit_limit, NULL, 0);
    money_parse("50000", &s_cfg.dual_approval_limit, NULL, 0);
    RUN(test_every_action_in_every_state_and_approval_situation);
    RUN(test_refusals_say_why_in_words);
    RUN(test_approvals_needed_by_amount_and_limits);
    RUN(test_action_names_round_trip);
    RUN(test_refused_actions_journal_nothing);
    RUN(test_two_approvers_are_needed_over_the_second_limit_and_replay_keeps_them);
    return check_done();
}
