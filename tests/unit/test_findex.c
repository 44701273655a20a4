/* test_findex.c — finished deposits out of memory: a snapshot indexes them (journal/findex.h), a
 * running registry lets go of them, and they are still recognised (a repeated webhook moves nothing),
 * read back (get, a login's listing, after their segments went to the archive) and revived when
 * something is recorded for them; a new deposit whose id collides in the hash with an old one is
 * still new; an unreadable index refuses rather than guesses; a bad index file is not opened; a lookup
 * through the in-memory fences finds every run whole; an open index is shared, checked once. The index
 * is levelled: each snapshot writes a small run, runs merge by tier, lookups and histories go across
 * them; an index of the earlier one-file format is read as one run; an unreadable run below refuses what
 * only it could answer; a run below that is not the one named does not open. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/checkpoint.h"
#include "actors/registry.h"
#include "journal/findex.h"
#include "journal/jformat.h"
#include "journal/journal.h"
#include "schema/record.h"
#include "tests/check.h"
#include "tests/unit/support_tmp.h"

static char s_dir[200];
static config_t s_cfg;

static journal_t *s_fresh(const char *name)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "findex", name);
    memset(&s_cfg, 0, sizeof s_cfg);
    snprintf(s_cfg.journal_dir, sizeof s_cfg.journal_dir, "%s", s_dir);
    s_cfg.max_deposits = 1000;
    journal_opts_t opts = { 0 };
    opts.segment_bytes = 1024;   /* several segments: the snapshots retire them to the archive */
    char err[300];
    journal_t *j = journal_open(s_dir, &opts, err, sizeof err);
    if (!j)
        fprintf(stderr, "journal_open: %s\n", err);
    return j;
}

static registry_result_t s_step(registry_t *reg, journal_t *j, const char *tx, deposit_event_t ev, uint64_t login)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.event = ev;
    r.login = login;
    snprintf(r.status, sizeof r.status, "%s", ev == DEPOSIT_EV_SEEN_FAILED ? "Failed" : "Completed");
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.address, sizeof r.address, "TAddr-%s", tx);
    snprintf(r.amount, sizeof r.amount, "10.5");
    if (ev == DEPOSIT_EV_CONFIRMED)
        r.credit_minor = 1050, r.digits = 2;
    if (ev == DEPOSIT_EV_CREDIT_OK)
        r.ticket = 9000 + (uint64_t) strlen(tx);
    char err[200];
    return registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err);
}

/* tx all the way to NOTIFIED on login. */
static void s_finish(registry_t *reg, journal_t *j, const char *tx, uint64_t login)
{
    CHECK_EQ_INT(s_step(reg, j, tx, DEPOSIT_EV_SEEN_COMPLETED, login), REGISTRY_MOVED);
    CHECK_EQ_INT(s_step(reg, j, tx, DEPOSIT_EV_CONFIRMED, 0), REGISTRY_MOVED);
    CHECK_EQ_INT(s_step(reg, j, tx, DEPOSIT_EV_CREDIT_OK, 0), REGISTRY_MOVED);
    CHECK_EQ_INT(s_step(reg, j, tx, DEPOSIT_EV_NOTICE_SENT, 0), REGISTRY_MOVED);
}

/* A snapshot of what is durable now; the running registry then lets go of what it indexed. */
static uint64_t s_snapshot(registry_t *reg, journal_t *j)
{
    char err[300];
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(registry_forget_finished(reg, lsn, err, sizeof err), 0);
    return lsn;
}

static void s_ids(void *arg, const registry_entry_t *e)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 400 - n, "%s%s", n ? "," : "", e->view.tx_id);
}

