/* claims.c — see claims.h. */
#include "actors/claims.h"

#include <czmq.h>
#undef LOG_DEBUG
#undef LOG_INFO
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "actors/desk.h"
#include "actors/mio.h"
#include "actors/stage.h"
#include "schema/log.h"
#include "schema/mongo.h"
#include "schema/withdrawal.h"

#define S_RACE_ROUNDS 3        /* read-decide-write rounds one acquire tries before "ask again later" */
#define S_HELD_MAX 100000      /* claims one node keeps in memory at most (it holds what it works on) */

/* ---- the decisions (pure) ------------------------------------------------------------------------ */

claims_decision_t claims_decide(const claims_doc_t *doc, const char *me, int64_t now_ms)
{
    if (!doc->exists)
        return CLAIMS_FREE;
    if (doc->done)
        return CLAIMS_DONE;
    if (strcmp(doc->node, me) == 0)
        return CLAIMS_MINE;   /* live or not: nobody took it, so renewing on the same epoch is safe */
    return now_ms < doc->lease_until_ms ? CLAIMS_OTHER_LIVE : CLAIMS_EXPIRED;
}

claims_fence_t claims_fence_decide(int renewed, int64_t lease_until_ms, int64_t settle_until_ms, int64_t now_ms,
                                   int64_t guard_ms, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (renewed == 0)
        return CLAIMS_LOST;
    if (now_ms < settle_until_ms) {
        *wait_ms = settle_until_ms - now_ms;
        return CLAIMS_WAIT;
    }
    if (lease_until_ms - now_ms < guard_ms) {
        /* a lease too short to send on: MongoDB did not renew it (or took long to). Look again soon;
         * if it runs out meanwhile another node may take it, and this node then finds it lost. */
        *wait_ms = guard_ms / 2 > 0 ? guard_ms / 2 : 1;
        return CLAIMS_WAIT;
    }
    return CLAIMS_SEND;
}

const char *claims_decision_name(claims_decision_t d)
{
    static const char *const names[] = { "free", "mine", "other_live", "expired", "done" };
    return (unsigned) d < sizeof names / sizeof names[0] ? names[d] : "?";
}

const char *claims_fence_name(claims_fence_t f)
{
    static const char *const names[] = { "send", "wait", "lost" };
    return (unsigned) f < sizeof names / sizeof names[0] ? names[f] : "?";
}

/* ---- the MongoDB side ------------------------------------------------------------------------------ */

typedef enum { S_WORKING, S_LOST, S_RELEASING } s_held_state_t;

/* A claim this node holds (or held and lost, or is releasing). */
typedef struct {
    int32_t epoch;
    int64_t lease_until_ms;    /* this node's clock */
    int64_t settle_until_ms;   /* no send before (0: none) */
    s_held_state_t state;
} s_held_t;

struct claims_t {
    mongoc_client_pool_t *pool;
    char db[64], node[64];
    int64_t lease_ms, settle_ms;
    pthread_mutex_t mu;
    zhashx_t *held;            /* tx_id → s_held_t */
    zhashx_t *noted;           /* tx_id → the last note journaled about another node (strdup'd) */
    atomic_int index_ok;
    pthread_t renewer, commander;
    int renewer_started, commander_started;
    claims_command_fn *cmd_fn;   /* the pipeline's (claims_on_command), NULL: commands are not read */
    void *cmd_arg;
    claims_wd_command_fn *wd_fn; /* the pipeline's for withdrawals (claims_on_wd_command) */
    void *wd_arg;
    atomic_int cmd_index_ok;
    atomic_int lease_index_ok;   /* the named leases' unique index (claims_lease_hold) */
    pthread_mutex_t pass_mu;     /* one command pass at a time: a command running here is never taken again here */
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop;
};

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_guard_ms(const claims_t *self)
{
    return self->lease_ms / 3;
}

static const mongo_index_t s_claims_index = { CLAIMS_COLLECTION, "transaction_id_1", { "transaction_id", NULL }, 1 };

void claims_index_command(bson_t *cmd)
{
    mongo_index_command(&s_claims_index, cmd);
}

/* Runs cmd (a write with write concern majority, or a read). 0 with *reply (destroy it), or -1
 * (logged with why). A reply with writeErrors is 0: the caller reads them. */
static int s_run(claims_t *self, const bson_t *cmd, int write, bson_t *reply, const char *what)
{
    mongoc_client_t *client = mongoc_client_pool_pop(self->pool);
    bson_error_t error;
    bool ok = write ? mio_write_majority(client, self->db, cmd, reply, &error)
                    : mio_read(client, self->db, cmd, reply, &error);
    mongoc_client_pool_push(self->pool, client);
    if (!ok) {
        log_warn("claims.mongo_failed", "node=%s step=%s reason=\"%.200s\"", self->node, what, error.message);
        bson_destroy(reply);
        return -1;
    }
    return 0;
}

/* Ensures a unique index once (before the first write that relies on it; *ok remembers). 0, or -1. */
static int s_index_once(claims_t *self, const mongo_index_t *ix, atomic_int *ok)
{
    bson_error_t error;
    if (mio_indexes_once(self->pool, self->db, ix, 1, ok, &error))
        return 0;
    log_warn("claims.mongo_failed", "node=%s step=createIndexes reason=\"%.200s\"", self->node, error.message);
    return -1;
}

/* Finds the one document of collection whose key is value: 1 with *it on it (destroy *reply after
 * use), 0 none (*reply destroyed), -1 MongoDB did not answer. */
static int s_find_one(claims_t *self, const char *collection, const char *key, const char *value, bson_t *reply,
                      bson_iter_t *it)
{
    bson_t *cmd = BCON_NEW("find", BCON_UTF8(collection), "filter", "{", key, BCON_UTF8(value), "}", "limit",
                           BCON_INT32(1), "singleBatch", BCON_BOOL(true));
    int rc = s_run(self, cmd, 0, reply, "find");
    bson_destroy(cmd);
    if (rc != 0)
        return -1;
    if (bson_iter_init(it, reply) && bson_iter_find_descendant(it, "cursor.firstBatch.0", it) &&
        BSON_ITER_HOLDS_DOCUMENT(it))
        return 1;
    bson_destroy(reply);
    return 0;
}

/* Where a lease document lives: its collection, the field naming it, and its unique index. A claim
 * is one (claims, transaction_id); a named lease another (leases, name): one piece of code reads,
 * inserts and moves both. */
typedef struct {
    const char *collection, *key;
    const mongo_index_t *index;
} s_where_t;

