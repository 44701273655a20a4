/* journal.h — kasa's append-only journal: the one place where a transition becomes a fact.
 *
 * A journal is a directory of segment files (00000000000000000001.seg, ...: each named by its first
 * LSN in 20 digits; the format is described in journal/jformat.h). Each record holds its length,
 * a log sequence number (LSN, 1, 2, 3, ... with no gaps), the checksum of the previous record (a chain:
 * a missing, reordered or altered record is detected), its own checksum and an opaque payload (kasa
 * stores msgpack records from schema/record.h; the journal never looks inside).
 *
 * Concurrency: any number of threads may append at once. Appends are batched (group commit): one
 * write and one fdatasync serve every record queued at that moment. An append is acknowledged only
 * after its batch is on disk. If a write or fdatasync fails, the journal is "failed": every waiting
 * and later append returns an error, and the journal must be reopened (which cuts back to the last
 * whole record) — it never pretends a record of unknown fate is durable.
 *
 * Opening: a torn last group commit (a crash mid-write: any of its pages may be missing, earlier or
 * later ones) is cut back to the last whole record and what was cut is reported; damage to an
 * acknowledged record refuses to open, naming the segment, the offset and the repair command
 * (`kasa journal repair DIR`). jformat.h says how the two are told apart. */
#ifndef KASA_JOURNAL_JOURNAL_H
#define KASA_JOURNAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct journal_t journal_t;

/* What the journal has to tell its caller (it has no logger of its own): a torn tail it cut at
 * open, leftover temporary files it removed, the moment it failed. event is a short dotted name
 * ("journal.tail_cut"), detail key=value text; both valid only during the call. Called from the
 * opening thread or the commit thread; must be quick and must not touch the journal. */
typedef enum { JOURNAL_NOTE_INFO, JOURNAL_NOTE_WARN, JOURNAL_NOTE_ERROR } journal_note_t;
typedef void (journal_report_fn)(void *arg, journal_note_t severity, const char *event, const char *detail);

typedef struct {
    uint64_t segment_bytes;    /* start a new segment once one reaches this size (default 64 MiB) */
    size_t max_batch_bytes;    /* the most one group commit writes at once (default 4 MiB)          */
    journal_report_fn *report; /* optional: where the journal's notes go (NULL: nowhere)            */
    void *report_arg;
} journal_opts_t;

#define JOURNAL_MAX_PAYLOAD (1u << 20) /* one record's payload, at most */

/* Opens (creating if needed) the journal in dir. opts may be NULL for the defaults.
 * Returns the journal, or NULL with a one-line reason in err. */
journal_t *journal_open(const char *dir, const journal_opts_t *opts, char *err, size_t errlen);

/* Waits for queued appends to finish, closes files, frees, sets *self_p to NULL. Safe on NULL.
 * If it wrote anything and did not fail, it starts the next (empty) segment first: the proof that
 * every record before it was acknowledged (see jformat.h). */
void journal_destroy(journal_t **self_p);

/* Appends one record and returns once it is durable: its LSN (>= 1), or 0 on failure
 * (payload too large, journal failed or closing). Thread-safe. */
uint64_t journal_append(journal_t *self, const void *payload, size_t len);

/* The two halves of journal_append, for a caller that queues several records and then waits once:
 * journal_submit queues the record and returns its LSN (0 on failure) without waiting;
 * journal_wait blocks until every record up to lsn is durable (0), or the journal failed (-1). */
uint64_t journal_submit(journal_t *self, const void *payload, size_t len);
int journal_wait(journal_t *self, uint64_t lsn);

/* journal_wait without a sleeping thread: fn(arg, 0) is called once every record up to lsn is
 * durable, fn(arg, -1) if the journal failed (or lsn was never handed out). The call comes from the
 * thread that committed the batch, after its appenders were woken and before the commit callbacks;
 * or at once, on the caller's thread, when lsn is durable already or the journal has failed. fn must
 * be quick and must not block (a wake-up of whoever acts on it): it holds back the next batch. Every
 * registration is called exactly once, at the latest by journal_destroy. Thread-safe. */
