/* wdshared.c — withdrawals shared through MongoDB (see wdshared.h). */
#include "actors/wdshared.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/claims.h"
#include "actors/condvar.h"
#include "actors/mio.h"
#include "actors/shared.h"
#include "schema/log.h"
#include "schema/mongo.h"

#define S_BATCH 500            /* documents one read takes at most */
#define S_SINCE_MARGIN_MS 5000 /* a pass rereads what changed this long before the last one began */

struct wdshared_t {
    mongoc_client_pool_t *pool;   /* the shared facts' (not owned) */
    char db[MONGO_NAME_MAX], node[MONGO_NAME_MAX];
    atomic_int index_ok;
    /* the learning thread */
    withdrawals_t *withdrawals;
    journal_t *journal;
    struct claims_t *claims;
    wdshared_hand_fn *hand;
    void *hand_arg;
    int period_ms;
    int64_t last_pass_ms;      /* when the last whole pass began (0: none yet: read everything) */
    pthread_t thread;
    int running, stop;
    pthread_mutex_t mu;
    pthread_cond_t cond;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs cmd (write: majority). 0 with *reply (destroy it), or -1 (logged). */
static int s_run(wdshared_t *self, const bson_t *cmd, int write, bson_t *reply, const char *what)
{
    bson_error_t error;
    if (!mio_command(self->pool, self->db, cmd, write, reply, &error)) {
        log_warn("wdshared.mongo_failed", "node=%s step=%s reason=\"%.200s\"", self->node, what, error.message);
        return -1;
    }
    return 0;
}

static const mongo_index_t s_index = { WDSHARED_COLLECTION, "id_1", { "id", NULL }, 1 };

/* The unique index on id, once, before the first write relies on it. 0, or -1. */
static int s_ensure_index(wdshared_t *self)
{
    bson_error_t error;
    if (mio_indexes_once(self->pool, self->db, &s_index, 1, &self->index_ok, &error))
        return 0;
    log_warn("wdshared.mongo_failed", "node=%s step=createIndexes reason=\"%.200s\"", self->node, error.message);
    return -1;
}

int wdshared_put(wdshared_t *self, const withdrawal_view_t *w, int32_t epoch)
{
    if (s_ensure_index(self) != 0)
        return -1;   /* never upsert without the unique index: a stale holder's insert would stand */
    bson_t approvers = BSON_INITIALIZER;
    for (uint32_t i = 0; i < w->approvals && i < WITHDRAWALS_MAX_APPROVERS; i++) {
        char key[4];
        snprintf(key, sizeof key, "%u", (unsigned) i);
        BSON_APPEND_UTF8(&approvers, key, w->approvers[i]);
    }
    bson_t *cmd = BCON_NEW(
        "update", BCON_UTF8(WDSHARED_COLLECTION), "updates", "[", "{",
        "q", "{", "id", BCON_UTF8(w->id), "epoch", "{", "$lte", BCON_INT32(epoch), "}", "}",
        "u", "{", "$set", "{", "id", BCON_UTF8(w->id), "login", BCON_INT64((int64_t) w->login),
        "token_id", BCON_UTF8(w->token_id), "chain_id", BCON_UTF8(w->chain_id), "address", BCON_UTF8(w->address),
        "amount", BCON_UTF8(w->amount), "fee", BCON_UTF8(w->fee), "amount_minor", BCON_INT64(w->amount_minor),
        "digits", BCON_INT32(w->digits), "currency", BCON_UTF8(w->currency), "actor", BCON_UTF8(w->actor),
        "origin", BCON_UTF8(w->origin), "state", BCON_UTF8(withdrawal_state_name(w->state)),
        "transfers", BCON_INT32((int32_t) w->transfers), "request_id", BCON_UTF8(w->request_id),
        "cobo_id", BCON_UTF8(w->cobo_id), "cobo_status", BCON_UTF8(w->cobo_status), "tx_hash", BCON_UTF8(w->tx_hash),
        "debit_ticket", BCON_INT64((int64_t) w->debit_ticket), "refund_ticket", BCON_INT64((int64_t) w->refund_ticket),
        "reason", BCON_UTF8(w->reason), "created_ms", BCON_INT64(w->created_ms), "node", BCON_UTF8(self->node),
        "epoch", BCON_INT32(epoch), "updated_ms", BCON_INT64(s_now_ms()),
        "approvers", BCON_ARRAY(&approvers), "}", "}",
        "upsert", BCON_BOOL(true), "}", "]");
    mongoc_client_t *client = mongoc_client_pool_pop(self->pool);
    bson_t reply;
    bson_error_t error;
    bool ok = mio_write_majority(client, self->db, cmd, &reply, &error);
    mongoc_client_pool_push(self->pool, client);
    bson_destroy(cmd);
    bson_destroy(&approvers);
    if (!ok) {
        log_warn("wdshared.mongo_failed", "node=%s step=put id=%s reason=\"%.200s\"", self->node, w->id, error.message);
        bson_destroy(&reply);
        return -1;
    }
    bson_iter_t it;
    int64_t code = bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "writeErrors.0.code", &it)
                       ? bson_iter_as_int64(&it) : 0;
    int refused = bson_iter_init_find(&it, &reply, "ok") && bson_iter_as_int64(&it) == 0;
    bson_destroy(&reply);
    if (code == MONGO_DUPLICATE_KEY) {
        /* the upsert's insert met the unique index: a newer epoch's document is there */
        log_warn("wdshared.stale", "id=%s node=%s epoch=%d next=\"a newer holder wrote it: write nothing\"", w->id,
                 self->node, epoch);
        return 0;
    }
    if (code != 0 || refused) {
        log_warn("wdshared.mongo_failed", "node=%s step=put id=%s code=%lld", self->node, w->id, (long long) code);
        return -1;
    }
    return 1;
}

