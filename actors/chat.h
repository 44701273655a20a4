/* chat.h — the broker's Telegram chat as a desk: notices of held deposits (with Approve / Reject
 * buttons), alerts and decisions, and the button presses that come back.
 *
 * Notices. chat_on_commit() sees every durable record (from the journal's commit callback; it only
 * decodes and queues, never blocks: a full queue drops the notice with a log line). The notice
 * thread then sends, in KASA_NOTICE_LANG (actors/notice.h):
 *   - a deposit that became HELD, with its reason; when KASA_TELEGRAM_APPROVERS is set, with an
 *     inline keyboard: Approve / Reject while it waits for approval, Retry / Reject otherwise;
 *   - an ALERT;
 *   - a decision taken at another door (admin panel, `kasa deposit`): the held notice it sent for
 *     that deposit in this run is edited to show it (keyboard kept while a second approval is
 *     awaited), else a new message says it.
 * A notice is sent at most once (NOTIFIER_TRIES-style retries for transient failures, then a log
 * line): the journal, the panel and `kasa deposit list --state HELD` stay the record of what waits.
 * Credited notices are the notifier stage's (actors/notifier.h), exactly once through the journal.
 *
 * Buttons. callback_data is "ACTION:KIND:ID" (at most 64 bytes; ACTION a desk action name, KIND
 * "d" for a deposit, ID its transaction id, or "#" and 16 hex digits of stage_tx_hash() when the
 * id is too long). The poll thread long-polls getUpdates (allowed_updates ["callback_query"],
 * KASA_TELEGRAM_POLL_S) and handles each press in order:
 *   1. the Telegram user must be mapped by KASA_TELEGRAM_APPROVERS to an admin account that exists
 *      and is enabled, and (with a numeric TELEGRAM_CHAT_ID) the message must be in that chat, else
 *      the press is refused ("not allowed") and nothing is journaled;
 *   2. the KIND's handler (chat_route) checks the role (admin_may) and acts; for a deposit through
 *      pipeline_admin(), the same desk path as the panel and `kasa deposit`: the same state and
 *      approval checks, the same ADMIN_ACTION record with actor "admin:NAME", origin
 *      "telegram:USER_ID" and reason "Telegram: ACTION button";
 *   3. the press is answered (answerCallbackQuery: done / noted / not allowed / already decided /
 *      the refusal) and, after a decision, the message is edited to show who decided what (the
 *      keyboard removed, or kept while a second approver is awaited).
 * The offset of the next update is kept in JOURNAL_DIR/telegram.offset (written after each press
 * is handled, atomically), so a restart neither re-reads nor re-applies old presses; a press
 * handled twice anyway (a crash between acting and writing the offset) is refused by the desk
 * table (decided already, or this admin's approval counted already).
 * Cluster mode (KASA_CLUSTER=on): every node has the same bot, and Telegram answers a second poller
 * 409 Conflict, so one node polls: the holder of the lease CHAT_POLLER_LEASE (actors/claims.h's named
 * leases: KASA_CLAIM_LEASE_MS, at least 3 s; renewed before every getUpdates and after every press,
 * taken over by another node within lease/3 of its end). The offset is stored with the lease after
 * each press (write concern majority), so the next poller continues where the last one stopped; the
 * poll waits at most lease/3 and its request at most lease/3 more, so it ends before the lease can be
 * taken. A node stopping gives the lease up. Notices are sent from any node.
 * Thread-safe; every thread it starts ends in chat_destroy(). */
#ifndef KASA_ACTORS_CHAT_H
#define KASA_ACTORS_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "actors/admins.h"
#include "actors/pipeline.h"
#include "actors/telegram.h"
#include "schema/config.h"
#include "schema/record.h"

#define CHAT_QUEUE 1024          /* records waiting for the notice thread */
#define CHAT_REMEMBER 512        /* held notices whose message id is kept (to edit on a decision) */
#define CHAT_TRIES 4             /* sends of one notice before it is given up (logged) */
#define CHAT_MAX_KINDS 4         /* button kinds (deposits, and what else routes presses here) */
#define CHAT_OFFSET_FILE "telegram.offset"
#define CHAT_POLLER_LEASE "telegram-poller"   /* cluster mode: the lease of the one node that polls */

typedef struct chat_t chat_t;

/* A chat for cfg (which must outlive it): TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID and TELEGRAM_API_URL
 * set, else NULL with the reason in err (kasa then sends no such notices). Starts nothing yet:
 * records seen before chat_start() wait in the queue. */
chat_t *chat_new(const config_t *cfg, char *err, size_t errlen);

