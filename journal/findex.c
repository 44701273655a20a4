/* findex.c — see findex.h. */
#include "journal/findex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/jformat.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the index's elements are written and read as they lie");
_Static_assert(sizeof(findex_key_t) == 16 && sizeof(findex_login_t) == 24, "elements are read as they lie in the file");

#define S_CHUNK (1u << 20)   /* checksum reads and buffered writes */
#define S_FENCE 256u         /* keys per fence: 4 KiB of the key array, one page a lookup touches */

static uint64_t (*s_hash_fn)(const char *tx_id);

uint64_t findex_hash(const char *tx_id)
{
    if (s_hash_fn)
        return s_hash_fn(tx_id);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *) tx_id; p && *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h ^= h >> 33;   /* spread the low bits FNV leaves weak */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void findex_set_hash(uint64_t (*fn)(const char *tx_id))
{
    s_hash_fn = fn;
}

static void s_path(char *out, size_t cap, const char *dir, uint64_t lsn, const char *ext)
{
    snprintf(out, cap, "%s/%s/%020llu.%s", dir, FINDEX_SUBDIR, (unsigned long long) lsn, ext);
}

/* ---- reading ---------------------------------------------------------------------------------- */

struct findex_t {
    char dir[512];
    uint64_t lsn, count;
    uint32_t crc;
    uint32_t nstores;
    uint64_t base_lsn;           /* of the index it was merged from (0: none) */
    int fd;                      /* read with pread: its pages stay in the page cache, not in kasa */
    uint64_t *stores;            /* the stores' LSNs, in memory */
    uint64_t keys_off, logins_off;
    uint64_t *fences;            /* the hash of every S_FENCE-th key, in memory */
    size_t nfences;
    /* the shared table of open indexes (s_open_*) */
    unsigned refs;
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime_ns;
    struct findex_t *next;
};

/* Open indexes are shared: every findex_open of one file (the same inode, size, modification time and
 * checksum) while it is open gets the same mapping, checked once. The running registry, the snapshot
 * writer's private registry and each snapshot's hand-over all open the index the last snapshot wrote:
 * checking 400 MB (ten million deposits) three times a snapshot, and mapping it afresh each time, is
 * was what made snapshots compete with acknowledgements. A file is never changed in place (written once,
 * renamed), so its identity names its content; one changed under kasa gets a new modification time
 * and is checked again; one no longer open anywhere is checked again at its next open. */
static pthread_mutex_t s_open_mu = PTHREAD_MUTEX_INITIALIZER;
static findex_t *s_open_list;

