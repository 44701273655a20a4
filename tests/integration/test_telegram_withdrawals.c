/* test_telegram_withdrawals.c — withdrawals in the broker's Telegram chat, against a running kasa
 * and the Cobo, MT5 and Bot API simulators: every transition is told (Turkish by default); a
 * withdrawal waiting for approval carries Approve / Reject; a mapped treasurer's Approve sends one
 * transfer and the withdrawal completes (the completed notice carries the tx hash, and the monitor
 * feed carries each transition of it, in order); the press is
 * journaled as the admin from telegram:USER_ID and the message edited to say who decided; an
 * unmapped user's, a viewer's and a deposit approver's presses are refused with nothing journaled;
 * a Reject refunds once; above KASA_WITHDRAW_DUAL_APPROVAL_LIMIT two different treasurers are
 * needed (the same one twice is refused); a restart with every old press redelivered applies none of
 * them again and a press made while kasa was down once; a decision taken with `kasa withdrawal`
 * edits the notice (and a deposit approver's --actor is refused there too); a transfer Cobo fails
 * is held with its reason and Refund / Transfer again buttons. */
#include "tests/integration/harness.h"

#include "actors/mt5.h"
#include "tests/check.h"

#define DEST "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
#define U_AYSE 5001      /* treasurer */
#define U_MEHMET 5002    /* treasurer */
#define U_VELI 5003      /* viewer */
#define U_DENIZ 5004     /* approver: deposits only */
#define U_NOBODY 9999    /* not in KASA_TELEGRAM_APPROVERS */
#define EXTRA "KASA_TELEGRAM_POLL_S=1\nKASA_TELEGRAM_APPROVERS=5001:ayse,5002:mehmet,5003:veli,5004:deniz\n" \
              "KASA_WITHDRAW_RULES=TRON_USDT=1:1:10:5000:20000\nKASA_WITHDRAW_DUAL_APPROVAL_LIMIT=1000\n"   \
              "KASA_WITHDRAW_POLL_S=1\n"

static h_env_t s_env;
static int s_ready;
static char s_two[40];
static long long s_two_mid;

/* An investor of login asks to withdraw amount TRON_USDT to DEST (the account is funded first):
 * the withdrawal id into id, 0; or -1. */
static int s_request(uint64_t login, const char *amount, char id[40])
{
    mt5_client_t *m = mt5_client_new(s_env.mt5_url, H_MT5_MANAGER, H_MT5_MANAGER_PW, NULL, 5000);
    uint64_t t;
    char e[160], body[300], sid[80] = "", csrf[80] = "";
    int ok = m && mt5_balance(m, login, 500000, 2, "seed", &t, e, sizeof e) == MT5_OK;
    mt5_client_destroy(&m);
    ok = ok && h_investor_login(&s_env, login, H_MT5_PW, sid, csrf) == 0;
    snprintf(body, sizeof body, "{\"token\":\"TRON_USDT\",\"address\":\"%s\",\"amount\":\"%s\",\"password\":\"%s\"}",
             DEST, amount, H_MT5_PW);
    h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/withdrawals", sid, csrf, body, NULL);
    ok = ok && r.status == 201;
    id[0] = '\0';
    h_json_str(r.body, "id", id, 40);
    if (!ok)
        h_log("withdrawal request: %ld %s", r.status, r.body ? r.body : "");
    h_cresp_free(&r);
    return ok && id[0] ? 0 : -1;
}

/* The state withdrawal id's last transition in the journal entered (read in-process), -1 if none. */
static int s_wd_state(const char *id)
{
    char err[256];
    journal_reader_t *rd = journal_reader_open(s_env.journal, 1, err, sizeof err);
    if (!rd)
        return -1;
    journal_entry_t e;
    record_t *r = malloc(sizeof *r);
    int state = -1;
    while (r && journal_reader_next(rd, &e) == 1)
        if (record_decode(e.payload, e.len, r, err, sizeof err) == 0 && r->kind == RECORD_WITHDRAWAL &&
            strcmp(r->tx_id, id) == 0)
            state = (int) r->wto;
    free(r);
    journal_reader_destroy(&rd);
    return state;
}

/* 1 once withdrawal id is in state (its name), within timeout. */
static int s_wait_wd(const char *id, const char *state, int timeout_ms)
{
    int want = withdrawal_state_from_name(state);
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        if (s_wd_state(id) == want)
            return 1;
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(100);
    }
}

