/* test_journal.c — the journal: durability, torn tails, corruption, group commit, rotation, faults. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/jformat.h"
#include "journal/journal.h"
#include "tests/check.h"
#include "tools/commands.h"
#include "tests/unit/support_journal.h"
#include "tests/unit/support_tmp.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static char s_dir[4096];

/* A fresh, empty journal directory for one test. */
static const char *s_fresh(const char *name)
{
    return support_tmp_fresh(s_dir, sizeof s_dir, "journal", name);
}

/* The payload of record lsn in most tests: its length varies, its bytes depend on lsn. */
static size_t s_payload(uint64_t lsn, uint8_t *buf)
{
    size_t len = 10 + (size_t) (lsn * 7 % 53);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t) (lsn * 31 + i);
    return len;
}

static int s_payload_ok(uint64_t lsn, const uint8_t *p, size_t len)
{
    uint8_t want[128];
    size_t n = s_payload(lsn, want);
    return n == len && memcmp(want, p, n) == 0;
}

static journal_t *s_open(const char *dir, uint64_t segment_bytes)
{
    char err[512];
    journal_opts_t o = { .segment_bytes = segment_bytes, .max_batch_bytes = 0 };
    journal_t *j = journal_open(dir, segment_bytes ? &o : NULL, err, sizeof err);
    if (!j)
        fprintf(stderr, "  journal_open: %s\n", err);
    return j;
}

/* Appends s_payload records until the journal holds `upto` records. */
static int s_fill(journal_t *j, uint64_t upto)
{
    uint8_t buf[128];
    for (uint64_t lsn = journal_durable_lsn(j) + 1; lsn <= upto; lsn++)
        if (journal_append(j, buf, s_payload(lsn, buf)) != lsn)
            return -1;
    return 0;
}

/* Reads the whole journal: returns how many records (all must be s_payload records with LSN 1, 2,
 * ...), or -1 if any is wrong or the reader reports an error. */
static long s_read_all(const char *dir)
{
    char err[512];
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    if (!r)
        return -1;
    journal_entry_t e;
    long n = 0;
    int rc;
    while ((rc = journal_reader_next(r, &e)) == 1) {
        if (e.lsn != (uint64_t) n + 1 || !s_payload_ok(e.lsn, e.payload, e.len)) {
            n = -1;
            break;
        }
        n++;
    }
    if (rc < 0)
        n = -1;
    journal_reader_destroy(&r);
    return n;
}

static int s_read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    *len = (size_t) ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*len ? *len : 1);
    size_t got = fread(*buf, 1, *len, f);
    fclose(f);
    return got == *len ? 0 : -1;
}

static int s_write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = fwrite(buf, 1, len, f);
    fclose(f);
    return put == len ? 0 : -1;
}

static void s_seg_path(char *path, size_t n, const char *dir, uint64_t first_lsn)
{
    char name[JF_NAME_MAX];
    jf_seg_name(name, first_lsn);
    snprintf(path, n, "%s/%s", dir, name);
}

/* Offset of record lsn in its segment (via the reader), or -1. */
static long s_offset_of(const char *dir, uint64_t lsn)
{
    char err[256];
    journal_reader_t *r = journal_reader_open(dir, lsn, err, sizeof err);
    journal_entry_t e;
    long off = r && journal_reader_next(r, &e) == 1 && e.lsn == lsn ? (long) e.offset : -1;
    journal_reader_destroy(&r);
    return off;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_crc32c_matches_the_standard_check_value(void)
{
    CHECK_EQ_INT(jf_crc32c(0, "123456789", 9), 0xE3069283u);
    /* continuing a checksum equals checksumming the concatenation; long inputs take the 8-byte path */
    uint8_t big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (uint8_t) (i * 13);
    CHECK_EQ_INT(jf_crc32c(jf_crc32c(0, big, 333), big + 333, 667), jf_crc32c(0, big, 1000));
    CHECK(jf_crc32c(0, big, 1000) != jf_crc32c(0, big, 999));
    /* the table fallback agrees with the SSE4.2 path at every length and alignment */
    CHECK_EQ_INT(jf_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    int differ = 0;
    for (size_t start = 0; start < 9; start++)
        for (size_t n = 0; n + start <= 300; n += 7)
            differ += jf_crc32c_sw(0x1234, big + start, n) != jf_crc32c(0x1234, big + start, n);
    CHECK_EQ_INT(differ, 0);
}

static void test_append_is_durable_and_survives_reopen(void)
{
    const char *dir = s_fresh("reopen");
    journal_t *j = s_open(dir, 0);
    CHECK(j != NULL);
    CHECK_EQ_INT(journal_durable_lsn(j), 0);
    CHECK_EQ_INT(s_fill(j, 100), 0);
    CHECK_EQ_INT(journal_durable_lsn(j), 100);
    journal_destroy(&j);
    CHECK(j == NULL);
    journal_destroy(&j);   /* safe twice */
    CHECK_EQ_INT(s_read_all(dir), 100);
    j = s_open(dir, 0);
    CHECK_EQ_INT(journal_durable_lsn(j), 100);
    CHECK_EQ_INT(s_fill(j, 101), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), 101);
    support_tmp_rmrf(dir);
}

/* The notes a journal reports, counted by event. */
typedef struct {
    int tightened;
    char last[1024];
} s_notes_t;

static void s_note_count(void *arg, journal_note_t severity, const char *event, const char *detail)
{
    s_notes_t *n = arg;
    if (severity == JOURNAL_NOTE_INFO && strcmp(event, "journal.mode_tightened") == 0) {
        n->tightened++;
        snprintf(n->last, sizeof n->last, "%s", detail);
    }
}

/* A journal left by an older kasa (directory 0755, segments 0644) is made private when opened:
 * directory 0700, every segment 0600, each change reported; a private one is left alone, silently. */
static void test_open_tightens_an_older_journals_modes(void)
{
    const char *dir = s_fresh("modes");
    journal_t *j = s_open(dir, 4096);
    CHECK_EQ_INT(s_fill(j, 300), 0);
    journal_destroy(&j);
    jf_seg_t *segs;
    size_t nsegs;
    char err[256];
    CHECK_EQ_INT(jf_list_segments(dir, &segs, &nsegs, err, sizeof err), 0);
    CHECK(nsegs >= 2);
    CHECK_EQ_INT(chmod(dir, 0755), 0);
    for (size_t i = 0; i < nsegs; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, segs[i].name);
        CHECK_EQ_INT(chmod(path, 0644), 0);
    }
    s_notes_t notes = { 0 };
    journal_opts_t o = { .segment_bytes = 4096, .report = s_note_count, .report_arg = &notes };
    j = journal_open(dir, &o, err, sizeof err);
    CHECK(j != NULL);
    CHECK_EQ_INT(notes.tightened, (int) nsegs + 1);
    CHECK(strstr(notes.last, "from=0644 to=0600") != NULL);
    journal_destroy(&j);
    struct stat st;
    CHECK_EQ_INT(stat(dir, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0700);
    for (size_t i = 0; i < nsegs; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, segs[i].name);
        CHECK_EQ_INT(stat(path, &st), 0);
        CHECK_EQ_INT(st.st_mode & 0777, 0600);
    }
    free(segs);
    notes.tightened = 0;
    j = journal_open(dir, &o, err, sizeof err);
    CHECK(j != NULL);
    CHECK_EQ_INT(notes.tightened, 0);
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), 300);
    support_tmp_rmrf(dir);
}

/* A reader over a segment's bytes in memory returns what the reader of the file returns, and stops
 * with the same reason at the same damage. */
