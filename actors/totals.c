/* totals.c — running totals of deposits per state and credited amounts per token and day
 * (actors/totals.h). */
#include "actors/totals.h"

#include <stdio.h>
#include <string.h>

#define S_DAY_MS 86400000LL

static int s_credited(deposit_state_t s)
{
    return s == DEPOSIT_CREDITED || s == DEPOSIT_NOTIFIED;
}

/* token_id's index, added if new and there is room; -1 if not. */
static int s_token(totals_t *t, const char *token_id)
{
    for (int k = 0; k < t->tokens; k++)
        if (strcmp(t->token[k], token_id) == 0)
            return k;
    if (t->tokens == TOTALS_TOKENS)
        return -1;
    snprintf(t->token[t->tokens], sizeof t->token[0], "%s", token_id);
    return t->tokens++;
}

void totals_move(totals_t *t, deposit_state_t from, deposit_state_t to, const char *token_id, const char *amount,
                 int64_t time_ms)
{
    if (from == to)
        return;
    if (from > DEPOSIT_NONE && from < DEPOSIT_STATE_COUNT && t->state_count[from] > 0)
        t->state_count[from]--;
    if (to > DEPOSIT_NONE && to < DEPOSIT_STATE_COUNT)
        t->state_count[to]++;
    money_atto_t a;
    if (!s_credited(to) || s_credited(from) || !token_id || !token_id[0] || !amount ||
        money_parse(amount, &a, NULL, 0) != 0 || time_ms < 0)
        return;
    int64_t day = time_ms / S_DAY_MS;
    int slot = (int) (day % TOTALS_DAYS);
    if (t->slot_day[slot] > day)
        return;   /* older than the days kept */
    if (t->slot_day[slot] < day) {   /* a new day takes the slot of the oldest one */
        for (int k = 0; k < TOTALS_TOKENS; k++)
            t->credited[k][slot] = 0;
        t->slot_day[slot] = day;
    }
    int k = s_token(t, token_id);
    if (k >= 0)
        t->credited[k][slot] += a;
}

money_atto_t totals_credited(const totals_t *t, int k, int64_t first_day, int64_t last_day)
{
    money_atto_t sum = 0;
    if (k < 0 || k >= t->tokens)
        return 0;
    for (int s = 0; s < TOTALS_DAYS; s++)
        if (t->slot_day[s] >= first_day && t->slot_day[s] <= last_day)
            sum += t->credited[k][s];
    return sum;
}

void totals_pickle(snap_pk_t *p, totals_t *t)
{
    for (int s = 0; s < DEPOSIT_STATE_COUNT; s++)
        snap_pk_i64(p, &t->state_count[s]);
    snap_pk_int(p, &t->tokens);
    if (t->tokens < 0 || t->tokens > TOTALS_TOKENS) {
        p->bad = 1;
        t->tokens = 0;
    }
    for (int k = 0; k < t->tokens; k++)
        SNAP_PK_STR(p, t->token[k]);
    for (int s = 0; s < TOTALS_DAYS; s++)
        snap_pk_i64(p, &t->slot_day[s]);
    for (int k = 0; k < t->tokens; k++)
        for (int s = 0; s < TOTALS_DAYS; s++) {   /* 128 bits as two halves, low first */
            uint64_t lo = (uint64_t) t->credited[k][s], hi = (uint64_t) (t->credited[k][s] >> 64);
            snap_pk_u64(p, &lo);
            snap_pk_u64(p, &hi);
            t->credited[k][s] = ((money_atto_t) hi << 64) | lo;
        }
}
