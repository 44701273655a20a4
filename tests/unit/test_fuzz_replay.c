/* test_fuzz_replay.c — every fuzz target (tests/fuzz/) run over its seed corpus and over the inputs
 * that once crashed it (tests/fuzz/regress/NAME/), under the normal build (gcc, ASan + UBSan), so a
 * fixed crash stays fixed without clang. Each input file is one call. */
#define FUZZ_NO_ENTRY 1
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/check.h"
#include "tests/fuzz/fuzz_amount.c"
#include "tests/fuzz/fuzz_config.c"
#include "tests/fuzz/fuzz_door.c"
#include "tests/fuzz/fuzz_http.c"
#include "tests/fuzz/fuzz_http_server.c"
#include "tests/fuzz/fuzz_journal.c"
#include "tests/fuzz/fuzz_record.c"
#include "tests/fuzz/fuzz_webhook.c"

typedef int (s_target_fn)(const uint8_t *data, size_t size);

/* Runs fn over every file in dir (missing dir: 0 files). Returns the number of files. */
static int s_replay_dir(const char *dir, s_target_fn *fn)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t len = buf ? fread(buf, 1, 1 << 20, f) : 0;
        fclose(f);
        fn(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static int s_replay(const char *name, s_target_fn *fn)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    int n = s_replay_dir(dir, fn);
    snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", name);
    n += s_replay_dir(dir, fn);
    fn((const uint8_t *) "", 0);
    return n;
}

static void test_fuzz_amount_corpus(void) { CHECK(s_replay("fuzz_amount", fuzz_amount) > 0); }
static void test_fuzz_config_corpus(void) { CHECK(s_replay("fuzz_config", fuzz_config) > 0); }
static void test_fuzz_door_corpus(void) { CHECK(s_replay("fuzz_door", fuzz_door) > 0); }
static void test_fuzz_http_corpus(void) { CHECK(s_replay("fuzz_http", fuzz_http) > 0); }
static void test_fuzz_http_server_corpus(void) { CHECK(s_replay("fuzz_http_server", fuzz_http_server) > 0); }
static void test_fuzz_journal_corpus(void) { CHECK(s_replay("fuzz_journal", fuzz_journal) > 0); }
static void test_fuzz_record_corpus(void) { CHECK(s_replay("fuzz_record", fuzz_record) > 0); }
static void test_fuzz_webhook_corpus(void) { CHECK(s_replay("fuzz_webhook", fuzz_webhook) > 0); }

int main(void)
{
    RUN(test_fuzz_amount_corpus);
    RUN(test_fuzz_config_corpus);
    RUN(test_fuzz_door_corpus);
    RUN(test_fuzz_http_corpus);
    RUN(test_fuzz_http_server_corpus);
    RUN(test_fuzz_journal_corpus);
    RUN(test_fuzz_record_corpus);
    RUN(test_fuzz_webhook_corpus);
    s_http_stop();
    s_head_stop();
    return check_done();
}
