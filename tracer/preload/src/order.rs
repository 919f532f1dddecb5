//! Provides the order epoch that puts the events of all threads in one order without a lock or a
//! shared counter per event (see "Order of events across threads" in `docs/architecture.md`).
//!
//! One atomic holds `(owner, epoch)`. The owner reuses the epoch with a single relaxed load; another
//! thread takes ownership with a compare-and-swap that bumps the epoch. Relaxed is enough: whenever two
//! events must be ordered (a free, then the same address handed out elsewhere), glibc's own locking
//! makes the first happen-before the second, and coherence then guarantees the second thread reads the
//! first's value or a later one, so its epoch is larger.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const OWNER_SHIFT: u32 = 40;
const EPOCH_MASK: u64 = (1 << OWNER_SHIFT) - 1;

static ORDER: AtomicU64 = AtomicU64::new(0);

/// The owner tag of a tracer thread number (0 means "nobody").
pub fn owner_of(thread: u32) -> u64 {
    (u64::from(thread) + 1) & ((1 << (64 - OWNER_SHIFT)) - 1)
}

/// The epoch for the next event of the thread whose tag is `owner`.
#[inline(always)]
pub fn epoch(owner: u64) -> u64 {
    let v = ORDER.load(Relaxed);
    if v >> OWNER_SHIFT == owner {
        return v & EPOCH_MASK;
    }
    take(owner, v)
}

#[cold]
fn take(owner: u64, mut v: u64) -> u64 {
    loop {
        let epoch = (v & EPOCH_MASK) + 1;
        match ORDER.compare_exchange_weak(v, (owner << OWNER_SHIFT) | epoch, Relaxed, Relaxed) {
            Ok(_) => return epoch,
            Err(now) => v = now,
        }
    }
}
