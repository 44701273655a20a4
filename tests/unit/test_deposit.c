/* test_deposit.c — the deposit state machine against a table written out here by hand, and the
 * exactly-once rule over thousands of random event sequences with duplicates, reorders and restarts.
 * KASA_SEED=<n> repeats a run of the property test. */
#include "schema/deposit.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "tests/check.h"

/* ---- the expected machine, cell by cell ----
 * "x" ILLEGAL; "=" SAME; "=A" SAME with ALERT; ">S" MOVE to S; effects after '+': L lock, C credit,
 * N notify, A alert. Columns in the order of DEPOSIT_EVENTS. */
static const char *const s_expected[DEPOSIT_STATE_COUNT][DEPOSIT_EVENT_COUNT] = {
    /*            SEEN_PENDING  SEEN_COMPLETED  SEEN_FAILED    CONFIRMED     HOLD        REFUSE       CREDIT_OK      NOTICE_SENT  ADMIN_RETRY    ADMIN_ASSIGN   ADMIN_REJECT  ADMIN_APPROVE */
    [DEPOSIT_NONE]     = { ">PENDING", ">RECEIVED+L", ">REJECTED", "x",          "x",        "x",         "x",           "x",         "x",           "x",           "x", "x" },
    [DEPOSIT_PENDING]  = { ">PENDING", ">RECEIVED+L", ">REJECTED", "x",          "x",        "x",         "x",           "x",         "x",           "x",           "x", "x" },
    [DEPOSIT_RECEIVED] = { "=",        "=",           ">REJECTED", ">LOCKED+C",  ">HELD+A",  ">REJECTED", "x",           "x",         "x",           "x",           "x", "x" },
    [DEPOSIT_LOCKED]   = { "=",        "=",           ">HELD+A",   "x",          ">HELD+A",  "x",         ">CREDITED+N", "x",         "x",           "x",           "x", "x" },
    [DEPOSIT_CREDITED] = { "=",        "=",           "=A",        "x",          "x",        "x",         "x",           ">NOTIFIED", "x",           "x",           "x", "x" },
    [DEPOSIT_NOTIFIED] = { "=",        "=",           "=A",        "x",          "x",        "x",         "x",           "x",         "x",           "x",           "x", "x" },
    [DEPOSIT_HELD]     = { "=",        "=",           "=",         "x",          "x",        "x",         ">CREDITED+NA","x",         ">RECEIVED+L", ">RECEIVED+L", ">REJECTED", ">RECEIVED+L" },
    [DEPOSIT_REJECTED] = { "=",        "=A",          "=",         "x",          "x",        "x",         "x",           "x",         "x",           "x",           "x", "x" },
};

static unsigned s_fx(const char *p)
{
    unsigned fx = 0;
    for (; *p; p++) {
        if (*p == 'L') fx |= DEPOSIT_EFFECT_LOCK;
        if (*p == 'C') fx |= DEPOSIT_EFFECT_CREDIT;
        if (*p == 'N') fx |= DEPOSIT_EFFECT_NOTIFY;
        if (*p == 'A') fx |= DEPOSIT_EFFECT_ALERT;
    }
    return fx;
}

/* Decodes one expected cell into a deposit_step_t. */
static deposit_step_t s_expect(int st, int ev)
{
    const char *c = s_expected[st][ev];
    deposit_step_t e = { DEPOSIT_STEP_ILLEGAL, (deposit_state_t) st, 0 };
    if (c[0] == '=') {
        e.outcome = DEPOSIT_STEP_SAME;
        e.effects = s_fx(c + 1);
    } else if (c[0] == '>') {
        char name[32];
        size_t n = strcspn(c + 1, "+");
        memcpy(name, c + 1, n);
        name[n] = '\0';
        e.outcome = DEPOSIT_STEP_MOVE;
        e.to = (deposit_state_t) deposit_state_from_name(name);
        e.effects = s_fx(c + 1 + n);
    }
    return e;
}

