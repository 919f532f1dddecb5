//! Provides the funnel every hook goes through: checks that cost a load or two, then the calling
//! thread's buffer. Threads get a buffer on their first event and hand it back at exit (a pthread key
//! destructor, which POSIX runs after the thread's other TLS destructors have had their turn).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::buffer::ThreadBuffer;
use crate::tls::{self, Guard, STATUS_ATTACHED, STATUS_EXITED, STATUS_NEW};
use crate::{state, writer};

static NEXT_THREAD: AtomicU32 = AtomicU32::new(0);
static EXIT_KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();

/// Runs `f` on the calling thread's buffer, unless tracing is off or this thread is already inside
/// the tracer (nested allocator layers, the tracer's own work, a signal handler interrupting a hook).
#[inline(always)]
pub fn with_buffer(f: impl FnOnce(&mut ThreadBuffer)) {
    if !state::recording() {
        return;
    }
    let Some(guard) = Guard::acquire() else {
        return;
    };
    let ts = guard.thread_state();
    // SAFETY: `ts` is this thread's state; while ATTACHED its buffer belongs to this thread alone.
    unsafe {
        if (*ts).status == STATUS_ATTACHED {
            f(&mut *(*ts).buffer.cast::<ThreadBuffer>());
        } else {
            slow_path(ts, f);
        }
    }
}

/// A thread's first event (its buffer is made and registered) or one after its buffer's destructor.
///
/// # Safety
/// `ts` is the calling thread's own state (`tls::state()`), with the tracer's guard held, and
/// its status is not ATTACHED.
#[cold]
#[inline(never)]
unsafe fn slow_path(ts: *mut tls::ThreadState, f: impl FnOnce(&mut ThreadBuffer)) {
    // SAFETY: `ts` is this thread's state (the contract): no other thread reads or writes it.
    let status = unsafe { (*ts).status };
    match status {
        STATUS_NEW => {
            let thread = NEXT_THREAD.fetch_add(1, Relaxed);
            let tb = Box::into_raw(ThreadBuffer::new(thread, gettid()));
            // SAFETY: `tb` is the box just made, owned by this thread until its exit destructor
            // (registered here) takes it back; `ts` is this thread's state.
            unsafe {
                writer::register((*tb).live_chunk());
                if let Some(key) = EXIT_KEY.get() {
                    libc::pthread_setspecific(*key, tb.cast());
                }
                (*ts).thread = thread;
                (*ts).buffer = tb.cast();
                (*ts).status = STATUS_ATTACHED;
                f(&mut *tb);
            }
        }
        STATUS_EXITED => {
            // The thread is past its buffer's destructor (glibc frees its last blocks after TLS
            // destructors): record into a one-off chunk.
            crate::counters::LATE_EVENTS.fetch_add(1, Relaxed);
            // SAFETY: this thread's state.
            let mut tb = ThreadBuffer::new(unsafe { (*ts).thread }, gettid());
            f(&mut tb);
            tb.close();
        }
        _ => {}
    }
}

fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u64 }
}

/// Registers the thread-exit destructor (once, at load).
pub fn init_thread_exit_key() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; `on_thread_exit` matches the destructor signature.
    if unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } == 0 {
        let _ = EXIT_KEY.set(key);
    }
}

/// The thread-exit destructor of the buffer's key: unregisters and closes the thread's buffer.
///
/// # Safety
/// Called by glibc at thread exit, on the exiting thread, with the value `slow_path` set: the
/// thread's own buffer (a `Box<ThreadBuffer>` turned raw), or a stale value it ignores.
unsafe extern "C" fn on_thread_exit(value: *mut libc::c_void) {
    let ts = tls::state();
    let tb = value as *mut ThreadBuffer;
    // SAFETY: `ts` is this thread's state; `tb` is its buffer when the state says so (checked
    // first), made by `Box::into_raw` and released here once (the status leaves ATTACHED).
    unsafe {
        if (*ts).status != STATUS_ATTACHED || (*ts).buffer != tb.cast() {
            return;
        }
        let previous = (*ts).guard;
        (*ts).guard = tls::GUARD_TRACER;
        writer::unregister((*tb).live_chunk());
        (*ts).status = STATUS_EXITED;
        (*ts).buffer = std::ptr::null_mut();
        Box::from_raw(tb).close();
        (*ts).guard = previous;
    }
}

/// The calling thread's buffer, if it has one (for fork handling).
pub fn current_buffer() -> Option<*mut ThreadBuffer> {
    let ts = tls::state();
    // SAFETY: this thread's own state.
    unsafe { ((*ts).status == STATUS_ATTACHED).then(|| (*ts).buffer.cast()) }
}
