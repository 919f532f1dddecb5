/* Unlinks the capture (argv[1]) halfway through 400000 allocations. When the capture exists (a traced
 * run) it keeps a descriptor on it and writes to argv[2] whether the unlinked file still grew. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    unsigned long sum = 0;
    int fd = -1;
    off_t before = 0;
    for (long i = 0; i < 400000; i++) {
        if (i == 200000) {
            fd = open(argv[1], O_RDONLY);
            struct stat st;
            if (fd >= 0 && fstat(fd, &st) == 0) before = st.st_size;
            unlink(argv[1]);
        }
        char *p = malloc((size_t)(i % 512) + 1);
        p[0] = 1;
        sum += (unsigned char)p[0];
        free(p);
    }
    if (fd >= 0) {
        /* The tracer's writer thread writes behind the program: give it up to 5 s. */
        struct stat st;
        for (int i = 0; i < 100 && fstat(fd, &st) == 0 && st.st_size <= before; i++) usleep(50000);
        fstat(fd, &st);
        FILE *f = fopen(argv[2], "w");
        fprintf(f, "%s\n", st.st_size > before ? "grew" : "stalled");
        fclose(f);
    }
    printf("%lu\n", sum);
    return 0;
}
