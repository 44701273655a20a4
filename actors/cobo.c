/* cobo.c — see cobo.h. One request at a time per client: reset the curl handle (keeping its
 * connection cache), sign, send, capture the body (bounded) and the response signature headers,
 * verify, then classify. */
#include "actors/cobo.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "actors/cobo_auth.h"
#include "schema/chainaddr.h"
#include "schema/json.h"
#include "schema/money.h"
#include "schema/probe.h"

#define S_MAX_RESPONSE (4u << 20)  /* a larger answer is not one Cobo sends: refused */
#define S_MAX_PAGES 2000
#define S_PAGE_LIMIT "50"

struct cobo_client_t {
    CURL *curl;
    char origin[256];        /* scheme://host[:port] */
    char prefix[128];        /* the base URL's path, "/v2" (no trailing '/') */
    char api_key[COBO_KEY_HEX_LEN + 1];
    cobo_signer_t *signer;
    int verify_responses;
    cobo_pubkey_t resp_key;
    long timeout_ms;
    jbuf_t body;             /* the last response body */
    int body_overflow;
    char resp_ts[40];        /* Biz-Timestamp of the last response, "" if none */
    char resp_sig[COBO_SIG_HEX_LEN + 8]; /* Biz-Resp-Signature, "" if none or oversized */
    int http_status;
    int error_code;
    int64_t retry_after_ms;  /* Retry-After of the last response, 0 if none */
    struct {                 /* tokens' decimals as Cobo gave them (they never change) */
        char token_id[48];
        int decimal;
    } decimals[16];
    int ndecimals;
    int64_t last_nonce;      /* nonces strictly increase, even within one millisecond */
};

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static int s_curl_ok;

static void s_curl_init(void)
{
    s_curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

const char *cobo_err_name(cobo_err_t e)
{
    switch (e) {
    case COBO_OK: return "ok";
    case COBO_ERR_ARG: return "bad_argument";
    case COBO_ERR_TRANSPORT: return "transport";
    case COBO_ERR_HTTP_4XX: return "http_4xx";
    case COBO_ERR_HTTP_5XX: return "http_5xx";
    case COBO_ERR_SIGNATURE: return "bad_signature";
    case COBO_ERR_MALFORMED: return "malformed";
    }
    return "unknown";
}

/* 1 if host (as in a URL authority, without port) is a loopback name. */
static int s_is_loopback(const char *host, size_t n)
{
    return (n == 9 && strncmp(host, "127.0.0.1", 9) == 0)
           || (n == 9 && strncasecmp(host, "localhost", 9) == 0)
           || (n == 5 && strncmp(host, "[::1]", 5) == 0);
}

/* Splits base_url into origin and path prefix. http:// is accepted for loopback only. */
static int s_parse_base(cobo_client_t *self, const char *url, char *err, size_t errlen)
{
    size_t skip;
    int plain = 0;
    if (strncmp(url, "https://", 8) == 0)
        skip = 8;
    else if (strncmp(url, "http://", 7) == 0)
        skip = 7, plain = 1;
    else {
        snprintf(err, errlen, "Cobo base URL must start with https://");
        return -1;
    }
    const char *host = url + skip;
    size_t hl = strcspn(host, "/?#");
    if (hl == 0 || host[hl] == '?' || host[hl] == '#') {
        snprintf(err, errlen, "Cobo base URL has no host or has a query");
        return -1;
    }
    size_t hostname_len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/");
    if (plain && !s_is_loopback(host, hostname_len)) {
        snprintf(err, errlen, "Cobo base URL: http:// only for a loopback simulator; use https://");
        return -1;
    }
    const char *path = host + hl;
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    if (skip + hl >= sizeof self->origin || pl >= sizeof self->prefix) {
        snprintf(err, errlen, "Cobo base URL too long");
        return -1;
    }
    for (size_t i = 0; i < pl; i++)
        if (!isalnum((unsigned char) path[i]) && !strchr("/-._~", path[i])) {
            snprintf(err, errlen, "Cobo base URL path has an unexpected character");
            return -1;
        }
    memcpy(self->origin, url, skip + hl);
    self->origin[skip + hl] = '\0';
    memcpy(self->prefix, path, pl);
    self->prefix[pl] = '\0';
    return 0;
}

cobo_client_t *cobo_client_new(const char *base_url, const char *api_key_hex,
                               const char *api_secret_hex, const char *response_pubkey_hex,
                               long timeout_ms, char *err, size_t errlen)
{
    pthread_once(&s_curl_once, s_curl_init);
    if (!s_curl_ok) {
        snprintf(err, errlen, "libcurl failed to initialise");
        return NULL;
    }
    if (!base_url || !api_key_hex || !api_secret_hex || timeout_ms <= 0) {
        snprintf(err, errlen, "Cobo client: missing base URL, key, secret or timeout");
        return NULL;
    }
    cobo_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    jbuf_init(&self->body);
    self->timeout_ms = timeout_ms;
    if (s_parse_base(self, base_url, err, errlen) != 0)
        goto fail;
    self->signer = cobo_signer_new(api_secret_hex);
    if (!self->signer) {
        snprintf(err, errlen, "COBO_API_SECRET is not 64 hex characters");
        goto fail;
    }
    uint8_t key[32];
    if (cobo_hex_decode(api_key_hex, key, sizeof key) != 0) {
        snprintf(err, errlen, "COBO_API_KEY is not 64 hex characters");
        goto fail;
    }
    cobo_hex_encode(key, sizeof key, self->api_key);
    if (strcmp(self->api_key, cobo_signer_pubkey_hex(self->signer)) != 0) {
        snprintf(err, errlen, "COBO_API_KEY is not the public key of COBO_API_SECRET");
        goto fail;
    }
    if (response_pubkey_hex && *response_pubkey_hex) {
        if (cobo_pubkey_parse(response_pubkey_hex, &self->resp_key) != 0) {
            snprintf(err, errlen, "Cobo response public key is not a valid 64-hex Ed25519 key");
            goto fail;
        }
        self->verify_responses = 1;
    }
    self->curl = curl_easy_init();
    if (!self->curl) {
        snprintf(err, errlen, "curl_easy_init failed");
        goto fail;
    }
    return self;
fail:
    cobo_client_destroy(&self);
    return NULL;
}

void cobo_client_destroy(cobo_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cobo_client_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup(self->curl);
    cobo_signer_destroy(&self->signer);
    jbuf_free(&self->body);
    free(self);
    *self_p = NULL;
}

int cobo_client_http_status(const cobo_client_t *self)
{
    return self->http_status;
}

int cobo_client_error_code(const cobo_client_t *self)
{
    return self->error_code;
}

int64_t cobo_client_retry_after_ms(const cobo_client_t *self)
{
    return self->retry_after_ms;
}

int cobo_client_rate_limited(const cobo_client_t *self)
{
    return self->http_status == 429 || self->error_code == 2010 || self->error_code == 2026;
}

/* ---- query strings ------------------------------------------------------------------------- */

typedef struct {
    const char *key;
    const char *value;
} s_param_t;

static int s_param_cmp(const void *a, const void *b)
{
    const s_param_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value ? x->value : "", y->value ? y->value : "");
}

