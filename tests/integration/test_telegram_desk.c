/* test_telegram_desk.c — approvals from the broker's Telegram chat, against a running kasa and the
 * Bot API simulator: a held deposit's notice carries Approve / Reject buttons; a mapped approver's
 * press credits it exactly once in the MT5 simulator, is journaled as the admin with origin
 * telegram:USER_ID, is answered, and the message is edited to say who decided (keyboard removed);
 * an unmapped user's press, a viewer's and a disabled admin's are refused with nothing journaled;
 * a deposit over the second limit needs two different mapped approvers (the same one twice is
 * refused); a reject; presses already handled are not handled again after a restart, and a press
 * made while kasa was down is handled once; notices are Turkish by default, English by
 * KASA_NOTICE_LANG=en. */
#include "tests/integration/harness.h"
#include "tests/check.h"

#define ADDR_A "TTgDeskAddrA1111111111111111111111"   /* linked to 100001 */
#define U_AYSE 5001      /* approver */
#define U_MEHMET 5002    /* approver */
#define U_VELI 5003      /* viewer */
#define U_ESKI 5004      /* approver, disabled */
#define U_NOBODY 9999    /* not in KASA_TELEGRAM_APPROVERS */
#define EXTRA "KASA_AUTO_CREDIT_LIMIT=1000\nKASA_DUAL_APPROVAL_LIMIT=5000\nKASA_TELEGRAM_POLL_S=1\n" \
              "KASA_TELEGRAM_APPROVERS=5001:ayse,5002:mehmet,5003:veli,5004:eski\n"

static h_env_t s_env;
static int s_ready;
static char s_two[40];
static long long s_two_mid;

static long long s_message2(const char *needle, const char *needle2, char *text, size_t tlen, char *markup,
                            size_t mlen)
{
    return h_tg_find(&s_env, needle, needle2, text, tlen, markup, mlen);
}

static long long s_message(const char *needle, char *text, size_t tlen, char *markup, size_t mlen)
{
    return h_tg_find(&s_env, needle, NULL, text, tlen, markup, mlen);
}

#define s_wait_message(n1, n2, ms) h_tg_wait(&s_env, n1, n2, ms)
#define s_press(user, mid, data) h_tg_press(&s_env, user, mid, data)
#define s_wait_answer(buf, len, ms) h_tg_wait_answer(&s_env, buf, len, ms)
#define s_dump_count(n1, n2) h_dump_count(&s_env, n1, n2)
#define s_log_count(needle) h_log_count(&s_env, needle)

/* A deposit of amount to ADDR_A, HELD, and its notice with buttons: its message id (0 on failure). */
static long long s_held(const char *amount, h_tx_t *tx)
{
    *tx = h_completed_tx(ADDR_A, amount, "TRON_USDT");
    if (h_sim_deposit(&s_env, tx, 1, -1, -1) != 0 || h_wait_state(&s_env, tx->tx_id, DEPOSIT_HELD, 20000) != DEPOSIT_HELD)
        return 0;
    return s_wait_message(tx->tx_id, NULL, 10000);
}

