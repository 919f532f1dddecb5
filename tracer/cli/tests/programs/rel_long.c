/* argv[1] malloc/free pairs of 1..256 bytes; writes its peak RSS (KiB) to argv[2] if given. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) {
        char *p = malloc((size_t)(i % 256) + 1);
        p[0] = (char)i;
        sum += (unsigned char)p[0];
        free(p);
    }
    printf("%lu\n", sum);
    if (argc > 2) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        FILE *f = fopen(argv[2], "w");
        if (f) {
            fprintf(f, "%ld\n", ru.ru_maxrss);
            fclose(f);
        }
    }
    return 0;
}
