/* test_withdrawal.c — the withdrawal state machine against a table written out here by hand, the
 * money rules over random event sequences (one debit, one transfer per final failure and person's
 * choice, one refund and never after a completed transfer, never both completed and refunded), and
 * the pure helpers: references, request ids, the quote, approvals. KASA_SEED=<n> repeats a run. */
#include "schema/withdrawal.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "actors/mt5.h"
#include "tests/check.h"

/* "x" ILLEGAL; "=" SAME; "=A" SAME with ALERT; ">S" MOVE to S; effects after '+': D debit, T transfer,
 * R refund, A alert. Columns in the order of WITHDRAWAL_EVENTS. */
static const char *const s_expected[WITHDRAWAL_STATE_COUNT][WITHDRAWAL_EVENT_COUNT] = {
    /*                 REQUEST         DEBIT_OK    DEBIT_REFUSED APPROVE       REJECT          T_SENT  T_DONE          T_FAILED   T_REFUSED  REFUND          RETRANSFER     REFUND_OK */
    [WITHDRAWAL_NONE]      = { ">REQUESTED+D", "x",        "x",        "x",          "x",            "x",    "x",            "x",       "x",       "x",            "x",           "x" },
    [WITHDRAWAL_REQUESTED] = { "x",            ">DEBITED", ">REJECTED","x",          "x",            "x",    "x",            "x",       "x",       "x",            "x",           "x" },
    [WITHDRAWAL_DEBITED]   = { "x",            "x",        "x",        ">APPROVED+T",">REFUNDING+R", "x",    "x",            "x",       "x",       "x",            "x",           "x" },
    [WITHDRAWAL_APPROVED]  = { "x",            "x",        "x",        "x",          "x",            ">SENT",">COMPLETED",   ">HELD+A", ">HELD+A", "x",            "x",           "x" },
    [WITHDRAWAL_SENT]      = { "x",            "x",        "x",        "x",          "x",            "=",    ">COMPLETED",   ">HELD+A", "x",       "x",            "x",           "x" },
    [WITHDRAWAL_COMPLETED] = { "x",            "x",        "x",        "x",          "x",            "=",    "=",            "=A",      "x",       "x",            "x",           "x" },
    [WITHDRAWAL_HELD]      = { "x",            "x",        "x",        "x",          "x",            "=",    ">COMPLETED+A", "=",       "x",       ">REFUNDING+R", ">APPROVED+T", "x" },
    [WITHDRAWAL_REJECTED]  = { "x",            "x",        "x",        "x",          "x",            "x",    "x",            "x",       "x",       "x",            "x",           "x" },
    [WITHDRAWAL_REFUNDING] = { "x",            "x",        "x",        "x",          "x",            "=",    "=A",           "=",       "x",       "x",            "x",           ">REFUNDED" },
    [WITHDRAWAL_REFUNDED]  = { "x",            "x",        "x",        "x",          "x",            "=",    "=A",           "=",       "x",       "x",            "x",           "x" },
};

static unsigned s_fx(const char *p)
{
    unsigned fx = 0;
    for (; *p; p++) {
        if (*p == 'D') fx |= WITHDRAWAL_EFFECT_DEBIT;
        if (*p == 'T') fx |= WITHDRAWAL_EFFECT_TRANSFER;
        if (*p == 'R') fx |= WITHDRAWAL_EFFECT_REFUND;
        if (*p == 'A') fx |= WITHDRAWAL_EFFECT_ALERT;
    }
    return fx;
}

static withdrawal_step_t s_expect(int st, int ev)
{
    const char *c = s_expected[st][ev];
    withdrawal_step_t e = { WITHDRAWAL_STEP_ILLEGAL, (withdrawal_state_t) st, 0 };
    if (c[0] == '=') {
        e.outcome = WITHDRAWAL_STEP_SAME;
        e.effects = s_fx(c + 1);
    } else if (c[0] == '>') {
        char name[32];
        size_t n = strcspn(c + 1, "+");
        memcpy(name, c + 1, n);
        name[n] = '\0';
        e.outcome = WITHDRAWAL_STEP_MOVE;
        e.to = (withdrawal_state_t) withdrawal_state_from_name(name);
        e.effects = s_fx(c + 1 + n);
    }
    return e;
}

