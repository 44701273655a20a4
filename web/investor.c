/* investor.c — the investor panel's JSON API (see investor.h and docs-investor.md).
 *
 * Every handler starts from the session cookie; a state-changing call also needs the session's
 * CSRF token in X-CSRF-Token. An investor's login comes only from their session, never from the
 * request, and every lookup is filtered by it: another login's deposit or address is "not found".
 *
 * MT5: the handlers of /api/login and /api/me never call MT5 themselves. They hand the request to
 * the accounts actors (actors/accounts.h), which own the MT5 clients, and suspend the connection
 * (http_later): a slow MT5 answer holds no HTTP thread. The answer is built and sent from the
 * actor's thread when it comes (the session store is thread-safe). */
#include "web/investor.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "actors/cobo.h"
#include "actors/mt5.h"
#include "actors/views.h"
#include "actors/withdrawals.h"
#include "schema/json.h"
#include "schema/money.h"
#include "schema/log.h"
#include "web/api.h"
#include "web/qr.h"
#include "web/ratelimit.h"
#include "web/session_mongo.h"

#define S_DEPOSITS_LIMIT 100

struct investor_t {
    pipeline_t *pipeline;
    wallets_t *wallets;
    events_t *events;
    const config_t *cfg;
    session_store_t *sessions;
    accounts_t *accounts;
    views_t *views;                     /* the deposits across nodes (one node: its registry) */
    throttle_t *throttle;               /* failed logins */
    ratelimit_t *per_session, *per_ip;   /* MT5-bound requests (/api/login, /api/me) */
    int secure_cookie;
};

/* ---- helpers ------------------------------------------------------------------------------------ */

static void s_reply_retry(http_response_t *res, int status, const char *reason, int64_t retry_after_s)
{
    api_reply_retry(res, status, reason, retry_after_s);
}

/* A 5xx the investor sees: a generic reason and the request id they can quote; the inner reason
 * (Cobo's, MT5's or the journal's words) goes to the log under that id, never to the investor.
 * retry_after_s > 0 adds Retry-After. */
static void s_reply_fail(http_response_t *res, const http_request_t *req, int status, const char *what,
                         const char *reason, const char *detail, int64_t retry_after_s)
{
    log_warn(what, "req=%s ip=%s status=%d reason=\"%s\"", http_request_id(req), http_client_ip(req), status,
             detail ? detail : "-");
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"error\":");
    jbuf_str(&b, reason);
    jbuf_puts(&b, ",\"request_id\":");
    jbuf_str(&b, http_request_id(req));
    jbuf_puts(&b, "}");
    http_reply_json(res, status, jbuf_take(&b));
    if (retry_after_s > 0) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long) retry_after_s);
        http_add_header(res, "Retry-After", v);
    }
}

/* An MT5-bound request may go on: 0, or -1 after answering 429 (Retry-After) when its session (sid,
 * NULL for none) or its client IP is over its rate. Nothing else is counted. */
static int s_rate(investor_t *self, const http_request_t *req, const char *sid, http_response_t *res)
{
    char key[80];
    int64_t wait_ms = 0;
    const char *ip = http_client_ip(req);
    int limited = 0;
    if (sid) {
        snprintf(key, sizeof key, "s:%.32s", sid);   /* half the id: enough to tell sessions apart */
        limited = ratelimit_take(self->per_session, key, &wait_ms) != 0;
    }
    if (!limited) {
        snprintf(key, sizeof key, "i:%s", ip ? ip : "");
        limited = ratelimit_take(self->per_ip, key, &wait_ms) != 0;
    }
    if (!limited)
        return 0;
    s_reply_retry(res, 429, "too many requests; slow down", (wait_ms + 999) / 1000);
    return -1;
}

/* The caller's session: 0 with *info filled, or -1 after answering 401 (or 403 for a missing or
 * wrong CSRF token when csrf is set). */
static int s_auth(investor_t *self, const http_request_t *req, http_response_t *res,
                  session_info_t *info, int csrf)
{
    return api_auth(self->sessions, req, res, info, csrf);
}

static int s_json_body(const http_request_t *req, http_response_t *res, bson_t *doc)
{
    return api_json_body(req, res, doc);
}

static const char *s_network_label(const char *token)
{
    if (strcmp(token, "TRON_USDT") == 0 || strcmp(token, "TTRON_USDT") == 0) return "TRC20";
    if (strcmp(token, "ETH_USDT") == 0 || strcmp(token, "SETH_USDT") == 0) return "ERC20";
    if (strcmp(token, "BSC_USDT") == 0) return "BEP20";
    if (strcmp(token, "SOL_USDT") == 0) return "SPL";
    return "native";
}

