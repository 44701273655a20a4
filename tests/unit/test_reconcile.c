/* test_reconcile.c — reconcile_compare on hand-made books: a clean set agrees; each kind of mismatch
 * (a deal added behind kasa's back, a deal removed, a wrong amount, a duplicate, a deal on another
 * login, a Cobo deposit kasa never saw, amounts that differ, a deposit not finished, a credit Cobo
 * failed or does not know, a deal for an uncredited deposit) is reported once, with its evidence;
 * deposits outside the window are not checked; a comment MT5 rewrote (prefixed, re-cased, cut) is
 * matched by the crediter's rule. Withdrawals: a completed and a refunded one agree; a missing debit deal,
 * a double debit, a wrong amount, a debit on another login, a refund deal on a completed withdrawal, a
 * refunded one without its refund, a deal with a withdrawal reference nobody knows, and a completed
 * transfer Cobo says failed are each reported with their kind. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "actors/crediter.h"
#include "actors/reconcile.h"
#include "schema/log.h"
#include "schema/withdrawal.h"
#include "tests/check.h"

#define T0 1764460800000LL      /* 2025-11-30T00:00:00Z */
#define DAY (86400LL * 1000)
#define TX_A "aaaaaaaa-0000-4000-8000-000000000001"
#define TX_B "bbbbbbbb-0000-4000-8000-000000000002"
#define TX_C "cccccccc-0000-4000-8000-000000000003"
#define ADDR_A "TRecoA000000000000000000000000001"
#define ADDR_B "TRecoB000000000000000000000000002"
#define ADDR_X "TRecoX0000000000000000000000000x9"

typedef struct {
    registry_t *reg;
    withdrawals_t *wd;
    cobo_tx_t cobo[8];
    mt5_deal_t deals[12];
    reconcile_books_t b;
    reconcile_report_t rep;
} s_fix_t;

static void s_link(s_fix_t *f, const char *addr, uint64_t login)
{
    record_t r;
    record_init(&r, RECORD_ADDRESS_LINK);
    snprintf(r.address, sizeof r.address, "%s", addr);
    r.login = login;
    CHECK_EQ_INT(registry_apply(f->reg, &r, 1), 0);
}

/* A deposit in state `to`, made at time_ms, for login with credit minor (2 digits) and ticket. */
static void s_deposit(s_fix_t *f, const char *tx, const char *addr, const char *amount, deposit_state_t to,
                      uint64_t login, int64_t credit, uint64_t ticket, int64_t time_ms)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    snprintf(r.address, sizeof r.address, "%s", addr);
    snprintf(r.amount, sizeof r.amount, "%s", amount);
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.status, sizeof r.status, "Completed");
    r.from = DEPOSIT_RECEIVED;
    r.to = to;
    r.login = login;
    r.credit_minor = credit;
    r.digits = 2;
    r.ticket = ticket;
    r.time_ms = time_ms;
    CHECK_EQ_INT(registry_apply(f->reg, &r, 2), 0);
}

static cobo_tx_t *s_cobo(s_fix_t *f, const char *tx, const char *addr, const char *amount, const char *status)
{
    cobo_tx_t *t = &f->cobo[f->b.cobo_count++];
    memset(t, 0, sizeof *t);
    snprintf(t->tx_id, sizeof t->tx_id, "%s", tx);
    snprintf(t->type, sizeof t->type, "Deposit");
    snprintf(t->status, sizeof t->status, "%s", status);
    snprintf(t->address, sizeof t->address, "%s", addr);
    snprintf(t->amount, sizeof t->amount, "%s", amount);
    snprintf(t->token_id, sizeof t->token_id, "TRON_USDT");
    return t;
}

static mt5_deal_t *s_deal(s_fix_t *f, uint64_t ticket, uint64_t login, const char *profit, const char *tx_for_ref)
{
    mt5_deal_t *d = &f->deals[f->b.deal_count++];
    memset(d, 0, sizeof *d);
    d->ticket = ticket;
    d->login = login;
    d->time_s = T0 / 1000 + 60;
    snprintf(d->profit, sizeof d->profit, "%s", profit);
    char ref[32];
    crediter_ref(tx_for_ref, ref);
    snprintf(d->comment, sizeof d->comment, "%s", ref);
    return d;
}

