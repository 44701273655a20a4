/* pipeline.c — see pipeline.h. Wires the stages together and owns the entry points that other
 * threads call (ingest, link, admin actions, queries).
 *
 *   HTTP threads ──(PUSH, under send_lock)──▶ locker[hash(tx) % L] ──▶ crediter[login % C]
 *       ──▶ notifier 0 ──(its share stays; the rest by hash(tx) % N)──▶ notifier[hash(tx) % N]
 *
 * One routing rule for every stage (stage_route): a deposit always reaches the same locker and the
 * same notifier (a stable hash of its transaction id), and its login's crediter, whoever sends it —
 * a webhook, an admin action or the restart's resume.
 * Every arrow is an inproc PUSH/PULL pair carrying the durable msgpack record. The sockets the HTTP
 * threads (and the restart) use are owned by the pipeline and shared under send_lock: a ZeroMQ
 * socket is not thread-safe, but it may be used from any thread provided only one thread uses it at a
 * time and there is a full memory barrier between users — the mutex gives both. A send blocks while
 * the locker's queue is full (back-pressure reaches the webhook, which Cobo retries); it never drops.
 * Each stage actor owns its own PUSH sockets to the next stage (never this mutex), so a stage that
 * blocks on a full downstream queue cannot stall anyone who is needed to drain it. */
#include "actors/pipeline.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "actors/checkpoint.h"
#include "actors/claims.h"
#include "actors/crediter.h"
#include "actors/desk.h"
#include "actors/ingress.h"
#include "actors/locker.h"
#include "actors/rates.h"
#include "actors/shared.h"
#include "actors/notifier.h"
#include "actors/registry.h"
#include "actors/stage.h"
#include "actors/wdshared.h"
#include "actors/withdrawals.h"
#include "schema/chainaddr.h"
#include "actors/withdrawer.h"
#include "schema/log.h"

struct pipeline_t {
    config_t cfg;             /* a private copy: the stages read it for the pipeline's life */
    stage_gauges_t gauges;    /* the stages' work-list depths (ctx.gauges) */
    rates_t *rates;           /* live rates, when a rule is live (ctx.rates) */
    claims_t *claims;         /* cluster mode's claims (ctx.claims), NULL on a single node */
    shared_t *shared;         /* cluster mode's shared facts (ctx.shared), NULL on a single node */
    wdshared_t *wdshared;     /* cluster mode's shared withdrawals (ctx.wdshared), NULL on a single node */
    journal_t *journal;
    registry_t *registry;
    stage_ctx_t ctx;
    zactor_t *locker[STAGE_MAX_LOCKERS];
    zactor_t *crediter[STAGE_MAX_CREDITERS];
    zactor_t *notifier[STAGE_MAX_NOTIFIERS];
    pthread_mutex_t send_lock;    /* also guards ignored[] */
    char ignored[64][80];         /* transactions journaled as IGNORED lately (a ring: each once) */
    size_t ignored_next;
    zsock_t *to_locker[STAGE_MAX_LOCKERS];
    zsock_t *to_crediter[STAGE_MAX_CREDITERS];
    zsock_t *to_notifier[STAGE_MAX_NOTIFIERS];
    withdrawals_t *withdrawals;     /* every withdrawal (actors/withdrawals.h) */
    zactor_t *withdrawer;
    zsock_t *to_withdrawer;         /* under send_lock */
};

static atomic_uint s_instances;

/* Hands a durable record to the stage its effects name. From any non-actor thread. */
static void s_hand_on(pipeline_t *self, unsigned effects, const char *tx_id, uint64_t login,
                      const uint8_t *bytes, size_t len)
{
    zsock_t *to = NULL;
    if (effects & DEPOSIT_EFFECT_LOCK)
        to = self->to_locker[stage_route(&self->ctx, STAGE_LOCKER, tx_id, login)];
    else if (effects & DEPOSIT_EFFECT_CREDIT)
        to = self->to_crediter[stage_route(&self->ctx, STAGE_CREDITER, tx_id, login)];
    else if (effects & DEPOSIT_EFFECT_NOTIFY)
        to = self->to_notifier[stage_route(&self->ctx, STAGE_NOTIFIER, tx_id, login)];
    if (!to)
        return;
    pthread_mutex_lock(&self->send_lock);
    int rc = stage_send(to, bytes, len);
    pthread_mutex_unlock(&self->send_lock);
    if (rc != 0)
        log_warn("pipeline.handoff_failed", "tx=%s (resumes on restart)", tx_id);
}

typedef struct {
    char (*ids)[80];
    size_t count, cap;
    size_t seen;
} s_resume_list_t;

/* 1 for a credited deposit whose credit followed an ambiguous attempt (attempt 2 or later) within
 * the last day: the crediter searches it once more for a second deal (crediter.h). */
static int s_needs_check(const registry_entry_t *e)
{
    return (e->view.state == DEPOSIT_CREDITED || e->view.state == DEPOSIT_NOTIFIED) && e->attempts >= 2 &&
           !(e->alerts_raised & (1u << RECORD_ALERT_DOUBLE_CREDIT)) &&
           e->last_attempt_ms > (int64_t) time(NULL) * 1000 - 24LL * 3600 * 1000;
}

static void s_collect(void *arg, const registry_entry_t *e)
{
    s_resume_list_t *l = arg;
    l->seen++;
    registry_resume_t act = registry_resume_action(e);
    if (act != REGISTRY_RESUME_LOCK && act != REGISTRY_RESUME_CREDIT && act != REGISTRY_RESUME_RECONCILE &&
        act != REGISTRY_RESUME_NOTIFY && !s_needs_check(e))
        return;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char (*grown)[80] = realloc(l->ids, cap * sizeof *grown);
        if (!grown)
            return;   /* counted as not resumed; logged by the caller */
        l->ids = grown;
        l->cap = cap;
    }
    memcpy(l->ids[l->count++], e->view.tx_id, 80);
}

