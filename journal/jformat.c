/* jformat.c — checksums, segment headers, record checks and the shared scanner (see jformat.h). */
#include "journal/jformat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/journal.h"

/* ---- CRC32C ------------------------------------------------------------------------------ */

static uint32_t s_table[8][256];
static pthread_once_t s_table_once = PTHREAD_ONCE_INIT;
static int s_have_sse42 = -1;

static void s_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            s_table[t][i] = (s_table[t - 1][i] >> 8) ^ s_table[0][s_table[t - 1][i] & 0xff];
    __builtin_cpu_init();
    s_have_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

/* Slicing-by-8 in software; crc is the raw (pre-inverted) register. */
static uint32_t s_crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = crc ^ jf_get32(p), hi = jf_get32(p + 4);
        crc = s_table[7][lo & 0xff] ^ s_table[6][(lo >> 8) & 0xff] ^ s_table[5][(lo >> 16) & 0xff] ^
              s_table[4][lo >> 24] ^ s_table[3][hi & 0xff] ^ s_table[2][(hi >> 8) & 0xff] ^
              s_table[1][(hi >> 16) & 0xff] ^ s_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ s_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t s_crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t) c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t jf_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&s_table_once, s_table_init);
    return ~s_crc_sw(~crc, buf, len);
}

uint32_t jf_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&s_table_once, s_table_init);
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    if (len == 0)
        return crc;
#if defined(__x86_64__)
    if (s_have_sse42)
        return ~s_crc_hw(c, p, len);
#endif
    return ~s_crc_sw(c, p, len);
}

/* ---- headers ----------------------------------------------------------------------------- */

void jf_seg_header(uint8_t *hdr, const jf_seg_hdr_t *h)
{
    memset(hdr, 0, JF_SEG_HDR);
    jf_put32(hdr, JF_MAGIC);
    jf_put32(hdr + 4, JF_VERSION);
    jf_put64(hdr + 8, h->first_lsn);
    jf_put32(hdr + 16, h->prev_crc);
    jf_put32(hdr + 20, h->restart_crc);
    jf_put32(hdr + 24, h->flags);
    jf_put32(hdr + 28, jf_crc32c(0, hdr, 28));
}

uint32_t jf_rec_header(uint8_t *hdr, uint64_t lsn, uint32_t prev_crc, uint32_t payload_crc, uint32_t len,
                       uint32_t batch_index)
{
    jf_put32(hdr, len);
    jf_put64(hdr + 8, lsn);
    jf_put32(hdr + 16, prev_crc);
    jf_put32(hdr + 20, batch_index > JF_BATCH_INDEX_MAX ? JF_BATCH_INDEX_MAX : batch_index);
    uint32_t c = jf_crc32c(payload_crc, hdr, 4);
    c = jf_crc32c(c, hdr + 8, 16);
    jf_put32(hdr + 4, c);
    return c;
}

void jf_seg_name(char *name, uint64_t first_lsn)
{
    snprintf(name, JF_NAME_MAX, "%020" PRIu64 ".seg", first_lsn);
}

