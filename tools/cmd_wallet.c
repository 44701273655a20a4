/* cmd_wallet.c — `kasa wallet link|list`: deposit addresses and the MT5 logins they belong to.
 *
 * link: when a server runs on the journal (the journal's lock is taken), the request goes to its
 * control socket and the server journals the link (pipeline_link) before it answers. When none
 * runs, this command opens the journal itself (taking the lock, so a server cannot start meanwhile),
 * replays it to know every existing link, journals the new RECORD_ADDRESS_LINK (durable before it
 * answers) and closes. Either way the same rules hold: relinking an address to its own login is a
 * no-op, to another login is refused. In cluster mode (KASA_CLUSTER=on) the offline path stores a new
 * link in MongoDB first (write concern majority, actors/shared.h), exactly as a running node does,
 * and refuses, linking nothing, when MongoDB cannot be reached or has the address linked to another
 * login.
 * list: reads the journal (open or not) and prints every link, the latest per address. */
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "actors/mt5.h"
#include "actors/registry.h"
#include "actors/shared.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "schema/record.h"
#include "tools/commands.h"
#include "schema/config.h"
#include "tools/control.h"

#define WALLET_CONTROL_TIMEOUT_MS 10000
#define WALLET_MAX_LINKS 1000000   /* links listed at most */
#define WALLET_MONGO_TIMEOUT_MS 3000

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: kasa wallet link ADDRESS LOGIN [--chain CHAIN] [--actor NAME] --config FILE\n"
            "       kasa wallet list [--json] --config FILE\n"
            "  link  links a deposit address to an MT5 login (journaled; works with or without a\n"
            "        running server). Refused if the address is linked to another login.\n"
            "  list  prints every address link, the latest per address.\n");
}

static void s_actor_name(char *out, size_t len)
{
    const struct passwd *pw = getpwuid(getuid());
    snprintf(out, len, "cli:%.40s", pw && pw->pw_name ? pw->pw_name : "operator");
}

typedef struct {
    const config_t *cfg;
    const char *address, *chain, *actor;
    uint64_t login;
} s_link_t;

/* Cluster mode, no server running: the link goes to MongoDB first (write concern majority), as a
 * running node's does (actors/shared.h), so every node can learn it before anyone pays to it. 0
 * stored (or there already, to this login); 1 refused (said why). */
static int s_link_shared(const s_link_t *l)
{
    char err[300];
    shared_t *sh = shared_new(l->cfg, WALLET_MONGO_TIMEOUT_MS, err, sizeof err);
    if (!sh) {
        fprintf(stderr, "kasa wallet: refused: %s (cluster mode: a link is stored in MongoDB first)\n", err);
        return 1;
    }
    shared_result_t r = shared_link_put(sh, l->address, l->chain, l->login, err, sizeof err);
    shared_destroy(&sh);
    if (r == SHARED_FOUND)
        return 0;
    if (r == SHARED_NONE)
        fprintf(stderr, "kasa wallet: refused: %s\n", err);
    else
        fprintf(stderr, "kasa wallet: refused: MongoDB cannot be reached (%s); cluster mode stores a link there "
                "first: nothing was linked, try again\n", err);
    return 1;
}

/* Links without a server: the journal is ours for the duration. */
static int s_link_offline(journal_t *journal, void *arg)
{
    const s_link_t *l = arg;
    char err[512];
    registry_t *reg = registry_new(WALLET_MAX_LINKS);
    if (!reg) {
        fprintf(stderr, "kasa wallet: out of memory\n");
        return 1;
    }
    int rc = 1;
    if (registry_replay(reg, l->cfg->journal_dir, err, sizeof err) < 0) {
        fprintf(stderr, "kasa wallet: cannot replay the journal: %s\n", err);
    } else if (l->cfg->cluster && registry_address_login(reg, l->address) == 0 && s_link_shared(l) != 0) {
        rc = 1;   /* said why (an address this journal links already is decided here: kept, or refused) */
    } else {
        uint64_t before = registry_address_login(reg, l->address);
        if (registry_link(reg, journal, l->address, l->chain, l->login, l->actor, err, sizeof err) != 0) {
            fprintf(stderr, "kasa wallet: refused: %s\n", err);
        } else if (before == l->login) {
            printf("%s is already linked to login %" PRIu64 " (nothing changed)\n", l->address, l->login);
            rc = 0;
        } else {
            printf("linked %s%s%s to login %" PRIu64 " (journaled; no server was running)\n", l->address,
                   l->chain[0] ? " on " : "", l->chain, l->login);
            rc = 0;
        }
    }
    registry_destroy(&reg);
    return rc;
}

static int s_link(const config_t *cfg, const char *address, const char *chain, uint64_t login, const char *actor)
{
    char login_s[24];
    snprintf(login_s, sizeof login_s, "%" PRIu64, login);
    const char *frames[] = { "link", address, chain, login_s, actor };
    s_link_t l = { cfg, address, chain, actor, login };
    return control_or_offline("wallet", cfg->journal_dir, cfg->control, s_link_offline, NULL, &l, frames, 5,
                              WALLET_CONTROL_TIMEOUT_MS);
}

