//! Keeps the capture's file descriptor out of the program's way. The program does not know the
//! descriptor exists, so it may close it (`close_range(3, ~0U, 0)`, `closefrom`, a loop of `close`) or
//! `dup2` a file of its own over its number. Untraced, those calls would find no descriptor there:
//! `close` of it fails with `EBADF` as it would untraced, ranges are closed around it, and a `dup2` onto
//! it first moves the capture to another number (under the writer's lock, so no chunk is ever written
//! into the program's file). The descriptor also lives high up (see `capture_fd::place_high`), so the program's
//! own `open`s get the numbers they would get untraced.
//!
//! The hooks call the next definition of each function (glibc's, normally) found with
//! `dlsym(RTLD_NEXT)`, so that `close` stays a cancellation point as the program expects; the
//! tracer's own closes go to the system call directly (`capture_fd::close_own`).
//!
//! # Safety
//! Each hook has the contract of the C library function it replaces and forwards its arguments
//! unchanged (with a range split around the capture's descriptor).
#![allow(clippy::missing_safety_doc)]

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libc::{c_int, c_uint};

use crate::capture_fd::capture_fd;

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
///
/// # Safety
/// As `close(2)`: any number may be passed, but closing a descriptor that another part of the
/// program still uses is the caller's responsibility.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if fd >= 0 && fd == capture_fd() {
        // SAFETY: __errno_location returns this thread's errno, always valid to write.
        unsafe { *libc::__errno_location() = libc::EBADF };
        return -1;
    }
    real_close(fd)
}

/// Closes `first..=last` around the capture's descriptor.
///
/// # Safety
/// As `close_range(2)`: the caller owns the descriptors it closes.
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
///
/// # Safety
/// As `closefrom(3)`: the caller owns the descriptors it closes.
#[no_mangle]
pub unsafe extern "C" fn closefrom(lowfd: c_int) {
    let cap = capture_fd();
    if cap < 0 || cap < lowfd {
        match next_symbol(&REAL_CLOSEFROM, c"closefrom") {
            0 => {
                real_close_range(lowfd.max(0) as c_uint, c_uint::MAX, 0);
            }
            f => {
                // SAFETY: `f` is the next `closefrom`, with its C signature; the caller's argument is
                // forwarded unchanged, under the caller's contract.
                unsafe {
                    let f: unsafe extern "C" fn(c_int) = std::mem::transmute(f);
                    f(lowfd)
                }
            }
        }
        return;
    }
    // SAFETY: the caller's contract (it owns the descriptors from `lowfd` on).
    unsafe { close_range(lowfd.max(0) as c_uint, c_uint::MAX, 0) };
}

/// `dup2` onto the capture's descriptor moves the capture out of the way first.
///
/// # Safety
/// As `dup2(2)`: the caller owns `new`, which is closed if open.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        vacate(new);
    }
    match next_symbol(&REAL_DUP2, c"dup2") {
        // SAFETY: the system call takes plain numbers; the caller owns `new`.
        0 => unsafe { libc::syscall(libc::SYS_dup2, old, new) as c_int },
        // SAFETY: `f` is the next `dup2`, with its C signature; arguments forwarded unchanged.
        f => unsafe {
            let f: unsafe extern "C" fn(c_int, c_int) -> c_int = std::mem::transmute(f);
            f(old, new)
        },
    }
}

/// `dup3` onto the capture's descriptor moves the capture out of the way first.
///
/// # Safety
/// As `dup3(2)`: the caller owns `new`, which is closed if open.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        vacate(new);
    }
    match next_symbol(&REAL_DUP3, c"dup3") {
        // SAFETY: the system call takes plain numbers; the caller owns `new`.
        0 => unsafe { libc::syscall(libc::SYS_dup3, old, new, flags) as c_int },
        // SAFETY: `f` is the next `dup3`, with its C signature; arguments forwarded unchanged.
        f => unsafe {
            let f: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int = std::mem::transmute(f);
            f(old, new, flags)
        },
    }
}
