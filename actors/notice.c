/* notice.c — see notice.h. Each text exists once per language, side by side, so a change to one
 * is seen next to the other. */
#include "actors/notice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/mt5.h"
#include "actors/telegram.h"
#include "schema/json.h"

#define S_TR(lang, tr, en) ((lang) == NOTICE_EN ? (en) : (tr))

notice_lang_t notice_lang(const char *name)
{
    return name && strcmp(name, "en") == 0 ? NOTICE_EN : NOTICE_TR;
}

char *notice_credited(const deposit_view_t *d, notice_lang_t lang)
{
    char credited[64] = "?", login[24], ticket[24];
    if (mt5_format_amount(d->credit_minor, d->digits, credited, sizeof credited) != 0)
        snprintf(credited, sizeof credited, "%lld minor units", (long long) d->credit_minor);
    if (d->currency[0]) {   /* "25000.56 USC": a cent account's figure is never read as dollars */
        size_t n = strlen(credited);
        snprintf(credited + n, sizeof credited - n, " %.15s", d->currency);
    }
    snprintf(login, sizeof login, "%llu", (unsigned long long) d->login);
    snprintf(ticket, sizeof ticket, "%llu", (unsigned long long) d->ticket);
    char *amount = telegram_escape_html(d->amount);
    char *token = telegram_escape_html(d->token_id);
    char *tx = telegram_escape_html(d->tx_id);
    char *cred = telegram_escape_html(credited);
    jbuf_t b;
    jbuf_init(&b);
    if (lang == NOTICE_EN)
        jbuf_printf(&b,
                    "<b>Deposit credited</b>\n"
                    "Account: <code>%s</code>\n"
                    "Credited: <b>%s</b>\n"
                    "Received: %s %s\n"
                    "Transaction: <code>%s</code>\n"
                    "MT5 deal: <code>%s</code>",
                    login, cred, amount, token, tx, ticket);
    else
        jbuf_printf(&b,
                    "<b>Para yatırma hesaba geçti</b>\n"
                    "Hesap: <code>%s</code>\n"
                    "Geçen tutar: <b>%s</b>\n"
                    "Alınan: %s %s\n"
                    "İşlem: <code>%s</code>\n"
                    "MT5 işlem no: <code>%s</code>",
                    login, cred, amount, token, tx, ticket);
    free(amount);
    free(token);
    free(tx);
    free(cred);
    return jbuf_take(&b);
}

/* The locker's reasons kasa knows, in Turkish (the rest of the sentence, escaped, follows). */
static const struct {
    const char *en;  /* the reason starts with this */
    const char *tr;
} s_reasons[] = {
    { "address not linked to any account", "adres hiçbir hesaba bağlı değil" },
    { "over the auto-credit limit of ", "otomatik yatırma sınırını aşıyor; bir onaylayıcı bekliyor. Sınır: " },
    { "over the dual-approval limit of ", "çift onay sınırını aşıyor; iki farklı onaylayıcı bekliyor. Sınır: " },
    { "below minimum: ", "en düşük tutarın altında: " },
    { "MT5 does not accept login ", "MT5 bu hesabı kabul etmiyor: " },
    { "token ", "kabul edilmeyen token: " },
    { "no rule for ", "bu hesap para birimi için kural yok: " },
    { "Cobo does not know this transaction", "Cobo bu işlemi tanımıyor" },
};

/* The reason in the language's words, escaped; the caller frees. */
static char *s_reason(const char *reason, notice_lang_t lang)
{
    if (lang == NOTICE_EN || !reason)
        return telegram_escape_html(reason);
    for (size_t i = 0; i < sizeof s_reasons / sizeof s_reasons[0]; i++) {
        size_t n = strlen(s_reasons[i].en);
        if (strncmp(reason, s_reasons[i].en, n) != 0)
            continue;
        const char *rest = reason + n;
        char tail[160] = "";
        if (strncmp(s_reasons[i].en, "over the", 8) == 0)
            snprintf(tail, sizeof tail, "%.*s", (int) strcspn(rest, ":"), rest);   /* the limit alone */
        else if (strncmp(s_reasons[i].en, "token ", 6) == 0)
            snprintf(tail, sizeof tail, "%.*s", (int) strcspn(rest, " "), rest);
        else
            snprintf(tail, sizeof tail, "%s", rest);
        char *t = telegram_escape_html(tail);
        jbuf_t b;
        jbuf_init(&b);
        jbuf_printf(&b, "%s%s", s_reasons[i].tr, t);
        free(t);
        return jbuf_take(&b);
    }
    return telegram_escape_html(reason);
}

