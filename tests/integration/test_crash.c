/* test_crash.c — exactly-once crediting while kasa is killed at random moments.
 *
 * Each run (one seed of a PRNG) starts kasa on a fresh journal, links a few addresses, and sends a
 * stream of signed deposit webhooks — every event of each deposit, some more than once, in
 * shuffled order — while the MT5 simulator sometimes applies a credit and drops its reply (and
 * sometimes forgets sessions, answering HTTP 403). At seeded moments kasa is SIGKILLed and
 * restarted (sometimes the restart is killed too, while it replays and resumes). The harness acts
 * as Cobo: an event is sent again until it is answered 2xx, also across restarts. Once every event
 * was answered and every kill done, the run waits for every deposit to be CREDITED, then checks
 * against the MT5 simulator's own deal list that each deposit was credited EXACTLY once, with the
 * right amount, on the right account, and that nothing else was credited; finally kasa is stopped
 * (it must exit 0) and `kasa journal verify` must pass.
 *
 *   KASA_CRASH_RUNS=N   how many seeded runs (default 200)
 *   KASA_CRASH_SEED=S   run seed S alone (a failing run prints its seed)
 *   KASA_CRASH_BASE=B   first seed (default 1)
 *   KASA_CRASH_INJECT_DOUBLE=1  credit each run's first deposit twice behind kasa's back: every
 *                       run must then fail (a check that this test can fail)
 * The simulators are started once and shared by all runs; each run checks only deals newer than
 * the ones it found at its start. */
#include "actors/mt5.h"
#include "tests/check.h"
#include "tests/integration/harness.h"

#define MAX_DEPOSITS 4
#define MAX_EVENTS (MAX_DEPOSITS * 3 * 3)
#define MAX_KILLS 3
#define RUN_DEADLINE_MS 45000

static h_env_t s_env;
static char s_base_dir[400];
/* what the runs exercised, over all runs */
static long s_total_deposits, s_total_kills, s_total_start_kills, s_total_resends, s_total_reattempts, s_total_drops;

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
    uint64_t baseline[H_MT5_ACCOUNTS]; /* highest deal ticket per account before the run */
    int kills_done, start_kills, restarts, sends, retries;
    int64_t t0;
    int stop, sender_done, sender_failed; /* shared with the sender thread (atomics) */
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
    for (int i = 0; i < H_MT5_ACCOUNTS; i++)
        run->baseline[i] = 0;
    for (int i = 0; i < run->ndep; i++)
        run->baseline[run->dep[i].login - H_MT5_FIRST] = s_max_ticket(run->dep[i].login);
    return 0;
}

