/* fork without exec while 4 threads allocate: the child (only the forking thread survives) keeps
 * allocating (3 x 22222 bytes, [16384, 32768)), starts a thread of its own (2 x 50000, [32768, 65536)),
 * and exits with 7; the parent checks the status, stops its threads and exits 0. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) free(malloc(100 + rand() % 1000));
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 2; i++) free(malloc(50000));
    return NULL;
}

int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, NULL);
    for (int i = 0; i < 10000; i++) free(malloc(64));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        void *keep[3];
        for (int i = 0; i < 3; i++) keep[i] = malloc(22222);
        pthread_t c;
        pthread_create(&c, NULL, child_thread, NULL);
        pthread_join(c, NULL);
        for (int i = 0; i < 3; i++) free(keep[i]);
        printf("child done\n");
        exit(7);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    if (WIFSIGNALED(status))
        printf("child killed by signal %d\n", WTERMSIG(status));
    else
        printf("child exited with %d\n", WEXITSTATUS(status));
    return 0;
}
