/* The fork gate (native mode): threads unwind (allocate) while the main thread forks 200 times. A
 * parent thread inside the unwinder at the moment of fork used to leave the child an unwinder lock
 * held for good (libunwind's memory pool, taken by a thread's first unwind among others): the child's
 * first unwind hung. Each round starts fresh threads, whose first unwinds take those locks, and forks
 * while they run; the child allocates from a call site the parent never used (an unwinder cache
 * miss), starts a thread that allocates (its first unwind), and exits. A child still running after
 * 10 s is counted as hung (its alarm kills it), so a hang fails the test instead of blocking it.
 * Prints "forks N hung H". Argument: the number of forks (default 200). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 3

static atomic_int stop_round, stop_all;

/* Different depths and call sites, so that the unwinder keeps meeting frames it has not cached. */
static void __attribute__((noinline)) deep(int n) {
    if (n > 0) {
        deep(n - 1);
        return;
    }
    free(malloc(32 + (rand() & 255)));
}

static void __attribute__((noinline)) deep_b(int n) {
    if (n > 0) {
        deep_b(n - 1);
        return;
    }
    free(malloc(64));
}

static void *worker(void *arg) {
    long seed = (long)arg;
    unsigned i = (unsigned)seed;
    atomic_int *stop = seed == 1 ? &stop_all : &stop_round;
    while (!atomic_load(stop)) {
        i = i * 1103515245u + 12345u;
        if (i & 0x100)
            deep((int)(i >> 24) % 24);
        else
            deep_b((int)(i >> 24) % 24);
    }
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    free(malloc(1000));
    return NULL;
}

static void __attribute__((noinline)) child_work(void) {
    alarm(10);
    void *p = malloc(12345);
    pthread_t t;
    if (pthread_create(&t, NULL, child_thread, NULL) == 0) pthread_join(t, NULL);
    free(p);
    _exit(0);
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t steady;
    pthread_create(&steady, NULL, worker, (void *)1L);
    int hung = 0, failed = 0;
    for (int round = 0; round < forks; round++) {
        atomic_store(&stop_round, 0);
        pthread_t t[WORKERS];
        for (int i = 0; i < WORKERS; i++)
            pthread_create(&t[i], NULL, worker, (void *)(long)(round * WORKERS + i + 2));
        pid_t pid = fork();
        if (pid == 0) child_work();
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            hung++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
        /* The steady worker keeps running; the round's workers stop (joined before the next fork, so
         * no thread is exiting at a fork). */
        atomic_store(&stop_round, 1);
        for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
        if (hung > 2) break; /* enough to tell; spares the test minutes of alarms */
    }
    atomic_store(&stop_all, 1);
    pthread_join(steady, NULL);
    printf("forks %d hung %d failed %d\n", forks, hung, failed);
    return 0;
}
