/* SPDX-License-Identifier: MIT */
/*
 * Address classification for invalid-free reports (see addrkind.h).  Error path only.
 */
#include "addrkind.h"

#include <link.h>
#include <pthread.h>
#include <string.h>

#include "guard.h"

static int on_stack(uintptr_t a)
{
    pthread_attr_t attr;
    void *lo;
    size_t size;
    int found = 0;
    /* glibc reads /proc/self/maps (with malloc) for the main thread: keep that out of the
     * layers through the guard. */
    ms_guard_enter();
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &lo, &size) == 0)
            found = a >= (uintptr_t)lo && a - (uintptr_t)lo < size;
        pthread_attr_destroy(&attr);
    }
    ms_guard_leave();
    return found;
}

struct image_query {
    uintptr_t addr;
    struct ms_addrinfo *out;
    int hit;
};

static int image_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct image_query *q = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (q->addr >= lo && q->addr - lo < ph->p_memsz) {
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
    }
    return 0;
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
