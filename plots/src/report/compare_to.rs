//! Provides the tables of `pyperf compare_to --table --table-format md -G baseline.json <config>.json`,
//! rebuilt from our analysis: one section per tag, then "All benchmarks", rows sorted by normalized
//! mean, rows that are not significant hidden and listed under the table, a "Geometric mean" row.
//! For the same JSON files the text equals pyperf's (tests/pyperf_oracle.rs checks it against
//! pyperf's own output).

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use crate::analysis::{BenchRow, ConfigAnalysis};
use crate::format::{format_normalized_mean, format_value};
use crate::report::table::MarkdownTable;
use crate::stats::geometric_mean;
use crate::stats::ttest::Significance;

/// pyperf's `display_title`: the title, a line of `=` as long, an empty line.
pub fn write_title(out: &mut impl Write, title: &str) -> fmt::Result {
    writeln!(out, "{title}")?;
    writeln!(out, "{}", "=".repeat(title.chars().count()))?;
    writeln!(out)
}

/// The table (when it has rows), then pyperf's line naming the rows hidden as not significant.
pub fn write_table_and_hidden(
    out: &mut impl Write,
    table: &MarkdownTable,
    hidden: &[&str],
) -> fmt::Result {
    if !table.is_empty() {
        table.render(out)?;
    }
    if !hidden.is_empty() {
        if !table.is_empty() {
            writeln!(out)?;
        }
        writeln!(
            out,
            "Benchmark hidden because not significant ({}): {}",
            hidden.len(),
            hidden.join(", ")
        )?;
    }
    Ok(())
}

/// One section's table and hidden-rows line for `rows` (compare_to's `compare_suites_table`).
pub fn write_section(
    out: &mut impl Write,
    ref_name: &str,
    changed_name: &str,
    rows: &[&BenchRow],
) -> fmt::Result {
    let mut sorted: Vec<&BenchRow> = rows.to_vec();
    sorted.sort_by(|a, b| a.norm_mean.total_cmp(&b.norm_mean));
    let mut table = MarkdownTable::new(["Benchmark", ref_name, changed_name]);
    let mut hidden = Vec::new();
    for row in &sorted {
        if row.significance.shown_as_significant() {
            table.push([
                row.name.clone(),
                format_value(&row.unit, row.baseline_mean),
                format!(
                    "{}: {}",
                    format_value(&row.unit, row.traced_mean),
                    format_normalized_mean(row.norm_mean)
                ),
            ]);
        } else {
            hidden.push(row.name.as_str());
        }
    }
    if sorted.len() > 1 && !table.is_empty() {
        let norm: Vec<f64> = sorted.iter().map(|r| r.norm_mean).collect();
        if let Some(gm) = geometric_mean(&norm) {
            table.push([
                "Geometric mean".to_string(),
                "(ref)".to_string(),
                format_normalized_mean(gm),
            ]);
        }
    }
    write_table_and_hidden(out, &table, &hidden)?;
    let untested: Vec<String> = sorted
        .iter()
        .filter_map(|r| match r.significance {
            Significance::Untestable(e) => Some(format!("{} ({e})", r.name)),
            _ => None,
        })
        .collect();
    if !untested.is_empty() {
        writeln!(
            out,
            "Shown although the t-test could not be computed ({}): {}",
            untested.len(),
            untested.join(", ")
        )?;
    }
    Ok(())
}

/// The whole compare_to output for one configuration: tag sections, then all benchmarks.
pub fn write_compare_to(out: &mut impl Write, ref_name: &str, a: &ConfigAnalysis) -> fmt::Result {
    let tags: BTreeSet<&str> = a
        .rows
        .iter()
        .flat_map(|r| r.tags.iter().map(String::as_str))
        .collect();
    for tag in &tags {
        write_title(out, &format!("Benchmarks with tag '{tag}':"))?;
        let rows: Vec<&BenchRow> = a
            .rows
            .iter()
            .filter(|r| r.tags.iter().any(|t| t == tag))
            .collect();
        write_section(out, ref_name, &a.config.name, &rows)?;
        writeln!(out)?;
    }
    if !tags.is_empty() {
        write_title(out, "All benchmarks:")?;
    }
    let rows: Vec<&BenchRow> = a.rows.iter().collect();
    write_section(out, ref_name, &a.config.name, &rows)
}
