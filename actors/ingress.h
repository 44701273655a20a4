/* ingress.h — how a verified Cobo deposit webhook becomes a deposit event and its record.
 * Pure: no I/O, no state. pipeline_ingest() (actors/pipeline.c) passes the record through the
 * registry's commit gate, which asks the state machine (schema/deposit.c) what it means. */
#ifndef KASA_ACTORS_INGRESS_H
#define KASA_ACTORS_INGRESS_H

#include <stddef.h>

#include "schema/cobo_tx.h"
#include "schema/record.h"

/* The event a Cobo status means: Completed → SEEN_COMPLETED; Rejected, Failed, or sub-status
 * ReOrged → SEEN_FAILED; anything else (Confirming, PendingScreening, Pending, ...) → SEEN_PENDING. */
deposit_event_t ingress_event(const cobo_tx_t *tx);

/* Fills *r (RECORD_DEPOSIT, event from ingress_event) with tx's fields, login (0 if the address is
 * not linked) and, for SEEN_FAILED, the reason ("Cobo says Failed"). Returns 0, or -1 with a reason
 * if tx is not something a deposit can be made of (not a Deposit, no id, a field too long). */
int ingress_record(const cobo_tx_t *tx, uint64_t login, record_t *r, char *err, size_t errlen);

#endif