/* The clean books: A (250 USDT → 249.50 on 100001, ticket 7) credited, known to Cobo, one deal. */
static void s_clean(s_fix_t *f)
{
    memset(f, 0, sizeof *f);
    f->reg = registry_new(1000);
    f->wd = withdrawals_new(100);
    f->b.journal = f->reg;
    f->b.withdrawals = f->wd;
    f->b.cobo = f->cobo;
    f->b.deals = f->deals;
    f->b.from_ms = T0;
    f->b.to_ms = T0 + DAY - 1;
    s_link(f, ADDR_A, 100001);
    s_link(f, ADDR_B, 100002);
    s_deposit(f, TX_A, ADDR_A, "250", DEPOSIT_NOTIFIED, 100001, 24950, 7, T0 + 1000);
    s_cobo(f, TX_A, ADDR_A, "250.000000", "Completed");
    s_deal(f, 7, 100001, "249.50", TX_A);
}

static void s_done(s_fix_t *f)
{
    reconcile_report_free(&f->rep);
    registry_destroy(&f->reg);
    withdrawals_destroy(&f->wd);
}

/* Compares, expects exactly one mismatch of kind, and returns it (NULL otherwise). */
static const reconcile_mismatch_t *s_one(s_fix_t *f, const char *kind)
{
    long n = reconcile_compare(&f->b, &f->rep);
    CHECK_EQ_INT(n, 1);
    if (n != 1) {
        for (size_t i = 0; i < f->rep.mismatch_count; i++)
            fprintf(stderr, "  got %s %s\n", f->rep.mismatches[i].kind, f->rep.mismatches[i].evidence);
        return NULL;
    }
    CHECK_EQ_STR(f->rep.mismatches[0].kind, kind);
    return &f->rep.mismatches[0];
}

static void test_clean_books_agree(void)
{
    s_fix_t f;
    s_clean(&f);
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);
    CHECK_EQ_INT(f.rep.deposits, 1);
    CHECK_EQ_INT(f.rep.credited, 1);
    CHECK_EQ_INT(f.rep.kasa_deals, 1);
    jbuf_t j;
    jbuf_init(&j);
    reconcile_report_json(&f.b, &f.rep, &j);
    CHECK(strstr(j.data, "\"agree\":true") != NULL);
    jbuf_free(&j);
    s_done(&f);
}

static void test_deal_added_behind_kasas_back(void)
{
    s_fix_t f;
    s_clean(&f);
    s_deal(&f, 99, 100002, "500.00", "deadbeef-0000-4000-8000-00000000dead");
    const reconcile_mismatch_t *m = s_one(&f, "deal_unknown");
    if (m) {
        CHECK_EQ_INT(m->ticket, 99);
        CHECK_EQ_INT(m->login, 100002);
        CHECK(strstr(m->evidence, "mt5_profit=500.00") != NULL);
    }
    s_done(&f);
}

static void test_deal_removed(void)
{
    s_fix_t f;
    s_clean(&f);
    f.b.deal_count = 0;
    const reconcile_mismatch_t *m = s_one(&f, "deal_missing");
    if (m) {
        CHECK_EQ_STR(m->tx_id, TX_A);
        CHECK(strstr(m->evidence, "journal_ticket=7") && strstr(m->evidence, "credited=249.50"));
    }
    s_done(&f);
}

static void test_wrong_amount(void)
{
    s_fix_t f;
    s_clean(&f);
    snprintf(f.deals[0].profit, sizeof f.deals[0].profit, "249.05");
    const reconcile_mismatch_t *m = s_one(&f, "deal_amount");
    if (m)
        CHECK(strstr(m->evidence, "journal_credit=249.50 mt5_profit=249.05") != NULL);
    s_done(&f);
}

static void test_two_deals_with_one_reference(void)
{
    s_fix_t f;
    s_clean(&f);
    s_deal(&f, 8, 100001, "249.50", TX_A);
    const reconcile_mismatch_t *m = s_one(&f, "deal_duplicate");
    if (m)
        CHECK(strstr(m->evidence, "tickets=7@100001,8@100001") != NULL);
    s_done(&f);
}

static void test_deal_on_another_login(void)
{
    s_fix_t f;
    s_clean(&f);
    f.deals[0].login = 100002;
    const reconcile_mismatch_t *m = s_one(&f, "deal_login");
    if (m)
        CHECK(strstr(m->evidence, "journal_login=100001 mt5_login=100002") != NULL);
    s_done(&f);
}

