/* balances.c — see balances.h. One thread reads; a reading is built apart and swapped in whole under
 * the lock, so an answer always shows one complete reading (or none) and never half of two. */
#include "actors/balances.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/cobo.h"
#include "schema/json.h"
#include "schema/log.h"
#include "schema/money.h"

#define S_MAX_TOKENS 64
#define S_MAX_ADDRESSES 100000   /* per reading, every token together */

typedef struct {
    char address[128];
    cobo_balance_t b;
} s_addr_t;

typedef struct {
    char token_id[48];
    cobo_balance_t b;            /* Cobo's figure for the whole wallet */
    int first, count;            /* its addresses in the reading's addrs[] */
    char addr_error[200];        /* Cobo refused the per-address listing of this token ("" if not) */
} s_token_t;

typedef struct {
    s_token_t tokens[S_MAX_TOKENS];
    int ntokens;
    s_token_t wtokens[S_MAX_TOKENS];  /* the withdrawal wallet's, when it is another wallet */
    int nwtokens;
    char wd_error[200];          /* why its reading failed ("" if it did not) */
    s_addr_t *addrs;
    int naddrs, cap;
    int64_t as_of_ms;
} s_reading_t;

typedef struct {
    balances_fresh_fn fn;
    void *arg;
    uint64_t need;               /* answered once reading `need` has ended */
} s_waiter_t;