static int s_archived(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/archive", s_dir);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, ".seg") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_a_repeat_of_an_evicted_deposit_is_answered_and_journals_nothing(void)
{
    journal_t *j = s_fresh("repeat");
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_finish(reg, j, "old-1", 100001);
    CHECK_EQ_INT(s_step(reg, j, "rej-1", DEPOSIT_EV_SEEN_FAILED, 100001), REGISTRY_MOVED);
    CHECK_EQ_INT(s_step(reg, j, "open-1", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_MOVED);
    s_snapshot(reg, j);
    CHECK_EQ_INT(registry_open_count(reg), 1);       /* open-1 */
    CHECK_EQ_INT(registry_count(reg), 3);            /* all three known */
    int in_memory = 0;
    registry_each(reg, 0, 0, s_ids, (char[400]) { 0 });
    char all[400] = "";
    in_memory = registry_each(reg, 0, 0, s_ids, all);
    CHECK_EQ_INT(in_memory, 1);                      /* the finished ones left memory */
    CHECK_EQ_STR(all, "open-1");

    uint64_t before = journal_durable_lsn(j);
    CHECK_EQ_INT(s_step(reg, j, "old-1", DEPOSIT_EV_SEEN_COMPLETED, 0), REGISTRY_SAME);
    CHECK_EQ_INT(s_step(reg, j, "old-1", DEPOSIT_EV_SEEN_PENDING, 0), REGISTRY_SAME);
    CHECK_EQ_INT(s_step(reg, j, "rej-1", DEPOSIT_EV_SEEN_FAILED, 0), REGISTRY_SAME);
    CHECK_EQ_INT(s_step(reg, j, "old-1", DEPOSIT_EV_CONFIRMED, 0), REGISTRY_ILLEGAL);
    CHECK_EQ_INT(journal_durable_lsn(j), before);    /* nothing journaled, nothing moved */
    CHECK_EQ_INT(registry_each(reg, 0, 0, s_ids, (char[400]) { 0 }), 1);   /* and still out of memory */

    /* a restart from the snapshot knows them the same way */
    registry_destroy(&reg);
    journal_destroy(&j);
    char err[300];
    checkpoint_info_t info;
    reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL && info.snapshot_lsn > 0);
    j = journal_open(s_dir, NULL, err, sizeof err);
    before = journal_durable_lsn(j);
    CHECK_EQ_INT(s_step(reg, j, "old-1", DEPOSIT_EV_SEEN_COMPLETED, 0), REGISTRY_SAME);
    CHECK_EQ_INT(journal_durable_lsn(j), before);
    CHECK_EQ_INT(s_step(reg, j, "new-1", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_MOVED);
    registry_destroy(&reg);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

static uint64_t s_collide(const char *tx_id)
{
    (void) tx_id;
    return 42;   /* every id the same key */
}

/* Every id its own key, but "u-3" and "b-3" those of "u-1" and "b-1". */
static uint64_t s_collide_u(const char *tx_id)
{
    const char *as = strcmp(tx_id, "u-3") == 0 ? "u-1" : strcmp(tx_id, "b-3") == 0 ? "b-1" : tx_id;
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *) as; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

static void test_a_new_deposit_colliding_in_hash_with_an_evicted_one_is_still_new(void)
{
    findex_set_hash(s_collide);
    journal_t *j = s_fresh("collide");
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_finish(reg, j, "old-a", 100001);
    s_finish(reg, j, "old-b", 100002);
    s_snapshot(reg, j);
    CHECK_EQ_INT(registry_each(reg, 0, 0, s_ids, (char[400]) { 0 }), 0);
    /* both old ones are still told apart (each hit is confirmed by its whole id) */
    registry_entry_t e;
    CHECK_EQ_INT(registry_get(reg, "old-a", &e), 0);
    CHECK_EQ_STR(e.view.tx_id, "old-a");
    CHECK_EQ_INT(e.view.login, 100001);
    CHECK_EQ_INT(registry_get(reg, "old-b", &e), 0);
    CHECK_EQ_INT(e.view.login, 100002);
    CHECK_EQ_INT(registry_get(reg, "new-c", &e), -1);
    /* a new deposit with the same key is credited like any new one */
    CHECK_EQ_INT(s_step(reg, j, "new-c", DEPOSIT_EV_SEEN_COMPLETED, 100003), REGISTRY_MOVED);
    CHECK_EQ_INT(s_step(reg, j, "new-c", DEPOSIT_EV_CONFIRMED, 0), REGISTRY_MOVED);
    CHECK_EQ_INT(s_step(reg, j, "new-c", DEPOSIT_EV_CREDIT_OK, 0), REGISTRY_MOVED);
    CHECK_EQ_INT(registry_get(reg, "new-c", &e), 0);
    CHECK_EQ_INT(e.view.state, DEPOSIT_CREDITED);
    /* and once indexed too, the three stay apart */
    CHECK_EQ_INT(s_step(reg, j, "new-c", DEPOSIT_EV_NOTICE_SENT, 0), REGISTRY_MOVED);
    s_snapshot(reg, j);
    uint64_t before = journal_durable_lsn(j);
    CHECK_EQ_INT(s_step(reg, j, "new-c", DEPOSIT_EV_SEEN_COMPLETED, 0), REGISTRY_SAME);
    CHECK_EQ_INT(s_step(reg, j, "old-a", DEPOSIT_EV_SEEN_COMPLETED, 0), REGISTRY_SAME);
    CHECK_EQ_INT(journal_durable_lsn(j), before);
    CHECK_EQ_INT(s_step(reg, j, "new-d", DEPOSIT_EV_SEEN_COMPLETED, 100003), REGISTRY_MOVED);
    CHECK_EQ_INT(registry_get(reg, "new-c", &e), 0);
    CHECK_EQ_INT(e.view.login, 100003);
    CHECK_EQ_INT(registry_count(reg), 4);
    registry_destroy(&reg);
    journal_destroy(&j);
    findex_set_hash(NULL);
    support_tmp_rmrf(s_dir);
}

static void test_history_and_lookup_read_evicted_deposits_back_after_their_segments_are_archived(void)
{
    journal_t *j = s_fresh("history");
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_finish(reg, j, "h-1", 100001);
    s_finish(reg, j, "h-2", 100002);
    s_finish(reg, j, "h-3", 100001);
    s_snapshot(reg, j);
    CHECK_EQ_INT(s_step(reg, j, "h-4", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_MOVED);   /* open */
    s_finish(reg, j, "h-5", 100001);                                                        /* in memory */
    s_snapshot(reg, j);   /* h-5 indexed too; h-1..h-3's segments retired */
    s_finish(reg, j, "h-6", 100001);                                                        /* in memory */
    CHECK(s_archived() > 0);
    char ids[400] = "";
    CHECK_EQ_INT(registry_each(reg, 100001, 0, s_ids, ids), 5);
    CHECK_EQ_STR(ids, "h-6,h-5,h-4,h-3,h-1");        /* newest first, memory and index merged */
    ids[0] = '\0';
    CHECK_EQ_INT(registry_each(reg, 100001, 2, s_ids, ids), 2);
    CHECK_EQ_STR(ids, "h-6,h-5");
    ids[0] = '\0';
    CHECK_EQ_INT(registry_each(reg, 100002, 0, s_ids, ids), 1);
    CHECK_EQ_STR(ids, "h-2");
    registry_entry_t e;
    CHECK_EQ_INT(registry_get(reg, "h-1", &e), 0);
    CHECK_EQ_INT(e.view.state, DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(e.view.credit_minor, 1050);
    CHECK_EQ_INT(e.view.ticket, 9003);
    CHECK_EQ_STR(e.view.amount, "10.5");
    CHECK(e.view.created_ms > 0 && e.last_lsn > 0);
    registry_destroy(&reg);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

static void test_an_alert_on_an_evicted_deposit_brings_it_back_and_it_leaves_again(void)
{
    journal_t *j = s_fresh("alert");
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_finish(reg, j, "a-1", 100001);
    s_snapshot(reg, j);
    CHECK_EQ_INT(registry_each(reg, 0, 0, s_ids, (char[400]) { 0 }), 0);
    record_t a;
    record_init(&a, RECORD_ALERT);
    snprintf(a.tx_id, sizeof a.tx_id, "a-1");
    snprintf(a.alert, sizeof a.alert, "%s", record_alert_name(RECORD_ALERT_FAILED_AFTER_CREDIT));
    char err[200];
    CHECK_EQ_INT(registry_alert(reg, j, &a, err, sizeof err), REGISTRY_MOVED);
    CHECK_EQ_INT(registry_alert(reg, j, &a, err, sizeof err), REGISTRY_SAME);   /* raised once */
    CHECK_EQ_INT(registry_each(reg, 0, 0, s_ids, (char[400]) { 0 }), 1);        /* back in memory */
    CHECK_EQ_INT(registry_count(reg), 1);
    char ids[400] = "";
    CHECK_EQ_INT(registry_each(reg, 100001, 0, s_ids, ids), 1);                 /* listed once */
    s_snapshot(reg, j);
    CHECK_EQ_INT(registry_each(reg, 0, 0, s_ids, (char[400]) { 0 }), 0);        /* gone again */
    registry_entry_t e;
    CHECK_EQ_INT(registry_get(reg, "a-1", &e), 0);
    CHECK_EQ_INT(e.view.alert_count, 1);
    CHECK(e.alerts_raised != 0);
    CHECK_EQ_INT(registry_alert(reg, j, &a, err, sizeof err), REGISTRY_SAME);
    CHECK_EQ_INT(registry_count(reg), 1);
    registry_destroy(&reg);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

/* A deposit finished and indexed, then its file ext ("dep": the store, "idx": the index) cut to keep
 * bytes under the running registry: a repeat of it is refused (503), nothing journaled, the registry
 * not failed. A new deposit whose hash the run's filter (built from the run as it was checked at open)
 * rules out is taken; "u-3", whose hash is u-1's (s_collide_u), cannot be told from u-1 without the
 * lost bytes: refused, nothing journaled, and a listing says it could not read the index. */
static void s_unreadable(const char *name, const char *ext, off_t keep)
{
    findex_set_hash(s_collide_u);
    journal_t *j = s_fresh(name);
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_finish(reg, j, "u-1", 100001);
    uint64_t lsn = s_snapshot(reg, j);
    char path[400];
    snprintf(path, sizeof path, "%s/finished/%020llu.%s", s_dir, (unsigned long long) lsn, ext);
    CHECK_EQ_INT(truncate(path, keep), 0);
    uint64_t before = journal_durable_lsn(j);
    CHECK_EQ_INT(s_step(reg, j, "u-1", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_FAILED);
    CHECK_EQ_INT(journal_durable_lsn(j), before);
    CHECK_EQ_INT(registry_failed(reg), 0);   /* not the journal's failure: the next webhook is taken */
    CHECK_EQ_INT(s_step(reg, j, "u-2", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_MOVED);
    before = journal_durable_lsn(j);
    CHECK_EQ_INT(s_step(reg, j, "u-3", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_FAILED);
    CHECK_EQ_INT(journal_durable_lsn(j), before);
    /* a listing says it could not read the index (never a short list taken for the whole) */
    CHECK_EQ_INT(registry_each(reg, 100001, 10, s_ids, (char[400]) { 0 }), -1);
    CHECK_EQ_INT(registry_each_all(reg, s_ids, (char[400]) { 0 }), -1);
    registry_destroy(&reg);
    journal_destroy(&j);
    findex_set_hash(NULL);
    support_tmp_rmrf(s_dir);
}

static void test_an_unreadable_store_refuses_rather_than_guesses(void)
{
    /* u-1's key is there but its entry cannot be read: neither "a repeat" nor "new" can be said */
    s_unreadable("unreadable", "dep", 20);
}

static void test_an_unreadable_key_array_refuses_rather_than_takes_the_deposit_for_new(void)
{
    /* the open index loses its arrays under kasa (read with pread: the next lookup finds them gone):
     * whether a deposit its filter cannot rule out is in it cannot be told */
    s_unreadable("unreadable-keys", "idx", FINDEX_INDEX_HDR + 8);
}

static void test_a_damaged_index_is_not_opened_and_the_start_falls_back(void)
{
    journal_t *j = s_fresh("damaged");
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_finish(reg, j, "d-1", 100001);
    uint64_t lsn = s_snapshot(reg, j);
    registry_destroy(&reg);
    journal_destroy(&j);
    char path[400], err[300];
    snprintf(path, sizeof path, "%s/finished/%020llu.idx", s_dir, (unsigned long long) lsn);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, "X", 1, FINDEX_INDEX_HDR + 3) == 1);
    close(fd);
    findex_t *x = findex_open(s_dir, lsn, err, sizeof err);
    CHECK(x == NULL && strstr(err, "checksum") != NULL);
    checkpoint_info_t info;
    reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL);
    CHECK_EQ_INT(info.snapshot_lsn, 0);   /* the whole journal instead */
    registry_entry_t e;
    CHECK_EQ_INT(registry_get(reg, "d-1", &e), 0);
    CHECK_EQ_INT(e.view.state, DEPOSIT_NOTIFIED);
    registry_destroy(&reg);
    support_tmp_rmrf(s_dir);
}

/* An index of n keys written directly: key i has hash (i / run) * 2 + 2 (runs of run equal hashes;
 * odd hashes and 0 are absent). Its LSN. */
static uint64_t s_write_keys(uint64_t lsn, size_t n, size_t run)
{
    char err[300];
    findex_writer_t *w = findex_write_begin(s_dir, lsn, NULL, err, sizeof err);
    CHECK(w != NULL);
    for (size_t i = 0; w && i < n; i++) {
        char blob[32];
        int len = snprintf(blob, sizeof blob, "entry-%zu", i);
        CHECK_EQ_INT(findex_write_add(w, (uint64_t) (i / run) * 2 + 2, 100000 + i % 7, i + 1, blob, (size_t) len, err,
                                      sizeof err), 0);
    }
    uint64_t count = 0;
    uint32_t crc = 0;
    CHECK_EQ_INT(findex_write_commit(&w, &count, &crc, err, sizeof err), 0);
    CHECK_EQ_INT(count, n);
    return lsn;
}

/* The locs findex_find gives for hash (up to cap into locs, if given): how many, or -1. */
typedef struct {
    uint64_t *locs;
    size_t cap, n;
} s_found_t;

static int s_found_one(void *arg, uint64_t loc)
{
    s_found_t *f = arg;
    if (f->locs && f->n < f->cap)
        f->locs[f->n] = loc;
    f->n++;
    return 0;
}

static long s_find(const findex_t *x, uint64_t hash, uint64_t *locs, size_t cap)
{
    s_found_t f = { locs, cap, 0 };
    return findex_find(x, hash, s_found_one, &f) < 0 ? -1 : (long) f.n;
}

/* The loc of the key i-th in hash order (the one test writer's keys are hash-ordered by i). */
typedef struct {
    size_t want, at;
    uint64_t hash, loc;
} s_nth_t;

static int s_nth_one(void *arg, const findex_key_t *k)
{
    s_nth_t *n = arg;
    if (n->at++ != n->want)
        return 0;
    n->hash = k->hash;
    n->loc = k->loc;
    return 1;
}

static uint64_t s_nth_loc(const findex_t *x, size_t i)
{
    s_nth_t n = { i, 0, 0, 0 };
    CHECK_EQ_INT(findex_each_key(x, s_nth_one, &n), 1);
    return n.loc;
}

static void test_a_lookup_through_the_fences_finds_every_run_whole(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "findex", "fences");
    mkdir(s_dir, 0700);
    char err[300];
    /* runs of 300 equal hashes cross the 256-key fences; runs of 1 fill whole windows */
    size_t shapes[][2] = { { 5000, 300 }, { 3000, 1 }, { 257, 257 }, { 1, 1 } };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t n = shapes[s][0], run = shapes[s][1];
        uint64_t lsn = s_write_keys(10 + s, n, run);
        findex_t *x = findex_open(s_dir, lsn, err, sizeof err);
        CHECK(x != NULL);
        if (!x)
            continue;
        int bad = 0;
        for (uint64_t h = 0; h <= (uint64_t) ((n - 1) / run) * 2 + 3; h++) {
            long got = s_find(x, h, NULL, 0);
            size_t want = 0, want_first = 0;
            if (h >= 2 && h % 2 == 0 && (h - 2) / 2 * run < n) {
                want_first = (size_t) (h - 2) / 2 * run;
                want = n - want_first < run ? n - want_first : run;
            }
            bad += got != (long) want;
        }
        CHECK_EQ_INT(bad, 0);
        findex_close(&x);
    }
    support_tmp_rmrf(s_dir);
}

static void test_an_absent_hash_is_answered_without_reading_the_run(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "findex", "filter");
    mkdir(s_dir, 0700);
    char err[300];
    size_t n = 20000;   /* keys 2, 4, ..., 2n: every odd hash is absent */
    uint64_t lsn = s_write_keys(20, n, 1);
    findex_t *x = findex_open(s_dir, lsn, err, sizeof err);
    CHECK(x != NULL);
    if (x) {
        uint64_t before = findex_key_reads();
        long found = 0;
        for (uint64_t h = 1; h <= 2 * n + 1; h += 2)
            found += s_find(x, h, NULL, 0);
        uint64_t absent_reads = findex_key_reads() - before;
        CHECK_EQ_INT(found, 0);
        /* about 1% of absent hashes pass a filter of 10 bits a key; without it every lookup reads */
        CHECK(absent_reads * 100 <= (uint64_t) (n + 1) * 3);
        before = findex_key_reads();
        long missed = 0;
        for (uint64_t h = 2; h <= 2 * n; h += 2)
            missed += s_find(x, h, NULL, 0) != 1;
        CHECK_EQ_INT(missed, 0);   /* a filter never hides a key */
        CHECK_EQ_INT(findex_key_reads() - before, n);
        findex_close(&x);
    }
    support_tmp_rmrf(s_dir);
}

static void test_an_open_index_is_shared_and_checked_once_a_closed_one_again(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "findex", "shared");
    mkdir(s_dir, 0700);
    char err[300], path[400];
    uint64_t lsn = s_write_keys(7, 600, 3);
    findex_t *a = findex_open(s_dir, lsn, err, sizeof err);
    CHECK(a != NULL);
    /* damaged in place behind kasa's back, its modification time put back: the file's identity is
     * unchanged, so a second open while the first is held shares it without reading it again */
    snprintf(path, sizeof path, "%s/finished/%020llu.idx", s_dir, (unsigned long long) lsn);
    struct stat st;
    CHECK_EQ_INT(stat(path, &st), 0);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, "X", 1, FINDEX_INDEX_HDR + 8 * 1 + 16 * 100 + 3) == 1);
    close(fd);
    struct timespec times[2] = { st.st_atim, st.st_mtim };
    CHECK_EQ_INT(utimensat(AT_FDCWD, path, times, 0), 0);
    findex_t *b = findex_open(s_dir, lsn, err, sizeof err);
    CHECK(b != NULL);   /* opened on the shared run: the damage was not read */
    findex_close(&b);
    CHECK(b == NULL);
    CHECK_EQ_INT(s_find(a, 2, NULL, 0), 3);   /* the first share still works */
    findex_close(&a);
    /* no share left: the next open checks the whole file and finds the damage */
    findex_t *c = findex_open(s_dir, lsn, err, sizeof err);
    CHECK(c == NULL && strstr(err, "checksum") != NULL);
    findex_close(&c);
    support_tmp_rmrf(s_dir);
}

/* An index merged from a base and added deposits whose arrays run over many of the writer's 1 MiB
 * buffers (70,000 keys of 16 bytes, then as many logins of 24, each side): the checksum taken a
 * buffer at a time is the checksum of the file's bytes, the reopened index checks out, and every key
 * is where it belongs (the dropped ones gone, the added ones found with their entries). */
static void test_an_index_merged_over_many_buffers_is_whole_and_checks_out(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "findex", "buffers");
    mkdir(s_dir, 0700);
    char err[300], path[400];
    enum { N = 70000 };
    uint64_t lsn = s_write_keys(40, N, 1);   /* hashes 2, 4, ... 2N */
    findex_t *b = findex_open(s_dir, lsn, err, sizeof err);
    CHECK(b != NULL);
    if (!b)
        return;
    findex_writer_t *w = findex_write_begin(s_dir, 50, b, err, sizeof err);
    CHECK(w != NULL);
    for (size_t i = 0; w && i < N; i++) {
        char blob[32];
        int len = snprintf(blob, sizeof blob, "added-%zu", i);
        CHECK_EQ_INT(findex_write_add(w, (uint64_t) i * 2 + 3, 200000 + i % 11, N + i + 1, blob, (size_t) len, err,
                                      sizeof err), 0);
    }
    for (size_t i = 0; w && i < N; i += 70)   /* every 70th base deposit leaves */
        findex_write_drop(w, s_nth_loc(b, i));
    uint64_t count = 0;
    uint32_t crc = 0;
    CHECK_EQ_INT(findex_write_commit(&w, &count, &crc, err, sizeof err), 0);
    CHECK_EQ_INT(count, 2 * N - N / 70);
    findex_close(&b);
    /* the trailer's checksum is that of every byte before it */
    snprintf(path, sizeof path, "%s/finished/%020llu.idx", s_dir, 50ull);
    FILE *f = fopen(path, "rb");
    struct stat st;
    CHECK(f != NULL && stat(path, &st) == 0);
    uint8_t *all = malloc((size_t) st.st_size);
    CHECK(all && fread(all, 1, (size_t) st.st_size, f) == (size_t) st.st_size);
    fclose(f);
    CHECK_EQ_INT(jf_crc32c(0, all, (size_t) st.st_size - 8), jf_get32(all + st.st_size - 8));
    CHECK_EQ_INT(crc, jf_get32(all + st.st_size - 8));
    free(all);
    findex_t *x = findex_open(s_dir, 50, err, sizeof err);
    CHECK(x != NULL);
    if (!x)
        return;
    size_t bad = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t loc;
        bad += s_find(x, i * 2 + 2, NULL, 0) != (i % 70 ? 1 : 0);
        if (s_find(x, i * 2 + 3, &loc, 1) != 1) {
            bad++;
            continue;
        }
        uint8_t *blob;
        size_t len;
        char want[32];
        snprintf(want, sizeof want, "added-%llu", (unsigned long long) i);
        if (findex_read(x, loc, &blob, &len, err, sizeof err) != 0)
            bad++;
        else
            bad += len != strlen(want) || memcmp(blob, want, len) != 0, free(blob);
    }
    CHECK_EQ_INT(bad, 0);
    findex_login_it_t *it = findex_login_begin(x, 200003);   /* i % 11 == 3: newest first */
    findex_login_t l;
    size_t n = 0;
    uint64_t last = UINT64_MAX;
    while (findex_login_next(it, &l) == 1) {
        bad += l.login != 200003 || l.order >= last;
        last = l.order;
        n++;
    }
    findex_login_end(&it);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(n, (N - 3 + 10) / 11);
    findex_close(&x);
    support_tmp_rmrf(s_dir);
}

