/* admin.c — see admin.h. On one node listings and timelines read the registry and the journal
 * directly: a search walks every deposit in memory and a timeline or the audit reads the journal from
 * its start (bounded answers; their cost grows with the journal). In cluster mode the deposit search,
 * a deposit and the summary are the cluster's, read from MongoDB and merged with this node's
 * (actors/views.h), marked "stale" when MongoDB did not answer. */
#include "web/admin.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/balances.h"
#include "actors/desk.h"
#include "actors/mt5.h"
#include "actors/registry.h"
#include "actors/notice.h"
#include "actors/telegram.h"
#include "actors/views.h"
#include "actors/wallets.h"
#include "schema/json.h"
#include "schema/log.h"
#include "schema/money.h"
#include "web/api.h"
#include "web/session_mongo.h"
#include "web/throttle.h"

#define S_PAGE_MAX 100
#define S_AUDIT_MAX 500
#define S_LOCK_NOTICE_TIMEOUT_MS 5000

#define S_NOTICES 64          /* names whose lockout was told recently */
#define S_NOTICE_EVERY_S 900  /* one lockout notice per name per 15 minutes */

/* How a guarded route is opened: which action its caller's role must be allowed (or the one
 * action_of finds in the request: -1 there answers 404), whether an admin who still has a one-time
 * password may call it. */
typedef struct {
    admin_api_t *self;
    admin_action_t action;
    int (*action_of)(const http_request_t *req);
    int must_change_ok;
    admin_handler_fn *fn;
    void *arg;
} s_route_t;

struct admin_api_t {
    pipeline_t *pipeline;
    admins_t *admins;
    journal_t *journal;
    const config_t *cfg;
    session_store_t *sessions;
    throttle_t *throttle;
    int secure_cookie;
    telegram_t *tg;          /* lockout notices; NULL without Telegram */
    pthread_mutex_t mu;      /* notices */
    struct { char name[64]; int64_t at_s; } notices[S_NOTICES];
    http_server_t *http;
    balances_t *balances;    /* the wallet's balances at Cobo; NULL without Cobo settings */
    events_t *events;        /* live updates (admin_live); NULL: /api/admin/events answers 503 */
    views_t *views;          /* the deposits across nodes (actors/views.h); one node: its registry */
    s_route_t routes[ADMIN_MAX_ROUTES];   /* every guarded route (admin_route) */
    int route_count;
};

/* A stable 64-bit key for an admin name in the rate-limit table (FNV-1a; 0 is never returned). */
static uint64_t s_name_key(const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *) name; p && *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h ? h : 1;
}

/* The one guard of every admin route: the session (cookie kasa_admin; a POST also needs its CSRF
 * token), then the account as it is now, then the role. 0 with *c filled, or -1 after answering
 * 401 (no session; account gone or disabled: the session ends) or 403 (CSRF; a one-time password
 * not yet changed, unless must_change_ok; the role may not do action; ADMIN_ANY: any admin). */
static int s_admin_guard(admin_api_t *self, const http_request_t *req, http_response_t *res, admin_action_t action,
                         int must_change_ok, admin_caller_t *c)
{
    memset(c, 0, sizeof *c);
    if (api_auth(self->sessions, req, res, &c->session, strcmp(http_method(req), "GET") != 0) != 0)
        return -1;
    admin_view_t *who = &c->who;
    if (admins_get(self->admins, c->session.name, who) != 0 || who->disabled) {
        session_end_named(self->sessions, c->session.name);
        http_reply_error(res, 401, "not logged in");
        return -1;
    }
    if (who->must_change && !must_change_ok) {
        http_reply_error(res, 403, "change your one-time password first");
        return -1;
    }
    if (action != ADMIN_ANY && !admin_may(who->role, action)) {
        log_warn("admin.forbidden", "admin=%s role=%s action=%s", who->name, admin_role_name(who->role),
                 admin_action_name(action));
        http_reply_error(res, 403, "your role may not do this");
        return -1;
    }
    snprintf(c->sid, sizeof c->sid, "%s", http_cookie(req, ADMIN_COOKIE));
    const char *ip = http_client_ip(req);
    snprintf(c->origin, sizeof c->origin, "ip:%.60s", ip && *ip ? ip : "?");
    snprintf(c->actor, sizeof c->actor, "admin:%.60s", who->name);
    return 0;
}

static void s_guarded(void *arg, const http_request_t *req, http_response_t *res)
{
    const s_route_t *rt = arg;
    int action = rt->action_of ? rt->action_of(req) : (int) rt->action;
    if (action < 0) {
        http_reply_error(res, 404, "no such action");
        return;
    }
    admin_caller_t c;
    if (s_admin_guard(rt->self, req, res, (admin_action_t) action, rt->must_change_ok, &c) == 0)
        rt->fn(rt->arg, &c, req, res);
}

