/* projector.c — the journal's MongoDB projection (see projector.h; collections in schema/mongo.h).
 *
 * One step: read up to a batch of records the journal has made durable, apply each to the
 * projector's registry (once per LSN), then write, in this order, one bulk upsert command per
 * collection (s_writers: transitions, addresses, deposits) and last the node's position in
 * kasa_nodes. The position moves only after everything before it was acknowledged, so whatever
 * interrupts a batch (a crash, a timeout, a lost answer) leaves a position at or before what
 * MongoDB holds, and writing the batch again changes nothing that was already written.
 *
 * The position update is conditional on the position this projector last wrote ({node, lsn: old}).
 * If it matches nothing, MongoDB lost its data or someone else (`kasa mongo rebuild`) moved it: the
 * projector re-reads the position (0 when it is gone) and re-projects from there. While idle it
 * re-reads the position every check_ms, so a MongoDB restarted empty is filled again without
 * waiting for the next deposit. */
#include "actors/projector.h"

#include <errno.h>
#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/condvar.h"
#include "actors/mio.h"
#include "actors/registry.h"
#include "actors/views.h"
#include "journal/journal.h"
#include "schema/log.h"
#include "schema/mongo.h"
#include "schema/record.h"

#define DEFAULT_BATCH 512
#define MAX_BATCH 4096
#define STATUS_EVERY_MS 1000
#define LAG_LOG_EVERY_MS 10000
#define LINGER_MS 20              /* a caught-up projector waits this long for more records */

typedef struct {
    uint64_t lsn;
    record_t rec;
} item_t;

struct projector_t {
    char *uri_text, *db, *node, *journal_dir;
    char uri_shown[300];          /* the URI without its secrets, for the log */
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    int follow_notified;
    int batch_max;
    int64_t retry_min_ms, retry_max_ms, check_ms;
    projector_status_fn *on_status;
    void *status_arg;

    registry_t *registry;
    uint64_t applied;             /* records up to this LSN are in the registry */
    journal_reader_t *reader;
    uint64_t reader_next;         /* the LSN the reader returns next (0: no reader) */
    uint64_t position;            /* the node's position as this projector last read or wrote it */
    int have_position;            /* 0: read it from MongoDB before the next batch */
    int loaded;                   /* the position was read at least once */
    int indexes_ok;
    item_t *batch;
    int n;

    pthread_mutex_t mu;           /* guards what follows (and waking the thread) */
    pthread_cond_t cond;
    uint64_t notified;            /* the durable LSN the journal told us about */
    int stop;
    projector_status_t status;
    pthread_t thread;
    int started;
};

static pthread_once_t s_mongoc_once = PTHREAD_ONCE_INIT;
static void s_mongoc_init(void) { mongoc_init(); }

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- status --------------------------------------------------------------------------------- */

static uint64_t s_notified(projector_t *self)
{
    pthread_mutex_lock(&self->mu);
    uint64_t v = self->notified;
    pthread_mutex_unlock(&self->mu);
    return v;
}

/* Recomputes the lag from what the projector holds; ok says whether the last operation worked. */
static void s_status_update(projector_t *self, int ok, const char *error)
{
    pthread_mutex_lock(&self->mu);
    projector_status_t *st = &self->status;
    st->projected_lsn = self->position;
    uint64_t known = self->applied > self->notified ? self->applied : self->notified;
    if (self->n > 0 && self->batch[self->n - 1].lsn > known)
        known = self->batch[self->n - 1].lsn;
    st->journal_lsn = known;
    st->lag_records = known > self->position ? known - self->position : 0;
    st->lag_ms = 0;
    if (st->lag_records > 0 && self->n > 0) {
        int64_t age = s_wall_ms() - self->batch[0].rec.time_ms;
        st->lag_ms = age > 0 ? age : 0;
    }
    st->connected = ok;
    if (ok)
        st->error[0] = '\0';
    else if (error)
        snprintf(st->error, sizeof st->error, "%s", error);
    pthread_mutex_unlock(&self->mu);
}

