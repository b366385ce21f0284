/* SPDX-License-Identifier: MIT */
/*
 * Hostile sizes: every entry point swept across the SIZE_MAX and PTRDIFF_MAX boundaries,
 * where "size + header", "size + alignment", "round up to a page" and "n * size" overflow
 * (the debug layer adds 4 words, pvalloc rounds to pages, memalign adds the alignment).
 * Every such request must fail cleanly: NULL (or a non-zero posix_memalign code) with
 * ENOMEM or EINVAL, *memptr untouched, a block given to realloc intact - never a crash,
 * never a small block for a huge request.  tests/shim/edge.c checks one point per
 * function; this sweeps the neighbourhoods.  Run plainly (glibc) and in every mode.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shim/check.h"

/* The failed-realloc checks read p on purpose: a failure leaves it valid. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static void *volatile sink;
static size_t opaque(size_t x) { return *(volatile size_t *)&x; }

/* The sizes near each boundary that can overflow an addition of up to 2 pages + a few
 * words, or a rounding to a page. */
static size_t huge_sizes[600];
static size_t nhuge;

static void make_sizes(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t k = 0; k <= 160; k++)
        huge_sizes[nhuge++] = SIZE_MAX - k;                   /* + header words */
    for (size_t k = 0; k <= 2 * page + 64; k += 61)
        huge_sizes[nhuge++] = SIZE_MAX - k;                   /* + alignment, + page */
    for (size_t k = 0; k <= 64; k += 8) {
        huge_sizes[nhuge++] = (size_t)PTRDIFF_MAX - k;
        huge_sizes[nhuge++] = (size_t)PTRDIFF_MAX + 1 + k;
    }
    huge_sizes[nhuge++] = SIZE_MAX / 2;
    huge_sizes[nhuge++] = (size_t)1 << 62;
    huge_sizes[nhuge++] = ((size_t)1 << 48) + 1;              /* beyond the address space */
}

static int fail_errno(void)
{
    return errno == ENOMEM || errno == EINVAL;
}

static void huge_malloc_family(void)
{
    for (size_t i = 0; i < nhuge; i++) {
        size_t n = opaque(huge_sizes[i]);
        errno = 0;
        sink = malloc(n);
        CHECK(sink == NULL && errno == ENOMEM, "malloc(%#zx) = %p errno %d", n, sink, errno);
        errno = 0;
        sink = calloc(1, n);
        CHECK(sink == NULL && errno == ENOMEM, "calloc(1, %#zx) = %p errno %d", n, sink, errno);
        errno = 0;
        sink = calloc(n, 1);
        CHECK(sink == NULL && errno == ENOMEM, "calloc(%#zx, 1) = %p errno %d", n, sink, errno);
        errno = 0;
        sink = valloc(n);
        CHECK(sink == NULL && errno == ENOMEM, "valloc(%#zx) = %p errno %d", n, sink, errno);
        errno = 0;
        sink = pvalloc(n);
        CHECK(sink == NULL && errno == ENOMEM, "pvalloc(%#zx) = %p errno %d", n, sink, errno);
        errno = 0;
        sink = realloc(NULL, n);
        CHECK(sink == NULL && errno == ENOMEM, "realloc(NULL, %#zx) = %p errno %d", n, sink,
              errno);
    }
}

/* Products just above SIZE_MAX, and the largest ones below it. */
static void calloc_products(void)
{
    for (unsigned s = 1; s < 64; s++) {
        size_t a = (size_t)1 << s;
        size_t b = SIZE_MAX / a + 1;                /* a * b overflows by less than a */
        errno = 0;
        sink = calloc(opaque(a), opaque(b));
        CHECK(sink == NULL && errno == ENOMEM, "calloc(%#zx, %#zx) = %p", a, b, sink);
        errno = 0;
        sink = calloc(opaque(b), opaque(a));
        CHECK(sink == NULL && errno == ENOMEM, "calloc(%#zx, %#zx) = %p", b, a, sink);
        errno = 0;
        sink = calloc(opaque(a), opaque(SIZE_MAX / a));   /* no overflow, still impossible */
        CHECK(sink == NULL && errno == ENOMEM, "calloc(%#zx, %#zx) = %p", a, SIZE_MAX / a, sink);
        size_t odd = a + 1, c = SIZE_MAX / odd + 1;
        errno = 0;
        sink = calloc(opaque(odd), opaque(c));
        CHECK(sink == NULL && errno == ENOMEM, "calloc(%#zx, %#zx) = %p", odd, c, sink);
    }
}

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i);
}

static int intact(const unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i))
            return 0;
    return 1;
}

