/* session.c — server-side sessions and CSRF tokens (see session.h).
 *
 * Sessions live in a hash table (chained, keyed by the id's first 8 bytes) and on a list in
 * creation order, so the oldest is found at once when the table is full. Each login also keeps its
 * own sessions in creation order (a small table of logins), so a login over its bound loses its own
 * oldest session, found at once, and one account logging in again and again never reaches anyone
 * else's session.
 *
 * Cluster mode: each entry remembers the second it was last checked in the shared store (checked_s)
 * and whether it was learnt from there (learnt: a copy, dropped without ending it). Calls to the
 * store are made without the lock held; keys of sessions ended under the lock wait in pending and
 * are deleted from the store once it is released. */
#include "web/session.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_BUCKETS 4096
#define S_LOGIN_BUCKETS 4096
#define S_PENDING 16

typedef struct s_login_t s_login_t;

typedef struct s_session_t {
    char id[SESSION_ID_HEX];
    char csrf[SESSION_ID_HEX];
    uint64_t login;
    char name[64];
    int64_t created_s, last_s;
    int64_t checked_s;                   /* cluster mode: the second it was last checked (-1 never) */
    int learnt;                          /* cluster mode: created on another node */
    struct s_session_t *next_hash;
    struct s_session_t *older, *newer;   /* creation order */
    s_login_t *owner;                    /* its login's entry */
    struct s_session_t *login_older, *login_newer;   /* creation order among its login's sessions */
} s_session_t;

/* A login with live sessions. */
struct s_login_t {
    uint64_t login;
    int count;
    s_session_t *oldest, *newest;
    s_login_t *next_hash;
};

struct session_store_t {
    session_opts_t o;
    pthread_mutex_t mu;
    s_session_t *buckets[S_BUCKETS];
    s_session_t *oldest, *newest;
    int sessions;
    s_login_t *logins[S_LOGIN_BUCKETS];
    char cookie[32];
    session_remote_t remote;
    int has_remote;
    char pending[S_PENDING][SESSION_ID_HEX];   /* keys to delete from the store */
    int npending;
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
    if (self->o.max_per_login <= 0) self->o.max_per_login = 10;
    if (!self->o.now_s) self->o.now_s = s_real_now;
    snprintf(self->cookie, sizeof self->cookie, "%s", self->o.cookie && *self->o.cookie ? self->o.cookie : SESSION_COOKIE);
    self->o.cookie = self->cookie;
    if (self->o.remote && self->o.remote->get) {
        self->remote = *self->o.remote;
        self->has_remote = 1;
    }
    self->o.remote = NULL;
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
    for (int i = 0; i < S_LOGIN_BUCKETS; i++) {
        s_login_t *l = self->logins[i];
        while (l) {
            s_login_t *n = l->next_hash;
            free(l);
            l = n;
        }
    }
    pthread_mutex_destroy(&self->mu);
    if (self->has_remote && self->remote.destroy)
        self->remote.destroy(self->remote.arg);
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

static unsigned s_login_bucket(uint64_t login)
{
    login ^= login >> 29;
    login *= 0xbf58476d1ce4e5b9ull;
    login ^= login >> 32;
    return (unsigned) (login % S_LOGIN_BUCKETS);
}

/* login's entry, made when make is set and it has none; NULL if none (or no memory). */
/* The per-login table's key for a named session: FNV-1a of the name with the top bit set, so it
 * never equals an MT5 login (those stay far below 2^63). */
static uint64_t s_name_key(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h | (1ull << 63);
}

static s_login_t *s_login_of(session_store_t *self, uint64_t login, int make)
{
    unsigned b = s_login_bucket(login);
    for (s_login_t *l = self->logins[b]; l; l = l->next_hash)
        if (l->login == login)
            return l;
    if (!make)
        return NULL;
    s_login_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->login = login;
    l->next_hash = self->logins[b];
    self->logins[b] = l;
    return l;
}

/* Takes s off its login's list; the login's entry goes with its last session. */
static void s_login_unlink(session_store_t *self, s_session_t *s)
{
    s_login_t *l = s->owner;
    if (!l)
        return;
    if (s->login_older) s->login_older->login_newer = s->login_newer; else l->oldest = s->login_newer;
    if (s->login_newer) s->login_newer->login_older = s->login_older; else l->newest = s->login_older;
    s->owner = NULL;
    if (--l->count > 0)
        return;
    s_login_t **pp = &self->logins[s_login_bucket(l->login)];
    while (*pp && *pp != l)
        pp = &(*pp)->next_hash;
    if (*pp)
        *pp = l->next_hash;
    free(l);
}

int session_key(const char *id, char key[SESSION_ID_HEX])
{
    if (!s_id_valid(id))
        return -1;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *) id, 64);
    sodium_bin2hex(key, SESSION_ID_HEX, h, sizeof h);
    return 0;
}

