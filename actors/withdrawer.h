/* withdrawer.h — the withdrawer stage: moves a withdrawal's money, each movement exactly once.
 *
 * One actor owning one MT5 client and one Cobo client; withdrawals reach it as their durable
 * RECORD_WITHDRAWAL (from a request, a person's action, the restart's resume) and by its own
 * schedule (a sent transfer not settled by a webhook is asked about every KASA_WITHDRAW_POLL_S).
 * Every move it makes is journaled before it acts ("write last, read first", as the crediter):
 *
 *  REQUESTED → the MT5 debit, a balance deal of minus the amount (check_margin=1) with the
 *    withdrawal's debit reference (withdrawal_debit_ref). Before every send the account's balance
 *    deals are searched for the reference (actors/credit_check.h, the crediter's search): found →
 *    DEBIT_OK with that ticket; cannot tell → later, never sent; not there → sent only once the
 *    settle time after the last attempt has passed; a WITHDRAWAL_ATTEMPT "debit" record is durable
 *    before the call. MT5 refuses (no money, no margin: retcode 10019) → DEBIT_REFUSED, after a
 *    search shows no earlier attempt executed late.
 *  DEBITED → APPROVE by itself when its amount needs no approver; else it waits for people.
 *  APPROVED → the Cobo transfer under request_id "kasa-<id>-<n>". A WITHDRAWAL_ATTEMPT "transfer"
 *    is durable before the call; from the second attempt on, the request_id is looked up first
 *    (GET /v2/transactions?request_id=). Created or found → TRANSFER_SENT (or DONE / FAILED as
 *    Cobo says); "request_id already used" → looked up, never a new request_id; timeout or 5xx →
 *    looked up on the next pass; refused (a 4xx: nothing created) → TRANSFER_REFUSED (HELD).
 *  SENT → Cobo's status, asked on the schedule: Completed → COMPLETED, Failed/Rejected → HELD.
 *  REFUNDING → the MT5 refund, a positive balance deal with the refund reference, as the debit.
 *
 * A withdrawal's transition messages and Cobo's answers may cross (a webhook settles it while the
 * withdrawer asks): every step reads the withdrawal's current state first and the state table
 * refuses what no longer applies. */
#ifndef KASA_ACTORS_WITHDRAWER_H
#define KASA_ACTORS_WITHDRAWER_H

#include <czmq.h>

#include "actors/stage.h"
#include "actors/withdrawals.h"

/* ---- the Cobo seam: what the withdrawer asks of Cobo ------------------------------------------ */

typedef enum {
    WITHDRAWER_COBO_CREATED,  /* Cobo holds the transfer: answer filled (cobo_id, status)            */
    WITHDRAWER_COBO_EXISTS,   /* the request_id was used already: the first request exists, find it */
    WITHDRAWER_COBO_REFUSED,  /* refused, nothing created (message says why)                         */
    WITHDRAWER_COBO_BUSY,     /* refused by a rate limit: the same request_id later                  */
    WITHDRAWER_COBO_UNKNOWN,  /* timeout, 5xx, an unreadable answer: it may exist; look it up        */
} withdrawer_create_t;

typedef enum {
    WITHDRAWER_FIND_FOUND,       /* a transfer carries the request_id: answer filled                */
    WITHDRAWER_FIND_NOT_THERE,   /* Cobo answered: none does                                        */
    WITHDRAWER_FIND_CANNOT_TELL, /* no answer: ask again later, never a reason to send             */
} withdrawer_find_t;

typedef struct {
    char cobo_id[80];
    char status[32];      /* Cobo's status ("Submitted", "Completed", "Failed", ...) */
    char tx_hash[136];
    char message[192];    /* why, for REFUSED / UNKNOWN */
} withdrawer_answer_t;

/* What the withdrawer needs of Cobo, as functions (tests plug in their own). Each call is made by
 * the withdrawer's thread only. */
typedef struct {
    /* Called once when the actor starts: its state for the calls (NULL is fine), or NULL with
     * *failed set when it cannot start (err says why). */
    void *(*open)(const config_t *cfg, int *failed, char *err, size_t errlen);
    void (*close)(void *state);
    /* POST /v2/transactions/transfer for w under w->request_id, from cfg's withdrawal wallet. */
    withdrawer_create_t (*create)(void *state, const config_t *cfg, const withdrawal_view_t *w,
                                  withdrawer_answer_t *out);
    /* GET /v2/transactions?request_id=... */
    withdrawer_find_t (*find)(void *state, const char *request_id, withdrawer_answer_t *out);
} withdrawer_cobo_t;

/* The seam every withdrawer started after this call uses (process-wide; NULL: the default, Cobo's
 * API through actors/cobo.h: cobo_transfer and cobo_find_transfer, from COBO_WITHDRAW_WALLET_ID and
 * COBO_WITHDRAW_ADDRESS). For tests. */
void withdrawer_set_cobo(const withdrawer_cobo_t *cobo);

/* Starts the withdrawer (ctx->withdrawals must be set). NULL with a reason in err. */
zactor_t *withdrawer_new(const stage_ctx_t *ctx, char *err, size_t errlen);

/* Journals an ALERT named alert on withdrawal id (and logs it, level=error event=withdrawal.alert). */
void withdrawer_alert(withdrawals_t *wd, journal_t *journal, const char *id, record_alert_t alert, uint64_t login,
                      uint64_t ticket, uint64_t ticket2, const char *reason);
/* The alert a transition r with an ALERT effect raises (res: how its commit went): transfer_failed
 * (Cobo failed or refused it), completed_after_rejected (Completed while HELD), transfer_after_refund
 * (Completed while refunding or refunded), failed_after_credit (Failed after Completed). */
void withdrawer_alert_of(withdrawals_t *wd, journal_t *journal, const record_t *r, registry_result_t res);

/* Approvals a withdrawal needs under cfg (withdrawal_approvals_needed of its amount). */
int withdrawer_approvals_needed(const config_t *cfg, const withdrawal_view_t *w);

#endif