/* "\nOnaylar: 1/2 (ayse)": the approvals had of needed and by whom (names without "admin:"). */
static void s_approvals(jbuf_t *b, notice_lang_t lang, uint32_t approvals, int needed, const char (*approvers)[64],
                        uint32_t max)
{
    jbuf_printf(b, "\n%s: %u/%d", S_TR(lang, "Onaylar", "Approvals"), (unsigned) approvals, needed);
    for (uint32_t i = 0; i < approvals && i < max; i++) {
        const char *n = strncmp(approvers[i], "admin:", 6) == 0 ? approvers[i] + 6 : approvers[i];
        char *esc = telegram_escape_html(n);
        jbuf_printf(b, "%s%s", i ? ", " : " (", esc);
        free(esc);
    }
    if (approvals)
        jbuf_puts(b, ")");
}

char *notice_held(const registry_entry_t *e, int needed, const char *decision, notice_lang_t lang)
{
    const deposit_view_t *d = &e->view;
    char *amount = telegram_escape_html(d->amount);
    char *token = telegram_escape_html(d->token_id);
    char *tx = telegram_escape_html(d->tx_id);
    char *address = telegram_escape_html(d->address);
    char *reason = s_reason(d->reason, lang);
    char login[48];
    if (d->login)
        snprintf(login, sizeof login, "<code>%llu</code>", (unsigned long long) d->login);
    else
        snprintf(login, sizeof login, "%s", S_TR(lang, "bilinmiyor", "unknown"));
    int waiting = needed > 0 && e->approvals < (uint32_t) needed;
    jbuf_t b;
    jbuf_init(&b);
    if (waiting)
        jbuf_printf(&b, "<b>%s</b>\n", S_TR(lang, "Onay bekleyen para yatırma", "Deposit waits for approval"));
    else
        jbuf_printf(&b, "<b>%s</b>\n", S_TR(lang, "Para yatırma bekletiliyor", "Deposit held"));
    jbuf_printf(&b, "%s: <b>%s %s</b>\n", S_TR(lang, "Tutar", "Amount"), amount, token);
    jbuf_printf(&b, "%s: %s\n", S_TR(lang, "Hesap", "Account"), login);
    jbuf_printf(&b, "%s: <code>%s</code>\n", S_TR(lang, "Adres", "Address"), address);
    jbuf_printf(&b, "%s: <code>%s</code>\n", S_TR(lang, "İşlem", "Transaction"), tx);
    jbuf_printf(&b, "%s: %s", S_TR(lang, "Neden", "Reason"), reason);
    if (needed > 0)
        s_approvals(&b, lang, e->approvals, needed, e->approvers, DESK_MAX_APPROVERS);
    if (decision && *decision)
        jbuf_printf(&b, "\n\n%s", decision);
    free(amount);
    free(token);
    free(tx);
    free(address);
    free(reason);
    return jbuf_take(&b);
}

static const struct {
    const char *name, *tr, *en;
} s_alerts[] = {
    { "double_credit", "Aynı yatırma iki kez hesaba geçmiş olabilir", "The deposit may have been credited twice" },
    { "credit_after_hold", "Bekletilen yatırma yine de hesaba geçmiş", "A held deposit was credited after all" },
    { "credit_not_recorded", "MT5'te kaydı olmayan bir yatırma işlemi", "A credit MT5 has no record of" },
    { "deal_mismatch", "MT5 işlemi yatırmayla uyuşmuyor", "The MT5 deal does not match the deposit" },
    { "failed_after_credit", "Hesaba geçen yatırma için Cobo başarısız diyor", "Cobo reports a credited deposit failed" },
    { "completed_after_rejected", "Reddedilen yatırma için Cobo tamamlandı diyor",
      "Cobo reports a rejected deposit completed" },
    { "transfer_failed", "Cobo para çekme transferini başarısız saydı ya da reddetti",
      "Cobo failed or refused a withdrawal's transfer" },
    { "transfer_after_refund", "İade edilen para çekmenin transferi Cobo'da tamamlanmış",
      "Cobo completed the transfer of a refunded withdrawal" },
    { "double_debit", "Bir para çekme için iki MT5 işlemi var", "Two MT5 deals carry one withdrawal's reference" },
};

