//! Defines every exported allocator entry point (the whole ABI surface of `libtracer.so` is the list in
//! `lib.rs`). Each hook forwards to the function the program would have called without the tracer
//! (`forward`: the next definition in the lookup order, glibc's or another allocator's) and reports
//! through one funnel, `track::with_buffer`. Frees are recorded before the real call and allocations after it, so an
//! address is never seen handed out again before the free that released it (see `order.rs`).
//!
//! # Safety
//! Each hook has the contract of the C library function it replaces (the caller passes what `malloc`,
//! `free`, `mmap`, … accept), and forwards its arguments unchanged.

use libc::{c_char, c_int, c_void, off_t, size_t};
use tracer_capture::Kind;

use crate::{arena, forward, inner_maps, lifecycle, state, tls, track};

#[inline(always)]
fn on_allocation(kind: Kind, ptr: *mut c_void, size: size_t) {
    if !ptr.is_null() {
        track::with_buffer(move |b| b.allocation(kind, ptr as u64, size as u64));
    }
}

#[inline(always)]
fn on_free(ptr: *mut c_void) {
    if !ptr.is_null() {
        track::with_buffer(move |b| b.free(Kind::Free, ptr as u64));
    }
}

/// # Safety
/// As C's `malloc`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: size_t) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `malloc` (the contract is malloc's).
    unsafe {
        let ptr = forward::MALLOC.get()(size);
        on_allocation(Kind::Malloc, ptr, size);
        ptr
    }
}

/// # Safety
/// As C's `free`: `ptr` is null, a live block of the program's allocator or of the bootstrap arena.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // Null, and every pointer once the bootstrap arena was used, take the slow path: one compare.
    if arena::free_is_special(ptr) {
        // SAFETY: the caller's pointer, under free's contract.
        return unsafe { free_special(ptr) };
    }
    track::with_buffer(move |b| b.free(Kind::Free, ptr as u64));
    // SAFETY: `ptr` is a live block of the program's allocator: not null, and not the arena's (no
    // arena block exists while the bound is 1: `arena::allocate` raises it before handing one out),
    // freed by the allocator that made it (the contract is free's).
    unsafe { forward::FREE.get()(ptr) }
}

/// `free` of null, or of anything once the bootstrap arena was used.
///
/// # Safety
/// As [`free`].
#[cold]
#[inline(never)]
unsafe fn free_special(ptr: *mut c_void) {
    // Blocks of the bootstrap arena were never recorded, and no allocator knows them.
    if arena::owns(ptr) {
        return;
    }
    on_free(ptr);
    // SAFETY: null or a block of the program's allocator, which the next `free` takes.
    unsafe { forward::FREE.get()(ptr) }
}

/// # Safety
/// As C's `calloc`.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: size_t, size: size_t) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `calloc` (the contract is calloc's).
    unsafe {
        let ptr = forward::CALLOC.get()(n, size);
        // A product that overflows makes calloc return NULL, so it is never recorded.
        on_allocation(Kind::Calloc, ptr, n.wrapping_mul(size));
        ptr
    }
}

/// # Safety
/// As C's `realloc`: `ptr` is null, a live block of the program's allocator or of the bootstrap
/// arena.
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: size_t) -> *mut c_void {
    // SAFETY: an arena block is moved out of the arena; any other goes to the allocator that made it
    // (the contract is realloc's).
    unsafe {
        if arena::owns(ptr) {
            return realloc_arena_block(ptr, size);
        }
        // The epoch is taken before the real call: once the allocator releases the old block another
        // thread may get it back, and its record must come after this one.
        let mut epoch = None;
        track::with_buffer(|b| epoch = Some(b.epoch()));
        let new = forward::REALLOC.get()(ptr, size);
        if let Some(epoch) = epoch {
            // NULL with size 0 means the block was freed; NULL otherwise means failure (old block kept).
            if !new.is_null() || (size == 0 && !ptr.is_null()) {
                let size = if new.is_null() { 0 } else { size as u64 };
                track::with_buffer(move |b| {
                    b.realloc(Kind::Realloc, epoch, ptr as u64, new as u64, size)
                });
            }
        }
        new
    }
}

