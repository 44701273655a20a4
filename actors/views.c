/* views.c — see views.h. */
#include "actors/views.h"

#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/mio.h"
#include "schema/deposit.h"
#include "schema/log.h"
#include "schema/money.h"
#include "schema/mongo.h"

#define S_QUIET_MS 1000          /* after MongoDB failed to answer, views answer locally this long */
#define S_IN_BATCH 200           /* transaction ids per $in lookup */
#define S_SUMMARY_MAX 100000     /* credited deposits a summary reads at most */

struct views_t {
    registry_t *registry;        /* not owned */
    mongoc_client_pool_t *pool;  /* NULL on one node */
    char db[64], node[64];
    atomic_llong quiet_until_ms; /* monotonic: no MongoDB call before this */
    atomic_int down;             /* 1 after a failure was logged, until MongoDB answers again */
};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

views_t *views_new(const config_t *cfg, registry_t *registry, int timeout_ms, char *err, size_t errlen)
{
    views_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "views: no memory");
        return NULL;
    }
    self->registry = registry;
    snprintf(self->db, sizeof self->db, "%s", cfg->mongo_db[0] ? cfg->mongo_db : MONGO_DEFAULT_DB);
    snprintf(self->node, sizeof self->node, "%s", cfg->node_id);
    if (cfg->cluster && cfg->mongo_uri[0]) {
        char why[120];
        self->pool = mio_pool_new(cfg->mongo_uri, timeout_ms > 0 ? timeout_ms : VIEWS_TIMEOUT_MS, "kasa-views", why,
                                  sizeof why);
        if (!self->pool) {
            snprintf(err, errlen, "views: %s", why);
            free(self);
            return NULL;
        }
    }
    return self;
}

void views_destroy(views_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    views_t *self = *self_p;
    if (self->pool)
        mongoc_client_pool_destroy(self->pool);
    free(self);
    *self_p = NULL;
}

int views_cluster(const views_t *self)
{
    return self && self->pool != NULL;
}

/* ---- the document -------------------------------------------------------------------------------- */

void views_deposit_doc(const registry_entry_t *e, const char *node, bson_t *doc)
{
    const deposit_view_t *v = &e->view;
    char credit[48] = "", idx[16];
    const char *key;
    bson_init(doc);
    BSON_APPEND_UTF8(doc, "transaction_id", v->tx_id);
    BSON_APPEND_UTF8(doc, "state", deposit_state_name(v->state));
    BSON_APPEND_INT32(doc, "state_rank", deposit_state_rank(v->state));
    BSON_APPEND_UTF8(doc, "status", v->status);
    BSON_APPEND_INT32(doc, "confirmations", v->confirmations);
    BSON_APPEND_INT32(doc, "threshold", v->threshold);
    BSON_APPEND_UTF8(doc, "token_id", v->token_id);
    BSON_APPEND_UTF8(doc, "chain_id", v->chain_id);
    BSON_APPEND_UTF8(doc, "address", v->address);
    BSON_APPEND_UTF8(doc, "amount", v->amount);
    BSON_APPEND_UTF8(doc, "tx_hash", v->tx_hash);
    BSON_APPEND_INT64(doc, "login", (int64_t) v->login);
    if (v->credit_minor != 0 && money_format_minor(v->credit_minor, v->digits, credit, sizeof credit) == 0)
        BSON_APPEND_UTF8(doc, "credit", credit);
    else
        BSON_APPEND_NULL(doc, "credit");
    BSON_APPEND_INT64(doc, "credit_minor", v->credit_minor);
    BSON_APPEND_INT32(doc, "digits", v->digits);
    BSON_APPEND_UTF8(doc, "currency", v->currency);
    BSON_APPEND_INT64(doc, "ticket", (int64_t) v->ticket);
    BSON_APPEND_UTF8(doc, "reason", v->reason);
    BSON_APPEND_UTF8(doc, "remainder", e->remainder);
    BSON_APPEND_UTF8(doc, "ref", e->ref);
    BSON_APPEND_INT32(doc, "attempts", (int32_t) e->attempts);
    BSON_APPEND_BOOL(doc, "notice_failed", e->notice_failed != 0);
    BSON_APPEND_INT32(doc, "alert_count", (int32_t) v->alert_count);
    BSON_APPEND_UTF8(doc, "alert", v->alert);
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(doc, "approvers", &arr);
    for (uint32_t i = 0; i < e->approvals && i < DESK_MAX_APPROVERS; i++) {
        bson_uint32_to_string(i, &key, idx, sizeof idx);
        BSON_APPEND_UTF8(&arr, key, e->approvers[i]);
    }
    bson_append_array_end(doc, &arr);
    BSON_APPEND_INT32(doc, "approvals", (int32_t) e->approvals);
    BSON_APPEND_DATE_TIME(doc, "created", v->created_ms);
    BSON_APPEND_DATE_TIME(doc, "updated", v->updated_ms);
    BSON_APPEND_INT64(doc, "last_lsn", (int64_t) e->last_lsn);
    BSON_APPEND_UTF8(doc, "node", node);
}