static const char *s_asset(const char *token, const char *chain)
{
    const char *u = strrchr(token, '_');
    if (u && strcmp(chain ? chain : "", token) != 0)
        return u + 1;                      /* TRON_USDT -> USDT */
    if (strcmp(token, "TRON") == 0 || strcmp(token, "TTRON") == 0) return "TRX";
    if (strcmp(token, "BSC_BNB") == 0) return "BNB";
    return token;                          /* ETH, SOL */
}

/* ---- login, logout, session -------------------------------------------------------------------- */

/* Answers 200 {"login":L,"csrf":"..."}: who is signed in, and the token their writes must carry. */
static void s_reply_session(http_response_t *res, uint64_t login, const char *csrf)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"login\":%llu,\"csrf\":", (unsigned long long) login);
    jbuf_str(&b, csrf);
    jbuf_puts(&b, "}");
    http_reply_json(res, 200, jbuf_take(&b));
}

/* A login waiting for its password check. */
typedef struct {
    investor_t *self;
    http_later_t *later;
    uint64_t login;
    netaddr_t client;
    char ip[NETADDR_TEXT];
    char rid[17];                   /* the request id, for the log */
    char old_sid[SESSION_ID_HEX];   /* the session the browser had, ended on success ("" for none) */
} s_login_wait_t;

/* The answer to a login once MT5 has judged it (on an accounts actor's thread, or on the HTTP
 * thread when the request was not taken). */
static void s_login_answer(investor_t *self, const s_login_wait_t *w, const accounts_answer_t *a,
                           http_response_t *res)
{
    const char *ip = w->ip[0] ? w->ip : "-";
    unsigned long long login = (unsigned long long) w->login;
    if (a->result == ACCOUNTS_REFUSED) {
        /* Same answer for an unknown login as for a wrong password: no account probing.
         * The failure is already counted (throttle_attempt). */
        log_info("investor.login_failed", "login=%llu ip=%s result=%s", login, ip, a->mt5_result);
        http_reply_error(res, 401, "wrong login or password");
        return;
    }
    if (a->result != ACCOUNTS_OK) {
        throttle_forgive(self->throttle, w->login, &w->client);
        if (a->result == ACCOUNTS_UNAVAILABLE) {
            log_warn("investor.login_unavailable", "req=%s login=%llu result=%s reason=\"%s\"", w->rid, login,
                     a->mt5_result, a->why);
            s_reply_retry(res, 503, "the trading server is not reachable; try again", 10);
        } else {
            s_reply_retry(res, 503, "the trading server is busy; try again", 5);
        }
        return;
    }
    throttle_success(self->throttle, w->login, &w->client);
    if (w->old_sid[0])
        session_end(self->sessions, w->old_sid);
    char sid[SESSION_ID_HEX];
    session_info_t info;
    if (session_create(self->sessions, w->login, sid) != 0 || session_peek(self->sessions, sid, &info) != 0) {
        http_reply_error(res, 500, "could not start a session");
        return;
    }
    char cookie[256];
    session_cookie(self->sessions, sid, self->secure_cookie, cookie, sizeof cookie);
    http_add_header(res, "Set-Cookie", cookie);
    log_info("investor.login", "login=%llu ip=%s", login, ip);
    s_reply_session(res, w->login, info.csrf);
}

static void s_login_done(void *arg, const accounts_answer_t *a)
{
    s_login_wait_t *w = arg;
    http_response_t res;
    memset(&res, 0, sizeof res);
    s_login_answer(w->self, w, a, &res);
    http_later_reply(w->later, &res);
    free(w);
}

