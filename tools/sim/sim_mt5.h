/* sim_mt5.h — the MT5 Web API simulator as a library, so tests can run it in-process.
 * `kasa sim mt5 ...` (sim_mt5_main in sim.h) is sim_mt5_start() plus a wait for SIGTERM/SIGINT.
 *
 * It speaks the Web API as kasa uses it (see /api/ endpoints in sim_mt5.c) on libmicrohttpd, keeps
 * accounts and deals in memory with balances in exact minor units, and can inject faults. A session
 * is bound to its cookie ("_mt5sid"), not to the TCP connection (the real server binds it to the
 * connection too; kasa's client re-authenticates on a new connection either way). */
#ifndef KASA_TOOLS_SIM_MT5_H
#define KASA_TOOLS_SIM_MT5_H

#include <stddef.h>

typedef struct sim_mt5_t sim_mt5_t;

/* Starts a simulator from command-line style options (argv[0] is ignored; the options are those
 * of `kasa sim mt5`, e.g. {"mt5", "--listen", "127.0.0.1:0", "--manager", "1000:pw", ...}).
 * Returns when it is listening, or NULL with a reason in err. */
sim_mt5_t *sim_mt5_start(int argc, char **argv, char *err, size_t errlen);

/* The TCP port it listens on (useful after --listen 127.0.0.1:0). */
int sim_mt5_port(const sim_mt5_t *self);

/* Stops the server, frees every state, sets *self_p to NULL. Safe on NULL and twice. */
void sim_mt5_stop(sim_mt5_t **self_p);

#endif
