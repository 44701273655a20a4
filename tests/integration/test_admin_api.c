/* test_admin_api.c — the admin API against `kasa serve` and the simulators: a login needs the
 * password and a TOTP code computed here, a code is never accepted twice, the first login forces a
 * new password; the admin cookie is its own (an investor's session never opens an admin route);
 * CSRF on every POST; each role's calls checked on the server (a viewer's action gets 403); an
 * operator assigns an unlinked deposit and it is credited once in the MT5 simulator; two approvers
 * approve a deposit over the second limit; the withdrawal queue with its totals per token and the
 * balance of the wallet withdrawals are paid from; search, timeline and audit; repeated wrong logins hold
 * the name back (429, even for the right password) and tell the broker's Telegram chat; a disabled
 * admin's session stops at once. */
#include "tests/integration/harness.h"
#include "actors/mt5.h"
#include "tests/check.h"

#include <pthread.h>

#include "schema/totp.h"

#define ADDR_A      "TAdmApiAddrA111111111111111111111"   /* linked to 100001 */
#define ADDR_NOBODY "TAdmApiNobody11111111111111111111"
#define WD_WALLET   "5e5e5e5e-0000-4000-8000-00000000adad"   /* COBO_WITHDRAW_WALLET_ID: another wallet */

static h_env_t s_env;
static int s_ready;

typedef struct {
    char name[32];
    char password[64];
    char secret[40];
    uint64_t last_step;
    char sid[80], csrf[80];
} s_admin_t;

static s_admin_t s_boss = { .name = "boss" }, s_vera = { .name = "vera" }, s_opal = { .name = "opal" },
                 s_apex = { .name = "apex" },
                 s_apex2 = { .name = "apex2" };

/* `kasa admin add NAME --role ROLE`: the one-time password and the secret into a. 0 or -1. */
static int s_add(s_admin_t *a, const char *role)
{
    char *out = NULL;
    int rc = h_kasa_cmd(&s_env, &out, "admin", "add", a->name, "--role", role, "--config", s_env.config, NULL);
    const char *pw = out ? strstr(out, "one-time password: ") : NULL;
    const char *sec = out ? strstr(out, "?secret=") : NULL;
    if (rc == 0 && pw && sec) {
        sscanf(pw + 19, "%63s", a->password);
        sscanf(sec + 8, "%39[A-Z2-7]", a->secret);
    } else {
        h_log("kasa admin add %s -> %d: %s", a->name, rc, out ? out : "");
        rc = -1;
    }
    free(out);
    return rc;
}

/* A code for a that was never used: the earliest step within one step of now after its last one. */
static void s_code(s_admin_t *a, char code[7])
{
    uint8_t key[64];
    size_t n = 0;
    totp_base32_decode(a->secret, key, sizeof key, &n);
    uint64_t now = (uint64_t) time(NULL) / 30, step = now - 1;
    if (step <= a->last_step)
        step = a->last_step + 1;
    totp_code(key, n, step, 6, code);
    a->last_step = step;
}

static h_cresp_t s_req(const s_admin_t *a, const char *method, const char *path, const char *body, int csrf)
{
    char cookie[120];
    snprintf(cookie, sizeof cookie, "kasa_admin=%s", a ? a->sid : "");
    return h_call(s_env.kasa_url, method, path, a && a->sid[0] ? cookie : NULL, csrf && a ? a->csrf : NULL, body,
                  NULL);
}

/* Logs a in with password (NULL: its own) and a fresh code. The HTTP status; sid and csrf on 200. */
static long s_login(s_admin_t *a, const char *password)
{
    char code[7], body[300];
    s_code(a, code);
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"password\":\"%s\",\"code\":\"%s\"}", a->name,
             password ? password : a->password, code);
    h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/admin/login", NULL, NULL, body, NULL);
    if (r.status == 200) {
        char cookie[300] = "";
        h_header(&r, "Set-Cookie", cookie, sizeof cookie);
        const char *v = strstr(cookie, "kasa_admin=");
        snprintf(a->sid, sizeof a->sid, "%.64s", v ? v + 11 : "");
        h_json_str(r.body, "csrf", a->csrf, sizeof a->csrf);
    }
    long st = r.status;
    h_cresp_free(&r);
    return st;
}

