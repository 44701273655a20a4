/* webhook.c — see webhook.h. */
#include "web/webhook.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema/json.h"
#include "schema/log.h"
#include "web/webhook_json.h"

#define WEBHOOK_TS_MAX 20   /* digits of a millisecond timestamp, at most */

struct webhook_t {
    cobo_pubkey_t key;
    webhook_ingest_fn *ingest;
    void *ingest_arg;
    webhook_ingest_fn *withdrawal;   /* NULL: withdrawal statuses are ignored */
    void *withdrawal_arg;
    pipeline_t *pipeline;            /* webhook_routes: deposits wait for durability unthreaded */
    pthread_mutex_t lock;
    pthread_cond_t idle_cv;          /* signalled (under lock) when waiting drops to 0 */
    atomic_int waiting;              /* deposits waiting for their record (webhook_wait_t) */
    atomic_ulong accepted, repeated, rejected, ignored, failed;   /* webhook_stats */
};

/* A deposit webhook on the libmicrohttpd route whose answer waits for its record's group commit,
 * holding no thread: its connection is suspended (http_later) until the journal says the record is
 * durable (on the flusher's thread: it only wakes the connection), and the rest (the deposit's
 * hand-on and log line, the answer) runs on the connection's own thread again. */
typedef struct {
    webhook_wait_t wait;
    http_later_t *later;
} s_wait_t;

static webhook_verdict_t s_reject(webhook_result_t *out, int status, const char *reason)
{
    out->verdict = WEBHOOK_REJECT;
    out->status = status;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    return out->verdict;
}

static webhook_verdict_t s_ignore(webhook_result_t *out, const char *reason)
{
    out->verdict = WEBHOOK_IGNORE;
    out->status = 200;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    return out->verdict;
}

static int s_timestamp_ok(const char *ts)
{
    size_t n = strlen(ts);
    if (n == 0 || n > WEBHOOK_TS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char) ts[i]))
            return -1;
    return 0;
}

static int s_signature_well_formed(const char *sig)
{
    if (strlen(sig) != COBO_SIG_HEX_LEN)
        return -1;
    for (const char *p = sig; *p; p++)
        if (!isxdigit((unsigned char) *p))
            return -1;
    return 0;
}

/* When the strict parse failed: is this something other than a deposit (a withdrawal of another
 * shape, a non-transaction event)? Then it is ignored rather than refused, so Cobo does not retry. */
static int s_not_a_deposit(const char *body, size_t len, char *what, size_t whatlen)
{
    bson_t doc;
    char err[64];
    if (json_parse(body, len, &doc, err, sizeof err) != 0) {
        bson_destroy(&doc);
        return 0;
    }
    int rc = 0;
    const char *data_type = json_get_str(&doc, "data.data_type");
    const char *tx_type = json_get_str(&doc, "data.type");
    if (json_has(&doc, "data") && data_type && strcmp(data_type, "Transaction") != 0) {
        snprintf(what, whatlen, "data_type %.40s", data_type);
        rc = 1;
    } else if (data_type && tx_type && strcmp(tx_type, "Deposit") != 0) {
        snprintf(what, whatlen, "transaction type %.40s", tx_type);
        rc = 1;
    }
    bson_destroy(&doc);
    return rc;
}

/* 0 if the media type is application/json (any case, parameters such as charset allowed). */
static int s_json_type(const char *ct)
{
    if (!ct)
        return -1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return -1;
    const char *rest = ct + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';' ? 0 : -1;
}

webhook_verdict_t webhook_check(const cobo_pubkey_t *key, const char *timestamp, const char *signature,
                                const char *content_type, const char *body, size_t len, size_t max_body,
                                webhook_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (max_body && len > max_body)
        return s_reject(out, 413, "body too large");
    /* 1. signature, before anything looks at the body */
    if (!timestamp || !signature || !timestamp[0] || !signature[0])
        return s_reject(out, 401, "missing signature headers");
    if (s_timestamp_ok(timestamp) != 0)
        return s_reject(out, 401, "malformed timestamp");
    if (s_signature_well_formed(signature) != 0)
        return s_reject(out, 401, "malformed signature");
    if (!key || cobo_verify_response(key, body ? body : "", body ? len : 0, timestamp, signature) != 0)
        return s_reject(out, 401, "bad signature");

    /* 2. shape */
    if (s_json_type(content_type) != 0)
        return s_reject(out, 415, "Content-Type must be application/json");
    char err[112] = "";
    if (webhook_event_parse(body, len, &out->event, err, sizeof err) != 0) {
        char what[64];
        if (s_not_a_deposit(body, len, what, sizeof what))
            return s_ignore(out, what);
        return s_reject(out, 400, err[0] ? err : "malformed webhook");
    }
    /* 3. kind */
    char why[112];
    if (!out->event.is_transaction) {
        snprintf(why, sizeof why, "not a transaction event (%.60s)", out->event.type);
        return s_ignore(out, why);
    }
    /* the sender's address is judged by the pipeline (it knows kasa's deposit addresses) */
    cobo_kind_t kind = cobo_tx_kind(&out->event.tx, NULL, NULL);
    if (kind == COBO_KIND_WITHDRAWAL) {
        out->verdict = WEBHOOK_WITHDRAWAL;
        out->status = 0;
        return out->verdict;
    }
    /* coins into an address that are the broker's own: the pipeline journals them as ignored */
    int into_ours = kind == COBO_KIND_OWN || (kind == COBO_KIND_SWEEP && strcmp(out->event.tx.type, "Deposit") == 0);
    if (kind != COBO_KIND_DEPOSIT && !into_ours) {
        snprintf(why, sizeof why, "transaction type %.24s (%s)", out->event.tx.type, cobo_kind_name(kind));
        return s_ignore(out, why);
    }
    out->verdict = WEBHOOK_DEPOSIT;
    out->status = 0;
    return out->verdict;
}

