/* accounts.h — investors' MT5 work (password checks, account reads) as stage actors that own the MT5
 * clients for it, as the crediters own theirs.
 *
 * Each accounts actor runs the shared stage loop (actors/stage.h) with one MT5 client: one Web API
 * session on one keep-alive connection, one request at a time. A few actors let that many requests
 * run at once while staying well under the manager's session limit; a client per request would
 * open a new MT5 session (a full handshake) each time.
 *
 * A caller (an HTTP handler) submits a request with a function to call with the answer and
 * returns at once: nothing waits on a caller's thread. accounts_submit goes to the actor with the
 * least work in hand; each actor holds at most queue_max requests (queued and running), beyond which
 * the submit is refused at once (the caller answers "busy"). A request not started within wait_ms
 * is answered ACCOUNTS_BUSY without asking MT5, at its deadline (a timer, not when its turn comes),
 * so no caller waits longer than wait_ms for a free client. The answer comes exactly once, from an
 * actor's thread, the timer's, or accounts_close()'s. Passwords are wiped once used. */
#ifndef KASA_ACTORS_ACCOUNTS_H
#define KASA_ACTORS_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "schema/config.h"

typedef struct accounts_t accounts_t;

#define ACCOUNTS_MAX_ACTORS 16

typedef struct {
    int actors;            /* accounts actors, each with one MT5 client; default 3, at most ACCOUNTS_MAX_ACTORS */
    int queue_max;         /* requests one actor holds, queued and running; default 16 */
    int64_t wait_ms;       /* the longest a request waits for its turn; default 5000 */
    int64_t mt5_timeout_ms;/* per MT5 request; default KASA_MT5_TIMEOUT_MS */
} accounts_opts_t;

typedef enum {
    ACCOUNTS_CHECK_PASSWORD,   /* the main password (else the investor password, when asked) */
    ACCOUNTS_READ,             /* the account: name, balance, credit, equity, free margin, currency */
    ACCOUNTS_WITHDRAW,         /* a withdrawal's facts: the MAIN password checked (never the investor one),
                                * then the account as ACCOUNTS_READ (its free margin above all) */
} accounts_ask_t;

typedef struct {
    accounts_ask_t ask;
    uint64_t login;
    char password[257];        /* ACCOUNTS_CHECK_PASSWORD; wiped by accounts_submit once copied */
    int investor_password;     /* ACCOUNTS_CHECK_PASSWORD: also accept the investor (read-only) password */
} accounts_request_t;

typedef enum {
    ACCOUNTS_OK = 0,
    ACCOUNTS_REFUSED,          /* check: MT5 says no (wrong password, or no such login) */
    ACCOUNTS_UNAVAILABLE,      /* MT5 could not answer (unreachable, timeout, manager refused, ...) */
    ACCOUNTS_BUSY,             /* every actor is full, or the request waited wait_ms: MT5 was not asked */
    ACCOUNTS_STOPPING,         /* kasa is stopping: MT5 was not asked */
} accounts_result_t;

typedef struct {
    accounts_result_t result;
    const char *mt5_result;    /* MT5's answer class for logs ("bad_password", "transient", ...), never NULL */
    char why[160];             /* MT5's reason, for logs ("" when none) */
    /* ACCOUNTS_READ with ACCOUNTS_OK: money as text with the currency's digits ("1000.50"); equity
     * "" when MT5 has no live account record; currency "" and digits -1 when the group cannot be
     * read (the money is then MT5's own text: no digit count is guessed). */
    char name[128];
    char balance[48], credit[48], equity[48];
    char margin_free[48];      /* MarginFree ("" when MT5 has no live account record) */
    char currency[16];
    int digits;
} accounts_answer_t;

/* Called once with the answer, on a thread of the accounts object (never the submitter's). answer
 * lives only during the call. */
typedef void (accounts_done_fn)(void *arg, const accounts_answer_t *answer);

/* Starts the actors (each with its MT5 client from cfg: MT5_URL, MT5_LOGIN, MT5_PASSWORD,
 * MT5_CA_FILE) and the deadline timer. cfg must outlive the object. Nothing is connected yet.
 * NULL with a reason in err. */
accounts_t *accounts_new(const config_t *cfg, const accounts_opts_t *opts, char *err, size_t errlen);

/* Hands req to an actor; done(arg, answer) follows later. ACCOUNTS_OK when queued; ACCOUNTS_BUSY
 * (every actor full) or ACCOUNTS_STOPPING (closed) when refused at once: done is then never called.
 * req->password is wiped either way. Thread-safe; never waits for MT5. */
accounts_result_t accounts_submit(accounts_t *self, accounts_request_t *req, accounts_done_fn *done, void *arg);

/* Items in the accounts actors' work lists, summed; *actors (may be NULL) gets how many run. Any
 * thread. */
int accounts_queue_depth(accounts_t *self, int *actors);

/* Refuses every later submit and answers every request not yet answered with ACCOUNTS_STOPPING now
 * (a request whose MT5 call is running finishes in the background; its answer is dropped). Returns
 * once those answers are given. Safe twice. */
void accounts_close(accounts_t *self);

/* accounts_close, then ends the actors (waits for a running MT5 call to end) and frees. Nulls
 * *self_p; safe on NULL and twice. */
void accounts_destroy(accounts_t **self_p);

/* Requests queued or running now (for tests and logs). */
int accounts_pending(accounts_t *self);

/* The login parser every caller shares (digits only, 1..2^63-1): 0, or -1. */
int accounts_parse_login(const char *text, uint64_t *login);

#endif