/* Logs in with the one-time password and sets a new one. 0 or -1. */
static int s_first_login(s_admin_t *a)
{
    /* a code made one step back is refused if the 30 s step turns between making and checking it:
     * once more then, with the next step */
    if (s_login(a, NULL) != 200 && s_login(a, NULL) != 200)
        return -1;
    char body[300], fresh[64];
    snprintf(fresh, sizeof fresh, "%s-new-password", a->name);
    snprintf(body, sizeof body, "{\"current\":\"%s\",\"password\":\"%s\"}", a->password, fresh);
    h_cresp_t r = s_req(a, "POST", "/api/admin/password", body, 1);
    long st = r.status;
    h_cresp_free(&r);
    snprintf(a->password, sizeof a->password, "%s", fresh);
    return st == 200 ? 0 : -1;
}

static h_tx_t s_tx(const char *address, const char *amount)
{
    return h_completed_tx(address, amount, "TRON_USDT");
}

static int s_held(const char *address, const char *amount, h_tx_t *tx)
{
    *tx = s_tx(address, amount);
    if (h_sim_deposit(&s_env, tx, 1, -1, -1) != 0)
        return -1;
    return h_wait_state(&s_env, tx->tx_id, DEPOSIT_HELD, 20000) == DEPOSIT_HELD ? 0 : -1;
}

static int s_deals_of(uint64_t login, int64_t minor)
{
    h_deal_t deals[64];
    int n = h_mt5_deals(&s_env, login, deals, 64), match = 0;
    for (int i = 0; i < n; i++)
        match += h_amount_eq(deals[i].profit, minor);
    return match;
}

/* POST /api/admin/deposits/TX/ACTION {reason, login}: the status; the body into *out if not NULL. */
static long s_act(const s_admin_t *a, const char *tx, const char *action, const char *login, char **out)
{
    char path[200], body[300];
    snprintf(path, sizeof path, "/api/admin/deposits/%s/%s", tx, action);
    snprintf(body, sizeof body, "{\"reason\":\"checked by %s\"%s%s%s}", a->name, login ? ",\"login\":\"" : "",
             login ? login : "", login ? "\"" : "");
    h_cresp_t r = s_req(a, "POST", path, body, 1);
    long st = r.status;
    if (out)
        *out = strdup(r.body);
    h_cresp_free(&r);
    return st;
}

static void test_login_needs_password_and_code_and_forces_a_new_password(void)
{
    CHECK(s_ready);
    char code[7], body[300];
    s_code(&s_boss, code);
    code[5] = code[5] == '0' ? '1' : '0';   /* a wrong code */
    snprintf(body, sizeof body, "{\"name\":\"boss\",\"password\":\"%s\",\"code\":\"%s\"}", s_boss.password, code);
    h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/admin/login", NULL, NULL, body, NULL);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
    CHECK_EQ_INT(s_login(&s_boss, "not the password"), 401);
    s_boss.last_step = 0;   /* refused attempts used up no step at the server */
    CHECK_EQ_INT(s_login(&s_boss, NULL), 200);
    r = s_req(&s_boss, "GET", "/api/admin/session", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"must_change\":true") && strstr(r.body, "\"role\":\"owner\""));
    h_cresp_free(&r);
    r = s_req(&s_boss, "GET", "/api/admin/deposits", NULL, 0);
    CHECK_EQ_INT(r.status, 403);
    CHECK(strstr(r.body, "one-time password"));
    h_cresp_free(&r);
    /* the same code for a second login: refused */
    snprintf(body, sizeof body, "{\"name\":\"boss\",\"password\":\"%s\",\"code\":\"%s\"}", s_boss.password, code);
    uint8_t key[64];
    size_t n = 0;
    totp_base32_decode(s_boss.secret, key, sizeof key, &n);
    char used[7];
    totp_code(key, n, s_boss.last_step, 6, used);
    snprintf(body, sizeof body, "{\"name\":\"boss\",\"password\":\"%s\",\"code\":\"%s\"}", s_boss.password, used);
    r = h_call(s_env.kasa_url, "POST", "/api/admin/login", NULL, NULL, body, NULL);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
    /* a new password, then the pages open; the cookie is strict and HttpOnly */
    snprintf(body, sizeof body, "{\"current\":\"%s\",\"password\":\"boss-new-password\"}", s_boss.password);
    r = s_req(&s_boss, "POST", "/api/admin/password", body, 0);   /* no CSRF token */
    CHECK_EQ_INT(r.status, 403);
    h_cresp_free(&r);
    r = s_req(&s_boss, "POST", "/api/admin/password", body, 1);
    CHECK_EQ_INT(r.status, 200);
    h_cresp_free(&r);
    snprintf(s_boss.password, sizeof s_boss.password, "boss-new-password");
    r = s_req(&s_boss, "GET", "/api/admin/deposits", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    h_cresp_free(&r);
    char cookie[300] = "";
    r = s_req(&s_boss, "POST", "/api/admin/logout", "{}", 1);
    CHECK_EQ_INT(r.status, 200);
    h_header(&r, "Set-Cookie", cookie, sizeof cookie);
    CHECK(strstr(cookie, "kasa_admin=;") && strstr(cookie, "HttpOnly") && strstr(cookie, "SameSite=Strict"));
    h_cresp_free(&r);
    r = s_req(&s_boss, "GET", "/api/admin/session", NULL, 0);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
    CHECK_EQ_INT(s_login(&s_boss, NULL), 200);
}

