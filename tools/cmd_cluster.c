/* cmd_cluster.c — `kasa cluster status --config FILE`: the nodes sharing this MongoDB and the claims
 * they hold (actors/claims.h). Reads only; safe while the nodes run.
 *
 * Prints one line per node known to MongoDB (kasa_nodes: its last heartbeat, i.e. the last time its
 * projector moved its position, and the claims it holds now), then the claims still working whose
 * lease has less than lease/3 left or has ended (a take-over is due or near), then the totals.
 * Exit 1 when MongoDB cannot be reached. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mongoc/mongoc.h>

#include "actors/claims.h"
#include "actors/mio.h"
#include "schema/config.h"
#include "schema/mongo.h"
#include "schema/timearg.h"
#include "tools/commands.h"

#define S_NODES_MAX 256
#define S_CLAIMS_MAX 100000   /* working claims read at most */

typedef struct {
    char node[64];
    int64_t updated_ms;
    int64_t lsn;
    long held, expiring;
} s_node_t;

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa cluster status --config FILE\n"
            "  the kasa nodes on this MongoDB (last heartbeat, claims held) and the claims whose lease\n"
            "  has less than a third left or has ended (KASA_CLAIM_LEASE_MS), and the named leases (the\n"
            "  Telegram poller's: which node polls, its offset as value); exit 1 if MongoDB cannot\n"
            "  be reached. KASA_MONGO_URI and KASA_MONGO_DB come from the configuration.\n");
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static s_node_t *s_node(s_node_t *nodes, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(nodes[i].node, name) == 0)
            return &nodes[i];
    if (*n >= S_NODES_MAX)
        return NULL;
    s_node_t *x = &nodes[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->node, sizeof x->node, "%s", name);
    return x;
}

/* Runs a find of collection with filter (a working cursor, every batch). fn per document. 0 or -1. */
static int s_find(mongoc_client_t *client, const char *db, const char *collection, const bson_t *filter,
                  void (*fn)(void *arg, const bson_t *doc), void *arg, char *err, size_t errlen)
{
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, collection);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    const bson_t *doc;
    long n = 0;
    while (n < S_CLAIMS_MAX && mongoc_cursor_next(cur, &doc)) {
        fn(arg, doc);
        n++;
    }
    bson_error_t error;
    int rc = 0;
    if (mongoc_cursor_error(cur, &error)) {
        snprintf(err, errlen, "%s", error.message);
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    return rc;
}

typedef struct {
    s_node_t *nodes;
    int n;
    int64_t now_ms, guard_ms;
    long working;
} s_scan_t;

static void s_on_node(void *arg, const bson_t *doc)
{
    s_scan_t *sc = arg;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "node") || !BSON_ITER_HOLDS_UTF8(&it))
        return;
    s_node_t *x = s_node(sc->nodes, &sc->n, bson_iter_utf8(&it, NULL));
    if (!x)
        return;
    if (bson_iter_init_find(&it, doc, "updated") && BSON_ITER_HOLDS_DATE_TIME(&it))
        x->updated_ms = bson_iter_date_time(&it);
    if (bson_iter_init_find(&it, doc, "lsn"))
        x->lsn = bson_iter_as_int64(&it);
}

static void s_on_claim(void *arg, const bson_t *doc)
{
    s_scan_t *sc = arg;
    bson_iter_t it;
    char node[64] = "?", tx[128] = "?";
    int64_t lease_until = 0, epoch = 0;
    if (bson_iter_init_find(&it, doc, "node") && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(node, sizeof node, "%s", bson_iter_utf8(&it, NULL));
    if (bson_iter_init_find(&it, doc, "transaction_id") && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(tx, sizeof tx, "%s", bson_iter_utf8(&it, NULL));
    if (bson_iter_init_find(&it, doc, "lease_until_ms"))
        lease_until = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, doc, "epoch"))
        epoch = bson_iter_as_int64(&it);
    sc->working++;
    s_node_t *x = s_node(sc->nodes, &sc->n, node);
    if (x)
        x->held++;
    int64_t left = lease_until - sc->now_ms;
    if (left < sc->guard_ms) {
        if (x)
            x->expiring++;
        printf("expiring tx=%s node=%s epoch=%" PRId64 " lease_left_ms=%" PRId64 "%s\n", tx, node, epoch, left,
               left <= 0 ? " (ended: another node may take it over)" : "");
    }
}

