/* bench_start_history.c — what a start reads when the history is long: a journal of
 * BENCH_START_RECORDS (default 100,000) records of finished deposits (6 records each), finished
 * withdrawals (8 records each: request, debit attempt and deal, approval, transfer attempt, sent,
 * completed) and address links, rebuilt the way `kasa serve` rebuilds it (actors/checkpoint.h: the
 * registry and its links, the admins, the withdrawals, then the investor panel's wallets learning the
 * links from the registry):
 *   whole journal     no snapshot (a first start, or a journal whose snapshots are all damaged)
 *   snapshot + tail   the newest snapshot, covering all but the last BENCH_START_TAIL (1,000) records
 * Prints the median of BENCH_START_REPEAT (default 3) starts of each in CPU ms (and the fastest one's
 * per section), the records read, and the
 * snapshot's size and writing time. The journal is left in $KASA_BENCH_DIR/start-history (a `kasa
 * serve` can be started on it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/admins.h"
#include "actors/checkpoint.h"
#include "actors/registry.h"
#include "actors/wallets.h"
#include "actors/withdrawals.h"
#include "journal/journal.h"
#include "schema/log.h"
#include "tests/unit/support_tmp.h"
#include "tests/unit/support_wallets.h"

/* CPU time of this process: on a machine shared with other work, wall time says more about the
 * neighbours than about kasa (every start here runs on one thread). */
