/* telegram.h — a client of the Telegram Bot API, for the broker's chat: notices (sendMessage, with
 * an optional inline keyboard), their edits (editMessageText), and the buttons pressed on them
 * (getUpdates long polling for callback_query updates, answered with answerCallbackQuery).
 *
 * POST {api_url}/bot{token}/{method} with a JSON body, e.g. sendMessage
 * {"chat_id":..,"text":..,"parse_mode":"HTML","disable_web_page_preview":true,
 *  "reply_markup":{"inline_keyboard":[[{"text":..,"callback_data":..},..]]}}.
 * One persistent libcurl handle per client (keep-alive); calls on one client are serialised by its
 * mutex (a long poll holds its client for up to its timeout: give it a client of its own). The bot
 * token is a secret: it is never logged and never appears in an error string (URLs in errors are
 * shown with the token masked as "bot***"). */
#ifndef KASA_ACTORS_TELEGRAM_H
#define KASA_ACTORS_TELEGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct telegram_t telegram_t;

typedef enum {
    TELEGRAM_OK = 0,    /* the message was accepted ("ok":true)                                   */
    TELEGRAM_TRANSIENT, /* try again later: 5xx, 429 (see telegram_retry_after_s), transport error  */
    TELEGRAM_PERMANENT, /* will not work as sent: 400 (bad chat, bad HTML, too long), 401, 403, 404 */
} telegram_result_t;

/* "ok", "transient", "permanent". */
const char *telegram_result_name(telegram_result_t r);

/* A client for the bot API at api_url ("https://api.telegram.org", or a simulator's http URL,
 * no trailing slash needed) with the bot token (copied; wiped on destroy) and a per-request
 * timeout in ms (> 0). Does not connect. NULL on bad arguments or no memory. */
telegram_t *telegram_new(const char *api_url, const char *token, long timeout_ms);

/* Frees the client, wipes the token, sets *self_p to NULL. Safe on NULL and twice. */
void telegram_destroy(telegram_t **self_p);

/* Sends html_text (Telegram's HTML subset; escape untrusted parts with telegram_escape_html) to
 * chat_id (a number like "-1001234567890" or "@channel"). TELEGRAM_OK, or an error class with the
 * reason in err (Telegram's "description" when it gave one; never the token). Text longer than
 * 4096 bytes is refused as TELEGRAM_PERMANENT before sending. */
telegram_result_t telegram_send(telegram_t *c, const char *chat_id, const char *html_text,
                                char *err, size_t errlen);

#define TELEGRAM_MAX_BUTTONS 4      /* buttons in the one row of an inline keyboard */
#define TELEGRAM_MAX_DATA 64        /* callback_data: 1..64 bytes (the Bot API's limit) */

/* An inline keyboard button: its label and the callback_data a press sends back. */
typedef struct {
    const char *text;
    const char *data;
} telegram_button_t;

/* telegram_send() with an inline keyboard of n buttons in one row (n 0: none); on TELEGRAM_OK
 * *message_id (may be NULL) is the new message's id. A button without text, or with callback_data
 * empty or over TELEGRAM_MAX_DATA bytes, is refused as TELEGRAM_PERMANENT before sending. */
telegram_result_t telegram_send_keyboard(telegram_t *c, const char *chat_id, const char *html_text,
                                         const telegram_button_t *buttons, int n, long long *message_id,
                                         char *err, size_t errlen);

/* editMessageText: message_id in chat_id gets html_text and the n buttons (n 0: the keyboard is
 * removed). "message is not modified" (the same text and keyboard again) counts as TELEGRAM_OK. */
telegram_result_t telegram_edit(telegram_t *c, const char *chat_id, long long message_id, const char *html_text,
                                const telegram_button_t *buttons, int n, char *err, size_t errlen);

/* answerCallbackQuery: ends the press's progress indicator with text (at most 200 bytes; shown
 * as an alert box when alert is 1). */
telegram_result_t telegram_answer(telegram_t *c, const char *query_id, const char *text, int alert, char *err,
                                  size_t errlen);

/* A button press: one callback_query update. Strings are cut to their buffers. */
typedef struct {
    int64_t update_id;
    char query_id[72];       /* callback_query.id: for telegram_answer */
    int64_t from_id;         /* callback_query.from.id: the Telegram user */
    char from_name[72];      /* from.username, else from.first_name */
    char chat_id[32];        /* message.chat.id ("" if Telegram sent no message) */
    long long message_id;    /* message.message_id (0 if none) */
    char data[TELEGRAM_MAX_DATA + 8]; /* callback_data ("" if none) */
} telegram_press_t;

/* getUpdates {"offset":offset,"timeout":timeout_s,"allowed_updates":["callback_query"]}: waits up
 * to timeout_s for updates (0: answers at once). Fills at most max presses (updates of any other
 * kind are skipped) and sets *next_offset to one more than the highest update_id seen (unchanged if
 * none): passing it to the next call confirms them to Telegram. Returns the number of presses, or
 * -1 with the result class in *rc and the reason in err. */
int telegram_updates(telegram_t *c, int64_t offset, int timeout_s, telegram_press_t *out, int max,
                     int64_t *next_offset, telegram_result_t *rc, char *err, size_t errlen);

/* A flag that, once non-zero, makes the client's call in progress (a long poll) end at once as
 * TELEGRAM_TRANSIENT. NULL for none. */
void telegram_set_stop(telegram_t *c, atomic_int *stop);

/* After a TELEGRAM_TRANSIENT 429: the seconds Telegram asked to wait (parameters.retry_after),
 * else 0. */
int telegram_retry_after_s(const telegram_t *c);

/* The message_id of the last accepted message, or 0. */
long long telegram_last_message_id(const telegram_t *c);

/* Returns a newly allocated copy of text with & < > " escaped as &amp; &lt; &gt; &quot; (safe as
 * HTML text and inside attribute values). NULL text gives "". The caller frees. Aborts on no memory. */
char *telegram_escape_html(const char *text);

#endif
