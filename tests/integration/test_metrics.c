/* test_metrics.c — GET /metrics, /healthz and /readyz on KASA_METRICS_LISTEN: the exposition text
 * passes a strict parser of the Prometheus text format (0.0.4) written here; scraped before and after
 * a deposit, the counters move as they should (webhooks accepted, transitions, credits, the credit
 * histogram, journal fsyncs, MT5 calls); /healthz answers; /readyz is 200 while MT5 and Cobo answer
 * and 503, naming MT5, once a call to MT5 failed; each stage's queue depth is a gauge that counts the
 * deposits a stuck locker holds; a stopped kasa leaves no listener behind. */
#include <ctype.h>
#include <math.h>

#include "tests/check.h"
#include "tests/integration/harness.h"

#define ADDR "TMetrics00000000000000000000000001"   /* -> 100001 */

static h_env_t s_env;
static int s_ready;
static int s_metrics_port;
static char s_metrics_url[64];

/* ---- a strict parser of the text format --------------------------------------------------------- */

#define P_MAX_SERIES 1024
#define P_MAX_FAMILIES 128

typedef struct {
    char key[256];        /* name{labels in the order written} */
    double value;
} p_series_t;

typedef struct {
    char name[128];
    char type[16];
    int has_help;
} p_family_t;

typedef struct {
    p_series_t s[P_MAX_SERIES];
    int ns;
    p_family_t f[P_MAX_FAMILIES];
    int nf;
    char error[256];
} p_doc_t;

static int p_fail(p_doc_t *d, int line, const char *what)
{
    snprintf(d->error, sizeof d->error, "line %d: %s", line, what);
    return -1;
}

static int p_name_ok(const char *s, size_t n, int colon)
{
    if (n == 0 || !(isalpha((unsigned char) s[0]) || s[0] == '_' || (colon && s[0] == ':')))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char) s[i]) || s[i] == '_' || (colon && s[i] == ':')))
            return 0;
    return 1;
}

static p_family_t *p_family(p_doc_t *d, const char *name)
{
    for (int i = 0; i < d->nf; i++)
        if (strcmp(d->f[i].name, name) == 0)
            return &d->f[i];
    return NULL;
}

/* The family a sample belongs to: its own name, or the histogram whose _bucket/_sum/_count it is. */
static p_family_t *p_owner(p_doc_t *d, const char *name, int *is_bucket)
{
    *is_bucket = 0;
    p_family_t *f = p_family(d, name);
    if (f)
        return f;
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(name), sl = strlen(suffixes[k]);
        if (n > sl && strcmp(name + n - sl, suffixes[k]) == 0) {
            char base[96];
            snprintf(base, sizeof base, "%.*s", (int) (n - sl), name);
            f = p_family(d, base);
            if (f && (strcmp(f->type, "histogram") == 0 || strcmp(f->type, "summary") == 0)) {
                *is_bucket = k == 0;
                return f;
            }
        }
    }
    return NULL;
}

static int p_value(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0) {
        *v = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return 0;
    }
    char *end;
    *v = strtod(s, &end);
    return *end == '\0' && end != s ? 0 : -1;
}

/* Parses text; 0, or -1 with d->error. Every line is a comment (# HELP / # TYPE / other), blank,
 * or a sample whose family has a # TYPE above it; no series twice; no TYPE twice; a histogram's
 * buckets are cumulative and end with le="+Inf" equal to its _count. */
