/* fuzz_journal.c — the journal reader on arbitrary segment bytes: the input is written as the first
 * segment of a journal directory and read to its end. The reader must stop at the first bad record
 * with a reason, never read past the file, and every record it hands out must lie inside it. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/jformat.h"
#include "journal/journal.h"
#include "tests/fuzz/fuzz.h"

static char s_journal_dir[256];

/* A scratch journal directory for this process, made once. */
static const char *s_scratch(void)
{
    if (!s_journal_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(s_journal_dir, sizeof s_journal_dir, "%s/kasa-fuzz-journal-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(s_journal_dir))
            abort();
    }
    return s_journal_dir;
}

int fuzz_journal(const uint8_t *data, size_t size);
int fuzz_journal(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    const char *dir = s_scratch();
    char name[JF_NAME_MAX], path[512];
    jf_seg_name(name, 1);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    FUZZ_ASSERT(write(fd, data, size) == (ssize_t) size);
    close(fd);
    char err[256];
    journal_reader_t *r = journal_reader_open(dir, 0, err, sizeof err);
    if (r) {
        journal_entry_t e;
        int rc, n = 0;
        while ((rc = journal_reader_next(r, &e)) == 1) {
            FUZZ_ASSERT(e.len <= size);
            if (e.len)
                FUZZ_ASSERT(e.payload != NULL);
            n++;
            FUZZ_ASSERT((size_t) n <= size);   /* every record takes bytes */
        }
        if (rc < 0)
            FUZZ_ASSERT(journal_reader_error(r) != NULL);
        journal_reader_destroy(&r);
    }
    unlink(path);
    return 0;
}

FUZZ_ENTRY(fuzz_journal)
