/* A known sequence of allocator calls, and no stdio (whose buffers would add allocations).
 * tests/common/mod.rs holds the expected counts, sizes, peak and leaks. Built with
 * -DALLOCATOR_PROBE and allocator_probe.c, it then asks the allocator whether it owns the blocks
 * still live (tests/allocators.rs). */
#include <malloc.h>
#include <stdlib.h>

#ifdef ALLOCATOR_PROBE
int allocator_probe(void *const *live, int n);
#endif

int main(void) {
    void *blocks[1000];
    for (int i = 0; i < 1000; i++) blocks[i] = malloc(123);
    void *c = calloc(10, 100);
    void *r = NULL;
    size_t sizes[] = {16, 256, 4096, 65536};
    for (int i = 0; i < 4; i++) r = realloc(r, sizes[i]);
    void *pm = NULL;
    if (posix_memalign(&pm, 64, 200) != 0) return 1;
    void *aa = aligned_alloc(4096, 8192);
    /* Leak exactly 7 blocks: blocks[0..5], pm and aa. */
    for (int i = 5; i < 1000; i++) free(blocks[i]);
    free(c);
    free(r);
#ifdef ALLOCATOR_PROBE
    void *live[] = {blocks[0], blocks[4], pm, aa};
    allocator_probe(live, 4);
#endif
    return aa == NULL;
}