char *notice_alert(const record_t *a, notice_lang_t lang)
{
    const char *title = NULL;
    for (size_t i = 0; i < sizeof s_alerts / sizeof s_alerts[0]; i++)
        if (strcmp(a->alert, s_alerts[i].name) == 0)
            title = S_TR(lang, s_alerts[i].tr, s_alerts[i].en);
    char *name = telegram_escape_html(a->alert);
    char *tx = telegram_escape_html(a->tx_id);
    char *reason = telegram_escape_html(a->reason);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "<b>⚠️ %s: %s</b>\n", S_TR(lang, "Uyarı", "Alert"), title ? title : name);
    jbuf_printf(&b, "%s: <code>%s</code>\n", S_TR(lang, "İşlem", "Transaction"), tx);
    if (a->login)
        jbuf_printf(&b, "%s: <code>%llu</code>\n", S_TR(lang, "Hesap", "Account"), (unsigned long long) a->login);
    if (a->ticket)
        jbuf_printf(&b, "%s: <code>%llu</code>%s", S_TR(lang, "MT5 işlem no", "MT5 deal"),
                    (unsigned long long) a->ticket, a->ticket2 ? "" : "\n");
    if (a->ticket && a->ticket2)
        jbuf_printf(&b, ", <code>%llu</code>\n", (unsigned long long) a->ticket2);
    jbuf_printf(&b, "%s: %s\n%s: <code>%s</code>", S_TR(lang, "Açıklama", "Details"), reason,
                S_TR(lang, "Kod", "Code"), name);
    jbuf_printf(&b, "\n%s", S_TR(lang, "Bir yöneticinin bakması gerekiyor.", "A person must look at it."));
    free(name);
    free(tx);
    free(reason);
    return jbuf_take(&b);
}

char *notice_lockout(const char *name, const char *ip, long long wait_s, notice_lang_t lang)
{
    char *n = telegram_escape_html(name), *i = telegram_escape_html(ip ? ip : "?");
    jbuf_t b;
    jbuf_init(&b);
    if (lang == NOTICE_EN)
        jbuf_printf(&b,
                    "<b>Admin login locked</b>\nUser: <code>%s</code>\nIP: <code>%s</code>\n"
                    "Too many failed attempts; logins may be tried again in %lld minutes.",
                    n, i, (wait_s + 59) / 60);
    else
        jbuf_printf(&b,
                    "<b>Yönetici girişi kilitlendi</b>\nKullanıcı: <code>%s</code>\nIP: <code>%s</code>\n"
                    "Çok fazla hatalı deneme; %lld dakika sonra yeniden denenebilir.",
                    n, i, (wait_s + 59) / 60);
    free(n);
    free(i);
    return jbuf_take(&b);
}

/* "Telegram", "panel", "komut satırı" for an origin. */
static const char *s_door(const char *origin, notice_lang_t lang)
{
    if (origin && strncmp(origin, "telegram:", 9) == 0)
        return "Telegram";
    if (origin && strncmp(origin, "ip:", 3) == 0)
        return S_TR(lang, "yönetim paneli", "admin panel");
    if (origin && strncmp(origin, "cli:", 4) == 0)
        return S_TR(lang, "komut satırı", "command line");
    return NULL;
}

/* Who decided (an actor without its "admin:" prefix, escaped; the caller frees) and " (door)" for
 * origin into via ("" for a door kasa has no word for). */
static char *s_who_via(const char *actor, const char *origin, notice_lang_t lang, char *via, size_t vialen)
{
    const char *who = actor && strncmp(actor, "admin:", 6) == 0 ? actor + 6 : actor ? actor : "?";
    const char *door = s_door(origin, lang);
    snprintf(via, vialen, "%s%s%s", door ? " (" : "", door ? door : "", door ? ")" : "");
    return telegram_escape_html(who);
}

