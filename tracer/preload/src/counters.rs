//! Provides the tracer's own counters, which every layer adds to and the end-of-capture record takes
//! in one [`snapshot`]. Hot-path counts are kept per thread ([`ThreadCounters`]) and added here when
//! a chunk is handed over, so the hot path touches no shared cache line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub static CHUNKS_WRITTEN: AtomicU64 = AtomicU64::new(0);
pub static BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);
pub static UNCOMPRESSED_BYTES: AtomicU64 = AtomicU64::new(0);
pub static DIRECT_DRAINS: AtomicU64 = AtomicU64::new(0);
pub static THREADS: AtomicU64 = AtomicU64::new(0);
pub static LATE_EVENTS: AtomicU64 = AtomicU64::new(0);
pub static FRAMES_WALKED: AtomicU64 = AtomicU64::new(0);
pub static FRAMES_PUSHED: AtomicU64 = AtomicU64::new(0);
pub static FRAMES_POPPED: AtomicU64 = AtomicU64::new(0);
/// Code objects interned so far, which is also the next code id (`python::codes`).
pub static CODES_INTERNED: AtomicU64 = AtomicU64::new(0);
/// Check mode's results.
pub static STACK_CHECKS: AtomicU64 = AtomicU64::new(0);
pub static STACK_CHECKS_SKIPPED: AtomicU64 = AtomicU64::new(0);
pub static STACK_MISMATCHES: AtomicU64 = AtomicU64::new(0);
/// Check mode's test of the walk's fast way (`records::fresh_frames`) against the whole walk.
pub static FAST_WALK_CHECKS: AtomicU64 = AtomicU64::new(0);
pub static FAST_WALK_MISMATCHES: AtomicU64 = AtomicU64::new(0);
/// Which unwinder runs: 0 none, 1 libunwind, 2 glibc's `backtrace`.
pub static NATIVE_UNWINDER: AtomicU64 = AtomicU64::new(0);
pub static NATIVE_UNWINDS: AtomicU64 = AtomicU64::new(0);
pub static NATIVE_FRAMES: AtomicU64 = AtomicU64::new(0);
pub static NATIVE_NODES: AtomicU64 = AtomicU64::new(0);
pub static NATIVE_MODULE_SCANS: AtomicU64 = AtomicU64::new(0);

/// A thread's share of the hot-path counters, added to the global ones by [`publish`](Self::publish).
#[derive(Default, Clone, Copy)]
pub struct ThreadCounters {
    pub frames_walked: u64,
    pub frames_pushed: u64,
    pub frames_popped: u64,
    pub native_unwinds: u64,
    pub native_frames: u64,
}

impl ThreadCounters {
    /// Adds the thread's counts to the global ones and starts again from zero.
    pub fn publish(&mut self) {
        let c = std::mem::take(self);
        FRAMES_WALKED.fetch_add(c.frames_walked, Relaxed);
        FRAMES_PUSHED.fetch_add(c.frames_pushed, Relaxed);
        FRAMES_POPPED.fetch_add(c.frames_popped, Relaxed);
        if c.native_unwinds > 0 {
            NATIVE_UNWINDS.fetch_add(c.native_unwinds, Relaxed);
            NATIVE_FRAMES.fetch_add(c.native_frames, Relaxed);
        }
    }
}

/// Every counter, named as the end record names it.
pub fn snapshot() -> [(&'static str, u64); 20] {
    let all = [
        ("chunks_written", &CHUNKS_WRITTEN),
        ("bytes_written", &BYTES_WRITTEN),
        ("chunk_bytes_before_compression", &UNCOMPRESSED_BYTES),
        ("direct_drains", &DIRECT_DRAINS),
        ("threads", &THREADS),
        ("late_events", &LATE_EVENTS),
        ("frames_walked", &FRAMES_WALKED),
        ("frames_pushed", &FRAMES_PUSHED),
        ("frames_popped", &FRAMES_POPPED),
        ("code_objects_interned", &CODES_INTERNED),
        ("stack_checks", &STACK_CHECKS),
        ("stack_checks_skipped", &STACK_CHECKS_SKIPPED),
        ("stack_mismatches", &STACK_MISMATCHES),
        ("fast_walk_checks", &FAST_WALK_CHECKS),
        ("fast_walk_mismatches", &FAST_WALK_MISMATCHES),
        ("native_unwinder", &NATIVE_UNWINDER),
        ("native_unwinds", &NATIVE_UNWINDS),
        ("native_frames", &NATIVE_FRAMES),
        ("native_nodes", &NATIVE_NODES),
        ("native_module_scans", &NATIVE_MODULE_SCANS),
    ];
    all.map(|(name, counter)| (name, counter.load(Relaxed)))
}
