/* shared.c — the cluster's shared facts in MongoDB (see shared.h). Every call goes through
 * actors/mio.h. */
#include "actors/shared.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/admins.h"
#include "actors/condvar.h"
#include "actors/mio.h"
#include "actors/registry.h"
#include "schema/log.h"
#include "schema/mongo.h"

struct shared_t {
    mongoc_client_pool_t *pool;
    char db[MONGO_NAME_MAX], node[MONGO_NAME_MAX];
    atomic_int index_ok;
    atomic_int admins_index_ok;
    /* the admins' sync thread */
    admins_t *admins;
    journal_t *journal;
    int period_ms;
    pthread_t thread;
    int running, stop;
    pthread_mutex_t mu;
    pthread_cond_t cond;
};

const char *shared_node(const shared_t *self)
{
    return self->node;
}

mongoc_client_pool_t *shared_pool(shared_t *self)
{
    return self->pool;
}

const char *shared_db(const shared_t *self)
{
    return self->db;
}

/* Runs cmd (write: with write concern majority). 0 with *reply (destroy it), or -1 with a reason
 * (logged). A reply with writeErrors or ok 0 is -1. */
static int s_run(shared_t *self, const bson_t *cmd, int write, bson_t *reply, const char *what, char *err,
                 size_t errlen)
{
    bson_error_t error;
    if (!mio_command(self->pool, self->db, cmd, write, reply, &error)) {
        log_warn("shared.mongo_failed", "step=%s reason=\"%.200s\"", what, error.message);
        if (err)
            snprintf(err, errlen, "MongoDB did not answer (%.120s)", error.message);
        return -1;
    }
    return 0;
}

/* Ensures the indexes of the collections read here (the projector ensures them too), once. */
static int s_ensure_indexes(shared_t *self, char *err, size_t errlen)
{
    size_t n;
    const mongo_index_t *ix = mongo_indexes_of(MONGO_ADDRESSES, &n);
    bson_error_t error;
    if (mio_indexes_once(self->pool, self->db, ix, n, &self->index_ok, &error))
        return 0;
    log_warn("shared.mongo_failed", "step=createIndexes reason=\"%.200s\"", error.message);
    if (err)
        snprintf(err, errlen, "MongoDB did not answer (%.120s)", error.message);
    return -1;
}

/* Fills *out from the `addresses` document in *d. */
static void s_link_parse(bson_iter_t *d, shared_link_t *out)
{
    memset(out, 0, sizeof *out);
    while (bson_iter_next(d)) {
        const char *k = bson_iter_key(d);
        if (strcmp(k, "address") == 0)
            mio_iter_str(d, out->address, sizeof out->address);
        else if (strcmp(k, "chain_id") == 0)
            mio_iter_str(d, out->chain_id, sizeof out->chain_id);
        else if (strcmp(k, "node") == 0)
            mio_iter_str(d, out->node, sizeof out->node);
        else if (strcmp(k, "login") == 0 && (BSON_ITER_HOLDS_INT64(d) || BSON_ITER_HOLDS_INT32(d)))
            out->login = (uint64_t) bson_iter_as_int64(d);
    }
}

/* The first document of a reply at path (a find's "cursor.firstBatch.0", findAndModify's "value")
 * into *out. SHARED_FOUND or SHARED_NONE. */
static shared_result_t s_link_reply(const bson_t *reply, const char *path, shared_link_t *out)
{
    bson_iter_t it, d;
    if (!bson_iter_init(&it, reply) || !bson_iter_find_descendant(&it, path, &it) || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &d))
        return SHARED_NONE;
    s_link_parse(&d, out);
    return out->login ? SHARED_FOUND : SHARED_NONE;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

shared_result_t shared_link_put(shared_t *self, const char *address, const char *chain_id, uint64_t login,
                                char *err, size_t errlen)
{
    if (s_ensure_indexes(self, err, errlen) != 0)
        return SHARED_UNKNOWN;
    /* lsn 0: made here, not yet journaled; the projector's own $setOnInsert leaves this document be. */
    bson_t *cmd = BCON_NEW("findAndModify", BCON_UTF8(MONGO_ADDRESSES), "query", "{", "address", BCON_UTF8(address), "}",
                           "update", "{", "$setOnInsert", "{", "address", BCON_UTF8(address),
                           "login", BCON_INT64((int64_t) login), "chain_id", BCON_UTF8(chain_id ? chain_id : ""),
                           "lsn", BCON_INT64(0), "time", BCON_DATE_TIME(s_now_ms()), "node", BCON_UTF8(self->node),
                           "}", "}", "upsert", BCON_BOOL(true), "new", BCON_BOOL(true));
    bson_t reply;
    int rc = s_run(self, cmd, 1, &reply, "link_put", err, errlen);
    bson_destroy(cmd);
    if (rc != 0)
        return SHARED_UNKNOWN;
    shared_link_t have;
    shared_result_t r = s_link_reply(&reply, "value", &have);
    bson_destroy(&reply);
    if (r != SHARED_FOUND) {
        snprintf(err, errlen, "MongoDB did not return the link it stored");
        return SHARED_UNKNOWN;
    }
    if (have.login != login) {
        snprintf(err, errlen, "address already linked to login %llu (on node %s)", (unsigned long long) have.login,
                 have.node);
        return SHARED_NONE;
    }
    return SHARED_FOUND;
}