static void test_cobo_deposit_kasa_never_saw(void)
{
    s_fix_t f;
    s_clean(&f);
    s_cobo(&f, TX_B, ADDR_B, "40", "Completed");
    s_cobo(&f, TX_C, ADDR_X, "40", "Completed");       /* unlinked: not kasa's to credit */
    s_cobo(&f, "dddddddd-0000-4000-8000-000000000004", ADDR_B, "5", "Confirming");  /* not final yet */
    const reconcile_mismatch_t *m = s_one(&f, "cobo_missing");
    if (m) {
        CHECK_EQ_STR(m->tx_id, TX_B);
        CHECK_EQ_INT(m->login, 100002);
        CHECK(strstr(m->evidence, "amount=40") && strstr(m->evidence, "journal=absent"));
    }
    s_done(&f);
}

/* A transfer from one of the broker's own addresses (KASA_OWN_ADDRESSES, COBO_WITHDRAW_ADDRESS) into a
 * linked address is not a deposit (kasa serve journals it as ignored): reconcile agrees with serve. */
static void test_the_brokers_own_transfers_are_not_deposits(void)
{
    s_fix_t f;
    s_clean(&f);
    static config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.own_addresses, sizeof cfg.own_addresses, "TBrokerHot00000000000000000000001,TBrokerCold0000000000000000000002");
    snprintf(cfg.cobo_withdraw_address, sizeof cfg.cobo_withdraw_address, "TBrokerPay00000000000000000000003");
    snprintf(s_cobo(&f, TX_B, ADDR_B, "40", "Completed")->source_address, sizeof f.cobo[0].source_address,
             "TBrokerCold0000000000000000000002");
    snprintf(s_cobo(&f, TX_C, ADDR_B, "7", "Completed")->source_address, sizeof f.cobo[0].source_address,
             "TBrokerPay00000000000000000000003");
    f.b.cfg = &cfg;
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);
    reconcile_report_free(&f.rep);
    /* without the configuration they would be deposits kasa never saw */
    f.b.cfg = NULL;
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 2);
    s_done(&f);
}

static void test_amounts_that_differ(void)
{
    s_fix_t f;
    s_clean(&f);
    snprintf(f.cobo[0].amount, sizeof f.cobo[0].amount, "250.5");
    const reconcile_mismatch_t *m = s_one(&f, "amount_differs");
    if (m)
        CHECK(strstr(m->evidence, "cobo_amount=250.5 journal_amount=250") != NULL);
    s_done(&f);
}

static void test_completed_deposit_not_finished(void)
{
    s_fix_t f;
    s_clean(&f);
    s_deposit(&f, TX_B, ADDR_B, "40", DEPOSIT_LOCKED, 100002, 3950, 0, T0 + 2000);
    s_cobo(&f, TX_B, ADDR_B, "40", "Completed");
    const reconcile_mismatch_t *m = s_one(&f, "not_credited");
    if (m)
        CHECK(strstr(m->evidence, "journal_state=LOCKED") != NULL);
    /* HELD is finished for the books: a person decides */
    reconcile_report_free(&f.rep);
    s_deposit(&f, TX_B, ADDR_B, "40", DEPOSIT_HELD, 100002, 0, 0, T0 + 3000);
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);
    s_done(&f);
}

static void test_credit_that_cobo_failed(void)
{
    s_fix_t f;
    s_clean(&f);
    snprintf(f.cobo[0].status, sizeof f.cobo[0].status, "Failed");
    snprintf(f.cobo[0].sub_status, sizeof f.cobo[0].sub_status, "ReOrged");
    const reconcile_mismatch_t *m = s_one(&f, "failed_at_cobo");
    if (m)
        CHECK(strstr(m->evidence, "cobo_status=Failed cobo_sub_status=ReOrged") != NULL);
    s_done(&f);
}

static int s_lookup_404(void *arg, const char *tx_id, cobo_tx_t *out)
{
    (void) arg, (void) tx_id, (void) out;
    return 1;
}

static void test_credit_cobo_does_not_know(void)
{
    s_fix_t f;
    s_clean(&f);
    f.b.cobo_count = 0;
    f.b.cobo_lookup = s_lookup_404;
    const reconcile_mismatch_t *m = s_one(&f, "unknown_at_cobo");
    if (m)
        CHECK(strstr(m->evidence, "cobo=absent") != NULL);
    s_done(&f);
}

