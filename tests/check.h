/* check.h — the smallest test harness that does what kasa needs.
 *
 *   static void test_money_rejects_exponent(void) { CHECK(money_parse("1e5", 6, &m) == -1); }
 *   int main(void) { RUN(test_money_rejects_exponent); return check_done(); }
 *
 * Each RUN prints "ok NAME" or "FAIL NAME" with the first failed CHECK's file and line.
 * check_done() prints the closing line "N passed, N failed" that tests/run.sh sums, and
 * returns the process exit status (0 only when nothing failed). CHECK_ONLY=WORD in the environment
 * runs only the tests whose name contains WORD (and those named *_start, which set things up). */
#ifndef KASA_TESTS_CHECK_H
#define KASA_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed_;
static int check_failed_;
static int check_current_failed_;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            if (!check_current_failed_)                                             \
                fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            check_current_failed_ = 1;                                              \
        }                                                                           \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long a_ = (long long) (a), b_ = (long long) (b);                       \
        if (a_ != b_) {                                                             \
            if (!check_current_failed_)                                             \
                fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n",       \
                        __FILE__, __LINE__, #a, a_, #b, b_);                        \
            check_current_failed_ = 1;                                              \
        }                                                                           \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                          \
    do {                                                                            \
        const char *a_ = (a), *b_ = (b);                                            \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                    \
            if (!check_current_failed_)                                             \
                fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n",         \
                        __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
            check_current_failed_ = 1;                                              \
        }                                                                           \
    } while (0)

#define RUN(fn)                                                                     \
    do {                                                                            \
        const char *only_ = getenv("CHECK_ONLY");                                   \
        if (only_ && *only_ && !strstr(#fn, only_) && !strstr(#fn, "_start"))        \
            break;                                                                  \
        check_current_failed_ = 0;                                                  \
        fn();                                                                       \
        if (check_current_failed_) { check_failed_++; printf("FAIL %s\n", #fn); }  \
        else { check_passed_++; printf("ok   %s\n", #fn); }                         \
        fflush(stdout);                                                             \
    } while (0)

static inline int check_done(void)
{
    printf("%d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ ? 1 : 0;
}

#endif
