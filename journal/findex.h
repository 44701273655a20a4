/* findex.h — the compact index of finished deposits: files under DIR/finished/ that let kasa drop a
 * finished deposit's full entry from memory and still find it by transaction id, or list it under
 * its login, by reading it back from disk when asked.
 *
 * Two kinds of files, each written once (tmp, fsync, rename, directory fsync) and never changed:
 *   NNNN.dep   a store: the full entries of the deposits that finished up to snapshot NNNN (20
 *              digits: the LSN) and after the snapshot before it. Each entry is
 *                  u32 length, u32 CRC32C of the bytes, the bytes (an opaque blob: the registry's
 *                  encoding of the entry, transaction id included).
 *              Header 16 bytes: u32 magic 0x5344464B ("KFDS"), u32 version (1), u64 LSN.
 *              Stores are the finished deposits' history: kasa never deletes one.
 *   NNNN.idx   an index of every finished deposit up to snapshot NNNN, as two sorted arrays:
 *                  by key:   {u64 hash of the transaction id, u64 loc}           by (hash, loc)
 *                  by login: {u64 login, u64 order, u64 loc}   by login, then order newest first
 *              loc = store number << 40 | offset of the entry in that store (store numbers index
 *              the index's own store list); order is the deposit's arrival (its first LSN).
 *              Header 48 bytes: u32 magic 0x5849464B ("KFIX"), u32 version (1), u64 LSN, u64 count,
 *              u32 stores, u32 zero, u64 LSN of the index it was merged from (0: none), u64 zero;
 *              then u64 LSN[stores] (the stores), the key array, the login array; trailer 8 bytes:
 *              u32 CRC32C of every byte before it, u32 magic 0x444E454B ("KEND").
 * All integers little-endian (kasa runs on little-endian hosts: the elements are read as they lie).
 *
 * An index is read with pread, never mapped: its pages stay in the page cache, outside kasa's resident
 * memory (a mapping's pages count in it, and a page cache of large folios maps hundreds of KB per
 * touched page: lookups alone brought ten million deposits' keys, 160 MB, into a running kasa). The
 * first open reads the file once in chunks to check its checksum, keeping the hash of every 256th key
 * in memory (fences: 8 bytes per 256 deposits), so a lookup by key reads one 4 KiB window. Ten million
 * deposits cost about 400 MB of disk and a few hundred KB of memory. Every open of one file while it is
 * open anywhere in the process shares one handle, checked once (the file's inode, size, modification
 * time and checksum name it; files are never changed in place): the running registry and the snapshot
 * writer both stand on the last snapshot's index, and a snapshot no longer reads it whole again.
 *
 * A 64-bit hash may collide. A key hit is only a candidate: the caller reads the entry (findex_read)
 * and compares the whole transaction id; a new deposit whose hash equals an old one's is new.
 * Every file operation goes through journal/fio.c, so a test can fail any of them. */
#ifndef KASA_JOURNAL_FINDEX_H
#define KASA_JOURNAL_FINDEX_H

#include <stddef.h>
#include <stdint.h>

#define FINDEX_SUBDIR "finished"
#define FINDEX_STORE_MAGIC 0x5344464Bu
#define FINDEX_INDEX_MAGIC 0x5849464Bu
#define FINDEX_END_MAGIC 0x444E454Bu
#define FINDEX_VERSION 1u
#define FINDEX_STORE_HDR 16u
#define FINDEX_INDEX_HDR 48u
#define FINDEX_LOC_SHIFT 40
#define FINDEX_ENTRY_MAX (1u << 20)   /* one entry's bytes, at most */

typedef struct { uint64_t hash, loc; } findex_key_t;
typedef struct { uint64_t login, order, loc; } findex_login_t;

/* The 64-bit key of a transaction id (FNV-1a, then a final mix). */
uint64_t findex_hash(const char *tx_id);
/* Tests: replaces the hash (to force collisions); NULL restores it. Not thread-safe: set before use. */
void findex_set_hash(uint64_t (*fn)(const char *tx_id));

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct findex_t findex_t;

