/* cmd_journal.c — `kasa journal verify|dump|stats|repair DIR`: look at the journal, or repair it.
 *
 *   verify DIR                    check every checksum, LSN and the chain across segments
 *   dump DIR [--json] [--from N]  one line (or JSON object) per record
 *   stats DIR                     records, segments, bytes, LSNs, counts per kind and per state
 *   repair DIR                    quarantine what cannot be read (copied to DIR/quarantine-<UTC
 *                                 time>/ with a REPORT), keep every readable record after it behind
 *                                 a break, mark every unfinished deposit (HISTORY_GAP)
 *
 * verify, dump and stats only read (no lock: they work beside a running server). repair takes the
 * journal's lock and refuses while a server holds it. Exit status: 0 ok, 1 damage or failure, 2 usage. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "actors/checkpoint.h"
#include "journal/findex.h"
#include "journal/fio.h"
#include "journal/jformat.h"
#include "journal/snapshot.h"
#include "journal/journal.h"
#include "schema/record.h"
#include "tools/commands.h"
#include "schema/log.h"

typedef struct {
    const char *name;
    const char *usage;
    const char *help;
} s_verb_t;

static const s_verb_t s_verbs[] = {
    { "verify", "kasa journal verify DIR",
      "Checks every record of the journal in DIR: its checksum, its LSN (1, 2, 3, ... with no gap) and\n"
      "the chain (each record names the previous record's checksum, across segments). Prints the number\n"
      "of segments and records, the bytes and the first and last LSN. On damage it names the first bad\n"
      "segment and offset. A torn tail (an unfinished last group commit after a crash, which opening\n"
      "the journal cuts back) is reported but is not corruption. Breaks left by `kasa journal repair`\n"
      "are listed with the LSNs they quarantined. The archive (DIR/archive: segments retired once a\n"
      "snapshot covered them) is checked the same way, with the chain from its last record into the\n"
      "journal's first segment, and every snapshot (DIR/snapshot) is checked whole. The index of\n"
      "finished deposits (DIR/finished): each index's checksum, that every deposit in it resolves to a\n"
      "whole entry of a store, each store's entries; a store no index names (left by a snapshot a kill\n"
      "interrupted) is reported as harmless.\n"
      "Exit status: 0 whole (or only a torn tail), 1 corrupt or unreadable (journal, archive, a\n"
      "snapshot or the index of finished deposits), 2 usage.\n" },
    { "dump", "kasa journal dump DIR [--json] [--from LSN]",
      "Prints one line per record, from LSN (default 1): the record as text, or with --json one JSON\n"
      "object per line. A payload that does not decode prints `lsn=N undecodable: REASON (LEN bytes)`.\n"
      "Exit status: 0, or 1 if the journal is damaged before its end (the error names where).\n" },
    { "stats", "kasa journal stats DIR",
      "Prints records, segments, bytes, first and last LSN, the number of records of each kind, the\n"
      "number of deposit transitions into each state and the number of deposits now in each state.\n"
      "Exit status: 0, or 1 if the journal is corrupt (the figures then stop at the damage).\n" },
    { "repair", "kasa journal repair DIR",
      "Repairs a damaged journal so that kasa can open it again, and forgets nothing silently. The\n"
      "bytes that cannot be read are copied into DIR/quarantine-<UTC time>/ (synced) and taken out;\n"
      "every record that can still be read after them is kept, in a break segment chained to the last\n"
      "record before the damage (verify names each break). DIR/quarantine-<time>/REPORT gives the\n"
      "segment, offset, bytes and LSN range of each damaged place and the deposits it names. Since the\n"
      "lost records' deposits cannot be known for sure, every unfinished deposit gets a HISTORY_GAP\n"
      "record: it then reconciles with MT5 before any credit is sent. A torn tail is quarantined and cut.\n"
      "Refuses while a running kasa holds the journal's lock. Does nothing to a whole journal.\n"
      "Exit status: 0 repaired or nothing to do, 1 failed or locked, 2 usage.\n" },
    { "archive", "kasa journal archive DIR [--prune-before YYYY-MM-DD]",
      "Lists the archive (DIR/archive: segments retired once a snapshot covered them; kasa never\n"
      "deletes them). With --prune-before, deletes the oldest archived segments whose every record was\n"
      "written before that day (UTC), oldest first, stopping at the first that is not; only while the\n"
      "newest snapshot checks out and holds every section a start reads (registry, admins, withdrawals:\n"
      "a start then never needs them). The deleted history is gone for\n"
      "`kasa journal dump`, `kasa replay` and `kasa deposit show`: keep a copy if it matters.\n"
      "Exit status: 0, 1 failed or refused, 2 usage.\n" },
    { "snapshot-process", "kasa journal snapshot-process DIR [--max-deposits N] [--parent PID]",
      "The process `kasa serve` starts to write its snapshots (KASA_SNAPSHOT_EVERY_*), not a command for\n"
      "operators. For each LSN read from its standard input (one a line) it writes the snapshot of the\n"
      "journal in DIR covering it and answers one line: `ok SNAPSHOT_LSN RECORDS CPU_US MAX_RSS_KIB` or\n"
      "`error REASON`. It runs at the idle scheduling policy and the lowest best-effort I/O level, dies\n"
      "with its parent and leaves at the end of its input. --max-deposits: KASA_MAX_DEPOSITS. --parent:\n"
      "the process id its parent must have; if it has another (that one died first), it leaves at once.\n"
      "Exit status: 0, 1 if it could not answer, 2 usage.\n" },
};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: kasa journal VERB DIR [OPTIONS]\n\n");
    for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0]; i++)
        fprintf(out, "  %s\n", s_verbs[i].usage);
    fprintf(out, "\n`kasa journal VERB --help` describes each verb.\n");
}

static int s_verb_help(const s_verb_t *v, FILE *out, int status)
{
    fprintf(out, "usage: %s\n\n%s", v->usage, v->help);
    return status;
}

/* ---- verify ------------------------------------------------------------------------------ */

static void s_print_summary(const char *dir, const jf_scan_t *scan)
{
    printf("journal %s\n", dir);
    printf("segments: %zu\n", scan->nsegs);
    printf("records: %" PRIu64 "\n", scan->records);
    printf("bytes: %" PRIu64 "\n", scan->bytes);
    printf("first lsn: %" PRIu64 "\n", scan->first_lsn);
    printf("last lsn: %" PRIu64 "\n", scan->last_lsn);
    for (size_t i = 0; i < scan->nbreaks && i < JF_MAX_BREAKS; i++) {
        const jf_break_t *b = &scan->breaks[i];
        if (b->lost_from <= b->lost_to)
            printf("break: before segment %s, LSN %" PRIu64 "..%" PRIu64 " quarantined by `kasa journal repair`"
                   " (see DIR/quarantine-*/REPORT)\n", b->segment, b->lost_from, b->lost_to);
        else
            printf("break: before segment %s, unreadable bytes (no record) quarantined by `kasa journal repair`"
                   " (see DIR/quarantine-*/REPORT)\n", b->segment);
    }
    if (scan->nbreaks > JF_MAX_BREAKS)
        printf("break: ... %zu in all\n", scan->nbreaks);
}

