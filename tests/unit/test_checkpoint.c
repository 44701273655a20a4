/* test_checkpoint.c — snapshots: a start from a snapshot equals a start from the whole journal (the
 * registry, the wallets' links, the admins, every withdrawal and its views), a damaged newest
 * snapshot falls back, a snapshot of the previous format is read without its withdrawals, a failed
 * write loses nothing, retired segments stay readable, pruned ones lose no withdrawal. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/admins.h"
#include "actors/checkpoint.h"
#include "actors/cobo_auth.h"
#include "actors/registry.h"
#include "actors/wallets.h"
#include "actors/withdrawals.h"
#include "journal/findex.h"
#include "journal/fio.h"
#include "journal/jformat.h"
#include "journal/journal.h"
#include "journal/snapshot.h"
#include "schema/json.h"
#include "schema/log.h"
#include "tests/check.h"
#include "tools/commands.h"
#include "tests/unit/support_journal.h"
#include "tests/unit/support_tmp.h"
#include "tests/unit/support_wallets.h"

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

#define s_put support_journal_put

/* A random record of one of a dozen withdrawals: a transition into any state (from any: replay
 * applies what it is given), an attempt (debit, refund, transfer), an approval or other action, an
 * alert. Fills r (kind, time and login already set by the caller are kept where they apply). */
static void s_withdrawal_record(record_t *r, int i)
{
    static const char *attempts[] = { "debit", "refund", "transfer" };
    static const char *actions[] = { "approve", "approve", "reject", "refund", "retransfer" };
    static const char *statuses[] = { "", "Submitted", "PendingSignature", "Completed", "Failed", "Rejected" };
    uint64_t login = r->login;
    unsigned k = s_rand() % 6;
    record_init(r, k < 3 ? RECORD_WITHDRAWAL : k == 3 ? RECORD_WITHDRAWAL_ATTEMPT : k == 4 ? RECORD_ADMIN_ACTION
                   : RECORD_ALERT);
    r->time_ms = 1700000000000LL + i * 1000;
    r->login = login;
    snprintf(r->tx_id, sizeof r->tx_id, "w%0*x", WITHDRAWAL_ID_HEX, 0xa0 + s_rand() % 12);
    switch (r->kind) {
    case RECORD_WITHDRAWAL:
        r->wfrom = (withdrawal_state_t) (s_rand() % WITHDRAWAL_STATE_COUNT);
        r->wto = (withdrawal_state_t) (s_rand() % WITHDRAWAL_STATE_COUNT);
        r->wevent = (withdrawal_event_t) (s_rand() % WITHDRAWAL_EVENT_COUNT);
        snprintf(r->token_id, sizeof r->token_id, "TRON_USDT");
        snprintf(r->chain_id, sizeof r->chain_id, "TRON");
        snprintf(r->address, sizeof r->address, "TDest%u", s_rand() % 5);
        snprintf(r->amount, sizeof r->amount, "%u.%02u", s_rand() % 500, s_rand() % 100);
        snprintf(r->fee, sizeof r->fee, "1.%02u", s_rand() % 100);
        r->credit_minor = 100 + s_rand() % 50000;
        r->digits = 2;
        snprintf(r->currency, sizeof r->currency, "USD");
        snprintf(r->status, sizeof r->status, "%s", statuses[s_rand() % 6]);
        if (s_rand() % 2)
            snprintf(r->cobo_id, sizeof r->cobo_id, "cobo-%u", s_rand());
        if (s_rand() % 3 == 0)
            snprintf(r->tx_hash, sizeof r->tx_hash, "%064x", s_rand());
        if (s_rand() % 3 == 0)
            r->ticket = 500000 + s_rand();
        if (s_rand() % 2)
            snprintf(r->reason, sizeof r->reason, "why %u", s_rand());
        snprintf(r->actor, sizeof r->actor, "investor:%llu", (unsigned long long) login);
        snprintf(r->origin, sizeof r->origin, "ip:203.0.113.%u", s_rand() % 200);
        break;
    case RECORD_WITHDRAWAL_ATTEMPT:
        snprintf(r->action, sizeof r->action, "%s", attempts[s_rand() % 3]);
        r->attempt = 1 + s_rand() % 4;
        break;
    case RECORD_ADMIN_ACTION:
        snprintf(r->action, sizeof r->action, "%s", actions[s_rand() % 5]);
        snprintf(r->actor, sizeof r->actor, "admin:%u", s_rand() % 4);
        snprintf(r->reason, sizeof r->reason, "checked %u", s_rand());
        break;
    default:
        snprintf(r->alert, sizeof r->alert, "%s", record_alert_name((record_alert_t) (s_rand() % RECORD_ALERT_COUNT)));
        break;
    }
}

/* n random records over a few dozen deposits: transitions, attempts, alerts, notices, approvals,
 * links and admin accounts, and a dozen withdrawals' records, in whatever order
 * (replay applies what it is given). */
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
        if (s_rand() % 3 == 0) {   /* a withdrawal's record instead */
            s_withdrawal_record(&r, i);
            CHECK(s_put(j, &r) != 0);
            continue;
        }
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

