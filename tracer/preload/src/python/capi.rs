//! Provides the CPython C API, looked up with `dlsym` when the `_alloc_tracer` module starts: the
//! library never links against libpython, so it loads into any program and into a static or shared
//! interpreter alike.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

pub type PyObject = c_void;
pub type ProfileFunc =
    unsafe extern "C" fn(*mut PyObject, *mut PyObject, c_int, *mut PyObject) -> c_int;

pub const PYTRACE_CALL: c_int = 0;
pub const PYTRACE_RETURN: c_int = 3;
pub const PYTRACE_C_RETURN: c_int = 6;

/// `PyMemAllocatorEx`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemAllocator {
    pub ctx: *mut c_void,
    pub malloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    pub calloc: unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
    pub realloc: unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> *mut c_void,
    pub free: unsafe extern "C" fn(*mut c_void, *mut c_void),
}

pub const PYMEM_DOMAIN_MEM: c_int = 1;
pub const PYMEM_DOMAIN_OBJ: c_int = 2;

pub struct Api {
    pub version: String,
    pub gilstate_this_thread: unsafe extern "C" fn() -> *mut c_void,
    pub set_profile: unsafe extern "C" fn(Option<ProfileFunc>, *mut PyObject),
    /// `PyEval_SetProfileAllThreads` (3.12 and later).
    pub set_profile_all_threads: Option<unsafe extern "C" fn(Option<ProfileFunc>, *mut PyObject)>,
    pub eval_get_frame: unsafe extern "C" fn() -> *mut PyObject,
    pub frame_get_back: unsafe extern "C" fn(*mut PyObject) -> *mut PyObject,
    pub frame_get_code: unsafe extern "C" fn(*mut PyObject) -> *mut PyObject,
    pub frame_get_lasti: unsafe extern "C" fn(*mut PyObject) -> c_int,
    pub frame_get_line_number: unsafe extern "C" fn(*mut PyObject) -> c_int,
    pub get_attr_string: unsafe extern "C" fn(*mut PyObject, *const c_char) -> *mut PyObject,
    pub unicode_as_utf8: unsafe extern "C" fn(*mut PyObject) -> *const c_char,
    pub err_clear: unsafe extern "C" fn(),
    pub decref: unsafe extern "C" fn(*mut PyObject),
    pub incref: unsafe extern "C" fn(*mut PyObject),
    pub none: *mut PyObject,
    pub true_: *mut PyObject,
    pub code_type: *mut c_void,
    pub unicode_type: *mut c_void,
    pub bytes_type: *mut c_void,
    /// `_PyRuntime`, whose first field is `_Py_DebugOffsets` from 3.13 on.
    pub runtime: Option<*mut c_void>,
    /// `_PyEval_EvalFrameDefault`, the evaluation loop (exported by most builds).
    pub eval_frame_default: Option<*mut c_void>,
    pub module_create: unsafe extern "C" fn(*mut c_void, c_int) -> *mut PyObject,
    pub mem_get_allocator: unsafe extern "C" fn(c_int, *mut MemAllocator),
    pub mem_set_allocator: unsafe extern "C" fn(c_int, *mut MemAllocator),
    /// For the profile source's coexistence with the program's own profilers (`profile.rs`).
    pub gil_check: unsafe extern "C" fn() -> c_int,
    pub add_pending_call: unsafe extern "C" fn(PendingCall, *mut c_void) -> c_int,
    pub call_function_obj_args: unsafe extern "C" fn(*mut PyObject, ...) -> *mut PyObject,
    pub set_attr_string: unsafe extern "C" fn(*mut PyObject, *const c_char, *mut PyObject) -> c_int,
    pub cfunction_new_ex:
        unsafe extern "C" fn(*mut c_void, *mut PyObject, *mut PyObject) -> *mut PyObject,
    pub unicode_from_string: unsafe extern "C" fn(*const c_char) -> *mut PyObject,
    pub call: unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> *mut PyObject,
}

