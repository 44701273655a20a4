/* jformat.h — the journal's on-disk format and the one scanner that the writer (on open), the reader
 * and `kasa journal verify|stats|repair` all share. Internal to journal/ and tools/cmd_journal.c.
 *
 * Segment file NNNNNNNNNNNNNNNNNNNN.seg (20 digits: the LSN of its first record), written once,
 * appended to, never rewritten. It starts with a 32-byte header; format version 2 (written now):
 *     0  u32 magic 0x4E524A4B ("KJRN")   4  u32 format version (2)
 *     8  u64 first LSN                   16 u32 checksum of the record before this segment (0 if none)
 *     20 u32 restart: the previous checksum its first record names (== bytes 16..19 unless a break)
 *     24 u32 flags (bit 0 BREAK)          28 u32 CRC32C of bytes 0..27
 * Version 1 (still read): 20 u32 zero, 24 u32 CRC32C of bytes 0..23, 28 u32 zero; no restart, no flags.
 * Then records, each a 24-byte header and the payload, back to back:
 *     0  u32 payload length   4  u32 CRC32C(payload, bytes 0..3, bytes 8..23)
 *     8  u64 LSN              16 u32 the previous record's checksum (the chain)
 *     20 u32 version 2: the record's index in its group commit (0 = the first record of a batch;
 *        bit 31 zero); version 1: zero
 * All integers little-endian. The checksum covers the payload first, so an appender can checksum
 * its payload before it takes the journal's lock and only extends it by 20 bytes under the lock.
 *
 * Pre-sized segments. The writer keeps zero bytes written ahead of its records (journal.c), so that
 * an fdatasync finds the file's size and blocks already on disk and has only the data to write.
 * The data of a segment ends where a record should start and either the file ends or every byte
 * from there to the end of the file is zero (no valid record is all zeros: its checksum would not
 * match). So a segment is [header][records][zeros, possibly none]. Anything else after the last
 * whole record — a record with a bad checksum, a header partly zeros, zeros followed by non-zero
 * bytes — is damage and is judged as below (torn tail or corruption), as before. Every reader
 * follows this rule through jf_check_record (JF_REC_END). The writer writes zeros only up to
 * segment_bytes and rotates once past it, so a segment it rotated away from has none; the segment
 * open at a crash or a clean close keeps them (at most about 1 MiB; they are never cut off: readers
 * map the live segment, and a file shrinking under a mapping faults the reader). After a crash the
 * writer appends on top of them; after a clean close it starts the next segment, and the zeros stay
 * in the middle of the journal, where every reader steps over them to the next segment (whose header
 * still chains to the last record before them, so records lost there are still detected). Older
 * segments (no zeros) read as before. An older kasa reads zeros at the end of the last segment as a
 * torn tail and cuts them (nothing lost) but refuses zeros in an earlier segment as corruption.
 *
 * A BREAK segment is one that `kasa journal repair` wrote after quarantining unreadable bytes: its
 * header still names the checksum of the last readable record before the damage (bytes 16..19), so the
 * chain up to the break is checked; its first LSN may skip the LSNs that were lost, and its records
 * chain on from `restart` (what its first record names). Every break is listed by the scanner, so
 * `verify` explains it; the quarantine directory holds the bytes and a report.
 *
 * Torn tail versus corruption (decided in one place, jf_tail_is_torn):
 *   The writer writes each group commit (batch) with one write(2) after the last record of the last segment,
 *   fdatasyncs, and only then acknowledges its records and writes the next batch. So only the last
 *   batch can be partly on disk, in any pattern of pages: a prefix, zeros where the size reached the
 *   disk and the data did not, or a later page without an earlier one. Every record names its index
 *   in its batch, so a record read after the damage tells where its batch began: if no readable
 *   record after the damage began a batch after the damaged record (LSN - index > the damaged LSN),
 *   the damage lies in the last batch, which was never acknowledged: a torn tail, which open cuts back
 *   to the last whole record. A readable record of a later batch proves the damaged batch had been
 *   made durable and acknowledged: corruption, and open refuses and names `kasa journal repair DIR`.
 *   So is damage in an earlier segment, a bad segment header, a gap in LSNs or a broken chain. In a
 *   version-1 segment (no batch indices) any readable record after the damage makes it corruption.
 *   Damage inside the last batch when nothing followed it is indistinguishable from a torn write
 *   and is cut as one: only a later write can prove that batch was acknowledged. A clean close makes
 *   that proof (it starts the next, empty segment), so after a clean shutdown every record is
 *   provably acknowledged; after a crash the last batch alone keeps the torn-write benefit of the doubt. */
#ifndef KASA_JOURNAL_JFORMAT_H
#define KASA_JOURNAL_JFORMAT_H

