//! Provides the report of `harness ab A B`: two tracer builds measured in one run, interleaved
//! process by process with the same loops. Per mode, B is compared with A directly (A's
//! configuration is the reference, as the baseline is elsewhere: ratio B/A per benchmark, its
//! 10%/90% quantiles and pyperf's significance), with the A/A band (A against a second copy of A)
//! beside it when one was run, and each side's overhead against the untraced baseline.

use std::fmt::{self, Write};

use super::table::MarkdownTable;
use crate::analysis::{ConfigAnalysis, RunAnalysis};
use crate::format::{format_factor, format_normalized_mean};
use crate::stats::geometric_mean;

/// One mode of an A/B run: the configurations that hold it.
#[derive(Debug, Clone)]
pub struct AbPair {
    /// The mode, e.g. `python-allocators`.
    pub mode: String,
    /// The configuration of build A (`python-allocators@A`).
    pub a: String,
    /// The configuration of build B.
    pub b: String,
    /// A second configuration of build A, for the A/A band (`--aa`).
    pub aa: Option<String>,
}

/// One mode's comparison, analysed.
pub struct AbMode<'a> {
    /// The pair.
    pub pair: &'a AbPair,
    /// B against A (A as the reference).
    pub b_vs_a: &'a ConfigAnalysis,
    /// A again against A, when run.
    pub aa: Option<&'a ConfigAnalysis>,
    /// The run against its untraced baseline (A's and B's overhead).
    pub overhead: &'a RunAnalysis,
}

/// `1.07x faster`, `1.07x slower` or `no change`: B against A.
fn direction(ratio: f64) -> String {
    format_normalized_mean(ratio)
}

/// The one line a developer acts on: `python-allocators: B is 1.07x faster than A, significant in
/// 9 of 12 benchmarks (A/A 10%-90%: 0.97x-1.03x)`.
pub fn headline(m: &AbMode) -> String {
    let rows = &m.b_vs_a.rows;
    let gm = geometric_mean(&rows.iter().map(|r| r.norm_mean).collect::<Vec<_>>());
    let significant = m.b_vs_a.significant_rows().count();
    let verdict = match gm {
        Some(1.0) => "B is the same as A".to_string(),
        Some(g) => format!("B is {} than A", direction(g)),
        None => "no benchmark compared".to_string(),
    };
    let aa =
        m.aa.and_then(|a| a.all_summary.as_ref())
            .map(|s| {
                format!(
                    " (A/A 10%-90%: {}-{})",
                    format_factor(s.q10),
                    format_factor(s.q90)
                )
            })
            .unwrap_or_default();
    format!(
        "{}: {verdict}, significant in {significant} of {} benchmarks{aa}",
        m.pair.mode,
        rows.len()
    )
}

fn overhead_of(run: &RunAnalysis, config: &str) -> String {
    run.configs
        .iter()
        .find(|a| a.config.name == config)
        .and_then(|a| a.geometric_mean)
        .map(format_normalized_mean)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The whole page.
pub fn write_ab(out: &mut impl Write, a: &str, b: &str, modes: &[AbMode]) -> fmt::Result {
    writeln!(out, "# A/B: {b} (B) against {a} (A)\n")?;
    for m in modes {
        writeln!(out, "- **{}**", headline(m))?;
    }
    writeln!(
        out,
        "\nBoth builds ran in one run, interleaved process by process (the order rotated from round \
         to round) with the same loops; B/A is each benchmark's mean time under B over its mean \
         time under A, its 10%/90% quantiles are those of the run's estimator ({}), and \
         significance is pyperf's t-test of the two sides' values.",
        modes
            .first()
            .map(|m| m.b_vs_a.estimator.describe())
            .unwrap_or("")
    )?;
    for m in modes {
        writeln!(out, "\n## {}\n", m.pair.mode)?;
        writeln!(
            out,
            "- overhead against the untraced baseline: A {}, B {}",
            overhead_of(m.overhead, &m.pair.a),
            overhead_of(m.overhead, &m.pair.b)
        )?;
        if let Some(s) = &m.b_vs_a.all_summary {
            writeln!(
                out,
                "- B/A, all benchmarks pooled: mean {}, 10%: {}, 90%: {}",
                format_factor(s.mean),
                format_factor(s.q10),
                format_factor(s.q90)
            )?;
        }
        match m.aa.and_then(|a| a.all_summary.as_ref()) {
            Some(s) => writeln!(
                out,
                "- A/A (A against itself, the noise floor), pooled: mean {}, 10%: {}, 90%: {}",
                format_factor(s.mean),
                format_factor(s.q10),
                format_factor(s.q90)
            )?,
            None => writeln!(out, "- A/A: not run (`--aa` runs it)")?,
        }
        writeln!(out)?;
        let mut headers = vec!["benchmark", "B/A", "10%", "90%", "significant"];
        if m.aa.is_some() {
            headers.extend(["A/A", "A/A 10%", "A/A 90%"]);
        }
        let mut table = MarkdownTable::new(headers);
        for r in &m.b_vs_a.rows {
            let mut row = vec![
                r.name.clone(),
                direction(r.norm_mean),
                format_factor(r.summary.q10),
                format_factor(r.summary.q90),
                if r.significance.shown_as_significant() {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
            ];
            if let Some(aa) = m.aa {
                match aa.rows.iter().find(|x| x.name == r.name) {
                    Some(x) => row.extend([
                        format_factor(x.norm_mean),
                        format_factor(x.summary.q10),
                        format_factor(x.summary.q90),
                    ]),
                    None => row.extend(["–".to_string(), "–".to_string(), "–".to_string()]),
                }
            }
            table.push(row);
        }
        table.render(out)?;
    }
    Ok(())
}