static void test_held_notice_is_turkish_with_approve_and_reject(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    long long mid = s_held("1500", &tx);
    CHECK(mid > 0);
    char text[4096], markup[200], want[200];
    CHECK_EQ_INT(s_message(tx.tx_id, text, sizeof text, markup, sizeof markup), mid);
    CHECK(strstr(text, "<b>Onay bekleyen para yatırma</b>") && strstr(text, "Tutar: <b>1500 TRON_USDT</b>") &&
          strstr(text, "otomatik yatırma sınırını aşıyor") && strstr(text, "Onaylar: 0/1"));
    snprintf(want, sizeof want, "approve:d:%s reject:d:%s", tx.tx_id, tx.tx_id);
    CHECK_EQ_STR(markup, want);

    /* a mapped approver presses Approve: credited exactly once, answered, message edited */
    char data[80], answer[200];
    snprintf(data, sizeof data, "approve:d:%s", tx.tx_id);
    CHECK_EQ_INT(s_press(U_AYSE, mid, data), 200);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    CHECK(s_wait_answer(answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Onaylandı");
    CHECK(s_wait_message(tx.tx_id, "✅ Onaylandı: <b>ayse</b> (Telegram)", 5000) == mid);
    CHECK_EQ_INT(s_message("✅ Onaylandı: <b>ayse</b>", text, sizeof text, markup, sizeof markup), mid);
    CHECK_EQ_STR(markup, "null null");   /* the keyboard is gone */
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 149950, NULL), 1);
    /* journaled as the admin, from Telegram, with the button as the reason */
    CHECK_EQ_INT(s_dump_count("ADMIN_ACTION", "origin=telegram:5001"), 1);
    CHECK(s_dump_count("actor=admin:ayse", "Telegram: approve button") >= 1);
    /* the credit notice follows, in Turkish */
    CHECK(s_wait_message(tx.tx_id, "Para yatırma hesaba geçti", 10000) > 0);
    /* a second press on the old message (a stale client) decides nothing again */
    char force[300];
    snprintf(force, sizeof force, "{\"user_id\":%d,\"message_id\":%lld,\"data\":\"%s\",\"force\":true}", U_MEHMET, mid,
             data);
    CHECK_EQ_INT(h_sim_post(s_env.tg_url, "/sim/press", force), 200);
    CHECK(s_wait_answer(answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Bu yatırma için karar zaten verilmiş.");
    h_sleep_ms(300);
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 149950, NULL), 1);
    CHECK_EQ_INT(s_dump_count("ADMIN_ACTION", "origin=telegram:"), 1);
}

static void test_unmapped_viewer_and_disabled_are_refused_then_a_reject(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    long long mid = s_held("2000", &tx);
    CHECK(mid > 0);
    char data[80], answer[200];
    snprintf(data, sizeof data, "approve:d:%s", tx.tx_id);
    uint64_t records = h_journal_records(s_env.journal);
    const int64_t users[3] = { U_NOBODY, U_VELI, U_ESKI };
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(s_press(users[i], mid, data), 200);
        CHECK(s_wait_answer(answer, sizeof answer, 5000) == 0);
        CHECK_EQ_STR(answer, "Bu işlem için yetkiniz yok.");
    }
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_HELD, 100), DEPOSIT_HELD);
    char text[4096];
    CHECK_EQ_INT(s_message(tx.tx_id, text, sizeof text, NULL, 0), mid);
    CHECK(strstr(text, "Onaylandı") == NULL && strstr(text, "Reddedildi") == NULL);

    snprintf(data, sizeof data, "reject:d:%s", tx.tx_id);
    CHECK_EQ_INT(s_press(U_MEHMET, mid, data), 200);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_REJECTED, 10000), DEPOSIT_REJECTED);
    CHECK(s_wait_answer(answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Reddedildi");
    CHECK(s_wait_message(tx.tx_id, "❌ Reddedildi: <b>mehmet</b> (Telegram).", 5000) == mid);
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 199950, NULL), 0);
}

static void test_over_the_second_limit_needs_two_different_approvers(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    long long mid = s_held("6000", &tx);
    CHECK(mid > 0);
    snprintf(s_two, sizeof s_two, "%s", tx.tx_id);
    s_two_mid = mid;
    char data[80], answer[200], text[4096], markup[200];
    snprintf(data, sizeof data, "approve:d:%s", tx.tx_id);
    CHECK_EQ_INT(s_press(U_AYSE, mid, data), 200);
    CHECK(s_wait_answer(answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Onayınız kaydedildi; ikinci bir onaylayıcı gerekiyor.");
    CHECK(s_wait_message(tx.tx_id, "☑️ Onay 1/2: <b>ayse</b> (Telegram)", 5000) == mid);
    CHECK_EQ_INT(s_message2(tx.tx_id, "Onaylar: 1/2 (ayse)", text, sizeof text, markup, sizeof markup), mid);
    CHECK(strstr(markup, "approve:d:") == markup);   /* the buttons stay for the second approver */
    /* the same approver again: refused, nothing journaled, not credited */
    uint64_t records = h_journal_records(s_env.journal);
    CHECK_EQ_INT(s_press(U_AYSE, mid, data), 200);
    CHECK(s_wait_answer(answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Bu yatırmayı zaten onayladınız; başka bir onaylayıcı gerekiyor.");
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_HELD, 100), DEPOSIT_HELD);
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 599950, NULL), 0);
}