void projector_status(projector_t *self, projector_status_t *out)
{
    pthread_mutex_lock(&self->mu);
    *out = self->status;
    pthread_mutex_unlock(&self->mu);
}

void projector_status_line(const projector_status_t *st, char *buf, size_t len)
{
    snprintf(buf, len, "projected=%" PRIu64 " journal=%" PRIu64 " lag_records=%" PRIu64
             " lag_seconds=%" PRId64 ".%01" PRId64 " connected=%s batches=%" PRIu64 " upserted=%" PRIu64
             " modified=%" PRIu64,
             st->projected_lsn, st->journal_lsn, st->lag_records, st->lag_ms / 1000, (st->lag_ms % 1000) / 100,
             st->connected ? "yes" : "no", st->batches, st->upserted, st->modified);
}

/* ---- MongoDB commands ----------------------------------------------------------------------- */

/* Reads a write command's reply: fills *matched / *upserted / *modified. A write concern error, or
 * a write error, is a failure with its first message in err — except duplicate-key errors (11000)
 * when dups is not NULL: those are counted in *dups (an upsert that found a newer document). 0 or -1. */
static int s_write_result(const bson_t *reply, int64_t *matched, int64_t *upserted, int64_t *modified,
                          int64_t *dups, char *err, size_t errlen)
{
    bson_iter_t it, sub;
    *matched = *upserted = *modified = 0;
    if (dups)
        *dups = 0;
    if (bson_iter_init_find(&it, reply, "n"))
        *matched = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, reply, "nModified"))
        *modified = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, reply, "upserted") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub))
        while (bson_iter_next(&sub))
            (*upserted)++;
    *matched -= *upserted;
    if (bson_iter_init_find(&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub)) {
            bson_iter_t e;
            int64_t code = 0;
            const char *msg = "write error";
            if (bson_iter_recurse(&sub, &e) && bson_iter_find(&e, "code"))
                code = bson_iter_as_int64(&e);
            if (bson_iter_recurse(&sub, &e) && bson_iter_find(&e, "errmsg") && BSON_ITER_HOLDS_UTF8(&e))
                msg = bson_iter_utf8(&e, NULL);
            if (dups && code == MONGO_DUPLICATE_KEY) {
                (*dups)++;
                continue;
            }
            snprintf(err, errlen, "write error %" PRId64 ": %.160s", code, msg);
            return -1;
        }
    }
    if (bson_iter_init_find(&it, reply, "writeConcernError")) {
        snprintf(err, errlen, "write concern error");
        return -1;
    }
    return 0;
}

/* Runs a command (write: one that writes) on a pooled client, through the mio seam. 0 with *reply
 * (destroy it), or -1 with a reason (no *reply to destroy). */
static int s_command(projector_t *self, const bson_t *cmd, int write, bson_t *reply, char *err, size_t errlen)
{
    mongoc_client_t *client = mongoc_client_pool_pop(self->pool);
    bson_error_t error;
    bool ok = write ? mio_write(client, self->db, cmd, reply, &error) : mio_read(client, self->db, cmd, reply, &error);
    mongoc_client_pool_push(self->pool, client);
    if (!ok) {
        snprintf(err, errlen, "%s", error.message);
        bson_destroy(reply);
        return -1;
    }
    return 0;
}

static int s_write(projector_t *self, const bson_t *cmd, bson_t *reply, char *err, size_t errlen)
{
    return s_command(self, cmd, 1, reply, err, errlen);
}

/* Starts an update command on collection: {update, ordered: false, updates: [ ... ]}. */
static void s_update_begin(bson_t *cmd, bson_t *updates, const char *collection)
{
    bson_init(cmd);
    BSON_APPEND_UTF8(cmd, "update", collection);
    BSON_APPEND_BOOL(cmd, "ordered", false);
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", updates);
}

/* Appends one upsert statement {q: filter, u: {op: doc}, upsert: true}; upsert 0 makes it a plain
 * update. */