/* The document's approvers (an array of names) into out->approvers, out->approvals. */
static void s_approvers(const bson_iter_t *d, withdrawal_view_t *out)
{
    bson_iter_t arr;
    if (!BSON_ITER_HOLDS_ARRAY(d) || !bson_iter_recurse(d, &arr))
        return;
    while (bson_iter_next(&arr) && out->approvals < WITHDRAWALS_MAX_APPROVERS) {
        mio_iter_str(&arr, out->approvers[out->approvals], sizeof out->approvers[0]);
        if (out->approvers[out->approvals][0])
            out->approvals++;
    }
}

/* One document (*d on its fields) into *out, its writer into node and *epoch. 0, or -1 if not whole. */
static int s_parse(bson_iter_t *d, withdrawal_view_t *out, char node[64], int32_t *epoch)
{
    memset(out, 0, sizeof *out);
    node[0] = '\0';
    *epoch = 0;
    char state[32] = "";
    while (bson_iter_next(d)) {
        const char *k = bson_iter_key(d);
        if (strcmp(k, "id") == 0) mio_iter_str(d, out->id, sizeof out->id);
        else if (strcmp(k, "login") == 0) out->login = (uint64_t) mio_iter_int64(d);
        else if (strcmp(k, "token_id") == 0) mio_iter_str(d, out->token_id, sizeof out->token_id);
        else if (strcmp(k, "chain_id") == 0) mio_iter_str(d, out->chain_id, sizeof out->chain_id);
        else if (strcmp(k, "address") == 0) mio_iter_str(d, out->address, sizeof out->address);
        else if (strcmp(k, "amount") == 0) mio_iter_str(d, out->amount, sizeof out->amount);
        else if (strcmp(k, "fee") == 0) mio_iter_str(d, out->fee, sizeof out->fee);
        else if (strcmp(k, "amount_minor") == 0) out->amount_minor = mio_iter_int64(d);
        else if (strcmp(k, "digits") == 0) out->digits = (int32_t) mio_iter_int64(d);
        else if (strcmp(k, "currency") == 0) mio_iter_str(d, out->currency, sizeof out->currency);
        else if (strcmp(k, "actor") == 0) mio_iter_str(d, out->actor, sizeof out->actor);
        else if (strcmp(k, "origin") == 0) mio_iter_str(d, out->origin, sizeof out->origin);
        else if (strcmp(k, "state") == 0) mio_iter_str(d, state, sizeof state);
        else if (strcmp(k, "transfers") == 0) out->transfers = (uint32_t) mio_iter_int64(d);
        else if (strcmp(k, "request_id") == 0) mio_iter_str(d, out->request_id, sizeof out->request_id);
        else if (strcmp(k, "cobo_id") == 0) mio_iter_str(d, out->cobo_id, sizeof out->cobo_id);
        else if (strcmp(k, "cobo_status") == 0) mio_iter_str(d, out->cobo_status, sizeof out->cobo_status);
        else if (strcmp(k, "tx_hash") == 0) mio_iter_str(d, out->tx_hash, sizeof out->tx_hash);
        else if (strcmp(k, "debit_ticket") == 0) out->debit_ticket = (uint64_t) mio_iter_int64(d);
        else if (strcmp(k, "refund_ticket") == 0) out->refund_ticket = (uint64_t) mio_iter_int64(d);
        else if (strcmp(k, "reason") == 0) mio_iter_str(d, out->reason, sizeof out->reason);
        else if (strcmp(k, "created_ms") == 0) out->created_ms = mio_iter_int64(d);
        else if (strcmp(k, "updated_ms") == 0) out->updated_ms = mio_iter_int64(d);
        else if (strcmp(k, "node") == 0) mio_iter_str(d, node, 64);
        else if (strcmp(k, "epoch") == 0) *epoch = (int32_t) mio_iter_int64(d);
        else if (strcmp(k, "approvers") == 0) s_approvers(d, out);
    }
    int st = withdrawal_state_from_name(state);
    if (st <= WITHDRAWAL_NONE || !withdrawal_id_valid(out->id) || !out->login || out->amount_minor <= 0)
        return -1;
    out->state = (withdrawal_state_t) st;
    return 0;
}

