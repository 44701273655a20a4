/* desk.h — an operator's action on a deposit, from whichever door it comes (the control socket of a
 * running kasa, the `kasa deposit` command on a stopped one, the admin API, a Telegram button).
 *
 * desk_act() makes the checks that need I/O — an assign's login must be one MT5 knows — and then
 * lets registry_desk() decide and journal under the registry's lock (schema/desk.c is the table).
 * Handing a moved deposit on to its stage is the caller's (pipeline_admin does it; a stopped kasa
 * resumes it at its next start). */
#ifndef KASA_ACTORS_DESK_H
#define KASA_ACTORS_DESK_H

#include "actors/registry.h"

/* 0 if MT5 knows login (or no MT5_URL is configured: the locker then finds out); -1 with a reason
 * if MT5 does not know it or cannot be asked (nothing may be journaled then). Opens its own MT5
 * session for the one question: admin actions are rare. */
int desk_login_check(const config_t *cfg, uint64_t login, char *err, size_t errlen);

/* desk_login_check() for an assign; for a reject of a HELD deposit a credit was attempted for, a
 * search of MT5 first (after the settle time since the last attempt; only a complete "not there"
 * lets it through; a deal found credits the deposit instead, its record in *effects, *bytes, *len
 * for the caller to hand on, and refuses the reject); then registry_desk(); same results. */
registry_result_t desk_act(registry_t *registry, journal_t *journal, const config_t *cfg, const desk_request_t *req,
                           unsigned *effects, uint8_t **bytes, size_t *len, char *err, size_t errlen);

/* A person's action sent to another node as a command (actors/claims.h) is journaled there with a
 * reason naming the command: "REASON (command ID)" (the person's reason cut to fit). Into out (at
 * least DESK_COMMAND_REASON bytes). */
#define DESK_COMMAND_REASON 160
void desk_command_reason(const char *reason, const char *command_id, char *out, size_t len);

/* 1 if the journal in journal_dir (read from from_lsn: the deposit's first) holds req's action on
 * req->tx_id already, journaled by the same actor with the same reason (which names its command:
 * desk_command_reason), so a command carried out before a crash is recognised, not applied again;
 * 0 it does not; -1 the journal cannot be read (then nothing may be assumed). */
int desk_journaled(const char *journal_dir, uint64_t from_lsn, const desk_request_t *req);

/* One deposit as operators see it, as a JSON object: id, state, status, confirmations, token, chain,
 * address, amount, login (null if none), credited (account money, once credited), ticket, tx_hash,
 * reason, attempts, approvals and approvers, created_ms, updated_ms. Appends to b. */
#include "schema/json.h"
void desk_entry_json(jbuf_t *b, const registry_entry_t *e);

#endif
