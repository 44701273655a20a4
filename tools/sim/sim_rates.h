/* sim_rates.h — a price source speaking Binance's spot market-data API, as a library so tests can
 * run it in-process. `kasa sim rates ...` (sim_rates_main in sim.h) is sim_rates_start() plus a wait
 * for SIGTERM/SIGINT. It answers GET /api/v3/ticker/price with Binance's shapes and fails on demand
 * (down, stale, garbage, slow). */
#ifndef KASA_TOOLS_SIM_RATES_H
#define KASA_TOOLS_SIM_RATES_H

#include <stddef.h>

typedef struct sim_rates_t sim_rates_t;

/* Starts from command-line style options (argv[0] ignored; those of `kasa sim rates`, e.g.
 * {"rates", "--listen", "127.0.0.1:0", "--price", "TRXUSDT=0.1023"}). NULL with a reason in err. */
sim_rates_t *sim_rates_start(int argc, char **argv, char *err, size_t errlen);

/* The TCP port it listens on. */
int sim_rates_port(const sim_rates_t *self);

/* Stops, frees, sets *self_p to NULL. Safe on NULL and twice. */
void sim_rates_stop(sim_rates_t **self_p);

#endif
