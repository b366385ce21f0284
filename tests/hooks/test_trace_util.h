/* SPDX-License-Identifier: MIT */
/*
 * Shared by the trace layer's tests: a lower allocator that is simply the C library, and
 * reading back what a collect-only struct ms_out gathered.
 */
#ifndef MS_TEST_TRACE_UTIL_H
#define MS_TEST_TRACE_UTIL_H

#include <stdlib.h>

#include "allocator.h"
#include "fmt.h"

static inline void *libc_malloc(void *ctx, size_t n) { (void)ctx; return malloc(n ? n : 1); }
static inline void *libc_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    return calloc(a ? a : 1, b ? b : 1);
}
static inline void *libc_realloc(void *ctx, void *p, size_t n) { (void)ctx; return realloc(p, n ? n : 1); }
static inline void libc_free(void *ctx, void *p) { (void)ctx; free(p); }
static inline void *libc_memalign(void *ctx, size_t a, size_t n)
{
    (void)ctx;
    void *p;
    return posix_memalign(&p, a, n) ? NULL : p;
}
static inline size_t libc_usable(void *ctx, void *p) { (void)ctx; (void)p; return 0; }

static const struct ms_allocator libc_lower = { NULL, libc_malloc, libc_calloc, libc_realloc,
                                                libc_free, libc_memalign, libc_usable };

/* The text a collect-only (fd -1) output gathered, as a C string. */
static inline const char *collected(struct ms_out *o)
{
    o->buf[o->len < sizeof o->buf ? o->len : sizeof o->buf - 1] = '\0';
    return o->buf;
}

#endif
