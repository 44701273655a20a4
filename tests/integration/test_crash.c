/* test_crash.c — exactly-once crediting while kasa is killed at random moments.
 *
 * Each run (one seed of a PRNG) starts kasa on a fresh journal, links a few addresses, and sends a
 * stream of signed deposit webhooks — every event of each deposit, some more than once, in
 * shuffled order — while the MT5 simulator sometimes applies a credit and drops its reply,
 * sometimes forgets sessions (answering HTTP 403), and sometimes executes a balance call late: it
 * drops the connection and applies the deal 100–700 ms later (within kasa's settle time, 1 s in
 * these runs, so a resend before it would be a double credit). At seeded moments kasa is SIGKILLed and
 * restarted (sometimes the restart is killed too, while it replays and resumes). The harness acts
 * as Cobo: an event is sent again until it is answered 2xx, also across restarts. Once every event
 * was answered and every kill done, the run waits for every deposit to be CREDITED, then checks
 * against the MT5 simulator's own deal list that each deposit was credited EXACTLY once, with the
 * right amount, on the right account, and that nothing else was credited; finally kasa is stopped
 * (it must exit 0) and `kasa journal verify` must pass. Every run writes a snapshot every few
 * records (KASA_SNAPSHOT_EVERY_RECORDS 2..8 by seed), so kills land while one is written and
 * restarts start from one.
 * Withdrawals (each run, from its own seeded stream, so a seed's deposits and kills stay as they
 * were): an investor thread asks for one or two through the investor API (POST /api/withdrawals,
 * the password re-entered; it logs in again after a restart and asks again when a kill ate the
 * answer, which may make a second withdrawal: the checks cover every withdrawal journaled). Those up
 * to 100.00 need no approver (KASA_WITHDRAW_AUTO_APPROVE_LIMIT); above it the main thread, as an
 * operator, runs `kasa withdrawal approve|reject` (through the control socket; it never runs while
 * kasa is down, so it never takes the journal's lock from a restart). The Cobo simulator, by seed:
 * answers the first transfer create 503 after making it; or holds the answer (hang_ms) and kasa is
 * killed once the transfer exists at Cobo (the client gave up); or fails every transfer after
 * Pending (HELD: the operator refunds it, or leaves it held); or nothing. Its transfer webhooks
 * reach kasa (failing while kasa is down; the deposits' are dropped: the harness sends those).
 * Once every withdrawal is final, each is checked against the MT5 simulator's deals and the Cobo
 * simulator's transfers (Cobo's API, request_ids kasa-ID-1 and -2): COMPLETED with exactly one debit
 * deal and exactly one transfer, Completed, no refund; REFUNDED with one debit, one refund and no
 * completed transfer; HELD with its reason, one debit, nothing else; and reconcile_gather (what
 * `kasa reconcile` reads) over the run must find no mismatch of the run's.
 *
 *   KASA_CRASH_RUNS=N   how many seeded runs (default 200)
 *   KASA_CRASH_SEED=S   run seed S alone (a failing run prints its seed)
 *   KASA_CRASH_BASE=B   first seed (default 1)
 *   KASA_CRASH_INJECT_DOUBLE=1  credit each run's first deposit twice behind kasa's back: every
 *                       run must then fail (a check that this test can fail)
 *   KASA_CRASH_INJECT_DOUBLE_WITHDRAWAL=1  debit each run's first withdrawal twice behind kasa's
 *                       back: every run must then fail (the withdrawal checks and reconcile)
 *   KASA_CRASH_VERBOSE=1  print each run (with when its deposits and withdrawals were done)
 *   KASA_CRASH_JOBS=N   runs side by side (default 2; 1: one after another in this process), each
 *                       worker a process with its own simulators; a seed's run is the same in any
 *   From 50 runs on, every fault kind the runs draw must have been exercised (checked).
 * Repaired-journal runs (KASA_CRASH_REPAIR_RUNS, _BASE, _SEED alike, default 8 from seed 1001): the
 * same, and at a seeded moment kasa is killed, one byte of a random acknowledged record is flipped,
 * the start must refuse naming `kasa journal repair`, the repair runs, kasa restarts and every
 * webhook is sent again; each deposit must end with exactly one deal, or HELD with its reason.
 * Two fixed scenarios go first: a flipped LOCKED record of a notified deposit, and a flipped credit
 * attempt whose balance call went through before a crash.
 * The simulators are started once per worker and shared by its runs; each run checks only deals
 * newer than the ones it found at its start. */
#include <fcntl.h>
#include <sys/mman.h>

#include "actors/cobo.h"
#include "actors/crediter.h"
#include "actors/mt5.h"
#include "actors/reconcile.h"
#include "actors/withdrawals.h"
#include "journal/jformat.h"
#include "schema/config.h"
#include "tests/check.h"
#include "tests/integration/harness.h"

#define MAX_DEPOSITS 4
#define MAX_EVENTS (MAX_DEPOSITS * 3 * 3)
#define MAX_KILLS 3
#define RUN_DEADLINE_MS 45000
#define MAX_WD 2              /* withdrawals an investor asks for in a run */
#define MAX_WD_SEEN 8         /* withdrawals a run's journal may hold (a request whose answer was lost and was
                               * asked again is a second withdrawal) */
#define WD_AUTO_MINOR 10000   /* KASA_WITHDRAW_AUTO_APPROVE_LIMIT=100: at or under it no approver is needed */
#define WD_HANG_MS 800        /* the Cobo simulator answers a create this late when told to (hang_ms) */
/* A run's few concurrent clients (the sender, the investor, Cobo's transfer webhooks, the operator)
 * need few HTTP threads; each of the default 16 + 64 costs every one of a run's starts its creation
 * (the webhook listener keeps 4 per KASA_HTTP_THREADS). */
#define RUN_CONFIG "KASA_HTTP_THREADS=4\n"
#define S_COVERAGE_RUNS 50    /* from this many seeded runs on, every fault kind must have been exercised */
#define WD_ADDRESS "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
#define WD_CONFIG "KASA_WITHDRAW_RULES=TRON_USDT=1:1:10:5000:100000000\nKASA_WITHDRAW_AUTO_APPROVE_LIMIT=100\n" \
                  "KASA_WITHDRAW_POLL_S=1\n"

static h_env_t s_env;
static char s_base_dir[400];
/* What the passing runs exercised (and how many ran and failed), over all runs: one per worker
 * process (KASA_CRASH_JOBS), in memory the workers share with the parent, which adds them up. */
typedef struct {
    long deposits, kills, start_kills, resends, reattempts, drops, session_losses, lates;
    long wd, wd_state[WITHDRAWAL_STATE_COUNT], wd_hang_kills, wd_faults[4], wd_asked_again;
    long wd_approved, wd_rejected, wd_auto, wd_held_refunded, wd_held_left;
    long done, failed;
} s_totals_t;
static s_totals_t s_own_totals;
static s_totals_t *s_tot = &s_own_totals;   /* this process's */
static config_t s_cfg;   /* the runs' configuration, as `kasa reconcile` reads it */
static cobo_client_t *s_cobo;   /* the checks' own client of the Cobo simulator's API */

typedef enum { WD_FAULT_NONE, WD_FAULT_5XX, WD_FAULT_LATE, WD_FAULT_FAILED } s_wd_fault_t;
static const char *const s_wd_fault_names[] = { "none", "5xx after creating", "answered after the client gave up",
                                                "Failed after Pending" };

/* A withdrawal the run's investor asks for. */
typedef struct {
    uint64_t login;
    int64_t amount_minor;  /* account currency, cents; above WD_AUTO_MINOR an operator decides */
    char amount[24];
    int reject;            /* the operator rejects it (else approves) */
    int gap_ms;            /* the investor waits this long before asking */
    char id[24];           /* kasa's answer (201) */
} s_wd_t;

typedef struct {
    h_tx_t tx;
    uint64_t login;
    int64_t expect_minor;
} s_deposit_t;

typedef struct {
    char *body;
    size_t len;
    int done;
    int gap_ms;        /* pause before its first sending */
} s_event_t;

typedef struct {
    uint64_t seed;
    int ndep, nev, nkill;
    s_deposit_t dep[MAX_DEPOSITS];
    s_event_t ev[MAX_EVENTS];
    int64_t kill_at_ms[MAX_KILLS];
    int kill_in_start_ms[MAX_KILLS];  /* >= 0: after this kill, kill the next start that soon too */
    int drop_pct;
    int session_loss_pct;  /* MT5 forgets the session (HTTP 403) on this share of commands */
    int late_pct;          /* MT5 executes this share of balance calls late, after dropping the connection */
    int late_ms;           /* ... this long after the call (below the settle time, KASA_MT5_SETTLE_S=1) */
    uint64_t baseline[H_MT5_ACCOUNTS]; /* highest deal ticket per account before the run */
    int kills_done, start_kills, restarts, sends, retries;
    int64_t t0;
    int stop, sender_done, sender_failed; /* shared with the sender thread (atomics) */
    int repair;            /* a repaired-journal run: at repair_at_ms kill kasa, flip a byte of a random
                            * acknowledged record, check the start refuses, repair, restart, resend all */
    int64_t repair_at_ms;
    int repaired;
    int64_t flipped_lsn;
    /* withdrawals (not in repaired-journal runs) */
    int nwd;
    s_wd_t wd[MAX_WD];
    s_wd_fault_t wd_fault;
    int wd_refund_held;    /* a HELD one is refunded by the operator (else left HELD, with its reason) */
    int wd_hang_killed;    /* WD_FAULT_LATE: kasa was killed while Cobo held the create's answer */
    int wd_asked, wd_asked_again, wd_acts, wd_act_failures;
    char wd_acted[MAX_WD_SEEN][24];
    int wd_nacted;
    int investor_done, investor_failed; /* shared with the investor thread (atomics) */
    int64_t deposits_done_ms, wd_done_ms, checks_ms, stop_ms, verify_ms, start_ms; /* when (since t0), how long */
} s_run_t;

/* Writes the ADDRESS_LINK records a run needs straight into its fresh journal, before kasa
 * starts (the journal has one writer at a time). 0, or -1. */
