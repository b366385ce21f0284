/* SPDX-License-Identifier: MIT */
/*
 * Golden texts of every diagnostic of the debug layer (SPEC 3.4 and memshim's own
 * reports).  Each scenario runs in a forked child whose diagnostics go to a pipe; the test
 * checks SIGABRT and compares the text byte for byte with addresses and serial numbers
 * masked (helpers.c: mask).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "helpers.h"

#define TRACE_OFF "Enable MEMSHIM_TRACEMALLOC to get the memory block allocation traceback\n\n"
#define FREED_TRACE_OFF                                                                   \
    "Enable MEMSHIM_TRACEMALLOC to get the memory block allocation and free tracebacks\n\n"
#define OK_LEAD "    The 7 pad bytes at p-7 are FORBIDDENBYTE, as expected.\n"
#define OK_TAIL "    The 8 pad bytes at tail=0xADDR are FORBIDDENBYTE, as expected.\n"
#define MADE "    The block was made by call #N to debug malloc/realloc.\n"
/* The trailing-pad lines when only tail+0 was overwritten, with byte b. */
#define BAD_TAIL0(b)                                                                 \
    "    The 8 pad bytes at tail=0xADDR are not all FORBIDDENBYTE (0xfd):\n"          \
    "        at tail+0: " b " *** OUCH\n"                                           \
    "        at tail+1: 0xfd\n        at tail+2: 0xfd\n        at tail+3: 0xfd\n"     \
    "        at tail+4: 0xfd\n        at tail+5: 0xfd\n        at tail+6: 0xfd\n"     \
    "        at tail+7: 0xfd\n"
#define CD10 "    Data at p: cd cd cd cd cd cd cd cd cd cd\n"

static char want[8192];

/* ---- overflow by one at each trailing pad byte ------------------------------------- */

static void overflow_at(void *arg)
{
    int k = *(int *)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 10);
    p[10 + k] = 'x';
    a.free(a.ctx, p);
}

Test(debug_diag, overflow_by_one_at_each_trailing_byte)
{
    for (int k = 0; k < 8; k++) {
        int n = snprintf(want, sizeof want,
                         "Debug memory block at address p=0xADDR: API 'r'\n"
                         "    10 bytes originally requested\n" OK_LEAD
                         "    The 8 pad bytes at tail=0xADDR are not all FORBIDDENBYTE "
                         "(0xfd):\n");
        for (int i = 0; i < 8; i++)
            n += snprintf(want + n, sizeof want - n, "        at tail+%d: %s\n", i,
                          i == k ? "0x78 *** OUCH" : "0xfd");
        snprintf(want + n, sizeof want - n,
                 MADE CD10 "\n" TRACE_OFF
                 "Fatal memshim error: memshim_debug_free: bad trailing pad byte\n");
        expect_fatal(0, overflow_at, &k, want);
    }
}

/* ---- underflow ---------------------------------------------------------------------- */

static void underflow(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('m');
    char *p = a.malloc(a.ctx, 10);
    p[-3] = 0;
    a.free(a.ctx, p);
}

Test(debug_diag, underflow_reports_bad_leading_pad)
{
    expect_fatal(0, underflow, NULL,
                 "Debug memory block at address p=0xADDR: API 'm'\n"
                 "    10 bytes originally requested\n"
                 "    The 7 pad bytes at p-7 are not all FORBIDDENBYTE (0xfd):\n"
                 "        at p-7: 0xfd\n"
                 "        at p-6: 0xfd\n"
                 "        at p-5: 0xfd\n"
                 "        at p-4: 0xfd\n"
                 "        at p-3: 0x00 *** OUCH\n"
                 "        at p-2: 0xfd\n"
                 "        at p-1: 0xfd\n"
                 "    Because memory is corrupted at the start, the count of bytes requested\n"
                 "       may be bogus, and checking the trailing pad bytes may segfault.\n"
                 OK_TAIL MADE CD10 "\n" TRACE_OFF
                 "Fatal memshim error: memshim_debug_free: bad leading pad byte\n");
}

/* ---- bad ID for every pair of APIs -------------------------------------------------- */

struct pair {
    char made, freed;
    bool by_realloc;
};

