/* test_catchup.c — missed-webhook catch-up against the Cobo simulator: the simulator lists
 * transactions as Cobo's GET /v2/transactions does (filters, cursor pages, ASC/DESC, before/after);
 * deposits whose webhooks are all lost are credited exactly once within one catch-up interval;
 * catch-up racing live (duplicated, reordered) webhooks credits each deposit once; `kasa catchup`
 * waits out Cobo's rate limit (429 + Retry-After) and says so; without a server it refuses clearly.
 *
 * kasa runs with KASA_CATCHUP_INTERVAL=2 (seconds). Rules: TRON_USDT rate 1, fee 0.5. */
#include "actors/cobo.h"
#include "tests/check.h"
#include "tests/integration/harness.h"

#define INTERVAL_S 2
#define ADDR_LOST1 "TCatchLost0000000000000000000001"   /* -> 100001 */
#define ADDR_LOST2 "TCatchLost0000000000000000000002"   /* -> 100002 */
#define ADDR_LOST3 "TCatchLost0000000000000000000003"   /* -> 100003 */
#define ADDR_RACE  "TCatchRace0000000000000000000004"   /* -> 100004 */
#define ADDR_LIMIT "TCatchLimit000000000000000000005"   /* -> 100005 */
#define ADDR_SWEEP "TCatchSweep000000000000000000006"   /* -> 100006, swept */
#define ADDR_SWEPT_TO "TCatchSweep000000000000000000007" /* -> 100007, a sweep's target */

static h_env_t s_env;
static int s_ready;

static h_tx_t s_tx(const char *address, const char *amount)
{
    return h_tx(address, amount, "TRON_USDT");
}

static int s_deals(uint64_t login, int64_t minor, int *total)
{
    return h_deals_of(&s_env, login, minor, total);
}

/* 1 if the simulator shows at least one event for tx and none of them was ever delivered. */
static int s_no_webhook_delivered(const char *tx)
{
    char url[160];
    snprintf(url, sizeof url, "%s/sim/deposits", s_env.cobo_url);
    bson_t doc;
    if (h_get_json(url, &doc) != 0)
        return 0;
    int found = 0, delivered = 0;
    for (int i = 0;; i++) {
        char p[64];
        snprintf(p, sizeof p, "a.%d.transaction_id", i);
        const char *id = json_get_str(&doc, p);
        if (!id)
            break;
        if (strcmp(id, tx) != 0)
            continue;
        for (int e = 0;; e++) {
            int64_t d;
            snprintf(p, sizeof p, "a.%d.events.%d.delivered", i, e);
            if (json_get_i64(&doc, p, &d) != 0)
                break;
            found++;
            delivered += d > 0;
        }
    }
    bson_destroy(&doc);
    return found > 0 && delivered == 0;
}

static int64_t s_sim_rate_limited(void)
{
    char url[160];
    snprintf(url, sizeof url, "%s/sim/faults", s_env.cobo_url);
    h_resp_t r = h_http("POST", url, "{}");
    bson_t doc;
    char err[64];
    int64_t v = -1;
    if (r.status == 200 && json_parse(r.body, r.len, &doc, err, sizeof err) == 0) {
        json_get_i64(&doc, "rate_limited", &v);
        bson_destroy(&doc);
    }
    h_resp_free(&r);
    return v;
}

/* ---- the listing itself, read with kasa's Cobo client ------------------------------------------ */

typedef struct {
    char ids[64][80];
    int n, unreadable;
} s_seen_t;

static void s_collect(void *arg, const cobo_tx_t *tx, const char *why)
{
    (void) why;
    s_seen_t *s = arg;
    if (!tx) {
        s->unreadable++;
        return;
    }
    if (s->n < 64)
        snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", tx->tx_id);
}

static cobo_client_t *s_client(void)
{
    char base[96], err[256];
    snprintf(base, sizeof base, "%s/v2", s_env.cobo_url);
    cobo_client_t *c = cobo_client_new(base, s_env.client_pub, H_CLIENT_SEED, s_env.webhook_pub, 5000, err, sizeof err);
    if (!c)
        h_log("cobo client: %s", err);
    return c;
}