/* Hands every unfinished deposit back to its stage, oldest first. Returns how many. */
static size_t s_resume(pipeline_t *self, size_t *deposits)
{
    s_resume_list_t l = { 0 };
    registry_each(self->registry, 0, 0, s_collect, &l);   /* newest first: walk it backwards */
    *deposits = l.seen;
    size_t resumed = 0;
    for (size_t i = l.count; i > 0; i--) {
        registry_entry_t e;
        if (registry_get(self->registry, l.ids[i - 1], &e) != 0)
            continue;
        registry_resume_t act = registry_resume_action(&e);
        unsigned effects = act == REGISTRY_RESUME_LOCK     ? DEPOSIT_EFFECT_LOCK
                           : act == REGISTRY_RESUME_NOTIFY ? DEPOSIT_EFFECT_NOTIFY
                                                           : DEPOSIT_EFFECT_CREDIT;
        record_t r;
        registry_entry_record(&e, &r);
        uint8_t *bytes = NULL;
        size_t len = 0;
        char err[128];
        if (record_encode(&r, &bytes, &len, err, sizeof err) != 0) {
            log_error("pipeline.resume_failed", "tx=%s reason=\"%s\"", e.view.tx_id, err);
            continue;
        }
        log_info("deposit.resumed", "tx=%s state=%s action=\"%s\" attempts=%u login=%llu", e.view.tx_id,
                 deposit_state_name(e.view.state), registry_resume_name(act), e.attempts,
                 (unsigned long long) e.view.login);
        if (act == REGISTRY_RESUME_LOCK || act == REGISTRY_RESUME_CREDIT || act == REGISTRY_RESUME_RECONCILE ||
            act == REGISTRY_RESUME_NOTIFY)
            s_hand_on(self, effects, e.view.tx_id, e.view.login, bytes, len);
        if (s_needs_check(&e)) {
            log_info("deposit.resumed", "tx=%s state=%s action=\"check for a second deal\" attempts=%u",
                     e.view.tx_id, deposit_state_name(e.view.state), e.attempts);
            s_hand_on(self, DEPOSIT_EFFECT_CREDIT, e.view.tx_id, e.view.login, bytes, len);
        }
        free(bytes);
        resumed++;
    }
    free(l.ids);
    return resumed;
}

/* PUSH sockets to every actor of stage kind into socks. 0 or -1. */
static int s_connect(pipeline_t *self, stage_kind_t kind, zsock_t **socks)
{
    for (int i = 0; i < stage_count(&self->ctx, kind); i++) {
        char ep[96];
        stage_endpoint(&self->ctx, kind, i, ep, sizeof ep);
        socks[i] = stage_push_new(ep);
        if (!socks[i])
            return -1;
    }
    return 0;
}

static int s_start_stages(pipeline_t *self, char *err, size_t errlen)
{
    self->withdrawer = withdrawer_new(&self->ctx, err, errlen);
    if (!self->withdrawer)
        return -1;
    char ep[96];
    stage_endpoint(&self->ctx, STAGE_WITHDRAWER, 0, ep, sizeof ep);
    self->to_withdrawer = stage_push_new(ep);
    if (!self->to_withdrawer) {
        snprintf(err, errlen, "cannot connect the withdrawer's socket");
        return -1;
    }
    /* Downstream first, so every PUSH connects to a bound PULL (notifier 0, which connects to the
     * other notifiers, last of the notifiers). */
    for (int i = self->ctx.notifiers - 1; i >= 0; i--) {
        self->notifier[i] = notifier_new(&self->ctx, i, err, errlen);
        if (!self->notifier[i])
            return -1;
    }
    for (int i = 0; i < self->ctx.crediters; i++) {
        self->crediter[i] = crediter_new(&self->ctx, i, err, errlen);
        if (!self->crediter[i])
            return -1;
    }
    for (int i = 0; i < self->ctx.lockers; i++) {
        self->locker[i] = locker_new(&self->ctx, i, err, errlen);
        if (!self->locker[i])
            return -1;
    }
    if (s_connect(self, STAGE_LOCKER, self->to_locker) != 0 || s_connect(self, STAGE_CREDITER, self->to_crediter) != 0 ||
        s_connect(self, STAGE_NOTIFIER, self->to_notifier) != 0) {
        snprintf(err, errlen, "cannot connect the pipeline's sockets");
        return -1;
    }
    return 0;
}

static size_t s_resume_withdrawals(pipeline_t *self);

/* n clamped to 1..max. */
static int s_clamp(int n, int max)
{
    return n < 1 ? 1 : n > max ? max : n;
}

static int s_command(void *arg, const desk_request_t *req, char *err, size_t errlen);
static int s_wd_command(void *arg, const char *id, const char *action, const char *actor, const char *origin,
                        const char *reason, char *err, size_t errlen);
static void s_wd_hand_on_cb(void *arg, const char *id);

