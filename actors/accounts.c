/* accounts.c — see accounts.h.
 *
 * A request is a job on the heap, known to the accounts object (its list of jobs in hand, under
 * mu) and sent to one actor as an inproc message carrying the job's address. A job is in one of
 * three states: queued (waiting for its actor), running (its actor is asking MT5), answered (its
 * done was called, or is being called, by whoever answered first: the actor, the deadline timer or
 * accounts_close). The state moves only under mu, so the answer is given exactly once. A job is
 * freed by its actor once handled (an answered job is only dropped), or by accounts_destroy for
 * the jobs no actor reached before it ended.
 *
 * The PUSH sockets to the actors are shared by every submitting thread: each send happens under
 * mu (a full memory barrier between users), with ZMQ_DONTWAIT; the per-actor bound (queue_max)
 * sits far below the socket's high-water mark, so a send never finds it full. */
#include "actors/accounts.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/condvar.h"
#include "actors/mt5.h"
#include "actors/stage.h"
#include "schema/log.h"

#define S_GROUP_CACHE 32
#define S_GROUP_TTL_S 300

typedef enum { S_QUEUED, S_RUNNING, S_ANSWERED } s_state_t;

typedef struct s_job_t {
    accounts_request_t req;
    accounts_done_fn *done;
    void *arg;
    int actor;
    s_state_t state;
    int64_t deadline_ms;
    struct s_job_t *prev, *next;
} s_job_t;

struct accounts_t {
    stage_ctx_t ctx;                 /* first: an actor finds its accounts_t from the ctx it is given */
    stage_gauges_t gauges;           /* the actors' work-list depths (ctx.gauges) */
    accounts_opts_t o;
    zactor_t *actors[ACCOUNTS_MAX_ACTORS];
    zsock_t *push[ACCOUNTS_MAX_ACTORS];
    int load[ACCOUNTS_MAX_ACTORS];   /* jobs sent to each actor and not yet handled by it */
    int count;

    pthread_mutex_t mu;
    pthread_cond_t timer_cond;
    pthread_t timer;
    int timer_started;
    int closing, stopping;
    s_job_t *jobs;                   /* every job in hand */
    int pending;                     /* jobs not yet answered */
};

typedef struct {
    char group[64];
    char currency[16];
    int digits;
    int64_t fetched_s;
} s_group_t;

/* One actor's state. */
typedef struct {
    accounts_t *owner;
    int index;
    mt5_client_t *mt5;
    s_group_t groups[S_GROUP_CACHE];
} s_actor_t;

int accounts_parse_login(const char *text, uint64_t *login)
{
    return mt5_parse_login(text, login);
}

/* ---- the job list (under mu) ---------------------------------------------------------------------- */

static void s_link(accounts_t *self, s_job_t *job)
{
    job->prev = NULL;
    job->next = self->jobs;
    if (self->jobs)
        self->jobs->prev = job;
    self->jobs = job;
}

static void s_unlink(accounts_t *self, s_job_t *job)
{
    if (job->prev) job->prev->next = job->next; else self->jobs = job->next;
    if (job->next) job->next->prev = job->prev;
    job->prev = job->next = NULL;
}

static void s_answer_init(accounts_answer_t *a, accounts_result_t result)
{
    memset(a, 0, sizeof *a);
    a->result = result;
    a->mt5_result = "";
}

/* ---- MT5 work, on an actor's thread ------------------------------------------------------------------ */

/* MT5 decimal text shown with digits decimals ("1000.5" -> "1000.50"); the text as sent when it
 * has more decimals than the currency (nothing is rounded), or when digits < 0 (the group could not
 * be read: no digit count is guessed). */
static void s_money_text(const char *text, int digits, char *out, size_t len)
{
    int64_t minor;
    if (digits >= 0 && mt5_parse_amount(text, digits, &minor) == 0 && mt5_format_amount(minor, digits, out, len) == 0)
        return;
    snprintf(out, len, "%s", text);
}