/* application/x-www-form-urlencoded: unreserved bytes kept, space as '+', the rest %XX. */
static void s_form_encode(jbuf_t *q, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            jbuf_add(q, (const char *) p, 1);
        } else if (*p == ' ') {
            jbuf_add(q, "+", 1);
        } else {
            char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            jbuf_add(q, e, 3);
        }
    }
}

/* Builds the sorted, encoded query string of n params (NULL or "" values skipped) into q. */
static void s_query_build(jbuf_t *q, s_param_t *params, size_t n)
{
    jbuf_reset(q);
    qsort(params, n, sizeof *params, s_param_cmp);
    for (size_t i = 0; i < n; i++) {
        if (!params[i].value || !*params[i].value)
            continue;
        if (q->len)
            jbuf_add(q, "&", 1);
        s_form_encode(q, params[i].key);
        jbuf_add(q, "=", 1);
        s_form_encode(q, params[i].value);
    }
    if (!q->data)
        jbuf_puts(q, "");
}

/* 1 if s is a safe single path segment (ids are UUIDs or short names): 1..79 of [A-Za-z0-9._~-]. */
static int s_segment_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= 80 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) s[i]) && !strchr("-._~", s[i]))
            return 0;
    return 1;
}

/* ---- transport ----------------------------------------------------------------------------- */

static size_t s_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    cobo_client_t *self = arg;
    size_t n = size * nmemb;
    if (self->body.len + n > S_MAX_RESPONSE) {
        self->body_overflow = 1;
        return 0;  /* aborts the transfer */
    }
    jbuf_add(&self->body, data, n);
    return n;
}

/* Captures Biz-Timestamp / Biz-Resp-Signature (also with '_', any case) of the final response. */
static size_t s_on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    cobo_client_t *self = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {  /* a new response (after 100 Continue) */
        self->resp_ts[0] = '\0';
        self->resp_sig[0] = '\0';
        self->retry_after_ms = 0;
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t) (colon - line);
    char name[32];
    if (name_len >= sizeof name)
        return n;
    for (size_t i = 0; i < name_len; i++)
        name[i] = line[i] == '_' ? '-' : (char) tolower((unsigned char) line[i]);
    name[name_len] = '\0';
    char *dst;
    size_t cap;
    if (strcmp(name, "retry-after") == 0) {  /* seconds (an HTTP date is ignored: treated as absent) */
        int64_t secs = 0;
        const char *v = colon + 1;
        while (v < line + n && (*v == ' ' || *v == '\t'))
            v++;
        for (; v < line + n && *v >= '0' && *v <= '9' && secs < 86400; v++)
            secs = secs * 10 + (*v - '0');
        self->retry_after_ms = (secs > 86400 ? 86400 : secs) * 1000;
        return n;
    }
    if (strcmp(name, "biz-timestamp") == 0)
        dst = self->resp_ts, cap = sizeof self->resp_ts;
    else if (strcmp(name, "biz-resp-signature") == 0)
        dst = self->resp_sig, cap = sizeof self->resp_sig;
    else
        return n;
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t) (end - v);
    if (vl >= cap)
        vl = 0;  /* oversized: treated as absent, so verification fails */
    memcpy(dst, v, vl);
    dst[vl] = '\0';
    return n;
}