/* What the investor panel's wallets learn from reg at start, as text: each login's ETH address and
 * each address's login. */
static void s_wallets_text(registry_t *reg, jbuf_t *b)
{
    static const char offered[][24] = { "ETH_USDT", "TRON_USDT" };
    char err[300];
    wallets_t *w = support_wallets_readonly(offered, 2, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    CHECK_EQ_INT(wallets_load_registry(w, reg, err, sizeof err), 0);
    for (uint64_t login = 1000; login < 1007; login++) {
        char a[128] = "-";
        wallets_lookup(w, login, "ETH_USDT", a, sizeof a);
        jbuf_printf(b, "%llu:%s ", (unsigned long long) login, a);
    }
    for (int i = 0; i < 30; i++) {
        char a[32];
        snprintf(a, sizeof a, "0xAbC%d", i);
        jbuf_printf(b, "%s:%llu ", a, (unsigned long long) wallets_login_of(w, a));
    }
    wallets_destroy(&w);
}

static void s_withdrawal_json(void *arg, const withdrawal_view_t *w)
{
    withdrawals_view_json(arg, w);
    jbuf_puts(arg, "\n");
}

/* What people see of a section's state, as text: every withdrawal's view (the admin API's and `kasa
 * withdrawal list --json`'s JSON) and each login's daily-limit count; the wallets a registry teaches. */
static void s_views_text(const checkpoint_section_t *sec, void *state, jbuf_t *b)
{
    if (sec == &checkpoint_withdrawals) {
        withdrawals_each(state, 0, 0, s_withdrawal_json, b);
        for (uint64_t login = 1000; login < 1007; login++)
            jbuf_printf(b, "asked %llu: %lld\n", (unsigned long long) login,
                        (long long) withdrawals_asked_since(state, login, 0));
    } else if (sec == &checkpoint_registry) {
        s_wallets_text(state, b);
    }
}

/* What a registry answers, in one canonical encoding: every deposit of the random histories (by id,
 * through registry_get: in memory or read back from the index of finished deposits), each login's
 * listing (ids, newest first), the links, and the counts. Two registries that answer alike encode
 * alike, wherever each keeps its deposits. */
static void s_canon_one(void *arg, const registry_entry_t *e)
{
    snap_pk_t *p = arg;
    char id[sizeof e->view.tx_id];
    snprintf(id, sizeof id, "%s", e->view.tx_id);
    SNAP_PK_STR(p, id);
}

static snap_pk_t s_registry_canon(registry_t *reg)
{
    snap_pk_t p;
    snap_pk_save_init(&p);
    registry_entry_t *e = malloc(sizeof *e);
    for (int d = 0; d < 64; d++) {
        char id[32];
        snprintf(id, sizeof id, "tx-%d", d);
        int known = registry_get(reg, id, e) == 0;
        snap_pk_int(&p, &known);
        if (known)
            registry_entry_pickle(&p, e);
    }
    free(e);
    for (uint64_t login = 1000; login < 1010; login++) {
        snap_pk_u64(&p, &login);
        registry_each(reg, login, 0, s_canon_one, &p);
    }
    registry_link_t links[64];
    int n = registry_links(reg, 0, NULL, 0, 64, links);
    snap_pk_int(&p, &n);
    for (int i = 0; i < n && i < 64; i++) {
        SNAP_PK_STR(&p, links[i].address);
        snap_pk_u64(&p, &links[i].login);
        snap_pk_u64(&p, &links[i].lsn);
    }
    uint64_t count = registry_count(reg), open = registry_open_count(reg);
    snap_pk_u64(&p, &count);
    snap_pk_u64(&p, &open);
    return p;
}

static snap_pk_t s_canon(const checkpoint_section_t *sec, void *state)
{
    return sec == &checkpoint_registry ? s_registry_canon(state) : s_bytes(sec, state);
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
    if (want_snapshot != UINT64_MAX && info.snapshot_lsn != want_snapshot)
        fprintf(stderr, "  restored from snapshot %llu (passed over: %s)\n", (unsigned long long) info.snapshot_lsn,
                info.fallbacks ? info.fallback_why : "none");
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
    snap_pk_t pa = s_canon(sec, a), pb = s_canon(sec, b);
    int same = pa.len == pb.len && memcmp(pa.buf, pb.buf, pa.len) == 0;
    if (!same) {
        size_t at = 0;
        while (at < pa.len && at < pb.len && pa.buf[at] == pb.buf[at])
            at++;
        fprintf(stderr, "  section %s differs: %zu vs %zu bytes, first at %zu\n", sec->name, pa.len, pb.len, at);
    }
    jbuf_t va, vb;
    jbuf_init(&va);
    jbuf_init(&vb);
    s_views_text(sec, a, &va);
    s_views_text(sec, b, &vb);
    if (va.len != vb.len || (va.len && memcmp(va.data, vb.data, va.len) != 0)) {
        fprintf(stderr, "  section %s: the views differ\n", sec->name);
        same = 0;
    }
    jbuf_free(&va);
    jbuf_free(&vb);
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
        /* the finished deposits were in the index, not the snapshot: the equality above read them back */
        findex_t *x = findex_open(s_dir, end, err, sizeof err);
        CHECK(x != NULL && findex_count(x) > 0);
        findex_close(&x);
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
    CHECK(s_restore_equals_full_replay(&checkpoint_withdrawals, first));
    s_corrupt(first, 40);
    CHECK(s_restore_equals_full_replay(&checkpoint_registry, 0));
    CHECK(s_restore_equals_full_replay(&checkpoint_admins, 0));
    CHECK(s_restore_equals_full_replay(&checkpoint_withdrawals, 0));
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

/* A journal in s_dir (4 KiB segments if small) of `before` random records, a snapshot of them at
 * *first, then `after` more up to *last. */
static void s_history_snapshot_history(int small, int before, int after, uint64_t *first, uint64_t *last)
{
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, small ? &o : NULL, err, sizeof err);
    CHECK(j != NULL);
    s_random_history(j, before);
    *first = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, *first, NULL, err, sizeof err), 0);
    s_random_history(j, after);
    *last = journal_durable_lsn(j);
    journal_destroy(&j);
}

