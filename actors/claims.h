/* claims.h — cluster mode (KASA_CLUSTER=on): which node may credit a deposit, agreed in MongoDB.
 *
 * Several kasa nodes share one MongoDB replica set; each has its own journal and may receive any of a
 * deposit's webhooks. Before a deposit becomes LOCKED its node claims it: one `claims` document per
 * transaction_id (unique index), holding the node, an epoch and a lease end, every write with write
 * concern majority. Only the holder locks and credits; the others journal which node holds it and
 * keep answering Cobo as usual.
 *
 *   claims  {transaction_id, node, epoch (int32, 1, 2, ...), lease_until_ms (int64, the holder's
 *           clock), state ("working" | "done"), updated (date)}            unique transaction_id
 *
 * - The holder renews its lease every lease/3 while it works, and releases ("done", lease 0) once
 *   the deposit is final (CREDITED, REJECTED). A done claim is never taken again.
 * - A claim whose lease has run out is taken over by a conditional update on its old epoch (the
 *   epoch is the fencing token): of two nodes racing, one update matches. The new holder waits the
 *   MT5 settle time from the take-over before any send, reconciling by reference meanwhile (the
 *   reference is derived from the transaction id alone: the same on every node).
 * - Immediately before every MT5 balance call the holder renews on its epoch (claims_fence) and
 *   sends only with at least lease/3 of lease left; a renewal that matches nothing means the claim
 *   was lost: it never sends on it again. Without MongoDB it may still send on a lease it holds
 *   with lease/3 left, never on one it does not hold.
 * README "Cluster" proves the margins (lease, renewal, settle time, MT5 timeout).
 *
 * The decisions (claims_decide, claims_fence_decide) are pure and tested alone; claims_t does the
 * MongoDB side (through actors/mio.h, so tests can fail any call) and keeps the claims this node
 * holds in memory. All functions are thread-safe (lockers and crediters call them at once). */
#ifndef KASA_ACTORS_CLAIMS_H
#define KASA_ACTORS_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#include "actors/stage.h"
#include "schema/config.h"

#define CLAIMS_COLLECTION "claims"

/* A claims document as read (exists 0: there is none). */
typedef struct {
    int exists;
    char node[64];
    int32_t epoch;
    int64_t lease_until_ms;
    int done;
} claims_doc_t;

typedef enum {
    CLAIMS_FREE,        /* no claim yet: insert one, epoch 1                                 */
    CLAIMS_MINE,        /* this node holds it: renew on its epoch                            */
    CLAIMS_OTHER_LIVE,  /* another node holds it and its lease runs: leave it alone           */
    CLAIMS_EXPIRED,     /* another node's lease ran out: take over on its epoch (epoch + 1)  */
    CLAIMS_DONE,        /* released final by its holder: nothing is left to do on any node   */
} claims_decision_t;

/* What to do with doc at this node me's clock now_ms. A lease ends at lease_until_ms exactly. */
claims_decision_t claims_decide(const claims_doc_t *doc, const char *me, int64_t now_ms);

typedef enum {
    CLAIMS_SEND,   /* the lease is held and long enough: the MT5 call may go          */
    CLAIMS_WAIT,   /* not now (settle time after a take-over, a short lease): *wait_ms */
    CLAIMS_LOST,   /* another node took the claim: never send on it                   */
} claims_fence_t;

/* The fence before an MT5 call. renewed: 1 the conditional renewal matched (lease_until_ms is the
 * new lease end), 0 it matched nothing (the epoch is lost), -1 MongoDB did not answer (lease_until_ms
 * is the last one known). settle_until_ms: no send before it (0: none). guard_ms: the lease that
 * must be left at the send. *wait_ms gets when to look again for CLAIMS_WAIT. */
claims_fence_t claims_fence_decide(int renewed, int64_t lease_until_ms, int64_t settle_until_ms, int64_t now_ms,
                                   int64_t guard_ms, int64_t *wait_ms);

