/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the pymalloc core alone (ms_pymalloc_* over glibc and a counting mmap
 * arena allocator, 256 KiB arenas so that arenas come and go often), driven by fuzz_model.c.
 * After each input every block is freed and the core must hold none (stats walk) and keep
 * at most one arena.  Built with MS_EXPENSIVE_CHECKS, so the core's own invariant walk runs
 * after every change of its shared structures.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_model.h"
#include "pymalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz_target t;
    if (t.a.malloc == NULL) {
        fz_pymalloc_setup((size_t)256 << 10);
        t.a = ms_pymalloc_allocator();
    }
    fz_run(&t, data, size);
    fz_check_core_empty();
    return 0;
}
