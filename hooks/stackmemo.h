/* SPDX-License-Identifier: MIT */
/*
 * A per-thread memo of recent stack captures, so that a traced malloc called again from
 * the same call chain does not walk the stack with libunwind again (its walk was a quarter
 * of sqlite3's and python3's run time under MEMSHIM_TRACEMALLOC=16).
 *
 * A capture is remembered under the capture function's CFA (the stack address it was
 * called at) together with, for every frame walked, the stack slot its return address was
 * read from (from libunwind's frame rules, when the capture is stored).  A later capture
 * at the same CFA is a hit only if every one of those slots still holds the same return
 * address.  Why that is exact: below the first frame where two chains differ, the frames
 * are the same functions, so (frames of fixed size) that frame's slot is at the same place
 * and the call instruction of the new chain has just written its own, different return
 * address there.  Only a frame of variable size (alloca) below the difference can move the
 * slots, leaving stale memory at the old places; a false hit then also needs the same total
 * depth and the same return address above the difference, i.e. two functions with exactly
 * compensating frame sizes behind one indirect call site.  The count of frames below the
 * last one checked (the traceback's "total") is remembered as well: it may be off in that
 * case, as with unwind.c's depth cache, never the frames themselves.
 *
 * Walking the stack again with unw_step to learn the slots costs ~50 system calls
 * (libunwind masks signals around its lookups): so each thread also learns, per return
 * address, the size of the frame it returns into, and computes later chains' slots from
 * those sizes, checking each slot holds its return address.
 *
 * Memory: ms_os_map'd per thread on first use (256 entries, 16,384 frame sizes and
 * unwind.c's 512 stack depths, 348 KiB of address space, pages touched as used), unmapped
 * when the thread exits.  Never calls malloc (the stack's bounds come from
 * /proc/self/maps, read by hand, once per thread; pthread_getattr_np would allocate under
 * the thread's lock, and the malloc being traced may be its own); never reads outside the
 * calling thread's stack.  Nothing shared between threads: fork needs nothing.
 */
#ifndef MS_STACKMEMO_H
#define MS_STACKMEMO_H

#include <stdint.h>

struct ms_stackmemo_entry;

/* unwind.c's cache of whole-stack depths (see there), kept in the thread's memo table rather
 * than in static TLS: glibc clears every preloaded library's TLS in every new thread, and
 * 12 KiB of it cost each thread three pages in every mode, traced or not. */
struct ms_depth_entry {
    uint64_t key;
    uintptr_t sp;
    uint32_t total;
};
#define MS_STACKMEMO_DEPTHS 512 /* 64 missed a fifth of sqlite3's captures */

/* The calling thread's depth cache (MS_STACKMEMO_DEPTHS entries, zero at first), or NULL
 * when the thread can have no memo table. */
struct ms_depth_entry *ms_stackmemo_depths(void);

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

/* Would a capture at cfa of n frames (buf[0..n) below), top of them memshim's and kept
 * of them the caller's, be remembered?  Sets the thread's memo up on first use. */
int ms_stackmemo_accepts(uintptr_t cfa, int max, int n, int top, int kept);

/* The slots of buf[1..n) (as ms_stackmemo_store wants them) from the frame sizes learned
 * before, each checked to hold its return address; 0 when a size is unknown or the check
 * fails (then the caller asks the unwinder, and teaches the answer with ms_stackmemo_learn).
 * A frame whose size varies (alloca) fails the check unless stale memory happens to hold
 * the same address at the learned place: the case stackmemo's exactness argument already
 * leaves open. */
int ms_stackmemo_slots(uintptr_t cfa, void *const *buf, int n, uint32_t *off);
void ms_stackmemo_learn(void *const *buf, int n, const uint32_t *off);

/* Remember it (after ms_stackmemo_accepts said yes): buf[0..n) as unw_backtrace returned
 * it (buf[0] is a pc in the capturing function, buf[1] the return address stored just
 * below cfa), of which buf[top..top+kept) were kept for the caller, and for k >= 1 the
 * stack slot buf[k] was read from, at cfa - 8 + off[k - 1].  The slots must be the ones
 * the unwinder's frame rules give: a scan of the stack for the values would find stale
 * copies (earlier captures' buffers, dead frames) in frames' uninitialised parts, and a
 * memo keyed on a stale copy would not see a changed caller.  Frames past n are not
 * checked later.  Returns the entry. */
struct ms_stackmemo_entry *ms_stackmemo_store(uintptr_t cfa, int max, void *const *buf,
                                              int n, int top, int kept, uint32_t total,
                                              uint64_t hash, const uint32_t *off);

#endif