/* Transfers the Cobo simulator holds to DEST for token amount. */
static int s_transfers(const char *token_amount)
{
    char url[160], needle[200];
    snprintf(url, sizeof url, "%s/sim/deposits", s_env.cobo_url);
    snprintf(needle, sizeof needle, "\"address\":\"%s\",\"amount\":\"%s\"", DEST, token_amount);
    h_resp_t r = h_http("GET", url, NULL);
    int n = 0;
    for (const char *p = r.body; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    h_resp_free(&r);
    return n;
}

/* A withdrawal of amount by login waiting for approval, and its notice (whose title is title): the
 * message id (0 on failure). */
static long long s_waiting(uint64_t login, const char *amount, const char *title, char id[40])
{
    if (s_request(login, amount, id) != 0 || !s_wait_wd(id, "DEBITED", 20000))
        return 0;
    return h_tg_wait(&s_env, id, title, 10000);
}

#define S_WAITS_TR "Onay bekleyen para çekme"
#define S_WAITS_EN "Withdrawal waits for approval"

static void test_every_transition_is_told_and_a_treasurer_approves_once(void)
{
    CHECK(s_ready);
    char id[40], text[4096], markup[200], want[200], data[80], answer[200];
    /* the monitor feed, followed from before the request */
    char out[600], monitor_env[100];
    snprintf(out, sizeof out, "%s/monitor-wd.out", s_env.dir);
    snprintf(monitor_env, sizeof monitor_env, "KASA_MONITOR=tcp://127.0.0.1:%d", s_env.monitor_port);
    char *argv[] = { s_env.kasa_bin, "monitor", "--topic", "WITHDRAWAL", "--count", "200", "--config", s_env.config,
                     NULL };
    char *envv[] = { monitor_env, NULL };
    pid_t mon = h_spawn(argv, out, envv);
    h_sleep_ms(2000);   /* a subscriber misses what was published before it connected */
    long long mid = s_waiting(100001, "50", S_WAITS_TR, id);
    CHECK(mid > 0);
    CHECK(h_tg_wait(&s_env, id, "<b>Para çekme talebi</b>", 5000) > 0);
    CHECK_EQ_INT(h_tg_find(&s_env, id, "Onay bekleyen", text, sizeof text, markup, sizeof markup), mid);
    CHECK(strstr(text, "Hesap: <code>100001</code>") && strstr(text, "Tutar: <b>50.00 USD</b> (ücret: 1 USD)") &&
          strstr(text, "Gönderilecek: <b>49 TRON_USDT</b>") && strstr(text, DEST) && strstr(text, "Onaylar: 0/1"));
    snprintf(want, sizeof want, "approve:w:%s reject:w:%s", id, id);
    CHECK_EQ_STR(markup, want);

    snprintf(data, sizeof data, "approve:w:%s", id);
    CHECK_EQ_INT(h_tg_press(&s_env, U_AYSE, mid, data), 200);
    CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Onaylandı");
    CHECK(h_tg_wait(&s_env, id, "✅ Onaylandı: <b>ayse</b> (Telegram)", 5000) == mid);
    CHECK_EQ_INT(h_tg_find(&s_env, id, "✅ Onaylandı: <b>ayse</b>", NULL, 0, markup, sizeof markup), mid);
    CHECK_EQ_STR(markup, "null null");
    CHECK(s_wait_wd(id, "COMPLETED", 30000));
    CHECK_EQ_INT(s_transfers("49"), 1);
    /* every transition is in the chat, the completed one with its tx hash */
    const char *titles[] = { "<b>Para çekme onaylandı</b>", "<b>Para çekme Cobo'ya gönderildi</b>",
                             "<b>Para çekme tamamlandı</b>" };
    for (int i = 0; i < 3; i++)
        CHECK(h_tg_wait(&s_env, id, titles[i], 10000) > 0);
    CHECK(h_tg_find(&s_env, id, "<b>Para çekme tamamlandı</b>", text, sizeof text, NULL, 0) > 0);
    CHECK(strstr(text, "İşlem hash: <code>") && !strstr(text, "İşlem hash: <code>?"));
    /* the monitor feed carried every transition, in order */
    h_sleep_ms(300);
    h_kill(&mon);
    char *feed = h_read_file(out, NULL);
    static const char *const moves[] = { "REQUESTED ev=REQUEST", "DEBITED ev=DEBIT_OK", "APPROVED ev=APPROVE",
                                         "SENT ev=TRANSFER_SENT", "COMPLETED ev=TRANSFER_DONE" };
    const char *at = feed;
    for (int i = 0; i < 5; i++) {
        char needle[120];
        snprintf(needle, sizeof needle, "WITHDRAWAL tx=%s %s", id, moves[i]);
        at = at ? strstr(at, needle) : NULL;
        if (!at)
            h_log("monitor feed lacks \"%s\" in order", needle);
        CHECK(at != NULL);
    }
    free(feed);
    CHECK_EQ_INT(h_dump_count(&s_env, "ADMIN_ACTION", "origin=telegram:5001"), 1);
    CHECK(h_dump_count(&s_env, "actor=admin:ayse", "Telegram: approve button") >= 1);
    /* a stale client's second press decides nothing again */
    char force[300];
    snprintf(force, sizeof force, "{\"user_id\":%d,\"message_id\":%lld,\"data\":\"%s\",\"force\":true}", U_MEHMET, mid,
             data);
    CHECK_EQ_INT(h_sim_post(s_env.tg_url, "/sim/press", force), 200);
    CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Bu para çekme için karar zaten verilmiş.");
    CHECK_EQ_INT(h_dump_count(&s_env, "ADMIN_ACTION", "origin=telegram:"), 1);
    CHECK_EQ_INT(s_transfers("49"), 1);
}

static void test_unmapped_viewer_and_deposit_approver_are_refused_then_a_reject_refunds(void)
{
    CHECK(s_ready);
    char id[40], data[80], answer[200];
    long long mid = s_waiting(100002, "60", S_WAITS_TR, id);
    CHECK(mid > 0);
    snprintf(data, sizeof data, "approve:w:%s", id);
    uint64_t records = h_journal_records(s_env.journal);
    const int64_t users[3] = { U_NOBODY, U_VELI, U_DENIZ };
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(h_tg_press(&s_env, users[i], mid, data), 200);
        CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
        CHECK_EQ_STR(answer, "Bu işlem için yetkiniz yok.");
    }
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    CHECK(s_wait_wd(id, "DEBITED", 100));

    snprintf(data, sizeof data, "reject:w:%s", id);
    CHECK_EQ_INT(h_tg_press(&s_env, U_MEHMET, mid, data), 200);
    CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Reddedildi");
    CHECK(s_wait_wd(id, "REFUNDED", 20000));
    CHECK(h_tg_wait(&s_env, id, "❌ Reddedildi: <b>mehmet</b> (Telegram)", 5000) == mid);
    CHECK(h_tg_wait(&s_env, id, "<b>Para çekme iade edildi</b>", 10000) > 0);
    CHECK_EQ_INT(h_deals_of(&s_env, 100002, -6000, NULL), 1);   /* one debit */
    CHECK_EQ_INT(h_deals_of(&s_env, 100002, 6000, NULL), 1);    /* one refund */
    CHECK_EQ_INT(s_transfers("59"), 0);
}

