/* test_session.c — sessions: ids, idle and absolute expiry (with a moved clock), CSRF, logout,
 * cookies, and the bound of the table (failed-login limits: test_throttle.c); cluster mode against an
 * in-memory shared store (against MongoDB: tests/integration/test_cluster.c). */
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

static session_store_t *s_store(int max_sessions)
{
    session_opts_t o = {.idle_s = 1800, .absolute_s = 43200, .max_sessions = max_sessions, .now_s = s_now};
    return session_store_new(&o);
}

static void test_session_ids_are_random_hex_and_distinct(void)
{
    session_store_t *s = s_store(100);
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
    session_store_t *s = s_store(100);
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
    session_store_t *s = s_store(100);
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
    session_store_t *s = s_store(100);
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
    session_store_t *s = s_store(100);
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
    session_store_t *s = s_store(100);
    char a[SESSION_ID_HEX];
    session_create(s, 1, a);
    CHECK_EQ_INT(session_end(s, a), 0);
    CHECK_EQ_INT(session_get(s, a, NULL), -1);
    CHECK_EQ_INT(session_end(s, a), -1);
    session_store_destroy(&s);
}

static void test_session_cookie_flags(void)
{
    session_store_t *s = s_store(100);
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

static void test_named_sessions_have_their_own_cookie_and_end_together(void)
{
    session_opts_t o = {.idle_s = 600, .absolute_s = 28800, .now_s = s_now, .cookie = "kasa_admin"};
    session_store_t *s = session_store_new(&o);
    CHECK_EQ_STR(session_cookie_name(s), "kasa_admin");
    char c[256];
    CHECK_EQ_INT(session_cookie(s, "abc", 0, c, sizeof c), 0);
    CHECK(strstr(c, "kasa_admin=abc;") == c && strstr(c, "Max-Age=28800"));
    char a1[SESSION_ID_HEX], a2[SESSION_ID_HEX], b1[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create_named(s, "ayse", a1), 0);
    CHECK_EQ_INT(session_create_named(s, "ayse", a2), 0);
    CHECK_EQ_INT(session_create_named(s, "mehmet", b1), 0);
    session_info_t info;
    CHECK_EQ_INT(session_get(s, a1, &info), 0);
    CHECK_EQ_STR(info.name, "ayse");
    CHECK_EQ_INT(info.login, 0);
    CHECK_EQ_INT(session_end_named(s, "ayse"), 2);
    CHECK_EQ_INT(session_get(s, a1, NULL), -1);
    CHECK_EQ_INT(session_get(s, a2, NULL), -1);
    CHECK_EQ_INT(session_get(s, b1, &info), 0);
    CHECK_EQ_STR(info.name, "mehmet");
    s_clock += 600;   /* the admin idle time */
    CHECK_EQ_INT(session_get(s, b1, NULL), -1);
    session_store_destroy(&s);
    session_store_t *plain = s_store(10);
    CHECK_EQ_STR(session_cookie_name(plain), SESSION_COOKIE);
    session_store_destroy(&plain);
}

static void test_session_table_is_bounded_oldest_evicted(void)
{
    session_store_t *s = s_store(3);
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

static void test_one_login_flood_ends_only_its_own_oldest_sessions(void)
{
    session_opts_t o = {.max_sessions = 50, .max_per_login = 3};
    session_store_t *s = session_store_new(&o);
    char others[40][SESSION_ID_HEX];
    for (int i = 0; i < 40; i++)
        CHECK_EQ_INT(session_create(s, 1000 + (uint64_t) i, others[i]), 0);
    char flood[1000][SESSION_ID_HEX];
    for (int i = 0; i < 1000; i++)               /* one account, logged in 1,000 times */
        CHECK_EQ_INT(session_create(s, 7, flood[i]), 0);
    CHECK_EQ_INT(session_count(s), 43);          /* 40 others + the flood's newest 3 */
    for (int i = 0; i < 40; i++)
        CHECK_EQ_INT(session_get(s, others[i], NULL), 0);   /* nobody else was logged out */
    for (int i = 0; i < 997; i++)
        CHECK_EQ_INT(session_peek(s, flood[i], NULL), -1);
    for (int i = 997; i < 1000; i++)
        CHECK_EQ_INT(session_peek(s, flood[i], NULL), 0);
    CHECK_EQ_INT(session_end(s, flood[999]), 0);     /* the login's list stays whole */
    char again[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create(s, 7, again), 0);
    CHECK_EQ_INT(session_peek(s, flood[997], NULL), 0);   /* room: nothing else had to go */
    CHECK_EQ_INT(session_count(s), 43);
    session_store_destroy(&s);
}

/* Named (admin) sessions share login 0: one admin's repeated logins must end only that admin's
 * oldest sessions, never another admin's. */
static void test_one_admin_flood_ends_only_that_admins_sessions(void)
{
    session_opts_t o = {.max_sessions = 50, .max_per_login = 2, .cookie = "kasa_admin"};
    session_store_t *s = session_store_new(&o);
    char other[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create_named(s, "mehmet", other), 0);
    char flood[20][SESSION_ID_HEX];
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(session_create_named(s, "ayse", flood[i]), 0);
    CHECK_EQ_INT(session_get(s, other, NULL), 0);
    CHECK_EQ_INT(session_count(s), 3);
    CHECK_EQ_INT(session_peek(s, flood[17], NULL), -1);
    CHECK_EQ_INT(session_peek(s, flood[19], NULL), 0);
    session_store_destroy(&s);
}

/* ---- cluster mode: two nodes' stores on one in-memory shared store --------------------------------- */

#define F_MAX 32
static struct {
    char key[F_MAX][SESSION_ID_HEX];
    session_info_t info[F_MAX];
    int used[F_MAX];
    int down;
    int calls;
} s_f;

static int s_f_find(const char *key)
{
    for (int i = 0; i < F_MAX; i++)
        if (s_f.used[i] && strcmp(s_f.key[i], key) == 0)
            return i;
    return -1;
}

static int s_f_put(void *arg, const char *key, const session_info_t *info, int64_t absolute_s)
{
    (void) arg;
    (void) absolute_s;
    s_f.calls++;
    if (s_f.down)
        return -1;
    for (int i = 0; i < F_MAX; i++)
        if (!s_f.used[i]) {
            s_f.used[i] = 1;
            snprintf(s_f.key[i], SESSION_ID_HEX, "%s", key);
            s_f.info[i] = *info;
            return 0;
        }
    return -1;
}

static int s_f_get(void *arg, const char *key, int64_t touch_s, session_info_t *out)
{
    (void) arg;
    s_f.calls++;
    if (s_f.down)
        return -1;
    int i = s_f_find(key);
    if (i < 0)
        return 1;
    *out = s_f.info[i];
    if (touch_s > 0)
        s_f.info[i].last_s = touch_s;
    return 0;
}

static int s_f_del(void *arg, const char *key, const char *name)
{
    (void) arg;
    s_f.calls++;
    if (s_f.down)
        return -1;
    for (int i = 0; i < F_MAX; i++)
        if (s_f.used[i] && (key ? strcmp(s_f.key[i], key) == 0 : strcmp(s_f.info[i].name, name) == 0))
            s_f.used[i] = 0;
    return 0;
}

static const session_remote_t s_fake = { s_f_put, s_f_get, s_f_del, NULL, NULL };

static session_store_t *s_node(int max_per_login)
{
    session_opts_t o = {.idle_s = 1800, .absolute_s = 43200, .max_per_login = max_per_login, .now_s = s_now,
                        .remote = &s_fake};
    return session_store_new(&o);
}

static void test_cluster_session_from_one_node_works_on_another_and_logout_reaches_it(void)
{
    memset(&s_f, 0, sizeof s_f);
    session_store_t *a = s_node(0), *b = s_node(0);
    char id[SESSION_ID_HEX], key[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create(a, 4242, id), 0);
    /* the store holds the id's SHA-256, never the id */
    CHECK_EQ_INT(session_key(id, key), 0);
    CHECK(strcmp(key, id) != 0);
    CHECK(s_f_find(key) >= 0 && s_f.info[s_f_find(key)].login == 4242);
    CHECK_EQ_INT(session_key("zz", key), -1);
    session_info_t ia, ib;
    CHECK_EQ_INT(session_get(a, id, &ia), 0);
    CHECK_EQ_INT(session_get(b, id, &ib), 0);      /* learnt from the store */
    CHECK(ib.login == 4242 && strcmp(ia.csrf, ib.csrf) == 0);
    CHECK_EQ_INT(session_check_csrf(b, id, ia.csrf), 0);
    /* within one second a node answers from its copy: one store call for many requests */
    int calls = s_f.calls;
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(session_get(b, id, NULL), 0);
    CHECK_EQ_INT(s_f.calls, calls);
    CHECK_EQ_INT(session_end(b, id), 0);           /* logout on B */
    CHECK(s_f_find(key) < 0);
    s_clock += 1;                                  /* the next second: A asks the store again */
    CHECK_EQ_INT(session_get(a, id, NULL), -1);
    CHECK_EQ_INT(session_check_csrf(a, id, ia.csrf), -1);
    CHECK_EQ_INT(session_count(a), 0);
    session_store_destroy(&a);
    session_store_destroy(&b);
}

static void test_cluster_store_down_refuses_what_it_cannot_check(void)
{
    memset(&s_f, 0, sizeof s_f);
    session_store_t *a = s_node(0), *b = s_node(0);
    char id[SESSION_ID_HEX], id2[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create(a, 7, id), 0);
    s_f.down = 1;
    CHECK_EQ_INT(session_create(a, 7, id2), -1);    /* a session the others cannot check is never given */
    CHECK_EQ_INT(session_get(b, id, NULL), -1);     /* unknown here and unchecked: refused */
    CHECK_EQ_INT(session_get(a, id, NULL), 0);      /* created this second: checked */
    s_clock += 1;
    CHECK_EQ_INT(session_get(a, id, NULL), -1);     /* not checkable any more: refused, not dropped */
    s_f.down = 0;
    CHECK_EQ_INT(session_get(a, id, NULL), 0);
    CHECK_EQ_INT(session_get(b, id, NULL), 0);
    session_store_destroy(&a);
    session_store_destroy(&b);
}

static void test_cluster_idle_clock_is_shared_and_expiry_deletes_it(void)
{
    memset(&s_f, 0, sizeof s_f);
    session_store_t *a = s_node(0), *b = s_node(0);
    char id[SESSION_ID_HEX], key[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create(a, 9, id), 0);
    session_key(id, key);
    for (int i = 0; i < 3; i++) {                  /* used on B only, every 1000 s: alive on A */
        s_clock += 1000;
        CHECK_EQ_INT(session_get(b, id, NULL), 0);
    }
    s_clock += 1;
    CHECK_EQ_INT(session_get(a, id, NULL), 0);
    s_clock += 1800;                               /* idle everywhere */
    CHECK_EQ_INT(session_get(b, id, NULL), -1);
    CHECK(s_f_find(key) < 0);
    CHECK_EQ_INT(session_get(a, id, NULL), -1);
    session_store_destroy(&a);
    session_store_destroy(&b);
}

static void test_cluster_bounds_and_named_ends_reach_the_store(void)
{
    memset(&s_f, 0, sizeof s_f);
    session_store_t *a = s_node(2), *b = s_node(2);
    char id[3][SESSION_ID_HEX], key[SESSION_ID_HEX];
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(session_create(a, 11, id[i]), 0);
    session_key(id[0], key);
    CHECK(s_f_find(key) < 0);                      /* the login's oldest ended on every node */
    s_clock += 1;
    CHECK_EQ_INT(session_get(b, id[0], NULL), -1);
    CHECK_EQ_INT(session_get(b, id[2], NULL), 0);
    char adm[SESSION_ID_HEX];
    CHECK_EQ_INT(session_create_named(a, "root", adm), 0);
    CHECK_EQ_INT(session_get(b, adm, NULL), 0);
    CHECK_EQ_INT(session_end_named(b, "root"), 1);  /* an admin disabled on B */
    s_clock += 1;
    CHECK_EQ_INT(session_get(a, adm, NULL), -1);
    CHECK_EQ_INT(session_get(a, id[2], NULL), 0);
    session_store_destroy(&a);
    session_store_destroy(&b);
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
    RUN(test_named_sessions_have_their_own_cookie_and_end_together);
    RUN(test_one_admin_flood_ends_only_that_admins_sessions);
    RUN(test_session_table_is_bounded_oldest_evicted);
    RUN(test_one_login_flood_ends_only_its_own_oldest_sessions);
    RUN(test_cluster_session_from_one_node_works_on_another_and_logout_reaches_it);
    RUN(test_cluster_store_down_refuses_what_it_cannot_check);
    RUN(test_cluster_idle_clock_is_shared_and_expiry_deletes_it);
    RUN(test_cluster_bounds_and_named_ends_reach_the_store);
    return check_done();
}