static void test_deal_for_an_uncredited_deposit(void)
{
    s_fix_t f;
    s_clean(&f);
    s_deposit(&f, TX_B, ADDR_B, "40", DEPOSIT_HELD, 100002, 3950, 0, T0 + 2000);
    s_deal(&f, 12, 100002, "39.50", TX_B);
    const reconcile_mismatch_t *m = s_one(&f, "deal_uncredited");
    if (m) {
        CHECK_EQ_STR(m->tx_id, TX_B);
        CHECK(strstr(m->evidence, "journal_state=HELD") != NULL);
    }
    s_done(&f);
}

/* Cluster mode: TX_B this node journaled only as far as LOCKED, another node credited; TX_C this node
 * never saw, another node credited; a third node's HELD of TX_B (earlier) does not outrank the credit.
 * The books agree; without the other nodes' view TX_B would be not_credited and its deal uncredited. */
static void test_other_nodes_credits_are_judged_by_what_the_cluster_did(void)
{
    s_fix_t f;
    s_clean(&f);
    s_deposit(&f, TX_B, ADDR_B, "40", DEPOSIT_LOCKED, 100002, 3950, 0, T0 + 2000);
    s_cobo(&f, TX_B, ADDR_B, "40", "Completed");
    s_deal(&f, 12, 100002, "39.50", TX_B);
    s_cobo(&f, TX_C, ADDR_B, "10", "Completed");
    s_deal(&f, 13, 100002, "9.50", TX_C);
    reconcile_remote_t remote[4] = {
        { .tx_id = TX_B, .node = "n2", .to = DEPOSIT_HELD, .time_ms = T0 + 2500 },
        { .tx_id = TX_B, .node = "n1", .to = DEPOSIT_CREDITED, .login = 100002, .ticket = 12, .time_ms = T0 + 3000 },
        { .tx_id = TX_C, .node = "n1", .to = DEPOSIT_RECEIVED, .address = ADDR_B, .amount = "10",
          .token_id = "TRON_USDT", .time_ms = T0 + 4000 },
        { .tx_id = TX_C, .node = "n1", .to = DEPOSIT_CREDITED, .login = 100002, .credit_minor = 950, .digits = 2,
          .ticket = 13, .time_ms = T0 + 5000 },
    };
    CHECK(reconcile_compare(&f.b, &f.rep) >= 3);   /* without the cluster's view: not_credited, cobo_missing, ... */
    reconcile_report_free(&f.rep);
    f.b.remote = remote;
    f.b.remote_count = 4;
    long n = reconcile_compare(&f.b, &f.rep);
    CHECK_EQ_INT(n, 0);
    for (size_t i = 0; i < f.rep.mismatch_count; i++)
        fprintf(stderr, "  got %s %s\n", f.rep.mismatches[i].kind, f.rep.mismatches[i].evidence);
    CHECK_EQ_INT(f.rep.credited, 3);
    /* the other node's credit of TX_C with a second deal is still a duplicate */
    reconcile_report_free(&f.rep);
    s_deal(&f, 14, 100002, "9.50", TX_C);
    s_one(&f, "deal_duplicate");
    f.b.remote = NULL;
    f.b.remote_count = 0;
    s_done(&f);
}

static void test_outside_the_window_is_not_checked(void)
{
    s_fix_t f;
    s_clean(&f);
    s_deposit(&f, TX_B, ADDR_B, "40", DEPOSIT_CREDITED, 100002, 3950, 13, T0 - 2 * DAY);   /* no deal, no Cobo */
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);
    CHECK_EQ_INT(f.rep.deposits, 1);
    s_done(&f);
}

static void test_text_report_lists_every_mismatch(void)
{
    s_fix_t f;
    s_clean(&f);
    f.b.deal_count = 0;
    s_deal(&f, 99, 100002, "1.00", TX_C);
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 2);
    jbuf_t t;
    jbuf_init(&t);
    reconcile_report_text(&f.b, &f.rep, &t);
    CHECK(strstr(t.data, "MISMATCH deal_missing tx=" TX_A) != NULL);
    CHECK(strstr(t.data, "MISMATCH deal_unknown tx=- login=100002 ticket=99") != NULL);
    CHECK(strstr(t.data, "2 mismatches: the books do not agree") != NULL);
    jbuf_free(&t);
    s_done(&f);
}

/* A server plugin rewrote the comment as the crediter's search tolerates it: prefixed, upper-cased and
 * cut at MT5's 31 characters ("DEP KASA AAAAAAAA00004000800000"). */