/* Takes s out of the table and frees it. end: the session ends (in cluster mode its key is queued
 * for deletion from the store, unless it is a learnt copy dropped by eviction: end 2). Under the lock. */
static void s_unlink(session_store_t *self, s_session_t *s, int end)
{
    if (self->has_remote && (end == 1 || (end == 2 && !s->learnt)) && self->npending < S_PENDING)
        session_key(s->id, self->pending[self->npending++]);
    s_login_unlink(self, s);
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
            s_unlink(self, s, 0);
            return NULL;
        }
        return s;
    }
    return NULL;
}

/* Puts s (filled) into the table under owner_key, after evicting the oldest session while the table
 * is full. 0, or -1 without memory (s is freed). Under the lock. */
static int s_link(session_store_t *self, s_session_t *s, uint64_t owner_key)
{
    while (self->sessions >= self->o.max_sessions && self->oldest)
        s_unlink(self, self->oldest, 2);
    s_login_t *mine = s_login_of(self, owner_key, 1);
    if (!mine) {
        sodium_memzero(s, sizeof *s);
        free(s);
        return -1;
    }
    s->owner = mine;
    s->login_older = mine->newest;
    if (mine->newest) mine->newest->login_newer = s; else mine->oldest = s;
    mine->newest = s;
    mine->count++;
    unsigned b = s_bucket(s->id);
    s->next_hash = self->buckets[b];
    self->buckets[b] = s;
    s->older = self->newest;
    if (self->newest) self->newest->newer = s; else self->oldest = s;
    self->newest = s;
    self->sessions++;
    return 0;
}

/* Deletes the queued keys from the store. Without the lock. */
static void s_flush(session_store_t *self)
{
    if (!self->has_remote)
        return;
    char keys[S_PENDING][SESSION_ID_HEX];
    pthread_mutex_lock(&self->mu);
    int n = self->npending;
    memcpy(keys, self->pending, sizeof keys);
    self->npending = 0;
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < n; i++)
        self->remote.del(self->remote.arg, keys[i], NULL);
    sodium_memzero(keys, sizeof keys);
}

/* The per-login table's key of a session of login or name. */
static uint64_t s_owner_key(uint64_t login, const char *name)
{
    /* A named session (an admin's) is counted against its name, not against login 0 that every
     * named session shares: one admin's logins never end another admin's sessions. */
    return name && *name ? s_name_key(name) : login;
}

static int s_create(session_store_t *self, uint64_t login, const char *name, char id_out[SESSION_ID_HEX])
{
    s_session_t *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    session_random_hex(s->id);
    session_random_hex(s->csrf);
    s->login = login;
    snprintf(s->name, sizeof s->name, "%s", name ? name : "");
    pthread_mutex_lock(&self->mu);
    s->created_s = s->last_s = s->checked_s = s_now(self);
    pthread_mutex_unlock(&self->mu);
    if (self->has_remote) {
        /* stored before it is handed out: a session the other nodes cannot check is never given */
        char key[SESSION_ID_HEX];
        session_info_t info = { .login = login, .created_s = s->created_s, .last_s = s->last_s };
        memcpy(info.name, s->name, sizeof info.name);
        memcpy(info.csrf, s->csrf, SESSION_ID_HEX);
        session_key(s->id, key);
        int rc = self->remote.put(self->remote.arg, key, &info, self->o.absolute_s);
        sodium_memzero(&info, sizeof info);
        if (rc != 0) {
            sodium_memzero(s, sizeof *s);
            free(s);
            return -1;
        }
    }
    pthread_mutex_lock(&self->mu);
    /* The login's own oldest goes first: a login never holds more than max_per_login sessions,
     * so logging one account in again and again cannot fill the table and push others out. */
    uint64_t owner_key = s_owner_key(login, name);
    s_login_t *mine = s_login_of(self, owner_key, 0);
    while (mine && mine->count >= self->o.max_per_login) {
        int last = mine->count == 1;
        s_unlink(self, mine->oldest, 2);
        if (last)
            mine = NULL;   /* freed with its last session */
    }
    int rc = s_link(self, s, owner_key);
    if (rc == 0)
        memcpy(id_out, s->id, SESSION_ID_HEX);
    pthread_mutex_unlock(&self->mu);
    s_flush(self);
    return rc;
}

int session_create(session_store_t *self, uint64_t login, char id_out[SESSION_ID_HEX])
{
    return s_create(self, login, NULL, id_out);
}

int session_create_named(session_store_t *self, const char *name, char id_out[SESSION_ID_HEX])
{
    return s_create(self, 0, name, id_out);
}

const char *session_cookie_name(const session_store_t *self)
{
    return self->o.cookie;
}

