/* telegram.c — see telegram.h. */
#include "actors/telegram.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json.h"
#include "schema/log.h"
#include "schema/probe.h"

#define TELEGRAM_MAX_TEXT 4096
#define TELEGRAM_MAX_REPLY (256u * 1024u)

struct telegram_t {
    pthread_mutex_t mu;
    CURL *curl;
    struct curl_slist *headers;
    char *url;        /* {api_url}/bot{token}/ (a method name follows): holds the secret */
    long timeout_ms;
    char *token;
    int retry_after_s;
    long long last_message_id;
    jbuf_t reply;
    char curl_err[CURL_ERROR_SIZE];
};

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static void s_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

const char *telegram_result_name(telegram_result_t r)
{
    switch (r) {
    case TELEGRAM_OK: return "ok";
    case TELEGRAM_TRANSIENT: return "transient";
    case TELEGRAM_PERMANENT: return "permanent";
    }
    return "unknown";
}

telegram_t *telegram_new(const char *api_url, const char *token, long timeout_ms)
{
    if (!api_url || (strncmp(api_url, "https://", 8) != 0 && strncmp(api_url, "http://", 7) != 0)
        || !token || !*token || strlen(token) > 256 || strchr(token, '/') || timeout_ms <= 0)
        return NULL;
    pthread_once(&s_curl_once, s_curl_init);
    telegram_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    jbuf_init(&c->reply);
    size_t base = strlen(api_url);
    while (base > 0 && api_url[base - 1] == '/')
        base--;
    size_t ulen = base + strlen(token) + 32;
    c->url = malloc(ulen);
    c->token = strdup(token);
    c->curl = curl_easy_init();
    if (!c->url || !c->token || !c->curl) {
        telegram_destroy(&c);
        return NULL;
    }
    snprintf(c->url, ulen, "%.*s/bot%s/", (int) base, api_url, token);
    c->timeout_ms = timeout_ms;
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "kasa");
    curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    return c;
}

void telegram_destroy(telegram_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    telegram_t *c = *self_p;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    if (c->url) {
        OPENSSL_cleanse(c->url, strlen(c->url));
        free(c->url);
    }
    if (c->token) {
        OPENSSL_cleanse(c->token, strlen(c->token));
        free(c->token);
    }
    jbuf_free(&c->reply);
    pthread_mutex_destroy(&c->mu);
    free(c);
    *self_p = NULL;
}

static size_t s_on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    telegram_t *c = arg;
    size_t n = size * nmemb;
    if (c->reply.len + n > TELEGRAM_MAX_REPLY)
        return 0;
    jbuf_add(&c->reply, ptr, n);
    return n;
}

/* Replaces every occurrence of the token in s by "***" (in place; the result is never longer). */
static void s_scrub(const telegram_t *c, char *s)
{
    size_t tl = strlen(c->token);
    char *p;
    while (s && (p = strstr(s, c->token)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + tl, strlen(p + tl) + 1);
    }
}

/* POSTs body to {api}/bot{token}/{method} and classifies the answer; on TELEGRAM_OK *doc (if not
 * NULL) holds the parsed reply (bson_destroy it). extra_ms: added to the request timeout (a long
 * poll's own wait). Holds the client's mutex for the call. */
