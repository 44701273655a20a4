/* test_registry.c — the in-memory registry: replay of hand-built journals gives the right deposits,
 * links and resume actions; the commit gate journals each transition once, in order; the bounds
 * hold; the work list keeps per-login order; the credit reference is deterministic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/crediter.h"
#include "actors/registry.h"
#include "actors/workq.h"
#include "journal/journal.h"
#include "schema/record.h"
#include "tests/check.h"

static char s_dir[512];

static journal_t *s_fresh_journal(const char *name)
{
    const char *base = getenv("KASA_TEST_OUT");
    char tmpl[400];
    snprintf(tmpl, sizeof tmpl, "%s/reg-%s-XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(tmpl))
        return NULL;
    snprintf(s_dir, sizeof s_dir, "%s", tmpl);
    char err[256];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    if (!j)
        fprintf(stderr, "journal_open: %s\n", err);
    return j;
}

static void s_rm_dir(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_dir);
}

/* Appends one record to j; returns its LSN. */
static uint64_t s_put(journal_t *j, const record_t *r)
{
    uint8_t *b = NULL;
    size_t n = 0;
    char err[160];
    if (record_encode(r, &b, &n, err, sizeof err) != 0) {
        fprintf(stderr, "encode: %s\n", err);
        return 0;
    }
    uint64_t lsn = journal_append(j, b, n);
    free(b);
    return lsn;
}

static void s_dep(journal_t *j, const char *tx, deposit_state_t from, deposit_state_t to, deposit_event_t ev,
                  uint64_t login, const char *reason)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = 1764140000000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.from = from;
    r.to = to;
    r.event = ev;
    snprintf(r.status, sizeof r.status, "%s", to == DEPOSIT_PENDING ? "Confirming" : "Completed");
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.chain_id, sizeof r.chain_id, "TRON");
    snprintf(r.address, sizeof r.address, "TAddr-%s", tx);
    snprintf(r.amount, sizeof r.amount, "250.5");
    r.login = login;
    if (to == DEPOSIT_LOCKED) {
        r.credit_minor = 25050;
        r.digits = 2;
        snprintf(r.remainder, sizeof r.remainder, "0");
    }
    if (to == DEPOSIT_CREDITED)
        r.ticket = 7000 + (uint64_t) tx[0];
    if (reason)
        snprintf(r.reason, sizeof r.reason, "%s", reason);
    CHECK(s_put(j, &r) > 0);
}

static void s_attempt(journal_t *j, const char *tx, uint32_t n, uint64_t login)
{
    record_t r;
    record_init(&r, RECORD_CREDIT_ATTEMPT);
    r.time_ms = 1764140000000 + n;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.attempt = n;
    r.login = login;
    r.credit_minor = 25050;
    r.digits = 2;
    crediter_ref(tx, r.ref);
    CHECK(s_put(j, &r) > 0);
}

static void s_link(journal_t *j, const char *address, uint64_t login)
{
    record_t r;
    record_init(&r, RECORD_ADDRESS_LINK);
    r.time_ms = 1764140000000;
    snprintf(r.address, sizeof r.address, "%s", address);
    snprintf(r.chain_id, sizeof r.chain_id, "TRON");
    r.login = login;
    CHECK(s_put(j, &r) > 0);
}

#define P DEPOSIT_PENDING
#define RCV DEPOSIT_RECEIVED
#define LCK DEPOSIT_LOCKED
#define CRD DEPOSIT_CREDITED
#define NTF DEPOSIT_NOTIFIED

