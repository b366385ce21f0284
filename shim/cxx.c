/* SPDX-License-Identifier: MIT */
/*
 * C++'s replaceable global operator new and delete, every standard variant (plain, nothrow,
 * sized, aligned), so that in a debug mode each family carries its own API id and a
 * new/free, malloc/delete or new[]/delete mismatch is caught as a bad ID, and a sized
 * delete of the wrong size is caught too.  In the other
 * modes they are simply faster than libstdc++'s (one call instead of two).
 *
 * Written in C with the Itanium ABI's mangled names.  On failure the throwing forms follow
 * the standard: call the installed new-handler and retry, or throw std::bad_alloc through
 * libstdc++'s own std::__throw_bad_alloc (looked up at that moment: only a C++ program can
 * get here, and it has libstdc++ loaded).  The nothrow forms return NULL without calling
 * the handler (a handler that throws could not be caught from C).
 *
 * Never: on the hot path beyond one call into shim/route.c (and, for a sized delete, one
 * test of whether the debug layer is in use).
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

#include "debug.h"
#include "stack.h"

#define MS_EXPORT __attribute__((visibility("default")))

static void *grow_or_throw(enum ms_api api, size_t size, size_t alignment)
{
    for (;;) {
        void *p = alignment > 16 ? ms_route_memalign(api, alignment, size)
                                 : ms_route_malloc(api, size);
        if (p != NULL)
            return p;
        void (*(*get_handler)(void))(void) =
            (void (*(*)(void))(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
        void (*handler)(void) = get_handler ? get_handler() : NULL;
        if (handler != NULL) {
            handler();
            continue;
        }
        void (*throw_bad_alloc)(void) =
            (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
        if (throw_bad_alloc != NULL)
            throw_bad_alloc();
        abort(); /* no C++ runtime: nothing else is allowed to return */
    }
}

static size_t valid_alignment(size_t alignment)
{
    /* std::align_val_t must be a power of two; anything else is undefined behaviour, which
     * is served as the next power of two rather than crashing. */
    size_t a = sizeof(void *);
    while (a < alignment && a != 0)
        a <<= 1;
    return a ? a : alignment;
}

static void *nothrow_alloc(enum ms_api api, size_t size, size_t alignment)
{
    return alignment > 16 ? ms_route_memalign(api, alignment, size)
                          : ms_route_malloc(api, size);
}

/* new / new[] */
MS_EXPORT void *_Znwm(size_t n) { return grow_or_throw(MS_API_NEW, n, 0); }
MS_EXPORT void *_Znam(size_t n) { return grow_or_throw(MS_API_NEW_ARRAY, n, 0); }
MS_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt)
{
    (void)nt;
    return nothrow_alloc(MS_API_NEW, n, 0);
}
MS_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt)
{
    (void)nt;
    return nothrow_alloc(MS_API_NEW_ARRAY, n, 0);
}
MS_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al)
{
    return grow_or_throw(MS_API_NEW, n, valid_alignment(al));
}
MS_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al)
{
    return grow_or_throw(MS_API_NEW_ARRAY, n, valid_alignment(al));
}
MS_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{
    (void)nt;
    return nothrow_alloc(MS_API_NEW, n, valid_alignment(al));
}
MS_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt)
{
    (void)nt;
    return nothrow_alloc(MS_API_NEW_ARRAY, n, valid_alignment(al));
}

/* Sized delete: in a debug mode the size must be the one the block was made for (ASan's
 * new-delete-type-mismatch); the alignment adds nothing the layers do not know. */
static void sized_free(enum ms_api api, void *p, size_t n)
{
    if (ms_shim.debug_in_stack)
        ms_debug_check_sized_delete(api == MS_API_NEW ? MS_DEBUG_API_NEW
                                                      : MS_DEBUG_API_NEW_ARRAY, p, n);
    ms_route_free(api, p);
}

MS_EXPORT void _ZdlPv(void *p) { ms_route_free(MS_API_NEW, p); }
MS_EXPORT void _ZdaPv(void *p) { ms_route_free(MS_API_NEW_ARRAY, p); }
MS_EXPORT void _ZdlPvm(void *p, size_t n) { sized_free(MS_API_NEW, p, n); }
MS_EXPORT void _ZdaPvm(void *p, size_t n) { sized_free(MS_API_NEW_ARRAY, p, n); }
MS_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt)
{
    (void)nt;
    ms_route_free(MS_API_NEW, p);
}
MS_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt)
{
    (void)nt;
    ms_route_free(MS_API_NEW_ARRAY, p);
}
MS_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al)
{
    (void)al;
    ms_route_free(MS_API_NEW, p);
}
MS_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t al)
{
    (void)al;
    ms_route_free(MS_API_NEW_ARRAY, p);
}
MS_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al)
{
    (void)al;
    sized_free(MS_API_NEW, p, n);
}
MS_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al)
{
    (void)al;
    sized_free(MS_API_NEW_ARRAY, p, n);
}
MS_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt)
{
    (void)al;
    (void)nt;
    ms_route_free(MS_API_NEW, p);
}
MS_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt)
{
    (void)al;
    (void)nt;
    ms_route_free(MS_API_NEW_ARRAY, p);
}
