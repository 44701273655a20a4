/* webhook_json.h — a Cobo webhook body read straight into a cobo_event_t, without building a
 * BSON document first.
 *
 * cobo_event_parse (schema/cobo_tx.h) builds a libbson document from the JSON text (its reader
 * allocates and clears about 20 KB per call) and then looks each field up by path. Every webhook
 * pays for that, so the webhook route reads the body once, here, and keeps only the fields kasa
 * uses. The contract is cobo_event_parse's, result for result: the same event on success, the same
 * -1 and the same reason on failure. That is kept by construction, not by imitation:
 *   - the direct reader takes only plain, well-formed input: strict JSON (RFC 8259) of ASCII text,
 *     an object at the top, integers of at most 18 digits, strings without \u escapes, no key
 *     starting with '$' (libbson's extended JSON), no tracked field twice, nesting at most 32 deep;
 *     and it accepts only what cobo_event_parse would accept (every required field present, every
 *     string fitting its field, the amount a valid decimal, integers in range);
 *   - anything else — a malformed body, a missing field, a float, a non-ASCII byte, an escape in a
 *     field kasa reads — is declined and handed to cobo_event_parse, which gives its own answer and
 *     reason (so a refused body is refused with exactly the same 400 and words as before).
 * The unit test (test_webhook) and the fuzz target (fuzz_webhook) compare the two on every input. */
#ifndef KASA_WEB_WEBHOOK_JSON_H
#define KASA_WEB_WEBHOOK_JSON_H

#include <stddef.h>

#include "schema/cobo_tx.h"

/* Parses a webhook body with cobo_event_parse's contract (0, or -1 with a short reason in err that
 * never echoes the body): the direct reader first, cobo_event_parse when it declines. */
int webhook_event_parse(const char *body, size_t len, cobo_event_t *out, char *err, size_t errlen);

/* The direct reader alone: 1 when it took the body (*out is then exactly what cobo_event_parse
 * gives), 0 when it declined (*out is then undefined; nothing else happened). */
int webhook_json_direct(const char *body, size_t len, cobo_event_t *out);

#endif
