/* reconcile.h — three-way reconciliation of kasa's journal, Cobo and MT5 over a time window, for
 * `kasa reconcile`. Read-only: it reads the journal (as a start does), lists Cobo's deposits and reads MT5's
 * balance deals; it never journals, credits or changes anything.
 *
 * The books agree when, for the window [from, to]:
 *   - every Completed Cobo deposit (created in the window) to an address linked to a login is a
 *     deposit kasa knows, of the same amount (cobo_missing, amount_differs), and kasa has finished
 *     it: credited, held for a person or rejected (not_credited);
 *   - no deposit kasa credited is unknown to Cobo or failed there (unknown_at_cobo, failed_at_cobo);
 *   - every deposit kasa journaled as CREDITED (created in the window) has exactly one MT5 balance
 *     deal with its reference, on its login, of its amount (deal_missing, deal_duplicate,
 *     deal_amount, deal_login, deal_ticket);
 *   - every MT5 balance deal with a kasa reference (a comment carrying a deposit's reference by
 *     mt5_comment_matches — the crediter's rule, so a comment MT5 prefixed, re-cased or cut still
 *     counts — or holding "kasa " at all, on the logins kasa knows, dated within the window widened
 *     by RECONCILE_MT5_SLACK_S for trade-server time) belongs to a deposit kasa credited
 *     (deal_unknown, deal_uncredited);
 *   - every withdrawal kasa journaled (created in the window) that was debited (DEBITED or later) has
 *     exactly one MT5 balance deal with its debit reference (withdrawal_debit_ref), on its login, of
 *     minus its amount; one never debited (REJECTED) has none (wd_debit_missing, wd_debit_duplicate,
 *     wd_debit_unexpected, wd_debit_amount, wd_debit_login); a REFUNDED one has exactly one deal with
 *     its refund reference of plus its amount, any other none (wd_refund_missing,
 *     wd_refund_duplicate, wd_refund_unexpected, wd_refund_amount, wd_refund_login); a REQUESTED or
 *     REFUNDING one may have its debit or refund deal or not yet (the withdrawer is between the deal
 *     and its record), never two; a COMPLETED one's Cobo transfer is Completed at Cobo
 *     (wd_transfer_unknown, wd_transfer_status; asked through cobo_lookup, skipped without it);
 *   - every MT5 balance deal with a withdrawal reference ("kasa wd"/"kasa wr") belongs to a withdrawal
 *     kasa knows (wd_deal_unknown), matched by the same mt5_comment_matches rule.
 * In cluster mode the deposits and withdrawals are the cluster's: this node's journal merged with the
 * other nodes' deposit transitions and the withdrawals documents in MongoDB.
 * Each mismatch carries its evidence (ids, tickets, amounts, states) as key=value text. */
#ifndef KASA_ACTORS_RECONCILE_H
#define KASA_ACTORS_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include "actors/mt5.h"
#include "actors/registry.h"
#include "actors/withdrawals.h"
#include "schema/cobo_tx.h"
#include "schema/config.h"
#include "schema/json.h"

#define RECONCILE_MT5_SLACK_S (2 * 86400)
#define RECONCILE_COBO_RETRIES 2          /* a page's retries (1 s, 2 s): an operator is waiting */
#define RECONCILE_MAX_MISMATCHES 10000   /* reported at most; the count goes on */

/* Cluster mode: one deposit transition another node journaled (MongoDB's `transitions`), so that a
 * deposit this node only journaled and another node credited (or held, or rejected) is judged by
 * what the cluster did, and one whose webhooks never reached this node is checked too. */
typedef struct {
    char tx_id[80], node[64];
    deposit_state_t to;          /* the state the record moved it to */
    uint64_t login, ticket;      /* 0 if the record has none */
    int64_t credit_minor;        /* 0 if none */
    int32_t digits;
    char address[128], amount[48], token_id[40];   /* "" if the record has none */
    int64_t time_ms;
} reconcile_remote_t;

