/* cobo.h — the Cobo WaaS 2.0 API client (libcurl).
 *
 * Every request is signed with Cobo Auth (Biz-Api-Key, Biz-Api-Nonce = Unix ms, Biz-Api-Signature
 * over METHOD|PATH|NONCE|PARAMS|BODY, PATH including the base URL's path such as /v2). The query
 * string is built once (keys sorted, form-urlencoded) and exactly those bytes are signed and sent.
 * When a response public key is configured, every 2xx response must carry Biz-Timestamp and
 * Biz-Resp-Signature (either spelling, '-' or '_', any case) valid over RAW_BODY|TIMESTAMP, or
 * the call fails with COBO_ERR_SIGNATURE and its body is not used. An error response (4xx/5xx)
 * that carries a signature must carry a valid one; an unsigned one is still reported as the
 * failure it claims (nothing in it is acted upon, and a forged failure is no worse than a lost
 * connection).
 *
 * Threads: a client handle is used by one thread at a time (it owns one curl handle and buffers).
 * Give each thread its own client; cobo_client_new() is cheap. The secret is kept only as an
 * Ed25519 signer and wiped on destroy; it is never logged. */
#ifndef KASA_ACTORS_COBO_H
#define KASA_ACTORS_COBO_H

#include <stddef.h>
#include <stdint.h>

#include "schema/cobo_tx.h"

typedef struct cobo_client_t cobo_client_t;

typedef enum {
    COBO_OK = 0,
    COBO_ERR_ARG,        /* a bad argument (id with '/', too long, ...): nothing was sent */
    COBO_ERR_TRANSPORT,  /* connect failure, reset, timeout: the outcome is UNKNOWN */
    COBO_ERR_HTTP_4XX,   /* Cobo refused: see cobo_client_error_code() (2024 auth, 2026 rate ...) */
    COBO_ERR_HTTP_5XX,   /* Cobo failed (503 ...): the outcome of a write is unknown */
    COBO_ERR_SIGNATURE,  /* the response signature is missing or wrong: nothing of it was used */
    COBO_ERR_MALFORMED,  /* a verified 2xx body that is not what the API promises */
} cobo_err_t;

/* A short stable name for e ("transport", "http_4xx", ...), for logs. */
const char *cobo_err_name(cobo_err_t e);

/* Creates a client. base_url like "https://api.cobo.com/v2" (http:// only for loopback tests);
 * api_key_hex / api_secret_hex are the 64-hex Ed25519 public key and seed; response_pubkey_hex is
 * Cobo's key for response signatures (NULL or "" skips response verification — tests only);
 * timeout_ms bounds each whole request (connect + transfer). The api key must match the secret.
 * Returns NULL with a reason in err (never echoing the secret). */
cobo_client_t *cobo_client_new(const char *base_url, const char *api_key_hex,
                               const char *api_secret_hex, const char *response_pubkey_hex,
                               long timeout_ms, char *err, size_t errlen);
/* Frees the client, wiping its signer. Nulls *self_p; safe on NULL and twice. */
void cobo_client_destroy(cobo_client_t **self_p);

/* After a call: the HTTP status of the last response (0 if none), and Cobo's error_code from a
 * non-2xx JSON error body (0 if none). */
int cobo_client_http_status(const cobo_client_t *self);
int cobo_client_error_code(const cobo_client_t *self);
/* After a call: the last response's Retry-After in ms (whole seconds only; 0 if absent), and 1 if
 * it was Cobo's rate limit (HTTP 429, or error_code 2010 "rate limit exceeded" / 2026 "too many
 * requests"): slow down, then retry. */
int64_t cobo_client_retry_after_ms(const cobo_client_t *self);
int cobo_client_rate_limited(const cobo_client_t *self);

/* GET /v2/transactions/{tx_id} into *out (parsed by cobo_tx_from_bson). Read-only: retry freely.
 * Returns COBO_OK, or an error with a short reason in err (Cobo's error_message for a 4xx). */
cobo_err_t cobo_get_transaction(cobo_client_t *self, const char *tx_id, cobo_tx_t *out,
                                char *err, size_t errlen);

/* POST /v2/wallets/{wallet_id}/addresses {"chain_id":chain_id,"count":1}: one new deposit address,
 * copied into address_out. NOT idempotent: after COBO_ERR_TRANSPORT or 5xx an address may have
 * been made; the caller resolves that with cobo_list_addresses() before asking again. */
