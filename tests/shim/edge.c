/* SPDX-License-Identifier: MIT */
/*
 * Every interposed entry point at its edges, as glibc documents them.  Run plainly (the
 * checks then describe glibc itself) and under LD_PRELOAD in every mode: the same checks
 * must pass both ways, which is what "behaves exactly as glibc" means here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* The failed-reallocarray/realloc checks read p on purpose: a failure leaves it valid. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

extern void *__libc_malloc(size_t);

/* Keep the compiler from optimising allocator calls away or assuming their results. */
static void *volatile sink;
static size_t opaque(size_t x) { return *(volatile size_t *)&x; }

static int aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static void fill_check(unsigned char *p, size_t n, unsigned char seed, const char *what)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i);
    (void)what;
}

static int same(const unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i))
            return 0;
    return 1;
}

static void test_malloc_sizes(void)
{
    static const size_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 255, 256, 257,
                                   496, 497, 511, 512, 513, 1000, 4096, 65536, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = malloc(opaque(n));
        CHECK(p != NULL, "malloc(%zu) returned NULL", n);
        if (!p)
            continue;
        CHECK(aligned_to(p, 16), "malloc(%zu) = %p is not 16-byte aligned", n, (void *)p);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "usable size %zu < %zu", u, n);
        memset(p, 0xab, u); /* all of the usable size is writable */
        fill_check(p, n, (unsigned char)n, "malloc");
        CHECK(same(p, n, (unsigned char)n), "contents of malloc(%zu)", n);
        free(p);
    }
    void *a = malloc(opaque(0)), *b = malloc(opaque(0));
    CHECK(a && b && a != b, "malloc(0) must give distinct non-NULL pointers (%p %p)", a, b);
    free(a);
    free(b);
    free(NULL);
}

static void test_impossible_sizes(void)
{
    errno = 0;
    sink = malloc(opaque(SIZE_MAX));
    CHECK(sink == NULL && errno == ENOMEM, "malloc(SIZE_MAX): %p errno %d", sink, errno);
    errno = 0;
    sink = malloc(opaque((size_t)PTRDIFF_MAX + 1));
    CHECK(sink == NULL && errno == ENOMEM, "malloc(PTRDIFF_MAX+1): %p errno %d", sink, errno);
    errno = 0;
    sink = calloc(opaque(SIZE_MAX / 2 + 2), 2);
    CHECK(sink == NULL && errno == ENOMEM, "calloc overflow: %p errno %d", sink, errno);
    errno = 0;
    sink = calloc(opaque(1) << 33, opaque(1) << 33);
    CHECK(sink == NULL && errno == ENOMEM, "calloc 2^66: %p errno %d", sink, errno);
    void *p = malloc(opaque(64));
    memset(p, 0x5a, 64);
    errno = 0;
    void *q = reallocarray(p, opaque(SIZE_MAX / 4), 8);
    CHECK(q == NULL && errno == ENOMEM, "reallocarray overflow: %p errno %d", q, errno);
    CHECK(((unsigned char *)p)[63] == 0x5a, "reallocarray overflow must leave p intact");
    errno = 0;
    q = realloc(p, opaque(SIZE_MAX - 8));
    CHECK(q == NULL && errno == ENOMEM, "realloc(p, huge): %p errno %d", q, errno);
    CHECK(((unsigned char *)p)[0] == 0x5a, "failed realloc must leave p intact");
    free(p);
}

static void test_calloc(void)
{
    static const size_t sizes[] = {0, 1, 16, 24, 100, 512, 513, 5000, 300000};
    /* Dirty memory first so that calloc has to zero recycled blocks. */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            unsigned char *d = malloc(opaque(n ? n : 1));
            memset(d, 0xee, n ? n : 1);
            free(d);
            unsigned char *p = calloc(opaque(n), 1);
            CHECK(p != NULL, "calloc(%zu, 1) is NULL", n);
            if (!p)
                continue;
            int zero = 1;
            for (size_t k = 0; k < n; k++)
                zero &= p[k] == 0;
            CHECK(zero, "calloc(%zu, 1) not zeroed", n);
            free(p);
        }
    }
    void *z = calloc(0, opaque(0));
    CHECK(z != NULL, "calloc(0, 0) returns a unique pointer on glibc");
    free(z);
}

static void test_realloc(void)
{
    /* realloc(NULL, n) is malloc(n). */
    unsigned char *p = realloc(NULL, opaque(10));
    CHECK(p != NULL, "realloc(NULL, 10)");
    fill_check(p, 10, 3, "");
    /* Grow and shrink across the 512-byte threshold; contents survive each move. */
    static const size_t steps[] = {10, 16, 17, 100, 400, 512, 513, 700, 5000, 600, 512,
                                   300, 200, 40, 1, 64, 100000, 20};
    size_t have = 10;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        unsigned char *q = realloc(p, opaque(n));
        CHECK(q != NULL, "realloc to %zu", n);
        if (!q)
            break;
        size_t keep = have < n ? have : n;
        CHECK(same(q, keep, 3), "contents lost when realloc %zu -> %zu", have, n);
        CHECK(aligned_to(q, 16), "realloc result not aligned");
        CHECK(malloc_usable_size(q) >= n, "usable after realloc");
        fill_check(q, n, 3, "");
        p = q;
        have = n;
    }
    /* glibc: realloc(p, 0) frees p and returns NULL. */
    errno = 0;
    void *r = realloc(p, opaque(0));
    CHECK(r == NULL, "realloc(p, 0) returns NULL on glibc (got %p)", r);
    /* reallocarray(NULL, n, m) is malloc. */
    p = reallocarray(NULL, opaque(3), 5);
    CHECK(p != NULL && malloc_usable_size(p) >= 15, "reallocarray(NULL, 3, 5)");
    free(p);
}