static void test_every_state_event_pair_matches_the_written_table(void)
{
    for (int st = 0; st < WITHDRAWAL_STATE_COUNT; st++)
        for (int ev = 0; ev < WITHDRAWAL_EVENT_COUNT; ev++) {
            withdrawal_step_t want = s_expect(st, ev);
            withdrawal_step_t got = withdrawal_step((withdrawal_state_t) st, (withdrawal_event_t) ev);
            CHECK((int) want.to >= 0);
            if (got.outcome != want.outcome || got.to != want.to || got.effects != want.effects) {
                fprintf(stderr, "  %s + %s: got %d %s fx %u, want %d %s fx %u\n",
                        withdrawal_state_name((withdrawal_state_t) st), withdrawal_event_name((withdrawal_event_t) ev),
                        got.outcome, withdrawal_state_name(got.to), got.effects, want.outcome,
                        withdrawal_state_name(want.to), want.effects);
                CHECK(0);
            }
        }
}

static void test_out_of_range_input_is_illegal_not_a_crash(void)
{
    withdrawal_step_t s = withdrawal_step((withdrawal_state_t) WITHDRAWAL_STATE_COUNT, WITHDRAWAL_EV_REQUEST);
    CHECK_EQ_INT(s.outcome, WITHDRAWAL_STEP_ILLEGAL);
    s = withdrawal_step(WITHDRAWAL_SENT, (withdrawal_event_t) -1);
    CHECK_EQ_INT(s.outcome, WITHDRAWAL_STEP_ILLEGAL);
    CHECK_EQ_INT(s.to, WITHDRAWAL_SENT);
    CHECK_EQ_INT(s.effects, 0);
}

static void test_names_round_trip_and_unknown_names_are_refused(void)
{
    for (int i = 0; i < WITHDRAWAL_STATE_COUNT; i++)
        CHECK_EQ_INT(withdrawal_state_from_name(withdrawal_state_name((withdrawal_state_t) i)), i);
    for (int i = 0; i < WITHDRAWAL_EVENT_COUNT; i++)
        CHECK_EQ_INT(withdrawal_event_from_name(withdrawal_event_name((withdrawal_event_t) i)), i);
    CHECK_EQ_STR(withdrawal_state_name(WITHDRAWAL_HELD), "HELD");
    CHECK_EQ_STR(withdrawal_event_name(WITHDRAWAL_EV_TRANSFER_DONE), "TRANSFER_DONE");
    CHECK_EQ_STR(withdrawal_state_name((withdrawal_state_t) 99), "?");
    CHECK_EQ_INT(withdrawal_state_from_name("held"), -1);
    CHECK_EQ_INT(withdrawal_state_from_name(NULL), -1);
}

static void test_only_completed_rejected_and_refunded_are_final(void)
{
    for (int i = 0; i < WITHDRAWAL_STATE_COUNT; i++)
        CHECK_EQ_INT(withdrawal_state_is_final((withdrawal_state_t) i),
                     i == WITHDRAWAL_COMPLETED || i == WITHDRAWAL_REJECTED || i == WITHDRAWAL_REFUNDED);
}

static void test_main_line_goes_from_request_to_completed(void)
{
    withdrawal_event_t path[] = { WITHDRAWAL_EV_REQUEST, WITHDRAWAL_EV_DEBIT_OK, WITHDRAWAL_EV_APPROVE,
                                  WITHDRAWAL_EV_TRANSFER_SENT, WITHDRAWAL_EV_TRANSFER_DONE };
    withdrawal_state_t want[] = { WITHDRAWAL_REQUESTED, WITHDRAWAL_DEBITED, WITHDRAWAL_APPROVED, WITHDRAWAL_SENT,
                                  WITHDRAWAL_COMPLETED };
    withdrawal_state_t st = WITHDRAWAL_NONE;
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        withdrawal_step_t s = withdrawal_step(st, path[i]);
        CHECK_EQ_INT(s.outcome, WITHDRAWAL_STEP_MOVE);
        CHECK_EQ_INT(s.to, want[i]);
        st = s.to;
    }
}

/* ---- the property test ---- */

