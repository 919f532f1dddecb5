/* Signals landing in the middle of allocations and of the tracer's own system calls: a SIGPROF timer
 * every 100 us (without SA_RESTART, so interrupted calls fail with EINTR) while 4 threads do 100000
 * malloc/free pairs each; 500 of each thread's blocks are 3000 bytes ([2048, 4096)). The handler only
 * counts (malloc is not async-signal-safe in glibc itself). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static volatile sig_atomic_t ticks;

static void on_prof(int sig) {
    (void)sig;
    ticks++;
}

static void *work(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        char *p = malloc(i % 200 == 0 ? 3000 : 1 + i % 100);
        p[0] = 1;
        free(p);
    }
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prof;
    sigaction(SIGPROF, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_PROF, &it, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    while (ticks < 20) free(malloc(64)); /* make sure signals did land */
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    puts("done");
    return 0;
}