/* Reads the lease doc named key in w into *doc, and its "value" field into *value (when not NULL;
 * 0 if none). 0, or -1. */
static int s_read_in(claims_t *self, const s_where_t *w, const char *key, claims_doc_t *doc, int64_t *value)
{
    memset(doc, 0, sizeof *doc);
    if (value)
        *value = 0;
    bson_t reply;
    bson_iter_t it, d;
    int rc = s_find_one(self, w->collection, w->key, key, &reply, &it);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    if (bson_iter_recurse(&it, &d)) {
        doc->exists = 1;
        while (bson_iter_next(&d)) {
            const char *k = bson_iter_key(&d);
            if (strcmp(k, "node") == 0 && BSON_ITER_HOLDS_UTF8(&d))
                snprintf(doc->node, sizeof doc->node, "%s", bson_iter_utf8(&d, NULL));
            else if (strcmp(k, "epoch") == 0)
                doc->epoch = (int32_t) bson_iter_as_int64(&d);
            else if (strcmp(k, "lease_until_ms") == 0)
                doc->lease_until_ms = bson_iter_as_int64(&d);
            else if (strcmp(k, "state") == 0 && BSON_ITER_HOLDS_UTF8(&d))
                doc->done = strcmp(bson_iter_utf8(&d, NULL), "done") == 0;
            else if (strcmp(k, "value") == 0 && value && BSON_ITER_HOLDS_NUMBER(&d))
                *value = bson_iter_as_int64(&d);
        }
    }
    bson_destroy(&reply);
    return 0;
}

static const s_where_t s_claims_where = { CLAIMS_COLLECTION, "transaction_id", &s_claims_index };

/* Reads tx_id's claim into *doc. 0, or -1. */
static int s_read(claims_t *self, const char *tx_id, claims_doc_t *doc)
{
    return s_read_in(self, &s_claims_where, tx_id, doc, NULL);
}

/* The first write error's code in reply, or 0. */
static int64_t s_write_error(const bson_t *reply)
{
    bson_iter_t it;
    if (bson_iter_init(&it, reply) && bson_iter_find_descendant(&it, "writeErrors.0.code", &it))
        return bson_iter_as_int64(&it);
    return 0;
}

/* Runs the write cmd (majority): the documents it wrote or matched ("n"), *code the first write
 * error's code (0 none); -1 when MongoDB did not answer. */
static int64_t s_write_n(claims_t *self, const bson_t *cmd, const char *what, int64_t *code)
{
    bson_t reply;
    if (s_run(self, cmd, 1, &reply, what) != 0)
        return -1;
    *code = s_write_error(&reply);
    bson_iter_t it;
    int64_t n = bson_iter_init_find(&it, &reply, "n") ? bson_iter_as_int64(&it) : 0;
    bson_destroy(&reply);
    return n;
}

/* Inserts the first lease doc named key in w (epoch 1; value stored when >= 0), its unique index
 * ensured first (*index_ok). 1 inserted, 0 one exists already (duplicate key), -1. */
static int s_insert_in(claims_t *self, const s_where_t *w, atomic_int *index_ok, const char *key,
                       int64_t lease_until_ms, int64_t value)
{
    if (s_index_once(self, w->index, index_ok) != 0)
        return -1;   /* never insert without the unique index: two nodes could both "win" */
    bson_t *cmd = BCON_NEW("insert", BCON_UTF8(w->collection));
    bson_t docs, doc;
    BSON_APPEND_ARRAY_BEGIN(cmd, "documents", &docs);
    BSON_APPEND_DOCUMENT_BEGIN(&docs, "0", &doc);
    BSON_APPEND_UTF8(&doc, w->key, key);
    if (strcmp(w->collection, CLAIMS_COLLECTION) == 0)   /* a deposit's claim or a withdrawal's */
        BSON_APPEND_UTF8(&doc, "kind", withdrawal_id_valid(key) ? "withdrawal" : "deposit");
    BSON_APPEND_UTF8(&doc, "node", self->node);
    BSON_APPEND_INT32(&doc, "epoch", 1);
    BSON_APPEND_INT64(&doc, "lease_until_ms", lease_until_ms);
    BSON_APPEND_UTF8(&doc, "state", "working");
    if (value >= 0)
        BSON_APPEND_INT64(&doc, "value", value);
    BSON_APPEND_DATE_TIME(&doc, "updated", s_wall_ms());
    bson_append_document_end(&docs, &doc);
    bson_append_array_end(cmd, &docs);
    int64_t code = 0;
    int64_t n = s_write_n(self, cmd, "insert", &code);
    bson_destroy(cmd);
    if (code == MONGO_DUPLICATE_KEY)
        return 0;
    if (n < 0 || code != 0 || n != 1) {
        if (n >= 0)
            log_warn("claims.mongo_failed", "node=%s %s=%s step=insert code=%lld", self->node, w->key, key,
                     (long long) code);
        return -1;
    }
    return 1;
}

/* Inserts tx_id's first claim (epoch 1). 1 inserted, 0 a claim exists already (duplicate key), -1. */
static int s_insert(claims_t *self, const char *tx_id, int64_t lease_until_ms)
{
    return s_insert_in(self, &s_claims_where, &self->index_ok, tx_id, lease_until_ms, -1);
}

/* The conditional update every change of a lease doc is: where the doc named key in w is on old_epoch
 * held by old_node and working, set node = this node, epoch = new_epoch, lease_until_ms, state (and
 * value when >= 0). 1 it matched (and was applied), 0 it matched nothing (someone else changed it), -1. */
