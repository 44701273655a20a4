/* crediter.h — the crediter stage: LOCKED → CREDITED (or HELD), exactly once.
 *
 * KASA_CREDITERS workers, each an actor owning one MT5 client (one session). The locker and the
 * restart route each deposit to worker login % N, and a worker handles one deposit at a time; so
 * one MT5 login is never credited by two workers at once, and one login's deposits are credited in
 * the order they were locked (the work list keeps per-login order even across backoffs).
 *
 * For each LOCKED deposit ("write last, read first"):
 *  1. If the deposit has any earlier credit attempt (from this run or found by replay), it first
 *     looks for the reference among the login's balance deals (±2 days around the attempts):
 *     found → CREDITED with that ticket, never sent again; not found → safe to send; MT5 unreachable
 *     → retried later, never sent blind.
 *  2. It journals RECORD_CREDIT_ATTEMPT (attempt n, ref) and waits until it is durable.
 *  3. It calls MT5's balance operation with the reference as the comment.
 *     OK → CREDITED (ticket) → the notifier. AMBIGUOUS (timeout, reset, 403 mid-call) → back off,
 *     and the next turn reconciles first (step 1). PERMANENT → HELD with MT5's reason.
 *     TRANSIENT / AUTH_FAILED (nothing was sent) → capped exponential backoff with jitter.
 * An idle session is pinged about every 20 s so MT5 (which drops it after 180 s) keeps it. */
#ifndef KASA_ACTORS_CREDITER_H
#define KASA_ACTORS_CREDITER_H

#include <czmq.h>

#include "actors/stage.h"

#define CREDITER_PING_MS 20000
#define CREDITER_WINDOW_S (2 * 24 * 3600) /* reconcile window either side of the attempts */

/* Starts worker index (0..ctx->crediters-1): binds its PULL socket, connects to the notifier.
 * NULL with a reason in err. */
zactor_t *crediter_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen);

/* The MT5 comment reference of a deposit: "kasa " + the first 26 hex digits of tx_id without its
 * dashes (fewer if it has fewer; characters other than hex digits are skipped, letters lower-cased).
 * Deterministic, at most 31 characters (MT5's comment limit), printable ASCII. */
void crediter_ref(const char *tx_id, char out[32]);

#endif
