/* checkpoint.h — what a start rebuilds, read from the newest valid snapshot and the journal after
 * it; and the thread that writes snapshots and retires the journal segments they cover.
 *
 * A snapshot (journal/snapshot.h) holds one section per module that replay rebuilds: the
 * registry (deposits, links), the admin accounts, the withdrawals. Each module describes its section with a
 * checkpoint_section_t (create an empty state, apply one record, save, load) and is listed in
 * checkpoint_sections[] (checkpoint.c): adding a module's state to snapshots is one entry there.
 *
 * Start (checkpoint_restore): the newest snapshot whose file checks out, whose section loads and
 * which belongs to this journal (the record at its LSN has the checksum it names), plus the journal
 * records after its LSN; a damaged newest snapshot falls back to the one before, and with none the
 * whole journal (the archive included) is replayed. Each section restores alone, so a module is
 * rebuilt the same way whether it is the registry at start, the admins at start, or the snapshot
 * writer building the next snapshot.
 *
 * Writing (checkpoint_write, off every request path: in kasa serve a snapshot process of its own,
 * checkpointer_use_process): each section is rebuilt in a private state from the last snapshot (or
 * the states kept since it, checkpoint_write_kept) and the journal up to a durable LSN — a
 * consistent cut by construction, taking no lock of the live modules, so acknowledgements never
 * wait for it — then saved into one snapshot file (tmp, fsync, rename, directory fsync). Once it is
 * durable, the segments it wholly covers move to the archive (journal_archive). */
#ifndef KASA_ACTORS_CHECKPOINT_H
#define KASA_ACTORS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "journal/journal.h"
#include "journal/snapshot.h"
#include "schema/config.h"
#include "schema/record.h"

typedef struct {
    const char *name;                          /* the section's name in a snapshot (<= 31 bytes) */
    void *(*create)(const config_t *cfg);      /* an empty state, or NULL (no memory) */
    void (*destroy)(void *state);
    /* Applies one durable record as replay does (kinds it does not keep: ignored). 0, or -1 with a
     * reason (a bound reached). */
    int (*apply)(void *state, const record_t *r, uint64_t lsn, char *err, size_t errlen);
    int (*save)(void *state, snap_pk_t *p);    /* 0 or -1; NULL: not in snapshots (rebuilt from the
                                                * whole journal at every start) */
    int (*load)(void *state, snap_pk_t *p, char *err, size_t errlen);   /* into an empty state */
    /* After the snapshot of lsn that state was saved into is durable: lets go of what the snapshot
     * now holds elsewhere (the registry: its finished deposits, now in the index), so the state is
     * what loading that snapshot gives. 0, or -1 with a reason. NULL: nothing to let go of. */
    int (*settle)(void *state, uint64_t lsn, char *err, size_t errlen);
} checkpoint_section_t;

extern const checkpoint_section_t checkpoint_registry;   /* registry_t: deposits and links */
extern const checkpoint_section_t checkpoint_admins;     /* admins_t: admin accounts */
extern const checkpoint_section_t checkpoint_withdrawals;   /* withdrawals_t: every withdrawal */
/* Every section a snapshot holds, NULL-terminated. */
extern const checkpoint_section_t *const checkpoint_sections[];

typedef struct {
    uint64_t snapshot_lsn;   /* the snapshot started from (0: none, the whole journal) */
    uint64_t last_lsn;       /* the last record now reflected (the snapshot's LSN if none followed) */
    uint32_t last_crc;       /* that record's checksum */
    long records;            /* journal records read after the snapshot */
    int fallbacks;           /* snapshots passed over (damaged, unreadable, not this journal's) */
    char fallback_why[200];  /* why the first one was passed over */
} checkpoint_info_t;

/* A new state of sec rebuilt from journal dir's newest valid snapshot and the records after it, up
 * to upto_lsn (0: to the end). *info (may be NULL) says from what. NULL with a reason (a bad
 * record, a bound reached, a journal that does not reach back to what is needed). Logs each
 * snapshot passed over (event=snapshot.skipped). */
void *checkpoint_restore(const char *dir, const checkpoint_section_t *sec, const config_t *cfg, uint64_t upto_lsn,
                         checkpoint_info_t *info, char *err, size_t errlen);

/* The same, into live, an empty state made elsewhere (the admins of a server, which need more than
 * sec->create gives): rebuilt aside, then copied in through its section encoding. 0, or -1 with a
 * reason. */
