/* withdrawals.h — every withdrawal kasa knows, in memory, and the one gate through which a
 * withdrawal's record becomes durable.
 *
 * Like the deposit registry (actors/registry.h) and beside it: one function applies a record to
 * memory, for replay and for live commits alike; a live commit decides the step (schema/withdrawal.c)
 * and submits the record to the journal under one lock (so LSN order is decision order), then waits
 * for durability outside it. Records: RECORD_WITHDRAWAL (a transition), RECORD_WITHDRAWAL_ATTEMPT
 * (a debit, refund or transfer about to be made), and RECORD_ADMIN_ACTION / RECORD_ALERT whose tx_id
 * is a withdrawal id (a person's approval, an alert). Any other record is not a withdrawal's and is
 * ignored here. If the journal fails, every later commit is refused.
 *
 * Bounded: at most max withdrawals; beyond it a new request is refused (REGISTRY_FULL).
 * Thread-safe: every function may be called from any thread. */
#ifndef KASA_ACTORS_WITHDRAWALS_H
#define KASA_ACTORS_WITHDRAWALS_H

#include <stddef.h>
#include <stdint.h>

#include "actors/registry.h"
#include "journal/journal.h"
#include "schema/record.h"
#include "schema/withdrawal.h"

typedef struct withdrawals_t withdrawals_t;

#define WITHDRAWALS_MAX_APPROVERS 2

/* One withdrawal as memory holds it (a copy, for the withdrawer, the panels and tools). */
typedef struct {
    char id[24];
    withdrawal_state_t state;
    uint64_t login;
    char token_id[40], chain_id[24];
    char address[128];          /* the destination */
    char amount[48];            /* the token amount sent, exact decimal */
    char fee[48];               /* the fee in the account currency */
    int64_t amount_minor;       /* what is debited, account minor units (> 0) */
    int32_t digits;
    char currency[16];
    char actor[64], origin[64]; /* who asked, from where */
    uint32_t transfers;         /* the transfer number of request_id (1, 2 after a person's RETRANSFER) */
    char request_id[48];        /* Cobo request_id of the current transfer ("" before APPROVED) */
    uint32_t transfer_attempts; /* create calls journaled for the current request_id */
    char cobo_id[80];           /* Cobo's transaction_id, once known */
    char cobo_status[32];       /* Cobo's last status seen */
    char tx_hash[136];
    uint64_t debit_ticket, refund_ticket;
    uint32_t debit_attempts, refund_attempts;
    int64_t debit_first_ms, debit_last_ms, refund_first_ms, refund_last_ms;
    uint32_t approvals;
    char approvers[WITHDRAWALS_MAX_APPROVERS][64];
    char reason[160];           /* the last state's reason, if any */
    uint32_t alert_count;
    char alert[32];
    int64_t created_ms, updated_ms;
    uint64_t first_lsn;         /* its first record's (the REQUEST): a timeline reads from there; 0 unknown */
    uint64_t last_lsn;
} withdrawal_view_t;

/* A registry for at most max withdrawals. NULL on no memory. */
withdrawals_t *withdrawals_new(size_t max);
void withdrawals_destroy(withdrawals_t **self_p);

/* The withdrawals' snapshot section (journal/snapshot.h): withdrawals_save encodes every withdrawal,
 * finished ones too (listings, the daily limit), in arrival order with every field a replay sets;
 * withdrawals_load decodes them into an empty instance, after which it holds what it held when
 * saved. The section starts with its layout number: a section of a layout it does not read does not
 * load (the start then falls back to an older snapshot or the whole journal). 0, or -1 (load: with a reason;
 * the instance must then be thrown away). */
#include "journal/snapshot.h"
int withdrawals_save(withdrawals_t *self, snap_pk_t *p);
int withdrawals_load(withdrawals_t *self, snap_pk_t *p, char *err, size_t errlen);
/* Layouts: withdrawals_save writes the newest; withdrawals_load reads it and layout 1 (without each
 * withdrawal's first LSN: it is then 1, its timeline read from the journal's start). A section of
 * a layout it does not read does not load. withdrawals_save_layout writes the section as an older
 * layout withdrawals_load reads (what kasa of that layout wrote), or -1 for one it does not. */
int withdrawals_save_layout(withdrawals_t *self, snap_pk_t *p, uint32_t layout);

/* Applies one durable record as replay does (a RECORD_WITHDRAWAL sets the state it records). Records
 * that are not a withdrawal's are ignored. 0, or -1 if a new withdrawal does not fit. */
int withdrawals_apply(withdrawals_t *self, const record_t *r, uint64_t lsn);

/* The transition r describes (r->tx_id the withdrawal id, r->wevent, and the fields the event
 * brings; wfrom/wto are set here; kind and time are set here). Under the lock withdrawal_step()
 * from the current state decides (NONE for an unknown id, which only REQUEST leaves). On MOVE the
 * record is completed from the entry (fields the event does not bring are kept), submitted,
 * applied, and waited for outside the lock: REGISTRY_MOVED once durable, *effects the step's.
 * REGISTRY_SAME / REGISTRY_ILLEGAL change nothing (*effects may carry an ALERT for SAME); FULL,
 * FAILED as the deposit registry. err says why for anything but MOVED and SAME. */
