/* SPDX-License-Identifier: MIT */
/*
 * The live-block bitmap (see blockmap.h).  Hot path: ms_blockmap_set on every plain
 * malloc, ms_blockmap_claim on every free.  Never calls malloc, never prints.
 */
#include "blockmap.h"

#include <stdatomic.h>

#include "os.h"
#include "solo.h"
#include "spinlock.h"

#define LEAF_SHIFT 28                          /* 256 MiB of addresses per leaf */
#define ROOT_ENTRIES ((size_t)1 << (47 - LEAF_SHIFT))
#define LEAF_BITS ((size_t)1 << (LEAF_SHIFT - 4))
#define LEAF_WORDS (LEAF_BITS / 64)
#define MAX_LEAVES 4096                        /* 1 TiB of heap */
#define PAGE_WORDS 512                         /* bitmap words per 4 KiB page */
#define LEAF_PAGES (LEAF_WORDS / PAGE_WORDS)

struct leaf {
    uintptr_t first;                           /* address of granule 0 */
    /* One bit per page of bits[] that was ever written: walks and counts skip the rest,
     * so a short-lived process's exit check does not fault in 2 MiB of zero pages. */
    _Atomic uint64_t used_pages[LEAF_PAGES / 64];
    _Atomic uint64_t bits[LEAF_WORDS];
};

static struct blockmap_state {
    /* ROOT_ENTRIES pointers; read without the lock, so published with release */
    _Atomic(struct leaf *) *_Atomic root;
    struct ms_spin grow_lock;                  /* root creation and new leaves */
    struct leaf *leaves[MAX_LEAVES];           /* every leaf, for walks */
    _Atomic size_t nleaves;
    struct ms_spin walk_lock;                  /* one walk at a time */
    _Atomic uint64_t walk_seq;                 /* odd while a walk holds blocks */
} M = {
    .grow_lock = MS_SPIN_INIT,
    .walk_lock = MS_SPIN_INIT,
};

static inline struct leaf *leaf_of(uintptr_t p)
{
    _Atomic(struct leaf *) *root = atomic_load_explicit(&M.root, memory_order_acquire);
    if (root == NULL)
        return NULL;
    return atomic_load_explicit(&root[p >> LEAF_SHIFT], memory_order_acquire);
}

static inline size_t bit_index(uintptr_t p)
{
    return (size_t)(p >> 4) & (LEAF_BITS - 1);
}

static struct leaf *make_leaf(uintptr_t p)
{
    struct leaf *l = NULL;
    ms_spin_lock(&M.grow_lock);
    _Atomic(struct leaf *) *root = atomic_load_explicit(&M.root, memory_order_relaxed);
    if (root == NULL) {
        root = ms_os_map(ROOT_ENTRIES * sizeof *root);
        atomic_store_explicit(&M.root, root, memory_order_release);
    }
    size_t n = atomic_load_explicit(&M.nleaves, memory_order_relaxed);
    if (root != NULL) {
        l = atomic_load_explicit(&root[p >> LEAF_SHIFT], memory_order_relaxed);
        if (l == NULL && n < MAX_LEAVES) {
            l = ms_os_map(sizeof *l);
            if (l != NULL) {
                l->first = p & ~(((uintptr_t)1 << LEAF_SHIFT) - 1);
                M.leaves[n] = l;
                atomic_store_explicit(&M.nleaves, n + 1, memory_order_release);
                atomic_store_explicit(&root[p >> LEAF_SHIFT], l, memory_order_release);
            }
        }
    }
    ms_spin_unlock(&M.grow_lock);
    return l;
}

static void mark_page_used(struct leaf *l, size_t i)
{
    size_t page = i / 64 / PAGE_WORDS;
    uint64_t page_bit = (uint64_t)1 << (page % 64);
    if (!(atomic_load_explicit(&l->used_pages[page / 64], memory_order_relaxed) & page_bit))
        atomic_fetch_or_explicit(&l->used_pages[page / 64], page_bit, memory_order_relaxed);
}

static __attribute__((noinline)) int set_in_new_leaf(uintptr_t p)
{
    if (make_leaf(p) == NULL)
        return -1;
    return ms_blockmap_set(p);
}

/* The fast path needs no saved registers: a missing leaf is a call of its own. */
int ms_blockmap_set(uintptr_t p)
{
    struct leaf *l = leaf_of(p);
    if (__builtin_expect(l == NULL, 0))
        return set_in_new_leaf(p);
    size_t i = bit_index(p);
    mark_page_used(l, i);
    _Atomic uint64_t *w = &l->bits[i / 64];
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (ms_solo())
        atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) | bit,
                              memory_order_relaxed);
    else
        atomic_fetch_or_explicit(w, bit, memory_order_release);
    return 0;
}

/* The word and bit of p, or NULL when p cannot be live (not covered, no leaf). */
static inline __attribute__((always_inline)) _Atomic uint64_t *word_of(uintptr_t p,
                                                                      uint64_t *bit,
                                                                      struct leaf **leaf)
{
    if (!ms_blockmap_covers(p) || (*leaf = leaf_of(p)) == NULL)
        return NULL;
    size_t i = bit_index(p);
    *bit = (uint64_t)1 << (i % 64);
    return &(*leaf)->bits[i / 64];
}

