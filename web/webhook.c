/* webhook.c — see webhook.h. */
#include "web/webhook.h"

#include <ctype.h>
#include <pthread.h>
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
    pthread_mutex_t lock;
    webhook_stats_t stats;
};

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

static void s_count(webhook_t *self, unsigned long *field)
{
    pthread_mutex_lock(&self->lock);
    (*field)++;
    pthread_mutex_unlock(&self->lock);
}

static void s_handle(void *arg, const http_request_t *req, http_response_t *res)
{
    webhook_t *self = arg;
    size_t len;
    const char *body = http_body(req, &len);
    const char *ts = s_header2(req, "Biz-Timestamp", "Biz_Timestamp");
    const char *sig = s_header2(req, "Biz-Resp-Signature", "Biz_Resp_Signature");
    webhook_result_t *r = malloc(sizeof *r);
    if (!r) {
        http_reply_error(res, 503, "out of memory");
        return;
    }
    webhook_verdict_t v = webhook_check(&self->key, ts, sig, http_header(req, "Content-Type"), body, len, 0, r);
    if (v == WEBHOOK_REJECT) {
        s_count(self, &self->stats.rejected);
        log_warn("webhook.rejected", "code=%d reason=\"%s\" ip=%s", r->status, r->reason, http_client_ip(req));
        http_reply_error(res, r->status, r->reason);
        free(r);
        return;
    }
    if (v == WEBHOOK_WITHDRAWAL && !self->withdrawal) {   /* its owner asks Cobo on a schedule */
        v = WEBHOOK_IGNORE;
        snprintf(r->reason, sizeof r->reason, "withdrawal status: no handler");
    }
    if (v == WEBHOOK_IGNORE) {
        s_count(self, &self->stats.ignored);
        log_info("webhook.ignored", "event_id=%s type=%s reason=\"%s\" code=200", r->event.event_id,
                 r->event.type[0] ? r->event.type : "-", r->reason);
        jbuf_t b;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"ignored\":");
        jbuf_str(&b, r->reason);
        jbuf_puts(&b, "}");
        http_reply_json(res, 200, jbuf_take(&b));
        free(r);
        return;
    }
    char err[160] = "";
    const cobo_tx_t *tx = &r->event.tx;
    int code = v == WEBHOOK_WITHDRAWAL ? self->withdrawal(self->withdrawal_arg, tx, err, sizeof err)
                                       : self->ingest(self->ingest_arg, tx, err, sizeof err);
    if (code == 201 || code == 200) {
        s_count(self, code == 201 ? &self->stats.accepted : &self->stats.repeated);
        /* A new deposit state already has its info line (deposit.<state> tx=... lsn=..., written by
         * the registry once durable): this one is then at debug, one info line per accepted webhook. */
        log_level_t level = code == 201 && v == WEBHOOK_DEPOSIT ? LOG_DEBUG : LOG_INFO;
        log_event(level, code == 201 ? "webhook.accepted" : "webhook.repeat",
                  "tx=%s status=%s confirmations=%d code=%d", tx->tx_id, tx->status, (int) tx->confirmations, code);
        jbuf_t b;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"tx\":");
        jbuf_str(&b, tx->tx_id);
        jbuf_printf(&b, ",\"result\":\"%s\"}", code == 201 ? "recorded" : "already recorded");
        http_reply_json(res, code, jbuf_take(&b));
    } else {
        if (code < 400 || code > 599)
            code = 503;
        s_count(self, &self->stats.failed);
        log_error("webhook.failed", "tx=%s status=%s code=%d reason=\"%s\"", tx->tx_id, tx->status, code,
                  err[0] ? err : "ingest failed");
        http_reply_error(res, code, err[0] ? err : "not recorded; retry");
    }
    free(r);
}

static int s_pipeline_ingest(void *arg, const cobo_tx_t *tx, char *err, size_t errlen)
{
    return pipeline_ingest(arg, tx, err, errlen);
}

webhook_t *webhook_routes_fn(http_server_t *http, webhook_ingest_fn *ingest, void *arg,
                             const char *pubkey_hex, char *err, size_t errlen)
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
    pthread_mutex_init(&self->lock, NULL);
    http_route(http, "POST", WEBHOOK_PATH, s_handle, self);
    return self;
}

webhook_t *webhook_routes(http_server_t *http, pipeline_t *pipeline, const char *pubkey_hex,
                          char *err, size_t errlen)
{
    return webhook_routes_fn(http, s_pipeline_ingest, pipeline, pubkey_hex, err, errlen);
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
    pthread_mutex_destroy(&self->lock);
    free(self);
}

void webhook_stats(webhook_t *self, webhook_stats_t *out)
{
    pthread_mutex_lock(&self->lock);
    *out = self->stats;
    pthread_mutex_unlock(&self->lock);
}
