/* SPDX-License-Identifier: MIT */
/*
 * What an address is, when it is not one of the debug layer's blocks: the current
 * thread's stack, a loaded module's image (globals, statics, string literals) or
 * something else.  Used on the error path of free/realloc, to say what an invalid free
 * was; the calling thread's stack bounds also by the leak scan and, once per thread, by
 * the stack memo; "which module holds this address" by every dl_iterate_phdr search of
 * the hooks.  Decided from address ranges only: it never dereferences the address.
 *
 * Never allocates (the stack's bounds come from /proc/self/maps, read by hand), never
 * prints.  Not on the hot path.  Thread-safe.
 */
#ifndef MS_ADDRKIND_H
#define MS_ADDRKIND_H

#include <link.h>
#include <stdint.h>

enum ms_addrkind {
    MS_ADDR_STACK,        /* inside the calling thread's stack */
    MS_ADDR_IMAGE,        /* inside a loaded module's segments */
    MS_ADDR_OTHER,
};

struct ms_addrinfo {
    enum ms_addrkind kind;
    char module[256];     /* MS_ADDR_IMAGE: the module's path ("" for the main program) */
    uintptr_t offset;     /* MS_ADDR_IMAGE: address - module load address */
};

void ms_addrkind_classify(const void *p, struct ms_addrinfo *out);

/* Does one of info's loadable segments hold a?  For dl_iterate_phdr callbacks that look
 * for the module of an address. */
int ms_addrkind_module_holds(const struct dl_phdr_info *info, uintptr_t a);

/* The calling thread's stack, [*lo, *hi): the mapping that holds its stack pointer (for
 * a thread the C library made, its TLS and control block at the top too); for the main
 * thread, down to where RLIMIT_STACK lets it grow.  1, or 0 when that cannot be read.
 * Safe inside malloc. */
int ms_addrkind_own_stack(uintptr_t *lo, uintptr_t *hi);

#endif
