/* cmd_config.c — `kasa config check [--config FILE]`: loads the configuration exactly as
 * `kasa serve` would (file, then environment) and prints the effective values — secrets only as
 * "(set)" / "(unset)" — then "configuration ok", or one line per problem and exit status 1. */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"
#include "schema/config.h"

static void s_usage(FILE *out)
{
    fprintf(out, "usage: kasa config check [--config FILE]\n"
                 "  Prints the effective configuration (file, then environment; secrets never shown)\n"
                 "  and \"configuration ok\", or each problem on its own line (exit status 1).\n");
}

int cmd_config(int argc, char **argv)
{
    const char *path = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "check") == 0)
            check = 1;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kasa config: unexpected argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    if (!check) {
        s_usage(stderr);
        return 2;
    }
    static config_t cfg;
    char err[4096];
    if (config_load(&cfg, path, err, sizeof err) != 0) {
        printf("%s\n", err);
        printf("configuration has problems%s%s\n", path ? ": " : "", path ? path : "");
        return 1;
    }
    config_print(&cfg, stdout);
    char why[600];
    if (path && config_file_private(path, why, sizeof why) == 1)
        printf("warning: %s\n", why);
    printf("configuration ok\n");
    config_clear(&cfg);
    return 0;
}

int cmd_config_load(config_t *cfg, const char *path, const char *prog)
{
    char err[4096];
    if (config_load(cfg, path, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "%s: the configuration has problems:\n%s\n", prog, err);
    return -1;
}
