/* Times allocations at the bottom of a chain of 32 distinct functions (about 36 frames deep):
 *   warm: 200000 malloc(64)/free pairs on the main thread, the same stack each time;
 *   cold: on each of 20 new threads, the first allocation through the chain (every frame new to the
 *         thread: the unwinder's per-thread cache misses, and 32 trie nodes are made and written).
 * Each thread allocates once at a shallow depth first, so thread set-up is not counted as cold.
 * Prints "warm_ns <ns per pair>" and "cold_ns <median ns>". Run it with and without --native. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WARM_PAIRS 200000
#define COLD_THREADS 20

static __thread int cold;
static __thread double result;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

__attribute__((noinline)) static void leaf(void) {
    if (cold) {
        double t0 = now_ns();
        void *p = malloc(64);
        result = now_ns() - t0;
        free(p);
        return;
    }
    double t0 = now_ns();
    for (int i = 0; i < WARM_PAIRS; i++) {
        void *p = malloc(64);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    result = (now_ns() - t0) / WARM_PAIRS;
}

#define LINK(i, next)                                                                              \
    __attribute__((noinline)) static void chain##i(void) {                                         \
        next();                                                                                    \
        __asm__ volatile("" ::: "memory");                                                         \
    }
LINK(31, leaf) LINK(30, chain31) LINK(29, chain30) LINK(28, chain29) LINK(27, chain28)
LINK(26, chain27) LINK(25, chain26) LINK(24, chain25) LINK(23, chain24) LINK(22, chain23)
LINK(21, chain22) LINK(20, chain21) LINK(19, chain20) LINK(18, chain19) LINK(17, chain18)
LINK(16, chain17) LINK(15, chain16) LINK(14, chain15) LINK(13, chain14) LINK(12, chain13)
LINK(11, chain12) LINK(10, chain11) LINK(9, chain10) LINK(8, chain9) LINK(7, chain8)
LINK(6, chain7) LINK(5, chain6) LINK(4, chain5) LINK(3, chain4) LINK(2, chain3) LINK(1, chain2)
LINK(0, chain1)

static void *cold_thread(void *out) {
    free(malloc(16)); /* the thread's buffer and the unwinder's cache for the shallow frames */
    cold = 1;
    chain0();
    *(double *)out = result;
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    chain0(); /* warm-up: first pass makes the stack known */
    chain0();
    printf("warm_ns %.1f\n", result);
    double cold_ns[COLD_THREADS];
    for (int i = 0; i < COLD_THREADS; i++) {
        pthread_t t;
        pthread_create(&t, NULL, cold_thread, &cold_ns[i]);
        pthread_join(t, NULL);
    }
    qsort(cold_ns, COLD_THREADS, sizeof cold_ns[0], by_value);
    printf("cold_ns %.1f\n", cold_ns[COLD_THREADS / 2]);
    return 0;
}
