/* cmd_withdrawal.c — `kasa withdrawal list|show|approve|reject|refund|retransfer`: operators and
 * withdrawals.
 *
 * list and show read the newest snapshot and the journal after it, show also the withdrawal's records
 * still in the journal and its archive (safe while kasa runs: only durable records are read). The actions
 * go to a running server's control socket when one holds the journal (the server journals the action
 * and hands the withdrawal to the withdrawer before it answers); when none runs, this command opens
 * the journal itself (taking its lock), replays it, and journals the action the same way
 * (withdrawals_desk: the same table, the same checks); the next start hands the withdrawal on.
 * Either way the action is journaled with who (cli:USER, or --actor), when, from where and the
 * reason, or refused with nothing journaled. An --actor admin:NAME must be an enabled admin account
 * whose role decides withdrawals (ADMIN_WITHDRAW_DECIDE), as in the panel and in Telegram; a cli:USER
 * actor is the host's own operator (who holds the configuration and the journal). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/admins.h"
#include "actors/mt5.h"
#include "actors/pipeline.h"
#include "actors/checkpoint.h"
#include "actors/withdrawals.h"
#include "actors/withdrawer.h"
#include "journal/journal.h"
#include "schema/admin.h"
#include "schema/config.h"
#include "schema/json.h"
#include "schema/record.h"
#include "tools/commands.h"
#include "tools/control.h"

#define WITHDRAWAL_CONTROL_TIMEOUT_MS 30000

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa withdrawal list [--state STATE] [--login N] [--json] --config FILE\n"
            "       kasa withdrawal show ID [--json] --config FILE\n"
            "       kasa withdrawal approve|reject|refund|retransfer ID --reason TEXT [--actor NAME] --config FILE\n"
            "  list        withdrawals, newest first\n"
            "  show        every journal record of one withdrawal, as a timeline\n"
            "  approve     approve a DEBITED withdrawal (above KASA_WITHDRAW_DUAL_APPROVAL_LIMIT two different\n"
            "              approvers are needed); the last approval sends the transfer\n"
            "  reject      reject a DEBITED withdrawal: the debit is refunded\n"
            "  refund      refund a HELD withdrawal (Cobo's transfer failed or was refused)\n"
            "  retransfer  transfer a HELD withdrawal again under a new request_id\n"
            "Every action is journaled with who, when, from where and the reason; works with or without\n"
            "a running server.\n");
}

static void s_iso(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Every withdrawal, from the newest valid snapshot and the journal after it (as a start rebuilds
 * them: the archive's pruned history is not needed); NULL with a message on failure. */
static withdrawals_t *s_replay(const config_t *cfg)
{
    char err[512];
    withdrawals_t *wd = checkpoint_restore(cfg->journal_dir, &checkpoint_withdrawals, cfg, 0, NULL, err, sizeof err);
    if (!wd)
        fprintf(stderr, "kasa withdrawal: cannot read the journal: %s\n", err);
    return wd;
}

typedef struct {
    int state;
    int json;
    jbuf_t *b;
    size_t shown;
} s_list_t;

static void s_list_one(void *arg, const withdrawal_view_t *w)
{
    s_list_t *l = arg;
    if (l->state >= 0 && (int) w->state != l->state)
        return;
    jbuf_reset(l->b);
    if (l->json) {
        withdrawals_view_json(l->b, w);
    } else {
        char when[32], amount[48] = "";
        s_iso(w->created_ms, when, sizeof when);
        money_format_minor(w->amount_minor, w->digits, amount, sizeof amount);
        jbuf_printf(l->b, "%s  %-9s %s  %s %s → %s %s  login=%" PRIu64 "  to=%s", when, withdrawal_state_name(w->state),
                    w->id, amount, w->currency, w->amount, w->token_id, w->login, w->address);
        if (w->approvals)
            jbuf_printf(l->b, "  approvals=%u", (unsigned) w->approvals);
        if (w->tx_hash[0])
            jbuf_printf(l->b, "  hash=%s", w->tx_hash);
        if (w->reason[0])
            jbuf_printf(l->b, "  reason=\"%s\"", w->reason);
    }
    jbuf_puts(l->b, "\n");
    fwrite(l->b->data, 1, l->b->len, stdout);
    l->shown++;
}