static int s_cas_in(claims_t *self, const s_where_t *w, const char *key, int32_t old_epoch, const char *old_node,
                    int32_t new_epoch, int64_t lease_until_ms, const char *state, int64_t value)
{
    bson_t *cmd = BCON_NEW("update", BCON_UTF8(w->collection));
    bson_t ups, up, q, u, set;
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", &ups);
    BSON_APPEND_DOCUMENT_BEGIN(&ups, "0", &up);
    BSON_APPEND_DOCUMENT_BEGIN(&up, "q", &q);
    BSON_APPEND_UTF8(&q, w->key, key);
    BSON_APPEND_INT32(&q, "epoch", old_epoch);
    BSON_APPEND_UTF8(&q, "node", old_node);
    BSON_APPEND_UTF8(&q, "state", "working");
    bson_append_document_end(&up, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&up, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    BSON_APPEND_UTF8(&set, "node", self->node);
    BSON_APPEND_INT32(&set, "epoch", new_epoch);
    BSON_APPEND_INT64(&set, "lease_until_ms", lease_until_ms);
    BSON_APPEND_UTF8(&set, "state", state);
    if (value >= 0)
        BSON_APPEND_INT64(&set, "value", value);
    BSON_APPEND_DATE_TIME(&set, "updated", s_wall_ms());
    bson_append_document_end(&u, &set);
    bson_append_document_end(&up, &u);
    bson_append_document_end(&ups, &up);
    bson_append_array_end(cmd, &ups);
    int64_t code = 0;
    int64_t n = s_write_n(self, cmd, "update", &code);
    bson_destroy(cmd);
    if (n < 0)
        return -1;
    if (code != 0) {
        log_warn("claims.mongo_failed", "node=%s %s=%s step=update code=%lld", self->node, w->key, key,
                 (long long) code);
        return -1;
    }
    return n > 0 ? 1 : 0;
}

/* s_cas_in on tx_id's claim. */
static int s_cas(claims_t *self, const char *tx_id, int32_t old_epoch, const char *old_node, int32_t new_epoch,
                 int64_t lease_until_ms, const char *state)
{
    return s_cas_in(self, &s_claims_where, tx_id, old_epoch, old_node, new_epoch, lease_until_ms, state, -1);
}

/* Records in memory that this node holds tx_id on epoch until lease_until_ms (settle: no send before). */
static void s_hold(claims_t *self, const char *tx_id, int32_t epoch, int64_t lease_until_ms, int64_t settle_until_ms)
{
    pthread_mutex_lock(&self->mu);
    s_held_t *h = zhashx_lookup(self->held, tx_id);
    if (!h && zhashx_size(self->held) < S_HELD_MAX) {
        h = calloc(1, sizeof *h);
        if (h && zhashx_insert(self->held, tx_id, h) != 0) {
            free(h);
            h = NULL;
        }
    }
    if (h) {
        if (h->epoch != epoch)
            h->settle_until_ms = settle_until_ms;
        else if (settle_until_ms > h->settle_until_ms)
            h->settle_until_ms = settle_until_ms;
        h->epoch = epoch;
        h->lease_until_ms = lease_until_ms;
        h->state = S_WORKING;
    }
    pthread_mutex_unlock(&self->mu);
}

/* A copy of tx_id's entry; 0, or -1 when this node keeps none. */
static int s_held_get(claims_t *self, const char *tx_id, s_held_t *out)
{
    pthread_mutex_lock(&self->mu);
    s_held_t *h = zhashx_lookup(self->held, tx_id);
    if (h)
        *out = *h;
    pthread_mutex_unlock(&self->mu);
    return h ? 0 : -1;
}

static void s_held_set(claims_t *self, const char *tx_id, int32_t epoch, s_held_state_t state, int64_t lease_until_ms)
{
    pthread_mutex_lock(&self->mu);
    s_held_t *h = zhashx_lookup(self->held, tx_id);
    if (h && h->epoch == epoch) {
        h->state = state;
        if (lease_until_ms)
            h->lease_until_ms = lease_until_ms;
    }
    pthread_mutex_unlock(&self->mu);
}

static void s_held_drop(claims_t *self, const char *tx_id, int32_t epoch)
{
    pthread_mutex_lock(&self->mu);
    s_held_t *h = zhashx_lookup(self->held, tx_id);
    if (h && h->epoch == epoch)
        zhashx_delete(self->held, tx_id);
    pthread_mutex_unlock(&self->mu);
}

claims_result_t claims_acquire(claims_t *self, const char *tx_id, int fresh, char holder[64])
{
    holder[0] = '\0';
    for (int round = 0; round < S_RACE_ROUNDS; round++) {
        claims_doc_t doc;
        if (s_read(self, tx_id, &doc) != 0)
            return CLAIMS_UNREACHABLE;
        int64_t now = s_wall_ms();
        int64_t lease_until = now + self->lease_ms;   /* measured from before the write: never later than MongoDB's */
        claims_decision_t d = claims_decide(&doc, self->node, now);
        int rc;
        switch (d) {
        case CLAIMS_FREE:
            rc = s_insert(self, tx_id, lease_until);
            if (rc < 0)
                return CLAIMS_UNREACHABLE;
            if (rc == 0)
                continue;   /* another node inserted first: read it */
            s_hold(self, tx_id, 1, lease_until, fresh ? 0 : now + self->settle_ms);
            log_info("claims.claimed", "tx=%s node=%s epoch=1 lease_ms=%lld", tx_id, self->node,
                     (long long) self->lease_ms);
            return CLAIMS_HELD;
        case CLAIMS_MINE: {
            s_held_t h;
            int known = s_held_get(self, tx_id, &h) == 0 && h.epoch == doc.epoch && h.state != S_LOST;
            rc = s_cas(self, tx_id, doc.epoch, self->node, doc.epoch, lease_until, "working");
            if (rc < 0)
                return CLAIMS_UNREACHABLE;
            if (rc == 0)
                continue;
            /* held before a restart: a claim that was ever taken over, or one the crediter finds,
             * waits a settle time (this node may not remember what it sent on it) */
            s_hold(self, tx_id, doc.epoch, lease_until, known || (fresh && doc.epoch == 1) ? 0 : now + self->settle_ms);
            return CLAIMS_HELD;
        }
        case CLAIMS_OTHER_LIVE:
            snprintf(holder, 64, "%s", doc.node);
            return CLAIMS_HELD_ELSEWHERE;
        case CLAIMS_EXPIRED:
            rc = s_cas(self, tx_id, doc.epoch, doc.node, doc.epoch + 1, lease_until, "working");
            if (rc < 0)
                return CLAIMS_UNREACHABLE;
            if (rc == 0)
                continue;   /* another node took it first (or its holder renewed): read again */
            /* the old holder may have a balance call in flight that MT5 executes late: no send here
             * before a settle time, searching by reference meanwhile (claims.h) */
            s_hold(self, tx_id, doc.epoch + 1, lease_until, now + self->settle_ms);
            log_warn("claims.taken_over", "tx=%s node=%s from=%s epoch=%d lease_ended_ms_ago=%lld settle_ms=%lld",
                     tx_id, self->node, doc.node, doc.epoch + 1, (long long) (now - doc.lease_until_ms),
                     (long long) self->settle_ms);
            return CLAIMS_HELD;
        case CLAIMS_DONE:
            snprintf(holder, 64, "%s", doc.node);
            return CLAIMS_FINAL;
        }
    }
    return CLAIMS_UNREACHABLE;
}

claims_fence_t claims_fence(claims_t *self, const char *tx_id, int64_t *wait_ms, char holder[64])
{
    holder[0] = '\0';
    s_held_t h;
    if (s_held_get(self, tx_id, &h) != 0 || h.state == S_LOST) {
        /* not held in memory (a restart), or lost earlier: ask MongoDB afresh */
        claims_result_t r = claims_acquire(self, tx_id, 0, holder);
        if (r == CLAIMS_UNREACHABLE) {
            *wait_ms = s_guard_ms(self);
            return CLAIMS_WAIT;
        }
        if (r != CLAIMS_HELD)
            return CLAIMS_LOST;
        if (s_held_get(self, tx_id, &h) != 0) {
            *wait_ms = s_guard_ms(self);
            return CLAIMS_WAIT;
        }
        return claims_fence_decide(1, h.lease_until_ms, h.settle_until_ms, s_wall_ms(), s_guard_ms(self), wait_ms);
    }
    int64_t lease_until = s_wall_ms() + self->lease_ms;
    int renewed = s_cas(self, tx_id, h.epoch, self->node, h.epoch, lease_until, "working");
    if (renewed == 1)
        h.lease_until_ms = lease_until;
    claims_fence_t f = claims_fence_decide(renewed, h.lease_until_ms, h.settle_until_ms, s_wall_ms(),
                                           s_guard_ms(self), wait_ms);
    if (f == CLAIMS_LOST) {
        s_held_set(self, tx_id, h.epoch, S_LOST, 0);
        claims_doc_t doc;
        if (s_read(self, tx_id, &doc) == 0 && doc.exists)
            snprintf(holder, 64, "%s", doc.node);
        log_warn("claims.lost", "tx=%s node=%s epoch=%d holder=%s next=\"never send on it\"", tx_id, self->node,
                 h.epoch, holder[0] ? holder : "?");
    } else if (renewed == 1) {
        s_held_set(self, tx_id, h.epoch, S_WORKING, lease_until);
    }
    return f;
}

int claims_may_send(claims_t *self, const char *tx_id)
{
    s_held_t h;
    if (s_held_get(self, tx_id, &h) != 0 || h.state != S_WORKING)
        return 0;
    int64_t now = s_wall_ms();
    return now >= h.settle_until_ms && h.lease_until_ms - now >= s_guard_ms(self);
}

int32_t claims_epoch(claims_t *self, const char *tx_id)
{
    s_held_t h;
    return s_held_get(self, tx_id, &h) == 0 && h.state == S_WORKING ? h.epoch : 0;
}

int claims_read(claims_t *self, const char *tx_id, claims_doc_t *doc)
{
    return s_read(self, tx_id, doc);
}

/* Writes tx_id's release (done, lease 0) on epoch. 1 done (or lost: nothing to release), 0 retry later. */
static int s_release(claims_t *self, const char *tx_id, int32_t epoch)
{
    int rc = s_cas(self, tx_id, epoch, self->node, epoch, 0, "done");
    if (rc < 0)
        return 0;
    if (rc == 1)
        log_info("claims.released", "tx=%s node=%s epoch=%d", tx_id, self->node, epoch);
    s_held_drop(self, tx_id, epoch);
    return 1;
}

void claims_release(claims_t *self, const char *tx_id)
{
    s_held_t h;
    if (s_held_get(self, tx_id, &h) != 0)
        return;
    if (h.state == S_LOST) {
        s_held_drop(self, tx_id, h.epoch);
        return;
    }
    s_held_set(self, tx_id, h.epoch, S_RELEASING, 0);
    s_release(self, tx_id, h.epoch);
}

/* One pass of the renewal thread: every working claim renewed on its epoch (a lost one marked),
 * every release not yet written tried again. MongoDB calls are made outside the lock. */
static void s_renew_all(claims_t *self)
{
    pthread_mutex_lock(&self->mu);
    size_t n = zhashx_size(self->held), i = 0;
    char (*txs)[80] = n ? calloc(n, sizeof *txs) : NULL;
    s_held_t *hs = n ? calloc(n, sizeof *hs) : NULL;
    if (txs && hs)
        for (s_held_t *h = zhashx_first(self->held); h && i < n; h = zhashx_next(self->held)) {
            snprintf(txs[i], sizeof txs[i], "%s", (const char *) zhashx_cursor(self->held));
            hs[i++] = *h;
        }
    pthread_mutex_unlock(&self->mu);
    for (size_t k = 0; k < i; k++) {
        if (hs[k].state == S_RELEASING) {
            s_release(self, txs[k], hs[k].epoch);
            continue;
        }
        if (hs[k].state != S_WORKING)
            continue;
        int64_t lease_until = s_wall_ms() + self->lease_ms;
        int rc = s_cas(self, txs[k], hs[k].epoch, self->node, hs[k].epoch, lease_until, "working");
        if (rc == 1) {
            s_held_set(self, txs[k], hs[k].epoch, S_WORKING, lease_until);
        } else if (rc == 0) {
            s_held_set(self, txs[k], hs[k].epoch, S_LOST, 0);
            log_warn("claims.lost", "tx=%s node=%s epoch=%d next=\"never send on it\"", txs[k], self->node,
                     hs[k].epoch);
        }
    }
    free(txs);
    free(hs);
}

/* Runs pass every lease/3 until claims_destroy. */
static void s_periodic(claims_t *self, void (*pass)(claims_t *))
{
    int64_t period_ms = self->lease_ms / 3 > 0 ? self->lease_ms / 3 : 1;
    pthread_mutex_lock(&self->stop_mu);
    while (!self->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (period_ms % 1000) * 1000000;
        until.tv_sec += period_ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&self->stop_cv, &self->stop_mu, &until);
        if (self->stop)
            break;
        pthread_mutex_unlock(&self->stop_mu);
        pass(self);
        pthread_mutex_lock(&self->stop_mu);
    }
    pthread_mutex_unlock(&self->stop_mu);
}

