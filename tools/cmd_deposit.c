/* cmd_deposit.c — `kasa deposit list|show|retry|assign|approve|reject`: operators and deposits.
 *
 * list and show read what a start reads (safe while kasa runs: only durable records are read): the
 * newest snapshot, its index of finished deposits and the journal after it; show then reads the
 * deposit's own records, wherever they are (the archive too).
 * The actions go, like `kasa wallet link`, to a running server's control socket when one holds the
 * journal (the server journals the action and hands the deposit on before it answers); when none
 * runs, this command opens the journal itself (taking its lock, so a server cannot start meanwhile),
 * replays it, and journals the action the same way (desk_act: the same table, the same checks); the
 * next start hands a deposit sent back to the locker on. Either way the action is journaled with who
 * (cli:USER, or --actor), when, from where (cli:HOST TTY) and the reason, or refused with nothing
 * journaled. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/desk.h"
#include "actors/mt5.h"
#include "actors/registry.h"
#include "journal/journal.h"
#include "schema/config.h"
#include "schema/json.h"
#include "schema/record.h"
#include "tools/commands.h"
#include "tools/control.h"

#define DEPOSIT_CONTROL_TIMEOUT_MS 30000   /* an assign asks MT5 first */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa deposit list [--state STATE] [--login N] [--since DATE] [--json] --config FILE\n"
            "       kasa deposit show TX [--json] --config FILE\n"
            "       kasa deposit retry TX --reason TEXT [--actor NAME] --config FILE\n"
            "       kasa deposit assign TX LOGIN --reason TEXT [--actor NAME] --config FILE\n"
            "       kasa deposit approve TX --reason TEXT [--actor NAME] --config FILE\n"
            "       kasa deposit reject TX --reason TEXT [--actor NAME] --config FILE\n"
            "  list     deposits, newest first (DATE: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC)\n"
            "  show     every journal record of one deposit, as a timeline\n"
            "  retry    a HELD deposit back through the locker (the crediter reconciles first)\n"
            "  assign   credit a HELD deposit to LOGIN (MT5 must know it)\n"
            "  approve  approve a deposit held over KASA_AUTO_CREDIT_LIMIT (over KASA_DUAL_APPROVAL_LIMIT\n"
            "           two different approvers are needed)\n"
            "  reject   reject a HELD deposit for good\n"
            "Every action is journaled with who, when, from where and the reason; works with or without\n"
            "a running server.\n");
}

void cmd_actor_origin(char *actor, size_t actor_len, char *origin, size_t origin_len)
{
    const struct passwd *pw = getpwuid(getuid());
    snprintf(actor, actor_len, "cli:%.40s", pw && pw->pw_name ? pw->pw_name : "operator");
    char host[64] = "";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    const char *tty = ttyname(STDIN_FILENO);
    snprintf(origin, origin_len, "cli:%.32s %.24s", host, tty ? tty : "no-tty");
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

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC) → Unix ms; -1 if neither. */
static int s_parse_date(const char *text, int64_t *ms)
{
    struct tm tm = { 0 };
    const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) {
        memset(&tm, 0, sizeof tm);
        end = strptime(text, "%Y-%m-%d", &tm);
        if (!end || *end)
            return -1;
    }
    *ms = (int64_t) timegm(&tm) * 1000;
    return 0;
}

/* ---- list -------------------------------------------------------------------------------------- */

typedef struct {
    int state;          /* -1: any */
    int64_t since_ms;
    int json;
    jbuf_t *b;
    size_t shown;
} s_list_t;

static void s_list_one(void *arg, const registry_entry_t *e)
{
    s_list_t *l = arg;
    const deposit_view_t *d = &e->view;
    if ((l->state >= 0 && (int) d->state != l->state) || d->created_ms < l->since_ms)
        return;
    jbuf_reset(l->b);
    if (l->json) {
        desk_entry_json(l->b, e);
    } else {
        char when[32];
        s_iso(d->created_ms, when, sizeof when);
        jbuf_printf(l->b, "%s  %-8s %s  %s %s  login=%" PRIu64 "  address=%s", when, deposit_state_name(d->state),
                    d->tx_id, d->amount[0] ? d->amount : "?", d->token_id, d->login, d->address);
        if (e->approvals)
            jbuf_printf(l->b, "  approvals=%u", (unsigned) e->approvals);
        if (d->reason[0])
            jbuf_printf(l->b, "  reason=\"%s\"", d->reason);
    }
    jbuf_puts(l->b, "\n");
    fwrite(l->b->data, 1, l->b->len, stdout);
    l->shown++;
}

/* Every deposit as a start has them: the newest valid snapshot, its index of finished deposits and
 * the journal after it. NULL after printing why. */
static registry_t *s_restore(const config_t *cfg)
{
    char err[512];
    registry_t *reg = cmd_registry_restore(cfg->journal_dir, cfg->max_deposits, NULL, err, sizeof err);
    if (!reg)
        fprintf(stderr, "kasa deposit: cannot read the journal: %s\n", err);
    return reg;
}