bson_t *views_deposit_guard(const registry_entry_t *e, const char *node)
{
    int rank = deposit_state_rank(e->view.state);
    return BCON_NEW("transaction_id", BCON_UTF8(e->view.tx_id), "$or", "[",
                    "{", "node", BCON_UTF8(node), "last_lsn", "{", "$lte", BCON_INT64((int64_t) e->last_lsn), "}", "}",
                    "{", "state_rank", "{", "$lt", BCON_INT32(rank), "}", "}",
                    "{", "state_rank", BCON_INT32(rank), "node", "{", "$ne", BCON_UTF8(node), "}",
                         "updated", "{", "$lt", BCON_DATE_TIME(e->view.updated_ms), "}", "}",
                    "{", "state_rank", "{", "$exists", BCON_BOOL(false), "}", "}", "]");
}

int views_deposit_read(const bson_t *doc, registry_entry_t *out, char node[64])
{
    memset(out, 0, sizeof *out);
    deposit_view_t *v = &out->view;
    char state[24];
    mio_str(doc, "transaction_id", v->tx_id, sizeof v->tx_id);
    mio_str(doc, "state", state, sizeof state);
    int st = deposit_state_from_name(state);
    if (!v->tx_id[0] || st < 0)
        return -1;
    v->state = (deposit_state_t) st;
    mio_str(doc, "status", v->status, sizeof v->status);
    v->confirmations = (int32_t) mio_int64(doc, "confirmations");
    v->threshold = (int32_t) mio_int64(doc, "threshold");
    mio_str(doc, "token_id", v->token_id, sizeof v->token_id);
    mio_str(doc, "chain_id", v->chain_id, sizeof v->chain_id);
    mio_str(doc, "address", v->address, sizeof v->address);
    mio_str(doc, "amount", v->amount, sizeof v->amount);
    mio_str(doc, "tx_hash", v->tx_hash, sizeof v->tx_hash);
    v->login = (uint64_t) mio_int64(doc, "login");
    v->credit_minor = mio_int64(doc, "credit_minor");
    v->digits = (int32_t) mio_int64(doc, "digits");
    mio_str(doc, "currency", v->currency, sizeof v->currency);
    v->ticket = (uint64_t) mio_int64(doc, "ticket");
    mio_str(doc, "reason", v->reason, sizeof v->reason);
    v->created_ms = mio_int64(doc, "created");
    v->updated_ms = mio_int64(doc, "updated");
    v->alert_count = (uint32_t) mio_int64(doc, "alert_count");
    mio_str(doc, "alert", v->alert, sizeof v->alert);
    mio_str(doc, "remainder", out->remainder, sizeof out->remainder);
    mio_str(doc, "ref", out->ref, sizeof out->ref);
    out->attempts = (uint32_t) mio_int64(doc, "attempts");
    out->notice_failed = (int) mio_int64(doc, "notice_failed");
    out->last_lsn = (uint64_t) mio_int64(doc, "last_lsn");
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, doc, "approvers") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr) && out->approvals < DESK_MAX_APPROVERS)
            if (BSON_ITER_HOLDS_UTF8(&arr))
                snprintf(out->approvers[out->approvals++], sizeof out->approvers[0], "%s", bson_iter_utf8(&arr, NULL));
    mio_str(doc, "node", node, 64);
    return 0;
}