static void s_login(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    bson_t doc;
    if (s_json_body(req, res, &doc) != 0)
        return;
    char login_text[32] = "";
    const char *ls = json_get_str(&doc, "login");
    int64_t li;
    if (ls)
        snprintf(login_text, sizeof login_text, "%s", ls);
    else if (json_get_i64(&doc, "login", &li) == 0 && li > 0)
        snprintf(login_text, sizeof login_text, "%lld", (long long) li);
    const char *pw = json_get_str(&doc, "password");
    accounts_request_t ask = {.ask = ACCOUNTS_CHECK_PASSWORD,
                              .investor_password = self->cfg->investor_password_login};
    if (accounts_parse_login(login_text, &ask.login) != 0 || !pw || !*pw || strlen(pw) >= sizeof ask.password) {
        bson_destroy(&doc);
        http_reply_error(res, 400, "login (digits) and password are required");
        return;
    }
    snprintf(ask.password, sizeof ask.password, "%s", pw);
    bson_destroy(&doc);

    if (s_rate(self, req, NULL, res) != 0) {
        explicit_bzero(ask.password, sizeof ask.password);
        return;
    }
    const char *ip = http_client_ip(req);
    const netaddr_t *client = http_client_addr(req);
    int64_t wait_s = 0;
    if (throttle_attempt(self->throttle, ask.login, client, &wait_s) != 0) {
        explicit_bzero(ask.password, sizeof ask.password);
        log_warn("investor.login_limited", "login=%llu ip=%s retry_after=%lld", (unsigned long long) ask.login,
                 ip, (long long) wait_s);
        s_reply_retry(res, 429, "too many failed logins; try again later", wait_s);
        return;
    }
    /* From here the attempt counts as a failure until it is known to be something else. */
    s_login_wait_t *w = calloc(1, sizeof *w);
    http_later_t *later = w ? http_later(req, res) : NULL;
    accounts_answer_t a;
    memset(&a, 0, sizeof a);
    a.mt5_result = "";
    a.result = ACCOUNTS_BUSY;
    if (!later) {
        explicit_bzero(ask.password, sizeof ask.password);
        s_login_wait_t tmp = {.self = self, .login = ask.login, .client = *client};
        snprintf(tmp.ip, sizeof tmp.ip, "%s", ip);
        snprintf(tmp.rid, sizeof tmp.rid, "%s", http_request_id(req));
        s_login_answer(self, &tmp, &a, res);
        free(w);
        return;
    }
    w->self = self;
    w->later = later;
    w->login = ask.login;
    w->client = *client;
    snprintf(w->ip, sizeof w->ip, "%s", ip);
    snprintf(w->rid, sizeof w->rid, "%s", http_request_id(req));
    const char *old = http_cookie(req, SESSION_COOKIE);
    if (old && strlen(old) < sizeof w->old_sid)
        snprintf(w->old_sid, sizeof w->old_sid, "%s", old);
    a.result = accounts_submit(self->accounts, &ask, s_login_done, w);   /* wipes the password */
    if (a.result != ACCOUNTS_OK)
        s_login_done(w, &a);   /* not taken: answered now */
}

static void s_logout(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 1) != 0)
        return;
    session_end(self->sessions, http_cookie(req, SESSION_COOKIE));
    char cookie[256];
    session_cookie(self->sessions, NULL, self->secure_cookie, cookie, sizeof cookie);
    http_add_header(res, "Set-Cookie", cookie);
    log_info("investor.logout", "login=%llu", (unsigned long long) info.login);
    http_reply_json(res, 200, strdup("{\"ok\":true}"));
}

static void s_session(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    s_reply_session(res, info.login, info.csrf);
}

/* ---- account ------------------------------------------------------------------------------------ */

typedef struct {
    http_later_t *later;
    uint64_t login;
    char rid[17];   /* the request id, for the log */
} s_me_wait_t;

static void s_me_answer(uint64_t login, const char *rid, const accounts_answer_t *a, http_response_t *res)
{
    if (a->result != ACCOUNTS_OK) {
        if (a->result == ACCOUNTS_UNAVAILABLE || a->result == ACCOUNTS_REFUSED) {
            log_warn("investor.me_failed", "req=%s login=%llu result=%s reason=\"%s\"", rid,
                     (unsigned long long) login, a->mt5_result, a->why);
            s_reply_retry(res, 503, "the trading server is not reachable; try again", 10);
        } else {
            s_reply_retry(res, 503, "the trading server is busy; try again", 5);
        }
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"login\":%llu,\"name\":", (unsigned long long) login);
    jbuf_str(&b, a->name);
    jbuf_puts(&b, ",\"balance\":");
    jbuf_str(&b, a->balance);
    jbuf_puts(&b, ",\"credit\":");
    jbuf_str(&b, a->credit);
    jbuf_puts(&b, ",\"equity\":");
    jbuf_str(&b, a->equity[0] ? a->equity : NULL);
    jbuf_puts(&b, ",\"currency\":");
    jbuf_str(&b, a->currency[0] ? a->currency : NULL);
    if (a->digits >= 0)
        jbuf_printf(&b, ",\"digits\":%d}", a->digits);
    else
        jbuf_puts(&b, ",\"digits\":null}");   /* no group: MT5's own text, never a guessed digit count */
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_me_done(void *arg, const accounts_answer_t *a)
{
    s_me_wait_t *w = arg;
    http_response_t res;
    memset(&res, 0, sizeof res);
    s_me_answer(w->login, w->rid, a, &res);
    http_later_reply(w->later, &res);
    free(w);
}

static void s_me(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0 || s_rate(self, req, http_cookie(req, SESSION_COOKIE), res) != 0)
        return;
    accounts_answer_t a;
    memset(&a, 0, sizeof a);
    a.mt5_result = "";
    a.result = ACCOUNTS_BUSY;
    s_me_wait_t *w = calloc(1, sizeof *w);
    http_later_t *later = w ? http_later(req, res) : NULL;
    if (!later) {
        free(w);
        s_me_answer(info.login, http_request_id(req), &a, res);
        return;
    }
    w->later = later;
    w->login = info.login;
    snprintf(w->rid, sizeof w->rid, "%s", http_request_id(req));
    accounts_request_t ask = {.ask = ACCOUNTS_READ, .login = info.login};
    a.result = accounts_submit(self->accounts, &ask, s_me_done, w);
    if (a.result != ACCOUNTS_OK)
        s_me_done(w, &a);   /* not taken: answered now */
}

