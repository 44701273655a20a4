/* mio.c — MongoDB operations, counted and breakable on purpose (see mio.h). */
#include "actors/mio.h"

#include <stdatomic.h>
#include <stdio.h>

static atomic_uint_fast64_t s_count[MIO_OP_COUNT];
static atomic_uint_fast64_t s_fail_at[MIO_OP_COUNT];   /* absolute call number that fails; 0 = none */
static atomic_int s_fail_how[MIO_OP_COUNT];
static atomic_uint_fast64_t s_fired;

void mio_fail_at(mio_op_t op, uint64_t n, mio_fault_t how)
{
    if (op < 0 || op >= MIO_OP_COUNT)
        return;
    atomic_store(&s_fail_how[op], (int) how);
    atomic_store(&s_fail_at[op], n ? atomic_load(&s_count[op]) + n : 0);
}

void mio_reset(void)
{
    for (int i = 0; i < MIO_OP_COUNT; i++) {
        atomic_store(&s_fail_at[i], 0);
        atomic_store(&s_count[i], 0);
    }
    atomic_store(&s_fired, 0);
}

uint64_t mio_count(mio_op_t op)
{
    return (op < 0 || op >= MIO_OP_COUNT) ? 0 : atomic_load(&s_count[op]);
}

uint64_t mio_faults_fired(void)
{
    return atomic_load(&s_fired);
}

/* Counts one call of kind op; returns 1 if this call is the one armed to fail (*how says how). */
static int s_faulted(mio_op_t op, mio_fault_t *how)
{
    uint64_t n = atomic_fetch_add(&s_count[op], 1) + 1;
    uint64_t at = atomic_load(&s_fail_at[op]);
    if (at != 0 && n == at && atomic_compare_exchange_strong(&s_fail_at[op], &at, 0)) {
        atomic_fetch_add(&s_fired, 1);
        *how = (mio_fault_t) atomic_load(&s_fail_how[op]);
        return 1;
    }
    return 0;
}

static bool s_injected(bson_t *reply, bson_error_t *error)
{
    bson_destroy(reply);
    bson_init(reply);
    bson_set_error(error, MIO_ERROR_DOMAIN, MIO_ERROR_INJECTED, "injected fault");
    return false;
}

bool mio_read(mongoc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *error)
{
    mio_fault_t how;
    int faulted = s_faulted(MIO_READ, &how);
    if (faulted && how == MIO_BEFORE) {
        bson_init(reply);
        return s_injected(reply, error);
    }
    bool ok = mongoc_client_command_simple(client, db, cmd, NULL, reply, error);
    if (faulted) /* MIO_AFTER: the answer is lost */
        return s_injected(reply, error);
    return ok;
}

bool mio_write(mongoc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *error)
{
    mio_fault_t how;
    int faulted = s_faulted(MIO_WRITE, &how);
    if (faulted && how == MIO_BEFORE) {
        bson_init(reply);
        return s_injected(reply, error);
    }
    bool ok = mongoc_client_write_command_with_opts(client, db, cmd, NULL, reply, error);
    if (faulted) /* MIO_AFTER: the server applied it; the answer is lost */
        return s_injected(reply, error);
    return ok;
}

/* uri with socket, server-selection and connect timeouts of timeout_ms where it sets none; NULL with a
 * reason when it is not a MongoDB URI. */
static mongoc_uri_t *s_uri(const char *uri, int timeout_ms, char *err, size_t errlen)
{
    bson_error_t error;
    mongoc_init();
    mongoc_uri_t *u = mongoc_uri_new_with_error(uri, &error);
    if (!u) {
        snprintf(err, errlen, "KASA_MONGO_URI is not a MongoDB URI");
        return NULL;
    }
    static const char *const keys[] = { MONGOC_URI_SOCKETTIMEOUTMS, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                        MONGOC_URI_CONNECTTIMEOUTMS };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!mongoc_uri_has_option(u, keys[i]))
            mongoc_uri_set_option_as_int32(u, keys[i], timeout_ms);
    return u;
}