static void test_reader_over_bytes_matches_the_file(void)
{
    const char *dir = s_fresh("bytes");
    journal_t *j = s_open(dir, 0);
    CHECK_EQ_INT(s_fill(j, 50), 0);
    journal_destroy(&j);
    char path[8192], err[256];
    s_seg_path(path, sizeof path, dir, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(s_read_file(path, &buf, &len), 0);
    journal_reader_t *r = journal_reader_open_bytes(buf, len, 1, err, sizeof err);
    CHECK(r != NULL);
    journal_entry_t e;
    uint64_t n = 0;
    int rc;
    while ((rc = journal_reader_next(r, &e)) == 1) {
        n++;
        CHECK(e.lsn == n && s_payload_ok(e.lsn, e.payload, e.len));
        CHECK(e.payload >= buf && e.payload + e.len <= buf + len);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(n, 50);
    journal_reader_destroy(&r);

    /* a flipped byte in record 10's payload: both readers stop there with the same reason */
    long off = s_offset_of(dir, 10);
    CHECK(off > 0);
    buf[off + JF_REC_HDR] ^= 0x40;
    CHECK_EQ_INT(s_write_file(path, buf, len), 0);
    journal_reader_t *rf = journal_reader_open(dir, 1, err, sizeof err);
    r = journal_reader_open_bytes(buf, len, 1, err, sizeof err);
    int n_file = 0, n_mem = 0;
    while (journal_reader_next(rf, &e) == 1)
        n_file++;
    while ((rc = journal_reader_next(r, &e)) == 1)
        n_mem++;
    CHECK_EQ_INT(rc, -1);
    CHECK_EQ_INT(n_mem, 9);
    CHECK_EQ_INT(n_file, n_mem);
    const char *why_file = strstr(journal_reader_error(rf), ": segment ");
    const char *why_mem = strstr(journal_reader_error(r), ": segment ");
    CHECK(why_file && why_mem && strcmp(why_file, why_mem) == 0);
    journal_reader_destroy(&rf);
    journal_reader_destroy(&r);
    free(buf);
    support_tmp_rmrf(dir);
}

static void test_empty_and_oversized_payloads(void)
{
    const char *dir = s_fresh("sizes");
    journal_t *j = s_open(dir, 0);
    CHECK_EQ_INT(journal_append(j, "", 0), 1);
    static uint8_t big[JOURNAL_MAX_PAYLOAD + 1];
    CHECK_EQ_INT(journal_append(j, big, sizeof big), 0);          /* too large: refused */
    CHECK_EQ_INT(journal_append(j, big, JOURNAL_MAX_PAYLOAD), 2); /* the largest: fine  */
    CHECK_EQ_INT(journal_wait(j, 3), -1);                          /* never submitted     */
    journal_destroy(&j);
    char err[256];
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    journal_entry_t e;
    CHECK_EQ_INT(journal_reader_next(r, &e), 1);
    CHECK_EQ_INT(e.len, 0);
    CHECK_EQ_INT(journal_reader_next(r, &e), 1);
    CHECK_EQ_INT(e.len, JOURNAL_MAX_PAYLOAD);
    CHECK_EQ_INT(journal_reader_next(r, &e), 0);
    journal_reader_destroy(&r);
    support_tmp_rmrf(dir);
}

/* A journal of records 1..n in one segment, as a crash leaves it; path gets that segment's path. */
static void s_crashed_journal(const char *dir, uint64_t n, char *path, size_t pathlen)
{
    journal_t *j = s_open(dir, 0);
    CHECK_EQ_INT(s_fill(j, n), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(support_journal_as_if_crashed(dir), 0);
    s_seg_path(path, pathlen, dir, 1);
}

/* Truncating the last segment at every byte inside the last record: reopening keeps records 1..4,
 * cuts the rest (the file is exactly as long as the 4 whole records), and appends go on at LSN 5. */
static void test_torn_last_record_at_every_offset_is_cut_back(void)
{
    const char *dir = s_fresh("torn");
    journal_t *j;
    char path[4200];
    s_crashed_journal(dir, 5, path, sizeof path);
    uint8_t *orig;
    size_t len;
    CHECK_EQ_INT(s_read_file(path, &orig, &len), 0);
    long last = s_offset_of(dir, 5);
    CHECK(last > 0 && (size_t) last < len);
    int bad = 0;
    for (size_t cut = (size_t) last; cut < len && !bad; cut++) {
        s_write_file(path, orig, cut);
        j = s_open(dir, 0);
        if (!j || journal_durable_lsn(j) != 4) { bad = 1; break; }
        struct stat st;
        stat(path, &st);
        if ((long) st.st_size != last) bad = 2;
        uint8_t buf[128];
        if (journal_append(j, buf, s_payload(5, buf)) != 5) bad = 3;
        journal_destroy(&j);
        if (s_read_all(dir) != 5) bad = 4;
        support_journal_as_if_crashed(dir);
    }
    CHECK_EQ_INT(bad, 0);
    /* the whole file back: nothing is cut */
    s_write_file(path, orig, len);
    j = s_open(dir, 0);
    CHECK_EQ_INT(journal_durable_lsn(j), 5);
    journal_destroy(&j);
    free(orig);
    support_tmp_rmrf(dir);
}

/* The journal has no logger: a torn tail it cuts is told to the caller's report hook, with where. */
static char note_event_[64], note_detail_[1024];
static int note_severity_ = -1;
static void s_note(void *arg, journal_note_t severity, const char *event, const char *detail)
{
    (*(int *) arg)++;
    note_severity_ = (int) severity;
    snprintf(note_event_, sizeof note_event_, "%s", event);
    snprintf(note_detail_, sizeof note_detail_, "%s", detail);
}

static void test_cut_torn_tail_is_reported_to_the_caller(void)
{
    const char *dir = s_fresh("note");
    journal_t *j = s_open(dir, 0);
    CHECK_EQ_INT(s_fill(j, 3), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(support_journal_as_if_crashed(dir), 0);
    char path[4200];
    s_seg_path(path, sizeof path, dir, 1);
    uint8_t *orig;
    size_t len;
    CHECK_EQ_INT(s_read_file(path, &orig, &len), 0);
    s_write_file(path, orig, len - 3);
    int notes = 0;
    journal_opts_t opts = { .report = s_note, .report_arg = &notes };
    char err[512];
    j = journal_open(dir, &opts, err, sizeof err);
    CHECK(j != NULL);
    CHECK_EQ_INT(journal_durable_lsn(j), 2);
    CHECK_EQ_INT(notes, 1);
    CHECK_EQ_INT(note_severity_, JOURNAL_NOTE_WARN);
    CHECK_EQ_STR(note_event_, "journal.tail_cut");
    CHECK(strstr(note_detail_, "segment=00000000000000000001.seg") != NULL);
    journal_destroy(&j);
    CHECK_EQ_INT(notes, 1);
    free(orig);
    support_tmp_rmrf(dir);
}

/* A tail of zeros (a file extended before its data reached the disk) or of garbage is a torn tail. */
static void test_garbage_tail_is_a_torn_tail(void)
{
    const char *dir = s_fresh("garbagetail");
    {
        const int garbage = 1;
        support_tmp_rmrf(dir);
        journal_t *j = s_open(dir, 0);
        CHECK_EQ_INT(s_fill(j, 7), 0);
        journal_destroy(&j);
        CHECK_EQ_INT(support_journal_as_if_crashed(dir), 0);
        char path[4200];
        s_seg_path(path, sizeof path, dir, 1);
        FILE *f = fopen(path, "ab");
        for (int i = 0; i < 4096; i++)
            fputc(garbage ? (i * 89 + 7) & 0xff : 0, f);
        fclose(f);
        jf_scan_t scan;
        char err[256];
        CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
        CHECK_EQ_INT(scan.state, JF_TORN);
        CHECK_EQ_INT(scan.bad_bytes, 4096);
        CHECK_EQ_INT(scan.records, 7);
        jf_scan_free(&scan);
        CHECK_EQ_INT(s_read_all(dir), 7);   /* the reader stops at a torn tail: the end, not an error */
        /* opening as kasa does cuts it and says so on stderr: journal.tail_cut segment=... offset=... bytes=4096 */
        char logpath[4200];
        snprintf(logpath, sizeof logpath, "%s.log", dir);
        fflush(stderr);
        int saved = dup(2), lfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
        dup2(lfd, 2);
        char oerr[512];
        j = cmd_journal_open(dir, oerr, sizeof oerr);
        dup2(saved, 2);
        close(saved);
        char logtext[2048] = "";
        ssize_t got = pread(lfd, logtext, sizeof logtext - 1, 0);
        logtext[got > 0 ? got : 0] = '\0';
        close(lfd);
        unlink(logpath);
        CHECK(strstr(logtext, "event=journal.tail_cut") != NULL);
        CHECK(strstr(logtext, "segment=00000000000000000001.seg") != NULL);
        CHECK(strstr(logtext, " bytes=4096") != NULL);
        CHECK_EQ_INT(journal_durable_lsn(j), 7);
        CHECK_EQ_INT(s_fill(j, 8), 0);
        journal_destroy(&j);
        CHECK_EQ_INT(s_read_all(dir), 8);
    }
    support_tmp_rmrf(dir);
}

/* Appends n bytes of value byte (or a pattern when byte < 0) to path. */
static void s_append_bytes(const char *path, size_t n, int byte)
{
    FILE *f = fopen(path, "ab");
    for (size_t i = 0; i < n; i++)
        fputc(byte >= 0 ? byte : (int) ((i * 89 + 7) & 0xff), f);
    fclose(f);
}

static uint64_t s_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

/* Scans dir: a torn tail at bad_offset after `records` whole records, which the reader takes as the
 * end; then opening cuts it (the note, if report is given, says so), holds those records, and
 * takes records up to upto. */
static void s_torn_then_reopened(const char *dir, long bad_offset, uint64_t records, uint64_t upto, int report)
{
    jf_scan_t scan;
    char err[512];
    CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(scan.state, JF_TORN);
    CHECK_EQ_INT(scan.bad_offset, bad_offset);
    CHECK_EQ_INT(scan.records, records);
    jf_scan_free(&scan);
    CHECK_EQ_INT(s_read_all(dir), (long) records);   /* the reader ends there: the end of the journal, not an error */
    note_event_[0] = '\0';
    int notes = 0;
    journal_opts_t o = { .report = s_note, .report_arg = &notes };
    journal_t *j = journal_open(dir, report ? &o : NULL, err, sizeof err);
    CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    if (report)
        CHECK_EQ_STR(note_event_, "journal.tail_cut");
    CHECK_EQ_INT(journal_durable_lsn(j), records);
    CHECK_EQ_INT(s_fill(j, upto), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), (long) upto);
}

/* A pre-sized segment: zeros after the last whole record are the end of the data, not a torn tail.
 * The scan is clean, the reader stops there, open cuts nothing and says nothing, and the next record
 * is written right after the last one, over the zeros. */
static void test_zeros_after_the_last_record_end_the_data(void)
{
    const char *dir = s_fresh("zerotail");
    journal_t *j;
    char path[4200];
    s_crashed_journal(dir, 7, path, sizeof path);
    uint64_t end = s_file_size(path);
    /* a crumb of zeros (shorter than a record header) and a long run alike */
    for (size_t zeros = 5; zeros <= 70000; zeros += 69995) {
        CHECK_EQ_INT(truncate(path, (off_t) end), 0);
        s_append_bytes(path, zeros, 0);
        jf_scan_t scan;
        char err[256];
        CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
        CHECK_EQ_INT(scan.state, JF_CLEAN);
        CHECK_EQ_INT(scan.records, 7);
        CHECK_EQ_INT(scan.nsegs, 1);
        CHECK_EQ_INT(scan.segs[0].used, end);
        CHECK_EQ_INT(scan.segs[0].size, end + zeros);
        jf_scan_free(&scan);
        CHECK_EQ_INT(s_read_all(dir), 7);
    }
    note_event_[0] = '\0';
    char err[512];
    int notes = 0;
    journal_opts_t o = { .report = s_note, .report_arg = &notes };
    j = journal_open(dir, &o, err, sizeof err);
    CHECK(j != NULL);
    CHECK_EQ_INT(notes, 0);   /* nothing cut, nothing to report */
    CHECK_EQ_INT(journal_durable_lsn(j), 7);
    CHECK_EQ_INT(s_fill(j, 8), 0);
    CHECK_EQ_INT(s_offset_of(dir, 8), (long) end);   /* over the zeros, not after them */
    CHECK_EQ_INT(s_read_all(dir), 8);
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), 8);
    /* a clean close leaves the zeros (a file never shrinks under a reader's mapping) and starts the
     * next segment: its records are read on through the zeros in the middle, and a scan is clean */
    j = s_open(dir, 0);
    CHECK_EQ_INT(s_fill(j, 9), 0);
    journal_destroy(&j);
    CHECK(s_file_size(path) > (uint64_t) s_offset_of(dir, 8) + 64);
    CHECK_EQ_INT(s_read_all(dir), 9);
    jf_scan_t scan;
    CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(scan.state, JF_CLEAN);
    CHECK_EQ_INT(scan.records, 9);
    jf_scan_free(&scan);
    /* records lost where the zeros are (bytes of an acknowledged record zeroed) break the chain to
     * the next segment: corruption, as ever */
    CHECK_EQ_INT(truncate(path, s_offset_of(dir, 8)), 0);
    s_append_bytes(path, 4096, 0);
    CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(scan.state, JF_CORRUPT);
    CHECK_EQ_INT(scan.records, 7);
    jf_scan_free(&scan);
    support_tmp_rmrf(dir);
}

/* Damage inside the zeros after the last record is a torn tail, cut back to the last record as
 * ever: part of a record (header whole, payload zeros), a header partly zeros, and zeros followed by
 * a later page of garbage. */
static void test_torn_tail_inside_the_zeros_is_cut_back(void)
{
    const char *dir = s_fresh("torninzeros");
    for (int kind = 0; kind < 3; kind++) {
        support_tmp_rmrf(dir);
        char path[4200];
        s_crashed_journal(dir, 8, path, sizeof path);
        long at = s_offset_of(dir, 8);
        size_t keep = kind == 0 ? JF_REC_HDR + 3 : kind == 1 ? 10 : 0;   /* bytes of record 8 kept */
        CHECK_EQ_INT(truncate(path, (off_t) at + (off_t) keep), 0);
        s_append_bytes(path, 8192, 0);
        if (kind == 2)
            s_append_bytes(path, 100, -1);
        s_torn_then_reopened(dir, at, 7, 9, 1);
    }
    support_tmp_rmrf(dir);
}

/* While it runs, the writer keeps zeros ahead of its records (the file is longer than its data)
 * and a reader reads every record as it lands in them. The zeros ahead stay between 192 and 256 KiB
 * (topped up 64 KiB at a time: the fdatasync that carries them pays for their bytes). With small
 * segments the zeros never pass segment_bytes: a segment it rotated away from ends with its last
 * record. */
static void test_writer_keeps_zeros_ahead_and_cuts_them_at_close(void)
{
    const char *dir = s_fresh("zeroahead");
    journal_t *j = s_open(dir, 0);
    char path[4200];
    s_seg_path(path, sizeof path, dir, 1);
    static const uint64_t uptos[] = { 10, 1000, 3000 };
    for (size_t k = 0; k < sizeof uptos / sizeof uptos[0]; k++) {
        uint64_t upto = uptos[k];
        CHECK_EQ_INT(s_fill(j, upto), 0);
        CHECK_EQ_INT(s_read_all(dir), (long) upto);
        uint8_t buf[128];
        uint64_t used = (uint64_t) s_offset_of(dir, upto) + JF_REC_HDR + s_payload(upto, buf);
        CHECK(s_file_size(path) >= used + (192u << 10));
        CHECK(s_file_size(path) <= used + (256u << 10));
    }
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), 3000);

    support_tmp_rmrf(dir);
    j = s_open(dir, 4000);
    CHECK_EQ_INT(s_fill(j, 400), 0);
    jf_seg_t *segs;
    size_t nsegs;
    char err[256];
    CHECK_EQ_INT(jf_list_segments(dir, &segs, &nsegs, err, sizeof err), 0);
    CHECK(nsegs >= 3);
    int bad = 0;
    for (size_t i = 0; i + 1 < nsegs; i++) {   /* every finished segment: whole records to its end */
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, segs[i].name);
        uint8_t *b;
        size_t len;
        if (s_read_file(p, &b, &len) != 0 || len < 4000 || jf_zeros_to_end(b, len, len - 8))
            bad++;
        if (len)
            free(b);
    }
    free(segs);
    CHECK_EQ_INT(bad, 0);
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), 400);
    support_tmp_rmrf(dir);
}

