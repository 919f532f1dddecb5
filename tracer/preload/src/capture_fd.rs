//! Provides the capture's file descriptor: where it lives (high up, see [`place_high`]), how the
//! tracer opens and closes its own descriptors (system calls, never the program's hooks), and which
//! number it has now (read by the `descriptors` hooks that keep it out of the program's way).

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

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

pub fn capture_fd() -> c_int {
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
