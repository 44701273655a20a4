/* test_mt5.c — the MT5 client's pure parts: handshake math against MetaQuotes' published vectors,
 * exact amount formatting and parsing, retcode parsing and classification. */
#include <stdint.h>
#include <string.h>

#include "actors/mt5.h"
#include "tests/check.h"

static void s_hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_h2_matches_published_vector(void)
{
    unsigned char h2[16];
    char hex[33];
    CHECK_EQ_INT(mt5_auth_h2("Password1", h2), 0);
    s_hex(h2, 16, hex);
    CHECK_EQ_STR(hex, "904ba8ecb16273d2f0ae9c3b8a023752");
}

static void test_srv_rand_answer_matches_published_vector(void)
{
    unsigned char h2[16];
    char answer[33];
    mt5_auth_h2("Password1", h2);
    CHECK_EQ_INT(mt5_auth_answer(h2, "73007dc7184747ce0f7c98516ef1c851", answer), 0);
    CHECK_EQ_STR(answer, "77fe51827f7fa69dd80fbec9aa33f1bb");
}

static void test_cli_rand_answer_matches_published_vector(void)
{
    unsigned char h2[16];
    char answer[33];
    mt5_auth_h2("Password1", h2);
    CHECK_EQ_INT(mt5_auth_answer(h2, "4db98fec17aab4dc5a240bdc659e8395", answer), 0);
    CHECK_EQ_STR(answer, "1732021b1b332f51660b2b315eed3a35");
    /* upper-case hex decodes to the same bytes */
    CHECK_EQ_INT(mt5_auth_answer(h2, "4DB98FEC17AAB4DC5A240BDC659E8395", answer), 0);
    CHECK_EQ_STR(answer, "1732021b1b332f51660b2b315eed3a35");
}

static void test_h2_differs_for_another_password(void)
{
    unsigned char a[16], b[16], c[16];
    mt5_auth_h2("Password1", a);
    mt5_auth_h2("Password2", b);
    mt5_auth_h2("Pässword1", c); /* non-ASCII goes through UTF-16LE, not bytes */
    CHECK(memcmp(a, b, 16) != 0);
    CHECK(memcmp(a, c, 16) != 0);
}

static void test_auth_answer_rejects_bad_hex(void)
{
    unsigned char h2[16] = { 0 };
    char answer[33];
    CHECK_EQ_INT(mt5_auth_answer(h2, "abc", answer), -1);
    CHECK_EQ_INT(mt5_auth_answer(h2, "zz", answer), -1);
    CHECK_EQ_INT(mt5_auth_answer(h2, "", answer), -1);
    CHECK_EQ_INT(mt5_auth_answer(h2, NULL, answer), -1);
}

