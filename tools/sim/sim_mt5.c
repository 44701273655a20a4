/* sim_mt5.c — `kasa sim mt5`: an MT5 Web API access server on loopback (see sim_mt5.h, sim.h).
 *
 * Protocol (as the real server): GET /api/auth/start?version=&agent=&login=&type=manager gives a
 * srv_rand and a session cookie; GET /api/auth/answer?srv_rand_answer=&cli_rand= within 10 s proves
 * the password (HTTP 403 otherwise) and returns cli_rand_answer. Every other /api/ command needs an
 * authenticated session (HTTP 403 otherwise); a session idle for 180 s expires. Sessions are bound
 * to the cookie, not the connection. Retcodes are strings ("0 Done", "13 Not found").
 *
 * Commands: /api/test/access, /api/quit, /api/trade/balance (GET or POST, query parameters),
 * /api/deal/get_total, /api/deal/get_page, /api/deal/get_batch, /api/user/get,
 * /api/user/account/get, /api/group/get, /api/user/check_password (POST JSON body).
 * Money is held in exact minor units of the account's group currency; no floating point.
 *
 * Control (loopback clients only): GET /sim/accounts, GET /sim/deals[?login=L], GET /sim/stats,
 * POST /sim/faults {"drop_reply":0.3,"session_loss":0.1,"delay_ms":50,"permanent_login":100002,
 * "permanent_retcode":"8 Not enough permissions","retcode_once":"9 Timeout","close_next":1,
 * "fake_server":true,"kill_sessions":true,"group_retcode":"8 Not enough permissions","late_count":1,
 * "late_apply_ms":1500,"late_reply_ms":0,"late_chance":0.2,"comment_rewrite":"prefix:DEP ","page_max":7,
 * "odd_pages":1,"odd_page":"object","server_time_offset_s":7200,"expire_after":3}, POST /sim/trading_deals {"login":L,"count":N,"from":T1,"to":T2},
 * POST /sim/reset, POST /sim/deal {"ticket":T,"delete":true} or {"ticket":T,"amount":"12.34"} (a deal removed or
 * changed behind kasa's back, as a dealer can in the MT5 manager; the balance follows).
 *
 * Faults a real access server shows, and what kasa must survive:
 *  - late execution: a balance call is accepted but executed late (late_apply_ms after it arrived:
 *    the deal and its ticket appear then, with that time); its reply comes after late_reply_ms (the
 *    client has given up) or, with 0, the connection is dropped at once. late_count calls in a row,
 *    or each call with late_chance.
 *  - comment rewriting by a server plugin: "prefix:TEXT" (then cut to 31 characters, as MT5 does),
 *    "trim:N" (cut to N characters), "upper" (upper-cased); "" stores comments as sent.
 *  - short pages: get_page returns at most page_max deals whatever it was asked.
 *  - odd pages: the next odd_pages get_page answers are "object" (answer is an object), "element"
 *    (a non-object in the array) or "empty" (an empty array before the total).
 *  - trade-server time: deal Time and the from/to of deal searches are UTC + server_time_offset_s.
 *  - an expired session: the expire_after-th next command is answered 403 and its session dropped,
 *    as when the server dropped an idle session; the client must authenticate again. */
#include "tools/sim/sim_mt5.h"

#include <inttypes.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "actors/mt5.h"
#include "schema/json.h"
#include "tools/sim/sim.h"
#include "tools/sim/sim_http.h"

#define SIM_MAX_GROUPS 16
#define SIM_MAX_ACCOUNTS 4096
#define SIM_MAX_DEALS 1000000
#define SIM_MAX_SESSIONS 256
#define SIM_MAX_BODY 65536
#define SIM_SESSION_IDLE_MS 180000 /* the default of --session-idle-ms */
#define SIM_ANSWER_WINDOW_MS 10000
#define SIM_PPM 1000000u

typedef struct {
    char name[64];
    char currency[16];
    int digits;
} s_group_t;

typedef struct {
    uint64_t login;
    char password[64];
    char investor[64];
    int group;
    int64_t balance_minor;
    int64_t credit_minor;
    uint32_t deals;
} s_account_t;

typedef struct {
    uint64_t ticket;
    uint64_t login;
    int action;
    int64_t amount_minor;
    int digits;
    char comment[32];
    int64_t time_ms;
} s_deal_t;

#define SIM_MAX_LATE 64 /* balance calls accepted and not yet executed */

typedef struct {
    char cookie[33];
    int used;
    int authed;
    char srv_rand[33];
    int64_t start_ms, last_ms;
} s_session_t;

typedef struct {
    uint32_t drop_reply_ppm;
    uint32_t session_loss_ppm;
    int delay_ms;
    uint64_t permanent_login;
    char permanent_retcode[64];
    char retcode_once[64];
    int close_next;   /* the next N replies carry "Connection: close" */
    int fake_server;  /* answer the handshake with a wrong cli_rand_answer */
    char group_retcode[64]; /* while set, /api/group/get answers this retcode (a group kasa cannot read) */
    int late_count;          /* the next N balance calls execute late */
    uint32_t late_ppm;       /* or each balance call with this chance */
    int late_apply_ms;       /* executed this long after it arrived */
    int late_reply_ms;       /* answered this long after it arrived; 0: connection dropped */
    char comment_rewrite[40];/* "prefix:TEXT", "trim:N", "upper" or "" */
    int page_max;            /* get_page returns at most this many deals (0: as asked) */
    int odd_pages;           /* the next N get_page answers are odd */
    char odd_page[16];       /* "object", "element" or "empty" */
    int64_t server_time_offset_s; /* deal times are UTC + this */
    int expire_after;        /* the N-th next command finds its session expired (403), once */
} s_faults_t;

static _Thread_local int s_close_this; /* set per request by s_handler (one thread per connection) */

struct sim_mt5_t {
    pthread_mutex_t mu;
    struct MHD_Daemon *daemon;
    int port;
    uint64_t manager;
    unsigned char manager_h2[16];
    s_group_t groups[SIM_MAX_GROUPS];
    int group_count;
    s_account_t *accounts, *initial;
    int account_count;
    s_deal_t *deals;
    size_t deal_count, deal_cap;
    uint64_t next_ticket;
    s_session_t sessions[SIM_MAX_SESSIONS];
    s_faults_t faults, initial_faults;
    s_deal_t late[SIM_MAX_LATE];   /* accepted balance deals, executed at their time_ms */
    int late_n;
    uint64_t rng;
    uint64_t auths, auth_failures, balance_calls, dropped, forbidden;
    int64_t session_idle_ms;
    char *tls_cert, *tls_key; /* PEM text, when serving HTTPS */
};

/* ---- small helpers ------------------------------------------------------------------------------ */

/* Under s->mu. */
static int s_chance(sim_mt5_t *s, uint32_t ppm) { return ppm && (sim_http_rand(&s->rng) % SIM_PPM) < ppm; }

