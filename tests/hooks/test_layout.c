/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's block layout and allocator semantics (SPEC 3.1, 3.2), read byte by
 * byte: header, trailer, serial numbers, fills, alignment, realloc's erase-and-restore,
 * calloc, usable_size, overflow of the size computation, break on serial.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "debug_layout.h"
#include "helpers.h"

static uint64_t be(const uint8_t *at)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | at[i];
    return v;
}

static void assert_all(const uint8_t *s, size_t n, uint8_t byte, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(s[i], byte, "%s: byte %zu is 0x%02x, want 0x%02x", what, i, s[i], byte);
}

static void assert_layout(const uint8_t *p, size_t n, char id, uint64_t serial)
{
    cr_assert_eq(be(p - 16), n, "size field");
    cr_assert_eq(p[-8], (uint8_t)id, "API id");
    assert_all(p - 7, 7, 0xFD, "leading pads");
    assert_all(p + n, 8, 0xFD, "trailing pads");
    cr_assert_eq(be(p + n + 8), serial, "serial");
}

Test(debug_layout, malloc_header_data_trailer_serial)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    uint64_t before = ms_debug_serialno();
    uint8_t *p = a.malloc(a.ctx, 10);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert_eq(ms_debug_serialno(), before + 1);
    assert_layout(p, 10, 'r', before + 1);
    assert_all(p, 10, 0xCD, "data");
    a.free(a.ctx, p);
}

Test(debug_layout, every_api_id_is_written)
{
    debug_setup(0);
    const char ids[] = "rmona";
    for (int i = 0; ids[i]; i++) {
        struct ms_allocator a = api(ids[i]);
        uint8_t *p = a.malloc(a.ctx, 3);
        assert_layout(p, 3, ids[i], ms_debug_serialno());
        a.free(a.ctx, p);
    }
    cr_assert_null(ms_debug_allocator('x').malloc);
}

Test(debug_layout, calloc_zero_fills_and_checks_overflow)
{
    debug_setup(0);
    struct ms_allocator a = api('m');
    uint8_t *p = a.calloc(a.ctx, 7, 9);
    cr_assert_not_null(p);
    assert_layout(p, 63, 'm', ms_debug_serialno());
    assert_all(p, 63, 0, "calloc data");
    a.free(a.ctx, p);
    cr_assert_null(a.calloc(a.ctx, SIZE_MAX / 2, 3));
    cr_assert_null(a.calloc(a.ctx, (size_t)1 << 32, (size_t)1 << 32));
}

Test(debug_layout, zero_byte_blocks_are_distinct)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    uint8_t *p = a.malloc(a.ctx, 0), *q = a.malloc(a.ctx, 0);
    cr_assert(p != NULL && q != NULL && p != q);
    assert_layout(p, 0, 'r', ms_debug_serialno() - 1);
    cr_assert_eq(a.usable_size(a.ctx, p), 0);
    a.free(a.ctx, p);
    a.free(a.ctx, q);
}

Test(debug_layout, size_overflow_gives_null_without_calling_lower)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    cr_assert_null(a.malloc(a.ctx, SIZE_MAX));
    cr_assert_null(a.malloc(a.ctx, SIZE_MAX - 16));
    cr_assert_null(a.memalign(a.ctx, 64, SIZE_MAX - 40));
    cr_assert_eq(fake.mallocs + fake.memaligns, 0);
    void *p = a.malloc(a.ctx, 8);
    cr_assert_null(a.realloc(a.ctx, p, SIZE_MAX - 8));
    assert_layout(p, 8, 'r', ms_debug_serialno());
    a.free(a.ctx, p);
}

Test(debug_layout, lower_failure_gives_null)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    fake.fail_after = 0;
    cr_assert_null(a.malloc(a.ctx, 8));
    cr_assert_null(a.calloc(a.ctx, 1, 8));
    cr_assert_null(a.memalign(a.ctx, 64, 8));
    fake.fail_after = -1;
    struct ms_debug_stats st;
    ms_debug_get_stats(&st);
    cr_assert_eq(st.live_blocks, 0);
}

