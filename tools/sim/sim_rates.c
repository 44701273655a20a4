/* sim_rates.c — `kasa sim rates`: a price source with Binance's spot market-data API on loopback
 * (see sim_rates.h, sim.h).
 *
 * GET /api/v3/ticker/price?symbol=TRXUSDT answers 200 {"symbol":"TRXUSDT","price":"0.10230000"}
 * (the price a decimal string with 8 decimals, as Binance writes it); without symbol, an array of
 * every price. A symbol outside ^[A-Z0-9-_.]{1,20}$ gets 400 {"code":-1100,"msg":"Illegal characters
 * found in parameter 'symbol'; ..."}, an unknown one 400 {"code":-1121,"msg":"Invalid symbol."}.
 * Faults (set by --fault or POST /sim/faults):
 *   down     503 {"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}
 *   stale    429 {"code":-1003,...} with Retry-After: N (the source refuses to answer for N s: the
 *            prices kasa holds age)
 *   garbage  200 with a body that is not a valid answer (default a price that is not a number; or
 *            the "body" given)
 *   slow     the right answer after slow_ms (default 8000: longer than kasa waits)
 *   ok       no fault
 *
 * Control (loopback only): POST /sim/price {"symbol":"TRXUSDT","price":"0.1023"}, POST /sim/faults
 * {"mode":"down","retry_after":60,"slow_ms":8000,"body":"..."}, GET /sim/stats. */
#include "tools/sim/sim_rates.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schema/json.h"
#include "schema/money.h"
#include "tools/sim/sim.h"
#include "tools/sim/sim_http.h"

#define RS_MAX_BODY 4096
#define RS_MAX_SYMBOLS 32

typedef enum { RS_OK, RS_DOWN, RS_STALE, RS_GARBAGE, RS_SLOW } s_mode_t;
static const char *const s_mode_names[] = { "ok", "down", "stale", "garbage", "slow" };

typedef struct {
    char symbol[24];
    char price[48];      /* as Binance writes it: 8 decimals */
} s_price_t;

struct sim_rates_t {
    pthread_mutex_t mu;
    struct MHD_Daemon *daemon;
    int port;
    s_price_t prices[RS_MAX_SYMBOLS];
    int count;
    s_mode_t mode;
    int retry_after_s;
    int slow_ms;
    char garbage[512];   /* "" = the default garbage */
    uint64_t requests, answered;
};

static enum MHD_Result s_binance_error(struct MHD_Connection *conn, unsigned status, int code, const char *msg,
                                       int retry_after_s)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"code\":%d,\"msg\":", code);
    jbuf_str(&b, msg);
    jbuf_puts(&b, "}");
    struct MHD_Response *r = sim_http_json(b.data);
    jbuf_free(&b);
    if (r && retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    return sim_http_send(conn, status, r);
}

/* A price as Binance writes it: exactly 8 decimals ("0.1023" → "0.10230000"). 0, or -1 if text is
 * not a positive decimal with at most 8 decimals. */
static int s_price_text(const char *text, char *out, size_t cap)
{
    money_atto_t v;
    char why[96];
    const char *dot = strchr(text, '.');
    if (money_parse(text, &v, why, sizeof why) != 0 || v == 0 || (dot && strlen(dot + 1) > 8))
        return -1;
    size_t whole = dot ? (size_t) (dot - text) : strlen(text), dec = dot ? strlen(dot + 1) : 0;
    snprintf(out, cap, "%.*s.%s%.*s", (int) whole, text, dot ? dot + 1 : "", (int) (8 - dec), "00000000");
    return 0;
}

static int s_symbol_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 20)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

static s_price_t *s_find(sim_rates_t *s, const char *symbol)
{
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->prices[i].symbol, symbol) == 0)
            return &s->prices[i];
    return NULL;
}

/* Sets symbol's price (adds the symbol). 0, or -1 (bad symbol or price, or full). */
static int s_set_price(sim_rates_t *s, const char *symbol, const char *price)
{
    char text[48];
    if (!s_symbol_ok(symbol) || strlen(symbol) >= sizeof s->prices[0].symbol || s_price_text(price, text, sizeof text) != 0)
        return -1;
    s_price_t *p = s_find(s, symbol);
    if (!p) {
        if (s->count >= RS_MAX_SYMBOLS)
            return -1;
        p = &s->prices[s->count++];
        snprintf(p->symbol, sizeof p->symbol, "%s", symbol);
    }
    snprintf(p->price, sizeof p->price, "%s", text);
    return 0;
}

