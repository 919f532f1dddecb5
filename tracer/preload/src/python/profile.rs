//! Provides the `profile` stack source: a native profile function that keeps a per-thread shadow
//! stack of the frames being run. It is installed at start with `PyEval_SetProfileAllThreads` where
//! that exists (3.12 and later: every thread running then), else `PyEval_SetProfile` (the calling
//! thread), and in each thread started later by the bootstrap's `threading.setprofile` trampoline. On
//! 3.12 and later CPython delivers these calls through `sys.monitoring`. A push stores the frame object and its code
//! object and nothing else; offsets are read, and code objects interned, only when an allocation needs
//! the stack. In `noop` mode the function is installed but does nothing, which measures what CPython's
//! profiling machinery costs by itself.
//!
//! A thread has one profile function, and the program may want it too (cProfile, pyinstrument, a
//! `sys.setprofile` of its own). The tracer's function stays in place and *chains*: while the program
//! has a function set, the tracer's calls it on every event with the program's own object, so the
//! program's profiler sees exactly its events, and `sys.getprofile()` returns what it set.
//! - `sys.setprofile` is replaced by [`setprofile`] (same name and module): it lets CPython install
//!   the program's function, then puts the tracer's back in front of it ([`take_over`]).
//! - A C extension calling `PyEval_SetProfile` itself displaces the tracer's function. The next
//!   allocation notices (it reads the thread state's `c_profilefunc`, whose offset [`find_profile_slots`]
//!   finds at start-up) and puts the tracer's back in front of it; if the program removed every
//!   function, a pending call re-installs the tracer's on the main thread.
//! - Events missed meanwhile leave the shadow stack stale: it is rebuilt from the frames at the next
//!   profile event, and until then allocations take their stack from the frame walk.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use super::capi::{self, ProfileFunc, PyObject, PYTRACE_CALL, PYTRACE_C_RETURN, PYTRACE_RETURN};
use super::shadow::{self, ShadowFrame, ANY_CHAINED, PROFILE_FUNC_SLOT, PROFILE_OBJ_SLOT};
use crate::track;

/// The function object of [`setprofile`] (the event argument of its `c_return`).
static WRAPPER: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());
/// CPython's own `sys.setprofile`, which [`setprofile`] calls.
static ORIGINAL_SETPROFILE: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());

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

/// The profile function: push on call, pop on return, nothing for the other events; and the
/// program's own function, when it has one, on every event.
///
/// # Safety
/// Called by CPython as a profile function (`Py_tracefunc`): with the GIL held, on the thread the
/// event is for, `frame` its live frame object, `obj` the object installed with the function.
pub unsafe extern "C" fn profile_function(
    obj: *mut PyObject,
    frame: *mut PyObject,
    what: c_int,
    arg: *mut PyObject,
) -> c_int {
    let recording = super::source() != super::Source::Noop;
    if what == PYTRACE_RETURN && shadow::tracing_unverified() {
        shadow::verify_tracing_slot();
    }
    if !recording && !ANY_CHAINED.load(Relaxed) {
        return 0;
    }
    let Some(api) = capi::loaded() else { return 0 };
    let code = if recording && what == PYTRACE_CALL {
        code_of(api, frame)
    } else {
        0
    };
    // The common case, no function of the program's and nothing missed, is this one visit.
    let (mut chained, mut resync) = (0, false);
    track::with_buffer(|b| {
        let py = &mut b.python().shadow;
        (chained, resync) = (py.chained, py.resync);
        if recording && !resync && chained == 0 {
            apply(&mut py.frames, what, frame as usize, code);
        }
    });
    if chained == 0 && !resync {
        return 0;
    }
    // SAFETY: CPython's call (the contract), passed on.
    unsafe { chained_event(api, obj, frame, what, arg, recording, chained, resync, code) }
}

/// A call or return on the shadow stack.
fn apply(shadow: &mut Vec<ShadowFrame>, what: c_int, frame: usize, code: usize) {
    match what {
        // A rebuilt stack already holds the frame being entered.
        PYTRACE_CALL if shadow.last().map(|f| f.frame) != Some(frame) => {
            shadow.push(ShadowFrame { frame, code })
        }
        PYTRACE_RETURN => pop(shadow, frame),
        _ => {}
    }
}