/* Copies Cobo's error_message into err without control characters. */
static void s_error_from_body(cobo_client_t *self, const char *what, char *err, size_t errlen)
{
    bson_t doc;
    char jerr[64];
    int64_t code = 0;
    bson_init(&doc);
    const char *msg = NULL;
    int parsed = 0;
    if (self->body.len) {
        bson_destroy(&doc);
        parsed = json_parse(self->body.data, self->body.len, &doc, jerr, sizeof jerr) == 0;
    }
    if (parsed) {
        if (json_get_i64(&doc, "error_code", &code) == 0 && code > 0 && code < 1000000)
            self->error_code = (int) code;
        msg = json_get_str(&doc, "error_message");
    }
    char clean[160] = "";
    if (msg) {
        size_t j = 0;
        for (size_t i = 0; msg[i] && j + 1 < sizeof clean; i++)
            clean[j++] = ((unsigned char) msg[i] < 0x20 || msg[i] == 0x7f) ? ' ' : msg[i];
        clean[j] = '\0';
    }
    if (self->error_code)
        snprintf(err, errlen, "%s %d: error_code %d: %s", what, self->http_status, self->error_code, clean);
    else
        snprintf(err, errlen, "%s %d", what, self->http_status);
    bson_destroy(&doc);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends one signed request: method, rel_path under the base path, query (already built, may be
 * ""), body (may be NULL). On COBO_OK with out non-NULL, *out holds the parsed JSON (destroy it). */
static cobo_err_t s_call(cobo_client_t *self, const char *method, const char *rel_path,
                         const char *query, const char *body, bson_t *out, char *err, size_t errlen)
{
    char path[512], url[1024], nonce[24], sig[COBO_SIG_HEX_LEN + 1];
    self->http_status = 0;
    self->error_code = 0;
    self->retry_after_ms = 0;
    self->body_overflow = 0;
    self->resp_ts[0] = self->resp_sig[0] = '\0';
    jbuf_reset(&self->body);
    if (!query)
        query = "";
    int pn = snprintf(path, sizeof path, "%s%s", self->prefix, rel_path);
    int un = snprintf(url, sizeof url, "%s%s%s%s", self->origin, path, *query ? "?" : "", query);
    if (pn < 0 || (size_t) pn >= sizeof path || un < 0 || (size_t) un >= sizeof url) {
        snprintf(err, errlen, "request URL too long");
        return COBO_ERR_ARG;
    }
    int64_t now = s_now_ms();
    self->last_nonce = now > self->last_nonce ? now : self->last_nonce + 1;
    snprintf(nonce, sizeof nonce, "%lld", (long long) self->last_nonce);
    size_t body_len = body ? strlen(body) : 0;
    cobo_sign_request(self->signer, method, path, nonce, query, body, body_len, sig);

    char h_key[80], h_nonce[48], h_sig[160];
    snprintf(h_key, sizeof h_key, "Biz-Api-Key: %s", self->api_key);
    snprintf(h_nonce, sizeof h_nonce, "Biz-Api-Nonce: %s", nonce);
    snprintf(h_sig, sizeof h_sig, "Biz-Api-Signature: %s", sig);
    struct curl_slist *hdrs = NULL, *h;
    const char *lines[] = { h_key, h_nonce, h_sig, "Accept: application/json", "Expect:",
                            body ? "Content-Type: application/json" : NULL };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        if (!(h = curl_slist_append(hdrs, lines[i]))) {
            curl_slist_free_all(hdrs);
            snprintf(err, errlen, "out of memory");
            return COBO_ERR_TRANSPORT;
        }
        hdrs = h;
    }

    CURL *c = self->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, self);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, self);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kasa");
    if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) body_len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    int64_t t0_us = probe_now_us();
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    self->http_status = (int) status;
    /* reachable = answered below 500 (a 4xx refusal is still an answer); a bad signature is not
     * counted here: it is reported as an error by the caller's result */
    probe_call(PROBE_COBO, probe_now_us() - t0_us, rc == CURLE_OK && status < 500);
    if (self->body_overflow) {
        snprintf(err, errlen, "response larger than %u bytes", S_MAX_RESPONSE);
        return COBO_ERR_MALFORMED;
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "transport: %s", curl_easy_strerror(rc));
        return COBO_ERR_TRANSPORT;
    }
    const char *rbody = self->body.data ? self->body.data : "";

    /* A signature that is present must be valid; on a 2xx it must be present. An unsigned error
     * answer is still reported as the failure it claims to be: nothing in it is acted upon. */
    int is_2xx = status >= 200 && status < 300;
    if (self->verify_responses && (is_2xx || self->resp_sig[0])) {
        if (!self->resp_sig[0] || !self->resp_ts[0]) {
            snprintf(err, errlen, "response %ld without Biz-Timestamp/Biz-Resp-Signature", status);
            return COBO_ERR_SIGNATURE;
        }
        if (cobo_verify_response(&self->resp_key, rbody, self->body.len, self->resp_ts,
                                 self->resp_sig) != 0) {
            snprintf(err, errlen, "response %ld: Biz-Resp-Signature does not verify", status);
            return COBO_ERR_SIGNATURE;
        }
    }
    if (status >= 400 && status < 500) {
        s_error_from_body(self, "http", err, errlen);
        return COBO_ERR_HTTP_4XX;
    }
    if (status >= 500 && status < 600) {
        s_error_from_body(self, "http", err, errlen);
        return COBO_ERR_HTTP_5XX;
    }
    if (!is_2xx) {
        snprintf(err, errlen, "unexpected HTTP status %ld", status);
        return COBO_ERR_MALFORMED;
    }
    if (out) {
        char jerr[96];
        if (json_parse(rbody, self->body.len, out, jerr, sizeof jerr) != 0) {
            bson_destroy(out);
            snprintf(err, errlen, "response: %s", jerr);
            return COBO_ERR_MALFORMED;
        }
    }
    return COBO_OK;
}

