/* cobo_tx.h — a Cobo WaaS 2.0 Transaction, as it arrives in a webhook's `data` or from
 * GET /v2/transactions/{id}, and the webhook envelope around it. Parsing checks shape and bounds
 * only (required fields present, strings fit, amount is a valid decimal); it makes no decision. */
#ifndef KASA_SCHEMA_COBO_TX_H
#define KASA_SCHEMA_COBO_TX_H

#include <stddef.h>
#include <stdint.h>
#include <bson/bson.h>

typedef struct {
    char tx_id[80];         /* transaction_id (UUID): the idempotency key */
    char type[24];          /* "Deposit", "Withdrawal", ... */
    char status[32];        /* "Confirming", "Completed", "Rejected", "Failed", "PendingScreening", ... */
    char sub_status[48];    /* may be empty; "ReOrged" marks a reorg failure */
    char wallet_id[80];
    char chain_id[24];
    char token_id[40];
    char address[128];      /* destination.address */
    char amount[48];        /* destination.amount, exact decimal string */
    char tx_hash[136];      /* transaction_hash, may be empty */
    int32_t confirmations;  /* confirmed_num, -1 if null */
    int32_t threshold;      /* confirming_threshold, -1 if null */
    int64_t updated_ms;     /* updated_timestamp, 0 if null */
    char request_id[80];    /* request_id: ours for a transfer kasa asked for; empty otherwise */
    char source_type[32];   /* source.source_type: "DepositFromAddress", "Asset", "Org-Controlled", ... */
    char source_address[128]; /* source.address, else source.addresses[0]; may be empty */
    char cobo_category[64]; /* cobo_category, Cobo's own marks ("AutoSweep", "AutoFueling", ...), comma-joined */
} cobo_tx_t;

/* The status of a Cobo Transaction (WaaS 2.0's TransactionStatus). Final: Completed, Failed,
 * Rejected; every other status may still change. A status kasa does not know is UNKNOWN (not
 * final: a new status is never taken for an outcome). */
typedef enum {
    COBO_STATUS_UNKNOWN = 0,
    COBO_STATUS_SUBMITTED,
    COBO_STATUS_PENDING_SCREENING,
    COBO_STATUS_PENDING_AUTHORIZATION,
    COBO_STATUS_PENDING_SIGNATURE,
    COBO_STATUS_BROADCASTING,
    COBO_STATUS_CONFIRMING,
    COBO_STATUS_PENDING,
    COBO_STATUS_COMPLETED,
    COBO_STATUS_FAILED,
    COBO_STATUS_REJECTED,
} cobo_status_t;

/* "Completed" → COBO_STATUS_COMPLETED, ...; NULL or unknown → COBO_STATUS_UNKNOWN. */
cobo_status_t cobo_status_parse(const char *status);
/* Cobo's spelling ("PendingSignature"); "unknown" for UNKNOWN or out of range. */
const char *cobo_status_name(cobo_status_t status);
/* 1 for Completed, Failed, Rejected. */
int cobo_status_is_final(cobo_status_t status);

/* The prefix of every request_id kasa gives a transfer ("kasa-<withdrawal id>-<n>"). */
#define COBO_KASA_REQUEST_PREFIX "kasa-"

/* What a Cobo transaction is to kasa. Only COBO_KIND_DEPOSIT can ever become a deposit. */
typedef enum {
    COBO_KIND_DEPOSIT,     /* coins from outside into a deposit address */
    COBO_KIND_WITHDRAWAL,  /* a transfer kasa asked for (type Withdrawal, request_id "kasa-...") */
    COBO_KIND_SWEEP,       /* Cobo's or the broker's own movement: a Withdrawal kasa did not ask for
                            * (auto-sweep, a transfer made in Cobo's portal), the Deposit leg of a
                            * transfer between the organisation's wallets (DepositFromWallet), or a
                            * Deposit whose sender is one of kasa's own deposit addresses (a sweep) */
    COBO_KIND_OTHER,       /* any other type (ContractCall, TokenApproval, ...): nothing for kasa */
    COBO_KIND_OWN,         /* the broker's own coins into an address: a Deposit Cobo marks as Fee Station's
                            * (cobo_category AutoFueling: gas for an MPC address; AutoFuelingRefund,
                            * BillRefund, CommissionFeeRefund), or one whose sender is one of the broker's
                            * own addresses (KASA_OWN_ADDRESSES) */
} cobo_kind_t;

/* Whose address is a sender: COBO_OWN_DEPOSIT one of kasa's linked deposit addresses (a sweep),
 * COBO_OWN_BROKER one of the broker's own (KASA_OWN_ADDRESSES), 0 neither; NULL means "neither". */
enum { COBO_OWN_DEPOSIT = 1, COBO_OWN_BROKER = 2 };
typedef int (cobo_own_fn)(void *arg, const char *address);

/* Classifies tx (pure apart from own): by type, request_id, cobo_category, source_type and the
 * sender. Cobo's Transaction carries no single "this is yours" field: a transfer between two of the
 * organisation's wallets shows as a Withdrawal and a Deposit (DepositFromWallet between Exchange
 * Wallets, else DepositFromAddress like anyone's), Fee Station's gas as a Deposit with cobo_category
 * AutoFueling; so the broker's other senders are named in KASA_OWN_ADDRESSES. */
cobo_kind_t cobo_tx_kind(const cobo_tx_t *tx, cobo_own_fn *own, void *arg);
/* "deposit", "withdrawal", "sweep", "other", "own". */
const char *cobo_kind_name(cobo_kind_t kind);

typedef struct {
    char event_id[80];
    char type[64];          /* "wallets.transaction.updated", ... */
    int is_transaction;     /* data.data_type == "Transaction" */
    cobo_tx_t tx;           /* filled when is_transaction */
} cobo_event_t;

/* Parses a webhook body. Returns 0, or -1 with a short reason (never echoing the body):
 * "malformed JSON", "missing field data.transaction_id", "amount: ...", ... */
int cobo_event_parse(const char *body, size_t len, cobo_event_t *out, char *err, size_t errlen);

/* Fills *out from a Transaction object located at path in doc ("data", or "" for the root).
 * Returns 0, or -1 with a reason. */
int cobo_tx_from_bson(const bson_t *doc, const char *path, cobo_tx_t *out, char *err, size_t errlen);

#endif
