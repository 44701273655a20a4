/* test_history.c — old history for the offline commands: every deposit known is listed (those in
 * memory and those only in the index of finished deposits, newest first) and looked up with the LSN of
 * its first record; `kasa replay --all` still shows finished deposits after their records were pruned
 * from the archive; an index that cannot be read is "cannot tell", never "unknown" or a short list
 * taken for the whole (the admin panel's search answers 503 then, and finds a deposit finished long
 * ago by its transaction id or login); a reader meets a segment retired to the archive between its listing and its
 * opening and reads it from there; `kasa journal verify` checks the index of finished deposits (every
 * deposit resolves, every store whole) and reports a store a kill left without an index as harmless. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/checkpoint.h"
#include "actors/registry.h"
#include "journal/findex.h"
#include "journal/fio.h"
#include "journal/jformat.h"
#include "journal/journal.h"
#include "schema/log.h"
#include "schema/record.h"
#include "tests/check.h"
#include "tests/unit/support_tmp.h"
#include "tools/commands.h"
#include "web/admin.h"

static char s_dir[200];
static config_t s_cfg;
static char s_out[1 << 16];   /* what the last command printed on stdout */

static journal_t *s_open(const char *name)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "history", name);
    memset(&s_cfg, 0, sizeof s_cfg);
    snprintf(s_cfg.journal_dir, sizeof s_cfg.journal_dir, "%s", s_dir);
    s_cfg.max_deposits = 100;
    journal_opts_t o = { .segment_bytes = 1024 };   /* several segments, for the archive */
    char err[300];
    journal_t *j = journal_open(s_dir, &o, err, sizeof err);
    CHECK(j != NULL);
    return j;
}

/* Journals deposit tx on login through each event of evs, in order (0-terminated). */
static void s_events(registry_t *reg, journal_t *j, const char *tx, uint64_t login, const deposit_event_t *evs)
{
    for (; *evs; evs++) {
        record_t r;
        record_init(&r, RECORD_DEPOSIT);
        snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
        r.event = *evs;
        r.login = evs[0] == DEPOSIT_EV_SEEN_COMPLETED || evs[0] == DEPOSIT_EV_SEEN_FAILED ? login : 0;
        snprintf(r.status, sizeof r.status, "%s", *evs == DEPOSIT_EV_SEEN_FAILED ? "Failed" : "Completed");
        snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
        snprintf(r.address, sizeof r.address, "THistory-%s", tx);
        snprintf(r.amount, sizeof r.amount, "20");
        r.credit_minor = 1950;
        r.digits = 2;
        r.ticket = *evs == DEPOSIT_EV_CREDIT_OK ? 4000 + (uint64_t) tx[2] : 0;
        char err[200];
        CHECK_EQ_INT(registry_commit(reg, j, &r, NULL, NULL, NULL, err, sizeof err), REGISTRY_MOVED);
    }
}

static const deposit_event_t s_credited[] = { DEPOSIT_EV_SEEN_COMPLETED, DEPOSIT_EV_CONFIRMED, DEPOSIT_EV_CREDIT_OK,
                                              DEPOSIT_EV_NOTICE_SENT, 0 };
static const deposit_event_t s_failed[] = { DEPOSIT_EV_SEEN_FAILED, 0 };
static const deposit_event_t s_seen[] = { DEPOSIT_EV_SEEN_COMPLETED, 0 };

/* h-1, h-2 credited on 100001 and h-3 rejected (no login), all indexed by a snapshot and out of
 * memory; h-4 open and h-5 credited after the snapshot (both in memory). The journal is closed. */
static void s_history(const char *name)
{
    journal_t *j = s_open(name);
    registry_t *reg = checkpoint_registry.create(&s_cfg);
    s_events(reg, j, "h-1", 100001, s_credited);
    s_events(reg, j, "h-2", 100001, s_credited);
    s_events(reg, j, "h-3", 0, s_failed);
    s_events(reg, j, "h-4", 100001, s_seen);
    char err[300];
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(registry_forget_finished(reg, lsn, err, sizeof err), 0);
    s_events(reg, j, "h-5", 100001, s_credited);
    registry_destroy(&reg);
    journal_destroy(&j);
}

