/* views.h — the deposits as the panels show them, and the `deposits` document that carries them in
 * MongoDB (collections: schema/mongo.h).
 *
 * On one node the registry (actors/registry.h) holds every deposit kasa knows. In cluster mode
 * (KASA_CLUSTER=on) a node's registry holds only the deposits whose webhooks it received, each as
 * far as this node took it: a node that is not a deposit's claim holder shows RECEIVED while the
 * holder has CREDITED it. Every node projects its registry's views into MongoDB's `deposits`, one
 * document per deposit, which keeps the furthest view any node has written (the write is guarded by
 * deposit_state_rank: views_deposit_guard), so MongoDB holds the cluster's view. The panels read it:
 *
 *   - MongoDB's view and this node's are merged per deposit: the further one counts (higher
 *     deposit_state_rank; at an equal rank the later `updated`; a document this node wrote itself
 *     yields to this node's memory, which is as new or newer). A deposit this node took further than
 *     MongoDB shows yet (the projector's lag) is shown as this node has it; one MongoDB lacks is
 *     shown from here. The view is never worse than this node's alone.
 *   - MongoDB not answering within the timeout (or not answering a moment ago: the next calls for a
 *     second answer at once) is no error: the answer is this node's view alone, marked VIEWS_STALE
 *     ("may be stale"), which the APIs carry as "stale": true and the panels show.
 *
 * Single-node mode reads the registry alone, as before (VIEWS_LOCAL), and needs no MongoDB.
 * Every MongoDB call goes through actors/mio.h, so a test can fail it. Thread-safe. */
#ifndef KASA_ACTORS_VIEWS_H
#define KASA_ACTORS_VIEWS_H

#include <bson/bson.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/registry.h"
#include "actors/totals.h"
#include "schema/config.h"
#include "schema/json.h"

typedef struct views_t views_t;

/* Where an answer came from. */
typedef enum {
    VIEWS_LOCAL = 0,     /* one node: its registry is the whole truth                              */
    VIEWS_CLUSTER = 1,   /* MongoDB answered: the cluster's view merged with this node's            */
    VIEWS_STALE = 2,     /* cluster mode, MongoDB did not answer: this node's view alone, may be stale */
} views_source_t;

#define VIEWS_TIMEOUT_MS 1000   /* a view waits at most this for MongoDB (unless the URI sets its own) */
#define VIEWS_WINDOW_MAX 5000   /* a search merges at most this many of the newest matches            */

/* The views of registry for the node cfg->node_id: in cluster mode on cfg->mongo_uri / mongo_db,
 * each MongoDB call waiting at most timeout_ms (0: VIEWS_TIMEOUT_MS). MongoDB need not be reachable.
 * NULL with a reason on a bad URI or no memory. */
views_t *views_new(const config_t *cfg, registry_t *registry, int timeout_ms, char *err, size_t errlen);
void views_destroy(views_t **self_p);

/* 1 in cluster mode (MongoDB is read), 0 on one node. */
int views_cluster(const views_t *self);

typedef void (views_fn)(void *arg, const registry_entry_t *e);
/* The caller's whole filter, on a merged view: 1 keep, 0 drop (NULL: keep every one). */
typedef int (views_match_fn)(void *arg, const registry_entry_t *e);

/* What MongoDB is asked (each part index-served: login_1_created_1, transaction_id_1, tx_hash_1,
 * address_1, state_1_updated_1, created_1). */
typedef struct {
    uint64_t login;              /* 0: any */
    int state;                   /* -1: any (deposit_state_t) */
    int64_t from_ms, to_ms;      /* created within [from, to); 0: open */
    const char *q;               /* a whole transaction id, chain hash or address (NULL or "": any) */
    int limit;                   /* the newest this many (1..VIEWS_WINDOW_MAX) */
} views_query_t;

/* The newest q->limit deposits across the cluster that pass match, newest first (by created), each
 * the merge of MongoDB's view and this node's, given to fn. This node's candidates are its deposits
 * of q->login (any login: every deposit in memory, and q as a whole transaction id) that pass match
 * as it has them; MongoDB's are those the query matches. *total (if not NULL) gets how many match
 * (MongoDB's count of the query when the window is full, at least those found). Returns the source
 * (VIEWS_CLUSTER, or VIEWS_STALE when MongoDB did not answer: this node's alone), or -1 when this
 * node's index of finished deposits could not be read and MongoDB did not answer, or no memory
 * (nothing can be told). Parts of match MongoDB is not asked (an amount range, a part of an id) are
 * applied to the newest q->limit MongoDB matches. Meant for cluster mode (on one node: VIEWS_LOCAL
 * with this node's). */
int views_list(views_t *self, const views_query_t *q, views_match_fn *match, void *match_arg, views_fn *fn,
               void *arg, long *total);

/* One deposit by its whole transaction id, merged: 1 with *out, 0 unknown (to MongoDB and here), -1
 * cannot tell (this node's index unreadable and MongoDB did not answer). *source as views_list. */
int views_get(views_t *self, const char *tx_id, registry_entry_t *out, views_source_t *source);

/* The summary's figures into *out (actors/totals.h): in cluster mode MongoDB's (deposits per state,
 * and the credited ones updated in the last TOTALS_DAYS days by the day of their last update:
 * index-served by state_1_updated_1); MongoDB not answering, or one node: this node's registry's
 * running totals. Returns the source. */
views_source_t views_summary(views_t *self, totals_t *out);

/* Cluster mode: the records of deposit tx_id the other nodes journaled (MongoDB's `transitions`,
 * oldest first, at most VIEWS_TIMELINE_MAX), each appended to b as a JSON object with
 * record_to_json's names (tx_id, lsn, time, kind, from, to, actor, ...) and "node": the node that
 * journaled it; comma-separated, no brackets. How many, or -1 (nothing appended) when MongoDB did not
 * answer, or did not a moment ago, and on one node. */
#define VIEWS_TIMELINE_MAX 200
int views_timeline_others(views_t *self, const char *tx_id, jbuf_t *b);

/* The further of two views of one deposit (see above): mine is this node's, theirs MongoDB's,
 * written by node theirs_node. Returns mine or theirs. */
const registry_entry_t *views_further(const views_t *self, const registry_entry_t *mine,
                                      const registry_entry_t *theirs, const char *theirs_node);

/* ---- the `deposits` document (the projector writes it, the views read it) ----------------------- */

/* e's document as node writes it (fields: schema/mongo.h) into *doc (initialised here). */
void views_deposit_doc(const registry_entry_t *e, const char *node, bson_t *doc);

/* The guard of node's write of e: {transaction_id, $or: [written by node at or before e's last LSN,
 * a lower state rank, an equal rank written by another node earlier (updated), or no rank (an older
 * kasa's)]} (BCON_NEW'd). A write it does not match (a further view is there) is an upsert's insert
 * the unique index refuses (11000): counted, never an error. So a lagging node, or a node
 * re-projecting its history, never moves a deposit's document back. */
bson_t *views_deposit_guard(const registry_entry_t *e, const char *node);

/* Reads a `deposits` document back into *out (and the node that wrote it into node, 64 bytes).
 * 0, or -1 when it is not a deposit document (no transaction_id or an unknown state). */
int views_deposit_read(const bson_t *doc, registry_entry_t *out, char node[64]);

#endif