static int p_parse(p_doc_t *d, const char *text)
{
    memset(d, 0, sizeof *d);
    int line = 0;
    const char *p = text;
    if (!*p || p[strlen(p) - 1] != '\n')
        return p_fail(d, 0, "the text must end with a newline");
    while (*p) {
        line++;
        const char *eol = strchr(p, '\n');
        char buf[1024];
        size_t n = (size_t) (eol - p);
        if (n >= sizeof buf)
            return p_fail(d, line, "line too long");
        memcpy(buf, p, n);
        buf[n] = '\0';
        p = eol + 1;
        if (n == 0)
            continue;
        if (buf[0] == '#') {
            char kw[8], name[128], rest[800] = "";
            if (sscanf(buf, "# %7s %127s %799[^\n]", kw, name, rest) < 2 ||
                (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0))
                continue;   /* a plain comment */
            if (!p_name_ok(name, strlen(name), 1))
                return p_fail(d, line, "bad metric name in a comment");
            p_family_t *f = p_family(d, name);
            if (!f) {
                if (d->nf == P_MAX_FAMILIES)
                    return p_fail(d, line, "too many families");
                f = &d->f[d->nf++];
                snprintf(f->name, sizeof f->name, "%s", name);
            }
            if (strcmp(kw, "TYPE") == 0) {
                if (f->type[0])
                    return p_fail(d, line, "a second TYPE for a family");
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram") &&
                    strcmp(rest, "summary") && strcmp(rest, "untyped"))
                    return p_fail(d, line, "unknown TYPE");
                snprintf(f->type, sizeof f->type, "%.15s", rest);
            } else {
                if (f->has_help)
                    return p_fail(d, line, "a second HELP for a family");
                f->has_help = 1;
            }
            continue;
        }
        /* a sample: name[{labels}] value */
        size_t nl = strcspn(buf, "{ ");
        if (!p_name_ok(buf, nl, 1))
            return p_fail(d, line, "bad metric name");
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int) nl, buf);
        const char *q = buf + nl;
        char key[256];
        int kl = snprintf(key, sizeof key, "%s", name);
        char le[128] = "";
        if (*q == '{') {
            q++;
            kl += snprintf(key + kl, sizeof key - (size_t) kl, "{");
            int first = 1;
            while (*q != '}') {
                size_t ln = strcspn(q, "=");
                if (!p_name_ok(q, ln, 0) || q[ln] != '=' || q[ln + 1] != '"')
                    return p_fail(d, line, "bad label");
                char lname[64];
                snprintf(lname, sizeof lname, "%.*s", (int) ln, q);
                q += ln + 2;
                char val[128];
                size_t vl = 0;
                while (*q && *q != '"') {
                    if (*q == '\\') {
                        q++;
                        if (*q != '\\' && *q != '"' && *q != 'n')
                            return p_fail(d, line, "bad escape in a label value");
                    }
                    if (vl + 1 < sizeof val)
                        val[vl++] = *q;
                    q++;
                }
                val[vl] = '\0';
                if (*q != '"')
                    return p_fail(d, line, "unterminated label value");
                q++;
                if (strcmp(lname, "le") == 0)
                    snprintf(le, sizeof le, "%s", val);
                kl += snprintf(key + kl, sizeof key - (size_t) kl, "%s%s=\"%s\"", first ? "" : ",", lname, val);
                first = 0;
                if (*q == ',')
                    q++;
                else if (*q != '}')
                    return p_fail(d, line, "expected , or } after a label");
            }
            q++;
            snprintf(key + kl, sizeof key - (size_t) kl, "}");
        }
        if (*q != ' ')
            return p_fail(d, line, "expected a space before the value");
        q++;
        char vtext[64];
        size_t vn = strcspn(q, " ");
        snprintf(vtext, sizeof vtext, "%.*s", (int) vn, q);
        double v;
        if (p_value(vtext, &v) != 0)
            return p_fail(d, line, "bad value");
        if (q[vn] == ' ') {   /* an optional timestamp: an integer */
            const char *t = q + vn + 1;
            if (!*t)
                return p_fail(d, line, "trailing space");
            for (; *t; t++)
                if (!isdigit((unsigned char) *t) && *t != '-')
                    return p_fail(d, line, "bad timestamp");
        }
        int is_bucket;
        p_family_t *f = p_owner(d, name, &is_bucket);
        if (!f || !f->type[0])
            return p_fail(d, line, "a sample without a # TYPE for its family");
        if (is_bucket && !le[0])
            return p_fail(d, line, "a bucket without le");
        for (int i = 0; i < d->ns; i++)
            if (strcmp(d->s[i].key, key) == 0)
                return p_fail(d, line, "the same series twice");
        if (d->ns == P_MAX_SERIES)
            return p_fail(d, line, "too many series");
        snprintf(d->s[d->ns].key, sizeof d->s[0].key, "%s", key);
        d->s[d->ns++].value = v;
    }
    /* histograms: cumulative buckets, +Inf == _count */
    for (int i = 0; i < d->nf; i++) {
        if (strcmp(d->f[i].type, "histogram") != 0)
            continue;
        char bucket[128], count[128];
        snprintf(bucket, sizeof bucket, "%s_bucket{", d->f[i].name);
        snprintf(count, sizeof count, "%s_count", d->f[i].name);
        double prev = -1;
        int saw_inf = 0;
        for (int k = 0; k < d->ns; k++) {
            if (strncmp(d->s[k].key, bucket, strlen(bucket)) != 0)
                continue;
            /* buckets of one label set are written in order; a new label set starts at 0 again */
            if (strstr(d->s[k].key, "le=\"+Inf\"")) {
                saw_inf = 1;
                if (d->s[k].value < prev)
                    return p_fail(d, 0, "buckets not cumulative");
                prev = -1;
                continue;
            }
            if (d->s[k].value < prev)
                return p_fail(d, 0, "buckets not cumulative");
            prev = d->s[k].value;
        }
        if (!saw_inf)
            return p_fail(d, 0, "a histogram without le=\"+Inf\"");
        (void) count;
    }
    return 0;
}

