//! Provides the tracer's global state (off, recording, stopped, failed), checked first by every hook.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Not configured (no `TRACER_OUTPUT`) or not initialised yet: hooks only forward.
    Off = 0,
    Recording = 1,
    /// The capture was finished (exit); hooks only forward.
    Stopped = 2,
    /// The capture could not be written; hooks only forward.
    Failed = 3,
}

static STATE: AtomicU8 = AtomicU8::new(State::Off as u8);

#[inline(always)]
pub fn recording() -> bool {
    STATE.load(Relaxed) == State::Recording as u8
}

pub fn set(s: State) {
    STATE.store(s as u8, Relaxed);
}

/// Moves from recording to stopped; false if it was not recording (so the end is written once).
pub fn stop() -> bool {
    STATE
        .compare_exchange(
            State::Recording as u8,
            State::Stopped as u8,
            Relaxed,
            Relaxed,
        )
        .is_ok()
}

/// Writes one line to stderr without allocating through the hooks or touching stdio's buffers.
pub fn stderr_line(msg: &str) {
    // SAFETY: writing a valid byte slice to fd 2; a failure is ignored (nowhere else to report it).
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}
