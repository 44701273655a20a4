/* mt5.h — a client of the MetaTrader 5 Web API (the access server's REST "Manager Interface").
 *
 * One mt5_client_t is one MT5 session: one persistent libcurl easy handle, so one HTTP/1.1
 * keep-alive connection, with the cookie engine on. The session is opened lazily by the first call
 * (handshake: /api/auth/start, then /api/auth/answer, and the server must prove it knows the
 * password too, else it is not genuine). Requests on a client are serialised by its mutex: a
 * client may be shared, but one call runs at a time; for parallel work give each worker its own
 * client (MT5 counts one session per client).
 *
 * A session is gone after an HTTP 403 or when curl had to open a new connection: the client then
 * authenticates again. A read (user, group, deals, ping) is then retried once; a balance operation
 * is never resent by this module — its outcome is reported as MT5_AMBIGUOUS and the caller must
 * reconcile with mt5_find_balance_deal() before sending again. Before a balance request the client
 * checks that the session's connection is still open (and pings after 2 s of idleness), so a lost
 * session is renewed while nothing has been sent yet; during the request it lets curl open no new
 * connection, because curl would silently resend the request on one (a second deal).
 *
 * Money is never a double here: amounts go out formatted from minor units, and money read from
 * MT5 is kept as the exact decimal text it sent. The password is never logged nor put in a URL
 * or an error string. */
#ifndef KASA_ACTORS_MT5_H
#define KASA_ACTORS_MT5_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt5_client_t mt5_client_t;

/* The outcome of a call, for the caller's decision. */
typedef enum {
    MT5_OK = 0,       /* done (for mt5_find_balance_deal: found, *ticket set)                        */
    MT5_NOT_FOUND,    /* mt5_find_balance_deal only: no balance deal with that comment in the window  */
    MT5_PERMANENT,    /* refused for good; stop and alert: retcodes 3, 8, 13, 1001, 4005, 10019, ...  */
    MT5_BAD_PASSWORD, /* mt5_check_password: retcode 3006 Invalid account password                     */
    MT5_AUTH_FAILED,  /* the manager login was refused, or the server failed to prove it is genuine;
                         nothing else was sent. A configuration problem: alert, retry later.           */
    MT5_TRANSIENT,    /* nothing happened for sure and retrying is safe: 7, 9, 10, 12, HTTP 403,
                         transport error or timeout on a read                                          */
    MT5_AMBIGUOUS,    /* a balance operation whose outcome is unknown (timeout, reset, 403, 7/9/10
                         after sending): it may have been applied. Reconcile, never resend blindly.   */
    MT5_CANNOT_TELL,  /* a deal search that could not read everything (over the cap, an empty, odd or
                         overlong page): neither found nor proven absent. Retry later, never send.   */
} mt5_result_t;

/* A stable lower-case name for logs ("ok", "not_found", "permanent", "bad_password",
 * "auth_failed", "transient", "ambiguous", "cannot_tell"). */
const char *mt5_result_name(mt5_result_t r);

/* ---- the client ------------------------------------------------------------------------------ */

/* A client of the access server at url ("https://host:port"; "http://" only for a local
 * simulator), manager login and password (only its hash h2 is kept, wiped on destroy), an
 * optional CA file for a self-signed server (NULL or "" for the system store), and a per-request
 * timeout in ms (> 0; connect timeout is the same). Does not connect. Returns NULL on bad arguments or no memory. */
mt5_client_t *mt5_client_new(const char *url, uint64_t manager_login, const char *password,
                             const char *ca_file, long timeout_ms);

/* Ends the session politely if one is open (GET /api/quit, errors ignored), frees, wipes the
 * password, and sets *self_p to NULL. Safe on NULL and twice. */
void mt5_client_destroy(mt5_client_t **self_p);

/* Opens a session if none is open, then GET /api/test/access. Call about every 20 s of idleness
 * to keep the session (MT5 drops it after 180 s). MT5_OK, MT5_AUTH_FAILED or MT5_TRANSIENT. */
mt5_result_t mt5_ping(mt5_client_t *c, char *err, size_t errlen);

/* GET /api/quit on the session's connection if it is still open, and forget the session (the
 * next call authenticates again). Errors ignored. */
void mt5_quit(mt5_client_t *c);

/* How many handshakes this client has completed (for tests and the monitor). */
uint64_t mt5_auth_count(const mt5_client_t *c);

/* The leading integer of the last MT5 retcode received (0 for "0 Done"), or -1 if the last call
 * got no retcode (transport error, HTTP error). */