static void s_statement(bson_t *updates, uint32_t *i, const bson_t *filter, const char *op, const bson_t *doc,
                        int upsert)
{
    char idx[16];
    const char *idxs;
    bson_uint32_to_string((*i)++, &idxs, idx, sizeof idx);
    bson_t stmt, u;
    BSON_APPEND_DOCUMENT_BEGIN(updates, idxs, &stmt);
    BSON_APPEND_DOCUMENT(&stmt, "q", filter);
    BSON_APPEND_DOCUMENT_BEGIN(&stmt, "u", &u);
    BSON_APPEND_DOCUMENT(&u, op, doc);
    bson_append_document_end(&stmt, &u);
    BSON_APPEND_BOOL(&stmt, "upsert", upsert != 0);
    bson_append_document_end(updates, &stmt);
}

/* ---- documents ------------------------------------------------------------------------------ */

/* ---- the collections a batch writes --------------------------------------------------------- */

typedef struct {
    int64_t upserted, modified;
} counts_t;

/* Runs an update command built by s_update_begin holding n statements (destroys it), adding what
 * MongoDB inserted and changed to *c. A duplicate key is not an error: every statement is an upsert
 * by a unique key, so 11000 means the document is there already (or a newer one is, for deposits).
 * 0 or -1. */
static int s_run_updates(projector_t *self, bson_t *cmd, uint32_t n, counts_t *c, char *err, size_t errlen)
{
    int rc = 0;
    if (n > 0) {
        bson_t reply;
        int64_t matched, up, mod, dups;
        rc = s_write(self, cmd, &reply, err, errlen);
        if (rc == 0) {
            rc = s_write_result(&reply, &matched, &up, &mod, &dups, err, errlen);
            c->upserted += up;
            c->modified += mod;
            bson_destroy(&reply);
        }
    }
    bson_destroy(cmd);
    return rc;
}

/* What a collection's writer makes of batch record k: 1 with *filter (BCON_NEW'd), *doc (initialised)
 * and *op set, or 0 when record k writes nothing there. */
typedef int (s_build_fn)(projector_t *self, int k, bson_t **filter, bson_t *doc, const char **op);

/* transitions: one document per record, inserted once ($setOnInsert) keyed by (node, lsn). */
static int s_build_transition(projector_t *self, int k, bson_t **filter, bson_t *doc, const char **op)
{
    if (mongo_transition_doc(&self->batch[k].rec, self->batch[k].lsn, self->node, doc) != 0)
        return 0;
    *filter = BCON_NEW("node", BCON_UTF8(self->node), "lsn", BCON_INT64((int64_t) self->batch[k].lsn));
    *op = "$setOnInsert";
    return 1;
}

/* addresses: one document per linked address, inserted once keyed by address. */
static int s_build_address(projector_t *self, int k, bson_t **filter, bson_t *doc, const char **op)
{
    const record_t *r = &self->batch[k].rec;
    if (r->kind != RECORD_ADDRESS_LINK || !r->address[0])
        return 0;
    bson_init(doc);
    BSON_APPEND_UTF8(doc, "address", r->address);
    BSON_APPEND_INT64(doc, "login", (int64_t) r->login);
    BSON_APPEND_UTF8(doc, "chain_id", r->chain_id);
    BSON_APPEND_INT64(doc, "lsn", (int64_t) self->batch[k].lsn);
    BSON_APPEND_DATE_TIME(doc, "time", r->time_ms);
    BSON_APPEND_UTF8(doc, "node", self->node);
    *filter = BCON_NEW("address", BCON_UTF8(r->address));
    *op = "$setOnInsert";
    return 1;
}

/* deposits: each deposit the batch touched (once, at its last record), set to the registry's view,
 * keyed by transaction_id and guarded (views_deposit_guard): this node's own newer view, or a view
 * further along than the one there (deposit_state_rank; at an equal rank, another node's older one).
 * A document the guard does not match (a further view, this node's newer one) makes the upsert's
 * insert fail on the unique index (11000): counted, never an error. So re-projecting from an earlier
 * position, or a node lagging behind the one that credited the deposit, never moves a deposit's
 * document back: MongoDB keeps the cluster's furthest view, which the panels read (actors/views.h). */
