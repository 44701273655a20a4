/* test_record.c — the journal record codec: round trips of every kind, strict refusal of bad input
 * (garbage, truncation, newer versions, wrong types) without crashing, and the JSON and line forms. */
#include "schema/record.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"

/* Fills a string field with n bytes of c (n < size). */
#define FILL(field, c, n) do { memset((field), (c), (n)); (field)[(n)] = '\0'; } while (0)
#define FILL_MAX(field, c) FILL(field, c, sizeof(field) - 1)

/* A record of the kind with every field that kind uses set (strings at their longest). */
static void s_full(record_t *r, record_kind_t kind)
{
    record_init(r, kind);
    r->time_ms = 1795678598123LL;
    switch (kind) {
    case RECORD_DEPOSIT:
        FILL_MAX(r->tx_id, 'a');
        r->from = DEPOSIT_RECEIVED;
        r->to = DEPOSIT_LOCKED;
        r->event = DEPOSIT_EV_CONFIRMED;
        FILL_MAX(r->status, 's');
        r->confirmations = 20;
        r->threshold = 19;
        FILL_MAX(r->token_id, 't');
        FILL_MAX(r->chain_id, 'c');
        FILL_MAX(r->address, 'd');
        FILL_MAX(r->amount, '9');
        FILL_MAX(r->tx_hash, 'h');
        r->login = UINT64_MAX;
        r->credit_minor = INT64_MIN;
        r->digits = 8;
        FILL_MAX(r->remainder, '7');
        FILL_MAX(r->reason, 'r');
        FILL_MAX(r->ref, 'f');
        r->attempt = UINT32_MAX;
        r->ticket = UINT64_MAX - 1;
        FILL_MAX(r->actor, 'o');
        break;
    case RECORD_CREDIT_ATTEMPT:
        FILL_MAX(r->tx_id, 'b');
        FILL_MAX(r->token_id, 't');
        FILL_MAX(r->chain_id, 'c');
        FILL_MAX(r->amount, '1');
        r->login = 100001;
        r->credit_minor = INT64_MAX;
        r->digits = -5;
        FILL_MAX(r->remainder, '3');
        FILL_MAX(r->reason, 'r');
        FILL_MAX(r->ref, 'k');
        r->attempt = 3;
        break;
    case RECORD_ADDRESS_LINK:
        FILL_MAX(r->token_id, 't');
        FILL_MAX(r->chain_id, 'c');
        FILL_MAX(r->address, 'T');
        r->login = 42;
        FILL_MAX(r->reason, 'r');
        FILL_MAX(r->actor, 'a');
        break;
    case RECORD_ADMIN_ACTION:
        FILL_MAX(r->tx_id, 'x');
        FILL_MAX(r->token_id, 't');
        FILL_MAX(r->chain_id, 'c');
        FILL_MAX(r->address, 'd');
        FILL_MAX(r->amount, '2');
        r->login = 7;
        r->credit_minor = -1;
        r->digits = 2;
        FILL_MAX(r->reason, 'r');
        FILL_MAX(r->ref, 'f');
        r->ticket = 99;
        FILL_MAX(r->actor, 'a');
        FILL_MAX(r->action, 'n');
        FILL_MAX(r->origin, 'o');
        break;
    case RECORD_ADMIN_ACCOUNT:
        FILL_MAX(r->actor, 'a');
        FILL_MAX(r->action, 'n');
        FILL_MAX(r->origin, 'o');
        FILL_MAX(r->admin, 'm');
        FILL_MAX(r->role, 'r');
        FILL_MAX(r->pwhash, 'p');
        FILL_MAX(r->totp, 's');
        r->flags = 3;
        r->totp_step = UINT64_MAX - 2;
        FILL_MAX(r->reason, 'r');
        break;
    case RECORD_NOTICE_FAILED:
        FILL_MAX(r->tx_id, 'y');
        r->login = 5;
        FILL_MAX(r->reason, 'r');
        FILL_MAX(r->ref, 'f');
        r->attempt = 10;
        break;
    case RECORD_ALERT:
        FILL_MAX(r->tx_id, 'z');
        FILL_MAX(r->alert, 'l');
        r->login = 6;
        r->ticket = 200001;
        r->ticket2 = 200002;
        r->credit_minor = 24950;
        r->digits = 2;
        FILL_MAX(r->reason, 'r');
        break;
    case RECORD_HISTORY_GAP:
        FILL_MAX(r->tx_id, 'g');
        FILL_MAX(r->reason, 'r');
        FILL_MAX(r->ref, 'f');
        break;
    case RECORD_WITHDRAWAL:
        FILL_MAX(r->tx_id, 'w');
        r->wfrom = WITHDRAWAL_SENT;
        r->wto = WITHDRAWAL_COMPLETED;
        r->wevent = WITHDRAWAL_EV_TRANSFER_DONE;
        FILL_MAX(r->status, 's');
        FILL_MAX(r->token_id, 't');
        FILL_MAX(r->chain_id, 'c');
        FILL_MAX(r->address, 'd');
        FILL_MAX(r->amount, '9');
        FILL_MAX(r->tx_hash, 'h');
        r->login = UINT64_MAX;
        r->credit_minor = INT64_MAX;
        r->digits = 2;
        FILL_MAX(r->currency, 'U');
        FILL_MAX(r->reason, 'r');
        r->ticket = 77;
        FILL_MAX(r->actor, 'a');
        FILL_MAX(r->origin, 'o');
        FILL_MAX(r->request_id, 'q');
        FILL_MAX(r->fee, '1');
        FILL_MAX(r->cobo_id, 'i');
        FILL_MAX(r->requester, 'q');
        FILL_MAX(r->approver, 'p');
        FILL_MAX(r->approver2, 'P');
        break;
    case RECORD_WITHDRAWAL_ATTEMPT:
        FILL_MAX(r->tx_id, 'v');
        FILL_MAX(r->action, 'n');
        r->login = 100002;
        r->credit_minor = -12345;
        r->digits = 2;
        FILL_MAX(r->ref, 'f');
        FILL_MAX(r->request_id, 'q');
        FILL_MAX(r->reason, 'r');
        r->attempt = 4;
        break;
    case RECORD_IGNORED:
        FILL_MAX(r->tx_id, 'i');
        FILL_MAX(r->address, 'A');
        FILL_MAX(r->amount, '9');
        FILL_MAX(r->token_id, 'T');
        FILL_MAX(r->status, 's');
        FILL_MAX(r->reason, 'r');
        break;
    }
}