/* The bytes of the index files (DIR/finished/NNNN.idx) and how many there are. */
static uint64_t s_idx_bytes(int *files)
{
    char sub[400];
    snprintf(sub, sizeof sub, "%s/finished", s_dir);
    DIR *d = opendir(sub);
    uint64_t bytes = 0;
    *files = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        char path[700];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", sub, de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".idx") == 0 && stat(path, &st) == 0) {
            bytes += (uint64_t) st.st_size;
            (*files)++;
        }
    }
    if (d)
        closedir(d);
    return bytes;
}

/* Twenty-four snapshots each moving three deposits: each writes a small top run (what finished since the
 * last one), runs merge by tier so the index keeps a few, every deposit is still found (a repeat moves
 * nothing), a login's history is newest first across runs, a deposit revived from a deep run leaves it
 * and is listed once, runs no kept snapshot needs are removed, and a restart reads the same. */
static void test_each_snapshot_writes_a_small_run_and_runs_merge_by_tier(void)
{
    findex_set_merge_unit(4);
    journal_t *j = s_fresh("levelled");
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    enum { ROUNDS = 24, PER = 3 };
    uint64_t written = 0, whole = 0, lsn = 0;
    size_t most_runs = 0;
    char err[300];
    for (int i = 0; i < ROUNDS; i++) {
        for (int k = 0; k < PER; k++) {
            char tx[32];
            snprintf(tx, sizeof tx, "L-%02d-%d", i, k);
            s_finish(reg, j, tx, 100001 + (uint64_t) k);
        }
        lsn = s_snapshot(reg, j);
        findex_t *x = findex_open(s_dir, lsn, err, sizeof err);
        CHECK(x != NULL);
        if (!x)
            break;
        CHECK_EQ_INT(findex_count(x), (uint64_t) PER * (uint64_t) (i + 1));
        if (findex_runs(x) > most_runs)
            most_runs = findex_runs(x);
        char path[400];
        struct stat st;
        snprintf(path, sizeof path, "%s/finished/%020llu.idx", s_dir, (unsigned long long) lsn);
        CHECK_EQ_INT(stat(path, &st), 0);
        written += (uint64_t) st.st_size;
        whole += FINDEX_INDEX_HDR + 8 + 8ull * (uint64_t) (i + 1) + 40ull * PER * (uint64_t) (i + 1);   /* one whole index */
        findex_close(&x);
    }
    /* tiers of 4: fewer than 4 runs a tier, 72 deposits climb four tiers at most */
    CHECK(most_runs >= 3 && most_runs <= 12);
    CHECK(written * 2 < whole);
    int files = 0;
    s_idx_bytes(&files);
    CHECK(files <= 3 * 12);
    /* every one found, repeats move nothing */
    uint64_t before = journal_durable_lsn(j);
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++)
        for (int k = 0; k < PER; k++) {
            char tx[32];
            snprintf(tx, sizeof tx, "L-%02d-%d", i, k);
            bad += s_step(reg, j, tx, DEPOSIT_EV_SEEN_COMPLETED, 0) != REGISTRY_SAME;
        }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(journal_durable_lsn(j), before);
    char ids[400] = "";
    CHECK_EQ_INT(registry_each(reg, 100002, 4, s_ids, ids), 4);
    CHECK_EQ_STR(ids, "L-23-1,L-22-1,L-21-1,L-20-1");
    /* an alert revives a deposit of the oldest run; the next snapshot drops its old copy */
    record_t a;
    record_init(&a, RECORD_ALERT);
    snprintf(a.tx_id, sizeof a.tx_id, "L-00-0");
    snprintf(a.alert, sizeof a.alert, "%s", record_alert_name(RECORD_ALERT_FAILED_AFTER_CREDIT));
    CHECK_EQ_INT(registry_alert(reg, j, &a, err, sizeof err), REGISTRY_MOVED);
    CHECK_EQ_INT(registry_count(reg), ROUNDS * PER);
    lsn = s_snapshot(reg, j);
    CHECK_EQ_INT(registry_count(reg), ROUNDS * PER);
    ids[0] = '\0';
    CHECK_EQ_INT(registry_each(reg, 100001, 0, s_ids, (char[400]) { 0 }), ROUNDS);   /* listed once */
    registry_entry_t e;
    CHECK_EQ_INT(registry_get(reg, "L-00-0", &e), 0);
    CHECK_EQ_INT(e.view.alert_count, 1);
    /* a restart from the snapshot reads the same */
    registry_destroy(&reg);
    journal_destroy(&j);
    checkpoint_info_t info;
    reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL && info.snapshot_lsn == lsn);
    if (reg) {
        CHECK_EQ_INT(registry_count(reg), ROUNDS * PER);
        CHECK_EQ_INT(registry_get(reg, "L-00-0", &e), 0);
        CHECK_EQ_INT(e.view.alert_count, 1);
        CHECK_EQ_INT(registry_get(reg, "L-13-2", &e), 0);
        CHECK_EQ_INT(e.view.state, DEPOSIT_NOTIFIED);
        CHECK_EQ_INT(registry_each(reg, 100003, 0, s_ids, (char[400]) { 0 }), ROUNDS);
    }
    registry_destroy(&reg);
    findex_set_merge_unit(0);
    support_tmp_rmrf(s_dir);
}