static int s_route(admin_api_t *self, const char *method, const char *path, admin_action_t action,
                   int (*action_of)(const http_request_t *req), int must_change_ok, admin_handler_fn *fn, void *arg)
{
    if (self->route_count >= ADMIN_MAX_ROUTES)
        return -1;
    s_route_t *rt = &self->routes[self->route_count++];
    *rt = (s_route_t) { self, action, action_of, must_change_ok, fn, arg };
    http_route(self->http, method, path, s_guarded, rt);
    return 0;
}

int admin_route(admin_api_t *self, const char *method, const char *path, admin_action_t action, admin_handler_fn *fn,
                void *arg)
{
    return s_route(self, method, path, action, NULL, 0, fn, arg);
}

static void s_reply_session(admin_api_t *self, http_response_t *res, const admin_view_t *who, const char *csrf)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"name\":");
    jbuf_str(&b, who->name);
    jbuf_puts(&b, ",\"role\":");
    jbuf_str(&b, admin_role_name(who->role));
    jbuf_printf(&b, ",\"must_change\":%s,\"csrf\":", who->must_change ? "true" : "false");
    jbuf_str(&b, csrf);
    jbuf_puts(&b, ",\"may\":[");
    int n = 0;
    for (int a = 0; a < ADMIN_ACTION_COUNT; a++)
        if (admin_may(who->role, (admin_action_t) a)) {
            jbuf_puts(&b, n++ ? "," : "");
            jbuf_str(&b, admin_action_name((admin_action_t) a));
        }
    jbuf_puts(&b, "]}");
    (void) self;
    http_reply_json(res, 200, jbuf_take(&b));
}

/* ---- login, session, logout, password ------------------------------------------------------------ */

/* 1 if name's lockout was not told within S_NOTICE_EVERY_S (and marks it told now). */
static int s_notice_due(admin_api_t *self, const char *name)
{
    int64_t now = (int64_t) time(NULL);
    int slot = 0, due = 1;
    pthread_mutex_lock(&self->mu);
    for (int i = 0; i < S_NOTICES; i++) {
        if (strcmp(self->notices[i].name, name) == 0) {
            slot = i;
            due = now - self->notices[i].at_s >= S_NOTICE_EVERY_S;
            break;
        }
        if (self->notices[i].at_s < self->notices[slot].at_s)
            slot = i;   /* the stalest, if name has no slot */
    }
    if (due) {
        snprintf(self->notices[slot].name, sizeof self->notices[slot].name, "%s", name);
        self->notices[slot].at_s = now;
    }
    pthread_mutex_unlock(&self->mu);
    return due;
}

/* Tells the broker's chat that logins of name from ip are held back (in KASA_NOTICE_LANG). */
static void s_lock_notice(admin_api_t *self, const char *name, const char *ip, int64_t wait_s)
{
    log_warn("admin.login_locked", "admin=%s ip=%s retry_after=%lld", name, ip ? ip : "-", (long long) wait_s);
    if (!self->tg || !s_notice_due(self, name))
        return;
    char *text = notice_lockout(name, ip, (long long) wait_s, notice_lang(self->cfg->notice_lang));
    char err[160];
    if (telegram_send(self->tg, self->cfg->telegram_chat_id, text, err, sizeof err) != TELEGRAM_OK)
        log_warn("admin.lock_notice_failed", "admin=%s reason=\"%s\"", name, err);
    free(text);
}

static void s_login(void *arg, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    bson_t doc;
    if (api_json_body(req, res, &doc) != 0)
        return;
    const char *n = json_get_str(&doc, "name"), *pw = json_get_str(&doc, "password"), *c = json_get_str(&doc, "code");
    char name[64] = "", password[130] = "", code[8] = "";
    int ok = n && pw && c && strlen(n) < sizeof name && strlen(pw) < sizeof password && strlen(c) < sizeof code;
    if (ok) {
        snprintf(name, sizeof name, "%s", n);
        snprintf(password, sizeof password, "%s", pw);
        snprintf(code, sizeof code, "%s", c);
    }
    bson_destroy(&doc);
    if (!ok) {
        http_reply_error(res, 400, "name, password and code are required");
        return;
    }
    const char *ip = http_client_ip(req);
    const netaddr_t *client = http_client_addr(req);
    uint64_t key = s_name_key(name);
    int64_t wait_s = 0;
    if (throttle_attempt(self->throttle, key, client, &wait_s) != 0) {
        explicit_bzero(password, sizeof password);
        s_lock_notice(self, name, ip, wait_s);
        api_reply_retry(res, 429, "too many failed logins; try again later", wait_s);
        return;
    }
    char origin[64], why[160];
    snprintf(origin, sizeof origin, "ip:%.60s", ip && *ip ? ip : "?");
    admin_view_t who;
    admins_login_t r = admins_login(self->admins, self->journal, name, password, code, (int64_t) time(NULL), origin,
                                    &who, why, sizeof why);
    explicit_bzero(password, sizeof password);
    if (r == ADMINS_LOGIN_FAILED) {
        throttle_forgive(self->throttle, key, client);
        http_reply_error(res, 503, "cannot record the login; try again");
        return;
    }
    if (r != ADMINS_LOGIN_OK) {
        log_info("admin.login_failed", "admin=%s ip=%s", name, ip ? ip : "-");
        http_reply_error(res, 401, "wrong name, password or code");
        return;
    }
    throttle_success(self->throttle, key, client);
    const char *old = http_cookie(req, ADMIN_COOKIE);
    if (old)
        session_end(self->sessions, old);
    char sid[SESSION_ID_HEX];
    session_info_t info;
    if (session_create_named(self->sessions, name, sid) != 0 || session_peek(self->sessions, sid, &info) != 0) {
        http_reply_error(res, 500, "could not start a session");
        return;
    }
    char cookie[256];
    session_cookie(self->sessions, sid, self->secure_cookie, cookie, sizeof cookie);
    http_add_header(res, "Set-Cookie", cookie);
    s_reply_session(self, res, &who, info.csrf);
}

