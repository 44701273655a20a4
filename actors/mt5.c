/* mt5.c — see mt5.h. The MT5 Web API client.
 *
 * The one subtle point is the balance call. libcurl silently resends a request on a fresh
 * connection when a reused connection closes before any reply byte arrives; for a balance deal
 * that would be a second deal if the first was applied. So while a balance request is in flight
 * the client refuses to open any new socket (CURLOPT_OPENSOCKETFUNCTION): the request goes out on
 * the session's connection or not at all, and a dead connection is reported as MT5_AMBIGUOUS.
 * Just before the balance request a ping proves the connection alive (re-authenticating on a new
 * one), which keeps that window small. */
#include "actors/mt5.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "schema/err.h"
#include "schema/json.h"
#include "schema/log.h"
#include "schema/probe.h"

#define MT5_MAX_REPLY (8u * 1024u * 1024u) /* a page of 100 deals is ~100 KB */
#define MT5_PAGE 100                       /* MT5's largest page */
#define MT5_IDLE_PING_MS 2000              /* ping before a balance call after this much idleness */
#define MT5_SESSION_IDLE_MS 170000         /* MT5 drops a session after 180 s idle */

struct mt5_client_t {
    pthread_mutex_t mu;
    CURL *curl;
    struct curl_slist *headers;
    char *base;                 /* url without a trailing slash */
    char *ca_file;              /* NULL: the system store */
    uint64_t login;
    unsigned char h2[16];       /* password-derived; the password itself is not kept */
    long timeout_ms;
    int authed;                 /* a session is believed open */
    int forbid_new_conn;        /* set while a balance request is in flight */
    int refused_conn;           /* the opensocket callback refused a socket */
    int64_t last_ms;            /* monotonic time of the last exchange on the session */
    uint64_t auth_count;
    int last_retcode;
    int clock_known;            /* clock_offset_s was measured */
    int64_t clock_offset_s;     /* MT5's deal clock minus kasa's UTC clock */
    int64_t clock_measured_ms;  /* monotonic time of that measurement */
    jbuf_t reply;
    char curl_err[CURL_ERROR_SIZE];
};

/* ---- pure helpers ------------------------------------------------------------------------------- */

static void s_md5(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[16])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (!ctx)
        abort();
    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1
        || (blen && EVP_DigestUpdate(ctx, b, blen) != 1) || EVP_DigestFinal_ex(ctx, out, &n) != 1
        || n != 16)
        abort(); /* MD5 is always available in OpenSSL's default provider */
    EVP_MD_CTX_free(ctx);
}

static void s_hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int s_hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* UTF-8 to UTF-16LE; an invalid byte is taken as Latin-1. Returns the byte count, or -1. */
static int s_utf16le(const char *s, unsigned char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n = 0;
    while (*p) {
        uint32_t cp;
        int len = 1;
        if (p[0] < 0x80) {
            cp = p[0];
        } else if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) {
            cp = ((uint32_t) (p[0] & 0x1F) << 6) | (p[1] & 0x3F), len = 2;
        } else if ((p[0] & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
            cp = ((uint32_t) (p[0] & 0x0F) << 12) | ((uint32_t) (p[1] & 0x3F) << 6) | (p[2] & 0x3F), len = 3;
        } else if ((p[0] & 0xF8) == 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80
                   && (p[3] & 0xC0) == 0x80) {
            cp = ((uint32_t) (p[0] & 0x07) << 18) | ((uint32_t) (p[1] & 0x3F) << 12)
                 | ((uint32_t) (p[2] & 0x3F) << 6) | (p[3] & 0x3F), len = 4;
        } else {
            cp = p[0];
        }
        if (cp >= 0x10000) {
            if (n + 4 > cap)
                return -1;
            cp -= 0x10000;
            uint32_t hi = 0xD800 + (cp >> 10), lo = 0xDC00 + (cp & 0x3FF);
            out[n++] = (unsigned char) (hi & 0xFF), out[n++] = (unsigned char) (hi >> 8);
            out[n++] = (unsigned char) (lo & 0xFF), out[n++] = (unsigned char) (lo >> 8);
        } else {
            if (n + 2 > cap)
                return -1;
            out[n++] = (unsigned char) (cp & 0xFF), out[n++] = (unsigned char) (cp >> 8);
        }
        p += len;
    }
    return (int) n;
}

int mt5_auth_h2(const char *password, unsigned char h2[16])
{
    unsigned char wide[4096], h1[16];
    if (!password || strlen(password) > 1024)
        return -1;
    int n = s_utf16le(password, wide, sizeof wide);
    if (n < 0)
        return -1;
    s_md5(wide, (size_t) n, NULL, 0, h1);
    s_md5(h1, sizeof h1, "WebAPI", 6, h2);
    OPENSSL_cleanse(wide, sizeof wide);
    OPENSSL_cleanse(h1, sizeof h1);
    return 0;
}

int mt5_auth_answer(const unsigned char h2[16], const char *rand_hex, char answer_hex[33])
{
    unsigned char bytes[64], md[16];
    size_t len = rand_hex ? strlen(rand_hex) : 0;
    if (len < 2 || len > 128 || len % 2)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = s_hexval(rand_hex[2 * i]), lo = s_hexval(rand_hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        bytes[i] = (unsigned char) (hi << 4 | lo);
    }
    s_md5(h2, 16, bytes, len / 2, md);
    s_hex(md, 16, answer_hex);
    return 0;
}

