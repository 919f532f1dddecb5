/* a() -> b() -> c() -> malloc(424242): the native stack test (built with and without frame pointers). */
#include <stdlib.h>
#include <stdio.h>

__attribute__((noinline)) void *c(void) {
    void *p = malloc(424242);
    /* Keep the call from being a tail call, and the block from being optimised away. */
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

__attribute__((noinline)) void *b(void) {
    void *p = c();
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

__attribute__((noinline)) void *a(void) {
    void *p = b();
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

int main(void) {
    void *p = a();
    printf("%p\n", p);
    free(p);
    return 0;
}
