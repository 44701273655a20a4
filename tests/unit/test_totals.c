/* test_totals.c — the admin summary's running totals: every deposit counted in its state and each
 * credit added once to its token's UTC day; the summary is the same from the whole journal, after a
 * snapshot that moved the finished deposits out of memory into the index, and from that snapshot
 * plus the journal after it (a restart), never recomputed from what is in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/checkpoint.h"
#include "actors/registry.h"
#include "actors/totals.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "tests/check.h"
#include "web/admin.h"
#include "tests/unit/support_journal.h"
#include "tests/unit/support_snapshot.h"
#include "tests/unit/support_tmp.h"

#define S_DAY_MS 86400000LL

static char s_dir[200];
static config_t s_cfg;
static int64_t s_now_ms;

/* One transition of deposit n, of time at_ms (the first, from NONE, says its token and amount). */
static void s_move(journal_t *j, int n, deposit_state_t from, deposit_state_t to, const char *token,
                   const char *amount, int64_t at_ms)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = at_ms;
    snprintf(r.tx_id, sizeof r.tx_id, "tx-totals-%d", n);
    r.login = 1000 + (uint64_t) (n % 5);
    r.from = from;
    r.to = to;
    if (from == DEPOSIT_NONE) {
        snprintf(r.token_id, sizeof r.token_id, "%s", token);
        snprintf(r.amount, sizeof r.amount, "%s", amount);
        snprintf(r.status, sizeof r.status, "Completed");
    }
    CHECK(support_journal_put(j, &r) != 0);
}

/* Deposit n through its life up to last (RECEIVED, LOCKED, CREDITED, NOTIFIED, or HELD, REJECTED),
 * credited days_ago UTC days before today (a credit attempt half a second before the credit). */
static void s_deposit(journal_t *j, int n, deposit_state_t last, const char *token, const char *amount, int days_ago)
{
    int64_t at = s_now_ms - days_ago * S_DAY_MS;
    s_move(j, n, DEPOSIT_NONE, DEPOSIT_RECEIVED, token, amount, at - 3000);
    if (last == DEPOSIT_RECEIVED)
        return;
    if (last == DEPOSIT_HELD || last == DEPOSIT_REJECTED) {
        s_move(j, n, DEPOSIT_RECEIVED, DEPOSIT_HELD, NULL, NULL, at - 2000);
        if (last == DEPOSIT_REJECTED)
            s_move(j, n, DEPOSIT_HELD, DEPOSIT_REJECTED, NULL, NULL, at - 1000);
        return;
    }
    s_move(j, n, DEPOSIT_RECEIVED, DEPOSIT_LOCKED, NULL, NULL, at - 2000);
    if (last == DEPOSIT_LOCKED)
        return;
    record_t r;   /* the crediter's attempt, just before the credit */
    record_init(&r, RECORD_CREDIT_ATTEMPT);
    r.time_ms = at - 500;
    snprintf(r.tx_id, sizeof r.tx_id, "tx-totals-%d", n);
    r.login = 1000 + (uint64_t) (n % 5);
    r.attempt = 1;
    snprintf(r.ref, sizeof r.ref, "kasa-%d", n);
    CHECK(support_journal_put(j, &r) != 0);
    s_move(j, n, DEPOSIT_LOCKED, DEPOSIT_CREDITED, NULL, NULL, at);
    if (last == DEPOSIT_NOTIFIED)
        s_move(j, n, DEPOSIT_CREDITED, DEPOSIT_NOTIFIED, NULL, NULL, at + 1000);
}

/* The states deposit n ends in: lasts[n % 8] (half of them finished). */
static const deposit_state_t lasts[] = { DEPOSIT_NOTIFIED, DEPOSIT_NOTIFIED, DEPOSIT_CREDITED, DEPOSIT_REJECTED,
                                         DEPOSIT_NOTIFIED, DEPOSIT_HELD, DEPOSIT_RECEIVED, DEPOSIT_LOCKED };

/* A fresh journal directory named name (s_dir, s_cfg), "today" at now_ms; the journal opened there with
 * small segments (NULL if it cannot be). */
static journal_t *s_start(const char *name, int64_t now_ms)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "totals", name);
    memset(&s_cfg, 0, sizeof s_cfg);
    snprintf(s_cfg.journal_dir, sizeof s_cfg.journal_dir, "%s", s_dir);
    s_cfg.max_deposits = 100000;
    s_now_ms = now_ms;
    journal_t *j = support_journal_small(s_dir, 4096);
    CHECK(j != NULL);
    return j;
}

