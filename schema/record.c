/* record.c — the journal record codec (msgpack), and its JSON and one-line renderings.
 *
 * Wire form: a msgpack map. "v" (version) and "k" (kind) come first, then the fields the
 * record uses, by the short keys of s_fields below. Only set fields are written: a field equal to its
 * empty value ("" / 0 / -1 for confirmations and threshold) is left out, so each kind carries just
 * what its writer filled in (a CREDIT_ATTEMPT: tx, login, credit, digits, ref, attempt). The fields a
 * kind always carries (time; from/to/event for a deposit transition, where NONE and SEEN_PENDING are
 * 0) are written always and required when reading. No kind is refused a field: a set field is never
 * dropped, whatever the kind. Records are written with RECORD_VERSION; each kind and field names the
 * version that defined it ("since"), and a reader refuses a kind or field newer than the record's own
 * version (an older record never carries one).
 *
 * Decoding is strict. Refused with a reason: not a map, nested arrays/maps, missing v or k, a version
 * newer than RECORD_VERSION, an unknown kind, a key this version does not define (a same-version
 * writer never writes one, so it means corruption or a writer bug; a new field needs a new version),
 * a repeated key, a value of the wrong type or out of range, a string that does not fit its field or
 * holds a NUL, a missing always-field, a truncated buffer and trailing bytes.
 * Encoding is as strict: an over-long (unterminated) string or an out-of-range state or event fails
 * the encode rather than being cut or guessed.
 *
 * The table s_fields is the one description of the record: record_init, encode, decode and the JSON
 * form all read it. Each field names the version that introduced it: a record of an older version
 * carrying a newer field is refused like an unknown key (version 1 lacks origin and the admin
 * account fields; version 1 records still decode, with those fields empty; records before version 4
 * carry no rate, rate_source, rate_time_ms).
 */
#include "schema/record.h"

#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/err.h"
#include "schema/money.h"

#define S_MAX_FIELDS 48    /* a map with more entries is refused before it is unpacked */
#define S_MAX_ENCODED 2048 /* every field at its longest encodes to about 1650 bytes */

typedef enum { S_STR, S_I64, S_U64, S_I32, S_U32, S_STATE, S_EVENT, S_MINOR, S_WSTATE, S_WEVENT } s_type_t;

#define K_(kind) (1u << (kind))
#define K_DEP K_(RECORD_DEPOSIT)
#define K_WD K_(RECORD_WITHDRAWAL)
#define K_ALL (K_(RECORD_DEPOSIT) | K_(RECORD_CREDIT_ATTEMPT) | K_(RECORD_ADDRESS_LINK) | \
               K_(RECORD_ADMIN_ACTION) | K_(RECORD_NOTICE_FAILED) | K_(RECORD_ALERT) | \
               K_(RECORD_HISTORY_GAP) | K_(RECORD_ADMIN_ACCOUNT) | K_(RECORD_WITHDRAWAL) | \
               K_(RECORD_WITHDRAWAL_ATTEMPT) | K_(RECORD_IGNORED))

typedef struct {
    const char *key;   /* msgpack key */
    size_t keylen;
    const char *name;  /* JSON key */
    s_type_t type;
    size_t off;        /* offset in record_t */
    size_t size;       /* strings: the field's size (the longest string is size - 1) */
    unsigned always;   /* kinds that always write it (and must have it when read) */
    int64_t empty;     /* numbers: the empty value */
    int since;         /* the record version that defined it */
} s_field_t;

#define F_(key, name, type, member, always, empty) F2_(key, name, type, member, always, empty, 1)
#define F2_(key, name, type, member, always, empty, since) \
    { key, sizeof(key) - 1, name, type, offsetof(record_t, member), sizeof(((record_t *) 0)->member), always, empty, \
      since }