#include <stddef.h>
#include <stdint.h>

#define JF_MAGIC 0x4E524A4Bu
#define JF_VERSION 2u           /* the format this kasa writes; it reads 1 and 2 */
#define JF_SEG_BREAK 1u         /* segment flag: written by repair after quarantined bytes */
#define JF_BATCH_INDEX_MAX 0x7fffffffu
#define JF_SEG_HDR 32u
#define JF_REC_HDR 24u
#define JF_NAME_MAX 32
#define JF_LOCK_NAME "LOCK"

/* CRC32C (Castagnoli), zlib-style: pass 0 to start, the previous result to continue. SSE4.2 when
 * the CPU has it, a table otherwise. */
uint32_t jf_crc32c(uint32_t crc, const void *buf, size_t len);
/* The table implementation alone, same contract (for tests on a CPU that has SSE4.2). */
uint32_t jf_crc32c_sw(uint32_t crc, const void *buf, size_t len);

static inline void jf_put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t) (v >> (8 * i)); }
static inline void jf_put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t) (v >> (8 * i)); }
static inline uint32_t jf_get32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static inline uint64_t jf_get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

/* A segment header, as read (jf_check_seg_header) or to write (jf_seg_header). */
typedef struct {
    uint32_t version;          /* 1 or 2 */
    uint64_t first_lsn;
    uint32_t prev_crc;         /* checksum of the record before this segment (the chain up to here) */
    uint32_t restart_crc;      /* what this segment's first record names as previous (== prev_crc unless a break) */
    uint32_t flags;            /* JF_SEG_BREAK */
} jf_seg_hdr_t;

/* Writes a version-2 segment header into hdr[JF_SEG_HDR]. */
void jf_seg_header(uint8_t *hdr, const jf_seg_hdr_t *h);

/* Fills a record header in hdr[JF_REC_HDR] and returns the record's checksum; payload_crc is
 * jf_crc32c(0, payload, len); batch_index is the record's index in its group commit (capped). */
uint32_t jf_rec_header(uint8_t *hdr, uint64_t lsn, uint32_t prev_crc, uint32_t payload_crc, uint32_t len,
                       uint32_t batch_index);

/* The segment file name for first_lsn (20 digits + ".seg") into name[JF_NAME_MAX]. */
void jf_seg_name(char *name, uint64_t first_lsn);

typedef struct {
    uint64_t first_lsn;        /* from the file name */
    uint64_t size;             /* bytes, when listed */
    uint64_t used;             /* once scanned whole: where its data ends (the rest, if any, zeros) */
    uint32_t version;          /* format version of its header, once scanned (0: not read) */
    int archived;              /* jf_list_all: it lies in DIR/archive (retired), not in DIR */
    char name[JF_NAME_MAX];
} jf_seg_t;

/* Lists the segments of dir in LSN order (*segs malloc'd, caller frees). Other files are ignored.
 * 0, or -1 with a reason (dir unreadable). A missing dir is an empty list. */
int jf_list_segments(const char *dir, jf_seg_t **segs, size_t *n, char *err, size_t errlen);

/* Retired segments: a journal's segments wholly covered by a snapshot move to DIR/archive
 * (journal_archive, journal/archive.c); kasa never deletes them. Readers see DIR/archive and DIR as
 * one journal. */
#define JF_ARCHIVE_SUBDIR "archive"

/* Lists the segments of dir/archive and dir together, in LSN order, each marked archived or not
 * (a segment met in both, being moved while listed, counts once, as archived). Same contract as
 * jf_list_segments. */
int jf_list_all(const char *dir, jf_seg_t **segs, size_t *n, char *err, size_t errlen);
/* The path of seg of journal dir (in dir/archive if archived) into out[outlen]. */
void jf_seg_path(const char *dir, const jf_seg_t *seg, char *out, size_t outlen);

/* Checks a segment header (version 1 or 2) against its name and fills *h. 0, or -1 with a reason. */
int jf_check_seg_header(const uint8_t *base, uint64_t size, uint64_t name_lsn, jf_seg_hdr_t *h,
                        char *why, size_t whylen);

/* Checks how segment h continues a chain that stands at expect_lsn / expect_prev (expect_lsn 0: it
 * is the first segment, anything goes). 0 and sets *expect_lsn / *expect_prev for its first record
 * (for a BREAK segment *lost_from.. first_lsn - 1 are the LSNs the break skips; otherwise *lost_from
 * == first_lsn), or -1 with a reason (a segment missing or misplaced, a broken chain). */
int jf_seg_continues(const jf_seg_hdr_t *h, uint64_t *expect_lsn, uint32_t *expect_prev, uint64_t *lost_from,
                     char *why, size_t whylen);