Test(debug_layout, usable_size_is_the_requested_size)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    for (size_t n = 1; n < 2000; n += 37) {
        void *p = a.malloc(a.ctx, n);
        cr_assert_eq(a.usable_size(a.ctx, p), n);
        a.free(a.ctx, p);
    }
    /* A freed or made-up pointer is reported (test_diag.c). */
}

Test(debug_layout, memalign_keeps_the_layout_in_front_of_an_aligned_p)
{
    debug_setup(1 << 20);
    struct ms_allocator a = api('r');
    size_t aligns[] = { 8, 16, 32, 64, 256, 4096, 65536 };
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        uint8_t *p = a.memalign(a.ctx, aligns[i], 100);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % aligns[i], 0, "alignment %zu", aligns[i]);
        assert_layout(p, 100, 'r', ms_debug_serialno());
        assert_all(p, 100, 0xCD, "aligned data");
        cr_assert_eq(a.usable_size(a.ctx, p), 100);
        memset(p, 1, 100);
        a.free(a.ctx, p);
        /* In quarantine, still mapped: header, data and trailer are DEADBYTE. */
        assert_all(p - 16, 132, 0xDD, "freed aligned block");
    }
    cr_assert_null(a.memalign(a.ctx, 48, 10), "alignment must be a power of two");
}

/* The gap between the lower block and the header was never the user's: free must not
 * fill it (a 1 GiB alignment made every free write a gigabyte), and the quarantine charges
 * the block, not the gap. */
Test(debug_layout, free_of_an_aligned_block_leaves_the_alignment_gap_alone)
{
    debug_setup(1 << 20);
    struct ms_allocator a = api('r');
    uint8_t *p = a.memalign(a.ctx, 65536, 100);
    cr_assert_not_null(p);
    uint8_t *base = p - 65536;
    memset(base, 0x5A, 65536 - 16);
    a.free(a.ctx, p);
    assert_all(base, 65536 - 16, 0x5A, "alignment gap");
    assert_all(p - 16, 132, 0xDD, "freed aligned block");
    struct ms_debug_stats st;
    ms_debug_get_stats(&st);
    cr_assert_eq(st.quarantine_blocks, 1);
    cr_assert_eq(st.quarantine_bytes, 132 + 32, "the block and its record, not the gap");
    ms_debug_at_exit();
}

Test(debug_layout, free_fills_the_whole_block_and_quarantines_it)
{
    debug_setup(1 << 20);
    struct ms_allocator a = api('r');
    uint8_t *p = a.malloc(a.ctx, 40);
    memset(p, 'x', 40);
    a.free(a.ctx, p);
    assert_all(p - 16, 40 + 32, 0xDD, "freed block");
    struct ms_debug_stats st;
    ms_debug_get_stats(&st);
    cr_assert_eq(st.quarantine_blocks, 1);
    cr_assert_eq(st.quarantine_bytes, 72 + 32, "extent plus its 32-byte record");
    cr_assert_eq(st.live_blocks, 0);
    cr_assert_eq(fake.frees, 0, "the block must wait in quarantine");
    ms_debug_flush_quarantine();
    cr_assert_eq(fake.frees, 1);
    ms_debug_get_stats(&st);
    cr_assert_eq(st.quarantine_blocks, 0);
}