/* "0.3" / "1" / "0" -> parts per million. 0, or -1. */
static int s_parse_ppm(const char *text, uint32_t *out)
{
    uint64_t whole = 0, frac = 0, scale = SIM_PPM;
    const char *p = text;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        whole = whole * 10 + (uint64_t) (*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (scale > 1)
                scale /= 10, frac += (uint64_t) (*p - '0') * scale;
    if (*p || whole > 1 || (whole == 1 && frac))
        return -1;
    *out = (uint32_t) (whole * SIM_PPM + frac);
    return 0;
}

static int s_parse_i64(const char *text, int64_t *out)
{
    uint64_t v;
    int neg = text && *text == '-';
    if (mt5_parse_u64(text ? text + neg : NULL, &v) != 0 || v > (uint64_t) INT64_MAX)
        return -1;
    *out = neg ? -(int64_t) v : (int64_t) v;
    return 0;
}

static s_account_t *s_account(sim_mt5_t *s, uint64_t login)
{
    for (int i = 0; i < s->account_count; i++)
        if (s->accounts[i].login == login)
            return &s->accounts[i];
    return NULL;
}

static int s_group_find(sim_mt5_t *s, const char *name)
{
    for (int i = 0; i < s->group_count; i++)
        if (strcmp(s->groups[i].name, name) == 0)
            return i;
    return -1;
}

static void s_money(int64_t minor, int digits, char *buf, size_t len)
{
    if (mt5_format_amount(minor, digits, buf, len) != 0)
        snprintf(buf, len, "?");
}

static const char *s_arg(struct MHD_Connection *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status, const char *json,
                               const char *cookie)
{
    struct MHD_Response *r = sim_http_json(json);
    if (!r)
        return MHD_NO;
    if (s_close_this)
        MHD_add_response_header(r, "Connection", "close");
    if (cookie) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "_mt5sid=%s; Path=/; HttpOnly", cookie);
        MHD_add_response_header(r, "Set-Cookie", hdr);
    }
    return sim_http_send(conn, status, r);
}

/* Answers 200 with the JSON in b, and frees b. */
static enum MHD_Result s_reply_buf(struct MHD_Connection *conn, jbuf_t *b)
{
    enum MHD_Result rc = s_reply(conn, MHD_HTTP_OK, b->data, NULL);
    jbuf_free(b);
    return rc;
}

static enum MHD_Result s_retcode(struct MHD_Connection *conn, const char *retcode)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"retcode\":");
    jbuf_str(&b, retcode);
    jbuf_puts(&b, "}");
    return s_reply_buf(conn, &b);
}

static enum MHD_Result s_forbidden(struct MHD_Connection *conn)
{
    return s_reply(conn, MHD_HTTP_FORBIDDEN, "{\"retcode\":\"8 Access denied\"}", NULL);
}

/* ---- sessions (under s->mu) ------------------------------------------------------------------------- */

static s_session_t *s_session(sim_mt5_t *s, const char *cookie, int64_t now)
{
    if (!cookie)
        return NULL;
    for (int i = 0; i < SIM_MAX_SESSIONS; i++) {
        s_session_t *x = &s->sessions[i];
        if (!x->used || strcmp(x->cookie, cookie) != 0)
            continue;
        if (now - x->last_ms > s->session_idle_ms) {
            x->used = 0;
            return NULL;
        }
        return x;
    }
    return NULL;
}

static s_session_t *s_session_new(sim_mt5_t *s, int64_t now)
{
    s_session_t *slot = NULL;
    for (int i = 0; i < SIM_MAX_SESSIONS; i++) {
        s_session_t *x = &s->sessions[i];
        if (x->used && now - x->last_ms > s->session_idle_ms)
            x->used = 0;
        if (!x->used) {
            if (!slot || slot->used)
                slot = x; /* a free slot first */
        } else if (!slot || (slot->used && x->last_ms < slot->last_ms)) {
            slot = x;     /* else the least recently used session */
        }
    }
    unsigned char bytes[16];
    memset(slot, 0, sizeof *slot);
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes)
        abort(); /* the kernel's generator does not fail for 16 bytes */
    for (int i = 0; i < 16; i++)
        snprintf(slot->cookie + 2 * i, 3, "%02x", bytes[i]);
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes)
        abort();
    for (int i = 0; i < 16; i++)
        snprintf(slot->srv_rand + 2 * i, 3, "%02x", bytes[i]);
    slot->used = 1;
    slot->start_ms = slot->last_ms = now;
    return slot;
}

/* ---- /api/ endpoints (under s->mu) --------------------------------------------------------------------- */

static enum MHD_Result s_auth_start(sim_mt5_t *s, struct MHD_Connection *conn, const char *cookie, int64_t now)
{
    const char *version = s_arg(conn, "version"), *agent = s_arg(conn, "agent");
    const char *login = s_arg(conn, "login"), *type = s_arg(conn, "type");
    uint64_t v = 0, l = 0;
    if (!version || mt5_parse_u64(version, &v) != 0 || v < 484 || !agent || !*agent || strchr(agent, ' ')
        || !login || mt5_parse_u64(login, &l) != 0 || !type || strcmp(type, "manager") != 0)
        return s_retcode(conn, "3 Invalid parameters");
    s_session_t *old = s_session(s, cookie, now);
    if (old)
        old->used = 0;
    s_session_t *x = s_session_new(s, now);
    x->authed = (l == s->manager) ? 0 : -1; /* -1: an unknown manager never passes the answer */
    char json[128];
    snprintf(json, sizeof json, "{\"retcode\":\"0 Done\",\"srv_rand\":\"%s\"}", x->srv_rand);
    return s_reply(conn, MHD_HTTP_OK, json, x->cookie);
}

static enum MHD_Result s_auth_answer(sim_mt5_t *s, struct MHD_Connection *conn, const char *cookie, int64_t now)
{
    const char *answer = s_arg(conn, "srv_rand_answer"), *cli_rand = s_arg(conn, "cli_rand");
    s_session_t *x = s_session(s, cookie, now);
    char expect[33], cli_answer[33];
    if (!x || x->authed != 0 || now - x->start_ms > SIM_ANSWER_WINDOW_MS || !answer || !cli_rand
        || mt5_auth_answer(s->manager_h2, x->srv_rand, expect) != 0 || strcasecmp(answer, expect) != 0
        || strlen(cli_rand) != 32 || mt5_auth_answer(s->manager_h2, cli_rand, cli_answer) != 0) {
        if (x)
            x->used = 0;
        s->auth_failures++;
        return s_forbidden(conn);
    }
    x->authed = 1;
    x->last_ms = now;
    s->auths++;
    if (s->faults.fake_server)
        cli_answer[0] = cli_answer[0] == '0' ? '1' : '0';
    char json[128];
    snprintf(json, sizeof json, "{\"retcode\":\"0 Done\",\"cli_rand_answer\":\"%s\"}", cli_answer);
    return s_reply(conn, MHD_HTTP_OK, json, NULL);
}

/* A deal's time on the server's clock (UTC + server_time_offset_s), in ms. */
static int64_t s_deal_ms(const sim_mt5_t *s, const s_deal_t *d)
{
    return d->time_ms + s->faults.server_time_offset_s * 1000;
}

/* The comment as the server's plugin stores it (see comment_rewrite), at most 31 characters. */
static void s_rewrite_comment(const sim_mt5_t *s, const char *in, char out[32])
{
    const char *rw = s->faults.comment_rewrite;
    char buf[80];
    if (strncmp(rw, "prefix:", 7) == 0) {
        snprintf(buf, sizeof buf, "%s%s", rw + 7, in);
    } else if (strncmp(rw, "trim:", 5) == 0) {
        snprintf(buf, sizeof buf, "%s", in);
        size_t n = (size_t) atoi(rw + 5);
        if (n < strlen(buf))
            buf[n] = '\0';
    } else {
        snprintf(buf, sizeof buf, "%s", in);
        if (strcmp(rw, "upper") == 0)
            for (char *p = buf; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char) (*p - 'a' + 'A');
    }
    snprintf(out, 32, "%.31s", buf);
}