static int s_list(const config_t *cfg, int state, uint64_t login, int json)
{
    withdrawals_t *wd = s_replay(cfg);
    if (!wd)
        return 1;
    jbuf_t b;
    jbuf_init(&b);
    s_list_t l = { state, json, &b, 0 };
    withdrawals_each(wd, login, 0, s_list_one, &l);
    if (!json)
        printf("%zu withdrawal%s\n", l.shown, l.shown == 1 ? "" : "s");
    jbuf_free(&b);
    withdrawals_destroy(&wd);
    return 0;
}

/* The withdrawal as it stands now (text: one line first; --json: only when no record of it is left),
 * then every journal record of it still on disk, read from its first record to its last only (where
 * the withdrawals' replay says they are: an old withdrawal costs what its own records span, not a
 * scan of the whole history). Records pruned from the archive (`kasa journal archive --prune-before`)
 * are gone, but the withdrawal is not: the snapshot carries it. */
static int s_show(const config_t *cfg, const char *id, int json)
{
    withdrawals_t *wd = s_replay(cfg);
    if (!wd)
        return 1;
    withdrawal_view_t w;
    int known = withdrawals_get(wd, id, &w) == 0;
    withdrawals_destroy(&wd);
    jbuf_t b;
    jbuf_init(&b);
    s_list_t l = { -1, json, &b, 0 };
    if (known && !json) {
        fputs("now: ", stdout);
        s_list_one(&l, &w);
    }
    int found = 0;
    int rc = cmd_show_timeline(cfg->journal_dir, id, json, "kasa withdrawal", "withdrawal", known ? w.first_lsn : 0,
                               known ? w.last_lsn : 0, known ? &found : NULL);
    if (known && rc == 0 && !found) {
        if (json)
            s_list_one(&l, &w);
        else
            printf("(no journal record of it is left: its history before the newest snapshot was pruned)\n");
    }
    jbuf_free(&b);
    return rc;
}

typedef struct {
    const config_t *cfg;
    const char *action, *id, *actor, *origin, *reason;
} s_act_t;

int cmd_withdrawal_actor_may(admins_t *admins, const char *actor, char *err, size_t errlen)
{
    if (!actor || strncmp(actor, "admin:", 6) != 0)
        return 0;   /* cli:USER: the host's operator */
    admin_view_t a;
    if (admins_get(admins, actor + 6, &a) != 0 || a.disabled) {
        snprintf(err, errlen, "%.70s is not an enabled admin account", actor);
        return -1;
    }
    if (!admin_may(a.role, ADMIN_WITHDRAW_DECIDE)) {
        snprintf(err, errlen, "%.70s (%s) may not decide withdrawals (%s: treasurer, owner)", actor,
                 admin_role_name(a.role), admin_action_name(ADMIN_WITHDRAW_DECIDE));
        return -1;
    }
    return 0;
}

static int s_act_offline(journal_t *journal, void *arg)
{
    const s_act_t *a = arg;
    withdrawals_t *wd = s_replay(a->cfg);
    if (!wd)
        return 1;
    int rc = 1;
    withdrawal_view_t w;
    char err[256] = "";
    admins_t *ad = admins_new();
    if (!ad || admins_replay(ad, a->cfg->journal_dir, err, sizeof err) < 0) {
        fprintf(stderr, "kasa withdrawal: admin accounts: %s\n", ad ? err : "out of memory");
    } else if (cmd_withdrawal_actor_may(ad, a->actor, err, sizeof err) != 0) {
        fprintf(stderr, "kasa withdrawal: refused: %s\n", err);
    } else if (withdrawals_get(wd, a->id, &w) != 0) {
        fprintf(stderr, "kasa withdrawal: refused: no withdrawal %s\n", a->id);
    } else {
        unsigned fx = 0;
        int noted = 0;
        registry_result_t res = withdrawals_desk(wd, journal, a->id, a->action, a->actor, a->origin, a->reason,
                                                 withdrawer_approvals_needed(a->cfg, &w), &fx, &noted, err, sizeof err);
        if (res == REGISTRY_MOVED || (res == REGISTRY_SAME && noted)) {
            printf("%s %s%s (journaled; no server was running: its next start hands the withdrawal on)\n", a->action,
                   a->id, noted ? ": noted, another approver must approve too" : "");
            rc = 0;
        } else {
            fprintf(stderr, "kasa withdrawal: refused: %s\n", err);
        }
    }
    admins_destroy(&ad);
    withdrawals_destroy(&wd);
    return rc;
}

