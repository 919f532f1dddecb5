//! Provides the tracer's locks: [`lock`] for its `parking_lot` mutexes and [`SpinLock`]. Neither ever
//! parks the calling thread, which may be inside the program's `malloc` (see [`lock`] for why).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use parking_lot::{Mutex, MutexGuard};

/// Takes `m` without ever parking the calling thread (spinning, then yielding). A thread that parks on
/// a parking_lot lock gets a thread-local with a destructor: glibc allocates its `__cxa_thread_atexit`
/// entry while the tracer's guard is held (not recorded) and frees it when the thread exits (recorded),
/// so every program thread that once waited on a tracer lock left an unmatched free in the capture.
/// A parked thread would also leave parking_lot state that a fork child inherits.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    let mut spins = 0u32;
    loop {
        if let Some(g) = m.try_lock() {
            return g;
        }
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
    }
}

/// A lock that never sleeps in the kernel and that a fork child can reset (the holder may be a thread
/// that does not exist there). Held only to read or update the module map, off the common path.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `lock`, which gives one thread access at a time.
unsafe impl<T: Send> Sync for SpinLock<T> {}

pub struct SpinGuard<'a, T>(&'a SpinLock<T>);

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> SpinGuard<'_, T> {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
        SpinGuard(self)
    }

    /// Unlocks in a fork child, whose copy may be held by a thread that does not exist there.
    ///
    /// # Safety
    /// Only in a fork child before it runs any other thread, and with no guard alive in this thread.
    pub unsafe fn reset_in_fork_child(&self) {
        self.locked.store(false, Release);
    }
}

impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.0.value.get() }
    }
}

impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.0.locked.store(false, Release);
    }
}