static void test_failed_snapshot_write_loses_nothing(void)
{
    s_fresh("faults");
    char err[300];
    uint64_t first, second;
    s_history_snapshot_history(0, 100, 100, &first, &second);
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
            CHECK(s_restore_equals_full_replay(&checkpoint_withdrawals, want));
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

/* Every record archived behind the newest snapshot, the live journal only the empty segment a clean
 * close starts after it: the snapshot is this journal's (it covers what the archive holds), verify
 * passes. */
static void test_verify_accepts_a_snapshot_when_every_record_is_archived(void)
{
    s_fresh("verify-empty-live");
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    s_random_history(j, 50);
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
    journal_destroy(&j);
    /* a clean close starts the next segment (empty, LSN lsn + 1); the snapshot retires the rest */
    size_t moved = 0;
    CHECK_EQ_INT(journal_archive(s_dir, lsn, &moved, err, sizeof err), 0);
    CHECK(moved >= 1);
    jf_seg_t *segs;
    size_t n = 0;
    char name[JF_NAME_MAX];
    jf_seg_name(name, lsn + 1);
    CHECK_EQ_INT(jf_list_segments(s_dir, &segs, &n, err, sizeof err), 0);
    CHECK(n == 1 && strcmp(segs[0].name, name) == 0);
    free(segs);
    CHECK_EQ_INT(s_verify(), 0);
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

/* Rewrites snapshot lsn as the previous format wrote it: without the withdrawals section, or (layout
 * non-zero) with one whose first word is that layout number. */
static void s_rewrite_withdrawals_section(uint64_t lsn, uint32_t layout)
{
    char err[300];
    snapshot_t *old = snapshot_open(s_dir, lsn, err, sizeof err);
    CHECK(old != NULL);
    if (!old)
        return;
    char path[700], keep[720];
    snprintf(path, sizeof path, "%s/snapshot/%020llu.snap", s_dir, (unsigned long long) lsn);
    snprintf(keep, sizeof keep, "%s.old", path);
    CHECK_EQ_INT(rename(path, keep), 0);   /* still mapped: read from while the new one is written */
    snapshot_writer_t *w = snapshot_begin(s_dir, lsn, snapshot_chain_crc(old), snapshot_time_ms(old), err, sizeof err);
    CHECK(w != NULL);
    for (size_t i = 0; w && snapshot_section_name(old, i); i++) {
        const char *name = snapshot_section_name(old, i);
        const uint8_t *c;
        uint64_t len;
        CHECK_EQ_INT(snapshot_section(old, name, &c, &len), 0);
        if (strcmp(name, "withdrawals") != 0) {
            CHECK_EQ_INT(snapshot_put(w, name, c, len, err, sizeof err), 0);
        } else if (layout) {
            uint8_t *copy = malloc(len);
            memcpy(copy, c, len);
            memcpy(copy, &layout, sizeof layout);   /* little-endian hosts only, as the format */
            CHECK_EQ_INT(snapshot_put(w, name, copy, len, err, sizeof err), 0);
            free(copy);
        }
    }
    CHECK_EQ_INT(snapshot_commit(&w, err, sizeof err), 0);
    snapshot_close(&old);
    unlink(keep);
}

/* A snapshot written before withdrawals were in snapshots (no "withdrawals" section), or with a
 * withdrawals section of another layout: its registry and admins are still read from it, the
 * withdrawals cleanly come from the whole journal instead (logged), and are the same. */
static void test_snapshot_of_the_previous_format_is_read_without_its_withdrawals(void)
{
    for (uint32_t layout = 0; layout <= 9; layout += 9) {
        s_fresh("oldformat");
        char err[300];
        journal_opts_t o = { .segment_bytes = 4096 };
        journal_t *j = journal_open(s_dir, &o, err, sizeof err);
        s_random_history(j, 250);
        uint64_t lsn = journal_durable_lsn(j);
        CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
        s_random_history(j, 40);
        journal_destroy(&j);
        s_rewrite_withdrawals_section(lsn, layout);
        CHECK(s_restore_equals_full_replay(&checkpoint_registry, lsn));
        CHECK(s_restore_equals_full_replay(&checkpoint_admins, lsn));
        checkpoint_info_t info;
        withdrawals_t *wd = checkpoint_restore(s_dir, &checkpoint_withdrawals, &s_cfg, 0, &info, err, sizeof err);
        CHECK(wd != NULL);
        CHECK_EQ_INT(info.snapshot_lsn, 0);   /* the whole journal, the archive included */
        CHECK_EQ_INT(info.fallbacks, 1);
        CHECK(strstr(info.fallback_why, layout ? "layout" : "no section withdrawals") != NULL);
        CHECK(withdrawals_count(wd) > 0);
        withdrawals_destroy(&wd);
        CHECK(s_restore_equals_full_replay(&checkpoint_withdrawals, 0));
        /* and the next snapshot carries them again */
        CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn + 40, NULL, err, sizeof err), 0);
        CHECK(s_restore_equals_full_replay(&checkpoint_withdrawals, lsn + 40));
        support_tmp_rmrf(s_dir);
    }
}

