/* workq.h — a stage's bounded list of work: messages waiting to be handled, each with the time it
 * is due (now, or later after a failure) and an ordering key.
 *
 * Order: items with the same non-zero key are handled strictly in arrival order — an item waits
 * while an earlier item with its key is still in the list, even if that one is backing off (the
 * crediter keys by MT5 login, so one login's deposits are credited in the order they arrived).
 * Key 0 imposes no order; a handler may set its item's key to 0 (before asking for a retry) to
 * stop it ordering the items after it (the crediter's later check of a finished credit). Bounded: workq_push refuses beyond cap; a stage stops reading its socket
 * while its list is full (back-pressure, nothing dropped). Not thread-safe: one actor owns it. */
#ifndef KASA_ACTORS_WORKQ_H
#define KASA_ACTORS_WORKQ_H

#include <stddef.h>
#include <stdint.h>

typedef struct workq_t workq_t;

typedef struct {
    uint8_t *bytes;     /* the message (a msgpack record), owned by the list */
    size_t len;
    uint64_t key;       /* ordering key, 0 for none */
    int64_t due_ms;     /* monotonic ms when it may be handled */
    uint32_t tries;     /* how many times handling it asked to be retried */
    int64_t since_ms;   /* monotonic ms when it arrived */
} workq_item_t;

/* A list for at most cap items (cap >= 1). NULL on no memory. */
workq_t *workq_new(size_t cap);
/* Frees every item; sets *self_p to NULL. Safe on NULL and twice. */
void workq_destroy(workq_t **self_p);

size_t workq_size(const workq_t *self);
int workq_full(const workq_t *self);

/* Copies len bytes in as a new last item, due at due_ms. 0, or -1 if full or no memory. */
int workq_push(workq_t *self, const void *bytes, size_t len, uint64_t key, int64_t due_ms);

/* The first item (in arrival order) that is due at now_ms and has no earlier item with its key;
 * NULL if none. The pointer is valid until the next push or remove. */
workq_item_t *workq_next(workq_t *self, int64_t now_ms);

/* Milliseconds until some item becomes eligible (0 if one is now), or -1 if the list is empty. */
int64_t workq_wait_ms(workq_t *self, int64_t now_ms);

/* Removes item (from workq_next) and frees its bytes. */
void workq_remove(workq_t *self, workq_item_t *item);

/* Capped exponential backoff with jitter: d = min(cap_ms, base_ms * 2^tries), then a uniform value
 * in [d/2, d]. rng is the caller's xorshift state (any non-zero seed). */
int64_t workq_backoff_ms(uint32_t tries, int64_t base_ms, int64_t cap_ms, uint64_t *rng);

#endif