struct balances_t {
    balances_opts_t o;
    char wallet_id[80];
    char withdraw_wallet_id[80]; /* "" when transfers are paid from wallet_id */
    cobo_client_t *cobo;         /* the thread's alone */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int stop;
    uint64_t requested, running, done;   /* readings: asked for, in progress (0: none), ended */
    s_reading_t *now;            /* the last complete reading; NULL before the first */
    char error[256];             /* why the last reading failed ("" if it did not) */
    int64_t error_ms;
    s_waiter_t waiting[BALANCES_MAX_WAITING];
    int nwaiting;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_reading_free(s_reading_t **r_p)
{
    if (*r_p) {
        free((*r_p)->addrs);
        free(*r_p);
        *r_p = NULL;
    }
}

/* ---- one reading ----------------------------------------------------------------------------- */

static int s_token_add(s_token_t *tokens, int *n, const char *name, const cobo_balance_t *b)
{
    if (*n == S_MAX_TOKENS || strlen(name) >= sizeof tokens[0].token_id)
        return 1;   /* more tokens than a panel shows: the first ones stand */
    s_token_t *t = &tokens[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->token_id, sizeof t->token_id, "%s", name);
    t->b = *b;
    return 0;
}

static int s_on_token(void *arg, const char *name, const cobo_balance_t *b)
{
    s_reading_t *r = arg;
    return s_token_add(r->tokens, &r->ntokens, name, b);
}

static int s_on_wtoken(void *arg, const char *name, const cobo_balance_t *b)
{
    s_reading_t *r = arg;
    return s_token_add(r->wtokens, &r->nwtokens, name, b);
}

static int s_on_address(void *arg, const char *name, const cobo_balance_t *b)
{
    s_reading_t *r = arg;
    if (r->naddrs == r->cap) {
        int cap = r->cap ? r->cap * 2 : 256;
        s_addr_t *grown = cap <= S_MAX_ADDRESSES ? realloc(r->addrs, (size_t) cap * sizeof *grown) : NULL;
        if (!grown)
            return 1;
        r->addrs = grown;
        r->cap = cap;
    }
    s_addr_t *a = &r->addrs[r->naddrs++];
    snprintf(a->address, sizeof a->address, "%s", name);
    a->b = *b;
    return 0;
}

/* Reads every token's balance and every address's balance of each. 0, or -1 with err. A token
 * whose per-address listing Cobo refuses (4xx: e.g. a custodial wallet, where Cobo keeps no
 * per-address figures) keeps its wallet figure and says why; any other failure fails the reading. */
static int s_read(balances_t *self, s_reading_t *r, char *err, size_t errlen)
{
    cobo_err_t e = cobo_list_token_balances(self->cobo, self->wallet_id, self->o.page_limit, s_on_token, r, err, errlen);
    if (e != COBO_OK)
        return -1;
    for (int i = 0; i < r->ntokens; i++) {
        s_token_t *t = &r->tokens[i];
        t->first = r->naddrs;
        char why[160] = "";
        e = cobo_list_address_balances(self->cobo, self->wallet_id, t->token_id, NULL, self->o.page_limit, s_on_address,
                                       r, why, sizeof why);
        t->count = r->naddrs - t->first;
        if (e == COBO_ERR_HTTP_4XX && !cobo_client_rate_limited(self->cobo)) {
            snprintf(t->addr_error, sizeof t->addr_error, "%s", why);
        } else if (e != COBO_OK) {
            snprintf(err, errlen, "%s: %s", t->token_id, why);
            return -1;
        }
    }
    /* the wallet transfers are paid from, when it is another one: its figures alone; a failure
     * there is said beside them and does not hide the deposit wallet's */
    if (self->withdraw_wallet_id[0] &&
        cobo_list_token_balances(self->cobo, self->withdraw_wallet_id, self->o.page_limit, s_on_wtoken, r, r->wd_error,
                                 sizeof r->wd_error) != COBO_OK) {
        r->nwtokens = 0;
        if (!r->wd_error[0])
            snprintf(r->wd_error, sizeof r->wd_error, "Cobo did not answer");
    }
    r->as_of_ms = s_now_ms();
    return 0;
}

/* ---- the thread ------------------------------------------------------------------------------ */

static void *s_main(void *arg)
{
    balances_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (!self->stop) {
        if (self->requested <= self->done) {
            pthread_cond_wait(&self->wake, &self->mu);
            continue;
        }
        self->running = self->requested;
        pthread_mutex_unlock(&self->mu);
        s_reading_t *r = calloc(1, sizeof *r);
        char err[256] = "out of memory";
        int ok = r && s_read(self, r, err, sizeof err) == 0;
        if (!ok)
            log_warn("balances.read_failed", "wallet=%s reason=\"%s\"", self->wallet_id, err);
        pthread_mutex_lock(&self->mu);
        if (ok) {
            s_reading_free(&self->now);
            self->now = r;
            r = NULL;
            self->error[0] = '\0';
            self->error_ms = 0;
        } else {
            snprintf(self->error, sizeof self->error, "%s", err);
            self->error_ms = s_now_ms();
        }
        s_reading_free(&r);
        self->done = self->running;
        self->running = 0;
        /* answer those whose reading this was, outside the lock */
        s_waiter_t due[BALANCES_MAX_WAITING];
        int ndue = 0;
        for (int i = 0; i < self->nwaiting;) {
            if (self->waiting[i].need <= self->done) {
                due[ndue++] = self->waiting[i];
                self->waiting[i] = self->waiting[--self->nwaiting];
            } else {
                i++;
            }
        }
        pthread_mutex_unlock(&self->mu);
        for (int i = 0; i < ndue; i++)
            due[i].fn(due[i].arg, balances_json(self));
        pthread_mutex_lock(&self->mu);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

balances_t *balances_new(const balances_opts_t *opts, char *err, size_t errlen)
{
    if (!opts || !opts->wallet_id || !opts->wallet_id[0] || strlen(opts->wallet_id) >= 80) {
        snprintf(err, errlen, "balances: COBO_WALLET_ID is not set");
        return NULL;
    }
    balances_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "balances: out of memory");
        return NULL;
    }
    self->o = *opts;
    if (self->o.timeout_ms <= 0)
        self->o.timeout_ms = 10000;
    if (self->o.page_limit < 1 || self->o.page_limit > 50)
        self->o.page_limit = 50;
    if (self->o.max_age_s <= 0)
        self->o.max_age_s = 60;
    snprintf(self->wallet_id, sizeof self->wallet_id, "%s", opts->wallet_id);
    self->o.wallet_id = self->wallet_id;
    if (opts->withdraw_wallet_id && strcmp(opts->withdraw_wallet_id, opts->wallet_id) != 0)
        snprintf(self->withdraw_wallet_id, sizeof self->withdraw_wallet_id, "%s", opts->withdraw_wallet_id);
    self->o.withdraw_wallet_id = self->withdraw_wallet_id;
    self->cobo = cobo_client_new(opts->cobo_url, opts->api_key_hex, opts->api_secret_hex, opts->response_pubkey_hex,
                                 self->o.timeout_ms, err, errlen);
    if (!self->cobo) {
        free(self);
        return NULL;
    }
    self->o.api_secret_hex = NULL;   /* kept only inside the client's signer */
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->wake, NULL);
    if (pthread_create(&self->thread, NULL, s_main, self) != 0) {
        snprintf(err, errlen, "balances: cannot start a thread");
        cobo_client_destroy(&self->cobo);
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->mu);
        free(self);
        return NULL;
    }
    return self;
}

