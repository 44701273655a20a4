/* cmd_admin.c — `kasa admin add|list|disable|reset`: the broker's admin accounts.
 *
 * add and reset make a one-time password and a TOTP secret and show them once: the password, the
 * otpauth:// URI and its QR code (for an authenticator app); the first login with them sets a new
 * password. Like `kasa deposit`, the change goes to a running server's control socket, or is
 * journaled on the journal itself when no server runs; either way it is journaled with who
 * (cli:USER) and from where (cli:HOST TTY). In cluster mode the offline path first learns every
 * account MongoDB has and stores the change there (write concern majority) before journaling it,
 * as a running node does (actors/shared.h); MongoDB unreachable: refused, nothing changed. list
 * reads the journal (safe while kasa runs). */
#include <inttypes.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/admins.h"
#include "actors/shared.h"
#include "journal/journal.h"
#include "schema/config.h"
#include "schema/json.h"
#include "schema/totp.h"
#include "tools/commands.h"
#include "tools/control.h"
#include "web/qr.h"

#define ADMIN_CONTROL_TIMEOUT_MS 30000
#define ADMIN_MONGO_TIMEOUT_MS 3000
#define ADMIN_ISSUER "kasa"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa admin add NAME --role viewer|operator|approver|treasurer|owner --config FILE\n"
            "       kasa admin list [--json] --config FILE\n"
            "       kasa admin disable NAME --config FILE\n"
            "       kasa admin reset NAME --config FILE\n"
            "  add      a new admin: prints a one-time password and the authenticator (TOTP) QR code, once\n"
            "  disable  the admin can no longer log in\n"
            "  reset    a new one-time password and authenticator secret (a lost phone, a forgotten password)\n"
            "Roles: viewer sees everything; operator also retries and assigns held deposits; approver also\n"
            "approves and rejects them; treasurer is an approver who also decides withdrawals; owner may do\n"
            "everything, managing admins included.\n");
}

typedef struct {
    const config_t *cfg;
    const char *verb, *name, *actor, *origin;
    admin_role_t role;
} s_req_t;

/* Shows freshly issued credentials: the one-time password, the otpauth URI and its QR code. */
static int s_show_credentials(const s_req_t *q, const char *password, const char *secret, const char *how)
{
    char uri[256];
    if (totp_uri(ADMIN_ISSUER, q->name, secret, uri, sizeof uri) != 0) {
        fprintf(stderr, "kasa admin: cannot build the otpauth URI\n");
        return 1;
    }
    char *qr = qr_terminal(uri);
    printf("admin %s %s (%s)\n\n"
           "one-time password: %s\n"
           "  shown once; the first login must set a new password.\n\n"
           "authenticator (TOTP, SHA1, 6 digits, 30 s): scan the code or enter the URI\n%s\n%s\n",
           q->name, strcmp(q->verb, "add") == 0 ? "added" : "reset", how, password, uri, qr ? qr : "");
    free(qr);
    sodium_memzero(uri, sizeof uri);
    return 0;
}

static int s_online(const char *reply, void *arg)
{
    const s_req_t *q = arg;
    if (strcmp(q->verb, "disable") == 0) {
        printf("%s (journaled by the running server)\n", reply);
        return 0;
    }
    char password[ADMINS_OTP_LEN] = "", secret[ADMINS_SECRET_LEN] = "";
    if (sscanf(reply, "%20s %32s", password, secret) != 2) {
        fprintf(stderr, "kasa admin: unexpected answer from the server\n");
        return 1;
    }
    int rc = s_show_credentials(q, password, secret, "journaled by the running server");
    sodium_memzero(password, sizeof password);
    sodium_memzero(secret, sizeof secret);
    return rc;
}

static int s_offline(journal_t *journal, void *arg)
{
    const s_req_t *q = arg;
    char err[512];
    admins_t *ad = admins_new();
    if (!ad || admins_replay(ad, q->cfg->journal_dir, err, sizeof err) < 0) {
        fprintf(stderr, "kasa admin: cannot read the journal: %s\n", ad ? err : "out of memory");
        admins_destroy(&ad);
        return 1;
    }
    /* cluster mode: the accounts are MongoDB's (actors/shared.h), as on a running node: every account
     * learned first (a name taken, an account made elsewhere), then the change stored there
     * (majority) before it is journaled; MongoDB unreachable changes nothing */
    shared_t *sh = NULL;
    if (q->cfg->cluster) {
        sh = shared_new(q->cfg, ADMIN_MONGO_TIMEOUT_MS, err, sizeof err);
        if (sh)
            shared_admins_share(sh, ad);
        if (!sh || admins_sync(ad, journal) != 0) {
            fprintf(stderr, "kasa admin: refused: MongoDB cannot be reached%s%s; cluster mode stores every admin "
                    "change there first: nothing changed, try again\n", sh ? "" : ": ", sh ? "" : err);
            shared_destroy(&sh);
            admins_destroy(&ad);
            return 1;
        }
    }
    char password[ADMINS_OTP_LEN] = "", secret[ADMINS_SECRET_LEN] = "";
    int rc;
    if (strcmp(q->verb, "add") == 0)
        rc = admins_add(ad, journal, q->name, q->role, q->actor, q->origin, password, secret, err, sizeof err);
    else if (strcmp(q->verb, "reset") == 0)
        rc = admins_reset(ad, journal, q->name, q->actor, q->origin, password, secret, err, sizeof err);
    else
        rc = admins_disable(ad, journal, q->name, q->actor, q->origin, err, sizeof err);
    admins_destroy(&ad);
    shared_destroy(&sh);
    if (rc != 0) {
        fprintf(stderr, "kasa admin: refused: %s\n", err);
        return 1;
    }
    if (strcmp(q->verb, "disable") == 0) {
        printf("disabled %s (journaled; no server was running)\n", q->name);
        return 0;
    }
    rc = s_show_credentials(q, password, secret, "journaled; no server was running");
    sodium_memzero(password, sizeof password);
    sodium_memzero(secret, sizeof secret);
    return rc;
}