/* Every bit flip anywhere in a three-segment journal is caught. A flip inside the very last record
 * is a torn tail (cut on open: 8 records remain); a flip anywhere else (a segment header, any
 * earlier record, in any segment) is corruption: open refuses naming segment, offset and the repair
 * command, the reader returns -1. */
static void test_every_flipped_bit_is_detected(void)
{
    const char *dir = s_fresh("flip");
    journal_t *j = s_open(dir, 150);   /* small segments: 3 records each */
    CHECK_EQ_INT(s_fill(j, 9), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(support_journal_as_if_crashed(dir), 0);   /* the last record is then the last group commit */
    jf_seg_t *segs;
    size_t nsegs;
    char err[1024];
    CHECK_EQ_INT(jf_list_segments(dir, &segs, &nsegs, err, sizeof err), 0);
    CHECK(nsegs >= 3);
    long last_off = s_offset_of(dir, 9);
    int wrong = 0, flips = 0, torn = 0;
    for (size_t s = 0; s < nsegs; s++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, segs[s].name);
        uint8_t *orig;
        size_t len;
        CHECK_EQ_INT(s_read_file(path, &orig, &len), 0);
        for (size_t b = 0; b < len; b++) {
            orig[b] ^= (uint8_t) (1u << (b % 8));
            s_write_file(path, orig, len);
            orig[b] ^= (uint8_t) (1u << (b % 8));
            flips++;
            int in_last = s + 1 == nsegs && (long) b >= last_off;
            jf_scan_t scan;
            jf_scan(dir, &scan, NULL, NULL, err, sizeof err);
            int w0 = wrong;
            if (in_last) {
                torn++;
                if (scan.state != JF_TORN || scan.bad_offset != (uint64_t) last_off || scan.records != 8)
                    wrong++;
                else if (s_read_all(dir) != 8)
                    wrong++;
            } else {
                if (scan.state != JF_CORRUPT || scan.bad_seg != s)
                    wrong++;
                if (s_read_all(dir) != -1)
                    wrong++;
                if (b % 7 == 0) {   /* open is slower (a thread, a lock): a dense sample */
                    j = journal_open(dir, NULL, err, sizeof err);
                    if (j || !strstr(err, segs[s].name) || !strstr(err, "offset ") ||
                        !strstr(err, "kasa journal repair"))
                        wrong++;
                    journal_destroy(&j);
                }
            }
            if (wrong != w0 && getenv("DEBUG_FLIP"))
                fprintf(stderr, "  flip seg %zu byte %zu: state %d seg %zu off %" PRIu64 " records %" PRIu64 " (%s)\n",
                        s, b, (int) scan.state, scan.bad_seg, scan.bad_offset, scan.records, scan.reason);
            jf_scan_free(&scan);
            s_write_file(path, orig, len);
        }
        free(orig);
    }
    CHECK(flips > 400);
    CHECK(torn > 20);
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(s_read_all(dir), 9);
    free(segs);
    support_tmp_rmrf(dir);
}