static void test_replay_rebuilds_every_state_attempts_links_and_resume_actions(void)
{
    journal_t *j = s_fresh_journal("replay");
    CHECK(j != NULL);
    if (!j)
        return;
    s_link(j, "TAddr-1", 100001);
    s_link(j, "0xAbCdEf", 100002);
    /* a: pending, confirmations rose */
    s_dep(j, "a", DEPOSIT_NONE, P, DEPOSIT_EV_SEEN_PENDING, 0, NULL);
    record_t up;
    record_init(&up, RECORD_DEPOSIT);
    snprintf(up.tx_id, sizeof up.tx_id, "a");
    up.from = up.to = P;
    up.event = DEPOSIT_EV_SEEN_PENDING;
    up.confirmations = 12;
    up.threshold = 20;
    up.time_ms = 1764140000500;
    CHECK(s_put(j, &up) > 0);
    /* b: received */
    s_dep(j, "b", DEPOSIT_NONE, RCV, DEPOSIT_EV_SEEN_COMPLETED, 0, NULL);
    /* c: locked, no attempt */
    s_dep(j, "c", DEPOSIT_NONE, RCV, DEPOSIT_EV_SEEN_COMPLETED, 0, NULL);
    s_dep(j, "c", RCV, LCK, DEPOSIT_EV_CONFIRMED, 100001, NULL);
    /* d: locked with two attempts */
    s_dep(j, "d", DEPOSIT_NONE, RCV, DEPOSIT_EV_SEEN_COMPLETED, 0, NULL);
    s_dep(j, "d", RCV, LCK, DEPOSIT_EV_CONFIRMED, 100002, NULL);
    s_attempt(j, "d", 1, 100002);
    s_attempt(j, "d", 2, 100002);
    /* e: credited, no notice */
    s_dep(j, "e", DEPOSIT_NONE, RCV, DEPOSIT_EV_SEEN_COMPLETED, 0, NULL);
    s_dep(j, "e", RCV, LCK, DEPOSIT_EV_CONFIRMED, 100001, NULL);
    s_attempt(j, "e", 1, 100001);
    s_dep(j, "e", LCK, CRD, DEPOSIT_EV_CREDIT_OK, 0, NULL);
    /* f: credited, notice failed */
    s_dep(j, "f", DEPOSIT_NONE, RCV, DEPOSIT_EV_SEEN_COMPLETED, 0, NULL);
    s_dep(j, "f", RCV, LCK, DEPOSIT_EV_CONFIRMED, 100001, NULL);
    s_dep(j, "f", LCK, CRD, DEPOSIT_EV_CREDIT_OK, 0, NULL);
    record_t nf;
    record_init(&nf, RECORD_NOTICE_FAILED);
    snprintf(nf.tx_id, sizeof nf.tx_id, "f");
    snprintf(nf.reason, sizeof nf.reason, "Telegram refused the notice: chat not found");
    CHECK(s_put(j, &nf) > 0);
    /* g: notified */
    s_dep(j, "g", DEPOSIT_NONE, RCV, DEPOSIT_EV_SEEN_COMPLETED, 0, NULL);
    s_dep(j, "g", RCV, LCK, DEPOSIT_EV_CONFIRMED, 100001, NULL);
    s_dep(j, "g", LCK, CRD, DEPOSIT_EV_CREDIT_OK, 0, NULL);
    s_dep(j, "g", CRD, NTF, DEPOSIT_EV_NOTICE_SENT, 0, NULL);
    /* h: held; i: rejected */
    s_dep(j, "h", DEPOSIT_NONE, RCV, DEPOSIT_EV_SEEN_COMPLETED, 0, NULL);
    s_dep(j, "h", RCV, DEPOSIT_HELD, DEPOSIT_EV_HOLD, 0, "address not linked to any account");
    s_dep(j, "i", DEPOSIT_NONE, DEPOSIT_REJECTED, DEPOSIT_EV_SEEN_FAILED, 0, "Cobo says Failed");
    journal_destroy(&j);

    registry_t *reg = registry_new(100);
    char err[256] = "";
    long n = registry_replay(reg, s_dir, err, sizeof err);
    CHECK_EQ_INT(n, 26);
    CHECK_EQ_INT(registry_count(reg), 9);
    CHECK_EQ_INT(registry_link_count(reg), 2);
    CHECK_EQ_INT(registry_address_login(reg, "TAddr-1"), 100001);
    CHECK_EQ_INT(registry_address_login(reg, "0xabcdef"), 100002); /* EVM: case-insensitive */
    CHECK_EQ_INT(registry_address_login(reg, "TAddr-2"), 0);

    registry_entry_t e;
    CHECK(registry_get(reg, "a", &e) == 0);
    CHECK_EQ_INT(e.view.state, P);
    CHECK_EQ_INT(e.view.confirmations, 12);
    CHECK_EQ_INT(e.view.threshold, 20);
    CHECK_EQ_STR(e.view.amount, "250.5");
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_WAIT);

    CHECK(registry_get(reg, "b", &e) == 0);
    CHECK_EQ_INT(e.view.state, RCV);
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_LOCK);

    CHECK(registry_get(reg, "c", &e) == 0);
    CHECK_EQ_INT(e.view.state, LCK);
    CHECK_EQ_INT(e.view.login, 100001);
    CHECK_EQ_INT(e.view.credit_minor, 25050);
    CHECK_EQ_INT(e.view.digits, 2);
    CHECK_EQ_INT(e.attempts, 0);
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_CREDIT);

    CHECK(registry_get(reg, "d", &e) == 0);
    CHECK_EQ_INT(e.view.state, LCK);
    CHECK_EQ_INT(e.attempts, 2);
    CHECK_EQ_STR(e.ref, "kasa d");
    CHECK_EQ_INT(e.attempt_login, 100002);
    CHECK_EQ_INT(e.first_attempt_ms, 1764140000001);
    CHECK_EQ_INT(e.last_attempt_ms, 1764140000002);
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_RECONCILE);
    CHECK_EQ_STR(registry_resume_name(registry_resume_action(&e)), "reconcile then credit");

    CHECK(registry_get(reg, "e", &e) == 0);
    CHECK_EQ_INT(e.view.state, CRD);
    CHECK_EQ_INT(e.view.ticket, 7000 + 'e');
    CHECK_EQ_INT(e.view.credit_minor, 25050);   /* kept from LOCKED */
    CHECK_EQ_INT(e.view.login, 100001);
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_NOTIFY);

    CHECK(registry_get(reg, "f", &e) == 0);
    CHECK_EQ_INT(e.view.state, CRD);
    CHECK_EQ_INT(e.notice_failed, 1);
    CHECK_EQ_STR(e.view.reason, "Telegram refused the notice: chat not found");
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_NONE);

    CHECK(registry_get(reg, "g", &e) == 0);
    CHECK_EQ_INT(e.view.state, NTF);
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_NONE);

    CHECK(registry_get(reg, "h", &e) == 0);
    CHECK_EQ_INT(e.view.state, DEPOSIT_HELD);
    CHECK_EQ_STR(e.view.reason, "address not linked to any account");
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_PERSON);

    CHECK(registry_get(reg, "i", &e) == 0);
    CHECK_EQ_INT(e.view.state, DEPOSIT_REJECTED);
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_NONE);
    CHECK(registry_get(reg, "zz", &e) == -1);

    /* Resumed deposits travel as a record of their state with every field. */
    record_t rr;
    CHECK(registry_get(reg, "d", &e) == 0);
    registry_entry_record(&e, &rr);
    CHECK_EQ_INT(rr.to, LCK);
    CHECK_EQ_INT(rr.login, 100002);
    CHECK_EQ_INT(rr.credit_minor, 25050);
    CHECK_EQ_INT(rr.attempt, 2);
    registry_destroy(&reg);
    registry_destroy(&reg); /* safe twice */
    s_rm_dir();
}