static int s_list(const config_t *cfg, int state, uint64_t login, int64_t since_ms, int json)
{
    registry_t *reg = s_restore(cfg);
    if (!reg)
        return 1;
    jbuf_t b;
    jbuf_init(&b);
    s_list_t l = { state, since_ms, json, &b, 0 };
    /* a login's own listing reads only its part of the index; all of them, the whole index */
    long seen = login ? registry_each(reg, login, 0, s_list_one, &l) : registry_each_all(reg, s_list_one, &l);
    if (!json)
        printf("%zu deposit%s\n", l.shown, l.shown == 1 ? "" : "s");
    jbuf_free(&b);
    registry_destroy(&reg);
    if (seen < 0) {
        fprintf(stderr, "kasa deposit: the index of finished deposits cannot be read whole (kasa journal verify "
                        "says where): the list is incomplete\n");
        return 1;
    }
    return 0;
}

/* ---- show -------------------------------------------------------------------------------------- */

int cmd_show_timeline(const char *journal_dir, const char *id, int json, const char *command, const char *noun,
                      uint64_t from_lsn, uint64_t upto_lsn, int *found_out)
{
    char err[512];
    journal_reader_t *rd = journal_reader_open(journal_dir, from_lsn ? from_lsn : 1, err, sizeof err);
    if (!rd) {
        fprintf(stderr, "%s: cannot read the journal: %s\n", command, err);
        return 1;
    }
    record_t *r = malloc(sizeof *r);
    jbuf_t b;
    jbuf_init(&b);
    journal_entry_t je;
    int got = 0, found = 0;
    while (r && (got = journal_reader_next(rd, &je)) == 1) {
        if (upto_lsn && je.lsn > upto_lsn)
            break;
        if (je.lsn < from_lsn || record_decode(je.payload, je.len, r, err, sizeof err) != 0 ||
            strcmp(r->tx_id, id) != 0)
            continue;
        jbuf_reset(&b);
        if (json) {
            record_to_json(r, je.lsn, &b);
        } else {
            char when[32];
            s_iso(r->time_ms, when, sizeof when);
            jbuf_printf(&b, "%s  ", when);
            record_to_line(r, je.lsn, &b);
        }
        jbuf_puts(&b, "\n");
        fwrite(b.data, 1, b.len, stdout);
        found++;
    }
    int rc = 0;
    if (r && got < 0) {
        fprintf(stderr, "%s: %s\n", command, journal_reader_error(rd));
        rc = 1;
    } else if (!found && !found_out) {
        fprintf(stderr, "%s: unknown %s %s\n", command, noun, id);
        rc = 1;
    }
    if (found_out)
        *found_out = found;
    jbuf_free(&b);
    free(r);
    journal_reader_destroy(&rd);
    return rc;
}

/* The deposit's journal records, read from its first record to its last only (where a start's
 * registry says they are, so an old deposit costs what its own records span, not a replay). Records
 * pruned from the archive are gone, the deposit is not: the index of finished deposits carries it, and
 * it is shown as it stands (text: a "now:" line and a note; --json: its entry). */
static int s_show(const config_t *cfg, const char *tx, int json)
{
    registry_t *reg = s_restore(cfg);
    registry_entry_t *e = malloc(sizeof *e);
    if (!reg || !e) {
        if (reg)
            fprintf(stderr, "kasa deposit: out of memory\n");
        registry_destroy(&reg);
        free(e);
        return 1;
    }
    uint64_t first_lsn = 0;
    int known = registry_lookup(reg, tx, e, &first_lsn);
    registry_destroy(&reg);
    int rc = 1, found = 0;
    if (known < 0) {
        fprintf(stderr, "kasa deposit: cannot tell whether %s is known: the index of finished deposits cannot be "
                        "read (kasa journal verify says where)\n", tx);
    } else if (known == 0) {
        fprintf(stderr, "kasa deposit: unknown deposit %s\n", tx);
    } else if ((rc = cmd_show_timeline(cfg->journal_dir, tx, json, "kasa deposit", "deposit", first_lsn, e->last_lsn,
                                       &found)) == 0 && !found) {
        jbuf_t b;
        jbuf_init(&b);
        s_list_t l = { -1, 0, json, &b, 0 };
        if (!json)
            fputs("now: ", stdout);
        s_list_one(&l, e);
        if (!json)
            printf("(no journal record of it is left: its history before the newest snapshot was pruned)\n");
        jbuf_free(&b);
    }
    free(e);
    return rc;
}

/* ---- actions ----------------------------------------------------------------------------------- */

typedef struct {
    const config_t *cfg;
    const desk_request_t *req;
} s_act_t;