/* ---- calls --------------------------------------------------------------------------------- */

/* GET PREFIX/ID, where id must be one plain path segment (what names it in err), into *doc: on
 * COBO_OK the caller destroys it. */
static cobo_err_t s_get_by_id(cobo_client_t *self, const char *prefix, const char *id, const char *what,
                              bson_t *doc, char *err, size_t errlen)
{
    if (!s_segment_ok(id)) {
        snprintf(err, errlen, "%s id has unexpected characters or length", what);
        return COBO_ERR_ARG;
    }
    char rel[128];
    snprintf(rel, sizeof rel, "%s/%s", prefix, id);
    return s_call(self, "GET", rel, NULL, NULL, doc, err, errlen);
}

cobo_err_t cobo_get_transaction(cobo_client_t *self, const char *tx_id, cobo_tx_t *out,
                                char *err, size_t errlen)
{
    bson_t doc;
    cobo_err_t e = s_get_by_id(self, "/transactions", tx_id, "transaction", &doc, err, errlen);
    if (e != COBO_OK)
        return e;
    char why[160];
    if (cobo_tx_from_bson(&doc, "", out, why, sizeof why) != 0) {
        snprintf(err, errlen, "transaction: %s", why);
        e = COBO_ERR_MALFORMED;
    } else if (strcmp(out->tx_id, tx_id) != 0) {
        snprintf(err, errlen, "transaction: answer is for another transaction_id");
        e = COBO_ERR_MALFORMED;
    }
    bson_destroy(&doc);
    return e;
}

/* Copies a string of at most cap-1 bytes; -1 if it does not fit or is empty. */
static int s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

cobo_err_t cobo_create_address(cobo_client_t *self, const char *wallet_id, const char *chain_id,
                               char *address_out, size_t address_len, char *err, size_t errlen)
{
    if (!s_segment_ok(wallet_id) || !s_segment_ok(chain_id) || !address_out || address_len == 0) {
        snprintf(err, errlen, "wallet or chain id has unexpected characters or length");
        return COBO_ERR_ARG;
    }
    address_out[0] = '\0';
    char rel[160];
    snprintf(rel, sizeof rel, "/wallets/%s/addresses", wallet_id);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"chain_id\":");
    jbuf_str(&b, chain_id);
    jbuf_puts(&b, ",\"count\":1}");
    bson_t doc;
    cobo_err_t e = s_call(self, "POST", rel, NULL, b.data, &doc, err, errlen);
    jbuf_free(&b);
    if (e != COBO_OK)
        return e;
    const char *addr = json_get_str(&doc, "a.0.address");
    const char *chain = json_get_str(&doc, "a.0.chain_id");
    if (!addr) {
        snprintf(err, errlen, "address answer: no a[0].address");
        e = COBO_ERR_MALFORMED;
    } else if (chain && strcmp(chain, chain_id) != 0) {
        snprintf(err, errlen, "address answer: for chain %.24s, not the one asked", chain);
        e = COBO_ERR_MALFORMED;
    } else if (s_copy(address_out, address_len, addr) != 0) {
        snprintf(err, errlen, "address answer: address empty or too long");
        e = COBO_ERR_MALFORMED;
    }
    bson_destroy(&doc);
    return e;
}

/* One entry of a listing's data[]: 0 go on, 1 stop the listing (not an error), -1 malformed (err says why). */
typedef int (*s_entry_fn)(void *arg, bson_iter_t *entry, char *err, size_t errlen);

/* Visits one page's data[]; sets *stop when fn asked to stop. Returns 0 or -1 (malformed). */
static int s_visit_page(const bson_t *doc, const char *what, s_entry_fn fn, void *arg, int *stop, char *err,
                        size_t errlen)
{
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, doc, "data") || !BSON_ITER_HOLDS_ARRAY(&it)
        || !bson_iter_recurse(&it, &arr)) {
        snprintf(err, errlen, "%s: no data array", what);
        return -1;
    }
    while (bson_iter_next(&arr)) {
        bson_iter_t f;
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &f)) {
            snprintf(err, errlen, "%s: an entry is not an object", what);
            return -1;
        }
        int rc = fn(arg, &f, err, errlen);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            *stop = 1;
            return 0;
        }
    }
    return 0;
}

/* GET rel?params&limit=limit[&after=CURSOR], every page (at most S_MAX_PAGES), each entry of each
 * page handed to fn. COBO_OK once the last page was seen (or fn stopped), or the first error. */