/* Starts the notice thread and, when KASA_TELEGRAM_APPROVERS maps anyone, the poll thread, acting
 * on pipeline and admins (neither owned; both must outlive the chat). 0, or -1 with a reason. */
int chat_start(chat_t *self, pipeline_t *pipeline, admins_t *admins, char *err, size_t errlen);

/* Stops both threads (a long poll in progress ends at once; queued notices are dropped): after it
 * the chat no longer touches the pipeline or the admins. chat_on_commit() stays safe (it ignores
 * records now) until chat_destroy(). Safe on NULL and twice. */
void chat_stop(chat_t *self);

/* chat_stop(), then frees; sets *self_p to NULL. Safe on NULL and twice. */
void chat_destroy(chat_t **self_p);

/* A durable record (from the journal's commit callback): queued if it calls for a notice. Never
 * blocks; safe on a NULL chat. */
void chat_on_commit(chat_t *self, uint64_t lsn, const void *payload, size_t len);
/* The same for a record the caller decoded already (the commit path decodes once for everyone). */
void chat_on_record(chat_t *self, uint64_t lsn, const record_t *r);

/* A press as a KIND's handler sees it: already from a mapped, enabled admin. */
typedef struct {
    const char *action;          /* ACTION of the callback_data ("approve") */
    const char *id;              /* ID of the callback_data */
    const admin_view_t *admin;   /* who pressed, as an admin account */
    const telegram_press_t *press;
    const char *origin;          /* "telegram:USER_ID" */
} chat_press_t;

/* What a handler answers: the answer's text, and optionally the message's new text and keyboard
 * (edit_html malloc'd, freed by the chat; buttons' strings point into data). */
typedef struct {
    char answer[200];
    char *edit_html;
    telegram_button_t buttons[TELEGRAM_MAX_BUTTONS];
    char data[TELEGRAM_MAX_BUTTONS][TELEGRAM_MAX_DATA + 1];
    int nbuttons;
} chat_reply_t;

typedef void (chat_button_fn)(void *arg, const chat_press_t *press, chat_reply_t *reply);

/* Routes presses of buttons of kind (1..7 characters of [a-z]; "d" is the deposits' own) to fn.
 * Call before chat_start(). 0, or -1 (taken, bad kind, no room). */
int chat_route(chat_t *self, const char *kind, chat_button_fn *fn, void *arg);

/* Sends html (a notice of another kind of work, e.g. a withdrawal waiting for approval) to the
 * broker's chat with kb's buttons (NULL or nbuttons 0: none), as the notice thread sends its own
 * (retried on transient failures, CHAT_TRIES at most; what is a short name for the log, id the
 * thing it is about). The message id (to edit it later with telegram_edit), or 0 when it could not
 * be sent (logged). Blocks for the sends: call it from a worker, not under a lock. Thread-safe. */
long long chat_send(chat_t *self, const char *what, const char *id, const char *html, const chat_reply_t *kb);

/* Notices of another kind of work: wants(r) says, in the journal's commit callback (so it must be
 * quick, pure and never block), whether a durable record is that kind's to tell; fn(arg, r) then
 * runs on the notice thread for each such record, in commit order, and may chat_send / chat_edit.
 * A record a watcher wants is that watcher's alone. Call before chat_start(). 0, or -1 (no room). */
typedef int (chat_wants_fn)(const record_t *r);
typedef void (chat_notice_fn)(void *arg, const record_t *r);
int chat_watch(chat_t *self, chat_wants_fn *wants, chat_notice_fn *fn, void *arg);

/* Replaces the text and the keyboard (kb NULL or nbuttons 0: none) of message_id in the broker's
 * chat, once (a failure is logged). From the notice thread (a watcher's fn). 0 or -1. */
int chat_edit(chat_t *self, long long message_id, const char *html, const chat_reply_t *kb);

/* callback_data for action on id of kind into buf (at least TELEGRAM_MAX_DATA + 1 bytes): the id
 * itself when it fits, else "#" and the 16 hex digits of stage_tx_hash(id). */
void chat_button_data(const char *action, const char *kind, const char *id, char *buf, size_t len);

/* The keyboard a HELD deposit's notice carries, for a deposit that waits for approval (waiting) or
 * not: the buttons into reply (its buttons, data, nbuttons). */
void chat_deposit_buttons(const char *tx_id, int waiting, const char *lang, chat_reply_t *reply);

/* The admin name KASA_TELEGRAM_APPROVERS maps user_id to, or NULL. */
const char *chat_approver(const config_t *cfg, int64_t user_id);

#endif
