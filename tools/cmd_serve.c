/* cmd_serve.c — `kasa serve --config FILE`: the service.
 *
 * Start order (each step refuses to go on with one clear line if it fails):
 *   configuration → journal (locked, replay-checked) → monitor feed and live-update hub, hooked to
 *   the journal's commit path → pipeline (replays the journal and resumes unfinished deposits) →
 *   HTTP servers (KASA_WEBHOOK_LISTEN: the webhook route alone, web/door.h, on threads no other request uses;
 *   KASA_LISTEN: investor routes and the accounts actors behind them, static panel) → control socket.
 * Stop (SIGTERM / SIGINT): the reverse — no new requests, then the pipeline's actors end, then the
 * journal closes after its last batch. Unfinished deposits resume on the next start.
 *
 * Signals are blocked in every thread (the mask is set before any thread starts, and threads
 * inherit it) and taken synchronously by the main thread with sigwait(). */
#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#undef LOG_DEBUG /* <syslog.h>, via czmq, would shadow tools/log.h's levels */
#undef LOG_INFO

#include "actors/shared.h"
#include "actors/accounts.h"
#include "actors/catchup.h"
#include "actors/chat.h"
#include "actors/wdchat.h"
#include "actors/pipeline.h"
#include "actors/projector.h"
#include "actors/registry.h"
#include "actors/checkpoint.h"
#include "journal/journal.h"
#include "tools/commands.h"
#include "schema/config.h"
#include "tools/control.h"
#include "schema/log.h"
#include "tools/monitor.h"
#include "schema/json.h"
#include "web/admin.h"
#include "web/admin_withdrawals.h"
#include "web/events.h"
#include "web/investor.h"
#include "web/metrics.h"
#include "web/http.h"
#include "web/door.h"
#include "web/webhook.h"

typedef struct {
    monitor_t *monitor;
    events_t *events;
    projector_t *projector;   /* NULL without KASA_MONGO_URI */
    metrics_t *metrics;
    chat_t *chat;             /* NULL without Telegram */
} commit_ctx_t;

/* The journal's commit callback: runs once per durable record, serially, on the commit path. It
 * must be quick and never block: both the monitor PUB send (ZMQ_DONTWAIT) and the events hub
 * (bounded per-subscriber queues) drop rather than wait. Because the journal serialises these calls,
 * the PUB socket is used by one thread at a time (see monitor.h). */
static void s_on_commit(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    commit_ctx_t *ctx = arg;
    /* decoded once for every consumer (each decoded it on its own: four msgpack decodes a record) */
    record_t rec;
    char why[96];
    const record_t *r = record_decode(payload, len, &rec, why, sizeof why) == 0 ? &rec : NULL;
    monitor_publish_record(ctx->monitor, lsn, payload, len, r);
    if (ctx->projector)
        projector_notify(ctx->projector, lsn);   /* a counter and a signal: never waits on MongoDB */
    if (!r)
        return;   /* published under topic "?" above; nothing else reads an undecodable record */
    if (ctx->events)
        events_publish_record(ctx->events, lsn, r);
    metrics_on_record(ctx->metrics, r);
    chat_on_record(ctx->chat, lsn, r);   /* queues: never waits on Telegram */
}

/* The projector's status, on the monitor feed under topic MONGO (from the projector's thread). */
static void s_on_projector_status(void *arg, const projector_status_t *st)
{
    char text[512];
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"projected_lsn\":%llu,\"journal_lsn\":%llu,\"lag_records\":%llu,\"lag_ms\":%lld,"
                "\"connected\":%s,\"error\":", (unsigned long long) st->projected_lsn,
                (unsigned long long) st->journal_lsn, (unsigned long long) st->lag_records,
                (long long) st->lag_ms, st->connected ? "true" : "false");
    jbuf_str(&b, st->error);
    jbuf_puts(&b, "}");
    snprintf(text, sizeof text, "%s", b.data);
    jbuf_free(&b);
    monitor_note(arg, MONITOR_MONGO_TOPIC, text, st->projected_lsn);
}

/* Catch-up takes deposits in exactly as the webhook route does. */
/* checkpointer_on_written: the deposits the new snapshot indexed as finished leave memory. */
static void s_forget_finished(void *arg, uint64_t lsn)
{
    char err[300];
    if (registry_forget_finished(arg, lsn, err, sizeof err) != 0)
        log_warn("registry.forget_failed", "lsn=%llu reason=\"%s\" (they stay in memory until the next snapshot)",
                 (unsigned long long) lsn, err);
}

static int s_catchup_ingest(void *arg, const cobo_tx_t *tx, char *err, size_t errlen)
{
    return pipeline_ingest(arg, tx, err, errlen);
}