/* "free", "mine", "other_live", "expired", "done" / "send", "wait", "lost". */
const char *claims_decision_name(claims_decision_t d);
const char *claims_fence_name(claims_fence_t f);

typedef struct claims_t claims_t;

/* Opens the claims of node cfg->node_id on cfg->mongo_uri / cfg->mongo_db, lease cfg->claim_lease_ms,
 * settle time settle_ms, and starts the renewal thread. MongoDB need not be reachable (the unique
 * index is ensured at the first call that reaches it). NULL with a reason on a bad URI. */
claims_t *claims_new(const config_t *cfg, int64_t settle_ms, char *err, size_t errlen);
/* Stops the renewal thread and frees; safe twice. Claims held stay in MongoDB until their lease ends. */
void claims_destroy(claims_t **self_p);

typedef enum {
    CLAIMS_HELD,         /* this node holds the claim now (new, renewed or taken over)        */
    CLAIMS_HELD_ELSEWHERE, /* another node's live claim: *holder names it                     */
    CLAIMS_FINAL,        /* its holder (*holder) released it final                           */
    CLAIMS_UNREACHABLE,  /* MongoDB did not answer (or the race did not settle): ask again later */
} claims_result_t;

/* Claims tx_id for this node (the locker's step, before LOCKED; the crediter's when it has no
 * claim in memory, e.g. after a restart: fresh 0). A claim this node newly holds with an epoch
 * above 1, or taken over, or claimed by a crediter, waits the settle time before any send; a fresh
 * epoch-1 claim from the locker needs none (no node ever held it). holder (64 bytes) gets the
 * holding node for HELD_ELSEWHERE and FINAL. Never sends anything to MT5. */
claims_result_t claims_acquire(claims_t *self, const char *tx_id, int fresh, char holder[64]);

/* The fence, immediately before an MT5 balance call for tx_id: renews the claim on its epoch (or
 * acquires it when not held in memory) and decides with claims_fence_decide. CLAIMS_WAIT: look again
 * in *wait_ms. CLAIMS_LOST: holder (64 bytes) gets who holds it now ("" if unknown). */
claims_fence_t claims_fence(claims_t *self, const char *tx_id, int64_t *wait_ms, char holder[64]);

/* 1 if this node holds tx_id with at least the guard (lease/3) left on its own clock, now: the last
 * check before the call leaves, with no I/O. */
int claims_may_send(claims_t *self, const char *tx_id);

/* Releases tx_id final (state done, lease 0) on its epoch; if MongoDB does not answer, the renewal
 * thread keeps trying. Nothing if this node does not hold it. */
void claims_release(claims_t *self, const char *tx_id);

/* This node's id, the lease (ms), and how many claims it holds in memory. */
const char *claims_node(const claims_t *self);
int64_t claims_lease_ms(const claims_t *self);
size_t claims_held_count(claims_t *self);

/* The locker's step before LOCKED (ctx->claims set): claims tx_id. 0 this node holds it: go on;
 * -1 its holder released it final: nothing to do here; else the ms after which to ask again (another
 * node holds it, or MongoDB does not answer: backoff from 250 ms up to lease/2 by tries, jitter
 * from *rng). Another node's claim is journaled once per holder as a note ("held by node X"). */
int64_t claims_locker_gate(const stage_ctx_t *ctx, const char *tx_id, uint32_t tries, uint64_t *rng);

/* The crediter's step immediately before an MT5 balance call (ctx->claims set): claims_fence. 0 may
 * send (then claims_may_send right before the call); else the ms to wait. A lost claim is journaled
 * as a note ("lost to node X") and looked at again a lease later: by then the deal the holder made is
 * found by reference, or its lease ran out and this node may take it over. */
int64_t claims_crediter_gate(const stage_ctx_t *ctx, const char *tx_id);

/* The createIndexes command of the claims collection's unique index into *cmd (bson_destroy it). */
struct _bson_t;
void claims_index_command(struct _bson_t *cmd);

#endif
