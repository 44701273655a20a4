/* record.h — the journal record: one msgpack codec for everything kasa journals.
 *
 * The same bytes are what the journal stores, what flows to the next stage, what the monitor socket
 * publishes (topic = the state name, or the kind for non-deposit records) and what a projector would
 * turn into a document. Encoded as a msgpack map with a version number; decoding garbage, a truncated
 * buffer, a wrong type or a newer version returns -1 with a reason, never crashes or guesses.
 * Strings are bounded: an over-long string fails the encode (it is never silently cut). */
#ifndef KASA_SCHEMA_RECORD_H
#define KASA_SCHEMA_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "schema/deposit.h"
#include "schema/withdrawal.h"

/* The record version this kasa writes; it reads every version up to it. Version 2 added RECORD_ALERT,
 * RECORD_HISTORY_GAP and the fields alert, ticket2 and currency; version 3 RECORD_ADMIN_ACCOUNT and the
 * fields origin, admin, role, pwhash, totp, flags and totp_step; version 4 RECORD_WITHDRAWAL,
 * RECORD_WITHDRAWAL_ATTEMPT and the fields wfrom, wto, wevent, request_id, fee, cobo_id, rate,
 * rate_source and rate_time_ms; version 5 RECORD_IGNORED; version 6 the fields requester, approver and
 * approver2. */
#define RECORD_VERSION 6   /* 6: a learned withdrawal's requester and approvers */

typedef enum {
    RECORD_DEPOSIT = 1,        /* a deposit transition (or a confirmation update: from == to == PENDING) */
    RECORD_CREDIT_ATTEMPT = 2, /* the crediter is about to call MT5 with ref; written before the call */
    RECORD_ADDRESS_LINK = 3,   /* address (on chain) belongs to MT5 login */
    RECORD_ADMIN_ACTION = 4,   /* a person acted (retry, assign, reject, ...); actor + action + reason */
    RECORD_NOTICE_FAILED = 5,  /* the notifier gave up on a notice after its retries; reason recorded */
    RECORD_ALERT = 6,          /* a person must look now: alert (its name), login, ticket(s), reason */
    RECORD_HISTORY_GAP = 7,    /* `kasa journal repair` quarantined records this deposit's history may have
                                * had (reason: what and where): treat it as if a credit attempt of unknown
                                * outcome was made up to time_ms; reconcile with MT5 before any send */
    RECORD_ADMIN_ACCOUNT = 8,  /* an admin account changed (add, disable, reset, password, login): action says which */
    RECORD_WITHDRAWAL = 9,     /* a withdrawal transition (schema/withdrawal.h); tx_id is the withdrawal id */
    RECORD_WITHDRAWAL_ATTEMPT = 10, /* about to move a withdrawal's money, written before the call: action
                                * "debit" or "refund" (MT5, ref, login, credit_minor signed) or "transfer"
                                * (Cobo, request_id); attempt counts that action's attempts */
    RECORD_IGNORED = 11,       /* a Cobo transaction into an address that is not a deposit (a sweep, a Fee
                                * Station top-up, the broker's own transfer): tx_id, address, amount,
                                * token, status and why (reason); never credited */
} record_kind_t;

/* The alerts kasa raises (RECORD_ALERT's alert field is the lower-case name). Each one means money
 * may be wrong and a person must act; none is ever raised silently (journal, log, monitor, panels).
 *   double_credit        two balance deals carry one deposit's reference (ticket and ticket2)
 *   credit_after_hold    a credit sent before the deposit was held succeeded afterwards (ticket)
 *   credit_not_recorded  a deal exists (ticket) but the deposit could not be moved to CREDITED
 *   deal_mismatch        the deal found by reference is on another login or for another amount
 *   failed_after_credit  Cobo reports the transaction failed after it was credited
 *   completed_after_rejected  Cobo reports Completed for a deposit already rejected
 *   transfer_failed      Cobo failed or refused a withdrawal's transfer: held for a person
 *   transfer_after_refund Cobo completed a withdrawal's transfer that is refunding or refunded
 *   double_debit         two MT5 deals carry one withdrawal's debit or refund reference */
#define RECORD_ALERTS(X) \
    X(DOUBLE_CREDIT, "double_credit")                       \
    X(CREDIT_AFTER_HOLD, "credit_after_hold")               \
    X(CREDIT_NOT_RECORDED, "credit_not_recorded")           \
    X(DEAL_MISMATCH, "deal_mismatch")                       \
    X(FAILED_AFTER_CREDIT, "failed_after_credit")           \
    X(COMPLETED_AFTER_REJECTED, "completed_after_rejected") \
    X(TRANSFER_FAILED, "transfer_failed")                   \
    X(TRANSFER_AFTER_REFUND, "transfer_after_refund")       \
    X(DOUBLE_DEBIT, "double_debit")

#define RECORD_ALERT_ENUM_(id, name) RECORD_ALERT_##id,
typedef enum { RECORD_ALERTS(RECORD_ALERT_ENUM_) RECORD_ALERT_COUNT } record_alert_t;
#undef RECORD_ALERT_ENUM_

/* "double_credit" for RECORD_ALERT_DOUBLE_CREDIT; "?" out of range. */
const char *record_alert_name(record_alert_t alert);
/* Name -> value; -1 if unknown. */
int record_alert_from_name(const char *name);

