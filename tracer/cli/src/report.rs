//! Provides `tracer stats`: reads a capture and prints its analysis as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use tracer_capture::{read_capture, Capture, Header, Stats};

/// What `tracer stats --json` prints (fields documented in docs/architecture.md).
#[derive(Serialize)]
struct StatsJson<'a> {
    file: String,
    capture_bytes: u64,
    truncated: bool,
    truncated_reason: Option<&'a str>,
    header: &'a Header,
    mode: &'static str,
    #[serde(flatten)]
    stats: &'a Stats,
    counters: BTreeMap<&'a str, u64>,
}

pub fn stats(path: &Path, json: bool) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let capture_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let cap = read_capture(std::io::BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let stats = Stats::compute(&cap);
    if json {
        let out = StatsJson {
            file: path.display().to_string(),
            capture_bytes,
            truncated: cap.truncated.is_some(),
            truncated_reason: cap.truncated.as_deref(),
            header: &cap.header,
            mode: cap.header.mode_name(),
            stats: &stats,
            counters: cap.counters.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render_text(path, capture_bytes, &cap, &stats));
    }
    Ok(())
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in the largest binary unit that keeps the number ≥ 1.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn render_text(path: &Path, capture_bytes: u64, cap: &Capture, s: &Stats) -> String {
    let h = &cap.header;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Capture    {} ({}, format {})",
        path.display(),
        human_bytes(capture_bytes),
        h.format_version
    );
    let _ = writeln!(o, "Command    {}", h.command_line.join(" "));
    let mut what = format!("pid {}", h.pid);
    if h.forked_from != 0 {
        let _ = write!(what, ", forked from {}", h.forked_from);
    }
    if !h.python_version.is_empty() {
        let version = h.python_version.split_whitespace().next().unwrap_or("");
        let _ = write!(what, ", Python {version}, stack source {}", h.stack_source);
    }
    let _ = writeln!(o, "Process    {what}, mode {}", h.mode_name());
    match &cap.truncated {
        Some(reason) => {
            let _ = writeln!(
                o,
                "Status     TRUNCATED: {reason}; showing what was written before"
            );
        }
        None => {
            let _ = writeln!(o, "Status     complete");
        }
    }

    let _ = writeln!(o, "\nTotals");
    let row = |o: &mut String, name: &str, value: String| {
        let _ = writeln!(o, "  {name:<22}{value}");
    };
    row(&mut o, "allocations", thousands(s.allocations));
    row(&mut o, "frees", thousands(s.frees));
    row(
        &mut o,
        "bytes allocated",
        format!(
            "{} ({})",
            thousands(s.bytes_allocated),
            human_bytes(s.bytes_allocated)
        ),
    );
    let when = format!("{:.3} s after start", s.peak_time_ns as f64 / 1e9);
    row(
        &mut o,
        "peak heap",
        format!(
            "{} ({}) at event {} of {}, {when}",
            thousands(s.peak_bytes),
            human_bytes(s.peak_bytes),
            thousands(s.peak_event + 1),
            thousands(s.events)
        ),
    );
    row(
        &mut o,
        "leaked at exit",
        format!(
            "{} blocks, {} ({})",
            thousands(s.leaked_blocks),
            thousands(s.leaked_bytes),
            human_bytes(s.leaked_bytes)
        ),
    );
    row(
        &mut o,
        "unmatched frees",
        format!(
            "{} (blocks allocated before tracing started)",
            thousands(s.unmatched_frees)
        ),
    );
    row(&mut o, "threads", s.threads.to_string());

    let _ = writeln!(o, "\nBy allocator");
    let _ = writeln!(
        o,
        "  {:<18}{:>14}{:>16}{:>14}{:>16}",
        "allocator", "calls", "bytes", "leaked", "leaked bytes"
    );
    for (kind, t) in &s.by_kind {
        let leak = s.leaks_by_kind.get(kind).copied().unwrap_or_default();
        let bytes = if kind.is_free() {
            "-".to_string()
        } else {
            thousands(t.bytes)
        };
        let _ = writeln!(
            o,
            "  {:<18}{:>14}{:>16}{:>14}{:>16}",
            kind.name(),
            thousands(t.count),
            bytes,
            thousands(leak.count),
            thousands(leak.bytes)
        );
    }

    if !s.size_histogram.is_empty() {
        let _ = writeln!(o, "\nAllocation sizes");
        let max = s.size_histogram.iter().map(|b| b.count).max().unwrap_or(1);
        for b in &s.size_histogram {
            let bar = "#".repeat(((b.count as f64 / max as f64) * 40.0).ceil() as usize);
            let range = format!("{} - {}", human_bytes(b.low), human_bytes(b.high));
            let _ = writeln!(o, "  {range:<22}{:>12}  {bar}", thousands(b.count));
        }
        let pct: Vec<String> = ["p50", "p90", "p99", "max"]
            .iter()
            .filter_map(|k| {
                s.size_percentiles
                    .get(*k)
                    .map(|v| format!("{k} {}", human_bytes(*v)))
            })
            .collect();
        let _ = writeln!(o, "  {}", pct.join(", "));
    }

    if !cap.counters.is_empty() {
        let _ = writeln!(o, "\nTracer counters");
        for (name, value) in &cap.counters {
            row(&mut o, name, thousands(*value));
        }
        row(
            &mut o,
            "capture bytes/event",
            format!("{:.2}", capture_bytes as f64 / s.events.max(1) as f64),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(human_bytes(10 << 20), "10.0 MiB");
        assert_eq!(human_bytes(861), "861 B");
    }
}