static enum MHD_Result s_ticker(sim_rates_t *s, struct MHD_Connection *conn)
{
    const char *symbol = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "symbol");
    pthread_mutex_lock(&s->mu);
    s->requests++;
    s_mode_t mode = s->mode;
    int retry_after = s->retry_after_s, slow_ms = s->slow_ms;
    char garbage[512];
    snprintf(garbage, sizeof garbage, "%s", s->garbage);
    pthread_mutex_unlock(&s->mu);
    if (mode == RS_DOWN)
        return s_binance_error(conn, 503, -1001, "Internal error; unable to process your request. Please try again.", 0);
    if (mode == RS_STALE)
        return s_binance_error(conn, 429, -1003,
                               "Too many requests; current limit of IP is 6000 requests per minute. Please use "
                               "WebSocket Streams for live updates to avoid polling the API.", retry_after);
    if (mode == RS_SLOW)
        usleep((useconds_t) slow_ms * 1000);   /* the lock is not held: other requests go on */
    if (symbol && !s_symbol_ok(symbol))
        return s_binance_error(conn, 400, -1100,
                               "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.", 0);
    jbuf_t b;
    jbuf_init(&b);
    pthread_mutex_lock(&s->mu);
    s_price_t *p = symbol ? s_find(s, symbol) : NULL;
    if (symbol && !p) {
        pthread_mutex_unlock(&s->mu);
        jbuf_free(&b);
        return s_binance_error(conn, 400, -1121, "Invalid symbol.", 0);
    }
    if (mode == RS_GARBAGE && garbage[0]) {
        jbuf_puts(&b, garbage);
    } else if (mode == RS_GARBAGE) {
        jbuf_puts(&b, "{\"symbol\":");
        jbuf_str(&b, symbol ? symbol : "");
        jbuf_puts(&b, ",\"price\":\"not a number\"}");
    } else if (p) {
        jbuf_printf(&b, "{\"symbol\":\"%s\",\"price\":\"%s\"}", p->symbol, p->price);
    } else {
        jbuf_puts(&b, "[");
        for (int i = 0; i < s->count; i++)
            jbuf_printf(&b, "%s{\"symbol\":\"%s\",\"price\":\"%s\"}", i ? "," : "", s->prices[i].symbol,
                        s->prices[i].price);
        jbuf_puts(&b, "]");
    }
    s->answered++;
    pthread_mutex_unlock(&s->mu);
    return sim_http_reply_buf(conn, 200, &b);
}

static int s_mode_from(const char *name, s_mode_t *mode)
{
    for (size_t i = 0; i < sizeof s_mode_names / sizeof s_mode_names[0]; i++)
        if (strcmp(name, s_mode_names[i]) == 0) {
            *mode = (s_mode_t) i;
            return 0;
        }
    return -1;
}

