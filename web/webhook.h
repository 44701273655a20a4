/* webhook.h — POST /cobo/webhook: Cobo's signed transaction notifications.
 *
 * Order of checks, each answered at once (nothing after a failed check runs):
 *   1. signature — headers Biz-Timestamp and Biz-Resp-Signature (or Biz_Timestamp /
 *      Biz_Resp_Signature; any case) over RAW_BODY|TIMESTAMP with Cobo's key
 *      (SHA256(SHA256(.)) then Ed25519): missing, malformed or wrong → 401 {"error": ...};
 *   2. shape — Content-Type other than application/json → 415; not JSON, or a deposit missing a
 *      field → 400 {"error": short reason};
 *   3. kind (cobo_tx_kind) — not a transaction, a type other than Deposit/Withdrawal, or a Withdrawal
 *      kasa did not ask for (Cobo's sweep, a transfer made in Cobo's portal) → 200 {"ignored": ...};
 *   4. a deposit → pipeline_ingest(): 201 new (durable), 200 repeat, 503 journal failure (a Deposit
 *      whose sender is one of kasa's deposit addresses is a sweep leg: 200, nothing journaled);
 *      a status of a transfer kasa asked for (request_id "kasa-...") → the withdrawal function
 *      (webhook_on_withdrawal), answered as it says; without one, 200 {"ignored": ...} (the
 *      withdrawal's owner asks Cobo on a schedule).
 * Nothing is journaled for a request that fails 1–3. One info log line per webhook, never with the
 * signature or the body: a new deposit state is the registry's event=deposit.<state> tx=... lsn=...
 * (event=webhook.accepted tx=... status=... code=201 is then at debug); otherwise
 * event=webhook.repeat, webhook.accepted (a withdrawal's), webhook.ignored, webhook.rejected or
 * webhook.failed. */
#ifndef KASA_WEB_WEBHOOK_H
#define KASA_WEB_WEBHOOK_H

#include <stddef.h>

#include "actors/cobo_auth.h"
#include "actors/pipeline.h"
#include "schema/cobo_tx.h"
#include "web/http.h"

#define WEBHOOK_PATH "/cobo/webhook"
/* The webhook listener's (KASA_WEBHOOK_LISTEN, web/door.h) event loops for KASA_HTTP_THREADS
 * http_threads: a quarter of them, at least 2. A deposit webhook does not hold a thread while its
 * record is made durable, so the loops only read, check signatures and answer: a few, each serving
 * many connections (measured on 2 cores with libmicrohttpd's threads, before the listener of kasa's
 * own: 4 threads took 129-138 CPU us per answer, 16 threads 138-151, and one thread per
 * connection, 64, ~160-200). */
int webhook_threads(int http_threads);

typedef enum {
    WEBHOOK_REJECT,   /* answer status with {"error": reason}; nothing happens */
    WEBHOOK_IGNORE,   /* answer 200 with {"ignored": reason}; nothing happens */
    WEBHOOK_DEPOSIT,  /* a verified deposit transaction: event.tx goes to the pipeline */
    WEBHOOK_WITHDRAWAL, /* a verified status of a transfer kasa asked for: event.tx goes to the
                         * withdrawal function */
} webhook_verdict_t;

typedef struct {
    webhook_verdict_t verdict;
    int status;              /* REJECT: 401, 413, 415 or 400; IGNORE: 200; DEPOSIT: 0 (the pipeline decides) */
    char reason[128];        /* REJECT / IGNORE: why (never echoes the body or the signature) */
    cobo_event_t event;      /* DEPOSIT: the parsed event */
} webhook_result_t;

/* The pure part of the route: checks one webhook (the values of its Biz-Timestamp,
 * Biz-Resp-Signature and Content-Type headers, NULL when absent; the raw body) with key and decides
 * what to do. max_body 0 means no limit here. Returns out->verdict. No I/O, no state. */
webhook_verdict_t webhook_check(const cobo_pubkey_t *key, const char *timestamp, const char *signature,
                                const char *content_type, const char *body, size_t len, size_t max_body,
                                webhook_result_t *out);

typedef struct webhook_t webhook_t;

/* ---- one webhook from any transport -------------------------------------------------------
 * The route below (webhook_routes, on libmicrohttpd) and the webhook listener (web/door.h) both
 * take webhooks through these: the checks, the answers and the log lines are the same code. */

/* One webhook as received: header values (either spelling resolved, NULL when absent) and the
 * raw body. client writes the client's address as text (for the line of a rejected webhook:
 * called only then). */
typedef struct {
    const char *timestamp, *signature, *content_type;
    const char *body;
    size_t len;
    void (*client)(void *arg, char *out, size_t outlen);
    void *client_arg;
} webhook_in_t;

/* A webhook whose answer waits for its record's group commit: the transport's own memory (one per
 * webhook in flight), untouched by the transport between webhook_take and webhook_wait_end. */
