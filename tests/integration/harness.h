/* harness.h — what the integration tests share: processes, ports, a config file per test, HTTP
 * through libcurl, signed Cobo webhooks, the three simulators and kasa itself, and reading the
 * journal directly (journal_reader + record_decode) to see what kasa made durable.
 *
 * Header-only (every test binary links libkasa.a alone): all functions are static.
 *
 *   h_env_t env;
 *   h_env_init(&env, "e2e");            temp dir $KASA_TEST_OUT/e2e-PID, free loopback ports
 *   h_sims_start(&env, NULL);           Cobo, MT5 (accounts 100001..100010), Telegram simulators
 *   h_config_write(&env, NULL);         the config file kasa reads
 *   h_kasa_start(&env);                 `kasa serve --config FILE`, waits for its port
 *   ...
 *   h_env_finish(&env, failed);         SIGKILLs what still runs; removes the directory unless failed
 *
 * Environment: KASA_BIN (default build/san/kasa), KASA_TEST_OUT (default build/test-out). */
#ifndef KASA_TESTS_INTEGRATION_HARNESS_H
#define KASA_TESTS_INTEGRATION_HARNESS_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/cobo_auth.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "schema/record.h"

#define H_FN static __attribute__((unused))

/* Fixed test keys. The Cobo simulator signs webhooks and responses with H_COBO_KEY_SEED; kasa
 * signs its API requests with H_CLIENT_SEED (the simulator is told the matching public key). */
#define H_COBO_KEY_SEED "1111111111111111111111111111111111111111111111111111111111111111"
#define H_CLIENT_SEED   "2222222222222222222222222222222222222222222222222222222222222222"
#define H_OTHER_SEED    "3333333333333333333333333333333333333333333333333333333333333333"
#define H_MT5_MANAGER   1000
#define H_MT5_MANAGER_PW "ManagerPass1"
#define H_MT5_FIRST     100001          /* accounts 100001..100010, password "Investor1" */
#define H_MT5_ACCOUNTS  10
#define H_MT5_PW        "Investor1"
#define H_MT5_READONLY_PW "ReadOnly1"     /* every account's investor (read-only) password */
#define H_TG_TOKEN      "123456:TESTTOKEN"
#define H_TG_CHAT       "-1001234567890"
#define H_WALLET_ID     "b0b0b0b0-0000-4000-8000-000000000001"

/* ---- small utilities ------------------------------------------------------------------------- */

H_FN int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

H_FN int64_t h_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

H_FN void h_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* A seeded PRNG (splitmix64): the same seed gives the same run. */
typedef struct {
    uint64_t s;
} h_rng_t;

H_FN uint64_t h_rng_next(h_rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
H_FN int64_t h_rng_range(h_rng_t *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t) (h_rng_next(r) % (uint64_t) (hi - lo + 1));
}

/* A UUID-shaped id from two 64-bit values. out: 37 bytes. */
H_FN void h_uuid(uint64_t a, uint64_t b, char out[37])
{
    snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012" PRIx64, (unsigned) (a >> 32), (unsigned) (a >> 16) & 0xffff,
             (unsigned) a & 0xfff, (unsigned) (b >> 48) & 0xfff, (uint64_t) (b & 0xffffffffffffULL));
}

H_FN void h_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
H_FN void h_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  # ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* Reads a whole file (NUL-terminated, malloc'd), or NULL. */
H_FN char *h_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    jbuf_t b;
    jbuf_init(&b);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        jbuf_add(&b, buf, n);
    fclose(f);
    if (len_out)
        *len_out = b.len;
    if (!b.data)
        jbuf_add(&b, "", 0);
    return jbuf_take(&b);
}

/* Prints the last lines of a log file to stderr, for a failure's context. */
H_FN void h_tail(const char *path, int lines)
{
    size_t len = 0;
    char *text = h_read_file(path, &len);
    if (!text)
        return;
    size_t start = len;
    int seen = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && ++seen > lines)
            break;
        start--;
    }
    fprintf(stderr, "  --- last lines of %s ---\n%s  ---\n", path, text + start);
    free(text);
}

/* A free loopback TCP port (bound to port 0 and released). */
H_FN int h_free_port(void)
{
    /* Below the kernel's ephemeral range (32768-60999 here): a port taken from it can be handed to any
     * outgoing connection while its server is down between a kill and its restart (the tests run two
     * programs at a time), and the restarted server then cannot bind it. */
    static unsigned seed;
    static pid_t seeded_in;
    if (seeded_in != getpid()) {   /* forked workers must not pick the same ports */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (unsigned) getpid() * 2654435761u ^ (unsigned) ts.tv_nsec ^ (unsigned) ts.tv_sec;
        seeded_in = getpid();
    }
    for (int tries = 0; tries < 200; tries++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int) ((seed >> 8) % 12700);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t) port);
        int ok = bind(fd, (struct sockaddr *) &a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    return -1;
}

/* 1 if something accepts TCP connections on 127.0.0.1:port. */
H_FN int h_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t) port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *) &a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* ---- processes ----------------------------------------------------------------------------- */

/* Starts argv[0] with argv, stdout and stderr appended to log_path (NULL: /dev/null), extra
 * environment entries env ("KEY=VALUE", NULL-terminated, may be NULL). The child dies with us. */
H_FN pid_t h_spawn(char *const argv[], const char *log_path, char *const env[])
{
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) {
        dup2(nul, 0);
        close(nul);
    }
    for (int i = 0; env && env[i]; i++)
        putenv(env[i]);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Waits up to timeout_ms for pid to exit. Returns its wait status, or -1 if still running. */
H_FN int h_wait_pid(pid_t pid, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        if (h_now_ms() >= end)
            return -1;
        h_sleep_ms(5);
    }
}