Test(debug_layout, quarantine_is_fifo_and_bounded_by_bytes)
{
    /* Budget for exactly four 100-byte blocks (132 bytes each with header and trailer,
     * plus a 32-byte record). */
    debug_setup(4 * (132 + 32));
    struct ms_allocator a = api('r');
    void *p[10];
    for (int i = 0; i < 10; i++)
        p[i] = a.malloc(a.ctx, 100);
    for (int i = 0; i < 10; i++) {
        a.free(a.ctx, p[i]);
        struct ms_debug_stats st;
        ms_debug_get_stats(&st);
        cr_assert_eq(st.quarantine_blocks, i < 4 ? (size_t)i + 1 : 4);
        cr_assert_eq(fake.frees, i < 4 ? 0 : (size_t)i - 3);
        cr_assert_leq(st.quarantine_bytes, 4 * (132 + 32));
    }
    /* The four newest are still there: each is still DEADBYTE (readable). */
    for (int i = 6; i < 10; i++)
        assert_all((uint8_t *)p[i] - 16, 132, 0xDD, "quarantined");
    ms_debug_at_exit();   /* a clean heap: no report, no abort */
}

Test(debug_layout, zero_quarantine_frees_at_once)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    a.free(a.ctx, a.malloc(a.ctx, 10));
    cr_assert_eq(fake.frees, 1);
    /* A block bigger than the whole budget bypasses the quarantine. */
    debug_setup(64);
    a.free(a.ctx, a.malloc(a.ctx, 100));
    cr_assert_eq(fake.frees, 1);
}

Test(debug_layout, realloc_grow_keeps_data_fills_growth_new_serial)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    uint8_t *p = a.malloc(a.ctx, 10);
    memcpy(p, "0123456789", 10);
    uint8_t *q = a.realloc(a.ctx, p, 300);
    cr_assert_not_null(q);
    assert_layout(q, 300, 'r', ms_debug_serialno());
    cr_assert_eq(be(q + 308), 2, "malloc was call #1, realloc call #2");
    cr_assert_arr_eq(q, "0123456789", 10);
    assert_all(q + 10, 290, 0xCD, "growth");
    uint8_t *r = a.realloc(a.ctx, q, 4);
    assert_layout(r, 4, 'r', 3);
    cr_assert_arr_eq(r, "0123", 4);
    a.free(a.ctx, r);
}

Test(debug_layout, realloc_preserves_both_ends_of_a_big_block)
{
    debug_setup(0);
    struct ms_allocator a = api('o');
    uint8_t *p = a.malloc(a.ctx, 1000);
    for (int i = 0; i < 1000; i++)
        p[i] = (uint8_t)(i * 7);
    uint8_t *q = a.realloc(a.ctx, p, 5000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(q[i], (uint8_t)(i * 7), "byte %d", i);
    assert_all(q + 1000, 4000, 0xCD, "growth");
    uint8_t *r = a.realloc(a.ctx, q, 950);
    for (int i = 0; i < 950; i++)
        cr_assert_eq(r[i], (uint8_t)(i * 7), "byte %d", i);
    assert_layout(r, 950, 'o', ms_debug_serialno());
    a.free(a.ctx, r);
}

Test(debug_layout, realloc_that_moves_erases_the_old_block_as_cpython)
{
    debug_setup(0);
    fake.realloc_moves = true;
    struct ms_allocator a = api('r');
    /* Small block: all of it (header, data, trailer) becomes DEADBYTE. */
    uint8_t *p = a.malloc(a.ctx, 50);
    memset(p, 'a', 50);
    uint8_t *q = a.realloc(a.ctx, p, 60);
    cr_assert_neq(p, q);
    assert_all(p - 16, 50 + 32, 0xDD, "old small block");
    assert_all(q, 50, 'a', "moved data");
    /* Big block: header, first 64, last 64 and trailer are DEADBYTE, the middle not. */
    p = a.malloc(a.ctx, 1000);
    memset(p, 'b', 1000);
    q = a.realloc(a.ctx, p, 2000);
    assert_all(p - 16, 16 + 64, 0xDD, "old header and first 64");
    assert_all(p + 64, 1000 - 128, 'b', "old middle");
    assert_all(p + 1000 - 64, 64 + 16, 0xDD, "old last 64 and trailer");
    assert_all(q, 1000, 'b', "moved data");
    assert_all(q + 1000, 1000, 0xCD, "growth");
    a.free(a.ctx, q);
}

Test(debug_layout, failed_realloc_leaves_the_block_intact)
{
    debug_setup(0);
    struct ms_allocator a = api('m');
    size_t sizes[] = { 10, 200 };
    for (int k = 0; k < 2; k++) {
        size_t n = sizes[k];
        uint8_t *p = a.malloc(a.ctx, n);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)i;
        uint64_t serial = ms_debug_serialno();
        fake.fail_after = 0;
        cr_assert_null(a.realloc(a.ctx, p, n * 10));
        fake.fail_after = -1;
        assert_layout(p, n, 'm', serial);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(p[i], (uint8_t)i);
        cr_assert(ms_debug_owns(p));
        ms_debug_check_heap();
        a.free(a.ctx, p);
    }
}