/* 1 when every deposit of the run has reached CREDITED (or NOTIFIED) in the journal. */
static int s_all_credited(const s_run_t *run)
{
    for (int i = 0; i < run->ndep; i++) {
        h_jinfo_t info;
        if (h_journal_info(s_env.journal, run->dep[i].tx.tx_id, &info) != 0)
            return 0;
        if (info.state != DEPOSIT_CREDITED && info.state != DEPOSIT_NOTIFIED)
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

/* Checks the MT5 simulator's deals against the run's deposits. 0 when exact, else -1 (logged). */
static int s_check_deals(const s_run_t *run)
{
    int rc = 0;
    static h_deal_t deals[4096];
    for (int a = 0; a < H_MT5_ACCOUNTS; a++) {
        uint64_t login = (uint64_t) (H_MT5_FIRST + a);
        int expected = 0;
        for (int i = 0; i < run->ndep; i++)
            expected += run->dep[i].login == login;
        if (!expected)
            continue;
        int n = h_mt5_deals(&s_env, login, deals, 4096);
        if (n < 0)
            return -1;
        int fresh = 0;
        for (int k = 0; k < n; k++)
            fresh += deals[k].ticket > run->baseline[a];
        if (fresh != expected) {
            h_log("seed %" PRIu64 ": login %" PRIu64 " got %d new deals, expected %d", run->seed, login, fresh, expected);
            rc = -1;
        }
        for (int i = 0; i < run->ndep; i++) {
            const s_deposit_t *d = &run->dep[i];
            if (d->login != login)
                continue;
            h_jinfo_t info;
            h_journal_info(s_env.journal, d->tx.tx_id, &info);
            int matches = 0, right_amount = 0;
            for (int k = 0; k < n; k++) {
                if (deals[k].ticket <= run->baseline[a])
                    continue;
                if (info.ref[0] ? strcmp(deals[k].comment, info.ref) == 0 : h_amount_eq(deals[k].profit, d->expect_minor)) {
                    matches++;
                    right_amount += h_amount_eq(deals[k].profit, d->expect_minor);
                }
            }
            s_total_reattempts += info.attempts > 1;
            if (matches != 1 || right_amount != 1 || info.credited != 1) {
                char want[32];
                h_minor2(d->expect_minor, want, sizeof want);
                h_log("seed %" PRIu64 ": tx %s amount %s -> %s on %" PRIu64 ": %d deals with ref '%s', %d of the right "
                      "amount, %d CREDITED records",
                      run->seed, d->tx.tx_id, d->tx.amount, want, login, matches, info.ref, right_amount, info.credited);
                rc = -1;
            }
        }
    }
    return rc;
}

/* One seeded run. Returns 0 if every check held. */
static int s_run(uint64_t seed)
{
    s_run_t run;
    memset(&run, 0, sizeof run);
    run.seed = seed;
    snprintf(s_env.journal, sizeof s_env.journal, "%s/run-%" PRIu64, s_base_dir, seed);
    snprintf(s_env.kasa_log, sizeof s_env.kasa_log, "%s/run-%" PRIu64 ".log", s_base_dir, seed);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", s_env.journal, s_env.kasa_log);
    if (system(cmd) != 0)
        return -1;
    int rc = -1;
    int64_t t0 = h_now_ms();
    if (h_config_write(&s_env, NULL) != 0 || s_plan(&run) != 0 || s_link_direct(s_env.journal, &run) != 0)
        goto out;
    char faults[96];
    snprintf(faults, sizeof faults, "{\"drop_reply\":%d.%02d,\"session_loss\":%d.%02d}", run.drop_pct / 100,
             run.drop_pct % 100, run.session_loss_pct / 100, run.session_loss_pct % 100);
    if (h_sim_post(s_env.mt5_url, "/sim/faults", faults) != 200)
        goto out;
    if (h_kasa_start(&s_env) != 0)
        goto out;
    t0 = run.t0 = h_now_ms();
    int64_t deadline = t0 + RUN_DEADLINE_MS;
    pthread_t sender;
    pthread_create(&sender, NULL, s_sender, &run);
    int next_kill = 0, ok = 0;
    for (;;) {
        int64_t now = h_now_ms();
        if (now > deadline) {
            h_log("seed %" PRIu64 ": no quiescence within %d ms (sender done %d, %d/%d kills)", seed, RUN_DEADLINE_MS,
                  run.sender_done, run.kills_done, run.nkill);
            break;
        }
        if (__atomic_load_n(&run.sender_failed, __ATOMIC_SEQ_CST))
            break;
        if (next_kill < run.nkill && now - t0 >= run.kill_at_ms[next_kill]) {
            next_kill++;
            if (s_kill_restart(&run, run.kill_in_start_ms[next_kill - 1]) != 0)
                break;
            continue;
        }
        if (next_kill >= run.nkill && __atomic_load_n(&run.sender_done, __ATOMIC_SEQ_CST) && s_all_credited(&run)) {
            ok = 1;
            break;
        }
        h_sleep_ms(next_kill < run.nkill ? 1 : 10);
    }
    __atomic_store_n(&run.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(sender, NULL);
    if (!ok)
        goto out;
    /* quiescent: no extra deal may appear later either */
    h_sleep_ms(50);
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
    if (s_check_deals(&run) != 0)
        goto out;
    int st = h_kasa_stop(&s_env);
    if (st != 0) {
        h_log("seed %" PRIu64 ": kasa stopped with status %d", seed, st);
        goto out;
    }
    char *vout = NULL;
    int vrc = h_kasa_cmd(&s_env, &vout, "journal", "verify", s_env.journal, NULL);
    if (vrc != 0) {
        h_log("seed %" PRIu64 ": kasa journal verify -> %d: %s", seed, vrc, vout ? vout : "");
        free(vout);
        goto out;
    }
    free(vout);
    rc = 0;
    s_total_deposits += run.ndep;
    s_total_kills += run.kills_done;
    s_total_start_kills += run.start_kills;
    s_total_resends += run.retries;
    s_total_drops += run.drop_pct > 0;
    if (getenv("KASA_CRASH_VERBOSE"))
        h_log("seed %" PRIu64 ": %d deposits, %d events, %d sends (%d retried), %d kills, drop %d%%, %" PRId64 " ms",
              seed, run.ndep, run.nev, run.sends, run.retries, run.kills_done, run.drop_pct, h_now_ms() - t0);
out:
    h_kasa_kill(&s_env);
    for (int i = 0; i < run.nev; i++)
        free(run.ev[i].body);
    if (rc == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", s_env.journal, s_env.kasa_log);
        if (system(cmd) != 0)
            h_log("could not remove %s", s_env.journal);
    } else {
        h_log("seed %" PRIu64 " FAILED: %d deposits, %d events, kills at", seed, run.ndep, run.nev);
        for (int k = 0; k < run.nkill; k++)
            h_log("  +%" PRId64 " ms%s", run.kill_at_ms[k], run.kill_in_start_ms[k] >= 0 ? " (and its restart)" : "");
        h_log("MT5 drop_reply %d%%, session_loss %d%%; journal %s; kasa log %s", run.drop_pct, run.session_loss_pct,
              s_env.journal, s_env.kasa_log);
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

static void test_every_deposit_credited_exactly_once_across_kills(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    uint64_t base = s_env_u64("KASA_CRASH_BASE", 1);
    uint64_t runs = s_env_u64("KASA_CRASH_RUNS", 200);
    if (getenv("KASA_CRASH_SEED") && *getenv("KASA_CRASH_SEED")) {
        base = s_env_u64("KASA_CRASH_SEED", 1);
        runs = 1;
    }
    int failed = 0;
    int64_t t0 = h_now_ms();
    uint64_t done = 0;
    for (uint64_t s = base; s < base + runs; s++) {
        if (s_run(s) != 0) {
            failed++;
            printf("FAIL seed %" PRIu64 "  (replay: KASA_CRASH_SEED=%" PRIu64 ")\n", s, s);
            if (failed >= 3)
                break;
        }
        done++;
        if (done % 25 == 0)
            h_log("%" PRIu64 " runs, %d failed, %.1f s", done, failed, (double) (h_now_ms() - t0) / 1000.0);
    }
    h_log("%" PRIu64 " seeded runs (seeds %" PRIu64 "..), %d failed, %" PRId64 " ms", done, base, failed,
          h_now_ms() - t0);
    h_log("passing runs: %ld deposits, %ld kills (%ld of a starting kasa), %ld webhooks resent after no/failed "
          "answer, %ld deposits credited after a second credit attempt, %ld runs with MT5 dropping replies",
          s_total_deposits, s_total_kills, s_total_start_kills, s_total_resends, s_total_reattempts, s_total_drops);
    char url[160];
    snprintf(url, sizeof url, "%s/sim/stats", s_env.mt5_url);
    h_resp_t st = h_http("GET", url, NULL);
    h_log("MT5 simulator: %.300s", st.body ? st.body : "");
    h_resp_free(&st);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(done, runs);
}

int main(void)
{
    char dead[80];
    /* the harness is the webhook sender: the Cobo simulator's own deliveries go nowhere */
    if (h_env_init(&s_env, "crash") == 0) {
        snprintf(dead, sizeof dead, "http://127.0.0.1:%d/cobo/webhook", h_free_port());
        snprintf(s_base_dir, sizeof s_base_dir, "%s", s_env.dir);
        s_ready = h_sims_start(&s_env, dead) == 0;
        s_env.keep_ports = 1;
    }
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_every_deposit_credited_exactly_once_across_kills);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
