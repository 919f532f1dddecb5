//! Provides the preload's own global allocator: glibc's malloc, found by `forward` in glibc itself
//! (not through the symbol lookup, which leads to the hooks or to the program's allocator), so the
//! tracer's allocations never enter its hooks, nor the program's jemalloc, tcmalloc or mimalloc.

use std::alloc::{GlobalAlloc, Layout};

use libc::c_void;

use crate::forward::{GLIBC_CALLOC, GLIBC_FREE, GLIBC_MALLOC, GLIBC_MEMALIGN, GLIBC_REALLOC};

/// glibc's malloc alignment on x86_64.
const MALLOC_ALIGN: usize = 16;

/// The preload's `#[global_allocator]`: straight to glibc, bypassing the exported hooks.
pub struct LibcAllocator;

// SAFETY: each method forwards to the glibc function with the contract GlobalAlloc asks for; alignments
// above what malloc guarantees go through memalign.
unsafe impl GlobalAlloc for LibcAllocator {
    /// # Safety
    /// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: glibc's malloc and memalign take any size; memalign gets a power-of-two alignment
        // (a `Layout`'s).
        unsafe {
            if layout.align() <= MALLOC_ALIGN {
                GLIBC_MALLOC.get()(layout.size()) as *mut u8
            } else {
                GLIBC_MEMALIGN.get()(layout.align(), layout.size()) as *mut u8
            }
        }
    }

    /// # Safety
    /// As [`GlobalAlloc::alloc_zeroed`]: `layout` has a non-zero size.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: glibc's calloc takes any count and size.
            unsafe { GLIBC_CALLOC.get()(1, layout.size()) as *mut u8 }
        } else {
            // SAFETY: the caller's contract is `alloc`'s; a non-null block has `layout.size()` bytes.
            unsafe {
                let p = self.alloc(layout);
                if !p.is_null() {
                    std::ptr::write_bytes(p, 0, layout.size());
                }
                p
            }
        }
    }

    /// # Safety
    /// As [`GlobalAlloc::dealloc`]: `ptr` was allocated by this allocator (so by glibc).
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` is a glibc block (the contract), freed once.
        unsafe { GLIBC_FREE.get()(ptr as *mut c_void) }
    }

    /// # Safety
    /// As [`GlobalAlloc::realloc`]: `ptr` was allocated by this allocator with `layout`, and
    /// `new_size` rounded up to `layout.align()` does not overflow.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` is a glibc block (the contract); glibc's realloc keeps the alignment.
            unsafe { GLIBC_REALLOC.get()(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            // SAFETY: the size and alignment make a valid layout (the contract); the old block
            // holds `layout.size()` bytes, the new one `new_size`, and they are distinct blocks.
            unsafe {
                let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}
