/* 64 threads allocate and free across threads: in every round each thread fills its own mailbox with
 * blocks of 9000 + its number bytes (all in the [8192, 16384) histogram bucket, which nothing else
 * uses), then, after a barrier, frees the blocks its neighbour allocated. Prints the number of blocks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 64
#define ROUNDS 20
#define PER_ROUND 50

static void *mailbox[THREADS][PER_ROUND];
static pthread_barrier_t barrier;

static void *work(void *arg) {
    long me = (long)arg;
    long total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int j = 0; j < PER_ROUND; j++) {
            mailbox[me][j] = malloc(9000 + me);
            memset(mailbox[me][j], (int)me, 16);
            total++;
        }
        pthread_barrier_wait(&barrier);
        long other = (me + 1) % THREADS;
        for (int j = 0; j < PER_ROUND; j++) {
            if (((unsigned char *)mailbox[other][j])[0] != (unsigned char)other) abort();
            free(mailbox[other][j]);
        }
        pthread_barrier_wait(&barrier);
    }
    return (void *)total;
}

int main(void) {
    pthread_t t[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, (void *)i);
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *n;
        pthread_join(t[i], &n);
        total += (long)n;
    }
    printf("%ld blocks\n", total);
    return 0;
}