int wdshared_parse(const bson_t *doc, withdrawal_view_t *out, char node[64], int32_t *epoch)
{
    bson_iter_t d;
    if (!bson_iter_init(&d, doc)) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return s_parse(&d, out, node, epoch);
}

/* Runs the find cmd and calls fn for each whole document of its first batch. How many, or -1. */
static int s_find(wdshared_t *self, bson_t *cmd, void (*fn)(void *, const withdrawal_view_t *, const char *, int32_t),
                  void *arg)
{
    bson_t reply;
    if (s_run(self, cmd, 0, &reply, "find") != 0)
        return -1;
    int n = 0;
    bson_iter_t it, arr, d;
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch", &it) &&
        BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
        withdrawal_view_t *w = malloc(sizeof *w);
        while (w && bson_iter_next(&arr)) {
            char node[64];
            int32_t epoch;
            if (BSON_ITER_HOLDS_DOCUMENT(&arr) && bson_iter_recurse(&arr, &d) && s_parse(&d, w, node, &epoch) == 0) {
                fn(arg, w, node, epoch);
                n++;
            }
        }
        free(w);
    }
    bson_destroy(&reply);
    return n;
}

typedef struct {
    withdrawal_view_t *out;
    char *node;
    int32_t *epoch;
    int found;
} s_one_t;

static void s_take_one(void *arg, const withdrawal_view_t *w, const char *node, int32_t epoch)
{
    s_one_t *o = arg;
    *o->out = *w;
    snprintf(o->node, 64, "%s", node);
    *o->epoch = epoch;
    o->found = 1;
}

int wdshared_get(wdshared_t *self, const char *id, withdrawal_view_t *out, char node[64], int32_t *epoch)
{
    bson_t *cmd = BCON_NEW("find", BCON_UTF8(WDSHARED_COLLECTION), "filter", "{", "id", BCON_UTF8(id), "}", "limit",
                           BCON_INT32(1), "singleBatch", BCON_BOOL(true));
    s_one_t o = { out, node, epoch, 0 };
    int n = s_find(self, cmd, s_take_one, &o);
    bson_destroy(cmd);
    return n < 0 ? -1 : o.found;
}

typedef struct {
    int64_t sum;
} s_sum_t;

static void s_add(void *arg, const withdrawal_view_t *w, const char *node, int32_t epoch)
{
    (void) node, (void) epoch;
    s_sum_t *s = arg;
    if (w->state != WITHDRAWAL_REJECTED && w->state != WITHDRAWAL_REFUNDING && w->state != WITHDRAWAL_REFUNDED)
        s->sum += w->amount_minor;
}

int wdshared_asked_since(wdshared_t *self, uint64_t login, int64_t since_ms, int64_t *sum_minor)
{
    bson_t *cmd = BCON_NEW("find", BCON_UTF8(WDSHARED_COLLECTION), "filter", "{", "login", BCON_INT64((int64_t) login),
                           "created_ms", "{", "$gte", BCON_INT64(since_ms), "}", "}", "limit", BCON_INT32(S_BATCH),
                           "singleBatch", BCON_BOOL(true));
    s_sum_t s = { 0 };
    int n = s_find(self, cmd, s_add, &s);
    bson_destroy(cmd);
    if (n < 0)
        return -1;
    *sum_minor = s.sum;
    return 0;
}

/* ---- the learning pass ----------------------------------------------------------------------------- */

typedef struct {
    wdshared_t *self;
    int learned;
} s_pass_t;