/* Appends a deal (time_ms on kasa's UTC clock) and moves the account's balance. 0, or -1 when full. */
static int s_deal_add(sim_mt5_t *s, const s_deal_t *in)
{
    if (s->deal_count == s->deal_cap) {
        size_t cap = s->deal_cap ? s->deal_cap * 2 : 1024;
        if (s->deal_count >= SIM_MAX_DEALS)
            return -1;
        s_deal_t *p = realloc(s->deals, cap * sizeof *p);
        if (!p)
            return -1;
        s->deals = p;
        s->deal_cap = cap;
    }
    s->deals[s->deal_count++] = *in;
    s_account_t *a = s_account(s, in->login);
    if (a && in->action == 2) {
        a->balance_minor += in->amount_minor;
        a->deals++;
    }
    return 0;
}

/* Executes the late balance calls whose time has come (as the server would have by now). */
static void s_apply_late(sim_mt5_t *s, int64_t now)
{
    int kept = 0;
    for (int i = 0; i < s->late_n; i++) {
        if (s->late[i].time_ms <= now)
            s_deal_add(s, &s->late[i]);
        else
            s->late[kept++] = s->late[i];
    }
    s->late_n = kept;
}

static void s_deal_json(sim_mt5_t *s, jbuf_t *b, const s_deal_t *d)
{
    char amount[48];
    s_money(d->amount_minor, d->digits, amount, sizeof amount);
    jbuf_printf(b, "{\"Deal\":\"%" PRIu64 "\",\"ExternalID\":\"\",\"Login\":\"%" PRIu64 "\",\"Dealer\":\"%" PRIu64 "\","
                "\"Order\":\"0\",\"Action\":\"%d\",\"Entry\":\"0\",\"Reason\":\"0\",\"Digits\":\"0\","
                "\"DigitsCurrency\":\"%d\",\"ContractSize\":\"0\",\"Time\":\"%" PRId64 "\",\"TimeMsc\":\"%" PRId64 "\","
                "\"Symbol\":\"\",\"Price\":\"0\",\"Volume\":\"0\",\"Profit\":\"%s\",\"Storage\":\"0\","
                "\"Commission\":\"0\",\"PositionID\":\"0\",\"Comment\":",
                d->ticket, d->login, s->manager, d->action, d->digits, s_deal_ms(s, d) / 1000, s_deal_ms(s, d), amount);
    jbuf_str(b, d->comment);
    jbuf_puts(b, "}");
}

static enum MHD_Result s_balance(sim_mt5_t *s, struct MHD_Connection *conn, int *drop, int *hold_ms)
{
    const char *login = s_arg(conn, "login"), *type = s_arg(conn, "type"), *balance = s_arg(conn, "balance");
    const char *comment = s_arg(conn, "comment"), *check = s_arg(conn, "check_margin");
    uint64_t l = 0;
    s->balance_calls++;
    if (s->faults.retcode_once[0]) {
        char rc[64];
        snprintf(rc, sizeof rc, "%s", s->faults.retcode_once);
        s->faults.retcode_once[0] = '\0';
        return s_retcode(conn, rc);
    }
    if (!login || mt5_parse_u64(login, &l) != 0 || !type || !balance)
        return s_retcode(conn, "3 Invalid parameters");
    if (strcmp(type, "2") != 0)
        return s_retcode(conn, "3 Invalid parameters"); /* credit, charge, bonus: not simulated */
    if (comment && strlen(comment) > MT5_COMMENT_MAX)
        return s_retcode(conn, "3 Invalid parameters");
    if (check && strcmp(check, "0") != 0 && strcmp(check, "1") != 0)
        return s_retcode(conn, "3 Invalid parameters");
    s_account_t *a = s_account(s, l);
    if (!a)
        return s_retcode(conn, "13 Not found");
    if (s->faults.permanent_login == l)
        return s_retcode(conn, s->faults.permanent_retcode);
    int digits = s->groups[a->group].digits;
    int64_t amount = 0, limit = 1000000000;
    for (int i = 0; i < digits; i++)
        limit *= 10;
    if (mt5_parse_amount(balance, digits, &amount) != 0 || amount == 0)
        return s_retcode(conn, "3 Invalid parameters");
    if (amount > limit || amount < -limit)
        return s_retcode(conn, "4005 Amount over limit");
    if (a->balance_minor + amount < 0)
        return s_retcode(conn, "10019 No money");
    s_deal_t nd;
    memset(&nd, 0, sizeof nd);
    nd.ticket = s->next_ticket++;
    nd.login = l;
    nd.action = 2;
    nd.amount_minor = amount;
    nd.digits = digits;
    s_rewrite_comment(s, comment ? comment : "", nd.comment);
    nd.time_ms = sim_http_now_ms();
    char json[128];
    snprintf(json, sizeof json, "{\"retcode\":\"0 Done\",\"answer\":{\"Ticket\":\"%" PRIu64 "\"}}", nd.ticket);
    int late = s->late_n < SIM_MAX_LATE && (s->faults.late_count > 0 || s_chance(s, s->faults.late_ppm));
    if (late) {   /* accepted now, executed later; the client is answered too late or not at all */
        if (s->faults.late_count > 0)
            s->faults.late_count--;
        nd.time_ms += s->faults.late_apply_ms;
        s->late[s->late_n++] = nd;
        s->dropped++;
        if (s->faults.late_reply_ms <= 0) {
            *drop = 1;
            return MHD_NO;
        }
        *hold_ms = s->faults.late_reply_ms;
        return s_reply(conn, MHD_HTTP_OK, json, NULL);
    }
    if (s_deal_add(s, &nd) != 0)
        return s_retcode(conn, "10 No connection"); /* the simulator's bound */
    if (s_chance(s, s->faults.drop_reply_ppm)) {
        s->dropped++;
        *drop = 1;
        return MHD_NO;
    }
    return s_reply(conn, MHD_HTTP_OK, json, NULL);
}

/* login (one, or a comma list for get_batch) and from/to; -1 on bad parameters. */
static int s_deal_window(struct MHD_Connection *conn, int64_t *from_s, int64_t *to_s)
{
    const char *from = s_arg(conn, "from"), *to = s_arg(conn, "to");
    if (!from || !to || s_parse_i64(from, from_s) != 0 || s_parse_i64(to, to_s) != 0)
        return -1;
    return 0;
}

static int s_deal_in(const sim_mt5_t *s, const s_deal_t *d, uint64_t login, int64_t from_s, int64_t to_s)
{
    int64_t t = s_deal_ms(s, d) / 1000;
    return d->login == login && t >= from_s && t <= to_s;
}

static enum MHD_Result s_deals(sim_mt5_t *s, struct MHD_Connection *conn, int page)
{
    const char *login = s_arg(conn, "login");
    uint64_t l = 0, offset = 0, total = 0;
    int64_t from_s, to_s;
    if (!login || mt5_parse_u64(login, &l) != 0 || s_deal_window(conn, &from_s, &to_s) != 0)
        return s_retcode(conn, "3 Invalid parameters");
    if (!s_account(s, l))
        return s_retcode(conn, "13 Not found");
    if (!page) {
        uint64_t n = 0;
        for (size_t i = 0; i < s->deal_count; i++)
            n += s_deal_in(s, &s->deals[i], l, from_s, to_s);
        char json[96];
        snprintf(json, sizeof json, "{\"retcode\":\"0 Done\",\"answer\":{\"Total\":\"%" PRIu64 "\"}}", n);
        return s_reply(conn, MHD_HTTP_OK, json, NULL);
    }
    if (mt5_parse_u64(s_arg(conn, "offset"), &offset) != 0 || mt5_parse_u64(s_arg(conn, "total"), &total) != 0
        || total == 0 || total > 100)
        return s_retcode(conn, "3 Invalid parameters");
    if (s->faults.page_max > 0 && total > (uint64_t) s->faults.page_max)
        total = (uint64_t) s->faults.page_max;   /* a server that returns shorter pages */
    jbuf_t b;
    jbuf_init(&b);
    if (s->faults.odd_pages > 0) {
        s->faults.odd_pages--;
        if (strcmp(s->faults.odd_page, "object") == 0)
            jbuf_puts(&b, "{\"retcode\":\"0 Done\",\"answer\":{}}");
        else if (strcmp(s->faults.odd_page, "element") == 0)
            jbuf_puts(&b, "{\"retcode\":\"0 Done\",\"answer\":[\"deal\"]}");
        else
            jbuf_puts(&b, "{\"retcode\":\"0 Done\",\"answer\":[]}");
        return s_reply_buf(conn, &b);
    }
    jbuf_puts(&b, "{\"retcode\":\"0 Done\",\"answer\":[");
    uint64_t seen = 0, out = 0;
    for (size_t i = 0; i < s->deal_count && out < total; i++) {
        if (!s_deal_in(s, &s->deals[i], l, from_s, to_s))
            continue;
        if (seen++ < offset)
            continue;
        if (out++)
            jbuf_puts(&b, ",");
        s_deal_json(s, &b, &s->deals[i]);
    }
    jbuf_puts(&b, "]}");
    return s_reply_buf(conn, &b);
}