pipeline_t *pipeline_new(journal_t *journal, const config_t *cfg, char *err, size_t errlen)
{
    if (!journal || !cfg) {
        snprintf(err, errlen, "a journal and a configuration are required");
        return NULL;
    }
    pipeline_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    self->cfg = *cfg;
    self->journal = journal;
    pthread_mutex_init(&self->send_lock, NULL);
    /* The registry is rebuilt from the newest valid snapshot of cfg->journal_dir (the directory this
     * journal was opened on) and the journal after it (actors/checkpoint.h). */
    checkpoint_info_t info;
    char why[300];
    self->registry = checkpoint_restore(cfg->journal_dir, &checkpoint_registry, cfg, 0, &info, why, sizeof why);
    if (!self->registry) {
        snprintf(err, errlen, "replay of %s: %s", cfg->journal_dir, why);
        pipeline_destroy(&self);
        return NULL;
    }
    if (info.last_lsn > journal_durable_lsn(journal)) {
        snprintf(err, errlen, "%s holds records up to LSN %llu but the open journal only %llu: not the same journal",
                 cfg->journal_dir, (unsigned long long) info.last_lsn, (unsigned long long) journal_durable_lsn(journal));
        pipeline_destroy(&self);
        return NULL;
    }
    self->withdrawals = checkpoint_restore(cfg->journal_dir, &checkpoint_withdrawals, cfg, 0, NULL, why, sizeof why);
    if (!self->withdrawals) {
        snprintf(err, errlen, "replay of %s (withdrawals): %s", cfg->journal_dir, why);
        pipeline_destroy(&self);
        return NULL;
    }
    self->ctx.withdrawals = self->withdrawals;
    self->ctx.registry = self->registry;
    self->ctx.journal = journal;
    self->ctx.cfg = &self->cfg;
    self->ctx.gauges = &self->gauges;
    self->ctx.crediters = s_clamp(cfg->crediters, STAGE_MAX_CREDITERS);
    self->ctx.lockers = s_clamp(cfg->lockers, STAGE_MAX_LOCKERS);
    self->ctx.notifiers = s_clamp(cfg->notifiers, STAGE_MAX_NOTIFIERS);
    snprintf(self->ctx.prefix, sizeof self->ctx.prefix, "inproc://kasa-%d-%u", (int) getpid(),
             atomic_fetch_add(&s_instances, 1));
    self->ctx.mt5_timeout_ms = config_mt5_timeout_ms(cfg);
    self->ctx.cobo_timeout_ms = config_cobo_timeout_ms(cfg);
    self->ctx.telegram_timeout_ms = 10000;
    self->ctx.mt5_settle_ms = 1000 * (int64_t) (cfg->mt5_settle_s > 0 ? cfg->mt5_settle_s : CONFIG_DEFAULT_MT5_SETTLE_S);

    if (rates_needed(cfg)) {
        self->rates = rates_new(cfg, err, errlen);
        if (!self->rates) {
            pipeline_destroy(&self);
            return NULL;
        }
        self->ctx.rates = self->rates;
    }

    if (cfg->cluster) {
        self->claims = claims_new(cfg, self->ctx.mt5_settle_ms, err, errlen);
        if (!self->claims) {
            pipeline_destroy(&self);
            return NULL;
        }
        self->ctx.claims = self->claims;
        claims_on_command(self->claims, s_command, self);
        self->shared = shared_new(cfg, 2000, err, errlen);
        if (!self->shared) {
            pipeline_destroy(&self);
            return NULL;
        }
        self->ctx.shared = self->shared;
        self->wdshared = wdshared_new(self->shared, err, errlen);
        if (!self->wdshared) {
            pipeline_destroy(&self);
            return NULL;
        }
        self->ctx.wdshared = self->wdshared;
        claims_on_wd_command(self->claims, s_wd_command, self);
    }

    if (s_start_stages(self, err, errlen) != 0) {
        pipeline_destroy(&self);
        return NULL;
    }
    size_t deposits = 0;
    size_t resumed = s_resume(self, &deposits);
    resumed += s_resume_withdrawals(self);
    if (self->wdshared && wdshared_start(self->wdshared, self->withdrawals, journal, self->claims, s_wd_hand_on_cb,
                                         self, 1000) != 0) {
        snprintf(err, errlen, "cannot start the shared withdrawals' thread");
        pipeline_destroy(&self);
        return NULL;
    }
    log_info("pipeline.replayed", "deposits=%zu resumed=%zu links=%zu snapshot_lsn=%llu records=%ld last_lsn=%llu "
             "snapshots_skipped=%d lockers=%d crediters=%d notifiers=%d", deposits, resumed,
             registry_link_count(self->registry), (unsigned long long) info.snapshot_lsn, info.records,
             (unsigned long long) info.last_lsn, info.fallbacks, self->ctx.lockers, self->ctx.crediters,
             self->ctx.notifiers);
    return self;
}

void pipeline_destroy(pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pipeline_t *self = *self_p;
    wdshared_stop(self->wdshared);   /* its thread hands withdrawals on and reads the claims */
    /* Upstream first: a stage is stopped only after everyone who might block sending to it. */
    pthread_mutex_lock(&self->send_lock);
    for (int i = 0; i < STAGE_MAX_LOCKERS; i++)
        zsock_destroy(&self->to_locker[i]);
    for (int i = 0; i < STAGE_MAX_CREDITERS; i++)
        zsock_destroy(&self->to_crediter[i]);
    for (int i = 0; i < STAGE_MAX_NOTIFIERS; i++)
        zsock_destroy(&self->to_notifier[i]);
    zsock_destroy(&self->to_withdrawer);
    pthread_mutex_unlock(&self->send_lock);
    zactor_destroy(&self->withdrawer);
    for (int i = 0; i < STAGE_MAX_LOCKERS; i++)
        zactor_destroy(&self->locker[i]);
    for (int i = 0; i < STAGE_MAX_CREDITERS; i++)
        zactor_destroy(&self->crediter[i]);
    for (int i = 0; i < STAGE_MAX_NOTIFIERS; i++)   /* notifier 0 (which sends to the others) first */
        zactor_destroy(&self->notifier[i]);
    rates_destroy(&self->rates);   /* after the lockers, which read it */
    claims_destroy(&self->claims);   /* after the lockers and crediters, which use it */
    wdshared_destroy(&self->wdshared);   /* after the withdrawer, which writes it; before its pool's owner */
    shared_destroy(&self->shared);   /* after the lockers, which learn links */
    registry_destroy(&self->registry);
    withdrawals_destroy(&self->withdrawals);
    pthread_mutex_destroy(&self->send_lock);
    config_clear(&self->cfg);
    free(self);
    *self_p = NULL;
}

/* A webhook that contradicts how a deposit ended — Completed after REJECTED, Failed after CREDITED —
 * moves nothing, and a person must know: an ALERT record (completed_after_rejected or
 * failed_after_credit; once per deposit, see registry_alert), durable before Cobo's 200. If it
 * cannot be journaled the webhook gets 503, so Cobo's retry raises it again. */
