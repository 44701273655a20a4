/* fuzz_door.c — the webhook listener's request reader (web/door.h) on arbitrary bytes, as a
 * connection's stream: the first byte chooses how the rest is cut into pieces. The reader must
 * never hold more than its bound, never give a body over max_body or a Content-Length body of
 * another length, and find the same requests (status, body, whether to close) whether the stream
 * comes whole or in those pieces (until a request answered before its body, which depends on
 * where the pieces fall: Expect: 100-continue). */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "web/door.h"

#define FUZZ_DOOR_MAX_BODY 512
#define FUZZ_DOOR_EVENTS 64

typedef struct {
    int status, close, expect_cut;
    size_t body_len;
    uint64_t body_hash;
} fuzz_door_req_t;

/* Runs the stream through a reader, step(i) bytes at a time; the requests found into out. */
static int s_door_run(const uint8_t *data, size_t size, uint8_t seed, fuzz_door_req_t *out)
{
    size_t limit = DOOR_HEAD_MAX + FUZZ_DOOR_MAX_BODY + DOOR_SLACK;
    char *buf = malloc(limit);
    if (!buf)
        abort();
    door_reader_t r;
    door_read_init(&r, buf, limit, FUZZ_DOOR_MAX_BODY);
    size_t off = 0;
    int n = 0;
    unsigned piece = 0;
    for (int guard = 0; guard < 1000000; guard++) {
        int ev = door_read_step(&r);
        FUZZ_ASSERT(r.len <= limit);
        if (ev == DOOR_REQUEST) {
            FUZZ_ASSERT(r.body_len <= FUZZ_DOOR_MAX_BODY);
            FUZZ_ASSERT(r.head_len + r.body_len <= r.len || r.close);
            if (r.status == 0 && !r.chunked)
                FUZZ_ASSERT(r.body_len == r.content_length);
            if (r.status == 0)
                FUZZ_ASSERT(r.timestamp < r.head_len && r.signature < r.head_len);
            uint64_t h = 1469598103934665603ull;
            for (size_t i = 0; r.status == 0 && i < r.body_len; i++)
                h = (h ^ (uint8_t) r.buf[r.head_len + i]) * 1099511628211ull;
            if (n < FUZZ_DOOR_EVENTS)
                out[n] = (fuzz_door_req_t) { r.status, r.close, r.expect_cut, r.status ? 0 : r.body_len, h };
            n++;
            int close_after = r.close;
            door_read_next(&r);
            if (close_after)
                break;
            continue;
        }
        if (ev == DOOR_CONTINUE)
            continue;
        FUZZ_ASSERT(ev == DOOR_MORE);
        if (off == size)
            break;
        size_t room = door_read_room(&r);
        FUZZ_ASSERT(room > 0);
        size_t step = seed ? 1 + ((seed * 31u + piece++ * 7u) % 97u) : size;
        size_t k = size - off < step ? size - off : step;
        if (k > room)
            k = room;
        memcpy(r.buf + r.len, data + off, k);
        r.len += k;
        off += k;
    }
    free(buf);
    return n < FUZZ_DOOR_EVENTS ? n : FUZZ_DOOR_EVENTS;
}

int fuzz_door(const uint8_t *data, size_t size);
int fuzz_door(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    uint8_t seed = data[0] ? data[0] : 1;
    fuzz_door_req_t whole[FUZZ_DOOR_EVENTS], pieces[FUZZ_DOOR_EVENTS];
    int a = s_door_run(data + 1, size - 1, 0, whole);
    int b = s_door_run(data + 1, size - 1, seed, pieces);
    for (int i = 0; i < a && i < b; i++) {
        if (whole[i].expect_cut || pieces[i].expect_cut)
            return 0;   /* where the pieces fell decided this one */
        FUZZ_ASSERT(whole[i].status == pieces[i].status);
        FUZZ_ASSERT(whole[i].close == pieces[i].close);
        FUZZ_ASSERT(whole[i].body_len == pieces[i].body_len);
        FUZZ_ASSERT(whole[i].body_hash == pieces[i].body_hash);
    }
    FUZZ_ASSERT(a == b);
    return 0;
}

FUZZ_ENTRY(fuzz_door)