static void test_every_state_event_pair_matches_the_written_table(void)
{
    for (int st = 0; st < DEPOSIT_STATE_COUNT; st++)
        for (int ev = 0; ev < DEPOSIT_EVENT_COUNT; ev++) {
            deposit_step_t want = s_expect(st, ev);
            deposit_step_t got = deposit_step((deposit_state_t) st, (deposit_event_t) ev);
            CHECK((int) want.to >= 0);
            if (got.outcome != want.outcome || got.to != want.to || got.effects != want.effects) {
                fprintf(stderr, "  %s + %s: got outcome %d to %s fx %u, want outcome %d to %s fx %u\n",
                        deposit_state_name((deposit_state_t) st), deposit_event_name((deposit_event_t) ev),
                        got.outcome, deposit_state_name(got.to), got.effects, want.outcome,
                        deposit_state_name(want.to), want.effects);
                CHECK(0);
            }
        }
}

static void test_out_of_range_input_is_illegal_not_a_crash(void)
{
    deposit_step_t s = deposit_step((deposit_state_t) DEPOSIT_STATE_COUNT, DEPOSIT_EV_SEEN_PENDING);
    CHECK_EQ_INT(s.outcome, DEPOSIT_STEP_ILLEGAL);
    s = deposit_step(DEPOSIT_RECEIVED, (deposit_event_t) DEPOSIT_EVENT_COUNT);
    CHECK_EQ_INT(s.outcome, DEPOSIT_STEP_ILLEGAL);
    CHECK_EQ_INT(s.to, DEPOSIT_RECEIVED);
    CHECK_EQ_INT(s.effects, 0);
    s = deposit_step((deposit_state_t) -1, (deposit_event_t) -1);
    CHECK_EQ_INT(s.outcome, DEPOSIT_STEP_ILLEGAL);
}

static void test_names_round_trip_and_unknown_names_are_refused(void)
{
    static const char *const states[] = { "NONE", "PENDING", "RECEIVED", "LOCKED", "CREDITED", "NOTIFIED",
                                          "HELD", "REJECTED" };
    static const char *const events[] = { "SEEN_PENDING", "SEEN_COMPLETED", "SEEN_FAILED", "CONFIRMED", "HOLD",
                                          "REFUSE", "CREDIT_OK", "NOTICE_SENT", "ADMIN_RETRY", "ADMIN_ASSIGN",
                                          "ADMIN_REJECT", "ADMIN_APPROVE" };
    CHECK_EQ_INT(DEPOSIT_STATE_COUNT, 8);
    CHECK_EQ_INT(DEPOSIT_EVENT_COUNT, 12);
    for (int i = 0; i < DEPOSIT_STATE_COUNT; i++) {
        CHECK_EQ_STR(deposit_state_name((deposit_state_t) i), states[i]);
        CHECK_EQ_INT(deposit_state_from_name(states[i]), i);
    }
    for (int i = 0; i < DEPOSIT_EVENT_COUNT; i++) {
        CHECK_EQ_STR(deposit_event_name((deposit_event_t) i), events[i]);
        CHECK_EQ_INT(deposit_event_from_name(events[i]), i);
    }
    CHECK_EQ_STR(deposit_state_name((deposit_state_t) 99), "?");
    CHECK_EQ_STR(deposit_event_name((deposit_event_t) -1), "?");
    CHECK_EQ_INT(deposit_state_from_name("locked"), -1);
    CHECK_EQ_INT(deposit_state_from_name(""), -1);
    CHECK_EQ_INT(deposit_state_from_name(NULL), -1);
    CHECK_EQ_INT(deposit_event_from_name("CREDIT"), -1);
    CHECK_EQ_INT(deposit_event_from_name("SEEN_PENDING "), -1);
}

static void test_only_notified_and_rejected_are_final(void)
{
    for (int i = 0; i < DEPOSIT_STATE_COUNT; i++)
        CHECK_EQ_INT(deposit_state_is_final((deposit_state_t) i), i == DEPOSIT_NOTIFIED || i == DEPOSIT_REJECTED);
}

