/* sim_telegram.c — `kasa sim telegram`: the Telegram Bot API's sendMessage on loopback
 * (see sim_telegram.h, sim.h).
 *
 * POST /bot{TOKEN}/sendMessage with a JSON body {chat_id, text, parse_mode, ...} (or the same as
 * query parameters) answers {"ok":true,"result":{"message_id":N,...}}; failures answer
 * {"ok":false,"error_code":N,"description":"..."} with the same HTTP status: 401 Unauthorized for a
 * wrong token, 400 for an empty chat_id or text, a text over 4096 bytes, or (parse_mode HTML) a tag
 * or entity Telegram would not parse; 429 with parameters.retry_after and 5xx when told to fail.
 * Every accepted message is kept (the last 10,000) and appended as one JSON line to --log.
 *
 * Control (loopback only): GET /sim/messages, POST /sim/faults {"fail_next":N,"status":500,
 * "retry_after":3,"fail_rate":0.2}, POST /sim/reset. */
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

typedef struct {
    long long message_id;
    char *chat_id;
    char *text;
    char *parse_mode;
    int64_t date;
} s_message_t;

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
        free(old->chat_id), free(old->text), free(old->parse_mode);
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
    jbuf_printf(b, ",\"date\":%" PRId64 "}", m->date);
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
    } else {
        s_message_t m;
        m.message_id = s->next_id++;
        m.chat_id = strdup(chat);
        m.text = strdup(text);
        m.parse_mode = strdup(mode ? mode : "");
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
        int numeric = (chat[0] == '-' || (chat[0] >= '0' && chat[0] <= '9')) && strspn(chat + 1, "0123456789") == strlen(chat + 1);
        jbuf_printf(&b, "{\"ok\":true,\"result\":{\"message_id\":%lld,\"from\":{\"id\":1,\"is_bot\":true,"
                    "\"first_name\":\"kasa sim\",\"username\":\"kasa_sim_bot\"},\"chat\":{\"id\":", m.message_id);
        if (numeric)
            jbuf_puts(&b, chat);
        else
            jbuf_str(&b, chat);
        jbuf_printf(&b, ",\"type\":\"%s\"},\"date\":%" PRId64 ",\"text\":", chat[0] == '-' ? "supergroup" : numeric ? "private" : "channel", m.date);
        jbuf_str(&b, text);
        jbuf_puts(&b, "}}");
        s_keep(s, &m);
        s->accepted++;
        rc = sim_http_reply_buf(conn, 200, &b);
    }
    if (have_doc)
        bson_destroy(&doc);
    return rc;
}

static void s_clear(sim_telegram_t *s)
{
    for (size_t i = 0; i < s->kept_count; i++) {
        s_message_t *m = &s->kept[(s->kept_head + i) % TG_MAX_KEPT];
        free(m->chat_id), free(m->text), free(m->parse_mode);
    }
    s->kept_count = s->kept_head = 0;
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
            "  POST /bot{TOKEN}/sendMessage   {chat_id, text, parse_mode}: Bot API answers; a wrong token gets 401\n"
            "  --fail-rate P                  answer 500 to a share P (0..1) of sendMessage calls\n"
            "  --log FILE                     append every accepted message as one JSON line\n"
            "control (loopback only):\n"
            "  GET  /sim/messages             the accepted messages (the last 10,000)\n"
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
    if (!s || !(s->kept = calloc(TG_MAX_KEPT, sizeof *s->kept))) {
        free(s);
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->rng = 1;
    s->next_id = 1;
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
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s_clear(s);
    free(s->kept);
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
