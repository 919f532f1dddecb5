//! Provides the comparison of two runs for a tracer change: per configuration, whether the overhead
//! got smaller or larger, by how much, and whether that is significant.
//!
//! What is compared is the overhead (each run's traced / baseline ratios), not raw times: each run
//! divides out its own baseline, so a machine that got faster or slower between the two runs does
//! not show up as a tracer change. Per benchmark the two ratio samples go through pyperf's t-test;
//! across benchmarks, HPT tells how reliably the overhead changed.

use std::fmt::{self, Write};

use super::compare_to::write_table_and_hidden;
use super::table::MarkdownTable;
use super::{config_title, hpt_figure};
use crate::analysis::{BenchRow, ConfigAnalysis, RunAnalysis};
use crate::format::{format_factor, format_normalized_mean, format_percent};
use crate::stats::hpt;
use crate::stats::ttest::{significance, Significance};
use crate::stats::{geometric_mean, mean};

/// One benchmark's overhead in both runs.
#[derive(Debug, Clone)]
pub struct BenchChange<'a> {
    /// The row of the reference run.
    pub before: &'a BenchRow,
    /// The row of the changed run.
    pub after: &'a BenchRow,
    /// Mean ratio after / mean ratio before: < 1 means the overhead got smaller.
    pub change: f64,
    /// pyperf's t-test of the two ratio samples.
    pub significance: Significance,
}

/// One configuration in both runs.
#[derive(Debug, Clone)]
pub struct ConfigChange<'a> {
    /// The configuration in the reference run.
    pub before: &'a ConfigAnalysis,
    /// The configuration in the changed run.
    pub after: &'a ConfigAnalysis,
    /// Benchmarks compared in both.
    pub benches: Vec<BenchChange<'a>>,
    /// Geometric mean of the changes.
    pub geometric_mean: Option<f64>,
    /// HPT of the after ratios against the before ratios.
    pub hpt: Result<hpt::HptReport, hpt::HptError>,
}

/// Pairs up the configurations and benchmarks the two runs share.
pub fn changes<'a>(before: &'a RunAnalysis, after: &'a RunAnalysis) -> Vec<ConfigChange<'a>> {
    let mut out = Vec::new();
    for b in &before.configs {
        let Some(a) = after
            .configs
            .iter()
            .find(|a| a.config.name == b.config.name)
        else {
            continue;
        };
        let benches: Vec<BenchChange> = b
            .rows
            .iter()
            .filter_map(|rb| {
                let ra = a.rows.iter().find(|r| r.name == rb.name)?;
                let (mb, ma) = (
                    mean(&rb.value_ratios.ratios)?,
                    mean(&ra.value_ratios.ratios)?,
                );
                Some(BenchChange {
                    before: rb,
                    after: ra,
                    change: ma / mb,
                    significance: significance(&rb.value_ratios.ratios, &ra.value_ratios.ratios),
                })
            })
            .collect();
        let geometric_mean = geometric_mean(&benches.iter().map(|c| c.change).collect::<Vec<_>>());
        let pairs: Vec<hpt::Pair> = benches
            .iter()
            .map(|c| hpt::Pair {
                name: &c.before.name,
                changed: &c.after.value_ratios.ratios,
                reference: &c.before.value_ratios.ratios,
            })
            .collect();
        out.push(ConfigChange {
            before: b,
            after: a,
            hpt: hpt::report(&pairs),
            benches,
            geometric_mean,
        });
    }
    out
}

/// `1.15x smaller` / `1.20x larger` / `no change` for an overhead change factor.
pub fn format_change(change: f64) -> String {
    format_normalized_mean(change)
        .replace("faster", "smaller")
        .replace("slower", "larger")
}

/// Writes the comparison of `before` (run `a`) and `after` (run `b`).
pub fn write_comparison(
    out: &mut impl Write,
    a_name: &str,
    before: &RunAnalysis,
    b_name: &str,
    after: &RunAnalysis,
) -> fmt::Result {
    writeln!(out, "# Tracer change: {a_name} → {b_name}\n")?;
    writeln!(
        out,
        "Overhead = time traced / time untraced within each run; \"change\" = overhead after / \
         overhead before (smaller is better). Significance: pyperf's t-test on the two runs' ratio \
         samples; HPT across benchmarks.\n"
    )?;
    let all = changes(before, after);
    let mut table = MarkdownTable::new([
        "Configuration",
        "overhead before",
        "overhead after",
        "change",
        "benchmarks",
        "HPT",
    ]);
    for c in &all {
        let gm = |a: &ConfigAnalysis| a.geometric_mean.map_or("-".to_string(), format_factor);
        let smaller = c
            .benches
            .iter()
            .filter(|b| b.significance.shown_as_significant() && b.change < 1.0)
            .count();
        let larger = c
            .benches
            .iter()
            .filter(|b| b.significance.shown_as_significant() && b.change > 1.0)
            .count();
        let same = c.benches.len() - smaller - larger;
        let hpt = match &c.hpt {
            Ok(h) => format!(
                "{} likely {}, {} at 99%",
                format_percent(h.reliability),
                if h.faster { "smaller" } else { "larger" },
                hpt_figure(h, h.at_99)
                    .replace("faster", "smaller")
                    .replace("slower", "larger")
            ),
            Err(e) => format!("not computed: {e}"),
        };
        table.push([
            config_title(c.before),
            gm(c.before),
            gm(c.after),
            c.geometric_mean.map_or("-".to_string(), format_change),
            format!("{smaller} smaller, {larger} larger, {same} not significant"),
            hpt,
        ]);
    }
    table.render(out)?;
    let only = |x: &RunAnalysis, y: &RunAnalysis| -> Vec<String> {
        x.configs
            .iter()
            .filter(|c| !y.configs.iter().any(|d| d.config.name == c.config.name))
            .map(|c| c.config.name.clone())
            .collect()
    };
    for (name, list) in [(a_name, only(before, after)), (b_name, only(after, before))] {
        if !list.is_empty() {
            writeln!(out, "\nOnly in {name}: {}", list.join(", "))?;
        }
    }

    for c in &all {
        writeln!(out, "\n## {}\n", config_title(c.before))?;
        let mut sorted: Vec<&BenchChange> = c.benches.iter().collect();
        sorted.sort_by(|x, y| x.change.total_cmp(&y.change));
        let mut table = MarkdownTable::new(["Benchmark", "before", "after", "change"]);
        let mut hidden = Vec::new();
        for b in sorted {
            if b.significance.shown_as_significant() {
                table.push([
                    b.before.name.clone(),
                    format_factor(b.before.summary.mean),
                    format_factor(b.after.summary.mean),
                    format_change(b.change),
                ]);
            } else {
                hidden.push(b.before.name.as_str());
            }
        }
        write_table_and_hidden(out, &table, &hidden)?;
        let names = |x: &ConfigAnalysis, y: &ConfigAnalysis| -> Vec<String> {
            x.rows
                .iter()
                .filter(|r| !y.rows.iter().any(|s| s.name == r.name))
                .map(|r| r.name.clone())
                .collect()
        };
        let missing: Vec<String> = names(c.before, c.after)
            .into_iter()
            .chain(names(c.after, c.before))
            .collect();
        if !missing.is_empty() {
            writeln!(
                out,
                "\nCompared in only one of the runs ({}): {}",
                missing.len(),
                missing.join(", ")
            )?;
        }
    }
    Ok(())
}
