//! Provides the `profile` stack source: a native profile function that keeps a per-thread shadow
//! stack of the frames being run. It is installed at start with `PyEval_SetProfileAllThreads` where
//! that exists (3.12 and later: every thread running then), else `PyEval_SetProfile` (the calling
//! thread), and in each thread started later by the bootstrap's `threading.setprofile` trampoline. On
//! 3.12 and later CPython delivers these calls through `sys.monitoring`. A push stores the frame object and its code
//! object and nothing else; offsets are read, and code objects interned, only when an allocation needs
//! the stack. In `noop` mode the function is installed but does nothing, which measures what CPython's
//! profiling machinery costs by itself.

use std::ffi::c_int;

use super::capi::{self, PyObject, PYTRACE_CALL, PYTRACE_RETURN};
use super::walk::RawFrame;
use crate::track;

/// A frame on the shadow stack. The frame object is borrowed: it lives as long as its frame runs,
/// and the frame is popped when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowFrame {
    pub frame: usize,
    pub code: usize,
}

/// The code object of a frame object.
fn code_of(api: &capi::Api, frame: *mut PyObject) -> usize {
    // SAFETY: `frame` is a live frame object; PyFrame_GetCode returns a new reference that we drop at
    // once (the frame keeps the code alive).
    unsafe {
        let code = (api.frame_get_code)(frame);
        (api.decref)(code);
        code as usize
    }
}

/// The profile function: push on call, pop on return, nothing for the other events.
pub unsafe extern "C" fn profile_function(
    _: *mut PyObject,
    frame: *mut PyObject,
    what: c_int,
    _: *mut PyObject,
) -> c_int {
    if super::source() == super::Source::Noop {
        return 0;
    }
    let Some(api) = capi::loaded() else { return 0 };
    match what {
        PYTRACE_CALL => {
            let code = code_of(api, frame);
            track::with_buffer(|b| {
                b.python().shadow.push(ShadowFrame {
                    frame: frame as usize,
                    code,
                })
            });
        }
        PYTRACE_RETURN => track::with_buffer(|b| pop(&mut b.python().shadow, frame as usize)),
        _ => {}
    }
    0
}

/// Pops `frame`, and whatever is above it; a frame the stack never saw (entered before tracing
/// started) is ignored.
fn pop(shadow: &mut Vec<ShadowFrame>, frame: usize) {
    if let Some(i) = shadow.iter().rposition(|f| f.frame == frame) {
        shadow.truncate(i);
    }
}

/// Which threads [`install`] puts the profile function on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The calling thread (a thread just started).
    This,
    /// Every thread of the interpreter where CPython can (3.12+), else the calling thread. Only the
    /// calling thread's shadow stack is seeded: another thread's stack holds the frames it enters
    /// from then on, and check mode does not compare it.
    All,
}

/// Installs the profile function and seeds the calling thread's shadow stack with the frames
/// already running (they will return through the profile function).
///
/// # Safety
/// The caller holds the GIL.
pub unsafe fn install(api: &capi::Api, threads: Threads) {
    let mut frames = Vec::new();
    let mut frame = (api.eval_get_frame)();
    if !frame.is_null() {
        (api.incref)(frame);
    }
    while !frame.is_null() {
        frames.push(ShadowFrame {
            frame: frame as usize,
            code: code_of(api, frame),
        });
        let back = (api.frame_get_back)(frame);
        (api.decref)(frame);
        frame = back;
    }
    frames.reverse();
    track::with_buffer(|b| {
        let py = b.python();
        py.shadow = frames;
        py.profiling = true;
    });
    match (threads, api.set_profile_all_threads) {
        (Threads::All, Some(all)) => all(Some(profile_function), std::ptr::null_mut()),
        _ => (api.set_profile)(Some(profile_function), std::ptr::null_mut()),
    }
}

/// The shadow stack as frames with offsets, outermost first.
pub fn stack(shadow: &[ShadowFrame], out: &mut Vec<RawFrame>) {
    out.clear();
    let Some(api) = capi::loaded() else { return };
    let skip = shadow.len().saturating_sub(super::walk::MAX_DEPTH);
    for f in &shadow[skip..] {
        // SAFETY: frames on the shadow stack are running, so their frame objects are alive.
        let lasti = unsafe { (api.frame_get_lasti)(f.frame as *mut PyObject) };
        out.push(RawFrame {
            code: f.code,
            offset: lasti.max(0) as u32,
        });
    }
}