static const record_kind_t s_kinds[] = { RECORD_DEPOSIT, RECORD_CREDIT_ATTEMPT, RECORD_ADDRESS_LINK,
                                         RECORD_ADMIN_ACTION, RECORD_NOTICE_FAILED, RECORD_ALERT,
                                         RECORD_HISTORY_GAP, RECORD_ADMIN_ACCOUNT, RECORD_WITHDRAWAL,
                                         RECORD_WITHDRAWAL_ATTEMPT, RECORD_IGNORED };
#define S_NKINDS 11

static int s_round_trip(const record_t *in, record_t *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[160] = "";
    if (record_encode(in, &buf, &len, err, sizeof err) != 0) {
        fprintf(stderr, "  encode: %s\n", err);
        return -1;
    }
    int rc = record_decode(buf, len, out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "  decode: %s\n", err);
    free(buf);
    return rc;
}

static void test_every_kind_round_trips_with_every_field_set(void)
{
    for (int i = 0; i < S_NKINDS; i++) {
        record_t in, out;
        s_full(&in, s_kinds[i]);
        CHECK_EQ_INT(s_round_trip(&in, &out), 0);
        CHECK(memcmp(&in, &out, sizeof in) == 0);
        CHECK_EQ_INT(out.kind, s_kinds[i]);
        CHECK_EQ_INT(out.version, RECORD_VERSION);
        /* and every field at once, on every kind */
        s_full(&in, RECORD_DEPOSIT);
        in.kind = s_kinds[i];
        FILL_MAX(in.action, 'n');
        FILL_MAX(in.alert, 'l');
        in.ticket2 = 7;
        CHECK_EQ_INT(s_round_trip(&in, &out), 0);
        CHECK(memcmp(&in, &out, sizeof in) == 0);
    }
}

static void test_empty_record_round_trips_and_keeps_defaults(void)
{
    record_t in, out;
    record_init(&in, RECORD_DEPOSIT);
    CHECK_EQ_INT(in.confirmations, -1);
    CHECK_EQ_INT(in.threshold, -1);
    CHECK_EQ_INT(in.version, RECORD_VERSION);
    CHECK_EQ_INT(s_round_trip(&in, &out), 0);
    CHECK(memcmp(&in, &out, sizeof in) == 0);
    /* a confirmation update: from == to == PENDING, confirmations 0 (not the empty -1) */
    in.from = in.to = DEPOSIT_PENDING;
    in.event = DEPOSIT_EV_SEEN_PENDING;
    in.confirmations = 0;
    in.threshold = 20;
    CHECK_EQ_INT(s_round_trip(&in, &out), 0);
    CHECK_EQ_INT(out.confirmations, 0);
    CHECK_EQ_INT(out.threshold, 20);
    CHECK_EQ_INT(out.from, DEPOSIT_PENDING);
}

static void test_encoding_is_a_map_with_v_and_k_first_and_only_set_fields(void)
{
    record_t r;
    record_init(&r, RECORD_NOTICE_FAILED);
    strcpy(r.tx_id, "T1");
    r.time_ms = 5;
    uint8_t *buf;
    size_t len;
    CHECK_EQ_INT(record_encode(&r, &buf, &len, NULL, 0), 0);
    /* {"v":6,"k":5,"t":5,"tx":"T1"} */
    static const uint8_t want[] = { 0x84, 0xa1, 'v', 0x06, 0xa1, 'k', 0x05, 0xa1, 't', 0x05,
                                    0xa2, 't', 'x', 0xa2, 'T', '1' };
    CHECK_EQ_INT(len, sizeof want);
    CHECK(len == sizeof want && memcmp(buf, want, len) == 0);
    free(buf);
}

