/* money.c — exact decimal amounts in atto-units and their conversion to MT5 minor units.
 * Integer arithmetic only; every product and sum on the conversion path is overflow-checked. */
#include "schema/money.h"

#include <stdio.h>
#include <string.h>

#include "schema/err.h"

#define S_ATTO_DIGITS 18
#define S_ATTO_ONE ((money_atto_t) 1000000000000000000ULL) /* 10^18 */
#define S_MAX_TEXT 64                                       /* longest amount text accepted */
#define S_MAX_RATE_WHOLE 1000000ULL                         /* 10^6 account units per token */
#define S_MT5_MAX_WHOLE 1000000000LL                        /* MT5 retcode 4005 beyond this */

static uint64_t s_pow10(int n)
{
    uint64_t p = 1;
    for (int i = 0; i < n && i < 19; i++)
        p *= 10;
    return p;
}

/* Accepted: [0-9]+ ( '.' [0-9]{1,18} )?, at most 64 characters, value <= 10^12. Leading zeros are
 * accepted ("007" is 7): Cobo never sends them, and the value is unambiguous. Only ASCII digits count
 * ("١" and other Unicode digits are refused). The text is never echoed into err. */
int money_parse(const char *text, money_atto_t *out, char *err, size_t errlen)
{
    if (!text || !out) {
        err_set(err, errlen, "amount: missing");
        return -1;
    }
    size_t n = strnlen(text, S_MAX_TEXT + 1);
    if (n == 0) {
        err_set(err, errlen, "amount: empty");
        return -1;
    }
    if (n > S_MAX_TEXT) {
        err_set(err, errlen, "amount: longer than %d characters", S_MAX_TEXT);
        return -1;
    }
    size_t i = 0;
    uint64_t whole = 0;
    while (i < n && text[i] >= '0' && text[i] <= '9') {
        whole = whole * 10 + (uint64_t) (text[i] - '0');
        if (whole > MONEY_MAX_WHOLE) {
            err_set(err, errlen, "amount: above %llu", (unsigned long long) MONEY_MAX_WHOLE);
            return -1;
        }
        i++;
    }
    if (i == 0) {
        err_set(err, errlen, "amount: must start with a digit");
        return -1;
    }
    uint64_t frac = 0;
    int frac_digits = 0;
    if (i < n && text[i] == '.') {
        i++;
        while (i < n && text[i] >= '0' && text[i] <= '9') {
            if (frac_digits == S_ATTO_DIGITS) {
                err_set(err, errlen, "amount: more than %d decimals", S_ATTO_DIGITS);
                return -1;
            }
            frac = frac * 10 + (uint64_t) (text[i] - '0');
            frac_digits++;
            i++;
        }
        if (frac_digits == 0) {
            err_set(err, errlen, "amount: no digits after the point");
            return -1;
        }
    }
    if (i != n) {
        err_set(err, errlen, "amount: unexpected character at position %zu", i);
        return -1;
    }
    if (whole == MONEY_MAX_WHOLE && frac != 0) {
        err_set(err, errlen, "amount: above %llu", (unsigned long long) MONEY_MAX_WHOLE);
        return -1;
    }
    *out = (money_atto_t) whole * S_ATTO_ONE + (money_atto_t) frac * s_pow10(S_ATTO_DIGITS - frac_digits);
    return 0;
}

