/* test_mt5_sim.c — the MT5 client against the MT5 simulator (in-process, on a loopback port):
 * handshake, exact balance deals, reconciliation by comment, session loss, wrong password,
 * permanent retcodes, dropped replies (exactly one deal, found afterwards), passwords, users, groups. */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/mt5.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tests/unit/support_http.h"
#include "tools/sim/sim_mt5.h"

#define MANAGER 1000
#define MANAGER_PW "Mgr-Secret1"

static sim_mt5_t *s_sim;
static char s_url[64];

/* A control call to the simulator; returns the body (caller frees) or NULL. */
static char *s_ctl(const char *method, const char *path, const char *body)
{
    return support_http_request(s_url, NULL, method, path, body);
}

static void s_faults(const char *json)
{
    free(s_ctl("POST", "/sim/faults", json));
}

static int64_t s_stat(const char *key)
{
    char *body = s_ctl("GET", "/sim/stats", NULL);
    bson_t doc;
    char err[64];
    int64_t v = -1;
    if (body && json_parse(body, strlen(body), &doc, err, sizeof err) == 0)
        json_get_i64(&doc, key, &v);
    bson_destroy(&doc);
    free(body);
    return v;
}

/* How many deals the simulator holds for login with exactly this comment. */
static int s_deals_with(uint64_t login, const char *comment)
{
    char path[64];
    snprintf(path, sizeof path, "/sim/deals?login=%" PRIu64, login);
    char *body = s_ctl("GET", path, NULL);
    bson_t doc;
    char err[64];
    int n = 0;
    if (body && json_parse(body, strlen(body), &doc, err, sizeof err) == 0) {
        for (int i = 0; i < 100000; i++) {
            char key[48];
            snprintf(key, sizeof key, "deals.%d.comment", i);
            if (!json_has(&doc, key))
                break;
            const char *c = json_get_str(&doc, key);
            n += c && strcmp(c, comment) == 0;
        }
    }
    bson_destroy(&doc);
    free(body);
    return n;
}

static void s_start(void)
{
    char err[160];
    char *argv[] = { "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:" MANAGER_PW,
                     "--account", "100001:Inv-pw1:1000.00", "--account", "100002:Inv-pw2:0.10",
                     "--account", "100003:Inv-pw3:5:real\\jpy", "--group", "real\\jpy:JPY:0",
                     "--investor-password", "100001:Look-only", "--seed", "7" };
    s_sim = sim_mt5_start((int) (sizeof argv / sizeof argv[0]), argv, err, sizeof err);
    if (!s_sim) {
        fprintf(stderr, "sim: %s\n", err);
        exit(1);
    }
    snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d", sim_mt5_port(s_sim));
}

static mt5_client_t *s_client(long timeout_ms)
{
    return mt5_client_new(s_url, MANAGER, MANAGER_PW, NULL, timeout_ms);
}

static void test_handshake_opens_a_session(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_auth_count(c), 1);
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_auth_count(c), 1); /* the session is kept */
    CHECK_EQ_INT(s_stat("auths"), 1);
    CHECK_EQ_INT(s_stat("sessions"), 1);
    mt5_client_destroy(&c);            /* ends with /api/quit */
    CHECK_EQ_INT(s_stat("sessions"), 0);
}

