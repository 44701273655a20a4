/* webhook_json.c — see webhook_json.h.
 *
 * Two passes over one body. The first (s_value and friends) checks the whole text against a strict
 * JSON grammar and, on the way, notes where each field kasa reads sits (a slot per field: its kind
 * and, for a string, a pointer into the body). The second (s_event) applies cobo_event_parse's and
 * cobo_tx_from_bson's rules (schema/cobo_tx.c) to the slots, in the same order and with the same
 * bounds; wherever those rules would refuse, or the reading of a field could depend on how libbson
 * builds its document, the body is declined and cobo_event_parse decides. Nothing is allocated. */
#include "web/webhook_json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "schema/money.h"

#define WJ_MAX_DEPTH 32          /* deeper bodies are declined (libbson's own limit is 100) */
#define WJ_MAX_DIGITS 18         /* an integer of more digits is declined: it might not fit int64 */
#define WJ_CATEGORIES 4          /* cobo_category elements cobo_tx_from_bson reads */
#define WJ_CATEGORY_LEN 32       /* its buffer for one of them */

typedef enum { V_ABSENT = 0, V_NULL, V_STR, V_INT, V_OBJ, V_ARR, V_OTHER } s_kind_t;

typedef struct {
    s_kind_t kind;
    const char *s;               /* V_STR: the raw text between the quotes */
    size_t n;
    int plain;                   /* V_STR: no escape and no DEL: the raw text is the value */
    int64_t i;                   /* V_INT */
} s_val_t;

/* The fields kasa reads, by where they sit. */
typedef enum {
    F_EVENT_ID, F_TYPE, F_DATA,
    F_DATA_TYPE, F_TX_ID, F_TX_TYPE, F_STATUS, F_TOKEN, F_CHAIN, F_REQUEST, F_SUB, F_WALLET, F_HASH,
    F_SOURCE, F_SRC_TYPE, F_SRC_ADDR, F_SRC_ADDRS, F_SRC_ADDR0,
    F_DEST, F_DEST_ADDR, F_DEST_AMOUNT, F_ACCT, F_ACCT_ADDR, F_ACCT_AMOUNT,
    F_CATEGORY, F_CONF, F_THRESH, F_UPDATED,
    F_COUNT
} s_field_t;

/* Where a value sits: the objects and arrays whose members are fields. */
typedef enum { C_NONE, C_ROOT, C_DATA, C_SOURCE, C_DEST, C_ACCT, C_ADDRS, C_CATEGORY } s_ctx_t;

static const struct {
    s_ctx_t in;
    const char *key;
    s_field_t field;
    s_ctx_t child;               /* the context of the value's members, if it is an object or array */
} s_keys[] = {
    { C_ROOT, "event_id", F_EVENT_ID, C_NONE },        { C_ROOT, "type", F_TYPE, C_NONE },
    { C_ROOT, "data", F_DATA, C_DATA },
    { C_DATA, "data_type", F_DATA_TYPE, C_NONE },      { C_DATA, "transaction_id", F_TX_ID, C_NONE },
    { C_DATA, "type", F_TX_TYPE, C_NONE },             { C_DATA, "status", F_STATUS, C_NONE },
    { C_DATA, "token_id", F_TOKEN, C_NONE },           { C_DATA, "chain_id", F_CHAIN, C_NONE },
    { C_DATA, "request_id", F_REQUEST, C_NONE },       { C_DATA, "sub_status", F_SUB, C_NONE },
    { C_DATA, "wallet_id", F_WALLET, C_NONE },         { C_DATA, "transaction_hash", F_HASH, C_NONE },
    { C_DATA, "source", F_SOURCE, C_SOURCE },          { C_DATA, "destination", F_DEST, C_DEST },
    { C_DATA, "cobo_category", F_CATEGORY, C_CATEGORY },
    { C_DATA, "confirmed_num", F_CONF, C_NONE },       { C_DATA, "confirming_threshold", F_THRESH, C_NONE },
    { C_DATA, "updated_timestamp", F_UPDATED, C_NONE },
    { C_SOURCE, "source_type", F_SRC_TYPE, C_NONE },   { C_SOURCE, "address", F_SRC_ADDR, C_NONE },
    { C_SOURCE, "addresses", F_SRC_ADDRS, C_ADDRS },
    { C_DEST, "address", F_DEST_ADDR, C_NONE },        { C_DEST, "amount", F_DEST_AMOUNT, C_NONE },
    { C_DEST, "account_output", F_ACCT, C_ACCT },
    { C_ACCT, "address", F_ACCT_ADDR, C_NONE },        { C_ACCT, "amount", F_ACCT_AMOUNT, C_NONE },
};