static void s_print_state(const char *dir, const jf_scan_t *scan)
{
    if (scan->state == JF_CLEAN) {
        printf("status: ok\n");
    } else if (scan->state == JF_TORN) {
        printf("status: torn tail: segment %s offset %" PRIu64 ": %s; %" PRIu64
               " bytes after the last whole record, which opening the journal cuts\n",
               scan->segs[scan->bad_seg].name, scan->bad_offset, scan->reason, scan->bad_bytes);
    } else {
        printf("status: CORRUPT: segment %s offset %" PRIu64 ": %s\n", scan->segs[scan->bad_seg].name,
               scan->bad_offset, scan->reason);
        printf("to cut the journal there (what is cut is kept): kasa journal repair %s\n", dir);
    }
}

/* The archive (segments retired by snapshots): its records, and its chain into the live journal's
 * first segment. 0, or 1 on damage. */
static int s_verify_archive(const char *dir, const jf_scan_t *live)
{
    char adir[4200], err[512];
    snprintf(adir, sizeof adir, "%s/%s", dir, JF_ARCHIVE_SUBDIR);
    jf_scan_t a;
    if (jf_scan(adir, &a, NULL, NULL, err, sizeof err) != 0) {
        printf("archive: unreadable: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (a.nsegs) {
        printf("archive: %zu segments, %" PRIu64 " records, LSN %" PRIu64 "..%" PRIu64 "\n", a.nsegs, a.records,
               a.first_lsn, a.last_lsn);
        if (a.state != JF_CLEAN) {
            printf("archive: damaged: segment %s offset %" PRIu64 ": %s\n", a.segs[a.bad_seg].name, a.bad_offset,
                   a.reason);
            rc = 1;
        } else if (live->nsegs) {
            char path[4300], why[200];
            const uint8_t *base;
            uint64_t size;
            jf_seg_hdr_t h;
            snprintf(path, sizeof path, "%s/%s", dir, live->segs[0].name);
            if (jf_map(path, &base, &size, why, sizeof why) != 0 ||
                jf_check_seg_header(base, size, live->segs[0].first_lsn, &h, why, sizeof why) != 0) {
                printf("archive -> journal: cannot read %s: %s\n", live->segs[0].name, why);
                rc = 1;
            } else if (h.first_lsn != a.next_lsn || h.prev_crc != a.last_crc) {
                printf("archive -> journal: broken: the archive ends before LSN %" PRIu64 " but %s starts at %"
                       PRIu64 "%s\n", a.next_lsn, live->segs[0].name, h.first_lsn,
                       h.first_lsn == a.next_lsn ? " naming another checksum" : "");
                rc = (h.flags & JF_SEG_BREAK) ? rc : 1;
            } else {
                printf("archive -> journal: chain ok\n");
            }
            jf_unmap(base, size);
        }
    }
    jf_scan_free(&a);
    return rc;
}

/* Every snapshot: its checksums, and that the journal reaches its LSN. 0, or 1 if one is damaged. */
static int s_verify_snapshots(const char *dir, uint64_t last_lsn)
{
    uint64_t *lsns;
    size_t n;
    char err[512];
    if (snapshot_list(dir, &lsns, &n, err, sizeof err) != 0) {
        printf("snapshots: unreadable: %s\n", err);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        snapshot_t *snap = snapshot_open(dir, lsns[i], err, sizeof err);
        if (!snap) {
            printf("snapshot %" PRIu64 ": damaged: %s (a start passes over it)\n", lsns[i], err);
            rc = 1;
            continue;
        }
        printf("snapshot %" PRIu64 ": ok, %" PRIu64 " bytes, sections", lsns[i], snapshot_bytes(snap));
        for (size_t k = 0; snapshot_section_name(snap, k); k++)
            printf(" %s", snapshot_section_name(snap, k));
        printf("%s\n", lsns[i] > last_lsn ? " (beyond the journal's last LSN: not this journal's)" : "");
        rc |= lsns[i] > last_lsn;
        snapshot_close(&snap);
    }
    free(lsns);
    return rc;
}

static int s_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* The files of DIR/finished/ with extension ext ("idx", "dep"): their LSNs, ascending (*lsns
 * malloc'd). How many, or -1 if the directory cannot be read (missing: 0). */
static int s_finished_files(const char *dir, const char *ext, uint64_t **lsns)
{
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/%s", dir, FINDEX_SUBDIR);
    *lsns = NULL;
    DIR *d = opendir(sub);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long lsn;
        char tail[8];
        if (strlen(de->d_name) != 24 || sscanf(de->d_name, "%20llu.%3s", &lsn, tail) != 2 || strcmp(tail, ext) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *g = realloc(*lsns, cap * sizeof *g);
            if (!g) {
                closedir(d);
                return -1;
            }
            *lsns = g;
        }
        (*lsns)[n++] = lsn;
    }
    closedir(d);
    if (n > 1)
        qsort(*lsns, n, sizeof **lsns, s_u64_cmp);
    return (int) n;
}

/* A key of the run being verified: its entry must be whole in a store. */
typedef struct {
    const findex_t *x;
    uint64_t bad;
    char first_bad[600];
} s_resolve_t;

static int s_resolve_one(void *arg, const findex_key_t *key)
{
    s_resolve_t *r = arg;
    uint8_t *blob;
    size_t len;
    char err[600];
    if (findex_read(r->x, key->loc, &blob, &len, err, sizeof err) != 0) {
        if (!r->bad++)
            snprintf(r->first_bad, sizeof r->first_bad, "%s", err);
        return 0;
    }
    free(blob);
    return 0;
}

/* The index of finished deposits (DIR/finished/): each run's checksum and that every deposit it holds
 * resolves to a whole entry of a store; that the newest two indexes (the kept snapshots') find every
 * run they stand on as they name it; each store's entries. A store no whole index names is
 * left by a snapshot that did not finish (kasa killed between writing it and its index): harmless
 * (its deposits were still in memory and the next snapshot wrote them again), reported, kept. 0, or 1
 * on damage. */
static int s_verify_finished(const char *dir)
{
    uint64_t *idx = NULL, *dep = NULL, *named = NULL;
    int ni = s_finished_files(dir, "idx", &idx), nd = s_finished_files(dir, "dep", &dep);
    if (ni < 0 || nd < 0) {
        printf("finished: unreadable: %s/%s\n", dir, FINDEX_SUBDIR);
        free(idx);
        free(dep);
        return 1;
    }
    int rc = 0, all_indexes_read = 1;
    size_t nnamed = 0;
    char err[600];
    for (int i = 0; i < ni; i++) {   /* every run, alone */
        findex_t *x = findex_open_run(dir, idx[i], err, sizeof err);
        if (!x) {
            printf("finished index %" PRIu64 ": damaged: %s\n", idx[i], err);
            rc = 1;
            all_indexes_read = 0;
            continue;
        }
        s_resolve_t res = { x, 0, "" };
        uint64_t count = findex_count(x);
        if (findex_each_key(x, s_resolve_one, &res) != 0 && !res.bad++)
            snprintf(res.first_bad, sizeof res.first_bad, "its key array cannot be read");
        size_t ns = findex_store_count(x);
        uint64_t *g = realloc(named, (nnamed + ns + 1) * sizeof *g);
        if (g) {
            named = g;
            for (size_t k = 0; k < ns; k++)
                named[nnamed++] = findex_store_lsn(x, k);
        } else {
            all_indexes_read = 0;
        }
        if (res.bad) {
            printf("finished index %" PRIu64 ": %" PRIu64 " of %" PRIu64 " deposits do not resolve (first: %s)\n",
                   idx[i], res.bad, count, res.first_bad);
            rc = 1;
        } else {
            printf("finished index %" PRIu64 ": ok, %" PRIu64 " deposits in %zu stores, every one resolves\n", idx[i],
                   count, ns);
        }
        findex_close(&x);
    }
    /* The newest two indexes (those the kept snapshots name) whole: every run they stand on is there
     * as they name it. An older index's own manifest may name runs merged since and removed. */
    for (int i = ni - 1; i >= 0 && i >= ni - 2; i--) {
        findex_t *x = findex_open(dir, idx[i], err, sizeof err);
        if (!x) {
            printf("finished index %" PRIu64 ": its runs do not check out: %s\n", idx[i], err);
            rc = 1;
            continue;
        }
        printf("finished index %" PRIu64 ": ok, stands on %zu runs, %" PRIu64 " deposits in all\n", idx[i],
               findex_runs(x), findex_count(x));
        findex_close(&x);
    }
    for (int i = 0; i < nd; i++) {
        uint64_t entries = 0;
        int is_named = 0;
        for (size_t k = 0; k < nnamed && !is_named; k++)
            is_named = named[k] == dep[i];
        if (findex_store_check(dir, dep[i], &entries, err, sizeof err) != 0) {
            printf("finished store %" PRIu64 ": damaged: %s\n", dep[i], err);
            rc |= is_named || !all_indexes_read;   /* an orphan's damage harms nothing */
            continue;
        }
        printf("finished store %" PRIu64 ": ok, %" PRIu64 " entries%s\n", dep[i], entries,
               is_named || !all_indexes_read ? "" : " (no index names it: left by a snapshot that did not finish; "
               "its deposits were written again by a later one; harmless, may be deleted)");
    }
    free(idx);
    free(dep);
    free(named);
    return rc;
}

static int s_verify(const char *dir)
{
    jf_scan_t scan;
    char err[512];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kasa journal verify: %s is not a directory\n", dir);
        return 1;
    }
    if (jf_scan(dir, &scan, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "kasa journal verify: %s\n", err);
        return 1;
    }
    s_print_summary(dir, &scan);
    s_print_state(dir, &scan);
    int rc = scan.state == JF_CORRUPT ? 1 : 0;
    rc |= s_verify_archive(dir, &scan);
    /* what the journal reaches: its last record, or, when every record is archived, the LSN before
     * its newest segment (a clean close starts the next segment empty) */
    uint64_t reach = scan.last_lsn;
    if (scan.nsegs && scan.segs[scan.nsegs - 1].first_lsn > reach + 1)
        reach = scan.segs[scan.nsegs - 1].first_lsn - 1;
    rc |= s_verify_snapshots(dir, reach);
    rc |= s_verify_finished(dir);
    jf_scan_free(&scan);
    return rc;
}