const registry_entry_t *views_further(const views_t *self, const registry_entry_t *mine,
                                      const registry_entry_t *theirs, const char *theirs_node)
{
    if (!theirs)
        return mine;
    if (!mine)
        return theirs;
    if (self && strcmp(theirs_node, self->node) == 0)
        return mine;   /* this node wrote it: its memory is as new or newer */
    int a = deposit_state_rank(mine->view.state), b = deposit_state_rank(theirs->view.state);
    if (b != a)
        return b > a ? theirs : mine;
    return theirs->view.updated_ms > mine->view.updated_ms ? theirs : mine;
}

/* ---- MongoDB ------------------------------------------------------------------------------------- */

/* 1 when MongoDB may be asked now (it did not fail to answer within the last S_QUIET_MS). */
static int s_may_ask(views_t *self)
{
    return self->pool && s_mono_ms() >= atomic_load(&self->quiet_until_ms);
}

static void s_answered(views_t *self, int ok, const char *why)
{
    if (ok) {
        if (atomic_exchange(&self->down, 0))
            log_info("views.mongo_back", "node=%s (the panels read the cluster's deposits again)", self->node);
        return;
    }
    atomic_store(&self->quiet_until_ms, s_mono_ms() + S_QUIET_MS);
    if (!atomic_exchange(&self->down, 1))
        log_warn("views.mongo_unreachable", "node=%s error=\"%s\" (the panels show this node's deposits, marked "
                 "may be stale)", self->node, why);
}

typedef void (s_doc_fn)(void *arg, const bson_t *doc);

/* Runs a read command (destroys cmd): 0 with *reply (destroy it), or -1 (MongoDB did not answer:
 * noted for s_may_ask). */
static int s_run(views_t *self, bson_t *cmd, bson_t *reply)
{
    bson_error_t error;
    bool ok = mio_command(self->pool, self->db, cmd, 0, reply, &error);
    bson_destroy(cmd);
    s_answered(self, ok, ok ? NULL : error.message);
    return ok ? 0 : -1;
}

/* find on collection: filter, sorted by sort_key (sort_dir 1 or -1; NULL: unsorted), at most limit,
 * each document to fn. 0, or -1 (MongoDB did not answer; noted for s_may_ask). */
static int s_find_in(views_t *self, const char *collection, const bson_t *filter, const char *sort_key, int sort_dir,
                     int limit, const bson_t *projection, s_doc_fn *fn, void *arg)
{
    bson_t cmd, reply, sub;
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", collection);
    BSON_APPEND_DOCUMENT(&cmd, "filter", filter);
    if (sort_key) {
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "sort", &sub);
        BSON_APPEND_INT32(&sub, sort_key, sort_dir);
        bson_append_document_end(&cmd, &sub);
    }
    if (projection)
        BSON_APPEND_DOCUMENT(&cmd, "projection", projection);
    BSON_APPEND_INT32(&cmd, "limit", limit);
    BSON_APPEND_INT32(&cmd, "batchSize", limit);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);
    if (s_run(self, &cmd, &reply) != 0)
        return -1;
    bson_iter_t it, docs;
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch", &docs) &&
        BSON_ITER_HOLDS_ARRAY(&docs) && bson_iter_recurse(&docs, &it)) {
        while (bson_iter_next(&it)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                continue;
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            bson_t doc;
            if (bson_init_static(&doc, data, len))
                fn(arg, &doc);
        }
    }
    bson_destroy(&reply);
    return 0;
}

/* s_find_in on deposits, newest first (by created) when sort is 1. */
static int s_find(views_t *self, const bson_t *filter, int sort, int limit, const bson_t *projection, s_doc_fn *fn,
                  void *arg)
{
    return s_find_in(self, MONGO_DEPOSITS, filter, sort ? "created" : NULL, -1, limit, projection, fn, arg);
}

/* count on deposits matching filter: 0 with *n, or -1. */
static int s_count(views_t *self, const bson_t *filter, long *n)
{
    bson_t cmd, reply;
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "count", MONGO_DEPOSITS);
    BSON_APPEND_DOCUMENT(&cmd, "query", filter);
    if (s_run(self, &cmd, &reply) != 0)
        return -1;
    bson_iter_t it;
    *n = bson_iter_init_find(&it, &reply, "n") ? (long) bson_iter_as_int64(&it) : 0;
    bson_destroy(&reply);
    return 0;
}