typedef struct {
    const char *p, *end;
    int depth;
    s_val_t f[F_COUNT];
    s_val_t cat[WJ_CATEGORIES];  /* data.cobo_category[0..3] */
} s_reader_t;

/* ---- pass 1: strict JSON, noting the slots (each returns 0, or -1: declined) ---------------- */

static void s_ws(s_reader_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* A string at r->p (the opening quote): ASCII only, no raw control byte, no \u escape. */
static int s_string(s_reader_t *r, s_val_t *v)
{
    const char *s = ++r->p;
    int plain = 1;
    while (r->p < r->end) {
        unsigned char c = (unsigned char) *r->p;
        if (c == '"') {
            v->kind = V_STR;
            v->s = s;
            v->n = (size_t) (r->p - s);
            v->plain = plain;
            r->p++;
            return 0;
        }
        if (c < 0x20 || c >= 0x80)
            return -1;
        if (c == 0x7f)
            plain = 0;
        if (c == '\\') {
            if (r->p + 1 >= r->end || !strchr("\"\\/bfnrt", r->p[1]) || r->p[1] == '\0')
                return -1;
            plain = 0;
            r->p++;
        }
        r->p++;
    }
    return -1;
}

/* -?(0|[1-9][0-9]*), at most WJ_MAX_DIGITS digits, no fraction or exponent. */
static int s_number(s_reader_t *r, s_val_t *v)
{
    int neg = 0;
    if (*r->p == '-') {
        neg = 1;
        r->p++;
    }
    const char *d = r->p;
    int64_t x = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        if (r->p - d >= WJ_MAX_DIGITS)
            return -1;   /* a 19th digit: checked before it is added, so x never overflows */
        x = x * 10 + (*r->p - '0');
        r->p++;
    }
    size_t n = (size_t) (r->p - d);
    if (n == 0 || (n > 1 && *d == '0'))
        return -1;
    if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))
        return -1;
    v->kind = V_INT;
    v->i = neg ? -x : x;
    return 0;
}

static int s_literal(s_reader_t *r, const char *word, s_kind_t kind, s_val_t *v)
{
    size_t n = strlen(word);
    if ((size_t) (r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return -1;
    r->p += n;
    v->kind = kind;
    return 0;
}

static int s_value(s_reader_t *r, s_ctx_t ctx, s_val_t *slot);

/* The slot of key in an object of context ctx (NULL: not a field), and its members' context. */
static s_val_t *s_slot(s_reader_t *r, s_ctx_t ctx, const s_val_t *key, s_ctx_t *child)
{
    *child = C_NONE;
    if (ctx == C_NONE)
        return NULL;
    for (size_t i = 0; i < sizeof s_keys / sizeof s_keys[0]; i++)
        if (s_keys[i].in == ctx && strlen(s_keys[i].key) == key->n && memcmp(s_keys[i].key, key->s, key->n) == 0) {
            *child = s_keys[i].child;
            return &r->f[s_keys[i].field];
        }
    return NULL;
}

/* After a member or an element: 1 if a ',' says another follows, 0 at the container's close,
 * -1 for anything else. */
static int s_after(s_reader_t *r, char close)
{
    s_ws(r);
    if (r->p < r->end && (*r->p == ',' || *r->p == close)) {
        int more = *r->p == ',';
        r->p++;
        s_ws(r);
        return more;
    }
    return -1;
}

static int s_object(s_reader_t *r, s_ctx_t ctx)
{
    r->p++;   /* '{' */
    s_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return 0;
    }
    for (;;) {
        s_val_t key = { 0 };
        if (r->p >= r->end || *r->p != '"' || s_string(r, &key) != 0 || !key.plain)
            return -1;
        if (key.n > 0 && key.s[0] == '$')
            return -1;   /* libbson reads such keys as extended JSON */
        s_ws(r);
        if (r->p >= r->end || *r->p != ':')
            return -1;
        r->p++;
        s_ws(r);
        s_ctx_t child;
        s_val_t *slot = s_slot(r, ctx, &key, &child);
        if (slot && slot->kind != V_ABSENT)
            return -1;   /* a field twice: which one libbson finds is its business */
        if (s_value(r, child, slot) != 0)
            return -1;
        int more = s_after(r, '}');
        if (more <= 0)
            return more;
    }
}

static int s_array(s_reader_t *r, s_ctx_t ctx)
{
    r->p++;   /* '[' */
    s_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return 0;
    }
    for (size_t i = 0;; i++) {
        s_val_t *slot = NULL;
        if (ctx == C_ADDRS && i == 0)
            slot = &r->f[F_SRC_ADDR0];
        else if (ctx == C_CATEGORY && i < WJ_CATEGORIES)
            slot = &r->cat[i];
        if (s_value(r, C_NONE, slot) != 0)
            return -1;
        int more = s_after(r, ']');
        if (more <= 0)
            return more;
    }
}

