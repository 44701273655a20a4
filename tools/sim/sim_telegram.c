/* sim_telegram.c — `kasa sim telegram`: the Telegram Bot API on loopback (see sim_telegram.h, sim.h):
 * sendMessage, editMessageText, getUpdates, answerCallbackQuery, getMe.
 *
 * POST /bot{TOKEN}/sendMessage with a JSON body {chat_id, text, parse_mode, reply_markup, ...} (or
 * the same as query parameters) answers {"ok":true,"result":Message}; failures answer
 * {"ok":false,"error_code":N,"description":"..."} with the same HTTP status: 401 Unauthorized for a
 * wrong token, 400 for an empty chat_id or text, a text over 4096 bytes, (parse_mode HTML) a tag or
 * entity Telegram would not parse, or an inline keyboard button without text or with callback_data
 * not 1..64 bytes (BUTTON_DATA_INVALID); 429 with parameters.retry_after and 5xx when told to fail.
 * Every accepted message is kept (the last 10,000) and appended as one JSON line to --log.
 * editMessageText {chat_id, message_id, text, parse_mode, reply_markup}: the message gets the text
 * and that keyboard (none given: the keyboard is removed) and an edit_date; "message to edit not
 * found" and "message is not modified" as Telegram answers them.
 * Button presses: POST /sim/press makes a callback_query update (id, from, message, chat_instance,
 * data) for getUpdates {offset, limit, timeout, allowed_updates}: updates below offset are
 * confirmed and forgotten; with none pending the call waits up to timeout seconds (long polling);
 * a second getUpdates while one waits ends the first with 409 Conflict ("terminated by other getUpdates
 * request; make sure that only one bot instance is running"), as Telegram does (counted: "conflicts").
 * answerCallbackQuery {callback_query_id, text, show_alert}: once per query; an unknown or already
 * answered id gets "query is too old and response timeout expired or query ID is invalid".
 *
 * Control (loopback only): GET /sim/messages (each with its reply_markup and edit_date), GET
 * /sim/presses (each press, answered or not, with the answer's text; the 409s so far), POST /sim/press
 * {"user_id":N,"message_id":M,"data":"...","username":"...","first_name":"...","force":false}
 * (a press of a button the message shows now, unless force), POST /sim/redeliver (forget every
 * confirmation: getUpdates without an offset hands out every press again), POST /sim/faults {"fail_next":N,
 * "status":500,"retry_after":3,"fail_rate":0.2}, POST /sim/reset. */
#include "tools/sim/sim_telegram.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "schema/json.h"
#include "tools/sim/sim.h"
#include "tools/sim/sim_http.h"

#define TG_MAX_BODY 65536
#define TG_MAX_KEPT 10000
#define TG_MAX_TEXT 4096
#define TG_PPM 1000000u

#define TG_MAX_PRESSES 10000
#define TG_MAX_POLL_S 50

typedef struct {
    long long message_id;
    char *chat_id;
    char *text;
    char *parse_mode;
    char *reply_markup;   /* {"inline_keyboard":[[..]]} as JSON, NULL if none */
    int64_t date;
    int64_t edit_date;    /* 0 if never edited */
    int edits;
} s_message_t;

typedef struct {
    long long update_id;
    char query_id[32];
    int64_t user_id;
    char username[64], first_name[64];
    long long message_id;
    char data[80];
    int answered, show_alert;
    char *answer;         /* the answer's text, NULL until answered */
} s_press_t;

struct sim_telegram_t {
    pthread_mutex_t mu;
    struct MHD_Daemon *daemon;
    int port;
    char token[160];
    FILE *log;
    uint64_t rng;
    uint32_t fail_rate_ppm;
    int fail_next;
    int fail_status;
    int retry_after;
    long long next_id;
    s_message_t *kept; /* ring of TG_MAX_KEPT */
    size_t kept_count, kept_head;
    uint64_t accepted, failed;
    s_press_t *presses;      /* every press made (TG_MAX_PRESSES at most) */
    size_t press_count;
    long long confirmed;     /* updates with ids below this are confirmed (getUpdates offset) */
    long long next_update;
    uint64_t poll_gen;       /* bumped by each getUpdates: an older waiting one ends with 409 */
    uint64_t conflicts;      /* getUpdates answered 409 (two pollers overlapped) */
    int stopping;
    pthread_cond_t cv;       /* a press, a new getUpdates or the stop */
};

static enum MHD_Result s_error(struct MHD_Connection *conn, unsigned status, const char *description, int retry_after)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"ok\":false,\"error_code\":%u,\"description\":", status);
    jbuf_str(&b, description);
    if (retry_after > 0)
        jbuf_printf(&b, ",\"parameters\":{\"retry_after\":%d}", retry_after);
    jbuf_puts(&b, "}");
    return sim_http_reply_buf(conn, status, &b);
}

