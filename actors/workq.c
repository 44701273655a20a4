/* workq.c — see workq.h. An array of item pointers in arrival order; "has an earlier item with
 * its key" is answered in one pass with a small open-addressing set of keys stamped by generation
 * (no clearing between passes). */
#include "actors/workq.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t key;
    uint64_t gen;
} s_slot_t;

struct workq_t {
    workq_item_t **items;
    size_t count, cap;
    s_slot_t *seen;      /* 2 * cap slots (power of two) */
    size_t seen_mask;
    uint64_t gen;
};

workq_t *workq_new(size_t cap)
{
    if (cap < 1)
        cap = 1;
    workq_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    size_t slots = 2;
    while (slots < cap * 2)
        slots <<= 1;
    self->items = calloc(cap, sizeof *self->items);
    self->seen = calloc(slots, sizeof *self->seen);
    if (!self->items || !self->seen) {
        workq_destroy(&self);
        return NULL;
    }
    self->cap = cap;
    self->seen_mask = slots - 1;
    return self;
}

void workq_destroy(workq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    workq_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free(self->items[i]->bytes);
        free(self->items[i]);
    }
    free(self->items);
    free(self->seen);
    free(self);
    *self_p = NULL;
}

size_t workq_size(const workq_t *self)
{
    return self->count;
}

int workq_full(const workq_t *self)
{
    return self->count >= self->cap;
}

int workq_push(workq_t *self, const void *bytes, size_t len, uint64_t key, int64_t due_ms)
{
    if (self->count >= self->cap)
        return -1;
    workq_item_t *it = calloc(1, sizeof *it);
    uint8_t *copy = malloc(len ? len : 1);
    if (!it || !copy) {
        free(it);
        free(copy);
        return -1;
    }
    if (len)
        memcpy(copy, bytes, len);
    it->bytes = copy;
    it->len = len;
    it->key = key;
    it->due_ms = due_ms;
    it->since_ms = due_ms;
    self->items[self->count++] = it;
    return 0;
}

/* 1 if key was already seen in this pass (then the item is not the head of its key); marks it. */
static int s_seen(workq_t *self, uint64_t key)
{
    size_t h = (size_t) ((key * 0x9E3779B97F4A7C15ull) >> 17) & self->seen_mask;
    for (size_t probes = 0; probes <= self->seen_mask; probes++, h = (h + 1) & self->seen_mask) {
        s_slot_t *s = &self->seen[h];
        if (s->gen != self->gen) {
            s->gen = self->gen;
            s->key = key;
            return 0;
        }
        if (s->key == key)
            return 1;
    }
    return 1; /* cannot happen: the set has twice as many slots as the list has items */
}

/* Calls the pass over eligible heads; returns the first due one, and the earliest due time. */
static workq_item_t *s_scan(workq_t *self, int64_t now_ms, int64_t *earliest)
{
    self->gen++;
    *earliest = -1;
    for (size_t i = 0; i < self->count; i++) {
        workq_item_t *it = self->items[i];
        if (it->key && s_seen(self, it->key))
            continue;
        if (it->due_ms <= now_ms)
            return it;
        if (*earliest < 0 || it->due_ms < *earliest)
            *earliest = it->due_ms;
    }
    return NULL;
}

workq_item_t *workq_next(workq_t *self, int64_t now_ms)
{
    int64_t earliest;
    return s_scan(self, now_ms, &earliest);
}

int64_t workq_wait_ms(workq_t *self, int64_t now_ms)
{
    int64_t earliest;
    if (!self->count)
        return -1;
    if (s_scan(self, now_ms, &earliest))
        return 0;
    return earliest < 0 ? -1 : earliest - now_ms;
}

void workq_remove(workq_t *self, workq_item_t *item)
{
    for (size_t i = 0; i < self->count; i++) {
        if (self->items[i] != item)
            continue;
        memmove(&self->items[i], &self->items[i + 1], (self->count - i - 1) * sizeof *self->items);
        self->count--;
        free(item->bytes);
        free(item);
        return;
    }
}

int64_t workq_backoff_ms(uint32_t tries, int64_t base_ms, int64_t cap_ms, uint64_t *rng)
{
    int64_t d = base_ms < 1 ? 1 : base_ms;
    for (uint32_t i = 0; i < tries && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    uint64_t x = *rng ? *rng : 0x2545F4914F6CDD1Dull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    int64_t half = d / 2;
    return half + (int64_t) (x % (uint64_t) (d - half + 1));
}
