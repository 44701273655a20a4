/* test_monitor.c — the monitor feed (PUB, lossy, never blocking) and the control socket
 * (link through a running pipeline; no server → a clear failure, not a hang). */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/pipeline.h"
#include "journal/journal.h"
#include "schema/record.h"
#include "tests/check.h"
#include "tools/control.h"
#include "tools/monitor.h"

static char s_endpoint[128];

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void s_encode(record_kind_t kind, deposit_state_t to, const char *tx, uint8_t **buf, size_t *len)
{
    record_t r;
    record_init(&r, kind);
    r.time_ms = 1764140000000;
    if (kind == RECORD_DEPOSIT) {
        snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
        r.from = DEPOSIT_RECEIVED;
        r.to = to;
        r.event = DEPOSIT_EV_CONFIRMED;
        r.login = 100001;
    } else {
        snprintf(r.address, sizeof r.address, "TQ1abc");
        r.login = 100001;
    }
    char err[128];
    if (record_encode(&r, buf, len, err, sizeof err) != 0) {
        *buf = NULL;
        *len = 0;
    }
}

static void test_published_record_arrives_with_topic_payload_and_lsn(void)
{
    char err[256];
    monitor_t *m = monitor_new(s_endpoint, err, sizeof err);
    CHECK(m != NULL);
    if (!m)
        return;
    zsock_t *sub = zsock_new_sub(s_endpoint, "LOCKED");
    zsock_set_rcvtimeo(sub, 3000);
    uint8_t *buf, *buf2;
    size_t len, len2;
    s_encode(RECORD_DEPOSIT, DEPOSIT_LOCKED, "tx-1", &buf, &len);
    s_encode(RECORD_ADDRESS_LINK, DEPOSIT_NONE, "", &buf2, &len2);
    /* a subscriber needs a moment to join: publish until the first message is seen */
    zmsg_t *msg = NULL;
    for (int i = 0; i < 50 && !msg; i++) {
        monitor_publish(m, 77, buf2, len2);   /* filtered out by the subscription */
        monitor_publish(m, 42, buf, len);
        zsock_set_rcvtimeo(sub, 100);
        msg = zmsg_recv(sub);
    }
    CHECK(msg != NULL);
    if (msg) {
        CHECK_EQ_INT(zmsg_size(msg), 3);
        char *topic = zframe_strdup(zmsg_first(msg));
        CHECK_EQ_STR(topic, "LOCKED");
        free(topic);
        const void *payload;
        size_t plen;
        uint64_t lsn;
        CHECK_EQ_INT(monitor_message_parse(msg, &payload, &plen, &lsn), 0);
        CHECK_EQ_INT(lsn, 42);
        CHECK_EQ_INT(plen, len);
        CHECK(memcmp(payload, buf, len) == 0);   /* the journal's bytes, unchanged */
        record_t r;
        CHECK_EQ_INT(record_decode(payload, plen, &r, err, sizeof err), 0);
        CHECK_EQ_STR(r.tx_id, "tx-1");
        zmsg_destroy(&msg);
    }
    free(buf);
    free(buf2);
    zsock_destroy(&sub);
    monitor_destroy(&m);
    CHECK(m == NULL);
}

static void test_publish_never_blocks_on_a_stalled_subscriber(void)
{
    char err[256];
    monitor_t *m = monitor_new(s_endpoint, err, sizeof err);
    CHECK(m != NULL);
    if (!m)
        return;
    zsock_t *sub = zsock_new_sub(s_endpoint, "");   /* connected, never reads */
    zsock_set_rcvhwm(sub, 10);
    zsock_set_rcvbuf(sub, 4096);   /* a small TCP window, so the backlog reaches the PUB queue */
    zclock_sleep(100);
    uint8_t *buf;
    size_t len;
    s_encode(RECORD_DEPOSIT, DEPOSIT_CREDITED, "tx-flood", &buf, &len);
    double t0 = s_now();
    enum { N = 200000 };
    for (int i = 0; i < N; i++)
        monitor_publish(m, (uint64_t) i + 1, buf, len);
    double took = s_now() - t0;
    CHECK(took < 20.0);   /* bounded by the sends, not by the reader */
    CHECK_EQ_INT(monitor_sent(m) + monitor_dropped(m), N);
    /* the reader now drains what was kept: far less than was sent, because the feed dropped
     * instead of waiting */
    zsock_set_rcvtimeo(sub, 500);
    long got = 0;
    for (zmsg_t *msg; got < N && (msg = zmsg_recv(sub)) != NULL; got++)
        zmsg_destroy(&msg);
    CHECK(got > 0);
    CHECK(got < N);
    free(buf);
    zsock_destroy(&sub);
    monitor_destroy(&m);
}

