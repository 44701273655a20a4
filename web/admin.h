/* admin.h — the admin API (routes under /api/admin/), for the broker's staff.
 *
 *   POST /api/admin/login {name, password, code}   GET /api/admin/session   POST /api/admin/logout
 *   POST /api/admin/password {current, password}
 *   GET  /api/admin/deposits?state=&login=&q=&from=&to=&min=&max=&page=&limit=
 *   GET  /api/admin/deposits/{id}                   (the deposit and its journal timeline)
 *   POST /api/admin/deposits/{id}/retry|assign|approve|reject {reason, login}
 *   GET  /api/admin/summary                         (deposits per state, credited volume per token)
 *   GET  /api/admin/audit?actor=&limit=             GET /api/admin/admins
 *   GET  /api/admin/addresses?q=&login=&page=&limit= (address → login links, newest first)
 *   GET  /api/admin/balances[?fresh=1]              (the wallet's balances at Cobo, actors/balances.h)
 *   GET  /api/admin/events                          (SSE: every deposit, admin and link record, web/events.h;
 *                                                    ends within a second of logout, expiry or disable)
 *
 * Admins log in with their name, password and a TOTP code (actors/admins.h). Their sessions are
 * their own (cookie "kasa_admin", a separate table from the investors': an investor's cookie never
 * opens an admin route), end after 10 minutes without use or 8 hours after login, and carry a CSRF
 * token required on every POST, as in the investor API. Failed logins are limited as the investors'
 * are (web/throttle.h: per admin name and client, after 5 free failures each further attempt waits
 * longer; per client 20 per 15 minutes; a name many clients fail on gets one free failure per
 * client); a refused attempt sends a notice to the broker's Telegram chat (one per name per 15
 * minutes). Every call checks the caller's role on the server (schema/admin.h),
 * read from the account at each request, so a disabled admin's session stops working at once; an
 * admin who logged in with a one-time password may only change it. Actions are journaled with
 * "admin:NAME" and "ip:ADDRESS" (pipeline_admin). */
#ifndef KASA_WEB_ADMIN_H
#define KASA_WEB_ADMIN_H

#include "actors/admins.h"
#include "actors/pipeline.h"
#include "journal/journal.h"
#include "schema/config.h"
#include "web/events.h"
#include "web/http.h"
#include "web/session.h"

#define ADMIN_COOKIE "kasa_admin"
#define ADMIN_MAX_ROUTES 32
#define ADMIN_ANY ADMIN_ACTION_COUNT   /* a route any logged-in admin may call */

typedef struct admin_api_t admin_api_t;

/* The caller of a guarded route, as the guard found them. */
typedef struct {
    admin_view_t who;              /* the account as it is now */
    session_info_t session;
    char sid[SESSION_ID_HEX];      /* the session cookie's value */
    char actor[80];                /* "admin:NAME", as actions are journaled */
    char origin[64];               /* "ip:ADDRESS" */
} admin_caller_t;

typedef void (admin_handler_fn)(void *arg, const admin_caller_t *c, const http_request_t *req, http_response_t *res);

/* Adds a route behind the admin guard, the one every admin route passes: the session (cookie
 * kasa_admin; anything but GET also needs the session's X-CSRF-Token: 403), the account as it is
 * now (gone or disabled: 401 and the session ends), its one-time password changed (403), and its
 * role allowed action (ADMIN_ANY: any admin; else 403). Only then fn(arg, caller, ...) runs.
 * Before the HTTP server starts. 0, or -1 when ADMIN_MAX_ROUTES are taken. */
int admin_route(admin_api_t *self, const char *method, const char *path, admin_action_t action, admin_handler_fn *fn,
                void *arg);

/* Appends every journal record of id (a deposit's tx_id or a withdrawal id) to b as JSON objects,
 * comma-separated, oldest first, secrets redacted; at most max (0: all). Reads the journal from
 * from_lsn (its first record, as the registry or the withdrawals know it; 0: from the start) up to
 * upto_lsn (its last; 0: the end), so an old one costs what its own records span. How many. */
#include "schema/json.h"
int admin_timeline_json(const char *journal_dir, const char *id, uint64_t from_lsn, uint64_t upto_lsn, int max,
                        jbuf_t *b);

/* Cluster mode: appends ,"others":[...] to b: the records of id (a deposit's tx_id or a withdrawal
 * id) the other nodes journaled, as MongoDB's `transitions` has them, each with its "node"
 * (views_timeline_others). 1 when MongoDB did not answer ("others" empty: the answer may be stale),
 * 0 otherwise; on one node nothing is appended. */
int admin_others_json(admin_api_t *self, const char *id, jbuf_t *b);

/* The admin summary (GET /api/admin/summary) of running totals t as JSON into b: deposits per state
 * (every deposit kasa has seen, finished ones that left memory too), and per token the amount
 * credited on UTC day today (a day number, seconds / 86400) and over it and the 6 days before
 * (tokens with nothing credited in those 7 days are not listed). */
#include "actors/totals.h"
void admin_summary_json(const totals_t *t, int64_t today, jbuf_t *b);

/* A search of the admin panel's deposits (GET /api/admin/deposits). */
#include "schema/money.h"
typedef struct registry_t registry_t;
typedef struct {
    int state;                   /* -1 any */
    uint64_t login;              /* 0 any */
    const char *q;               /* in tx id, chain hash or address (NULL or "": any) */
    int64_t from_ms, to_ms;      /* created within [from, to); 0: open */
    money_atto_t min, max;       /* amount within; max 0: open */
    int skip, limit;             /* the page: matches [skip, skip + limit) */
} admin_search_t;
/* Writes {"deposits":[...],"total":N,"page":P,"limit":L,"stale":false,"cluster":false} into b, newest first (this
 * node's registry; in cluster mode GET /api/admin/deposits reads the cluster's: actors/views.h). Unfinished deposits
 * are all in memory and searched whole; finished ones that left memory are found by their login
 * (login set: its part of the index) or by their whole transaction id (q), not by a part of one or a
 * chain hash. 0, or -1 when the index of finished deposits could not be read: then nobody can tell
 * whether more match (the caller answers 503, never a shorter list or "not found"). */
int admin_search_deposits(registry_t *reg, const admin_search_t *f, jbuf_t *b);

/* The id and the action from "PREFIX{id}[/{action}]" (path starts with prefix): id shorter than
 * id_len, action "" if none and shorter than 16. 0, or -1 when either does not fit or id is empty. */
int admin_path_id(const char *path, const char *prefix, char *id, size_t id_len, char action[16]);

/* Adds the admin routes to http and returns their state. pipeline, admins, journal and cfg are not
 * owned and must outlive it. opts and topts (may be NULL) override the session and failed-login
 * settings (tests move the clock). NULL with a reason in err. */
#include "web/throttle.h"
admin_api_t *admin_routes(http_server_t *http, pipeline_t *pipeline, admins_t *admins, journal_t *journal,
                          const config_t *cfg, const session_opts_t *opts, const throttle_opts_t *topts, char *err,
                          size_t errlen);
/* Live updates for the panel from events (not owned; outlives the HTTP server's traffic). Before
 * the server starts; without it /api/admin/events answers 503. */
void admin_live(admin_api_t *self, events_t *events);

/* Frees; after the HTTP server has stopped. Nulls *self_p; safe twice. */
void admin_api_destroy(admin_api_t **self_p);

#endif
