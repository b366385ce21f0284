/* SPDX-License-Identifier: MIT */
/* Built with `pkg-config --cflags --libs memshim` against the installed files: memshim is
 * linked, not preloaded, and still replaces malloc. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memshim.h>

int main(void)
{
    const char *name = memshim_allocator_name();
    char *p = malloc(20);
    /* pymalloc's class for 20 bytes holds 32: glibc's usable size would be 24. */
    size_t usable = malloc_usable_size(p);
    memshim_raw_free(p);
    void *q = memshim_mem_malloc(0);
    int ok = name && strcmp(name, "pymalloc") == 0 && usable == 32 && q != NULL;
    memshim_mem_free(q);
    printf("name=%s usable=%zu: %s\n", name ? name : "NULL", usable, ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
