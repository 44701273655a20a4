/* cobo_tx.c — see cobo_tx.h. Shape and bounds only: every required field present and a string,
 * every string fits its field and holds no control character, the amount is a valid decimal. */
#include "schema/cobo_tx.h"

#include <stdio.h>
#include <string.h>

#include "schema/json.h"
#include "schema/money.h"

enum { S_FOUND = 0, S_ABSENT = 1, S_BAD = -1 };

#define S_PATH_MAX 256

/* Builds "prefix.field" (or "field" when prefix is empty) into buf; a path too long for buf
 * becomes "" (which matches nothing). */
static void s_path(char *buf, size_t len, const char *prefix, const char *field)
{
    size_t pl = prefix ? strlen(prefix) : 0, fl = strlen(field);
    if (pl + 1 + fl + 1 > len) {
        buf[0] = '\0';
        return;
    }
    if (pl) {
        memcpy(buf, prefix, pl);
        buf[pl++] = '.';
    }
    memcpy(buf + pl, field, fl + 1);
}

/* Looks up path: S_FOUND with *it on a non-null value, S_ABSENT if missing or JSON null. */
static int s_lookup(const bson_t *doc, const char *path, bson_iter_t *it)
{
    bson_iter_t root;
    if (!bson_iter_init(&root, doc) || !bson_iter_find_descendant(&root, path, it))
        return S_ABSENT;
    if (BSON_ITER_HOLDS_NULL(it) || bson_iter_type(it) == BSON_TYPE_UNDEFINED)
        return S_ABSENT;
    return S_FOUND;
}

/* Copies the string at prefix.field into dst (size dst_len). Returns S_FOUND, S_ABSENT (dst = ""),
 * or S_BAD with a reason (not a string, too long, control character). An empty string counts as
 * absent. */
static int s_get_str(const bson_t *doc, const char *prefix, const char *field, char *dst,
                     size_t dst_len, char *err, size_t errlen)
{
    char path[S_PATH_MAX];
    bson_iter_t it;
    s_path(path, sizeof path, prefix, field);
    dst[0] = '\0';
    if (s_lookup(doc, path, &it) != S_FOUND)
        return S_ABSENT;
    if (!BSON_ITER_HOLDS_UTF8(&it)) {
        snprintf(err, errlen, "field %s: not a string", path);
        return S_BAD;
    }
    uint32_t n = 0;
    const char *s = bson_iter_utf8(&it, &n);
    if (n >= dst_len) {
        snprintf(err, errlen, "field %s: longer than %zu bytes", path, dst_len - 1);
        return S_BAD;
    }
    for (uint32_t i = 0; i < n; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(err, errlen, "field %s: control character", path);
            return S_BAD;
        }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return n ? S_FOUND : S_ABSENT;
}

static int s_require_str(const bson_t *doc, const char *prefix, const char *field, char *dst,
                         size_t dst_len, char *err, size_t errlen)
{
    int r = s_get_str(doc, prefix, field, dst, dst_len, err, errlen);
    if (r == S_ABSENT) {
        char path[S_PATH_MAX];
        s_path(path, sizeof path, prefix, field);
        snprintf(err, errlen, "missing field %s", path);
        return -1;
    }
    return r == S_FOUND ? 0 : -1;
}

/* An integer in [lo, hi] at prefix.field: S_FOUND, S_ABSENT (*out = dflt) or S_BAD. */
static int s_get_int(const bson_t *doc, const char *prefix, const char *field, int64_t lo,
                     int64_t hi, int64_t dflt, int64_t *out, char *err, size_t errlen)
{
    char path[S_PATH_MAX];
    bson_iter_t it;
    s_path(path, sizeof path, prefix, field);
    *out = dflt;
    if (s_lookup(doc, path, &it) != S_FOUND)
        return S_ABSENT;
    int64_t v;
    if (json_get_i64(doc, path, &v) != 0) {
        snprintf(err, errlen, "field %s: not an integer", path);
        return S_BAD;
    }
    if (v < lo || v > hi) {
        snprintf(err, errlen, "field %s: out of range", path);
        return S_BAD;
    }
    *out = v;
    return S_FOUND;
}

