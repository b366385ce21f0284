/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the trace layer over the pymalloc core, tracing 8 frames, driven by
 * fuzz_model.c.  After every operation the layer's current traced memory must equal the
 * model's live bytes (every block traced with its requested size, realloc moving the
 * trace); after each input there must be no trace left, and the core must hold no block.
 * (The capture leaves out "memshim's own module" by address, which here is the whole
 * fuzzer; tracebacks are short or empty, which does not matter for these checks.)
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_model.h"
#include "pymalloc.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t traced_now(void)
{
    size_t cur, peak;
    ms_trace_get_traced_memory(&cur, &peak);
    if (peak < cur)
        fz_fail("trace layer: peak %zu below current %zu", peak, cur);
    return cur;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz_target t;
    if (t.a.malloc == NULL) {
        fz_pymalloc_setup(0);
        struct ms_allocator lower = ms_pymalloc_allocator();
        ms_trace_init(&t.a, &lower);
        if (ms_trace_start(8) != 0)
            fz_fail("ms_trace_start failed");
        t.live_bytes = traced_now;
    }
    fz_run(&t, data, size);
    if (ms_trace_count() != 0)
        fz_fail("trace layer: %zu traces left after every block was freed", ms_trace_count());
    fz_check_core_empty();
    return 0;
}
