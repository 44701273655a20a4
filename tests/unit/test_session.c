/* test_session.c — sessions: ids, idle and absolute expiry (with a moved clock), CSRF, logout,
 * cookies, failed-login rate limits per login and per IP, and the bounds of both tables. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tests/check.h"
#include "web/session.h"

static int64_t s_clock = 1700000000;

static int64_t s_now(void *arg)
{
    (void) arg;
    return s_clock;
}

static session_store_t *s_store(int max_sessions, int max_rate)
{
    session_opts_t o = {.idle_s = 1800, .absolute_s = 43200, .max_sessions = max_sessions,
                        .login_max_failures = 5, .ip_max_failures = 20, .window_s = 900,
                        .max_rate_entries = max_rate, .now_s = s_now};
    return session_store_new(&o);
}

static void test_session_ids_are_random_hex_and_distinct(void)
{
    session_store_t *s = s_store(100, 100);
    char a[SESSION_ID_HEX], b[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create(s, 100001, a), 0);
    CHECK_EQ_INT(session_create(s, 100001, b), 0);
    CHECK_EQ_INT(strlen(a), 64);
    CHECK(strspn(a, "0123456789abcdef") == 64);
    CHECK(strcmp(a, b) != 0);
    session_info_t i1, i2;
    CHECK_EQ_INT(session_get(s, a, &i1), 0);
    CHECK_EQ_INT(session_get(s, b, &i2), 0);
    CHECK_EQ_INT(i1.login, 100001);
    CHECK_EQ_INT(strlen(i1.csrf), 64);
    CHECK(strcmp(i1.csrf, i2.csrf) != 0);
    CHECK(strcmp(i1.csrf, a) != 0);
    session_store_destroy(&s);
    CHECK(s == NULL);
    session_store_destroy(&s);
}

static void test_session_unknown_and_malformed_ids_are_refused(void)
{
    session_store_t *s = s_store(100, 100);
    char a[SESSION_ID_HEX];
    session_create(s, 7, a);
    char other[SESSION_ID_HEX];
    memcpy(other, a, sizeof other);
    other[10] = other[10] == 'a' ? 'b' : 'a';
    CHECK_EQ_INT(session_get(s, other, NULL), -1);
    CHECK_EQ_INT(session_get(s, "", NULL), -1);
    CHECK_EQ_INT(session_get(s, NULL, NULL), -1);
    char upper[SESSION_ID_HEX];
    for (int i = 0; i < 64; i++) upper[i] = (char) (a[i] >= 'a' ? a[i] - 32 : a[i]);
    upper[64] = 0;
    if (strcmp(upper, a) != 0)
        CHECK_EQ_INT(session_get(s, upper, NULL), -1);
    char longer[80];
    snprintf(longer, sizeof longer, "%s00", a);
    CHECK_EQ_INT(session_get(s, longer, NULL), -1);
    CHECK_EQ_INT(session_get(s, a, NULL), 0);
    session_store_destroy(&s);
}

static void test_session_idle_expiry_and_refresh(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 100);
    char a[SESSION_ID_HEX], b[SESSION_ID_HEX];
    session_create(s, 1, a);
    session_create(s, 2, b);
    s_clock += 1700;                       /* both idle 28 min: alive; a is used */
    CHECK_EQ_INT(session_get(s, a, NULL), 0);
    CHECK_EQ_INT(session_peek(s, b, NULL), 0);   /* peek does not refresh b */
    s_clock += 200;                        /* b idle 31 min: gone; a idle 3 min */
    CHECK_EQ_INT(session_get(s, b, NULL), -1);
    CHECK_EQ_INT(session_get(s, a, NULL), 0);
    CHECK_EQ_INT(session_count(s), 1);
    s_clock += 1800;                       /* a idle exactly 30 min: gone */
    CHECK_EQ_INT(session_get(s, a, NULL), -1);
    CHECK_EQ_INT(session_count(s), 0);
    session_store_destroy(&s);
}

static void test_session_absolute_expiry_despite_activity(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 100);
    char a[SESSION_ID_HEX];
    session_create(s, 1, a);
    for (int i = 0; i < 43; i++) {         /* used every 1000 s for 43000 s */
        s_clock += 1000;
        CHECK_EQ_INT(session_get(s, a, NULL), 0);
    }
    s_clock += 200;                        /* 43200 s after login: over */
    CHECK_EQ_INT(session_get(s, a, NULL), -1);
    CHECK_EQ_INT(session_check_csrf(s, a, "x"), -1);
    session_store_destroy(&s);
}