/* SIGKILLs pid and reaps it. Safe on pid <= 0. */
H_FN void h_kill(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

/* SIGTERMs pid and waits up to timeout_ms (then SIGKILL). Returns the exit code (0..255), 128+signal
 * if it died by a signal, or -1 if it had to be killed. */
H_FN int h_stop(pid_t *pid, int timeout_ms)
{
    if (*pid <= 0)
        return 0;
    kill(*pid, SIGTERM);
    int st = h_wait_pid(*pid, timeout_ms);
    if (st == -1) {
        h_kill(pid);
        return -1;
    }
    *pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* 1 if pid has exited on its own (it is then reaped and *status set). */
H_FN int h_exited(pid_t pid, int *status)
{
    int st = 0;
    if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
        if (status)
            *status = st;
        return 1;
    }
    return 0;
}

/* Runs argv to completion (at most timeout_ms), output to out_path. Returns the exit code, or -1. */
H_FN int h_run(char *const argv[], const char *out_path, char *const env[], int timeout_ms)
{
    if (out_path)
        unlink(out_path);
    pid_t pid = h_spawn(argv, out_path, env);
    if (pid < 0)
        return -1;
    int st = h_wait_pid(pid, timeout_ms);
    if (st == -1) {
        h_kill(&pid);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

typedef struct {
    long status;       /* 0 when no response arrived (connection refused, reset, timeout) */
    char *body;        /* NUL-terminated, malloc'd (may be "") */
    size_t len;
    int curl_code;
} h_resp_t;

static size_t h_curl_sink_(char *p, size_t size, size_t n, void *arg)
{
    jbuf_add((jbuf_t *) arg, p, size * n);
    return size * n;
}

H_FN void h_resp_free(h_resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* A CA file for https:// requests of h_http_full ("" = the system's): a test serving its own
 * certificate points it here. */
static char h_https_ca[512];

/* One request on a given easy handle (or a fresh one if curl is NULL). headers: "Name: value"
 * entries, NULL-terminated, may be NULL. body may be NULL (no body). source_ip (may be NULL): the
 * local address to connect from (any of 127.0.0.0/8 on loopback, to play several clients).
 * resp_headers (may be NULL, initialised by the caller): receives the answer's header lines.
 * Never fails loudly: the outcome is in the response (status 0 for no response). */
H_FN h_resp_t h_http_full(CURL *curl, const char *method, const char *url, const char *const *headers,
                          const char *body, size_t len, long timeout_ms, const char *source_ip,
                          jbuf_t *resp_headers)
{
    h_resp_t r = { 0, NULL, 0, 0 };
    int own = curl == NULL;
    if (own)
        curl = curl_easy_init();
    else
        curl_easy_reset(curl);
    jbuf_t b;
    jbuf_init(&b);
    struct curl_slist *hl = NULL;
    int has_ct = 0;
    for (int i = 0; headers && headers[i]; i++) {
        hl = curl_slist_append(hl, headers[i]);
        if (strncasecmp(headers[i], "content-type:", 13) == 0)
            has_ct = 1;
    }
    if (body && !has_ct)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, h_curl_sink_);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 2000 ? timeout_ms : 2000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    if (source_ip)
        curl_easy_setopt(curl, CURLOPT_INTERFACE, source_ip);
    if (resp_headers) {
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, h_curl_sink_);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp_headers);
    }
    if (h_https_ca[0])
        curl_easy_setopt(curl, CURLOPT_CAINFO, h_https_ca);
    r.curl_code = (int) curl_easy_perform(curl);
    if (r.curl_code == CURLE_OK || r.curl_code == CURLE_SEND_ERROR)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    if (own)
        curl_easy_cleanup(curl);
    r.len = b.len;
    if (!b.data)
        jbuf_add(&b, "", 0);
    r.body = jbuf_take(&b);
    return r;
}

/* h_http_full without a source address or the answer's headers. */
H_FN h_resp_t h_http_on(CURL *curl, const char *method, const char *url, const char *const *headers,
                        const char *body, size_t len, long timeout_ms)
{
    return h_http_full(curl, method, url, headers, body, len, timeout_ms, NULL, NULL);
}

H_FN h_resp_t h_http(const char *method, const char *url, const char *body)
{
    return h_http_on(NULL, method, url, NULL, body, body ? strlen(body) : 0, 10000);
}

/* GET url and parse the JSON answer into *doc (bson_destroy it on 0). Returns 0, or -1. */
H_FN int h_get_json(const char *url, bson_t *doc)
{
    h_resp_t r = h_http("GET", url, NULL);
    int rc = -1;
    char err[128];
    if (r.status == 200 && json_parse(r.body, r.len, doc, err, sizeof err) == 0)
        rc = 0;
    else
        h_log("GET %s -> %ld %.200s", url, r.status, r.body);
    h_resp_free(&r);
    return rc;
}

/* A response with its headers, for the JSON APIs (cookies, CSRF). */
typedef struct {
    long status;
    char *body;
    size_t len;
    jbuf_t headers;
} h_cresp_t;

H_FN void h_cresp_free(h_cresp_t *r)
{
    free(r->body);
    jbuf_free(&r->headers);
    memset(r, 0, sizeof *r);
}

/* One request to base+path with a cookie ("name=value", may be NULL), an X-CSRF-Token (may be
 * NULL), a body (may be NULL) sent as ctype (NULL: application/json). 30 s timeout. */
H_FN h_cresp_t h_call(const char *base, const char *method, const char *path, const char *cookie, const char *csrf,
                      const char *body, const char *ctype)
{
    h_cresp_t r;
    memset(&r, 0, sizeof r);
    jbuf_init(&r.headers);
    CURL *c = curl_easy_init();
    char url[512], ck[200], tok[128], ct[128];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *hl = NULL;
    if (cookie) {
        snprintf(ck, sizeof ck, "Cookie: %s", cookie);
        hl = curl_slist_append(hl, ck);
    }
    if (csrf) {
        snprintf(tok, sizeof tok, "X-CSRF-Token: %s", csrf);
        hl = curl_slist_append(hl, tok);
    }
    if (body) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
        hl = curl_slist_append(hl, ct);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
    }
    hl = curl_slist_append(hl, "Expect:");
    jbuf_t b;
    jbuf_init(&b);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_curl_sink_);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_curl_sink_);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.len = b.len;
    if (!b.data)
        jbuf_add(&b, "", 0);
    r.body = jbuf_take(&b);
    if (!r.headers.data)
        jbuf_add(&r.headers, "", 0);
    return r;
}

