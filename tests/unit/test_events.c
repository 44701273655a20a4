/* test_events.c — the live-update hub: records reach only their login's streams, an address-only
 * record is matched through the resolver, a slow reader gets one "resync" instead of an unbounded
 * queue (and the publisher never waits), heartbeats and the alive check end a dead session's
 * stream, the per-login stream cap, listeners, and garbage payloads. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schema/record.h"
#include "tests/check.h"
#include "web/events.h"

static void s_publish(events_t *e, uint64_t lsn, const char *tx, uint64_t login, const char *address,
                      deposit_state_t to)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = 1764140000000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.from = DEPOSIT_PENDING;
    r.to = to;
    r.event = to == DEPOSIT_PENDING ? DEPOSIT_EV_SEEN_PENDING : DEPOSIT_EV_CREDIT_OK;
    snprintf(r.status, sizeof r.status, "%s", to == DEPOSIT_PENDING ? "Confirming" : "Completed");
    r.confirmations = 3;
    r.threshold = 20;
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.chain_id, sizeof r.chain_id, "TRON");
    snprintf(r.address, sizeof r.address, "%s", address);
    snprintf(r.amount, sizeof r.amount, "250");
    r.login = login;
    if (to == DEPOSIT_CREDITED) {
        r.credit_minor = 24950;
        r.digits = 2;
        r.ticket = 777;
    }
    uint8_t *buf;
    size_t len;
    char err[128];
    if (record_encode(&r, &buf, &len, err, sizeof err) != 0) {
        fprintf(stderr, "encode: %s\n", err);
        return;
    }
    events_publish(e, lsn, buf, len);
    free(buf);
}

/* Everything readable now, as text (static buffer). */
static const char *s_drain(events_sub_t *s, ssize_t *last)
{
    static char text[256 * 1024];
    size_t used = 0;
    ssize_t n;
    while (used + 4096 < sizeof text && (n = events_sub_read(s, text + used, 4096)) > 0)
        used += (size_t) n;
    if (last)
        *last = n;
    text[used] = '\0';
    return text;
}

static void test_events_reach_only_their_login(void)
{
    events_t *e = events_new(0);
    events_sub_t *a = events_subscribe(e, 100001), *b = events_subscribe(e, 100002);
    CHECK(a && b);
    s_publish(e, 5, "tx-a", 100001, "TA", DEPOSIT_PENDING);
    s_publish(e, 6, "tx-a", 100001, "TA", DEPOSIT_CREDITED);
    const char *t = s_drain(a, NULL);
    CHECK(strstr(t, "retry:") == t);                            /* the hello comes first */
    CHECK(strstr(t, "id: 5\nevent: deposit\ndata: {") != NULL);
    CHECK(strstr(t, "\"state\":\"PENDING\"") != NULL);
    CHECK(strstr(t, "\"confirmations\":3,\"threshold\":20") != NULL);
    CHECK(strstr(t, "\"state\":\"CREDITED\"") != NULL);
    CHECK(strstr(t, "\"credited\":\"249.50\"") != NULL);
    CHECK(strstr(t, "\"ticket\":777") != NULL);
    CHECK(strstr(t, "\"state\":\"PENDING\"") < strstr(t, "\"state\":\"CREDITED\""));
    t = s_drain(b, NULL);
    CHECK(strstr(t, "tx-a") == NULL);
    CHECK_EQ_INT(events_subscriber_count(e), 2);
    events_unsubscribe(&a);
    CHECK(a == NULL);
    events_unsubscribe(&b);
    CHECK_EQ_INT(events_subscriber_count(e), 0);
    events_destroy(&e);
    CHECK(e == NULL);
}

static uint64_t s_resolve(void *arg, const char *address)
{
    (void) arg;
    return strcmp(address, "TKNOWN") == 0 ? 100003 : 0;
}

static void test_events_record_without_login_is_matched_by_address(void)
{
    events_t *e = events_new(0);
    events_set_resolver(e, s_resolve, NULL);
    events_sub_t *a = events_subscribe(e, 100003);
    s_drain(a, NULL);
    s_publish(e, 7, "tx-k", 0, "TKNOWN", DEPOSIT_PENDING);
    s_publish(e, 8, "tx-u", 0, "TUNKNOWN", DEPOSIT_PENDING);
    const char *t = s_drain(a, NULL);
    CHECK(strstr(t, "tx-k") != NULL);
    CHECK(strstr(t, "tx-u") == NULL);
    events_unsubscribe(&a);
    events_destroy(&e);
}

