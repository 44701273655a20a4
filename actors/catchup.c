/* catchup.c — see catchup.h. One Cobo client, used only under run_lock (one pass at a time);
 * the scheduler thread sleeps on a monotonic condition variable that destroy signals. */
#include "actors/catchup.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/cobo.h"
#include "actors/condvar.h"
#include "schema/log.h"

#define S_BACKOFF_FIRST_MS 1000
#define S_BACKOFF_MAX_MS 30000

struct catchup_t {
    catchup_ingest_fn *ingest;
    void *ingest_arg;
    char wallet_id[80];
    int64_t interval_ms;
    int64_t lookback_ms;
    cobo_client_t *cobo;
    pthread_mutex_t run_lock;     /* one pass at a time; guards cobo */
    pthread_mutex_t lock;         /* guards stop, stats */
    pthread_cond_t wake;
    int stop;
    int thread_started;
    pthread_t thread;
    catchup_stats_t stats;
};

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits ms unless stopped first. Returns 1 if stopped. */
static int s_wait(catchup_t *self, int64_t ms)
{
    struct timespec until;
    condvar_deadline(&until, ms);
    pthread_mutex_lock(&self->lock);
    while (!self->stop && pthread_cond_timedwait(&self->wake, &self->lock, &until) == 0)
        ;
    int stop = self->stop;
    pthread_mutex_unlock(&self->lock);
    return stop;
}

static int s_stopping(catchup_t *self)
{
    pthread_mutex_lock(&self->lock);
    int stop = self->stop;
    pthread_mutex_unlock(&self->lock);
    return stop;
}

typedef struct {
    catchup_t *self;
    catchup_report_t *rep;
} s_page_ctx_t;

/* One listed transaction: into the ingress path, counted by its answer. */
static void s_on_tx(void *arg, const cobo_tx_t *tx, const char *why)
{
    s_page_ctx_t *c = arg;
    c->rep->listed++;
    if (!tx) {
        c->rep->unreadable++;
        log_warn("catchup.unreadable", "reason=\"%s\"", why ? why : "");
        return;
    }
    char err[256] = "";
    int code = c->self->ingest(c->self->ingest_arg, tx, err, sizeof err);
    if (code == 201) {
        c->rep->moved++;
        /* a webhook kasa never got (or not yet): worth a line of its own */
        log_warn("catchup.found", "tx=%s status=%s confirmations=%d address=%s amount=%s", tx->tx_id, tx->status,
                 tx->confirmations, tx->address, tx->amount);
    } else if (code == 200) {
        c->rep->known++;
    } else {
        c->rep->failed++;
        log_warn("catchup.ingest_failed", "tx=%s code=%d reason=\"%s\"", tx->tx_id, code, err);
    }
}

/* 1 if e (with the client's last answer) is worth waiting for and trying again. */
static int s_retryable(cobo_client_t *cobo, cobo_err_t e)
{
    return e == COBO_ERR_TRANSPORT || e == COBO_ERR_HTTP_5XX ||
           (e == COBO_ERR_HTTP_4XX && cobo_client_rate_limited(cobo));
}

static int s_sleep(void *arg, int64_t ms)
{
    (void) arg;
    struct timespec ts = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 0;
}

int catchup_list_all(cobo_client_t *cobo, const cobo_tx_query_t *query, cobo_tx_fn fn, void *arg, int retries,
                     catchup_wait_fn *wait, void *wait_arg, catchup_report_t *rep, char *err, size_t errlen)
{
    if (!wait)
        wait = s_sleep;
    cobo_tx_query_t q = *query;
    char after[256] = "", next[256];
    q.after = after;
    err[0] = '\0';
    for (int page = 0;; page++) {
        if (page >= CATCHUP_MAX_PAGES) {
            snprintf(err, errlen, "more than %d pages", CATCHUP_MAX_PAGES);
            return -1;
        }
        if (page > 0 && wait(wait_arg, CATCHUP_PAGE_GAP_MS)) {
            snprintf(err, errlen, "stopped");
            return -1;
        }
        cobo_err_t e;
        int64_t backoff_ms = S_BACKOFF_FIRST_MS;
        for (int attempt = 0;; attempt++) {
            char why[256];
            e = cobo_list_transactions_page(cobo, &q, fn, arg, next, sizeof next, why, sizeof why);
            if (e == COBO_OK)
                break;
            int limited = e == COBO_ERR_HTTP_4XX && cobo_client_rate_limited(cobo);
            if (limited)
                rep->rate_limited++;
            if (!s_retryable(cobo, e) || attempt >= retries) {
                snprintf(err, errlen, "Cobo %s: %s", cobo_err_name(e), why);
                return -1;
            }
            int64_t wait_ms = cobo_client_retry_after_ms(cobo);
            if (wait_ms <= 0)
                wait_ms = backoff_ms;
            backoff_ms = backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : backoff_ms * 2;
            log_warn(limited ? "catchup.rate_limited" : "catchup.retry", "page=%d wait_ms=%lld reason=\"%s\"", page,
                     (long long) wait_ms, why);
            rep->retries++;
            if (wait(wait_arg, wait_ms)) {
                snprintf(err, errlen, "stopped");
                return -1;
            }
        }
        rep->pages++;
        if (!next[0])
            return 0;
        memcpy(after, next, sizeof after);
    }
}

static int s_wait_fn(void *arg, int64_t ms)
{
    return s_wait(arg, ms);
}

