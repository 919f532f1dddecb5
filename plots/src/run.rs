//! The run directory as the report reads it: the model of crate `rundir` (docs/run-format.md), which
//! the harness writes through. [`load`] is the only place the report reads files; every error names
//! the file.

pub use rundir::{
    load, BenchmarkInfo, ConfigInfo, ConfigOrder, Failure, RunInfo, Settings, SystemInfo, Timer,
    TracerLine,
};

/// A run directory read into memory ([`rundir::Run`]).
pub type RunDir = rundir::Run;
