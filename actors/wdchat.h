/* wdchat.h — withdrawals in the broker's Telegram chat (actors/chat.h): a notice for every
 * withdrawal transition, and the buttons people decide with.
 *
 * Notices (KASA_NOTICE_LANG, texts in actors/notice.h): each durable RECORD_WITHDRAWAL is told as
 * the state it entered — requested, debited (or "waits for approval", with the approvals it needs),
 * approved, sent, completed (with the tx hash), held (with the reason), rejected, refunding,
 * refunded. When KASA_TELEGRAM_APPROVERS maps anyone, a withdrawal waiting for approval carries
 * Approve / Reject, a held one Refund / Transfer again (both are offered: the desk refuses either
 * while Cobo has not said the transfer is final, and says so). A decision taken at another door
 * (the admin panel, `kasa withdrawal`) edits the notice with buttons sent in this run for that
 * withdrawal (keyboard kept while a second approval is awaited), else a new message says it.
 *
 * Presses (callback_data "ACTION:w:ID"): the same door as the panel and the command,
 * pipeline_withdraw_act(): the role (admin_may ADMIN_WITHDRAW_DECIDE), the same state checks and
 * approvals (two different approvers above KASA_WITHDRAW_DUAL_APPROVAL_LIMIT, the same one twice
 * refused), journaled as actor "admin:NAME", origin "telegram:USER_ID", reason "Telegram: ACTION
 * button"; answered, and the message edited to say who decided. A press handled twice (redelivered
 * after a restart) is refused by the withdrawal's table: decided already. */
#ifndef KASA_ACTORS_WDCHAT_H
#define KASA_ACTORS_WDCHAT_H

#include "actors/chat.h"
#include "actors/pipeline.h"
#include "schema/config.h"

#define WDCHAT_KIND "w"

/* Routes the withdrawals' buttons and watches their records on chat (before chat_start()), acting
 * on pipeline under cfg (both must outlive the chat). 0, or -1 (the chat has no room). Safe on a
 * NULL chat (nothing to do: 0). */
int wdchat_attach(chat_t *chat, pipeline_t *pipeline, const config_t *cfg);

/* The keyboard of a withdrawal's notice in state (waiting: DEBITED and waiting for approvers):
 * Approve / Reject, Refund / Transfer again for HELD, none otherwise; into reply. */
void wdchat_buttons(const char *id, withdrawal_state_t state, int waiting, const char *lang, chat_reply_t *reply);

#endif
