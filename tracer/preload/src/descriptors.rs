//! Keeps the capture's file descriptor out of the program's way. The program does not know the
//! descriptor exists, so it may close it (`close_range(3, ~0U, 0)`, `closefrom`, a loop of `close`) or
//! `dup2` a file of its own over its number. Untraced, those calls would find no descriptor there:
//! `close` of it fails with `EBADF` as it would untraced, ranges are closed around it, and a `dup2` onto
//! it first moves the capture to another number (under the writer's lock, so no chunk is ever written
//! into the program's file). The descriptor also lives high up (see [`place_high`]), so the program's
//! own `open`s get the numbers they would get untraced.
//!
//! The hooks call the next definition of each function (glibc's, normally) found with
//! `dlsym(RTLD_NEXT)`, so that `close` stays a cancellation point as the program expects; the
//! tracer's own closes go to the system call directly ([`close_own`]).
//!
//! # Safety
//! Each hook has the contract of the C library function it replaces and forwards its arguments
//! unchanged (with a range split around the capture's descriptor).
#![allow(clippy::missing_safety_doc)]

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::Relaxed};

use libc::{c_char, c_int, c_uint};

/// The capture's descriptor, or -1.
static CAPTURE_FD: AtomicI32 = AtomicI32::new(-1);

/// The lowest descriptor number the capture is moved to: high enough that a program's own
/// descriptors never reach it in practice, low enough that the kernel's descriptor table does not
/// grow for it (and that `select()` users are not pushed past 1024).
const HIGH_FD: c_int = 900;

/// Publishes the capture's descriptor (-1: none).
pub fn set_capture_fd(fd: c_int) {
    CAPTURE_FD.store(fd, Relaxed);
}

fn capture_fd() -> c_int {
    CAPTURE_FD.load(Relaxed)
}

/// Closes a descriptor of the tracer's own, bypassing the hooks below.
pub fn close_own(fd: c_int) {
    // SAFETY: closing a descriptor number; the kernel checks it.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// Moves `fd` to a free number at or above [`HIGH_FD`] (close-on-exec) and returns the new one, or
/// `fd` itself when that is not possible (a low descriptor limit, say).
pub fn place_high(fd: c_int) -> c_int {
    if fd >= HIGH_FD {
        return fd;
    }
    // SAFETY: fcntl on our own descriptor.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if high < 0 {
        return fd;
    }
    close_own(fd);
    high
}

/// Opens `path` with `flags`, mode 0600, at a high descriptor number. When the program has lowered
/// `RLIMIT_NOFILE`'s soft limit so far that no descriptor is left (a fork child opening its own
/// capture, say), the soft limit is raised for the time of the `open` and restored: descriptors above
/// the limit stay valid, and the program sees the limit it set.
pub fn open_high(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: `path` is a valid NUL-terminated string (the caller's contract).
    let fd = unsafe { libc::open(path, flags, 0o600 as c_uint) };
    if fd >= 0 {
        return place_high(fd);
    }
    if std::io::Error::last_os_error().raw_os_error() != Some(libc::EMFILE) {
        return -1;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur >= limit.rlim_max
    {
        return -1;
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max.min(HIGH_FD as libc::rlim_t + 64),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: valid rlimit structures; the soft limit is put back before returning.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            return -1;
        }
        let fd = libc::open(path, flags, 0o600 as c_uint);
        let fd = if fd >= 0 { place_high(fd) } else { -1 };
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        fd
    }
}

/// The next definition of `name` after this library, cached in `slot`.
fn next_symbol(slot: &AtomicUsize, name: &std::ffi::CStr) -> usize {
    let mut f = slot.load(Relaxed);
    if f == 0 {
        // SAFETY: dlsym with a valid NUL-terminated name.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
        slot.store(f, Relaxed);
    }
    f
}

static REAL_CLOSE: AtomicUsize = AtomicUsize::new(0);
static REAL_CLOSE_RANGE: AtomicUsize = AtomicUsize::new(0);
static REAL_CLOSEFROM: AtomicUsize = AtomicUsize::new(0);
static REAL_DUP2: AtomicUsize = AtomicUsize::new(0);
static REAL_DUP3: AtomicUsize = AtomicUsize::new(0);

fn real_close(fd: c_int) -> c_int {
    match next_symbol(&REAL_CLOSE, c"close") {
        // SAFETY: the system call with the caller's argument.
        0 => unsafe { libc::syscall(libc::SYS_close, fd) as c_int },
        f => {
            // SAFETY: `f` is the next `close`, with its C signature.
            let f: unsafe extern "C" fn(c_int) -> c_int = unsafe { std::mem::transmute(f) };
            // SAFETY: forwarding the caller's argument unchanged.
            unsafe { f(fd) }
        }
    }
}

fn real_close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    match next_symbol(&REAL_CLOSE_RANGE, c"close_range") {
        // SAFETY: the system call with the caller's arguments.
        0 => unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) as c_int },
        f => {
            // SAFETY: `f` is the next `close_range`, with its C signature.
            let f: unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int =
                unsafe { std::mem::transmute(f) };
            // SAFETY: forwarding the caller's arguments unchanged.
            unsafe { f(first, last, flags) }
        }
    }
}

/// Frees the number `fd` for a `dup2`/`dup3` onto it when it is the capture's: the capture moves
/// first.
fn vacate(fd: c_int) {
    if fd >= 0 && fd == capture_fd() {
        crate::writer::move_capture_fd();
    }
}

/// `close` of the capture's descriptor fails as it would untraced (nothing open there).
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if fd >= 0 && fd == capture_fd() {
        *libc::__errno_location() = libc::EBADF;
        return -1;
    }
    real_close(fd)
}

/// Closes `first..=last` around the capture's descriptor.
#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let cap = capture_fd();
    if cap < 0 || (cap as c_uint) < first || (cap as c_uint) > last {
        return real_close_range(first, last, flags);
    }
    let cap = cap as c_uint;
    let mut rc = 0;
    if cap > first {
        rc = real_close_range(first, cap - 1, flags);
    }
    if rc == 0 && cap < last {
        rc = real_close_range(cap + 1, last, flags);
    }
    rc
}

/// glibc's `closefrom` calls `close_range` internally (no hook sees that call): split it here.
#[no_mangle]
pub unsafe extern "C" fn closefrom(lowfd: c_int) {
    let cap = capture_fd();
    if cap < 0 || cap < lowfd {
        match next_symbol(&REAL_CLOSEFROM, c"closefrom") {
            0 => {
                real_close_range(lowfd.max(0) as c_uint, c_uint::MAX, 0);
            }
            f => {
                // SAFETY: `f` is the next `closefrom`, with its C signature.
                let f: unsafe extern "C" fn(c_int) = std::mem::transmute(f);
                f(lowfd)
            }
        }
        return;
    }
    close_range(lowfd.max(0) as c_uint, c_uint::MAX, 0);
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        vacate(new);
    }
    match next_symbol(&REAL_DUP2, c"dup2") {
        0 => libc::syscall(libc::SYS_dup2, old, new) as c_int,
        f => {
            // SAFETY: `f` is the next `dup2`, with its C signature.
            let f: unsafe extern "C" fn(c_int, c_int) -> c_int = std::mem::transmute(f);
            f(old, new)
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        vacate(new);
    }
    match next_symbol(&REAL_DUP3, c"dup3") {
        0 => libc::syscall(libc::SYS_dup3, old, new, flags) as c_int,
        f => {
            // SAFETY: `f` is the next `dup3`, with its C signature.
            let f: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int = std::mem::transmute(f);
            f(old, new, flags)
        }
    }
}
