/* sim_telegram.h — the Telegram Bot API simulator as a library, so tests can run it in-process.
 * `kasa sim telegram ...` (sim_telegram_main in sim.h) is sim_telegram_start() plus a wait for
 * SIGTERM/SIGINT. It answers sendMessage (and getMe) with the Bot API's response shapes, records
 * every accepted message, and fails on demand. */
#ifndef KASA_TOOLS_SIM_TELEGRAM_H
#define KASA_TOOLS_SIM_TELEGRAM_H

#include <stddef.h>

typedef struct sim_telegram_t sim_telegram_t;

/* Starts from command-line style options (argv[0] ignored; those of `kasa sim telegram`, e.g.
 * {"telegram", "--listen", "127.0.0.1:0", "--token", "123:abc"}). NULL with a reason in err. */
sim_telegram_t *sim_telegram_start(int argc, char **argv, char *err, size_t errlen);

/* The TCP port it listens on. */
int sim_telegram_port(const sim_telegram_t *self);

/* Stops, frees, sets *self_p to NULL. Safe on NULL and twice. */
void sim_telegram_stop(sim_telegram_t **self_p);

#endif
