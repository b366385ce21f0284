/* SPDX-License-Identifier: MIT */
/*
 * Debian's libmimalloc as the bottom allocator in the C library's place (CPython 3.13's
 * PYTHONMALLOC=mimalloc), loaded with dlopen at start-up.
 */
#ifndef MS_MIMALLOC_H
#define MS_MIMALLOC_H

#include <stdbool.h>

#include "allocator.h"

/* Load libmimalloc and fill *out.  Returns 0, or -1 when it is not installed. */
int ms_mimalloc_load(struct ms_allocator *out);

/* Does p lie in memory libmimalloc serves blocks from (after a successful load)? */
bool ms_mimalloc_owns(const void *p);

#endif