static int s_webhook_alert(pipeline_t *self, const record_t *seen, char *err, size_t errlen)
{
    registry_entry_t e;
    if (registry_get(self->registry, seen->tx_id, &e) != 0)
        return 200;
    int rejected = e.view.state == DEPOSIT_REJECTED;
    record_t a;
    record_init(&a, RECORD_ALERT);
    snprintf(a.tx_id, sizeof a.tx_id, "%s", e.view.tx_id);
    snprintf(a.alert, sizeof a.alert, "%s",
             record_alert_name(rejected ? RECORD_ALERT_COMPLETED_AFTER_REJECTED : RECORD_ALERT_FAILED_AFTER_CREDIT));
    a.login = e.view.login;
    a.ticket = e.view.ticket;
    a.credit_minor = e.view.credit_minor;
    a.digits = e.view.digits;
    snprintf(a.reason, sizeof a.reason, "Cobo reports %.32s for a deposit already %s%s%.80s", seen->status,
             deposit_state_name(e.view.state), e.view.reason[0] ? ": " : "", e.view.reason);
    registry_result_t res = registry_alert(self->registry, self->journal, &a, err, errlen);
    return res == REGISTRY_MOVED || res == REGISTRY_SAME ? 200 : 503;
}

/* cobo_own_fn: one of the deposit addresses kasa gave out, or one of the broker's own? */
static int s_own_address(void *arg, const char *address)
{
    pipeline_t *self = arg;
    return registry_address_owner(self->registry, &self->cfg, address);
}

/* A transaction into an address that is not a deposit: journaled once (RECORD_IGNORED with why),
 * never credited. 200, or 503 when the journal cannot take it (Cobo sends it again). */
static int s_ignore(pipeline_t *self, const cobo_tx_t *tx, cobo_kind_t kind, char *err, size_t errlen)
{
    char why[160];
    if (kind == COBO_KIND_OWN && tx->cobo_category[0])
        snprintf(why, sizeof why, "the broker's own: Cobo marks it %.60s (Fee Station)", tx->cobo_category);
    else if (kind == COBO_KIND_OWN)
        snprintf(why, sizeof why, "the broker's own: sent from %.100s (KASA_OWN_ADDRESSES)", tx->source_address);
    else
        snprintf(why, sizeof why, "a sweep: %.40s from %.100s", tx->source_type[0] ? tx->source_type : "sent",
                 tx->source_address[0] ? tx->source_address : "an address of the organisation");
    snprintf(err, errlen, "not a deposit: %s", why);
    log_info("deposit.ignored", "tx=%s kind=%s type=%s status=%s reason=\"%s\"", tx->tx_id, cobo_kind_name(kind),
             tx->type, tx->status, why);
    pthread_mutex_lock(&self->send_lock);
    int seen = 0;
    for (size_t i = 0; i < sizeof self->ignored / sizeof self->ignored[0] && !seen; i++)
        seen = strcmp(self->ignored[i], tx->tx_id) == 0;
    pthread_mutex_unlock(&self->send_lock);
    if (seen)
        return 200;
    record_t r;
    record_init(&r, RECORD_IGNORED);
    r.time_ms = (int64_t) time(NULL) * 1000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx->tx_id);
    snprintf(r.address, sizeof r.address, "%s", tx->address);
    snprintf(r.amount, sizeof r.amount, "%s", tx->amount);
    snprintf(r.token_id, sizeof r.token_id, "%s", tx->token_id);
    snprintf(r.chain_id, sizeof r.chain_id, "%s", tx->chain_id);
    snprintf(r.status, sizeof r.status, "%s", tx->status);
    snprintf(r.reason, sizeof r.reason, "%s", why);
    uint8_t *bytes = NULL;
    size_t len = 0;
    char eerr[96];
    if (record_encode(&r, &bytes, &len, eerr, sizeof eerr) != 0)
        return 200;   /* nothing kasa could journal of it; it is logged */
    uint64_t lsn = journal_append(self->journal, bytes, len);
    free(bytes);
    if (!lsn)
        return 503;
    pthread_mutex_lock(&self->send_lock);
    snprintf(self->ignored[self->ignored_next++ % (sizeof self->ignored / sizeof self->ignored[0])],
             sizeof self->ignored[0], "%s", tx->tx_id);
    pthread_mutex_unlock(&self->send_lock);
    return 200;
}

struct pipeline_pending_t {
    record_t r;
    registry_result_t res;
    unsigned effects;
    uint64_t lsn;
    uint8_t *bytes;
    size_t len;
};

int pipeline_ingest_begin(pipeline_t *self, const cobo_tx_t *tx, pipeline_pending_t **pending, char *err,
                          size_t errlen)
{
    *pending = NULL;
    if (registry_failed(self->registry)) {
        snprintf(err, errlen, "journal failed: not accepting");
        return 503;
    }
    cobo_kind_t kind = cobo_tx_kind(tx, s_own_address, self);
    if (kind == COBO_KIND_SWEEP || kind == COBO_KIND_OWN)   /* never a deposit, whatever its address */
        return s_ignore(self, tx, kind, err, errlen);
    if (kind != COBO_KIND_DEPOSIT) {
        snprintf(err, errlen, "not a deposit: %s (type %.24s)", cobo_kind_name(kind), tx->type);
        log_info("deposit.ignored", "tx=%s kind=%s type=%s status=%s", tx->tx_id, cobo_kind_name(kind), tx->type,
                 tx->status);
        return 200;
    }
    pipeline_pending_t *p = malloc(sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return 503;
    }
    uint64_t login = registry_address_login(self->registry, tx->address);
    if (ingress_record(tx, login, &p->r, err, errlen) != 0) {
        log_warn("deposit.ignored", "tx=%s reason=\"%s\"", tx->tx_id, err);
        free(p);
        return 200;   /* nothing a deposit can be made of; a retry would not change that */
    }
    p->bytes = NULL;
    p->len = 0;
    p->effects = 0;
    p->res = registry_commit_begin(self->registry, self->journal, &p->r, &p->effects, &p->bytes, &p->len, &p->lsn,
                                   err, errlen);
    *pending = p;
    return 0;
}

uint64_t pipeline_pending_lsn(const pipeline_pending_t *pending)
{
    return pending ? pending->lsn : 0;
}

