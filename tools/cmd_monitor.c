/* cmd_monitor.c — `kasa monitor`: prints every committed transition from the server's monitor
 * feed, one line each (record_to_line), or one JSON object per line with --json (record_to_json).
 * The feed is lossy: a watcher that connects late or reads slowly misses messages; the journal
 * (`kasa journal dump`) has every record. */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json.h"
#include "schema/record.h"
#include "tools/commands.h"
#include "schema/config.h"
#include "tools/monitor.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa monitor [--json] [--config FILE | --connect ENDPOINT] [--topic PREFIX]\n"
            "                    [--count N] [--timeout MS]\n"
            "  Prints each committed transition as it happens. ENDPOINT defaults to KASA_MONITOR\n"
            "  from the configuration, else tcp://127.0.0.1:5560. --topic keeps one state or kind\n"
            "  (e.g. CREDITED, HELD, ADDRESS_LINK). --count exits after N messages; --timeout exits\n"
            "  with status 1 when no message came for MS milliseconds.\n");
}

static int s_parse_int(const char *s, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

int cmd_monitor(int argc, char **argv)
{
    const char *path = NULL, *connect = NULL, *topic = "";
    int json = 0;
    long count = 0, timeout_ms = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc)
            connect = argv[++i];
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
            topic = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc && s_parse_int(argv[i + 1], &count) == 0)
            i++;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc && s_parse_int(argv[i + 1], &timeout_ms) == 0)
            i++;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kasa monitor: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    char endpoint[300] = "tcp://127.0.0.1:5560";
    if (connect) {
        snprintf(endpoint, sizeof endpoint, "%s", connect);
    } else if (path) {
        static config_t cfg;
        if (cmd_config_load(&cfg, path, "kasa monitor") != 0) {
            return 1;
        }
        snprintf(endpoint, sizeof endpoint, "%s", cfg.monitor);
        config_clear(&cfg);
    } else if (getenv("KASA_MONITOR")) {
        snprintf(endpoint, sizeof endpoint, "%s", getenv("KASA_MONITOR"));
    }

    zsock_t *sub = zsock_new(ZMQ_SUB);
    if (!sub || zsock_connect(sub, "%s", endpoint) < 0) {
        fprintf(stderr, "kasa monitor: cannot connect to %s\n", endpoint);
        zsock_destroy(&sub);
        return 1;
    }
    zsock_set_subscribe(sub, topic);
    if (timeout_ms >= 0)
        zsock_set_rcvtimeo(sub, (int) timeout_ms);

    int rc = 0;
    long seen = 0;
    record_t *r = malloc(sizeof *r);
    jbuf_t b;
    jbuf_init(&b);
    while (!zsys_interrupted && (count == 0 || seen < count)) {
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg) {
            if (!zsys_interrupted && timeout_ms >= 0) {
                fprintf(stderr, "kasa monitor: no message within %ld ms\n", timeout_ms);
                rc = 1;
            }
            break;
        }
        const void *payload;
        size_t len;
        uint64_t lsn;
        char err[128];
        zframe_t *topic_frame = zmsg_first(msg);
        if (topic_frame && zframe_streq(topic_frame, MONITOR_MONGO_TOPIC)
            && monitor_message_parse(msg, &payload, &len, &lsn) == 0) {
            /* the MongoDB projector's status (a JSON object), not a record */
            printf("%s%.*s\n", json ? "" : "MONGO ", (int) len, (const char *) payload);
            fflush(stdout);
            zmsg_destroy(&msg);
            continue;
        }
        if (monitor_message_parse(msg, &payload, &len, &lsn) != 0 || record_decode(payload, len, r, err, sizeof err) != 0) {
            fprintf(stderr, "kasa monitor: skipped an undecodable message\n");
            zmsg_destroy(&msg);
            continue;
        }
        jbuf_reset(&b);
        if (json)
            record_to_json(r, lsn, &b);
        else
            record_to_line(r, lsn, &b);
        jbuf_puts(&b, "\n");
        fwrite(b.data, 1, b.len, stdout);
        fflush(stdout);
        seen++;
        zmsg_destroy(&msg);
    }
    jbuf_free(&b);
    free(r);
    zsock_destroy(&sub);
    return rc;
}
