/* support_mongo.h — a MongoDB for the tests, and the check that the projection equals the journal.
 *
 * By default hm_start() runs the fixture server (tests/mongo/server.mjs: CongoDB from the npm package
 * pinned in tests/mongo/package-lock.json, installed by `make test`, with unique indexes enforced as
 * MongoDB enforces them) on a free loopback port. When KASA_TEST_MONGO_URI names a real MongoDB, the
 * same tests run against it instead, each in a database of its own (kasa_test_<name>_<pid>, dropped
 * at the end). What cannot be done to a server the tests do not own is said where it matters:
 * hm_stop() cannot stop a real MongoDB (it returns 1: "not stopped"), and hm_restart_empty() drops
 * the test's database instead of restarting the server empty.
 *
 * Header-only, all static, next to harness.h. */
#ifndef KASA_TESTS_INTEGRATION_SUPPORT_MONGO_H
#define KASA_TESTS_INTEGRATION_SUPPORT_MONGO_H

#include <mongoc/mongoc.h>

#include "actors/registry.h"
#include "schema/mongo.h"
#include "tests/integration/harness.h"

typedef struct {
    int real;                  /* 1: KASA_TEST_MONGO_URI */
    char uri[600];             /* what kasa is given (with short timeouts) */
    char db[64];
    int port;                  /* the fixture's */
    pid_t pid;                 /* the fixture's process */
    char log[512];
    int starts;
    mongoc_client_t *client;
} hm_t;

static int hm_spawn_(hm_t *m)
{
    char port[16], script[512];
    snprintf(port, sizeof port, "%d", m->port);
    const char *dir = getenv("KASA_MONGO_FIXTURE");
    snprintf(script, sizeof script, "%s", dir && *dir ? dir : "tests/mongo/server.mjs");
    if (access(script, R_OK) != 0) {
        h_log("no fixture server at %s (run from the repository root)", script);
        return -1;
    }
    char modules[600];
    snprintf(modules, sizeof modules, "%.*s/node_modules/@push.rocks/smartmongo", (int) (strrchr(script, '/') - script), script);
    if (access(modules, R_OK) != 0) {
        h_log("the fixture's npm packages are missing (%s): run `make npm-deps` (make test does)", modules);
        return -1;
    }
    char *argv[] = { "/usr/bin/env", "node", script, "--port", port, NULL };   /* node from PATH */
    char log[520];
    snprintf(log, sizeof log, "%s.%d", m->log, ++m->starts);
    m->pid = h_spawn(argv, log, NULL);
    if (m->pid <= 0 || h_wait_port(m->port, 20000) != 0) {
        h_log("the MongoDB fixture did not start on port %d", m->port);
        h_tail(log, 20);
        return -1;
    }
    return 0;
}

/* Starts (or names) the MongoDB for test name; logs go under env->dir. 0, or -1. */
H_FN int hm_start(hm_t *m, const h_env_t *env, const char *name)
{
    memset(m, 0, sizeof *m);
    static int inited;
    if (!inited) {
        mongoc_init();
        inited = 1;
    }
    snprintf(m->db, sizeof m->db, "kasa_test_%.20s_%d", name, (int) getpid());
    snprintf(m->log, sizeof m->log, "%s/mongo-fixture.log", env->dir);
    const char *real = getenv("KASA_TEST_MONGO_URI");
    if (real && *real) {
        m->real = 1;
        snprintf(m->uri, sizeof m->uri, "%s", real);
        h_log("MongoDB: KASA_TEST_MONGO_URI (database %s)", m->db);
    } else {
        m->port = h_free_port();
        if (hm_spawn_(m) != 0)
            return -1;
        snprintf(m->uri, sizeof m->uri,
                 "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000", m->port);
    }
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(m->uri, &error);
    if (!uri) {
        h_log("KASA_TEST_MONGO_URI is not a MongoDB URI: %s", error.message);
        return -1;
    }
    /* the tests' own connection waits out a slow moment of a loaded machine rather than failing */
    mongoc_uri_set_option_as_bool(uri, MONGOC_URI_SERVERSELECTIONTRYONCE, false);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 15000);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 10000);
    m->client = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    if (!m->client)
        return -1;
    mongoc_client_set_error_api(m->client, MONGOC_ERROR_API_VERSION_2);
    return 0;
}

/* Stops the fixture (kasa then sees MongoDB down). 0 stopped; 1 a real MongoDB (not stopped). */
H_FN int hm_stop(hm_t *m)
{
    if (m->real)
        return 1;
    h_kill(&m->pid);
    return 0;
}