static void s_rewrite(mt5_deal_t *d)
{
    char up[48];
    size_t i = 0;
    for (; d->comment[i] && i + 1 < sizeof up; i++)
        up[i] = (char) toupper((unsigned char) d->comment[i]);
    up[i] = '\0';
    snprintf(d->comment, sizeof d->comment, "DEP %.27s", up);
}

static void test_rewritten_comment_still_matches(void)
{
    s_fix_t f;
    s_clean(&f);
    s_rewrite(&f.deals[0]);
    CHECK_EQ_INT(strlen(f.deals[0].comment), 31);
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);      /* not deal_missing, not deal_unknown */
    CHECK_EQ_INT(f.rep.kasa_deals, 1);
    reconcile_report_free(&f.rep);
    /* the same rewriting on a second deal: a duplicate, seen as such */
    s_deal(&f, 8, 100001, "249.50", TX_A);
    s_rewrite(&f.deals[1]);
    const reconcile_mismatch_t *m = s_one(&f, "deal_duplicate");
    if (m)
        CHECK(strstr(m->evidence, "tickets=7@100001,8@100001") != NULL);
    s_done(&f);
}

static void test_rewritten_comment_of_an_uncredited_deposit(void)
{
    s_fix_t f;
    s_clean(&f);
    s_deposit(&f, TX_B, ADDR_B, "40", DEPOSIT_HELD, 100002, 3950, 0, T0 + 2000);
    s_rewrite(s_deal(&f, 12, 100002, "39.50", TX_B));
    const reconcile_mismatch_t *m = s_one(&f, "deal_uncredited");
    if (m) {
        CHECK_EQ_STR(m->tx_id, TX_B);
        CHECK(strstr(m->evidence, "comment=\"DEP KASA BBBBBBBB") != NULL);
    }
    reconcile_report_free(&f.rep);
    /* and a rewritten reference no deposit has: unknown, not ignored */
    f.b.deal_count = 1;
    s_rewrite(s_deal(&f, 99, 100002, "500.00", "deadbeef-0000-4000-8000-00000000dead"));
    m = s_one(&f, "deal_unknown");
    if (m)
        CHECK_EQ_INT(m->ticket, 99);
    s_done(&f);
}

/* ---- withdrawals ---- */

#define WD_1 "w0123456789abcdef0001"   /* completed: 100.00 debited from 100001 */
#define WD_2 "w0123456789abcdef0002"   /* refunded: 50.00 debited from 100002, then given back */

/* A withdrawal in state `to` (as its last transition), of amount minor (2 digits) on login. */
static void s_withdrawal(s_fix_t *f, const char *id, withdrawal_state_t to, uint64_t login, int64_t amount,
                         int64_t time_ms)
{
    record_t r;
    withdrawals_event_record(&r, id, WITHDRAWAL_EV_REQUEST, NULL);
    r.wfrom = WITHDRAWAL_NONE;
    r.wto = to;
    r.login = login;
    r.credit_minor = amount;
    r.digits = 2;
    snprintf(r.amount, sizeof r.amount, "%s", "99.5");
    snprintf(r.cobo_id, sizeof r.cobo_id, "cobo-%s", id);
    r.time_ms = time_ms;
    CHECK_EQ_INT(withdrawals_apply(f->wd, &r, 3), 0);
}

/* A balance deal carrying withdrawal id's debit (op 'd') or refund (op 'r') reference. */
static mt5_deal_t *s_wd_deal(s_fix_t *f, uint64_t ticket, uint64_t login, const char *profit, const char *id, char op)
{
    mt5_deal_t *d = s_deal(f, ticket, login, profit, TX_A);
    if (op == 'd')
        withdrawal_debit_ref(id, d->comment);
    else
        withdrawal_refund_ref(id, d->comment);
    return d;
}

/* The clean books plus WD_1 completed (debit 21) and WD_2 refunded (debit 22, refund 23). */
static void s_clean_wd(s_fix_t *f)
{
    s_clean(f);
    s_withdrawal(f, WD_1, WITHDRAWAL_COMPLETED, 100001, 10000, T0 + 2000);
    s_withdrawal(f, WD_2, WITHDRAWAL_REFUNDED, 100002, 5000, T0 + 3000);
    s_wd_deal(f, 21, 100001, "-100.00", WD_1, 'd');
    s_wd_deal(f, 22, 100002, "-50.00", WD_2, 'd');
    s_wd_deal(f, 23, 100002, "50.00", WD_2, 'r');
}