static void test_an_investor_session_never_opens_an_admin_route(void)
{
    CHECK(s_ready);
    char body[200], sid[80] = "", cookie[300] = "", admin_cookie[120];
    snprintf(body, sizeof body, "{\"login\":\"100001\",\"password\":\"%s\"}", H_MT5_PW);
    h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/login", NULL, NULL, body, NULL);
    CHECK_EQ_INT(r.status, 200);
    h_header(&r, "Set-Cookie", cookie, sizeof cookie);
    const char *v = strstr(cookie, "kasa_sid=");
    snprintf(sid, sizeof sid, "%.64s", v ? v + 9 : "");
    h_cresp_free(&r);
    char inv[120];
    snprintf(inv, sizeof inv, "kasa_sid=%s", sid);
    r = h_call(s_env.kasa_url, "GET", "/api/admin/deposits", inv, NULL, NULL, NULL);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
    snprintf(inv, sizeof inv, "kasa_admin=%s", sid);   /* the investor's id under the admin cookie */
    r = h_call(s_env.kasa_url, "GET", "/api/admin/deposits", inv, NULL, NULL, NULL);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
    snprintf(admin_cookie, sizeof admin_cookie, "kasa_sid=%s", s_boss.sid);   /* and the other way */
    r = h_call(s_env.kasa_url, "GET", "/api/me", admin_cookie, NULL, NULL, NULL);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
}

static void test_a_viewer_sees_everything_and_may_not_act(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    CHECK(s_held(ADDR_NOBODY, "12", &tx) == 0);
    CHECK_EQ_INT(s_first_login(&s_vera), 0);
    h_cresp_t r = s_req(&s_vera, "GET", "/api/admin/session", NULL, 0);
    CHECK(strstr(r.body, "\"may\":[\"view\"]"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/deposits?state=HELD", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, tx.tx_id));
    h_cresp_free(&r);
    uint64_t records = h_journal_records(s_env.journal);
    static const char *const actions[] = { "retry", "assign", "approve", "reject" };
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(s_act(&s_vera, tx.tx_id, actions[i], i == 1 ? "100002" : NULL, NULL), 403);
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
}

static void test_an_operator_assigns_and_the_deposit_is_credited_once(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    CHECK(s_held(ADDR_NOBODY, "30", &tx) == 0);
    CHECK_EQ_INT(s_first_login(&s_opal), 0);
    char *out = NULL;
    CHECK_EQ_INT(s_act(&s_opal, tx.tx_id, "reject", NULL, NULL), 403);     /* an operator may not reject */
    CHECK_EQ_INT(s_act(&s_opal, tx.tx_id, "assign", "999999", &out), 409); /* a login MT5 does not know */
    CHECK(out && strstr(out, "999999"));
    free(out);
    h_cresp_t r = s_req(&s_opal, "POST", "/api/admin/deposits/x/assign", "{\"reason\":\"r\",\"login\":\"100002\"}", 0);
    CHECK_EQ_INT(r.status, 403);   /* no CSRF token */
    h_cresp_free(&r);
    CHECK_EQ_INT(s_act(&s_opal, tx.tx_id, "assign", "100003", &out), 200);
    CHECK(out && strstr(out, "assigned"));
    free(out);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(s_deals_of(100003, 2950), 1);
    CHECK_EQ_INT(s_act(&s_opal, tx.tx_id, "assign", "100004", NULL), 409);   /* no longer held */
    h_sleep_ms(200);
    CHECK_EQ_INT(s_deals_of(100003, 2950), 1);
}

static void test_two_approvers_approve_over_the_second_limit(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    CHECK(s_held(ADDR_A, "7000", &tx) == 0);
    CHECK_EQ_INT(s_first_login(&s_apex), 0);
    CHECK_EQ_INT(s_first_login(&s_apex2), 0);
    char *out = NULL;
    CHECK_EQ_INT(s_act(&s_apex, tx.tx_id, "approve", NULL, &out), 200);
    CHECK(out && strstr(out, "\"waits_for_another_approver\":true"));
    free(out);
    CHECK_EQ_INT(s_act(&s_apex, tx.tx_id, "approve", NULL, &out), 409);
    CHECK(out && strstr(out, "another approver"));
    free(out);
    CHECK_EQ_INT(s_act(&s_apex2, tx.tx_id, "approve", NULL, &out), 200);
    CHECK(out && strstr(out, "\"waits_for_another_approver\":false"));
    free(out);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(s_deals_of(100001, 699950), 1);

    /* the timeline and the audit tell who, from where and why */
    char path[200];
    snprintf(path, sizeof path, "/api/admin/deposits/%s", tx.tx_id);
    h_cresp_t r = s_req(&s_vera, "GET", path, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"approvers\":[\"admin:apex\",\"admin:apex2\"]") && strstr(r.body, "\"kind\":\"ADMIN_ACTION\"") &&
          strstr(r.body, "\"origin\":\"ip:127.0.0.1\"") && strstr(r.body, "\"to\":\"CREDITED\""));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/audit?actor=apex2", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"actor\":\"admin:apex2\"") && strstr(r.body, "checked by apex2") &&
          !strstr(r.body, "\"actor\":\"admin:apex\","));
    h_cresp_free(&r);
}

