/* jformat.h — the journal's on-disk format and the one scanner that the writer (on open), the reader
 * and `kasa journal verify|stats|repair` all share. Internal to journal/ and tools/cmd_journal.c.
 *
 * Segment file NNNNNNNNNNNNNNNNNNNN.seg (20 digits: the LSN of its first record), written once,
 * appended to, never rewritten. It starts with a 32-byte header:
 *     0  u32 magic 0x4E524A4B ("KJRN")   4  u32 format version (1)
 *     8  u64 first LSN                   16 u32 checksum of the record before this segment (0 if none)
 *     20 u32 zero                        24 u32 CRC32C of bytes 0..23     28 u32 zero
 * then records, each a 24-byte header and the payload, back to back:
 *     0  u32 payload length   4  u32 CRC32C(payload, bytes 0..3, bytes 8..23)
 *     8  u64 LSN              16 u32 the previous record's checksum (the chain)   20 u32 zero
 * All integers little-endian. The checksum covers the payload first, so an appender can checksum
 * its payload before it takes the journal's lock and only extends it by 20 bytes under the lock.
 *
 * Torn tail versus corruption (decided in one place, jf_classify):
 *   The writer appends each batch with one write(2) at the end of the last segment and only then
 *   fdatasyncs. A crash can leave any prefix of that write, possibly followed by zeros (the size
 *   reached the disk, the data did not) or garbage. So: damage in the LAST segment after which no
 *   valid record follows (no offset further on holds a record with a matching checksum and a later
 *   LSN) is a torn tail: open cuts it back to the last whole record. Any other damage — in an earlier
 *   segment, a bad segment header, a gap in LSNs, a broken chain, or a bad record with a valid record
 *   after it — is corruption: open refuses and names `kasa journal repair DIR`. A bit flipped inside
 *   the last record itself is indistinguishable from a torn write and is therefore cut as a torn tail. */
#ifndef KASA_JOURNAL_JFORMAT_H
#define KASA_JOURNAL_JFORMAT_H

#include <stddef.h>
#include <stdint.h>

#define JF_MAGIC 0x4E524A4Bu
#define JF_VERSION 1u
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

/* Writes a segment header into hdr[JF_SEG_HDR]. */
void jf_seg_header(uint8_t *hdr, uint64_t first_lsn, uint32_t prev_crc);

/* Fills a record header in hdr[JF_REC_HDR] and returns the record's checksum; payload_crc is
 * jf_crc32c(0, payload, len). */
uint32_t jf_rec_header(uint8_t *hdr, uint64_t lsn, uint32_t prev_crc, uint32_t payload_crc, uint32_t len);

/* The segment file name for first_lsn (20 digits + ".seg") into name[JF_NAME_MAX]. */
void jf_seg_name(char *name, uint64_t first_lsn);

typedef struct {
    uint64_t first_lsn;        /* from the file name */
    uint64_t size;             /* bytes, when listed */
    char name[JF_NAME_MAX];
} jf_seg_t;

/* Lists the segments of dir in LSN order (*segs malloc'd, caller frees). Other files are ignored.
 * 0, or -1 with a reason (dir unreadable). A missing dir is an empty list. */
int jf_list_segments(const char *dir, jf_seg_t **segs, size_t *n, char *err, size_t errlen);

/* Checks a segment header against its name. 0, or -1 with a reason. */
int jf_check_seg_header(const uint8_t *base, uint64_t size, uint64_t name_lsn, uint32_t *prev_crc,
                        char *why, size_t whylen);

typedef enum {
    JF_REC_OK,     /* a whole, valid record that continues the chain                      */
    JF_REC_END,    /* off is exactly the end of the data                                  */
    JF_REC_SHORT,  /* the bytes end inside the record's header or payload                 */
    JF_REC_BAD,    /* checksum, length, LSN or chain wrong                                 */
} jf_rec_status_t;

typedef struct {
    uint64_t lsn;
    uint32_t crc;
    uint32_t len;
    const uint8_t *payload;
} jf_rec_t;

/* Checks the record at off of the size bytes at base, expecting LSN expect_lsn chained to expect_prev. */
jf_rec_status_t jf_check_record(const uint8_t *base, uint64_t size, uint64_t off, uint64_t expect_lsn,
                                uint32_t expect_prev, jf_rec_t *rec, char *why, size_t whylen);

/* 1 if some offset after off holds a record with a valid checksum and an LSN after last_lsn. */
int jf_valid_after(const uint8_t *base, uint64_t size, uint64_t off, uint64_t last_lsn);

typedef enum { JF_CLEAN, JF_TORN, JF_CORRUPT } jf_state_t;

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
} jf_scan_t;

/* Called for each valid record; return non-zero to stop the scan early (the result is then partial). */
typedef int (jf_record_fn)(void *arg, const jf_rec_t *rec, const char *segment, uint64_t offset);

/* Scans every segment of dir, checking every checksum, LSN and the chain across segments, and
 * classifies the first damage (see the comment at the top). fn may be NULL.
 * 0 with *out filled (free with jf_scan_free), or -1 with a reason (an I/O error, not damage). */
int jf_scan(const char *dir, jf_scan_t *out, jf_record_fn *fn, void *arg, char *err, size_t errlen);
void jf_scan_free(jf_scan_t *scan);

/* Takes the journal's lock (DIR/LOCK, flock exclusive, non-blocking) and writes our pid in it.
 * Returns the lock's fd, or -1 with "journal DIR is in use by another process (pid N)" or an I/O reason. */
int jf_lock(const char *dir, char *err, size_t errlen);

/* Maps a whole file read-only. *base is NULL for an empty file. 0, or -1 with a reason. */
int jf_map(const char *path, const uint8_t **base, uint64_t *size, char *err, size_t errlen);
void jf_unmap(const uint8_t *base, uint64_t size);

#endif