static void mismatch(void *arg)
{
    struct pair *pr = arg;
    struct ms_allocator m = ms_debug_allocator(pr->made), f = ms_debug_allocator(pr->freed);
    char *p = m.malloc(m.ctx, 3);
    memcpy(p, "abc", 3);
    if (pr->by_realloc)
        f.realloc(f.ctx, p, 30);
    else
        f.free(f.ctx, p);
}

Test(debug_diag, bad_id_for_each_api_pair)
{
    const char ids[] = "rmona";
    for (int i = 0; ids[i]; i++) {
        for (int j = 0; ids[j]; j++) {
            if (i == j)
                continue;
            struct pair pr = { ids[i], ids[j], (i + j) % 3 == 0 };
            snprintf(want, sizeof want,
                     "Debug memory block at address p=0xADDR: API '%c'\n"
                     "    3 bytes originally requested\n" OK_LEAD OK_TAIL MADE
                     "    Data at p: 61 62 63\n\n" TRACE_OFF
                     "Fatal memshim error: memshim_debug_%s: bad ID: Allocated using API "
                     "'%c', verified using API '%c'\n",
                     ids[i], pr.by_realloc ? "realloc" : "free", ids[i], ids[j]);
            expect_fatal(0, mismatch, &pr, want);
        }
    }
}

/* ---- data line rules: N = 0, N <= 16, N > 16 ---------------------------------------- */

static void overflow_n(void *arg)
{
    size_t n = *(size_t *)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    unsigned char *p = a.malloc(a.ctx, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)i;
    p[n] = 0;
    a.realloc(a.ctx, p, n + 1);
}

static void expect_data_line(size_t n, const char *data)
{
    snprintf(want, sizeof want,
             "Debug memory block at address p=0xADDR: API 'r'\n"
             "    %zu bytes originally requested\n" OK_LEAD
             BAD_TAIL0("0x00") MADE "%s\n" TRACE_OFF
             "Fatal memshim error: memshim_debug_realloc: bad trailing pad byte\n",
             n, data);
    expect_fatal(0, overflow_n, &n, want);
}

Test(debug_diag, zero_byte_block_has_no_data_line)
{
    expect_data_line(0, "");
}

Test(debug_diag, sixteen_bytes_are_all_shown)
{
    expect_data_line(16, "    Data at p: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n");
}

Test(debug_diag, seventeen_bytes_and_more_are_elided)
{
    expect_data_line(17, "    Data at p: 00 01 02 03 04 05 06 07 ... 09 0a 0b 0c 0d 0e 0f 10\n");
    expect_data_line(300, "    Data at p: 00 01 02 03 04 05 06 07 ... 24 25 26 27 28 29 2a 2b\n");
}

/* ---- aligned blocks --------------------------------------------------------------- */

static void aligned_overflow(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.memalign(a.ctx, 4096, 10);
    p[11] = 'x';
    a.free(a.ctx, p);
}

Test(debug_diag, aligned_block_overflow)
{
    expect_fatal(1 << 20, aligned_overflow, NULL,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    10 bytes originally requested\n" OK_LEAD
                 "    The 8 pad bytes at tail=0xADDR are not all FORBIDDENBYTE (0xfd):\n"
                 "        at tail+0: 0xfd\n"
                 "        at tail+1: 0x78 *** OUCH\n"
                 "        at tail+2: 0xfd\n"
                 "        at tail+3: 0xfd\n"
                 "        at tail+4: 0xfd\n"
                 "        at tail+5: 0xfd\n"
                 "        at tail+6: 0xfd\n"
                 "        at tail+7: 0xfd\n" MADE CD10 "\n" TRACE_OFF
                 "Fatal memshim error: memshim_debug_free: bad trailing pad byte\n");
}

/* ---- corrupted size field --------------------------------------------------------- */

static void smash_header(void *arg)
{
    int how = *(int *)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    unsigned char *p = how == 2 ? a.memalign(a.ctx, 64, 10) : a.malloc(a.ctx, 10);
    if (how == 0)
        memset(p - 16, 0x41, 16);          /* the whole header: id and size bogus */
    else
        memset(p - 16, 0x7f, 8);           /* only the size: pads and id intact */
    a.free(a.ctx, p);
}