int mt5_retcode_parse(const char *retcode)
{
    if (!retcode || *retcode < '0' || *retcode > '9')
        return -1;
    long v = 0;
    for (const char *p = retcode; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000000000L)
            return -1;
    }
    return (int) v;
}

mt5_result_t mt5_retcode_class(int retcode, int is_balance)
{
    switch (retcode) {
    case 0: return MT5_OK;
    case 3006: return MT5_BAD_PASSWORD;
    case 1008: return MT5_AUTH_FAILED;
    case 7: case 9: case 10: case 12: case -1:
        return is_balance ? MT5_AMBIGUOUS : MT5_TRANSIENT;
    default:
        return MT5_PERMANENT; /* 3, 8, 13, 1001, 4005, 10019 and anything unknown: a person looks */
    }
}

const char *mt5_result_name(mt5_result_t r)
{
    switch (r) {
    case MT5_OK: return "ok";
    case MT5_NOT_FOUND: return "not_found";
    case MT5_PERMANENT: return "permanent";
    case MT5_BAD_PASSWORD: return "bad_password";
    case MT5_AUTH_FAILED: return "auth_failed";
    case MT5_TRANSIENT: return "transient";
    case MT5_AMBIGUOUS: return "ambiguous";
    case MT5_CANNOT_TELL: return "cannot_tell";
    }
    return "unknown";
}

int mt5_format_amount(int64_t amount_minor, int digits, char *buf, size_t len)
{
    if (digits < 0 || digits > 8 || !buf)
        return -1;
    uint64_t mag = amount_minor < 0 ? (uint64_t) 0 - (uint64_t) amount_minor : (uint64_t) amount_minor;
    uint64_t scale = 1;
    for (int i = 0; i < digits; i++)
        scale *= 10;
    char frac[16] = "";
    if (digits > 0) {
        uint64_t f = mag % scale;
        for (int i = digits - 1; i >= 0; i--, f /= 10)
            frac[i] = (char) ('0' + f % 10);
        frac[digits] = '\0';
    }
    int n = snprintf(buf, len, "%s%" PRIu64 "%s%s", amount_minor < 0 ? "-" : "", mag / scale,
                     digits ? "." : "", frac);
    return (n < 0 || (size_t) n >= len) ? -1 : 0;
}

int mt5_parse_amount(const char *text, int digits, int64_t *out_minor)
{
    if (!text || digits < 0 || digits > 8)
        return -1;
    const char *p = text;
    int neg = 0;
    if (*p == '-' || *p == '+')
        neg = (*p++ == '-');
    if (*p < '0' || *p > '9')
        return -1;
    uint64_t whole = 0, frac = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (uint64_t) (*p - '0');
        if (whole > 100000000000000ULL) /* 10^14: beyond any MT5 balance */
            return -1;
    }
    int fd = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (fd < digits) {
                frac = frac * 10 + (uint64_t) (*p - '0');
                fd++;
            } else if (*p != '0') {
                return -1; /* more significant decimals than the currency has */
            }
        }
    }
    if (*p)
        return -1;
    for (; fd < digits; fd++)
        frac *= 10;
    uint64_t scale = 1;
    for (int i = 0; i < digits; i++)
        scale *= 10;
    uint64_t v = whole * scale + frac;
    if (v > (uint64_t) INT64_MAX)
        return -1;
    *out_minor = neg ? -(int64_t) v : (int64_t) v;
    return 0;
}

/* ---- transport ------------------------------------------------------------------------------------ */

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static void s_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t s_on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    mt5_client_t *c = arg;
    size_t n = size * nmemb;
    if (c->reply.len + n > MT5_MAX_REPLY)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    jbuf_add(&c->reply, ptr, n);
    return n;
}

static curl_socket_t s_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    mt5_client_t *c = arg;
    (void) purpose;
    if (c->forbid_new_conn) {
        c->refused_conn = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* One HTTP exchange on the session's connection. path includes the query. body NULL: GET.
 * Returns 0 with *status and *new_conn set, or -1 (transport error, reason in err; *cerr set). */
static int s_http(mt5_client_t *c, const char *path, const char *body, long *status, int *new_conn,
                  CURLcode *cerr, char *err, size_t errlen)
{
    size_t ulen = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (!url)
        abort();
    snprintf(url, ulen, "%s%s", c->base, path);
    jbuf_reset(&c->reply);
    c->curl_err[0] = '\0';
    c->refused_conn = 0;
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    } else {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    }
    int64_t t0_us = probe_now_us();
    CURLcode rc = curl_easy_perform(c->curl);
    long http_status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http_status);
    probe_call(PROBE_MT5, probe_now_us() - t0_us, rc == CURLE_OK && http_status < 500);
    /* the body may hold a password: do not leave curl pointing at the caller's buffer */
    if (body)
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
    free(url);
    *cerr = rc;
    long conns = 0;
    curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &conns);
    *new_conn = conns > 0 || c->refused_conn;
    if (rc != CURLE_OK) {
        const char *path_end = strchr(path, '?');
        int plen = path_end ? (int) (path_end - path) : (int) strlen(path);
        err_set(err, errlen, "%.*s: %s%s", plen, path,
                  c->refused_conn ? "connection lost (no new connection opened for a balance call)"
                                  : (c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc)),
                  rc == CURLE_OPERATION_TIMEDOUT ? " (timeout)" : "");
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    c->last_ms = s_now_ms();
    return 0;
}