typedef struct {
    int json;
    jbuf_t *b;
} s_list_t;

static void s_iso(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    if (!ms || !gmtime_r(&t, &tm))
        snprintf(buf, len, "-");
    else
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void s_list_one(void *arg, const admin_view_t *a)
{
    s_list_t *l = arg;
    jbuf_reset(l->b);
    char created[32], login[32];
    s_iso(a->created_ms, created, sizeof created);
    s_iso(a->last_login_ms, login, sizeof login);
    if (l->json) {
        jbuf_puts(l->b, "{\"name\":");
        jbuf_str(l->b, a->name);
        jbuf_puts(l->b, ",\"role\":");
        jbuf_str(l->b, admin_role_name(a->role));
        jbuf_printf(l->b, ",\"disabled\":%s,\"must_change\":%s,\"created\":", a->disabled ? "true" : "false",
                    a->must_change ? "true" : "false");
        jbuf_str(l->b, created);
        jbuf_puts(l->b, ",\"created_by\":");
        jbuf_str(l->b, a->created_by);
        jbuf_puts(l->b, ",\"last_login\":");
        jbuf_str(l->b, a->last_login_ms ? login : NULL);
        jbuf_puts(l->b, "}\n");
    } else {
        jbuf_printf(l->b, "%-24s %-9s %-9s created %s by %s, last login %s%s\n", a->name, admin_role_name(a->role),
                    a->disabled ? "disabled" : "active", created, a->created_by[0] ? a->created_by : "?", login,
                    a->must_change ? " (one-time password not yet changed)" : "");
    }
    fwrite(l->b->data, 1, l->b->len, stdout);
}

static int s_list(const config_t *cfg, int json)
{
    char err[512];
    admins_t *ad = admins_new();
    if (!ad || admins_replay(ad, cfg->journal_dir, err, sizeof err) < 0) {
        fprintf(stderr, "kasa admin: cannot read the journal: %s\n", ad ? err : "out of memory");
        admins_destroy(&ad);
        return 1;
    }
    jbuf_t b;
    jbuf_init(&b);
    s_list_t l = { json, &b };
    int n = admins_each(ad, s_list_one, &l);
    if (!json)
        printf("%d admin%s\n", n, n == 1 ? "" : "s");
    jbuf_free(&b);
    admins_destroy(&ad);
    return 0;
}

int cmd_admin(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1], *path = NULL, *role_arg = NULL, *name = NULL;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role_arg = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            fprintf(stderr, "kasa admin: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    int is_list = strcmp(verb, "list") == 0, is_add = strcmp(verb, "add") == 0;
    int known = is_list || is_add || strcmp(verb, "disable") == 0 || strcmp(verb, "reset") == 0;
    if (!known || (is_list == (name != NULL)) || (is_add != (role_arg != NULL))) {
        s_usage(stderr);
        return 2;
    }
    char err[4096];
    int role = 0;
    if (is_add && (role = admin_role_from_name(role_arg)) < 0) {
        fprintf(stderr, "kasa admin: unknown role '%s' (viewer, operator, approver, treasurer, owner)\n", role_arg);
        return 2;
    }
    if (name && admin_name_check(name, err, sizeof err) != 0) {
        fprintf(stderr, "kasa admin: %s\n", err);
        return 2;
    }
    static config_t cfg;
    if (cmd_config_load(&cfg, path, "kasa admin") != 0) {
        return 1;
    }
    int rc;
    if (is_list) {
        rc = s_list(&cfg, json);
    } else {
        char actor[64], origin[64];
        cmd_actor_origin(actor, sizeof actor, origin, sizeof origin);
        s_req_t q = { &cfg, verb, name, actor, origin, (admin_role_t) role };
        const char *frames[] = { "admin", verb, name, is_add ? role_arg : "", actor, origin };
        rc = control_or_offline("admin", cfg.journal_dir, cfg.control, s_offline, s_online, &q, frames, 6,
                                ADMIN_CONTROL_TIMEOUT_MS);
    }
    config_clear(&cfg);
    return rc;
}
