/* support_journal.h — shared by the journal unit tests: a journal as a crash leaves it. */
#ifndef KASA_TESTS_SUPPORT_JOURNAL_H
#define KASA_TESTS_SUPPORT_JOURNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "journal/jformat.h"
#include "journal/journal.h"
#include "schema/record.h"

/* Makes a closed journal look as if its writer had died instead of closing: removes the empty
 * segment that a clean close starts (the proof that its last group commit was acknowledged), so
 * damage to that last group commit is a torn tail again, and cuts the zeros the writer kept ahead
 * of its records (as if they had not reached the disk): the last segment ends with its last record.
 * 0, or -1 if there was no such segment. */
static inline int support_journal_as_if_crashed(const char *dir)
{
    jf_seg_t *segs;
    size_t n;
    char err[256], path[4200];
    if (jf_list_segments(dir, &segs, &n, err, sizeof err) != 0)
        return -1;
    int rc = -1;
    if (n > 1 && segs[n - 1].size == JF_SEG_HDR) {
        snprintf(path, sizeof path, "%s/%s", dir, segs[n - 1].name);
        rc = unlink(path);
    }
    free(segs);
    jf_scan_t scan;
    if (rc == 0 && jf_scan(dir, &scan, NULL, NULL, err, sizeof err) == 0) {
        if (scan.state == JF_CLEAN && scan.nsegs > 0 && scan.segs[scan.nsegs - 1].used >= JF_SEG_HDR) {
            snprintf(path, sizeof path, "%s/%s", dir, scan.segs[scan.nsegs - 1].name);
            rc = truncate(path, (off_t) scan.segs[scan.nsegs - 1].used);
        }
        jf_scan_free(&scan);
    }
    return rc;
}

/* A journal opened in dir with small segments (segment_bytes), so a short history spans many; NULL
 * (the reason on stderr) if it cannot be opened. */
static inline journal_t *support_journal_small(const char *dir, uint64_t segment_bytes)
{
    char err[300];
    journal_opts_t o = { .segment_bytes = segment_bytes };
    journal_t *j = journal_open(dir, &o, err, sizeof err);
    if (!j)
        fprintf(stderr, "journal %s: %s\n", dir, err);
    return j;
}

/* Encodes r and appends it to j (not waiting for it to be durable): its LSN, or 0. */
static inline uint64_t support_journal_put(journal_t *j, const record_t *r)
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

#endif
