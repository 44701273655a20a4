/* probe.h — what kasa measures about itself, for GET /metrics and GET /readyz (web/metrics.h):
 * histograms with fixed buckets, and one call record per external service (Cobo, MT5, Telegram):
 * calls, errors, a latency histogram and the time of the last success and last failure.
 *
 * Process-wide on purpose, like the log: a client records its calls wherever it is used (a locker's
 * Cobo client, the catch-up's, the wallets'), and the one metrics listener reads them all. Every
 * update is a few relaxed atomic adds: no lock, never blocks, safe from any thread; a reader sees
 * each counter exactly, and the set of them as of a moment (good enough for monitoring).
 * Integers only: latencies in microseconds, exposed in seconds by exact decimal formatting. */
#ifndef KASA_SCHEMA_PROBE_H
#define KASA_SCHEMA_PROBE_H

#include <stdatomic.h>
#include <stdint.h>

#include "schema/json.h"

#define PROBE_MAX_BUCKETS 16

/* A histogram: bounds[0..n) ascending (inclusive upper bounds), counts per bucket, +Inf implied. */
typedef struct {
    const int64_t *bounds;
    int n;
    _Atomic uint64_t bucket[PROBE_MAX_BUCKETS + 1];   /* bucket[n] is +Inf */
    _Atomic uint64_t count;
    _Atomic int64_t sum;
} probe_hist_t;

/* Latency buckets in µs (100 µs .. 30 s), and record-count buckets (1 .. 4096). */
extern const int64_t probe_latency_us_bounds[];
extern const int probe_latency_us_count;
extern const int64_t probe_size_bounds[];
extern const int probe_size_count;

/* Initialises h over bounds (n <= PROBE_MAX_BUCKETS). */
void probe_hist_init(probe_hist_t *h, const int64_t *bounds, int n);
void probe_hist_observe(probe_hist_t *h, int64_t v);

/* Writes h in the Prometheus text format as NAME_bucket{LABELS,le=".."}, NAME_sum, NAME_count.
 * labels: "" or `service="cobo"` (no braces). scale_digits: values are divided by 10^scale_digits
 * when printed (6: µs shown as seconds). The # HELP/# TYPE lines are the caller's. */
void probe_hist_write(const probe_hist_t *h, jbuf_t *out, const char *name, const char *labels, int scale_digits);

/* Prints v / 10^digits as an exact decimal ("0.00025", "3", "-1.5"). */
void probe_decimal(jbuf_t *out, int64_t v, int digits);

/* ---- external services ----------------------------------------------------------------------- */

typedef enum { PROBE_COBO, PROBE_MT5, PROBE_TELEGRAM, PROBE_SERVICE_COUNT } probe_service_t;

const char *probe_service_name(probe_service_t s);   /* "cobo", "mt5", "telegram" */

/* Records one call to s that took latency_us. ok: 1 it was answered as the protocol says (even a
 * refusal such as a 4xx with an error code is an answer: the service is reachable); 0 it failed
 * (transport error, timeout, 5xx, bad signature: the service is not usable right now). */
void probe_call(probe_service_t s, int64_t latency_us, int ok);

typedef struct {
    uint64_t calls, errors;
    int64_t last_ok_ms, last_error_ms;   /* Unix ms, 0 if never */
} probe_service_stats_t;

void probe_service_stats(probe_service_t s, probe_service_stats_t *out);
/* The service's latency histogram (read-only use). */
const probe_hist_t *probe_service_latency(probe_service_t s);

/* 1 unless the last call to s failed (a service never called counts as reachable). */
int probe_service_reachable(probe_service_t s);

/* Monotonic microseconds, for timing a call. */
int64_t probe_now_us(void);

#endif
