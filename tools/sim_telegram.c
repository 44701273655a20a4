/* placeholder: replaced by the real simulator */
#include <stdio.h>
#include "tools/sim.h"
int sim_telegram_main(int argc, char **argv) { (void) argc; (void) argv; fprintf(stderr, "not built yet\n"); return 1; }