/// The rest of [`profile_function`] when the program has a function of its own or the shadow stack
/// must be rebuilt.
///
/// # Safety
/// As [`profile_function`], whose arguments these are; `chained` is 0 or the program's own profile
/// function, found in the thread state's `c_profilefunc`.
#[cold]
#[allow(clippy::too_many_arguments)]
unsafe fn chained_event(
    api: &capi::Api,
    obj: *mut PyObject,
    frame: *mut PyObject,
    what: c_int,
    arg: *mut PyObject,
    recording: bool,
    chained: usize,
    resync: bool,
    code: usize,
) -> c_int {
    if recording && resync {
        // Rebuilt outside the tracer's guard: materialising frame objects allocates.
        // SAFETY: the GIL is held (the contract).
        let frames = unsafe { running_frames(api) };
        track::with_buffer(|b| {
            let py = &mut b.python().shadow;
            py.frames = frames;
            py.resync = false;
        });
    }
    // On a call the frame is pushed before the program's function runs, on a return popped after
    // it: an allocation it makes sees the frame, as the walk does.
    if recording && what != PYTRACE_RETURN {
        track::with_buffer(|b| apply(&mut b.python().shadow.frames, what, frame as usize, code));
    }
    let mut rc = 0;
    let mut skip = false;
    track::with_buffer(|b| {
        let py = &mut b.python().shadow;
        // The return from the `sys.setprofile` that installed the program's first function: untraced,
        // that call started with no profiler, so its function never sees it return.
        skip = py.skip_c_return && what == PYTRACE_C_RETURN && arg == WRAPPER.load(Relaxed);
        py.skip_c_return = false;
    });
    if chained != 0 && !skip {
        track::with_buffer(|b| b.python().shadow.in_chained = true);
        // SAFETY: `chained` is the function the program installed, called as CPython would have
        // called it, with the object the program installed it with.
        rc = unsafe {
            let f: ProfileFunc = std::mem::transmute(chained);
            f(obj, frame, what, arg)
        };
        track::with_buffer(|b| {
            let py = &mut b.python().shadow;
            py.in_chained = false;
            if rc != 0 {
                // Its function failed: CPython's trampoline has removed it (and so ours).
                py.chained = 0;
                py.resync = true;
            }
        });
    }
    if recording && what == PYTRACE_RETURN {
        track::with_buffer(|b| apply(&mut b.python().shadow.frames, what, frame as usize, code));
    }
    rc
}

/// Puts the tracer's function in front of whatever this thread has now: chained to the program's
/// if it has one, alone (with a rebuilt shadow stack) if not.
///
/// # Safety
/// The caller holds the GIL.
pub unsafe fn take_over(api: &capi::Api) {
    // SAFETY: the GIL is held (the contract); the slots are offsets in the thread state found by
    // `find_profile_slots`, read on this thread's live state.
    unsafe {
        let (func_slot, obj_slot) = (
            PROFILE_FUNC_SLOT.load(Relaxed),
            PROFILE_OBJ_SLOT.load(Relaxed),
        );
        let tstate = (api.gilstate_this_thread)() as usize;
        if func_slot == 0 || tstate == 0 {
            install(api, Threads::This);
            return;
        }
        let func = ((tstate + func_slot) as *const usize).read();
        let ours = profile_function as ProfileFunc as usize;
        if func == ours {
            return;
        }
        if func == 0 {
            track::with_buffer(|b| b.python().shadow.chained = 0);
            install(api, Threads::This);
            return;
        }
        let obj = ((tstate + obj_slot) as *const *mut PyObject).read();
        track::with_buffer(|b| b.python().shadow.chained = func);
        ANY_CHAINED.store(true, Relaxed);
        // PyEval_SetProfile takes a reference to `obj` before dropping the one it held: the program's
        // object stays alive.
        (api.set_profile)(Some(profile_function), obj);
    }
}

/// Finds where the thread state keeps the profile function and its object, by installing a marker
/// function with a known object and looking for both (every version since 3.11 keeps them as
/// `c_profilefunc` and `c_profileobj`; their offsets move from version to version).
///
/// # Safety
/// The caller holds the GIL; `marker_obj` is a live object (the bootstrap's frame).
pub unsafe fn find_profile_slots(api: &capi::Api, marker_obj: *mut PyObject) {
    // SAFETY: the GIL is held (the contract), so this thread's state is live and ours to read; the
    // scan stays within its first 128 words (a thread state is larger); `marker_obj` is live.
    unsafe {
        /// # Safety
        /// None: it does nothing (CPython calls it as a profile function, with the GIL held).
        unsafe extern "C" fn marker(
            _: *mut PyObject,
            _: *mut PyObject,
            _: c_int,
            _: *mut PyObject,
        ) -> c_int {
            0
        }
        let tstate = (api.gilstate_this_thread)() as usize;
        if tstate == 0 || marker_obj.is_null() {
            return;
        }
        (api.set_profile)(Some(marker), marker_obj);
        let words = tstate as *const usize;
        let find = |value: usize| {
            (0..128)
                .find(|&i| words.add(i).read() == value)
                .map(|i| i * 8)
        };
        if let (Some(func), Some(obj)) = (
            find(marker as ProfileFunc as usize),
            find(marker_obj as usize),
        ) {
            // `int tracing` comes shortly before `c_profilefunc` in 3.11 to 3.15 (then `what_event`, the
            // current frame or CFrame pointer, and in 3.15 more fields). The candidates that read 0 here, outside any event, are
            // kept; the first return event picks the one that reads 1 (`verify_tracing_slot`).
            let mut zero = 0u16;
            for (i, back) in shadow::TRACING_CANDIDATES.iter().enumerate() {
                if func >= *back && ((tstate + func - back) as *const i32).read() == 0 {
                    zero |= 1 << i;
                }
            }
            shadow::set_slots(func, obj, zero);
        }
        (api.set_profile)(None, std::ptr::null_mut());
    }
}