/* Telegram's HTML subset: known tags only, and & only as an entity. 0 if it would parse. */
static int s_html_ok(const char *t, char *why, size_t len)
{
    static const char *const tags[] = { "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a",
                                        "code", "pre", "tg-spoiler", "span", "blockquote", "tg-emoji" };
    for (const char *p = t; *p; p++) {
        if (*p == '<') {
            const char *q = p + 1 + (p[1] == '/');
            size_t n = strcspn(q, " >");
            int known = 0;
            for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
                known |= strlen(tags[i]) == n && strncasecmp(q, tags[i], n) == 0;
            const char *end = strchr(q, '>');
            if (!known || !end) {
                snprintf(why, len, "Bad Request: can't parse entities: Unsupported start tag \"%.*s\" at byte offset %ld",
                         (int) (n > 20 ? 20 : n), q, (long) (p - t));
                return -1;
            }
            p = end;
        } else if (*p == '&') {
            size_t n = strcspn(p, ";");
            int ok = p[n] == ';' && n >= 3 && n <= 9;
            if (ok && p[1] != '#') {
                ok = !strncmp(p, "&lt;", 4) || !strncmp(p, "&gt;", 4) || !strncmp(p, "&amp;", 5) || !strncmp(p, "&quot;", 6);
            }
            if (!ok) {
                snprintf(why, len, "Bad Request: can't parse entities: Character entity expected at byte offset %ld",
                         (long) (p - t));
                return -1;
            }
        } else if (*p == '>') {
            snprintf(why, len, "Bad Request: can't parse entities: Unexpected end tag at byte offset %ld", (long) (p - t));
            return -1;
        }
    }
    return 0;
}

static void s_keep(sim_telegram_t *s, const s_message_t *m)
{
    size_t slot = (s->kept_head + s->kept_count) % TG_MAX_KEPT;
    if (s->kept_count == TG_MAX_KEPT) {
        s_message_t *old = &s->kept[s->kept_head];
        free(old->chat_id), free(old->text), free(old->parse_mode), free(old->reply_markup);
        slot = s->kept_head;
        s->kept_head = (s->kept_head + 1) % TG_MAX_KEPT;
    } else {
        s->kept_count++;
    }
    s->kept[slot] = *m;
}

static void s_message_json(jbuf_t *b, const s_message_t *m)
{
    jbuf_printf(b, "{\"message_id\":%lld,\"chat_id\":", m->message_id);
    jbuf_str(b, m->chat_id);
    jbuf_puts(b, ",\"text\":");
    jbuf_str(b, m->text);
    jbuf_puts(b, ",\"parse_mode\":");
    jbuf_str(b, m->parse_mode[0] ? m->parse_mode : NULL);
    jbuf_puts(b, ",\"reply_markup\":");
    jbuf_puts(b, m->reply_markup ? m->reply_markup : "null");
    jbuf_printf(b, ",\"date\":%" PRId64 ",\"edit_date\":%" PRId64 ",\"edits\":%d}", m->date, m->edit_date, m->edits);
}

static int s_numeric(const char *chat)
{
    return (chat[0] == '-' || (chat[0] >= '0' && chat[0] <= '9')) && chat[chat[0] == '-'] &&
           strspn(chat + 1, "0123456789") == strlen(chat + 1);
}

/* The Bot API's Message object for m (as sendMessage, editMessageText and a callback_query carry it). */
static void s_message_obj(jbuf_t *b, const s_message_t *m)
{
    const char *chat = m->chat_id;
    int numeric = s_numeric(chat);
    jbuf_printf(b, "{\"message_id\":%lld,\"from\":{\"id\":1,\"is_bot\":true,"
                "\"first_name\":\"kasa sim\",\"username\":\"kasa_sim_bot\"},\"chat\":{\"id\":", m->message_id);
    if (numeric)
        jbuf_puts(b, chat);
    else
        jbuf_str(b, chat);
    jbuf_printf(b, ",\"type\":\"%s\"},\"date\":%" PRId64, chat[0] == '-' ? "supergroup" : numeric ? "private" : "channel",
                m->date);
    if (m->edit_date)
        jbuf_printf(b, ",\"edit_date\":%" PRId64, m->edit_date);
    jbuf_puts(b, ",\"text\":");
    jbuf_str(b, m->text);
    if (m->reply_markup) {
        jbuf_puts(b, ",\"reply_markup\":");
        jbuf_puts(b, m->reply_markup);
    }
    jbuf_puts(b, "}");
}

/* The kept message message_id (in chat, when chat is not NULL), or NULL. */
static s_message_t *s_find(sim_telegram_t *s, long long message_id, const char *chat)
{
    for (size_t i = 0; i < s->kept_count; i++) {
        s_message_t *m = &s->kept[(s->kept_head + i) % TG_MAX_KEPT];
        if (m->message_id == message_id && (!chat || strcmp(m->chat_id, chat) == 0))
            return m;
    }
    return NULL;
}

/* reply_markup of a request (an object, or a JSON-serialized one as a string) → *out, the inline
 * keyboard re-written as JSON (NULL when absent). 0, or -1 with Telegram's description in why. */
