/* snapshot.h — checkpoints of what a replay of the journal rebuilds, so a start reads the newest
 * snapshot and only the journal after it.
 *
 * A snapshot is one file DIR/snapshot/NNNNNNNNNNNNNNNNNNNN.snap (20 digits: the LSN it covers, i.e.
 * every record up to and including that LSN is in it, none after). The journal never looks inside
 * a section: each is a named blob that its owner (actors/checkpoint.c) encodes and decodes.
 *     header 32 bytes:  0 u32 magic 0x504E534B ("KSNP")   4 u32 format version (1)
 *                       8 u64 LSN covered                 16 u32 checksum of the record at that LSN
 *                      20 u32 zero                         24 i64 time written (Unix ms)
 *     per section:      0 name[32] (NUL-padded)  32 u64 length  40 u32 CRC32C of the content
 *                      44 u32 zero, then the content
 *     trailer 16 bytes: 0 u32 magic 0x444E454B ("KEND")   4 u32 number of sections
 *                       8 u32 CRC32C of every byte before the trailer   12 u32 zero
 * All integers little-endian. A file whose trailer, checksums or name do not agree is damaged and
 * is skipped: the start falls back to the snapshot before it, or to the whole journal.
 *
 * Writing (snapshot_begin / snapshot_put / snapshot_commit) goes to NAME.snap.tmp, which is
 * fsynced, renamed into place and made durable by an fsync of the directory; then only the newest
 * SNAPSHOT_KEEP snapshots are kept. A crash at any point leaves the earlier snapshots whole and at
 * most a .tmp file, which the next commit removes. Every file operation goes through journal/fio.c,
 * so a test can fail any of them. */
#ifndef KASA_JOURNAL_SNAPSHOT_H
#define KASA_JOURNAL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_MAGIC 0x504E534Bu
#define SNAPSHOT_END_MAGIC 0x444E454Bu
#define SNAPSHOT_VERSION 1u
#define SNAPSHOT_HDR 32u
#define SNAPSHOT_SEC_HDR 48u
#define SNAPSHOT_TRAILER 16u
#define SNAPSHOT_NAME_MAX 32     /* a section name: at most 31 bytes */
#define SNAPSHOT_KEEP 2          /* snapshots kept: the newest and the one a damaged newest falls back to */
#define SNAPSHOT_SUBDIR "snapshot"

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct snapshot_writer_t snapshot_writer_t;

/* Starts the snapshot of journal dir covering lsn (chain_crc: the checksum of the record at lsn)
 * in DIR/snapshot/ (created if missing). NULL with a reason. */
snapshot_writer_t *snapshot_begin(const char *dir, uint64_t lsn, uint32_t chain_crc, int64_t time_ms, char *err,
                                  size_t errlen);
/* Appends section name (1..31 bytes) with len bytes of content. 0, or -1 with a reason (the writer
 * is then failed: snapshot_commit refuses). */
int snapshot_put(snapshot_writer_t *w, const char *name, const void *content, uint64_t len, char *err, size_t errlen);
/* Writes the trailer, fsyncs, renames into place, fsyncs the directory, then removes snapshots
 * beyond the newest SNAPSHOT_KEEP and leftover .tmp files. 0 once durable, or -1 with a reason (the
 * .tmp file removed; earlier snapshots untouched). Frees *w either way and sets it to NULL. */
int snapshot_commit(snapshot_writer_t **w, char *err, size_t errlen);
/* Abandons a snapshot being written (removes its .tmp file); frees, sets *w to NULL. Safe on NULL. */
void snapshot_abort(snapshot_writer_t **w);

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct snapshot_t snapshot_t;

/* The LSNs of the snapshot files in DIR/snapshot/, newest first (*lsns malloc'd, caller frees;
 * none: *n = 0). Damaged files are listed too: snapshot_open judges them. 0, or -1 with a reason. */
int snapshot_list(const char *dir, uint64_t **lsns, size_t *n, char *err, size_t errlen);

/* Maps and checks the snapshot of dir covering lsn: header, every section's checksum and the
 * trailer. The snapshot, or NULL with a reason (missing, damaged, of a newer format). */
snapshot_t *snapshot_open(const char *dir, uint64_t lsn, char *err, size_t errlen);
void snapshot_close(snapshot_t **self_p);

uint64_t snapshot_lsn(const snapshot_t *self);
uint32_t snapshot_chain_crc(const snapshot_t *self);
int64_t snapshot_time_ms(const snapshot_t *self);
uint64_t snapshot_bytes(const snapshot_t *self);
/* Section name's content: 0 and *content / *len (valid until snapshot_close), or -1 if absent. */
int snapshot_section(const snapshot_t *self, const char *name, const uint8_t **content, uint64_t *len);
/* The i-th section's name (NULL past the last). */
const char *snapshot_section_name(const snapshot_t *self, size_t i);

/* ---- encoding a section: one function serves both directions ----------------------------------- */

/* A section is encoded and decoded by the same code: a function that walks its fields calling
 * snap_pk_* on each; with a buffer in save mode it appends, in load mode it reads back into the same
 * fields. A value that does not fit its field (a string longer than its capacity, bytes past the
 * end) marks the buffer bad: the load fails as a whole. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;    /* save: bytes written, allocated; load: total bytes */
    size_t pos;         /* load: read position */
    int loading;
    int bad;            /* an overflow, no memory, or a value that does not fit */
} snap_pk_t;

/* A buffer to save into (empty), or to load from content (not copied). */
void snap_pk_save_init(snap_pk_t *p);
void snap_pk_load_init(snap_pk_t *p, const uint8_t *content, size_t len);
/* Frees a save buffer. */
void snap_pk_free(snap_pk_t *p);

void snap_pk_u64(snap_pk_t *p, uint64_t *v);
void snap_pk_i64(snap_pk_t *p, int64_t *v);
void snap_pk_u32(snap_pk_t *p, uint32_t *v);
void snap_pk_i32(snap_pk_t *p, int32_t *v);
void snap_pk_int(snap_pk_t *p, int *v);
/* A NUL-terminated string of at most cap - 1 bytes. */
void snap_pk_str(snap_pk_t *p, char *s, size_t cap);
#define SNAP_PK_STR(p, field) snap_pk_str((p), (field), sizeof(field))

#endif