typedef void (journal_durable_fn)(void *arg, int rc);
void journal_when_durable(journal_t *self, uint64_t lsn, journal_durable_fn *fn, void *arg);

/* A caller about to submit several records one after the other (an event loop taking the requests
 * that arrived together) holds the next group commit back until it releases, so they share one
 * fdatasync instead of the first going alone: a flusher with records waiting starts its batch once
 * no one holds, or one holder has released since it looked, or JOURNAL_HOLD_MAX_US have passed.
 * Pairs; thread-safe; never blocks. */
#define JOURNAL_HOLD_MAX_US 1000
void journal_hold(journal_t *self);
void journal_release(journal_t *self);

/* The journal's own measurements, for /metrics: each batch's fdatasync time (µs) and its record
 * count. Valid while the journal is open; read-only use. */
#include "schema/probe.h"
const probe_hist_t *journal_fsync_us(const journal_t *self);
const probe_hist_t *journal_batch_records(const journal_t *self);
/* 1 once the journal has failed for good (a write, fdatasync or rotation failed). */
int journal_failed(journal_t *self);

/* The highest durable LSN (0 for an empty journal). */
uint64_t journal_durable_lsn(journal_t *self);

/* Called once per record, in LSN order, from the thread that completed the batch, after the record
 * is durable and after its appender was woken (the appender may return before its record's call).
 * Calls are serialised; the callback must be quick, must not append to this journal, and delays the
 * next batch while it runs. Used for the monitor feed and live updates. */
typedef void (journal_commit_fn)(void *arg, uint64_t lsn, const void *payload, size_t len);
void journal_on_commit(journal_t *self, journal_commit_fn *fn, void *arg);

/* Retires the segments whose records all have LSNs <= upto_lsn (never the last segment, which the
 * writer appends to): each moves to DIR/archive (created, mode 0700, if missing), and both
 * directories are fsynced. A snapshot covering upto_lsn must be durable first. Readers keep finding
 * the moved records; kasa never deletes them (`kasa journal archive --prune-before` does, for an
 * operator). *moved gets how many moved. 0, or -1 with a reason (what moved stays moved). */
int journal_archive(const char *dir, uint64_t upto_lsn, size_t *moved, char *err, size_t errlen);

/* Reading: from any LSN, across segments (the retired ones in DIR/archive too), of a journal that
 * is open or closed. */
typedef struct journal_reader_t journal_reader_t;

typedef struct {
    uint64_t lsn;
    const uint8_t *payload;    /* valid until the next call to journal_reader_next */
    size_t len;
    const char *segment;       /* file name of the segment holding it */
    uint64_t offset;           /* byte offset of the record in that segment */
    uint32_t crc;              /* the record's checksum (what the next record names as previous) */
    uint32_t prev_crc;         /* the previous record's checksum, as this record names it */
} journal_entry_t;

/* Opens a reader positioned at the first record with LSN >= from_lsn. NULL with a reason in err. */
journal_reader_t *journal_reader_open(const char *dir, uint64_t from_lsn, char *err, size_t errlen);

/* Opens a reader over one segment whose bytes are seg[0..len) (kept by the caller while the reader
 * lives), named as the segment starting at first_lsn: the same checks as a segment file, from its
 * first record; its end is the end of the bytes. NULL with a reason in err. */
journal_reader_t *journal_reader_open_bytes(const uint8_t *seg, size_t len, uint64_t first_lsn, char *err,
                                           size_t errlen);

/* 1 and fills *entry; 0 at the end; -1 on a bad record (journal_reader_error says where and why). */
int journal_reader_next(journal_reader_t *self, journal_entry_t *entry);
const char *journal_reader_error(const journal_reader_t *self);
void journal_reader_destroy(journal_reader_t **self_p);

#endif
