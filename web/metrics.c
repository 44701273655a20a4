/* metrics.c — see metrics.h. Counters fed from the commit path are atomics; the sources attached
 * later are read under `lock`, which a scrape holds while it writes (a scrape never waits on the
 * pipeline for long: counting deposits per state takes the registry's lock once). */
#include "web/metrics.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/rates.h"
#include "actors/stage.h"
#include "schema/deposit.h"
#include "schema/probe.h"
#include "schema/record.h"
#include "web/http.h"

#ifndef KASA_VERSION
#define KASA_VERSION "dev"
#endif

#define S_PENDING_CREDITS 4096   /* attempts awaiting their CREDITED, for the credit latency */

typedef struct {
    char tx_id[80];
    int64_t attempt_ms;
} s_attempt_t;

struct metrics_t {
    http_server_t *http;
    pthread_mutex_t lock;             /* guards the sources and hooks below */
    journal_t *journal;
    pipeline_t *pipeline;
    webhook_t *webhook;
    catchup_t *catchup;
    accounts_t *accounts;
    int replayed;
    struct {
        metrics_collector_fn *fn;
        void *arg;
    } collectors[METRICS_MAX_HOOKS];
    int ncollectors;
    struct {
        char name[32];
        metrics_check_fn *fn;
        void *arg;
    } checks[METRICS_MAX_HOOKS];
    int nchecks;
    int64_t start_ms;

    /* from the commit path (serial: only atomics are shared with scrapes) */
    _Atomic uint64_t transitions[DEPOSIT_STATE_COUNT];
    _Atomic uint64_t attempts_first, attempts_retry, notices_failed, admin_actions;
    probe_hist_t credit_us;
    s_attempt_t pending[S_PENDING_CREDITS];   /* touched by the commit path only */
};

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t s_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 16777619u;
    return h;
}

/* ---- the commit path ------------------------------------------------------------------------- */

void metrics_on_commit(metrics_t *self, const void *payload, size_t len)
{
    record_t r;
    char why[64];
    if (!self || record_decode(payload, len, &r, why, sizeof why) != 0)
        return;
    metrics_on_record(self, &r);
}

void metrics_on_record(metrics_t *self, const record_t *r)
{
    if (!self || !r)
        return;
    s_attempt_t *slot = &self->pending[s_hash(r->tx_id) % S_PENDING_CREDITS];
    switch (r->kind) {
    case RECORD_DEPOSIT:
        if (r->from != r->to && (unsigned) r->to < DEPOSIT_STATE_COUNT)
            atomic_fetch_add_explicit(&self->transitions[r->to], 1, memory_order_relaxed);
        if (r->to == DEPOSIT_CREDITED && r->from != r->to && strcmp(slot->tx_id, r->tx_id) == 0) {
            /* from the first attempt journaled to CREDITED journaled: MT5's answer, or the search
             * that found the deal, and every retry in between */
            probe_hist_observe(&self->credit_us, (r->time_ms - slot->attempt_ms) * 1000);
            slot->tx_id[0] = '\0';
        }
        break;
    case RECORD_CREDIT_ATTEMPT:
        if (r->attempt <= 1) {
            atomic_fetch_add_explicit(&self->attempts_first, 1, memory_order_relaxed);
            snprintf(slot->tx_id, sizeof slot->tx_id, "%s", r->tx_id);   /* a collision overwrites: one sample lost */
            slot->attempt_ms = r->time_ms;
        } else {
            atomic_fetch_add_explicit(&self->attempts_retry, 1, memory_order_relaxed);
        }
        break;
    case RECORD_NOTICE_FAILED:
        atomic_fetch_add_explicit(&self->notices_failed, 1, memory_order_relaxed);
        break;
    case RECORD_ADMIN_ACTION:
        atomic_fetch_add_explicit(&self->admin_actions, 1, memory_order_relaxed);
        break;
    default:
        break;
    }
}

/* ---- exposition ------------------------------------------------------------------------------ */

