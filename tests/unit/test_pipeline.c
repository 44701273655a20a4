/* test_pipeline.c — the pipeline's ingress and restart, with no outside service reachable (Cobo and
 * MT5 point at a closed port, so a RECEIVED deposit stays RECEIVED while the locker backs off):
 * concurrent duplicates journal one transition; confirmation updates journal only when they rise; a
 * late PENDING changes nothing; a failed journal answers 503 and acknowledges nothing afterwards;
 * links are journaled and conflicting ones refused; a restart rebuilds what was journaled. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/cobo_auth.h"
#include "actors/pipeline.h"
#include "journal/fio.h"
#include "journal/journal.h"
#include "schema/record.h"
#include "tests/check.h"
#include "tests/unit/support_pipeline.h"

#define S_SEED "1111111111111111111111111111111111111111111111111111111111111111"

static char s_dir[240];

static int s_mkdir(const char *name)
{
    const char *base = getenv("KASA_TEST_OUT");
    char tmpl[240];
    snprintf(tmpl, sizeof tmpl, "%s/pipe-%s-XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(s_dir, sizeof s_dir, "%s", tmpl);
    return 0;
}

static void s_rm_dir(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_dir);
}

static void s_config(config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->journal_dir, sizeof cfg->journal_dir, "%s", s_dir);
    snprintf(cfg->cobo_api_url, sizeof cfg->cobo_api_url, "http://127.0.0.1:1/v2");
    snprintf(cfg->cobo_api_secret, sizeof cfg->cobo_api_secret, "%s", S_SEED);
    cobo_pubkey_from_seed(S_SEED, cfg->cobo_api_key);
    snprintf(cfg->mt5_url, sizeof cfg->mt5_url, "http://127.0.0.1:1");
    cfg->mt5_login = 1000;
    snprintf(cfg->mt5_password, sizeof cfg->mt5_password, "ManagerPw1");
    cfg->token_count = 1;
    snprintf(cfg->tokens[0].token_id, sizeof cfg->tokens[0].token_id, "TRON_USDT");
    money_parse("1", &cfg->tokens[0].rate, NULL, 0);
    money_parse("1", &cfg->tokens[0].minimum, NULL, 0);
    cfg->crediters = 2;
}

/* A fresh config for s_dir in *cfg, the journal there and a pipeline on it; NULL (nothing left
 * open) on failure. */
static pipeline_t *s_open(config_t *cfg, journal_t **j, char *err, size_t errlen)
{
    s_config(cfg);
    return support_pipeline_open(s_dir, cfg, j, err, errlen);
}

/* Checks that a new directory NAME becomes s_dir, then s_open()s there and checks it opened. */
static pipeline_t *s_start(const char *name, config_t *cfg, journal_t **j, char *err, size_t errlen)
{
    CHECK(s_mkdir(name) == 0);
    pipeline_t *p = s_open(cfg, j, err, errlen);
    CHECK(p != NULL);
    return p;
}

static cobo_tx_t s_tx(const char *id, const char *status, int confirmations)
{
    cobo_tx_t tx;
    memset(&tx, 0, sizeof tx);
    snprintf(tx.tx_id, sizeof tx.tx_id, "%s", id);
    snprintf(tx.type, sizeof tx.type, "Deposit");
    snprintf(tx.status, sizeof tx.status, "%s", status);
    snprintf(tx.chain_id, sizeof tx.chain_id, "TRON");
    snprintf(tx.token_id, sizeof tx.token_id, "TRON_USDT");
    snprintf(tx.address, sizeof tx.address, "TPipeAddr1");
    snprintf(tx.amount, sizeof tx.amount, "100.25");
    tx.confirmations = confirmations;
    tx.threshold = 20;
    return tx;
}