static void test_bind_conflict_is_reported(void)
{
    char err[256], ep[128];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", 40000 + (int) (getpid() % 20000));
    monitor_t *a = monitor_new(ep, err, sizeof err);
    monitor_t *b = monitor_new(ep, err, sizeof err);
    CHECK(a != NULL);
    CHECK(b == NULL);
    CHECK(strstr(err, "cannot bind the monitor feed") != NULL);
    monitor_destroy(&a);
    monitor_destroy(&b);
}

static void test_control_links_through_the_pipeline(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/kasa-test-control-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    static config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", dir);
    snprintf(cfg.cobo_api_url, sizeof cfg.cobo_api_url, "http://127.0.0.1:9/v2");
    snprintf(cfg.mt5_url, sizeof cfg.mt5_url, "http://127.0.0.1:9");
    snprintf(cfg.telegram_api_url, sizeof cfg.telegram_api_url, "http://127.0.0.1:9");
    cfg.mt5_login = 1000;
    snprintf(cfg.mt5_password, sizeof cfg.mt5_password, "x");
    cfg.mt5_digits = 2;
    cfg.crediters = 1;
    char err[512];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    pipeline_t *p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    if (!p)
        fprintf(stderr, "  pipeline: %s\n", err);
    CHECK(p != NULL);
    char endpoint[200];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/control.sock", dir);
    control_t *c = p ? control_new(endpoint, p, err, sizeof err) : NULL;
    CHECK(c != NULL);
    if (c) {
        char reply[256];
        const char *ping[] = { "ping" };
        CHECK_EQ_INT(control_request(endpoint, ping, 1, 3000, reply, sizeof reply), 0);
        CHECK_EQ_STR(reply, "pong");
        uint64_t lsn0 = journal_durable_lsn(j);
        const char *link[] = { "link", "TQ1ctl", "TRON", "100001", "test" };
        CHECK_EQ_INT(control_request(endpoint, link, 5, 5000, reply, sizeof reply), 0);
        CHECK(strstr(reply, "linked TQ1ctl on TRON to login 100001") != NULL);
        CHECK_EQ_INT(journal_durable_lsn(j), lsn0 + 1);          /* durable before the answer */
        CHECK_EQ_INT(pipeline_address_login(p, "TQ1ctl"), 100001);
        const char *other[] = { "link", "TQ1ctl", "TRON", "100002", "test" };
        CHECK_EQ_INT(control_request(endpoint, other, 5, 5000, reply, sizeof reply), 1);
        CHECK(strstr(reply, "already linked to login 100001") != NULL);
        CHECK_EQ_INT(journal_durable_lsn(j), lsn0 + 1);
        const char *bad[] = { "link", "TQ1ctl", "TRON", "12x", "test" };
        CHECK_EQ_INT(control_request(endpoint, bad, 5, 5000, reply, sizeof reply), 1);
        const char *junk[] = { "drop tables" };
        CHECK_EQ_INT(control_request(endpoint, junk, 1, 5000, reply, sizeof reply), 1);
        CHECK_EQ_STR(reply, "unknown request");
    }
    control_destroy(&c);
    /* no server: a bounded wait and a clear failure */
    char reply[256];
    const char *ping[] = { "ping" };
    double t0 = s_now();
    CHECK_EQ_INT(control_request(endpoint, ping, 1, 300, reply, sizeof reply), -1);
    CHECK(s_now() - t0 < 3.0);
    CHECK(reply[0] != '\0');
    pipeline_destroy(&p);
    journal_destroy(&j);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

int main(void)
{
    zsys_init();
    /* a port unlikely to clash: derived from the pid */
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", 20000 + (int) (getpid() % 20000));
    RUN(test_published_record_arrives_with_topic_payload_and_lsn);
    RUN(test_publish_never_blocks_on_a_stalled_subscriber);
    RUN(test_bind_conflict_is_reported);
    RUN(test_control_links_through_the_pipeline);
    return check_done();
}