/// A function for `Py_AddPendingCall`.
pub type PendingCall = unsafe extern "C" fn(*mut c_void) -> c_int;

// SAFETY: the pointers are addresses of functions and static objects of the interpreter, valid for
// the life of the process and usable from any thread (under the API's own GIL rules).
unsafe impl Send for Api {}
// SAFETY: as for Send: nothing in an `Api` is written after it is made.
unsafe impl Sync for Api {}

static API: OnceLock<Option<Api>> = OnceLock::new();

/// Looks up `name`, a function or object of the running interpreter.
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with a NUL-terminated name; a null result is handled.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

macro_rules! resolve {
    ($name:literal) => {{
        #[allow(clippy::missing_transmute_annotations)] // the target type is the field's
        // SAFETY: the symbol is CPython's function of this name, whose signature is the field's.
        unsafe {
            std::mem::transmute::<*mut c_void, _>(symbol($name)?)
        }
    }};
}

fn load() -> Option<Api> {
    let get_version: unsafe extern "C" fn() -> *const c_char = resolve!(c"Py_GetVersion");
    // SAFETY: Py_GetVersion returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(get_version()) }
        .to_string_lossy()
        .into_owned();
    Some(Api {
        version,
        gilstate_this_thread: resolve!(c"PyGILState_GetThisThreadState"),
        set_profile: resolve!(c"PyEval_SetProfile"),
        // SAFETY: as in `resolve!`; absent before 3.12.
        set_profile_all_threads: symbol(c"PyEval_SetProfileAllThreads")
            .map(|p| unsafe { std::mem::transmute::<*mut c_void, _>(p) }),
        eval_get_frame: resolve!(c"PyEval_GetFrame"),
        frame_get_back: resolve!(c"PyFrame_GetBack"),
        frame_get_code: resolve!(c"PyFrame_GetCode"),
        frame_get_lasti: resolve!(c"PyFrame_GetLasti"),
        frame_get_line_number: resolve!(c"PyFrame_GetLineNumber"),
        get_attr_string: resolve!(c"PyObject_GetAttrString"),
        unicode_as_utf8: resolve!(c"PyUnicode_AsUTF8"),
        err_clear: resolve!(c"PyErr_Clear"),
        decref: resolve!(c"Py_DecRef"),
        incref: resolve!(c"Py_IncRef"),
        none: symbol(c"_Py_NoneStruct")?,
        true_: symbol(c"_Py_TrueStruct")?,
        code_type: symbol(c"PyCode_Type")?,
        unicode_type: symbol(c"PyUnicode_Type")?,
        bytes_type: symbol(c"PyBytes_Type")?,
        runtime: symbol(c"_PyRuntime"),
        eval_frame_default: symbol(c"_PyEval_EvalFrameDefault"),
        module_create: resolve!(c"PyModule_Create2"),
        mem_get_allocator: resolve!(c"PyMem_GetAllocator"),
        mem_set_allocator: resolve!(c"PyMem_SetAllocator"),
        gil_check: resolve!(c"PyGILState_Check"),
        add_pending_call: resolve!(c"Py_AddPendingCall"),
        call_function_obj_args: resolve!(c"PyObject_CallFunctionObjArgs"),
        set_attr_string: resolve!(c"PyObject_SetAttrString"),
        cfunction_new_ex: resolve!(c"PyCFunction_NewEx"),
        unicode_from_string: resolve!(c"PyUnicode_FromString"),
        call: resolve!(c"PyObject_Call"),
    })
}

/// The API, once the interpreter has imported `_alloc_tracer` (None in other programs).
pub fn get() -> Option<&'static Api> {
    API.get_or_init(load).as_ref()
}

/// The API if it was already looked up (for hot paths, which must never do the lookup).
#[inline(always)]
pub fn loaded() -> Option<&'static Api> {
    API.get().and_then(|a| a.as_ref())
}
