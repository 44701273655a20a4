/* config.c — see config.h.
 *
 * Loading runs in four steps: defaults; the file (KEY=VALUE lines) into a table of raw strings;
 * the environment over that table; then every raw string is converted and checked, and each
 * problem adds one line to err. Only keys kasa knows are read from the environment (the
 * environment holds many unrelated variables); in the file, an unknown KASA_/COBO_/MT5_/TELEGRAM_
 * key is an error, because it is most likely a typo of a real key. */
#include "schema/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sodium.h>
#include <unistd.h>

#include "schema/admin.h"
#include "schema/log.h"
#include "schema/mongo.h"

extern char **environ;

#define CONFIG_LINE_MAX 4096   /* longest line read from a file */
#define CONFIG_LINES_MAX 10000 /* most lines read from a file */
#define CONFIG_VALUE_MAX 1024  /* longest value kept */
#define CONFIG_FILE_MAX (1 << 20) /* largest file read */

#define COBO_PROD_PUBKEY "8d4a482641adb2a34b726f05827dba9a9653e5857469b8749052bf4458a86729"
#define COBO_DEV_PUBKEY  "a04ea1d5fa8da71f1dcfccf972b9c4eba0a2d8aba1f6da26f49977b08a0d2718"

/* Every key kasa reads. `secret` keys are never printed. */
typedef enum {
    K_LISTEN, K_WEBHOOK_LISTEN, K_JOURNAL_DIR, K_MONITOR, K_CONTROL, K_STATIC_DIR, K_PUBLIC_URL, K_MAX_BODY,
    K_HTTP_THREADS, K_MAX_DEPOSITS, K_LOG_LEVEL, K_SNAPSHOT_EVERY_RECORDS, K_SNAPSHOT_EVERY_S,
    K_COOKIE_SECURE, K_INVESTOR_PASSWORD_LOGIN, K_TRUSTED_PROXIES, K_HEADER_TIMEOUT_MS, K_MAX_CONNECTIONS,
    K_MAX_CONNECTIONS_PER_IP,
    K_COBO_API_URL, K_COBO_API_KEY, K_COBO_API_SECRET, K_COBO_WEBHOOK_PUBKEY, K_COBO_ENV,
    K_COBO_WALLET_ID, K_CHAINS,
    K_MT5_URL, K_MT5_LOGIN, K_MT5_PASSWORD, K_MT5_CA_FILE, K_MT5_SETTLE_S, K_MT5_TIMEOUT_MS, K_COBO_TIMEOUT_MS,
    K_TELEGRAM_API_URL, K_TELEGRAM_BOT_TOKEN, K_TELEGRAM_CHAT_ID, K_NOTICE_LANG, K_TELEGRAM_APPROVERS,
    K_TELEGRAM_POLL_S,
    K_AUTO_CREDIT_LIMIT, K_DUAL_APPROVAL_LIMIT, K_CREDITERS, K_LOCKERS, K_NOTIFIERS,
    K_PENDING_AGE_S, K_PENDING_POLL_S, K_COBO_CONFIRM_WAIT_S,
    K_MONGO_URI, K_MONGO_DB, K_NODE_ID, K_MONGO_BATCH, K_CLUSTER, K_CLAIM_LEASE_MS,
    K_CATCHUP_INTERVAL, K_CATCHUP_LOOKBACK, K_METRICS_LISTEN, K_LOG_FORMAT,
    K_WITHDRAW_RULES, K_WITHDRAW_AUTO_APPROVE_LIMIT, K_WITHDRAW_DUAL_APPROVAL_LIMIT, K_WITHDRAW_POLL_S,
    K_COBO_WITHDRAW_WALLET_ID, K_COBO_WITHDRAW_ADDRESS, K_OWN_ADDRESSES,
    K_RATE_URL, K_RATE_MAX_AGE_S, K_RATE_REFRESH_S,
    K_COUNT
} key_id_t;

typedef struct {
    const char *name;
    int secret;
    int required;
} key_def_t;

static const key_def_t s_keys[K_COUNT] = {
    [K_LISTEN]             = { "KASA_LISTEN", 0, 0 },
    [K_WEBHOOK_LISTEN]     = { "KASA_WEBHOOK_LISTEN", 0, 0 },
    [K_JOURNAL_DIR]        = { "KASA_JOURNAL_DIR", 0, 1 },
    [K_MONITOR]            = { "KASA_MONITOR", 0, 0 },
    [K_CONTROL]            = { "KASA_CONTROL", 0, 0 },
    [K_STATIC_DIR]         = { "KASA_STATIC_DIR", 0, 0 },
    [K_PUBLIC_URL]         = { "KASA_PUBLIC_URL", 0, 0 },
    [K_MAX_BODY]           = { "KASA_MAX_BODY", 0, 0 },
    [K_HTTP_THREADS]       = { "KASA_HTTP_THREADS", 0, 0 },
    [K_MAX_DEPOSITS]       = { "KASA_MAX_DEPOSITS", 0, 0 },
    [K_SNAPSHOT_EVERY_RECORDS] = { "KASA_SNAPSHOT_EVERY_RECORDS", 0, 0 },
    [K_SNAPSHOT_EVERY_S]   = { "KASA_SNAPSHOT_EVERY_S", 0, 0 },
    [K_LOG_LEVEL]          = { "KASA_LOG_LEVEL", 0, 0 },
    [K_COOKIE_SECURE]      = { "KASA_COOKIE_SECURE", 0, 0 },
    [K_INVESTOR_PASSWORD_LOGIN] = { "KASA_INVESTOR_PASSWORD_LOGIN", 0, 0 },
    [K_TRUSTED_PROXIES]    = { "KASA_TRUSTED_PROXIES", 0, 0 },
    [K_HEADER_TIMEOUT_MS]  = { "KASA_HEADER_TIMEOUT_MS", 0, 0 },
    [K_MAX_CONNECTIONS]    = { "KASA_MAX_CONNECTIONS", 0, 0 },
    [K_MAX_CONNECTIONS_PER_IP] = { "KASA_MAX_CONNECTIONS_PER_IP", 0, 0 },
    [K_COBO_API_URL]       = { "COBO_API_URL", 0, 1 },
    [K_COBO_API_KEY]       = { "COBO_API_KEY", 0, 1 },
    [K_COBO_API_SECRET]    = { "COBO_API_SECRET", 1, 1 },
    [K_COBO_WEBHOOK_PUBKEY]= { "COBO_WEBHOOK_PUBKEY", 0, 0 },
    [K_COBO_ENV]           = { "COBO_ENV", 0, 0 },
    [K_COBO_WALLET_ID]     = { "COBO_WALLET_ID", 0, 0 },
    [K_CHAINS]             = { "KASA_CHAINS", 0, 0 },
    [K_MT5_URL]            = { "MT5_URL", 0, 1 },
    [K_MT5_LOGIN]          = { "MT5_LOGIN", 0, 1 },
    [K_MT5_PASSWORD]       = { "MT5_PASSWORD", 1, 1 },
    [K_MT5_CA_FILE]        = { "MT5_CA_FILE", 0, 0 },
    [K_MT5_SETTLE_S]       = { "KASA_MT5_SETTLE_S", 0, 0 },
    [K_MT5_TIMEOUT_MS]     = { "KASA_MT5_TIMEOUT_MS", 0, 0 },
    [K_COBO_TIMEOUT_MS]    = { "KASA_COBO_TIMEOUT_MS", 0, 0 },
    [K_TELEGRAM_API_URL]   = { "TELEGRAM_API_URL", 0, 0 },
    [K_TELEGRAM_BOT_TOKEN] = { "TELEGRAM_BOT_TOKEN", 1, 1 },
    [K_TELEGRAM_CHAT_ID]   = { "TELEGRAM_CHAT_ID", 0, 1 },
    [K_NOTICE_LANG]        = { "KASA_NOTICE_LANG", 0, 0 },
    [K_TELEGRAM_APPROVERS] = { "KASA_TELEGRAM_APPROVERS", 0, 0 },
    [K_TELEGRAM_POLL_S]    = { "KASA_TELEGRAM_POLL_S", 0, 0 },
    [K_AUTO_CREDIT_LIMIT]  = { "KASA_AUTO_CREDIT_LIMIT", 0, 0 },
    [K_DUAL_APPROVAL_LIMIT] = { "KASA_DUAL_APPROVAL_LIMIT", 0, 0 },
    [K_CREDITERS]          = { "KASA_CREDITERS", 0, 0 },
    [K_LOCKERS]            = { "KASA_LOCKERS", 0, 0 },
    [K_NOTIFIERS]          = { "KASA_NOTIFIERS", 0, 0 },
    [K_PENDING_AGE_S]      = { "KASA_PENDING_AGE_S", 0, 0 },
    [K_PENDING_POLL_S]     = { "KASA_PENDING_POLL_S", 0, 0 },
    [K_COBO_CONFIRM_WAIT_S]= { "KASA_COBO_CONFIRM_WAIT_S", 0, 0 },
    [K_MONGO_URI]          = { "KASA_MONGO_URI", 1, 0 },
    [K_MONGO_DB]           = { "KASA_MONGO_DB", 0, 0 },
    [K_NODE_ID]            = { "KASA_NODE_ID", 0, 0 },
    [K_MONGO_BATCH]        = { "KASA_MONGO_BATCH", 0, 0 },
    [K_CLUSTER]            = { "KASA_CLUSTER", 0, 0 },
    [K_CLAIM_LEASE_MS]     = { "KASA_CLAIM_LEASE_MS", 0, 0 },
    [K_CATCHUP_INTERVAL]   = { "KASA_CATCHUP_INTERVAL", 0, 0 },
    [K_CATCHUP_LOOKBACK]   = { "KASA_CATCHUP_LOOKBACK", 0, 0 },
    [K_METRICS_LISTEN]     = { "KASA_METRICS_LISTEN", 0, 0 },
    [K_LOG_FORMAT]         = { "KASA_LOG_FORMAT", 0, 0 },
    [K_WITHDRAW_RULES]     = { "KASA_WITHDRAW_RULES", 0, 0 },
    [K_WITHDRAW_AUTO_APPROVE_LIMIT] = { "KASA_WITHDRAW_AUTO_APPROVE_LIMIT", 0, 0 },
    [K_WITHDRAW_DUAL_APPROVAL_LIMIT] = { "KASA_WITHDRAW_DUAL_APPROVAL_LIMIT", 0, 0 },
    [K_WITHDRAW_POLL_S]    = { "KASA_WITHDRAW_POLL_S", 0, 0 },
    [K_COBO_WITHDRAW_WALLET_ID] = { "COBO_WITHDRAW_WALLET_ID", 0, 0 },
    [K_COBO_WITHDRAW_ADDRESS] = { "COBO_WITHDRAW_ADDRESS", 0, 0 },
    [K_OWN_ADDRESSES]      = { "KASA_OWN_ADDRESSES", 0, 0 },
    [K_RATE_URL]           = { "KASA_RATE_URL", 0, 0 },
    [K_RATE_MAX_AGE_S]     = { "KASA_RATE_MAX_AGE_S", 0, 0 },
    [K_RATE_REFRESH_S]     = { "KASA_RATE_REFRESH_S", 0, 0 },
};