static const s_field_t s_fields[] = {
    F_("t", "time_ms", S_I64, time_ms, K_ALL, 0),
    F_("tx", "tx_id", S_STR, tx_id, 0, 0),
    F_("f", "from", S_STATE, from, K_DEP, 0),
    F_("to", "to", S_STATE, to, K_DEP, 0),
    F_("e", "event", S_EVENT, event, K_DEP, 0),
    F_("st", "status", S_STR, status, 0, 0),
    F_("cf", "confirmations", S_I32, confirmations, 0, -1),
    F_("th", "threshold", S_I32, threshold, 0, -1),
    F_("tok", "token_id", S_STR, token_id, 0, 0),
    F_("ch", "chain_id", S_STR, chain_id, 0, 0),
    F_("ad", "address", S_STR, address, 0, 0),
    F_("am", "amount", S_STR, amount, 0, 0),
    F_("h", "tx_hash", S_STR, tx_hash, 0, 0),
    F_("lg", "login", S_U64, login, 0, 0),
    F_("cr", "credit_minor", S_MINOR, credit_minor, 0, 0),
    F_("dg", "digits", S_I32, digits, 0, 0),
    F_("rm", "remainder", S_STR, remainder, 0, 0),
    F_("rs", "reason", S_STR, reason, 0, 0),
    F_("rf", "ref", S_STR, ref, 0, 0),
    F_("at", "attempt", S_U32, attempt, 0, 0),
    F_("tk", "ticket", S_U64, ticket, 0, 0),
    F_("ac", "actor", S_STR, actor, 0, 0),
    F_("an", "action", S_STR, action, 0, 0),
    F2_("al", "alert", S_STR, alert, 0, 0, 2),
    F2_("tk2", "ticket2", S_U64, ticket2, 0, 0, 2),
    F2_("cy", "currency", S_STR, currency, 0, 0, 2),
    F2_("or", "origin", S_STR, origin, 0, 0, 3),
    F2_("nm", "admin", S_STR, admin, 0, 0, 3),
    F2_("ro", "role", S_STR, role, 0, 0, 3),
    F2_("pw", "pwhash", S_STR, pwhash, 0, 0, 3),
    F2_("ot", "totp", S_STR, totp, 0, 0, 3),
    F2_("fl", "flags", S_U32, flags, 0, 0, 3),
    F2_("ts", "totp_step", S_U64, totp_step, 0, 0, 3),
    F2_("wf", "wfrom", S_WSTATE, wfrom, K_WD, 0, 4),
    F2_("wt", "wto", S_WSTATE, wto, K_WD, 0, 4),
    F2_("we", "wevent", S_WEVENT, wevent, K_WD, 0, 4),
    F2_("rq", "request_id", S_STR, request_id, 0, 0, 4),
    F2_("fe", "fee", S_STR, fee, 0, 0, 4),
    F2_("ci", "cobo_id", S_STR, cobo_id, 0, 0, 4),
    F2_("ra", "rate", S_STR, rate, 0, 0, 4),
    F2_("rsc", "rate_source", S_STR, rate_source, 0, 0, 4),
    F2_("rat", "rate_time_ms", S_I64, rate_time_ms, 0, 0, 4),
    F2_("rqb", "requester", S_STR, requester, 0, 0, 6),
    F2_("ap", "approver", S_STR, approver, 0, 0, 6),
    F2_("ap2", "approver2", S_STR, approver2, 0, 0, 6),
};
#define S_NFIELDS (sizeof s_fields / sizeof s_fields[0])

#define RECORD_KINDS(X) X(DEPOSIT, 1) X(CREDIT_ATTEMPT, 1) X(ADDRESS_LINK, 1) X(ADMIN_ACTION, 1) X(NOTICE_FAILED, 1) \
    X(ALERT, 2) X(HISTORY_GAP, 2) X(ADMIN_ACCOUNT, 3) X(WITHDRAWAL, 4) X(WITHDRAWAL_ATTEMPT, 4) X(IGNORED, 5)
#define S_KIND_NAME_(name, since) [RECORD_##name] = #name,
static const char *const s_kind_names[] = { RECORD_KINDS(S_KIND_NAME_) };
#undef S_KIND_NAME_
#define S_KIND_SINCE_(name, since) [RECORD_##name] = since,
static const int s_kind_since[] = { RECORD_KINDS(S_KIND_SINCE_) };
#undef S_KIND_SINCE_
#define S_KIND_MAX RECORD_IGNORED

#define S_ALERT_NAME_(id, name) name,
static const char *const s_alert_names[RECORD_ALERT_COUNT] = { RECORD_ALERTS(S_ALERT_NAME_) };
#undef S_ALERT_NAME_

const char *record_alert_name(record_alert_t alert)
{
    return (unsigned) alert < RECORD_ALERT_COUNT ? s_alert_names[alert] : "?";
}

int record_alert_from_name(const char *name)
{
    for (int i = 0; name && i < RECORD_ALERT_COUNT; i++)
        if (strcmp(s_alert_names[i], name) == 0)
            return i;
    return -1;
}

static int s_kind_ok(int kind)
{
    return kind >= RECORD_DEPOSIT && kind <= S_KIND_MAX;
}

const char *record_kind_name(record_kind_t kind)
{
    return s_kind_ok((int) kind) ? s_kind_names[kind] : "?";
}

void record_redact(record_t *r)
{
    memset(r->pwhash, 0, sizeof r->pwhash);
    memset(r->totp, 0, sizeof r->totp);
}