typedef struct {
    char key[128];
    record_t *r;   /* the latest link for the address */
    uint64_t lsn;
} link_row_t;

static void s_addr_key(const char *address, char out[128])
{
    snprintf(out, 128, "%s", address);
    if (strncasecmp(out, "0x", 2) == 0)
        for (char *p = out; *p; p++)
            *p = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
}

static int s_list(const config_t *cfg, int json)
{
    char err[512];
    journal_reader_t *rd = journal_reader_open(cfg->journal_dir, 1, err, sizeof err);
    if (!rd) {
        fprintf(stderr, "kasa wallet: cannot read the journal: %s\n", err);
        return 1;
    }
    link_row_t *rows = NULL;
    size_t n = 0, cap = 0;
    journal_entry_t e;
    int rc = 0, got;
    record_t *r = malloc(sizeof *r);
    zhashx_t *index = zhashx_new();   /* address key -> row number + 1 */
    while ((got = journal_reader_next(rd, &e)) == 1) {
        if (record_decode(e.payload, e.len, r, err, sizeof err) != 0 || r->kind != RECORD_ADDRESS_LINK)
            continue;
        char key[128];
        s_addr_key(r->address, key);
        size_t i = (size_t) (uintptr_t) zhashx_lookup(index, key);
        if (i > 0) {
            i--;
        } else {
            i = n;
            if (n >= WALLET_MAX_LINKS)
                break;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                link_row_t *nr = realloc(rows, cap * sizeof *rows);
                if (!nr)
                    abort();
                rows = nr;
            }
            memset(&rows[n], 0, sizeof rows[n]);
            snprintf(rows[n].key, sizeof rows[n].key, "%s", key);
            rows[n].r = malloc(sizeof *r);
            n++;
            zhashx_insert(index, key, (void *) (uintptr_t) n);
        }
        *rows[i].r = *r;
        rows[i].lsn = e.lsn;
    }
    if (got < 0) {
        fprintf(stderr, "kasa wallet: %s\n", journal_reader_error(rd));
        rc = 1;
    }
    jbuf_t b;
    jbuf_init(&b);
    for (size_t i = 0; i < n; i++) {
        jbuf_reset(&b);
        const record_t *l = rows[i].r;
        if (json) {
            record_to_json(l, rows[i].lsn, &b);
        } else {
            jbuf_printf(&b, "%-44s %-8s %" PRIu64, l->address, l->chain_id[0] ? l->chain_id : "-", l->login);
            if (l->actor[0])
                jbuf_printf(&b, "  by %s", l->actor);
        }
        jbuf_puts(&b, "\n");
        fwrite(b.data, 1, b.len, stdout);
        free(rows[i].r);
    }
    if (!json)
        printf("%zu address link%s\n", n, n == 1 ? "" : "s");
    jbuf_free(&b);
    zhashx_destroy(&index);
    free(rows);
    free(r);
    journal_reader_destroy(&rd);
    return rc;
}

int cmd_wallet(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    const char *path = NULL, *chain = "", *actor_arg = NULL;
    const char *pos[2] = { NULL, NULL };
    int npos = 0, json = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--chain") == 0 && i + 1 < argc)
            chain = argv[++i];
        else if (strcmp(argv[i], "--actor") == 0 && i + 1 < argc)
            actor_arg = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else {
            fprintf(stderr, "kasa wallet: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    int is_link = strcmp(verb, "link") == 0, is_list = strcmp(verb, "list") == 0;
    if ((!is_link && !is_list) || (is_link && npos != 2) || (is_list && npos != 0)) {
        s_usage(stderr);
        return 2;
    }
    uint64_t login = 0;
    if (is_link) {
        if (!pos[0][0] || strlen(pos[0]) > 127) {
            fprintf(stderr, "kasa wallet: ADDRESS must be 1 to 127 characters\n");
            return 2;
        }
        if (mt5_parse_login(pos[1], &login) != 0) {
            fprintf(stderr, "kasa wallet: LOGIN must be a positive whole number, got '%s'\n", pos[1]);
            return 2;
        }
        if (strlen(chain) > 23) {
            fprintf(stderr, "kasa wallet: CHAIN too long\n");
            return 2;
        }
    }
    static config_t cfg;
    if (cmd_config_load(&cfg, path, "kasa wallet") != 0) {
        return 1;
    }
    int rc;
    if (is_link) {
        char actor[64];
        if (actor_arg)
            snprintf(actor, sizeof actor, "%s", actor_arg);
        else
            s_actor_name(actor, sizeof actor);
        rc = s_link(&cfg, pos[0], chain, login, actor);
    } else {
        rc = s_list(&cfg, json);
    }
    config_clear(&cfg);
    return rc;
}