int cobo_tx_from_bson(const bson_t *doc, const char *path, cobo_tx_t *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->confirmations = -1;
    out->threshold = -1;
    const char *p = path ? path : "";
    char dest[S_PATH_MAX], acct[S_PATH_MAX];
    s_path(dest, sizeof dest, p, "destination");
    s_path(acct, sizeof acct, dest, "account_output");

    if (s_require_str(doc, p, "transaction_id", out->tx_id, sizeof out->tx_id, err, errlen) != 0
        || s_require_str(doc, p, "type", out->type, sizeof out->type, err, errlen) != 0
        || s_require_str(doc, p, "status", out->status, sizeof out->status, err, errlen) != 0
        || s_require_str(doc, p, "token_id", out->token_id, sizeof out->token_id, err, errlen) != 0
        || s_require_str(doc, p, "chain_id", out->chain_id, sizeof out->chain_id, err, errlen) != 0)
        return -1;
    char src[S_PATH_MAX];
    s_path(src, sizeof src, p, "source");
    if (s_get_str(doc, p, "request_id", out->request_id, sizeof out->request_id, err, errlen) == S_BAD
        || s_get_str(doc, src, "source_type", out->source_type, sizeof out->source_type, err, errlen) == S_BAD
        || s_get_str(doc, src, "address", out->source_address, sizeof out->source_address, err, errlen) == S_BAD
        || (!out->source_address[0]
            && s_get_str(doc, src, "addresses.0", out->source_address, sizeof out->source_address, err, errlen)
                   == S_BAD))
        return -1;
    for (int i = 0; i < 4; i++) {   /* cobo_category: a few short names, kept comma-joined */
        char at[32], one[32];
        snprintf(at, sizeof at, "cobo_category.%d", i);
        char cerr[8];
        if (s_get_str(doc, p, at, one, sizeof one, cerr, sizeof cerr) != S_FOUND)
            break;   /* none, or not a short name kasa knows: no mark */
        size_t used = strlen(out->cobo_category);
        snprintf(out->cobo_category + used, sizeof out->cobo_category - used, "%s%s", used ? "," : "", one);
    }
    if (s_get_str(doc, p, "sub_status", out->sub_status, sizeof out->sub_status, err, errlen) == S_BAD
        || s_get_str(doc, p, "wallet_id", out->wallet_id, sizeof out->wallet_id, err, errlen) == S_BAD
        || s_get_str(doc, p, "transaction_hash", out->tx_hash, sizeof out->tx_hash, err, errlen) == S_BAD)
        return -1;

    /* A deposit names its target as destination.{address,amount}; a withdrawal (transfer) as
     * destination.account_output.{address,amount}. Take the first shape present. */
    const char *target = dest;
    bson_iter_t it;
    char probe[S_PATH_MAX];
    s_path(probe, sizeof probe, dest, "address");
    if (s_lookup(doc, probe, &it) != S_FOUND) {
        s_path(probe, sizeof probe, acct, "address");
        if (s_lookup(doc, probe, &it) == S_FOUND)
            target = acct;
    }
    if (s_require_str(doc, target, "address", out->address, sizeof out->address, err, errlen) != 0
        || s_require_str(doc, target, "amount", out->amount, sizeof out->amount, err, errlen) != 0)
        return -1;
    money_atto_t atto;
    char why[96] = "";
    if (money_parse(out->amount, &atto, why, sizeof why) != 0) {
        snprintf(err, errlen, "amount: %s", why[0] ? why : "not a decimal");
        return -1;
    }

    int64_t v;
    if (s_get_int(doc, p, "confirmed_num", 0, INT32_MAX, -1, &v, err, errlen) == S_BAD)
        return -1;
    out->confirmations = (int32_t) v;
    if (s_get_int(doc, p, "confirming_threshold", 0, INT32_MAX, -1, &v, err, errlen) == S_BAD)
        return -1;
    out->threshold = (int32_t) v;
    if (s_get_int(doc, p, "updated_timestamp", 0, INT64_MAX, 0, &v, err, errlen) == S_BAD)
        return -1;
    out->updated_ms = v;
    return 0;
}

