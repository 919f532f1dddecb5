/* 8 threads allocate concurrently; each hands its last block to the main thread, which frees it
 * (a cross-thread free). Sizes 5000..5007 fall in one histogram bucket nothing else uses. */
#include <pthread.h>
#include <stdlib.h>

#define THREADS 8
#define PER_THREAD 10000

static void *work(void *arg) {
    size_t size = 5000 + (size_t)arg;
    void *last = NULL;
    for (int i = 0; i < PER_THREAD; i++) {
        void *p = malloc(size);
        if (last) free(last);
        last = p;
    }
    return last;
}

int main(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < THREADS; i++) {
        void *last;
        pthread_join(t[i], &last);
        free(last);
    }
    return 0;
}
