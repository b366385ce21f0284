/* SPDX-License-Identifier: MIT */
/*
 * The fuzzers' shared driver: a reference model of up to FZ_SLOTS live blocks and an
 * interpreter that turns fuzz input bytes into malloc-family calls on one struct
 * ms_allocator (pymalloc, the debug layer over it, or the trace layer over it).  After every
 * call it checks what the allocator contract (core/allocator.h) promises: contents kept,
 * alignment honoured, usable size >= the request and writable, no two live blocks
 * overlapping, calloc memory zeroed, a failed or impossible request NULL with the old block
 * intact.  A broken promise prints one line and abort()s, which libFuzzer records as a crash.
 *
 * Single-threaded, like libFuzzer's runner; the layers are process-wide, so each fuzzer sets
 * its stack up once and every input must leave it empty (fz_check_core_empty).
 */
#ifndef MS_FUZZ_MODEL_H
#define MS_FUZZ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator.h"

struct fz_target {
    struct ms_allocator a;
    bool usable_exact;             /* usable_size is the requested size (debug layer) */
    void (*after_op)(void);        /* called after every operation, or NULL */
    /* Bytes the layer says are live (the trace layer's current traced memory); compared
     * with the model's total after every operation.  NULL: not checked. */
    size_t (*live_bytes)(void);
};

/* Runs one input against t, then frees every block still live. */
void fz_run(const struct fz_target *t, const uint8_t *data, size_t size);

/* Prints "fuzz: <message>" to stderr and aborts (a finding). */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* The pymalloc core over glibc (lower) and a counting mmap arena allocator; arena_size 0 is
 * the default. */
void fz_pymalloc_setup(size_t arena_size);

/* Flushes this thread's cache and checks that the core has no block in use (the stats
 * walk: "# bytes in allocated blocks" is 0) and keeps at most one arena. */
void fz_check_core_empty(void);

#endif
