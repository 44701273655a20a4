/* test_rates.c — live rates (actors/rates.h) against the price-source simulator (Binance's ticker
 * shape, in-process): Binance's answer is parsed exactly and garbage is refused; a fresh price is
 * quoted at once, exactly, times the rule's factor, with its source and fetch time; a price older
 * than the maximum age is never quoted (source stale, or down) and is quoted again once the source
 * answers; a garbage answer is never quoted; the metrics show each price's age; a slow source never holds up a quote, and stopping
 * does not wait for it. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/rates.h"
#include "schema/log.h"
#include "tests/check.h"
#include "tools/sim/sim_rates.h"

#define ATTO 1000000000000000000ULL

static sim_rates_t *s_sim;
static char s_url[64];

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* POSTs json to the simulator's control path. */
static void s_sim_post(const char *path, const char *json)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", s_url, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, null);
    CHECK_EQ_INT(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    CHECK_EQ_INT(status, 200);
    fclose(null);
    curl_easy_cleanup(c);
}

static void s_config(config_t *cfg, config_token_t **trx, config_token_t **trx_usc)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->rate_url, sizeof cfg->rate_url, "%s", s_url);
    cfg->rate_max_age_s = 2;
    cfg->rate_refresh_s = 1;
    config_token_t *t = &cfg->tokens[cfg->token_count++];
    snprintf(t->token_id, sizeof t->token_id, "TRON");
    snprintf(t->currency, sizeof t->currency, "USD");
    snprintf(t->symbol, sizeof t->symbol, "TRXUSDT");
    t->live = 1, t->factor = 1, t->rate = 1;
    *trx = t;
    t = &cfg->tokens[cfg->token_count++];
    *t = **trx;
    snprintf(t->currency, sizeof t->currency, "USC");
    t->factor = 100;
    *trx_usc = t;
}

/* Waits up to ms for rates_quote to answer want (0 fresh, 1 not); returns the last answer. */
static int s_wait_quote(rates_t *r, const config_token_t *rule, int want, int ms, rates_quote_t *q, char *why,
                        size_t whylen)
{
    int64_t end = s_mono_ms() + ms;
    int rc;
    while ((rc = rates_quote(r, rule, q, why, whylen)) != want && s_mono_ms() < end)
        s_sleep_ms(50);
    return rc;
}

static void test_binance_answers_parse_exactly_and_garbage_is_refused(void)
{
    money_atto_t p = 0;
    char why[128];
    const char *ok = "{\"symbol\":\"TRXUSDT\",\"price\":\"0.10230000\"}";
    CHECK_EQ_INT(rates_parse(ok, strlen(ok), "TRXUSDT", &p, why, sizeof why), 0);
    CHECK(p == (money_atto_t) 102300000000000000ULL);
    const char *eth = "{\"symbol\":\"ETHUSDT\",\"price\":\"3012.12345678\"}";
    CHECK_EQ_INT(rates_parse(eth, strlen(eth), "ETHUSDT", &p, why, sizeof why), 0);
    CHECK(p == (money_atto_t) 3012 * ATTO + (money_atto_t) 123456780000000000ULL);
    static const char *const bad[] = {
        "not json",
        "{\"symbol\":\"ETHUSDT\",\"price\":\"0.1\"}",       /* another symbol */
        "{\"symbol\":\"TRXUSDT\",\"price\":0.1023}",        /* a number, not the decimal string */
        "{\"symbol\":\"TRXUSDT\",\"price\":\"1e-1\"}",
        "{\"symbol\":\"TRXUSDT\",\"price\":\"-0.1\"}",
        "{\"symbol\":\"TRXUSDT\",\"price\":\"0.00000000\"}",
        "{\"symbol\":\"TRXUSDT\",\"price\":\"\"}",
        "{\"symbol\":\"TRXUSDT\"}",
        "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}",
        "[{\"symbol\":\"TRXUSDT\",\"price\":\"0.1\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        CHECK_EQ_INT(rates_parse(bad[i], strlen(bad[i]), "TRXUSDT", &p, why, sizeof why), -1);
        CHECK(why[0] != '\0');
    }
}

static void test_fresh_price_is_quoted_exactly_with_source_and_time(void)
{
    s_sim_post("/sim/faults", "{\"mode\":\"ok\"}");
    s_sim_post("/sim/price", "{\"symbol\":\"TRXUSDT\",\"price\":\"0.1023\"}");
    config_t cfg;
    config_token_t *trx, *usc;
    s_config(&cfg, &trx, &usc);
    char err[160], why[200];
    int64_t before_ms = (int64_t) time(NULL) * 1000 - 1000;
    rates_t *r = rates_new(&cfg, err, sizeof err);
    CHECK(r != NULL);
    if (!r)
        return;
    rates_quote_t q;
    CHECK_EQ_INT(s_wait_quote(r, trx, 0, 5000, &q, why, sizeof why), 0);
    CHECK(q.rate == (money_atto_t) 102300000000000000ULL);
    CHECK(q.fetched_ms >= before_ms && q.fetched_ms <= (int64_t) time(NULL) * 1000 + 1000);
    char want[96];
    snprintf(want, sizeof want, "TRXUSDT@%s", s_url + strlen("http://"));
    CHECK_EQ_STR(q.source, want);
    CHECK_EQ_INT(rates_quote(r, usc, &q, why, sizeof why), 0);
    CHECK(q.rate == (money_atto_t) 10230000000000000000ULL);   /* 10.23 cents */
    CHECK(strncmp(q.source, "TRXUSDT*100@", 12) == 0);
    CHECK(rates_fresh(r, "TRXUSDT"));
    CHECK(rates_generation(r) >= 1);
    jbuf_t m;
    jbuf_init(&m);
    rates_metrics(r, &m);
    CHECK(strstr(m.data, "# TYPE kasa_rate_age_seconds gauge\nkasa_rate_age_seconds{symbol=\"TRXUSDT\"} 0.") != NULL);
    CHECK(strstr(m.data, "kasa_rate_fetches_total{result=\"ok\"} ") && !strstr(m.data, "{result=\"ok\"} 0\n"));
    jbuf_free(&m);
    rates_destroy(&r);
    CHECK(r == NULL);
}