/* Keys kasa once read and no longer does, with what replaced them: an error wherever they are set
 * (file or environment), so that nobody believes they still act. */
static const struct {
    const char *name;
    const char *why;
} s_retired[] = {
    { "MT5_DIGITS", "no longer read: an account's digits (and currency) come from its MT5 group, and a group "
                    "that cannot be read is retried, never replaced by a default; remove the key" },
};

#define TOKEN_PREFIX "KASA_TOKEN_"

/* Raw values while loading: one slot per key, plus the KASA_TOKEN_* rules in the order seen. */
typedef struct {
    char *val[K_COUNT];
    int line[K_COUNT];               /* file line that set it, 0 if not from the file */
    char *token_name[CONFIG_MAX_TOKENS * 2];
    char *token_val[CONFIG_MAX_TOKENS * 2];
    int token_count;
    char *err;                       /* problems, newline-separated */
    size_t errlen, errused;
    int problems;
} loader_t;

static void s_problem(loader_t *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_problem(loader_t *ld, const char *fmt, ...)
{
    ld->problems++;
    if (!ld->err || ld->errlen == 0 || ld->errused + 1 >= ld->errlen)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    int n = snprintf(ld->err + ld->errused, ld->errlen - ld->errused, "%s%s",
                     ld->errused ? "\n" : "", line);
    if (n > 0)
        ld->errused += (size_t) n < ld->errlen - ld->errused ? (size_t) n : ld->errlen - ld->errused - 1;
}

static int s_key_find(const char *name)
{
    for (int i = 0; i < K_COUNT; i++)
        if (strcmp(s_keys[i].name, name) == 0)
            return i;
    return -1;
}

/* Why key is retired, or NULL if it is not. */
static const char *s_retired_why(const char *name)
{
    for (size_t i = 0; i < sizeof s_retired / sizeof s_retired[0]; i++)
        if (strcmp(s_retired[i].name, name) == 0)
            return s_retired[i].why;
    return NULL;
}

static int s_key_is_ours(const char *name)
{
    return strncmp(name, "KASA_", 5) == 0 || strncmp(name, "COBO_", 5) == 0 ||
           strncmp(name, "MT5_", 4) == 0 || strncmp(name, "TELEGRAM_", 9) == 0;
}

static char *s_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d)
        abort();
    memcpy(d, s, n + 1);
    return d;
}

/* Stores a token rule; a later value for the same token replaces the earlier one. */
static void s_token_set(loader_t *ld, const char *name, const char *val)
{
    for (int i = 0; i < ld->token_count; i++)
        if (strcmp(ld->token_name[i], name) == 0) {
            free(ld->token_val[i]);
            ld->token_val[i] = s_dup(val);
            return;
        }
    if (ld->token_count >= CONFIG_MAX_TOKENS * 2) {
        s_problem(ld, "%s: too many KASA_TOKEN_ rules (at most %d)", name, CONFIG_MAX_TOKENS);
        return;
    }
    ld->token_name[ld->token_count] = s_dup(name);
    ld->token_val[ld->token_count] = s_dup(val);
    ld->token_count++;
}

static int s_token_find(const loader_t *ld, const char *name)
{
    for (int i = 0; i < ld->token_count; i++)
        if (strcmp(ld->token_name[i], name) == 0)
            return i;
    return -1;
}

static void s_loader_free(loader_t *ld)
{
    for (int i = 0; i < K_COUNT; i++) {
        if (ld->val[i]) {
            memset(ld->val[i], 0, strlen(ld->val[i]));
            free(ld->val[i]);
        }
    }
    for (int i = 0; i < ld->token_count; i++) {
        free(ld->token_name[i]);
        free(ld->token_val[i]);
    }
}

static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Parses one "KEY=VALUE" line (already known not to be blank or a comment) into the loader. */
static void s_file_line(loader_t *ld, const char *path, int lineno, char *line)
{
    if (strncmp(line, "export ", 7) == 0 || strncmp(line, "export\t", 7) == 0)
        line = s_trim(line + 7);
    char *eq = strchr(line, '=');
    if (!eq) {
        s_problem(ld, "%s:%d: expected KEY=VALUE", path, lineno);
        return;
    }
    *eq = '\0';
    char *key = s_trim(line);
    char *val = s_trim(eq + 1);
    if (!*key) {
        s_problem(ld, "%s:%d: empty key", path, lineno);
        return;
    }
    for (const char *p = key; *p; p++)
        if (!(isupper((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '_')) {
            s_problem(ld, "%s:%d: bad key name (use A-Z, 0-9 and _)", path, lineno);
            return;
        }
    size_t vlen = strlen(val);
    if (vlen > 0 && (val[0] == '"' || val[0] == '\'')) {
        char q = val[0];
        char *end = strchr(val + 1, q);
        char *rest = end ? s_trim(end + 1) : NULL;
        if (!end || (*rest && *rest != '#')) {
            s_problem(ld, "%s:%d: %s: unbalanced quotes", path, lineno, key);
            return;
        }
        *end = '\0';
        val = val + 1;
    } else {
        /* an unquoted value ends at " #" (a trailing comment) */
        for (char *p = val; *p; p++)
            if (*p == '#' && p > val && (p[-1] == ' ' || p[-1] == '\t')) {
                *p = '\0';
                val = s_trim(val);
                break;
            }
    }
    if (strlen(val) > CONFIG_VALUE_MAX) {
        s_problem(ld, "%s:%d: %s: value too long", path, lineno, key);
        return;
    }
    if (strncmp(key, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0) {
        if (s_token_find(ld, key) >= 0) {
            s_problem(ld, "%s:%d: %s: duplicate key", path, lineno, key);
            return;
        }
        s_token_set(ld, key, val);
        return;
    }
    int k = s_key_find(key);
    const char *retired = s_retired_why(key);
    if (retired) {
        s_problem(ld, "%s:%d: %s: %s", path, lineno, key, retired);
        return;
    }
    if (k < 0) {
        if (s_key_is_ours(key))
            s_problem(ld, "%s:%d: %s: unknown key", path, lineno, key);
        /* other keys (PATH, ...) are tolerated: the file may be shared with other tools */
        return;
    }
    if (ld->val[k]) {
        s_problem(ld, "%s:%d: %s: duplicate key (first set on line %d)", path, lineno, key, ld->line[k]);
        return;
    }
    ld->val[k] = s_dup(val);
    ld->line[k] = lineno;
}

/* Reads KEY=VALUE lines from text[0..len) (named `name` in messages): a line ends at '\n' or at the
 * end; a NUL byte ends a line's text early, as C text would. */
static void s_text_read(loader_t *ld, const char *name, const char *text, size_t len)
{
    char line[CONFIG_LINE_MAX + 2];
    int lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t) (nl - (text + pos)) : len - pos;
        const char *start = text + pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (lineno > CONFIG_LINES_MAX) {
            s_problem(ld, "%s: more than %d lines", name, CONFIG_LINES_MAX);
            break;
        }
        if (n > CONFIG_LINE_MAX) {
            s_problem(ld, "%s:%d: line too long", name, lineno);
            continue;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        char *s = s_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        s_file_line(ld, name, lineno, s);
    }
    sodium_memzero(line, sizeof line);
}

/* Reads the file at path whole (at most CONFIG_FILE_MAX bytes) and its lines into the loader; the
 * copy in memory is wiped after use (it holds secrets). */
static void s_file_read(loader_t *ld, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        s_problem(ld, "%s: cannot open: %s", path, strerror(errno));
        return;
    }
    char *text = malloc(CONFIG_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        s_problem(ld, "%s: out of memory", path);
        return;
    }
    size_t len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
    if (ferror(f))
        s_problem(ld, "%s: cannot read: %s", path, strerror(errno));
    else if (len > CONFIG_FILE_MAX)
        s_problem(ld, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
    else
        s_text_read(ld, path, text, len);
    fclose(f);
    sodium_memzero(text, len);
    free(text);
}

static void s_env_read(loader_t *ld)
{
    for (size_t i = 0; i < sizeof s_retired / sizeof s_retired[0]; i++)
        if (getenv(s_retired[i].name))
            s_problem(ld, "%s (environment): %s", s_retired[i].name, s_retired[i].why);
    for (int k = 0; k < K_COUNT; k++) {
        const char *v = getenv(s_keys[k].name);
        if (!v)
            continue;
        if (strlen(v) > CONFIG_VALUE_MAX) {
            s_problem(ld, "%s (environment): value too long", s_keys[k].name);
            continue;
        }
        if (ld->val[k]) {
            memset(ld->val[k], 0, strlen(ld->val[k]));
            free(ld->val[k]);
        }
        ld->val[k] = s_dup(v);
        ld->line[k] = 0;
    }
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq || (size_t) (eq - *e) >= 64)
            continue;
        char name[64];
        memcpy(name, *e, (size_t) (eq - *e));
        name[eq - *e] = '\0';
        s_token_set(ld, name, eq + 1);
    }
}