static const char *s_header2(const http_request_t *req, const char *dash, const char *underscore)
{
    const char *v = http_header(req, dash);
    return v ? v : http_header(req, underscore);
}

static void s_count(atomic_ulong *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static int s_error(jbuf_t *out, int code, const char *reason)
{
    if (out) {
        jbuf_reset(out);
        jbuf_puts(out, "{\"error\":");
        jbuf_str(out, reason);
        jbuf_puts(out, "}");
    }
    return code;
}

/* The answer to a verified transaction the pipeline or the withdrawal function took with code (err
 * for non-2xx): counted, logged, and written to out (NULL: the connection is gone, nothing to
 * write). Returns the status to answer. */
static int s_answer(webhook_t *self, webhook_verdict_t v, const cobo_tx_t *tx, int code, const char *err,
                    jbuf_t *out)
{
    if (code == 201 || code == 200) {
        s_count(code == 201 ? &self->accepted : &self->repeated);
        /* A new deposit state already has its info line (deposit.<state> tx=... lsn=..., written by
         * the registry once durable): this one is then at debug, one info line per accepted webhook. */
        log_level_t level = code == 201 && v == WEBHOOK_DEPOSIT ? LOG_DEBUG : LOG_INFO;
        log_event(level, code == 201 ? "webhook.accepted" : "webhook.repeat",
                  "tx=%s status=%s confirmations=%d code=%d", tx->tx_id, tx->status, (int) tx->confirmations, code);
        if (out) {
            jbuf_reset(out);
            jbuf_puts(out, "{\"tx\":");
            jbuf_str(out, tx->tx_id);
            jbuf_puts(out, code == 201 ? ",\"result\":\"recorded\"}" : ",\"result\":\"already recorded\"}");
        }
        return code;
    }
    if (code < 400 || code > 599)
        code = 503;
    s_count(&self->failed);
    log_error("webhook.failed", "tx=%s status=%s code=%d reason=\"%s\"", tx->tx_id, tx->status, code,
              err[0] ? err : "ingest failed");
    return s_error(out, code, err[0] ? err : "not recorded; retry");
}

int webhook_wait_end(webhook_wait_t *w, int live, jbuf_t *out)
{
    webhook_t *self = w->self;
    char err[160] = "";
    int code = pipeline_ingest_end(self->pipeline, &w->pending, w->durable_rc, live, err, sizeof err);
    if (live)
        code = s_answer(self, WEBHOOK_DEPOSIT, &w->r.event.tx, code, err, out);
    else
        log_info("webhook.unanswered", "tx=%s code=%d reason=\"kasa stopped first: answered 503\"",
                 w->r.event.tx.tx_id, code);
    if (atomic_fetch_sub(&self->waiting, 1) == 1) {   /* the last: webhook_destroy may be waiting */
        pthread_mutex_lock(&self->lock);
        pthread_cond_broadcast(&self->idle_cv);
        pthread_mutex_unlock(&self->lock);
    }
    return code;
}

/* journal_durable_fn: what the journal said, then the transport's wake-up. */
static void s_wait_durable(void *arg, int rc)
{
    webhook_wait_t *w = arg;
    w->durable_rc = rc;
    w->wake(w->wake_arg);
}

void webhook_wait_arm(webhook_wait_t *w, webhook_wake_fn *wake, void *arg)
{
    w->wake = wake;
    w->wake_arg = arg;
    journal_when_durable(pipeline_journal(w->self->pipeline), pipeline_pending_lsn(w->pending), s_wait_durable, w);
}

int webhook_wait_block(webhook_wait_t *w, jbuf_t *out)
{
    w->durable_rc = journal_wait(pipeline_journal(w->self->pipeline), pipeline_pending_lsn(w->pending));
    return webhook_wait_end(w, 1, out);
}

void webhook_hold(webhook_t *self)
{
    if (self->pipeline)
        journal_hold(pipeline_journal(self->pipeline));
}

void webhook_release(webhook_t *self)
{
    if (self->pipeline)
        journal_release(pipeline_journal(self->pipeline));
}

/* A verified deposit into the pipeline: answered now when nothing is to be waited for, else 0 with
 * w pending (counted in waiting until webhook_wait_end). */
static int s_ingest(webhook_t *self, webhook_wait_t *w, jbuf_t *out)
{
    char err[160] = "";
    pipeline_pending_t *pending = NULL;
    int code = pipeline_ingest_begin(self->pipeline, &w->r.event.tx, &pending, err, sizeof err);
    if (pending && pipeline_pending_lsn(pending) == 0)   /* nothing to wait for */
        code = pipeline_ingest_end(self->pipeline, &pending, 0, 1, err, sizeof err);
    if (!pending)
        return s_answer(self, WEBHOOK_DEPOSIT, &w->r.event.tx, code, err, out);
    w->self = self;
    w->pending = pending;
    w->durable_rc = 0;
    atomic_fetch_add(&self->waiting, 1);
    return 0;
}

int webhook_take(webhook_t *self, const webhook_in_t *in, webhook_wait_t *w, jbuf_t *out)
{
    webhook_result_t *r = &w->r;
    webhook_verdict_t v = webhook_check(&self->key, in->timestamp, in->signature, in->content_type, in->body,
                                        in->len, 0, r);
    if (v == WEBHOOK_REJECT) {
        s_count(&self->rejected);
        char ip[64] = "-";
        if (in->client)
            in->client(in->client_arg, ip, sizeof ip);
        log_warn("webhook.rejected", "code=%d reason=\"%s\" ip=%s", r->status, r->reason, ip);
        return s_error(out, r->status, r->reason);
    }
    if (v == WEBHOOK_WITHDRAWAL && !self->withdrawal) {   /* its owner asks Cobo on a schedule */
        v = WEBHOOK_IGNORE;
        snprintf(r->reason, sizeof r->reason, "withdrawal status: no handler");
    }
    if (v == WEBHOOK_IGNORE) {
        s_count(&self->ignored);
        log_info("webhook.ignored", "event_id=%s type=%s reason=\"%s\" code=200", r->event.event_id,
                 r->event.type[0] ? r->event.type : "-", r->reason);
        jbuf_reset(out);
        jbuf_puts(out, "{\"ignored\":");
        jbuf_str(out, r->reason);
        jbuf_puts(out, "}");
        return 200;
    }
    if (v == WEBHOOK_DEPOSIT && self->pipeline)
        return s_ingest(self, w, out);
    char err[160] = "";
    const cobo_tx_t *tx = &r->event.tx;
    int code = v == WEBHOOK_WITHDRAWAL ? self->withdrawal(self->withdrawal_arg, tx, err, sizeof err)
                                       : self->ingest(self->ingest_arg, tx, err, sizeof err);
    return s_answer(self, v, tx, code, err, out);
}

/* ---- the libmicrohttpd route ----------------------------------------------------------------- */

static void s_reply(http_response_t *res, int code, jbuf_t *out)
{
    http_reply_json(res, code, jbuf_take(out));
}

/* http_fill_fn: on the connection's thread, the record's fate known: finish and answer (req NULL:
 * the connection closed first; the deposit is finished all the same). */
static void s_wait_fill(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) req;
    s_wait_t *w = arg;
    jbuf_t out;
    jbuf_init(&out);
    int code = webhook_wait_end(&w->wait, 1, &out);
    if (res)
        s_reply(res, code, &out);
    jbuf_free(&out);
    free(w);
}

