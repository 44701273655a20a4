/* test_throttle.c — failed-login limits (web/throttle.h) with a moved clock: progressive delay per
 * (login, client) that never touches the owner at another address, the hard limit per client,
 * IPv6 counted per /64, the alarmed login, parallel attempts, success and forgive, and a table that
 * address rotation cannot flush. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tests/check.h"
#include "web/throttle.h"

static int64_t s_clock = 1700000000;

static int64_t s_now(void *arg)
{
    (void) arg;
    return s_clock;
}

static throttle_t *s_new(int max_entries)
{
    throttle_opts_t o = {.pair_free = 5, .pair_max_delay_s = 900, .pair_forget_s = 3600, .client_max = 30,
                         .account_alarm = 100, .window_s = 900, .max_entries = max_entries, .now_s = s_now};
    return throttle_new(&o);
}

static netaddr_t s_ip(const char *text)
{
    netaddr_t a;
    memset(&a, 0, sizeof a);
    if (netaddr_parse(text, strlen(text), 0, &a) != 0)
        fprintf(stderr, "  bad test address %s\n", text);
    return a;
}

/* One wrong password: 0 if the attempt was allowed (and is now counted), else -1 with *wait. */
static int s_fail(throttle_t *t, uint64_t login, const char *ip, int64_t *wait)
{
    netaddr_t a = s_ip(ip);
    return throttle_attempt(t, login, &a, wait);
}

static void test_pair_gets_five_free_then_doubling_waits(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    int64_t wait = -1;
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(s_fail(t, 42, "10.0.0.1", &wait), 0);
    CHECK_EQ_INT(s_fail(t, 42, "10.0.0.1", &wait), -1);
    CHECK_EQ_INT(wait, 1);
    int64_t expect[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900 };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        CHECK_EQ_INT(s_fail(t, 42, "10.0.0.1", &wait), -1);
        CHECK_EQ_INT(wait, expect[i]);
        s_clock += expect[i] - 1;
        CHECK_EQ_INT(s_fail(t, 42, "10.0.0.1", &wait), -1);   /* one second early */
        CHECK_EQ_INT(wait, 1);
        s_clock += 1;
        CHECK_EQ_INT(s_fail(t, 42, "10.0.0.1", &wait), 0);    /* on time: allowed, and counted */
    }
    throttle_destroy(&t);
}

static void test_owner_at_another_address_is_never_locked_out(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    int64_t wait;
    for (int i = 0; i < 25; i++) {      /* an attacker keeps failing on 42, as fast as allowed */
        if (s_fail(t, 42, "198.51.100.66", &wait) != 0)
            s_clock += wait;
    }
    netaddr_t owner = s_ip("203.0.113.10");
    CHECK_EQ_INT(throttle_attempt(t, 42, &owner, &wait), 0);
    CHECK_EQ_INT(wait, 0);
    throttle_success(t, 42, &owner);
    CHECK_EQ_INT(throttle_attempt(t, 42, &owner, &wait), 0);   /* and again: nothing left counted */
    throttle_success(t, 42, &owner);
    CHECK_EQ_INT(s_fail(t, 42, "198.51.100.66", &wait), -1);   /* the attacker still waits */
    throttle_destroy(&t);
}

static void test_success_clears_the_pair_and_forgive_undoes_one(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    int64_t wait;
    netaddr_t a = s_ip("192.0.2.1");
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(throttle_attempt(t, 7, &a, &wait), 0);
    CHECK_EQ_INT(throttle_attempt(t, 7, &a, &wait), 0);       /* 5th: the server could not judge it */
    throttle_forgive(t, 7, &a);
    CHECK_EQ_INT(throttle_attempt(t, 7, &a, &wait), 0);       /* still only 4 counted: the 5th */
    CHECK_EQ_INT(throttle_attempt(t, 7, &a, &wait), -1);
    s_clock += 1;
    CHECK_EQ_INT(throttle_attempt(t, 7, &a, &wait), 0);
    throttle_success(t, 7, &a);
    for (int i = 0; i < 5; i++)                               /* a fresh start after the success */
        CHECK_EQ_INT(throttle_attempt(t, 7, &a, &wait), 0);
    throttle_destroy(&t);
}

static void test_client_hard_limit_across_logins(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    int64_t wait;
    for (int i = 0; i < 30; i++)
        CHECK_EQ_INT(s_fail(t, 1000 + (uint64_t) i, "192.0.2.7", &wait), 0);   /* 30 logins, 1 each */
    CHECK_EQ_INT(s_fail(t, 5000, "192.0.2.7", &wait), -1);
    CHECK_EQ_INT(wait, 900);
    CHECK_EQ_INT(s_fail(t, 5000, "192.0.2.8", &wait), 0);                      /* another client */
    s_clock += 900;
    CHECK_EQ_INT(s_fail(t, 5000, "192.0.2.7", &wait), 0);                      /* the next window */
    throttle_destroy(&t);
}

static void test_successes_do_not_count_against_a_shared_address(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    int64_t wait;
    netaddr_t office = s_ip("203.0.113.5");
    for (int i = 0; i < 100; i++) {     /* 100 investors behind one NAT log in fine */
        CHECK_EQ_INT(throttle_attempt(t, 3000 + (uint64_t) i, &office, &wait), 0);
        throttle_success(t, 3000 + (uint64_t) i, &office);
    }
    CHECK_EQ_INT(throttle_attempt(t, 88, &office, &wait), 0);
    throttle_destroy(&t);
}