int mt5_last_retcode(const mt5_client_t *c);

/* ---- operations -------------------------------------------------------------------------------- */

#define MT5_COMMENT_MAX 31 /* MT5 cuts longer comments silently: they are refused here instead */

/* A balance deal (type=2) of amount_minor minor units with digits decimals (0..8) on login:
 * positive deposits (check_margin=0), negative withdraws (check_margin=1). comment: printable
 * ASCII, 1..31 characters, URL-encoded (spaces as %20). On MT5_OK *ticket is the deal ticket.
 * MT5_PERMANENT for a refusal, and for arguments refused before sending (zero amount, bad
 * comment, digits out of range). MT5_AUTH_FAILED or MT5_TRANSIENT when no session could be opened:
 * nothing was sent. MT5_AMBIGUOUS once the request may have reached MT5 and the reply does not
 * prove the outcome (transport error, timeout, HTTP 403, retcode 7/9/10/12, unreadable reply). */
mt5_result_t mt5_balance(mt5_client_t *c, uint64_t login, int64_t amount_minor, int digits,
                         const char *comment, uint64_t *ticket, char *err, size_t errlen);

#define MT5_SEARCH_MAX_DEALS 100000 /* deals one listing reads at most; more is "cannot tell" */

/* A balance deal as /api/deal/get_page reports it (MT5's own figures). Money is MT5's exact
 * decimal text. */
typedef struct {
    uint64_t ticket;         /* Deal */
    uint64_t login;          /* Login as the deal states it (the login listed when absent) */
    int64_t time_s;          /* Time, on MT5's clock (possibly trade-server time); 0 when absent */
    char profit[48];         /* Profit: the amount of a balance deal, "249.50" ("" if absent) */
    char comment[48];        /* Comment as MT5 holds it (possibly rewritten by a server plugin) */
} mt5_deal_t;

/* Called once per balance deal; return non-zero to stop the listing early (not an error). */
typedef int (*mt5_deal_fn)(void *arg, const mt5_deal_t *deal);

/* Visits every balance deal (Action 2) on login with a deal time in [from_s, to_s] on MT5's clock,
 * in MT5's order. Read-only. Reads /api/deal/get_total, then /api/deal/get_page from offset 0 in
 * pages of up to 100, each next offset advanced by the deals the page returned, until Total deals
 * were read. MT5_OK only when the listing was complete (or fn stopped it): Total was read and is
 * at most MT5_SEARCH_MAX_DEALS, every page was an array of deals (each with Deal, Action and
 * Comment), none empty before Total nor longer than asked. MT5_CANNOT_TELL when any of that fails;
 * or an error class from the session (MT5_TRANSIENT, MT5_AUTH_FAILED, MT5_PERMANENT, e.g. 13 for
 * an unknown login). fn may already have been called when the listing fails. */
mt5_result_t mt5_each_balance_deal(mt5_client_t *c, uint64_t login, int64_t from_s, int64_t to_s,
                                   mt5_deal_fn fn, void *arg, char *err, size_t errlen);

/* Every balance deal on login whose Comment carries ref (mt5_comment_matches), with a deal time in
 * [from_s, to_s] on MT5's clock: mt5_each_balance_deal with a reference to match. Three answers:
 *   MT5_OK          found: *count (>= 1) matches, the first min(*count, cap) copied to found[];
 *   MT5_NOT_FOUND   not there — only when the listing was complete (see above);
 *   MT5_CANNOT_TELL the listing could not be finished;
 * or an error class from the session. Never reports "not there" for a search it could not finish. */
mt5_result_t mt5_find_balance_deals(mt5_client_t *c, uint64_t login, const char *ref, int64_t from_s, int64_t to_s,
                                    mt5_deal_t *found, size_t cap, size_t *count, char *err, size_t errlen);

/* mt5_find_balance_deals with room for one: *ticket is the first match's ticket on MT5_OK. */
mt5_result_t mt5_find_balance_deal(mt5_client_t *c, uint64_t login, const char *ref,
                                   int64_t from_s, int64_t to_s, uint64_t *ticket,
                                   char *err, size_t errlen);

/* 1 if a deal comment carries the reference ref. The reference's core is its trailing run of hex
 * digits (kasa's "kasa " + 26 hex digits: the 26). With a core of 8 or more digits: the comment
 * holds the whole core anywhere, case-insensitively (a server plugin may prefix, re-case or wrap
 * it), or ends (trailing spaces aside) with the core's first 16 or more digits right after a
 * non-hex character (a prefix pushed the end past MT5's 31 characters, or the comment was cut).
 * With a shorter core: the comment equals ref, case-insensitively. 0 otherwise (and for NULL). */
