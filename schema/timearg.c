/* timearg.c — see timearg.h. No locale, no local time: timegm and gmtime_r only. */
#include "schema/timearg.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Reads exactly n digits at *p into *v, advancing *p. 0, or -1. */
static int s_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char) (*p)[i]))
            return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

int timearg_parse(const char *s, int64_t now_ms, int64_t *ms, char *err, size_t errlen)
{
    static const char usage[] = "expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z], -90m / -6h / -3d, or @UNIX_MS";
    if (!s || !*s || strlen(s) > 32) {
        snprintf(err, errlen, "%s", usage);
        return -1;
    }
    if (s[0] == '-' || s[0] == '@') {
        const char *p = s + 1;
        int64_t v = 0;
        int nd = 0;
        for (; isdigit((unsigned char) *p) && nd < 15; p++, nd++)
            v = v * 10 + (*p - '0');
        int64_t unit = 0;
        if (s[0] == '@' && !*p)
            unit = 1;
        else if (s[0] == '-' && p[0] && !p[1])
            unit = p[0] == 'm' ? 60000 : p[0] == 'h' ? 3600000 : p[0] == 'd' ? 86400000 : 0;
        if (nd == 0 || unit == 0 || (s[0] == '-' && v > 3650 * 86400000LL / unit)) {
            snprintf(err, errlen, "'%s': %s", s, usage);
            return -1;
        }
        *ms = s[0] == '@' ? v : now_ms - v * unit;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int ok = s_digits(&p, 4, &y) == 0 && *p++ == '-' && s_digits(&p, 2, &mo) == 0 && *p++ == '-' &&
             s_digits(&p, 2, &d) == 0;
    if (ok && (*p == 'T' || *p == ' ')) {
        p++;
        ok = s_digits(&p, 2, &h) == 0 && *p++ == ':' && s_digits(&p, 2, &mi) == 0;
        if (ok && *p == ':') {
            p++;
            ok = s_digits(&p, 2, &sec) == 0;
        }
        if (ok && *p == 'Z')
            p++;
    }
    ok = ok && *p == '\0' && y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && sec <= 59;
    if (ok) {
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        time_t t = timegm(&tm);
        struct tm back;
        ok = t != (time_t) -1 && gmtime_r(&t, &back) && back.tm_mday == d;  /* 2026-02-31 is refused */
        if (ok)
            *ms = (int64_t) t * 1000;
    }
    if (!ok) {
        snprintf(err, errlen, "'%s': %s", s, usage);
        return -1;
    }
    return 0;
}

void timearg_format(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