static void *s_renewer(void *arg)
{
    s_periodic(arg, s_renew_all);
    return NULL;
}

static void s_commands_pass(claims_t *self)
{
    claims_commands_run(self);
}

/* The command thread: its own, so that an action that asks MT5 (up to its timeout) never delays a
 * renewal. */
static void *s_commander(void *arg)
{
    s_periodic(arg, s_commands_pass);
    return NULL;
}

static void s_free_held(void **item)
{
    free(*item);
    *item = NULL;
}

claims_t *claims_new(const config_t *cfg, int64_t settle_ms, char *err, size_t errlen)
{
    claims_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "claims: no memory");
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    pthread_mutex_init(&self->pass_mu, NULL);
    pthread_mutex_init(&self->stop_mu, NULL);
    pthread_cond_init(&self->stop_cv, NULL);
    snprintf(self->db, sizeof self->db, "%s", cfg->mongo_db[0] ? cfg->mongo_db : MONGO_DEFAULT_DB);
    snprintf(self->node, sizeof self->node, "%s", cfg->node_id);
    self->lease_ms = cfg->claim_lease_ms > 0 ? cfg->claim_lease_ms : CONFIG_DEFAULT_CLAIM_LEASE_MS;
    self->settle_ms = settle_ms;
    self->held = zhashx_new();
    self->noted = zhashx_new();
    /* a MongoDB that stops answering must not hold a locker or crediter for libmongoc's default
     * five minutes: no wait longer than the guard (lease/3), unless the URI says otherwise */
    char why[120] = "no memory";
    if (self->node[0])
        self->pool = mio_pool_new(cfg->mongo_uri, (int) (self->lease_ms / 3), "kasa-claims", why, sizeof why);
    if (!self->held || !self->noted || !self->pool || !self->node[0]) {
        snprintf(err, errlen, "claims: %s", !self->node[0] ? "no node id (KASA_NODE_ID)" : why);
        claims_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->held, s_free_held);
    zhashx_set_destructor(self->noted, s_free_held);
    if (pthread_create(&self->renewer, NULL, s_renewer, self) != 0) {
        snprintf(err, errlen, "claims: cannot start the renewal thread");
        claims_destroy(&self);
        return NULL;
    }
    self->renewer_started = 1;
    if (pthread_create(&self->commander, NULL, s_commander, self) != 0) {
        snprintf(err, errlen, "claims: cannot start the command thread");
        claims_destroy(&self);
        return NULL;
    }
    self->commander_started = 1;
    return self;
}