typedef struct {
    int version;               /* RECORD_VERSION when encoding; as read when decoding */
    record_kind_t kind;
    int64_t time_ms;           /* Unix time in ms (UTC) when the record was made */
    char tx_id[80];            /* Cobo transaction_id: the deposit's key (empty for ADDRESS_LINK) */

    /* RECORD_DEPOSIT */
    deposit_state_t from, to;
    deposit_event_t event;
    char status[32];           /* Cobo status as received ("Confirming", "Completed", ...) */
    int32_t confirmations;     /* confirmed_num, -1 if unknown */
    int32_t threshold;         /* confirming_threshold, -1 if unknown */
    char token_id[40];         /* "TRON_USDT" */
    char chain_id[24];         /* "TRON" */
    char address[128];         /* destination address */
    char amount[48];           /* token amount, exact decimal string as Cobo sent it */
    char tx_hash[136];         /* on-chain hash, if known */
    uint64_t login;            /* MT5 login, 0 if not known yet */
    int64_t credit_minor;      /* LOCKED/CREDITED: amount credited in account minor units */
    int32_t digits;            /* account currency digits for credit_minor */
    char currency[16];         /* LOCKED and after: the account's currency (its MT5 group's), "USD", "USC" */
    char remainder[48];        /* LOCKED: what rounding dropped, exact decimal in account currency */
    char reason[160];          /* HELD / REJECTED / NOTICE_FAILED / ADMIN_ACTION: why */
    char rate[48];             /* LOCKED (v4): the rate converted at, account currency per whole token, exact */
    char rate_source[64];      /* LOCKED (v4): "config" (a fixed rule), or SYMBOL[*N]@HOST (a live price) */
    int64_t rate_time_ms;      /* LOCKED (v4): when kasa fetched that live price (Unix ms, UTC); 0 if fixed */

    /* RECORD_CREDIT_ATTEMPT (tx_id, login, credit_minor, digits too) and RECORD_DEPOSIT to CREDITED */
    char ref[32];              /* the MT5 comment reference, <= 31 characters */
    uint32_t attempt;          /* 1, 2, ... */
    uint64_t ticket;           /* CREDITED: the MT5 deal ticket */

    /* RECORD_ADMIN_ACTION */
    char actor[64];            /* who: "admin:alice", "operator" */
    char action[32];           /* "retry", "assign", "approve", "reject", "link"; ADMIN_ACCOUNT: "add", ... */

    /* RECORD_ALERT (tx_id, login, ticket, credit_minor, digits, reason too) */
    char alert[32];            /* its name (record_alert_name) */
    uint64_t ticket2;          /* a second deal ticket: double_credit's other deal */
    char origin[64];           /* from where: "cli:HOST tty", "ip:203.0.113.7", "telegram:USER_ID" (v3) */

    /* RECORD_ADMIN_ACCOUNT (v3); actor and origin say who made the change, from where */
    char admin[64];            /* the account's name */
    char role[16];             /* "viewer", "operator", "approver", "owner" */
    char pwhash[128];          /* Argon2id string (crypto_pwhash_str), never a password */
    char totp[64];             /* the TOTP secret, base32 */
    uint32_t flags;            /* RECORD_ADMIN_* bits */
    uint64_t totp_step;        /* "login": the TOTP time step accepted (a code is never accepted twice) */

    /* RECORD_WITHDRAWAL (v4): tx_id, login, token_id, chain_id, address (the destination), amount (the
     * token amount sent), credit_minor/digits/currency (what is debited), reason, actor, origin too */
    withdrawal_state_t wfrom, wto;
    withdrawal_event_t wevent;
    char request_id[48];       /* the Cobo request_id of the current transfer (WITHDRAWAL_ATTEMPT too) */
    char fee[48];              /* the fee, exact decimal in the account currency */
    char cobo_id[80];          /* Cobo's transaction_id of the transfer, once known */
    /* a learned one (actors/withdrawals.h, cluster mode; v6): who asked, who approved, as the holder's
     * node journaled them (its actor is the node's, "kasa:cluster") */
    char requester[64];
    char approver[64], approver2[64];
} record_t;

enum {
    RECORD_ADMIN_DISABLED = 1u << 0,    /* may not log in */
    RECORD_ADMIN_MUST_CHANGE = 1u << 1, /* the password is a one-time password: change it at first login */
};

/* Sets every field to its empty value (strings "", numbers 0, confirmations/threshold -1). */
void record_init(record_t *r, record_kind_t kind);

/* Encodes r as its version (record_init sets RECORD_VERSION; a decoded older record stays that
 * version, and a field newer than its version fails the encode); on success *out is malloc'd (caller frees) and *out_len set; returns 0, or -1 with a reason. */
int record_encode(const record_t *r, uint8_t **out, size_t *out_len, char *err, size_t errlen);

/* Decodes len bytes into *r; returns 0, or -1 with a reason (garbage, truncated, newer version, bad field). */
int record_decode(const void *buf, size_t len, record_t *r, char *err, size_t errlen);

/* Clears the fields that hold secrets (pwhash, totp), for a record about to leave the journal's
 * trust boundary (the monitor feed). */
void record_redact(record_t *r);

/* The monitor topic of a record: the state name for RECORD_DEPOSIT ("LOCKED"), else the kind's name
 * ("CREDIT_ATTEMPT", "ADDRESS_LINK", "ADMIN_ACTION", "NOTICE_FAILED", "ALERT", "ADMIN_ACCOUNT"). */
const char *record_topic(const record_t *r);
const char *record_kind_name(record_kind_t kind);

/* One JSON object per record (only the fields that kind uses), for `journal dump --json`, `monitor --json`
 * and the panels. Appends to b (see schema/json.h). */
#include "schema/json.h"
void record_to_json(const record_t *r, uint64_t lsn, jbuf_t *b);

/* One readable line (no newline), e.g. "lsn=42 LOCKED tx=... login=100001 amount=250 TRON_USDT". */
void record_to_line(const record_t *r, uint64_t lsn, jbuf_t *b);

#endif
