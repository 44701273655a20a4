/* crediter.h — the crediter stage: LOCKED → CREDITED (or HELD), exactly once.
 *
 * KASA_CREDITERS workers, each an actor owning one MT5 client (one session). The locker and the
 * restart route each deposit to worker login % N, and a worker handles one deposit at a time; so
 * one MT5 login is never credited by two workers at once, and one login's deposits are credited in
 * the order they were locked (the work list keeps per-login order even across backoffs).
 *
 * For each LOCKED deposit ("write last, read first"):
 *  1. Before every send, attempt on record or not (a journal may have lost one: a repair, a
 *     restored backup), it searches the balance deals of every login ever tried for the deposit and
 *     of its current login for the reference (actors/credit_check.h). Found → CREDITED with that ticket
 *     (or HELD with both figures and a deal_mismatch alert when the deal's login or amount is not
 *     what was sent; two deals → a double_credit alert). Cannot tell → retried later, never sent.
 *     MT5 refuses to tell → HELD. Not there → step 2, but only once the settle time
 *     (KASA_MT5_SETTLE_S) since the last attempt has passed: MT5 may execute an ambiguous call late,
 *     so until then it searches again about five times per settle time. The settle time runs from
 *     the attempt's journaled time, so a restart after a crash with a call in flight waits too.
 *     An attempt whose request never left (MT5_TRANSIENT, MT5_AUTH_FAILED) needs no settle time.
 *  2. It journals RECORD_CREDIT_ATTEMPT (attempt n, ref) and waits until it is durable.
 *  3. It calls MT5's balance operation with the reference as the comment.
 *     OK → CREDITED (ticket) → the notifier; when it was attempt 2 or later (it followed an
 *     ambiguous one) the deposit is searched once more a settle time later, and two deals with the
 *     reference raise a double_credit alert (both tickets). AMBIGUOUS (timeout, reset, 403 mid-call)
 *     → step 1 again, searching while the settle time runs. PERMANENT → HELD with MT5's reason.
 *     TRANSIENT / AUTH_FAILED (nothing was sent) → capped exponential backoff with jitter.
 * Credit attempts of one deposit go to at most REGISTRY_MAX_LOGINS logins (every one is searched
 * forever after); a deposit reassigned beyond that is HELD. A credit that succeeds after the deposit
 * was held is recorded (HELD → CREDITED) with a credit_after_hold alert.
 * An idle session is pinged about every 20 s so MT5 (which drops it after 180 s) keeps it. */
#ifndef KASA_ACTORS_CREDITER_H
#define KASA_ACTORS_CREDITER_H

#include <czmq.h>

#include "actors/stage.h"

#define CREDITER_PING_MS 20000

/* Starts worker index (0..ctx->crediters-1): binds its PULL socket, connects to the notifier.
 * NULL with a reason in err. */
zactor_t *crediter_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen);

/* The MT5 comment reference of a deposit: "kasa " + the first 26 hex digits of tx_id without its
 * dashes (fewer if it has fewer; characters other than hex digits are skipped, letters lower-cased).
 * Deterministic, at most 31 characters (MT5's comment limit), printable ASCII. */
void crediter_ref(const char *tx_id, char out[32]);

#endif