/* ---- archive ------------------------------------------------------------------------------ */

/* The time (Unix ms) of the last record of segment path, or -1 if it cannot be read whole. */
static int64_t s_segment_last_ms(const char *path, uint64_t first_lsn)
{
    const uint8_t *base;
    uint64_t size;
    char why[200];
    if (jf_map(path, &base, &size, why, sizeof why) != 0)
        return -1;
    jf_seg_hdr_t h;
    int64_t last_ms = -1;
    if (jf_check_seg_header(base, size, first_lsn, &h, why, sizeof why) == 0) {
        uint64_t off = JF_SEG_HDR, lsn = h.first_lsn;
        uint32_t prev = h.restart_crc;
        jf_rec_t rec, last = { 0 };
        jf_rec_status_t st;
        while ((st = jf_check_record(base, size, off, h.version, lsn++, prev, &rec, why, sizeof why)) == JF_REC_OK) {
            last = rec;
            prev = rec.crc;
            off += JF_REC_HDR + rec.len;
        }
        record_t *r = malloc(sizeof *r);
        if (st == JF_REC_END && last.payload && r && record_decode(last.payload, last.len, r, why, sizeof why) == 0)
            last_ms = r->time_ms;
        free(r);
    }
    jf_unmap(base, size);
    return last_ms;
}

/* 0 if snapshot lsn of dir holds every section a start reads (checkpoint_sections[]) and each of
 * them loads: a start then needs nothing before it. -1 with a reason otherwise (a snapshot written
 * before a section existed: that state would be rebuilt from the whole journal). */
static int s_snapshot_carries_all(const char *dir, uint64_t lsn, char *err, size_t errlen)
{
    snapshot_t *snap = snapshot_open(dir, lsn, err, errlen);
    if (!snap)
        return -1;
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_deposits = (size_t) 1 << 40;   /* whatever the server's bound, the check is only "does it load" */
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", dir);   /* the index of finished deposits it names */
    int rc = 0;
    for (size_t i = 0; checkpoint_sections[i] && rc == 0; i++) {
        const checkpoint_section_t *sec = checkpoint_sections[i];
        const uint8_t *content;
        uint64_t len;
        if (!sec->load)
            continue;
        if (snapshot_section(snap, sec->name, &content, &len) != 0) {
            snprintf(err, errlen, "snapshot %" PRIu64 " has no section %s (written by an older kasa; the next "
                     "snapshot will have it)", lsn, sec->name);
            rc = -1;
            break;
        }
        void *state = sec->create(&cfg);
        snap_pk_t p;
        snap_pk_load_init(&p, content, (size_t) len);
        char why[200] = "no memory";
        if (!state || sec->load(state, &p, why, sizeof why) != 0) {
            snprintf(err, errlen, "snapshot %" PRIu64 ", section %s: %s", lsn, sec->name, why);
            rc = -1;
        }
        if (state)
            sec->destroy(state);
    }
    snapshot_close(&snap);
    return rc;
}

