/* SPDX-License-Identifier: MIT */
/*
 * Stack capture with libunwind (see unwind.h).
 *
 * unw_backtrace is used rather than an unw_getcontext/unw_step loop: on x86-64 it walks
 * through libunwind's per-thread cache of frame descriptors (tdep_trace) and costs a
 * thirtieth of a stepping loop per frame (measured in tests/hooks/bench_trace.c; heaptrack
 * made the same choice).
 *
 * Own frames are recognised by address: at init, the executable PT_LOAD segments of the
 * module that contains this file are recorded (dl_iterate_phdr), and any pc inside one of
 * them is memshim's.  Names would be slower and wrong for static functions.
 *
 * State: one struct, written by ms_unwind_init (under pthread_once) and read-only after,
 * except own_top (relaxed hints); the per-thread depth cache lives in the stack memo.
 */
#include "unwind.h"

#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "addrkind.h"
#include "guard.h"
#include "os.h"
#include "stackmemo.h"
#include "symbolize.h"
#include "traceback.h"
#include "unwind_lib.h"
#include "unwind_mask.h"

/* Counting a whole stack: a stack buffer of MS_UNWIND_BUF frames, then a mapped one of
 * MS_UNWIND_DEEP (the count stops there).  MS_UNWIND_OWN_SLACK: the most memshim frames on
 * top of the caller's that a capture makes room for. */
#define MS_UNWIND_BUF 256
#define MS_UNWIND_DEEP 65536
#define MS_UNWIND_OWN_SLACK 16
#define MS_UNWIND_MAX_RANGES 8
#define MS_UNWIND_SITES 16
#define MS_UNWIND_OWN_GUESS 4

struct ms_unwind_range {
    uintptr_t lo, hi;
};

struct ms_unwind_state {
    pthread_once_t once;      /* finding memshim's own ranges */
    pthread_once_t lib_once;  /* setting libunwind up, once it is loaded */
    pthread_once_t start_once; /* libunwind's own start, at the first walk */
    int ready; /* set (release) when ranges are filled in and libunwind is set up */
    int started; /* set (release) when libunwind has initialised itself */
    int found;
    int nranges;
    struct ms_unwind_range ranges[MS_UNWIND_MAX_RANGES];
    /* memshim's frames above the caller's (the shim's malloc, the layers, this file), as
     * seen, per calling site of ms_unwind_capture (hashed; 0: not seen yet, assume
     * MS_UNWIND_OWN_GUESS): the walk asks for that many frames more than the limit, plus
     * one to learn whether the stack goes on.  A fixed generous slack instead cost up to a
     * third more per capture under deep stacks (bench_trace); one guess for all sites
     * walked a frame too many for malloc (3 own frames: the shim's malloc tail-calls the
     * route, which tail-calls the layer) once realloc (4) had been seen. */
    int own_top[MS_UNWIND_SITES];
};

static struct ms_unwind_state unwind_state = {
    .once = PTHREAD_ONCE_INIT,
    .lib_once = PTHREAD_ONCE_INIT,
    .start_once = PTHREAD_ONCE_INIT,
};

static int find_own_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    if (!ms_addrkind_module_holds(info, (uintptr_t)arg))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        if (unwind_state.nranges == MS_UNWIND_MAX_RANGES)
            break;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        unwind_state.ranges[unwind_state.nranges].lo = lo;
        unwind_state.ranges[unwind_state.nranges].hi = lo + ph->p_memsz;
        unwind_state.nranges++;
    }
    return 1;
}

static void find_own_once(void)
{
    unwind_state.found = dl_iterate_phdr(find_own_module, (void *)(uintptr_t)&find_own_once);
}

static void lib_init_once(void)
{
    ms_unwind_mask_init();
    __atomic_store_n(&unwind_state.ready, 1, __ATOMIC_RELEASE);
}

/* libunwind initialises itself at its first use, and opens a pipe then (unwind_lib.c):
 * deferred to the first walk, so that a mode that walks stacks only to report an error
 * holds no descriptor of the program's until it does. */
static void start_once(void)
{
    ms_unwind_lib_start();
    /* Per-thread caches: no lock shared by all allocating threads inside libunwind. */
    ms_unw.set_caching_policy(*ms_unw.local_addr_space, UNW_CACHE_PER_THREAD);
    __atomic_store_n(&unwind_state.started, 1, __ATOMIC_RELEASE);
}

static inline void start(void)
{
    if (__builtin_expect(!__atomic_load_n(&unwind_state.started, __ATOMIC_ACQUIRE), 0))
        pthread_once(&unwind_state.start_once, start_once);
}