void notice_decision(desk_action_t action, int noted, int approvals, int needed, const char *actor,
                     const char *origin, notice_lang_t lang, char *buf, size_t len)
{
    char via[64];
    char *w = s_who_via(actor, origin, lang, via, sizeof via);
    switch (action) {
    case DESK_APPROVE:
        if (noted)
            snprintf(buf, len, S_TR(lang, "☑️ Onay %d/%d: <b>%s</b>%s. İkinci bir onaylayıcı bekleniyor.",
                                    "☑️ Approval %d of %d: <b>%s</b>%s. Waits for a second approver."),
                     approvals, needed, w, via);
        else
            snprintf(buf, len, S_TR(lang, "✅ Onaylandı: <b>%s</b>%s. Hesaba geçirilecek.",
                                    "✅ Approved by <b>%s</b>%s. It will be credited."),
                     w, via);
        break;
    case DESK_REJECT:
        snprintf(buf, len, S_TR(lang, "❌ Reddedildi: <b>%s</b>%s.", "❌ Rejected by <b>%s</b>%s."), w, via);
        break;
    case DESK_RETRY:
        snprintf(buf, len, S_TR(lang, "🔁 Yeniden denendi: <b>%s</b>%s.", "🔁 Retried by <b>%s</b>%s."), w, via);
        break;
    case DESK_ASSIGN:
        snprintf(buf, len, S_TR(lang, "➡️ Bir hesaba atandı: <b>%s</b>%s.", "➡️ Assigned to an account by <b>%s</b>%s."),
                 w, via);
        break;
    default: snprintf(buf, len, "?"); break;
    }
    free(w);
}

const char *notice_button(desk_action_t action, notice_lang_t lang)
{
    switch (action) {
    case DESK_APPROVE: return S_TR(lang, "✅ Onayla", "✅ Approve");
    case DESK_REJECT: return S_TR(lang, "❌ Reddet", "❌ Reject");
    case DESK_RETRY: return S_TR(lang, "🔁 Yeniden dene", "🔁 Retry");
    case DESK_ASSIGN: return S_TR(lang, "➡️ Ata", "➡️ Assign");
    default: return "?";
    }
}

void notice_answer(notice_answer_t answer, desk_action_t action, const char *why, notice_lang_t lang, char *buf,
                   size_t len)
{
    switch (answer) {
    case NOTICE_ANSWER_DONE:
        snprintf(buf, len, "%s",
                 action == DESK_APPROVE  ? S_TR(lang, "Onaylandı", "Approved")
                 : action == DESK_REJECT ? S_TR(lang, "Reddedildi", "Rejected")
                 : action == DESK_RETRY  ? S_TR(lang, "Yeniden denenecek", "Sent back to be retried")
                                         : S_TR(lang, "Yapıldı", "Done"));
        break;
    case NOTICE_ANSWER_NOTED:
        snprintf(buf, len, "%s", S_TR(lang, "Onayınız kaydedildi; ikinci bir onaylayıcı gerekiyor.",
                                      "Your approval is recorded; a second approver is needed."));
        break;
    case NOTICE_ANSWER_NOT_ALLOWED:
        snprintf(buf, len, "%s", S_TR(lang, "Bu işlem için yetkiniz yok.", "You are not allowed to do this."));
        break;
    case NOTICE_ANSWER_SAME_ADMIN:
        snprintf(buf, len, "%s", S_TR(lang, "Bu yatırmayı zaten onayladınız; başka bir onaylayıcı gerekiyor.",
                                      "You approved this deposit already; another approver is needed."));
        break;
    case NOTICE_ANSWER_DECIDED:
        snprintf(buf, len, "%s", S_TR(lang, "Bu yatırma için karar zaten verilmiş.",
                                      "This deposit is already decided."));
        break;
    case NOTICE_ANSWER_UNKNOWN:
        snprintf(buf, len, "%s", S_TR(lang, "Bilinmeyen düğme ya da yatırma.", "Unknown button or deposit."));
        break;
    case NOTICE_ANSWER_FAILED:
    default:
        snprintf(buf, len, "%s%.150s", S_TR(lang, "Yapılmadı: ", "Not done: "), why ? why : "");
        break;
    }
}

/* ---- withdrawals -------------------------------------------------------------------------------- */

