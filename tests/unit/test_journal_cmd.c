/* test_journal_cmd.c — `kasa journal verify|dump|stats|repair` on whole and damaged journals. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/jformat.h"
#include "journal/journal.h"
#include "schema/record.h"
#include "tests/check.h"
#include "tests/unit/support_journal.h"
#include "tests/unit/support_tmp.h"
#include "tools/commands.h"

static char s_dir[4096];
static char s_out[1 << 18];   /* what the last command printed on stdout */
static char s_err[1 << 14];   /* ... and on stderr */

static const char *s_fresh(const char *name)
{
    return support_tmp_fresh(s_dir, sizeof s_dir, "journalcmd", name);
}

static void s_slurp(int fd, char *buf, size_t cap)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* Runs `kasa journal ARGS...` in this process, capturing stdout and stderr. Returns its status. */
static int s_run(int argc, char **argv)
{
    char o[] = "/tmp/kasa-jcmd-out-XXXXXX", e[] = "/tmp/kasa-jcmd-err-XXXXXX";
    int ofd = mkstemp(o), efd = mkstemp(e);
    unlink(o);
    unlink(e);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    int rc = cmd_journal(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    s_slurp(ofd, s_out, sizeof s_out);
    s_slurp(efd, s_err, sizeof s_err);
    return rc;
}

#define RUNCMD(...) s_run((int) (sizeof((char *[]) { __VA_ARGS__ }) / sizeof(char *)), (char *[]) { __VA_ARGS__ })

static int s_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A journal of n records: deposits moving through states, one address link, and record 5 is not a
 * record at all (garbage payload). Small segments, so there are several. */
static void s_make_journal(const char *dir, int n)
{
    char err[256];
    journal_opts_t o = { .segment_bytes = 600 };
    journal_t *j = journal_open(dir, &o, err, sizeof err);
    deposit_state_t path[] = { DEPOSIT_RECEIVED, DEPOSIT_LOCKED, DEPOSIT_CREDITED, DEPOSIT_NOTIFIED };
    deposit_event_t evs[] = { DEPOSIT_EV_SEEN_COMPLETED, DEPOSIT_EV_CONFIRMED, DEPOSIT_EV_CREDIT_OK,
                              DEPOSIT_EV_NOTICE_SENT };
    for (int i = 1; i <= n; i++) {
        if (i == 5) {
            journal_append(j, "\xc1garbage", 8);
            continue;
        }
        record_t r;
        if (i == 3) {
            record_init(&r, RECORD_ADDRESS_LINK);
            snprintf(r.address, sizeof r.address, "TXyz%d", i);
            r.login = 100001;
        } else {
            record_init(&r, RECORD_DEPOSIT);
            int tx = i % 3, step = (i / 3) % 4;
            snprintf(r.tx_id, sizeof r.tx_id, "tx-%d", tx);
            r.from = step ? path[step - 1] : DEPOSIT_NONE;
            r.to = path[step];
            r.event = evs[step];
            snprintf(r.amount, sizeof r.amount, "250");
            snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
        }
        r.time_ms = 1764142000000 + i;
        uint8_t *buf;
        size_t len;
        if (record_encode(&r, &buf, &len, err, sizeof err) != 0) {
            fprintf(stderr, "  encode: %s\n", err);
            continue;
        }
        journal_append(j, buf, len);
        free(buf);
    }
    journal_destroy(&j);
}

static void s_flip(const char *dir, uint64_t seg_first, uint64_t off)
{
    char name[JF_NAME_MAX], path[4200];
    jf_seg_name(name, seg_first);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    if (pread(fd, &b, 1, (off_t) off) == 1) {
        b ^= 0x10;
        if (pwrite(fd, &b, 1, (off_t) off) != 1)
            fprintf(stderr, "  flip failed\n");
    }
    close(fd);
}

static void test_help_describes_every_verb(void)
{
    CHECK_EQ_INT(RUNCMD("journal", "--help"), 0);
    CHECK(strstr(s_out, "verify") && strstr(s_out, "dump") && strstr(s_out, "stats") && strstr(s_out, "repair"));
    const char *verbs[] = { "verify", "dump", "stats", "repair" };
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(RUNCMD("journal", (char *) verbs[i], "--help"), 0);
        CHECK(strstr(s_out, "usage: kasa journal") && strstr(s_out, verbs[i]) && strstr(s_out, "Exit status"));
    }
    CHECK_EQ_INT(RUNCMD("journal"), 2);
    CHECK_EQ_INT(RUNCMD("journal", "frobnicate", "x"), 2);
    CHECK(strstr(s_err, "unknown verb") != NULL);
    CHECK_EQ_INT(RUNCMD("journal", "verify"), 2);
    CHECK_EQ_INT(RUNCMD("journal", "dump", "x", "--from", "abc"), 2);
}

