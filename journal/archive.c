/* archive.c — retiring the segments a snapshot covers: they move to DIR/archive, where readers
 * still find them (jf_list_all) and kasa never deletes them. See journal.h. */
#include "journal/journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journal/fio.h"
#include "journal/jformat.h"

int journal_archive(const char *dir, uint64_t upto_lsn, size_t *moved, char *err, size_t errlen)
{
    *moved = 0;
    jf_seg_t *segs;
    size_t n;
    if (jf_list_segments(dir, &segs, &n, err, errlen) != 0)
        return -1;
    char adir[4200];
    snprintf(adir, sizeof adir, "%s/%s", dir, JF_ARCHIVE_SUBDIR);
    int rc = 0;
    /* segment i holds LSNs first_lsn(i) .. first_lsn(i + 1) - 1; the last segment is the one the
     * writer appends to and never moves */
    for (size_t i = 0; i + 1 < n && segs[i + 1].first_lsn <= upto_lsn + 1; i++) {
        if (*moved == 0) {
            if (mkdir(adir, 0700) == 0) {
                if (fio_fsync_dir(dir) != 0) {
                    snprintf(err, errlen, "cannot sync %s: %s", dir, strerror(errno));
                    rc = -1;
                    break;
                }
            } else if (errno != EEXIST) {
                snprintf(err, errlen, "cannot create %s: %s", adir, strerror(errno));
                rc = -1;
                break;
            }
        }
        char from[4200], to[4300];
        snprintf(from, sizeof from, "%s/%s", dir, segs[i].name);
        snprintf(to, sizeof to, "%s/%s", adir, segs[i].name);
        if (fio_rename(from, to) != 0) {
            snprintf(err, errlen, "cannot move %s to %s: %s", from, adir, strerror(errno));
            rc = -1;
            break;
        }
        (*moved)++;
    }
    free(segs);
    /* the new entries first, then the removed ones: a crash in between leaves a segment in both
     * places at worst (renames are atomic, so in fact in one), never in neither */
    if (*moved && (fio_fsync_dir(adir) != 0 || fio_fsync_dir(dir) != 0)) {
        snprintf(err, errlen, "cannot sync the archive of %s: %s", dir, strerror(errno));
        rc = -1;
    }
    return rc;
}
