/* support_tmp.h — shared by unit tests: fresh per-test directories under the test output dir. */
#ifndef KASA_TESTS_SUPPORT_TMP_H
#define KASA_TESTS_SUPPORT_TMP_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int support_tmp_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    remove(path);
    return 0;
}

/* Removes DIR and everything under it (missing is fine). */
static inline void support_tmp_rmrf(const char *dir)
{
    nftw(dir, support_tmp_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes into OUT (CAP bytes) the path "$KASA_TEST_OUT/PREFIX-NAME-PID" (default base
 * build/test-out, created if missing), removes whatever is there, and returns OUT. */
static inline const char *support_tmp_fresh(char *out, size_t cap, const char *prefix,
                                            const char *name)
{
    const char *base = getenv("KASA_TEST_OUT");
    if (!base || !*base)
        base = "build/test-out";
    mkdir(base, 0755);
    snprintf(out, cap, "%s/%s-%s-%d", base, prefix, name, (int) getpid());
    support_tmp_rmrf(out);
    return out;
}

#endif