/* The withdrawal queue: an investor's withdrawal waits DEBITED; a viewer sees it and may not act, nor
 * may a deposit approver; a treasurer rejects it with a reason (journaled as the admin) and it is
 * refunded. */
static void test_the_withdrawal_queue_and_a_treasurers_reject(void)
{
    CHECK(s_ready);
    mt5_client_t *m = mt5_client_new(s_env.mt5_url, H_MT5_MANAGER, H_MT5_MANAGER_PW, NULL, 5000);
    uint64_t t;
    char e[160];
    CHECK(mt5_balance(m, 100008, 50000, 2, "seed", &t, e, sizeof e) == MT5_OK);
    mt5_client_destroy(&m);
    char body[300], sid[80] = "", csrf[80] = "", id[40] = "";
    CHECK_EQ_INT(h_investor_login(&s_env, 100008, H_MT5_PW, sid, csrf), 0);
    snprintf(body, sizeof body, "{\"token\":\"TRON_USDT\",\"address\":\"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t\","
             "\"amount\":\"50\",\"password\":\"%s\"}", H_MT5_PW);
    h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/withdrawals", sid, csrf, body, NULL);
    CHECK_EQ_INT(r.status, 201);
    h_json_str(r.body, "id", id, sizeof id);
    h_cresp_free(&r);
    int waiting = 0;
    for (int i = 0; i < 100 && !waiting; i++) {
        r = s_req(&s_vera, "GET", "/api/admin/withdrawals?state=DEBITED", NULL, 0);
        waiting = r.status == 200 && r.body && strstr(r.body, id) != NULL;
        h_cresp_free(&r);
        if (!waiting)
            h_sleep_ms(50);
    }
    CHECK(waiting);
    /* what the staff read: approvals needed and given, who asked, totals per token (49 = 50 less the fee) */
    r = s_req(&s_vera, "GET", "/api/admin/withdrawals?state=DEBITED,HELD&login=100008", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, id) &&
          strstr(r.body, "\"approvers\":[],\"approvals_needed\":1,\"requester\":\"investor:100008\"}"));
    CHECK(r.body && strstr(r.body, "\"totals\":[{\"token\":\"TRON_USDT\",\"waiting\":{\"count\":1,\"token_amount\":\"49\"},"
                              "\"sending\":{\"count\":0,\"token_amount\":\"0\"},\"held\":{\"count\":0,\"token_amount\":\"0\"},"
                              "\"completed\":{\"count\":0,\"token_amount\":\"0\"},\"to_pay\":\"49\"}]"));
    if (r.body && !strstr(r.body, "\"to_pay\":\"49\""))
        h_log("withdrawals: %.600s", r.body);
    CHECK(r.body && strstr(r.body, "\"may_decide\":false}"));   /* a viewer: the panel shows no buttons */
    h_cresp_free(&r);
    r = s_req(&s_apex, "GET", "/api/admin/withdrawals?state=DEBITED", NULL, 0);   /* a deposit approver */
    CHECK(r.status == 200 && r.body && strstr(r.body, "\"may_decide\":false}"));
    h_cresp_free(&r);
    r = s_req(&s_apex2, "GET", "/api/admin/withdrawals?state=DEBITED", NULL, 0);   /* a treasurer */
    CHECK(r.status == 200 && r.body && strstr(r.body, "\"may_decide\":true}"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/withdrawals?state=APPROVED,SENT", NULL, 0);
    CHECK(r.status == 200 && r.body && !strstr(r.body, id) && strstr(r.body, "\"to_pay\":\"49\""));
    h_cresp_free(&r);
    static const char *const bad[] = { "state=DEBITED,", "state=,DEBITED", "state=DEBITED,SOMEWHERE", "login=x", NULL };
    for (int i = 0; bad[i]; i++) {
        char q[80];
        snprintf(q, sizeof q, "/api/admin/withdrawals?%s", bad[i]);
        r = s_req(&s_vera, "GET", q, NULL, 0);
        CHECK_EQ_INT(r.status, 400);
        h_cresp_free(&r);
    }
    char path[120];
    snprintf(path, sizeof path, "/api/admin/withdrawals/%s/reject", id);
    r = s_req(&s_vera, "POST", path, "{\"reason\":\"no\"}", 1);
    CHECK_EQ_INT(r.status, 403);   /* a viewer */
    h_cresp_free(&r);
    r = s_req(&s_apex, "POST", path, "{\"reason\":\"no\"}", 1);
    CHECK_EQ_INT(r.status, 403);   /* a deposit approver: withdrawals are a treasurer's (withdrawal.decide) */
    h_cresp_free(&r);
    r = s_req(&s_apex2, "POST", path, "{\"reason\":\"the destination is not the investor's\"}", 1);
    CHECK_EQ_INT(r.status, 200);
    h_cresp_free(&r);
    int refunded = 0;
    snprintf(path, sizeof path, "/api/admin/withdrawals/%s", id);
    for (int i = 0; i < 100 && !refunded; i++) {
        r = s_req(&s_vera, "GET", path, NULL, 0);
        refunded = r.status == 200 && r.body && strstr(r.body, "\"state\":\"REFUNDED\"") &&
                   strstr(r.body, "admin:apex2") && strstr(r.body, "not the investor");
        h_cresp_free(&r);
        if (!refunded)
            h_sleep_ms(50);
    }
    CHECK(refunded);
    /* given back: nothing left to pay */
    r = s_req(&s_vera, "GET", "/api/admin/withdrawals", NULL, 0);
    CHECK(r.status == 200 && r.body && strstr(r.body, "\"to_pay\":\"0\"") && strstr(r.body, id));
    h_cresp_free(&r);
}

static void test_search_filters_and_pages_newest_first(void)
{
    CHECK(s_ready);
    h_cresp_t r = s_req(&s_vera, "GET", "/api/admin/deposits?state=NOTIFIED&login=100001&min=5000&max=8000", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"amount\":\"7000\"") && strstr(r.body, "\"total\":1,"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/deposits?limit=1&page=2", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"page\":2,\"limit\":1") && strstr(r.body, "\"total\":3,") &&
          strstr(r.body, "\"amount\":\"30\""));   /* newest first: 7000, then 30, then 12 */
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/deposits?from=2999-01-01", NULL, 0);
    CHECK(strstr(r.body, "\"total\":0,"));
    h_cresp_free(&r);
    static const char *const bad[] = { "state=SOMEWHERE", "login=abc", "from=yesterday", "min=-5", "limit=1000", NULL };
    for (int i = 0; bad[i]; i++) {
        char path[120];
        snprintf(path, sizeof path, "/api/admin/deposits?%s", bad[i]);
        r = s_req(&s_vera, "GET", path, NULL, 0);
        CHECK_EQ_INT(r.status, 400);
        h_cresp_free(&r);
    }
    r = s_req(&s_vera, "GET", "/api/admin/deposits/no-such-deposit", NULL, 0);
    CHECK_EQ_INT(r.status, 404);
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/summary", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"NOTIFIED\":2") && strstr(r.body, "\"HELD\":1") &&
          strstr(r.body, "{\"token\":\"TRON_USDT\",\"today\":\"7030\",\"week\":\"7030\"}"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/admins", NULL, 0);
    CHECK(strstr(r.body, "\"name\":\"apex2\",\"role\":\"treasurer\""));
    h_cresp_free(&r);
}