void claims_destroy(claims_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    claims_t *self = *self_p;
    pthread_mutex_lock(&self->stop_mu);
    self->stop = 1;
    pthread_cond_broadcast(&self->stop_cv);
    pthread_mutex_unlock(&self->stop_mu);
    if (self->renewer_started)
        pthread_join(self->renewer, NULL);
    if (self->commander_started)
        pthread_join(self->commander, NULL);
    if (self->pool)
        mongoc_client_pool_destroy(self->pool);
    zhashx_destroy(&self->held);
    zhashx_destroy(&self->noted);
    pthread_cond_destroy(&self->stop_cv);
    pthread_mutex_destroy(&self->stop_mu);
    pthread_mutex_destroy(&self->pass_mu);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

const char *claims_node(const claims_t *self)
{
    return self->node;
}

int64_t claims_lease_ms(const claims_t *self)
{
    return self->lease_ms;
}

size_t claims_held_count(claims_t *self)
{
    pthread_mutex_lock(&self->mu);
    size_t n = zhashx_size(self->held);
    pthread_mutex_unlock(&self->mu);
    return n;
}

/* ---- the credited notice, once across nodes ----------------------------------------------------- */

int claims_notice_take(claims_t *self, const char *tx_id, char by[64])
{
    by[0] = '\0';
    bson_t *cmd = BCON_NEW("update", BCON_UTF8(CLAIMS_COLLECTION), "updates", "[", "{",
                           "q", "{", "transaction_id", BCON_UTF8(tx_id), "notified", "{", "$in", "[", BCON_NULL,
                           BCON_UTF8(self->node), "]", "}", "}",
                           "u", "{", "$set", "{", "notified", BCON_UTF8(self->node), "}", "}", "}", "]");
    int64_t code = 0;
    int64_t n = s_write_n(self, cmd, "notice", &code);
    bson_destroy(cmd);
    if (n < 0 || code != 0)
        return -1;
    if (n > 0)
        return 1;
    /* matched nothing: another node's mark, or no claim at all */
    bson_t reply;
    bson_iter_t it, f;
    int rc = s_find_one(self, CLAIMS_COLLECTION, "transaction_id", tx_id, &reply, &it);
    if (rc <= 0)
        return rc < 0 ? -1 : 1;
    if (bson_iter_recurse(&it, &f) && bson_iter_find(&f, "notified") && BSON_ITER_HOLDS_UTF8(&f))
        snprintf(by, 64, "%s", bson_iter_utf8(&f, NULL));
    bson_destroy(&reply);
    if (!by[0] || strcmp(by, self->node) == 0)
        return -1;   /* changed between the two calls: ask again */
    return 0;
}

/* ---- commands: a person's action on a deposit another node holds --------------------------------- */

void claims_on_command(claims_t *self, claims_command_fn *fn, void *arg)
{
    self->cmd_arg = arg;
    self->cmd_fn = fn;
}

void claims_on_wd_command(claims_t *self, claims_wd_command_fn *fn, void *arg)
{
    self->wd_arg = arg;
    self->wd_fn = fn;
}

/* Ensures the commands' unique index once. 0, or -1. */
static int s_commands_index(claims_t *self)
{
    static const mongo_index_t ix = { CLAIMS_COMMANDS_COLLECTION, "transaction_id_1_command_id_1",
                                      { "transaction_id", "command_id", NULL }, 1 };
    return s_index_once(self, &ix, &self->cmd_index_ok);
}

/* One command as submitted: an action by name on tx_id (a deposit's or a withdrawal's). */
typedef struct {
    const char *tx_id, *action, *actor, *origin, *reason;
    int64_t login;
} s_submit_t;

static int s_submit(claims_t *self, const s_submit_t *req, char id[33], char *msg, size_t msglen);

int claims_command_submit(claims_t *self, const desk_request_t *req, char id[33], char *msg, size_t msglen)
{
    s_submit_t s = { req->tx_id, desk_action_name(req->action), req->actor, req->origin, req->reason,
                     (int64_t) req->login };
    return s_submit(self, &s, id, msg, msglen);
}

int claims_wd_command_submit(claims_t *self, const char *wd_id, const char *action, const char *actor,
                             const char *origin, const char *reason, char id[33], char *msg, size_t msglen)
{
    s_submit_t s = { wd_id, action, actor, origin, reason, 0 };
    return s_submit(self, &s, id, msg, msglen);
}

static int s_submit(claims_t *self, const s_submit_t *req, char id[33], char *msg, size_t msglen)
{
    id[0] = '\0';
    const char *what = withdrawal_id_valid(req->tx_id) ? "withdrawal" : "deposit";
    s_held_t h;
    if (s_held_get(self, req->tx_id, &h) == 0 && h.state == S_WORKING)
        return CLAIMS_ROUTE_LOCAL;
    claims_doc_t doc;
    if (s_read(self, req->tx_id, &doc) != 0) {
        snprintf(msg, msglen, "cannot ask MongoDB which node holds the %s: nothing was done, try again", what);
        return -1;
    }
    claims_decision_t d = claims_decide(&doc, self->node, s_wall_ms());
    if (d == CLAIMS_FREE || d == CLAIMS_MINE)
        return CLAIMS_ROUTE_LOCAL;
    if (d == CLAIMS_DONE) {
        snprintf(msg, msglen, "node %s finished the %s already: nothing to do", doc.node, what);
        return -1;
    }
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd) {
        snprintf(msg, msglen, "no random bytes for a command id: nothing was done");
        return -1;
    }
    for (int i = 0; i < 16; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    if (s_commands_index(self) != 0) {
        snprintf(msg, msglen, "cannot write the command to MongoDB: nothing was done, try again");
        return -1;
    }
    int64_t now = s_wall_ms();
    bson_t *cmd = BCON_NEW("insert", BCON_UTF8(CLAIMS_COMMANDS_COLLECTION), "documents", "[", "{",
                           "transaction_id", BCON_UTF8(req->tx_id), "command_id", BCON_UTF8(id),
                           "action", BCON_UTF8(req->action), "login", BCON_INT64(req->login),
                           "actor", BCON_UTF8(req->actor ? req->actor : ""), "origin",
                           BCON_UTF8(req->origin ? req->origin : ""), "reason", BCON_UTF8(req->reason ? req->reason : ""),
                           "from_node", BCON_UTF8(self->node), "state", BCON_UTF8("pending"), "node", BCON_UTF8(""),
                           "epoch", BCON_INT32(0), "ok", BCON_BOOL(false), "result", BCON_UTF8(""),
                           "created", BCON_DATE_TIME(now), "updated", BCON_DATE_TIME(now), "}", "]");
    int64_t code = 0;
    int64_t n = s_write_n(self, cmd, "command", &code);
    bson_destroy(cmd);
    if (n != 1 || code != 0) {
        snprintf(msg, msglen, "cannot write the command to MongoDB: nothing was done, try again");
        return -1;
    }
    if (d == CLAIMS_OTHER_LIVE)
        snprintf(msg, msglen, "accepted: carried out by node %s (command %s)", doc.node, id);
    else
        snprintf(msg, msglen, "accepted: node %s's lease ran out; carried out by the node that takes the %s "
                 "over (command %s)", doc.node, what, id);
    log_info("claims.command_sent", "tx=%s node=%s holder=%s command=%s action=%s actor=%s", req->tx_id, self->node,
             doc.node, id, req->action, req->actor ? req->actor : "");
    return CLAIMS_ROUTE_SENT;
}

int claims_command_get(claims_t *self, const char *id, claims_command_t *out)
{
    memset(out, 0, sizeof *out);
    bson_t reply;
    bson_iter_t it, d;
    int rc = s_find_one(self, CLAIMS_COMMANDS_COLLECTION, "command_id", id, &reply, &it);
    if (rc <= 0)
        return rc;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    bson_t doc;
    if (bson_init_static(&doc, data, len)) {
        mio_str(&doc, "transaction_id", out->tx_id, sizeof out->tx_id);
        mio_str(&doc, "action", out->action, sizeof out->action);
        mio_str(&doc, "state", out->state, sizeof out->state);
        mio_str(&doc, "node", out->node, sizeof out->node);
        mio_str(&doc, "from_node", out->from_node, sizeof out->from_node);
        mio_str(&doc, "result", out->result, sizeof out->result);
        out->ok = bson_iter_init_find(&d, &doc, "ok") && bson_iter_as_bool(&d);
    }
    bson_destroy(&reply);
    return 1;
}

/* One command as read. */
typedef struct {
    char tx_id[80], id[40], action[16], actor[64], origin[64], reason[160], from_node[64], state[16], node[64];
    int64_t login;
    int32_t epoch;
    int64_t updated_ms;
} s_command_t;

/* Moves command c from what was read (state, node, epoch) to state on this node's epoch, with ok and
 * result when done. 1 it matched, 0 another node changed it first, -1. */
static int s_command_move(claims_t *self, const s_command_t *c, const char *from_state, const char *from_node,
                          int32_t from_epoch, const char *state, int32_t epoch, int ok, const char *result)
{
    bson_t *cmd = BCON_NEW("update", BCON_UTF8(CLAIMS_COMMANDS_COLLECTION), "updates", "[", "{",
                           "q", "{", "transaction_id", BCON_UTF8(c->tx_id), "command_id", BCON_UTF8(c->id),
                           "state", BCON_UTF8(from_state), "node", BCON_UTF8(from_node), "epoch", BCON_INT32(from_epoch),
                           "}", "u", "{", "$set", "{", "state", BCON_UTF8(state), "node", BCON_UTF8(self->node),
                           "epoch", BCON_INT32(epoch), "ok", BCON_BOOL(ok != 0), "result", BCON_UTF8(result),
                           "updated", BCON_DATE_TIME(s_wall_ms()), "}", "}", "}", "]");
    int64_t code = 0;
    int64_t n = s_write_n(self, cmd, "command", &code);
    bson_destroy(cmd);
    if (n < 0 || code != 0)
        return -1;
    return n > 0 ? 1 : 0;
}

/* Carries out c on this node's claim of epoch: taken (conditional on what was read), handed to the
 * pipeline, marked done with its outcome (or back to pending when the deposit is not ready here). 1 if
 * done now. */
static int s_command_carry(claims_t *self, const s_command_t *c, int32_t epoch)
{
    if (s_command_move(self, c, c->state, c->node, c->epoch, "running", epoch, 0, "") != 1)
        return 0;   /* another node took it, or MongoDB did not answer: the next pass reads it again */
    int wd = withdrawal_id_valid(c->tx_id);
    int action = wd ? 0 : desk_action_from_name(c->action);
    char origin[64], err[256] = "", result[300], reason[DESK_COMMAND_REASON];
    snprintf(origin, sizeof origin, "node:%.20s %.36s", c->from_node, c->origin);
    /* the record names the command: a node that journaled it and died before marking it done
     * finds it there and says what it did, instead of doing it again (desk_journaled) */
    desk_command_reason(c->reason, c->id, reason, sizeof reason);
    desk_request_t req = { c->tx_id, (desk_action_t) (action < 0 ? 0 : action), (uint64_t) c->login, c->actor, origin,
                           reason };
    int rc = -1;
    if (wd && self->wd_fn)
        rc = self->wd_fn(self->wd_arg, c->tx_id, c->action, c->actor, origin, c->reason, err, sizeof err);
    else if (wd || action < 0)
        snprintf(err, sizeof err, "unknown action %s", c->action);
    else
        rc = self->cmd_fn(self->cmd_arg, &req, err, sizeof err);
    if (rc == 2) {   /* not where the action applies yet: pending again for the next pass */
        s_command_move(self, c, "running", self->node, epoch, "pending", 0, 0, "");
        return 0;
    }
    if (rc >= 0) {
        char what[200];
        if (wd)
            snprintf(what, sizeof what, "%s of withdrawal %s%s", c->action, c->tx_id,
                     rc == 1 ? " noted: another approver must approve too" : "");
        else
            desk_describe((desk_action_t) action, rc == 1, c->tx_id, (uint64_t) c->login, what, sizeof what);
        snprintf(result, sizeof result, "carried out by node %s: %s", self->node, what);
    } else {
        snprintf(result, sizeof result, "refused by node %s: %.200s", self->node, err);
    }
    int moved = s_command_move(self, c, "running", self->node, epoch, "done", epoch, rc >= 0, result);
    log_info("claims.command_done", "tx=%s node=%s command=%s action=%s actor=%s from=%s ok=%d marked=%d result=\"%s\"",
             c->tx_id, self->node, c->id, c->action, c->actor, c->from_node, rc >= 0, moved, result);
    return moved == 1;
}

static int s_commands_run(claims_t *self);

int claims_commands_run(claims_t *self)
{
    if (!self->cmd_fn)
        return 0;
    /* a pass takes back a command left running on this node (its runner died before marking it
     * done): never one a concurrent pass of this node is carrying out right now */
    pthread_mutex_lock(&self->pass_mu);
    int done = s_commands_run(self);
    pthread_mutex_unlock(&self->pass_mu);
    return done;
}

static int s_commands_run(claims_t *self)
{
    bson_t *cmd = BCON_NEW("find", BCON_UTF8(CLAIMS_COMMANDS_COLLECTION), "filter", "{", "state", "{", "$in", "[",
                           BCON_UTF8("pending"), BCON_UTF8("running"), "]", "}", "}", "sort", "{", "created",
                           BCON_INT32(1), "}", "limit", BCON_INT32(100), "singleBatch", BCON_BOOL(true));
    bson_t reply;
    int rc = s_run(self, cmd, 0, &reply, "find");
    bson_destroy(cmd);
    if (rc != 0)
        return 0;
    s_command_t *mine = NULL;
    size_t n = 0;
    bson_iter_t it, arr;
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch", &it) &&
        BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
                continue;
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&arr, &len, &data);
            bson_t doc;
            if (!bson_init_static(&doc, data, len))
                continue;
            s_command_t c;
            memset(&c, 0, sizeof c);
            mio_str(&doc, "transaction_id", c.tx_id, sizeof c.tx_id);
            mio_str(&doc, "state", c.state, sizeof c.state);
            mio_str(&doc, "command_id", c.id, sizeof c.id);
            mio_str(&doc, "action", c.action, sizeof c.action);
            mio_str(&doc, "actor", c.actor, sizeof c.actor);
            mio_str(&doc, "origin", c.origin, sizeof c.origin);
            mio_str(&doc, "reason", c.reason, sizeof c.reason);
            mio_str(&doc, "from_node", c.from_node, sizeof c.from_node);
            mio_str(&doc, "node", c.node, sizeof c.node);
            c.login = mio_int64(&doc, "login");
            c.epoch = (int32_t) mio_int64(&doc, "epoch");
            bson_iter_t u;
            c.updated_ms = bson_iter_init_find(&u, &doc, "updated") && BSON_ITER_HOLDS_DATE_TIME(&u)
                               ? bson_iter_date_time(&u) : 0;
            s_command_t *grown = realloc(mine, (n + 1) * sizeof *mine);
            if (!grown)
                break;
            mine = grown;
            mine[n++] = c;
        }
    }
    bson_destroy(&reply);
    int done = 0;
    for (size_t k = 0; k < n; k++) {
        s_held_t h;
        if (s_held_get(self, mine[k].tx_id, &h) == 0 && h.state == S_WORKING) {
            done += s_command_carry(self, &mine[k], h.epoch);
            continue;
        }
        /* a claim released final: nothing more will be done on the deposit, so every command on it
         * is closed. Pending: nobody carried it out (refused). Running on this node (it died after
         * taking it, and came back): carried again, so its journal says what it did, or the desk
         * refuses it now. Running on another node: left to it for a lease (it may be marking it
         * done right now), then closed, saying the outcome is in that node's history. A running
         * command whose claim is held by another node is that node's business. */
        claims_doc_t d;
        int pending = strcmp(mine[k].state, "pending") == 0;
        if (s_read(self, mine[k].tx_id, &d) != 0 || !d.exists || !d.done)
            continue;
        if (!pending && strcmp(mine[k].node, self->node) == 0) {
            done += s_command_carry(self, &mine[k], mine[k].epoch);
            continue;
        }
        if (!pending && s_wall_ms() - mine[k].updated_ms < self->lease_ms)
            continue;
        char result[300];
        const char *what = withdrawal_id_valid(mine[k].tx_id) ? "withdrawal" : "deposit";
        if (pending)
            snprintf(result, sizeof result, "refused: node %s finished the %s before the command was carried out",
                     d.node, what);
        else
            snprintf(result, sizeof result, "closed by node %s: node %s finished the %s while node %s was "
                     "carrying the command out, and %s never said whether it did (its %s history tells)",
                     self->node, d.node, what, mine[k].node, mine[k].node, what);
        if (s_command_move(self, &mine[k], mine[k].state, mine[k].node, mine[k].epoch, "done", mine[k].epoch, 0,
                           result) == 1) {
            log_info("claims.command_done", "tx=%s node=%s command=%s action=%s ok=0 result=\"%s\"", mine[k].tx_id,
                     self->node, mine[k].id, mine[k].action, result);
            done++;
        }
    }
    free(mine);
    return done;
}

