/* SPDX-License-Identifier: MIT */
/*
 * The stress driver, run under LD_PRELOAD in every mode (suite 'stress').  Without
 * arguments it re-runs itself ("work") with MEMSHIM_MALLOCSTATS=1 and its stderr on a pipe,
 * then checks the stats reports the child printed: in every report the "Total" line equals
 * "<arenas> arenas * <size> bytes/arena" and the arena count agrees, and the report at exit
 * shows no thread cache but the main thread's (threads that exited gave theirs back).
 *
 * The work: PHASES identical phases.  In each, WORKERS threads trade blocks through a
 * shared table (atomic exchange: whoever takes a block out checks it, then frees it or
 * reallocs it across the 512-byte threshold and puts it back), a spawner keeps creating
 * short-lived threads that allocate, leave blocks in the table for others to free, and
 * exit; in phase 2 a fork() from the busy parent leaves a child that allocates and checks.
 * Every block carries its id and size in its first bytes and a pattern after them, checked
 * by whichever thread handles it next.  RSS after each phase must stay within a bound of
 * the RSS after the warm-up phases (no unbounded growth of cached or remote-freed blocks).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PHASES 7
#define WARMUP 3          /* phases before the RSS baseline */
#define WORKERS 8
#define SLOTS 8192
#define OPS_PER_WORKER 60000
#define SPAWNED_PER_PHASE 64

struct hdr {
    uint32_t id;
    uint32_t size;
};

static _Atomic(struct hdr *) table[SLOTS];
static atomic_uint next_id;
static atomic_int failures;
static atomic_int stop_spawning;

static void fail(const char *what, const struct hdr *h)
{
    atomic_fetch_add(&failures, 1);
    fprintf(stderr, "stress: %s (block %p)\n", what, (const void *)h);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mostly small, a third across or above the threshold. */
static size_t pick_size(uint64_t *s)
{
    uint64_t r = rnd(s);
    switch (r % 6) {
    case 0:
    case 1:
    case 2:
        return 8 + (r >> 8) % 120;
    case 3:
        return 8 + (r >> 8) % 512;
    case 4:
        return 400 + (r >> 8) % 300;
    default:
        return 8 + (r >> 8) % 4096;
    }
}

static void fill_from(struct hdr *h, size_t from)
{
    unsigned char *p = (unsigned char *)h;
    for (size_t i = from < sizeof *h ? sizeof *h : from; i < h->size; i++)
        p[i] = (unsigned char)(h->id + i);
}

static struct hdr *make(size_t size)
{
    struct hdr *h = malloc(size);
    if (h == NULL) {
        fail("malloc failed", NULL);
        return NULL;
    }
    h->id = atomic_fetch_add(&next_id, 1);
    h->size = (uint32_t)size;
    fill_from(h, 0);
    return h;
}

static int intact(const struct hdr *h)
{
    const unsigned char *p = (const unsigned char *)h;
    for (size_t i = sizeof *h; i < h->size; i++)
        if (p[i] != (unsigned char)(h->id + i))
            return 0;
    return 1;
}

/* Checks the block taken out of the table, then frees it or reallocs it back in. */
static void handle(struct hdr *h, uint64_t *s, unsigned slot)
{
    if (h == NULL)
        return;
    if (!intact(h)) {
        fail("contents changed", h);
        return;
    }
    if (rnd(s) % 3 != 0) {
        free(h);
        return;
    }
    size_t n = pick_size(s);
    uint32_t old = h->size;
    struct hdr *q = realloc(h, n);
    if (q == NULL) {
        fail("realloc failed", h);
        return;
    }
    q->size = old;            /* the prefix that must have survived */
    if (n < old)
        q->size = (uint32_t)n;
    if (!intact(q))
        fail("realloc lost contents", q);
    q->size = (uint32_t)n;
    fill_from(q, 0);
    handle(atomic_exchange(&table[slot], q), s, slot);
}

static void *worker(void *arg)
{
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
    for (int i = 0; i < OPS_PER_WORKER; i++) {
        unsigned slot = (unsigned)(rnd(&s) % SLOTS);
        struct hdr *h = make(pick_size(&s));
        if (h != NULL)
            handle(atomic_exchange(&table[slot], h), &s, slot);
    }
    return NULL;
}

/* A short life: private blocks (freed here), and some left in the table for others. */
static void *ephemeral(void *arg)
{
    uint64_t s = (uintptr_t)arg * 0x2545f4914f6cdd1du + 7;
    struct hdr *mine[200];
    for (int i = 0; i < 200; i++)
        mine[i] = make(pick_size(&s));
    for (int i = 0; i < 200; i++) {
        if (i % 4 == 0) {
            unsigned slot = (unsigned)(rnd(&s) % SLOTS);
            handle(atomic_exchange(&table[slot], mine[i]), &s, slot);
        } else if (mine[i] != NULL) {
            if (!intact(mine[i]))
                fail("private block changed", mine[i]);
            free(mine[i]);
        }
    }
    return NULL;
}

static void *spawner(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    for (int i = 0; i < SPAWNED_PER_PHASE || !atomic_load(&stop_spawning); i++) {
        pthread_t t[2];
        for (int j = 0; j < 2; j++)
            if (pthread_create(&t[j], NULL, ephemeral, (void *)(k++)) != 0)
                fail("pthread_create failed", NULL);
        for (int j = 0; j < 2; j++)
            pthread_join(t[j], NULL);
    }
    return NULL;
}

/* The child of a fork from the busy parent: it must be able to allocate, and its copy of
 * the table must be intact. */
static void forked_child(void)
{
    uint64_t s = 99;
    int bad = 0;
    FILE *null = freopen("/dev/null", "w", stderr);   /* keep its stats off the pipe */
    (void)null;
    struct hdr *mine[1000];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 1000; i++)
            mine[i] = make(pick_size(&s));
        for (int i = 0; i < 1000; i++) {
            bad |= mine[i] == NULL || !intact(mine[i]);
            free(mine[i]);
        }
    }
    _exit(bad ? 3 : 0);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

