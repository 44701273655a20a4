/* cmd_mongo.c — `kasa mongo status|sync|rebuild --config FILE`: the journal's MongoDB projection
 * (actors/projector.h, collections in schema/mongo.h).
 *
 * status   reads this node's position from kasa_nodes and the journal (no lock: a server may be
 *          running) and prints the position, the lag in records and seconds, and the collections'
 *          sizes. Exit 1 when MongoDB cannot be reached.
 * sync     projects what the journal holds beyond the position, now.
 * rebuild  removes this node's documents from every collection and projects the whole journal again.
 * sync and rebuild open the journal (taking its lock, cutting a torn tail), so they refuse while a
 * server runs on it: that server's projector already follows the journal and catches up by itself. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/projector.h"
#include "journal/journal.h"
#include "schema/config.h"
#include "schema/log.h"
#include "schema/mongo.h"
#include "schema/record.h"
#include "tools/commands.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa mongo status|sync|rebuild --config FILE\n"
            "  status   this node's projected LSN, its lag behind the journal (records, seconds) and\n"
            "           the collections' sizes\n"
            "  sync     project every journal record MongoDB does not have yet, now\n"
            "  rebuild  remove this node's documents and project the whole journal again\n"
            "  KASA_MONGO_URI, KASA_MONGO_DB and KASA_NODE_ID come from the configuration (or the\n"
            "  environment). sync and rebuild need the journal to themselves: stop the server first\n"
            "  (a running server's projector catches up by itself).\n");
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_iso(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
}

/* The journal beyond lsn: how many records, and the time of the first (0 if none). 0 or -1. */
static int s_journal_after(const char *dir, uint64_t lsn, uint64_t *records, uint64_t *last_lsn,
                           int64_t *first_ms, char *err, size_t errlen)
{
    *records = 0;
    *last_lsn = lsn;
    *first_ms = 0;
    journal_reader_t *rd = journal_reader_open(dir, lsn + 1, err, errlen);
    if (!rd)
        return -1;
    journal_entry_t e;
    int rc;
    while ((rc = journal_reader_next(rd, &e)) == 1) {
        if (e.lsn <= lsn)
            continue;
        if (*records == 0) {
            record_t r;
            char why[128];
            if (record_decode(e.payload, e.len, &r, why, sizeof why) == 0)
                *first_ms = r.time_ms;
        }
        (*records)++;
        *last_lsn = e.lsn;
    }
    if (rc < 0)
        snprintf(err, errlen, "%s", journal_reader_error(rd));
    journal_reader_destroy(&rd);
    return rc < 0 ? -1 : 0;
}

static int s_status(projector_t *p, const config_t *cfg)
{
    char err[512], uri[300], when[96];
    mongo_uri_redact(cfg->mongo_uri, uri, sizeof uri);
    uint64_t lsn;
    int64_t time_ms;
    if (projector_position(p, &lsn, &time_ms, err, sizeof err) != 0) {
        fprintf(stderr, "kasa mongo: MongoDB %s cannot be reached: %s\n", uri, err);
        return 1;
    }
    uint64_t behind, journal_lsn;
    int64_t first_ms;
    if (s_journal_after(cfg->journal_dir, lsn, &behind, &journal_lsn, &first_ms, err, sizeof err) != 0) {
        fprintf(stderr, "kasa mongo: cannot read the journal: %s\n", err);
        return 1;
    }
    int64_t lag_ms = behind && first_ms ? s_wall_ms() - first_ms : 0;
    if (lag_ms < 0)
        lag_ms = 0;
    s_iso(time_ms, when, sizeof when);
    printf("node=%s db=%s uri=%s\n", cfg->node_id, cfg->mongo_db, uri);
    printf("projected_lsn=%" PRIu64 " projected_record_time=%s journal_lsn=%" PRIu64 " lag_records=%" PRIu64
           " lag_seconds=%" PRId64 ".%01" PRId64 "\n", lsn, when, journal_lsn, behind, lag_ms / 1000,
           (lag_ms % 1000) / 100);
    if (lsn > journal_lsn)
        printf("warning: MongoDB's position is beyond this journal's end (another journal under the same "
               "KASA_NODE_ID?)\n");
    size_t n;
    const char *const *colls = mongo_collections(&n);
    for (size_t i = 0; i < n; i++) {
        int64_t count;
        if (projector_count(p, colls[i], &count, err, sizeof err) == 0)
            printf("%s%s=%" PRId64, i ? " " : "", colls[i], count);
    }
    printf("\n");
    return 0;
}

static int s_project(projector_t *p, const config_t *cfg, int rebuild)
{
    char err[512];
    journal_t *journal = cmd_journal_open(cfg->journal_dir, err, sizeof err);
    if (!journal) {
        fprintf(stderr, "kasa mongo: %s\n  (a running server's projector follows the journal by itself; "
                "`kasa mongo status` shows its lag)\n", err);
        return 1;
    }
    int rc = rebuild ? projector_rebuild(p, err, sizeof err) : projector_sync(p, err, sizeof err);
    journal_destroy(&journal);
    projector_status_t st;
    projector_status(p, &st);
    if (rc != 0) {
        fprintf(stderr, "kasa mongo: %s stopped at LSN %" PRIu64 ": %s\n", rebuild ? "rebuild" : "sync",
                st.projected_lsn, err);
        return 1;
    }
    printf("%s: projected_lsn=%" PRIu64 " batches=%" PRIu64 " upserted=%" PRIu64 " modified=%" PRIu64 "\n",
           rebuild ? "rebuilt" : "synced", st.projected_lsn, st.batches, st.upserted, st.modified);
    return 0;
}

int cmd_mongo(int argc, char **argv)
{
    const char *verb = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (!verb && (strcmp(argv[i], "status") == 0 || strcmp(argv[i], "sync") == 0
                             || strcmp(argv[i], "rebuild") == 0))
            verb = argv[i];
        else {
            fprintf(stderr, "kasa mongo: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    if (!verb) {
        s_usage(stderr);
        return 2;
    }
    static config_t cfg;
    char err[4096];
    if (cmd_config_load(&cfg, path, "kasa mongo") != 0) {
        return 1;
    }
    if (!cfg.mongo_uri[0]) {
        fprintf(stderr, "kasa mongo: KASA_MONGO_URI is not set: this kasa has no MongoDB\n");
        config_clear(&cfg);
        return 1;
    }
    projector_opts_t opts = {
        .uri = cfg.mongo_uri, .db = cfg.mongo_db, .node = cfg.node_id, .journal_dir = cfg.journal_dir,
        .max_deposits = cfg.max_deposits, .batch_records = cfg.mongo_batch, .follow_notified = 0,
    };
    projector_t *p = projector_new(&opts, err, sizeof err);
    int rc = 1;
    if (!p)
        fprintf(stderr, "kasa mongo: %s\n", err);
    else
        rc = strcmp(verb, "status") == 0 ? s_status(p, &cfg) : s_project(p, &cfg, strcmp(verb, "rebuild") == 0);
    projector_destroy(&p);
    config_clear(&cfg);
    return rc;
}