/* The withdrawals restored from dir, as their section's bytes and their views (caller frees both). */
static void s_withdrawals_now(snap_pk_t *bytes, jbuf_t *views, uint64_t *snapshot_lsn)
{
    char err[300];
    checkpoint_info_t info;
    withdrawals_t *wd = checkpoint_restore(s_dir, &checkpoint_withdrawals, &s_cfg, 0, &info, err, sizeof err);
    CHECK(wd != NULL);
    snap_pk_save_init(bytes);
    jbuf_init(views);
    if (!wd)
        return;
    *snapshot_lsn = info.snapshot_lsn;
    CHECK_EQ_INT(withdrawals_save(wd, bytes), 0);
    s_views_text(&checkpoint_withdrawals, wd, views);
    withdrawals_destroy(&wd);
}

/* Runs `kasa withdrawal ARGS --config FILE` on s_dir's journal; its standard output into out (up to
 * cap bytes, NUL-terminated). The exit status. */
static int s_withdrawal_cmd(const char *verb, const char *id, char *out, size_t cap)
{
    char conf[300], secret[65], pub[65], capture[300];
    snprintf(conf, sizeof conf, "%s/kasa.env", s_dir);
    snprintf(capture, sizeof capture, "%s/out.txt", s_dir);
    memset(secret, '5', 64);
    secret[64] = '\0';
    cobo_pubkey_from_seed(secret, pub);
    FILE *f = fopen(conf, "w");
    CHECK(f != NULL);
    if (!f)
        return -1;
    fprintf(f, "KASA_JOURNAL_DIR=%s\nCOBO_API_URL=http://127.0.0.1:9/v2\nCOBO_API_KEY=%s\nCOBO_API_SECRET=%s\n"
            "MT5_URL=http://127.0.0.1:9\nMT5_LOGIN=1\nMT5_PASSWORD=pw\nTELEGRAM_BOT_TOKEN=1:x\n"
            "TELEGRAM_CHAT_ID=1\nKASA_METRICS_LISTEN=off\n", s_dir, pub, secret);
    fchmod(fileno(f), 0600);
    fclose(f);
    char *argv[] = { "withdrawal", (char *) verb, (char *) id, "--json", "--config", conf, NULL };
    if (!id)
        argv[2] = "--json", argv[3] = "--config", argv[4] = conf, argv[5] = NULL;
    fflush(stdout);
    int saved = dup(1), fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    close(fd);
    int rc = cmd_withdrawal(id ? 6 : 5, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    f = fopen(capture, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return rc;
}

/* Once the newest snapshot carries the withdrawals, segments holding their records are pruned like
 * any other; a restart then has every withdrawal as before, and `kasa journal verify` passes. While
 * the newest snapshot lacks the section (written by the previous format), nothing is pruned. */
static void test_archive_prune_goes_past_withdrawal_segments_a_snapshot_carries(void)
{
    s_fresh("prune-wd");
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    s_random_history(j, 200);
    uint64_t first = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, first, NULL, err, sizeof err), 0);
    s_rewrite_withdrawals_section(first, 0);
    size_t archived = s_archived();
    CHECK(archived > 2);
    CHECK_EQ_INT(s_prune("2030-01-01"), 1);   /* a start would replay the withdrawals from the whole journal */
    CHECK_EQ_INT(s_archived(), archived);
    s_random_history(j, 100);
    uint64_t second = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, second, NULL, err, sizeof err), 0);
    s_random_history(j, 30);   /* a tail after the snapshot, withdrawals' records in it too */
    journal_destroy(&j);
    snap_pk_t before, after;
    jbuf_t vbefore, vafter;
    uint64_t from = 0;
    s_withdrawals_now(&before, &vbefore, &from);
    CHECK_EQ_INT(from, second);
    static char list_before[1 << 16], list_after[1 << 16], shown[1 << 14];
    CHECK_EQ_INT(s_withdrawal_cmd("list", NULL, list_before, sizeof list_before), 0);
    CHECK(strstr(list_before, "\"id\":\"w") != NULL);
    CHECK_EQ_INT(s_prune("2030-01-01"), 0);
    CHECK_EQ_INT(s_archived(), 0);   /* withdrawal segments too */
    CHECK_EQ_INT(s_verify(), 0);
    s_withdrawals_now(&after, &vafter, &from);
    CHECK_EQ_INT(from, second);
    /* `kasa withdrawal list` lists the same; `show` still shows each (from the snapshot when none of
     * its records is left) */
    CHECK_EQ_INT(s_withdrawal_cmd("list", NULL, list_after, sizeof list_after), 0);
    CHECK_EQ_INT(strcmp(list_before, list_after), 0);
    int shown_from_snapshot = 0;
    for (unsigned k = 0; k < 12; k++) {
        char id[32];
        snprintf(id, sizeof id, "w%0*x", WITHDRAWAL_ID_HEX, 0xa0 + k);
        char needle[48];
        snprintf(needle, sizeof needle, "\"id\":\"%s\"", id);
        if (!strstr(list_before, needle))
            continue;
        CHECK_EQ_INT(s_withdrawal_cmd("show", id, shown, sizeof shown), 0);
        CHECK(strstr(shown, id) != NULL);
        shown_from_snapshot += strstr(shown, "\"state\":") != NULL;
    }
    CHECK(shown_from_snapshot > 0);   /* some had every record pruned */
    CHECK(before.len > 100 && before.len == after.len && memcmp(before.buf, after.buf, before.len) == 0);
    CHECK(vbefore.len == vafter.len && memcmp(vbefore.data, vafter.data, vbefore.len) == 0);
    snap_pk_free(&before);
    snap_pk_free(&after);
    jbuf_free(&vbefore);
    jbuf_free(&vafter);
    support_tmp_rmrf(s_dir);
}