static void s_session(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    (void) req;
    s_reply_session(arg, res, &c->who, c->session.csrf);
}

static void s_logout(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) req;
    session_end(self->sessions, c->sid);
    char cookie[256];
    session_cookie(self->sessions, NULL, self->secure_cookie, cookie, sizeof cookie);
    http_add_header(res, "Set-Cookie", cookie);
    log_info("admin.logout", "admin=%s", c->who.name);
    http_reply_json(res, 200, strdup("{\"ok\":true}"));
}

static void s_password(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    bson_t doc;
    if (api_json_body(req, res, &doc) != 0)
        return;
    const char *cur = json_get_str(&doc, "current"), *pw = json_get_str(&doc, "password");
    char err[160];
    int rc = cur && pw ? admins_set_password(self->admins, self->journal, c->who.name, cur, pw, c->origin, err, sizeof err)
                       : (snprintf(err, sizeof err, "current and password are required"), -1);
    bson_destroy(&doc);
    if (rc != 0) {
        http_reply_error(res, 400, err);
        return;
    }
    http_reply_json(res, 200, strdup("{\"ok\":true}"));
}

/* ---- deposits ------------------------------------------------------------------------------------ */

typedef struct {
    admin_search_t f;
    int exact;                   /* a deposit whose tx id is q was visited */
    int matched, shown;
    jbuf_t *b;
} s_search_t;

/* 1 when e passes every part of the filter f. */
static int s_search_match(void *arg, const registry_entry_t *e)
{
    const admin_search_t *f = arg;
    const deposit_view_t *d = &e->view;
    if ((f->state >= 0 && (int) d->state != f->state) || (f->login && d->login != f->login) ||
        (f->from_ms && d->created_ms < f->from_ms) || (f->to_ms && d->created_ms >= f->to_ms))
        return 0;
    if (f->q && *f->q && !strstr(d->tx_id, f->q) && !strstr(d->tx_hash, f->q) && !strstr(d->address, f->q))
        return 0;
    if (f->min || f->max) {
        money_atto_t a;
        if (money_parse(d->amount, &a, NULL, 0) != 0 || a < f->min || (f->max && a > f->max))
            return 0;
    }
    return 1;
}

/* The page: a match counted, and written when it falls in [skip, skip + limit). */
static void s_search_page(s_search_t *s, const registry_entry_t *e)
{
    if (s->matched++ < s->f.skip || s->shown >= s->f.limit)
        return;
    jbuf_puts(s->b, s->shown++ ? "," : "");
    desk_entry_json(s->b, e);
}

static void s_search_one(void *arg, const registry_entry_t *e)
{
    s_search_t *s = arg;
    if (s->f.q && strcmp(e->view.tx_id, s->f.q) == 0)
        s->exact = 1;
    if (s_search_match(&s->f, e))
        s_search_page(s, e);
}

/* The search answer's end: ],"total","page","limit","stale","cluster"}. */
static void s_search_tail(jbuf_t *b, const admin_search_t *f, long total, int stale, int cluster)
{
    jbuf_printf(b, "],\"total\":%ld,\"page\":%d,\"limit\":%d,\"stale\":%s,\"cluster\":%s}", total,
                f->limit ? f->skip / f->limit + 1 : 1, f->limit, stale ? "true" : "false", cluster ? "true" : "false");
}

static void s_search_merged(void *arg, const registry_entry_t *e)
{
    s_search_page(arg, e);   /* views_list applied the filter to the merged view */
}

int admin_search_deposits(registry_t *reg, const admin_search_t *f, jbuf_t *b)
{
    s_search_t s = { *f, 0, 0, 0, b };
    jbuf_puts(b, "{\"deposits\":[");
    int rc = 0;
    if (f->login) {
        rc = registry_each(reg, f->login, 0, s_search_one, &s) < 0 ? -1 : 0;   /* memory and the index */
    } else {
        registry_each(reg, 0, 0, s_search_one, &s);   /* memory: every unfinished deposit */
        registry_entry_t *e = f->q && *f->q && !s.exact ? malloc(sizeof *e) : NULL;
        int got = e ? registry_lookup(reg, f->q, e, NULL) : 0;   /* a finished one, by its whole tx id */
        if (got > 0)
            s_search_one(&s, e);
        rc = got < 0 ? -1 : 0;
        free(e);
    }
    s_search_tail(b, f, s.matched, 0, 0);
    return rc;
}