static void s_family(jbuf_t *out, const char *name, const char *type, const char *help)
{
    jbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct {
    uint64_t count[DEPOSIT_STATE_COUNT];
    int64_t held_oldest_ms;
} s_states_t;

static void s_count_state(void *arg, const deposit_view_t *d)
{
    s_states_t *s = arg;
    if ((unsigned) d->state < DEPOSIT_STATE_COUNT)
        s->count[d->state]++;
    if (d->state == DEPOSIT_HELD && (s->held_oldest_ms == 0 || d->updated_ms < s->held_oldest_ms))
        s->held_oldest_ms = d->updated_ms;
}

static void s_write_deposits(metrics_t *self, jbuf_t *out)
{
    s_states_t st;
    memset(&st, 0, sizeof st);
    pipeline_deposits(self->pipeline, 0, INT_MAX, s_count_state, &st);
    s_family(out, "kasa_deposits", "gauge", "Deposits kasa holds, by state.");
    for (int s = 0; s < DEPOSIT_STATE_COUNT; s++)
        if (s != DEPOSIT_NONE)
            jbuf_printf(out, "kasa_deposits{state=\"%s\"} %" PRIu64 "\n", deposit_state_name((deposit_state_t) s),
                        st.count[s]);
    s_family(out, "kasa_held_oldest_seconds", "gauge",
             "How long the oldest HELD deposit has waited for a person (0: none held).");
    int64_t age_ms = st.held_oldest_ms ? s_wall_ms() - st.held_oldest_ms : 0;
    jbuf_puts(out, "kasa_held_oldest_seconds ");
    probe_decimal(out, age_ms < 0 ? 0 : age_ms, 3);
    jbuf_puts(out, "\n");
}

/* The stages' work lists: what each holds now (queued, due later, backing off or in hand) and how
 * much it can hold before it stops reading its socket (back-pressure on the stage before it). */
static void s_write_queues(metrics_t *self, jbuf_t *out)
{
    static const struct {
        const char *name;
        stage_kind_t kind;
    } stages[] = { { "locker", STAGE_LOCKER }, { "crediter", STAGE_CREDITER }, { "notifier", STAGE_NOTIFIER },
                   { "withdrawer", STAGE_WITHDRAWER } };
    int depth[STAGE_KINDS], actors[STAGE_KINDS], n = 0;
    const char *name[STAGE_KINDS];
    if (self->pipeline)
        for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++, n++) {
            name[n] = stages[i].name;
            depth[n] = pipeline_stage_depth(self->pipeline, stages[i].kind, &actors[n]);
        }
    if (self->accounts) {
        name[n] = "accounts";
        depth[n] = accounts_queue_depth(self->accounts, &actors[n]);
        n++;
    }
    if (n == 0)
        return;
    s_family(out, "kasa_stage_queue_depth", "gauge",
             "Items in each stage's work lists now: queued, waiting to retry, or being handled.");
    for (int i = 0; i < n; i++)
        jbuf_printf(out, "kasa_stage_queue_depth{stage=\"%s\"} %d\n", name[i], depth[i]);
    s_family(out, "kasa_stage_queue_capacity", "gauge",
             "Items each stage's work lists hold before it stops reading (its actors times their list size).");
    for (int i = 0; i < n; i++)
        jbuf_printf(out, "kasa_stage_queue_capacity{stage=\"%s\"} %d\n", name[i], actors[i] * STAGE_QUEUE);
}

static void s_write_commits(metrics_t *self, jbuf_t *out)
{
    s_family(out, "kasa_transitions_total", "counter", "Deposit transitions journaled since start, by the state entered.");
    for (int s = 0; s < DEPOSIT_STATE_COUNT; s++)
        if (s != DEPOSIT_NONE)
            jbuf_printf(out, "kasa_transitions_total{to=\"%s\"} %" PRIu64 "\n", deposit_state_name((deposit_state_t) s),
                        atomic_load_explicit(&self->transitions[s], memory_order_relaxed));
    s_family(out, "kasa_credits_total", "counter", "Deposits credited to MT5 (CREDITED journaled) since start.");
    jbuf_printf(out, "kasa_credits_total %" PRIu64 "\n",
                atomic_load_explicit(&self->transitions[DEPOSIT_CREDITED], memory_order_relaxed));
    s_family(out, "kasa_credit_seconds", "histogram",
             "From a deposit's first credit attempt journaled to its CREDITED journaled (the MT5 balance call and any search).");
    probe_hist_write(&self->credit_us, out, "kasa_credit_seconds", "", 6);
    s_family(out, "kasa_credit_attempts_total", "counter",
             "Credit attempts journaled; kind=retry follows an ambiguous or failed MT5 call.");
    jbuf_printf(out, "kasa_credit_attempts_total{kind=\"first\"} %" PRIu64 "\n",
                atomic_load_explicit(&self->attempts_first, memory_order_relaxed));
    jbuf_printf(out, "kasa_credit_attempts_total{kind=\"retry\"} %" PRIu64 "\n",
                atomic_load_explicit(&self->attempts_retry, memory_order_relaxed));
    s_family(out, "kasa_notices_failed_total", "counter", "Telegram notices given up after their retries.");
    jbuf_printf(out, "kasa_notices_failed_total %" PRIu64 "\n",
                atomic_load_explicit(&self->notices_failed, memory_order_relaxed));
    s_family(out, "kasa_admin_actions_total", "counter", "Decisions of a person journaled (retry, assign, reject).");
    jbuf_printf(out, "kasa_admin_actions_total %" PRIu64 "\n",
                atomic_load_explicit(&self->admin_actions, memory_order_relaxed));
}

