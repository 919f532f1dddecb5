/* The malloc/free hot path, timed from inside (criterion's external-process pattern).
 *   malloc_loop time N     N pairs of malloc(64)/free; prints the elapsed nanoseconds.
 *   malloc_loop latency N  N pairs, each timed alone; prints one nanosecond count per line.
 * Built with -O2 -fno-builtin so the calls are not elided. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long n = atol(argv[2]);
    if (strcmp(argv[1], "time") == 0) {
        long long start = now_ns();
        for (long i = 0; i < n; i++) {
            void *volatile p = malloc(64);
            free(p);
        }
        printf("%lld\n", now_ns() - start);
        return 0;
    }
    long long *lat = calloc((size_t)n, sizeof *lat);
    for (long i = 0; i < n; i++) {
        long long t0 = now_ns();
        void *volatile p = malloc(64);
        free(p);
        lat[i] = now_ns() - t0;
    }
    for (long i = 0; i < n; i++) printf("%lld\n", lat[i]);
    return 0;
}