/* "YYYY-MM-DD" (UTC) → Unix ms; -1 if not. */
static int s_day_ms(const char *text, int64_t *ms)
{
    struct tm tm = { 0 };
    const char *end = text ? strptime(text, "%Y-%m-%d", &tm) : NULL;
    if (!end || *end)
        return -1;
    *ms = (int64_t) timegm(&tm) * 1000;
    return 0;
}

static int s_int_query(const http_request_t *req, const char *name, int lo, int hi, int dflt, int *out)
{
    const char *v = http_query(req, name);
    *out = dflt;
    if (!v || !*v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi)
        return -1;
    *out = (int) n;
    return 0;
}

/* Cluster mode's search (actors/views.h): MongoDB's matches and this node's, merged per deposit, the
 * newest skip + limit of them (at most VIEWS_WINDOW_MAX); q is asked of MongoDB as a whole transaction
 * id, chain hash or address (this node's deposits still match a part of one). The answer as
 * admin_search_deposits writes it; returns views_list's source, or -1. */
static int s_search_cluster(admin_api_t *self, const admin_search_t *f, jbuf_t *b)
{
    s_search_t s = { *f, 0, 0, 0, b };
    views_query_t q = { f->login, f->state, f->from_ms, f->to_ms, f->q, f->skip + f->limit };
    long total = 0;
    jbuf_puts(b, "{\"deposits\":[");
    int source = views_list(self->views, &q, s_search_match, &s.f, s_search_merged, &s, &total);
    s_search_tail(b, f, total > s.matched ? total : (long) s.matched, source == VIEWS_STALE, 1);
    return source;
}

static void s_deposits(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) c;
    admin_search_t s = { -1, 0, http_query(req, "q"), 0, 0, 0, 0, 0, 0 };
    const char *v;
    int page, bad = 0;
    if ((v = http_query(req, "state")) && *v && (s.state = deposit_state_from_name(v)) < 0)
        bad = 1;
    if ((v = http_query(req, "login")) && *v && mt5_parse_login(v, &s.login) != 0)
        bad = 1;
    if ((v = http_query(req, "from")) && *v && s_day_ms(v, &s.from_ms) != 0)
        bad = 1;
    if ((v = http_query(req, "to")) && *v && (s_day_ms(v, &s.to_ms) != 0 || !(s.to_ms += 86400000)))
        bad = 1;
    if ((v = http_query(req, "min")) && *v && money_parse(v, &s.min, NULL, 0) != 0)
        bad = 1;
    if ((v = http_query(req, "max")) && *v && money_parse(v, &s.max, NULL, 0) != 0)
        bad = 1;
    if (s_int_query(req, "page", 1, 1000000, 1, &page) != 0 || s_int_query(req, "limit", 1, S_PAGE_MAX, 50, &s.limit) != 0)
        bad = 1;
    if (bad) {
        http_reply_error(res, 400, "bad filter: state NAME, login N, from/to YYYY-MM-DD, min/max amount, page, limit");
        return;
    }
    s.skip = (page - 1) * s.limit;
    jbuf_t b;
    jbuf_init(&b);
    int source = VIEWS_LOCAL;
    if (views_cluster(self->views))
        source = s_search_cluster(self, &s, &b);
    else if (admin_search_deposits(pipeline_registry(self->pipeline), &s, &b) != 0)
        source = -1;
    if (source < 0) {
        jbuf_free(&b);
        http_reply_error(res, 503, "cannot tell: the index of finished deposits cannot be read (kasa journal verify "
                         "says where); try again");
        return;
    }
    http_reply_json(res, 200, jbuf_take(&b));
}

int admin_timeline_json(const char *journal_dir, const char *id, uint64_t from_lsn, uint64_t upto_lsn, int max,
                        jbuf_t *b)
{
    char err[256];
    journal_reader_t *rd = journal_reader_open(journal_dir, from_lsn ? from_lsn : 1, err, sizeof err);
    if (!rd)
        return 0;
    record_t *r = malloc(sizeof *r);
    journal_entry_t je;
    int n = 0;
    while (r && (max <= 0 || n < max) && journal_reader_next(rd, &je) == 1) {
        if (upto_lsn && je.lsn > upto_lsn)
            break;
        if (record_decode(je.payload, je.len, r, err, sizeof err) != 0 || strcmp(r->tx_id, id) != 0)
            continue;
        record_redact(r);
        jbuf_puts(b, n++ ? "," : "");
        record_to_json(r, je.lsn, b);
    }
    free(r);
    journal_reader_destroy(&rd);
    return n;
}