/* ---- the last group commit: torn versus acknowledged ------------------------------------- */

/* A commit callback that can hold the flusher: while held, every submitted record waits in the
 * filling buffer, so the records submitted meanwhile leave in one group commit. */
static pthread_mutex_t s_hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_hold_cv = PTHREAD_COND_INITIALIZER;
static int s_hold_armed, s_hold_inside;

static void s_hold_cb(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    (void) arg; (void) lsn; (void) payload; (void) len;
    pthread_mutex_lock(&s_hold_mu);
    if (s_hold_armed) {
        s_hold_inside = 1;
        pthread_cond_broadcast(&s_hold_cv);
        while (s_hold_armed)
            pthread_cond_wait(&s_hold_cv, &s_hold_mu);
    }
    pthread_mutex_unlock(&s_hold_mu);
}

/* Builds a journal of `acked` records appended one by one (each its own acknowledged group commit)
 * and then one last group commit of `group` records (s_payload records, ~3 pages for 200); crashed:
 * as a crash leaves it (no proof that the last group commit was acknowledged). */
static void s_build_last_group(const char *dir, uint64_t acked, uint64_t group, int crashed)
{
    journal_t *j = s_open(dir, 0);
    CHECK_EQ_INT(s_fill(j, acked - 1), 0);
    journal_on_commit(j, s_hold_cb, NULL);
    pthread_mutex_lock(&s_hold_mu);
    s_hold_armed = 1;
    s_hold_inside = 0;
    pthread_mutex_unlock(&s_hold_mu);
    uint8_t buf[128];
    CHECK_EQ_INT(journal_submit(j, buf, s_payload(acked, buf)), acked);
    pthread_mutex_lock(&s_hold_mu);
    while (!s_hold_inside)
        pthread_cond_wait(&s_hold_cv, &s_hold_mu);
    pthread_mutex_unlock(&s_hold_mu);
    for (uint64_t lsn = acked + 1; lsn <= acked + group; lsn++)
        CHECK_EQ_INT(journal_submit(j, buf, s_payload(lsn, buf)), lsn);
    pthread_mutex_lock(&s_hold_mu);
    s_hold_armed = 0;
    pthread_cond_broadcast(&s_hold_cv);
    pthread_mutex_unlock(&s_hold_mu);
    CHECK_EQ_INT(journal_wait(j, acked + group), 0);
    journal_destroy(&j);
    if (crashed)
        CHECK_EQ_INT(support_journal_as_if_crashed(dir), 0);
}

/* Overwrites [from, to) of path with zeros (garbage = 0) or garbage. */
static void s_spoil(const char *path, long from, long to, int garbage)
{
    int fd = open(path, O_RDWR);
    for (long o = from; o < to; o++) {
        uint8_t b = garbage ? (uint8_t) (o * 89 + 7) : 0;
        CHECK_EQ_INT(pwrite(fd, &b, 1, o), 1);
    }
    close(fd);
}

/* Power loss during the last group commit: the disk kept a later page of it but not an earlier one
 * (zeros or stale bytes where the first page's part of the batch should be). Nothing acknowledged
 * was lost: the journal opens, cut back to the last acknowledged record, and appends go on. */
static void test_torn_last_group_commit_with_a_later_page_kept_starts_normally(void)
{
    const char *dir = s_fresh("tornbatch");
    for (int garbage = 0; garbage < 2; garbage++) {
        support_tmp_rmrf(dir);
        s_build_last_group(dir, 5, 200, 1);
        long start = s_offset_of(dir, 6), last = s_offset_of(dir, 205);
        CHECK(start > 0 && last > start + 8192);   /* the group spans more than two pages */
        char path[4200];
        s_seg_path(path, sizeof path, dir, 1);
        long page_end = (start / 4096 + 1) * 4096;
        s_spoil(path, start, page_end, garbage);   /* the first page of the group is lost */
        s_torn_then_reopened(dir, start, 5, 7, 0);
    }
    support_tmp_rmrf(dir);
}

/* Damage to acknowledged records still refuses to open: a byte flipped in an acknowledged record
 * before the last group commit, and the first page of a group commit lost when a later group
 * commit followed it (which proves the earlier one had reached the disk and was acknowledged). */
static void test_damage_to_acknowledged_records_refuses_to_open(void)
{
    const char *dir = s_fresh("ackdamage");
    char path[4200], err[512];
    s_seg_path(path, sizeof path, dir, 1);
    /* a flipped byte in record 3 of 5 single commits, then the last group of 100 */
    s_build_last_group(dir, 5, 200, 1);
    long off3 = s_offset_of(dir, 3);
    s_spoil(path, off3 + 26, off3 + 27, 1);
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j == NULL);
    CHECK(strstr(err, "kasa journal repair") != NULL);
    journal_destroy(&j);
    /* the group of 100 lost its first page, but one more commit followed it */
    support_tmp_rmrf(dir);
    s_build_last_group(dir, 5, 200, 1);
    j = s_open(dir, 0);
    CHECK_EQ_INT(s_fill(j, 206), 0);
    journal_destroy(&j);
    long start = s_offset_of(dir, 6);
    s_spoil(path, start, (start / 4096 + 1) * 4096, 0);
    j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j == NULL);
    CHECK(strstr(err, "kasa journal repair") != NULL);
    journal_destroy(&j);
    jf_scan_t scan;
    CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(scan.state, JF_CORRUPT);
    CHECK_EQ_INT(scan.bad_offset, start);
    jf_scan_free(&scan);
    support_tmp_rmrf(dir);
}

/* A clean close proves the last group commit: damage inside it (its first page lost, or one byte of
 * its very last record) then refuses to open, since those records were acknowledged. */
static void test_damage_to_the_last_group_commit_after_a_clean_close_refuses_to_open(void)
{
    const char *dir = s_fresh("closedbatch");
    char path[4200], err[512];
    s_seg_path(path, sizeof path, dir, 1);
    s_build_last_group(dir, 5, 200, 0);
    long start = s_offset_of(dir, 6), last = s_offset_of(dir, 205);
    s_spoil(path, start, (start / 4096 + 1) * 4096, 0);
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j == NULL);
    CHECK(strstr(err, "kasa journal repair") != NULL);
    journal_destroy(&j);
    support_tmp_rmrf(dir);
    s_build_last_group(dir, 5, 200, 0);
    s_spoil(path, last + JF_REC_HDR + 2, last + JF_REC_HDR + 3, 1);
    j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j == NULL);
    journal_destroy(&j);
    /* the same damage after a crash is a torn tail */
    support_tmp_rmrf(dir);
    s_build_last_group(dir, 5, 200, 1);
    s_spoil(path, last + JF_REC_HDR + 2, last + JF_REC_HDR + 3, 1);
    j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    CHECK_EQ_INT(journal_durable_lsn(j), 204);
    journal_destroy(&j);
    support_tmp_rmrf(dir);
}

/* A journal written by an older kasa (segment format 1: no batch indices) is read as it is, and the
 * writer goes on in a new segment of the current format; the chain runs across both. */