int pipeline_ingest_end(pipeline_t *self, pipeline_pending_t **pending, int durable_rc, int live, char *err,
                        size_t errlen)
{
    pipeline_pending_t *p = *pending;
    *pending = NULL;
    registry_result_t res = p->res;
    if (p->lsn)
        res = registry_commit_end(self->registry, &p->r, res, p->lsn, durable_rc, &p->bytes, err, errlen);
    int code;
    switch (res) {
    case REGISTRY_MOVED:
        if (live)
            s_hand_on(self, p->effects, p->r.tx_id, p->r.login, p->bytes, p->len);
        else if (p->effects & (DEPOSIT_EFFECT_LOCK | DEPOSIT_EFFECT_CREDIT | DEPOSIT_EFFECT_NOTIFY))
            log_warn("pipeline.handoff_failed", "tx=%s (kasa is stopping; resumes on restart)", p->r.tx_id);
        code = 201;
        break;
    case REGISTRY_SAME:
    case REGISTRY_ILLEGAL:
        code = live && (p->effects & DEPOSIT_EFFECT_ALERT) ? s_webhook_alert(self, &p->r, err, errlen) : 200;
        break;
    default:
        code = 503;
        break;
    }
    free(p->bytes);
    free(p);
    return code;
}

int pipeline_ingest(pipeline_t *self, const cobo_tx_t *tx, char *err, size_t errlen)
{
    pipeline_pending_t *p = NULL;
    int code = pipeline_ingest_begin(self, tx, &p, err, errlen);
    if (!p)
        return code;
    int rc = p->lsn ? journal_wait(self->journal, p->lsn) : 0;
    return pipeline_ingest_end(self, &p, rc, 1, err, errlen);
}

journal_t *pipeline_journal(pipeline_t *self)
{
    return self->journal;
}

/* The action applied on this node (pipeline_admin's 0, 1, -1). */
static int s_admin_here(pipeline_t *self, const desk_request_t *req, char *err, size_t errlen)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    unsigned effects = 0;
    registry_result_t res = desk_act(self->registry, self->journal, &self->cfg, req, &effects, &bytes, &len, err, errlen);
    if (res == REGISTRY_SAME)
        return 1;
    /* a refused reject may still have moved the deposit: its credit was found in MT5 (desk_act) */
    if (bytes)
        s_hand_on(self, effects, req->tx_id, 0, bytes, len);
    free(bytes);
    /* cluster mode: a deposit the desk finished (rejected, or its credit found) releases its claim
     * final, as the locker and the crediter do, or a node taking the claim over later would run
     * it again from its own journal (held again, noticed again) */
    registry_entry_t e;
    if (self->claims && registry_get(self->registry, req->tx_id, &e) == 0 &&
        (e.view.state == DEPOSIT_REJECTED || e.view.state == DEPOSIT_CREDITED))
        claims_release(self->claims, req->tx_id);
    return res == REGISTRY_MOVED ? 0 : -1;
}

int pipeline_admin_cmd(pipeline_t *self, const desk_request_t *req, char command_id[33], char *err, size_t errlen)
{
    command_id[0] = '\0';
    if (self->claims && req && req->tx_id) {   /* cluster mode: the claim's holder carries it out */
        int route = claims_command_submit(self->claims, req, command_id, err, errlen);
        if (route == CLAIMS_ROUTE_SENT)
            return 2;
        if (route < 0)
            return -1;
    }
    return s_admin_here(self, req, err, errlen);
}

int pipeline_admin(pipeline_t *self, const desk_request_t *req, char *err, size_t errlen)
{
    char id[33];
    return pipeline_admin_cmd(self, req, id, err, errlen);
}

/* The claims' command handler (claims_on_command): an action another node sent for a deposit this
 * node holds, applied here once the deposit is where actions apply (HELD). */
static int s_command(void *arg, const desk_request_t *req, char *err, size_t errlen)
{
    pipeline_t *self = arg;
    registry_entry_t e;
    uint64_t first_lsn = 0;
    if (registry_lookup(self->registry, req->tx_id, &e, &first_lsn) != 1)
        return 2;
    /* carried out here already (this node journaled it, then died before the command was marked
     * done): the same outcome again, never the action twice */
    int seen = desk_journaled(self->cfg.journal_dir, first_lsn, req);
    if (seen < 0)
        return 2;
    if (seen) {
        log_info("claims.command_journaled", "tx=%s action=%s actor=%s reason=\"%s\"", req->tx_id,
                 desk_action_name(req->action), req->actor, req->reason);
        return req->action == DESK_APPROVE && e.view.state == DEPOSIT_HELD ? 1 : 0;
    }
    if (e.view.state != DEPOSIT_HELD && !deposit_state_is_final(e.view.state))
        return 2;   /* still on its way (a take-over re-runs it): the action waits until it is held */
    return s_admin_here(self, req, err, errlen);
}

int pipeline_command(pipeline_t *self, const char *command_id, char *json, size_t len)
{
    if (!self->claims)
        return 0;
    claims_command_t c;
    int rc = claims_command_get(self->claims, command_id, &c);
    if (rc <= 0)
        return rc;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"id\":");
    jbuf_str(&b, command_id);
    jbuf_puts(&b, ",\"transaction_id\":");
    jbuf_str(&b, c.tx_id);
    jbuf_puts(&b, ",\"action\":");
    jbuf_str(&b, c.action);
    jbuf_puts(&b, ",\"state\":");
    jbuf_str(&b, c.state);
    jbuf_puts(&b, ",\"node\":");
    jbuf_str(&b, c.node[0] ? c.node : NULL);
    jbuf_puts(&b, ",\"from_node\":");
    jbuf_str(&b, c.from_node);
    jbuf_printf(&b, ",\"ok\":%s,\"result\":", c.ok ? "true" : "false");
    jbuf_str(&b, c.result[0] ? c.result : NULL);
    jbuf_puts(&b, "}");
    char *text = jbuf_take(&b);
    snprintf(json, len, "%s", text ? text : "{}");
    free(text);
    return 1;
}

int pipeline_link(pipeline_t *self, const char *address, const char *chain_id, uint64_t login, const char *actor,
                  char *err, size_t errlen)
{
    /* Cluster mode: MongoDB has the link (majority) before this journal does, so no node can meet
     * a payment to the address before it can learn whose it is (actors/shared.h). */
    if (self->shared && address && login &&
        shared_link_put(self->shared, address, chain_id, login, err, errlen) != SHARED_FOUND)
        return -1;
    return registry_link(self->registry, self->journal, address, chain_id, login, actor, err, errlen);
}