int admin_path_id(const char *path, const char *prefix, char *id, size_t id_len, char action[16])
{
    const char *p = path + strlen(prefix);
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t) (slash - p) : strlen(p);
    if (!n || n >= id_len || (slash && strlen(slash + 1) >= 16))
        return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    snprintf(action, 16, "%s", slash ? slash + 1 : "");
    return 0;
}

int admin_others_json(admin_api_t *self, const char *id, jbuf_t *b)
{
    if (!views_cluster(self->views))
        return 0;
    jbuf_puts(b, ",\"others\":[");
    int n = views_timeline_others(self->views, id, b);
    jbuf_puts(b, "]");
    return n < 0;
}

#define S_DEPOSITS_PREFIX "/api/admin/deposits/"

static void s_deposit(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) c;
    char id[80], action[16];
    registry_entry_t e;
    views_source_t source = VIEWS_LOCAL;
    uint64_t first_lsn = 0, last_lsn = 0;   /* this node's records of it (its journal's timeline) */
    int path_ok = admin_path_id(http_path(req), S_DEPOSITS_PREFIX, id, sizeof id, action) == 0 && !action[0];
    int known = path_ok ? registry_lookup(pipeline_registry(self->pipeline), id, &e, &first_lsn) : 0;
    if (known > 0)
        last_lsn = e.last_lsn;
    if (path_ok && views_cluster(self->views))
        known = views_get(self->views, id, &e, &source);   /* the cluster's view of it */
    if (known <= 0) {
        if (known < 0)
            http_reply_error(res, 503, "cannot tell: the index of finished deposits cannot be read; try again");
        else
            http_reply_error(res, 404, "no such deposit");
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"deposit\":");
    desk_entry_json(&b, &e);
    jbuf_puts(&b, ",\"timeline\":[");
    if (last_lsn)
        admin_timeline_json(self->cfg->journal_dir, id, first_lsn, last_lsn, 0, &b);
    jbuf_puts(&b, "]");
    if (admin_others_json(self, id, &b))
        source = VIEWS_STALE;
    jbuf_printf(&b, ",\"stale\":%s}", source == VIEWS_STALE ? "true" : "false");
    http_reply_json(res, 200, jbuf_take(&b));
}

/* The role action a POST /api/admin/deposits/{id}/{action} needs, or -1 (no such action). */
static int s_act_action(const http_request_t *req)
{
    char id[80], name[16];
    int action = -1;
    if (admin_path_id(http_path(req), S_DEPOSITS_PREFIX, id, sizeof id, name) != 0 || (action = desk_action_from_name(name)) < 0)
        return -1;
    return (int) admin_action_of_desk((desk_action_t) action);
}

static void s_act(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    char id[80], name[16];
    admin_path_id(http_path(req), S_DEPOSITS_PREFIX, id, sizeof id, name);   /* s_act_action found both */
    int action = desk_action_from_name(name);
    bson_t doc;
    if (api_json_body(req, res, &doc) != 0)
        return;
    char reason[160] = "";
    const char *rs = json_get_str(&doc, "reason");
    snprintf(reason, sizeof reason, "%s", rs ? rs : "");
    uint64_t login = 0;
    const char *ls = json_get_str(&doc, "login");
    int64_t ln = 0;
    if (ls)
        mt5_parse_login(ls, &login);
    else if (json_get_i64(&doc, "login", &ln) == 0 && ln > 0)
        login = (uint64_t) ln;
    bson_destroy(&doc);
    char err[256] = "";
    desk_request_t dr = { id, (desk_action_t) action, action == DESK_ASSIGN ? login : 0, c->actor, c->origin, reason };
    char command[33];
    int rc = pipeline_admin_cmd(self->pipeline, &dr, command, err, sizeof err);
    if (rc < 0) {
        http_reply_error(res, strstr(err, "unknown deposit") ? 404 : 409, err);
        return;
    }
    if (rc == 2) {   /* cluster mode: the node holding the deposit carries it out; GET /api/admin/commands/ID */
        api_reply_accepted(res, command, err);
        return;
    }
    char text[300];
    desk_describe((desk_action_t) action, rc == 1, id, dr.login, text, sizeof text);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"ok\":true,\"waits_for_another_approver\":%s,\"message\":", rc == 1 ? "true" : "false");
    jbuf_str(&b, text);
    jbuf_puts(&b, "}");
    http_reply_json(res, 200, jbuf_take(&b));
}

/* GET /api/admin/commands/{id}: an action sent to the node holding the deposit (pipeline_command). */
static void s_command(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    (void) c;
    admin_api_t *self = arg;
    char id[40], rest[16], json[1024];
    if (admin_path_id(http_path(req), "/api/admin/commands/", id, sizeof id, rest) != 0 || rest[0]) {
        http_reply_error(res, 404, "no such command");
        return;
    }
    int rc = pipeline_command(self->pipeline, id, json, sizeof json);
    if (rc < 0)
        http_reply_error(res, 503, "MongoDB did not answer: try again");
    else if (rc == 0)
        http_reply_error(res, 404, "no such command");
    else
        http_reply_json(res, 200, strdup(json));
}

