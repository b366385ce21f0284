/* SPDX-License-Identifier: MIT */
/*
 * The malloc family as the program sees it: glibc's list of functions a replacement
 * allocator must provide, with glibc's documented behaviour at the edges (errno, EINVAL,
 * overflow checks, realloc(p, 0) frees).  The layers below follow allocator.h; everything
 * that is C-library convention rather than allocation lives here.
 *
 * Hot path: malloc and free on the PYMALLOC route are a load of the route and a direct call.
 * Never: prints, reads the environment, or takes a lock itself.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "guard.h"
#include "libc.h"
#include "pymalloc.h"
#include "stack.h"

#define MS_EXPORT __attribute__((visibility("default")))
#define MS_LIKELY(x) __builtin_expect(!!(x), 1)
#define MS_UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline void *fail_enomem(void)
{
    errno = ENOMEM;
    return NULL;
}

/* Calls made on the STACK route by memshim's own code (guard raised) or by start-up go
 * straight to the C library. */
static inline bool bypass_stack(void)
{
    return ms_guard_active();
}

static void *route_malloc(enum ms_route r, size_t size)
{
    switch (r) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_malloc(NULL, size);
    case MS_ROUTE_STACK:
        if (!bypass_stack())
            return ms_shim.top.malloc(ms_shim.top.ctx, size);
        return __libc_malloc(size);
    case MS_ROUTE_BOOTSTRAP: {
        void *p = __libc_malloc(size);
        ms_shim_bootstrap_record(p);
        return p;
    }
    default:
        return __libc_malloc(size);
    }
}

static void route_free(enum ms_route r, void *ptr)
{
    switch (r) {
    case MS_ROUTE_PYMALLOC:
        ms_pymalloc_free(NULL, ptr);
        return;
    case MS_ROUTE_STACK:
        if (!bypass_stack() && !ms_shim_bootstrap_forget(ptr)) {
            ms_shim.top.free(ms_shim.top.ctx, ptr);
            return;
        }
        __libc_free(ptr);
        return;
    case MS_ROUTE_BOOTSTRAP:
        ms_shim_bootstrap_forget(ptr);
        __libc_free(ptr);
        return;
    default:
        __libc_free(ptr);
        return;
    }
}

/* Resize with the layers' semantics (size 0 does not free). */
static void *route_realloc(enum ms_route r, void *ptr, size_t size)
{
    switch (r) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_realloc(NULL, ptr, size);
    case MS_ROUTE_STACK:
        if (!bypass_stack() && !(ptr != NULL && ms_shim_bootstrap_forget(ptr)))
            return ms_shim.top.realloc(ms_shim.top.ctx, ptr, size);
        return __libc_realloc(ptr, size);
    case MS_ROUTE_BOOTSTRAP: {
        bool known = ptr == NULL || ms_shim_bootstrap_forget(ptr);
        void *q = __libc_realloc(ptr, size);
        if (known || q != NULL)
            ms_shim_bootstrap_record(q != NULL ? q : ptr);
        return q;
    }
    default:
        return __libc_realloc(ptr, size);
    }
}

/* alignment: a power of two. */
static void *route_memalign(enum ms_route r, size_t alignment, size_t size)
{
    switch (r) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_memalign(NULL, alignment, size);
    case MS_ROUTE_STACK:
        if (!bypass_stack())
            return ms_shim.top.memalign(ms_shim.top.ctx, alignment, size);
        return __libc_memalign(alignment, size);
    case MS_ROUTE_BOOTSTRAP: {
        void *p = __libc_memalign(alignment, size);
        ms_shim_bootstrap_record(p);
        return p;
    }
    default:
        return __libc_memalign(alignment, size);
    }
}

MS_EXPORT void *malloc(size_t size)
{
    enum ms_route r = ms_shim_route();
    void *p = MS_LIKELY(r == MS_ROUTE_PYMALLOC) ? ms_pymalloc_malloc(NULL, size)
                                                : route_malloc(r, size);
    return MS_LIKELY(p != NULL) ? p : fail_enomem();
}