int mt5_comment_matches(const char *comment, const char *ref);

/* MT5's deal clock minus kasa's UTC clock, in seconds, as measured from the last deal this client
 * made (mt5_balance reads the new deal's Time back at most every MT5_CLOCK_MEASURE_S): 0 with
 * *offset_s set, or -1 when nothing was measured yet. MT5 may write deal times in trade-server
 * time, so a deal search window is MT5's clock, not kasa's. */
#define MT5_CLOCK_MEASURE_S 600
int mt5_clock_offset(mt5_client_t *c, int64_t *offset_s);

/* An account as /api/user/get reports it. Money is MT5's exact decimal text ("1000.50"). */
typedef struct {
    uint64_t login;
    char group[64];
    char name[128];
    char balance[32];
    char credit[32];
} mt5_user_t;

/* GET /api/user/get?login=L. MT5_OK with *out filled; MT5_PERMANENT for 13 (no such login). */
mt5_result_t mt5_user_get(mt5_client_t *c, uint64_t login, mt5_user_t *out, char *err, size_t errlen);

typedef struct {
    char group[64];
    char currency[16];
    int digits; /* CurrencyDigits, 0..8 */
} mt5_group_t;

/* GET /api/group/get?group=G (G URL-encoded). MT5_OK with *out filled. */
mt5_result_t mt5_group_get(mt5_client_t *c, const char *group, mt5_group_t *out, char *err, size_t errlen);

typedef struct {
    uint64_t login;
    char balance[32];
    char equity[32];
    char margin[32];
    char margin_free[32];
} mt5_account_t;

/* GET /api/user/account/get?login=L (only accounts active since the server's last restart). */
mt5_result_t mt5_user_account_get(mt5_client_t *c, uint64_t login, mt5_account_t *out,
                                  char *err, size_t errlen);

/* Checks an investor's password: POST /api/user/check_password with the password in the JSON
 * body (never in the URL). type: "main", "investor" or "api". MT5_OK, MT5_BAD_PASSWORD (3006),
 * MT5_PERMANENT (e.g. 13 unknown login), or an error class. */
mt5_result_t mt5_check_password(mt5_client_t *c, uint64_t login, const char *password,
                                const char *type, char *err, size_t errlen);

/* ---- pure helpers (no I/O), exposed for tests and the simulator -------------------------------- */

/* h2 = MD5(MD5(password as UTF-16LE) || "WebAPI"). password is UTF-8; invalid UTF-8 bytes are
 * taken as Latin-1. Returns 0, or -1 if password is longer than 1024 bytes. */
int mt5_auth_h2(const char *password, unsigned char h2[16]);

/* answer_hex = hex(MD5(h2 || hex_decode(rand_hex))): srv_rand_answer from srv_rand, and
 * cli_rand_answer from cli_rand. rand_hex: 2..128 hex digits, even count. 0, or -1. */
int mt5_auth_answer(const unsigned char h2[16], const char *rand_hex, char answer_hex[33]);

/* The leading integer of a retcode string ("0 Done" -> 0, "13 Not found" -> 13), or -1. */
int mt5_retcode_parse(const char *retcode);

/* The class of a nonzero retcode for a read (is_balance 0) or a balance operation (is_balance 1:
 * the transient codes become MT5_AMBIGUOUS). 0 -> MT5_OK; 3006 -> MT5_BAD_PASSWORD. */
mt5_result_t mt5_retcode_class(int retcode, int is_balance);

/* Formats amount_minor with digits (0..8) decimals, exactly: (-12345, 2) -> "-123.45",
 * (5, 2) -> "0.05", (7, 0) -> "7". Returns 0, or -1 if buf is too small or digits out of range. */
int mt5_format_amount(int64_t amount_minor, int digits, char *buf, size_t len);

/* Parses MT5 decimal text ("1000.5", "-3.25", "0") into minor units with digits decimals, exactly;
 * refuses more significant decimals than digits, and overflow. 0, or -1. */
int mt5_parse_amount(const char *text, int digits, int64_t *out_minor);

/* Parses 1..19 ASCII digits (a login or a ticket as MT5 writes them) into *out; no sign, no
 * spaces. 0, or -1 (also for NULL). */
int mt5_parse_u64(const char *text, uint64_t *out);

/* Parses an MT5 login: as mt5_parse_u64, and not 0. 0, or -1. */
int mt5_parse_login(const char *text, uint64_t *login);

#endif