/* Parses the reply as JSON and reads its retcode. 0, or -1 with a reason. */
static int s_parse_reply(mt5_client_t *c, bson_t *doc, int *retcode, char *err, size_t errlen)
{
    char perr[128];
    if (json_parse(c->reply.data ? c->reply.data : "", c->reply.len, doc, perr, sizeof perr) != 0) {
        bson_destroy(doc);
        err_set(err, errlen, "unreadable reply: %s", perr);
        c->last_retcode = -1;
        return -1;
    }
    const char *rc = json_get_str(doc, "retcode");
    *retcode = mt5_retcode_parse(rc);
    c->last_retcode = *retcode;
    if (*retcode < 0) {
        bson_destroy(doc);
        err_set(err, errlen, "reply without a retcode");
        return -1;
    }
    if (*retcode != 0)
        err_set(err, errlen, "retcode %s", rc);
    return 0;
}

/* ---- session ---------------------------------------------------------------------------------------- */

static mt5_result_t s_auth_once(mt5_client_t *c, int *retry, char *err, size_t errlen)
{
    char path[256], answer[33], cli_hex[33], expect[33];
    long status = 0;
    int new_conn = 0, retcode = -1;
    CURLcode cerr;
    bson_t doc;
    *retry = 0;
    c->authed = 0;
    snprintf(path, sizeof path, "/api/auth/start?version=484&agent=kasa&login=%" PRIu64 "&type=manager",
             c->login);
    if (s_http(c, path, NULL, &status, &new_conn, &cerr, err, errlen) != 0)
        return MT5_TRANSIENT;
    if (status != 200) {
        err_set(err, errlen, "auth/start: HTTP %ld", status);
        return status == 403 ? MT5_AUTH_FAILED : MT5_TRANSIENT;
    }
    if (s_parse_reply(c, &doc, &retcode, err, errlen) != 0)
        return MT5_TRANSIENT;
    if (retcode != 0) {
        bson_destroy(&doc);
        mt5_result_t r = mt5_retcode_class(retcode, 0);
        return r == MT5_TRANSIENT ? r : MT5_AUTH_FAILED;
    }
    const char *srv_rand = json_get_str(&doc, "srv_rand");
    if (!srv_rand || mt5_auth_answer(c->h2, srv_rand, answer) != 0) {
        bson_destroy(&doc);
        err_set(err, errlen, "auth/start: no valid srv_rand");
        return MT5_AUTH_FAILED;
    }
    bson_destroy(&doc);

    unsigned char cli_rand[16];
    if (getrandom(cli_rand, sizeof cli_rand, 0) != (ssize_t) sizeof cli_rand) {
        err_set(err, errlen, "no randomness for cli_rand");
        return MT5_TRANSIENT;
    }
    s_hex(cli_rand, sizeof cli_rand, cli_hex);
    mt5_auth_answer(c->h2, cli_hex, expect);
    snprintf(path, sizeof path, "/api/auth/answer?srv_rand_answer=%s&cli_rand=%s", answer, cli_hex);
    if (s_http(c, path, NULL, &status, &new_conn, &cerr, err, errlen) != 0)
        return MT5_TRANSIENT;
    if (new_conn) {
        /* the answer went out on another connection than the start: start again */
        err_set(err, errlen, "auth: connection changed during the handshake");
        *retry = 1;
        return MT5_TRANSIENT;
    }
    if (status == 403) {
        err_set(err, errlen, "auth/answer: HTTP 403 (wrong manager login or password)");
        return MT5_AUTH_FAILED;
    }
    if (status != 200) {
        err_set(err, errlen, "auth/answer: HTTP %ld", status);
        return MT5_TRANSIENT;
    }
    if (s_parse_reply(c, &doc, &retcode, err, errlen) != 0)
        return MT5_TRANSIENT;
    if (retcode != 0) {
        bson_destroy(&doc);
        mt5_result_t r = mt5_retcode_class(retcode, 0);
        return r == MT5_TRANSIENT ? r : MT5_AUTH_FAILED;
    }
    const char *got = json_get_str(&doc, "cli_rand_answer");
    int genuine = got && strcasecmp(got, expect) == 0;
    bson_destroy(&doc);
    if (!genuine) {
        err_set(err, errlen, "auth/answer: cli_rand_answer is wrong: the server is not genuine");
        return MT5_AUTH_FAILED;
    }
    c->authed = 1;
    c->auth_count++;
    log_info("mt5.auth", "manager=%" PRIu64 " sessions=%" PRIu64, c->login, c->auth_count);
    return MT5_OK;
}

static mt5_result_t s_auth(mt5_client_t *c, char *err, size_t errlen)
{
    int retry = 0;
    mt5_result_t r = MT5_TRANSIENT;
    for (int attempt = 0; attempt < 3; attempt++) {
        r = s_auth_once(c, &retry, err, errlen);
        if (!retry)
            break;
    }
    if (r != MT5_OK)
        log_warn("mt5.auth_failed", "manager=%" PRIu64 " result=%s", c->login, mt5_result_name(r));
    return r;
}

/* 1 if the session's connection is still open as far as the kernel knows (no EOF, no error). */
static int s_conn_alive(mt5_client_t *c)
{
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
        return 0;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return 0; /* the server closed it */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return 0;
    return 1; /* idle, or TLS records waiting to be read: curl handles those */
}

static mt5_result_t s_ensure_session(mt5_client_t *c, char *err, size_t errlen)
{
    if (c->authed && s_now_ms() - c->last_ms > MT5_SESSION_IDLE_MS)
        c->authed = 0; /* the server has dropped it by now */
    return c->authed ? MT5_OK : s_auth(c, err, errlen);
}

/* A read command: opens a session if needed, sends, and after a lost session (403, transport
 * error, new connection with 403) authenticates again and resends once. On MT5_OK (retcode 0)
 * *doc holds the reply (bson_destroy it); on any other result *doc is not initialised. */
