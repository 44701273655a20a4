/* findex.c — see findex.h. */
#include "journal/findex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/jformat.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the index's elements are written and read as they lie");
_Static_assert(sizeof(findex_key_t) == 16 && sizeof(findex_login_t) == 24, "elements are read as they lie in the file");

/* Checksum reads and buffered writes, and the most one read(2) or write(2) asks: the kernel does not
 * preempt a syscall (these machines run preempt=none), and copying 1 MiB in or out of the page cache
 * held a CPU for up to 3.7 ms in the snapshot process (traced), with kasa's threads waiting. */
#define S_CHUNK (64u << 10)
#define S_FENCE 256u         /* keys per fence: 4 KiB of the key array, one page a lookup touches */
#define S_FILTER_BITS 10u    /* a run's filter: bits per key (about 1% of absent hashes pass) */
#define S_MAX_BELOW 4096u    /* runs one index may stand on (a few dozen in practice: see s_merge_depth) */
#define S_TIER_RUNS 4u       /* runs of one tier merged into one */

static uint64_t (*s_hash_fn)(const char *tx_id);
static uint64_t s_merge_unit = 1024;   /* keys: a run below this is of tier 0 */

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

void findex_set_merge_unit(uint64_t keys)
{
    s_merge_unit = keys ? keys : 1024;
}

static void s_path(char *out, size_t cap, const char *dir, uint64_t lsn, const char *ext)
{
    snprintf(out, cap, "%s/%s/%020llu.%s", dir, FINDEX_SUBDIR, (unsigned long long) lsn, ext);
}

static int s_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* ---- one run: one NNNN.idx file ---------------------------------------------------------------- */

typedef struct {
    uint64_t lsn, count, crc;    /* a run below, as the index that stands on it names it */
} s_below_t;
_Static_assert(sizeof(s_below_t) == 24, "read as it lies");

typedef struct s_run_t {
    char dir[512];
    uint64_t lsn, count, base_lsn;
    uint32_t crc, nstores, nbelow;
    uint64_t ndrops;
    int fd;                      /* read with pread: its pages stay in the page cache, not in kasa */
    s_below_t *below;            /* the runs it stands on, newest first */
    uint64_t *drops;             /* sorted: locs of the runs below it that it leaves out */
    uint64_t keys_off, logins_off;
    uint64_t *fences;            /* the hash of every S_FENCE-th key, in memory */
    size_t nfences;
    uint64_t *filter;            /* a blocked Bloom filter of the keys (s_filter_*): 512-bit blocks */
    uint64_t nblocks;
    /* the shared table of open runs (s_open_*) */
    unsigned refs;
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime_ns;
    struct s_run_t *next;
} s_run_t;

/* Open runs are shared: every open of one file (the same inode, size, modification time and checksum)
 * while it is open gets the same handle, checked once. The running registry, the snapshot writer's
 * private registry and each snapshot's hand-over all stand on the same runs: checking 400 MB (ten
 * million deposits) at every open is what made snapshots compete with acknowledgements. A file is
 * never changed in place (written once, renamed), so its identity names its content; one changed
 * under kasa gets a new modification time and is checked again; one no longer open anywhere is
 * checked again at its next open. */
static pthread_mutex_t s_open_mu = PTHREAD_MUTEX_INITIALIZER;
static s_run_t *s_open_list;