int pipeline_link_find(pipeline_t *self, uint64_t login, const char *chain_id, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    if (!self->shared)
        return 1;
    return (int) shared_pair_learn(self->shared, self->registry, self->journal, login, chain_id, out, outlen, err,
                                   errlen);
}

struct shared_t *pipeline_shared(pipeline_t *self)
{
    return self->shared;
}

struct claims_t *pipeline_claims(pipeline_t *self)
{
    return self->claims;
}

uint64_t pipeline_address_login(pipeline_t *self, const char *address)
{
    return registry_address_login(self->registry, address);
}

typedef struct {
    void (*fn)(void *arg, const deposit_view_t *d);
    void *arg;
} s_view_fn_t;

static void s_view(void *arg, const registry_entry_t *e)
{
    s_view_fn_t *v = arg;
    v->fn(v->arg, &e->view);
}

int pipeline_deposits(pipeline_t *self, uint64_t login, int limit,
                      void (*fn)(void *arg, const deposit_view_t *d), void *arg)
{
    s_view_fn_t v = { fn, arg };
    return registry_each(self->registry, login, limit, s_view, &v);
}

int pipeline_deposit(pipeline_t *self, const char *tx_id, deposit_view_t *out)
{
    registry_entry_t e;
    if (registry_get(self->registry, tx_id, &e) != 0)
        return -1;
    *out = e.view;
    return 0;
}

void pipeline_view_json(jbuf_t *b, const deposit_view_t *d)
{
    jbuf_puts(b, "\"id\":");
    jbuf_str(b, d->tx_id);
    jbuf_puts(b, ",\"state\":");
    jbuf_str(b, deposit_state_name(d->state));
    jbuf_puts(b, ",\"status\":");
    jbuf_str(b, d->status);
    jbuf_printf(b, ",\"confirmations\":%d,\"threshold\":%d", (int) d->confirmations, (int) d->threshold);
    jbuf_puts(b, ",\"token\":");
    jbuf_str(b, d->token_id);
    jbuf_puts(b, ",\"chain\":");
    jbuf_str(b, d->chain_id);
    jbuf_puts(b, ",\"address\":");
    jbuf_str(b, d->address);
    jbuf_puts(b, ",\"amount\":");
    jbuf_str(b, d->amount);
}

registry_t *pipeline_registry(pipeline_t *self)
{
    return self->registry;
}

int pipeline_stage_depth(pipeline_t *self, int kind, int *actors)
{
    if (actors)
        *actors = stage_count(&self->ctx, (stage_kind_t) kind);
    return stage_depth(&self->ctx, (stage_kind_t) kind);
}

/* ---- withdrawals ----------------------------------------------------------------------------------- */

/* Hands withdrawal id to the withdrawer (its record, from == to == its state). From any thread. */
static void s_wd_hand_on(pipeline_t *self, const withdrawal_view_t *w)
{
    record_t r;
    withdrawals_event_record(&r, w->id, WITHDRAWAL_EV_REQUEST, NULL);
    r.wfrom = r.wto = w->state;
    r.login = w->login;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[96];
    if (record_encode(&r, &bytes, &len, err, sizeof err) != 0)
        return;
    pthread_mutex_lock(&self->send_lock);
    int rc = self->to_withdrawer ? stage_send(self->to_withdrawer, bytes, len) : -1;
    pthread_mutex_unlock(&self->send_lock);
    free(bytes);
    if (rc != 0)
        log_warn("pipeline.handoff_failed", "id=%s (resumes on restart)", w->id);
}

static void s_wd_hand_on_id(pipeline_t *self, const char *id)
{
    withdrawal_view_t w;
    if (withdrawals_get(self->withdrawals, id, &w) == 0)
        s_wd_hand_on(self, &w);
}

/* The shared withdrawals' hand-on (wdshared_start): one whose claim ran out, for the withdrawer. */
static void s_wd_hand_on_cb(void *arg, const char *id)
{
    s_wd_hand_on_id(arg, id);
}

typedef struct {
    char (*ids)[24];
    size_t count, cap;
} s_wd_list_t;

static void s_wd_collect(void *arg, const withdrawal_view_t *w)
{
    s_wd_list_t *l = arg;
    if (w->state != WITHDRAWAL_REQUESTED && w->state != WITHDRAWAL_DEBITED && w->state != WITHDRAWAL_APPROVED &&
        w->state != WITHDRAWAL_SENT && w->state != WITHDRAWAL_REFUNDING)
        return;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char (*grown)[24] = realloc(l->ids, cap * sizeof *grown);
        if (!grown)
            return;
        l->ids = grown;
        l->cap = cap;
    }
    memcpy(l->ids[l->count++], w->id, 24);
}

/* Hands every unfinished withdrawal back to the withdrawer, oldest first. Returns how many. */
static size_t s_resume_withdrawals(pipeline_t *self)
{
    s_wd_list_t l = { 0 };
    withdrawals_each(self->withdrawals, 0, 0, s_wd_collect, &l);
    for (size_t i = l.count; i > 0; i--) {
        withdrawal_view_t w;
        if (withdrawals_get(self->withdrawals, l.ids[i - 1], &w) != 0)
            continue;
        log_info("withdrawal.resumed", "id=%s state=%s debit_attempts=%u transfer_attempts=%u refund_attempts=%u",
                 w.id, withdrawal_state_name(w.state), w.debit_attempts, w.transfer_attempts, w.refund_attempts);
        s_wd_hand_on(self, &w);
    }
    free(l.ids);
    return l.count;
}

withdrawals_t *pipeline_withdrawals(pipeline_t *self)
{
    return self->withdrawals;
}

/* 1 if address may receive token_id: an address of its chain (schema/chainaddr.h: TRON base58check,
 * EVM with its EIP-55 checksum), not an address kasa takes deposits on, nor the wallet paying. */
