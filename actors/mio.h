/* mio.h — every MongoDB operation kasa performs, in one thin layer that tests can break (what
 * journal/fio.h is for files).
 *
 * Each function is the plain libmongoc call (same arguments, same result: true, or false with
 * *error set), counted per kind. A test arms a fault with mio_fail_at(op, n, how): the n-th call of
 * that kind from now on fails, once, with error domain MIO_ERROR_DOMAIN, code MIO_ERROR_INJECTED and
 * the message "injected fault". MIO_BEFORE fails it without sending anything; MIO_AFTER sends it,
 * lets the server apply it, and loses the answer (the caller cannot tell whether it was applied: the
 * projector must then be safe to write the same thing again). Counters and faults are atomics. */
#ifndef KASA_ACTORS_MIO_H
#define KASA_ACTORS_MIO_H

#include <mongoc/mongoc.h>
#include <stdatomic.h>
#include <stdint.h>

#include "schema/mongo.h"

#define MIO_ERROR_DOMAIN 9100
#define MIO_ERROR_INJECTED 1

typedef enum {
    MIO_READ,     /* mio_read: commands that change nothing (ping, find)          */
    MIO_WRITE,    /* mio_write: commands that write (update, delete, createIndexes) */
    MIO_OP_COUNT
} mio_op_t;

typedef enum { MIO_BEFORE, MIO_AFTER } mio_fault_t;

/* Arms a fault: the n-th call (n >= 1, counted from this call) of kind op fails as how says, once.
 * n = 0 disarms that kind. */
void mio_fail_at(mio_op_t op, uint64_t n, mio_fault_t how);

/* Disarms every fault and zeroes every counter. */
void mio_reset(void);

/* Calls of kind op since the last mio_reset (faulted ones included), and faults fired. */
uint64_t mio_count(mio_op_t op);
uint64_t mio_faults_fired(void);

/* A command that reads (mongoc_client_command_simple on the primary). *reply is always initialised. */
bool mio_read(mongoc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *error);

/* A command that writes (mongoc_client_write_command_with_opts: the URI's write concern applies).
 * *reply is always initialised. A reply with writeErrors is still true: the caller reads them. */
bool mio_write(mongoc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *error);

/* mio_write with write concern majority (wtimeout 10 s) whatever the URI says: a write acknowledged
 * this way survives a replica set's fail-over. Counted and faulted as MIO_WRITE. */
bool mio_write_majority(mongoc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply,
                        bson_error_t *error);

/* A client pool on uri whose calls wait at most timeout_ms (socket, server selection and connect,
 * unless the URI sets them), named appname. NULL with a reason (not a MongoDB URI, no memory). */
mongoc_client_pool_t *mio_pool_new(const char *uri, int timeout_ms, const char *appname, char *err, size_t errlen);

/* One client on uri for a one-off job (an offline command: `kasa reconcile`, `kasa cluster status`, ...)
 * whose calls wait at most timeout_ms, as mio_pool_new's; mongoc_client_destroy it. NULL with a
 * reason. Not for threads sharing it (a pool is). */
#define MIO_ONE_OFF_TIMEOUT_MS 3000
mongoc_client_t *mio_client_new(const char *uri, int timeout_ms, const char *appname, char *err, size_t errlen);

/* One command on a client of pool: mio_write_majority (write) or mio_read. true with *reply; false
 * with *error (reply destroyed) also when MongoDB answered ok 0 or with writeErrors ("refused by
 * MongoDB"). */
bool mio_command(mongoc_client_pool_t *pool, const char *db, const bson_t *cmd, int write, bson_t *reply,
                 bson_error_t *error);

/* Ensures the indexes specs[0..n) (createIndexes through mio_command, write concern majority) once:
 * after the first success *done is set and later calls send nothing. For a collection's unique
 * index before the first write that relies on it. Two threads may both send it (creating an index
 * that exists changes nothing). true, or false with *error. */
bool mio_indexes_once(mongoc_client_pool_t *pool, const char *db, const mongo_index_t *specs, size_t n,
                      atomic_int *done, bson_error_t *error);

/* ---- a document's fields, read into fixed buffers ----
 * The field of the document at key, or the one *it is on: a string is copied into out (cut to len),
 * "" when absent or not a string; an integer is a number's value (as bson_iter_as_int64), a date's
 * milliseconds or a bool's 0/1, 0 when absent or of another type. */
void mio_str(const bson_t *doc, const char *key, char *out, size_t len);
int64_t mio_int64(const bson_t *doc, const char *key);
void mio_iter_str(const bson_iter_t *it, char *out, size_t len);
int64_t mio_iter_int64(const bson_iter_t *it);

#endif
