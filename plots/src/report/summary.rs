//! Provides the report's README.md, shaped like faster-cpython's results summary
//! (shared/reference/000): the run and the machine, then per configuration the geometric mean with
//! HPT, the memory change, the missing benchmarks and links to its table, plot and tracer statistics.

use std::fmt::{self, Write};

use super::{
    aa_text, all_text, capture_text, config_page_file, config_title, geometric_mean_line, link,
    memory_text, missing_text, noise_text, plot_stem, settings_text, tracer_index_file,
    ALL_CONFIGS_PLOT,
};
use crate::analysis::RunAnalysis;
use crate::run::{ConfigOrder, RunInfo};

/// Writes README.md. `run_name` is the run directory's name; `has_tracer_stats` says per
/// configuration (by name) whether a tracer statistics index was written.
pub fn write_summary(
    out: &mut impl Write,
    run_name: &str,
    info: &RunInfo,
    analysis: &RunAnalysis,
    has_tracer_stats: &dyn Fn(&str) -> bool,
    has_all_plot: bool,
) -> fmt::Result {
    writeln!(out, "# Results\n")?;
    writeln!(out, "- run: {run_name}")?;
    writeln!(
        out,
        "- started: {}",
        info.started.as_deref().unwrap_or("unknown")
    )?;
    match &info.finished {
        Some(f) => writeln!(out, "- finished: {f}")?,
        None => writeln!(
            out,
            "- finished: no (still running, or interrupted: `harness run --resume` continues it)"
        )?,
    }
    writeln!(
        out,
        "- suite: {}",
        info.suite.as_deref().unwrap_or("unknown")
    )?;
    let mode = match info.settings.mode.as_str() {
        "" => "?",
        mode => mode,
    };
    let order = match info.settings.order {
        ConfigOrder::Rotate => "configurations rotated from round to round",
        ConfigOrder::Fixed => "configurations in the same order every round",
    };
    writeln!(
        out,
        "- settings: {}, mode {mode}, {order}",
        settings_text(&info.settings)
    )?;
    writeln!(
        out,
        "- baseline: {} [{}]",
        analysis.baseline.display(),
        analysis.baseline.name
    )?;
    let sys = &info.system;
    writeln!(
        out,
        "- cpu model: {}",
        sys.cpu.as_deref().unwrap_or("missing")
    )?;
    if let Some(cores) = sys.cores {
        writeln!(out, "- cores: {cores}")?;
    }
    writeln!(
        out,
        "- kernel: {}",
        sys.kernel.as_deref().unwrap_or("missing")
    )?;
    writeln!(
        out,
        "- python: {}",
        sys.python.as_deref().unwrap_or("missing")
    )?;
    writeln!(
        out,
        "- tracer version: {}",
        sys.tracer_version.as_deref().unwrap_or("missing")
    )?;
    if let Some(root) = sys.other.get("root").and_then(|v| v.as_str()) {
        writeln!(out, "- run inside the root: {root}")?;
    }
    for aa in analysis.configs.iter().filter_map(aa_text) {
        writeln!(out, "- {aa}")?;
    }
    if !info.excluded.is_empty() {
        let list: Vec<String> = info
            .excluded
            .iter()
            .map(|e| format!("{} ({})", e.benchmark, e.reason))
            .collect();
        writeln!(out, "- not run on this Python: {}", list.join(", "))?;
    }
    writeln!(out, "- [raw results](../pyperf/)")?;
    if has_all_plot {
        writeln!(
            out,
            "\n![ALL rows of every configuration]({0}.png)\n\n[svg]({0}.svg)",
            link(ALL_CONFIGS_PLOT)
        )?;
    }

    for a in &analysis.configs {
        writeln!(out, "\n## {}\n", config_title(a))?;
        writeln!(out, "- {}", geometric_mean_line(a))?;
        writeln!(out, "- Overhead, all benchmarks pooled: {}", all_text(a))?;
        if let Some(noise) = noise_text(a) {
            writeln!(out, "- {noise}")?;
        }
        if let Some(aa) = aa_text(a) {
            writeln!(out, "- {aa}")?;
        }
        writeln!(out, "- Memory usage: {}", memory_text(a))?;
        if let Some(c) = capture_text(a) {
            writeln!(out, "- Capture: {c}")?;
        }
        writeln!(out, "- missing benchmarks: {}", missing_text(&a.missing))?;
        writeln!(
            out,
            "- [📄table]({})",
            link(&config_page_file(&a.config.name))
        )?;
        if !a.rows.is_empty() {
            let stem = link(&plot_stem(&a.config.name));
            writeln!(out, "- [📈time plot]({stem}.png) ([svg]({stem}.svg))")?;
        }
        if has_tracer_stats(&a.config.name) {
            writeln!(
                out,
                "- [🔢tracer statistics]({})",
                link(&tracer_index_file(&a.config.name))
            )?;
        }
    }
    Ok(())
}
