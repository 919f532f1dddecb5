//! Provides the tracer-statistics pages, in the spirit of faster-cpython's pystats page
//! (shared/reference/002): per configuration and benchmark, the totals over every traced worker
//! process of whatever the tracer reported (`tracer stats --json`, one line per process), each
//! nested object as its own table with counts, shares and cumulative shares. Keys are rendered as
//! they come, sorted, so a counter added to the tracer appears without a change here.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use serde_json::Value;

use super::table::MarkdownTable;
use crate::analysis::capture_cost;
use crate::format::format_count;
use crate::run::TracerLine;

/// The numbers of one key over the processes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Aggregate {
    /// Sum over the processes that reported it.
    pub total: f64,
    /// Processes that reported it.
    pub processes: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Aggregate {
    fn add(&mut self, v: f64) {
        if self.processes == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.total += v;
        self.processes += 1;
    }
}

/// Every statistic of a benchmark's lines, grouped: `""` holds the top-level numbers (with
/// `capture_bytes`), other groups are the nested objects (`counters`, ...), dotted when deeper.
/// Booleans count as 0 or 1 (so `truncated` totals the truncated captures).
pub fn aggregate(lines: &[TracerLine]) -> BTreeMap<String, BTreeMap<String, Aggregate>> {
    let mut groups: BTreeMap<String, BTreeMap<String, Aggregate>> = BTreeMap::new();
    fn walk(
        groups: &mut BTreeMap<String, BTreeMap<String, Aggregate>>,
        group: &str,
        obj: &serde_json::Map<String, Value>,
    ) {
        for (key, value) in obj {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                Value::Object(inner) => {
                    let name = if group.is_empty() {
                        key.clone()
                    } else {
                        format!("{group}.{key}")
                    };
                    walk(groups, &name, inner);
                    None
                }
                _ => None,
            };
            if let Some(v) = number {
                groups
                    .entry(group.to_string())
                    .or_default()
                    .entry(key.clone())
                    .or_default()
                    .add(v);
            }
        }
    }
    for line in lines {
        if let Some(Value::Object(stats)) = &line.stats {
            walk(&mut groups, "", stats);
        }
        let stats_has_size = line
            .stats
            .as_ref()
            .is_some_and(|s| s.get("capture_bytes").is_some());
        if let (Some(bytes), false) = (line.capture_bytes, stats_has_size) {
            // The harness's own measurement of the file, when the statistics do not say it.
            groups
                .entry(String::new())
                .or_default()
                .entry("capture_bytes".to_string())
                .or_default()
                .add(bytes as f64);
        }
    }
    groups
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = format_count(v.abs() as u64);
        if v < 0.0 {
            format!("-{digits}")
        } else {
            digits
        }
    } else {
        format!("{v:.2}")
    }
}

/// A mean per process: a rounded count from 100 on, two decimals below.
fn per_process(v: f64) -> String {
    if v.abs() >= 100.0 {
        number(v.round())
    } else {
        format!("{v:.2}")
    }
}

