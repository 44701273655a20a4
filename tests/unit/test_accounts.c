/* test_accounts.c — the accounts actors against the MT5 simulator (in-process, loopback): password
 * checks and account reads, a submit that never waits for MT5, the bounded queue refused at once,
 * the wait deadline answered on time (not when the turn comes), close answering everything once,
 * and passwords wiped. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/accounts.h"
#include "actors/stage.h"
#include "tests/check.h"
#include "tests/unit/support_http.h"
#include "tools/sim/sim_mt5.h"

#define MANAGER_PW "Mgr-Secret1"

static sim_mt5_t *s_sim;
static char s_url[64];
static config_t s_cfg;

static void s_faults(const char *json)
{
    free(support_http_request(s_url, NULL, "POST", "/sim/faults", json));
}

/* What one request got: its answer, when, and how many times. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int calls;
    accounts_answer_t answer;
    int64_t at_ms;
} s_wait_t;

static void s_wait_init(s_wait_t *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
}

static void s_done(void *arg, const accounts_answer_t *a)
{
    s_wait_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->answer = *a;
    w->at_ms = stage_mono_ms();
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* Waits up to timeout_ms for w's answer: 0 once it came, -1 otherwise. */
static int s_wait(s_wait_t *w, int timeout_ms)
{
    int64_t until = stage_mono_ms() + timeout_ms;
    pthread_mutex_lock(&w->mu);
    while (w->calls == 0 && stage_mono_ms() < until) {
        pthread_mutex_unlock(&w->mu);
        usleep(2000);
        pthread_mutex_lock(&w->mu);
    }
    int rc = w->calls ? 0 : -1;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Accounts actors with these options (0: the default), waits ready for n answers. NULL on failure. */
static accounts_t *s_accounts(int actors, int queue_max, int64_t wait_ms, s_wait_t *w, int n)
{
    accounts_opts_t o = {.actors = actors, .queue_max = queue_max, .wait_ms = wait_ms};
    for (int i = 0; i < n; i++)
        s_wait_init(&w[i]);
    return accounts_new(&s_cfg, &o, NULL, 0);
}

static accounts_result_t s_submit(accounts_t *a, accounts_ask_t ask, uint64_t login, const char *pw, s_wait_t *w)
{
    accounts_request_t r = {.ask = ask, .login = login, .investor_password = 1};
    if (pw)
        snprintf(r.password, sizeof r.password, "%s", pw);
    return accounts_submit(a, &r, s_done, w);
}

static void test_check_password_main_investor_when_asked_wrong_and_unknown(void)
{
    s_faults("{\"delay_ms\":0}");
    accounts_t *a = accounts_new(&s_cfg, NULL, NULL, 0);
    CHECK(a != NULL);
    if (!a)
        return;
    struct { uint64_t login; const char *pw; accounts_result_t want; } cases[] = {
        { 100001, "Inv-pw1", ACCOUNTS_OK },
        { 100001, "Look-only", ACCOUNTS_OK },       /* the investor password */
        { 100001, "wrong", ACCOUNTS_REFUSED },
        { 999999, "Inv-pw1", ACCOUNTS_REFUSED },    /* no such login: the same answer */
    };
    s_wait_t off;
    s_wait_init(&off);
    accounts_request_t main_only = {.ask = ACCOUNTS_CHECK_PASSWORD, .login = 100001};
    snprintf(main_only.password, sizeof main_only.password, "Look-only");
    CHECK_EQ_INT(accounts_submit(a, &main_only, s_done, &off), ACCOUNTS_OK);
    CHECK_EQ_INT(s_wait(&off, 5000), 0);
    CHECK_EQ_INT(off.answer.result, ACCOUNTS_REFUSED);   /* the investor password only when asked */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_wait_t w;
        s_wait_init(&w);
        CHECK_EQ_INT(s_submit(a, ACCOUNTS_CHECK_PASSWORD, cases[i].login, cases[i].pw, &w), ACCOUNTS_OK);
        CHECK_EQ_INT(s_wait(&w, 5000), 0);
        CHECK_EQ_INT(w.answer.result, cases[i].want);
        CHECK_EQ_INT(w.calls, 1);
    }
    accounts_destroy(&a);
    accounts_destroy(&a);   /* safe twice */
}

