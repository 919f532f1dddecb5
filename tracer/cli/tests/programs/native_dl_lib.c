/* A library that native_threads_dlopen.c loads with dlopen after tracing started. Its constructor
 * allocates while the loader holds its lock, and lib_alloc allocates from inside it. */
#include <stdlib.h>

static void *at_load;

__attribute__((constructor)) static void on_load(void) { at_load = malloc(31337); }

__attribute__((noinline)) void *lib_alloc(void) {
    void *p = malloc(777777);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}