/* Every RECORD_DEPOSIT of tx in the journal at s_dir, in order: their "to" states into to[]. */
static int s_records_of(const char *tx, deposit_state_t *to, int max)
{
    char err[200];
    journal_reader_t *rd = journal_reader_open(s_dir, 1, err, sizeof err);
    if (!rd)
        return -1;
    journal_entry_t e;
    int n = 0;
    record_t r;
    while (journal_reader_next(rd, &e) == 1)
        if (record_decode(e.payload, e.len, &r, err, sizeof err) == 0 && r.kind == RECORD_DEPOSIT &&
            strcmp(r.tx_id, tx) == 0) {
            if (n < max)
                to[n] = r.to;
            n++;
        }
    journal_reader_destroy(&rd);
    return n;
}

typedef struct {
    pipeline_t *p;
    cobo_tx_t tx;
    int codes[10];
} s_race_t;

static void *s_racer(void *arg)
{
    s_race_t *r = arg;
    for (int i = 0; i < 10; i++) {
        char err[160];
        r->codes[i] = pipeline_ingest(r->p, &r->tx, err, sizeof err);
    }
    return NULL;
}

static void test_same_event_from_10_threads_journals_one_received(void)
{
    CHECK(s_mkdir("race") == 0);
    char err[256] = "";
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    config_t cfg;
    s_config(&cfg);
    pipeline_t *p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "pipeline_new: %s\n", err);
        journal_destroy(&j);
        return;
    }
    s_race_t racers[10];
    pthread_t th[10];
    for (int i = 0; i < 10; i++) {
        racers[i].p = p;
        racers[i].tx = s_tx("race-1", "Completed", 20);
        pthread_create(&th[i], NULL, s_racer, &racers[i]);
    }
    int created = 0, repeats = 0, other = 0;
    for (int i = 0; i < 10; i++) {
        pthread_join(th[i], NULL);
        for (int k = 0; k < 10; k++)
            racers[i].codes[k] == 201 ? created++ : racers[i].codes[k] == 200 ? repeats++ : other++;
    }
    CHECK_EQ_INT(created, 1);
    CHECK_EQ_INT(repeats, 99);
    CHECK_EQ_INT(other, 0);
    deposit_view_t v;
    CHECK(pipeline_deposit(p, "race-1", &v) == 0);
    CHECK_EQ_INT(v.state, DEPOSIT_RECEIVED);   /* Cobo unreachable: the locker keeps it RECEIVED */
    pipeline_destroy(&p);
    pipeline_destroy(&p);
    journal_destroy(&j);
    deposit_state_t to[4];
    CHECK_EQ_INT(s_records_of("race-1", to, 4), 1);
    CHECK_EQ_INT(to[0], DEPOSIT_RECEIVED);
    s_rm_dir();
}

static void test_pending_journals_only_rising_confirmations_and_late_pending_changes_nothing(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("pending", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    int confs[] = { 1, 1, 3, 2, 5, 5 };
    int want[] = { 201, 200, 201, 200, 201, 200 };
    for (int i = 0; i < 6; i++) {
        cobo_tx_t tx = s_tx("pend-1", i % 2 ? "PendingScreening" : "Confirming", confs[i]);
        CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), want[i]);
    }
    deposit_view_t v;
    CHECK(pipeline_deposit(p, "pend-1", &v) == 0);
    CHECK_EQ_INT(v.state, DEPOSIT_PENDING);
    CHECK_EQ_INT(v.confirmations, 5);
    cobo_tx_t done = s_tx("pend-1", "Completed", 20);
    CHECK_EQ_INT(pipeline_ingest(p, &done, err, sizeof err), 201);
    cobo_tx_t late = s_tx("pend-1", "Confirming", 19);
    CHECK_EQ_INT(pipeline_ingest(p, &late, err, sizeof err), 200);
    late.confirmations = 40;
    CHECK_EQ_INT(pipeline_ingest(p, &late, err, sizeof err), 200);
    CHECK(pipeline_deposit(p, "pend-1", &v) == 0);
    CHECK_EQ_INT(v.state, DEPOSIT_RECEIVED);
    CHECK_EQ_INT(v.confirmations, 20);
    /* a non-deposit is not ingested */
    cobo_tx_t wd = s_tx("wd-1", "Completed", 20);
    snprintf(wd.type, sizeof wd.type, "Withdrawal");
    CHECK_EQ_INT(pipeline_ingest(p, &wd, err, sizeof err), 200);
    CHECK(pipeline_deposit(p, "wd-1", &v) == -1);
    pipeline_destroy(&p);
    journal_destroy(&j);
    deposit_state_t to[8];
    CHECK_EQ_INT(s_records_of("pend-1", to, 8), 4);
    CHECK_EQ_INT(to[0], DEPOSIT_PENDING);
    CHECK_EQ_INT(to[2], DEPOSIT_PENDING);
    CHECK_EQ_INT(to[3], DEPOSIT_RECEIVED);
    s_rm_dir();
}