/* ---- wallets ------------------------------------------------------------------------------------ */

static void s_wallet_json(jbuf_t *b, const char *token, const char *chain, const char *address)
{
    jbuf_puts(b, "{\"token\":");
    jbuf_str(b, token);
    jbuf_puts(b, ",\"chain\":");
    jbuf_str(b, chain);
    jbuf_puts(b, ",\"asset\":");
    jbuf_str(b, s_asset(token, chain));
    jbuf_puts(b, ",\"network\":");
    jbuf_str(b, s_network_label(token));
    jbuf_puts(b, ",\"address\":");
    jbuf_str(b, address);
    if (address) {
        jbuf_puts(b, ",\"qr\":");
        char url[96];
        snprintf(url, sizeof url, "/api/wallets/%s/qr.svg", token);
        jbuf_str(b, url);
    } else {
        jbuf_puts(b, ",\"qr\":null");
    }
    jbuf_puts(b, "}");
}

static void s_wallets_list(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"wallets\":[");
    for (int i = 0; i < wallets_offered_count(self->wallets); i++) {
        const char *token = wallets_offered(self->wallets, i);
        char address[128];
        int have = wallets_lookup(self->wallets, info.login, token, address, sizeof address) == 0;
        if (i)
            jbuf_puts(&b, ",");
        s_wallet_json(&b, token, wallets_chain_for(self->wallets, token), have ? address : NULL);
    }
    jbuf_puts(&b, "]}");
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_wallets_create(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 1) != 0)
        return;
    bson_t doc;
    if (s_json_body(req, res, &doc) != 0)
        return;
    char why[200];
    char token[40] = "";
    const char *t = json_get_str(&doc, "chain");
    if (!t)
        t = json_get_str(&doc, "token");
    if (t)
        snprintf(token, sizeof token, "%s", t);
    bson_destroy(&doc);
    if (!token[0] || !wallets_is_offered(self->wallets, token)) {
        http_reply_error(res, 400, "chain must be one of the offered networks (see GET /api/wallets)");
        return;
    }
    /* A chain id given ("TRON"): answer for the first offered token on that chain. */
    int exact = 0;
    for (int i = 0; i < wallets_offered_count(self->wallets); i++)
        exact |= strcmp(wallets_offered(self->wallets, i), token) == 0;
    for (int i = 0; !exact && i < wallets_offered_count(self->wallets); i++) {
        const char *o = wallets_offered(self->wallets, i);
        if (strcmp(wallets_chain_for(self->wallets, o), token) == 0) {
            snprintf(token, sizeof token, "%s", o);
            break;
        }
    }
    char address[128];
    int existed = wallets_lookup(self->wallets, info.login, token, address, sizeof address) == 0;
    wallets_result_t r = existed ? WALLETS_OK
                                 : wallets_address(self->wallets, info.login, token, address, sizeof address, why, sizeof why);
    switch (r) {
    case WALLETS_OK: {
        jbuf_t b;
        jbuf_init(&b);
        s_wallet_json(&b, token, wallets_chain_for(self->wallets, token), address);
        http_reply_json(res, existed ? 200 : 201, jbuf_take(&b));
        return;
    }
    case WALLETS_ERR_CHAIN:
        http_reply_error(res, 400, why);
        return;
    case WALLETS_ERR_COBO:
        s_reply_fail(res, req, 502, "investor.wallet_refused", "the address service refused the request; "
                     "please contact support and quote the request id", why, 0);
        return;
    default:
        s_reply_fail(res, req, 503, "investor.wallet_unavailable", "no address could be made right now; try again",
                     why, 5);
        return;
    }
}