/// A block of the bootstrap arena moves to the real allocator: a fresh block (recorded as a realloc
/// from nothing: the arena block never was) with the old contents.
///
/// # Safety
/// `ptr` is a live block of the bootstrap arena (`arena::owns(ptr)`).
#[cold]
unsafe fn realloc_arena_block(ptr: *mut c_void, size: size_t) -> *mut c_void {
    // SAFETY: the contract: `ptr` is an arena block, whose size the arena knows; `new` is a fresh
    // block of at least `size` bytes, distinct from it.
    unsafe {
        let new = realloc(std::ptr::null_mut(), size);
        if !new.is_null() {
            let keep = arena::size_of(ptr).min(size);
            std::ptr::copy_nonoverlapping(ptr as *const u8, new as *mut u8, keep);
        }
        new
    }
}

/// # Safety
/// As C's `reallocarray`: `ptr` as for [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, n: size_t, size: size_t) -> *mut c_void {
    // SAFETY: the contract is realloc's; errno is this thread's, always valid to write.
    unsafe {
        match n.checked_mul(size) {
            Some(total) => realloc(ptr, total),
            None => {
                *libc::__errno_location() = libc::ENOMEM;
                std::ptr::null_mut()
            }
        }
    }
}

/// # Safety
/// As C's `posix_memalign`: `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    // SAFETY: forwarded unchanged to the next `posix_memalign`; on success it wrote `*out`.
    unsafe {
        let rc = forward::POSIX_MEMALIGN.get()(out, align, size);
        if rc == 0 {
            on_allocation(Kind::PosixMemalign, *out, size);
        }
        rc
    }
}

/// # Safety
/// As C's `aligned_alloc`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `aligned_alloc` (the contract is its own).
    unsafe {
        let ptr = forward::ALIGNED_ALLOC.get()(align, size);
        on_allocation(Kind::AlignedAlloc, ptr, size);
        ptr
    }
}

/// # Safety
/// As C's `memalign`.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: size_t, size: size_t) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `memalign` (the contract is its own).
    unsafe {
        let ptr = forward::MEMALIGN.get()(align, size);
        on_allocation(Kind::Memalign, ptr, size);
        ptr
    }
}

/// # Safety
/// As C's `valloc`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: size_t) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `valloc` (the contract is its own).
    unsafe {
        let ptr = forward::VALLOC.get()(size);
        on_allocation(Kind::Valloc, ptr, size);
        ptr
    }
}

/// # Safety
/// As C's `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: size_t) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `pvalloc` (the contract is its own).
    unsafe {
        let ptr = forward::PVALLOC.get()(size);
        on_allocation(Kind::Pvalloc, ptr, size);
        ptr
    }
}

// mmap & co: system calls, unless a library after us defines them (see `forward`). What the
// program's allocator maps for its own heap (inside a forwarded call) is not the program's mapping.

/// # Safety
/// As `mmap(2)`: a fixed mapping (`MAP_FIXED`) replaces whatever the caller had there.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `mmap` or the system call (the contract is mmap's).
    unsafe {
        let ptr = forward::MMAP.get()(addr, len, prot, flags, fd, off);
        if ptr != libc::MAP_FAILED {
            match tls::guard() {
                0 => on_allocation(Kind::Mmap, ptr, len),
                tls::GUARD_ALLOCATOR => {}
                _ => {
                    if state::recording() {
                        inner_maps::remember(ptr as usize, len);
                    }
                }
            }
        }
        ptr
    }
}

/// # Safety
/// As [`mmap`].
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the contract is mmap's.
    unsafe { mmap(addr, len, prot, flags, fd, off) }
}

/// # Safety
/// As `munmap(2)`: nothing still uses the range.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    // SAFETY: forwarded unchanged to the next `munmap` or the system call (the contract is its own).
    unsafe {
        if tls::guard() != tls::GUARD_ALLOCATOR && !inner_maps::forget(addr as usize) {
            track::with_buffer(move |b| b.munmap(addr as u64, len as u64));
        }
        forward::MUNMAP.get()(addr, len)
    }
}