static int work(void)
{
    long base = 0;
    for (int phase = 0; phase < PHASES; phase++) {
        pthread_t w[WORKERS], sp;
        atomic_store(&stop_spawning, 0);
        for (uintptr_t i = 0; i < WORKERS; i++)
            pthread_create(&w[i], NULL, worker, (void *)(phase * 100 + i + 1));
        pthread_create(&sp, NULL, spawner, (void *)(uintptr_t)(phase * 100000 + 1));
        if (phase == 2) {
            usleep(20000);
            pid_t pid = fork();
            if (pid == 0)
                forked_child();
            int st = 0;
            if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fail("forked child failed", NULL);
        }
        for (int i = 0; i < WORKERS; i++)
            pthread_join(w[i], NULL);
        atomic_store(&stop_spawning, 1);
        pthread_join(sp, NULL);
        long rss = rss_kib();
        printf("phase %d: RSS %ld KiB\n", phase, rss);
        if (phase == WARMUP - 1)
            base = rss;
        /* Steady state: a phase may not keep more than half again the warm RSS plus
         * 16 MiB (one debug quarantine's worth); growth per phase would exceed it. */
        if (phase >= WARMUP && rss > base + base / 2 + 16384) {
            fprintf(stderr, "stress: RSS grew from %ld KiB to %ld KiB in phase %d\n", base,
                    rss, phase);
            atomic_fetch_add(&failures, 1);
        }
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        struct hdr *h = atomic_exchange(&table[i], NULL);
        if (h != NULL && !intact(h))
            fail("contents changed (final)", h);
        free(h);
    }
    printf("%d failures\n", atomic_load(&failures));
    return atomic_load(&failures) ? 1 : 0;
}

/* ---- the checker: the stats reports of a "work" run ---------------------------------- */

static size_t value_after(const char *from, const char *end, const char *label, int *found)
{
    const char *s = memmem(from, (size_t)(end - from), label, strlen(label));
    *found = s != NULL;
    if (s == NULL)
        return 0;
    s = memchr(s, '=', (size_t)(end - s));
    size_t v = 0;
    for (s = s ? s + 1 : end; s < end && *s != '\n'; s++)
        if (*s >= '0' && *s <= '9')
            v = v * 10 + (size_t)(*s - '0');
    return v;
}

static int check_report(const char *r, const char *end, int last)
{
    int ok = 1, f1, f2, f3;
    size_t arenas = value_after(r, end, "# arenas allocated current", &f1);
    const char *lost = memmem(r, (size_t)(end - r), "# bytes lost to arena alignment",
                              strlen("# bytes lost to arena alignment"));
    size_t total = lost ? value_after(lost, end, "Total", &f2) : (f2 = 0);
    /* "<n> arenas * <size> bytes/arena = <bytes>" */
    const char *l = memmem(r, (size_t)(end - r), " bytes/arena", 12);
    while (l != NULL && l > r && l[-1] != '\n')
        l--;
    unsigned long long n = 0, size = 0;
    f3 = l != NULL && sscanf(l, "%llu arenas * %llu bytes/arena", &n, &size) == 2;
    size_t bytes = l ? value_after(l, end, "bytes/arena", &f3) : 0;
    if (!f1 || !f2 || !f3 || n != arenas || bytes != n * size || total != bytes) {
        fprintf(stderr, "stress: bad stats report: %zu arenas, %llu x %llu = %zu, Total %zu\n",
                arenas, n, size, bytes, total);
        ok = 0;
    }
    if (last) {
        size_t caches = value_after(r, end, "# threads with a cache", &f1);
        if (!f1 || caches > 1) {
            fprintf(stderr, "stress: %zu thread caches at exit (threads that ended keep "
                    "theirs?)\n", caches);
            ok = 0;
        }
    }
    return ok;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "work") == 0)
        return work();

    int pfd[2];
    if (pipe(pfd) != 0)
        return 2;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        setenv("MEMSHIM_MALLOCSTATS", "1", 1);
        execl("/proc/self/exe", argv[0], "work", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    ssize_t k;
    while (text != NULL && (k = read(pfd[0], text + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (cap - len < 4096)
            text = realloc(text, cap *= 2);
    }
    if (text == NULL)
        return 2;
    text[len] = '\0';
    int st = 0;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok)
        fprintf(stderr, "stress: the work run failed (status 0x%x)\n", st);

    const char *mode = getenv("MEMSHIM_MALLOC");
    int want_stats = getenv("LD_PRELOAD") != NULL &&
                     !(mode != NULL && strncmp(mode, "malloc", 6) == 0);
    int reports = 0;
    const char *mark = "Small block threshold";
    for (char *r = strstr(text, mark); r != NULL; reports++) {
        char *next = strstr(r + 1, mark);
        ok &= check_report(r, next ? next : text + len, next == NULL);
        r = next;
    }
    /* Anything else on stderr is a complaint of the work run (or of memshim). */
    for (char *line = text; *line; ) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, "stress:", 7) == 0) {
            fprintf(stderr, "%.*s\n", (int)(nl ? nl - line : (long)strlen(line)), line);
            ok = 0;
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    if (want_stats && reports == 0) {
        fprintf(stderr, "stress: no stats report with MEMSHIM_MALLOCSTATS=1\n");
        ok = 0;
    }
    printf("%d stats reports checked\n", reports);
    free(text);
    return ok ? 0 : 1;
}