int jf_check_seg_header(const uint8_t *base, uint64_t size, uint64_t name_lsn, jf_seg_hdr_t *h,
                        char *why, size_t whylen)
{
    if (size < JF_SEG_HDR) {
        snprintf(why, whylen, "file of %" PRIu64 " bytes is shorter than a segment header", size);
        return -1;
    }
    if (jf_get32(base) != JF_MAGIC) {
        snprintf(why, whylen, "not a journal segment (bad magic)");
        return -1;
    }
    uint32_t version = jf_get32(base + 4);
    if (version == 1) {
        if (jf_get32(base + 24) != jf_crc32c(0, base, 24)) {
            snprintf(why, whylen, "segment header checksum mismatch");
            return -1;
        }
        if (jf_get32(base + 20) != 0 || jf_get32(base + 28) != 0) {
            snprintf(why, whylen, "segment header: reserved field is not zero");
            return -1;
        }
    } else if (version == 2) {
        if (jf_get32(base + 28) != jf_crc32c(0, base, 28)) {
            snprintf(why, whylen, "segment header checksum mismatch");
            return -1;
        }
        if (jf_get32(base + 24) & ~JF_SEG_BREAK) {
            snprintf(why, whylen, "segment header: unknown flags %08x", jf_get32(base + 24));
            return -1;
        }
    } else {
        /* the checksum decides between a damaged header and a newer kasa's segment */
        int v1 = jf_get32(base + 24) == jf_crc32c(0, base, 24), v2 = jf_get32(base + 28) == jf_crc32c(0, base, 28);
        if (v1 || v2)
            snprintf(why, whylen, "segment format version %u, this kasa reads 1 and %u", version, JF_VERSION);
        else
            snprintf(why, whylen, "segment header checksum mismatch");
        return -1;
    }
    h->version = version;
    h->first_lsn = jf_get64(base + 8);
    h->prev_crc = jf_get32(base + 16);
    h->restart_crc = version == 1 ? h->prev_crc : jf_get32(base + 20);
    h->flags = version == 1 ? 0 : jf_get32(base + 24);
    if (h->first_lsn != name_lsn) {
        snprintf(why, whylen, "segment header says first LSN %" PRIu64 ", its name says %" PRIu64, h->first_lsn,
                 name_lsn);
        return -1;
    }
    if (!(h->flags & JF_SEG_BREAK) && h->restart_crc != h->prev_crc) {
        snprintf(why, whylen, "segment header: restart checksum differs from the previous one without a break");
        return -1;
    }
    return 0;
}

int jf_seg_continues(const jf_seg_hdr_t *h, uint64_t *expect_lsn, uint32_t *expect_prev, uint64_t *lost_from,
                     char *why, size_t whylen)
{
    int brk = (h->flags & JF_SEG_BREAK) != 0;
    *lost_from = *expect_lsn ? *expect_lsn : h->first_lsn;
    if (*expect_lsn == 0) {
        *expect_lsn = h->first_lsn;
        *expect_prev = h->restart_crc;
        return 0;
    }
    if (h->first_lsn != *expect_lsn && !(brk && h->first_lsn > *expect_lsn)) {
        snprintf(why, whylen, "segment starts at LSN %" PRIu64 ", expected %" PRIu64
                 " (a segment is missing or misplaced)", h->first_lsn, *expect_lsn);
        return -1;
    }
    if (h->prev_crc != *expect_prev) {
        snprintf(why, whylen, "chain broken across segments: header names previous checksum %08x, "
                 "the previous record's is %08x", h->prev_crc, *expect_prev);
        return -1;
    }
    *expect_lsn = h->first_lsn;
    *expect_prev = h->restart_crc;
    return 0;
}

/* ---- records ----------------------------------------------------------------------------- */

static uint32_t s_rec_crc(const uint8_t *hdr, uint32_t len)
{
    uint32_t c = jf_crc32c(0, hdr + JF_REC_HDR, len);
    c = jf_crc32c(c, hdr, 4);
    return jf_crc32c(c, hdr + 8, 16);
}

int jf_zeros_to_end(const uint8_t *base, uint64_t size, uint64_t off)
{
    if (off > size)
        return 0;
    const uint8_t *p = base + off, *end = base + size;
    while (p < end && ((uintptr_t) p & 7))
        if (*p++)
            return 0;
    for (; end - p >= 8; p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v)
            return 0;
    }
    while (p < end)
        if (*p++)
            return 0;
    return 1;
}

static jf_rec_status_t s_check_record(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version,
                                      uint64_t expect_lsn, uint32_t expect_prev, jf_rec_t *rec, char *why,
                                      size_t whylen);

jf_rec_status_t jf_check_record(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version,
                                uint64_t expect_lsn, uint32_t expect_prev, jf_rec_t *rec, char *why, size_t whylen)
{
    jf_rec_status_t st = s_check_record(base, size, off, version, expect_lsn, expect_prev, rec, why, whylen);
    /* nothing but zeros from a record's place on: the unwritten part of a pre-sized segment (no
     * valid record starts with zeros only: its checksum would not match) */
    if (st != JF_REC_OK && st != JF_REC_END && jf_zeros_to_end(base, size, off))
        return JF_REC_END;
    return st;
}

