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
    char *url;        /* {api_url}/bot{token}/sendMessage: holds the secret */
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
    snprintf(c->url, ulen, "%.*s/bot%s/sendMessage", (int) base, api_url, token);
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
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

telegram_result_t telegram_send(telegram_t *c, const char *chat_id, const char *html_text,
                                char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    if (!chat_id || !*chat_id || !html_text || !*html_text) {
        snprintf(err, errlen, "sendMessage: empty chat_id or text");
        return TELEGRAM_PERMANENT;
    }
    if (strlen(html_text) > TELEGRAM_MAX_TEXT) {
        snprintf(err, errlen, "sendMessage: text longer than %d bytes", TELEGRAM_MAX_TEXT);
        return TELEGRAM_PERMANENT;
    }
    jbuf_t body;
    jbuf_init(&body);
    jbuf_puts(&body, "{\"chat_id\":");
    jbuf_str(&body, chat_id);
    jbuf_puts(&body, ",\"text\":");
    jbuf_str(&body, html_text);
    jbuf_puts(&body, ",\"parse_mode\":\"HTML\",\"disable_web_page_preview\":true}");

    pthread_mutex_lock(&c->mu);
    c->retry_after_s = 0;
    c->curl_err[0] = '\0';
    jbuf_reset(&c->reply);
    curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long) body.len);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    int64_t t0_us = probe_now_us();
    CURLcode rc = curl_easy_perform(c->curl);
    long http_status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http_status);
    probe_call(PROBE_TELEGRAM, probe_now_us() - t0_us, rc == CURLE_OK && http_status < 500);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
    jbuf_free(&body);

    telegram_result_t r;
    long status = 0;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "sendMessage: %s", c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
        r = TELEGRAM_TRANSIENT;
    } else {
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        bson_t doc;
        char perr[96];
        int parsed = json_parse(c->reply.data ? c->reply.data : "", c->reply.len, &doc, perr, sizeof perr) == 0;
        bson_iter_t it;
        int ok = parsed && bson_iter_init_find(&it, &doc, "ok") && BSON_ITER_HOLDS_BOOL(&it)
                 && bson_iter_bool(&it);
        const char *desc = parsed ? json_get_str(&doc, "description") : NULL;
        int64_t v = 0;
        if (status == 200 && ok) {
            r = TELEGRAM_OK;
            if (json_get_i64(&doc, "result.message_id", &v) == 0)
                c->last_message_id = v;
        } else {
            if (status == 429 || status >= 500 || status == 0 || status == 200)
                r = TELEGRAM_TRANSIENT;
            else if (status >= 400)
                r = TELEGRAM_PERMANENT;
            else
                r = TELEGRAM_TRANSIENT;
            if (status == 429 && json_get_i64(&doc, "parameters.retry_after", &v) == 0 && v > 0 && v < 86400)
                c->retry_after_s = (int) v;
            snprintf(err, errlen, "sendMessage: HTTP %ld%s%.200s", status, desc ? ": " : "", desc ? desc : "");
        }
        bson_destroy(&doc);
    }
    s_scrub(c, err);
    if (r != TELEGRAM_OK)
        log_warn("telegram.send_failed", "chat=%s result=%s status=%ld", chat_id, telegram_result_name(r), status);
    pthread_mutex_unlock(&c->mu);
    return r;
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
