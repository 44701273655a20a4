/* stage.h — what the pipeline's stage actors (lockers, crediters, notifiers) share: their context,
 * their inproc endpoints, the one actor loop they all run (started by stage_actor_new), and the
 * steps of handling a message (fetch the deposit, journal the next event, hand it on).
 *
 * A stage is a czmq zactor with a PULL socket bound at its endpoint. Messages are durable msgpack
 * records (schema/record.h), exactly as journaled. The loop keeps the stage's own bounded work
 * list (actors/workq.h): it reads its PULL socket only while the list has room, so a slow stage
 * pushes back on the one before it (a PUSH with a full high-water mark blocks; nothing is dropped).
 * Between messages the loop honours $TERM; an item that must wait (backoff) stays in the list and
 * does not block the others (except those with its ordering key).
 *
 * Every send between stages is a blocking zmq send on a socket owned by the sending thread. The
 * pipeline forms a chain (ingress → lockers → crediters → notifier 0 → the other notifiers) with no
 * cycle, so a blocked send always waits on a stage that keeps draining. Each stage may run several
 * actors; stage_route() is the one rule that says which actor a deposit goes to. */
#ifndef KASA_ACTORS_STAGE_H
#define KASA_ACTORS_STAGE_H

#include <czmq.h>
/* czmq pulls in <syslog.h>, whose LOG_DEBUG / LOG_INFO macros would shadow tools/log.h's levels. */
#undef LOG_DEBUG
#undef LOG_INFO
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/registry.h"
#include "actors/workq.h"
#include "journal/journal.h"
#include "schema/config.h"

#define STAGE_HWM 100000        /* messages a PUSH/PULL pair holds before a send blocks */
#define STAGE_QUEUE 1024        /* items a stage holds in its own work list */
#define STAGE_MAX_CREDITERS 64
#define STAGE_MAX_LOCKERS 64
#define STAGE_MAX_NOTIFIERS 64

/* STAGE_ACCOUNTS: investors' MT5 work (actors/accounts.h), outside the deposit pipeline.
 * STAGE_WITHDRAWER: withdrawals' money (actors/withdrawer.h), one actor. */
typedef enum { STAGE_LOCKER, STAGE_CREDITER, STAGE_NOTIFIER, STAGE_ACCOUNTS, STAGE_WITHDRAWER, STAGE_KINDS } stage_kind_t;

typedef struct withdrawals_t withdrawals_t;

#define STAGE_GAUGE_ACTORS 64   /* every stage's actor count is at most this */

/* The depth of each actor's work list (items queued, waiting, backing off or being handled), kept by
 * the stage loop after every change and read by /metrics from any thread. A list at STAGE_QUEUE is
 * full: further messages wait in the actor's socket (back-pressure) and are not counted here. */
typedef struct {
    _Atomic int depth[STAGE_KINDS][STAGE_GAUGE_ACTORS];
} stage_gauges_t;

/* Shared by every stage of one pipeline; read-only after start (the registry locks itself). */
typedef struct {
    registry_t *registry;
    journal_t *journal;
    const config_t *cfg;
    int crediters;               /* how many crediter workers (1..STAGE_MAX_CREDITERS) */
    int lockers;                 /* how many locker actors (1..STAGE_MAX_LOCKERS) */
    int notifiers;               /* how many notifier actors (1..STAGE_MAX_NOTIFIERS) */
    int accounts;                /* how many accounts actors (actors/accounts.h; 0 in the pipeline) */
    char prefix[48];             /* "inproc://kasa-<unique>" */
    int64_t mt5_timeout_ms, cobo_timeout_ms, telegram_timeout_ms;
    int64_t mt5_settle_ms;       /* KASA_MT5_SETTLE_S: no resend this soon after an ambiguous attempt */
    stage_gauges_t *gauges;      /* written by the actors' loops (NULL: not kept) */
    withdrawals_t *withdrawals;  /* every withdrawal (actors/withdrawals.h); NULL outside the pipeline */
    struct rates_t *rates;       /* live rates (actors/rates.h), NULL without a live rule */
    struct claims_t *claims;     /* cluster mode's claims (actors/claims.h), NULL on a single node */
    struct shared_t *shared;     /* cluster mode's shared facts (actors/shared.h), NULL on a single node */
    struct wdshared_t *wdshared; /* cluster mode's shared withdrawals (actors/wdshared.h), NULL on a single node */
} stage_ctx_t;

/* Items in the work lists of every actor of stage kind, summed (0 without gauges). Any thread. */
int stage_depth(const stage_ctx_t *ctx, stage_kind_t kind);

/* The endpoint of actor index of a stage ("inproc://kasa-1-crediter-0"). */
void stage_endpoint(const stage_ctx_t *ctx, stage_kind_t kind, int index, char *buf, size_t len);

/* How many actors run stage kind (ctx->lockers / crediters / notifiers / accounts, at least 1). */
int stage_count(const stage_ctx_t *ctx, stage_kind_t kind);

/* The one routing rule of the pipeline: which actor of stage kind handles a deposit.
 *   crediter: login % crediters — every credit of one login goes to the same worker, which
 *             handles one deposit at a time: no MT5 login is credited by two workers at once.
 *   locker, notifier: stage_tx_hash(tx_id) % count — stable across runs, so a deposit is only
 *             ever handled by one locker (one notifier) whether it comes from a webhook, an admin
 *             retry or a restart's resume.
 * Returns 0..count-1. */
