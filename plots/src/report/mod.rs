//! Provides the markdown pages of a report. Each page is a pure function from the analysis to text;
//! `crate::write_report` decides where the text goes.
//!
//! Pages: `summary` (README.md, like faster-cpython's results summary), `config_page` (one table
//! page per configuration, like faster-cpython's comparison page, built on `compare_to`),
//! `tracer_stats` (per benchmark, in the spirit of pystats), `compare` (two runs), `performance`
//! (docs/performance.md, like Memray's performance page).

pub mod ab;
pub mod compare;
pub mod compare_to;
pub mod config_page;
pub mod performance;
pub mod summary;
pub mod table;
pub mod tracer_stats;
pub mod versions;

use crate::analysis::{ConfigAnalysis, Missing};
use crate::format::{format_factor, format_normalized_mean, format_percent, link_segment};
use crate::stats::hpt::HptReport;

/// Report file of a configuration's table page, relative to the report directory.
pub fn config_page_file(config: &str) -> String {
    format!("{config}.md")
}

/// Plot file stem of a configuration, relative to the report directory (add `.png` or `.svg`).
pub fn plot_stem(config: &str) -> String {
    format!("plots/{config}")
}

/// Plot file stem of the all-configurations plot.
pub const ALL_CONFIGS_PLOT: &str = "plots/all-configs";

/// Tracer statistics page of a benchmark, relative to the report directory.
pub fn tracer_page_file(config: &str, bench: &str) -> String {
    format!("tracer-stats/{config}/{bench}.md")
}

/// Tracer statistics index of a configuration, relative to the report directory.
pub fn tracer_index_file(config: &str) -> String {
    format!("tracer-stats/{config}/README.md")
}

/// A relative path as a markdown link target (every segment percent-encoded where needed).
pub fn link(path: &str) -> String {
    path.split('/')
        .map(link_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// `tracer, default [default]`.
pub fn config_title(a: &ConfigAnalysis) -> String {
    format!("{} [{}]", a.config.display(), a.config.name)
}

/// `5.31x slower` / `1.02x faster` for an HPT percentile figure.
pub fn hpt_figure(h: &HptReport, value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{v:.2}x {}", if h.faster { "faster" } else { "slower" }),
        None => "more than 10x or none".to_string(),
    }
}

/// faster-cpython's summary line: `Geometric mean: 2.18x slower (HPT: reliability of 100.00%,
/// 5.31x slower at 99th %ile)`.
pub fn geometric_mean_line(a: &ConfigAnalysis) -> String {
    let gm = a
        .geometric_mean
        .map(format_normalized_mean)
        .unwrap_or_else(|| "unknown (no benchmark compared)".to_string());
    match &a.hpt {
        Ok(h) => format!(
            "Geometric mean: {gm} (HPT: reliability of {}, {} at 99th %ile)",
            format_percent(h.reliability),
            hpt_figure(h, h.at_99)
        ),
        Err(e) => format!("Geometric mean: {gm} (HPT: not computed: {e})"),
    }
}

/// `6 processes x 3 values (1 warmup)`, with `?` for what run.json did not record.
pub fn settings_text(s: &crate::run::Settings) -> String {
    if s.known() {
        let timer = match s.timer {
            crate::run::Timer::Wall => "",
            crate::run::Timer::Cpu => ", timed by the process's CPU time (--timer cpu)",
        };
        format!(
            "{} processes x {} values ({} warmup){timer}",
            s.processes, s.values, s.warmups
        )
    } else {
        "? processes x ? values (? warmup)".to_string()
    }
}

/// The A/A line of an untraced configuration compared with the untraced baseline: `A/A check:
/// geometric mean 1.00x, no significant row`, or the rows pyperf's t-test calls significant, as a
/// warning (identical configurations that differ significantly mean the measurement is biased or
/// too noisy to trust). `None` for a configuration that is not an A/A check.
pub fn aa_text(a: &ConfigAnalysis) -> Option<String> {
    if !a.aa {
        return None;
    }
    let gm = a
        .geometric_mean
        .map_or("unknown".to_string(), format_factor);
    let significant: Vec<String> = a
        .significant_rows()
        .map(|r| format!("{} ({})", r.name, format_factor(r.norm_mean)))
        .collect();
    Some(if significant.is_empty() {
        format!(
            "A/A check ({} vs. the baseline): geometric mean {gm}, no significant row",
            a.config.name
        )
    } else {
        format!(
            "⚠ A/A check ({} vs. the baseline): geometric mean {gm}, significant: {} \
             (identical configurations should not differ: distrust small overheads of this run)",
            a.config.name,
            significant.join(", ")
        )
    })
}

/// `Noise floor (A/A [baseline-aa], 10%-90%): 0.93x-1.08x pooled; unreliable here (A/A band wider
/// than ±10%): go`, or `None` when the run has no A/A configuration (or for that one itself).
pub fn noise_text(a: &ConfigAnalysis) -> Option<String> {
    let n = a.noise.as_ref()?;
    let mut text = format!(
        "Noise floor (A/A [{}], 10%-90%): {}-{} pooled",
        n.config,
        format_factor(n.pooled.0),
        format_factor(n.pooled.1)
    );
    let unreliable = n.unreliable();
    if !unreliable.is_empty() {
        text.push_str(&format!(
            "; unreliable on this machine (A/A band wider than ±{:.0}%): {}",
            crate::analysis::UNRELIABLE_HALF_WIDTH * 100.0,
            unreliable.join(", ")
        ));
    }
    Some(text)
}

/// `1.02x` or `unknown`.
pub fn memory_text(a: &ConfigAnalysis) -> String {
    a.memory_change
        .map(format_factor)
        .unwrap_or_else(|| "unknown".to_string())
}

/// `broken (failed in process 0: ...), other (...)` or `none`.
pub fn missing_text(missing: &[Missing]) -> String {
    if missing.is_empty() {
        return "none".to_string();
    }
    missing
        .iter()
        .map(|m| format!("{} ({})", m.name, m.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `mean 3.00x, 10%: 0.98x, 90%: 6.01x (bootstrap of the ratio of means over rounds, 5
/// benchmarks)` for the ALL row.
pub fn all_text(a: &ConfigAnalysis) -> String {
    match &a.all_summary {
        Some(s) => format!(
            "mean {}, 10%: {}, 90%: {} ({}, {} benchmarks)",
            format_factor(s.mean),
            format_factor(s.q10),
            format_factor(s.q90),
            a.estimator.describe(),
            a.rows.len()
        ),
        None => "no benchmark compared".to_string(),
    }
}

/// `9.12 bytes per event (1,234 events)` or `None` without tracer statistics.
pub fn capture_text(a: &ConfigAnalysis) -> Option<String> {
    let c = a.capture_total()?;
    Some(match c.bytes_per_event() {
        Some(b) => format!(
            "{b:.2} bytes per recorded event ({} bytes for {} events)",
            crate::format::format_count(c.bytes),
            crate::format::format_count(c.events)
        ),
        None => "no events recorded".to_string(),
    })
}