/* ---- the stages' steps ----------------------------------------------------------------------------- */

/* Journals, once per holder and outcome, that another node holds tx_id (a RECORD_ADMIN_ACTION by
 * "kasa:cluster", action "claim": a note in the deposit's history that changes nothing). */
static void s_note(const stage_ctx_t *ctx, const char *tx_id, const char *what, const char *holder)
{
    char reason[160];
    snprintf(reason, sizeof reason, "%s node %.63s", what, holder[0] ? holder : "?");
    claims_t *self = ctx->claims;
    pthread_mutex_lock(&self->mu);
    const char *last = zhashx_lookup(self->noted, tx_id);
    int seen = last && strcmp(last, reason) == 0;
    if (!seen) {
        if (zhashx_size(self->noted) >= S_HELD_MAX)
            zhashx_purge(self->noted);   /* bounded: at worst a note is journaled twice */
        zhashx_update(self->noted, tx_id, strdup(reason));
    }
    pthread_mutex_unlock(&self->mu);
    if (seen)
        return;
    record_t r;
    record_init(&r, RECORD_ADMIN_ACTION);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx_id);
    snprintf(r.actor, sizeof r.actor, "kasa:cluster");
    snprintf(r.action, sizeof r.action, "claim");
    snprintf(r.origin, sizeof r.origin, "node:%.58s", self->node);
    snprintf(r.reason, sizeof r.reason, "%s", reason);
    char err[160];
    if (registry_append(ctx->registry, ctx->journal, &r, err, sizeof err) != REGISTRY_MOVED)
        log_warn("claims.note_failed", "tx=%s reason=\"%s\"", tx_id, err);
}

