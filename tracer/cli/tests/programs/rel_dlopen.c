/* Opens the plugin given as argv[1] 1000 times; each time it allocates 40000 bytes in it
 * ([32768, 65536)), frees the block and closes the plugin. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    long sum = 0;
    for (int i = 0; i < 1000; i++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        void *(*alloc)(size_t) = (void *(*)(size_t))dlsym(h, "plugin_alloc");
        void (*release)(void *) = (void (*)(void *))dlsym(h, "plugin_free");
        char *p = alloc(40000);
        sum += p[39999];
        release(p);
        if (dlclose(h) != 0) return 1;
    }
    printf("%ld\n", sum);
    return 0;
}