/* The records after a snapshot: deposit 2 (CREDITED) notified, 7 (LOCKED) credited, 8 new deposits
 * n.. of token (their last states lasts[0..7]); closes the journal. The last LSN. */
static uint64_t s_after_snapshot(journal_t **j, int *n, const char *token)
{
    s_move(*j, 2, DEPOSIT_CREDITED, DEPOSIT_NOTIFIED, NULL, NULL, s_now_ms);
    s_move(*j, 7, DEPOSIT_LOCKED, DEPOSIT_CREDITED, NULL, NULL, s_now_ms);
    for (int k = 0; k < 8; k++, (*n)++)
        s_deposit(*j, *n, lasts[k], token, "3.25", k % 2);
    uint64_t end = journal_durable_lsn(*j);
    journal_destroy(j);
    return end;
}

static void s_summary(registry_t *reg, jbuf_t *b)
{
    totals_t t;
    registry_totals(reg, &t);
    jbuf_init(b);
    admin_summary_json(&t, s_now_ms / S_DAY_MS, b);
}

static int s_in_memory_one;
static void s_count(void *arg, const registry_entry_t *e)
{
    (void) arg;
    (void) e;
    s_in_memory_one++;
}

/* How many deposits the registry holds in memory (the serving kasa's registry_each). */
static int s_in_memory(registry_t *reg)
{
    s_in_memory_one = 0;
    registry_each(reg, 0, 0, s_count, NULL);
    return s_in_memory_one;
}

static void test_totals_count_states_and_add_each_credit_once_to_its_day(void)
{
    totals_t t;
    memset(&t, 0, sizeof t);
    int64_t day = 20000, ms = day * S_DAY_MS + 5000;
    totals_move(&t, DEPOSIT_NONE, DEPOSIT_RECEIVED, "TRON_USDT", "10.5", ms);
    totals_move(&t, DEPOSIT_RECEIVED, DEPOSIT_LOCKED, "TRON_USDT", "10.5", ms);
    totals_move(&t, DEPOSIT_LOCKED, DEPOSIT_CREDITED, "TRON_USDT", "10.5", ms);
    totals_move(&t, DEPOSIT_CREDITED, DEPOSIT_NOTIFIED, "TRON_USDT", "10.5", ms + S_DAY_MS);   /* not twice */
    totals_move(&t, DEPOSIT_NOTIFIED, DEPOSIT_NOTIFIED, "TRON_USDT", "10.5", ms);              /* no move */
    totals_move(&t, DEPOSIT_NONE, DEPOSIT_RECEIVED, "ETH_USDT", "0.000000000000000001", ms);
    totals_move(&t, DEPOSIT_RECEIVED, DEPOSIT_CREDITED, "ETH_USDT", "0.000000000000000001", ms - 2 * S_DAY_MS);
    CHECK_EQ_INT(t.state_count[DEPOSIT_NOTIFIED], 1);
    CHECK_EQ_INT(t.state_count[DEPOSIT_CREDITED], 1);
    CHECK_EQ_INT(t.state_count[DEPOSIT_RECEIVED], 0);
    CHECK_EQ_INT(t.state_count[DEPOSIT_LOCKED], 0);
    CHECK_EQ_INT(t.tokens, 2);
    money_atto_t ten5;
    CHECK_EQ_INT(money_parse("10.5", &ten5, NULL, 0), 0);
    CHECK(totals_credited(&t, 0, day, day) == ten5);
    CHECK(totals_credited(&t, 0, day + 1, day + 1) == 0);
    CHECK(totals_credited(&t, 1, day, day) == 0);
    CHECK(totals_credited(&t, 1, day - 6, day) == 1);
    /* a new day takes the slot of the day TOTALS_DAYS before it; a day older than the slots is dropped */
    totals_move(&t, DEPOSIT_LOCKED, DEPOSIT_CREDITED, "TRON_USDT", "1", ms + TOTALS_DAYS * S_DAY_MS);
    CHECK(totals_credited(&t, 0, day, day) == 0);
    totals_move(&t, DEPOSIT_LOCKED, DEPOSIT_CREDITED, "TRON_USDT", "1", ms);
    CHECK(totals_credited(&t, 0, day, day) == 0);
    /* the encoding reads back the same bytes */
    snap_pk_t p;
    snap_pk_save_init(&p);
    totals_pickle(&p, &t);
    totals_t back;
    memset(&back, 0, sizeof back);
    snap_pk_t q;
    snap_pk_load_init(&q, p.buf, p.len);
    totals_pickle(&q, &back);
    CHECK(!q.bad && q.pos == q.len);
    CHECK_EQ_INT(memcmp(&back, &t, sizeof t), 0);
    snap_pk_free(&p);
}

