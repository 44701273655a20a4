/* fuzz_webhook.c — the webhook body parsers on arbitrary bytes: cobo_event_parse must refuse or
 * accept without reading out of bounds, and an accepted event must be whole (ids and amount
 * NUL-terminated inside their fields); the webhook route's parser (web/webhook_json.h: the direct
 * reader, cobo_event_parse when it declines) must give the same result, the same event byte for
 * byte and the same reason, and the direct reader must never take a body cobo_event_parse refuses. */
#include <string.h>

#include "schema/cobo_tx.h"
#include "tests/fuzz/fuzz.h"
#include "web/webhook_json.h"

int fuzz_webhook(const uint8_t *data, size_t size);
int fuzz_webhook(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *body = malloc(size ? size : 1);   /* exactly size bytes: no NUL after the body */
    if (!body)
        abort();
    memcpy(body, data, size);
    cobo_event_t ev, direct, route;
    char err[200], route_err[200];
    memset(err, 0, sizeof err);
    memset(route_err, 0, sizeof route_err);
    int rc = cobo_event_parse(body, size, &ev, err, sizeof err);
    int took = webhook_json_direct(body, size, &direct);
    FUZZ_ASSERT(!took || rc == 0);
    if (took)
        FUZZ_ASSERT(memcmp(&direct, &ev, sizeof ev) == 0);
    FUZZ_ASSERT(webhook_event_parse(body, size, &route, route_err, sizeof route_err) == rc);
    FUZZ_ASSERT(strcmp(route_err, err) == 0);
    if (rc == 0)
        FUZZ_ASSERT(memcmp(&route, &ev, sizeof ev) == 0);
    if (rc == 0) {
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