static void test_clients_keep_their_own_sessions(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *a = s_client(3000), *b = s_client(3000), *c = s_client(3000);
    char err[160] = "";
    mt5_user_t u;
    CHECK_EQ_INT(mt5_ping(a, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_ping(b, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_user_get(a, 100001, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_user_get(b, 100001, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_auth_count(a) + mt5_auth_count(b) + mt5_auth_count(c), 3); /* nobody lost a session */
    CHECK_EQ_INT(s_stat("sessions"), 3);
    CHECK_EQ_INT(s_stat("forbidden"), 0);
    mt5_client_destroy(&a);
    mt5_client_destroy(&b);
    mt5_client_destroy(&c);
}

static void test_wrong_manager_password_is_auth_failed(void)
{
    mt5_client_t *c = mt5_client_new(s_url, MANAGER, "not-the-password", NULL, 3000);
    char err[160] = "";
    int64_t before = s_stat("auth_failures");
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_AUTH_FAILED);
    CHECK(strstr(err, "403") != NULL);
    CHECK(strstr(err, "not-the-password") == NULL);
    CHECK_EQ_INT(s_stat("auth_failures"), before + 1);
    uint64_t ticket = 0;
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "never-sent", &ticket, err, sizeof err), MT5_AUTH_FAILED);
    CHECK_EQ_INT(s_deals_with(100001, "never-sent"), 0);
    mt5_client_destroy(&c);
    c = mt5_client_new(s_url, 999, MANAGER_PW, NULL, 3000); /* unknown manager login */
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_AUTH_FAILED);
    mt5_client_destroy(&c);
}

static void test_server_that_fails_cli_rand_is_not_genuine(void)
{
    s_faults("{\"fake_server\":true}");
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_AUTH_FAILED);
    CHECK(strstr(err, "not genuine") != NULL);
    CHECK_EQ_INT(mt5_auth_count(c), 0);
    s_faults("{\"fake_server\":false}");
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    mt5_client_destroy(&c);
}

static void test_deposit_returns_ticket_and_changes_balance_exactly(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0;
    mt5_user_t u;
    CHECK_EQ_INT(mt5_balance(c, 100001, 10050, 2, "kasa d1 test", &ticket, err, sizeof err), MT5_OK);
    CHECK(ticket > 0);
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.balance, "1100.50");
    CHECK_EQ_STR(u.group, "demo\\forex");
    CHECK_EQ_INT(u.login, 100001);
    CHECK_EQ_INT(s_deals_with(100001, "kasa d1 test"), 1); /* the space arrived as a space (%20) */
    /* a withdrawal is negative, exact to the cent */
    uint64_t t2 = 0;
    CHECK_EQ_INT(mt5_balance(c, 100001, -2501, 2, "kasa w1", &t2, err, sizeof err), MT5_OK);
    CHECK(t2 > ticket);
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.balance, "1075.49");
    /* a zero-digit currency */
    CHECK_EQ_INT(mt5_balance(c, 100003, 1234, 0, "kasa jpy", &t2, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_user_get(c, 100003, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.balance, "1239");
    mt5_client_destroy(&c);
}

static void test_find_balance_deal_by_exact_comment(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0, found = 0;
    int64_t now = (int64_t) time(NULL);
    CHECK_EQ_INT(mt5_balance(c, 100001, 500, 2, "kasa-ref-A", &ticket, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-ref-A", now - 172800, now + 172800, &found, err, sizeof err),
                 MT5_OK);
    CHECK_EQ_INT(found, ticket);
    /* a prefix is not a match, nor another login, nor a window that excludes the deal */
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-ref", now - 172800, now + 172800, &found, err, sizeof err),
                 MT5_NOT_FOUND);
    CHECK_EQ_INT(found, 0);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100002, "kasa-ref-A", now - 172800, now + 172800, &found, err, sizeof err),
                 MT5_NOT_FOUND);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-ref-A", now - 172800, now - 86400, &found, err, sizeof err),
                 MT5_NOT_FOUND);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 424242, "kasa-ref-A", now - 10, now + 10, &found, err, sizeof err),
                 MT5_PERMANENT);
    mt5_client_destroy(&c);
}

