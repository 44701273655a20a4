/* locker.h — the locker stage: RECEIVED → LOCKED (or HELD / REJECTED), and the follow-up of
 * PENDING deposits whose final webhook never came.
 *
 * KASA_LOCKERS actors (default 4), each owning its own Cobo client (and its own MT5 session for the
 * accounts' currencies, with its own per-group cache). Every sender routes a deposit to locker
 * stage_route(STAGE_LOCKER, tx_id) (a stable hash of the transaction id), and a locker handles one
 * deposit at a time: so one deposit is only ever handled by one locker, whether it comes from the
 * webhook, an admin retry, a restart's resume or the locker's own follow-up.
 *
 * For each RECEIVED deposit it re-confirms the transaction with Cobo's API (GET
 * /v2/transactions/{id}: type Deposit, status Completed, same token, same exact amount, same
 * destination address), then applies the money rules: address linked to a login, token accepted,
 * at most KASA_AUTO_CREDIT_LIMIT; the account's currency and digits from MT5 (user → Group →
 * Currency, CurrencyDigits); the rule of the token for that currency (KASA_TOKEN_<TOKEN>__<CCY>);
 * at least that rule's minimum. It converts the amount (rate, fee, rounding down, remainder
 * recorded), journals LOCKED and hands the record to the login's crediter.
 *
 * Decisions: Cobo's API says Rejected/Failed → REFUSE (REJECTED). Anything that does not match, an
 * unlinked address, a token not accepted, over the limit, a currency without a rule, below the
 * minimum (the money arrived: a person decides), a login MT5 does not know → HOLD with the reason.
 * Retried with capped exponential backoff and jitter, the deposit staying RECEIVED: a transport
 * error, a Cobo 5xx/429, an unreachable MT5, an MT5 group that cannot be read (never replaced by a
 * default), and Cobo's API still saying Confirming after a Completed webhook — that one for at most
 * KASA_COBO_CONFIRM_WAIT_S from the RECEIVED record, then HOLD.
 *
 * Follow-up: each locker scans the registry from its idle hook for the PENDING deposits it owns
 * with no news for KASA_PENDING_AGE_S and asks Cobo's API about each, again every
 * KASA_PENDING_POLL_S until Cobo says it is final; the answer is journaled as the webhook would
 * have been (Completed → RECEIVED and locked here; Rejected/Failed → REJECTED). It asks only about
 * deposits kasa already knows. */
#ifndef KASA_ACTORS_LOCKER_H
#define KASA_ACTORS_LOCKER_H

#include <czmq.h>

#include "actors/stage.h"

/* Starts locker index (0..ctx->lockers-1; its PULL socket bound) with PUSH sockets to every
 * crediter. NULL with a reason in err (a client could not be made). */
zactor_t *locker_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen);

/* The checks on Cobo's own view of a transaction against what the webhook said (exposed for tests).
 * Returns 0 if it matches; 1 if Cobo's API does not say Completed yet (reason filled: ask again
 * later); else -1 with the event to take (DEPOSIT_EV_HOLD or DEPOSIT_EV_REFUSE) and the reason. */
#include "schema/cobo_tx.h"
#include "schema/record.h"
int locker_check_cobo(const record_t *seen, const cobo_tx_t *api, deposit_event_t *ev,
                      char *reason, size_t reason_len);

#endif
