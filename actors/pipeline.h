/* pipeline.h — the deposit pipeline: ingress → lockers → crediters → notifiers, czmq actors joined
 * by ZeroMQ PUSH/PULL, every transition journaled (durable) before any stage acts on it.
 * KASA_LOCKERS lockers and KASA_NOTIFIERS notifiers each take the deposits whose transaction id
 * hashes to them; KASA_CREDITERS crediters each take the logins login % N maps to (stage_route).
 *
 * pipeline_new() rebuilds first, from the newest valid snapshot and the journal after it
 * (actors/checkpoint.h): every deposit's latest state and the address links; then each unfinished
 * deposit is handed back to the stage that owns its state (a deposit with a credit attempt and no
 * CREDITED is reconciled against MT5's deal history first).
 * All functions are thread-safe (HTTP worker threads call them concurrently).
 *
 * The journal given must be the one open on cfg->journal_dir (replay reads that directory; a
 * journal holding fewer records than the directory is refused). Records are submitted to the
 * journal under the registry's lock (so LSN order is decision order): a journal_on_commit callback
 * must therefore never call back into the pipeline. cfg->max_deposits (KASA_MAX_DEPOSITS, default
 * 200000) bounds the deposits held in memory; beyond it new deposits get 503. */
#ifndef KASA_ACTORS_PIPELINE_H
#define KASA_ACTORS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "journal/journal.h"
#include "schema/cobo_tx.h"
#include "schema/deposit.h"
#include "schema/desk.h"
#include "schema/config.h"

typedef struct pipeline_t pipeline_t;

/* Starts the pipeline on an open journal (not owned). NULL with a reason in err. */
pipeline_t *pipeline_new(journal_t *journal, const config_t *cfg, char *err, size_t errlen);
/* Stops the actors ($TERM), waits for them, frees. In-flight work resumes on the next start. */
void pipeline_destroy(pipeline_t **self_p);

/* A verified webhook's deposit transaction. Returns the HTTP status to answer with:
 * 201 a new transition was journaled (durable) — and handed on if it has effects;
 * 200 a repeat or a change of nothing (nothing journaled, no second actor);
 * 503 the journal could not make it durable (Cobo will retry). err says why for non-2xx. */
int pipeline_ingest(pipeline_t *self, const cobo_tx_t *tx, char *err, size_t errlen);

/* pipeline_ingest in two halves, for a caller that waits for durability without a sleeping thread.
 * pipeline_ingest_begin returns the final status now (*pending NULL: nothing to wait for), or 0
 * with *pending set: the deposit's record (or the record a repeat repeats) is pipeline_pending_lsn()
 * (0: nothing to wait for) and must be durable before anything acts on it. The caller waits for it
 * (journal_wait, or journal_when_durable on pipeline_journal()) and calls pipeline_ingest_end with
 * what the wait said (0 durable, -1 the journal failed), which writes the deposit's log line, frees
 * *pending and returns the status pipeline_ingest would have; with live 1 it hands the deposit on
 * and raises an alert the repeat calls for (both may block: never on the journal's own thread),
 * with live 0 (kasa is stopping and the webhook was answered 503) it does neither and never blocks:
 * the deposit resumes on the next start, Cobo's retry raises the alert. */
typedef struct pipeline_pending_t pipeline_pending_t;
int pipeline_ingest_begin(pipeline_t *self, const cobo_tx_t *tx, pipeline_pending_t **pending, char *err,
                          size_t errlen);
uint64_t pipeline_pending_lsn(const pipeline_pending_t *pending);
int pipeline_ingest_end(pipeline_t *self, pipeline_pending_t **pending, int durable_rc, int live, char *err,
                        size_t errlen);
journal_t *pipeline_journal(pipeline_t *self);

/* An operator's action on a deposit (schema/desk.h; checked and journaled by desk_act: an assign's
 * login must be known to MT5, the action must apply to the deposit's state and approvals). Returns
 * 0 once the action and the transition it causes are durable, after handing the deposit on (retry,
 * assign, the last approval: back through the locker; the crediter reconciles first if a credit
 * attempt exists; a reject of a deposit a credit was attempted for searches MT5 first, see desk_act);
 * 1 once an approval is durable that leaves the deposit waiting for another
 * approver; -1 with a reason when refused (nothing journaled) or the journal failed; in cluster mode 2
 * when another node carries it out (pipeline_admin_cmd, the message in err). */
