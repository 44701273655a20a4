/* json.c — see json.h. */
#include "schema/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bson_init_from_json, with out's buffer sized for the text up front: a webhook's document is built
 * in one allocation instead of doubling from 128 bytes (a realloc per doubling). out is initialised;
 * false leaves it destroyed. */
static bool s_from_json(bson_t *out, const char *text, size_t len, bson_error_t *berr)
{
    bson_init(out);
    if (len + 256 <= UINT32_MAX / 2 && bson_reserve_buffer(out, (uint32_t) (len + 256)))
        bson_reinit(out);   /* keeps the buffer, empties the document */
    bson_json_reader_t *reader = bson_json_data_reader_new(false, len + 1);
    if (!reader) {
        bson_destroy(out);
        return false;
    }
    bson_json_data_reader_ingest(reader, (const uint8_t *) text, len);
    int rc = bson_json_reader_read(reader, out, berr);
    bson_json_reader_destroy(reader);
    if (rc != 1) {
        bson_destroy(out);
        return false;
    }
    return true;
}

int json_parse(const char *text, size_t len, bson_t *out, char *err, size_t errlen)
{
    bson_error_t berr;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
        i++;
    if (i == len) {
        snprintf(err, errlen, "empty body");
        bson_init(out);
        return -1;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "NUL byte in JSON");
        bson_init(out);
        return -1;
    }
    bool ok;
    if (text[i] == '[') {
        jbuf_t w;
        jbuf_init(&w);
        jbuf_puts(&w, "{\"a\":");
        jbuf_add(&w, text, len);
        jbuf_puts(&w, "}");
        ok = s_from_json(out, w.data, w.len, &berr);
        jbuf_free(&w);
    } else if (text[i] == '{') {
        ok = s_from_json(out, text, len, &berr);
    } else {
        snprintf(err, errlen, "not a JSON object");
        bson_init(out);
        return -1;
    }
    if (!ok) {
        snprintf(err, errlen, "malformed JSON");
        bson_init(out);
        return -1;
    }
    return 0;
}

static int s_find(const bson_t *doc, const char *path, bson_iter_t *it)
{
    bson_iter_t root;
    if (!bson_iter_init(&root, doc))
        return -1;
    return bson_iter_find_descendant(&root, path, it) ? 0 : -1;
}

const char *json_get_str(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    if (s_find(doc, path, &it) != 0 || !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    return bson_iter_utf8(&it, NULL);
}

int json_get_i64(const bson_t *doc, const char *path, int64_t *out)
{
    bson_iter_t it;
    if (s_find(doc, path, &it) != 0)
        return -1;
    if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
        *out = bson_iter_as_int64(&it);
        return 0;
    }
    if (BSON_ITER_HOLDS_DOUBLE(&it)) {
        double d = bson_iter_double(&it);
        if (d >= -9e15 && d <= 9e15 && d == (double) (int64_t) d) {
            *out = (int64_t) d;
            return 0;
        }
        return -1;
    }
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        const char *s = bson_iter_utf8(&it, NULL);
        int neg = (*s == '-');
        const char *p = s + neg;
        if (!*p || strlen(p) > 18)
            return -1;
        int64_t v = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            v = v * 10 + (*p - '0');
        }
        *out = neg ? -v : v;
        return 0;
    }
    return -1;
}

int json_has(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    return s_find(doc, path, &it) == 0;
}

void jbuf_init(jbuf_t *b) { b->data = NULL; b->len = 0; b->cap = 0; }

void jbuf_free(jbuf_t *b)
{
    free(b->data);
    jbuf_init(b);
}

void jbuf_reset(jbuf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static void s_reserve(jbuf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort();
    b->data = p;
    b->cap = cap;
}

void jbuf_add(jbuf_t *b, const char *s, size_t n)
{
    s_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void jbuf_puts(jbuf_t *b, const char *s) { jbuf_add(b, s, strlen(s)); }

void jbuf_printf(jbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    s_reserve(b, (size_t) n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

void jbuf_str(jbuf_t *b, const char *s)
{
    if (!s) {
        jbuf_puts(b, "null");
        return;
    }
    jbuf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': jbuf_add(b, "\\\"", 2); break;
        case '\\': jbuf_add(b, "\\\\", 2); break;
        case '\n': jbuf_add(b, "\\n", 2); break;
        case '\r': jbuf_add(b, "\\r", 2); break;
        case '\t': jbuf_add(b, "\\t", 2); break;
        default:
            if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                jbuf_add(b, esc, 6);
            } else {
                jbuf_add(b, (const char *) p, 1);
            }
        }
    }
    jbuf_add(b, "\"", 1);
}

char *jbuf_take(jbuf_t *b)
{
    if (!b->data)
        s_reserve(b, 0), b->data[0] = '\0';
    char *s = b->data;
    jbuf_init(b);
    return s;
}