/* What the three books hold for the window, gathered by reconcile_gather (or by a test). */
typedef struct {
    int64_t from_ms, to_ms;
    registry_t *journal;          /* every deposit and link, as a start has them (not owned) */
    const config_t *cfg;          /* KASA_OWN_ADDRESSES: the broker's own senders are not deposits (NULL: none) */
    withdrawals_t *withdrawals;   /* every withdrawal, replayed alongside (NULL: none checked) */
    cobo_tx_t *cobo;              /* Cobo's deposits created in the window */
    int64_t *cobo_created_ms;     /* their created_timestamp, parallel to cobo (may be NULL) */
    size_t cobo_count;
    mt5_deal_t *deals;            /* MT5 balance deals on the logins kasa knows, window + slack */
    size_t deal_count;
    uint64_t *logins;             /* the logins whose deals were read */
    size_t login_count;
    /* Cobo's own answer for a credited deposit the listing lacks (and for a completed withdrawal's
     * transfer, by its Cobo transaction id): fills *out, returns 0 found, 1 not
     * found (404), -1 could not tell. NULL: such deposits are reported unknown_at_cobo. */
    int (*cobo_lookup)(void *arg, const char *tx_id, cobo_tx_t *out);
    void *cobo_lookup_arg;
    /* Cluster mode: the other nodes' deposit transitions (any order; NULL: none). Per deposit the
     * furthest state any node reached counts (deposit_state_rank: a credit, then REJECTED, then HELD)
     * with that node's login, credit and ticket. */
    reconcile_remote_t *remote;
    size_t remote_count;
    /* Cluster mode: MongoDB's withdrawals documents (NULL: none), each as its holder wrote it. Per
     * withdrawal the view further along (reconcile_wd_rank; on a tie the document's) is checked, so
     * one this node never learned, or learned less of, is judged by what its holder did. */
    withdrawal_view_t *shared_wds;
    size_t shared_wd_count;
} reconcile_books_t;

/* How far along a withdrawal in state s is, for choosing between two views of it: REQUESTED 1;
 * DEBITED, APPROVED, SENT, HELD 2; COMPLETED, REFUNDING 3; REJECTED, REFUNDED 4 (0 otherwise). */
int reconcile_wd_rank(withdrawal_state_t s);

typedef struct {
    char kind[24];                /* "cobo_missing", "deal_missing", "wd_debit_missing", ... */
    char tx_id[80];               /* the deposit or withdrawal id, "" when none (deal_unknown) */
    uint64_t login;
    uint64_t ticket;
    char evidence[320];           /* key=value text */
} reconcile_mismatch_t;

typedef struct {
    size_t deposits, credited, cobo_deposits, deals, kasa_deals, logins;  /* what was checked */
    size_t withdrawals;           /* withdrawals created in the window */
    size_t mismatch_count;        /* every mismatch found */
    reconcile_mismatch_t *mismatches;  /* the first RECONCILE_MAX_MISMATCHES of them */
    size_t cap;
} reconcile_report_t;

/* Compares the books; fills *out (free with reconcile_report_free). No I/O beyond books->cobo_lookup
 * and reading finished deposits back from their index. Returns the number of mismatches (0: the books
 * agree), or -1 on no memory or an index entry that cannot be read (nothing can be said). */
long reconcile_compare(const reconcile_books_t *books, reconcile_report_t *out);
void reconcile_report_free(reconcile_report_t *r);

/* Reads the three books for [from_ms, to_ms] as cfg says: restores cfg->journal_dir's deposits,
 * links and withdrawals as a start does (newest snapshot, index of finished deposits, the journal
 * after it), in cluster mode reads the other nodes' deposit transitions and the withdrawals documents
 * from MongoDB (books->remote, books->shared_wds: one client waiting at most MIO_ONE_OFF_TIMEOUT_MS),
 * lists Cobo's deposits of COBO_WALLET_ID (the catch-up's pager: rate limits waited out),
 * reads MT5's balance deals of every login kasa knows. Fills *books (free with
 * reconcile_books_free). 0, or -1 with a reason (a book that cannot be read fully: nothing can be
 * said about agreement). */
int reconcile_gather(const config_t *cfg, int64_t from_ms, int64_t to_ms, reconcile_books_t *books,
                     char *err, size_t errlen);
void reconcile_books_free(reconcile_books_t *books);

/* The report as text lines (one per mismatch, then a summary) or as one JSON object. */
void reconcile_report_text(const reconcile_books_t *books, const reconcile_report_t *r, jbuf_t *out);
void reconcile_report_json(const reconcile_books_t *books, const reconcile_report_t *r, jbuf_t *out);

#endif