static int s_archive(const char *dir, int64_t before_ms)
{
    char adir[4200], err[512];
    snprintf(adir, sizeof adir, "%s/%s", dir, JF_ARCHIVE_SUBDIR);
    jf_seg_t *segs;
    size_t n;
    if (jf_list_segments(adir, &segs, &n, err, sizeof err) != 0) {
        fprintf(stderr, "kasa journal archive: %s\n", err);
        return 1;
    }
    printf("archive %s: %zu segments\n", adir, n);
    int rc = 0;
    if (before_ms > 0 && n) {
        uint64_t *lsns = NULL;
        size_t ns = 0;
        snapshot_t *snap = NULL;
        if (snapshot_list(dir, &lsns, &ns, err, sizeof err) == 0 && ns &&
            s_snapshot_carries_all(dir, lsns[0], err, sizeof err) == 0)
            snap = snapshot_open(dir, lsns[0], err, sizeof err);
        if (!snap) {
            fprintf(stderr, "kasa journal archive: no valid newest snapshot (%s): nothing pruned\n",
                    ns ? err : "none");
            rc = 1;
        }
        size_t pruned = 0;
        for (size_t i = 0; snap && i < n; i++) {
            char path[4300];
            snprintf(path, sizeof path, "%s/%s", adir, segs[i].name);
            int64_t last_ms = s_segment_last_ms(path, segs[i].first_lsn);
            /* the next segment's first LSN bounds this one's records; it must be within the snapshot */
            uint64_t next = i + 1 < n ? segs[i + 1].first_lsn : UINT64_MAX;
            if (last_ms < 0 || last_ms >= before_ms || (next != UINT64_MAX && next - 1 > snapshot_lsn(snap)))
                break;
            if (fio_unlink(path) != 0) {
                fprintf(stderr, "kasa journal archive: cannot delete %s: %s\n", path, strerror(errno));
                rc = 1;
                break;
            }
            pruned++;
        }
        if (pruned && fio_fsync_dir(adir) != 0)
            rc = 1;
        if (snap)
            printf("pruned: %zu segments\n", pruned);
        snapshot_close(&snap);
        free(lsns);
    }
    free(segs);
    return rc;
}

/* ---- dump -------------------------------------------------------------------------------- */

static int s_dump(const char *dir, int json, uint64_t from)
{
    char err[512];
    journal_reader_t *r = journal_reader_open(dir, from, err, sizeof err);
    if (!r) {
        fprintf(stderr, "kasa journal dump: %s\n", err);
        return 1;
    }
    jbuf_t b;
    jbuf_init(&b);
    journal_entry_t e;
    int rc;
    record_t *rec = malloc(sizeof *rec);
    if (!rec) {
        journal_reader_destroy(&r);
        return 1;
    }
    while ((rc = journal_reader_next(r, &e)) == 1) {
        jbuf_reset(&b);
        char why[256];
        if (record_decode(e.payload, e.len, rec, why, sizeof why) == 0) {
            if (json)
                record_to_json(rec, e.lsn, &b);
            else
                record_to_line(rec, e.lsn, &b);
        } else if (json) {
            jbuf_printf(&b, "{\"lsn\":%" PRIu64 ",\"undecodable\":", e.lsn);
            jbuf_str(&b, why);
            jbuf_printf(&b, ",\"bytes\":%zu}", e.len);
        } else {
            jbuf_printf(&b, "lsn=%" PRIu64 " undecodable: %s (%zu bytes)", e.lsn, why, e.len);
        }
        jbuf_add(&b, "\n", 1);
        fwrite(b.data, 1, b.len, stdout);
    }
    if (rc < 0)
        fprintf(stderr, "kasa journal dump: %s\n", journal_reader_error(r));
    free(rec);
    jbuf_free(&b);
    journal_reader_destroy(&r);
    return rc < 0 ? 1 : 0;
}

/* ---- stats ------------------------------------------------------------------------------- */

typedef struct {
    char tx[80];
    int state;               /* -1: empty slot */
} s_tx_slot_t;

typedef struct {
    uint64_t kinds[8];
    uint64_t undecodable;
    uint64_t into_state[DEPOSIT_STATE_COUNT];
    s_tx_slot_t *tx;         /* open addressing: latest state of each deposit */
    size_t tx_cap, tx_used;
    record_t rec;
} s_stats_t;

static uint64_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t) *s++) * 1099511628211ull;
    return h;
}

static int s_tx_set(s_stats_t *st, const char *tx, int state)
{
    if (st->tx_used * 2 >= st->tx_cap) {
        size_t cap = st->tx_cap ? st->tx_cap * 2 : 1024;
        s_tx_slot_t *t = malloc(cap * sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < cap; i++)
            t[i].state = -1;
        for (size_t i = 0; i < st->tx_cap; i++) {
            if (st->tx[i].state < 0)
                continue;
            size_t j = s_hash(st->tx[i].tx) & (cap - 1);
            while (t[j].state >= 0)
                j = (j + 1) & (cap - 1);
            t[j] = st->tx[i];
        }
        free(st->tx);
        st->tx = t;
        st->tx_cap = cap;
    }
    size_t j = s_hash(tx) & (st->tx_cap - 1);
    while (st->tx[j].state >= 0 && strcmp(st->tx[j].tx, tx) != 0)
        j = (j + 1) & (st->tx_cap - 1);
    if (st->tx[j].state < 0) {
        snprintf(st->tx[j].tx, sizeof st->tx[j].tx, "%s", tx);
        st->tx_used++;
    }
    st->tx[j].state = state;
    return 0;
}

static int s_stats_record(void *arg, const jf_rec_t *rec, const char *segment, uint64_t offset)
{
    s_stats_t *st = arg;
    char why[128];
    if (record_decode(rec->payload, rec->len, &st->rec, why, sizeof why) != 0) {
        st->undecodable++;
        return 0;
    }
    if (st->rec.kind >= 1 && st->rec.kind < 8)
        st->kinds[st->rec.kind]++;
    if (st->rec.kind == RECORD_DEPOSIT && st->rec.to >= 0 && st->rec.to < DEPOSIT_STATE_COUNT) {
        st->into_state[st->rec.to]++;
        if (st->rec.tx_id[0] && s_tx_set(st, st->rec.tx_id, (int) st->rec.to) != 0)
            return 1;
    }
    return 0;
}