int ms_unwind_init(void)
{
    pthread_once(&unwind_state.once, find_own_once);
    if (!__atomic_load_n(&unwind_state.ready, __ATOMIC_ACQUIRE)) {
        ms_guard_enter();
        enum ms_unwind_lib_status s = ms_unwind_lib_load();
        if (s == MS_UNWIND_LIB_LOADED)
            pthread_once(&unwind_state.lib_once, lib_init_once);
        ms_guard_leave();
        if (s == MS_UNWIND_LIB_MISSING)
            return -1;
        if (s == MS_UNWIND_LIB_LATER)
            return 1;
    }
    return unwind_state.found ? 0 : -1;
}

/* Inlined into the per-frame loops (the exported ms_unwind_is_own may go through the PLT
 * in a test build; this is a measurable part of the capture). */
static inline int is_own(uintptr_t pc)
{
    for (int i = 0; i < unwind_state.nranges; i++)
        if (pc - unwind_state.ranges[i].lo < unwind_state.ranges[i].hi - unwind_state.ranges[i].lo)
            return 1;
    return 0;
}

int ms_unwind_is_own(uintptr_t pc)
{
    return is_own(pc);
}

static uint32_t count_own_excluded(void *const *buf, int n)
{
    int top = 0;
    while (top < n && is_own((uintptr_t)buf[top]))
        top++;
    return (uint32_t)(n - top);
}

/* Walks the whole stack and returns its non-memshim frames.  Stacks deeper than the stack
 * buffer (deep recursion) are walked again into a mapped buffer: one method throughout, as
 * unw_step and unw_backtrace disagree by a frame at the bottom of the stack.  Past
 * MS_UNWIND_DEEP frames the count stops there. */
static __attribute__((noinline)) uint32_t count_all(void)
{
    void *buf[MS_UNWIND_BUF];
    start();
    int n = ms_unw.backtrace(buf, MS_UNWIND_BUF);
    if (n < MS_UNWIND_BUF)
        return count_own_excluded(buf, n);
    void **deep = ms_os_map(MS_UNWIND_DEEP * sizeof(void *));
    if (deep == NULL)
        return count_own_excluded(buf, n);
    n = ms_unw.backtrace(deep, MS_UNWIND_DEEP);
    uint32_t all = count_own_excluded(deep, n);
    ms_os_unmap(deep, MS_UNWIND_DEEP * sizeof(void *));
    return all;
}

/*
 * The total depth of a stack deeper than the capture costs a walk of the whole stack (35
 * cycles a frame with unw_backtrace, a thousand with unw_step: bench_trace), which would
 * triple the cost of a 16-frame trace under a 100-frame Python stack.  So each thread keeps
 * the totals it counted, keyed by the captured frames, the first frame past them and the
 * stack address of this function's frame: the same frames at the same stack address have
 * the same callers below them, except when two different chains of callers happen to use
 * exactly the same stack size and end in the same frames - then the total shown may be off,
 * never the frames themselves.  Deeper recursion moves the stack address, so recursion is
 * counted right.  The cache lives in the thread's stack memo (stackmemo.h says why).
 */
static uint64_t depth_key(uint64_t frames_hash, uintptr_t next)
{
    uint64_t h = (frames_hash ^ next) * 0x9e3779b97f4a7c15ull;
    return (h ^ (h >> 31)) | 1;
}

/* Walks up to cap frames into buf and keeps up to max of the caller's in pcs; *all gets the
 * caller's frames seen, *next the first one past the kept ones (0 if none), *own_top the
 * memshim frames on top.  Only leading frames can be memshim's: memshim never calls back
 * into the program, so the program's frames are one run below ours. */
static inline __attribute__((always_inline)) int walk(void **buf, int cap, uintptr_t *pcs,
                                                     int max, uint32_t *all, uintptr_t *next,
                                                     int *own_top)
{
    int n = 0;
    if (__atomic_load_n(&unwind_state.ready, __ATOMIC_ACQUIRE)) {
        ms_guard_enter();
        start();
        n = ms_unw.backtrace(buf, cap);
        ms_guard_leave();
    }
    int top = 0;
    while (top < n && is_own((uintptr_t)buf[top]))
        top++;
    int avail = n - top;
    int kept = avail < max ? avail : max;
    memcpy(pcs, buf + top, (size_t)kept * sizeof *pcs);
    *all = (uint32_t)avail;
    *next = avail > max ? (uintptr_t)buf[top + max] : 0;
    *own_top = top;
    return n;
}

/* The stack slots buf[1..n) were read from, as offsets from cfa - 8 (stackmemo.h), from
 * libunwind's frame rules: a frame's return address sits just below the stack pointer the
 * step back into it restores.  A second walk, with unw_step (slow: only for return addresses
 * whose frame sizes the memo has not learned yet); it must meet exactly the frames
 * unw_backtrace gave, the first of them at cfa, else (a signal frame, a disagreement)
 * nothing is stored.  0 or -1. */