/* One find on `addresses` by filter, the oldest first. */
static shared_result_t s_link_find(shared_t *self, bson_t *filter, shared_link_t *out, const char *what)
{
    bson_t *cmd = BCON_NEW("find", BCON_UTF8(MONGO_ADDRESSES), "filter", BCON_DOCUMENT(filter),
                           "sort", "{", "time", BCON_INT32(1), "}", "limit", BCON_INT32(1),
                           "singleBatch", BCON_BOOL(true), "readConcern", "{", "level", BCON_UTF8("majority"), "}");
    bson_t reply;
    int rc = s_run(self, cmd, 0, &reply, what, NULL, 0);
    bson_destroy(cmd);
    if (rc != 0)
        return SHARED_UNKNOWN;
    shared_result_t r = s_link_reply(&reply, "cursor.firstBatch.0", out);
    bson_destroy(&reply);
    return r;
}

shared_result_t shared_link_get(shared_t *self, const char *address, shared_link_t *out)
{
    bson_t *filter = BCON_NEW("address", BCON_UTF8(address));
    shared_result_t r = s_link_find(self, filter, out, "link_get");
    bson_destroy(filter);
    return r;
}

shared_result_t shared_link_of(shared_t *self, uint64_t login, const char *chain_id, shared_link_t *out)
{
    bson_t *filter = BCON_NEW("login", BCON_INT64((int64_t) login), "chain_id", BCON_UTF8(chain_id));
    shared_result_t r = s_link_find(self, filter, out, "link_of");
    bson_destroy(filter);
    return r;
}

/* Journals l here (the origin is its node). SHARED_FOUND, or SHARED_NONE if the registry refuses
 * it (linked here to another login), or SHARED_UNKNOWN if the journal failed. */
static shared_result_t s_learn(shared_t *self, registry_t *registry, journal_t *journal, const shared_link_t *l,
                               char *err, size_t errlen)
{
    if (registry_link_learned(registry, journal, l->address, l->chain_id, l->login, l->node[0] ? l->node : "?", err,
                              errlen) == 0) {
        log_info("shared.link_learned", "address=%s chain=%s login=%llu from_node=%s", l->address, l->chain_id,
                 (unsigned long long) l->login, l->node);
        return SHARED_FOUND;
    }
    log_warn("shared.link_refused", "address=%s login=%llu from_node=%s reason=\"%s\"", l->address,
             (unsigned long long) l->login, l->node, err);
    return registry_failed(registry) ? SHARED_UNKNOWN : SHARED_NONE;
}

shared_result_t shared_link_learn(shared_t *self, registry_t *registry, journal_t *journal, const char *address,
                                  uint64_t *login, char *err, size_t errlen)
{
    *login = registry_address_login(registry, address);
    if (*login)
        return SHARED_FOUND;
    shared_link_t l;
    shared_result_t r = shared_link_get(self, address, &l);
    if (r == SHARED_UNKNOWN) {
        snprintf(err, errlen, "MongoDB cannot tell whether the address is linked");
        return r;
    }
    if (r == SHARED_NONE) {
        snprintf(err, errlen, "address not linked to any account");
        return r;
    }
    r = s_learn(self, registry, journal, &l, err, errlen);
    if (r == SHARED_FOUND)
        *login = l.login;
    return r;
}

shared_result_t shared_pair_learn(shared_t *self, registry_t *registry, journal_t *journal, uint64_t login,
                                  const char *chain_id, char *out, size_t outlen, char *err, size_t errlen)
{
    shared_link_t l;
    shared_result_t r = shared_link_of(self, login, chain_id, &l);
    if (r == SHARED_UNKNOWN)
        snprintf(err, errlen, "MongoDB did not answer; try again shortly");
    if (r != SHARED_FOUND)
        return r;
    r = s_learn(self, registry, journal, &l, err, errlen);
    if (r == SHARED_FOUND)
        snprintf(out, outlen, "%s", l.address);
    return r;
}

/* ---- admins -------------------------------------------------------------------------------------- */