/* GET /api/wallets/{token or chain}/qr.svg */
static void s_wallet_sub(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    const char *rest = http_path(req) + strlen("/api/wallets/");
    const char *slash = strchr(rest, '/');
    char token[40];
    if (!slash || strcmp(slash, "/qr.svg") != 0 || (size_t) (slash - rest) >= sizeof token || slash == rest) {
        http_reply_error(res, 404, "not found");
        return;
    }
    memcpy(token, rest, (size_t) (slash - rest));
    token[slash - rest] = '\0';
    char address[128];
    if (!wallets_is_offered(self->wallets, token) ||
        wallets_lookup(self->wallets, info.login, token, address, sizeof address) != 0) {
        http_reply_error(res, 404, "no such address");
        return;
    }
    size_t len;
    char *svg = qr_svg(address, &len, NULL);
    if (!svg) {
        http_reply_error(res, 500, "could not draw the QR code");
        return;
    }
    http_reply(res, 200, "image/svg+xml", svg, len);
    free(svg);
    http_add_header(res, "Cache-Control", "no-store");   /* never kept by a browser after logout */
}

/* ---- deposits ----------------------------------------------------------------------------------- */

/* A deposit as the investor sees it; stale >= 0 adds "stale" (a deposit asked for alone). */
static void s_deposit_json(jbuf_t *b, const deposit_view_t *d, int stale)
{
    jbuf_puts(b, "{");
    pipeline_view_json(b, d);
    char credited[64];
    int done = d->state == DEPOSIT_CREDITED || d->state == DEPOSIT_NOTIFIED;
    if (done && d->credit_minor > 0 && money_format_minor(d->credit_minor, d->digits, credited, sizeof credited) == 0) {
        jbuf_puts(b, ",\"credited\":");
        jbuf_str(b, credited);
    } else {
        jbuf_puts(b, ",\"credited\":null");
    }
    if (d->ticket)
        jbuf_printf(b, ",\"ticket\":%llu", (unsigned long long) d->ticket);
    else
        jbuf_puts(b, ",\"ticket\":null");
    jbuf_puts(b, ",\"tx_hash\":");
    jbuf_str(b, d->tx_hash[0] ? d->tx_hash : NULL);
    jbuf_printf(b, ",\"created_ms\":%lld,\"updated_ms\":%lld", (long long) d->created_ms, (long long) d->updated_ms);
    if (stale >= 0)
        jbuf_printf(b, ",\"stale\":%s", stale ? "true" : "false");
    jbuf_puts(b, "}");
}

typedef struct {
    jbuf_t *b;
    int n;
} s_list_t;

static void s_deposit_each(void *arg, const deposit_view_t *d)
{
    s_list_t *l = arg;
    if (l->n++)
        jbuf_puts(l->b, ",");
    s_deposit_json(l->b, d, -1);
}

static void s_deposit_entry(void *arg, const registry_entry_t *e)
{
    s_deposit_each(arg, &e->view);
}

/* GET /api/deposits: the investor's newest deposits; in cluster mode as the cluster has them
 * (actors/views.h), with "stale": true when MongoDB did not answer and this node's alone are shown. */
static void s_deposits(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"deposits\":[");
    s_list_t l = {.b = &b};
    int source = VIEWS_LOCAL;
    if (views_cluster(self->views)) {
        views_query_t q = { .login = info.login, .state = -1, .limit = S_DEPOSITS_LIMIT };
        source = views_list(self->views, &q, NULL, NULL, s_deposit_entry, &l, NULL);
    } else {
        pipeline_deposits(self->pipeline, info.login, S_DEPOSITS_LIMIT, s_deposit_each, &l);
    }
    jbuf_printf(&b, "],\"stale\":%s,\"cluster\":%s}", source == VIEWS_STALE || source < 0 ? "true" : "false",
                views_cluster(self->views) ? "true" : "false");
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_deposit_one(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    const char *id = http_path(req) + strlen("/api/deposits/");
    registry_entry_t *e = malloc(sizeof *e);
    views_source_t source = VIEWS_LOCAL;
    /* Someone else's deposit is answered exactly like an unknown one. */
    if (!e || !*id || strlen(id) >= sizeof e->view.tx_id || views_get(self->views, id, e, &source) <= 0 ||
        e->view.login != info.login) {
        free(e);
        http_reply_error(res, 404, "no such deposit");
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    s_deposit_json(&b, &e->view, source == VIEWS_STALE);
    free(e);
    http_reply_json(res, 200, jbuf_take(&b));
}

/* ---- live events -------------------------------------------------------------------------------- */

typedef struct {
    investor_t *self;
    char sid[SESSION_ID_HEX];
} s_stream_auth_t;

static int s_stream_alive(void *arg)
{
    s_stream_auth_t *a = arg;
    return session_peek(a->self->sessions, a->sid, NULL) == 0;
}

static void s_events(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    s_stream_auth_t *a = calloc(1, sizeof *a);
    if (!a) {
        http_reply_error(res, 503, "out of memory");
        return;
    }
    a->self = self;
    snprintf(a->sid, sizeof a->sid, "%s", http_cookie(req, SESSION_COOKIE));
    events_stream(self->events, info.login, res, s_stream_alive, a, free);
}

/* ---- wiring ------------------------------------------------------------------------------------- */

static void s_learn_link(void *arg, uint64_t lsn, const record_t *r)
{
    (void) lsn;
    if (r->kind == RECORD_ADDRESS_LINK)
        wallets_learn((wallets_t *) arg, r->address, r->chain_id, r->login);
}

static uint64_t s_login_of(void *arg, const char *address)
{
    return wallets_login_of((wallets_t *) arg, address);
}

/* ---- withdrawals ---------------------------------------------------------------------------------- */

#define S_TOKEN_CACHE 16

/* Tokens' decimals as Cobo's token metadata gives them (read once per token, then kept). */
static pthread_mutex_t s_decimals_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char token[40];
    int decimals;
} s_decimals[S_TOKEN_CACHE];