static void test_simulator_lists_deposits_by_cursor_pages(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    /* five deposits of our wallet, Completed at once (no link: they only need to exist) */
    int64_t t0 = h_wall_ms();
    char made[5][40];
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":true}"), 200);
    for (int i = 0; i < 5; i++) {
        h_tx_t tx = s_tx("TCatchListNobody00000000000000001", "3");
        CHECK_EQ_INT(h_sim_deposit(&s_env, &tx, 1, 0, 0), 0);
        snprintf(made[i], sizeof made[i], "%s", tx.tx_id);
        h_sleep_ms(2);   /* distinct creation times */
    }
    cobo_client_t *c = s_client();
    CHECK(c != NULL);
    if (!c)
        return;
    /* pages of 2 from t0: 2 + 2 + 1, in creation order, the cursor empty on the last */
    s_seen_t seen = { 0 };
    char after[256] = "", next[256], err[256];
    int pages = 0;
    do {
        cobo_tx_query_t q = { .types = "Deposit", .wallet_ids = H_WALLET_ID, .min_created_ms = t0, .limit = 2,
                              .after = after };
        int before = seen.n;
        CHECK_EQ_INT(cobo_list_transactions_page(c, &q, s_collect, &seen, next, sizeof next, err, sizeof err), COBO_OK);
        CHECK(seen.n - before <= 2);
        memcpy(after, next, sizeof after);
    } while (after[0] && ++pages < 10);
    CHECK_EQ_INT(pages, 2);
    CHECK_EQ_INT(seen.n, 5);
    CHECK_EQ_INT(seen.unreadable, 0);
    for (int i = 0; i < 5 && i < seen.n; i++)
        CHECK_EQ_STR(seen.ids[i], made[i]);
    /* filters: another wallet, a window in the future, a status the deposits do not have */
    s_seen_t none = { 0 };
    cobo_tx_query_t q1 = { .types = "Deposit", .wallet_ids = "00000000-0000-4000-8000-00000000ffff",
                           .min_created_ms = t0, .limit = 50 };
    CHECK_EQ_INT(cobo_list_transactions_page(c, &q1, s_collect, &none, next, sizeof next, err, sizeof err), COBO_OK);
    cobo_tx_query_t q2 = { .types = "Deposit", .min_created_ms = h_wall_ms() + 3600000, .limit = 50 };
    CHECK_EQ_INT(cobo_list_transactions_page(c, &q2, s_collect, &none, next, sizeof next, err, sizeof err), COBO_OK);
    cobo_tx_query_t q3 = { .types = "Withdrawal", .min_created_ms = t0, .limit = 50 };
    CHECK_EQ_INT(cobo_list_transactions_page(c, &q3, s_collect, &none, next, sizeof next, err, sizeof err), COBO_OK);
    cobo_tx_query_t q4 = { .types = "Deposit", .statuses = "Rejected", .min_created_ms = t0, .limit = 50 };
    CHECK_EQ_INT(cobo_list_transactions_page(c, &q4, s_collect, &none, next, sizeof next, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(none.n, 0);
    /* only the ids asked for */
    char ids[100];
    snprintf(ids, sizeof ids, "%s,%s", made[3], made[1]);
    s_seen_t two = { 0 };
    cobo_tx_query_t q5 = { .transaction_ids = ids, .min_created_ms = t0, .limit = 50 };
    CHECK_EQ_INT(cobo_list_transactions_page(c, &q5, s_collect, &two, next, sizeof next, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(two.n, 2);
    CHECK_EQ_STR(two.ids[0], made[1]);
    CHECK_EQ_STR(next, "");
    /* a bad limit is refused before anything is sent; a forged cursor by Cobo (400) */
    cobo_tx_query_t q6 = { .types = "Deposit", .limit = 51 };
    CHECK_EQ_INT(cobo_list_transactions_page(c, &q6, s_collect, &none, next, sizeof next, err, sizeof err), COBO_ERR_ARG);
    cobo_tx_query_t q7 = { .types = "Deposit", .limit = 5, .after = "cno-such-transaction" };
    CHECK_EQ_INT(cobo_list_transactions_page(c, &q7, s_collect, &none, next, sizeof next, err, sizeof err),
                 COBO_ERR_HTTP_4XX);
    CHECK_EQ_INT(cobo_client_http_status(c), 400);
    cobo_client_destroy(&c);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":false}"), 200);
}

/* ---- catch-up in the server ------------------------------------------------------------------- */

static void test_lost_webhooks_are_credited_within_one_interval(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR_LOST1, 100001), 0);
    CHECK_EQ_INT(h_link(&s_env, ADDR_LOST2, 100002), 0);
    CHECK_EQ_INT(h_link(&s_env, ADDR_LOST3, 100003), 0);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":true}"), 200);
    h_tx_t tx[3] = { s_tx(ADDR_LOST1, "10"), s_tx(ADDR_LOST2, "20"), s_tx(ADDR_LOST3, "30") };
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(h_sim_deposit(&s_env, &tx[i], 3, 0, 0), 0);
    /* one interval, plus the pass itself and the credit under ASan on a shared machine */
    int64_t worst = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(h_wait_state(&s_env, tx[i].tx_id, DEPOSIT_CREDITED, INTERVAL_S * 1000 + 8000), DEPOSIT_CREDITED);
        int64_t took = h_now_ms() - t0;
        worst = took > worst ? took : worst;
    }
    h_log("3 deposits with every webhook lost credited %lld ms after they were made (interval %d s)",
          (long long) worst, INTERVAL_S);
    for (int i = 0; i < 3; i++) {
        int total = 0;
        CHECK_EQ_INT(s_deals((uint64_t) (100001 + i), (int64_t) (i + 1) * 1000 - 50, &total), 1);
        CHECK_EQ_INT(total, 1);
        CHECK(s_no_webhook_delivered(tx[i].tx_id));
        h_jinfo_t info;
        CHECK_EQ_INT(h_journal_info(s_env.journal, tx[i].tx_id, &info), 0);
        CHECK_EQ_INT(info.credited, 1);
    }
    char *log = h_read_file(s_env.kasa_log, NULL);
    CHECK(log && strstr(log, "event=catchup.found") && strstr(log, tx[0].tx_id));
    free(log);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":false}"), 200);
}

