/* Linked into a test program built `-no-pie`: takes the addresses of malloc and free as non-PIC
 * code does (an absolute immediate), as CPython's allocator tables in Debian's non-PIE python3.11
 * do. The program's PLT entries then become the functions' canonical addresses, which is what the
 * dynamic linker gives for their names (tests/allocators.rs). The rest of the program stays PIC, so
 * that the probe's weak references are still bound at run time. */
#include <stdlib.h>

void *volatile malloc_address;
void *volatile free_address;

__attribute__((constructor)) static void take_addresses(void) {
    void *m, *f;
    __asm__("movq $malloc, %0" : "=r"(m));
    __asm__("movq $free, %0" : "=r"(f));
    malloc_address = m;
    free_address = f;
}