typedef struct {
    char ids[16][80];
    int n;
} s_ids_t;

static void s_list(void *arg, const registry_entry_t *e)
{
    s_ids_t *l = arg;
    if (l->n < 16)
        snprintf(l->ids[l->n++], 80, "%s", e->view.tx_id);
}

static void s_apply_login(registry_t *reg, const char *tx, deposit_state_t from, deposit_state_t to,
                          uint64_t login, uint64_t lsn)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.from = from;
    r.to = to;
    r.login = login;
    CHECK(registry_apply(reg, &r, lsn) == 0);
}

static void test_each_lists_newest_first_filtered_by_login(void)
{
    registry_t *reg = registry_new(10);
    s_apply_login(reg, "t1", DEPOSIT_NONE, DEPOSIT_PENDING, 5, 1);
    s_apply_login(reg, "t2", DEPOSIT_NONE, DEPOSIT_RECEIVED, 0, 2);   /* unlinked at first */
    s_apply_login(reg, "t3", DEPOSIT_NONE, DEPOSIT_PENDING, 5, 3);
    s_apply_login(reg, "t4", DEPOSIT_NONE, DEPOSIT_RECEIVED, 6, 4);
    s_apply_login(reg, "t5", DEPOSIT_NONE, DEPOSIT_PENDING, 7, 5);
    s_ids_t l = { .n = 0 };
    CHECK_EQ_INT(registry_each(reg, 5, 0, s_list, &l), 2);
    CHECK_EQ_STR(l.ids[0], "t3");
    CHECK_EQ_STR(l.ids[1], "t1");
    /* t2 gets its login when locked, t4 is reassigned from 6: each takes its arrival place in 5's list */
    s_apply_login(reg, "t2", DEPOSIT_RECEIVED, DEPOSIT_LOCKED, 5, 6);
    s_apply_login(reg, "t4", DEPOSIT_RECEIVED, DEPOSIT_LOCKED, 5, 7);
    l.n = 0;
    CHECK_EQ_INT(registry_each(reg, 5, 0, s_list, &l), 4);
    CHECK_EQ_STR(l.ids[0], "t4");
    CHECK_EQ_STR(l.ids[1], "t3");
    CHECK_EQ_STR(l.ids[2], "t2");
    CHECK_EQ_STR(l.ids[3], "t1");
    l.n = 0;
    CHECK_EQ_INT(registry_each(reg, 6, 0, s_list, &l), 0);
    CHECK_EQ_INT(registry_each(reg, 5, 2, s_list, &l), 2);
    CHECK_EQ_STR(l.ids[0], "t4");
    CHECK_EQ_STR(l.ids[1], "t3");
    l.n = 0;
    CHECK_EQ_INT(registry_each(reg, 0, 2, s_list, &l), 2);
    CHECK_EQ_STR(l.ids[0], "t5");
    CHECK_EQ_STR(l.ids[1], "t4");
    /* the newest of 5 moves away: the list's head follows */
    s_apply_login(reg, "t4", DEPOSIT_LOCKED, DEPOSIT_LOCKED, 7, 8);
    l.n = 0;
    CHECK_EQ_INT(registry_each(reg, 5, 0, s_list, &l), 3);
    CHECK_EQ_STR(l.ids[0], "t3");
    l.n = 0;
    CHECK_EQ_INT(registry_each(reg, 7, 0, s_list, &l), 2);
    CHECK_EQ_STR(l.ids[0], "t5");
    CHECK_EQ_STR(l.ids[1], "t4");
    registry_destroy(&reg);
}