typedef struct {
    h_env_t *env;
    int rc[3];
} s_race_t;

static void *s_catchup_thread(void *arg)
{
    s_race_t *r = arg;
    for (int i = 0; i < 3; i++) {
        r->rc[i] = h_kasa_cmd(r->env, NULL, "catchup", "--since", "-10m", "--config", r->env->config, NULL);
        h_sleep_ms(50);
    }
    return NULL;
}

static void test_catchup_racing_webhooks_credits_once(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR_RACE, 100004), 0);
    s_race_t race = { .env = &s_env };
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, s_catchup_thread, &race), 0);
    h_tx_t tx[4];
    for (int i = 0; i < 4; i++) {
        char amount[16];
        snprintf(amount, sizeof amount, "%d", 5 + i);
        tx[i] = s_tx(ADDR_RACE, amount);
        CHECK_EQ_INT(h_sim_deposit(&s_env, &tx[i], 2, 2, 1), 0);   /* 2 extra copies, shuffled */
        h_sleep_ms(30);
    }
    pthread_join(th, NULL);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(race.rc[i], 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(h_wait_state(&s_env, tx[i].tx_id, DEPOSIT_CREDITED, 15000), DEPOSIT_CREDITED);
    h_sleep_ms(INTERVAL_S * 1000 + 500);   /* one more scheduled pass over them */
    int total = 0;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(s_deals(100004, (int64_t) (5 + i) * 100 - 50, NULL), 1);
        h_jinfo_t info;
        CHECK_EQ_INT(h_journal_info(s_env.journal, tx[i].tx_id, &info), 0);
        CHECK_EQ_INT(info.credited, 1);
        CHECK_EQ_INT(info.attempts, 1);
    }
    s_deals(100004, 0, &total);
    CHECK_EQ_INT(total, 4);
}

/* Cobo's sweep of a linked deposit address into another linked address: its Deposit leg is listed
 * by Cobo like any deposit, but neither the catch-up (webhooks lost) nor a delivered webhook makes a
 * deposit of it: nothing journaled, nobody credited. */