static cobo_err_t s_each_page(cobo_client_t *self, const char *rel, const s_param_t *params, size_t n,
                              const char *limit, const char *what, s_entry_fn fn, void *arg, char *err, size_t errlen)
{
    char after[256] = "";
    s_param_t all[8];
    if (n > 6)
        return COBO_ERR_ARG;
    jbuf_t q;
    jbuf_init(&q);
    cobo_err_t e = COBO_OK;
    for (int page = 0; page < S_MAX_PAGES; page++) {
        if (n)
            memcpy(all, params, n * sizeof *params);
        all[n] = (s_param_t) { "limit", limit };
        all[n + 1] = (s_param_t) { "after", after };
        s_query_build(&q, all, n + 2);
        bson_t doc;
        e = s_call(self, "GET", rel, q.data, NULL, &doc, err, errlen);
        if (e != COBO_OK)
            break;
        int stop = 0;
        if (s_visit_page(&doc, what, fn, arg, &stop, err, errlen) != 0) {
            e = COBO_ERR_MALFORMED;
        } else if (!stop) {
            const char *next = json_get_str(&doc, "pagination.after");
            if (!next || !*next) {
                stop = 1;  /* the last page */
            } else if (strlen(next) >= sizeof after || strcmp(next, after) == 0) {
                snprintf(err, errlen, "%s: bad pagination cursor", what);
                e = COBO_ERR_MALFORMED;
            } else {
                memcpy(after, next, strlen(next) + 1);
            }
        }
        bson_destroy(&doc);
        if (e != COBO_OK || stop)
            break;
        if (page == S_MAX_PAGES - 1) {
            snprintf(err, errlen, "%s: more than %d pages", what, S_MAX_PAGES);
            e = COBO_ERR_MALFORMED;
        }
    }
    jbuf_free(&q);
    return e;
}

typedef struct {
    cobo_address_fn fn;
    void *arg;
} s_addresses_t;

static int s_address_entry(void *arg, bson_iter_t *f, char *err, size_t errlen)
{
    s_addresses_t *a = arg;
    const char *addr = NULL, *chain = "";
    while (bson_iter_next(f)) {
        if (strcmp(bson_iter_key(f), "address") == 0 && BSON_ITER_HOLDS_UTF8(f))
            addr = bson_iter_utf8(f, NULL);
        else if (strcmp(bson_iter_key(f), "chain_id") == 0 && BSON_ITER_HOLDS_UTF8(f))
            chain = bson_iter_utf8(f, NULL);
    }
    if (!addr || !*addr) {
        snprintf(err, errlen, "address list: an entry has no address");
        return -1;
    }
    return a->fn(a->arg, addr, chain) != 0;
}

cobo_err_t cobo_list_addresses(cobo_client_t *self, const char *wallet_id, const char *chain_id,
                               cobo_address_fn fn, void *arg, char *err, size_t errlen)
{
    if (!s_segment_ok(wallet_id) || (chain_id && *chain_id && !s_segment_ok(chain_id)) || !fn) {
        snprintf(err, errlen, "wallet or chain id has unexpected characters or length");
        return COBO_ERR_ARG;
    }
    char rel[160];
    snprintf(rel, sizeof rel, "/wallets/%s/addresses", wallet_id);
    s_param_t params[] = { { "chain_ids", chain_id } };
    s_addresses_t a = { fn, arg };
    return s_each_page(self, rel, params, 1, S_PAGE_LIMIT, "address list", s_address_entry, &a, err, errlen);
}

/* ---- balances ------------------------------------------------------------------------------ */

typedef struct {
    const char *key;      /* "token_id" or "address": what names an entry */
    const char *what;
    cobo_balance_fn fn;
    void *arg;
} s_balances_t;

/* Copies the balance object's five amounts into *out: total and available are required, the others
 * default to "0"; each must be a plain decimal (money_parse). 0, or -1 with err. */
static int s_balance_read(bson_iter_t *obj, cobo_balance_t *out, const char *what, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct { const char *name; char *dst; } fields[] = {
        { "total", out->total }, { "available", out->available }, { "pending", out->pending },
        { "locked", out->locked }, { "frozen", out->frozen },
    };
    while (bson_iter_next(obj))
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (strcmp(bson_iter_key(obj), fields[i].name) == 0 && BSON_ITER_HOLDS_UTF8(obj) &&
                s_copy(fields[i].dst, COBO_AMOUNT_LEN, bson_iter_utf8(obj, NULL)) != 0)
                fields[i].dst[0] = '\0';   /* too long: refused below as missing */
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        money_atto_t v;
        if (!fields[i].dst[0] && i >= 2)
            snprintf(fields[i].dst, COBO_AMOUNT_LEN, "0");
        if (money_parse(fields[i].dst, &v, NULL, 0) != 0) {
            snprintf(err, errlen, "%s: balance.%s is missing or not a decimal amount", what, fields[i].name);
            return -1;
        }
    }
    return 0;
}

static int s_balance_entry(void *arg, bson_iter_t *f, char *err, size_t errlen)
{
    s_balances_t *b = arg;
    char name[128] = "";
    cobo_balance_t bal;
    int have_balance = 0;
    while (bson_iter_next(f)) {
        const char *k = bson_iter_key(f);
        if (strcmp(k, b->key) == 0 && BSON_ITER_HOLDS_UTF8(f)) {
            if (s_copy(name, sizeof name, bson_iter_utf8(f, NULL)) != 0)
                name[0] = '\0';
        } else if (strcmp(k, "balance") == 0 && BSON_ITER_HOLDS_DOCUMENT(f)) {
            bson_iter_t obj;
            if (!bson_iter_recurse(f, &obj) || s_balance_read(&obj, &bal, b->what, err, errlen) != 0)
                return -1;
            have_balance = 1;
        }
    }
    if (!name[0] || !have_balance) {
        snprintf(err, errlen, "%s: an entry has no %s or no balance", b->what, b->key);
        return -1;
    }
    return b->fn(b->arg, name, &bal) != 0;
}

