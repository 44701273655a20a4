/* test_findex_store.c — a store of finished deposits read through in order (findex_store_each, what
 * a rebuild of the running totals and `kasa journal verify` read): every entry handed over whole and
 * in order, entries larger than half the read window and ones across its edge included; a stop asked
 * by the callback stops it; a store cut short or damaged is reported where, not taken for its end. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/findex.h"
#include "tests/check.h"
#include "tests/unit/support_tmp.h"

static char s_dir[200];

/* Entry i's length and its bytes' pattern: small ones and ones up to the largest an entry may be. */
static size_t s_len(int i)
{
    static const size_t lens[] = { 1, FINDEX_ENTRY_MAX, 700000, 3, FINDEX_ENTRY_MAX - 1, 250000, 17, FINDEX_ENTRY_MAX,
                                   999999, 5, 600000, 2 };
    return lens[i];
}
#define S_ENTRIES 12

static uint8_t s_byte(int i, size_t k)
{
    return (uint8_t) (i * 31 + k * 7 + (k >> 9));
}

typedef struct {
    int seen, bad, stop_at;
    uint64_t last_off;
} s_walk_t;

static int s_check_one(void *arg, uint64_t off, const uint8_t *blob, size_t len)
{
    s_walk_t *w = arg;
    int i = w->seen++;
    if (i >= S_ENTRIES || len != s_len(i) || (i && off <= w->last_off))
        w->bad++;
    for (size_t k = 0; i < S_ENTRIES && k < len && k < s_len(i); k++)
        if (blob[k] != s_byte(i, k)) {
            w->bad++;
            break;
        }
    w->last_off = off;
    return w->seen == w->stop_at ? 7 : 0;
}

static void test_a_store_is_read_through_in_order_whole_entries_across_the_window(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "fstore", "each");
    mkdir(s_dir, 0700);
    char err[300];
    findex_writer_t *w = findex_write_begin(s_dir, 40, NULL, err, sizeof err);
    CHECK(w != NULL);
    uint8_t *blob = malloc(FINDEX_ENTRY_MAX);
    for (int i = 0; w && blob && i < S_ENTRIES; i++) {
        for (size_t k = 0; k < s_len(i); k++)
            blob[k] = s_byte(i, k);
        CHECK_EQ_INT(findex_write_add(w, 1000 + (uint64_t) i, 7, (uint64_t) i + 1, blob, s_len(i), err, sizeof err), 0);
    }
    free(blob);
    uint64_t count = 0;
    uint32_t crc = 0;
    CHECK_EQ_INT(findex_write_commit(&w, &count, &crc, err, sizeof err), 0);
    CHECK_EQ_INT(count, S_ENTRIES);

    s_walk_t walk = { 0 };
    uint64_t entries = 0;
    CHECK_EQ_INT(findex_store_each(s_dir, 40, s_check_one, &walk, &entries, err, sizeof err), 0);
    CHECK_EQ_INT(walk.seen, S_ENTRIES);
    CHECK_EQ_INT(walk.bad, 0);
    CHECK_EQ_INT(entries, S_ENTRIES);
    CHECK_EQ_INT(findex_store_check(s_dir, 40, &entries, err, sizeof err), 0);
    CHECK_EQ_INT(entries, S_ENTRIES);

    /* the callback's stop */
    s_walk_t stop = { .stop_at = 5 };
    CHECK_EQ_INT(findex_store_each(s_dir, 40, s_check_one, &stop, &entries, err, sizeof err), 7);
    CHECK_EQ_INT(stop.seen, 5);

    /* a byte of the ninth entry damaged, then the store cut inside it: reported there */
    char path[400];
    snprintf(path, sizeof path, "%s/finished/%020llu.dep", s_dir, 40ULL);
    uint64_t ninth = FINDEX_STORE_HDR;
    for (int i = 0; i < 8; i++)
        ninth += 8 + s_len(i);
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    CHECK(fd >= 0 && pread(fd, &b, 1, (off_t) ninth + 8 + 500000) == 1);
    b ^= 0xff;
    CHECK(fd >= 0 && pwrite(fd, &b, 1, (off_t) ninth + 8 + 500000) == 1);
    s_walk_t damaged = { 0 };
    CHECK_EQ_INT(findex_store_each(s_dir, 40, s_check_one, &damaged, &entries, err, sizeof err), -1);
    CHECK_EQ_INT(damaged.seen, 8);
    CHECK(strstr(err, "checksum mismatch") != NULL);
    char at[40];
    snprintf(at, sizeof at, "at %llu:", (unsigned long long) ninth);
    CHECK(strstr(err, at) != NULL);
    CHECK(fd >= 0 && ftruncate(fd, (off_t) ninth + 8 + 1000) == 0);
    close(fd);
    CHECK_EQ_INT(findex_store_check(s_dir, 40, &entries, err, sizeof err), -1);
    CHECK_EQ_INT(entries, 8);
    CHECK(strstr(err, "no whole entry") != NULL && strstr(err, at) != NULL);
    support_tmp_rmrf(s_dir);
}

int main(void)
{
    RUN(test_a_store_is_read_through_in_order_whole_entries_across_the_window);
    return check_done();
}
