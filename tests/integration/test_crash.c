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
 *
 *   KASA_CRASH_RUNS=N   how many seeded runs (default 200)
 *   KASA_CRASH_SEED=S   run seed S alone (a failing run prints its seed)
 *   KASA_CRASH_BASE=B   first seed (default 1)
 *   KASA_CRASH_INJECT_DOUBLE=1  credit each run's first deposit twice behind kasa's back: every
 *                       run must then fail (a check that this test can fail)
 * Repaired-journal runs (KASA_CRASH_REPAIR_RUNS, _BASE, _SEED alike, default 8 from seed 1001): the
 * same, and at a seeded moment kasa is killed, one byte of a random acknowledged record is flipped,
 * the start must refuse naming `kasa journal repair`, the repair runs, kasa restarts and every
 * webhook is sent again; each deposit must end with exactly one deal, or HELD with its reason.
 * Two fixed scenarios go first: a flipped LOCKED record of a notified deposit, and a flipped credit
 * attempt whose balance call went through before a crash.
 * The simulators are started once and shared by all runs; each run checks only deals newer than
 * the ones it found at its start. */
#include <fcntl.h>

#include "actors/crediter.h"
#include "actors/mt5.h"
#include "journal/jformat.h"
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
    for (int i = 0; i < run->ndep; i++)
        run->baseline[run->dep[i].login - H_MT5_FIRST] = s_max_ticket(run->dep[i].login);
    return 0;
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
    for (int a = 0; a < H_MT5_ACCOUNTS; a++) {
        uint64_t login = (uint64_t) (H_MT5_FIRST + a);
        int mine = 0;
        for (int i = 0; i < run->ndep; i++)
            mine += run->dep[i].login == login;
        if (!mine)
            continue;
        int n = h_mt5_deals(&s_env, login, deals, 4096);
        if (n < 0)
            return -1;
        int fresh = 0, explained = 0;
        for (int k = 0; k < n; k++)
            fresh += deals[k].ticket > run->baseline[a];
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
            s_total_reattempts += info.attempts > 1;
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
            h_log("seed %" PRIu64 ": login %" PRIu64 " got %d new deals, %d of them with a deposit's reference", run->seed,
                  login, fresh, explained);
            rc = -1;
        }
    }
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
    /* snapshots every few records: kills land before, during and after them, and every restart
     * starts from one (or falls back) */
    char snap[80];
    snprintf(snap, sizeof snap, "KASA_SNAPSHOT_EVERY_RECORDS=%d\n", 2 + (int) (seed % 7));
    if (h_config_write(&s_env, snap) != 0 || s_plan(&run) != 0 || s_link_direct(s_env.journal, &run) != 0)
        goto out;
    char faults[200];
    snprintf(faults, sizeof faults,
             "{\"drop_reply\":%d.%02d,\"session_loss\":%d.%02d,\"late_chance\":%d.%02d,\"late_apply_ms\":%d,"
             "\"late_reply_ms\":0}", run.drop_pct / 100, run.drop_pct % 100, run.session_loss_pct / 100,
             run.session_loss_pct % 100, run.late_pct / 100, run.late_pct % 100, run.late_ms);
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
        if (next_kill >= run.nkill && (!run.repair || run.repaired) &&
            __atomic_load_n(&run.sender_done, __ATOMIC_SEQ_CST) && s_all_credited(&run)) {
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
        h_log("MT5 drop_reply %d%%, session_loss %d%%, late %d%% by %d ms; journal %s; kasa log %s", run.drop_pct,
              run.session_loss_pct, run.late_pct, run.late_ms, s_env.journal, s_env.kasa_log);
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

/* Runs the seeded runs: seeds from $PREFIX_BASE (default base), $PREFIX_RUNS of them (default
 * runs), or $PREFIX_SEED alone; stops after 3 failures. Sets *runs_out to how many were asked for
 * and returns how many ran; *failed_out counts the failed ones. */
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
    int failed = 0;
    int64_t t0 = h_now_ms();
    uint64_t done = 0;
    for (uint64_t s = base; s < base + runs; s++) {
        if (s_run(s, repair) != 0) {
            failed++;
            printf("FAIL %sseed %" PRIu64 "  (replay: %s=%" PRIu64 ")\n", repair ? "repaired-journal " : "", s, name, s);
            if (failed >= 3)
                break;
        }
        done++;
        if (done % 25 == 0)
            h_log("%" PRIu64 " runs, %d failed, %.1f s", done, failed, (double) (h_now_ms() - t0) / 1000.0);
    }
    h_log("%" PRIu64 " %sseeded runs (seeds %" PRIu64 "..), %d failed, %" PRId64 " ms", done,
          repair ? "repaired-journal " : "", base, failed, h_now_ms() - t0);
    *runs_out = runs;
    *failed_out = failed;
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
    RUN(test_repair_of_a_flipped_locked_record_never_credits_twice);
    RUN(test_repair_marks_an_unfinished_deposit_so_it_reconciles_before_any_send);
    RUN(test_every_deposit_credited_exactly_once_across_kills);
    RUN(test_every_deposit_ends_with_one_deal_or_held_after_a_repaired_journal);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
