/* main.c — the `kasa` command: one binary, one verb per operation. */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t s_commands[] = {
    { "serve",   cmd_serve,   "serve --config FILE          run kasa: webhooks, actors, panels, monitor feed" },
    { "config",  cmd_config,  "config check --config FILE   check a configuration (secrets are never printed)" },
    { "journal", cmd_journal, "journal verify|dump|stats|repair DIR   inspect or repair the journal" },
    { "wallet",  cmd_wallet,  "wallet link ADDRESS LOGIN --config FILE   link a deposit address to an MT5 login" },
    { "deposit", cmd_deposit, "deposit list|show|retry|assign|approve|reject ... --config FILE   operators and held deposits" },
    { "withdrawal", cmd_withdrawal, "withdrawal list|show|approve|reject|refund|retransfer ... --config FILE   operators and withdrawals" },
    { "admin",   cmd_admin,   "admin add|list|disable|reset ... --config FILE   the broker's admin accounts" },
    { "monitor", cmd_monitor, "monitor [--json] [--config FILE]   print every committed transition, live" },
    { "replay",  cmd_replay,  "replay DIR [--all]           rebuild every deposit from the journal and show where it stands" },
    { "mongo",   cmd_mongo,   "mongo status|sync|rebuild --config FILE   the journal's MongoDB projection" },
    { "cluster", cmd_cluster, "cluster status --config FILE   the nodes on this MongoDB, their claims, leases near their end" },
    { "catchup", cmd_catchup, "catchup --since DATE --config FILE   take in deposits whose webhooks never came" },
    { "reconcile", cmd_reconcile, "reconcile --from DATE --to DATE [--json] --config FILE   journal vs Cobo vs MT5" },
    { "sim",     cmd_sim,     "sim cobo|mt5|telegram|deposit ...   the simulators kasa is tested against" },
};

static void s_usage(FILE *out)
{
    fprintf(out, "kasa — Cobo deposits credited exactly once to MetaTrader 5 accounts\n\nusage: kasa COMMAND [ARGS]\n\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        fprintf(out, "  kasa %s\n", s_commands[i].summary);
    fprintf(out, "\n`kasa COMMAND --help` describes each command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp(argv[1], s_commands[i].name) == 0)
            return s_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "kasa: unknown command '%s'\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}
