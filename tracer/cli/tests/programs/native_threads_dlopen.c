/* Four threads allocate (55555 bytes, 1000 times each, through thread_leaf) while the main thread
 * dlopens a library and calls lib_alloc in it (777777 bytes), closes it, and does both again.
 * Usage: native_threads_dlopen LIB.so */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void *thread_leaf(void) {
    void *p = malloc(55555);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

static void *thread_main(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        free(thread_leaf());
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        return 2;
    }
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&threads[i], NULL, thread_main, NULL);
    }
    void *p = NULL;
    for (int round = 0; round < 2; round++) {
        void *lib = dlopen(argv[1], RTLD_NOW);
        if (!lib) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 3;
        }
        void *(*lib_alloc)(void) = (void *(*)(void))dlsym(lib, "lib_alloc");
        p = lib_alloc();
        if (round == 0) {
            dlclose(lib);
        }
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
    }
    printf("%p\n", p);
    return 0;
}