/* The token's decimals: 0 with *out, or -1 (Cobo could not say; why filled). */
static int s_token_decimals(const config_t *cfg, const char *token, int *out, char *why, size_t whylen)
{
    pthread_mutex_lock(&s_decimals_lock);
    for (int i = 0; i < S_TOKEN_CACHE; i++)
        if (strcmp(s_decimals[i].token, token) == 0) {
            *out = s_decimals[i].decimals;
            pthread_mutex_unlock(&s_decimals_lock);
            return 0;
        }
    pthread_mutex_unlock(&s_decimals_lock);
    cobo_client_t *c = cobo_client_new(cfg->cobo_api_url, cfg->cobo_api_key, cfg->cobo_api_secret,
                                       cfg->cobo_webhook_pubkey, config_cobo_timeout_ms(cfg), why, whylen);
    int rc = c && cobo_get_token_decimal(c, token, out, why, whylen) == COBO_OK ? 0 : -1;
    cobo_client_destroy(&c);
    if (rc != 0)
        return -1;
    pthread_mutex_lock(&s_decimals_lock);
    for (int i = 0; i < S_TOKEN_CACHE; i++)
        if (!s_decimals[i].token[0]) {
            snprintf(s_decimals[i].token, sizeof s_decimals[i].token, "%s", token);
            s_decimals[i].decimals = *out;
            break;
        }
    pthread_mutex_unlock(&s_decimals_lock);
    return 0;
}

typedef struct {
    investor_t *self;
    http_later_t *later;
    uint64_t login;
    int commit;             /* 1: POST /api/withdrawals (journal it); 0: the quote */
    char token[40], address[128], amount[48];
    char rid[17], origin[64];
} s_wd_wait_t;

static void s_quote_json(jbuf_t *b, const s_wd_wait_t *w, const char *chain, const char *currency,
                         const withdrawal_quote_t *q)
{
    jbuf_puts(b, "\"amount\":");
    jbuf_str(b, q->amount_text);
    jbuf_puts(b, ",\"currency\":");
    jbuf_str(b, currency);
    jbuf_puts(b, ",\"fee\":");
    jbuf_str(b, q->fee_text);
    jbuf_puts(b, ",\"token\":");
    jbuf_str(b, w->token);
    jbuf_puts(b, ",\"chain\":");
    jbuf_str(b, chain);
    jbuf_puts(b, ",\"token_amount\":");
    jbuf_str(b, q->token_text);
    jbuf_puts(b, ",\"address\":");
    jbuf_str(b, w->address);
}