cobo_err_t cobo_create_address(cobo_client_t *self, const char *wallet_id, const char *chain_id,
                               char *address_out, size_t address_len, char *err, size_t errlen);

/* Called once per address; return 0 to go on, non-zero to stop the listing early (not an error). */
typedef int (*cobo_address_fn)(void *arg, const char *address, const char *chain_id);

/* GET /v2/wallets/{wallet_id}/addresses?chain_ids=CHAIN&limit=50[&after=CURSOR], every page, at
 * most 2000 pages. chain_id may be NULL or "" for every chain. Returns COBO_OK once the last page
 * was seen (or fn stopped it), or the first error (fn may already have been called). */
cobo_err_t cobo_list_addresses(cobo_client_t *self, const char *wallet_id, const char *chain_id,
                               cobo_address_fn fn, void *arg, char *err, size_t errlen);

/* A balance as Cobo reports it: exact decimal strings (each checked with money_parse). Cobo's
 * pending, locked and frozen may be absent: they read "0". */
#define COBO_AMOUNT_LEN 48
typedef struct {
    char total[COBO_AMOUNT_LEN], available[COBO_AMOUNT_LEN], pending[COBO_AMOUNT_LEN];
    char locked[COBO_AMOUNT_LEN], frozen[COBO_AMOUNT_LEN];
} cobo_balance_t;

/* Called once per listed balance: name is the token id (wallet listing) or the address (address
 * listing). Return 0 to go on, non-zero to stop early (not an error). */
typedef int (*cobo_balance_fn)(void *arg, const char *name, const cobo_balance_t *balance);

/* GET /v2/wallets/{wallet_id}/tokens?limit=page_limit[&after=CURSOR] ("List token balances by
 * wallet"), every page: each token's balance in the whole wallet. page_limit 1..50. Read-only.
 * COBO_OK once the last page was seen, or the first error (fn may already have been called). */
cobo_err_t cobo_list_token_balances(cobo_client_t *self, const char *wallet_id, int page_limit, cobo_balance_fn fn,
                                    void *arg, char *err, size_t errlen);
/* GET /v2/wallets/{wallet_id}/tokens/{token_id}?limit=page_limit[&addresses=A,B][&after=CURSOR]
 * ("List address balances by token"), every page: the token's balance at each address (addresses
 * NULL or "": every address of the wallet that holds it). As above. */
cobo_err_t cobo_list_address_balances(cobo_client_t *self, const char *wallet_id, const char *token_id,
                                      const char *addresses, int page_limit, cobo_balance_fn fn, void *arg, char *err,
                                      size_t errlen);

/* GET /v2/wallets/tokens/{token_id}: the token's decimal places (0..18) into *decimal; kept by the client
 * once read (a token's decimals never change), so later calls ask nothing. */
cobo_err_t cobo_get_token_decimal(cobo_client_t *self, const char *token_id, int *decimal,
                                  char *err, size_t errlen);

/* A query of GET /v2/transactions (Cobo's "List all transactions"). NULL or "" strings and 0
 * times are not sent. Cobo filters by creation time only (min/max_created_timestamp, ms); the
 * answer is sorted by creation, oldest first (direction=ASC), and paged by the opaque cursor
 * pagination.after. */
typedef struct {
    const char *types;            /* comma list, e.g. "Deposit" */
    const char *statuses;         /* comma list, e.g. "Completed" */
    const char *wallet_ids;       /* comma list */
    const char *transaction_ids;  /* comma list */
    int64_t min_created_ms;       /* created at or after */
    int64_t max_created_ms;       /* created at or before */
    int limit;                    /* 1..50 */
    const char *after;            /* the cursor of the page to read; NULL or "" for the first */
    const char *request_id;       /* the transfer asked for with this request_id */
} cobo_tx_query_t;

/* Called once per transaction of a page: tx parsed (cobo_tx_from_bson), or tx NULL and why saying
 * why an entry could not be read (the page goes on: one odd entry must not stop a listing). */
typedef void (*cobo_tx_fn)(void *arg, const cobo_tx_t *tx, const char *why);

/* One page of GET /v2/transactions?QUERY&direction=ASC. Read-only: retry freely. next_after gets
 * pagination.after ("" on the last page). Returns COBO_OK, or an error (fn not called); a rate
 * limit shows as COBO_ERR_HTTP_4XX with cobo_client_rate_limited() true. */
cobo_err_t cobo_list_transactions_page(cobo_client_t *self, const cobo_tx_query_t *q, cobo_tx_fn fn, void *arg,
                                       char *next_after, size_t next_len, char *err, size_t errlen);