/* ---- conversions and checks ---------------------------------------------------------- */

static int s_set(const loader_t *ld, key_id_t k) { return ld->val[k] && ld->val[k][0]; }

static void s_copy(loader_t *ld, key_id_t k, char *dst, size_t cap)
{
    if (!s_set(ld, k))
        return;
    if (strlen(ld->val[k]) >= cap) {
        s_problem(ld, "%s: too long (at most %zu characters)", s_keys[k].name, cap - 1);
        return;
    }
    snprintf(dst, cap, "%s", ld->val[k]);
}

/* Parses an unsigned decimal integer in [lo, hi]. */
static int s_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!*s || strlen(s) > 20)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char) *p))
            return -1;
        uint64_t d = (uint64_t) (*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Key k as a whole number in [lo, hi]; dflt when it is unset or (after noting the problem) bad. */
static uint64_t s_int_key(loader_t *ld, key_id_t k, uint64_t lo, uint64_t hi, uint64_t dflt)
{
    uint64_t v = dflt;
    if (s_set(ld, k) && s_uint(ld->val[k], lo, hi, &v) != 0) {
        s_problem(ld, "%s: expected a whole number from %llu to %llu", s_keys[k].name,
                  (unsigned long long) lo, (unsigned long long) hi);
        v = dflt;
    }
    return v;
}

/* Key k as on/off (also true/false, yes/no, 1/0); dflt when it is unset or (after noting the
 * problem) bad. */
static int s_bool_key(loader_t *ld, key_id_t k, int dflt)
{
    if (!s_set(ld, k))
        return dflt;
    static const char *const on[] = { "on", "true", "yes", "1" }, *const off[] = { "off", "false", "no", "0" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(ld->val[k], on[i]) == 0)
            return 1;
        if (strcasecmp(ld->val[k], off[i]) == 0)
            return 0;
    }
    s_problem(ld, "%s: expected on or off", s_keys[k].name);
    return dflt;
}

/* host:port with a port 0..65535; host a name, an IPv4 address or [IPv6]. */
static int s_hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    uint64_t port;
    if (s_uint(colon + 1, 0, 65535, &port) != 0)
        return -1;
    if (s[0] == '[')
        return colon[-1] == ']' && colon - s > 2 ? 0 : -1;
    for (const char *p = s; p < colon; p++)
        if (!(isalnum((unsigned char) *p) || *p == '.' || *p == '-'))
            return -1;
    return 0;
}

/* 0 if url is https://..., or http:// to 127.0.0.1 / localhost / [::1] (a local simulator). */
static int s_url_ok(const char *url)
{
    if (strncmp(url, "https://", 8) == 0)
        return url[8] && url[8] != '/' ? 0 : -1;
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *host = url + 7;
    static const char *const locals[] = { "127.0.0.1", "localhost", "[::1]" };
    for (size_t i = 0; i < sizeof locals / sizeof locals[0]; i++) {
        size_t n = strlen(locals[i]);
        if (strncmp(host, locals[i], n) == 0 && (host[n] == '\0' || host[n] == ':' || host[n] == '/'))
            return 0;
    }
    return 1; /* plain http to a remote host */
}

static void s_url_key(loader_t *ld, key_id_t k, char *dst, size_t cap)
{
    if (!s_set(ld, k))
        return;
    int rc = s_url_ok(ld->val[k]);
    if (rc < 0)
        s_problem(ld, "%s: expected an https:// URL", s_keys[k].name);
    else if (rc > 0)
        s_problem(ld, "%s: must use https:// (plain http is allowed only for 127.0.0.1 or localhost)",
                  s_keys[k].name);
    else
        s_copy(ld, k, dst, cap);
}

static int s_hex_ok(const char *s, size_t n)
{
    if (strlen(s) != n)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isxdigit((unsigned char) *p))
            return -1;
    return 0;
}

/* Ed25519 key checks, on libsodium directly so that the configuration depends on no client:
 * 1 when pub_hex (64 hex) is not the public key of seed_hex (64 hex); 0 when it is or either
 * cannot be decoded (that problem is reported by the hex check). The seed is wiped after use. */
static int s_key_pair_mismatch(const char *seed_hex, const char *pub_hex)
{
    uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES], want[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    size_t n = 0, m = 0;
    int mismatch = 0;
    if (sodium_init() >= 0 && sodium_hex2bin(seed, sizeof seed, seed_hex, strlen(seed_hex), NULL, &n, NULL) == 0 &&
        n == sizeof seed && sodium_hex2bin(want, sizeof want, pub_hex, strlen(pub_hex), NULL, &m, NULL) == 0 &&
        m == sizeof want && crypto_sign_seed_keypair(pk, sk, seed) == 0)
        mismatch = sodium_memcmp(pk, want, sizeof pk) != 0;
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    return mismatch;
}

/* 1 when pub_hex (64 hex) decodes to a valid Ed25519 point. */
static int s_valid_pubkey(const char *pub_hex)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    size_t n = 0;
    return sodium_init() >= 0 && sodium_hex2bin(pk, sizeof pk, pub_hex, strlen(pub_hex), NULL, &n, NULL) == 0 &&
           n == sizeof pk && crypto_core_ed25519_is_valid_point(pk);
}

static void s_hex_key(loader_t *ld, key_id_t k, char *dst, size_t cap)
{
    if (!s_set(ld, k))
        return;
    if (s_hex_ok(ld->val[k], 64) != 0) {
        s_problem(ld, "%s: expected 64 hex characters (32 bytes), got %zu characters%s",
                  s_keys[k].name, strlen(ld->val[k]),
                  strlen(ld->val[k]) == 64 ? " with a non-hex character" : "");
        return;
    }
    s_copy(ld, k, dst, cap);
}

static int s_endpoint_ok(const char *s)
{
    return (strncmp(s, "tcp://", 6) == 0 && s[6]) || (strncmp(s, "ipc://", 6) == 0 && s[6]) ||
           (strncmp(s, "inproc://", 9) == 0 && s[9]) ? 0 : -1;
}

