/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the debug layer (API 'r', the C library family) over the pymalloc
 * core, driven by fuzz_model.c.  No corruption is ever injected, so the layer must never
 * report: its fatal path aborts, which libFuzzer records as a crash.  After every
 * 32 operations the pads of every live block are verified (ms_debug_check_heap); after each
 * input the layer must have no live block, and once its small quarantine is flushed the
 * core below must hold none either.
 */
#include <stddef.h>
#include <stdint.h>

#include "debug.h"
#include "fuzz_model.h"
#include "pymalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so that blocks leave the quarantine (and are verified) within one input. */
#define FUZZ_QUARANTINE ((size_t)64 << 10)

/* A heap check walks the layer's whole table (~ms): every 32 operations, not every one. */
static void check_sometimes(void)
{
    static unsigned n;
    if (++n % 32 == 0)
        ms_debug_check_heap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz_target t;
    if (t.a.malloc == NULL) {
        fz_pymalloc_setup(0);
        struct ms_debug_config cfg = {
            .lower = ms_pymalloc_allocator(),
            .quarantine_bytes = FUZZ_QUARANTINE,
            .fd = 2,
        };
        if (ms_debug_init(&cfg) != 0)
            fz_fail("ms_debug_init failed");
        t.a = ms_debug_allocator(MS_DEBUG_API_RAW);
        t.usable_exact = true;
        t.after_op = check_sometimes;
    }
    fz_run(&t, data, size);
    struct ms_debug_stats st;
    ms_debug_get_stats(&st);
    if (st.live_blocks != 0 || st.quarantine_bytes > FUZZ_QUARANTINE)
        fz_fail("debug layer: %zu live blocks, %zu quarantined bytes after the input",
                st.live_blocks, st.quarantine_bytes);
    ms_debug_flush_quarantine();
    ms_debug_get_stats(&st);
    if (st.quarantine_blocks != 0 || st.quarantine_bytes != 0)
        fz_fail("debug layer: quarantine not empty after a flush (%zu blocks, %zu bytes)",
                st.quarantine_blocks, st.quarantine_bytes);
    fz_check_core_empty();
    return 0;
}
