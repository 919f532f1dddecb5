//! Provides the overhead statistics, violin plots and markdown reports that `harness report`,
//! `harness compare` and the end of `harness run` produce from a run directory
//! (`docs/run-format.md`).
//!
//! The three public functions below are the whole interface the harness uses. Everything behind
//! them is split like criterion: pure statistics (`stats`), the kernel density estimate (`kde`),
//! the plots (`plot`), the markdown pages (`report`), and the one module that reads files (`run`).

pub mod analysis;
pub mod format;
pub mod kde;
pub mod plot;
pub mod pyperf;
pub mod report;
pub mod run;
pub mod stats;

use std::path::{Path, PathBuf};

/// Writes `<run_dir>/report/`: `README.md` (the summary), one table per configuration, one
/// tracer-statistics page per configuration and benchmark, and `plots/*.png` + `plots/*.svg`.
/// Returns the report directory.
pub fn write_report(run_dir: &Path) -> anyhow::Result<PathBuf> {
    anyhow::bail!(
        "plots: write_report({}) is not implemented yet",
        run_dir.display()
    )
}

/// Compares two run directories (`a` is the reference, `b` the change, e.g. a tracer change) and
/// returns markdown: per configuration, whether its overhead got smaller or larger, by how much, and
/// whether the difference is significant.
pub fn compare_runs(a: &Path, b: &Path) -> anyhow::Result<String> {
    anyhow::bail!(
        "plots: compare_runs({}, {}) is not implemented yet",
        a.display(),
        b.display()
    )
}

/// Writes `<out>/performance.md` from a run (test system, method, sources of overhead, the violin
/// plots, copied into `<out>/images/`), in the manner of Memray's performance page.
pub fn write_performance_page(run_dir: &Path, out: &Path) -> anyhow::Result<()> {
    anyhow::bail!(
        "plots: write_performance_page({}, {}) is not implemented yet",
        run_dir.display(),
        out.display()
    )
}