static enum MHD_Result s_control(sim_rates_t *s, struct MHD_Connection *conn, const char *url, const char *method,
                                 const sim_request_t *req)
{
    if (!sim_http_is_loopback(conn))
        return sim_http_reply(conn, 403, "{\"error\":\"loopback only\"}");
    if (strcmp(method, "GET") == 0 && strcmp(url, "/sim/stats") == 0) {
        jbuf_t b;
        jbuf_init(&b);
        pthread_mutex_lock(&s->mu);
        jbuf_printf(&b, "{\"requests\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"mode\":\"%s\"}", s->requests, s->answered,
                    s_mode_names[s->mode]);
        pthread_mutex_unlock(&s->mu);
        return sim_http_reply_buf(conn, 200, &b);
    }
    if (strcmp(method, "POST") != 0 || (strcmp(url, "/sim/price") != 0 && strcmp(url, "/sim/faults") != 0))
        return sim_http_reply(conn, 404, "{\"error\":\"no such control endpoint\"}");
    bson_t doc;
    char perr[64];
    if (json_parse(req->body.data ? req->body.data : "", req->body.len, &doc, perr, sizeof perr) != 0) {
        bson_destroy(&doc);
        return sim_http_reply(conn, 400, "{\"error\":\"body must be a JSON object\"}");
    }
    int bad = 0;
    pthread_mutex_lock(&s->mu);
    if (strcmp(url, "/sim/price") == 0) {
        const char *sym = json_get_str(&doc, "symbol"), *price = json_get_str(&doc, "price");
        bad = !sym || !price || s_set_price(s, sym, price) != 0;
    } else {
        const char *mode = json_get_str(&doc, "mode"), *body = json_get_str(&doc, "body");
        int64_t v;
        if (mode)
            bad |= s_mode_from(mode, &s->mode) != 0;
        if (json_has(&doc, "retry_after"))
            bad |= json_get_i64(&doc, "retry_after", &v) != 0 || v < 0 || v > 3600 || ((s->retry_after_s = (int) v), 0);
        if (json_has(&doc, "slow_ms"))
            bad |= json_get_i64(&doc, "slow_ms", &v) != 0 || v < 0 || v > 60000 || ((s->slow_ms = (int) v), 0);
        if (body)
            bad |= strlen(body) >= sizeof s->garbage || (snprintf(s->garbage, sizeof s->garbage, "%s", body), 0);
        else if (json_has(&doc, "mode"))
            s->garbage[0] = '\0';
    }
    pthread_mutex_unlock(&s->mu);
    bson_destroy(&doc);
    return bad ? sim_http_reply(conn, 400, "{\"error\":\"bad value\"}") : sim_http_reply(conn, 200, "{\"ok\":true}");
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    sim_rates_t *s = cls;
    (void) version;
    enum MHD_Result rc;
    sim_request_t *req = sim_http_body(con_cls, upload, upload_size, RS_MAX_BODY, &rc);
    if (!req)
        return rc;
    if (req->too_big)
        return sim_http_reply(conn, 413, "{\"code\":-1000,\"msg\":\"Request too large.\"}");
    if (strncmp(url, "/sim/", 5) == 0)
        return s_control(s, conn, url, method, req);
    if (strcmp(url, "/api/v3/ticker/price") == 0 && strcmp(method, "GET") == 0)
        return s_ticker(s, conn);
    return s_binance_error(conn, 404, -1000, "Not found.", 0);
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa sim rates --listen 127.0.0.1:PORT [--price SYMBOL=PRICE ...] [--fault MODE]\n"
            "  GET /api/v3/ticker/price?symbol=S  Binance's answer {\"symbol\":S,\"price\":\"0.10230000\"}\n"
            "  --price SYMBOL=PRICE               a symbol and its price (repeat for more), e.g. TRXUSDT=0.1023\n"
            "  --fault MODE                       ok | down (503) | stale (429 + Retry-After) | garbage | slow\n"
            "control (loopback only):\n"
            "  POST /sim/price  {\"symbol\":\"TRXUSDT\",\"price\":\"0.1023\"}\n"
            "  POST /sim/faults {\"mode\":\"down\",\"retry_after\":60,\"slow_ms\":8000,\"body\":\"...\"}\n"
            "  GET  /sim/stats  requests seen and answered\n");
}

static int s_parse_args(sim_rates_t *s, int argc, char **argv, struct sockaddr_in *sa, char *err, size_t errlen)
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
        } else if (strcmp(o, "--price") == 0) {
            char sym[32];
            const char *eq = strchr(v, '=');
            if (!eq || (size_t) (eq - v) >= sizeof sym) {
                snprintf(err, errlen, "--price wants SYMBOL=PRICE");
                return -1;
            }
            snprintf(sym, sizeof sym, "%.*s", (int) (eq - v), v);
            if (s_set_price(s, sym, eq + 1) != 0) {
                snprintf(err, errlen, "--price %s: a symbol of A-Z 0-9 and a positive price with at most 8 decimals", v);
                return -1;
            }
        } else if (strcmp(o, "--fault") == 0) {
            if (s_mode_from(v, &s->mode) != 0) {
                snprintf(err, errlen, "--fault wants ok, down, stale, garbage or slow");
                return -1;
            }
        } else {
            snprintf(err, errlen, "unknown option %s", o);
            return -1;
        }
    }
    if (!have_listen) {
        snprintf(err, errlen, "--listen is required");
        return -1;
    }
    return 0;
}

sim_rates_t *sim_rates_start(int argc, char **argv, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    sim_rates_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->retry_after_s = 60;
    s->slow_ms = 8000;
    if (s_parse_args(s, argc, argv, &sa, err, errlen) != 0) {
        sim_rates_stop(&s);
        return NULL;
    }
    sim_http_opts_t o = { .addr = &sa, .handler = s_handler, .cls = s, .timeout_s = 120 };
    s->daemon = sim_http_start(&o, &s->port);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on port %u", ntohs(sa.sin_port));
        sim_rates_stop(&s);
        return NULL;
    }
    return s;
}

int sim_rates_port(const sim_rates_t *self) { return self->port; }

void sim_rates_stop(sim_rates_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_rates_t *s = *self_p;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->mu);
    free(s);
    *self_p = NULL;
}

int sim_rates_main(int argc, char **argv)
{
    char err[256];
    sigset_t set;
    sim_http_block_signals(&set);
    sim_rates_t *s = sim_rates_start(argc, argv, err, sizeof err);
    if (!s)
        return sim_http_start_failed("rates", err, s_usage);
    printf("kasa sim rates: listening on http://127.0.0.1:%d\n", sim_rates_port(s));
    fflush(stdout);
    sim_http_wait_signal(&set);
    sim_rates_stop(&s);
    return 0;
}