static void test_find_balance_deal_reads_every_page(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(5000);
    char err[160] = "", comment[32];
    uint64_t ticket = 0, want = 0, found = 0;
    int64_t now = (int64_t) time(NULL);
    for (int i = 0; i < 230; i++) {
        snprintf(comment, sizeof comment, "page-test-%d", i);
        CHECK_EQ_INT(mt5_balance(c, 100002, 1, 2, comment, &ticket, err, sizeof err), MT5_OK);
        if (i == 217)
            want = ticket;
    }
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100002, "page-test-217", now - 100, now + 100, &found, err, sizeof err),
                 MT5_OK);
    CHECK_EQ_INT(found, want);
    mt5_user_t u;
    CHECK_EQ_INT(mt5_user_get(c, 100002, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.balance, "2.40"); /* 0.10 + 230 * 0.01 */
    mt5_client_destroy(&c);
}

static void test_session_loss_reauthenticates_reads(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    mt5_user_t u;
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    s_faults("{\"kill_sessions\":true}");
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK); /* 403, handshake, resend */
    CHECK_EQ_INT(mt5_auth_count(c), 2);
    CHECK_EQ_INT(s_stat("forbidden"), 1);
    CHECK_EQ_STR(u.balance, "1000.00");
    mt5_client_destroy(&c);
}

static void test_session_loss_on_balance_is_ambiguous_then_reconciled(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0, found = 0;
    int64_t now = (int64_t) time(NULL);
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    s_faults("{\"kill_sessions\":true}");
    CHECK_EQ_INT(mt5_balance(c, 100001, 700, 2, "kasa-403", &ticket, err, sizeof err), MT5_AMBIGUOUS);
    CHECK(strstr(err, "403") != NULL);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-403", now - 100, now + 100, &found, err, sizeof err),
                 MT5_NOT_FOUND); /* not applied: safe to send again */
    CHECK_EQ_INT(mt5_balance(c, 100001, 700, 2, "kasa-403", &ticket, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(s_deals_with(100001, "kasa-403"), 1);
    mt5_client_destroy(&c);
}

static void test_idle_session_is_proved_by_ping_before_balance(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0;
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    s_faults("{\"kill_sessions\":true}");
    usleep(2100000); /* idle long enough that the client pings before a balance call */
    CHECK_EQ_INT(mt5_balance(c, 100001, 300, 2, "kasa-idle", &ticket, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_auth_count(c), 2); /* the ping met the 403 and opened a new session first */
    CHECK_EQ_INT(s_deals_with(100001, "kasa-idle"), 1);
    mt5_client_destroy(&c);
}

static void test_idle_session_expires_and_client_recovers(void)
{
    char err[160] = "";
    char *argv[] = { "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:" MANAGER_PW,
                     "--account", "100001:pw:1.00", "--session-idle-ms", "300" };
    sim_mt5_t *quick = sim_mt5_start((int) (sizeof argv / sizeof argv[0]), argv, err, sizeof err);
    CHECK(quick != NULL);
    if (!quick)
        return;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sim_mt5_port(quick));
    mt5_client_t *c = mt5_client_new(url, MANAGER, MANAGER_PW, NULL, 3000);
    mt5_user_t u;
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK);
    usleep(450000); /* past the server's idle limit */
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK); /* 403, handshake, resend */
    CHECK_EQ_INT(mt5_auth_count(c), 2);
    CHECK_EQ_STR(u.balance, "1.00");
    mt5_client_destroy(&c);
    sim_mt5_stop(&quick);
}

static void test_closed_connection_gets_new_session_before_balance(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0;
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    s_faults("{\"close_next\":1}");
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK); /* answered, then the server closes */
    usleep(50000);
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "kasa-after-close", &ticket, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_auth_count(c), 2); /* a new connection means a new session */
    CHECK_EQ_INT(s_deals_with(100001, "kasa-after-close"), 1);
    mt5_client_destroy(&c);
}

