/* json.h — reading JSON through libbson, writing JSON through a growable buffer.
 *
 * Reading: json_parse() turns a JSON text (an object, or an array, which is wrapped as {"a": [...]})
 * into a bson_t; the json_get_* helpers look a value up by a dotted path ("data.destination.amount",
 * "a.0.address") and never crash on a missing or mistyped value: they return NULL / -1.
 * Writing: jbuf_t collects text; jbuf_str() appends a JSON string with every character that JSON
 * requires escaped. Strings read from JSON are UTF-8 as received. */
#ifndef KASA_SCHEMA_JSON_H
#define KASA_SCHEMA_JSON_H

#include <bson/bson.h>
#include <stddef.h>
#include <stdint.h>

/* Parses len bytes of JSON into *out (initialised here; bson_destroy it after a 0 return).
 * Returns 0, or -1 with a short reason in err (never the input itself). */
int json_parse(const char *text, size_t len, bson_t *out, char *err, size_t errlen);

/* The UTF-8 string at path, or NULL if it is missing, null or not a string. Valid while doc lives. */
const char *json_get_str(const bson_t *doc, const char *path);

/* The integer at path (an int32/int64, or a double with no fraction, or a decimal string of digits).
 * Returns 0 and sets *out, or -1. */
int json_get_i64(const bson_t *doc, const char *path, int64_t *out);

/* 1 if path is present (even as null), else 0. */
int json_has(const bson_t *doc, const char *path);

/* A growable text buffer. Allocation failure aborts: kasa cannot go on without memory. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} jbuf_t;

void jbuf_init(jbuf_t *b);
void jbuf_free(jbuf_t *b);
void jbuf_reset(jbuf_t *b);
void jbuf_add(jbuf_t *b, const char *s, size_t n);
void jbuf_puts(jbuf_t *b, const char *s);
void jbuf_printf(jbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends "s" as a JSON string literal (quotes included; control characters, quote, backslash,
 * and < > & escaped as \u00XX so the text is safe inside HTML too). NULL appends null. */
void jbuf_str(jbuf_t *b, const char *s);
/* Returns the text (NUL-terminated) and leaves b empty; the caller frees. */
char *jbuf_take(jbuf_t *b);

#endif
