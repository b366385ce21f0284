/* SPDX-License-Identifier: MIT */
/*
 * The C library as an allocator struct.  glibc's realloc(p, 0) frees p; the layers' contract
 * says it must not, so a 0-byte resize asks glibc for 1 byte instead.
 *
 * Never: calls the interposed malloc family (only __libc_* and the resolved
 * malloc_usable_size).  Thread-safe as glibc is.
 */
#include "libc.h"

#include <dlfcn.h>

static struct {
    size_t (*usable_size)(void *);
} libc;

void ms_libc_init(void)
{
    extern size_t malloc_usable_size(void *);
    void *sym = dlsym(RTLD_NEXT, "malloc_usable_size");
    /* Never our own export: that would recurse forever. */
    if (sym != NULL && sym != (void *)malloc_usable_size)
        libc.usable_size = (size_t(*)(void *))sym;
}

static void *libc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return __libc_malloc(size);
}

static void *libc_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    return __libc_calloc(nelem, elsize);
}

static void *libc_realloc(void *ctx, void *ptr, size_t new_size)
{
    (void)ctx;
    return __libc_realloc(ptr, new_size ? new_size : 1);
}

static void libc_free(void *ctx, void *ptr)
{
    (void)ctx;
    __libc_free(ptr);
}

static void *libc_memalign(void *ctx, size_t alignment, size_t size)
{
    (void)ctx;
    return __libc_memalign(alignment, size);
}

size_t ms_libc_usable_size(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr == NULL)
        return 0;
    if (libc.usable_size == NULL)
        ms_libc_init();
    /* Without glibc's function (a static or unusual C library) the only safe answer that
     * keeps "usable >= requested" is unknowable; report 0 rather than guess. */
    return libc.usable_size ? libc.usable_size(ptr) : 0;
}

struct ms_allocator ms_libc_allocator(void)
{
    return (struct ms_allocator){
        .ctx = NULL,
        .malloc = libc_malloc,
        .calloc = libc_calloc,
        .realloc = libc_realloc,
        .free = libc_free,
        .memalign = libc_memalign,
        .usable_size = ms_libc_usable_size,
    };
}