static void s_learn_one(void *arg, const withdrawal_view_t *w, const char *node, int32_t epoch)
{
    (void) epoch;
    s_pass_t *p = arg;
    wdshared_t *self = p->self;
    if (claims_epoch(self->claims, w->id) > 0)
        return;   /* this node holds it: its own journal is the withdrawal's truth */
    /* a document this node wrote is never ahead of its journal (written after each transition): only
     * another node's is learned */
    if (strcmp(node, self->node) != 0) {
        char err[200] = "";
        registry_result_t r = withdrawals_learn(self->withdrawals, self->journal, w, node, err, sizeof err);
        if (r == REGISTRY_MOVED)
            p->learned++;
        else if (r != REGISTRY_SAME)
            log_warn("wdshared.learn_failed", "id=%s node=%s reason=\"%s\"", w->id, self->node, err);
    }
    if (withdrawals_final(w->state) || !self->hand)
        return;
    /* not final: if nobody works on it (the lease ran out, or this node held it before a restart),
     * the withdrawer takes it over and reconciles first */
    claims_doc_t c;
    if (claims_read(self->claims, w->id, &c) != 0)
        return;
    claims_decision_t d = claims_decide(&c, self->node, s_now_ms());
    if (d == CLAIMS_EXPIRED || d == CLAIMS_FREE || d == CLAIMS_MINE)
        self->hand(self->hand_arg, w->id);
}

int wdshared_pass(wdshared_t *self)
{
    int64_t began = s_now_ms();
    s_pass_t p = { self, 0 };
    /* every withdrawal not final (a claim may run out on one nobody changed for hours), and every one
     * changed since the last pass (a final state) */
    bson_t *open = BCON_NEW("find", BCON_UTF8(WDSHARED_COLLECTION), "filter", "{", "state", "{", "$in", "[",
                            BCON_UTF8("REQUESTED"), BCON_UTF8("DEBITED"), BCON_UTF8("APPROVED"), BCON_UTF8("SENT"),
                            BCON_UTF8("HELD"), BCON_UTF8("REFUNDING"), "]", "}", "}", "limit", BCON_INT32(S_BATCH),
                            "singleBatch", BCON_BOOL(true));
    int n = s_find(self, open, s_learn_one, &p);
    bson_destroy(open);
    if (n < 0)
        return -1;
    int64_t since = self->last_pass_ms ? self->last_pass_ms - S_SINCE_MARGIN_MS : 0;
    bson_t *changed = BCON_NEW("find", BCON_UTF8(WDSHARED_COLLECTION), "filter", "{", "updated_ms", "{", "$gte",
                               BCON_INT64(since), "}", "}", "sort", "{", "updated_ms", BCON_INT32(1), "}", "limit",
                               BCON_INT32(S_BATCH), "singleBatch", BCON_BOOL(true));
    n = s_find(self, changed, s_learn_one, &p);
    bson_destroy(changed);
    if (n < 0)
        return -1;
    /* a batch cut at S_BATCH: the next pass starts where it ended (sorted by updated_ms) */
    self->last_pass_ms = n < S_BATCH ? began : self->last_pass_ms + 1;
    return p.learned;
}

static void s_pass(void *arg)
{
    wdshared_pass(arg);
}

static void *s_thread(void *arg)
{
    wdshared_t *self = arg;
    condvar_every(&self->mu, &self->cond, &self->stop, self->period_ms, s_pass, self);
    return NULL;
}

int wdshared_start(wdshared_t *self, withdrawals_t *withdrawals, journal_t *journal, struct claims_t *claims,
                   wdshared_hand_fn *hand, void *arg, int period_ms)
{
    self->withdrawals = withdrawals;
    self->journal = journal;
    self->claims = claims;
    self->hand = hand;
    self->hand_arg = arg;
    self->period_ms = period_ms > 0 ? period_ms : 1000;
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0)
        return -1;
    self->running = 1;
    return 0;
}

wdshared_t *wdshared_new(shared_t *shared, char *err, size_t errlen)
{
    wdshared_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "shared withdrawals: no memory");
        return NULL;
    }
    self->pool = shared_pool(shared);
    snprintf(self->db, sizeof self->db, "%s", shared_db(shared));
    snprintf(self->node, sizeof self->node, "%s", shared_node(shared));
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->cond);
    return self;
}

void wdshared_stop(wdshared_t *self)
{
    if (self && self->running)
        condvar_stop_join(&self->mu, &self->cond, &self->stop, self->thread);
    if (self)
        self->running = 0;
}

void wdshared_destroy(wdshared_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wdshared_t *self = *self_p;
    wdshared_stop(self);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cond);
    free(self);
    *self_p = NULL;
}