static telegram_result_t s_call(telegram_t *c, const char *method, const jbuf_t *body, long extra_ms, bson_t *doc_out,
                                char *err, size_t errlen)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->url, method);
    pthread_mutex_lock(&c->mu);
    c->retry_after_s = 0;
    c->curl_err[0] = '\0';
    jbuf_reset(&c->reply);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long) body->len);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms + extra_ms);
    int64_t t0_us = probe_now_us();
    CURLcode rc = curl_easy_perform(c->curl);
    OPENSSL_cleanse(url, sizeof url);
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    probe_call(PROBE_TELEGRAM, probe_now_us() - t0_us, rc == CURLE_OK && status < 500);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");

    telegram_result_t r;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", method, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
        r = TELEGRAM_TRANSIENT;
        status = 0;
    } else {
        bson_t local;
        bson_t *docp = doc_out ? doc_out : &local;   /* a bson_t is never copied by value */
        char perr[96];
        int parsed = json_parse(c->reply.data ? c->reply.data : "", c->reply.len, docp, perr, sizeof perr) == 0;
        bson_iter_t it;
        int ok = parsed && bson_iter_init_find(&it, docp, "ok") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
        const char *desc = parsed ? json_get_str(docp, "description") : NULL;
        int64_t v = 0;
        if (status == 200 && ok) {
            r = TELEGRAM_OK;
        } else {
            if (status == 429 || status >= 500 || status == 0 || status == 200)
                r = TELEGRAM_TRANSIENT;
            else if (status >= 400)
                r = TELEGRAM_PERMANENT;
            else
                r = TELEGRAM_TRANSIENT;
            if (status == 429 && json_get_i64(docp, "parameters.retry_after", &v) == 0 && v > 0 && v < 86400)
                c->retry_after_s = (int) v;
            snprintf(err, errlen, "%s: HTTP %ld%s%.200s", method, status, desc ? ": " : "", desc ? desc : "");
        }
        if (r != TELEGRAM_OK || !doc_out)
            bson_destroy(docp);   /* else the caller destroys it */
    }
    s_scrub(c, err);
    if (r != TELEGRAM_OK)
        log_warn("telegram.call_failed", "method=%s result=%s status=%ld", method, telegram_result_name(r), status);
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* Checks a text and a keyboard before anything is sent. 0, or -1 with the reason in err. */
static int s_check(const char *method, const char *html_text, const telegram_button_t *buttons, int n, char *err,
                   size_t errlen)
{
    if (!html_text || !*html_text) {
        snprintf(err, errlen, "%s: empty text", method);
        return -1;
    }
    if (strlen(html_text) > TELEGRAM_MAX_TEXT) {
        snprintf(err, errlen, "%s: text longer than %d bytes", method, TELEGRAM_MAX_TEXT);
        return -1;
    }
    if (n < 0 || n > TELEGRAM_MAX_BUTTONS || (n && !buttons)) {
        snprintf(err, errlen, "%s: 0..%d buttons", method, TELEGRAM_MAX_BUTTONS);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!buttons[i].text || !*buttons[i].text || !buttons[i].data || !*buttons[i].data ||
            strlen(buttons[i].data) > TELEGRAM_MAX_DATA) {
            snprintf(err, errlen, "%s: a button needs a label and 1..%d bytes of callback_data", method,
                     TELEGRAM_MAX_DATA);
            return -1;
        }
    return 0;
}

/* ,"text":..,"parse_mode":"HTML"[,"reply_markup":{"inline_keyboard":[[..]]}] */
static void s_text_and_keyboard(jbuf_t *b, const char *html_text, const telegram_button_t *buttons, int n)
{
    jbuf_puts(b, ",\"text\":");
    jbuf_str(b, html_text);
    jbuf_puts(b, ",\"parse_mode\":\"HTML\",\"disable_web_page_preview\":true");
    if (n <= 0)
        return;
    jbuf_puts(b, ",\"reply_markup\":{\"inline_keyboard\":[[");
    for (int i = 0; i < n; i++) {
        jbuf_puts(b, i ? ",{\"text\":" : "{\"text\":");
        jbuf_str(b, buttons[i].text);
        jbuf_puts(b, ",\"callback_data\":");
        jbuf_str(b, buttons[i].data);
        jbuf_puts(b, "}");
    }
    jbuf_puts(b, "]]}");
}