int pipeline_admin(pipeline_t *self, const desk_request_t *req, char *err, size_t errlen);

/* pipeline_admin, and in cluster mode also 2: another node holds the deposit's claim and the action was
 * written to MongoDB for it to carry out (actors/claims.h, commands): command_id (33 bytes) names it
 * and err says "accepted: carried out by node B (command ID)". */
int pipeline_admin_cmd(pipeline_t *self, const desk_request_t *req, char command_id[33], char *err, size_t errlen);

/* A command's state as JSON into json (len bytes): {id, transaction_id, action, state
 * (pending|running|done), node, from_node, ok, result}. 1 found, 0 none (or not cluster mode), -1
 * MongoDB did not answer. */
int pipeline_command(pipeline_t *self, const char *command_id, char *json, size_t len);

/* Links address (on chain_id, may be "") to an MT5 login, journaled before it returns 0.
 * Re-linking the same address to the same login is a no-op (0); to another login: -1 with reason. */
int pipeline_link(pipeline_t *self, const char *address, const char *chain_id, uint64_t login,
                  const char *actor, char *err, size_t errlen);
/* Cluster mode: the address another node made for (login, chain_id), learned from MongoDB and
 * journaled here before it is copied to out: 0; 1 none (or a single node); -1 MongoDB did not
 * answer (err says so: nothing can be told, never create another meanwhile). */
int pipeline_link_find(pipeline_t *self, uint64_t login, const char *chain_id, char *out, size_t outlen, char *err,
                       size_t errlen);
/* Cluster mode's shared facts (actors/shared.h), NULL on a single node. */
struct shared_t *pipeline_shared(pipeline_t *self);
/* Cluster mode's claims (actors/claims.h), NULL on a single node. */
struct claims_t *pipeline_claims(pipeline_t *self);
/* The login linked to address, or 0. */
uint64_t pipeline_address_login(pipeline_t *self, const char *address);

/* A snapshot of one deposit, for the panels and tools. */
typedef struct {
    char tx_id[80];
    deposit_state_t state;
    char status[32];
    int32_t confirmations, threshold;
    char token_id[40], chain_id[24], address[128], amount[48], tx_hash[136];
    uint64_t login;
    int64_t credit_minor;
    int32_t digits;
    char currency[16];       /* the account's currency credit_minor is in ("" before LOCKED) */
    uint64_t ticket;
    char reason[160];
    int64_t created_ms, updated_ms;
    uint32_t alert_count;    /* RECORD_ALERTs journaled for it (a person must look) */
    char alert[32];          /* the name of the last one ("double_credit"), "" if none */
} deposit_view_t;

/* Items in the work lists of stage kind's actors (a stage_kind_t: locker, crediter, notifier),
 * summed; *actors (may be NULL) gets how many actors run it. Any thread. */
int pipeline_stage_depth(pipeline_t *self, int kind, int *actors);

/* The live rates the lockers read (actors/rates.h), NULL without a live rule. Not owned. */
typedef struct rates_t rates_t;
rates_t *pipeline_rates(pipeline_t *self);

/* The registry under the pipeline (for the operators' views: approvals, attempts). Not owned. */
typedef struct registry_t registry_t;
registry_t *pipeline_registry(pipeline_t *self);

/* The fields every view of a deposit shares, as JSON members without braces: "id", "state",
 * "status", "confirmations", "threshold", "token", "chain", "address", "amount". Appends to b. */
#include "schema/json.h"
void pipeline_view_json(jbuf_t *b, const deposit_view_t *d);

/* Calls fn for each deposit of login (login 0: every deposit), newest first, at most limit.
 * Returns how many were visited. fn runs under the registry's lock: copy, do not block. */
int pipeline_deposits(pipeline_t *self, uint64_t login, int limit,
                      void (*fn)(void *arg, const deposit_view_t *d), void *arg);
/* Fills *out for tx_id; 0, or -1 if unknown. */
int pipeline_deposit(pipeline_t *self, const char *tx_id, deposit_view_t *out);

/* ---- withdrawals (actors/withdrawals.h, actors/withdrawer.h, schema/withdrawal.h) ---------------- */