static void test_format_1_journal_is_read_and_appended_to_in_a_new_segment(void)
{
    const char *dir = s_fresh("v1");
    mkdir(dir, 0755);
    char path[4200];
    s_seg_path(path, sizeof path, dir, 1);
    FILE *f = fopen(path, "wb");
    uint8_t hdr[JF_SEG_HDR] = { 0 };
    jf_put32(hdr, JF_MAGIC);
    jf_put32(hdr + 4, 1);
    jf_put64(hdr + 8, 1);
    jf_put32(hdr + 24, jf_crc32c(0, hdr, 24));
    fwrite(hdr, 1, sizeof hdr, f);
    uint32_t prev = 0;
    for (uint64_t lsn = 1; lsn <= 6; lsn++) {
        uint8_t rec[JF_REC_HDR + 128] = { 0 };
        uint32_t len = (uint32_t) s_payload(lsn, rec + JF_REC_HDR);
        jf_put32(rec, len);
        jf_put64(rec + 8, lsn);
        jf_put32(rec + 16, prev);
        uint32_t c = jf_crc32c(jf_crc32c(jf_crc32c(0, rec + JF_REC_HDR, len), rec, 4), rec + 8, 16);
        jf_put32(rec + 4, c);
        prev = c;
        fwrite(rec, 1, JF_REC_HDR + len, f);
    }
    fclose(f);
    jf_scan_t scan;
    char err[512];
    CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(scan.state, JF_CLEAN);
    CHECK_EQ_INT(scan.records, 6);
    CHECK_EQ_INT(scan.segs[0].version, 1);
    jf_scan_free(&scan);
    CHECK_EQ_INT(s_read_all(dir), 6);
    journal_t *j = s_open(dir, 0);
    CHECK(j != NULL);
    CHECK_EQ_INT(journal_durable_lsn(j), 6);
    CHECK_EQ_INT(s_fill(j, 9), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(scan.state, JF_CLEAN);
    CHECK_EQ_INT(scan.nsegs, 3);   /* the old one, the new one, and the one a clean close starts */
    CHECK_EQ_INT(scan.segs[1].first_lsn, 7);
    CHECK_EQ_INT(scan.segs[1].version, JF_VERSION);
    jf_scan_free(&scan);
    CHECK_EQ_INT(s_read_all(dir), 9);
    /* damage in the old segment, now followed by a newer one, is corruption */
    s_spoil(path, JF_SEG_HDR + 30, JF_SEG_HDR + 31, 1);
    CHECK_EQ_INT(jf_scan(dir, &scan, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(scan.state, JF_CORRUPT);
    jf_scan_free(&scan);
    support_tmp_rmrf(dir);
}

static void test_corruption_before_the_tail_refuses_open_with_place_and_repair_command(void)
{
    const char *dir = s_fresh("midcorrupt");
    journal_t *j = s_open(dir, 0);
    CHECK_EQ_INT(s_fill(j, 20), 0);
    journal_destroy(&j);
    long off = s_offset_of(dir, 10);
    char path[4200];
    s_seg_path(path, sizeof path, dir, 1);
    int fd = open(path, O_RDWR);
    uint8_t byte;
    CHECK_EQ_INT(pread(fd, &byte, 1, off + 30), 1);
    byte ^= 0x40;
    CHECK_EQ_INT(pwrite(fd, &byte, 1, off + 30), 1);
    close(fd);
    char err[1024], want[128];
    j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j == NULL);
    snprintf(want, sizeof want, "segment 00000000000000000001.seg at offset %ld", off);
    CHECK(strstr(err, want) != NULL);
    snprintf(want, sizeof want, "kasa journal repair %s", dir);
    CHECK(strstr(err, want) != NULL);
    /* the reader delivers 1..9, then the error names the place */
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    journal_entry_t e;
    int n = 0, rc;
    while ((rc = journal_reader_next(r, &e)) == 1)
        n++;
    CHECK_EQ_INT(rc, -1);
    CHECK_EQ_INT(n, 9);
    snprintf(want, sizeof want, "segment 00000000000000000001.seg offset %ld", off);
    CHECK(strstr(journal_reader_error(r), want) != NULL);
    journal_reader_destroy(&r);
    support_tmp_rmrf(dir);
}

static void test_missing_or_reordered_records_are_detected(void)
{
    const char *dir = s_fresh("order");
    journal_t *j = s_open(dir, 0);
    uint8_t rec[40];
    memset(rec, 'x', sizeof rec);
    for (int i = 0; i < 6; i++)   /* equal lengths, so records can be swapped in place */
        CHECK(journal_append(j, rec, sizeof rec) != 0);
    journal_destroy(&j);
    char path[4200];
    s_seg_path(path, sizeof path, dir, 1);
    uint8_t *orig;
    size_t len;
    CHECK_EQ_INT(s_read_file(path, &orig, &len), 0);
    size_t rl = JF_REC_HDR + sizeof rec, r2 = JF_SEG_HDR + rl, r3 = r2 + rl;
    uint8_t *mod = malloc(len);
    /* swap records 2 and 3 */
    memcpy(mod, orig, len);
    memcpy(mod + r2, orig + r3, rl);
    memcpy(mod + r3, orig + r2, rl);
    s_write_file(path, mod, len);
    jf_scan_t scan;
    char err[256];
    jf_scan(dir, &scan, NULL, NULL, err, sizeof err);
    CHECK_EQ_INT(scan.state, JF_CORRUPT);
    CHECK_EQ_INT(scan.bad_offset, r2);
    CHECK(strstr(scan.reason, "LSN") != NULL);
    jf_scan_free(&scan);
    /* drop record 2 */
    memcpy(mod, orig, r2);
    memcpy(mod + r2, orig + r3, len - r3);
    s_write_file(path, mod, len - rl);
    jf_scan(dir, &scan, NULL, NULL, err, sizeof err);
    CHECK_EQ_INT(scan.state, JF_CORRUPT);
    CHECK_EQ_INT(scan.bad_offset, r2);
    jf_scan_free(&scan);
    free(mod);
    free(orig);
    support_tmp_rmrf(dir);
}

static void test_missing_segment_is_corruption(void)
{
    const char *dir = s_fresh("missingseg");
    journal_t *j = s_open(dir, 200);
    CHECK_EQ_INT(s_fill(j, 30), 0);
    journal_destroy(&j);
    jf_seg_t *segs;
    size_t n;
    char err[1024], path[4200];
    CHECK_EQ_INT(jf_list_segments(dir, &segs, &n, err, sizeof err), 0);
    CHECK(n >= 4);
    snprintf(path, sizeof path, "%s/%s", dir, segs[1].name);
    CHECK_EQ_INT(unlink(path), 0);
    j = journal_open(dir, NULL, err, sizeof err);
    CHECK(j == NULL);
    CHECK(strstr(err, segs[2].name) != NULL);
    CHECK(strstr(err, "missing") != NULL);
    CHECK_EQ_INT(s_read_all(dir), -1);
    free(segs);
    support_tmp_rmrf(dir);
}

/* Many segments; a reader from any LSN gets exactly that LSN onwards, across segments. */
static void test_rotation_and_replay_from_any_lsn(void)
{
    const char *dir = s_fresh("rotate");
    journal_t *j = s_open(dir, 1000);
    CHECK_EQ_INT(s_fill(j, 300), 0);
    journal_destroy(&j);
    jf_seg_t *segs;
    size_t n;
    char err[256];
    CHECK_EQ_INT(jf_list_segments(dir, &segs, &n, err, sizeof err), 0);
    CHECK(n >= 10);
    uint64_t froms[64];
    size_t nf = 0;
    froms[nf++] = 0; froms[nf++] = 1; froms[nf++] = 2; froms[nf++] = 150; froms[nf++] = 299;
    froms[nf++] = 300; froms[nf++] = 301; froms[nf++] = 100000;
    for (size_t i = 1; i < n && nf < 60; i++) {   /* segment boundaries, either side */
        froms[nf++] = segs[i].first_lsn - 1;
        froms[nf++] = segs[i].first_lsn;
    }
    int bad = 0;
    for (size_t f = 0; f < nf; f++) {
        journal_reader_t *r = journal_reader_open(dir, froms[f], err, sizeof err);
        uint64_t expect = froms[f] ? froms[f] : 1;
        journal_entry_t e;
        int rc;
        while ((rc = journal_reader_next(r, &e)) == 1) {
            if (e.lsn != expect || !s_payload_ok(e.lsn, e.payload, e.len))
                bad++;
            expect++;
        }
        if (rc != 0 || (froms[f] <= 300 && expect != 301))
            bad++;
        journal_reader_destroy(&r);
    }
    CHECK_EQ_INT(bad, 0);
    /* the chain spans segments: the second segment's header names the last checksum of the first */
    j = s_open(dir, 1000);
    CHECK_EQ_INT(journal_durable_lsn(j), 300);
    CHECK_EQ_INT(s_fill(j, 400), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), 400);
    free(segs);
    support_tmp_rmrf(dir);
}

/* A reader follows a journal that is being written, including across rotations. */
static void test_reader_follows_a_live_journal(void)
{
    const char *dir = s_fresh("live");
    journal_t *j = s_open(dir, 500);
    char err[256];
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    journal_entry_t e;
    uint64_t seen = 0;
    int bad = 0;
    for (uint64_t upto = 10; upto <= 100; upto += 10) {
        CHECK_EQ_INT(s_fill(j, upto), 0);
        int rc;
        while ((rc = journal_reader_next(r, &e)) == 1) {
            if (e.lsn != seen + 1 || !s_payload_ok(e.lsn, e.payload, e.len))
                bad++;
            seen = e.lsn;
        }
        if (rc != 0 || seen != upto)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    journal_reader_destroy(&r);
    journal_destroy(&j);
    support_tmp_rmrf(dir);
}

/* ---- concurrency --------------------------------------------------------------------------- */

#define CT_THREADS 16
#define CT_EACH 400

typedef struct {
    journal_t *j;
    int id;
    uint64_t lsns[CT_EACH];
    int got;
    int use_submit;
} ct_arg_t;

static void *s_ct_worker(void *p)
{
    ct_arg_t *a = p;
    for (int i = 0; i < CT_EACH; i++) {
        uint32_t rec[2] = { (uint32_t) a->id, (uint32_t) i };
        uint64_t lsn;
        if (a->use_submit) {
            lsn = journal_submit(a->j, rec, sizeof rec);
            if (lsn && journal_wait(a->j, lsn) != 0)
                lsn = 0;
        } else {
            lsn = journal_append(a->j, rec, sizeof rec);
        }
        if (lsn == 0)
            break;
        a->lsns[a->got++] = lsn;
    }
    return NULL;
}

typedef struct {
    uint64_t last;
    uint64_t calls;
    int out_of_order;
    atomic_int in_callback;
    int overlap;
} ct_commits_t;

static void s_ct_commit(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    ct_commits_t *c = arg;
    if (atomic_fetch_add(&c->in_callback, 1) != 0)
        c->overlap++;
    if (lsn != c->last + 1 || len != 8 || !payload)
        c->out_of_order++;
    c->last = lsn;
    c->calls++;
    atomic_fetch_sub(&c->in_callback, 1);
}

static void test_concurrent_appenders_get_unique_gap_free_lsns(void)
{
    const char *dir = s_fresh("concurrent");
    journal_t *j = s_open(dir, 4096);   /* rotations while 16 threads append */
    static ct_commits_t commits;
    memset(&commits, 0, sizeof commits);
    journal_on_commit(j, s_ct_commit, &commits);
    static ct_arg_t args[CT_THREADS];
    pthread_t th[CT_THREADS];
    for (int t = 0; t < CT_THREADS; t++) {
        args[t] = (ct_arg_t) { .j = j, .id = t, .use_submit = t % 4 == 0 };
        pthread_create(&th[t], NULL, s_ct_worker, &args[t]);
    }
    for (int t = 0; t < CT_THREADS; t++)
        pthread_join(th[t], NULL);
    uint64_t total = (uint64_t) CT_THREADS * CT_EACH;
    CHECK_EQ_INT(journal_durable_lsn(j), total);
    journal_destroy(&j);
    CHECK_EQ_INT(commits.calls, total);
    CHECK_EQ_INT(commits.out_of_order, 0);
    CHECK_EQ_INT(commits.overlap, 0);
    /* every LSN handed out once; record lsn holds what its appender wrote */
    uint32_t *owner = calloc(total + 1, sizeof *owner);
    int bad = 0;
    for (int t = 0; t < CT_THREADS; t++) {
        if (args[t].got != CT_EACH)
            bad++;
        for (int i = 0; i < args[t].got; i++) {
            uint64_t l = args[t].lsns[i];
            if (l == 0 || l > total || owner[l])
                bad++;
            else
                owner[l] = (uint32_t) (t << 16 | i) + 1;
            if (i && l <= args[t].lsns[i - 1])
                bad++;   /* one thread's records are in its own order */
        }
    }
    CHECK_EQ_INT(bad, 0);
    char err[256];
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    journal_entry_t e;
    uint64_t n = 0;
    while (journal_reader_next(r, &e) == 1) {
        uint32_t rec[2];
        n++;
        if (e.lsn != n || e.len != 8) { bad++; continue; }
        memcpy(rec, e.payload, 8);
        if (owner[e.lsn] != (rec[0] << 16 | rec[1]) + 1)
            bad++;
    }
    CHECK_EQ_INT(n, total);
    CHECK_EQ_INT(bad, 0);
    journal_reader_destroy(&r);
    free(owner);
    support_tmp_rmrf(dir);
}

typedef struct {
    journal_t *j;
    _Atomic uint64_t seen;
    int not_durable, out_of_order;
} cb_seen_t;

static void s_cb_record(void *arg, uint64_t lsn, const void *p, size_t len)
{
    cb_seen_t *c = arg;
    (void) p; (void) len;
    if (journal_durable_lsn(c->j) < lsn)
        c->not_durable++;
    if (lsn != atomic_load(&c->seen) + 1)
        c->out_of_order++;
    atomic_store(&c->seen, lsn);
}

/* The commit callback sees each record once, in order, only once it is durable; it runs after the
 * appender is woken, so it may come just after journal_append returns, never before the record is
 * durable, and every call has been made once the journal is closed. */
static void test_commit_callback_runs_once_per_durable_record(void)
{
    const char *dir = s_fresh("callback");
    journal_t *j = s_open(dir, 0);
    static cb_seen_t c;
    memset(&c, 0, sizeof c);
    c.j = j;
    journal_on_commit(j, s_cb_record, &c);
    for (int i = 0; i < 50; i++)
        CHECK_EQ_INT(journal_append(j, "abc", 3), (uint64_t) i + 1);
    journal_destroy(&j);
    CHECK_EQ_INT(atomic_load(&c.seen), 50);
    CHECK_EQ_INT(c.not_durable, 0);
    CHECK_EQ_INT(c.out_of_order, 0);
    support_tmp_rmrf(dir);
}

/* journal_wait on the record its thread submitted last sleeps on that record's batch; on any other
 * LSN on the commit counter. Either returns only once its LSN is durable, under concurrency. */
typedef struct {
    journal_t *j;
    int id;
    int early;   /* journal_wait returned before its LSN was durable */
    int failed;
} wait_arg_t;

static void *s_wait_worker(void *p)
{
    wait_arg_t *a = p;
    uint8_t buf[64];
    for (int i = 0; i < 200; i++) {
        memset(buf, 'a' + a->id, sizeof buf);
        uint64_t lsn = journal_submit(a->j, buf, 16 + (size_t) (i % 40));
        uint64_t other = i % 5 == 4 && lsn > 1 ? lsn - 1 : 0;   /* someone else's, sometimes */
        if (!lsn || journal_wait(a->j, other ? other : lsn) != 0) {
            a->failed++;
            continue;
        }
        if (journal_durable_lsn(a->j) < (other ? other : lsn))
            a->early++;
        if (other && (journal_wait(a->j, lsn) != 0 || journal_durable_lsn(a->j) < lsn))
            a->early++;
    }
    return NULL;
}

static void test_submit_then_wait_returns_only_once_durable_under_concurrency(void)
{
    const char *dir = s_fresh("submitwait");
    journal_t *j = s_open(dir, 0);
    CHECK(j != NULL);
    enum { N = 16 };
    pthread_t t[N];
    wait_arg_t a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (wait_arg_t) { .j = j, .id = i };
        pthread_create(&t[i], NULL, s_wait_worker, &a[i]);
    }
    int early = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        early += a[i].early;
        failed += a[i].failed;
    }
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT((int) journal_durable_lsn(j), N * 200);
    journal_destroy(&j);
    support_tmp_rmrf(dir);
}

