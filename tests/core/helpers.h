/* SPDX-License-Identifier: MIT */
/*
 * Test doubles for the core's unit tests: a lower allocator over glibc that counts calls
 * and can be made to fail, and an arena allocator that counts arenas and can hand out
 * arenas that are page-aligned but not pool-aligned.  The test binary is not interposed,
 * so glibc's malloc here is the real one.
 */
#ifndef MS_TEST_HELPERS_H
#define MS_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

#include "pymalloc.h"

struct fake_lower {
    int nmalloc, ncalloc, nrealloc, nfree, nmemalign, nusable;
    size_t last_malloc_size;
    bool fail;          /* every allocating call returns NULL */
};

#define FAKE_MAX_ARENAS 256

struct fake_arenas {
    int nalloc, nfree;
    bool misalign;      /* return page-aligned, not pool-aligned arenas */
    bool fail;
    void *live[FAKE_MAX_ARENAS];
};

extern struct fake_lower fake_lower;
extern struct fake_arenas fake_arenas;

struct ms_allocator fake_lower_allocator(void);
struct ms_arena_allocator fake_arena_allocator(void);

/* ms_pymalloc_init with the fakes; arena_size 0 means the default. */
void core_setup(size_t arena_size, bool misalign);

/* Arenas currently held from the fake arena allocator. */
int fake_arenas_live(void);

/* The stats report as text (NUL-terminated, in buf). */
void stats_text(char *buf, size_t cap);

#endif
