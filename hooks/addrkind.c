/* SPDX-License-Identifier: MIT */
/*
 * Address classification for invalid-free reports (see addrkind.h).  Error path only.
 */
#include "addrkind.h"

#include <link.h>
#include <string.h>
#include <sys/resource.h>

#include "guard.h"
#include "procfile.h"

int ms_addrkind_own_stack(uintptr_t *lo, uintptr_t *hi)
{
    /* Not pthread_getattr_np: it allocates while it holds the thread's lock, and the stack
     * memo asks from inside malloc, maybe a malloc of pthread_getattr_np's own. */
    struct ms_procfile_mapping m;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (!ms_procfile_mapping_of(sp, &m))
        return 0;
    *lo = m.lo;
    *hi = m.hi;
    /* The main thread's stack grows down to its limit, as glibc reports it. */
    struct rlimit rl;
    if (m.grows_down && getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && rl.rlim_cur < m.hi) {
        uintptr_t floor = m.hi - (uintptr_t)rl.rlim_cur;
        if (floor < m.lo)
            *lo = floor > m.below_hi ? floor : m.below_hi;
    }
    return 1;
}

static int on_stack(uintptr_t a)
{
    uintptr_t lo, hi;
    return ms_addrkind_own_stack(&lo, &hi) && a >= lo && a < hi;
}

struct image_query {
    uintptr_t addr;
    struct ms_addrinfo *out;
    int hit;
};

int ms_addrkind_module_holds(const struct dl_phdr_info *info, uintptr_t a)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && a - (info->dlpi_addr + ph->p_vaddr) < ph->p_memsz)
            return 1;
    }
    return 0;
}

static int image_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct image_query *q = arg;
    if (!ms_addrkind_module_holds(info, q->addr))
        return 0;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    size_t n = strlen(name);
    if (n >= sizeof q->out->module)
        n = sizeof q->out->module - 1;
    memcpy(q->out->module, name, n);
    q->out->module[n] = '\0';
    q->out->offset = q->addr - info->dlpi_addr;
    q->hit = 1;
    return 1;
}

void ms_addrkind_classify(const void *p, struct ms_addrinfo *out)
{
    uintptr_t a = (uintptr_t)p;
    out->module[0] = '\0';
    out->offset = 0;
    if (on_stack(a)) {
        out->kind = MS_ADDR_STACK;
        return;
    }
    struct image_query q = { .addr = a, .out = out, .hit = 0 };
    ms_guard_enter();
    dl_iterate_phdr(image_cb, &q);
    ms_guard_leave();
    out->kind = q.hit ? MS_ADDR_IMAGE : MS_ADDR_OTHER;
}
