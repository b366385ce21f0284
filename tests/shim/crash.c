/* SPDX-License-Identifier: MIT */
/*
 * Programs that die of SIGSEGV, for the debug modes' crash report
 * (tests/shim/check_crash.sh).  Each crashes in a function of its own name:
 *   freed     - follows a pointer read from a freed block (DEADBYTE in a register);
 *   freed_kept - the same with the freed block's address still in a register (rbx; on
 *               x86-64 only): the report names the block and where it was freed;
 *   fresh     - follows a pointer read from a block nothing wrote (CLEANBYTE);
 *   past_end  - follows a pointer read just past a block's end (FORBIDDENBYTE);
 *   null      - reads through a null pointer, 8 bytes in;
 *   in_libc   - hands strlen a null pointer: the crash is inside the C library;
 *   in_libc_free - hands the C library's own free an address with nothing mapped in
 *               front of it: the crash is inside its allocator;
 *   overflow  - recurses until the stack is gone;
 *   overflow_thread - the same in a thread the program made;
 *   overflow_kept - the same with a freed block's address in rbx (x86-64): no block named;
 *   bus       - reads a mapped file past its end (SIGBUS);
 *   crash_together - 8 threads follow the same freed pointer at once;
 *   hang      - crashes after making dladdr (which the report calls) wait for ever: the
 *               report's deadline must end the process (this program exports its own
 *               dladdr, built with -rdynamic);
 *   handled   - installs its own SIGSEGV handler first, which must be the one that runs;
 *   sent      - raise(SIGSEGV);
 *   wait      - prints "ready" and waits for a signal from another process.
 * Built with -O0, so that the loaded pointer sits in a register at the faulting load.
 */
#define _GNU_SOURCE /* ftruncate, fileno, MAP_FAILED, barriers, Dl_info, RTLD_NEXT */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The bugs are the point. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Winfinite-recursion"

struct node {
    struct node *next;
    long value;
};

static __attribute__((noinline)) long freed(void)
{
    struct node *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    a->next = b;
    b->value = 7;
    free(a);
    return a->next->value;
}

static __attribute__((noinline)) struct node *make_node(void)
{
    return malloc(sizeof(struct node));
}

static __attribute__((noinline)) void drop_node(struct node *n)
{
    free(n);
}

static __attribute__((noinline)) long freed_kept(void)
{
    struct node *a = make_node();
    a->next = make_node();
    drop_node(a);
    long v = 0;
#if defined(__x86_64__)
    /* a->next->value with a held in rbx, as optimised code often leaves it. */
    __asm__ volatile("mov (%%rbx), %%rax\n\tmov 8(%%rax), %0" : "=r"(v) : "b"(a) : "rax", "memory");
#endif
    return v;
}

static __attribute__((noinline)) long fresh(void)
{
    struct node *a = malloc(sizeof *a);
    return a->next->value;
}

static __attribute__((noinline)) long past_end(void)
{
    struct node **table = malloc(2 * sizeof *table);
    table[0] = table[1] = NULL;
    return table[2]->value;
}

static __attribute__((noinline)) long null(void)
{
    struct node *volatile a = NULL;
    return a->value;
}

static __attribute__((noinline)) long in_libc(void)
{
    const char *volatile s = NULL;
    return (long)strlen(s);
}

extern void __libc_free(void *);

static __attribute__((noinline)) long in_libc_free(void)
{
    __libc_free((void *)(uintptr_t)0x1010);
    return 0;
}

static __attribute__((noinline)) long overflow(long n)
{
    volatile char frame[512];
    frame[0] = (char)n;
    return overflow(n + 1) + frame[0];
}

static __attribute__((noinline)) long bus(void)
{
    FILE *f = tmpfile();
    if (f == NULL || ftruncate(fileno(f), 4096) != 0)
        return 2;
    volatile char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fileno(f), 0);
    if (m == MAP_FAILED)
        return 2;
    return m[5000];
}

static struct node *volatile shared;
static pthread_barrier_t line_up;

static __attribute__((noinline)) long crash_together(void)
{
    return shared->next->value;
}

static void *together_thread(void *arg)
{
    pthread_barrier_wait(&line_up);
    return (void *)crash_together();
    (void)arg;
}

static __attribute__((noinline)) long together(void)
{
    enum { THREADS = 8 };
    pthread_t t[THREADS];
    shared = malloc(sizeof *shared);
    shared->next = malloc(sizeof *shared);
    free(shared);
    pthread_barrier_init(&line_up, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, together_thread, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}

/* The C library's dladdr, until hang() makes every later call wait for ever. */
static volatile int dladdr_hangs;

int dladdr(const void *addr, Dl_info *info)
{
    static int (*real)(const void *, Dl_info *);
    while (dladdr_hangs)
        pause();
    if (real == NULL)
        real = (int (*)(const void *, Dl_info *))dlsym(RTLD_NEXT, "dladdr");
    return real != NULL ? real(addr, info) : 0;
}

static __attribute__((noinline)) long hang(void)
{
    dladdr_hangs = 1;
    return null();
}

static void on_segv(int sig)
{
    (void)sig;
    static const char msg[] = "the program's own handler ran\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(3);
}

static __attribute__((noinline)) long handled(void)
{
    signal(SIGSEGV, on_segv);
    return null();
}

static long start_overflow(void)
{
    return overflow(0);
}

/* The same with a freed block's address in rbx all the way down (x86-64): a stack
 * overflow is no use after free, whatever a register holds. */
static void *kept_freed;

static __attribute__((noinline)) long overflow_kept(long n)
{
    volatile char frame[512];
    frame[0] = (char)n;
#if defined(__x86_64__)
    __asm__ volatile("" : : "b"(kept_freed));
#endif
    return overflow_kept(n + 1) + frame[0];
}

static long start_overflow_kept(void)
{
    struct node *a = make_node();
    drop_node(a);
    kept_freed = a;
    return overflow_kept(0);
}

/* The same in a thread of the program's: it gets its alternate stack at its first
 * allocation. */
static __attribute__((noinline)) long overflow_thread(long n)
{
    volatile char frame[512];
    frame[0] = (char)n;
    return overflow_thread(n + 1) + frame[0];
}

static void *overflow_thread_start(void *arg)
{
    free(malloc(16));
    return (void *)(intptr_t)overflow_thread((long)(intptr_t)arg);
}

static long start_overflow_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, overflow_thread_start, NULL) != 0)
        return 2;
    pthread_join(t, NULL);
    return 2;
}

static long sent(void)
{
    return raise(SIGSEGV);
}

static _Noreturn long wait_for_signal(void)
{
    puts("ready");
    fflush(stdout);
    for (;;)
        pause();
}

static const struct {
    const char *name;
    long (*run)(void);
} cases[] = {
    {"freed", freed},       {"freed_kept", freed_kept},     {"fresh", fresh},
    {"past_end", past_end}, {"null", null},                 {"in_libc", in_libc},
    {"in_libc_free", in_libc_free},                         {"overflow", start_overflow},
    {"overflow_thread", start_overflow_thread},             {"overflow_kept", start_overflow_kept},
    {"crash_together", together},                           {"hang", hang},
    {"bus", bus},           {"handled", handled},           {"sent", sent},
    {"wait", wait_for_signal},
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc > 1 && i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(argv[1], cases[i].name) == 0)
            return (int)cases[i].run();
    return 2;
}