static int s_wd_address_ok(pipeline_t *self, const char *token_id, const char *address, char *err, size_t errlen)
{
    char why[160];
    if (chainaddr_check_for_token(token_id, address ? address : "", why, sizeof why) != 0) {
        snprintf(err, errlen, "the destination: %s", why);
        return 0;
    }
    if (registry_address_login(self->registry, address) != 0 ||
        (self->cfg.cobo_withdraw_address[0] && strcasecmp(self->cfg.cobo_withdraw_address, address) == 0)) {
        snprintf(err, errlen, "the destination is one of this broker's own deposit addresses");
        return 0;
    }
    return 1;
}

int pipeline_withdraw_quote(pipeline_t *self, const pipeline_withdraw_ask_t *ask, withdrawal_quote_t *q, char *err,
                            size_t errlen)
{
    memset(q, 0, sizeof *q);
    const withdrawal_rule_t *rule = withdrawal_rules_find(&self->cfg.withdraw, ask->token_id, ask->currency);
    if (!rule) {
        snprintf(err, errlen, "withdrawals of %.40s are not offered for %.16s accounts", ask->token_id ? ask->token_id : "",
                 ask->currency ? ask->currency : "");
        return -1;
    }
    money_atto_t amount = 0;
    char why[96];
    if (money_parse(ask->amount, &amount, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    int64_t now = (int64_t) time(NULL) * 1000;
    int64_t today = withdrawals_asked_since(self->withdrawals, ask->login, now - now % 86400000);
    if (self->wdshared) {
        /* cluster mode: today's requests on every node (MongoDB's documents), or this node's own when
         * more (a request whose document MongoDB has not taken yet); the MT5 debit is the balance's check */
        int64_t all = 0;
        if (wdshared_asked_since(self->wdshared, ask->login, now - now % 86400000, &all) != 0) {
            snprintf(err, errlen, "today's withdrawals on every node cannot be read now (MongoDB does not answer); "
                     "try again");
            return -2;
        }
        if (all > today)
            today = all;
    }
    if (withdrawal_quote(amount, ask->digits, rule, ask->token_decimals, today, q, err, errlen) != 0)
        return -1;
    if (!s_wd_address_ok(self, ask->token_id, ask->address, err, errlen))
        return -1;
    if (q->amount_minor > ask->free_margin_minor) {
        char free_text[48];
        money_format_minor(ask->free_margin_minor, ask->digits, free_text, sizeof free_text);
        snprintf(err, errlen, "not enough free margin: %s %s can be withdrawn now without leaving open positions "
                 "short of margin", ask->free_margin_minor > 0 ? free_text : "0", ask->currency);
        return -1;
    }
    return 0;
}

int pipeline_withdraw(pipeline_t *self, const pipeline_withdraw_ask_t *ask, const unsigned char rnd[10],
                      char id[24], withdrawal_quote_t *q, char *err, size_t errlen)
{
    id[0] = '\0';
    int qrc = pipeline_withdraw_quote(self, ask, q, err, errlen);
    if (qrc != 0)
        return qrc == -2 ? 503 : 422;
    record_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "no memory");
        return 503;
    }
    char wid[WITHDRAWAL_ID_HEX + 2];
    withdrawal_id_make(rnd, wid);
    if (self->claims) {
        /* cluster mode: this node claims the new id first (nobody held it: no settle time); nothing is
         * journaled when MongoDB does not answer */
        char holder[64];
        if (claims_acquire(self->claims, wid, 1, holder) != CLAIMS_HELD) {
            free(r);
            snprintf(err, errlen, "the withdrawal cannot be recorded in MongoDB now; try again");
            return 503;
        }
    }
    withdrawals_event_record(r, wid, WITHDRAWAL_EV_REQUEST, NULL);
    r->login = ask->login;
    snprintf(r->token_id, sizeof r->token_id, "%s", ask->token_id);
    snprintf(r->chain_id, sizeof r->chain_id, "%s", ask->chain_id ? ask->chain_id : "");
    snprintf(r->address, sizeof r->address, "%s", ask->address);
    snprintf(r->amount, sizeof r->amount, "%s", q->token_text);
    snprintf(r->fee, sizeof r->fee, "%s", q->fee_text);
    r->credit_minor = q->amount_minor;
    r->digits = q->digits;
    snprintf(r->currency, sizeof r->currency, "%s", ask->currency);
    snprintf(r->actor, sizeof r->actor, "%s", ask->actor ? ask->actor : "");
    snprintf(r->origin, sizeof r->origin, "%s", ask->origin ? ask->origin : "");
    unsigned fx = 0;
    registry_result_t res = withdrawals_commit(self->withdrawals, self->journal, r, &fx, err, errlen);
    free(r);
    if (res != REGISTRY_MOVED)
        return res == REGISTRY_ILLEGAL ? 409 : 503;
    snprintf(id, 24, "%s", wid);
    withdrawal_view_t w;
    if (self->wdshared && withdrawals_get(self->withdrawals, wid, &w) == 0 &&
        wdshared_put(self->wdshared, &w, claims_epoch(self->claims, wid)) != 1)
        /* journaled here and claimed: the withdrawer writes it to MongoDB before the debit */
        log_warn("withdrawal.not_shared", "id=%s next=\"the withdrawer writes it before the debit\"", wid);
    s_wd_hand_on_id(self, wid);
    return 201;
}

int pipeline_withdraw_act(pipeline_t *self, const char *id, const char *action, const char *actor, const char *origin,
                          const char *reason, char *err, size_t errlen)
{
    char command_id[33];
    return pipeline_withdraw_act_cmd(self, id, action, actor, origin, reason, command_id, err, errlen);
}