static int s_build_deposit(projector_t *self, int k, bson_t **filter, bson_t *doc, const char **op)
{
    const record_t *r = &self->batch[k].rec;
    if (!r->tx_id[0])
        return 0;
    for (int j = k + 1; j < self->n; j++)
        if (strcmp(self->batch[j].rec.tx_id, r->tx_id) == 0)
            return 0;                       /* a later record of the batch writes it */
    registry_entry_t e;
    if (registry_get(self->registry, r->tx_id, &e) != 0)
        return 0;
    views_deposit_doc(&e, self->node, doc);
    *filter = views_deposit_guard(&e, self->node);
    *op = "$set";
    return 1;
}

/* What a batch writes, in order, before the position moves. A new collection (withdrawals, the
 * admins' audit) is one more row here and its indexes in schema/mongo.c. */
static const struct {
    const char *collection;
    s_build_fn *build;
} s_writers[] = {
    { MONGO_TRANSITIONS, s_build_transition },
    { MONGO_ADDRESSES, s_build_address },
    { MONGO_DEPOSITS, s_build_deposit },
};

/* One bulk upsert command with every statement writer w makes of the batch. 0 or -1. */
static int s_write_collection(projector_t *self, size_t w, counts_t *c, char *err, size_t errlen)
{
    bson_t cmd, updates;
    uint32_t i = 0;
    s_update_begin(&cmd, &updates, s_writers[w].collection);
    for (int k = 0; k < self->n; k++) {
        bson_t *filter, doc;
        const char *op;
        if (!s_writers[w].build(self, k, &filter, &doc, &op))
            continue;
        s_statement(&updates, &i, filter, op, &doc, 1);
        bson_destroy(filter);
        bson_destroy(&doc);
    }
    bson_append_array_end(&cmd, &updates);
    return s_run_updates(self, &cmd, i, c, err, errlen);
}

/* Moves the node's position from self->position to lsn, only if MongoDB still holds self->position
 * (the first position is an upsert). 1 moved, 0 MongoDB's position is not ours (re-read it), -1 failed. */
static int s_write_position(projector_t *self, uint64_t lsn, int64_t time_ms, char *err, size_t errlen)
{
    bson_t cmd, updates;
    uint32_t i = 0;
    s_update_begin(&cmd, &updates, MONGO_NODES);
    bson_t *q = self->position > 0
                    ? BCON_NEW("node", BCON_UTF8(self->node), "lsn", BCON_INT64((int64_t) self->position))
                    : BCON_NEW("node", BCON_UTF8(self->node));
    bson_t *set = BCON_NEW("lsn", BCON_INT64((int64_t) lsn), "time", BCON_DATE_TIME(time_ms), "updated",
                           BCON_DATE_TIME(s_wall_ms()));
    s_statement(&updates, &i, q, "$set", set, self->position == 0);
    bson_destroy(q);
    bson_destroy(set);
    bson_append_array_end(&cmd, &updates);
    bson_t reply;
    int rc = s_write(self, &cmd, &reply, err, errlen);
    bson_destroy(&cmd);
    if (rc != 0)
        return -1;
    int64_t matched, up, mod, dup = 0;
    rc = s_write_result(&reply, &matched, &up, &mod, &dup, err, errlen);
    bson_destroy(&reply);
    if (rc != 0)
        return -1;
    return matched + up == 1 ? 1 : 0;   /* 0 also when the upsert met an existing position (11000) */
}

int projector_position(projector_t *self, uint64_t *lsn, int64_t *time_ms, char *err, size_t errlen)
{
    bson_t cmd, filter, reply;
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", MONGO_NODES);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    BSON_APPEND_UTF8(&filter, "node", self->node);
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_INT32(&cmd, "limit", 1);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);
    int rc = s_command(self, &cmd, 0, &reply, err, errlen);
    bson_destroy(&cmd);
    if (rc != 0)
        return -1;
    *lsn = 0;
    *time_ms = 0;
    bson_iter_t it;
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch.0.lsn", &it))
        *lsn = (uint64_t) bson_iter_as_int64(&it);
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch.0.time", &it)
        && BSON_ITER_HOLDS_DATE_TIME(&it))
        *time_ms = bson_iter_date_time(&it);
    bson_destroy(&reply);
    return 0;
}

