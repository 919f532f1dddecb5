//! Defines the `_alloc_tracer` extension module. The bootstrap (`sitecustomize.py`, put on `PYTHONPATH`
//! by `tracer run`/`tracer env`) imports it through a symlink to this same library: glibc sees the
//! same file and hands back the already loaded copy, so the module shares the preload's state.
//!
//! Functions: `start(frame)` turns the Python side on (stack source, self-check, allocator wrappers)
//! and returns whether threads need the profile trampoline; `thread_trampoline(frame, event, arg)` is
//! what `threading.setprofile` installs in new threads to put the native profile function in place;
//! `wrap_sys(sys)`, `set_thread_profile(func)` and `thread_profile()` let the program's own
//! `sys.setprofile` and `threading.setprofile`/`getprofile` chain behind the tracer's (`profile.rs`).

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use super::capi::{self, PyObject};
use super::layout::{self, Layout};
use super::walk::{self, Memory};
use super::{profile, pymem, Source};
use crate::config::{self, StackSource};
use crate::{python, state};

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
    // SAFETY: the GIL is held and `frame` is live (the contract); each frame is held by a reference
    // (taken here, or returned new by `PyFrame_GetBack`) while it is read, and released after.
    unsafe {
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
}

/// A code object's attribute `name` as a string, through the C API.
///
/// # Safety
/// The caller holds the GIL; `code` is a live code object.
unsafe fn code_attr(api: &capi::Api, code: usize, name: &std::ffi::CStr) -> Option<String> {
    // SAFETY: the GIL is held and `code` is live (the contract); the attribute is a new reference,
    // released after its UTF-8 text (which it owns) is copied.
    unsafe {
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
            // SAFETY: the GIL is held and the frame's code object is live (the contract).
            if unsafe { code_attr(api, code, attr) }.is_some_and(|expected| expected != read) {
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
    // SAFETY: PyGILState_GetThisThreadState only reads the calling thread's TSS slot.
    let tstate = unsafe { (api.gilstate_this_thread)() } as usize;
    let (mut walked, mut words) = (Vec::new(), Vec::new());
    if tstate == 0
        || !walk::walk(
            m,
            l,
            api.code_type as usize,
            tstate,
            &mut walked,
            &mut words,
        )
    {
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
    match config::stack_source() {
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
unsafe fn start_python(api: &capi::Api, frame: *mut PyObject) -> bool {
    // SAFETY: called from `_alloc_tracer.start` with the GIL held (the contract), which is what each
    // C API call and helper here asks; `frame` is the bootstrap's live frame.
    unsafe {
        if !state::recording() || python::source() != Source::Off {
            return false;
        }
        let mut source = configured_source();
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
            }
            Err(e) if source != Source::Noop => {
                state::stderr_line(&format!("tracer: {e}; allocations carry no Python stack\n"));
                source = Source::Noop;
            }
            Err(_) => {}
        }
        python::set_layout(layout.ok(), api.code_type as usize);
        if matches!(source, Source::Profile | Source::Noop | Source::Check) {
            profile::find_profile_slots(api, frame);
            profile::install(api, profile::Threads::All);
        }
        if config::python_allocators() {
            pymem::install(api);
        }
        if crate::native::enabled() {
            let _guard = crate::tls::Guard::acquire();
            record_eval_loop(api);
        }
        python::set_source(source);
        matches!(source, Source::Profile | Source::Noop | Source::Check)
    }
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
    // SAFETY: PyGILState_GetThisThreadState only reads the calling thread's TSS slot.
    let tstate = unsafe { (api.gilstate_this_thread)() } as usize;
    let shims = match (python::layout(), tstate) {
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

/// `PyMethodDef`.
#[repr(C)]
struct MethodDef {
    name: *const c_char,
    function: *const c_void,
    flags: c_int,
    doc: *const c_char,
}

/// `PyModuleDef` (with its `PyModuleDef_Base` spelled out).
#[repr(C)]
struct ModuleDef {
    ob_refcnt: isize,
    ob_type: *mut c_void,
    m_init: *mut c_void,
    m_index: isize,
    m_copy: *mut c_void,
    m_name: *const c_char,
    m_doc: *const c_char,
    m_size: isize,
    m_methods: *mut MethodDef,
    m_slots: *mut c_void,
    m_traverse: *mut c_void,
    m_clear: *mut c_void,
    m_free: *mut c_void,
}

const METH_VARARGS: c_int = 1;
const METH_NOARGS: c_int = 4;
const METH_O: c_int = 8;
const PYTHON_API_VERSION: c_int = 1013;

/// # Safety
/// Called by CPython as a method of `_alloc_tracer` (`METH_O`: `frame` is the bootstrap's live
/// frame), with the GIL held.
unsafe extern "C" fn start(_module: *mut PyObject, frame: *mut PyObject) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held (the contract); the result is a new reference.
    unsafe {
        let Some(api) = capi::get() else {
            return std::ptr::null_mut();
        };
        let needs_trampoline = start_python(api, frame);
        let result = if needs_trampoline {
            api.true_
        } else {
            api.none
        };
        (api.incref)(result);
        result
    }
}

/// # Safety
/// Called by CPython as a method of `_alloc_tracer` (`METH_VARARGS`: `args` is the live tuple
/// (frame, event, arg) of a profile call), with the GIL held.
unsafe extern "C" fn thread_trampoline(
    _module: *mut PyObject,
    args: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held (the contract); references are taken and dropped in
    // pairs, and `hook` is kept alive by the reference taken on it while it is called.
    unsafe {
        let Some(api) = capi::get() else {
            return std::ptr::null_mut();
        };
        super::profile::install(api, super::profile::Threads::This);
        // The function the program gave `threading.setprofile`, chained behind the tracer's; it also
        // gets this first event (frame, event, arg), which it would have seen untraced.
        let hook = THREAD_HOOK.load(Relaxed);
        if !hook.is_null() {
            (api.incref)(hook);
            let installed = super::profile::setprofile(std::ptr::null_mut(), hook);
            let result = if installed.is_null() {
                installed
            } else {
                (api.decref)(installed);
                (api.call)(hook, args, std::ptr::null_mut())
            };
            (api.decref)(hook);
            if result.is_null() {
                return result;
            }
            (api.decref)(result);
        }
        (api.incref)(api.none);
        api.none
    }
}

/// What the program passed to `threading.setprofile` (owned reference; null: None).
static THREAD_HOOK: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// `set_thread_profile(func)`: `threading.setprofile` as the program sees it.
///
/// # Safety
/// Called by CPython as a method of `_alloc_tracer` (`METH_O`: `func` is a live object), with the
/// GIL held.
unsafe extern "C" fn set_thread_profile(
    _module: *mut PyObject,
    func: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held (the contract); THREAD_HOOK owns one reference to
    // the object it holds.
    unsafe {
        let Some(api) = capi::get() else {
            return std::ptr::null_mut();
        };
        let new = if func == api.none {
            std::ptr::null_mut()
        } else {
            (api.incref)(func);
            func
        };
        let old = THREAD_HOOK.swap(new, Relaxed);
        if !old.is_null() {
            (api.decref)(old);
        }
        (api.incref)(api.none);
        api.none
    }
}

/// `thread_profile()`: `threading.getprofile` as the program sees it.
///
/// # Safety
/// Called by CPython as a method of `_alloc_tracer` (`METH_NOARGS`), with the GIL held.
unsafe extern "C" fn thread_profile(_module: *mut PyObject, _: *mut PyObject) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held (the contract); the result is a new reference.
    unsafe {
        let Some(api) = capi::get() else {
            return std::ptr::null_mut();
        };
        let hook = THREAD_HOOK.load(Relaxed);
        let result = if hook.is_null() { api.none } else { hook };
        (api.incref)(result);
        result
    }
}

/// `wrap_sys(sys)`: replaces `sys.setprofile` with the tracer's (see `profile.rs`).
///
/// # Safety
/// Called by CPython as a method of `_alloc_tracer` (`METH_O`: `sys` is the sys module), with the
/// GIL held.
unsafe extern "C" fn wrap_sys(_module: *mut PyObject, sys: *mut PyObject) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held (the contract); `SETPROFILE` is a static
    // `PyMethodDef`, which lives for ever.
    unsafe {
        let Some(api) = capi::get() else {
            return std::ptr::null_mut();
        };
        let def = std::ptr::addr_of_mut!(SETPROFILE).cast();
        let result = if super::profile::wrap_sys_setprofile(api, sys, def) {
            api.true_
        } else {
            api.none
        };
        (api.incref)(result);
        result
    }
}

/// `sys.setprofile` as the tracer provides it (a function of `sys`, named the same).
static mut SETPROFILE: MethodDef = MethodDef {
    name: c"setprofile".as_ptr(),
    function: super::profile::setprofile as *const c_void,
    flags: METH_O,
    doc: c"Set the profiling function. It will be called on each function call and return. See the profiler chapter in the library manual.".as_ptr(),
};

static mut METHODS: [MethodDef; 6] = [
    MethodDef {
        name: c"start".as_ptr(),
        function: start as *const c_void,
        flags: METH_O,
        doc: std::ptr::null(),
    },
    MethodDef {
        name: c"thread_trampoline".as_ptr(),
        function: thread_trampoline as *const c_void,
        flags: METH_VARARGS,
        doc: std::ptr::null(),
    },
    MethodDef {
        name: c"set_thread_profile".as_ptr(),
        function: set_thread_profile as *const c_void,
        flags: METH_O,
        doc: std::ptr::null(),
    },
    MethodDef {
        name: c"thread_profile".as_ptr(),
        function: thread_profile as *const c_void,
        flags: METH_NOARGS,
        doc: std::ptr::null(),
    },
    MethodDef {
        name: c"wrap_sys".as_ptr(),
        function: wrap_sys as *const c_void,
        flags: METH_O,
        doc: std::ptr::null(),
    },
    MethodDef {
        name: std::ptr::null(),
        function: std::ptr::null(),
        flags: 0,
        doc: std::ptr::null(),
    },
];

static mut MODULE: ModuleDef = ModuleDef {
    ob_refcnt: 1,
    ob_type: std::ptr::null_mut(),
    m_init: std::ptr::null_mut(),
    m_index: 0,
    m_copy: std::ptr::null_mut(),
    m_name: c"_alloc_tracer".as_ptr(),
    m_doc: c"The allocation tracer's interpreter hooks (imported by its bootstrap).".as_ptr(),
    m_size: -1,
    m_methods: std::ptr::null_mut(),
    m_slots: std::ptr::null_mut(),
    m_traverse: std::ptr::null_mut(),
    m_clear: std::ptr::null_mut(),
    m_free: std::ptr::null_mut(),
};

/// The module's init function, found by the import system by name.
///
/// # Safety
/// Called by CPython's import system, with the GIL held.
#[no_mangle]
pub unsafe extern "C" fn PyInit__alloc_tracer() -> *mut PyObject {
    let Some(api) = capi::get() else {
        return std::ptr::null_mut();
    };
    // SAFETY: CPython calls module init functions with the GIL held, once per import; the statics are
    // only touched here and then owned by the interpreter.
    unsafe {
        let module = std::ptr::addr_of_mut!(MODULE);
        (*module).m_methods = std::ptr::addr_of_mut!(METHODS).cast();
        (api.module_create)(module.cast(), PYTHON_API_VERSION)
    }
}