/* The title of a withdrawal's notice in state (waiting: DEBITED and its amount needs approvers). */
static const char *s_wd_title(withdrawal_state_t state, int waiting, notice_lang_t lang)
{
    switch (state) {
    case WITHDRAWAL_REQUESTED: return S_TR(lang, "Para çekme talebi", "Withdrawal requested");
    case WITHDRAWAL_DEBITED:
        return waiting ? S_TR(lang, "Onay bekleyen para çekme", "Withdrawal waits for approval")
                       : S_TR(lang, "Para çekme hesaptan düşüldü", "Withdrawal debited");
    case WITHDRAWAL_APPROVED: return S_TR(lang, "Para çekme onaylandı", "Withdrawal approved");
    case WITHDRAWAL_SENT: return S_TR(lang, "Para çekme Cobo'ya gönderildi", "Withdrawal sent to Cobo");
    case WITHDRAWAL_COMPLETED: return S_TR(lang, "Para çekme tamamlandı", "Withdrawal completed");
    case WITHDRAWAL_HELD: return S_TR(lang, "Para çekme bekletiliyor", "Withdrawal held");
    case WITHDRAWAL_REJECTED: return S_TR(lang, "Para çekme reddedildi", "Withdrawal rejected");
    case WITHDRAWAL_REFUNDING: return S_TR(lang, "Para çekme iade ediliyor", "Withdrawal being refunded");
    case WITHDRAWAL_REFUNDED: return S_TR(lang, "Para çekme iade edildi", "Withdrawal refunded");
    default: return S_TR(lang, "Para çekme", "Withdrawal");
    }
}

char *notice_withdrawal(const withdrawal_view_t *w, withdrawal_state_t state, int needed, const char *decision,
                        notice_lang_t lang)
{
    char debited[64] = "?";
    if (money_format_minor(w->amount_minor, w->digits, debited, sizeof debited) != 0)
        snprintf(debited, sizeof debited, "%lld minor units", (long long) w->amount_minor);
    char *amount = telegram_escape_html(debited), *currency = telegram_escape_html(w->currency);
    char *fee = telegram_escape_html(w->fee), *token_amount = telegram_escape_html(w->amount);
    char *token = telegram_escape_html(w->token_id), *address = telegram_escape_html(w->address);
    char *id = telegram_escape_html(w->id), *request = telegram_escape_html(w->request_id);
    char *hash = telegram_escape_html(w->tx_hash), *reason = telegram_escape_html(w->reason);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "<b>%s</b>\n", s_wd_title(state, state == WITHDRAWAL_DEBITED && needed > 0, lang));
    jbuf_printf(&b, "%s: <code>%llu</code>\n", S_TR(lang, "Hesap", "Account"), (unsigned long long) w->login);
    jbuf_printf(&b, "%s: <b>%s %s</b>", S_TR(lang, "Tutar", "Amount"), amount, currency);
    if (w->fee[0])
        jbuf_printf(&b, " (%s: %s %s)", S_TR(lang, "ücret", "fee"), fee, currency);
    jbuf_printf(&b, "\n%s: <b>%s %s</b>\n", S_TR(lang, "Gönderilecek", "To send"), token_amount, token);
    jbuf_printf(&b, "%s: <code>%s</code>\n", S_TR(lang, "Adres", "Address"), address);
    jbuf_printf(&b, "%s: <code>%s</code>", S_TR(lang, "Çekim no", "Withdrawal"), id);
    if (w->request_id[0] && state != WITHDRAWAL_REQUESTED && state != WITHDRAWAL_DEBITED)
        jbuf_printf(&b, "\nCobo request_id: <code>%s</code>", request);
    if (state == WITHDRAWAL_COMPLETED || (w->tx_hash[0] && state == WITHDRAWAL_SENT))
        jbuf_printf(&b, "\n%s: <code>%s</code>", S_TR(lang, "İşlem hash", "Tx hash"), w->tx_hash[0] ? hash : "?");
    if (w->debit_ticket && state != WITHDRAWAL_REQUESTED)
        jbuf_printf(&b, "\n%s: <code>%llu</code>", S_TR(lang, "MT5 düşüm işlemi", "MT5 debit deal"),
                    (unsigned long long) w->debit_ticket);
    if (w->refund_ticket && state == WITHDRAWAL_REFUNDED)
        jbuf_printf(&b, "\n%s: <code>%llu</code>", S_TR(lang, "MT5 iade işlemi", "MT5 refund deal"),
                    (unsigned long long) w->refund_ticket);
    if (w->reason[0] && (state == WITHDRAWAL_HELD || state == WITHDRAWAL_REJECTED || state == WITHDRAWAL_REFUNDING ||
                         state == WITHDRAWAL_REFUNDED))
        jbuf_printf(&b, "\n%s: %s", S_TR(lang, "Neden", "Reason"), reason);
    if (state == WITHDRAWAL_DEBITED && needed > 0)
        s_approvals(&b, lang, w->approvals, needed, w->approvers, WITHDRAWALS_MAX_APPROVERS);
    if (state == WITHDRAWAL_HELD)
        jbuf_printf(&b, "\n%s", S_TR(lang, "Bir yöneticinin iade etmesi ya da yeniden göndermesi gerekiyor.",
                                     "A person must refund it or transfer it again."));
    if (decision && *decision)
        jbuf_printf(&b, "\n\n%s", decision);
    char *all[] = { amount, currency, fee, token_amount, token, address, id, request, hash, reason };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    return jbuf_take(&b);
}