static int s_markup(struct MHD_Connection *conn, const bson_t *doc, char **out, char *why, size_t whylen)
{
    *out = NULL;
    bson_t parsed;
    const bson_t *km = NULL;
    bson_iter_t it, child;
    int have_parsed = 0;
    const char *text = NULL;
    if (doc && bson_iter_init_find(&it, doc, "reply_markup")) {
        if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            if (!bson_init_static(&parsed, data, len))
                return snprintf(why, whylen, "Bad Request: can't parse reply keyboard markup JSON object"), -1;
            km = &parsed;
        } else if (BSON_ITER_HOLDS_UTF8(&it)) {
            text = bson_iter_utf8(&it, NULL);
        } else if (!BSON_ITER_HOLDS_NULL(&it)) {
            return snprintf(why, whylen, "Bad Request: can't parse reply keyboard markup JSON object"), -1;
        }
    } else if (!doc) {
        text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "reply_markup");
    }
    if (text) {
        char perr[64];
        if (json_parse(text, strlen(text), &parsed, perr, sizeof perr) != 0) {
            bson_destroy(&parsed);
            return snprintf(why, whylen, "Bad Request: can't parse reply keyboard markup JSON object"), -1;
        }
        have_parsed = 1;
        km = &parsed;
    }
    if (!km)
        return 0;
    int rc = 0;
    if (!bson_iter_init_find(&it, km, "inline_keyboard") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &child)) {
        snprintf(why, whylen, "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array");
        rc = -1;
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"inline_keyboard\":[");
    int rows = 0;
    for (int i = 0; rc == 0 && i < 100; i++) {
        char path[64];
        snprintf(path, sizeof path, "inline_keyboard.%d", i);
        if (!json_has(km, path))
            break;
        jbuf_puts(&b, rows++ ? ",[" : "[");
        for (int j = 0; rc == 0 && j < 8; j++) {
            snprintf(path, sizeof path, "inline_keyboard.%d.%d", i, j);
            if (!json_has(km, path))
                break;
            snprintf(path, sizeof path, "inline_keyboard.%d.%d.text", i, j);
            const char *t = json_get_str(km, path);
            snprintf(path, sizeof path, "inline_keyboard.%d.%d.callback_data", i, j);
            const char *d = json_get_str(km, path);
            if (!t || !*t) {
                snprintf(why, whylen, "Bad Request: can't parse inline keyboard button: Text must be non-empty");
                rc = -1;
            } else if (!d || !*d || strlen(d) > 64) {
                snprintf(why, whylen, "Bad Request: BUTTON_DATA_INVALID");
                rc = -1;
            } else {
                jbuf_puts(&b, j ? ",{\"text\":" : "{\"text\":");
                jbuf_str(&b, t);
                jbuf_puts(&b, ",\"callback_data\":");
                jbuf_str(&b, d);
                jbuf_puts(&b, "}");
            }
        }
        jbuf_puts(&b, "]");
    }
    jbuf_puts(&b, "]}");
    if (have_parsed)
        bson_destroy(&parsed);
    if (rc != 0) {
        jbuf_free(&b);
        return -1;
    }
    *out = rows ? jbuf_take(&b) : (jbuf_free(&b), NULL);   /* an empty keyboard shows none */
    return 0;
}

/* 1 if the keyboard markup (JSON) has a button with callback_data data. */
static int s_has_button(const char *markup, const char *data)
{
    bson_t doc;
    char perr[64];
    if (!markup || json_parse(markup, strlen(markup), &doc, perr, sizeof perr) != 0) {
        if (markup)
            bson_destroy(&doc);
        return 0;
    }
    int found = 0;
    for (int i = 0; i < 100 && !found; i++)
        for (int j = 0; j < 8 && !found; j++) {
            char path[64];
            snprintf(path, sizeof path, "inline_keyboard.%d.%d.callback_data", i, j);
            const char *d = json_get_str(&doc, path);
            if (!d)
                break;
            found = strcmp(d, data) == 0;
        }
    bson_destroy(&doc);
    return found;
}