int64_t claims_locker_gate(const stage_ctx_t *ctx, const char *tx_id, uint32_t tries, uint64_t *rng)
{
    claims_t *self = ctx->claims;
    char holder[64];
    claims_result_t r = claims_acquire(self, tx_id, 1, holder);
    if (r == CLAIMS_HELD)
        return 0;
    if (r == CLAIMS_FINAL) {
        s_note(ctx, tx_id, "finished by", holder);
        return -1;
    }
    if (r == CLAIMS_HELD_ELSEWHERE)
        s_note(ctx, tx_id, "held by", holder);
    /* ask again: soon at first, then about twice per lease (a take-over is due once it runs out) */
    int64_t cap = self->lease_ms / 2 > 250 ? self->lease_ms / 2 : 250;
    int64_t ms = workq_backoff_ms(tries, 250, cap, rng);
    log_info("claims.later", "tx=%s node=%s answer=%s holder=%s retry_ms=%lld", tx_id, self->node,
             r == CLAIMS_UNREACHABLE ? "unreachable" : "held_elsewhere", holder[0] ? holder : "-", (long long) ms);
    return ms;
}

int64_t claims_crediter_gate(const stage_ctx_t *ctx, const char *tx_id)
{
    claims_t *self = ctx->claims;
    char holder[64];
    int64_t wait = 0;
    claims_fence_t f = claims_fence(self, tx_id, &wait, holder);
    if (f == CLAIMS_SEND)
        return 0;
    if (f == CLAIMS_LOST) {
        s_note(ctx, tx_id, "lost to", holder);
        wait = self->lease_ms;   /* searched again then: the holder's deal is found, or its lease ran out */
    }
    log_info("claims.fenced", "tx=%s node=%s answer=%s wait_ms=%lld", tx_id, self->node, claims_fence_name(f),
             (long long) wait);
    return wait > 0 ? wait : 1;
}