static mt5_result_t s_read(mt5_client_t *c, const char *path, const char *body, bson_t *doc,
                           char *err, size_t errlen)
{
    mt5_result_t r = MT5_TRANSIENT;
    for (int attempt = 0; attempt < 2; attempt++) {
        long status = 0;
        int new_conn = 0, retcode = -1;
        CURLcode cerr;
        r = s_ensure_session(c, err, errlen);
        if (r != MT5_OK)
            return r;
        if (s_http(c, path, body, &status, &new_conn, &cerr, err, errlen) != 0) {
            c->authed = 0;
            r = MT5_TRANSIENT;
            continue;
        }
        if (new_conn)
            c->authed = 0; /* the session was bound to the old connection: authenticate next time */
        if (status == 403) {
            c->authed = 0;
            c->last_retcode = -1;
            err_set(err, errlen, "HTTP 403 (session lost)");
            r = MT5_TRANSIENT;
            continue;
        }
        if (status != 200) {
            c->last_retcode = -1;
            err_set(err, errlen, "HTTP %ld", status);
            return MT5_TRANSIENT;
        }
        if (s_parse_reply(c, doc, &retcode, err, errlen) != 0)
            return MT5_TRANSIENT;
        r = mt5_retcode_class(retcode, 0);
        if (r != MT5_OK)
            bson_destroy(doc);
        return r;
    }
    return r;
}

/* ---- the client -------------------------------------------------------------------------------------- */

mt5_client_t *mt5_client_new(const char *url, uint64_t manager_login, const char *password,
                             const char *ca_file, long timeout_ms)
{
    if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) || !password
        || timeout_ms <= 0 || manager_login == 0)
        return NULL;
    pthread_once(&s_curl_once, s_curl_init);
    mt5_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (mt5_auth_h2(password, c->h2) != 0) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    jbuf_init(&c->reply);
    c->login = manager_login;
    c->timeout_ms = timeout_ms;
    c->last_retcode = -1;
    c->base = strdup(url);
    c->ca_file = (ca_file && *ca_file) ? strdup(ca_file) : NULL;
    c->curl = curl_easy_init();
    if (!c->base || (ca_file && *ca_file && !c->ca_file) || !c->curl) {
        mt5_client_destroy(&c);
        return NULL;
    }
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->headers = curl_slist_append(NULL, "Expect:");
    c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_COOKIEFILE, "");      /* cookie engine on, in memory */
    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 1L);     /* one connection: the session's */
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, s_open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kasa");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    return c;
}

void mt5_client_destroy(mt5_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mt5_client_t *c = *self_p;
    if (c->curl && c->authed)
        mt5_quit(c);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    free(c->base);
    free(c->ca_file);
    jbuf_free(&c->reply);
    OPENSSL_cleanse(c->h2, sizeof c->h2);
    pthread_mutex_destroy(&c->mu);
    free(c);
    *self_p = NULL;
}

mt5_result_t mt5_ping(mt5_client_t *c, char *err, size_t errlen)
{
    bson_t doc;
    pthread_mutex_lock(&c->mu);
    mt5_result_t r = s_read(c, "/api/test/access", NULL, &doc, err, errlen);
    if (r == MT5_OK)
        bson_destroy(&doc);
    pthread_mutex_unlock(&c->mu);
    return r;
}

void mt5_quit(mt5_client_t *c)
{
    long status;
    int new_conn;
    CURLcode cerr;
    char err[64];
    pthread_mutex_lock(&c->mu);
    if (c->authed && s_conn_alive(c)) { /* a session on a closed connection is gone already */
        c->forbid_new_conn = 1;
        s_http(c, "/api/quit", NULL, &status, &new_conn, &cerr, err, sizeof err);
        c->forbid_new_conn = 0;
    }
    c->authed = 0;
    pthread_mutex_unlock(&c->mu);
}

uint64_t mt5_auth_count(const mt5_client_t *c)
{
    mt5_client_t *m = (mt5_client_t *) c; /* the mutex only, for a consistent read */
    pthread_mutex_lock(&m->mu);
    uint64_t n = c->auth_count;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int mt5_last_retcode(const mt5_client_t *c)
{
    mt5_client_t *m = (mt5_client_t *) c;
    pthread_mutex_lock(&m->mu);
    int rc = c->last_retcode;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- operations ----------------------------------------------------------------------------------------- */

static int s_comment_ok(const char *comment)
{
    size_t n = comment ? strlen(comment) : 0;
    if (n < 1 || n > MT5_COMMENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) comment[i] < 0x20 || (unsigned char) comment[i] > 0x7e)
            return 0;
    return 1;
}

/* Reads answer.<key> case-insensitively as an unsigned integer (string or number). 0, or -1. */
static int s_answer_u64(const bson_t *doc, const char *key, uint64_t *out)
{
    bson_iter_t it, sub;
    if (!bson_iter_init_find(&it, doc, "answer") || !BSON_ITER_HOLDS_DOCUMENT(&it)
        || !bson_iter_recurse(&it, &sub) || !bson_iter_find_case(&sub, key))
        return -1;
    if (BSON_ITER_HOLDS_INT32(&sub) || BSON_ITER_HOLDS_INT64(&sub)) {
        int64_t v = bson_iter_as_int64(&sub);
        if (v < 0)
            return -1;
        *out = (uint64_t) v;
        return 0;
    }
    if (!BSON_ITER_HOLDS_UTF8(&sub))
        return -1;
    return mt5_parse_u64(bson_iter_utf8(&sub, NULL), out);
}

int mt5_parse_u64(const char *text, uint64_t *out)
{
    if (!text || !*text || strlen(text) > 19)
        return -1;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t) (*p - '0');
    }
    *out = v;
    return 0;
}

