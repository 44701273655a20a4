/* withdrawal.h — the withdrawal state machine, and the pure rules around it (its references, its
 * quote, the approvals it needs). The table in withdrawal.c is the single source of truth: states,
 * events, which transitions are legal and what each one causes. withdrawal_step() is pure (no I/O,
 * no clock, no globals).
 *
 *   (none) ─▶ REQUESTED ─▶ DEBITED ─▶ APPROVED ─▶ SENT ─▶ COMPLETED
 *                │            │          │  ▲       │
 *                ▼            ▼          ▼  │       ▼
 *             REJECTED    REFUNDING ◀── HELD ◀──────┘   (Cobo: Failed/Rejected, or refused the
 *       (MT5 refused the      │          (a person: refund, or transfer again under a new request_id
 *        debit: nothing       ▼           once Cobo says the first is final)
 *        moved)            REFUNDED
 *
 * Money moves three times at most, each exactly once: the MT5 debit (DEBIT, only on entering
 * REQUESTED), the Cobo transfer (TRANSFER, on entering APPROVED: once from DEBITED, and again only
 * from HELD by a person's RETRANSFER), the MT5 refund (REFUND, on entering REFUNDING, never after a
 * completed transfer). */
#ifndef KASA_SCHEMA_WITHDRAWAL_H
#define KASA_SCHEMA_WITHDRAWAL_H

#include <stddef.h>
#include <stdint.h>

#include "schema/money.h"

#define WITHDRAWAL_STATES(X) \
    X(NONE)       /* not yet asked for */                                                   \
    X(REQUESTED)  /* the investor asked, the checks passed; the MT5 debit is due */          \
    X(DEBITED)    /* one MT5 balance deal of minus the amount exists; waits for approvers */ \
    X(APPROVED)   /* approved; the Cobo transfer is due (request_id of its transfer number) */ \
    X(SENT)       /* Cobo has the transfer; waits for its final status */                    \
    X(COMPLETED)  /* terminal: Cobo says Completed; the coins left */                        \
    X(HELD)       /* debited, not paid: Cobo failed or refused the transfer; needs a person */ \
    X(REJECTED)   /* terminal: MT5 refused the debit; no money moved */                      \
    X(REFUNDING)  /* rejected or given up after a debit: the MT5 refund is due */            \
    X(REFUNDED)   /* terminal: one MT5 refund deal gave the money back */

#define WITHDRAWAL_EVENTS(X) \
    X(REQUEST)         /* investor: a checked request (amounts, address, margin)            */ \
    X(DEBIT_OK)        /* withdrawer: the MT5 debit deal exists (sent, or found by reference) */ \
    X(DEBIT_REFUSED)   /* withdrawer: MT5 refused the debit for good and no deal exists      */ \
    X(APPROVE)         /* person: the last approval its amount needs (or none is needed)     */ \
    X(REJECT)          /* person: rejected before any transfer; the debit is refunded        */ \
    X(TRANSFER_SENT)   /* withdrawer / Cobo: Cobo holds the transfer, not final yet          */ \
    X(TRANSFER_DONE)   /* Cobo: the transfer is Completed (webhook, poll or lookup)          */ \
    X(TRANSFER_FAILED) /* Cobo: the transfer is Failed or Rejected, final                    */ \
    X(TRANSFER_REFUSED)/* withdrawer: Cobo refused to create the transfer (nothing created)  */ \
    X(REFUND)          /* person: refund a HELD withdrawal (Cobo's transfer is final)        */ \
    X(RETRANSFER)      /* person: transfer a HELD one again under a new request_id           */ \
    X(REFUND_OK)       /* withdrawer: the MT5 refund deal exists                             */

#define WITHDRAWAL_ENUM_STATE_(name) WITHDRAWAL_##name,
#define WITHDRAWAL_ENUM_EVENT_(name) WITHDRAWAL_EV_##name,
typedef enum { WITHDRAWAL_STATES(WITHDRAWAL_ENUM_STATE_) WITHDRAWAL_STATE_COUNT } withdrawal_state_t;
typedef enum { WITHDRAWAL_EVENTS(WITHDRAWAL_ENUM_EVENT_) WITHDRAWAL_EVENT_COUNT } withdrawal_event_t;
#undef WITHDRAWAL_ENUM_STATE_
#undef WITHDRAWAL_ENUM_EVENT_

/* Effects a transition asks of the withdrawer (a bit set). Every MOVE is also told (monitor feed,
 * Telegram): that needs no bit. */
enum {
    WITHDRAWAL_EFFECT_NONE = 0,
    WITHDRAWAL_EFFECT_DEBIT = 1 << 0,    /* the MT5 debit (reconcile first if an attempt exists) */
    WITHDRAWAL_EFFECT_TRANSFER = 1 << 1, /* the Cobo transfer (look the request_id up first)      */
    WITHDRAWAL_EFFECT_REFUND = 1 << 2,   /* the MT5 refund (reconcile first if an attempt exists)*/
    WITHDRAWAL_EFFECT_ALERT = 1 << 3,    /* a person must look                                   */
};

typedef enum {
    WITHDRAWAL_STEP_MOVE,    /* a transition: journal it, then perform the effects */
    WITHDRAWAL_STEP_SAME,    /* a repeat: nothing to do (an ALERT may ride on it)  */
    WITHDRAWAL_STEP_ILLEGAL, /* not allowed from this state: refuse, change nothing */
} withdrawal_outcome_t;