/* journal_when_durable: each registration is called exactly once, never before its LSN is durable,
 * from 16 submitting threads; at once for an LSN durable already; -1 for one never handed out; and
 * -1 for every registration still waiting when the journal fails. */
typedef struct {
    journal_t *j;
    uint64_t lsn;
    atomic_int calls;
    atomic_int early;     /* called with 0 before its LSN was durable */
    atomic_int rc;
} durable_seen_t;

static void s_durable_cb(void *arg, int rc)
{
    durable_seen_t *d = arg;
    if (rc == 0 && journal_durable_lsn(d->j) < d->lsn)
        atomic_fetch_add(&d->early, 1);
    atomic_store(&d->rc, rc);
    atomic_fetch_add(&d->calls, 1);
}

typedef struct {
    journal_t *j;
    durable_seen_t seen[200];
} durable_arg_t;

static void *s_durable_worker(void *p)
{
    durable_arg_t *a = p;
    for (int i = 0; i < 200; i++) {
        durable_seen_t *d = &a->seen[i];
        d->j = a->j;
        d->lsn = journal_submit(a->j, "abcdefgh", 8);
        journal_when_durable(a->j, d->lsn, s_durable_cb, d);
    }
    return NULL;
}

static void test_when_durable_calls_each_registration_once_and_only_once_durable(void)
{
    const char *dir = s_fresh("whendurable");
    journal_t *j = s_open(dir, 0);
    CHECK(j != NULL);
    enum { N = 16 };
    static durable_arg_t a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].j = j;
        pthread_create(&t[i], NULL, s_durable_worker, &a[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    /* every one is called by the commit that makes it durable (or at once): wait for them all */
    for (int tries = 0; tries < 1000; tries++) {
        int calls = 0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < 200; k++)
                calls += atomic_load(&a[i].seen[k].calls);
        if (calls >= N * 200)
            break;
        usleep(2000);
    }
    uint64_t durable = journal_durable_lsn(j);
    int once = 0, early = 0, bad_rc = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 200; k++) {
            durable_seen_t *d = &a[i].seen[k];
            if (d->lsn <= durable)
                once += atomic_load(&d->calls) == 1;
            early += atomic_load(&d->early);
            bad_rc += atomic_load(&d->rc) != 0;
        }
    CHECK_EQ_INT((int) durable, N * 200);
    CHECK_EQ_INT(once, N * 200);
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT(bad_rc, 0);

    static durable_seen_t now, never;
    memset(&now, 0, sizeof now);
    memset(&never, 0, sizeof never);
    now.j = never.j = j;
    now.lsn = 7;
    journal_when_durable(j, 7, s_durable_cb, &now);   /* durable already: called at once */
    CHECK_EQ_INT(atomic_load(&now.calls), 1);
    CHECK_EQ_INT(atomic_load(&now.rc), 0);
    journal_when_durable(j, durable + 1000, s_durable_cb, &never);   /* never handed out */
    CHECK_EQ_INT(atomic_load(&never.calls), 1);
    CHECK_EQ_INT(atomic_load(&never.rc), -1);
    journal_destroy(&j);

    /* a failed fdatasync: the waiting registration hears -1, once; none hears 0 */
    j = s_open(dir, 0);
    CHECK(j != NULL);
    static durable_seen_t lost, after;
    memset(&lost, 0, sizeof lost);
    memset(&after, 0, sizeof after);
    lost.j = after.j = j;
    fio_fail_at(FIO_FSYNC, 1, EIO);
    lost.lsn = journal_submit(j, "lost", 4);
    journal_when_durable(j, lost.lsn, s_durable_cb, &lost);
    for (int i = 0; i < 500 && atomic_load(&lost.calls) == 0; i++)
        usleep(2000);
    CHECK_EQ_INT(atomic_load(&lost.calls), 1);
    CHECK_EQ_INT(atomic_load(&lost.rc), -1);
    CHECK_EQ_INT(atomic_load(&lost.early), 0);
    after.lsn = lost.lsn;
    journal_when_durable(j, lost.lsn, s_durable_cb, &after);   /* after the failure: -1 at once */
    CHECK_EQ_INT(atomic_load(&after.calls), 1);
    CHECK_EQ_INT(atomic_load(&after.rc), -1);
    journal_destroy(&j);
    CHECK_EQ_INT(atomic_load(&lost.calls), 1);
    fio_reset();
    support_tmp_rmrf(dir);
}

