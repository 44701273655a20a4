/* admins.c — see admins.h. Accounts in a czmq hash by name; one function (s_apply_locked) turns a
 * record into memory for replay and live changes alike. Password hashing (deliberately slow) runs
 * outside the lock; a change is journaled under the lock (so two changes of one account reach the
 * journal in the order memory saw them) and waited for outside it. */
#include "actors/admins.h"

#include <czmq.h>
#undef LOG_DEBUG /* <syslog.h>, via czmq, would shadow schema/log.h's levels */
#undef LOG_INFO
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/snapshot.h"
#include "schema/log.h"
#include "schema/totp.h"

typedef struct {
    admin_view_t view;
    char pwhash[128];
    char totp[64];
    uint64_t last_step;   /* the last TOTP step accepted */
} s_admin_t;

struct admins_t {
    pthread_mutex_t lock;
    pthread_mutex_t share_mu;   /* cluster mode: a change's store-then-journal, and a sync pass, one at a time
                                 * (taken before lock, never while holding it) */
    admins_remote_t remote;     /* cluster mode's shared store (remote.put NULL: single node) */
    zhashx_t *by_name;    /* name → s_admin_t * (owned) */
    char dummy_hash[128]; /* verified against for an unknown name, so it costs the same time */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}
#define S_COPY(dst, src) s_copy((dst), sizeof(dst), (src))

static void s_free(void **item)
{
    if (*item)
        sodium_memzero(*item, sizeof(s_admin_t));
    free(*item);
    *item = NULL;
}

/* Argon2id at libsodium's interactive limits. 0 or -1. */
static int s_hash(const char *password, char out[128])
{
    return crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
}

/* The hash an unknown name's password is checked against, made without running Argon2id: the string
 * s_hash would write (argon2id, v=19, libsodium's interactive memory and passes, one lane) with a
 * random salt and a random 32-byte hash. crypto_pwhash_str_verify reads its cost from the string, so
 * checking any password against it runs the very Argon2id a real account's check runs (the time
 * taken does not tell whether a name exists) and fails: no password hashes to random bytes. Making
 * one costs microseconds where s_hash costs an Argon2id run (64 MiB, about 0.1-0.5 s) at every
 * start. 0, or -1 (it would not fit). */
