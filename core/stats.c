/* SPDX-License-Identifier: MIT */
/*
 * The statistics report: CPython's _PyObject_DebugMallocStats layout exactly (SPEC 2.4),
 * then the address-map section as CPython prints it for its radix tree, then memshim's
 * own lines about thread caches.  Everything is computed by walking the arenas when asked
 * (full pools are on no list, so walking arenas is the only way to see them), nothing is
 * counted on the hot path.
 *
 * Runs under the core lock (also from arena.c, before every new arena when asked for).
 * Never allocates: output goes through core/fmt.h with its buffer on the stack.
 */
#include <stdint.h>

#include "arenamap.h"
#include "check.h"
#include "core.h"
#include "fmt.h"
#include "pymalloc.h"

/* CPython's printone(): label padded to column 35, '=', value in 21 columns with commas. */
static size_t printone(struct ms_out *o, const char *label, size_t value)
{
    ms_out_pad(o, label, 35);
    ms_out_char(o, '=');
    ms_out_ucomma(o, value, 21);
    ms_out_char(o, '\n');
    return value;
}

/* A label built from "<a><text_a><b><text_b>" with unpadded decimals. */
static void label2(char *dst, size_t cap, size_t a, const char *ta, size_t b, const char *tb)
{
    struct ms_out t;
    ms_out_init(&t, -1);
    ms_out_udec(&t, a, 0);
    ms_out_str(&t, ta);
    ms_out_udec(&t, b, 0);
    ms_out_str(&t, tb);
    size_t n = t.len < cap - 1 ? t.len : cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = t.buf[i];
    dst[n] = '\0';
}

struct walk {
    size_t numpools[MS_NUM_CLASSES];
    size_t numblocks[MS_NUM_CLASSES];
    size_t numfree[MS_NUM_CLASSES];
    size_t narenas;
    size_t freepools;
    size_t alignment;     /* bytes lost to arenas that are not pool-aligned */
};

static void walk_arenas(struct ms_core *c, struct walk *w)
{
    for (struct ms_arena_chunk *ch = c->arenas.chunks; ch != NULL; ch = ch->next) {
        for (size_t i = 0; i < ch->n; i++) {
            const struct ms_arena *a = &ch->obj[i];
            if (a->address == 0)
                continue;
            w->narenas++;
            w->freepools += a->nfreepools;
            uintptr_t base = ms_arena_first_pool(a->address);
            if (base != a->address)
                w->alignment += MS_POOL_SIZE;
            /* Pools past pool_address were never used; given-back pools have count 0. */
            for (; base < (uintptr_t)a->pool_address; base += MS_POOL_SIZE) {
                const struct ms_pool *p = (const struct ms_pool *)base;
                if (p->count == 0)
                    continue;
                unsigned sz = p->szidx;
                MS_ASSERT(sz < MS_NUM_CLASSES);
                w->numpools[sz]++;
                w->numblocks[sz] += p->count;
                w->numfree[sz] += ms_class_nblocks(sz) - p->count;
            }
        }
    }
}