const char *record_topic(const record_t *r)
{
    if (!r)
        return "?";
    if (r->kind == RECORD_DEPOSIT)
        return deposit_state_name(r->to);
    if (r->kind == RECORD_WITHDRAWAL)
        return "WITHDRAWAL";
    return record_kind_name(r->kind);
}

/* ---- field access through the table ---- */

static char *s_str(record_t *r, const s_field_t *f) { return (char *) r + f->off; }
static const char *s_cstr(const record_t *r, const s_field_t *f) { return (const char *) r + f->off; }

static int64_t s_get_i(const record_t *r, const s_field_t *f)
{
    const char *p = (const char *) r + f->off;
    switch (f->type) {
    case S_I64: case S_MINOR: { int64_t v; memcpy(&v, p, sizeof v); return v; }
    case S_I32: { int32_t v; memcpy(&v, p, sizeof v); return v; }
    case S_U32: { uint32_t v; memcpy(&v, p, sizeof v); return v; }
    case S_STATE: { deposit_state_t v; memcpy(&v, p, sizeof v); return (int64_t) v; }
    case S_EVENT: { deposit_event_t v; memcpy(&v, p, sizeof v); return (int64_t) v; }
    case S_WSTATE: { withdrawal_state_t v; memcpy(&v, p, sizeof v); return (int64_t) v; }
    case S_WEVENT: { withdrawal_event_t v; memcpy(&v, p, sizeof v); return (int64_t) v; }
    default: return 0;
    }
}

static uint64_t s_get_u64(const record_t *r, const s_field_t *f)
{
    uint64_t v;
    memcpy(&v, (const char *) r + f->off, sizeof v);
    return v;
}

static void s_set_i(record_t *r, const s_field_t *f, int64_t v)
{
    char *p = (char *) r + f->off;
    switch (f->type) {
    case S_I64: case S_MINOR: memcpy(p, &v, sizeof v); break;
    case S_I32: { int32_t x = (int32_t) v; memcpy(p, &x, sizeof x); break; }
    case S_U32: { uint32_t x = (uint32_t) v; memcpy(p, &x, sizeof x); break; }
    case S_STATE: { deposit_state_t x = (deposit_state_t) v; memcpy(p, &x, sizeof x); break; }
    case S_EVENT: { deposit_event_t x = (deposit_event_t) v; memcpy(p, &x, sizeof x); break; }
    case S_WSTATE: { withdrawal_state_t x = (withdrawal_state_t) v; memcpy(p, &x, sizeof x); break; }
    case S_WEVENT: { withdrawal_event_t x = (withdrawal_event_t) v; memcpy(p, &x, sizeof x); break; }
    default: break;
    }
}

static void s_set_u64(record_t *r, const s_field_t *f, uint64_t v)
{
    memcpy((char *) r + f->off, &v, sizeof v);
}

/* 1 if the field holds its empty value. */
static int s_is_empty(const record_t *r, const s_field_t *f)
{
    if (f->type == S_STR)
        return s_cstr(r, f)[0] == '\0';
    if (f->type == S_U64)
        return s_get_u64(r, f) == 0;
    return s_get_i(r, f) == f->empty;
}

void record_init(record_t *r, record_kind_t kind)
{
    memset(r, 0, sizeof *r);
    r->version = RECORD_VERSION;
    r->kind = kind;
    for (size_t i = 0; i < S_NFIELDS; i++)
        if (s_fields[i].type != S_STR && s_fields[i].type != S_U64)
            s_set_i(r, &s_fields[i], s_fields[i].empty);
}

/* ---- encode ---- */

static int s_writes(const record_t *r, const s_field_t *f)
{
    return (f->always & K_(r->kind)) || !s_is_empty(r, f);
}

/* Checks a field before it is written: fits, in range. */
static int s_check_out(const record_t *r, const s_field_t *f, char *err, size_t errlen)
{
    if (f->type == S_STR && strnlen(s_cstr(r, f), f->size) == f->size) {
        err_set(err, errlen, "field %s: longer than %zu bytes", f->name, f->size - 1);
        return -1;
    }
    int64_t v = s_get_i(r, f);
    if ((f->type == S_STATE && (v < 0 || v >= DEPOSIT_STATE_COUNT)) ||
        (f->type == S_EVENT && (v < 0 || v >= DEPOSIT_EVENT_COUNT)) ||
        (f->type == S_WSTATE && (v < 0 || v >= WITHDRAWAL_STATE_COUNT)) ||
        (f->type == S_WEVENT && (v < 0 || v >= WITHDRAWAL_EVENT_COUNT))) {
        err_set(err, errlen, "field %s: %lld out of range", f->name, (long long) v);
        return -1;
    }
    return 0;
}

