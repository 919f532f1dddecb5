//! Provides the table page of one configuration, laid out like faster-cpython's comparison page
//! (shared/reference/001): the headline figures, pyperf's tables by tag with hidden rows, the missing
//! benchmarks, the geometric mean, then the overhead distributions, the HPT report and the memory
//! section.

use std::fmt::{self, Write};

use super::compare_to::write_compare_to;
use super::table::MarkdownTable;
use super::{
    all_text, capture_text, config_title, hpt_figure, link, memory_text, plot_stem,
    tracer_page_file,
};
use crate::analysis::{ConfigAnalysis, RunAnalysis};
use crate::format::{format_factor, format_normalized_mean, format_percent};
use crate::stats::overhead::Pairing;

/// Writes the page of `a`; `has_tracer_page(bench)` says whether a tracer statistics page exists.
pub fn write_config_page(
    out: &mut impl Write,
    run: &RunAnalysis,
    a: &ConfigAnalysis,
    has_tracer_page: &dyn Fn(&str) -> bool,
) -> fmt::Result {
    let baseline = &run.baseline;
    writeln!(
        out,
        "# Results of {} vs. {} [{}]\n",
        config_title(a),
        baseline.display(),
        baseline.name
    )?;
    writeln!(
        out,
        "- tracer: {}",
        crate::plot::tracer_name(a.config.tracer())
    )?;
    if let Some(mode) = &a.config.mode {
        writeln!(out, "- mode: {mode}")?;
    }
    if let Some(s) = &a.config.stack_source {
        writeln!(out, "- stack source: {s}")?;
    }
    let gm = a.geometric_mean.map(format_normalized_mean);
    writeln!(
        out,
        "- overall geometric mean: {}",
        gm.as_deref().unwrap_or("unknown")
    )?;
    match &a.hpt {
        Ok(h) => {
            writeln!(out, "- HPT reliability: {}", format_percent(h.reliability))?;
            writeln!(out, "- HPT 99th percentile: {}", hpt_figure(h, h.at_99))?;
        }
        Err(e) => writeln!(out, "- HPT: not computed: {e}")?,
    }
    writeln!(out, "- Memory change: {}", memory_text(a))?;
    writeln!(out, "- Overhead, all benchmarks pooled: {}", all_text(a))?;
    if let Some(c) = capture_text(a) {
        writeln!(out, "- Capture: {c}")?;
    }
    writeln!(out)?;

    write_compare_to(out, &baseline.name, a)?;
    if !a.missing.is_empty() {
        writeln!(
            out,
            "Missing benchmarks ({}): {}",
            a.missing.len(),
            a.missing
                .iter()
                .map(|m| format!("{} ({})", m.name, m.reason))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    writeln!(out)?;
    if let Some(gm) = gm {
        writeln!(
            out,
            "- Geometric mean (including insignificant results): {gm}\n"
        )?;
    }

    write_overhead_section(out, a, has_tracer_page)?;
    write_hpt_section(out, a)?;
    write_memory_section(out, a)
}

fn write_overhead_section(
    out: &mut impl Write,
    a: &ConfigAnalysis,
    has_tracer_page: &dyn Fn(&str) -> bool,
) -> fmt::Result {
    writeln!(out, "# Overhead distribution\n")?;
    if a.rows.is_empty() {
        return writeln!(out, "No benchmark was compared.\n");
    }
    writeln!(
        out,
        "Time traced / time untraced: {}, processes measured side by side \
         (docs/statistics.md). Rows sorted by mean.\n",
        a.estimator.describe()
    )?;
    let mut table = MarkdownTable::new([
        "Benchmark",
        "kind",
        "processes",
        "mean",
        "10%",
        "90%",
        "bytes/event",
    ]);
    let mut rows: Vec<_> = a.rows.iter().collect();
    rows.sort_by(|x, y| x.summary.mean.total_cmp(&y.summary.mean));
    for r in &rows {
        let name = if has_tracer_page(&r.name) {
            format!(
                "[{}]({})",
                r.name,
                link(&tracer_page_file(&a.config.name, &r.name))
            )
        } else {
            r.name.clone()
        };
        let n = match r.overhead.pairing {
            Pairing::Pairwise => r.overhead.processes.to_string(),
            Pairing::AgainstBaselineMean => {
                format!("{} (vs. baseline mean)", r.overhead.processes)
            }
        };
        let bpe = a
            .capture
            .get(&r.name)
            .and_then(|c| c.bytes_per_event())
            .map_or("-".to_string(), |b| format!("{b:.2}"));
        table.push([
            name,
            (if r.micro { "micro" } else { "macro" }).to_string(),
            n,
            format_factor(r.summary.mean),
            format_factor(r.summary.q10),
            format_factor(r.summary.q90),
            bpe,
        ]);
    }
    if let Some(s) = &a.all_summary {
        let bpe = a
            .capture_total()
            .and_then(|c| c.bytes_per_event())
            .map_or("-".to_string(), |b| format!("{b:.2}"));
        let processes: usize = a.rows.iter().map(|r| r.overhead.processes).sum();
        table.push([
            "ALL".to_string(),
            "".to_string(),
            processes.to_string(),
            format_factor(s.mean),
            format_factor(s.q10),
            format_factor(s.q90),
            bpe,
        ]);
    }
    table.render(out)?;
    let stem = link(&plot_stem(&a.config.name));
    writeln!(out, "\n![violin plot]({stem}.png)\n\n[svg]({stem}.svg)\n")
}

fn write_hpt_section(out: &mut impl Write, a: &ConfigAnalysis) -> fmt::Result {
    writeln!(out, "# HPT report\n")?;
    match &a.hpt {
        Ok(h) => {
            let (relative, effect) = if h.faster {
                ("faster", "speedup")
            } else {
                ("slower", "slowdown")
            };
            writeln!(
                out,
                "- Reliability score: {} likely to be {relative}",
                format_percent(h.reliability)
            )?;
            for (p, v) in [(90, h.at_90), (95, h.at_95), (99, h.at_99)] {
                match v {
                    Some(v) => writeln!(out, "- {p}% likely to have a {effect} of {v:.2}x")?,
                    None => writeln!(
                        out,
                        "- {p}% likely: no {effect} factor found (more than 10x, or none)"
                    )?,
                }
            }
        }
        Err(e) => writeln!(out, "- not computed: {e}")?,
    }
    writeln!(out)
}

fn write_memory_section(out: &mut impl Write, a: &ConfigAnalysis) -> fmt::Result {
    writeln!(out, "# Memory")?;
    writeln!(out, "- memory change: {}\n", memory_text(a))?;
    if a.memory.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Peak RSS of the worker processes (`mem_max_rss`), traced / untraced:\n"
    )?;
    let mut table = MarkdownTable::new(["Benchmark", "peak RSS ratio"]);
    for m in &a.memory {
        table.push([
            m.name.clone(),
            m.mean_ratio
                .map_or("not significant".to_string(), format_factor),
        ]);
    }
    table.render(out)
}
