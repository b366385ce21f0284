/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's quarantine: a FIFO of freed blocks (already filled with DEADBYTE)
 * bounded by their total bytes, so that freed memory is not reused at once and a write
 * after free shows up as a non-DEADBYTE byte when the block leaves (ASan's quarantine
 * idea).  A freed block leaves the live table at once; its record here (the table entry
 * plus when it was freed) is what recognises a double free, on the error path only, by a
 * scan: the hot path never looks records up, and the live table stays as small as the
 * live heap.
 *
 * A chain of 64 KiB segments of 32-byte records behind one spinlock; push and pop are O(1),
 * and the chain holds what is queued plus the records of the last 16,384 or more blocks
 * that left (at most two segments more), and two spare segments.
 * Memory from ms_os_map.  Thread-safe, fork-safe through
 * ms_quarantine_fork_*.  Never reads the blocks itself (the caller verifies the ones it
 * pops), never allocates through malloc, never prints.  Hot path (every free).
 */
#ifndef MS_QUARANTINE_H
#define MS_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "livetab.h"

struct ms_quarantine_rec {
    struct ms_livetab_entry e;  /* the block as the live table knew it; DEADBYTE from
                                   ms_livetab_head(&e) to ms_livetab_end(&e) */
    uint64_t serial;            /* the call that made it (read from its trailer) */
    uint64_t freed_after;       /* serial counter when it was freed */
};

/* Set the budget in bytes (0: no quarantine).  Called before the first block. */
void ms_quarantine_configure(size_t budget);
size_t ms_quarantine_budget(void);

/* Append rec (its extent plus the record's own size count against the budget), then
 * pop the oldest records into victims[0..max) while the total exceeds the budget.
 * Returns how many were popped; if that is max, call ms_quarantine_evict for the rest.
 * Returns SIZE_MAX when rec could not be stored (no memory for the queue): the caller
 * releases the block. */
size_t ms_quarantine_push(const struct ms_quarantine_rec *rec,
                          struct ms_quarantine_rec *victims, size_t max);
size_t ms_quarantine_evict(struct ms_quarantine_rec *victims, size_t max);

/* Pop everything (tests, and a program that asks memshim to trim). */
size_t ms_quarantine_drain(struct ms_quarantine_rec *victims, size_t max);

/* The record of the block p points into (p itself, or inside its extent), if it is still
 * queued.  Error path: a linear scan, newest first. */
bool ms_quarantine_find(uintptr_t p, struct ms_quarantine_rec *out);

/* The same from a signal handler: false also when the queue's lock is taken (by the
 * interrupted code, perhaps). */
bool ms_quarantine_try_find(uintptr_t p, struct ms_quarantine_rec *out);

/* The record of p if p is one of the last 16384 blocks that left the queue (newest
 * first).  Error path: a linear scan. */
bool ms_quarantine_find_released(uintptr_t p, struct ms_quarantine_rec *out);

/* Call fn on every queued record, oldest first, with the queue locked (fn must not call
 * back into the quarantine).  Stops when fn returns true; that record goes to *found. */
bool ms_quarantine_walk(bool (*fn)(const struct ms_quarantine_rec *r, void *arg),
                        void *arg, struct ms_quarantine_rec *found);

size_t ms_quarantine_bytes(void);
size_t ms_quarantine_count(void);

void ms_quarantine_fork_prepare(void);
void ms_quarantine_fork_parent(void);
void ms_quarantine_fork_child(void);

#endif