/* The encoder writes into a fixed buffer on the stack, then copies out exactly what it used. */
typedef struct {
    uint8_t data[S_MAX_ENCODED];
    size_t len;
} s_out_t;

static int s_out_write(void *ctx, const char *buf, size_t len)
{
    s_out_t *o = ctx;
    if (len > sizeof o->data - o->len)
        return -1;
    memcpy(o->data + o->len, buf, len);
    o->len += len;
    return 0;
}

/* msgpack's pack calls return nonzero when the buffer cannot grow; the results are or-ed together. */
static int s_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

int record_encode(const record_t *r, uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
    if (!r || !out || !out_len) {
        err_set(err, errlen, "record: missing argument");
        return -1;
    }
    *out = NULL;
    *out_len = 0;
    if (!s_kind_ok((int) r->kind)) {
        err_set(err, errlen, "record: unknown kind %d", (int) r->kind);
        return -1;
    }
    if (r->version < 1 || r->version > RECORD_VERSION || s_kind_since[r->kind] > r->version) {
        err_set(err, errlen, "record: version %d unknown or older than its kind", r->version);
        return -1;
    }
    uint32_t count = 2;
    for (size_t i = 0; i < S_NFIELDS; i++) {
        if (s_check_out(r, &s_fields[i], err, errlen) != 0)
            return -1;
        if (s_fields[i].since > r->version && !s_is_empty(r, &s_fields[i])) {
            err_set(err, errlen, "field %s: not in record version %d", s_fields[i].name, r->version);
            return -1;
        }
        count += (uint32_t) s_writes(r, &s_fields[i]);
    }
    s_out_t o;
    o.len = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o, s_out_write);
    int bad = msgpack_pack_map(&pk, count);
    bad |= s_pack_str(&pk, "v") | msgpack_pack_uint32(&pk, (uint32_t) r->version);
    bad |= s_pack_str(&pk, "k") | msgpack_pack_uint32(&pk, (uint32_t) r->kind);
    for (size_t i = 0; i < S_NFIELDS; i++) {
        const s_field_t *f = &s_fields[i];
        if (!s_writes(r, f))
            continue;
        bad |= s_pack_str(&pk, f->key);
        if (f->type == S_STR)
            bad |= s_pack_str(&pk, s_cstr(r, f));
        else if (f->type == S_U64)
            bad |= msgpack_pack_uint64(&pk, s_get_u64(r, f));
        else
            bad |= msgpack_pack_int64(&pk, s_get_i(r, f));
    }
    if (bad) {
        err_set(err, errlen, "record: encoded form over %d bytes", S_MAX_ENCODED);
        return -1;
    }
    *out = malloc(o.len);
    if (!*out) {
        err_set(err, errlen, "record: out of memory");
        return -1;
    }
    memcpy(*out, o.data, o.len);
    *out_len = o.len;
    return 0;
}

/* ---- decode ---- */

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Size of the scalar at p (at most avail bytes), or 0 if truncated; -1 through *bad for a container
 * or a byte msgpack never uses. Checked before msgpack_unpack so that garbage announcing a huge
 * array cannot make the unpacker allocate for it. */
static size_t s_scalar_size(const uint8_t *p, size_t avail, const char **bad)
{
    uint8_t b = p[0];
    size_t hdr, body = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 1;
    if (b >= 0xa0 && b <= 0xbf) {
        hdr = 1;
        body = b & 0x1f;
    } else if ((b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf)) {
        *bad = "nested array or map";
        return 0;
    } else {
        switch (b) {
        case 0xcc: case 0xd0: return avail >= 2 ? 2 : 0;
        case 0xcd: case 0xd1: return avail >= 3 ? 3 : 0;
        case 0xca: case 0xce: case 0xd2: return avail >= 5 ? 5 : 0;
        case 0xcb: case 0xcf: case 0xd3: return avail >= 9 ? 9 : 0;
        case 0xd4: return avail >= 3 ? 3 : 0;
        case 0xd5: return avail >= 4 ? 4 : 0;
        case 0xd6: return avail >= 6 ? 6 : 0;
        case 0xd7: return avail >= 10 ? 10 : 0;
        case 0xd8: return avail >= 18 ? 18 : 0;
        case 0xc4: case 0xd9: hdr = 2; break;
        case 0xc5: case 0xda: hdr = 3; break;
        case 0xc6: case 0xdb: hdr = 5; break;
        case 0xc7: hdr = 3; break; /* ext8: len, type */
        case 0xc8: hdr = 4; break;
        case 0xc9: hdr = 6; break;
        default: *bad = "not msgpack"; return 0; /* 0xc1 */
        }
        if (avail < hdr)
            return 0;
        int lenbytes = (b == 0xc7) ? 1 : (b == 0xc8) ? 2 : (b == 0xc9) ? 4 : (int) hdr - 1;
        body = (size_t) s_be(p + 1, lenbytes);
    }
    if (avail < hdr || body > avail - hdr)
        return 0;
    return hdr + body;
}

