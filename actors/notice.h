/* notice.h — every text kasa sends to the broker's Telegram chat, in Turkish (the default) or
 * English (KASA_NOTICE_LANG=tr|en): a deposit credited, a deposit held (with its reason, and how
 * many approvals it waits for), an alert, an admin login locked, an operator's decision, the labels
 * of the buttons on a held deposit's notice and the short answers to a button press.
 *
 * Every text is Telegram HTML (parse_mode HTML): every value that comes from outside (amounts,
 * addresses, reasons, names) is escaped with telegram_escape_html; the texts themselves use only
 * <b> and <code>. UTF-8 throughout (ç ğ ı İ ö ş ü). Amounts keep kasa's own notation (a point
 * before the decimals, as Cobo and MT5 write them), in both languages. Pure: no I/O. */
#ifndef KASA_ACTORS_NOTICE_H
#define KASA_ACTORS_NOTICE_H

#include <stddef.h>

#include "actors/registry.h"
#include "actors/withdrawals.h"
#include "schema/desk.h"
#include "schema/record.h"

typedef enum { NOTICE_TR, NOTICE_EN } notice_lang_t;

/* KASA_NOTICE_LANG's value ("en" → NOTICE_EN; anything else, "" included → NOTICE_TR). */
notice_lang_t notice_lang(const char *name);

/* A credited deposit: login, the amount credited (account money), the token amount, transaction
 * id, MT5 deal. The caller frees. */
char *notice_credited(const deposit_view_t *d, notice_lang_t lang);

/* A HELD deposit: what arrived, where, for which login (if known), why it is held (the locker's
 * reason, put in the language's words when kasa knows it), and, when it waits for approval,
 * the approvals it needs and has (needed: desk_approvals_needed; 0 for none). decision, when not
 * NULL, is appended as the last line (notice_decision). The caller frees. */
char *notice_held(const registry_entry_t *e, int needed, const char *decision, notice_lang_t lang);

/* An alert on a deposit (RECORD_ALERT: its name in words, transaction, login, deal(s), reason). */
char *notice_alert(const record_t *alert, notice_lang_t lang);

/* An admin's logins held back after too many failures (name, client ip, minutes to wait). */
char *notice_lockout(const char *name, const char *ip, long long wait_s, notice_lang_t lang);

/* One line on an operator's decision: action (noted: an approval that waits for another one, of
 * approvals/needed), who (an actor such as "admin:ayse"; the prefix is dropped) and from where (an
 * origin: "telegram:…" reads "Telegram", "ip:…" the panel, "cli:…" the command line). Into buf. */
void notice_decision(desk_action_t action, int noted, int approvals, int needed, const char *actor,
                     const char *origin, notice_lang_t lang, char *buf, size_t len);

/* A button's label for action ("✅ Onayla", "❌ Reddet", "🔁 Yeniden dene"; English likewise). */
const char *notice_button(desk_action_t action, notice_lang_t lang);

/* The short answers to a press (answerCallbackQuery, at most 200 bytes). */
typedef enum {
    NOTICE_ANSWER_DONE,        /* the action was journaled (what: the action)                 */
    NOTICE_ANSWER_NOTED,       /* an approval recorded; a second approver is needed           */
    NOTICE_ANSWER_NOT_ALLOWED, /* the user is not a mapped, enabled admin with the role       */
    NOTICE_ANSWER_SAME_ADMIN,  /* this admin approved it already                              */
    NOTICE_ANSWER_DECIDED,     /* the deposit is no longer held: someone decided already      */
    NOTICE_ANSWER_UNKNOWN,     /* a button kasa does not know (or a deposit it does not)      */
    NOTICE_ANSWER_FAILED,      /* refused for another reason (why appended) or not durable    */
} notice_answer_t;

/* The answer text into buf; action names what was done (DONE), why is appended (FAILED). */
void notice_answer(notice_answer_t answer, desk_action_t action, const char *why, notice_lang_t lang, char *buf,
                   size_t len);

/* ---- withdrawals: the same chat, the same shapes ---------------------------------------------- */

/* A withdrawal's notice as it entered state (w: the withdrawal as memory holds it; its state may have
 * moved on since): who, how much (account currency, the fee, the token amount), where to, its id;
 * Cobo's request_id once approved, the tx hash once completed, the MT5 deals, the reason of a held,
 * rejected or refunded one; a DEBITED one that waits for approval says so with the approvals
 * needed (withdrawer_approvals_needed) and had. decision, when not NULL, is appended as the last
 * line (notice_withdrawal_decision). The caller frees. */
char *notice_withdrawal(const withdrawal_view_t *w, withdrawal_state_t state, int needed, const char *decision,
                        notice_lang_t lang);

/* One line on a person's action on a withdrawal ("approve", "reject", "refund", "retransfer"; noted:
 * an approval that waits for another one), who and from where, as notice_decision. Into buf. */
void notice_withdrawal_decision(const char *action, int noted, int approvals, int needed, const char *actor,
                                const char *origin, notice_lang_t lang, char *buf, size_t len);

/* A withdrawal button's label for action ("✅ Onayla", "↩️ İade et", "🔁 Yeniden gönder"; English likewise). */
const char *notice_withdrawal_button(const char *action, notice_lang_t lang);

/* The short answer to a press on a withdrawal's button (as notice_answer, in a withdrawal's words). */
void notice_withdrawal_answer(notice_answer_t answer, const char *action, const char *why, notice_lang_t lang,
                              char *buf, size_t len);

#endif
