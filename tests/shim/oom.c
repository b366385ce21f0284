/* SPDX-License-Identifier: MIT */
/*
 * Out of memory is survived: under an address-space limit (RLIMIT_AS, as `ulimit -v`),
 * every entry point eventually returns NULL with ENOMEM (posix_memalign: the ENOMEM code),
 * a failed realloc leaves its block intact, nothing crashes or aborts, and once memory is
 * freed, allocation works again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check.h"

enum { MAX_BLOCKS = 1 << 22 };
static void *blocks[MAX_BLOCKS];

static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * 4096;
}

/* Fill memory with blocks of the given size until an allocation fails; returns the count. */
static size_t exhaust(size_t size, int how)
{
    size_t n = 0;
    for (;;) {
        void *p = NULL;
        errno = 0;
        switch (how) {
        case 0: p = malloc(size); break;
        case 1: p = calloc(1, size); break;
        case 2: {
            int rc = posix_memalign(&p, 64, size);
            if (rc != 0) {
                CHECK(rc == ENOMEM, "posix_memalign failure code %d", rc);
                p = NULL;
                errno = ENOMEM;
            }
            break;
        }
        case 3: p = aligned_alloc(4096, size); break;
        }
        if (p == NULL) {
            CHECK(errno == ENOMEM, "size %zu how %d: NULL with errno %d", size, how, errno);
            return n;
        }
        if (n == MAX_BLOCKS) {
            free(p);
            return n;
        }
        memset(p, 0x5a, size < 64 ? size : 64);
        blocks[n++] = p;
    }
}

static void release(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
}

int main(void)
{
    struct rlimit rl;
    size_t budget = (size_t)192 << 20;
    rl.rlim_cur = rl.rlim_max = vm_size() + budget;
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");

    static const size_t sizes[] = {16, 200, 512, 4000, 100000, 3 << 20};
    for (int how = 0; how < 4; how++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = exhaust(sizes[i], how);
            CHECK(n > 0, "nothing could be allocated at size %zu", sizes[i]);
            /* A realloc that cannot grow leaves the block as it was. */
            if (n > 0) {
                errno = 0;
                void *q = realloc(blocks[0], (size_t)1 << 30);
                CHECK(q == NULL && errno == ENOMEM, "realloc at OOM: %p errno %d", q, errno);
                CHECK(((unsigned char *)blocks[0])[0] == 0x5a, "block intact after failed realloc");
            }
            release(n);
            /* Recovered: a big allocation works again once the memory was given back.  (Not
             * the whole budget: the debug modes keep their block table, which does not
             * shrink, and mimalloc keeps the address space of its segments reserved.) */
            void *big = malloc((size_t)4 << 20);
            CHECK(big != NULL, "no recovery after freeing (size %zu, how %d)", sizes[i], how);
            free(big);
        }
    }
    return check_summary();
}
