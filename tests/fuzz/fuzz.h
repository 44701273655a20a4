/* fuzz.h — what kasa's fuzz targets share.
 *
 * Each tests/fuzz/fuzz_NAME.c defines `int fuzz_NAME(const uint8_t *data, size_t size)` (it aborts
 * on a broken property; sanitizers catch the rest) and, unless FUZZ_NO_ENTRY is defined, libFuzzer's
 * entry point calling it. `make fuzz` builds each with clang -fsanitize=fuzzer,address,undefined
 * and runs it for FUZZ_SECONDS over tests/fuzz/corpus/NAME; tests/unit/test_fuzz_replay.c runs every
 * target (gcc, ASan + UBSan) over its seed corpus and tests/fuzz/regress/NAME, the inputs that once
 * crashed it, in the normal suite. */
#ifndef KASA_TESTS_FUZZ_H
#define KASA_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef FUZZ_NO_ENTRY
#define FUZZ_ENTRY(fn)
#else
#define FUZZ_ENTRY(fn)                                                   \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);        \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fn(data, size); }
#endif

/* A property that must hold for every input: abort (the fuzzer keeps the input) if it does not. */
#define FUZZ_ASSERT(cond)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* data as a NUL-terminated string (malloc'd; an embedded NUL ends it early, as C text would). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char) data[i];
    s[size] = '\0';
    return s;
}

#endif