static void test_permanent_retcodes_are_classified(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0;
    CHECK_EQ_INT(mt5_balance(c, 424242, 100, 2, "kasa-p1", &ticket, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_last_retcode(c), 13);
    CHECK(strstr(err, "13 Not found") != NULL);
    CHECK_EQ_INT(mt5_balance(c, 100001, 100000000001LL, 2, "kasa-p2", &ticket, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_last_retcode(c), 4005);
    CHECK_EQ_INT(mt5_balance(c, 100002, -11, 2, "kasa-p3", &ticket, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_last_retcode(c), 10019); /* 0.11 out of 0.10 */
    s_faults("{\"permanent_login\":100002}");
    CHECK_EQ_INT(mt5_balance(c, 100002, 100, 2, "kasa-p4", &ticket, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_last_retcode(c), 8);
    s_faults("{\"permanent_login\":0,\"retcode_once\":\"9 Timeout\"}");
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "kasa-p5", &ticket, err, sizeof err), MT5_AMBIGUOUS);
    CHECK_EQ_INT(mt5_last_retcode(c), 9);
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "kasa-p5", &ticket, err, sizeof err), MT5_OK); /* once only */
    CHECK_EQ_INT(s_deals_with(100001, "kasa-p1") + s_deals_with(100001, "kasa-p2") + s_deals_with(100002, "kasa-p3")
                     + s_deals_with(100002, "kasa-p4"), 0);
    mt5_client_destroy(&c);
}

static void test_dropped_reply_is_ambiguous_and_deal_is_found_once(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0, found = 0;
    int64_t now = (int64_t) time(NULL);
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    s_faults("{\"drop_reply\":1}");
    CHECK_EQ_INT(mt5_balance(c, 100001, 25000, 2, "kasa-drop-1", &ticket, err, sizeof err), MT5_AMBIGUOUS);
    CHECK_EQ_INT(ticket, 0);
    s_faults("{\"drop_reply\":0}");
    /* applied once, and only once: the client did not let the request be resent on a new connection */
    CHECK_EQ_INT(s_deals_with(100001, "kasa-drop-1"), 1);
    CHECK_EQ_INT(s_stat("dropped"), 1);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-drop-1", now - 172800, now + 172800, &found, err, sizeof err),
                 MT5_OK);
    CHECK(found > 0);
    mt5_user_t u;
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.balance, "1250.00");
    mt5_client_destroy(&c);
}

static void test_reply_slower_than_timeout_is_ambiguous(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(400);
    char err[160] = "";
    uint64_t ticket = 0, found = 0;
    int64_t now = (int64_t) time(NULL);
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    s_faults("{\"delay_ms\":900}");
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "kasa-slow", &ticket, err, sizeof err), MT5_AMBIGUOUS);
    CHECK(strstr(err, "timeout") != NULL);
    s_faults("{\"delay_ms\":0}");
    usleep(900000); /* the server applies it late, as a slow server does */
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-slow", now - 100, now + 100, &found, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(s_deals_with(100001, "kasa-slow"), 1);
    mt5_client_destroy(&c);
}

