/* telegram.h — a client of the Telegram Bot API's sendMessage, for notices to the broker's chat.
 *
 * POST {api_url}/bot{token}/sendMessage with the JSON body
 * {"chat_id":..,"text":..,"parse_mode":"HTML","disable_web_page_preview":true}.
 * One persistent libcurl handle per client (keep-alive); calls on one client are serialised by its
 * mutex. The bot token is a secret: it is never logged and never appears in an error string
 * (URLs in errors are shown with the token masked as "bot***"). */
#ifndef KASA_ACTORS_TELEGRAM_H
#define KASA_ACTORS_TELEGRAM_H

#include <stddef.h>

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

/* After a TELEGRAM_TRANSIENT 429: the seconds Telegram asked to wait (parameters.retry_after),
 * else 0. */
int telegram_retry_after_s(const telegram_t *c);

/* The message_id of the last accepted message, or 0. */
long long telegram_last_message_id(const telegram_t *c);

/* Returns a newly allocated copy of text with & < > " escaped as &amp; &lt; &gt; &quot; (safe as
 * HTML text and inside attribute values). NULL text gives "". The caller frees. Aborts on no memory. */
char *telegram_escape_html(const char *text);

#endif