/* Snapshots written one after another from first to last, the writer killed -9 at moments of its
 * own: every start after it equals the whole journal's replay. */
static void s_kill_writer_6_times(uint64_t first, uint64_t last)
{
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
        CHECK(s_restore_equals_full_replay(&checkpoint_withdrawals, UINT64_MAX));
    }
}

/* The same with runs of the finished-deposit index merged at almost every snapshot (the lowest tier
 * two deposits): a kill in the middle of a merge leaves the index the last snapshot names whole. */
static void test_kill_9_while_runs_of_the_index_are_merged_loses_nothing(void)
{
    s_fresh("kill-merge");
    findex_set_merge_unit(2);
    uint64_t first, last;
    s_history_snapshot_history(1, 300, 200, &first, &last);
    s_kill_writer_6_times(first, last);
    char err[300], tmp[400];
    /* what a writer killed in a merge leaves: removed by the next index written */
    snprintf(tmp, sizeof tmp, "%s/finished/%020llu.idx.tmp", s_dir, 1ull);
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL && fputs("half a run", f) >= 0);
    if (f)
        fclose(f);
    journal_opts_t o = { .segment_bytes = 4096 };   /* on, past the newest snapshot, merging */
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    CHECK(j != NULL);
    uint64_t more = last;
    for (int round = 0; j && round < 3; round++) {
        s_random_history(j, 40);
        more = journal_durable_lsn(j);
        CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, more, NULL, err, sizeof err), 0);
    }
    journal_destroy(&j);
    CHECK(access(tmp, F_OK) != 0);
    CHECK(s_restore_equals_full_replay(&checkpoint_registry, more));
    findex_set_merge_unit(0);
    support_tmp_rmrf(s_dir);
}

static void test_kill_9_while_a_snapshot_is_written_loses_nothing(void)
{
    s_fresh("kill");
    uint64_t first, last;
    s_history_snapshot_history(1, 300, 200, &first, &last);
    s_kill_writer_6_times(first, last);
    support_tmp_rmrf(s_dir);
}

/* The bytes of every file in dir/finished, names and contents, as one string (caller frees). */
static char *s_finished_bytes(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/finished", s_dir);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    jbuf_t b;
    jbuf_init(&b);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char file[700];
            snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
            FILE *f = fopen(file, "rb");
            jbuf_printf(&b, "%s:", names[i]->d_name);
            for (int c; f && (c = fgetc(f)) != EOF;)
                jbuf_printf(&b, "%02x", c);
            jbuf_printf(&b, "\n");
            if (f)
                fclose(f);
        }
        free(names[i]);
    }
    free(names);
    return b.data;
}

/* A snapshot at or below the newest one is refused and changes no file of the index: written from
 * another base (here the whole journal, the snapshots below being gone) it would replace runs the
 * newest one's index stands on. A writer killed and started again over the journal from its start
 * (the test above) did that: the newest snapshot then named a store with other entries in it. */