static int64_t s_mtime_ns(const struct stat *st)
{
    return (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* The open run of dir/lsn whose file is st with checksum crc, one more reference taken; or NULL. */
static s_run_t *s_open_find(const char *dir, uint64_t lsn, const struct stat *st, uint32_t crc)
{
    pthread_mutex_lock(&s_open_mu);
    s_run_t *x = s_open_list;
    while (x && !(x->lsn == lsn && x->dev == st->st_dev && x->ino == st->st_ino && x->size == (uint64_t) st->st_size &&
                  x->mtime_ns == s_mtime_ns(st) && x->crc == crc && strcmp(x->dir, dir) == 0))
        x = x->next;
    if (x)
        x->refs++;
    pthread_mutex_unlock(&s_open_mu);
    return x;
}

static void s_run_free(s_run_t *self)
{
    if (self->fd >= 0)
        fio_close(self->fd);
    free(self->below);
    free(self->drops);
    free(self->fences);
    free(self->filter);
    free(self);
}

/* ---- a run's filter: a hash it says is absent is in no key of the run ------------------------------ *
 * A lookup of a new deposit's transaction (most lookups: every new webhook, every deposit a snapshot's
 * replay meets) would otherwise read one 4 KiB window of every run to learn it is not there. The
 * filter is built from the keys while the first open checks the run's checksum (no extra read): 10
 * bits a key (1.25 bytes: 12.5 MB at ten million deposits), one 64-byte block a hash, four bits in it. */

static uint64_t s_filter_mix(uint64_t h)   /* the key's bits spread again: a test may force weak hashes */
{
    h += 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static uint64_t *s_filter_block(const s_run_t *self, uint64_t m)
{
    return self->filter + 8 * (uint64_t) (((m >> 32) * self->nblocks) >> 32);
}

static void s_filter_add(s_run_t *self, uint64_t hash)
{
    uint64_t m = s_filter_mix(hash), *b = s_filter_block(self, m);
    for (int i = 0; i < 4; i++) {
        unsigned bit = (unsigned) (m >> (9 * i)) & 511u;
        b[bit >> 6] |= 1ull << (bit & 63);
    }
}

/* 0: no key of the run is hash; 1: one may be (or the run has no filter). */
static int s_filter_may(const s_run_t *self, uint64_t hash)
{
    if (!self->filter)
        return 1;
    uint64_t m = s_filter_mix(hash);
    const uint64_t *b = s_filter_block(self, m);
    for (int i = 0; i < 4; i++) {
        unsigned bit = (unsigned) (m >> (9 * i)) & 511u;
        if (!(b[bit >> 6] & (1ull << (bit & 63))))
            return 0;
    }
    return 1;
}

/* Drops one reference; the last one closes and frees. */
static void s_run_release(s_run_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&s_open_mu);
    int last = --self->refs == 0;
    if (last)
        for (s_run_t **p = &s_open_list; *p; p = &(*p)->next)
            if (*p == self) {
                *p = self->next;
                break;
            }
    pthread_mutex_unlock(&s_open_mu);
    if (last)
        s_run_free(self);
}

/* Reads bytes of fd at off into out. 0, or -1 (an I/O error or the end of the file). */
static int s_pread_fd(int fd, void *out, size_t bytes, uint64_t off)
{
    size_t got = 0;
    while (got < bytes) {
        size_t want = bytes - got < S_CHUNK ? bytes - got : S_CHUNK;
        ssize_t n = pread(fd, (uint8_t *) out + got, want, (off_t) (off + got));
        if (n <= 0)
            return -1;
        got += (size_t) n;
    }
    return 0;
}

static atomic_uint_fast64_t s_key_reads;   /* findex_key_reads */

uint64_t findex_key_reads(void)
{
    return atomic_load(&s_key_reads);
}

static int s_pread(const s_run_t *self, void *out, size_t bytes, uint64_t off)
{
    return s_pread_fd(self->fd, out, bytes, off);
}

/* What a run's header says, its sizes checked against the file's. */
typedef struct {
    uint64_t lsn, count, base_lsn, ndrops;
    uint32_t nstores, nbelow;
    uint64_t below_off, drops_off, keys_off, logins_off;
} s_hdr_t;

/* Parses hdr of a file of size bytes that should be the index of snapshot lsn. 0, or -1. A version 1
 * file (one whole index) is the same layout with nothing below and nothing dropped. */
static int s_hdr_parse(const uint8_t *hdr, uint64_t size, uint64_t lsn, s_hdr_t *h)
{
    uint32_t version = jf_get32(hdr + 4);
    memset(h, 0, sizeof *h);
    h->lsn = jf_get64(hdr + 8);
    h->count = jf_get64(hdr + 16);
    h->nstores = jf_get32(hdr + 24);
    h->base_lsn = jf_get64(hdr + 32);
    if (version == FINDEX_VERSION) {
        h->nbelow = jf_get32(hdr + 40);
        h->ndrops = jf_get32(hdr + 44);
    }
    if (jf_get32(hdr) != FINDEX_INDEX_MAGIC || (version != 1 && version != FINDEX_VERSION) || h->lsn != lsn ||
        h->count > size / 40 || h->nstores > (1u << 23) || h->nbelow > S_MAX_BELOW || h->ndrops > size / 8)
        return -1;
    h->below_off = FINDEX_INDEX_HDR + 8ull * h->nstores;
    h->drops_off = h->below_off + sizeof(s_below_t) * h->nbelow;
    h->keys_off = h->drops_off + 8ull * h->ndrops;
    h->logins_off = h->keys_off + sizeof(findex_key_t) * h->count;
    return size == h->logins_off + sizeof(findex_login_t) * h->count + 8 ? 0 : -1;
}

/* CRC32C of the first len bytes of fd, read in chunks (the page cache, not our memory); on the way,
 * the hash of every S_FENCE-th of the count keys that start at keys_off into run's fences, and every
 * key into its filter. Every chunk but the last is whole and S_CHUNK bytes, and keys_off is a multiple
 * of 8: a hash never spans two. 0 or -1. */
static int s_crc_file(int fd, uint64_t len, uint64_t keys_off, uint64_t count, s_run_t *run, uint32_t *crc)
{
    uint8_t *buf = malloc(S_CHUNK);
    if (!buf)
        return -1;
    uint32_t c = 0;
    uint64_t off = 0, next = 0, key = 0;   /* next: the key whose hash is the next fence */
    while (off < len) {
        size_t want = len - off < S_CHUNK ? (size_t) (len - off) : S_CHUNK;
        if (s_pread_fd(fd, buf, want, off) != 0) {
            free(buf);
            return -1;
        }
        c = jf_crc32c(c, buf, want);
        for (; next < count; next += S_FENCE) {
            uint64_t at = keys_off + next * sizeof(findex_key_t);
            if (at + 8 > off + want)
                break;
            run->fences[next / S_FENCE] = jf_get64(buf + (at - off));
        }
        for (; run->filter && key < count; key++) {
            uint64_t at = keys_off + key * sizeof(findex_key_t);
            if (at + 8 > off + want)
                break;
            if (at >= off)
                s_filter_add(run, jf_get64(buf + (at - off)));
        }
        off += want;
    }
    free(buf);
    *crc = c;
    return 0;
}

/* Opens run DIR/finished/NNNN.idx (NNNN = lsn), checked whole unless it is open already (shared). NULL
 * with a reason. */
static s_run_t *s_run_open(const char *dir, uint64_t lsn, char *err, size_t errlen)
{
    char path[600];
    s_path(path, sizeof path, dir, lsn, "idx");
    s_run_t *self = NULL;
    int fd = fio_open(path, O_RDONLY, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t size = (uint64_t) st.st_size;
    uint8_t hdr[FINDEX_INDEX_HDR], tail[8];
    s_hdr_t h;
    if (size < FINDEX_INDEX_HDR + 8 || pread(fd, hdr, sizeof hdr, 0) != (ssize_t) sizeof hdr ||
        pread(fd, tail, 8, (off_t) (size - 8)) != 8) {
        snprintf(err, errlen, "%s: too short", path);
        goto fail;
    }
    if (jf_get32(tail + 4) != FINDEX_END_MAGIC || s_hdr_parse(hdr, size, lsn, &h) != 0) {
        snprintf(err, errlen, "%s: not an index of snapshot %llu (header, size or version)", path,
                 (unsigned long long) lsn);
        goto fail;
    }
    if ((self = s_open_find(dir, lsn, &st, jf_get32(tail)))) {   /* open already, checked */
        fio_close(fd);
        return self;
    }
    self = calloc(1, sizeof *self);
    size_t nfences = (size_t) ((h.count + S_FENCE - 1) / S_FENCE);
    uint64_t nblocks = (h.count * S_FILTER_BITS + 511) / 512;
    if (self)
        self->fd = -1;
    if (!self || (nfences && !(self->fences = malloc(nfences * sizeof *self->fences))) ||
        (nblocks && !(self->filter = calloc((size_t) nblocks * 8, sizeof *self->filter))) ||
        (h.nbelow && !(self->below = malloc(sizeof(s_below_t) * h.nbelow))) ||
        (h.ndrops && !(self->drops = malloc(8 * h.ndrops)))) {
        snprintf(err, errlen, "no memory");
        goto fail;
    }
    self->nfences = nfences;
    self->nblocks = nblocks;
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    uint32_t crc;
    if (s_crc_file(fd, size - 8, h.keys_off, h.count, self, &crc) != 0 || crc != jf_get32(tail)) {
        snprintf(err, errlen, "%s: checksum mismatch (damaged)", path);
        goto fail;
    }
    if ((h.nbelow && s_pread_fd(fd, self->below, sizeof(s_below_t) * h.nbelow, h.below_off) != 0) ||
        (h.ndrops && s_pread_fd(fd, self->drops, 8 * h.ndrops, h.drops_off) != 0)) {
        snprintf(err, errlen, "cannot read the lists of %s", path);
        goto fail;
    }
    self->fd = fd;
    self->lsn = h.lsn;
    self->count = h.count;
    self->base_lsn = h.base_lsn;
    self->nstores = h.nstores;
    self->nbelow = h.nbelow;
    self->ndrops = h.ndrops;
    self->keys_off = h.keys_off;
    self->logins_off = h.logins_off;
    self->crc = crc;
    self->dev = st.st_dev;
    self->ino = st.st_ino;
    self->size = size;
    self->mtime_ns = s_mtime_ns(&st);
    self->refs = 1;
    pthread_mutex_lock(&s_open_mu);
    self->next = s_open_list;
    s_open_list = self;
    pthread_mutex_unlock(&s_open_mu);
    return self;
fail:
    if (self)
        s_run_free(self);   /* closes its fd (still -1 here) */
    if (fd >= 0)
        fio_close(fd);
    return NULL;
}

/* The first of self's keys equal to hash: calls fn(arg, loc) for each key equal to it whose loc
 * dropped() does not leave out, until fn returns nonzero. 0, fn's nonzero, or -1 (a read error). */
static int s_run_find(const s_run_t *self, uint64_t hash, const findex_t *set, int (*fn)(void *arg, uint64_t loc),
                      void *arg);

/* ---- the levelled index: a top run and the runs it stands on --------------------------------------- */

struct findex_t {
    uint64_t lsn, live;          /* the top run's LSN; the deposits the whole index holds */
    uint32_t crc;                /* the top run's checksum */
    uint32_t nstores;            /* the stores, as the top run lists them (every run's are a prefix, so */
    uint64_t *stores;            /* only the top's is kept in memory: it grows a store a snapshot) */
    s_run_t **runs;              /* newest first: runs[0] is the top */
    size_t nruns;
    uint64_t *drops;             /* every run's drops, sorted: a loc in it is in no run's answers */
    size_t ndrops;
};

static int s_dropped_in(const findex_t *set, uint64_t loc)
{
    return set->ndrops && bsearch(&loc, set->drops, set->ndrops, sizeof *set->drops, s_u64_cmp) != NULL;
}

void findex_close(findex_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    findex_t *self = *self_p;
    for (size_t i = 0; i < self->nruns; i++)
        s_run_release(self->runs[i]);
    free(self->runs);
    free(self->drops);
    free(self->stores);
    free(self);
    *self_p = NULL;
}

/* The index whose top is DIR/finished/NNNN.idx, with the runs below it (below: 0, the top alone). */
static findex_t *s_set_open(const char *dir, uint64_t lsn, int below, char *err, size_t errlen)
{
    findex_t *self = calloc(1, sizeof *self);
    s_run_t *top = self ? s_run_open(dir, lsn, err, errlen) : NULL;
    if (!top) {
        if (!self)
            snprintf(err, errlen, "no memory");
        free(self);
        return NULL;
    }
    size_t n = 1 + (below ? top->nbelow : 0);
    if (!(self->runs = calloc(n, sizeof *self->runs))) {
        s_run_release(top);
        free(self);
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    self->runs[self->nruns++] = top;
    self->lsn = top->lsn;
    self->crc = top->crc;
    self->nstores = top->nstores;
    if (top->nstores && (!(self->stores = malloc(8ull * top->nstores)) ||
                         s_pread_fd(top->fd, self->stores, 8ull * top->nstores, FINDEX_INDEX_HDR) != 0)) {
        snprintf(err, errlen, "cannot read the store list of index %llu", (unsigned long long) lsn);
        findex_close(&self);
        return NULL;
    }
    self->live = top->count;
    size_t ndrops = 0;
    for (size_t i = 1; i < n; i++) {
        const s_below_t *b = &top->below[i - 1];
        s_run_t *r = s_run_open(dir, b->lsn, err, errlen);
        if (r && (r->count != b->count || r->crc != b->crc || r->nstores > top->nstores)) {
            snprintf(err, errlen, "index %llu stands on run %llu of %llu deposits (checksum %08llx), and %s/%020llu.idx "
                     "is another", (unsigned long long) lsn, (unsigned long long) b->lsn,
                     (unsigned long long) b->count, (unsigned long long) b->crc, FINDEX_SUBDIR,
                     (unsigned long long) b->lsn);
            s_run_release(r);
            r = NULL;
        }
        if (!r) {
            findex_close(&self);
            return NULL;
        }
        self->runs[self->nruns++] = r;
        self->live += r->count;
    }
    for (size_t i = 0; below && i < self->nruns; i++)
        ndrops += self->runs[i]->ndrops;
    if (ndrops) {   /* a dropped loc is in exactly one run below the one dropping it */
        if (!(self->drops = malloc(ndrops * sizeof *self->drops))) {
            findex_close(&self);
            snprintf(err, errlen, "no memory");
            return NULL;
        }
        for (size_t i = 0; i < self->nruns; i++) {
            if (self->runs[i]->ndrops)
                memcpy(self->drops + self->ndrops, self->runs[i]->drops, self->runs[i]->ndrops * 8);
            self->ndrops += self->runs[i]->ndrops;
        }
        qsort(self->drops, self->ndrops, sizeof *self->drops, s_u64_cmp);
        self->live = self->live > self->ndrops ? self->live - self->ndrops : 0;
    }
    return self;
}

findex_t *findex_open(const char *dir, uint64_t lsn, char *err, size_t errlen)
{
    return s_set_open(dir, lsn, 1, err, errlen);
}

findex_t *findex_open_run(const char *dir, uint64_t lsn, char *err, size_t errlen)
{
    return s_set_open(dir, lsn, 0, err, errlen);
}

uint64_t findex_lsn(const findex_t *self) { return self ? self->lsn : 0; }
uint64_t findex_count(const findex_t *self) { return self ? self->live : 0; }
uint32_t findex_crc(const findex_t *self) { return self ? self->crc : 0; }
size_t findex_runs(const findex_t *self) { return self ? self->nruns : 0; }

uint64_t findex_run_lsn(const findex_t *self, size_t i)
{
    return self && i < self->nruns ? self->runs[i]->lsn : 0;
}

static int s_run_find(const s_run_t *self, uint64_t hash, const findex_t *set, int (*fn)(void *arg, uint64_t loc),
                      void *arg)
{
    if (!self->count || !s_filter_may(self, hash))
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
    atomic_fetch_add(&s_key_reads, 1);
    if (s_pread(self, win, wn * sizeof *win, self->keys_off + from * sizeof *win) != 0)
        return -1;
    size_t a = 0, b = wn;
    while (a < b) {   /* the first key >= hash in the window */
        size_t mid = a + (b - a) / 2;
        if (win[mid].hash < hash)
            a = mid + 1;
        else
            b = mid;
    }
    for (uint64_t i = from + a;; i++) {   /* the run of equal keys may go on past the window */
        findex_key_t k;
        if (i >= self->count)
            return 0;
        if (i < upto)
            k = win[i - from];
        else if (s_pread(self, &k, sizeof k, self->keys_off + i * sizeof k) != 0)
            return -1;
        if (k.hash != hash)
            return 0;
        int rc = s_dropped_in(set, k.loc) ? 0 : fn(arg, k.loc);
        if (rc)
            return rc;
    }
}

int findex_find(const findex_t *self, uint64_t hash, int (*fn)(void *arg, uint64_t loc), void *arg)
{
    for (size_t i = 0; self && i < self->nruns; i++) {
        int rc = s_run_find(self->runs[i], hash, self, fn, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* One of a run's two arrays (off: where it starts; count elements of size bytes) read through in order,
 * in chunks (pread: the page cache, not kasa's memory). */
typedef struct {
    const s_run_t *x;
    uint64_t off, end;           /* the next chunk's file offset; the array's end */
    uint8_t *buf;
    size_t cap, pos, len;
    int failed;
} s_in_t;

static void s_in_open(s_in_t *in, const s_run_t *x, uint64_t off, uint64_t bytes)
{
    memset(in, 0, sizeof *in);
    in->x = x;
    in->off = off;
    in->end = off + bytes;
    in->cap = bytes < S_CHUNK ? (size_t) bytes : S_CHUNK;   /* a small run's whole, at most a chunk */
    in->buf = x && bytes ? malloc(in->cap) : NULL;
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
            size_t want = left < in->cap ? (size_t) left : in->cap;
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

/* Every element of one array of every run (logins: 1, keys: 0), less the dropped, to fn. */
static int s_each(const findex_t *self, int logins, int (*fn)(void *arg, const void *elem), void *arg)
{
    for (size_t r = 0; self && r < self->nruns; r++) {
        const s_run_t *x = self->runs[r];
        size_t size = logins ? sizeof(findex_login_t) : sizeof(findex_key_t);
        s_in_t in;
        s_in_open(&in, x, logins ? x->logins_off : x->keys_off, x->count * size);
        int rc = 0;
        for (uint64_t i = 0; i < x->count && rc == 0 && !in.failed; i++) {
            uint64_t e[3];
            s_in_get(&in, e, size);
            if (!in.failed && !s_dropped_in(self, e[size / 8 - 1]))   /* the loc is the last field */
                rc = fn(arg, e);
        }
        if (s_in_close(&in) != 0)
            return -1;
        if (rc)
            return rc;
    }
    return 0;
}

int findex_each(const findex_t *self, int (*fn)(void *arg, const findex_login_t *l), void *arg)
{
    return s_each(self, 1, (int (*)(void *, const void *)) fn, arg);
}

int findex_each_key(const findex_t *self, int (*fn)(void *arg, const findex_key_t *k), void *arg)
{
    return s_each(self, 0, (int (*)(void *, const void *)) fn, arg);
}

/* A login's deposits across the runs, merged newest first: in each run its range of the login array,
 * one element read at a time (a login's history page is rare and short). */
struct findex_login_it_t {
    const findex_t *x;
    struct {
        uint64_t next, end;      /* the run's next element to read; its range's end */
        findex_login_t cur;      /* the element read, if has */
        int has;
    } *c;
    int failed;
};

/* The first element of run x whose login is >= login: its position in *at. 0 or -1. */
static int s_login_bound(const s_run_t *x, uint64_t login, uint64_t *at)
{
    uint64_t lo = 0, hi = x->count;
    findex_login_t l;
    while (lo < hi) {   /* a read per step */
        uint64_t mid = lo + (hi - lo) / 2;
        if (s_pread(x, &l, sizeof l, x->logins_off + mid * sizeof l) != 0)
            return -1;
        if (l.login < login)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return 0;
}

/* Reads run r's next element (not dropped) of the iterator's range into its cur. 0 or -1. */
static int s_login_advance(findex_login_it_t *it, size_t r)
{
    const s_run_t *x = it->x->runs[r];
    it->c[r].has = 0;
    while (it->c[r].next < it->c[r].end) {
        findex_login_t l;
        if (s_pread(x, &l, sizeof l, x->logins_off + it->c[r].next++ * sizeof l) != 0)
            return -1;
        if (!s_dropped_in(it->x, l.loc)) {
            it->c[r].cur = l;
            it->c[r].has = 1;
            break;
        }
    }
    return 0;
}

findex_login_it_t *findex_login_begin(const findex_t *self, uint64_t login)
{
    findex_login_it_t *it = calloc(1, sizeof *it);
    size_t n = self ? self->nruns : 0;
    if (!it || (n && !(it->c = calloc(n, sizeof *it->c)))) {
        free(it);
        return NULL;
    }
    it->x = self;
    for (size_t r = 0; r < n && !it->failed; r++) {
        if (s_login_bound(self->runs[r], login, &it->c[r].next) != 0 ||
            (login < UINT64_MAX && s_login_bound(self->runs[r], login + 1, &it->c[r].end) != 0) ||
            s_login_advance(it, r) != 0)
            it->failed = 1;
        if (login == UINT64_MAX)
            it->c[r].end = self->runs[r]->count;
    }
    return it;
}

int findex_login_next(findex_login_it_t *it, findex_login_t *out)
{
    if (!it || it->failed)
        return -1;
    size_t best = SIZE_MAX;
    for (size_t r = 0; r < (it->x ? it->x->nruns : 0); r++)
        if (it->c[r].has && (best == SIZE_MAX || it->c[r].cur.order > it->c[best].cur.order))
            best = r;
    if (best == SIZE_MAX)
        return 0;
    *out = it->c[best].cur;
    if (s_login_advance(it, best) != 0) {
        it->failed = 1;
        return -1;
    }
    return 1;
}

void findex_login_end(findex_login_it_t **it_p)
{
    if (!it_p || !*it_p)
        return;
    free((*it_p)->c);
    free(*it_p);
    *it_p = NULL;
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
    s_path(path, sizeof path, self->runs[0]->dir, self->stores[store], "dep");
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
    return findex_store_each(dir, lsn, NULL, NULL, entries, err, errlen);
}

#define S_STORE_BUF (2 * (FINDEX_ENTRY_MAX + 8))   /* the largest entry fits whatever the window's start */

/* Makes bytes [off, off + n) of the store (size bytes) be in the window buf[0..*have) that starts at
 * file offset *at, sliding it and reading on as needed. 0, or -1 (a read failed or came short). */
static int s_window(int fd, uint8_t *buf, uint64_t *at, size_t *have, uint64_t size, uint64_t off, size_t n)
{
    if (off >= *at && off + n <= *at + *have)
        return 0;
    size_t keep = off >= *at && off < *at + *have ? (size_t) (*at + *have - off) : 0;
    if (keep)
        memmove(buf, buf + (off - *at), keep);
    *at = off;
    *have = keep;
    while (*have < n || (*have < S_STORE_BUF && *at + *have < size)) {
        size_t want = S_STORE_BUF - *have;
        if (want > size - (*at + *have))
            want = (size_t) (size - (*at + *have));
        if (want == 0)
            return -1;
        ssize_t got = pread(fd, buf + *have, want, (off_t) (*at + *have));
        if (got <= 0)
            return -1;
        *have += (size_t) got;
    }
    return 0;
}

int findex_store_each(const char *dir, uint64_t lsn, int (*fn)(void *arg, uint64_t off, const uint8_t *blob, size_t len),
                      void *arg, uint64_t *entries, char *err, size_t errlen)
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
    uint64_t size = (uint64_t) st.st_size, off = FINDEX_STORE_HDR, at = 0;
    size_t have = 0;
    uint8_t *buf = malloc(S_STORE_BUF);
    int rc = -1;
    if (!buf) {
        snprintf(err, errlen, "no memory");
    } else if (size < FINDEX_STORE_HDR || s_window(fd, buf, &at, &have, size, 0, FINDEX_STORE_HDR) != 0 ||
               jf_get32(buf) != FINDEX_STORE_MAGIC || jf_get32(buf + 4) != FINDEX_STORE_VERSION || jf_get64(buf + 8) != lsn) {
        snprintf(err, errlen, "%s: not a store of snapshot %llu (header)", path, (unsigned long long) lsn);
    } else {
        rc = 0;
        while (rc == 0 && off < size) {
            uint32_t len = 0;
            if (size - off < 8 || s_window(fd, buf, &at, &have, size, off, 8) != 0 ||
                (len = jf_get32(buf + (off - at))) == 0 || len > FINDEX_ENTRY_MAX || size - off - 8 < len ||
                s_window(fd, buf, &at, &have, size, off, 8 + (size_t) len) != 0) {
                snprintf(err, errlen, "%s at %llu: no whole entry there (damaged)", path, (unsigned long long) off);
                rc = -1;
                break;
            }
            const uint8_t *eh = buf + (off - at);   /* the window holds the whole entry now */
            if (jf_crc32c(0, eh + 8, len) != jf_get32(eh + 4)) {
                snprintf(err, errlen, "%s at %llu: checksum mismatch (damaged)", path, (unsigned long long) off);
                rc = -1;
                break;
            }
            (*entries)++;
            if (fn && (rc = fn(arg, off, eh + 8, len)) != 0)
                break;
            off += 8 + (uint64_t) len;
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
        jf_put32(hdr + 4, FINDEX_STORE_VERSION);
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

/* A run's tier: 0 below the merge unit, then one more for each fourfold. */
static unsigned s_tier(uint64_t count)
{
    unsigned t = 0;
    for (uint64_t c = count; c >= s_merge_unit; c /= S_TIER_RUNS)
        t++;
    return t;
}

/* How many of base's runs (newest first) the new top run of added deposits takes in: while the newest
 * runs left hold, with the one being built, S_TIER_RUNS runs of its tier or lower, they are merged into
 * it (and what it became is looked at again, one tier up). So each tier keeps fewer than S_TIER_RUNS
 * runs — a few dozen runs at most for any history — and a deposit is rewritten once per tier it climbs
 * (log4 of the history), not at every snapshot as when each snapshot rewrote the whole index. */
static size_t s_merge_depth(const findex_t *base, uint64_t added)
{
    size_t k = 0, n = base ? base->nruns : 0;
    uint64_t acc = added;
    for (;;) {
        unsigned t = s_tier(acc);
        size_t j = k;
        uint64_t sum = 0;
        while (j < n && s_tier(base->runs[j]->count) <= t)
            sum += base->runs[j++]->count;
        if (j - k + 1 < S_TIER_RUNS)
            return k;
        acc += sum;
        k = j;
    }
}

/* The runs a merge reads: the added deposits (sorted, in memory) and base's k newest runs. */
typedef struct {
    const findex_writer_t *w;
    size_t k;
    const uint64_t *drops;       /* sorted: left out of the merge */
    size_t ndrops;
    uint8_t *hit;                /* per drop: found in a merged run (NULL: not recorded) */
} s_merge_t;

static int s_merge_drops(const s_merge_t *m, uint64_t loc)
{
    if (!m->ndrops)
        return 0;
    const uint64_t *d = bsearch(&loc, m->drops, m->ndrops, sizeof *m->drops, s_u64_cmp);
    if (d && m->hit)
        m->hit[d - m->drops] = 1;
    return d != NULL;
}

/* Writes one array of the new top run to o (o NULL: only records which drops hit): the added ones
 * merged in cmp's order with base's k newest runs' (each read through in order, s_in_t, so a merge of
 * ten million does not bring them into kasa's memory), less the dropped. Elements are u64 fields, the
 * loc last. *written: how many. 0, or -1 (a run could not be read, or no memory). */
static int s_merge(s_out_t *o, const s_merge_t *m, int logins, uint64_t *written)
{
    const findex_writer_t *w = m->w;
    size_t size = logins ? sizeof(findex_login_t) : sizeof(findex_key_t), fields = size / 8;
    int (*cmp)(const void *, const void *) = logins ? s_login_cmp : s_key_cmp;
    const uint8_t *add = logins ? (const uint8_t *) w->logins : (const uint8_t *) w->keys;
    s_in_t *in = m->k ? calloc(m->k, sizeof *in) : NULL;
    uint64_t (*cur)[3] = m->k ? calloc(m->k, sizeof *cur) : NULL, *left = m->k ? calloc(m->k, 8) : NULL;
    int rc = m->k && (!in || !cur || !left) ? -1 : 0;
    for (size_t r = 0; rc == 0 && r < m->k; r++) {
        const s_run_t *x = w->base->runs[r];
        s_in_open(&in[r], x, logins ? x->logins_off : x->keys_off, x->count * size);
        if ((left[r] = x->count))
            s_in_get(&in[r], cur[r], size);
    }
    size_t j = 0;
    *written = 0;
    while (rc == 0) {
        size_t best = SIZE_MAX;   /* SIZE_MAX - 1: the added array's */
        const void *e = NULL;
        if (j < w->n)
            best = SIZE_MAX - 1, e = add + j * size;
        for (size_t r = 0; r < m->k; r++)
            if (left[r] && (!e || cmp(cur[r], e) < 0))
                best = r, e = cur[r];
        if (!e)
            break;
        uint64_t el[3];
        memcpy(el, e, size);
        if (best == SIZE_MAX - 1) {
            j++;
        } else {
            if (--left[best])
                s_in_get(&in[best], cur[best], size);
            if (in[best].failed)
                rc = -1;
        }
        if (s_merge_drops(m, el[fields - 1]))
            continue;
        if (o)
            s_out(o, el, size);   /* u64 fields, little-endian as they lie (findex.h) */
        (*written)++;
    }
    for (size_t r = 0; in && r < m->k; r++)
        rc |= s_in_close(&in[r]);
    free(in);
    free(cur);
    free(left);
    return rc;
}

/* The LSNs of the runs the index whose top is DIR/finished/NNNN.idx (lsn) stands on, itself first,
 * read from its header (not checked whole: what to keep, not what to trust). 0 with *runs (caller
 * frees) and *n, or -1. */
static int s_manifest(const char *dir, uint64_t lsn, uint64_t **runs, size_t *n)
{
    char path[600];
    s_path(path, sizeof path, dir, lsn, "idx");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t hdr[FINDEX_INDEX_HDR];
    s_hdr_t h;
    *runs = NULL;
    *n = 0;
    if (fd < 0 || fstat(fd, &st) != 0 || s_pread_fd(fd, hdr, sizeof hdr, 0) != 0 ||
        s_hdr_parse(hdr, (uint64_t) st.st_size, lsn, &h) != 0 || !(*runs = malloc((1 + h.nbelow) * 8ull))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (*runs)[(*n)++] = lsn;
    for (uint32_t i = 0; i < h.nbelow; i++) {
        s_below_t b;
        if (s_pread_fd(fd, &b, sizeof b, h.below_off + i * sizeof b) != 0) {
            close(fd);
            free(*runs);
            *runs = NULL;
            return -1;
        }
        (*runs)[(*n)++] = b.lsn;
    }
    close(fd);
    return 0;
}

/* Removes the index files (DIR/finished/NNNN.idx) older than top that no index in keep (n of them,
 * each with the runs it stands on) needs, and the .tmp files older than top. Nothing if any of the
 * kept cannot be read. */
static void s_prune(const char *dir, uint64_t top, const uint64_t *keep, size_t n)
{
    uint64_t *runs = NULL;
    size_t nruns = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t *r;
        size_t m;
        if (keep[i] && s_manifest(dir, keep[i], &r, &m) != 0) {
            free(runs);
            return;
        }
        if (!keep[i])
            continue;
        uint64_t *g = realloc(runs, (nruns + m) * sizeof *g);
        if (!g) {
            free(r);
            free(runs);
            return;
        }
        runs = g;
        memcpy(runs + nruns, r, m * sizeof *r);
        nruns += m;
        free(r);
    }
    char sub[600];
    snprintf(sub, sizeof sub, "%s/%s", dir, FINDEX_SUBDIR);
    DIR *d = opendir(sub);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        uint64_t lsn = strtoull(de->d_name, NULL, 10);
        int kept = 0;
        for (size_t i = 0; i < nruns && !kept; i++)
            kept = runs[i] == lsn;
        /* a .tmp is what a writer killed before its rename left (a merge's may be large): never named */
        int tmp = len == 28 && (strcmp(de->d_name + 20, ".idx.tmp") == 0 || strcmp(de->d_name + 20, ".dep.tmp") == 0);
        if (lsn < top && ((len == 24 && strcmp(de->d_name + 20, ".idx") == 0 && !kept) || tmp)) {
            char path[900];
            snprintf(path, sizeof path, "%s/%s", sub, de->d_name);
            fio_unlink(path);
        }
    }
    if (d)
        closedir(d);
    free(runs);
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
    if (w->n > 1) {
        qsort(w->keys, w->n, sizeof *w->keys, s_key_cmp);
        qsort(w->logins, w->n, sizeof *w->logins, s_login_cmp);
    }
    const findex_t *b = w->base;
    size_t nb = b ? b->nruns : 0, k = s_merge_depth(b, w->n);
    /* what the merged runs leave out: the new drops and theirs (a drop in a merged run is taken out
     * now if it names one of them; else, like a new drop naming a run not merged, it stays a drop) */
    size_t nd = w->ndrops;
    for (size_t r = 0; r < k; r++)
        nd += b->runs[r]->ndrops;
    uint64_t *drops = nd ? malloc(nd * sizeof *drops) : NULL;
    uint8_t *hit = nd ? calloc(nd, 1) : NULL;
    if (nd && (!drops || !hit) && rc == 0) {
        snprintf(err, errlen, "no memory");
        rc = -1;
    }
    size_t ndrops = 0;
    if (drops) {
        if (w->ndrops)
            memcpy(drops, w->drops, w->ndrops * sizeof *drops);
        ndrops = w->ndrops;
        for (size_t r = 0; r < k; r++) {
            if (b->runs[r]->ndrops)
                memcpy(drops + ndrops, b->runs[r]->drops, b->runs[r]->ndrops * sizeof *drops);
            ndrops += b->runs[r]->ndrops;
        }
        qsort(drops, ndrops, sizeof *drops, s_u64_cmp);
        size_t u = 0;
        for (size_t i = 0; i < ndrops; i++)   /* each once */
            if (!u || drops[u - 1] != drops[i])
                drops[u++] = drops[i];
        ndrops = u;
    }
    s_merge_t m = { w, k, drops, ndrops, hit };
    uint64_t total = 0, kept_drops = 0;
    if (rc == 0 && ndrops && s_merge(NULL, &m, 0, &total) != 0) {   /* which drops the merged runs hold */
        snprintf(err, errlen, "cannot read the index of snapshot %llu", (unsigned long long) b->lsn);
        rc = -1;
    } else if (rc == 0 && !ndrops) {
        total = w->n;
        for (size_t r = 0; r < k; r++)
            total += b->runs[r]->count;
    }
    m.hit = NULL;
    for (size_t i = 0; i < ndrops; i++)
        kept_drops += !hit[i];
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
        jf_put32(hdr + 40, (uint32_t) (nb - k));
        jf_put32(hdr + 44, (uint32_t) kept_drops);
        s_out(&o, hdr, sizeof hdr);
        for (uint32_t i = 0; b && i < b->nstores; i++)
            s_out_u64(&o, b->stores[i]);
        if (w->n)
            s_out_u64(&o, w->lsn);
        for (size_t r = k; r < nb; r++) {   /* the runs it stands on, newest first */
            s_out_u64(&o, b->runs[r]->lsn);
            s_out_u64(&o, b->runs[r]->count);
            s_out_u64(&o, b->runs[r]->crc);
        }
        for (size_t i = 0; i < ndrops; i++)
            if (!hit[i])
                s_out_u64(&o, drops[i]);
        uint64_t nk = 0, nl = 0;
        int in_failed = s_merge(&o, &m, 0, &nk) != 0;
        in_failed |= s_merge(&o, &m, 1, &nl) != 0;
        in_failed |= nk != total || nl != total;   /* both arrays hold each deposit once */
        uint8_t tail[8];
        *crc = s_out_crc(&o);
        jf_put32(tail, *crc);
        jf_put32(tail + 4, FINDEX_END_MAGIC);
        s_out(&o, tail, 8);
        if (in_failed) {
            snprintf(err, errlen, "cannot read the index of snapshot %llu", (unsigned long long) (b ? b->lsn : 0));
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
        /* the deposits of the whole index: every run's, less every drop (each names one deposit below) */
        uint64_t live = total - kept_drops;
        for (size_t r = k; r < nb; r++)
            live += b->runs[r]->count - b->runs[r]->ndrops;
        *count = live;
        /* The snapshots kept name this index, base's, or (this one's commit failing) base's base at
         * most: the runs those stand on stay; older runs no longer named go. Without a base (a start
         * from the whole journal) nothing is known: nothing is removed. */
        if (b) {
            uint64_t keep[3] = { w->lsn, b->lsn, b->runs[0]->base_lsn };
            s_prune(w->dir, w->lsn, keep, 3);
        }
    }
    free(drops);
    free(hit);
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