static void test_check_password_main_investor_and_wrong(void)
{
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    CHECK_EQ_INT(mt5_check_password(c, 100001, "Inv-pw1", "main", err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_check_password(c, 100001, "Look-only", "investor", err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_check_password(c, 100001, "Look-only", "main", err, sizeof err), MT5_BAD_PASSWORD);
    CHECK_EQ_INT(mt5_check_password(c, 100001, "wrong \"quoted\" pw", "main", err, sizeof err), MT5_BAD_PASSWORD);
    CHECK(strstr(err, "wrong") == NULL); /* the tried password is not echoed */
    CHECK_EQ_INT(mt5_check_password(c, 100002, "", "investor", err, sizeof err), MT5_BAD_PASSWORD);
    CHECK_EQ_INT(mt5_check_password(c, 424242, "x", "main", err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_check_password(c, 100001, "Inv-pw1", "root", err, sizeof err), MT5_PERMANENT);
    mt5_client_destroy(&c);
}

static void test_user_group_and_account_get(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    mt5_user_t u;
    mt5_group_t g;
    mt5_account_t a;
    CHECK_EQ_INT(mt5_user_get(c, 100003, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.group, "real\\jpy");
    CHECK_EQ_STR(u.balance, "5");
    CHECK(u.name[0] != '\0');
    CHECK_EQ_INT(mt5_group_get(c, u.group, &g, err, sizeof err), MT5_OK); /* the backslash is URL-encoded */
    CHECK_EQ_STR(g.currency, "JPY");
    CHECK_EQ_INT(g.digits, 0);
    CHECK_EQ_INT(mt5_group_get(c, "demo\\forex", &g, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(g.currency, "USD");
    CHECK_EQ_INT(g.digits, 2);
    CHECK_EQ_INT(mt5_group_get(c, "no\\such", &g, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_user_account_get(c, 100001, &a, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(a.equity, "1000.00");
    CHECK_EQ_INT(mt5_user_get(c, 424242, &u, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_last_retcode(c), 13);
    mt5_client_destroy(&c);
}

/* One raw GET on handle h (its cookie engine keeps the session); returns the body, sets *status. */
static char *s_raw(CURL *h, const char *path, long *status)
{
    char url[512];
    jbuf_t out;
    jbuf_init(&out);
    snprintf(url, sizeof url, "%s%s", s_url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, support_http_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    *status = 0;
    if (curl_easy_perform(h) != CURLE_OK) {
        jbuf_free(&out);
        return NULL;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return jbuf_take(&out);
}

/* A raw handshake on h with password pw; returns the HTTP status of the answer step. */
static long s_raw_auth(CURL *h, const char *pw)
{
    long status = 0;
    char *body = s_raw(h, "/api/auth/start?version=484&agent=test&login=1000&type=manager", &status);
    bson_t doc;
    char err[64], answer[33] = "", cli_answer[33], path[200];
    unsigned char h2[16];
    mt5_auth_h2(pw, h2);
    if (body && json_parse(body, strlen(body), &doc, err, sizeof err) == 0 && json_get_str(&doc, "srv_rand"))
        mt5_auth_answer(h2, json_get_str(&doc, "srv_rand"), answer);
    bson_destroy(&doc);
    free(body);
    snprintf(path, sizeof path, "/api/auth/answer?srv_rand_answer=%s&cli_rand=00112233445566778899aabbccddeeff", answer);
    body = s_raw(h, path, &status);
    if (status == 200) {
        mt5_auth_answer(h2, "00112233445566778899aabbccddeeff", cli_answer);
        CHECK(body && strstr(body, cli_answer) != NULL); /* the simulator proves it knows the password */
    }
    free(body);
    return status;
}

static void test_simulator_enforces_protocol(void)
{
    long status = 0;
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_COOKIEFILE, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    char *body = s_raw(h, "/api/user/get?login=100001", &status); /* no session */
    CHECK_EQ_INT(status, 403);
    free(body);
    CHECK_EQ_INT(s_raw_auth(h, "wrong"), 403);
    body = s_raw(h, "/api/test/access", &status);
    CHECK_EQ_INT(status, 403); /* a failed answer leaves no session */
    free(body);
    CHECK_EQ_INT(s_raw_auth(h, MANAGER_PW), 200);
    body = s_raw(h, "/api/trade/balance?login=100001&type=2&balance=1.00&check_margin=0"
                    "&comment=0123456789012345678901234567890x", &status);
    CHECK_EQ_INT(status, 200);
    CHECK(body && strstr(body, "\"3 ") != NULL); /* 32 characters: refused, not cut */
    free(body);
    body = s_raw(h, "/api/trade/balance?login=100001&type=2&balance=1.001&check_margin=0&comment=x", &status);
    CHECK(body && strstr(body, "\"3 ") != NULL); /* more decimals than the currency */
    free(body);
    body = s_raw(h, "/api/trade/balance?login=100001&type=2&balance=abc&check_margin=0&comment=x", &status);
    CHECK(body && strstr(body, "\"3 ") != NULL);
    free(body);
    body = s_raw(h, "/api/user/check_password?password=x", &status); /* a GET with the password in the URL */
    CHECK_EQ_INT(status, 404);
    free(body);
    /* a POST balance works as a GET does; get_batch finds the deal by ticket and by login list */
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    body = s_raw(h, "/api/trade/balance?login=100002&type=2&balance=0.05&check_margin=0&comment=batch%20one", &status);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    const char *t = body ? strstr(body, "\"Ticket\":\"") : NULL;
    uint64_t ticket = t ? strtoull(t + 10, NULL, 10) : 0;
    CHECK(ticket > 0);
    free(body);
    char path[160];
    snprintf(path, sizeof path, "/api/deal/get_batch?ticket=%" PRIu64, ticket);
    body = s_raw(h, path, &status);
    CHECK(body && strstr(body, "\"Comment\":\"batch one\"") && strstr(body, "\"Profit\":\"0.05\"")
          && strstr(body, "\"Action\":\"2\"") && strstr(body, "\"TimeMsc\":\""));
    free(body);
    int64_t now = (int64_t) time(NULL);
    snprintf(path, sizeof path, "/api/deal/get_batch?login=100001,100002&from=%" PRId64 "&to=%" PRId64, now - 60, now + 60);
    body = s_raw(h, path, &status);
    CHECK(body && strstr(body, "batch one") != NULL);
    free(body);
    curl_easy_cleanup(h);
    CHECK_EQ_INT(s_deals_with(100001, "x"), 0);
}

static void test_sim_accounts_reports_exact_balances(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket;
    CHECK_EQ_INT(mt5_balance(c, 100002, 1, 2, "kasa-cent", &ticket, err, sizeof err), MT5_OK);
    char *body = s_ctl("GET", "/sim/accounts", NULL);
    CHECK(body && strstr(body, "\"login\":100002,") && strstr(body, "\"balance\":\"0.11\",\"deals\":1"));
    free(body);
    mt5_client_destroy(&c);
}


#define S_REF "kasa c15c0289ec2d4a91a7ec8e65a1" /* a reference as kasa makes them */

/* Credits S_REF-style references and searches them back after a server plugin rewrote the
 * comment: a prefix (cut to 31 characters, as MT5 cuts), a trim, upper case. Each is found. */
static void test_search_finds_a_rewritten_comment(void)
{
    static const char *const rewrites[] = { "{\"comment_rewrite\":\"prefix:DEP \"}", "{\"comment_rewrite\":\"trim:22\"}",
                                            "{\"comment_rewrite\":\"upper\"}", "{\"comment_rewrite\":\"prefix:#1 \"}" };
    for (size_t i = 0; i < sizeof rewrites / sizeof rewrites[0]; i++) {
        free(s_ctl("POST", "/sim/reset", NULL));
        s_faults(rewrites[i]);
        mt5_client_t *c = s_client(3000);
        char err[160] = "";
        uint64_t ticket = 0, found = 0;
        int64_t now = (int64_t) time(NULL);
        CHECK_EQ_INT(mt5_balance(c, 100001, 700, 2, S_REF, &ticket, err, sizeof err), MT5_OK);
        CHECK_EQ_INT(s_deals_with(100001, S_REF), 0);   /* the stored comment is not what was sent */
        CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, S_REF, now - 100, now + 100, &found, err, sizeof err), MT5_OK);
        CHECK_EQ_INT(found, ticket);
        /* another deposit's reference never matches it */
        CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa d15c0289ec2d4a91a7ec8e65a1", now - 100, now + 100, &found,
                                           err, sizeof err), MT5_NOT_FOUND);
        mt5_client_destroy(&c);
    }
    CHECK(mt5_comment_matches("DEP kasa C15C0289EC2D4A91A7EC8E65", S_REF));   /* prefixed, cut, re-cased */
    CHECK(!mt5_comment_matches("DEP kasa c15c0289ec2d4", S_REF));             /* too little of it left */
    CHECK(!mt5_comment_matches("kasa c15c0289ec2d4a91a7ec8e65a2", S_REF));
    CHECK(mt5_comment_matches("KASA-REF-A", "kasa-ref-a"));                    /* a short core: exact, any case */
    CHECK(!mt5_comment_matches("kasa-ref-A2", "kasa-ref-A"));
}

/* A server that returns at most 7 deals per page, whatever was asked: the search advances by the
 * deals returned and finds a deal on the fourth page. */
static void test_search_reads_short_pages_without_skipping(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    s_faults("{\"page_max\":7}");
    mt5_client_t *c = s_client(5000);
    char err[160] = "", comment[32];
    uint64_t ticket = 0, want = 0, found = 0;
    int64_t now = (int64_t) time(NULL);
    for (int i = 0; i < 30; i++) {
        snprintf(comment, sizeof comment, "short-page-%d", i);
        CHECK_EQ_INT(mt5_balance(c, 100002, 1, 2, comment, &ticket, err, sizeof err), MT5_OK);
        if (i == 25)
            want = ticket;
    }
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100002, "short-page-25", now - 100, now + 100, &found, err, sizeof err),
                 MT5_OK);
    CHECK_EQ_INT(found, want);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100002, "short-page-99", now - 100, now + 100, &found, err, sizeof err),
                 MT5_NOT_FOUND);   /* every short page read and counted: a complete "not there" */
    mt5_client_destroy(&c);
}

/* Odd pages (an object for an answer, a non-deal in the array, an empty page before the total)
 * and a window over the cap are "cannot tell", never "not there". */
static void test_search_cannot_tell_on_odd_pages_or_over_the_cap(void)
{
    static const char *const odd[] = { "object", "element", "empty" };
    for (size_t i = 0; i < 3; i++) {
        free(s_ctl("POST", "/sim/reset", NULL));
        mt5_client_t *c = s_client(3000);
        char err[160] = "", faults[96];
        uint64_t ticket = 0, found = 0;
        int64_t now = (int64_t) time(NULL);
        CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "odd-page-deal", &ticket, err, sizeof err), MT5_OK);
        snprintf(faults, sizeof faults, "{\"odd_pages\":1,\"odd_page\":\"%s\"}", odd[i]);
        s_faults(faults);
        CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "not-this-one", now - 100, now + 100, &found, err, sizeof err),
                     MT5_CANNOT_TELL);
        CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "not-this-one", now - 100, now + 100, &found, err, sizeof err),
                     MT5_NOT_FOUND);   /* the next, whole, page */
        mt5_client_destroy(&c);
    }
    free(s_ctl("POST", "/sim/reset", NULL));
    int64_t now = (int64_t) time(NULL);
    char body[128];
    snprintf(body, sizeof body, "{\"login\":100002,\"count\":%d,\"from\":%lld,\"to\":%lld}", MT5_SEARCH_MAX_DEALS + 1,
             (long long) now - 3600, (long long) now);
    free(s_ctl("POST", "/sim/trading_deals", body));
    mt5_client_t *c = s_client(5000);
    char err[160] = "";
    uint64_t found = 0;
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100002, "kasa-over-cap", now - 7200, now + 100, &found, err, sizeof err),
                 MT5_CANNOT_TELL);
    CHECK(strstr(err, "more than one search reads") != NULL);
    mt5_client_destroy(&c);
    free(s_ctl("POST", "/sim/reset", NULL));
}

