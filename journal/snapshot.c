/* snapshot.c — snapshot files: write (tmp, fsync, rename, directory fsync), list, open and check;
 * and the field encoder sections are written with. See snapshot.h. */
#include "journal/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journal/fio.h"
#include "journal/jformat.h"

#define S_WBUF (64u << 10)   /* bytes gathered before one write(2): short, as findex.c's S_CHUNK says why */
#define S_WRITEBACK (1u << 20)   /* bytes written between two fio_writeback calls */
#define S_MAX_SECTIONS 64

struct snapshot_writer_t {
    char base[4096];          /* DIR, the journal */
    char dir[4200];           /* DIR/snapshot */
    char path[4300], tmp[4400];
    int fd;
    int failed;
    uint32_t crc;             /* of every byte written so far */
    uint32_t nsections;
    uint8_t *buf;
    size_t buf_len;
    uint64_t written, synced;   /* bytes written to the file; of them, sent to the disk (fio_writeback) */
};

typedef struct {
    char name[SNAPSHOT_NAME_MAX];
    const uint8_t *content;
    uint64_t len;
} s_section_t;

struct snapshot_t {
    const uint8_t *base;
    uint64_t size;
    uint64_t lsn;
    uint32_t chain_crc;
    int64_t time_ms;
    size_t nsections;
    s_section_t sections[S_MAX_SECTIONS];
};

static void s_name(char *out, size_t cap, uint64_t lsn)
{
    snprintf(out, cap, "%020" PRIu64 ".snap", lsn);
}

/* 1 and *lsn if name is a snapshot file name ("<20 digits>.snap"). */
static int s_parse_name(const char *name, uint64_t *lsn)
{
    if (strlen(name) != 25 || strcmp(name + 20, ".snap") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t) (name[i] - '0');
    }
    *lsn = v;
    return 1;
}

/* ---- writing ---------------------------------------------------------------------------------- */

/* Writes the gathered bytes with one write; marks the writer failed on any error. 0 or -1. */
static int s_flush(snapshot_writer_t *w, char *err, size_t errlen)
{
    if (w->failed)
        return -1;
    if (!w->buf_len)
        return 0;
    ssize_t n = fio_write(w->fd, w->buf, w->buf_len);
    if (n < 0 || (size_t) n != w->buf_len) {
        snprintf(err, errlen, "snapshot %s: %s", w->tmp, n < 0 ? strerror(errno) : "short write (disk full?)");
        w->failed = 1;
        return -1;
    }
    w->buf_len = 0;
    w->written += (uint64_t) n;
    if (w->written - w->synced >= S_WRITEBACK) {   /* to the disk as it goes, not all at the fsync */
        fio_writeback(w->fd, (off_t) w->synced, (off_t) (w->written - w->synced));
        w->synced = w->written;
    }
    return 0;
}

static int s_emit(snapshot_writer_t *w, const void *data, uint64_t len, char *err, size_t errlen)
{
    const uint8_t *p = data;
    w->crc = jf_crc32c(w->crc, p, (size_t) len);
    while (len > 0) {
        if (w->buf_len == S_WBUF && s_flush(w, err, errlen) != 0)
            return -1;
        size_t take = S_WBUF - w->buf_len < len ? S_WBUF - w->buf_len : (size_t) len;
        memcpy(w->buf + w->buf_len, p, take);
        w->buf_len += take;
        p += take;
        len -= take;
    }
    return 0;
}

/* Creates dir (mode 0700) if missing and makes its entry durable in parent. 0 or -1 (errno). */
static int s_mkdir_durable(const char *dir, const char *parent)
{
    if (mkdir(dir, 0700) == 0)
        return fio_fsync_dir(parent);
    return errno == EEXIST ? 0 : -1;
}