/* The source stops answering (429 with Retry-After, then 503): the price ages past the maximum and
 * is not quoted, with its age; when the source answers again it is quoted, at the new price. */
static void test_stale_or_down_source_is_never_quoted_until_it_returns(void)
{
    s_sim_post("/sim/faults", "{\"mode\":\"ok\"}");
    s_sim_post("/sim/price", "{\"symbol\":\"TRXUSDT\",\"price\":\"0.1023\"}");
    config_t cfg;
    config_token_t *trx, *usc;
    s_config(&cfg, &trx, &usc);
    char err[160], why[200] = "";
    rates_t *r = rates_new(&cfg, err, sizeof err);
    CHECK(r != NULL);
    if (!r)
        return;
    rates_quote_t q;
    CHECK_EQ_INT(s_wait_quote(r, trx, 0, 5000, &q, why, sizeof why), 0);
    s_sim_post("/sim/faults", "{\"mode\":\"stale\",\"retry_after\":1}");
    CHECK_EQ_INT(s_wait_quote(r, trx, 1, 5000, &q, why, sizeof why), 1);
    CHECK(strstr(why, "last fetched") && strstr(why, "(max 2 s)"));
    CHECK(q.rate == 0);
    CHECK(!rates_fresh(r, "TRXUSDT"));
    s_sim_post("/sim/faults", "{\"mode\":\"down\"}");
    s_sleep_ms(1500);
    CHECK_EQ_INT(rates_quote(r, trx, &q, why, sizeof why), 1);
    CHECK(strstr(why, "HTTP 503") != NULL);
    uint64_t gen = rates_generation(r);
    s_sim_post("/sim/price", "{\"symbol\":\"TRXUSDT\",\"price\":\"0.2\"}");
    s_sim_post("/sim/faults", "{\"mode\":\"ok\"}");
    CHECK_EQ_INT(s_wait_quote(r, trx, 0, 5000, &q, why, sizeof why), 0);
    CHECK(q.rate == (money_atto_t) 200000000000000000ULL);
    CHECK(rates_generation(r) > gen);
    rates_destroy(&r);
}

static void test_garbage_is_never_quoted(void)
{
    s_sim_post("/sim/faults", "{\"mode\":\"garbage\"}");
    config_t cfg;
    config_token_t *trx, *usc;
    s_config(&cfg, &trx, &usc);
    char err[160], why[200] = "";
    rates_t *r = rates_new(&cfg, err, sizeof err);
    CHECK(r != NULL);
    if (!r)
        return;
    s_sleep_ms(1500);
    rates_quote_t q;
    CHECK_EQ_INT(rates_quote(r, trx, &q, why, sizeof why), 1);
    CHECK(strstr(why, "never fetched: price unreadable") != NULL);
    s_sim_post("/sim/faults", "{\"mode\":\"garbage\",\"body\":\"{\\\"symbol\\\":\\\"ETHUSDT\\\",\\\"price\\\":\\\"1\\\"}\"}");
    s_sleep_ms(1200);
    CHECK_EQ_INT(rates_quote(r, trx, &q, why, sizeof why), 1);
    CHECK(strstr(why, "not for TRXUSDT") != NULL);
    CHECK_EQ_INT(rates_generation(r), 0);
    rates_destroy(&r);
    s_sim_post("/sim/faults", "{\"mode\":\"ok\"}");
}

static void test_a_slow_source_holds_up_neither_quote_nor_stop(void)
{
    s_sim_post("/sim/faults", "{\"mode\":\"slow\",\"slow_ms\":8000}");
    config_t cfg;
    config_token_t *trx, *usc;
    s_config(&cfg, &trx, &usc);
    char err[160], why[200] = "";
    rates_t *r = rates_new(&cfg, err, sizeof err);
    CHECK(r != NULL);
    if (!r)
        return;
    s_sleep_ms(300);   /* the first fetch is in flight */
    rates_quote_t q;
    int64_t t0 = s_mono_ms();
    CHECK_EQ_INT(rates_quote(r, trx, &q, why, sizeof why), 1);
    CHECK(s_mono_ms() - t0 < 100);
    t0 = s_mono_ms();
    rates_destroy(&r);
    CHECK(s_mono_ms() - t0 < 2000);
    s_sim_post("/sim/faults", "{\"mode\":\"ok\"}");
}

int main(void)
{
    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char err[160];
    char *argv[] = { "rates", "--listen", "127.0.0.1:0", "--price", "TRXUSDT=0.1023", NULL };
    s_sim = sim_rates_start(5, argv, err, sizeof err);
    CHECK(s_sim != NULL);
    if (!s_sim)
        return check_done();
    snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d", sim_rates_port(s_sim));
    RUN(test_binance_answers_parse_exactly_and_garbage_is_refused);
    RUN(test_a_slow_source_holds_up_neither_quote_nor_stop);   /* first: its 8 s answer ends meanwhile */
    RUN(test_fresh_price_is_quoted_exactly_with_source_and_time);
    RUN(test_stale_or_down_source_is_never_quoted_until_it_returns);
    RUN(test_garbage_is_never_quoted);
    sim_rates_stop(&s_sim);
    curl_global_cleanup();
    return check_done();
}
