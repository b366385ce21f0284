/* SPDX-License-Identifier: MIT */
/*
 * libunwind's signal masking, hoisted out of its inner loop.
 *
 * libunwind 1.6 as Debian builds it (no thread-local caches: UNW_CACHE_PER_THREAD falls
 * back to the global cache) blocks every signal around each lock of its register-state
 * cache and around each dl_iterate_phdr: about two rt_sigprocmask system calls a frame.
 * The trace layer's stepping walks (learning frame sizes, hooks/unwind.c find_slots) made
 * 150,000 of them in a traced python3 run, 12-19% of its time.
 *
 * ms_unwind_mask_begin() blocks every signal once; until ms_unwind_mask_end() restores the
 * mask, the calling thread's sigprocmask calls from inside libunwind do nothing (and report
 * the mask the region started with).  Signals are thus blocked at least whenever libunwind
 * wanted them blocked, so a handler that unwinds still never meets libunwind's lock held by
 * the code it interrupted.
 *
 * libunwind's import of sigprocmask is redirected by writing its PLT slot at init; memshim
 * exports no sigprocmask.  Outside a region the redirected call is the C library's own.
 * Never: leaves a region with a mask other than the one it found; fails when the slot
 * cannot be found or written (nothing is redirected then, and the regions only cost their
 * two system calls).
 */
#ifndef MS_UNWIND_MASK_H
#define MS_UNWIND_MASK_H

/* Redirects libunwind's sigprocmask (from ms_unwind_init; again: no-op).  0, or -1 if it
 * could not be done. */
int ms_unwind_mask_init(void);

/* A region of many libunwind steps; regions do not nest. */
void ms_unwind_mask_begin(void);
void ms_unwind_mask_end(void);

/* How many of libunwind's sigprocmask calls this thread's regions have answered. */
unsigned long ms_unwind_mask_elided(void);

#endif