/* Opens DIR/finished/NNNN.idx (NNNN = lsn) and checks its header, size and checksum (the whole file
 * only if no open index is this very file). NULL with a reason (missing, damaged, of a newer format).
 * Thread-safe to use once open (read-only); findex_close drops this open's share. */
findex_t *findex_open(const char *dir, uint64_t lsn, char *err, size_t errlen);
void findex_close(findex_t **self_p);

uint64_t findex_lsn(const findex_t *self);
uint64_t findex_count(const findex_t *self);
uint32_t findex_crc(const findex_t *self);

/* What findex_find and findex_login return when the index cannot be read (an I/O error): nobody can
 * tell whether the key is there, so a caller must refuse (never take it for "absent"). */
#define FINDEX_FAILED ((size_t) -1)

/* The keys equal to hash: returns how many, the first at *first (then findex_key(self, *first + i)),
 * or FINDEX_FAILED. */
size_t findex_find(const findex_t *self, uint64_t hash, size_t *first);
/* Key i, read from the file into a copy of this thread's, valid until its next findex_key or
 * findex_login_at call; NULL past the end or on a read error (then refuse, as for FINDEX_FAILED). */
const findex_key_t *findex_key(const findex_t *self, size_t i);
/* The deposits of login, newest first: how many, the first at *first (findex_login_at), or
 * FINDEX_FAILED. */
size_t findex_login(const findex_t *self, uint64_t login, size_t *first);
const findex_login_t *findex_login_at(const findex_t *self, size_t i);
/* Copies up to n elements of the login array from the i-th on into out (a walk of every deposit, in
 * one read per chunk): how many (0 past the end), or FINDEX_FAILED. */
size_t findex_logins_read(const findex_t *self, size_t i, findex_login_t *out, size_t n);

/* Reads the entry at loc (its length and checksum checked): 0 and *blob (caller frees) / *len, or -1
 * with a reason (a store missing or damaged: the caller cannot tell what the deposit is). */
int findex_read(const findex_t *self, uint64_t loc, uint8_t **blob, size_t *len, char *err, size_t errlen);

/* The stores the index reads entries from: how many, and the i-th one's LSN (NNNN.dep). */
size_t findex_store_count(const findex_t *self);
uint64_t findex_store_lsn(const findex_t *self, size_t i);

/* Checks store DIR/finished/NNNN.dep (NNNN = lsn) whole, for `kasa journal verify`: its header and
 * every entry's length and checksum to the end of the file. 0 with *entries, or -1 with a reason
 * (where it is damaged). */
int findex_store_check(const char *dir, uint64_t lsn, uint64_t *entries, char *err, size_t errlen);

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct findex_writer_t findex_writer_t;

/* Starts the index of snapshot lsn: base's deposits (NULL: none) plus those added. NULL with a reason. */
findex_writer_t *findex_write_begin(const char *dir, uint64_t lsn, const findex_t *base, char *err, size_t errlen);
/* Adds one finished deposit: its key, login (0: listed under none), order and entry bytes (written to
 * the new store NNNN.dep). 0, or -1 with a reason (the writer is then failed). */
int findex_write_add(findex_writer_t *w, uint64_t hash, uint64_t login, uint64_t order, const void *blob,
                     size_t len, char *err, size_t errlen);
/* Leaves base's entry at loc out of the new index (the deposit is in memory again, or added anew). */
void findex_write_drop(findex_writer_t *w, uint64_t loc);
/* Makes the store and the index durable; *count: deposits in it, *crc: its checksum. 0, or -1 with a reason (nothing is
 * left but .tmp files, removed). Frees *w either way. Then removes index files older than base's own
 * base (no kept snapshot names them). */
int findex_write_commit(findex_writer_t **w, uint64_t *count, uint32_t *crc, char *err, size_t errlen);
void findex_write_abort(findex_writer_t **w);

#endif