void balances_destroy(balances_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    balances_t *self = *self_p;
    pthread_mutex_lock(&self->mu);
    self->stop = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->mu);
    pthread_join(self->thread, NULL);
    for (int i = 0; i < self->nwaiting; i++)
        self->waiting[i].fn(self->waiting[i].arg, balances_json(self));
    cobo_client_destroy(&self->cobo);
    s_reading_free(&self->now);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

/* Asks for a reading that starts after now (one already asked for and not started serves). Under the lock. */
static void s_refresh_locked(balances_t *self)
{
    uint64_t latest = self->running > self->done ? self->running : self->done;
    if (self->requested <= latest)
        self->requested = latest + 1;
    pthread_cond_signal(&self->wake);
}

void balances_refresh(balances_t *self)
{
    pthread_mutex_lock(&self->mu);
    s_refresh_locked(self);
    pthread_mutex_unlock(&self->mu);
}

int balances_when_fresh(balances_t *self, balances_fresh_fn fn, void *arg)
{
    pthread_mutex_lock(&self->mu);
    if (self->nwaiting == BALANCES_MAX_WAITING || self->stop) {
        pthread_mutex_unlock(&self->mu);
        return -1;
    }
    s_refresh_locked(self);
    self->waiting[self->nwaiting++] = (s_waiter_t) { fn, arg, self->requested };
    pthread_mutex_unlock(&self->mu);
    return 0;
}

/* ---- the answer ------------------------------------------------------------------------------ */

static void s_balance_json(jbuf_t *b, const cobo_balance_t *x)
{
    jbuf_puts(b, "{\"total\":");
    jbuf_str(b, x->total);
    jbuf_puts(b, ",\"available\":");
    jbuf_str(b, x->available);
    jbuf_puts(b, ",\"pending\":");
    jbuf_str(b, x->pending);
    jbuf_puts(b, ",\"locked\":");
    jbuf_str(b, x->locked);
    jbuf_puts(b, ",\"frozen\":");
    jbuf_str(b, x->frozen);
    jbuf_puts(b, "}");
}

/* sum += x, field by field (each already checked by the client: a parse cannot fail). */
static void s_add(money_atto_t sum[5], const cobo_balance_t *x)
{
    const char *f[5] = { x->total, x->available, x->pending, x->locked, x->frozen };
    for (int i = 0; i < 5; i++) {
        money_atto_t v = 0;
        money_parse(f[i], &v, NULL, 0);
        sum[i] += v;
    }
}

