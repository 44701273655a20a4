/* findex.c — see findex.h. */
#include "journal/findex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/jformat.h"

_Static_assert(sizeof(findex_key_t) == 16 && sizeof(findex_login_t) == 24, "the arrays are used in place");

#define S_CHUNK (1u << 20)   /* checksum reads and buffered writes */

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
    const uint8_t *base;
    uint64_t size;
    const uint64_t *stores;
    const findex_key_t *keys;
    const findex_login_t *logins;
};

/* CRC32C of the first len bytes of fd, read in chunks (the page cache, not our memory). 0 or -1. */
static int s_crc_file(int fd, uint64_t len, uint32_t *crc)
{
    uint8_t *buf = malloc(S_CHUNK);
    if (!buf)
        return -1;
    uint32_t c = 0;
    uint64_t off = 0;
    while (off < len) {
        size_t want = len - off < S_CHUNK ? (size_t) (len - off) : S_CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t) off);
        if (n <= 0) {
            free(buf);
            return -1;
        }
        c = jf_crc32c(c, buf, (size_t) n);
        off += (uint64_t) n;
    }
    free(buf);
    *crc = c;
    return 0;
}

findex_t *findex_open(const char *dir, uint64_t lsn, char *err, size_t errlen)
{
    char path[600];
    s_path(path, sizeof path, dir, lsn, "idx");
    findex_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    snprintf(self->dir, sizeof self->dir, "%s", dir);
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
    uint32_t crc;
    if (s_crc_file(fd, size - 8, &crc) != 0 || crc != jf_get32(tail)) {
        snprintf(err, errlen, "%s: checksum mismatch (damaged)", path);
        goto fail;
    }
    void *m = mmap(NULL, (size_t) size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        goto fail;
    }
    madvise(m, (size_t) size, MADV_RANDOM);
    fio_close(fd);
    self->base = m;
    self->size = size;
    self->lsn = lsn;
    self->count = count;
    self->crc = crc;
    self->nstores = nstores;
    self->stores = (const uint64_t *) (self->base + FINDEX_INDEX_HDR);
    self->keys = (const findex_key_t *) (self->stores + nstores);
    self->logins = (const findex_login_t *) (self->keys + count);
    return self;
fail:
    if (fd >= 0)
        fio_close(fd);
    free(self);
    return NULL;
}

void findex_close(findex_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    findex_t *self = *self_p;
    if (self->base)
        munmap((void *) self->base, (size_t) self->size);
    free(self);
    *self_p = NULL;
}

uint64_t findex_lsn(const findex_t *self) { return self ? self->lsn : 0; }
uint64_t findex_count(const findex_t *self) { return self ? self->count : 0; }
uint32_t findex_crc(const findex_t *self) { return self ? self->crc : 0; }

/* The run of elements (stride bytes each, count of them, sorted by a leading u64) whose leading
 * u64 is key: its length, the first at *first. */
static size_t s_run(const void *array, size_t stride, uint64_t count, uint64_t key, size_t *first)
{
    const uint8_t *a = array;
#define S_KEY(i) (*(const uint64_t *) (a + (size_t) (i) * stride))
    size_t lo = 0, hi = (size_t) count;
    while (lo < hi) {   /* the first element >= key */
        size_t mid = lo + (hi - lo) / 2;
        if (S_KEY(mid) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    size_t n = 0;
    while (lo + n < count && S_KEY(lo + n) == key)
        n++;
#undef S_KEY
    return n;
}

size_t findex_find(const findex_t *self, uint64_t hash, size_t *first)
{
    *first = 0;
    return self ? s_run(self->keys, sizeof *self->keys, self->count, hash, first) : 0;
}

const findex_key_t *findex_key(const findex_t *self, size_t i)
{
    return self && i < self->count ? &self->keys[i] : NULL;
}

size_t findex_login(const findex_t *self, uint64_t login, size_t *first)
{
    *first = 0;
    return self ? s_run(self->logins, sizeof *self->logins, self->count, login, first) : 0;
}

const findex_login_t *findex_login_at(const findex_t *self, size_t i)
{
    return self && i < self->count ? &self->logins[i] : NULL;
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

/* A file written through a buffer, with a running checksum. */
typedef struct {
    int fd;
    char path[600], tmp[620];
    uint8_t *buf;
    size_t used;
    uint64_t written;
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

static int s_out_flush(s_out_t *o)
{
    if (o->failed)
        return -1;
    ssize_t n = o->used ? fio_write(o->fd, o->buf, o->used) : 0;
    if (n < 0 || (size_t) n != o->used) {   /* a short write on a regular file: the disk is full */
        o->failed = n < 0 && errno ? errno : ENOSPC;
        return -1;
    }
    o->used = 0;
    return 0;
}

static void s_out(s_out_t *o, const void *data, size_t len)
{
    const uint8_t *p = data;
    o->crc = jf_crc32c(o->crc, p, len);
    o->written += len;
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
    uint64_t nb = b ? b->count : 0, kept = 0;
    for (uint64_t i = 0; i < nb && w->ndrops; i++)
        kept += !s_dropped(w, b->keys[i].loc);
    if (!w->ndrops)
        kept = nb;
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
        /* the key array: base (less the dropped) merged with the added */
        size_t i = 0, j = 0;
        while (i < nb || j < w->n) {
            if (i < nb && s_dropped(w, b->keys[i].loc)) {
                i++;
                continue;
            }
            int base_first = j == w->n || (i < nb && s_key_cmp(&b->keys[i], &w->keys[j]) <= 0);
            const findex_key_t *k = base_first ? &b->keys[i++] : &w->keys[j++];
            s_out_u64(&o, k->hash);
            s_out_u64(&o, k->loc);
        }
        i = j = 0;
        while (i < nb || j < w->n) {
            if (i < nb && s_dropped(w, b->logins[i].loc)) {
                i++;
                continue;
            }
            int base_first = j == w->n || (i < nb && s_login_cmp(&b->logins[i], &w->logins[j]) <= 0);
            const findex_login_t *l = base_first ? &b->logins[i++] : &w->logins[j++];
            s_out_u64(&o, l->login);
            s_out_u64(&o, l->order);
            s_out_u64(&o, l->loc);
        }
        uint8_t tail[8];
        *crc = o.crc;
        jf_put32(tail, o.crc);
        jf_put32(tail + 4, FINDEX_END_MAGIC);
        s_out(&o, tail, 8);
        rc = s_out_commit(&o, err, errlen);
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
            s_prune(w->dir, jf_get64(b->base + 32) ? jf_get64(b->base + 32) : b->lsn);
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