/* Runs a command on the test's database; 0 with *reply (destroy it), or -1. */
H_FN int hm_command(hm_t *m, const bson_t *cmd, bson_t *reply)
{
    bson_error_t error;
    if (!mongoc_client_command_simple(m->client, m->db, cmd, NULL, reply, &error)) {
        h_log("MongoDB command failed: %s", error.message);
        bson_destroy(reply);
        return -1;
    }
    return 0;
}

/* Brings MongoDB back with nothing in it: the fixture restarts on its port (memory only); a real
 * MongoDB has the test's database dropped. 0, or -1. */
H_FN int hm_restart_empty(hm_t *m)
{
    if (!m->real) {
        h_kill(&m->pid);
        return hm_spawn_(m);
    }
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
    int rc = hm_command(m, &cmd, &reply);
    bson_destroy(&cmd);
    if (rc == 0)
        bson_destroy(&reply);
    return rc;
}

/* Drops a real MongoDB's test database, stops the fixture, frees. */
H_FN void hm_finish(hm_t *m)
{
    if (m->real && m->client) {
        bson_t cmd = BSON_INITIALIZER, reply;
        BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
        if (hm_command(m, &cmd, &reply) == 0)
            bson_destroy(&reply);
        bson_destroy(&cmd);
    }
    if (m->client)
        mongoc_client_destroy(m->client);
    m->client = NULL;
    h_kill(&m->pid);
}

/* Calls fn for every document of collection matching filter (NULL: all). Returns how many, or -1. */
H_FN long hm_find(hm_t *m, const char *collection, const bson_t *filter, void (*fn)(void *arg, const bson_t *doc),
                  void *arg)
{
    mongoc_collection_t *c = mongoc_client_get_collection(m->client, m->db, collection);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter ? filter : &empty, NULL, NULL);
    const bson_t *doc;
    long n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        if (fn)
            fn(arg, doc);
        n++;
    }
    bson_error_t error;
    if (mongoc_cursor_error(cur, &error)) {
        h_log("find %s: %s", collection, error.message);
        n = -1;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    bson_destroy(&empty);
    return n;
}

/* An insert of one document; returns 0, the first write error's code (11000 for a duplicate key),
 * or -1 when the command itself failed. */
H_FN int hm_insert(hm_t *m, const char *collection, const bson_t *doc)
{
    bson_t cmd = BSON_INITIALIZER, docs, reply;
    BSON_APPEND_UTF8(&cmd, "insert", collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "documents", &docs);
    BSON_APPEND_DOCUMENT(&docs, "0", doc);
    bson_append_array_end(&cmd, &docs);
    bson_error_t error;
    int rc = -1;
    if (mongoc_client_write_command_with_opts(m->client, m->db, &cmd, NULL, &reply, &error)) {
        bson_iter_t it;
        rc = 0;
        if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "writeErrors.0.code", &it))
            rc = (int) bson_iter_as_int64(&it);
    } else if (error.code == MONGO_DUPLICATE_KEY) {
        rc = MONGO_DUPLICATE_KEY;   /* a driver that turns the write error into a failure */
    } else {
        h_log("insert into %s: %s", collection, error.message);
    }
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return rc;
}

/* ---- the projection equals the journal -------------------------------------------------------- */

typedef struct {
    uint8_t *seen;        /* per LSN, 1..records */
    uint64_t records;
    long bad;             /* an LSN out of range, or seen twice */
} hm_lsns_t;

static void hm_lsn_(void *arg, const bson_t *doc)
{
    hm_lsns_t *s = arg;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "lsn")) {
        s->bad++;
        return;
    }
    int64_t lsn = bson_iter_as_int64(&it);
    if (lsn < 1 || (uint64_t) lsn > s->records || s->seen[lsn]++)
        s->bad++;
}

typedef struct {
    hm_t *m;
    const char *node;
    long checked, wrong;
    char why[300];
} hm_dep_t;

static const char *hm_str_(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
}

static int64_t hm_i64_(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) ? bson_iter_as_int64(&it) : -1;
}

typedef struct {
    bson_t doc;
    int have;
} hm_one_t;

/* Keeps the first document found (hm_one_t, have = 0 before; bson_destroy(&doc) after if have). */
static void hm_one_doc_(void *arg, const bson_t *doc)
{
    hm_one_t *o = arg;
    if (!o->have)
        bson_copy_to(doc, &o->doc);
    o->have = 1;
}