static int s_stats(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "kasa journal stats: %s is not a directory\n", dir);
        return 1;
    }
    s_stats_t *st = calloc(1, sizeof *st);
    if (!st)
        return 1;
    jf_scan_t scan;
    char err[512];
    if (jf_scan(dir, &scan, s_stats_record, st, err, sizeof err) != 0) {
        fprintf(stderr, "kasa journal stats: %s\n", err);
        free(st);
        return 1;
    }
    s_print_summary(dir, &scan);
    printf("records by kind:\n");
    for (int k = 1; k < 8; k++)
        if (st->kinds[k])
            printf("  %-16s %" PRIu64 "\n", record_kind_name((record_kind_t) k), st->kinds[k]);
    if (st->undecodable)
        printf("  %-16s %" PRIu64 "\n", "undecodable", st->undecodable);
    printf("deposit transitions into each state:\n");
    for (int s = 0; s < DEPOSIT_STATE_COUNT; s++)
        if (st->into_state[s])
            printf("  %-16s %" PRIu64 "\n", deposit_state_name((deposit_state_t) s), st->into_state[s]);
    uint64_t now[DEPOSIT_STATE_COUNT] = { 0 };
    for (size_t i = 0; i < st->tx_cap; i++)
        if (st->tx[i].state >= 0)
            now[st->tx[i].state]++;
    printf("deposits: %zu, now in each state:\n", st->tx_used);
    for (int s = 0; s < DEPOSIT_STATE_COUNT; s++)
        if (now[s])
            printf("  %-16s %" PRIu64 "\n", deposit_state_name((deposit_state_t) s), now[s]);
    s_print_state(dir, &scan);
    int rc = scan.state == JF_CORRUPT ? 1 : 0;
    jf_scan_free(&scan);
    free(st->tx);
    free(st);
    return rc;
}

/* ---- repair ------------------------------------------------------------------------------ */

/* Writes prefix (may be empty) and then bytes [from, to) of src (to == UINT64_MAX: to its end) into
 * a new file dst and syncs it. 0, or -1 with a reason. */
static int s_copy_range(const char *src, uint64_t from, uint64_t to, const char *dst, const uint8_t *prefix,
                        size_t prefix_len, char *err, size_t errlen)
{
    int in = fio_open(src, O_RDONLY, 0);
    if (in < 0) {
        snprintf(err, errlen, "cannot open %s: %s", src, strerror(errno));
        return -1;
    }
    int out = fio_open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dst, strerror(errno));
        close(in);
        return -1;
    }
    static char buf[1 << 16];
    int rc = 0;
    uint64_t at = from;
    if (prefix_len && fio_write(out, prefix, prefix_len) != (ssize_t) prefix_len) {
        snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
        rc = -1;
        to = at;
    }
    while (at < to) {
        size_t want = to - at < sizeof buf ? (size_t) (to - at) : sizeof buf;
        ssize_t n = pread(in, buf, want, (off_t) at);
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s: %s", src, strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (fio_write(out, buf, (size_t) n) != n) {
            snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
            rc = -1;
            break;
        }
        at += (uint64_t) n;
    }
    if (rc == 0 && fio_fsync(out) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", dst, strerror(errno));
        rc = -1;
    }
    close(in);
    fio_close(out);
    return rc;
}

/* Creates DIR/quarantine-<UTC time>[-N]/ and puts its path in q. 0 or -1. */
static int s_make_quarantine(const char *dir, char *q, size_t qlen, char *err, size_t errlen)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int i = 0; i < 100; i++) {
        if (i == 0)
            snprintf(q, qlen, "%s/quarantine-%s", dir, stamp);
        else
            snprintf(q, qlen, "%s/quarantine-%s-%d", dir, stamp, i);
        if (mkdir(q, 0700) == 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    snprintf(err, errlen, "cannot create a quarantine directory in %s: %s", dir, strerror(errno));
    return -1;
}

/* One repair: what it quarantined and where the journal resumes. */
typedef struct {
    const char *dir;
    char q[4096];             /* the quarantine directory */
    FILE *report;             /* q/REPORT */
    uint64_t lost_from;       /* the first LSN lost at the current damage */
    uint64_t lost_to;         /* the last (0 with !resumed: everything after lost_from) */
    int resumed;
    uint64_t bytes;           /* quarantined bytes, all damages */
    int damages;              /* corruptions handled (not counting a torn tail) */
    int64_t gap_ms_from;      /* time of the last readable record before the first damage */
    char named[8][80];        /* deposits named in quarantined bytes, as far as they decode */
    int nnamed;
} s_repair_t;

/* Notes the deposits named by whatever decodes in bytes [from, to) of a mapped segment: walks the
 * record lengths from `from` while they stay in range; a record whose payload decodes names its
 * deposit (its checksum is wrong, so this is a hint, not a fact). */
static void s_name_deposits(s_repair_t *rp, const uint8_t *base, uint64_t from, uint64_t to, record_t *rec)
{
    uint64_t off = from;
    for (int guard = 0; guard < 100000 && off + JF_REC_HDR <= to; guard++) {
        uint32_t len = jf_get32(base + off);
        if (len > JOURNAL_MAX_PAYLOAD || off + JF_REC_HDR + len > to)
            break;
        char why[96];
        if (record_decode(base + off + JF_REC_HDR, len, rec, why, sizeof why) == 0 && rec->tx_id[0]) {
            int seen = 0;
            for (int i = 0; i < rp->nnamed; i++)
                seen |= strcmp(rp->named[i], rec->tx_id) == 0;
            if (!seen && rp->nnamed < 8)
                snprintf(rp->named[rp->nnamed++], sizeof rp->named[0], "%s", rec->tx_id);
        }
        off += JF_REC_HDR + len;
    }
}

/* Copies [from, to) of segment name into the quarantine as NAME.FROM-TO, reports it, and names the
 * deposits it can. 0 or -1. */
static int s_quarantine(s_repair_t *rp, const char *name, uint64_t from, uint64_t to, record_t *rec, char *err,
                        size_t errlen)
{
    char src[4200], dst[8400];
    snprintf(src, sizeof src, "%s/%s", rp->dir, name);
    const uint8_t *base;
    uint64_t size;
    if (jf_map(src, &base, &size, err, errlen) != 0)
        return -1;
    if (to > size)
        to = size;
    if (from >= to) {
        jf_unmap(base, size);
        return 0;
    }
    s_name_deposits(rp, base, from, to, rec);
    jf_unmap(base, size);
    snprintf(dst, sizeof dst, "%s/%s.%" PRIu64 "-%" PRIu64, rp->q, name, from, to);
    if (s_copy_range(src, from, to, dst, NULL, 0, err, errlen) != 0)
        return -1;
    fprintf(rp->report, "  quarantined: segment %s bytes %" PRIu64 "..%" PRIu64 " (%" PRIu64 " bytes) -> %s\n", name,
            from, to, to - from, strrchr(dst, '/') + 1);
    rp->bytes += to - from;
    return 0;
}

/* Where the journal can resume after damage: the first readable record at or after LSN lsn, in
 * segment s from offset off on, or in a later segment. 1 with *t, *y, *rec (its payload invalid once
 * this returns), 0 if nothing readable follows, -1 on an I/O error. */
static int s_find_resume(const char *dir, const jf_scan_t *scan, size_t s, uint64_t off, uint64_t lsn, size_t *t,
                         uint64_t *y, jf_rec_t *rec, char *err, size_t errlen)
{
    uint64_t left = 0;
    for (size_t i = s; i < scan->nsegs; i++)
        left += scan->segs[i].size;
    uint64_t max_lsn = lsn + left / JF_REC_HDR + 1;
    for (size_t i = s; i < scan->nsegs; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, scan->segs[i].name);
        const uint8_t *base;
        uint64_t size;
        if (jf_map(path, &base, &size, err, errlen) != 0)
            return -1;
        /* the damaged place itself first: an intact record there whose LSN or chain was wrong */
        for (uint64_t o = i == s ? off : JF_SEG_HDR; o + JF_REC_HDR <= size; o++) {
            if (jf_readable_at(base, size, o, JF_VERSION, lsn, max_lsn, rec)) {
                rec->payload = NULL;
                *t = i;
                *y = o;
                jf_unmap(base, size);
                return 1;
            }
        }
        jf_unmap(base, size);
    }
    return 0;
}

