/* money.h — exact token amounts and their conversion to an MT5 account's minor units.
 * No floating point anywhere. A token amount is held in atto-units (10^-18 of a token), which covers
 * every token Cobo lists (ETH has 18 decimals). */
#ifndef KASA_SCHEMA_MONEY_H
#define KASA_SCHEMA_MONEY_H

#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 money_atto_t;

#define MONEY_MAX_WHOLE 1000000000000ULL /* 10^12: a larger amount is absurd and refused */
#define MONEY_MAX_DIGITS 8               /* an account currency has at most 8 decimal digits */

/* Parses a decimal string as Cobo sends it ("5970.04", "0.000001", "12"): digits, an optional '.'
 * followed by 1..18 digits. Rejects signs, exponents, spaces, empty, "NaN", more than 18 decimals,
 * leading '.' or trailing '.', and a whole part above MONEY_MAX_WHOLE. Returns 0, or -1 with a reason. */
int money_parse(const char *text, money_atto_t *out, char *err, size_t errlen);

/* Writes the exact decimal form (no trailing zeros after the point, no point for a whole number).
 * Returns 0, or -1 if buf is too small. 64 bytes are always enough. */
int money_format(money_atto_t value, char *buf, size_t len);

/* How one accepted token becomes account money: credit = floor(amount * rate - fee) in minor units. */
typedef struct {
    money_atto_t rate;      /* account currency per whole token, as parsed by money_parse ("1", "0.1234") */
    money_atto_t fee;       /* flat fee in account currency, as parsed by money_parse ("0", "1.5") */
    int digits;             /* the account currency's digits (MT5 group CurrencyDigits), 0..8 */
} money_rule_t;

typedef struct {
    int64_t credit_minor;       /* what to credit, in minor units of the account currency (>= 1) */
    money_atto_t gross_atto;    /* amount * rate, exact, in atto-units of the account currency (truncated below 10^-18) */
    money_atto_t remainder_atto;/* the part of (gross - fee) below one minor unit, dropped by rounding down */
} money_conversion_t;

/* Converts amount by rule, rounding down; records what rounding dropped. Returns 0, or -1 with a
 * reason when the result would be zero or negative (the fee eats it) or would overflow. */
int money_convert(money_atto_t amount, const money_rule_t *rule, money_conversion_t *out, char *err, size_t errlen);

/* Formats minor units with digits decimals ("250.00" for 25000 and 2) — what MT5's balance call takes. */
int money_format_minor(int64_t minor, int digits, char *buf, size_t len);

#endif