int mt5_parse_login(const char *text, uint64_t *login)
{
    uint64_t v;
    if (mt5_parse_u64(text, &v) != 0 || v == 0)
        return -1;
    *login = v;
    return 0;
}

static void s_measure_clock(mt5_client_t *c, uint64_t ticket, int64_t sent_s, int64_t done_s);

mt5_result_t mt5_balance(mt5_client_t *c, uint64_t login, int64_t amount_minor, int digits,
                         const char *comment, uint64_t *ticket, char *err, size_t errlen)
{
    char amount[48], path[512];
    if (ticket)
        *ticket = 0;
    if (amount_minor == 0 || amount_minor == INT64_MIN || login == 0
        || mt5_format_amount(amount_minor, digits, amount, sizeof amount) != 0) {
        err_set(err, errlen, "refused before sending: bad amount, login or digits");
        return MT5_PERMANENT;
    }
    if (!s_comment_ok(comment)) {
        err_set(err, errlen, "refused before sending: comment must be 1..%d printable ASCII characters",
                  MT5_COMMENT_MAX);
        return MT5_PERMANENT;
    }
    pthread_mutex_lock(&c->mu);
    char *esc = curl_easy_escape(c->curl, comment, 0); /* spaces become %20 */
    if (!esc)
        abort();
    snprintf(path, sizeof path, "/api/trade/balance?login=%" PRIu64 "&type=2&balance=%s&comment=%s&check_margin=%d",
             login, amount, esc, amount_minor < 0 ? 1 : 0);
    curl_free(esc);

    /* Prove the session and its connection alive first: nothing has been sent yet, so every
     * failure up to here is safe to retry. */
    mt5_result_t r = MT5_OK;
    if (c->authed && !s_conn_alive(c))
        c->authed = 0; /* the connection closed: a new one needs a new session */
    if (c->authed && s_now_ms() - c->last_ms > MT5_IDLE_PING_MS) {
        bson_t doc;
        r = s_read(c, "/api/test/access", NULL, &doc, err, errlen);
        if (r == MT5_OK)
            bson_destroy(&doc);
    }
    if (r == MT5_OK)
        r = s_ensure_session(c, err, errlen);
    if (r != MT5_OK) {
        pthread_mutex_unlock(&c->mu);
        return r == MT5_PERMANENT ? MT5_TRANSIENT : r;
    }

    long status = 0;
    int new_conn = 0, retcode = -1;
    CURLcode cerr;
    c->forbid_new_conn = 1;
    int64_t sent_s = (int64_t) time(NULL);
    int sent = s_http(c, path, NULL, &status, &new_conn, &cerr, err, errlen);
    int64_t done_s = (int64_t) time(NULL);
    c->forbid_new_conn = 0;
    if (sent != 0) {
        c->authed = 0;
        c->last_retcode = -1;
        r = MT5_AMBIGUOUS;
    } else {
        if (new_conn)
            c->authed = 0;
        if (status != 200) {
            if (status == 403)
                c->authed = 0;
            c->last_retcode = -1;
            err_set(err, errlen, "balance: HTTP %ld%s", status, status == 403 ? " (session lost)" : "");
            r = MT5_AMBIGUOUS;
        } else {
            bson_t doc;
            if (s_parse_reply(c, &doc, &retcode, err, errlen) != 0) {
                r = MT5_AMBIGUOUS;
            } else {
                r = mt5_retcode_class(retcode, 1);
                uint64_t t = 0;
                if (r == MT5_OK && (s_answer_u64(&doc, "Ticket", &t) != 0 || t == 0)) {
                    err_set(err, errlen, "balance: done but no ticket in the reply");
                    r = MT5_AMBIGUOUS;
                }
                if (ticket)
                    *ticket = t;
                bson_destroy(&doc);
                if (r == MT5_OK)
                    s_measure_clock(c, t, sent_s, done_s);
            }
        }
    }
    log_info("mt5.balance", "login=%" PRIu64 " amount=%s comment=%s result=%s ticket=%" PRIu64
             " retcode=%d", login, amount, comment, mt5_result_name(r), ticket ? *ticket : 0,
             c->last_retcode);
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* A field of a deal object as text (string or integer), or NULL. */
static const char *s_field(bson_iter_t *deal, const char *key, char *buf, size_t len)
{
    bson_iter_t f;
    if (!bson_iter_recurse(deal, &f) || !bson_iter_find_case(&f, key))
        return NULL;
    if (BSON_ITER_HOLDS_UTF8(&f))
        return bson_iter_utf8(&f, NULL);
    if (BSON_ITER_HOLDS_INT32(&f) || BSON_ITER_HOLDS_INT64(&f)) {
        snprintf(buf, len, "%" PRId64, bson_iter_as_int64(&f));
        return buf;
    }
    return NULL;
}

/* The length of ref's trailing run of hex digits (its core), and where it starts. */
static size_t s_core(const char *ref, const char **core)
{
    size_t n = strlen(ref), k = 0;
    while (k < n && s_hexval(ref[n - 1 - k]) >= 0)
        k++;
    *core = ref + n - k;
    return k;
}

/* 1 if text[0..len) equals core[0..len) ignoring case (hex digits only). */
static int s_hex_eq(const char *text, const char *core, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s_hexval(text[i]) < 0 || s_hexval(text[i]) != s_hexval(core[i]))
            return 0;
    return 1;
}