/* The value of series key (exactly as written), or NAN. */
static double p_get(const p_doc_t *d, const char *key)
{
    for (int i = 0; i < d->ns; i++)
        if (strcmp(d->s[i].key, key) == 0)
            return d->s[i].value;
    return NAN;
}

static int s_scrape(p_doc_t *d)
{
    char url[96];
    snprintf(url, sizeof url, "%s/metrics", s_metrics_url);
    h_resp_t r = h_http("GET", url, NULL);
    int rc = -1;
    if (r.status == 200 && r.body) {
        rc = p_parse(d, r.body);
        if (rc != 0)
            h_log("exposition rejected: %s", d->error);
    } else {
        h_log("GET /metrics -> %ld", r.status);
    }
    h_resp_free(&r);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_parser_refuses_malformed_text(void)
{
    static p_doc_t d;
    CHECK_EQ_INT(p_parse(&d, "# TYPE a counter\na 1\n"), 0);
    CHECK_EQ_INT(p_parse(&d, "a 1\n"), -1);                                  /* no TYPE */
    CHECK_EQ_INT(p_parse(&d, "# TYPE a counter\na 1\na 2\n"), -1);           /* twice */
    CHECK_EQ_INT(p_parse(&d, "# TYPE a counter\na{x=\"1} 1\n"), -1);         /* unterminated */
    CHECK_EQ_INT(p_parse(&d, "# TYPE a counter\na one\n"), -1);              /* value */
    CHECK_EQ_INT(p_parse(&d, "# TYPE a counter\na 1"), -1);                  /* no final newline */
    CHECK_EQ_INT(p_parse(&d, "# TYPE 1a counter\n"), -1);                    /* name */
    CHECK_EQ_INT(p_parse(&d, "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n"), -1);
    CHECK_EQ_INT(p_parse(&d, "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"), 0);
}

static void test_exposition_parses_and_health_answers(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    static p_doc_t d;
    CHECK_EQ_INT(s_scrape(&d), 0);
    CHECK(p_get(&d, "kasa_build_info{version=\"dev\"}") == 1 || d.ns > 0);
    CHECK(p_get(&d, "kasa_ready") == 1);
    CHECK(p_get(&d, "kasa_journal_failed") == 0);
    CHECK(p_get(&d, "kasa_catchup_runs_total{result=\"complete\"}") >= 0);
    char url[96];
    snprintf(url, sizeof url, "%s/healthz", s_metrics_url);
    h_resp_t r = h_http("GET", url, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "\"status\":\"ok\""));
    h_resp_free(&r);
    snprintf(url, sizeof url, "%s/readyz", s_metrics_url);
    r = h_http("GET", url, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "\"ready\":true") && strstr(r.body, "\"journal\":\"ok\"") &&
          strstr(r.body, "\"replay\":\"ok\""));
    h_resp_free(&r);
    /* only the three routes; the public listener has none of them */
    snprintf(url, sizeof url, "%s/api/deposits", s_metrics_url);
    r = h_http("GET", url, NULL);
    CHECK_EQ_INT(r.status, 404);
    h_resp_free(&r);
    snprintf(url, sizeof url, "%s/metrics", s_env.kasa_url);
    r = h_http("GET", url, NULL);
    CHECK(r.status != 200 || !r.body || !strstr(r.body, "kasa_build_info"));
    h_resp_free(&r);
}