static enum MHD_Result s_deal_batch(sim_mt5_t *s, struct MHD_Connection *conn)
{
    const char *logins = s_arg(conn, "login"), *ticket = s_arg(conn, "ticket");
    uint64_t t = 0, list[100];
    int n = 0;
    int64_t from_s = 0, to_s = 0;
    if (ticket) {
        if (mt5_parse_u64(ticket, &t) != 0)
            return s_retcode(conn, "3 Invalid parameters");
    } else {
        if (!logins || s_deal_window(conn, &from_s, &to_s) != 0)
            return s_retcode(conn, "3 Invalid parameters");
        char buf[1024], *save = NULL;
        snprintf(buf, sizeof buf, "%s", logins);
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (n == 100 || mt5_parse_u64(tok, &list[n]) != 0)
                return s_retcode(conn, "3 Invalid parameters");
            n++;
        }
        if (n == 0)
            return s_retcode(conn, "3 Invalid parameters");
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"retcode\":\"0 Done\",\"answer\":[");
    int out = 0;
    for (size_t i = 0; i < s->deal_count && out < 100000; i++) {
        const s_deal_t *d = &s->deals[i];
        int match = 0;
        if (ticket)
            match = d->ticket == t;
        else
            for (int k = 0; k < n && !match; k++)
                match = s_deal_in(s, d, list[k], from_s, to_s);
        if (!match)
            continue;
        if (out++)
            jbuf_puts(&b, ",");
        s_deal_json(s, &b, d);
    }
    jbuf_puts(&b, "]}");
    return s_reply_buf(conn, &b);
}

static enum MHD_Result s_user(sim_mt5_t *s, struct MHD_Connection *conn, int account)
{
    uint64_t l = 0;
    if (mt5_parse_u64(s_arg(conn, "login"), &l) != 0)
        return s_retcode(conn, "3 Invalid parameters");
    s_account_t *a = s_account(s, l);
    if (!a)
        return s_retcode(conn, "13 Not found");
    const s_group_t *g = &s->groups[a->group];
    char bal[48], cred[48], eq[48];
    s_money(a->balance_minor, g->digits, bal, sizeof bal);
    s_money(a->credit_minor, g->digits, cred, sizeof cred);
    s_money(a->balance_minor + a->credit_minor, g->digits, eq, sizeof eq);
    jbuf_t b;
    jbuf_init(&b);
    if (account) {
        jbuf_printf(&b, "{\"retcode\":\"0 Done\",\"answer\":{\"Login\":\"%" PRIu64 "\",\"CurrencyDigits\":\"%d\","
                    "\"Balance\":\"%s\",\"Credit\":\"%s\",\"Margin\":\"0\",\"MarginFree\":\"%s\","
                    "\"MarginLevel\":\"0\",\"Profit\":\"0\",\"Equity\":\"%s\"}}",
                    a->login, g->digits, bal, cred, eq, eq);
    } else {
        jbuf_printf(&b, "{\"retcode\":\"0 Done\",\"answer\":{\"Login\":\"%" PRIu64 "\",\"Group\":", a->login);
        jbuf_str(&b, g->name);
        jbuf_printf(&b, ",\"Name\":\"Investor %" PRIu64 "\",\"Leverage\":\"100\",\"Rights\":\"483\","
                    "\"Balance\":\"%s\",\"Credit\":\"%s\",\"Registration\":\"0\"}}", a->login, bal, cred);
    }
    return s_reply_buf(conn, &b);
}

static enum MHD_Result s_group(sim_mt5_t *s, struct MHD_Connection *conn)
{
    if (s->faults.group_retcode[0])
        return s_retcode(conn, s->faults.group_retcode);
    const char *name = s_arg(conn, "group");
    int gi = name ? s_group_find(s, name) : -1;
    if (gi < 0)
        return s_retcode(conn, name ? "13 Not found" : "3 Invalid parameters");
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"retcode\":\"0 Done\",\"answer\":{\"Group\":");
    jbuf_str(&b, s->groups[gi].name);
    jbuf_puts(&b, ",\"Currency\":");
    jbuf_str(&b, s->groups[gi].currency);
    jbuf_printf(&b, ",\"CurrencyDigits\":\"%d\",\"MarginCall\":\"50\",\"MarginStopOut\":\"30\"}}", s->groups[gi].digits);
    return s_reply_buf(conn, &b);
}

static enum MHD_Result s_check_password(sim_mt5_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    char perr[64];
    uint64_t l = 0;
    if (s_arg(conn, "password") || s_arg(conn, "Password"))
        return s_retcode(conn, "3 Invalid parameters"); /* never in the query string */
    if (json_parse(req->body.data ? req->body.data : "", req->body.len, &doc, perr, sizeof perr) != 0) {
        bson_destroy(&doc);
        return s_retcode(conn, "3 Invalid parameters");
    }
    const char *login = json_get_str(&doc, "Login"), *type = json_get_str(&doc, "Type");
    const char *pw = json_get_str(&doc, "Password");
    int64_t li = 0;
    if (login ? mt5_parse_u64(login, &l) != 0 : (json_get_i64(&doc, "Login", &li) != 0 || li <= 0)) {
        bson_destroy(&doc);
        return s_retcode(conn, "3 Invalid parameters");
    }
    if (!login)
        l = (uint64_t) li;
    if (!pw || !type || (strcmp(type, "main") && strcmp(type, "investor") && strcmp(type, "api"))) {
        bson_destroy(&doc);
        return s_retcode(conn, "3 Invalid parameters");
    }
    s_account_t *a = s_account(s, l);
    int ok = 0;
    if (a) {
        const char *want = strcmp(type, "main") == 0 ? a->password : strcmp(type, "investor") == 0 ? a->investor : "";
        ok = *want && strcmp(pw, want) == 0;
    }
    bson_destroy(&doc);
    if (!a)
        return s_retcode(conn, "13 Not found");
    return s_retcode(conn, ok ? "0 Done" : "3006 Invalid account password");
}

/* ---- /sim/ control ------------------------------------------------------------------------------------- */