static int s_token_id_ok(const char *s, size_t cap)
{
    if (!*s || strlen(s) >= cap)
        return -1;
    for (const char *p = s; *p; p++)
        if (!(isupper((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '_'))
            return -1;
    return 0;
}

static void s_chains(loader_t *ld, config_t *cfg)
{
    if (!s_set(ld, K_CHAINS))
        return;
    char buf[CONFIG_VALUE_MAX + 1];
    snprintf(buf, sizeof buf, "%s", ld->val[K_CHAINS]);
    cfg->chain_count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = s_trim(tok);
        if (s_token_id_ok(tok, sizeof cfg->chains[0]) != 0) {
            s_problem(ld, "KASA_CHAINS: bad token id '%.40s' (use A-Z, 0-9 and _)", tok);
            continue;
        }
        if (cfg->chain_count >= CONFIG_MAX_CHAINS) {
            s_problem(ld, "KASA_CHAINS: at most %d entries", CONFIG_MAX_CHAINS);
            break;
        }
        snprintf(cfg->chains[cfg->chain_count++], sizeof cfg->chains[0], "%s", tok);
    }
    if (cfg->chain_count == 0)
        s_problem(ld, "KASA_CHAINS: empty list");
}

/* Splits a rule's key name (after KASA_TOKEN_) into token id and account currency: "TRON_USDT__EUR"
 * → TRON_USDT, EUR; "TRON_USDT" → TRON_USDT, USD. 0, or -1 (a bad token id or currency). */
static int s_rule_name(const char *rest, char *token, size_t token_cap, char *currency, size_t currency_cap)
{
    const char *sep = strstr(rest, "__");
    size_t n = sep ? (size_t) (sep - rest) : strlen(rest);
    if (n >= token_cap)
        return -1;
    memcpy(token, rest, n);
    token[n] = '\0';
    snprintf(currency, currency_cap, "%s", sep ? sep + 2 : "USD");
    if (s_token_id_ok(token, token_cap) != 0 || token[n - 1] == '_' || !currency[0] ||
        strlen(sep ? sep + 2 : "USD") >= currency_cap)
        return -1;
    for (const char *p = currency; *p; p++)
        if (!(isupper((unsigned char) *p) || isdigit((unsigned char) *p)))
            return -1;
    return 0;
}

/* A live rate, "live/SYMBOL" or "live/SYMBOL*N", into t (live, symbol, factor). 0, or -1 with why. */
static int s_live_rate(const char *text, config_token_t *t, char *why, size_t whylen)
{
    if (strncmp(text, "live/", 5) != 0) {
        snprintf(why, whylen, "expected a decimal number or live/SYMBOL[*N] (e.g. live/TRXUSDT)");
        return -1;
    }
    const char *sym = text + 5, *star = strchr(sym, '*');
    size_t n = star ? (size_t) (star - sym) : strlen(sym);
    int ok = n > 0 && n < sizeof t->symbol;
    for (size_t i = 0; ok && i < n; i++)
        ok = isupper((unsigned char) sym[i]) || isdigit((unsigned char) sym[i]);
    if (!ok) {
        snprintf(why, whylen, "the symbol after live/ must be 1..%zu of A-Z, 0-9 (e.g. TRXUSDT)", sizeof t->symbol - 1);
        return -1;
    }
    uint64_t factor = 1;
    if (star) {
        const char *d = star + 1;
        factor = 0;
        for (; *d >= '0' && *d <= '9' && factor <= 1000000; d++)
            factor = factor * 10 + (uint64_t) (*d - '0');
        if (*d || d == star + 1 || factor < 1 || factor > 1000000) {
            snprintf(why, whylen, "the factor after * must be a whole number 1..1000000 (e.g. *100 for cents)");
            return -1;
        }
    }
    memcpy(t->symbol, sym, n);
    t->symbol[n] = '\0';
    t->factor = (uint32_t) factor;
    t->live = 1;
    return 0;
}

static void s_tokens(loader_t *ld, config_t *cfg)
{
    cfg->token_count = 0;
    for (int i = 0; i < ld->token_count; i++) {
        const char *name = ld->token_name[i];
        char id[sizeof cfg->tokens[0].token_id], currency[sizeof cfg->tokens[0].currency];
        if (s_rule_name(name + strlen(TOKEN_PREFIX), id, sizeof id, currency, sizeof currency) != 0) {
            s_problem(ld, "%s: bad key name: expected KASA_TOKEN_<TOKEN_ID> or KASA_TOKEN_<TOKEN_ID>__<CURRENCY> "
                      "(A-Z, 0-9, _ in the token id; A-Z, 0-9 in the currency, e.g. KASA_TOKEN_TRON_USDT__EUR)", name);
            continue;
        }
        if (config_rule(cfg, id, currency)) {
            s_problem(ld, "%s: a second rule for %s on %s accounts (KASA_TOKEN_<TOKEN_ID> alone is the USD rule)",
                      name, id, currency);
            continue;
        }
        if (cfg->token_count >= CONFIG_MAX_TOKENS) {
            s_problem(ld, "%s: too many KASA_TOKEN_ rules (at most %d)", name, CONFIG_MAX_TOKENS);
            continue;
        }
        char buf[CONFIG_VALUE_MAX + 1];
        snprintf(buf, sizeof buf, "%s", ld->token_val[i]);
        char *parts[3] = { 0 };
        int n = 0;
        char *p = buf;
        for (; n < 3; n++) {
            parts[n] = p;
            char *c = strchr(p, ':');
            if (!c) {
                n++;
                break;
            }
            *c = '\0';
            p = c + 1;
            if (n == 2) { /* a fourth part */
                n = 4;
                break;
            }
        }
        if (n != 3) {
            s_problem(ld, "%s: expected rate:fee:minimum, e.g. 1:0:1", name);
            continue;
        }
        config_token_t *t = &cfg->tokens[cfg->token_count];
        memset(t, 0, sizeof *t);
        static const char *const what[3] = { "rate", "fee", "minimum" };
        money_atto_t *dst[3] = { &t->rate, &t->fee, &t->minimum };
        int bad = 0;
        if (strncmp(s_trim(parts[0]), "live", 4) == 0) {
            char why[128];
            if (s_live_rate(s_trim(parts[0]), t, why, sizeof why) != 0) {
                s_problem(ld, "%s: rate: %s", name, why);
                bad = 1;
            }
            t->rate = 1;   /* unused: the live price replaces it */
        }
        for (int j = t->live ? 1 : 0; j < 3; j++) {
            char why[128];
            if (money_parse(s_trim(parts[j]), dst[j], why, sizeof why) != 0) {
                s_problem(ld, "%s: %s: %s", name, what[j], why);
                bad = 1;
            }
        }
        if (!bad && t->rate == 0) {
            s_problem(ld, "%s: rate must be above 0", name);
            bad = 1;
        }
        if (bad)
            continue;
        snprintf(t->token_id, sizeof t->token_id, "%s", id);
        snprintf(t->currency, sizeof t->currency, "%s", currency);
        cfg->token_count++;
    }
}

/* KASA_TELEGRAM_APPROVERS=ID:NAME,...: a positive Telegram user id and an admin name, each id once. */
static void s_tg_approvers(loader_t *ld, config_t *cfg)
{
    if (!s_set(ld, K_TELEGRAM_APPROVERS))
        return;
    const char *p = ld->val[K_TELEGRAM_APPROVERS];
    while (*p) {
        size_t n = strcspn(p, ",");
        char item[128], why[128];
        snprintf(item, sizeof item, "%.*s", (int) (n < sizeof item - 1 ? n : sizeof item - 1), p);
        char *colon = strchr(item, ':');
        uint64_t id = 0;
        if (colon)
            *colon = '\0';
        if (!colon || s_uint(item, 1, INT64_MAX, &id) != 0) {
            s_problem(ld, "KASA_TELEGRAM_APPROVERS: expected TELEGRAM_USER_ID:ADMIN_NAME,... (\"%.40s\")", item);
            return;
        }
        if (admin_name_check(colon + 1, why, sizeof why) != 0) {
            s_problem(ld, "KASA_TELEGRAM_APPROVERS: %s", why);
            return;
        }
        for (int i = 0; i < cfg->telegram_approver_count; i++)
            if (cfg->telegram_approvers[i].user_id == (int64_t) id) {
                s_problem(ld, "KASA_TELEGRAM_APPROVERS: user %llu is listed twice", (unsigned long long) id);
                return;
            }
        if (cfg->telegram_approver_count == CONFIG_MAX_TG_APPROVERS) {
            s_problem(ld, "KASA_TELEGRAM_APPROVERS: at most %d", CONFIG_MAX_TG_APPROVERS);
            return;
        }
        cfg->telegram_approvers[cfg->telegram_approver_count].user_id = (int64_t) id;
        snprintf(cfg->telegram_approvers[cfg->telegram_approver_count].admin,
                 sizeof cfg->telegram_approvers[0].admin, "%s", colon + 1);
        cfg->telegram_approver_count++;
        p += n;
        if (*p == ',')
            p++;
    }
}

static void s_defaults(config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:8000");
    snprintf(cfg->monitor, sizeof cfg->monitor, "tcp://127.0.0.1:5560");
    snprintf(cfg->static_dir, sizeof cfg->static_dir, "web/static");
    cfg->max_body = 65536;
    cfg->http_threads = 16;
    cfg->cookie_secure = 1;
    cfg->header_timeout_ms = 5000;
    cfg->max_connections = 2048;
    cfg->max_connections_per_ip = 64;
    cfg->max_deposits = CONFIG_DEFAULT_MAX_DEPOSITS;
    cfg->snapshot_every_records = CONFIG_DEFAULT_SNAPSHOT_EVERY_RECORDS;
    cfg->snapshot_every_s = CONFIG_DEFAULT_SNAPSHOT_EVERY_S;
    snprintf(cfg->cobo_api_url, sizeof cfg->cobo_api_url, "https://api.cobo.com/v2");
    snprintf(cfg->cobo_env, sizeof cfg->cobo_env, "prod");
    snprintf(cfg->cobo_webhook_pubkey, sizeof cfg->cobo_webhook_pubkey, "%s", COBO_PROD_PUBKEY);
    static const char *const chains[] = { "TRON_USDT", "ETH_USDT", "TRON" };
    for (int i = 0; i < 3; i++)
        snprintf(cfg->chains[i], sizeof cfg->chains[i], "%s", chains[i]);
    cfg->chain_count = 3;
    cfg->pending_age_s = CONFIG_DEFAULT_PENDING_AGE_S;
    cfg->pending_poll_s = CONFIG_DEFAULT_PENDING_POLL_S;
    cfg->cobo_confirm_wait_s = CONFIG_DEFAULT_COBO_CONFIRM_WAIT_S;
    cfg->mt5_settle_s = CONFIG_DEFAULT_MT5_SETTLE_S;
    cfg->mt5_timeout_ms = CONFIG_DEFAULT_MT5_TIMEOUT_MS;
    cfg->cobo_timeout_ms = CONFIG_DEFAULT_COBO_TIMEOUT_MS;
    snprintf(cfg->telegram_api_url, sizeof cfg->telegram_api_url, "https://api.telegram.org");
    snprintf(cfg->notice_lang, sizeof cfg->notice_lang, "tr");
    cfg->telegram_poll_s = 25;
    cfg->crediters = 2;
    cfg->lockers = 4;
    cfg->notifiers = 2;
    snprintf(cfg->mongo_db, sizeof cfg->mongo_db, "%s", MONGO_DEFAULT_DB);
    cfg->mongo_batch = 512;
    cfg->claim_lease_ms = CONFIG_DEFAULT_CLAIM_LEASE_MS;
    if (gethostname(cfg->node_id, sizeof cfg->node_id - 1) != 0 || mongo_node_id_check(cfg->node_id, NULL, 0) != 0)
        snprintf(cfg->node_id, sizeof cfg->node_id, "kasa");
    cfg->catchup_interval_s = 60;
    cfg->catchup_lookback_s = 3 * 86400;
    snprintf(cfg->metrics_listen, sizeof cfg->metrics_listen, "127.0.0.1:9100");
    cfg->withdraw_poll_s = 60;
    snprintf(cfg->rate_url, sizeof cfg->rate_url, "%s", CONFIG_DEFAULT_RATE_URL);
    cfg->rate_max_age_s = CONFIG_DEFAULT_RATE_MAX_AGE_S;
    cfg->rate_refresh_s = CONFIG_DEFAULT_RATE_REFRESH_S;
}

/* A money key that may say "none" (0). */
static void s_money_key(loader_t *ld, key_id_t k, money_atto_t *out)
{
    char why[128];
    if (!s_set(ld, k))
        return;
    if (strcmp(ld->val[k], "none") == 0)
        *out = 0;
    else if (money_parse(ld->val[k], out, why, sizeof why) != 0)
        s_problem(ld, "%s: %s", s_keys[k].name, why);
}

/* The withdrawal keys (schema/withdrawal.h). */
static void s_withdraw_keys(loader_t *ld, config_t *cfg)
{
    char why[200];
    s_copy(ld, K_WITHDRAW_RULES, cfg->withdraw_rules_text, sizeof cfg->withdraw_rules_text);
    if (withdrawal_rules_parse(cfg->withdraw_rules_text, &cfg->withdraw, why, sizeof why) != 0)
        s_problem(ld, "%s", why);
    s_money_key(ld, K_WITHDRAW_AUTO_APPROVE_LIMIT, &cfg->withdraw_auto_limit);
    s_money_key(ld, K_WITHDRAW_DUAL_APPROVAL_LIMIT, &cfg->withdraw_dual_limit);
    if (cfg->withdraw_dual_limit && cfg->withdraw_dual_limit < cfg->withdraw_auto_limit)
        s_problem(ld, "KASA_WITHDRAW_DUAL_APPROVAL_LIMIT: must be at least KASA_WITHDRAW_AUTO_APPROVE_LIMIT");
    cfg->withdraw_poll_s = (int) s_int_key(ld, K_WITHDRAW_POLL_S, 1, 86400, (uint64_t) cfg->withdraw_poll_s);
    snprintf(cfg->cobo_withdraw_wallet_id, sizeof cfg->cobo_withdraw_wallet_id, "%s", cfg->cobo_wallet_id);
    s_copy(ld, K_COBO_WITHDRAW_WALLET_ID, cfg->cobo_withdraw_wallet_id, sizeof cfg->cobo_withdraw_wallet_id);
    s_copy(ld, K_COBO_WITHDRAW_ADDRESS, cfg->cobo_withdraw_address, sizeof cfg->cobo_withdraw_address);
    s_copy(ld, K_OWN_ADDRESSES, cfg->own_addresses, sizeof cfg->own_addresses);
    for (const char *p = cfg->own_addresses; *p; p += strcspn(p, ","), p += *p == ',') {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > 127 || strcspn(p, " \t") < n) {
            s_problem(ld, "KASA_OWN_ADDRESSES: a comma-separated list of addresses (no spaces, none empty)");
            break;
        }
    }
}

