/* fuzz_config.c — the configuration parser on an arbitrary file's text: config_parse (the parser
 * config_load runs on the file it reads) must accept or refuse with one line per problem, never
 * crash, and an accepted configuration must print. No KASA_* or other key of kasa may be in the
 * fuzzer's environment (it would win over the text). */
#include <string.h>

#include "schema/config.h"
#include "schema/log.h"
#include "tests/fuzz/fuzz.h"

int fuzz_config(const uint8_t *data, size_t size);
int fuzz_config(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    static config_t cfg;
    static FILE *devnull;
    if (!devnull) {   /* a large buffer: the printed configuration costs one write per many inputs */
        if (!(devnull = fopen("/dev/null", "w")) || setvbuf(devnull, NULL, _IOFBF, 1 << 20) != 0)
            abort();
    }
    char err[4096];
    if (config_parse(&cfg, (const char *) data, size, "fuzz.env", err, sizeof err) == 0) {
        config_print(&cfg, devnull);
        config_clear(&cfg);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    log_set_level(LOG_ERROR);   /* a KASA_LOG_LEVEL in the input must not make the fuzzer chatty */
    return 0;
}

FUZZ_ENTRY(fuzz_config)
