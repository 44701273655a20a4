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

/* The epoch of tx_id's claim when this node holds it (in memory, working), else 0. No I/O. */
int32_t claims_epoch(claims_t *self, const char *tx_id);

/* Reads tx_id's claim document (doc->exists 0: none). 0, or -1 when MongoDB did not answer. */
int claims_read(claims_t *self, const char *tx_id, claims_doc_t *doc);

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

/* ---- the credited notice, once across nodes ------------------------------------------------------
 * After a take-over two nodes may record one deposit CREDITED (the one that made the deal, and the
 * one that found it by reference). The Telegram notice goes once: a notifier first marks the claim
 * `notified: NODE` (a conditional update where notified is unset or already this node's), and only
 * the node whose mark holds sends. */

/* 1 this node sends tx_id's notice (its mark holds now, or held before a restart, or no claim
 * exists: a deposit credited before cluster mode); 0 another node's mark holds (*by names it: that
 * node sends); -1 MongoDB did not answer (ask again later). */
int claims_notice_take(claims_t *self, const char *tx_id, char by[64]);

/* ---- a person's action on a deposit another node holds ---------------------------------------------
 * An action (schema/desk.h) taken on this node for a deposit whose claim another node holds is
 * written to MongoDB for the holder to carry out:
 *
 *   commands {transaction_id, command_id (32 hex), action, login (int64), actor, origin, reason,
 *            from_node, state: "pending" | "running" | "done", node + epoch (the node carrying it
 *            out and its claim's epoch), ok (bool), result (one sentence), created, updated}
 *            unique (transaction_id, command_id); writes with write concern majority
 *
 * Every node's command thread (every lease/3) reads the pending and running commands and takes, by a
 * conditional update on what it read (state, node, epoch), those whose claim it holds now; it hands
 * each to the pipeline (claims_on_command), which journals it as the person's action (actor and
 * reason as given, origin "node:FROM ...") and hands the deposit on; then marks it done with the
 * outcome. A holder that dies leaves its commands pending or running: whoever takes the claim over
 * carries them out (a credit is fenced and found by reference: never twice in MT5). The journaled
 * action names its command (desk_command_reason), so the node that journaled it, carrying it again
 * (it holds the claim again, or the deposit is finished), finds the record and marks the command
 * done with the original outcome instead of applying it twice (the handler's desk_journaled). Once
 * a claim is released final: a pending command is marked done by any node's pass, refused ("node B
 * finished the deposit before the command was carried out"); one running on another node is left
 * to it for a lease, then closed, not ok, saying that node never told whether it carried it out. */
#define CLAIMS_COMMANDS_COLLECTION "commands"

#include "schema/desk.h"

typedef enum {
    CLAIMS_ROUTE_LOCAL = 0,   /* this node holds the claim, or no node does: the action applies here */
    CLAIMS_ROUTE_SENT = 1,    /* written for the holder (or whoever takes the claim over)              */
} claims_route_t;

/* Routes req: CLAIMS_ROUTE_LOCAL, or CLAIMS_ROUTE_SENT with the command's id in id (33 bytes) and
 * msg "accepted: carried out by node B (command ID)"; -1 refused with msg (the claim was released
 * final by its holder, or MongoDB did not answer: nothing written). */
int claims_command_submit(claims_t *self, const desk_request_t *req, char id[33], char *msg, size_t msglen);

/* What the command thread calls for a command on a claim this node holds: 0 carried out, 1 noted (an
 * approval that waits for another approver), -1 refused (why in err), 2 not yet (the deposit is not
 * where the action applies on this node and not final: asked again at the next pass). */
typedef int claims_command_fn(void *arg, const desk_request_t *req, char *err, size_t errlen);
/* Sets the handler (before any command can arrive: right after claims_new). */
void claims_on_command(claims_t *self, claims_command_fn *fn, void *arg);