/* The action on this node (pipeline_withdraw_act's 0, 1, -1). */
static int s_wd_act_here(pipeline_t *self, const char *id, const char *action, const char *actor, const char *origin,
                         const char *reason, char *err, size_t errlen)
{
    withdrawal_view_t w;
    if (withdrawals_get(self->withdrawals, id, &w) != 0) {
        snprintf(err, errlen, "no withdrawal %.30s", id ? id : "");
        return -1;
    }
    unsigned fx = 0;
    int noted = 0;
    registry_result_t res = withdrawals_desk(self->withdrawals, self->journal, id, action, actor, origin, reason,
                                             withdrawer_approvals_needed(&self->cfg, &w), &fx, &noted, err, errlen);
    if (res == REGISTRY_SAME && noted)
        return 1;
    if (res != REGISTRY_MOVED)
        return -1;
    if (fx & (WITHDRAWAL_EFFECT_TRANSFER | WITHDRAWAL_EFFECT_REFUND) || self->wdshared)
        s_wd_hand_on_id(self, id);   /* cluster mode: always, so the withdrawer writes MongoDB's document */
    return 0;
}

int pipeline_withdraw_act_cmd(pipeline_t *self, const char *id, const char *action, const char *actor,
                              const char *origin, const char *reason, char command_id[33], char *err, size_t errlen)
{
    command_id[0] = '\0';
    if (self->claims && id && withdrawal_id_valid(id)) {   /* cluster mode: the claim's holder carries it out */
        if (!reason || !reason[0]) {
            snprintf(err, errlen, "a reason is required: one line, at most 150 bytes");
            return -1;
        }
        int route = claims_wd_command_submit(self->claims, id, action, actor, origin, reason, command_id, err, errlen);
        if (route == CLAIMS_ROUTE_SENT)
            return 2;
        if (route < 0)
            return -1;
    }
    return s_wd_act_here(self, id, action, actor, origin, reason, err, errlen);
}

/* The claims' handler of a withdrawal's command another node sent (claims_on_wd_command): applied
 * here once the withdrawal is where the action applies; "not yet" while it is on its way (a debit
 * not yet made, a transfer whose outcome Cobo has not given). */
static int s_wd_command(void *arg, const char *id, const char *action, const char *actor, const char *origin,
                        const char *reason, char *err, size_t errlen)
{
    pipeline_t *self = arg;
    withdrawal_view_t w;
    if (withdrawals_get(self->withdrawals, id, &w) != 0)
        return 2;
    /* carried out here before (a pass that journaled it and could not write MongoDB's document) */
    int again = 0;
    for (uint32_t i = 0; i < w.approvals && i < WITHDRAWALS_MAX_APPROVERS; i++)
        again |= strcmp(action, "approve") == 0 && strcmp(w.approvers[i], actor) == 0;
    again |= (strcmp(action, "reject") == 0 || strcmp(action, "refund") == 0) &&
             (w.state == WITHDRAWAL_REFUNDING || w.state == WITHDRAWAL_REFUNDED) && strstr(w.reason, action) == w.reason;
    int rc = 0;
    if (!again) {
        int decide = strcmp(action, "approve") == 0 || strcmp(action, "reject") == 0;
        if (!withdrawals_final(w.state) && ((decide && w.state == WITHDRAWAL_REQUESTED) ||
                                            (!decide && w.state != WITHDRAWAL_HELD)))
            return 2;
        rc = s_wd_act_here(self, id, action, actor, origin, reason, err, errlen);
        if (rc < 0)
            return rc;
    } else {
        rc = w.state == WITHDRAWAL_DEBITED ? 1 : 0;
    }
    /* the command is marked done only once MongoDB's document says so: a holder dying in between
     * leaves it for the next holder, who reads the document and carries it out on that */
    if (withdrawals_get(self->withdrawals, id, &w) != 0 ||
        wdshared_put(self->wdshared, &w, claims_epoch(self->claims, id)) != 1)
        return 2;
    return rc;
}

int pipeline_withdrawal_cobo(pipeline_t *self, const char *request_id, const char *cobo_id, const char *status,
                             const char *tx_hash, char *err, size_t errlen)
{
    withdrawal_view_t w;
    if (withdrawals_by_request(self->withdrawals, request_id, &w) != 0) {
        snprintf(err, errlen, "no withdrawal asked for request_id %.60s", request_id ? request_id : "");
        return 200;   /* not ours: nothing to do, and a retry would not change that */
    }
    if (self->claims && !claims_epoch(self->claims, w.id)) {
        /* cluster mode: the holder journals Cobo's answers (it looks the transfer up itself) */
        snprintf(err, errlen, "withdrawal %s is carried out by another node", w.id);
        return 200;
    }
    withdrawal_event_t ev = withdrawals_cobo_event(status);
    if (strcmp(w.request_id, request_id) != 0) {
        /* An earlier transfer of a withdrawal transferred again: it was final-failed, so a late
         * Completed means the coins left twice. */
        if (ev == WITHDRAWAL_EV_TRANSFER_DONE)
            withdrawer_alert(self->withdrawals, self->journal, w.id, RECORD_ALERT_TRANSFER_AFTER_REFUND, w.login, 0, 0,
                             "Cobo completed an earlier transfer of a withdrawal transferred again");
        return 200;
    }
    record_t r;
    withdrawals_event_record(&r, w.id, ev, NULL);
    snprintf(r.request_id, sizeof r.request_id, "%s", request_id);
    snprintf(r.cobo_id, sizeof r.cobo_id, "%s", cobo_id ? cobo_id : "");
    snprintf(r.status, sizeof r.status, "%s", status ? status : "");
    snprintf(r.tx_hash, sizeof r.tx_hash, "%s", tx_hash ? tx_hash : "");
    if (ev == WITHDRAWAL_EV_TRANSFER_FAILED)
        snprintf(r.reason, sizeof r.reason, "Cobo says %.30s for %.60s", r.status, request_id);
    unsigned fx = 0;
    registry_result_t res = withdrawals_commit(self->withdrawals, self->journal, &r, &fx, err, errlen);
    if (fx & WITHDRAWAL_EFFECT_ALERT)
        withdrawer_alert_of(self->withdrawals, self->journal, &r, res);
    if (res == REGISTRY_MOVED && self->wdshared)
        s_wd_hand_on_id(self, w.id);   /* cluster mode: the withdrawer writes MongoDB's document (and releases) */
    if (res == REGISTRY_MOVED)
        return 201;
    return res == REGISTRY_SAME || res == REGISTRY_ILLEGAL ? 200 : 503;
}

rates_t *pipeline_rates(pipeline_t *self)
{
    return self->rates;
}
