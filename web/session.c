/* session.c — server-side sessions, CSRF tokens and failed-login rate limits (see session.h).
 *
 * Sessions live in a hash table (chained, keyed by the id's first 8 bytes) and on a list in
 * creation order, so the oldest is found at once when the table is full. Rate entries are few and
 * short-lived: a plain bounded array, scanned. */
#include "web/session.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_BUCKETS 4096
#define S_RATE_RING 64   /* the most failures a window may count */

typedef struct s_session_t {
    char id[SESSION_ID_HEX];
    char csrf[SESSION_ID_HEX];
    uint64_t login;
    int64_t created_s, last_s;
    struct s_session_t *next_hash;
    struct s_session_t *older, *newer;   /* creation order */
} s_session_t;

typedef struct {
    char key[72];                       /* "l:<login>" or "i:<ip>"; "" when free */
    int64_t fails[S_RATE_RING];         /* ring of failure times */
    int count;                          /* failures stored (<= max for its kind) */
    int head;                           /* next slot */
    int64_t last_s;
} s_rate_t;

struct session_store_t {
    session_opts_t o;
    pthread_mutex_t mu;
    s_session_t *buckets[S_BUCKETS];
    s_session_t *oldest, *newest;
    int sessions;
    s_rate_t *rates;
};

static int64_t s_real_now(void *arg)
{
    (void) arg;
    return (int64_t) time(NULL);
}

static int64_t s_now(const session_store_t *self)
{
    return self->o.now_s(self->o.now_arg);
}

session_store_t *session_store_new(const session_opts_t *opts)
{
    if (sodium_init() < 0)
        return NULL;
    session_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (opts)
        self->o = *opts;
    if (self->o.idle_s <= 0) self->o.idle_s = 1800;
    if (self->o.absolute_s <= 0) self->o.absolute_s = 43200;
    if (self->o.max_sessions <= 0) self->o.max_sessions = 10000;
    if (self->o.login_max_failures <= 0) self->o.login_max_failures = 5;
    if (self->o.ip_max_failures <= 0) self->o.ip_max_failures = 20;
    if (self->o.login_max_failures > S_RATE_RING) self->o.login_max_failures = S_RATE_RING;
    if (self->o.ip_max_failures > S_RATE_RING) self->o.ip_max_failures = S_RATE_RING;
    if (self->o.window_s <= 0) self->o.window_s = 900;
    if (self->o.max_rate_entries <= 0) self->o.max_rate_entries = 4096;
    if (!self->o.now_s) self->o.now_s = s_real_now;
    self->rates = calloc((size_t) self->o.max_rate_entries, sizeof *self->rates);
    if (!self->rates) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    return self;
}