static record_t s_seen(const char *tx, deposit_event_t ev, int conf)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.event = ev;
    r.confirmations = conf;
    r.threshold = 20;
    snprintf(r.status, sizeof r.status, "%s", ev == DEPOSIT_EV_SEEN_COMPLETED ? "Completed" : "Confirming");
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.address, sizeof r.address, "TX1");
    snprintf(r.amount, sizeof r.amount, "10");
    return r;
}

static uint64_t s_count_records(const char *dir)
{
    char err[200];
    journal_reader_t *rd = journal_reader_open(dir, 1, err, sizeof err);
    if (!rd)
        return 0;
    journal_entry_t e;
    uint64_t n = 0;
    while (journal_reader_next(rd, &e) == 1)
        n++;
    journal_reader_destroy(&rd);
    return n;
}

static void test_commit_journals_each_transition_once_and_memory_equals_replay(void)
{
    journal_t *j = s_fresh_journal("commit");
    CHECK(j != NULL);
    if (!j)
        return;
    registry_t *reg = registry_new(10);
    char err[200];
    unsigned fx = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;

    record_t r = s_seen("x", DEPOSIT_EV_SEEN_PENDING, 3);
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, &bytes, &len, err, sizeof err), REGISTRY_MOVED);
    CHECK(bytes != NULL && len > 0);
    record_t back;
    CHECK(bytes && record_decode(bytes, len, &back, err, sizeof err) == 0);
    CHECK_EQ_INT(back.to, DEPOSIT_PENDING);
    CHECK_EQ_INT(back.confirmations, 3);
    free(bytes);
    bytes = NULL;
    /* same confirmations: nothing */
    r = s_seen("x", DEPOSIT_EV_SEEN_PENDING, 3);
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_SAME);
    /* fewer (a reordered webhook): nothing */
    r = s_seen("x", DEPOSIT_EV_SEEN_PENDING, 2);
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_SAME);
    /* more: an update record */
    r = s_seen("x", DEPOSIT_EV_SEEN_PENDING, 9);
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
    CHECK_EQ_INT(r.from, DEPOSIT_PENDING);
    CHECK_EQ_INT(r.to, DEPOSIT_PENDING);
    /* completed: RECEIVED with LOCK */
    r = s_seen("x", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
    CHECK(fx & DEPOSIT_EFFECT_LOCK);
    /* repeat, late pending: nothing */
    r = s_seen("x", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_SAME);
    CHECK_EQ_INT(fx, 0);
    r = s_seen("x", DEPOSIT_EV_SEEN_PENDING, 25);
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_SAME);
    /* an event the machine does not allow */
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "x");
    r.event = DEPOSIT_EV_NOTICE_SENT;
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_ILLEGAL);
    /* locker's CONFIRMED brings login and money; the rest is kept from the entry */
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "x");
    r.event = DEPOSIT_EV_CONFIRMED;
    r.login = 4242;
    r.credit_minor = 1000;
    r.digits = 2;
    CHECK_EQ_INT(registry_commit(reg, j, &r, &fx, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
    CHECK(fx & DEPOSIT_EFFECT_CREDIT);
    CHECK_EQ_STR(r.amount, "10");
    CHECK_EQ_STR(r.address, "TX1");
    /* an attempt */
    record_t a;
    record_init(&a, RECORD_CREDIT_ATTEMPT);
    snprintf(a.tx_id, sizeof a.tx_id, "x");
    a.attempt = 1;
    a.login = 4242;
    snprintf(a.ref, sizeof a.ref, "kasa x");
    CHECK_EQ_INT(registry_append(reg, j, &a, err, sizeof err), REGISTRY_MOVED);
    record_init(&a, RECORD_CREDIT_ATTEMPT);
    snprintf(a.tx_id, sizeof a.tx_id, "nope");
    CHECK_EQ_INT(registry_append(reg, j, &a, err, sizeof err), REGISTRY_ILLEGAL);
    CHECK_EQ_INT(journal_durable_lsn(j), 5);
    journal_destroy(&j);
    CHECK_EQ_INT(s_count_records(s_dir), 5);

    /* What memory holds is exactly what a replay rebuilds. */
    registry_t *again = registry_new(10);
    CHECK_EQ_INT(registry_replay(again, s_dir, err, sizeof err), 5);
    registry_entry_t m, d;
    CHECK(registry_get(reg, "x", &m) == 0);
    CHECK(registry_get(again, "x", &d) == 0);
    CHECK(memcmp(&m.view, &d.view, sizeof m.view) == 0);
    CHECK_EQ_INT(m.attempts, d.attempts);
    CHECK_EQ_INT(d.view.state, DEPOSIT_LOCKED);
    CHECK_EQ_INT(d.view.confirmations, 20);
    CHECK_EQ_INT(d.attempts, 1);
    CHECK_EQ_INT(d.last_lsn, 5);
    registry_destroy(&again);
    registry_destroy(&reg);
    s_rm_dir();
}


/* A repeat is answered only once what it repeats is durable: memory that claims an LSN the journal
 * cannot make durable gets FAILED (503), never SAME (200). */
static void test_repeat_is_acknowledged_only_once_its_transition_is_durable(void)
{
    journal_t *j = s_fresh_journal("durable");
    CHECK(j != NULL);
    if (!j)
        return;
    registry_t *reg = registry_new(10);
    record_t r = s_seen("w", DEPOSIT_EV_SEEN_COMPLETED, 20);
    r.from = DEPOSIT_NONE;
    r.to = DEPOSIT_RECEIVED;
    CHECK(registry_apply(reg, &r, 7) == 0);   /* reserved at LSN 7, which never reached the journal */
    char err[200];
    record_t dup = s_seen("w", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &dup, NULL, NULL, NULL, err, sizeof err), REGISTRY_FAILED);
    CHECK(registry_failed(reg));
    record_t other = s_seen("v", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &other, NULL, NULL, NULL, err, sizeof err), REGISTRY_FAILED);
    CHECK_EQ_INT(journal_durable_lsn(j), 0);
    registry_destroy(&reg);
    journal_destroy(&j);
    s_rm_dir();
}