/* ---- dashboard ----------------------------------------------------------------------------------- */

void admin_summary_json(const totals_t *t, int64_t today, jbuf_t *b)
{
    jbuf_puts(b, "{\"states\":{");
    for (int i = 1; i < DEPOSIT_STATE_COUNT; i++)
        jbuf_printf(b, "%s\"%s\":%lld", i > 1 ? "," : "", deposit_state_name((deposit_state_t) i),
                    (long long) t->state_count[i]);
    jbuf_puts(b, "},\"credited\":[");
    int shown = 0;
    for (int k = 0; k < t->tokens; k++) {
        money_atto_t week = totals_credited(t, k, today - 6, today);
        if (!week)
            continue;   /* nothing credited in the week: not listed */
        char today_s[64], week_s[64];
        money_format(totals_credited(t, k, today, today), today_s, sizeof today_s);
        money_format(week, week_s, sizeof week_s);
        jbuf_puts(b, shown++ ? ",{\"token\":" : "{\"token\":");
        jbuf_str(b, t->token[k]);
        jbuf_printf(b, ",\"today\":\"%s\",\"week\":\"%s\"}", today_s, week_s);
    }
    jbuf_puts(b, "]}");
}

/* GET /api/admin/summary (admin_summary_json): from the registry's running totals; in cluster mode
 * the cluster's, from MongoDB (actors/views.h), with "stale" and "cluster". */
static void s_summary(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) c;
    (void) req;
    totals_t *t = malloc(sizeof *t);
    if (!t) {
        http_reply_error(res, 500, "out of memory");
        return;
    }
    views_source_t source = views_summary(self->views, t);
    jbuf_t b;
    jbuf_init(&b);
    admin_summary_json(t, (int64_t) time(NULL) / 86400, &b);
    free(t);
    if (b.len && b.data[b.len - 1] == '}')
        b.len--;   /* the object stays open for the flags */
    jbuf_printf(&b, ",\"stale\":%s,\"cluster\":%s}", source == VIEWS_STALE ? "true" : "false",
                views_cluster(self->views) ? "true" : "false");
    http_reply_json(res, 200, jbuf_take(&b));
}

/* ---- addresses ---------------------------------------------------------------------------------- */

/* GET /api/admin/addresses?q=&login=&page=&limit=: which address belongs to which login, newest
 * link first; q is a part of an address, or a login (all digits). */
static void s_addresses(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) c;
    const char *q = http_query(req, "q"), *v = http_query(req, "login");
    uint64_t login = 0;
    int page, limit;
    if ((v && *v && mt5_parse_login(v, &login) != 0) || (q && strlen(q) > 127) ||
        s_int_query(req, "page", 1, 1000000, 1, &page) != 0 || s_int_query(req, "limit", 1, S_PAGE_MAX, 50, &limit) != 0) {
        http_reply_error(res, 400, "bad filter: q (a part of an address, or a login), login N, page, limit 1..100");
        return;
    }
    registry_link_t *links = calloc((size_t) limit, sizeof *links);
    int total = links ? registry_links(pipeline_registry(self->pipeline), login, q, (page - 1) * limit, limit, links)
                      : -1;
    if (total < 0) {
        free(links);
        http_reply_error(res, 503, "out of memory");
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"addresses\":[");
    int shown = total - (page - 1) * limit;
    for (int i = 0; i < shown && i < limit; i++) {
        const registry_link_t *l = &links[i];
        jbuf_puts(&b, i ? ",{\"address\":" : "{\"address\":");
        jbuf_str(&b, l->address);
        jbuf_puts(&b, ",\"chain\":");
        jbuf_str(&b, l->chain_id);
        jbuf_puts(&b, ",\"tokens\":[");
        /* the offered tokens that live on this chain (TRON: TRON_USDT and TRON share one address) */
        for (int t = 0, n = 0; t < self->cfg->chain_count; t++) {
            const char *chain = wallets_chain_of(self->cfg->chains[t]);
            if (chain && strcmp(chain, l->chain_id) == 0) {
                jbuf_puts(&b, n++ ? "," : "");
                jbuf_str(&b, self->cfg->chains[t]);
            }
        }
        jbuf_printf(&b, "],\"login\":%llu,\"created_ms\":%lld,\"lsn\":%llu}", (unsigned long long) l->login,
                    (long long) l->time_ms, (unsigned long long) l->lsn);
    }
    jbuf_printf(&b, "],\"total\":%d,\"page\":%d,\"limit\":%d}", total, page, limit);
    free(links);
    http_reply_json(res, 200, jbuf_take(&b));
}

/* ---- wallet balances ---------------------------------------------------------------------------- */

static void s_balances_answer(char *json, http_response_t *res)
{
    if (json)
        http_reply_json(res, 200, json);
    else
        http_reply_error(res, 500, "out of memory");
}

