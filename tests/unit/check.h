/*
 * check: the unit tests' harness. A failed check prints file:line and the
 * values, and the test binary exits non-zero at the end.
 */
#ifndef CLIQHOST_TEST_CHECK_H
#define CLIQHOST_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        check_count++;                                                                             \
        if (check_a_ != check_b_) {                                                                \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: %s == %s: got %lld, want %lld\n", __FILE__, __LINE__, #a, #b,  \
                    check_a_, check_b_);                                                           \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        check_count++;                                                                             \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                           \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: %s == %s:\n  got  %s\n  want %s\n", __FILE__, __LINE__, #a,    \
                    #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");           \
        }                                                                                          \
    } while (0)

/* Checks that haystack contains needle. */
#define CHECK_HAS(hay, needle)                                                                     \
    do {                                                                                           \
        const char *check_h_ = (hay), *check_n_ = (needle);                                        \
        check_count++;                                                                             \
        if (!check_h_ || !strstr(check_h_, check_n_)) {                                            \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: %s contains \"%s\":\n  got %s\n", __FILE__, __LINE__, #hay,    \
                    check_n_, check_h_ ? check_h_ : "(null)");                                     \
        }                                                                                          \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int check_before_ = check_failures;                                                        \
        test();                                                                                    \
        fprintf(stderr, "%s %s\n", check_failures == check_before_ ? "ok  " : "FAIL", #test);      \
    } while (0)

#define CHECK_DONE()                                                                               \
    (fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures), check_failures ? 1 : 0)

#endif
