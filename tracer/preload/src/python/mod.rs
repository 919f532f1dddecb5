//! Provides the Python side of the tracer: where Python stacks come from (`walk` or `profile`, see
//! `docs/architecture.md`), and the per-thread Python state (`PyThread`). Its submodules hold the
//! entry points the interpreter calls (`module`: `_alloc_tracer` and its `start`; `profile`: the
//! profile function; `pymem`: the pymalloc wrappers) and what the recorder reads (`records`,
//! `shadow`, `codes`, `walk`, `layout`, `capi`, `memory`). Nothing here runs until the interpreter
//! imports the module; before that (and in programs that are not Python) allocations carry no Python
//! stack.

pub mod capi;
pub mod codes;
pub mod layout;
pub mod memory;
pub mod module;
pub mod profile;
pub mod pymem;
pub mod records;
pub mod shadow;
pub mod walk;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

use layout::Layout;
use walk::{FrameWords, RawFrame};

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
static LAYOUT: OnceLock<Layout> = OnceLock::new();
static CODE_TYPE: AtomicU64 = AtomicU64::new(0);

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
    /// The frame's words when the walk recorded it (all zero from the slow walk or the profile
    /// source, which match no frame): equal words next time mean the same frame of the stack.
    pub words: FrameWords,
}

/// Per-thread Python state, kept in the thread's buffer.
#[derive(Default)]
pub struct PyThread {
    /// The profile source's state: the shadow stack, and whether it can be trusted.
    pub shadow: shadow::Shadow,
    /// The stack the capture last recorded for this thread, in chunk `emitted_chunk`.
    pub emitted: Vec<Emitted>,
    pub emitted_chunk: u64,
    pub scratch: Vec<RawFrame>,
    /// The words of the frames in `scratch` (aligned with it), when they were walked.
    pub words: Vec<FrameWords>,
    pub other: Vec<RawFrame>,
    pub ids: Vec<(u32, bool)>,
    /// (code id, offset) pairs whose line this thread has sent (for codes whose lines go one by one).
    pub lines_sent: rustc_hash::FxHashSet<(u32, u32)>,
}

/// The calling thread's state (its `PyThreadState`), if Python runs on it.
pub fn this_thread_state() -> Option<usize> {
    let api = capi::loaded()?;
    // SAFETY: PyGILState_GetThisThreadState only reads the calling thread's TSS slot (NULL before the
    // interpreter starts and after it is finalised).
    let tstate = unsafe { (api.gilstate_this_thread)() } as usize;
    (tstate != 0).then_some(tstate)
}

/// The calling thread's Python stack from the walk source, outermost first, and its frames' words.
pub fn walked_stack(out: &mut Vec<RawFrame>, words: &mut Vec<FrameWords>) {
    out.clear();
    words.clear();
    let (Some(l), Some(tstate)) = (LAYOUT.get(), this_thread_state()) else {
        return;
    };
    walk::walk(&walk::Direct, l, code_type(), tstate, out, words);
}

/// The type of code objects (`PyCode_Type`'s address).
pub fn code_type() -> usize {
    CODE_TYPE.load(Relaxed) as usize
}

/// The calling thread's stack from `source` (walk or profile) into `py.scratch`, and the frames'
/// words into `py.words` when it was walked (empty from the shadow stack).
pub fn current_stack(source: Source, py: &mut PyThread) {
    let mut out = std::mem::take(&mut py.scratch);
    py.words.clear();
    match source {
        Source::Walk | Source::Check => walked_stack(&mut out, &mut py.words),
        Source::Profile => {
            if shadow::shadow_is_current(&mut py.shadow) {
                shadow::stack(&py.shadow.frames, &mut out)
            } else {
                walked_stack(&mut out, &mut py.words)
            }
        }
        Source::Off | Source::Noop => out.clear(),
    }
    py.scratch = out;
}

pub fn layout() -> Option<&'static Layout> {
    LAYOUT.get()
}

/// Sets what `_alloc_tracer.start` found (`module.rs`): the interpreter's layout, if it reads as
/// Python says, and the type of code objects.
pub fn set_layout(layout: Option<Layout>, code_type: usize) {
    CODE_TYPE.store(code_type as u64, Relaxed);
    if let Some(l) = layout {
        let _ = LAYOUT.set(l);
    }
}

/// Turns the stack source on (once, at the end of `_alloc_tracer.start`).
pub fn set_source(source: Source) {
    SOURCE.store(source as u8, Relaxed);
}

/// In a fork child: the new capture must define its code objects again.
pub fn after_fork_in_child() {
    codes::reset();
}