/* Writes segment `name` (tmp, sync, rename): a BREAK header and bytes [from, end) of src. 0 or -1. */
static int s_write_break_segment(const char *dir, const jf_seg_hdr_t *h, const char *src_name, uint64_t from,
                                 char *err, size_t errlen)
{
    char name[JF_NAME_MAX], path[4200], tmp[4300], src[4200];
    jf_seg_name(name, h->first_lsn);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(src, sizeof src, "%s/%s", dir, src_name);
    uint8_t hdr[JF_SEG_HDR];
    jf_seg_header(hdr, h);
    if (s_copy_range(src, from, UINT64_MAX, tmp, hdr, sizeof hdr, err, errlen) != 0) {
        unlink(tmp);
        return -1;
    }
    if (fio_rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Shortens segment name to len bytes and syncs it. 0 or -1. */
static int s_truncate(const char *dir, const char *name, uint64_t len, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = fio_open(path, O_WRONLY, 0);
    if (fd < 0 || fio_ftruncate(fd, (off_t) len) != 0 || fio_fsync(fd) != 0) {
        snprintf(err, errlen, "cannot cut %s: %s", path, strerror(errno));
        if (fd >= 0)
            fio_close(fd);
        return -1;
    }
    fio_close(fd);
    return 0;
}

/* Time of the last readable record before the damage (0 if none decodes), for the report. */
static int s_last_time(void *arg, const jf_rec_t *rec, const char *segment, uint64_t offset)
{
    (void) segment;
    (void) offset;
    s_repair_t *rp = arg;
    record_t r;
    char why[96];
    if (record_decode(rec->payload, rec->len, &r, why, sizeof why) == 0)
        rp->gap_ms_from = r.time_ms;
    return 0;
}

/* Repairs the first damage the scan found. Corruption: quarantines the unreadable bytes, writes the
 * readable records after them into a BREAK segment that chains on from the last record before the
 * damage, and removes what the break segment replaces. A torn tail: quarantines and cuts it, as
 * opening would. Order: copies first (synced), then the new segment (renamed in whole), then the
 * cuts; a crash in between leaves a journal that this repair, run again, finishes. 0 or -1. */
static int s_repair_one(s_repair_t *rp, const jf_scan_t *scan, record_t *rec, char *err, size_t errlen)
{
    const char *dir = rp->dir;
    size_t s = scan->bad_seg;
    uint64_t x = scan->bad_offset;
    const jf_seg_t *bad = &scan->segs[s];
    fprintf(rp->report, "damage: segment %s offset %" PRIu64 ": %s (%s)\n", bad->name, x, scan->reason,
            scan->state == JF_TORN ? "torn last group commit, never acknowledged" : "corruption");
    printf("damage in segment %s at offset %" PRIu64 ": %s (%s)\n", bad->name, x, scan->reason,
           scan->state == JF_TORN ? "torn tail" : "corruption");
    size_t t = 0;
    uint64_t y = 0;
    jf_rec_t res;
    int found = scan->state == JF_CORRUPT
                    ? s_find_resume(dir, scan, s, x, scan->next_lsn, &t, &y, &res, err, errlen) : 0;
    if (found < 0)
        return -1;
    rp->lost_from = scan->next_lsn;
    rp->resumed = found;
    rp->lost_to = found ? res.lsn - 1 : 0;
    char newname[JF_NAME_MAX] = "";
    if (found)
        jf_seg_name(newname, res.lsn);
    /* 1. copies of every byte that goes, synced */
    for (size_t i = s; i < scan->nsegs && (!found || i <= t); i++) {
        uint64_t from = i == s ? x : 0, to = found && i == t ? y : UINT64_MAX;
        if (s_quarantine(rp, scan->segs[i].name, from, to, rec, err, errlen) != 0)
            return -1;
    }
    if (fio_fsync_dir(rp->q) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", rp->q, strerror(errno));
        return -1;
    }
    if (scan->state == JF_CORRUPT) {
        rp->damages++;
        if (found)
            fprintf(rp->report, "  lost: LSN %" PRIu64 "..%" PRIu64 "%s; the journal resumes at LSN %" PRIu64
                    " (segment %s offset %" PRIu64 "), re-chained in segment %s\n", rp->lost_from, rp->lost_to,
                    rp->lost_to < rp->lost_from ? " (none: only bytes between records)" : "", res.lsn,
                    scan->segs[t].name, y, newname);
        else
            fprintf(rp->report, "  lost: LSN %" PRIu64 " and after (nothing readable follows the damage)\n",
                    rp->lost_from);
    }
    /* 2. the readable records after the damage, in a BREAK segment chained to what precedes it */
    if (found) {
        jf_seg_hdr_t h = { .version = JF_VERSION, .first_lsn = res.lsn, .prev_crc = scan->last_crc,
                           .restart_crc = res.prev, .flags = JF_SEG_BREAK };
        if (s_write_break_segment(dir, &h, scan->segs[t].name, y, err, errlen) != 0)
            return -1;
    }
    /* 3. cut the damaged segment, remove the ones the break segment replaces (or everything after
     * the damage if nothing readable follows) */
    if (strcmp(bad->name, newname) != 0) {
        if (x >= JF_SEG_HDR) {
            if (s_truncate(dir, bad->name, x, err, errlen) != 0)
                return -1;
            printf("cut segment %s at offset %" PRIu64 "\n", bad->name, x);
        } else {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, bad->name);
            if (fio_unlink(path) != 0) {
                snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
                return -1;
            }
            printf("removed segment %s (kept in the quarantine)\n", bad->name);
        }
    }
    for (size_t i = s + 1; i < scan->nsegs && (!found || i <= t); i++) {
        if (strcmp(scan->segs[i].name, newname) == 0)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, scan->segs[i].name);
        if (fio_unlink(path) != 0) {
            snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
            return -1;
        }
        printf("removed segment %s (kept in the quarantine%s)\n", scan->segs[i].name,
               found && i == t ? "; its readable records go on in the break segment" : "");
    }
    if (found)
        printf("kept the readable records from LSN %" PRIu64 " on in segment %s (a break after LSN %" PRIu64 ")\n",
               res.lsn, newname, rp->lost_from - 1);
    if (fio_fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Journals a RECORD_HISTORY_GAP for every deposit that is not in a final state, so that a restart
 * treats each as if a credit attempt of unknown outcome may exist: it reconciles with MT5 before any
 * send. Which deposits the quarantined bytes held cannot be told for sure (their checksums failed),
 * so every unfinished one is marked; a final one (NOTIFIED, REJECTED) is never credited again.
 * Prints and reports each. Returns how many were marked, or -1 with a reason. */
static long s_mark_deposits(s_repair_t *rp, const char *reason, char *err, size_t errlen)
{
    s_stats_t *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    jf_scan_t scan;
    if (jf_scan(rp->dir, &scan, s_stats_record, st, err, errlen) != 0) {
        free(st->tx);
        free(st);
        return -1;
    }
    jf_scan_free(&scan);
    journal_t *j = cmd_journal_open(rp->dir, err, errlen);
    long marked = 0;
    int64_t now_ms = (int64_t) time(NULL) * 1000;
    record_t *r = &st->rec;
    for (size_t i = 0; j && i < st->tx_cap; i++) {
        if (st->tx[i].state < 0 || deposit_state_is_final((deposit_state_t) st->tx[i].state))
            continue;
        record_init(r, RECORD_HISTORY_GAP);
        r->time_ms = now_ms;
        snprintf(r->tx_id, sizeof r->tx_id, "%s", st->tx[i].tx);
        snprintf(r->reason, sizeof r->reason, "%s", reason);
        uint8_t *buf;
        size_t len;
        if (record_encode(r, &buf, &len, err, errlen) != 0)
            break;
        uint64_t lsn = journal_append(j, buf, len);
        free(buf);
        if (!lsn) {
            snprintf(err, errlen, "cannot append to the journal");
            break;
        }
        fprintf(rp->report, "  marked: %s (%s) lsn=%" PRIu64 "\n", st->tx[i].tx,
                deposit_state_name((deposit_state_t) st->tx[i].state), lsn);
        marked++;
    }
    size_t unfinished = 0;
    for (size_t i = 0; i < st->tx_cap; i++)
        unfinished += st->tx[i].state >= 0 && !deposit_state_is_final((deposit_state_t) st->tx[i].state);
    journal_destroy(&j);
    free(st->tx);
    free(st);
    return marked == (long) unfinished ? marked : -1;
}

static int s_repair(const char *dir)
{
    char err[10000] = "";
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "kasa journal repair: %s is not a directory\n", dir);
        return 1;
    }
    int lock = jf_lock(dir, err, sizeof err);
    if (lock < 0) {
        fprintf(stderr, "kasa journal repair: %s; stop it first\n", err);
        return 1;
    }
    s_repair_t rp = { .dir = dir };
    record_t *rec = malloc(sizeof *rec);
    jf_scan_t scan;
    if (!rec || jf_scan(dir, &scan, s_last_time, &rp, err, sizeof err) != 0) {
        fprintf(stderr, "kasa journal repair: %s\n", rec ? err : "out of memory");
        free(rec);
        fio_close(lock);
        return 1;
    }
    int rc = 0;
    if (scan.state == JF_CLEAN) {
        printf("journal %s is whole (%" PRIu64 " records, last lsn %" PRIu64 "): nothing to repair\n", dir,
               scan.records, scan.last_lsn);
        jf_scan_free(&scan);
        free(rec);
        fio_close(lock);
        return 0;
    }
    char report_path[4200], first_lost[64] = "";
    if (s_make_quarantine(dir, rp.q, sizeof rp.q, err, sizeof err) != 0)
        goto fail;
    snprintf(report_path, sizeof report_path, "%s/REPORT", rp.q);
    rp.report = fopen(report_path, "w");
    if (!rp.report) {
        snprintf(err, sizeof err, "cannot create %s: %s", report_path, strerror(errno));
        goto fail;
    }
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(rp.report, "kasa journal repair %s at %s\n", dir, when);
    uint64_t lost_lo = 0, lost_hi = 0;
    int open_ended = 0;
    for (int round = 0; scan.state != JF_CLEAN; round++) {
        if (round == 64) {
            snprintf(err, sizeof err, "more than 64 damaged places: giving up (the quarantine keeps what was done)");
            goto fail;
        }
        if (s_repair_one(&rp, &scan, rec, err, sizeof err) != 0)
            goto fail;
        if (scan.state == JF_CORRUPT) {
            if (!lost_lo)
                lost_lo = rp.lost_from;
            if (rp.resumed)
                lost_hi = rp.lost_to > lost_hi ? rp.lost_to : lost_hi;
            else
                open_ended = 1;
        }
        jf_scan_free(&scan);
        if (jf_scan(dir, &scan, NULL, NULL, err, sizeof err) != 0)
            goto fail_noscan;
    }
    fflush(rp.report);
    if (fsync(fileno(rp.report)) != 0 || fio_fsync_dir(rp.q) != 0) {
        snprintf(err, sizeof err, "cannot sync %s: %s", report_path, strerror(errno));
        goto fail;
    }
    printf("quarantined %" PRIu64 " bytes in %s (report: %s)\n", rp.bytes, rp.q, report_path);
    if (rp.nnamed) {
        fprintf(rp.report, "deposits named in the quarantined bytes (their checksums failed: a hint):");
        for (int i = 0; i < rp.nnamed; i++)
            fprintf(rp.report, " %s", rp.named[i]);
        fprintf(rp.report, "\n");
    } else if (rp.damages) {
        fprintf(rp.report, "deposits named in the quarantined bytes: none could be read\n");
    }
    if (rp.damages) {
        if (open_ended)
            snprintf(first_lost, sizeof first_lost, "LSN %" PRIu64 " and after", lost_lo);
        else
            snprintf(first_lost, sizeof first_lost, "LSN %" PRIu64 "..%" PRIu64, lost_lo, lost_hi);
        char reason[160];
        snprintf(reason, sizeof reason, "journal repair %s quarantined %s (%s); history may be incomplete", when,
                 first_lost, strrchr(rp.q, '/') + 1);
        fio_close(lock);   /* the journal takes it again to append the markers */
        lock = -1;
        fprintf(rp.report, "deposits whose history may be incomplete (every unfinished one; each reconciles with MT5 "
                "before any send):\n");
        long marked = s_mark_deposits(&rp, reason, err, sizeof err);
        if (marked < 0)
            goto fail;
        printf("marked %ld unfinished deposits: each reconciles with MT5 before any send (listed in the report)\n",
               marked);
        jf_scan_free(&scan);
        if (jf_scan(dir, &scan, NULL, NULL, err, sizeof err) != 0)
            goto fail_noscan;
    }
    fprintf(rp.report, "the journal now holds %" PRIu64 " records, lsn %" PRIu64 "..%" PRIu64 "\n", scan.records,
            scan.first_lsn, scan.last_lsn);
    fclose(rp.report);
    rp.report = NULL;
    fio_fsync_dir(rp.q);
    log_warn("journal.repaired", "dir=%s lost=\"%s\" bytes=%" PRIu64 " quarantine=%s", dir,
             rp.damages ? first_lost : "torn tail", rp.bytes, rp.q);
    printf("the journal now holds %" PRIu64 " records, lsn %" PRIu64 "..%" PRIu64 "\n", scan.records,
           scan.first_lsn, scan.last_lsn);
    goto done;
fail:
    jf_scan_free(&scan);
fail_noscan:
    fprintf(stderr, "kasa journal repair: %s\n", err);
    rc = 1;
done:
    if (rp.report)
        fclose(rp.report);
    jf_scan_free(&scan);
    free(rec);
    if (lock >= 0)
        fio_close(lock);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static int s_is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

static void s_journal_note(void *arg, journal_note_t severity, const char *event, const char *detail)
{
    (void) arg;
    log_level_t level = severity == JOURNAL_NOTE_ERROR ? LOG_ERROR : severity == JOURNAL_NOTE_WARN ? LOG_WARN : LOG_INFO;
    log_event(level, event, "%s", detail);
}

journal_t *cmd_journal_open(const char *dir, char *err, size_t errlen)
{
    journal_opts_t opts = { .report = s_journal_note };
    return journal_open(dir, &opts, err, errlen);
}

int cmd_journal(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (s_is_help(argv[1])) {
        s_usage(stdout);
        return 0;
    }
    const s_verb_t *verb = NULL;
    for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0]; i++)
        if (strcmp(argv[1], s_verbs[i].name) == 0)
            verb = &s_verbs[i];
    if (!verb) {
        fprintf(stderr, "kasa journal: unknown verb '%s'\n\n", argv[1]);
        s_usage(stderr);
        return 2;
    }
    const char *dir = NULL;
    int json = 0;
    uint64_t from = 1;
    int64_t before_ms = 0;
    unsigned long long max_deposits = CONFIG_DEFAULT_MAX_DEPOSITS;
    pid_t parent = 0;
    for (int i = 2; i < argc; i++) {
        if (s_is_help(argv[i]))
            return s_verb_help(verb, stdout, 0);
        if (strcmp(verb->name, "dump") == 0 && strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(verb->name, "dump") == 0 && strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || argv[i][0] == '-' || argv[i][0] == '\0') {
                fprintf(stderr, "kasa journal dump: --from wants an LSN, not '%s'\n", argv[i]);
                return 2;
            }
            from = v;
        } else if (strcmp(verb->name, "archive") == 0 && strcmp(argv[i], "--prune-before") == 0 && i + 1 < argc) {
            struct tm tm;
            memset(&tm, 0, sizeof tm);
            const char *end = strptime(argv[++i], "%Y-%m-%d", &tm);
            if (!end || *end) {
                fprintf(stderr, "kasa journal archive: --prune-before wants a day YYYY-MM-DD, not '%s'\n", argv[i]);
                return 2;
            }
            before_ms = (int64_t) timegm(&tm) * 1000;
        } else if (strcmp(verb->name, "snapshot-process") == 0 && strcmp(argv[i], "--max-deposits") == 0 &&
                   i + 1 < argc) {
            char *end;
            errno = 0;
            max_deposits = strtoull(argv[++i], &end, 10);
            if (errno || *end || argv[i][0] == '-' || argv[i][0] == '\0' || max_deposits == 0) {
                fprintf(stderr, "kasa journal snapshot-process: --max-deposits wants a positive number, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(verb->name, "snapshot-process") == 0 && strcmp(argv[i], "--parent") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (errno || *end || v <= 0 || v > INT_MAX) {
                fprintf(stderr, "kasa journal snapshot-process: --parent wants a process id, not '%s'\n", argv[i]);
                return 2;
            }
            parent = (pid_t) v;
        } else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "kasa journal %s: unexpected argument '%s'\n\n", verb->name, argv[i]);
            return s_verb_help(verb, stderr, 2);
        } else {
            dir = argv[i];
        }
    }
    if (!dir) {
        fprintf(stderr, "kasa journal %s: which journal directory?\n\n", verb->name);
        return s_verb_help(verb, stderr, 2);
    }
    if (strcmp(verb->name, "verify") == 0)
        return s_verify(dir);
    if (strcmp(verb->name, "dump") == 0)
        return s_dump(dir, json, from);
    if (strcmp(verb->name, "stats") == 0)
        return s_stats(dir);
    if (strcmp(verb->name, "archive") == 0)
        return s_archive(dir, before_ms);
    if (strcmp(verb->name, "snapshot-process") == 0)
        return checkpoint_process_main(dir, (size_t) max_deposits, parent, STDIN_FILENO, STDOUT_FILENO);
    return s_repair(dir);
}
