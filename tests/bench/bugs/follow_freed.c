/* Bug: use after free, the way it usually crashes: a list node is freed, then its next
 * pointer is read from the freed node and followed. */
/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *next;
    long value;
};

int main(void)
{
    struct node *second = malloc(sizeof *second);
    struct node *volatile first = malloc(sizeof *first); /* alloc */
    first->next = second;
    second->value = 7;
    free(first);
    printf("%ld\n", first->next->value);
    free(second);
    return 0;
}