/* A value from the JSON body (string or integer), else from the query; copied into buf. */
static const char *s_param(struct MHD_Connection *conn, const bson_t *doc, const char *key, char *buf, size_t len)
{
    bson_iter_t it;
    if (doc && bson_iter_init_find(&it, doc, key)) {
        if (BSON_ITER_HOLDS_UTF8(&it))
            return bson_iter_utf8(&it, NULL);
        if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
            snprintf(buf, len, "%" PRId64, bson_iter_as_int64(&it));
            return buf;
        }
        return NULL;
    }
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result s_send_message(sim_telegram_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    char perr[64], b1[32], b2[32], why[160];
    char *markup = NULL;
    int have_doc = req->body.len > 0;
    if (have_doc && json_parse(req->body.data, req->body.len, &doc, perr, sizeof perr) != 0) {
        bson_destroy(&doc);
        return s_error(conn, 400, "Bad Request: can't parse JSON object", 0);
    }
    if (s->fail_next > 0 || (s->fail_rate_ppm && sim_http_rand(&s->rng) % TG_PPM < s->fail_rate_ppm)) {
        int status = s->fail_next > 0 ? s->fail_status : 500;
        if (s->fail_next > 0)
            s->fail_next--;
        s->failed++;
        if (have_doc)
            bson_destroy(&doc);
        if (status == 429)
            return s_error(conn, 429, "Too Many Requests: retry after 3", s->retry_after > 0 ? s->retry_after : 3);
        return s_error(conn, (unsigned) status, status >= 500 ? "Internal Server Error" : "Bad Request: simulated", 0);
    }
    const bson_t *d = have_doc ? &doc : NULL;
    const char *chat = s_param(conn, d, "chat_id", b1, sizeof b1);
    const char *text = s_param(conn, d, "text", b2, sizeof b2);
    const char *mode = s_param(conn, d, "parse_mode", why, sizeof why);
    enum MHD_Result rc;
    if (!chat || !*chat) {
        rc = s_error(conn, 400, "Bad Request: chat_id is empty", 0);
    } else if (!text || !*text) {
        rc = s_error(conn, 400, "Bad Request: message text is empty", 0);
    } else if (strlen(text) > TG_MAX_TEXT) {
        rc = s_error(conn, 400, "Bad Request: message is too long", 0);
    } else if (mode && strcasecmp(mode, "HTML") == 0 && s_html_ok(text, why, sizeof why) != 0) {
        rc = s_error(conn, 400, why, 0);
    } else if (s_markup(conn, d, &markup, why, sizeof why) != 0) {
        rc = s_error(conn, 400, why, 0);
    } else {
        s_message_t m;
        memset(&m, 0, sizeof m);
        m.message_id = s->next_id++;
        m.chat_id = strdup(chat);
        m.text = strdup(text);
        m.parse_mode = strdup(mode ? mode : "");
        m.reply_markup = markup;
        markup = NULL;
        m.date = (int64_t) time(NULL);
        if (!m.chat_id || !m.text || !m.parse_mode)
            abort();
        jbuf_t b;
        jbuf_init(&b);
        s_message_json(&b, &m);
        if (s->log) {
            fprintf(s->log, "%s\n", b.data);
            fflush(s->log);
        }
        jbuf_reset(&b);
        jbuf_puts(&b, "{\"ok\":true,\"result\":");
        s_message_obj(&b, &m);
        jbuf_puts(&b, "}");
        s_keep(s, &m);
        s->accepted++;
        rc = sim_http_reply_buf(conn, 200, &b);
    }
    free(markup);
    if (have_doc)
        bson_destroy(&doc);
    return rc;
}

/* Parses the request body (if any) into *doc; 0, or -1 after answering 400. */
static int s_body(struct MHD_Connection *conn, const sim_request_t *req, bson_t *doc, int *have_doc,
                  enum MHD_Result *rc)
{
    char perr[64];
    *have_doc = req->body.len > 0;
    if (*have_doc && json_parse(req->body.data, req->body.len, doc, perr, sizeof perr) != 0) {
        bson_destroy(doc);
        *have_doc = 0;
        *rc = s_error(conn, 400, "Bad Request: can't parse JSON object", 0);
        return -1;
    }
    return 0;
}

/* An integer parameter (body or query); 0 and *out, or -1 if absent or not an integer. */
static int s_int_param(struct MHD_Connection *conn, const bson_t *doc, const char *key, long long *out)
{
    char buf[32];
    const char *v = s_param(conn, doc, key, buf, sizeof buf);
    if (!v || !*v)
        return -1;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (!end || *end)
        return -1;
    *out = n;
    return 0;
}

static enum MHD_Result s_edit_message(sim_telegram_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    int have_doc;
    enum MHD_Result rc;
    if (s_body(conn, req, &doc, &have_doc, &rc) != 0)
        return rc;
    const bson_t *d = have_doc ? &doc : NULL;
    char b1[32], b2[32], why[200];
    const char *chat = s_param(conn, d, "chat_id", b1, sizeof b1);
    const char *text = s_param(conn, d, "text", b2, sizeof b2);
    const char *mode = s_param(conn, d, "parse_mode", why, sizeof why);
    long long message_id = 0;
    char *markup = NULL;
    s_message_t *m = NULL;
    if (!chat || !*chat) {
        rc = s_error(conn, 400, "Bad Request: chat_id is empty", 0);
    } else if (s_int_param(conn, d, "message_id", &message_id) != 0) {
        rc = s_error(conn, 400, "Bad Request: message identifier is not specified", 0);
    } else if (!text || !*text) {
        rc = s_error(conn, 400, "Bad Request: text must be non-empty", 0);
    } else if (strlen(text) > TG_MAX_TEXT) {
        rc = s_error(conn, 400, "Bad Request: MESSAGE_TOO_LONG", 0);
    } else if (mode && strcasecmp(mode, "HTML") == 0 && s_html_ok(text, why, sizeof why) != 0) {
        rc = s_error(conn, 400, why, 0);
    } else if (s_markup(conn, d, &markup, why, sizeof why) != 0) {
        rc = s_error(conn, 400, why, 0);
    } else if (!(m = s_find(s, message_id, chat))) {
        rc = s_error(conn, 400, "Bad Request: message to edit not found", 0);
    } else if (strcmp(m->text, text) == 0 &&
               ((!m->reply_markup && !markup) || (m->reply_markup && markup && strcmp(m->reply_markup, markup) == 0))) {
        rc = s_error(conn, 400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message", 0);
    } else {
        char *t = strdup(text), *pm = strdup(mode ? mode : "");
        if (!t || !pm)
            abort();
        free(m->text), free(m->parse_mode), free(m->reply_markup);
        m->text = t;
        m->parse_mode = pm;
        m->reply_markup = markup;
        markup = NULL;
        m->edit_date = (int64_t) time(NULL);
        m->edits++;
        jbuf_t b;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"ok\":true,\"result\":");
        s_message_obj(&b, m);
        jbuf_puts(&b, "}");
        rc = sim_http_reply_buf(conn, 200, &b);
    }
    free(markup);
    if (have_doc)
        bson_destroy(&doc);
    return rc;
}