/* The query's filter (views.h: every part index-served). */
static void s_filter(const views_query_t *q, bson_t *f)
{
    bson_t sub, arr, one;
    bson_init(f);
    if (q->login)
        BSON_APPEND_INT64(f, "login", (int64_t) q->login);
    if (q->state >= 0)
        BSON_APPEND_UTF8(f, "state", deposit_state_name((deposit_state_t) q->state));
    if (q->from_ms || q->to_ms) {
        BSON_APPEND_DOCUMENT_BEGIN(f, "created", &sub);
        if (q->from_ms)
            BSON_APPEND_DATE_TIME(&sub, "$gte", q->from_ms);
        if (q->to_ms)
            BSON_APPEND_DATE_TIME(&sub, "$lt", q->to_ms);
        bson_append_document_end(f, &sub);
    }
    if (q->q && *q->q) {
        static const char *const keys[] = { "transaction_id", "tx_hash", "address" };
        BSON_APPEND_ARRAY_BEGIN(f, "$or", &arr);
        for (int i = 0; i < 3; i++) {
            char idx[4] = { (char) ('0' + i), 0 };
            BSON_APPEND_DOCUMENT_BEGIN(&arr, idx, &one);
            BSON_APPEND_UTF8(&one, keys[i], q->q);
            bson_append_document_end(&arr, &one);
        }
        bson_append_array_end(f, &arr);
    }
}

/* ---- merging ------------------------------------------------------------------------------------- */

typedef struct {
    registry_entry_t e;
    char node[64];               /* MongoDB's: the node that wrote it; this node's: "" */
    int remote;
} s_item_t;

typedef struct {
    views_t *views;
    s_item_t *v;
    size_t n, cap;
    int oom;
    views_match_fn *match;
    void *match_arg;
    size_t room;                 /* this node's candidates kept at most */
    long local_total;            /* this node's candidates that pass match */
    const char *exact;           /* the query's q: a candidate with this transaction id was seen ... */
    int exact_seen;              /* ... (then it is not looked up again) */
} s_set_t;

