/* rates.c — see rates.h. One thread, one curl handle, one cache entry per symbol. */
#include "actors/rates.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/condvar.h"
#include "schema/log.h"
#include "schema/probe.h"

#define S_MAX_REPLY 65536

typedef struct {
    char symbol[24];
    money_atto_t price;        /* 0: never fetched */
    int64_t fetched_ms;        /* wall clock, recorded */
    int64_t fetched_mono_ms;   /* monotonic, for the age (a wall-clock step neither freshens nor ages it) */
    char last_error[120];      /* the last failure, "" after a success */
} s_entry_t;

struct rates_t {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    int started, kicked;
    _Atomic int stopping;          /* also read by curl's progress callback: a fetch in flight ends at once */
    int64_t last_kick_ms;          /* monotonic */
    s_entry_t entries[RATES_MAX_SYMBOLS];
    int count;
    char base_url[256];            /* KASA_RATE_URL without a trailing '/' */
    char host[64];                 /* its host[:port], for the source text */
    int64_t max_age_ms, refresh_ms;
    int64_t blocked_until_ms;      /* monotonic: the source asked us to wait (429/418 Retry-After) */
    _Atomic uint64_t generation, fetched_ok, fetched_failed;
    CURL *curl;
    jbuf_t reply;
};

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static void s_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rates_needed(const config_t *cfg)
{
    for (int i = 0; i < cfg->token_count; i++)
        if (cfg->tokens[i].live)
            return 1;
    return 0;
}

int rates_parse(const char *body, size_t len, const char *symbol, money_atto_t *price, char *why, size_t whylen)
{
    bson_t doc;
    char jerr[96];
    if (!body || json_parse(body, len, &doc, jerr, sizeof jerr) != 0) {
        snprintf(why, whylen, "answer is not JSON");
        return -1;
    }
    int rc = -1;
    const char *sym = json_get_str(&doc, "symbol"), *text = json_get_str(&doc, "price");
    char perr[96];
    if (!sym || strcmp(sym, symbol) != 0)
        snprintf(why, whylen, "answer is not for %s", symbol);
    else if (!text)
        snprintf(why, whylen, "answer has no price string");
    else if (money_parse(text, price, perr, sizeof perr) != 0)
        snprintf(why, whylen, "price unreadable: %s", perr);
    else if (*price == 0)
        snprintf(why, whylen, "price is zero");
    else
        rc = 0;
    bson_destroy(&doc);
    return rc;
}

static size_t s_on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    rates_t *self = arg;
    size_t n = size * nmemb;
    if (self->reply.len + n > S_MAX_REPLY)
        return 0;
    jbuf_add(&self->reply, ptr, n);
    return n;
}

/* curl's progress callback: non-zero aborts the transfer (rates_destroy does not wait for a slow source). */
static int s_on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
    return atomic_load(&((rates_t *) arg)->stopping);
}

/* Fetches one symbol (no lock held: only this thread uses curl and reply). 0 with *price, or -1
 * with why; *retry_after_s is set (> 0) when the source asked us to wait. */
