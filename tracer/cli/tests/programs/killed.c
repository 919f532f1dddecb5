/* Fills several chunks, then dies by SIGKILL: the capture ends without its end record. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    for (int i = 0; i < 100000; i++) free(malloc(64 + i % 64));
    usleep(200000); /* let the writer thread write the full chunks */
    kill(getpid(), SIGKILL);
    return 0;
}