typedef struct {
    pipeline_t *p;
    int start;
} s_mixer_t;

static void *s_mixer(void *arg)
{
    s_mixer_t *m = arg;
    char err[160];
    for (int i = 0; i < 40; i++) {
        int c = m->start + i * 8;
        cobo_tx_t tx = s_tx("order-1", c == 163 ? "Completed" : "Confirming", c);
        pipeline_ingest(m->p, &tx, err, sizeof err);
    }
    return NULL;
}

/* Rising confirmations and the Completed webhook race from 8 threads: whatever order they win in,
 * the journal holds them in that order, so a restart rebuilds exactly the state memory had. */
static void test_racing_updates_replay_to_the_state_memory_had(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("order", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    s_mixer_t m[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        m[i].p = p;
        m[i].start = i + 1;
        pthread_create(&th[i], NULL, s_mixer, &m[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    deposit_view_t before, after;
    CHECK(pipeline_deposit(p, "order-1", &before) == 0);
    CHECK_EQ_INT(before.state, DEPOSIT_RECEIVED);
    pipeline_destroy(&p);
    journal_destroy(&j);
    p = support_pipeline_open(s_dir, &cfg, &j, err, sizeof err);
    CHECK(p && pipeline_deposit(p, "order-1", &after) == 0);
    if (p) {
        CHECK_EQ_INT(after.state, before.state);
        CHECK_EQ_INT(after.confirmations, before.confirmations);
        CHECK_EQ_INT(after.updated_ms, before.updated_ms);
    }
    deposit_state_t to[400];
    int n = s_records_of("order-1", to, 400);
    CHECK(n >= 2);
    CHECK_EQ_INT(to[n - 1], DEPOSIT_RECEIVED);   /* nothing after RECEIVED: no PENDING behind it */
    pipeline_destroy(&p);
    journal_destroy(&j);
    s_rm_dir();
}

static void test_failed_journal_answers_503_and_acknowledges_nothing_after(void)
{
    CHECK(s_mkdir("failed") == 0);
    char err[256] = "";
    fio_reset();
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_open(&cfg, &j, err, sizeof err);
    CHECK(p != NULL);
    if (!p)
        return;
    cobo_tx_t ok = s_tx("fail-0", "Completed", 20);
    CHECK_EQ_INT(pipeline_ingest(p, &ok, err, sizeof err), 201);
    fio_fail_at(FIO_FSYNC, 1, EIO);
    cobo_tx_t tx = s_tx("fail-1", "Completed", 20);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 503);
    CHECK(fio_faults_fired() >= 1);
    fio_reset();
    /* The duplicate of the unacknowledged one, a new one, and a repeat of a durable one: all 503 —
     * the service stops accepting until it is restarted on a reopened journal. */
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 503);
    cobo_tx_t other = s_tx("fail-2", "Completed", 20);
    CHECK_EQ_INT(pipeline_ingest(p, &other, err, sizeof err), 503);
    CHECK_EQ_INT(pipeline_ingest(p, &ok, err, sizeof err), 503);
    CHECK(pipeline_link(p, "TNewAddr", "TRON", 7, "test", err, sizeof err) == -1);
    pipeline_destroy(&p);
    journal_destroy(&j);

    /* Restart: the durable deposit is back; what was refused is whatever the disk kept (Cobo retries). */
    j = journal_open(s_dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    CHECK(p != NULL);
    deposit_view_t v;
    CHECK(p && pipeline_deposit(p, "fail-0", &v) == 0 && v.state == DEPOSIT_RECEIVED);
    CHECK(p && pipeline_deposit(p, "fail-2", &v) == -1);
    if (p) {
        CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err) / 100, 2);  /* accepted again, once durable */
        CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 200);
    }
    pipeline_destroy(&p);
    journal_destroy(&j);
    s_rm_dir();
}

