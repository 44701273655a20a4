/* catchup.h — missed-webhook catch-up: list the wallet's deposits at Cobo and feed each one into
 * the same ingress path a webhook takes (pipeline_ingest), so a deposit whose webhooks were all
 * lost is still credited.
 *
 * A pass lists GET /v2/transactions?types=Deposit&wallet_ids=COBO_WALLET_ID&direction=ASC, 50 a
 * page, paged by Cobo's cursor, for deposits created since `since` minus an overlap
 * (CATCHUP_OVERLAP_MS: clock skew between kasa and Cobo, and a listing that lags the event), and
 * hands every transaction to ingest: a deposit kasa already knows in that state changes nothing
 * (200), one that is new or further along is journaled and moves on as usual (201). Cobo filters
 * by creation time only; a deposit listed while still confirming is journaled PENDING and from
 * then on known, so later passes (and the follow-up of known PENDING deposits) see it through.
 *
 * Scheduled passes run every KASA_CATCHUP_INTERVAL seconds on their own thread; the first covers
 * KASA_CATCHUP_LOOKBACK seconds before the start (webhooks lost while kasa was down), each later one
 * starts where the last complete pass started. A pass that could not read every page, or whose
 * ingest failed (journal down: 503), is incomplete: the next one covers its window again.
 * Cobo's rate limit (HTTP 429, error 2010/2026) and transient failures (transport, 5xx) are met by
 * waiting (Retry-After when Cobo sends it, else 1 s doubling to 30 s) and retrying the same page,
 * at most CATCHUP_PAGE_RETRIES times; pages are at least CATCHUP_PAGE_GAP_MS apart.
 * Read-only towards Cobo; everything it changes goes through ingest. Thread-safe: passes are
 * serialised (a manual pass waits for a scheduled one to end). */
#ifndef KASA_ACTORS_CATCHUP_H
#define KASA_ACTORS_CATCHUP_H

#include <stddef.h>
#include <stdint.h>

#include "schema/cobo_tx.h"
#include "schema/config.h"

#define CATCHUP_OVERLAP_MS (10 * 60 * 1000)
#define CATCHUP_PAGE_RETRIES 8
#define CATCHUP_PAGE_GAP_MS 100
#define CATCHUP_MAX_PAGES 20000        /* a bound on one pass: 1,000,000 deposits */

/* How a deposit is taken in: pipeline_ingest's contract (201 moved, 200 known, 503 not durable). */
typedef int (catchup_ingest_fn)(void *arg, const cobo_tx_t *tx, char *err, size_t errlen);

typedef struct {
    int64_t since_ms;        /* created since (overlap already taken off), Unix ms */
    int64_t started_ms;      /* when the pass began (the next scheduled pass starts here) */
    int64_t took_ms;
    int pages;               /* pages read */
    int listed;              /* transactions listed */
    int moved;               /* ingest answered 201: new, or further along than kasa knew */
    int known;               /* ingest answered 200 */
    int failed;              /* ingest answered anything else */
    int unreadable;          /* entries that could not be parsed (logged, skipped) */
    int rate_limited;        /* 429 / rate-limit answers met (each waited out) */
    int retries;             /* page requests retried */
    int complete;            /* 1: every page read and every deposit taken in */
} catchup_report_t;

/* Totals since start, for metrics. */
typedef struct {
    uint64_t runs, runs_failed, moved, listed, rate_limited;
    int64_t last_complete_ms;   /* Unix ms of the last complete pass's start, 0 if none */
} catchup_stats_t;

typedef struct catchup_t catchup_t;

/* A catch-up over Cobo as cfg says (COBO_API_URL, keys, COBO_WALLET_ID, KASA_CATCHUP_INTERVAL,
 * KASA_CATCHUP_LOOKBACK), feeding ingest(arg, ...). Starts the scheduled passes when
 * cfg->catchup_interval_s > 0 (the first one at once). NULL with a reason in err. */
catchup_t *catchup_new(const config_t *cfg, catchup_ingest_fn *ingest, void *arg, char *err, size_t errlen);
/* Stops the schedule (a pass in progress ends at its next page or wait), frees. Safe on NULL, twice. */
void catchup_destroy(catchup_t **self_p);

/* One pass now over deposits created since since_ms (Unix ms; the overlap is taken off too).
 * Fills *out. Returns 0 when complete, -1 with a reason in err otherwise (*out still says what
 * was done). Does not move the schedule's window. */
int catchup_run(catchup_t *self, int64_t since_ms, catchup_report_t *out, char *err, size_t errlen);

void catchup_stats(catchup_t *self, catchup_stats_t *out);

/* Waits ms; returns non-zero to give up (the listing then ends with "stopped"). */
typedef int (catchup_wait_fn)(void *arg, int64_t ms);

/* Every page of query (its `after` is ignored: from the first page) into fn, as a pass reads
 * them: Cobo's rate limit and transient failures waited out with wait (NULL: a plain sleep) and
 * retried at most retries times a page (a pass: CATCHUP_PAGE_RETRIES), pages CATCHUP_PAGE_GAP_MS apart. Adds to rep's pages, rate_limited and retries.
 * 0 once the last page was read, or -1 with a reason (fn may already have been called). The one
 * pager behind catch-up and `kasa reconcile`. */
#include "actors/cobo.h"
int catchup_list_all(cobo_client_t *cobo, const cobo_tx_query_t *query, cobo_tx_fn fn, void *arg, int retries,
                     catchup_wait_fn *wait, void *wait_arg, catchup_report_t *rep, char *err, size_t errlen);

/* The report as one line of key=value text ("pages=2 listed=61 moved=3 ..."). */
void catchup_report_text(const catchup_report_t *r, char *buf, size_t len);

#endif