cobo_err_t cobo_list_token_balances(cobo_client_t *self, const char *wallet_id, int page_limit, cobo_balance_fn fn,
                                    void *arg, char *err, size_t errlen)
{
    if (!s_segment_ok(wallet_id) || !fn || page_limit < 1 || page_limit > 50) {
        snprintf(err, errlen, "token balances: bad wallet id, callback or page size (1..50)");
        return COBO_ERR_ARG;
    }
    char rel[160], limit[8];
    snprintf(rel, sizeof rel, "/wallets/%s/tokens", wallet_id);
    snprintf(limit, sizeof limit, "%d", page_limit);
    s_balances_t b = { "token_id", "token balances", fn, arg };
    return s_each_page(self, rel, NULL, 0, limit, b.what, s_balance_entry, &b, err, errlen);
}

cobo_err_t cobo_list_address_balances(cobo_client_t *self, const char *wallet_id, const char *token_id,
                                      const char *addresses, int page_limit, cobo_balance_fn fn, void *arg, char *err,
                                      size_t errlen)
{
    if (!s_segment_ok(wallet_id) || !s_segment_ok(token_id) || !fn || page_limit < 1 || page_limit > 50) {
        snprintf(err, errlen, "address balances: bad wallet or token id, callback or page size (1..50)");
        return COBO_ERR_ARG;
    }
    char rel[256], limit[8];
    snprintf(rel, sizeof rel, "/wallets/%s/tokens/%s", wallet_id, token_id);
    snprintf(limit, sizeof limit, "%d", page_limit);
    s_param_t params[] = { { "addresses", addresses } };
    s_balances_t b = { "address", "address balances", fn, arg };
    return s_each_page(self, rel, params, 1, limit, b.what, s_balance_entry, &b, err, errlen);
}

cobo_err_t cobo_get_token_decimal(cobo_client_t *self, const char *token_id, int *decimal,
                                  char *err, size_t errlen)
{
    if (!decimal) {
        snprintf(err, errlen, "token id has unexpected characters or length");
        return COBO_ERR_ARG;
    }
    for (int i = 0; token_id && i < self->ndecimals; i++)
        if (strcmp(self->decimals[i].token_id, token_id) == 0) {
            *decimal = self->decimals[i].decimal;
            return COBO_OK;
        }
    bson_t doc;
    cobo_err_t e = s_get_by_id(self, "/wallets/tokens", token_id, "token", &doc, err, errlen);
    if (e != COBO_OK)
        return e;
    int64_t d;
    if (json_get_i64(&doc, "decimal", &d) != 0 || d < 0 || d > 18) {
        snprintf(err, errlen, "token answer: decimal missing or outside 0..18");
        e = COBO_ERR_MALFORMED;
    } else {
        *decimal = (int) d;
        if (self->ndecimals < (int) (sizeof self->decimals / sizeof self->decimals[0]) &&
            strlen(token_id) < sizeof self->decimals[0].token_id) {
            snprintf(self->decimals[self->ndecimals].token_id, sizeof self->decimals[0].token_id, "%s", token_id);
            self->decimals[self->ndecimals++].decimal = (int) d;
        }
    }
    bson_destroy(&doc);
    return e;
}

cobo_err_t cobo_list_transactions_page(cobo_client_t *self, const cobo_tx_query_t *q, cobo_tx_fn fn, void *arg,
                                       char *next_after, size_t next_len, char *err, size_t errlen)
{
    if (!q || !fn || !next_after || next_len == 0 || q->limit < 1 || q->limit > 50) {
        snprintf(err, errlen, "transaction list: bad query (limit 1..50, a callback and a cursor buffer)");
        return COBO_ERR_ARG;
    }
    next_after[0] = '\0';
    char min_s[24] = "", max_s[24] = "", limit_s[8];
    if (q->min_created_ms > 0)
        snprintf(min_s, sizeof min_s, "%lld", (long long) q->min_created_ms);
    if (q->max_created_ms > 0)
        snprintf(max_s, sizeof max_s, "%lld", (long long) q->max_created_ms);
    snprintf(limit_s, sizeof limit_s, "%d", q->limit);
    s_param_t params[] = {
        { "types", q->types }, { "statuses", q->statuses }, { "wallet_ids", q->wallet_ids },
        { "transaction_ids", q->transaction_ids }, { "min_created_timestamp", min_s },
        { "max_created_timestamp", max_s }, { "limit", limit_s }, { "after", q->after },
        { "direction", "ASC" }, { "request_id", q->request_id },
    };
    jbuf_t query;
    jbuf_init(&query);
    s_query_build(&query, params, sizeof params / sizeof params[0]);
    bson_t doc;
    cobo_err_t e = s_call(self, "GET", "/transactions", query.data, NULL, &doc, err, errlen);
    jbuf_free(&query);
    if (e != COBO_OK)
        return e;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, &doc, "data") || !BSON_ITER_HOLDS_ARRAY(&it)) {
        snprintf(err, errlen, "transaction list: no data array");
        bson_destroy(&doc);
        return COBO_ERR_MALFORMED;
    }
    for (int i = 0; i < 50; i++) {   /* a page holds at most limit (<= 50) entries */
        char path[24];
        snprintf(path, sizeof path, "data.%d", i);
        if (!json_has(&doc, path))
            break;
        cobo_tx_t tx;
        char why[160];
        if (cobo_tx_from_bson(&doc, path, &tx, why, sizeof why) != 0)
            fn(arg, NULL, why);
        else
            fn(arg, &tx, NULL);
    }
    const char *next = json_get_str(&doc, "pagination.after");
    if (next && *next) {
        if (strlen(next) >= next_len || (q->after && strcmp(next, q->after) == 0)) {
            snprintf(err, errlen, "transaction list: bad pagination cursor");
            e = COBO_ERR_MALFORMED;
        } else {
            memcpy(next_after, next, strlen(next) + 1);
        }
    }
    bson_destroy(&doc);
    return e;
}