#define BOGUS_7F "    9187201950435737471 bytes originally requested\n"

/* A plain block's size is known only from its header; the layer clamps it to what the
 * lower block holds (glibc gives 56 usable bytes for the 42 asked: room for 24). */
#define ROOM_24                                                                        \
    "    The size field is corrupted: the block has room for at most 24 bytes,\n"      \
    "       so the trailing pad bytes cannot be found.\n"                             \
    "    Data at p: cd cd cd cd cd cd cd cd ... fd fd 00 00 00 00 00 00\n\n" TRACE_OFF

Test(debug_diag, corrupted_size_does_not_crash_the_dump)
{
    int how = 0;
    expect_fatal(0, smash_header, &how,
                 "Debug memory block at address p=0xADDR: API 'A'\n"
                 "    4702111234474983745 bytes originally requested\n"
                 "    The 7 pad bytes at p-7 are not all FORBIDDENBYTE (0xfd):\n"
                 "        at p-7: 0x41 *** OUCH\n"
                 "        at p-6: 0x41 *** OUCH\n"
                 "        at p-5: 0x41 *** OUCH\n"
                 "        at p-4: 0x41 *** OUCH\n"
                 "        at p-3: 0x41 *** OUCH\n"
                 "        at p-2: 0x41 *** OUCH\n"
                 "        at p-1: 0x41 *** OUCH\n"
                 "    Because memory is corrupted at the start, the count of bytes requested\n"
                 "       may be bogus, and checking the trailing pad bytes may segfault.\n"
                 ROOM_24
                 "Fatal memshim error: memshim_debug_free: bad ID: Allocated using API 'A', "
                 "verified using API 'r'\n");
    how = 1;
    expect_fatal(0, smash_header, &how,
                 "Debug memory block at address p=0xADDR: API 'r'\n" BOGUS_7F OK_LEAD ROOM_24
                 "Fatal memshim error: memshim_debug_free: bad size field\n");
    /* An aligned block's size is recorded in the live table: the dump goes on with it. */
    how = 2;
    expect_fatal(0, smash_header, &how,
                 "Debug memory block at address p=0xADDR: API 'r'\n" BOGUS_7F OK_LEAD
                 "    The size field is corrupted: memshim recorded 10 bytes for this block.\n"
                 OK_TAIL MADE CD10 "\n" TRACE_OFF
                 "Fatal memshim error: memshim_debug_free: bad size field\n");
}

/* ---- double free -------------------------------------------------------------------- */

static void double_free(void *arg)
{
    int reuse = *(int *)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 10);
    a.free(a.ctx, p);
    if (reuse) {
        /* Memory churn that would hand p's memory out again without the quarantine. */
        for (int i = 0; i < 100; i++)
            a.free(a.ctx, a.malloc(a.ctx, 10));
        if (reuse == 2)
            a.realloc(a.ctx, p, 20);
    }
    a.free(a.ctx, p);
}

Test(debug_diag, double_free_before_and_after_reuse)
{
    const char *text =
        "Debug memory block at address p=0xADDR: API 'r'\n"
        "    10 bytes originally requested\n"
        "    The block was made by call #N to debug malloc/realloc and freed after call #N.\n"
        "    It is in the quarantine: this is its second free.\n\n" FREED_TRACE_OFF
        "Fatal memshim error: memshim_debug_free: double free\n";
    int reuse = 0;
    expect_fatal(1 << 20, double_free, &reuse, text);
    reuse = 1;
    expect_fatal(1 << 20, double_free, &reuse, text);
    reuse = 2;
    expect_fatal(1 << 20, double_free, &reuse,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    10 bytes originally requested\n"
                 "    The block was made by call #N to debug malloc/realloc and freed after "
                 "call #N.\n"
                 "    It is in the quarantine: realloc was called on a block that was already "
                 "freed.\n\n" FREED_TRACE_OFF
                 "Fatal memshim error: memshim_debug_realloc: realloc of freed memory\n");
}

