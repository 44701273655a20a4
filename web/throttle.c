/* throttle.c — see throttle.h.
 *
 * Entries live in a fixed pool, found through a chained hash index. When the pool is full, the
 * victim is the best of S_SAMPLE randomly chosen entries (expired < limiting nothing, least
 * recently failed first < limiting): sampling keeps a login attempt O(1) while a flood of junk
 * logins from fresh addresses can only push out entries that limit nobody. */
#include "web/throttle.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_SAMPLE 64
#define S_FREE_SLOT (-1)

typedef enum { S_NONE = 0, S_PAIR, S_CLIENT, S_LOGIN } s_kind_t;

typedef struct {
    uint8_t kind;               /* s_kind_t; S_NONE when the slot is free */
    uint64_t login;             /* S_PAIR, S_LOGIN */
    netaddr_t key;              /* S_PAIR, S_CLIENT: the client's key (netaddr_key) */
    int fails;                  /* failures counted (in the window, for S_CLIENT and S_LOGIN) */
    int64_t first_s;            /* start of the window */
    int64_t last_s;             /* last failure */
    int32_t next;               /* hash chain */
} s_entry_t;

struct throttle_t {
    throttle_opts_t o;
    pthread_mutex_t mu;
    s_entry_t *pool;
    int32_t *heads;
    uint32_t mask;              /* buckets - 1 */
    int32_t free_head;          /* free slots, chained through next */
    int used;
    uint64_t rng;
};

static int64_t s_real_now(void *arg)
{
    (void) arg;
    return (int64_t) time(NULL);
}

throttle_t *throttle_new(const throttle_opts_t *opts)
{
    throttle_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (opts)
        self->o = *opts;
    if (self->o.pair_free <= 0) self->o.pair_free = 5;
    if (self->o.pair_max_delay_s <= 0) self->o.pair_max_delay_s = 900;
    if (self->o.pair_forget_s <= 0) self->o.pair_forget_s = 3600;
    if (self->o.client_max <= 0) self->o.client_max = 30;
    if (self->o.account_alarm <= 0) self->o.account_alarm = 100;
    if (self->o.window_s <= 0) self->o.window_s = 900;
    if (self->o.max_entries <= 0) self->o.max_entries = 16384;
    if (self->o.max_entries < 8) self->o.max_entries = 8;
    if (!self->o.now_s) self->o.now_s = s_real_now;
    uint32_t buckets = 16;
    while (buckets < (uint32_t) self->o.max_entries * 2u)
        buckets *= 2;
    self->mask = buckets - 1;
    self->pool = calloc((size_t) self->o.max_entries, sizeof *self->pool);
    self->heads = malloc(buckets * sizeof *self->heads);
    if (!self->pool || !self->heads) {
        free(self->pool);
        free(self->heads);
        free(self);
        return NULL;
    }
    for (uint32_t i = 0; i < buckets; i++)
        self->heads[i] = S_FREE_SLOT;
    for (int i = 0; i < self->o.max_entries; i++)
        self->pool[i].next = i + 1 < self->o.max_entries ? i + 1 : S_FREE_SLOT;
    self->free_head = 0;
    self->rng = (uint64_t) (uintptr_t) self ^ 0x9E3779B97F4A7C15ULL;
    pthread_mutex_init(&self->mu, NULL);
    return self;
}

void throttle_destroy(throttle_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    throttle_t *self = *self_p;
    pthread_mutex_destroy(&self->mu);
    free(self->pool);
    free(self->heads);
    free(self);
    *self_p = NULL;
}

static uint32_t s_hash(s_kind_t kind, uint64_t login, const netaddr_t *key)
{
    uint64_t h = 1469598103934665603ULL;
    h = (h ^ (uint64_t) kind) * 1099511628211ULL;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((login >> (8 * i)) & 0xff)) * 1099511628211ULL;
    if (key) {
        h = (h ^ (uint64_t) key->v6) * 1099511628211ULL;
        for (int i = 0; i < 16; i++)
            h = (h ^ key->b[i]) * 1099511628211ULL;
    }
    return (uint32_t) (h ^ (h >> 32));
}

