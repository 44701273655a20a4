/* projector.h — the MongoDB projection of the journal (collections: schema/mongo.h).
 *
 * The projector follows committed journal records (journal/reader, never ahead of the durable LSN it
 * is told about) and writes them to MongoDB in batches of bulk upserts keyed by the unique indexes:
 * projecting a record twice writes nothing new, so a batch cut short by a crash, a lost answer or an
 * outage is simply written again. After each batch it records the last LSN in `kasa_nodes`; on a
 * start, after an outage, or when MongoDB lost its data (the node's position is gone or moved), it
 * re-reads that position and catches up from the journal.
 *
 * It is never on a deposit's path: the journal's commit callback only tells it a new durable LSN
 * (projector_notify: a counter and a signal, no I/O, never waits on MongoDB). MongoDB being down,
 * slow or empty changes nothing for deposits; the projector retries with backoff and reports its
 * lag (records and seconds behind the journal) in the log, through on_status (the monitor feed) and
 * in projector_status().
 *
 * Deposit documents are built from the projector's own registry (actors/registry.h), fed the same
 * records in the same order as a replay, so a `deposits` document is exactly the registry's view of
 * the deposit as of the records projected. Thread-safe: projector_notify and projector_status may be
 * called from any thread; the other functions from one thread. */
#ifndef KASA_ACTORS_PROJECTOR_H
#define KASA_ACTORS_PROJECTOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct projector_t projector_t;

typedef struct {
    uint64_t projected_lsn;    /* the last LSN MongoDB has (kasa_nodes), as far as the projector knows */
    uint64_t journal_lsn;      /* the last durable LSN known to the projector                          */
    uint64_t lag_records;      /* journal_lsn - projected_lsn (0 when caught up)                       */
    int64_t lag_ms;            /* age of the oldest record not yet projected (0 when caught up)        */
    int connected;             /* 1 when the last MongoDB operation succeeded                          */
    uint64_t batches;          /* batches written since start                                          */
    uint64_t upserted;         /* documents MongoDB inserted since start (a replay adds none)           */
    uint64_t modified;         /* documents MongoDB changed since start                                 */
    char error[256];           /* the last failure, "" once one succeeds; never holds the URI          */
} projector_status_t;

typedef void (projector_status_fn)(void *arg, const projector_status_t *status);

typedef struct {
    const char *uri;           /* KASA_MONGO_URI (required; never logged whole)                      */
    const char *db;            /* KASA_MONGO_DB                                                      */
    const char *node;          /* KASA_NODE_ID                                                       */
    const char *journal_dir;   /* the journal to follow                                              */
    size_t max_deposits;       /* the projector's registry bound (KASA_MAX_DEPOSITS)                 */
    int follow_notified;       /* 1: read no record beyond the LSN given to projector_notify (a server:
                                  only durable records); 0: read to the end (the journal is closed)   */
    int batch_records;         /* records per batch (0: 512)                                         */
    int64_t retry_min_ms;      /* first backoff after a failure (0: 200 ms), doubling up to ...      */
    int64_t retry_max_ms;      /* ... this (0: 5000 ms)                                              */
    int64_t check_ms;          /* while idle, re-read the node's position this often (0: 2000 ms)    */
    projector_status_fn *on_status; /* optional: called from the projector's thread after each batch,
                                       each failure and at most once a second otherwise; quick       */
    void *status_arg;
} projector_opts_t;

/* Makes a projector (a client pool on opts->uri; no connection yet). NULL with a reason in err
 * (a URI libmongoc refuses — the reason never repeats the URI). */
projector_t *projector_new(const projector_opts_t *opts, char *err, size_t errlen);

/* Stops the thread if started (the batch in flight finishes or fails), frees, nulls *self_p. */
void projector_destroy(projector_t **self_p);

/* Starts following in a background thread: ensures the indexes (logging each as created or already
 * there), then projects and waits for more, forever retrying. Returns at once (MongoDB unreachable
 * is logged, never fatal). 0, or -1 if the thread cannot start. */
int projector_start(projector_t *self);

/* The journal has made everything up to lsn durable. Quick, never blocks on MongoDB: safe on the
 * journal's commit path. */
void projector_notify(projector_t *self, uint64_t lsn);

/* Copies the current status. */
void projector_status(projector_t *self, projector_status_t *out);

/* Synchronous use (the `kasa mongo` verbs, tests), without projector_start:
 * ensure the indexes; project until the journal's end as it is now. 0, or -1 with a reason. */
int projector_sync(projector_t *self, char *err, size_t errlen);

/* Removes this node's documents from every collection (transitions, deposits, addresses and its
 * kasa_nodes position), then projects everything from the journal's first record. 0, or -1. */
int projector_rebuild(projector_t *self, char *err, size_t errlen);

/* Reads this node's position from kasa_nodes: *lsn (0 if absent), *time_ms of that record (0 if
 * absent). 0, or -1 with a reason (MongoDB unreachable). */
int projector_position(projector_t *self, uint64_t *lsn, int64_t *time_ms, char *err, size_t errlen);

/* How many documents collection holds (all nodes'). 0, or -1 with a reason. */
int projector_count(projector_t *self, const char *collection, int64_t *count, char *err, size_t errlen);

/* One line of status, e.g. "projected=42 journal=45 lag_records=3 lag_seconds=0.8 connected=yes". */
void projector_status_line(const projector_status_t *st, char *buf, size_t len);

#endif