static void test_main_line_goes_from_webhook_to_notified(void)
{
    deposit_event_t path[] = { DEPOSIT_EV_SEEN_PENDING, DEPOSIT_EV_SEEN_PENDING, DEPOSIT_EV_SEEN_COMPLETED,
                               DEPOSIT_EV_CONFIRMED, DEPOSIT_EV_CREDIT_OK, DEPOSIT_EV_NOTICE_SENT };
    deposit_state_t want[] = { DEPOSIT_PENDING, DEPOSIT_PENDING, DEPOSIT_RECEIVED, DEPOSIT_LOCKED,
                               DEPOSIT_CREDITED, DEPOSIT_NOTIFIED };
    unsigned fx[] = { 0, 0, DEPOSIT_EFFECT_LOCK, DEPOSIT_EFFECT_CREDIT, DEPOSIT_EFFECT_NOTIFY, 0 };
    deposit_state_t st = DEPOSIT_NONE;
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        deposit_step_t s = deposit_step(st, path[i]);
        CHECK_EQ_INT(s.outcome, DEPOSIT_STEP_MOVE);
        CHECK_EQ_INT(s.to, want[i]);
        CHECK_EQ_INT(s.effects, fx[i]);
        st = s.to;
    }
}

/* ---- the property test ---- */

typedef deposit_step_t (*s_step_fn)(deposit_state_t, deposit_event_t);

