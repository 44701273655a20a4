/* test_checkpoint.c — snapshots: a start from a snapshot equals a start from the whole journal, a
 * damaged newest snapshot falls back, a failed write loses nothing, retired segments stay readable. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/admins.h"
#include "actors/checkpoint.h"
#include "actors/registry.h"
#include "actors/withdrawals.h"
#include "journal/fio.h"
#include "journal/jformat.h"
#include "journal/journal.h"
#include "journal/snapshot.h"
#include "schema/log.h"
#include "tests/check.h"
#include "tools/commands.h"
#include "tests/unit/support_tmp.h"

static char s_dir[200];
static config_t s_cfg;
static unsigned s_seed = 1;

static unsigned s_rand(void)
{
    s_seed = s_seed * 1103515245u + 12345u;
    return (s_seed >> 8) & 0xffffff;
}

static void s_fresh(const char *name)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "ckpt", name);
    memset(&s_cfg, 0, sizeof s_cfg);
    snprintf(s_cfg.journal_dir, sizeof s_cfg.journal_dir, "%s", s_dir);
    s_cfg.max_deposits = 100000;
}

static uint64_t s_put(journal_t *j, const record_t *r)
{
    uint8_t *buf;
    size_t len;
    char err[128];
    if (record_encode(r, &buf, &len, err, sizeof err) != 0)
        return 0;
    uint64_t lsn = journal_append(j, buf, len);
    free(buf);
    return lsn;
}

/* n random records over a few dozen deposits: transitions, attempts, alerts, notices, approvals,
 * links and admin accounts, in whatever order (replay applies what it is given). */
static void s_random_history(journal_t *j, int n)
{
    static const char *actions[] = { "approve", "retry", "reject" };
    for (int i = 0; i < n; i++) {
        record_t r;
        unsigned k = s_rand() % 10, d = s_rand() % 40;
        record_init(&r, k < 5 ? RECORD_DEPOSIT : k == 5 ? RECORD_CREDIT_ATTEMPT : k == 6 ? RECORD_ALERT
                        : k == 7 ? RECORD_ADDRESS_LINK : k == 8 ? RECORD_ADMIN_ACTION : RECORD_ADMIN_ACCOUNT);
        r.time_ms = 1700000000000LL + i * 1000;
        snprintf(r.tx_id, sizeof r.tx_id, "tx-%u", d);
        r.login = 1000 + s_rand() % 7;
        switch (r.kind) {
        case RECORD_DEPOSIT:
            r.from = (deposit_state_t) (s_rand() % DEPOSIT_STATE_COUNT);
            r.to = (deposit_state_t) (s_rand() % DEPOSIT_STATE_COUNT);
            snprintf(r.amount, sizeof r.amount, "%u.%u", s_rand() % 1000, s_rand() % 100);
            snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
            snprintf(r.status, sizeof r.status, "Confirming");
            r.confirmations = (int32_t) (s_rand() % 20);
            if (s_rand() % 3 == 0)
                snprintf(r.reason, sizeof r.reason, "reason %u", s_rand());
            if (s_rand() % 4 == 0)
                r.credit_minor = s_rand(), r.digits = 2;
            break;
        case RECORD_CREDIT_ATTEMPT:
            r.attempt = 1 + s_rand() % 3;
            snprintf(r.ref, sizeof r.ref, "ref-%u", s_rand());
            break;
        case RECORD_ALERT:
            snprintf(r.alert, sizeof r.alert, "%s", record_alert_name((record_alert_t) (s_rand() % RECORD_ALERT_COUNT)));
            break;
        case RECORD_ADDRESS_LINK:
            r.tx_id[0] = '\0';
            snprintf(r.address, sizeof r.address, "0xAbC%u", s_rand() % 30);
            snprintf(r.chain_id, sizeof r.chain_id, "ETH");
            break;
        case RECORD_ADMIN_ACTION:
            snprintf(r.action, sizeof r.action, "%s", actions[s_rand() % 3]);
            snprintf(r.actor, sizeof r.actor, "admin:%u", s_rand() % 3);
            break;
        default:
            r.tx_id[0] = '\0';
            snprintf(r.admin, sizeof r.admin, "adm%u", s_rand() % 4);
            snprintf(r.action, sizeof r.action, "%s", s_rand() % 2 ? "add" : "login");
            snprintf(r.role, sizeof r.role, "operator");
            r.totp_step = s_rand();
            break;
        }
        CHECK(s_put(j, &r) != 0);
    }
}

