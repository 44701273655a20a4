/* bench_history.c — a long history: N finished deposits already in the journal and its snapshots,
 * then a real `kasa serve` started on it. Prints how long the start takes until a webhook is
 * answered (a repeat of the oldest deposit, which must get 200: recognised, nothing moved), the
 * resident memory when idle, and the webhook acknowledgement latency at a steady rate while
 * snapshots are being written.
 *
 * The history is built directly (records journaled in bulk, no HTTP): one NOTIFIED record per
 * deposit, and a snapshot every KASA_BENCH_CHUNK deposits through checkpoint_write — the same code
 * the running kasa uses — so the finished deposits end in the index of finished deposits.
 *
 *   KASA_BENCH_FINISHED=N      finished deposits (default 200000; the targets name 1000000 and 10000000)
 *   KASA_BENCH_CHUNK=C         deposits between the snapshots while building (default 500000)
 *   KASA_BENCH_ACK_RATE=R      webhooks per second in the latency phase (default 2000)
 *   KASA_BENCH_ACK_S=S         seconds of it (default 6); a snapshot every R records meanwhile
 *   KASA_BENCH_SNAPSHOT_EVERY=K  a snapshot every K records instead (0: none, to compare against)
 *   KASA_BENCH_FINISH_TAIL=T   deposits finished after the history's last snapshot (default K/2), so
 *                              the first snapshot of the latency phase moves them to the index, as a
 *                              running kasa's snapshots move the deposits finished since the last one
 *                              (the acknowledged webhooks are Confirming: they never finish); 0: none
 *   KASA_BENCH_REUSE=1         keep the built history in KASA_BENCH_DIR and start from it next time
 *   KASA_BENCH_KEEP=1          keep the run's copy (its kasa.env and kasa.log) too
 *   KASA_BENCH_SLOW_MS=M       print each acknowledgement that took M ms or more, with when it was sent
 * Needs KASA_BIN (tests/bench/run.sh sets it). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/checkpoint.h"
#include "actors/cobo_auth.h"
#include "journal/journal.h"
#include "schema/config.h"
#include "schema/record.h"

#define SEED_COBO "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define SEED_API  "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
#define LOGINS    50000   /* the deposits spread over this many MT5 logins */

static cobo_signer_t *s_signer;
static char s_url[160];

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double s_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static long s_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : dflt;
}

static void s_tx_id(long i, char *out, size_t cap)
{
    snprintf(out, cap, "hist-%012ld", i);
}

/* ---- building the history ------------------------------------------------------------------- */

/* Journals deposit i of the history, finished (one NOTIFIED record). Its LSN, or 0. */
static uint64_t s_journal_finished(journal_t *j, long i)
{
    char err[600];
    record_t r;
    uint64_t last = 0;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = 1700000000000LL + i * 1000;
    s_tx_id(i, r.tx_id, sizeof r.tx_id);
    r.event = DEPOSIT_EV_NOTICE_SENT;
    r.from = DEPOSIT_NONE;   /* one record per deposit: from nothing to its end */
    r.to = DEPOSIT_NOTIFIED;
    snprintf(r.status, sizeof r.status, "Completed");
    r.confirmations = r.threshold = 20;
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.chain_id, sizeof r.chain_id, "TRON");
    snprintf(r.address, sizeof r.address, "THist%028ld", i % LOGINS);
    snprintf(r.amount, sizeof r.amount, "%ld.%02ld", 10 + i % 990, i % 100);
    snprintf(r.tx_hash, sizeof r.tx_hash, "%064lx", (unsigned long) i * 2654435761ul);
    r.login = 100000 + (uint64_t) (i % LOGINS);
    r.credit_minor = (10 + i % 990) * 100 + i % 100 - 50;
    r.digits = 2;
    snprintf(r.currency, sizeof r.currency, "USD");
    r.ticket = 5000000 + (uint64_t) i;
    uint8_t *buf = NULL;
    size_t len;
    if (record_encode(&r, &buf, &len, err, sizeof err) != 0 || !(last = journal_submit(j, buf, len))) {
        fprintf(stderr, "bench_history: cannot journal deposit %ld: %s\n", i, err);
        last = 0;
    }
    free(buf);
    return last;
}

