/* fork + exec of this same program (`child` argument), from a threaded parent: the child allocates
 * 5 x 44444 bytes ([32768, 65536)) and prints whether it was given LD_PRELOAD; the parent allocates
 * 7 x 3333 ([2048, 4096)) and prints the child's status. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *churn(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) free(malloc(200));
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        for (int i = 0; i < 5; i++) free(malloc(44444));
        printf("child running\n");
        return 3;
    }
    pthread_t t;
    pthread_create(&t, NULL, churn, NULL);
    for (int i = 0; i < 7; i++) free(malloc(3333));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "child", NULL};
        execv(argv[0], args);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    pthread_join(t, NULL);
    printf("child exited with %d\n", WEXITSTATUS(status));
    return 0;
}
