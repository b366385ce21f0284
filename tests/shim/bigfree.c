/* SPDX-License-Identifier: MIT */
/*
 * A big buffer the program barely touched is freed without being touched: a program that
 * callocs 256 MiB for a sparse table, writes one byte and frees it must not have its peak
 * RSS grow by the buffer.  glibc gives such a block its own mapping and unmaps it on free;
 * the debug modes fill freed blocks with 0xDD, which for a block that skips the quarantine
 * (bigger than its budget) and goes straight back to the OS nobody could read, and which
 * would fault in every page.
 */
#include <stdlib.h>
#include <sys/resource.h>

#include "check.h"

static long peak_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

int main(void)
{
    size_t size = (size_t)256 << 20;
    long before = peak_mib();
    char *p = calloc(1, size);
    CHECK(p != NULL, "calloc of %zu bytes", size);
    if (p != NULL) {
        p[0] = 1;
        p[size / 2] = 2;
        free(p);
    }
    long grew = peak_mib() - before;
    CHECK(grew <= 64, "peak RSS grew by %ld MiB for a buffer with two bytes written", grew);
    return check_summary();
}