static int s_build(const char *dir, long n, long chunk)
{
    char err[600];
    config_t *cfg = calloc(1, sizeof *cfg);
    snprintf(cfg->journal_dir, sizeof cfg->journal_dir, "%.200s", dir);
    cfg->max_deposits = 1000000;
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    if (!j) {
        fprintf(stderr, "bench_history: %s\n", err);
        return -1;
    }
    double t0 = s_now(), snap_s = 0;
    uint64_t last = 0;
    int snaps = 0;
    for (long i = 0; i < n; i++) {
        if (!(last = s_journal_finished(j, i)))
            return -1;
        if ((i + 1) % 65536 == 0 && journal_wait(j, last) != 0)
            return -1;
        if ((i + 1) % chunk == 0 || i + 1 == n) {
            if (journal_wait(j, last) != 0)
                return -1;
            double s0 = s_now();
            if (checkpoint_write(dir, cfg, last, NULL, err, sizeof err) != 0) {
                fprintf(stderr, "bench_history: snapshot at %llu: %s\n", (unsigned long long) last, err);
                return -1;
            }
            snap_s += s_now() - s0;
            snaps++;
        }
    }
    journal_destroy(&j);
    free(cfg);
    printf("built %ld finished deposits in %.1f s (%d snapshots, %.1f s of them)\n", n, s_now() - t0, snaps, snap_s);
    return 0;
}

/* Journals deposits from .. to - 1 of the history, finished after its last snapshot (kasa's first
 * snapshot then moves them to the index of finished deposits, as a running kasa's snapshots do with
 * the deposits finished since the one before). Into the run's copy: the kept history is unchanged.
 * 0 or -1. */
static int s_finish_tail(const char *dir, long from, long to)
{
    char err[600];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    if (!j) {
        fprintf(stderr, "bench_history: %s\n", err);
        return -1;
    }
    uint64_t last = 0;
    for (long i = from; i < to; i++)
        if (!(last = s_journal_finished(j, i)))
            return -1;
    int rc = last && journal_wait(j, last) != 0 ? -1 : 0;
    journal_destroy(&j);
    return rc;
}

/* ---- kasa serve ------------------------------------------------------------------------------ */

static int s_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof a) != 0 || getsockname(s, (struct sockaddr *) &a, &l) != 0)
        return -1;
    close(s);
    return ntohs(a.sin_port);
}

static pid_t s_serve(const char *dir, const char *config, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("KASA_LOG_LEVEL", "info", 1);   /* the bench's own quiet does not apply to kasa */
        const char *bin = getenv("KASA_BIN");
        execl(bin, bin, "serve", "--config", config, (char *) NULL);
        _exit(127);
    }
    (void) dir;
    return pid;
}

/* A line of /proc/PID/status ("VmRSS:", "RssAnon:", "RssFile:") in KiB, or -1. */
static long s_status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0)
            kib = atol(line + klen);
    if (f)
        fclose(f);
    return kib;
}

static long s_rss_kib(pid_t pid)
{
    return s_status_kib(pid, "VmRSS:");
}

static size_t s_sink(char *p, size_t sz, size_t n, void *arg)
{
    (void) p, (void) arg;
    return sz * n;
}

/* POSTs one signed webhook for tx_id (Completed if completed, else Confirming) on c. The HTTP
 * status, or 0 if nothing answered. */
static long s_post(CURL *c, const char *tx_id, long i, int completed)
{
    char body[1024], sig[COBO_SIG_HEX_LEN + 1], h_ts[64], h_sig[200];
    int len = snprintf(body, sizeof body,
                       "{\"event_id\":\"h-%ld\",\"type\":\"wallets.transaction.%s\",\"data\":{"
                       "\"data_type\":\"Transaction\",\"transaction_id\":\"%s\",\"type\":\"Deposit\","
                       "\"status\":\"%s\",\"chain_id\":\"TRON\",\"token_id\":\"TRON_USDT\","
                       "\"destination\":{\"address\":\"THist%028ld\",\"amount\":\"10.00\"},"
                       "\"confirmed_num\":%d,\"confirming_threshold\":20,\"updated_timestamp\":1764140000000}}",
                       i, completed ? "succeeded" : "updated", tx_id, completed ? "Completed" : "Confirming",
                       i % LOGINS, completed ? 20 : 1);
    snprintf(h_ts, sizeof h_ts, "Biz-Timestamp: %ld", 1764140000000L + i);
    cobo_sign_response(s_signer, body, (size_t) len, h_ts + 15, sig);
    snprintf(h_sig, sizeof h_sig, "Biz-Resp-Signature: %s", sig);
    struct curl_slist *hl = curl_slist_append(NULL, h_ts);
    hl = curl_slist_append(hl, h_sig);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, s_url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hl);
    return code;
}

