/* cmd_replay.c — `kasa replay DIR [--all] [--json]`: rebuild every deposit exactly as a restart
 * would (the same registry code: the newest valid snapshot, its index of finished deposits and the
 * journal after it), and show where each stands and what a restart would do with it. Read-only,
 * takes no lock: it works beside a running server.
 *
 * Without --all only unfinished deposits are shown (everything but NOTIFIED and REJECTED).
 * Exit status: 0, 1 if the journal or the index of finished deposits cannot be read to its end, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/checkpoint.h"
#include "actors/registry.h"
#include "schema/json.h"
#include "tools/commands.h"

typedef struct {
    int all, json;
    size_t shown;
    jbuf_t out;
} s_opts_t;

static int s_unfinished(const registry_entry_t *e)
{
    return e->view.state != DEPOSIT_NOTIFIED && e->view.state != DEPOSIT_REJECTED;
}

static void s_line(s_opts_t *o, const registry_entry_t *e)
{
    const deposit_view_t *v = &e->view;
    registry_resume_t act = registry_resume_action(e);
    jbuf_t *b = &o->out;
    if (o->json) {
        jbuf_puts(b, "{\"tx_id\":");
        jbuf_str(b, v->tx_id);
        jbuf_puts(b, ",\"state\":");
        jbuf_str(b, deposit_state_name(v->state));
        jbuf_puts(b, ",\"restart\":");
        jbuf_str(b, registry_resume_name(act));
        jbuf_printf(b, ",\"login\":%llu,\"attempts\":%u", (unsigned long long) v->login, e->attempts);
        jbuf_puts(b, ",\"status\":");
        jbuf_str(b, v->status);
        jbuf_puts(b, ",\"token_id\":");
        jbuf_str(b, v->token_id);
        jbuf_puts(b, ",\"amount\":");
        jbuf_str(b, v->amount);
        jbuf_puts(b, ",\"address\":");
        jbuf_str(b, v->address);
        jbuf_printf(b, ",\"confirmations\":%d,\"threshold\":%d,\"credit_minor\":%lld,\"digits\":%d,\"ticket\":%llu",
                    v->confirmations, v->threshold, (long long) v->credit_minor, v->digits,
                    (unsigned long long) v->ticket);
        jbuf_puts(b, ",\"ref\":");
        jbuf_str(b, e->ref);
        jbuf_printf(b, ",\"notice_failed\":%s,\"history_gaps\":%u,\"reason\":", e->notice_failed ? "true" : "false",
                    e->history_gaps);
        jbuf_str(b, v->reason);
        jbuf_printf(b, ",\"created_ms\":%lld,\"updated_ms\":%lld,\"lsn\":%llu}\n", (long long) v->created_ms,
                    (long long) v->updated_ms, (unsigned long long) e->last_lsn);
    } else {
        jbuf_printf(b, "%s %s restart=\"%s\" login=%llu amount=%s %s attempts=%u", v->tx_id,
                    deposit_state_name(v->state), registry_resume_name(act), (unsigned long long) v->login,
                    v->amount[0] ? v->amount : "?", v->token_id, e->attempts);
        if (v->state == DEPOSIT_PENDING)
            jbuf_printf(b, " confirmations=%d/%d", v->confirmations, v->threshold);
        if (e->history_gaps)
            jbuf_printf(b, " history_gap=yes");   /* a repair may have lost records of it: it reconciles first */
        if (v->ticket)
            jbuf_printf(b, " ticket=%llu", (unsigned long long) v->ticket);
        if (e->notice_failed)
            jbuf_puts(b, " notice=failed");
        if (v->reason[0]) {
            jbuf_puts(b, " reason=");
            jbuf_str(b, v->reason);
        }
        jbuf_puts(b, "\n");
    }
}

static void s_visit(void *arg, const registry_entry_t *e)
{
    s_opts_t *o = arg;
    if (!o->all && !s_unfinished(e))
        return;
    s_line(o, e);
    o->shown++;
}

registry_t *cmd_registry_restore(const char *dir, size_t max_deposits, checkpoint_info_t *info, char *err,
                                 size_t errlen)
{
    config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    snprintf(cfg->journal_dir, sizeof cfg->journal_dir, "%s", dir);   /* where its index of finished deposits is */
    /* No bound is useful for an offline look: take as many as the journal holds. */
    cfg->max_deposits = max_deposits ? max_deposits : (size_t) 1 << 30;
    registry_t *reg = checkpoint_restore(dir, &checkpoint_registry, cfg, 0, info, err, errlen);
    free(cfg);
    return reg;
}

static int s_usage(FILE *out)
{
    fprintf(out, "usage: kasa replay DIR [--all] [--json]\n"
                 "Rebuilds every deposit from the journal in DIR as a restart would (the newest snapshot, its\n"
                 "index of finished deposits and the records after it), and prints each unfinished\n"
                 "one (every one with --all), newest first: its state, what a restart would do with it (lock,\n"
                 "credit, reconcile then credit, notify, needs a person, waits for Cobo, none), its credit\n"
                 "attempts and the reason it is held or rejected. Read-only; safe beside a running kasa.\n"
                 "Exit status: 0, 1 if the journal (or the index) cannot be read to its end, 2 usage.\n");
    return out == stdout ? 0 : 2;
}

int cmd_replay(int argc, char **argv)
{
    s_opts_t o = { 0 };
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0)
            o.all = 1;
        else if (strcmp(argv[i], "--json") == 0)
            o.json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return s_usage(stdout);
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            return s_usage(stderr);
    }
    if (!dir)
        return s_usage(stderr);
    char err[512];
    checkpoint_info_t info;
    registry_t *reg = cmd_registry_restore(dir, 0, &info, err, sizeof err);
    if (!reg) {
        fprintf(stderr, "kasa replay: %s: %s\n", dir, err);
        return 1;
    }
    jbuf_init(&o.out);
    /* every unfinished deposit is in memory; --all reads the finished ones back from their index */
    long seen = o.all ? registry_each_all(reg, s_visit, &o) : registry_each(reg, 0, 0, s_visit, &o);
    fwrite(o.out.data ? o.out.data : "", 1, o.out.len, stdout);
    if (!o.json) {
        printf("%ld records, %zu deposits, %zu links; %zu shown%s", info.records, registry_count(reg),
               registry_link_count(reg), o.shown, o.all ? "" : " (unfinished)");
        if (info.snapshot_lsn)
            printf("; from snapshot %llu and the records after it", (unsigned long long) info.snapshot_lsn);
        printf("\n");
    }
    jbuf_free(&o.out);
    registry_destroy(&reg);
    if (seen < 0) {
        fprintf(stderr, "kasa replay: %s: the index of finished deposits cannot be read whole (kasa journal verify "
                        "%s says where): the list is incomplete\n", dir, dir);
        return 1;
    }
    return 0;
}