/* A clear bit is only believed if no walk overlapped the look: a walk clears the bit of
 * the block it is reading for that moment (see ms_blockmap_walk).  The sequence is read
 * before and after; odd or changed means "wait for the walk and look again".  Without a
 * walk this costs one load of a line nobody writes. */
static bool walk_overlapped(uint64_t before)
{
    uint64_t after = atomic_load_explicit(&M.walk_seq, memory_order_seq_cst);
    if ((before & 1) == 0 && before == after)
        return false;
    for (int spins = 0; atomic_load_explicit(&M.walk_seq, memory_order_acquire) & 1; spins++) {
        if (spins < 64)
            MS_CPU_RELAX();
        else
            sched_yield();
    }
    return true;
}

bool ms_blockmap_claim(uintptr_t p)
{
    uint64_t bit;
    struct leaf *l;
    _Atomic uint64_t *w = word_of(p, &bit, &l);
    if (w == NULL)
        return false;
    if (ms_solo()) {
        /* No walk can run meanwhile: walks are this thread's too. */
        uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
        atomic_store_explicit(w, old & ~bit, memory_order_relaxed);
        return (old & bit) != 0;
    }
    for (;;) {
        uint64_t seq = atomic_load_explicit(&M.walk_seq, memory_order_seq_cst);
        uint64_t old = atomic_fetch_and_explicit(w, ~bit, memory_order_seq_cst);
        if ((old & bit) != 0)
            return true;
        if (!walk_overlapped(seq))
            return false;
    }
}

bool ms_blockmap_test(uintptr_t p)
{
    uint64_t bit;
    struct leaf *l;
    _Atomic uint64_t *w = word_of(p, &bit, &l);
    if (w == NULL)
        return false;
    for (;;) {
        uint64_t seq = atomic_load_explicit(&M.walk_seq, memory_order_seq_cst);
        if ((atomic_load_explicit(w, memory_order_seq_cst) & bit) != 0)
            return true;
        if (!walk_overlapped(seq))
            return false;
    }
}

/* Was the bitmap page holding word w ever written? */
static bool page_used(struct leaf *l, size_t w)
{
    size_t page = w / PAGE_WORDS;
    uint64_t used = atomic_load_explicit(&l->used_pages[page / 64], memory_order_acquire);
    return (used >> (page % 64)) & 1;
}

/* Each live block is claimed (its bit cleared) while fn reads it, so no free can take it
 * away meanwhile; a free that finds the bit clear during the walk waits and looks again
 * (walk_overlapped).  Frees thus need no lock at all. */
uintptr_t ms_blockmap_walk(bool (*fn)(uintptr_t p, void *arg), void *arg)
{
    uintptr_t hit = 0;
    ms_spin_lock(&M.walk_lock);
    atomic_fetch_add_explicit(&M.walk_seq, 1, memory_order_seq_cst);
    size_t n = atomic_load_explicit(&M.nleaves, memory_order_acquire);
    for (size_t k = 0; k < n && hit == 0; k++) {
        struct leaf *l = M.leaves[k];
        for (size_t w = 0; w < LEAF_WORDS && hit == 0; w++) {
            if (w % PAGE_WORDS == 0 && !page_used(l, w)) {
                w += PAGE_WORDS - 1;
                continue;
            }
            uint64_t bits = atomic_load_explicit(&l->bits[w], memory_order_acquire);
            while (bits != 0 && hit == 0) {
                uint64_t bit = bits & -bits;
                bits &= bits - 1;
                if (!(atomic_fetch_and_explicit(&l->bits[w], ~bit, memory_order_seq_cst) & bit))
                    continue;                  /* freed since the load */
                uintptr_t p = l->first + ((w * 64 + (size_t)__builtin_ctzll(bit)) << 4);
                if (fn(p, arg))
                    hit = p;
                atomic_fetch_or_explicit(&l->bits[w], bit, memory_order_seq_cst);
            }
        }
    }
    atomic_fetch_add_explicit(&M.walk_seq, 1, memory_order_seq_cst);
    ms_spin_unlock(&M.walk_lock);
    return hit;
}

size_t ms_blockmap_count(void)
{
    size_t total = 0;
    size_t n = atomic_load_explicit(&M.nleaves, memory_order_acquire);
    for (size_t k = 0; k < n; k++)
        for (size_t w = 0; w < LEAF_WORDS; w++)
            if (w % PAGE_WORDS != 0 || page_used(M.leaves[k], w))
                total += (size_t)__builtin_popcountll(
                    atomic_load_explicit(&M.leaves[k]->bits[w], memory_order_relaxed));
            else
                w += PAGE_WORDS - 1;
    return total;
}

void ms_blockmap_fork_prepare(void)
{
    ms_spin_lock(&M.walk_lock);
    ms_spin_lock(&M.grow_lock);
}

void ms_blockmap_fork_parent(void)
{
    ms_spin_unlock(&M.grow_lock);
    ms_spin_unlock(&M.walk_lock);
}

/* The child's only thread is the one that forked, holding both locks (no walk was in
 * progress: the walk lock was ours): start afresh. */
void ms_blockmap_fork_child(void)
{
    ms_spin_init(&M.grow_lock);
    ms_spin_init(&M.walk_lock);
}
