/* test_notice.c — the chat's texts: Turkish by default and English by KASA_NOTICE_LANG, for a
 * credit, a held deposit (with its reason in words, the approvals it waits for, and what was
 * decided), an alert, an admin lockout; every value HTML-escaped and every text one Telegram
 * parses (sent through the Bot API simulator with parse_mode HTML); callback_data within 64 bytes
 * for any transaction id; a withdrawal's notice for every state it enters, its decisions, answers
 * and buttons. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/chat.h"
#include "actors/notice.h"
#include "actors/stage.h"
#include "actors/telegram.h"
#include "actors/wdchat.h"
#include "tests/check.h"
#include "tools/sim/sim_telegram.h"

#define TOKEN "42:notice-test"

static telegram_t *s_tg;

/* 1 if Telegram (the simulator) accepts text as HTML. */
static int s_parses(const char *text)
{
    char err[200] = "";
    telegram_result_t rc = telegram_send(s_tg, "-100", text, err, sizeof err);
    if (rc != TELEGRAM_OK)
        fprintf(stderr, "  refused: %s\n  text: %s\n", err, text);
    return rc == TELEGRAM_OK;
}

static registry_entry_t s_held(const char *reason, uint64_t login)
{
    registry_entry_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.view.tx_id, sizeof e.view.tx_id, "tx-<1>&");
    snprintf(e.view.amount, sizeof e.view.amount, "6000");
    snprintf(e.view.token_id, sizeof e.view.token_id, "TRON_USDT");
    snprintf(e.view.address, sizeof e.view.address, "TAddr\"x\"");
    snprintf(e.view.reason, sizeof e.view.reason, "%s", reason);
    e.view.login = login;
    e.view.state = DEPOSIT_HELD;
    return e;
}

static void test_language_is_turkish_unless_en(void)
{
    CHECK_EQ_INT(notice_lang(NULL), NOTICE_TR);
    CHECK_EQ_INT(notice_lang(""), NOTICE_TR);
    CHECK_EQ_INT(notice_lang("tr"), NOTICE_TR);
    CHECK_EQ_INT(notice_lang("en"), NOTICE_EN);
}

static void test_credited_in_both_languages(void)
{
    deposit_view_t d;
    memset(&d, 0, sizeof d);
    snprintf(d.tx_id, sizeof d.tx_id, "tx-9");
    snprintf(d.amount, sizeof d.amount, "250");
    snprintf(d.token_id, sizeof d.token_id, "TRON_USDT");
    snprintf(d.currency, sizeof d.currency, "USD");
    d.login = 100001, d.credit_minor = 24950, d.digits = 2, d.ticket = 77;
    char *tr = notice_credited(&d, NOTICE_TR), *en = notice_credited(&d, NOTICE_EN);
    CHECK(strstr(tr, "<b>Para yatırma hesaba geçti</b>") && strstr(tr, "Geçen tutar: <b>249.50 USD</b>") &&
          strstr(tr, "Alınan: 250 TRON_USDT") && strstr(tr, "İşlem: <code>tx-9</code>") &&
          strstr(tr, "MT5 işlem no: <code>77</code>") && strstr(tr, "Hesap: <code>100001</code>"));
    CHECK(strstr(en, "<b>Deposit credited</b>") && strstr(en, "Credited: <b>249.50 USD</b>") &&
          strstr(en, "MT5 deal: <code>77</code>"));
    CHECK(s_parses(tr) && s_parses(en));
    free(tr);
    free(en);
}