static int s_same(const s_entry_t *e, s_kind_t kind, uint64_t login, const netaddr_t *key)
{
    if (e->kind != kind || e->login != login)
        return 0;
    return !key || netaddr_equal(&e->key, key);
}

static int32_t s_find(throttle_t *self, s_kind_t kind, uint64_t login, const netaddr_t *key)
{
    for (int32_t i = self->heads[s_hash(kind, login, key) & self->mask]; i != S_FREE_SLOT; i = self->pool[i].next)
        if (s_same(&self->pool[i], kind, login, key))
            return i;
    return S_FREE_SLOT;
}

static void s_remove(throttle_t *self, int32_t idx)
{
    s_entry_t *e = &self->pool[idx];
    int32_t *pp = &self->heads[s_hash((s_kind_t) e->kind, e->login, e->kind == S_LOGIN ? NULL : &e->key) & self->mask];
    while (*pp != S_FREE_SLOT && *pp != idx)
        pp = &self->pool[*pp].next;
    if (*pp == idx)
        *pp = e->next;
    memset(e, 0, sizeof *e);
    e->next = self->free_head;
    self->free_head = idx;
    self->used--;
}

/* 1 when e counts nothing any more. */
static int s_expired(const throttle_t *self, const s_entry_t *e, int64_t now)
{
    if (e->kind == S_PAIR)
        return now - e->last_s >= self->o.pair_forget_s;
    return now - e->first_s >= self->o.window_s;
}

/* 1 when e currently limits someone (worth keeping over any entry that does not). */
static int s_limiting(const throttle_t *self, const s_entry_t *e)
{
    switch ((s_kind_t) e->kind) {
    case S_PAIR: return e->fails >= self->o.pair_free;
    case S_CLIENT: return e->fails >= self->o.client_max;
    case S_LOGIN: return e->fails >= self->o.account_alarm;
    default: return 0;
    }
}

static int s_kept(const int32_t keep[3], int32_t i)
{
    return i == keep[0] || i == keep[1] || i == keep[2];
}

/* A slot to reuse when the pool is full, never one in keep: the best of a random sample. */
static int32_t s_victim(throttle_t *self, int64_t now, const int32_t keep[3])
{
    int32_t best = S_FREE_SLOT;
    int best_rank = 3;
    int64_t best_last = 0;
    for (int s = 0; s < S_SAMPLE; s++) {
        self->rng ^= self->rng << 13;
        self->rng ^= self->rng >> 7;
        self->rng ^= self->rng << 17;
        int32_t i = (int32_t) (self->rng % (uint64_t) self->o.max_entries);
        if (s_kept(keep, i))
            continue;
        const s_entry_t *e = &self->pool[i];
        int rank = s_expired(self, e, now) ? 0 : s_limiting(self, e) ? 2 : 1;
        if (rank < best_rank || (rank == best_rank && e->last_s < best_last)) {
            best = i;
            best_rank = rank;
            best_last = e->last_s;
        }
        if (rank == 0)
            break;
    }
    if (best == S_FREE_SLOT)   /* every sample was kept: any slot but those */
        for (int32_t i = 0; i < 4 && best == S_FREE_SLOT; i++)
            if (!s_kept(keep, i))
                best = i;
    return best;
}

/* The entry for the key, made (with no failures) if missing. */
static int32_t s_take(throttle_t *self, s_kind_t kind, uint64_t login, const netaddr_t *key, int64_t now,
                      const int32_t keep[3])
{
    int32_t i = s_find(self, kind, login, key);
    if (i != S_FREE_SLOT)
        return i;
    if (self->free_head == S_FREE_SLOT)
        s_remove(self, s_victim(self, now, keep));
    i = self->free_head;
    s_entry_t *e = &self->pool[i];
    self->free_head = e->next;
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t) kind;
    e->login = login;
    if (key)
        e->key = *key;
    e->first_s = e->last_s = now;
    uint32_t b = s_hash(kind, login, key) & self->mask;
    e->next = self->heads[b];
    self->heads[b] = i;
    self->used++;
    return i;
}