/* A named lease (the Telegram poller's): one line, its holder and how long it has left. */
static void s_on_lease(void *arg, const bson_t *doc)
{
    const s_scan_t *sc = arg;
    bson_iter_t it;
    char name[64] = "?", node[64] = "?";
    int64_t lease_until = 0, epoch = 0, value = 0;
    if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(name, sizeof name, "%s", bson_iter_utf8(&it, NULL));
    if (bson_iter_init_find(&it, doc, "node") && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(node, sizeof node, "%s", bson_iter_utf8(&it, NULL));
    if (bson_iter_init_find(&it, doc, "lease_until_ms"))
        lease_until = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, doc, "epoch"))
        epoch = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, doc, "value"))
        value = bson_iter_as_int64(&it);
    int64_t left = lease_until - sc->now_ms;
    printf("lease=%s node=%s epoch=%" PRId64 " lease_left_ms=%" PRId64 " value=%" PRId64 "%s\n", name, node, epoch,
           left, value, left <= 0 ? " (ended: the next node to ask takes it)" : "");
}

static int s_status(const config_t *cfg)
{
    bson_error_t error;
    char why[160];
    mongoc_client_t *client = mio_client_new(cfg->mongo_uri, MIO_ONE_OFF_TIMEOUT_MS, "kasa-cluster", why, sizeof why);
    if (!client) {
        fprintf(stderr, "kasa cluster: %s\n", why);
        return 1;
    }
    const char *db = cfg->mongo_db[0] ? cfg->mongo_db : MONGO_DEFAULT_DB;
    static s_node_t nodes[S_NODES_MAX];
    int64_t lease_ms = cfg->claim_lease_ms > 0 ? cfg->claim_lease_ms : CONFIG_DEFAULT_CLAIM_LEASE_MS;
    s_scan_t sc = { nodes, 0, s_wall_ms(), lease_ms / 3, 0 };
    char err[512] = "";
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    bson_t reply;
    int rc = mio_read(client, db, ping, &reply, &error) ? 0 : -1;
    bson_destroy(&reply);
    bson_destroy(ping);
    if (rc != 0)
        snprintf(err, sizeof err, "%s", error.message);
    bson_t empty = BSON_INITIALIZER;
    if (rc == 0)
        rc = s_find(client, db, MONGO_NODES, &empty, s_on_node, &sc, err, sizeof err);
    bson_t *working = BCON_NEW("state", BCON_UTF8("working"));
    if (rc == 0)
        rc = s_find(client, db, CLAIMS_COLLECTION, working, s_on_claim, &sc, err, sizeof err);
    bson_destroy(working);
    if (rc == 0)
        rc = s_find(client, db, CLAIMS_LEASES_COLLECTION, &empty, s_on_lease, &sc, err, sizeof err);
    bson_destroy(&empty);
    if (rc != 0) {
        fprintf(stderr, "kasa cluster: MongoDB cannot be read: %s\n", err);
        mongoc_client_destroy(client);
        return 1;
    }
    long expiring = 0;
    for (int i = 0; i < sc.n; i++) {
        char when[40] = "-";
        if (nodes[i].updated_ms > 0)
            timearg_format(nodes[i].updated_ms, when, sizeof when);
        printf("node=%s last_heartbeat=%s age_s=%" PRId64 " lsn=%" PRId64 " claims_held=%ld leases_expiring=%ld\n",
               nodes[i].node, when, nodes[i].updated_ms ? (sc.now_ms - nodes[i].updated_ms) / 1000 : -1,
               nodes[i].lsn, nodes[i].held, nodes[i].expiring);
        expiring += nodes[i].expiring;
    }
    printf("nodes=%d claims_working=%ld leases_expiring=%ld lease_ms=%" PRId64 " db=%s\n", sc.n, sc.working, expiring,
           lease_ms, db);
    mongoc_client_destroy(client);
    return 0;
}

int cmd_cluster(int argc, char **argv)
{
    const char *verb = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (!verb && strcmp(argv[i], "status") == 0)
            verb = argv[i];
        else {
            fprintf(stderr, "kasa cluster: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    if (!verb) {
        s_usage(stderr);
        return 2;
    }
    static config_t cfg;
    if (cmd_config_load(&cfg, path, "kasa cluster") != 0) {
        return 1;
    }
    int rc = 1;
    if (!cfg.mongo_uri[0])
        fprintf(stderr, "kasa cluster: KASA_MONGO_URI is not set: this kasa has no MongoDB (and no cluster)\n");
    else
        rc = s_status(&cfg);
    config_clear(&cfg);
    return rc;
}