static void test_held_says_why_and_what_it_waits_for(void)
{
    registry_entry_t e = s_held("over the dual-approval limit of 5000: waits for two approvers", 100001);
    char *tr = notice_held(&e, 2, NULL, NOTICE_TR), *en = notice_held(&e, 2, NULL, NOTICE_EN);
    CHECK(strstr(tr, "<b>Onay bekleyen para yatırma</b>") && strstr(tr, "Tutar: <b>6000 TRON_USDT</b>") &&
          strstr(tr, "çift onay sınırını aşıyor; iki farklı onaylayıcı bekliyor. Sınır: 5000") &&
          strstr(tr, "Onaylar: 0/2") && strstr(tr, "tx-&lt;1&gt;&amp;") && strstr(tr, "TAddr&quot;x&quot;"));
    CHECK(strstr(en, "<b>Deposit waits for approval</b>") &&
          strstr(en, "Reason: over the dual-approval limit of 5000: waits for two approvers") &&
          strstr(en, "Approvals: 0/2"));
    CHECK(s_parses(tr) && s_parses(en));
    free(tr);
    free(en);
    /* one approval in, the decision line at the end */
    e.approvals = 1;
    snprintf(e.approvers[0], sizeof e.approvers[0], "admin:ayşe");
    char line[400];
    notice_decision(DESK_APPROVE, 1, 1, 2, "admin:ayşe", "telegram:5551", NOTICE_TR, line, sizeof line);
    CHECK_EQ_STR(line, "☑️ Onay 1/2: <b>ayşe</b> (Telegram). İkinci bir onaylayıcı bekleniyor.");
    tr = notice_held(&e, 2, line, NOTICE_TR);
    CHECK(strstr(tr, "Onaylar: 1/2 (ayşe)") && strstr(tr, "\n\n☑️ Onay 1/2"));
    CHECK(s_parses(tr));
    free(tr);
    /* an unlinked address: the login is unknown, the reason in Turkish words */
    e = s_held("address not linked to any account", 0);
    tr = notice_held(&e, 0, NULL, NOTICE_TR);
    CHECK(strstr(tr, "<b>Para yatırma bekletiliyor</b>") && strstr(tr, "Hesap: bilinmiyor") &&
          strstr(tr, "Neden: adres hiçbir hesaba bağlı değil") && !strstr(tr, "Onaylar"));
    free(tr);
    /* a reason kasa has no words for is shown as it is, escaped */
    e = s_held("MT5 user_get transient: <timeout>", 100002);
    en = notice_held(&e, 0, NULL, NOTICE_EN);
    CHECK(strstr(en, "Reason: MT5 user_get transient: &lt;timeout&gt;") && strstr(en, "Account: <code>100002</code>"));
    CHECK(s_parses(en));
    free(en);
}

static void test_decisions_name_who_and_where(void)
{
    char line[400];
    notice_decision(DESK_APPROVE, 0, 1, 1, "admin:mehmet", "ip:203.0.113.7", NOTICE_TR, line, sizeof line);
    CHECK_EQ_STR(line, "✅ Onaylandı: <b>mehmet</b> (yönetim paneli). Hesaba geçirilecek.");
    notice_decision(DESK_REJECT, 0, 0, 1, "admin:mehmet", "telegram:77", NOTICE_EN, line, sizeof line);
    CHECK_EQ_STR(line, "❌ Rejected by <b>mehmet</b> (Telegram).");
    notice_decision(DESK_RETRY, 0, 0, 0, "cli:root", "cli:host pts/1", NOTICE_TR, line, sizeof line);
    CHECK_EQ_STR(line, "🔁 Yeniden denendi: <b>cli:root</b> (komut satırı).");
    notice_decision(DESK_REJECT, 0, 0, 0, "admin:<x>", NULL, NOTICE_TR, line, sizeof line);
    CHECK_EQ_STR(line, "❌ Reddedildi: <b>&lt;x&gt;</b>.");
    CHECK_EQ_STR(notice_button(DESK_APPROVE, NOTICE_TR), "✅ Onayla");
    CHECK_EQ_STR(notice_button(DESK_REJECT, NOTICE_EN), "❌ Reject");
    char a[200];
    notice_answer(NOTICE_ANSWER_NOT_ALLOWED, DESK_APPROVE, NULL, NOTICE_TR, a, sizeof a);
    CHECK_EQ_STR(a, "Bu işlem için yetkiniz yok.");
    notice_answer(NOTICE_ANSWER_DECIDED, DESK_APPROVE, NULL, NOTICE_EN, a, sizeof a);
    CHECK_EQ_STR(a, "This deposit is already decided.");
    notice_answer(NOTICE_ANSWER_DONE, DESK_REJECT, NULL, NOTICE_TR, a, sizeof a);
    CHECK_EQ_STR(a, "Reddedildi");
}

