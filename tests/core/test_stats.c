/* SPDX-License-Identifier: MIT */
/* The stats report: CPython's exact layout for a known sequence of allocations. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "pymalloc.h"

static const char expected_report[] =
    "Small block threshold = 512, in 32 size classes.\n"
    "\n"
    "class   size   num pools   blocks in use  avail blocks\n"
    "-----   ----   ---------   -------------  ------------\n"
    "    0     16           1             128           893\n"
    "   31    512           1              16            15\n"
    "\n"
    "# arenas allocated total           =                    1\n"
    "# arenas reclaimed                 =                    0\n"
    "# arenas highwater mark            =                    1\n"
    "# arenas allocated current         =                    1\n"
    "1 arenas * 1048576 bytes/arena     =            1,048,576\n"
    "\n"
    "# bytes in allocated blocks        =               10,240\n"
    "# bytes in available blocks        =               21,968\n"
    "62 unused pools * 16384 bytes      =            1,015,808\n"
    "# bytes lost to pool headers       =                   96\n"
    "# bytes lost to quantization       =                  464\n"
    "# bytes lost to arena alignment    =                    0\n"
    "Total                              =            1,048,576\n"
    "\n"
    "arena map counts\n"
    "# arena map bot nodes              =                    1\n"
    "\n"
    "# bytes lost to arena map root     =              524,288\n"
    "# bytes lost to arena map bot      =              262,144\n"
    "Total                              =              786,432\n"
    "\n"
    "memshim thread caches (their blocks count as in use above)\n"
    "# threads with a cache             =                    1\n"
    "# blocks in thread caches          =                   39\n"
    "# bytes in thread caches           =                6,080\n"
    "# blocks in transfer lists         =                    0\n"
    "# bytes in transfer lists          =                    0\n"
    "# blocks in use by the program     =                  105\n"
    "# bytes in use by the program      =                4,160\n";

Test(stats, exact_report)
{
    core_setup(0, false);
    /* 100 16-byte blocks: the thread cache took two batches of 64 from the pool.
     * 10 512-byte blocks, 5 freed: one batch of 16 taken, 11 of them now cached. */
    for (int i = 0; i < 100; i++)
        cr_assert_not_null(ms_pymalloc_malloc(NULL, 16));
    void *big[10];
    for (int i = 0; i < 10; i++)
        cr_assert_not_null(big[i] = ms_pymalloc_malloc(NULL, 500));
    for (int i = 5; i < 10; i++)
        ms_pymalloc_free(NULL, big[i]);
    static char text[8192];
    stats_text(text, sizeof text);
    cr_assert_str_eq(text, expected_report);
}

Test(stats, misaligned_arena_and_flushed_cache)
{
    core_setup(0, true);
    void *b[40];
    for (int i = 0; i < 40; i++)
        b[i] = ms_pymalloc_malloc(NULL, 512);
    static char text[8192];
    stats_text(text, sizeof text);
    /* 3 batches of 16 = 48 blocks: one full pool of 31, 17 in the next. */
    cr_assert_not_null(strstr(text, "   31    512           2              48            14\n"), "%s", text);
    cr_assert_not_null(strstr(text, "61 unused pools * 16384 bytes      =              999,424\n"), "%s", text);
    cr_assert_not_null(strstr(text, "# bytes lost to quantization       =                  928\n"));
    cr_assert_not_null(strstr(text, "# bytes lost to arena alignment    =               16,384\n"));
    cr_assert_not_null(strstr(text, "Total                              =            1,048,576\n"));
    for (int i = 0; i < 40; i++)
        ms_pymalloc_free(NULL, b[i]);
    ms_pymalloc_flush_thread_cache();
    stats_text(text, sizeof text);
    /* The kept arena is all that is left; no class has a pool. */
    cr_assert_not_null(strstr(text, "-----   ----   ---------   -------------  ------------\n\n#"), "%s", text);
    cr_assert_not_null(strstr(text, "63 unused pools * 16384 bytes      =            1,032,192\n"));
    cr_assert_not_null(strstr(text, "# blocks in thread caches          =                    0\n"));
}

Test(stats, printed_before_every_new_arena)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    struct ms_pymalloc_config cfg = {
        .arena_size = 256 << 10,
        .lower = fake_lower_allocator(),
        .arenas = fake_arena_allocator(),
        .stats_fd = fileno(f),
    };
    cr_assert_eq(ms_pymalloc_init(&cfg), 0);
    /* 17 pools of 512-byte blocks need a second 16-pool arena. */
    for (int i = 0; i < 31 * 17; i++)
        cr_assert_not_null(ms_pymalloc_malloc(NULL, 512));
    cr_assert_eq(fake_arenas.nalloc, 2);
    static char text[16384];
    lseek(fileno(f), 0, SEEK_SET);
    ssize_t n = read(fileno(f), text, sizeof text - 1);
    cr_assert_gt(n, 0);
    text[n] = '\0';
    int reports = 0;
    for (char *s = text; (s = strstr(s, "Small block threshold")) != NULL; s++)
        reports++;
    cr_assert_eq(reports, 2, "one report before each arena:\n%s", text);
    cr_assert_not_null(strstr(text, "0 arenas * 262144 bytes/arena      =                    0\n"));
    cr_assert_not_null(strstr(text, "1 arenas * 262144 bytes/arena      =              262,144\n"));
}