snapshot_writer_t *snapshot_begin(const char *dir, uint64_t lsn, uint32_t chain_crc, int64_t time_ms, char *err,
                                  size_t errlen)
{
    snapshot_writer_t *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(S_WBUF))) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = -1;
    snprintf(w->base, sizeof w->base, "%s", dir);
    snprintf(w->dir, sizeof w->dir, "%s/%s", dir, SNAPSHOT_SUBDIR);
    char name[40];
    s_name(name, sizeof name, lsn);
    snprintf(w->path, sizeof w->path, "%s/%s", w->dir, name);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->path);
    if (s_mkdir_durable(w->dir, dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", w->dir, strerror(errno));
        free(w->buf);
        free(w);
        return NULL;
    }
    w->fd = fio_open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);   /* deposits are nobody else's */
    if (w->fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", w->tmp, strerror(errno));
        free(w->buf);
        free(w);
        return NULL;
    }
    uint8_t hdr[SNAPSHOT_HDR] = { 0 };
    jf_put32(hdr, SNAPSHOT_MAGIC);
    jf_put32(hdr + 4, SNAPSHOT_VERSION);
    jf_put64(hdr + 8, lsn);
    jf_put32(hdr + 16, chain_crc);
    jf_put64(hdr + 24, (uint64_t) time_ms);
    s_emit(w, hdr, sizeof hdr, err, errlen);
    return w;
}

int snapshot_put(snapshot_writer_t *w, const char *name, const void *content, uint64_t len, char *err, size_t errlen)
{
    if (!w || w->failed)
        return -1;
    size_t nlen = name ? strlen(name) : 0;
    if (nlen == 0 || nlen >= SNAPSHOT_NAME_MAX || w->nsections >= S_MAX_SECTIONS) {
        snprintf(err, errlen, "snapshot: bad section name or too many sections");
        w->failed = 1;
        return -1;
    }
    uint8_t hdr[SNAPSHOT_SEC_HDR] = { 0 };
    memcpy(hdr, name, nlen);
    jf_put64(hdr + 32, len);
    jf_put32(hdr + 40, jf_crc32c(0, content, (size_t) len));
    if (s_emit(w, hdr, sizeof hdr, err, errlen) != 0 || s_emit(w, content, len, err, errlen) != 0)
        return -1;
    w->nsections++;
    return 0;
}

/* Removes snapshots of dir beyond the newest SNAPSHOT_KEEP and .tmp leftovers (never keep_tmp). */
static void s_prune(const char *dir, const char *sdir, const char *keep_tmp)
{
    char path[4400], err[200];
    DIR *d = opendir(sdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        snprintf(path, sizeof path, "%s/%s", sdir, e->d_name);
        if (len == 29 && strcmp(e->d_name + 25, ".tmp") == 0 && strcmp(path, keep_tmp) != 0)
            fio_unlink(path);
    }
    if (d)
        closedir(d);
    uint64_t *lsns;
    size_t n;
    if (snapshot_list(dir, &lsns, &n, err, sizeof err) != 0)
        return;
    for (size_t i = SNAPSHOT_KEEP; i < n; i++) {   /* newest first */
        char name[40];
        s_name(name, sizeof name, lsns[i]);
        snprintf(path, sizeof path, "%s/%s", sdir, name);
        fio_unlink(path);
    }
    free(lsns);
}

int snapshot_commit(snapshot_writer_t **w_p, char *err, size_t errlen)
{
    snapshot_writer_t *w = w_p ? *w_p : NULL;
    if (!w)
        return -1;
    *w_p = NULL;
    const char *step = NULL;
    if (!w->failed) {
        uint8_t tr[SNAPSHOT_TRAILER] = { 0 };
        jf_put32(tr, SNAPSHOT_END_MAGIC);
        jf_put32(tr + 4, w->nsections);
        jf_put32(tr + 8, w->crc);
        if (s_emit(w, tr, sizeof tr, err, errlen) != 0 || s_flush(w, err, errlen) != 0)
            step = "";
    } else {
        step = "";
        snprintf(err, errlen, "snapshot %s: an earlier write failed", w->tmp);
    }
    if (!step)   /* the rest paced too: the fsync then carries only the file's size */
        fio_writeback(w->fd, (off_t) w->synced, (off_t) (w->written - w->synced));
    if (!step && fio_fsync(w->fd) != 0)
        step = "fsync";
    if (w->fd >= 0 && fio_close(w->fd) != 0 && !step)
        step = "close";
    w->fd = -1;
    if (!step && fio_rename(w->tmp, w->path) != 0)
        step = "rename";
    if (!step && fio_fsync_dir(w->dir) != 0)
        step = "fsync of the directory";
    if (step) {
        if (step[0])
            snprintf(err, errlen, "snapshot %s (%s): %s", w->path, step, strerror(errno));
        if (strcmp(step, "fsync of the directory") != 0)
            fio_unlink(w->tmp);
        free(w->buf);
        free(w);
        return -1;
    }
    s_prune(w->base, w->dir, w->tmp);
    free(w->buf);
    free(w);
    return 0;
}

