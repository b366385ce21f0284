/* SPDX-License-Identifier: MIT */
/*
 * A library with operator new and delete of its own, bound inside it by -Bsymbolic, as
 * libLLVM's are (tests/shim/ownnew.c loads it).  Its C++ blocks come from malloc, and it
 * frees what it is given to delete with free.
 */
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) void *_Znwm(size_t n) { return malloc(n ? n : 1); }
__attribute__((visibility("default"))) void *_Znam(size_t n) { return malloc(n ? n : 1); }
__attribute__((visibility("default"))) void _ZdlPv(void *p) { free(p); }
__attribute__((visibility("default"))) void _ZdaPv(void *p) { free(p); }

/* A string made with the library's new, as std::string's storage would be. */
__attribute__((visibility("default"))) char *ownnew_make(const char *s)
{
    char *p = _Znwm(strlen(s) + 1);
    return strcpy(p, s);
}

__attribute__((visibility("default"))) char *ownnew_make_array(size_t n)
{
    return memset(_Znam(n), 'a', n);
}

/* Objects the library is handed to delete, with its own delete. */
__attribute__((visibility("default"))) void ownnew_drop(void *p) { _ZdlPv(p); }
__attribute__((visibility("default"))) void ownnew_drop_array(void *p) { _ZdaPv(p); }
