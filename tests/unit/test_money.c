/* test_money.c — exact parsing, formatting and conversion of token amounts. Every expected value
 * below was worked out by hand (or with exact rational arithmetic), never with floating point. */
#include "schema/money.h"

#include <stdint.h>
#include <string.h>

#include "tests/check.h"

#define E18 ((money_atto_t) 1000000000000000000ULL)

/* Builds an atto value from whole and fractional (18-digit) parts. */
static money_atto_t s_atto(uint64_t whole, uint64_t frac18)
{
    return (money_atto_t) whole * E18 + frac18;
}

static const char *s_fmt(money_atto_t v)
{
    static char buf[64];
    if (money_format(v, buf, sizeof buf) != 0)
        return "(format failed)";
    return buf;
}

static int s_eq(money_atto_t a, money_atto_t b) { return a == b; }

static void test_parse_accepts_valid_amounts_exactly(void)
{
    static const struct { const char *text; uint64_t whole, frac18; } ok[] = {
        { "0", 0, 0 },
        { "1", 1, 0 },
        { "12", 12, 0 },
        { "5970.04", 5970, 40000000000000000ULL },
        { "0.000001", 0, 1000000000000ULL },
        { "0.000000000000000001", 0, 1 },
        { "1.123456789012345678", 1, 123456789012345678ULL }, /* 18 decimals */
        { "0.999999999999999999", 0, 999999999999999999ULL },
        { "007", 7, 0 },                                      /* leading zeros: 7 */
        { "00.50", 0, 500000000000000000ULL },
        { "250.000000", 250, 0 },
        { "1000000000000", 1000000000000ULL, 0 },             /* exactly the maximum */
        { "999999999999.999999999999999999", 999999999999ULL, 999999999999999999ULL },
        { "0000000000000000000000000000000000000000000000000000000000000001", 1, 0 }, /* 64 chars */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        money_atto_t v = 12345;
        char err[128] = "";
        int rc = money_parse(ok[i].text, &v, err, sizeof err);
        if (rc != 0 || !s_eq(v, s_atto(ok[i].whole, ok[i].frac18)))
            fprintf(stderr, "  \"%s\": rc %d (%s)\n", ok[i].text, rc, err);
        CHECK_EQ_INT(rc, 0);
        CHECK(s_eq(v, s_atto(ok[i].whole, ok[i].frac18)));
    }
}

static void test_parse_refuses_everything_else_with_a_reason(void)
{
    static const char *const bad[] = {
        "", " 1", "1 ", "+1", "-1", "1e5", "1E5", "NaN", "nan", "inf", "Infinity", ".5", "5.", "1.2.3",
        "0x10", "\xd9\xa1" /* ARABIC-INDIC DIGIT ONE */, "1\xd9\xa1", "1,5", "1_000", "\t1", "1\n",
        "0.0000000000000000001",                      /* 19 decimals */
        "1.1234567890123456789",                      /* 19 decimals */
        "1000000000001",                              /* above 10^12 */
        "1000000000000.000000000000000001",           /* above 10^12 by one atto */
        "99999999999999999999999999999999999999999",  /* far above, would overflow 64 bits */
        "00000000000000000000000000000000000000000000000000000000000000001", /* 65 chars */
        "..", ".", "-0", "0.", "1..2", "１", /* fullwidth digit one */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        money_atto_t v = 77;
        char err[128] = "";
        int rc = money_parse(bad[i], &v, err, sizeof err);
        if (rc != -1)
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
        CHECK(err[0] != '\0');
    }
    money_atto_t v;
    char err[64];
    CHECK_EQ_INT(money_parse(NULL, &v, err, sizeof err), -1);
    CHECK_EQ_INT(money_parse("1", &v, NULL, 0), 0); /* no error buffer is fine */
}

static void test_parse_refuses_a_very_long_string(void)
{
    char big[4096];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    money_atto_t v;
    char err[128] = "";
    CHECK_EQ_INT(money_parse(big, &v, err, sizeof err), -1);
    memset(big, '0', sizeof big - 1);
    big[100] = '.';
    CHECK_EQ_INT(money_parse(big, &v, err, sizeof err), -1);
    CHECK(strstr(err, "longer") != NULL);
}