static void test_sweep_legs_are_never_deposits_for_catchup_or_webhooks(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR_SWEEP, 100006), 0);
    CHECK_EQ_INT(h_link(&s_env, ADDR_SWEPT_TO, 100007), 0);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":true}"), 200);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/sweep", "{\"address\":\"" ADDR_SWEEP "\",\"amount\":\"40\","
                                                         "\"to\":\"" ADDR_SWEPT_TO "\"}"), 201);
    h_sleep_ms(INTERVAL_S * 1000 * 2 + 1000);   /* two catch-up passes */
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":false}"), 200);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/sweep", "{\"address\":\"" ADDR_SWEEP "\",\"amount\":\"41\","
                                                         "\"to\":\"" ADDR_SWEPT_TO "\"}"), 201);
    h_sleep_ms(INTERVAL_S * 1000 + 1000);
    int total = -1;
    s_deals(100007, 0, &total);
    CHECK(total <= 0);   /* no balance deal at all on the sweep's target */
    total = -1;
    s_deals(100006, 0, &total);
    CHECK(total <= 0);
    char *log = h_read_file(s_env.kasa_log, NULL);
    CHECK(log && strstr(log, "kind=sweep") != NULL);
    int found_leg = 0;   /* a "catchup.found" line naming the sweep's target would be a deposit made of it */
    for (char *line = log; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        found_leg |= strstr(line, "event=catchup.found") && strstr(line, ADDR_SWEPT_TO);
        line = nl ? nl + 1 : NULL;
    }
    CHECK(!found_leg);
    free(log);
}

static void test_catchup_command_waits_out_rate_limits(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR_LIMIT, 100005), 0);
    int64_t before = s_sim_rate_limited();
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":true,\"rate_limit_next\":2}"), 200);
    h_tx_t tx = s_tx(ADDR_LIMIT, "40");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &tx, 1, 0, 0), 0);
    char *out = NULL;
    int rc = h_kasa_cmd(&s_env, &out, "catchup", "--since", "-1h", "--config", s_env.config, NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(out && strstr(out, "complete=yes"));
    if (rc != 0)
        h_log("kasa catchup: %s", out ? out : "");
    free(out);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_CREDITED, 15000), DEPOSIT_CREDITED);
    CHECK_EQ_INT(s_deals(100005, 3950, NULL), 1);
    /* both 429s were answered (to the command or to a scheduled pass) and waited out */
    CHECK_EQ_INT(s_sim_rate_limited() - before, 2);
    char *log = h_read_file(s_env.kasa_log, NULL);
    CHECK(log && strstr(log, "event=catchup.rate_limited"));
    free(log);
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":false}"), 200);
}

static void test_catchup_command_refuses_bad_dates(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    static const char *const bad[] = { "yesterday", "2026-02-31", "-5y", "2026-13-01", "@", "9999-01-01" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "catchup", "--since", bad[i], "--config", s_env.config, NULL), 2);
        free(out);
    }
}

static void test_catchup_without_a_server_says_so(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "catchup", "--since", "-1h", "--config", s_env.config, NULL), 1);
    CHECK(out && strstr(out, "no kasa server answers"));
    free(out);
}

int main(void)
{
    s_ready = h_env_init(&s_env, "catchup") == 0 && h_sims_start(&s_env, NULL) == 0 &&
              h_config_write(&s_env, "KASA_CATCHUP_INTERVAL=2\nKASA_CATCHUP_LOOKBACK=600\n") == 0 &&
              h_kasa_start(&s_env) == 0;
    RUN(test_simulator_lists_deposits_by_cursor_pages);
    RUN(test_lost_webhooks_are_credited_within_one_interval);
    RUN(test_catchup_racing_webhooks_credits_once);
    RUN(test_sweep_legs_are_never_deposits_for_catchup_or_webhooks);
    RUN(test_catchup_command_waits_out_rate_limits);
    RUN(test_catchup_command_refuses_bad_dates);
    RUN(test_catchup_without_a_server_says_so);
    int rc = check_done();
    h_env_finish(&s_env, rc != 0);
    return rc;
}