void session_store_destroy(session_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    session_store_t *self = *self_p;
    s_session_t *s = self->oldest;
    while (s) {
        s_session_t *n = s->newer;
        sodium_memzero(s, sizeof *s);
        free(s);
        s = n;
    }
    free(self->rates);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

int session_random_hex(char out[SESSION_ID_HEX])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, SESSION_ID_HEX, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

/* 1 if id is exactly 64 lower-case hex characters. */
static int s_id_valid(const char *id)
{
    if (!id)
        return 0;
    size_t i = 0;
    for (; id[i] && i < 64; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return i == 64 && id[64] == '\0';
}

static unsigned s_bucket(const char *id)
{
    unsigned h = 0;
    for (int i = 0; i < 8; i++)
        h = h * 16u + (unsigned) (id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
    return h % S_BUCKETS;
}

static void s_unlink(session_store_t *self, s_session_t *s)
{
    s_session_t **pp = &self->buckets[s_bucket(s->id)];
    while (*pp && *pp != s)
        pp = &(*pp)->next_hash;
    if (*pp)
        *pp = s->next_hash;
    if (s->older) s->older->newer = s->newer; else self->oldest = s->newer;
    if (s->newer) s->newer->older = s->older; else self->newest = s->older;
    self->sessions--;
    sodium_memzero(s, sizeof *s);
    free(s);
}

static int s_expired(const session_store_t *self, const s_session_t *s, int64_t now)
{
    return now - s->last_s >= self->o.idle_s || now - s->created_s >= self->o.absolute_s;
}

/* The live session with id, or NULL (an expired one is removed). Under the lock. */
static s_session_t *s_find(session_store_t *self, const char *id, int64_t now)
{
    if (!s_id_valid(id))
        return NULL;
    for (s_session_t *s = self->buckets[s_bucket(id)]; s; s = s->next_hash) {
        if (sodium_memcmp(s->id, id, 64) != 0)
            continue;
        if (s_expired(self, s, now)) {
            s_unlink(self, s);
            return NULL;
        }
        return s;
    }
    return NULL;
}

int session_create(session_store_t *self, uint64_t login, char id_out[SESSION_ID_HEX])
{
    s_session_t *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    session_random_hex(s->id);
    session_random_hex(s->csrf);
    s->login = login;
    pthread_mutex_lock(&self->mu);
    s->created_s = s->last_s = s_now(self);
    while (self->sessions >= self->o.max_sessions && self->oldest)
        s_unlink(self, self->oldest);
    unsigned b = s_bucket(s->id);
    s->next_hash = self->buckets[b];
    self->buckets[b] = s;
    s->older = self->newest;
    if (self->newest) self->newest->newer = s; else self->oldest = s;
    self->newest = s;
    self->sessions++;
    memcpy(id_out, s->id, SESSION_ID_HEX);
    pthread_mutex_unlock(&self->mu);
    return 0;
}

static int s_get(session_store_t *self, const char *id, session_info_t *out, int touch)
{
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now(self);
    s_session_t *s = s_find(self, id, now);
    if (s) {
        if (touch)
            s->last_s = now;
        if (out) {
            out->login = s->login;
            memcpy(out->csrf, s->csrf, SESSION_ID_HEX);
            out->created_s = s->created_s;
            out->last_s = s->last_s;
        }
    }
    pthread_mutex_unlock(&self->mu);
    return s ? 0 : -1;
}

int session_get(session_store_t *self, const char *id, session_info_t *out)
{
    return s_get(self, id, out, 1);
}

int session_peek(session_store_t *self, const char *id, session_info_t *out)
{
    return s_get(self, id, out, 0);
}

int session_check_csrf(session_store_t *self, const char *id, const char *token)
{
    if (!token || strlen(token) != 64)
        return -1;
    int ok = -1;
    pthread_mutex_lock(&self->mu);
    s_session_t *s = s_find(self, id, s_now(self));
    if (s && sodium_memcmp(s->csrf, token, 64) == 0)
        ok = 0;
    pthread_mutex_unlock(&self->mu);
    return ok;
}

int session_end(session_store_t *self, const char *id)
{
    pthread_mutex_lock(&self->mu);
    s_session_t *s = s_find(self, id, s_now(self));
    if (s)
        s_unlink(self, s);
    pthread_mutex_unlock(&self->mu);
    return s ? 0 : -1;
}

int session_count(session_store_t *self)
{
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now(self);
    s_session_t *s = self->oldest;
    while (s) {
        s_session_t *n = s->newer;
        if (s_expired(self, s, now))
            s_unlink(self, s);
        s = n;
    }
    int n = self->sessions;
    pthread_mutex_unlock(&self->mu);
    return n;
}

int session_cookie(const session_store_t *self, const char *id, int secure, char *buf, size_t len)
{
    int n;
    if (id)
        n = snprintf(buf, len, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s; Max-Age=%lld",
                     SESSION_COOKIE, id, secure ? "; Secure" : "", (long long) self->o.absolute_s);
    else
        n = snprintf(buf, len, "%s=; Path=/; HttpOnly; SameSite=Strict%s; Max-Age=0",
                     SESSION_COOKIE, secure ? "; Secure" : "");
    return (n < 0 || (size_t) n >= len) ? -1 : 0;
}

/* ---- rate limits ------------------------------------------------------------------------------ */

/* Failures of e still inside the window; older ones are forgotten. */
static int s_rate_live(const session_store_t *self, s_rate_t *e, int64_t now, int64_t *oldest)
{
    int live = 0;
    int64_t old = 0;
    for (int i = 0; i < e->count; i++) {
        int64_t t = e->fails[i];
        if (now - t < self->o.window_s) {
            live++;
            if (!old || t < old)
                old = t;
        }
    }
    if (oldest)
        *oldest = old;
    return live;
}

static s_rate_t *s_rate_find(session_store_t *self, const char *key)
{
    for (int i = 0; i < self->o.max_rate_entries; i++)
        if (self->rates[i].key[0] && strcmp(self->rates[i].key, key) == 0)
            return &self->rates[i];
    return NULL;
}

/* key's entry, made if missing; when the table is full the entry with the oldest failure goes. */
static s_rate_t *s_rate_take(session_store_t *self, const char *key, int64_t now)
{
    s_rate_t *e = s_rate_find(self, key);
    if (e)
        return e;
    s_rate_t *victim = NULL;
    for (int i = 0; i < self->o.max_rate_entries; i++) {
        s_rate_t *r = &self->rates[i];
        if (!r->key[0] || now - r->last_s >= self->o.window_s) { victim = r; break; }
        if (!victim || r->last_s < victim->last_s)
            victim = r;
    }
    memset(victim, 0, sizeof *victim);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    return victim;
}

static void s_key(char *buf, size_t len, uint64_t login, const char *ip)
{
    if (ip)
        snprintf(buf, len, "i:%.64s", ip);
    else
        snprintf(buf, len, "l:%llu", (unsigned long long) login);
}

/* Seconds until key may try again (0: now). */
static int64_t s_rate_wait(session_store_t *self, const char *key, int max, int64_t now)
{
    s_rate_t *e = s_rate_find(self, key);
    if (!e)
        return 0;
    int64_t oldest;
    int live = s_rate_live(self, e, now, &oldest);
    if (live < max)
        return 0;
    /* The max most recent failures count; the window reopens when the oldest of them ages out.
     * With a ring of exactly max slots, the oldest stored failure is that one. */
    int64_t wait = oldest + self->o.window_s - now;
    return wait < 1 ? 1 : wait;
}

int session_rate_check(session_store_t *self, uint64_t login, const char *ip, int64_t *retry_after_s)
{
    char key[72];
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now(self);
    s_key(key, sizeof key, login, NULL);
    int64_t w1 = s_rate_wait(self, key, self->o.login_max_failures, now);
    int64_t w2 = 0;
    if (ip && *ip) {
        s_key(key, sizeof key, 0, ip);
        w2 = s_rate_wait(self, key, self->o.ip_max_failures, now);
    }
    pthread_mutex_unlock(&self->mu);
    int64_t w = w1 > w2 ? w1 : w2;
    if (retry_after_s)
        *retry_after_s = w;
    return w > 0 ? -1 : 0;
}

static void s_rate_add(session_store_t *self, const char *key, int max, int64_t now)
{
    s_rate_t *e = s_rate_take(self, key, now);
    e->fails[e->head] = now;
    e->head = (e->head + 1) % max;
    if (e->count < max)
        e->count++;
    e->last_s = now;
}

void session_rate_fail(session_store_t *self, uint64_t login, const char *ip)
{
    char key[72];
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now(self);
    s_key(key, sizeof key, login, NULL);
    s_rate_add(self, key, self->o.login_max_failures, now);
    if (ip && *ip) {
        s_key(key, sizeof key, 0, ip);
        s_rate_add(self, key, self->o.ip_max_failures, now);
    }
    pthread_mutex_unlock(&self->mu);
}

/* Undoes the most recent failure counted for key (under the lock). */
static void s_rate_undo(session_store_t *self, const char *key, int max)
{
    s_rate_t *e = s_rate_find(self, key);
    if (!e || e->count == 0)
        return;
    e->head = (e->head + max - 1) % max;
    e->fails[e->head] = 0;
    e->count--;
    if (e->count == 0)
        memset(e, 0, sizeof *e);
}

int session_rate_attempt(session_store_t *self, uint64_t login, const char *ip, int64_t *retry_after_s)
{
    char key[72];
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now(self);
    s_key(key, sizeof key, login, NULL);
    int64_t w = s_rate_wait(self, key, self->o.login_max_failures, now);
    if (ip && *ip) {
        char ikey[72];
        s_key(ikey, sizeof ikey, 0, ip);
        int64_t w2 = s_rate_wait(self, ikey, self->o.ip_max_failures, now);
        if (w2 > w)
            w = w2;
        if (w == 0)
            s_rate_add(self, ikey, self->o.ip_max_failures, now);
    }
    if (w == 0)
        s_rate_add(self, key, self->o.login_max_failures, now);
    pthread_mutex_unlock(&self->mu);
    if (retry_after_s)
        *retry_after_s = w;
    return w > 0 ? -1 : 0;
}

void session_rate_success(session_store_t *self, uint64_t login, const char *ip)
{
    char key[72];
    s_key(key, sizeof key, login, NULL);
    pthread_mutex_lock(&self->mu);
    s_rate_t *e = s_rate_find(self, key);
    if (e)
        memset(e, 0, sizeof *e);
    if (ip && *ip) {
        s_key(key, sizeof key, 0, ip);
        s_rate_undo(self, key, self->o.ip_max_failures);
    }
    pthread_mutex_unlock(&self->mu);
}

void session_rate_forgive(session_store_t *self, uint64_t login, const char *ip)
{
    char key[72];
    pthread_mutex_lock(&self->mu);
    s_key(key, sizeof key, login, NULL);
    s_rate_undo(self, key, self->o.login_max_failures);
    if (ip && *ip) {
        s_key(key, sizeof key, 0, ip);
        s_rate_undo(self, key, self->o.ip_max_failures);
    }
    pthread_mutex_unlock(&self->mu);
}
