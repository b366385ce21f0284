/* SPDX-License-Identifier: MIT */
/* Helpers for tests/hooks (see helpers.h). */
#include "helpers.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct fake_lower fake = { .fail_after = -1 };
struct ms_debug_config child_template;

static bool fail_now(void)
{
    if (fake.fail_after < 0)
        return false;
    if (fake.fail_after == 0)
        return true;
    fake.fail_after--;
    return false;
}

/* glibc's usable size of a request, made exact so that tests see the same sizes under
 * glibc and under sanitizers (whose usable size is the size asked). */
static size_t glibc_size(size_t n)
{
    return n > SIZE_MAX - 32 ? n : (n + 8 + 15) / 16 * 16 - 8 + (n + 8 < 32 ? 16 : 0);
}

static void *f_malloc(void *ctx, size_t n)
{
    (void)ctx;
    if (fail_now())
        return NULL;
    __atomic_fetch_add(&fake.mallocs, 1, __ATOMIC_RELAXED);
    return malloc(glibc_size(n));
}

static void *f_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    if (fail_now())
        return NULL;
    __atomic_fetch_add(&fake.mallocs, 1, __ATOMIC_RELAXED);
    return a == 1 ? calloc(1, glibc_size(b)) : calloc(a, b);
}

static void *f_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (fail_now())
        return NULL;
    __atomic_fetch_add(&fake.reallocs, 1, __ATOMIC_RELAXED);
    n = glibc_size(n);
    if (fake.realloc_moves) {
        void *q = malloc(n);
        if (q != NULL)
            memcpy(q, p, n < malloc_usable_size(p) ? n : malloc_usable_size(p));
        return q;
    }
    return realloc(p, n);
}

static void f_free(void *ctx, void *p)
{
    (void)ctx;
    if (p != NULL)
        __atomic_fetch_add(&fake.frees, 1, __ATOMIC_RELAXED);
    free(p);
}

static void *f_memalign(void *ctx, size_t al, size_t n)
{
    (void)ctx;
    if (fail_now())
        return NULL;
    __atomic_fetch_add(&fake.memaligns, 1, __ATOMIC_RELAXED);
    void *p;
    return posix_memalign(&p, al, n) == 0 ? p : NULL;
}

static size_t f_usable(void *ctx, void *p)
{
    (void)ctx;
    return malloc_usable_size(p);
}

struct ms_allocator fake_allocator(void)
{
    return (struct ms_allocator){
        .ctx = &fake, .malloc = f_malloc, .calloc = f_calloc, .realloc = f_realloc,
        .free = f_free, .memalign = f_memalign, .usable_size = f_usable,
    };
}

void debug_setup_fd(size_t quarantine, int fd)
{
    memset(&fake, 0, sizeof fake);
    fake.fail_after = -1;
    struct ms_debug_config cfg = {
        .lower = fake_allocator(),
        .quarantine_bytes = quarantine,
        .fd = fd,
    };
    cr_assert_eq(ms_debug_init(&cfg), 0);
}

void debug_setup(size_t quarantine)
{
    debug_setup_fd(quarantine, 2);
}

struct ms_allocator api(char id)
{
    struct ms_allocator a = ms_debug_allocator(id);
    cr_assert_not_null(a.malloc);
    return a;
}

int run_child(size_t quarantine, void (*fn)(void *), void *arg, char *out, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGABRT, SIG_DFL);
        close(fds[0]);
        memset(&fake, 0, sizeof fake);
        fake.fail_after = -1;
        struct ms_debug_config cfg = child_template;
        cfg.lower = fake_allocator();
        cfg.quarantine_bytes = quarantine;
        cfg.fd = fds[1];
        if (ms_debug_init(&cfg) != 0)
            _exit(3);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], out + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    out[len] = '\0';
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

void mask(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '0' && r[1] == 'x') {
            size_t n = 0;
            while (isxdigit((unsigned char)r[2 + n]))
                n++;
            if (n >= 5) {
                memcpy(w, "0xADDR", 6);
                w += 6;
                r += 2 + n;
                continue;
            }
        }
        if (r[0] == '#' && isdigit((unsigned char)r[1])) {
            *w++ = '#';
            *w++ = 'N';
            r++;
            while (isdigit((unsigned char)*r))
                r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
}

void expect_fatal(size_t quarantine, void (*fn)(void *), void *arg, const char *want)
{
    static char text[16384];
    int sig = run_child(quarantine, fn, arg, text, sizeof text);
    mask(text);
    cr_assert_eq(sig, SIGABRT, "child ended with signal %d, text:\n%s", sig, text);
    cr_assert_str_eq(text, want, "got:\n%s\nwant:\n%s", text, want);
}
