/* admin_withdrawals.c — see admin_withdrawals.h. */
#include "web/admin_withdrawals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/mt5.h"
#include "actors/withdrawer.h"
#include "actors/withdrawals.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "schema/money.h"
#include "schema/record.h"
#include "web/api.h"

#define S_LIST_LIMIT 500
#define S_TIMELINE_MAX 200
#define S_TOTAL_TOKENS 32

/* The right a person's action on a withdrawal needs: the route checks it, and the answers tell the
 * caller whether they have it ("may_decide"), so the panel shows the buttons to those alone. */
static const admin_action_t s_decide = ADMIN_WITHDRAW_DECIDE;

typedef struct {
    pipeline_t *pipeline;
    const config_t *cfg;
    admin_api_t *api;
} s_api_t;

static s_api_t s_api;

/* The id and the action from "/api/admin/withdrawals/{id}[/{action}]"; action "" if none. */
static int s_split(const char *path, char id[24], char action[16])
{
    if (admin_path_id(path, "/api/admin/withdrawals/", id, 24, action) != 0)
        return -1;
    return withdrawal_id_valid(id) ? 0 : -1;
}

/* One withdrawal as the staff see it: withdrawals_view_json's object (what the investor sees too)
 * with who approved it, how many approvals its amount needs and who asked for it ("requester"; the
 * investor is never shown admin names, so these are added here, before the object's closing brace). */
static void s_view_json(const s_api_t *self, jbuf_t *b, const withdrawal_view_t *w)
{
    withdrawals_view_json(b, w);
    if (b->len == 0 || b->data[b->len - 1] != '}')
        return;
    b->len--;
    jbuf_puts(b, ",\"approvers\":[");
    for (uint32_t i = 0; i < w->approvals && i < WITHDRAWALS_MAX_APPROVERS; i++) {
        jbuf_puts(b, i ? "," : "");
        jbuf_str(b, w->approvers[i]);
    }
    jbuf_printf(b, "],\"approvals_needed\":%d,\"requester\":", withdrawer_approvals_needed(self->cfg, w));
    jbuf_str(b, w->actor);
    jbuf_puts(b, "}");
}

/* What the broker's wallet has to pay or has paid, per token: the token amounts of the withdrawals
 * waiting for approvers (DEBITED), being paid (APPROVED, SENT), held (HELD) and completed; to_pay is
 * the first three together (each may still leave the wallet). Exact sums (schema/money.h). */
enum { S_WAITING, S_SENDING, S_HELD, S_COMPLETED, S_GROUPS };
static const char *const s_group_name[S_GROUPS] = { "waiting", "sending", "held", "completed" };

typedef struct {
    char token[40];
    int count[S_GROUPS];
    money_atto_t sum[S_GROUPS];
} s_total_t;

static int s_group_of(withdrawal_state_t st)
{
    switch (st) {
    case WITHDRAWAL_DEBITED: return S_WAITING;
    case WITHDRAWAL_APPROVED:
    case WITHDRAWAL_SENT: return S_SENDING;
    case WITHDRAWAL_HELD: return S_HELD;
    case WITHDRAWAL_COMPLETED: return S_COMPLETED;
    default: return -1;
    }
}

typedef struct {
    jbuf_t *b;
    const s_api_t *self;
    int n;
    unsigned states;        /* bit per withdrawal_state_t shown; 0: all */
    s_total_t totals[S_TOTAL_TOKENS];
    int ntotals;
} s_list_t;

static void s_count(s_list_t *l, const withdrawal_view_t *w)
{
    int i = 0;
    while (i < l->ntotals && strcmp(l->totals[i].token, w->token_id) != 0)
        i++;
    if (i == l->ntotals) {
        if (l->ntotals == S_TOTAL_TOKENS)
            return;   /* more tokens than kasa offers: the first ones stand */
        memset(&l->totals[i], 0, sizeof l->totals[i]);
        snprintf(l->totals[i].token, sizeof l->totals[i].token, "%s", w->token_id);
        l->ntotals++;
    }
    int g = s_group_of(w->state);   /* a token with none in a group still has its line, of zeros */
    money_atto_t v = 0;
    if (g < 0 || money_parse(w->amount, &v, NULL, 0) != 0)
        return;
    l->totals[i].count[g]++;
    l->totals[i].sum[g] += v;
}

static void s_each(void *arg, const withdrawal_view_t *w)
{
    s_list_t *l = arg;
    if (l->states && !(l->states & (1u << w->state)))
        return;
    if (l->n++)
        jbuf_puts(l->b, ",");
    s_view_json(l->self, l->b, w);
}

static void s_each_total(void *arg, const withdrawal_view_t *w)
{
    s_count(arg, w);
}

static void s_totals_json(jbuf_t *b, const s_list_t *l)
{
    char text[64];
    for (int i = 0; i < l->ntotals; i++) {
        const s_total_t *t = &l->totals[i];
        jbuf_puts(b, i ? ",{\"token\":" : "{\"token\":");
        jbuf_str(b, t->token);
        for (int g = 0; g < S_GROUPS; g++) {
            money_format(t->sum[g], text, sizeof text);
            jbuf_printf(b, ",\"%s\":{\"count\":%d,\"token_amount\":", s_group_name[g], t->count[g]);
            jbuf_str(b, text);
            jbuf_puts(b, "}");
        }
        money_format(t->sum[S_WAITING] + t->sum[S_SENDING] + t->sum[S_HELD], text, sizeof text);
        jbuf_puts(b, ",\"to_pay\":");
        jbuf_str(b, text);
        jbuf_puts(b, "}");
    }
}