static int s_lookup_status(void *arg, const char *tx_id, cobo_tx_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->tx_id, sizeof out->tx_id, "%s", tx_id);
    snprintf(out->status, sizeof out->status, "%s", (const char *) arg);
    return 0;
}

static void test_withdrawals_clean_books_agree(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    f.b.cobo_lookup = s_lookup_status;
    f.b.cobo_lookup_arg = "Completed";
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);
    CHECK_EQ_INT(f.rep.withdrawals, 2);
    CHECK_EQ_INT(f.rep.kasa_deals, 4);
    jbuf_t j;
    jbuf_init(&j);
    reconcile_report_json(&f.b, &f.rep, &j);
    CHECK(strstr(j.data, "\"agree\":true") != NULL);
    CHECK(strstr(j.data, "\"withdrawals\":2") != NULL);
    jbuf_free(&j);
    s_done(&f);
}

static void test_withdrawal_debit_missing(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    f.deals[1].comment[0] = '\0';   /* WD_1's debit deal is gone (its comment no longer kasa's) */
    const reconcile_mismatch_t *m = s_one(&f, "wd_debit_missing");
    if (m) {
        CHECK_EQ_STR(m->tx_id, WD_1);
        CHECK_EQ_INT(m->login, 100001);
        CHECK(strstr(m->evidence, "expected_profit=-100.00") != NULL);
        CHECK(strstr(m->evidence, "mt5_deals_with_ref=0") != NULL);
    }
    s_done(&f);
}

static void test_withdrawal_debited_twice(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    s_wd_deal(&f, 24, 100001, "-100.00", WD_1, 'd');
    const reconcile_mismatch_t *m = s_one(&f, "wd_debit_duplicate");
    if (m) {
        CHECK_EQ_STR(m->tx_id, WD_1);
        CHECK(strstr(m->evidence, "mt5_deals_with_ref=2") != NULL);
        CHECK(strstr(m->evidence, "21@100001,24@100001") != NULL);
    }
    s_done(&f);
}

static void test_withdrawal_wrong_amount(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    snprintf(f.deals[1].profit, sizeof f.deals[1].profit, "-10.00");
    const reconcile_mismatch_t *m = s_one(&f, "wd_debit_amount");
    if (m) {
        CHECK_EQ_STR(m->tx_id, WD_1);
        CHECK_EQ_INT(m->ticket, 21);
        CHECK(strstr(m->evidence, "expected_profit=-100.00 mt5_profit=-10.00") != NULL);
    }
    s_done(&f);
}

static void test_withdrawal_debit_on_another_login(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    f.deals[1].login = 100002;
    const reconcile_mismatch_t *m = s_one(&f, "wd_debit_login");
    if (m)
        CHECK(strstr(m->evidence, "journal_login=100001 mt5_login=100002") != NULL);
    s_done(&f);
}

static void test_refund_deal_on_a_completed_withdrawal(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    s_wd_deal(&f, 25, 100001, "100.00", WD_1, 'r');
    const reconcile_mismatch_t *m = s_one(&f, "wd_refund_unexpected");
    if (m) {
        CHECK_EQ_STR(m->tx_id, WD_1);
        CHECK_EQ_INT(m->ticket, 25);
        CHECK(strstr(m->evidence, "journal_state=COMPLETED expected_deals=0 mt5_deals_with_ref=1") != NULL);
    }
    s_done(&f);
}

static void test_refunded_withdrawal_without_its_refund(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    f.b.deal_count--;   /* WD_2's refund deal (the last) is gone */
    const reconcile_mismatch_t *m = s_one(&f, "wd_refund_missing");
    if (m) {
        CHECK_EQ_STR(m->tx_id, WD_2);
        CHECK(strstr(m->evidence, "expected_profit=50.00") != NULL);
    }
    s_done(&f);
}

static void test_deal_with_a_withdrawal_reference_nobody_knows(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    s_wd_deal(&f, 26, 100001, "-70.00", "w99999999999999999999", 'd');
    const reconcile_mismatch_t *m = s_one(&f, "wd_deal_unknown");
    if (m) {
        CHECK_EQ_STR(m->tx_id, "");
        CHECK_EQ_INT(m->ticket, 26);
        CHECK(strstr(m->evidence, "comment=\"kasa wd d99999999999999999999\"") != NULL);
    }
    s_done(&f);
}