static jf_rec_status_t s_check_record(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version,
                                      uint64_t expect_lsn, uint32_t expect_prev, jf_rec_t *rec, char *why,
                                      size_t whylen)
{
    if (off == size)
        return JF_REC_END;
    if (size - off < JF_REC_HDR) {
        snprintf(why, whylen, "incomplete record header (%" PRIu64 " of %u bytes)", size - off, JF_REC_HDR);
        return JF_REC_SHORT;
    }
    const uint8_t *h = base + off;
    uint32_t len = jf_get32(h);
    if (len > JOURNAL_MAX_PAYLOAD) {
        snprintf(why, whylen, "record length %u exceeds the maximum %u", len, JOURNAL_MAX_PAYLOAD);
        return JF_REC_BAD;
    }
    if (size - off - JF_REC_HDR < len) {
        snprintf(why, whylen, "incomplete record (%" PRIu64 " of %u bytes)", size - off, JF_REC_HDR + len);
        return JF_REC_SHORT;
    }
    uint32_t crc = jf_get32(h + 4);
    if (s_rec_crc(h, len) != crc) {
        snprintf(why, whylen, "record checksum mismatch");
        return JF_REC_BAD;
    }
    uint64_t lsn = jf_get64(h + 8);
    if (lsn != expect_lsn) {
        snprintf(why, whylen, "record has LSN %" PRIu64 ", expected %" PRIu64 " (missing or reordered record)",
                 lsn, expect_lsn);
        return JF_REC_BAD;
    }
    if (jf_get32(h + 16) != expect_prev) {
        snprintf(why, whylen, "chain broken: record %" PRIu64 " names previous checksum %08x, the previous record's is %08x",
                 lsn, jf_get32(h + 16), expect_prev);
        return JF_REC_BAD;
    }
    uint32_t field = jf_get32(h + 20);
    if (version == 1 ? field != 0 : (field & ~JF_BATCH_INDEX_MAX) != 0) {
        snprintf(why, whylen, "reserved record field is not zero");
        return JF_REC_BAD;
    }
    rec->lsn = lsn;
    rec->crc = crc;
    rec->len = len;
    rec->batch_index = field;
    rec->prev = expect_prev;
    rec->payload = h + JF_REC_HDR;
    return JF_REC_OK;
}

int jf_readable_at(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version, uint64_t min_lsn,
                   uint64_t max_lsn, jf_rec_t *rec)
{
    if (off + JF_REC_HDR > size)
        return 0;
    const uint8_t *h = base + off;
    uint64_t lsn = jf_get64(h + 8);
    if (lsn < min_lsn || lsn > max_lsn)
        return 0;
    uint32_t len = jf_get32(h), field = jf_get32(h + 20);
    if (len > JOURNAL_MAX_PAYLOAD || size - off - JF_REC_HDR < len)
        return 0;
    if (version == 1 ? field != 0 : (field & ~JF_BATCH_INDEX_MAX) != 0)
        return 0;
    if (s_rec_crc(h, len) != jf_get32(h + 4))
        return 0;
    rec->lsn = lsn;
    rec->crc = jf_get32(h + 4);
    rec->len = len;
    rec->batch_index = field;
    rec->prev = jf_get32(h + 16);
    rec->payload = h + JF_REC_HDR;
    return 1;
}

int jf_tail_is_torn(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version, uint64_t expect_lsn)
{
    uint64_t max_lsn = expect_lsn + (size - off) / JF_REC_HDR;   /* each record takes >= 24 bytes */
    jf_rec_t at;
    if (jf_readable_at(base, size, off, version, expect_lsn > 0 ? expect_lsn - 1 : 0, UINT64_MAX, &at))
        return 0;   /* an intact record in the wrong place (LSN, chain): no write tears that way */
    for (uint64_t o = off + 1; o + JF_REC_HDR <= size; o++) {
        jf_rec_t rec;
        if (!jf_readable_at(base, size, o, version, expect_lsn, max_lsn, &rec))
            continue;
        if (version < 2)
            return 0;   /* no batch indices: any readable record after the damage is proof enough */
        if (rec.batch_index > rec.lsn || rec.lsn - rec.batch_index > expect_lsn)
            return 0;   /* a later group commit began after the damaged record: that one was acknowledged */
        o += JF_REC_HDR + rec.len - 1;   /* its bytes are its own: go on after it */
    }
    return 1;
}

