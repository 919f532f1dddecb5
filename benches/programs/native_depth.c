/* Native-mode unwinding, timed from inside (criterion's external-process pattern).
 *   native_depth DEPTH N   recurses DEPTH calls deep, then does N pairs of malloc(64)/free there;
 *                          prints the elapsed nanoseconds of the pairs.
 * Built with -O2 -fno-builtin so the calls are not elided; `descend` is kept out of line and does
 * work after its recursive call, so each level is a real frame for the unwinder. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static __attribute__((noinline)) long long pairs(long n) {
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        void *volatile p = malloc(64);
        free(p);
    }
    return now_ns() - start;
}

static __attribute__((noinline)) long long descend(int depth, long n) {
    long long elapsed = depth <= 1 ? pairs(n) : descend(depth - 1, n);
    __asm__ volatile("" ::: "memory"); /* no tail call: this frame stays on the stack */
    return elapsed;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    printf("%lld\n", descend(atoi(argv[1]), atol(argv[2])));
    return 0;
}
