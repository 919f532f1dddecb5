/* The preload's per-thread state, in the static TLS block (initial-exec model): reading it is one
 * load off %fs, it needs no lazy initialisation, and it has no destructor. A library loaded with
 * LD_PRELOAD is always in the static TLS block, so the model is safe here. The layout must match
 * `ThreadState` in tls.rs. */
#include <stdint.h>

struct tracer_thread_state {
    uint32_t guard;  /* non-zero (a GUARD_* value of tls.rs) while the tracer itself, the program's
                        allocator called by a hook, or the allocator lookup runs: hooks only forward */
    uint32_t status; /* 0: no buffer yet, 1: buffer attached, 2: thread is exiting */
    void *buffer;    /* the thread's ThreadBuffer while status == 1 */
    uint32_t thread; /* the tracer's number for this thread */
};

static __thread struct tracer_thread_state state __attribute__((tls_model("initial-exec")));

struct tracer_thread_state *tracer_thread_state(void) {
    return &state;
}