static void test_over_the_dual_limit_needs_two_different_treasurers(void)
{
    CHECK(s_ready);
    char id[40], data[80], answer[200], markup[200];
    long long mid = s_waiting(100003, "2000", S_WAITS_TR, id);
    CHECK(mid > 0);
    snprintf(s_two, sizeof s_two, "%s", id);
    s_two_mid = mid;
    snprintf(data, sizeof data, "approve:w:%s", id);
    CHECK_EQ_INT(h_tg_press(&s_env, U_AYSE, mid, data), 200);
    CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Onayınız kaydedildi; ikinci bir onaylayıcı gerekiyor.");
    CHECK(h_tg_wait(&s_env, id, "☑️ Onay 1/2: <b>ayse</b> (Telegram)", 5000) == mid);
    CHECK_EQ_INT(h_tg_find(&s_env, id, "Onaylar: 1/2 (ayse)", NULL, 0, markup, sizeof markup), mid);
    CHECK(strstr(markup, "approve:w:") == markup);
    uint64_t records = h_journal_records(s_env.journal);
    CHECK_EQ_INT(h_tg_press(&s_env, U_AYSE, mid, data), 200);
    CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Bu para çekmeyi zaten onayladınız; başka bir onaylayıcı gerekiyor.");
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    CHECK(s_wait_wd(id, "DEBITED", 100));
    CHECK_EQ_INT(s_transfers("1999"), 0);
}

static void test_restart_applies_no_old_press_twice_and_a_new_one_once(void)
{
    CHECK(s_ready);
    int before = h_dump_count(&s_env, "ADMIN_ACTION", "origin=telegram:");
    int handled = h_log_count(&s_env, "event=chat.press ");
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    CHECK_EQ_INT(h_sim_post(s_env.tg_url, "/sim/redeliver", "{}"), 200);   /* every earlier press again */
    char data[80], answer[200];
    snprintf(data, sizeof data, "approve:w:%s", s_two);
    CHECK_EQ_INT(h_tg_press(&s_env, U_MEHMET, s_two_mid, data), 200);
    CHECK_EQ_INT(h_config_write(&s_env, EXTRA "KASA_NOTICE_LANG=en\n"), 0);
    s_env.keep_ports = 1;
    CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    CHECK(s_wait_wd(s_two, "COMPLETED", 30000));
    CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Approved");
    CHECK(h_tg_wait(&s_env, s_two, "✅ Approved by <b>mehmet</b> (Telegram)", 5000) == s_two_mid);
    CHECK(h_tg_wait(&s_env, s_two, "<b>Withdrawal completed</b>", 10000) > 0);
    h_sleep_ms(1500);   /* a poll or two more: nothing old comes back */
    CHECK_EQ_INT(h_dump_count(&s_env, "ADMIN_ACTION", "origin=telegram:"), before + 1);
    CHECK_EQ_INT(h_log_count(&s_env, "event=chat.press "), handled + 1);
    CHECK_EQ_INT(s_transfers("1999"), 1);
    CHECK_EQ_INT(s_transfers("49"), 1);
    CHECK_EQ_INT(s_transfers("59"), 0);
}