/* ---- files ------------------------------------------------------------------------------- */

static int s_seg_cmp(const void *a, const void *b)
{
    const jf_seg_t *x = a, *y = b;
    return x->first_lsn < y->first_lsn ? -1 : x->first_lsn > y->first_lsn;
}

static int s_is_seg_name(const char *name, uint64_t *lsn)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        if (v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t) (name[i] - '0');
    }
    *lsn = v;
    return 1;
}

int jf_list_segments(const char *dir, jf_seg_t **segs, size_t *n, char *err, size_t errlen)
{
    *segs = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "journal %s: cannot read the directory: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t lsn;
        if (!s_is_seg_name(e->d_name, &lsn))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            jf_seg_t *grown = realloc(*segs, cap * sizeof **segs);
            if (!grown) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            *segs = grown;
        }
        jf_seg_t *s = &(*segs)[(*n)++];
        memset(s, 0, sizeof *s);
        s->first_lsn = lsn;
        memcpy(s->name, e->d_name, 25); /* 24 characters and the NUL, checked above */
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        s->size = stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
    }
    closedir(d);
    if (rc != 0) {
        free(*segs);
        *segs = NULL;
        *n = 0;
        return -1;
    }
    if (*n > 1)
        qsort(*segs, *n, sizeof **segs, s_seg_cmp);
    return 0;
}

int jf_list_all(const char *dir, jf_seg_t **segs, size_t *n, char *err, size_t errlen)
{
    char adir[4200];
    snprintf(adir, sizeof adir, "%s/%s", dir, JF_ARCHIVE_SUBDIR);
    jf_seg_t *live = NULL, *old = NULL;
    size_t nlive = 0, nold = 0;
    /* the live directory first: a segment moved to the archive between the two listings is then
     * seen twice (and counted once), never missed */
    if (jf_list_segments(dir, &live, &nlive, err, errlen) != 0)
        return -1;
    if (jf_list_segments(adir, &old, &nold, err, errlen) != 0) {
        free(live);
        return -1;
    }
    *segs = NULL;
    *n = 0;
    if (nlive + nold == 0) {
        free(live);
        free(old);
        return 0;
    }
    jf_seg_t *all = malloc((nlive + nold) * sizeof *all);
    if (!all) {
        free(live);
        free(old);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < nold || j < nlive) {
        if (j == nlive || (i < nold && old[i].first_lsn <= live[j].first_lsn)) {
            if (j < nlive && old[i].first_lsn == live[j].first_lsn)
                j++;
            all[k] = old[i++];
            all[k++].archived = 1;
        } else {
            all[k] = live[j++];
            all[k++].archived = 0;
        }
    }
    free(live);
    free(old);
    *segs = all;
    *n = k;
    return 0;
}

void jf_seg_path(const char *dir, const jf_seg_t *seg, char *out, size_t outlen)
{
    if (seg->archived)
        snprintf(out, outlen, "%s/%s/%s", dir, JF_ARCHIVE_SUBDIR, seg->name);
    else
        snprintf(out, outlen, "%s/%s", dir, seg->name);
}

int jf_map(const char *path, const uint8_t **base, uint64_t *size, char *err, size_t errlen)
{
    *base = NULL;
    *size = 0;
    int fd = fio_open(path, O_RDONLY, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        madvise(m, (size_t) st.st_size, MADV_SEQUENTIAL);
        *base = m;
        *size = (uint64_t) st.st_size;
    }
    close(fd);
    return 0;
}

void jf_unmap(const uint8_t *base, uint64_t size)
{
    if (base && size)
        munmap((void *) base, (size_t) size);
}