/* The Update object of press p (its message as kept now, if it still is). */
static void s_update_obj(sim_telegram_t *s, jbuf_t *b, const s_press_t *p)
{
    jbuf_printf(b, "{\"update_id\":%lld,\"callback_query\":{\"id\":", p->update_id);
    jbuf_str(b, p->query_id);
    jbuf_printf(b, ",\"from\":{\"id\":%" PRId64 ",\"is_bot\":false,\"first_name\":", p->user_id);
    jbuf_str(b, p->first_name[0] ? p->first_name : "User");
    if (p->username[0]) {
        jbuf_puts(b, ",\"username\":");
        jbuf_str(b, p->username);
    }
    jbuf_puts(b, ",\"language_code\":\"tr\"}");
    const s_message_t *m = s_find(s, p->message_id, NULL);
    if (m) {
        jbuf_puts(b, ",\"message\":");
        s_message_obj(b, m);
    }
    jbuf_printf(b, ",\"chat_instance\":\"%lld\",\"data\":", 4242424242LL);
    jbuf_str(b, p->data);
    jbuf_puts(b, "}}");
}

static enum MHD_Result s_get_updates(sim_telegram_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    int have_doc;
    enum MHD_Result rc;
    if (s_body(conn, req, &doc, &have_doc, &rc) != 0)
        return rc;
    const bson_t *d = have_doc ? &doc : NULL;
    long long offset = 0, limit = 100, timeout = 0;
    s_int_param(conn, d, "offset", &offset);
    if (s_int_param(conn, d, "limit", &limit) == 0 && (limit < 1 || limit > 100))
        limit = 100;
    if (s_int_param(conn, d, "timeout", &timeout) == 0 && timeout < 0)
        timeout = 0;
    if (timeout > TG_MAX_POLL_S)
        timeout = TG_MAX_POLL_S;
    int want_presses = 1;   /* allowed_updates: an empty list or none means every kind */
    bson_iter_t it, child;
    if (d && bson_iter_init_find(&it, d, "allowed_updates") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &child)) {
        int any = 0, has = 0;
        while (bson_iter_next(&child)) {
            any = 1;
            has |= BSON_ITER_HOLDS_UTF8(&child) && strcmp(bson_iter_utf8(&child, NULL), "callback_query") == 0;
        }
        want_presses = !any || has;
    }
    if (have_doc)
        bson_destroy(&doc);
    if (offset > s->confirmed)
        s->confirmed = offset;   /* everything below offset is confirmed: forgotten for getUpdates */
    uint64_t gen = ++s->poll_gen;
    pthread_cond_broadcast(&s->cv);   /* an older waiting getUpdates ends with 409 */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t) timeout;
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < s->press_count; i++)
            pending += s->presses[i].update_id >= s->confirmed && want_presses;
        if (pending || s->stopping || s->poll_gen != gen)
            break;
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0)
            break;
    }
    if (s->poll_gen != gen) {
        s->conflicts++;
        return s_error(conn, 409, "Conflict: terminated by other getUpdates request; make sure that only one bot "
                                  "instance is running", 0);
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"ok\":true,\"result\":[");
    int n = 0;
    for (size_t i = 0; want_presses && i < s->press_count && n < limit; i++) {
        if (s->presses[i].update_id < s->confirmed)
            continue;
        if (n++)
            jbuf_puts(&b, ",");
        s_update_obj(s, &b, &s->presses[i]);
    }
    jbuf_puts(&b, "]}");
    return sim_http_reply_buf(conn, 200, &b);
}

static enum MHD_Result s_answer_query(sim_telegram_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    int have_doc;
    enum MHD_Result rc;
    if (s_body(conn, req, &doc, &have_doc, &rc) != 0)
        return rc;
    const bson_t *d = have_doc ? &doc : NULL;
    char b1[40], b2[32], b3[16];
    const char *id = s_param(conn, d, "callback_query_id", b1, sizeof b1);
    const char *text = s_param(conn, d, "text", b2, sizeof b2);
    const char *alert = s_param(conn, d, "show_alert", b3, sizeof b3);
    bson_iter_t it;
    int show = d && bson_iter_init_find(&it, d, "show_alert") && BSON_ITER_HOLDS_BOOL(&it) ? bson_iter_bool(&it)
                                                                                          : alert && !strcmp(alert, "true");
    s_press_t *p = NULL;
    for (size_t i = 0; id && i < s->press_count && !p; i++)
        if (strcmp(s->presses[i].query_id, id) == 0)
            p = &s->presses[i];
    if (!id || !*id)
        rc = s_error(conn, 400, "Bad Request: parameter \"callback_query_id\" is required", 0);
    else if (text && strlen(text) > 200)
        rc = s_error(conn, 400, "Bad Request: MESSAGE_TOO_LONG", 0);
    else if (!p || p->answered)
        rc = s_error(conn, 400, "Bad Request: query is too old and response timeout expired or query ID is invalid", 0);
    else {
        p->answered = 1;
        p->show_alert = show;
        p->answer = strdup(text ? text : "");
        if (!p->answer)
            abort();
        rc = sim_http_reply(conn, 200, "{\"ok\":true,\"result\":true}");
    }
    if (have_doc)
        bson_destroy(&doc);
    return rc;
}

