//! Defines every exported allocator entry point (the whole ABI surface of `libtracer.so` is the list in
//! `lib.rs`). Each hook forwards to glibc's real function and reports through one funnel,
//! `track::with_buffer`. Frees are recorded before the real call and allocations after it, so an
//! address is never seen handed out again before the free that released it (see `order.rs`).
//!
//! # Safety
//! Each hook has the contract of the C library function it replaces (the caller passes what `malloc`,
//! `free`, `mmap`, … accept), and forwards its arguments unchanged.
#![allow(clippy::missing_safety_doc)]

use libc::{c_char, c_int, c_void, off_t, size_t};
use tracer_capture::Kind;

use crate::libc_alloc::*;
use crate::{inner_maps, lifecycle, track};

#[inline(always)]
fn on_allocation(kind: Kind, ptr: *mut c_void, size: size_t) {
    if !ptr.is_null() {
        track::with_buffer(|b| b.allocation(kind, ptr as u64, size as u64));
    }
}

#[inline(always)]
fn on_free(ptr: *mut c_void) {
    if !ptr.is_null() {
        track::with_buffer(|b| b.free(Kind::Free, ptr as u64));
    }
}

#[no_mangle]
pub unsafe extern "C" fn malloc(size: size_t) -> *mut c_void {
    let ptr = __libc_malloc(size);
    on_allocation(Kind::Malloc, ptr, size);
    ptr
}

#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    on_free(ptr);
    __libc_free(ptr)
}

#[no_mangle]
pub unsafe extern "C" fn calloc(n: size_t, size: size_t) -> *mut c_void {
    let ptr = __libc_calloc(n, size);
    // A product that overflows makes glibc return NULL, so it is never recorded.
    on_allocation(Kind::Calloc, ptr, n.wrapping_mul(size));
    ptr
}

#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: size_t) -> *mut c_void {
    // The epoch is taken before the real call: once glibc releases the old block another thread may
    // get it back, and its record must come after this one.
    let mut epoch = None;
    track::with_buffer(|b| epoch = Some(b.epoch()));
    let new = __libc_realloc(ptr, size);
    if let Some(epoch) = epoch {
        // NULL with size 0 means glibc freed the block; NULL otherwise means failure (old block kept).
        if !new.is_null() || (size == 0 && !ptr.is_null()) {
            let size = if new.is_null() { 0 } else { size as u64 };
            track::with_buffer(|b| b.realloc(Kind::Realloc, epoch, ptr as u64, new as u64, size));
        }
    }
    new
}

#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, n: size_t, size: size_t) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => realloc(ptr, total),
        None => {
            *libc::__errno_location() = libc::ENOMEM;
            std::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let ptr = __libc_memalign(align, size);
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    *out = ptr;
    on_allocation(Kind::PosixMemalign, ptr, size);
    0
}

#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    // glibc 2.36's aligned_alloc is memalign (it accepts any alignment); keep its behaviour.
    let ptr = __libc_memalign(align, size);
    on_allocation(Kind::AlignedAlloc, ptr, size);
    ptr
}

#[no_mangle]
pub unsafe extern "C" fn memalign(align: size_t, size: size_t) -> *mut c_void {
    let ptr = __libc_memalign(align, size);
    on_allocation(Kind::Memalign, ptr, size);
    ptr
}

#[no_mangle]
pub unsafe extern "C" fn valloc(size: size_t) -> *mut c_void {
    let ptr = __libc_valloc(size);
    on_allocation(Kind::Valloc, ptr, size);
    ptr
}

#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: size_t) -> *mut c_void {
    let ptr = __libc_pvalloc(size);
    on_allocation(Kind::Pvalloc, ptr, size);
    ptr
}

// mmap & co go straight to the system call: glibc's wrappers do nothing more on x86_64, and this needs
// no dlsym (which can allocate) before the real functions are known.

#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    let ptr = libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, off) as *mut c_void;
    if ptr != libc::MAP_FAILED {
        if track::inside_tracer() {
            inner_maps::remember(ptr as usize, len);
        } else {
            on_allocation(Kind::Mmap, ptr, len);
        }
    }
    ptr
}

#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    mmap(addr, len, prot, flags, fd, off)
}

#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    if !inner_maps::forget(addr as usize) {
        track::with_buffer(|b| b.munmap(addr as u64, len as u64));
    }
    libc::syscall(libc::SYS_munmap, addr, len) as c_int
}

/// `mremap` is variadic in C; the fifth argument is read only with `MREMAP_FIXED`, and on x86_64 a
/// variadic call passes it in the same register, so a fixed signature forwards it faithfully.
#[no_mangle]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: size_t,
    new_len: size_t,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    let ptr =
        libc::syscall(libc::SYS_mremap, old, old_len, new_len, flags, new_addr) as *mut c_void;
    if ptr != libc::MAP_FAILED {
        track::with_buffer(|b| {
            b.munmap(old as u64, old_len as u64);
            b.allocation(Kind::Mmap, ptr as u64, new_len as u64);
        });
    }
    ptr
}

// The exec family replaces the process image without running destructors: finish the capture first
// (a failed exec then runs on untraced). execl* are variadic and rare; glibc's own calls them through
// an internal execve that no preload sees.

#[no_mangle]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    lifecycle::before_exec();
    libc::syscall(libc::SYS_execve, path, argv, envp) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    execve(path, argv, environ)
}

#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    execvpe(file, argv, environ)
}

#[no_mangle]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    type Execvpe =
        unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
    // glibc's execvpe does the PATH search; find it past this library.
    let real = libc::dlsym(libc::RTLD_NEXT, c"execvpe".as_ptr());
    if real.is_null() {
        *libc::__errno_location() = libc::ENOSYS;
        return -1;
    }
    lifecycle::before_exec();
    let real: Execvpe = std::mem::transmute(real);
    real(file, argv, envp)
}

extern "C" {
    static environ: *const *const c_char;
}

/// `dlclose` may unmap code that native mode's unwinder has cached unwind information for, and a
/// later `dlopen` may put other code at the same addresses: after the real call, native mode flushes
/// the unwinder's cache and forgets which ranges are loaded (see `native::after_dlclose`).
#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    let rc = crate::native::real_dlclose(handle);
    crate::native::after_dlclose();
    rc
}

/// `os._exit` and friends skip `atexit` and destructors: finish the capture first.
#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    lifecycle::on_immediate_exit();
    loop {
        libc::syscall(libc::SYS_exit_group, status);
    }
}

#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    _exit(status)
}