/* The group's currency and digits, cached for S_GROUP_TTL_S. 0, or -1 (err filled). */
static int s_group(s_actor_t *self, const char *group, s_group_t *out, char *err, size_t errlen)
{
    int64_t now = (int64_t) time(NULL);
    int slot = 0;
    for (int i = 0; i < S_GROUP_CACHE; i++) {
        s_group_t *g = &self->groups[i];
        if (g->group[0] && strcmp(g->group, group) == 0 && now - g->fetched_s < S_GROUP_TTL_S) {
            *out = *g;
            return 0;
        }
        if (!g->group[0] || strcmp(g->group, group) == 0)
            slot = i;
        else if (self->groups[slot].group[0] && g->fetched_s < self->groups[slot].fetched_s)
            slot = i;
    }
    mt5_group_t mg;
    if (mt5_group_get(self->mt5, group, &mg, err, errlen) != MT5_OK)
        return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->group, sizeof out->group, "%s", group);
    snprintf(out->currency, sizeof out->currency, "%s", mg.currency);
    out->digits = mg.digits;
    out->fetched_s = now;
    self->groups[slot] = *out;
    return 0;
}

static void s_check_password(s_actor_t *self, const accounts_request_t *req, accounts_answer_t *a)
{
    mt5_result_t r = mt5_check_password(self->mt5, req->login, req->password, "main", a->why, sizeof a->why);
    if (r == MT5_BAD_PASSWORD && req->investor_password)
        r = mt5_check_password(self->mt5, req->login, req->password, "investor", a->why, sizeof a->why);
    a->mt5_result = mt5_result_name(r);
    a->result = r == MT5_OK ? ACCOUNTS_OK
              : r == MT5_BAD_PASSWORD || r == MT5_PERMANENT ? ACCOUNTS_REFUSED : ACCOUNTS_UNAVAILABLE;
}

static void s_read(s_actor_t *self, const accounts_request_t *req, accounts_answer_t *a)
{
    mt5_user_t u;
    mt5_result_t r = mt5_user_get(self->mt5, req->login, &u, a->why, sizeof a->why);
    a->mt5_result = mt5_result_name(r);
    if (r != MT5_OK) {
        a->result = ACCOUNTS_UNAVAILABLE;
        return;
    }
    char why[160];
    s_group_t g;
    mt5_account_t acc;
    int have_group = s_group(self, u.group, &g, why, sizeof why) == 0;
    int have_equity = mt5_user_account_get(self->mt5, req->login, &acc, why, sizeof why) == MT5_OK;
    a->digits = have_group ? g.digits : -1;   /* no group: MT5's own text, never a guessed digit count */
    snprintf(a->name, sizeof a->name, "%s", u.name);
    s_money_text(u.balance, a->digits, a->balance, sizeof a->balance);
    s_money_text(u.credit[0] ? u.credit : "0", a->digits, a->credit, sizeof a->credit);
    if (have_equity) {
        s_money_text(acc.equity, a->digits, a->equity, sizeof a->equity);
        s_money_text(acc.margin_free, a->digits, a->margin_free, sizeof a->margin_free);
    }
    if (have_group)
        snprintf(a->currency, sizeof a->currency, "%s", g.currency);
    a->result = ACCOUNTS_OK;
}

/* The stage's handler: one job, start to end. Always done with it (returns 0). */
static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_actor_t *self = arg;
    accounts_t *owner = self->owner;
    s_job_t *job;
    if (item->len != sizeof job)
        return 0;
    memcpy(&job, item->bytes, sizeof job);

    pthread_mutex_lock(&owner->mu);
    int run = job->state == S_QUEUED;
    if (run)
        job->state = S_RUNNING;
    pthread_mutex_unlock(&owner->mu);

    accounts_answer_t a;
    s_answer_init(&a, ACCOUNTS_UNAVAILABLE);
    if (run) {
        if (job->req.ask == ACCOUNTS_CHECK_PASSWORD) {
            s_check_password(self, &job->req, &a);
        } else if (job->req.ask == ACCOUNTS_WITHDRAW) {
            job->req.investor_password = 0;   /* money leaves: the main password only */
            s_check_password(self, &job->req, &a);
            if (a.result == ACCOUNTS_OK)
                s_read(self, &job->req, &a);
        } else {
            s_read(self, &job->req, &a);
        }
    }
    explicit_bzero(job->req.password, sizeof job->req.password);

    pthread_mutex_lock(&owner->mu);
    int give = job->state == S_RUNNING;   /* else answered meanwhile (closing): drop the answer */
    if (give) {
        job->state = S_ANSWERED;
        owner->pending--;
    }
    s_unlink(owner, job);
    owner->load[job->actor]--;
    accounts_done_fn *done = job->done;
    void *done_arg = job->arg;
    pthread_mutex_unlock(&owner->mu);
    free(job);
    if (give)
        done(done_arg, &a);
    return 0;
}