/* POST /sim/press: a user presses a button of a kept message (one it shows now, unless force). */
static enum MHD_Result s_press(sim_telegram_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    char perr[64];
    if (json_parse(req->body.data ? req->body.data : "", req->body.len, &doc, perr, sizeof perr) != 0) {
        bson_destroy(&doc);
        return sim_http_reply(conn, 400, "{\"error\":\"body must be a JSON object\"}");
    }
    int64_t user = 0, mid = 0;
    const char *data = json_get_str(&doc, "data");
    const char *username = json_get_str(&doc, "username"), *first = json_get_str(&doc, "first_name");
    bson_iter_t it;
    int force = bson_iter_init_find(&it, &doc, "force") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
    enum MHD_Result rc;
    const s_message_t *m = NULL;
    if (json_get_i64(&doc, "user_id", &user) != 0 || user <= 0 || json_get_i64(&doc, "message_id", &mid) != 0 ||
        !data || !*data || strlen(data) > 64) {
        rc = sim_http_reply(conn, 400, "{\"error\":\"user_id, message_id and data (1..64 bytes) are required\"}");
    } else if (!(m = s_find(s, mid, NULL))) {
        rc = sim_http_reply(conn, 404, "{\"error\":\"no such message\"}");
    } else if (!force && !s_has_button(m->reply_markup, data)) {
        rc = sim_http_reply(conn, 409, "{\"error\":\"the message shows no button with that data\"}");
    } else if (s->press_count == TG_MAX_PRESSES) {
        rc = sim_http_reply(conn, 507, "{\"error\":\"too many presses\"}");
    } else {
        s_press_t *p = &s->presses[s->press_count++];
        memset(p, 0, sizeof *p);
        p->update_id = s->next_update++;
        snprintf(p->query_id, sizeof p->query_id, "%" PRIu64 "%06lld", sim_http_rand(&s->rng) % 1000000000u,
                 p->update_id % 1000000);
        p->user_id = user;
        p->message_id = mid;
        snprintf(p->data, sizeof p->data, "%s", data);
        snprintf(p->username, sizeof p->username, "%s", username ? username : "");
        snprintf(p->first_name, sizeof p->first_name, "%s", first ? first : "");
        pthread_cond_broadcast(&s->cv);
        char json[160];
        snprintf(json, sizeof json, "{\"update_id\":%lld,\"callback_query_id\":\"%s\"}", p->update_id, p->query_id);
        rc = sim_http_reply(conn, 200, json);
    }
    bson_destroy(&doc);
    return rc;
}

static void s_clear(sim_telegram_t *s)
{
    for (size_t i = 0; i < s->kept_count; i++) {
        s_message_t *m = &s->kept[(s->kept_head + i) % TG_MAX_KEPT];
        free(m->chat_id), free(m->text), free(m->parse_mode), free(m->reply_markup);
    }
    s->kept_count = s->kept_head = 0;
    for (size_t i = 0; i < s->press_count; i++)
        free(s->presses[i].answer);
    s->press_count = 0;
}