/* The text for a second free of a 10-byte 'r' block that has left the quarantine. */
#define FREED_TWICE_AFTER_QUARANTINE                                                        \
    "Debug memory block at address p=0xADDR: API 'r'\n"                                    \
    "    10 bytes originally requested\n"                                                   \
    "    The block was made by call #N to debug malloc/realloc and freed after call #N.\n" \
    "    It has left the quarantine (its memory may be in use again): this is its second "  \
    "free.\n\n" FREED_TRACE_OFF                                                             \
    "Fatal memshim error: memshim_debug_free: double free\n"

static void double_free_after_quarantine(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 10);
    a.free(a.ctx, p);
    /* 232-byte extents push p out of a 1 KiB quarantine; glibc cannot put them in p's
     * 48-byte chunk, so p is not handed out again. */
    for (int i = 0; i < 20; i++)
        a.free(a.ctx, a.malloc(a.ctx, 200));
    a.free(a.ctx, p);
}

Test(debug_diag, double_free_after_the_block_left_the_quarantine)
{
    expect_fatal(1024, double_free_after_quarantine, NULL,
                 FREED_TWICE_AFTER_QUARANTINE);
}

/* The quarantine keeps its records in a chain of 64 KiB segments (2,047 records each).
 * p is freed, then 16,000 blocks of 72 bytes each (block and record) after it.  With a
 * 1 KiB budget each pushes an older one out, so p's record is eight segments back among
 * those that left, where a second free must still find it (within 16,384).  With 2 MiB
 * all stay queued, p eight segments before the newest.  Every block is allocated first,
 * so nothing reuses p's memory. */
enum { MANY = 16000 };
static void *many[MANY];

static void double_free_after_many_freed(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    for (int i = 0; i < MANY; i++)
        many[i] = a.malloc(a.ctx, 8);
    char *p = a.malloc(a.ctx, 10);
    a.free(a.ctx, p);
    for (int i = 0; i < MANY; i++)
        a.free(a.ctx, many[i]);
    a.free(a.ctx, p);
}

Test(debug_diag, double_free_is_recognised_when_its_record_is_segments_back)
{
    expect_fatal(1024, double_free_after_many_freed, NULL, FREED_TWICE_AFTER_QUARANTINE);
    expect_fatal(2 << 20, double_free_after_many_freed, NULL,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    10 bytes originally requested\n"
                 "    The block was made by call #N to debug malloc/realloc and freed after "
                 "call #N.\n"
                 "    It is in the quarantine: this is its second free.\n\n" FREED_TRACE_OFF
                 "Fatal memshim error: memshim_debug_free: double free\n");
}

static void double_free_serials(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('o');
    a.malloc(a.ctx, 1);
    char *p = a.malloc(a.ctx, 5);          /* call #2 */
    a.malloc(a.ctx, 1);
    a.free(a.ctx, p);                      /* after call #3 */
    a.free(a.ctx, p);
}

Test(debug_diag, double_free_names_the_serials)
{
    static char text[4096];
    cr_assert_eq(run_child(1 << 20, double_free_serials, NULL, text, sizeof text), SIGABRT);
    cr_assert(strstr(text, "made by call #2 to debug malloc/realloc and freed after call #3.\n")
              != NULL, "%s", text);
}

/* ---- invalid frees ------------------------------------------------------------------ */

static char global_buffer[64];

static void invalid(void *arg)
{
    int kind = *(int *)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char local[32];
    char *p = a.malloc(a.ctx, 10);
    switch (kind) {
    case 0: a.free(a.ctx, local); break;
    case 1: a.free(a.ctx, global_buffer + 16); break;
    case 2: a.free(a.ctx, p + 4); break;
    case 3: a.free(a.ctx, (char *)malloc(64) + 3); break;
    case 4: a.free(a.ctx, malloc(64)); break;
    case 5: a.realloc(a.ctx, p - 8, 100); break;
    case 6: {
        char *q = a.malloc(a.ctx, 10);
        a.free(a.ctx, q);
        a.free(a.ctx, q + 16);
        break;
    }
    }
}