/* A fresh reading ended (on the balances thread): the waiting request gets it. */
static void s_balances_fresh(void *arg, char *json)
{
    http_response_t res;
    memset(&res, 0, sizeof res);
    s_balances_answer(json, &res);
    http_later_reply(arg, &res);
}

/* GET /api/admin/balances[?fresh=1]: the last reading of the wallet's balances at once (a new one
 * starts when it is older than a minute), or, with fresh=1, the answer of a new reading, waited for
 * with the connection suspended (no HTTP thread is held while Cobo answers). */
static void s_balances(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) c;
    if (!self->balances) {
        http_reply_error(res, 503, "Cobo is not configured (COBO_API_URL, COBO_API_KEY, COBO_API_SECRET, COBO_WALLET_ID)");
        return;
    }
    const char *fresh = http_query(req, "fresh");
    http_later_t *later = fresh && strcmp(fresh, "1") == 0 ? http_later(req, res) : NULL;
    if (later && balances_when_fresh(self->balances, s_balances_fresh, later) == 0)
        return;
    if (later) {   /* too many wait already: what there is */
        s_balances_fresh(later, balances_json(self->balances));
        return;
    }
    s_balances_answer(balances_json(self->balances), res);
}

static uint64_t s_login_of(void *arg, const char *address)
{
    return registry_address_login(pipeline_registry(arg), address);
}

/* ---- live updates ------------------------------------------------------------------------------- */

typedef struct {
    admin_api_t *self;
    char sid[SESSION_ID_HEX];
    char name[64];
} s_live_t;

/* Asked every 250 ms while the stream is read: the session still open (not logged out, not idle
 * or too old) and the account still there and enabled. */
static int s_live_alive(void *arg)
{
    s_live_t *l = arg;
    admin_view_t who;
    return session_peek(l->self->sessions, l->sid, NULL) == 0 && admins_get(l->self->admins, l->name, &who) == 0 &&
           !who.disabled;
}

/* GET /api/admin/events: every journal commit the panel shows (web/events.h, a staff stream); a
 * browser that comes back with Last-Event-ID is told to reload when it missed anything. */
static void s_live(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    if (!self->events) {
        http_reply_error(res, 503, "live updates are off");
        return;
    }
    const char *last = http_header(req, "Last-Event-ID");
    uint64_t since = last && *last ? strtoull(last, NULL, 10) : 0;
    s_live_t *l = calloc(1, sizeof *l);
    if (!l) {
        http_reply_error(res, 503, "out of memory");
        return;
    }
    l->self = self;
    snprintf(l->sid, sizeof l->sid, "%s", c->sid);
    snprintf(l->name, sizeof l->name, "%s", c->who.name);
    events_stream_all(self->events, s_name_key(c->who.name), since, res, s_live_alive, l, free);
}

void admin_live(admin_api_t *self, events_t *events)
{
    self->events = events;
}

/* ---- audit and admins ---------------------------------------------------------------------------- */

static void s_audit(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) c;
    int limit;
    if (s_int_query(req, "limit", 1, S_AUDIT_MAX, 100, &limit) != 0) {
        http_reply_error(res, 400, "limit is 1 to 500");
        return;
    }
    const char *actor = http_query(req, "actor");
    char err[256];
    journal_reader_t *rd = journal_reader_open(self->cfg->journal_dir, 1, err, sizeof err);
    if (!rd) {
        http_reply_error(res, 503, "cannot read the journal");
        return;
    }
    /* the newest `limit` audit records: a ring of their JSON texts, printed newest first */
    char **ring = calloc((size_t) limit, sizeof *ring);
    record_t *r = malloc(sizeof *r);
    journal_entry_t je;
    long seen = 0;
    while (ring && r && journal_reader_next(rd, &je) == 1) {
        if (record_decode(je.payload, je.len, r, err, sizeof err) != 0 ||
            (r->kind != RECORD_ADMIN_ACTION && r->kind != RECORD_ADMIN_ACCOUNT) ||
            (actor && *actor && !strstr(r->actor, actor)))
            continue;
        jbuf_t one;
        jbuf_init(&one);
        record_to_json(r, je.lsn, &one);
        free(ring[seen % limit]);
        ring[seen % limit] = jbuf_take(&one);
        seen++;
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"audit\":[");
    long n = seen < limit ? seen : limit;
    for (long i = 0; ring && i < n; i++) {
        jbuf_puts(&b, i ? "," : "");
        jbuf_puts(&b, ring[(seen - 1 - i) % limit]);
    }
    jbuf_puts(&b, "]}");
    for (int i = 0; ring && i < limit; i++)
        free(ring[i]);
    free(ring);
    free(r);
    journal_reader_destroy(&rd);
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_admin_one(void *arg, const admin_view_t *a)
{
    jbuf_t *b = arg;
    if (b->len && b->data[b->len - 1] == '}')
        jbuf_puts(b, ",");
    jbuf_puts(b, "{\"name\":");
    jbuf_str(b, a->name);
    jbuf_puts(b, ",\"role\":");
    jbuf_str(b, admin_role_name(a->role));
    jbuf_printf(b, ",\"disabled\":%s,\"must_change\":%s,\"created_ms\":%lld,\"last_login_ms\":%lld}",
                a->disabled ? "true" : "false", a->must_change ? "true" : "false", (long long) a->created_ms,
                (long long) a->last_login_ms);
}