int projector_count(projector_t *self, const char *collection, int64_t *count, char *err, size_t errlen)
{
    bson_t cmd, reply;
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "count", collection);
    int rc = s_command(self, &cmd, 0, &reply, err, errlen);
    bson_destroy(&cmd);
    if (rc != 0)
        return -1;
    bson_iter_t it;
    *count = bson_iter_init_find(&it, &reply, "n") ? bson_iter_as_int64(&it) : 0;
    bson_destroy(&reply);
    return 0;
}

static int s_ensure_indexes(projector_t *self, char *err, size_t errlen)
{
    size_t count;
    const mongo_index_t *ix = mongo_indexes(&count);
    for (size_t i = 0; i < count; i++) {
        bson_t cmd, reply;
        mongo_index_command(&ix[i], &cmd);
        int rc = s_write(self, &cmd, &reply, err, errlen);
        bson_destroy(&cmd);
        if (rc != 0) {
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, " (createIndexes %s.%s)", ix[i].collection, ix[i].name);
            return -1;
        }
        bson_iter_t it;
        int64_t before = -1, after = -1;
        if (bson_iter_init_find(&it, &reply, "numIndexesBefore"))
            before = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, &reply, "numIndexesAfter"))
            after = bson_iter_as_int64(&it);
        bson_destroy(&reply);
        log_info("mongo.index", "collection=%s index=%s unique=%s result=%s", ix[i].collection, ix[i].name,
                 ix[i].unique ? "yes" : "no", after > before ? "created" : "already_there");
    }
    self->indexes_ok = 1;
    return 0;
}

/* ---- the batch ------------------------------------------------------------------------------ */

/* Re-reads the node's position and aims the reader at the record after it. 0 or -1. */
static int s_load_position(projector_t *self, char *err, size_t errlen)
{
    uint64_t lsn;
    int64_t time_ms;
    if (projector_position(self, &lsn, &time_ms, err, errlen) != 0)
        return -1;
    if (self->loaded && lsn < self->position)
        self->indexes_ok = 0;               /* a MongoDB that lost its data lost its indexes too */
    if (self->loaded && lsn != self->position)
        log_warn("mongo.position_moved", "node=%s was=%" PRIu64 " now=%" PRIu64 " (%s)", self->node,
                 self->position, lsn, lsn < self->position ? "MongoDB lost data: re-projecting" : "moved ahead");
    self->position = lsn;
    self->have_position = 1;
    self->loaded = 1;
    self->n = 0;
    return 0;
}

/* Opens the reader at from if it is not already there. 0 or -1. */
static int s_reader_at(projector_t *self, uint64_t from, char *err, size_t errlen)
{
    if (self->reader && self->reader_next == from)
        return 0;
    journal_reader_destroy(&self->reader);
    self->reader = journal_reader_open(self->journal_dir, from, err, errlen);
    if (!self->reader)
        return -1;
    self->reader_next = from;
    return 0;
}

/* Fills the batch with the records after the position (applying each new one to the registry),
 * up to limit. 0 or -1 (a journal error, an undecodable record, the registry full). */
