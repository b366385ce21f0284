/* SPDX-License-Identifier: MIT */
/*
 * A per-thread memo of recent stack captures, so that a traced malloc called again from
 * the same call chain does not walk the stack with libunwind again (its walk was a quarter
 * of sqlite3's and python3's run time under MEMSHIM_TRACEMALLOC=16).
 *
 * A capture is remembered under the capture function's CFA (the stack address it was
 * called at) together with, for every frame walked, the stack address its return address
 * was found at.  A later capture at the same CFA is a hit only if every one of those stack
 * words still holds the same return address.  Why that is exact: each of those words was
 * written by the call instruction of the chain being captured, so a different caller at
 * some depth writes a different return address there - unless a frame of variable size
 * (alloca) moved the slot and stale memory at the old place still holds the old address
 * while the total depth came out equal, which needs a different function with exactly
 * compensating frame sizes behind one indirect call site.  The count of frames below the
 * last one checked (the traceback's "total") is remembered as well: it may be off in that
 * case, as with unwind.c's depth cache, never the frames themselves.
 *
 * Memory: ms_os_map'd per thread on first use, bounded, reused by later threads.  Never
 * calls malloc except through pthread_getattr_np once per thread under the guard; never
 * reads outside the calling thread's stack.
 */
#ifndef MS_STACKMEMO_H
#define MS_STACKMEMO_H

#include <stdint.h>

struct ms_stackmemo_entry;

/* The capture remembered at cfa with limit max whose return addresses are all still in
 * their slots, or NULL.  Valid until the thread's next store. */
struct ms_stackmemo_entry *ms_stackmemo_find(uintptr_t cfa, int max);

/* Its frames (copied to pcs; returns how many), *total and *hash as the capture gave them. */
int ms_stackmemo_frames(const struct ms_stackmemo_entry *e, uintptr_t *pcs, uint32_t *total,
                        uint64_t *hash);

/* What the caller attached to it (the interned traceback: tracebacks live for ever), or
 * NULL. */
const void *ms_stackmemo_attached(const struct ms_stackmemo_entry *e);
void ms_stackmemo_attach(struct ms_stackmemo_entry *e, const void *what);

/* Remember a capture at cfa: buf[0..n) as unw_backtrace returned it (buf[0] is a pc in the
 * capturing function, buf[1] the return address stored just below cfa), of which
 * buf[top..top+kept) were kept for the caller.  Frames past n are not checked later.
 * Returns the entry, or NULL when the frames could not all be found on the stack. */
struct ms_stackmemo_entry *ms_stackmemo_store(uintptr_t cfa, int max, void *const *buf,
                                              int n, int top, int kept, uint32_t total,
                                              uint64_t hash);

#endif
