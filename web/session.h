/* session.h — investors' server-side sessions and CSRF tokens (failed logins: web/throttle.h).
 *
 * A session id is 32 random bytes (libsodium randombytes_buf), sent as 64 hex characters in the
 * cookie "kasa_sid" (HttpOnly, SameSite=Strict, Path=/, Secure unless KASA_COOKIE_SECURE=off). The
 * server keeps only its table; ids are compared in constant time. A session ends after idle_s
 * without use or absolute_s after login, whichever comes first, or at logout. Each session has its
 * own CSRF token (32 random bytes, hex), handed out by GET /api/session and required in the
 * X-CSRF-Token header of every state-changing call (constant-time compare).
 *
 * The table is bounded: when full, the oldest session is evicted. One login holds at most
 * max_per_login sessions: a new one ends that login's oldest, never another login's, so a flood of
 * logins of one account logs nobody else out. Time comes from opts.now_s so tests can move it.
 * Thread-safe.
 *
 * Cluster mode (opts.remote): every session is also written to the shared store, and a node checks
 * a session there at most once per second of its clock before it accepts it (so a logout or an end
 * on any node, which deletes it there, ends it everywhere within a second; a session created on
 * another node is learnt that way). A store that does not answer refuses the session: never
 * accepted unchecked. An idle or absolute expiry counts from the shared last use; a session this
 * node evicts (per-login bound, full table) is deleted there too; a learnt copy it drops is not. */
#ifndef KASA_WEB_SESSION_H
#define KASA_WEB_SESSION_H

#include <stddef.h>
#include <stdint.h>

typedef struct session_store_t session_store_t;

#define SESSION_ID_HEX 65   /* 64 hex + NUL */
#define SESSION_COOKIE "kasa_sid"

typedef struct session_info_t session_info_t;

/* Cluster mode: where sessions are shared between nodes (web/session_mongo.h). Every call gets the
 * session's key, the hex SHA-256 of its id (the id itself never leaves the node). */
typedef struct {
    /* Stores a new session (info: login, name, csrf, created_s; expires at created_s + absolute_s). 0, or -1. */
    int (*put)(void *arg, const char *key, const session_info_t *info, int64_t absolute_s);
    /* Reads the session into *out; with touch_s > 0 also sets its last use to touch_s (out gets the
     * values from before). 0 found, 1 there is none, -1 the store did not answer. */
    int (*get)(void *arg, const char *key, int64_t touch_s, session_info_t *out);
    /* Ends the session (key), or, with key NULL, every session of name. 0, or -1. */
    int (*del)(void *arg, const char *key, const char *name);
    void *arg;
    void (*destroy)(void *arg);   /* may be NULL; called by session_store_destroy (the store owns arg) */
} session_remote_t;

typedef struct {
    int64_t idle_s;            /* default 1800 (30 min) */
    int64_t absolute_s;        /* default 43200 (12 h) */
    int max_sessions;          /* default 10000 */
    int max_per_login;         /* sessions one login holds at most (its oldest goes), default 10 */
    int64_t (*now_s)(void *arg); /* Unix seconds; NULL: the real clock */
    void *now_arg;
    const char *cookie;        /* the cookie's name, default SESSION_COOKIE (admins: "kasa_admin") */
    const session_remote_t *remote;   /* cluster mode: the shared store (copied); NULL: this node alone */
} session_opts_t;

/* opts may be NULL; zero fields take the defaults. NULL only without memory. */
session_store_t *session_store_new(const session_opts_t *opts);
void session_store_destroy(session_store_t **self_p);

/* A copy of one session's public facts. */
struct session_info_t {
    uint64_t login;
    char name[64];             /* session_create_named: whose session (an admin's name) */
    char csrf[SESSION_ID_HEX];
    int64_t created_s, last_s;
};

/* Starts a session for login; id_out receives the new id (hex). Ends login's oldest session when it
 * has max_per_login, and the oldest of all when the table is full. Returns 0, or -1 without memory. */
int session_create(session_store_t *self, uint64_t login, char id_out[SESSION_ID_HEX]);
/* As session_create, for a session that belongs to a name (an admin) rather than an MT5 login. */
int session_create_named(session_store_t *self, const char *name, char id_out[SESSION_ID_HEX]);
/* The name of this store's cookie. */
const char *session_cookie_name(const session_store_t *self);
/* Ends every session of name (an admin disabled or reset). Returns how many. */
int session_end_named(session_store_t *self, const char *name);
/* Looks id up; a live session is refreshed (idle clock restarts) and copied to *out (may be NULL).
 * Returns 0, or -1 for an unknown, malformed or expired id (an expired one is removed). */
int session_get(session_store_t *self, const char *id, session_info_t *out);
/* As session_get, without refreshing the idle clock (for background checks such as a stream). */
int session_peek(session_store_t *self, const char *id, session_info_t *out);
/* 0 if token equals the CSRF token of the live session id (constant-time), else -1. */
int session_check_csrf(session_store_t *self, const char *id, const char *token);
/* Ends the session (logout). 0 if it existed, -1 if not. */
int session_end(session_store_t *self, const char *id);
/* Live sessions (expired ones are dropped first). */
int session_count(session_store_t *self);

/* The Set-Cookie value for id ("kasa_sid=...; Path=/; HttpOnly; SameSite=Strict[; Secure]; Max-Age=N"),
 * or, with id NULL, the one that clears it. Returns 0, or -1 if buf is too small. */
int session_cookie(const session_store_t *self, const char *id, int secure, char *buf, size_t len);

/* The shared store's key of id: hex SHA-256 of it (65 bytes with NUL). 0, or -1 for a malformed id. */
int session_key(const char *id, char key[SESSION_ID_HEX]);

/* Fills out with 32 random bytes as 64 lower-case hex characters. 0, or -1. */
int session_random_hex(char out[SESSION_ID_HEX]);

#endif