static void test_restart_handles_old_presses_never_and_a_new_one_once(void)
{
    CHECK(s_ready);
    int before = s_dump_count("ADMIN_ACTION", "origin=telegram:");
    int handled = s_log_count("event=chat.press ");
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    /* Telegram hands out again whatever was not confirmed: here, every earlier press */
    CHECK_EQ_INT(h_sim_post(s_env.tg_url, "/sim/redeliver", "{}"), 200);
    char path[600];
    snprintf(path, sizeof path, "%s/telegram.offset", s_env.journal);
    char *offset = h_read_file(path, NULL);
    CHECK(offset && atoll(offset) > 700000000);
    free(offset);
    /* the second approver presses while kasa is down; English from now on */
    char data[80], answer[200];
    snprintf(data, sizeof data, "approve:d:%s", s_two);
    CHECK_EQ_INT(s_press(U_MEHMET, s_two_mid, data), 200);
    CHECK_EQ_INT(h_config_write(&s_env, EXTRA "KASA_NOTICE_LANG=en\n"), 0);
    s_env.keep_ports = 1;   /* the Cobo simulator sends its webhooks to the first port */
    CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    CHECK_EQ_INT(h_wait_state(&s_env, s_two, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    CHECK(s_wait_answer(answer, sizeof answer, 5000) == 0);
    CHECK_EQ_STR(answer, "Approved");
    CHECK(s_wait_message(s_two, "✅ Approved by <b>mehmet</b> (Telegram)", 5000) == s_two_mid);
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 599950, NULL), 1);
    h_sleep_ms(1500);   /* a poll or two more: nothing old comes back */
    CHECK_EQ_INT(s_dump_count("ADMIN_ACTION", "origin=telegram:"), before + 1);
    CHECK_EQ_INT(s_log_count("event=chat.press "), handled + 1);   /* the new press alone */
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 149950, NULL), 1);
    CHECK(s_wait_message(s_two, "<b>Deposit credited</b>", 10000) > 0);
    /* a new held deposit's notice is English, with English buttons */
    h_tx_t tx;
    long long mid = s_held("1200", &tx);
    CHECK(mid > 0);
    char text[4096];
    CHECK_EQ_INT(s_message(tx.tx_id, text, sizeof text, NULL, 0), mid);
    CHECK(strstr(text, "<b>Deposit waits for approval</b>") && strstr(text, "Reason: over the auto-credit limit"));
    char *all = h_tg_messages(&s_env);
    CHECK(all && strstr(all, "\"text\":\"✅ Approve\""));
    free(all);
}

static void test_decision_at_another_door_edits_the_notice(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    long long mid = s_held("1300", &tx);
    CHECK(mid > 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "reject", tx.tx_id, "--reason", "wrong sender", "--actor",
                            "admin:ayse", "--config", s_env.config, NULL), 0);
    free(out);
    CHECK(s_wait_message(tx.tx_id, "❌ Rejected by <b>ayse</b> (command line).", 10000) == mid);
    char markup[200];
    CHECK_EQ_INT(s_message2(tx.tx_id, "Rejected by", NULL, 0, markup, sizeof markup), mid);
    CHECK_EQ_STR(markup, "null null");
}

static void test_clean_shutdown(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
}

int main(void)
{
    if (h_env_init(&s_env, "tgdesk") == 0 && h_sims_start(&s_env, NULL) == 0 && h_config_write(&s_env, EXTRA) == 0) {
        const char *const admins[4][2] = { { "ayse", "approver" }, { "mehmet", "approver" }, { "veli", "viewer" },
                                           { "eski", "approver" } };
        int ok = 1;
        for (int i = 0; i < 4; i++)
            ok &= h_kasa_cmd(&s_env, NULL, "admin", "add", admins[i][0], "--role", admins[i][1], "--config",
                             s_env.config, NULL) == 0;
        ok &= h_kasa_cmd(&s_env, NULL, "admin", "disable", "eski", "--config", s_env.config, NULL) == 0;
        s_ready = ok && h_kasa_start(&s_env) == 0 && h_link(&s_env, ADDR_A, 100001) == 0;
    }
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_held_notice_is_turkish_with_approve_and_reject);
    RUN(test_unmapped_viewer_and_disabled_are_refused_then_a_reject);
    RUN(test_over_the_second_limit_needs_two_different_approvers);
    RUN(test_restart_handles_old_presses_never_and_a_new_one_once);
    RUN(test_decision_at_another_door_edits_the_notice);
    RUN(test_clean_shutdown);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