static void test_aligned(void)
{
    static const size_t aligns[] = {8, 16, 32, 64, 128, 256, 4096, 65536, 1 << 21};
    static const size_t sizes[] = {0, 1, 8, 16, 24, 100, 512, 513, 10000};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            size_t a = aligns[i], n = sizes[j];
            void *p = (void *)1;
            int rc = posix_memalign(&p, a, opaque(n));
            CHECK(rc == 0 && p && aligned_to(p, a), "posix_memalign(%zu, %zu) rc %d %p", a, n, rc, p);
            if (rc == 0) {
                CHECK(malloc_usable_size(p) >= n, "usable of posix_memalign");
                memset(p, 1, n);
                void *q = realloc(p, opaque(n + 100)); /* aligned blocks can be resized */
                CHECK(q != NULL, "realloc of an aligned block");
                free(q);
            }
            p = aligned_alloc(a, opaque(n));
            CHECK(p && aligned_to(p, a), "aligned_alloc(%zu, %zu) = %p", a, n, p);
            free(p);
            p = memalign(a, opaque(n));
            CHECK(p && aligned_to(p, a), "memalign(%zu, %zu) = %p", a, n, p);
            free(p);
        }
    }
    void *p = (void *)1;
    static const size_t bad[] = {0, 1, 2, 4, 3, 24, 48, 100};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = posix_memalign(&p, bad[i], 16);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) should be EINVAL, got %d", bad[i], rc);
        CHECK(p == (void *)1, "posix_memalign must not touch *memptr on error");
    }
    int rc = posix_memalign(&p, 64, opaque(SIZE_MAX - 100));
    CHECK(rc == ENOMEM && p == (void *)1, "posix_memalign huge: rc %d", rc);
    /* memalign rounds an odd alignment up to a power of two (glibc). */
    p = memalign(opaque(48), 10);
    CHECK(p && aligned_to(p, 64), "memalign(48) = %p", p);
    free(p);
    errno = 0;
    p = memalign(opaque(SIZE_MAX / 2 + 2), 10);
    CHECK(p == NULL && errno == EINVAL, "memalign(huge alignment): %p errno %d", p, errno);
    errno = 0;
    p = memalign(64, opaque(SIZE_MAX - 10));
    CHECK(p == NULL && errno == ENOMEM, "memalign huge size: errno %d", errno);

    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p = valloc(opaque(10));
    CHECK(p && aligned_to(p, page), "valloc");
    free(p);
    p = pvalloc(opaque(0));
    CHECK(p && aligned_to(p, page), "pvalloc(0) gives a page-aligned block");
    free(p);
    p = pvalloc(opaque(page + 1));
    CHECK(p && malloc_usable_size(p) >= 2 * page, "pvalloc rounds up to pages");
    free(p);
    errno = 0;
    p = pvalloc(opaque(SIZE_MAX - 10));
    CHECK(p == NULL && errno == ENOMEM, "pvalloc huge: errno %d", errno);
}

/* A block the C library handed out behind memshim's back (as one allocated before memshim
 * was loaded) must be accepted by free, realloc and malloc_usable_size.  Not in the debug
 * modes: there such a pointer is an invalid free, and reported (tests/hooks). */
static void test_foreign(void)
{
    const char *mode = getenv("MEMSHIM_MALLOC");
    if (mode != NULL && strstr(mode, "debug") != NULL)
        return;
    for (size_t n = 8; n <= 4096; n *= 4) {
        unsigned char *p = __libc_malloc(n);
        fill_check(p, n, 9, "");
        CHECK(malloc_usable_size(p) >= n, "usable size of a foreign block");
        unsigned char *q = realloc(p, n * 2);
        CHECK(q && same(q, n, 9), "realloc of a foreign block keeps contents");
        free(q);
        p = __libc_malloc(n);
        free(p);
    }
}

static void test_churn_contents(void)
{
    enum { N = 5000 };
    static unsigned char *ptrs[N];
    static size_t lens[N];
    unsigned seed = 12345;
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 1103515245 + 12345;
            if (ptrs[i]) {
                CHECK(same(ptrs[i], lens[i], (unsigned char)i), "block %d corrupted", i);
                free(ptrs[i]);
                ptrs[i] = NULL;
            }
            if (seed & 0x10000) {
                lens[i] = (seed >> 8) % 700;
                ptrs[i] = malloc(lens[i]);
                fill_check(ptrs[i], lens[i], (unsigned char)i, "");
            }
        }
    }
    for (int i = 0; i < N; i++)
        free(ptrs[i]);
}

int main(void)
{
    test_malloc_sizes();
    test_impossible_sizes();
    test_calloc();
    test_realloc();
    test_aligned();
    test_foreign();
    test_churn_contents();
    return check_summary();
}
