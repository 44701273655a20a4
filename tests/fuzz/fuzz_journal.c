/* fuzz_journal.c — the journal reader on arbitrary segment bytes: the input is the first segment of
 * a journal (journal_reader_open_bytes: the reader's own checks, over the bytes in memory rather
 * than a file) and is read to its end. The reader must stop at the first bad record with a reason,
 * never read past the bytes (ASan sees the exact buffer), and every record it hands out must lie
 * inside them, in LSN order from 1. */
#include <string.h>

#include "journal/jformat.h"
#include "journal/journal.h"
#include "tests/fuzz/fuzz.h"

int fuzz_journal(const uint8_t *data, size_t size);
int fuzz_journal(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    /* an exact copy: a read past the end is a heap overflow, not a read of the fuzzer's slack */
    uint8_t *seg = malloc(size ? size : 1);
    if (!seg)
        abort();
    if (size)
        memcpy(seg, data, size);
    char err[256];
    journal_reader_t *r = journal_reader_open_bytes(seg, size, 1, err, sizeof err);
    FUZZ_ASSERT(r != NULL);
    journal_entry_t e;
    int rc;
    uint64_t n = 0;
    while ((rc = journal_reader_next(r, &e)) == 1) {
        FUZZ_ASSERT(e.len <= size);
        FUZZ_ASSERT(e.offset < size && e.len <= size - e.offset);
        if (e.len) {
            FUZZ_ASSERT(e.payload != NULL);
            FUZZ_ASSERT(e.payload >= seg + e.offset && e.payload + e.len <= seg + size);
        }
        n++;
        FUZZ_ASSERT(e.lsn == n);              /* a chain from the first LSN, none skipped */
        FUZZ_ASSERT(n <= size);               /* every record takes bytes */
    }
    if (rc < 0)
        FUZZ_ASSERT(strcmp(journal_reader_error(r), "no error") != 0);
    journal_reader_destroy(&r);
    free(seg);
    return 0;
}

FUZZ_ENTRY(fuzz_journal)