static void test_encode_refuses_overlong_strings_and_bad_states(void)
{
    record_t r;
    uint8_t *buf = (uint8_t *) "x";
    size_t len = 9;
    char err[160];
    record_init(&r, RECORD_DEPOSIT);
    memset(r.ref, 'z', sizeof r.ref); /* no terminator inside the field */
    CHECK_EQ_INT(record_encode(&r, &buf, &len, err, sizeof err), -1);
    CHECK(strstr(err, "ref") != NULL);
    CHECK(buf == NULL);
    CHECK_EQ_INT(len, 0);

    record_init(&r, RECORD_DEPOSIT);
    r.to = DEPOSIT_STATE_COUNT;
    CHECK_EQ_INT(record_encode(&r, &buf, &len, err, sizeof err), -1);
    record_init(&r, RECORD_DEPOSIT);
    r.event = (deposit_event_t) -1;
    CHECK_EQ_INT(record_encode(&r, &buf, &len, err, sizeof err), -1);
    record_init(&r, (record_kind_t) 12);
    CHECK_EQ_INT(record_encode(&r, &buf, &len, err, sizeof err), -1);
    record_init(&r, (record_kind_t) 0);
    CHECK_EQ_INT(record_encode(&r, &buf, &len, err, sizeof err), -1);
}

static void test_a_set_field_is_kept_whatever_the_kind(void)
{
    record_t in, out;
    record_init(&in, RECORD_ADDRESS_LINK);
    in.time_ms = 1;
    strcpy(in.address, "TXYZ");
    strcpy(in.action, "link");
    strcpy(in.actor, "admin:alice");
    in.login = 100001;
    CHECK_EQ_INT(s_round_trip(&in, &out), 0);
    CHECK_EQ_STR(out.action, "link");
    CHECK(memcmp(&in, &out, sizeof in) == 0);
    record_init(&in, RECORD_NOTICE_FAILED);
    in.ticket = 5;
    in.to = DEPOSIT_CREDITED;
    CHECK_EQ_INT(s_round_trip(&in, &out), 0);
    CHECK_EQ_INT(out.ticket, 5);
    CHECK_EQ_INT(out.to, DEPOSIT_CREDITED);
}

/* ---- hand-made msgpack ---- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} s_mp_t;

static void s_mp_init(s_mp_t *m, uint32_t pairs)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&m->pk, pairs);
}
static void s_key(s_mp_t *m, const char *k)
{
    msgpack_pack_str(&m->pk, strlen(k));
    msgpack_pack_str_body(&m->pk, k, strlen(k));
}
static void s_kint(s_mp_t *m, const char *k, int64_t v) { s_key(m, k); msgpack_pack_int64(&m->pk, v); }
static void s_kstr(s_mp_t *m, const char *k, const char *v) { s_key(m, k); s_key(m, v); }

/* Decodes the built buffer; returns the result and leaves the reason in err. */
static int s_mp_decode(s_mp_t *m, record_t *r, char *err, size_t errlen)
{
    err[0] = '\0';
    int rc = record_decode(m->sb.data, m->sb.size, r, err, errlen);
    msgpack_sbuffer_destroy(&m->sb);
    return rc;
}

static void test_decode_accepts_a_hand_made_record(void)
{
    s_mp_t m;
    record_t r;
    char err[160];
    s_mp_init(&m, 7);
    s_kint(&m, "k", 1); /* v and k may come in any order */
    s_kint(&m, "v", 1);
    s_kint(&m, "t", 10);
    s_kint(&m, "f", DEPOSIT_LOCKED);
    s_kint(&m, "to", DEPOSIT_CREDITED);
    s_kint(&m, "e", DEPOSIT_EV_CREDIT_OK);
    s_kint(&m, "tk", 136623);
    CHECK_EQ_INT(s_mp_decode(&m, &r, err, sizeof err), 0);
    CHECK_EQ_INT(r.to, DEPOSIT_CREDITED);
    CHECK_EQ_INT(r.ticket, 136623);
    CHECK_EQ_STR(record_topic(&r), "CREDITED");
}

static void test_decode_refuses_newer_version_with_its_number(void)
{
    s_mp_t m;
    record_t r;
    char err[160];
    s_mp_init(&m, 3);
    s_kint(&m, "v", RECORD_VERSION + 1);
    s_kint(&m, "k", 77); /* an unknown kind too: the version is reported first */
    s_kint(&m, "zz", 1);
    CHECK_EQ_INT(s_mp_decode(&m, &r, err, sizeof err), -1);
    char want[80];
    snprintf(want, sizeof want, "record version %d is newer than this kasa (%d)", RECORD_VERSION + 1, RECORD_VERSION);
    CHECK_EQ_STR(err, want);
}