#define S_CORE_MIN 8       /* a shorter core is matched exactly */
#define S_CORE_CUT_MIN 16  /* a core cut at the comment's end still identifies with this many digits */

int mt5_comment_matches(const char *comment, const char *ref)
{
    if (!comment || !ref || !*ref)
        return 0;
    const char *core;
    size_t k = s_core(ref, &core), n = strlen(comment);
    if (k < S_CORE_MIN)
        return strcasecmp(comment, ref) == 0;
    for (size_t i = 0; i + k <= n; i++)
        if (s_hex_eq(comment + i, core, k))
            return 1;
    while (n > 0 && comment[n - 1] == ' ')
        n--;
    /* the comment's trailing hex run, if it starts the core */
    size_t run = 0;
    while (run < n && s_hexval(comment[n - 1 - run]) >= 0)
        run++;
    return run >= S_CORE_CUT_MIN && run < k && s_hex_eq(comment + n - run, core, run);
}

/* Copies deal's text field key into buf (cap bytes); 0, or -1 if absent or too long. */
static int s_field_copy(bson_iter_t *deal, const char *key, char *buf, size_t cap)
{
    char tmp[32];
    const char *v = s_field(deal, key, tmp, sizeof tmp);
    if (!v || strlen(v) >= cap)
        return -1;
    snprintf(buf, cap, "%s", v);
    return 0;
}

/* Reads one page's answer: every element must be a deal with Deal, Action and Comment, else the page
 * is odd (-1, err). fn sees each balance deal (listed for login) until it returns non-zero (*stop);
 * *returned gets the number of deals on the page read so far. */
static int s_page(const bson_t *doc, uint64_t login, mt5_deal_fn fn, void *arg, int *stop, uint64_t *returned,
                  char *err, size_t errlen)
{
    bson_iter_t it, deals;
    *returned = 0;
    if (!bson_iter_init_find(&it, doc, "answer") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &deals)) {
        err_set(err, errlen, "deal/get_page: the answer is not an array of deals");
        return -1;
    }
    while (!*stop && bson_iter_next(&deals)) {
        (*returned)++;
        char b1[32], b2[32];
        mt5_deal_t d;
        memset(&d, 0, sizeof d);
        const char *deal = BSON_ITER_HOLDS_DOCUMENT(&deals) ? s_field(&deals, "Deal", b1, sizeof b1) : NULL;
        const char *action = deal ? s_field(&deals, "Action", b2, sizeof b2) : NULL;
        if (!deal || mt5_parse_u64(deal, &d.ticket) != 0 || d.ticket == 0 || !action
            || s_field_copy(&deals, "Comment", d.comment, sizeof d.comment) != 0) {
            err_set(err, errlen, "deal/get_page: element %" PRIu64 " is not a deal with Deal, Action and Comment",
                    *returned - 1);
            return -1;
        }
        if (strcmp(action, "2") != 0)
            continue;
        char b3[32];
        const char *l = s_field(&deals, "Login", b3, sizeof b3);
        if (!l || mt5_parse_u64(l, &d.login) != 0)
            d.login = login;
        if (s_field_copy(&deals, "Profit", d.profit, sizeof d.profit) != 0)
            d.profit[0] = '\0';
        const char *t = s_field(&deals, "Time", b3, sizeof b3);
        uint64_t ts = 0;
        if (t && mt5_parse_u64(t, &ts) == 0)
            d.time_s = (int64_t) ts;
        *stop = fn(arg, &d) != 0;
    }
    return 0;
}

mt5_result_t mt5_each_balance_deal(mt5_client_t *c, uint64_t login, int64_t from_s, int64_t to_s,
                                   mt5_deal_fn fn, void *arg, char *err, size_t errlen)
{
    char path[256];
    bson_t doc;
    if (!fn || login == 0 || from_s > to_s) {
        err_set(err, errlen, "bad search arguments");
        return MT5_PERMANENT;
    }
    pthread_mutex_lock(&c->mu);
    snprintf(path, sizeof path, "/api/deal/get_total?login=%" PRIu64 "&from=%" PRId64 "&to=%" PRId64,
             login, from_s, to_s);
    mt5_result_t r = s_read(c, path, NULL, &doc, err, errlen);
    uint64_t total = 0, read = 0, pages = 0;
    if (r == MT5_OK) {
        if (s_answer_u64(&doc, "Total", &total) != 0) {
            err_set(err, errlen, "deal/get_total: no Total in the reply");
            r = MT5_CANNOT_TELL;
        } else if (total > MT5_SEARCH_MAX_DEALS) {
            err_set(err, errlen, "deal/get_total: %" PRIu64 " deals in the window, more than one search reads (%d)",
                    total, MT5_SEARCH_MAX_DEALS);
            r = MT5_CANNOT_TELL;
        }
        bson_destroy(&doc);
    }
    /* Each page starts where the deals read so far end: a server that returns shorter pages than
     * asked skips nothing. Bounded: at most Total deals, each page at least one. */
    int stop = 0;
    while (r == MT5_OK && !stop && read < total) {
        snprintf(path, sizeof path,
                 "/api/deal/get_page?login=%" PRIu64 "&from=%" PRId64 "&to=%" PRId64 "&offset=%" PRIu64 "&total=%d",
                 login, from_s, to_s, read, MT5_PAGE);
        r = s_read(c, path, NULL, &doc, err, errlen);
        if (r != MT5_OK)
            break;
        uint64_t returned = 0;
        if (s_page(&doc, login, fn, arg, &stop, &returned, err, errlen) != 0) {
            r = MT5_CANNOT_TELL;
        } else if (!stop && (returned == 0 || returned > MT5_PAGE)) {
            err_set(err, errlen, "deal/get_page at offset %" PRIu64 " of %" PRIu64 ": %s", read, total,
                    returned ? "more deals than asked" : "no deals before the total");
            r = MT5_CANNOT_TELL;
        }
        bson_destroy(&doc);
        read += returned;
        pages++;
    }
    pthread_mutex_unlock(&c->mu);
    log_info("mt5.deals", "login=%" PRIu64 " from=%" PRId64 " to=%" PRId64 " total=%" PRIu64 " read=%" PRIu64
             " pages=%" PRIu64 " stopped=%d result=%s", login, from_s, to_s, total, read, pages, stop,
             mt5_result_name(r));
    return r;
}