static int s_link_direct(const char *dir, const s_run_t *run)
{
    char err[256];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    if (!j) {
        h_log("journal_open %s: %s", dir, err);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < run->ndep && rc == 0; i++) {
        int seen = 0;
        for (int k = 0; k < i; k++)
            seen |= strcmp(run->dep[k].tx.address, run->dep[i].tx.address) == 0;
        if (seen)
            continue;
        record_t r;
        record_init(&r, RECORD_ADDRESS_LINK);
        r.time_ms = h_wall_ms();
        snprintf(r.address, sizeof r.address, "%s", run->dep[i].tx.address);
        snprintf(r.chain_id, sizeof r.chain_id, "TRON");
        r.login = run->dep[i].login;
        snprintf(r.actor, sizeof r.actor, "operator");
        snprintf(r.action, sizeof r.action, "link");
        uint8_t *buf = NULL;
        size_t len = 0;
        if (record_encode(&r, &buf, &len, err, sizeof err) != 0 || journal_append(j, buf, len) == 0) {
            h_log("link record: %s", err);
            rc = -1;
        }
        free(buf);
    }
    journal_destroy(&j);
    return rc;
}

static uint64_t s_max_ticket(uint64_t login)
{
    static h_deal_t deals[4096];
    int n = h_mt5_deals(&s_env, login, deals, 4096);
    uint64_t m = 0;
    for (int i = 0; i < n; i++)
        if (deals[i].ticket > m)
            m = deals[i].ticket;
    return m;
}

/* Builds the run's deposits, events and kill schedule from its seed. */
static int s_plan(s_run_t *run)
{
    h_rng_t rng = { run->seed * 0x2545F4914F6CDD1DULL + 17 };
    run->ndep = (int) h_rng_range(&rng, 1, MAX_DEPOSITS);
    run->nkill = (int) h_rng_range(&rng, 1, MAX_KILLS);
    static const int drops[] = { 0, 0, 20, 50 };
    run->drop_pct = drops[h_rng_range(&rng, 0, 3)];
    run->session_loss_pct = h_rng_range(&rng, 0, 3) == 0 ? 10 : 0;
    static const int lates[] = { 0, 0, 10, 30 };
    run->late_pct = lates[h_rng_range(&rng, 0, 3)];
    run->late_ms = (int) h_rng_range(&rng, 100, 700);
    for (int i = 0; i < run->ndep; i++) {
        s_deposit_t *d = &run->dep[i];
        memset(d, 0, sizeof *d);
        d->login = (uint64_t) h_rng_range(&rng, H_MT5_FIRST, H_MT5_FIRST + 3);
        snprintf(d->tx.address, sizeof d->tx.address, "TCrash%06" PRIu64 "Acct%" PRIu64, run->seed % 1000000, d->login);
        /* 2.000000 .. 999.999999 USDT, distinct per run; credit = floor(amount) to cents - 0.50 fee */
        int64_t micro = h_rng_range(&rng, 2000000, 999999999);
        micro = micro - micro % 7 + i;
        snprintf(d->tx.amount, sizeof d->tx.amount, "%" PRId64 ".%06" PRId64, micro / 1000000, micro % 1000000);
        d->expect_minor = micro / 10000 - 50;
        snprintf(d->tx.token_id, sizeof d->tx.token_id, "TRON_USDT");
        snprintf(d->tx.chain_id, sizeof d->tx.chain_id, "TRON");
        d->tx.threshold = 20;
        if (h_sim_deposit(&s_env, &d->tx, 1, 0, -1) != 0)
            return -1;
    }
    /* events: created (Confirming), updated (Confirming), succeeded (Completed), each 1..3 times */
    static const char *const types[] = { "wallets.transaction.created", "wallets.transaction.updated",
                                         "wallets.transaction.succeeded" };
    run->nev = 0;
    for (int i = 0; i < run->ndep; i++)
        for (int k = 0; k < 3; k++) {
            h_tx_t t = run->dep[i].tx;
            snprintf(t.status, sizeof t.status, "%s", k == 2 ? "Completed" : "Confirming");
            t.confirmations = k == 0 ? 0 : (k == 1 ? 11 : 20);
            char ev_id[40];
            h_uuid(run->seed, (uint64_t) (i * 3 + k), ev_id);
            jbuf_t b;
            jbuf_init(&b);
            h_webhook_body(&b, ev_id, types[k], &t);
            int copies = (int) h_rng_range(&rng, 1, 3);
            for (int c = 0; c < copies; c++) {
                run->ev[run->nev].body = strdup(b.data);
                run->ev[run->nev].len = b.len;
                run->ev[run->nev].done = 0;
                run->ev[run->nev].gap_ms = (int) h_rng_range(&rng, 0, 40);
                run->nev++;
            }
            jbuf_free(&b);
        }
    for (int i = run->nev - 1; i > 0; i--) {
        int j = (int) h_rng_range(&rng, 0, i);
        s_event_t t = run->ev[i];
        run->ev[i] = run->ev[j];
        run->ev[j] = t;
    }
    for (int k = 0; k < run->nkill; k++) {
        run->kill_at_ms[k] = h_rng_range(&rng, 0, 700);
        run->kill_in_start_ms[k] = h_rng_range(&rng, 0, 3) == 0 ? (int) h_rng_range(&rng, 0, 80) : -1;
    }
    for (int a = 0; a < run->nkill; a++)
        for (int b = a + 1; b < run->nkill; b++)
            if (run->kill_at_ms[b] < run->kill_at_ms[a]) {
                int64_t t = run->kill_at_ms[a];
                run->kill_at_ms[a] = run->kill_at_ms[b];
                run->kill_at_ms[b] = t;
            }
    run->repair_at_ms = h_rng_range(&rng, 200, 1200);
    for (int i = 0; i < H_MT5_ACCOUNTS; i++)
        run->baseline[i] = 0;
    /* withdrawals, from their own stream (a seed's deposits and kills are what they were without them) */
    h_rng_t wrng = { run->seed * 0x9E3779B97F4A7C15ULL + 29 };
    run->nwd = run->repair ? 0 : (int) h_rng_range(&wrng, 1, MAX_WD);
    run->wd_fault = (s_wd_fault_t) h_rng_range(&wrng, 0, 3);
    run->wd_refund_held = (int) h_rng_range(&wrng, 0, 1);
    for (int k = 0; k < run->nwd; k++) {
        s_wd_t *w = &run->wd[k];
        memset(w, 0, sizeof *w);
        w->login = (uint64_t) h_rng_range(&wrng, H_MT5_FIRST, H_MT5_FIRST + 3);
        /* 11.00 .. 100.00 needs no approver; 100.01 .. 400.00 (a third) an operator approves or rejects */
        w->amount_minor = h_rng_range(&wrng, 0, 2) ? h_rng_range(&wrng, 1100, WD_AUTO_MINOR)
                                                   : h_rng_range(&wrng, WD_AUTO_MINOR + 1, 40000);
        h_minor2(w->amount_minor, w->amount, sizeof w->amount);
        w->reject = h_rng_range(&wrng, 0, 2) == 0;
        w->gap_ms = (int) h_rng_range(&wrng, 0, 200);
    }
    for (int i = 0; i < run->ndep; i++)
        run->baseline[run->dep[i].login - H_MT5_FIRST] = s_max_ticket(run->dep[i].login);
    for (int k = 0; k < run->nwd; k++)
        run->baseline[run->wd[k].login - H_MT5_FIRST] = s_max_ticket(run->wd[k].login);
    return 0;
}

/* ---- withdrawals ------------------------------------------------------------------------------- */

/* Every withdrawal in the journal at dir (durable records, the archive too), replayed as kasa
 * replays them; NULL if the journal could not be read to its end (a read while kasa moves a
 * segment to the archive may fail: the caller reads again later, never taking a part for all). */
static withdrawals_t *s_wd_read(const char *dir)
{
    char err[256];
    journal_reader_t *rd = journal_reader_open(dir, 1, err, sizeof err);
    if (!rd)
        return NULL;
    withdrawals_t *wd = withdrawals_new(64);
    record_t *r = malloc(sizeof *r);
    journal_entry_t e;
    int rc = 0;
    while (wd && r && (rc = journal_reader_next(rd, &e)) == 1)
        if (record_decode(e.payload, e.len, r, err, sizeof err) == 0)
            withdrawals_apply(wd, r, e.lsn);
    if (rc != 0 || !r) {
        if (getenv("KASA_CRASH_VERBOSE"))
            h_log("reading %s: %s", dir, rc < 0 ? journal_reader_error(rd) : "out of memory");
        withdrawals_destroy(&wd);
    }
    free(r);
    journal_reader_destroy(&rd);
    return wd;
}

typedef struct {
    withdrawal_view_t v[MAX_WD_SEEN];
    int n, more;
} s_wd_list_t;

static void s_wd_collect(void *arg, const withdrawal_view_t *w)
{
    s_wd_list_t *l = arg;
    if (l->n < MAX_WD_SEEN)
        l->v[l->n++] = *w;
    else
        l->more = 1;
}

/* The run's withdrawals as its journal holds them now. 0, or -1 (unreadable). */
static int s_wd_list(s_wd_list_t *l)
{
    memset(l, 0, sizeof *l);
    withdrawals_t *wd = s_wd_read(s_env.journal);
    if (!wd)
        return -1;
    withdrawals_each(wd, 0, 0, s_wd_collect, l);
    withdrawals_destroy(&wd);
    return 0;
}

/* The planned withdrawal kasa answered with id, or NULL (one asked again after a lost answer). */
static const s_wd_t *s_wd_planned(const s_run_t *run, const char *id)
{
    for (int k = 0; k < run->nwd; k++)
        if (strcmp(run->wd[k].id, id) == 0)
            return &run->wd[k];
    return NULL;
}

/* The investor, acting through kasa's investor API as the panel does: logs in, and asks for each
 * planned withdrawal (re-entering the password) until kasa answers 201, across kills and restarts
 * (a restart forgets sessions: log in again). An answer lost to a kill may hide a withdrawal kasa
 * journaled; asking again then makes a second one (the checks cover every withdrawal journaled).
 * Runs in its own thread. */