static void test_a_version_1_record_never_carries_a_version_2_kind_or_field(void)
{
    s_mp_t m;
    record_t r;
    char err[160];
    s_mp_init(&m, 4);
    s_kint(&m, "v", 1);
    s_kint(&m, "k", RECORD_ALERT);
    s_kint(&m, "t", 5);
    s_kstr(&m, "tx", "T1");
    CHECK_EQ_INT(s_mp_decode(&m, &r, err, sizeof err), -1);
    CHECK_EQ_STR(err, "record: unknown kind");
    s_mp_init(&m, 4);
    s_kint(&m, "v", 1);
    s_kint(&m, "k", RECORD_NOTICE_FAILED);
    s_kint(&m, "t", 5);
    s_kstr(&m, "al", "double_credit");
    CHECK_EQ_INT(s_mp_decode(&m, &r, err, sizeof err), -1);
    CHECK_EQ_STR(err, "record: unknown field \"al\"");
    s_mp_init(&m, 5);   /* the same as version 2: read */
    s_kint(&m, "v", 2);
    s_kint(&m, "k", RECORD_ALERT);
    s_kint(&m, "t", 5);
    s_kstr(&m, "al", "double_credit");
    s_kint(&m, "tk2", 200002);
    CHECK_EQ_INT(s_mp_decode(&m, &r, err, sizeof err), 0);
    CHECK_EQ_STR(r.alert, "double_credit");
    CHECK_EQ_INT(r.ticket2, 200002);
    CHECK_EQ_STR(record_topic(&r), "ALERT");
}

static void test_alert_names_round_trip(void)
{
    for (int i = 0; i < RECORD_ALERT_COUNT; i++)
        CHECK_EQ_INT(record_alert_from_name(record_alert_name((record_alert_t) i)), i);
    CHECK_EQ_STR(record_alert_name(RECORD_ALERT_DOUBLE_CREDIT), "double_credit");
    CHECK_EQ_INT(record_alert_from_name("nonsense"), -1);
    CHECK_EQ_STR(record_alert_name(RECORD_ALERT_COUNT), "?");
}

static void test_version_2_records_may_not_carry_version_3_fields(void)
{
    s_mp_t m;
    record_t r;
    char err[160];
    s_mp_init(&m, 5);
    s_kint(&m, "v", 2);
    s_kint(&m, "k", RECORD_ADMIN_ACTION);
    s_kint(&m, "t", 10);
    s_kstr(&m, "tx", "T1");
    s_kstr(&m, "an", "retry");
    CHECK_EQ_INT(s_mp_decode(&m, &r, err, sizeof err), 0);
    CHECK_EQ_INT(r.version, 2);
    CHECK_EQ_STR(r.origin, "");
    s_mp_init(&m, 4);
    s_kint(&m, "v", 2);
    s_kint(&m, "k", RECORD_ADMIN_ACTION);
    s_kint(&m, "t", 10);
    s_kstr(&m, "or", "cli:host");
    CHECK_EQ_INT(s_mp_decode(&m, &r, err, sizeof err), -1);
    CHECK(strstr(err, "unknown field \"or\"") != NULL);
    /* a version 2 record encodes as version 2, and refuses a version 3 field rather than lose it */
    record_init(&r, RECORD_ADMIN_ACTION);
    r.version = 2;
    r.time_ms = 3;
    record_t back;
    CHECK_EQ_INT(s_round_trip(&r, &back), 0);
    CHECK_EQ_INT(back.version, 2);
    strcpy(r.origin, "cli:host");
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(record_encode(&r, &buf, &len, err, sizeof err), -1);
    CHECK(strstr(err, "origin") != NULL);
}

static void test_version_3_records_carry_no_withdrawal_kind_or_field(void)
{
    record_t r, back;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[160];
    s_full(&r, RECORD_WITHDRAWAL);
    r.version = 3;
    CHECK(record_encode(&r, &buf, &len, err, sizeof err) == -1);
    record_init(&r, RECORD_ADMIN_ACTION);
    r.version = 3;
    snprintf(r.request_id, sizeof r.request_id, "kasa-w1-1");
    CHECK(record_encode(&r, &buf, &len, err, sizeof err) == -1);
    CHECK(strstr(err, "request_id") != NULL);
    r.request_id[0] = '\0';
    CHECK(record_encode(&r, &buf, &len, err, sizeof err) == 0);
    CHECK(record_decode(buf, len, &back, err, sizeof err) == 0);
    CHECK_EQ_INT(back.version, 3);
    free(buf);
    /* a withdrawal record names its states by name in JSON and on its line */
    s_full(&r, RECORD_WITHDRAWAL);
    jbuf_t j;
    jbuf_init(&j);
    record_to_line(&r, 9, &j);
    CHECK(strstr(j.data, " COMPLETED ev=TRANSFER_DONE from=SENT") != NULL);
    jbuf_free(&j);
    jbuf_init(&j);
    record_to_json(&r, 9, &j);
    CHECK(strstr(j.data, "\"wto\":\"COMPLETED\"") != NULL);
    jbuf_free(&j);
}

