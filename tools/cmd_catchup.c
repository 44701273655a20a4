/* cmd_catchup.c — `kasa catchup --since DATE --config FILE`: one missed-webhook catch-up pass now,
 * by the running server (actors/catchup.h), over deposits created since DATE.
 *
 * The pass runs inside `kasa serve` (asked over the control socket, verb "catchup SINCE_MS") so
 * that what it finds goes through the same ingress path and pipeline as a webhook, and is credited
 * by the server's own crediters. Without a running server nothing is done (exit 1): kasa serve
 * itself runs a catch-up at start (KASA_CATCHUP_LOOKBACK) and every KASA_CATCHUP_INTERVAL.
 * Exit status: 0 the pass was complete, 1 it was not (or no server), 2 usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/catchup.h"
#include "schema/config.h"
#include "tools/commands.h"
#include "tools/control.h"
#include "schema/timearg.h"

#define CATCHUP_PING_TIMEOUT_MS 3000
#define CATCHUP_RUN_TIMEOUT_MS (30 * 60 * 1000)

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa catchup --since DATE --config FILE\n"
            "  Lists the wallet's deposits created since DATE at Cobo (GET /v2/transactions) and takes\n"
            "  in every one kasa missed, as if its webhook had come (known ones change nothing).\n"
            "  Runs inside the running kasa serve (its control socket). DATE is UTC: 2026-11-30,\n"
            "  2026-11-30T08:15Z, -6h, -3d or @UNIX_MS. Exit 0 when every page was read and every\n"
            "  deposit taken in.\n");
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_catchup(int argc, char **argv)
{
    const char *path = NULL, *since = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            since = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kasa catchup: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    if (!path || !since) {
        s_usage(stderr);
        return 2;
    }
    char err[4096];
    int64_t since_ms;
    if (timearg_parse(since, s_now_ms(), &since_ms, err, sizeof err) != 0) {
        fprintf(stderr, "kasa catchup: --since %s\n", err);
        return 2;
    }
    if (since_ms > s_now_ms()) {
        fprintf(stderr, "kasa catchup: --since is in the future\n");
        return 2;
    }
    static config_t cfg;
    if (cmd_config_load(&cfg, path, "kasa catchup") != 0) {
        return 1;
    }
    char reply[1024];
    const char *ping[] = { "ping" };
    if (control_request(cfg.control, ping, 1, CATCHUP_PING_TIMEOUT_MS, reply, sizeof reply) != 0) {
        fprintf(stderr,
                "kasa catchup: no kasa server answers on %s (%s). The catch-up runs inside kasa serve, which\n"
                "also runs one at every start and every KASA_CATCHUP_INTERVAL; start it, then retry.\n",
                cfg.control, reply);
        config_clear(&cfg);
        return 1;
    }
    char since_arg[24], when[32];
    snprintf(since_arg, sizeof since_arg, "%" PRId64, since_ms);
    timearg_format(since_ms, when, sizeof when);
    printf("catch-up of deposits created since %s (less %d min of overlap)...\n", when, CATCHUP_OVERLAP_MS / 60000);
    fflush(stdout);
    const char *req[] = { "catchup", since_arg };
    int rc = control_request(cfg.control, req, 2, CATCHUP_RUN_TIMEOUT_MS, reply, sizeof reply);
    config_clear(&cfg);
    if (rc < 0) {
        fprintf(stderr, "kasa catchup: %s\n", reply);
        return 1;
    }
    if (rc == 0) {
        printf("%s\n", reply);
        return 0;
    }
    fprintf(stderr, "kasa catchup: incomplete: %s\n", reply);
    return 1;
}

int cmd_catchup_verb(void *arg, char *const *frames, int n, char *reply, size_t replylen)
{
    catchup_t *catchup = arg;
    char *end = NULL;
    long long since_ms = n == 2 ? strtoll(frames[1], &end, 10) : -1;
    if (n != 2 || !end || *end || since_ms <= 0) {
        snprintf(reply, replylen, "usage: catchup SINCE_UNIX_MS");
        return -1;
    }
    catchup_report_t rep;
    char err[256] = "", text[512];
    int rc = catchup_run(catchup, (int64_t) since_ms, &rep, err, sizeof err);
    catchup_report_text(&rep, text, sizeof text);
    snprintf(reply, replylen, "%s%s%s", text, rc ? " reason=" : "", rc ? err : "");
    return rc;
}