/* 1 if every byte of base[off..size) is zero (also when off == size). */
int jf_zeros_to_end(const uint8_t *base, uint64_t size, uint64_t off);

typedef enum {
    JF_REC_OK,     /* a whole, valid record that continues the chain                      */
    JF_REC_END,    /* off is the end of the data: the end of the file, or zeros to its end */
    JF_REC_SHORT,  /* the bytes end inside the record's header or payload                 */
    JF_REC_BAD,    /* checksum, length, LSN or chain wrong                                 */
} jf_rec_status_t;

typedef struct {
    uint64_t lsn;
    uint32_t crc;
    uint32_t len;
    uint32_t batch_index;      /* version 2: its index in its group commit; version 1: 0 */
    uint32_t prev;             /* the previous checksum it names */
    const uint8_t *payload;
} jf_rec_t;

/* Checks the record at off of the size bytes at base (a segment of format version), expecting LSN
 * expect_lsn chained to expect_prev. */
jf_rec_status_t jf_check_record(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version,
                                uint64_t expect_lsn, uint32_t expect_prev, jf_rec_t *rec, char *why, size_t whylen);

/* 1 if the bytes at off hold a record with a valid checksum and an LSN in min_lsn..max_lsn (and a
 * well-formed batch field for version), whatever it names as previous; *rec filled. The resync test
 * that the torn-tail decision and repair use to find readable records after damage. */
int jf_readable_at(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version, uint64_t min_lsn,
                   uint64_t max_lsn, jf_rec_t *rec);

/* The torn-tail decision (see the top): damage at off of the LAST segment (format version), where
 * the record with LSN expect_lsn should start. 1: a torn last group commit (cut it); 0: corruption. */
int jf_tail_is_torn(const uint8_t *base, uint64_t size, uint64_t off, uint32_t version, uint64_t expect_lsn);

typedef enum { JF_CLEAN, JF_TORN, JF_CORRUPT } jf_state_t;

/* A break a repair left (a BREAK segment): LSNs lost_from..lost_to (none if lost_from > lost_to). */
typedef struct {
    char segment[JF_NAME_MAX];   /* the BREAK segment, which starts after the quarantined bytes */
    uint64_t lost_from, lost_to;
} jf_break_t;
#define JF_MAX_BREAKS 16

typedef struct {
    jf_state_t state;
    jf_seg_t *segs;            /* every segment, LSN order (owned; jf_scan_free) */
    size_t nsegs;
    uint64_t records;          /* whole valid records before any damage */
    uint64_t bytes;            /* total bytes of every segment file */
    uint64_t first_lsn, last_lsn;   /* of the valid records (0, 0 if none) */
    uint32_t last_crc;         /* checksum of the last valid record (or the chain start) */
    uint64_t next_lsn;         /* the LSN the next record must have */
    /* when state != JF_CLEAN: where the damage starts */
    size_t bad_seg;            /* index into segs */
    uint64_t bad_offset;       /* byte offset in that segment (0 for a bad/missing header) */
    uint64_t bad_bytes;        /* bytes from bad_offset to the end of that segment */
    char reason[160];
    /* breaks left by earlier repairs, in order (the first JF_MAX_BREAKS of nbreaks) */
    size_t nbreaks;
    jf_break_t breaks[JF_MAX_BREAKS];
} jf_scan_t;

/* Called for each valid record; return non-zero to stop the scan early (the result is then partial). */
typedef int (jf_record_fn)(void *arg, const jf_rec_t *rec, const char *segment, uint64_t offset);

/* Scans every segment of dir, checking every checksum, LSN and the chain across segments, and
 * classifies the first damage (see the comment at the top). fn may be NULL.
 * 0 with *out filled (free with jf_scan_free), or -1 with a reason (an I/O error, not damage). */
int jf_scan(const char *dir, jf_scan_t *out, jf_record_fn *fn, void *arg, char *err, size_t errlen);
void jf_scan_free(jf_scan_t *scan);

/* Takes the journal's lock (DIR/LOCK, flock exclusive; a holder is waited for up to
 * JF_LOCK_WAIT_MS) and writes our pid in it. Returns the lock's fd, or -1 with "journal DIR is in use
 * by another process (pid N)" or an I/O reason. */
#define JF_LOCK_WAIT_MS 2000
int jf_lock(const char *dir, char *err, size_t errlen);

/* Maps a whole file read-only. *base is NULL for an empty file. 0, or -1 with a reason. */
int jf_map(const char *path, const uint8_t **base, uint64_t *size, char *err, size_t errlen);
void jf_unmap(const uint8_t *base, uint64_t size);

#endif