telegram_result_t telegram_send_keyboard(telegram_t *c, const char *chat_id, const char *html_text,
                                         const telegram_button_t *buttons, int n, long long *message_id,
                                         char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    if (!chat_id || !*chat_id) {
        snprintf(err, errlen, "sendMessage: empty chat_id or text");
        return TELEGRAM_PERMANENT;
    }
    if (s_check("sendMessage", html_text, buttons, n, err, errlen) != 0)
        return TELEGRAM_PERMANENT;
    jbuf_t body;
    jbuf_init(&body);
    jbuf_puts(&body, "{\"chat_id\":");
    jbuf_str(&body, chat_id);
    s_text_and_keyboard(&body, html_text, buttons, n);
    jbuf_puts(&body, "}");
    bson_t doc;
    telegram_result_t r = s_call(c, "sendMessage", &body, 0, &doc, err, errlen);
    jbuf_free(&body);
    if (r == TELEGRAM_OK) {
        int64_t v = 0;
        if (json_get_i64(&doc, "result.message_id", &v) == 0) {
            pthread_mutex_lock(&c->mu);
            c->last_message_id = v;
            pthread_mutex_unlock(&c->mu);
        }
        if (message_id)
            *message_id = v;
        bson_destroy(&doc);
    } else {
        log_warn("telegram.send_failed", "chat=%s result=%s", chat_id, telegram_result_name(r));
    }
    return r;
}

telegram_result_t telegram_send(telegram_t *c, const char *chat_id, const char *html_text,
                                char *err, size_t errlen)
{
    return telegram_send_keyboard(c, chat_id, html_text, NULL, 0, NULL, err, errlen);
}

telegram_result_t telegram_edit(telegram_t *c, const char *chat_id, long long message_id, const char *html_text,
                                const telegram_button_t *buttons, int n, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    if (!chat_id || !*chat_id || message_id <= 0) {
        snprintf(err, errlen, "editMessageText: no chat_id or message_id");
        return TELEGRAM_PERMANENT;
    }
    if (s_check("editMessageText", html_text, buttons, n, err, errlen) != 0)
        return TELEGRAM_PERMANENT;
    jbuf_t body;
    jbuf_init(&body);
    jbuf_puts(&body, "{\"chat_id\":");
    jbuf_str(&body, chat_id);
    jbuf_printf(&body, ",\"message_id\":%lld", message_id);
    s_text_and_keyboard(&body, html_text, buttons, n);
    jbuf_puts(&body, "}");
    telegram_result_t r = s_call(c, "editMessageText", &body, 0, NULL, err, errlen);
    jbuf_free(&body);
    if (r == TELEGRAM_PERMANENT && strstr(err, "message is not modified"))
        r = TELEGRAM_OK;   /* it already says this: an edit repeated after a restart */
    return r;
}

telegram_result_t telegram_answer(telegram_t *c, const char *query_id, const char *text, int alert, char *err,
                                  size_t errlen)
{
    char dummy[8];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    if (!query_id || !*query_id) {
        snprintf(err, errlen, "answerCallbackQuery: no callback_query_id");
        return TELEGRAM_PERMANENT;
    }
    char cut[204];
    snprintf(cut, sizeof cut, "%s", text ? text : "");
    jbuf_t body;
    jbuf_init(&body);
    jbuf_puts(&body, "{\"callback_query_id\":");
    jbuf_str(&body, query_id);
    jbuf_puts(&body, ",\"text\":");
    jbuf_str(&body, cut);
    jbuf_printf(&body, ",\"show_alert\":%s}", alert ? "true" : "false");
    telegram_result_t r = s_call(c, "answerCallbackQuery", &body, 0, NULL, err, errlen);
    jbuf_free(&body);
    return r;
}

/* Copies the string at path of doc into buf (cut), "" if missing. */
static void s_copy_str(const bson_t *doc, const char *path, char *buf, size_t len)
{
    const char *v = json_get_str(doc, path);
    snprintf(buf, len, "%s", v ? v : "");
}