static void s_faults_json(const s_faults_t *f, jbuf_t *b)
{
    jbuf_printf(b, "{\"drop_reply_ppm\":%u,\"session_loss_ppm\":%u,\"delay_ms\":%d,\"permanent_login\":%" PRIu64
                ",\"permanent_retcode\":", f->drop_reply_ppm, f->session_loss_ppm, f->delay_ms, f->permanent_login);
    jbuf_str(b, f->permanent_retcode);
    jbuf_puts(b, ",\"retcode_once\":");
    jbuf_str(b, f->retcode_once);
    jbuf_printf(b, ",\"close_next\":%d,\"fake_server\":%s,\"group_retcode\":", f->close_next,
                f->fake_server ? "true" : "false");
    jbuf_str(b, f->group_retcode);
    jbuf_printf(b, ",\"late_count\":%d,\"late_chance_ppm\":%u,\"late_apply_ms\":%d,\"late_reply_ms\":%d,"
                "\"comment_rewrite\":", f->late_count, f->late_ppm, f->late_apply_ms, f->late_reply_ms);
    jbuf_str(b, f->comment_rewrite);
    jbuf_printf(b, ",\"page_max\":%d,\"odd_pages\":%d,\"odd_page\":", f->page_max, f->odd_pages);
    jbuf_str(b, f->odd_page);
    jbuf_printf(b, ",\"server_time_offset_s\":%" PRId64 ",\"expire_after\":%d}", f->server_time_offset_s,
                f->expire_after);
}

static int s_json_ppm(const bson_t *doc, const char *key, uint32_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key))
        return 0;
    double d;
    if (BSON_ITER_HOLDS_DOUBLE(&it))
        d = bson_iter_double(&it);
    else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it))
        d = (double) bson_iter_as_int64(&it);
    else
        return -1;
    if (!(d >= 0.0 && d <= 1.0))
        return -1;
    *out = (uint32_t) (d * SIM_PPM + 0.5); /* a probability, not money */
    return 0;
}

static enum MHD_Result s_sim_faults(sim_mt5_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    char perr[64];
    int64_t v;
    if (json_parse(req->body.data ? req->body.data : "", req->body.len, &doc, perr, sizeof perr) != 0) {
        bson_destroy(&doc);
        return s_reply(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"body must be a JSON object\"}", NULL);
    }
    s_faults_t f = s->faults;
    int bad = s_json_ppm(&doc, "drop_reply", &f.drop_reply_ppm) || s_json_ppm(&doc, "session_loss", &f.session_loss_ppm)
              || s_json_ppm(&doc, "late_chance", &f.late_ppm);
    static const struct { const char *key; size_t off; int64_t lo, hi; } ints[] = {
        { "late_count", offsetof(s_faults_t, late_count), 0, 1000000 },
        { "late_apply_ms", offsetof(s_faults_t, late_apply_ms), 0, 600000 },
        { "late_reply_ms", offsetof(s_faults_t, late_reply_ms), 0, 600000 },
        { "page_max", offsetof(s_faults_t, page_max), 0, 100 },
        { "odd_pages", offsetof(s_faults_t, odd_pages), 0, 1000000 },
        { "expire_after", offsetof(s_faults_t, expire_after), 0, 1000000 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (json_has(&doc, ints[i].key)) {
            int ok = json_get_i64(&doc, ints[i].key, &v) == 0 && v >= ints[i].lo && v <= ints[i].hi;
            if (ok)
                *(int *) ((char *) &f + ints[i].off) = (int) v;
            bad |= !ok;
        }
    if (json_has(&doc, "server_time_offset_s"))
        bad |= json_get_i64(&doc, "server_time_offset_s", &v) != 0 || v < -86400 || v > 86400
               || ((f.server_time_offset_s = v), 0);
    const char *rw = json_get_str(&doc, "comment_rewrite");
    if (rw) {
        bad |= !(rw[0] == '\0' || strcmp(rw, "upper") == 0 || (strncmp(rw, "prefix:", 7) == 0 && rw[7])
                 || (strncmp(rw, "trim:", 5) == 0 && atoi(rw + 5) > 0)) || strlen(rw) >= sizeof f.comment_rewrite;
        snprintf(f.comment_rewrite, sizeof f.comment_rewrite, "%s", rw);
    }
    const char *odd = json_get_str(&doc, "odd_page");
    if (odd) {
        bad |= strcmp(odd, "object") != 0 && strcmp(odd, "element") != 0 && strcmp(odd, "empty") != 0;
        snprintf(f.odd_page, sizeof f.odd_page, "%s", odd);
    }
    if (json_has(&doc, "delay_ms"))
        bad |= json_get_i64(&doc, "delay_ms", &v) != 0 || v < 0 || v > 600000 || ((f.delay_ms = (int) v), 0);
    if (json_has(&doc, "permanent_login"))
        bad |= json_get_i64(&doc, "permanent_login", &v) != 0 || v < 0 || ((f.permanent_login = (uint64_t) v), 0);
    if (json_has(&doc, "close_next"))
        bad |= json_get_i64(&doc, "close_next", &v) != 0 || v < 0 || v > 1000000 || ((f.close_next = (int) v), 0);
    bson_iter_t it;
    if (bson_iter_init_find(&it, &doc, "fake_server"))
        f.fake_server = BSON_ITER_HOLDS_BOOL(&it) ? bson_iter_bool(&it) : 0;
    if (bson_iter_init_find(&it, &doc, "kill_sessions") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it))
        memset(s->sessions, 0, sizeof s->sessions); /* every session expires now */
    const char *str = json_get_str(&doc, "permanent_retcode");
    if (str)
        snprintf(f.permanent_retcode, sizeof f.permanent_retcode, "%s", str);
    str = json_get_str(&doc, "retcode_once");
    if (str)
        snprintf(f.retcode_once, sizeof f.retcode_once, "%s", str);
    str = json_get_str(&doc, "group_retcode");   /* "" clears it */
    if (str)
        snprintf(f.group_retcode, sizeof f.group_retcode, "%s", str);
    bson_destroy(&doc);
    if (bad)
        return s_reply(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"bad fault value\"}", NULL);
    s->faults = f;
    jbuf_t b;
    jbuf_init(&b);
    s_faults_json(&s->faults, &b);
    return s_reply_buf(conn, &b);
}

/* POST /sim/trading_deals {"login":L,"count":N,"from":T1,"to":T2}: N trading deals (buy/sell,
 * no balance change) on L, their times spread evenly over [T1, T2] (UTC seconds): an account that
 * trades heavily, for searches to wade through. */
static enum MHD_Result s_sim_trading(sim_mt5_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    char perr[64];
    int64_t login = 0, count = 0, from = 0, to = 0;
    int ok = json_parse(req->body.data ? req->body.data : "", req->body.len, &doc, perr, sizeof perr) == 0
             && json_get_i64(&doc, "login", &login) == 0 && json_get_i64(&doc, "count", &count) == 0
             && json_get_i64(&doc, "from", &from) == 0 && json_get_i64(&doc, "to", &to) == 0;
    bson_destroy(&doc);
    s_account_t *a = ok ? s_account(s, (uint64_t) login) : NULL;
    if (!a || count < 1 || count > SIM_MAX_DEALS || from > to)
        return s_reply(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"login (known), count 1..1000000, from <= to\"}",
                       NULL);
    for (int64_t i = 0; i < count; i++) {
        s_deal_t d;
        memset(&d, 0, sizeof d);
        d.ticket = s->next_ticket++;
        d.login = a->login;
        d.action = (int) (i & 1);   /* 0 buy, 1 sell */
        d.digits = s->groups[a->group].digits;
        snprintf(d.comment, sizeof d.comment, "trade %" PRId64, i);
        d.time_ms = (from + (count > 1 ? (to - from) * i / (count - 1) : 0)) * 1000;
        if (s_deal_add(s, &d) != 0)
            return s_reply(conn, MHD_HTTP_INSUFFICIENT_STORAGE, "{\"error\":\"deal store full\"}", NULL);
    }
    char json[64];
    snprintf(json, sizeof json, "{\"added\":%" PRId64 "}", count);
    return s_reply(conn, MHD_HTTP_OK, json, NULL);
}

static enum MHD_Result s_sim_accounts(sim_mt5_t *s, struct MHD_Connection *conn)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"accounts\":[");
    for (int i = 0; i < s->account_count; i++) {
        const s_account_t *a = &s->accounts[i];
        const s_group_t *g = &s->groups[a->group];
        char bal[48];
        s_money(a->balance_minor, g->digits, bal, sizeof bal);
        jbuf_printf(&b, "%s{\"login\":%" PRIu64 ",\"group\":", i ? "," : "", a->login);
        jbuf_str(&b, g->name);
        jbuf_printf(&b, ",\"currency\":\"%s\",\"digits\":%d,\"balance\":\"%s\",\"deals\":%u}",
                    g->currency, g->digits, bal, a->deals);
    }
    jbuf_puts(&b, "]}");
    return s_reply_buf(conn, &b);
}