/* ---- named leases: one node at a time does a job ------------------------------------------------- */

static const mongo_index_t s_leases_index = { CLAIMS_LEASES_COLLECTION, "name_1", { "name", NULL }, 1 };
static const s_where_t s_leases_where = { CLAIMS_LEASES_COLLECTION, "name", &s_leases_index };

int claims_lease_hold(claims_t *self, const char *name, int64_t lease_ms, int32_t epoch, int64_t store,
                      claims_lease_t *out)
{
    memset(out, 0, sizeof *out);
    for (int round = 0; round < S_RACE_ROUNDS; round++) {
        claims_doc_t doc;
        int64_t value = 0;
        if (s_read_in(self, &s_leases_where, name, &doc, &value) != 0)
            return -1;
        int64_t now = s_wall_ms();
        int64_t lease_until = now + lease_ms;   /* from before the write, as a claim's */
        claims_decision_t d = claims_decide(&doc, self->node, now);
        int rc;
        switch (d) {
        case CLAIMS_FREE:
            rc = s_insert_in(self, &s_leases_where, &self->lease_index_ok, name, lease_until, store >= 0 ? store : 0);
            if (rc < 0)
                return -1;
            if (rc == 0)
                continue;   /* another node inserted first: read it */
            *out = (claims_lease_t) { 1, 1, lease_until, store >= 0 ? store : 0, "" };
            break;
        case CLAIMS_MINE:
        case CLAIMS_EXPIRED: {
            /* store only on a renewal of the caller's own epoch: a take-over keeps what the last
             * holder stored (the caller's value may be older than it) */
            int renew = d == CLAIMS_MINE && doc.epoch == epoch;
            int64_t keep = renew ? store : -1;
            rc = s_cas_in(self, &s_leases_where, name, doc.epoch, doc.node, d == CLAIMS_MINE ? doc.epoch : doc.epoch + 1,
                          lease_until, "working", keep);
            if (rc < 0)
                return -1;
            if (rc == 0)
                continue;   /* renewed or taken by another node meanwhile: read again */
            *out = (claims_lease_t) { 1, d == CLAIMS_MINE ? doc.epoch : doc.epoch + 1, lease_until,
                                      keep >= 0 ? keep : value, "" };
            if (d == CLAIMS_EXPIRED)
                log_info("claims.lease_taken", "lease=%s node=%s from=%s epoch=%d lease_ended_ms_ago=%lld", name,
                         self->node, doc.node, out->epoch, (long long) (now - doc.lease_until_ms));
            break;
        }
        case CLAIMS_OTHER_LIVE:
        case CLAIMS_DONE:   /* a lease is never released final; read as another node's */
            out->epoch = doc.epoch;
            out->lease_until_ms = doc.lease_until_ms;
            out->value = value;
            snprintf(out->holder, sizeof out->holder, "%s", doc.node);
            return 0;
        }
        snprintf(out->holder, sizeof out->holder, "%s", self->node);
        return 1;
    }
    return -1;
}

int claims_lease_drop(claims_t *self, const char *name, int32_t epoch, int64_t store)
{
    return s_cas_in(self, &s_leases_where, name, epoch, self->node, epoch, 0, "working", store);
}
