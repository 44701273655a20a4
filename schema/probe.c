/* probe.c — see probe.h. */
#include "schema/probe.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const int64_t probe_latency_us_bounds[] = { 100,    250,    500,     1000,    2500,    5000,     10000,   25000,
                                            50000,  100000, 250000,  500000,  1000000, 2500000,  10000000, 30000000 };
const int probe_latency_us_count = (int) (sizeof probe_latency_us_bounds / sizeof probe_latency_us_bounds[0]);
const int64_t probe_size_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096 };
const int probe_size_count = (int) (sizeof probe_size_bounds / sizeof probe_size_bounds[0]);

void probe_hist_init(probe_hist_t *h, const int64_t *bounds, int n)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n > PROBE_MAX_BUCKETS ? PROBE_MAX_BUCKETS : n;
}

void probe_hist_observe(probe_hist_t *h, int64_t v)
{
    int i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void probe_decimal(jbuf_t *out, int64_t v, int digits)
{
    if (digits <= 0 || digits > 18) {
        jbuf_printf(out, "%" PRId64, v);
        return;
    }
    uint64_t mag = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
    uint64_t div = 1;
    for (int i = 0; i < digits; i++)
        div *= 10;
    uint64_t whole = mag / div, frac = mag % div;
    if (frac == 0) {
        jbuf_printf(out, "%s%" PRIu64, v < 0 ? "-" : "", whole);
        return;
    }
    char f[24];
    for (int i = digits - 1; i >= 0; i--, frac /= 10)   /* exactly `digits` digits, leading zeros kept */
        f[i] = (char) ('0' + frac % 10);
    f[digits] = '\0';
    size_t n = (size_t) digits;
    while (n > 0 && f[n - 1] == '0')
        f[--n] = '\0';
    jbuf_printf(out, "%s%" PRIu64 ".%s", v < 0 ? "-" : "", whole, f);
}

void probe_hist_write(const probe_hist_t *h, jbuf_t *out, const char *name, const char *labels, int scale_digits)
{
    const char *sep = labels && *labels ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i <= h->n; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        jbuf_printf(out, "%s_bucket{%s%sle=\"", name, labels ? labels : "", sep);
        if (i < h->n)
            probe_decimal(out, h->bounds[i], scale_digits);
        else
            jbuf_puts(out, "+Inf");
        jbuf_printf(out, "\"} %" PRIu64 "\n", cum);
    }
    jbuf_printf(out, "%s_sum%s%s%s ", name, *sep ? "{" : "", *sep ? labels : "", *sep ? "}" : "");
    probe_decimal(out, atomic_load_explicit(&h->sum, memory_order_relaxed), scale_digits);
    /* _count equals the +Inf bucket: both read from the buckets, so a scrape never sees them differ */
    jbuf_printf(out, "\n%s_count%s%s%s %" PRIu64 "\n", name, *sep ? "{" : "", *sep ? labels : "", *sep ? "}" : "", cum);
}

/* ---- services --------------------------------------------------------------------------------- */

typedef struct {
    _Atomic uint64_t calls, errors;
    _Atomic int64_t last_ok_ms, last_error_ms;
    probe_hist_t latency;
} s_service_t;

static s_service_t s_services[PROBE_SERVICE_COUNT];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    for (int i = 0; i < PROBE_SERVICE_COUNT; i++)
        probe_hist_init(&s_services[i].latency, probe_latency_us_bounds, probe_latency_us_count);
}

const char *probe_service_name(probe_service_t s)
{
    switch (s) {
    case PROBE_COBO: return "cobo";
    case PROBE_MT5: return "mt5";
    case PROBE_TELEGRAM: return "telegram";
    case PROBE_SERVICE_COUNT: break;
    }
    return "unknown";
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t probe_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void probe_call(probe_service_t s, int64_t latency_us, int ok)
{
    if ((unsigned) s >= PROBE_SERVICE_COUNT)
        return;
    pthread_once(&s_once, s_init);
    s_service_t *v = &s_services[s];
    atomic_fetch_add_explicit(&v->calls, 1, memory_order_relaxed);
    if (!ok)
        atomic_fetch_add_explicit(&v->errors, 1, memory_order_relaxed);
    atomic_store_explicit(ok ? &v->last_ok_ms : &v->last_error_ms, s_wall_ms(), memory_order_relaxed);
    probe_hist_observe(&v->latency, latency_us < 0 ? 0 : latency_us);
}

void probe_service_stats(probe_service_t s, probe_service_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if ((unsigned) s >= PROBE_SERVICE_COUNT)
        return;
    pthread_once(&s_once, s_init);
    s_service_t *v = &s_services[s];
    out->calls = atomic_load_explicit(&v->calls, memory_order_relaxed);
    out->errors = atomic_load_explicit(&v->errors, memory_order_relaxed);
    out->last_ok_ms = atomic_load_explicit(&v->last_ok_ms, memory_order_relaxed);
    out->last_error_ms = atomic_load_explicit(&v->last_error_ms, memory_order_relaxed);
}

const probe_hist_t *probe_service_latency(probe_service_t s)
{
    pthread_once(&s_once, s_init);
    return &s_services[(unsigned) s < PROBE_SERVICE_COUNT ? s : 0].latency;
}

int probe_service_reachable(probe_service_t s)
{
    probe_service_stats_t st;
    probe_service_stats(s, &st);
    return st.last_error_ms == 0 || st.last_ok_ms >= st.last_error_ms;
}
