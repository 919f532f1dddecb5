//! Provides the per-thread state (declared in `tls.c` with the initial-exec TLS model) and the
//! re-entry guard that keeps the tracer from recording its own work or recursing.

use crate::buffer::ThreadBuffer;

/// No buffer yet: the thread has not recorded anything.
pub const STATUS_NEW: u32 = 0;
/// `buffer` points to the thread's [`ThreadBuffer`].
pub const STATUS_ATTACHED: u32 = 1;
/// The thread ran its exit destructor: its buffer is gone, late events take the slow path.
pub const STATUS_EXITED: u32 = 2;

/// Must match `struct tracer_thread_state` in `tls.c`.
#[repr(C)]
pub struct ThreadState {
    pub guard: u32,
    pub status: u32,
    pub buffer: *mut ThreadBuffer,
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
            (*ts).guard = 1;
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
    unsafe { (*state()).guard = 1 }
}