void snapshot_abort(snapshot_writer_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    snapshot_writer_t *w = *w_p;
    *w_p = NULL;
    if (w->fd >= 0)
        fio_close(w->fd);
    fio_unlink(w->tmp);
    free(w->buf);
    free(w);
}

/* ---- reading ---------------------------------------------------------------------------------- */

int snapshot_list(const char *dir, uint64_t **lsns, size_t *n, char *err, size_t errlen)
{
    *lsns = NULL;
    *n = 0;
    char sdir[4200];
    snprintf(sdir, sizeof sdir, "%s/%s", dir, SNAPSHOT_SUBDIR);
    DIR *d = opendir(sdir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", sdir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t lsn;
        if (!s_parse_name(e->d_name, &lsn))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            uint64_t *g = realloc(*lsns, cap * sizeof *g);
            if (!g) {
                closedir(d);
                free(*lsns);
                *lsns = NULL;
                *n = 0;
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            *lsns = g;
        }
        (*lsns)[(*n)++] = lsn;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++)   /* newest first (a handful of files) */
        for (size_t j = i; j > 0 && (*lsns)[j - 1] < (*lsns)[j]; j--) {
            uint64_t t = (*lsns)[j];
            (*lsns)[j] = (*lsns)[j - 1];
            (*lsns)[j - 1] = t;
        }
    return 0;
}

snapshot_t *snapshot_open(const char *dir, uint64_t lsn, char *err, size_t errlen)
{
    char name[40], path[4300];
    s_name(name, sizeof name, lsn);
    snprintf(path, sizeof path, "%s/%s/%s", dir, SNAPSHOT_SUBDIR, name);
    snapshot_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (jf_map(path, &self->base, &self->size, err, errlen) != 0) {
        free(self);
        return NULL;
    }
    const uint8_t *b = self->base;
    uint64_t size = self->size;
    const char *why = NULL;
    if (size < SNAPSHOT_HDR + SNAPSHOT_TRAILER)
        why = "too short";
    else if (jf_get32(b) != SNAPSHOT_MAGIC)
        why = "not a snapshot (bad magic)";
    else if (jf_get32(b + 4) != SNAPSHOT_VERSION)
        why = "a snapshot format this kasa does not read";
    else if (jf_get64(b + 8) != lsn)
        why = "its LSN does not match its name";
    else if (jf_get32(b + size - SNAPSHOT_TRAILER) != SNAPSHOT_END_MAGIC || jf_get32(b + size - 4) != 0)
        why = "no trailer (cut short)";
    else if (jf_crc32c(0, b, (size_t) (size - SNAPSHOT_TRAILER)) != jf_get32(b + size - SNAPSHOT_TRAILER + 8))
        why = "checksum mismatch";
    self->lsn = lsn;
    self->chain_crc = jf_get32(b + 16);
    self->time_ms = (int64_t) jf_get64(b + 24);
    uint64_t off = SNAPSHOT_HDR, end = size - SNAPSHOT_TRAILER;
    uint32_t want = why ? 0 : jf_get32(b + end + 4);
    while (!why && off < end) {
        if (end - off < SNAPSHOT_SEC_HDR || self->nsections == S_MAX_SECTIONS) {
            why = "a section header runs past the end";
            break;
        }
        s_section_t *s = &self->sections[self->nsections];
        memcpy(s->name, b + off, SNAPSHOT_NAME_MAX);
        s->name[SNAPSHOT_NAME_MAX - 1] = '\0';
        s->len = jf_get64(b + off + 32);
        s->content = b + off + SNAPSHOT_SEC_HDR;
        if (s->len > end - off - SNAPSHOT_SEC_HDR)
            why = "a section runs past the end";
        else if (jf_crc32c(0, s->content, (size_t) s->len) != jf_get32(b + off + 40))
            why = "a section's checksum mismatch";
        off += SNAPSHOT_SEC_HDR + s->len;
        self->nsections++;
    }
    if (!why && self->nsections != want)
        why = "the trailer counts other sections";
    if (why) {
        snprintf(err, errlen, "snapshot %s: %s", path, why);
        snapshot_close(&self);
        return NULL;
    }
    return self;
}

void snapshot_close(snapshot_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jf_unmap((*self_p)->base, (*self_p)->size);
    free(*self_p);
    *self_p = NULL;
}