static void test_parse_reasons_name_the_problem(void)
{
    money_atto_t v;
    char err[128];
    CHECK_EQ_INT(money_parse("1.0000000000000000001", &v, err, sizeof err), -1);
    CHECK(strstr(err, "18 decimals") != NULL);
    CHECK_EQ_INT(money_parse("2000000000000", &v, err, sizeof err), -1);
    CHECK(strstr(err, "above") != NULL);
    CHECK_EQ_INT(money_parse("", &v, err, sizeof err), -1);
    CHECK(strstr(err, "empty") != NULL);
}

static void test_format_is_exact_and_minimal(void)
{
    CHECK_EQ_STR(s_fmt(0), "0");
    CHECK_EQ_STR(s_fmt(s_atto(250, 0)), "250");
    CHECK_EQ_STR(s_fmt(s_atto(5970, 40000000000000000ULL)), "5970.04");
    CHECK_EQ_STR(s_fmt(1), "0.000000000000000001");
    CHECK_EQ_STR(s_fmt(s_atto(1000000000000ULL, 0)), "1000000000000");
    CHECK_EQ_STR(s_fmt(~(money_atto_t) 0), "340282366920938463463.374607431768211455");
    char small[5];
    CHECK_EQ_INT(money_format(s_atto(12345, 0), small, sizeof small), -1);
    CHECK_EQ_INT(money_format(s_atto(1234, 0), small, sizeof small), 0);
    CHECK_EQ_STR(small, "1234");
}

static void test_parse_then_format_round_trips(void)
{
    static const char *const texts[] = { "0", "1", "5970.04", "0.000000000000000001", "123456789.123456789",
                                         "1000000000000", "999999999999.999999999999999999", "0.1" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        money_atto_t v;
        CHECK_EQ_INT(money_parse(texts[i], &v, NULL, 0), 0);
        CHECK_EQ_STR(s_fmt(v), texts[i]);
    }
}