static enum MHD_Result s_sim_deals(sim_mt5_t *s, struct MHD_Connection *conn)
{
    const char *login = s_arg(conn, "login");
    uint64_t l = 0;
    if (login && mt5_parse_u64(login, &l) != 0)
        return s_reply(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"bad login\"}", NULL);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"deals\":[");
    int out = 0;
    for (size_t i = 0; i < s->deal_count; i++) {
        const s_deal_t *d = &s->deals[i];
        if (login && d->login != l)
            continue;
        char amount[48];
        s_money(d->amount_minor, d->digits, amount, sizeof amount);
        jbuf_printf(&b, "%s{\"ticket\":%" PRIu64 ",\"login\":%" PRIu64 ",\"action\":%d,\"amount\":\"%s\",\"comment\":",
                    out++ ? "," : "", d->ticket, d->login, d->action, amount);
        jbuf_str(&b, d->comment);
        jbuf_printf(&b, ",\"time\":%" PRId64 ",\"time_msc\":%" PRId64 "}", s_deal_ms(s, d) / 1000, s_deal_ms(s, d));
    }
    jbuf_puts(&b, "]}");
    return s_reply_buf(conn, &b);
}

static enum MHD_Result s_sim_stats(sim_mt5_t *s, struct MHD_Connection *conn, int64_t now)
{
    int live = 0;
    for (int i = 0; i < SIM_MAX_SESSIONS; i++)
        live += s->sessions[i].used && s->sessions[i].authed == 1 && now - s->sessions[i].last_ms <= s->session_idle_ms;
    char json[320];
    snprintf(json, sizeof json,
             "{\"auths\":%" PRIu64 ",\"auth_failures\":%" PRIu64 ",\"sessions\":%d,\"balance_calls\":%" PRIu64
             ",\"dropped\":%" PRIu64 ",\"forbidden\":%" PRIu64 ",\"deals\":%zu}",
             s->auths, s->auth_failures, live, s->balance_calls, s->dropped, s->forbidden, s->deal_count);
    return s_reply(conn, MHD_HTTP_OK, json, NULL);
}

/* POST /sim/deal: deletes a deal or sets its amount; the account's balance follows. */
static enum MHD_Result s_sim_deal(sim_mt5_t *s, struct MHD_Connection *conn, const sim_request_t *req)
{
    bson_t doc;
    char perr[64];
    if (json_parse(req->body.data ? req->body.data : "", req->body.len, &doc, perr, sizeof perr) != 0) {
        bson_destroy(&doc);
        return s_reply(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"body must be a JSON object\"}", NULL);
    }
    int64_t ticket = 0;
    bson_iter_t it;
    int del = bson_iter_init_find(&it, &doc, "delete") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
    char amount_s[48] = "";
    const char *a = json_get_str(&doc, "amount");
    if (a)
        snprintf(amount_s, sizeof amount_s, "%s", a);
    int has_ticket = json_get_i64(&doc, "ticket", &ticket) == 0;
    bson_destroy(&doc);
    size_t i = 0;
    while (has_ticket && i < s->deal_count && s->deals[i].ticket != (uint64_t) ticket)
        i++;
    if (!has_ticket || i == s->deal_count)
        return s_reply(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"no such deal\"}", NULL);
    s_deal_t *d = &s->deals[i];
    s_account_t *acct = s_account(s, d->login);
    int64_t amount = 0;
    if (!del && (!amount_s[0] || mt5_parse_amount(amount_s, d->digits, &amount) != 0))
        return s_reply(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"give delete:true or an amount\"}", NULL);
    if (acct)
        acct->balance_minor += (del ? 0 : amount) - d->amount_minor;
    if (del) {
        if (acct && acct->deals)
            acct->deals--;
        memmove(d, d + 1, (s->deal_count - i - 1) * sizeof *d);
        s->deal_count--;
    } else {
        d->amount_minor = amount;
    }
    return s_reply(conn, MHD_HTTP_OK, "{\"ok\":true}", NULL);
}

static void s_reset(sim_mt5_t *s)
{
    memcpy(s->accounts, s->initial, (size_t) s->account_count * sizeof *s->accounts);
    free(s->deals);
    s->deals = NULL;
    s->deal_count = s->deal_cap = 0;
    memset(s->sessions, 0, sizeof s->sessions);
    s->faults = s->initial_faults;
    s->late_n = 0;
    s->auths = s->auth_failures = s->balance_calls = s->dropped = s->forbidden = 0;
}

/* ---- dispatch ------------------------------------------------------------------------------------------ */

