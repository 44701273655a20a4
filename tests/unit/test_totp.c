/* test_totp.c — TOTP against RFC 6238's published SHA-1 vectors (appendix B, 8 digits, and their
 * last 6 digits), one step of skew either way and no more, a code never accepted twice (nor an
 * earlier one), malformed codes refused; base32 against RFC 4648's vectors; the otpauth URI. */
#include <stdint.h>
#include <string.h>

#include "schema/totp.h"
#include "tests/check.h"

static const uint8_t s_key[] = "12345678901234567890";   /* RFC 6238's SHA-1 seed (20 bytes) */

static const struct { int64_t t; const char *code8; } s_vectors[] = {
    { 59, "94287082" },         { 1111111109, "07081804" }, { 1111111111, "14050471" },
    { 1234567890, "89005924" }, { 2000000000, "69279037" }, { 20000000000, "65353130" },
};

static void test_rfc_6238_sha1_vectors(void)
{
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors[0]; i++) {
        char code[9];
        CHECK_EQ_INT(totp_code(s_key, 20, (uint64_t) s_vectors[i].t / 30, 8, code), 0);
        CHECK_EQ_STR(code, s_vectors[i].code8);
        char six[7];
        CHECK_EQ_INT(totp_code(s_key, 20, (uint64_t) s_vectors[i].t / 30, 6, six), 0);
        CHECK_EQ_STR(six, s_vectors[i].code8 + 2);
        /* and verify accepts the 6-digit form at that time */
        uint64_t step = 0;
        CHECK_EQ_INT(totp_verify(s_key, 20, six, s_vectors[i].t, 0, &step), 0);
        CHECK_EQ_INT(step, (uint64_t) s_vectors[i].t / 30);
    }
}

static void test_one_step_of_skew_and_no_more(void)
{
    const int64_t t = 1111111111;   /* step 37037037 */
    char code[7];
    totp_code(s_key, 20, (uint64_t) t / 30, 6, code);
    uint64_t step;
    CHECK_EQ_INT(totp_verify(s_key, 20, code, t - 30, 0, &step), 0);   /* client clock one step ahead */
    CHECK_EQ_INT(totp_verify(s_key, 20, code, t + 30, 0, &step), 0);   /* one step behind */
    CHECK_EQ_INT(totp_verify(s_key, 20, code, t - 60, 0, &step), -1);
    CHECK_EQ_INT(totp_verify(s_key, 20, code, t + 60, 0, &step), -1);
}

static void test_a_used_code_and_earlier_ones_are_never_accepted(void)
{
    const int64_t t = 1234567890;
    char now[7], before[7];
    totp_code(s_key, 20, (uint64_t) t / 30, 6, now);
    totp_code(s_key, 20, (uint64_t) t / 30 - 1, 6, before);
    uint64_t step = 0;
    CHECK_EQ_INT(totp_verify(s_key, 20, now, t, 0, &step), 0);
    CHECK_EQ_INT(totp_verify(s_key, 20, now, t, step, &step), -1);      /* the same code again */
    CHECK_EQ_INT(totp_verify(s_key, 20, before, t, step, &step), -1);   /* an older one */
    CHECK_EQ_INT(totp_verify(s_key, 20, before, t, 0, &step), 0);       /* it was valid, had it come first */
}

static void test_malformed_codes_are_refused(void)
{
    const char *bad[] = { "", "12345", "1234567", "12a456", " 94287", "-12345", NULL };
    for (int i = 0; bad[i]; i++)
        CHECK_EQ_INT(totp_verify(s_key, 20, bad[i], 59, 0, NULL), -1);
    CHECK_EQ_INT(totp_verify(s_key, 20, NULL, 59, 0, NULL), -1);
    char code[10];
    CHECK_EQ_INT(totp_code(s_key, 20, 1, 9, code), -1);
    CHECK_EQ_INT(totp_code(s_key, 0, 1, 6, code), -1);
}

static void test_base32_rfc_4648_vectors_and_round_trip(void)
{
    static const struct { const char *in, *out; } v[] = {
        { "", "" }, { "f", "MY" }, { "fo", "MZXQ" }, { "foo", "MZXW6" }, { "foob", "MZXW6YQ" },
        { "fooba", "MZXW6YTB" }, { "foobar", "MZXW6YTBOI" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char enc[32];
        CHECK_EQ_INT(totp_base32_encode((const uint8_t *) v[i].in, strlen(v[i].in), enc, sizeof enc), 0);
        CHECK_EQ_STR(enc, v[i].out);
        uint8_t dec[32];
        size_t n = 99;
        CHECK_EQ_INT(totp_base32_decode(v[i].out, dec, sizeof dec, &n), 0);
        CHECK_EQ_INT(n, strlen(v[i].in));
        CHECK(memcmp(dec, v[i].in, n) == 0);
    }
    uint8_t dec[32];
    size_t n;
    CHECK_EQ_INT(totp_base32_decode("mzxw6ytboi======", dec, sizeof dec, &n), 0);   /* lower case, padding */
    CHECK_EQ_INT(n, 6);
    CHECK_EQ_INT(totp_base32_decode("MZXW1", dec, sizeof dec, &n), -1);            /* 1 is not base32 */
    CHECK_EQ_INT(totp_base32_decode("MZXW6YTBOI", dec, 3, &n), -1);                /* no room */
    char small[4];
    CHECK_EQ_INT(totp_base32_encode((const uint8_t *) "foo", 3, small, sizeof small), -1);
}

static void test_otpauth_uri(void)
{
    char uri[256];
    CHECK_EQ_INT(totp_uri("kasa", "ayse.k", "JBSWY3DPEHPK3PXP", uri, sizeof uri), 0);
    CHECK_EQ_STR(uri, "otpauth://totp/kasa:ayse.k?secret=JBSWY3DPEHPK3PXP&issuer=kasa&algorithm=SHA1&digits=6&period=30");
    CHECK_EQ_INT(totp_uri("My Broker", "a b", "AB", uri, sizeof uri), 0);
    CHECK(strstr(uri, "otpauth://totp/My%20Broker:a%20b?") == uri);
    CHECK_EQ_INT(totp_uri("kasa", "x", "JBSWY3DPEHPK3PXP", uri, 40), -1);
}

int main(void)
{
    RUN(test_rfc_6238_sha1_vectors);
    RUN(test_one_step_of_skew_and_no_more);
    RUN(test_a_used_code_and_earlier_ones_are_never_accepted);
    RUN(test_malformed_codes_are_refused);
    RUN(test_base32_rfc_4648_vectors_and_round_trip);
    RUN(test_otpauth_uri);
    return check_done();
}
