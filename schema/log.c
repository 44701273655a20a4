/* log.c — see log.h. */
#include "schema/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const s_level_names[] = { "debug", "info", "warn", "error" };
static int s_level = -1;
static int s_format = -1;   /* LOG_FORMAT_TEXT or LOG_FORMAT_JSON; -1: KASA_LOG_FORMAT, else text */

void log_set_level(log_level_t level) { s_level = (int) level; }
void log_set_format(log_format_t format) { s_format = (int) format; }

static int s_current_format(void)
{
    if (s_format < 0) {
        const char *env = getenv("KASA_LOG_FORMAT");
        s_format = env && strcasecmp(env, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
    }
    return s_format;
}

/* Appends s[0..n) to out (cap, *len) as JSON string content (quotes, backslashes and control bytes
 * escaped). Stops quietly at the end of the buffer. */
static void s_json_chars(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n && *len + 7 < cap; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            out[(*len)++] = '\\';
            out[(*len)++] = (char) c;
        } else if (c < 0x20) {
            out[(*len)++] = '\\';
            out[(*len)++] = 'u';
            out[(*len)++] = '0';
            out[(*len)++] = '0';
            out[(*len)++] = hex[c >> 4];
            out[(*len)++] = hex[c & 15];
        } else {
            out[(*len)++] = (char) c;
        }
    }
}

static void s_json_raw(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n < cap) {
        memcpy(out + *len, s, n);
        *len += n;
    }
}

/* One JSON object with the same fields as the text line: time, level, event, then each key=value
 * of the text (a value in double quotes loses its quotes; text that is not key=value goes to "msg"). */
static size_t s_json_line(char *out, size_t cap, const char *time_s, const char *level, const char *event,
                          const char *kv)
{
    size_t len = 0;
    s_json_raw(out, cap, &len, "{\"time\":\"");
    s_json_chars(out, cap, &len, time_s, strlen(time_s));
    s_json_raw(out, cap, &len, "\",\"level\":\"");
    s_json_chars(out, cap, &len, level, strlen(level));
    s_json_raw(out, cap, &len, "\",\"event\":\"");
    s_json_chars(out, cap, &len, event, strlen(event));
    s_json_raw(out, cap, &len, "\"");
    const char *p = kv;
    while (p && *p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t key_len = strcspn(p, "= ");
        if (p[key_len] != '=' || key_len == 0) {   /* free text: the rest of the line */
            s_json_raw(out, cap, &len, ",\"msg\":\"");
            s_json_chars(out, cap, &len, p, strlen(p));
            s_json_raw(out, cap, &len, "\"");
            break;
        }
        const char *v = p + key_len + 1;
        size_t vlen;
        const char *next;
        if (*v == '"') {
            const char *end = v + 1;
            while (*end && !(*end == '"' && (end[1] == ' ' || end[1] == '\0')))
                end++;
            vlen = (size_t) (end - v - 1);
            v++;
            next = *end ? end + 1 : end;
        } else {
            vlen = strcspn(v, " ");
            next = v + vlen;
        }
        s_json_raw(out, cap, &len, ",\"");
        s_json_chars(out, cap, &len, p, key_len);
        s_json_raw(out, cap, &len, "\":\"");
        s_json_chars(out, cap, &len, v, vlen);
        s_json_raw(out, cap, &len, "\"");
        p = next;
    }
    s_json_raw(out, cap, &len, "}\n");
    if (len == 0 || out[len - 1] != '\n') {   /* cut short: still one whole line */
        len = len > cap - 3 ? cap - 3 : len;
        out[len++] = '}';
        out[len++] = '\n';
    }
    return len;
}

static int s_current_level(void)
{
    if (s_level < 0) {
        const char *env = getenv("KASA_LOG_LEVEL");
        s_level = LOG_INFO;
        for (int i = 0; env && i < 4; i++)
            if (strcasecmp(env, s_level_names[i]) == 0)
                s_level = i;
    }
    return s_level;
}

void log_event(log_level_t level, const char *event, const char *fmt, ...)
{
    if ((int) level < s_current_level())
        return;
    char line[2048];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, s_level_names[level], event);
    if (fmt && n > 0 && (size_t) n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t) n - 1, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m < (int) (sizeof line - (size_t) n - 1) ? m : (int) (sizeof line - (size_t) n - 2);
    }
    if (n < 0)
        return;
    if ((size_t) n > sizeof line - 2)
        n = (int) sizeof line - 2;
    if (s_current_format() == LOG_FORMAT_JSON) {
        line[n] = '\0';
        char time_s[32];
        snprintf(time_s, sizeof time_s, "%.24s", line);
        const char *kv = strchr(line + 24, ' ');          /* after " level=... event=..." */
        kv = kv ? strchr(kv + 1, ' ') : NULL;
        kv = kv ? strchr(kv + 1, ' ') : NULL;
        char json[6 * sizeof line + 256];   /* every byte escaped at most 6-fold: never cut */
        size_t jn = s_json_line(json, sizeof json, time_s, s_level_names[level], event, kv ? kv + 1 : "");
        ssize_t w = write(STDERR_FILENO, json, jn);
        (void) w;
        return;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t) n);
    (void) w;
}