/* A failed realloc or reallocarray leaves every kind of block as it was. */
static void realloc_keeps_blocks(void)
{
    static const size_t sizes[] = {1, 16, 100, 512, 513, 4096, 100000};
    for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
        size_t n = sizes[j];
        unsigned char *blocks[3];
        blocks[0] = malloc(opaque(n));
        blocks[1] = calloc(opaque(n), 1);
        blocks[2] = NULL;
        CHECK(posix_memalign((void **)&blocks[2], 4096, opaque(n)) == 0, "posix_memalign");
        for (int b = 0; b < 3; b++) {
            unsigned char *p = blocks[b];
            if (p == NULL)
                continue;
            fill(p, n, (unsigned char)(j + b));
            for (size_t i = 0; i < nhuge; i += 7) {
                errno = 0;
                void *q = realloc(p, opaque(huge_sizes[i]));
                CHECK(q == NULL && errno == ENOMEM, "realloc(%zu-byte block, %#zx) = %p", n,
                      huge_sizes[i], q);
                errno = 0;
                q = reallocarray(p, opaque(huge_sizes[i]), 1);
                CHECK(q == NULL && errno == ENOMEM, "reallocarray(%zu-byte block, %#zx, 1)", n,
                      huge_sizes[i]);
                errno = 0;
                q = reallocarray(p, opaque(SIZE_MAX / 3 + 1), 3);
                CHECK(q == NULL && errno == ENOMEM, "reallocarray overflow");
            }
            CHECK(intact(p, n, (unsigned char)(j + b)), "failed reallocs changed a %zu-byte block", n);
            CHECK(malloc_usable_size(p) >= n, "usable size after failed reallocs");
            free(p);
        }
    }
}

/* Every alignment from 8 to 2^63 with small and impossible sizes. */
static void aligned_boundaries(void)
{
    for (unsigned s = 3; s < 64; s++) {
        size_t a = (size_t)1 << s;
        int possible = s <= 30;                 /* alignments the machine can honour */
        for (size_t i = 0; i < nhuge; i += 5) {
            size_t n = opaque(huge_sizes[i]);
            void *p = (void *)&sink;
            int rc = posix_memalign(&p, a, n);
            CHECK(rc == ENOMEM && p == (void *)&sink, "posix_memalign(%#zx, %#zx) rc %d %p", a,
                  n, rc, p);
            errno = 0;
            sink = memalign(a, n);
            CHECK(sink == NULL && fail_errno(), "memalign(%#zx, %#zx) = %p errno %d", a, n,
                  sink, errno);
            errno = 0;
            sink = aligned_alloc(a, n);
            CHECK(sink == NULL && fail_errno(), "aligned_alloc(%#zx, %#zx) = %p errno %d", a,
                  n, sink, errno);
            /* Just below the size that overflows size + alignment. */
            n = opaque(SIZE_MAX - a - (huge_sizes[i] & 63));
            errno = 0;
            sink = memalign(a, n);
            CHECK(sink == NULL && fail_errno(), "memalign(%#zx, %#zx) = %p errno %d", a, n,
                  sink, errno);
        }
        /* A huge alignment with a small size: a block aligned as asked, or a clean
         * failure (glibc: ENOMEM once the alignment cannot be mapped).  Only up to 1 GiB,
         * to keep the reserved address space small. */
        for (size_t n = 0; s <= 30 && n <= 600; n += 100) {
            void *p = (void *)&sink;
            int rc = posix_memalign(&p, a, opaque(n));
            if (rc == 0) {
                CHECK(((uintptr_t)p & (a - 1)) == 0 && malloc_usable_size(p) >= n,
                      "posix_memalign(%#zx, %zu) = %p", a, n, p);
                free(p);
            } else {
                CHECK(!possible && rc == ENOMEM && p == (void *)&sink,
                      "posix_memalign(%#zx, %zu) rc %d", a, n, rc);
            }
            errno = 0;
            p = memalign(a, opaque(n));
            CHECK(p != NULL ? ((uintptr_t)p & (a - 1)) == 0 : !possible && fail_errno(),
                  "memalign(%#zx, %zu) = %p errno %d", a, n, p, errno);
            free(p);
        }
    }
    /* Not powers of two, from 2^63 + 1 up: EINVAL from posix_memalign, NULL elsewhere. */
    for (size_t k = 1; k < 64; k += 7) {
        size_t a = ((size_t)1 << 63) + k;
        void *p = (void *)&sink;
        int rc = posix_memalign(&p, opaque(a), 16);
        CHECK(rc == EINVAL && p == (void *)&sink, "posix_memalign(%#zx) rc %d", a, rc);
        errno = 0;
        sink = memalign(opaque(a), 16);
        CHECK(sink == NULL && errno == EINVAL, "memalign(%#zx) errno %d", a, errno);
        errno = 0;
        sink = aligned_alloc(opaque(a), 16);
        CHECK(sink == NULL && fail_errno(), "aligned_alloc(%#zx) errno %d", a, errno);
    }
}

int main(void)
{
    make_sizes();
    huge_malloc_family();
    calloc_products();
    realloc_keeps_blocks();
    aligned_boundaries();
    /* Still a working allocator afterwards. */
    for (size_t n = 1; n < 5000; n += 97) {
        unsigned char *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu) after the hostile sizes", n);
        if (p != NULL) {
            fill(p, n, 7);
            CHECK(intact(p, n, 7), "a fresh block");
        }
        free(p);
    }
    return check_summary();
}