static enum MHD_Result s_dispatch(sim_mt5_t *s, struct MHD_Connection *conn, const char *url, const char *method,
                                  const sim_request_t *req, int *drop, int *hold_ms)
{
    int64_t now = sim_http_now_ms();
    s_apply_late(s, now);
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "_mt5sid");
    if (strncmp(url, "/sim/", 5) == 0) {
        if (!sim_http_is_loopback(conn))
            return s_reply(conn, MHD_HTTP_FORBIDDEN, "{\"error\":\"loopback only\"}", NULL);
        if (get && strcmp(url, "/sim/accounts") == 0) return s_sim_accounts(s, conn);
        if (get && strcmp(url, "/sim/deals") == 0) return s_sim_deals(s, conn);
        if (get && strcmp(url, "/sim/stats") == 0) return s_sim_stats(s, conn, now);
        if (post && strcmp(url, "/sim/faults") == 0) return s_sim_faults(s, conn, req);
        if (post && strcmp(url, "/sim/deal") == 0) return s_sim_deal(s, conn, req);
        if (post && strcmp(url, "/sim/trading_deals") == 0) return s_sim_trading(s, conn, req);
        if (post && strcmp(url, "/sim/reset") == 0) {
            s_reset(s);
            return s_reply(conn, MHD_HTTP_OK, "{\"ok\":true}", NULL);
        }
        return s_reply(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"no such control endpoint\"}", NULL);
    }
    if (strncmp(url, "/api/", 5) != 0 || (!get && !post))
        return s_reply(conn, MHD_HTTP_NOT_FOUND, "{\"retcode\":\"3 Invalid parameters\"}", NULL);
    if (strcmp(url, "/api/auth/start") == 0)
        return s_auth_start(s, conn, cookie, now);
    if (strcmp(url, "/api/auth/answer") == 0)
        return s_auth_answer(s, conn, cookie, now);

    s_session_t *x = s_session(s, cookie, now);
    int expired = x && x->authed == 1 && s->faults.expire_after > 0 && --s->faults.expire_after == 0;
    if (!x || x->authed != 1 || expired || s_chance(s, s->faults.session_loss_ppm)) {
        if (x)
            x->used = 0;
        s->forbidden++;
        return s_forbidden(conn);
    }
    x->last_ms = now;
    if (strcmp(url, "/api/test/access") == 0) return s_retcode(conn, "0 Done");
    if (strcmp(url, "/api/quit") == 0) {
        x->used = 0;
        return s_retcode(conn, "0 Done");
    }
    if (strcmp(url, "/api/trade/balance") == 0) return s_balance(s, conn, drop, hold_ms);
    if (strcmp(url, "/api/deal/get_total") == 0) return s_deals(s, conn, 0);
    if (strcmp(url, "/api/deal/get_page") == 0) return s_deals(s, conn, 1);
    if (strcmp(url, "/api/deal/get_batch") == 0) return s_deal_batch(s, conn);
    if (strcmp(url, "/api/user/get") == 0) return s_user(s, conn, 0);
    if (strcmp(url, "/api/user/account/get") == 0) return s_user(s, conn, 1);
    if (strcmp(url, "/api/group/get") == 0) return s_group(s, conn);
    if (post && strcmp(url, "/api/user/check_password") == 0) return s_check_password(s, conn, req);
    return s_reply(conn, MHD_HTTP_NOT_FOUND, "{\"retcode\":\"3 Invalid parameters\"}", NULL);
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    sim_mt5_t *s = cls;
    (void) version;
    enum MHD_Result rc;
    sim_request_t *req = sim_http_body(con_cls, upload, upload_size, SIM_MAX_BODY, &rc);
    if (!req)
        return rc;
    if (req->too_big)
        return s_reply(conn, 413, "{\"retcode\":\"3 Invalid parameters\"}", NULL);
    int drop = 0, delay_ms, hold_ms = 0;
    pthread_mutex_lock(&s->mu);
    delay_ms = strncmp(url, "/api/", 5) == 0 ? s->faults.delay_ms : 0;
    s_close_this = strncmp(url, "/api/", 5) == 0 && s->faults.close_next > 0;
    if (s_close_this)
        s->faults.close_next--;
    pthread_mutex_unlock(&s->mu);
    if (delay_ms > 0) /* before any state change: a slow server, seen from the client */
        usleep((useconds_t) delay_ms * 1000u);
    pthread_mutex_lock(&s->mu);
    rc = s_dispatch(s, conn, url, method, req, &drop, &hold_ms);
    pthread_mutex_unlock(&s->mu);
    if (hold_ms > 0) /* a late reply: queued, sent once this returns (one thread per connection) */
        usleep((useconds_t) hold_ms * 1000u);
    return drop ? MHD_NO : rc; /* MHD_NO closes the connection without a reply */
}

/* ---- options and lifecycle ------------------------------------------------------------------------------ */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa sim mt5 --listen 127.0.0.1:PORT --manager LOGIN:PASSWORD\n"
            "                    --account LOGIN:PASSWORD:BALANCE[:GROUP] ... [options]\n"
            "  --group NAME:CURRENCY:DIGITS   add a group (default group demo\\forex USD 2)\n"
            "  --investor-password LOGIN:PW   the investor (read-only) password of an account\n"
            "  --seed N                       seed of the fault generator (default 1)\n"
            "  --drop-reply P                 apply a balance deal, then close without replying (0..1)\n"
            "  --delay-ms N                   wait N ms before answering each /api/ request\n"
            "  --session-loss P               answer 403 as if the session had expired (0..1)\n"
            "  --session-idle-ms N            a session idle this long expires (default 180000)\n"
            "  --server-time-offset-s N       deal times are UTC + N seconds (trade-server time)\n"
            "  --tls-cert FILE --tls-key FILE serve HTTPS with this PEM certificate and key\n"
            "control (loopback only):\n"
            "  GET  /sim/accounts             logins, balances (exact), deal counts\n"
            "  GET  /sim/deals[?login=L]      every deal: ticket, amount, comment, time\n"
            "  GET  /sim/stats                handshakes, sessions, balance calls, dropped replies\n"
            "  POST /sim/faults {\"drop_reply\":0.3,\"session_loss\":0.1,\"delay_ms\":50,\n"
            "                    \"permanent_login\":100002,\"permanent_retcode\":\"8 Not enough permissions\",\n"
            "                    \"retcode_once\":\"9 Timeout\",\"close_next\":1,\"fake_server\":true,\n"
            "                    \"kill_sessions\":true,\"group_retcode\":\"8 Not enough permissions\",\n"
            "                    \"late_count\":1,\"late_apply_ms\":1500,\"late_reply_ms\":0,\n"
            "                    \"late_chance\":0.2,\"comment_rewrite\":\"prefix:DEP \"|\"trim:20\"|\"upper\",\n"
            "                    \"page_max\":7,\"odd_pages\":1,\"odd_page\":\"object\"|\"element\"|\"empty\",\n"
            "                    \"server_time_offset_s\":7200}\n"
            "  POST /sim/trading_deals {\"login\":L,\"count\":N,\"from\":T1,\"to\":T2}  N trading deals\n"
            "  POST /sim/reset                back to the accounts and faults given at start\n"
            "  POST /sim/deal {\"ticket\":T,\"delete\":true} or {\"ticket\":T,\"amount\":\"1.00\"}  edit a deal\n");
}

/* The whole of a small file (a PEM), NUL-terminated, or NULL. The caller frees. */
static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    jbuf_t b;
    jbuf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < 1024 * 1024)
        jbuf_add(&b, chunk, n);
    fclose(f);
    if (b.len == 0 || b.len >= 1024 * 1024) {
        jbuf_free(&b);
        return NULL;
    }
    return jbuf_take(&b);
}

static int s_add_group(sim_mt5_t *s, const char *name, const char *currency, int digits)
{
    if (s->group_count == SIM_MAX_GROUPS || !*name || strlen(name) >= sizeof s->groups[0].name
        || !*currency || strlen(currency) >= sizeof s->groups[0].currency || digits < 0 || digits > 8)
        return -1;
    s_group_t *g = &s->groups[s->group_count++];
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->currency, sizeof g->currency, "%s", currency);
    g->digits = digits;
    return 0;
}