static void s_write_journal(metrics_t *self, jbuf_t *out)
{
    s_family(out, "kasa_journal_fsync_seconds", "histogram", "Time of each group commit's fdatasync.");
    probe_hist_write(journal_fsync_us(self->journal), out, "kasa_journal_fsync_seconds", "", 6);
    s_family(out, "kasa_journal_batch_records", "histogram", "Records made durable by one group commit.");
    probe_hist_write(journal_batch_records(self->journal), out, "kasa_journal_batch_records", "", 0);
    s_family(out, "kasa_journal_durable_lsn", "gauge", "The highest durable log sequence number.");
    jbuf_printf(out, "kasa_journal_durable_lsn %" PRIu64 "\n", journal_durable_lsn(self->journal));
    s_family(out, "kasa_journal_failed", "gauge", "1 once the journal failed (nothing more is accepted).");
    jbuf_printf(out, "kasa_journal_failed %d\n", journal_failed(self->journal));
}

static void s_write_services(jbuf_t *out)
{
    probe_service_stats_t st[PROBE_SERVICE_COUNT];
    for (int s = 0; s < PROBE_SERVICE_COUNT; s++)
        probe_service_stats((probe_service_t) s, &st[s]);
    s_family(out, "kasa_external_calls_total", "counter", "HTTP calls to Cobo, MT5 and Telegram.");
    for (int s = 0; s < PROBE_SERVICE_COUNT; s++)
        jbuf_printf(out, "kasa_external_calls_total{service=\"%s\"} %" PRIu64 "\n",
                    probe_service_name((probe_service_t) s), st[s].calls);
    s_family(out, "kasa_external_errors_total", "counter",
             "Calls that got no answer (transport error, timeout) or a 5xx.");
    for (int s = 0; s < PROBE_SERVICE_COUNT; s++)
        jbuf_printf(out, "kasa_external_errors_total{service=\"%s\"} %" PRIu64 "\n",
                    probe_service_name((probe_service_t) s), st[s].errors);
    s_family(out, "kasa_external_call_seconds", "histogram", "Latency of calls to Cobo, MT5 and Telegram.");
    for (int s = 0; s < PROBE_SERVICE_COUNT; s++) {
        char labels[40];
        snprintf(labels, sizeof labels, "service=\"%s\"", probe_service_name((probe_service_t) s));
        probe_hist_write(probe_service_latency((probe_service_t) s), out, "kasa_external_call_seconds", labels, 6);
    }
    s_family(out, "kasa_external_last_ok_timestamp_seconds", "gauge", "When a call last got an answer (0: never).");
    for (int s = 0; s < PROBE_SERVICE_COUNT; s++) {
        jbuf_printf(out, "kasa_external_last_ok_timestamp_seconds{service=\"%s\"} ",
                    probe_service_name((probe_service_t) s));
        probe_decimal(out, st[s].last_ok_ms, 3);
        jbuf_puts(out, "\n");
    }
}

