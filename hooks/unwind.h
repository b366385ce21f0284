/* SPDX-License-Identifier: MIT */
/*
 * Stack capture for the trace layer and the fatal-error backtrace, with libunwind's local
 * unwinder.  memshim's own frames (any pc inside the executable segments of the module this
 * code is linked into, found by address at init, never by name) are left out, so a trace
 * starts at the program's call to malloc.
 *
 * ms_unwind_capture is on the traced allocation path: no locks, no allocation of its own
 * (libunwind may allocate on first use; the guard is raised around it so that such
 * allocations go straight to the C library).  A chain captured before at the same stack
 * address is taken from the thread's memo (stackmemo.h) once its return addresses are
 * found unchanged on the stack; the fatal path always walks.  Thread-safe after
 * ms_unwind_init.
 */
#ifndef MS_UNWIND_H
#define MS_UNWIND_H

#include <stdint.h>

#include "fmt.h"
#include "traceback.h"

/* Frames captured at most per call, whatever the trace limit: deeper stacks are cut there
 * (the total depth still counts every frame).  Bounded so the buffer can live on the
 * stack of whatever thread calls malloc. */
#define MS_UNWIND_MAX_FRAMES 1024

/* Loads libunwind (unwind_lib.h) and finds memshim's own code (idempotent, thread-safe;
 * call it before tracing starts, the capture calls it too while it has not succeeded).
 * Returns 0 when captures work, 1 when libunwind could not be loaded yet (the dynamic
 * loader was busy: captures are empty until a later call succeeds), -1 when libunwind is
 * not there or memshim's own module was not found (then no frame is left out). */
int ms_unwind_init(void);

/* Stores up to max (<= MS_UNWIND_MAX_FRAMES) return addresses of the caller's stack, most
 * recent first, memshim's frames left out; returns how many.  *total gets the number of
 * non-memshim frames on the whole stack (>= the return value), so truncation shows.
 * *hash (if not NULL) gets ms_traceback_hash_frames of the stored frames. */
int ms_unwind_capture(uintptr_t *pcs, int max, uint32_t *total, uint64_t *hash);

/* ms_unwind_capture's frames, interned (traceback.h); NULL when out of memory. */
const struct ms_traceback *ms_unwind_capture_traceback(int max);

/* Is pc inside memshim's own code? */
int ms_unwind_is_own(uintptr_t pc);

/* The fatal path's backtrace (faulthandler's heading): "Current thread 0x<pthread id>
 * (most recent call first):" and one symbolised line per frame.  Safe on a corrupted heap:
 * whatever may allocate runs under the guard (C library malloc). */
void ms_unwind_print_current(struct ms_out *o);

/* The same from a signal handler: the frames from the one at pc (the interrupted
 * instruction) on; all of them if pc is 0 or not on the stack. */
void ms_unwind_print_from(struct ms_out *o, uintptr_t pc);

#endif