/* ---- withdrawals (actors/wdshared.h) --------------------------------------------------------------
 * A withdrawal's claim is a claim like a deposit's, keyed by the withdrawal id ("w" + 20 hex digits,
 * never a Cobo transaction id) and marked kind "withdrawal" (deposits' are "deposit"): the same
 * lease, renewal, take-over on the epoch, fence before every MT5 call and Cobo transfer. A person's
 * action on a withdrawal another node holds goes to commands like a deposit's, its action named
 * "approve", "reject", "refund" or "retransfer". */

/* claims_command_submit for withdrawal wd_id (the same answers; "the withdrawal" in msg). */
int claims_wd_command_submit(claims_t *self, const char *wd_id, const char *action, const char *actor,
                             const char *origin, const char *reason, char id[33], char *msg, size_t msglen);
/* The handler of a withdrawal's command (as claims_command_fn: 0 carried out, 1 noted, -1 refused, 2
 * not yet). */
typedef int claims_wd_command_fn(void *arg, const char *wd_id, const char *action, const char *actor,
                                 const char *origin, const char *reason, char *err, size_t errlen);
void claims_on_wd_command(claims_t *self, claims_wd_command_fn *fn, void *arg);

/* One command as the admin panel shows it. */
typedef struct {
    char tx_id[80], action[16], state[16], node[64], from_node[64], result[300];
    int ok;
} claims_command_t;

/* Reads command id: 1 found, 0 no such command, -1 MongoDB did not answer. */
int claims_command_get(claims_t *self, const char *id, claims_command_t *out);

/* One pass of the command thread now (tests; the thread runs it every lease/3). How many commands it
 * finished. */
int claims_commands_run(claims_t *self);

/* ---- named leases: one node at a time does a job -------------------------------------------------
 * A job only one node may do at a time (the Telegram poller: Telegram answers a second getUpdates
 * poller 409) holds a lease, with the claims' rules and code (claims_decide, epoch as the fencing
 * token, write concern majority), and a value its holder stores with it (the poller's next update
 * offset, so whoever takes the job over continues where the last holder stopped):
 *
 *   leases {name, node, epoch (int32), lease_until_ms (int64, the holder's clock), state "working",
 *          value (int64), updated}                                                   unique name
 *
 * A lease is never released final: its holder gives it up by setting its end to 0, and a lease that
 * ran out is taken over by a conditional update on its epoch (epoch + 1), as a claim is. */
#define CLAIMS_LEASES_COLLECTION "leases"

typedef struct {
    int held;                /* 1 this node holds it (until lease_until_ms, its clock)             */
    int32_t epoch;
    int64_t lease_until_ms;
    int64_t value;           /* the value stored with the lease (the holder's, as last written)    */
    char holder[64];         /* the node holding it                                                */
} claims_lease_t;

/* Takes (none yet, or ran out: epoch + 1, or this node's on an epoch other than epoch, as after a
 * restart) or renews (this node's on epoch) the lease name for lease_ms from now. store (when >= 0)
 * is written with a renewal of epoch, or with the first lease doc; a take-over keeps the value stored
 * before (the last holder's). 1 held (*out: its epoch, end, and value as stored now), 0 another
 * node's lease runs (*out: its holder, epoch, end and value), -1 MongoDB did not answer or the race
 * did not settle (ask again later). */
int claims_lease_hold(claims_t *self, const char *name, int64_t lease_ms, int32_t epoch, int64_t store,
                      claims_lease_t *out);

/* Gives the lease name up on epoch (its end set to 0, store stored when >= 0) so another node takes
 * it at once. 1 done, 0 this node no longer held it on that epoch, -1 MongoDB did not answer. */
int claims_lease_drop(claims_t *self, const char *name, int32_t epoch, int64_t store);

/* The createIndexes command of the claims collection's unique index into *cmd (bson_destroy it). */
struct _bson_t;
void claims_index_command(struct _bson_t *cmd);

#endif