int session_end_named(session_store_t *self, const char *name)
{
    int n = 0;
    pthread_mutex_lock(&self->mu);
    for (s_session_t *s = self->oldest; s;) {
        s_session_t *next = s->newer;
        if (name && s->name[0] && strcmp(s->name, name) == 0) {
            s_unlink(self, s, 0);   /* the store loses them all below */
            n++;
        }
        s = next;
    }
    pthread_mutex_unlock(&self->mu);
    if (self->has_remote && name && *name)
        self->remote.del(self->remote.arg, NULL, name);
    return n;
}

static void s_copy_out(const s_session_t *s, session_info_t *out)
{
    if (!out)
        return;
    out->login = s->login;
    memcpy(out->name, s->name, sizeof out->name);
    memcpy(out->csrf, s->csrf, SESSION_ID_HEX);
    out->created_s = s->created_s;
    out->last_s = s->last_s;
}

/* Cluster mode: checks id in the store (touching it when touch) and brings this node's copy in line:
 * learnt when unknown, dropped when the store has none or it expired there. 0 live (copied to out),
 * -1 refused. */
static int s_get_checked(session_store_t *self, const char *id, session_info_t *out, int touch)
{
    char key[SESSION_ID_HEX];
    if (session_key(id, key) != 0)
        return -1;
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now(self);
    pthread_mutex_unlock(&self->mu);
    session_info_t doc;
    memset(&doc, 0, sizeof doc);
    int rc = self->remote.get(self->remote.arg, key, touch ? now : 0, &doc);
    pthread_mutex_lock(&self->mu);
    s_session_t *s = s_find(self, id, now);
    int ok = -1;
    if (rc == 1 && s) {
        s_unlink(self, s, 0);                      /* ended on another node */
    } else if (rc == 0 && (now - doc.last_s >= self->o.idle_s || now - doc.created_s >= self->o.absolute_s)) {
        if (s)
            s_unlink(self, s, 1);                  /* expired: gone from the store too */
        else if (self->npending < S_PENDING)
            memcpy(self->pending[self->npending++], key, SESSION_ID_HEX);
    } else if (rc == 0) {
        if (!s && (s = calloc(1, sizeof *s)) != NULL) {
            memcpy(s->id, id, 64);
            memcpy(s->csrf, doc.csrf, 64);
            s->login = doc.login;
            memcpy(s->name, doc.name, sizeof s->name);
            s->name[sizeof s->name - 1] = '\0';
            s->created_s = doc.created_s;
            s->learnt = 1;
            if (s_link(self, s, s_owner_key(s->login, s->name)) != 0)
                s = NULL;
        }
        if (s) {
            if (doc.last_s > s->last_s)
                s->last_s = doc.last_s;
            if (touch)
                s->last_s = now;
            s->checked_s = now;
            s_copy_out(s, out);
            ok = 0;
        }
    }
    pthread_mutex_unlock(&self->mu);
    sodium_memzero(&doc, sizeof doc);
    s_flush(self);
    return ok;
}

static int s_get(session_store_t *self, const char *id, session_info_t *out, int touch)
{
    pthread_mutex_lock(&self->mu);
    int64_t now = s_now(self);
    s_session_t *s = s_find(self, id, now);
    if (s && self->has_remote && s->checked_s != now)
        s = NULL;                                  /* not checked this second: ask the store */
    else if (!s && self->has_remote && s_id_valid(id))
        ;                                          /* maybe created on another node */
    else {
        if (s) {
            if (touch)
                s->last_s = now;
            s_copy_out(s, out);
        }
        pthread_mutex_unlock(&self->mu);
        return s ? 0 : -1;
    }
    pthread_mutex_unlock(&self->mu);
    return s_get_checked(self, id, out, touch);
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
    session_info_t info;
    if (self->has_remote && s_get(self, id, &info, 0) != 0)
        return -1;                                 /* ended elsewhere: its token is no good either */
    int ok = -1;
    pthread_mutex_lock(&self->mu);
    s_session_t *s = s_find(self, id, s_now(self));
    if (s && sodium_memcmp(s->csrf, token, 64) == 0)
        ok = 0;
    pthread_mutex_unlock(&self->mu);
    sodium_memzero(&info, sizeof info);
    return ok;
}

int session_end(session_store_t *self, const char *id)
{
    pthread_mutex_lock(&self->mu);
    s_session_t *s = s_find(self, id, s_now(self));
    if (s)
        s_unlink(self, s, 0);
    pthread_mutex_unlock(&self->mu);
    char key[SESSION_ID_HEX];
    if (self->has_remote && session_key(id, key) == 0)
        self->remote.del(self->remote.arg, key, NULL);   /* wherever it was created */
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
            s_unlink(self, s, 0);
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
                     self->o.cookie, id, secure ? "; Secure" : "", (long long) self->o.absolute_s);
    else
        n = snprintf(buf, len, "%s=; Path=/; HttpOnly; SameSite=Strict%s; Max-Age=0",
                     self->o.cookie, secure ? "; Secure" : "");
    return (n < 0 || (size_t) n >= len) ? -1 : 0;
}
