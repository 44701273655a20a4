/* reader.c — reads a journal from any LSN, across segments, while it is closed or being written.
 *
 * Each segment is mapped whole (mmap); records are checked (checksum, LSN, chain) as they are
 * returned. At the end of the data the reader looks again: a segment that grew is remapped, a next
 * segment that appeared is entered. Damage in the last group commit of the last segment is the end
 * of the journal for now (a batch still being written, or a torn tail that open will cut); any other
 * damage is an error naming the segment and offset (see jformat.h, jf_tail_is_torn). A BREAK segment
 * left by a repair is entered like any other: the LSNs it skips are simply not there.
 * The segments a snapshot retired to DIR/archive are read as part of the journal (jf_list_all).
 * Readers take no lock. A segment only ever grows while kasa runs; the two things that shorten one,
 * cutting a torn tail when the journal is opened and `kasa journal repair`, happen before a server
 * starts writing, so a reader should not be left running across them.
 * A reader may also be opened over one segment's bytes held in memory (journal_reader_open_bytes):
 * the same checks, with no directory, no file and no growth. */
#include "journal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/jformat.h"

struct journal_reader_t {
    char *dir;
    uint64_t from_lsn;
    int have_seg;
    jf_seg_t seg;                /* the current segment */
    uint32_t version;            /* its format version */
    int fd;
    const uint8_t *base;
    uint64_t size;
    uint64_t off;
    uint64_t expect_lsn;         /* 0 until the first segment is entered */
    uint32_t prev;
    int failed;
    const uint8_t *mem;          /* the segment's bytes, for a reader over memory (else NULL) */
    uint64_t mem_len;
    uint64_t mem_first_lsn;
    char err[400];
};

static void s_unmap(journal_reader_t *self)
{
    if (!self->mem)
        jf_unmap(self->base, self->size);
    self->base = NULL;
    self->size = 0;
    if (self->fd >= 0)
        fio_close(self->fd);
    self->fd = -1;
    self->have_seg = 0;
}

static int s_error(journal_reader_t *self, uint64_t off, const char *why)
{
    snprintf(self->err, sizeof self->err, "journal %s: segment %s offset %" PRIu64 ": %s", self->dir,
             self->seg.name, off, why);
    self->failed = 1;
    return -1;
}

/* Remaps the current segment if the file grew. 1 if it grew, 0 if not, -1 on an I/O error. */
static int s_refresh(journal_reader_t *self)
{
    if (self->mem)
        return 0;
    struct stat st;
    if (fstat(self->fd, &st) != 0) {
        snprintf(self->err, sizeof self->err, "journal %s: cannot stat %s: %s", self->dir, self->seg.name,
                 strerror(errno));
        self->failed = 1;
        return -1;
    }
    if ((uint64_t) st.st_size <= self->size)
        return 0;
    void *m = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, self->fd, 0);
    if (m == MAP_FAILED) {
        snprintf(self->err, sizeof self->err, "journal %s: cannot map %s: %s", self->dir, self->seg.name,
                 strerror(errno));
        self->failed = 1;
        return -1;
    }
    madvise(m, (size_t) st.st_size, MADV_SEQUENTIAL);
    jf_unmap(self->base, self->size);
    self->base = m;
    self->size = (uint64_t) st.st_size;
    return 1;
}

/* Enters segment seg: maps it and checks its header against where the chain stands. 0 or -1. */
static int s_enter(journal_reader_t *self, const jf_seg_t *seg)
{
    s_unmap(self);
    self->seg = *seg;
    self->have_seg = 1;
    char path[4200], why[200];
    if (self->mem) {
        self->base = self->mem;
        self->size = self->mem_len;
    } else {
        jf_seg_path(self->dir, seg, path, sizeof path);
        self->fd = fio_open(path, O_RDONLY, 0);
        if (self->fd < 0 && errno == ENOENT && !seg->archived) {
            self->seg.archived = 1;   /* retired since it was listed */
            jf_seg_path(self->dir, &self->seg, path, sizeof path);
            self->fd = fio_open(path, O_RDONLY, 0);
        }
        if (self->fd < 0)
            return s_error(self, 0, strerror(errno));
        if (s_refresh(self) < 0)
            return -1;
    }
    jf_seg_hdr_t hdr;
    uint64_t lost_from;
    if (jf_check_seg_header(self->base, self->size, seg->first_lsn, &hdr, why, sizeof why) != 0 ||
        jf_seg_continues(&hdr, &self->expect_lsn, &self->prev, &lost_from, why, sizeof why) != 0)
        return s_error(self, 0, why);
    self->version = hdr.version;
    self->off = JF_SEG_HDR;
    return 0;
}

