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

void jf_seg_header(uint8_t *hdr, uint64_t first_lsn, uint32_t prev_crc)
{
    memset(hdr, 0, JF_SEG_HDR);
    jf_put32(hdr, JF_MAGIC);
    jf_put32(hdr + 4, JF_VERSION);
    jf_put64(hdr + 8, first_lsn);
    jf_put32(hdr + 16, prev_crc);
    jf_put32(hdr + 24, jf_crc32c(0, hdr, 24));
}

uint32_t jf_rec_header(uint8_t *hdr, uint64_t lsn, uint32_t prev_crc, uint32_t payload_crc, uint32_t len)
{
    jf_put32(hdr, len);
    jf_put64(hdr + 8, lsn);
    jf_put32(hdr + 16, prev_crc);
    jf_put32(hdr + 20, 0);
    uint32_t c = jf_crc32c(payload_crc, hdr, 4);
    c = jf_crc32c(c, hdr + 8, 16);
    jf_put32(hdr + 4, c);
    return c;
}

void jf_seg_name(char *name, uint64_t first_lsn)
{
    snprintf(name, JF_NAME_MAX, "%020" PRIu64 ".seg", first_lsn);
}

int jf_check_seg_header(const uint8_t *base, uint64_t size, uint64_t name_lsn, uint32_t *prev_crc,
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
    if (jf_get32(base + 24) != jf_crc32c(0, base, 24)) {
        snprintf(why, whylen, "segment header checksum mismatch");
        return -1;
    }
    if (jf_get32(base + 28) != 0) {
        snprintf(why, whylen, "segment header: reserved field is not zero");
        return -1;
    }
    if (jf_get32(base + 4) != JF_VERSION) {
        snprintf(why, whylen, "segment format version %u, this kasa reads %u", jf_get32(base + 4), JF_VERSION);
        return -1;
    }
    if (jf_get64(base + 8) != name_lsn) {
        snprintf(why, whylen, "segment header says first LSN %" PRIu64 ", its name says %" PRIu64,
                 jf_get64(base + 8), name_lsn);
        return -1;
    }
    *prev_crc = jf_get32(base + 16);
    return 0;
}

/* ---- records ----------------------------------------------------------------------------- */

static uint32_t s_rec_crc(const uint8_t *hdr, uint32_t len)
{
    uint32_t c = jf_crc32c(0, hdr + JF_REC_HDR, len);
    c = jf_crc32c(c, hdr, 4);
    return jf_crc32c(c, hdr + 8, 16);
}

jf_rec_status_t jf_check_record(const uint8_t *base, uint64_t size, uint64_t off, uint64_t expect_lsn,
                                uint32_t expect_prev, jf_rec_t *rec, char *why, size_t whylen)
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
    if (jf_get32(h + 20) != 0) {
        snprintf(why, whylen, "reserved record field is not zero");
        return JF_REC_BAD;
    }
    rec->lsn = lsn;
    rec->crc = crc;
    rec->len = len;
    rec->payload = h + JF_REC_HDR;
    return JF_REC_OK;
}

int jf_valid_after(const uint8_t *base, uint64_t size, uint64_t off, uint64_t last_lsn)
{
    if (size < JF_REC_HDR)
        return 0;
    uint64_t max_lsn = last_lsn + (size - off) / JF_REC_HDR + 1;
    for (uint64_t o = off + 1; o + JF_REC_HDR <= size; o++) {
        const uint8_t *h = base + o;
        uint64_t lsn = jf_get64(h + 8);
        if (lsn <= last_lsn || lsn > max_lsn)
            continue;
        uint32_t len = jf_get32(h);
        if (len > JOURNAL_MAX_PAYLOAD || size - o - JF_REC_HDR < len || jf_get32(h + 20) != 0)
            continue;
        if (s_rec_crc(h, len) == jf_get32(h + 4))
            return 1;
    }
    return 0;
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
    int fd = fio_open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "journal %s: cannot open the lock file: %s", dir, strerror(errno));
        return -1;
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
        uint64_t size;
        snprintf(path, sizeof path, "%s/%s", dir, seg->name);
        if (jf_map(path, &base, &size, err, errlen) != 0) {
            jf_scan_free(out);
            return -1;
        }
        seg->size = size;
        uint32_t hdr_prev;
        if (jf_check_seg_header(base, size, seg->first_lsn, &hdr_prev, why, sizeof why) != 0) {
            s_damage(out, JF_CORRUPT, i, 0, size, why);
        } else if (i == 0) {
            expect = seg->first_lsn;
            prev = hdr_prev;
        } else if (seg->first_lsn != expect) {
            snprintf(why, sizeof why, "segment starts at LSN %" PRIu64 ", expected %" PRIu64
                     " (a segment is missing or misplaced)", seg->first_lsn, expect);
            s_damage(out, JF_CORRUPT, i, 0, size, why);
        } else if (hdr_prev != prev) {
            snprintf(why, sizeof why, "chain broken across segments: header names previous checksum %08x, "
                     "the previous record's is %08x", hdr_prev, prev);
            s_damage(out, JF_CORRUPT, i, 0, size, why);
        }
        uint64_t off = JF_SEG_HDR;
        while (out->state == JF_CLEAN && !stop) {
            jf_rec_t rec;
            jf_rec_status_t st = jf_check_record(base, size, off, expect, prev, &rec, why, sizeof why);
            if (st == JF_REC_END)
                break;
            if (st != JF_REC_OK) {
                int torn = i + 1 == out->nsegs && !jf_valid_after(base, size, off, expect - 1);
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
