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

void log_set_level(log_level_t level) { s_level = (int) level; }

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
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t) n);
    (void) w;
}