/* The value of header name (case-insensitive) in r into out; 0, or -1. */
H_FN int h_header(const h_cresp_t *r, const char *name, char *out, size_t len)
{
    const char *p = r->headers.data;
    size_t n = strlen(name);
    while (p && *p) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            size_t k = strcspn(p, "\r\n");
            snprintf(out, len, "%.*s", (int) k, p);
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* The string at path of a JSON body into out ("" if missing). */
H_FN void h_json_str(const char *body, const char *path, char *out, size_t len)
{
    bson_t doc;
    char err[128];
    out[0] = '\0';
    if (json_parse(body, strlen(body), &doc, err, sizeof err) != 0)
        return;
    const char *v = json_get_str(&doc, path);
    if (v)
        snprintf(out, len, "%s", v);
    bson_destroy(&doc);
}

/* ---- webhooks ---------------------------------------------------------------------------- */

/* A deposit transaction as the harness describes it to Cobo and to kasa. */
typedef struct {
    char tx_id[40];
    char address[80];
    char amount[48];
    char token_id[24];
    char chain_id[16];
    char status[24];       /* Confirming, Completed, ... */
    int confirmations;
    int threshold;
} h_tx_t;

/* A Completed deposit of amount token_id to address on TRON, 20 of 20 confirmations. */
H_FN h_tx_t h_completed_tx(const char *address, const char *amount, const char *token_id)
{
    h_tx_t tx;
    memset(&tx, 0, sizeof tx);
    snprintf(tx.address, sizeof tx.address, "%s", address);
    snprintf(tx.amount, sizeof tx.amount, "%s", amount);
    snprintf(tx.token_id, sizeof tx.token_id, "%s", token_id);
    snprintf(tx.chain_id, sizeof tx.chain_id, "TRON");
    snprintf(tx.status, sizeof tx.status, "Completed");
    tx.confirmations = 20;
    tx.threshold = 20;
    return tx;
}

/* Writes a webhook envelope for tx (event type "wallets.transaction.created|updated|succeeded")
 * into b, the way Cobo shapes it. */
H_FN void h_webhook_body(jbuf_t *b, const char *event_id, const char *type, const h_tx_t *tx)
{
    int64_t now = h_wall_ms();
    jbuf_puts(b, "{\"event_id\":");
    jbuf_str(b, event_id);
    jbuf_puts(b, ",\"url\":\"http://127.0.0.1/cobo/webhook\",\"created_timestamp\":");
    jbuf_printf(b, "%" PRId64, now);
    jbuf_puts(b, ",\"type\":");
    jbuf_str(b, type);
    jbuf_puts(b, ",\"data\":{\"data_type\":\"Transaction\",\"transaction_id\":");
    jbuf_str(b, tx->tx_id);
    jbuf_puts(b, ",\"cobo_id\":\"2025112600000001\",\"request_id\":null,\"wallet_id\":\"" H_WALLET_ID "\"");
    jbuf_puts(b, ",\"type\":\"Deposit\",\"status\":");
    jbuf_str(b, tx->status);
    jbuf_puts(b, ",\"sub_status\":null,\"chain_id\":");
    jbuf_str(b, tx->chain_id);
    jbuf_puts(b, ",\"token_id\":");
    jbuf_str(b, tx->token_id);
    jbuf_puts(b, ",\"asset_id\":\"USDT\",\"source\":{\"source_type\":\"DepositFromAddress\",\"addresses\":"
                 "[\"TSrcSrcSrcSrcSrcSrcSrcSrcSrcSrcSrc\"]},\"destination\":{\"destination_type\":\"DepositToAddress\","
                 "\"address\":");
    jbuf_str(b, tx->address);
    jbuf_puts(b, ",\"amount\":");
    jbuf_str(b, tx->amount);
    jbuf_puts(b, ",\"memo\":null,\"wallet_id\":\"" H_WALLET_ID "\"},\"transaction_hash\":");
    char hash[80];
    snprintf(hash, sizeof hash, "%.36s%.28s", tx->tx_id, "0000000000000000000000000000");
    jbuf_str(b, hash);
    jbuf_printf(b, ",\"confirmed_num\":%d,\"confirming_threshold\":%d", tx->confirmations, tx->threshold);
    jbuf_printf(b, ",\"block_info\":{\"block_number\":64000000,\"block_timestamp\":%" PRId64
                   ",\"block_hash\":\"00000000000000000000\"}",
                now);
    jbuf_printf(b, ",\"created_timestamp\":%" PRId64 ",\"updated_timestamp\":%" PRId64 ",\"timeline\":[]}}", now - 1000,
                now);
}

/* The body of a pending deposit's webhook (Confirming, 1 of 20: nothing downstream is asked for) to
 * address, malloc'd. */
H_FN char *h_pending_body(const char *tx_id, const char *event_id, const char *address)
{
    h_tx_t tx;
    memset(&tx, 0, sizeof tx);
    snprintf(tx.tx_id, sizeof tx.tx_id, "%s", tx_id);
    snprintf(tx.address, sizeof tx.address, "%s", address);
    snprintf(tx.amount, sizeof tx.amount, "250");
    snprintf(tx.token_id, sizeof tx.token_id, "TRON_USDT");
    snprintf(tx.chain_id, sizeof tx.chain_id, "TRON");
    snprintf(tx.status, sizeof tx.status, "Confirming");
    tx.confirmations = 1;
    tx.threshold = 20;
    jbuf_t b;
    jbuf_init(&b);
    h_webhook_body(&b, event_id, "wallets.transaction.updated", &tx);
    return jbuf_take(&b);
}

/* Signs body|timestamp with the given seed (hex). sig: 129 bytes. */
H_FN void h_sign(const char *seed, const char *body, size_t len, const char *ts, char sig[COBO_SIG_HEX_LEN + 1])
{
    cobo_signer_t *s = cobo_signer_new(seed);
    if (!s) {
        sig[0] = '\0';
        return;
    }
    cobo_sign_response(s, body, len, ts, sig);
    cobo_signer_destroy(&s);
}

/* ---- the environment: simulators and kasa ---------------------------------------------------- */

typedef struct {
    char name[64];
    char dir[400];          /* $KASA_TEST_OUT/NAME-PID */
    char journal[512];
    char config[512];
    char kasa_bin[400];
    char kasa_log[512];
    int kasa_port, webhook_port, monitor_port, cobo_port, mt5_port, tg_port;
    pid_t kasa_pid, cobo_pid, mt5_pid, tg_pid;
    char kasa_url[64], cobo_url[64], mt5_url[64], tg_url[64];
    char webhook_url[64];   /* kasa's webhook listener (KASA_WEBHOOK_LISTEN): base URL */
    char webhook_pub[COBO_KEY_HEX_LEN + 1];
    char client_pub[COBO_KEY_HEX_LEN + 1];
    int kasa_starts;
    int keep_ports;         /* 1: a restarted kasa gets the same ports (the URL never changes) */
    char kasa_listen_env[80], kasa_monitor_env[80], kasa_webhook_env[80];
    char *kasa_wrap[6];     /* a command kasa runs under (e.g. prlimit ...), NULL-terminated; none if [0] is NULL */
} h_env_t;

H_FN void h_init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static int h_mkdirs_(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Prepares a fresh directory and free ports for a test named name. Returns 0, or -1. */
H_FN int h_env_init(h_env_t *env, const char *name)
{
    h_init();
    memset(env, 0, sizeof *env);
    snprintf(env->name, sizeof env->name, "%s", name);
    const char *out = getenv("KASA_TEST_OUT");
    if (!out || !*out)
        out = "build/test-out";
    char abs_out[300];
    if (out[0] != '/') {
        char cwd[256];
        if (!getcwd(cwd, sizeof cwd))
            return -1;
        snprintf(abs_out, sizeof abs_out, "%s/%s", cwd, out);
    } else
        snprintf(abs_out, sizeof abs_out, "%s", out);
    snprintf(env->dir, sizeof env->dir, "%s/%s-%d", abs_out, name, (int) getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", env->dir);
    if (system(cmd) != 0)
        return -1;
    if (h_mkdirs_(env->dir) != 0)
        return -1;
    snprintf(env->journal, sizeof env->journal, "%s/journal", env->dir);
    snprintf(env->config, sizeof env->config, "%s/kasa.env", env->dir);
    snprintf(env->kasa_log, sizeof env->kasa_log, "%s/kasa.log", env->dir);
    const char *bin = getenv("KASA_BIN");
    if (!bin || !*bin)
        bin = "build/san/kasa";
    if (bin[0] != '/') {
        char cwd[256];
        if (!getcwd(cwd, sizeof cwd))
            return -1;
        snprintf(env->kasa_bin, sizeof env->kasa_bin, "%s/%s", cwd, bin);
    } else
        snprintf(env->kasa_bin, sizeof env->kasa_bin, "%s", bin);
    if (access(env->kasa_bin, X_OK) != 0) {
        h_log("no kasa binary at %s (set KASA_BIN)", env->kasa_bin);
        return -1;
    }
    env->kasa_port = h_free_port();
    env->webhook_port = h_free_port();
    env->monitor_port = h_free_port();
    env->cobo_port = h_free_port();
    env->mt5_port = h_free_port();
    env->tg_port = h_free_port();
    snprintf(env->kasa_url, sizeof env->kasa_url, "http://127.0.0.1:%d", env->kasa_port);
    snprintf(env->webhook_url, sizeof env->webhook_url, "http://127.0.0.1:%d", env->webhook_port);
    snprintf(env->cobo_url, sizeof env->cobo_url, "http://127.0.0.1:%d", env->cobo_port);
    snprintf(env->mt5_url, sizeof env->mt5_url, "http://127.0.0.1:%d", env->mt5_port);
    snprintf(env->tg_url, sizeof env->tg_url, "http://127.0.0.1:%d", env->tg_port);
    if (cobo_pubkey_from_seed(H_COBO_KEY_SEED, env->webhook_pub) != 0 ||
        cobo_pubkey_from_seed(H_CLIENT_SEED, env->client_pub) != 0)
        return -1;
    return 0;
}

H_FN int h_wait_port(int port, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    while (h_now_ms() < end) {
        if (h_port_open(port))
            return 0;
        h_sleep_ms(10);
    }
    return -1;
}

/* Starts the Cobo, MT5 and Telegram simulators. webhook_url: where Cobo sends webhooks (NULL:
 * kasa's /cobo/webhook). Returns 0 once all three answer, or -1. */
H_FN int h_sims_start(h_env_t *env, const char *webhook_url)
{
    char listen[3][64], hook[128], logs[3][512], mgr[64];
    snprintf(listen[0], 64, "127.0.0.1:%d", env->cobo_port);
    snprintf(listen[1], 64, "127.0.0.1:%d", env->mt5_port);
    snprintf(listen[2], 64, "127.0.0.1:%d", env->tg_port);
    if (webhook_url)
        snprintf(hook, sizeof hook, "%s", webhook_url);
    else
        snprintf(hook, sizeof hook, "%s/cobo/webhook", env->webhook_url);
    snprintf(logs[0], 512, "%s/sim-cobo.log", env->dir);
    snprintf(logs[1], 512, "%s/sim-mt5.log", env->dir);
    snprintf(logs[2], 512, "%s/sim-telegram.log", env->dir);
    snprintf(mgr, sizeof mgr, "%d:%s", H_MT5_MANAGER, H_MT5_MANAGER_PW);

    char *cobo[] = { env->kasa_bin, "sim", "cobo", "--listen", listen[0], "--webhook-url", hook,
                     "--key-seed", H_COBO_KEY_SEED, "--client-key", env->client_pub, NULL };
    env->cobo_pid = h_spawn(cobo, logs[0], NULL);

    char accounts[H_MT5_ACCOUNTS][64], readonly[H_MT5_ACCOUNTS][64];
    char *mt5[8 + 4 * H_MT5_ACCOUNTS];
    int n = 0;
    mt5[n++] = env->kasa_bin;
    mt5[n++] = "sim";
    mt5[n++] = "mt5";
    mt5[n++] = "--listen";
    mt5[n++] = listen[1];
    mt5[n++] = "--manager";
    mt5[n++] = mgr;
    for (int i = 0; i < H_MT5_ACCOUNTS; i++) {
        snprintf(accounts[i], sizeof accounts[i], "%d:%s:0", H_MT5_FIRST + i, H_MT5_PW);
        mt5[n++] = "--account";
        mt5[n++] = accounts[i];
        snprintf(readonly[i], sizeof readonly[i], "%d:%s", H_MT5_FIRST + i, H_MT5_READONLY_PW);
        mt5[n++] = "--investor-password";
        mt5[n++] = readonly[i];
    }
    mt5[n] = NULL;
    env->mt5_pid = h_spawn(mt5, logs[1], NULL);

    char tglog[512];
    snprintf(tglog, sizeof tglog, "%s/telegram-messages.log", env->dir);
    char *tg[] = { env->kasa_bin, "sim", "telegram", "--listen", listen[2], "--token", H_TG_TOKEN, "--log", tglog, NULL };
    env->tg_pid = h_spawn(tg, logs[2], NULL);

    int rc = 0;
    if (h_wait_port(env->cobo_port, 30000) != 0) {
        h_log("the Cobo simulator did not start");
        h_tail(logs[0], 20);
        rc = -1;
    }
    if (h_wait_port(env->mt5_port, 30000) != 0) {
        h_log("the MT5 simulator did not start");
        h_tail(logs[1], 20);
        rc = -1;
    }
    if (h_wait_port(env->tg_port, 30000) != 0) {
        h_log("the Telegram simulator did not start");
        h_tail(logs[2], 20);
        rc = -1;
    }
    return rc;
}

/* Writes the config file kasa reads; extra (may be NULL) is appended verbatim (KEY=VALUE lines,
 * later lines win). Returns 0, or -1. */
H_FN int h_config_write(h_env_t *env, const char *extra)
{
    FILE *f = fopen(env->config, "w");
    if (!f)
        return -1;
    fprintf(f, "# kasa test configuration (%s)\n", env->name);
    fprintf(f, "KASA_LISTEN=127.0.0.1:%d\n", env->kasa_port);
    fprintf(f, "KASA_WEBHOOK_LISTEN=127.0.0.1:%d\n", env->webhook_port);
    fprintf(f, "KASA_JOURNAL_DIR=%s\n", env->journal);
    fprintf(f, "KASA_MONITOR=tcp://127.0.0.1:%d\n", env->monitor_port);
    fprintf(f, "COBO_API_URL=%s/v2\n", env->cobo_url);
    fprintf(f, "COBO_API_KEY=%s\n", env->client_pub);
    fprintf(f, "COBO_API_SECRET=%s\n", H_CLIENT_SEED);
    fprintf(f, "COBO_WEBHOOK_PUBKEY=%s\n", env->webhook_pub);
    fprintf(f, "COBO_WALLET_ID=%s\n", H_WALLET_ID);
    fprintf(f, "KASA_CHAINS=TRON_USDT,TRON\n");
    fprintf(f, "MT5_URL=%s\n", env->mt5_url);
    fprintf(f, "MT5_LOGIN=%d\n", H_MT5_MANAGER);
    fprintf(f, "MT5_PASSWORD=%s\n", H_MT5_MANAGER_PW);
    fprintf(f, "TELEGRAM_API_URL=%s\n", env->tg_url);
    fprintf(f, "TELEGRAM_BOT_TOKEN=%s\n", H_TG_TOKEN);
    fprintf(f, "TELEGRAM_CHAT_ID=%s\n", H_TG_CHAT);
    fprintf(f, "# rate:fee:minimum — the fee shows in every credit\n");
    fprintf(f, "KASA_TOKEN_TRON_USDT=1:0.5:1\n");
    fprintf(f, "KASA_TOKEN_TRON=0.1234:0:1\n");
    if (!extra || !strstr(extra, "KASA_AUTO_CREDIT_LIMIT="))   /* extra may set its own */
        fprintf(f, "KASA_AUTO_CREDIT_LIMIT=100000\n");
    fprintf(f, "KASA_CREDITERS=2\n");
    /* catch-up and the metrics listener only where a test asks for them (a key may be set once) */
    if (!extra || !strstr(extra, "KASA_CATCHUP_INTERVAL="))
        fprintf(f, "KASA_CATCHUP_INTERVAL=0\n");
    if (!extra || !strstr(extra, "KASA_METRICS_LISTEN="))
        fprintf(f, "KASA_METRICS_LISTEN=off\n");
    fprintf(f, "KASA_MT5_SETTLE_S=1\n");   /* longer than any late execution a test injects */
    if (extra)
        fputs(extra, f);
    fchmod(fileno(f), 0600);   /* it holds secrets: kasa warns about a file others may read */
    return fclose(f) == 0 ? 0 : -1;
}

/* Starts `kasa serve --config FILE` (on fresh ports when restarted, unless keep_ports, so a dying
 * predecessor's sockets never get in the way) and returns at once. */
H_FN void h_kasa_spawn(h_env_t *env)
{
    if (env->kasa_starts > 0 && !env->keep_ports) {
        env->kasa_port = h_free_port();
        env->webhook_port = h_free_port();
        env->monitor_port = h_free_port();
        snprintf(env->kasa_url, sizeof env->kasa_url, "http://127.0.0.1:%d", env->kasa_port);
        snprintf(env->webhook_url, sizeof env->webhook_url, "http://127.0.0.1:%d", env->webhook_port);
    }
    env->kasa_starts++;
    snprintf(env->kasa_listen_env, sizeof env->kasa_listen_env, "KASA_LISTEN=127.0.0.1:%d", env->kasa_port);
    snprintf(env->kasa_monitor_env, sizeof env->kasa_monitor_env, "KASA_MONITOR=tcp://127.0.0.1:%d", env->monitor_port);
    snprintf(env->kasa_webhook_env, sizeof env->kasa_webhook_env, "KASA_WEBHOOK_LISTEN=127.0.0.1:%d", env->webhook_port);
    char *extra_env[] = { env->kasa_listen_env, env->kasa_monitor_env, env->kasa_webhook_env, NULL };
    char *argv[12];
    int n = 0;
    for (int i = 0; i < 5 && env->kasa_wrap[i]; i++)
        argv[n++] = env->kasa_wrap[i];
    argv[n++] = env->kasa_bin;
    argv[n++] = "serve";
    argv[n++] = "--config";
    argv[n++] = env->config;
    argv[n] = NULL;
    env->kasa_pid = h_spawn(argv, env->kasa_log, extra_env);
}

/* h_kasa_spawn, then waits until its webhook route answers. Returns 0, or -1 (its log is shown). */
H_FN int h_kasa_start(h_env_t *env)
{
    h_kasa_spawn(env);
    int64_t end = h_now_ms() + 20000;
    while (h_now_ms() < end) {
        int st;
        if (h_exited(env->kasa_pid, &st)) {
            h_log("kasa exited at start (status %d)", st);
            h_tail(env->kasa_log, 30);
            env->kasa_pid = 0;
            return -1;
        }
        if (h_port_open(env->kasa_port) && h_port_open(env->webhook_port)) {
            /* ready once the webhook route answers (an unsigned POST: 401, never 404) */
            char url[128];
            snprintf(url, sizeof url, "%s/cobo/webhook", env->webhook_url);
            h_resp_t r = h_http_on(NULL, "POST", url, NULL, "{}", 2, 2000);
            long code = r.status;
            h_resp_free(&r);
            if (code != 0 && code != 404)
                return 0;
        }
        h_sleep_ms(5);
    }
    h_log("kasa did not open port %d", env->kasa_port);
    h_tail(env->kasa_log, 30);
    h_kill(&env->kasa_pid);
    return -1;
}

H_FN void h_kasa_kill(h_env_t *env)
{
    h_kill(&env->kasa_pid);
}

/* SIGTERM, wait; the exit code (0 = clean, sanitizers quiet). */
H_FN int h_kasa_stop(h_env_t *env)
{
    int rc = h_stop(&env->kasa_pid, 20000);
    if (rc != 0) {
        h_log("kasa stopped with status %d", rc);
        h_tail(env->kasa_log, 40);
    }
    return rc;
}

/* SIGKILLs whatever still runs. */
H_FN void h_env_destroy(h_env_t *env)
{
    h_kill(&env->kasa_pid);
    h_kill(&env->cobo_pid);
    h_kill(&env->mt5_pid);
    h_kill(&env->tg_pid);
}

/* h_env_destroy, then removes the test's directory unless keep (pass "a check failed") or
 * KASA_KEEP_TEST_OUT is set. */
H_FN void h_env_finish(h_env_t *env, int keep)
{
    h_env_destroy(env);
    if (!keep && env->dir[0] && !getenv("KASA_KEEP_TEST_OUT")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", env->dir);
        if (system(cmd) != 0)
            h_log("could not remove %s", env->dir);
    } else if (env->dir[0])
        h_log("logs and journals kept in %s", env->dir);
}

/* Runs `kasa ARGS...` (NULL-terminated) with output into DIR/NAME.out; returns the exit code and,
 * when out is non-NULL, the output (malloc'd). */
H_FN int h_kasa_cmd(h_env_t *env, char **out, const char *arg0, ...)
{
    char *argv[24];
    int n = 0;
    argv[n++] = env->kasa_bin;
    argv[n++] = (char *) arg0;
    va_list ap;
    va_start(ap, arg0);
    const char *a;
    while (n < 23 && (a = va_arg(ap, const char *)) != NULL)
        argv[n++] = (char *) a;
    va_end(ap);
    argv[n] = NULL;
    char path[600];
    static int seq;
    snprintf(path, sizeof path, "%s/cmd-%d-%s.out", env->dir, ++seq, arg0);
    int rc = h_run(argv, path, NULL, 30000);
    if (out)
        *out = h_read_file(path, NULL);
    return rc;
}

/* `kasa wallet link ADDRESS LOGIN --config FILE`. Returns the exit code. */
H_FN int h_link(h_env_t *env, const char *address, uint64_t login)
{
    char l[32];
    snprintf(l, sizeof l, "%" PRIu64, login);
    char *out = NULL;
    int rc = h_kasa_cmd(env, &out, "wallet", "link", address, l, "--config", env->config, NULL);
    if (rc != 0)
        h_log("kasa wallet link %s %s -> %d: %s", address, l, rc, out ? out : "");
    free(out);
    return rc;
}

/* POSTs a webhook body to base_url/cobo/webhook (base_url: kasa's webhook listener) signed with Cobo's
 * test key over body|ts, headers spelled the usual way (underscore 1: Biz_Timestamp /
 * Biz_Resp_Signature), from source_ip (NULL: any), waiting at most timeout_ms. Returns the response. */
H_FN h_resp_t h_post_webhook_full(CURL *curl, const char *base_url, const char *body, size_t len, int underscore,
                                  const char *source_ip, long timeout_ms)
{
    char ts[32], sig[COBO_SIG_HEX_LEN + 1], hts[64], hsig[200], url[160];
    snprintf(ts, sizeof ts, "%" PRId64, h_wall_ms());
    h_sign(H_COBO_KEY_SEED, body, len, ts, sig);
    snprintf(hts, sizeof hts, underscore ? "Biz_Timestamp: %s" : "Biz-Timestamp: %s", ts);
    snprintf(hsig, sizeof hsig, underscore ? "Biz_Resp_Signature: %s" : "Biz-Resp-Signature: %s", sig);
    const char *headers[] = { hts, hsig, NULL };
    snprintf(url, sizeof url, "%s/cobo/webhook", base_url);
    return h_http_full(curl, "POST", url, headers, body, len, timeout_ms, source_ip, NULL);
}

H_FN h_resp_t h_post_webhook_url(CURL *curl, const char *base_url, const char *body, size_t len, int underscore)
{
    return h_post_webhook_full(curl, base_url, body, len, underscore, NULL, 5000);
}

H_FN h_resp_t h_post_webhook_on(CURL *curl, const h_env_t *env, const char *body, size_t len, int underscore)
{
    return h_post_webhook_url(curl, env->webhook_url, body, len, underscore);
}

H_FN h_resp_t h_post_webhook(const h_env_t *env, const char *body, size_t len)
{
    return h_post_webhook_on(NULL, env, body, len, 0);
}

/* Asks the Cobo simulator to make a deposit (it then sends its webhooks). tx gives address,
 * amount, token_id, chain_id; the new transaction_id is written into tx->tx_id. confirmations
 * (1..40) / duplicates (extra copies, 0..10) / reorder as the simulator takes them (< 0: its
 * default). The transaction is Completed at Cobo at once; its webhooks follow. 0, or -1. */
H_FN int h_sim_deposit(const h_env_t *env, h_tx_t *tx, int confirmations, int duplicates, int reorder)
{
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"address\":");
    jbuf_str(&b, tx->address);
    jbuf_puts(&b, ",\"amount\":");
    jbuf_str(&b, tx->amount);
    jbuf_puts(&b, ",\"token_id\":");
    jbuf_str(&b, tx->token_id);
    jbuf_puts(&b, ",\"chain_id\":");
    jbuf_str(&b, tx->chain_id);
    jbuf_puts(&b, ",\"wallet_id\":\"" H_WALLET_ID "\"");
    if (confirmations >= 0)
        jbuf_printf(&b, ",\"confirmations\":%d", confirmations);
    if (duplicates >= 0)
        jbuf_printf(&b, ",\"duplicates\":%d", duplicates);
    if (reorder >= 0)
        jbuf_printf(&b, ",\"reorder\":%s", reorder ? "true" : "false");
    jbuf_puts(&b, "}");
    char url[128];
    snprintf(url, sizeof url, "%s/sim/deposit", env->cobo_url);
    h_resp_t r = h_http("POST", url, b.data);
    jbuf_free(&b);
    int rc = -1;
    bson_t doc;
    char err[128];
    if (r.status >= 200 && r.status < 300 && json_parse(r.body, r.len, &doc, err, sizeof err) == 0) {
        const char *id = json_get_str(&doc, "transaction_id");
        if (id && strlen(id) < sizeof tx->tx_id) {
            snprintf(tx->tx_id, sizeof tx->tx_id, "%s", id);
            rc = 0;
        }
        bson_destroy(&doc);
    }
    if (rc != 0)
        h_log("POST /sim/deposit -> %ld %.300s", r.status, r.body);
    h_resp_free(&r);
    return rc;
}

/* POST a JSON body to a simulator's control path (e.g. "/sim/faults"). Returns the HTTP status. */
H_FN long h_sim_post(const char *base_url, const char *path, const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    h_resp_t r = h_http("POST", url, json);
    long st = r.status;
    if (st < 200 || st >= 300)
        h_log("POST %s -> %ld %.200s", url, st, r.body);
    h_resp_free(&r);
    return st;
}

/* ---- MT5 simulator: deals and balances ------------------------------------------------------ */

typedef struct {
    uint64_t ticket;
    uint64_t login;
    char profit[40];
    char comment[40];
} h_deal_t;

/* The value at "PREFIX.i.KEY", trying a few spellings of KEY. */
static const char *h_deal_field_(const bson_t *doc, const char *prefix, int i, const char *const *keys)
{
    char path[128];
    for (int k = 0; keys[k]; k++) {
        snprintf(path, sizeof path, "%s%s%d.%s", prefix, *prefix ? "." : "", i, keys[k]);
        const char *s = json_get_str(doc, path);
        if (s)
            return s;
    }
    return NULL;
}

static int h_deal_i64_(const bson_t *doc, const char *prefix, int i, const char *const *keys, int64_t *out)
{
    char path[128];
    for (int k = 0; keys[k]; k++) {
        snprintf(path, sizeof path, "%s%s%d.%s", prefix, *prefix ? "." : "", i, keys[k]);
        if (json_get_i64(doc, path, out) == 0)
            return 0;
    }
    return -1;
}

/* The balance deals of login (0: every login) in the MT5 simulator, at most max. Returns the
 * count, or -1 if the simulator could not be read. */
H_FN int h_mt5_deals(const h_env_t *env, uint64_t login, h_deal_t *deals, int max)
{
    char url[160];
    if (login)
        snprintf(url, sizeof url, "%s/sim/deals?login=%" PRIu64, env->mt5_url, login);
    else
        snprintf(url, sizeof url, "%s/sim/deals", env->mt5_url);
    bson_t doc;
    if (h_get_json(url, &doc) != 0)
        return -1;
    static const char *const prefixes[] = { "a", "deals", "answer", NULL };
    static const char *const k_ticket[] = { "Deal", "deal", "ticket", "Ticket", NULL };
    static const char *const k_login[] = { "Login", "login", NULL };
    static const char *const k_profit[] = { "Profit", "profit", "amount", NULL };
    static const char *const k_comment[] = { "Comment", "comment", NULL };
    int n = 0;
    for (int p = 0; prefixes[p] && n == 0; p++) {
        for (int i = 0; n < max; i++) {
            char probe[64];
            snprintf(probe, sizeof probe, "%s.%d", prefixes[p], i);
            if (!json_has(&doc, probe))
                break;
            h_deal_t *d = &deals[n];
            memset(d, 0, sizeof *d);
            int64_t v;
            if (h_deal_i64_(&doc, prefixes[p], i, k_ticket, &v) == 0)
                d->ticket = (uint64_t) v;
            if (h_deal_i64_(&doc, prefixes[p], i, k_login, &v) == 0)
                d->login = (uint64_t) v;
            const char *s = h_deal_field_(&doc, prefixes[p], i, k_profit);
            if (s) /* money is decimal text; a JSON number is left empty and never matches */
                snprintf(d->profit, sizeof d->profit, "%s", s);
            s = h_deal_field_(&doc, prefixes[p], i, k_comment);
            if (s)
                snprintf(d->comment, sizeof d->comment, "%s", s);
            n++;
        }
    }
    bson_destroy(&doc);
    return n;
}

/* The text of every message the Telegram simulator received, concatenated (malloc'd), or NULL. */
H_FN char *h_tg_messages(const h_env_t *env)
{
    char url[160];
    snprintf(url, sizeof url, "%s/sim/messages", env->tg_url);
    h_resp_t r = h_http("GET", url, NULL);
    if (r.status != 200) {
        h_log("GET %s -> %ld", url, r.status);
        h_resp_free(&r);
        return NULL;
    }
    return r.body;
}

/* An investor's session on kasa's panel: POST /api/login with login and the MT5 password; the
 * session cookie ("kasa_sid=...") and the CSRF token into sid and csrf (80 bytes each). 0 or -1. */
H_FN int h_investor_login(const h_env_t *env, uint64_t login, const char *password, char sid[80], char csrf[80])
{
    char body[300], cookie[300] = "";
    snprintf(body, sizeof body, "{\"login\":\"%llu\",\"password\":\"%s\"}", (unsigned long long) login, password);
    h_cresp_t r = h_call(env->kasa_url, "POST", "/api/login", NULL, NULL, body, NULL);
    h_header(&r, "Set-Cookie", cookie, sizeof cookie);
    const char *v = strstr(cookie, "kasa_sid=");
    snprintf(sid, 80, "kasa_sid=%.64s", v ? v + 9 : "");
    csrf[0] = '\0';
    h_json_str(r.body, "csrf", csrf, 80);
    int ok = r.status == 200 && v && csrf[0];
    h_cresp_free(&r);
    return ok ? 0 : -1;
}

/* The newest message in the Telegram simulator whose text holds needle (and needle2, unless NULL):
 * its id (0 if none), its text and its first row's callback_data ("null" for none, two of them
 * separated by a space) into the buffers (may be NULL). */
H_FN long long h_tg_find(const h_env_t *env, const char *needle, const char *needle2, char *text, size_t tlen,
                         char *markup, size_t mlen)
{
    char *all = h_tg_messages(env);
    bson_t doc;
    char perr[64];
    long long found = 0;
    if (all && json_parse(all, strlen(all), &doc, perr, sizeof perr) == 0) {
        for (int i = 0; i < 10000; i++) {
            char path[96];
            snprintf(path, sizeof path, "messages.%d.text", i);
            const char *t = json_get_str(&doc, path);
            if (!t)
                break;
            if (!strstr(t, needle) || (needle2 && !strstr(t, needle2)))
                continue;
            int64_t id = 0;
            snprintf(path, sizeof path, "messages.%d.message_id", i);
            json_get_i64(&doc, path, &id);
            found = id;
            if (text)
                snprintf(text, tlen, "%s", t);
            if (markup) {
                snprintf(path, sizeof path, "messages.%d.reply_markup.inline_keyboard.0.0.callback_data", i);
                const char *d0 = json_get_str(&doc, path);
                snprintf(path, sizeof path, "messages.%d.reply_markup.inline_keyboard.0.1.callback_data", i);
                const char *d1 = json_get_str(&doc, path);
                snprintf(markup, mlen, "%s %s", d0 ? d0 : "null", d1 ? d1 : "null");
            }
        }
        bson_destroy(&doc);
    }
    free(all);
    return found;
}

/* Waits until a message holds both needles (n2 may be NULL); its id, or 0. */
H_FN long long h_tg_wait(const h_env_t *env, const char *n1, const char *n2, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        long long id = h_tg_find(env, n1, n2, NULL, 0, NULL, 0);
        if (id)
            return id;
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(50);
    }
}

/* A user presses the button with data on message mid. The HTTP status. */
H_FN long h_tg_press(const h_env_t *env, int64_t user, long long mid, const char *data)
{
    char body[300];
    snprintf(body, sizeof body, "{\"user_id\":%lld,\"first_name\":\"T\",\"message_id\":%lld,\"data\":\"%s\"}",
             (long long) user, mid, data);
    return h_sim_post(env->tg_url, "/sim/press", body);
}

/* Waits until every press is answered; then the answer of the last press into buf. 0 or -1. */
H_FN int h_tg_wait_answer(const h_env_t *env, char *buf, size_t len, int timeout_ms)
{
    char url[160];
    snprintf(url, sizeof url, "%s/sim/presses", env->tg_url);
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        h_resp_t r = h_http("GET", url, NULL);
        int done = r.body && !strstr(r.body, "\"answered\":false");
        if (done) {
            const char *last = strrchr(r.body, '{');
            const char *a = last ? strstr(last, "\"answer\":\"") : NULL;
            snprintf(buf, len, "%.*s", a ? (int) strcspn(a + 10, "\"") : 0, a ? a + 10 : "");
        }
        h_resp_free(&r);
        if (done)
            return 0;
        if (h_now_ms() >= end)
            return -1;
        h_sleep_ms(50);
    }
}

