/* SPDX-License-Identifier: MIT */
/*
 * Blocks the dynamic loader gets from the C library inside memshim (see loader.c).
 */
#ifndef MS_LOADER_H
#define MS_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

/* Finds ld.so's code, once (thread-safe; from the set-up of a debug layer).  Until it has
 * run, no call counts as the loader's. */
void ms_loader_init(void);

/* Was the caller at return address ra the dynamic loader's code?  One subtraction and one
 * comparison: it runs on every malloc and calloc of the non-default routes. */
static inline bool ms_loader_called(const void *ra)
{
    return (uintptr_t)ra - ms_shim.loader_lo < ms_shim.loader_len;
}

/* malloc and calloc on behalf of the loader: the route's, except under memshim's guard with
 * a debug layer in use, where the C library's block is remembered. */
void *ms_loader_malloc(size_t size);
void *ms_loader_calloc(size_t nelem, size_t elsize);

/* The debug layer's foreign_size and foreign_free (debug.h): a remembered block's usable
 * size (0 for any other pointer), and its release to the C library. */
size_t ms_loader_block_size(void *p);
void ms_loader_block_free(void *p);

/* pthread_atfork handlers: the set's lock is not held across fork(). */
void ms_loader_fork_prepare(void);
void ms_loader_fork_parent(void);
void ms_loader_fork_child(void);

#endif