static void test_ipv6_is_counted_per_64(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    int64_t wait;
    char ip[64];
    for (int i = 0; i < 30; i++) {      /* a new address of one /64 for every attempt */
        snprintf(ip, sizeof ip, "2001:db8:aa:bb:%x::%x", i, i + 1);
        CHECK_EQ_INT(s_fail(t, 2000 + (uint64_t) i, ip, &wait), 0);
    }
    CHECK_EQ_INT(s_fail(t, 5000, "2001:db8:aa:bb:ffff:1:2:3", &wait), -1);
    CHECK_EQ_INT(s_fail(t, 5000, "2001:db8:aa:bc::1", &wait), 0);   /* the next /64 */
    for (int i = 0; i < 5; i++) {       /* the pair too: one login from rotating addresses */
        snprintf(ip, sizeof ip, "2001:db8:cc:dd::%x", i + 1);
        CHECK_EQ_INT(s_fail(t, 77, ip, &wait), 0);
    }
    CHECK_EQ_INT(s_fail(t, 77, "2001:db8:cc:dd::99", &wait), -1);
    CHECK_EQ_INT(s_fail(t, 77, "::ffff:192.0.2.200", &wait), 0);    /* mapped IPv4: its own client */
    throttle_destroy(&t);
}

static void test_a_login_under_wide_attack_gives_each_client_one_free_failure(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(4096);
    int64_t wait;
    char ip[64];
    for (int i = 0; i < 100; i++) {     /* 100 clients, one guess each */
        snprintf(ip, sizeof ip, "10.1.%d.%d", i / 200, i % 200 + 1);
        CHECK_EQ_INT(s_fail(t, 55, ip, &wait), 0);
    }
    CHECK_EQ_INT(s_fail(t, 55, "10.9.9.9", &wait), 0);     /* a new client: its one free failure */
    CHECK_EQ_INT(s_fail(t, 55, "10.9.9.9", &wait), -1);    /* then it waits */
    netaddr_t owner = s_ip("203.0.113.10");
    CHECK_EQ_INT(throttle_attempt(t, 55, &owner, &wait), 0);   /* the owner's first try is allowed */
    throttle_success(t, 55, &owner);
    CHECK_EQ_INT(s_fail(t, 56, "10.9.9.9", &wait), 0);     /* other logins keep five */
    throttle_destroy(&t);
}

typedef struct {
    throttle_t *t;
    int allowed;
} s_race_t;

static void *s_try(void *arg)
{
    s_race_t *r = arg;
    int64_t wait;
    r->allowed = s_fail(r->t, 77, "198.51.100.1", &wait) == 0;
    return NULL;
}

static void test_attempts_in_parallel_cannot_pass_the_limit(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    enum { N = 32 };
    s_race_t r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (s_race_t){.t = t};
        pthread_create(&th[i], NULL, s_try, &r[i]);
    }
    int allowed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        allowed += r[i].allowed;
    }
    CHECK_EQ_INT(allowed, 5);          /* every attempt counted before its password is checked */
    throttle_destroy(&t);
}

static void test_address_rotation_cannot_flush_a_limited_entry(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(256);
    int64_t wait;
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(s_fail(t, 42, "198.51.100.66", &wait), 0);
    for (int i = 0; i < 30; i++)       /* and a client at its hard limit */
        s_fail(t, 9000 + (uint64_t) i, "198.51.100.77", &wait);
    char ip[64];
    for (int i = 0; i < 20000; i++) {  /* junk logins from 20,000 fresh addresses */
        snprintf(ip, sizeof ip, "100.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        s_fail(t, 600000 + (uint64_t) i, ip, &wait);
        CHECK(throttle_entries(t) <= 256);
    }
    CHECK_EQ_INT(s_fail(t, 42, "198.51.100.66", &wait), -1);   /* still delayed */
    CHECK_EQ_INT(s_fail(t, 1, "198.51.100.77", &wait), -1);    /* still at its limit */
    throttle_destroy(&t);
}

static void test_expired_entries_are_forgotten(void)
{
    s_clock = 1700000000;
    throttle_t *t = s_new(1024);
    int64_t wait;
    for (int i = 0; i < 6; i++)
        s_fail(t, 42, "10.0.0.1", &wait);
    CHECK_EQ_INT(s_fail(t, 42, "10.0.0.1", &wait), -1);
    s_clock += 3600;                   /* an hour without a failure */
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(s_fail(t, 42, "10.0.0.1", &wait), 0);
    throttle_destroy(&t);
}

int main(void)
{
    RUN(test_pair_gets_five_free_then_doubling_waits);
    RUN(test_owner_at_another_address_is_never_locked_out);
    RUN(test_success_clears_the_pair_and_forgive_undoes_one);
    RUN(test_client_hard_limit_across_logins);
    RUN(test_successes_do_not_count_against_a_shared_address);
    RUN(test_ipv6_is_counted_per_64);
    RUN(test_a_login_under_wide_attack_gives_each_client_one_free_failure);
    RUN(test_attempts_in_parallel_cannot_pass_the_limit);
    RUN(test_address_rotation_cannot_flush_a_limited_entry);
    RUN(test_expired_entries_are_forgotten);
    return check_done();
}
