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

#include "loader.h"
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

/* On the PYMALLOC route a NULL can only come from the lower allocator (pymalloc falls back
 * to it when it cannot get an arena), which has set errno to ENOMEM already; so malloc and
 * calloc tail-call pymalloc without a frame of their own. */
MS_EXPORT void *malloc(size_t size)
{
    if (MS_LIKELY(ms_shim_route() == MS_ROUTE_PYMALLOC))
        return ms_pymalloc_malloc(NULL, size);
    void *p = MS_UNLIKELY(ms_loader_called(__builtin_return_address(0)))
                  ? ms_loader_malloc(size)
                  : ms_route_malloc(MS_API_C, size);
    return MS_LIKELY(p != NULL) ? p : fail_enomem();
}

MS_EXPORT void free(void *ptr)
{
    if (MS_LIKELY(ms_shim_route() == MS_ROUTE_PYMALLOC))
        ms_pymalloc_free(NULL, ptr);
    else
        ms_route_free(MS_API_C, ptr);
}

MS_EXPORT void *calloc(size_t nelem, size_t elsize)
{
    size_t total;
    if (__builtin_mul_overflow(nelem, elsize, &total))
        return fail_enomem();
    if (MS_LIKELY(ms_shim_route() == MS_ROUTE_PYMALLOC))
        return ms_pymalloc_calloc(NULL, nelem, elsize);
    void *p = MS_UNLIKELY(ms_loader_called(__builtin_return_address(0)))
                  ? ms_loader_calloc(nelem, elsize)
                  : ms_route_calloc(MS_API_C, nelem, elsize);
    return p ? p : fail_enomem();
}

static void *resize(void *ptr, size_t size)
{
    if (ptr != NULL && size == 0) {
        /* glibc: realloc(p, 0) frees p and returns NULL. */
        ms_route_free(MS_API_C, ptr);
        return NULL;
    }
    void *q = ms_route_realloc(MS_API_C, ptr, size);
    return q ? q : fail_enomem();
}

MS_EXPORT void *realloc(void *ptr, size_t size)
{
    return resize(ptr, size);
}

MS_EXPORT void *reallocarray(void *ptr, size_t nelem, size_t elsize)
{
    size_t total;
    if (__builtin_mul_overflow(nelem, elsize, &total))
        return fail_enomem();
    return resize(ptr, total);
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
    void *p = ms_route_memalign(MS_API_C, alignment, size);
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
    return ms_route_usable_size(MS_API_C, ptr);
}
