/* investor.c — the investor panel's JSON API (see investor.h and docs-investor.md).
 *
 * Every handler starts from the session cookie; a state-changing call also needs the session's
 * CSRF token in X-CSRF-Token. An investor's login comes only from their session, never from the
 * request, and every lookup is filtered by it: another login's deposit or address is "not found".
 *
 * MT5: a pool of clients, each one MT5 session. An MT5 client runs one request at a time (its
 * session is one keep-alive connection), so one shared client would queue every password check and
 * balance read behind the slowest; a pool of a few lets that many run at once while staying well
 * under the manager's session limit. A request waits at most S_POOL_WAIT_MS for a free client. */
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

#include "actors/condvar.h"
#include "actors/mt5.h"
#include "schema/json.h"
#include "schema/money.h"
#include "schema/log.h"
#include "web/qr.h"

#define S_MAX_POOL 8
#define S_POOL_WAIT_MS 5000
#define S_GROUP_CACHE 32
#define S_GROUP_TTL_S 300
#define S_DEPOSITS_LIMIT 100

typedef struct {
    char group[64];
    char currency[16];
    int digits;
    int64_t fetched_s;
} s_group_t;

struct investor_t {
    pipeline_t *pipeline;
    wallets_t *wallets;
    events_t *events;
    const config_t *cfg;
    session_store_t *sessions;
    throttle_t *throttle;
    int secure_cookie;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    mt5_client_t *mt5[S_MAX_POOL];
    int mt5_busy[S_MAX_POOL];
    int mt5_count;
    s_group_t groups[S_GROUP_CACHE];
};

/* ---- MT5 pool ---------------------------------------------------------------------------------- */