typedef struct {
    char ids[8][80];
    int n;
} s_list_t;

static void s_collect(void *arg, const deposit_view_t *d)
{
    s_list_t *l = arg;
    if (l->n < 8)
        snprintf(l->ids[l->n++], 80, "%s", d->tx_id);
}

static void test_links_are_journaled_and_survive_restart_with_deposits(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("links", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TPipeAddr1", "TRON", 100001, "investor:100001", err, sizeof err), 0);
    CHECK_EQ_INT(pipeline_link(p, "TPipeAddr1", "TRON", 100001, "investor:100001", err, sizeof err), 0);
    CHECK_EQ_INT(pipeline_link(p, "TPipeAddr1", "TRON", 100002, "investor:100002", err, sizeof err), -1);
    CHECK_EQ_INT(pipeline_address_login(p, "TPipeAddr1"), 100001);
    CHECK_EQ_INT(pipeline_address_login(p, "TOther"), 0);
    /* A deposit to a linked address belongs to the login from its first sight (investor panel). */
    cobo_tx_t a = s_tx("dep-a", "Confirming", 1);
    cobo_tx_t b = s_tx("dep-b", "Confirming", 2);
    snprintf(b.address, sizeof b.address, "TOther");
    CHECK_EQ_INT(pipeline_ingest(p, &a, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &b, err, sizeof err), 201);
    s_list_t l = { .n = 0 };
    CHECK_EQ_INT(pipeline_deposits(p, 100001, 10, s_collect, &l), 1);
    CHECK_EQ_STR(l.ids[0], "dep-a");
    l.n = 0;
    CHECK_EQ_INT(pipeline_deposits(p, 0, 10, s_collect, &l), 2);
    CHECK_EQ_STR(l.ids[0], "dep-b");   /* newest first */
    pipeline_destroy(&p);
    journal_destroy(&j);

    p = support_pipeline_open(s_dir, &cfg, &j, err, sizeof err);
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(pipeline_address_login(p, "TPipeAddr1"), 100001);
        CHECK_EQ_INT(pipeline_link(p, "TPipeAddr1", "TRON", 100002, "x", err, sizeof err), -1);
        deposit_view_t v;
        CHECK(pipeline_deposit(p, "dep-b", &v) == 0);
        CHECK_EQ_INT(v.state, DEPOSIT_PENDING);
        CHECK_EQ_INT(v.confirmations, 2);
        CHECK_EQ_STR(v.amount, "100.25");
    }
    pipeline_destroy(&p);
    journal_destroy(&j);
    s_rm_dir();
}

/* Cobo's own movements are never deposits. A sweep out of a linked deposit address — its Deposit leg
 * into another linked address or into the main wallet — and a transfer between the organisation's
 * wallets (DepositFromWallet) journal nothing and credit nobody; an outside deposit still does. */
