//! Provides the Python side of the tracer: where Python stacks come from (`walk` or `profile`, see
//! `docs/architecture.md`), the `_alloc_tracer` module that turns it on from the bootstrap, and the
//! pymalloc wrappers. Nothing here runs until the interpreter imports the module; before that (and in
//! programs that are not Python) allocations carry no Python stack.

pub mod capi;
pub mod codes;
pub mod layout;
pub mod module;
pub mod profile;
pub mod pymem;
pub mod walk;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

use capi::PyObject;
use layout::Layout;
use walk::RawFrame;

use crate::state;

/// Where allocation records get their Python stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Source {
    /// Python not started (or not Python): no stacks.
    Off = 0,
    Walk = 1,
    Profile = 2,
    /// The profile function installed, doing nothing; allocations carry no stack.
    Noop = 3,
    /// Both sources: the walked stack is recorded, and compared with the profiled one.
    Check = 4,
}

static SOURCE: AtomicU8 = AtomicU8::new(Source::Off as u8);
static LAYOUT: OnceLock<&'static Layout> = OnceLock::new();
static CODE_TYPE: AtomicU64 = AtomicU64::new(0);

/// Check mode's results, written in the end record.
pub static CHECKED: AtomicU64 = AtomicU64::new(0);
pub static CHECK_SKIPPED: AtomicU64 = AtomicU64::new(0);
pub static MISMATCHES: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
pub fn source() -> Source {
    match SOURCE.load(Relaxed) {
        1 => Source::Walk,
        2 => Source::Profile,
        3 => Source::Noop,
        4 => Source::Check,
        _ => Source::Off,
    }
}

/// A frame of the stack last recorded.
#[derive(Debug, Clone, Copy)]
pub struct Emitted {
    pub code: usize,
    pub id: u32,
    pub offset: u32,
    /// The code's lines are sent one by one (see `codes::INLINE_TABLE_MAX`).
    pub one_by_one: bool,
    /// Tells this code object from another one later at the same address.
    pub fingerprint: codes::Fingerprint,
}

/// Per-thread Python state, kept in the thread's buffer.
#[derive(Default)]
pub struct PyThread {
    /// The profile source's shadow stack.
    pub shadow: Vec<profile::ShadowFrame>,
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
    /// The stack the capture last recorded for this thread (since the chunk began).
    pub emitted: Vec<Emitted>,
    pub scratch: Vec<RawFrame>,
    pub other: Vec<RawFrame>,
    pub ids: Vec<(u32, bool)>,
    /// (code id, offset) pairs whose line this thread has sent (for codes whose lines go one by one).
    pub lines_sent: rustc_hash::FxHashSet<(u32, u32)>,
}

/// The calling thread's Python stack from the walk source, outermost first.
pub fn walked_stack(out: &mut Vec<RawFrame>) {
    out.clear();
    let (Some(l), Some(api)) = (LAYOUT.get(), capi::loaded()) else {
        return;
    };
    // SAFETY: PyGILState_GetThisThreadState only reads the calling thread's TSS slot (NULL before the
    // interpreter starts and after it is finalised).
    let tstate = unsafe { (api.gilstate_this_thread)() } as usize;
    if tstate != 0 {
        walk::walk(
            &walk::Direct,
            l,
            CODE_TYPE.load(Relaxed) as usize,
            tstate,
            out,
        );
    }
}

/// The calling thread's stack from `source` (walk or profile).
pub fn current_stack(source: Source, py: &mut PyThread) {
    let mut out = std::mem::take(&mut py.scratch);
    match source {
        Source::Walk | Source::Check => walked_stack(&mut out),
        Source::Profile => {
            if profile::shadow_is_current(py) {
                profile::stack(&py.shadow, &mut out)
            } else {
                walked_stack(&mut out)
            }
        }
        Source::Off | Source::Noop => out.clear(),
    }
    py.scratch = out;
}

pub fn layout() -> Option<&'static Layout> {
    LAYOUT.get().copied()
}

/// Compares a walked stack with the frame chain Python itself reports for `frame` (the bootstrap's
/// `sys._getframe()`), reading through checked loads. Any difference means the layout is wrong.
///
/// # Safety
/// The caller holds the GIL; `frame` is the caller's live frame object.
unsafe fn self_check(api: &capi::Api, l: &Layout, frame: *mut PyObject) -> bool {
    let tstate = (api.gilstate_this_thread)() as usize;
    let mut walked = Vec::new();
    if tstate == 0
        || !walk::walk(
            &walk::Checked,
            l,
            api.code_type as usize,
            tstate,
            &mut walked,
        )
    {
        return false;
    }
    let mut expected = Vec::new();
    let mut f = frame;
    (api.incref)(f);
    while !f.is_null() {
        let code = (api.frame_get_code)(f);
        (api.decref)(code);
        expected.push(code as usize);
        let back = (api.frame_get_back)(f);
        (api.decref)(f);
        f = back;
    }
    expected.reverse();
    !walked.is_empty() && walked.iter().map(|w| w.code).eq(expected)
}

fn stack_source_from_env() -> Source {
    match std::env::var("TRACER_STACK_SOURCE").as_deref() {
        Ok("profile") => Source::Profile,
        Ok("noop") => Source::Noop,
        Ok("check") => Source::Check,
        _ => Source::Walk,
    }
}

/// `_alloc_tracer.start(frame)`: chooses the stack source (falling back from `walk` to `profile`, with
/// one line on stderr, when the interpreter's layout is unknown or fails the self-check), installs the
/// profile function and the pymalloc wrappers as configured. Returns whether new threads need the
/// profile trampoline.
///
/// # Safety
/// Called by the interpreter with the GIL held.
pub unsafe fn start(api: &capi::Api, frame: *mut PyObject) -> bool {
    if !state::recording() || source() != Source::Off {
        return false;
    }
    let mut source = stack_source_from_env();
    CODE_TYPE.store(api.code_type as u64, Relaxed);
    let layout = layout::for_version(&api.version);
    if matches!(source, Source::Walk | Source::Check) {
        let reason = match layout {
            None => Some("no frame layout for this Python version".to_string()),
            Some(l) if !self_check(api, l, frame) => Some(format!(
                "the frame walk disagrees with sys._getframe() on Python {}.{}{}",
                l.version.0,
                l.version.1,
                if l.tested {
                    ""
                } else {
                    " (an untested layout)"
                }
            )),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            state::stderr_line(&format!(
                "tracer: {reason}; using the profile stack source instead\n"
            ));
            source = Source::Profile;
        }
    }
    if let Some(l) = layout {
        let _ = LAYOUT.set(l);
    } else if source == Source::Profile {
        state::stderr_line(
            "tracer: this Python version has no frame layout; allocations carry no Python stack\n",
        );
        source = Source::Noop;
    }
    if matches!(source, Source::Profile | Source::Noop | Source::Check) {
        profile::find_profile_slots(api, frame);
        profile::install_on_this_thread(api);
    }
    if crate::config::python_allocators() {
        pymem::install(api);
    }
    SOURCE.store(source as u8, Relaxed);
    matches!(source, Source::Profile | Source::Noop | Source::Check)
}

/// In a fork child: the new capture must define its code objects again.
pub fn after_fork_in_child() {
    codes::reset();
}