static void hm_deposit_(void *arg, const registry_entry_t *e)
{
    hm_dep_t *d = arg;
    bson_t filter = BSON_INITIALIZER;
    hm_one_t one = { .have = 0 };
    BSON_APPEND_UTF8(&filter, "transaction_id", e->view.tx_id);
    long n = hm_find(d->m, MONGO_DEPOSITS, &filter, hm_one_doc_, &one);
    bson_destroy(&filter);
    d->checked++;
    const deposit_view_t *v = &e->view;
    if (n != 1) {
        d->wrong++;
        snprintf(d->why, sizeof d->why, "deposit %s: %ld documents", v->tx_id, n);
        if (one.have)
            bson_destroy(&one.doc);
        return;
    }
    const bson_t *doc = &one.doc;
    const char *state = hm_str_(doc, "state");
    if (strcmp(state, deposit_state_name(v->state)) != 0 || hm_i64_(doc, "login") != (int64_t) v->login ||
        hm_i64_(doc, "credit_minor") != v->credit_minor || hm_i64_(doc, "ticket") != (int64_t) v->ticket ||
        strcmp(hm_str_(doc, "amount"), v->amount) != 0 || hm_i64_(doc, "last_lsn") != (int64_t) e->last_lsn ||
        hm_i64_(doc, "attempts") != (int64_t) e->attempts || strcmp(hm_str_(doc, "address"), v->address) != 0) {
        d->wrong++;
        snprintf(d->why, sizeof d->why, "deposit %s: MongoDB says state=%s lsn=%lld, the journal %s lsn=%llu",
                 v->tx_id, state, (long long) hm_i64_(doc, "last_lsn"), deposit_state_name(v->state),
                 (unsigned long long) e->last_lsn);
    }
    bson_destroy(&one.doc);
}

/* 0 when MongoDB holds exactly the journal in dir as projected by node: every record once in
 * transitions, every deposit's document equal to the registry's view after a replay, every link in
 * addresses, and the node's position at the last record. Else -1 with the first difference in why. */
H_FN int hm_check(hm_t *m, const char *dir, const char *node, char *why, size_t whylen)
{
    char err[300];
    registry_t *reg = registry_new(100000);
    long records = registry_replay(reg, dir, err, sizeof err);
    int rc = -1;
    if (records < 0) {
        snprintf(why, whylen, "replay: %s", err);
        registry_destroy(&reg);
        return -1;
    }
    hm_lsns_t s = { calloc((size_t) records + 1, 1), (uint64_t) records, 0 };
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "node", node);
    long n = hm_find(m, MONGO_TRANSITIONS, &filter, hm_lsn_, &s);
    hm_one_t pos = { .have = 0 };
    long npos = hm_find(m, MONGO_NODES, &filter, hm_one_doc_, &pos);
    bson_destroy(&filter);
    hm_dep_t d = { m, node, 0, 0, "" };
    if (n != records || s.bad) {
        snprintf(why, whylen, "transitions: %ld documents (%ld out of range or repeated), the journal has %ld records",
                 n, s.bad, records);
    } else if (npos != 1 || hm_i64_(&pos.doc, "lsn") != records) {
        snprintf(why, whylen, "kasa_nodes: %ld documents, lsn %lld, the journal has %ld records", npos,
                 pos.have ? (long long) hm_i64_(&pos.doc, "lsn") : -1LL, records);
    } else {
        registry_each(reg, 0, 0, hm_deposit_, &d);
        long deposits = hm_find(m, MONGO_DEPOSITS, NULL, NULL, NULL);
        long links = hm_find(m, MONGO_ADDRESSES, NULL, NULL, NULL);
        if (d.wrong)
            snprintf(why, whylen, "%s", d.why);
        else if (deposits != (long) registry_count(reg))
            snprintf(why, whylen, "deposits: %ld documents, the journal has %zu deposits", deposits, registry_count(reg));
        else if (links != (long) registry_link_count(reg))
            snprintf(why, whylen, "addresses: %ld documents, the journal has %zu links", links, registry_link_count(reg));
        else
            rc = 0;
    }
    if (pos.have)
        bson_destroy(&pos.doc);
    free(s.seen);
    registry_destroy(&reg);
    return rc;
}

/* hm_check until it passes or timeout_ms pass; logs the last difference. 0 or -1. */
H_FN int hm_wait_equal(hm_t *m, const char *dir, const char *node, int timeout_ms)
{
    char why[400] = "";
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        if (hm_check(m, dir, node, why, sizeof why) == 0)
            return 0;
        if (h_now_ms() >= end) {
            h_log("the projection does not equal the journal: %s", why);
            return -1;
        }
        h_sleep_ms(100);
    }
}

#endif