static void test_alert_and_lockout_in_both_languages(void)
{
    record_t a;
    record_init(&a, RECORD_ALERT);
    snprintf(a.tx_id, sizeof a.tx_id, "tx-5");
    snprintf(a.alert, sizeof a.alert, "double_credit");
    snprintf(a.reason, sizeof a.reason, "two deals carry ref <k>");
    a.login = 100003, a.ticket = 11, a.ticket2 = 12;
    char *tr = notice_alert(&a, NOTICE_TR), *en = notice_alert(&a, NOTICE_EN);
    CHECK(strstr(tr, "⚠️ Uyarı: Aynı yatırma iki kez hesaba geçmiş olabilir") &&
          strstr(tr, "MT5 işlem no: <code>11</code>, <code>12</code>") && strstr(tr, "ref &lt;k&gt;") &&
          strstr(tr, "Bir yöneticinin bakması gerekiyor."));
    CHECK(strstr(en, "⚠️ Alert: The deposit may have been credited twice") && strstr(en, "Code: <code>double_credit</code>"));
    CHECK(s_parses(tr) && s_parses(en));
    free(tr);
    free(en);
    tr = notice_lockout("vera", "203.0.113.9", 900, NOTICE_TR);
    en = notice_lockout("vera", NULL, 60, NOTICE_EN);
    CHECK(strstr(tr, "<b>Yönetici girişi kilitlendi</b>") && strstr(tr, "15 dakika sonra yeniden denenebilir"));
    CHECK(strstr(en, "<b>Admin login locked</b>") && strstr(en, "IP: <code>?</code>") && strstr(en, "in 1 minutes"));
    CHECK(s_parses(tr) && s_parses(en));
    free(tr);
    free(en);
}

static void test_button_data_fits_any_transaction_id(void)
{
    char buf[TELEGRAM_MAX_DATA + 1];
    chat_button_data("approve", "d", "0b9c6a52-1f55-4d1c-9a43-2f0a9f1e7a11", buf, sizeof buf);
    CHECK_EQ_STR(buf, "approve:d:0b9c6a52-1f55-4d1c-9a43-2f0a9f1e7a11");
    char longid[80];
    memset(longid, 'z', 79);
    longid[79] = '\0';
    chat_button_data("reject", "d", longid, buf, sizeof buf);
    char want[64];
    snprintf(want, sizeof want, "reject:d:#%016llx", (unsigned long long) stage_tx_hash(longid));
    CHECK_EQ_STR(buf, want);
    CHECK(strlen(buf) <= TELEGRAM_MAX_DATA);
    chat_reply_t r;
    memset(&r, 0, sizeof r);
    chat_deposit_buttons("tx-1", 1, "tr", &r);
    CHECK_EQ_INT(r.nbuttons, 2);
    CHECK_EQ_STR(r.buttons[0].data, "approve:d:tx-1");
    CHECK_EQ_STR(r.buttons[0].text, "✅ Onayla");
    CHECK_EQ_STR(r.buttons[1].data, "reject:d:tx-1");
    chat_deposit_buttons("tx-1", 0, "en", &r);
    CHECK_EQ_STR(r.buttons[0].data, "retry:d:tx-1");
    CHECK_EQ_STR(r.buttons[0].text, "🔁 Retry");
}