/* The shape check: one flat map of at most S_MAX_FIELDS scalar pairs, exactly len bytes. */
static int s_prescan(const uint8_t *p, size_t len, char *err, size_t errlen)
{
    size_t off, count;
    uint8_t b = p[0];
    if (b >= 0x80 && b <= 0x8f) {
        off = 1;
        count = b & 0x0f;
    } else if (b == 0xde || b == 0xdf) {
        off = b == 0xde ? 3 : 5;
        if (len < off) {
            err_set(err, errlen, "record: truncated");
            return -1;
        }
        count = (size_t) s_be(p + 1, (int) off - 1);
    } else {
        err_set(err, errlen, "record: not a msgpack map");
        return -1;
    }
    if (count > S_MAX_FIELDS) {
        err_set(err, errlen, "record: %zu fields, more than %d", count, S_MAX_FIELDS);
        return -1;
    }
    for (size_t i = 0; i < 2 * count; i++) {
        const char *bad = NULL;
        if (off >= len) {
            err_set(err, errlen, "record: truncated");
            return -1;
        }
        size_t n = s_scalar_size(p + off, len - off, &bad);
        if (bad) {
            err_set(err, errlen, "record: %s", bad);
            return -1;
        }
        if (n == 0) {
            err_set(err, errlen, "record: truncated");
            return -1;
        }
        off += n;
    }
    if (off != len) {
        err_set(err, errlen, "record: %zu trailing bytes", len - off);
        return -1;
    }
    return 0;
}

static int s_key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

/* The integer in o if it lies in lo..hi; 0, or -1 for another type or out of range. */
static int s_int_in(const msgpack_object *o, int64_t lo, int64_t hi, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (hi < 0 || o->via.u64 > (uint64_t) hi)
            return -1;
        *out = (int64_t) o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 < lo)
            return -1;
        *out = o->via.i64;
        return 0;
    }
    return -1;
}

/* A printable, bounded rendering of a key from the wire, for error messages. */
static void s_key_text(const msgpack_object *k, char *buf, size_t len)
{
    size_t n = 0;
    if (k->type == MSGPACK_OBJECT_STR)
        for (uint32_t i = 0; i < k->via.str.size && n + 1 < len && i < 16; i++) {
            char c = k->via.str.ptr[i];
            buf[n++] = (c >= 0x21 && c <= 0x7e && c != '"') ? c : '?';
        }
    buf[n] = '\0';
}

static int s_read_field(record_t *r, const s_field_t *f, const msgpack_object *o, char *err, size_t errlen)
{
    int64_t v;
    switch (f->type) {
    case S_STR:
        if (o->type != MSGPACK_OBJECT_STR) {
            err_set(err, errlen, "field %s: not a string", f->name);
            return -1;
        }
        if (o->via.str.size >= f->size) {
            err_set(err, errlen, "field %s: longer than %zu bytes", f->name, f->size - 1);
            return -1;
        }
        if (memchr(o->via.str.ptr, '\0', o->via.str.size)) {
            err_set(err, errlen, "field %s: holds a NUL byte", f->name);
            return -1;
        }
        memcpy(s_str(r, f), o->via.str.ptr, o->via.str.size);
        s_str(r, f)[o->via.str.size] = '\0';
        return 0;
    case S_U64:
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            err_set(err, errlen, "field %s: not an unsigned integer", f->name);
            return -1;
        }
        s_set_u64(r, f, o->via.u64);
        return 0;
    case S_I64: case S_MINOR: v = 0;
        if (s_int_in(o, INT64_MIN, INT64_MAX, &v) != 0)
            break;
        s_set_i(r, f, v);
        return 0;
    case S_I32:
        if (s_int_in(o, INT32_MIN, INT32_MAX, &v) != 0)
            break;
        s_set_i(r, f, v);
        return 0;
    case S_U32:
        if (s_int_in(o, 0, UINT32_MAX, &v) != 0)
            break;
        s_set_i(r, f, v);
        return 0;
    case S_STATE:
        if (s_int_in(o, 0, DEPOSIT_STATE_COUNT - 1, &v) != 0)
            break;
        s_set_i(r, f, v);
        return 0;
    case S_EVENT:
        if (s_int_in(o, 0, DEPOSIT_EVENT_COUNT - 1, &v) != 0)
            break;
        s_set_i(r, f, v);
        return 0;
    case S_WSTATE:
        if (s_int_in(o, 0, WITHDRAWAL_STATE_COUNT - 1, &v) != 0)
            break;
        s_set_i(r, f, v);
        return 0;
    case S_WEVENT:
        if (s_int_in(o, 0, WITHDRAWAL_EVENT_COUNT - 1, &v) != 0)
            break;
        s_set_i(r, f, v);
        return 0;
    }
    err_set(err, errlen, "field %s: not an integer in range", f->name);
    return -1;
}

