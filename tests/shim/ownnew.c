/* SPDX-License-Identifier: MIT */
/*
 * Blocks crossing between memshim's operator new/delete and a library's own copies
 * (tests/shim/ownnew_lib.c), as between rust-lld and libLLVM: a correct program, which the
 * debug modes must let run.  Run under LD_PRELOAD only (memshim provides the operators).
 *
 * Usage: shim_ownnew LIBRARY cross|plain|closed
 *   cross   the library's blocks deleted here and the other way round; prints "done"
 *   plain   without the library loaded (libstdc++ is), malloc then delete: a mismatch
 *   closed  cross, then the library is unloaded, then malloc then delete: reported again
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *lib;

static void *sym(void *handle, const char *name)
{
    void *f = dlsym(handle, name);
    if (f == NULL) {
        fprintf(stderr, "shim_ownnew: %s: %s\n", name, dlerror());
        exit(2);
    }
    return f;
}

static void cross(const char *path)
{
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "shim_ownnew: %s\n", dlerror());
        exit(2);
    }
    char *(*make)(const char *) = sym(lib, "ownnew_make");
    char *(*make_array)(size_t) = sym(lib, "ownnew_make_array");
    void (*drop)(void *) = sym(lib, "ownnew_drop");
    void (*drop_array)(void *) = sym(lib, "ownnew_drop_array");
    /* memshim's operators: the lookup's first choice, as for any caller outside the library. */
    void *(*op_new)(size_t) = sym(RTLD_DEFAULT, "_Znwm");
    void *(*op_new_array)(size_t) = sym(RTLD_DEFAULT, "_Znam");
    void (*op_delete)(void *) = sym(RTLD_DEFAULT, "_ZdlPv");
    void (*op_delete_array)(void *) = sym(RTLD_DEFAULT, "_ZdaPv");

    for (int i = 0; i < 100; i++) {
        char *s = make("x86_64-unknown-linux-gnu");
        if (strcmp(s, "x86_64-unknown-linux-gnu") != 0)
            exit(3);
        op_delete(s);                  /* the library's new, memshim's delete */
        op_delete_array(make_array(40));
        char *t = op_new(40);          /* memshim's new, the library's delete */
        memset(t, 1, 40);
        drop(t);
        drop_array(op_new_array(24));
    }
}

static void mismatch(void)
{
    /* libstdc++ defines the operators too, but calls them through the lookup: its presence
     * must not silence the report. */
    if (dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL) == NULL) {
        fprintf(stderr, "shim_ownnew: %s\n", dlerror());
        exit(2);
    }
    void (*op_delete)(void *) = sym(RTLD_DEFAULT, "_ZdlPv");
    char *p = malloc(25);
    memset(p, 'x', 25);
    op_delete(p);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    if (strcmp(argv[2], "cross") == 0) {
        cross(argv[1]);
    } else if (strcmp(argv[2], "plain") == 0) {
        mismatch();
    } else if (strcmp(argv[2], "closed") == 0) {
        cross(argv[1]);
        dlclose(lib);
        mismatch();
    } else {
        return 2;
    }
    puts("done");
    return 0;
}
