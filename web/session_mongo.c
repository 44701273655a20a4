/* session_mongo.c — sessions shared through MongoDB (see session_mongo.h). Every call goes through
 * actors/mio.h, so tests can fail it. */
#include "web/session_mongo.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/mio.h"
#include "schema/log.h"
#include "schema/mongo.h"

struct session_mongo_t {
    mongoc_client_pool_t *pool;
    char db[MONGO_NAME_MAX], coll[32];
    atomic_int index_ok;
};

/* Runs cmd. 0 with *reply (destroy it), or -1 (logged). A reply with writeErrors or ok 0 is -1. */
static int s_run(session_mongo_t *self, const bson_t *cmd, int write, bson_t *reply, const char *what)
{
    bson_error_t error;
    if (!mio_command(self->pool, self->db, cmd, write, reply, &error)) {
        log_warn("session.mongo_failed", "collection=%s step=%s reason=\"%.200s\"", self->coll, what, error.message);
        return -1;
    }
    return 0;
}

/* Ensures the unique index on key and the TTL index on expires, once. 0, or -1. */
static int s_ensure_index(session_mongo_t *self)
{
    if (atomic_load(&self->index_ok))
        return 0;
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(self->coll), "indexes", "[",
                           "{", "key", "{", "key", BCON_INT32(1), "}", "name", BCON_UTF8("key_1"),
                           "unique", BCON_BOOL(true), "}",
                           "{", "key", "{", "expires", BCON_INT32(1), "}", "name", BCON_UTF8("expires_ttl"),
                           "expireAfterSeconds", BCON_INT32(0), "}", "]");
    bson_t reply;
    int rc = s_run(self, cmd, 1, &reply, "createIndexes");
    bson_destroy(cmd);
    if (rc != 0)
        return -1;
    bson_destroy(&reply);
    atomic_store(&self->index_ok, 1);
    return 0;
}

static int s_put(void *arg, const char *key, const session_info_t *info, int64_t absolute_s)
{
    session_mongo_t *self = arg;
    if (s_ensure_index(self) != 0)
        return -1;
    bson_t *cmd = BCON_NEW("insert", BCON_UTF8(self->coll), "documents", "[", "{",
                           "key", BCON_UTF8(key), "login", BCON_INT64((int64_t) info->login),
                           "name", BCON_UTF8(info->name), "csrf", BCON_UTF8(info->csrf),
                           "created_s", BCON_INT64(info->created_s), "last_s", BCON_INT64(info->last_s),
                           "expires", BCON_DATE_TIME((info->created_s + absolute_s) * 1000), "}", "]");
    bson_t reply;
    int rc = s_run(self, cmd, 1, &reply, "insert");
    bson_destroy(cmd);
    if (rc == 0)
        bson_destroy(&reply);
    return rc;
}

/* Fills *out from the session document d. */
static void s_parse(bson_iter_t *d, session_info_t *out)
{
    while (bson_iter_next(d)) {
        const char *k = bson_iter_key(d);
        if (strcmp(k, "login") == 0)
            out->login = (uint64_t) bson_iter_as_int64(d);
        else if (strcmp(k, "name") == 0 && BSON_ITER_HOLDS_UTF8(d))
            snprintf(out->name, sizeof out->name, "%s", bson_iter_utf8(d, NULL));
        else if (strcmp(k, "csrf") == 0 && BSON_ITER_HOLDS_UTF8(d))
            snprintf(out->csrf, sizeof out->csrf, "%s", bson_iter_utf8(d, NULL));
        else if (strcmp(k, "created_s") == 0)
            out->created_s = bson_iter_as_int64(d);
        else if (strcmp(k, "last_s") == 0)
            out->last_s = bson_iter_as_int64(d);
    }
}

static int s_get(void *arg, const char *key, int64_t touch_s, session_info_t *out)
{
    session_mongo_t *self = arg;
    bson_t *cmd = touch_s > 0
                      ? BCON_NEW("findAndModify", BCON_UTF8(self->coll), "query", "{", "key", BCON_UTF8(key), "}",
                                 "update", "{", "$set", "{", "last_s", BCON_INT64(touch_s), "}", "}",
                                 "new", BCON_BOOL(false))
                      : BCON_NEW("find", BCON_UTF8(self->coll), "filter", "{", "key", BCON_UTF8(key), "}",
                                 "limit", BCON_INT32(1), "singleBatch", BCON_BOOL(true));
    bson_t reply;
    int rc = s_run(self, cmd, touch_s > 0, &reply, touch_s > 0 ? "findAndModify" : "find");
    bson_destroy(cmd);
    if (rc != 0)
        return -1;
    bson_iter_t it, d;
    int found = bson_iter_init(&it, &reply) &&
                bson_iter_find_descendant(&it, touch_s > 0 ? "value" : "cursor.firstBatch.0", &it) &&
                BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &d);
    if (found)
        s_parse(&d, out);
    bson_destroy(&reply);
    return found ? 0 : 1;
}

static int s_del(void *arg, const char *key, const char *name)
{
    session_mongo_t *self = arg;
    bson_t *cmd = BCON_NEW("delete", BCON_UTF8(self->coll), "deletes", "[", "{", "q", "{",
                           key ? "key" : "name", BCON_UTF8(key ? key : name), "}", "limit", BCON_INT32(key ? 1 : 0),
                           "}", "]");
    bson_t reply;
    int rc = s_run(self, cmd, 1, &reply, "delete");
    bson_destroy(cmd);
    if (rc == 0)
        bson_destroy(&reply);
    return rc;
}

session_mongo_t *session_mongo_new(const char *uri, const char *db, const char *collection, int timeout_ms,
                                   char *err, size_t errlen)
{
    session_mongo_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "sessions: no memory");
        return NULL;
    }
    snprintf(self->db, sizeof self->db, "%s", db && *db ? db : MONGO_DEFAULT_DB);
    snprintf(self->coll, sizeof self->coll, "%s", collection);
    char why[120];
    self->pool = mio_pool_new(uri, timeout_ms, "kasa-sessions", why, sizeof why);
    if (!self->pool) {
        snprintf(err, errlen, "sessions: %s", why);
        session_mongo_destroy(&self);
        return NULL;
    }
    return self;
}

void session_mongo_destroy(session_mongo_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    session_mongo_t *self = *self_p;
    if (self->pool)
        mongoc_client_pool_destroy(self->pool);
    free(self);
    *self_p = NULL;
}

session_remote_t session_mongo_remote(session_mongo_t *self)
{
    session_remote_t r = { s_put, s_get, s_del, self, NULL };
    return r;
}

static void s_destroy(void *arg)
{
    session_mongo_t *self = arg;
    session_mongo_destroy(&self);
}

session_store_t *session_mongo_store(const config_t *cfg, const char *collection, const session_opts_t *opts)
{
    if (!cfg->cluster || !cfg->mongo_uri[0])
        return session_store_new(opts);
    char err[200];
    session_mongo_t *m = session_mongo_new(cfg->mongo_uri, cfg->mongo_db, collection, 2000, err, sizeof err);
    if (!m) {
        log_error("session.mongo_off", "reason=\"%s\"", err);
        return NULL;
    }
    session_remote_t r = session_mongo_remote(m);
    r.destroy = s_destroy;
    session_opts_t o = {0};
    if (opts)
        o = *opts;
    o.remote = &r;
    session_store_t *store = session_store_new(&o);
    if (!store)
        session_mongo_destroy(&m);
    return store;
}