/* Two runs (two snapshots, no merge), the older one's arrays lost under the running registry: a
 * deposit of the newer run is still recognised (found there first), but one of the older run, or a new
 * one, cannot be told from new: refused (503), nothing journaled. */
static void test_an_unreadable_run_below_refuses_what_only_it_could_answer(void)
{
    findex_set_hash(s_collide_u);   /* "b-3" collides with b-1: the older run's filter cannot rule it out */
    journal_t *j = s_fresh("unreadable-below");
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_finish(reg, j, "b-1", 100001);
    uint64_t older = s_snapshot(reg, j);
    s_finish(reg, j, "b-2", 100001);
    uint64_t newer = s_snapshot(reg, j);
    char path[400], err[300];
    findex_t *x = findex_open(s_dir, newer, err, sizeof err);
    CHECK(x != NULL && findex_runs(x) == 2 && findex_run_lsn(x, 1) == older);
    findex_close(&x);
    snprintf(path, sizeof path, "%s/finished/%020llu.idx", s_dir, (unsigned long long) older);
    CHECK_EQ_INT(truncate(path, FINDEX_INDEX_HDR + 8), 0);
    uint64_t before = journal_durable_lsn(j);
    CHECK_EQ_INT(s_step(reg, j, "b-2", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_SAME);
    CHECK_EQ_INT(s_step(reg, j, "b-1", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_FAILED);
    CHECK_EQ_INT(s_step(reg, j, "b-3", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_FAILED);
    CHECK_EQ_INT(journal_durable_lsn(j), before);
    CHECK_EQ_INT(registry_failed(reg), 0);
    CHECK_EQ_INT(registry_each(reg, 100001, 10, s_ids, (char[400]) { 0 }), -1);   /* not a short list */
    CHECK_EQ_INT(s_step(reg, j, "b-4", DEPOSIT_EV_SEEN_COMPLETED, 100001), REGISTRY_MOVED);   /* ruled out */
    registry_destroy(&reg);
    journal_destroy(&j);
    findex_set_hash(NULL);
    support_tmp_rmrf(s_dir);
}

/* Rewrites DIR/finished/NNNN.idx as kasa wrote an index before it was levelled (version 1: the same
 * layout with nothing below and nothing dropped), its trailer's checksum made again. */
static void s_make_version_1(uint64_t lsn)
{
    char path[400];
    snprintf(path, sizeof path, "%s/finished/%020llu.idx", s_dir, (unsigned long long) lsn);
    FILE *f = fopen(path, "r+b");
    struct stat st;
    CHECK(f != NULL && stat(path, &st) == 0);
    if (!f)
        return;
    uint8_t *all = malloc((size_t) st.st_size);
    CHECK(all && fread(all, 1, (size_t) st.st_size, f) == (size_t) st.st_size);
    CHECK_EQ_INT(jf_get32(all + 40), 0);   /* nothing below, nothing dropped */
    CHECK_EQ_INT(jf_get32(all + 44), 0);
    jf_put32(all + 4, 1);
    jf_put32(all + st.st_size - 8, jf_crc32c(0, all, (size_t) st.st_size - 8));
    rewind(f);
    CHECK(fwrite(all, 1, (size_t) st.st_size, f) == (size_t) st.st_size);
    fclose(f);
    free(all);
}

static void test_an_index_of_the_previous_format_is_read_as_one_run(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "findex", "version1");
    mkdir(s_dir, 0700);
    char err[300];
    uint64_t old = s_write_keys(20, 3000, 1);   /* hashes 2, 4, ... 6000 */
    s_make_version_1(old);
    findex_t *b = findex_open(s_dir, old, err, sizeof err);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK_EQ_INT(findex_runs(b), 1);
    CHECK_EQ_INT(findex_count(b), 3000);
    CHECK_EQ_INT(s_find(b, 2000, NULL, 0), 1);
    /* the next snapshot's index stands on it: a small run of its own, one old deposit dropped */
    findex_writer_t *w = findex_write_begin(s_dir, 30, b, err, sizeof err);
    CHECK(w != NULL);
    for (size_t i = 0; w && i < 10; i++)
        CHECK_EQ_INT(findex_write_add(w, 7 + 2 * i, 100005, 5000 + i, "new", 3, err, sizeof err), 0);
    findex_write_drop(w, s_nth_loc(b, 999));   /* hash 2000 */
    uint64_t count = 0;
    uint32_t crc = 0;
    CHECK_EQ_INT(findex_write_commit(&w, &count, &crc, err, sizeof err), 0);
    CHECK_EQ_INT(count, 3009);
    findex_close(&b);
    findex_t *x = findex_open(s_dir, 30, err, sizeof err);
    CHECK(x != NULL);
    if (!x)
        return;
    CHECK_EQ_INT(findex_runs(x), 2);
    CHECK_EQ_INT(findex_run_lsn(x, 1), old);
    CHECK_EQ_INT(findex_count(x), 3009);
    CHECK_EQ_INT(findex_crc(x), crc);
    CHECK_EQ_INT(s_find(x, 2000, NULL, 0), 0);   /* dropped */
    CHECK_EQ_INT(s_find(x, 2002, NULL, 0), 1);   /* the old run's */
    uint64_t loc = 0;
    CHECK_EQ_INT(s_find(x, 9, &loc, 1), 1);      /* the new run's */
    uint8_t *blob;
    size_t len;
    CHECK_EQ_INT(findex_read(x, loc, &blob, &len, err, sizeof err), 0);
    CHECK(len == 3 && memcmp(blob, "new", 3) == 0);
    free(blob);
    CHECK_EQ_INT(findex_read(x, s_nth_loc(x, 10), &blob, &len, err, sizeof err), 0);   /* an old store */
    CHECK(len > 6 && memcmp(blob, "entry-", 6) == 0);
    free(blob);
    findex_close(&x);
    support_tmp_rmrf(s_dir);
}

/* A run named by the index above it but not the one on disk (another of its name: damaged, replaced)
 * is not taken: the index does not open, rather than answer without it. */
static void test_an_index_whose_run_below_is_not_the_one_it_names_does_not_open(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "findex", "manifest");
    mkdir(s_dir, 0700);
    char err[300];
    uint64_t old = s_write_keys(20, 300, 1);
    findex_t *b = findex_open(s_dir, old, err, sizeof err);
    CHECK(b != NULL);
    findex_writer_t *w = findex_write_begin(s_dir, 30, b, err, sizeof err);
    CHECK_EQ_INT(findex_write_add(w, 1, 1, 1, "x", 1, err, sizeof err), 0);
    uint64_t count;
    uint32_t crc;
    CHECK_EQ_INT(findex_write_commit(&w, &count, &crc, err, sizeof err), 0);
    findex_close(&b);
    s_write_keys(20, 299, 1);   /* run 20 written again, one deposit short */
    findex_t *x = findex_open(s_dir, 30, err, sizeof err);
    CHECK(x == NULL && strstr(err, "stands on run 20") != NULL);
    findex_close(&x);
    support_tmp_rmrf(s_dir);
}

int main(void)
{
    RUN(test_a_repeat_of_an_evicted_deposit_is_answered_and_journals_nothing);
    RUN(test_a_new_deposit_colliding_in_hash_with_an_evicted_one_is_still_new);
    RUN(test_history_and_lookup_read_evicted_deposits_back_after_their_segments_are_archived);
    RUN(test_an_alert_on_an_evicted_deposit_brings_it_back_and_it_leaves_again);
    RUN(test_an_unreadable_store_refuses_rather_than_guesses);
    RUN(test_an_unreadable_key_array_refuses_rather_than_takes_the_deposit_for_new);
    RUN(test_a_damaged_index_is_not_opened_and_the_start_falls_back);
    RUN(test_a_lookup_through_the_fences_finds_every_run_whole);
    RUN(test_an_absent_hash_is_answered_without_reading_the_run);
    RUN(test_an_open_index_is_shared_and_checked_once_a_closed_one_again);
    RUN(test_an_index_merged_over_many_buffers_is_whole_and_checks_out);
    RUN(test_each_snapshot_writes_a_small_run_and_runs_merge_by_tier);
    RUN(test_an_index_of_the_previous_format_is_read_as_one_run);
    RUN(test_an_unreadable_run_below_refuses_what_only_it_could_answer);
    RUN(test_an_index_whose_run_below_is_not_the_one_it_names_does_not_open);
    return check_done();
}