static void test_events_slow_reader_gets_resync_and_publisher_never_waits(void)
{
    events_t *e = events_new(0);
    events_sub_t *slow = events_subscribe(e, 100004);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 5000; i++)                               /* ~2 MB of messages, never read */
        s_publish(e, (uint64_t) i + 1, "tx-slow", 100004, "TS", DEPOSIT_PENDING);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms < 2000);
    const char *t = s_drain(slow, NULL);
    CHECK(strstr(t, "event: resync") != NULL);
    CHECK(strlen(t) < EVENTS_QUEUE_BYTES);                      /* bounded: the backlog was dropped */
    CHECK(strstr(t, "event: deposit") == NULL);
    s_publish(e, 9999, "tx-after", 100004, "TS", DEPOSIT_PENDING);
    t = s_drain(slow, NULL);
    CHECK(strstr(t, "tx-after") != NULL);                       /* and then it flows again */
    CHECK(strstr(t, "resync") == NULL);
    events_unsubscribe(&slow);
    events_destroy(&e);
}

static int s_alive_answer;
static int s_alive_freed;
static int s_alive(void *arg)
{
    (void) arg;
    return s_alive_answer;
}
static void s_alive_free(void *arg)
{
    (void) arg;
    s_alive_freed++;
}

static void test_events_heartbeat_and_dead_session_end_the_stream(void)
{
    events_t *e = events_new(50);
    events_sub_t *a = events_subscribe(e, 100005);
    events_sub_set_alive(a, s_alive, NULL, s_alive_free);
    s_alive_answer = 1;
    s_drain(a, NULL);
    char buf[256];
    CHECK_EQ_INT(events_sub_read(a, buf, sizeof buf), 0);       /* nothing yet */
    usleep(80 * 1000);
    ssize_t n = events_sub_read(a, buf, sizeof buf);
    CHECK(n > 0 && strncmp(buf, ": hb\n\n", 6) == 0);
    s_alive_answer = 0;                                          /* the session ended */
    usleep(80 * 1000);
    CHECK_EQ_INT(events_sub_read(a, buf, sizeof buf), -1);
    CHECK_EQ_INT(events_sub_read(a, buf, sizeof buf), -1);
    events_unsubscribe(&a);
    CHECK_EQ_INT(s_alive_freed, 1);
    events_destroy(&e);
}

static void test_events_logout_ends_a_quiet_stream_before_the_heartbeat(void)
{
    events_t *e = events_new(0);                                 /* heartbeat 15 s */
    events_sub_t *a = events_subscribe(e, 100005);
    events_sub_set_alive(a, s_alive, NULL, s_alive_free);
    s_alive_answer = 1;
    s_drain(a, NULL);
    char buf[256];
    s_alive_answer = 0;                                          /* logout */
    ssize_t n = 0;
    for (int i = 0; i < 8 && n == 0; i++) {                      /* read as the server does, every 50 ms */
        usleep(50 * 1000);
        n = events_sub_read(a, buf, sizeof buf);
    }
    CHECK_EQ_INT(n, -1);                                         /* within 400 ms, not 15 s */
    events_unsubscribe(&a);
    events_destroy(&e);
}

static void test_events_per_login_cap_ends_the_oldest(void)
{
    events_t *e = events_new(0);
    events_sub_t *s[EVENTS_MAX_PER_LOGIN + 1];
    for (int i = 0; i <= EVENTS_MAX_PER_LOGIN; i++) {
        s[i] = events_subscribe(e, 100006);
        usleep(2000);
    }
    char buf[256];
    CHECK_EQ_INT(events_sub_read(s[0], buf, sizeof buf), -1);   /* the oldest was ended */
    CHECK(events_sub_read(s[1], buf, sizeof buf) > 0);
    CHECK(events_sub_read(s[EVENTS_MAX_PER_LOGIN], buf, sizeof buf) > 0);
    for (int i = 0; i <= EVENTS_MAX_PER_LOGIN; i++)
        events_unsubscribe(&s[i]);
    events_destroy(&e);
}

static int s_links;
static void s_listener(void *arg, uint64_t lsn, const record_t *r)
{
    (void) arg;
    (void) lsn;
    if (r->kind == RECORD_ADDRESS_LINK && r->login == 100007)
        s_links++;
}

