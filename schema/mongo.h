/* mongo.h — kasa's MongoDB collections: their names, their indexes and the documents the projector
 * writes, in one place (the README's "MongoDB" section describes the same).
 *
 * MongoDB is the journal's queryable projection: every journal record becomes one `transitions`
 * document, every deposit one `deposits` document, every address link one `addresses` document, and
 * `kasa_nodes` remembers, per kasa node, the last LSN projected. The journal stays the truth; any of
 * these can be rebuilt from it (`kasa mongo rebuild`).
 *
 *   transitions  {node, lsn, kind, time, transaction_id?, from, to, event, status, ... (the fields the
 *                record's kind uses, as `kasa journal dump --json` names them, tx_id as transaction_id)}
 *                unique (node, lsn)
 *   deposits     {transaction_id, state, state_rank, status, confirmations, threshold, token_id, chain_id,
 *                address, amount, tx_hash, login, credit, credit_minor, digits, currency, ticket, reason,
 *                remainder, ref, attempts, notice_failed, alert_count, alert, approvers, approvals, created,
 *                updated, last_lsn, node}   unique transaction_id; the furthest view any node wrote
 *                (actors/views.h: views_deposit_doc, views_deposit_guard)
 *   addresses    {address, login, chain_id, lsn, time, node}               unique address
 *   kasa_nodes   {node, lsn, time, updated}                                unique node
 *
 * Money is exact decimal text ("249.50", "0.000001") or integer minor units with their digits; never
 * a double. Times are BSON dates (UTC). `_id` is left to MongoDB (an ObjectId): the business keys
 * live in their own fields behind unique indexes.
 *
 * A new collection (withdrawals, the admins' audit) is one more name below and its rows in the index
 * table in mongo.c: the projector ensures every index of the table at start. */
#ifndef KASA_SCHEMA_MONGO_H
#define KASA_SCHEMA_MONGO_H

#include <bson/bson.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/record.h"

#define MONGO_TRANSITIONS "transitions"
#define MONGO_DEPOSITS "deposits"
#define MONGO_ADDRESSES "addresses"
#define MONGO_NODES "kasa_nodes"

#define MONGO_DEFAULT_DB "kasa"
#define MONGO_NAME_MAX 64        /* a database name or a node id, at most 63 bytes */
#define MONGO_DUPLICATE_KEY 11000 /* MongoDB's error code for a unique index refusing a write */

/* One index kasa keeps: on collection, named name, over up to 3 ascending fields. */
typedef struct {
    const char *collection;
    const char *name;
    const char *fields[3];       /* NULL-terminated when fewer than 3 */
    int unique;
} mongo_index_t;

/* The index table: every index kasa ensures at start. *count gets its length. */
const mongo_index_t *mongo_indexes(size_t *count);

/* The table's indexes of one collection (they stand together), *count of them (0: NULL). */
const mongo_index_t *mongo_indexes_of(const char *collection, size_t *count);

/* The collections kasa writes (the table's collections, each once, in a fixed order). */
const char *const *mongo_collections(size_t *count);

/* Builds the createIndexes command for one index into *cmd (initialised here; bson_destroy it). */
void mongo_index_command(const mongo_index_t *ix, bson_t *cmd);

/* The `transitions` document of record r at lsn, projected by node, into *doc (initialised here).
 * The fields are record_to_json's (one description of a record serves both), with tx_id named
 * transaction_id, lsn an int64, time a BSON date, and node added. 0, or -1 if r cannot be described. */
int mongo_transition_doc(const record_t *r, uint64_t lsn, const char *node, bson_t *doc);

/* Writes uri with its secrets removed into buf: a password becomes "(secret)" and the options
 * after '?' (which may hold TLS key passwords) become "?(options)". Never fails; cuts to len. */
void mongo_uri_redact(const char *uri, char *buf, size_t len);

/* 0 if name is a usable database name (1..63 bytes, none of / \ . " $ space or control bytes),
 * else -1 with a reason. */
int mongo_db_name_check(const char *name, char *err, size_t errlen);

/* 0 if id is a usable node id (1..63 printable ASCII bytes, no space), else -1 with a reason. */
int mongo_node_id_check(const char *id, char *err, size_t errlen);

#endif