registry_result_t withdrawals_commit(withdrawals_t *self, journal_t *journal, record_t *r, unsigned *effects,
                                     char *err, size_t errlen);

/* Journals a record that is not a transition (WITHDRAWAL_ATTEMPT, ADMIN_ACTION, ALERT) for a known
 * withdrawal and waits. REGISTRY_MOVED once durable, REGISTRY_ILLEGAL for an unknown id, FAILED. */
registry_result_t withdrawals_append(withdrawals_t *self, journal_t *journal, record_t *r, char *err, size_t errlen);

/* A person's action on a withdrawal, decided and journaled under one lock hold. action is
 * "approve", "reject", "refund" or "retransfer"; approvals_needed (0..2) is what its amount needs.
 * approve: from DEBITED; counted once per admin; the approval that reaches approvals_needed moves it
 * (APPROVE), an earlier one is journaled alone (REGISTRY_SAME, *noted = 1). reject: DEBITED only.
 * refund / retransfer: HELD only, and only when Cobo's last answer about the current transfer is
 * final (Failed, Rejected, or refused to create it): never while a transfer may still complete.
 * Refused → REGISTRY_ILLEGAL with a sentence in err, nothing journaled. Moved → the ADMIN_ACTION and
 * the transition are durable, REGISTRY_MOVED, *effects set. */
registry_result_t withdrawals_desk(withdrawals_t *self, journal_t *journal, const char *id, const char *action,
                                   const char *actor, const char *origin, const char *reason, int approvals_needed,
                                   unsigned *effects, int *noted, char *err, size_t errlen);

/* ---- cluster mode (actors/wdshared.h) ------------------------------------------------------------
 * A withdrawal is carried out by the node holding its claim; every other node learns it from
 * MongoDB's shared document and journals what it learned as one RECORD_WITHDRAWAL by
 * WITHDRAWALS_LEARNED_ACTOR, origin "node:<holder>" (so a restart without MongoDB still knows it).
 * Such a record is not a step of the table: it sets the state, the transfer number (attempt), its
 * request_id, Cobo's fields and the tickets (ticket the debit's, ticket2 the refund's) the holder
 * wrote, and names who asked (requester) and who approved (approver, approver2), so every node's
 * panel shows them. */
#define WITHDRAWALS_LEARNED_ACTOR "kasa:cluster"

/* Journals shared (a withdrawal as another node's document says) when its state, transfer, Cobo's
 * fields, tickets or requester differ from this node's or it names an approver this node lacks (an
 * unknown id is added). REGISTRY_MOVED once durable,
 * REGISTRY_SAME when nothing differs, REGISTRY_ILLEGAL for a document that is not whole, FULL,
 * FAILED; err says why. */
registry_result_t withdrawals_learn(withdrawals_t *self, journal_t *journal, const withdrawal_view_t *shared,
                                    const char *node, char *err, size_t errlen);
/* 1 if r is such a learned record. */
int withdrawals_learned(const record_t *r);
/* 1 for COMPLETED, REJECTED, REFUNDED: nothing is left to do on any node. */
int withdrawals_final(withdrawal_state_t st);

/* Copies id's withdrawal into *out; 0, or -1 if unknown. */
int withdrawals_get(withdrawals_t *self, const char *id, withdrawal_view_t *out);
/* The withdrawal whose current request_id is request_id (or an earlier one of it); 0 or -1. */
int withdrawals_by_request(withdrawals_t *self, const char *request_id, withdrawal_view_t *out);

/* Calls fn for each withdrawal of login (0: all), newest first, at most limit (<= 0: no limit),
 * under the lock: copy, do not block. Returns how many were visited. */
int withdrawals_each(withdrawals_t *self, uint64_t login, int limit,
                     void (*fn)(void *arg, const withdrawal_view_t *w), void *arg);

/* What login asked for (account minor units) in withdrawals created at or after since_ms that are
 * not given back (REJECTED, REFUNDING, REFUNDED): the daily limit's count. */
int64_t withdrawals_asked_since(withdrawals_t *self, uint64_t login, int64_t since_ms);

/* How many withdrawals are held. */
size_t withdrawals_count(withdrawals_t *self);

/* 1 once the journal failed under it. */
int withdrawals_failed(withdrawals_t *self);

/* 1 if the record belongs to the withdrawals (a withdrawal kind, or a withdrawal id). */
int withdrawals_owns(const record_t *r);

/* Fills r as the withdrawal record of event ev for id with reason (NULL for none). */
void withdrawals_event_record(record_t *r, const char *id, withdrawal_event_t ev, const char *reason);

/* One withdrawal as a JSON object: id, state, login, amount (account currency), currency, fee, token,
 * token_amount, chain, address, request_id, cobo_status, tx_hash, debit_ticket, refund_ticket,
 * approvals, alerts, reason, created_ms, updated_ms. Appends to b. */
#include "schema/json.h"
void withdrawals_view_json(jbuf_t *b, const withdrawal_view_t *w);

/* The transition event a Cobo status means for a transfer: Completed → TRANSFER_DONE, Failed and
 * Rejected → TRANSFER_FAILED, any other (Submitted, Pending..., a status kasa does not know) →
 * TRANSFER_SENT (never taken for an outcome). */
withdrawal_event_t withdrawals_cobo_event(const char *status);

#endif