static void test_completed_transfer_cobo_says_failed(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    f.b.cobo_lookup = s_lookup_status;
    f.b.cobo_lookup_arg = "Failed";
    const reconcile_mismatch_t *m = s_one(&f, "wd_transfer_status");
    if (m) {
        CHECK_EQ_STR(m->tx_id, WD_1);
        CHECK(strstr(m->evidence, "cobo_id=cobo-" WD_1 " cobo_status=Failed") != NULL);
    }
    s_done(&f);
}

static void test_debit_deal_of_a_rejected_withdrawal(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    s_withdrawal(&f, "w0123456789abcdef0003", WITHDRAWAL_REJECTED, 100001, 2000, T0 + 4000);
    s_wd_deal(&f, 27, 100001, "-20.00", "w0123456789abcdef0003", 'd');
    const reconcile_mismatch_t *m = s_one(&f, "wd_debit_unexpected");
    if (m)
        CHECK(strstr(m->evidence, "journal_state=REJECTED expected_deals=0 mt5_deals_with_ref=1") != NULL);
    s_done(&f);
}

static void test_completed_transfer_cobo_does_not_know(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    f.b.cobo_lookup = s_lookup_404;
    const reconcile_mismatch_t *m = s_one(&f, "wd_transfer_unknown");
    if (m) {
        CHECK_EQ_STR(m->tx_id, WD_1);
        CHECK(strstr(m->evidence, "cobo=absent") != NULL);
    }
    s_done(&f);
}

/* Books with no deposit, no link, no Cobo deposit and no deal. */
/* Cluster mode: MongoDB's withdrawals documents count with this node's journal. WD_3 is one this
 * node never learned (another node debited and refunded it); WD_2 one it learned less of than its
 * document says; of two views the one further along is checked. */
#define WD_3 "w0123456789abcdef0003"

static void test_cluster_withdrawals_are_judged_by_the_shared_documents(void)
{
    s_fix_t f;
    s_clean_wd(&f);
    f.b.cobo_lookup = s_lookup_status;
    f.b.cobo_lookup_arg = "Completed";
    withdrawal_view_t docs[2];
    memset(docs, 0, sizeof docs);
    snprintf(docs[0].id, sizeof docs[0].id, "%s", WD_3);
    docs[0].state = WITHDRAWAL_REFUNDED;
    docs[0].login = 100002;
    docs[0].amount_minor = 700;
    docs[0].digits = 2;
    docs[0].created_ms = T0 + 4000;
    f.b.shared_wds = docs;
    f.b.shared_wd_count = 1;
    /* WD_3 only in MongoDB, no deal at MT5: its debit and refund are missing */
    long n = reconcile_compare(&f.b, &f.rep);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(f.rep.withdrawals, 3);
    for (size_t i = 0; i < f.rep.mismatch_count; i++)
        CHECK(strcmp(f.rep.mismatches[i].tx_id, WD_3) == 0 &&
              (strcmp(f.rep.mismatches[i].kind, "wd_debit_missing") == 0 ||
               strcmp(f.rep.mismatches[i].kind, "wd_refund_missing") == 0));
    reconcile_report_free(&f.rep);
    /* its deals made: the books agree (without the document they were wd_deal_unknown) */
    s_wd_deal(&f, 31, 100002, "-7.00", WD_3, 'd');
    s_wd_deal(&f, 32, 100002, "7.00", WD_3, 'r');
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);
    reconcile_report_free(&f.rep);
    f.b.shared_wd_count = 0;
    n = reconcile_compare(&f.b, &f.rep);
    CHECK_EQ_INT(n, 2);
    for (size_t i = 0; i < f.rep.mismatch_count; i++)
        CHECK_EQ_STR(f.rep.mismatches[i].kind, "wd_deal_unknown");
    reconcile_report_free(&f.rep);
    /* a node that learned less: WD_2 here REFUNDING (its refund may be on its way), the document
     * REFUNDED: the refund deal must be there, so without it the document's view reports it */
    s_withdrawal(&f, WD_2, WITHDRAWAL_REFUNDING, 100002, 5000, T0 + 3000);
    docs[1] = docs[0];
    snprintf(docs[1].id, sizeof docs[1].id, "%s", WD_2);
    docs[1].amount_minor = 5000;
    docs[1].created_ms = T0 + 3000;
    f.b.shared_wd_count = 2;
    f.b.deal_count -= 2;   /* WD_3's deals gone again */
    f.deals[f.b.deal_count - 1].comment[0] = '\0';   /* and WD_2's refund */
    n = reconcile_compare(&f.b, &f.rep);
    int wd2_refund = 0;
    for (size_t i = 0; i < f.rep.mismatch_count; i++)
        wd2_refund += strcmp(f.rep.mismatches[i].tx_id, WD_2) == 0 &&
                      strcmp(f.rep.mismatches[i].kind, "wd_refund_missing") == 0;
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(wd2_refund, 1);
    /* and a document behind this node's view (REQUESTED) never hides what this node knows */
    docs[1].state = WITHDRAWAL_REQUESTED;
    reconcile_report_free(&f.rep);
    n = reconcile_compare(&f.b, &f.rep);
    CHECK_EQ_INT(n, 2);   /* WD_3's two; WD_2 REFUNDING here may lack its refund */
    s_done(&f);
}

