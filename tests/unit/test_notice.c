/* test_notice.c — the chat's texts: Turkish by default and English by KASA_NOTICE_LANG, for a
 * credit, a held deposit (with its reason in words, the approvals it waits for, and what was
 * decided), an alert, an admin lockout; every value HTML-escaped and every text one Telegram
 * parses (sent through the Bot API simulator with parse_mode HTML); callback_data within 64 bytes
 * for any transaction id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/chat.h"
#include "actors/notice.h"
#include "actors/stage.h"
#include "actors/telegram.h"
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
    telegram_destroy(&s_tg);
    sim_telegram_stop(&sim);
    return check_done();
}