static void test_full_registry_refuses_new_deposits_but_knows_old_ones(void)
{
    journal_t *j = s_fresh_journal("full");
    CHECK(j != NULL);
    if (!j)
        return;
    registry_t *reg = registry_new(2);
    char err[200];
    record_t r = s_seen("one", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
    r = s_seen("two", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
    r = s_seen("three", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err), REGISTRY_FULL);
    CHECK(strstr(err, "too many unfinished deposits") != NULL);
    r = s_seen("one", DEPOSIT_EV_SEEN_COMPLETED, 20);
    CHECK_EQ_INT(registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err), REGISTRY_SAME);
    CHECK_EQ_INT(registry_count(reg), 2);
    CHECK_EQ_INT(journal_durable_lsn(j), 2);
    registry_destroy(&reg);
    journal_destroy(&j);

    /* A journal holding more than fits refuses to replay (rather than forget a deposit). */
    registry_t *small = registry_new(1);
    CHECK_EQ_INT(registry_replay(small, s_dir, err, sizeof err), -1);
    CHECK(strstr(err, "KASA_MAX_DEPOSITS") != NULL);
    registry_destroy(&small);
    s_rm_dir();
}

static void test_link_is_journaled_idempotent_and_refuses_another_login(void)
{
    journal_t *j = s_fresh_journal("link");
    CHECK(j != NULL);
    if (!j)
        return;
    registry_t *reg = registry_new(10);
    char err[200] = "";
    CHECK_EQ_INT(registry_link(reg, j, "TLink1", "TRON", 500, "investor:500", err, sizeof err), 0);
    CHECK_EQ_INT(registry_link(reg, j, "TLink1", "TRON", 500, "investor:500", err, sizeof err), 0);
    CHECK_EQ_INT(registry_link(reg, j, "TLink1", "TRON", 501, "investor:501", err, sizeof err), -1);
    CHECK(strstr(err, "500") != NULL);
    CHECK_EQ_INT(registry_link(reg, j, "", "TRON", 501, "x", err, sizeof err), -1);
    CHECK_EQ_INT(registry_address_login(reg, "TLink1"), 500);
    CHECK_EQ_INT(journal_durable_lsn(j), 1);   /* once */
    journal_destroy(&j);
    registry_t *again = registry_new(10);
    CHECK_EQ_INT(registry_replay(again, s_dir, err, sizeof err), 1);
    CHECK_EQ_INT(registry_address_login(again, "TLink1"), 500);
    registry_destroy(&again);
    registry_destroy(&reg);
    s_rm_dir();
}