void ms_stats_print_locked(struct ms_core *c, int fd)
{
    struct ms_out o;
    struct walk w = { 0 };
    char buf[128];
    size_t arena_size = c->arenas.arena_size ? c->arenas.arena_size : MS_ARENA_SIZE_DEFAULT;

    walk_arenas(c, &w);
    MS_ASSERT(w.narenas == c->arenas.ncurrent);
    ms_out_init(&o, fd);
    ms_out_str(&o, "Small block threshold = ");
    ms_out_udec(&o, MS_SMALL_THRESHOLD, 0);
    ms_out_str(&o, ", in ");
    ms_out_udec(&o, MS_NUM_CLASSES, 0);
    ms_out_str(&o, " size classes.\n\n");
    ms_out_str(&o, "class   size   num pools   blocks in use  avail blocks\n"
                   "-----   ----   ---------   -------------  ------------\n");
    size_t allocated = 0, available = 0, headers = 0, quantization = 0, inuse_blocks = 0;
    for (unsigned i = 0; i < MS_NUM_CLASSES; i++) {
        if (w.numpools[i] == 0)
            continue;
        size_t size = ms_class_size(i);
        ms_out_udec(&o, i, 5);
        ms_out_char(&o, ' ');
        ms_out_udec(&o, size, 6);
        ms_out_char(&o, ' ');
        ms_out_udec(&o, w.numpools[i], 11);
        ms_out_char(&o, ' ');
        ms_out_udec(&o, w.numblocks[i], 15);
        ms_out_char(&o, ' ');
        ms_out_udec(&o, w.numfree[i], 13);
        ms_out_char(&o, '\n');
        allocated += w.numblocks[i] * size;
        available += w.numfree[i] * size;
        headers += w.numpools[i] * MS_POOL_OVERHEAD;
        quantization += w.numpools[i] * ms_class_quantization(i);
        inuse_blocks += w.numblocks[i];
    }
    ms_out_char(&o, '\n');
    printone(&o, "# arenas allocated total", c->arenas.ntimes_allocated);
    printone(&o, "# arenas reclaimed", c->arenas.ntimes_allocated - w.narenas);
    printone(&o, "# arenas highwater mark", c->arenas.highwater);
    printone(&o, "# arenas allocated current", w.narenas);
    label2(buf, sizeof buf, w.narenas, " arenas * ", arena_size, " bytes/arena");
    printone(&o, buf, w.narenas * arena_size);
    ms_out_char(&o, '\n');

    size_t total = printone(&o, "# bytes in allocated blocks", allocated);
    total += printone(&o, "# bytes in available blocks", available);
    label2(buf, sizeof buf, w.freepools, " unused pools * ", MS_POOL_SIZE, " bytes");
    total += printone(&o, buf, w.freepools * MS_POOL_SIZE);
    total += printone(&o, "# bytes lost to pool headers", headers);
    total += printone(&o, "# bytes lost to quantization", quantization);
    total += printone(&o, "# bytes lost to arena alignment", w.alignment);
    printone(&o, "Total", total);
    /* Every byte of every arena is in exactly one of the lines above. */
    MS_ASSERT(total == w.narenas * arena_size);

    /* CPython's radix tree has root, mid and bottom levels; this map has a root and
     * leaves ("bot" nodes), so the mid lines are left out. */
    ms_out_str(&o, "\narena map counts\n");
    size_t nleaves = ms_arenamap.nleaves;
    printone(&o, "# arena map bot nodes", nleaves);
    ms_out_char(&o, '\n');
    size_t map_total = printone(&o, "# bytes lost to arena map root", ms_arenamap_root_bytes());
    map_total += printone(&o, "# bytes lost to arena map bot", nleaves * ms_arenamap_leaf_bytes());
    printone(&o, "Total", map_total);

    size_t cached[MS_NUM_CLASSES], depot[MS_NUM_CLASSES];
    size_t nthreads = ms_tcache_count(c, cached, depot);
    size_t cached_blocks = 0, cached_bytes = 0, depot_blocks = 0, depot_bytes = 0;
    for (unsigned i = 0; i < MS_NUM_CLASSES; i++) {
        cached_blocks += cached[i];
        cached_bytes += cached[i] * ms_class_size(i);
        depot_blocks += depot[i];
        depot_bytes += depot[i] * ms_class_size(i);
    }
    size_t held = cached_blocks + depot_blocks;
    ms_out_str(&o, "\nmemshim thread caches (their blocks count as in use above)\n");
    printone(&o, "# threads with a cache", nthreads);
    printone(&o, "# blocks in thread caches", cached_blocks);
    printone(&o, "# bytes in thread caches", cached_bytes);
    printone(&o, "# blocks in transfer lists", depot_blocks);
    printone(&o, "# bytes in transfer lists", depot_bytes);
    printone(&o, "# blocks in use by the program", inuse_blocks > held ? inuse_blocks - held : 0);
    printone(&o, "# bytes in use by the program",
             allocated > cached_bytes + depot_bytes ? allocated - cached_bytes - depot_bytes : 0);
    ms_out_flush(&o);
}

void ms_pymalloc_print_stats(int fd)
{
    ms_core_lock(&ms_core);
    ms_stats_print_locked(&ms_core, fd);
    ms_core_unlock(&ms_core);
}