static void test_read_formats_money_with_the_groups_digits(void)
{
    accounts_t *a = accounts_new(&s_cfg, NULL, NULL, 0);
    CHECK(a != NULL);
    if (!a)
        return;
    s_wait_t w;
    s_wait_init(&w);
    CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 100001, NULL, &w), ACCOUNTS_OK);
    CHECK_EQ_INT(s_wait(&w, 5000), 0);
    CHECK_EQ_INT(w.answer.result, ACCOUNTS_OK);
    CHECK_EQ_STR(w.answer.balance, "1000.00");
    CHECK_EQ_STR(w.answer.credit, "0.00");
    CHECK_EQ_INT(w.answer.digits, 2);
    s_wait_init(&w);
    CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 100003, NULL, &w), ACCOUNTS_OK);
    CHECK_EQ_INT(s_wait(&w, 5000), 0);
    CHECK_EQ_INT(w.answer.result, ACCOUNTS_OK);
    CHECK_EQ_STR(w.answer.currency, "JPY");
    CHECK_EQ_STR(w.answer.balance, "5");
    CHECK_EQ_INT(w.answer.digits, 0);
    s_wait_init(&w);
    CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 999999, NULL, &w), ACCOUNTS_OK);
    CHECK_EQ_INT(s_wait(&w, 5000), 0);
    CHECK_EQ_INT(w.answer.result, ACCOUNTS_UNAVAILABLE);
    accounts_destroy(&a);
}

static void test_submit_never_waits_and_a_full_queue_is_refused_at_once(void)
{
    s_wait_t w[3];
    accounts_t *a = s_accounts(1, 2, 10000, w, 3);
    CHECK(a != NULL);
    if (!a)
        return;
    s_faults("{\"delay_ms\":300}");
    int64_t t0 = stage_mono_ms();
    CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 100001, NULL, &w[0]), ACCOUNTS_OK);
    CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 100002, NULL, &w[1]), ACCOUNTS_OK);
    CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 100001, NULL, &w[2]), ACCOUNTS_BUSY);
    CHECK(stage_mono_ms() - t0 < 200);          /* MT5 answers in 300 ms: nobody waited for it */
    CHECK_EQ_INT(accounts_pending(a), 2);
    CHECK_EQ_INT(s_wait(&w[0], 10000), 0);
    CHECK_EQ_INT(s_wait(&w[1], 10000), 0);
    CHECK_EQ_INT(w[0].answer.result, ACCOUNTS_OK);
    CHECK_EQ_INT(w[1].answer.result, ACCOUNTS_OK);
    CHECK_EQ_INT(w[2].calls, 0);                /* refused: never called */
    CHECK_EQ_INT(accounts_pending(a), 0);
    s_faults("{\"delay_ms\":0}");
    accounts_destroy(&a);
}

static void test_a_request_not_started_in_time_is_answered_busy_at_its_deadline(void)
{
    s_wait_t w[3];
    accounts_t *a = s_accounts(1, 8, 200, w, 3);
    CHECK(a != NULL);
    if (!a)
        return;
    s_faults("{\"delay_ms\":700}");
    int64_t t0 = stage_mono_ms();
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 100001, NULL, &w[i]), ACCOUNTS_OK);
    CHECK_EQ_INT(s_wait(&w[1], 3000), 0);
    CHECK_EQ_INT(s_wait(&w[2], 3000), 0);
    CHECK_EQ_INT(w[1].answer.result, ACCOUNTS_BUSY);
    CHECK_EQ_INT(w[2].answer.result, ACCOUNTS_BUSY);
    CHECK(w[1].at_ms - t0 < 600);   /* at the 200 ms deadline, not after the first's 700+ ms */
    CHECK(w[2].at_ms - t0 < 600);
    CHECK_EQ_INT(s_wait(&w[0], 10000), 0);
    CHECK_EQ_INT(w[0].answer.result, ACCOUNTS_OK);
    s_faults("{\"delay_ms\":0}");
    accounts_destroy(&a);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(w[i].calls, 1);
}

