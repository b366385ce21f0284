/* SPDX-License-Identifier: MIT */
/* dlopen/dlclose of a library that allocates, many times; blocks it handed out outlive it
 * and are freed by the program after dlclose. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: dlopen PATH-TO-DSO");
    if (argc != 2)
        return check_summary();
    for (int round = 0; round < 50; round++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        CHECK(h != NULL, "dlopen: %s", dlerror());
        if (!h)
            break;
        char *(*make)(size_t) = (char *(*)(size_t))dlsym(h, "dso_make");
        CHECK(make != NULL, "dlsym");
        char *a = make(10), *b = make(3000);
        CHECK(dlclose(h) == 0, "dlclose");
        CHECK(strlen(a) == 10 && strlen(b) == 3000, "blocks from an unloaded library");
        free(a);
        free(b);
    }
    return check_summary();
}