/// `mremap` is variadic in C; the fifth argument is read only with `MREMAP_FIXED`, and on x86_64 a
/// variadic call passes it in the same register, so a fixed signature forwards it faithfully.
///
/// # Safety
/// As `mremap(2)`: `old..old + old_len` is a mapping of the caller's; `new_addr` is read
/// only with `MREMAP_FIXED`.
#[no_mangle]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: size_t,
    new_len: size_t,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    // SAFETY: forwarded unchanged to the next `mremap` or the system call (the contract is its own).
    unsafe {
        let ptr = forward::MREMAP.get()(old, old_len, new_len, flags, new_addr);
        if ptr != libc::MAP_FAILED {
            track::with_buffer(move |b| {
                b.munmap(old as u64, old_len as u64);
                b.allocation(Kind::Mmap, ptr as u64, new_len as u64);
            });
        }
        ptr
    }
}

// The exec family replaces the process image without running destructors: finish the capture first
// (a failed exec then runs on untraced). execl* are variadic and rare; glibc's own calls them through
// an internal execve that no preload sees.

/// # Safety
/// As `execve(2)`: `path` is a NUL-terminated string, `argv` and `envp` NULL-terminated arrays of
/// them.
#[no_mangle]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the system call with the caller's arguments (the contract is execve's).
    unsafe {
        lifecycle::before_exec();
        libc::syscall(libc::SYS_execve, path, argv, envp) as c_int
    }
}

/// # Safety
/// As [`execve`] (`argv` as there), with the process's environment.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: the contract is execve's; `environ` is the process's environment, as glibc keeps it.
    unsafe { execve(path, argv, environ) }
}

/// # Safety
/// As [`execvpe`], with the process's environment.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: the contract is execvpe's; `environ` is the process's environment, as glibc keeps it.
    unsafe { execvpe(file, argv, environ) }
}

/// # Safety
/// As `execvpe(3)`: `file` is a NUL-terminated string, `argv` and `envp` NULL-terminated arrays
/// of them.
#[no_mangle]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: `real` is glibc's `execvpe` with its C signature, given the caller's arguments; errno is
    // this thread's.
    unsafe {
        type Execvpe = unsafe extern "C" fn(
            *const c_char,
            *const *const c_char,
            *const *const c_char,
        ) -> c_int;
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
}

extern "C" {
    static environ: *const *const c_char;
}

/// `dlclose` may unmap code that native mode's unwinder has cached unwind information for, and a
/// later `dlopen` may put other code at the same addresses: after the real call, native mode flushes
/// the unwinder's cache and forgets which ranges are loaded (see `native::after_dlclose`).
///
/// # Safety
/// As `dlclose(3)`: `handle` comes from `dlopen`, and nothing uses the object's code or data
/// after it is closed.
#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    // SAFETY: the contract is dlclose's.
    unsafe {
        let rc = crate::native::real_dlclose(handle);
        crate::native::after_dlclose();
        rc
    }
}

/// `os._exit` and friends skip `atexit` and destructors: finish the capture first.
///
/// # Safety
/// None beyond `_exit(2)`'s: the process ends (its other threads with it).
#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    // SAFETY: exit_group takes a plain number and does not return.
    unsafe {
        lifecycle::on_immediate_exit();
        loop {
            libc::syscall(libc::SYS_exit_group, status);
        }
    }
}

/// # Safety
/// As [`_exit`].
#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    // SAFETY: the contract is _exit's.
    unsafe { _exit(status) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_of_the_bootstrap_arena_can_be_freed_and_reallocated() {
        // Two blocks: the compiler knows `free` and may drop stores to a freed block.
        let (kept, freed) = (arena::allocate(32, 1), arena::allocate(32, 1));
        // SAFETY: fresh 32-byte blocks; `moved` is a live block of at least 64 bytes.
        unsafe {
            free(freed); // no allocator knows it: nothing to do
            std::ptr::write_bytes(kept as *mut u8, 0xab, 32);
            let moved = realloc(kept, 64);
            assert!(!moved.is_null() && !arena::owns(moved));
            let copied = std::slice::from_raw_parts(moved as *const u8, 32);
            assert!(copied.iter().all(|&b| b == 0xab));
            // The real allocator's block: its own size query knows it.
            assert!(libc::malloc_usable_size(moved) >= 64);
            free(moved);
        }
    }
}
