/* SPDX-License-Identifier: MIT */
/*
 * A write that runs over a block's trailer into the header of the block behind it, then
 * a free of that second block: the debug layer must name the first block as the likely
 * culprit, and when the damaged header is the C library's (blocks it serves), report it
 * instead of handing glibc a chunk it would crash on.
 * Usage: runover SIZE PAST [freed] - blocks of SIZE bytes; the write covers the first
 * block and PAST bytes behind it (its trailer is 16), or everything up to the second
 * block's data when PAST is "all".  With "freed" the second block is freed first, and
 * frees of other blocks then push it out of a small quarantine (MEMSHIM_QUARANTINE).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) char *make_culprit(size_t n)
{
    return malloc(n);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 40;
    const char *past = argc > 2 ? argv[2] : "all";
    /* Two blocks next to each other: the closest pair among a few made in a row (the
     * tracer's first unwind may allocate between the first two). */
    char *b[8];
    for (int i = 0; i < 8; i++)
        if ((b[i] = make_culprit(n)) == NULL)
            return 2;
    char *front = NULL, *behind = NULL;
    for (int i = 0; i + 1 < 8; i++)
        if (b[i + 1] > b[i] && (front == NULL || b[i + 1] - b[i] < behind - front)) {
            front = b[i];
            behind = b[i + 1];
        }
    if (front == NULL)
        return 77;
    size_t len = strcmp(past, "all") == 0 ? (size_t)(behind - front) : n + strtoul(past, NULL, 10);
    if (len > (size_t)(behind - front))
        return 77;
    bool freed = argc > 3 && strcmp(argv[3], "freed") == 0;
    if (freed)
        free(behind);
    memset(front, 'A', len);
    if (freed)
        for (int i = 0; i < 1000; i++)
            free(malloc(100));
    else
        free(behind);
    puts("not reported");
    return 0;
}