Test(debug_diag, invalid_free_of_each_kind)
{
    static char text[4096];
    static const char *const expect[] = {
        "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
        "    p is on the stack of the current thread.\n\n"
        "Fatal memshim error: memshim_debug_free: invalid free of a stack address\n",
        NULL, /* global: the module path varies, checked below */
        "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
        "    p is 4 bytes inside the block at 0xADDR (10 bytes, made by call #N to debug "
        "malloc/realloc).\n\n" TRACE_OFF
        "Fatal memshim error: memshim_debug_free: invalid free of an interior pointer\n",
        "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
        "    p is not aligned to 16 bytes: memshim never hands out such an address.\n\n"
        "Fatal memshim error: memshim_debug_free: invalid free of a misaligned pointer\n",
        "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
        "    memshim did not hand out this address, or the block there was freed and has "
        "left the quarantine.\n\n"
        "Fatal memshim error: memshim_debug_free: invalid free of an unknown pointer\n",
        "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
        "    p is 8 bytes in front of the block at 0xADDR (10 bytes, made by call #N to "
        "debug malloc/realloc).\n\n" TRACE_OFF
        "Fatal memshim error: memshim_debug_realloc: invalid realloc of an interior "
        "pointer\n",
        "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
        "    p is 16 bytes inside the freed block at 0xADDR (10 bytes, made by call #N to "
        "debug malloc/realloc).\n\n" FREED_TRACE_OFF
        "Fatal memshim error: memshim_debug_free: invalid free of an interior pointer\n",
    };
    for (int kind = 0; kind < 7; kind++) {
        if (expect[kind] != NULL) {
            expect_fatal(1 << 20, invalid, &kind, expect[kind]);
            continue;
        }
        cr_assert_eq(run_child(1 << 20, invalid, &kind, text, sizeof text), SIGABRT);
        mask(text);
        const char *head =
            "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
            "    p is in the image of the main program at offset 0x";
        cr_assert_eq(strncmp(text, head, strlen(head)), 0, "%s", text);
        const char *end = " (a global, a static or a constant).\n\n"
                          "Fatal memshim error: memshim_debug_free: invalid free of a global "
                          "address\n";
        cr_assert_str_eq(text + strlen(text) - strlen(end), end, "%s", text);
    }
}

/* malloc_usable_size of a dangling or made-up pointer: glibc answers from whatever lies in
 * front of it, ASan reports it, and so does the debug layer. */
static void usable_size_of_bad(void *arg)
{
    int interior = *(int *)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 10);
    if (interior) {
        a.usable_size(a.ctx, p + 16);
        return;
    }
    a.free(a.ctx, p);
    a.usable_size(a.ctx, p);
}

Test(debug_diag, usable_size_of_freed_or_interior_pointer)
{
    int interior = 0;
    expect_fatal(1 << 20, usable_size_of_bad, &interior,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    10 bytes originally requested\n"
                 "    The block was made by call #N to debug malloc/realloc and freed after "
                 "call #N.\n"
                 "    It is in the quarantine: malloc_usable_size was called on a block that "
                 "was already freed.\n\n" FREED_TRACE_OFF
                 "Fatal memshim error: memshim_debug_usable_size: malloc_usable_size of freed "
                 "memory\n");
    interior = 1;
    expect_fatal(1 << 20, usable_size_of_bad, &interior,
                 "Debug memory block at address p=0xADDR: not a block memshim handed out\n"
                 "    p is 16 bytes inside the block at 0xADDR (10 bytes, made by call #N to "
                 "debug malloc/realloc).\n\n" TRACE_OFF
                 "Fatal memshim error: memshim_debug_usable_size: invalid malloc_usable_size "
                 "of an interior pointer\n");
}

/* ---- writes after free -------------------------------------------------------------- */

static void write_after_free(void *arg)
{
    int at_exit = *(int *)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 20);
    a.free(a.ctx, p);
    p[3] = 'A';
    if (at_exit) {
        ms_debug_at_exit();
        return;
    }
    for (int i = 0; i < 100; i++)
        a.free(a.ctx, a.malloc(a.ctx, 20));
}