static void test_a_snapshot_below_the_newest_is_refused_and_changes_no_index_file(void)
{
    s_fresh("backwards");
    char err[300];
    journal_opts_t o = { .segment_bytes = 4096 };
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    CHECK(j != NULL);
    if (!j)
        return;
    uint64_t at[4];
    for (int i = 0; i < 4; i++) {   /* four snapshots, deposits finishing before each; two are kept */
        s_random_history(j, 150);
        at[i] = journal_durable_lsn(j);
        CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, at[i], NULL, err, sizeof err), 0);
    }
    journal_destroy(&j);
    char *before = s_finished_bytes();
    CHECK(before && strstr(before, ".dep:") != NULL);
    for (int i = 0; i < 4; i++) {
        CHECK(checkpoint_write(s_dir, &s_cfg, at[i] - (i < 3), NULL, err, sizeof err) != 0);
        CHECK(strstr(err, "already covers") != NULL);
    }
    char *after = s_finished_bytes();
    CHECK(after && before && strcmp(before, after) == 0);
    free(before);
    free(after);
    CHECK(s_restore_equals_full_replay(&checkpoint_registry, at[3]));
    support_tmp_rmrf(s_dir);
}

/* fio_on_open: counts the opens of snapshot files and of journal segments, and of each segment the
 * most times any one was opened. */
typedef struct {
    int snaps, segs;
    char seg_paths[64][600];
    int seg_opens[64];
    int nseg, most;
} s_opens_t;

static void s_count_open(void *arg, const char *path)
{
    s_opens_t *o = arg;
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".snap") == 0)
        o->snaps++;
    if (n <= 4 || strcmp(path + n - 4, ".seg") != 0)
        return;
    o->segs++;
    int i = 0;
    while (i < o->nseg && strcmp(o->seg_paths[i], path) != 0)
        i++;
    if (i == o->nseg && o->nseg < 64)
        snprintf(o->seg_paths[o->nseg++], sizeof o->seg_paths[0], "%s", path);
    if (i < 64 && ++o->seg_opens[i] > o->most)
        o->most = o->seg_opens[i];
}

/* A snapshot is built from the one before opened once and the journal after it read once, for every
 * section together (it was once per section: the snapshot opened and checksummed three times, the
 * journal read three times, for each snapshot written). */
static void test_a_snapshot_reads_the_one_before_and_the_journal_once(void)
{
    s_fresh("once");
    char err[300];
    uint64_t first, last;
    s_history_snapshot_history(1, 200, 200, &first, &last);
    s_opens_t *opens = calloc(1, sizeof *opens);
    fio_on_open(s_count_open, opens);
    checkpoint_info_t info;
    int rc = checkpoint_write(s_dir, &s_cfg, last, &info, err, sizeof err);
    fio_on_open(NULL, NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(info.snapshot_lsn, first);
    CHECK_EQ_INT(info.last_lsn, last);
    CHECK_EQ_INT(opens->snaps, 1);
    CHECK(opens->segs > 1);   /* the 200 records span several 4 KiB segments */
    CHECK_EQ_INT(opens->most, 1);
    free(opens);
    for (int i = 0; checkpoint_sections[i]; i++)
        if (checkpoint_sections[i]->save)
            CHECK(s_restore_equals_full_replay(checkpoint_sections[i], last));
    support_tmp_rmrf(s_dir);
}

/* The bytes of section name of dir's snapshot lsn, malloc'd into *out (*len); 0 or -1. */
static int s_section_bytes(const char *dir, uint64_t lsn, const char *name, uint8_t **out, uint64_t *len)
{
    char err[300];
    snapshot_t *snap = snapshot_open(dir, lsn, err, sizeof err);
    const uint8_t *content;
    int rc = snap && snapshot_section(snap, name, &content, len) == 0 ? 0 : -1;
    if (rc == 0 && !(*out = malloc(*len ? *len : 1)))
        rc = -1;
    if (rc == 0)
        memcpy(*out, content, *len);
    snapshot_close(&snap);
    return rc;
}

/* A writer that keeps its states from one snapshot to the next (only the records after the last
 * one applied) writes the same sections as one that loads the last snapshot again every time, over
 * random histories in which deposits finish, leave for the index and are touched again. */
static void test_a_writer_keeping_its_states_writes_what_loading_them_again_writes(void)
{
    char a[200], b[200], err[300];
    support_tmp_fresh(a, sizeof a, "ckpt", "kept-a");
    support_tmp_fresh(b, sizeof b, "ckpt", "kept-b");
    config_t ca = { 0 }, cb = { 0 };
    snprintf(ca.journal_dir, sizeof ca.journal_dir, "%s", a);
    snprintf(cb.journal_dir, sizeof cb.journal_dir, "%s", b);
    ca.max_deposits = cb.max_deposits = 100000;
    journal_opts_t o = { .segment_bytes = 8192 };
    journal_t *ja = journal_open(a, &o, err, sizeof err), *jb = journal_open(b, &o, err, sizeof err);
    CHECK(ja != NULL && jb != NULL);
    checkpoint_kept_t *kept = checkpoint_kept_new();
    uint64_t prev = 0;
    int differ = 0, kept_used = 0;
    for (unsigned round = 0; ja && jb && round < 10; round++) {
        s_seed = 1000 + round;
        s_random_history(ja, 120);
        s_seed = 1000 + round;
        s_random_history(jb, 120);
        uint64_t lsn = journal_durable_lsn(ja);
        CHECK_EQ_INT(journal_durable_lsn(jb), lsn);
        checkpoint_info_t ia, ib;
        CHECK_EQ_INT(checkpoint_write_kept(a, &ca, lsn, kept, &ia, err, sizeof err), 0);
        CHECK_EQ_INT(checkpoint_write(b, &cb, lsn, &ib, err, sizeof err), 0);
        kept_used += round > 0 && ia.snapshot_lsn == prev && ia.records == (long) (lsn - prev);
        for (int i = 0; checkpoint_sections[i]; i++) {
            if (!checkpoint_sections[i]->save)
                continue;
            uint8_t *x = NULL, *y = NULL;
            uint64_t lx = 0, ly = 0;
            CHECK_EQ_INT(s_section_bytes(a, lsn, checkpoint_sections[i]->name, &x, &lx), 0);
            CHECK_EQ_INT(s_section_bytes(b, lsn, checkpoint_sections[i]->name, &y, &ly), 0);
            differ += !x || !y || lx != ly || memcmp(x, y, (size_t) lx) != 0;
            free(x);
            free(y);
        }
        prev = lsn;
    }
    CHECK_EQ_INT(differ, 0);
    CHECK_EQ_INT(kept_used, 9);   /* every snapshot after the first stood on the kept states */
    /* a snapshot the kept states are not of (another writer's, newer) is never stood on */
    s_seed = 77;
    s_random_history(ja, 50);
    uint64_t other = journal_durable_lsn(ja);
    CHECK_EQ_INT(checkpoint_write(a, &ca, other, NULL, err, sizeof err), 0);
    s_random_history(ja, 50);
    checkpoint_info_t ia;
    CHECK_EQ_INT(checkpoint_write_kept(a, &ca, journal_durable_lsn(ja), kept, &ia, err, sizeof err), 0);
    CHECK_EQ_INT(ia.snapshot_lsn, other);
    char fin[300];
    snprintf(fin, sizeof fin, "%s/finished", a);
    DIR *d = opendir(fin);
    int runs = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        runs += strstr(e->d_name, ".idx") != NULL;
    if (d)
        closedir(d);
    CHECK(runs > 0);   /* deposits did finish and leave for the index */
    checkpoint_kept_destroy(&kept);
    journal_destroy(&ja);
    journal_destroy(&jb);
    support_tmp_rmrf(a);
    support_tmp_rmrf(b);
}

/* How many of this process's threads are of the idle scheduling policy. */
static int s_idle_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && sched_getscheduler((pid_t) atoi(e->d_name)) == SCHED_IDLE)
            n++;
    if (d)
        closedir(d);
    return n;
}

