//! Provides glibc's real allocator entry points (`__libc_malloc` & co, exported by glibc for exactly
//! this purpose, so no `dlsym` and no dlsym→calloc recursion) and the preload's own global allocator,
//! which calls them directly so the tracer's allocations never enter its hooks.

use std::alloc::{GlobalAlloc, Layout};

use libc::{c_void, size_t};

extern "C" {
    pub fn __libc_malloc(size: size_t) -> *mut c_void;
    pub fn __libc_calloc(n: size_t, size: size_t) -> *mut c_void;
    pub fn __libc_realloc(ptr: *mut c_void, size: size_t) -> *mut c_void;
    pub fn __libc_free(ptr: *mut c_void);
    pub fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
    pub fn __libc_valloc(size: size_t) -> *mut c_void;
    pub fn __libc_pvalloc(size: size_t) -> *mut c_void;
}

/// glibc's malloc alignment on x86_64.
const MALLOC_ALIGN: usize = 16;

/// The preload's `#[global_allocator]`: straight to glibc, bypassing the exported hooks.
pub struct LibcAllocator;

// SAFETY: each method forwards to the glibc function with the contract GlobalAlloc asks for; alignments
// above what malloc guarantees go through memalign.
unsafe impl GlobalAlloc for LibcAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            __libc_malloc(layout.size()) as *mut u8
        } else {
            __libc_memalign(layout.align(), layout.size()) as *mut u8
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            __libc_calloc(1, layout.size()) as *mut u8
        } else {
            let p = self.alloc(layout);
            if !p.is_null() {
                std::ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        __libc_free(ptr as *mut c_void)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            __libc_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
