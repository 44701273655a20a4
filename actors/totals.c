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

/* The amount a move into a credited state adds, in *a: 0, or -1 when it adds none (no token, an
 * amount that does not parse, no time). */
static int s_credit(const char *token_id, const char *amount, int64_t time_ms, money_atto_t *a)
{
    return !token_id || !token_id[0] || !amount || money_parse(amount, a, NULL, 0) != 0 || time_ms < 0 ? -1 : 0;
}

/* The slot of time_ms's day, once it holds that day (a new day takes the slot of the oldest one, its
 * rows of credited zeroed); -1 if the day is older than the one the slot holds. */
static int s_slot(int64_t slot_day[TOTALS_DAYS], money_atto_t (*credited)[TOTALS_DAYS], int rows, int64_t time_ms)
{
    int64_t day = time_ms / S_DAY_MS;
    int slot = (int) (day % TOTALS_DAYS);
    if (slot_day[slot] > day)
        return -1;   /* older than the days kept */
    if (slot_day[slot] < day) {
        for (int k = 0; k < rows; k++)
            credited[k][slot] = 0;
        slot_day[slot] = day;
    }
    return slot;
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
    if (!s_credited(to) || s_credited(from) || s_credit(token_id, amount, time_ms, &a) != 0)
        return;
    int slot = s_slot(t->slot_day, t->credited, TOTALS_TOKENS, time_ms);
    int k = slot < 0 ? -1 : s_token(t, token_id);
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

void totals_rebuild_add(totals_rebuild_t *rb, deposit_state_t state, const char *token_id, const char *amount,
                        int64_t credited_ms, uint64_t order)
{
    if (state > DEPOSIT_NONE && state < DEPOSIT_STATE_COUNT)
        rb->state_count[state]++;
    money_atto_t a;
    if (!s_credited(state) || s_credit(token_id, amount, credited_ms, &a) != 0)
        return;
    int slot = s_slot(rb->slot_day, rb->credited, TOTALS_REBUILD_TOKENS, credited_ms);   /* a day for every token */
    int k = 0;
    while (k < rb->tokens && strcmp(rb->token[k], token_id) != 0)
        k++;
    if (k == rb->tokens) {   /* new: its first credit names its place, even one older than the days kept */
        if (rb->tokens == TOTALS_REBUILD_TOKENS)
            return;
        snprintf(rb->token[k], sizeof rb->token[0], "%s", token_id);
        rb->first_order[k] = order;
        rb->tokens++;
    }
    if (order < rb->first_order[k])
        rb->first_order[k] = order;
    if (slot >= 0)
        rb->credited[k][slot] += a;
}

void totals_rebuild_end(const totals_rebuild_t *rb, totals_t *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->state_count, rb->state_count, sizeof out->state_count);
    memcpy(out->slot_day, rb->slot_day, sizeof out->slot_day);
    int rank[TOTALS_REBUILD_TOKENS], n = 0;
    for (int k = 0; k < rb->tokens; k++) {   /* by first credited arrival: an insertion sort of at most 64 */
        int at = n++;
        while (at > 0 && rb->first_order[rank[at - 1]] > rb->first_order[k]) {
            rank[at] = rank[at - 1];
            at--;
        }
        rank[at] = k;
    }
    for (int i = 0; i < n && i < TOTALS_TOKENS; i++) {
        memcpy(out->token[i], rb->token[rank[i]], sizeof out->token[i]);
        memcpy(out->credited[i], rb->credited[rank[i]], sizeof out->credited[i]);
        out->tokens++;
    }
}
