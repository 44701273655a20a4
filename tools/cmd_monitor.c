/* placeholder: replaced by the real command */
#include <stdio.h>
#include "tools/commands.h"
int cmd_monitor(int argc, char **argv) { (void) argc; (void) argv; fprintf(stderr, "kasa monitor: not built yet\n"); return 1; }