typedef struct {
    const char *ref;
    mt5_deal_t *found;
    size_t cap, matches;
} s_find_t;

static int s_find_each(void *arg, const mt5_deal_t *d)
{
    s_find_t *f = arg;
    if (!mt5_comment_matches(d->comment, f->ref))
        return 0;
    if (f->matches < f->cap)
        f->found[f->matches] = *d;
    f->matches++;
    return 0;   /* every match is counted: two are a double credit */
}

mt5_result_t mt5_find_balance_deals(mt5_client_t *c, uint64_t login, const char *ref, int64_t from_s, int64_t to_s,
                                    mt5_deal_t *found, size_t cap, size_t *count, char *err, size_t errlen)
{
    *count = 0;
    if (!ref || !*ref || login == 0 || from_s > to_s || (cap && !found)) {
        err_set(err, errlen, "bad search arguments");
        return MT5_PERMANENT;
    }
    s_find_t f = { ref, found, cap, 0 };
    mt5_result_t r = mt5_each_balance_deal(c, login, from_s, to_s, s_find_each, &f, err, errlen);
    *count = f.matches;
    if (r == MT5_OK)
        r = f.matches ? MT5_OK : MT5_NOT_FOUND;
    log_info("mt5.find_deal", "login=%" PRIu64 " ref=\"%s\" from=%" PRId64 " to=%" PRId64
             " result=%s matches=%zu ticket=%" PRIu64, login, ref, from_s, to_s, mt5_result_name(r), f.matches,
             f.matches && cap ? found[0].ticket : 0);
    return r;
}

mt5_result_t mt5_find_balance_deal(mt5_client_t *c, uint64_t login, const char *ref,
                                   int64_t from_s, int64_t to_s, uint64_t *ticket,
                                   char *err, size_t errlen)
{
    mt5_deal_t d;
    size_t n = 0;
    mt5_result_t r = mt5_find_balance_deals(c, login, ref, from_s, to_s, &d, 1, &n, err, errlen);
    if (ticket)
        *ticket = r == MT5_OK ? d.ticket : 0;
    return r;
}

int mt5_clock_offset(mt5_client_t *c, int64_t *offset_s)
{
    pthread_mutex_lock(&c->mu);
    int known = c->clock_known;
    if (known)
        *offset_s = c->clock_offset_s;
    pthread_mutex_unlock(&c->mu);
    return known ? 0 : -1;
}

/* Under c->mu, after a balance call made deal ticket between kasa's UTC seconds sent_s and done_s:
 * reads the deal back (/api/deal/get_batch?ticket=) and keeps its Time minus kasa's clock. At most
 * every MT5_CLOCK_MEASURE_S; a failure changes nothing (the balance call's outcome stands). */
static void s_measure_clock(mt5_client_t *c, uint64_t ticket, int64_t sent_s, int64_t done_s)
{
    if (c->clock_known && s_now_ms() - c->clock_measured_ms < MT5_CLOCK_MEASURE_S * 1000)
        return;
    char path[96], err[128];
    bson_t doc;
    snprintf(path, sizeof path, "/api/deal/get_batch?ticket=%" PRIu64, ticket);
    if (s_read(c, path, NULL, &doc, err, sizeof err) != MT5_OK)
        return;
    bson_iter_t it, deals;
    uint64_t t = 0;
    if (bson_iter_init_find(&it, &doc, "answer") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &deals)
        && bson_iter_next(&deals) && BSON_ITER_HOLDS_DOCUMENT(&deals)) {
        char b[32];
        const char *v = s_field(&deals, "Time", b, sizeof b);
        if (v && mt5_parse_u64(v, &t) == 0 && t > 0) {
            c->clock_offset_s = (int64_t) t - (sent_s + done_s) / 2;
            c->clock_known = 1;
            c->clock_measured_ms = s_now_ms();
            log_info("mt5.clock", "offset_s=%" PRId64 " ticket=%" PRIu64, c->clock_offset_s, ticket);
        }
    }
    bson_destroy(&doc);
}

/* Copies answer.<key> (any case) as text into buf: a string as is, an integer in decimal, a
 * double (MT5 sends money as strings; a number is accepted for display only) to 8 decimals. */
