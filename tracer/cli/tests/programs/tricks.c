/* Hostile process tricks (issue 19), one per argument. Each prints the same lines traced and untraced
 * and makes allocations of known sizes that the test counts in the capture:
 *   close_range  50 x 3000 B, closes every descriptor from 3 up, 70 x 20000 B
 *   dup2         dup2s a file of its own over the tracer's capture descriptor (found through
 *                /proc/self/fd), writes through it, 2 x 70 x 20000 B, prints what the file holds
 *   cancel       a thread inside a malloc/free loop with a cancel request pending (it must not be
 *                cancelled inside the tracer), and a thread cancelled while blocked in read()
 *                after leaking 10 x 20000 B
 *   signal_fork  fork() inside a SIGUSR1 handler, 5 times, while another thread allocates; each
 *                child makes 3 x 9000 B and _exits
 *   rlimit_as    RLIMIT_AS 64 MiB above the current size, 1 MiB blocks until malloc fails
 *   rlimit_nofile  RLIMIT_NOFILE's soft limit at 3 (stdio only), open() fails, a forked child
 *                allocates 3 x 9000 B
 *   daemon       double fork and setsid; the grandchild allocates 4 x 9000 B and writes "daemon.out"
 *   posix_spawn  posix_spawn of /bin/true and 10 x 3000 B
 *   vfork        vfork + execv of /bin/true and 10 x 3000 B */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void churn(int n, size_t size) {
    for (int i = 0; i < n; i++) free(malloc(size));
}

static int do_close_range(void) {
    void *keep[50];
    for (int i = 0; i < 50; i++) keep[i] = malloc(3000);
    if (close_range(3, ~0U, 0) != 0) { perror("close_range"); return 1; }
    churn(70, 20000);
    for (int i = 0; i < 50; i++) free(keep[i]);
    printf("closed every descriptor from 3\n");
    return 0;
}

/* The descriptor whose target's name ends in "cap.bin", or -1. */
static int capture_fd(void) {
    char link[64], target[PATH_MAX];
    for (int fd = 3; fd < 4096; fd++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (n >= 7 && strcmp(target + n - 7, "cap.bin") == 0) return fd;
    }
    return -1;
}