/* Lines of `kasa journal dump` holding both needles (n2 may be NULL). */
H_FN int h_dump_count(h_env_t *env, const char *n1, const char *n2)
{
    char *out = NULL;
    h_kasa_cmd(env, &out, "journal", "dump", env->journal, NULL);
    int n = 0;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"))
        n += strstr(line, n1) && (!n2 || strstr(line, n2));
    free(out);
    return n;
}

/* Occurrences of needle in kasa's log. */
H_FN int h_log_count(const h_env_t *env, const char *needle)
{
    char *log = h_read_file(env->kasa_log, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* ---- reading the journal -------------------------------------------------------------------- */

typedef struct {
    uint64_t records;        /* every record in the journal */
    int state;               /* tx's latest deposit state (-1: never seen) */
    int credited;            /* records moving tx to CREDITED */
    int attempts;            /* CREDIT_ATTEMPT records of tx */
    int seen[DEPOSIT_STATE_COUNT]; /* records moving tx into each state */
    uint64_t login;          /* the login of tx's latest record that had one */
    int64_t credit_minor;    /* tx's credit (from LOCKED/CREDITED) */
    char reason[160];        /* tx's latest reason */
    char ref[32];            /* tx's MT5 comment reference (from its credit attempts) */
} h_jinfo_t;

/* Scans the journal in dir (open or closed; a torn tail is read as the end). tx may be NULL to
 * count records only. Returns 0, or -1 if the journal could not be read. */
H_FN int h_journal_info(const char *dir, const char *tx, h_jinfo_t *info)
{
    memset(info, 0, sizeof *info);
    info->state = -1;
    char err[256];
    journal_reader_t *rd = journal_reader_open(dir, 1, err, sizeof err);
    if (!rd)
        return -1;
    journal_entry_t e;
    record_t *r = malloc(sizeof *r);
    int rc;
    while ((rc = journal_reader_next(rd, &e)) == 1) {
        info->records++;
        if (!tx)
            continue;
        if (record_decode(e.payload, e.len, r, err, sizeof err) != 0)
            continue;
        if (strcmp(r->tx_id, tx) != 0)
            continue;
        if (r->kind == RECORD_CREDIT_ATTEMPT) {
            info->attempts++;
            snprintf(info->ref, sizeof info->ref, "%s", r->ref);
        }
        if (r->kind != RECORD_DEPOSIT)
            continue;
        info->state = (int) r->to;
        if (r->to < DEPOSIT_STATE_COUNT && r->from != r->to)
            info->seen[r->to]++;
        if (r->to == DEPOSIT_CREDITED && r->from != r->to)
            info->credited++;
        if (r->login)
            info->login = r->login;
        if (r->credit_minor)
            info->credit_minor = r->credit_minor;
        if (r->reason[0])
            snprintf(info->reason, sizeof info->reason, "%s", r->reason);
    }
    free(r);
    journal_reader_destroy(&rd);
    return 0;
}

/* The number of records in the journal (0 if it cannot be read). */
H_FN uint64_t h_journal_records(const char *dir)
{
    h_jinfo_t info;
    if (h_journal_info(dir, NULL, &info) != 0)
        return 0;
    return info.records;
}

/* Waits up to timeout_ms for tx to reach state (CREDITED is also met by NOTIFIED, which follows it).
 * Returns state once reached, else the latest state seen (-1: never seen). */
H_FN int h_wait_state(const h_env_t *env, const char *tx, int state, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    h_jinfo_t info;
    for (;;) {
        h_journal_info(env->journal, tx, &info);
        if (info.state == state)
            return state;
        if (state == DEPOSIT_CREDITED && info.state == DEPOSIT_NOTIFIED)
            return DEPOSIT_CREDITED; /* passed through it */
        if (h_now_ms() >= end)
            return info.state;
        h_sleep_ms(20);
    }
}

/* Formats minor units with 2 decimals: 24950 -> "249.50". */
H_FN void h_minor2(int64_t minor, char *buf, size_t len)
{
    snprintf(buf, len, "%s%" PRId64 ".%02" PRId64, minor < 0 ? "-" : "", (minor < 0 ? -minor : minor) / 100,
             (minor < 0 ? -minor : minor) % 100);
}

/* 1 if the decimal text a equals the amount minor/100 (trailing zeros ignored: "249.5" == 24950). */
H_FN int h_amount_eq(const char *a, int64_t minor)
{
    if (!a || !*a)
        return 0;
    int neg = 0;
    if (*a == '-') {
        neg = 1;
        a++;
    }
    int64_t whole = 0, frac = 0;
    int fd = 0;
    const char *p = a;
    while (*p >= '0' && *p <= '9')
        whole = whole * 10 + (*p++ - '0');
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (fd < 2) {
                frac = frac * 10 + (*p - '0');
                fd++;
            } else if (*p != '0')
                return 0;
            p++;
        }
    }
    if (*p)
        return 0;
    while (fd < 2) {
        frac *= 10;
        fd++;
    }
    int64_t v = whole * 100 + frac;
    return (neg ? -v : v) == minor;
}