int stage_route(const stage_ctx_t *ctx, stage_kind_t kind, const char *tx_id, uint64_t login);

/* stage_route(ctx, STAGE_CREDITER, NULL, login). */
int stage_crediter_of(const stage_ctx_t *ctx, uint64_t login);

/* A stable 64-bit hash of a transaction id (FNV-1a with a final mix; the same in every run and on
 * every host: changing it changes which locker / notifier a deposit goes to, which is only safe
 * while the pipeline is stopped). */
uint64_t stage_tx_hash(const char *tx_id);

/* A PULL socket bound at endpoint / a PUSH socket connected to it, both with STAGE_HWM. NULL on error. */
zsock_t *stage_pull_new(const char *endpoint);
zsock_t *stage_push_new(const char *endpoint);

/* Sends one message (one frame), blocking while the receiver is full. 0, or -1 (context ending). */
int stage_send(zsock_t *push, const void *bytes, size_t len);

/* What a stage plugs into the loop. */
typedef struct {
    /* Handles item: 0 when done with it (it is removed), or > 0 to be retried after that many ms. */
    int64_t (*handle)(void *arg, workq_item_t *item);
    /* Ordering key of a message (0 for none); NULL for none. */
    uint64_t (*key)(void *arg, const uint8_t *bytes, size_t len);
    /* Called every loop turn when nothing is due, and also while items are due once the time it
     * last asked for has come (so a busy stage still runs it); returns ms until it wants to run
     * again (-1: only when nothing is due). It may add work to q (workq_push; q may be full). NULL
     * for none. The crediter pings idle MT5 sessions here; the locker queues PENDING follow-ups. */
    int64_t (*idle)(void *arg, workq_t *q, int64_t now_ms);
    /* Called on each message as it is read, before it is queued: returns 1 when the stage handed it
     * to another actor of the same stage (a blocking send: it is not queued here), else 0. NULL
     * for none. The first notifier routes what reaches it for the other notifiers here. */
    int (*forward)(void *arg, const uint8_t *bytes, size_t len);
} stage_ops_t;

/* Runs the stage until $TERM on pipe (or the context ends). Owns nothing it is given. When depth is
 * not NULL it holds q's size after every change (for stage_depth). */
void stage_loop(zsock_t *pipe, zsock_t *pull, workq_t *q, const stage_ops_t *ops, void *arg, _Atomic int *depth);

/* Waits for $TERM on pipe (an actor whose start failed, so its creator can read why first). */
void stage_wait_term(zsock_t *pipe);

/* Monotonic milliseconds. */
int64_t stage_mono_ms(void);

/* Decodes a message into *r (heap-free); 0 or -1 (logged as event=stage.bad_message). */
int stage_decode(const uint8_t *bytes, size_t len, record_t *r, const char *stage);

/* Decodes item into *seen and reads its deposit into *e. 0 when the deposit is in state want and
 * the journal works; -1 when there is nothing for the stage to do (a bad message, or the deposit
 * moved on meanwhile, or the journal failed). */
int stage_fetch(const stage_ctx_t *ctx, const workq_item_t *item, const char *stage, deposit_state_t want,
                record_t *seen, registry_entry_t *e);

/* Fills r as the deposit record of event ev for tx_id, with reason (NULL for none). */
void stage_event_record(record_t *r, const char *tx_id, deposit_event_t ev, const char *reason);

/* Journals r through the registry. When that moves the deposit and brings about effect (a
 * DEPOSIT_EFFECT_* bit), the journaled record goes on to next; a failed handoff is logged as
 * event=STAGE.handoff_failed (a restart resumes it). effect 0 and next NULL hand nothing on.
 * Returns the registry's answer; err says why when it is not REGISTRY_MOVED. */
registry_result_t stage_commit(const stage_ctx_t *ctx, record_t *r, unsigned effect, zsock_t *next,
                               const char *stage, char *err, size_t errlen);

/* A seed for a stage's backoff jitter (workq_backoff_ms): differs between stages and runs; never 0. */
uint64_t stage_seed(const void *self);

/* What a stage actor plugs into stage_actor_new(); static for the actor's life. */
typedef struct {
    stage_kind_t kind;
    const char *name;     /* "locker": the start of every start error (a crediter's adds its index) */
    stage_ops_t ops;      /* called with the state */
    size_t state_size;    /* the stage's state, zeroed, owned by the actor */
    /* Opens what the stage needs once its socket is bound: 0, or -1 with a reason in err (or none). */
    int (*init)(void *state, const stage_ctx_t *ctx, int index, char *err, size_t errlen);
    /* Releases what the state holds (not the state itself), whether init ran, failed, or never ran. */
    void (*destroy)(void *state);
} stage_def_t;

/* Starts the stage actor def (index: which of the stage's actors, 0..count-1): binds its PULL socket, runs init
 * on fresh state, then stage_loop() until $TERM, then destroy. Returns once it is running, or
 * NULL with the reason in err (init's, else "NAME: cannot bind ENDPOINT" or "NAME: cannot start"). */
zactor_t *stage_actor_new(const stage_ctx_t *ctx, const stage_def_t *def, int index, char *err, size_t errlen);

#endif