static enum MHD_Result s_control(sim_telegram_t *s, struct MHD_Connection *conn, const char *url, const char *method,
                                 const sim_request_t *req)
{
    if (!sim_http_is_loopback(conn))
        return sim_http_reply(conn, 403, "{\"error\":\"loopback only\"}");
    if (strcmp(method, "GET") == 0 && strcmp(url, "/sim/messages") == 0) {
        jbuf_t b;
        jbuf_init(&b);
        jbuf_printf(&b, "{\"accepted\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"messages\":[", s->accepted, s->failed);
        for (size_t i = 0; i < s->kept_count; i++) {
            if (i)
                jbuf_puts(&b, ",");
            s_message_json(&b, &s->kept[(s->kept_head + i) % TG_MAX_KEPT]);
        }
        jbuf_puts(&b, "]}");
        return sim_http_reply_buf(conn, 200, &b);
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/sim/presses") == 0) {
        jbuf_t b;
        jbuf_init(&b);
        jbuf_printf(&b, "{\"confirmed\":%lld,\"conflicts\":%" PRIu64 ",\"presses\":[", s->confirmed, s->conflicts);
        for (size_t i = 0; i < s->press_count; i++) {
            const s_press_t *p = &s->presses[i];
            jbuf_printf(&b, "%s{\"update_id\":%lld,\"callback_query_id\":\"%s\",\"user_id\":%" PRId64
                        ",\"message_id\":%lld,\"data\":", i ? "," : "", p->update_id, p->query_id, p->user_id,
                        p->message_id);
            jbuf_str(&b, p->data);
            jbuf_printf(&b, ",\"answered\":%s,\"show_alert\":%s,\"answer\":", p->answered ? "true" : "false",
                        p->show_alert ? "true" : "false");
            jbuf_str(&b, p->answer);
            jbuf_puts(&b, "}");
        }
        jbuf_puts(&b, "]}");
        return sim_http_reply_buf(conn, 200, &b);
    }
    if (strcmp(method, "POST") == 0 && strcmp(url, "/sim/press") == 0)
        return s_press(s, conn, req);
    if (strcmp(method, "POST") == 0 && strcmp(url, "/sim/redeliver") == 0) {
        s->confirmed = 0;   /* as if no getUpdates had confirmed anything: a bot that stopped in between */
        return sim_http_reply(conn, 200, "{\"ok\":true}");
    }
    if (strcmp(method, "POST") == 0 && strcmp(url, "/sim/faults") == 0) {
        bson_t doc;
        char perr[64];
        int64_t v;
        if (json_parse(req->body.data ? req->body.data : "", req->body.len, &doc, perr, sizeof perr) != 0) {
            bson_destroy(&doc);
            return sim_http_reply(conn, 400, "{\"error\":\"body must be a JSON object\"}");
        }
        int bad = 0;
        if (json_has(&doc, "fail_next"))
            bad |= json_get_i64(&doc, "fail_next", &v) != 0 || v < 0 || v > 1000000 || ((s->fail_next = (int) v), 0);
        if (json_has(&doc, "status"))
            bad |= json_get_i64(&doc, "status", &v) != 0 || v < 400 || v > 599 || ((s->fail_status = (int) v), 0);
        if (json_has(&doc, "retry_after"))
            bad |= json_get_i64(&doc, "retry_after", &v) != 0 || v < 0 || v > 3600 || ((s->retry_after = (int) v), 0);
        bson_iter_t it;
        if (bson_iter_init_find(&it, &doc, "fail_rate")) {
            double d = BSON_ITER_HOLDS_DOUBLE(&it) ? bson_iter_double(&it)
                       : (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) ? (double) bson_iter_as_int64(&it) : -1;
            if (d >= 0.0 && d <= 1.0)
                s->fail_rate_ppm = (uint32_t) (d * TG_PPM + 0.5);
            else
                bad = 1;
        }
        bson_destroy(&doc);
        char json[160];
        snprintf(json, sizeof json, "{\"fail_next\":%d,\"status\":%d,\"retry_after\":%d,\"fail_rate_ppm\":%u}",
                 s->fail_next, s->fail_status, s->retry_after, s->fail_rate_ppm);
        return bad ? sim_http_reply(conn, 400, "{\"error\":\"bad fault value\"}") : sim_http_reply(conn, 200, json);
    }
    if (strcmp(method, "POST") == 0 && strcmp(url, "/sim/reset") == 0) {
        s_clear(s);
        s->fail_next = 0;
        s->accepted = s->failed = 0;
        return sim_http_reply(conn, 200, "{\"ok\":true}");
    }
    return sim_http_reply(conn, 404, "{\"error\":\"no such control endpoint\"}");
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    sim_telegram_t *s = cls;
    (void) version;
    enum MHD_Result rc;
    sim_request_t *req = sim_http_body(con_cls, upload, upload_size, TG_MAX_BODY, &rc);
    if (!req)
        return rc;
    if (req->too_big)
        return s_error(conn, 413, "Request Entity Too Large", 0);
    pthread_mutex_lock(&s->mu);
    if (strncmp(url, "/sim/", 5) == 0) {
        rc = s_control(s, conn, url, method, req);
    } else if (strncmp(url, "/bot", 4) != 0 || !strchr(url + 4, '/')) {
        rc = s_error(conn, 404, "Not Found", 0);
    } else {
        const char *slash = strchr(url + 4, '/');
        size_t tlen = (size_t) (slash - (url + 4));
        if (tlen != strlen(s->token) || strncmp(url + 4, s->token, tlen) != 0)
            rc = s_error(conn, 401, "Unauthorized", 0);
        else if (strcasecmp(slash + 1, "sendMessage") == 0)
            rc = s_send_message(s, conn, req);
        else if (strcasecmp(slash + 1, "editMessageText") == 0)
            rc = s_edit_message(s, conn, req);
        else if (strcasecmp(slash + 1, "getUpdates") == 0)
            rc = s_get_updates(s, conn, req);
        else if (strcasecmp(slash + 1, "answerCallbackQuery") == 0)
            rc = s_answer_query(s, conn, req);
        else if (strcasecmp(slash + 1, "getMe") == 0)
            rc = sim_http_reply(conn, 200, "{\"ok\":true,\"result\":{\"id\":1,\"is_bot\":true,\"first_name\":\"kasa sim\","
                                    "\"username\":\"kasa_sim_bot\"}}");
        else
            rc = s_error(conn, 404, "Not Found: method not found", 0);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa sim telegram --listen 127.0.0.1:PORT --token TOKEN [--fail-rate P] [--log FILE] [--seed N]\n"
            "  POST /bot{TOKEN}/sendMessage   {chat_id, text, parse_mode, reply_markup}: Bot API answers; a wrong\n"
            "                                 token gets 401; also editMessageText, getUpdates, answerCallbackQuery\n"
            "  --fail-rate P                  answer 500 to a share P (0..1) of sendMessage calls\n"
            "  --log FILE                     append every accepted message as one JSON line\n"
            "control (loopback only):\n"
            "  GET  /sim/messages             the accepted messages (the last 10,000), as edited\n"
            "  POST /sim/press {\"user_id\":N,\"message_id\":M,\"data\":\"...\"}  a user presses a button\n"
            "  GET  /sim/presses              every press, and how it was answered\n"
            "  POST /sim/redeliver            forget confirmations: old presses are handed out again\n"
            "  POST /sim/faults {\"fail_next\":N,\"status\":500,\"retry_after\":3,\"fail_rate\":0.2}\n"
            "  POST /sim/reset                forget messages and pending failures\n");
}

