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

/// One part of the statistics, shaped by the JSON it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Section {
    /// Numbers by name (the top level, `counters`, `size_percentiles`, ...).
    Numbers(BTreeMap<String, Aggregate>),
    /// Objects of numbers by name (`by_kind: {malloc: {count, bytes}}`): rows by columns.
    Matrix(BTreeMap<String, BTreeMap<String, Aggregate>>),
    /// Anything else that is an object (`header`): its scalar values as text, from the first process
    /// that has them.
    Text(BTreeMap<String, String>),
}

/// The statistics of a benchmark's lines, by section: `""` is the top level (with the harness's
/// `capture_bytes` when the statistics lack it), other sections are the top-level objects.
/// Booleans count as 0 or 1 (so `truncated` totals the truncated captures). Lists are left out and
/// named in the second value.
pub fn aggregate(lines: &[TracerLine]) -> (BTreeMap<String, Section>, Vec<String>) {
    let mut sections: BTreeMap<String, Section> = BTreeMap::new();
    let mut lists = Vec::new();
    let as_number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    };
    for line in lines {
        let empty = serde_json::Map::new();
        let stats = match &line.stats {
            Some(Value::Object(o)) => o,
            _ => &empty,
        };
        for (key, value) in stats {
            if let Some(v) = as_number(value) {
                add_number(&mut sections, "", key, v);
                continue;
            }
            match value {
                Value::Object(obj) if obj.values().all(|v| as_number(v).is_some()) => {
                    for (k, v) in obj {
                        add_number(&mut sections, key, k, as_number(v).unwrap_or(0.0));
                    }
                    // An empty object still gets its (empty) section.
                    sections
                        .entry(key.clone())
                        .or_insert_with(|| Section::Numbers(BTreeMap::new()));
                }
                Value::Object(obj)
                    if obj.values().all(|v| {
                        v.as_object()
                            .is_some_and(|o| o.values().all(|x| as_number(x).is_some()))
                    }) =>
                {
                    let section = sections
                        .entry(key.clone())
                        .or_insert_with(|| Section::Matrix(BTreeMap::new()));
                    if let Section::Matrix(rows) = section {
                        for (row, inner) in obj {
                            let cells = rows.entry(row.clone()).or_default();
                            for (col, v) in inner.as_object().into_iter().flatten() {
                                cells
                                    .entry(col.clone())
                                    .or_default()
                                    .add(as_number(v).unwrap_or(0.0));
                            }
                        }
                    }
                }
                Value::Object(obj) => {
                    let section = sections
                        .entry(key.clone())
                        .or_insert_with(|| Section::Text(BTreeMap::new()));
                    if let Section::Text(text) = section {
                        for (k, v) in obj {
                            let shown = match v {
                                Value::String(s) => s.clone(),
                                Value::Object(_) | Value::Array(_) => continue,
                                other => other.to_string(),
                            };
                            text.entry(k.clone()).or_insert(shown);
                        }
                    }
                }
                Value::Array(_) if !lists.contains(key) => lists.push(key.clone()),
                _ => {}
            }
        }
        if let (Some(bytes), false) = (line.capture_bytes, stats.contains_key("capture_bytes")) {
            // The harness's own measurement of the file, when the statistics do not say it.
            add_number(&mut sections, "", "capture_bytes", bytes as f64);
        }
    }
    (sections, lists)
}