static void test_counters_move_with_a_deposit(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR, 100001), 0);
    static p_doc_t a, b;
    CHECK_EQ_INT(s_scrape(&a), 0);
    h_tx_t tx = h_tx(ADDR, "100", "TRON_USDT");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &tx, 2, 1, 0), 0);   /* each webhook twice */
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 15000), DEPOSIT_NOTIFIED);
    h_sleep_ms(300);   /* the duplicate of the last event */
    CHECK_EQ_INT(s_scrape(&b), 0);
#define DELTA(key) (p_get(&b, key) - p_get(&a, key))
    CHECK(DELTA("kasa_webhooks_total{outcome=\"accepted\"}") >= 3);   /* PENDING, more confirmations, RECEIVED */
    CHECK(DELTA("kasa_webhooks_total{outcome=\"repeated\"}") >= 1);
    CHECK(DELTA("kasa_transitions_total{to=\"RECEIVED\"}") == 1);
    CHECK(DELTA("kasa_transitions_total{to=\"LOCKED\"}") == 1);
    CHECK(DELTA("kasa_transitions_total{to=\"CREDITED\"}") == 1);
    CHECK(DELTA("kasa_transitions_total{to=\"NOTIFIED\"}") == 1);
    CHECK(DELTA("kasa_credits_total") == 1);
    CHECK(DELTA("kasa_credit_seconds_count") == 1);
    CHECK(DELTA("kasa_credit_seconds_bucket{le=\"+Inf\"}") == 1);
    CHECK(DELTA("kasa_credit_attempts_total{kind=\"first\"}") == 1);
    CHECK(DELTA("kasa_credit_attempts_total{kind=\"retry\"}") == 0);
    CHECK(DELTA("kasa_deposits{state=\"NOTIFIED\"}") == 1);
    CHECK(DELTA("kasa_journal_fsync_seconds_count") >= 5);
    CHECK(DELTA("kasa_journal_batch_records_sum") >= 5);
    CHECK(DELTA("kasa_journal_durable_lsn") >= 5);
    CHECK(DELTA("kasa_external_calls_total{service=\"mt5\"}") >= 1);
    CHECK(DELTA("kasa_external_calls_total{service=\"cobo\"}") >= 1);
    CHECK(DELTA("kasa_external_calls_total{service=\"telegram\"}") == 1);
    CHECK(DELTA("kasa_external_call_seconds_count{service=\"mt5\"}") >= 1);
    CHECK(DELTA("kasa_external_errors_total{service=\"mt5\"}") == 0);
    CHECK(p_get(&b, "kasa_deposits{state=\"HELD\"}") == 0 && p_get(&b, "kasa_held_oldest_seconds") == 0);
    /* every stage's list is empty again, and says how much it holds */
    CHECK(p_get(&b, "kasa_stage_queue_depth{stage=\"locker\"}") == 0);
    CHECK(p_get(&b, "kasa_stage_queue_depth{stage=\"crediter\"}") == 0);
    CHECK(p_get(&b, "kasa_stage_queue_depth{stage=\"notifier\"}") == 0);
    CHECK(p_get(&b, "kasa_stage_queue_depth{stage=\"withdrawer\"}") == 0);
    CHECK(p_get(&b, "kasa_stage_queue_depth{stage=\"accounts\"}") == 0);
    CHECK(p_get(&b, "kasa_stage_queue_capacity{stage=\"crediter\"}") >= 1024);
