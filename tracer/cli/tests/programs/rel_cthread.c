/* Built as a shared library and called from Python through ctypes: a thread Python never sees
 * (no thread state, no GIL) allocates `n` blocks of 3000000 bytes ([2 MiB, 4 MiB)). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *work(void *arg) {
    long n = (long)arg, done = 0;
    for (long i = 0; i < n; i++) {
        char *p = malloc(3000000);
        memset(p, 0, 4096);
        done += p[100] == 0;
        free(p);
    }
    return (void *)done;
}

long run_c_thread(long n) {
    pthread_t t;
    void *done;
    if (pthread_create(&t, NULL, work, (void *)n) != 0) return -1;
    pthread_join(t, &done);
    return (long)done;
}