uint64_t snapshot_lsn(const snapshot_t *self) { return self->lsn; }
uint32_t snapshot_chain_crc(const snapshot_t *self) { return self->chain_crc; }
int64_t snapshot_time_ms(const snapshot_t *self) { return self->time_ms; }
uint64_t snapshot_bytes(const snapshot_t *self) { return self->size; }

int snapshot_section(const snapshot_t *self, const char *name, const uint8_t **content, uint64_t *len)
{
    for (size_t i = 0; i < self->nsections; i++)
        if (strcmp(self->sections[i].name, name) == 0) {
            *content = self->sections[i].content;
            *len = self->sections[i].len;
            return 0;
        }
    return -1;
}

const char *snapshot_section_name(const snapshot_t *self, size_t i)
{
    return i < self->nsections ? self->sections[i].name : NULL;
}

/* ---- the field encoder -------------------------------------------------------------------------- */

void snap_pk_save_init(snap_pk_t *p)
{
    memset(p, 0, sizeof *p);
}

void snap_pk_load_init(snap_pk_t *p, const uint8_t *content, size_t len)
{
    memset(p, 0, sizeof *p);
    p->buf = (uint8_t *) content;   /* never written in load mode */
    p->len = len;
    p->loading = 1;
}

void snap_pk_free(snap_pk_t *p)
{
    if (!p->loading)
        free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
}

/* Save: room for n more bytes (the pointer to them), or NULL (bad). Load: the next n bytes, or NULL. */
static uint8_t *s_take(snap_pk_t *p, size_t n)
{
    if (p->bad)
        return NULL;
    if (p->loading) {
        if (p->len - p->pos < n) {
            p->bad = 1;
            return NULL;
        }
        uint8_t *at = p->buf + p->pos;
        p->pos += n;
        return at;
    }
    if (p->cap - p->len < n) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap - p->len < n)
            cap *= 2;
        uint8_t *g = realloc(p->buf, cap);
        if (!g) {
            p->bad = 1;
            return NULL;
        }
        p->buf = g;
        p->cap = cap;
    }
    uint8_t *at = p->buf + p->len;
    p->len += n;
    return at;
}

void snap_pk_u64(snap_pk_t *p, uint64_t *v)
{
    uint8_t *at = s_take(p, 8);
    if (!at)
        return;
    if (p->loading)
        *v = jf_get64(at);
    else
        jf_put64(at, *v);
}

void snap_pk_u32(snap_pk_t *p, uint32_t *v)
{
    uint8_t *at = s_take(p, 4);
    if (!at)
        return;
    if (p->loading)
        *v = jf_get32(at);
    else
        jf_put32(at, *v);
}

void snap_pk_i64(snap_pk_t *p, int64_t *v)
{
    uint64_t u = (uint64_t) *v;
    snap_pk_u64(p, &u);
    *v = (int64_t) u;
}

void snap_pk_i32(snap_pk_t *p, int32_t *v)
{
    uint32_t u = (uint32_t) *v;
    snap_pk_u32(p, &u);
    *v = (int32_t) u;
}

void snap_pk_int(snap_pk_t *p, int *v)
{
    int32_t i = (int32_t) *v;
    snap_pk_i32(p, &i);
    *v = i;
}

void snap_pk_str(snap_pk_t *p, char *s, size_t cap)
{
    uint8_t *at = s_take(p, 1);
    if (!at)
        return;
    if (p->loading) {
        size_t n = *at == 0xff ? 0 : *at;
        if (*at == 0xff) {   /* a long string: its length follows as a u32 */
            uint32_t n32 = 0;
            snap_pk_u32(p, &n32);
            n = n32;
        }
        const uint8_t *src = p->bad ? NULL : s_take(p, n);
        if (!src || n >= cap) {
            p->bad = 1;
            if (cap)
                s[0] = '\0';
            return;
        }
        memcpy(s, src, n);
        s[n] = '\0';
        return;
    }
    size_t n = strnlen(s, cap ? cap - 1 : 0);
    if (n < 0xff) {
        *at = (uint8_t) n;
    } else {
        *at = 0xff;
        uint32_t n32 = (uint32_t) n;
        snap_pk_u32(p, &n32);
    }
    uint8_t *dst = s_take(p, n);
    if (dst)
        memcpy(dst, s, n);
}
