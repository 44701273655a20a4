/* cmd_journal.c — `kasa journal verify|dump|stats|repair DIR`: look at the journal, or repair it.
 *
 *   verify DIR                    check every checksum, LSN and the chain across segments
 *   dump DIR [--json] [--from N]  one line (or JSON object) per record
 *   stats DIR                     records, segments, bytes, LSNs, counts per kind and per state
 *   repair DIR                    cut the journal at its first bad record; what is cut is first
 *                                 copied to DIR/quarantine-<UTC time>/, so nothing is destroyed
 *
 * verify, dump and stats only read (no lock: they work beside a running server). repair takes the
 * journal's lock and refuses while a server holds it. Exit status: 0 ok, 1 damage or failure, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/jformat.h"
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
      "segment and offset. A torn tail (an unfinished last record after a crash, which opening the\n"
      "journal cuts back) is reported but is not corruption.\n"
      "Exit status: 0 whole (or only a torn tail), 1 corrupt or unreadable, 2 usage.\n" },
    { "dump", "kasa journal dump DIR [--json] [--from LSN]",
      "Prints one line per record, from LSN (default 1): the record as text, or with --json one JSON\n"
      "object per line. A payload that does not decode prints `lsn=N undecodable: REASON (LEN bytes)`.\n"
      "Exit status: 0, or 1 if the journal is damaged before its end (the error names where).\n" },
    { "stats", "kasa journal stats DIR",
      "Prints records, segments, bytes, first and last LSN, the number of records of each kind, the\n"
      "number of deposit transitions into each state and the number of deposits now in each state.\n"
      "Exit status: 0, or 1 if the journal is corrupt (the figures then stop at the damage).\n" },
    { "repair", "kasa journal repair DIR",
      "Cuts the journal at its first bad record, so that kasa can open it again. Everything from that\n"
      "point on (the rest of that segment and every later segment) is first copied into\n"
      "DIR/quarantine-<UTC time>/ and synced, so nothing is destroyed. Refuses while a running kasa\n"
      "holds the journal's lock. Does nothing to a whole journal.\n"
      "Exit status: 0 repaired or nothing to do, 1 failed or locked, 2 usage.\n" },
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
    jf_scan_free(&scan);
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

/* Copies bytes [from, end) of src into a new file dst and syncs it. 0, or -1 with a reason. */
static int s_copy_from(const char *src, uint64_t from, const char *dst, char *err, size_t errlen)
{
    int in = fio_open(src, O_RDONLY, 0);
    if (in < 0) {
        snprintf(err, errlen, "cannot open %s: %s", src, strerror(errno));
        return -1;
    }
    int out = fio_open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (out < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dst, strerror(errno));
        close(in);
        return -1;
    }
    static char buf[1 << 16];
    int rc = 0;
    off_t at = (off_t) from;
    for (;;) {
        ssize_t n = pread(in, buf, sizeof buf, at);
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
        at += n;
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
        if (mkdir(q, 0755) == 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    snprintf(err, errlen, "cannot create a quarantine directory in %s: %s", dir, strerror(errno));
    return -1;
}

static int s_repair(const char *dir)
{
    char err[10000];
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
    jf_scan_t scan;
    if (jf_scan(dir, &scan, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "kasa journal repair: %s\n", err);
        fio_close(lock);
        return 1;
    }
    int rc = 0;
    if (scan.state == JF_CLEAN) {
        printf("journal %s is whole (%" PRIu64 " records, last lsn %" PRIu64 "): nothing to repair\n", dir,
               scan.records, scan.last_lsn);
        goto done;
    }
    const jf_seg_t *bad = &scan.segs[scan.bad_seg];
    printf("journal %s: first damage in segment %s at offset %" PRIu64 ": %s (%s)\n", dir, bad->name,
           scan.bad_offset, scan.reason, scan.state == JF_TORN ? "torn tail" : "corruption");
    char q[4096], src[4096], dst[4400];
    if (s_make_quarantine(dir, q, sizeof q, err, sizeof err) != 0)
        goto fail;
    /* 1. copy everything that will be cut, and make the copies durable */
    uint64_t moved = 0;
    for (size_t i = scan.bad_seg; i < scan.nsegs; i++) {
        uint64_t from = i == scan.bad_seg ? scan.bad_offset : 0;
        snprintf(src, sizeof src, "%s/%s", dir, scan.segs[i].name);
        if (from)
            snprintf(dst, sizeof dst, "%s/%s.from-%" PRIu64, q, scan.segs[i].name, from);
        else
            snprintf(dst, sizeof dst, "%s/%s", q, scan.segs[i].name);
        if (s_copy_from(src, from, dst, err, sizeof err) != 0)
            goto fail;
        moved += scan.segs[i].size - from;
    }
    if (fio_fsync_dir(q) != 0 || fio_fsync_dir(dir) != 0) {
        snprintf(err, sizeof err, "cannot sync %s: %s", q, strerror(errno));
        goto fail;
    }
    printf("copied %" PRIu64 " bytes (everything from the damage on) to %s\n", moved, q);
    /* 2. cut: truncate the bad segment (or remove it if its header is bad), remove every later one */
    for (size_t i = scan.nsegs; i-- > scan.bad_seg;) {
        snprintf(src, sizeof src, "%s/%s", dir, scan.segs[i].name);
        if (i == scan.bad_seg && scan.bad_offset >= JF_SEG_HDR) {
            int fd = fio_open(src, O_WRONLY, 0);
            if (fd < 0 || fio_ftruncate(fd, (off_t) scan.bad_offset) != 0 || fio_fsync(fd) != 0) {
                snprintf(err, sizeof err, "cannot cut %s: %s", src, strerror(errno));
                if (fd >= 0)
                    fio_close(fd);
                goto fail;
            }
            fio_close(fd);
            printf("cut segment %s at offset %" PRIu64 "\n", scan.segs[i].name, scan.bad_offset);
        } else {
            if (fio_unlink(src) != 0) {
                snprintf(err, sizeof err, "cannot remove %s: %s", src, strerror(errno));
                goto fail;
            }
            printf("removed segment %s (kept in the quarantine)\n", scan.segs[i].name);
        }
    }
    if (fio_fsync_dir(dir) != 0) {
        snprintf(err, sizeof err, "cannot sync %s: %s", dir, strerror(errno));
        goto fail;
    }
    log_warn("journal.repaired", "dir=%s segment=%s offset=%" PRIu64 " bytes=%" PRIu64 " quarantine=%s", dir,
             bad->name, scan.bad_offset, moved, q);
    printf("the journal now holds %" PRIu64 " records, lsn %" PRIu64 "..%" PRIu64 "\n", scan.records,
           scan.first_lsn, scan.last_lsn);
    goto done;
fail:
    fprintf(stderr, "kasa journal repair: %s\n", err);
    rc = 1;
done:
    jf_scan_free(&scan);
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
    return s_repair(dir);
}
