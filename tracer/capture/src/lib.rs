//! Defines the allocation tracer's capture file: the record encoders the preload library calls on its
//! hot path, the decoder, and the analysis behind `tracer stats`. The crate does no I/O beyond reading
//! a `std::io::Read` and contains no `unsafe`, so it is easy to test and fuzz.
//!
//! The byte layout is described in `docs/capture-format.md`.

#![forbid(unsafe_code)]

pub mod analysis;
pub mod compress;
pub mod header;
pub mod linetable;
pub mod native;
pub mod reader;
pub mod record;
pub mod stacks;
pub mod text;
pub mod varint;

pub use analysis::{Replay, StackTotals, Stats};
pub use header::Header;
pub use native::{NativeFrame, NativeId, NativeTree};
pub use reader::{
    open_capture, read_capture, read_header, Capture, Event, ReadError, StreamedCapture,
};
pub use record::Kind;
pub use stacks::{Location, StackId, StackTree};
