/* err.h — how a function fills its caller's error buffer (the `char *err, size_t errlen` pair). */
#ifndef KASA_SCHEMA_ERR_H
#define KASA_SCHEMA_ERR_H

#include <stddef.h>

/* Formats a reason into err, cut to errlen bytes and always NUL-terminated. Does nothing when err
 * is NULL or errlen is 0, so callers may pass no buffer. */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
