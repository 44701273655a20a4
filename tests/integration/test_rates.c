/* test_rates.c — live rates end to end: kasa with a live ETH rule (live/ETHUSDT) against the
 * price-source simulator (Binance's ticker shape). A deposit with a fresh price is credited at that
 * price, and its LOCKED record (and `kasa deposit show`) carries the rate, its source and its time;
 * with the source stale (429 + Retry-After) or down (503) past the maximum age, deposits are HELD
 * "no fresh rate for ETHUSDT"; a garbage answer frees none of them; once the source answers again
 * each is credited by itself, exactly once, at the new price. */
#include "tests/check.h"
#include "tests/integration/harness.h"
#include "tools/sim/sim_rates.h"

#define ADDR_A "TRatesA0000000000000000000000000001"   /* -> 100001 */
#define ADDR_B "TRatesB0000000000000000000000000002"   /* -> 100002 */
#define ADDR_C "TRatesC0000000000000000000000000003"   /* -> 100003 */

static h_env_t s_env;
static int s_ready;
static sim_rates_t *s_sim;
static char s_sim_url[64];

static h_tx_t s_eth(const char *addr, const char *amount)
{
    h_tx_t tx = h_tx(addr, amount, "ETH");
    snprintf(tx.chain_id, sizeof tx.chain_id, "ETH");
    return tx;
}

/* How many balance deals on login carry tx's reference (as the journal's attempts name it). */
static int s_deals_with_ref(uint64_t login, const char *tx)
{
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx, &info);
    h_deal_t deals[64];
    int n = h_mt5_deals(&s_env, login, deals, 64), match = 0;
    for (int i = 0; i < n; i++)
        match += info.ref[0] && strcmp(deals[i].comment, info.ref) == 0;
    return match;
}

static void test_fresh_rate_credits_at_that_rate_and_is_recorded(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR_A, 100001), 0);
    h_tx_t tx = s_eth(ADDR_A, "0.05");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &tx, 1, 0, 0), 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 15000), DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 15062, NULL), 1);   /* 0.05 × 3012.5 = 150.625 → 150.62 */
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "show", tx.tx_id, "--json", "--config", s_env.config, NULL), 0);
    char want[128];
    snprintf(want, sizeof want, "\"rate_source\":\"ETHUSDT@%s\"", s_sim_url + strlen("http://"));
    CHECK(out && strstr(out, "\"to\":\"LOCKED\"") && strstr(out, "\"rate\":\"3012.5\"") && strstr(out, want) &&
          strstr(out, "\"rate_time_ms\":"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "show", tx.tx_id, "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "rate=3012.5 rate_source=ETHUSDT@") && strstr(out, "rate_time="));
    free(out);
}

static void test_stale_or_down_source_holds_then_credits_once_when_back(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR_B, 100002), 0);
    CHECK_EQ_INT(h_link(&s_env, ADDR_C, 100003), 0);
    /* stale: the source refuses (429, Retry-After) until the price kasa holds is past 5 s */
    CHECK_EQ_INT(h_sim_post(s_sim_url, "/sim/faults", "{\"mode\":\"stale\",\"retry_after\":1}"), 200);
    h_sleep_ms(6500);
    h_tx_t b = s_eth(ADDR_B, "0.05");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &b, 1, 0, 0), 0);
    CHECK_EQ_INT(h_wait_state(&s_env, b.tx_id, DEPOSIT_HELD, 15000), DEPOSIT_HELD);
    h_jinfo_t info;
    h_journal_info(s_env.journal, b.tx_id, &info);
    CHECK(strncmp(info.reason, "no fresh rate for ETHUSDT: last fetched", 39) == 0);
    /* down: 503 */
    CHECK_EQ_INT(h_sim_post(s_sim_url, "/sim/faults", "{\"mode\":\"down\"}"), 200);
    h_sleep_ms(1500);   /* the next fetch meets the 503 */
    h_tx_t c = s_eth(ADDR_C, "0.05");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &c, 1, 0, 0), 0);
    CHECK_EQ_INT(h_wait_state(&s_env, c.tx_id, DEPOSIT_HELD, 15000), DEPOSIT_HELD);
    h_journal_info(s_env.journal, c.tx_id, &info);
    CHECK(strncmp(info.reason, "no fresh rate for ETHUSDT", 25) == 0 && strstr(info.reason, "HTTP 503"));
    /* garbage frees nobody */
    CHECK_EQ_INT(h_sim_post(s_sim_url, "/sim/faults", "{\"mode\":\"garbage\"}"), 200);
    h_sleep_ms(2500);
    CHECK_EQ_INT(h_wait_state(&s_env, b.tx_id, DEPOSIT_HELD, 0), DEPOSIT_HELD);
    CHECK_EQ_INT(h_wait_state(&s_env, c.tx_id, DEPOSIT_HELD, 0), DEPOSIT_HELD);
    CHECK_EQ_INT(h_deals_of(&s_env, 100002, 0, NULL) + h_deals_of(&s_env, 100003, 0, NULL), 0);
    /* the source is back, at a new price: each is credited by itself, once, at that price */
    CHECK_EQ_INT(h_sim_post(s_sim_url, "/sim/price", "{\"symbol\":\"ETHUSDT\",\"price\":\"3100\"}"), 200);
    CHECK_EQ_INT(h_sim_post(s_sim_url, "/sim/faults", "{\"mode\":\"ok\"}"), 200);
    CHECK_EQ_INT(h_wait_state(&s_env, b.tx_id, DEPOSIT_NOTIFIED, 15000), DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(h_wait_state(&s_env, c.tx_id, DEPOSIT_NOTIFIED, 15000), DEPOSIT_NOTIFIED);
    h_sleep_ms(1500);   /* a second credit would show by now */
    const char *txs[2] = { b.tx_id, c.tx_id };
    for (int i = 0; i < 2; i++) {
        h_journal_info(s_env.journal, txs[i], &info);
        CHECK_EQ_INT(info.credited, 1);
        CHECK_EQ_INT(info.seen[DEPOSIT_HELD], 1);
        CHECK_EQ_INT(s_deals_with_ref(100002 + (uint64_t) i, txs[i]), 1);
        CHECK_EQ_INT(h_deals_of(&s_env, 100002 + (uint64_t) i, 15500, NULL), 1);   /* 0.05 × 3100 */
    }
}

int main(void)
{
    char err[160];
    char *argv[] = { "rates", "--listen", "127.0.0.1:0", "--price", "ETHUSDT=3012.5", NULL };
    s_sim = sim_rates_start(5, argv, err, sizeof err);
    CHECK(s_sim != NULL);
    if (s_sim)
        snprintf(s_sim_url, sizeof s_sim_url, "http://127.0.0.1:%d", sim_rates_port(s_sim));
    char extra[512];
    snprintf(extra, sizeof extra,
             "KASA_TOKEN_ETH=live/ETHUSDT:0:0.001\nKASA_RATE_URL=%s\nKASA_RATE_MAX_AGE_S=5\nKASA_RATE_REFRESH_S=1\n",
             s_sim_url);
    s_ready = s_sim && h_env_init(&s_env, "rates") == 0 && h_sims_start(&s_env, NULL) == 0 &&
              h_config_write(&s_env, extra) == 0 && h_kasa_start(&s_env) == 0;
    RUN(test_fresh_rate_credits_at_that_rate_and_is_recorded);
    RUN(test_stale_or_down_source_holds_then_credits_once_when_back);
    int rc = check_done();
    h_env_finish(&s_env, rc != 0);
    sim_rates_stop(&s_sim);
    return rc;
}