static void s_write_catchup(metrics_t *self, jbuf_t *out)
{
    catchup_stats_t c;
    catchup_stats(self->catchup, &c);
    s_family(out, "kasa_catchup_runs_total", "counter", "Missed-webhook catch-up passes, by result.");
    jbuf_printf(out, "kasa_catchup_runs_total{result=\"complete\"} %" PRIu64 "\n", c.runs - c.runs_failed);
    jbuf_printf(out, "kasa_catchup_runs_total{result=\"incomplete\"} %" PRIu64 "\n", c.runs_failed);
    s_family(out, "kasa_catchup_found_total", "counter",
             "Deposits catch-up took in that were new or further along (their webhook had not come).");
    jbuf_printf(out, "kasa_catchup_found_total %" PRIu64 "\n", c.moved);
    s_family(out, "kasa_catchup_listed_total", "counter", "Deposits catch-up listed at Cobo.");
    jbuf_printf(out, "kasa_catchup_listed_total %" PRIu64 "\n", c.listed);
    s_family(out, "kasa_catchup_rate_limited_total", "counter", "Cobo rate-limit answers catch-up waited out.");
    jbuf_printf(out, "kasa_catchup_rate_limited_total %" PRIu64 "\n", c.rate_limited);
    s_family(out, "kasa_catchup_last_complete_timestamp_seconds", "gauge", "When the last complete pass began (0: none yet).");
    jbuf_puts(out, "kasa_catchup_last_complete_timestamp_seconds ");
    probe_decimal(out, c.last_complete_ms, 3);
    jbuf_puts(out, "\n");
}

void metrics_write(metrics_t *self, jbuf_t *out)
{
    s_family(out, "kasa_build_info", "gauge", "kasa's version (the value is always 1).");
    jbuf_printf(out, "kasa_build_info{version=\"%s\"} 1\n", KASA_VERSION);
    s_family(out, "kasa_start_time_seconds", "gauge", "When this process started (Unix seconds).");
    jbuf_puts(out, "kasa_start_time_seconds ");
    probe_decimal(out, self->start_ms, 3);
    jbuf_puts(out, "\n");
    jbuf_t ready;
    jbuf_init(&ready);
    int is_ready = metrics_ready(self, &ready);
    jbuf_free(&ready);
    s_family(out, "kasa_ready", "gauge", "1 when /readyz answers 200.");
    jbuf_printf(out, "kasa_ready %d\n", is_ready);
    pthread_mutex_lock(&self->lock);
    if (self->webhook) {
        webhook_stats_t w;
        webhook_stats(self->webhook, &w);
        s_family(out, "kasa_webhooks_total", "counter", "Cobo webhooks received, by outcome.");
        jbuf_printf(out, "kasa_webhooks_total{outcome=\"accepted\"} %lu\n", w.accepted);
        jbuf_printf(out, "kasa_webhooks_total{outcome=\"repeated\"} %lu\n", w.repeated);
        jbuf_printf(out, "kasa_webhooks_total{outcome=\"rejected\"} %lu\n", w.rejected);
        jbuf_printf(out, "kasa_webhooks_total{outcome=\"ignored\"} %lu\n", w.ignored);
        jbuf_printf(out, "kasa_webhooks_total{outcome=\"failed\"} %lu\n", w.failed);
    }
    if (self->pipeline)
        s_write_deposits(self, out);
    s_write_queues(self, out);
    if (self->pipeline && pipeline_rates(self->pipeline))
        rates_metrics(pipeline_rates(self->pipeline), out);
    s_write_commits(self, out);
    if (self->journal)
        s_write_journal(self, out);
    s_write_services(out);
    if (self->catchup)
        s_write_catchup(self, out);
    for (int i = 0; i < self->ncollectors; i++)
        self->collectors[i].fn(self->collectors[i].arg, out);
    pthread_mutex_unlock(&self->lock);
}

/* ---- readiness ------------------------------------------------------------------------------- */

static void s_check(jbuf_t *out, int *first, const char *name, const char *verdict)
{
    jbuf_puts(out, *first ? "" : ",");
    *first = 0;
    jbuf_str(out, name);
    jbuf_puts(out, ":");
    jbuf_str(out, verdict);
}

static int s_service_check(probe_service_t s, char *why, size_t len)
{
    if (probe_service_reachable(s)) {
        snprintf(why, len, "ok");
        return 1;
    }
    probe_service_stats_t st;
    probe_service_stats(s, &st);
    snprintf(why, len, "unreachable: the last call failed %lld s ago",
             (long long) ((s_wall_ms() - st.last_error_ms) / 1000));
    return 0;
}

