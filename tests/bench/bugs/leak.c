/* Bug: a leak: a 100-byte block is allocated in a helper and the only pointer to it is
 * dropped; the program exits normally with the block unreachable. */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

void *volatile sink;

__attribute__((noinline)) static void lose(void)
{
    sink = malloc(100); /* alloc */
    memset(sink, 1, 100);
    sink = NULL;
}

__attribute__((noinline)) static void scrub(void)
{
    volatile char junk[256];
    memset((char *)junk, 0, sizeof junk);
}

int main(void)
{
    lose();
    scrub();
    return 0;
}