/* ---- acknowledgements at a steady rate ------------------------------------------------------- */

typedef struct {
    int id, nthreads;
    double rate, seconds, t0;
    double *lat_ms;      /* this sender's latencies */
    double *sent_wall;   /* and when each was sent (Unix seconds, the clock kasa's log lines carry) */
    long n, bad;
} s_sender_t;

static void *s_sender(void *arg)
{
    s_sender_t *s = arg;
    CURL *c = curl_easy_init();
    double every = (double) s->nthreads / s->rate;
    long cap = (long) (s->rate * s->seconds / s->nthreads) + 16;
    s->lat_ms = malloc((size_t) cap * sizeof *s->lat_ms);
    s->sent_wall = malloc((size_t) cap * sizeof *s->sent_wall);
    for (long k = 0; k < cap; k++) {
        double due = s->t0 + (double) k * every + (double) s->id * every / s->nthreads;
        if (due > s->t0 + s->seconds)
            break;
        double now = s_now();
        if (due > now) {
            struct timespec ts = { 0, (long) ((due - now) * 1e9) };
            nanosleep(&ts, NULL);
        }
        char tx[48];
        long i = (long) s->id * 100000000L + k;
        snprintf(tx, sizeof tx, "ack-%d-%ld", s->id, k);
        double a = s_now();
        s->sent_wall[s->n] = s_wall();
        long code = s_post(c, tx, i, 0);
        s->lat_ms[s->n++] = (s_now() - a) * 1000.0;   /* from the send to the answer */
        if (code != 201)
            s->bad++;
    }
    curl_easy_cleanup(c);
    return NULL;
}

static int s_dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* The times snapshots were being written, from kasa's log: each event=snapshot.written line's time
 * (its end) less its took_ms. Up to cap windows into from[]/to[] (Unix seconds); how many. */
static int s_snapshot_windows(const char *log, double *from, double *to, int cap)
{
    FILE *f = fopen(log, "r");
    char line[2048];
    int n = 0;
    while (f && n < cap && fgets(line, sizeof line, f)) {
        const char *took = strstr(line, " took_ms=");
        struct tm tm = { 0 };
        int ms = 0;
        if (!strstr(line, "event=snapshot.written") || !took ||
            sscanf(line, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec, &ms) != 7)
            continue;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        to[n] = (double) timegm(&tm) + ms / 1000.0;
        from[n] = to[n] - atof(took + 9) / 1000.0;
        n++;
    }
    if (f)
        fclose(f);
    return n;
}

static int s_count_log(const char *log, const char *what)
{
    FILE *f = fopen(log, "r");
    char line[2048];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return n;
}