typedef struct {
    pthread_mutex_t mu;
    int calls, policy;
} s_told_t;

static void s_on_written(void *arg, uint64_t lsn)
{
    (void) lsn;
    s_told_t *t = arg;
    int policy = -1;
    struct sched_param sp;
    pthread_getschedparam(pthread_self(), &policy, &sp);
    pthread_mutex_lock(&t->mu);
    t->calls++;
    t->policy = policy;
    pthread_mutex_unlock(&t->mu);
}

/* A running kasa's snapshots are built and written by a thread of the idle scheduling policy (any
 * other thread that wakes takes the CPU from it); the live modules are told on a thread of the
 * ordinary policy, as they hold locks every webhook waits for. */
static void test_snapshots_are_written_at_the_idle_policy_and_announced_at_the_ordinary_one(void)
{
    s_fresh("idle-policy");
    char err[300];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    if (!j)
        return;
    config_t cfg = s_cfg;
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", s_dir);
    cfg.snapshot_every_records = 10;
    cfg.snapshot_every_s = 0;
    int before = s_idle_threads();
    checkpointer_t *c = checkpointer_new(j, &cfg, err, sizeof err);
    CHECK(c != NULL);
    s_told_t told = { .mu = PTHREAD_MUTEX_INITIALIZER, .policy = -1 };
    checkpointer_on_written(c, s_on_written, &told);
    s_random_history(j, 40);
    for (int i = 0; i < 500 && checkpointer_written(c) == 0; i++)
        usleep(10000);
    CHECK(checkpointer_written(c) >= 1);
    CHECK_EQ_INT(s_idle_threads() - before, 1);   /* the writer */
    checkpointer_destroy(&c);
    CHECK_EQ_INT(s_idle_threads(), before);
    pthread_mutex_lock(&told.mu);
    CHECK(told.calls >= 1);
    CHECK_EQ_INT(told.policy, SCHED_OTHER);
    pthread_mutex_unlock(&told.mu);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

/* Forks a snapshot process (checkpoint_process_main over s_dir, told parent) asked for the snapshot of
 * lsn, its input closed after that line: it leaves once it has answered. Its pid; *answers: the read
 * end of its output. */
static pid_t s_process_asked(uint64_t lsn, pid_t parent, int *answers)
{
    int in[2], out[2];
    CHECK_EQ_INT(pipe(in), 0);
    CHECK_EQ_INT(pipe(out), 0);
    char line[64];
    int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long) lsn);
    CHECK_EQ_INT(write(in[1], line, (size_t) n), n);
    close(in[1]);
    pid_t pid = fork();
    if (pid == 0) {
        close(out[0]);
        _exit(checkpoint_process_main(s_dir, 100000, parent, in[0], out[1]));
    }
    close(in[0]);
    close(out[1]);
    *answers = out[0];
    return pid;
}