static s_item_t *s_push(s_set_t *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        s_item_t *g = realloc(s->v, cap * sizeof *g);
        if (!g) {
            s->oom = 1;
            return NULL;
        }
        s->v = g;
        s->cap = cap;
    }
    s_item_t *it = &s->v[s->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static void s_add_local(s_set_t *s, const registry_entry_t *e)
{
    s_item_t *it = s_push(s);
    if (it)
        it->e = *e;
}

/* registry_each's visitor: this node's candidates passing match, the newest s->room of them. */
static void s_local_candidate(void *arg, const registry_entry_t *e)
{
    s_set_t *s = arg;
    if (s->exact && strcmp(e->view.tx_id, s->exact) == 0)
        s->exact_seen = 1;
    if (s->match && !s->match(s->match_arg, e))
        return;
    if ((size_t) s->local_total++ < s->room)
        s_add_local(s, e);
}

static void s_remote_doc(void *arg, const bson_t *doc)
{
    s_set_t *s = arg;
    registry_entry_t e;
    char node[64];
    if (views_deposit_read(doc, &e, node) != 0)
        return;
    s_item_t *it = s_push(s);
    if (!it)
        return;
    it->e = e;
    snprintf(it->node, sizeof it->node, "%s", node);
    it->remote = 1;
}

static int s_by_tx(const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    int c = strcmp(x->e.view.tx_id, y->e.view.tx_id);
    return c ? c : x->remote - y->remote;
}

static int s_by_created_desc(const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    if (x->e.view.created_ms != y->e.view.created_ms)
        return x->e.view.created_ms < y->e.view.created_ms ? 1 : -1;
    return strcmp(x->e.view.tx_id, y->e.view.tx_id);
}

/* 1 if tx is among the items [0, n) (sorted by tx) with the given remote flag. */
static int s_has(const s_item_t *v, size_t n, const char *tx, int remote)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v[mid].e.view.tx_id, tx);
        if (c == 0) {
            for (size_t i = mid; i < n && strcmp(v[i].e.view.tx_id, tx) == 0; i++)
                if (v[i].remote == remote)
                    return 1;
            for (size_t i = mid; i-- > 0 && strcmp(v[i].e.view.tx_id, tx) == 0;)
                if (v[i].remote == remote)
                    return 1;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Completes the set (sorted by tx on return): each of MongoDB's deposits gets this node's view,
 * each of this node's that MongoDB's answer lacked is looked up there. 0, or -1 (MongoDB failed). */
static int s_complete(s_set_t *s)
{
    if (s->n)
        qsort(s->v, s->n, sizeof *s->v, s_by_tx);
    size_t n = s->n, nm = 0;
    size_t *missing = malloc((n ? n : 1) * sizeof *missing);   /* indices: s_push may move s->v */
    registry_entry_t *e = malloc(sizeof *e);
    if (!missing || !e) {
        free(missing);
        free(e);
        s->oom = 1;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s->v[i].remote && !s_has(s->v, n, s->v[i].e.view.tx_id, 0)) {
            if (registry_lookup(s->views->registry, s->v[i].e.view.tx_id, e, NULL) > 0)
                s_add_local(s, e);
        } else if (!s->v[i].remote && !s_has(s->v, n, s->v[i].e.view.tx_id, 1) &&
                   (nm == 0 || strcmp(s->v[missing[nm - 1]].e.view.tx_id, s->v[i].e.view.tx_id) != 0)) {
            missing[nm++] = i;
        }
    }
    free(e);
    char (*ids)[80] = malloc((nm ? nm : 1) * sizeof *ids);
    for (size_t i = 0; ids && i < nm; i++)
        snprintf(ids[i], sizeof ids[i], "%s", s->v[missing[i]].e.view.tx_id);
    free(missing);
    int rc = ids ? 0 : -1;
    for (size_t i = 0; ids && rc == 0 && i < nm; i += S_IN_BATCH) {
        bson_t f, in, arr;
        bson_init(&f);
        BSON_APPEND_DOCUMENT_BEGIN(&f, "transaction_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
        for (size_t k = i; k < nm && k < i + S_IN_BATCH; k++) {
            char idx[16];
            const char *key;
            bson_uint32_to_string((uint32_t) (k - i), &key, idx, sizeof idx);
            BSON_APPEND_UTF8(&arr, key, ids[k]);
        }
        bson_append_array_end(&in, &arr);
        bson_append_document_end(&f, &in);
        rc = s_find(s->views, &f, 0, S_IN_BATCH, NULL, s_remote_doc, s);
        bson_destroy(&f);
    }
    free(ids);
    if (s->n)
        qsort(s->v, s->n, sizeof *s->v, s_by_tx);
    return rc;
}

/* Keeps, per deposit, the further of this node's view and MongoDB's, that passes match; sorts the
 * kept newest first. The set must be sorted by tx (s_complete). Returns how many are kept (at the
 * start of s->v). */
static size_t s_resolve(s_set_t *s)
{
    size_t out = 0;
    for (size_t i = 0, j; i < s->n; i = j) {
        const registry_entry_t *mine = NULL, *theirs = NULL;
        const char *node = "";
        for (j = i; j < s->n && strcmp(s->v[j].e.view.tx_id, s->v[i].e.view.tx_id) == 0; j++) {
            if (s->v[j].remote) {
                theirs = &s->v[j].e;
                node = s->v[j].node;
            } else {
                mine = &s->v[j].e;
            }
        }
        const registry_entry_t *best = views_further(s->views, mine, theirs, node);
        if (s->match && !s->match(s->match_arg, best))
            continue;
        s_item_t keep = { .e = *best, .remote = best == theirs };
        s->v[out++] = keep;   /* out <= i: never overwrites a group not yet read */
    }
    if (out)
        qsort(s->v, out, sizeof *s->v, s_by_created_desc);
    return out;
}

/* This node's candidates for q (views.h). 0, or -1 when its index could not be read. */
static int s_local(views_t *self, const views_query_t *q, s_set_t *s)
{
    if (q->login)   /* without a filter the newest room are all that is wanted: the rest is not read */
        return registry_each(self->registry, q->login, s->match ? 0 : (int) s->room, s_local_candidate, s) < 0 ? -1 : 0;
    registry_each(self->registry, 0, 0, s_local_candidate, s);   /* memory: every unfinished deposit */
    if (!q->q || !*q->q)
        return 0;
    if (s->exact_seen)
        return 0;
    registry_entry_t *e = malloc(sizeof *e);   /* a finished one, by its whole transaction id */
    int got = e ? registry_lookup(self->registry, q->q, e, NULL) : 0;
    if (got > 0)
        s_local_candidate(s, e);
    free(e);
    return got < 0 ? -1 : 0;
}

int views_list(views_t *self, const views_query_t *q, views_match_fn *match, void *match_arg, views_fn *fn,
               void *arg, long *total)
{
    int limit = q->limit < 1 ? 1 : q->limit > VIEWS_WINDOW_MAX ? VIEWS_WINDOW_MAX : q->limit;
    s_set_t s = { .views = self, .match = match, .match_arg = match_arg, .room = (size_t) limit,
                  .exact = q->q && *q->q ? q->q : NULL };
    int local_rc = s_local(self, q, &s);
    int source = self->pool ? VIEWS_STALE : VIEWS_LOCAL;
    size_t remote_n = 0;
    if (s_may_ask(self)) {
        size_t before = s.n;
        bson_t f;
        s_filter(q, &f);
        int rc = s_find(self, &f, 1, limit, NULL, s_remote_doc, &s);
        remote_n = s.n - before;
        if (rc == 0)
            rc = s_complete(&s);
        if (rc == 0) {
            source = VIEWS_CLUSTER;
            long n = 0;
            if (total && remote_n >= (size_t) limit && s_count(self, &f, &n) == 0 && n > s.local_total)
                s.local_total = n;
        }
        bson_destroy(&f);
        if (rc != 0) {   /* this node's alone: drop what MongoDB said */
            size_t keep = 0;
            for (size_t i = 0; i < s.n; i++)
                if (!s.v[i].remote)
                    s.v[keep++] = s.v[i];
            s.n = keep;
            if (s.n)
                qsort(s.v, s.n, sizeof *s.v, s_by_tx);
        }
    } else if (s.n) {
        qsort(s.v, s.n, sizeof *s.v, s_by_tx);
    }
    if (s.oom || (local_rc != 0 && source != VIEWS_CLUSTER)) {   /* a short list is never taken for the whole */
        free(s.v);
        return -1;
    }
    size_t kept = s_resolve(&s);
    if (total)
        *total = (long) kept > s.local_total ? (long) kept : s.local_total;
    for (size_t i = 0; i < kept && i < (size_t) limit; i++)
        fn(arg, &s.v[i].e);
    free(s.v);
    return source;
}

typedef struct {
    registry_entry_t e;
    char node[64];
    int found;
} s_one_t;

static void s_one_doc(void *arg, const bson_t *doc)
{
    s_one_t *o = arg;
    if (!o->found && views_deposit_read(doc, &o->e, o->node) == 0)
        o->found = 1;
}

int views_get(views_t *self, const char *tx_id, registry_entry_t *out, views_source_t *source)
{
    int local = registry_lookup(self->registry, tx_id, out, NULL);
    *source = self->pool ? VIEWS_STALE : VIEWS_LOCAL;
    if (!s_may_ask(self))
        return local;
    s_one_t *o = calloc(1, sizeof *o);
    if (!o)
        return local;
    bson_t *f = BCON_NEW("transaction_id", BCON_UTF8(tx_id));
    int rc = s_find(self, f, 0, 1, NULL, s_one_doc, o);
    bson_destroy(f);
    if (rc == 0) {
        *source = VIEWS_CLUSTER;
        const registry_entry_t *best = views_further(self, local > 0 ? out : NULL, o->found ? &o->e : NULL, o->node);
        if (best && best != out)
            *out = *best;
        local = best ? 1 : local < 0 ? -1 : 0;
    }
    free(o);
    return local;
}

/* ---- a deposit's history on the other nodes ------------------------------------------------------ */

typedef struct {
    jbuf_t *b;
    int n;
} s_tl_t;

/* One `transitions` document as its record's JSON (record_to_json's names: tx_id, lsn, time as ISO
 * text) with the node that journaled it, appended to the timeline. */
static void s_tl_doc(void *arg, const bson_t *doc)
{
    s_tl_t *t = arg;
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return;
    jbuf_puts(t->b, t->n++ ? ",{" : "{");
    int first = 1;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strcmp(key, "_id") == 0)
            continue;
        jbuf_puts(t->b, first ? "" : ",");
        first = 0;
        jbuf_str(t->b, strcmp(key, "transaction_id") == 0 ? "tx_id" : key);
        jbuf_puts(t->b, ":");
        if (BSON_ITER_HOLDS_UTF8(&it)) {
            jbuf_str(t->b, bson_iter_utf8(&it, NULL));
        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
            int64_t ms = bson_iter_date_time(&it);
            time_t sec = (time_t) (ms / 1000);
            struct tm tm;
            char day[32] = "?";
            if (ms >= 0 && gmtime_r(&sec, &tm))
                strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
            jbuf_printf(t->b, "\"%s.%03dZ\"", day, (int) (ms % 1000 + 1000) % 1000);
        } else if (BSON_ITER_HOLDS_BOOL(&it)) {
            jbuf_puts(t->b, bson_iter_bool(&it) ? "true" : "false");
        } else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
            jbuf_printf(t->b, "%lld", (long long) bson_iter_as_int64(&it));
        } else {
            jbuf_puts(t->b, "null");
        }
    }
    jbuf_puts(t->b, "}");
}