static void s_count_one(void *arg, const deposit_view_t *d)
{
    (void) d;
    (*(long *) arg)++;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa serve --config FILE\n"
            "  Runs kasa: the Cobo webhook, the deposit pipeline, the panels, the monitor feed and\n"
            "  the control socket, as the configuration says (see tools/kasa.env.example). Every key can\n"
            "  also come from the environment, which wins over the file. Stops on SIGTERM or SIGINT.\n");
}

/* A verified webhook's status of a transfer kasa asked for: to the withdrawal it belongs to. */
static int s_withdrawal_status(void *arg, const cobo_tx_t *tx, char *err, size_t errlen)
{
    return pipeline_withdrawal_cobo(arg, tx->request_id, tx->tx_id, tx->status, tx->tx_hash, err, errlen);
}

int cmd_serve(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kasa serve: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }

    /* One heap for every thread, before any thread exists. glibc gives threads heaps of their own,
     * and such a heap grows by exactly what one allocation lacks, one mprotect(2) per new page: a
     * webhook's new deposit keeps about 1.4 KiB in memory, so under load about every third webhook
     * paid a heap growth. The one heap grows 128 KiB at a time (brk); its lock is short and rarely
     * contended on few cores (small blocks come from each thread's cache). Measured under
     * bench_ingest.sh (g), per answer: mprotect calls 0.40 -> 0, CPU 144/163 -> 126/130 us. */
    mallopt(M_ARENA_MAX, 1);

    /* Signals: blocked here, before any thread exists, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    zsys_handler_set(NULL);   /* czmq must not install its own SIGINT/SIGTERM handlers */

    static config_t cfg;
    char err[4096];
    if (cmd_config_load(&cfg, path, "kasa serve") != 0) {
        return 1;
    }

    char why[600];
    if (path && config_file_private(path, why, sizeof why) == 1)
        log_warn("config.not_private", "msg=\"%s\"", why);

    int rc = 1;
    journal_t *journal = NULL;
    pipeline_t *pipeline = NULL;
    http_server_t *http = NULL;        /* KASA_LISTEN: panels and APIs */
    door_t *hooks = NULL;              /* KASA_WEBHOOK_LISTEN: Cobo's webhooks alone, on threads of their own */
    webhook_t *webhook = NULL;
    control_t *control = NULL;
    commit_ctx_t ctx = { 0 };
    wallets_t *wallets = NULL;
    investor_t *investor = NULL;
    accounts_t *accounts = NULL;
    catchup_t *catchup = NULL;
    admins_t *admins = NULL;
    admin_api_t *admin_api = NULL;
    checkpointer_t *checkpointer = NULL;

    /* Metrics and health first: a long replay shows as "not ready", not as a dead process. */
    if (strcmp(cfg.metrics_listen, "off") != 0) {
        ctx.metrics = metrics_new(cfg.metrics_listen, err, sizeof err);
        if (!ctx.metrics) {
            fprintf(stderr, "kasa serve: %s (KASA_METRICS_LISTEN)\n", err);
            goto done;
        }
    }
    journal = cmd_journal_open(cfg.journal_dir, err, sizeof err);
    if (!journal) {
        fprintf(stderr, "kasa serve: cannot open the journal: %s\n", err);
        goto done;
    }
    ctx.monitor = monitor_new(cfg.monitor, err, sizeof err);
    if (!ctx.monitor) {
        fprintf(stderr, "kasa serve: %s (KASA_MONITOR)\n", err);
        goto done;
    }
    ctx.events = events_new(0);
    if (!ctx.events) {
        fprintf(stderr, "kasa serve: cannot start the live-update hub\n");
        goto done;
    }
    /* MongoDB (optional): the projector follows durable records in its own thread; unreachable is
     * logged and retried, never a reason not to serve deposits. */
    if (cfg.mongo_uri[0]) {
        projector_opts_t po = {
            .uri = cfg.mongo_uri, .db = cfg.mongo_db, .node = cfg.node_id, .journal_dir = cfg.journal_dir,
            .max_deposits = cfg.max_deposits, .batch_records = cfg.mongo_batch, .follow_notified = 1,
            .on_status = s_on_projector_status, .status_arg = ctx.monitor,
        };
        ctx.projector = projector_new(&po, err, sizeof err);
        if (!ctx.projector) {
            fprintf(stderr, "kasa serve: %s (KASA_MONGO_URI)\n", err);
            goto done;
        }
        projector_notify(ctx.projector, journal_durable_lsn(journal));
        if (projector_start(ctx.projector) != 0) {
            fprintf(stderr, "kasa serve: cannot start the MongoDB projector\n");
            goto done;
        }
    }
    /* The broker's chat (optional): held deposits, alerts and decisions, and the buttons' presses. */
    ctx.chat = chat_new(&cfg, err, sizeof err);
    if (!ctx.chat)
        log_info("chat.off", "reason=\"%s\"", err);
    metrics_set_journal(ctx.metrics, journal);
    /* Hooked before the pipeline starts, so records its replay and resumption write are published. */
    journal_on_commit(journal, s_on_commit, &ctx);

    pipeline = pipeline_new(journal, &cfg, err, sizeof err);
    if (!pipeline) {
        fprintf(stderr, "kasa serve: cannot start the pipeline: %s\n", err);
        goto done;
    }
    long deposits = 0;
    pipeline_deposits(pipeline, 0, INT_MAX, s_count_one, &deposits);
    metrics_set_pipeline(ctx.metrics, pipeline);

    http = http_server_new(cfg.listen, cfg.max_body, cfg.http_threads, err, sizeof err);
    if (!http) {
        fprintf(stderr, "kasa serve: %s (KASA_LISTEN)\n", err);
        goto done;
    }
    /* The webhook listener (web/door.h): a few event loops; a webhook waits for its record's group
     * commit without a thread. */
    door_opts_t door_opts = { .max_body = cfg.max_body, .threads = webhook_threads(cfg.http_threads),
                              .max_connections = cfg.max_connections, .max_per_client = cfg.max_connections_per_ip,
                              .header_timeout_ms = cfg.header_timeout_ms, .trusted = cfg.trusted_proxies };
    hooks = door_new(cfg.webhook_listen, &door_opts, err, sizeof err);
    if (!hooks) {
        fprintf(stderr, "kasa serve: %s (KASA_WEBHOOK_LISTEN)\n", err);
        goto done;
    }
    http_trust_proxies(http, &cfg.trusted_proxies);
    http_limits(http, cfg.header_timeout_ms, cfg.max_connections, cfg.max_connections_per_ip);
    webhook = webhook_new(pipeline, cfg.cobo_webhook_pubkey, err, sizeof err);
    if (!webhook) {
        fprintf(stderr, "kasa serve: %s (COBO_WEBHOOK_PUBKEY)\n", err);
        goto done;
    }
    webhook_on_withdrawal(webhook, s_withdrawal_status, pipeline);
    webhook_elsewhere(http);
    metrics_set_webhook(ctx.metrics, webhook);
    /* The investor panel's API (web/investor.h): wallets learn the links already journaled, and
     * every link committed later through the events hub. */
    wallets = wallets_new_for_pipeline(&cfg, pipeline, err, sizeof err);
    if (!wallets) {
        fprintf(stderr, "kasa serve: %s (COBO_*, KASA_CHAINS)\n", err);
        goto done;
    }
    /* Investors' MT5 work runs on the accounts actors, never on an HTTP thread. */
    accounts = accounts_new(&cfg, NULL, err, sizeof err);
    if (!accounts) {
        fprintf(stderr, "kasa serve: %s\n", err);
        goto done;
    }
    metrics_set_accounts(ctx.metrics, accounts);
    investor = investor_routes(http, pipeline, wallets, ctx.events, accounts, &cfg, NULL, err, sizeof err);
    if (!investor) {
        fprintf(stderr, "kasa serve: %s\n", err);
        goto done;
    }
    http_static(http, cfg.static_dir);

    admins = admins_new();
    if (!admins || checkpoint_restore_into(cfg.journal_dir, &checkpoint_admins, &cfg, admins, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "kasa serve: admin accounts: %s\n", admins ? err : "out of memory");
        goto done;
    }
    /* Cluster mode: the accounts are shared through MongoDB, learned every second (actors/shared.h). */
    if (pipeline_shared(pipeline) && shared_admins_attach(pipeline_shared(pipeline), admins, journal, 1000) != 0) {
        fprintf(stderr, "kasa serve: cannot start the admins' sync\n");
        goto done;
    }
    admin_api = admin_routes(http, pipeline, admins, journal, &cfg, NULL, NULL, err, sizeof err);
    if (!admin_api) {
        fprintf(stderr, "kasa serve: %s\n", err);
        goto done;
    }
    if (admin_withdrawals_routes(admin_api, pipeline, &cfg) != 0) {
        fprintf(stderr, "kasa serve: the admin API has no room for the withdrawal routes\n");
        goto done;
    }
    admin_live(admin_api, ctx.events);
    if (wdchat_attach(ctx.chat, pipeline, &cfg) != 0) {
        fprintf(stderr, "kasa serve: Telegram: no room for the withdrawals' buttons\n");
        goto done;
    }
    if (ctx.chat && chat_start(ctx.chat, pipeline, admins, err, sizeof err) != 0) {
        fprintf(stderr, "kasa serve: Telegram: %s\n", err);
        goto done;
    }
    control = control_new(cfg.control, pipeline, admins, journal, err, sizeof err);
    if (!control) {
        fprintf(stderr, "kasa serve: %s (KASA_CONTROL)\n", err);
        goto done;
    }
    static cmd_withdrawal_verb_t wd_verb;
    wd_verb = (cmd_withdrawal_verb_t) { pipeline, admins };
    if (control_verb(control, "withdrawal", cmd_withdrawal_verb, &wd_verb) != 0) {
        fprintf(stderr, "kasa serve: control socket: no verb slot for withdrawals\n");
        goto done;
    }
    /* Missed webhooks: scheduled passes (the first at once) and `kasa catchup` over the control socket. */
    catchup = catchup_new(&cfg, s_catchup_ingest, pipeline, err, sizeof err);
    if (!catchup || control_verb(control, "catchup", cmd_catchup_verb, catchup) != 0) {
        fprintf(stderr, "kasa serve: catch-up: %s (COBO_*, KASA_CATCHUP_*)\n", catchup ? "no verb slot" : err);
        goto done;
    }
    metrics_set_catchup(ctx.metrics, catchup);
    /* Snapshots of what a start rebuilds, written aside at KASA_SNAPSHOT_EVERY_* (actors/checkpoint.h). */
    checkpointer = checkpointer_new(journal, &cfg, err, sizeof err);
    if (!checkpointer) {
        fprintf(stderr, "kasa serve: %s\n", err);
        goto done;
    }
    checkpointer_on_written(checkpointer, s_forget_finished, pipeline_registry(pipeline));
    checkpointer_use_process(checkpointer, "/proc/self/exe");   /* this very binary, even if replaced on disk */
    metrics_set_replayed(ctx.metrics);   /* before the first request can be answered */
    /* Every route is in place: only now are connections accepted (they waited in the backlog). */
    if (http_server_start(http, err, sizeof err) != 0) {
        fprintf(stderr, "kasa serve: %s (KASA_LISTEN)\n", err);
        goto done;
    }
    if (door_start(hooks, webhook, err, sizeof err) != 0) {
        fprintf(stderr, "kasa serve: %s (KASA_WEBHOOK_LISTEN)\n", err);
        goto done;
    }

    char host[64];
    snprintf(host, sizeof host, "%s", cfg.listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    char hook_host[64];
    snprintf(hook_host, sizeof hook_host, "%s", cfg.webhook_listen);
    colon = strrchr(hook_host, ':');
    if (colon)
        *colon = '\0';
    log_info("kasa.started", "listen=%s:%d webhook_listen=%s:%d journal=%s lsn=%llu deposits=%ld monitor=%s "
             "control=%s threads=%d metrics=%s metrics_port=%d", host, http_server_port(http), hook_host, door_port(hooks), cfg.journal_dir,
             (unsigned long long) journal_durable_lsn(journal), deposits, cfg.monitor, cfg.control,
             cfg.http_threads, cfg.metrics_listen, ctx.metrics ? metrics_port(ctx.metrics) : 0);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    log_info("kasa.stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
    rc = 0;

done:
    metrics_destroy(&ctx.metrics);       /* no scrape reads a source after this */
    control_destroy(&control);
    accounts_close(accounts);            /* every investor request waiting for MT5 is answered now */
    catchup_destroy(&catchup);           /* before the pipeline it feeds */
    http_server_destroy(&http);          /* no request is in flight after this */
    door_destroy(&hooks);                /* every webhook waiting for its record answered first */
    investor_destroy(&investor);
    accounts_destroy(&accounts);         /* waits for a running MT5 call to end */
    admin_api_destroy(&admin_api);
    webhook_destroy(&webhook);
    chat_stop(ctx.chat);                 /* no press reaches the pipeline or the admins after this */
    checkpointer_destroy(&checkpointer); /* a snapshot being written is finished first */
    pipeline_destroy(&pipeline);         /* actors end; unfinished work resumes on the next start */
    journal_destroy(&journal);           /* last batch written; no commit callback after this */
    chat_destroy(&ctx.chat);
    projector_destroy(&ctx.projector);   /* after the last notify; before the monitor it reports to */
    wallets_destroy(&wallets);           /* after the last commit callback (events teach it links) */
    admins_destroy(&admins);
    uint64_t sent = monitor_sent(ctx.monitor), dropped = monitor_dropped(ctx.monitor);
    events_destroy(&ctx.events);
    monitor_destroy(&ctx.monitor);
    if (rc == 0)
        log_info("kasa.stopped", "monitor_sent=%llu monitor_dropped=%llu", (unsigned long long) sent,
                 (unsigned long long) dropped);
    config_clear(&cfg);
    return rc;
}