typedef struct withdrawals_t withdrawals_t;
#include "schema/withdrawal.h"

/* What an investor asks for, with the facts the caller read from MT5 (MT5 is not called here). */
typedef struct {
    uint64_t login;
    const char *token_id;       /* a KASA_WITHDRAW_RULES token ("TRON_USDT") */
    const char *chain_id;       /* its chain ("TRON") */
    const char *address;        /* the destination, valid for the chain (the caller checked it) */
    const char *amount;         /* in the account's currency, an exact decimal ("100.50") */
    const char *currency;       /* the account's currency (its MT5 group's) */
    int32_t digits;             /* its digits */
    int token_decimals;         /* the token's decimals (Cobo's token metadata) */
    int64_t free_margin_minor;  /* MT5's MarginFree for the login now, account minor units */
    const char *actor;          /* "investor:100001" */
    const char *origin;         /* "ip:203.0.113.7" */
} pipeline_withdraw_ask_t;

/* The checks of a request, nothing journaled (-2: cannot be told now, see pipeline_withdraw): the token's rule for the account's currency, the
 * amount (minimum, maximum, today's total per login, the fee), the destination (not one of kasa's
 * deposit addresses, nor the paying wallet's), and the free margin (the debit never leaves open
 * positions without margin). 0 with *q (the fee, the exact token amount), or -1 with a sentence. */
int pipeline_withdraw_quote(pipeline_t *self, const pipeline_withdraw_ask_t *ask, withdrawal_quote_t *q, char *err,
                            size_t errlen);

/* The request: the checks again, then REQUEST journaled (durable) under a new id made from rnd (10
 * random bytes), then handed to the withdrawer (the debit). Returns 201 with id and *q set; 422 with
 * a sentence (a check failed: nothing journaled); 503 (the journal failed). */
/* Cluster mode (actors/wdshared.h): the daily limit counts every node's requests (MongoDB's; a quote
 * that cannot read them is -2, the request 503); the new id is claimed in MongoDB before REQUEST is
 * journaled (503 with nothing journaled when MongoDB does not answer), and its shared document is
 * written (majority) before the answer. */
int pipeline_withdraw(pipeline_t *self, const pipeline_withdraw_ask_t *ask, const unsigned char rnd[10],
                      char id[24], withdrawal_quote_t *q, char *err, size_t errlen);

/* A person's action on withdrawal id: "approve", "reject", "refund", "retransfer" (withdrawals_desk),
 * journaled with who, from where and why. 0 once it moved (and was handed on), 1 for an approval
 * that waits for another approver, -1 with a reason when refused (nothing journaled); in cluster
 * mode 2 when another node carries it out (pipeline_withdraw_act_cmd, the message in err). */
int pipeline_withdraw_act(pipeline_t *self, const char *id, const char *action, const char *actor, const char *origin,
                          const char *reason, char *err, size_t errlen);
/* pipeline_withdraw_act, and in cluster mode also 2: another node holds the withdrawal's claim and
 * the action was written to MongoDB for it (actors/claims.h, commands): command_id (33 bytes) names
 * it, err says "accepted: carried out by node B (command ID)". */
int pipeline_withdraw_act_cmd(pipeline_t *self, const char *id, const char *action, const char *actor,
                              const char *origin, const char *reason, char command_id[33], char *err, size_t errlen);

/* What Cobo says of a transfer kasa asked for (a verified webhook, or a listing): request_id ("kasa-
 * <id>-<n>"), Cobo's transaction_id, its status ("Completed", "Failed", "Rejected", anything else is
 * not final) and hash. Journaled as the withdrawal's transition (TRANSFER_SENT/DONE/FAILED) when it
 * is the current transfer; a Completed for an earlier transfer of a withdrawal transferred again
 * raises an alert. Returns the HTTP status to answer: 201 journaled, 200 nothing to do (a repeat, not
 * ours), 503 the journal failed (Cobo retries). */
int pipeline_withdrawal_cobo(pipeline_t *self, const char *request_id, const char *cobo_id, const char *status,
                             const char *tx_hash, char *err, size_t errlen);

/* The withdrawals under the pipeline (for views). Not owned. */
withdrawals_t *pipeline_withdrawals(pipeline_t *self);

#endif