static int s_parse_args(sim_telegram_t *s, int argc, char **argv, struct sockaddr_in *sa, char *err, size_t errlen)
{
    int have_listen = 0;
    for (int i = 1; i < argc; i++) {
        const char *o, *v;
        if (sim_http_option(argc, argv, &i, &o, &v, err, errlen) != 0)
            return -1;
        if (strcmp(o, "--listen") == 0) {
            if (sim_http_parse_listen(v, 0, sa) != 0) {
                snprintf(err, errlen, "--listen wants IPV4:PORT");
                return -1;
            }
            have_listen = 1;
        } else if (strcmp(o, "--token") == 0) {
            if (!*v || strlen(v) >= sizeof s->token || strchr(v, '/')) {
                snprintf(err, errlen, "--token wants a bot token");
                return -1;
            }
            snprintf(s->token, sizeof s->token, "%s", v);
        } else if (strcmp(o, "--fail-rate") == 0) {
            char *end = NULL;
            /* a probability, parsed exactly enough: digits after the point scale to parts per million */
            unsigned long whole = strtoul(v, &end, 10);
            uint64_t frac = 0, scale = TG_PPM;
            if (end && *end == '.')
                for (end++; *end >= '0' && *end <= '9'; end++)
                    if (scale > 1)
                        scale /= 10, frac += (uint64_t) (*end - '0') * scale;
            if (!end || *end || whole > 1 || (whole == 1 && frac)) {
                snprintf(err, errlen, "--fail-rate wants 0..1");
                return -1;
            }
            s->fail_rate_ppm = (uint32_t) (whole * TG_PPM + frac);
        } else if (strcmp(o, "--log") == 0) {
            if (s->log)
                fclose(s->log);
            s->log = fopen(v, "a");
            if (!s->log) {
                snprintf(err, errlen, "--log: cannot open %s", v);
                return -1;
            }
        } else if (strcmp(o, "--seed") == 0) {
            s->rng = strtoull(v, NULL, 10);
        } else {
            snprintf(err, errlen, "unknown option %s", o);
            return -1;
        }
    }
    if (!have_listen || !s->token[0]) {
        snprintf(err, errlen, "--listen and --token are required");
        return -1;
    }
    return 0;
}

sim_telegram_t *sim_telegram_start(int argc, char **argv, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    sim_telegram_t *s = calloc(1, sizeof *s);
    if (!s || !(s->kept = calloc(TG_MAX_KEPT, sizeof *s->kept)) ||
        !(s->presses = calloc(TG_MAX_PRESSES, sizeof *s->presses))) {
        if (s)
            free(s->kept);
        free(s);
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->rng = 1;
    s->next_id = 1;
    s->next_update = 700000001;
    s->fail_status = 500;
    if (s_parse_args(s, argc, argv, &sa, err, errlen) != 0) {
        sim_telegram_stop(&s);
        return NULL;
    }
    sim_http_opts_t o = { .addr = &sa, .handler = s_handler, .cls = s, .timeout_s = 120 };
    s->daemon = sim_http_start(&o, &s->port);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on port %u", ntohs(sa.sin_port));
        sim_telegram_stop(&s);
        return NULL;
    }
    return s;
}

int sim_telegram_port(const sim_telegram_t *self) { return self->port; }

void sim_telegram_stop(sim_telegram_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_telegram_t *s = *self_p;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;   /* a long poll in progress answers now */
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s_clear(s);
    free(s->kept);
    free(s->presses);
    pthread_cond_destroy(&s->cv);
    if (s->log)
        fclose(s->log);
    pthread_mutex_destroy(&s->mu);
    memset(s->token, 0, sizeof s->token);
    free(s);
    *self_p = NULL;
}

int sim_telegram_main(int argc, char **argv)
{
    char err[256];
    sigset_t set;
    sim_http_block_signals(&set);
    sim_telegram_t *s = sim_telegram_start(argc, argv, err, sizeof err);
    if (!s)
        return sim_http_start_failed("telegram", err, s_usage);
    printf("kasa sim telegram: listening on http://127.0.0.1:%d\n", sim_telegram_port(s));
    fflush(stdout);
    sim_http_wait_signal(&set);
    sim_telegram_stop(&s);
    return 0;
}
