/* A program with its own malloc, free, calloc and realloc (a bump allocator over a static buffer),
 * like one linked statically with jemalloc: they come first in the symbol lookup, before any
 * preloaded library, so the tracer's hooks are bypassed. Everything in the process uses them,
 * glibc's own calls included. */
#include <stddef.h>
#include <string.h>

static char heap[1 << 22];
static size_t used;

void *malloc(size_t size) {
    size_t start = (used + 15) & ~(size_t)15;
    if (start + size + 16 > sizeof heap) return NULL;
    *(size_t *)(heap + start) = size;
    used = start + 16 + size;
    return heap + start + 16;
}

void free(void *ptr) { (void)ptr; }

void *calloc(size_t n, size_t size) {
    void *p = malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *realloc(void *ptr, size_t size) {
    void *p = malloc(size);
    if (p && ptr) {
        size_t old = *(size_t *)((char *)ptr - 16);
        memcpy(p, ptr, old < size ? old : size);
    }
    return p;
}

int main(void) {
    void *volatile p = NULL;
    for (int i = 0; i < 100; i++) {
        p = malloc(100);
        free(p);
    }
    return 0;
}
