//! Provides docs/performance.md, written in the manner of Memray's performance page
//! (shared/reference/003): the test system and its state, the method, the sources of overhead, then
//! one violin plot per configuration and one with every configuration's ALL row.

use std::fmt::{self, Write};

use super::table::MarkdownTable;
use super::{all_text, config_title, geometric_mean_line, link, memory_text, missing_text};
use crate::analysis::RunAnalysis;
use crate::run::{ConfigInfo, RunInfo};

/// What a configuration does, in a sentence, for "The following results correspond to ...".
fn describe(c: &ConfigInfo) -> String {
    match c.tracer() {
        "ours" => {
            let mode = c.mode.as_deref().unwrap_or("default");
            let mut s = format!("running the benchmarks under our tracer in `{mode}` mode");
            if let Some(src) = &c.stack_source {
                s.push_str(&format!(" (Python stacks from `{src}`)"));
            }
            s
        }
        "memray" => format!(
            "running the benchmarks under Memray ({})",
            c.mode.as_deref().unwrap_or("default options")
        ),
        "tracemalloc" => format!(
            "running the benchmarks with Python's tracemalloc ({})",
            c.mode.as_deref().unwrap_or("default options")
        ),
        other => format!("running the benchmarks under {other}"),
    }
}

/// Writes the page. `image(config)` gives the relative path of a configuration's PNG, `None` when
/// it has no plot; `all_image` the path of the side-by-side plot.
pub fn write_performance(
    out: &mut impl Write,
    info: &RunInfo,
    system_txt: Option<&str>,
    analysis: &RunAnalysis,
    image: &dyn Fn(&str) -> Option<String>,
    all_image: Option<&str>,
) -> fmt::Result {
    writeln!(out, "# Performance\n")?;
    writeln!(
        out,
        "This page analyses the overhead of running programs under the tracer, with its \
         different options, over benchmarks of the official Python performance suite, \
         [pyperformance](https://github.com/python/pyperformance). It is generated from one run \
         of `harness run` by `plots::write_performance_page`; the numbers vary from machine to \
         machine, but give an idea of what to expect.\n"
    )?;
    writeln!(
        out,
        "Every benchmark is run many times with [pyperf](https://github.com/python/pyperf): \
         the harness starts pyperf's workers itself, one process at a time, with the same loop \
         count in every configuration, and interleaves the configurations process by process so \
         that each traced process runs right next to an untraced one.\n"
    )?;

    writeln!(out, "## Test system\n")?;
    let sys = &info.system;
    let or_missing = |v: &Option<String>| v.clone().unwrap_or_else(|| "not recorded".to_string());
    writeln!(out, "* CPU: {}", or_missing(&sys.cpu))?;
    if let Some(cores) = sys.cores {
        writeln!(out, "* Logical CPUs: {cores}")?;
    }
    writeln!(out, "* Kernel: {}", or_missing(&sys.kernel))?;
    writeln!(out, "* Python: {}", or_missing(&sys.python))?;
    writeln!(
        out,
        "* Python build flags: `{}`",
        or_missing(&sys.python_build)
    )?;
    writeln!(out, "* Tracer version: {}", or_missing(&sys.tracer_version))?;
    for (key, value) in &sys.other {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "not recorded".to_string(),
            v => v.to_string(),
        };
        writeln!(out, "* {key}: {text}")?;
    }
    writeln!(
        out,
        "* Run: suite `{}`, {} per benchmark and configuration, started {}, finished {}",
        info.suite.as_deref().unwrap_or("?"),
        super::settings_text(&info.settings),
        info.started.as_deref().unwrap_or("?"),
        info.finished.as_deref().unwrap_or("no (interrupted)")
    )?;
    writeln!(out, "\n### System state\n")?;
    match system_txt {
        Some(text) if !text.trim().is_empty() => {
            writeln!(out, "```\n{}\n```", text.trim_end())?;
        }
        _ => writeln!(out, "Not recorded (the run has no system.txt).")?,
    }

    writeln!(out, "\n## Method\n")?;
    writeln!(
        out,
        "- The overhead of a benchmark is *time traced / time untraced*, 1.00x meaning no \
         overhead. Its violin is the {} (see [statistics](statistics.md)): the processes run in \
         rounds, one of each configuration, in an order that rotates from round to round.",
        analysis.estimator.describe()
    )?;
    writeln!(
        out,
        "- Significance is pyperf's t-test; the geometric mean is pyperf's; HPT reliability and \
         memory change (peak RSS of the worker, `mem_max_rss`) are computed as faster-cpython's \
         benchmarking reports do."
    )?;
    writeln!(
        out,
        "- Benchmarks that failed, timed out or gave invalid results in a configuration are listed \
         as missing for it, with the reason."
    )?;

    writeln!(out, "\n## Sources of the overhead\n")?;
    writeln!(
        out,
        "- **The allocation hooks.** Every `malloc`, `free`, `realloc`, ... of the process goes \
         through the preloaded library, which records an event into a per-thread buffer. The more \
         often a program allocates, the larger the overhead; recording Python's own allocators \
         (`--trace-python-allocators`) multiplies the number of events, because pymalloc serves \
         the many small, short-lived objects."
    )?;
    writeln!(
        out,
        "- **Python stacks.** Each event carries the Python stack, either walked from the \
         interpreter's frames at the allocation or maintained by a profile hook called on every \
         function call and return: the more a program calls Python functions, the more this \
         costs."
    )?;
    writeln!(
        out,
        "- **Native stacks** (`--native`): unwinding the C stack at every allocation is the most \
         expensive part when it is on."
    )?;
    writeln!(
        out,
        "- **Writing the capture.** Buffers are flushed to the capture file by a writer thread; its \
         size per recorded event is below."
    )?;
    let with_capture: Vec<_> = analysis
        .configs
        .iter()
        .filter_map(|a| Some((a, a.capture_total()?)))
        .collect();
    if !with_capture.is_empty() {
        writeln!(out)?;
        let mut table =
            MarkdownTable::new(["Configuration", "events", "capture bytes", "bytes/event"]);
        for (a, c) in with_capture {
            table.push([
                config_title(a),
                crate::format::format_count(c.events),
                crate::format::format_count(c.bytes),
                c.bytes_per_event()
                    .map_or("-".to_string(), |b| format!("{b:.2}")),
            ]);
        }
        table.render(out)?;
    }

    writeln!(out, "\n## Results\n")?;
    writeln!(
        out,
        "The following plots show the overhead as violin plots. Each row corresponds to one \
         benchmark. In a row, the continuous vertical line is the **mean**, and the two dotted \
         vertical lines left and right of it are the **10% and 90% quantiles**. The shaded area is \
         the distribution of the ratios (a Gaussian kernel density estimate): thicker where more \
         ratios lie. Micro-benchmarks and macro-benchmarks (pyperformance's `apps`) are coloured \
         apart. The **ALL** row is the distribution of every ratio of every benchmark combined.\n"
    )?;
    for a in &analysis.configs {
        writeln!(out, "### {}\n", config_title(a))?;
        writeln!(
            out,
            "The following results correspond to {}.\n",
            describe(&a.config)
        )?;
        writeln!(out, "- {}", geometric_mean_line(a))?;
        writeln!(out, "- Overhead, all benchmarks pooled: {}", all_text(a))?;
        writeln!(out, "- Memory usage: {}", memory_text(a))?;
        writeln!(out, "- Missing benchmarks: {}\n", missing_text(&a.missing))?;
        if let Some(img) = image(&a.config.name) {
            writeln!(out, "![overhead of {}]({})\n", config_title(a), link(&img))?;
        }
    }
    if let Some(img) = all_image {
        writeln!(out, "### All configurations side by side\n")?;
        writeln!(
            out,
            "The ALL row of every configuration, ours and the other tracers that were run, in one \
             plot.\n"
        )?;
        writeln!(out, "![ALL rows of every configuration]({})", link(img))?;
    }
    Ok(())
}