/* The account's facts are in a (or MT5 did not give them): the checks, then the quote or the request. */
static void s_wd_answer(const s_wd_wait_t *w, const accounts_answer_t *a, http_response_t *res)
{
    investor_t *self = w->self;
    if (a->result == ACCOUNTS_REFUSED) {
        http_reply_error(res, 403, "the MT5 password is not right");
        return;
    }
    if (a->result != ACCOUNTS_OK || a->digits < 0 || !a->margin_free[0]) {
        log_warn("investor.withdraw_unavailable", "req=%s login=%llu result=%s reason=\"%s\"", w->rid,
                 (unsigned long long) w->login, a->mt5_result, a->why);
        s_reply_retry(res, 503, "the trading server cannot tell the account's free margin now; try again", 10);
        return;
    }
    char why[200] = "";
    int decimals = 0;
    int64_t free_minor = 0;
    if (mt5_parse_amount(a->margin_free, a->digits, &free_minor) != 0)
        free_minor = 0;
    if (s_token_decimals(self->cfg, w->token, &decimals, why, sizeof why) != 0) {
        log_warn("investor.withdraw_unavailable", "req=%s token=%s reason=\"%s\"", w->rid, w->token, why);
        s_reply_retry(res, 503, "the token's details cannot be read now; try again", 10);
        return;
    }
    char actor[64];
    snprintf(actor, sizeof actor, "investor:%llu", (unsigned long long) w->login);
    const char *chain = wallets_chain_for(self->wallets, w->token);
    pipeline_withdraw_ask_t ask = {
        .login = w->login, .token_id = w->token, .chain_id = chain ? chain : "", .address = w->address,
        .amount = w->amount, .currency = a->currency, .digits = a->digits, .token_decimals = decimals,
        .free_margin_minor = free_minor, .actor = actor, .origin = w->origin,
    };
    withdrawal_quote_t q;
    jbuf_t b;
    jbuf_init(&b);
    if (!w->commit) {
        int qrc = pipeline_withdraw_quote(self->pipeline, &ask, &q, why, sizeof why);
        if (qrc != 0) {
            jbuf_free(&b);
            http_reply_error(res, qrc == -2 ? 503 : 422, why);   /* -2: cluster mode, MongoDB silent */
            return;
        }
        jbuf_puts(&b, "{");
        s_quote_json(&b, w, ask.chain_id, a->currency, &q);
        jbuf_puts(&b, "}");
        http_reply_json(res, 200, jbuf_take(&b));
        return;
    }
    unsigned char rnd[10];
    randombytes_buf(rnd, sizeof rnd);
    char id[24];
    int st = pipeline_withdraw(self->pipeline, &ask, rnd, id, &q, why, sizeof why);
    if (st != 201) {
        jbuf_free(&b);
        if (st == 422)
            http_reply_error(res, 422, why);
        else
            s_reply_retry(res, 503, "the withdrawal could not be recorded; try again", 5);
        return;
    }
    jbuf_puts(&b, "{\"id\":");
    jbuf_str(&b, id);
    jbuf_puts(&b, ",\"state\":\"REQUESTED\",");
    s_quote_json(&b, w, ask.chain_id, a->currency, &q);
    jbuf_puts(&b, "}");
    http_reply_json(res, 201, jbuf_take(&b));
}

static void s_wd_done(void *arg, const accounts_answer_t *a)
{
    s_wd_wait_t *w = arg;
    http_response_t res;
    memset(&res, 0, sizeof res);
    s_wd_answer(w, a, &res);
    http_later_reply(w->later, &res);
    free(w);
}

/* POST /api/withdrawals/quote {token, address, amount} and POST /api/withdrawals {token, address,
 * amount, password}: the account is read from MT5 (with the MAIN password re-entered, for a request),
 * then checked and quoted (pipeline_withdraw_quote), and for a request journaled. */
static void s_withdraw(investor_t *self, const http_request_t *req, http_response_t *res, int commit)
{
    session_info_t info;
    if (s_auth(self, req, res, &info, 1) != 0 || s_rate(self, req, http_cookie(req, SESSION_COOKIE), res) != 0)
        return;
    bson_t doc;
    if (s_json_body(req, res, &doc) != 0)
        return;
    const char *token = json_get_str(&doc, "token"), *address = json_get_str(&doc, "address"),
               *amount = json_get_str(&doc, "amount"), *pw = json_get_str(&doc, "password");
    accounts_request_t ask = {.ask = commit ? ACCOUNTS_WITHDRAW : ACCOUNTS_READ, .login = info.login};
    const char *bad = !token || !*token || strlen(token) >= 40 ? "token must be a token offered for withdrawal"
                    : !address || !*address || strlen(address) >= 128 ? "address is required"
                    : !amount || !*amount || strlen(amount) >= 48 ? "amount is required (in the account's currency)"
                    : commit && (!pw || !*pw || strlen(pw) >= sizeof ask.password) ? "password is required"
                    : NULL;
    if (bad) {
        bson_destroy(&doc);
        http_reply_error(res, 400, bad);
        return;
    }
    s_wd_wait_t *w = calloc(1, sizeof *w);
    if (w) {
        w->self = self;
        w->login = info.login;
        w->commit = commit;
        snprintf(w->token, sizeof w->token, "%s", token);
        snprintf(w->address, sizeof w->address, "%s", address);
        snprintf(w->amount, sizeof w->amount, "%s", amount);
        snprintf(w->rid, sizeof w->rid, "%s", http_request_id(req));
        snprintf(w->origin, sizeof w->origin, "ip:%.60s", http_client_ip(req) ? http_client_ip(req) : "?");
        if (commit)
            snprintf(ask.password, sizeof ask.password, "%s", pw);
    }
    bson_destroy(&doc);
    accounts_answer_t a;
    memset(&a, 0, sizeof a);
    a.mt5_result = "";
    a.result = ACCOUNTS_BUSY;
    http_later_t *later = w ? http_later(req, res) : NULL;
    if (!later) {
        explicit_bzero(ask.password, sizeof ask.password);
        free(w);
        s_reply_retry(res, 503, "busy; try again", 5);
        return;
    }
    w->later = later;
    a.result = accounts_submit(self->accounts, &ask, s_wd_done, w);   /* wipes the password */
    if (a.result != ACCOUNTS_OK)
        s_wd_done(w, &a);
}

