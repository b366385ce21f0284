/* Bug: uninitialised read: an int in a malloc'd array is read before anything was
 * written to it, and the value decides a branch. */
/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    volatile size_t i = 1;
    int *volatile p = malloc(4 * sizeof(int)); /* alloc */
    p[0] = 0;
    if (p[i] > 0)
        puts("positive");
    else
        puts("not positive");
    free(p);
    return 0;
}