int telegram_updates(telegram_t *c, int64_t offset, int timeout_s, telegram_press_t *out, int max,
                     int64_t *next_offset, telegram_result_t *rc, char *err, size_t errlen)
{
    char dummy[8];
    telegram_result_t rc_dummy;
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    if (!rc)
        rc = &rc_dummy;
    err[0] = '\0';
    if (timeout_s < 0)
        timeout_s = 0;
    jbuf_t body;
    jbuf_init(&body);
    jbuf_printf(&body, "{\"offset\":%lld,\"limit\":%d,\"timeout\":%d,\"allowed_updates\":[\"callback_query\"]}",
                (long long) offset, max > 0 && max < 100 ? max : 100, timeout_s);
    bson_t doc;
    *rc = s_call(c, "getUpdates", &body, (long) timeout_s * 1000, &doc, err, errlen);
    jbuf_free(&body);
    if (*rc != TELEGRAM_OK)
        return -1;
    int n = 0;
    for (int i = 0; i < 100; i++) {
        char path[96];
        int64_t id = 0, v = 0;
        snprintf(path, sizeof path, "result.%d.update_id", i);
        if (json_get_i64(&doc, path, &id) != 0)
            break;
        if (next_offset && id + 1 > *next_offset)
            *next_offset = id + 1;
        snprintf(path, sizeof path, "result.%d.callback_query.id", i);
        if (!json_get_str(&doc, path) || n >= max)
            continue;   /* not a press (allowed_updates does not reach updates made before it was set) */
        telegram_press_t *p = &out[n++];
        memset(p, 0, sizeof *p);
        p->update_id = id;
        s_copy_str(&doc, path, p->query_id, sizeof p->query_id);
        snprintf(path, sizeof path, "result.%d.callback_query.from.id", i);
        json_get_i64(&doc, path, &p->from_id);
        snprintf(path, sizeof path, "result.%d.callback_query.from.username", i);
        s_copy_str(&doc, path, p->from_name, sizeof p->from_name);
        if (!p->from_name[0]) {
            snprintf(path, sizeof path, "result.%d.callback_query.from.first_name", i);
            s_copy_str(&doc, path, p->from_name, sizeof p->from_name);
        }
        snprintf(path, sizeof path, "result.%d.callback_query.message.chat.id", i);
        if (json_get_i64(&doc, path, &v) == 0)
            snprintf(p->chat_id, sizeof p->chat_id, "%lld", (long long) v);
        else
            s_copy_str(&doc, path, p->chat_id, sizeof p->chat_id);
        snprintf(path, sizeof path, "result.%d.callback_query.message.message_id", i);
        if (json_get_i64(&doc, path, &v) == 0)
            p->message_id = v;
        snprintf(path, sizeof path, "result.%d.callback_query.data", i);
        s_copy_str(&doc, path, p->data, sizeof p->data);
    }
    bson_destroy(&doc);
    return n;
}

static int s_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
    atomic_int *stop = arg;
    return stop && atomic_load(stop) ? 1 : 0;   /* non-zero aborts the transfer */
}

void telegram_set_stop(telegram_t *c, atomic_int *stop)
{
    pthread_mutex_lock(&c->mu);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, stop);
    curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, stop ? 0L : 1L);
    pthread_mutex_unlock(&c->mu);
}

int telegram_retry_after_s(const telegram_t *c) { return c->retry_after_s; }
long long telegram_last_message_id(const telegram_t *c) { return c->last_message_id; }

char *telegram_escape_html(const char *text)
{
    jbuf_t b;
    jbuf_init(&b);
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '&': jbuf_puts(&b, "&amp;"); break;
        case '<': jbuf_puts(&b, "&lt;"); break;
        case '>': jbuf_puts(&b, "&gt;"); break;
        case '"': jbuf_puts(&b, "&quot;"); break;
        default: jbuf_add(&b, p, 1);
        }
    }
    return jbuf_take(&b);
}
