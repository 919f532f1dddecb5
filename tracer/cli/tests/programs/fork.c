/* The parent allocates 11111 and 33333 bytes, the forked child 3 x 22222 (each in its own
 * histogram bucket); the child exits through exit(), the parent through _exit(). */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    void *a = malloc(11111);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 3; i++) malloc(22222);
        exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    void *b = malloc(33333);
    free(a);
    free(b);
    _exit(WEXITSTATUS(status) == 0 ? 5 : 1);
}