static void test_format_amount_is_exact(void)
{
    char buf[48];
    CHECK_EQ_INT(mt5_format_amount(10050, 2, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "100.50");
    mt5_format_amount(-12345, 2, buf, sizeof buf);
    CHECK_EQ_STR(buf, "-123.45");
    mt5_format_amount(5, 2, buf, sizeof buf);
    CHECK_EQ_STR(buf, "0.05");
    mt5_format_amount(-5, 3, buf, sizeof buf);
    CHECK_EQ_STR(buf, "-0.005");
    mt5_format_amount(7, 0, buf, sizeof buf);
    CHECK_EQ_STR(buf, "7");
    mt5_format_amount(123456789012345678LL, 8, buf, sizeof buf);
    CHECK_EQ_STR(buf, "1234567890.12345678");
    mt5_format_amount(INT64_MIN, 2, buf, sizeof buf);
    CHECK_EQ_STR(buf, "-92233720368547758.08");
    CHECK_EQ_INT(mt5_format_amount(1, 9, buf, sizeof buf), -1);
    CHECK_EQ_INT(mt5_format_amount(10050, 2, buf, 6), -1); /* "100.50" needs 7 bytes */
}

static void test_parse_amount_is_exact(void)
{
    int64_t v = 0;
    CHECK_EQ_INT(mt5_parse_amount("1000.5", 2, &v), 0);
    CHECK_EQ_INT(v, 100050);
    CHECK_EQ_INT(mt5_parse_amount("-3.25", 2, &v), 0);
    CHECK_EQ_INT(v, -325);
    CHECK_EQ_INT(mt5_parse_amount("0", 2, &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(mt5_parse_amount("12.3400", 2, &v), 0); /* trailing zeros are not significant */
    CHECK_EQ_INT(v, 1234);
    CHECK_EQ_INT(mt5_parse_amount("0.1", 0, &v), -1);     /* more decimals than the currency */
    CHECK_EQ_INT(mt5_parse_amount("1.005", 2, &v), -1);
    CHECK_EQ_INT(mt5_parse_amount("1e5", 2, &v), -1);
    CHECK_EQ_INT(mt5_parse_amount("", 2, &v), -1);
    CHECK_EQ_INT(mt5_parse_amount("1.", 2, &v), -1);
    CHECK_EQ_INT(mt5_parse_amount(".5", 2, &v), -1);
    CHECK_EQ_INT(mt5_parse_amount("NaN", 2, &v), -1);
    CHECK_EQ_INT(mt5_parse_amount("999999999999999999999", 2, &v), -1);
}

static void test_format_then_parse_round_trips(void)
{
    static const int64_t values[] = { 1, -1, 99, 100, 101, 123456, -987654321, 100000000000LL };
    for (int d = 0; d <= 8; d++)
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            char buf[48];
            int64_t back = 0;
            CHECK_EQ_INT(mt5_format_amount(values[i], d, buf, sizeof buf), 0);
            CHECK_EQ_INT(mt5_parse_amount(buf, d, &back), 0);
            CHECK_EQ_INT(back, values[i]);
        }
}

static void test_retcode_parse_reads_leading_integer(void)
{
    CHECK_EQ_INT(mt5_retcode_parse("0 Done"), 0);
    CHECK_EQ_INT(mt5_retcode_parse("13 Not found"), 13);
    CHECK_EQ_INT(mt5_retcode_parse("10019 No money"), 10019);
    CHECK_EQ_INT(mt5_retcode_parse("3006"), 3006);
    CHECK_EQ_INT(mt5_retcode_parse("Done"), -1);
    CHECK_EQ_INT(mt5_retcode_parse(""), -1);
    CHECK_EQ_INT(mt5_retcode_parse(NULL), -1);
    CHECK_EQ_INT(mt5_retcode_parse("-1 x"), -1);
}

static void test_retcode_classes(void)
{
    static const int permanent[] = { 3, 8, 13, 1001, 4005, 10019 };
    static const int transient[] = { 7, 9, 10, 12 };
    CHECK_EQ_INT(mt5_retcode_class(0, 0), MT5_OK);
    CHECK_EQ_INT(mt5_retcode_class(0, 1), MT5_OK);
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++) {
        CHECK_EQ_INT(mt5_retcode_class(permanent[i], 0), MT5_PERMANENT);
        CHECK_EQ_INT(mt5_retcode_class(permanent[i], 1), MT5_PERMANENT);
    }
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++) {
        CHECK_EQ_INT(mt5_retcode_class(transient[i], 0), MT5_TRANSIENT);
        CHECK_EQ_INT(mt5_retcode_class(transient[i], 1), MT5_AMBIGUOUS); /* may have been applied */
    }
    CHECK_EQ_INT(mt5_retcode_class(3006, 0), MT5_BAD_PASSWORD);
    CHECK_EQ_STR(mt5_result_name(MT5_AMBIGUOUS), "ambiguous");
    CHECK_EQ_STR(mt5_result_name(MT5_NOT_FOUND), "not_found");
}

static void test_client_new_refuses_bad_arguments(void)
{
    CHECK(mt5_client_new("ftp://x", 1000, "pw", NULL, 1000) == NULL);
    CHECK(mt5_client_new("https://x", 0, "pw", NULL, 1000) == NULL);
    CHECK(mt5_client_new("https://x", 1000, NULL, NULL, 1000) == NULL);
    CHECK(mt5_client_new("https://x", 1000, "pw", NULL, 0) == NULL);
    mt5_client_t *c = mt5_client_new("https://mt5.example:443/", 1000, "pw", "", 1000);
    CHECK(c != NULL);
    mt5_client_destroy(&c);
    CHECK(c == NULL);
    mt5_client_destroy(&c); /* safe twice */
}

static void test_balance_refuses_bad_comment_before_sending(void)
{
    /* port 1 on loopback: anything sent would fail as transport, not as PERMANENT */
    mt5_client_t *c = mt5_client_new("http://127.0.0.1:1", 1000, "pw", NULL, 500);
    uint64_t ticket = 7;
    char err[160];
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "0123456789012345678901234567890x", &ticket, err, sizeof err),
                 MT5_PERMANENT); /* 32 characters */
    CHECK_EQ_INT(ticket, 0);
    CHECK(strstr(err, "before sending") != NULL);
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "", &ticket, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "bad\ncomment", &ticket, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_balance(c, 100001, 0, 2, "ok", &ticket, err, sizeof err), MT5_PERMANENT);
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 9, "ok", &ticket, err, sizeof err), MT5_PERMANENT);
    /* a valid call to a closed port: nothing could be sent, so it is safe to retry */
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "ok", &ticket, err, sizeof err), MT5_TRANSIENT);
    mt5_client_destroy(&c);
}

int main(void)
{
    RUN(test_h2_matches_published_vector);
    RUN(test_srv_rand_answer_matches_published_vector);
    RUN(test_cli_rand_answer_matches_published_vector);
    RUN(test_h2_differs_for_another_password);
    RUN(test_auth_answer_rejects_bad_hex);
    RUN(test_format_amount_is_exact);
    RUN(test_parse_amount_is_exact);
    RUN(test_format_then_parse_round_trips);
    RUN(test_retcode_parse_reads_leading_integer);
    RUN(test_retcode_classes);
    RUN(test_client_new_refuses_bad_arguments);
    RUN(test_balance_refuses_bad_comment_before_sending);
    return check_done();
}
