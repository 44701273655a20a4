/* wdshared.h — cluster mode (KASA_CLUSTER=on): withdrawals shared through MongoDB.
 *
 * A withdrawal is carried out by one node, the holder of its claim (actors/claims.h, the claim's key
 * is the withdrawal id); every node shows it and may take a person's decision on it. MongoDB holds
 * the shared fact, one document per withdrawal, written by its holder with write concern majority:
 *
 *   withdrawals {id, login (int64), token_id, chain_id, address, amount (token, text), fee (text),
 *               amount_minor (int64), digits, currency, actor, origin, state (the state's name),
 *               transfers (the transfer number of request_id), request_id, cobo_id, cobo_status,
 *               tx_hash, debit_ticket, refund_ticket (int64), reason, created_ms, node (the writer),
 *               epoch (the writer's claim epoch), updated_ms}                    unique id
 *
 * - The request's node writes it before the investor is answered; the holder writes it again after
 *   each of its transitions and before any money moves (the withdrawer's gate, actors/withdrawer.c).
 * - A write is conditional on the epoch: {id, epoch <= mine} with upsert, so a holder that lost its
 *   claim (a newer epoch wrote) changes nothing (the upsert's insert meets the unique index: 0).
 * - Every node reads the documents every second (wdshared_start's thread): each one whose claim it
 *   does not hold is journaled as learned (withdrawals_learn: actor kasa:cluster, origin node:X); one
 *   not final whose claim's lease ran out (or that this node held before a restart) is handed to the
 *   withdrawer, which takes the claim over and reconciles before any send.
 * Every call goes through actors/mio.h; MongoDB calls wait at most the timeout given. Thread-safe. */
#ifndef KASA_ACTORS_WDSHARED_H
#define KASA_ACTORS_WDSHARED_H

#include <bson/bson.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/withdrawals.h"
#include "schema/config.h"

#define WDSHARED_COLLECTION "withdrawals"

typedef struct wdshared_t wdshared_t;
struct claims_t;

/* On the shared facts' MongoDB pool, database and node (actors/shared.h; shared must outlive it, and
 * its calls wait at most its timeout); MongoDB need not answer now. NULL with a reason. */
struct shared_t;
wdshared_t *wdshared_new(struct shared_t *shared, char *err, size_t errlen);
/* Stops the thread (if started) and frees; safe twice. */
void wdshared_destroy(wdshared_t **self_p);

/* Writes w as this node's, on claim epoch: 1 written, 0 a holder of a newer epoch wrote it (this
 * node's claim is lost: write nothing more), -1 MongoDB did not answer. */
int wdshared_put(wdshared_t *self, const withdrawal_view_t *w, int32_t epoch);

/* Reads id's document: 1 found (*out, node (64 bytes) and *epoch of its writer), 0 none, -1. */
int wdshared_get(wdshared_t *self, const char *id, withdrawal_view_t *out, char node[64], int32_t *epoch);

/* One withdrawals document (as wdshared_put wrote it) into *out, its writer into node (64 bytes) and
 * *epoch. 0, or -1 if it is not whole (no valid id, state, login or amount). */
int wdshared_parse(const bson_t *doc, withdrawal_view_t *out, char node[64], int32_t *epoch);

/* What login asked for in withdrawals created at or after since_ms that were not given back
 * (REJECTED, REFUNDING, REFUNDED), across every node: 0 with *sum_minor, or -1. */
int wdshared_asked_since(wdshared_t *self, uint64_t login, int64_t since_ms, int64_t *sum_minor);

/* What the learning pass hands to the withdrawer (a withdrawal id this node should take over). */
typedef void wdshared_hand_fn(void *arg, const char *id);

/* Starts the thread that, every period_ms, learns what the other nodes' documents say into
 * withdrawals (journaled on journal) and hands to hand the withdrawals whose claim ran out. 0 or -1. */
int wdshared_start(wdshared_t *self, withdrawals_t *withdrawals, struct journal_t *journal, struct claims_t *claims,
                   wdshared_hand_fn *hand, void *arg, int period_ms);

/* Stops that thread (before what it hands to goes away); safe twice, and without a start. */
void wdshared_stop(wdshared_t *self);

/* One pass of that thread now (tests). How many withdrawals it journaled as learned, or -1 when
 * MongoDB did not answer. */
int wdshared_pass(wdshared_t *self);

#endif
