/* admins.h — the broker's admin accounts: kept in the journal (RECORD_ADMIN_ACCOUNT), so a replay
 * restores them, and held in memory for logins.
 *
 * An account has a name, a role (schema/admin.h), an Argon2id password hash (libsodium
 * crypto_pwhash_str; the password itself is never stored or logged), a TOTP secret and flags
 * (disabled; must change the password). Adding or resetting an account makes a one-time password
 * and a fresh TOTP secret, returned once to the caller to hand to the person; the first login with
 * them must set a new password. Every change and every successful login is journaled with who and
 * from where, durable before the call returns; a login journals the TOTP step it used, so a code is
 * never accepted twice, not even across a restart. Thread-safe. */
#ifndef KASA_ACTORS_ADMINS_H
#define KASA_ACTORS_ADMINS_H

#include <stddef.h>
#include <stdint.h>

#include "journal/journal.h"
#include "schema/admin.h"
#include "schema/record.h"

#define ADMINS_MAX 1000              /* accounts at most */
#define ADMINS_OTP_LEN 21            /* a one-time password: 20 characters + NUL */
#define ADMINS_SECRET_LEN 33         /* a TOTP secret in base32: 32 characters + NUL */

typedef struct admins_t admins_t;

typedef struct {
    char name[64];
    admin_role_t role;
    int disabled;
    int must_change;                 /* the password is a one-time password */
    int64_t created_ms, changed_ms, last_login_ms;
    char created_by[64];
} admin_view_t;

admins_t *admins_new(void);
/* An instance that only replays and saves (a snapshot is built in one): no login may be tried on it. */
admins_t *admins_new_replica(void);
/* The accounts' snapshot section (journal/snapshot.h): save encodes every account, load decodes
 * them into an empty instance. 0, or -1 (load: with a reason; throw the instance away). */
#include "journal/snapshot.h"
int admins_save(admins_t *self, snap_pk_t *p);
int admins_load(admins_t *self, snap_pk_t *p, char *err, size_t errlen);
void admins_destroy(admins_t **self_p);

/* Applies one durable record (ADMIN_ACCOUNT; other kinds are ignored), as replay does. */
void admins_apply(admins_t *self, const record_t *r);
/* Reads the journal in dir and applies every record. Number of admin records, or -1 with a reason. */
long admins_replay(admins_t *self, const char *dir, char *err, size_t errlen);

/* Adds name with role; on 0 password and secret hold the one-time password and the TOTP secret
 * (base32). -1 with a reason: a bad or taken name, too many accounts, the journal failed. */
int admins_add(admins_t *self, journal_t *journal, const char *name, admin_role_t role, const char *actor,
               const char *origin, char password[ADMINS_OTP_LEN], char secret[ADMINS_SECRET_LEN], char *err,
               size_t errlen);
/* A new one-time password and TOTP secret for name, which is enabled again and must change the
 * password at its next login. 0, or -1 with a reason (unknown admin, journal failed). */
int admins_reset(admins_t *self, journal_t *journal, const char *name, const char *actor, const char *origin,
                 char password[ADMINS_OTP_LEN], char secret[ADMINS_SECRET_LEN], char *err, size_t errlen);
/* Disables name: it can no longer log in. 0 (also if already disabled), or -1 with a reason. */
int admins_disable(admins_t *self, journal_t *journal, const char *name, const char *actor, const char *origin,
                   char *err, size_t errlen);

typedef enum {
    ADMINS_LOGIN_OK,          /* *out filled; out->must_change says the password must be changed first */
    ADMINS_LOGIN_REFUSED,     /* unknown name, wrong password or code, a code used before, disabled */
    ADMINS_LOGIN_FAILED,      /* the journal failed: nothing accepted */
} admins_login_t;

/* Checks name, password and the 6-digit TOTP code at now_s (Unix seconds); on success journals the
 * login (with the TOTP step, which is never accepted again) and fills *out. An unknown name costs
 * as much time as a wrong password. A refusal says only "refused" in err (which part was wrong is
 * not told). */
admins_login_t admins_login(admins_t *self, journal_t *journal, const char *name, const char *password,
                            const char *code, int64_t now_s, const char *origin, admin_view_t *out, char *err,
                            size_t errlen);

/* The hash an unknown name's password is checked against (made at admins_new without an Argon2id run,
 * with a real account's cost in it): for tests. */
const char *admins_dummy_hash(const admins_t *self);

/* Sets name's password after checking the current one (admin_password_check rules; not the same
 * as the current one); clears must_change. 0, or -1 with a reason. */
int admins_set_password(admins_t *self, journal_t *journal, const char *name, const char *current,
                        const char *password, const char *origin, char *err, size_t errlen);

/* ---- cluster mode: the accounts shared through MongoDB (actors/shared.h keeps them there) ---------- */

/* An account's whole state, as the nodes share it (secrets included: never logged). */
typedef struct {
    char name[64];
    char role[16];
    char pwhash[128];
    char totp[64];
    char created_by[64];
    uint32_t flags;              /* RECORD_ADMIN_* */
    uint64_t last_step;          /* the last TOTP step accepted on any node */
    int new_secret;              /* put: last_step is set (a new TOTP secret), else left as stored */
    int64_t created_ms, changed_ms;
    char node[64];               /* the node that wrote it last */
} admins_doc_t;

/* Where the shared accounts live. Results: 0 done / found; 1 refused (put with add: the name is
 * taken; step: that step or a later one was used; get: none); -1 the store did not answer. */
typedef struct {
    int (*put)(void *arg, const admins_doc_t *doc, int add);
    int (*step)(void *arg, const char *name, uint64_t step);
    int (*get)(void *arg, const char *name, admins_doc_t *out);
    /* Calls fn for every account; 0, or -1. */
    int (*list)(void *arg, void (*fn)(void *a, const admins_doc_t *doc), void *a);
    void *arg;
} admins_remote_t;

/* Cluster mode: every change is stored in remote before it is journaled (nothing changes when the
 * store does not answer), a login first learns the account's state from it and takes its TOTP step
 * there (a code is accepted once across all nodes), and admins_sync learns what other nodes changed.
 * remote is copied; NULL: single node. Call before the accounts are used. */
void admins_share(admins_t *self, const admins_remote_t *remote);

/* Journals doc as this node's view of its account (a "sync" record by actor kasa:cluster, origin
 * "node:<doc->node>") when it differs from what this node has; a step or state it has is never
 * moved back. 1 journaled, 0 nothing to learn, -1 the journal failed. */
int admins_learn(admins_t *self, journal_t *journal, const admins_doc_t *doc);

/* One pass: learns every account the store has, and stores the accounts this node has that it lacks
 * (made before cluster mode, or offline). 0, or -1 (the store did not answer). */
int admins_sync(admins_t *self, journal_t *journal);

/* 0 and *out for name, or -1 if unknown. */
int admins_get(admins_t *self, const char *name, admin_view_t *out);
/* Calls fn for every account, by name. Returns the count. */
int admins_each(admins_t *self, void (*fn)(void *arg, const admin_view_t *a), void *arg);
size_t admins_count(admins_t *self);

#endif
