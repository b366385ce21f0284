/* SPDX-License-Identifier: MIT */
/*
 * pthread_getattr_np as a thread's first call, as every Rust program's threads (and its
 * main thread) make it: glibc allocates inside it while holding the thread's lock, so a
 * malloc hook that asked pthread_getattr_np itself (memshim's stack memo, when tracing)
 * waited for ever.  An alarm turns such a hang into a failure.  Prints "done".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *stack_of_self(void *arg)
{
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0
        || pthread_attr_getstack(&attr, &addr, &size) != 0 || size == 0) {
        fputs("getattr: no stack\n", stderr);
        exit(1);
    }
    pthread_attr_destroy(&attr);
    free(malloc(100));
    return arg;
}

int main(void)
{
    alarm(20);
    stack_of_self(NULL);
    for (int i = 0; i < 8; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, stack_of_self, NULL) != 0 || pthread_join(t, NULL) != 0)
            return 1;
    }
    puts("done");
    return 0;
}