/* One value at r->p; its kind (and text) go to slot when it is a field. */
static int s_value(s_reader_t *r, s_ctx_t ctx, s_val_t *slot)
{
    s_val_t scratch = { 0 };
    s_val_t *v = slot ? slot : &scratch;
    if (r->p >= r->end)
        return -1;
    switch (*r->p) {
    case '{':
    case '[': {
        if (++r->depth > WJ_MAX_DEPTH)
            return -1;
        int is_obj = *r->p == '{';
        int rc = is_obj ? s_object(r, ctx) : s_array(r, ctx);
        r->depth--;
        v->kind = is_obj ? V_OBJ : V_ARR;
        return rc;
    }
    case '"': return s_string(r, v);
    case 't': return s_literal(r, "true", V_OTHER, v);
    case 'f': return s_literal(r, "false", V_OTHER, v);
    case 'n': return s_literal(r, "null", V_NULL, v);
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            return s_number(r, v);
        return -1;
    }
}

/* ---- pass 2: cobo_event_parse's rules on the slots --------------------------------------- */

enum { S_FOUND = 0, S_ABSENT = 1, S_BAD = -1 };

/* schema/cobo_tx.c's s_get_str: a plain string that fits dst is copied (S_FOUND, or S_ABSENT when
 * empty); absent or null is S_ABSENT with dst ""; anything else S_BAD (there: an error, or a string
 * whose reading this file leaves to libbson). */
static int s_str(const s_val_t *v, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (v->kind == V_ABSENT || v->kind == V_NULL)
        return S_ABSENT;
    if (v->kind != V_STR || !v->plain || v->n >= cap)
        return S_BAD;
    memcpy(dst, v->s, v->n);
    dst[v->n] = '\0';
    return v->n ? S_FOUND : S_ABSENT;
}

#define S_REQUIRE(v, dst) (s_str((v), (dst), sizeof (dst)) == S_FOUND)
#define S_OPTIONAL(v, dst) (s_str((v), (dst), sizeof (dst)) != S_BAD)

/* schema/cobo_tx.c's s_get_int for a JSON integer; any other kind of value is declined. */
static int s_int(const s_val_t *v, int64_t lo, int64_t hi, int64_t dflt, int64_t *out)
{
    *out = dflt;
    if (v->kind == V_ABSENT || v->kind == V_NULL)
        return 0;
    if (v->kind != V_INT || v->i < lo || v->i > hi)
        return -1;
    *out = v->i;
    return 0;
}

/* Present and not null: what cobo_tx.c's s_lookup calls found. */
static int s_found(const s_val_t *v) { return v->kind != V_ABSENT && v->kind != V_NULL; }