/* webhook_wake_fn: wakes the connection, which finishes on its own thread. If the server stopping
 * answered it 503 already, the deposit is finished here without blocking (no hand-on: it resumes
 * on the next start). */
static void s_wait_wake(void *arg)
{
    s_wait_t *w = arg;
    if (http_later_wake(w->later, s_wait_fill, w) == 0)
        return;   /* w now belongs to the connection's thread */
    webhook_wait_end(&w->wait, 0, NULL);
    free(w);
}

static void s_client_ip(void *arg, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", http_client_ip(arg));
}

static void s_handle(void *arg, const http_request_t *req, http_response_t *res)
{
    webhook_t *self = arg;
    s_wait_t *w = malloc(sizeof *w);
    if (!w) {
        http_reply_error(res, 503, "out of memory");
        return;
    }
    webhook_in_t in = {
        .timestamp = s_header2(req, "Biz-Timestamp", "Biz_Timestamp"),
        .signature = s_header2(req, "Biz-Resp-Signature", "Biz_Resp_Signature"),
        .content_type = http_header(req, "Content-Type"),
        .client = s_client_ip, .client_arg = (void *) req,
    };
    in.body = http_body(req, &in.len);
    jbuf_t out;
    jbuf_init(&out);
    int code = webhook_take(self, &in, &w->wait, &out);
    if (code == 0) {
        w->later = http_later(req, res);
        if (w->later) {
            webhook_wait_arm(&w->wait, s_wait_wake, w);
            return;   /* w belongs to the wait now */
        }
        code = webhook_wait_block(&w->wait, &out);   /* no memory to wait without this thread */
    }
    s_reply(res, code, &out);
    free(w);
}