/* Deal times in trade-server time (UTC + 3 h): the client measures the offset from the deal it
 * made, and a window on kasa's clock would miss the deal while one on MT5's finds it. */
static void test_clock_offset_is_measured_from_a_new_deal(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    s_faults("{\"server_time_offset_s\":10800}");
    mt5_client_t *c = s_client(3000);
    char err[160] = "";
    uint64_t ticket = 0, found = 0;
    int64_t offset = 0;
    CHECK_EQ_INT(mt5_clock_offset(c, &offset), -1);
    int64_t now = (int64_t) time(NULL);
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "kasa-server-time", &ticket, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_clock_offset(c, &offset), 0);
    CHECK(offset >= 10800 - 2 && offset <= 10800 + 2);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-server-time", now - 60, now + 60, &found, err, sizeof err),
                 MT5_NOT_FOUND);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-server-time", now + offset - 60, now + offset + 60, &found, err,
                                       sizeof err), MT5_OK);
    CHECK_EQ_INT(found, ticket);
    mt5_client_destroy(&c);
    free(s_ctl("POST", "/sim/reset", NULL));
}

/* Late execution: the call is accepted, the client gives up (its timeout, or the connection is
 * dropped), and the deal appears later. Until then a search says "not there": only a settle time
 * tells a late deal from a lost call. */