static void s_token_json(const balances_t *self, jbuf_t *b, const s_reading_t *r, const s_token_t *t)
{
    jbuf_puts(b, "{\"token_id\":");
    jbuf_str(b, t->token_id);
    jbuf_puts(b, ",\"balance\":");
    s_balance_json(b, &t->b);
    jbuf_puts(b, ",\"addresses\":[");
    money_atto_t sum[5] = { 0 };
    for (int k = 0; k < t->count; k++) {
        const s_addr_t *a = &r->addrs[t->first + k];
        uint64_t login = self->o.login_of ? self->o.login_of(self->o.login_arg, a->address) : 0;
        jbuf_puts(b, k ? ",{\"address\":" : "{\"address\":");
        jbuf_str(b, a->address);
        if (login)
            jbuf_printf(b, ",\"login\":%llu,\"balance\":", (unsigned long long) login);
        else
            jbuf_puts(b, ",\"login\":null,\"balance\":");
        s_balance_json(b, &a->b);
        jbuf_puts(b, "}");
        s_add(sum, &a->b);
    }
    cobo_balance_t total;
    char *dst[5] = { total.total, total.available, total.pending, total.locked, total.frozen };
    for (int i = 0; i < 5; i++)
        money_format(sum[i], dst[i], COBO_AMOUNT_LEN);
    jbuf_puts(b, "],\"address_sum\":");
    s_balance_json(b, &total);
    jbuf_puts(b, ",\"address_error\":");
    if (t->addr_error[0])
        jbuf_str(b, t->addr_error);
    else
        jbuf_puts(b, "null");
    jbuf_puts(b, "}");
}

/* ,"withdraw_wallet":{"wallet_id","error","tokens":[{"token_id","balance"}]}: the wallet transfers
 * are paid from, with its figures of the same reading. Under the lock. */
static void s_withdraw_json(const balances_t *self, jbuf_t *b)
{
    const int other = self->withdraw_wallet_id[0] != '\0';
    const s_token_t *tokens = !self->now ? NULL : other ? self->now->wtokens : self->now->tokens;
    int n = !self->now ? 0 : other ? self->now->nwtokens : self->now->ntokens;
    jbuf_puts(b, ",\"withdraw_wallet\":{\"wallet_id\":");
    jbuf_str(b, other ? self->withdraw_wallet_id : self->wallet_id);
    jbuf_puts(b, ",\"error\":");
    if (other && self->now && self->now->wd_error[0])
        jbuf_str(b, self->now->wd_error);
    else
        jbuf_puts(b, "null");
    jbuf_puts(b, ",\"tokens\":[");
    for (int i = 0; i < n; i++) {
        jbuf_puts(b, i ? ",{\"token_id\":" : "{\"token_id\":");
        jbuf_str(b, tokens[i].token_id);
        jbuf_puts(b, ",\"balance\":");
        s_balance_json(b, &tokens[i].b);
        jbuf_puts(b, "}");
    }
    jbuf_puts(b, "]}");
}

char *balances_json(balances_t *self)
{
    jbuf_t b;
    jbuf_init(&b);
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now_ms();
    int64_t last = self->now && self->now->as_of_ms > self->error_ms ? self->now->as_of_ms : self->error_ms;
    if (!self->stop && (!last || now - last > (int64_t) self->o.max_age_s * 1000) && self->requested <= self->done)
        s_refresh_locked(self);
    jbuf_puts(&b, "{\"wallet_id\":");
    jbuf_str(&b, self->wallet_id);
    if (self->now)
        jbuf_printf(&b, ",\"as_of_ms\":%lld", (long long) self->now->as_of_ms);
    else
        jbuf_puts(&b, ",\"as_of_ms\":null");
    jbuf_printf(&b, ",\"reading\":%s,\"error\":", self->requested > self->done ? "true" : "false");
    if (self->error[0]) {
        jbuf_str(&b, self->error);
        jbuf_printf(&b, ",\"error_ms\":%lld", (long long) self->error_ms);
    } else {
        jbuf_puts(&b, "null,\"error_ms\":null");
    }
    jbuf_puts(&b, ",\"tokens\":[");
    for (int i = 0; self->now && i < self->now->ntokens; i++) {
        jbuf_puts(&b, i ? "," : "");
        s_token_json(self, &b, self->now, &self->now->tokens[i]);
    }
    jbuf_puts(&b, "]");
    s_withdraw_json(self, &b);
    jbuf_puts(&b, "}");
    pthread_mutex_unlock(&self->mu);
    return jbuf_take(&b);
}
