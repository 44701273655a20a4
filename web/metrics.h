/* metrics.h — kasa's metrics and health on their own listener (KASA_METRICS_LISTEN, default
 * 127.0.0.1:9100, never the public one: no login guards it):
 *   GET /metrics   the Prometheus text format (version 0.0.4)
 *   GET /healthz   200 {"status":"ok",...} while the process serves
 *   GET /readyz    200 or 503 {"ready":bool,"checks":{NAME:"ok"|reason}}: the journal writable, the
 *                  replay finished, MT5 and Cobo reachable as last seen (their last call answered),
 *                  plus any check added with metrics_add_check
 * The listener starts before the journal is opened, so a long replay shows as "not ready" rather
 * than as a dead process. Sources are attached as kasa starts (metrics_set_*); a family whose
 * source is not attached is left out. Families (see README "Metrics and health"):
 *   kasa_build_info, kasa_start_time_seconds, kasa_ready,
 *   kasa_webhooks_total{outcome}, kasa_deposits{state}, kasa_held_oldest_seconds,
 *   kasa_stage_queue_depth{stage}, kasa_stage_queue_capacity{stage}, kasa_transitions_total{to}, kasa_credits_total, kasa_credit_seconds,
 *   kasa_credit_attempts_total{kind}, kasa_notices_failed_total, kasa_admin_actions_total,
 *   kasa_journal_fsync_seconds, kasa_journal_batch_records, kasa_journal_durable_lsn,
 *   kasa_journal_failed, kasa_external_calls_total{service}, kasa_external_errors_total{service},
 *   kasa_external_call_seconds{service}, kasa_external_last_ok_timestamp_seconds{service},
 *   kasa_catchup_runs_total{result}, kasa_catchup_found_total, kasa_catchup_listed_total,
 *   kasa_catchup_rate_limited_total, kasa_catchup_last_complete_timestamp_seconds;
 *   with a live rate rule, kasa_rate_age_seconds{symbol} and kasa_rate_fetches_total{result}.
 * Parts kasa does not have yet (the MongoDB projector's lag, withdrawals) plug in with
 * metrics_add_collector, e.g. a collector writing kasa_projection_lag_seconds. */
#ifndef KASA_WEB_METRICS_H
#define KASA_WEB_METRICS_H

#include <stddef.h>

#include "actors/accounts.h"
#include "actors/catchup.h"
#include "actors/pipeline.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "schema/record.h"
#include "web/webhook.h"

typedef struct metrics_t metrics_t;

/* Binds listen ("127.0.0.1:9100"; port 0 picks one) and serves at once. NULL with a reason in err. */
metrics_t *metrics_new(const char *listen, char *err, size_t errlen);
/* Stops the listener (no scrape runs after it returns), frees. Safe on NULL and twice. Call it before
 * any attached source is destroyed. */
void metrics_destroy(metrics_t **self_p);
int metrics_port(const metrics_t *self);

/* Sources, attached as they come up (not owned). Thread-safe. */
void metrics_set_journal(metrics_t *self, journal_t *journal);
void metrics_set_pipeline(metrics_t *self, pipeline_t *pipeline);
void metrics_set_webhook(metrics_t *self, webhook_t *webhook);
void metrics_set_catchup(metrics_t *self, catchup_t *catchup);
void metrics_set_accounts(metrics_t *self, accounts_t *accounts);
/* The journal has been replayed and every unfinished deposit resumed: kasa is ready to serve. */
void metrics_set_replayed(metrics_t *self);

/* Every durable record, from the journal's commit path (serial, never blocks): counts
 * transitions, credits, attempts, and times each credit from its attempt to CREDITED. */
void metrics_on_commit(metrics_t *self, const void *payload, size_t len);
/* The same for a record the caller decoded already (the commit path decodes once for everyone). */
void metrics_on_record(metrics_t *self, const record_t *r);

/* A collector appends whole families (# HELP, # TYPE, samples) to out at every scrape. */
typedef void (metrics_collector_fn)(void *arg, jbuf_t *out);
/* A readiness check: 1 ready, 0 not (why says so). */
typedef int (metrics_check_fn)(void *arg, char *why, size_t whylen);
#define METRICS_MAX_HOOKS 8
/* 0, or -1 when METRICS_MAX_HOOKS are taken. Add before the source they read can go away. */
int metrics_add_collector(metrics_t *self, metrics_collector_fn *fn, void *arg);
int metrics_add_check(metrics_t *self, const char *name, metrics_check_fn *fn, void *arg);

/* The exposition text and the readiness answer, as the routes send them (for tests and tools). */
void metrics_write(metrics_t *self, jbuf_t *out);
int metrics_ready(metrics_t *self, jbuf_t *json_out);

#endif