Test(debug_diag, write_after_free_found_when_leaving_quarantine_and_at_exit)
{
    const char *body =
        "Debug memory block at address p=0xADDR: API 'r'\n"
        "    20 bytes originally requested\n"
        "    The block was made by call #N to debug malloc/realloc and freed after call #N.\n"
        "    It was written to after it was freed: the byte at p+3 is 0x41, not DEADBYTE "
        "(0xdd).\n"
        "    Data at p: dd dd dd 41 dd dd dd dd ... dd dd dd dd dd dd dd dd\n\n" FREED_TRACE_OFF
        "Fatal memshim error: ";
    int at_exit = 0;
    snprintf(want, sizeof want, "%smemshim_debug_free: write to freed memory\n", body);
    expect_fatal(1024, write_after_free, &at_exit, want);
    at_exit = 1;
    snprintf(want, sizeof want, "%smemshim_debug_at_exit: write to freed memory\n", body);
    expect_fatal(1024, write_after_free, &at_exit, want);
}

/* A write of several bytes into the middle of a block, which the data line elides: the
 * report shows what was written. */
static void wide_write_after_free(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 200);
    a.free(a.ctx, p);
    uint64_t v = 0x1234;
    memcpy(p + 100, &v, sizeof v);
    ms_debug_at_exit();
}

Test(debug_diag, write_after_free_of_several_bytes_shows_them)
{
    expect_fatal(1024, wide_write_after_free, NULL,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    200 bytes originally requested\n"
                 "    The block was made by call #N to debug malloc/realloc and freed after "
                 "call #N.\n"
                 "    It was written to after it was freed: the byte at p+100 is 0x34, not "
                 "DEADBYTE (0xdd).\n"
                 "    The changes span p+100 to p+107: 34 12 00 00 00 00 00 00\n"
                 "    Data at p: dd dd dd dd dd dd dd dd ... dd dd dd dd dd dd dd dd\n\n"
                 FREED_TRACE_OFF
                 "Fatal memshim error: memshim_debug_at_exit: write to freed memory\n");
}

/* The pointer a growing realloc moved away from is freed memory too (beyond CPython,
 * which hands it straight back to the allocator below). */
static void write_after_realloc(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 20);
    char *q = a.realloc(a.ctx, p, 4000);
    if (q == p)
        return; /* grew in place: nothing to catch, and no text: the test fails */
    p[3] = 'A';
    ms_debug_at_exit();
}

Test(debug_diag, write_through_the_pointer_a_realloc_moved_away_from)
{
    expect_fatal(1024 * 1024, write_after_realloc, NULL,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    20 bytes originally requested\n"
                 "    The block was made by call #N to debug malloc/realloc and freed after "
                 "call #N.\n"
                 "    It was written to after it was freed: the byte at p+3 is 0x41, not "
                 "DEADBYTE (0xdd).\n"
                 "    Data at p: dd dd dd 41 dd dd dd dd ... dd dd dd dd dd dd dd dd\n\n"
                 FREED_TRACE_OFF
                 "Fatal memshim error: memshim_debug_at_exit: write to freed memory\n");
}

static void header_write_after_free(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 4);
    a.free(a.ctx, p);
    p[-5] = 0;
    ms_debug_flush_quarantine();
}

Test(debug_diag, write_after_free_in_the_header)
{
    expect_fatal(1024, header_write_after_free, NULL,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    4 bytes originally requested\n"
                 "    The block was made by call #N to debug malloc/realloc and freed after "
                 "call #N.\n"
                 "    It was written to after it was freed: the byte at p-5 is 0x00, not "
                 "DEADBYTE (0xdd).\n"
                 "    Data at p: dd dd dd dd\n\n" FREED_TRACE_OFF
                 "Fatal memshim error: memshim_debug_check_heap: write to freed memory\n");
}

/* ---- blocks never freed --------------------------------------------------------------- */

static void never_freed(void *arg)
{
    int on_demand = *(int *)arg;
    struct ms_allocator a = ms_debug_allocator('o');
    for (int i = 0; i < 50; i++)
        a.malloc(a.ctx, 10);
    char *p = a.malloc(a.ctx, 10);
    for (int i = 0; i < 50; i++)
        a.malloc(a.ctx, 10);
    p[12] = 'y';
    if (on_demand)
        ms_debug_check_heap();
    else
        ms_debug_at_exit();
}

