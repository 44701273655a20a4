/* timearg.h — the dates operators type on the command line (kasa catchup --since, kasa reconcile
 * --from/--to), read as UTC:
 *   2026-11-30                  midnight UTC of that day
 *   2026-11-30T08:15[:30][Z]    that time (a space may replace the T)
 *   -90m, -6h, -3d              that long before now
 *   @1764490530000              Unix milliseconds */
#ifndef KASA_SCHEMA_TIMEARG_H
#define KASA_SCHEMA_TIMEARG_H

#include <stddef.h>
#include <stdint.h>

/* Parses s into *ms (Unix ms). now_ms is "now" for the relative forms. 0, or -1 with a reason. */
int timearg_parse(const char *s, int64_t now_ms, int64_t *ms, char *err, size_t errlen);

/* Formats ms as 2026-11-30T08:15:30Z into buf. */
void timearg_format(int64_t ms, char *buf, size_t len);

#endif
