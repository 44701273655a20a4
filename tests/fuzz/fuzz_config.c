/* fuzz_config.c — the configuration parser on an arbitrary file: config_load must accept or refuse
 * with one line per problem, never crash, and an accepted configuration must print. No KASA_* or
 * other key of kasa may be in the fuzzer's environment (it would win over the file). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "schema/config.h"
#include "schema/log.h"
#include "tests/fuzz/fuzz.h"

static char s_config_path[256];

int fuzz_config(const uint8_t *data, size_t size);
int fuzz_config(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    if (!s_config_path[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(s_config_path, sizeof s_config_path, "%s/kasa-fuzz-config-XXXXXX", base && *base ? base : "/tmp");
        int fd = mkstemp(s_config_path);
        if (fd < 0)
            abort();
        close(fd);
    }
    int fd = open(s_config_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        abort();
    FUZZ_ASSERT(write(fd, data, size) == (ssize_t) size);
    close(fd);
    static config_t cfg;
    char err[4096];
    if (config_load(&cfg, s_config_path, err, sizeof err) == 0) {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            config_print(&cfg, devnull);
            fclose(devnull);
        }
        config_clear(&cfg);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    log_set_level(LOG_ERROR);   /* a KASA_LOG_LEVEL in the input must not make the fuzzer chatty */
    return 0;
}

FUZZ_ENTRY(fuzz_config)
