/* SPDX-License-Identifier: MIT */
/*
 * Loaded objects that keep C++'s operator new and delete to themselves (see ownnew.c).
 */
#ifndef MS_OWNNEW_H
#define MS_OWNNEW_H

#include <stdbool.h>

/* Does a loaded object other than memshim bind its calls to operator new or delete to its
 * own copies (which call malloc and free)?  Then blocks of the C++ families and malloc's
 * cross between the two sides in a correct program.  Not for hot paths: it may walk the
 * relocation tables (cached until a library is loaded or unloaded).  Never allocates. */
bool ms_ownnew_loaded(void);

#endif