MS_EXPORT void free(void *ptr)
{
    enum ms_route r = ms_shim_route();
    if (MS_LIKELY(r == MS_ROUTE_PYMALLOC))
        ms_pymalloc_free(NULL, ptr);
    else if (ptr != NULL)
        route_free(r, ptr);
}

MS_EXPORT void *calloc(size_t nelem, size_t elsize)
{
    size_t total;
    if (__builtin_mul_overflow(nelem, elsize, &total))
        return fail_enomem();
    enum ms_route r = ms_shim_route();
    void *p;
    switch (r) {
    case MS_ROUTE_PYMALLOC:
        p = ms_pymalloc_calloc(NULL, nelem, elsize);
        break;
    case MS_ROUTE_STACK:
        if (!bypass_stack()) {
            p = ms_shim.top.calloc(ms_shim.top.ctx, nelem, elsize);
            break;
        }
        p = __libc_calloc(nelem, elsize);
        break;
    case MS_ROUTE_BOOTSTRAP:
        p = __libc_calloc(nelem, elsize);
        ms_shim_bootstrap_record(p);
        break;
    default:
        p = __libc_calloc(nelem, elsize);
        break;
    }
    return p ? p : fail_enomem();
}

MS_EXPORT void *realloc(void *ptr, size_t size)
{
    enum ms_route r = ms_shim_route();
    if (ptr != NULL && size == 0) {
        /* glibc: realloc(p, 0) frees p and returns NULL. */
        route_free(r, ptr);
        return NULL;
    }
    void *q = route_realloc(r, ptr, size);
    return q ? q : fail_enomem();
}

MS_EXPORT void *reallocarray(void *ptr, size_t nelem, size_t elsize)
{
    size_t total;
    if (__builtin_mul_overflow(nelem, elsize, &total))
        return fail_enomem();
    return realloc(ptr, total);
}

static bool is_power_of_two(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* glibc's memalign rounds an alignment that is not a power of two up to one, and serves
 * alignments up to the malloc alignment like malloc. */
static void *aligned(size_t alignment, size_t size)
{
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!is_power_of_two(alignment)) {
        size_t a = 1;
        while (a < alignment)
            a <<= 1;
        alignment = a;
    }
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    void *p = route_memalign(ms_shim_route(), alignment, size);
    return p ? p : fail_enomem();
}

MS_EXPORT void *memalign(size_t alignment, size_t size)
{
    return aligned(alignment, size);
}

/* C17 and glibc 2.38+: an alignment that is not a power of two is an error. */
MS_EXPORT void *aligned_alloc(size_t alignment, size_t size)
{
    if (!is_power_of_two(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(alignment, size);
}

MS_EXPORT int posix_memalign(void **memptr, size_t alignment, size_t size)
{
    if (!is_power_of_two(alignment) || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved_errno = errno;
    void *p = aligned(alignment, size);
    int err = p ? 0 : errno;
    errno = saved_errno;
    if (p == NULL)
        return err == EINVAL ? EINVAL : ENOMEM;
    *memptr = p;
    return 0;
}

MS_EXPORT void *valloc(size_t size)
{
    return aligned((size_t)sysconf(_SC_PAGESIZE), size);
}

MS_EXPORT void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - page)
        return fail_enomem();
    /* glibc rounds 0 to 0 (a minimal page-aligned block), not to a page. */
    size_t rounded = (size + page - 1) & ~(page - 1);
    return aligned(page, rounded);
}

MS_EXPORT size_t malloc_usable_size(void *ptr)
{
    if (ptr == NULL)
        return 0;
    enum ms_route r = ms_shim_route();
    switch (r) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_usable_size(NULL, ptr);
    case MS_ROUTE_STACK:
        if (!bypass_stack() && !ms_shim_bootstrap_contains(ptr))
            return ms_shim.top.usable_size(ms_shim.top.ctx, ptr);
        return ms_libc_usable_size(NULL, ptr);
    default:
        return ms_libc_usable_size(NULL, ptr);
    }
}