/* The pass itself; run_lock held. */
static int s_pass(catchup_t *self, int64_t since_ms, catchup_report_t *rep, char *err, size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    rep->started_ms = s_wall_ms();
    rep->since_ms = since_ms > CATCHUP_OVERLAP_MS ? since_ms - CATCHUP_OVERLAP_MS : 1;
    int64_t t0 = s_mono_ms();
    s_page_ctx_t ctx = { self, rep };
    cobo_tx_query_t q = { .types = "Deposit", .wallet_ids = self->wallet_id, .min_created_ms = rep->since_ms,
                          .limit = 50 };
    int rc = catchup_list_all(self->cobo, &q, s_on_tx, &ctx, CATCHUP_PAGE_RETRIES, s_wait_fn, self, rep, err, errlen);
    if (rc == 0 && rep->failed > 0) {
        snprintf(err, errlen, "%d deposits could not be taken in", rep->failed);
        rc = -1;
    }
    rep->complete = rc == 0;
    rep->took_ms = s_mono_ms() - t0;
    pthread_mutex_lock(&self->lock);
    self->stats.runs++;
    self->stats.runs_failed += rc != 0;
    self->stats.moved += (uint64_t) rep->moved;
    self->stats.listed += (uint64_t) rep->listed;
    self->stats.rate_limited += (uint64_t) rep->rate_limited;
    if (rc == 0)
        self->stats.last_complete_ms = rep->started_ms;
    pthread_mutex_unlock(&self->lock);
    char text[256];
    catchup_report_text(rep, text, sizeof text);
    if (rc == 0)
        log_event(rep->moved ? LOG_WARN : LOG_INFO, "catchup.done", "%s", text);
    else
        log_warn("catchup.incomplete", "%s reason=\"%s\"", text, err);
    return rc;
}

int catchup_run(catchup_t *self, int64_t since_ms, catchup_report_t *out, char *err, size_t errlen)
{
    catchup_report_t local;
    if (!out)
        out = &local;
    pthread_mutex_lock(&self->run_lock);
    int rc = s_pass(self, since_ms, out, err, errlen);
    pthread_mutex_unlock(&self->run_lock);
    return rc;
}

static void *s_schedule(void *arg)
{
    catchup_t *self = arg;
    int64_t since_ms = s_wall_ms() - self->lookback_ms;
    while (!s_stopping(self)) {
        catchup_report_t rep;
        char err[256];
        if (catchup_run(self, since_ms, &rep, err, sizeof err) == 0)
            since_ms = rep.started_ms;   /* the next window starts where this one began (less the overlap) */
        if (s_wait(self, self->interval_ms))
            break;
    }
    return NULL;
}

catchup_t *catchup_new(const config_t *cfg, catchup_ingest_fn *ingest, void *arg, char *err, size_t errlen)
{
    if (!cfg || !ingest) {
        snprintf(err, errlen, "catch-up: a configuration and an ingest function are required");
        return NULL;
    }
    catchup_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->ingest = ingest;
    self->ingest_arg = arg;
    snprintf(self->wallet_id, sizeof self->wallet_id, "%s", cfg->cobo_wallet_id);
    self->interval_ms = (int64_t) cfg->catchup_interval_s * 1000;
    self->lookback_ms = (int64_t) cfg->catchup_lookback_s * 1000;
    pthread_mutex_init(&self->run_lock, NULL);
    pthread_mutex_init(&self->lock, NULL);
    if (condvar_init(&self->wake) != 0) {
        snprintf(err, errlen, "catch-up: cannot make a condition variable");
        pthread_mutex_destroy(&self->run_lock);
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    char why[256];
    self->cobo = cobo_client_new(cfg->cobo_api_url, cfg->cobo_api_key, cfg->cobo_api_secret, cfg->cobo_webhook_pubkey,
                                 config_cobo_timeout_ms(cfg), why, sizeof why);
    if (!self->cobo) {
        snprintf(err, errlen, "catch-up: %s", why);
        catchup_destroy(&self);
        return NULL;
    }
    if (self->interval_ms > 0) {
        if (pthread_create(&self->thread, NULL, s_schedule, self) != 0) {
            snprintf(err, errlen, "catch-up: cannot start its thread");
            catchup_destroy(&self);
            return NULL;
        }
        self->thread_started = 1;
    }
    return self;
}

void catchup_destroy(catchup_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    catchup_t *self = *self_p;
    *self_p = NULL;
    pthread_mutex_lock(&self->lock);
    self->stop = 1;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->lock);
    if (self->thread_started)
        pthread_join(self->thread, NULL);
    pthread_mutex_lock(&self->run_lock);   /* a manual pass in progress ends first */
    pthread_mutex_unlock(&self->run_lock);
    cobo_client_destroy(&self->cobo);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    pthread_mutex_destroy(&self->run_lock);
    free(self);
}

void catchup_stats(catchup_t *self, catchup_stats_t *out)
{
    pthread_mutex_lock(&self->lock);
    *out = self->stats;
    pthread_mutex_unlock(&self->lock);
}

void catchup_report_text(const catchup_report_t *r, char *buf, size_t len)
{
    snprintf(buf, len,
             "since_ms=%lld pages=%d listed=%d moved=%d known=%d failed=%d unreadable=%d rate_limited=%d retries=%d "
             "took_ms=%lld complete=%s",
             (long long) r->since_ms, r->pages, r->listed, r->moved, r->known, r->failed, r->unreadable,
             r->rate_limited, r->retries, (long long) r->took_ms, r->complete ? "yes" : "no");
}
