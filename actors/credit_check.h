/* credit_check.h — "read first": what MT5's deal history says about a deposit's credit, asked before
 * any balance call is sent (by the crediter, and by a person's reject).
 *
 * MT5's balance call has no idempotency key, so the only proof that a credit happened is a balance
 * deal carrying the deposit's reference. credit_check_run() searches the balance deals of every login
 * a credit attempt ever went to (and the deposit's current login) and gives one of four answers;
 * only CREDIT_CHECK_NOT_THERE, from searches that each read every page, may ever lead to a send.
 *
 * The search window is on MT5's clock (deal times may be trade-server time): from the deposit's
 * first moment (its first record, or its first attempt if earlier) to now, shifted by the offset
 * between MT5's clock and kasa's as measured from the last deal made (mt5_clock_offset), widened by
 * CREDIT_CHECK_MARGIN_S either side; before any offset was measured, CREDIT_CHECK_WIDE_S either side
 * (MT5's own advice for an unknown time zone). A window bounded this way reads the deals of a few
 * hours, not of days, on an account that trades heavily. */
#ifndef KASA_ACTORS_CREDIT_CHECK_H
#define KASA_ACTORS_CREDIT_CHECK_H

#include <stdint.h>

#include "actors/mt5.h"
#include "actors/registry.h"

/* With a measured offset: one hour for a daylight-saving change since it was measured, plus five
 * minutes for the measurement itself (a deal's Time has whole seconds; the call took its time). */
#define CREDIT_CHECK_MARGIN_S (3600 + 300)
#define CREDIT_CHECK_WIDE_S (2 * 24 * 3600)

typedef enum {
    CREDIT_CHECK_FOUND,       /* a deal carries the reference: deal, login (check mismatch)           */
    CREDIT_CHECK_NOT_THERE,   /* every login searched to the last page: no deal                       */
    CREDIT_CHECK_CANNOT_TELL, /* a search could not finish (unreachable, over the cap, odd pages): retry */
    CREDIT_CHECK_REFUSED,     /* MT5 refuses to tell (no rights, an unknown login): a person must look */
} credit_check_answer_t;

typedef struct {
    credit_check_answer_t answer;
    mt5_deal_t deal;           /* FOUND: the first deal found                                       */
    uint64_t login;            /* FOUND: the login searched when it was found                      */
    int matches;               /* deals found with the reference, over every login searched        */
    uint64_t ticket2;          /* a second such deal (0 if none): the deposit was credited twice   */
    int mismatch;              /* FOUND: the deal's login or amount is not the attempt's            */
    int64_t from_s, to_s;      /* the window searched (MT5's clock)                                 */
    char why[240];             /* FOUND with mismatch: both figures; CANNOT_TELL, REFUSED: the reason */
} credit_check_t;

/* The logins to search for e: every login an attempt went to (in order), then e's current login if
 * none did. Returns how many were written (at most cap). */
int credit_check_logins(const registry_entry_t *e, uint64_t *logins, int cap);

/* The window [*from_s, *to_s] on MT5's clock for e at kasa's now_ms (see above); offset_known says
 * whether offset_s (MT5's clock minus kasa's) was measured. */
void credit_check_window(const registry_entry_t *e, int64_t now_ms, int offset_known, int64_t offset_s,
                      int64_t *from_s, int64_t *to_s);

/* Searches every login of e for ref (and for e's last attempt's reference when it differs) on mt5,
 * in the window above (the offset read from mt5), at kasa's now_ms. Fills *out; returns its answer.
 * FOUND is checked against what the attempt on that login was for: a deal on another login than
 * asked, or of another amount, sets mismatch with both figures in why. */
credit_check_answer_t credit_check_run(mt5_client_t *mt5, const registry_entry_t *e, const char *ref, int64_t now_ms,
                                 credit_check_t *out);

/* "found", "not_there", "cannot_tell", "refused". */
const char *credit_check_answer_name(credit_check_answer_t a);

#endif