Test(debug_diag, never_freed_overflow_found_at_exit_and_on_demand)
{
    const char *body =
        "Debug memory block at address p=0xADDR: API 'o'\n"
        "    10 bytes originally requested\n" OK_LEAD
        "    The 8 pad bytes at tail=0xADDR are not all FORBIDDENBYTE (0xfd):\n"
        "        at tail+0: 0xfd\n"
        "        at tail+1: 0xfd\n"
        "        at tail+2: 0x79 *** OUCH\n"
        "        at tail+3: 0xfd\n"
        "        at tail+4: 0xfd\n"
        "        at tail+5: 0xfd\n"
        "        at tail+6: 0xfd\n"
        "        at tail+7: 0xfd\n" MADE CD10 "\n" TRACE_OFF;
    int on_demand = 0;
    snprintf(want, sizeof want, "%sFatal memshim error: memshim_debug_at_exit: bad trailing "
             "pad byte\n", body);
    expect_fatal(0, never_freed, &on_demand, want);
    on_demand = 1;
    snprintf(want, sizeof want, "%sFatal memshim error: memshim_debug_check_heap: bad "
             "trailing pad byte\n", body);
    expect_fatal(0, never_freed, &on_demand, want);
}

/* ---- the callbacks: allocation traceback and current backtrace ------------------------ */

static bool fake_traceback(struct ms_out *o, const void *p)
{
    (void)p;
    ms_out_str(o, "Memory block allocated at (most recent call first):\n"
                  "  File \"demo.c\", line 12, in make_buffer\n"
                  "  File \"demo.c\", line 30, in main\n\n");
    return true;
}

static void fake_backtrace(struct ms_out *o)
{
    ms_out_str(o, "Current thread 0x00007f0000000001 (most recent call first):\n"
                  "  main+0x1a\n");
}

static void overflow_with_callbacks(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 10);
    p[10] = 'x';
    a.free(a.ctx, p);
}

Test(debug_diag, spec_example_with_traceback_and_backtrace)
{
    child_template.print_alloc_traceback = fake_traceback;
    child_template.print_current_backtrace = fake_backtrace;
    expect_fatal(0, overflow_with_callbacks, NULL,
                 "Debug memory block at address p=0xADDR: API 'r'\n"
                 "    10 bytes originally requested\n" OK_LEAD
                 BAD_TAIL0("0x78") MADE CD10 "\n"
                 "Memory block allocated at (most recent call first):\n"
                 "  File \"demo.c\", line 12, in make_buffer\n"
                 "  File \"demo.c\", line 30, in main\n\n"
                 "Fatal memshim error: memshim_debug_free: bad trailing pad byte\n\n"
                 "Current thread 0xADDR (most recent call first):\n"
                 "  main+0x1a\n");
}

/* ---- Criterion's own fatal-path check: the process dies of SIGABRT ------------------- */

Test(debug_diag, bad_free_aborts_the_process, .signal = SIGABRT)
{
    debug_setup_fd(0, open("/dev/null", O_WRONLY));
    struct ms_allocator a = ms_debug_allocator('r');
    char *p = a.malloc(a.ctx, 1);
    p[1] = 0;
    a.free(a.ctx, p);
}

static void big_never_freed(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('m');
    unsigned char *p = a.malloc(a.ctx, 1 << 20);
    memset(p, 0, 1 << 20);
    p[(1 << 20) + 7] = 0;
    ms_debug_at_exit();
}

Test(debug_diag, never_freed_overflow_of_a_big_block_at_exit)
{
    expect_fatal(0, big_never_freed, NULL,
                 "Debug memory block at address p=0xADDR: API 'm'\n"
                 "    1048576 bytes originally requested\n" OK_LEAD
                 "    The 8 pad bytes at tail=0xADDR are not all FORBIDDENBYTE (0xfd):\n"
                 "        at tail+0: 0xfd\n"
                 "        at tail+1: 0xfd\n"
                 "        at tail+2: 0xfd\n"
                 "        at tail+3: 0xfd\n"
                 "        at tail+4: 0xfd\n"
                 "        at tail+5: 0xfd\n"
                 "        at tail+6: 0xfd\n"
                 "        at tail+7: 0x00 *** OUCH\n" MADE
                 "    Data at p: 00 00 00 00 00 00 00 00 ... 00 00 00 00 00 00 00 00\n\n"
                 TRACE_OFF
                 "Fatal memshim error: memshim_debug_at_exit: bad trailing pad byte\n");
}