/* Writes v in decimal into buf (no terminator); returns the number of digits (1..39). */
static int s_u128_digits(money_atto_t v, char *buf)
{
    char tmp[40];
    int n = 0;
    do {
        tmp[n++] = (char) ('0' + (int) (v % 10));
        v /= 10;
    } while (v != 0 && n < 40);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

int money_format(money_atto_t value, char *buf, size_t len)
{
    char text[64];
    int n = s_u128_digits(value / S_ATTO_ONE, text);
    uint64_t frac = (uint64_t) (value % S_ATTO_ONE);
    if (frac != 0) {
        char digits[S_ATTO_DIGITS + 1];
        snprintf(digits, sizeof digits, "%018llu", (unsigned long long) frac);
        int keep = S_ATTO_DIGITS;
        while (keep > 0 && digits[keep - 1] == '0')
            keep--;
        text[n++] = '.';
        memcpy(text + n, digits, (size_t) keep);
        n += keep;
    }
    text[n] = '\0';
    if (!buf || len < (size_t) n + 1)
        return -1;
    memcpy(buf, text, (size_t) n + 1);
    return 0;
}

static int s_mul(money_atto_t a, money_atto_t b, money_atto_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

static int s_add(money_atto_t a, money_atto_t b, money_atto_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

/* floor(amount * rate / 10^18) exactly, without a 256-bit product: with amount = aw + af/10^18 and
 * rate = rw + rf/10^18 (whole and fractional parts), amount * rate in atto is
 *   aw*rw*10^18 + aw*rf + af*rw + af*rf/10^18
 * where only the last term has a fraction, so flooring it alone floors the sum. Within the accepted
 * bounds (amount <= 10^12, rate <= 10^6) every term stays below 10^37 < 2^128; each step is checked. */
static int s_gross(money_atto_t amount, money_atto_t rate, money_atto_t *out)
{
    money_atto_t aw = amount / S_ATTO_ONE, af = amount % S_ATTO_ONE;
    money_atto_t rw = rate / S_ATTO_ONE, rf = rate % S_ATTO_ONE;
    money_atto_t t1, t2, t3, t4, sum;
    if (s_mul(aw, rw, &t1) || s_mul(t1, S_ATTO_ONE, &t1) || s_mul(aw, rf, &t2) || s_mul(af, rw, &t3) ||
        s_mul(af, rf, &t4))
        return -1;
    t4 /= S_ATTO_ONE;
    if (s_add(t1, t2, &sum) || s_add(sum, t3, &sum) || s_add(sum, t4, &sum))
        return -1;
    *out = sum;
    return 0;
}

/* Bounds: amount <= 10^12 tokens, rate <= 10^6, fee <= 10^12, digits 0..8; the credit must be at
 * least one minor unit and at most MT5's single-operation limit of 1,000,000,000 (in account units). */
int money_convert(money_atto_t amount, const money_rule_t *rule, money_conversion_t *out, char *err, size_t errlen)
{
    if (!rule || !out) {
        err_set(err, errlen, "convert: missing rule");
        return -1;
    }
    memset(out, 0, sizeof *out);
    const money_atto_t max_value = (money_atto_t) MONEY_MAX_WHOLE * S_ATTO_ONE;
    if (rule->digits < 0 || rule->digits > MONEY_MAX_DIGITS) {
        err_set(err, errlen, "convert: digits %d outside 0..%d", rule->digits, MONEY_MAX_DIGITS);
        return -1;
    }
    if (amount > max_value) {
        err_set(err, errlen, "convert: amount above %llu", (unsigned long long) MONEY_MAX_WHOLE);
        return -1;
    }
    if (rule->rate > (money_atto_t) S_MAX_RATE_WHOLE * S_ATTO_ONE) {
        err_set(err, errlen, "convert: rate above %llu", (unsigned long long) S_MAX_RATE_WHOLE);
        return -1;
    }
    if (rule->fee > max_value) {
        err_set(err, errlen, "convert: fee above %llu", (unsigned long long) MONEY_MAX_WHOLE);
        return -1;
    }
    money_atto_t gross;
    if (s_gross(amount, rule->rate, &gross) != 0) {
        err_set(err, errlen, "convert: overflow");
        return -1;
    }
    if (gross <= rule->fee) {
        err_set(err, errlen, "convert: zero or less after the fee");
        return -1;
    }
    money_atto_t net = gross - rule->fee;
    money_atto_t unit = (money_atto_t) s_pow10(S_ATTO_DIGITS - rule->digits);
    money_atto_t credit = net / unit;
    if (credit == 0) {
        err_set(err, errlen, "convert: below one minor unit");
        return -1;
    }
    money_atto_t limit = (money_atto_t) S_MT5_MAX_WHOLE * s_pow10(rule->digits);
    if (credit > limit) {
        err_set(err, errlen, "convert: over MT5 single-operation limit");
        return -1;
    }
    out->credit_minor = (int64_t) credit;
    out->gross_atto = gross;
    out->remainder_atto = net - credit * unit;
    return 0;
}

/* Negative values (withdrawals) get a leading '-'. digits outside 0..8 or a short buffer: -1. */
int money_format_minor(int64_t minor, int digits, char *buf, size_t len)
{
    if (!buf || digits < 0 || digits > MONEY_MAX_DIGITS)
        return -1;
    uint64_t mag = minor < 0 ? (uint64_t) 0 - (uint64_t) minor : (uint64_t) minor;
    uint64_t unit = s_pow10(digits);
    int n;
    if (digits == 0)
        n = snprintf(buf, len, "%s%llu", minor < 0 ? "-" : "", (unsigned long long) mag);
    else
        n = snprintf(buf, len, "%s%llu.%0*llu", minor < 0 ? "-" : "", (unsigned long long) (mag / unit), digits,
                     (unsigned long long) (mag % unit));
    if (n < 0 || (size_t) n >= len) {
        if (len > 0)
            buf[0] = '\0';
        return -1;
    }
    return 0;
}
