/* balances.h — the wallet's balances at Cobo, per token and per address, for the admin panel.
 *
 * Figures come from Cobo's "List token balances by wallet" (every token of COBO_WALLET_ID) and, for
 * each token, "List address balances by token" (every address that holds it), and the token figures
 * of the wallet withdrawals are paid from (COBO_WITHDRAW_WALLET_ID, when another), read on a thread of
 * this module's own (never on an HTTP thread) with its own signed client. The last complete reading
 * is kept with the time it was taken ("as of"); a reading that fails keeps the last good one and
 * records the failure and its time, so a panel can say "Cobo did not answer at T; these figures are
 * from T0". Totals are exact sums of Cobo's decimal strings (schema/money.h: no floating point).
 *
 * A reading is started by balances_refresh(), or by balances_json() when the figures are older than
 * max_age_s; readings never overlap, and requests made while one runs are served by the next.
 * Someone who wants the answer of a fresh reading asks balances_when_fresh() with a function to call
 * when that reading ends (an HTTP handler answers later from it): nothing waits on a caller's thread.
 * Thread-safe. */
#ifndef KASA_ACTORS_BALANCES_H
#define KASA_ACTORS_BALANCES_H

#include <stddef.h>
#include <stdint.h>

typedef struct balances_t balances_t;

/* The login an address belongs to (0: none); called while a JSON answer is written. */
typedef uint64_t (*balances_login_fn)(void *arg, const char *address);

typedef struct {
    const char *cobo_url;            /* COBO_API_URL */
    const char *api_key_hex;         /* COBO_API_KEY */
    const char *api_secret_hex;      /* COBO_API_SECRET */
    const char *response_pubkey_hex; /* Cobo's response-signing key; NULL/"" skips (tests only) */
    const char *wallet_id;           /* COBO_WALLET_ID */
    const char *withdraw_wallet_id;  /* COBO_WITHDRAW_WALLET_ID; NULL or wallet_id: the same wallet */
    long timeout_ms;                 /* per Cobo request, default 10000 */
    int page_limit;                  /* entries per Cobo page, 1..50, default 50 */
    int max_age_s;                   /* older figures are read again when asked for, default 60 */
    balances_login_fn login_of;      /* optional: each address's login in the answer */
    void *login_arg;
} balances_opts_t;

/* Starts the module's thread (no reading yet). NULL with a reason in err (bad Cobo settings). */
balances_t *balances_new(const balances_opts_t *opts, char *err, size_t errlen);
/* Stops the thread (a reading in progress ends within its request timeout) and calls every waiting
 * balances_when_fresh() function with what there is. Nulls *self_p; safe twice. */
void balances_destroy(balances_t **self_p);

/* Asks for a new reading; returns at once. */
void balances_refresh(balances_t *self);

/* The figures now, as JSON (malloc'd; NULL without memory):
 *   {"wallet_id":..,"as_of_ms":T0|null,"reading":bool,"error":null|"why","error_ms":T|null,
 *    "tokens":[{"token_id":..,"balance":{total,available,pending,locked,frozen},
 *               "addresses":[{"address":..,"login":N|null,"balance":{...}}],
 *               "address_sum":{total,available,pending,locked,frozen}}],
 *    "withdraw_wallet":{"wallet_id":..,"error":null|"why","tokens":[{"token_id":..,"balance":{...}}]}}
 * balance is Cobo's figure for the whole wallet; address_sum the exact sum of the addresses' figures;
 * withdraw_wallet the wallet transfers are paid from (the same figures when it is COBO_WALLET_ID; when
 * another and Cobo refused its listing, no tokens and error says why).
 * Starts a reading when the figures are older than max_age_s (or there are none). */
char *balances_json(balances_t *self);

/* Calls fn(arg, json) once a reading that starts after this call has ended (one is started now if
 * none runs), with balances_json()'s text (fn takes it; NULL without memory), from this module's
 * thread, or from balances_destroy(). 0, or -1 when BALANCES_MAX_WAITING already wait (fn is then
 * never called). */
#define BALANCES_MAX_WAITING 64
typedef void (*balances_fresh_fn)(void *arg, char *json);
int balances_when_fresh(balances_t *self, balances_fresh_fn fn, void *arg);

#endif
