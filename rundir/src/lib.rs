//! The run directory of the overhead harness (`docs/run-format.md`), defined once: where each file
//! lives ([`RunDir`]), what its records hold ([`records`]), how the pyperf JSON inside it is read and
//! edited ([`pyperf`]), and the whole directory read into memory ([`load`]).
//!
//! The harness writes a run directory through [`RunDir`] (atomic rewrites of `run.json` and the
//! pyperf suites, appends to the JSON-lines files); the report (crate `plots`) reads it with
//! [`load`]. Both go through the same types and paths, so the format cannot drift between them.
//!
//! ```no_run
//! let dir = rundir::RunDir::at(std::path::Path::new("results/2026-11-23T04-30-00Z"));
//! let progress = dir.load_progress(); // what a resumed run skips
//! let run = rundir::load(&dir.root)?; // everything the report reads
//! # Ok::<(), anyhow::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod dir;
mod load;
pub mod pyperf;
pub mod records;

pub use dir::{write_atomic, RunDir};
pub use load::{load, Run};
pub use records::{
    BenchmarkInfo, ConfigInfo, ConfigOrder, Excluded, Failure, FailureKind, Progress, RunInfo,
    Settings, SystemInfo, Timer, TracerLine,
};
