/* throttle.h — failed-login limits that an attacker cannot turn into a lockout of the owner.
 *
 * Three counts, each keyed by what it protects:
 *   - (login, client): the first pair_free failures are free; after that each further attempt of
 *     that client on that login waits, the wait doubling with every failure (1 s, 2 s, 4 s ... up
 *     to pair_max_delay_s). Another client (the owner at home) is not slowed at all: nobody can
 *     lock an account by failing on it. A pair is forgotten pair_forget_s after its last failure.
 *   - client: at most client_max failures per window_s, on any logins (a hard limit: 429 until
 *     the window ends). A client is an IPv4 address or an IPv6 /64 (schema/netaddr.h), so an
 *     attacker cannot escape by rotating addresses inside its own network.
 *   - login: when a login collects account_alarm failures in window_s (many clients guessing one
 *     account), every client gets one free failure on it instead of pair_free. The owner's first
 *     attempt from anywhere is still allowed.
 * An attempt is counted before its password is checked (parallel attempts cannot slip past the
 * limit) and undone when it turns out to be a success or could not be judged.
 *
 * The table is bounded (max_entries) and address rotation cannot flush it: when it is full, a
 * victim is chosen among a sample of entries — an expired one first, then the least recently
 * failed entry that limits nothing; an entry that currently limits a client (a delayed pair, a
 * client at its hard limit, an alarmed login) goes only when every sampled entry does.
 * Time comes from opts.now_s so tests can move it. Thread-safe. */
#ifndef KASA_WEB_THROTTLE_H
#define KASA_WEB_THROTTLE_H

#include <stdint.h>

#include "schema/netaddr.h"

typedef struct throttle_t throttle_t;

typedef struct {
    int pair_free;               /* free failures per (login, client), default 5 */
    int64_t pair_max_delay_s;    /* longest wait, default 900 */
    int64_t pair_forget_s;       /* a pair is forgotten this long after its last failure, default 3600 */
    int client_max;              /* failures per client per window, default 30 */
    int account_alarm;           /* failures of one login per window that alarm it, default 100 */
    int64_t window_s;            /* default 900 (15 min) */
    int max_entries;             /* default 16384 */
    int64_t (*now_s)(void *arg); /* Unix seconds; NULL: the real clock */
    void *now_arg;
} throttle_opts_t;

/* opts may be NULL; zero fields take the defaults. NULL only without memory. */
throttle_t *throttle_new(const throttle_opts_t *opts);
void throttle_destroy(throttle_t **self_p);

/* A login attempt about to be made by client: 0 if allowed — it is then already counted as a
 * failure — or -1 (nothing counted) with the seconds to wait in *retry_after_s (>= 1).
 * After the password check, call throttle_success() or throttle_forgive(); a wrong password
 * needs nothing more. */
int throttle_attempt(throttle_t *self, uint64_t login, const netaddr_t *client, int64_t *retry_after_s);
/* The attempt succeeded: the pair's failures are forgotten, and the attempt is uncounted for the
 * client and the login. */
void throttle_success(throttle_t *self, uint64_t login, const netaddr_t *client);
/* The attempt could not be judged (the password checker was unreachable): its count is undone. */
void throttle_forgive(throttle_t *self, uint64_t login, const netaddr_t *client);

/* Entries held (for tests and the log). */
int throttle_entries(throttle_t *self);

#endif