/* cobo_tx_from_bson at "data": 0, or -1 declined. */
static int s_tx(const s_reader_t *r, cobo_tx_t *out)
{
    const s_val_t *f = r->f;
    memset(out, 0, sizeof *out);
    out->confirmations = -1;
    out->threshold = -1;
    if (!S_REQUIRE(&f[F_TX_ID], out->tx_id) || !S_REQUIRE(&f[F_TX_TYPE], out->type)
        || !S_REQUIRE(&f[F_STATUS], out->status) || !S_REQUIRE(&f[F_TOKEN], out->token_id)
        || !S_REQUIRE(&f[F_CHAIN], out->chain_id))
        return -1;
    if (!S_OPTIONAL(&f[F_REQUEST], out->request_id) || !S_OPTIONAL(&f[F_SRC_TYPE], out->source_type)
        || !S_OPTIONAL(&f[F_SRC_ADDR], out->source_address))
        return -1;
    if (!out->source_address[0]) {
        if (f[F_SRC_ADDRS].kind == V_OBJ)
            return -1;   /* an object's member "0" would be found as addresses.0 */
        if (!S_OPTIONAL(&f[F_SRC_ADDR0], out->source_address))
            return -1;
    }
    if (f[F_CATEGORY].kind == V_OBJ)
        return -1;       /* likewise cobo_category.0 .. .3 */
    for (int i = 0; i < WJ_CATEGORIES; i++) {   /* the first four short names, until one is not */
        char one[WJ_CATEGORY_LEN];
        const s_val_t *c = &r->cat[i];
        if (c->kind == V_STR && !c->plain)
            return -1;
        if (s_str(c, one, sizeof one) != S_FOUND)
            break;
        size_t used = strlen(out->cobo_category);
        snprintf(out->cobo_category + used, sizeof out->cobo_category - used, "%s%s", used ? "," : "", one);
    }
    if (!S_OPTIONAL(&f[F_SUB], out->sub_status) || !S_OPTIONAL(&f[F_WALLET], out->wallet_id)
        || !S_OPTIONAL(&f[F_HASH], out->tx_hash))
        return -1;
    /* destination.{address,amount} for a deposit, destination.account_output.{...} for a transfer:
     * the first shape whose address is present */
    int acct = !s_found(&f[F_DEST_ADDR]) && s_found(&f[F_ACCT_ADDR]);
    if (!S_REQUIRE(&f[acct ? F_ACCT_ADDR : F_DEST_ADDR], out->address)
        || !S_REQUIRE(&f[acct ? F_ACCT_AMOUNT : F_DEST_AMOUNT], out->amount))
        return -1;
    money_atto_t atto;
    char why[96];
    if (money_parse(out->amount, &atto, why, sizeof why) != 0)
        return -1;
    int64_t v;
    if (s_int(&f[F_CONF], 0, INT32_MAX, -1, &v) != 0)
        return -1;
    out->confirmations = (int32_t) v;
    if (s_int(&f[F_THRESH], 0, INT32_MAX, -1, &v) != 0)
        return -1;
    out->threshold = (int32_t) v;
    if (s_int(&f[F_UPDATED], 0, INT64_MAX, 0, &v) != 0)
        return -1;
    out->updated_ms = v;
    return 0;
}

/* cobo_event_parse's envelope: 0, or -1 declined. */
static int s_event(const s_reader_t *r, cobo_event_t *out)
{
    const s_val_t *f = r->f;
    char data_type[32];
    if (!S_REQUIRE(&f[F_EVENT_ID], out->event_id) || !S_REQUIRE(&f[F_TYPE], out->type)
        || f[F_DATA].kind != V_OBJ || !S_OPTIONAL(&f[F_DATA_TYPE], data_type))
        return -1;
    out->is_transaction = strcmp(data_type, "Transaction") == 0;
    return out->is_transaction ? s_tx(r, &out->tx) : 0;
}

int webhook_json_direct(const char *body, size_t len, cobo_event_t *out)
{
    memset(out, 0, sizeof *out);
    out->tx.confirmations = -1;
    out->tx.threshold = -1;
    if (!body)
        return 0;
    s_reader_t r;
    memset(&r, 0, sizeof r);
    r.p = body;
    r.end = body + len;
    s_ws(&r);
    if (r.p >= r.end || *r.p != '{')
        return 0;
    r.depth = 1;
    if (s_object(&r, C_ROOT) != 0)
        return 0;
    s_ws(&r);
    if (r.p != r.end)
        return 0;   /* anything after the object */
    return s_event(&r, out) == 0 ? 1 : 0;
}

int webhook_event_parse(const char *body, size_t len, cobo_event_t *out, char *err, size_t errlen)
{
    if (webhook_json_direct(body, len, out) == 1)
        return 0;
    return cobo_event_parse(body, len, out, err, errlen);
}
