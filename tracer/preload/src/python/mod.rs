//! Provides the Python side of the tracer: where Python stacks come from (`walk` or `profile`, see
//! `docs/architecture.md`), the `_alloc_tracer` module that turns it on from the bootstrap, and the
//! pymalloc wrappers. Nothing here runs until the interpreter imports the module; before that (and in
//! programs that are not Python) allocations carry no Python stack.

pub mod capi;
pub mod codes;
pub mod layout;
pub mod memory;
pub mod module;
pub mod profile;
pub mod pymem;
pub mod records;
pub mod walk;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

use capi::PyObject;
use layout::Layout;
use walk::{Memory, RawFrame};

use crate::config::StackSource;
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
    /// The stack the capture last recorded for this thread, in chunk `emitted_chunk`.
    pub emitted: Vec<Emitted>,
    pub emitted_chunk: u64,
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
    LAYOUT.get()
}

/// A frame of the chain Python itself reports (`sys._getframe()` and its `f_back`s).
struct Reported {
    code: usize,
    lasti: i32,
    line: i32,
}

/// The frame chain from `frame` outwards, innermost first.
///
/// # Safety
/// The caller holds the GIL; `frame` is the caller's live frame object.
unsafe fn reported_frames(api: &capi::Api, frame: *mut PyObject) -> Vec<Reported> {
    let mut out = Vec::new();
    let mut f = frame;
    (api.incref)(f);
    while !f.is_null() {
        let code = (api.frame_get_code)(f);
        (api.decref)(code);
        out.push(Reported {
            code: code as usize,
            lasti: (api.frame_get_lasti)(f),
            line: (api.frame_get_line_number)(f),
        });
        let back = (api.frame_get_back)(f);
        (api.decref)(f);
        f = back;
    }
    out
}

/// A code object's attribute `name` as a string, through the C API.
///
/// # Safety
/// The caller holds the GIL; `code` is a live code object.
unsafe fn code_attr(api: &capi::Api, code: usize, name: &std::ffi::CStr) -> Option<String> {
    let value = (api.get_attr_string)(code as *mut PyObject, name.as_ptr());
    if value.is_null() {
        (api.err_clear)();
        return None;
    }
    let utf8 = (api.unicode_as_utf8)(value);
    let text = (!utf8.is_null()).then(|| {
        std::ffi::CStr::from_ptr(utf8)
            .to_string_lossy()
            .into_owned()
    });
    if utf8.is_null() {
        (api.err_clear)();
    }
    (api.decref)(value);
    text
}

/// Checks what the layout says of code objects against what Python says of the codes of `frames`
/// (name, file, and the line of each frame's instruction from the line table and first line), reading
/// through checked loads. This is what both stack sources rely on to write code definitions.
///
/// # Safety
/// As for [`reported_frames`].
unsafe fn check_code_layout(
    api: &capi::Api,
    l: &Layout,
    frames: &[Reported],
) -> Result<(), String> {
    let m = &walk::Checked;
    let type_of = |obj: usize| m.word(obj + l.ob_type);
    for f in frames {
        let code = f.code;
        let field = |off: usize| m.word(code + off).ok_or("a code object is unreadable");
        let (qualname, filename, linetable) = (
            field(l.code_qualname)?,
            field(l.code_filename)?,
            field(l.code_linetable)?,
        );
        if type_of(qualname) != Some(api.unicode_type as usize)
            || type_of(filename) != Some(api.unicode_type as usize)
        {
            return Err("a code object's name or file is not a str".into());
        }
        if type_of(linetable) != Some(api.bytes_type as usize) {
            return Err("a code object's line table is not bytes".into());
        }
        for (what, at, attr) in [
            ("name", qualname, c"co_qualname"),
            ("file", filename, c"co_filename"),
        ] {
            let read = walk::read_str(m, l, at).ok_or("a str object is unreadable")?;
            if code_attr(api, code, attr).is_some_and(|expected| expected != read) {
                return Err(format!("a code object's {what} reads as {read:?}"));
            }
        }
        let first_line = m
            .int(code + l.code_first_line)
            .ok_or("unreadable first line")?;
        let table =
            walk::read_linetable(m, l, code, usize::MAX >> 1).ok_or("unreadable line table")?;
        let line = tracer_capture::linetable::line_for_offset(
            &table,
            first_line.max(0) as u32,
            f.lasti.max(0) as u32,
        );
        if f.lasti >= 0 && line.map_or(-1, |l| l as i32) != f.line {
            return Err(format!(
                "line {line:?} from the line table, Python says {}",
                f.line
            ));
        }
    }
    Ok(())
}

/// Compares the walked stack with the frames Python reports (code objects and instruction offsets),
/// reading through checked loads, and bounds each code's first traceable instruction (read where the
/// layout says, not from the offsets table). Any difference means the frame layout is wrong.
///
/// # Safety
/// As for [`reported_frames`].
unsafe fn check_frame_layout(
    api: &capi::Api,
    l: &Layout,
    frames: &[Reported],
) -> Result<(), String> {
    let m = &walk::Checked;
    let tstate = (api.gilstate_this_thread)() as usize;
    let mut walked = Vec::new();
    if tstate == 0 || !walk::walk(m, l, api.code_type as usize, tstate, &mut walked) {
        return Err("a read failed".into());
    }
    walked.reverse();
    let same = walked.len() == frames.len()
        && walked
            .iter()
            .zip(frames)
            .all(|(w, r)| w.code == r.code && i64::from(w.offset) == i64::from(r.lasti));
    if walked.is_empty() || !same {
        return Err(format!(
            "walked {} frames, Python reports {}",
            walked.len(),
            frames.len()
        ));
    }
    for w in &walked {
        let units = m.word(w.code + l.var_size).ok_or("unreadable code size")?;
        let first = m
            .int(w.code + l.code_first_traceable)
            .ok_or("unreadable first instruction")?;
        if first < 0 || first as usize >= units {
            return Err(format!("first traceable instruction {first} of {units}"));
        }
    }
    Ok(())
}

