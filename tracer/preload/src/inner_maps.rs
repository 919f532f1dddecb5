//! Provides the table of memory mappings the tracer's own code made (while a thread's guard was held:
//! libunwind's per-thread cache, pymalloc's arenas under `--trace-python-allocators`). Their `mmap` was
//! not recorded, so their `munmap` must not be either: libunwind, for one, unmaps its cache from a
//! thread-exit destructor that runs outside the guard, which left unmatched munmaps in the capture.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::sync::lock;

/// Start address → length.
static INNER: Mutex<Option<FxHashMap<usize, usize>>> = Mutex::new(None);

/// Remembers a mapping made inside the tracer.
pub fn remember(addr: usize, len: usize) {
    lock(&INNER)
        .get_or_insert_with(FxHashMap::default)
        .insert(addr, len);
}

/// Forgets the mapping starting at `addr`; true if it was one the tracer made (so the unmap is not
/// recorded).
pub fn forget(addr: usize) -> bool {
    lock(&INNER)
        .as_mut()
        .is_some_and(|t| t.remove(&addr).is_some())
}

/// `pthread_atfork` prepare: hold the table across `fork`, so the child never inherits it locked.
pub fn before_fork() {
    std::mem::forget(lock(&INNER));
}

/// `pthread_atfork` parent and child.
pub fn after_fork() {
    // SAFETY: `before_fork` locked it and forgot the guard; this thread (the only one in a child)
    // still owns it.
    unsafe { INNER.force_unlock() };
}
