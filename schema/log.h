/* log.h — one line per event on stderr, machine-readable:
 *   2026-11-26T07:25:26.123Z level=info event=deposit.locked tx=9f2c... login=100001
 * The event name comes first so a reader can grep for it; the rest is key=value pairs that the
 * caller formats. A secret is never passed here: configuration values that are secrets are
 * redacted by the config module before anything prints them. */
#ifndef KASA_SCHEMA_LOG_H
#define KASA_SCHEMA_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Sets the lowest level printed (default LOG_INFO; KASA_LOG_LEVEL=debug|info|warn|error). */
void log_set_level(log_level_t level);

/* KASA_LOG_FORMAT=text (default) prints the line above; json prints one JSON object a line with the
 * same fields: {"time":"...Z","level":"info","event":"deposit.locked","tx":"9f2c...","login":"100001"}
 * (every value a string; a quoted value without its quotes). */
typedef enum { LOG_FORMAT_TEXT, LOG_FORMAT_JSON } log_format_t;
void log_set_format(log_format_t format);

/* Prints one line: timestamp, level, event, then the printf-formatted key=value text (may be NULL).
 * Thread-safe: a line is written with one write(2). Never fails loudly: a lost log line is not an error. */
void log_event(log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(event, ...)  log_event(LOG_INFO, event, __VA_ARGS__)
#define log_warn(event, ...)  log_event(LOG_WARN, event, __VA_ARGS__)
#define log_error(event, ...) log_event(LOG_ERROR, event, __VA_ARGS__)
#define log_debug(event, ...) log_event(LOG_DEBUG, event, __VA_ARGS__)

#endif
