/* totals.h — running totals of the deposits kasa has seen: how many are in each state, and the token
 * amount credited per token and UTC day over the last TOTALS_DAYS days. The registry keeps one,
 * changed by every deposit transition it applies and carried in its snapshot section, so the admin
 * summary counts every deposit ever seen, finished ones that left memory for the index too, and is
 * never recomputed from the index.
 *
 * Plain data under the registry's lock: no lock, no allocation, bounded (TOTALS_TOKENS tokens; a
 * token beyond is not summed, as the summary always did). */
#ifndef KASA_ACTORS_TOTALS_H
#define KASA_ACTORS_TOTALS_H

#include <stdint.h>

#include "journal/snapshot.h"
#include "schema/deposit.h"
#include "schema/money.h"

#define TOTALS_TOKENS 16
#define TOTALS_DAYS 8   /* today and the 7 days before: the summary's week is today and the 6 before */

typedef struct {
    int64_t state_count[DEPOSIT_STATE_COUNT];   /* deposits in each state now ([DEPOSIT_NONE] unused) */
    int tokens;
    char token[TOTALS_TOKENS][40];
    int64_t slot_day[TOTALS_DAYS];              /* the UTC day (ms / 86400000) slot d % TOTALS_DAYS holds */
    money_atto_t credited[TOTALS_TOKENS][TOTALS_DAYS];   /* token amount credited that day */
} totals_t;

/* A deposit moved from state from to state to by a record of time_ms; token_id and amount (its
 * exact decimal string) are the deposit's. Counts it in its new state; entering CREDITED or NOTIFIED
 * from any other state adds amount to token_id's day of time_ms (once per deposit). A day older than
 * the slots hold is not kept. */
void totals_move(totals_t *t, deposit_state_t from, deposit_state_t to, const char *token_id, const char *amount,
                 int64_t time_ms);

/* The token amount of token index k credited on days [first_day, last_day] (UTC day numbers). */
money_atto_t totals_credited(const totals_t *t, int k, int64_t first_day, int64_t last_day);

/* Both directions of the snapshot encoding (journal/snapshot.h): the same fields in one order. */
void totals_pickle(snap_pk_t *p, totals_t *t);

/* The totals rebuilt from the deposits themselves, met once each in any order (a snapshot section
 * written before the totals were carried in it). Up to TOTALS_REBUILD_TOKENS tokens are gathered, so
 * the TOTALS_TOKENS kept are the first ones credited, as totals_move met them. */
#define TOTALS_REBUILD_TOKENS 64

typedef struct {
    int64_t state_count[DEPOSIT_STATE_COUNT];
    int tokens;
    char token[TOTALS_REBUILD_TOKENS][40];
    uint64_t first_order[TOTALS_REBUILD_TOKENS];   /* the earliest arrival of a credited deposit of the token */
    int64_t slot_day[TOTALS_DAYS];
    money_atto_t credited[TOTALS_REBUILD_TOKENS][TOTALS_DAYS];
} totals_rebuild_t;

/* One deposit in its state now, of token_id and amount; credited_ms is when it was credited (used if
 * state is CREDITED or NOTIFIED), order its arrival (its first LSN). Counts it in its state; adds a
 * credit to its day as totals_move does: whatever the order deposits come in, each day's slot ends
 * holding the newest day credited into it, with the sum of that day's credits. */
void totals_rebuild_add(totals_rebuild_t *rb, deposit_state_t state, const char *token_id, const char *amount,
                        int64_t credited_ms, uint64_t order);

/* The totals rebuilt: every state's count, and the first TOTALS_TOKENS tokens by their first credited
 * deposit's arrival with their days. */
void totals_rebuild_end(const totals_rebuild_t *rb, totals_t *out);

#endif