static void test_secrets_never_appear_in_json_or_lines(void)
{
    record_t r;
    record_init(&r, RECORD_ADMIN_ACCOUNT);
    r.time_ms = 1;
    strcpy(r.admin, "alice");
    strcpy(r.role, "owner");
    strcpy(r.pwhash, "$argon2id$v=19$m=65536,t=2,p=1$SECRETSALT$SECRETHASH");
    strcpy(r.totp, "JBSWY3DPEHPK3PXP");
    jbuf_t b;
    jbuf_init(&b);
    record_to_json(&r, 1, &b);
    record_to_line(&r, 1, &b);
    jbuf_puts(&b, "");
    CHECK(strstr(b.data, "SECRET") == NULL);
    CHECK(strstr(b.data, "JBSWY3DP") == NULL);
    CHECK(strstr(b.data, "\"pwhash\":\"(set)\"") != NULL);
    CHECK(strstr(b.data, "totp=(set)") != NULL);
    CHECK(strstr(b.data, "alice") != NULL);
    jbuf_free(&b);
}

/* Each case: the pairs to write; the decode must fail and mention `want` in its reason. */
static void test_decode_refuses_bad_records_with_a_reason(void)
{
    struct { const char *name, *want; } cases[] = {
        { "missing v", "no version" },      { "missing k", "no kind" },
        { "v zero", "bad version" },        { "v string", "bad version" },
        { "unknown kind", "unknown kind" }, { "kind zero", "unknown kind" },
        { "login string", "login" },        { "tx int", "tx_id" },
        { "from 99", "from" },              { "event -1", "event" },
        { "conf 2^40", "confirmations" },   { "attempt -1", "attempt" },
        { "tx too long", "tx_id" },         { "unknown key", "unknown field" },
        { "dup key", "twice" },
        { "missing to", "missing field to" },{ "missing t", "missing field time_ms" },
        { "nul in string", "NUL" },         { "key not str", "not a string" },
        { "ticket negative", "ticket" },    { "bool value", "time_ms" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_mp_t m;
        record_t r;
        char err[160];
        const char *n = cases[i].name;
        /* a valid deposit base, then the fault */
        int dep = 1;
        s_mp_init(&m, 6);
        if (strcmp(n, "missing v") == 0) s_kint(&m, "x", 1); else if (strcmp(n, "v zero") == 0) s_kint(&m, "v", 0);
        else if (strcmp(n, "v string") == 0) s_kstr(&m, "v", "1"); else s_kint(&m, "v", 1);
        if (strcmp(n, "missing k") == 0) s_kint(&m, "y", 1); else if (strcmp(n, "unknown kind") == 0) s_kint(&m, "k", 99);
        else if (strcmp(n, "kind zero") == 0) s_kint(&m, "k", 0); else s_kint(&m, "k", dep);
        if (strcmp(n, "missing t") == 0) s_kint(&m, "lg", 1);
        else if (strcmp(n, "bool value") == 0) { s_key(&m, "t"); msgpack_pack_true(&m.pk); }
        else s_kint(&m, "t", 1);
        if (strcmp(n, "from 99") == 0) s_kint(&m, "f", 99); else s_kint(&m, "f", 1);
        if (strcmp(n, "missing to") == 0) s_kint(&m, "cf", 3); else s_kint(&m, "to", 2);
        if (strcmp(n, "event -1") == 0) s_kint(&m, "e", -1);
        else if (strcmp(n, "login string") == 0) s_kstr(&m, "lg", "100001");
        else if (strcmp(n, "tx int") == 0) s_kint(&m, "tx", 5);
        else if (strcmp(n, "conf 2^40") == 0) s_kint(&m, "cf", 1LL << 40);
        else if (strcmp(n, "attempt -1") == 0) s_kint(&m, "at", -1);
        else if (strcmp(n, "tx too long") == 0) {
            char big[81];
            memset(big, 'q', 80);
            big[80] = '\0';
            s_kstr(&m, "tx", big);
        } else if (strcmp(n, "unknown key") == 0) s_kint(&m, "zz", 1);
        else if (strcmp(n, "dup key") == 0) s_kint(&m, "f", 1);
        else if (strcmp(n, "nul in string") == 0) { s_key(&m, "st"); msgpack_pack_str(&m.pk, 3); msgpack_pack_str_body(&m.pk, "a\0b", 3); }
        else if (strcmp(n, "key not str") == 0) { msgpack_pack_int(&m.pk, 1); msgpack_pack_int(&m.pk, 1); }
        else if (strcmp(n, "ticket negative") == 0) s_kint(&m, "tk", -5);
        else s_kint(&m, "e", 3);
        if (s_mp_decode(&m, &r, err, sizeof err) != -1 || !strstr(err, cases[i].want)) {
            fprintf(stderr, "  case \"%s\": reason \"%s\", want \"%s\"\n", n, err, cases[i].want);
            CHECK(0);
        }
    }
}

static void test_decode_refuses_shapes_that_are_not_a_flat_map(void)
{
    record_t r;
    char err[160];
    static const uint8_t array[] = { 0x92, 0x01, 0x02 };
    CHECK_EQ_INT(record_decode(array, sizeof array, &r, err, sizeof err), -1);
    CHECK(strstr(err, "not a msgpack map") != NULL);
    static const uint8_t nested[] = { 0x83, 0xa1, 'v', 0x01, 0xa1, 'k', 0x01, 0xa1, 't', 0x81, 0xa1, 'a', 0x01 };
    CHECK_EQ_INT(record_decode(nested, sizeof nested, &r, err, sizeof err), -1);
    CHECK(strstr(err, "nested") != NULL);
    /* a map announcing 4 billion entries, and a value announcing a 4-billion-element array: refused at
     * once, nothing is allocated for them */
    static const uint8_t huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v' };
    CHECK_EQ_INT(record_decode(huge_map, sizeof huge_map, &r, err, sizeof err), -1);
    static const uint8_t huge_arr[] = { 0x81, 0xa1, 'v', 0xdd, 0xff, 0xff, 0xff, 0xff };
    CHECK_EQ_INT(record_decode(huge_arr, sizeof huge_arr, &r, err, sizeof err), -1);
    static const uint8_t huge_str[] = { 0x81, 0xa1, 'v', 0xdb, 0xff, 0xff, 0xff, 0xff, 'a' };
    CHECK_EQ_INT(record_decode(huge_str, sizeof huge_str, &r, err, sizeof err), -1);
    CHECK(strstr(err, "truncated") != NULL);
    static const uint8_t never[] = { 0x81, 0xc1, 0x01 };
    CHECK_EQ_INT(record_decode(never, sizeof never, &r, err, sizeof err), -1);
    CHECK_EQ_INT(record_decode("", 0, &r, err, sizeof err), -1);
    CHECK_EQ_INT(record_decode(NULL, 5, &r, err, sizeof err), -1);
}

static void test_decode_refuses_every_truncation_and_trailing_bytes(void)
{
    for (int i = 0; i < S_NKINDS; i++) {
        record_t in, out;
        uint8_t *buf;
        size_t len;
        s_full(&in, s_kinds[i]);
        CHECK_EQ_INT(record_encode(&in, &buf, &len, NULL, 0), 0);
        for (size_t cut = 0; cut < len; cut++) {
            char err[160] = "";
            uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any over-read */
            memcpy(copy, buf, cut);
            CHECK_EQ_INT(record_decode(copy, cut, &out, err, sizeof err), -1);
            CHECK(err[0] != '\0');
            free(copy);
        }
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0xc0;
        char err[160];
        CHECK_EQ_INT(record_decode(longer, len + 1, &out, err, sizeof err), -1);
        CHECK(strstr(err, "trailing") != NULL);
        CHECK_EQ_INT(record_decode(longer, len, &out, err, sizeof err), 0);
        free(longer);
        free(buf);
    }
}

static uint64_t s_rng = 88172645463325252ULL;
static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

/* Decoding never crashes; whatever it accepts re-encodes and decodes to the same record. */
static int s_decode_is_stable(const uint8_t *p, size_t n, int *accepted)
{
    record_t r, again;
    char err[160];
    if (record_decode(p, n, &r, err, sizeof err) != 0)
        return err[0] ? 0 : -1; /* a refusal always has a reason */
    (*accepted)++;
    uint8_t *buf;
    size_t len;
    if (record_encode(&r, &buf, &len, err, sizeof err) != 0)
        return -1;
    int rc = record_decode(buf, len, &again, err, sizeof err);
    free(buf);
    if (rc == 0 && again.version == RECORD_VERSION)
        again.version = r.version;   /* an older record is rewritten at the current version */
    return rc == 0 && memcmp(&r, &again, sizeof r) == 0 ? 0 : -1;
}

static void test_random_mutations_and_garbage_never_crash(void)
{
    uint8_t *valid[S_NKINDS];
    size_t vlen[S_NKINDS];
    for (int i = 0; i < S_NKINDS; i++) {
        record_t in;
        s_full(&in, s_kinds[i]);
        if (i == 1) { /* a smaller one too, so mutations hit small strings and fixints */
            record_init(&in, RECORD_CREDIT_ATTEMPT);
            strcpy(in.tx_id, "t");
            in.login = 3;
        }
        CHECK_EQ_INT(record_encode(&in, &valid[i], &vlen[i], NULL, 0), 0);
    }
    int accepted = 0, bad = 0;
    const int rounds = 300000;
    uint8_t work[2048];   /* S_MAX_ENCODED: a record at its longest */
    for (int k = 0; k < rounds; k++) {
        int which = (int) (s_next() % S_NKINDS);
        size_t n = vlen[which];
        memcpy(work, valid[which], n);
        unsigned mode = (unsigned) (s_next() % 4);
        if (mode == 3) { /* pure garbage */
            n = (size_t) (s_next() % 64);
            for (size_t j = 0; j < n; j++)
                work[j] = (uint8_t) s_next();
        } else {
            int flips = 1 + (int) (s_next() % 4);
            for (int f = 0; f < flips; f++) {
                size_t at = (size_t) (s_next() % n);
                if (mode == 0)
                    work[at] = (uint8_t) s_next();
                else if (mode == 1)
                    work[at] ^= (uint8_t) (1u << (s_next() % 8));
                else
                    work[at] = (uint8_t[]){ 0x00, 0x7f, 0x80, 0x8f, 0xc0, 0xc1, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde,
                                            0xdf, 0xff, 0xe0, 0xa0 }[s_next() % 16];
            }
            if (s_next() % 4 == 0)
                n = (size_t) (s_next() % (n + 1));
        }
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, work, n);
        if (s_decode_is_stable(exact, n, &accepted) != 0)
            bad++;
        free(exact);
    }
    printf("  %d mutations, %d decoded cleanly, %d unstable\n", rounds, accepted, bad);
    CHECK_EQ_INT(bad, 0);
    CHECK(accepted > 100); /* the mutator also makes valid records, so the accept path is exercised */
    for (int i = 0; i < S_NKINDS; i++)
        free(valid[i]);
}

