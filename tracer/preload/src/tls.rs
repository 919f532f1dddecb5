//! Provides the per-thread state (declared in `tls.c` with the initial-exec TLS model) and the
//! re-entry guard that keeps the tracer from recording its own work or recursing.

/// No buffer yet: the thread has not recorded anything.
pub const STATUS_NEW: u32 = 0;
/// `buffer` points to the thread's buffer (a `buffer::ThreadBuffer`, see `track`).
pub const STATUS_ATTACHED: u32 = 1;
/// The thread ran its exit destructor: its buffer is gone, late events take the slow path.
pub const STATUS_EXITED: u32 = 2;

/// `guard` values. 0: hooks record. Any other value: hooks only forward, and says who is running.
/// The tracer's own code (its mappings are remembered, see `inner_maps`).
pub const GUARD_TRACER: u32 = 1;
/// A program's allocator other than glibc's, called by a hook: the mappings it makes and unmaps are
/// its own business (glibc's are invisible too, being internal calls), not the program's.
pub const GUARD_ALLOCATOR: u32 = 2;
/// The next allocator is being looked up: allocations come from the bootstrap arena (`arena`).
pub const GUARD_RESOLVING: u32 = 3;

/// Must match `struct tracer_thread_state` in `tls.c`.
#[repr(C)]
pub struct ThreadState {
    pub guard: u32,
    pub status: u32,
    /// The thread's `buffer::ThreadBuffer` (opaque here: only `track` makes and reads it).
    pub buffer: *mut std::ffi::c_void,
    /// The tracer's number for this thread, kept after the buffer is gone (for late events).
    pub thread: u32,
}

// The buffer pointer is opaque to C: it only stores it.
#[allow(improper_ctypes)]
extern "C" {
    fn tracer_thread_state() -> *mut ThreadState;
}

/// The calling thread's state. The pointer is valid for the thread's life and only this thread
/// touches what it points to.
#[inline(always)]
pub fn state() -> *mut ThreadState {
    // SAFETY: the C function only returns the address of a thread-local variable.
    unsafe { tracer_thread_state() }
}

/// Holds the calling thread's guard while alive: hooks called meanwhile only forward.
pub struct Guard(*mut ThreadState);

impl Guard {
    /// Takes the guard, or `None` if this thread is already inside the tracer.
    #[inline(always)]
    pub fn acquire() -> Option<Guard> {
        let ts = state();
        // SAFETY: `ts` is this thread's own state (see `state`).
        unsafe {
            if (*ts).guard != 0 {
                return None;
            }
            (*ts).guard = GUARD_TRACER;
        }
        Some(Guard(ts))
    }

    pub fn thread_state(&self) -> *mut ThreadState {
        self.0
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: as in `acquire`; the guard never leaves its thread (it is !Send through the pointer).
        unsafe { (*self.0).guard = 0 }
    }
}

/// Marks the calling thread as part of the tracer for good (the writer thread).
pub fn guard_forever() {
    // SAFETY: this thread's own state.
    unsafe { (*state()).guard = GUARD_TRACER }
}

/// Sets the calling thread's guard to `value` until dropped, then puts back what it was (it may
/// already be held: the tracer's own code calls libc functions that allocate).
pub struct GuardAs {
    ts: *mut ThreadState,
    previous: u32,
}

impl GuardAs {
    #[inline(always)]
    pub fn set(value: u32) -> GuardAs {
        let ts = state();
        // SAFETY: `ts` is this thread's own state (see `state`).
        let previous = unsafe { std::mem::replace(&mut (*ts).guard, value) };
        GuardAs { ts, previous }
    }
}

impl Drop for GuardAs {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: as in `set`; the value never leaves its thread (it is !Send through the pointer).
        unsafe { (*self.ts).guard = self.previous }
    }
}

/// The calling thread's guard value.
#[inline(always)]
pub fn guard() -> u32 {
    // SAFETY: this thread's own state.
    unsafe { (*state()).guard }
}