/* ---- transfers ----------------------------------------------------------------------------- */

#define S_REQUEST_ID_MAX 64
#define S_DESCRIPTION_MAX 200

const char *cobo_transfer_outcome_name(cobo_transfer_outcome_t o)
{
    switch (o) {
    case COBO_TRANSFER_CREATED: return "created";
    case COBO_TRANSFER_DUPLICATE: return "duplicate";
    case COBO_TRANSFER_REFUSED: return "refused";
    case COBO_TRANSFER_UNKNOWN: return "unknown";
    case COBO_TRANSFER_INVALID: return "invalid";
    }
    return "?";
}

const char *cobo_find_name(cobo_find_t f)
{
    switch (f) {
    case COBO_FIND_FOUND: return "found";
    case COBO_FIND_NOT_THERE: return "not_there";
    case COBO_FIND_UNKNOWN: return "unknown";
    }
    return "?";
}

/* 1 if id is a request_id kasa sends: 1..64 of [A-Za-z0-9._~-] (also safe in a query string). */
static int s_request_id_ok(const char *id)
{
    return id && strlen(id) <= S_REQUEST_ID_MAX && s_segment_ok(id);
}

/* Checks a transfer's arguments; 0, or -1 with a reason in why. */
static int s_transfer_args_ok(const cobo_transfer_t *t, char *why, size_t whylen)
{
    money_atto_t amount;
    char merr[96] = "";
    if (!s_request_id_ok(t->request_id)) {
        snprintf(why, whylen, "request_id: 1..%d of letters, digits, '.', '_', '~', '-'", S_REQUEST_ID_MAX);
        return -1;
    }
    if (!s_segment_ok(t->wallet_id) || !s_segment_ok(t->token_id)) {
        snprintf(why, whylen, "wallet or token id has unexpected characters or length");
        return -1;
    }
    if (chainaddr_check_for_token(t->token_id, t->address, merr, sizeof merr) != 0) {
        snprintf(why, whylen, "destination: %s", merr);
        return -1;
    }
    if (t->source_address && *t->source_address
        && chainaddr_check_for_token(t->token_id, t->source_address, merr, sizeof merr) != 0) {
        snprintf(why, whylen, "source address: %s", merr);
        return -1;
    }
    if (!t->amount || money_parse(t->amount, &amount, merr, sizeof merr) != 0 || amount == 0) {
        snprintf(why, whylen, "amount: not a positive exact decimal%s%s", merr[0] ? ": " : "", merr);
        return -1;
    }
    if (t->fee_level && *t->fee_level && strcmp(t->fee_level, "Slow") != 0
        && strcmp(t->fee_level, "Recommended") != 0 && strcmp(t->fee_level, "Fast") != 0) {
        snprintf(why, whylen, "fee_level: Slow, Recommended or Fast");
        return -1;
    }
    if (t->description && strlen(t->description) > S_DESCRIPTION_MAX) {
        snprintf(why, whylen, "description longer than %d bytes", S_DESCRIPTION_MAX);
        return -1;
    }
    return 0;
}

/* The request body of t (caller frees b). */
static void s_transfer_body(jbuf_t *b, const cobo_transfer_t *t)
{
    jbuf_puts(b, "{\"request_id\":");
    jbuf_str(b, t->request_id);
    if (t->source_address && *t->source_address) {
        jbuf_puts(b, ",\"source\":{\"source_type\":\"Org-Controlled\",\"wallet_id\":");
        jbuf_str(b, t->wallet_id);
        jbuf_puts(b, ",\"address\":");
        jbuf_str(b, t->source_address);
    } else {
        jbuf_puts(b, ",\"source\":{\"source_type\":\"Asset\",\"wallet_id\":");
        jbuf_str(b, t->wallet_id);
    }
    jbuf_puts(b, "},\"token_id\":");
    jbuf_str(b, t->token_id);
    jbuf_puts(b, ",\"destination\":{\"destination_type\":\"Address\",\"account_output\":{\"address\":");
    jbuf_str(b, t->address);
    jbuf_puts(b, ",\"amount\":");
    jbuf_str(b, t->amount);
    jbuf_puts(b, "}}");
    if (t->fee_level && *t->fee_level) {
        jbuf_puts(b, ",\"fee_level\":");
        jbuf_str(b, t->fee_level);
    }
    if (t->description && *t->description) {
        jbuf_puts(b, ",\"description\":");
        jbuf_str(b, t->description);
    }
    jbuf_puts(b, "}");
}

