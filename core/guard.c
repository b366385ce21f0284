/* SPDX-License-Identifier: MIT */
/* The one definition of the per-thread guard declared in guard.h. */
#include "guard.h"

_Thread_local unsigned ms_guard_depth;