typedef void (webhook_wake_fn)(void *arg);
typedef struct {
    webhook_result_t r;
    webhook_t *self;
    pipeline_pending_t *pending;
    int durable_rc;                  /* what the journal said: 0 durable, -1 failed */
    webhook_wake_fn *wake;
    void *wake_arg;
} webhook_wait_t;

/* The route's whole work for one webhook: checked (webhook_check), counted, logged and taken in
 * (the pipeline, the withdrawal function or the ingest function). Returns the HTTP status with
 * the answer's JSON in out (reset first), or 0 when the answer waits for a record's durability:
 * w then holds the deposit, and the caller either arms it (webhook_wait_arm) and, once woken,
 * calls webhook_wait_end on a thread that may block, or calls webhook_wait_block at once. */
int webhook_take(webhook_t *self, const webhook_in_t *in, webhook_wait_t *w, jbuf_t *out);
/* Registers w with the journal: wake(arg) is called exactly once, on the journal's flusher thread,
 * once the record is durable or the journal failed; it must be quick and must not block. */
void webhook_wait_arm(webhook_wait_t *w, webhook_wake_fn *wake, void *arg);
/* Finishes a woken w: the deposit handed on (live 1; may block) or, live 0 (the connection was
 * answered 503 by a stopping server), only its line written (event=webhook.unanswered) and nothing
 * that blocks. Returns the status with the answer in out (NULL: nothing to write). w is free again. */
int webhook_wait_end(webhook_wait_t *w, int live, jbuf_t *out);
/* Waits for w's record on this thread (journal_wait), then webhook_wait_end(w, 1, out). */
int webhook_wait_block(webhook_wait_t *w, jbuf_t *out);
/* Around a run of webhooks taken one after the other (an event loop's ready requests): their
 * records share one group commit (journal_hold). Pairs; nothing without a pipeline. */
void webhook_hold(webhook_t *self);
void webhook_release(webhook_t *self);

/* The webhook's state without a route (a transport of its own takes the webhooks: web/door.h);
 * as webhook_routes otherwise. */
webhook_t *webhook_new(pipeline_t *pipeline, const char *pubkey_hex, char *err, size_t errlen);

/* How a verified deposit is taken in: pipeline_ingest by default. Returns an HTTP status
 * (201, 200, 503) and a reason in err for non-2xx. */
typedef int (webhook_ingest_fn)(void *arg, const cobo_tx_t *tx, char *err, size_t errlen);

/* Adds POST /cobo/webhook to http, feeding deposits to pipeline (not owned). pubkey_hex is Cobo's
 * key (64 hex). Returns the route's state (free with webhook_destroy after the server stops), or
 * NULL with a reason in err (bad key). A deposit whose answer must wait for a record's durability
 * (pipeline_ingest_begin) waits without its thread: the connection is suspended (http_later), the
 * journal wakes it once the record is durable (journal_when_durable), and the hand-on, the log line
 * and the answer follow on the connection's thread (pipeline_ingest_end): the same answers and
 * lines as pipeline_ingest, never before the record is durable. */
webhook_t *webhook_routes(http_server_t *http, pipeline_t *pipeline, const char *pubkey_hex,
                          char *err, size_t errlen);
/* The same with any ingest function (a tool or test that journals without the full pipeline). */
webhook_t *webhook_routes_fn(http_server_t *http, webhook_ingest_fn *ingest, void *arg,
                             const char *pubkey_hex, char *err, size_t errlen);
/* webhook_new with any ingest function, for a transport of its own. */
webhook_t *webhook_new_fn(webhook_ingest_fn *ingest, void *arg, const char *pubkey_hex, char *err, size_t errlen);
/* Where the statuses of transfers kasa asked for go (type Withdrawal, request_id "kasa-..."): fn
 * returns an HTTP status like an ingest function (201 taken and durable, 200 already known, 503 not
 * taken: Cobo retries). Set before the server starts; fn NULL (the default) ignores them (200). */
void webhook_on_withdrawal(webhook_t *self, webhook_ingest_fn *fn, void *arg);
/* Frees; nulls *self_p; safe on NULL and twice. Call after the server stopped and before the
 * pipeline and its journal go: it first waits for every deposit still waiting for its record (at
 * most the journal's next group commit; such a webhook was answered 503 by the stopping server and
 * is logged as event=webhook.unanswered). */
void webhook_destroy(webhook_t **self_p);

/* Adds POST /cobo/webhook to a listener that does not take webhooks (KASA_LISTEN, when they have
 * their own): answered 404 with where to send them, so a misrouted Cobo or proxy is seen at once. */
void webhook_elsewhere(http_server_t *http);

/* Counters since start (for stats and tests). */
typedef struct {
    unsigned long accepted, repeated, rejected, ignored, failed;
} webhook_stats_t;
void webhook_stats(webhook_t *self, webhook_stats_t *out);

#endif