static void test_json_is_valid_and_escapes_quotes_and_control_chars(void)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = 1795678598123LL;
    strcpy(r.tx_id, "9f\"e\\8\n\t\x01<b>&");
    r.from = DEPOSIT_RECEIVED;
    r.to = DEPOSIT_LOCKED;
    r.event = DEPOSIT_EV_CONFIRMED;
    strcpy(r.amount, "250");
    strcpy(r.token_id, "TRON_USDT");
    r.login = 100001;
    r.credit_minor = 25000;
    r.digits = 2;
    strcpy(r.remainder, "0.004");
    r.confirmations = 20;
    jbuf_t b;
    jbuf_init(&b);
    record_to_json(&r, 42, &b);
    CHECK(strchr(b.data, '\n') == NULL);
    CHECK(strstr(b.data, "<b>") == NULL);
    bson_t doc;
    char err[128];
    CHECK_EQ_INT(json_parse(b.data, b.len, &doc, err, sizeof err), 0);
    int64_t v = 0;
    CHECK_EQ_INT(json_get_i64(&doc, "lsn", &v), 0);
    CHECK_EQ_INT(v, 42);
    CHECK_EQ_STR(json_get_str(&doc, "kind"), "DEPOSIT");
    CHECK_EQ_STR(json_get_str(&doc, "tx_id"), r.tx_id);
    CHECK_EQ_STR(json_get_str(&doc, "from"), "RECEIVED");
    CHECK_EQ_STR(json_get_str(&doc, "to"), "LOCKED");
    CHECK_EQ_STR(json_get_str(&doc, "event"), "CONFIRMED");
    CHECK_EQ_STR(json_get_str(&doc, "amount"), "250");
    CHECK_EQ_STR(json_get_str(&doc, "credit"), "250.00");
    CHECK_EQ_STR(json_get_str(&doc, "credit_minor"), "25000");
    CHECK_EQ_STR(json_get_str(&doc, "remainder"), "0.004");
    CHECK_EQ_STR(json_get_str(&doc, "time"), "2026-11-26T07:36:38.123Z");
    CHECK_EQ_INT(json_get_i64(&doc, "login", &v), 0);
    CHECK_EQ_INT(v, 100001);
    CHECK_EQ_INT(json_get_i64(&doc, "confirmations", &v), 0);
    CHECK_EQ_INT(v, 20);
    CHECK_EQ_INT(json_has(&doc, "threshold"), 0); /* unset fields are left out */
    CHECK_EQ_INT(json_has(&doc, "action"), 0);    /* never for a deposit */
    bson_destroy(&doc);
    jbuf_free(&b);
}