int cobo_event_parse(const char *body, size_t len, cobo_event_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->tx.confirmations = -1;
    out->tx.threshold = -1;
    bson_t doc;
    if (!body || json_parse(body, len, &doc, err, errlen) != 0) {
        if (!body)
            snprintf(err, errlen, "empty body");
        else
            bson_destroy(&doc);
        return -1;
    }
    int rc = -1;
    bson_iter_t it;
    char data_type[32];
    if (s_require_str(&doc, "", "event_id", out->event_id, sizeof out->event_id, err, errlen) != 0
        || s_require_str(&doc, "", "type", out->type, sizeof out->type, err, errlen) != 0)
        goto done;
    if (s_lookup(&doc, "data", &it) != S_FOUND) {
        snprintf(err, errlen, "missing field data");
        goto done;
    }
    if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
        snprintf(err, errlen, "field data: not an object");
        goto done;
    }
    if (s_get_str(&doc, "data", "data_type", data_type, sizeof data_type, err, errlen) == S_BAD)
        goto done;
    out->is_transaction = strcmp(data_type, "Transaction") == 0;
    if (out->is_transaction && cobo_tx_from_bson(&doc, "data", &out->tx, err, errlen) != 0)
        goto done;
    rc = 0;
done:
    bson_destroy(&doc);
    return rc;
}

static const char *const s_status_names[] = {
    [COBO_STATUS_UNKNOWN] = "unknown",
    [COBO_STATUS_SUBMITTED] = "Submitted",
    [COBO_STATUS_PENDING_SCREENING] = "PendingScreening",
    [COBO_STATUS_PENDING_AUTHORIZATION] = "PendingAuthorization",
    [COBO_STATUS_PENDING_SIGNATURE] = "PendingSignature",
    [COBO_STATUS_BROADCASTING] = "Broadcasting",
    [COBO_STATUS_CONFIRMING] = "Confirming",
    [COBO_STATUS_PENDING] = "Pending",
    [COBO_STATUS_COMPLETED] = "Completed",
    [COBO_STATUS_FAILED] = "Failed",
    [COBO_STATUS_REJECTED] = "Rejected",
};

cobo_status_t cobo_status_parse(const char *status)
{
    if (!status)
        return COBO_STATUS_UNKNOWN;
    for (size_t i = 1; i < sizeof s_status_names / sizeof s_status_names[0]; i++)
        if (strcmp(s_status_names[i], status) == 0)
            return (cobo_status_t) i;
    return COBO_STATUS_UNKNOWN;
}

const char *cobo_status_name(cobo_status_t status)
{
    if ((size_t) status >= sizeof s_status_names / sizeof s_status_names[0])
        return "unknown";
    return s_status_names[status];
}

int cobo_status_is_final(cobo_status_t status)
{
    return status == COBO_STATUS_COMPLETED || status == COBO_STATUS_FAILED || status == COBO_STATUS_REJECTED;
}

/* 1 if name is one of tx's Cobo-defined categories. */
static int s_has_category(const cobo_tx_t *tx, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = tx->cobo_category; *p; p += strcspn(p, ","), p += *p == ',')
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

cobo_kind_t cobo_tx_kind(const cobo_tx_t *tx, cobo_own_fn *own, void *arg)
{
    if (strcmp(tx->type, "Withdrawal") == 0)
        return strncmp(tx->request_id, COBO_KASA_REQUEST_PREFIX, strlen(COBO_KASA_REQUEST_PREFIX)) == 0
                   ? COBO_KIND_WITHDRAWAL
                   : COBO_KIND_SWEEP;
    if (strcmp(tx->type, "Deposit") != 0)
        return COBO_KIND_OTHER;
    if (s_has_category(tx, "AutoSweep"))
        return COBO_KIND_SWEEP;
    static const char *const fee_station[] = { "AutoFueling", "AutoFuelingRefund", "BillRefund",
                                               "CommissionFeeRefund" };
    for (size_t i = 0; i < sizeof fee_station / sizeof fee_station[0]; i++)
        if (s_has_category(tx, fee_station[i]))
            return COBO_KIND_OWN;
    if (strcmp(tx->source_type, "DepositFromWallet") == 0)
        return COBO_KIND_SWEEP;
    int whose = tx->source_address[0] && own ? own(arg, tx->source_address) : 0;
    if (whose == COBO_OWN_DEPOSIT)
        return COBO_KIND_SWEEP;
    if (whose == COBO_OWN_BROKER)
        return COBO_KIND_OWN;
    return COBO_KIND_DEPOSIT;
}

const char *cobo_kind_name(cobo_kind_t kind)
{
    switch (kind) {
    case COBO_KIND_DEPOSIT: return "deposit";
    case COBO_KIND_WITHDRAWAL: return "withdrawal";
    case COBO_KIND_SWEEP: return "sweep";
    case COBO_KIND_OTHER: return "other";
    case COBO_KIND_OWN: return "own";
    }
    return "?";
}