static void test_sweeps_and_internal_transfers_journal_nothing(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("sweep", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TPipeAddr1", "TRON", 100001, "investor:100001", err, sizeof err), 0);
    CHECK_EQ_INT(pipeline_link(p, "TPipeAddr2", "TRON", 100002, "investor:100002", err, sizeof err), 0);
    deposit_state_t to[4];
    cobo_tx_t leg = s_tx("sweep-leg-1", "Completed", 20);      /* into another linked address */
    snprintf(leg.address, sizeof leg.address, "TPipeAddr2");
    snprintf(leg.source_type, sizeof leg.source_type, "DepositFromAddress");
    snprintf(leg.source_address, sizeof leg.source_address, "TPipeAddr1");
    CHECK_EQ_INT(pipeline_ingest(p, &leg, err, sizeof err), 200);
    CHECK_EQ_INT(s_records_of("sweep-leg-1", to, 4), 0);
    cobo_tx_t main_leg = leg;                                   /* into the main wallet */
    snprintf(main_leg.tx_id, sizeof main_leg.tx_id, "sweep-leg-2");
    snprintf(main_leg.address, sizeof main_leg.address, "TMainWallet");
    CHECK_EQ_INT(pipeline_ingest(p, &main_leg, err, sizeof err), 200);
    CHECK_EQ_INT(s_records_of("sweep-leg-2", to, 4), 0);
    cobo_tx_t internal = s_tx("internal-1", "Completed", 20);  /* between the organisation's wallets */
    snprintf(internal.address, sizeof internal.address, "TPipeAddr1");
    snprintf(internal.source_type, sizeof internal.source_type, "DepositFromWallet");
    CHECK_EQ_INT(pipeline_ingest(p, &internal, err, sizeof err), 200);
    CHECK_EQ_INT(s_records_of("internal-1", to, 4), 0);
    cobo_tx_t sweep_wd = s_tx("sweep-wd-1", "Completed", 20);  /* the sweep itself */
    snprintf(sweep_wd.type, sizeof sweep_wd.type, "Withdrawal");
    snprintf(sweep_wd.source_address, sizeof sweep_wd.source_address, "TPipeAddr1");
    snprintf(sweep_wd.address, sizeof sweep_wd.address, "TPipeAddr2");
    CHECK_EQ_INT(pipeline_ingest(p, &sweep_wd, err, sizeof err), 200);
    CHECK_EQ_INT(s_records_of("sweep-wd-1", to, 4), 0);
    s_list_t l = { .n = 0 };
    CHECK_EQ_INT(pipeline_deposits(p, 0, 10, s_collect, &l), 0);
    cobo_tx_t real = s_tx("outside-1", "Confirming", 1);       /* an outside sender: a deposit */
    snprintf(real.source_type, sizeof real.source_type, "DepositFromAddress");
    snprintf(real.source_address, sizeof real.source_address, "TSomeoneElse");
    CHECK_EQ_INT(pipeline_ingest(p, &real, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_deposits(p, 100001, 10, s_collect, &l), 1);
    pipeline_destroy(&p);
    journal_destroy(&j);
    s_rm_dir();
}

static void test_pipeline_refuses_a_journal_other_than_the_configured_one(void)
{
    CHECK(s_mkdir("other") == 0);
    char first[240], err[256] = "";
    snprintf(first, sizeof first, "%s", s_dir);
    journal_t *j = journal_open(first, NULL, err, sizeof err);
    config_t cfg;
    s_config(&cfg);
    pipeline_t *p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    cobo_tx_t a = s_tx("dep-o", "Confirming", 1);
    CHECK(p && pipeline_ingest(p, &a, err, sizeof err) == 201);
    pipeline_destroy(&p);
    CHECK(s_mkdir("other2") == 0);   /* an empty journal, while cfg names the first */
    journal_t *j2 = journal_open(s_dir, NULL, err, sizeof err);
    p = j2 ? pipeline_new(j2, &cfg, err, sizeof err) : NULL;
    CHECK(p == NULL);
    CHECK(strstr(err, "not the same journal") != NULL);
    journal_destroy(&j2);
    journal_destroy(&j);
    s_rm_dir();
    snprintf(s_dir, sizeof s_dir, "%s", first);
    s_rm_dir();
}

int main(void)
{
    RUN(test_same_event_from_10_threads_journals_one_received);
    RUN(test_pending_journals_only_rising_confirmations_and_late_pending_changes_nothing);
    RUN(test_racing_updates_replay_to_the_state_memory_had);
    RUN(test_failed_journal_answers_503_and_acknowledges_nothing_after);
    RUN(test_links_are_journaled_and_survive_restart_with_deposits);
    RUN(test_pipeline_refuses_a_journal_other_than_the_configured_one);
    RUN(test_sweeps_and_internal_transfers_journal_nothing);
    return check_done();
}
