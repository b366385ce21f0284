/* SPDX-License-Identifier: MIT */
/*
 * Blocks the dynamic loader gets from the C library while memshim's guard is up.
 *
 * A library memshim dlopen()s (libunwind in the modes that walk stacks, libdw and libelf
 * for symbols) gets its thread-local storage from ld.so lazily: a thread's first access
 * makes __tls_get_addr call malloc.  memshim makes that access itself, unwinding or
 * symbolising with its guard raised, so the block comes from the C library (route.c).  The
 * C library frees it when the thread's stack is reused or released, outside the guard, and
 * a debug layer that never saw the block would call a correct program's thread exit an
 * invalid free.  So a malloc or calloc that ld.so's code makes under the guard, with a
 * debug layer in use, is remembered here, and the debug layer asks here (its foreign
 * hooks) before it reports a pointer it does not know.  Only those blocks are excused: a
 * wild or double free is still reported, whoever makes it.
 *
 * The set is small (a block per thread and per such library) and is touched only on those
 * allocations and on the debug layer's error path: never on the hot path.
 *
 * Not covered: ld.so growing a thread's DTV by realloc under the guard (only after more
 * than 14 libraries with thread-local storage were loaded since the thread started).
 */
#include "loader.h"

#include <link.h>
#include <pthread.h>

#include "guard.h"
#include "libc.h"
#include "ptrset.h"
#include "spinlock.h"

#define LOADER_SLOTS 8192        /* a power of two */

struct ms_loader_set {
    struct ms_spin lock;
    size_t count;                /* live entries (tombstones not counted) */
    void *slot[LOADER_SLOTS];
};

static struct ms_loader_set loader_set;

/* A function of ld.so's whose address memshim can take. */
extern void *__tls_get_addr(void *);

static int find_loader(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t a = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && a - lo < ph->p_memsz) {
            ms_shim.loader_lo = lo;
            __atomic_store_n(&ms_shim.loader_len, ph->p_memsz, __ATOMIC_RELEASE);
            return 1;
        }
    }
    return 0;
}

static void find_loader_once(void)
{
    dl_iterate_phdr(find_loader, (void *)(uintptr_t)&__tls_get_addr);
}

void ms_loader_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_loader_once);
}

static void *remember(void *p)
{
    if (p != NULL) {
        ms_spin_lock(&loader_set.lock);
        /* Kept at most half full; past that the block is not remembered (its free would
         * then be reported). */
        if (loader_set.count < LOADER_SLOTS / 2) {
            ms_ptrset_insert(loader_set.slot, LOADER_SLOTS, p);
            loader_set.count++;
        }
        ms_spin_unlock(&loader_set.lock);
    }
    return p;
}

/* The C family's stack has a debug layer (the mode's: the public API's run-time debug
 * hooks cover other families) and this call comes from inside memshim. */
static bool remembered_here(void)
{
    return ms_guard_active() && ms_shim.route == MS_ROUTE_STACK && ms_shim.options.debug;
}

void *ms_loader_malloc(size_t size)
{
    if (!remembered_here())
        return ms_route_malloc(MS_API_C, size);
    return remember(__libc_malloc(size));
}

void *ms_loader_calloc(size_t nelem, size_t elsize)
{
    if (!remembered_here())
        return ms_route_calloc(MS_API_C, nelem, elsize);
    return remember(__libc_calloc(nelem, elsize));
}

size_t ms_loader_block_size(void *p)
{
    if (__atomic_load_n(&loader_set.count, __ATOMIC_RELAXED) == 0)
        return 0;
    ms_spin_lock(&loader_set.lock);
    bool known = ms_ptrset_find(loader_set.slot, LOADER_SLOTS, p) != NULL;
    ms_spin_unlock(&loader_set.lock);
    return known ? ms_libc_usable_size(NULL, p) : 0;
}

void ms_loader_block_free(void *p)
{
    ms_spin_lock(&loader_set.lock);
    void **slot = ms_ptrset_find(loader_set.slot, LOADER_SLOTS, p);
    if (slot != NULL) {
        ms_ptrset_remove(slot);
        loader_set.count--;
    }
    ms_spin_unlock(&loader_set.lock);
    __libc_free(p);
}

void ms_loader_fork_prepare(void) { ms_spin_lock(&loader_set.lock); }
void ms_loader_fork_parent(void) { ms_spin_unlock(&loader_set.lock); }
void ms_loader_fork_child(void) { ms_spin_init(&loader_set.lock); }