Test(debug_layout, realloc_of_an_aligned_block_moves_by_copy)
{
    debug_setup(1 << 16);
    struct ms_allocator a = api('r');
    uint8_t *p = a.memalign(a.ctx, 256, 40);
    memset(p, 'z', 40);
    uint8_t *q = a.realloc(a.ctx, p, 80);
    cr_assert_neq(p, q);
    assert_all(q, 40, 'z', "copied");
    assert_all(q + 40, 40, 0xCD, "growth");
    assert_layout(q, 80, 'r', ms_debug_serialno());
    assert_all(p - 16, 40 + 32, 0xDD, "old aligned block in quarantine");
    cr_assert_not(ms_debug_owns(p));
    a.free(a.ctx, q);
}

Test(debug_layout, realloc_null_is_malloc)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    uint8_t *p = a.realloc(a.ctx, NULL, 5);
    assert_layout(p, 5, 'r', ms_debug_serialno());
    assert_all(p, 5, 0xCD, "data");
    a.free(a.ctx, p);
    a.free(a.ctx, NULL);
}

static void *break_p;
static uint64_t break_serial;
static int break_calls;

static void on_break(void *p, uint64_t serial)
{
    break_p = p;
    break_serial = serial;
    break_calls++;
}

Test(debug_layout, break_on_serial_calls_back_with_the_block)
{
    struct ms_debug_config cfg = {
        .lower = fake_allocator(), .fd = 2, .break_serialno = 3, .on_break = on_break,
    };
    cr_assert_eq(ms_debug_init(&cfg), 0);
    struct ms_allocator a = api('r');
    void *p1 = a.malloc(a.ctx, 1);
    void *p2 = a.calloc(a.ctx, 1, 1);
    cr_assert_eq(break_calls, 0);
    void *p3 = a.realloc(a.ctx, p1, 100);
    cr_assert_eq(break_calls, 1);
    cr_assert_eq(break_p, p3);
    cr_assert_eq(break_serial, 3);
    void *p4 = a.malloc(a.ctx, 1);
    cr_assert_eq(break_calls, 1);
    a.free(a.ctx, p2);
    a.free(a.ctx, p3);
    a.free(a.ctx, p4);
}

Test(debug_layout, init_refuses_once_blocks_exist)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    void *p = a.malloc(a.ctx, 1);
    struct ms_debug_config cfg = { .lower = fake_allocator(), .fd = 2 };
    cr_assert_eq(ms_debug_init(&cfg), -1);
    a.free(a.ctx, p);
    cr_assert_eq(ms_debug_init(&cfg), 0);
}

/* The test's foreign blocks: 8 bytes into a glibc block. */
static size_t foreign_size(void *p)
{
    return (uintptr_t)p % 16 == 8 ? malloc_usable_size((char *)p - 8) - 8 : 0;
}

static void foreign_free(void *p)
{
    free((char *)p - 8);
}