static int s_fill(projector_t *self, uint64_t limit, char *err, size_t errlen)
{
    uint64_t from = (self->applied < self->position ? self->applied : self->position) + 1;
    if (self->n > 0)
        from = self->batch[self->n - 1].lsn + 1;
    if (from > limit)
        return 0;
    if (s_reader_at(self, from, err, errlen) != 0)
        return -1;
    while (self->n < self->batch_max && self->reader_next <= limit) {
        journal_entry_t e;
        int rc = journal_reader_next(self->reader, &e);
        if (rc == 0)
            break;
        if (rc < 0) {
            snprintf(err, errlen, "%s", journal_reader_error(self->reader));
            journal_reader_destroy(&self->reader);
            return -1;
        }
        record_t *r = &self->batch[self->n].rec;
        char why[160];
        if (record_decode(e.payload, e.len, r, why, sizeof why) != 0) {
            snprintf(err, errlen, "journal record %" PRIu64 " cannot be decoded: %s", e.lsn, why);
            journal_reader_destroy(&self->reader);
            return -1;
        }
        self->reader_next = e.lsn + 1;
        if (e.lsn > self->applied) {
            if (registry_apply(self->registry, r, e.lsn) != 0) {
                snprintf(err, errlen, "the projector's registry is full (KASA_MAX_DEPOSITS)");
                journal_reader_destroy(&self->reader);
                return -1;
            }
            self->applied = e.lsn;
        }
        if (e.lsn > self->position) {
            self->batch[self->n].lsn = e.lsn;
            self->n++;
        }
    }
    return 0;
}

/* Writes the batch, then moves the position. 0, or -1 (the batch is kept for the next try). */
static int s_write_batch(projector_t *self, char *err, size_t errlen)
{
    counts_t c = { 0, 0 };
    for (size_t w = 0; w < sizeof s_writers / sizeof s_writers[0]; w++)
        if (s_write_collection(self, w, &c, err, errlen) != 0)
            return -1;
    const item_t *last = &self->batch[self->n - 1];
    int moved = s_write_position(self, last->lsn, last->rec.time_ms, err, errlen);
    if (moved < 0)
        return -1;
    pthread_mutex_lock(&self->mu);
    self->status.batches++;
    self->status.upserted += (uint64_t) c.upserted;
    self->status.modified += (uint64_t) c.modified;
    pthread_mutex_unlock(&self->mu);
    if (moved == 0) {
        /* MongoDB's position is not the one we wrote: re-read it (data lost, or a rebuild ran) */
        self->have_position = 0;
        self->n = 0;
        return 0;
    }
    log_debug("mongo.batch", "node=%s first=%" PRIu64 " last=%" PRIu64 " records=%d upserted=%" PRId64
              " modified=%" PRId64, self->node, self->batch[0].lsn, last->lsn, self->n, c.upserted, c.modified);
    self->position = last->lsn;
    self->n = 0;
    return 0;
}