mongoc_client_pool_t *mio_pool_new(const char *uri, int timeout_ms, const char *appname, char *err, size_t errlen)
{
    mongoc_uri_t *u = s_uri(uri, timeout_ms, err, errlen);
    if (!u)
        return NULL;
    mongoc_client_pool_t *pool = mongoc_client_pool_new(u);   /* copies the URI */
    mongoc_uri_destroy(u);
    if (!pool) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(pool, appname);
    return pool;
}

mongoc_client_t *mio_client_new(const char *uri, int timeout_ms, const char *appname, char *err, size_t errlen)
{
    mongoc_uri_t *u = s_uri(uri, timeout_ms, err, errlen);
    if (!u)
        return NULL;
    mongoc_client_t *client = mongoc_client_new_from_uri(u);   /* copies the URI */
    mongoc_uri_destroy(u);
    if (!client) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(client, appname);
    return client;
}

bool mio_command(mongoc_client_pool_t *pool, const char *db, const bson_t *cmd, int write, bson_t *reply,
                 bson_error_t *error)
{
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    bool ok = write ? mio_write_majority(client, db, cmd, reply, error) : mio_read(client, db, cmd, reply, error);
    mongoc_client_pool_push(pool, client);
    bson_iter_t it;
    if (ok && ((bson_iter_init_find(&it, reply, "ok") && bson_iter_as_int64(&it) == 0) ||
               (bson_iter_init_find(&it, reply, "writeErrors")))) {
        ok = false;
        snprintf(error->message, sizeof error->message, "refused by MongoDB");
    }
    if (!ok)
        bson_destroy(reply);
    return ok;
}

bool mio_write_majority(mongoc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *error)
{
    mio_fault_t how;
    int faulted = s_faulted(MIO_WRITE, &how);
    if (faulted && how == MIO_BEFORE) {
        bson_init(reply);
        return s_injected(reply, error);
    }
    mongoc_write_concern_t *wc = mongoc_write_concern_new();
    mongoc_write_concern_set_wmajority(wc, 10000);
    bson_t opts = BSON_INITIALIZER;
    mongoc_write_concern_append(wc, &opts);
    bool ok = mongoc_client_write_command_with_opts(client, db, cmd, &opts, reply, error);
    bson_destroy(&opts);
    mongoc_write_concern_destroy(wc);
    if (faulted) /* MIO_AFTER: the server applied it; the answer is lost */
        return s_injected(reply, error);
    return ok;
}

bool mio_indexes_once(mongoc_client_pool_t *pool, const char *db, const mongo_index_t *specs, size_t n,
                      atomic_int *done, bson_error_t *error)
{
    if (atomic_load(done))
        return true;
    for (size_t i = 0; i < n; i++) {
        bson_t cmd, reply;
        mongo_index_command(&specs[i], &cmd);
        bool ok = mio_command(pool, db, &cmd, 1, &reply, error);
        bson_destroy(&cmd);
        if (!ok)
            return false;
        bson_destroy(&reply);
    }
    atomic_store(done, 1);
    return true;
}

void mio_iter_str(const bson_iter_t *it, char *out, size_t len)
{
    out[0] = '\0';
    if (BSON_ITER_HOLDS_UTF8(it))
        snprintf(out, len, "%s", bson_iter_utf8(it, NULL));
}

int64_t mio_iter_int64(const bson_iter_t *it)
{
    if (BSON_ITER_HOLDS_DATE_TIME(it))
        return bson_iter_date_time(it);
    return BSON_ITER_HOLDS_NUMBER(it) || BSON_ITER_HOLDS_BOOL(it) ? bson_iter_as_int64(it) : 0;
}

void mio_str(const bson_t *doc, const char *key, char *out, size_t len)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key))
        mio_iter_str(&it, out, len);
    else
        out[0] = '\0';
}

int64_t mio_int64(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) ? mio_iter_int64(&it) : 0;
}