static int s_fetch(rates_t *self, const char *symbol, money_atto_t *price, int *retry_after_s, char *why,
                   size_t whylen)
{
    char url[320];
    snprintf(url, sizeof url, "%s/api/v3/ticker/price?symbol=%s", self->base_url, symbol);
    jbuf_reset(&self->reply);
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(self->curl, CURLOPT_URL, url);
    curl_easy_setopt(self->curl, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode rc = curl_easy_perform(self->curl);
    long status = 0;
    curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(self->curl, CURLOPT_ERRORBUFFER, NULL);
    *retry_after_s = 0;
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%.100s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        curl_off_t ra = 0;
        if ((status == 429 || status == 418) && curl_easy_getinfo(self->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
            ra > 0)
            *retry_after_s = ra > 3600 ? 3600 : (int) ra;
        bson_t doc;
        char jerr[64];
        const char *msg = NULL;
        int parsed = json_parse(self->reply.data ? self->reply.data : "", self->reply.len, &doc, jerr, sizeof jerr) == 0;
        if (parsed)
            msg = json_get_str(&doc, "msg");
        snprintf(why, whylen, "HTTP %ld%s%.60s", status, msg ? ": " : "", msg ? msg : "");
        if (parsed)
            bson_destroy(&doc);
        return -1;
    }
    return rates_parse(self->reply.data, self->reply.len, symbol, price, why, whylen);
}

/* One pass over every symbol; stores each answer. Called without the lock. */
static void s_fetch_all(rates_t *self)
{
    for (int i = 0; i < self->count; i++) {
        pthread_mutex_lock(&self->mu);
        int stop = self->stopping;
        int64_t blocked = self->blocked_until_ms - s_mono_ms();
        pthread_mutex_unlock(&self->mu);
        if (stop || blocked > 0)
            return;
        const char *symbol = self->entries[i].symbol;   /* never changes after rates_new */
        money_atto_t price = 0;
        int retry_after_s = 0;
        char why[120] = "";
        int64_t t0_us = probe_now_us();
        int rc = s_fetch(self, symbol, &price, &retry_after_s, why, sizeof why);
        int64_t took_ms = (probe_now_us() - t0_us) / 1000;
        pthread_mutex_lock(&self->mu);
        s_entry_t *e = &self->entries[i];
        if (rc == 0) {
            e->price = price;
            e->fetched_ms = s_wall_ms();
            e->fetched_mono_ms = s_mono_ms();
            e->last_error[0] = '\0';
        } else {
            snprintf(e->last_error, sizeof e->last_error, "%s", why);
            if (retry_after_s > 0)
                self->blocked_until_ms = s_mono_ms() + 1000LL * retry_after_s;
        }
        pthread_mutex_unlock(&self->mu);
        if (rc == 0) {
            atomic_fetch_add(&self->fetched_ok, 1);
            atomic_fetch_add(&self->generation, 1);
            char text[64];
            money_format(price, text, sizeof text);
            log_debug("rates.fetched", "symbol=%s price=%s took_ms=%lld", symbol, text, (long long) took_ms);
        } else {
            atomic_fetch_add(&self->fetched_failed, 1);
            log_warn("rates.fetch_failed", "symbol=%s took_ms=%lld retry_after_s=%d reason=\"%s\"", symbol,
                     (long long) took_ms, retry_after_s, why);
        }
    }
}

static void *s_thread(void *arg)
{
    rates_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (!self->stopping) {
        self->kicked = 0;
        pthread_mutex_unlock(&self->mu);
        s_fetch_all(self);
        pthread_mutex_lock(&self->mu);
        struct timespec until;
        int64_t wait_ms = self->refresh_ms;
        int64_t blocked = self->blocked_until_ms - s_mono_ms();
        if (blocked > wait_ms)
            wait_ms = blocked;
        condvar_deadline(&until, wait_ms);
        while (!self->stopping && !self->kicked)
            if (pthread_cond_timedwait(&self->cond, &self->mu, &until) != 0)
                break;
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

/* "api.binance.com" from "https://api.binance.com/..." (host and port, no user or path). */
static void s_host(const char *url, char *host, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strchr(p, '@'), *slash = strchr(p, '/');
    if (at && (!slash || at < slash))
        p = at + 1;
    size_t n = strcspn(p, "/?#");
    snprintf(host, cap, "%.*s", (int) (n < cap ? n : cap - 1), p);
}

rates_t *rates_new(const config_t *cfg, char *err, size_t errlen)
{
    if (!rates_needed(cfg)) {
        snprintf(err, errlen, "no live rate rule");
        return NULL;
    }
    if (strncmp(cfg->rate_url, "https://", 8) != 0 && strncmp(cfg->rate_url, "http://", 7) != 0) {
        snprintf(err, errlen, "KASA_RATE_URL: expected an http(s) URL");
        return NULL;
    }
    pthread_once(&s_curl_once, s_curl_init);
    rates_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->cond);
    jbuf_init(&self->reply);
    snprintf(self->base_url, sizeof self->base_url, "%s", cfg->rate_url);
    size_t n = strlen(self->base_url);
    while (n > 0 && self->base_url[n - 1] == '/')
        self->base_url[--n] = '\0';
    s_host(self->base_url, self->host, sizeof self->host);
    self->max_age_ms = 1000LL * (cfg->rate_max_age_s > 0 ? cfg->rate_max_age_s : CONFIG_DEFAULT_RATE_MAX_AGE_S);
    self->refresh_ms = 1000LL * (cfg->rate_refresh_s > 0 ? cfg->rate_refresh_s : CONFIG_DEFAULT_RATE_REFRESH_S);
    for (int i = 0; i < cfg->token_count; i++) {
        const config_token_t *t = &cfg->tokens[i];
        int known = 0;
        for (int j = 0; j < self->count; j++)
            known |= strcmp(self->entries[j].symbol, t->symbol) == 0;
        if (t->live && !known && self->count < RATES_MAX_SYMBOLS)
            snprintf(self->entries[self->count++].symbol, sizeof self->entries[0].symbol, "%s", t->symbol);
    }
    self->curl = curl_easy_init();
    if (!self->curl) {
        snprintf(err, errlen, "rates: no curl handle");
        rates_destroy(&self);
        return NULL;
    }
    curl_easy_setopt(self->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(self->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(self->curl, CURLOPT_TIMEOUT_MS, (long) RATES_TIMEOUT_MS);
    curl_easy_setopt(self->curl, CURLOPT_CONNECTTIMEOUT_MS, (long) RATES_TIMEOUT_MS);
    curl_easy_setopt(self->curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt(self->curl, CURLOPT_WRITEDATA, self);
    curl_easy_setopt(self->curl, CURLOPT_USERAGENT, "kasa");
    curl_easy_setopt(self->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(self->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(self->curl, CURLOPT_XFERINFOFUNCTION, s_on_progress);
    curl_easy_setopt(self->curl, CURLOPT_XFERINFODATA, self);
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0) {
        snprintf(err, errlen, "rates: cannot start its thread");
        rates_destroy(&self);
        return NULL;
    }
    self->started = 1;
    log_info("rates.started", "source=%s symbols=%d refresh_s=%lld max_age_s=%lld", self->host, self->count,
             (long long) (self->refresh_ms / 1000), (long long) (self->max_age_ms / 1000));
    return self;
}

void rates_destroy(rates_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rates_t *self = *self_p;
    *self_p = NULL;
    if (self->started) {
        pthread_mutex_lock(&self->mu);
        self->stopping = 1;
        pthread_cond_broadcast(&self->cond);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    if (self->curl)
        curl_easy_cleanup(self->curl);
    jbuf_free(&self->reply);
    pthread_cond_destroy(&self->cond);
    pthread_mutex_destroy(&self->mu);
    free(self);
}

void rates_refresh(rates_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mu);
    int64_t now = s_mono_ms();
    if (now - self->last_kick_ms >= RATES_KICK_MIN_MS) {
        self->last_kick_ms = now;
        self->kicked = 1;
        pthread_cond_signal(&self->cond);
    }
    pthread_mutex_unlock(&self->mu);
}

static s_entry_t *s_entry(rates_t *self, const char *symbol)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp(self->entries[i].symbol, symbol) == 0)
            return &self->entries[i];
    return NULL;
}

/* 1 if e holds a price no older than the maximum age (under the lock). */
static int s_fresh(const rates_t *self, const s_entry_t *e, int64_t now_mono)
{
    return e && e->price && now_mono - e->fetched_mono_ms <= self->max_age_ms;
}

int rates_quote(rates_t *self, const config_token_t *rule, rates_quote_t *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (!self || !rule->live) {
        snprintf(why, whylen, "no price source");
        return 1;
    }
    pthread_mutex_lock(&self->mu);
    int64_t now = s_mono_ms();
    const s_entry_t *e = s_entry(self, rule->symbol);
    int fresh = s_fresh(self, e, now);
    if (fresh) {
        out->rate = e->price * (money_atto_t) (rule->factor ? rule->factor : 1);
        out->fetched_ms = e->fetched_ms;
        if (rule->factor > 1)
            snprintf(out->source, sizeof out->source, "%.23s*%u@%.28s", rule->symbol, (unsigned) rule->factor,
                     self->host);
        else
            snprintf(out->source, sizeof out->source, "%.23s@%.38s", rule->symbol, self->host);
    } else if (!e) {
        snprintf(why, whylen, "%s is not fetched", rule->symbol);
    } else if (!e->price) {
        snprintf(why, whylen, "never fetched%s%.100s", e->last_error[0] ? ": " : "", e->last_error);
    } else {
        snprintf(why, whylen, "last fetched %lld s ago (max %lld s)%s%.80s", (long long) ((now - e->fetched_mono_ms) / 1000),
                 (long long) (self->max_age_ms / 1000), e->last_error[0] ? ", then " : "", e->last_error);
    }
    pthread_mutex_unlock(&self->mu);
    if (!fresh)
        rates_refresh(self);
    return fresh ? 0 : 1;
}

int rates_fresh(rates_t *self, const char *symbol)
{
    if (!self)
        return 0;
    pthread_mutex_lock(&self->mu);
    int fresh = s_fresh(self, s_entry(self, symbol), s_mono_ms());
    pthread_mutex_unlock(&self->mu);
    return fresh;
}

uint64_t rates_generation(rates_t *self)
{
    return self ? atomic_load(&self->generation) : 0;
}

void rates_metrics(void *arg, jbuf_t *out)
{
    rates_t *self = arg;
    jbuf_puts(out, "# HELP kasa_rate_age_seconds How old each live rate is (-1: never fetched); over "
                   "KASA_RATE_MAX_AGE_S its deposits are held.\n# TYPE kasa_rate_age_seconds gauge\n");
    pthread_mutex_lock(&self->mu);
    int64_t now = s_mono_ms();
    for (int i = 0; i < self->count; i++) {
        const s_entry_t *e = &self->entries[i];
        jbuf_printf(out, "kasa_rate_age_seconds{symbol=\"%s\"} ", e->symbol);
        if (e->price)
            probe_decimal(out, now - e->fetched_mono_ms, 3);
        else
            jbuf_puts(out, "-1");
        jbuf_puts(out, "\n");
    }
    pthread_mutex_unlock(&self->mu);
    jbuf_printf(out, "# HELP kasa_rate_fetches_total Price requests to the rate source, by result.\n"
                     "# TYPE kasa_rate_fetches_total counter\n"
                     "kasa_rate_fetches_total{result=\"ok\"} %" PRIu64 "\nkasa_rate_fetches_total{result=\"failed\"} %" PRIu64
                     "\n",
                atomic_load(&self->fetched_ok), atomic_load(&self->fetched_failed));
}