static void s_admins(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    admin_api_t *self = arg;
    (void) c;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"admins\":[");
    admins_each(self->admins, s_admin_one, &b);
    jbuf_puts(&b, "]}");
    http_reply_json(res, 200, jbuf_take(&b));
}

/* ---- setup --------------------------------------------------------------------------------------- */

admin_api_t *admin_routes(http_server_t *http, pipeline_t *pipeline, admins_t *admins, journal_t *journal,
                          const config_t *cfg, const session_opts_t *opts, const throttle_opts_t *topts, char *err,
                          size_t errlen)
{
    admin_api_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pipeline = pipeline;
    self->admins = admins;
    self->journal = journal;
    self->cfg = cfg;
    self->http = http;
    session_opts_t o = { .idle_s = 600, .absolute_s = 8 * 3600, .max_sessions = 1000 };
    throttle_opts_t th = { .pair_free = 5, .client_max = 20, .account_alarm = 20, .window_s = 900 };
    if (opts)
        o = *opts;
    if (topts)
        th = *topts;
    o.cookie = ADMIN_COOKIE;
    pthread_mutex_init(&self->mu, NULL);
    self->sessions = session_mongo_store(cfg, SESSION_MONGO_ADMINS, &o);
    self->throttle = throttle_new(&th);
    self->views = views_new(cfg, pipeline_registry(pipeline), 0, err, errlen);
    self->secure_cookie = cfg->cookie_secure;
    if (cfg->telegram_bot_token[0] && cfg->telegram_chat_id[0])
        self->tg = telegram_new(cfg->telegram_api_url, cfg->telegram_bot_token, S_LOCK_NOTICE_TIMEOUT_MS);
    if (cfg->cobo_wallet_id[0] && cfg->cobo_api_key[0] && cfg->cobo_api_secret[0]) {
        balances_opts_t bo = { .cobo_url = cfg->cobo_api_url, .api_key_hex = cfg->cobo_api_key,
                               .api_secret_hex = cfg->cobo_api_secret, .response_pubkey_hex = cfg->cobo_webhook_pubkey,
                               .wallet_id = cfg->cobo_wallet_id, .withdraw_wallet_id = cfg->cobo_withdraw_wallet_id,
                               .timeout_ms = config_cobo_timeout_ms(cfg),
                               .login_of = s_login_of, .login_arg = pipeline };
        char why[256];
        self->balances = balances_new(&bo, why, sizeof why);
        if (!self->balances)
            log_warn("admin.balances_off", "reason=\"%s\"", why);
    }
    if (!self->sessions || !self->throttle || !self->views) {
        if (self->views)
            snprintf(err, errlen, "out of memory");
        admin_api_destroy(&self);
        return NULL;
    }
    http_route(http, "POST", "/api/admin/login", s_login, self);   /* the one route without a session */
    static const struct {
        const char *method, *path;
        admin_action_t action;
        int must_change_ok;
        admin_handler_fn *fn;
    } routes[] = {
        { "GET", "/api/admin/session", ADMIN_ANY, 1, s_session },
        { "POST", "/api/admin/logout", ADMIN_ANY, 1, s_logout },
        { "POST", "/api/admin/password", ADMIN_ANY, 1, s_password },
        { "GET", "/api/admin/deposits", ADMIN_VIEW, 0, s_deposits },
        { "GET", "/api/admin/deposits/*", ADMIN_VIEW, 0, s_deposit },
        { "GET", "/api/admin/summary", ADMIN_VIEW, 0, s_summary },
        { "GET", "/api/admin/audit", ADMIN_VIEW, 0, s_audit },
        { "GET", "/api/admin/admins", ADMIN_VIEW, 0, s_admins },
        { "GET", "/api/admin/addresses", ADMIN_VIEW, 0, s_addresses },
        { "GET", "/api/admin/balances", ADMIN_VIEW, 0, s_balances },
        { "GET", "/api/admin/events", ADMIN_VIEW, 0, s_live },
        { "GET", "/api/admin/commands/*", ADMIN_VIEW, 0, s_command },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        s_route(self, routes[i].method, routes[i].path, routes[i].action, NULL, routes[i].must_change_ok, routes[i].fn,
                self);
    s_route(self, "POST", "/api/admin/deposits/*", ADMIN_ANY, s_act_action, 0, s_act, self);
    return self;
}

void admin_api_destroy(admin_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    admin_api_t *self = *self_p;
    balances_destroy(&self->balances);   /* after the server: a late answer is only freed */
    session_store_destroy(&self->sessions);
    views_destroy(&self->views);
    throttle_destroy(&self->throttle);
    telegram_destroy(&self->tg);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}
