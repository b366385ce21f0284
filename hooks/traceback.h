/* SPDX-License-Identifier: MIT */
/*
 * Interned (hash-consed) tracebacks: a traceback is (total depth, n frames, the frames'
 * return addresses, most recent first), stored once; equal tracebacks get the same id and
 * the same pointer, so a million blocks allocated at one call site share one traceback.
 * A frame is its return address: what a frame means (file, line, function) is the
 * symboliser's per-pc cache, computed at report time, so frames are interned there.
 *
 * On the traced allocation path: lookups take no lock (tables are published with release
 * stores and never change in place except for empty slots being filled); inserting a new
 * traceback takes one lock.  Tracebacks are immutable and never freed (they are bounded by
 * the program's distinct call stacks), so a pointer or id stays valid for ever.  Memory comes
 * from ms_os_map, never from malloc.
 */
#ifndef MS_TRACEBACK_H
#define MS_TRACEBACK_H

#include <stddef.h>
#include <stdint.h>

struct ms_traceback {
    uint32_t id;        /* >= 1; 0 means "no traceback" everywhere */
    uint32_t hash;
    uint32_t total;     /* frames on the stack when captured (>= nframe: truncation shows) */
    uint32_t nframe;
    uintptr_t frames[]; /* nframe return addresses, most recent first */
};

/* The interned traceback equal to (pcs[0..n), total), made if new; NULL when out of memory
 * (or past 2^28 distinct tracebacks). */
const struct ms_traceback *ms_traceback_intern(const uintptr_t *pcs, uint32_t n, uint32_t total);

/* The same, for a caller that already has ms_traceback_hash_frames(pcs, n) (the capture
 * computes it for its own cache; hashing 16 frames twice was measurable). */
const struct ms_traceback *ms_traceback_intern_hashed(const uintptr_t *pcs, uint32_t n,
                                                      uint32_t total, uint64_t frames_hash);
uint64_t ms_traceback_hash_frames(const uintptr_t *pcs, uint32_t n);

/* The traceback with this id, or NULL for 0 / an id never handed out. */
const struct ms_traceback *ms_traceback_get(uint32_t id);

/* How many distinct tracebacks exist, and the bytes mapped for them and their tables. */
size_t ms_traceback_count(void);
size_t ms_traceback_memory(void);

/* Test hook: replace the page mapper (NULL restores ms_os_map) to inject failures. */
void ms_traceback_set_mapper(void *(*map)(size_t size));

/* fork(): hold the insert lock across fork so the child does not inherit it taken. */
void ms_traceback_fork_prepare(void);
void ms_traceback_fork_parent(void);
void ms_traceback_fork_child(void);

#endif