void notice_withdrawal_decision(const char *action, int noted, int approvals, int needed, const char *actor,
                                const char *origin, notice_lang_t lang, char *buf, size_t len)
{
    char via[64];
    char *w = s_who_via(actor, origin, lang, via, sizeof via);
    if (action && strcmp(action, "approve") == 0 && noted)
        snprintf(buf, len, S_TR(lang, "☑️ Onay %d/%d: <b>%s</b>%s. İkinci bir onaylayıcı bekleniyor.",
                                "☑️ Approval %d of %d: <b>%s</b>%s. Waits for a second approver."),
                 approvals, needed, w, via);
    else if (action && strcmp(action, "approve") == 0)
        snprintf(buf, len, S_TR(lang, "✅ Onaylandı: <b>%s</b>%s. Cobo'ya gönderilecek.",
                                "✅ Approved by <b>%s</b>%s. It will be sent through Cobo."),
                 w, via);
    else if (action && strcmp(action, "reject") == 0)
        snprintf(buf, len, S_TR(lang, "❌ Reddedildi: <b>%s</b>%s. Tutar hesaba iade edilecek.",
                                "❌ Rejected by <b>%s</b>%s. The amount will be refunded."),
                 w, via);
    else if (action && strcmp(action, "refund") == 0)
        snprintf(buf, len, S_TR(lang, "↩️ İade edildi: <b>%s</b>%s.", "↩️ Refund ordered by <b>%s</b>%s."), w, via);
    else if (action && strcmp(action, "retransfer") == 0)
        snprintf(buf, len, S_TR(lang, "🔁 Yeniden gönderildi: <b>%s</b>%s.", "🔁 Transfer again ordered by <b>%s</b>%s."),
                 w, via);
    else
        snprintf(buf, len, "?");
    free(w);
}

const char *notice_withdrawal_button(const char *action, notice_lang_t lang)
{
    if (!action)
        return "?";
    if (strcmp(action, "approve") == 0)
        return S_TR(lang, "✅ Onayla", "✅ Approve");
    if (strcmp(action, "reject") == 0)
        return S_TR(lang, "❌ Reddet", "❌ Reject");
    if (strcmp(action, "refund") == 0)
        return S_TR(lang, "↩️ İade et", "↩️ Refund");
    if (strcmp(action, "retransfer") == 0)
        return S_TR(lang, "🔁 Yeniden gönder", "🔁 Transfer again");
    return "?";
}

void notice_withdrawal_answer(notice_answer_t answer, const char *action, const char *why, notice_lang_t lang,
                              char *buf, size_t len)
{
    switch (answer) {
    case NOTICE_ANSWER_DONE:
        snprintf(buf, len, "%s",
                 !action                             ? "?"
                 : strcmp(action, "approve") == 0    ? S_TR(lang, "Onaylandı", "Approved")
                 : strcmp(action, "reject") == 0     ? S_TR(lang, "Reddedildi", "Rejected")
                 : strcmp(action, "refund") == 0     ? S_TR(lang, "İade edilecek", "It will be refunded")
                 : strcmp(action, "retransfer") == 0 ? S_TR(lang, "Yeniden gönderilecek", "It will be sent again")
                                                     : S_TR(lang, "Yapıldı", "Done"));
        break;
    case NOTICE_ANSWER_SAME_ADMIN:
        snprintf(buf, len, "%s", S_TR(lang, "Bu para çekmeyi zaten onayladınız; başka bir onaylayıcı gerekiyor.",
                                      "You approved this withdrawal already; another approver is needed."));
        break;
    case NOTICE_ANSWER_DECIDED:
        snprintf(buf, len, "%s", S_TR(lang, "Bu para çekme için karar zaten verilmiş.",
                                      "This withdrawal is already decided."));
        break;
    case NOTICE_ANSWER_UNKNOWN:
        snprintf(buf, len, "%s", S_TR(lang, "Bilinmeyen düğme ya da para çekme.", "Unknown button or withdrawal."));
        break;
    default: notice_answer(answer, DESK_RETRY, why, lang, buf, len); break;
    }
}