/* Finds v and k (in any position) and checks them before anything else is read. */
static int s_read_head(const msgpack_object_map *m, int *version, int *kind, char *err, size_t errlen)
{
    const msgpack_object *v = NULL, *k = NULL;
    for (uint32_t i = 0; i < m->size; i++) {
        if (s_key_is(&m->ptr[i].key, "v"))
            v = &m->ptr[i].val;
        else if (s_key_is(&m->ptr[i].key, "k"))
            k = &m->ptr[i].val;
    }
    if (!v) {
        err_set(err, errlen, "record: no version");
        return -1;
    }
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0) {
        err_set(err, errlen, "record: bad version");
        return -1;
    }
    if (v->via.u64 > RECORD_VERSION) {
        err_set(err, errlen, "record version %llu is newer than this kasa (%d)", (unsigned long long) v->via.u64,
              RECORD_VERSION);
        return -1;
    }
    if (!k) {
        err_set(err, errlen, "record: no kind");
        return -1;
    }
    if (k->type != MSGPACK_OBJECT_POSITIVE_INTEGER || k->via.u64 > S_KIND_MAX || !s_kind_ok((int) k->via.u64)
        || s_kind_since[k->via.u64] > (int) v->via.u64) {
        err_set(err, errlen, "record: unknown kind");
        return -1;
    }
    *version = (int) v->via.u64;
    *kind = (int) k->via.u64;
    return 0;
}

static int s_read_map(const msgpack_object_map *m, record_t *r, char *err, size_t errlen)
{
    int version, kind;
    if (s_read_head(m, &version, &kind, err, errlen) != 0)
        return -1;
    record_init(r, (record_kind_t) kind);
    r->version = version;
    uint64_t seen = 0; /* bit i: s_fields[i]; bits 62, 63: v, k */
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *key = &m->ptr[i].key;
        char shown[20];
        if (key->type != MSGPACK_OBJECT_STR) {
            err_set(err, errlen, "record: a key is not a string");
            return -1;
        }
        int bit = -1;
        const s_field_t *f = NULL;
        if (s_key_is(key, "v"))
            bit = 62;
        else if (s_key_is(key, "k"))
            bit = 63;
        else
            for (size_t j = 0; j < S_NFIELDS; j++)
                if (key->via.str.size == s_fields[j].keylen &&
                    memcmp(key->via.str.ptr, s_fields[j].key, s_fields[j].keylen) == 0) {
                    f = &s_fields[j];
                    bit = (int) j;
                    break;
                }
        s_key_text(key, shown, sizeof shown);
        if (f && f->since > version)
            bit = -1;   /* a field of a later version in an older record: a writer never does that */
        if (bit < 0) {
            err_set(err, errlen, "record: unknown field \"%s\"", shown);
            return -1;
        }
        if (seen & (1ULL << bit)) {
            err_set(err, errlen, "record: field \"%s\" twice", shown);
            return -1;
        }
        seen |= 1ULL << bit;
        if (!f)
            continue;
        if (s_read_field(r, f, &m->ptr[i].val, err, errlen) != 0)
            return -1;
    }
    for (size_t j = 0; j < S_NFIELDS; j++)
        if ((s_fields[j].always & K_(kind)) && !(seen & (1ULL << j))) {
            err_set(err, errlen, "record: missing field %s", s_fields[j].name);
            return -1;
        }
    return 0;
}

/* One unpacking zone per thread, kept between decodes and cleared after each (its first chunk
 * stays): every committed record is decoded on the journal's flusher, which allocated and freed a
 * 2 KiB chunk for each. Freed when its thread ends. */
static pthread_key_t s_zone_key;
static pthread_once_t s_zone_once = PTHREAD_ONCE_INIT;

static void s_zone_free(void *zone)
{
    msgpack_zone_free(zone);
}

static void s_zone_key_make(void)
{
    if (pthread_key_create(&s_zone_key, s_zone_free) != 0)
        abort();   /* only at the process's first decode, and only when the process has no keys left */
}

static msgpack_zone *s_zone(void)
{
    pthread_once(&s_zone_once, s_zone_key_make);
    msgpack_zone *zone = pthread_getspecific(s_zone_key);
    if (!zone) {
        zone = msgpack_zone_new(2048);
        if (zone && pthread_setspecific(s_zone_key, zone) != 0) {
            msgpack_zone_free(zone);
            zone = NULL;
        }
    }
    return zone;
}