/* The section bytes a state encodes to (caller frees). */
static snap_pk_t s_bytes(const checkpoint_section_t *sec, void *state)
{
    snap_pk_t p;
    snap_pk_save_init(&p);
    CHECK_EQ_INT(sec->save(state, &p), 0);
    return p;
}

/* 1 if restoring sec (from snapshots) gives exactly what a replay of the whole journal gives;
 * want_snapshot: the snapshot it must start from (UINT64_MAX: any). */
static int s_restore_equals_full_replay(const checkpoint_section_t *sec, uint64_t want_snapshot)
{
    char err[300];
    checkpoint_info_t info;
    void *a = checkpoint_restore(s_dir, sec, &s_cfg, 0, &info, err, sizeof err);
    CHECK(a != NULL);
    if (!a) {
        fprintf(stderr, "  restore: %s\n", err);
        return 0;
    }
    if (want_snapshot != UINT64_MAX)
        CHECK_EQ_INT(info.snapshot_lsn, want_snapshot);
    /* the whole journal: a state that skips every snapshot */
    void *b = sec->create(&s_cfg);
    journal_reader_t *rd = journal_reader_open(s_dir, 1, err, sizeof err);
    journal_entry_t je;
    record_t r;
    while (journal_reader_next(rd, &je) == 1) {
        CHECK_EQ_INT(record_decode(je.payload, je.len, &r, err, sizeof err), 0);
        CHECK_EQ_INT(sec->apply(b, &r, je.lsn, err, sizeof err), 0);
    }
    journal_reader_destroy(&rd);
    snap_pk_t pa = s_bytes(sec, a), pb = s_bytes(sec, b);
    int same = pa.len == pb.len && memcmp(pa.buf, pb.buf, pa.len) == 0;
    if (!same) {
        size_t at = 0;
        while (at < pa.len && at < pb.len && pa.buf[at] == pb.buf[at])
            at++;
        fprintf(stderr, "  section %s differs: %zu vs %zu bytes, first at %zu\n", sec->name, pa.len, pb.len, at);
    }
    snap_pk_free(&pa);
    snap_pk_free(&pb);
    sec->destroy(a);
    sec->destroy(b);
    return same;
}

static void test_snapshot_file_round_trips_and_keeps_two(void)
{
    s_fresh("roundtrip");
    mkdir(s_dir, 0700);
    char err[300];
    for (uint64_t lsn = 10; lsn <= 30; lsn += 10) {
        snapshot_writer_t *w = snapshot_begin(s_dir, lsn, (uint32_t) lsn * 7, 1234, err, sizeof err);
        CHECK(w != NULL);
        CHECK_EQ_INT(snapshot_put(w, "one", "hello", 5, err, sizeof err), 0);
        CHECK_EQ_INT(snapshot_put(w, "two", "", 0, err, sizeof err), 0);
        CHECK_EQ_INT(snapshot_commit(&w, err, sizeof err), 0);
        CHECK(w == NULL);
    }
    uint64_t *lsns;
    size_t n;
    CHECK_EQ_INT(snapshot_list(s_dir, &lsns, &n, err, sizeof err), 0);
    CHECK_EQ_INT(n, SNAPSHOT_KEEP);
    CHECK_EQ_INT(lsns[0], 30);
    CHECK_EQ_INT(lsns[1], 20);
    free(lsns);
    snapshot_t *s = snapshot_open(s_dir, 30, err, sizeof err);
    CHECK(s != NULL);
    const uint8_t *c;
    uint64_t len;
    CHECK_EQ_INT(snapshot_section(s, "one", &c, &len), 0);
    CHECK(len == 5 && memcmp(c, "hello", 5) == 0);
    CHECK_EQ_INT(snapshot_section(s, "two", &c, &len), 0);
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_INT(snapshot_section(s, "three", &c, &len), -1);
    CHECK_EQ_INT(snapshot_chain_crc(s), 210);
    snapshot_close(&s);
    /* every single flipped byte is caught */
    char path[700];
    snprintf(path, sizeof path, "%s/snapshot/%020llu.snap", s_dir, 30ULL);
    struct stat st;
    stat(path, &st);
    int caught = 0;
    for (off_t off = 0; off < st.st_size; off++) {
        int fd = open(path, O_RDWR);
        unsigned char b;
        CHECK(pread(fd, &b, 1, off) == 1);
        b ^= 0x20;
        CHECK(pwrite(fd, &b, 1, off) == 1);
        s = snapshot_open(s_dir, 30, err, sizeof err);
        caught += s == NULL;
        snapshot_close(&s);
        b ^= 0x20;
        CHECK(pwrite(fd, &b, 1, off) == 1);
        close(fd);
    }
    CHECK_EQ_INT(caught, st.st_size);
    support_tmp_rmrf(s_dir);
}