static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static long s_env(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

static long s_written;
static uint64_t s_last_lsn;

static void s_put(journal_t *j, record_t *r, int64_t *t_ms)
{
    uint8_t *buf;
    size_t len;
    char err[128];
    r->time_ms = (*t_ms += 1000);
    if (record_encode(r, &buf, &len, err, sizeof err) != 0) {
        fprintf(stderr, "bench_start_history: %s\n", err);
        exit(1);
    }
    if (!(s_last_lsn = journal_submit(j, buf, len))) {   /* one wait at the end: a fast build */
        fprintf(stderr, "bench_start_history: the journal refused a record\n");
        exit(1);
    }
    free(buf);
    s_written++;
}

static void s_deposit(journal_t *j, long n, uint64_t login, const char *address, int64_t *t_ms)
{
    static const deposit_state_t to[] = { DEPOSIT_PENDING, DEPOSIT_RECEIVED, DEPOSIT_LOCKED, DEPOSIT_CREDITED,
                                          DEPOSIT_NOTIFIED };
    static const deposit_event_t ev[] = { DEPOSIT_EV_SEEN_PENDING, DEPOSIT_EV_SEEN_COMPLETED, DEPOSIT_EV_CONFIRMED,
                                          DEPOSIT_EV_CREDIT_OK, DEPOSIT_EV_NOTICE_SENT };
    record_t r;
    deposit_state_t from = DEPOSIT_NONE;
    for (int k = 0; k < 5; k++) {
        record_init(&r, RECORD_DEPOSIT);
        snprintf(r.tx_id, sizeof r.tx_id, "dep-%ld", n);
        r.from = from;
        r.to = from = to[k];
        r.event = ev[k];
        snprintf(r.status, sizeof r.status, k ? "Completed" : "Confirming");
        snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
        snprintf(r.chain_id, sizeof r.chain_id, "TRON");
        snprintf(r.address, sizeof r.address, "%s", address);
        snprintf(r.amount, sizeof r.amount, "%ld.25", 10 + n % 900);
        snprintf(r.tx_hash, sizeof r.tx_hash, "%064lx", (unsigned long) n);
        r.login = login;
        if (k >= 2) {
            r.credit_minor = (10 + n % 900) * 100 + 25;
            r.digits = 2;
            snprintf(r.currency, sizeof r.currency, "USD");
        }
        if (to[k] == DEPOSIT_CREDITED)
            r.ticket = 700000 + (uint64_t) n;
        s_put(j, &r, t_ms);
        if (k == 2) {   /* the credit attempt, journaled before the deal */
            record_init(&r, RECORD_CREDIT_ATTEMPT);
            snprintf(r.tx_id, sizeof r.tx_id, "dep-%ld", n);
            r.login = login;
            r.attempt = 1;
            snprintf(r.ref, sizeof r.ref, "kasa-dep-%ld", n);
            s_put(j, &r, t_ms);
        }
    }
}

static void s_withdrawal(journal_t *j, long n, uint64_t login, int64_t *t_ms)
{
    char id[WITHDRAWAL_ID_HEX + 2];
    snprintf(id, sizeof id, "w%0*lx", WITHDRAWAL_ID_HEX, n);
    static const withdrawal_event_t ev[] = { WITHDRAWAL_EV_REQUEST, WITHDRAWAL_EV_DEBIT_OK, WITHDRAWAL_EV_APPROVE,
                                             WITHDRAWAL_EV_TRANSFER_SENT, WITHDRAWAL_EV_TRANSFER_DONE };
    static const withdrawal_state_t to[] = { WITHDRAWAL_REQUESTED, WITHDRAWAL_DEBITED, WITHDRAWAL_APPROVED,
                                             WITHDRAWAL_SENT, WITHDRAWAL_COMPLETED };
    static const char *attempt_before[] = { NULL, "debit", NULL, "transfer", NULL };
    record_t r;
    withdrawal_state_t from = WITHDRAWAL_NONE;
    for (int k = 0; k < 5; k++) {
        if (attempt_before[k]) {
            record_init(&r, RECORD_WITHDRAWAL_ATTEMPT);
            snprintf(r.tx_id, sizeof r.tx_id, "%s", id);
            snprintf(r.action, sizeof r.action, "%s", attempt_before[k]);
            r.attempt = 1;
            r.login = login;
            s_put(j, &r, t_ms);
        }
        if (ev[k] == WITHDRAWAL_EV_APPROVE) {
            record_init(&r, RECORD_ADMIN_ACTION);
            snprintf(r.tx_id, sizeof r.tx_id, "%s", id);
            snprintf(r.actor, sizeof r.actor, "admin:approver");
            snprintf(r.action, sizeof r.action, "approve");
            snprintf(r.reason, sizeof r.reason, "checked");
            r.login = login;
            s_put(j, &r, t_ms);
        }
        withdrawals_event_record(&r, id, ev[k], NULL);
        r.wfrom = from;
        r.wto = from = to[k];
        r.login = login;
        snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
        snprintf(r.chain_id, sizeof r.chain_id, "TRON");
        snprintf(r.address, sizeof r.address, "TXdest%020ld", n);
        snprintf(r.amount, sizeof r.amount, "%ld.00", 5 + n % 300);
        snprintf(r.fee, sizeof r.fee, "1.00");
        r.credit_minor = (6 + n % 300) * 100;
        r.digits = 2;
        snprintf(r.currency, sizeof r.currency, "USD");
        if (k >= 2)
            withdrawal_request_id(id, 1, r.request_id);
        if (k >= 3) {
            snprintf(r.cobo_id, sizeof r.cobo_id, "cobo-%ld", n);
            snprintf(r.status, sizeof r.status, k == 4 ? "Completed" : "Submitted");
        }
        if (k == 4)
            snprintf(r.tx_hash, sizeof r.tx_hash, "%064lx", (unsigned long) n + 1);
        if (k == 1)
            r.ticket = 900000 + (uint64_t) n;
        if (k == 0) {
            snprintf(r.actor, sizeof r.actor, "investor:%" PRIu64, login);
            snprintf(r.origin, sizeof r.origin, "ip:203.0.113.7");
        }
        s_put(j, &r, t_ms);
    }
}

/* A journal of about records records in dir. */
static void s_history(const char *dir, long records)
{
    char err[300];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    if (!j) {
        fprintf(stderr, "bench_start_history: %s\n", err);
        exit(1);
    }
    int64_t t_ms = 1700000000000LL;
    record_t r;
    record_init(&r, RECORD_ADMIN_ACCOUNT);
    snprintf(r.admin, sizeof r.admin, "approver");
    snprintf(r.action, sizeof r.action, "add");
    snprintf(r.role, sizeof r.role, "approver");
    s_put(j, &r, &t_ms);
    long deposits = 0, withdrawals = 0, links = 0;
    char address[64] = "";
    for (long cycle = 0; s_written < records; cycle++) {
        uint64_t login = 100000 + (uint64_t) (cycle / 4);
        if (cycle % 4 == 0) {   /* a new investor: the panel links an address */
            record_init(&r, RECORD_ADDRESS_LINK);
            snprintf(address, sizeof address, "TLink%029" PRIu64, login);
            snprintf(r.address, sizeof r.address, "%s", address);
            snprintf(r.chain_id, sizeof r.chain_id, "TRON");
            snprintf(r.actor, sizeof r.actor, "panel");
            r.login = login;
            s_put(j, &r, &t_ms);
            links++;
        }
        s_deposit(j, deposits++, login, address, &t_ms);
        if (cycle % 2 == 1)
            s_withdrawal(j, withdrawals++, login, &t_ms);
    }
    if (journal_wait(j, s_last_lsn) != 0) {
        fprintf(stderr, "bench_start_history: the journal failed\n");
        exit(1);
    }
    journal_destroy(&j);
    printf("history: %ld records: %ld deposits, %ld withdrawals, %ld address links (all finished)\n", s_written,
           deposits, withdrawals, links);
}

/* One start's reading, as kasa serve does it; its time in seconds; *read the journal records read;
 * phases[] the registry's, the withdrawals', the admins' and the wallets' share. */
static double s_start(const char *dir, const config_t *cfg, long *read, uint64_t *from_snapshot, double phases[4])
{
    static const char offered[][24] = { "TRON_USDT" };
    char err[300];
    admins_t *ad = admins_new();   /* not timed: its deliberately slow dummy password hash is no history */
    double t0 = s_now();
    checkpoint_info_t info;
    *read = 0;
    registry_t *reg = checkpoint_restore(dir, &checkpoint_registry, cfg, 0, &info, err, sizeof err);
    *read += info.records;
    *from_snapshot = info.snapshot_lsn;
    double t1 = s_now();
    withdrawals_t *wd = checkpoint_restore(dir, &checkpoint_withdrawals, cfg, 0, &info, err, sizeof err);
    *read += info.records;
    double t2 = s_now();
    int admins_ok = ad && checkpoint_restore_into(dir, &checkpoint_admins, cfg, ad, &info, err, sizeof err) == 0;
    *read += info.records;
    double t3 = s_now();
    wallets_t *w = support_wallets_readonly(offered, 1, err, sizeof err);
    int wallets_ok = w && reg && wallets_load_registry(w, reg, err, sizeof err) == 0;
    double t4 = s_now();
    phases[0] = t1 - t0, phases[1] = t2 - t1, phases[2] = t3 - t2, phases[3] = t4 - t3;
    double took = phases[0] + phases[1] + phases[2] + phases[3];
    if (!reg || !wd || !admins_ok || !wallets_ok) {
        fprintf(stderr, "bench_start_history: a start failed: %s\n", err);
        exit(1);
    }
    wallets_destroy(&w);
    admins_destroy(&ad);
    withdrawals_destroy(&wd);
    registry_destroy(&reg);
    return took;
}

static void s_row(const char *name, const char *dir, const config_t *cfg, int repeat)
{
    double *t = calloc((size_t) repeat, sizeof *t), phases[4], median[4] = { 0 };
    long read = 0;
    uint64_t from = 0;
    for (int i = 0; i < repeat; i++) {
        t[i] = s_start(dir, cfg, &read, &from, phases);
        if (i == 0 || t[i] <= t[0])
            memcpy(median, phases, sizeof median);   /* the phases of the fastest, as a guide */
    }
    qsort(t, (size_t) repeat, sizeof *t, s_cmp);
    printf("%-16s %9.1f %8.1f %8.1f %8.1f %8.1f %13ld %13" PRIu64 "\n", name, t[repeat / 2] * 1000, median[0] * 1000,
           median[1] * 1000, median[2] * 1000, median[3] * 1000, read, from);
    free(t);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    long records = s_env("BENCH_START_RECORDS", 100000);
    long tail = s_env("BENCH_START_TAIL", 1000);
    int repeat = (int) s_env("BENCH_START_REPEAT", 3);
    if (records < 100 || tail < 0 || tail >= records || repeat < 1) {
        fprintf(stderr, "bench_start_history: BENCH_START_RECORDS >= 100, 0 <= BENCH_START_TAIL < it, "
                        "BENCH_START_REPEAT >= 1\n");
        return 2;
    }
    const char *base = getenv("KASA_BENCH_DIR");
    char dir[200];
    snprintf(dir, sizeof dir, "%.180s/start-history", base && *base ? base : "build/bench-data");
    support_tmp_rmrf(dir);
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", dir);
    cfg.max_deposits = CONFIG_DEFAULT_MAX_DEPOSITS;
    s_history(dir, records);
    printf("%-16s %9s %8s %8s %8s %8s %13s %13s\n", "start from", "cpu ms", "registry", "withdr.", "admins", "wallets",
           "records read", "snapshot LSN");
    s_row("whole journal", dir, &cfg, repeat);
    char err[300];
    checkpoint_info_t info;
    double t0 = s_now();
    uint64_t upto = (uint64_t) (s_written - tail);
    if (checkpoint_write(dir, &cfg, upto, &info, err, sizeof err) != 0) {
        fprintf(stderr, "bench_start_history: snapshot: %s\n", err);
        return 1;
    }
    double wrote = s_now() - t0;
    s_row("snapshot + tail", dir, &cfg, repeat);
    uint64_t *lsns = NULL;
    size_t n = 0;
    snapshot_t *snap = snapshot_list(dir, &lsns, &n, err, sizeof err) == 0 && n
                           ? snapshot_open(dir, lsns[0], err, sizeof err) : NULL;
    printf("snapshot at LSN %" PRIu64 ": %" PRIu64 " bytes, written in %.0f CPU ms (from the whole journal)\n", upto,
           snap ? snapshot_bytes(snap) : 0, wrote * 1000);
    snapshot_close(&snap);
    free(lsns);
    return 0;
}
