/* commands.h — the verbs of the `kasa` command. Each takes argv with argv[0] = its own name
 * and returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef KASA_TOOLS_COMMANDS_H
#define KASA_TOOLS_COMMANDS_H

int cmd_serve(int argc, char **argv);    /* tools/cmd_serve.c   run the service            */
int cmd_config(int argc, char **argv);   /* tools/cmd_config.c  check a configuration      */
int cmd_journal(int argc, char **argv);  /* tools/cmd_journal.c verify, dump, stats, repair */
int cmd_wallet(int argc, char **argv);   /* tools/cmd_wallet.c  link an address to a login */
int cmd_deposit(int argc, char **argv);  /* tools/cmd_deposit.c operators act on deposits   */
int cmd_withdrawal(int argc, char **argv); /* tools/cmd_withdrawal.c operators and withdrawals */
int cmd_admin(int argc, char **argv);    /* tools/cmd_admin.c   the broker's admin accounts */
int cmd_monitor(int argc, char **argv);  /* tools/cmd_monitor.c print the live feed         */
int cmd_replay(int argc, char **argv);   /* tools/cmd_replay.c  rebuild deposits, show state */
int cmd_mongo(int argc, char **argv);   /* tools/cmd_mongo.c   MongoDB projection status, sync, rebuild */
int cmd_cluster(int argc, char **argv); /* tools/cmd_cluster.c the nodes and claims of cluster mode */
int cmd_sim(int argc, char **argv);      /* tools/sim.c         Cobo, MT5, Telegram simulators */
int cmd_catchup(int argc, char **argv);  /* tools/cmd_catchup.c missed-webhook catch-up now  */
int cmd_reconcile(int argc, char **argv); /* tools/cmd_reconcile.c journal vs Cobo vs MT5     */
/* The control socket's "catchup SINCE_MS" verb (control_verb_fn; arg: the server's catchup_t). */
#include <stddef.h>
int cmd_catchup_verb(void *arg, char *const *frames, int n, char *reply, size_t replylen);
/* The control socket's "withdrawal ACTION ID ACTOR ORIGIN REASON" verb (arg: a cmd_withdrawal_verb_t). */
typedef struct pipeline_t pipeline_t;
typedef struct admins_t admins_t;
typedef struct {
    pipeline_t *pipeline;
    admins_t *admins;
} cmd_withdrawal_verb_t;
int cmd_withdrawal_verb(void *arg, char *const *frames, int n, char *reply, size_t replylen);
/* 0 if actor may decide withdrawals: a cli:USER actor, or admin:NAME naming an enabled account whose
 * role has ADMIN_WITHDRAW_DECIDE; else -1 with the reason in err. */
int cmd_withdrawal_actor_may(admins_t *admins, const char *actor, char *err, size_t errlen);


#include "schema/config.h"
/* Loads the configuration at path (NULL: from the environment alone) into cfg: 0, or -1 after printing
 * "PROG: the configuration has problems:" and each problem to stderr. */
int cmd_config_load(config_t *cfg, const char *path, const char *prog);

/* Opens the journal in dir for a verb of kasa, its notes (a torn tail cut, a failure) going to
 * kasa's log. NULL with a reason in err, as journal_open. */
#include <stddef.h>
typedef struct journal_t journal_t;
journal_t *cmd_journal_open(const char *dir, char *err, size_t errlen);

/* Prints every journal record of id (a deposit's transaction id or a withdrawal id) with an LSN in
 * [from_lsn, upto_lsn] (0, 0: the whole journal) in order, as text lines with their time or as JSON
 * (json), for `kasa deposit show` and `kasa withdrawal show`; errors name command, "unknown NOUN ID"
 * when the journal has none (tools/cmd_deposit.c) — unless found_out is given: *found_out is then how
 * many were printed, and none is not an error. 0 or 1. */
int cmd_show_timeline(const char *journal_dir, const char *id, int json, const char *command, const char *noun,
                      uint64_t from_lsn, uint64_t upto_lsn, int *found_out);

/* The deposits and links of journal dir as kasa's start rebuilds them (tools/cmd_replay.c): the newest
 * valid snapshot with its index of finished deposits, and the journal after it; the whole journal
 * (archive included) when no snapshot checks out. Finished deposits whose records were pruned from
 * the archive are still known (registry_lookup, registry_each_all). max_deposits bounds the unfinished
 * ones (0: any number). *info (may be NULL) says from what. NULL with a reason in err. */
#include <stdint.h>
#include "actors/checkpoint.h"
typedef struct registry_t registry_t;
registry_t *cmd_registry_restore(const char *dir, size_t max_deposits, checkpoint_info_t *info, char *err,
                                 size_t errlen);

/* Who runs this command and from where, as journaled with an operator's action: "cli:USER" and
 * "cli:HOST TTY" (tools/cmd_deposit.c). */
void cmd_actor_origin(char *actor, size_t actor_len, char *origin, size_t origin_len);

#endif