int config_own_address(const config_t *cfg, const char *address)
{
    size_t len = address ? strlen(address) : 0;
    if (!len)
        return 0;
    if (strcmp(cfg->cobo_withdraw_address, address) == 0)
        return 1;
    for (const char *p = cfg->own_addresses; *p; p += strcspn(p, ","), p += *p == ',')
        if (strcspn(p, ",") == len && strncmp(p, address, len) == 0)
            return 1;
    return 0;
}


/* Cluster mode's margins (README, Cluster): a balance call started with the guard (lease/3) left must end
 * or time out before the lease does (T <= L/3), and the settle time must outlast a call's timeout
 * (S >= T), or a take-over could send while the old holder's call is still in flight. */
static void s_cluster_margins(loader_t *ld, const config_t *cfg)
{
    if (!cfg->cluster)
        return;
    if ((int64_t) cfg->mt5_timeout_ms * 3 > cfg->claim_lease_ms)
        s_problem(ld, "KASA_CLAIM_LEASE_MS (%d) must be at least 3 x KASA_MT5_TIMEOUT_MS (%d): a balance call "
                  "started with a third of the lease left could still be in flight when another node takes the "
                  "claim over", cfg->claim_lease_ms, cfg->mt5_timeout_ms);
    if ((int64_t) cfg->mt5_settle_s * 1000 < cfg->mt5_timeout_ms)
        s_problem(ld, "KASA_MT5_SETTLE_S (%d s) must be at least KASA_MT5_TIMEOUT_MS (%d ms): a new holder could "
                  "send before a call of the old one had timed out", cfg->mt5_settle_s, cfg->mt5_timeout_ms);
}
/* KASA_WEBHOOK_LISTEN: as given, else KASA_LISTEN's host on the next port (port 0 stays 0: any
 * free port). Webhooks get a listener, and threads, of their own; it must differ from KASA_LISTEN. */
static void s_webhook_listen(loader_t *ld, config_t *cfg)
{
    if (s_set(ld, K_WEBHOOK_LISTEN)) {
        if (s_hostport_ok(ld->val[K_WEBHOOK_LISTEN]) != 0) {
            s_problem(ld, "KASA_WEBHOOK_LISTEN: expected host:port (e.g. 127.0.0.1:8001)");
            return;
        }
        s_copy(ld, K_WEBHOOK_LISTEN, cfg->webhook_listen, sizeof cfg->webhook_listen);
        const char *colon = strrchr(cfg->webhook_listen, ':');
        if (strcmp(cfg->webhook_listen, cfg->listen) == 0 && strcmp(colon, ":0") != 0)
            s_problem(ld, "KASA_WEBHOOK_LISTEN: must differ from KASA_LISTEN (webhooks have a listener of their own)");
        return;
    }
    const char *colon = strrchr(cfg->listen, ':');
    uint64_t port = 0;
    if (!colon || s_uint(colon + 1, 0, 65535, &port) != 0)
        return;   /* KASA_LISTEN's own problem is reported */
    if (port == 65535) {
        s_problem(ld, "KASA_WEBHOOK_LISTEN: set it (KASA_LISTEN takes the last port, the default is the next one)");
        return;
    }
    snprintf(cfg->webhook_listen, sizeof cfg->webhook_listen, "%.*s:%u", (int) (colon - cfg->listen), cfg->listen,
             port ? (unsigned) port + 1 : 0u);
}