static int s_dummy_hash(char out[128])
{
    unsigned char salt[crypto_pwhash_SALTBYTES], hash[32];
    char salt64[64], hash64[64];
    randombytes_buf(salt, sizeof salt);
    randombytes_buf(hash, sizeof hash);
    sodium_bin2base64(salt64, sizeof salt64, salt, sizeof salt, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    sodium_bin2base64(hash64, sizeof hash64, hash, sizeof hash, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    int n = snprintf(out, 128, "$argon2id$v=19$m=%zu,t=%llu,p=1$%s$%s", (size_t) (crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024),
                     (unsigned long long) crypto_pwhash_OPSLIMIT_INTERACTIVE, salt64, hash64);
    return n > 0 && n < 128 ? 0 : -1;
}

/* with_dummy: make the hash an unknown name is checked against */
static admins_t *s_new(int with_dummy)
{
    if (sodium_init() < 0)
        return NULL;
    admins_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    pthread_mutex_init(&self->share_mu, NULL);
    self->by_name = zhashx_new();
    if (!self->by_name || (with_dummy && s_dummy_hash(self->dummy_hash) != 0)) {
        admins_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->by_name, s_free);
    return self;
}

admins_t *admins_new(void)
{
    return s_new(1);
}

admins_t *admins_new_replica(void)
{
    return s_new(0);
}

const char *admins_dummy_hash(const admins_t *self)
{
    return self->dummy_hash;
}

/* Every field of an account, in one order, for both directions (journal/snapshot.h). */
static void s_pickle(snap_pk_t *p, s_admin_t *a)
{
    SNAP_PK_STR(p, a->view.name);
    int role = (int) a->view.role;
    snap_pk_int(p, &role);
    a->view.role = (admin_role_t) role;
    snap_pk_int(p, &a->view.disabled);
    snap_pk_int(p, &a->view.must_change);
    snap_pk_i64(p, &a->view.created_ms);
    snap_pk_i64(p, &a->view.changed_ms);
    snap_pk_i64(p, &a->view.last_login_ms);
    SNAP_PK_STR(p, a->view.created_by);
    SNAP_PK_STR(p, a->pwhash);
    SNAP_PK_STR(p, a->totp);
    snap_pk_u64(p, &a->last_step);
}

static int s_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int admins_save(admins_t *self, snap_pk_t *p)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = zhashx_size(self->by_name);
    snap_pk_u64(p, &n);
    /* by name: the same accounts encode to the same bytes */
    const char *names[ADMINS_MAX];
    size_t k = 0;
    for (s_admin_t *a = zhashx_first(self->by_name); a && k < ADMINS_MAX; a = zhashx_next(self->by_name))
        names[k++] = zhashx_cursor(self->by_name);
    if (k > 1)
        qsort(names, k, sizeof names[0], s_name_cmp);
    for (size_t i = 0; i < k && !p->bad; i++)
        s_pickle(p, zhashx_lookup(self->by_name, names[i]));
    pthread_mutex_unlock(&self->lock);
    return p->bad ? -1 : 0;
}

int admins_load(admins_t *self, snap_pk_t *p, char *err, size_t errlen)
{
    uint64_t n = 0;
    snap_pk_u64(p, &n);
    pthread_mutex_lock(&self->lock);
    int rc = n <= ADMINS_MAX && zhashx_size(self->by_name) == 0 ? 0 : -1;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        s_admin_t *a = calloc(1, sizeof *a);
        if (!a)
            rc = -1;
        else
            s_pickle(p, a);
        if (a && (p->bad || zhashx_insert(self->by_name, a->view.name, a) != 0)) {
            void *item = a;
            s_free(&item);
            rc = -1;
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (rc != 0 || p->bad || p->pos != p->len) {
        snprintf(err, errlen, "the admins section does not decode");
        return -1;
    }
    return 0;
}

void admins_destroy(admins_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    admins_t *self = *self_p;
    zhashx_destroy(&self->by_name);
    pthread_mutex_destroy(&self->lock);
    pthread_mutex_destroy(&self->share_mu);
    free(self);
    *self_p = NULL;
}

/* ---- applying records (replay and live) ---------------------------------------------------------- */

static void s_apply_locked(admins_t *self, const record_t *r)
{
    if (r->kind != RECORD_ADMIN_ACCOUNT || !r->admin[0])
        return;
    s_admin_t *a = zhashx_lookup(self->by_name, r->admin);
    int sync = strcmp(r->action, "sync") == 0;   /* cluster mode: the whole state another node wrote */
    if (strcmp(r->action, "add") == 0 || (sync && !a)) {
        if (a || zhashx_size(self->by_name) >= ADMINS_MAX)
            return;   /* a name is added once (the live path refuses a second add) */
        a = calloc(1, sizeof *a);
        if (!a)
            return;
        S_COPY(a->view.name, r->admin);
        a->view.created_ms = r->time_ms;
        S_COPY(a->view.created_by, r->actor);
        if (zhashx_insert(self->by_name, a->view.name, a) != 0) {
            free(a);
            return;
        }
    }
    if (!a)
        return;
    int role = admin_role_from_name(r->role);
    if (role >= 0)
        a->view.role = (admin_role_t) role;
    if (r->pwhash[0])
        S_COPY(a->pwhash, r->pwhash);
    if (r->totp[0]) {
        uint64_t kept = sync && strcmp(a->totp, r->totp) == 0 ? a->last_step : 0;
        S_COPY(a->totp, r->totp);
        a->last_step = kept;   /* a new secret: its codes have never been used */
    }
    if (sync && r->totp_step > a->last_step)
        a->last_step = r->totp_step;   /* a code used on another node is never accepted here */
    if (strcmp(r->action, "login") == 0) {
        if (r->totp_step > a->last_step)
            a->last_step = r->totp_step;
        a->view.last_login_ms = r->time_ms;
        return;
    }
    a->view.disabled = (r->flags & RECORD_ADMIN_DISABLED) != 0;
    a->view.must_change = (r->flags & RECORD_ADMIN_MUST_CHANGE) != 0;
    a->view.changed_ms = r->time_ms;
}

void admins_apply(admins_t *self, const record_t *r)
{
    pthread_mutex_lock(&self->lock);
    s_apply_locked(self, r);
    pthread_mutex_unlock(&self->lock);
}

long admins_replay(admins_t *self, const char *dir, char *err, size_t errlen)
{
    journal_reader_t *rd = journal_reader_open(dir, 1, err, errlen);
    if (!rd)
        return -1;
    record_t *r = malloc(sizeof *r);
    long n = 0;
    int got = 0;
    journal_entry_t je;
    while (r && (got = journal_reader_next(rd, &je)) == 1) {
        char why[128];
        if (record_decode(je.payload, je.len, r, why, sizeof why) != 0) {
            snprintf(err, errlen, "lsn %llu: %s", (unsigned long long) je.lsn, why);
            got = -2;
            break;
        }
        if (r->kind == RECORD_ADMIN_ACCOUNT) {
            admins_apply(self, r);
            n++;
        }
    }
    if (got == -1)
        snprintf(err, errlen, "%s", journal_reader_error(rd));
    if (r)
        sodium_memzero(r, sizeof *r);
    free(r);
    journal_reader_destroy(&rd);
    return !r ? -1 : got < 0 ? -1 : n;
}

/* ---- changes -------------------------------------------------------------------------------------- */

static int s_share_put(admins_t *self, const record_t *r, char *err, size_t errlen);
static int s_share_refresh(admins_t *self, journal_t *journal, const char *name);
static int s_shared(const admins_t *self);

/* Journals r and applies it, under the lock (the caller holds it); the LSN to wait for, or 0. */
static uint64_t s_submit_locked(admins_t *self, journal_t *journal, record_t *r, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (record_encode(r, &buf, &len, err, errlen) != 0)
        return 0;
    uint64_t lsn = journal_submit(journal, buf, len);
    sodium_memzero(buf, len);
    free(buf);
    if (!lsn) {
        snprintf(err, errlen, "the journal refused the record");
        return 0;
    }
    s_apply_locked(self, r);
    return lsn;
}

static int s_wait(journal_t *journal, uint64_t lsn, char *err, size_t errlen)
{
    if (journal_wait(journal, lsn) == 0)
        return 0;
    snprintf(err, errlen, "the journal failed: the change is not durable");
    return -1;
}

static void s_record(record_t *r, const char *action, const char *name, const char *actor, const char *origin)
{
    record_init(r, RECORD_ADMIN_ACCOUNT);
    r->time_ms = s_now_ms();
    S_COPY(r->action, action);
    S_COPY(r->admin, name);
    S_COPY(r->actor, actor ? actor : "");
    S_COPY(r->origin, origin ? origin : "");
}

/* A one-time password (20 characters without look-alikes) and a TOTP secret, hashed into r. */
static int s_credentials(record_t *r, char password[ADMINS_OTP_LEN], char secret[ADMINS_SECRET_LEN])
{
    static const char set[] = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    for (int i = 0; i < ADMINS_OTP_LEN - 1; i++)
        password[i] = set[randombytes_uniform(sizeof set - 1)];
    password[ADMINS_OTP_LEN - 1] = '\0';
    uint8_t key[TOTP_SECRET_BYTES];
    randombytes_buf(key, sizeof key);
    int rc = totp_base32_encode(key, sizeof key, secret, ADMINS_SECRET_LEN);
    sodium_memzero(key, sizeof key);
    if (rc != 0 || s_hash(password, r->pwhash) != 0)
        return -1;
    S_COPY(r->totp, secret);
    r->flags = RECORD_ADMIN_MUST_CHANGE;
    return 0;
}

/* The common path of add and reset. */
static int s_issue(admins_t *self, journal_t *journal, const char *action, const char *name, admin_role_t role,
                   const char *actor, const char *origin, char password[ADMINS_OTP_LEN],
                   char secret[ADMINS_SECRET_LEN], char *err, size_t errlen)
{
    int add = strcmp(action, "add") == 0;
    if (admin_name_check(name, err, errlen) != 0)
        return -1;
    if (add && (unsigned) role >= ADMIN_ROLE_COUNT) {
        snprintf(err, errlen, "unknown role");
        return -1;
    }
    record_t *r = malloc(sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s_record(r, action, name, actor, origin);
    if (add)
        S_COPY(r->role, admin_role_name(role));
    int rc = -1;
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->share_mu);
    if (s_credentials(r, password, secret) != 0) {
        snprintf(err, errlen, "cannot make credentials (out of memory)");
    } else if (s_share_put(self, r, err, errlen) != 0) {
        /* cluster mode: MongoDB did not store it, so nothing changed */
    } else {
        pthread_mutex_lock(&self->lock);
        s_admin_t *a = zhashx_lookup(self->by_name, name);
        if (add && a)
            snprintf(err, errlen, "admin %s exists already", name);
        else if (add && zhashx_size(self->by_name) >= ADMINS_MAX)
            snprintf(err, errlen, "too many admins (%d)", ADMINS_MAX);
        else if (!add && !a)
            snprintf(err, errlen, "unknown admin %s", name);
        else
            lsn = s_submit_locked(self, journal, r, err, errlen);
        pthread_mutex_unlock(&self->lock);
        if (lsn)
            rc = s_wait(journal, lsn, err, errlen);
    }
    pthread_mutex_unlock(&self->share_mu);
    sodium_memzero(r, sizeof *r);
    free(r);
    if (rc != 0) {
        sodium_memzero(password, ADMINS_OTP_LEN);
        sodium_memzero(secret, ADMINS_SECRET_LEN);
        password[0] = secret[0] = '\0';
        return -1;
    }
    log_info(add ? "admin.added" : "admin.reset", "admin=%s role=%s actor=%s origin=\"%s\"", name,
             add ? admin_role_name(role) : "-", actor ? actor : "", origin ? origin : "");
    return 0;
}

int admins_add(admins_t *self, journal_t *journal, const char *name, admin_role_t role, const char *actor,
               const char *origin, char password[ADMINS_OTP_LEN], char secret[ADMINS_SECRET_LEN], char *err,
               size_t errlen)
{
    return s_issue(self, journal, "add", name, role, actor, origin, password, secret, err, errlen);
}

int admins_reset(admins_t *self, journal_t *journal, const char *name, const char *actor, const char *origin,
                 char password[ADMINS_OTP_LEN], char secret[ADMINS_SECRET_LEN], char *err, size_t errlen)
{
    return s_issue(self, journal, "reset", name, ADMIN_ROLE_COUNT, actor, origin, password, secret, err, errlen);
}

int admins_disable(admins_t *self, journal_t *journal, const char *name, const char *actor, const char *origin,
                   char *err, size_t errlen)
{
    record_t *r = malloc(sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s_record(r, "disable", name ? name : "", actor, origin);
    uint64_t lsn = 0;
    int rc = -1;
    pthread_mutex_lock(&self->share_mu);
    admin_view_t now;
    if (s_shared(self) && name && admins_get(self, name, &now) == 0 && !now.disabled &&
        s_share_put(self, r, err, errlen) != 0) {
        pthread_mutex_unlock(&self->share_mu);   /* MongoDB did not store it: nothing changed */
        free(r);
        return -1;
    }
    pthread_mutex_lock(&self->lock);
    s_admin_t *a = name ? zhashx_lookup(self->by_name, name) : NULL;
    if (!a) {
        snprintf(err, errlen, "unknown admin %s", name ? name : "");
    } else if (a->view.disabled) {
        rc = 0;   /* already: nothing to journal */
    } else {
        r->flags = RECORD_ADMIN_DISABLED | (a->view.must_change ? RECORD_ADMIN_MUST_CHANGE : 0);
        lsn = s_submit_locked(self, journal, r, err, errlen);
    }
    pthread_mutex_unlock(&self->lock);
    pthread_mutex_unlock(&self->share_mu);
    free(r);
    if (lsn && (rc = s_wait(journal, lsn, err, errlen)) == 0)
        log_info("admin.disabled", "admin=%s actor=%s origin=\"%s\"", name, actor ? actor : "", origin ? origin : "");
    return rc;
}

/* Copies what a login needs out of the account, under the lock. 0, or -1 if unknown. */
static int s_secrets(admins_t *self, const char *name, char pwhash[128], uint8_t key[64], size_t *keylen)
{
    pthread_mutex_lock(&self->lock);
    s_admin_t *a = name ? zhashx_lookup(self->by_name, name) : NULL;
    if (a) {
        memcpy(pwhash, a->pwhash, 128);
        if (totp_base32_decode(a->totp, key, 64, keylen) != 0)
            *keylen = 0;
    }
    pthread_mutex_unlock(&self->lock);
    return a ? 0 : -1;
}

admins_login_t admins_login(admins_t *self, journal_t *journal, const char *name, const char *password,
                            const char *code, int64_t now_s, const char *origin, admin_view_t *out, char *err,
                            size_t errlen)
{
    char pwhash[128];
    uint8_t key[64];
    size_t keylen = 0;
    snprintf(err, errlen, "refused");
    if (!password || strlen(password) > 128)
        return ADMINS_LOGIN_REFUSED;
    /* cluster mode: the account as MongoDB has it (a change or disablement on another node counts at
     * once); a login MongoDB cannot confirm is refused, never let in on this node's copy alone */
    if (name && s_share_refresh(self, journal, name) != 0) {
        log_warn("admin.login_unconfirmed", "admin=%s reason=\"MongoDB did not answer\"", name);
        return ADMINS_LOGIN_REFUSED;
    }
    int known = s_secrets(self, name, pwhash, key, &keylen) == 0;
    /* the slow check runs whatever the name, so the time taken does not tell whether it exists */
    int pw_ok = crypto_pwhash_str_verify(known ? pwhash : self->dummy_hash, password, strlen(password)) == 0;
    sodium_memzero(pwhash, sizeof pwhash);
    if (!known || !pw_ok || !keylen) {
        sodium_memzero(key, sizeof key);
        return ADMINS_LOGIN_REFUSED;
    }
    record_t *r = malloc(sizeof *r);
    if (!r) {
        sodium_memzero(key, sizeof key);
        return ADMINS_LOGIN_REFUSED;
    }
    s_record(r, "login", name, name, origin);
    admins_login_t res = ADMINS_LOGIN_REFUSED;
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->lock);
    s_admin_t *a = zhashx_lookup(self->by_name, name);
    uint64_t step = 0;
    /* the step check and its journaling under one lock: two logins with one code cannot both pass */
    int verified = a && !a->view.disabled && totp_verify(key, keylen, code, now_s, a->last_step, &step) == 0;
    if (verified && s_shared(self)) {
        /* the step is taken in MongoDB first: one code, one login, on all nodes together */
        pthread_mutex_unlock(&self->lock);
        int taken = self->remote.step(self->remote.arg, name, step);
        pthread_mutex_lock(&self->lock);
        a = zhashx_lookup(self->by_name, name);
        verified = taken == 0 && a && !a->view.disabled && step >= a->last_step;   /* = : ours, learned meanwhile */
    }
    if (verified) {
        r->totp_step = step;
        lsn = s_submit_locked(self, journal, r, err, errlen);
        if (lsn && out)
            *out = a->view;
        res = lsn ? ADMINS_LOGIN_OK : ADMINS_LOGIN_FAILED;
    }
    pthread_mutex_unlock(&self->lock);
    sodium_memzero(key, sizeof key);
    free(r);
    if (res == ADMINS_LOGIN_OK && s_wait(journal, lsn, err, errlen) != 0)
        res = ADMINS_LOGIN_FAILED;
    if (res == ADMINS_LOGIN_OK)
        log_info("admin.login", "admin=%s origin=\"%s\"", name, origin ? origin : "");
    return res;
}

int admins_set_password(admins_t *self, journal_t *journal, const char *name, const char *current,
                        const char *password, const char *origin, char *err, size_t errlen)
{
    if (admin_password_check(name, password, err, errlen) != 0)
        return -1;
    if (current && strcmp(current, password) == 0) {
        snprintf(err, errlen, "the new password must differ from the current one");
        return -1;
    }
    char pwhash[128];
    uint8_t key[64];
    size_t keylen;
    int known = s_secrets(self, name, pwhash, key, &keylen) == 0;
    sodium_memzero(key, sizeof key);
    int ok = known && current && crypto_pwhash_str_verify(pwhash, current, strlen(current)) == 0;
    sodium_memzero(pwhash, sizeof pwhash);
    if (!ok) {
        snprintf(err, errlen, "the current password is wrong");
        return -1;
    }
    record_t *r = malloc(sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s_record(r, "password", name, name, origin);
    int rc = -1;
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->share_mu);
    if (s_hash(password, r->pwhash) != 0) {
        snprintf(err, errlen, "cannot hash the password (out of memory)");
    } else if (s_share_put(self, r, err, errlen) != 0) {
        /* cluster mode: MongoDB did not store it, so nothing changed */
    } else {
        pthread_mutex_lock(&self->lock);
        s_admin_t *a = zhashx_lookup(self->by_name, name);
        if (!a || a->view.disabled) {
            snprintf(err, errlen, "the account is disabled");
        } else {
            r->flags = 0;
            lsn = s_submit_locked(self, journal, r, err, errlen);
        }
        pthread_mutex_unlock(&self->lock);
        if (lsn)
            rc = s_wait(journal, lsn, err, errlen);
    }
    pthread_mutex_unlock(&self->share_mu);
    sodium_memzero(r, sizeof *r);
    free(r);
    if (rc == 0)
        log_info("admin.password_changed", "admin=%s origin=\"%s\"", name, origin ? origin : "");
    return rc;
}

/* ---- queries -------------------------------------------------------------------------------------- */

int admins_get(admins_t *self, const char *name, admin_view_t *out)
{
    pthread_mutex_lock(&self->lock);
    s_admin_t *a = name ? zhashx_lookup(self->by_name, name) : NULL;
    if (a)
        *out = a->view;
    pthread_mutex_unlock(&self->lock);
    return a ? 0 : -1;
}

static int s_by_name(const void *a, const void *b)
{
    return strcmp(((const admin_view_t *) a)->name, ((const admin_view_t *) b)->name);
}

int admins_each(admins_t *self, void (*fn)(void *arg, const admin_view_t *a), void *arg)
{
    pthread_mutex_lock(&self->lock);
    size_t n = zhashx_size(self->by_name), i = 0;
    admin_view_t *all = calloc(n ? n : 1, sizeof *all);
    for (s_admin_t *a = zhashx_first(self->by_name); all && a; a = zhashx_next(self->by_name))
        all[i++] = a->view;
    pthread_mutex_unlock(&self->lock);
    if (!all)
        return 0;
    qsort(all, i, sizeof *all, s_by_name);
    for (size_t k = 0; k < i; k++)
        fn(arg, &all[k]);
    free(all);
    return (int) i;
}

size_t admins_count(admins_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = zhashx_size(self->by_name);
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* ---- cluster mode ------------------------------------------------------------------------------- */

void admins_share(admins_t *self, const admins_remote_t *remote)
{
    if (remote)
        self->remote = *remote;
    else
        memset(&self->remote, 0, sizeof self->remote);
}

static int s_shared(const admins_t *self)
{
    return self->remote.put != NULL;
}

/* The shared state of account a. Under lock. */
static void s_doc_of(const s_admin_t *a, admins_doc_t *doc)
{
    memset(doc, 0, sizeof *doc);
    S_COPY(doc->name, a->view.name);
    S_COPY(doc->role, admin_role_name(a->view.role));
    S_COPY(doc->pwhash, a->pwhash);
    S_COPY(doc->totp, a->totp);
    S_COPY(doc->created_by, a->view.created_by);
    doc->flags = (a->view.disabled ? RECORD_ADMIN_DISABLED : 0) | (a->view.must_change ? RECORD_ADMIN_MUST_CHANGE : 0);
    doc->last_step = a->last_step;
    doc->created_ms = a->view.created_ms;
    doc->changed_ms = a->view.changed_ms;
}

/* Cluster mode: stores r's account as it is after r (add, reset, disable, password) in the shared
 * store, before r is journaled. 0 stored (or a single node); -1 with a reason: nothing changed.
 * Called with share_mu held, not lock. */
static int s_share_put(admins_t *self, const record_t *r, char *err, size_t errlen)
{
    if (!s_shared(self))
        return 0;
    int add = strcmp(r->action, "add") == 0;
    admins_doc_t doc;
    memset(&doc, 0, sizeof doc);
    pthread_mutex_lock(&self->lock);
    s_admin_t *a = zhashx_lookup(self->by_name, r->admin);
    int disabled = a && a->view.disabled;
    if (a)
        s_doc_of(a, &doc);
    pthread_mutex_unlock(&self->lock);
    int rc = -1;
    if (add && a) {
        snprintf(err, errlen, "admin %s exists already", r->admin);
    } else if (!add && !a) {
        snprintf(err, errlen, "unknown admin %s", r->admin);
    } else if (strcmp(r->action, "password") == 0 && disabled) {
        snprintf(err, errlen, "the account is disabled");
    } else {
        if (add) {
            S_COPY(doc.name, r->admin);
            doc.created_ms = r->time_ms;
            S_COPY(doc.created_by, r->actor);
        }
        if (r->role[0])
            S_COPY(doc.role, r->role);
        if (r->pwhash[0])
            S_COPY(doc.pwhash, r->pwhash);
        if (r->totp[0]) {
            S_COPY(doc.totp, r->totp);
            doc.last_step = 0;
            doc.new_secret = 1;
        }
        doc.flags = strcmp(r->action, "disable") == 0 ? doc.flags | RECORD_ADMIN_DISABLED : r->flags;
        doc.changed_ms = r->time_ms;
        rc = self->remote.put(self->remote.arg, &doc, add);
        if (rc > 0)
            snprintf(err, errlen, add ? "admin %s exists already (made on another node)" : "MongoDB refused the change of %s",
                     r->admin);
        else if (rc < 0)
            snprintf(err, errlen, "MongoDB did not answer: nothing changed; try again");
    }
    sodium_memzero(&doc, sizeof doc);
    return rc == 0 ? 0 : -1;
}

int admins_learn(admins_t *self, journal_t *journal, const admins_doc_t *doc)
{
    if (!doc->name[0] || admin_role_from_name(doc->role) < 0)
        return 0;
    record_t *r = malloc(sizeof *r);
    if (!r)
        return -1;
    char origin[72];
    snprintf(origin, sizeof origin, "node:%.58s", doc->node[0] ? doc->node : "?");
    s_record(r, "sync", doc->name, "kasa:cluster", origin);
    S_COPY(r->role, doc->role);
    S_COPY(r->pwhash, doc->pwhash);
    S_COPY(r->totp, doc->totp);
    r->flags = doc->flags & (RECORD_ADMIN_DISABLED | RECORD_ADMIN_MUST_CHANGE);
    r->totp_step = doc->last_step;
    char err[160] = "";
    uint64_t lsn = 0;
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    s_admin_t *a = zhashx_lookup(self->by_name, doc->name);
    int differs = !a || strcmp(admin_role_name(a->view.role), doc->role) != 0 || strcmp(a->pwhash, doc->pwhash) != 0 ||
                  strcmp(a->totp, doc->totp) != 0 || a->view.disabled != ((r->flags & RECORD_ADMIN_DISABLED) != 0) ||
                  a->view.must_change != ((r->flags & RECORD_ADMIN_MUST_CHANGE) != 0) ||
                  doc->last_step > a->last_step;
    if (differs && (a || zhashx_size(self->by_name) < ADMINS_MAX)) {
        lsn = s_submit_locked(self, journal, r, err, sizeof err);
        rc = lsn ? 1 : -1;
    }
    pthread_mutex_unlock(&self->lock);
    sodium_memzero(r, sizeof *r);
    free(r);
    if (lsn && s_wait(journal, lsn, err, sizeof err) != 0)
        rc = -1;
    if (rc == 1)
        log_info("admin.learned", "admin=%s role=%s disabled=%d from_node=%s", doc->name, doc->role,
                 (doc->flags & RECORD_ADMIN_DISABLED) != 0, doc->node);
    else if (rc < 0)
        log_warn("admin.learn_failed", "admin=%s reason=\"%s\"", doc->name, err);
    return rc;
}

typedef struct {
    admins_doc_t *docs;
    int n;
} s_docs_t;

static void s_collect(void *arg, const admins_doc_t *doc)
{
    s_docs_t *d = arg;
    if (d->n < ADMINS_MAX)
        d->docs[d->n++] = *doc;
}

int admins_sync(admins_t *self, journal_t *journal)
{
    if (!s_shared(self))
        return 0;
    s_docs_t d = { calloc(ADMINS_MAX, sizeof(admins_doc_t)), 0 };
    if (!d.docs)
        return -1;
    pthread_mutex_lock(&self->share_mu);
    int rc = self->remote.list(self->remote.arg, s_collect, &d);
    for (int i = 0; rc == 0 && i < d.n; i++)
        admins_learn(self, journal, &d.docs[i]);
    /* accounts this node has and the store lacks (made before cluster mode, or offline): stored */
    pthread_mutex_lock(&self->lock);
    size_t n = zhashx_size(self->by_name), mine = 0;
    admins_doc_t *local = rc == 0 ? calloc(n ? n : 1, sizeof *local) : NULL;
    for (s_admin_t *a = local ? zhashx_first(self->by_name) : NULL; a; a = zhashx_next(self->by_name)) {
        int there = 0;
        for (int i = 0; i < d.n && !there; i++)
            there = strcmp(d.docs[i].name, a->view.name) == 0;
        if (!there)
            s_doc_of(a, &local[mine++]);
    }
    pthread_mutex_unlock(&self->lock);
    for (size_t i = 0; i < mine; i++)
        if (self->remote.put(self->remote.arg, &local[i], 1) == 0)
            log_info("admin.shared", "admin=%s reason=\"this node had it, MongoDB did not\"", local[i].name);
    pthread_mutex_unlock(&self->share_mu);
    if (local) {
        sodium_memzero(local, (n ? n : 1) * sizeof *local);
        free(local);
    }
    sodium_memzero(d.docs, ADMINS_MAX * sizeof(admins_doc_t));
    free(d.docs);
    return rc == 0 ? 0 : -1;
}

/* Cluster mode, before a login: name's state as the store has it, learned here. 0 (learned, or a
 * single node, or the store lacks it and this node's copy was stored), -1 the store did not answer. */
static int s_share_refresh(admins_t *self, journal_t *journal, const char *name)
{
    if (!s_shared(self))
        return 0;
    admins_doc_t doc;
    pthread_mutex_lock(&self->share_mu);
    int rc = self->remote.get(self->remote.arg, name, &doc);
    if (rc == 0) {
        rc = admins_learn(self, journal, &doc) < 0 ? -1 : 0;
    } else if (rc == 1) {
        rc = 0;
        pthread_mutex_lock(&self->lock);
        s_admin_t *a = zhashx_lookup(self->by_name, name);
        if (a)
            s_doc_of(a, &doc);
        pthread_mutex_unlock(&self->lock);
        if (a && self->remote.put(self->remote.arg, &doc, 1) < 0)
            rc = -1;
    }
    pthread_mutex_unlock(&self->share_mu);
    sodium_memzero(&doc, sizeof doc);
    return rc;
}