int views_timeline_others(views_t *self, const char *tx_id, jbuf_t *b)
{
    if (!s_may_ask(self))
        return -1;
    bson_t *f = BCON_NEW("transaction_id", BCON_UTF8(tx_id), "node", "{", "$ne", BCON_UTF8(self->node), "}");
    s_tl_t t = { b, 0 };
    int rc = s_find_in(self, MONGO_TRANSITIONS, f, "time", 1, VIEWS_TIMELINE_MAX, NULL, s_tl_doc, &t);
    bson_destroy(f);
    return rc == 0 ? t.n : -1;
}

/* ---- the summary --------------------------------------------------------------------------------- */

static void s_sum_doc(void *arg, const bson_t *doc)
{
    totals_t *t = arg;
    registry_entry_t *e = malloc(sizeof *e);
    char node[64];
    if (e && views_deposit_read(doc, e, node) == 0)   /* counted as credited on the day of its last update */
        totals_move(t, DEPOSIT_LOCKED, e->view.state, e->view.token_id, e->view.amount, e->view.updated_ms);
    free(e);
}

views_source_t views_summary(views_t *self, totals_t *out)
{
    memset(out, 0, sizeof *out);
    if (s_may_ask(self)) {
        long counts[DEPOSIT_STATE_COUNT] = { 0 };
        int rc = 0;
        for (int st = 1; rc == 0 && st < DEPOSIT_STATE_COUNT; st++) {
            bson_t *f = BCON_NEW("state", BCON_UTF8(deposit_state_name((deposit_state_t) st)));
            rc = s_count(self, f, &counts[st]);
            bson_destroy(f);
        }
        if (rc == 0) {
            int64_t now_ms = (int64_t) time(NULL) * 1000, since_ms = (now_ms / 86400000 - (TOTALS_DAYS - 1)) * 86400000;
            bson_t *f = BCON_NEW("state", "{", "$in", "[", BCON_UTF8(deposit_state_name(DEPOSIT_CREDITED)),
                                 BCON_UTF8(deposit_state_name(DEPOSIT_NOTIFIED)), "]", "}",
                                 "updated", "{", "$gte", BCON_DATE_TIME(since_ms), "}");
            bson_t *p = BCON_NEW("transaction_id", BCON_INT32(1), "state", BCON_INT32(1), "token_id", BCON_INT32(1),
                                 "amount", BCON_INT32(1), "updated", BCON_INT32(1));
            rc = s_find(self, f, 0, S_SUMMARY_MAX, p, s_sum_doc, out);
            bson_destroy(f);
            bson_destroy(p);
        }
        if (rc == 0) {
            for (int st = 0; st < DEPOSIT_STATE_COUNT; st++)
                out->state_count[st] = counts[st];
            return VIEWS_CLUSTER;
        }
        memset(out, 0, sizeof *out);
    }
    registry_totals(self->registry, out);
    return self->pool ? VIEWS_STALE : VIEWS_LOCAL;
}