static void test_summary_same_after_a_snapshot_retires_deposits_and_after_a_restart(void)
{
    char err[300];
    journal_t *j = s_start("snap", (int64_t) time(NULL) * 1000);
    if (!j)
        return;
    int n = 0;
    for (; n < 80; n++) {
        char amount[32];
        snprintf(amount, sizeof amount, "%d.%02d", 5 + n, n % 100);
        s_deposit(j, n, lasts[n % 8], n % 3 ? "TRON_USDT" : "ETH_USDT", amount, n % 10);   /* 0..9 days ago */
    }
    uint64_t last = journal_durable_lsn(j);
    checkpoint_info_t info;
    registry_t *whole = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(whole != NULL);
    if (!whole)
        return;
    CHECK_EQ_INT(info.snapshot_lsn, 0);
    jbuf_t a, b;
    s_summary(whole, &a);
    CHECK(strstr(a.data, "\"NOTIFIED\":30,") != NULL && strstr(a.data, "\"REJECTED\":10") != NULL);
    CHECK(strstr(a.data, "{\"token\":\"TRON_USDT\",\"today\":") != NULL);
    CHECK_EQ_INT(s_in_memory(whole), 80);

    /* a snapshot moves the finished deposits (NOTIFIED, REJECTED) to the index: a start from it holds
     * only the others in memory, and its summary is the same */
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, last, NULL, err, sizeof err), 0);
    registry_t *restarted = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(restarted != NULL);
    if (restarted) {
        CHECK_EQ_INT(info.snapshot_lsn, last);
        CHECK_EQ_INT(s_in_memory(restarted), 40);
        s_summary(restarted, &b);
        CHECK_EQ_INT(strcmp(a.data, b.data), 0);
        jbuf_free(&b);
    }
    registry_destroy(&restarted);

    /* more after the snapshot, among them a credit of a deposit the snapshot left unfinished: the
     * snapshot plus the journal after it equals the whole journal */
    uint64_t end = s_after_snapshot(&j, &n, "TRON_USDT");
    record_t *r = malloc(sizeof *r);
    journal_reader_t *rd = journal_reader_open(s_dir, last + 1, err, sizeof err);
    journal_entry_t je;
    while (r && rd && journal_reader_next(rd, &je) == 1)
        if (record_decode(je.payload, je.len, r, err, sizeof err) == 0)
            CHECK_EQ_INT(checkpoint_registry.apply(whole, r, je.lsn, err, sizeof err), 0);
    journal_reader_destroy(&rd);
    free(r);
    jbuf_free(&a);
    s_summary(whole, &a);
    restarted = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(restarted != NULL);
    if (restarted) {
        CHECK_EQ_INT(info.snapshot_lsn, last);
        CHECK_EQ_INT(info.last_lsn, end);
        s_summary(restarted, &b);
        CHECK_EQ_INT(strcmp(a.data, b.data), 0);
        jbuf_free(&b);
        totals_t ta, tb;
        registry_totals(whole, &ta);
        registry_totals(restarted, &tb);
        CHECK_EQ_INT(memcmp(&ta, &tb, sizeof ta), 0);
    }
    jbuf_free(&a);
    registry_destroy(&restarted);
    registry_destroy(&whole);
    support_tmp_rmrf(s_dir);
}

/* What a registry answers of deposits tx-totals-0..n-1, in one encoding: each one's entry (in memory
 * or read back from the index), each login's listing (ids, newest first), the counts. */
static void s_canon_id(void *arg, const registry_entry_t *e)
{
    snap_pk_t *p = arg;
    char id[sizeof e->view.tx_id];
    snprintf(id, sizeof id, "%s", e->view.tx_id);
    SNAP_PK_STR(p, id);
}

static snap_pk_t s_canon(registry_t *reg, int n)
{
    snap_pk_t p;
    snap_pk_save_init(&p);
    registry_entry_t *e = malloc(sizeof *e);
    for (int d = 0; e && d < n; d++) {
        char id[32];
        snprintf(id, sizeof id, "tx-totals-%d", d);
        int known = registry_get(reg, id, e) == 0;
        snap_pk_int(&p, &known);
        if (known)
            registry_entry_pickle(&p, e);
    }
    free(e);
    for (uint64_t login = 1000; login < 1005; login++) {
        snap_pk_u64(&p, &login);
        registry_each(reg, login, 0, s_canon_id, &p);
    }
    uint64_t count = registry_count(reg), open = registry_open_count(reg);
    snap_pk_u64(&p, &count);
    snap_pk_u64(&p, &open);
    return p;
}