static int s_admins_index(shared_t *self)
{
    static const mongo_index_t ix = { SHARED_ADMINS, "name_1", { "name", NULL }, 1 };
    bson_error_t error;
    if (mio_indexes_once(self->pool, self->db, &ix, 1, &self->admins_index_ok, &error))
        return 0;
    log_warn("shared.mongo_failed", "step=admins_index reason=\"%.200s\"", error.message);
    return -1;
}

static void s_admin_parse(bson_iter_t *d, admins_doc_t *out)
{
    memset(out, 0, sizeof *out);
    while (bson_iter_next(d)) {
        const char *k = bson_iter_key(d);
        if (strcmp(k, "name") == 0)
            mio_iter_str(d, out->name, sizeof out->name);
        else if (strcmp(k, "role") == 0)
            mio_iter_str(d, out->role, sizeof out->role);
        else if (strcmp(k, "pwhash") == 0)
            mio_iter_str(d, out->pwhash, sizeof out->pwhash);
        else if (strcmp(k, "totp") == 0)
            mio_iter_str(d, out->totp, sizeof out->totp);
        else if (strcmp(k, "created_by") == 0)
            mio_iter_str(d, out->created_by, sizeof out->created_by);
        else if (strcmp(k, "node") == 0)
            mio_iter_str(d, out->node, sizeof out->node);
        else if (strcmp(k, "flags") == 0)
            out->flags = (uint32_t) bson_iter_as_int64(d);
        else if (strcmp(k, "last_step") == 0)
            out->last_step = (uint64_t) bson_iter_as_int64(d);
        else if (strcmp(k, "created_ms") == 0)
            out->created_ms = bson_iter_as_int64(d);
        else if (strcmp(k, "changed_ms") == 0)
            out->changed_ms = bson_iter_as_int64(d);
    }
}

/* The fields of doc a put writes (last_step only with a new secret). */
static void s_admin_fields(const shared_t *self, const admins_doc_t *doc, bson_t *b)
{
    BSON_APPEND_UTF8(b, "name", doc->name);
    BSON_APPEND_UTF8(b, "role", doc->role);
    BSON_APPEND_UTF8(b, "pwhash", doc->pwhash);
    BSON_APPEND_UTF8(b, "totp", doc->totp);
    BSON_APPEND_UTF8(b, "created_by", doc->created_by);
    BSON_APPEND_INT32(b, "flags", (int32_t) doc->flags);
    BSON_APPEND_INT64(b, "created_ms", doc->created_ms);
    BSON_APPEND_INT64(b, "changed_ms", doc->changed_ms);
    BSON_APPEND_UTF8(b, "node", self->node);
    BSON_APPEND_DATE_TIME(b, "updated", s_now_ms());
}

/* findAndModify on admins: 0 with the document after it in *out (found), 1 none, -1 no answer. */
static int s_admin_modify(shared_t *self, const bson_t *query, const bson_t *update, int upsert, admins_doc_t *out,
                          const char *what)
{
    if (s_admins_index(self) != 0)
        return -1;
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&cmd, "findAndModify", SHARED_ADMINS);
    BSON_APPEND_DOCUMENT(&cmd, "query", query);
    BSON_APPEND_DOCUMENT(&cmd, "update", update);
    BSON_APPEND_BOOL(&cmd, "upsert", upsert);
    BSON_APPEND_BOOL(&cmd, "new", true);
    bson_t reply;
    int rc = s_run(self, &cmd, 1, &reply, what, NULL, 0);
    bson_destroy(&cmd);
    if (rc != 0)
        return -1;
    bson_iter_t it, d;
    int found = bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "value", &it) &&
                BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &d);
    if (found)
        s_admin_parse(&d, out);
    bson_destroy(&reply);
    return found ? 0 : 1;
}

static int s_admin_put(void *arg, const admins_doc_t *doc, int add)
{
    shared_t *self = arg;
    bson_t *query = BCON_NEW("name", BCON_UTF8(doc->name));
    bson_t update = BSON_INITIALIZER, fields;
    BSON_APPEND_DOCUMENT_BEGIN(&update, add ? "$setOnInsert" : "$set", &fields);
    s_admin_fields(self, doc, &fields);
    if (add || doc->new_secret)
        BSON_APPEND_INT64(&fields, "last_step", (int64_t) doc->last_step);
    bson_append_document_end(&update, &fields);
    admins_doc_t now;
    int rc = s_admin_modify(self, query, &update, 1, &now, "admin_put");
    bson_destroy(query);
    bson_destroy(&update);
    if (rc == 0 && add && strcmp(now.pwhash, doc->pwhash) != 0)
        rc = 1;   /* the name was there already: another account's */
    else if (rc == 1)
        rc = -1;  /* an upsert that returns nothing: not confirmed */
    sodium_memzero(&now, sizeof now);
    return rc;
}