static __attribute__((noinline)) int find_slots(uintptr_t cfa, void *const *buf, int n,
                                               uint32_t *off)
{
    unw_context_t uc;
    unw_cursor_t c;
    int k = 0, r = -1;
    ms_guard_enter();
    start();
    ms_unwind_mask_begin();
    if (ms_unw.getcontext(&uc) != 0 || ms_unw.init_local(&c, &uc) != 0)
        goto out;
    for (int steps = 0; steps < n + MS_UNWIND_OWN_SLACK && ms_unw.step(&c) > 0; steps++) {
        unw_word_t ip, sp;
        if (ms_unw.get_reg(&c, UNW_REG_IP, &ip) != 0
            || ms_unw.get_reg(&c, UNW_REG_SP, &sp) != 0)
            break;
        if (k == 0) {
            if (sp < cfa)
                continue; /* this function's frame and the capture's */
            if (sp != cfa)
                break;
            k = 1;
        }
        if (ip != (unw_word_t)(uintptr_t)buf[k] || *(const uintptr_t *)(sp - 8) != ip)
            break;
        off[k - 1] = (uint32_t)(sp - cfa);
        if (++k == n) {
            r = 0;
            break;
        }
    }
out:
    ms_unwind_mask_end();
    ms_guard_leave();
    return r;
}

/* Remembers a capture if the memo takes it (see ms_stackmemo_store); NULL if not. */
static struct ms_stackmemo_entry *remember(uintptr_t cfa, int max, void *const *buf, int n,
                                          int top, int kept, uint32_t total, uint64_t hash)
{
    uint32_t off[n];
    if (!ms_stackmemo_accepts(cfa, max, n, top, kept))
        return NULL;
    if (!ms_stackmemo_slots(cfa, buf, n, off)) {
        if (find_slots(cfa, buf, n, off) != 0)
            return NULL;
        ms_stackmemo_learn(buf, n, off);
    }
    return ms_stackmemo_store(cfa, max, buf, n, top, kept, total, hash, off);
}

/* Walks the stack, see ms_unwind_capture.  cfa: the capturing function's; *memo gets the
 * memo's new entry (or NULL).  memo is NULL on the fatal path, which must not set up a
 * thread's memo in a damaged process (that reads /proc/self/maps) and gains nothing by
 * it. */
static inline __attribute__((always_inline)) int capture(uintptr_t cfa, uintptr_t site,
                                                        uintptr_t *pcs, int max,
                                                        uint32_t *total, uint64_t *hash,
                                                        struct ms_stackmemo_entry **memo)
{
    void *buf[max + MS_UNWIND_OWN_SLACK + 1];
    int *seen = &unwind_state.own_top[(site ^ (site >> 7)) % MS_UNWIND_SITES];
    int slack = __atomic_load_n(seen, __ATOMIC_RELAXED);
    if (slack == 0)
        slack = MS_UNWIND_OWN_GUESS;
    if (slack > MS_UNWIND_OWN_SLACK)
        slack = MS_UNWIND_OWN_SLACK;
    int cap = max + slack + 1;
    uint32_t all;
    uintptr_t next;
    int top;
    int n = walk(buf, cap, pcs, max, &all, &next, &top);
    int kept = all < (uint32_t)max ? (int)all : max;
    if (top < n && __atomic_load_n(seen, __ATOMIC_RELAXED) == 0)
        __atomic_store_n(seen, top, __ATOMIC_RELAXED); /* exact: a caller's frame follows */
    if (n == cap && (int)all <= max && top > slack) {
        /* More of our own frames than expected hid some of the caller's: walk again.  (Two
         * sites that share a slot keep the larger count.) */
        __atomic_store_n(seen, top, __ATOMIC_RELAXED);
        cap = max + MS_UNWIND_OWN_SLACK + 1;
        n = walk(buf, cap, pcs, max, &all, &next, &top);
        kept = all < (uint32_t)max ? (int)all : max;
    }
    uint64_t frames_hash = ms_traceback_hash_frames(pcs, (uint32_t)kept);
    if (hash)
        *hash = frames_hash;
    /* What a later capture must find unchanged: every frame walked, or when the walk was
     * cut, the kept ones and the one after them (the depth count's key). */
    int checked = n < cap ? n : top + kept + 1;
    if (n < cap) {
        *total = all; /* the whole stack was walked */
        if (memo)
            *memo = remember(cfa, max, buf, checked, top, kept, *total, frames_hash);
        return kept;
    }

    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    uint64_t key = depth_key(frames_hash, next);
    struct ms_depth_entry *depths = ms_stackmemo_depths();
    struct ms_depth_entry *e =
        depths != NULL ? &depths[(key ^ (sp >> 4)) % MS_STACKMEMO_DEPTHS] : NULL;
    if (e != NULL && next != 0 && e->key == key && e->sp == sp) {
        *total = e->total;
    } else {
        ms_guard_enter();
        all = count_all();
        ms_guard_leave();
        if (e != NULL && next != 0) {
            e->key = key;
            e->sp = sp;
            e->total = all;
        }
        *total = all;
    }
    if (memo)
        *memo = remember(cfa, max, buf, checked, top, kept, *total, frames_hash);
    return kept;
}

