/* session_mongo.h — cluster mode: the investors' and admins' sessions shared through MongoDB (the
 * session_remote_t of web/session.h).
 *
 *   sessions / admin_sessions  {key (hex SHA-256 of the session id; the id is never stored), login
 *       (int64), name, csrf, created_s, last_s (Unix s), expires (date: created + absolute lifetime)}
 *       unique key; TTL on expires (expireAfterSeconds 0: MongoDB drops a session past its end)
 *
 * Writes and deletes use write concern majority (a logout survives a fail-over). Every call waits
 * at most timeout_ms (unless the URI sets its own timeouts): a MongoDB that does not answer makes a
 * session refused quickly, never accepted. The indexes are ensured at the first call that reaches
 * MongoDB. Thread-safe. */
#ifndef KASA_WEB_SESSION_MONGO_H
#define KASA_WEB_SESSION_MONGO_H

#include <stddef.h>

#include "schema/config.h"
#include "web/session.h"

#define SESSION_MONGO_INVESTORS "sessions"
#define SESSION_MONGO_ADMINS "admin_sessions"

typedef struct session_mongo_t session_mongo_t;

/* Sessions in collection of db on uri. NULL with a reason on a bad URI or without memory. */
session_mongo_t *session_mongo_new(const char *uri, const char *db, const char *collection, int timeout_ms,
                                   char *err, size_t errlen);
void session_mongo_destroy(session_mongo_t **self_p);

/* The session_remote_t that stores sessions in self (valid while self lives; its destroy is NULL). */
session_remote_t session_mongo_remote(session_mongo_t *self);

/* A session store with opts (may be NULL): in cluster mode (cfg->cluster and cfg->mongo_uri) sharing
 * its sessions through collection (the store owns the MongoDB side), else this node's alone. NULL on
 * a bad URI or without memory. */
session_store_t *session_mongo_store(const config_t *cfg, const char *collection, const session_opts_t *opts);

#endif