static void test_addresses_are_searchable_and_paged(void)
{
    CHECK(s_ready);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "wallet", "link", "TAdmApiAddrB222222222222222222222", "100002", "--chain",
                            "TRON", "--config", s_env.config, NULL), 0);
    free(out);
    /* a viewer sees them, newest link first, with the chain's offered tokens */
    h_cresp_t r = s_req(&s_vera, "GET", "/api/admin/addresses?limit=1", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "{\"addresses\":[{\"address\":\"TAdmApiAddrB222222222222222222222\",\"chain\":\"TRON\","
                         "\"tokens\":[\"TRON_USDT\",\"TRON\"],\"login\":100002,\"created_ms\":"));
    CHECK(strstr(r.body, "\"total\":2,\"page\":1,\"limit\":1}"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/addresses?limit=1&page=2", NULL, 0);
    CHECK(strstr(r.body, "\"address\":\"" ADDR_A "\"") && strstr(r.body, "\"login\":100001"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/addresses?q=AddrB", NULL, 0);   /* a part of the address */
    CHECK(strstr(r.body, "TAdmApiAddrB") && strstr(r.body, "\"total\":1,"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/addresses?q=100001", NULL, 0);  /* a login */
    CHECK(strstr(r.body, ADDR_A) && strstr(r.body, "\"total\":1,"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/addresses?q=nowhere", NULL, 0);
    CHECK(strstr(r.body, "{\"addresses\":[],\"total\":0,"));
    h_cresp_free(&r);
    r = s_req(&s_vera, "GET", "/api/admin/addresses?login=x", NULL, 0);
    CHECK_EQ_INT(r.status, 400);
    h_cresp_free(&r);
    r = s_req(NULL, "GET", "/api/admin/addresses", NULL, 0);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
}

static void test_wallet_balances_per_token_and_address_with_exact_totals(void)
{
    CHECK(s_ready);
    /* two deposits at a linked address: its Cobo figure is their exact sum */
    h_tx_t a = s_tx(ADDR_A, "0.000001"), b = s_tx(ADDR_A, "1.5");
    CHECK(h_sim_deposit(&s_env, &a, 1, -1, -1) == 0 && h_sim_deposit(&s_env, &b, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/balances", "{\"wallet_id\":\"" WD_WALLET "\",\"token_id\":\"TRON_USDT\","
                                                             "\"amount\":\"2500.25\"}"), 200);
    h_cresp_t r = s_req(&s_vera, "GET", "/api/admin/balances?fresh=1", NULL, 0);   /* a viewer reads them */
    CHECK_EQ_INT(r.status, 200);
    char want[300];
    snprintf(want, sizeof want, "{\"address\":\"%s\",\"login\":100001,\"balance\":{\"total\":\"7001.500001\","
             "\"available\":\"7001.500001\",\"pending\":\"0\",\"locked\":\"0\",\"frozen\":\"0\"}}", ADDR_A);
    CHECK(r.body && strstr(r.body, "\"token_id\":\"TRON_USDT\"") && strstr(r.body, want));
    CHECK(r.body && strstr(r.body, "\"error\":null") && !strstr(r.body, "\"as_of_ms\":null"));
    /* the wallet withdrawals are paid from (another one here) and its own figure */
    CHECK(r.body && strstr(r.body, "\"withdraw_wallet\":{\"wallet_id\":\"" WD_WALLET "\",\"error\":null,\"tokens\":["
                              "{\"token_id\":\"TRON_USDT\",\"balance\":{\"total\":\"2500.25\",\"available\":\"2500.25\""));
    /* the wallet's figure and the sum of the addresses' agree, to the last digit */
    const char *tb = r.body ? strstr(r.body, "\"balance\":{\"total\":\"") : NULL;
    const char *sum = r.body ? strstr(r.body, "\"address_sum\":{\"total\":\"") : NULL;
    CHECK(tb && sum && strncmp(tb + 19, sum + 23, strcspn(tb + 19, "\"") + 1) == 0);
    long long as_of = 0, as_of2 = 0;
    const char *t = r.body ? strstr(r.body, "\"as_of_ms\":") : NULL;
    CHECK(t && sscanf(t + 11, "%lld", &as_of) == 1 && as_of > 0);
    h_cresp_free(&r);
    /* Cobo down: the answer says so, and keeps the last good figures with their time */
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"fail_next\":3}"), 200);
    r = s_req(&s_vera, "GET", "/api/admin/balances?fresh=1", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "\"error\":\"") && strstr(r.body, "503") && strstr(r.body, want));
    t = r.body ? strstr(r.body, "\"as_of_ms\":") : NULL;
    CHECK(t && sscanf(t + 11, "%lld", &as_of2) == 1 && as_of2 == as_of);
    CHECK(r.body && strstr(r.body, "\"error_ms\":1"));
    h_cresp_free(&r);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"fail_next\":0}"), 200);
    r = s_req(NULL, "GET", "/api/admin/balances", NULL, 0);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
}

/* ---- the live stream ---- */

typedef struct {
    char cookie[120];
    const char *last_event_id;      /* NULL: none */
    long timeout_ms;
    pthread_mutex_t mu;
    jbuf_t text;
    int64_t ended_ms;
} s_live_t;

static size_t s_live_sink(char *p, size_t size, size_t n, void *arg)
{
    s_live_t *l = arg;
    pthread_mutex_lock(&l->mu);
    jbuf_add(&l->text, p, size * n);
    pthread_mutex_unlock(&l->mu);
    return size * n;
}

static void *s_live_read(void *arg)
{
    s_live_t *l = arg;
    char url[160], cookie[160], last[64];
    snprintf(url, sizeof url, "%s/api/admin/events", s_env.kasa_url);
    snprintf(cookie, sizeof cookie, "Cookie: %s", l->cookie);
    CURL *c = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, cookie);
    if (l->last_event_id) {
        snprintf(last, sizeof last, "Last-Event-ID: %s", l->last_event_id);
        hl = curl_slist_append(hl, last);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_live_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, l);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, l->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_perform(c);
    l->ended_ms = h_now_ms();
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return NULL;
}

/* 1 once the stream's text holds what (within ms). */
static int s_live_saw(s_live_t *l, const char *what, int ms)
{
    for (int64_t end = h_now_ms() + ms; h_now_ms() < end; h_sleep_ms(50)) {
        pthread_mutex_lock(&l->mu);
        int hit = l->text.data && strstr(l->text.data, what) != NULL;
        pthread_mutex_unlock(&l->mu);
        if (hit)
            return 1;
    }
    return 0;
}

static void test_the_live_stream_carries_commits_and_ends_at_logout_or_disable(void)
{
    CHECK(s_ready);
    static s_admin_t lena = { .name = "lena" };
    CHECK(s_add(&lena, "viewer") == 0 && s_first_login(&lena) == 0);
    s_live_t l = { .timeout_ms = 20000, .mu = PTHREAD_MUTEX_INITIALIZER };
    jbuf_init(&l.text);
    snprintf(l.cookie, sizeof l.cookie, "kasa_admin=%s", lena.sid);
    pthread_t th;
    pthread_create(&th, NULL, s_live_read, &l);
    CHECK(s_live_saw(&l, "retry:", 5000));
    h_tx_t tx;   /* a deposit nobody's address gets: held, and on the staff's stream */
    CHECK(s_held(ADDR_NOBODY, "5", &tx) == 0);
    char want[160];
    snprintf(want, sizeof want, "\"id\":\"%s\",\"from\":\"RECEIVED\",\"state\":\"HELD\"", tx.tx_id);
    CHECK(s_live_saw(&l, want, 10000));
    int64_t t0 = h_now_ms();
    h_cresp_t r = s_req(&lena, "POST", "/api/admin/logout", "{}", 1);
    CHECK_EQ_INT(r.status, 200);
    h_cresp_free(&r);
    pthread_join(th, NULL);
    h_log("the admin stream ended %lld ms after logout", (long long) (l.ended_ms - t0));
    CHECK(l.ended_ms - t0 < 1000);
    jbuf_free(&l.text);

    /* back with an old Last-Event-ID: told to reload first */
    CHECK(s_login(&lena, NULL) == 200);
    s_live_t back = { .timeout_ms = 1500, .mu = PTHREAD_MUTEX_INITIALIZER, .last_event_id = "1" };
    jbuf_init(&back.text);
    snprintf(back.cookie, sizeof back.cookie, "kasa_admin=%s", lena.sid);
    s_live_read(&back);
    CHECK(back.text.data && strstr(back.text.data, "event: resync"));
    jbuf_free(&back.text);
    /* disabled while its stream is open: the stream ends within a second */
    s_live_t gone = { .timeout_ms = 20000, .mu = PTHREAD_MUTEX_INITIALIZER };
    jbuf_init(&gone.text);
    snprintf(gone.cookie, sizeof gone.cookie, "kasa_admin=%s", lena.sid);
    pthread_create(&th, NULL, s_live_read, &gone);
    CHECK(s_live_saw(&gone, "retry:", 5000));
    char *out = NULL;
    int64_t asked = h_now_ms();
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "disable", "lena", "--config", s_env.config, NULL), 0);
    free(out);
    t0 = h_now_ms();   /* disabled (journaled) by now */
    pthread_join(th, NULL);
    h_log("the admin stream ended %lld ms after `kasa admin disable` was started", (long long) (gone.ended_ms - asked));
    CHECK(gone.ended_ms - t0 < 1000);
    jbuf_free(&gone.text);
    /* an investor's session, or none, gets no stream */
    r = s_req(NULL, "GET", "/api/admin/events", NULL, 0);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
}