static void s_answer_text(const bson_t *doc, const char *key, char *buf, size_t len)
{
    bson_iter_t it, sub;
    buf[0] = '\0';
    if (!bson_iter_init_find(&it, doc, "answer") || !BSON_ITER_HOLDS_DOCUMENT(&it)
        || !bson_iter_recurse(&it, &sub) || !bson_iter_find_case(&sub, key))
        return;
    if (BSON_ITER_HOLDS_UTF8(&sub)) {
        snprintf(buf, len, "%s", bson_iter_utf8(&sub, NULL));
    } else if (BSON_ITER_HOLDS_INT32(&sub) || BSON_ITER_HOLDS_INT64(&sub)) {
        snprintf(buf, len, "%" PRId64, bson_iter_as_int64(&sub));
    } else if (BSON_ITER_HOLDS_DOUBLE(&sub)) {
        snprintf(buf, len, "%.8f", bson_iter_double(&sub));
        char *dot = strchr(buf, '.');
        if (dot) {
            char *e = buf + strlen(buf) - 1;
            while (e > dot && *e == '0')
                *e-- = '\0';
            if (e == dot)
                *e = '\0';
        }
    }
}

/* GET /api/COMMAND?login=L into *doc (MT5_OK: the caller destroys it), with *answer_login the
 * answer's Login (login when it has none). */
static mt5_result_t s_read_login(mt5_client_t *c, const char *command, uint64_t login, bson_t *doc,
                                 uint64_t *answer_login, char *err, size_t errlen)
{
    char path[96];
    snprintf(path, sizeof path, "/api/%s?login=%" PRIu64, command, login);
    pthread_mutex_lock(&c->mu);
    mt5_result_t r = s_read(c, path, NULL, doc, err, errlen);
    pthread_mutex_unlock(&c->mu);
    if (r == MT5_OK && s_answer_u64(doc, "Login", answer_login) != 0)
        *answer_login = login;
    return r;
}

mt5_result_t mt5_user_get(mt5_client_t *c, uint64_t login, mt5_user_t *out, char *err, size_t errlen)
{
    bson_t doc;
    memset(out, 0, sizeof *out);
    mt5_result_t r = s_read_login(c, "user/get", login, &doc, &out->login, err, errlen);
    if (r != MT5_OK)
        return r;
    s_answer_text(&doc, "Group", out->group, sizeof out->group);
    s_answer_text(&doc, "Name", out->name, sizeof out->name);
    s_answer_text(&doc, "Balance", out->balance, sizeof out->balance);
    s_answer_text(&doc, "Credit", out->credit, sizeof out->credit);
    bson_destroy(&doc);
    return MT5_OK;
}

mt5_result_t mt5_group_get(mt5_client_t *c, const char *group, mt5_group_t *out, char *err, size_t errlen)
{
    char path[300], digits[16];
    bson_t doc;
    memset(out, 0, sizeof *out);
    if (!group || !*group || strlen(group) >= sizeof out->group) {
        err_set(err, errlen, "bad group name");
        return MT5_PERMANENT;
    }
    pthread_mutex_lock(&c->mu);
    char *esc = curl_easy_escape(c->curl, group, 0);
    if (!esc)
        abort();
    snprintf(path, sizeof path, "/api/group/get?group=%s", esc);
    curl_free(esc);
    mt5_result_t r = s_read(c, path, NULL, &doc, err, errlen);
    pthread_mutex_unlock(&c->mu);
    if (r != MT5_OK)
        return r;
    snprintf(out->group, sizeof out->group, "%s", group);
    s_answer_text(&doc, "Currency", out->currency, sizeof out->currency);
    s_answer_text(&doc, "CurrencyDigits", digits, sizeof digits);
    bson_destroy(&doc);
    if (!digits[0] || digits[1] || digits[0] < '0' || digits[0] > '8') {
        err_set(err, errlen, "group/get: CurrencyDigits missing or out of range");
        return MT5_PERMANENT;
    }
    out->digits = digits[0] - '0';
    return MT5_OK;
}

mt5_result_t mt5_user_account_get(mt5_client_t *c, uint64_t login, mt5_account_t *out,
                                  char *err, size_t errlen)
{
    bson_t doc;
    memset(out, 0, sizeof *out);
    mt5_result_t r = s_read_login(c, "user/account/get", login, &doc, &out->login, err, errlen);
    if (r != MT5_OK)
        return r;
    s_answer_text(&doc, "Balance", out->balance, sizeof out->balance);
    s_answer_text(&doc, "Equity", out->equity, sizeof out->equity);
    s_answer_text(&doc, "Margin", out->margin, sizeof out->margin);
    s_answer_text(&doc, "MarginFree", out->margin_free, sizeof out->margin_free);
    bson_destroy(&doc);
    return MT5_OK;
}

mt5_result_t mt5_check_password(mt5_client_t *c, uint64_t login, const char *password,
                                const char *type, char *err, size_t errlen)
{
    if (!password || !type || (strcmp(type, "main") && strcmp(type, "investor") && strcmp(type, "api"))
        || login == 0 || strlen(password) > 256) {
        err_set(err, errlen, "bad check_password arguments");
        return MT5_PERMANENT;
    }
    jbuf_t body;
    jbuf_init(&body);
    jbuf_printf(&body, "{\"Login\":\"%" PRIu64 "\",\"Type\":", login);
    jbuf_str(&body, type);
    jbuf_puts(&body, ",\"Password\":");
    jbuf_str(&body, password);
    jbuf_puts(&body, "}");
    bson_t doc;
    pthread_mutex_lock(&c->mu);
    mt5_result_t r = s_read(c, "/api/user/check_password", body.data, &doc, err, errlen);
    pthread_mutex_unlock(&c->mu);
    OPENSSL_cleanse(body.data, body.cap);
    jbuf_free(&body);
    if (r == MT5_OK)
        bson_destroy(&doc);
    if (r == MT5_BAD_PASSWORD)
        err_set(err, errlen, "invalid account password");
    return r;
}