static void s_ids(void *arg, const registry_entry_t *e)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 200 - n, "%s%s", n ? "," : "", e->view.tx_id);
}

/* Runs a kasa verb in this process with stdout captured into s_out (stderr left alone). Its status. */
static int s_cmd(int (*verb)(int, char **), int argc, char **argv)
{
    char path[] = "/tmp/kasa-history-out-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    int rc = verb(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, s_out, sizeof s_out - 1);
    s_out[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

#define S_CMD(verb, ...) s_cmd((verb), (int) (sizeof((char *[]) { __VA_ARGS__ }) / sizeof(char *)), \
                               (char *[]) { __VA_ARGS__ })

static void test_every_deposit_is_listed_newest_first_and_found_with_its_first_record(void)
{
    s_history("all");
    char err[300];
    checkpoint_info_t info;
    registry_t *reg = cmd_registry_restore(s_dir, 0, &info, err, sizeof err);
    CHECK(reg != NULL && info.snapshot_lsn > 0);
    if (!reg)
        return;
    char all[200] = "", memory[200] = "", login[200] = "";
    CHECK_EQ_INT(registry_each_all(reg, s_ids, all), 5);
    CHECK_EQ_STR(all, "h-5,h-4,h-3,h-2,h-1");
    CHECK_EQ_INT(registry_each(reg, 0, 0, s_ids, memory), 2);   /* memory alone: every unfinished one */
    CHECK_EQ_STR(memory, "h-5,h-4");
    CHECK_EQ_INT(registry_each(reg, 100001, 0, s_ids, login), 4);
    CHECK_EQ_STR(login, "h-5,h-4,h-2,h-1");
    registry_entry_t e;
    uint64_t first = 0;
    CHECK_EQ_INT(registry_lookup(reg, "h-2", &e, &first), 1);   /* out of memory: from the index */
    CHECK_EQ_INT(e.view.state, DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(first, 5);                                      /* after h-1's four records */
    CHECK_EQ_INT(e.last_lsn, 8);
    CHECK_EQ_INT(registry_lookup(reg, "h-5", &e, &first), 1);   /* in memory */
    CHECK_EQ_INT(first, 11);
    CHECK_EQ_INT(registry_lookup(reg, "h-9", &e, &first), 0);
    registry_destroy(&reg);
    support_tmp_rmrf(s_dir);
}

static void test_replay_all_shows_finished_deposits_after_the_archive_is_pruned(void)
{
    s_history("pruned");
    char day[16];
    time_t tomorrow = time(NULL) + 86400;
    struct tm tm;
    strftime(day, sizeof day, "%Y-%m-%d", gmtime_r(&tomorrow, &tm));
    CHECK_EQ_INT(S_CMD(cmd_journal, "journal", "archive", s_dir, "--prune-before", day), 0);
    CHECK(strstr(s_out, "pruned:") != NULL);   /* h-1's records are gone from the disk */
    CHECK_EQ_INT(S_CMD(cmd_replay, "replay", s_dir, "--all"), 0);
    for (int i = 1; i <= 5; i++) {
        char tx[16];
        snprintf(tx, sizeof tx, "h-%d ", i);
        CHECK(strstr(s_out, tx) != NULL);
    }
    CHECK(strstr(s_out, "h-1 NOTIFIED") != NULL && strstr(s_out, "h-3 REJECTED") != NULL);
    CHECK(strstr(s_out, "5 deposits") != NULL && strstr(s_out, "5 shown") != NULL);
    CHECK(strstr(s_out, "from snapshot") != NULL);
    CHECK_EQ_INT(S_CMD(cmd_replay, "replay", s_dir), 0);   /* unfinished only: h-4 */
    CHECK(strstr(s_out, "h-4 RECEIVED") != NULL && strstr(s_out, "1 shown (unfinished)") != NULL);
    CHECK(strstr(s_out, "h-1 ") == NULL);
    support_tmp_rmrf(s_dir);
}

static void test_an_unreadable_index_is_cannot_tell_never_unknown(void)
{
    s_history("unreadable");
    char err[300], path[400];
    registry_t *reg = cmd_registry_restore(s_dir, 0, NULL, err, sizeof err);
    CHECK(reg != NULL);
    if (!reg)
        return;
    uint64_t *lsns;
    size_t n;
    CHECK_EQ_INT(snapshot_list(s_dir, &lsns, &n, err, sizeof err), 0);
    CHECK_EQ_INT(n, 1);
    snprintf(path, sizeof path, "%s/finished/%020llu.dep", s_dir, (unsigned long long) (n ? lsns[0] : 0));
    free(lsns);
    CHECK_EQ_INT(truncate(path, 20), 0);   /* the store's entries are gone */
    registry_entry_t e;
    CHECK_EQ_INT(registry_lookup(reg, "h-1", &e, NULL), -1);
    CHECK_EQ_INT(registry_lookup(reg, "h-5", &e, NULL), 1);       /* in memory: still known */
    char all[200] = "", login[200] = "";
    CHECK_EQ_INT(registry_each_all(reg, s_ids, all), -1);
    CHECK_EQ_STR(all, "h-5,h-4");                                  /* what could be read was visited */
    CHECK_EQ_INT(registry_each(reg, 100001, 0, s_ids, login), -1);
    registry_destroy(&reg);
    CHECK_EQ_INT(S_CMD(cmd_replay, "replay", s_dir, "--all"), 1);   /* never a short list taken for the whole */
    support_tmp_rmrf(s_dir);
}

static int s_search(registry_t *reg, uint64_t login, const char *q, jbuf_t *b)
{
    admin_search_t f = { -1, login, q, 0, 0, 0, 0, 0, 50 };
    jbuf_reset(b);
    return admin_search_deposits(reg, &f, b);
}

static void test_the_admin_search_finds_a_deposit_finished_long_ago_or_says_it_cannot_tell(void)
{
    s_history("search");
    char err[300];
    registry_t *reg = cmd_registry_restore(s_dir, 0, NULL, err, sizeof err);
    CHECK(reg != NULL);
    if (!reg)
        return;
    jbuf_t b;
    jbuf_init(&b);
    CHECK_EQ_INT(s_search(reg, 0, "h-2", &b), 0);   /* by its transaction id: from the index */
    CHECK(b.data && strstr(b.data, "\"id\":\"h-2\"") && strstr(b.data, "\"total\":1"));
    CHECK_EQ_INT(s_search(reg, 0, "h-5", &b), 0);   /* in memory: once */
    CHECK(b.data && strstr(b.data, "\"total\":1"));
    CHECK_EQ_INT(s_search(reg, 100001, NULL, &b), 0);   /* by login: memory and the index */
    CHECK(b.data && strstr(b.data, "\"total\":4") && strstr(b.data, "\"id\":\"h-1\""));
    CHECK_EQ_INT(s_search(reg, 0, "h-9", &b), 0);
    CHECK(b.data && strstr(b.data, "\"total\":0"));
    uint64_t *lsns;
    size_t n;
    char path[400];
    CHECK_EQ_INT(snapshot_list(s_dir, &lsns, &n, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/finished/%020llu.dep", s_dir, (unsigned long long) (n ? lsns[0] : 0));
    free(lsns);
    CHECK_EQ_INT(truncate(path, 20), 0);
    CHECK_EQ_INT(s_search(reg, 0, "h-2", &b), -1);      /* cannot tell, never "none" */
    CHECK_EQ_INT(s_search(reg, 100001, NULL, &b), -1);
    CHECK_EQ_INT(s_search(reg, 0, "h-5", &b), 0);       /* in memory: still answered */
    jbuf_free(&b);
    registry_destroy(&reg);
    support_tmp_rmrf(s_dir);
}

/* fio_on_open: the process dies as an index of finished deposits is begun (its store is in place). */
static void s_die_at_index(void *arg, const char *path)
{
    (void) arg;
    if (strstr(path, "/finished/") && strstr(path, ".idx.tmp"))
        _exit(0);
}

static void test_verify_checks_the_index_of_finished_deposits_and_an_orphan_store_is_harmless(void)
{
    s_history("verify");
    CHECK_EQ_INT(S_CMD(cmd_journal, "journal", "verify", s_dir), 0);
    CHECK(strstr(s_out, "finished index 10: ok, 3 deposits in 1 stores, every one resolves") != NULL);
    CHECK(strstr(s_out, "finished store 10: ok, 3 entries\n") != NULL);
    /* killed mid-snapshot: h-6's store is written, the index that would name it is not */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char err[300];
        registry_t *reg = cmd_registry_restore(s_dir, 100, NULL, err, sizeof err);
        journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
        if (!reg || !j)
            _exit(2);
        s_events(reg, j, "h-6", 100001, s_credited);
        uint64_t lsn = journal_durable_lsn(j);
        journal_destroy(&j);
        fio_on_open(s_die_at_index, NULL);
        checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err);
        _exit(3);   /* not reached when the hook fires */
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ_INT(S_CMD(cmd_journal, "journal", "verify", s_dir), 0);   /* harmless: reported, not damage */
    CHECK(strstr(s_out, "(no index names it") != NULL);
    if (!strstr(s_out, "(no index names it"))
        fprintf(stderr, "%s", s_out);
    char err[300];
    checkpoint_info_t info;
    registry_t *reg = cmd_registry_restore(s_dir, 0, &info, err, sizeof err);   /* a start is not disturbed */
    CHECK(reg != NULL && info.snapshot_lsn == 10);
    registry_entry_t e;
    CHECK(reg && registry_lookup(reg, "h-6", &e, NULL) == 1 && e.view.state == DEPOSIT_NOTIFIED);
    registry_destroy(&reg);
    /* a damaged store that an index names is damage */
    char path[400];
    snprintf(path, sizeof path, "%s/finished/%020llu.dep", s_dir, 10ULL);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, "XX", 2, FINDEX_STORE_HDR + 12) == 2);
    close(fd);
    CHECK_EQ_INT(S_CMD(cmd_journal, "journal", "verify", s_dir), 1);
    CHECK(strstr(s_out, "finished store 10: damaged") && strstr(s_out, "do not resolve"));
    support_tmp_rmrf(s_dir);
}

/* fio_on_open: moves the segment being opened from the live directory to the archive, once. */
static void s_retire_on_open(void *arg, const char *path)
{
    int *armed = arg;
    const char *name = strrchr(path, '/');
    if (!*armed || !name || !strstr(name, ".seg") || strstr(path, "/" JF_ARCHIVE_SUBDIR "/"))
        return;
    char to[700];
    snprintf(to, sizeof to, "%s/%s", s_dir, JF_ARCHIVE_SUBDIR);
    mkdir(to, 0700);
    snprintf(to, sizeof to, "%s/%s%s", s_dir, JF_ARCHIVE_SUBDIR, name);
    if (rename(path, to) == 0)
        *armed = 0;
}

static void test_a_reader_reads_a_segment_retired_between_listing_and_opening(void)
{
    journal_t *j = s_open("race");
    for (int i = 0; i < 40; i++)
        CHECK(journal_append(j, "a record of some length, to fill segments", 42) > 0);
    journal_destroy(&j);
    char err[300];
    int armed = 1;
    journal_reader_t *rd = journal_reader_open(s_dir, 1, err, sizeof err);
    CHECK(rd != NULL);
    fio_on_open(s_retire_on_open, &armed);
    journal_entry_t e;
    uint64_t want = 1;
    int got;
    while ((got = journal_reader_next(rd, &e)) == 1 && e.lsn == want)
        want++;
    fio_on_open(NULL, NULL);
    CHECK_EQ_INT(armed, 0);          /* the first segment moved after it was listed */
    CHECK_EQ_INT(got, 0);            /* and the reader went on to the end */
    CHECK_EQ_INT(want, 41);          /* every record, in order */
    if (got < 0)
        fprintf(stderr, "  %s\n", journal_reader_error(rd));
    journal_reader_destroy(&rd);
    support_tmp_rmrf(s_dir);
}

int main(void)
{
    log_set_level(LOG_WARN);
    RUN(test_every_deposit_is_listed_newest_first_and_found_with_its_first_record);
    RUN(test_replay_all_shows_finished_deposits_after_the_archive_is_pruned);
    RUN(test_an_unreadable_index_is_cannot_tell_never_unknown);
    RUN(test_the_admin_search_finds_a_deposit_finished_long_ago_or_says_it_cannot_tell);
    RUN(test_verify_checks_the_index_of_finished_deposits_and_an_orphan_store_is_harmless);
    RUN(test_a_reader_reads_a_segment_retired_between_listing_and_opening);
    return check_done();
}