static void test_json_of_every_full_kind_parses(void)
{
    for (int i = 0; i < S_NKINDS; i++) {
        record_t r;
        s_full(&r, s_kinds[i]);
        jbuf_t b;
        jbuf_init(&b);
        record_to_json(&r, UINT64_MAX, &b);
        bson_t doc;
        char err[128];
        CHECK_EQ_INT(json_parse(b.data, b.len, &doc, err, sizeof err), 0);
        CHECK_EQ_STR(json_get_str(&doc, "kind"), record_kind_name(s_kinds[i]));
        CHECK_EQ_STR(json_get_str(&doc, "reason"), r.reason);
        CHECK_EQ_STR(json_get_str(&doc, "lsn"), "18446744073709551615"); /* above 2^53: a string */
        if (s_kinds[i] == RECORD_DEPOSIT)
            CHECK_EQ_STR(json_get_str(&doc, "login"), "18446744073709551615");
        bson_destroy(&doc);
        jbuf_free(&b);
    }
}

static void test_line_is_one_readable_line(void)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    strcpy(r.tx_id, "a1b2");
    r.from = DEPOSIT_RECEIVED;
    r.to = DEPOSIT_LOCKED;
    r.event = DEPOSIT_EV_CONFIRMED;
    strcpy(r.amount, "250");
    strcpy(r.token_id, "TRON_USDT");
    r.login = 100001;
    r.credit_minor = 25000;
    r.digits = 2;
    jbuf_t b;
    jbuf_init(&b);
    record_to_line(&r, 42, &b);
    CHECK_EQ_STR(b.data, "lsn=42 LOCKED tx=a1b2 ev=CONFIRMED from=RECEIVED login=100001 amount=250 TRON_USDT "
                         "credit=250.00");
    jbuf_reset(&b);
    record_init(&r, RECORD_DEPOSIT);
    strcpy(r.tx_id, "t");
    r.to = DEPOSIT_HELD;
    r.from = DEPOSIT_LOCKED;
    r.event = DEPOSIT_EV_HOLD;
    strcpy(r.reason, "MT5 said \"no\"\nretcode 8");
    record_to_line(&r, 7, &b);
    CHECK_EQ_STR(b.data, "lsn=7 HELD tx=t ev=HOLD from=LOCKED reason=\"MT5 said \\\"no\\\"\\x0aretcode 8\"");
    jbuf_reset(&b);
    record_init(&r, RECORD_CREDIT_ATTEMPT);
    strcpy(r.tx_id, "t");
    strcpy(r.ref, "kasa:t");
    r.attempt = 2;
    r.login = 9;
    r.credit_minor = 5;
    r.digits = 2;
    record_to_line(&r, 8, &b);
    CHECK_EQ_STR(b.data, "lsn=8 CREDIT_ATTEMPT tx=t login=9 credit=0.05 ref=kasa:t attempt=2");
    jbuf_free(&b);
}