int record_decode(const void *buf, size_t len, record_t *r, char *err, size_t errlen)
{
    if (!r) {
        err_set(err, errlen, "record: missing argument");
        return -1;
    }
    record_init(r, RECORD_DEPOSIT);
    if (!buf || len == 0) {
        err_set(err, errlen, "record: empty");
        return -1;
    }
    if (s_prescan(buf, len, err, errlen) != 0)
        return -1;
    msgpack_zone *zone = s_zone();
    if (!zone) {
        err_set(err, errlen, "record: out of memory");
        return -1;
    }
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack(buf, len, &off, zone, &obj);
    int rc = -1;
    if (ret == MSGPACK_UNPACK_CONTINUE)
        err_set(err, errlen, "record: truncated");
    else if (ret == MSGPACK_UNPACK_EXTRA_BYTES)
        err_set(err, errlen, "record: %zu trailing bytes", len - off);
    else if (ret != MSGPACK_UNPACK_SUCCESS)
        err_set(err, errlen, "record: not msgpack");
    else if (obj.type != MSGPACK_OBJECT_MAP)
        err_set(err, errlen, "record: not a msgpack map");
    else
        rc = s_read_map(&obj.via.map, r, err, errlen);
    msgpack_zone_clear(zone);   /* nothing decoded points into it: s_read_map copies */
    if (rc != 0)
        record_init(r, RECORD_DEPOSIT);
    return rc;
}

/* ---- renderings ---- */

static void s_iso_time(int64_t ms, char *buf, size_t len)
{
    int64_t sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        sec -= 1;
    }
    time_t t = (time_t) sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int) rem);
}

/* "250.00" for a credit_minor with valid digits; "" otherwise. */
static void s_credit_text(const record_t *r, char *buf, size_t len)
{
    if (money_format_minor(r->credit_minor, r->digits, buf, len) != 0)
        buf[0] = '\0';
}

/* An unsigned number as a JSON number while a JavaScript number holds it exactly (<= 2^53 - 1), and
 * as a decimal string above that, so no reader ever rounds a login, ticket or lsn. */
static void s_json_u64(jbuf_t *b, uint64_t v)
{
    if (v <= 9007199254740991ULL)
        jbuf_printf(b, "%llu", (unsigned long long) v);
    else
        jbuf_printf(b, "\"%llu\"", (unsigned long long) v);
}

/* 1 for a field that holds a secret (a password hash, a TOTP secret): rendered as "(set)", never shown. */
static int s_secret(const s_field_t *f)
{
    return f->off == offsetof(record_t, pwhash) || f->off == offsetof(record_t, totp);
}

/* JSON: lsn, v, kind, time (ISO UTC), then the fields that are set (and the ones the kind always
 * carries), by their JSON names. States and events by name, amounts as strings
 * (credit_minor too: it can exceed 2^53), login and ticket as numbers (see s_json_u64). */
void record_to_json(const record_t *r, uint64_t lsn, jbuf_t *b)
{
    char tbuf[48], credit[48];
    unsigned k = K_(s_kind_ok((int) r->kind) ? r->kind : 0);
    s_iso_time(r->time_ms, tbuf, sizeof tbuf);
    jbuf_puts(b, "{\"lsn\":");
    s_json_u64(b, lsn);
    jbuf_printf(b, ",\"v\":%d,\"kind\":", r->version);
    jbuf_str(b, record_kind_name(r->kind));
    jbuf_puts(b, ",\"time\":");
    jbuf_str(b, tbuf);
    for (size_t i = 0; i < S_NFIELDS; i++) {
        const s_field_t *f = &s_fields[i];
        if (!((f->always & k) || !s_is_empty(r, f)))
            continue;
        jbuf_printf(b, ",\"%s\":", f->name);
        switch (f->type) {
        case S_STR: jbuf_str(b, s_secret(f) ? "(set)" : s_cstr(r, f)); break;
        case S_U64: s_json_u64(b, s_get_u64(r, f)); break;
        case S_STATE: jbuf_str(b, deposit_state_name((deposit_state_t) s_get_i(r, f))); break;
        case S_EVENT: jbuf_str(b, deposit_event_name((deposit_event_t) s_get_i(r, f))); break;
        case S_WSTATE: jbuf_str(b, withdrawal_state_name((withdrawal_state_t) s_get_i(r, f))); break;
        case S_WEVENT: jbuf_str(b, withdrawal_event_name((withdrawal_event_t) s_get_i(r, f))); break;
        case S_MINOR: jbuf_printf(b, "\"%lld\"", (long long) s_get_i(r, f)); break;
        default: jbuf_printf(b, "%lld", (long long) s_get_i(r, f)); break;
        }
    }
    s_credit_text(r, credit, sizeof credit);
    if (r->credit_minor != 0 && credit[0]) {
        jbuf_puts(b, ",\"credit\":");
        jbuf_str(b, credit);
    }
    jbuf_puts(b, "}");
}

