/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's quarantine: a FIFO of freed blocks (already filled with DEADBYTE)
 * bounded by their total bytes, so that freed memory is not reused at once and a write
 * after free shows up as a non-DEADBYTE byte when the block leaves (ASan's quarantine
 * idea).  The blocks keep their live-table entries, marked quarantined, until they leave,
 * which is how a double free is recognised however long ago the first free was.
 *
 * A ring buffer of 32-byte records behind one mutex; push and pop are O(1) amortised (the
 * ring doubles when full).  Memory from ms_os_map.  Thread-safe, fork-safe through
 * ms_quarantine_fork_*.  Never reads the blocks itself (the caller verifies the ones it
 * pops), never allocates through malloc, never prints.  Hot path (every free).
 */
#ifndef MS_QUARANTINE_H
#define MS_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ms_quarantine_rec {
    uintptr_t base;        /* the lower allocator's block */
    size_t extent;         /* bytes from base that are DEADBYTE (base .. end of trailer) */
    uintptr_t p;           /* the program's pointer (live-table key) */
    uint64_t freed_after;  /* serial counter when it was freed */
};

/* Set the budget in bytes (0: no quarantine).  Called before the first block. */
void ms_quarantine_configure(size_t budget);
size_t ms_quarantine_budget(void);

/* Append rec, then pop the oldest records into victims[0..max) while the total exceeds
 * the budget.  Returns how many were popped; if that is max, call ms_quarantine_evict for
 * the rest.  Returns SIZE_MAX when rec could not be stored (no memory for the ring): the
 * caller releases the block itself. */
size_t ms_quarantine_push(const struct ms_quarantine_rec *rec,
                          struct ms_quarantine_rec *victims, size_t max);
size_t ms_quarantine_evict(struct ms_quarantine_rec *victims, size_t max);

/* Pop everything (tests, and a program that asks memshim to trim). */
size_t ms_quarantine_drain(struct ms_quarantine_rec *victims, size_t max);

/* The record of p, if it is still queued (error path: a linear scan). */
bool ms_quarantine_find(uintptr_t p, struct ms_quarantine_rec *out);

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
