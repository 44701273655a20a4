/* sim.c — `kasa sim KIND ...`: dispatch to the simulators (see sim.h). */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/sim/sim.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} s_sims[] = {
    { "cobo",     sim_cobo_main,     "Cobo WaaS 2.0: signed webhooks, transactions, addresses" },
    { "mt5",      sim_mt5_main,      "MT5 Web API: handshake, balance deals, users, groups, faults" },
    { "telegram", sim_telegram_main, "Telegram Bot API: sendMessage, recorded, can fail on demand" },
    { "rates",    sim_rates_main,    "Binance's ticker price API: prices for live rates, faults" },
    { "deposit",  sim_deposit_main,  "ask a running Cobo simulator to send a deposit lifecycle" },
    { "pubkey",   sim_pubkey_main,   "print the Ed25519 public key of a key seed" },
};

int cmd_sim(int argc, char **argv)
{
    size_t n = sizeof s_sims / sizeof s_sims[0];
    if (argc >= 2)
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], s_sims[i].name) == 0)
                return s_sims[i].run(argc - 1, argv + 1);
    FILE *out = (argc >= 2 && strcmp(argv[1], "--help") == 0) ? stdout : stderr;
    fprintf(out, "usage: kasa sim KIND [OPTIONS]   (kasa sim KIND --help for options)\n\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-9s %s\n", s_sims[i].name, s_sims[i].summary);
    return out == stdout ? 0 : 2;
}