/* "DEBITED" or "APPROVED,SENT": a bit per state into *states. 0, or -1 for a name that is not a state. */
static int s_states(const char *text, unsigned *states)
{
    char name[32];
    *states = 0;
    while (*text) {
        size_t n = strcspn(text, ",");
        if (n == 0 || n >= sizeof name)
            return -1;
        memcpy(name, text, n);
        name[n] = '\0';
        int st = withdrawal_state_from_name(name);
        if (st < 0)
            return -1;
        *states |= 1u << st;
        text += n;
        if (*text == ',' && *++text == '\0')
            return -1;   /* "DEBITED," */
    }
    return 0;
}

static void s_list(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    s_api_t *self = arg;
    const char *st = http_query(req, "state"), *lg = http_query(req, "login");
    s_list_t *l = calloc(1, sizeof *l);
    uint64_t login = 0;
    if (!l) {
        http_reply_error(res, 503, "out of memory");
        return;
    }
    if ((st && *st && s_states(st, &l->states) != 0) || (lg && *lg && mt5_parse_login(lg, &login) != 0)) {
        free(l);
        http_reply_error(res, 400, "state must be withdrawal states (DEBITED, HELD, APPROVED,SENT ...), login a number");
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    l->b = &b;
    l->self = self;
    jbuf_puts(&b, "{\"withdrawals\":[");
    withdrawals_each(pipeline_withdrawals(self->pipeline), login, S_LIST_LIMIT, s_each, l);
    jbuf_puts(&b, "],\"totals\":[");
    withdrawals_each(pipeline_withdrawals(self->pipeline), 0, 0, s_each_total, l);
    s_totals_json(&b, l);
    jbuf_printf(&b, "],\"may_decide\":%s}", admin_may(c->who.role, s_decide) ? "true" : "false");
    free(l);
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_one(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    s_api_t *self = arg;
    char id[24], action[16];
    withdrawal_view_t w;
    if (s_split(http_path(req), id, action) != 0 || action[0] ||
        withdrawals_get(pipeline_withdrawals(self->pipeline), id, &w) != 0) {
        http_reply_error(res, 404, "no such withdrawal");
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"withdrawal\":");
    s_view_json(self, &b, &w);
    jbuf_puts(&b, ",\"timeline\":[");
    admin_timeline_json(self->cfg->journal_dir, id, w.first_lsn, w.last_lsn, S_TIMELINE_MAX, &b);
    jbuf_puts(&b, "]");
    int stale = admin_others_json(self->api, id, &b);   /* cluster mode: the holder's records too */
    jbuf_printf(&b, ",\"stale\":%s,\"may_decide\":%s}", stale ? "true" : "false",
                admin_may(c->who.role, s_decide) ? "true" : "false");
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_act(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    s_api_t *self = arg;
    char id[24], action[16];
    if (s_split(http_path(req), id, action) != 0 || !action[0]) {
        http_reply_error(res, 404, "no such withdrawal");
        return;
    }
    bson_t doc;
    if (api_json_body(req, res, &doc) != 0)
        return;
    char reason[160] = "";
    const char *rs = json_get_str(&doc, "reason");
    snprintf(reason, sizeof reason, "%s", rs ? rs : "");
    bson_destroy(&doc);
    char err[256] = "";
    char command[33] = "";
    int rc = pipeline_withdraw_act_cmd(self->pipeline, id, action, c->actor, c->origin, reason, command, err,
                                       sizeof err);
    if (rc < 0) {
        http_reply_error(res, strstr(err, "no withdrawal") ? 404 : strstr(err, "MongoDB") ? 503 : 409, err);
        return;
    }
    if (rc == 2) {   /* cluster mode: the holder carries it out; GET /api/admin/commands/{id} tells the outcome */
        api_reply_accepted(res, command, err);
        return;
    }
    withdrawal_view_t w;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"noted\":%s,\"withdrawal\":", rc == 1 ? "true" : "false");
    if (withdrawals_get(pipeline_withdrawals(self->pipeline), id, &w) == 0)
        s_view_json(self, &b, &w);
    else
        jbuf_puts(&b, "null");
    jbuf_puts(&b, "}");
    http_reply_json(res, 200, jbuf_take(&b));
}

int admin_withdrawals_routes(admin_api_t *api, pipeline_t *pipeline, const config_t *cfg)
{
    s_api.pipeline = pipeline;
    s_api.cfg = cfg;
    s_api.api = api;
    if (admin_route(api, "GET", "/api/admin/withdrawals", ADMIN_VIEW, s_list, &s_api) != 0 ||
        admin_route(api, "GET", "/api/admin/withdrawals/*", ADMIN_VIEW, s_one, &s_api) != 0)
        return -1;
    /* GET and POST share the wildcard path in the route table: a POST is an action. */
    return admin_route(api, "POST", "/api/admin/withdrawals/*", s_decide, s_act, &s_api);
}