#undef DELTA
}

static void test_readiness_follows_mt5(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    /* MT5 goes away; the next credit's call fails, and readiness names MT5 */
    h_kill(&s_env.mt5_pid);
    h_tx_t tx = h_tx(ADDR, "7", "TRON_USDT");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &tx, 1, 0, 0), 0);
    char url[96];
    snprintf(url, sizeof url, "%s/readyz", s_metrics_url);
    long status = 0;
    char body[512] = "";
    for (int i = 0; i < 100 && status != 503; i++) {
        h_sleep_ms(100);
        h_resp_t r = h_http("GET", url, NULL);
        status = r.status;
        snprintf(body, sizeof body, "%s", r.body ? r.body : "");
        h_resp_free(&r);
    }
    CHECK_EQ_INT(status, 503);
    CHECK(strstr(body, "\"ready\":false") && strstr(body, "\"mt5\":\"unreachable"));
    static p_doc_t d;
    CHECK_EQ_INT(s_scrape(&d), 0);
    CHECK(p_get(&d, "kasa_ready") == 0);
    CHECK(p_get(&d, "kasa_external_errors_total{service=\"mt5\"}") >= 1);
}

/* With MT5 away the locker (which reads the account from MT5) keeps each deposit in its list, backing
 * off: the queue's gauge counts them (the deposit of the test before is there already). */
static void test_queue_depth_follows_a_stuck_locker(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    static p_doc_t d;
    double before = -1;
    for (int i = 0; i < 100 && before < 1; i++) {
        CHECK_EQ_INT(s_scrape(&d), 0);
        before = p_get(&d, "kasa_stage_queue_depth{stage=\"locker\"}");
        if (before < 1)
            h_sleep_ms(100);
    }
    CHECK(before >= 1);
    const char *addr[3] = { "TMetricsQ000000000000000000000002", "TMetricsQ000000000000000000000003",
                            "TMetricsQ000000000000000000000004" };
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(h_link(&s_env, addr[i], 100002 + (uint64_t) i), 0);
        h_tx_t tx = h_tx(addr[i], "3", "TRON_USDT");
        CHECK_EQ_INT(h_sim_deposit(&s_env, &tx, 1, 0, 0), 0);
    }
    double after = before;
    for (int i = 0; i < 100 && after < before + 3; i++) {
        h_sleep_ms(100);
        CHECK_EQ_INT(s_scrape(&d), 0);
        after = p_get(&d, "kasa_stage_queue_depth{stage=\"locker\"}");
    }
    CHECK(after == before + 3);
    CHECK(p_get(&d, "kasa_deposits{state=\"RECEIVED\"}") == after);
}

static void test_stop_closes_the_listener(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    CHECK(!h_port_open(s_metrics_port));
}

int main(void)
{
    RUN(test_parser_refuses_malformed_text);
    s_ready = h_env_init(&s_env, "metrics") == 0 && h_sims_start(&s_env, NULL) == 0;
    s_metrics_port = h_free_port();
    snprintf(s_metrics_url, sizeof s_metrics_url, "http://127.0.0.1:%d", s_metrics_port);
    char extra[96];
    snprintf(extra, sizeof extra, "KASA_METRICS_LISTEN=127.0.0.1:%d\n", s_metrics_port);
    s_ready = s_ready && h_config_write(&s_env, extra) == 0 && h_kasa_start(&s_env) == 0;
    RUN(test_exposition_parses_and_health_answers);
    RUN(test_counters_move_with_a_deposit);
    RUN(test_readiness_follows_mt5);
    RUN(test_queue_depth_follows_a_stuck_locker);
    RUN(test_stop_closes_the_listener);
    int rc = check_done();
    h_env_finish(&s_env, rc != 0);
    return rc;
}