static int s_init(void *state, const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    s_actor_t *self = state;
    /* ctx is the first member of its accounts_t (see struct accounts_t). */
    self->owner = (accounts_t *) (void *) ((char *) ctx - offsetof(accounts_t, ctx));
    self->index = index;
    const config_t *cfg = ctx->cfg;
    self->mt5 = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                               (long) ctx->mt5_timeout_ms);
    if (!self->mt5) {
        snprintf(err, errlen, "accounts: bad MT5 settings (MT5_URL, MT5_LOGIN, MT5_PASSWORD)");
        return -1;
    }
    return 0;
}

static void s_destroy(void *state)
{
    s_actor_t *self = state;
    mt5_client_destroy(&self->mt5);
}

static const stage_def_t s_def = {
    .kind = STAGE_ACCOUNTS, .name = "accounts", .ops = { s_handle, NULL, NULL, NULL },
    .state_size = sizeof(s_actor_t), .init = s_init, .destroy = s_destroy,
};

/* ---- the deadline timer ------------------------------------------------------------------------------ */

typedef struct {
    accounts_done_fn *done;
    void *arg;
} s_call_t;

/* Answers result to every job in hand for which pick() says so (under mu; the calls happen after
 * mu is released). Returns how many were answered. */
static int s_answer_where(accounts_t *self, int (*pick)(const s_job_t *, int64_t), int64_t now_ms,
                          accounts_result_t result)
{
    s_call_t calls[ACCOUNTS_MAX_ACTORS * 64];
    int n = 0;
    int more = 1;
    while (more) {
        more = 0;
        n = 0;
        pthread_mutex_lock(&self->mu);
        for (s_job_t *j = self->jobs; j; j = j->next) {
            if (j->state == S_ANSWERED || !pick(j, now_ms))
                continue;
            if (n == (int) (sizeof calls / sizeof calls[0])) {
                more = 1;
                break;
            }
            j->state = S_ANSWERED;
            self->pending--;
            calls[n].done = j->done;
            calls[n].arg = j->arg;
            n++;
        }
        pthread_mutex_unlock(&self->mu);
        accounts_answer_t a;
        s_answer_init(&a, result);
        for (int i = 0; i < n; i++)
            calls[i].done(calls[i].arg, &a);
    }
    return n;
}

static int s_expired(const s_job_t *j, int64_t now_ms)
{
    return j->state == S_QUEUED && j->deadline_ms <= now_ms;
}

static int s_any(const s_job_t *j, int64_t now_ms)
{
    (void) j;
    (void) now_ms;
    return 1;
}

/* Answers ACCOUNTS_BUSY to every queued job at its deadline. */
static void *s_timer(void *arg)
{
    accounts_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (!self->stopping) {
        int64_t now = stage_mono_ms();
        int64_t next = -1;
        int due = 0;
        for (s_job_t *j = self->jobs; j; j = j->next) {
            if (j->state != S_QUEUED)
                continue;
            if (j->deadline_ms <= now)
                due = 1;
            else if (next < 0 || j->deadline_ms < next)
                next = j->deadline_ms;
        }
        if (due) {
            pthread_mutex_unlock(&self->mu);
            int n = s_answer_where(self, s_expired, now, ACCOUNTS_BUSY);
            if (n > 0)
                log_warn("accounts.busy", "answered=%d reason=\"waited %lld ms for an MT5 client\"", n,
                         (long long) self->o.wait_ms);
            pthread_mutex_lock(&self->mu);
            continue;
        }
        if (next < 0) {
            pthread_cond_wait(&self->timer_cond, &self->mu);
        } else {
            struct timespec until;
            condvar_deadline(&until, next - now);
            pthread_cond_timedwait(&self->timer_cond, &self->mu, &until);
        }
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

/* ---- the object -------------------------------------------------------------------------------------- */

accounts_t *accounts_new(const config_t *cfg, const accounts_opts_t *opts, char *err, size_t errlen)
{
    static atomic_uint s_instances;
    accounts_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "accounts: out of memory");
        return NULL;
    }
    if (opts)
        self->o = *opts;
    if (self->o.actors <= 0) self->o.actors = 3;
    if (self->o.actors > ACCOUNTS_MAX_ACTORS) self->o.actors = ACCOUNTS_MAX_ACTORS;
    if (self->o.queue_max <= 0) self->o.queue_max = 16;
    if (self->o.queue_max > 64) self->o.queue_max = 64;
    if (self->o.wait_ms <= 0) self->o.wait_ms = 5000;
    if (self->o.mt5_timeout_ms <= 0) self->o.mt5_timeout_ms = config_mt5_timeout_ms(cfg);
    self->ctx.cfg = cfg;
    self->ctx.accounts = self->o.actors;
    self->ctx.gauges = &self->gauges;
    self->ctx.mt5_timeout_ms = self->o.mt5_timeout_ms;
    snprintf(self->ctx.prefix, sizeof self->ctx.prefix, "inproc://kasa-accounts-%d-%u", (int) getpid(),
             atomic_fetch_add(&s_instances, 1));
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->timer_cond);
    for (int i = 0; i < self->o.actors; i++) {
        self->actors[i] = stage_actor_new(&self->ctx, &s_def, i, err, errlen);
        char ep[96];
        stage_endpoint(&self->ctx, STAGE_ACCOUNTS, i, ep, sizeof ep);
        self->push[i] = self->actors[i] ? stage_push_new(ep) : NULL;
        if (!self->push[i]) {
            if (self->actors[i])
                snprintf(err, errlen, "accounts: cannot connect to %s", ep);
            zactor_destroy(&self->actors[i]);
            accounts_destroy(&self);
            return NULL;
        }
        self->count++;
    }
    if (pthread_create(&self->timer, NULL, s_timer, self) != 0) {
        snprintf(err, errlen, "accounts: cannot start the timer");
        accounts_destroy(&self);
        return NULL;
    }
    self->timer_started = 1;
    return self;
}

