/* shared.h — cluster mode (KASA_CLUSTER=on): the facts every node must know to serve any request,
 * agreed in MongoDB, each node journaling what it learned.
 *
 *   addresses  {address, login, chain_id, lsn, time, node}       unique address (schema/mongo.c)
 *
 * Address links. A link made on a node (an investor's new address, `kasa wallet link`) is written
 * to `addresses` with write concern majority before it is journaled and before the address is
 * shown: an address anyone can pay to is known to MongoDB first. The write is an upsert that keeps
 * the document already there ($setOnInsert), read back in the same call: an address another node
 * linked to another login is refused. The projector writes the same document later (the same
 * $setOnInsert keyed by address), so the two never disagree.
 * A node that meets an address it does not know (a deposit's webhook, an investor's wallets page)
 * asks MongoDB; what it finds is journaled as a link by actor kasa:cluster with origin
 * "node:<the node that made it>" (a restart without MongoDB still knows it). Three answers, never
 * a guess: found, not linked anywhere (MongoDB answered and has none), cannot tell (MongoDB did not
 * answer: the caller waits and asks again, a deposit is never held as unlinked on that).
 *
 *   admins     {name, role, pwhash, totp, created_by, flags, last_step, created_ms, changed_ms, node,
 *              updated}                                            unique name
 *
 * Admin accounts (actors/admins.h's cluster path): every change (add, reset, disable, password) is
 * stored here (majority) before it is journaled; a login reads its account here first and takes
 * its TOTP step here by a conditional update (last_step < step), so a code is accepted once on all
 * nodes together; a thread reads every account every second and journals what changed (a "sync"
 * record by kasa:cluster, origin "node:<writer>"). The Argon2id hash and the TOTP secret are
 * stored as the journal stores them: MongoDB's access is the broker's to guard.
 *
 * Every call waits at most timeout_ms (unless the URI sets its own timeouts) and goes through
 * actors/mio.h, so tests can fail it. Reads are from the primary (read concern majority). Thread-safe. */
#ifndef KASA_ACTORS_SHARED_H
#define KASA_ACTORS_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include "schema/config.h"

typedef struct shared_t shared_t;

#define SHARED_ACTOR "kasa:cluster"

/* The shared facts of node cfg->node_id on cfg->mongo_uri / cfg->mongo_db. MongoDB need not be
 * reachable. NULL with a reason on a bad URI or without memory. */
shared_t *shared_new(const config_t *cfg, int timeout_ms, char *err, size_t errlen);
void shared_destroy(shared_t **self_p);

/* The result of a lookup. */
typedef enum {
    SHARED_FOUND = 0,    /* MongoDB answered with it                     */
    SHARED_NONE = 1,     /* MongoDB answered: there is none              */
    SHARED_UNKNOWN = -1, /* MongoDB did not answer: nothing can be told  */
} shared_result_t;

/* A link as MongoDB has it. */
typedef struct {
    char address[128];
    char chain_id[24];
    uint64_t login;
    char node[64];       /* the node that made it */
} shared_link_t;

/* Writes address (on chain_id) -> login to `addresses` (majority), unless it is there already.
 * SHARED_FOUND: stored, or already linked to login; SHARED_NONE: linked to another login (err says
 * which); SHARED_UNKNOWN: MongoDB did not answer (err says why). */
shared_result_t shared_link_put(shared_t *self, const char *address, const char *chain_id, uint64_t login,
                                char *err, size_t errlen);

/* The link of address (*out), or none, or unknown. */
shared_result_t shared_link_get(shared_t *self, const char *address, shared_link_t *out);

/* The oldest link of login on chain_id (*out), or none, or unknown. */
shared_result_t shared_link_of(shared_t *self, uint64_t login, const char *chain_id, shared_link_t *out);

/* A node's view of links: its registry and journal (actors/registry.h). */
struct registry_t;
struct journal_t;

/* The login of address: the registry's, else MongoDB's, which is then journaled here
 * (registry_link_learned) before it is returned. SHARED_FOUND with *login; SHARED_NONE (linked
 * nowhere, or MongoDB's link cannot be journaled here: err says which); SHARED_UNKNOWN (MongoDB did
 * not answer, or the journal failed: ask again later). */
shared_result_t shared_link_learn(shared_t *self, struct registry_t *registry, struct journal_t *journal,
                                  const char *address, uint64_t *login, char *err, size_t errlen);

/* The address of (login, chain_id) another node made, from MongoDB, journaled here before it is
 * copied to out. SHARED_FOUND, SHARED_NONE (MongoDB has none), SHARED_UNKNOWN (err says why). */
shared_result_t shared_pair_learn(shared_t *self, struct registry_t *registry, struct journal_t *journal,
                                  uint64_t login, const char *chain_id, char *out, size_t outlen, char *err,
                                  size_t errlen);

/* Cluster mode's admin accounts: admins share them through self (admins_share), and a thread learns
 * every account's changes every period_ms (admins_sync), until shared_destroy. 0, or -1 (no thread). */
struct admins_t;
int shared_admins_attach(shared_t *self, struct admins_t *admins, struct journal_t *journal, int period_ms);
/* admins share their accounts through self, as shared_admins_attach does, with no thread (a command
 * run once: `kasa admin` on a stopped node). */
void shared_admins_share(shared_t *self, struct admins_t *admins);

#define SHARED_ADMINS "admins"

/* This node's id. */
const char *shared_node(const shared_t *self);
/* Its MongoDB client pool and database, for the other shared facts' modules (actors/wdshared.h). */
struct _mongoc_client_pool_t *shared_pool(shared_t *self);
const char *shared_db(const shared_t *self);

#endif