/// `sys.setprofile`, as the program sees it: CPython's installs the program's function, then the
/// tracer's goes back in front of it.
///
/// # Safety
/// Called by the interpreter with the GIL held.
pub unsafe extern "C" fn setprofile(_sys: *mut PyObject, func: *mut PyObject) -> *mut PyObject {
    // SAFETY: called by the interpreter with the GIL held (the contract); `original` is CPython's
    // `sys.setprofile`, kept alive for ever by `wrap_sys_setprofile`.
    unsafe {
        let Some(api) = capi::loaded() else {
            return std::ptr::null_mut();
        };
        let original = ORIGINAL_SETPROFILE.load(Relaxed);
        let mut had_one = false;
        track::with_buffer(|b| had_one = b.python().shadow.chained != 0);
        let result = (api.call_function_obj_args)(original, func, std::ptr::null_mut::<PyObject>());
        if result.is_null() {
            return result;
        }
        take_over(api);
        track::with_buffer(|b| {
            let py = &mut b.python().shadow;
            py.skip_c_return = !had_one && py.chained != 0;
        });
        result
    }
}

/// Replaces `sys.setprofile` with [`setprofile`], a function of the `sys` module named the same.
///
/// # Safety
/// The caller holds the GIL; `sys` is the `sys` module; `def` is a `PyMethodDef` for
/// [`setprofile`] that lives for ever.
pub unsafe fn wrap_sys_setprofile(api: &capi::Api, sys: *mut PyObject, def: *mut c_void) -> bool {
    // SAFETY: the GIL is held and `sys` is the sys module (the contract); every object made here is
    // released or kept as the comments say.
    unsafe {
        let original = (api.get_attr_string)(sys, c"setprofile".as_ptr());
        if original.is_null() {
            return false;
        }
        let module_name = (api.unicode_from_string)(c"sys".as_ptr());
        let wrapper = (api.cfunction_new_ex)(def, sys, module_name);
        if !module_name.is_null() {
            (api.decref)(module_name);
        }
        if wrapper.is_null() {
            (api.decref)(original);
            return false;
        }
        ORIGINAL_SETPROFILE.store(original, Relaxed); // kept for ever
        WRAPPER.store(wrapper, Relaxed); // sys keeps it alive
        let ok = (api.set_attr_string)(sys, c"setprofile".as_ptr(), wrapper) == 0;
        (api.decref)(wrapper);
        ok
    }
}

/// Pops `frame`, and whatever is above it; a frame the stack never saw (entered before tracing
/// started) is ignored.
fn pop(shadow: &mut Vec<ShadowFrame>, frame: usize) {
    if let Some(i) = shadow.iter().rposition(|f| f.frame == frame) {
        shadow.truncate(i);
    }
}

/// The frames running on the calling thread, outermost first.
///
/// # Safety
/// The caller holds the GIL.
unsafe fn running_frames(api: &capi::Api) -> Vec<ShadowFrame> {
    // SAFETY: the GIL is held (the contract): the frames are this thread's, each held by a reference
    // from `PyEval_GetFrame`/`PyFrame_GetBack` while it is read.
    unsafe {
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
        frames
    }
}

/// Which threads [`install`] puts the profile function on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The calling thread (a thread just started, or one whose function the program removed).
    This,
    /// Every thread of the interpreter where CPython can (3.12+), else the calling thread. Only the
    /// calling thread's shadow stack is seeded: another thread's stack holds the frames it enters
    /// from then on, and check mode does not compare it.
    All,
}

/// Installs the profile function (alone: the program's, if any, is forgotten) and seeds the calling
/// thread's shadow stack with the frames already running (they will return through it).
///
/// # Safety
/// The caller holds the GIL.
pub unsafe fn install(api: &capi::Api, threads: Threads) {
    // SAFETY: the GIL is held (the contract); `profile_function` has the C signature of a profile
    // function.
    unsafe {
        shadow::register(shadow::Entry {
            function: profile_function,
            take_over,
        });
        let frames = running_frames(api);
        track::with_buffer(|b| {
            let py = &mut b.python().shadow;
            py.frames = frames;
            py.profiling = true;
            py.resync = false;
            py.chained = 0;
        });
        match (threads, api.set_profile_all_threads) {
            (Threads::All, Some(all)) => all(Some(profile_function), std::ptr::null_mut()),
            _ => (api.set_profile)(Some(profile_function), std::ptr::null_mut()),
        }
    }
}