accounts_result_t accounts_submit(accounts_t *self, accounts_request_t *req, accounts_done_fn *done, void *arg)
{
    s_job_t *job = calloc(1, sizeof *job);
    if (job)
        job->req = *req;
    explicit_bzero(req->password, sizeof req->password);
    if (!job)
        return ACCOUNTS_BUSY;
    job->done = done;
    job->arg = arg;
    job->state = S_QUEUED;

    accounts_result_t res = ACCOUNTS_OK;
    pthread_mutex_lock(&self->mu);
    int best = 0;
    for (int i = 1; i < self->count; i++)
        if (self->load[i] < self->load[best])
            best = i;
    if (self->closing || self->count == 0) {
        res = ACCOUNTS_STOPPING;
    } else if (self->load[best] >= self->o.queue_max) {
        res = ACCOUNTS_BUSY;
    } else {
        job->actor = best;
        job->deadline_ms = stage_mono_ms() + self->o.wait_ms;
        s_link(self, job);
        self->load[best]++;
        self->pending++;
        if (zmq_send(zsock_resolve(self->push[best]), &job, sizeof job, ZMQ_DONTWAIT) != (int) sizeof job) {
            s_unlink(self, job);
            self->load[best]--;
            self->pending--;
            res = ACCOUNTS_BUSY;
        } else {
            pthread_cond_signal(&self->timer_cond);
        }
    }
    pthread_mutex_unlock(&self->mu);
    if (res != ACCOUNTS_OK) {
        explicit_bzero(job->req.password, sizeof job->req.password);
        free(job);
    }
    return res;
}

void accounts_close(accounts_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mu);
    self->closing = 1;
    pthread_mutex_unlock(&self->mu);
    s_answer_where(self, s_any, 0, ACCOUNTS_STOPPING);
}

int accounts_pending(accounts_t *self)
{
    pthread_mutex_lock(&self->mu);
    int n = self->pending;
    pthread_mutex_unlock(&self->mu);
    return n;
}

void accounts_destroy(accounts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    accounts_t *self = *self_p;
    *self_p = NULL;
    accounts_close(self);
    if (self->timer_started) {
        pthread_mutex_lock(&self->mu);
        self->stopping = 1;
        pthread_cond_signal(&self->timer_cond);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->timer, NULL);
    }
    for (int i = 0; i < ACCOUNTS_MAX_ACTORS; i++) {
        zsock_destroy(&self->push[i]);
        zactor_destroy(&self->actors[i]);   /* waits for a running MT5 call to end */
    }
    /* Jobs no actor reached: all answered by accounts_close. */
    while (self->jobs) {
        s_job_t *j = self->jobs;
        s_unlink(self, j);
        explicit_bzero(j->req.password, sizeof j->req.password);
        free(j);
    }
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->timer_cond);
    free(self);
}

int accounts_queue_depth(accounts_t *self, int *actors)
{
    if (actors)
        *actors = self->count;
    return stage_depth(&self->ctx, STAGE_ACCOUNTS);
}
