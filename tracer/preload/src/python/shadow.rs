//! Holds the `profile` stack source's per-thread state (the shadow stack and whether it can be
//! trusted) and everything the recorder reads of it: the stack as frames with offsets, whether the
//! tracer's profile function is still in place (put back when the program displaced it), and whether
//! CPython is inside a trace function. The entry layer (`profile.rs`: the profile function and its
//! installers) writes this state; the recorder (`records.rs`, `python::current_stack`) reads it, and
//! so never calls up into the entry layer. Where the tracer's function and its re-install live is
//! handed down once, by [`register`], when the profile function is first installed.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use super::capi::{self, ProfileFunc, PyObject};
use super::walk::{self, RawFrame};

/// A frame on the shadow stack. The frame object is borrowed: it lives as long as its frame runs,
/// and the frame is popped when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowFrame {
    pub frame: usize,
    pub code: usize,
}

/// A thread's profile-source state, kept in its `PyThread`.
#[derive(Default)]
pub struct Shadow {
    /// The frames being run, outermost first, as the profile function saw them enter.
    pub frames: Vec<ShadowFrame>,
    /// The profile function is installed on this thread (a new thread runs a few frames of
    /// `threading` before it is, which the profile source cannot see).
    pub profiling: bool,
    /// The program's own profile function (`c_profilefunc`), which the tracer's calls on every event
    /// while the program has one set (0: none). See `profile.rs`.
    pub chained: usize,
    /// The shadow stack missed events (the program's profiler displaced the tracer's function for a
    /// while): rebuilt from the frames at the next profile event; until then stacks are walked.
    pub resync: bool,
    /// Inside the program's profile function (its frames are invisible to the profile source).
    pub in_chained: bool,
    /// The next event is the `c_return` of the `sys.setprofile` call that installed the program's
    /// first function, which it would not see untraced.
    pub skip_c_return: bool,
}

/// What the entry layer hands down: the tracer's profile function (the value it puts in
/// `c_profilefunc`) and what puts it back in front of the thread's function (`profile::take_over`).
pub struct Entry {
    pub function: ProfileFunc,
    /// # Safety
    /// Called with the GIL held.
    pub take_over: unsafe fn(&capi::Api),
}

static ENTRY: OnceLock<Entry> = OnceLock::new();

/// Records the entry layer's functions (the first call wins; they never change).
pub fn register(entry: Entry) {
    let _ = ENTRY.set(entry);
}

/// Offsets of `c_profilefunc` and `c_profileobj` in the thread state (0: unknown).
pub static PROFILE_FUNC_SLOT: AtomicUsize = AtomicUsize::new(0);
pub static PROFILE_OBJ_SLOT: AtomicUsize = AtomicUsize::new(0);
/// Offset of the thread state's `tracing` counter (CPython runs a trace or profile function while it
/// is not 0, and delivers no profile events then), and whether it was confirmed.
static TRACING_SLOT: AtomicUsize = AtomicUsize::new(0);
static TRACING_CHECK: AtomicU8 = AtomicU8::new(TRACING_UNUSABLE);
/// How far before `c_profilefunc` `tracing` may be (20 bytes in 3.11 to 3.14, 40 in 3.15), and which
/// of those read 0 at start-up (bits).
pub const TRACING_CANDIDATES: [usize; 9] = [16, 20, 24, 28, 32, 36, 40, 44, 48];
static TRACING_ZERO: AtomicU16 = AtomicU16::new(0);
const TRACING_UNUSABLE: u8 = 0;
const TRACING_UNVERIFIED: u8 = 1;
const TRACING_OK: u8 = 2;

/// Some thread has chained a function of the program's (the `noop` source then does more than nothing).
pub static ANY_CHAINED: AtomicBool = AtomicBool::new(false);
/// A re-install is scheduled with `Py_AddPendingCall`.
static REINSTALL_PENDING: AtomicBool = AtomicBool::new(false);

/// Records where the thread state keeps the profile function and its object (found by
/// `profile::find_profile_slots`), and which `tracing` candidates read 0 (bit i for
/// `TRACING_CANDIDATES[i]`); the first return event picks among them ([`verify_tracing_slot`]).
pub fn set_slots(func: usize, obj: usize, tracing_zero: u16) {
    PROFILE_FUNC_SLOT.store(func, Relaxed);
    PROFILE_OBJ_SLOT.store(obj, Relaxed);
    TRACING_SLOT.store(func, Relaxed);
    TRACING_ZERO.store(tracing_zero, Relaxed);
    TRACING_CHECK.store(TRACING_UNVERIFIED, Relaxed);
}

/// Whether the `tracing` counter's offset still waits for [`verify_tracing_slot`].
#[inline]
pub fn tracing_unverified() -> bool {
    TRACING_CHECK.load(Relaxed) == TRACING_UNVERIFIED
}