int jf_lock(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, JF_LOCK_NAME);
    int fd = fio_open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "journal %s: cannot open the lock file: %s", dir, strerror(errno));
        return -1;
    }
    /* A holder that is going away is waited for, briefly: a kasa killed while it was starting its
     * snapshot process leaves that child holding the lock's open file until it has exec'd (the lock
     * file is close-on-exec), a moment after kasa itself is gone. */
    for (int waited_ms = 0; flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK && waited_ms < JF_LOCK_WAIT_MS;
         waited_ms += 20) {
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, errlen, "journal %s is in use by another process (pid %s)", dir, pid[0] ? pid : "?");
        else
            snprintf(err, errlen, "journal %s: cannot lock: %s", dir, strerror(e));
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long) getpid());
    if (fio_ftruncate(fd, 0) != 0 || fio_pwrite(fd, pid, (size_t) len, 0) != len) {
        snprintf(err, errlen, "journal %s: cannot write the lock file: %s", dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the scanner ------------------------------------------------------------------------- */

static void s_damage(jf_scan_t *out, jf_state_t state, size_t seg, uint64_t off, uint64_t size, const char *why)
{
    out->state = state;
    out->bad_seg = seg;
    out->bad_offset = off;
    out->bad_bytes = size > off ? size - off : 0;
    snprintf(out->reason, sizeof out->reason, "%s", why);
}

int jf_scan(const char *dir, jf_scan_t *out, jf_record_fn *fn, void *arg, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (jf_list_segments(dir, &out->segs, &out->nsegs, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < out->nsegs; i++)
        out->bytes += out->segs[i].size;
    uint32_t prev = 0;
    uint64_t expect = 0;
    int stop = 0;
    for (size_t i = 0; i < out->nsegs && out->state == JF_CLEAN && !stop; i++) {
        jf_seg_t *seg = &out->segs[i];
        char path[4096], why[160];
        const uint8_t *base;
        uint64_t size, lost_from;
        snprintf(path, sizeof path, "%s/%s", dir, seg->name);
        if (jf_map(path, &base, &size, err, errlen) != 0) {
            jf_scan_free(out);
            return -1;
        }
        seg->size = size;
        jf_seg_hdr_t hdr = { 0 };
        if (jf_check_seg_header(base, size, seg->first_lsn, &hdr, why, sizeof why) != 0 ||
            jf_seg_continues(&hdr, &expect, &prev, &lost_from, why, sizeof why) != 0) {
            s_damage(out, JF_CORRUPT, i, 0, size, why);
        } else {
            seg->version = hdr.version;
            if (hdr.flags & JF_SEG_BREAK) {
                if (out->nbreaks < JF_MAX_BREAKS) {
                    jf_break_t *b = &out->breaks[out->nbreaks];
                    snprintf(b->segment, sizeof b->segment, "%s", seg->name);
                    b->lost_from = lost_from;
                    b->lost_to = hdr.first_lsn - 1;
                }
                out->nbreaks++;
            }
        }
        uint64_t off = JF_SEG_HDR;
        while (out->state == JF_CLEAN && !stop) {
            jf_rec_t rec;
            jf_rec_status_t st = jf_check_record(base, size, off, hdr.version, expect, prev, &rec, why, sizeof why);
            if (st == JF_REC_END) {
                seg->used = off;
                break;
            }
            if (st != JF_REC_OK) {
                int torn = i + 1 == out->nsegs && jf_tail_is_torn(base, size, off, hdr.version, expect);
                s_damage(out, torn ? JF_TORN : JF_CORRUPT, i, off, size, why);
                break;
            }
            if (out->records == 0)
                out->first_lsn = rec.lsn;
            out->records++;
            out->last_lsn = rec.lsn;
            prev = rec.crc;
            expect++;
            if (fn && fn(arg, &rec, seg->name, off) != 0)
                stop = 1;
            off += JF_REC_HDR + rec.len;
        }
        jf_unmap(base, size);
    }
    out->last_crc = prev;
    out->next_lsn = expect ? expect : 1;
    return 0;
}

void jf_scan_free(jf_scan_t *scan)
{
    if (!scan)
        return;
    free(scan->segs);
    scan->segs = NULL;
    scan->nsegs = 0;
}
