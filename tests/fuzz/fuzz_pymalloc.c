/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the pymalloc core alone (ms_pymalloc_* over glibc and a counting mmap
 * arena allocator, 256 KiB arenas so that arenas come and go often), driven by fuzz_model.c.
 * After each input every block is freed and the core must hold none (stats walk) and keep
 * at most one arena.  Built with MS_EXPENSIVE_CHECKS, so the core's own invariant walk runs
 * after every change of its shared structures.
 *
 * Inputs with an odd first byte run with the shim's kind of arena policy (arena.h: free
 * pools and empty arenas wait), made to purge often: a bound of 4 dirty pools and a delay
 * of 1 ns, so waits, timed purges and hard-bound purges all happen.  Such inputs end with
 * ms_arena_purge_all (what an allocation failure does) before the emptiness check.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "core.h"
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
    bool waits = size > 0 && (data[0] & 1);
    ms_core_lock(&ms_core);
    ms_core.arenas.dirty_max = waits ? 4 : 0;
    ms_core.arenas.dirty_delay_ns = waits ? 1 : 0;
    ms_core_unlock(&ms_core);
    fz_run(&t, data, size);
    if (waits) {
        ms_pymalloc_flush_thread_cache();
        ms_core_lock(&ms_core);
        ms_arena_purge_all(&ms_core);
        ms_core_unlock(&ms_core);
    }
    fz_check_core_empty();
    return 0;
}
