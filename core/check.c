/* SPDX-License-Identifier: MIT */
/* The failure path of MS_ASSERT and the expensive checks (see check.h).  Not hot. */
#include "check.h"

#include <stdlib.h>

#include "fmt.h"

_Noreturn void ms_check_fail(const char *expr, const char *file, int line)
{
    struct ms_out o;
    ms_out_init(&o, 2);
    ms_out_str(&o, "memshim: internal check failed: ");
    ms_out_str(&o, expr);
    ms_out_str(&o, " (");
    ms_out_str(&o, file);
    ms_out_char(&o, ':');
    ms_out_sdec(&o, line, 0);
    ms_out_str(&o, ")\n");
    ms_out_flush(&o);
    abort();
}