static void test_verify_whole_journal(void)
{
    const char *dir = s_fresh("verify");
    s_make_journal(dir, 40);
    CHECK_EQ_INT(RUNCMD("journal", "verify", (char *) dir), 0);
    CHECK(strstr(s_out, "records: 40\n") != NULL);
    CHECK(strstr(s_out, "first lsn: 1\n") != NULL);
    CHECK(strstr(s_out, "last lsn: 40\n") != NULL);
    CHECK(strstr(s_out, "status: ok\n") != NULL);
    const char *segs = strstr(s_out, "segments: ");
    CHECK(segs && atoi(segs + 10) >= 3);
    CHECK_EQ_INT(RUNCMD("journal", "verify", "/nonexistent/kasa-journal"), 1);
    support_tmp_rmrf(dir);
}

static void test_verify_names_the_first_bad_segment_and_offset(void)
{
    const char *dir = s_fresh("verifybad");
    s_make_journal(dir, 40);
    char err[256];
    journal_reader_t *r = journal_reader_open(dir, 20, err, sizeof err);
    journal_entry_t e;
    CHECK_EQ_INT(journal_reader_next(r, &e), 1);
    char seg[JF_NAME_MAX];
    snprintf(seg, sizeof seg, "%s", e.segment);
    uint64_t off = e.offset, seg_first = strtoull(seg, NULL, 10);
    journal_reader_destroy(&r);
    s_flip(dir, seg_first, off + JF_REC_HDR + 2);
    CHECK_EQ_INT(RUNCMD("journal", "verify", (char *) dir), 1);
    char want[256];
    snprintf(want, sizeof want, "CORRUPT: segment %s offset %" PRIu64 ": record checksum mismatch", seg, off);
    CHECK(strstr(s_out, want) != NULL);
    CHECK(strstr(s_out, "records: 19\n") != NULL);
    CHECK(strstr(s_out, "kasa journal repair") != NULL);
    /* dump stops at the damage with the place; stats reports it and fails */
    CHECK_EQ_INT(RUNCMD("journal", "dump", (char *) dir), 1);
    CHECK_EQ_INT(s_lines(s_out), 19);
    snprintf(want, sizeof want, "segment %s offset %" PRIu64, seg, off);
    CHECK(strstr(s_err, want) != NULL);
    CHECK_EQ_INT(RUNCMD("journal", "stats", (char *) dir), 1);
    support_tmp_rmrf(dir);
}

static void test_verify_reports_a_torn_tail_without_failing(void)
{
    const char *dir = s_fresh("verifytorn");
    s_make_journal(dir, 10);
    CHECK_EQ_INT(support_journal_as_if_crashed(dir), 0);
    jf_seg_t *segs;
    size_t n;
    char err[256], path[4200];
    jf_list_segments(dir, &segs, &n, err, sizeof err);
    snprintf(path, sizeof path, "%s/%s", dir, segs[n - 1].name);
    CHECK_EQ_INT(truncate(path, (off_t) segs[n - 1].size - 3), 0);
    CHECK_EQ_INT(RUNCMD("journal", "verify", (char *) dir), 0);
    CHECK(strstr(s_out, "status: torn tail: segment ") != NULL);
    CHECK(strstr(s_out, "records: 9\n") != NULL);
    free(segs);
    support_tmp_rmrf(dir);
}

