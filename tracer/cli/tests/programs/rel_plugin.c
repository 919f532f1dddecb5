/* The library rel_dlopen opens and closes: allocates with malloc from inside the .so. */
#include <stdlib.h>
#include <string.h>

static char *kept;

void *plugin_alloc(size_t n) {
    void *p = malloc(n);
    memset(p, 1, n);
    return p;
}

void plugin_free(void *p) { free(p); }

__attribute__((constructor)) static void plugin_load(void) { kept = malloc(31); }
__attribute__((destructor)) static void plugin_unload(void) { free(kept); }
