/* api.h — what the investor and the admin JSON APIs share: reading a JSON body the safe way,
 * finding the caller's session (and checking its CSRF token), answering with Retry-After. */
#ifndef KASA_WEB_API_H
#define KASA_WEB_API_H

#include <bson/bson.h>
#include <stdint.h>

#include "web/http.h"
#include "web/session.h"

/* The request's JSON body into *doc (the caller destroys it): 0, or -1 after answering 415 (not
 * sent as Content-Type: application/json, which a cross-site form cannot send) or 400 (not JSON). */
int api_json_body(const http_request_t *req, http_response_t *res, bson_t *doc);

/* The caller's session in store (by the store's cookie): 0 with *info filled, or -1 after answering
 * 401 (or 403 for a missing or wrong X-CSRF-Token when csrf is set). */
int api_auth(session_store_t *store, const http_request_t *req, http_response_t *res, session_info_t *info,
             int csrf);

/* {"error": reason} with status and a Retry-After header. */
void api_reply_retry(http_response_t *res, int status, const char *reason, int64_t retry_after_s);

/* 202 {"ok":true,"accepted":true,"command":command,"message":message}: a person's action another
 * cluster node carries out (GET /api/admin/commands/{command} tells its outcome). */
void api_reply_accepted(http_response_t *res, const char *command, const char *message);

#endif