static void test_dump_prints_one_line_per_record(void)
{
    const char *dir = s_fresh("dump");
    s_make_journal(dir, 12);
    CHECK_EQ_INT(RUNCMD("journal", "dump", (char *) dir), 0);
    CHECK_EQ_INT(s_lines(s_out), 12);
    CHECK(strncmp(s_out, "lsn=1 ", 6) == 0);
    CHECK(strstr(s_out, "\nlsn=5 undecodable: ") != NULL);
    CHECK(strstr(s_out, " (8 bytes)\n") != NULL);
    CHECK(strstr(s_out, "\nlsn=3 ADDRESS_LINK") != NULL);
    CHECK(strstr(s_out, "tx-1") != NULL);
    CHECK_EQ_INT(RUNCMD("journal", "dump", (char *) dir, "--from", "10"), 0);
    CHECK_EQ_INT(s_lines(s_out), 3);
    CHECK(strncmp(s_out, "lsn=10 ", 7) == 0);
    CHECK_EQ_INT(RUNCMD("journal", "dump", "--json", (char *) dir), 0);
    CHECK_EQ_INT(s_lines(s_out), 12);
    CHECK(s_out[0] == '{');
    CHECK(strstr(s_out, "{\"lsn\":5,\"undecodable\":") != NULL);
    support_tmp_rmrf(dir);
}

static void test_stats_counts_kinds_and_states(void)
{
    const char *dir = s_fresh("stats");
    s_make_journal(dir, 12);
    CHECK_EQ_INT(RUNCMD("journal", "stats", (char *) dir), 0);
    CHECK(strstr(s_out, "records: 12\n") != NULL);
    CHECK(strstr(s_out, "bytes: ") != NULL);
    CHECK(strstr(s_out, "last lsn: 12\n") != NULL);
    /* records 1..12 minus 3 (link) and 5 (garbage): 10 deposit transitions */
    CHECK(strstr(s_out, "  DEPOSIT          10\n") != NULL);
    CHECK(strstr(s_out, "  ADDRESS_LINK     1\n") != NULL);
    CHECK(strstr(s_out, "  undecodable      1\n") != NULL);
    CHECK(strstr(s_out, "deposits: 3, now in each state:") != NULL);
    CHECK(strstr(s_out, "RECEIVED") && strstr(s_out, "LOCKED") && strstr(s_out, "CREDITED") && strstr(s_out, "NOTIFIED"));
    support_tmp_rmrf(dir);
}

/* The quarantine directory repair made in dir (the last one, by name), or "" if none. */
static void s_quarantine_dir(const char *dir, char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "quarantine-", 11) == 0 && (!out[0] || strcmp(de->d_name, strrchr(out, '/') + 1) > 0))
            snprintf(out, cap, "%s/%s", dir, de->d_name);
    if (d)
        closedir(d);
}

/* Bytes of the quarantined data files in q (REPORT not counted). */
static uint64_t s_quarantined_bytes(const char *q)
{
    uint64_t n = 0;
    DIR *d = opendir(q);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char p[4800];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", q, de->d_name);
        if (de->d_name[0] != '.' && strcmp(de->d_name, "REPORT") != 0 && stat(p, &st) == 0)
            n += (uint64_t) st.st_size;
    }
    if (d)
        closedir(d);
    return n;
}

/* Reads the whole journal: LSNs in order into lsns (up to cap), decoded kinds into kinds; the count,
 * or -1 on a reader error. */
static int s_lsns(const char *dir, uint64_t *lsns, int *kinds, int cap)
{
    char err[512];
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    journal_entry_t e;
    int n = 0, rc;
    record_t rec;
    while ((rc = journal_reader_next(r, &e)) == 1 && n < cap) {
        char why[128];
        kinds[n] = record_decode(e.payload, e.len, &rec, why, sizeof why) == 0 ? (int) rec.kind : -1;
        lsns[n++] = e.lsn;
    }
    journal_reader_destroy(&r);
    return rc < 0 ? -1 : n;
}

/* repair quarantines the one unreadable record and keeps every readable record after it (a break
 * that verify explains), writes a report, marks the unfinished deposits, and the journal opens. */