/* Without a server: the journal is ours for the duration. */
static int s_act_offline(journal_t *journal, void *arg)
{
    const s_act_t *a = arg;
    const config_t *cfg = a->cfg;
    char err[512];
    registry_t *reg = registry_new(cfg->max_deposits ? cfg->max_deposits : CONFIG_DEFAULT_MAX_DEPOSITS);
    if (!reg) {
        fprintf(stderr, "kasa deposit: out of memory\n");
        return 1;
    }
    int rc = 1;
    if (registry_replay(reg, cfg->journal_dir, err, sizeof err) < 0) {
        fprintf(stderr, "kasa deposit: cannot replay the journal: %s\n", err);
    } else {
        registry_result_t res = desk_act(reg, journal, cfg, a->req, NULL, NULL, NULL, err, sizeof err);
        if (res == REGISTRY_MOVED || res == REGISTRY_SAME) {
            char text[400];
            desk_describe(a->req->action, res == REGISTRY_SAME, a->req->tx_id, a->req->login, text, sizeof text);
            printf("%s (journaled; no server was running: its next start hands the deposit on)\n", text);
            rc = 0;
        } else {
            fprintf(stderr, "kasa deposit: refused: %s\n", err);
        }
    }
    registry_destroy(&reg);
    return rc;
}

static int s_act(const config_t *cfg, const desk_request_t *req)
{
    char login_s[24] = "";
    if (req->login)
        snprintf(login_s, sizeof login_s, "%" PRIu64, req->login);
    const char *frames[] = { "deposit", desk_action_name(req->action), req->tx_id, login_s, req->actor, req->origin,
                             req->reason };
    s_act_t a = { cfg, req };
    return control_or_offline("deposit", cfg->journal_dir, cfg->control, s_act_offline, NULL, &a, frames, 7,
                              DEPOSIT_CONTROL_TIMEOUT_MS);
}

int cmd_deposit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    const char *path = NULL, *reason = NULL, *actor_arg = NULL, *state_arg = NULL, *login_arg = NULL,
               *since_arg = NULL;
    const char *pos[2] = { NULL, NULL };
    int npos = 0, json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--config") == 0 && has) path = argv[++i];
        else if (strcmp(a, "--reason") == 0 && has) reason = argv[++i];
        else if (strcmp(a, "--actor") == 0 && has) actor_arg = argv[++i];
        else if (strcmp(a, "--state") == 0 && has) state_arg = argv[++i];
        else if (strcmp(a, "--login") == 0 && has) login_arg = argv[++i];
        else if (strcmp(a, "--since") == 0 && has) since_arg = argv[++i];
        else if (strcmp(a, "--json") == 0) json = 1;
        else if (a[0] != '-' && npos < 2) pos[npos++] = a;
        else {
            fprintf(stderr, "kasa deposit: unexpected argument '%s'\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    int is_list = strcmp(verb, "list") == 0, is_show = strcmp(verb, "show") == 0;
    int action = desk_action_from_name(verb);
    int want_pos = is_list ? 0 : action == DESK_ASSIGN ? 2 : 1;
    if ((!is_list && !is_show && action < 0) || npos != want_pos) {
        s_usage(stderr);
        return 2;
    }
    int state = -1;
    uint64_t login = 0;
    int64_t since_ms = 0;
    if (state_arg && (state = deposit_state_from_name(state_arg)) < 0) {
        fprintf(stderr, "kasa deposit: unknown state '%s' (PENDING, RECEIVED, LOCKED, CREDITED, NOTIFIED, HELD, "
                        "REJECTED)\n", state_arg);
        return 2;
    }
    if ((login_arg && mt5_parse_login(login_arg, &login) != 0) ||
        (action == DESK_ASSIGN && mt5_parse_login(pos[1], &login) != 0)) {
        fprintf(stderr, "kasa deposit: LOGIN must be a positive whole number\n");
        return 2;
    }
    if (since_arg && s_parse_date(since_arg, &since_ms) != 0) {
        fprintf(stderr, "kasa deposit: --since takes YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC), got '%s'\n", since_arg);
        return 2;
    }
    if (action >= 0 && (!reason || !reason[0])) {
        fprintf(stderr, "kasa deposit: %s needs --reason TEXT (it is journaled with the action)\n", verb);
        return 2;
    }
    if (pos[0] && (!pos[0][0] || strlen(pos[0]) >= sizeof ((record_t *) 0)->tx_id)) {
        fprintf(stderr, "kasa deposit: TX must be 1 to 79 characters\n");
        return 2;
    }
    static config_t cfg;
    if (cmd_config_load(&cfg, path, "kasa deposit") != 0) {
        return 1;
    }
    int rc;
    if (is_list) {
        rc = s_list(&cfg, state, login, since_ms, json);
    } else if (is_show) {
        rc = s_show(&cfg, pos[0], json);
    } else {
        char actor[64], origin[64];
        cmd_actor_origin(actor, sizeof actor, origin, sizeof origin);
        if (actor_arg)
            snprintf(actor, sizeof actor, "%s", actor_arg);
        desk_request_t req = { pos[0], (desk_action_t) action, action == DESK_ASSIGN ? login : 0, actor, origin, reason };
        rc = s_act(&cfg, &req);
    }
    config_clear(&cfg);
    return rc;
}