static void test_second_open_is_refused_while_locked(void)
{
    const char *dir = s_fresh("lock");
    journal_t *j = s_open(dir, 0);
    CHECK(j != NULL);
    char err[512], want[128];
    journal_t *j2 = journal_open(dir, NULL, err, sizeof err);
    CHECK(j2 == NULL);
    snprintf(want, sizeof want, "is in use by another process (pid %d)", (int) getpid());
    CHECK(strstr(err, want) != NULL);
    /* readers need no lock */
    CHECK_EQ_INT(s_fill(j, 3), 0);
    CHECK_EQ_INT(s_read_all(dir), 3);
    journal_destroy(&j);
    j2 = s_open(dir, 0);
    CHECK(j2 != NULL);
    journal_destroy(&j2);
    /* another process is refused too */
    j = s_open(dir, 0);
    pid_t pid = fork();
    if (pid == 0) {
        journal_t *c = journal_open(dir, NULL, err, sizeof err);
        _exit(c == NULL && strstr(err, "in use by another process") ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    journal_destroy(&j);
    support_tmp_rmrf(dir);
}


/* A holder of the lock that lets go within JF_LOCK_WAIT_MS (a dying kasa's child before its exec)
 * is waited for: the open succeeds. */
static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_a_lock_let_go_of_within_the_wait_is_taken(void)
{
    const char *dir = s_fresh("lock-wait");
    journal_t *j = s_open(dir, 0);
    CHECK(j != NULL);
    journal_destroy(&j);
    char path[400], err[512];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    pid_t pid = fork();
    if (pid == 0) {   /* holds the same open file (as a child before exec does), lets go after 300 ms */
        usleep(300000);
        _exit(0);
    }
    close(fd);   /* the child's copy still holds it */
    int64_t t0 = s_mono_ms();
    j = journal_open(dir, NULL, err, sizeof err);
    int64_t took = s_mono_ms() - t0;
    CHECK(j != NULL);
    CHECK(took >= 200 && took < JF_LOCK_WAIT_MS);
    journal_destroy(&j);
    waitpid(pid, NULL, 0);
    support_tmp_rmrf(dir);
}

/* journal_destroy finishes what was queued: 200 submitted, none waited for, all on disk after. */
static void test_destroy_makes_every_submitted_record_durable(void)
{
    const char *dir = s_fresh("destroy");
    journal_t *j = s_open(dir, 0);
    uint8_t buf[128];
    int bad = 0;
    for (uint64_t lsn = 1; lsn <= 200; lsn++)
        if (journal_submit(j, buf, s_payload(lsn, buf)) != lsn)
            bad++;
    journal_destroy(&j);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(s_read_all(dir), 200);
    support_tmp_rmrf(dir);
}

/* journal_hold: records submitted under a hold go in one batch once it is released; a hold never
 * released holds nothing for long (JOURNAL_HOLD_MAX_US); holds of two holders, released in turn. */
static void test_hold_gathers_records_into_one_commit_and_never_blocks_one(void)
{
    const char *dir = s_fresh("hold");
    journal_t *j = s_open(dir, 0);
    uint8_t buf[128];
    CHECK_EQ_INT((int) journal_append(j, buf, s_payload(1, buf)), 1);   /* the flusher is idle again */
    const probe_hist_t *batches = journal_batch_records(j);
    uint64_t before = atomic_load(&batches->count);
    journal_hold(j);
    for (uint64_t lsn = 2; lsn <= 9; lsn++)
        CHECK(journal_submit(j, buf, s_payload(lsn, buf)) == lsn);
    journal_release(j);
    CHECK_EQ_INT(journal_wait(j, 9), 0);
    CHECK(atomic_load(&batches->count) - before <= 2);   /* 8 records: one batch (two if the first went at once) */
    /* a holder that never releases: the record waits JOURNAL_HOLD_MAX_US for it, no longer */
    journal_hold(j);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(journal_append(j, buf, s_payload(10, buf)) == 10);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t waited_us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    CHECK(waited_us >= JOURNAL_HOLD_MAX_US * 9 / 10);
    CHECK(waited_us < 2000000);
    journal_hold(j);   /* a second holder; each releases */
    CHECK(journal_submit(j, buf, s_payload(11, buf)) == 11);
    journal_release(j);
    journal_release(j);
    CHECK_EQ_INT(journal_wait(j, 11), 0);
    journal_destroy(&j);
    CHECK_EQ_INT(s_read_all(dir), 11);
    support_tmp_rmrf(dir);
}

/* Big records fill the batch buffer: appenders wait for room, none is lost or split. */
typedef struct { journal_t *j; int id; int ok; } big_arg_t;

static void *s_big_worker(void *p)
{
    big_arg_t *a = p;
    uint8_t *rec = malloc(600 * 1024);
    for (int i = 0; i < 3; i++) {
        memset(rec, 'A' + a->id * 3 + i, 600 * 1024);
        if (journal_append(a->j, rec, 600 * 1024) != 0)
            a->ok++;
    }
    free(rec);
    return NULL;
}

static void test_full_batch_buffer_makes_appenders_wait_not_fail(void)
{
    const char *dir = s_fresh("bigbatch");
    char err[256];
    journal_opts_t o = { .segment_bytes = 2u << 20, .max_batch_bytes = 1 };  /* smallest buffer: one record */
    journal_t *j = journal_open(dir, &o, err, sizeof err);
    CHECK(j != NULL);
    big_arg_t args[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (big_arg_t) { j, t, 0 };
        pthread_create(&th[t], NULL, s_big_worker, &args[t]);
    }
    int ok = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        ok += args[t].ok;
    }
    CHECK_EQ_INT(ok, 12);
    journal_destroy(&j);
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    journal_entry_t e;
    int n = 0, bad = 0;
    while (journal_reader_next(r, &e) == 1) {
        n++;
        if (e.len != 600 * 1024 || e.payload[0] != e.payload[e.len - 1] || e.payload[0] < 'A' || e.payload[0] >= 'A' + 12)
            bad++;
    }
    CHECK_EQ_INT(n, 12);
    CHECK_EQ_INT(bad, 0);
    journal_reader_destroy(&r);
    support_tmp_rmrf(dir);
}

/* ---- injected failures --------------------------------------------------------------------- */

/* For each n: the n-th write (or fdatasync) fails. Appends up to then are acknowledged, that one and
 * every later one fail, and after reopening every acknowledged record is there, intact. */
static void s_fail_each(fio_op_t op, int short_write, uint64_t max_nth)
{
    const char *dir = s_fresh("failnth");
    int bad = 0;
    for (uint64_t nth = 1; nth <= max_nth; nth++) {
        support_tmp_rmrf(dir);
        journal_t *j = s_open(dir, 300);   /* rotations inside the window: segment creation fails too */
        if (short_write)
            fio_short_write_at(nth, 7);
        else
            fio_fail_at(op, nth, EIO);
        uint64_t acked = 0;
        uint8_t buf[128];
        int failed = 0;
        for (uint64_t lsn = 1; lsn <= 16; lsn++) {
            uint64_t fired = fio_faults_fired();
            uint64_t got = journal_append(j, buf, s_payload(lsn, buf));
            if (fio_faults_fired() != fired && got != 0)
                bad++;   /* the append whose write/sync failed is never acknowledged */
            if (got == 0) { failed = 1; continue; }
            if (failed || got != lsn) bad++;   /* nothing succeeds after a failure */
            acked = got;
        }
        if (!failed || fio_faults_fired() != 1) bad++;
        if (journal_durable_lsn(j) != acked) bad++;
        journal_destroy(&j);
        fio_reset();
        long n = s_read_all(dir);
        if (n < (long) acked) bad++;
        j = s_open(dir, 300);
        if (!j) { bad++; continue; }
        uint64_t d = journal_durable_lsn(j);
        if (d < acked) bad++;
        if (s_fill(j, d + 3) != 0) bad++;   /* appends go on after reopening */
        journal_destroy(&j);
        if (s_read_all(dir) != (long) d + 3) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    fio_reset();
    support_tmp_rmrf(dir);
}

static void test_failed_write_at_every_point_loses_no_acknowledged_record(void) { s_fail_each(FIO_WRITE, 0, 12); }
static void test_failed_fdatasync_at_every_point_loses_no_acknowledged_record(void) { s_fail_each(FIO_FSYNC, 0, 12); }
static void test_short_write_at_every_point_loses_no_acknowledged_record(void) { s_fail_each(FIO_WRITE, 1, 12); }
static void test_failed_rename_at_every_point_loses_no_acknowledged_record(void) { s_fail_each(FIO_RENAME, 0, 3); }

static void test_failed_rotation_leaves_no_tmp_file_after_reopen(void)
{
    const char *dir = s_fresh("rotfail");
    journal_t *j = s_open(dir, 100);
    CHECK_EQ_INT(s_fill(j, 2), 0);
    fio_fail_at(FIO_RENAME, 1, ENOSPC);
    uint8_t buf[128];
    uint64_t got = 1;
    for (uint64_t lsn = 3; lsn < 20 && got; lsn++)
        got = journal_append(j, buf, s_payload(lsn, buf));
    CHECK_EQ_INT(got, 0);
    CHECK_EQ_INT(fio_faults_fired(), 1);
    uint64_t acked = journal_durable_lsn(j);
    journal_destroy(&j);
    fio_reset();
    j = s_open(dir, 100);
    CHECK(j != NULL);
    CHECK_EQ_INT(journal_durable_lsn(j), acked);
    journal_destroy(&j);
    char tmp[4200], name[JF_NAME_MAX];
    jf_seg_name(name, acked + 1);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_EQ_INT(s_read_all(dir), (long) acked);
    support_tmp_rmrf(dir);
}

/* 8 threads append while a write fails in the middle: every acknowledged record survives. */
typedef struct {
    journal_t *j;
    uint64_t acked[4000];
    int n;
} ft_arg_t;

static void *s_ft_worker(void *p)
{
    ft_arg_t *a = p;
    uint8_t buf[128];
    while (a->n < 4000) {
        /* the payload depends on the LSN, which is known only after submit: use a fixed one */
        memset(buf, 'q', 32);
        uint64_t lsn = journal_append(a->j, buf, 32);
        if (lsn == 0)
            break;
        a->acked[a->n++] = lsn;
    }
    return NULL;
}

static void test_concurrent_appenders_lose_nothing_acknowledged_when_a_write_fails(void)
{
    const char *dir = s_fresh("concfail");
    journal_t *j = s_open(dir, 2000);
    static ft_arg_t args[8];
    pthread_t th[8];
    fio_fail_at(FIO_WRITE, 40, EIO);
    for (int t = 0; t < 8; t++) {
        args[t].j = j;
        args[t].n = 0;
        pthread_create(&th[t], NULL, s_ft_worker, &args[t]);
    }
    for (int t = 0; t < 8; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ_INT(fio_faults_fired(), 1);
    uint64_t max_acked = 0, count = 0;
    for (int t = 0; t < 8; t++) {
        CHECK(args[t].n < 4000);   /* every thread saw the failure */
        for (int i = 0; i < args[t].n; i++) {
            count++;
            if (args[t].acked[i] > max_acked)
                max_acked = args[t].acked[i];
        }
    }
    CHECK(count > 0);
    CHECK_EQ_INT(count, max_acked);   /* acked LSNs are exactly 1..max: nothing acked past a gap */
    CHECK_EQ_INT(journal_durable_lsn(j), max_acked);
    CHECK_EQ_INT(journal_append(j, "x", 1), 0);
    journal_destroy(&j);
    fio_reset();
    j = s_open(dir, 2000);
    CHECK(j != NULL);
    CHECK(journal_durable_lsn(j) >= max_acked);
    journal_destroy(&j);
    char err[256];
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    journal_entry_t e;
    uint64_t n = 0;
    while (journal_reader_next(r, &e) == 1)
        n = e.lsn;
    CHECK(n >= max_acked);
    journal_reader_destroy(&r);
    support_tmp_rmrf(dir);
}

/* A process killed (SIGKILL) in the middle of appending: every record it reported as acknowledged
 * is there after reopening, and the journal opens cleanly. */
/* A writer killed at any moment loses no acknowledged record: with small segments (rotations) and
 * with the default size (the kill leaves the zeros written ahead after the last record). */
static void s_kill_writer(uint64_t segment_bytes)
{
    const char *dir = s_fresh("kill");
    int pfd[2];
    CHECK_EQ_INT(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        journal_t *j = s_open(dir, segment_bytes);
        uint8_t buf[128];
        for (uint64_t lsn = 1;; lsn++) {
            if (journal_append(j, buf, s_payload(lsn, buf)) != lsn)
                _exit(3);
            if (write(pfd[1], &lsn, sizeof lsn) != sizeof lsn)
                _exit(4);
        }
    }
    close(pfd[1]);
    uint64_t acked = 0, v;
    while (acked < 300 && read(pfd[0], &v, sizeof v) == sizeof v)
        acked = v;
    kill(pid, SIGKILL);
    while (read(pfd[0], &v, sizeof v) == sizeof v)
        acked = v;
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(acked >= 300);
    journal_t *j = s_open(dir, segment_bytes);
    CHECK(j != NULL);
    CHECK(journal_durable_lsn(j) >= acked);
    journal_destroy(&j);
    CHECK(s_read_all(dir) >= (long) acked);
    support_tmp_rmrf(dir);
}

static void test_killed_writer_loses_no_acknowledged_record(void)
{
    s_kill_writer(4000);
    s_kill_writer(0);
}

int main(void)
{
    RUN(test_crc32c_matches_the_standard_check_value);
    RUN(test_hold_gathers_records_into_one_commit_and_never_blocks_one);
    RUN(test_when_durable_calls_each_registration_once_and_only_once_durable);
    RUN(test_append_is_durable_and_survives_reopen);
    RUN(test_empty_and_oversized_payloads);
    RUN(test_open_tightens_an_older_journals_modes);
    RUN(test_reader_over_bytes_matches_the_file);
    RUN(test_torn_last_record_at_every_offset_is_cut_back);
    RUN(test_cut_torn_tail_is_reported_to_the_caller);
    RUN(test_garbage_tail_is_a_torn_tail);
    RUN(test_zeros_after_the_last_record_end_the_data);
    RUN(test_torn_tail_inside_the_zeros_is_cut_back);
    RUN(test_writer_keeps_zeros_ahead_and_cuts_them_at_close);
    RUN(test_every_flipped_bit_is_detected);
    RUN(test_corruption_before_the_tail_refuses_open_with_place_and_repair_command);
    RUN(test_torn_last_group_commit_with_a_later_page_kept_starts_normally);
    RUN(test_damage_to_acknowledged_records_refuses_to_open);
    RUN(test_damage_to_the_last_group_commit_after_a_clean_close_refuses_to_open);
    RUN(test_format_1_journal_is_read_and_appended_to_in_a_new_segment);
    RUN(test_missing_or_reordered_records_are_detected);
    RUN(test_missing_segment_is_corruption);
    RUN(test_rotation_and_replay_from_any_lsn);
    RUN(test_reader_follows_a_live_journal);
    RUN(test_concurrent_appenders_get_unique_gap_free_lsns);
    RUN(test_commit_callback_runs_once_per_durable_record);
    RUN(test_submit_then_wait_returns_only_once_durable_under_concurrency);
    RUN(test_second_open_is_refused_while_locked);
    RUN(test_a_lock_let_go_of_within_the_wait_is_taken);
    RUN(test_destroy_makes_every_submitted_record_durable);
    RUN(test_full_batch_buffer_makes_appenders_wait_not_fail);
    RUN(test_failed_write_at_every_point_loses_no_acknowledged_record);
    RUN(test_failed_fdatasync_at_every_point_loses_no_acknowledged_record);
    RUN(test_short_write_at_every_point_loses_no_acknowledged_record);
    RUN(test_failed_rename_at_every_point_loses_no_acknowledged_record);
    RUN(test_failed_rotation_leaves_no_tmp_file_after_reopen);
    RUN(test_concurrent_appenders_lose_nothing_acknowledged_when_a_write_fails);
    RUN(test_killed_writer_loses_no_acknowledged_record);
    return check_done();
}