Test(debug_layout, foreign_blocks_are_handed_to_the_callbacks)
{
    struct ms_debug_config cfg = {
        .lower = fake_allocator(), .fd = 2, .foreign_size = foreign_size,
        .foreign_free = foreign_free,
    };
    cr_assert_eq(ms_debug_init(&cfg), 0);
    struct ms_allocator a = api('r');
    char *raw = malloc(64);
    char *f = raw + 8;
    memcpy(f, "foreign", 8);
    cr_assert_geq(a.usable_size(a.ctx, f), 8);
    char *q = a.realloc(a.ctx, f, 100);
    cr_assert_str_eq(q, "foreign");
    cr_assert(ms_debug_owns(q));
    a.free(a.ctx, q);
    raw = malloc(64);
    a.free(a.ctx, raw + 8);
}

Test(debug_layout, big_blocks_in_other_leaves_are_tracked_and_counted)
{
    debug_setup(0);
    struct ms_allocator a = api('r');
    /* 1 MiB blocks come from glibc's mmap, far from its heap: other bitmap leaves. */
    uint8_t *big[4], *small[100];
    for (int i = 0; i < 4; i++) {
        big[i] = a.malloc(a.ctx, 1 << 20);
        assert_layout(big[i], 1 << 20, 'r', ms_debug_serialno());
        cr_assert_eq(a.usable_size(a.ctx, big[i]), 1 << 20);
    }
    for (int i = 0; i < 100; i++)
        small[i] = a.malloc(a.ctx, 24);
    struct ms_debug_stats st;
    ms_debug_get_stats(&st);
    cr_assert_eq(st.live_blocks, 104);
    ms_debug_check_heap();
    for (int i = 0; i < 4; i++) {
        cr_assert(ms_debug_owns(big[i]));
        cr_assert_not(ms_debug_owns(big[i] + 16));
        a.free(a.ctx, big[i]);
        cr_assert_not(ms_debug_owns(big[i]));
    }
    for (int i = 0; i < 100; i++)
        a.free(a.ctx, small[i]);
    ms_debug_get_stats(&st);
    cr_assert_eq(st.live_blocks, 0);
}

Test(debug_layout, shrink_in_place_leaves_deadbyte_beyond_the_new_trailer)
{
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("AddressSanitizer's realloc always moves the block");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    cr_skip_test("AddressSanitizer's realloc always moves the block");
#endif
#endif
    debug_setup(0);
    struct ms_allocator a = api('r');
    uint8_t *p = a.malloc(a.ctx, 100);
    memset(p, 'k', 100);
    /* 132 -> 122 lower bytes: glibc keeps the chunk (the 16-byte rest is too small to
     * split off), so the erased bytes past the new trailer stay visible. */
    uint8_t *q = a.realloc(a.ctx, p, 90);
    cr_assert_eq(q, p, "glibc shrinks this one in place");
    assert_layout(q, 90, 'r', ms_debug_serialno());
    assert_all(q, 90, 'k', "kept data");
    assert_all(q + 90 + 16, 10, 0xDD, "erased old trailer region past the new one");
    a.free(a.ctx, q);
}

/* The quarantine's verifier: every length and start, a wrong byte at every offset. */
Test(debug_layout, the_verifier_finds_a_wrong_byte_anywhere)
{
    static uint8_t buf[200];
    for (size_t start = 0; start < 16; start++) {
        for (size_t n = 0; n <= 150; n++) {
            memset(buf, 0x11, sizeof buf);
            memset(buf + start, MS_DEADBYTE, n);
            cr_assert(ms_layout_all(buf + start, n, MS_DEADBYTE), "start %zu n %zu", start, n);
            for (size_t k = 0; k < n; k++) {
                buf[start + k] = 0xDC;
                cr_assert(!ms_layout_all(buf + start, n, MS_DEADBYTE), "start %zu n %zu k %zu",
                          start, n, k);
                cr_assert_eq(ms_layout_first_not(buf + start, n, MS_DEADBYTE), k);
                buf[start + k] = MS_DEADBYTE;
            }
        }
    }
}
