//! Provides the capture's clock: nanoseconds since tracing started (`CLOCK_MONOTONIC`, read through the
//! vDSO, only once per chunk).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static START_NS: AtomicU64 = AtomicU64::new(0);

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Marks now as the start of the capture.
pub fn start() {
    START_NS.store(monotonic_ns(), Relaxed);
}

pub fn since_start_ns() -> u64 {
    monotonic_ns().saturating_sub(START_NS.load(Relaxed))
}