static void test_links_list_newest_first_searched_and_paged(void)
{
    journal_t *j = s_fresh_journal("links");
    CHECK(j != NULL);
    if (!j)
        return;
    registry_t *reg = registry_new(10);
    char err[200] = "";
    CHECK_EQ_INT(registry_link(reg, j, "TFirst111", "TRON", 500, "a", err, sizeof err), 0);
    CHECK_EQ_INT(registry_link(reg, j, "0xAbCdEf", "ETH", 501, "a", err, sizeof err), 0);
    CHECK_EQ_INT(registry_link(reg, j, "TThird333", "TRON", 500, "a", err, sizeof err), 0);
    registry_link_t out[2];
    CHECK_EQ_INT(registry_links(reg, 0, NULL, 0, 2, out), 3);
    CHECK_EQ_STR(out[0].address, "TThird333");
    CHECK_EQ_STR(out[1].address, "0xAbCdEf");   /* as linked, not folded to lower case */
    CHECK_EQ_STR(out[1].chain_id, "ETH");
    CHECK(out[0].lsn > out[1].lsn && out[0].time_ms > 0);
    CHECK_EQ_INT(registry_links(reg, 0, NULL, 2, 2, out), 3);   /* the second page */
    CHECK_EQ_STR(out[0].address, "TFirst111");
    CHECK_EQ_INT(registry_links(reg, 500, NULL, 0, 2, out), 2);  /* one login's */
    CHECK_EQ_INT(registry_links(reg, 0, "500", 0, 2, out), 2);   /* digits: a login */
    CHECK_EQ_INT(registry_links(reg, 0, "Third", 0, 2, out), 1); /* a part of an address */
    CHECK_EQ_STR(out[0].address, "TThird333");
    CHECK_EQ_INT(registry_links(reg, 0, "nowhere", 0, 2, out), 0);
    journal_destroy(&j);
    registry_t *again = registry_new(10);   /* replay restores them, times included */
    CHECK_EQ_INT(registry_replay(again, s_dir, err, sizeof err), 3);
    CHECK_EQ_INT(registry_links(again, 0, "Third", 0, 2, out), 1);
    CHECK(out[0].time_ms > 0);
    registry_destroy(&again);
    registry_destroy(&reg);
    s_rm_dir();
}

