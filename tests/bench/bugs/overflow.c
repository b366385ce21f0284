/* Bug: one-byte heap overflow: writes p[10] of a 10-byte block, then frees it.
 * The write is past the end; the corruption can only be noticed at free (or at once). */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

int main(void)
{
    volatile size_t n = 10;
    char *volatile p = malloc(n); /* alloc */
    p[n] = 'x';
    free(p);
    return 0;
}