static int do_dup2(void) {
    int own = open("own.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (own < 0) { perror("open"); return 1; }
    int victim = capture_fd();
    if (victim < 0) victim = 200; /* untraced: a descriptor number nobody uses */
    if (dup2(own, victim) != victim) { perror("dup2"); return 1; }
    close(own);
    churn(70, 20000);
    const char line[] = "the program's own line\n";
    if (write(victim, line, sizeof line - 1) != (ssize_t)(sizeof line - 1)) { perror("write"); return 1; }
    churn(70, 20000);
    close(victim);
    char buf[256] = {0};
    FILE *f = fopen("own.txt", "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    printf("own.txt holds %zu bytes: %s", n, buf);
    return 0;
}

static volatile int started;

static void *busy(void *arg) {
    (void)arg;
    started = 1;
    /* No cancellation point of the program's own in here: only the allocator is called. */
    for (int i = 0; i < 2000000; i++) free(malloc(64 + (i & 255)));
    return (void *)42;
}

static void *blocked(void *arg) {
    int fd = *(int *)arg;
    for (int i = 0; i < 10; i++) (void)malloc(20000);
    char c;
    (void)read(fd, &c, 1); /* a cancellation point; never returns */
    return NULL;
}

static int do_cancel(void) {
    pthread_t t;
    pthread_create(&t, NULL, busy, NULL);
    while (!started) ;
    pthread_cancel(t); /* pending until the thread reaches a cancellation point */
    void *ret;
    pthread_join(t, &ret);
    printf("busy thread %s\n", ret == PTHREAD_CANCELED ? "cancelled inside the allocator" : "ran to its end");
    int p[2];
    if (pipe(p) != 0) return 1;
    pthread_create(&t, NULL, blocked, &p[0]);
    usleep(20000);
    pthread_cancel(t);
    pthread_join(t, &ret);
    printf("blocked thread %s\n", ret == PTHREAD_CANCELED ? "cancelled" : "not cancelled");
    return 0;
}

static volatile pid_t forked;

static void on_usr1(int sig) {
    (void)sig;
    pid_t pid = fork();
    if (pid == 0) {
        churn(3, 9000);
        _exit(0);
    }
    forked = pid;
}

static volatile int stop_churning;

static void *churner(void *arg) {
    (void)arg;
    while (!stop_churning) churn(100, 200);
    return NULL;
}

static int do_signal_fork(void) {
    signal(SIGUSR1, on_usr1);
    pthread_t t;
    pthread_create(&t, NULL, churner, NULL);
    int ok = 0;
    for (int i = 0; i < 5; i++) {
        churn(1, 12000);
        raise(SIGUSR1);
        int status;
        if (waitpid(forked, &status, 0) == forked && WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
    }
    stop_churning = 1;
    pthread_join(t, NULL);
    printf("%d children forked in a signal handler exited cleanly\n", ok);
    return 0;
}

static int do_rlimit_as(void) {
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) return 1;
    fclose(f);
    struct rlimit lim = {(rlim_t)pages * 4096 + (64 << 20), RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &lim) != 0) { perror("setrlimit"); return 1; }
    static void *blocks[4096];
    int n = 0;
    while (n < 4096 && (blocks[n] = malloc(1 << 20)) != NULL) n++;
    int failed = n < 4096;
    while (n > 0) free(blocks[--n]);
    churn(10, 3000);
    printf("malloc %s under RLIMIT_AS\n", failed ? "failed" : "never failed");
    return 0;
}

static int do_rlimit_nofile(void) {
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = 3;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) { perror("setrlimit"); return 1; }
    int fd = open("/dev/null", O_RDONLY);
    printf("open: %s\n", fd < 0 ? strerror(errno) : "succeeded");
    churn(10, 3000);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        churn(3, 9000);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child exited with %d\n", WEXITSTATUS(status));
    return 0;
}

static int do_daemon(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (fork() != 0) _exit(0);
        churn(4, 9000);
        FILE *f = fopen("daemon.out.tmp", "w");
        /* In a session of its own, and not its leader: it can never get a controlling terminal. */
        fprintf(f, "daemon %d\n", getsid(0) == getpgid(0) && getsid(0) != getpid());
        fclose(f);
        rename("daemon.out.tmp", "daemon.out");
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    churn(10, 3000);
    printf("first child exited with %d\n", WEXITSTATUS(status));
    return 0;
}

static int do_posix_spawn(void) {
    pid_t pid;
    char *args[] = {"/bin/true", NULL};
    int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ);
    if (rc != 0) { fprintf(stderr, "posix_spawn: %s\n", strerror(rc)); return 1; }
    churn(10, 3000);
    int status;
    waitpid(pid, &status, 0);
    printf("spawned child exited with %d\n", WEXITSTATUS(status));
    return 0;
}

static int do_vfork(void) {
    char *args[] = {"/bin/true", NULL};
    pid_t pid = vfork();
    if (pid == 0) {
        execv("/bin/true", args);
        _exit(127);
    }
    churn(10, 3000);
    int status;
    waitpid(pid, &status, 0);
    printf("vforked child exited with %d\n", WEXITSTATUS(status));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *t = argv[1];
    if (!strcmp(t, "close_range")) return do_close_range();
    if (!strcmp(t, "dup2")) return do_dup2();
    if (!strcmp(t, "cancel")) return do_cancel();
    if (!strcmp(t, "signal_fork")) return do_signal_fork();
    if (!strcmp(t, "rlimit_as")) return do_rlimit_as();
    if (!strcmp(t, "rlimit_nofile")) return do_rlimit_nofile();
    if (!strcmp(t, "daemon")) return do_daemon();
    if (!strcmp(t, "posix_spawn")) return do_posix_spawn();
    if (!strcmp(t, "vfork")) return do_vfork();
    return 2;
}