static withdrawal_view_t s_wd(void)
{
    withdrawal_view_t w;
    memset(&w, 0, sizeof w);
    snprintf(w.id, sizeof w.id, "w0123456789abcdef0123");
    w.login = 100004;
    w.amount_minor = 200000;
    w.digits = 2;
    snprintf(w.currency, sizeof w.currency, "USD");
    snprintf(w.fee, sizeof w.fee, "1");
    snprintf(w.amount, sizeof w.amount, "1999");
    snprintf(w.token_id, sizeof w.token_id, "TRON_USDT");
    snprintf(w.address, sizeof w.address, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t");
    w.debit_ticket = 77;
    return w;
}

/* Every state a withdrawal enters has its own title in both languages, and every text parses. */
static void test_every_withdrawal_state_is_told_in_both_languages(void)
{
    static const struct {
        withdrawal_state_t state;
        int needed;
        const char *tr, *en;
    } cases[] = {
        { WITHDRAWAL_REQUESTED, 0, "<b>Para çekme talebi</b>", "<b>Withdrawal requested</b>" },
        { WITHDRAWAL_DEBITED, 0, "<b>Para çekme hesaptan düşüldü</b>", "<b>Withdrawal debited</b>" },
        { WITHDRAWAL_DEBITED, 2, "<b>Onay bekleyen para çekme</b>", "<b>Withdrawal waits for approval</b>" },
        { WITHDRAWAL_APPROVED, 1, "<b>Para çekme onaylandı</b>", "<b>Withdrawal approved</b>" },
        { WITHDRAWAL_SENT, 1, "<b>Para çekme Cobo'ya gönderildi</b>", "<b>Withdrawal sent to Cobo</b>" },
        { WITHDRAWAL_COMPLETED, 1, "<b>Para çekme tamamlandı</b>", "<b>Withdrawal completed</b>" },
        { WITHDRAWAL_HELD, 1, "<b>Para çekme bekletiliyor</b>", "<b>Withdrawal held</b>" },
        { WITHDRAWAL_REJECTED, 0, "<b>Para çekme reddedildi</b>", "<b>Withdrawal rejected</b>" },
        { WITHDRAWAL_REFUNDING, 1, "<b>Para çekme iade ediliyor</b>", "<b>Withdrawal being refunded</b>" },
        { WITHDRAWAL_REFUNDED, 1, "<b>Para çekme iade edildi</b>", "<b>Withdrawal refunded</b>" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        withdrawal_view_t w = s_wd();
        snprintf(w.request_id, sizeof w.request_id, "kasa-%s-1", w.id);
        snprintf(w.tx_hash, sizeof w.tx_hash, "0xabc<1>");
        snprintf(w.reason, sizeof w.reason, "Cobo says Failed for <r>");
        char *tr = notice_withdrawal(&w, cases[i].state, cases[i].needed, NULL, NOTICE_TR);
        char *en = notice_withdrawal(&w, cases[i].state, cases[i].needed, NULL, NOTICE_EN);
        CHECK(strstr(tr, cases[i].tr) && strstr(en, cases[i].en));
        CHECK(strstr(tr, "Hesap: <code>100004</code>") && strstr(tr, "Tutar: <b>2000.00 USD</b> (ücret: 1 USD)") &&
              strstr(tr, "Gönderilecek: <b>1999 TRON_USDT</b>") && strstr(en, "To send: <b>1999 TRON_USDT</b>"));
        CHECK(s_parses(tr) && s_parses(en));
        free(tr);
        free(en);
    }
}

static void test_withdrawal_notices_carry_hash_reason_approvals_and_decision(void)
{
    withdrawal_view_t w = s_wd();
    snprintf(w.request_id, sizeof w.request_id, "kasa-%s-1", w.id);
    snprintf(w.tx_hash, sizeof w.tx_hash, "0xfeed");
    char *en = notice_withdrawal(&w, WITHDRAWAL_COMPLETED, 1, NULL, NOTICE_EN);
    CHECK(strstr(en, "Tx hash: <code>0xfeed</code>") && strstr(en, "Cobo request_id: <code>kasa-w0123"));
    free(en);
    snprintf(w.reason, sizeof w.reason, "Cobo says Failed for kasa-x-1 <now>");
    char *tr = notice_withdrawal(&w, WITHDRAWAL_HELD, 1, NULL, NOTICE_TR);
    CHECK(strstr(tr, "Neden: Cobo says Failed for kasa-x-1 &lt;now&gt;") && strstr(tr, "yeniden göndermesi"));
    free(tr);
    w.approvals = 1;
    snprintf(w.approvers[0], sizeof w.approvers[0], "admin:ayse");
    char line[400];
    notice_withdrawal_decision("approve", 1, 1, 2, "admin:ayse", "telegram:5001", NOTICE_TR, line, sizeof line);
    CHECK_EQ_STR(line, "☑️ Onay 1/2: <b>ayse</b> (Telegram). İkinci bir onaylayıcı bekleniyor.");
    tr = notice_withdrawal(&w, WITHDRAWAL_DEBITED, 2, line, NOTICE_TR);
    CHECK(strstr(tr, "Onaylar: 1/2 (ayse)") && strstr(tr, "\n\n☑️ Onay 1/2"));
    CHECK(s_parses(tr));
    free(tr);
    notice_withdrawal_decision("reject", 0, 0, 1, "admin:mehmet", "ip:203.0.113.7", NOTICE_EN, line, sizeof line);
    CHECK_EQ_STR(line, "❌ Rejected by <b>mehmet</b> (admin panel). The amount will be refunded.");
    notice_withdrawal_decision("retransfer", 0, 0, 1, "cli:root", "cli:h pts/1", NOTICE_TR, line, sizeof line);
    CHECK_EQ_STR(line, "🔁 Yeniden gönderildi: <b>cli:root</b> (komut satırı).");
    CHECK_EQ_STR(notice_withdrawal_button("refund", NOTICE_EN), "↩️ Refund");
    CHECK_EQ_STR(notice_withdrawal_button("retransfer", NOTICE_TR), "🔁 Yeniden gönder");
    char a[200];
    notice_withdrawal_answer(NOTICE_ANSWER_SAME_ADMIN, "approve", NULL, NOTICE_EN, a, sizeof a);
    CHECK_EQ_STR(a, "You approved this withdrawal already; another approver is needed.");
    notice_withdrawal_answer(NOTICE_ANSWER_NOT_ALLOWED, "approve", NULL, NOTICE_TR, a, sizeof a);
    CHECK_EQ_STR(a, "Bu işlem için yetkiniz yok.");
    notice_withdrawal_answer(NOTICE_ANSWER_DONE, "refund", NULL, NOTICE_TR, a, sizeof a);
    CHECK_EQ_STR(a, "İade edilecek");
}

static void test_withdrawal_buttons_by_state(void)
{
    chat_reply_t r;
    memset(&r, 0, sizeof r);
    wdchat_buttons("w0123456789abcdef0123", WITHDRAWAL_DEBITED, 1, "tr", &r);
    CHECK_EQ_INT(r.nbuttons, 2);
    CHECK_EQ_STR(r.buttons[0].data, "approve:w:w0123456789abcdef0123");
    CHECK_EQ_STR(r.buttons[1].data, "reject:w:w0123456789abcdef0123");
    CHECK_EQ_STR(r.buttons[0].text, "✅ Onayla");
    wdchat_buttons("w0123456789abcdef0123", WITHDRAWAL_HELD, 0, "en", &r);
    CHECK_EQ_INT(r.nbuttons, 2);
    CHECK_EQ_STR(r.buttons[0].data, "refund:w:w0123456789abcdef0123");
    CHECK_EQ_STR(r.buttons[1].data, "retransfer:w:w0123456789abcdef0123");
    CHECK_EQ_STR(r.buttons[1].text, "🔁 Transfer again");
    wdchat_buttons("w0123456789abcdef0123", WITHDRAWAL_DEBITED, 0, "en", &r);   /* approved already */
    CHECK_EQ_INT(r.nbuttons, 0);
    wdchat_buttons("w0123456789abcdef0123", WITHDRAWAL_SENT, 0, "en", &r);
    CHECK_EQ_INT(r.nbuttons, 0);
}

int main(void)
{
    setenv("KASA_LOG_LEVEL", "error", 0);
    char err[200];
    char *argv[] = { "telegram", "--listen", "127.0.0.1:0", "--token", TOKEN };
    sim_telegram_t *sim = sim_telegram_start(5, argv, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "sim: %s\n", err);
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sim_telegram_port(sim));
    s_tg = telegram_new(url, TOKEN, 3000);
    RUN(test_language_is_turkish_unless_en);
    RUN(test_credited_in_both_languages);
    RUN(test_held_says_why_and_what_it_waits_for);
    RUN(test_decisions_name_who_and_where);
    RUN(test_alert_and_lockout_in_both_languages);
    RUN(test_button_data_fits_any_transaction_id);
    RUN(test_every_withdrawal_state_is_told_in_both_languages);
    RUN(test_withdrawal_notices_carry_hash_reason_approvals_and_decision);
    RUN(test_withdrawal_buttons_by_state);
    telegram_destroy(&s_tg);
    sim_telegram_stop(&sim);
    return check_done();
}