fn add_number(sections: &mut BTreeMap<String, Section>, section: &str, key: &str, v: f64) {
    let entry = sections
        .entry(section.to_string())
        .or_insert_with(|| Section::Numbers(BTreeMap::new()));
    // A key whose shape changed between processes keeps its first shape; the odd value is dropped.
    if let Section::Numbers(map) = entry {
        map.entry(key.to_string()).or_default().add(v);
    }
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

fn share(v: f64, sum: f64) -> String {
    if sum > 0.0 {
        format!("{:.1}%", 100.0 * v / sum)
    } else {
        "-".to_string()
    }
}

fn write_numbers(
    out: &mut impl Write,
    stats: &BTreeMap<String, Aggregate>,
    pystats: bool,
) -> fmt::Result {
    if !pystats {
        let mut table = MarkdownTable::new(["Name", "Total", "Per process", "Min", "Max"]);
        for (key, a) in stats {
            table.push([
                key.clone(),
                number(a.total),
                per_process(a.total / a.processes as f64),
                number(a.min),
                number(a.max),
            ]);
        }
        return table.render(out);
    }
    // pystats' layout: sorted by count, with the share of the table and the running share.
    let mut entries: Vec<(&String, &Aggregate)> = stats.iter().collect();
    entries.sort_by(|x, y| y.1.total.total_cmp(&x.1.total).then(x.0.cmp(y.0)));
    let sum: f64 = entries.iter().map(|(_, a)| a.total).sum();
    let mut table = MarkdownTable::new([
        "Name",
        "Count",
        "Per process",
        "Min",
        "Max",
        "Self",
        "Cumulative",
    ]);
    let mut cumulative = 0.0;
    for (key, a) in entries {
        cumulative += a.total;
        table.push([
            key.clone(),
            number(a.total),
            per_process(a.total / a.processes as f64),
            number(a.min),
            number(a.max),
            share(a.total, sum),
            share(cumulative, sum),
        ]);
    }
    table.render(out)
}

fn write_matrix(
    out: &mut impl Write,
    rows: &BTreeMap<String, BTreeMap<String, Aggregate>>,
) -> fmt::Result {
    let mut columns: Vec<&String> = rows.values().flat_map(|r| r.keys()).collect();
    columns.sort();
    columns.dedup();
    // The share is of the "count" column when there is one, else of the first.
    let Some(&key_col) = columns
        .iter()
        .find(|c| c.as_str() == "count")
        .or(columns.first())
    else {
        return Ok(());
    };
    let total_of = |r: &BTreeMap<String, Aggregate>| r.get(key_col).map_or(0.0, |a| a.total);
    let sum: f64 = rows.values().map(total_of).sum();
    let mut headers = vec!["Name".to_string()];
    headers.extend(columns.iter().map(|c| c.to_string()));
    headers.push(format!("Self ({key_col})"));
    let mut table = MarkdownTable::new(headers);
    let mut sorted: Vec<_> = rows.iter().collect();
    sorted.sort_by(|x, y| total_of(y.1).total_cmp(&total_of(x.1)).then(x.0.cmp(y.0)));
    for (name, cells) in sorted {
        let mut row = vec![name.clone()];
        row.extend(
            columns
                .iter()
                .map(|c| cells.get(*c).map_or("-".to_string(), |a| number(a.total))),
        );
        row.push(share(total_of(cells), sum));
        table.push(row);
    }
    table.render(out)
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
    let without = lines.iter().filter(|l| l.stats.is_none()).count();
    if without > 0 {
        writeln!(out, "- processes without statistics: {without}")?;
    }
    writeln!(out)?;
    let (sections, lists) = aggregate(lines);
    for (name, section) in &sections {
        let title = if name.is_empty() { "Totals" } else { name };
        writeln!(out, "## {title}\n")?;
        match section {
            Section::Numbers(stats) => {
                if !name.is_empty() {
                    writeln!(
                        out,
                        "Summed over the processes; \"Self\" is the share of this table's total.\n"
                    )?;
                }
                write_numbers(out, stats, !name.is_empty())?;
            }
            Section::Matrix(rows) => {
                writeln!(out, "Summed over the processes.\n")?;
                write_matrix(out, rows)?;
            }
            Section::Text(text) => {
                writeln!(out, "From the first process that reports it:\n")?;
                for (k, v) in text {
                    writeln!(out, "- {k}: {v}")?;
                }
            }
        }
        writeln!(out)?;
    }
    if !lists.is_empty() {
        writeln!(out, "Lists not summarised here: {}.", lists.join(", "))?;
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
    fn aggregates_every_key_by_the_shape_of_its_json() {
        let lines = [
            line(
                r#"{"process": 0, "capture_bytes": 100, "stats": {"events": 10, "truncated": true,
                  "counters": {"a": 1, "b": 5}, "by_kind": {"malloc": {"count": 3, "bytes": 30}},
                  "header": {"pid": 7, "python": "3.11.7"}, "size_histogram": [{"low": 0}]}}"#,
            ),
            line(
                r#"{"process": 1, "capture_bytes": 300, "stats": {"events": 30, "truncated": false,
                  "counters": {"a": 3, "new": 7}, "by_kind": {"malloc": {"count": 1, "bytes": 8},
                  "free": {"count": 4, "bytes": 0}}, "header": {"pid": 8, "python": "3.11.7"}}}"#,
            ),
            line(r#"{"process": 2, "capture_bytes": 50, "stats": null}"#),
        ];
        let (s, lists) = aggregate(&lines);
        let Section::Numbers(top) = &s[""] else {
            panic!("{s:?}")
        };
        assert_eq!(top["events"].total, 40.0);
        assert_eq!((top["events"].min, top["events"].max), (10.0, 30.0));
        assert_eq!(top["truncated"].total, 1.0);
        // The harness's capture_bytes counts for every line, the one without statistics too.
        assert_eq!(top["capture_bytes"].total, 450.0);
        let Section::Numbers(counters) = &s["counters"] else {
            panic!()
        };
        assert_eq!(counters["a"].total, 4.0);
        assert_eq!(counters["new"].processes, 1);
        let Section::Matrix(by_kind) = &s["by_kind"] else {
            panic!()
        };
        assert_eq!(by_kind["malloc"]["count"].total, 4.0);
        assert_eq!(by_kind["free"]["count"].total, 4.0);
        let Section::Text(header) = &s["header"] else {
            panic!()
        };
        assert_eq!(header["pid"], "7");
        assert_eq!(lists, vec!["size_histogram".to_string()]);
        let mut page = String::new();
        write_benchmark_page(&mut page, "cfg", "b", "x.jsonl", &lines).unwrap();
        assert!(
            page.contains("| Name   | bytes | count | Self (count) |"),
            "{page}"
        );
        assert!(
            page.contains("| malloc | 38    | 4     | 50.0%        |"),
            "{page}"
        );
        assert!(page.contains("- processes without statistics: 1"));
        assert!(page.contains("Lists not summarised here: size_histogram."));
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