static void s_convert(loader_t *ld, config_t *cfg)
{
    for (int k = 0; k < K_COUNT; k++)
        if (s_keys[k].required && !s_set(ld, (key_id_t) k))
            s_problem(ld, "%s: required but not set", s_keys[k].name);

    if (s_set(ld, K_LISTEN)) {
        if (s_hostport_ok(ld->val[K_LISTEN]) != 0)
            s_problem(ld, "KASA_LISTEN: expected host:port (e.g. 127.0.0.1:8000)");
        else
            s_copy(ld, K_LISTEN, cfg->listen, sizeof cfg->listen);
    }
    s_webhook_listen(ld, cfg);
    s_copy(ld, K_JOURNAL_DIR, cfg->journal_dir, sizeof cfg->journal_dir);
    if (s_set(ld, K_MONITOR)) {
        if (s_endpoint_ok(ld->val[K_MONITOR]) != 0)
            s_problem(ld, "KASA_MONITOR: expected a ZeroMQ endpoint (tcp://host:port or ipc://path)");
        else
            s_copy(ld, K_MONITOR, cfg->monitor, sizeof cfg->monitor);
    }
    if (s_set(ld, K_CONTROL)) {
        if (s_endpoint_ok(ld->val[K_CONTROL]) != 0)
            s_problem(ld, "KASA_CONTROL: expected a ZeroMQ endpoint (ipc://path or tcp://host:port)");
        else
            s_copy(ld, K_CONTROL, cfg->control, sizeof cfg->control);
    } else if (cfg->journal_dir[0]) {
        if ((size_t) snprintf(cfg->control, sizeof cfg->control, "ipc://%s/control.sock", cfg->journal_dir)
            >= sizeof cfg->control)
            s_problem(ld, "KASA_CONTROL: the default ipc://<journal_dir>/control.sock is too long; set it");
    }
    s_copy(ld, K_STATIC_DIR, cfg->static_dir, sizeof cfg->static_dir);
    if (s_set(ld, K_PUBLIC_URL)) {
        const char *u = ld->val[K_PUBLIC_URL];
        if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
            s_problem(ld, "KASA_PUBLIC_URL: expected an http:// or https:// URL");
        else
            s_copy(ld, K_PUBLIC_URL, cfg->public_url, sizeof cfg->public_url);
    }
    cfg->max_body = (size_t) s_int_key(ld, K_MAX_BODY, 1024, 16u << 20, (uint64_t) cfg->max_body);
    cfg->http_threads = (int) s_int_key(ld, K_HTTP_THREADS, 1, 256, (uint64_t) cfg->http_threads);
    cfg->max_deposits = (size_t) s_int_key(ld, K_MAX_DEPOSITS, 1, CONFIG_MAX_MAX_DEPOSITS,
                                           (uint64_t) cfg->max_deposits);
    cfg->snapshot_every_records = s_int_key(ld, K_SNAPSHOT_EVERY_RECORDS, 0, UINT32_MAX, cfg->snapshot_every_records);
    cfg->snapshot_every_s = (int) s_int_key(ld, K_SNAPSHOT_EVERY_S, 0, 30 * 86400, (uint64_t) cfg->snapshot_every_s);
    cfg->cookie_secure = s_bool_key(ld, K_COOKIE_SECURE, cfg->cookie_secure);
    cfg->investor_password_login = s_bool_key(ld, K_INVESTOR_PASSWORD_LOGIN, cfg->investor_password_login);
    if (s_set(ld, K_TRUSTED_PROXIES)) {
        char why[160];
        if (netlist_parse(ld->val[K_TRUSTED_PROXIES], &cfg->trusted_proxies, why, sizeof why) != 0)
            s_problem(ld, "KASA_TRUSTED_PROXIES: %s", why);
    }
    cfg->header_timeout_ms = (int) s_int_key(ld, K_HEADER_TIMEOUT_MS, 100, 120000, (uint64_t) cfg->header_timeout_ms);
    cfg->max_connections = (int) s_int_key(ld, K_MAX_CONNECTIONS, 16, 1000000, (uint64_t) cfg->max_connections);
    cfg->max_connections_per_ip = (int) s_int_key(ld, K_MAX_CONNECTIONS_PER_IP, 1, 1000000,
                                                  (uint64_t) cfg->max_connections_per_ip);
    if (s_set(ld, K_LOG_LEVEL)) {
        const char *l = ld->val[K_LOG_LEVEL];
        static const char *const levels[] = { "debug", "info", "warn", "error" };
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcasecmp(l, levels[i]) == 0)
                found = i;
        if (found < 0)
            s_problem(ld, "KASA_LOG_LEVEL: expected debug, info, warn or error");
        else
            log_set_level((log_level_t) found);
    }

    /* Cobo */
    if (s_set(ld, K_COBO_ENV)) {
        const char *e = ld->val[K_COBO_ENV];
        if (strcmp(e, "prod") == 0 || strcmp(e, "dev") == 0)
            snprintf(cfg->cobo_env, sizeof cfg->cobo_env, "%s", e);
        else
            s_problem(ld, "COBO_ENV: expected prod or dev");
    }
    if (strcmp(cfg->cobo_env, "dev") == 0) {
        snprintf(cfg->cobo_webhook_pubkey, sizeof cfg->cobo_webhook_pubkey, "%s", COBO_DEV_PUBKEY);
        snprintf(cfg->cobo_api_url, sizeof cfg->cobo_api_url, "https://api.dev.cobo.com/v2");
    }
    s_url_key(ld, K_COBO_API_URL, cfg->cobo_api_url, sizeof cfg->cobo_api_url);
    s_hex_key(ld, K_COBO_API_KEY, cfg->cobo_api_key, sizeof cfg->cobo_api_key);
    s_hex_key(ld, K_COBO_API_SECRET, cfg->cobo_api_secret, sizeof cfg->cobo_api_secret);
    s_hex_key(ld, K_COBO_WEBHOOK_PUBKEY, cfg->cobo_webhook_pubkey, sizeof cfg->cobo_webhook_pubkey);
    if (cfg->cobo_api_key[0] && cfg->cobo_api_secret[0] && s_key_pair_mismatch(cfg->cobo_api_secret, cfg->cobo_api_key))
        s_problem(ld, "COBO_API_KEY: is not the public key of COBO_API_SECRET");
    /* the built-in keys (prod, dev) are valid points: only a key given is checked (the check is a
     * scalar multiplication, the costliest step of a load) */
    if (s_set(ld, K_COBO_WEBHOOK_PUBKEY) && cfg->cobo_webhook_pubkey[0] && !s_valid_pubkey(cfg->cobo_webhook_pubkey))
        s_problem(ld, "COBO_WEBHOOK_PUBKEY: not a valid Ed25519 public key");
    s_copy(ld, K_COBO_WALLET_ID, cfg->cobo_wallet_id, sizeof cfg->cobo_wallet_id);
    s_chains(ld, cfg);

    /* MT5 */
    s_url_key(ld, K_MT5_URL, cfg->mt5_url, sizeof cfg->mt5_url);
    if (s_set(ld, K_MT5_LOGIN)) {
        uint64_t v;
        if (s_uint(ld->val[K_MT5_LOGIN], 1, UINT64_MAX, &v) != 0)
            s_problem(ld, "MT5_LOGIN: expected a positive whole number (the manager login)");
        else
            cfg->mt5_login = v;
    }
    s_copy(ld, K_MT5_PASSWORD, cfg->mt5_password, sizeof cfg->mt5_password);
    s_copy(ld, K_MT5_CA_FILE, cfg->mt5_ca_file, sizeof cfg->mt5_ca_file);
    cfg->mt5_settle_s = (int) s_int_key(ld, K_MT5_SETTLE_S, 1, 86400, (uint64_t) cfg->mt5_settle_s);
    cfg->mt5_timeout_ms = (int) s_int_key(ld, K_MT5_TIMEOUT_MS, 100, 120000, (uint64_t) cfg->mt5_timeout_ms);
    cfg->cobo_timeout_ms = (int) s_int_key(ld, K_COBO_TIMEOUT_MS, 100, 120000, (uint64_t) cfg->cobo_timeout_ms);

    /* Telegram */
    s_url_key(ld, K_TELEGRAM_API_URL, cfg->telegram_api_url, sizeof cfg->telegram_api_url);
    s_copy(ld, K_TELEGRAM_BOT_TOKEN, cfg->telegram_bot_token, sizeof cfg->telegram_bot_token);
    if (s_set(ld, K_TELEGRAM_CHAT_ID)) {
        const char *c = ld->val[K_TELEGRAM_CHAT_ID];
        int ok = c[0] == '@' ? c[1] != '\0' : 1;
        if (c[0] != '@')
            for (const char *p = c + (c[0] == '-'); ok && *p; p++)
                ok = isdigit((unsigned char) *p);
        if (c[0] == '-' && c[1] == '\0')
            ok = 0;
        if (!ok)
            s_problem(ld, "TELEGRAM_CHAT_ID: expected a numeric chat id (e.g. -1001234567890) or @channel");
        else
            s_copy(ld, K_TELEGRAM_CHAT_ID, cfg->telegram_chat_id, sizeof cfg->telegram_chat_id);
    }

    if (s_set(ld, K_NOTICE_LANG)) {
        const char *l = ld->val[K_NOTICE_LANG];
        if (strcmp(l, "tr") != 0 && strcmp(l, "en") != 0)
            s_problem(ld, "KASA_NOTICE_LANG: tr or en");
        else
            s_copy(ld, K_NOTICE_LANG, cfg->notice_lang, sizeof cfg->notice_lang);
    }
    s_tg_approvers(ld, cfg);
    cfg->telegram_poll_s = (int) s_int_key(ld, K_TELEGRAM_POLL_S, 1, 50, (uint64_t) cfg->telegram_poll_s);

    /* money rules */
    s_tokens(ld, cfg);
    if (s_set(ld, K_AUTO_CREDIT_LIMIT)) {
        const char *l = ld->val[K_AUTO_CREDIT_LIMIT];
        char why[128];
        if (strcmp(l, "none") == 0)
            cfg->auto_credit_limit = 0;
        else if (money_parse(l, &cfg->auto_credit_limit, why, sizeof why) != 0)
            s_problem(ld, "KASA_AUTO_CREDIT_LIMIT: %s", why);
    }
    if (s_set(ld, K_DUAL_APPROVAL_LIMIT)) {
        const char *l = ld->val[K_DUAL_APPROVAL_LIMIT];
        char why[128];
        if (strcmp(l, "none") == 0)
            cfg->dual_approval_limit = 0;
        else if (money_parse(l, &cfg->dual_approval_limit, why, sizeof why) != 0)
            s_problem(ld, "KASA_DUAL_APPROVAL_LIMIT: %s", why);
        else if (!cfg->auto_credit_limit || cfg->dual_approval_limit < cfg->auto_credit_limit)
            s_problem(ld, "KASA_DUAL_APPROVAL_LIMIT: must be at least KASA_AUTO_CREDIT_LIMIT (which must be set)");
    }
    cfg->crediters = (int) s_int_key(ld, K_CREDITERS, 1, 64, (uint64_t) cfg->crediters);
    cfg->lockers = (int) s_int_key(ld, K_LOCKERS, 1, 64, (uint64_t) cfg->lockers);
    cfg->notifiers = (int) s_int_key(ld, K_NOTIFIERS, 1, 64, (uint64_t) cfg->notifiers);
    cfg->pending_age_s = (int) s_int_key(ld, K_PENDING_AGE_S, 1, 604800, (uint64_t) cfg->pending_age_s);
    cfg->pending_poll_s = (int) s_int_key(ld, K_PENDING_POLL_S, 1, 86400, (uint64_t) cfg->pending_poll_s);
    cfg->cobo_confirm_wait_s = (int) s_int_key(ld, K_COBO_CONFIRM_WAIT_S, 1, 86400,
                                               (uint64_t) cfg->cobo_confirm_wait_s);

    /* MongoDB (schema/mongo.h): optional; the URI may hold a password and is never printed whole */
    if (s_set(ld, K_MONGO_URI)) {
        const char *u = ld->val[K_MONGO_URI];
        if (strncmp(u, "mongodb://", 10) != 0 && strncmp(u, "mongodb+srv://", 14) != 0)
            s_problem(ld, "KASA_MONGO_URI: expected a mongodb:// or mongodb+srv:// URI");
        else
            s_copy(ld, K_MONGO_URI, cfg->mongo_uri, sizeof cfg->mongo_uri);
    }
    char why[128];
    if (s_set(ld, K_MONGO_DB) && mongo_db_name_check(ld->val[K_MONGO_DB], why, sizeof why) != 0)
        s_problem(ld, "KASA_MONGO_DB: %s", why);
    else
        s_copy(ld, K_MONGO_DB, cfg->mongo_db, sizeof cfg->mongo_db);
    if (s_set(ld, K_NODE_ID) && mongo_node_id_check(ld->val[K_NODE_ID], why, sizeof why) != 0)
        s_problem(ld, "KASA_NODE_ID: %s", why);
    else
        s_copy(ld, K_NODE_ID, cfg->node_id, sizeof cfg->node_id);
    cfg->mongo_batch = (int) s_int_key(ld, K_MONGO_BATCH, 1, 4096, (uint64_t) cfg->mongo_batch);
    cfg->cluster = s_bool_key(ld, K_CLUSTER, cfg->cluster);
    cfg->claim_lease_ms = (int) s_int_key(ld, K_CLAIM_LEASE_MS, 300, 600000, (uint64_t) cfg->claim_lease_ms);
    if (cfg->cluster && !cfg->mongo_uri[0])
        s_problem(ld, "KASA_CLUSTER=on needs KASA_MONGO_URI: the nodes agree through MongoDB");
    s_cluster_margins(ld, cfg);
    s_withdraw_keys(ld, cfg);
    /* operations */
    cfg->catchup_interval_s = (int) s_int_key(ld, K_CATCHUP_INTERVAL, 0, 86400, (uint64_t) cfg->catchup_interval_s);
    cfg->catchup_lookback_s = (int) s_int_key(ld, K_CATCHUP_LOOKBACK, 0, 90 * 86400,
                                              (uint64_t) cfg->catchup_lookback_s);
    if (s_set(ld, K_METRICS_LISTEN)) {
        if (strcmp(ld->val[K_METRICS_LISTEN], "off") != 0 && s_hostport_ok(ld->val[K_METRICS_LISTEN]) != 0)
            s_problem(ld, "KASA_METRICS_LISTEN: expected host:port (e.g. 127.0.0.1:9100) or off");
        else
            s_copy(ld, K_METRICS_LISTEN, cfg->metrics_listen, sizeof cfg->metrics_listen);
    }
    s_url_key(ld, K_RATE_URL, cfg->rate_url, sizeof cfg->rate_url);
    cfg->rate_max_age_s = (int) s_int_key(ld, K_RATE_MAX_AGE_S, 5, 3600, (uint64_t) cfg->rate_max_age_s);
    cfg->rate_refresh_s = (int) s_int_key(ld, K_RATE_REFRESH_S, 1, 3600, (uint64_t) cfg->rate_refresh_s);
    if (cfg->rate_refresh_s >= cfg->rate_max_age_s)
        s_problem(ld, "KASA_RATE_REFRESH_S (%d) must be below KASA_RATE_MAX_AGE_S (%d): a rate would age out "
                  "before it is fetched again", cfg->rate_refresh_s, cfg->rate_max_age_s);
    if (s_set(ld, K_LOG_FORMAT)) {
        if (strcasecmp(ld->val[K_LOG_FORMAT], "json") == 0)
            log_set_format(LOG_FORMAT_JSON);
        else if (strcasecmp(ld->val[K_LOG_FORMAT], "text") == 0)
            log_set_format(LOG_FORMAT_TEXT);
        else
            s_problem(ld, "KASA_LOG_FORMAT: expected text or json");
    }
}

