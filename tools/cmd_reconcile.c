/* cmd_reconcile.c — `kasa reconcile --from DATE --to DATE [--json] --config FILE`: the journal
 * against Cobo against MT5 for a window (actors/reconcile.h). Read-only: safe while kasa serves
 * (the journal is read, never locked; Cobo and MT5 are only read).
 * Exit status: 0 the books agree, 1 mismatches (each printed with its evidence), 2 usage or
 * configuration, 3 a book could not be read in full (nothing can be said). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/reconcile.h"
#include "schema/config.h"
#include "schema/json.h"
#include "schema/timearg.h"
#include "tools/commands.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa reconcile --from DATE --to DATE [--json] --config FILE\n"
            "  Checks kasa's journal against Cobo and MT5 for deposits created between the two dates:\n"
            "  every Completed Cobo deposit to a linked address is known to kasa and finished; every\n"
            "  credited deposit has exactly one MT5 balance deal with its reference, on its login, of\n"
            "  its amount; every MT5 deal with a kasa reference belongs to a credited deposit.\n"
            "  Read-only. DATE is UTC: 2026-11-30 (a --to date means the end of that day),\n"
            "  2026-11-30T08:15Z, -6h, -3d or @UNIX_MS.\n"
            "  Exit 0 when the books agree, 1 with mismatches, 3 when a book could not be read.\n");
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_reconcile(int argc, char **argv)
{
    const char *path = NULL, *from = NULL, *to = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kasa reconcile: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    if (!path || !from || !to) {
        s_usage(stderr);
        return 2;
    }
    char err[4096];
    int64_t now = s_now_ms(), from_ms, to_ms;
    if (timearg_parse(from, now, &from_ms, err, sizeof err) != 0) {
        fprintf(stderr, "kasa reconcile: --from %s\n", err);
        return 2;
    }
    if (timearg_parse(to, now, &to_ms, err, sizeof err) != 0) {
        fprintf(stderr, "kasa reconcile: --to %s\n", err);
        return 2;
    }
    if (strlen(to) == 10 && to[4] == '-' && to[7] == '-')
        to_ms += 86400 * 1000 - 1;   /* a day: to its end */
    if (from_ms > to_ms) {
        fprintf(stderr, "kasa reconcile: --from is after --to\n");
        return 2;
    }
    static config_t cfg;
    if (cmd_config_load(&cfg, path, "kasa reconcile") != 0) {
        return 2;
    }
    reconcile_books_t books;
    int rc;
    if (reconcile_gather(&cfg, from_ms, to_ms, &books, err, sizeof err) != 0) {
        fprintf(stderr, "kasa reconcile: cannot read the books: %s\n", err);
        rc = 3;
    } else {
        reconcile_report_t rep;
        long n = reconcile_compare(&books, &rep);
        if (n < 0) {
            fprintf(stderr, "kasa reconcile: cannot compare the books: out of memory, or the index of finished "
                            "deposits cannot be read whole (kasa journal verify says where)\n");
            rc = 3;
        } else {
            jbuf_t out;
            jbuf_init(&out);
            if (json)
                reconcile_report_json(&books, &rep, &out);
            else
                reconcile_report_text(&books, &rep, &out);
            fwrite(out.data ? out.data : "", 1, out.len, stdout);
            jbuf_free(&out);
            rc = n == 0 ? 0 : 1;
        }
        reconcile_report_free(&rep);
    }
    reconcile_books_free(&books);
    config_clear(&cfg);
    return rc;
}