/// Inside a return event (`what` 3) `tracing` is 1 and `what_event` is 3: picks the candidate that
/// went from 0 to 1 (once). Until then `TRACING_SLOT` holds the offset of `c_profilefunc`.
pub fn verify_tracing_slot() {
    let Some(api) = capi::loaded() else { return };
    let func = TRACING_SLOT.load(Relaxed);
    let zero = TRACING_ZERO.load(Relaxed);
    // SAFETY: reads this thread's own live thread state at offsets inside it.
    let found = unsafe {
        let tstate = (api.gilstate_this_thread)() as usize;
        let mut ones = TRACING_CANDIDATES.iter().enumerate().filter(|&(i, &back)| {
            zero & (1 << i) != 0
                && tstate != 0
                && ((tstate + func - back) as *const i32).read() == 1
        });
        // Exactly one candidate, or none is trusted.
        match (ones.next(), ones.next()) {
            (Some((_, &back)), None) => Some(back),
            _ => None,
        }
    };
    match found {
        Some(back) => {
            TRACING_SLOT.store(func - back, Relaxed);
            TRACING_CHECK.store(TRACING_OK, Relaxed);
        }
        None => TRACING_CHECK.store(TRACING_UNUSABLE, Relaxed),
    }
}

/// Whether CPython is running a trace or profile function on this thread now (coverage's trace
/// function calling back into Python, say): frames it runs never reach a profile function.
pub fn inside_a_trace_function() -> bool {
    if TRACING_CHECK.load(Relaxed) != TRACING_OK {
        return false;
    }
    let Some(api) = capi::loaded() else {
        return false;
    };
    // SAFETY: reads this thread's own live thread state at the confirmed offset.
    unsafe {
        let tstate = (api.gilstate_this_thread)() as usize;
        tstate != 0 && ((tstate + TRACING_SLOT.load(Relaxed)) as *const i32).read() > 0
    }
}

/// Whether the shadow stack describes the thread now: the tracer's function is in place (checked here,
/// put back if the program displaced it) and no event was missed.
pub fn shadow_is_current(shadow: &mut Shadow) -> bool {
    if shadow.profiling && !shadow.resync {
        check_in_place(shadow);
    }
    !shadow.resync
}

/// Puts the tracer's function back in front of one the program installed through the C API (found
/// in place of ours in `c_profilefunc`), or schedules its re-install if the program removed it.
fn check_in_place(shadow: &mut Shadow) {
    let slot = PROFILE_FUNC_SLOT.load(Relaxed);
    let (Some(api), Some(entry)) = (capi::loaded(), ENTRY.get()) else {
        return;
    };
    // SAFETY: PyGILState_Check and PyGILState_GetThisThreadState only read this thread's state.
    let tstate = unsafe {
        if slot == 0 || (api.gil_check)() == 0 {
            return;
        }
        (api.gilstate_this_thread)() as usize
    };
    if tstate == 0 {
        return;
    }
    let ours = entry.function as usize;
    // SAFETY: `slot` is the offset of `c_profilefunc` in this thread's live thread state, found by
    // `find_profile_slots`; this thread holds the GIL, so no other thread writes it now.
    unsafe {
        let func = ((tstate + slot) as *mut usize).read();
        if func == ours {
            return;
        }
        if func != 0 {
            // The program's object stays in `c_profileobj`: ours passes it on.
            ((tstate + slot) as *mut usize).write(ours);
            shadow.chained = func;
            ANY_CHAINED.store(true, Relaxed);
        } else {
            shadow.chained = 0;
            schedule_reinstall(api);
        }
    }
    shadow.resync = true;
}

fn schedule_reinstall(api: &capi::Api) {
    if REINSTALL_PENDING.swap(true, Relaxed) {
        return;
    }
    // SAFETY: Py_AddPendingCall may be called from any thread, with or without the GIL; it
    // allocates nothing (a fixed queue under a lock).
    if unsafe { (api.add_pending_call)(reinstall, std::ptr::null_mut()) } != 0 {
        REINSTALL_PENDING.store(false, Relaxed);
    }
}

/// Runs on the main thread at a safe point: re-installs the tracer's function there if it is gone.
///
/// # Safety
/// Called by CPython as a pending call: on the main thread, with the GIL held.
unsafe extern "C" fn reinstall(_: *mut c_void) -> c_int {
    REINSTALL_PENDING.store(false, Relaxed);
    if let (Some(api), Some(entry)) = (capi::loaded(), ENTRY.get()) {
        // SAFETY: pending calls run with the GIL held, which is `take_over`'s contract.
        unsafe { (entry.take_over)(api) };
    }
    0
}

/// The shadow stack as frames with offsets, outermost first.
pub fn stack(frames: &[ShadowFrame], out: &mut Vec<RawFrame>) {
    out.clear();
    let Some(api) = capi::loaded() else { return };
    let skip = frames.len().saturating_sub(walk::MAX_DEPTH);
    for f in &frames[skip..] {
        // SAFETY: frames on the shadow stack are running, so their frame objects are alive.
        let lasti = unsafe { (api.frame_get_lasti)(f.frame as *mut PyObject) };
        out.push(RawFrame {
            code: f.code,
            offset: lasti.max(0) as u32,
        });
    }
}