int main(void)
{
    long n = s_env_long("KASA_BENCH_FINISHED", 200000), chunk = s_env_long("KASA_BENCH_CHUNK", 500000);
    double rate = (double) s_env_long("KASA_BENCH_ACK_RATE", 2000), ack_s = (double) s_env_long("KASA_BENCH_ACK_S", 6);
    int reuse = s_env_long("KASA_BENCH_REUSE", 0) != 0;
    long snap_every = s_env_long("KASA_BENCH_SNAPSHOT_EVERY", (long) rate);
    long tail = s_env_long("KASA_BENCH_FINISH_TAIL", snap_every / 2);   /* the first snapshot: within the load */
    const char *bin = getenv("KASA_BIN"), *base = getenv("KASA_BENCH_DIR");
    if (n < 1 || chunk < 1 || rate < 1 || ack_s < 0 || tail < 0 || !bin || !*bin) {
        fprintf(stderr, "bench_history: needs KASA_BIN, and positive KASA_BENCH_FINISHED/_CHUNK/_ACK_RATE\n");
        return 2;
    }
    setenv("KASA_LOG_LEVEL", "error", 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_signer = cobo_signer_new(SEED_COBO);
    char dir[200], work[220], config[240], log[240], cmd[1400];
    if ((size_t) snprintf(dir, sizeof dir, "%s/history-%ld", base && *base ? base : "/tmp", n) >= sizeof dir) {
        fprintf(stderr, "bench_history: KASA_BENCH_DIR is too long\n");
        return 2;
    }
    snprintf(work, sizeof work, "%s.run", dir);
    struct stat st;
    char marker[240];
    snprintf(marker, sizeof marker, "%s/built", dir);
    if (!reuse || stat(marker, &st) != 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
        if (system(cmd) != 0 || s_build(dir, n, chunk) != 0)
            return 1;
        FILE *m = fopen(marker, "w");
        if (m)
            fclose(m);
    } else {
        printf("reusing the history of %ld finished deposits in %s\n", n, dir);
    }
    /* Each run works on a copy: the files kasa never changes in place (stores, indexes, snapshots,
     * every segment but the last) hard-linked, the last segment (kasa appends to it) copied. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -al '%s' '%s' && cd '%s' && last=$(ls *.seg | tail -1) && "
             "rm -f \"$last\" LOCK && cp -a '%s'/\"$last\" .", work, dir, work, work, dir);
    if (system(cmd) != 0 || (tail && s_finish_tail(work, n, n + tail) != 0))
        return 1;
    snprintf(config, sizeof config, "%s/kasa.env", work);
    snprintf(log, sizeof log, "%s/kasa.log", work);
    int port = s_free_port(), hport = s_free_port();
    char pub[COBO_KEY_HEX_LEN + 1], api_pub[COBO_KEY_HEX_LEN + 1];
    snprintf(pub, sizeof pub, "%s", cobo_signer_pubkey_hex(s_signer));
    cobo_pubkey_from_seed(SEED_API, api_pub);
    FILE *f = fopen(config, "w");
    if (!f)
        return 1;
    fprintf(f, "KASA_LISTEN=127.0.0.1:%d\nKASA_WEBHOOK_LISTEN=127.0.0.1:%d\nKASA_JOURNAL_DIR=%s\n", port, hport, work);
    fprintf(f, "KASA_MONITOR=tcp://127.0.0.1:%d\nKASA_METRICS_LISTEN=off\nKASA_CATCHUP_INTERVAL=0\nKASA_LOG_LEVEL=info\n", s_free_port());
    fprintf(f, "COBO_API_URL=http://127.0.0.1:9/v2\nCOBO_API_KEY=%s\nCOBO_API_SECRET=%s\nCOBO_WEBHOOK_PUBKEY=%s\n",
            api_pub, SEED_API, pub);
    fprintf(f, "COBO_WALLET_ID=b0b0b0b0-0000-4000-8000-000000000001\nKASA_CHAINS=TRON_USDT,TRON\n");
    fprintf(f, "MT5_URL=http://127.0.0.1:9\nMT5_LOGIN=1000\nMT5_PASSWORD=x\nTELEGRAM_API_URL=http://127.0.0.1:9\n");
    fprintf(f, "TELEGRAM_BOT_TOKEN=1:x\nTELEGRAM_CHAT_ID=-1\nKASA_TOKEN_TRON_USDT=1:0.5:1\nKASA_TOKEN_TRON=0.1:0:1\n");
    fprintf(f, "KASA_SNAPSHOT_EVERY_RECORDS=%ld\nKASA_SNAPSHOT_EVERY_S=0\n", snap_every);
    fchmod(fileno(f), 0600);
    fclose(f);
    snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d/cobo/webhook", hport);

    /* start to the first answered webhook: a repeat of the oldest deposit */
    char oldest[48];
    s_tx_id(0, oldest, sizeof oldest);
    CURL *c = curl_easy_init();
    double t0 = s_now();
    pid_t pid = s_serve(work, config, log);
    long code = 0;
    while ((code = s_post(c, oldest, 0, 1)) == 0 && s_now() - t0 < 60) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "bench_history: kasa exited at start; see %s\n", log);
            return 1;
        }
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
    double start_s = s_now() - t0;
    long again = s_post(c, oldest, 1, 0);   /* and its earlier, non-final webhook: a repeat too */
    curl_easy_cleanup(c);
    sleep(2);
    long rss_kib = s_rss_kib(pid);

    /* acknowledgements at a steady rate while snapshots are written */
    int snaps_before = s_count_log(log, "event=snapshot.written");
    enum { THREADS = 16 };
    s_sender_t snd[THREADS];
    pthread_t th[THREADS];
    double a0 = s_now() + 0.05;
    for (int i = 0; i < THREADS; i++) {
        snd[i] = (s_sender_t) { .id = i, .nthreads = THREADS, .rate = rate, .seconds = ack_s, .t0 = a0 };
        pthread_create(&th[i], NULL, s_sender, &snd[i]);
    }
    long total = 0, bad = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        total += snd[i].n;
        bad += snd[i].bad;
    }
    sleep(1);
    int snaps = s_count_log(log, "event=snapshot.written") - snaps_before;
    /* the acknowledgements whose request overlapped a snapshot being written, and the others: the
     * same run's two sets, so a busy machine's noise falls on both */
    double wfrom[256], wto[256];
    int nwin = s_snapshot_windows(log, wfrom, wto, 256);
    double *all = malloc((size_t) (total ? total : 1) * sizeof *all);
    double *during = malloc((size_t) (total ? total : 1) * sizeof *during);
    double *outside = malloc((size_t) (total ? total : 1) * sizeof *outside);
    long k = 0, nd = 0, no = 0;
    double slow_ms = (double) s_env_long("KASA_BENCH_SLOW_MS", 0);
    for (int i = 0; i < THREADS; i++) {
        for (long j = 0; j < snd[i].n; j++) {
            double a = snd[i].sent_wall[j], b = a + snd[i].lat_ms[j] / 1000.0;
            int in = 0;
            for (int w = 0; w < nwin && !in; w++)
                in = a <= wto[w] && b >= wfrom[w];
            all[k++] = snd[i].lat_ms[j];
            if (slow_ms > 0 && snd[i].lat_ms[j] >= slow_ms) {   /* to lay beside kasa.log (KASA_BENCH_KEEP=1) */
                time_t sec = (time_t) a;
                struct tm tm;
                gmtime_r(&sec, &tm);
                printf("slow answer: sent %02d:%02d:%06.3f, %.2f ms%s\n", tm.tm_hour, tm.tm_min,
                       tm.tm_sec + (a - (double) sec), snd[i].lat_ms[j], in ? " (a snapshot was written)" : "");
            }
            if (in)
                during[nd++] = snd[i].lat_ms[j];
            else
                outside[no++] = snd[i].lat_ms[j];
        }
        free(snd[i].lat_ms);
        free(snd[i].sent_wall);
    }
    qsort(all, (size_t) total, sizeof *all, s_dbl_cmp);
    qsort(during, (size_t) nd, sizeof *during, s_dbl_cmp);
    qsort(outside, (size_t) no, sizeof *outside, s_dbl_cmp);
    double p50 = total ? all[total / 2] : 0, p99 = total ? all[(long) ((double) total * 0.99)] : 0,
           max = total ? all[total - 1] : 0;
    double d99 = nd ? during[(long) ((double) nd * 0.99)] : 0, dmax = nd ? during[nd - 1] : 0;
    double o99 = no ? outside[(long) ((double) no * 0.99)] : 0, omax = no ? outside[no - 1] : 0;
    double wsum = 0;
    for (int w = 0; w < nwin; w++)
        wsum += wto[w] - wfrom[w];
    free(all);
    free(during);
    free(outside);
    long rss_after = s_rss_kib(pid), anon_after = s_status_kib(pid, "RssAnon:"),
         file_after = s_status_kib(pid, "RssFile:");
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);

    printf("a history of %ld finished deposits (index and stores: %s/finished)\n", n, dir);
    printf("%-46s %s\n", "figure", "value");
    printf("%-46s %.3f s  (webhook: %ld, want 200)\n", "start to first answered webhook (oldest repeat)", start_s,
           code);
    printf("%-46s %ld  (want 200)\n", "its earlier Confirming webhook again", again);
    printf("%-46s %.1f MiB\n", "RSS idle after start", (double) rss_kib / 1024.0);
    printf("%-46s %.0f/s for %.0f s, %d snapshots written meanwhile (the first moving %ld finished deposits)\n",
           "acknowledgement load", rate, ack_s, snaps, tail);
    printf("%-46s p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%ld sent, %ld not 201)\n", "ack latency", p50, p99, max,
           total, bad);
    printf("%-46s p99 %.2f ms  max %.2f ms  (%ld answers; snapshots took %.0f ms in all)\n",
           "  of them while a snapshot was written", d99, dmax, nd, wsum * 1000.0);
    printf("%-46s p99 %.2f ms  max %.2f ms  (%ld answers)\n", "  of them while none was", o99, omax, no);
    printf("%-46s %.1f MiB  (anonymous %.1f, mapped files %.1f)\n", "RSS after the load", (double) rss_after / 1024.0,
           (double) anon_after / 1024.0, (double) file_after / 1024.0);
    if (!s_env_long("KASA_BENCH_KEEP", 0)) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        if (system(cmd) != 0)
            return 1;
    }
    if (!reuse) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    cobo_signer_destroy(&s_signer);
    curl_global_cleanup();
    return code == 200 && again == 200 && bad == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