static void test_events_listeners_see_every_record_and_garbage_is_skipped(void)
{
    events_t *e = events_new(0);
    CHECK_EQ_INT(events_listen(e, s_listener, NULL), 0);
    record_t r;
    record_init(&r, RECORD_ADDRESS_LINK);
    snprintf(r.address, sizeof r.address, "TLINK");
    snprintf(r.chain_id, sizeof r.chain_id, "TRON");
    r.login = 100007;
    uint8_t *buf;
    size_t len;
    char err[128];
    CHECK_EQ_INT(record_encode(&r, &buf, &len, err, sizeof err), 0);
    events_on_commit(e, 1, buf, len);
    free(buf);
    events_publish(e, 2, "\xff\x00garbage", 9);
    events_publish(e, 3, "", 0);
    CHECK_EQ_INT(s_links, 1);
    for (int i = 0; i < 3; i++)
        events_listen(e, s_listener, NULL);
    CHECK_EQ_INT(events_listen(e, s_listener, NULL), -1);       /* bounded */
    events_destroy(&e);
}

static void s_publish_admin(events_t *e, uint64_t lsn, const char *tx)
{
    record_t r;
    record_init(&r, RECORD_ADMIN_ACTION);
    r.time_ms = 1764140000000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    snprintf(r.actor, sizeof r.actor, "admin:vera");
    snprintf(r.action, sizeof r.action, "approve");
    uint8_t *buf;
    size_t len;
    char err[128];
    if (record_encode(&r, &buf, &len, err, sizeof err) == 0) {
        events_publish(e, lsn, buf, len);
        free(buf);
    }
}

static void test_events_staff_stream_sees_every_deposit_and_admin_record(void)
{
    events_t *e = events_new(0);
    events_sub_t *staff = events_subscribe_all(e, 1, 0), *inv = events_subscribe(e, 100001);
    s_publish(e, 1, "tx-a", 100001, "TAddrA", DEPOSIT_PENDING);
    s_publish(e, 2, "tx-nobody", 0, "TNobody", DEPOSIT_HELD);   /* no login: the staff still see it */
    s_publish_admin(e, 3, "tx-nobody");
    const char *t = s_drain(staff, NULL);
    CHECK(strstr(t, "id: 1\nevent: deposit\ndata: {\"lsn\":1,\"id\":\"tx-a\",\"from\":\"PENDING\",\"state\":\"PENDING\","
                    "\"login\":100001,"));
    CHECK(strstr(t, "id: 2\nevent: deposit") && strstr(t, "\"id\":\"tx-nobody\",\"from\":\"PENDING\",\"state\":\"HELD\""));
    CHECK(strstr(t, "id: 3\nevent: admin\ndata: {\"lsn\":3,\"id\":\"tx-nobody\",\"kind\":\"ADMIN_ACTION\","
                    "\"actor\":\"admin:vera\",\"action\":\"approve\""));
    t = s_drain(inv, NULL);   /* the investor's stream: their deposit only, in its own shape */
    CHECK(strstr(t, "tx-a") && !strstr(t, "tx-nobody") && !strstr(t, "event: admin"));
    /* back with Last-Event-ID 2 while 3 was published: a resync first; with 3: none */
    events_sub_t *late = events_subscribe_all(e, 1, 2), *fresh = events_subscribe_all(e, 1, 3);
    CHECK(strstr(s_drain(late, NULL), "event: resync"));
    CHECK(!strstr(s_drain(fresh, NULL), "event: resync"));
    events_unsubscribe(&late);
    events_unsubscribe(&fresh);
    events_unsubscribe(&staff);
    events_unsubscribe(&inv);
    events_destroy(&e);
}

static void test_events_stream_survives_hub_destroy_order(void)
{
    events_t *e = events_new(0);
    events_sub_t *a = events_subscribe(e, 100008);
    events_destroy(&e);                                          /* hub first (shutdown) */
    char buf[64];
    CHECK_EQ_INT(events_sub_read(a, buf, sizeof buf), -1);
    events_unsubscribe(&a);                                      /* then the stream: no crash */
    CHECK(a == NULL);
}

int main(void)
{
    RUN(test_events_reach_only_their_login);
    RUN(test_events_record_without_login_is_matched_by_address);
    RUN(test_events_slow_reader_gets_resync_and_publisher_never_waits);
    RUN(test_events_heartbeat_and_dead_session_end_the_stream);
    RUN(test_events_logout_ends_a_quiet_stream_before_the_heartbeat);
    RUN(test_events_per_login_cap_ends_the_oldest);
    RUN(test_events_listeners_see_every_record_and_garbage_is_skipped);
    RUN(test_events_staff_stream_sees_every_deposit_and_admin_record);
    RUN(test_events_stream_survives_hub_destroy_order);
    return check_done();
}
