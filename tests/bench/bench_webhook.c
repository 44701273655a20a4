/* bench_webhook.c — signed deposit webhooks per second through the real path: HTTP (libmicrohttpd)
 * → signature check → parse → pipeline_ingest → journal (group commit + fdatasync) → 201.
 * Each request is a new deposit (Confirming, so no stage calls out), signed like Cobo signs it,
 * sent by C client threads over keep-alive connections. One row per HTTP worker-thread count.
 * First, the webhook's own steps on one thread, in CPU time (steady on a shared machine): the
 * signature check, the body read through libbson (cobo_event_parse) and directly (the route's
 * webhook_event_parse), and the whole check (webhook_check), on a full Cobo deposit body.
 *   usage: bench_webhook [SECONDS_PER_ROW=3] [CLIENTS=32] */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/cobo_auth.h"
#include "actors/pipeline.h"
#include "journal/journal.h"
#include "schema/config.h"
#include "web/http.h"
#include "web/webhook.h"
#include "web/webhook_json.h"
#include "tests/cobo_body.h"

#define SEED_COBO "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define SEED_API  "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"

static cobo_signer_t *s_signer;
static char s_url[128];
static atomic_int s_stop;
static atomic_long s_ok, s_bad, s_seq;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static size_t s_sink(char *p, size_t sz, size_t n, void *arg)
{
    (void) p;
    (void) arg;
    return sz * n;
}

