/* Allocates, says so, and exits with a code of its own: a tracer failure must not change either. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    for (int i = 0; i < 50000; i++) free(malloc(100));
    puts("still here");
    return 42;
}
