/* Asks the allocator the process runs on whether it owns the known sequence's blocks (linked with
 * known_sequence.c -DALLOCATOR_PROBE). Its introspection functions are weak references, bound by the
 * dynamic linker at start-up (null when no allocator defines them): a dlsym of a missing name
 * would allocate its error message. Prints one line on stdout, without stdio (no allocation):
 *   allocator=jemalloc|tcmalloc|mimalloc|glibc owned=K/N usable_agree=K/N allocated=BYTES
 * owned: blocks the allocator's own introspection claims (jemalloc: `arenas.lookup`, an error for
 * memory it does not manage; tcmalloc: MallocExtension_GetOwnership; mimalloc:
 * mi_is_in_heap_region); usable_agree: blocks for which
 * malloc_usable_size (whatever the lookup finds) agrees with the allocator's own size query;
 * allocated: jemalloc's thread.allocated, tcmalloc's generic.current_allocated_bytes, else 0. */
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define WEAK __attribute__((weak))
WEAK int mallctl(const char *, void *, size_t *, void *, size_t);
WEAK size_t sallocx(void *, int);
WEAK int MallocExtension_GetOwnership(const void *);
WEAK int MallocExtension_GetNumericProperty(const char *, size_t *);
WEAK size_t tc_malloc_size(void *);
WEAK int mi_version(void);
WEAK int mi_is_in_heap_region(const void *);
WEAK size_t mi_usable_size(const void *);

static void put(const char *s) { (void)!write(1, s, strlen(s)); }

static void put_num(unsigned long long v) {
    char buf[24];
    int i = sizeof buf;
    buf[--i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(buf + i);
}

int allocator_probe(void *const *live, int n) {
    int owned = 0, agree = 0;
    unsigned long long allocated = 0;
    const char *name = "glibc";
    if (mallctl) {
        name = "jemalloc";
        uint64_t value = 0;
        size_t len = sizeof value;
        if (mallctl("thread.allocated", &value, &len, NULL, 0) == 0) allocated = value;
        for (int i = 0; i < n; i++) {
            void *ptr = live[i];
            unsigned arena;
            size_t arena_len = sizeof arena;
            if (mallctl("arenas.lookup", &arena, &arena_len, &ptr, sizeof ptr) == 0) {
                owned++;
                agree += sallocx(ptr, 0) == malloc_usable_size(ptr);
            }
        }
    } else if (MallocExtension_GetOwnership) {
        name = "tcmalloc";
        size_t value = 0;
        if (MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &value))
            allocated = value;
        for (int i = 0; i < n; i++) {
            owned += MallocExtension_GetOwnership(live[i]) == 1; /* kOwned */
            agree += tc_malloc_size(live[i]) == malloc_usable_size(live[i]);
        }
    } else if (mi_version) {
        name = "mimalloc";
        for (int i = 0; i < n; i++) {
            owned += mi_is_in_heap_region(live[i]) != 0;
            agree += mi_usable_size(live[i]) == malloc_usable_size(live[i]);
        }
    }
    put("allocator=");
    put(name);
    put(" owned=");
    put_num((unsigned long long)owned);
    put("/");
    put_num((unsigned long long)n);
    put(" usable_agree=");
    put_num((unsigned long long)agree);
    put("/");
    put_num((unsigned long long)n);
    put(" allocated=");
    put_num(allocated);
    put("\n");
    return 0;
}