static int s_admin_step(void *arg, const char *name, uint64_t step)
{
    shared_t *self = arg;
    bson_t *query = BCON_NEW("name", BCON_UTF8(name), "last_step", "{", "$lt", BCON_INT64((int64_t) step), "}");
    bson_t *update = BCON_NEW("$set", "{", "last_step", BCON_INT64((int64_t) step), "}");
    admins_doc_t now;
    int rc = s_admin_modify(self, query, update, 0, &now, "admin_step");
    bson_destroy(query);
    bson_destroy(update);
    sodium_memzero(&now, sizeof now);
    return rc;
}

/* find on admins by filter (limit 1 or every account); fn per document. 0, or -1. */
static int s_admin_find(shared_t *self, const bson_t *filter, int limit, void (*fn)(void *a, const admins_doc_t *doc),
                        void *a)
{
    bson_t *cmd = BCON_NEW("find", BCON_UTF8(SHARED_ADMINS), "filter", BCON_DOCUMENT(filter), "limit",
                           BCON_INT32(limit), "batchSize", BCON_INT32(limit), "singleBatch", BCON_BOOL(true),
                           "readConcern", "{", "level", BCON_UTF8("majority"), "}");
    bson_t reply;
    int rc = s_run(self, cmd, 0, &reply, "admin_find", NULL, 0);
    bson_destroy(cmd);
    if (rc != 0)
        return -1;
    bson_iter_t it, arr, d;
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch", &it) &&
        BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
        admins_doc_t doc;
        while (bson_iter_next(&arr))
            if (BSON_ITER_HOLDS_DOCUMENT(&arr) && bson_iter_recurse(&arr, &d)) {
                s_admin_parse(&d, &doc);
                fn(a, &doc);
            }
        sodium_memzero(&doc, sizeof doc);
    }
    bson_destroy(&reply);
    return 0;
}

static void s_admin_one(void *a, const admins_doc_t *doc)
{
    *(admins_doc_t *) a = *doc;
}

static int s_admin_get(void *arg, const char *name, admins_doc_t *out)
{
    bson_t *filter = BCON_NEW("name", BCON_UTF8(name));
    out->name[0] = '\0';
    int rc = s_admin_find(arg, filter, 1, s_admin_one, out);
    bson_destroy(filter);
    return rc != 0 ? -1 : out->name[0] ? 0 : 1;
}

static int s_admin_list(void *arg, void (*fn)(void *a, const admins_doc_t *doc), void *a)
{
    bson_t filter = BSON_INITIALIZER;
    int rc = s_admin_find(arg, &filter, ADMINS_MAX, fn, a);
    bson_destroy(&filter);
    return rc;
}

static void s_admins_pass(void *arg)
{
    shared_t *self = arg;
    admins_sync(self->admins, self->journal);
}

static void *s_admins_thread(void *arg)
{
    shared_t *self = arg;
    condvar_every(&self->mu, &self->cond, &self->stop, self->period_ms, s_admins_pass, self);
    return NULL;
}

void shared_admins_share(shared_t *self, admins_t *admins)
{
    admins_remote_t remote = { s_admin_put, s_admin_step, s_admin_get, s_admin_list, self };
    admins_share(admins, &remote);
}

int shared_admins_attach(shared_t *self, admins_t *admins, journal_t *journal, int period_ms)
{
    shared_admins_share(self, admins);
    self->admins = admins;
    self->journal = journal;
    self->period_ms = period_ms > 0 ? period_ms : 1000;
    if (pthread_create(&self->thread, NULL, s_admins_thread, self) != 0)
        return -1;
    self->running = 1;
    return 0;
}

shared_t *shared_new(const config_t *cfg, int timeout_ms, char *err, size_t errlen)
{
    shared_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "shared facts: no memory");
        return NULL;
    }
    snprintf(self->db, sizeof self->db, "%s", cfg->mongo_db[0] ? cfg->mongo_db : MONGO_DEFAULT_DB);
    snprintf(self->node, sizeof self->node, "%s", cfg->node_id);
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->cond);
    char why[120];
    self->pool = mio_pool_new(cfg->mongo_uri, timeout_ms, "kasa-shared", why, sizeof why);
    if (!self->pool) {
        snprintf(err, errlen, "shared facts: %s", why);
        shared_destroy(&self);
        return NULL;
    }
    return self;
}

void shared_destroy(shared_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shared_t *self = *self_p;
    if (self->running)
        condvar_stop_join(&self->mu, &self->cond, &self->stop, self->thread);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cond);
    if (self->pool)
        mongoc_client_pool_destroy(self->pool);
    free(self);
    *self_p = NULL;
}