/* 1 if reg answers as the whole journal's registry does, its summary and its totals alike. */
static int s_same_as_whole(registry_t *reg, int n)
{
    char err[300];
    registry_t *whole = registry_new(100000);   /* no directory: every deposit in memory, from LSN 1 */
    CHECK(whole != NULL && registry_replay(whole, s_dir, err, sizeof err) > 0);
    snap_pk_t a = s_canon(reg, n), b = s_canon(whole, n);
    int same = a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0;
    jbuf_t sa, sb;
    s_summary(reg, &sa);
    s_summary(whole, &sb);
    if (strcmp(sa.data, sb.data) != 0) {
        fprintf(stderr, "  summary %s\n  whole   %s\n", sa.data, sb.data);
        same = 0;
    }
    totals_t ta, tb;
    registry_totals(reg, &ta);
    registry_totals(whole, &tb);
    same = same && memcmp(&ta, &tb, sizeof ta) == 0;
    jbuf_free(&sa);
    jbuf_free(&sb);
    snap_pk_free(&a);
    snap_pk_free(&b);
    registry_destroy(&whole);
    return same;
}

/* A snapshot whose registry section has layout 2 (written before the running totals were carried in
 * it) is read: the start stands on it and reads only the journal after it, its totals rebuilt from
 * the deposits in memory and in the index, so it answers as the whole journal does (every deposit,
 * each listing, the summary and the totals), and the next snapshot carries the totals. */
static void test_a_snapshot_of_registry_layout_2_starts_from_it_with_the_same_totals(void)
{
    char err[300];
    journal_t *j = s_start("layout2", (int64_t) time(NULL) / 86400 * S_DAY_MS + S_DAY_MS / 2);   /* noon: a
                                                                          * credit's records on one day */
    if (!j)
        return;
    static const char *tokens[] = { "BTC", "ETH_USDT", "TRON_USDT", "TRON" };
    int n = 0;
    s_deposit(j, n++, DEPOSIT_NOTIFIED, "BTC", "0.5", 12);   /* the first token credited, outside the week */
    for (; n < 200; n++) {
        char amount[32];
        snprintf(amount, sizeof amount, "%d.%02d", 5 + n, n % 100);
        s_deposit(j, n, lasts[n % 8], tokens[1 + n % 3], amount, n % 11);   /* 0..10 days ago */
    }
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);

    /* the section as layout 2 wrote it: the same deposits, links and index, no totals */
    registry_t *reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, lsn, NULL, err, sizeof err);
    CHECK(reg != NULL);
    if (!reg)
        return;
    snap_pk_t old;
    snap_pk_save_init(&old);
    CHECK_EQ_INT(registry_save_layout(reg, &old, 2), 0);
    CHECK_EQ_INT(registry_save_layout(reg, &old, 99), -1);   /* a layout it does not know: none */
    registry_destroy(&reg);
    CHECK_EQ_INT(support_snapshot_replace(s_dir, lsn, "registry", old.buf, old.len), 0);
    uint32_t layout = 0;
    if (old.len >= sizeof layout)
        memcpy(&layout, old.buf, sizeof layout);
    CHECK_EQ_INT(layout, 2);
    snap_pk_free(&old);

    /* more after it: credits of deposits it left unfinished, new ones */
    uint64_t end = s_after_snapshot(&j, &n, "TRON");

    checkpoint_info_t info;
    reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL);
    if (!reg)
        return;
    CHECK_EQ_INT(info.snapshot_lsn, lsn);   /* stood on it: nothing replayed from LSN 1 */
    CHECK_EQ_INT(info.fallbacks, 0);
    CHECK_EQ_INT((long long) info.records, (long long) (end - lsn));
    CHECK(s_in_memory(reg) < 110);           /* the finished ones stayed in the index */
    CHECK(s_same_as_whole(reg, n));
    jbuf_t b;
    s_summary(reg, &b);
    CHECK(strstr(b.data, "\"BTC\"") == NULL && strstr(b.data, "{\"token\":\"ETH_USDT\"") != NULL);
    jbuf_free(&b);
    registry_destroy(&reg);

    /* the next snapshot is of the newest layout and carries the rebuilt totals */
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, end, NULL, err, sizeof err), 0);
    reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL);
    CHECK_EQ_INT(info.snapshot_lsn, end);
    CHECK(reg && s_same_as_whole(reg, n));
    registry_destroy(&reg);

    /* alerts bring finished deposits back from the index; the snapshot after them indexes their new
     * copies and drops the old ones, which stay in the older store: a layout-2 section standing on
     * that index still gives the same totals */
    j = support_journal_small(s_dir, 4096);
    CHECK(j != NULL);
    if (!j)
        return;
    for (int d = 0; d < 2; d++) {
        record_t r;
        record_init(&r, RECORD_ALERT);
        r.time_ms = s_now_ms;
        snprintf(r.tx_id, sizeof r.tx_id, "tx-totals-%d", d);
        snprintf(r.alert, sizeof r.alert, "%s", record_alert_name((record_alert_t) 0));
        CHECK(support_journal_put(j, &r) != 0);
    }
    end = journal_durable_lsn(j);
    journal_destroy(&j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, end, NULL, err, sizeof err), 0);
    reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, end, NULL, err, sizeof err);
    CHECK(reg != NULL);
    snap_pk_save_init(&old);
    CHECK(reg && registry_save_layout(reg, &old, 2) == 0);
    registry_destroy(&reg);
    CHECK_EQ_INT(support_snapshot_replace(s_dir, end, "registry", old.buf, old.len), 0);
    snap_pk_free(&old);
    reg = checkpoint_restore(s_dir, &checkpoint_registry, &s_cfg, 0, &info, err, sizeof err);
    CHECK(reg != NULL);
    CHECK_EQ_INT(info.snapshot_lsn, end);
    CHECK_EQ_INT(info.fallbacks, 0);
    CHECK(reg && s_same_as_whole(reg, n));
    registry_destroy(&reg);
    support_tmp_rmrf(s_dir);
}