/* How many balance deals on login have amount minor (2 digits); *total (may be NULL) gets the number
 * of deals on login (-1 if the simulator could not be read). */
H_FN int h_deals_of(const h_env_t *env, uint64_t login, int64_t minor, int *total)
{
    enum { H_MAX_DEALS = 4096 };   /* a soak makes hundreds of deals on one login */
    h_deal_t *deals = calloc(H_MAX_DEALS, sizeof *deals);
    int n = deals ? h_mt5_deals(env, login, deals, H_MAX_DEALS) : -1;
    if (total)
        *total = n;
    int match = 0;
    for (int i = 0; i < n; i++)
        if (h_amount_eq(deals[i].profit, minor))
            match++;
    free(deals);
    return match;
}

/* A deposit of amount token_id (on TRON) to address, Completed with 20 of 20 confirmations: the
 * usual shape a test hands to h_sim_deposit or h_webhook_body. */
H_FN h_tx_t h_tx(const char *address, const char *amount, const char *token_id)
{
    h_tx_t tx;
    memset(&tx, 0, sizeof tx);
    snprintf(tx.address, sizeof tx.address, "%s", address);
    snprintf(tx.amount, sizeof tx.amount, "%s", amount);
    snprintf(tx.token_id, sizeof tx.token_id, "%s", token_id);
    snprintf(tx.chain_id, sizeof tx.chain_id, "TRON");
    snprintf(tx.status, sizeof tx.status, "Completed");
    tx.confirmations = 20;
    tx.threshold = 20;
    return tx;
}

#endif