/* The steps after the file: the environment over it, then conversion; ld is freed. */
static int s_load_finish(loader_t *ld, config_t *cfg)
{
    s_env_read(ld);
    s_convert(ld, cfg);
    s_loader_free(ld);
    if (ld->problems) {
        config_clear(cfg);
        return -1;
    }
    return 0;
}

static void s_load_start(loader_t *ld, config_t *cfg, char *err, size_t errlen)
{
    memset(ld, 0, sizeof *ld);
    ld->err = err;
    ld->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    s_defaults(cfg);
}

int config_load(config_t *cfg, const char *path, char *err, size_t errlen)
{
    loader_t ld;
    s_load_start(&ld, cfg, err, errlen);
    if (path)
        s_file_read(&ld, path);
    return s_load_finish(&ld, cfg);
}

int config_parse(config_t *cfg, const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    loader_t ld;
    s_load_start(&ld, cfg, err, errlen);
    s_text_read(&ld, name ? name : "(text)", text ? text : "", text ? len : 0);
    return s_load_finish(&ld, cfg);
}

int config_file_private(const char *path, char *why, size_t whylen)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return -1;
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
        return 0;
    snprintf(why, whylen, "%s is readable or writable by others (mode %04o) but holds secrets: chmod 600 %s", path,
             (unsigned) (st.st_mode & 07777), path);
    return 1;
}

const config_token_t *config_token(const config_t *cfg, const char *token_id)
{
    if (!cfg || !token_id)
        return NULL;
    for (int i = 0; i < cfg->token_count; i++)
        if (strcmp(cfg->tokens[i].token_id, token_id) == 0)
            return &cfg->tokens[i];
    return NULL;
}

const config_token_t *config_rule(const config_t *cfg, const char *token_id, const char *currency)
{
    if (!cfg || !token_id || !currency)
        return NULL;
    for (int i = 0; i < cfg->token_count; i++)
        if (strcmp(cfg->tokens[i].token_id, token_id) == 0 &&
            strcasecmp(cfg->tokens[i].currency[0] ? cfg->tokens[i].currency : "USD", currency) == 0)
            return &cfg->tokens[i];
    return NULL;
}

static void s_print_money(FILE *out, money_atto_t v)
{
    char buf[64];
    if (money_format(v, buf, sizeof buf) != 0)
        snprintf(buf, sizeof buf, "?");
    fputs(buf, out);
}

static void s_print_secret(FILE *out, const char *name, const char *val)
{
    fprintf(out, "%s=%s\n", name, val && val[0] ? "(set)" : "(unset)");
}

long config_cobo_timeout_ms(const config_t *cfg)
{
    return cfg && cfg->cobo_timeout_ms > 0 ? cfg->cobo_timeout_ms : CONFIG_DEFAULT_COBO_TIMEOUT_MS;
}

long config_mt5_timeout_ms(const config_t *cfg)
{
    return cfg && cfg->mt5_timeout_ms > 0 ? cfg->mt5_timeout_ms : CONFIG_DEFAULT_MT5_TIMEOUT_MS;
}

