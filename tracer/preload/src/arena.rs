//! Provides the bootstrap arena: memory for what is allocated while the next allocator is being
//! looked up (`dlsym` may allocate: glibc's dlerror state, for one), when no allocator is known yet.
//! Blocks are handed out once and never reused (a process asks for a handful, once); `free` of one
//! does nothing and `realloc` of one copies it out. Fresh blocks are zero (the arena is in `.bss`).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

const SIZE: usize = 64 * 1024;
/// What `malloc` guarantees on x86_64.
const MIN_ALIGN: usize = 16;
/// Each block is preceded by its size (a `usize`), for `realloc`.
const SIZE_FIELD: usize = std::mem::size_of::<usize>();

#[repr(C, align(4096))]
struct Memory(UnsafeCell<[u8; SIZE]>);

// SAFETY: blocks are carved out by an atomic bump pointer, so no two callers get the same bytes.
unsafe impl Sync for Memory {}

static MEMORY: Memory = Memory(UnsafeCell::new([0; SIZE]));
/// Bytes handed out so far, from the start of `MEMORY`.
static USED: AtomicUsize = AtomicUsize::new(0);
/// Set before the first block is handed out: until then `free` needs no range check (it usually
/// never is: `dlsym` allocates only to report an error).
static IN_USE: AtomicBool = AtomicBool::new(false);
/// The pointers below which `free` takes its slow path ([`free_is_special`]): 1 (only null) while
/// the arena is unused, every pointer once it is.
static SPECIAL_BELOW: AtomicUsize = AtomicUsize::new(1);

fn base() -> usize {
    MEMORY.0.get() as usize
}

/// Whether `ptr` is a block of the arena. It runs in every `free`: one load and a branch that is
/// never taken while the arena is unused.
#[inline(always)]
pub fn owns(ptr: *mut libc::c_void) -> bool {
    IN_USE.load(Relaxed) && in_range(ptr)
}

/// Whether `free(ptr)` must look closer: `ptr` is null, or the arena is in use (then any `ptr` may be
/// one of its blocks). One load and one compare, folding the null test every `free` makes anyway
/// with the arena's: the hook's fast path pays nothing for the arena.
#[inline(always)]
pub fn free_is_special(ptr: *mut libc::c_void) -> bool {
    (ptr as usize) < SPECIAL_BELOW.load(Relaxed)
}

#[cold]
#[inline(never)]
fn in_range(ptr: *mut libc::c_void) -> bool {
    (ptr as usize).wrapping_sub(base()) < SIZE
}

/// A block of `size` bytes aligned to `align` (a power of two), or null when the arena is full.
pub fn allocate(size: usize, align: usize) -> *mut libc::c_void {
    let align = align.max(MIN_ALIGN);
    // Before any block exists; a block reaches another thread only through something that orders
    // this store before that thread's `free` of it.
    IN_USE.store(true, Relaxed);
    SPECIAL_BELOW.store(usize::MAX, Relaxed);
    let mut used = USED.load(Relaxed);
    loop {
        let start = match (base() + used + SIZE_FIELD).checked_next_multiple_of(align) {
            Some(start) => start,
            None => return std::ptr::null_mut(),
        };
        let end = match start.checked_add(size) {
            Some(end) if end <= base() + SIZE => end,
            _ => return std::ptr::null_mut(),
        };
        match USED.compare_exchange_weak(used, end - base(), Relaxed, Relaxed) {
            Ok(_) => {
                let block = start as *mut usize;
                // SAFETY: `start - SIZE_FIELD .. end` lies in the arena, past every block handed out
                // before (the exchange reserved it for this caller alone); `start` is aligned to at
                // least 16, so the size field before it is aligned for a usize.
                unsafe { block.sub(1).write(size) };
                return block.cast();
            }
            Err(now) => used = now,
        }
    }
}

/// The size a block was allocated with.
///
/// # Safety
/// `ptr` must be a block of the arena (`owns(ptr)`).
pub unsafe fn size_of(ptr: *mut libc::c_void) -> usize {
    // SAFETY: a block of the arena is preceded by its size field, written by `allocate` (aligned,
    // inside the arena).
    unsafe { (ptr as *const usize).sub(1).read() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_zeroed_disjoint_and_sized() {
        let a = allocate(10, 1);
        let b = allocate(100, 4096);
        assert!(owns(a) && owns(b));
        assert_eq!(a as usize % MIN_ALIGN, 0);
        assert_eq!(b as usize % 4096, 0);
        assert!(b as usize >= a as usize + 10);
        // SAFETY: both are blocks of the arena.
        unsafe {
            assert_eq!(size_of(a), 10);
            assert_eq!(size_of(b), 100);
            assert!(std::slice::from_raw_parts(b as *const u8, 100)
                .iter()
                .all(|&x| x == 0));
        }
        assert!(!owns(std::ptr::null_mut()));
        assert!(free_is_special(std::ptr::null_mut()) && free_is_special(a));
        let on_heap = Box::into_raw(Box::new(0u64));
        assert!(!owns(on_heap.cast()));
        // SAFETY: made by Box::into_raw just above.
        drop(unsafe { Box::from_raw(on_heap) });
        assert!(allocate(SIZE, 1).is_null(), "more than the arena holds");
        assert!(allocate(usize::MAX - 8, 1).is_null());
    }
}
