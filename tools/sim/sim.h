/* sim.h — the simulators kasa is tested against. Each speaks the real service's protocol (same
 * signatures, handshakes, error codes) on loopback, keeps its state in memory, and exposes a small
 * control API under /sim/ for tests and demos. Each runs until SIGTERM/SIGINT.
 *
 *   kasa sim cobo     --listen 127.0.0.1:9001 --webhook-url URL --key-seed HEX64 --client-key HEX64 [--seed N] [faults]
 *   kasa sim mt5      --listen 127.0.0.1:9002 --manager LOGIN:PASSWORD --account LOGIN:PASSWORD:BALANCE[:GROUP] ... [faults]
 *   kasa sim telegram --listen 127.0.0.1:9003 --token TOKEN [--fail-rate P] [--log FILE]
 *   kasa sim rates    --listen 127.0.0.1:9004 --price TRXUSDT=0.1023 ... [--fault MODE]
 *   kasa sim deposit  --cobo http://127.0.0.1:9001 --address ADDR --amount 250 [--token TRON_USDT] [--chain TRON]
 *   kasa sim pubkey   --key-seed HEX64      print the Ed25519 public key (hex) of a seed
 * `kasa sim KIND --help` lists every option and control endpoint. */
#ifndef KASA_TOOLS_SIM_H
#define KASA_TOOLS_SIM_H

int sim_cobo_main(int argc, char **argv);      /* tools/sim_cobo.c */
int sim_deposit_main(int argc, char **argv);   /* tools/sim_cobo.c */
int sim_pubkey_main(int argc, char **argv);    /* tools/sim_cobo.c */
int sim_mt5_main(int argc, char **argv);       /* tools/sim_mt5.c */
int sim_telegram_main(int argc, char **argv);  /* tools/sim_telegram.c */
int sim_rates_main(int argc, char **argv);     /* tools/sim_rates.c */

#endif