static void test_credit_ref_is_deterministic_and_fits_mt5_comment(void)
{
    char ref[32];
    crediter_ref("9F2C1B7E-4D3A-4B2C-8E1F-0A9B8C7D6E5F", ref);
    CHECK_EQ_STR(ref, "kasa 9f2c1b7e4d3a4b2c8e1f0a9b8c");
    CHECK_EQ_INT(strlen(ref), 31);
    char again[32];
    crediter_ref("9f2c1b7e-4d3a-4b2c-8e1f-0a9b8c7d6e5f", again);
    CHECK_EQ_STR(again, ref);
    crediter_ref("xyz-AB1", ref);
    CHECK_EQ_STR(ref, "kasa ab1"); /* only hex digits count */
}

static void test_workq_keeps_per_key_order_and_bound(void)
{
    workq_t *q = workq_new(3);
    CHECK(workq_push(q, "a1", 2, 7, 100) == 0);
    CHECK(workq_push(q, "b1", 2, 8, 100) == 0);
    CHECK(workq_push(q, "a2", 2, 7, 100) == 0);
    CHECK(workq_push(q, "x", 1, 0, 100) == -1);   /* bounded */
    CHECK(workq_full(q));
    workq_item_t *it = workq_next(q, 100);
    CHECK(it && memcmp(it->bytes, "a1", 2) == 0);
    /* a1 backs off: a2 must wait behind it, b1 goes ahead */
    it->due_ms = 500;
    it = workq_next(q, 100);
    CHECK(it && memcmp(it->bytes, "b1", 2) == 0);
    workq_remove(q, it);
    CHECK(workq_next(q, 100) == NULL);
    CHECK_EQ_INT(workq_wait_ms(q, 100), 400);
    it = workq_next(q, 500);
    CHECK(it && memcmp(it->bytes, "a1", 2) == 0);
    workq_remove(q, it);
    it = workq_next(q, 500);
    CHECK(it && memcmp(it->bytes, "a2", 2) == 0);
    workq_remove(q, it);
    CHECK_EQ_INT(workq_size(q), 0);
    CHECK_EQ_INT(workq_wait_ms(q, 0), -1);
    workq_destroy(&q);
    workq_destroy(&q);
}

static void test_backoff_is_capped_with_jitter(void)
{
    uint64_t rng = 12345;
    int64_t lo = 1 << 30, hi = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t d = workq_backoff_ms(3, 100, 30000, &rng);   /* 800 ms nominal */
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CHECK(lo >= 400 && hi <= 800 && hi > lo);
    for (uint32_t t = 0; t < 100; t++)
        CHECK(workq_backoff_ms(t, 100, 30000, &rng) <= 30000);
    CHECK(workq_backoff_ms(40, 100, 30000, &rng) >= 15000);
}