static void s_empty(s_fix_t *f)
{
    memset(f, 0, sizeof *f);
    f->reg = registry_new(1000);
    f->wd = withdrawals_new(100);
    f->b = (reconcile_books_t) { .from_ms = T0, .to_ms = T0 + DAY - 1, .journal = f->reg, .withdrawals = f->wd,
                                 .cobo = f->cobo, .deals = f->deals };
}

/* A journal with withdrawals and no deposit at all (and a Cobo deposit to an unlinked address). */
static void test_withdrawals_without_any_deposit(void)
{
    s_fix_t f;
    s_empty(&f);
    s_cobo(&f, TX_C, ADDR_X, "5", "Completed");
    s_withdrawal(&f, WD_1, WITHDRAWAL_COMPLETED, 100001, 10000, T0 + 2000);
    s_wd_deal(&f, 21, 100001, "-100.00", WD_1, 'd');
    CHECK_EQ_INT(reconcile_compare(&f.b, &f.rep), 0);
    CHECK_EQ_INT(f.rep.deposits, 0);
    CHECK_EQ_INT(f.rep.withdrawals, 1);
    s_done(&f);
    s_fix_t g;
    s_empty(&g);
    s_withdrawal(&g, WD_1, WITHDRAWAL_COMPLETED, 100001, 10000, T0 + 2000);
    s_one(&g, "wd_debit_missing");
    s_done(&g);
}

int main(void)
{
    log_set_level(LOG_ERROR);   /* records applied out of order on purpose: no replay warnings */
    RUN(test_clean_books_agree);
    RUN(test_deal_added_behind_kasas_back);
    RUN(test_deal_removed);
    RUN(test_wrong_amount);
    RUN(test_two_deals_with_one_reference);
    RUN(test_deal_on_another_login);
    RUN(test_cobo_deposit_kasa_never_saw);
    RUN(test_the_brokers_own_transfers_are_not_deposits);
    RUN(test_amounts_that_differ);
    RUN(test_completed_deposit_not_finished);
    RUN(test_credit_that_cobo_failed);
    RUN(test_credit_cobo_does_not_know);
    RUN(test_deal_for_an_uncredited_deposit);
    RUN(test_outside_the_window_is_not_checked);
    RUN(test_other_nodes_credits_are_judged_by_what_the_cluster_did);
    RUN(test_text_report_lists_every_mismatch);
    RUN(test_rewritten_comment_still_matches);
    RUN(test_rewritten_comment_of_an_uncredited_deposit);
    RUN(test_withdrawals_clean_books_agree);
    RUN(test_withdrawal_debit_missing);
    RUN(test_withdrawal_debited_twice);
    RUN(test_withdrawal_wrong_amount);
    RUN(test_withdrawal_debit_on_another_login);
    RUN(test_refund_deal_on_a_completed_withdrawal);
    RUN(test_refunded_withdrawal_without_its_refund);
    RUN(test_deal_with_a_withdrawal_reference_nobody_knows);
    RUN(test_completed_transfer_cobo_says_failed);
    RUN(test_debit_deal_of_a_rejected_withdrawal);
    RUN(test_completed_transfer_cobo_does_not_know);
    RUN(test_withdrawals_without_any_deposit);
    RUN(test_cluster_withdrawals_are_judged_by_the_shared_documents);
    return check_done();
}