static void test_start_from_snapshot_equals_start_from_whole_journal(void)
{
    for (int round = 0; round < 4; round++) {
        s_fresh("equal");
        char err[300];
        journal_opts_t o = { .segment_bytes = 4096 };
        journal_t *j = journal_open(s_dir, &o, err, sizeof err);
        CHECK(j != NULL);
        s_random_history(j, 150 + round * 50);
        uint64_t mid = journal_durable_lsn(j);
        CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, mid, NULL, err, sizeof err), 0);
        s_random_history(j, 100);
        uint64_t end = journal_durable_lsn(j);
        CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, end, NULL, err, sizeof err), 0);
        s_random_history(j, 60);   /* records after the newest snapshot */
        journal_destroy(&j);
        for (int i = 0; checkpoint_sections[i]; i++)
            if (checkpoint_sections[i]->save)
                CHECK(s_restore_equals_full_replay(checkpoint_sections[i], end));
        /* segments before the newest snapshot were retired, and are still read */
        char adir[600];
        snprintf(adir, sizeof adir, "%s/archive", s_dir);
        jf_seg_t *segs;
        size_t n;
        CHECK_EQ_INT(jf_list_segments(adir, &segs, &n, err, sizeof err), 0);
        CHECK(n > 0);
        free(segs);
        /* and the writer opens the shortened live journal and goes on */
        j = journal_open(s_dir, &o, err, sizeof err);
        CHECK(j != NULL);
        s_random_history(j, 10);
        journal_destroy(&j);
        CHECK(s_restore_equals_full_replay(&checkpoint_registry, end));
        support_tmp_rmrf(s_dir);
    }
}

static void s_corrupt(uint64_t lsn, off_t off)
{
    char path[700];
    snprintf(path, sizeof path, "%s/snapshot/%020llu.snap", s_dir, (unsigned long long) lsn);
    int fd = open(path, O_RDWR);
    unsigned char b = 0;
    CHECK(pread(fd, &b, 1, off) == 1);
    b ^= 0xff;
    CHECK(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

static void test_damaged_newest_snapshot_falls_back_to_the_one_before_then_the_journal(void)
{
    s_fresh("fallback");
    char err[300];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    s_random_history(j, 120);
    uint64_t first = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, first, NULL, err, sizeof err), 0);
    s_random_history(j, 80);
    uint64_t second = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, second, NULL, err, sizeof err), 0);
    s_random_history(j, 30);
    journal_destroy(&j);
    s_corrupt(second, 100);
    checkpoint_info_t info;
    registry_t *reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL);
    CHECK_EQ_INT(info.snapshot_lsn, first);
    CHECK_EQ_INT(info.fallbacks, 1);
    registry_destroy(&reg);
    CHECK(s_restore_equals_full_replay(&checkpoint_registry, first));
    s_corrupt(first, 40);
    CHECK(s_restore_equals_full_replay(&checkpoint_registry, 0));
    CHECK(s_restore_equals_full_replay(&checkpoint_admins, 0));
    support_tmp_rmrf(s_dir);
}

static void test_snapshot_of_another_journal_is_not_used(void)
{
    s_fresh("foreign");
    char err[300];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    s_random_history(j, 50);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, journal_durable_lsn(j), NULL, err, sizeof err), 0);
    journal_destroy(&j);
    /* a snapshot claiming an LSN the journal does not have (copied from elsewhere) */
    char from[700], to[700];
    snprintf(from, sizeof from, "%s/snapshot/%020llu.snap", s_dir, 50ULL);
    snprintf(to, sizeof to, "%s/snapshot/%020llu.snap", s_dir, 9999ULL);
    CHECK_EQ_INT(link(from, to), 0);
    checkpoint_info_t info;
    registry_t *reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL);
    CHECK_EQ_INT(info.snapshot_lsn, 50);   /* 9999 does not even open: its header says 50 */
    CHECK_EQ_INT(info.fallbacks, 1);
    registry_destroy(&reg);
    support_tmp_rmrf(s_dir);
}