static void test_repair_quarantines_the_bad_record_and_keeps_what_follows(void)
{
    const char *dir = s_fresh("repair");
    s_make_journal(dir, 40);
    char err[512];
    /* a record in the middle of a segment: the one after it is in the same segment */
    uint64_t k = 0, off = 0, seg_first = 0, rec_bytes = 0;
    for (uint64_t lsn = 20; lsn < 35 && !k; lsn++) {
        journal_reader_t *r = journal_reader_open(dir, lsn, err, sizeof err);
        journal_entry_t e, e2;
        CHECK_EQ_INT(journal_reader_next(r, &e), 1);
        uint64_t o = e.offset;
        char seg[JF_NAME_MAX];
        snprintf(seg, sizeof seg, "%s", e.segment);
        size_t len = e.len;
        if (journal_reader_next(r, &e2) == 1 && strcmp(seg, e2.segment) == 0 && lsn != 5) {
            k = lsn;
            off = o;
            seg_first = strtoull(seg, NULL, 10);
            rec_bytes = JF_REC_HDR + len;
        }
        journal_reader_destroy(&r);
    }
    CHECK(k != 0);
    s_flip(dir, seg_first, off + 9);   /* record k's LSN field: its payload still decodes */
    CHECK(journal_open(dir, NULL, err, sizeof err) == NULL);

    /* refused while the journal is locked */
    int lock = jf_lock(dir, err, sizeof err);
    CHECK(lock >= 0);
    CHECK_EQ_INT(RUNCMD("journal", "repair", (char *) dir), 1);
    CHECK(strstr(s_err, "in use by another process") != NULL);
    close(lock);

    CHECK_EQ_INT(RUNCMD("journal", "repair", (char *) dir), 0);
    char want[256];
    snprintf(want, sizeof want, "kept the readable records from LSN %" PRIu64 " on", k + 1);
    CHECK(strstr(s_out, want) != NULL);
    CHECK(strstr(s_out, "quarantined ") != NULL);
    CHECK(strstr(s_out, "marked ") != NULL);
    /* the quarantine holds exactly the unreadable record, and a report says what and where */
    char q[4400];
    s_quarantine_dir(dir, q, sizeof q);
    CHECK(q[0] != '\0');
    CHECK_EQ_INT(s_quarantined_bytes(q), rec_bytes);
    char rpath[4600], report[8192] = "";
    snprintf(rpath, sizeof rpath, "%s/REPORT", q);
    int fd = open(rpath, O_RDONLY);
    CHECK(fd >= 0);
    s_slurp(fd, report, sizeof report);
    char segname[JF_NAME_MAX];
    jf_seg_name(segname, seg_first);
    snprintf(want, sizeof want, "segment %s offset %" PRIu64, segname, off);
    CHECK(strstr(report, want) != NULL);
    snprintf(want, sizeof want, "LSN %" PRIu64 "..%" PRIu64, k, k);
    CHECK(strstr(report, want) != NULL);
    snprintf(want, sizeof want, "tx-%d", (int) (k % 3));
    CHECK(strstr(report, "deposits named in the quarantined bytes") != NULL && strstr(report, want) != NULL);
    CHECK(strstr(report, "marked: ") != NULL);
    /* verify: whole, and it names the break */
    CHECK_EQ_INT(RUNCMD("journal", "verify", (char *) dir), 0);
    CHECK(strstr(s_out, "status: ok\n") != NULL);
    snprintf(want, sizeof want, "LSN %" PRIu64 "..%" PRIu64 " quarantined by `kasa journal repair`", k, k);
    CHECK(strstr(s_out, want) != NULL);
    /* every record but k is still there, in order; the markers follow */
    uint64_t lsns[128];
    int kinds[128];
    int n = s_lsns(dir, lsns, kinds, 128);
    CHECK(n > 39);
    int order_ok = n > 39, markers = 0;
    for (int i = 0; i < 39 && order_ok; i++)
        order_ok = lsns[i] == (uint64_t) i + 1 + ((uint64_t) i + 1 >= k);
    for (int i = 39; i < n; i++)
        markers += kinds[i] == RECORD_HISTORY_GAP && lsns[i] == (uint64_t) i + 2;
    CHECK(order_ok);
    CHECK_EQ_INT(markers, n - 39);
    /* the journal opens and goes on after the markers */
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    CHECK_EQ_INT(journal_append(j, "x", 1), (uint64_t) n + 2);
    journal_destroy(&j);
    /* a whole journal: nothing to do */
    CHECK_EQ_INT(RUNCMD("journal", "repair", (char *) dir), 0);
    CHECK(strstr(s_out, "nothing to repair") != NULL);
    support_tmp_rmrf(dir);
}

