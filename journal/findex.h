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
 *   NNNN.idx   a run of the index: the deposits finished up to snapshot NNNN, as two sorted arrays:
 *                  by key:   {u64 hash of the transaction id, u64 loc}           by (hash, loc)
 *                  by login: {u64 login, u64 order, u64 loc}   by login, then order newest first
 *              loc = store number << 40 | offset of the entry in that store (store numbers index
 *              the list of every store, which only grows: each run's list is a prefix of the next's,
 *              so a loc means the same entry in every run); order is the deposit's arrival (its first
 *              LSN). Header 48 bytes: u32 magic 0x5849464B ("KFIX"), u32 version (2), u64 LSN, u64
 *              count, u32 stores, u32 zero, u64 LSN of the index it was written on (0: none), u32 runs
 *              below, u32 drops; then u64 LSN[stores] (the stores), {u64 LSN, u64 count, u64 checksum}
 *              [runs below] (the runs it stands on, newest first: the manifest), u64 loc[drops] (sorted:
 *              deposits of the runs below that it leaves out, superseded by a newer copy), the key array,
 *              the login array; trailer 8 bytes: u32 CRC32C of every byte before it, u32 magic
 *              0x444E454B ("KEND"). A version 1 file (the whole index in one, as kasa wrote before the
 *              index was levelled) is the same layout with no run below and no drop: read as one run.
 *
 * The index a snapshot names is levelled: its top run NNNN.idx and the runs it stands on. A snapshot
 * that moves deposits writes only those (and the drops of the deposits superseded since the last one)
 * as a new top run; while the newest runs hold four of the same size tier (below 1,024 deposits, then
 * each fourfold), they are merged into it in the same pass (s_merge_depth), so a deposit is rewritten
 * once per tier it climbs and a history keeps a few dozen runs at most. Every run is written once
 * (tmp, fdatasync, rename, directory fsync) before the snapshot naming it is: a kill at any moment
 * leaves the previous snapshot's index whole. Runs no kept snapshot's index stands on are removed. A
 * lookup asks every run, newest first, each through its own fences; a deposit dropped by any run is in
 * no answer.
 * All integers little-endian (kasa runs on little-endian hosts: the elements are read as they lie).
 *
 * An index is read with pread, never mapped: its pages stay in the page cache, outside kasa's resident
 * memory (a mapping's pages count in it, and a page cache of large folios maps hundreds of KB per
 * touched page: lookups alone brought ten million deposits' keys, 160 MB, into a running kasa). The
 * first open of a run reads it once in chunks to check its checksum, keeping the hash of every 256th key
 * in memory (fences: 8 bytes per 256 deposits), so a lookup reads one 4 KiB window per run. Ten million
 * deposits cost about 400 MB of disk and a few hundred KB of memory. Every open of one run while it is
 * open anywhere in the process shares one handle, checked once (the file's inode, size, modification
 * time and checksum name it; files are never changed in place): the running registry and the snapshot
 * writer both stand on the last snapshot's runs, and a snapshot reads only the runs it merges.
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
#define FINDEX_VERSION 2u         /* of an index run (1: a whole index, still read) */
#define FINDEX_STORE_VERSION 1u
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

/* Tests: the deposits below which a run is of the lowest merge tier (default 1,024; 0 restores it).
 * Not thread-safe: set before use. */
void findex_set_merge_unit(uint64_t keys);

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct findex_t findex_t;

/* Opens the index whose top run is DIR/finished/NNNN.idx (NNNN = lsn) and every run it stands on,
 * each checked (header, size, checksum: the whole file only if no open index holds this very run) and
 * matching what the top says of it (count, checksum). NULL with a reason (missing, damaged, of a newer
 * format). Thread-safe to use once open (read-only); findex_close drops this open's share. */
findex_t *findex_open(const char *dir, uint64_t lsn, char *err, size_t errlen);
/* The run DIR/finished/NNNN.idx alone, checked the same way, without the runs below it nor its drops
 * applied (`kasa journal verify` checks every run this way). */
findex_t *findex_open_run(const char *dir, uint64_t lsn, char *err, size_t errlen);
void findex_close(findex_t **self_p);

uint64_t findex_lsn(const findex_t *self);     /* the top run's */
uint64_t findex_count(const findex_t *self);   /* the deposits in it (every run's, less the dropped) */
uint32_t findex_crc(const findex_t *self);     /* the top run's checksum */
/* Its runs, newest first: how many, and the i-th one's LSN. */
size_t findex_runs(const findex_t *self);
uint64_t findex_run_lsn(const findex_t *self, size_t i);

/* Calls fn(arg, loc) for each deposit whose key is hash (newest run first; dropped ones left out),
 * until fn returns nonzero. 0, fn's nonzero, or -1: a run cannot be read, and nobody can tell whether
 * the key is there, so a caller must refuse (never take it for "absent"). */
int findex_find(const findex_t *self, uint64_t hash, int (*fn)(void *arg, uint64_t loc), void *arg);

/* How many windows of a key array lookups have read in this process (a run's filter answers most
 * absent hashes without one). For tests and benchmarks. */
uint64_t findex_key_reads(void);

/* Every deposit of the index (each run's login array read through in chunks; dropped ones left out),
 * in no particular order, to fn until it returns nonzero: 0, fn's nonzero, or -1 (a run cannot be
 * read). findex_each_key the same over the key arrays. */
int findex_each(const findex_t *self, int (*fn)(void *arg, const findex_login_t *l), void *arg);
int findex_each_key(const findex_t *self, int (*fn)(void *arg, const findex_key_t *k), void *arg);

/* The deposits of login across the runs, newest first (highest order): begin (NULL: no memory), then
 * next until it returns 0 (no more) or -1 (a run cannot be read: the listing is not whole), then end. */
typedef struct findex_login_it_t findex_login_it_t;
findex_login_it_t *findex_login_begin(const findex_t *self, uint64_t login);
int findex_login_next(findex_login_it_t *it, findex_login_t *out);
void findex_login_end(findex_login_it_t **it_p);

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
/* The same pass, a buffer at a time, handing each entry to fn(arg, offset in the store, bytes, length)
 * as it goes (an offset is an entry's loc with the store's number cleared) until fn returns nonzero:
 * 0 with *entries (every entry seen), fn's nonzero, or -1 with a reason. A walk of every finished
 * deposit reads the stores this way, in order, rather than an entry at a time by its loc. */
int findex_store_each(const char *dir, uint64_t lsn, int (*fn)(void *arg, uint64_t off, const uint8_t *blob, size_t len),
                      void *arg, uint64_t *entries, char *err, size_t errlen);

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct findex_writer_t findex_writer_t;

/* Starts the index of snapshot lsn: base's deposits (NULL: none) plus those added, as a new top run
 * standing on base's runs (some of them merged into it: findex.h's top comment). base must stay open
 * until the commit. NULL with a reason. */
findex_writer_t *findex_write_begin(const char *dir, uint64_t lsn, const findex_t *base, char *err, size_t errlen);
/* Adds one finished deposit: its key, login (0: listed under none), order and entry bytes (written to
 * the new store NNNN.dep). 0, or -1 with a reason (the writer is then failed). */
int findex_write_add(findex_writer_t *w, uint64_t hash, uint64_t login, uint64_t order, const void *blob,
                     size_t len, char *err, size_t errlen);
/* Leaves base's entry at loc out of the new index (the deposit is in memory again, or added anew). */
void findex_write_drop(findex_writer_t *w, uint64_t loc);
/* Makes the store and the top run durable; *count: deposits in the whole index (findex_count of it),
 * *crc: the top run's checksum. 0, or -1 with a reason (nothing is left but .tmp files, removed). Frees
 * *w either way. Then removes the runs older than it that neither it, base, nor base's own base stand
 * on (no kept snapshot's index needs them). */
int findex_write_commit(findex_writer_t **w, uint64_t *count, uint32_t *crc, char *err, size_t errlen);
void findex_write_abort(findex_writer_t **w);

#endif