static void test_failed_snapshot_write_loses_nothing(void)
{
    s_fresh("faults");
    char err[300];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    s_random_history(j, 100);
    uint64_t first = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, first, NULL, err, sizeof err), 0);
    s_random_history(j, 100);
    uint64_t second = journal_durable_lsn(j);
    journal_destroy(&j);
    static const fio_op_t ops[] = { FIO_OPEN, FIO_WRITE, FIO_FSYNC, FIO_RENAME, FIO_CLOSE };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        for (uint64_t nth = 1; nth <= 3; nth++) {
            fio_reset();
            fio_fail_at(ops[k], nth, EIO);
            int rc = checkpoint_write(s_dir, &s_cfg, second, NULL, err, sizeof err);
            int fired = fio_faults_fired() > 0;
            fio_reset();
            /* a write that failed leaves the old snapshot in use (or, when only the directory's
             * fsync failed, the new one whole in place); one that did not fail is used */
            uint64_t want = rc == 0 ? second : UINT64_MAX;
            if (rc != 0)
                CHECK(fired);
            CHECK(s_restore_equals_full_replay(&checkpoint_registry, want));
            CHECK(s_restore_equals_full_replay(&checkpoint_admins, want));
            {   /* back to one snapshot at first for the next case */
                char path[700];
                snprintf(path, sizeof path, "%s/snapshot/%020llu.snap", s_dir, (unsigned long long) second);
                unlink(path);
            }
        }
    }
    fio_reset();
    fio_short_write_at(1, 10);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, second, NULL, err, sizeof err), -1);
    fio_reset();
    CHECK(s_restore_equals_full_replay(&checkpoint_registry, first));
    /* no leftover temporary file survives the next good write */
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, second, NULL, err, sizeof err), 0);
    char sdir[600];
    snprintf(sdir, sizeof sdir, "%s/snapshot", s_dir);
    DIR *d = opendir(sdir);
    struct dirent *e;
    int tmp = 0;
    while (d && (e = readdir(d)))
        tmp += strstr(e->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    CHECK_EQ_INT(tmp, 0);
    support_tmp_rmrf(s_dir);
}

static int s_verify(void)
{
    char *argv[] = { "journal", "verify", s_dir, NULL };
    fflush(stdout);
    int out = dup(1), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);   /* its report is for people; the exit status is what is checked */
    int rc = cmd_journal(3, argv);
    fflush(stdout);
    dup2(out, 1);
    close(out);
    close(null);
    return rc;
}

static void test_verify_checks_snapshots_the_archive_and_the_chain_into_the_journal(void)
{
    s_fresh("verify");
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    s_random_history(j, 200);
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
    s_random_history(j, 20);
    journal_destroy(&j);
    CHECK_EQ_INT(s_verify(), 0);
    s_corrupt(lsn, 60);
    CHECK_EQ_INT(s_verify(), 1);   /* a damaged snapshot */
    char path[700];
    snprintf(path, sizeof path, "%s/snapshot/%020llu.snap", s_dir, (unsigned long long) lsn);
    unlink(path);
    CHECK_EQ_INT(s_verify(), 0);
    /* an archived segment lost: the chain from the archive into the journal breaks */
    char adir[600];
    snprintf(adir, sizeof adir, "%s/archive", s_dir);
    jf_seg_t *segs;
    size_t n;
    CHECK_EQ_INT(jf_list_segments(adir, &segs, &n, err, sizeof err), 0);
    CHECK(n >= 2);
    if (n >= 2) {
        snprintf(path, sizeof path, "%s/%s", adir, segs[n - 1].name);
        unlink(path);
        CHECK_EQ_INT(s_verify(), 1);
    }
    free(segs);
    support_tmp_rmrf(s_dir);
}

static size_t s_archived(void)
{
    char adir[600], err[200];
    snprintf(adir, sizeof adir, "%s/archive", s_dir);
    jf_seg_t *segs;
    size_t n = 0;
    if (jf_list_segments(adir, &segs, &n, err, sizeof err) == 0)
        free(segs);
    return n;
}

static int s_prune(const char *day)
{
    char *argv[] = { "journal", "archive", s_dir, "--prune-before", (char *) day, NULL };
    fflush(stdout);
    int out = dup(1), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    int rc = cmd_journal(5, argv);
    fflush(stdout);
    dup2(out, 1);
    close(out);
    close(null);
    return rc;
}

