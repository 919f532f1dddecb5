//! Provides `--trace-python-allocators`: wrappers around CPython's MEM and OBJ allocators (pymalloc),
//! installed with `PyMem_SetAllocator` once the interpreter runs, each calling the allocator it
//! replaced. The wrapped call runs with the re-entry guard held, so the `malloc` or `mmap` that pymalloc
//! makes underneath is not recorded again: each allocation is recorded once, at the outermost layer.

use std::ffi::c_void;

use tracer_capture::Kind;

use super::capi::{self, MemAllocator, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
use crate::tls::Guard;
use crate::track;

/// The allocator a wrapper replaced, from the wrapper's `ctx`.
///
/// # Safety
/// `ctx` is the context [`install`] gave the wrappers: a leaked `MemAllocator`, valid for ever.
unsafe fn original<'a>(ctx: *mut c_void) -> &'a MemAllocator {
    // SAFETY: the contract: `ctx` points to a `MemAllocator` that is never freed nor written again.
    unsafe { &*(ctx as *const MemAllocator) }
}

// The wrappers' contract is the C API's for the allocator they replace (`PyMemAllocatorEx`): CPython
// calls them with the context `install` registered and arguments valid for the replaced function.

/// # Safety
/// As a `PyMemAllocatorEx.malloc` installed by [`install`] (`ctx` is its context).
unsafe extern "C" fn wrapped_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: `ctx` is the context `install` set (the contract).
    let o = unsafe { original(ctx) };
    let ptr = {
        let _guard = Guard::acquire();
        // SAFETY: the replaced function, with its own context and the caller's argument.
        unsafe { (o.malloc)(o.ctx, size) }
    };
    if !ptr.is_null() {
        track::with_buffer(move |b| b.allocation(Kind::PymallocMalloc, ptr as u64, size as u64));
    }
    ptr
}

/// # Safety
/// As a `PyMemAllocatorEx.calloc` installed by [`install`] (`ctx` is its context).
unsafe extern "C" fn wrapped_calloc(ctx: *mut c_void, n: usize, size: usize) -> *mut c_void {
    // SAFETY: `ctx` is the context `install` set (the contract).
    let o = unsafe { original(ctx) };
    let ptr = {
        let _guard = Guard::acquire();
        // SAFETY: the replaced function, with its own context and the caller's arguments.
        unsafe { (o.calloc)(o.ctx, n, size) }
    };
    if !ptr.is_null() {
        track::with_buffer(move |b| {
            b.allocation(
                Kind::PymallocCalloc,
                ptr as u64,
                n.wrapping_mul(size) as u64,
            )
        });
    }
    ptr
}

/// # Safety
/// As a `PyMemAllocatorEx.realloc` installed by [`install`]: `old` is null or a live block of the
/// replaced allocator.
unsafe extern "C" fn wrapped_realloc(
    ctx: *mut c_void,
    old: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: `ctx` is the context `install` set (the contract).
    let o = unsafe { original(ctx) };
    // As for realloc: the epoch is taken before the block can be released to another thread.
    let mut epoch = None;
    track::with_buffer(|b| epoch = Some(b.epoch()));
    let new = {
        let _guard = Guard::acquire();
        // SAFETY: the replaced function, with its own context and the caller's block.
        unsafe { (o.realloc)(o.ctx, old, size) }
    };
    if let (Some(epoch), false) = (epoch, new.is_null()) {
        track::with_buffer(move |b| {
            b.realloc(
                Kind::PymallocRealloc,
                epoch,
                old as u64,
                new as u64,
                size as u64,
            )
        });
    }
    new
}

/// # Safety
/// As a `PyMemAllocatorEx.free` installed by [`install`]: `ptr` is null or a live block of the
/// replaced allocator.
unsafe extern "C" fn wrapped_free(ctx: *mut c_void, ptr: *mut c_void) {
    // SAFETY: `ctx` is the context `install` set (the contract).
    let o = unsafe { original(ctx) };
    if !ptr.is_null() {
        track::with_buffer(move |b| b.free(Kind::PymallocFree, ptr as u64));
    }
    let _guard = Guard::acquire();
    // SAFETY: the replaced function, with its own context and the caller's block.
    unsafe { (o.free)(o.ctx, ptr) }
}

/// Wraps the MEM and OBJ domains.
///
/// # Safety
/// The caller holds the GIL and the interpreter is initialised (PyMem_SetAllocator's rules).
pub unsafe fn install(api: &capi::Api) {
    for domain in [PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ] {
        let mut current = MemAllocator {
            ctx: std::ptr::null_mut(),
            malloc: wrapped_malloc,
            calloc: wrapped_calloc,
            realloc: wrapped_realloc,
            free: wrapped_free,
        };
        // SAFETY: the GIL is held (the contract); `current` is a valid out-parameter.
        unsafe { (api.mem_get_allocator)(domain, &mut current) };
        // The replaced allocator is our wrappers' `ctx`: leaked, so it stays valid for the life of the
        // process (pymalloc may be called until the very end).
        let saved: &'static MemAllocator = Box::leak(Box::new(current));
        let mut ours = MemAllocator {
            ctx: saved as *const MemAllocator as *mut c_void,
            malloc: wrapped_malloc,
            calloc: wrapped_calloc,
            realloc: wrapped_realloc,
            free: wrapped_free,
        };
        // SAFETY: the GIL is held; CPython copies `ours`, whose functions and context live for ever.
        unsafe { (api.mem_set_allocator)(domain, &mut ours) };
    }
}
