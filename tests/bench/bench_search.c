/* bench_search.c — one credit check search (actors/credit_check.h) on an account that trades heavily:
 * 100,000 trading deals spread over the two days before a credit attempt (one every ~1.7 s), on
 * the MT5 simulator (in-process, loopback, trade-server time UTC+2). kasa searches before every
 * send, so this is paid on every credit of such an account.
 *   bounded  the window kasa uses once the clock offset is measured: the deposit's first moment to
 *            now on MT5's clock, ± 1 h 5 min
 *   ±2 days  the window before any offset is known (MT5's advice): over the 100,000-deal cap, so
 *            "cannot tell" (kasa then retries; it never sends on it)
 * Prints the median of BENCH_SEARCH_REPEAT (default 5) searches, the deals in each window and the
 * answer. BENCH_SEARCH_DEALS changes the number of trading deals. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/crediter.h"
#include "actors/credit_check.h"
#include "schema/log.h"
#include "tests/unit/support_http.h"
#include "tools/sim/sim_mt5.h"

#define LOGIN 100001
#define SERVER_OFFSET_S 7200

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* Trading deals whose server time falls in [from_s, to_s]: deal i is at t0 + span * i / (n - 1). */
static long s_in_window(long n, int64_t t0, int64_t span, int64_t from_s, int64_t to_s)
{
    long c = 0;
    for (long i = 0; i < n; i++) {
        int64_t t = t0 + (n > 1 ? span * i / (n - 1) : 0) + SERVER_OFFSET_S;
        c += t >= from_s && t <= to_s;
    }
    return c;
}

/* Runs credit_check_run repeat times; prints one table row. */
static void s_row(const char *name, mt5_client_t *m, const registry_entry_t *e, const char *ref, int repeat, long n,
                  int64_t t0, int64_t span)
{
    double *t = calloc((size_t) repeat, sizeof *t);
    credit_check_t rc;
    memset(&rc, 0, sizeof rc);
    for (int i = 0; i < repeat; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double a = s_now();
        credit_check_run(m, e, ref, (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &rc);
        t[i] = s_now() - a;
    }
    qsort(t, (size_t) repeat, sizeof *t, s_cmp);
    printf("| %-8s | %7ld | %9.1f ms | %-11s |\n", name, s_in_window(n, t0, span, rc.from_s, rc.to_s),
           t[repeat / 2] * 1000, credit_check_answer_name(rc.answer));
    free(t);
}

int main(void)
{
    long n = getenv("BENCH_SEARCH_DEALS") ? atol(getenv("BENCH_SEARCH_DEALS")) : 100000;
    int repeat = getenv("BENCH_SEARCH_REPEAT") ? atoi(getenv("BENCH_SEARCH_REPEAT")) : 5;
    if (n < 1 || repeat < 1)
        return 1;
    log_set_level(LOG_WARN);
    char err[200], offset[32];
    snprintf(offset, sizeof offset, "%d", SERVER_OFFSET_S);
    char *argv[] = { "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:Bench-pw1", "--account", "100001:Inv-pw1:0",
                     "--server-time-offset-s", offset };
    sim_mt5_t *sim = sim_mt5_start((int) (sizeof argv / sizeof argv[0]), argv, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "bench_search: %s\n", err);
        return 1;
    }
    char url[64], body[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sim_mt5_port(sim));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int64_t now_s = (int64_t) time(NULL), span = 2 * 24 * 3600;
    int64_t attempt_s = now_s - 60, t0 = attempt_s - span + 600;
    snprintf(body, sizeof body, "{\"login\":%d,\"count\":%ld,\"from\":%" PRId64 ",\"to\":%" PRId64 "}", LOGIN, n, t0,
             t0 + span);
    free(support_http_request(url, NULL, "POST", "/sim/trading_deals", body));

    const char *tx = "c15c0289-ec2d-4a91-a7ec-8e65a18debbe";
    char ref[32];
    crediter_ref(tx, ref);
    registry_entry_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.view.tx_id, sizeof e.view.tx_id, "%s", tx);
    e.view.state = DEPOSIT_LOCKED;
    e.view.login = LOGIN;
    e.view.credit_minor = 24950;
    e.view.digits = 2;
    e.view.created_ms = (attempt_s - 5) * 1000;
    e.attempts = 1;
    e.first_attempt_ms = e.last_attempt_ms = attempt_s * 1000;
    e.attempt_login = LOGIN;
    e.tried_count = 1;
    e.tried[0] = (registry_tried_t) { LOGIN, 24950, 2, attempt_s * 1000, attempt_s * 1000 };
    snprintf(e.ref, sizeof e.ref, "%s", ref);

    mt5_client_t *m = mt5_client_new(url, 1000, "Bench-pw1", NULL, 30000);
    printf("one credit check search, %ld trading deals over the 2 days before the attempt (%d searches, median)\n\n", n,
           repeat);
    printf("| window   | deals   | search       | answer      |\n| --- | --- | --- | --- |\n");
    s_row("±2 days", m, &e, ref, repeat, n, t0, span);   /* no offset measured yet */
    uint64_t ticket = 0;
    mt5_balance(m, LOGIN, 1, 2, "kasa bench clock", &ticket, err, sizeof err);   /* measures the offset */
    s_row("bounded", m, &e, ref, repeat, n, t0, span);
    mt5_client_destroy(&m);
    sim_mt5_stop(&sim);
    curl_global_cleanup();
    return 0;
}