/// Writes the page of one benchmark under one configuration.
pub fn write_benchmark_page(
    out: &mut impl Write,
    config_title: &str,
    bench: &str,
    source: &str,
    lines: &[TracerLine],
) -> fmt::Result {
    writeln!(out, "# Tracer statistics: {bench}\n")?;
    writeln!(out, "- benchmark: {bench}")?;
    writeln!(out, "- configuration: {config_title}")?;
    writeln!(out, "- processes: {} (lines of `{source}`)", lines.len())?;
    if let Some(c) = capture_cost(lines) {
        if let Some(b) = c.bytes_per_event() {
            writeln!(out, "- capture bytes per recorded event: {b:.2}")?;
        }
    }
    writeln!(out)?;
    for (group, stats) in aggregate(lines) {
        let title = if group.is_empty() {
            "Totals".to_string()
        } else {
            group.clone()
        };
        writeln!(out, "## {title}\n")?;
        if group.is_empty() {
            let mut table = MarkdownTable::new(["Name", "Total", "Per process", "Min", "Max"]);
            for (key, a) in &stats {
                table.push([
                    key.clone(),
                    number(a.total),
                    per_process(a.total / a.processes as f64),
                    number(a.min),
                    number(a.max),
                ]);
            }
            table.render(out)?;
        } else {
            // pystats' layout: sorted by count, with the share of the group and the running share.
            writeln!(
                out,
                "Summed over the processes; \"Self\" is the share of this table's total.\n"
            )?;
            let mut entries: Vec<(&String, &Aggregate)> = stats.iter().collect();
            entries.sort_by(|x, y| y.1.total.total_cmp(&x.1.total).then(x.0.cmp(y.0)));
            let sum: f64 = entries.iter().map(|(_, a)| a.total).sum();
            let mut table =
                MarkdownTable::new(["Name", "Count", "Per process", "Self", "Cumulative"]);
            let mut cumulative = 0.0;
            for (key, a) in entries {
                cumulative += a.total;
                let share = |v: f64| {
                    if sum > 0.0 {
                        format!("{:.1}%", 100.0 * v / sum)
                    } else {
                        "-".to_string()
                    }
                };
                table.push([
                    key.clone(),
                    number(a.total),
                    per_process(a.total / a.processes as f64),
                    share(a.total),
                    share(cumulative),
                ]);
            }
            table.render(out)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Writes the index of one configuration: a row per benchmark with its page.
pub fn write_index(
    out: &mut impl Write,
    config_title: &str,
    benches: &[(String, String, &[TracerLine])],
) -> fmt::Result {
    writeln!(out, "# Tracer statistics: {config_title}\n")?;
    let mut table = MarkdownTable::new([
        "Benchmark",
        "processes",
        "events",
        "capture bytes",
        "bytes/event",
        "truncated",
    ]);
    for (bench, link, lines) in benches {
        let cost = capture_cost(lines);
        let truncated = lines
            .iter()
            .filter(|l| {
                l.stats
                    .as_ref()
                    .and_then(|s| s.get("truncated"))
                    .and_then(Value::as_bool)
                    == Some(true)
            })
            .count();
        table.push([
            format!("[{bench}]({link})"),
            lines.len().to_string(),
            cost.map_or("-".to_string(), |c| format_count(c.events)),
            cost.map_or("-".to_string(), |c| format_count(c.bytes)),
            cost.and_then(|c| c.bytes_per_event())
                .map_or("-".to_string(), |b| format!("{b:.2}")),
            truncated.to_string(),
        ]);
    }
    table.render(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> TracerLine {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn aggregates_every_numeric_key_by_group() {
        let lines = [
            line(
                r#"{"process": 0, "capture_bytes": 100, "stats": {"events": 10, "truncated": true,
                  "counters": {"a": 1, "b": 5}, "by_allocator": {"malloc": {"count": 3}}}}"#,
            ),
            line(
                r#"{"process": 1, "capture_bytes": 300, "stats": {"events": 30, "truncated": false,
                  "counters": {"a": 3, "new": 7}}}"#,
            ),
        ];
        let g = aggregate(&lines);
        let top = &g[""];
        assert_eq!(top["events"].total, 40.0);
        assert_eq!((top["events"].min, top["events"].max), (10.0, 30.0));
        assert_eq!(top["truncated"].total, 1.0);
        assert_eq!(top["capture_bytes"].total, 400.0);
        assert_eq!(g["counters"]["a"].total, 4.0);
        assert_eq!(g["counters"]["new"].processes, 1);
        assert_eq!(g["by_allocator.malloc"]["count"].total, 3.0);
    }

    #[test]
    fn numbers_read_like_pystats() {
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(-42.0), "-42");
        assert_eq!(number(0.5), "0.50");
        assert_eq!(per_process(1014810.17), "1,014,810");
        assert_eq!(per_process(15.83), "15.83");
    }
}
