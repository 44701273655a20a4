/* investor.h — the investor panel's JSON API (routes under /api/, see docs-investor.md).
 *
 *   POST /api/login {login, password}   GET /api/session   POST /api/logout   GET /api/me
 *   GET /api/wallets   POST /api/wallets {chain}   GET /api/wallets/{chain}/qr.svg
 *   GET /api/deposits   GET /api/deposits/{id}   GET /api/events (SSE)
 *
 * Investors log in with their MT5 login and main password, checked by MT5 (the investor — read-only —
 * password only with KASA_INVESTOR_PASSWORD_LOGIN=on: it is often shared to show a track record);
 * a session cookie then carries them (web/session.h). Failed logins are limited per (login, client),
 * per client and per login (web/throttle.h), the client being the address a trusted proxy reports.
 * A 5xx answer names no inner reason: it carries the request id, and the log has the reason. Each investor reads only their own data:
 * another login's deposit or address answers 404, exactly like one that does not exist.
 * MT5 work (the password check, the account read) is handed to the accounts actors
 * (actors/accounts.h) while the connection waits suspended: a slow MT5 answer holds no HTTP thread. */
#ifndef KASA_WEB_INVESTOR_H
#define KASA_WEB_INVESTOR_H

#include <stddef.h>

#include "actors/accounts.h"
#include "actors/pipeline.h"
#include "actors/wallets.h"
#include "schema/config.h"
#include "web/events.h"
#include "web/http.h"
#include "web/session.h"
#include "web/throttle.h"

typedef struct investor_t investor_t;

/* Options beyond the configuration; NULL for the defaults. */
typedef struct {
    /* Rates of MT5-bound requests (/api/login, /api/me), as token buckets: per session (default 2
     * a second, bursts of 10) and per client IP (default 20 a second, bursts of 40); beyond: 429. */
    int session_rate_per_s, session_burst;
    int ip_rate_per_s, ip_burst;
    session_opts_t session;    /* session settings (zero fields: defaults) */
    throttle_opts_t throttle;  /* failed-login limits (zero fields: defaults) */
} investor_opts_t;

/* Adds the investor routes to http (before traffic) and returns the state they share (sessions).
 * pipeline, wallets, events, accounts and cfg are not owned and must outlive it; accounts must be
 * closed (accounts_close) before the HTTP server stops, so no answer is still owed then.
 * Also makes events resolve addresses through wallets and teaches wallets every link committed
 * (events_listen). Returns NULL with a reason in err. */
investor_t *investor_routes(http_server_t *http, pipeline_t *pipeline, wallets_t *wallets,
                            events_t *events, accounts_t *accounts, const config_t *cfg,
                            const investor_opts_t *opts, char *err, size_t errlen);
/* Frees; call after the HTTP server has stopped. Nulls *self_p; safe twice. */
void investor_destroy(investor_t **self_p);

/* The session table (for tests). */
session_store_t *investor_sessions(investor_t *self);

#endif
