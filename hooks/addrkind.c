/* SPDX-License-Identifier: MIT */
/*
 * Address classification for invalid-free reports (see addrkind.h).  Error path only.
 */
#include "addrkind.h"

#include <link.h>
#include <pthread.h>
#include <string.h>

#include "guard.h"

int ms_addrkind_own_stack(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    int ok = 0;
    /* glibc reads /proc/self/maps (with malloc) for the main thread: keep that out of the
     * layers through the guard. */
    ms_guard_enter();
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        ok = pthread_attr_getstack(&attr, &addr, &size) == 0;
        pthread_attr_destroy(&attr);
    }
    ms_guard_leave();
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return ok;
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