static void *s_investor(void *arg)
{
    s_run_t *run = arg;
    char sid[80] = "", csrf[80] = "", body[320], cookie[100];
    uint64_t login = 0;
    for (int k = 0; k < run->nwd && !__atomic_load_n(&run->stop, __ATOMIC_SEQ_CST); k++) {
        s_wd_t *w = &run->wd[k];
        h_sleep_ms(w->gap_ms);
        int lost = 0, refused = 0;
        while (!w->id[0] && !__atomic_load_n(&run->stop, __ATOMIC_SEQ_CST)) {
            if (!sid[0] || login != w->login) {
                snprintf(body, sizeof body, "{\"login\":\"%" PRIu64 "\",\"password\":\"%s\"}", w->login, H_MT5_PW);
                h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/login", NULL, NULL, body, NULL);
                if (r.status == 200) {
                    char set[300] = "";
                    h_header(&r, "Set-Cookie", set, sizeof set);
                    const char *v = strstr(set, "kasa_sid=");
                    snprintf(sid, sizeof sid, "%.64s", v ? v + 9 : "");
                    h_json_str(r.body, "csrf", csrf, sizeof csrf);
                    login = w->login;
                }
                h_cresp_free(&r);
                if (!sid[0] || login != w->login) {
                    h_sleep_ms(20);
                    continue;
                }
            }
            snprintf(body, sizeof body,
                     "{\"token\":\"TRON_USDT\",\"address\":\"%s\",\"amount\":\"%s\",\"password\":\"%s\"}",
                     WD_ADDRESS, w->amount, H_MT5_PW);
            snprintf(cookie, sizeof cookie, "kasa_sid=%s", sid);
            h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/withdrawals", cookie, csrf, body, NULL);
            run->wd_asked++;
            if (r.status == 201) {
                h_json_str(r.body, "id", w->id, sizeof w->id);
                run->wd_asked_again += lost;
            } else if (r.status == 401 || r.status == 403) {
                sid[0] = '\0';   /* a restarted kasa knows no session */
                refused += r.status == 403;
            } else if (r.status == 0) {
                lost = 1;         /* killed while asked: it may be journaled */
            } else if (r.status != 503 && r.status != 429) {
                h_log("seed %" PRIu64 ": withdrawal of %s on %" PRIu64 " refused %ld %.200s", run->seed, w->amount,
                      w->login, r.status, r.body);
                __atomic_store_n(&run->investor_failed, 1, __ATOMIC_SEQ_CST);
            }
            h_cresp_free(&r);
            if (refused > 20) {
                h_log("seed %" PRIu64 ": the withdrawal request was answered 403 %d times", run->seed, refused);
                __atomic_store_n(&run->investor_failed, 1, __ATOMIC_SEQ_CST);
            }
            if (__atomic_load_n(&run->investor_failed, __ATOMIC_SEQ_CST))
                break;
            if (!w->id[0])
                h_sleep_ms(20);
        }
        if (__atomic_load_n(&run->investor_failed, __ATOMIC_SEQ_CST))
            break;
    }
    __atomic_store_n(&run->investor_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* `kasa withdrawal VERB ID --reason ... --config FILE`, as an operator runs it (through the running
 * server's control socket: kasa runs whenever the main thread is here). The exit status. */
static int s_wd_act(s_run_t *run, const char *verb, const char *id)
{
    char *out = NULL;
    int rc = h_kasa_cmd(&s_env, &out, "withdrawal", verb, id, "--reason", "crash test operator", "--actor",
                        "ops:crash", "--config", s_env.config, NULL);
    run->wd_acts++;
    if (rc != 0 && getenv("KASA_CRASH_VERBOSE"))
        h_log("seed %" PRIu64 ": kasa withdrawal %s %s -> %d: %s", run->seed, verb, id, rc, out ? out : "");
    free(out);
    return rc;
}

static int s_wd_acted(s_run_t *run, const char *id, int mark)
{
    for (int i = 0; i < run->wd_nacted; i++)
        if (strcmp(run->wd_acted[i], id) == 0)
            return 1;
    if (mark && run->wd_nacted < MAX_WD_SEEN)
        snprintf(run->wd_acted[run->wd_nacted++], sizeof run->wd_acted[0], "%s", id);
    return 0;
}

/* 1 when w is where the run leaves it: COMPLETED, REFUNDED, REJECTED (MT5 refused the debit), or
 * HELD with its reason when the run's operator leaves a held one alone. */
static int s_wd_final(const s_run_t *run, const withdrawal_view_t *w)
{
    return w->state == WITHDRAWAL_COMPLETED || w->state == WITHDRAWAL_REFUNDED || w->state == WITHDRAWAL_REJECTED ||
           (w->state == WITHDRAWAL_HELD && !run->wd_refund_held);
}

/* The operator's pass over the run's withdrawals (main thread, kasa running): a DEBITED one above
 * the approval limit is approved or rejected (as planned; one asked again after a lost answer is
 * approved), a HELD one refunded when the run says so. With WD_FAULT_LATE, kasa is killed once
 * Cobo has made a transfer whose create it has not answered yet. Returns 1 when every withdrawal
 * is final (s_wd_final) and the investor is done, 0 while not, 2 when kasa is to be killed now,
 * -1 on a failure (logged). */
static int s_wd_operate(s_run_t *run, cobo_client_t *cobo)
{
    if (run->nwd == 0)
        return 1;
    s_wd_list_t l;
    if (s_wd_list(&l) != 0)
        return 0;
    if (l.more) {
        h_log("seed %" PRIu64 ": more than %d withdrawals journaled", run->seed, MAX_WD_SEEN);
        return -1;
    }
    /* every withdrawal kasa answered 201 for is durable: one missing is a read to come again */
    int final = 0, answered = 0;
    for (int k = 0; k < run->nwd; k++)
        for (int i = 0; run->wd[k].id[0] && i < l.n; i++)
            answered += strcmp(l.v[i].id, run->wd[k].id) == 0;
    for (int i = 0; i < l.n; i++) {
        const withdrawal_view_t *w = &l.v[i];
        final += s_wd_final(run, w);
        if (w->state == WITHDRAWAL_DEBITED && w->amount_minor > WD_AUTO_MINOR && !s_wd_acted(run, w->id, 0)) {
            const s_wd_t *p = s_wd_planned(run, w->id);
            if (s_wd_act(run, p && p->reject ? "reject" : "approve", w->id) == 0)
                s_wd_acted(run, w->id, 1);
            else if (++run->wd_act_failures > 20)
                return -1;
        }
        if (w->state == WITHDRAWAL_HELD && run->wd_refund_held && s_wd_act(run, "refund", w->id) != 0 &&
            ++run->wd_act_failures > 20)
            return -1;
        if (run->wd_fault == WD_FAULT_LATE && !run->wd_hang_killed && w->state == WITHDRAWAL_APPROVED &&
            w->transfer_attempts > 0 && cobo) {
            cobo_tx_t tx;
            char err[200];
            if (cobo_find_transfer(cobo, w->request_id, &tx, err, sizeof err) == COBO_FIND_FOUND) {
                run->wd_hang_killed = 1;
                return 2;   /* Cobo made it and holds its answer (WD_HANG_MS): kasa's client gives up, by dying */
            }
        }
    }
    return final == l.n && answered == run->nwd && __atomic_load_n(&run->investor_done, __ATOMIC_SEQ_CST) ? 1 : 0;
}

/* 1 when every deposit of the run has reached CREDITED (or NOTIFIED) in the journal; in a
 * repaired-journal run HELD (a person decides, with the reason) ends a deposit too. */
static int s_all_credited(const s_run_t *run)
{
    for (int i = 0; i < run->ndep; i++) {
        h_jinfo_t info;
        if (h_journal_info(s_env.journal, run->dep[i].tx.tx_id, &info) != 0)
            return 0;
        if (info.state != DEPOSIT_CREDITED && info.state != DEPOSIT_NOTIFIED &&
            !(run->repair && info.state == DEPOSIT_HELD))
            return 0;
    }
    return 1;
}

/* Kills kasa (it must still be running: dying alone is a failure) and starts it again; with
 * in_start_ms >= 0 the next start is killed too, that many ms in (while it replays, resumes
 * and reconciles), before the start that is waited for. */
static int s_kill_restart(s_run_t *run, int in_start_ms)
{
    int st;
    if (h_exited(s_env.kasa_pid, &st)) {
        h_log("seed %" PRIu64 ": kasa died on its own (status %d)", run->seed, st);
        s_env.kasa_pid = 0;
        return -1;
    }
    h_kasa_kill(&s_env);
    run->kills_done++;
    if (in_start_ms >= 0) {
        h_kasa_spawn(&s_env);
        h_sleep_ms(in_start_ms);
        h_kasa_kill(&s_env);
        run->kills_done++;
        run->start_kills++;
    }
    if (h_kasa_start(&s_env) != 0)
        return -1;
    run->restarts++;
    return 0;
}

/* The sender, acting as Cobo: every event is sent until it is answered 2xx, across kills and
 * restarts (the URL never changes). Runs in its own thread; processes are started and killed
 * by the main thread only (a child's death signal is tied to the thread that forked it). */
static void *s_sender(void *arg)
{
    s_run_t *run = arg;
    CURL *curl = curl_easy_init();
    int cursor = 0, pending = run->nev;
    while (pending > 0 && !__atomic_load_n(&run->stop, __ATOMIC_SEQ_CST)) {
        while (run->ev[cursor].done)
            cursor = (cursor + 1) % run->nev;
        s_event_t *e = &run->ev[cursor];
        if (e->gap_ms) {
            h_sleep_ms(e->gap_ms);
            e->gap_ms = 0;
        }
        h_resp_t r = h_post_webhook_url(curl, s_env.webhook_url, e->body, e->len, 0);
        run->sends++;
        if (r.status == 200 || r.status == 201) {
            e->done = 1;
            pending--;
        } else {
            /* anything but 2xx is sent again later; a refusal of a valid, correctly signed event
             * is a bug (404 only while a restarted kasa is adding its routes) */
            run->retries++;
            if (r.status >= 400 && r.status < 500 && r.status != 429 && r.status != 404) {
                h_log("seed %" PRIu64 ": webhook refused %ld %.200s", run->seed, r.status, r.body);
                __atomic_store_n(&run->sender_failed, 1, __ATOMIC_SEQ_CST);
                h_resp_free(&r);
                break;
            }
            h_sleep_ms(5);
        }
        h_resp_free(&r);
        cursor = (cursor + 1) % run->nev;
    }
    curl_easy_cleanup(curl);
    __atomic_store_n(&run->sender_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* ---- a repaired journal ------------------------------------------------------------------------ */

typedef struct {
    uint64_t lsn;
    uint32_t batch_index;
    uint32_t len;
    uint64_t offset;
    char segment[JF_NAME_MAX];
} s_jrec_t;

typedef struct {
    s_jrec_t *recs;
    int n, cap;
} s_jrecs_t;

static int s_collect_rec(void *arg, const jf_rec_t *rec, const char *segment, uint64_t offset)
{
    s_jrecs_t *l = arg;
    if (l->n == l->cap)
        return 1;
    s_jrec_t *r = &l->recs[l->n++];
    r->lsn = rec->lsn;
    r->batch_index = rec->batch_index;
    r->len = rec->len;
    r->offset = offset;
    snprintf(r->segment, sizeof r->segment, "%s", segment);
    return 0;
}

/* XORs the byte at offset of segment in dir with mask. 0, or -1. */
static int s_flip_byte(const char *dir, const char *segment, uint64_t offset, uint8_t mask)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, segment);
    int fd = open(path, O_RDWR);
    uint8_t b;
    int rc = fd >= 0 && pread(fd, &b, 1, (off_t) offset) == 1 ? 0 : -1;
    b ^= mask;
    if (rc == 0 && pwrite(fd, &b, 1, (off_t) offset) != 1)
        rc = -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Flips one byte (anywhere in its header or payload) of a random acknowledged record: one before
 * the journal's last group commit, which a later commit proves was on disk and acknowledged (damage
 * inside the last group commit is a torn write, cut at start). Returns the LSN flipped, 0 if the
 * journal has no such record, -1 on error. */
static int64_t s_flip_random_acked(const char *dir, h_rng_t *rng)
{
    static s_jrec_t recs[8192];
    s_jrecs_t l = { recs, 0, 8192 };
    jf_scan_t scan;
    char err[256];
    if (jf_scan(dir, &scan, s_collect_rec, &l, err, sizeof err) != 0 || scan.state == JF_CORRUPT) {
        h_log("scan of %s before the flip: %s", dir, scan.state == JF_CORRUPT ? scan.reason : err);
        jf_scan_free(&scan);
        return -1;
    }
    jf_scan_free(&scan);
    if (l.n == 0)
        return 0;
    const s_jrec_t *last = &recs[l.n - 1];
    uint64_t last_batch = last->lsn - last->batch_index;
    int acked = 0;
    while (acked < l.n && recs[acked].lsn < last_batch)
        acked++;
    if (acked == 0)
        return 0;
    const s_jrec_t *r = &recs[h_rng_range(rng, 0, acked - 1)];
    uint64_t at = r->offset + (uint64_t) h_rng_range(rng, 0, JF_REC_HDR + r->len - 1);
    if (s_flip_byte(dir, r->segment, at, (uint8_t) h_rng_range(rng, 1, 255)) != 0)
        return -1;
    return (int64_t) r->lsn;
}

/* After damage to an acknowledged record: the start must refuse and name the repair, the repair
 * must succeed, and the next start must come up. 0, or -1 (logged). */
static int s_refuse_repair_restart(uint64_t seed)
{
    h_kasa_spawn(&s_env);
    int st = h_wait_pid(s_env.kasa_pid, 20000);
    if (st == -1 || st == 0) {
        h_log("seed %" PRIu64 ": kasa %s on a journal with a damaged acknowledged record", seed,
              st == 0 ? "exited 0" : "started");
        h_kasa_kill(&s_env);
        return -1;
    }
    s_env.kasa_pid = 0;
    char *log = h_read_file(s_env.kasa_log, NULL);
    int named = log && strstr(log, "kasa journal repair") != NULL;
    free(log);
    if (!named) {
        h_log("seed %" PRIu64 ": the refusal does not name `kasa journal repair`", seed);
        return -1;
    }
    char *out = NULL;
    int rc = h_kasa_cmd(&s_env, &out, "journal", "repair", s_env.journal, NULL);
    if (rc != 0 || getenv("KASA_CRASH_VERBOSE"))
        h_log("seed %" PRIu64 ": kasa journal repair -> %d:\n%s", seed, rc, out ? out : "");
    free(out);
    if (rc != 0)
        return -1;
    return h_kasa_start(&s_env);
}

/* Checks the MT5 simulator's deals against the run's deposits: each deposit has exactly one deal
 * with its reference (derived from its transaction id), of the right amount, and one CREDITED
 * record; no other deal appeared. In a repaired-journal run a deposit may instead be HELD with its
 * reason (then at most one deal), and its CREDITED record may be among the quarantined ones (at most
 * one). 0 when exact, else -1 (logged). */
static int s_check_deals(const s_run_t *run)
{
    int rc = 0;
    static h_deal_t deals[4096];
    s_wd_list_t wl;
    memset(&wl, 0, sizeof wl);
    if (run->nwd && s_wd_list(&wl) != 0)
        return -1;
    for (int a = 0; a < H_MT5_ACCOUNTS; a++) {
        uint64_t login = (uint64_t) (H_MT5_FIRST + a);
        int mine = 0;
        for (int i = 0; i < run->ndep; i++)
            mine += run->dep[i].login == login;
        for (int i = 0; i < wl.n; i++)
            mine += wl.v[i].login == login;
        if (!mine)
            continue;
        int n = h_mt5_deals(&s_env, login, deals, 4096);
        if (n < 0)
            return -1;
        int fresh = 0, explained = 0;
        for (int k = 0; k < n; k++)
            fresh += deals[k].ticket > run->baseline[a];
        /* a withdrawal's debit and refund deals (s_check_withdrawals checks how many) */
        for (int i = 0; i < wl.n; i++) {
            char dref[32], rref[32];
            withdrawal_debit_ref(wl.v[i].id, dref);
            withdrawal_refund_ref(wl.v[i].id, rref);
            for (int k = 0; k < n && wl.v[i].login == login; k++)
                explained += deals[k].ticket > run->baseline[a] &&
                             (strcmp(deals[k].comment, dref) == 0 || strcmp(deals[k].comment, rref) == 0);
        }
        for (int i = 0; i < run->ndep; i++) {
            const s_deposit_t *d = &run->dep[i];
            if (d->login != login)
                continue;
            h_jinfo_t info;
            h_journal_info(s_env.journal, d->tx.tx_id, &info);
            char ref[32];
            crediter_ref(d->tx.tx_id, ref);
            int matches = 0, right_amount = 0;
            for (int k = 0; k < n; k++) {
                if (deals[k].ticket <= run->baseline[a] || strcmp(deals[k].comment, ref) != 0)
                    continue;
                matches++;
                right_amount += h_amount_eq(deals[k].profit, d->expect_minor);
            }
            explained += matches;
            s_tot->reattempts += info.attempts > 1;
            int held = run->repair && info.state == DEPOSIT_HELD;
            int ok = held ? matches <= 1 && info.reason[0]
                          : matches == 1 && right_amount == 1 && (run->repair ? info.credited <= 1 : info.credited == 1);
            if (!ok) {
                char want[32];
                h_minor2(d->expect_minor, want, sizeof want);
                h_log("seed %" PRIu64 ": tx %s amount %s -> %s on %" PRIu64 " (%s%s%s): %d deals with ref '%s', %d of the "
                      "right amount, %d CREDITED records",
                      run->seed, d->tx.tx_id, d->tx.amount, want, login, deposit_state_name((deposit_state_t) info.state),
                      info.reason[0] ? ": " : "", info.reason, matches, ref, right_amount, info.credited);
                rc = -1;
            }
        }
        if (fresh != explained) {
            h_log("seed %" PRIu64 ": login %" PRIu64 " got %d new deals, %d of them with a deposit's or withdrawal's "
                  "reference", run->seed, login, fresh, explained);
            rc = -1;
        }
    }
    return rc;
}

/* How many fresh deals of login carry ref, and how many of them are of minor (signed cents). */
static int s_ref_deals(const h_deal_t *deals, int n, uint64_t baseline, const char *ref, int64_t minor, int *right)
{
    int found = 0;
    *right = 0;
    for (int k = 0; k < n; k++)
        if (deals[k].ticket > baseline && strcmp(deals[k].comment, ref) == 0) {
            found++;
            *right += h_amount_eq(deals[k].profit, minor);
        }
    return found;
}

/* Cobo's transfers of withdrawal id (request_ids kasa-ID-1 and -2, through Cobo's API as kasa asks;
 * no run transfers again, so a -2 is a transfer too many): how many exist, how many are Completed.
 * 0, or -1 when Cobo cannot tell. */
static int s_cobo_transfers(cobo_client_t *cobo, const char *id, int *made, int *completed)
{
    *made = *completed = 0;
    for (uint32_t t = 1; t <= 2; t++) {
        char rid[48], err[200];
        withdrawal_request_id(id, t, rid);
        cobo_tx_t tx;
        cobo_find_t f = COBO_FIND_UNKNOWN;
        for (int tries = 0; tries < 5 && f == COBO_FIND_UNKNOWN; tries++) {
            memset(&tx, 0, sizeof tx);
            f = cobo_find_transfer(cobo, rid, &tx, err, sizeof err);
            if (f == COBO_FIND_UNKNOWN)
                h_sleep_ms(100);
        }
        if (f == COBO_FIND_UNKNOWN) {
            h_log("Cobo cannot tell about %s: %s", rid, err);
            return -1;
        }
        *made += f == COBO_FIND_FOUND;
        *completed += f == COBO_FIND_FOUND && strcmp(tx.status, "Completed") == 0;
    }
    return 0;
}

/* Checks every withdrawal the run's journal holds against the MT5 simulator's deals and the Cobo
 * simulator's transfers: COMPLETED with exactly one debit deal (minus its amount) and exactly one
 * transfer, Completed, and no refund; REFUNDED with one debit, one refund (plus its amount) and no
 * Completed transfer; HELD (when the run leaves it so) with its reason, one debit, no refund and no
 * Completed transfer; REJECTED (MT5 refused the debit) with no deal and no transfer. Every
 * withdrawal kasa answered 201 for is journaled. 0 when exact, else -1 (logged). */
static int s_check_withdrawals(const s_run_t *run, cobo_client_t *cobo, s_wd_list_t *l)
{
    if (!run->nwd)
        return 0;
    if (s_wd_list(l) != 0 || l->more) {
        h_log("seed %" PRIu64 ": the run's withdrawals cannot be read", run->seed);
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < run->nwd; k++) {
        int found = 0;
        for (int i = 0; i < l->n; i++)
            found |= strcmp(l->v[i].id, run->wd[k].id) == 0;
        if (!found) {
            h_log("seed %" PRIu64 ": withdrawal '%s' (%s on %" PRIu64 ") was answered 201 but is not journaled",
                  run->seed, run->wd[k].id, run->wd[k].amount, run->wd[k].login);
            rc = -1;
        }
    }
    static h_deal_t deals[4096];
    for (int i = 0; i < l->n; i++) {
        const withdrawal_view_t *w = &l->v[i];
        int n = h_mt5_deals(&s_env, w->login, deals, 4096);
        if (n < 0)
            return -1;
        uint64_t base = run->baseline[w->login - H_MT5_FIRST];
        char dref[32], rref[32];
        withdrawal_debit_ref(w->id, dref);
        withdrawal_refund_ref(w->id, rref);
        int dright, rright, made, completed;
        int debits = s_ref_deals(deals, n, base, dref, -w->amount_minor, &dright);
        int refunds = s_ref_deals(deals, n, base, rref, w->amount_minor, &rright);
        if (s_cobo_transfers(cobo, w->id, &made, &completed) != 0)
            return -1;
        int debited = debits == 1 && dright == 1;
        int ok = 0;
        switch (w->state) {
        case WITHDRAWAL_COMPLETED: ok = debited && refunds == 0 && made == 1 && completed == 1; break;
        case WITHDRAWAL_REFUNDED: ok = debited && refunds == 1 && rright == 1 && completed == 0; break;
        case WITHDRAWAL_HELD: ok = !run->wd_refund_held && w->reason[0] && debited && refunds == 0 && completed == 0; break;
        case WITHDRAWAL_REJECTED: ok = debits == 0 && refunds == 0 && made == 0; break;
        default: ok = 0;
        }
        if (!ok) {
            h_log("seed %" PRIu64 ": withdrawal %s of %" PRId64 " cents on %" PRIu64 " is %s%s%s: %d debit deals (%d of "
                  "the right amount), %d refund deals (%d right), %d Cobo transfers (%d Completed)",
                  run->seed, w->id, w->amount_minor, w->login, withdrawal_state_name(w->state), w->reason[0] ? ": " : "",
                  w->reason, debits, dright, refunds, rright, made, completed);
            rc = -1;
        }
    }
    return rc;
}

/* 1 if mismatch m concerns this run: one of its deposits or withdrawals, or a deal newer than the
 * run's start on one of its logins (the simulators are shared: older deals are other runs'). */
static int s_mismatch_ours(const s_run_t *run, const s_wd_list_t *l, const reconcile_mismatch_t *m)
{
    for (int i = 0; i < run->ndep; i++)
        if (strcmp(m->tx_id, run->dep[i].tx.tx_id) == 0)
            return 1;
    for (int i = 0; i < l->n; i++)
        if (strcmp(m->tx_id, l->v[i].id) == 0)
            return 1;
    return m->login >= H_MT5_FIRST && m->login < H_MT5_FIRST + H_MT5_ACCOUNTS &&
           run->baseline[m->login - H_MT5_FIRST] && m->ticket > run->baseline[m->login - H_MT5_FIRST];
}

/* `kasa reconcile` over the run (reconcile_gather: the journal, MT5's deals, Cobo's transactions,
 * from the run's start): no mismatch that concerns the run. 0, or -1 (each one logged). */
static int s_reconcile_run(const s_run_t *run, const s_wd_list_t *l, int64_t from_ms)
{
    snprintf(s_cfg.journal_dir, sizeof s_cfg.journal_dir, "%.*s", (int) sizeof s_cfg.journal_dir - 1, s_env.journal);
    reconcile_books_t b;
    reconcile_report_t r;
    char err[512] = "";
    if (reconcile_gather(&s_cfg, from_ms, h_wall_ms() + 60000, &b, err, sizeof err) != 0) {
        h_log("seed %" PRIu64 ": reconcile_gather: %s", run->seed, err);
        reconcile_books_free(&b);
        return -1;
    }
    int rc = reconcile_compare(&b, &r) < 0 ? -1 : 0;
    for (size_t i = 0; i < r.mismatch_count && i < RECONCILE_MAX_MISMATCHES; i++)
        if (s_mismatch_ours(run, l, &r.mismatches[i])) {
            const reconcile_mismatch_t *m = &r.mismatches[i];
            h_log("seed %" PRIu64 ": reconcile: %s %s login %" PRIu64 " ticket %" PRIu64 ": %s", run->seed, m->kind,
                  m->tx_id, m->login, m->ticket, m->evidence);
            rc = -1;
        }
    reconcile_report_free(&r);
    reconcile_books_free(&b);
    return rc;
}

/* The repaired-journal step of a run: stops the sender, kills kasa, flips a byte of a random
 * acknowledged record, checks that the start refuses, repairs, restarts, and has every webhook
 * sent again. 0, or -1 (logged). */
static int s_repair_step(s_run_t *run, pthread_t *sender)
{
    __atomic_store_n(&run->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(*sender, NULL);
    int st;
    if (h_exited(s_env.kasa_pid, &st)) {
        h_log("seed %" PRIu64 ": kasa died on its own (status %d)", run->seed, st);
        s_env.kasa_pid = 0;
        pthread_create(sender, NULL, s_sender, run);   /* stop is set: it ends at once */
        return -1;
    }
    h_kasa_kill(&s_env);
    h_rng_t rng = { run->seed * 0x9E3779B97F4A7C15ULL + 101 };
    run->flipped_lsn = s_flip_random_acked(s_env.journal, &rng);
    if (run->flipped_lsn < 0) {
        __atomic_store_n(&run->sender_done, 0, __ATOMIC_SEQ_CST);
        pthread_create(sender, NULL, s_sender, run);   /* stop is set: it ends at once */
        return -1;
    }
    int rc = run->flipped_lsn > 0 ? s_refuse_repair_restart(run->seed) : h_kasa_start(&s_env);
    run->repaired = 1;
    for (int i = 0; i < run->nev; i++)
        run->ev[i].done = 0;   /* resend every webhook */
    __atomic_store_n(&run->stop, rc != 0, __ATOMIC_SEQ_CST);   /* on failure the sender ends at once */
    __atomic_store_n(&run->sender_done, 0, __ATOMIC_SEQ_CST);
    pthread_create(sender, NULL, s_sender, run);
    return rc;
}

/* One seeded run (repair: a repaired-journal run). Returns 0 if every check held. */
static int s_run(uint64_t seed, int repair)
{
    s_run_t run;
    memset(&run, 0, sizeof run);
    run.seed = seed;
    run.repair = repair;
    snprintf(s_env.journal, sizeof s_env.journal, "%s/run-%" PRIu64, s_base_dir, seed);
    snprintf(s_env.kasa_log, sizeof s_env.kasa_log, "%s/run-%" PRIu64 ".log", s_base_dir, seed);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", s_env.journal, s_env.kasa_log);
    if (system(cmd) != 0)
        return -1;
    int rc = -1;
    int64_t t0 = h_now_ms();
    char faults[300];
    s_wd_list_t wl;
    memset(&wl, 0, sizeof wl);
    /* snapshots every few records: kills land before, during and after them, and every restart
     * starts from one (or falls back) */
    char snap[300];
    snprintf(snap, sizeof snap, "KASA_SNAPSHOT_EVERY_RECORDS=%d\n%s%s", 2 + (int) (seed % 7), WD_CONFIG, RUN_CONFIG);
    int64_t wall0 = h_wall_ms();
    if (h_config_write(&s_env, snap) != 0 || s_plan(&run) != 0 || s_link_direct(s_env.journal, &run) != 0)
        goto out;
    /* Cobo's transfer fault for the run (one-shot faults cleared when not chosen) */
    snprintf(faults, sizeof faults, "{\"transfer_5xx_once\":%s,\"transfer_timeout_once\":%s,\"hang_ms\":%d,"
             "\"transfer_final\":\"%s\"}", run.wd_fault == WD_FAULT_5XX ? "true" : "false",
             run.wd_fault == WD_FAULT_LATE ? "true" : "false", WD_HANG_MS,
             run.wd_fault == WD_FAULT_FAILED ? "Failed" : "");
    if (run.nwd && h_sim_post(s_env.cobo_url, "/sim/faults", faults) != 200)
        goto out;
    snprintf(faults, sizeof faults,
             "{\"drop_reply\":%d.%02d,\"session_loss\":%d.%02d,\"late_chance\":%d.%02d,\"late_apply_ms\":%d,"
             "\"late_reply_ms\":0}", run.drop_pct / 100, run.drop_pct % 100, run.session_loss_pct / 100,
             run.session_loss_pct % 100, run.late_pct / 100, run.late_pct % 100, run.late_ms);
    if (h_sim_post(s_env.mt5_url, "/sim/faults", faults) != 200)
        goto out;
    int64_t start0 = h_now_ms();
    if (h_kasa_start(&s_env) != 0)
        goto out;
    t0 = run.t0 = h_now_ms();
    run.start_ms = t0 - start0;
    int64_t deadline = t0 + RUN_DEADLINE_MS;
    pthread_t sender, investor;
    pthread_create(&sender, NULL, s_sender, &run);
    if (run.nwd)
        pthread_create(&investor, NULL, s_investor, &run);
    int next_kill = 0, ok = 0, wd_done = run.nwd == 0;
    int64_t wd_next_ms = 0;
    for (;;) {
        int64_t now = h_now_ms();
        if (now > deadline) {
            h_log("seed %" PRIu64 ": no quiescence within %d ms (sender done %d, %d/%d kills)", seed, RUN_DEADLINE_MS,
                  run.sender_done, run.kills_done, run.nkill);
            break;
        }
        if (__atomic_load_n(&run.sender_failed, __ATOMIC_SEQ_CST) ||
            __atomic_load_n(&run.investor_failed, __ATOMIC_SEQ_CST))
            break;
        if (!wd_done && now >= wd_next_ms) {
            int w = s_wd_operate(&run, s_cobo);
            wd_next_ms = h_now_ms() + 30;
            if (w < 0)
                break;
            if (w == 2) {
                s_tot->wd_hang_kills++;
                if (s_kill_restart(&run, -1) != 0)
                    break;
                continue;
            }
            wd_done = w == 1;
            if (wd_done)
                run.wd_done_ms = h_now_ms() - t0;
        }
        if (run.repair && !run.repaired && now - t0 >= run.repair_at_ms) {
            if (s_repair_step(&run, &sender) != 0)
                break;
            continue;
        }
        if (next_kill < run.nkill && now - t0 >= run.kill_at_ms[next_kill]) {
            next_kill++;
            if (s_kill_restart(&run, run.kill_in_start_ms[next_kill - 1]) != 0)
                break;
            continue;
        }
        if (!run.deposits_done_ms && next_kill >= run.nkill && (!run.repair || run.repaired) &&
            __atomic_load_n(&run.sender_done, __ATOMIC_SEQ_CST) && s_all_credited(&run))
            run.deposits_done_ms = h_now_ms() - t0;
        if (run.deposits_done_ms && wd_done) {
            ok = 1;
            break;
        }
        h_sleep_ms(next_kill < run.nkill ? 1 : 10);
    }
    __atomic_store_n(&run.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(sender, NULL);
    if (run.nwd)
        pthread_join(investor, NULL);
    if (!ok)
        goto out;
    /* quiescent: no extra deal may appear later either; the checks read MT5 without its faults */
    h_sleep_ms(50);
    if (run.nwd && h_sim_post(s_env.mt5_url, "/sim/faults", "{\"drop_reply\":0,\"session_loss\":0,\"late_chance\":0}") != 200)
        goto out;
    if (getenv("KASA_CRASH_INJECT_DOUBLE")) {
        /* a self-test of this test: credit the first deposit a second time behind kasa's back,
         * with its own reference; the checks below must catch it */
        h_jinfo_t info;
        h_journal_info(s_env.journal, run.dep[0].tx.tx_id, &info);
        mt5_client_t *m = mt5_client_new(s_env.mt5_url, H_MT5_MANAGER, H_MT5_MANAGER_PW, NULL, 5000);
        uint64_t ticket = 0;
        char err[200];
        mt5_result_t mr = mt5_balance(m, run.dep[0].login, run.dep[0].expect_minor, 2, info.ref, &ticket, err, sizeof err);
        h_log("injected a second deal for %s: %s ticket %" PRIu64, run.dep[0].tx.tx_id, mt5_result_name(mr), ticket);
        mt5_client_destroy(&m);
    }
    if (run.nwd && getenv("KASA_CRASH_INJECT_DOUBLE_WITHDRAWAL")) {
        /* a self-test: debit the run's first withdrawal a second time behind kasa's back, with its
         * reference; the checks below must catch it */
        withdrawal_view_t w;
        s_wd_list(&wl);
        w = wl.v[0];
        char ref[32], err[200];
        withdrawal_debit_ref(w.id, ref);
        mt5_client_t *m = mt5_client_new(s_env.mt5_url, H_MT5_MANAGER, H_MT5_MANAGER_PW, NULL, 5000);
        uint64_t ticket = 0;
        mt5_result_t mr = mt5_balance(m, w.login, -w.amount_minor, 2, ref, &ticket, err, sizeof err);
        h_log("injected a second debit for %s: %s ticket %" PRIu64, w.id, mt5_result_name(mr), ticket);
        mt5_client_destroy(&m);
    }
    /* each check runs (and logs) even when an earlier one failed */
    int64_t checks0 = h_now_ms();
    int bad = s_check_deals(&run) != 0;
    bad |= s_check_withdrawals(&run, s_cobo, &wl) != 0;
    if (run.nwd)
        bad |= s_reconcile_run(&run, &wl, wall0) != 0;
    run.checks_ms = h_now_ms() - checks0;
    if (bad)
        goto out;
    int64_t stop0 = h_now_ms();
    int st = h_kasa_stop(&s_env);
    run.stop_ms = h_now_ms() - stop0;
    if (st != 0) {
        h_log("seed %" PRIu64 ": kasa stopped with status %d", seed, st);
        goto out;
    }
    char *vout = NULL;
    int vrc = h_kasa_cmd(&s_env, &vout, "journal", "verify", s_env.journal, NULL);
    run.verify_ms = h_now_ms() - stop0 - run.stop_ms;
    if (vrc != 0) {
        h_log("seed %" PRIu64 ": kasa journal verify -> %d: %s", seed, vrc, vout ? vout : "");
        free(vout);
        goto out;
    }
    free(vout);
    rc = 0;
    s_tot->deposits += run.ndep;
    s_tot->kills += run.kills_done;
    s_tot->start_kills += run.start_kills;
    s_tot->resends += run.retries;
    s_tot->drops += run.drop_pct > 0;
    s_tot->session_losses += run.session_loss_pct > 0;
    s_tot->lates += run.late_pct > 0;
    s_tot->wd += wl.n;
    for (int i = 0; i < wl.n; i++)
        s_tot->wd_state[wl.v[i].state]++;
    s_tot->wd_faults[run.wd_fault] += run.nwd > 0;
    s_tot->wd_asked_again += run.wd_asked_again;
    for (int k = 0; k < run.nwd; k++) {
        s_tot->wd_auto += run.wd[k].amount_minor <= WD_AUTO_MINOR;
        s_tot->wd_approved += run.wd[k].amount_minor > WD_AUTO_MINOR && !run.wd[k].reject;
        s_tot->wd_rejected += run.wd[k].amount_minor > WD_AUTO_MINOR && run.wd[k].reject;
    }
    s_tot->wd_held_refunded += run.nwd && run.wd_fault == WD_FAULT_FAILED && run.wd_refund_held;
    s_tot->wd_held_left += run.nwd && run.wd_fault == WD_FAULT_FAILED && !run.wd_refund_held;
    if (getenv("KASA_CRASH_VERBOSE"))
        h_log("seed %" PRIu64 ": %d deposits, %d events, %d sends (%d retried), %d kills, drop %d%%, %d withdrawals "
              "(Cobo: %s), %" PRId64 " ms (start %" PRId64 ", deposits done +%" PRId64 ", withdrawals +%" PRId64
              ", checks %" PRId64 ", stop %" PRId64 ", verify %" PRId64 ")",
              seed, run.ndep, run.nev, run.sends, run.retries, run.kills_done, run.drop_pct, wl.n,
              s_wd_fault_names[run.wd_fault], h_now_ms() - t0, run.start_ms, run.deposits_done_ms, run.wd_done_ms,
              run.checks_ms, run.stop_ms, run.verify_ms);
out:
    h_kasa_kill(&s_env);
    for (int i = 0; i < run.nev; i++)
        free(run.ev[i].body);
    if (rc == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", s_env.journal, s_env.kasa_log);
        if (!getenv("KASA_KEEP_TEST_OUT") && system(cmd) != 0)
            h_log("could not remove %s", s_env.journal);
    } else {
        h_log("seed %" PRIu64 " FAILED: %d deposits, %d events, kills at", seed, run.ndep, run.nev);
        for (int k = 0; k < run.nkill; k++)
            h_log("  +%" PRId64 " ms%s", run.kill_at_ms[k], run.kill_in_start_ms[k] >= 0 ? " (and its restart)" : "");
        h_log("MT5 drop_reply %d%%, session_loss %d%%, late %d%% by %d ms; journal %s; kasa log %s", run.drop_pct,
              run.session_loss_pct, run.late_pct, run.late_ms, s_env.journal, s_env.kasa_log);
        for (int k = 0; k < run.nwd; k++)
            h_log("withdrawal %d: %s on %" PRIu64 " (%s), id '%s'", k, run.wd[k].amount, run.wd[k].login,
                  run.wd[k].amount_minor <= WD_AUTO_MINOR ? "no approver" : run.wd[k].reject ? "rejected" : "approved",
                  run.wd[k].id);
        if (run.nwd)
            h_log("Cobo: %s%s; a held one is %s", s_wd_fault_names[run.wd_fault],
                  run.wd_hang_killed ? " (kasa killed meanwhile)" : "", run.wd_refund_held ? "refunded" : "left held");
        if (run.repair)
            h_log("repaired journal: killed at +%" PRId64 " ms, flipped a byte of LSN %" PRId64, run.repair_at_ms,
                  run.flipped_lsn);
        if (repair)
            h_log("replay: KASA_CRASH_REPAIR_SEED=%" PRIu64 " KASA_CRASH_RUNS=0 build/san/tests/integration/test_crash",
                  seed);
        else
            h_log("replay: KASA_CRASH_SEED=%" PRIu64 " build/san/tests/integration/test_crash", seed);
        h_tail(s_env.kasa_log, 30);
    }
    return rc;
}

static uint64_t s_env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    return strtoull(v, NULL, 10);
}

static int s_ready;

/* Prepares this process's environment: a fresh directory and ports, its own three simulators
 * (their faults are set per run, so runs side by side never share them), the configuration
 * reconcile reads, the wallet that pays, money on the accounts the runs withdraw from, and the
 * checks' own Cobo client. The harness is the deposits' webhook sender: the Cobo simulator's own
 * deliveries of them are lost; a transfer's webhooks it sends to kasa (as Cobo does), failing while
 * kasa is down. 0, or -1 (logged). */
static int s_setup(void)
{
    if (h_env_init(&s_env, "crash") != 0)
        return -1;
    snprintf(s_base_dir, sizeof s_base_dir, "%s", s_env.dir);
    int ok = h_sims_start(&s_env, NULL) == 0 &&
             h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_deposit_webhooks\":true}") == 200;
    s_env.keep_ports = 1;
    char err[2048];
    ok = ok && h_config_write(&s_env, WD_CONFIG) == 0 && config_load(&s_cfg, s_env.config, err, sizeof err) == 0 &&
         h_sim_post(s_env.cobo_url, "/sim/balances", "{\"wallet_id\":\"" H_WALLET_ID "\","
                    "\"token_id\":\"TRON_USDT\",\"amount\":\"100000000\"}") == 200;
    mt5_client_t *m = ok ? mt5_client_new(s_env.mt5_url, H_MT5_MANAGER, H_MT5_MANAGER_PW, NULL, 5000) : NULL;
    for (int i = 0; ok && i < 4; i++) {
        uint64_t t;
        ok = mt5_balance(m, H_MT5_FIRST + (uint64_t) i, 10000000, 2, "opening balance", &t, err, 256) == MT5_OK;
    }
    mt5_client_destroy(&m);
    char url[128];
    snprintf(url, sizeof url, "%s/v2", s_env.cobo_url);
    s_cobo = ok ? cobo_client_new(url, s_env.client_pub, H_CLIENT_SEED, s_env.webhook_pub, 5000, err, 256) : NULL;
    if (!s_cobo)
        h_log("setup failed; logs in %s", s_env.dir);
    return s_cobo ? 0 : -1;
}

static void s_teardown(int keep)
{
    cobo_client_destroy(&s_cobo);
    config_clear(&s_cfg);
    h_env_finish(&s_env, keep);
}

/* Runs seeds first, first + step, ... below end (each logged as it fails, with its replay line),
 * counting into s_tot; stops once `*failed_all` (every worker's failures) reaches 3. */
static void s_run_seeds(const char *name, uint64_t first, uint64_t end, uint64_t step, int repair,
                        const long *const *failed_all, int nfailed)
{
    int64_t t0 = h_now_ms();
    for (uint64_t s = first; s < end; s += step) {
        long failed = 0;
        for (int k = 0; k < nfailed; k++)
            failed += __atomic_load_n(failed_all[k], __ATOMIC_SEQ_CST);
        if (failed >= 3)
            break;
        if (s_run(s, repair) != 0) {
            __atomic_add_fetch(&s_tot->failed, 1, __ATOMIC_SEQ_CST);
            printf("FAIL %sseed %" PRIu64 "  (replay: %s=%" PRIu64 ")\n", repair ? "repaired-journal " : "", s, name, s);
        }
        s_tot->done++;
        if (s_tot->done % 25 == 0)
            h_log("%ld runs, %ld failed, %.1f s", s_tot->done, s_tot->failed, (double) (h_now_ms() - t0) / 1000.0);
    }
}

/* Adds t to *to, field by field (s_totals_t holds longs alone). */
static void s_totals_add(s_totals_t *to, const s_totals_t *t)
{
    long *a = (long *) to;
    const long *b = (const long *) t;
    for (size_t i = 0; i < sizeof *t / sizeof(long); i++)
        a[i] += b[i];
}

/* Runs the seeded runs: seeds from $PREFIX_BASE (default base), $PREFIX_RUNS of them (default
 * runs), or $PREFIX_SEED alone; stops after 3 failures. KASA_CRASH_JOBS (default 2) runs them in
 * that many worker processes side by side, each with its own simulators (worker k: seeds base + k,
 * base + k + jobs, ...), since a run mostly waits (kills, starts, settle times); a seed's run is the
 * same whichever worker has it. Adds what the runs exercised to s_tot, sets *runs_out to how many
 * were asked for and returns how many ran; *failed_out counts the failed ones. */
static uint64_t s_seeded_runs(const char *prefix, uint64_t base, uint64_t runs, int repair, uint64_t *runs_out,
                              int *failed_out)
{
    char name[64];
    snprintf(name, sizeof name, "%s_BASE", prefix);
    base = s_env_u64(name, base);
    snprintf(name, sizeof name, "%s_RUNS", prefix);
    runs = s_env_u64(name, runs);
    snprintf(name, sizeof name, "%s_SEED", prefix);
    if (getenv(name) && *getenv(name)) {
        base = s_env_u64(name, 1);
        runs = 1;
    }
    uint64_t jobs = s_env_u64("KASA_CRASH_JOBS", 2);
    if (jobs < 1)
        jobs = 1;
    if (jobs > 8)
        jobs = 8;
    if (jobs > runs)
        jobs = runs ? runs : 1;
    int64_t t0 = h_now_ms();
    s_totals_t sum;
    memset(&sum, 0, sizeof sum);
    if (jobs == 1) {
        s_totals_t *own = s_tot;
        s_tot = &sum;
        const long *failed_all[] = { &sum.failed };
        s_run_seeds(name, base, base + runs, 1, repair, failed_all, 1);
        s_tot = own;
    } else {
        s_totals_t *slot = mmap(NULL, sizeof *slot * jobs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (slot == MAP_FAILED) {
            h_log("mmap: %s", strerror(errno));
            *runs_out = runs;
            *failed_out = 1;
            return 0;
        }
        memset(slot, 0, sizeof *slot * jobs);
        const long *failed_all[8];
        for (uint64_t k = 0; k < jobs; k++)
            failed_all[k] = &slot[k].failed;
        pid_t pid[8];
        fflush(stdout);
        fflush(stderr);
        for (uint64_t k = 0; k < jobs; k++) {
            pid[k] = fork();
            if (pid[k] == 0) {
                /* a worker: the parent's simulators, kasa and Cobo client are the parent's alone */
                s_env.kasa_pid = s_env.cobo_pid = s_env.mt5_pid = s_env.tg_pid = 0;
                s_cobo = NULL;
                memset(&s_cfg, 0, sizeof s_cfg);
                s_tot = &slot[k];
                int ok = s_setup() == 0;
                if (ok)
                    s_run_seeds(name, base + k, base + runs, jobs, repair, failed_all, (int) jobs);
                else
                    __atomic_add_fetch(&slot[k].failed, 1, __ATOMIC_SEQ_CST);
                if (ok && getenv("KASA_CRASH_VERBOSE")) {
                    char url[160];
                    snprintf(url, sizeof url, "%s/sim/stats", s_env.mt5_url);
                    h_resp_t st = h_http("GET", url, NULL);
                    h_log("worker %" PRIu64 ": MT5 simulator: %.300s", k, st.body ? st.body : "");
                    h_resp_free(&st);
                }
                s_teardown(slot[k].failed > 0);
                fflush(stdout);
                fflush(stderr);
                _exit(0);
            }
            if (pid[k] < 0)
                h_log("fork: %s", strerror(errno));
        }
        for (uint64_t k = 0; k < jobs; k++) {
            int st = 0;
            if (pid[k] > 0 && waitpid(pid[k], &st, 0) == pid[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                s_totals_add(&sum, &slot[k]);
                continue;
            }
            h_log("worker %" PRIu64 " (pid %d) ended badly (status %d): its runs count as failed", k, (int) pid[k], st);
            s_totals_add(&sum, &slot[k]);
            sum.failed++;
        }
        munmap(slot, sizeof *slot * jobs);
    }
    h_log("%ld %sseeded runs (seeds %" PRIu64 ".., %" PRIu64 " at a time), %ld failed, %" PRId64 " ms", sum.done,
          repair ? "repaired-journal " : "", base, jobs, sum.failed, h_now_ms() - t0);
    *runs_out = runs;
    *failed_out = (int) sum.failed;
    uint64_t done = (uint64_t) sum.done;
    sum.done = sum.failed = 0;
    s_totals_add(s_tot, &sum);
    return done;
}

static void test_every_deposit_credited_exactly_once_across_kills(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    uint64_t runs;
    int failed;
    uint64_t done = s_seeded_runs("KASA_CRASH", 1, 200, 0, &runs, &failed);
    const s_totals_t *t = s_tot;
    h_log("passing runs: %ld deposits, %ld kills (%ld of a starting kasa), %ld webhooks resent after no/failed "
          "answer, %ld deposits credited after a second credit attempt; runs with MT5 dropping replies %ld, "
          "forgetting sessions %ld, executing late %ld", t->deposits, t->kills, t->start_kills, t->resends,
          t->reattempts, t->drops, t->session_losses, t->lates);
    h_log("withdrawals: %ld (%ld completed, %ld refunded, %ld held, %ld rejected by MT5; %ld needing no approver, %ld "
          "approved, %ld rejected by the operator), %ld asked again after a lost answer, %ld kills while Cobo held a "
          "create's answer; runs by Cobo fault: %ld none, %ld 5xx after creating, %ld answered late, %ld Failed (%ld "
          "refunded by the operator, %ld left held)", t->wd, t->wd_state[WITHDRAWAL_COMPLETED],
          t->wd_state[WITHDRAWAL_REFUNDED], t->wd_state[WITHDRAWAL_HELD], t->wd_state[WITHDRAWAL_REJECTED], t->wd_auto,
          t->wd_approved, t->wd_rejected, t->wd_asked_again, t->wd_hang_kills, t->wd_faults[0], t->wd_faults[1],
          t->wd_faults[2], t->wd_faults[3], t->wd_held_refunded, t->wd_held_left);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(done, runs);
    /* a count this large (the default) exercises every fault kind the runs draw: that it did is
     * checked, so a smaller default or a changed plan cannot quietly leave one out */
    if (runs >= S_COVERAGE_RUNS && !failed) {
        const struct {
            const char *what;
            long n;
        } kinds[] = {
            { "kills of a starting kasa", t->start_kills }, { "MT5 dropping replies", t->drops },
            { "MT5 forgetting sessions", t->session_losses }, { "MT5 executing late", t->lates },
            { "withdrawals needing no approver", t->wd_auto }, { "withdrawals approved", t->wd_approved },
            { "withdrawals rejected by the operator", t->wd_rejected },
            { "Cobo answering 5xx after creating", t->wd_faults[WD_FAULT_5XX] },
            { "Cobo answering after the client gave up", t->wd_faults[WD_FAULT_LATE] },
            { "kills while Cobo held a create's answer", t->wd_hang_kills },
            { "Cobo failing transfers, refunded", t->wd_held_refunded },
            { "Cobo failing transfers, left held", t->wd_held_left },
        };
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (kinds[i].n == 0) {
                h_log("%" PRIu64 " runs exercised no %s", runs, kinds[i].what);
                CHECK(kinds[i].n > 0);
            }
    }
}

/* Sends tx's three webhooks (created, updated, succeeded) until each is answered 2xx. 0 or -1. */
static int s_send_all(const h_tx_t *dep, uint64_t id_base)
{
    static const char *const types[] = { "wallets.transaction.created", "wallets.transaction.updated",
                                         "wallets.transaction.succeeded" };
    for (int k = 0; k < 3; k++) {
        h_tx_t t = *dep;
        snprintf(t.status, sizeof t.status, "%s", k == 2 ? "Completed" : "Confirming");
        t.confirmations = k == 2 ? 20 : 5;
        char ev_id[40];
        h_uuid(id_base, (uint64_t) k, ev_id);
        jbuf_t b;
        jbuf_init(&b);
        h_webhook_body(&b, ev_id, types[k], &t);
        long status = 0;
        for (int tries = 0; tries < 200 && status != 200 && status != 201; tries++) {
            h_resp_t r = h_post_webhook(&s_env, b.data, b.len);
            status = r.status;
            h_resp_free(&r);
            if (status != 200 && status != 201)
                h_sleep_ms(20);
        }
        jbuf_free(&b);
        if (status != 200 && status != 201)
            return -1;
    }
    return 0;
}

/* The first deal found in the fresh deals of login with reference ref, and how many there are. */
static int s_deals_with_ref(uint64_t login, const char *ref, uint64_t baseline)
{
    static h_deal_t deals[4096];
    int n = h_mt5_deals(&s_env, login, deals, 4096), found = 0;
    for (int k = 0; k < n; k++)
        found += deals[k].ticket > baseline && strcmp(deals[k].comment, ref) == 0;
    return found;
}

/* Flips a byte of the first record of tx of kind (and, for a deposit transition, into state to):
 * at offset `at` in the record, or with at < 0 in the middle of its payload. 1 if flipped. */
static int s_flip_record_of(const char *tx, record_kind_t kind, deposit_state_t to, long at)
{
    char err[256];
    journal_reader_t *rd = journal_reader_open(s_env.journal, 1, err, sizeof err);
    journal_entry_t e;
    record_t *r = malloc(sizeof *r);
    int flipped = 0;
    while (!flipped && rd && journal_reader_next(rd, &e) == 1)
        if (record_decode(e.payload, e.len, r, err, sizeof err) == 0 && r->kind == kind &&
            (kind != RECORD_DEPOSIT || r->to == to) && strcmp(r->tx_id, tx) == 0)
            flipped = s_flip_byte(s_env.journal, e.segment,
                                  e.offset + (at >= 0 ? (uint64_t) at : JF_REC_HDR + e.len / 2), 0x5a) == 0;
    journal_reader_destroy(&rd);
    free(r);
    return flipped;
}

/* A TRON_USDT deposit of `units` whole USDT to login at a fresh address named by name, made at the
 * Cobo simulator with confirmations, and the login's deals so far. 0 or -1. */
static int s_scenario_deposit(s_run_t *run, s_deposit_t *d, const char *name, uint64_t login, int units,
                              int confirmations)
{
    d->login = login;
    snprintf(d->tx.address, sizeof d->tx.address, "T%sAcct%" PRIu64, name, login);
    snprintf(d->tx.amount, sizeof d->tx.amount, "%d.000000", units);
    d->expect_minor = (int64_t) units * 100 - 50;
    snprintf(d->tx.token_id, sizeof d->tx.token_id, "TRON_USDT");
    snprintf(d->tx.chain_id, sizeof d->tx.chain_id, "TRON");
    d->tx.threshold = 20;
    run->baseline[login - H_MT5_FIRST] = s_max_ticket(login);
    return h_sim_deposit(&s_env, &d->tx, confirmations, 0, -1);
}

/* The reproduced double credit: a credited and notified deposit; one byte flips in its LOCKED
 * record; the start refuses; `kasa journal repair`; restart; every webhook again. Before, repair cut
 * everything from LOCKED on, the deposit was RECEIVED with no attempt and was credited blind a second
 * time, and the deposits made after it were forgotten (and credited again on the resent webhooks).
 * Now: exactly one deal for each, and the later deposits are still known, NOTIFIED. */
static void test_repair_of_a_flipped_locked_record_never_credits_twice(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    snprintf(s_env.journal, sizeof s_env.journal, "%s/flip-locked", s_base_dir);
    snprintf(s_env.kasa_log, sizeof s_env.kasa_log, "%s/flip-locked.log", s_base_dir);
    CHECK_EQ_INT(h_config_write(&s_env, NULL), 0);
    s_run_t *run = calloc(1, sizeof *run);
    run->seed = 424242;
    run->ndep = 3;
    for (int i = 0; i < run->ndep; i++) {
        char name[32];
        snprintf(name, sizeof name, "FlipLocked%d", i);
        CHECK_EQ_INT(s_scenario_deposit(run, &run->dep[i], name, H_MT5_FIRST + 5 + (uint64_t) i, 100 + i, 1), 0);
    }
    CHECK_EQ_INT(s_link_direct(s_env.journal, run), 0);
    CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    /* A first, to the end; then B and C, which lie wholly after A's LOCKED record */
    for (int i = 0; i < run->ndep; i++) {
        CHECK_EQ_INT(s_send_all(&run->dep[i].tx, 9000 + (uint64_t) i), 0);
        CHECK_EQ_INT(h_wait_state(&s_env, run->dep[i].tx.tx_id, DEPOSIT_NOTIFIED, 15000), DEPOSIT_NOTIFIED);
    }
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    /* one byte of A's LOCKED record flips */
    CHECK(s_flip_record_of(run->dep[0].tx.tx_id, RECORD_DEPOSIT, DEPOSIT_LOCKED, -1));
    CHECK_EQ_INT(s_refuse_repair_restart(run->seed), 0);
    /* the deposits after the damage are still known */
    for (int i = 1; i < run->ndep; i++) {
        h_jinfo_t info;
        h_journal_info(s_env.journal, run->dep[i].tx.tx_id, &info);
        CHECK_EQ_INT(info.state, DEPOSIT_NOTIFIED);
    }
    /* every webhook again: nothing is credited a second time */
    for (int i = 0; i < run->ndep; i++)
        CHECK_EQ_INT(s_send_all(&run->dep[i].tx, 9100 + (uint64_t) i), 0);
    h_sleep_ms(1500);
    for (int i = 0; i < run->ndep; i++) {
        h_jinfo_t info;
        h_journal_info(s_env.journal, run->dep[i].tx.tx_id, &info);
        CHECK(info.state == DEPOSIT_NOTIFIED || info.state == DEPOSIT_CREDITED);
    }
    CHECK_EQ_INT(s_check_deals(run), 0);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *vout = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &vout, "journal", "verify", s_env.journal, NULL), 0);
    CHECK(vout && strstr(vout, "quarantined by `kasa journal repair`") != NULL);
    free(vout);
    h_kasa_kill(&s_env);
    free(run);
}

/* The marker: a deposit LOCKED with a credit attempt whose balance call went through at MT5 but
 * whose CREDITED never reached the journal (a crash); then the attempt record is damaged. Before,
 * repair cut it away and the restart credited blind: a second deal. Now repair marks the deposit
 * (HISTORY_GAP), the restart reconciles, finds the deal and records it: one deal. */
static void test_repair_marks_an_unfinished_deposit_so_it_reconciles_before_any_send(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    snprintf(s_env.journal, sizeof s_env.journal, "%s/flip-attempt", s_base_dir);
    snprintf(s_env.kasa_log, sizeof s_env.kasa_log, "%s/flip-attempt.log", s_base_dir);
    CHECK_EQ_INT(h_config_write(&s_env, NULL), 0);
    s_run_t *run = calloc(1, sizeof *run);
    run->seed = 434343;
    run->ndep = 1;
    s_deposit_t *d = &run->dep[0];
    CHECK_EQ_INT(s_scenario_deposit(run, d, "FlipAttempt", H_MT5_FIRST + 8, 321, 20), 0);
    CHECK_EQ_INT(s_link_direct(s_env.journal, run), 0);
    /* what kasa had journaled when it died: RECEIVED, LOCKED, the attempt, and a later record */
    char err[256], ref[32];
    crediter_ref(d->tx.tx_id, ref);
    journal_t *j = journal_open(s_env.journal, NULL, err, sizeof err);
    CHECK(j != NULL);
    record_t r;
    for (int k = 0; k < 4; k++) {
        record_init(&r, k == 2 ? RECORD_CREDIT_ATTEMPT : k == 3 ? RECORD_ADDRESS_LINK : RECORD_DEPOSIT);
        r.time_ms = h_wall_ms();
        if (k < 3) {
            snprintf(r.tx_id, sizeof r.tx_id, "%s", d->tx.tx_id);
            r.login = d->login;
        }
        if (k < 2) {
            r.from = k == 0 ? DEPOSIT_NONE : DEPOSIT_RECEIVED;
            r.to = k == 0 ? DEPOSIT_RECEIVED : DEPOSIT_LOCKED;
            r.event = k == 0 ? DEPOSIT_EV_SEEN_COMPLETED : DEPOSIT_EV_CONFIRMED;
            snprintf(r.status, sizeof r.status, "Completed");
            snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
            snprintf(r.chain_id, sizeof r.chain_id, "TRON");
            snprintf(r.address, sizeof r.address, "%s", d->tx.address);
            snprintf(r.amount, sizeof r.amount, "%s", d->tx.amount);
        }
        if (k >= 1 && k <= 2) {
            r.credit_minor = d->expect_minor;
            r.digits = 2;
        }
        if (k == 2) {
            r.attempt = 1;
            snprintf(r.ref, sizeof r.ref, "%s", ref);
        }
        if (k == 3) {
            snprintf(r.address, sizeof r.address, "TSomeoneElse%" PRIu64, d->login);
            snprintf(r.chain_id, sizeof r.chain_id, "TRON");
            r.login = d->login;
            snprintf(r.actor, sizeof r.actor, "operator");
            snprintf(r.action, sizeof r.action, "link");
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        CHECK(record_encode(&r, &buf, &len, err, sizeof err) == 0 && journal_append(j, buf, len) > 0);
        free(buf);
    }
    journal_destroy(&j);
    /* the balance call that the attempt announced went through */
    mt5_client_t *m = mt5_client_new(s_env.mt5_url, H_MT5_MANAGER, H_MT5_MANAGER_PW, NULL, 5000);
    uint64_t ticket = 0;
    CHECK_EQ_INT(mt5_balance(m, d->login, d->expect_minor, 2, ref, &ticket, err, sizeof err), MT5_OK);
    mt5_client_destroy(&m);
    /* the attempt record is damaged (its header's LSN field) */
    CHECK(s_flip_record_of(d->tx.tx_id, RECORD_CREDIT_ATTEMPT, DEPOSIT_NONE, 9));
    CHECK_EQ_INT(s_refuse_repair_restart(run->seed), 0);
    CHECK_EQ_INT(s_send_all(&d->tx, 9200), 0);
    CHECK_EQ_INT(h_wait_state(&s_env, d->tx.tx_id, DEPOSIT_CREDITED, 15000), DEPOSIT_CREDITED);
    h_sleep_ms(500);
    CHECK_EQ_INT(s_deals_with_ref(d->login, ref, run->baseline[d->login - H_MT5_FIRST]), 1);
    CHECK_EQ_INT(s_check_deals(run), 0);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    h_kasa_kill(&s_env);
    free(run);
}

/* The repaired-journal runs: each seeded run is killed at a seeded moment, a byte of a random
 * acknowledged record is flipped, the start must refuse, `kasa journal repair` runs, kasa restarts
 * and every webhook is sent again (kills go on around it); every deposit must end with exactly one
 * deal, or HELD with its reason, never two.
 *   KASA_CRASH_REPAIR_RUNS=N   how many (default 8), seeds from KASA_CRASH_REPAIR_BASE (default 1001) */
static void test_every_deposit_ends_with_one_deal_or_held_after_a_repaired_journal(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    uint64_t runs;
    int failed;
    uint64_t done = s_seeded_runs("KASA_CRASH_REPAIR", 1001, 8, 1, &runs, &failed);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(done, runs);
}

int main(void)
{
    s_ready = s_setup() == 0;
    RUN(test_repair_of_a_flipped_locked_record_never_credits_twice);
    RUN(test_repair_marks_an_unfinished_deposit_so_it_reconciles_before_any_send);
    RUN(test_every_deposit_credited_exactly_once_across_kills);
    RUN(test_every_deposit_ends_with_one_deal_or_held_after_a_repaired_journal);
    s_teardown(check_failed_ > 0);
    return check_done();
}