static mt5_client_t *s_mt5_take(investor_t *self)
{
    struct timespec until;
    condvar_deadline(&until, S_POOL_WAIT_MS);
    pthread_mutex_lock(&self->mu);
    for (;;) {
        for (int i = 0; i < self->mt5_count; i++) {
            if (!self->mt5_busy[i]) {
                self->mt5_busy[i] = 1;
                pthread_mutex_unlock(&self->mu);
                return self->mt5[i];
            }
        }
        if (pthread_cond_timedwait(&self->cond, &self->mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

static void s_mt5_give(investor_t *self, mt5_client_t *c)
{
    pthread_mutex_lock(&self->mu);
    for (int i = 0; i < self->mt5_count; i++)
        if (self->mt5[i] == c)
            self->mt5_busy[i] = 0;
    pthread_cond_signal(&self->cond);
    pthread_mutex_unlock(&self->mu);
}

/* ---- helpers ------------------------------------------------------------------------------------ */

static void s_reply_retry(http_response_t *res, int status, const char *reason, int64_t retry_after_s)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long) retry_after_s);
    http_reply_error(res, status, reason);
    http_add_header(res, "Retry-After", v);
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

/* The caller's session: 0 with *info filled, or -1 after answering 401 (or 403 for a missing or
 * wrong CSRF token when csrf is set). */
static int s_auth(investor_t *self, const http_request_t *req, http_response_t *res,
                  session_info_t *info, int csrf)
{
    const char *sid = http_cookie(req, SESSION_COOKIE);
    if (!sid || session_get(self->sessions, sid, info) != 0) {
        http_reply_error(res, 401, "not logged in");
        return -1;
    }
    if (csrf && session_check_csrf(self->sessions, sid, http_header(req, "X-CSRF-Token")) != 0) {
        http_reply_error(res, 403, "missing or wrong CSRF token");
        return -1;
    }
    return 0;
}

/* 1 if the request says its body is JSON (a cross-site form cannot send that without CORS). */
static int s_is_json(const http_request_t *req)
{
    const char *ct = http_header(req, "Content-Type");
    return ct && strncasecmp(ct, "application/json", 16) == 0;
}

/* The request's JSON body into *doc (the caller destroys it): 0, or -1 after answering 415 (not
 * sent as JSON) or 400 (not valid JSON). */
static int s_json_body(const http_request_t *req, http_response_t *res, bson_t *doc)
{
    if (!s_is_json(req)) {
        http_reply_error(res, 415, "send JSON (Content-Type: application/json)");
        return -1;
    }
    size_t len;
    const char *body = http_body(req, &len);
    char why[160];
    if (json_parse(body, len, doc, why, sizeof why) != 0) {
        http_reply_error(res, 400, "the body is not valid JSON");
        return -1;
    }
    return 0;
}

/* MT5 decimal text shown with digits decimals ("1000.5" -> "1000.50"); the text as sent when it
 * has more decimals than the currency (nothing is rounded), or when digits < 0 (the group could not
 * be read: no digit count is guessed). */
static void s_money_text(const char *text, int digits, char *out, size_t len)
{
    int64_t minor;
    if (digits >= 0 && mt5_parse_amount(text, digits, &minor) == 0 && mt5_format_amount(minor, digits, out, len) == 0)
        return;
    snprintf(out, len, "%s", text);
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

static void s_login(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    bson_t doc;
    if (s_json_body(req, res, &doc) != 0)
        return;
    char why[160];
    char login_text[32] = "";
    const char *ls = json_get_str(&doc, "login");
    int64_t li;
    if (ls)
        snprintf(login_text, sizeof login_text, "%s", ls);
    else if (json_get_i64(&doc, "login", &li) == 0 && li > 0)
        snprintf(login_text, sizeof login_text, "%lld", (long long) li);
    const char *pw = json_get_str(&doc, "password");
    uint64_t login = 0;
    if (mt5_parse_login(login_text, &login) != 0 || !pw || !*pw || strlen(pw) > 256) {
        bson_destroy(&doc);
        http_reply_error(res, 400, "login (digits) and password are required");
        return;
    }
    char password[257];
    snprintf(password, sizeof password, "%s", pw);
    bson_destroy(&doc);

    const char *ip = http_client_ip(req);
    const netaddr_t *client = http_client_addr(req);
    int64_t wait_s = 0;
    if (throttle_attempt(self->throttle, login, client, &wait_s) != 0) {
        explicit_bzero(password, sizeof password);
        log_warn("investor.login_limited", "login=%llu ip=%s retry_after=%lld", (unsigned long long) login,
                 ip, (long long) wait_s);
        s_reply_retry(res, 429, "too many failed logins; try again later", wait_s);
        return;
    }
    /* From here the attempt counts as a failure until it is known to be something else. */
    mt5_client_t *c = s_mt5_take(self);
    if (!c) {
        explicit_bzero(password, sizeof password);
        throttle_forgive(self->throttle, login, client);
        s_reply_retry(res, 503, "the trading server is busy; try again", 5);
        return;
    }
    mt5_result_t r = mt5_check_password(c, login, password, "main", why, sizeof why);
    if (r == MT5_BAD_PASSWORD && self->cfg->investor_password_login)
        r = mt5_check_password(c, login, password, "investor", why, sizeof why);
    s_mt5_give(self, c);
    explicit_bzero(password, sizeof password);

    if (r == MT5_BAD_PASSWORD || r == MT5_PERMANENT) {
        /* Same answer for an unknown login as for a wrong password: no account probing.
         * The failure is already counted (throttle_attempt). */
        log_info("investor.login_failed", "login=%llu ip=%s result=%s", (unsigned long long) login,
                 ip, mt5_result_name(r));
        http_reply_error(res, 401, "wrong login or password");
        return;
    }
    if (r != MT5_OK) {
        throttle_forgive(self->throttle, login, client);
        log_warn("investor.login_unavailable", "req=%s login=%llu result=%s reason=\"%s\"", http_request_id(req),
                 (unsigned long long) login, mt5_result_name(r), why);
        s_reply_retry(res, 503, "the trading server is not reachable; try again", 10);
        return;
    }
    throttle_success(self->throttle, login, client);
    const char *old = http_cookie(req, SESSION_COOKIE);
    if (old)
        session_end(self->sessions, old);
    char sid[SESSION_ID_HEX];
    session_info_t info;
    if (session_create(self->sessions, login, sid) != 0 || session_peek(self->sessions, sid, &info) != 0) {
        http_reply_error(res, 500, "could not start a session");
        return;
    }
    char cookie[256];
    session_cookie(self->sessions, sid, self->secure_cookie, cookie, sizeof cookie);
    http_add_header(res, "Set-Cookie", cookie);
    log_info("investor.login", "login=%llu ip=%s", (unsigned long long) login, ip);
    s_reply_session(res, login, info.csrf);
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

/* The group's currency and digits, cached for S_GROUP_TTL_S. 0, or -1 (err filled). */
static int s_group(investor_t *self, mt5_client_t *c, const char *group, s_group_t *out, char *err, size_t errlen)
{
    int64_t now = (int64_t) time(NULL);
    pthread_mutex_lock(&self->mu);
    for (int i = 0; i < S_GROUP_CACHE; i++) {
        if (self->groups[i].group[0] && strcmp(self->groups[i].group, group) == 0 &&
            now - self->groups[i].fetched_s < S_GROUP_TTL_S) {
            *out = self->groups[i];
            pthread_mutex_unlock(&self->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&self->mu);
    mt5_group_t g;
    if (mt5_group_get(c, group, &g, err, errlen) != MT5_OK)
        return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->group, sizeof out->group, "%s", group);
    snprintf(out->currency, sizeof out->currency, "%s", g.currency);
    out->digits = g.digits;
    out->fetched_s = now;
    pthread_mutex_lock(&self->mu);
    int slot = 0;
    for (int i = 0; i < S_GROUP_CACHE; i++) {
        if (strcmp(self->groups[i].group, group) == 0 || !self->groups[i].group[0]) { slot = i; break; }
        if (self->groups[i].fetched_s < self->groups[slot].fetched_s)
            slot = i;
    }
    self->groups[slot] = *out;
    pthread_mutex_unlock(&self->mu);
    return 0;
}

static void s_me(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    mt5_client_t *c = s_mt5_take(self);
    if (!c) {
        s_reply_retry(res, 503, "the trading server is busy; try again", 5);
        return;
    }
    char why[160];
    mt5_user_t u;
    s_group_t g;
    mt5_account_t acc;
    mt5_result_t r = mt5_user_get(c, info.login, &u, why, sizeof why);
    int have_group = r == MT5_OK && s_group(self, c, u.group, &g, why, sizeof why) == 0;
    int have_equity = r == MT5_OK && mt5_user_account_get(c, info.login, &acc, why, sizeof why) == MT5_OK;
    s_mt5_give(self, c);
    if (r != MT5_OK) {
        log_warn("investor.me_failed", "req=%s login=%llu result=%s reason=\"%s\"", http_request_id(req),
                 (unsigned long long) info.login, mt5_result_name(r), why);
        s_reply_retry(res, 503, "the trading server is not reachable; try again", 10);
        return;
    }
    int digits = have_group ? g.digits : -1;   /* no group: MT5's own text, never a guessed digit count */
    char balance[48], credit[48], equity[48];
    s_money_text(u.balance, digits, balance, sizeof balance);
    s_money_text(u.credit[0] ? u.credit : "0", digits, credit, sizeof credit);
    if (have_equity)
        s_money_text(acc.equity, digits, equity, sizeof equity);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"login\":%llu,\"name\":", (unsigned long long) info.login);
    jbuf_str(&b, u.name);
    jbuf_puts(&b, ",\"balance\":");
    jbuf_str(&b, balance);
    jbuf_puts(&b, ",\"credit\":");
    jbuf_str(&b, credit);
    jbuf_puts(&b, ",\"equity\":");
    jbuf_str(&b, have_equity ? equity : NULL);
    jbuf_puts(&b, ",\"currency\":");
    jbuf_str(&b, have_group ? g.currency : NULL);
    if (have_group)
        jbuf_printf(&b, ",\"digits\":%d}", digits);
    else
        jbuf_puts(&b, ",\"digits\":null}");
    http_reply_json(res, 200, jbuf_take(&b));
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

static void s_deposit_json(jbuf_t *b, const deposit_view_t *d)
{
    jbuf_puts(b, "{\"id\":");
    jbuf_str(b, d->tx_id);
    jbuf_puts(b, ",\"state\":");
    jbuf_str(b, deposit_state_name(d->state));
    jbuf_puts(b, ",\"status\":");
    jbuf_str(b, d->status);
    jbuf_printf(b, ",\"confirmations\":%d,\"threshold\":%d", (int) d->confirmations, (int) d->threshold);
    jbuf_puts(b, ",\"token\":");
    jbuf_str(b, d->token_id);
    jbuf_puts(b, ",\"chain\":");
    jbuf_str(b, d->chain_id);
    jbuf_puts(b, ",\"address\":");
    jbuf_str(b, d->address);
    jbuf_puts(b, ",\"amount\":");
    jbuf_str(b, d->amount);
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
    jbuf_printf(b, ",\"created_ms\":%lld,\"updated_ms\":%lld}", (long long) d->created_ms, (long long) d->updated_ms);
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
    s_deposit_json(l->b, d);
}

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
    pipeline_deposits(self->pipeline, info.login, S_DEPOSITS_LIMIT, s_deposit_each, &l);
    jbuf_puts(&b, "]}");
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_deposit_one(void *arg, const http_request_t *req, http_response_t *res)
{
    investor_t *self = arg;
    session_info_t info;
    if (s_auth(self, req, res, &info, 0) != 0)
        return;
    const char *id = http_path(req) + strlen("/api/deposits/");
    deposit_view_t d;
    /* Someone else's deposit is answered exactly like an unknown one. */
    if (!*id || strlen(id) >= sizeof d.tx_id || pipeline_deposit(self->pipeline, id, &d) != 0 ||
        d.login != info.login) {
        http_reply_error(res, 404, "no such deposit");
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    s_deposit_json(&b, &d);
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

investor_t *investor_routes(http_server_t *http, pipeline_t *pipeline, wallets_t *wallets,
                            events_t *events, const config_t *cfg, const investor_opts_t *opts,
                            char *err, size_t errlen)
{
    investor_opts_t o = {0};
    if (opts)
        o = *opts;
    if (o.mt5_clients <= 0) o.mt5_clients = 3;
    if (o.mt5_clients > S_MAX_POOL) o.mt5_clients = S_MAX_POOL;
    if (o.mt5_timeout_ms <= 0) o.mt5_timeout_ms = 10000;
    investor_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "investor: out of memory");
        return NULL;
    }
    self->pipeline = pipeline;
    self->wallets = wallets;
    self->events = events;
    self->cfg = cfg;
    self->secure_cookie = cfg->cookie_secure;
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->cond);
    self->sessions = session_store_new(&o.session);
    self->throttle = throttle_new(&o.throttle);
    if (!self->sessions || !self->throttle) {
        snprintf(err, errlen, "investor: no session store");
        investor_destroy(&self);
        return NULL;
    }
    for (int i = 0; i < o.mt5_clients; i++) {
        self->mt5[i] = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                                      o.mt5_timeout_ms);
        if (!self->mt5[i]) {
            snprintf(err, errlen, "investor: bad MT5 settings (MT5_URL, MT5_LOGIN, MT5_PASSWORD)");
            investor_destroy(&self);
            return NULL;
        }
        self->mt5_count++;
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
    return self;
}

void investor_destroy(investor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    investor_t *self = *self_p;
    for (int i = 0; i < self->mt5_count; i++)
        mt5_client_destroy(&self->mt5[i]);
    session_store_destroy(&self->sessions);
    throttle_destroy(&self->throttle);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cond);
    free(self);
    *self_p = NULL;
}

session_store_t *investor_sessions(investor_t *self)
{
    return self->sessions;
}