static void test_wrong_logins_hold_the_name_back_and_tell_the_chat(void)
{
    CHECK(s_ready);
    s_admin_t mallory = s_vera;
    for (int i = 0; i < 5; i++)   /* five free failures */
        CHECK_EQ_INT(s_login(&mallory, "guessing-the-password"), 401);
    /* then each further failure makes the next attempt wait longer (1 s, 2 s, 4 s ...). A slow
     * password check (Argon2id on a loaded machine) can outlast a short wait, so the test waits out
     * the short ones and fails again until the wait is long enough (4 s or more) that the right
     * password surely comes before it is over */
    long st = 0;
    int retry_s = 0;
    for (int i = 0; i < 12 && retry_s < 4; i++) {
        char code_w[7], body_w[300], retry_w[32] = "";
        s_code(&mallory, code_w);
        snprintf(body_w, sizeof body_w, "{\"name\":\"vera\",\"password\":\"guessing-the-password\",\"code\":\"%s\"}",
                 code_w);
        h_cresp_t w = h_call(s_env.kasa_url, "POST", "/api/admin/login", NULL, NULL, body_w, NULL);
        st = w.status;
        if (st == 429 && h_header(&w, "Retry-After", retry_w, sizeof retry_w) == 0)
            retry_s = atoi(retry_w);
        h_cresp_free(&w);
        if (st == 429 && retry_s < 4)
            sleep((unsigned) retry_s);
    }
    CHECK_EQ_INT(st, 429);
    CHECK(retry_s >= 4);
    char code[7], body[300];
    s_code(&s_vera, code);
    snprintf(body, sizeof body, "{\"name\":\"vera\",\"password\":\"%s\",\"code\":\"%s\"}", s_vera.password, code);
    h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/admin/login", NULL, NULL, body, NULL);
    CHECK_EQ_INT(r.status, 429);   /* even the right password and code */
    char retry[32] = "";
    CHECK_EQ_INT(h_header(&r, "Retry-After", retry, sizeof retry), 0);
    CHECK(atoi(retry) > 0);
    h_cresp_free(&r);
    char *msgs = h_tg_messages(&s_env);
    CHECK(msgs && strstr(msgs, "Yönetici girişi kilitlendi") && strstr(msgs, "vera"));
    free(msgs);
}