/* Finds the segment after the current one. 1 with *next set, 0 if there is none, -1 on an error. */
static int s_next_segment(journal_reader_t *self, jf_seg_t *next)
{
    if (self->mem) {
        if (self->have_seg)
            return 0;
        memset(next, 0, sizeof *next);
        next->first_lsn = self->mem_first_lsn;
        next->size = self->mem_len;
        jf_seg_name(next->name, self->mem_first_lsn);
        return 1;
    }
    jf_seg_t *segs;
    size_t n;
    if (jf_list_all(self->dir, &segs, &n, self->err, sizeof self->err) != 0) {
        self->failed = 1;
        return -1;
    }
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        if (!self->have_seg ? segs[i].first_lsn <= (self->from_lsn ? self->from_lsn : 1) || i == 0
                            : segs[i].first_lsn > self->seg.first_lsn) {
            *next = segs[i];
            found = 1;
            /* before the first segment is entered: keep the last one that starts at or before from_lsn */
            while (!self->have_seg && i + 1 < n && segs[i + 1].first_lsn <= self->from_lsn)
                *next = segs[++i];
        }
    }
    free(segs);
    return found;
}

journal_reader_t *journal_reader_open(const char *dir, uint64_t from_lsn, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "journal %s: not a directory", dir);
        return NULL;
    }
    journal_reader_t *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup(dir))) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fd = -1;
    self->from_lsn = from_lsn;
    return self;
}

journal_reader_t *journal_reader_open_bytes(const uint8_t *seg, size_t len, uint64_t first_lsn, char *err,
                                           size_t errlen)
{
    journal_reader_t *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup("(memory)"))) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fd = -1;
    self->mem = seg ? seg : (const uint8_t *) "";
    self->mem_len = seg ? len : 0;
    self->mem_first_lsn = first_lsn;
    return self;
}

/* Steps over the record at the reader's offset if it lies before from_lsn and its header is whole
 * and in sequence (length in bounds, the expected LSN, the chain's previous checksum): 1, or 0 to
 * check it in full instead. Its payload's checksum is not computed: a reader asked for the records
 * from from_lsn on (a start or a snapshot after a snapshot) never returns it, and the first record
 * it does return is checked in full, chain included, against the header stepped over last. A scan
 * of a 64 MiB segment to reach its end no longer checksums every byte before. */
static int s_step_over(journal_reader_t *self)
{
    if (!self->expect_lsn || self->expect_lsn >= self->from_lsn || self->size - self->off < JF_REC_HDR)
        return 0;
    const uint8_t *h = self->base + self->off;
    uint32_t len = jf_get32(h);
    if (len > JOURNAL_MAX_PAYLOAD || self->size - self->off - JF_REC_HDR < len ||
        jf_get64(h + 8) != self->expect_lsn || jf_get32(h + 16) != self->prev)
        return 0;
    self->off += JF_REC_HDR + len;
    self->expect_lsn++;
    self->prev = jf_get32(h + 4);
    return 1;
}

int journal_reader_next(journal_reader_t *self, journal_entry_t *entry)
{
    if (!self || self->failed)
        return -1;
    for (;;) {
        if (!self->have_seg) {
            jf_seg_t first;
            int rc = s_next_segment(self, &first);
            if (rc <= 0)
                return rc;
            if (s_enter(self, &first) != 0)
                return -1;
        }
        if (s_step_over(self))
            continue;
        jf_rec_t rec;
        char why[200];
        jf_rec_status_t st = jf_check_record(self->base, self->size, self->off, self->version, self->expect_lsn,
                                             self->prev, &rec, why, sizeof why);
        if (st == JF_REC_OK) {
            uint64_t at = self->off;
            self->off += JF_REC_HDR + rec.len;
            self->expect_lsn++;
            self->prev = rec.crc;
            if (rec.lsn < self->from_lsn)
                continue;
            entry->lsn = rec.lsn;
            entry->payload = rec.payload;
            entry->len = rec.len;
            entry->segment = self->seg.name;
            entry->offset = at;
            entry->crc = rec.crc;
            entry->prev_crc = rec.prev;
            return 1;
        }
        int grew = s_refresh(self);
        if (grew < 0)
            return -1;
        if (grew)
            continue;
        jf_seg_t next;
        int has_next = s_next_segment(self, &next);
        if (has_next < 0)
            return -1;
        if (has_next) {
            /* the writer finishes a segment before it creates the next: look once more for growth */
            grew = s_refresh(self);
            if (grew < 0)
                return -1;
            if (grew)
                continue;
            if (st != JF_REC_END)
                return s_error(self, self->off, why);
            if (s_enter(self, &next) != 0)
                return -1;
            continue;
        }
        if (st == JF_REC_END)
            return 0;
        if (!jf_tail_is_torn(self->base, self->size, self->off, self->version, self->expect_lsn))
            return s_error(self, self->off, why);
        return 0;   /* an unfinished or torn last group commit: the end, for now */
    }
}

const char *journal_reader_error(const journal_reader_t *self)
{
    return self && self->err[0] ? self->err : "no error";
}

void journal_reader_destroy(journal_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_reader_t *self = *self_p;
    *self_p = NULL;
    s_unmap(self);
    free(self->dir);
    free(self);
}
