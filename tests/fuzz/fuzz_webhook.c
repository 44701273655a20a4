/* fuzz_webhook.c — the webhook body parser (cobo_event_parse) on arbitrary bytes: it must refuse
 * or accept without reading out of bounds, and an accepted event must be whole (ids and amount
 * NUL-terminated inside their fields). */
#include <string.h>

#include "schema/cobo_tx.h"
#include "tests/fuzz/fuzz.h"

int fuzz_webhook(const uint8_t *data, size_t size);
int fuzz_webhook(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *body = malloc(size ? size : 1);   /* exactly size bytes: no NUL after the body */
    if (!body)
        abort();
    memcpy(body, data, size);
    cobo_event_t ev;
    char err[200];
    if (cobo_event_parse(body, size, &ev, err, sizeof err) == 0) {
        FUZZ_ASSERT(memchr(ev.event_id, '\0', sizeof ev.event_id) != NULL);
        FUZZ_ASSERT(memchr(ev.type, '\0', sizeof ev.type) != NULL);
        if (ev.is_transaction) {
            FUZZ_ASSERT(memchr(ev.tx.amount, '\0', sizeof ev.tx.amount) != NULL);
            FUZZ_ASSERT(memchr(ev.tx.tx_hash, '\0', sizeof ev.tx.tx_hash) != NULL);
        }
    } else {
        FUZZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
    }
    free(body);
    return 0;
}

FUZZ_ENTRY(fuzz_webhook)
