/* api.c — see api.h. */
#include "web/api.h"

#include <stdio.h>
#include <strings.h>

#include "schema/json.h"

int api_json_body(const http_request_t *req, http_response_t *res, bson_t *doc)
{
    const char *ct = http_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
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

int api_auth(session_store_t *store, const http_request_t *req, http_response_t *res, session_info_t *info,
             int csrf)
{
    const char *sid = http_cookie(req, session_cookie_name(store));
    if (!sid || session_get(store, sid, info) != 0) {
        http_reply_error(res, 401, "not logged in");
        return -1;
    }
    if (csrf && session_check_csrf(store, sid, http_header(req, "X-CSRF-Token")) != 0) {
        http_reply_error(res, 403, "missing or wrong CSRF token");
        return -1;
    }
    return 0;
}

void api_reply_retry(http_response_t *res, int status, const char *reason, int64_t retry_after_s)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long) retry_after_s);
    http_reply_error(res, status, reason);
    http_add_header(res, "Retry-After", v);
}

void api_reply_accepted(http_response_t *res, const char *command, const char *message)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"ok\":true,\"accepted\":true,\"command\":");
    jbuf_str(&b, command);
    jbuf_puts(&b, ",\"message\":");
    jbuf_str(&b, message);
    jbuf_puts(&b, "}");
    http_reply_json(res, 202, jbuf_take(&b));
}
