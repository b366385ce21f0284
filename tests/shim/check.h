/* SPDX-License-Identifier: MIT */
/*
 * A minimal check macro for the LD_PRELOAD driver programs: they cannot use Criterion (its
 * own allocations would be under test), so each failed check prints where and why, and the
 * program's exit status is the number of failures (capped).
 */
#ifndef MS_TEST_CHECK_H
#define MS_TEST_CHECK_H

#include <stdio.h>

static int check_failures;
static int check_passes;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (cond) {                                                               \
            check_passes++;                                                       \
        } else {                                                                  \
            check_failures++;                                                     \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passes, check_failures);
    return check_failures > 100 ? 100 : check_failures;
}

#endif