/* Starts a new window for an entry whose counts have run out. */
static void s_refresh(throttle_t *self, int32_t i, int64_t now)
{
    if (i == S_FREE_SLOT)
        return;
    s_entry_t *e = &self->pool[i];
    if (s_expired(self, e, now)) {
        e->fails = 0;
        e->first_s = now;
    }
}

/* The wait a pair with fails failures owes after its last failure, beyond free ones. */
static int64_t s_pair_delay(const throttle_t *self, int fails, int free_fails)
{
    int shift = fails - free_fails;
    if (shift < 0)
        return 0;
    if (shift > 30)
        return self->o.pair_max_delay_s;
    int64_t d = (int64_t) 1 << shift;
    return d < self->o.pair_max_delay_s ? d : self->o.pair_max_delay_s;
}

int throttle_attempt(throttle_t *self, uint64_t login, const netaddr_t *client, int64_t *retry_after_s)
{
    netaddr_t key = netaddr_key(client);
    pthread_mutex_lock(&self->mu);
    int64_t now = self->o.now_s(self->o.now_arg);
    int32_t pair = s_find(self, S_PAIR, login, &key);
    int32_t cl = s_find(self, S_CLIENT, 0, &key);
    int32_t acct = s_find(self, S_LOGIN, login, NULL);
    s_refresh(self, pair, now);
    s_refresh(self, cl, now);
    s_refresh(self, acct, now);
    int free_fails = acct != S_FREE_SLOT && self->pool[acct].fails >= self->o.account_alarm ? 1 : self->o.pair_free;
    int64_t wait = 0;
    if (pair != S_FREE_SLOT) {
        const s_entry_t *p = &self->pool[pair];
        int64_t w = p->last_s + s_pair_delay(self, p->fails, free_fails) - now;
        if (p->fails >= free_fails && w > wait)
            wait = w < 1 ? 1 : w;
    }
    if (cl != S_FREE_SLOT && self->pool[cl].fails >= self->o.client_max) {
        int64_t w = self->pool[cl].first_s + self->o.window_s - now;
        if (w > wait)
            wait = w < 1 ? 1 : w;
    }
    if (wait == 0) {
        /* none of the three is pushed out to make room for another of them */
        int32_t all[3] = { pair, cl, acct };
        all[0] = s_take(self, S_PAIR, login, &key, now, all);
        all[1] = s_take(self, S_CLIENT, 0, &key, now, all);
        all[2] = s_take(self, S_LOGIN, login, NULL, now, all);
        for (int i = 0; i < 3; i++) {
            self->pool[all[i]].fails++;
            self->pool[all[i]].last_s = now;
        }
    }
    pthread_mutex_unlock(&self->mu);
    if (retry_after_s)
        *retry_after_s = wait;
    return wait > 0 ? -1 : 0;
}

/* Takes back one counted failure of the entry, if it is still there. */
static void s_uncount(throttle_t *self, int32_t i)
{
    if (i != S_FREE_SLOT && self->pool[i].fails > 0)
        self->pool[i].fails--;
}

void throttle_success(throttle_t *self, uint64_t login, const netaddr_t *client)
{
    netaddr_t key = netaddr_key(client);
    pthread_mutex_lock(&self->mu);
    int32_t pair = s_find(self, S_PAIR, login, &key);
    if (pair != S_FREE_SLOT)
        s_remove(self, pair);
    s_uncount(self, s_find(self, S_CLIENT, 0, &key));
    s_uncount(self, s_find(self, S_LOGIN, login, NULL));
    pthread_mutex_unlock(&self->mu);
}

void throttle_forgive(throttle_t *self, uint64_t login, const netaddr_t *client)
{
    netaddr_t key = netaddr_key(client);
    pthread_mutex_lock(&self->mu);
    s_uncount(self, s_find(self, S_PAIR, login, &key));
    s_uncount(self, s_find(self, S_CLIENT, 0, &key));
    s_uncount(self, s_find(self, S_LOGIN, login, NULL));
    pthread_mutex_unlock(&self->mu);
}

int throttle_entries(throttle_t *self)
{
    pthread_mutex_lock(&self->mu);
    int n = self->used;
    pthread_mutex_unlock(&self->mu);
    return n;
}