/* ---- transfers (withdrawals) ------------------------------------------------------------------ */

/* A transfer from the broker's wallet to an address. Strings are copied into the request body
 * (JSON-escaped); none is kept. */
typedef struct {
    const char *request_id;      /* the idempotency key: 1..64 of [A-Za-z0-9._~-] */
    const char *wallet_id;       /* the wallet paying */
    const char *source_address;  /* NULL or "": {"source_type":"Asset","wallet_id"} (custodial); else
                                  * {"source_type":"Org-Controlled","wallet_id","address"} (MPC: required
                                  * on TRON and ETH) */
    const char *token_id;        /* "TRON_USDT", ...; the destination must be an address of its chain */
    const char *address;         /* destination.account_output.address */
    const char *amount;          /* destination.account_output.amount: an exact decimal in whole tokens */
    const char *fee_level;       /* NULL or "Slow" | "Recommended" | "Fast" */
    const char *description;     /* NULL or free text (at most 200 bytes) */
} cobo_transfer_t;

/* What became of a transfer request. */
typedef enum {
    COBO_TRANSFER_CREATED,   /* 201: Cobo holds it; transaction_id and status filled */
    COBO_TRANSFER_DUPLICATE, /* Cobo says request_id was already used (error 30001 or 12009): the first
                              * request exists — find it with cobo_find_transfer(), never a new id */
    COBO_TRANSFER_REFUSED,   /* a signed 4xx: nothing was created (error_code, message filled); sending
                              * again with the SAME request_id is safe (Cobo would say DUPLICATE) */
    COBO_TRANSFER_UNKNOWN,   /* timeout, reset, 5xx, an unsigned or malformed answer: it may exist.
                              * Never answered by a new request_id: look it up (cobo_find_transfer) */
    COBO_TRANSFER_INVALID,   /* a bad argument (address not of the token's chain, amount not a
                              * positive decimal, ...): nothing was sent */
} cobo_transfer_outcome_t;

typedef struct {
    char transaction_id[80];     /* CREATED */
    char status[32];             /* CREATED: Cobo's status ("Submitted", ...) */
    int http_status;             /* 0 when there was no answer */
    int error_code;              /* Cobo's error_code on DUPLICATE / REFUSED / a 5xx, else 0 */
    int rate_limited;            /* REFUSED by Cobo's rate limit, or the token's decimals could not be read
                                  * first (nothing sent): try again later, same request_id */
    char message[192];           /* why, for logs and a person (never a secret) */
} cobo_transfer_result_t;

/* "created", "duplicate", "refused", "unknown", "invalid". */
const char *cobo_transfer_outcome_name(cobo_transfer_outcome_t o);

/* POST /v2/transactions/transfer with t, signed. Checks the arguments first (request_id shape, the
 * address for the token's chain with schema/chainaddr.h, the amount a positive exact decimal with no
 * more decimals than the token has at Cobo: cobo_get_token_decimal, read once per client) and sends
 * nothing when one is bad (INVALID; REFUSED with rate_limited when the decimals cannot be read now). Classifies the answer as above; a 201 whose request_id is not ours
 * or that lacks transaction_id/status is UNKNOWN (it may still exist). */
cobo_transfer_outcome_t cobo_transfer(cobo_client_t *self, const cobo_transfer_t *t, cobo_transfer_result_t *out);

typedef enum {
    COBO_FIND_FOUND,      /* one transaction carries request_id: *out filled (id, status, hash, ...) */
    COBO_FIND_NOT_THERE,  /* Cobo answered and no transaction carries it */
    COBO_FIND_UNKNOWN,    /* cannot tell (no answer, 5xx, an entry that cannot be read, an answer that
                           * ignored the filter): ask again later; never a reason to send */
} cobo_find_t;

/* "found", "not_there", "unknown". */
const char *cobo_find_name(cobo_find_t f);

/* GET /v2/transactions?request_id=ID: the transfer kasa asked for with request_id. Read-only. An
 * entry whose request_id differs is not counted (not ours); two entries with ours is UNKNOWN.
 * After NOT_THERE, sending with the same request_id is safe: if the first request arrives late,
 * Cobo refuses one of the two as a DUPLICATE. */
cobo_find_t cobo_find_transfer(cobo_client_t *self, const char *request_id, cobo_tx_t *out, char *err,
                               size_t errlen);

#endif