static void test_format_minor(void)
{
    char buf[32];
    CHECK_EQ_INT(money_format_minor(25000, 2, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "250.00");
    CHECK_EQ_INT(money_format_minor(5, 2, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "0.05");
    CHECK_EQ_INT(money_format_minor(250, 0, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "250");
    CHECK_EQ_INT(money_format_minor(-150, 2, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "-1.50");
    CHECK_EQ_INT(money_format_minor(100000000000000001LL, 8, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "1000000000.00000001");
    CHECK_EQ_INT(money_format_minor(INT64_MIN, 8, buf, sizeof buf), 0);
    CHECK_EQ_STR(buf, "-92233720368.54775808");
    CHECK_EQ_INT(money_format_minor(1, 9, buf, sizeof buf), -1);
    CHECK_EQ_INT(money_format_minor(1, -1, buf, sizeof buf), -1);
    char tiny[6];
    CHECK_EQ_INT(money_format_minor(25000, 2, tiny, sizeof tiny), -1);
    CHECK_EQ_INT(money_format_minor(2500, 2, tiny, sizeof tiny), 0);
    CHECK_EQ_STR(tiny, "25.00");
}

/* Converts text amounts by a text rule; returns money_convert's result. */
static int s_conv(const char *amount, const char *rate, const char *fee, int digits, money_conversion_t *out,
                  char *err, size_t errlen)
{
    money_atto_t a;
    money_rule_t rule = { 0, 0, digits };
    if (money_parse(amount, &a, NULL, 0) || money_parse(rate, &rule.rate, NULL, 0) ||
        money_parse(fee, &rule.fee, NULL, 0))
        return -2;
    return money_convert(a, &rule, out, err, errlen);
}

static void test_convert_exact_cases(void)
{
    static const struct {
        const char *amount, *rate, *fee;
        int digits;
        int64_t credit;
        uint64_t gross_whole, gross_frac, rem_frac; /* remainder is below one unit: frac only */
    } cases[] = {
        /* 250 USDT at 1, no fee, cents */
        { "250", "1", "0", 2, 25000, 250, 0, 0 },
        /* 100.123456 * 0.987654 = 98.887331812224; - 1.5 = 97.387331812224 -> 97.38, drops 0.007331812224 */
        { "100.123456", "0.987654", "1.5", 2, 9738, 98, 887331812224000000ULL, 7331812224000000ULL },
        /* 1/3 * 3 in 18 decimals is 0.999999999999999999 -> 0.99 */
        { "0.333333333333333333", "3", "0", 2, 99, 0, 999999999999999999ULL, 9999999999999999ULL },
        /* 5970.04 * 0.123456789012345678 = 737.04196867526419148712 (truncated to 18 decimals) - 0.01 */
        { "5970.04", "0.123456789012345678", "0.01", 8, 73703196867, 737, 41968675264191487ULL, 5264191487ULL },
        /* whole-unit account currency */
        { "19.99", "1", "0", 0, 19, 19, 990000000000000000ULL, 990000000000000000ULL },
        /* the smallest credit: one minor unit exactly, nothing dropped */
        { "0.00000001", "1", "0", 8, 1, 0, 10000000000ULL, 0 },
        /* largest amount at a rate that lands exactly on MT5's limit */
        { "1000000000000", "0.001", "0", 8, 100000000000000000LL, 1000000000, 0, 0 },
        /* just below the largest amount at the same rate */
        { "999999999999.999999999999999999", "0.001", "0", 8, 99999999999999999LL, 999999999,
          999999999999999999ULL, 9999999999ULL },
        /* a rate with 18 decimals times an amount with 18 decimals: the product's low digits are cut */
        { "0.000000000000000003", "999999.123456789123456789", "0", 8, 0, 0, 0, 0 }, /* 2999997 atto: too small */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        money_conversion_t c;
        char err[128] = "";
        int rc = s_conv(cases[i].amount, cases[i].rate, cases[i].fee, cases[i].digits, &c, err, sizeof err);
        if (cases[i].credit == 0) {
            CHECK_EQ_INT(rc, -1);
            CHECK(strstr(err, "below one minor unit") != NULL);
            continue;
        }
        if (rc != 0)
            fprintf(stderr, "  case %zu: %s\n", i, err);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(c.credit_minor, cases[i].credit);
        CHECK(s_eq(c.gross_atto, s_atto(cases[i].gross_whole, cases[i].gross_frac)));
        CHECK(s_eq(c.remainder_atto, cases[i].rem_frac));
    }
}

static void test_convert_conserves_every_atto(void)
{
    /* gross - fee == credit * 10^(18-digits) + remainder, and remainder < one minor unit */
    static const char *const amounts[] = { "1", "0.000001", "5970.04", "123.456789", "77.7", "0.999999" };
    static const char *const rates[] = { "1", "0.987654", "36.6", "0.000123", "1.000000000000000001" };
    for (size_t a = 0; a < 6; a++)
        for (size_t r = 0; r < 5; r++)
            for (int d = 0; d <= 8; d++) {
                money_conversion_t c;
                money_rule_t rule = { 0, 0, d };
                money_atto_t amount;
                CHECK_EQ_INT(money_parse(amounts[a], &amount, NULL, 0), 0);
                CHECK_EQ_INT(money_parse(rates[r], &rule.rate, NULL, 0), 0);
                rule.fee = 1000; /* a tiny fee */
                if (money_convert(amount, &rule, &c, NULL, 0) != 0)
                    continue; /* below one unit at few digits: checked elsewhere */
                money_atto_t unit = 1;
                for (int k = 0; k < 18 - d; k++)
                    unit *= 10;
                CHECK(c.remainder_atto < unit);
                CHECK(s_eq(c.gross_atto - rule.fee, (money_atto_t) c.credit_minor * unit + c.remainder_atto));
            }
}

static void test_convert_refuses_zero_negative_and_out_of_range(void)
{
    money_conversion_t c;
    char err[128];
    CHECK_EQ_INT(s_conv("1", "1", "1", 2, &c, err, sizeof err), -1); /* fee eats it all */
    CHECK(strstr(err, "fee") != NULL);
    CHECK_EQ_INT(s_conv("1", "1", "2", 2, &c, err, sizeof err), -1);
    CHECK_EQ_INT(s_conv("0", "1", "0", 2, &c, err, sizeof err), -1);
    CHECK_EQ_INT(s_conv("1", "0", "0", 2, &c, err, sizeof err), -1);
    CHECK_EQ_INT(s_conv("0.009", "1", "0", 2, &c, err, sizeof err), -1);
    CHECK(strstr(err, "below one minor unit") != NULL);
    CHECK_EQ_INT(s_conv("1", "1", "0", 9, &c, err, sizeof err), -1);
    CHECK_EQ_INT(s_conv("1", "1", "0", -1, &c, err, sizeof err), -1);
    /* MT5's single-operation limit: 1,000,000,000 exactly passes, one minor unit more does not */
    CHECK_EQ_INT(s_conv("1000000000", "1", "0", 2, &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.credit_minor, 100000000000LL);
    CHECK_EQ_INT(s_conv("1000000000.01", "1", "0", 2, &c, err, sizeof err), -1);
    CHECK(strstr(err, "over MT5 single-operation limit") != NULL);
    CHECK_EQ_INT(s_conv("1000000000.00000001", "1", "0", 8, &c, err, sizeof err), -1);
    CHECK(strstr(err, "over MT5 single-operation limit") != NULL);
    /* a fee brings it back under the limit */
    CHECK_EQ_INT(s_conv("1000000000.01", "1", "0.01", 2, &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.credit_minor, 100000000000LL);
    CHECK_EQ_INT(money_convert(1, NULL, &c, err, sizeof err), -1);
}

static void test_convert_largest_inputs_do_not_overflow(void)
{
    money_conversion_t c;
    char err[128];
    /* the largest amount at the largest rate: the product (10^18 account units) is computed exactly and
     * refused for MT5's limit, not for an overflow */
    CHECK_EQ_INT(s_conv("1000000000000", "1000000", "0", 8, &c, err, sizeof err), -1);
    CHECK(strstr(err, "over MT5 single-operation limit") != NULL);
    CHECK_EQ_INT(s_conv("999999999999.999999999999999999", "999999.999999999999999999", "1000000000000", 8, &c, err,
                        sizeof err), -1);
    CHECK(strstr(err, "over MT5 single-operation limit") != NULL);
    /* the largest fee exactly balanced: gross 10^12 - fee 10^12 = 0 */
    CHECK_EQ_INT(s_conv("1000000", "1000000", "1000000000000", 8, &c, err, sizeof err), -1);
    CHECK(strstr(err, "fee") != NULL);
    /* ... and gross one minor unit above the largest fee gives one minor unit */
    CHECK_EQ_INT(s_conv("1000000.00000000000001", "1000000", "1000000000000", 8, &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.credit_minor, 1);
    CHECK(s_eq(c.gross_atto, s_atto(1000000000000ULL, 10000000000ULL)));

    /* beyond the accepted bounds: refused by name */
    money_rule_t rule = { s_atto(1000000, 1), 0, 2 };
    CHECK_EQ_INT(money_convert(s_atto(1, 0), &rule, &c, err, sizeof err), -1);
    CHECK(strstr(err, "rate") != NULL);
    rule.rate = E18;
    CHECK_EQ_INT(money_convert(s_atto(1000000000000ULL, 1), &rule, &c, err, sizeof err), -1);
    CHECK(strstr(err, "amount") != NULL);
    CHECK_EQ_INT(money_convert(~(money_atto_t) 0, &rule, &c, err, sizeof err), -1);
    rule.fee = s_atto(1000000000000ULL, 1);
    CHECK_EQ_INT(money_convert(s_atto(1, 0), &rule, &c, err, sizeof err), -1);
    CHECK(strstr(err, "fee") != NULL);
}

int main(void)
{
    RUN(test_parse_accepts_valid_amounts_exactly);
    RUN(test_parse_refuses_everything_else_with_a_reason);
    RUN(test_parse_refuses_a_very_long_string);
    RUN(test_parse_reasons_name_the_problem);
    RUN(test_format_is_exact_and_minimal);
    RUN(test_parse_then_format_round_trips);
    RUN(test_format_minor);
    RUN(test_convert_exact_cases);
    RUN(test_convert_conserves_every_atto);
    RUN(test_convert_refuses_zero_negative_and_out_of_range);
    RUN(test_convert_largest_inputs_do_not_overflow);
    return check_done();
}