/* A repair's HISTORY_GAP marker makes a deposit count as having a credit attempt of unknown outcome
 * (so a restart reconciles before any send), spanning its first record to the repair. */
static void test_history_gap_marker_counts_as_an_attempt_of_unknown_outcome(void)
{
    journal_t *j = s_fresh_journal("gap");
    s_dep(j, "r", DEPOSIT_NONE, DEPOSIT_RECEIVED, DEPOSIT_EV_SEEN_COMPLETED, 4242, NULL);
    s_dep(j, "l", DEPOSIT_NONE, DEPOSIT_RECEIVED, DEPOSIT_EV_SEEN_COMPLETED, 4242, NULL);
    s_dep(j, "l", DEPOSIT_RECEIVED, DEPOSIT_LOCKED, DEPOSIT_EV_CONFIRMED, 4242, NULL);
    s_dep(j, "a", DEPOSIT_NONE, DEPOSIT_RECEIVED, DEPOSIT_EV_SEEN_COMPLETED, 4242, NULL);
    s_dep(j, "a", DEPOSIT_RECEIVED, DEPOSIT_LOCKED, DEPOSIT_EV_CONFIRMED, 4242, NULL);
    s_attempt(j, "a", 2, 4242);
    const char *marked[] = { "r", "l", "a" };
    for (int i = 0; i < 3; i++) {
        record_t g;
        record_init(&g, RECORD_HISTORY_GAP);
        g.time_ms = 1764150000000;
        snprintf(g.tx_id, sizeof g.tx_id, "%s", marked[i]);
        snprintf(g.reason, sizeof g.reason, "journal repair quarantined LSN 9..9");
        CHECK(s_put(j, &g) > 0);
    }
    journal_destroy(&j);
    registry_t *reg = registry_new(10);
    char err[256];
    CHECK_EQ_INT(registry_replay(reg, s_dir, err, sizeof err), 9);
    registry_entry_t e;
    CHECK(registry_get(reg, "l", &e) == 0);
    CHECK_EQ_INT(e.view.state, DEPOSIT_LOCKED);
    CHECK_EQ_INT(e.history_gaps, 1);
    CHECK_EQ_INT(e.attempts, 1);
    CHECK_EQ_INT(e.first_attempt_ms, 1764140000000);
    CHECK_EQ_INT(e.last_attempt_ms, 1764150000000);
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_RECONCILE);   /* before: "credit", blind */
    CHECK(registry_get(reg, "r", &e) == 0);
    CHECK_EQ_INT(e.attempts, 1);   /* once locked, it reconciles too */
    CHECK_EQ_INT(registry_resume_action(&e), REGISTRY_RESUME_LOCK);
    CHECK(registry_get(reg, "a", &e) == 0);
    CHECK_EQ_INT(e.attempts, 2);   /* a known attempt keeps its number; the window grows to the repair */
    CHECK_EQ_INT(e.first_attempt_ms, 1764140000000);
    CHECK_EQ_INT(e.last_attempt_ms, 1764150000000);
    registry_destroy(&reg);
    s_rm_dir();
}

int main(void)
{
    RUN(test_replay_rebuilds_every_state_attempts_links_and_resume_actions);
    RUN(test_each_lists_newest_first_filtered_by_login);
    RUN(test_commit_journals_each_transition_once_and_memory_equals_replay);
    RUN(test_repeat_is_acknowledged_only_once_its_transition_is_durable);
    RUN(test_full_registry_refuses_new_deposits_but_knows_old_ones);
    RUN(test_link_is_journaled_idempotent_and_refuses_another_login);
    RUN(test_links_list_newest_first_searched_and_paged);
    RUN(test_credit_ref_is_deterministic_and_fits_mt5_comment);
    RUN(test_history_gap_marker_counts_as_an_attempt_of_unknown_outcome);
    RUN(test_workq_keeps_per_key_order_and_bound);
    RUN(test_backoff_is_capped_with_jitter);
    return check_done();
}