static void test_session_csrf_must_match_its_own_session(void)
{
    session_store_t *s = s_store(100, 100);
    char a[SESSION_ID_HEX], b[SESSION_ID_HEX];
    session_create(s, 1, a);
    session_create(s, 2, b);
    session_info_t ia, ib;
    session_get(s, a, &ia);
    session_get(s, b, &ib);
    CHECK_EQ_INT(session_check_csrf(s, a, ia.csrf), 0);
    CHECK_EQ_INT(session_check_csrf(s, a, ib.csrf), -1);   /* another session's token */
    CHECK_EQ_INT(session_check_csrf(s, a, NULL), -1);
    CHECK_EQ_INT(session_check_csrf(s, a, ""), -1);
    char near[SESSION_ID_HEX];
    memcpy(near, ia.csrf, sizeof near);
    near[63] = near[63] == '0' ? '1' : '0';
    CHECK_EQ_INT(session_check_csrf(s, a, near), -1);
    char prefix[40];
    memcpy(prefix, ia.csrf, 39);
    prefix[39] = 0;
    CHECK_EQ_INT(session_check_csrf(s, a, prefix), -1);
    session_store_destroy(&s);
}

static void test_session_logout_ends_it(void)
{
    session_store_t *s = s_store(100, 100);
    char a[SESSION_ID_HEX];
    session_create(s, 1, a);
    CHECK_EQ_INT(session_end(s, a), 0);
    CHECK_EQ_INT(session_get(s, a, NULL), -1);
    CHECK_EQ_INT(session_end(s, a), -1);
    session_store_destroy(&s);
}

static void test_session_cookie_flags(void)
{
    session_store_t *s = s_store(100, 100);
    char c[256];
    CHECK_EQ_INT(session_cookie(s, "abc", 1, c, sizeof c), 0);
    CHECK(strstr(c, "kasa_sid=abc;") == c);
    CHECK(strstr(c, "HttpOnly") != NULL);
    CHECK(strstr(c, "SameSite=Strict") != NULL);
    CHECK(strstr(c, "Secure") != NULL);
    CHECK(strstr(c, "Path=/") != NULL);
    CHECK_EQ_INT(session_cookie(s, "abc", 0, c, sizeof c), 0);
    CHECK(strstr(c, "Secure") == NULL);
    CHECK_EQ_INT(session_cookie(s, NULL, 0, c, sizeof c), 0);
    CHECK(strstr(c, "Max-Age=0") != NULL);
    CHECK_EQ_INT(session_cookie(s, "abc", 0, c, 10), -1);
    session_store_destroy(&s);
}

static void test_session_table_is_bounded_oldest_evicted(void)
{
    session_store_t *s = s_store(3, 100);
    char id[5][SESSION_ID_HEX];
    for (int i = 0; i < 5; i++)
        session_create(s, (uint64_t) i + 1, id[i]);
    CHECK_EQ_INT(session_count(s), 3);
    CHECK_EQ_INT(session_get(s, id[0], NULL), -1);
    CHECK_EQ_INT(session_get(s, id[1], NULL), -1);
    for (int i = 2; i < 5; i++)
        CHECK_EQ_INT(session_get(s, id[i], NULL), 0);
    session_store_destroy(&s);
}

static void test_rate_limit_per_login_five_in_fifteen_minutes(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 100);
    int64_t wait = -1;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(session_rate_check(s, 42, "10.0.0.1", &wait), 0);
        session_rate_fail(s, 42, "10.0.0.1");
        s_clock += 60;
    }
    /* 5 failures at t0, t0+60 ... t0+240; now t0+300 */
    CHECK_EQ_INT(session_rate_check(s, 42, "10.0.0.9", &wait), -1);   /* another IP: still limited */
    CHECK_EQ_INT(wait, 600);                                           /* t0 + 900 - (t0 + 300) */
    CHECK_EQ_INT(session_rate_check(s, 43, "10.0.0.1", &wait), 0);    /* another login from the IP */
    s_clock += 599;
    CHECK_EQ_INT(session_rate_check(s, 42, NULL, &wait), -1);
    CHECK_EQ_INT(wait, 1);
    s_clock += 1;                                                      /* the first failure left */
    CHECK_EQ_INT(session_rate_check(s, 42, NULL, &wait), 0);
    session_rate_fail(s, 42, NULL);                                    /* 5 in the window again */
    CHECK_EQ_INT(session_rate_check(s, 42, NULL, &wait), -1);
    CHECK_EQ_INT(wait, 60);                                            /* until t0+60's leaves */
    session_store_destroy(&s);
}

static void test_rate_limit_success_clears_login(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 100);
    for (int i = 0; i < 4; i++)
        session_rate_fail(s, 42, NULL);
    session_rate_success(s, 42, NULL);
    session_rate_fail(s, 42, NULL);
    int64_t wait;
    CHECK_EQ_INT(session_rate_check(s, 42, NULL, &wait), 0);
    CHECK_EQ_INT(wait, 0);
    session_store_destroy(&s);
}