static inline __attribute__((always_inline)) int clamp_frames(int max)
{
    if (!__atomic_load_n(&unwind_state.ready, __ATOMIC_ACQUIRE))
        ms_unwind_init();
    return max > MS_UNWIND_MAX_FRAMES ? MS_UNWIND_MAX_FRAMES : max < 0 ? 0 : max;
}

int ms_unwind_capture(uintptr_t *pcs, int max, uint32_t *total, uint64_t *hash)
{
    uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
    max = clamp_frames(max);
    struct ms_stackmemo_entry *e = ms_stackmemo_find(cfa, max);
    if (e != NULL)
        return ms_stackmemo_frames(e, pcs, total, hash);
    return capture(cfa, (uintptr_t)__builtin_return_address(0), pcs, max, total, hash, &e);
}

/* The interned traceback is attached to the memo's entry, so a chain seen before costs
 * the check of its return addresses and nothing else. */
const struct ms_traceback *ms_unwind_capture_traceback(int max)
{
    uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
    max = clamp_frames(max);
    struct ms_stackmemo_entry *e = ms_stackmemo_find(cfa, max);
    if (e != NULL && ms_stackmemo_attached(e) != NULL)
        return ms_stackmemo_attached(e);
    uintptr_t pcs[max ? max : 1];
    uint32_t total;
    uint64_t hash;
    int n;
    if (e != NULL)
        n = ms_stackmemo_frames(e, pcs, &total, &hash);
    else
        n = capture(cfa, (uintptr_t)__builtin_return_address(0), pcs, max, &total, &hash, &e);
    const struct ms_traceback *tb = ms_traceback_intern_hashed(pcs, (uint32_t)n, total, hash);
    if (e != NULL && tb != NULL)
        ms_stackmemo_attach(e, tb);
    return tb;
}

/* ms_unwind_capture without the memo, for the fatal path. */
static __attribute__((noinline)) int capture_fatal(uintptr_t *pcs, int max, uint32_t *total)
{
    return capture((uintptr_t)__builtin_dwarf_cfa(), (uintptr_t)__builtin_return_address(0),
                   pcs, clamp_frames(max), total, NULL, NULL);
}

void ms_unwind_print_from(struct ms_out *o, uintptr_t pc)
{
    uintptr_t pcs[64];
    uint32_t total = 0;
    int n = capture_fatal(pcs, 64, &total);
    /* From a signal handler the walk starts in the handler and passes the kernel's signal
     * frame (the C library's restorer) before it reaches the crashing instruction. */
    int first = 0;
    for (int i = 0; pc != 0 && i < n; i++)
        if (pcs[i] == pc) {
            first = i;
            break;
        }

    ms_out_str(o, "Current thread 0x");
    ms_out_hex(o, (uint64_t)pthread_self(), 16);
    ms_out_str(o, " (most recent call first):\n");
    /* A crash inside the C library's malloc (a damaged chunk) may hold the arena's lock:
     * then libdw's first malloc would wait for ever.  The crashing function itself may
     * have no exported name (_int_malloc); the entry point that called it has. */
    enum ms_symbol_mode mode = MS_SYMBOL_FATAL;
    for (int i = first; pc != 0 && i < n && mode == MS_SYMBOL_FATAL; i++)
        if (ms_symbol_in_c_allocator(i == first ? pcs[i] + 1 : pcs[i]))
            mode = MS_SYMBOL_NOHEAP;
    for (int i = first; i < n; i++) {
        if (i == first && pcs[i] == pc) {
            /* The crashing instruction itself, not a return address: its own line. */
            struct ms_symbol s;
            ms_symbol_lookup(pc + 1, &s, mode);
            s.module_offset -= s.module != NULL;
            s.function_offset -= s.function != NULL;
            ms_symbol_print(o, &s, pc);
            continue;
        }
        ms_symbol_print_frame(o, pcs[i], mode);
    }
    if (total > (uint32_t)n) {
        ms_out_str(o, "  ... ");
        ms_out_udec(o, total - (uint32_t)n, 0);
        ms_out_str(o, " more frames\n");
    }
    ms_out_flush(o);
}

void ms_unwind_print_current(struct ms_out *o)
{
    ms_unwind_print_from(o, 0);
}