int cmd_withdrawal_verb(void *arg, char *const *f, int n, char *reply, size_t replylen)
{
    /* "withdrawal" ACTION ID ACTOR ORIGIN REASON */
    if (n != 6) {
        snprintf(reply, replylen, "malformed request");
        return -1;
    }
    const cmd_withdrawal_verb_t *v = arg;
    char err[256] = "";
    if (cmd_withdrawal_actor_may(v->admins, f[3], err, sizeof err) != 0) {
        snprintf(reply, replylen, "%s", err);
        return -1;
    }
    int rc = pipeline_withdraw_act(v->pipeline, f[2], f[1], f[3], f[4], f[5], err, sizeof err);
    if (rc < 0) {
        snprintf(reply, replylen, "%s", err[0] ? err : "refused");
        return -1;
    }
    if (rc == 2)   /* cluster mode: the node holding the withdrawal carries it out */
        snprintf(reply, replylen, "%s", err);
    else
        snprintf(reply, replylen, "%s %s%s", f[1], f[2], rc == 1 ? ": noted, another approver must approve too" : "");
    return 0;
}

int cmd_withdrawal(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    const char *path = NULL, *reason = NULL, *actor_arg = NULL, *state_arg = NULL, *login_arg = NULL, *id = NULL;
    int json = 0, npos = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--config") == 0 && has) path = argv[++i];
        else if (strcmp(a, "--reason") == 0 && has) reason = argv[++i];
        else if (strcmp(a, "--actor") == 0 && has) actor_arg = argv[++i];
        else if (strcmp(a, "--state") == 0 && has) state_arg = argv[++i];
        else if (strcmp(a, "--login") == 0 && has) login_arg = argv[++i];
        else if (strcmp(a, "--json") == 0) json = 1;
        else if (a[0] != '-' && npos++ == 0) id = a;
        else {
            fprintf(stderr, "kasa withdrawal: unexpected argument '%s'\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    int is_list = strcmp(verb, "list") == 0, is_show = strcmp(verb, "show") == 0;
    int is_act = strcmp(verb, "approve") == 0 || strcmp(verb, "reject") == 0 || strcmp(verb, "refund") == 0 ||
                 strcmp(verb, "retransfer") == 0;
    if ((!is_list && !is_show && !is_act) || (is_list ? npos != 0 : npos != 1)) {
        s_usage(stderr);
        return 2;
    }
    if (id && !withdrawal_id_valid(id)) {
        fprintf(stderr, "kasa withdrawal: ID must be w followed by 20 lower-case hex digits, got '%s'\n", id);
        return 2;
    }
    int state = -1;
    uint64_t login = 0;
    if (state_arg && (state = withdrawal_state_from_name(state_arg)) < 0) {
        fprintf(stderr, "kasa withdrawal: unknown state '%s' (REQUESTED, DEBITED, APPROVED, SENT, COMPLETED, HELD, "
                        "REJECTED, REFUNDING, REFUNDED)\n", state_arg);
        return 2;
    }
    if (login_arg && mt5_parse_login(login_arg, &login) != 0) {
        fprintf(stderr, "kasa withdrawal: LOGIN must be a positive whole number\n");
        return 2;
    }
    if (is_act && (!reason || !reason[0])) {
        fprintf(stderr, "kasa withdrawal: %s needs --reason TEXT (it is journaled with the action)\n", verb);
        return 2;
    }
    static config_t cfg;
    if (cmd_config_load(&cfg, path, "kasa withdrawal") != 0) {
        return 1;
    }
    int rc;
    if (is_list) {
        rc = s_list(&cfg, state, login, json);
    } else if (is_show) {
        rc = s_show(&cfg, id, json);
    } else {
        char actor[64], origin[64];
        cmd_actor_origin(actor, sizeof actor, origin, sizeof origin);
        if (actor_arg)
            snprintf(actor, sizeof actor, "%s", actor_arg);
        const char *frames[] = { "withdrawal", verb, id, actor, origin, reason };
        s_act_t a = { &cfg, verb, id, actor, origin, reason };
        rc = control_or_offline("withdrawal", cfg.journal_dir, cfg.control, s_act_offline, NULL, &a, frames, 6,
                                WITHDRAWAL_CONTROL_TIMEOUT_MS);
    }
    config_clear(&cfg);
    return rc;
}