void config_print(const config_t *cfg, FILE *out)
{
    fprintf(out, "KASA_LISTEN=%s\n", cfg->listen);
    fprintf(out, "KASA_WEBHOOK_LISTEN=%s\n", cfg->webhook_listen);
    fprintf(out, "KASA_JOURNAL_DIR=%s\n", cfg->journal_dir);
    fprintf(out, "KASA_MONITOR=%s\n", cfg->monitor);
    fprintf(out, "KASA_CONTROL=%s\n", cfg->control);
    fprintf(out, "KASA_STATIC_DIR=%s\n", cfg->static_dir);
    fprintf(out, "KASA_PUBLIC_URL=%s\n", cfg->public_url);
    fprintf(out, "KASA_MAX_BODY=%zu\n", cfg->max_body);
    fprintf(out, "KASA_HTTP_THREADS=%d\n", cfg->http_threads);
    fprintf(out, "KASA_MAX_DEPOSITS=%zu\n", cfg->max_deposits);
    fprintf(out, "KASA_SNAPSHOT_EVERY_RECORDS=%llu\nKASA_SNAPSHOT_EVERY_S=%d\n",
            (unsigned long long) cfg->snapshot_every_records, cfg->snapshot_every_s);
    fprintf(out, "KASA_COOKIE_SECURE=%s\n", cfg->cookie_secure ? "on" : "off");
    fprintf(out, "KASA_INVESTOR_PASSWORD_LOGIN=%s\n", cfg->investor_password_login ? "on" : "off");
    fprintf(out, "KASA_TRUSTED_PROXIES=");
    for (int i = 0; i < cfg->trusted_proxies.count; i++) {
        char a[NETADDR_TEXT];
        netaddr_format(&cfg->trusted_proxies.e[i].net, a);
        fprintf(out, "%s%s/%d", i ? "," : "", a, cfg->trusted_proxies.e[i].prefix);
    }
    fputc('\n', out);
    fprintf(out, "KASA_HEADER_TIMEOUT_MS=%d\n", cfg->header_timeout_ms);
    fprintf(out, "KASA_MAX_CONNECTIONS=%d\n", cfg->max_connections);
    fprintf(out, "KASA_MAX_CONNECTIONS_PER_IP=%d\n", cfg->max_connections_per_ip);
    fprintf(out, "COBO_ENV=%s\n", cfg->cobo_env);
    fprintf(out, "COBO_API_URL=%s\n", cfg->cobo_api_url);
    fprintf(out, "COBO_API_KEY=%s\n", cfg->cobo_api_key);
    s_print_secret(out, "COBO_API_SECRET", cfg->cobo_api_secret);
    fprintf(out, "COBO_WEBHOOK_PUBKEY=%s\n", cfg->cobo_webhook_pubkey);
    fprintf(out, "COBO_WALLET_ID=%s\n", cfg->cobo_wallet_id);
    fprintf(out, "KASA_CHAINS=");
    for (int i = 0; i < cfg->chain_count; i++)
        fprintf(out, "%s%s", i ? "," : "", cfg->chains[i]);
    fputc('\n', out);
    fprintf(out, "MT5_URL=%s\n", cfg->mt5_url);
    fprintf(out, "MT5_LOGIN=%llu\n", (unsigned long long) cfg->mt5_login);
    s_print_secret(out, "MT5_PASSWORD", cfg->mt5_password);
    fprintf(out, "MT5_CA_FILE=%s\n", cfg->mt5_ca_file);
    fprintf(out, "KASA_MT5_SETTLE_S=%d\n", cfg->mt5_settle_s);
    fprintf(out, "KASA_MT5_TIMEOUT_MS=%d\n", cfg->mt5_timeout_ms);
    fprintf(out, "KASA_COBO_TIMEOUT_MS=%d\n", cfg->cobo_timeout_ms);
    fprintf(out, "TELEGRAM_API_URL=%s\n", cfg->telegram_api_url);
    s_print_secret(out, "TELEGRAM_BOT_TOKEN", cfg->telegram_bot_token);
    fprintf(out, "TELEGRAM_CHAT_ID=%s\n", cfg->telegram_chat_id);
    fprintf(out, "KASA_NOTICE_LANG=%s\n", cfg->notice_lang);
    fprintf(out, "KASA_TELEGRAM_APPROVERS=");
    for (int i = 0; i < cfg->telegram_approver_count; i++)
        fprintf(out, "%s%lld:%s", i ? "," : "", (long long) cfg->telegram_approvers[i].user_id,
                cfg->telegram_approvers[i].admin);
    fputc('\n', out);
    fprintf(out, "KASA_TELEGRAM_POLL_S=%d\n", cfg->telegram_poll_s);
    for (int i = 0; i < cfg->token_count; i++) {
        const config_token_t *t = &cfg->tokens[i];
        if (!t->currency[0] || strcmp(t->currency, "USD") == 0)
            fprintf(out, "KASA_TOKEN_%s=", t->token_id);   /* the USD rule's usual key */
        else
            fprintf(out, "KASA_TOKEN_%s__%s=", t->token_id, t->currency);
        if (t->live && t->factor > 1)
            fprintf(out, "live/%s*%u", t->symbol, (unsigned) t->factor);
        else if (t->live)
            fprintf(out, "live/%s", t->symbol);
        else
            s_print_money(out, t->rate);
        fputc(':', out);
        s_print_money(out, t->fee);
        fputc(':', out);
        s_print_money(out, t->minimum);
        fputc('\n', out);
    }
    fprintf(out, "KASA_AUTO_CREDIT_LIMIT=");
    if (cfg->auto_credit_limit == 0)
        fputs("none", out);
    else
        s_print_money(out, cfg->auto_credit_limit);
    fputc('\n', out);
    fprintf(out, "KASA_DUAL_APPROVAL_LIMIT=");
    if (cfg->dual_approval_limit == 0)
        fputs("none", out);
    else
        s_print_money(out, cfg->dual_approval_limit);
    fputc('\n', out);
    fprintf(out, "KASA_CREDITERS=%d\n", cfg->crediters);
    fprintf(out, "KASA_LOCKERS=%d\n", cfg->lockers);
    fprintf(out, "KASA_NOTIFIERS=%d\n", cfg->notifiers);
    fprintf(out, "KASA_PENDING_AGE_S=%d\n", cfg->pending_age_s);
    fprintf(out, "KASA_PENDING_POLL_S=%d\n", cfg->pending_poll_s);
    fprintf(out, "KASA_COBO_CONFIRM_WAIT_S=%d\n", cfg->cobo_confirm_wait_s);
    char uri[300];
    mongo_uri_redact(cfg->mongo_uri, uri, sizeof uri);
    fprintf(out, "KASA_MONGO_URI=%s\n", cfg->mongo_uri[0] ? uri : "(unset)");
    fprintf(out, "KASA_MONGO_DB=%s\n", cfg->mongo_db);
    fprintf(out, "KASA_NODE_ID=%s\n", cfg->node_id);
    fprintf(out, "KASA_CLUSTER=%s\n", cfg->cluster ? "on" : "off");
    fprintf(out, "KASA_CLAIM_LEASE_MS=%d\n", cfg->claim_lease_ms);
    fprintf(out, "KASA_MONGO_BATCH=%d\n", cfg->mongo_batch);
    fprintf(out, "KASA_CATCHUP_INTERVAL=%d\n", cfg->catchup_interval_s);
    fprintf(out, "KASA_CATCHUP_LOOKBACK=%d\n", cfg->catchup_lookback_s);
    fprintf(out, "KASA_METRICS_LISTEN=%s\n", cfg->metrics_listen);
    fprintf(out, "KASA_WITHDRAW_RULES=%s\n", cfg->withdraw_rules_text);
    fprintf(out, "KASA_WITHDRAW_AUTO_APPROVE_LIMIT=");
    if (cfg->withdraw_auto_limit)
        s_print_money(out, cfg->withdraw_auto_limit);
    else
        fputs("none", out);
    fprintf(out, "\nKASA_WITHDRAW_DUAL_APPROVAL_LIMIT=");
    if (cfg->withdraw_dual_limit)
        s_print_money(out, cfg->withdraw_dual_limit);
    else
        fputs("none", out);
    fprintf(out, "\nKASA_WITHDRAW_POLL_S=%d\n", cfg->withdraw_poll_s);
    fprintf(out, "COBO_WITHDRAW_WALLET_ID=%s\n", cfg->cobo_withdraw_wallet_id);
    fprintf(out, "COBO_WITHDRAW_ADDRESS=%s\n", cfg->cobo_withdraw_address);
    fprintf(out, "KASA_OWN_ADDRESSES=%s\n", cfg->own_addresses);
    fprintf(out, "KASA_RATE_URL=%s\n", cfg->rate_url);
    fprintf(out, "KASA_RATE_MAX_AGE_S=%d\n", cfg->rate_max_age_s);
    fprintf(out, "KASA_RATE_REFRESH_S=%d\n", cfg->rate_refresh_s);
}

void config_clear(config_t *cfg)
{
    if (!cfg)
        return;
    volatile char *p;
    p = cfg->cobo_api_secret;
    for (size_t i = 0; i < sizeof cfg->cobo_api_secret; i++) p[i] = 0;
    p = cfg->mt5_password;
    for (size_t i = 0; i < sizeof cfg->mt5_password; i++) p[i] = 0;
    p = cfg->telegram_bot_token;
    for (size_t i = 0; i < sizeof cfg->telegram_bot_token; i++) p[i] = 0;
    p = cfg->mongo_uri;
    for (size_t i = 0; i < sizeof cfg->mongo_uri; i++) p[i] = 0;
}
