/* SPDX-License-Identifier: MIT */
/* Writes one byte past a 10-byte block (tail+0), then frees it: the debug hooks' dump. */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) char *make_buffer(void)
{
    char *p = malloc(10);
    memset(p, 0xcd, 10);
    return p;
}

int main(void)
{
    char *p = make_buffer();
    p[10] = 'x';
    free(p);
    return 0;
}