static void test_rate_limit_per_ip_across_logins(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 100);
    for (int i = 0; i < 20; i++)
        session_rate_fail(s, 1000 + (uint64_t) i, "192.0.2.7");   /* 20 logins, 1 failure each */
    int64_t wait;
    CHECK_EQ_INT(session_rate_check(s, 5000, "192.0.2.7", &wait), -1);
    CHECK(wait >= 1 && wait <= 900);
    CHECK_EQ_INT(session_rate_check(s, 5000, "192.0.2.8", &wait), 0);
    session_store_destroy(&s);
}

static void test_rate_table_is_bounded(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 8);        /* 8 entries: logins and IPs share them */
    for (int i = 0; i < 5; i++)
        session_rate_fail(s, 42, NULL);
    int64_t wait;
    CHECK_EQ_INT(session_rate_check(s, 42, NULL, &wait), -1);
    for (int i = 0; i < 100; i++) {              /* 100 other keys push the oldest out */
        s_clock += 1;
        session_rate_fail(s, 9000 + (uint64_t) i, NULL);
    }
    CHECK_EQ_INT(session_rate_check(s, 42, NULL, &wait), 0);
    CHECK_EQ_INT(session_rate_check(s, 9099, NULL, &wait), 0);   /* one failure: not limited */
    for (int i = 0; i < 4; i++)
        session_rate_fail(s, 9099, NULL);
    CHECK_EQ_INT(session_rate_check(s, 9099, NULL, &wait), -1);  /* the newest entry survived */
    session_store_destroy(&s);
}

typedef struct {
    session_store_t *s;
    int allowed;
} s_race_t;

static void *s_try(void *arg)
{
    s_race_t *r = arg;
    int64_t wait;
    r->allowed = session_rate_attempt(r->s, 77, "198.51.100.1", &wait) == 0;
    return NULL;
}

static void test_rate_attempts_in_parallel_cannot_pass_the_limit(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 100);
    enum { N = 32 };
    s_race_t r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (s_race_t){.s = s};
        pthread_create(&th[i], NULL, s_try, &r[i]);
    }
    int allowed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        allowed += r[i].allowed;
    }
    CHECK_EQ_INT(allowed, 5);          /* every attempt counted before its password is checked */
    session_store_destroy(&s);
}

static void test_rate_success_and_forgive_undo_the_attempt(void)
{
    s_clock = 1700000000;
    session_store_t *s = s_store(100, 100);
    int64_t wait;
    /* 19 investors behind one address log in fine: the address is not limited by successes */
    for (int i = 0; i < 19; i++) {
        CHECK_EQ_INT(session_rate_attempt(s, 3000 + (uint64_t) i, "203.0.113.5", &wait), 0);
        session_rate_success(s, 3000 + (uint64_t) i, "203.0.113.5");
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(session_rate_attempt(s, 88, "203.0.113.5", &wait), 0);   /* 4 wrong */
    CHECK_EQ_INT(session_rate_attempt(s, 88, "203.0.113.5", &wait), 0);       /* 5th: server down */
    session_rate_forgive(s, 88, "203.0.113.5");
    CHECK_EQ_INT(session_rate_check(s, 88, "203.0.113.5", &wait), 0);         /* still 4 */
    CHECK_EQ_INT(session_rate_attempt(s, 88, "203.0.113.5", &wait), 0);       /* 5th wrong */
    CHECK_EQ_INT(session_rate_attempt(s, 88, "203.0.113.5", &wait), -1);
    CHECK_EQ_INT(wait, 900);
    session_store_destroy(&s);
}

int main(void)
{
    RUN(test_session_ids_are_random_hex_and_distinct);
    RUN(test_session_unknown_and_malformed_ids_are_refused);
    RUN(test_session_idle_expiry_and_refresh);
    RUN(test_session_absolute_expiry_despite_activity);
    RUN(test_session_csrf_must_match_its_own_session);
    RUN(test_session_logout_ends_it);
    RUN(test_session_cookie_flags);
    RUN(test_session_table_is_bounded_oldest_evicted);
    RUN(test_rate_limit_per_login_five_in_fifteen_minutes);
    RUN(test_rate_limit_success_clears_login);
    RUN(test_rate_limit_per_ip_across_logins);
    RUN(test_rate_table_is_bounded);
    RUN(test_rate_attempts_in_parallel_cannot_pass_the_limit);
    RUN(test_rate_success_and_forgive_undo_the_attempt);
    return check_done();
}
