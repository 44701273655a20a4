/* support_snapshot.h — shared by the snapshot unit tests: a snapshot rewritten with one section
 * replaced, as an older kasa (an older layout of that section) would have written it. */
#ifndef KASA_TESTS_SUPPORT_SNAPSHOT_H
#define KASA_TESTS_SUPPORT_SNAPSHOT_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "journal/snapshot.h"

/* Rewrites snapshot lsn of dir with section name's content replaced by content (len bytes; NULL:
 * the section left out), every other section, the chain checksum and the time as they were. 0, or
 * -1 (the reason on stderr). */
static inline int support_snapshot_replace(const char *dir, uint64_t lsn, const char *name, const void *content,
                                           uint64_t len)
{
    char err[300], path[700], keep[720];
    snapshot_t *old = snapshot_open(dir, lsn, err, sizeof err);
    if (!old) {
        fprintf(stderr, "snapshot %llu: %s\n", (unsigned long long) lsn, err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/snapshot/%020llu.snap", dir, (unsigned long long) lsn);
    snprintf(keep, sizeof keep, "%s.old", path);
    int rc = rename(path, keep);   /* still mapped: read from while the new one is written */
    snapshot_writer_t *w = rc == 0 ? snapshot_begin(dir, lsn, snapshot_chain_crc(old), snapshot_time_ms(old), err,
                                                    sizeof err) : NULL;
    rc = w ? 0 : -1;
    for (size_t i = 0; rc == 0 && snapshot_section_name(old, i); i++) {
        const char *at = snapshot_section_name(old, i);
        const uint8_t *c;
        uint64_t n;
        if (strcmp(at, name) == 0) {
            c = content;
            n = len;
        } else if (snapshot_section(old, at, &c, &n) != 0) {
            rc = -1;
            break;
        }
        if (c && snapshot_put(w, at, c, n, err, sizeof err) != 0)
            rc = -1;
    }
    if (rc == 0 && snapshot_commit(&w, err, sizeof err) != 0)
        rc = -1;
    snapshot_abort(&w);
    snapshot_close(&old);
    unlink(keep);
    if (rc != 0)
        fprintf(stderr, "snapshot %llu: %s\n", (unsigned long long) lsn, err);
    return rc;
}

#endif
