/* rates.h — live rates: the price of each symbol a live money rule names (config.h: a rate written
 * live/SYMBOL or live/SYMBOL*N), fetched from a price source on a schedule by a thread of its own and
 * kept with the time it was fetched. The locker only reads this cache: no deposit ever waits on the
 * price source, and no deposit is ever locked at a price older than KASA_RATE_MAX_AGE_S — it is HELD
 * ("no fresh rate") instead, and retried by the locker once the symbol is fresh again.
 *
 * The price source speaks Binance's spot market-data API (public, no key):
 *   GET {KASA_RATE_URL}/api/v3/ticker/price?symbol=TRXUSDT
 *   200 {"symbol":"TRXUSDT","price":"0.10230000"}
 *   400 {"code":-1121,"msg":"Invalid symbol."}; 429 / 418 with Retry-After (rate limit, ban)
 * The price is a decimal string, parsed exactly (schema/money.h), never through a double. An answer
 * for another symbol, a missing, empty, zero, negative, exponent or otherwise unreadable price, a body
 * that is not JSON, or any status but 200 is refused: the cache keeps what it had, which ages. Each
 * symbol is one request (weight 2 at Binance: 6 symbols every 10 s is 72 of its 6,000 a minute).
 *
 * Thread-safe: one mutex guards the cache; the fetching thread holds it only to store an answer. */
#ifndef KASA_ACTORS_RATES_H
#define KASA_ACTORS_RATES_H

#include <stddef.h>
#include <stdint.h>

#include "schema/config.h"
#include "schema/json.h"
#include "schema/money.h"

#define RATES_MAX_SYMBOLS CONFIG_MAX_TOKENS
#define RATES_TIMEOUT_MS 5000        /* one request, connection included: a slow source is a failed fetch */
#define RATES_KICK_MIN_MS 1000       /* on-demand refreshes (rates_refresh) at most this often */

typedef struct rates_t rates_t;

/* 1 when cfg has a live rule (a rates_t is needed), else 0. */
int rates_needed(const config_t *cfg);

/* Starts the fetching thread for every symbol of cfg's live rules (it fetches them at once, then
 * every KASA_RATE_REFRESH_S). NULL with a reason in err (no live rule, bad URL, no memory). cfg is
 * copied. */
rates_t *rates_new(const config_t *cfg, char *err, size_t errlen);
/* Stops the thread (a fetch in flight is aborted), frees, nulls *self_p. Safe on
 * NULL and twice. */
void rates_destroy(rates_t **self_p);

/* A live rate as the locker records it. */
typedef struct {
    money_atto_t rate;         /* account currency per whole token: the price times the rule's N, exact */
    int64_t fetched_ms;        /* when kasa received that price (Unix ms, UTC) */
    char source[64];           /* "TRXUSDT@api.binance.com", "TRXUSDT*100@api.binance.com" */
} rates_quote_t;

/* The rate of live rule for a deposit locked now: 0 with *out when the symbol's price is at most
 * KASA_RATE_MAX_AGE_S old; 1 when it is older or was never fetched, with why (its age, or the last
 * failure) — and then a refresh is asked for (rates_refresh). Never a stale or guessed price. */
int rates_quote(rates_t *self, const config_token_t *rule, rates_quote_t *out, char *why, size_t whylen);

/* 1 if symbol's price is fresh now (the locker's test before retrying a deposit held for it). */
int rates_fresh(rates_t *self, const char *symbol);

/* Counts successful fetches (of any symbol): a locker that sees it move looks for deposits to retry. */
uint64_t rates_generation(rates_t *self);

/* Asks the thread to fetch every symbol now (at most once per RATES_KICK_MIN_MS). Never blocks. */
void rates_refresh(rates_t *self);

/* Reads one answer of the price source for symbol: 0 with *price (> 0), or -1 with why (never the
 * body itself). Pure: the fetching thread's parser, for tests. */
int rates_parse(const char *body, size_t len, const char *symbol, money_atto_t *price, char *why, size_t whylen);

/* Metrics (a metrics_collector_fn): kasa_rate_age_seconds{symbol}, kasa_rate_fetches_total{result}. */
void rates_metrics(void *self, jbuf_t *out);

#endif
