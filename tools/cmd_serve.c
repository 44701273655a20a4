/* placeholder: replaced by the real command */
#include <stdio.h>
#include "tools/commands.h"
int cmd_serve(int argc, char **argv) { (void) argc; (void) argv; fprintf(stderr, "kasa serve: not built yet\n"); return 1; }