/* Options in two passes: groups first, so that account balances parse with their group's digits. */
static int s_parse_args(sim_mt5_t *s, int argc, char **argv, struct sockaddr_in *listen, char *err, size_t errlen)
{
    int have_listen = 0, have_manager = 0;
    s_add_group(s, "demo\\forex", "USD", 2);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            char *c2 = strrchr(buf, ':');
            char *c1 = c2 ? (*c2 = '\0', strrchr(buf, ':')) : NULL;
            if (!c1 || c2[1] < '0' || c2[1] > '8' || c2[2]) {
                snprintf(err, errlen, "--group wants NAME:CURRENCY:DIGITS");
                return -1;
            }
            *c1 = '\0';
            int gi = s_group_find(s, buf);
            if (gi >= 0) { /* redefines a group, e.g. the default one */
                snprintf(s->groups[gi].currency, sizeof s->groups[gi].currency, "%.15s", c1 + 1);
                s->groups[gi].digits = c2[1] - '0';
            } else if (s_add_group(s, buf, c1 + 1, c2[1] - '0') != 0) {
                snprintf(err, errlen, "--group: too many groups, or a bad name or currency");
                return -1;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *o, *v;
        if (sim_http_option(argc, argv, &i, &o, &v, err, errlen) != 0)
            return -1;
        if (strcmp(o, "--listen") == 0) {
            if (sim_http_parse_listen(v, 0, listen) != 0) {
                snprintf(err, errlen, "--listen wants IPV4:PORT");
                return -1;
            }
            have_listen = 1;
        } else if (strcmp(o, "--manager") == 0) {
            const char *c = strchr(v, ':');
            char login[24];
            if (!c || (size_t) (c - v) >= sizeof login || !c[1]) {
                snprintf(err, errlen, "--manager wants LOGIN:PASSWORD");
                return -1;
            }
            memcpy(login, v, (size_t) (c - v));
            login[c - v] = '\0';
            if (mt5_parse_u64(login, &s->manager) != 0 || s->manager == 0 || mt5_auth_h2(c + 1, s->manager_h2) != 0) {
                snprintf(err, errlen, "--manager wants LOGIN:PASSWORD");
                return -1;
            }
            have_manager = 1;
        } else if (strcmp(o, "--account") == 0) {
            char buf[256], *f[4] = { 0 }, *save = NULL;
            int n = 0;
            snprintf(buf, sizeof buf, "%s", v);
            char *p = buf;
            for (; n < 3 && (f[n] = strsep(&p, ":")) != NULL; n++)
                ;
            f[3] = p; /* the group may hold anything after the third colon */
            (void) save;
            s_account_t a;
            memset(&a, 0, sizeof a);
            a.group = f[3] ? s_group_find(s, f[3]) : 0;
            if (n < 3 || !f[2] || mt5_parse_u64(f[0], &a.login) != 0 || a.login == 0 || !*f[1]
                || strlen(f[1]) >= sizeof a.password || a.group < 0
                || mt5_parse_amount(f[2], s->groups[a.group].digits, &a.balance_minor) != 0 || a.balance_minor < 0
                || s_account(s, a.login) || s->account_count == SIM_MAX_ACCOUNTS) {
                snprintf(err, errlen, "--account wants LOGIN:PASSWORD:BALANCE[:GROUP] (unique login, known group, "
                         "balance with at most the group's digits): %.40s", f[0] ? f[0] : "");
                return -1;
            }
            snprintf(a.password, sizeof a.password, "%s", f[1]);
            s->accounts[s->account_count++] = a;
        } else if (strcmp(o, "--investor-password") == 0) {
            const char *c = strchr(v, ':');
            char login[24];
            uint64_t l = 0;
            s_account_t *a = NULL;
            if (c && (size_t) (c - v) < sizeof login) {
                memcpy(login, v, (size_t) (c - v));
                login[c - v] = '\0';
                if (mt5_parse_u64(login, &l) == 0)
                    a = s_account(s, l);
            }
            if (!a || !c[1] || strlen(c + 1) >= sizeof a->investor) {
                snprintf(err, errlen, "--investor-password wants LOGIN:PW of an account given before it");
                return -1;
            }
            snprintf(a->investor, sizeof a->investor, "%s", c + 1);
        } else if (strcmp(o, "--seed") == 0) {
            if (mt5_parse_u64(v, &s->rng) != 0) {
                snprintf(err, errlen, "--seed wants a number");
                return -1;
            }
        } else if (strcmp(o, "--drop-reply") == 0 || strcmp(o, "--session-loss") == 0) {
            uint32_t *ppm = o[2] == 'd' ? &s->faults.drop_reply_ppm : &s->faults.session_loss_ppm;
            if (s_parse_ppm(v, ppm) != 0) {
                snprintf(err, errlen, "%s wants a probability 0..1", o);
                return -1;
            }
        } else if (strcmp(o, "--session-idle-ms") == 0) {
            uint64_t d;
            if (mt5_parse_u64(v, &d) != 0 || d < 100 || d > 86400000) {
                snprintf(err, errlen, "--session-idle-ms wants 100..86400000");
                return -1;
            }
            s->session_idle_ms = (int64_t) d;
        } else if (strcmp(o, "--tls-cert") == 0 || strcmp(o, "--tls-key") == 0) {
            char **slot = o[6] == 'c' ? &s->tls_cert : &s->tls_key;
            free(*slot);
            *slot = s_read_file(v);
            if (!*slot) {
                snprintf(err, errlen, "%s: cannot read %.100s", o, v);
                return -1;
            }
        } else if (strcmp(o, "--server-time-offset-s") == 0) {
            if (s_parse_i64(v, &s->faults.server_time_offset_s) != 0 || s->faults.server_time_offset_s < -86400
                || s->faults.server_time_offset_s > 86400) {
                snprintf(err, errlen, "--server-time-offset-s wants -86400..86400");
                return -1;
            }
        } else if (strcmp(o, "--delay-ms") == 0) {
            uint64_t d;
            if (mt5_parse_u64(v, &d) != 0 || d > 600000) {
                snprintf(err, errlen, "--delay-ms wants 0..600000");
                return -1;
            }
            s->faults.delay_ms = (int) d;
        } else if (strcmp(o, "--group") == 0) {
            /* read in the first pass */
        } else {
            snprintf(err, errlen, "unknown option %s", o);
            return -1;
        }
    }
    if (!have_listen || !have_manager) {
        snprintf(err, errlen, "--listen and --manager are required");
        return -1;
    }
    if (!s->tls_cert != !s->tls_key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    return 0;
}

sim_mt5_t *sim_mt5_start(int argc, char **argv, char *err, size_t errlen)
{
    sim_mt5_t *s = calloc(1, sizeof *s);
    struct sockaddr_in sa;
    if (!s) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->rng = 1;
    s->next_ticket = 200001;
    s->session_idle_ms = SIM_SESSION_IDLE_MS;
    snprintf(s->faults.permanent_retcode, sizeof s->faults.permanent_retcode, "8 Not enough permissions");
    s->accounts = calloc(SIM_MAX_ACCOUNTS, sizeof *s->accounts);
    s->initial = calloc(SIM_MAX_ACCOUNTS, sizeof *s->initial);
    if (!s->accounts || !s->initial) {
        snprintf(err, errlen, "no memory");
        sim_mt5_stop(&s);
        return NULL;
    }
    if (s_parse_args(s, argc, argv, &sa, err, errlen) != 0) {
        sim_mt5_stop(&s);
        return NULL;
    }
    memcpy(s->initial, s->accounts, (size_t) s->account_count * sizeof *s->accounts);
    s->initial_faults = s->faults;
    sim_http_opts_t o = { .addr = &sa, .handler = s_handler, .cls = s, .timeout_s = 240,
                          .tls_cert = s->tls_cert, .tls_key = s->tls_key };
    s->daemon = sim_http_start(&o, &s->port);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on port %u", ntohs(sa.sin_port));
        sim_mt5_stop(&s);
        return NULL;
    }
    return s;
}

int sim_mt5_port(const sim_mt5_t *self) { return self->port; }

void sim_mt5_stop(sim_mt5_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_mt5_t *s = *self_p;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    free(s->accounts);
    free(s->initial);
    free(s->deals);
    free(s->tls_cert);
    if (s->tls_key) {
        memset(s->tls_key, 0, strlen(s->tls_key));
        free(s->tls_key);
    }
    pthread_mutex_destroy(&s->mu);
    memset(s->manager_h2, 0, sizeof s->manager_h2);
    free(s);
    *self_p = NULL;
}

int sim_mt5_main(int argc, char **argv)
{
    char err[256];
    sigset_t set;
    sim_http_block_signals(&set); /* before any thread starts: they inherit the mask */
    sim_mt5_t *s = sim_mt5_start(argc, argv, err, sizeof err);
    if (!s)
        return sim_http_start_failed("mt5", err, s_usage);
    printf("kasa sim mt5: listening on http://127.0.0.1:%d\n", sim_mt5_port(s));
    fflush(stdout);
    sim_http_wait_signal(&set);
    sim_mt5_stop(&s);
    return 0;
}