static int64_t s_mtime_ns(const struct stat *st)
{
    return (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* The open index of dir/lsn whose file is st with checksum crc, one more reference taken; or NULL. */
static findex_t *s_open_find(const char *dir, uint64_t lsn, const struct stat *st, uint32_t crc)
{
    pthread_mutex_lock(&s_open_mu);
    findex_t *x = s_open_list;
    while (x && !(x->lsn == lsn && x->dev == st->st_dev && x->ino == st->st_ino && x->size == (uint64_t) st->st_size &&
                  x->mtime_ns == s_mtime_ns(st) && x->crc == crc && strcmp(x->dir, dir) == 0))
        x = x->next;
    if (x)
        x->refs++;
    pthread_mutex_unlock(&s_open_mu);
    return x;
}

static void s_free(findex_t *self)
{
    if (self->fd >= 0)
        fio_close(self->fd);
    free(self->stores);
    free(self->fences);
    free(self);
}

/* Drops one reference; the last one unmaps and frees. */
static void s_release(findex_t *self)
{
    pthread_mutex_lock(&s_open_mu);
    int last = --self->refs == 0;
    if (last)
        for (findex_t **p = &s_open_list; *p; p = &(*p)->next)
            if (*p == self) {
                *p = self->next;
                break;
            }
    pthread_mutex_unlock(&s_open_mu);
    if (last)
        s_free(self);
}

/* Keeps the checked file fd (st, header fields given) in self and adds it to the shared table with
 * one reference. 0, or -1 with a reason (self->fd then still fd: the caller's s_free closes it). */
static int s_adopt(findex_t *self, int fd, const struct stat *st, const uint8_t *hdr, uint32_t crc, char *err,
                   size_t errlen)
{
    self->fd = fd;
    self->lsn = jf_get64(hdr + 8);
    self->count = jf_get64(hdr + 16);
    self->nstores = jf_get32(hdr + 24);
    self->base_lsn = jf_get64(hdr + 32);
    self->crc = crc;
    self->keys_off = FINDEX_INDEX_HDR + 8ull * self->nstores;
    self->logins_off = self->keys_off + sizeof(findex_key_t) * self->count;
    size_t bytes = (size_t) self->nstores * 8;
    if (self->nstores && (!(self->stores = malloc(bytes)) ||
                          pread(fd, self->stores, bytes, FINDEX_INDEX_HDR) != (ssize_t) bytes)) {
        snprintf(err, errlen, "cannot read the store list of index %llu", (unsigned long long) self->lsn);
        return -1;
    }
    self->dev = st->st_dev;
    self->ino = st->st_ino;
    self->size = (uint64_t) st->st_size;
    self->mtime_ns = s_mtime_ns(st);
    self->refs = 1;
    pthread_mutex_lock(&s_open_mu);
    self->next = s_open_list;
    s_open_list = self;
    pthread_mutex_unlock(&s_open_mu);
    return 0;
}

/* CRC32C of the first len bytes of fd, read in chunks (the page cache, not our memory); on the way,
 * the hash of every S_FENCE-th of the count keys that start at keys_off into fences. Every chunk but
 * the last is whole and S_CHUNK bytes: a hash (8 bytes at a multiple of 8) never spans two. 0 or -1. */
static int s_crc_file(int fd, uint64_t len, uint64_t keys_off, uint64_t count, uint64_t *fences, uint32_t *crc)
{
    uint8_t *buf = malloc(S_CHUNK);
    if (!buf)
        return -1;
    uint32_t c = 0;
    uint64_t off = 0, next = 0;   /* next: the key whose hash is the next fence */
    while (off < len) {
        size_t want = len - off < S_CHUNK ? (size_t) (len - off) : S_CHUNK, got = 0;
        while (got < want) {
            ssize_t n = pread(fd, buf + got, want - got, (off_t) (off + got));
            if (n <= 0) {
                free(buf);
                return -1;
            }
            got += (size_t) n;
        }
        c = jf_crc32c(c, buf, want);
        for (; next < count; next += S_FENCE) {
            uint64_t at = keys_off + next * sizeof(findex_key_t);
            if (at + 8 > off + want)
                break;
            fences[next / S_FENCE] = jf_get64(buf + (at - off));
        }
        off += want;
    }
    free(buf);
    *crc = c;
    return 0;
}

findex_t *findex_open(const char *dir, uint64_t lsn, char *err, size_t errlen)
{
    char path[600];
    s_path(path, sizeof path, dir, lsn, "idx");
    findex_t *self = NULL;
    int fd = fio_open(path, O_RDONLY, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t size = (uint64_t) st.st_size;
    uint8_t hdr[FINDEX_INDEX_HDR], tail[8];
    if (size < FINDEX_INDEX_HDR + 8 || pread(fd, hdr, sizeof hdr, 0) != (ssize_t) sizeof hdr ||
        pread(fd, tail, 8, (off_t) (size - 8)) != 8) {
        snprintf(err, errlen, "%s: too short", path);
        goto fail;
    }
    uint64_t count = jf_get64(hdr + 16);
    uint32_t nstores = jf_get32(hdr + 24);
    if (jf_get32(hdr) != FINDEX_INDEX_MAGIC || jf_get32(hdr + 4) != FINDEX_VERSION || jf_get64(hdr + 8) != lsn ||
        jf_get32(tail + 4) != FINDEX_END_MAGIC || count > (size / 40) || nstores > (1u << 23) ||
        size != FINDEX_INDEX_HDR + 8ull * nstores + 40ull * count + 8) {
        snprintf(err, errlen, "%s: not an index of snapshot %llu (header, size or version)", path,
                 (unsigned long long) lsn);
        goto fail;
    }
    if ((self = s_open_find(dir, lsn, &st, jf_get32(tail)))) {   /* open already, checked */
        fio_close(fd);
        return self;
    }
    self = calloc(1, sizeof *self);
    size_t nfences = (size_t) ((count + S_FENCE - 1) / S_FENCE);
    if (self)
        self->fd = -1;
    if (!self || (nfences && !(self->fences = malloc(nfences * sizeof *self->fences)))) {
        snprintf(err, errlen, "no memory");
        goto fail;
    }
    self->nfences = nfences;
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    uint32_t crc;
    if (s_crc_file(fd, size - 8, FINDEX_INDEX_HDR + 8ull * nstores, count, self->fences, &crc) != 0 ||
        crc != jf_get32(tail)) {
        snprintf(err, errlen, "%s: checksum mismatch (damaged)", path);
        goto fail;
    }
    if (s_adopt(self, fd, &st, hdr, crc, err, errlen) != 0) {
        s_free(self);   /* closes fd */
        return NULL;
    }
    return self;
fail:
    if (fd >= 0)
        fio_close(fd);
    if (self)
        s_free(self);
    return NULL;
}

void findex_close(findex_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_release(*self_p);
    *self_p = NULL;
}

uint64_t findex_lsn(const findex_t *self) { return self ? self->lsn : 0; }
uint64_t findex_count(const findex_t *self) { return self ? self->count : 0; }
uint32_t findex_crc(const findex_t *self) { return self ? self->crc : 0; }

/* Reads n elements of size bytes from self's file at off into out. 0, or -1 (an I/O error). */
static int s_pread(const findex_t *self, void *out, size_t bytes, uint64_t off)
{
    size_t got = 0;
    while (got < bytes) {
        ssize_t n = pread(self->fd, (uint8_t *) out + got, bytes - got, (off_t) (off + got));
        if (n <= 0)
            return -1;
        got += (size_t) n;
    }
    return 0;
}

/* Key i (i < count) into *k. 0 or -1. */
static int s_key_at(const findex_t *self, uint64_t i, findex_key_t *k)
{
    return s_pread(self, k, sizeof *k, self->keys_off + i * sizeof *k);
}

static int s_login_at(const findex_t *self, uint64_t i, findex_login_t *l)
{
    return s_pread(self, l, sizeof *l, self->logins_off + i * sizeof *l);
}

size_t findex_find(const findex_t *self, uint64_t hash, size_t *first)
{
    *first = 0;
    if (!self || !self->count)
        return 0;
    /* The first fence >= hash (in memory): every key before the fence before it is < hash, and the
     * first key >= hash is at most that fence's key. So one read of 4 KiB finds it, where a binary
     * search over ten million keys would read twenty-odd pages. */
    size_t lo = 0, hi = self->nfences;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->fences[mid] < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t from = lo ? (uint64_t) (lo - 1) * S_FENCE : 0;
    uint64_t upto = lo < self->nfences ? (uint64_t) lo * S_FENCE + 1 : self->count;
    if (upto > self->count)
        upto = self->count;
    findex_key_t win[S_FENCE + 1];
    size_t wn = (size_t) (upto - from);
    if (s_pread(self, win, wn * sizeof *win, self->keys_off + from * sizeof *win) != 0)
        return FINDEX_FAILED;
    size_t a = 0, b = wn;
    while (a < b) {   /* the first key >= hash in the window */
        size_t mid = a + (b - a) / 2;
        if (win[mid].hash < hash)
            a = mid + 1;
        else
            b = mid;
    }
    *first = (size_t) from + a;
    size_t n = 0;
    while (a + n < wn && win[a + n].hash == hash)
        n++;
    if (n && a + n == wn) {   /* the run may go on past the window */
        for (findex_key_t k; *first + n < self->count; n++) {
            if (s_key_at(self, *first + n, &k) != 0)
                return FINDEX_FAILED;
            if (k.hash != hash)
                break;
        }
    }
    return n;
}

/* The element findex_key / findex_login_at return: the caller's copy, until its next call. */
static _Thread_local union { findex_key_t key; findex_login_t login; } s_last;

const findex_key_t *findex_key(const findex_t *self, size_t i)
{
    if (!self || i >= self->count || s_key_at(self, i, &s_last.key) != 0)
        return NULL;
    return &s_last.key;
}

size_t findex_login(const findex_t *self, uint64_t login, size_t *first)
{
    *first = 0;
    if (!self)
        return 0;
    uint64_t lo = 0, hi = self->count;
    findex_login_t l;
    while (lo < hi) {   /* the first element >= login: a read per step (a login's history is rare) */
        uint64_t mid = lo + (hi - lo) / 2;
        if (s_login_at(self, mid, &l) != 0)
            return FINDEX_FAILED;
        if (l.login < login)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = (size_t) lo;
    size_t n = 0;
    for (; lo + n < self->count; n++) {
        if (s_login_at(self, lo + n, &l) != 0)
            return FINDEX_FAILED;
        if (l.login != login)
            break;
    }
    return n;
}

size_t findex_logins_read(const findex_t *self, size_t i, findex_login_t *out, size_t n)
{
    if (!self || i >= self->count)
        return 0;
    if (n > self->count - i)
        n = (size_t) (self->count - i);
    return s_pread(self, out, n * sizeof *out, self->logins_off + (uint64_t) i * sizeof *out) == 0 ? n : FINDEX_FAILED;
}

const findex_login_t *findex_login_at(const findex_t *self, size_t i)
{
    if (!self || i >= self->count || s_login_at(self, i, &s_last.login) != 0)
        return NULL;
    return &s_last.login;
}

int findex_read(const findex_t *self, uint64_t loc, uint8_t **blob, size_t *len, char *err, size_t errlen)
{
    *blob = NULL;
    *len = 0;
    uint64_t store = loc >> FINDEX_LOC_SHIFT, off = loc & ((1ull << FINDEX_LOC_SHIFT) - 1);
    if (!self || store >= self->nstores) {
        snprintf(err, errlen, "index entry names store %llu of %u", (unsigned long long) store,
                 self ? self->nstores : 0);
        return -1;
    }
    char path[600];
    s_path(path, sizeof path, self->dir, self->stores[store], "dep");
    int fd = fio_open(path, O_RDONLY, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t hdr[8];
    int rc = -1;
    uint8_t *buf = NULL;
    if (pread(fd, hdr, 8, (off_t) off) != 8 || jf_get32(hdr) == 0 || jf_get32(hdr) > FINDEX_ENTRY_MAX) {
        snprintf(err, errlen, "%s at %llu: no entry there (damaged)", path, (unsigned long long) off);
    } else if (!(buf = malloc(jf_get32(hdr)))) {
        snprintf(err, errlen, "no memory");
    } else if (pread(fd, buf, jf_get32(hdr), (off_t) off + 8) != (ssize_t) jf_get32(hdr) ||
               jf_crc32c(0, buf, jf_get32(hdr)) != jf_get32(hdr + 4)) {
        snprintf(err, errlen, "%s at %llu: checksum mismatch (damaged)", path, (unsigned long long) off);
    } else {
        *blob = buf;
        *len = jf_get32(hdr);
        buf = NULL;
        rc = 0;
    }
    free(buf);
    fio_close(fd);
    return rc;
}

size_t findex_store_count(const findex_t *self)
{
    return self ? self->nstores : 0;
}

uint64_t findex_store_lsn(const findex_t *self, size_t i)
{
    return self && i < self->nstores ? self->stores[i] : 0;
}

int findex_store_check(const char *dir, uint64_t lsn, uint64_t *entries, char *err, size_t errlen)
{
    char path[600];
    s_path(path, sizeof path, dir, lsn, "dep");
    *entries = 0;
    int fd = fio_open(path, O_RDONLY, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            fio_close(fd);
        return -1;
    }
    uint64_t size = (uint64_t) st.st_size, off = FINDEX_STORE_HDR;
    uint8_t hdr[FINDEX_STORE_HDR];
    uint8_t *buf = malloc(FINDEX_ENTRY_MAX);
    int rc = -1;
    if (!buf) {
        snprintf(err, errlen, "no memory");
    } else if (size < FINDEX_STORE_HDR || pread(fd, hdr, sizeof hdr, 0) != (ssize_t) sizeof hdr ||
               jf_get32(hdr) != FINDEX_STORE_MAGIC || jf_get32(hdr + 4) != FINDEX_VERSION || jf_get64(hdr + 8) != lsn) {
        snprintf(err, errlen, "%s: not a store of snapshot %llu (header)", path, (unsigned long long) lsn);
    } else {
        rc = 0;
        while (rc == 0 && off < size) {
            uint8_t eh[8];
            uint32_t len = 0;
            if (size - off < 8 || pread(fd, eh, 8, (off_t) off) != 8 || (len = jf_get32(eh)) == 0 ||
                len > FINDEX_ENTRY_MAX || size - off - 8 < len) {
                snprintf(err, errlen, "%s at %llu: no whole entry there (damaged)", path, (unsigned long long) off);
                rc = -1;
            } else if (pread(fd, buf, len, (off_t) off + 8) != (ssize_t) len || jf_crc32c(0, buf, len) != jf_get32(eh + 4)) {
                snprintf(err, errlen, "%s at %llu: checksum mismatch (damaged)", path, (unsigned long long) off);
                rc = -1;
            } else {
                off += 8 + (uint64_t) len;
                (*entries)++;
            }
        }
    }
    free(buf);
    fio_close(fd);
    return rc;
}

/* ---- writing ---------------------------------------------------------------------------------- */

/* A file written through a buffer, with a running checksum taken a buffer at a time (an index of ten
 * million deposits is written 8 to 24 bytes a call: a checksum call each was a quarter of a rewrite's
 * CPU, taken from the acknowledgements' two cores). */
typedef struct {
    int fd;
    char path[600], tmp[620];
    uint8_t *buf;
    size_t used;
    size_t summed;               /* of the buffer's bytes, those in crc already */
    uint64_t written;            /* bytes given (the buffer's included) */
    uint64_t flushed;            /* bytes written to the file */
    uint32_t crc;
    int failed;
} s_out_t;

static int s_out_open(s_out_t *o, const char *path, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    o->buf = malloc(S_CHUNK);
    o->fd = o->buf ? fio_open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
    if (o->fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", o->tmp, o->buf ? strerror(errno) : "no memory");
        free(o->buf);
        o->buf = NULL;
        return -1;
    }
    return 0;
}

/* The checksum of every byte given so far. */
static uint32_t s_out_crc(s_out_t *o)
{
    o->crc = jf_crc32c(o->crc, o->buf + o->summed, o->used - o->summed);
    o->summed = o->used;
    return o->crc;
}

static int s_out_flush(s_out_t *o)
{
    if (o->failed)
        return -1;
    s_out_crc(o);
    ssize_t n = o->used ? fio_write(o->fd, o->buf, o->used) : 0;
    if (n < 0 || (size_t) n != o->used) {   /* a short write on a regular file: the disk is full */
        o->failed = n < 0 && errno ? errno : ENOSPC;
        return -1;
    }
    /* each chunk to the disk as it goes (paced), not hundreds of MB at the fsync */
    fio_writeback(o->fd, (off_t) o->flushed, (off_t) o->used);
    o->flushed += o->used;
    o->used = o->summed = 0;
    return 0;
}

static void s_out(s_out_t *o, const void *data, size_t len)
{
    const uint8_t *p = data;
    o->written += len;
    if (len <= S_CHUNK - o->used) {   /* the common case: an element into the buffer */
        memcpy(o->buf + o->used, p, len);
        o->used += len;
        return;
    }
    while (len && !o->failed) {
        if (o->used == S_CHUNK && s_out_flush(o) != 0)
            return;
        size_t take = S_CHUNK - o->used < len ? S_CHUNK - o->used : len;
        memcpy(o->buf + o->used, p, take);
        o->used += take;
        p += take;
        len -= take;
    }
}

static void s_out_u64(s_out_t *o, uint64_t v)
{
    uint8_t b[8];
    jf_put64(b, v);
    s_out(o, b, 8);
}

/* Flushes, fsyncs, closes and renames into place. 0, or -1 with a reason (the tmp file removed). */
static int s_out_commit(s_out_t *o, char *err, size_t errlen)
{
    int rc = s_out_flush(o);
    if (rc == 0 && fio_fdatasync(o->fd) != 0)
        rc = -1, o->failed = errno;
    if (fio_close(o->fd) != 0 && rc == 0)
        rc = -1, o->failed = errno;
    o->fd = -1;
    if (rc == 0 && fio_rename(o->tmp, o->path) != 0)
        rc = -1, o->failed = errno;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", o->path, strerror(o->failed ? o->failed : EIO));
        unlink(o->tmp);
    }
    free(o->buf);
    o->buf = NULL;
    return rc;
}

static void s_out_abort(s_out_t *o)
{
    if (o->fd >= 0) {
        fio_close(o->fd);
        unlink(o->tmp);
    }
    o->fd = -1;
    free(o->buf);
    o->buf = NULL;
}

struct findex_writer_t {
    char dir[512];
    uint64_t lsn;
    const findex_t *base;
    s_out_t store;
    int store_open;
    findex_key_t *keys;          /* the added ones */
    findex_login_t *logins;
    size_t n, cap;
    uint64_t *drops;             /* base locs left out */
    size_t ndrops, capdrops;
    int failed;
};

findex_writer_t *findex_write_begin(const char *dir, uint64_t lsn, const findex_t *base, char *err, size_t errlen)
{
    if (base && lsn <= base->lsn) {   /* its stores would be rewritten under the base's feet */
        snprintf(err, errlen, "an index of snapshot %llu cannot be built on one of %llu", (unsigned long long) lsn,
                 (unsigned long long) base->lsn);
        return NULL;
    }
    findex_writer_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->lsn = lsn;
    w->base = base;
    w->store.fd = -1;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/%s", dir, FINDEX_SUBDIR);
    if (mkdir(sub, 0700) == 0) {
        if (fio_fsync_dir(dir) != 0) {
            snprintf(err, errlen, "cannot make %s durable: %s", sub, strerror(errno));
            free(w);
            return NULL;
        }
    } else if (errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", sub, strerror(errno));
        free(w);
        return NULL;
    }
    return w;
}

int findex_write_add(findex_writer_t *w, uint64_t hash, uint64_t login, uint64_t order, const void *blob,
                     size_t len, char *err, size_t errlen)
{
    if (w->failed)
        return -1;
    if (!len || len > FINDEX_ENTRY_MAX) {
        snprintf(err, errlen, "an entry of %zu bytes", len);
        w->failed = 1;
        return -1;
    }
    if (!w->store_open) {
        char path[600];
        s_path(path, sizeof path, w->dir, w->lsn, "dep");
        if (s_out_open(&w->store, path, err, errlen) != 0) {
            w->failed = 1;
            return -1;
        }
        w->store_open = 1;
        uint8_t hdr[FINDEX_STORE_HDR] = { 0 };
        jf_put32(hdr, FINDEX_STORE_MAGIC);
        jf_put32(hdr + 4, FINDEX_VERSION);
        jf_put64(hdr + 8, w->lsn);
        s_out(&w->store, hdr, sizeof hdr);
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        findex_key_t *k = realloc(w->keys, cap * sizeof *k);
        if (k)
            w->keys = k;
        findex_login_t *l = k ? realloc(w->logins, cap * sizeof *l) : NULL;
        if (!l) {
            snprintf(err, errlen, "no memory");
            w->failed = 1;
            return -1;
        }
        w->logins = l;
        w->cap = cap;
    }
    uint64_t store_no = w->base ? w->base->nstores : 0;
    uint64_t loc = store_no << FINDEX_LOC_SHIFT | w->store.written;
    uint8_t hdr[8];
    jf_put32(hdr, (uint32_t) len);
    jf_put32(hdr + 4, jf_crc32c(0, blob, len));
    s_out(&w->store, hdr, 8);
    s_out(&w->store, blob, len);
    if (w->store.failed) {
        snprintf(err, errlen, "cannot write %s: %s", w->store.tmp, strerror(w->store.failed));
        w->failed = 1;
        return -1;
    }
    w->keys[w->n] = (findex_key_t) { hash, loc };
    w->logins[w->n] = (findex_login_t) { login, order, loc };
    w->n++;
    return 0;
}

void findex_write_drop(findex_writer_t *w, uint64_t loc)
{
    if (w->ndrops == w->capdrops) {
        size_t cap = w->capdrops ? w->capdrops * 2 : 64;
        uint64_t *d = realloc(w->drops, cap * sizeof *d);
        if (!d) {
            w->failed = 1;
            return;
        }
        w->drops = d;
        w->capdrops = cap;
    }
    w->drops[w->ndrops++] = loc;
}

static int s_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static int s_key_cmp(const void *a, const void *b)
{
    const findex_key_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->loc < y->loc ? -1 : x->loc > y->loc;
}

/* login ascending, then newest (highest order) first */
static int s_login_cmp(const void *a, const void *b)
{
    const findex_login_t *x = a, *y = b;
    if (x->login != y->login)
        return x->login < y->login ? -1 : 1;
    if (x->order != y->order)
        return x->order > y->order ? -1 : 1;
    return x->loc < y->loc ? -1 : x->loc > y->loc;
}

/* An open index's array read through in order, in chunks (pread: the page cache, not kasa's memory). */
typedef struct {
    const findex_t *x;
    uint64_t off, end;           /* the next chunk's file offset; the array's end */
    uint8_t *buf;
    size_t pos, len;
    int failed;
} s_in_t;

static void s_in_open(s_in_t *in, const findex_t *x, uint64_t off, uint64_t bytes)
{
    memset(in, 0, sizeof *in);
    in->x = x;
    in->off = off;
    in->end = off + bytes;
    in->buf = x && bytes ? malloc(S_CHUNK) : NULL;
    in->failed = x && bytes && !in->buf;
}

/* The next n bytes into out (an element may span two chunks). Zeros, and failed, past the end or on
 * a read error. */
static void s_in_get(s_in_t *in, void *out, size_t n)
{
    if (n <= in->len - in->pos && !in->failed) {   /* the common case: an element within the chunk */
        memcpy(out, in->buf + in->pos, n);
        in->pos += n;
        return;
    }
    uint8_t *o = out;
    while (n && !in->failed) {
        if (in->pos == in->len) {
            uint64_t left = in->end - in->off;
            size_t want = left < S_CHUNK ? (size_t) left : S_CHUNK;
            if (!want || s_pread(in->x, in->buf, want, in->off) != 0) {
                in->failed = 1;
                break;
            }
            in->off += want;
            in->pos = 0;
            in->len = want;
        }
        size_t take = in->len - in->pos < n ? in->len - in->pos : n;
        memcpy(o, in->buf + in->pos, take);
        in->pos += take;
        o += take;
        n -= take;
    }
    if (n)
        memset(o, 0, n);
}

/* Frees; 0, or -1 if any read failed. */
static int s_in_close(s_in_t *in)
{
    free(in->buf);
    in->buf = NULL;
    return in->failed ? -1 : 0;
}

static int s_dropped(const findex_writer_t *w, uint64_t loc)
{
    return w->ndrops && bsearch(&loc, w->drops, w->ndrops, sizeof *w->drops, s_u64_cmp) != NULL;
}

/* Removes the index files (DIR/finished/NNNN.idx) older than keep_from. */
static void s_prune(const char *dir, uint64_t keep_from)
{
    char sub[600];
    snprintf(sub, sizeof sub, "%s/%s", dir, FINDEX_SUBDIR);
    DIR *d = opendir(sub);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        char path[900];
        snprintf(path, sizeof path, "%s/%s", sub, de->d_name);
        if (n == 24 && strcmp(de->d_name + 20, ".idx") == 0 && strtoull(de->d_name, NULL, 10) < keep_from)
            fio_unlink(path);
    }
    closedir(d);
}

/* Writes one array of the new index to o: base's (its count of elements of size bytes at off, less the
 * dropped) merged in cmp's order with w's added ones. Elements are u64 fields, the loc last. Base's
 * array is read through in order (s_in_t), so a merge of ten million does not bring the file into
 * kasa's memory. 0, or -1 (a read of base failed). */
static int s_merge(s_out_t *o, const findex_writer_t *w, uint64_t off, const void *added, size_t size,
                   int (*cmp)(const void *, const void *))
{
    uint64_t nb = w->base ? w->base->count : 0, i = 0, cur[3] = { 0 }, e[3];
    size_t j = 0, fields = size / 8;
    const uint8_t *add = added;
    s_in_t in;
    s_in_open(&in, w->base, off, nb * size);
    if (nb)
        s_in_get(&in, cur, size);
    while (i < nb || j < w->n) {
        if (i < nb && s_dropped(w, cur[fields - 1])) {
            if (++i < nb)
                s_in_get(&in, cur, size);
            continue;
        }
        int base_first = j == w->n || (i < nb && cmp(cur, add + j * size) <= 0);
        memcpy(e, base_first ? (const void *) cur : add + j++ * size, size);
        if (base_first && ++i < nb)
            s_in_get(&in, cur, size);
        s_out(o, e, size);   /* u64 fields, little-endian as they lie (findex.h) */
    }
    return s_in_close(&in);
}

int findex_write_commit(findex_writer_t **wp, uint64_t *count, uint32_t *crc, char *err, size_t errlen)
{
    findex_writer_t *w = *wp;
    *wp = NULL;
    int rc = w->failed ? -1 : 0;
    if (rc != 0)
        snprintf(err, errlen, "the finished-deposit index could not be written");
    if (rc == 0 && w->store_open) {
        rc = s_out_commit(&w->store, err, errlen);
        w->store_open = 0;
    }
    if (w->ndrops > 1)
        qsort(w->drops, w->ndrops, sizeof *w->drops, s_u64_cmp);
    if (w->n > 1) {
        qsort(w->keys, w->n, sizeof *w->keys, s_key_cmp);
        qsort(w->logins, w->n, sizeof *w->logins, s_login_cmp);
    }
    const findex_t *b = w->base;
    uint64_t nb = b ? b->count : 0, kept = nb;
    if (w->ndrops) {   /* the base's deposits left in: its keys read through once */
        s_in_t in;
        s_in_open(&in, b, b->keys_off, nb * sizeof(findex_key_t));
        kept = 0;
        for (uint64_t i = 0; i < nb; i++) {
            findex_key_t k;
            s_in_get(&in, &k, sizeof k);
            kept += !s_dropped(w, k.loc);
        }
        if (s_in_close(&in) != 0 && rc == 0) {
            snprintf(err, errlen, "cannot read the index of snapshot %llu", (unsigned long long) b->lsn);
            rc = -1;
        }
    }
    uint64_t total = kept + w->n;
    uint32_t nstores = (b ? b->nstores : 0) + (w->n ? 1 : 0);
    s_out_t o;
    char path[600];
    s_path(path, sizeof path, w->dir, w->lsn, "idx");
    if (rc == 0 && s_out_open(&o, path, err, errlen) != 0)
        rc = -1;
    if (rc == 0) {
        uint8_t hdr[FINDEX_INDEX_HDR] = { 0 };
        jf_put32(hdr, FINDEX_INDEX_MAGIC);
        jf_put32(hdr + 4, FINDEX_VERSION);
        jf_put64(hdr + 8, w->lsn);
        jf_put64(hdr + 16, total);
        jf_put32(hdr + 24, nstores);
        jf_put64(hdr + 32, b ? b->lsn : 0);
        s_out(&o, hdr, sizeof hdr);
        for (uint32_t i = 0; b && i < b->nstores; i++)
            s_out_u64(&o, b->stores[i]);
        if (w->n)
            s_out_u64(&o, w->lsn);
        /* each array: base's (less the dropped) merged with the added */
        int in_failed = s_merge(&o, w, b ? b->keys_off : 0, w->keys, sizeof *w->keys, s_key_cmp);
        in_failed |= s_merge(&o, w, b ? b->logins_off : 0, w->logins, sizeof *w->logins, s_login_cmp);
        uint8_t tail[8];
        *crc = s_out_crc(&o);
        jf_put32(tail, *crc);
        jf_put32(tail + 4, FINDEX_END_MAGIC);
        s_out(&o, tail, 8);
        if (in_failed) {
            snprintf(err, errlen, "cannot read the index of snapshot %llu", (unsigned long long) b->lsn);
            s_out_abort(&o);
            rc = -1;
        } else {
            rc = s_out_commit(&o, err, errlen);
        }
    }
    char sub[600];
    snprintf(sub, sizeof sub, "%s/%s", w->dir, FINDEX_SUBDIR);
    if (rc == 0 && fio_fsync_dir(sub) != 0) {
        snprintf(err, errlen, "cannot make %s durable: %s", sub, strerror(errno));
        rc = -1;
    }
    if (rc == 0) {
        *count = total;
        /* The snapshots kept name this index, base's, or (this one's commit failing) base's base at
         * most. Without a base (a start from the whole journal) nothing is known: nothing is removed. */
        if (b)
            s_prune(w->dir, b->base_lsn ? b->base_lsn : b->lsn);
    }
    findex_write_abort(&w);
    return rc;
}

void findex_write_abort(findex_writer_t **wp)
{
    if (!wp || !*wp)
        return;
    findex_writer_t *w = *wp;
    if (w->store_open)
        s_out_abort(&w->store);
    free(w->keys);
    free(w->logins);
    free(w->drops);
    free(w);
    *wp = NULL;
}