static void test_late_execution_applies_the_deal_after_the_client_gave_up(void)
{
    static const char *const modes[] = { "{\"late_count\":1,\"late_apply_ms\":1200,\"late_reply_ms\":0}",
                                         "{\"late_count\":1,\"late_apply_ms\":1200,\"late_reply_ms\":900}" };
    for (int m = 0; m < 2; m++) {
        free(s_ctl("POST", "/sim/reset", NULL));
        s_faults(modes[m]);
        mt5_client_t *c = s_client(500);
        char err[160] = "";
        uint64_t ticket = 0, found = 0;
        int64_t now = (int64_t) time(NULL);
        CHECK_EQ_INT(mt5_balance(c, 100001, 300, 2, "kasa-late", &ticket, err, sizeof err), MT5_AMBIGUOUS);
        CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-late", now - 100, now + 100, &found, err, sizeof err),
                     MT5_NOT_FOUND);   /* not yet */
        usleep(1500 * 1000);
        CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa-late", now - 100, now + 100, &found, err, sizeof err),
                     MT5_OK);
        CHECK(found != 0);
        CHECK_EQ_INT(s_deals_with(100001, "kasa-late"), 1);
        mt5_client_destroy(&c);
    }
    free(s_ctl("POST", "/sim/reset", NULL));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("KASA_LOG_LEVEL", "warn", 0);
    s_start();
    RUN(test_handshake_opens_a_session);
    RUN(test_clients_keep_their_own_sessions);
    RUN(test_wrong_manager_password_is_auth_failed);
    RUN(test_server_that_fails_cli_rand_is_not_genuine);
    RUN(test_deposit_returns_ticket_and_changes_balance_exactly);
    RUN(test_find_balance_deal_by_exact_comment);
    RUN(test_find_balance_deal_reads_every_page);
    RUN(test_session_loss_reauthenticates_reads);
    RUN(test_session_loss_on_balance_is_ambiguous_then_reconciled);
    RUN(test_idle_session_is_proved_by_ping_before_balance);
    RUN(test_idle_session_expires_and_client_recovers);
    RUN(test_closed_connection_gets_new_session_before_balance);
    RUN(test_permanent_retcodes_are_classified);
    RUN(test_dropped_reply_is_ambiguous_and_deal_is_found_once);
    RUN(test_reply_slower_than_timeout_is_ambiguous);
    RUN(test_check_password_main_investor_and_wrong);
    RUN(test_user_group_and_account_get);
    RUN(test_simulator_enforces_protocol);
    RUN(test_sim_accounts_reports_exact_balances);
    RUN(test_search_finds_a_rewritten_comment);
    RUN(test_search_reads_short_pages_without_skipping);
    RUN(test_search_cannot_tell_on_odd_pages_or_over_the_cap);
    RUN(test_clock_offset_is_measured_from_a_new_deal);
    RUN(test_late_execution_applies_the_deal_after_the_client_gave_up);
    sim_mt5_stop(&s_sim);
    curl_global_cleanup();
    return check_done();
}