static void test_a_disabled_admin_is_out_at_once(void)
{
    CHECK(s_ready);
    h_cresp_t r = s_req(&s_opal, "GET", "/api/admin/deposits", NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    h_cresp_free(&r);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "disable", "opal", "--config", s_env.config, NULL), 0);
    free(out);
    r = s_req(&s_opal, "GET", "/api/admin/deposits", NULL, 0);
    CHECK_EQ_INT(r.status, 401);
    h_cresp_free(&r);
    CHECK_EQ_INT(s_login(&s_opal, NULL), 401);
}

int main(void)
{
    if (h_env_init(&s_env, "adminapi") == 0 && h_sims_start(&s_env, NULL) == 0 &&
        h_config_write(&s_env, "KASA_AUTO_CREDIT_LIMIT=1000\nKASA_DUAL_APPROVAL_LIMIT=5000\n"
                                         "KASA_WITHDRAW_RULES=TRON_USDT=1:1:10:5000:20000\n"
                                         "COBO_WITHDRAW_WALLET_ID=" WD_WALLET "\n") == 0 &&
        h_kasa_start(&s_env) == 0)
        s_ready = h_link(&s_env, ADDR_A, 100001) == 0 && s_add(&s_boss, "owner") == 0 && s_add(&s_vera, "viewer") == 0 &&
                  s_add(&s_opal, "operator") == 0 && s_add(&s_apex, "approver") == 0 && s_add(&s_apex2, "treasurer") == 0;
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_login_needs_password_and_code_and_forces_a_new_password);
    RUN(test_an_investor_session_never_opens_an_admin_route);
    RUN(test_a_viewer_sees_everything_and_may_not_act);
    RUN(test_an_operator_assigns_and_the_deposit_is_credited_once);
    RUN(test_two_approvers_approve_over_the_second_limit);
    RUN(test_the_withdrawal_queue_and_a_treasurers_reject);
    RUN(test_search_filters_and_pages_newest_first);
    RUN(test_addresses_are_searchable_and_paged);
    RUN(test_wallet_balances_per_token_and_address_with_exact_totals);
    RUN(test_the_live_stream_carries_commits_and_ends_at_logout_or_disable);
    RUN(test_wrong_logins_hold_the_name_back_and_tell_the_chat);
    RUN(test_a_disabled_admin_is_out_at_once);
    if (s_ready)
        CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