int webhook_threads(int http_threads)
{
    return http_threads / 4 > 2 ? http_threads / 4 : 2;
}

static int s_pipeline_ingest(void *arg, const cobo_tx_t *tx, char *err, size_t errlen)
{
    return pipeline_ingest(arg, tx, err, errlen);
}

/* The route's state; pipeline (or NULL) set before the first request can come. */
static webhook_t *s_new(webhook_ingest_fn *ingest, void *arg, pipeline_t *pipeline, const char *pubkey_hex,
                        char *err, size_t errlen)
{
    webhook_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (cobo_pubkey_parse(pubkey_hex, &self->key) != 0) {
        snprintf(err, errlen, "webhook public key: expected 64 hex characters of a valid Ed25519 key");
        free(self);
        return NULL;
    }
    self->ingest = ingest;
    self->ingest_arg = arg;
    self->pipeline = pipeline;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->idle_cv, NULL);
    return self;
}

webhook_t *webhook_new(pipeline_t *pipeline, const char *pubkey_hex, char *err, size_t errlen)
{
    return s_new(s_pipeline_ingest, pipeline, pipeline, pubkey_hex, err, errlen);
}

webhook_t *webhook_routes(http_server_t *http, pipeline_t *pipeline, const char *pubkey_hex,
                          char *err, size_t errlen)
{
    webhook_t *self = webhook_new(pipeline, pubkey_hex, err, errlen);
    if (self)
        http_route(http, "POST", WEBHOOK_PATH, s_handle, self);
    return self;
}

webhook_t *webhook_new_fn(webhook_ingest_fn *ingest, void *arg, const char *pubkey_hex, char *err, size_t errlen)
{
    return s_new(ingest, arg, NULL, pubkey_hex, err, errlen);
}

webhook_t *webhook_routes_fn(http_server_t *http, webhook_ingest_fn *ingest, void *arg,
                             const char *pubkey_hex, char *err, size_t errlen)
{
    webhook_t *self = webhook_new_fn(ingest, arg, pubkey_hex, err, errlen);
    if (self)
        http_route(http, "POST", WEBHOOK_PATH, s_handle, self);
    return self;
}

static void s_elsewhere(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    (void) req;
    http_reply_error(res, 404, "webhooks are served on the webhook listener (KASA_WEBHOOK_LISTEN)");
}

void webhook_elsewhere(http_server_t *http)
{
    http_route(http, "POST", WEBHOOK_PATH, s_elsewhere, NULL);
}

void webhook_on_withdrawal(webhook_t *self, webhook_ingest_fn *fn, void *arg)
{
    pthread_mutex_lock(&self->lock);
    self->withdrawal = fn;
    self->withdrawal_arg = arg;
    pthread_mutex_unlock(&self->lock);
}

void webhook_destroy(webhook_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    webhook_t *self = *self_p;
    *self_p = NULL;
    /* a deposit still waiting for its record is finished by the journal's next commit (or its
     * failure): at most one group commit away */
    pthread_mutex_lock(&self->lock);
    while (atomic_load(&self->waiting) > 0)   /* the last one broadcasts under the lock */
        pthread_cond_wait(&self->idle_cv, &self->lock);
    pthread_mutex_unlock(&self->lock);
    pthread_cond_destroy(&self->idle_cv);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

void webhook_stats(webhook_t *self, webhook_stats_t *out)
{
    pthread_mutex_lock(&self->lock);
    out->accepted = atomic_load(&self->accepted);
    out->repeated = atomic_load(&self->repeated);
    out->rejected = atomic_load(&self->rejected);
    out->ignored = atomic_load(&self->ignored);
    out->failed = atomic_load(&self->failed);
    pthread_mutex_unlock(&self->lock);
}
