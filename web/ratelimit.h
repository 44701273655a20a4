/* ratelimit.h — request rates per key (a session, a client IP): token buckets in a bounded table.
 *
 * Each key has a bucket of burst tokens refilled at rate_per_s; a request takes one token or is
 * refused with the time until the next one. Counting is in thousandths of a token, in integers.
 * The table holds max_keys buckets: a new key takes a free slot, else the slot (among a few
 * probed) whose bucket is fullest — a full bucket is the same as no bucket, so evicting it forgets
 * nothing; a key that is being limited keeps its empty bucket unless every probed slot is limited
 * too. Time comes from opts.now_ms (tests move it). Thread-safe. */
#ifndef KASA_WEB_RATELIMIT_H
#define KASA_WEB_RATELIMIT_H

#include <stdint.h>

typedef struct ratelimit_t ratelimit_t;

typedef struct {
    int rate_per_s;              /* tokens added per second, >= 1 */
    int burst;                   /* bucket size, >= 1 */
    int max_keys;                /* default 8192 */
    int64_t (*now_ms)(void *arg);/* monotonic ms; NULL: CLOCK_MONOTONIC */
    void *now_arg;
} ratelimit_opts_t;

/* NULL on bad options (rate or burst < 1) or no memory. */
ratelimit_t *ratelimit_new(const ratelimit_opts_t *opts);
/* Frees; nulls *self_p; safe on NULL and twice. */
void ratelimit_destroy(ratelimit_t **self_p);

/* One request of key ("" and NULL are one key): 0 if allowed (a token is taken), or -1 if over the
 * rate, with the ms until a token is back in *retry_ms (>= 1). */
int ratelimit_take(ratelimit_t *self, const char *key, int64_t *retry_ms);

#endif