static void test_a_decision_with_the_command_edits_the_notice(void)
{
    CHECK(s_ready);
    char id[40], markup[200];
    long long mid = s_waiting(100004, "70", S_WAITS_EN, id);
    CHECK(mid > 0);
    char *out = NULL;
    /* a deposit approver may not decide a withdrawal at the command line either */
    CHECK(h_kasa_cmd(&s_env, &out, "withdrawal", "reject", id, "--reason", "wrong address", "--actor", "admin:deniz",
                     "--config", s_env.config, NULL) != 0);
    CHECK(out && strstr(out, "may not decide withdrawals"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "withdrawal", "reject", id, "--reason", "wrong address", "--actor",
                            "admin:ayse", "--config", s_env.config, NULL), 0);
    free(out);
    CHECK(h_tg_wait(&s_env, id, "❌ Rejected by <b>ayse</b> (command line).", 10000) == mid);
    CHECK_EQ_INT(h_tg_find(&s_env, id, "Rejected by", NULL, 0, markup, sizeof markup), mid);
    CHECK_EQ_STR(markup, "null null");
    CHECK(s_wait_wd(id, "REFUNDED", 20000));
}

static void test_a_failed_transfer_is_held_with_refund_and_transfer_again(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"transfer_final\":\"Failed\"}"), 200);
    char id[40], data[80], answer[200], text[4096], markup[200], want[200];
    long long mid = s_waiting(100005, "80", S_WAITS_EN, id);
    CHECK(mid > 0);
    snprintf(data, sizeof data, "approve:w:%s", id);
    CHECK_EQ_INT(h_tg_press(&s_env, U_AYSE, mid, data), 200);
    CHECK(s_wait_wd(id, "HELD", 30000));
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"transfer_final\":\"\"}"), 200);
    long long held = h_tg_wait(&s_env, id, "<b>Withdrawal held</b>", 10000);
    CHECK(held > 0);
    CHECK_EQ_INT(h_tg_find(&s_env, id, "<b>Withdrawal held</b>", text, sizeof text, markup, sizeof markup), held);
    CHECK(strstr(text, "Reason: ") && strstr(text, "Failed"));
    snprintf(want, sizeof want, "refund:w:%s retransfer:w:%s", id, id);
    CHECK_EQ_STR(markup, want);
    snprintf(data, sizeof data, "refund:w:%s", id);
    CHECK_EQ_INT(h_tg_press(&s_env, U_MEHMET, held, data), 200);
    CHECK(h_tg_wait_answer(&s_env, answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "It will be refunded");
    CHECK(s_wait_wd(id, "REFUNDED", 20000));
    CHECK(h_tg_wait(&s_env, id, "<b>Withdrawal refunded</b>", 10000) > 0);
    CHECK_EQ_INT(h_deals_of(&s_env, 100005, 8000, NULL), 1);
}

static void test_clean_shutdown(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
}

int main(void)
{
    if (h_env_init(&s_env, "tgwd") == 0 && h_sims_start(&s_env, NULL) == 0 && h_config_write(&s_env, EXTRA) == 0) {
        const char *const admins[4][2] = { { "ayse", "treasurer" }, { "mehmet", "treasurer" }, { "veli", "viewer" },
                                           { "deniz", "approver" } };
        int ok = 1;
        for (int i = 0; i < 4; i++)
            ok &= h_kasa_cmd(&s_env, NULL, "admin", "add", admins[i][0], "--role", admins[i][1], "--config",
                             s_env.config, NULL) == 0;
        s_ready = ok && h_kasa_start(&s_env) == 0;
    }
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_every_transition_is_told_and_a_treasurer_approves_once);
    RUN(test_unmapped_viewer_and_deposit_approver_are_refused_then_a_reject_refunds);
    RUN(test_over_the_dual_limit_needs_two_different_treasurers);
    RUN(test_restart_applies_no_old_press_twice_and_a_new_one_once);
    RUN(test_a_decision_with_the_command_edits_the_notice);
    RUN(test_a_failed_transfer_is_held_with_refund_and_transfer_again);
    RUN(test_clean_shutdown);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