/* Reads a 201 answer {request_id, transaction_id, status} into out. */
static cobo_transfer_outcome_t s_transfer_created(const bson_t *doc, const cobo_transfer_t *t,
                                                  cobo_transfer_result_t *out)
{
    const char *rid = json_get_str(doc, "request_id");
    const char *id = json_get_str(doc, "transaction_id");
    const char *status = json_get_str(doc, "status");
    if (rid && strcmp(rid, t->request_id) != 0) {
        snprintf(out->message, sizeof out->message, "transfer answer is for another request_id");
        return COBO_TRANSFER_UNKNOWN;
    }
    if (s_copy(out->transaction_id, sizeof out->transaction_id, id) != 0
        || s_copy(out->status, sizeof out->status, status) != 0) {
        out->transaction_id[0] = out->status[0] = '\0';
        snprintf(out->message, sizeof out->message, "transfer answer without transaction_id or status");
        return COBO_TRANSFER_UNKNOWN;
    }
    snprintf(out->message, sizeof out->message, "created");
    return COBO_TRANSFER_CREATED;
}

cobo_transfer_outcome_t cobo_transfer(cobo_client_t *self, const cobo_transfer_t *t, cobo_transfer_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (!t || s_transfer_args_ok(t, out->message, sizeof out->message) != 0) {
        if (!t)
            snprintf(out->message, sizeof out->message, "no transfer");
        return COBO_TRANSFER_INVALID;
    }
    /* an amount Cobo cannot represent in the token's decimals is never sent */
    int decimal = 0;
    char derr[128] = "";
    cobo_err_t de = cobo_get_token_decimal(self, t->token_id, &decimal, derr, sizeof derr);
    if (de != COBO_OK) {
        snprintf(out->message, sizeof out->message, "the token's decimals could not be read (%.120s): nothing sent",
                 derr);
        out->http_status = self->http_status;
        out->error_code = self->error_code;
        /* Cobo's own refusal (a signed 4xx) stands as it would for the transfer; anything else: later,
         * the same request_id */
        out->rate_limited = de == COBO_ERR_HTTP_4XX ? cobo_client_rate_limited(self) : 1;
        return COBO_TRANSFER_REFUSED;
    }
    money_atto_t amount = 0;
    money_parse(t->amount, &amount, NULL, 0);   /* checked above */
    money_atto_t unit = 1;
    for (int i = decimal; i < 18; i++)
        unit *= 10;
    if (amount % unit != 0) {
        snprintf(out->message, sizeof out->message, "amount %.48s has more decimals than %.40s has at Cobo (%d)",
                 t->amount, t->token_id, decimal);
        return COBO_TRANSFER_INVALID;
    }
    jbuf_t b;
    jbuf_init(&b);
    s_transfer_body(&b, t);
    bson_t doc;
    cobo_err_t e = s_call(self, "POST", "/transactions/transfer", NULL, b.data, &doc, out->message,
                          sizeof out->message);
    jbuf_free(&b);
    out->http_status = self->http_status;
    out->error_code = self->error_code;
    switch (e) {
    case COBO_OK: {
        cobo_transfer_outcome_t o = s_transfer_created(&doc, t, out);
        bson_destroy(&doc);
        return o;
    }
    case COBO_ERR_HTTP_4XX:
        if (self->error_code == 30001 || self->error_code == 12009)
            return COBO_TRANSFER_DUPLICATE;
        /* an error answer that should be signed but is not may be anyone's: it proves nothing */
        if (self->verify_responses && !self->resp_sig[0]) {
            snprintf(out->message + strlen(out->message), sizeof out->message - strlen(out->message),
                     " (unsigned: outcome unknown)");
            return COBO_TRANSFER_UNKNOWN;
        }
        out->rate_limited = cobo_client_rate_limited(self);
        return COBO_TRANSFER_REFUSED;
    case COBO_ERR_ARG:
        return COBO_TRANSFER_INVALID;
    default:  /* transport, 5xx, a bad signature, a malformed 2xx: it may have been created */
        return COBO_TRANSFER_UNKNOWN;
    }
}

typedef struct {
    const char *request_id;
    cobo_tx_t *out;
    int matches;
    int unreadable;
} s_find_ctx_t;

static void s_on_find(void *arg, const cobo_tx_t *tx, const char *why)
{
    s_find_ctx_t *c = arg;
    (void) why;
    if (!tx) {
        c->unreadable++;  /* it may be ours */
        return;
    }
    if (strcmp(tx->request_id, c->request_id) != 0)
        return;
    if (c->matches++ == 0)
        *c->out = *tx;
}

cobo_find_t cobo_find_transfer(cobo_client_t *self, const char *request_id, cobo_tx_t *out, char *err,
                               size_t errlen)
{
    if (!s_request_id_ok(request_id) || !out) {
        snprintf(err, errlen, "request_id has unexpected characters or length");
        return COBO_FIND_UNKNOWN;
    }
    memset(out, 0, sizeof *out);
    cobo_tx_query_t q = { .request_id = request_id, .limit = 50 };
    s_find_ctx_t c = { .request_id = request_id, .out = out };
    char next[256];
    cobo_err_t e = cobo_list_transactions_page(self, &q, s_on_find, &c, next, sizeof next, err, errlen);
    if (e != COBO_OK)
        return COBO_FIND_UNKNOWN;
    if (c.matches > 1) {
        snprintf(err, errlen, "%d transactions carry request_id %s", c.matches, request_id);
        return COBO_FIND_UNKNOWN;
    }
    if (c.matches == 1)
        return COBO_FIND_FOUND;
    if (c.unreadable || next[0]) {
        snprintf(err, errlen, "%s", c.unreadable ? "an entry could not be read" : "the answer ignored the filter");
        return COBO_FIND_UNKNOWN;
    }
    return COBO_FIND_NOT_THERE;
}