int metrics_ready(metrics_t *self, jbuf_t *out)
{
    int ready = 1, first = 1;
    char why[160];
    jbuf_puts(out, "{\"checks\":{");
    pthread_mutex_lock(&self->lock);
    int journal_ok = self->journal && !journal_failed(self->journal);
    s_check(out, &first, "journal", !self->journal ? "not open yet" : journal_ok ? "ok" : "failed: not writable");
    ready &= journal_ok;
    s_check(out, &first, "replay", self->replayed ? "ok" : "in progress");
    ready &= self->replayed;
    ready &= s_service_check(PROBE_MT5, why, sizeof why);
    s_check(out, &first, "mt5", why);
    ready &= s_service_check(PROBE_COBO, why, sizeof why);
    s_check(out, &first, "cobo", why);
    for (int i = 0; i < self->nchecks; i++) {
        int ok = self->checks[i].fn(self->checks[i].arg, why, sizeof why);
        s_check(out, &first, self->checks[i].name, ok ? "ok" : why);
        ready &= ok;
    }
    pthread_mutex_unlock(&self->lock);
    jbuf_printf(out, "},\"ready\":%s}", ready ? "true" : "false");
    return ready;
}

/* ---- routes ---------------------------------------------------------------------------------- */

static void s_metrics_route(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) req;
    jbuf_t b;
    jbuf_init(&b);
    metrics_write(arg, &b);
    http_reply(res, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
    jbuf_free(&b);
}

static void s_healthz_route(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) req;
    metrics_t *self = arg;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"status\":\"ok\",\"version\":\"%s\",\"uptime_s\":%lld}", KASA_VERSION,
                (long long) ((s_wall_ms() - self->start_ms) / 1000));
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_readyz_route(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) req;
    jbuf_t b;
    jbuf_init(&b);
    int ready = metrics_ready(arg, &b);
    http_reply_json(res, ready ? 200 : 503, jbuf_take(&b));
}

metrics_t *metrics_new(const char *listen, char *err, size_t errlen)
{
    metrics_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->start_ms = s_wall_ms();
    probe_hist_init(&self->credit_us, probe_latency_us_bounds, probe_latency_us_count);
    self->http = http_server_new(listen, 4096, 2, err, errlen);
    if (!self->http) {
        metrics_destroy(&self);
        return NULL;
    }
    http_route(self->http, "GET", "/metrics", s_metrics_route, self);
    http_route(self->http, "GET", "/healthz", s_healthz_route, self);
    http_route(self->http, "GET", "/readyz", s_readyz_route, self);
    if (http_server_start(self->http, err, errlen) != 0) {
        metrics_destroy(&self);
        return NULL;
    }
    return self;
}

void metrics_destroy(metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    metrics_t *self = *self_p;
    *self_p = NULL;
    http_server_destroy(&self->http);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

int metrics_port(const metrics_t *self)
{
    return http_server_port(self->http);
}

#define S_SETTER(field, type)                                        \
    void metrics_set_##field(metrics_t *self, type *v)              \
    {                                                                \
        if (!self)                                                   \
            return;                                                  \
        pthread_mutex_lock(&self->lock);                             \
        self->field = v;                                             \
        pthread_mutex_unlock(&self->lock);                           \
    }
S_SETTER(journal, journal_t)
S_SETTER(pipeline, pipeline_t)
S_SETTER(webhook, webhook_t)
S_SETTER(catchup, catchup_t)
S_SETTER(accounts, accounts_t)

void metrics_set_replayed(metrics_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->replayed = 1;
    pthread_mutex_unlock(&self->lock);
}

int metrics_add_collector(metrics_t *self, metrics_collector_fn *fn, void *arg)
{
    pthread_mutex_lock(&self->lock);
    int ok = self->ncollectors < METRICS_MAX_HOOKS;
    if (ok) {
        self->collectors[self->ncollectors].fn = fn;
        self->collectors[self->ncollectors++].arg = arg;
    }
    pthread_mutex_unlock(&self->lock);
    return ok ? 0 : -1;
}

int metrics_add_check(metrics_t *self, const char *name, metrics_check_fn *fn, void *arg)
{
    pthread_mutex_lock(&self->lock);
    int ok = self->nchecks < METRICS_MAX_HOOKS;
    if (ok) {
        snprintf(self->checks[self->nchecks].name, sizeof self->checks[0].name, "%s", name);
        self->checks[self->nchecks].fn = fn;
        self->checks[self->nchecks++].arg = arg;
    }
    pthread_mutex_unlock(&self->lock);
    return ok ? 0 : -1;
}
