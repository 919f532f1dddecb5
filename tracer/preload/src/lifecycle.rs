//! Provides the library's life: the constructor that reads the configuration and opens the capture,
//! the destructor and `_exit` path that finish it, and the `fork` handlers.

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tracer_capture::header::Header;
use tracer_capture::record::FORMAT_VERSION;

use crate::config::{self, Config};
use crate::state::{self, State};
use crate::{clock, tls, track, writer};

/// The process that owns the open capture: a `vfork` child shares our memory but must not finish it.
static OWNER_PID: AtomicI32 = AtomicI32::new(0);
/// The header, kept for the capture a fork child opens.
static HEADER: Mutex<Option<Header>> = Mutex::new(None);

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = on_unload;

fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `Py_GetVersion()` when the process is a CPython (the symbol is looked up, never linked, so the
/// library works in any program and with a static or shared libpython).
fn python_version() -> String {
    // SAFETY: dlsym with a NUL-terminated name; if found, Py_GetVersion takes no arguments, needs no
    // initialised interpreter and returns a static NUL-terminated string.
    unsafe {
        let f = libc::dlsym(libc::RTLD_DEFAULT, c"Py_GetVersion".as_ptr());
        if f.is_null() {
            return String::new();
        }
        let f: extern "C" fn() -> *const libc::c_char = std::mem::transmute(f);
        std::ffi::CStr::from_ptr(f()).to_string_lossy().into_owned()
    }
}

fn command_line() -> Vec<String> {
    std::fs::read("/proc/self/cmdline")
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

extern "C" fn on_load() {
    let _guard = tls::Guard::acquire();
    let cfg = Config::from_env();
    let Some(mut path) = cfg.output.clone() else {
        return;
    };
    config::adjust_child_environment(&cfg);
    cfg.publish();
    if cfg.native {
        crate::native::init();
    }
    let pid = getpid();
    if cfg.exec_child {
        path.as_mut_os_string().push(format!(".{pid}"));
    }
    clock::start();
    crate::forward::resolve();
    let hooks_bypassed = crate::forward::bypass().unwrap_or_default();
    if !hooks_bypassed.is_empty() {
        state::stderr_line(&format!("tracer: hooks bypassed: {hooks_bypassed}\n"));
    }
    let header = Header {
        format_version: FORMAT_VERSION,
        pid: pid as u32,
        forked_from: 0,
        start_unix_ns: unix_ns(),
        mode: cfg.mode_flags(),
        stack_source: cfg.stack_source.name().into(),
        python_version: python_version(),
        executable: std::fs::read_link("/proc/self/exe")
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        command_line: command_line(),
        allocator: crate::forward::program_allocator(),
        hooks_bypassed,
    };
    if let Err(err) = writer::open(&path, &header) {
        state::stderr_line(&format!(
            "tracer: cannot create capture {}: {err}; the program runs untraced\n",
            path.display()
        ));
        return;
    }
    track::init_thread_exit_key();
    // SAFETY: the handlers are plain functions that stay valid for the life of the process.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        )
    };
    writer::start_writer_thread();
    *crate::sync::lock(&HEADER) = Some(header);
    OWNER_PID.store(pid, Relaxed);
    state::set(State::Recording);
}

extern "C" fn on_unload() {
    let _guard = tls::Guard::acquire();
    on_unload_guarded();
}

fn on_unload_guarded() {
    if OWNER_PID.load(Relaxed) == getpid() {
        writer::finish();
    }
}

/// Called from the `_exit` hook.
pub fn on_immediate_exit() {
    on_unload();
}

/// Called from the exec hooks: the new image will not run our destructor. A fork child's capture is
/// `<capture>.<pid>`, the very name a followed exec'ed image (same pid) creates: it is moved aside to
/// `<capture>.<pid>.pre-exec` (never over an existing file), or the new image would run untraced.
pub fn before_exec() {
    if OWNER_PID.load(Relaxed) != getpid() {
        return; // a vfork child: the parent's memory, not ours to finish
    }
    let _guard = tls::Guard::acquire();
    let forked = crate::sync::lock(&HEADER)
        .as_ref()
        .is_some_and(|h| h.forked_from != 0);
    let path = (forked && config::follow_exec())
        .then(writer::capture_path)
        .flatten();
    on_unload_guarded();
    if let Some(path) = path {
        writer::move_aside(&path, ".pre-exec");
    }
}

extern "C" fn before_fork() {
    // SAFETY: this thread's own state; the guard is cleared by the matching after-fork handler.
    unsafe { (*tls::state()).guard = tls::GUARD_TRACER };
    // First: a thread inside the unwinder may need the locks taken below (its `mmap`s).
    crate::native::before_fork();
    writer::before_fork();
    crate::inner_maps::before_fork();
}

extern "C" fn after_fork_in_parent() {
    crate::inner_maps::after_fork();
    writer::after_fork_in_parent();
    crate::native::after_fork_in_parent();
    // SAFETY: this thread's own state.
    unsafe { (*tls::state()).guard = 0 };
}

extern "C" fn after_fork_in_child() {
    crate::inner_maps::after_fork();
    let parent = OWNER_PID.load(Relaxed);
    let pid = getpid();
    let header = crate::sync::lock(&HEADER).clone().map(|h| Header {
        pid: pid as u32,
        forked_from: parent as u32,
        start_unix_ns: unix_ns(),
        ..h
    });
    let current = track::current_buffer();
    if let Some(tb) = current {
        // SAFETY: the buffer of this thread, the only thread in the child.
        unsafe {
            (*tb).discard();
            (*tb).python().lines_sent.clear();
        }
    }
    crate::python::after_fork_in_child();
    crate::native::after_fork_in_child();
    match header {
        Some(h) if state::recording() => {
            // SAFETY: the buffer of this thread, alive while it is attached.
            let live = current.map(|tb| unsafe { (*tb).live_chunk() });
            writer::after_fork_in_child(live, &h);
            OWNER_PID.store(pid, Relaxed);
            *crate::sync::lock(&HEADER) = Some(h);
        }
        _ => writer::after_fork_in_parent(),
    }
    // SAFETY: this thread's own state.
    unsafe { (*tls::state()).guard = 0 };
}
