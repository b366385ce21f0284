/* SPDX-License-Identifier: MIT */
/*
 * Sends one malloc-family operation of one family (C, C++ new, new[]) down the route chosen
 * at start-up: straight to pymalloc or the C library, through the composed stack, or, for
 * memshim's own allocations (guard raised) and start-up's nested calls, to the C library.
 *
 * Hot path for the non-default routes; the default route's malloc/free are inlined in
 * interpose.c and never come here.  Never: prints or takes a lock.
 */
#include "guard.h"
#include "libc.h"
#include "pymalloc.h"
#include "stack.h"

/* The top of the stack for one family: fn and ctx are read from one set (the set is
 * swapped when tracing starts at run time). */
static inline void *top_malloc(enum ms_api api, size_t size)
{
    const struct ms_allocator *t = ms_shim_top(api);
    return t->malloc(t->ctx, size);
}

static inline void *top_calloc(enum ms_api api, size_t nelem, size_t elsize)
{
    const struct ms_allocator *t = ms_shim_top(api);
    return t->calloc(t->ctx, nelem, elsize);
}

static inline void *top_realloc(enum ms_api api, void *ptr, size_t size)
{
    const struct ms_allocator *t = ms_shim_top(api);
    return t->realloc(t->ctx, ptr, size);
}

static inline void top_free(enum ms_api api, void *ptr)
{
    const struct ms_allocator *t = ms_shim_top(api);
    t->free(t->ctx, ptr);
}

static inline void *top_memalign(enum ms_api api, size_t alignment, size_t size)
{
    const struct ms_allocator *t = ms_shim_top(api);
    return t->memalign(t->ctx, alignment, size);
}

static inline size_t top_usable_size(enum ms_api api, void *ptr)
{
    const struct ms_allocator *t = ms_shim_top(api);
    return t->usable_size(t->ctx, ptr);
}

/* memshim's own allocations (libunwind, libdw: guard raised) never enter the stack. */
static inline bool own_call(void)
{
    return ms_guard_active();
}

void *ms_route_malloc(enum ms_api api, size_t size)
{
    switch (ms_shim_route()) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_malloc(NULL, size);
    case MS_ROUTE_STACK:
        if (!own_call())
            return top_malloc(api, size);
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

void *ms_route_calloc(enum ms_api api, size_t nelem, size_t elsize)
{
    switch (ms_shim_route()) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_calloc(NULL, nelem, elsize);
    case MS_ROUTE_STACK:
        if (!own_call())
            return top_calloc(api, nelem, elsize);
        return __libc_calloc(nelem, elsize);
    case MS_ROUTE_BOOTSTRAP: {
        void *p = __libc_calloc(nelem, elsize);
        ms_shim_bootstrap_record(p);
        return p;
    }
    default:
        return __libc_calloc(nelem, elsize);
    }
}

void ms_route_free(enum ms_api api, void *ptr)
{
    if (ptr == NULL)
        return;
    switch (ms_shim_route()) {
    case MS_ROUTE_PYMALLOC:
        ms_pymalloc_free(NULL, ptr);
        return;
    case MS_ROUTE_STACK:
        if (!own_call() && !ms_shim_bootstrap_forget(ptr)) {
            top_free(api, ptr);
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

void *ms_route_realloc(enum ms_api api, void *ptr, size_t size)
{
    switch (ms_shim_route()) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_realloc(NULL, ptr, size);
    case MS_ROUTE_STACK:
        if (!own_call() && !(ptr != NULL && ms_shim_bootstrap_forget(ptr)))
            return top_realloc(api, ptr, size);
        return __libc_realloc(ptr, size ? size : 1);
    case MS_ROUTE_BOOTSTRAP: {
        ms_shim_bootstrap_forget(ptr);
        void *q = __libc_realloc(ptr, size ? size : 1);
        ms_shim_bootstrap_record(q != NULL ? q : ptr);
        return q;
    }
    default:
        return __libc_realloc(ptr, size ? size : 1);
    }
}

void *ms_route_memalign(enum ms_api api, size_t alignment, size_t size)
{
    switch (ms_shim_route()) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_memalign(NULL, alignment, size);
    case MS_ROUTE_STACK:
        if (!own_call())
            return top_memalign(api, alignment, size);
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

size_t ms_route_usable_size(enum ms_api api, void *ptr)
{
    if (ptr == NULL)
        return 0;
    switch (ms_shim_route()) {
    case MS_ROUTE_PYMALLOC:
        return ms_pymalloc_usable_size(NULL, ptr);
    case MS_ROUTE_STACK:
        if (!own_call() && !ms_shim_bootstrap_contains(ptr))
            return top_usable_size(api, ptr);
        return ms_libc_usable_size(NULL, ptr);
    default:
        return ms_libc_usable_size(NULL, ptr);
    }
}