static uint64_t s_rng;
static uint64_t s_next(void)
{
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct {
    withdrawal_state_t state;
    int debits, transfers, refunds;
    int completed, refunded;
    int transfer_final;    /* Cobo said the current transfer is final-failed (or refused to create it) */
    int person_chose_new;  /* a person's RETRANSFER since that final failure */
    char why[160];
} s_life_t;

static int s_fail(s_life_t *l, const char *what, withdrawal_state_t from, withdrawal_event_t ev)
{
    if (!l->why[0])
        snprintf(l->why, sizeof l->why, "%s (at %s + %s)", what, withdrawal_state_name(from),
                 withdrawal_event_name(ev));
    return -1;
}

static int s_feed(s_life_t *l, withdrawal_event_t ev)
{
    withdrawal_state_t from = l->state;
    withdrawal_step_t s = withdrawal_step(from, ev);
    if (s.outcome != WITHDRAWAL_STEP_MOVE && s.to != from)
        return s_fail(l, "a non-move changed the state", from, ev);
    if (s.outcome != WITHDRAWAL_STEP_MOVE && (s.effects & ~(unsigned) WITHDRAWAL_EFFECT_ALERT))
        return s_fail(l, "a non-move asks for work", from, ev);
    if (s.outcome != WITHDRAWAL_STEP_MOVE)
        return 0;
    if (withdrawal_state_is_final(from))
        return s_fail(l, "left a final state", from, ev);
    if (s.to == WITHDRAWAL_NONE || (from != WITHDRAWAL_NONE && s.to == WITHDRAWAL_REQUESTED))
        return s_fail(l, "went back before the request", from, ev);
    if (ev == WITHDRAWAL_EV_TRANSFER_FAILED || ev == WITHDRAWAL_EV_TRANSFER_REFUSED) {
        l->transfer_final = 1;
        l->person_chose_new = 0;
    }
    if (ev == WITHDRAWAL_EV_RETRANSFER)
        l->person_chose_new = 1;
    if (s.effects & WITHDRAWAL_EFFECT_DEBIT && ++l->debits > 1)
        return s_fail(l, "two debits", from, ev);
    if (s.effects & WITHDRAWAL_EFFECT_TRANSFER) {
        if (l->transfers > 0 && !(l->transfer_final && l->person_chose_new))
            return s_fail(l, "a second transfer without a final failure and a person's choice", from, ev);
        if (l->completed)
            return s_fail(l, "a transfer after a completed one", from, ev);
        l->transfers++;
        l->transfer_final = 0;
    }
    if (s.effects & WITHDRAWAL_EFFECT_REFUND) {
        if (l->completed)
            return s_fail(l, "a refund after a completed transfer", from, ev);
        if (++l->refunds > 1)
            return s_fail(l, "two refunds", from, ev);
        if (!l->debits)
            return s_fail(l, "a refund without a debit", from, ev);
        if (l->transfers > 0 && !l->transfer_final)
            return s_fail(l, "a refund while a transfer may still complete", from, ev);
    }
    if (s.to == WITHDRAWAL_COMPLETED && !l->transfers)
        return s_fail(l, "completed without a transfer", from, ev);
    if (s.to == WITHDRAWAL_COMPLETED)
        l->completed = 1;
    if (s.to == WITHDRAWAL_REFUNDED)
        l->refunded = 1;
    if (l->completed && (l->refunded || l->refunds))
        return s_fail(l, "both completed and refunded", from, ev);
    l->state = s.to;
    return 0;
}

static void test_random_event_sequences_keep_every_money_rule(void)
{
    const char *seed_env = getenv("KASA_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t) time(NULL);
    int runs = 20000, finals = 0, moves = 0;
    for (int run = 0; run < runs; run++) {
        s_rng = seed + (uint64_t) run * 7919;
        s_life_t l = { .state = WITHDRAWAL_NONE };
        int n = 1 + (int) (s_next() % 60);
        for (int i = 0; i < n; i++) {
            /* Half the time the event the state is waiting for, so the runs reach every state. */
            withdrawal_event_t ev = (withdrawal_event_t) (s_next() % WITHDRAWAL_EVENT_COUNT);
            withdrawal_state_t before = l.state;
            if (s_feed(&l, ev) != 0) {
                fprintf(stderr, "  seed %" PRIu64 " run %d: %s\n", seed, run, l.why);
                CHECK(0);
                return;
            }
            moves += l.state != before;
        }
        finals += withdrawal_state_is_final(l.state);
    }
    CHECK(finals > runs / 20);
    CHECK(moves > runs);
}

/* Every path a person can take after each failure, exhaustively to depth 8. */
static int s_walk(s_life_t l, int depth)
{
    if (depth == 0)
        return 0;
    for (int ev = 0; ev < WITHDRAWAL_EVENT_COUNT; ev++) {
        s_life_t next = l;
        if (s_feed(&next, (withdrawal_event_t) ev) != 0) {
            fprintf(stderr, "  %s\n", next.why);
            return -1;
        }
        if (next.state != l.state && s_walk(next, depth - 1) != 0)
            return -1;
    }
    return 0;
}

static void test_every_path_to_depth_eight_keeps_every_money_rule(void)
{
    s_life_t l = { .state = WITHDRAWAL_NONE };
    CHECK_EQ_INT(s_walk(l, 8), 0);
}

/* ---- references and ids ---- */

static void test_references_are_distinct_and_fit_mt5_comments(void)
{
    unsigned char rnd[10] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0xff };
    char id[WITHDRAWAL_ID_HEX + 2], debit[32], refund[32], rq[48];
    withdrawal_id_make(rnd, id);
    CHECK_EQ_STR(id, "w0123456789abcdef00ff");
    CHECK(withdrawal_id_valid(id));
    CHECK(!withdrawal_id_valid("w0123"));
    CHECK(!withdrawal_id_valid("x0123456789abcdef00ff"));
    CHECK(!withdrawal_id_valid("w0123456789ABCDEF00ff"));
    withdrawal_debit_ref(id, debit);
    withdrawal_refund_ref(id, refund);
    CHECK_EQ_STR(debit, "kasa wd d0123456789abcdef00ff");
    CHECK_EQ_STR(refund, "kasa wr e0123456789abcdef00ff");
    CHECK(strlen(debit) <= MT5_COMMENT_MAX);
    CHECK(mt5_comment_matches(debit, debit));
    CHECK(!mt5_comment_matches(refund, debit));
    CHECK(!mt5_comment_matches(debit, refund));
    /* A deposit's reference never matches (its core comes from Cobo's id, not this one). */
    CHECK(!mt5_comment_matches("kasa 0123456789abcdef00ff0000000000", debit));
    CHECK_EQ_INT(withdrawal_ref_kind(debit), 'd');
    CHECK_EQ_INT(withdrawal_ref_kind(refund), 'r');
    CHECK_EQ_INT(withdrawal_ref_kind("kasa 0123456789abcdef"), 0);
    withdrawal_request_id(id, 1, rq);
    CHECK_EQ_STR(rq, "kasa-w0123456789abcdef00ff-1");
    withdrawal_request_id(id, 2, rq);
    CHECK_EQ_STR(rq, "kasa-w0123456789abcdef00ff-2");
}

/* ---- the quote ---- */

static money_atto_t s_m(const char *text)
{
    money_atto_t v = 0;
    char err[80];
    CHECK(money_parse(text, &v, err, sizeof err) == 0);
    return v;
}

static void test_quote_takes_the_fee_and_rounds_the_token_amount_down(void)
{
    withdrawal_rule_t rule = { s_m("1"), s_m("1.5"), s_m("10"), s_m("5000"), s_m("10000") };
    withdrawal_quote_t q;
    char err[160];
    CHECK(withdrawal_quote(s_m("100"), 2, &rule, 6, 0, &q, err, sizeof err) == 0);
    CHECK_EQ_INT(q.amount_minor, 10000);
    CHECK_EQ_STR(q.token_text, "98.5");
    CHECK_EQ_STR(q.fee_text, "1.5");
    CHECK_EQ_STR(q.amount_text, "100.00");
    /* A rate of 3 per token: 98.5 / 3 = 32.8333333..., cut at 6 decimals. */
    rule.rate = s_m("3");
    CHECK(withdrawal_quote(s_m("100"), 2, &rule, 6, 0, &q, err, sizeof err) == 0);
    CHECK_EQ_STR(q.token_text, "32.833333");
    /* Cent accounts: 100 USC per USD token. */
    rule = (withdrawal_rule_t) { s_m("100"), s_m("0"), s_m("1"), 0, 0 };
    CHECK(withdrawal_quote(s_m("12345"), 2, &rule, 6, 0, &q, err, sizeof err) == 0);
    CHECK_EQ_STR(q.token_text, "123.45");
}

/* A token amount is rounded down to the token's decimals at Cobo; what that leaves over stays in the
 * account: the debit is the fee and what the tokens sent are worth, up to the next minor unit. */
static void test_quote_rounds_to_the_tokens_decimals_and_keeps_the_rest(void)
{
    withdrawal_rule_t rule = { s_m("3"), s_m("1.5"), s_m("10"), 0, 0 };
    withdrawal_quote_t q;
    char err[160];
    CHECK(withdrawal_quote(s_m("100"), 2, &rule, 0, 0, &q, err, sizeof err) == 0);
    CHECK_EQ_STR(q.token_text, "32");               /* 98.5 / 3 = 32.83...: a whole token at most */
    CHECK_EQ_INT(q.amount_minor, 9750);              /* 1.5 + 32 × 3: 2.50 stays in the account */
    CHECK_EQ_STR(q.amount_text, "97.50");
    rule = (withdrawal_rule_t) { s_m("7"), 0, s_m("1"), 0, 0 };
    CHECK(withdrawal_quote(s_m("100"), 2, &rule, 2, 0, &q, err, sizeof err) == 0);
    CHECK_EQ_STR(q.token_text, "14.28");
    CHECK_EQ_INT(q.amount_minor, 9996);
    /* 0.1234 per token, 6 decimals: 100 / 0.1234 = 810.372771...; worth 99.99999994.. → 100.00 */
    rule = (withdrawal_rule_t) { s_m("0.1234"), 0, s_m("1"), 0, 0 };
    CHECK(withdrawal_quote(s_m("100"), 2, &rule, 6, 0, &q, err, sizeof err) == 0);
    CHECK_EQ_STR(q.token_text, "810.372771");
    CHECK_EQ_INT(q.amount_minor, 10000);
    /* a fee finer than the account's cents is rounded up with the rest, never past what was asked */
    rule = (withdrawal_rule_t) { s_m("1"), s_m("0.005"), s_m("1"), 0, 0 };
    CHECK(withdrawal_quote(s_m("10"), 2, &rule, 0, 0, &q, err, sizeof err) == 0);
    CHECK_EQ_STR(q.token_text, "9");
    CHECK_EQ_INT(q.amount_minor, 901);
    /* every token amount fits its decimals, whatever was asked */
    for (int d = 0; d <= 18; d++) {
        rule = (withdrawal_rule_t) { s_m("0.37"), s_m("0.1"), s_m("1"), 0, 0 };
        CHECK(withdrawal_quote(s_m("123.45"), 2, &rule, d, 0, &q, err, sizeof err) == 0);
        const char *dot = strchr(q.token_text, '.');
        CHECK(!dot || (int) strlen(dot + 1) <= d);
        CHECK(q.amount_minor <= 12345 && q.amount_minor > 0);
    }
}

static void test_quote_refuses_amounts_outside_the_rules(void)
{
    withdrawal_rule_t rule = { s_m("1"), s_m("1"), s_m("10"), s_m("500"), s_m("1000") };
    withdrawal_quote_t q;
    char err[160];
    CHECK(withdrawal_quote(s_m("9.99"), 2, &rule, 6, 0, &q, err, sizeof err) == -1);
    CHECK(strstr(err, "minimum") != NULL);
    CHECK(withdrawal_quote(s_m("500.01"), 2, &rule, 6, 0, &q, err, sizeof err) == -1);
    CHECK(strstr(err, "maximum") != NULL);
    CHECK(withdrawal_quote(s_m("400"), 2, &rule, 6, 70000, &q, err, sizeof err) == -1);
    CHECK(strstr(err, "daily") != NULL && strstr(err, "300 left") != NULL);
    CHECK(withdrawal_quote(s_m("300"), 2, &rule, 6, 70000, &q, err, sizeof err) == 0);
    CHECK(withdrawal_quote(s_m("100.001"), 2, &rule, 6, 0, &q, err, sizeof err) == -1);
    CHECK(strstr(err, "decimals") != NULL);
    CHECK(withdrawal_quote(0, 2, &rule, 6, 0, &q, err, sizeof err) == -1);
    rule.fee = s_m("20");
    rule.minimum = s_m("1");
    CHECK(withdrawal_quote(s_m("20"), 2, &rule, 6, 0, &q, err, sizeof err) == -1);
    CHECK(strstr(err, "fee") != NULL);
    rule.rate = 0;
    CHECK(withdrawal_quote(s_m("100"), 2, &rule, 6, 0, &q, err, sizeof err) == -1);
}

static void test_approvals_follow_the_limits(void)
{
    CHECK_EQ_INT(withdrawal_approvals_needed(s_m("100"), 0, 0), 1);
    CHECK_EQ_INT(withdrawal_approvals_needed(s_m("100"), s_m("100"), 0), 0);
    CHECK_EQ_INT(withdrawal_approvals_needed(s_m("100.01"), s_m("100"), 0), 1);
    CHECK_EQ_INT(withdrawal_approvals_needed(s_m("5000.01"), s_m("100"), s_m("5000")), 2);
    CHECK_EQ_INT(withdrawal_approvals_needed(s_m("5000"), 0, s_m("5000")), 1);
}

static void test_rules_parse_and_refuse_bad_entries(void)
{
    withdrawal_rules_t rules;
    char err[200];
    CHECK(withdrawal_rules_parse("TRON_USDT=1:1:10:5000:20000, TRON_USDT__USC=100:100:1000:0:0", &rules, err,
                                 sizeof err) == 0);
    CHECK_EQ_INT(rules.count, 2);
    const withdrawal_rule_t *r = withdrawal_rules_find(&rules, "TRON_USDT", "usd");
    CHECK(r && r->fee == s_m("1") && r->daily == s_m("20000"));
    r = withdrawal_rules_find(&rules, "TRON_USDT", "USC");
    CHECK(r && r->rate == s_m("100") && r->maximum == 0);
    CHECK(withdrawal_rules_find(&rules, "ETH_USDT", "USD") == NULL);
    CHECK(withdrawal_rules_parse("", &rules, err, sizeof err) == 0 && rules.count == 0);
    CHECK(withdrawal_rules_parse(NULL, &rules, err, sizeof err) == 0);
    static const char *const bad[] = { "TRON_USDT=1:1:10:5000", "TRON_USDT=0:1:10:5000:0", "=1:1:1:1:1",
                                       "tron=1:1:1:1:1", "TRON_USDT=1:1:10:5:0", "TRON_USDT=1:1:1:0:0,TRON_USDT=2:1:1:0:0",
                                       "TRON_USDT=1:-1:1:0:0", "TRON_USDT" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(withdrawal_rules_parse(bad[i], &rules, err, sizeof err) == -1);
        CHECK(strstr(err, "KASA_WITHDRAW_RULES") != NULL);
    }
}

int main(void)
{
    RUN(test_every_state_event_pair_matches_the_written_table);
    RUN(test_out_of_range_input_is_illegal_not_a_crash);
    RUN(test_names_round_trip_and_unknown_names_are_refused);
    RUN(test_only_completed_rejected_and_refunded_are_final);
    RUN(test_main_line_goes_from_request_to_completed);
    RUN(test_random_event_sequences_keep_every_money_rule);
    RUN(test_every_path_to_depth_eight_keeps_every_money_rule);
    RUN(test_references_are_distinct_and_fit_mt5_comments);
    RUN(test_quote_takes_the_fee_and_rounds_the_token_amount_down);
    RUN(test_quote_rounds_to_the_tokens_decimals_and_keeps_the_rest);
    RUN(test_quote_refuses_amounts_outside_the_rules);
    RUN(test_approvals_follow_the_limits);
    RUN(test_rules_parse_and_refuse_bad_entries);
    return check_done();
}