/* A segment whose header is damaged: its records are kept behind a new header (a break that loses
 * no LSN), only the 32 header bytes are quarantined. */
static void test_repair_of_a_bad_segment_header_keeps_its_records(void)
{
    const char *dir = s_fresh("repairhdr");
    s_make_journal(dir, 40);
    jf_seg_t *segs;
    size_t n;
    char err[512];
    jf_list_segments(dir, &segs, &n, err, sizeof err);
    CHECK(n >= 3);
    s_flip(dir, segs[1].first_lsn, 9);   /* the second segment's first-LSN field */
    CHECK_EQ_INT(RUNCMD("journal", "verify", (char *) dir), 1);
    CHECK(strstr(s_out, segs[1].name) != NULL);
    CHECK_EQ_INT(RUNCMD("journal", "repair", (char *) dir), 0);
    char q[4400];
    s_quarantine_dir(dir, q, sizeof q);
    CHECK_EQ_INT(s_quarantined_bytes(q), JF_SEG_HDR);
    CHECK_EQ_INT(RUNCMD("journal", "verify", (char *) dir), 0);
    CHECK(strstr(s_out, "unreadable bytes (no record)") != NULL);
    uint64_t lsns[128];
    int kinds[128];
    int got = s_lsns(dir, lsns, kinds, 128);
    CHECK(got >= 40);
    int order_ok = got >= 40;
    for (int i = 0; i < got && order_ok; i++)
        order_ok = lsns[i] == (uint64_t) i + 1;
    CHECK(order_ok);
    free(segs);
    support_tmp_rmrf(dir);
}

/* A torn tail (never acknowledged) is quarantined and cut as opening would; nothing is marked. */
static void test_repair_of_a_torn_tail_cuts_it_and_marks_nothing(void)
{
    const char *dir = s_fresh("repairtorn");
    s_make_journal(dir, 12);
    CHECK_EQ_INT(support_journal_as_if_crashed(dir), 0);
    jf_seg_t *segs;
    size_t n;
    char err[512];
    jf_list_segments(dir, &segs, &n, err, sizeof err);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, segs[n - 1].name);
    FILE *f = fopen(path, "ab");
    for (int i = 0; i < 100; i++)
        fputc(i * 37, f);
    fclose(f);
    CHECK_EQ_INT(RUNCMD("journal", "repair", (char *) dir), 0);
    CHECK(strstr(s_out, "torn tail") != NULL);
    CHECK(strstr(s_out, "marked ") == NULL);
    char q[4400];
    s_quarantine_dir(dir, q, sizeof q);
    CHECK_EQ_INT(s_quarantined_bytes(q), 100);
    uint64_t lsns[64];
    int kinds[64];
    CHECK_EQ_INT(s_lsns(dir, lsns, kinds, 64), 12);
    free(segs);
    support_tmp_rmrf(dir);
}

int main(void)
{
    RUN(test_help_describes_every_verb);
    RUN(test_verify_whole_journal);
    RUN(test_verify_names_the_first_bad_segment_and_offset);
    RUN(test_verify_reports_a_torn_tail_without_failing);
    RUN(test_dump_prints_one_line_per_record);
    RUN(test_stats_counts_kinds_and_states);
    RUN(test_repair_quarantines_the_bad_record_and_keeps_what_follows);
    RUN(test_repair_of_a_bad_segment_header_keeps_its_records);
    RUN(test_repair_of_a_torn_tail_cuts_it_and_marks_nothing);
    return check_done();
}