typedef struct {
    withdrawal_outcome_t outcome;
    withdrawal_state_t to;
    unsigned effects;
} withdrawal_step_t;

/* The pure step function: what event ev does to a withdrawal in state from. Out of range: ILLEGAL. */
withdrawal_step_t withdrawal_step(withdrawal_state_t from, withdrawal_event_t ev);

/* "DEBITED", "TRANSFER_DONE"; "?" out of range. Name → value, -1 if unknown. */
const char *withdrawal_state_name(withdrawal_state_t state);
const char *withdrawal_event_name(withdrawal_event_t ev);
int withdrawal_state_from_name(const char *name);
int withdrawal_event_from_name(const char *name);

/* 1 for a state no event leaves (COMPLETED, REJECTED, REFUNDED); out of range too. */
int withdrawal_state_is_final(withdrawal_state_t state);

/* ---- identity and references ------------------------------------------------------------------ */

#define WITHDRAWAL_ID_HEX 20   /* a withdrawal id is "w" + 20 lower-case hex digits */

/* 1 if id has the shape of a withdrawal id. */
int withdrawal_id_valid(const char *id);
/* "w" + hex of the 10 bytes given (random at request time). */
void withdrawal_id_make(const unsigned char rnd[10], char out[WITHDRAWAL_ID_HEX + 2]);

/* MT5 comment references, each distinct from every other kasa reference (deposits are "kasa " + hex
 * of a Cobo id): the debit "kasa wd d<20 hex>", the refund "kasa wr e<20 hex>". The hex cores differ
 * in their first digit, so a search for one never matches the other (mt5_comment_matches). */
void withdrawal_debit_ref(const char *id, char out[32]);
void withdrawal_refund_ref(const char *id, char out[32]);
/* 1 if an MT5 comment carries some withdrawal reference (for reconcile): "kasa wd"/"kasa wr". */
int withdrawal_ref_kind(const char *comment);   /* 0 none, 'd' debit, 'r' refund */

/* Cobo request_id of the n-th transfer (n >= 1) of withdrawal id: "kasa-<id>-<n>". A timeout is never
 * answered by a new n: only a person's RETRANSFER (after Cobo says the last one is final) moves n. */
void withdrawal_request_id(const char *id, uint32_t n, char out[48]);

/* ---- the quote ------------------------------------------------------------------------------------ */

/* A token's withdrawal rule (KASA_WITHDRAW_<TOKEN>[__<CURRENCY>]=rate:fee:minimum:maximum:daily):
 * rate = account currency per whole token; fee, minimum, maximum, daily in account currency (the
 * fee is taken from the amount; maximum and daily 0 = none). */
typedef struct {
    money_atto_t rate, fee, minimum, maximum, daily;
} withdrawal_rule_t;

typedef struct {
    int64_t amount_minor;        /* what is debited, account minor units: the fee and what token_amount is
                                  * worth at the rate, rounded up to a minor unit (at most the amount asked:
                                  * what rounding the token amount down left over stays in the account) */
    int32_t digits;              /* the account currency's digits */
    money_atto_t fee;            /* the fee, account currency */
    money_atto_t token_amount;   /* what the destination receives: (amount - fee) / rate, rounded down
                                  * to token_decimals */
    char token_text[48];         /* token_amount as an exact decimal ("99.500000" → "99.5") */
    char fee_text[48];
    char amount_text[48];
} withdrawal_quote_t;

/* The quote for amount (account currency, exact) on an account of digits, under rule, with a token of
 * token_decimals (0..18) and today_minor already asked by this login today (account minor units,
 * requests not rejected/refunded). 0, or -1 with a sentence for the investor (below the minimum,
 * over the maximum, over the daily limit, nothing left after the fee, more decimals than the
 * account's currency has). */
int withdrawal_quote(money_atto_t amount, int32_t digits, const withdrawal_rule_t *rule, int token_decimals,
                     int64_t today_minor, withdrawal_quote_t *out, char *err, size_t errlen);

/* The rules of every token offered for withdrawal: KASA_WITHDRAW_RULES, a comma list of
 * TOKEN_ID[__CURRENCY]=rate:fee:minimum:maximum:daily (CURRENCY default USD, as KASA_TOKEN_ keys),
 * e.g. "TRON_USDT=1:1:10:5000:20000,TRON_USDT__USC=100:100:1000:500000:2000000". */
#define WITHDRAWAL_MAX_RULES 32
typedef struct {
    char token_id[40];
    char currency[16];
    withdrawal_rule_t rule;
} withdrawal_token_rule_t;
typedef struct {
    withdrawal_token_rule_t rules[WITHDRAWAL_MAX_RULES];
    int count;
} withdrawal_rules_t;

/* Parses text (may be NULL or empty: no withdrawals offered) into *out. 0, or -1 with a reason
 * (bad shape, a rate of zero, a maximum below the minimum, a rule given twice, too many). */
int withdrawal_rules_parse(const char *text, withdrawal_rules_t *out, char *err, size_t errlen);
/* The rule of token_id on accounts in currency (case-insensitive), or NULL. */
const withdrawal_rule_t *withdrawal_rules_find(const withdrawal_rules_t *rules, const char *token_id,
                                               const char *currency);

/* Approvals a withdrawal of amount (account currency) needs: 0 at or under auto_limit (0 = every
 * withdrawal needs one), 2 over dual_limit (0 = never two), else 1. */
int withdrawal_approvals_needed(money_atto_t amount, money_atto_t auto_limit, money_atto_t dual_limit);

#endif