static void test_archive_prune_deletes_only_old_segments_a_valid_snapshot_covers(void)
{
    s_fresh("prune");
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    s_random_history(j, 200);   /* records of November 2023 */
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
    journal_destroy(&j);
    size_t archived = s_archived();
    CHECK(archived > 0);
    CHECK_EQ_INT(s_prune("2020-01-01"), 0);   /* nothing that old */
    CHECK_EQ_INT(s_archived(), archived);
    s_corrupt(lsn, 50);
    CHECK_EQ_INT(s_prune("2030-01-01"), 1);   /* no valid snapshot: refused */
    CHECK_EQ_INT(s_archived(), archived);
    s_corrupt(lsn, 50);                       /* flipped back */
    CHECK_EQ_INT(s_prune("2030-01-01"), 0);
    CHECK_EQ_INT(s_archived(), 0);
    checkpoint_info_t info;
    registry_t *reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL);
    CHECK_EQ_INT(info.snapshot_lsn, lsn);
    registry_destroy(&reg);
    support_tmp_rmrf(s_dir);
}

/* Withdrawals are not in snapshots yet (rebuilt from the whole journal): a segment holding any of
 * their records is never pruned, nor anything after it. */
static void test_archive_prune_keeps_segments_with_withdrawal_records(void)
{
    s_fresh("prune-wd");
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    s_random_history(j, 60);
    record_t r;
    record_init(&r, RECORD_ALERT);
    r.time_ms = 1700000000000LL + 61 * 1000;
    snprintf(r.tx_id, sizeof r.tx_id, "w%0*d", WITHDRAWAL_ID_HEX, 7);
    snprintf(r.alert, sizeof r.alert, "%s", record_alert_name((record_alert_t) 0));
    CHECK(s_put(j, &r) != 0);
    s_random_history(j, 140);
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
    journal_destroy(&j);
    size_t archived = s_archived();
    CHECK(archived > 2);
    CHECK_EQ_INT(s_prune("2030-01-01"), 0);
    size_t left = s_archived();
    CHECK(left > 0 && left < archived);   /* the segments before it went; it and the rest stay */
    journal_reader_t *rd = journal_reader_open(s_dir, 1, err, sizeof err);
    int found = 0;
    journal_entry_t e;
    record_t got;
    while (rd && journal_reader_next(rd, &e) == 1)
        if (record_decode(e.payload, e.len, &got, err, sizeof err) == 0 && withdrawals_owns(&got))
            found++;
    CHECK(rd != NULL);
    journal_reader_destroy(&rd);
    CHECK_EQ_INT(found, 1);
    support_tmp_rmrf(s_dir);
}

static void test_kill_9_while_a_snapshot_is_written_loses_nothing(void)
{
    s_fresh("kill");
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    s_random_history(j, 300);
    uint64_t first = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, first, NULL, err, sizeof err), 0);
    s_random_history(j, 200);
    uint64_t last = journal_durable_lsn(j);
    journal_destroy(&j);
    for (int k = 0; k < 6; k++) {
        pid_t pid = fork();
        if (pid == 0) {   /* the writer, killed at a moment of its own */
            char why[300];
            for (uint64_t upto = first + 1; upto <= last; upto += 37)
                checkpoint_write(s_dir, &s_cfg, upto, NULL, why, sizeof why);
            _exit(0);
        }
        usleep((useconds_t) (2000 + 7000 * k));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        CHECK(s_restore_equals_full_replay(&checkpoint_registry, UINT64_MAX));
        CHECK(s_restore_equals_full_replay(&checkpoint_admins, UINT64_MAX));
    }
    support_tmp_rmrf(s_dir);
}

int main(void)
{
    log_set_level(getenv("CHECK_VERBOSE") ? LOG_DEBUG : LOG_ERROR);
    RUN(test_snapshot_file_round_trips_and_keeps_two);
    RUN(test_start_from_snapshot_equals_start_from_whole_journal);
    RUN(test_damaged_newest_snapshot_falls_back_to_the_one_before_then_the_journal);
    RUN(test_snapshot_of_another_journal_is_not_used);
    RUN(test_failed_snapshot_write_loses_nothing);
    RUN(test_kill_9_while_a_snapshot_is_written_loses_nothing);
    RUN(test_verify_checks_snapshots_the_archive_and_the_chain_into_the_journal);
    RUN(test_archive_prune_deletes_only_old_segments_a_valid_snapshot_covers);
    RUN(test_archive_prune_keeps_segments_with_withdrawal_records);
    return check_done();
}