int checkpoint_restore_into(const char *dir, const checkpoint_section_t *sec, const config_t *cfg, void *live,
                            checkpoint_info_t *info, char *err, size_t errlen);

/* Writes the snapshot of journal dir covering upto_lsn (durable, and after the newest snapshot),
 * every section of checkpoint_sections[] in it, then retires the segments it wholly covers to the
 * archive. 0 (*info: what it read), or -1 with a reason (any earlier snapshot untouched). */
int checkpoint_write(const char *dir, const config_t *cfg, uint64_t upto_lsn, checkpoint_info_t *info, char *err,
                     size_t errlen);

/* The states a writer keeps from one snapshot to the next (checkpoint_write_kept). */
typedef struct checkpoint_kept_t checkpoint_kept_t;
checkpoint_kept_t *checkpoint_kept_new(void);
void checkpoint_kept_destroy(checkpoint_kept_t **kept_p);

/* checkpoint_write, standing on the states kept from the last snapshot this kept wrote (if it is
 * the newest snapshot and the journal still follows it): only the records after it are applied, not
 * the whole state loaded again; the states are kept for the next one (settled: what loading the new
 * snapshot gives). Falls back on checkpoint_write's own way on any doubt. Same result, same files. */
int checkpoint_write_kept(const char *dir, const config_t *cfg, uint64_t upto_lsn, checkpoint_kept_t *kept,
                          checkpoint_info_t *info, char *err, size_t errlen);

/* The thread that has a snapshot of journal's directory (cfg->journal_dir) written once
 * cfg->snapshot_every_records records or cfg->snapshot_every_s seconds (with new records) passed
 * since the last snapshot (by its writer thread at the idle policy, or the snapshot process). Logs
 * event=snapshot.written or snapshot.failed (then retries no sooner than a minute later). NULL with
 * a reason. Both settings 0: a checkpointer that never writes. */
typedef struct checkpointer_t checkpointer_t;
checkpointer_t *checkpointer_new(journal_t *journal, const config_t *cfg, char *err, size_t errlen);
/* Stops the thread (a snapshot being written is finished first); frees; sets *self_p NULL. */
void checkpointer_destroy(checkpointer_t **self_p);
/* Calls fn(arg, lsn) on the checkpointer's thread after each snapshot it writes is durable (lsn: the
 * one it covers): how the live modules let go of what the snapshot now holds for them. */
void checkpointer_on_written(checkpointer_t *self, void (*fn)(void *arg, uint64_t lsn), void *arg);
/* Snapshots written by it so far. */
uint64_t checkpointer_written(checkpointer_t *self);
/* From now on snapshots are written by a process of its own: exe (a kasa binary; kasa serve gives
 * /proc/self/exe, itself) run as `kasa journal snapshot-process DIR --max-deposits N`, started at once
 * (if snapshots are on; its exec and dynamic loading are then not in the first snapshot) and kept
 * (its states kept from one snapshot to the next, checkpoint_write_kept), at the idle scheduling
 * policy, pausing every half millisecond while it writes (S_PACE_PERIOD_NS in checkpoint.c), and the
 * lowest best-effort I/O level (not the idle I/O class: see S_IOPRIO_LOW there), killed if kasa dies,
 * replaced if it dies. It shares no lock, heap
 * or page table with the running kasa: with one malloc heap for every thread, a
 * snapshot thread at the idle policy preempted inside malloc held every webhook thread's
 * allocations (tens of ms, measured). Without it (tests of the actors alone), the writer thread
 * writes them. Call before the first snapshot. */
void checkpointer_use_process(checkpointer_t *self, const char *exe);

/* The snapshot process (`kasa journal snapshot-process`): takes the idle policy and the lowest
 * best-effort I/O level, dies with its parent (parent: the pid it must have, 0 whichever it has; one
 * whose parent died before it could arrange that leaves at once, returning 1), pauses every half
 * millisecond while it writes; for each line "LSN" read on in_fd writes the snapshot
 * covering it (checkpoint_write_kept) and answers one line on out_fd: "ok SNAPSHOT_LSN RECORDS CPU_US
 * MAX_RSS_KIB" or "error REASON". Returns at the end of in_fd: 0, or 1 if it could not answer. */
int checkpoint_process_main(const char *dir, size_t max_deposits, pid_t parent, int in_fd, int out_fd);

#endif
