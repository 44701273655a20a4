/* fuzz_record.c — the record codec: record_decode on arbitrary bytes; a decoded record encodes,
 * and that encoding decodes and encodes to the same bytes (one canonical form); the JSON and line
 * renderings of any decoded record are whole. */
#include <string.h>

#include "schema/json.h"
#include "schema/record.h"
#include "tests/fuzz/fuzz.h"

int fuzz_record(const uint8_t *data, size_t size);
int fuzz_record(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    record_t r;
    char err[200];
    if (record_decode(buf, size, &r, err, sizeof err) == 0) {
        uint8_t *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        if (record_encode(&r, &a, &alen, err, sizeof err) == 0) {
            record_t r2;
            FUZZ_ASSERT(record_decode(a, alen, &r2, err, sizeof err) == 0);
            FUZZ_ASSERT(record_encode(&r2, &b, &blen, err, sizeof err) == 0);
            FUZZ_ASSERT(alen == blen && memcmp(a, b, alen) == 0);
        }
        free(a);
        free(b);
        jbuf_t j;
        jbuf_init(&j);
        record_to_json(&r, 1, &j);
        record_to_line(&r, 1, &j);
        FUZZ_ASSERT(j.len == 0 || strlen(j.data) == j.len);
        jbuf_free(&j);
        FUZZ_ASSERT(record_topic(&r) != NULL);
    }
    free(buf);
    return 0;
}

FUZZ_ENTRY(fuzz_record)
