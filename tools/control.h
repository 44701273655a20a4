/* control.h — the running server's control socket: a ZeroMQ REP actor on KASA_CONTROL
 * (default ipc://<journal_dir>/control.sock, reachable only by who may open the journal dir).
 *
 * Requests are multipart messages of short text frames; every reply is [status, text] with
 * status "ok" or "error":
 *   [ "ping" ]                                      → [ "ok", "pong" ]
 *   [ "link", ADDRESS, CHAIN, LOGIN, ACTOR ]        → pipeline_link(), journaled before the reply:
 *                                                     [ "ok", "linked ..." ] or [ "error", reason ]
 *   [ VERB, ARGS... ]                               → a verb added with control_verb() (below)
 *   [ "deposit", ACTION, TX, LOGIN, ACTOR, ORIGIN, REASON ]
 *                                                   → pipeline_admin() (ACTION retry|assign|approve|reject,
 *                                                     LOGIN "" unless assign), journaled before the reply:
 *                                                     [ "ok", what happened ] or [ "error", reason ]
 *   [ "admin", add|reset|disable, NAME, ROLE, ACTOR, ORIGIN ]
 *                                                   → admins_add/_reset/_disable, journaled before the reply:
 *                                                     [ "ok", "PASSWORD SECRET" ] (add, reset: the one-time
 *                                                     password and the TOTP secret), [ "ok", "disabled NAME" ]
 * Anything else → [ "error", "unknown request" ]. One request at a time (REP). */
#ifndef KASA_TOOLS_CONTROL_H
#define KASA_TOOLS_CONTROL_H

#include <stddef.h>

#include "actors/admins.h"
#include "actors/pipeline.h"

typedef struct control_t control_t;

/* Binds endpoint and starts answering; pipeline, admins (may be NULL: no admin requests) and the
 * journal the admins journal to are not owned. NULL with a reason in err. */
typedef struct journal_t journal_t;
control_t *control_new(const char *endpoint, pipeline_t *pipeline, admins_t *admins, journal_t *journal, char *err,
                       size_t errlen);
/* Stops the actor, unbinds, frees; nulls *self_p; safe on NULL and twice. */
void control_destroy(control_t **self_p);

/* A verb other modules add (e.g. "catchup"): frames[0] is the verb, frames[1..n) its arguments.
 * Runs on the control actor's thread (requests wait meanwhile). Writes its answer into reply and
 * returns 0 for "ok", -1 for "error". */
typedef int (control_verb_fn)(void *arg, char *const *frames, int n, char *reply, size_t replylen);
/* Adds verb name (at most CONTROL_MAX_VERBS in all; a later one with the same name replaces it).
 * Thread-safe; takes effect for the next request. 0, or -1 when the table is full. */
#define CONTROL_MAX_VERBS 8
int control_verb(control_t *self, const char *name, control_verb_fn *fn, void *arg);

/* Client side: sends frames[0..n) to endpoint and waits up to timeout_ms for the reply.
 * Returns 0 for "ok", 1 for "error" (reply holds the text either way), or -1 when no server
 * answered in time (reply says so). */
int control_request(const char *endpoint, const char *const *frames, int n, int timeout_ms,
                    char *reply, size_t replylen);

/* An operator's command on the journal in journal_dir, with or without a running server: when no
 * server holds the journal, opens it (its lock keeps a server from starting meanwhile), calls
 * offline(journal, arg) (which prints its own outcome and returns the exit status) and closes it;
 * when a server holds it, sends frames[0..n) to its control socket at endpoint and, if online is
 * NULL, prints the answer (on stdout, "... (journaled by the running server)"), else hands the
 * answer to online(reply, arg), which prints it and returns the exit status. A refusal goes to stderr
 * as "kasa NAME: refused: ...". Returns the exit status: 0 done, 1 refused or failed. */
int control_or_offline(const char *name, const char *journal_dir, const char *endpoint,
                       int (*offline)(journal_t *journal, void *arg), int (*online)(const char *reply, void *arg),
                       void *arg, const char *const *frames, int n, int timeout_ms);

#endif
