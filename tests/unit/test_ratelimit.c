/* test_ratelimit.c — request rates per key: bursts, refill with a moved clock, the wait announced,
 * keys apart, and a full table that keeps a limited key over idle ones. */
#include <stdint.h>
#include <stdio.h>

#include "tests/check.h"
#include "web/ratelimit.h"

static int64_t s_clock_ms;

static int64_t s_now(void *arg)
{
    (void) arg;
    return s_clock_ms;
}

static ratelimit_t *s_new(int rate, int burst, int keys)
{
    ratelimit_opts_t o = {.rate_per_s = rate, .burst = burst, .max_keys = keys, .now_ms = s_now};
    return ratelimit_new(&o);
}

static void test_a_burst_then_the_rate(void)
{
    s_clock_ms = 1000000;
    ratelimit_t *t = s_new(2, 10, 64);
    int64_t wait = 0;
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(ratelimit_take(t, "s:a", &wait), 0);
    CHECK_EQ_INT(ratelimit_take(t, "s:a", &wait), -1);
    CHECK_EQ_INT(wait, 500);                 /* 2 a second: one token every 500 ms */
    s_clock_ms += 499;
    CHECK_EQ_INT(ratelimit_take(t, "s:a", &wait), -1);
    CHECK_EQ_INT(wait, 1);
    s_clock_ms += 1;
    CHECK_EQ_INT(ratelimit_take(t, "s:a", &wait), 0);
    CHECK_EQ_INT(ratelimit_take(t, "s:a", &wait), -1);
    s_clock_ms += 60000;                     /* a long pause refills to the burst, not beyond */
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(ratelimit_take(t, "s:a", &wait), 0);
    CHECK_EQ_INT(ratelimit_take(t, "s:a", &wait), -1);
    ratelimit_destroy(&t);
    ratelimit_destroy(&t);   /* safe twice */
}

static void test_keys_are_counted_apart(void)
{
    s_clock_ms = 5000000;
    ratelimit_t *t = s_new(1, 3, 64);
    int64_t wait;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(ratelimit_take(t, "i:10.0.0.1", &wait), 0);
    CHECK_EQ_INT(ratelimit_take(t, "i:10.0.0.1", &wait), -1);
    CHECK_EQ_INT(ratelimit_take(t, "i:10.0.0.2", &wait), 0);
    CHECK_EQ_INT(ratelimit_take(t, NULL, &wait), 0);
    ratelimit_destroy(&t);
}

static void test_bad_options_are_refused(void)
{
    ratelimit_opts_t o = {.rate_per_s = 0, .burst = 5};
    CHECK(ratelimit_new(&o) == NULL);
    o.rate_per_s = 1;
    o.burst = 0;
    CHECK(ratelimit_new(&o) == NULL);
    CHECK(ratelimit_new(NULL) == NULL);
}

/* A table of 8 slots (one probe window): 1,000 new keys go through it, yet a limited key keeps
 * its empty bucket, because the fullest bucket is the one that makes room. */
static void test_a_limited_key_survives_a_flood_of_new_keys(void)
{
    s_clock_ms = 9000000;
    ratelimit_t *t = s_new(1, 2, 8);
    int64_t wait;
    CHECK_EQ_INT(ratelimit_take(t, "s:limited", &wait), 0);
    CHECK_EQ_INT(ratelimit_take(t, "s:limited", &wait), 0);
    CHECK_EQ_INT(ratelimit_take(t, "s:limited", &wait), -1);
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof key, "s:other-%d", i);
        ratelimit_take(t, key, &wait);   /* each takes one of two: never emptier than the limited one */
    }
    CHECK_EQ_INT(ratelimit_take(t, "s:limited", &wait), -1);
    ratelimit_destroy(&t);
}

int main(void)
{
    RUN(test_a_burst_then_the_rate);
    RUN(test_keys_are_counted_apart);
    RUN(test_bad_options_are_refused);
    RUN(test_a_limited_key_survives_a_flood_of_new_keys);
    return check_done();
}