/* While it writes a snapshot, the snapshot process leaves the CPU at least once a millisecond. The
 * idle policy is no strict priority: a woken thread that used more than its share before it slept
 * runs only once the running one has paid that back, up to a tick, and kasa's busy threads waited
 * that long behind it; so it pauses on a timer. Counted as the process's voluntary context switches
 * (wait4) against the CPU time its answer reports, for a snapshot of 30,000 unfinished deposits. */
static void test_the_snapshot_process_leaves_the_cpu_every_millisecond_while_it_writes(void)
{
    s_fresh("pace");
    char err[300];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    if (!j)
        return;
    uint64_t last = 0;
    for (int i = 0; i < 30000; i++) {
        record_t r;
        record_init(&r, RECORD_DEPOSIT);
        r.time_ms = 1700000000000LL + i;
        r.event = DEPOSIT_EV_SEEN_PENDING;
        r.from = DEPOSIT_NONE;
        r.to = DEPOSIT_RECEIVED;
        snprintf(r.tx_id, sizeof r.tx_id, "pace-%d", i);
        snprintf(r.status, sizeof r.status, "Confirming");
        snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
        snprintf(r.chain_id, sizeof r.chain_id, "TRON");
        snprintf(r.address, sizeof r.address, "TPace%028d", i % 300);
        snprintf(r.amount, sizeof r.amount, "%d.%02d", 10 + i % 990, i % 100);
        snprintf(r.tx_hash, sizeof r.tx_hash, "%064x", (unsigned) i * 2654435761u);
        r.login = 100000 + (uint64_t) (i % 300);
        last = s_put(j, &r);
        CHECK(last != 0);
    }
    CHECK_EQ_INT(journal_wait(j, last), 0);
    journal_destroy(&j);
    int answers;
    pid_t pid = s_process_asked(last, 0, &answers);
    char ans[600] = "";
    FILE *f = fdopen(answers, "r");
    CHECK(f && fgets(ans, sizeof ans, f));
    struct rusage ru;
    int status = 0;
    CHECK_EQ_INT(wait4(pid, &status, 0, &ru), pid);
    if (f)
        fclose(f);
    unsigned long long from = 0;
    long records = 0, rss = 0;
    long long cpu_us = 0;
    CHECK_EQ_INT(sscanf(ans, "ok %llu %ld %lld %ld", &from, &records, &cpu_us, &rss), 4);
    CHECK_EQ_INT(records, 30000);
    CHECK(cpu_us >= 20000);   /* work enough to tell */
    if (getenv("CHECK_VERBOSE"))
        fprintf(stderr, "snapshot process: %lld us of CPU, %ld voluntary switches\n", cpu_us, ru.ru_nvcsw);
    CHECK(ru.ru_nvcsw * 1000 >= cpu_us);
    support_tmp_rmrf(s_dir);
}

/* A snapshot process whose parent is not the one it was told (kasa died before the process could
 * arrange to die with it) leaves at once, writing nothing: never a second writer beside the next
 * kasa's. */
static void test_a_snapshot_process_whose_kasa_died_first_leaves_without_writing(void)
{
    s_fresh("orphan");
    char err[300];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    if (!j)
        return;
    s_random_history(j, 60);
    uint64_t last = journal_durable_lsn(j);
    journal_destroy(&j);
    int answers;   /* a snapshot asked before it started, of a parent it does not have */
    pid_t pid = s_process_asked(last, getpid() + 1000000, &answers);
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    char ans[64];
    CHECK_EQ_INT(read(answers, ans, sizeof ans), 0);   /* no answer */
    close(answers);
    uint64_t *lsns = NULL;
    size_t nsnap = 0;
    CHECK_EQ_INT(snapshot_list(s_dir, &lsns, &nsnap, err, sizeof err), 0);
    CHECK_EQ_INT(nsnap, 0);   /* nothing written */
    free(lsns);
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
    RUN(test_kill_9_while_runs_of_the_index_are_merged_loses_nothing);
    RUN(test_a_snapshot_below_the_newest_is_refused_and_changes_no_index_file);
    RUN(test_a_snapshot_reads_the_one_before_and_the_journal_once);
    RUN(test_snapshots_are_written_at_the_idle_policy_and_announced_at_the_ordinary_one);
    RUN(test_the_snapshot_process_leaves_the_cpu_every_millisecond_while_it_writes);
    RUN(test_a_snapshot_process_whose_kasa_died_first_leaves_without_writing);
    RUN(test_a_writer_keeping_its_states_writes_what_loading_them_again_writes);
    RUN(test_verify_checks_snapshots_the_archive_and_the_chain_into_the_journal);
    RUN(test_verify_accepts_a_snapshot_when_every_record_is_archived);
    RUN(test_archive_prune_deletes_only_old_segments_a_valid_snapshot_covers);
    RUN(test_snapshot_of_the_previous_format_is_read_without_its_withdrawals);
    RUN(test_archive_prune_goes_past_withdrawal_segments_a_snapshot_carries);
    return check_done();
}
