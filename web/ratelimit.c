/* ratelimit.c — see ratelimit.h. Open addressing on a hash of the key, S_PROBE slots per key. */
#include "web/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_PROBE 8
#define S_KEY_MAX 72

typedef struct {
    char key[S_KEY_MAX];   /* "" when free */
    int64_t milli;         /* tokens × 1000 at at_ms */
    int64_t at_ms;
} s_bucket_t;

struct ratelimit_t {
    ratelimit_opts_t o;
    pthread_mutex_t mu;
    s_bucket_t *slots;
};

static int64_t s_mono_ms(void *arg)
{
    (void) arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ratelimit_t *ratelimit_new(const ratelimit_opts_t *opts)
{
    if (!opts || opts->rate_per_s < 1 || opts->burst < 1)
        return NULL;
    ratelimit_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->o = *opts;
    if (self->o.max_keys < S_PROBE)
        self->o.max_keys = 8192;
    if (!self->o.now_ms)
        self->o.now_ms = s_mono_ms;
    self->slots = calloc((size_t) self->o.max_keys, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    return self;
}

void ratelimit_destroy(ratelimit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ratelimit_t *self = *self_p;
    *self_p = NULL;
    pthread_mutex_destroy(&self->mu);
    free(self->slots);
    free(self);
}

static uint64_t s_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = key; *p; p++) {
        h ^= (unsigned char) *p;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* b's tokens (× 1000) at now, refilled and capped at burst. */
static int64_t s_level(const ratelimit_t *self, const s_bucket_t *b, int64_t now)
{
    int64_t cap = (int64_t) self->o.burst * 1000;
    int64_t elapsed = now > b->at_ms ? now - b->at_ms : 0;
    if (elapsed > cap)   /* enough to fill any bucket (rate >= 1/s): no overflow below */
        return cap;
    int64_t level = b->milli + elapsed * self->o.rate_per_s;
    return level < cap ? level : cap;
}

int ratelimit_take(ratelimit_t *self, const char *key, int64_t *retry_ms)
{
    char k[S_KEY_MAX];
    size_t n = key ? strlen(key) : 0;
    if (n >= sizeof k)
        n = sizeof k - 1;
    memcpy(k, key ? key : "", n);
    k[n] = '\0';
    int64_t cap = (int64_t) self->o.burst * 1000;

    pthread_mutex_lock(&self->mu);
    int64_t now = self->o.now_ms(self->o.now_arg);
    size_t start = (size_t) (s_hash(k) % (uint64_t) self->o.max_keys);
    s_bucket_t *b = NULL, *victim = NULL;
    int64_t victim_level = -1;
    for (int i = 0; i < S_PROBE; i++) {
        s_bucket_t *c = &self->slots[(start + (size_t) i) % (size_t) self->o.max_keys];
        if (c->key[0] && strcmp(c->key, k) == 0) {
            b = c;
            break;
        }
        int64_t level = c->key[0] ? s_level(self, c, now) : cap + 1;   /* a free slot beats all */
        if (level > victim_level) {
            victim = c;
            victim_level = level;
        }
    }
    if (!b) {
        b = victim;
        memcpy(b->key, k, n + 1);
        b->milli = cap;
        b->at_ms = now;
    }
    b->milli = s_level(self, b, now);
    b->at_ms = now;
    int rc = 0;
    if (b->milli >= 1000) {
        b->milli -= 1000;
    } else {
        int64_t need = 1000 - b->milli;
        int64_t wait = (need + self->o.rate_per_s - 1) / self->o.rate_per_s;
        if (retry_ms)
            *retry_ms = wait > 0 ? wait : 1;
        rc = -1;
    }
    pthread_mutex_unlock(&self->mu);
    return rc;
}