static void test_topics_and_kind_names(void)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.to = DEPOSIT_NOTIFIED;
    CHECK_EQ_STR(record_topic(&r), "NOTIFIED");
    r.kind = RECORD_ADDRESS_LINK;
    CHECK_EQ_STR(record_topic(&r), "ADDRESS_LINK");
    CHECK_EQ_STR(record_kind_name(RECORD_DEPOSIT), "DEPOSIT");
    CHECK_EQ_STR(record_kind_name(RECORD_CREDIT_ATTEMPT), "CREDIT_ATTEMPT");
    CHECK_EQ_STR(record_kind_name(RECORD_ADMIN_ACTION), "ADMIN_ACTION");
    CHECK_EQ_STR(record_kind_name(RECORD_NOTICE_FAILED), "NOTICE_FAILED");
    CHECK_EQ_STR(record_kind_name(RECORD_HISTORY_GAP), "HISTORY_GAP");
    CHECK_EQ_STR(record_kind_name((record_kind_t) 0), "?");
    CHECK_EQ_STR(record_kind_name(RECORD_ALERT), "ALERT");
    CHECK_EQ_STR(record_kind_name(RECORD_ADMIN_ACCOUNT), "ADMIN_ACCOUNT");
    CHECK_EQ_STR(record_kind_name(RECORD_WITHDRAWAL), "WITHDRAWAL");
    CHECK_EQ_STR(record_kind_name(RECORD_WITHDRAWAL_ATTEMPT), "WITHDRAWAL_ATTEMPT");
    CHECK_EQ_STR(record_kind_name(RECORD_IGNORED), "IGNORED");
    CHECK_EQ_STR(record_kind_name((record_kind_t) 12), "?");
    CHECK_EQ_STR(record_topic(NULL), "?");
}

int main(void)
{
    RUN(test_every_kind_round_trips_with_every_field_set);
    RUN(test_empty_record_round_trips_and_keeps_defaults);
    RUN(test_encoding_is_a_map_with_v_and_k_first_and_only_set_fields);
    RUN(test_encode_refuses_overlong_strings_and_bad_states);
    RUN(test_a_set_field_is_kept_whatever_the_kind);
    RUN(test_decode_accepts_a_hand_made_record);
    RUN(test_decode_refuses_newer_version_with_its_number);
    RUN(test_a_version_1_record_never_carries_a_version_2_kind_or_field);
    RUN(test_alert_names_round_trip);
    RUN(test_version_2_records_may_not_carry_version_3_fields);
    RUN(test_version_3_records_carry_no_withdrawal_kind_or_field);
    RUN(test_secrets_never_appear_in_json_or_lines);
    RUN(test_decode_refuses_bad_records_with_a_reason);
    RUN(test_decode_refuses_shapes_that_are_not_a_flat_map);
    RUN(test_decode_refuses_every_truncation_and_trailing_bytes);
    RUN(test_random_mutations_and_garbage_never_crash);
    RUN(test_json_is_valid_and_escapes_quotes_and_control_chars);
    RUN(test_json_of_every_full_kind_parses);
    RUN(test_line_is_one_readable_line);
    RUN(test_topics_and_kind_names);
    return check_done();
}