static void s_withdraw_quote(void *arg, const http_request_t *req, http_response_t *res)
{
    s_withdraw(arg, req, res, 0);
}

static void s_withdraw_request(void *arg, const http_request_t *req, http_response_t *res)
{
    s_withdraw(arg, req, res, 1);
}

static void s_wd_each(void *arg, const withdrawal_view_t *w)
{
    s_list_t *l = arg;
    if (l->n++)
        jbuf_puts(l->b, ",");
    withdrawals_view_json(l->b, w);
}

/* GET /api/withdrawals: the investor's own, newest first. */
static void s_withdrawals(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"withdrawals\":[");
    s_list_t l = {.b = &b};
    withdrawals_each(pipeline_withdrawals(self->pipeline), info.login, S_DEPOSITS_LIMIT, s_wd_each, &l);
    jbuf_puts(&b, "]}");
    http_reply_json(res, 200, jbuf_take(&b));
}

investor_t *investor_routes(http_server_t *http, pipeline_t *pipeline, wallets_t *wallets,
                            events_t *events, accounts_t *accounts, const config_t *cfg,
                            const investor_opts_t *opts, char *err, size_t errlen)
{
    investor_opts_t o = {0};
    if (opts)
        o = *opts;
    investor_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "investor: out of memory");
        return NULL;
    }
    self->pipeline = pipeline;
    self->wallets = wallets;
    self->events = events;
    self->accounts = accounts;
    self->cfg = cfg;
    self->secure_cookie = cfg->cookie_secure;
    self->sessions = session_mongo_store(cfg, SESSION_MONGO_INVESTORS, &o.session);
    self->views = views_new(cfg, pipeline_registry(pipeline), 0, err, errlen);
    if (!self->views) {
        investor_destroy(&self);
        return NULL;
    }
    self->throttle = throttle_new(&o.throttle);
    ratelimit_opts_t ts = {.rate_per_s = o.session_rate_per_s > 0 ? o.session_rate_per_s : 2,
                          .burst = o.session_burst > 0 ? o.session_burst : 10};
    ratelimit_opts_t ti = {.rate_per_s = o.ip_rate_per_s > 0 ? o.ip_rate_per_s : 20,
                          .burst = o.ip_burst > 0 ? o.ip_burst : 40};
    self->per_session = ratelimit_new(&ts);
    self->per_ip = ratelimit_new(&ti);
    if (!self->sessions || !self->throttle || !self->per_session || !self->per_ip) {
        snprintf(err, errlen, "investor: no session store");
        investor_destroy(&self);
        return NULL;
    }
    if (events_listen(events, s_learn_link, wallets) != 0) {
        snprintf(err, errlen, "investor: the event hub has no room for another listener");
        investor_destroy(&self);
        return NULL;
    }
    events_set_resolver(events, s_login_of, wallets);

    http_route(http, "POST", "/api/login", s_login, self);
    http_route(http, "POST", "/api/logout", s_logout, self);
    http_route(http, "GET", "/api/session", s_session, self);
    http_route(http, "GET", "/api/me", s_me, self);
    http_route(http, "GET", "/api/wallets", s_wallets_list, self);
    http_route(http, "POST", "/api/wallets", s_wallets_create, self);
    http_route(http, "GET", "/api/wallets/*", s_wallet_sub, self);
    http_route(http, "GET", "/api/deposits", s_deposits, self);
    http_route(http, "GET", "/api/deposits/*", s_deposit_one, self);
    http_route(http, "GET", "/api/events", s_events, self);
    http_route(http, "POST", "/api/withdrawals/quote", s_withdraw_quote, self);
    http_route(http, "POST", "/api/withdrawals", s_withdraw_request, self);
    http_route(http, "GET", "/api/withdrawals", s_withdrawals, self);
    return self;
}

void investor_destroy(investor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    investor_t *self = *self_p;
    session_store_destroy(&self->sessions);
    views_destroy(&self->views);
    throttle_destroy(&self->throttle);
    ratelimit_destroy(&self->per_session);
    ratelimit_destroy(&self->per_ip);
    free(self);
    *self_p = NULL;
}

session_store_t *investor_sessions(investor_t *self)
{
    return self->sessions;
}