/* Appends value; one with a space, quote, backslash or control byte is quoted, with those bytes
 * escaped, so the line stays one line and splits cleanly on spaces. */
static void s_val(jbuf_t *b, const char *value)
{
    int quote = 0;
    for (const unsigned char *p = (const unsigned char *) value; *p; p++)
        if (*p <= 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
            quote = 1;
    if (!quote) {
        jbuf_puts(b, value);
        return;
    }
    jbuf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
        if (*p == '"' || *p == '\\')
            jbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            jbuf_printf(b, "\\x%02x", *p);
        else
            jbuf_add(b, (const char *) p, 1);
    }
    jbuf_puts(b, "\"");
}

/* Appends " label=value" when value is set. */
static void s_kv(jbuf_t *b, const char *label, const char *value)
{
    if (!value || !value[0])
        return;
    jbuf_printf(b, " %s=", label);
    s_val(b, value);
}

static void s_kv_num(jbuf_t *b, const char *label, long long v, long long empty)
{
    if (v != empty)
        jbuf_printf(b, " %s=%lld", label, v);
}

/* "lsn=42 LOCKED tx=... login=100001 amount=250 TRON_USDT credit=250.00 ..." — set fields only. */
void record_to_line(const record_t *r, uint64_t lsn, jbuf_t *b)
{
    char credit[48];
    jbuf_printf(b, "lsn=%llu %s", (unsigned long long) lsn, record_topic(r));
    s_kv(b, "tx", r->tx_id);
    if (r->kind == RECORD_DEPOSIT) {
        jbuf_printf(b, " ev=%s from=%s", deposit_event_name(r->event), deposit_state_name(r->from));
        s_kv(b, "status", r->status);
        if (r->confirmations >= 0 || r->threshold >= 0)
            jbuf_printf(b, " conf=%d/%d", (int) r->confirmations, (int) r->threshold);
    }
    if (r->kind == RECORD_WITHDRAWAL)
        jbuf_printf(b, " %s ev=%s from=%s", withdrawal_state_name(r->wto), withdrawal_event_name(r->wevent),
                    withdrawal_state_name(r->wfrom));
    if (r->login)
        jbuf_printf(b, " login=%llu", (unsigned long long) r->login);
    s_kv(b, "amount", r->amount);
    if (r->amount[0] && r->token_id[0]) {
        jbuf_puts(b, " ");
        s_val(b, r->token_id);
    } else {
        s_kv(b, "token", r->token_id);
    }
    s_credit_text(r, credit, sizeof credit);
    if (r->credit_minor != 0)
        s_kv(b, "credit", credit[0] ? credit : "?");
    s_kv(b, "currency", r->currency);
    s_kv(b, "remainder", r->remainder);
    s_kv(b, "rate", r->rate);
    s_kv(b, "rate_source", r->rate_source);
    if (r->rate_time_ms) {
        char t[48];
        s_iso_time(r->rate_time_ms, t, sizeof t);
        s_kv(b, "rate_time", t);
    }
    s_kv(b, "chain", r->chain_id);
    s_kv(b, "address", r->address);
    s_kv(b, "hash", r->tx_hash);
    s_kv(b, "ref", r->ref);
    s_kv(b, "fee", r->fee);
    s_kv(b, "request_id", r->request_id);
    s_kv(b, "cobo_id", r->cobo_id);
    s_kv_num(b, "attempt", (long long) r->attempt, 0);
    s_kv(b, "alert", r->alert);
    if (r->ticket)
        jbuf_printf(b, " ticket=%llu", (unsigned long long) r->ticket);
    if (r->ticket2)
        jbuf_printf(b, " ticket2=%llu", (unsigned long long) r->ticket2);
    s_kv(b, "actor", r->actor);
    s_kv(b, "action", r->action);
    s_kv(b, "origin", r->origin);
    s_kv(b, "admin", r->admin);
    s_kv(b, "role", r->role);
    if (r->pwhash[0])
        jbuf_puts(b, " pwhash=(set)");
    if (r->totp[0])
        jbuf_puts(b, " totp=(set)");
    if (r->flags)
        jbuf_printf(b, " flags=%u", (unsigned) r->flags);
    if (r->totp_step)
        jbuf_printf(b, " totp_step=%llu", (unsigned long long) r->totp_step);
    s_kv(b, "reason", r->reason);
}