/// The interpreter's layout: from its offsets table (3.13+) or this crate's tables (3.11, 3.12).
fn find_layout(api: &capi::Api) -> Result<Layout, String> {
    let version = layout::parse_version(&api.version).ok_or("an unreadable Python version")?;
    if let Some(table) = layout::table_for(version) {
        return Ok(table.clone());
    }
    let runtime = api.runtime.ok_or("no _PyRuntime symbol")?;
    layout::from_debug_offsets(&walk::Checked, runtime as usize, version).map_err(|e| {
        format!(
            "no frame layout for Python {}.{} ({e})",
            version.0, version.1
        )
    })
}

/// The configured stack source, as the Python side names it.
fn configured_source() -> Source {
    match crate::config::stack_source() {
        StackSource::Walk => Source::Walk,
        StackSource::Profile => Source::Profile,
        StackSource::Noop => Source::Noop,
        StackSource::Check => Source::Check,
    }
}

/// `_alloc_tracer.start(frame)`: finds and checks the interpreter's layout, chooses the stack source
/// (falling back from `walk` to `profile`, with one line on stderr, when the frame layout is unknown or
/// fails the self-check; to no stacks at all when even code objects cannot be read), installs the
/// profile function and the pymalloc wrappers as configured. Returns whether new threads need the
/// profile trampoline.
///
/// # Safety
/// Called by the interpreter with the GIL held.
pub unsafe fn start(api: &capi::Api, frame: *mut PyObject) -> bool {
    if !state::recording() || source() != Source::Off {
        return false;
    }
    let mut source = configured_source();
    CODE_TYPE.store(api.code_type as u64, Relaxed);
    let frames = reported_frames(api, frame);
    let layout = find_layout(api).and_then(|l| {
        check_code_layout(api, &l, &frames)
            .map(|()| l)
            .map_err(|e| format!("code objects do not read as Python says ({e})"))
    });
    match &layout {
        Ok(l) => {
            if matches!(source, Source::Walk | Source::Check) {
                if let Err(e) = check_frame_layout(api, l, &frames) {
                    let untested = if l.tested() {
                        ""
                    } else {
                        ", an untested layout"
                    };
                    state::stderr_line(&format!(
                        "tracer: the frame walk disagrees with sys._getframe() on Python {}.{} ({e}{untested}); using the profile stack source instead\n",
                        l.version.0, l.version.1
                    ));
                    source = Source::Profile;
                }
            }
            let _ = LAYOUT.set(l.clone());
        }
        Err(e) if source != Source::Noop => {
            state::stderr_line(&format!("tracer: {e}; allocations carry no Python stack\n"));
            source = Source::Noop;
        }
        Err(_) => {}
    }
    if matches!(source, Source::Profile | Source::Noop | Source::Check) {
        profile::find_profile_slots(api, frame);
        profile::install(api, profile::Threads::All);
    }
    if crate::config::python_allocators() {
        pymem::install(api);
    }
    if crate::native::enabled() {
        let _guard = crate::tls::Guard::acquire();
        record_eval_loop(api);
    }
    SOURCE.store(source as u8, Relaxed);
    matches!(source, Source::Profile | Source::Noop | Source::Check)
}

/// Native mode: finds where the evaluation loop's code is, for the reader to put Python frames in
/// place of its native frames whatever the interpreter's symbols say (a stripped interpreter names
/// only the loop's entry, while most of its code, split off by the compiler, has no name). Recorded:
/// the exported `_PyEval_EvalFrameDefault`, and the native frames of the current stack that hold an
/// interpreter shim frame in their part of the C stack (each is the loop, entered there).
///
/// # Safety
/// The caller holds the GIL (the walk reads the calling thread's frames).
unsafe fn record_eval_loop(api: &capi::Api) {
    let mut addresses: Vec<u64> = api.eval_frame_default.iter().map(|&p| p as u64).collect();
    let tstate = (api.gilstate_this_thread)() as usize;
    let shims = match (LAYOUT.get(), tstate) {
        (Some(l), t) if t != 0 => walk::shim_frames(&walk::Checked, l, t).unwrap_or_default(),
        _ => Vec::new(),
    };
    let frames = crate::native::frames_with_cfa(crate::native::BUFFER);
    for pair in frames.windows(2) {
        let ((ip, bottom), (_, top)) = (pair[0], pair[1]);
        if shims.iter().any(|&s| (bottom..top).contains(&s)) {
            // A return address: the call before it is inside the loop.
            let inside = ip as u64 - 1;
            if !addresses.contains(&inside) {
                addresses.push(inside);
            }
        }
    }
    crate::native::set_eval_loop(addresses);
}

/// In a fork child: the new capture must define its code objects again.
pub fn after_fork_in_child() {
    codes::reset();
}
