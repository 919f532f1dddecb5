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

unsafe extern "C" fn start(_module: *mut PyObject, frame: *mut PyObject) -> *mut PyObject {
    let Some(api) = capi::get() else {
        return std::ptr::null_mut();
    };
    let needs_trampoline = super::start(api, frame);
    let result = if needs_trampoline {
        api.true_
    } else {
        api.none
    };
    (api.incref)(result);
    result
}

unsafe extern "C" fn thread_trampoline(
    _module: *mut PyObject,
    args: *mut PyObject,
) -> *mut PyObject {
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

/// What the program passed to `threading.setprofile` (owned reference; null: None).
static THREAD_HOOK: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// `set_thread_profile(func)`: `threading.setprofile` as the program sees it.
unsafe extern "C" fn set_thread_profile(
    _module: *mut PyObject,
    func: *mut PyObject,
) -> *mut PyObject {
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

/// `thread_profile()`: `threading.getprofile` as the program sees it.
unsafe extern "C" fn thread_profile(_module: *mut PyObject, _: *mut PyObject) -> *mut PyObject {
    let Some(api) = capi::get() else {
        return std::ptr::null_mut();
    };
    let hook = THREAD_HOOK.load(Relaxed);
    let result = if hook.is_null() { api.none } else { hook };
    (api.incref)(result);
    result
}

/// `wrap_sys(sys)`: replaces `sys.setprofile` with the tracer's (see `profile.rs`).
unsafe extern "C" fn wrap_sys(_module: *mut PyObject, sys: *mut PyObject) -> *mut PyObject {
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
    let module = std::ptr::addr_of_mut!(MODULE);
    (*module).m_methods = std::ptr::addr_of_mut!(METHODS).cast();
    (api.module_create)(module.cast(), PYTHON_API_VERSION)
}