static void test_close_answers_everything_once_and_refuses_more(void)
{
    s_wait_t w[6];
    accounts_t *a = s_accounts(2, 4, 10000, w, 6);
    CHECK(a != NULL);
    if (!a)
        return;
    s_faults("{\"delay_ms\":400}");
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(s_submit(a, ACCOUNTS_CHECK_PASSWORD, 100001, "Inv-pw1", &w[i]), ACCOUNTS_OK);
    usleep(100000);   /* two are running at MT5 now */
    int64_t t0 = stage_mono_ms();
    accounts_close(a);
    CHECK(stage_mono_ms() - t0 < 200);   /* does not wait for the running calls */
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(w[i].calls, 1);
        CHECK_EQ_INT(w[i].answer.result, ACCOUNTS_STOPPING);
    }
    s_wait_t late;
    s_wait_init(&late);
    CHECK_EQ_INT(s_submit(a, ACCOUNTS_READ, 100001, NULL, &late), ACCOUNTS_STOPPING);
    accounts_destroy(&a);   /* the running calls end; their answers are dropped */
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(w[i].calls, 1);
    CHECK_EQ_INT(late.calls, 0);
    s_faults("{\"delay_ms\":0}");
}

static void test_submit_wipes_the_callers_password(void)
{
    accounts_t *a = accounts_new(&s_cfg, NULL, NULL, 0);
    CHECK(a != NULL);
    if (!a)
        return;
    s_wait_t w;
    s_wait_init(&w);
    accounts_request_t r = {.ask = ACCOUNTS_CHECK_PASSWORD, .login = 100001};
    snprintf(r.password, sizeof r.password, "Inv-pw1");
    CHECK_EQ_INT(accounts_submit(a, &r, s_done, &w), ACCOUNTS_OK);
    static const char zero[sizeof r.password];
    CHECK(memcmp(r.password, zero, sizeof zero) == 0);
    CHECK_EQ_INT(s_wait(&w, 5000), 0);
    CHECK_EQ_INT(w.answer.result, ACCOUNTS_OK);
    accounts_destroy(&a);
}

int main(void)
{
    char err[160];
    char *argv[] = { "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:" MANAGER_PW,
                     "--account", "100001:Inv-pw1:1000.00", "--account", "100002:Inv-pw2:0.10",
                     "--account", "100003:Inv-pw3:5:real\\jpy", "--group", "real\\jpy:JPY:0",
                     "--investor-password", "100001:Look-only", "--seed", "7" };
    s_sim = sim_mt5_start((int) (sizeof argv / sizeof argv[0]), argv, err, sizeof err);
    if (!s_sim) {
        fprintf(stderr, "sim: %s\n", err);
        return 1;
    }
    snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d", sim_mt5_port(s_sim));
    snprintf(s_cfg.mt5_url, sizeof s_cfg.mt5_url, "%s", s_url);
    s_cfg.mt5_login = 1000;
    snprintf(s_cfg.mt5_password, sizeof s_cfg.mt5_password, "%s", MANAGER_PW);
    RUN(test_check_password_main_investor_when_asked_wrong_and_unknown);
    RUN(test_read_formats_money_with_the_groups_digits);
    RUN(test_submit_never_waits_and_a_full_queue_is_refused_at_once);
    RUN(test_a_request_not_started_in_time_is_answered_busy_at_its_deadline);
    RUN(test_close_answers_everything_once_and_refuses_more);
    RUN(test_submit_wipes_the_callers_password);
    sim_mt5_stop(&s_sim);
    return check_done();
}
