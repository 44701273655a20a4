/* fuzz_amount.c — the amount parsers: money_parse (Cobo's decimal strings, 10^-18 units) and
 * mt5_parse_amount (MT5's balances in minor units). Properties: an accepted amount formats and
 * parses back to itself; nothing is accepted that is not plain decimal text. */
#include <string.h>

#include "actors/mt5.h"
#include "schema/money.h"
#include "tests/fuzz/fuzz.h"

int fuzz_amount(const uint8_t *data, size_t size);
int fuzz_amount(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char *text = fuzz_cstr(data, size);
    money_atto_t v;
    char err[128];
    if (money_parse(text, &v, err, sizeof err) == 0) {
        char out[64], err2[128];
        FUZZ_ASSERT(money_format(v, out, sizeof out) == 0);
        money_atto_t again;
        FUZZ_ASSERT(money_parse(out, &again, err2, sizeof err2) == 0);
        FUZZ_ASSERT(again == v);
        for (const char *p = text; *p; p++)
            FUZZ_ASSERT((*p >= '0' && *p <= '9') || *p == '.');
    }
    int digits = size ? data[0] % 10 : 2;
    int64_t minor;
    if (mt5_parse_amount(text, digits, &minor) == 0) {
        char out[64];
        if (mt5_format_amount(minor, digits, out, sizeof out) == 0) {
            int64_t again;
            FUZZ_ASSERT(mt5_parse_amount(out, digits, &again) == 0);
            FUZZ_ASSERT(again == minor);
        }
    }
    free(text);
    return 0;
}

FUZZ_ENTRY(fuzz_amount)