static void *s_client(void *arg)
{
    long run = (long) (intptr_t) arg;
    CURL *c = curl_easy_init();
    char body[2048], sig[COBO_SIG_HEX_LEN + 1], h_ts[64], h_sig[200];
    curl_easy_setopt(c, CURLOPT_URL, s_url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    while (!atomic_load(&s_stop)) {
        long n = atomic_fetch_add(&s_seq, 1);
        int len = snprintf(body, sizeof body,
                           "{\"event_id\":\"e-%ld-%ld\",\"type\":\"wallets.transaction.updated\",\"data\":{"
                           "\"data_type\":\"Transaction\",\"transaction_id\":\"bench-%ld-%ld\",\"type\":\"Deposit\","
                           "\"status\":\"Confirming\",\"chain_id\":\"TRON\",\"token_id\":\"TRON_USDT\","
                           "\"destination\":{\"address\":\"TQbench%ld\",\"amount\":\"100.25\"},"
                           "\"confirmed_num\":1,\"confirming_threshold\":20,\"updated_timestamp\":1764140000000}}",
                           run, n, run, n, n % 1000);
        snprintf(h_ts, sizeof h_ts, "Biz-Timestamp: %ld", 1764140000000L + n);
        cobo_sign_response(s_signer, body, (size_t) len, h_ts + 15, sig);
        snprintf(h_sig, sizeof h_sig, "Biz-Resp-Signature: %s", sig);
        struct curl_slist *hl = curl_slist_append(NULL, h_ts);
        hl = curl_slist_append(hl, h_sig);
        hl = curl_slist_append(hl, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) len);
        long code = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(hl);
        if (code == 201)
            atomic_fetch_add(&s_ok, 1);
        else
            atomic_fetch_add(&s_bad, 1);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static int s_row(int threads, int clients, double seconds, long run)
{
    char dir[200];
    const char *base = getenv("KASA_BENCH_DIR");
    if ((size_t) snprintf(dir, sizeof dir, "%s/kasa-bench-webhook-XXXXXX", base && *base ? base : "/tmp")
        >= sizeof dir)
        return -1;
    if (!mkdtemp(dir))
        return -1;
    static config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", dir);
    snprintf(cfg.cobo_api_url, sizeof cfg.cobo_api_url, "http://127.0.0.1:9/v2");
    snprintf(cfg.cobo_api_secret, sizeof cfg.cobo_api_secret, "%s", SEED_API);
    cobo_pubkey_from_seed(SEED_API, cfg.cobo_api_key);
    snprintf(cfg.mt5_url, sizeof cfg.mt5_url, "http://127.0.0.1:9");
    cfg.mt5_login = 1000;
    snprintf(cfg.mt5_password, sizeof cfg.mt5_password, "x");
    snprintf(cfg.telegram_api_url, sizeof cfg.telegram_api_url, "http://127.0.0.1:9");
    cfg.crediters = 1;
    char err[512];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    pipeline_t *p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    http_server_t *http = p ? http_server_new("127.0.0.1:0", 65536, threads, err, sizeof err) : NULL;
    webhook_t *wh = http ? webhook_routes(http, p, cobo_signer_pubkey_hex(s_signer), err, sizeof err) : NULL;
    if (!wh || http_server_start(http, err, sizeof err) != 0) {
        fprintf(stderr, "bench_webhook: %s\n", err);
        return -1;
    }
    snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d/cobo/webhook", http_server_port(http));
    atomic_store(&s_stop, 0);
    atomic_store(&s_ok, 0);
    atomic_store(&s_bad, 0);
    pthread_t *th = calloc((size_t) clients, sizeof *th);
    double t0 = s_now();
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, s_client, (void *) (intptr_t) run);
    struct timespec ts = { (time_t) seconds, (long) ((seconds - (double) (time_t) seconds) * 1e9) };
    nanosleep(&ts, NULL);
    atomic_store(&s_stop, 1);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    double took = s_now() - t0;
    uint64_t records = journal_durable_lsn(j);
    printf("%-14d %-8d %-12.0f %-10ld %-10llu\n", threads, clients, (double) atomic_load(&s_ok) / took,
           atomic_load(&s_bad), (unsigned long long) records);
    fflush(stdout);
    free(th);
    http_server_destroy(&http);
    webhook_destroy(&wh);
    pipeline_destroy(&p);
    journal_destroy(&j);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

/* ---- the steps alone ------------------------------------------------------------------------ */

/* A deposit webhook as Cobo sends it: every field of a Transaction, nulls where absent. */
static const char *s_cobo_body = COBO_DEPOSIT_BODY;

static cobo_pubkey_t s_key;
static char s_step_sig[COBO_SIG_HEX_LEN + 1];

static double s_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int s_step_verify(void)
{
    return cobo_verify_response(&s_key, s_cobo_body, strlen(s_cobo_body), "1764142800123", s_step_sig);
}

static int s_step_bson(void)
{
    cobo_event_t ev;
    char err[160];
    return cobo_event_parse(s_cobo_body, strlen(s_cobo_body), &ev, err, sizeof err);
}

static int s_step_direct(void)
{
    cobo_event_t ev;
    char err[160];
    return webhook_event_parse(s_cobo_body, strlen(s_cobo_body), &ev, err, sizeof err);
}

static int s_step_check(void)
{
    static webhook_result_t r;
    return webhook_check(&s_key, "1764142800123", s_step_sig, "application/json", s_cobo_body, strlen(s_cobo_body),
                         0, &r) == WEBHOOK_DEPOSIT ? 0 : -1;
}

/* CPU microseconds per call of fn, over at least min_s CPU seconds; -1 if a call failed. */
static double s_step_us(int (*fn)(void), double min_s)
{
    long n = 0;
    double t0 = s_cpu_now(), t;
    do {
        for (int i = 0; i < 64; i++)
            if (fn() != 0)
                return -1;
        n += 64;
        t = s_cpu_now();
    } while (t - t0 < min_s);
    return (t - t0) * 1e6 / (double) n;
}

static int s_steps(void)
{
    if (cobo_pubkey_parse(cobo_signer_pubkey_hex(s_signer), &s_key) != 0)
        return -1;
    cobo_sign_response(s_signer, s_cobo_body, strlen(s_cobo_body), "1764142800123", s_step_sig);
    static const struct { const char *name; int (*fn)(void); } steps[] = {
        { "signature check (cobo_verify_response)", s_step_verify },
        { "body through libbson (cobo_event_parse)", s_step_bson },
        { "body read directly (webhook_event_parse)", s_step_direct },
        { "the whole check (webhook_check)", s_step_check },
    };
    printf("one webhook's steps on one thread, CPU us per call (%zu-byte Cobo deposit body)\n", strlen(s_cobo_body));
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        double us = s_step_us(steps[i].fn, 0.3);
        if (us < 0) {
            fprintf(stderr, "bench_webhook: %s failed\n", steps[i].name);
            return -1;
        }
        printf("  %-44s %8.2f\n", steps[i].name, us);
    }
    printf("\n");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    int clients = argc > 2 ? atoi(argv[2]) : 32;
    if (seconds <= 0 || seconds > 60 || clients < 1 || clients > 256) {
        fprintf(stderr, "usage: bench_webhook [SECONDS_PER_ROW (0..60]] [CLIENTS 1..256]\n");
        return 2;
    }
    setenv("KASA_LOG_LEVEL", "error", 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_signer = cobo_signer_new(SEED_COBO);
    if (s_steps() != 0)
        return 1;
    if (getenv("BENCH_WEBHOOK_STEPS_ONLY"))
        return 0;
    printf("signed deposit webhooks through HTTP, verify, parse, pipeline and journal (fdatasync)\n");
    printf("%-14s %-8s %-12s %-10s %-10s\n", "http_threads", "clients", "webhooks/s", "non-201", "records");
    static const int rows[] = { 1, 4, 8, 16, 32 };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (s_row(rows[i], clients, seconds, (long) i) != 0)
            return 1;
    cobo_signer_destroy(&s_signer);
    curl_global_cleanup();
    return 0;
}