static uint64_t s_rng;
static uint64_t s_next(void) /* splitmix64 */
{
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static unsigned s_below(unsigned n) { return (unsigned) (s_next() % n); }

#define S_MAX_EVENTS 300
#define S_MAX_JOURNAL 2048

/* What the whole life of one deposit must respect, across restarts. */
typedef struct {
    deposit_state_t state;
    struct { deposit_state_t from, to; deposit_event_t ev; } journal[S_MAX_JOURNAL]; /* each MOVE, journaled */
    int journal_len;
    int credit_ok_done;   /* a CREDIT_OK moved the deposit */
    int credited_entries; /* moves into CREDITED from another state */
    int held_since_credit;/* HELD was entered since the last CREDIT effect */
    int credit_effects;
    char why[160];        /* the first violation */
} s_life_t;

static int s_fail(s_life_t *l, const char *what, deposit_state_t from, deposit_event_t ev)
{
    if (!l->why[0])
        snprintf(l->why, sizeof l->why, "%s (at %s + %s)", what, deposit_state_name(from), deposit_event_name(ev));
    return -1;
}

/* Feeds one event; checks every rule of the machine; returns -1 on the first violation. */
static int s_feed(s_life_t *l, s_step_fn step, deposit_event_t ev)
{
    deposit_state_t from = l->state;
    deposit_step_t s = step(from, ev);
    if (s.outcome != DEPOSIT_STEP_MOVE && s.to != from)
        return s_fail(l, "a non-move changed the state", from, ev);
    if (s.outcome == DEPOSIT_STEP_ILLEGAL && s.effects != 0)
        return s_fail(l, "an illegal step has effects", from, ev);
    if (s.outcome == DEPOSIT_STEP_SAME && (s.effects & ~(unsigned) DEPOSIT_EFFECT_ALERT))
        return s_fail(l, "a SAME step asks for work other than an alert", from, ev);
    if (s.effects & DEPOSIT_EFFECT_CREDIT) {
        if (l->credit_ok_done)
            return s_fail(l, "CREDIT asked after a CREDIT_OK", from, ev);
        if (l->credit_effects > 0 && !l->held_since_credit)
            return s_fail(l, "a second CREDIT without a hold in between", from, ev);
        if (s.outcome != DEPOSIT_STEP_MOVE || s.to != DEPOSIT_LOCKED)
            return s_fail(l, "CREDIT asked without moving to LOCKED", from, ev);
        l->credit_effects++;
        l->held_since_credit = 0;
    }
    if (s.outcome != DEPOSIT_STEP_MOVE)
        return 0;
    if ((from == DEPOSIT_CREDITED && s.to != DEPOSIT_NOTIFIED) || from == DEPOSIT_NOTIFIED ||
        from == DEPOSIT_REJECTED)
        return s_fail(l, "moved out of CREDITED/NOTIFIED/REJECTED the wrong way", from, ev);
    if (s.to == DEPOSIT_CREDITED) {
        if (++l->credited_entries > 1)
            return s_fail(l, "CREDITED entered twice", from, ev);
        if (ev == DEPOSIT_EV_CREDIT_OK)
            l->credit_ok_done = 1;
    }
    if (s.to == DEPOSIT_HELD)
        l->held_since_credit = 1;
    if (l->journal_len == S_MAX_JOURNAL)
        return s_fail(l, "journal bound reached", from, ev);
    l->journal[l->journal_len].from = from;
    l->journal[l->journal_len].ev = ev;
    l->journal[l->journal_len].to = s.to;
    l->journal_len++;
    l->state = s.to;
    return 0;
}

/* A restart: the state is rebuilt by folding the journaled MOVEs through the machine again; each one
 * must chain from the previous and still be the move the table makes. -1 if the journal disagrees. */
static int s_replay(const s_life_t *l, s_step_fn step, deposit_state_t *out)
{
    deposit_state_t st = DEPOSIT_NONE;
    for (int i = 0; i < l->journal_len; i++) {
        deposit_step_t s = step(l->journal[i].from, l->journal[i].ev);
        if (l->journal[i].from != st || s.outcome != DEPOSIT_STEP_MOVE || s.to != l->journal[i].to)
            return -1;
        st = s.to;
    }
    *out = st;
    return 0;
}

/* One life of 100..300 events; returns 0 or -1 with l->why set. */
static int s_one_life(s_life_t *l, s_step_fn step)
{
    deposit_event_t seq[S_MAX_EVENTS];
    int n = 100 + (int) s_below(201);
    /* Bias toward the main line so that deep states are reached often. */
    static const deposit_event_t likely[] = { DEPOSIT_EV_SEEN_PENDING, DEPOSIT_EV_SEEN_COMPLETED,
                                              DEPOSIT_EV_CONFIRMED, DEPOSIT_EV_CREDIT_OK,
                                              DEPOSIT_EV_NOTICE_SENT, DEPOSIT_EV_HOLD, DEPOSIT_EV_ADMIN_RETRY };
    for (int i = 0; i < n; i++) {
        unsigned pick = s_below(10);
        if (i > 0 && pick == 0)
            seq[i] = seq[i - 1]; /* duplicate */
        else if (pick < 5)
            seq[i] = likely[s_below(sizeof likely / sizeof likely[0])];
        else
            seq[i] = (deposit_event_t) s_below(DEPOSIT_EVENT_COUNT);
    }
    for (int i = 0; i + 1 < n; i++) /* reorders */
        if (s_below(8) == 0) {
            deposit_event_t t = seq[i];
            seq[i] = seq[i + 1];
            seq[i + 1] = t;
        }
    memset(l, 0, sizeof *l);
    l->state = DEPOSIT_NONE;
    for (int i = 0; i < n; i++) {
        if (s_feed(l, step, seq[i]) != 0)
            return -1;
        if (s_below(25) == 0) {
            /* restart: rebuild from the journal, then the webhooks and stages replay a prefix */
            deposit_state_t rebuilt = DEPOSIT_NONE;
            if (s_replay(l, step, &rebuilt) != 0 || rebuilt != l->state) {
                snprintf(l->why, sizeof l->why, "replay gives %s, live state %s", deposit_state_name(rebuilt),
                         deposit_state_name(l->state));
                return -1;
            }
            l->state = rebuilt;
            int prefix = (int) s_below((unsigned) i + 1);
            for (int j = 0; j < prefix; j++)
                if (s_feed(l, step, seq[j]) != 0)
                    return -1;
        }
    }
    return 0;
}

/* Runs `lives` lives from seed; returns the number of violations (prints the first). */
static int s_property(uint64_t seed, int lives, s_step_fn step, int *reached_credited, int *second_credit)
{
    static s_life_t life;
    s_rng = seed;
    for (int k = 0; k < lives; k++) {
        if (s_one_life(&life, step) != 0) {
            printf("  life %d, seed %" PRIu64 ": %s\n", k, seed, life.why);
            return 1;
        }
        if (reached_credited && life.credited_entries)
            (*reached_credited)++;
        if (second_credit && life.credit_effects > 1)
            (*second_credit)++;
    }
    return 0;
}

static uint64_t s_seed(void)
{
    const char *env = getenv("KASA_SEED");
    if (env && *env)
        return strtoull(env, NULL, 10);
    return (uint64_t) time(NULL);
}

static void test_exactly_once_over_random_sequences_with_duplicates_reorders_restarts(void)
{
    uint64_t seed = s_seed();
    int credited = 0, second = 0;
    printf("  seed %" PRIu64 " (KASA_SEED=%" PRIu64 " repeats this run)\n", seed, seed);
    int bad = s_property(seed, 3000, deposit_step, &credited, &second);
    if (bad)
        printf("  FAILED with seed %" PRIu64 "\n", seed);
    CHECK_EQ_INT(bad, 0);
    /* The sequences must really exercise the paths the rule is about. */
    printf("  %d of 3000 lives reached CREDITED; %d had a second CREDIT after a hold\n", credited, second);
    CHECK(credited > 300);
    CHECK(second > 10);
}

/* A machine with one wrong row: a reorg after the credit sends it back to HELD (and so to a second
 * credit). The property test must catch it, or it proves nothing. */
static deposit_step_t s_mutant(deposit_state_t from, deposit_event_t ev)
{
    if (from == DEPOSIT_CREDITED && ev == DEPOSIT_EV_SEEN_FAILED)
        return (deposit_step_t) { DEPOSIT_STEP_MOVE, DEPOSIT_HELD, DEPOSIT_EFFECT_ALERT };
    return deposit_step(from, ev);
}

/* Another: a repeated CREDIT_OK re-enters CREDITED. */
static deposit_step_t s_mutant2(deposit_state_t from, deposit_event_t ev)
{
    if (from == DEPOSIT_NOTIFIED && ev == DEPOSIT_EV_CREDIT_OK)
        return (deposit_step_t) { DEPOSIT_STEP_MOVE, DEPOSIT_CREDITED, DEPOSIT_EFFECT_NOTIFY };
    return deposit_step(from, ev);
}

/* Another: the notice step asks for a credit again. */
static deposit_step_t s_mutant3(deposit_state_t from, deposit_event_t ev)
{
    if (from == DEPOSIT_CREDITED && ev == DEPOSIT_EV_NOTICE_SENT)
        return (deposit_step_t) { DEPOSIT_STEP_MOVE, DEPOSIT_NOTIFIED, DEPOSIT_EFFECT_CREDIT };
    return deposit_step(from, ev);
}

/* Another: a repeated Completed webhook in LOCKED re-locks, so a second CREDIT comes without a hold. */
static deposit_step_t s_mutant4(deposit_state_t from, deposit_event_t ev)
{
    if (from == DEPOSIT_LOCKED && ev == DEPOSIT_EV_SEEN_COMPLETED)
        return (deposit_step_t) { DEPOSIT_STEP_MOVE, DEPOSIT_RECEIVED, DEPOSIT_EFFECT_LOCK };
    return deposit_step(from, ev);
}

static void test_property_check_catches_a_wrong_row(void)
{
    printf("  (the next four lines are expected violations)\n");
    CHECK_EQ_INT(s_property(12345, 2000, s_mutant, NULL, NULL), 1);
    CHECK_EQ_INT(s_property(12345, 2000, s_mutant2, NULL, NULL), 1);
    CHECK_EQ_INT(s_property(12345, 2000, s_mutant3, NULL, NULL), 1);
    CHECK_EQ_INT(s_property(12345, 2000, s_mutant4, NULL, NULL), 1);
}

int main(void)
{
    RUN(test_every_state_event_pair_matches_the_written_table);
    RUN(test_out_of_range_input_is_illegal_not_a_crash);
    RUN(test_names_round_trip_and_unknown_names_are_refused);
    RUN(test_only_notified_and_rejected_are_final);
    RUN(test_main_line_goes_from_webhook_to_notified);
    RUN(test_exactly_once_over_random_sequences_with_duplicates_reorders_restarts);
    RUN(test_property_check_catches_a_wrong_row);
    return check_done();
}