/* One step: 1 wrote a batch (or re-read the position), 0 nothing to do, -1 failed (reason in err). */
static int s_step(projector_t *self, uint64_t limit, char *err, size_t errlen)
{
    if (!self->indexes_ok && s_ensure_indexes(self, err, errlen) != 0)
        return -1;
    if (!self->have_position) {
        if (s_load_position(self, err, errlen) != 0)
            return -1;
        return 1;
    }
    if (self->n < self->batch_max && s_fill(self, limit, err, errlen) != 0)
        return -1;
    if (self->n == 0)
        return 0;
    if (s_write_batch(self, err, errlen) != 0)
        return -1;
    return 1;
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void s_report(projector_t *self)
{
    if (!self->on_status)
        return;
    projector_status_t st;
    projector_status(self, &st);
    self->on_status(self->status_arg, &st);
}

/* Waits up to ms, or until stopped, or (seen not NULL) until notified of an LSN other than *seen.
 * Returns 1 when asked to stop. */
static int s_wait(projector_t *self, int64_t ms, const uint64_t *seen)
{
    struct timespec until;
    condvar_deadline(&until, ms);
    pthread_mutex_lock(&self->mu);
    while (!self->stop && (!seen || self->notified == *seen))
        if (pthread_cond_timedwait(&self->cond, &self->mu, &until) == ETIMEDOUT)
            break;
    int stop = self->stop;
    pthread_mutex_unlock(&self->mu);
    return stop;
}

static void *s_thread(void *arg)
{
    projector_t *self = arg;
    int64_t backoff = self->retry_min_ms, last_status = 0, last_lag_log = 0, last_check = s_mono_ms();
    int outage = 0;
    for (;;) {
        uint64_t limit = s_notified(self);
        char err[400] = "";
        int rc = s_step(self, self->follow_notified ? limit : UINT64_MAX, err, sizeof err);
        int64_t now = s_mono_ms();
        s_status_update(self, rc >= 0, err);
        if (rc < 0) {
            if (!outage)
                log_error("mongo.unreachable", "node=%s uri=%s error=\"%s\" (deposits go on; the projection "
                          "catches up when MongoDB is back)", self->node, self->uri_shown, err);
            outage = 1;
            self->indexes_ok = 0;            /* ensured again once back (a restarted server may be empty) */
            s_report(self);
            last_status = now;
            if (s_wait(self, backoff, NULL))   /* a backoff: new records do not cut it short */
                break;
            backoff = backoff * 2 > self->retry_max_ms ? self->retry_max_ms : backoff * 2;
            continue;
        }
        backoff = self->retry_min_ms;
        if (outage) {
            projector_status_t st;
            projector_status(self, &st);
            log_info("mongo.reconnected", "node=%s projected=%" PRIu64 " lag_records=%" PRIu64, self->node,
                     st.projected_lsn, st.lag_records);
            outage = 0;
        }
        projector_status_t st;
        projector_status(self, &st);
        if (st.lag_records > 0 && now - last_lag_log >= LAG_LOG_EVERY_MS) {
            log_info("mongo.lag", "node=%s records=%" PRIu64 " seconds=%" PRId64 ".%01" PRId64, self->node,
                     st.lag_records, st.lag_ms / 1000, (st.lag_ms % 1000) / 100);
            last_lag_log = now;
        }
        if (rc > 0 || now - last_status >= STATUS_EVERY_MS) {
            s_report(self);
            last_status = now;
        }
        if (rc > 0)
            continue;
        if (now - last_check >= self->check_ms) {
            self->have_position = 0;         /* did MongoDB lose what we wrote? */
            last_check = now;
            continue;
        }
        if (s_wait(self, self->check_ms < STATUS_EVERY_MS ? self->check_ms : STATUS_EVERY_MS, &limit))
            break;
        /* Caught up and woken by a commit: let a few more records gather before the next batch, so a
         * steady stream of deposits costs MongoDB one round trip per LINGER_MS, not one per record. */
        if (s_notified(self) != limit && s_wait(self, LINGER_MS, NULL))
            break;
    }
    return NULL;
}

/* ---- public --------------------------------------------------------------------------------- */

projector_t *projector_new(const projector_opts_t *opts, char *err, size_t errlen)
{
    pthread_once(&s_mongoc_once, s_mongoc_init);
    projector_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->cond);
    self->batch_max = opts->batch_records > 0 ? opts->batch_records : DEFAULT_BATCH;
    if (self->batch_max > MAX_BATCH)
        self->batch_max = MAX_BATCH;
    self->retry_min_ms = opts->retry_min_ms > 0 ? opts->retry_min_ms : 200;
    self->retry_max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : 5000;
    self->check_ms = opts->check_ms > 0 ? opts->check_ms : 2000;
    self->follow_notified = opts->follow_notified;
    self->on_status = opts->on_status;
    self->status_arg = opts->status_arg;
    self->uri_text = strdup(opts->uri ? opts->uri : "");
    self->db = strdup(opts->db && opts->db[0] ? opts->db : MONGO_DEFAULT_DB);
    self->node = strdup(opts->node ? opts->node : "");
    self->journal_dir = strdup(opts->journal_dir ? opts->journal_dir : "");
    self->batch = calloc((size_t) self->batch_max, sizeof *self->batch);
    self->registry = registry_new(opts->max_deposits ? opts->max_deposits : 200000);
    if (!self->uri_text || !self->db || !self->node || !self->journal_dir || !self->batch || !self->registry) {
        snprintf(err, errlen, "out of memory");
        projector_destroy(&self);
        return NULL;
    }
    mongo_uri_redact(self->uri_text, self->uri_shown, sizeof self->uri_shown);
    bson_error_t error;
    self->uri = mongoc_uri_new_with_error(self->uri_text, &error);
    if (!self->uri) {
        snprintf(err, errlen, "KASA_MONGO_URI %s is not a valid MongoDB URI", self->uri_shown);
        projector_destroy(&self);
        return NULL;
    }
    /* Fail fast while MongoDB is down (the default waits 30 s per operation); the URI may say otherwise. */
    if (!mongoc_uri_has_option(self->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(self->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
    if (!mongoc_uri_has_option(self->uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(self->uri, MONGOC_URI_CONNECTTIMEOUTMS, 3000);
    self->pool = mongoc_client_pool_new(self->uri);
    if (!self->pool) {
        snprintf(err, errlen, "cannot make a MongoDB client pool for %s", self->uri_shown);
        projector_destroy(&self);
        return NULL;
    }
    mongoc_client_pool_set_error_api(self->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(self->pool, "kasa");
    return self;
}

void projector_destroy(projector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    projector_t *self = *self_p;
    *self_p = NULL;
    if (self->started)
        condvar_stop_join(&self->mu, &self->cond, &self->stop, self->thread);
    journal_reader_destroy(&self->reader);
    if (self->pool)
        mongoc_client_pool_destroy(self->pool);
    if (self->uri)
        mongoc_uri_destroy(self->uri);
    registry_destroy(&self->registry);
    free(self->batch);
    if (self->uri_text) {
        volatile char *p = self->uri_text;    /* it may hold a password */
        for (size_t i = 0; p[i]; i++)
            p[i] = 0;
    }
    free(self->uri_text);
    free(self->db);
    free(self->node);
    free(self->journal_dir);
    pthread_cond_destroy(&self->cond);
    pthread_mutex_destroy(&self->mu);
    free(self);
}

int projector_start(projector_t *self)
{
    log_info("mongo.start", "node=%s db=%s uri=%s batch=%d", self->node, self->db, self->uri_shown, self->batch_max);
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0)
        return -1;
    self->started = 1;
    return 0;
}

void projector_notify(projector_t *self, uint64_t lsn)
{
    pthread_mutex_lock(&self->mu);
    if (lsn > self->notified) {
        self->notified = lsn;
        pthread_cond_signal(&self->cond);
    }
    pthread_mutex_unlock(&self->mu);
}

int projector_sync(projector_t *self, char *err, size_t errlen)
{
    for (;;) {
        int rc = s_step(self, UINT64_MAX, err, errlen);
        s_status_update(self, rc >= 0, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
    }
}

int projector_rebuild(projector_t *self, char *err, size_t errlen)
{
    if (!self->indexes_ok && s_ensure_indexes(self, err, errlen) != 0)
        return -1;
    size_t count;
    const char *const *colls = mongo_collections(&count);
    for (size_t i = 0; i < count; i++) {
        bson_t cmd, deletes, stmt, q, reply;
        bson_init(&cmd);
        BSON_APPEND_UTF8(&cmd, "delete", colls[i]);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "deletes", &deletes);
        BSON_APPEND_DOCUMENT_BEGIN(&deletes, "0", &stmt);
        BSON_APPEND_DOCUMENT_BEGIN(&stmt, "q", &q);
        BSON_APPEND_UTF8(&q, "node", self->node);
        bson_append_document_end(&stmt, &q);
        BSON_APPEND_INT32(&stmt, "limit", 0);
        bson_append_document_end(&deletes, &stmt);
        bson_append_array_end(&cmd, &deletes);
        int rc = s_write(self, &cmd, &reply, err, errlen);
        bson_destroy(&cmd);
        if (rc != 0)
            return -1;
        bson_iter_t it;
        int64_t removed = bson_iter_init_find(&it, &reply, "n") ? bson_iter_as_int64(&it) : 0;
        bson_destroy(&reply);
        log_info("mongo.rebuild_cleared", "node=%s collection=%s removed=%" PRId64, self->node, colls[i], removed);
    }
    self->position = 0;
    self->have_position = 1;
    self->n = 0;
    return projector_sync(self, err, errlen);
}
