/* admin_withdrawals.c — see admin_withdrawals.h. */
#include "web/admin_withdrawals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/mt5.h"
#include "actors/withdrawals.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "schema/record.h"
#include "web/api.h"

#define S_LIST_LIMIT 500
#define S_TIMELINE_MAX 200

typedef struct {
    pipeline_t *pipeline;
    char journal_dir[256];
} s_api_t;

static s_api_t s_api;

/* The id and the action from "/api/admin/withdrawals/{id}[/{action}]"; action "" if none. */
static int s_split(const char *path, char id[24], char action[16])
{
    if (admin_path_id(path, "/api/admin/withdrawals/", id, 24, action) != 0)
        return -1;
    return withdrawal_id_valid(id) ? 0 : -1;
}

typedef struct {
    jbuf_t *b;
    int n, state;
    uint64_t login;
} s_list_t;

static void s_each(void *arg, const withdrawal_view_t *w)
{
    s_list_t *l = arg;
    if (l->state >= 0 && (int) w->state != l->state)
        return;
    if (l->n++)
        jbuf_puts(l->b, ",");
    withdrawals_view_json(l->b, w);
}

static void s_list(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    s_api_t *self = arg;
    (void) c;
    const char *st = http_query(req, "state"), *lg = http_query(req, "login");
    s_list_t l = { NULL, 0, -1, 0 };
    if ((st && *st && (l.state = withdrawal_state_from_name(st)) < 0) ||
        (lg && *lg && mt5_parse_login(lg, &l.login) != 0)) {
        http_reply_error(res, 400, "state must be a withdrawal state (DEBITED, HELD, ...), login a number");
        return;
    }
    jbuf_t b;
    jbuf_init(&b);
    l.b = &b;
    jbuf_puts(&b, "{\"withdrawals\":[");
    withdrawals_each(pipeline_withdrawals(self->pipeline), l.login, S_LIST_LIMIT, s_each, &l);
    jbuf_puts(&b, "]}");
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_one(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res)
{
    s_api_t *self = arg;
    (void) c;
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
    withdrawals_view_json(&b, &w);
    jbuf_puts(&b, ",\"timeline\":[");
    admin_timeline_json(self->journal_dir, id, S_TIMELINE_MAX, &b);
    jbuf_puts(&b, "]}");
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
    int rc = pipeline_withdraw_act(self->pipeline, id, action, c->actor, c->origin, reason, err, sizeof err);
    if (rc < 0) {
        http_reply_error(res, strstr(err, "no withdrawal") ? 404 : 409, err);
        return;
    }
    withdrawal_view_t w;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"noted\":%s,\"withdrawal\":", rc == 1 ? "true" : "false");
    if (withdrawals_get(pipeline_withdrawals(self->pipeline), id, &w) == 0)
        withdrawals_view_json(&b, &w);
    else
        jbuf_puts(&b, "null");
    jbuf_puts(&b, "}");
    http_reply_json(res, 200, jbuf_take(&b));
}

int admin_withdrawals_routes(admin_api_t *api, pipeline_t *pipeline, const char *journal_dir)
{
    s_api.pipeline = pipeline;
    snprintf(s_api.journal_dir, sizeof s_api.journal_dir, "%s", journal_dir);
    if (admin_route(api, "GET", "/api/admin/withdrawals", ADMIN_VIEW, s_list, &s_api) != 0 ||
        admin_route(api, "GET", "/api/admin/withdrawals/*", ADMIN_VIEW, s_one, &s_api) != 0)
        return -1;
    /* GET and POST share the wildcard path in the route table: a POST is an action. */
    return admin_route(api, "POST", "/api/admin/withdrawals/*", ADMIN_WITHDRAW_DECIDE, s_act, &s_api);
}
