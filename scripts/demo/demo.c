/* SPDX-License-Identifier: MIT */
/*
 * The program `memshim` runs when it is given none (scripts/memshim, no PROGRAM): a small
 * word-count index with known allocation sites, one forgotten buffer (a leak), and, when
 * run as `demo overflow`, a one-byte heap overflow for the debug hooks to catch.
 * Built by the launcher at run time with -g -O0 so that traces show file and line.
 * Not library code: it uses stdio and malloc freely; it is the program under test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *word;
    int count;
    struct entry *next;
};

#define NBUCKETS 4096

/* The index lives in a global, so at exit it is still reachable: not a leak. */
static struct entry **index_table;

/* Site 1: one node per distinct word (small blocks, served by pymalloc). */
static struct entry *new_entry(const char *word)
{
    struct entry *e = malloc(sizeof *e);
    if (!e)
        exit(1);
    e->word = strdup(word); /* site 2: the words themselves */
    e->count = 0;
    e->next = NULL;
    return e;
}

static unsigned hash(const char *s)
{
    unsigned h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % NBUCKETS;
}

static void count_word(struct entry **table, const char *word)
{
    struct entry **slot = &table[hash(word)];
    while (*slot && strcmp((*slot)->word, word) != 0)
        slot = &(*slot)->next;
    if (!*slot)
        *slot = new_entry(word);
    (*slot)->count++;
}

/* Site 3: a scratch buffer per line that the author forgot to free: the leak. */
static char *format_line(int i)
{
    char *line = malloc(64);
    if (!line)
        exit(1);
    snprintf(line, 64, "word%d other%d word%d", i % 3000, i % 7, i % 5000);
    return line;
}

static void index_text(struct entry **table, int lines)
{
    for (int i = 0; i < lines; i++) {
        char *line = format_line(i);
        char *save = NULL;
        for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save))
            count_word(table, w);
        if (i % 100 != 0) /* the bug: every 100th line is never freed */
            free(line);
    }
}

/* A 10-byte buffer receives 11 bytes: the 11th lands on the debug hooks' trailing pad. */
static char *make_label(const char *text)
{
    char *label = malloc(10);
    if (!label)
        exit(1);
    strcpy(label, text); /* "overflow!!" is 10 characters + the terminating NUL */
    return label;
}

static int overflow(void)
{
    char *label = make_label("overflow!!");
    printf("demo: wrote 11 bytes into a 10-byte block; freeing it...\n");
    fflush(stdout);
    free(label); /* the debug hooks check the pads here and stop the program */
    printf("demo: not reached under MEMSHIM_MALLOC=debug\n");
    return 0;
}

int main(int argc, char **argv)
{
    /* Line-buffered even into a pipe, so that our lines come before memshim's at exit. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "overflow") == 0)
        return overflow();

    /* Site 4: the hash table's buckets, one 32 KiB block from the C library. */
    index_table = calloc(NBUCKETS, sizeof *index_table);
    if (!index_table)
        return 1;
    index_text(index_table, 20000);

    int distinct = 0;
    for (int b = 0; b < NBUCKETS; b++)
        for (struct entry *e = index_table[b]; e; e = e->next)
            distinct++;
    printf("demo: indexed 20000 lines, %d distinct words; the index is still live at exit\n",
           distinct);
    return 0;
}
