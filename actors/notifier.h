/* notifier.h — the notifier stage: CREDITED → NOTIFIED (or a recorded failed notice).
 *
 * KASA_NOTIFIERS actors (default 2), each owning its own Telegram client. A deposit is handled by
 * notifier stage_route(STAGE_NOTIFIER, tx_id) (a stable hash of the transaction id): the restart
 * sends it there directly; the crediters hand every CREDITED record to notifier 0, which forwards
 * the others' share as it reads it (a blocking send: nothing is dropped, and a notifier never sends
 * back to notifier 0, so no cycle). Notices of different deposits may therefore be sent in any
 * order; one deposit's notice is only ever handled by one notifier. For each CREDITED deposit it sends
 * notice_credited() (login, amount credited, token amount, transaction id, MT5 ticket; in
 * KASA_NOTICE_LANG, Turkish by default) to TELEGRAM_CHAT_ID. Accepted → NOTICE_SENT journaled (NOTIFIED). A transient failure is retried with
 * capped backoff (honouring Telegram's retry_after), at most NOTIFIER_TRIES times; a permanent
 * failure or exhausted tries journal RECORD_NOTICE_FAILED with the reason. The deposit then stays
 * CREDITED: a failed notice never blocks or undoes a credit. */
#ifndef KASA_ACTORS_NOTIFIER_H
#define KASA_ACTORS_NOTIFIER_H

#include <czmq.h>

#include "actors/registry.h"
#include "actors/stage.h"

#define NOTIFIER_TRIES 8
#define NOTIFIER_RETRY_BASE_MS 1000
#define NOTIFIER_RETRY_CAP_MS 60000

/* Starts notifier index (0..ctx->notifiers-1; its PULL socket bound). Notifier 0 connects to the
 * others, so start it last. NULL with a reason in err. */
zactor_t *notifier_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen);

#endif
