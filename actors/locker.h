/* locker.h — the locker stage: RECEIVED → LOCKED (or HELD / REJECTED).
 *
 * KASA_LOCKERS actors (default 4), each owning its own Cobo client (and its own MT5 session for
 * account currency digits, with its own per-group digits cache). Every sender routes a deposit to
 * locker stage_route(STAGE_LOCKER, tx_id) (a stable hash of the transaction id), and a locker
 * handles one deposit at a time: so one deposit is only ever handled by one locker, whether it
 * comes from the webhook, an admin retry or a restart's resume. For each
 * RECEIVED deposit it re-confirms the transaction with Cobo's API (GET /v2/transactions/{id}: type
 * Deposit, status Completed, same token, same exact amount, same destination address), then applies
 * the money rules: address linked to a login, token accepted, at least the token's minimum, at most
 * KASA_AUTO_CREDIT_LIMIT; the account's currency digits come from MT5 (user → group →
 * CurrencyDigits, cached per group). It converts the amount (rate, fee, rounding down, remainder
 * recorded), journals LOCKED and hands the record to the login's crediter.
 *
 * Decisions: Cobo says Rejected/Failed, or below the minimum → REFUSE (REJECTED). Anything that does
 * not match, an unlinked address, a token not accepted, over the limit, a login MT5 does not know →
 * HOLD with the reason. A transport error, a Cobo 5xx/429 or an unreachable MT5 → retried with
 * capped exponential backoff and jitter; the deposit stays RECEIVED meanwhile. */
#ifndef KASA_ACTORS_LOCKER_H
#define KASA_ACTORS_LOCKER_H

#include <czmq.h>

#include "actors/stage.h"

/* Starts locker index (0..ctx->lockers-1; its PULL socket bound) with PUSH sockets to every
 * crediter. NULL with a reason in err (a client could not be made). */
zactor_t *locker_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen);

/* The checks on Cobo's own view of a transaction against what the webhook said (exposed for tests).
 * Returns 0 if it matches; else the event to take (DEPOSIT_EV_HOLD or DEPOSIT_EV_REFUSE) with the
 * reason in reason. */
#include "schema/cobo_tx.h"
#include "schema/record.h"
int locker_check_cobo(const record_t *seen, const cobo_tx_t *api, deposit_event_t *ev,
                      char *reason, size_t reason_len);

#endif