/* The totals rebuilt from the deposits met in any order (totals_rebuild_add, a layout-2 section's
 * load) equal the running totals of the same credits applied in time order (totals_move, as the
 * journal applies them): counts, tokens in the order first credited, the days kept and their sums. */
static void test_totals_rebuilt_in_any_order_equal_the_running_ones(void)
{
    static const char *tokens[] = { "TRON_USDT", "ETH_USDT", "BTC", "TRON", "ETH" };
    enum { S_N = 400 };
    static struct { deposit_state_t state; int token; char amount[24]; int64_t at_ms; } d[S_N];
    unsigned seed = 7;
    int64_t day0 = 20000;
    for (int i = 0; i < S_N; i++) {   /* in time order: arrival i, credited at a time that only grows */
        seed = seed * 1103515245u + 12345u;
        d[i].state = (deposit_state_t) (1 + (seed >> 8) % (DEPOSIT_STATE_COUNT - 1));
        d[i].token = i < 40 ? 2 + i % 3 : (int) ((seed >> 12) % 5);   /* the first credits: BTC, TRON, ETH */
        snprintf(d[i].amount, sizeof d[i].amount, "%u.%03u", (seed >> 4) % 5000, (seed >> 16) % 1000);
        d[i].at_ms = (day0 + i * 20 / S_N) * S_DAY_MS + (int64_t) (i % 50) * 1000;   /* 20 days */
    }
    totals_t live, rebuilt;
    memset(&live, 0, sizeof live);
    for (int i = 0; i < S_N; i++)
        totals_move(&live, DEPOSIT_NONE, d[i].state, tokens[d[i].token], d[i].amount, d[i].at_ms);
    totals_rebuild_t *rb = calloc(1, sizeof *rb);
    CHECK(rb != NULL);
    if (!rb)
        return;
    for (int k = 0; k < S_N; k++) {   /* a permutation of the arrivals */
        int i = (int) ((k * 7919u) % S_N);
        totals_rebuild_add(rb, d[i].state, tokens[d[i].token], d[i].amount, d[i].at_ms, (uint64_t) i + 1);
    }
    totals_rebuild_end(rb, &rebuilt);
    free(rb);
    CHECK(live.tokens == 5 && strcmp(live.token[0], "BTC") == 0);
    CHECK_EQ_INT(memcmp(&live, &rebuilt, sizeof live), 0);
}

int main(void)
{
    RUN(test_totals_count_states_and_add_each_credit_once_to_its_day);
    RUN(test_totals_rebuilt_in_any_order_equal_the_running_ones);
    RUN(test_summary_same_after_a_snapshot_retires_deposits_and_after_a_restart);
    RUN(test_a_snapshot_of_registry_layout_2_starts_from_it_with_the_same_totals);
    return check_done();
}
