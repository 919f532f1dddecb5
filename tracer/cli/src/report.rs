//! Provides `tracer stats`: reads a capture and prints its analysis as text or JSON.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use tracer_capture::analysis::Site;
use tracer_capture::stacks::Frame;
use tracer_capture::text::thousands;
use tracer_capture::{
    open_capture, Capture, Header, Location, NativeTree, Replay, StackTotals, Stats,
};

use crate::symbolize::Symbolizer;

/// Mismatches shown (check mode); all are counted.
const MISMATCHES_SHOWN: usize = 20;

/// One disagreement between the stack sources, resolved (innermost frame first).
#[derive(Serialize)]
struct Mismatch {
    walked: Vec<Location>,
    profiled: Vec<Location>,
}

fn resolve(cap: &Capture, stack: &[(u32, u32)]) -> Vec<Location> {
    stack
        .iter()
        .rev()
        .map(|&(code, offset)| Location::resolve(&cap.codes, Frame { code, offset }))
        .collect()
}

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
    /// Records and their bytes before compression, by kind.
    record_bytes: BTreeMap<&'static str, RecordBytes>,
    stack_mismatches: Vec<Mismatch>,
}

#[derive(Serialize)]
struct RecordBytes {
    count: u64,
    bytes: u64,
}

/// A capture read and replayed: its definitions, its analysis, the totals of every stack pair, and
/// (native mode) the symbolizer that named its frames.
pub struct Analysed {
    pub capture_bytes: u64,
    pub cap: Capture,
    pub stats: Stats,
    pub totals: Vec<StackTotals>,
    pub symbolizer: Option<Symbolizer>,
}

/// Reads a capture with the streaming reader (two passes, memory bounded by the live blocks and the
/// distinct stacks) and replays it.
pub fn analyse(path: &Path) -> Result<Analysed> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let capture_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut streamed = open_capture(std::io::BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut symbolizer = (!streamed.capture.native.is_empty()).then(|| {
        Symbolizer::new(
            streamed.capture.modules.clone(),
            &streamed.capture.eval_loop,
        )
    });
    let mut replay = Replay::new();
    let mut merged = HashMap::new();
    streamed
        .events(|e, native| match symbolizer.as_mut() {
            Some(sym) if e.native != NativeTree::ROOT => {
                let mut e = *e;
                e.native = sym.merge_hook_frame(&mut merged, native, e.native);
                replay.event(&e);
            }
            _ => replay.event(e),
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
    let cap = streamed.capture;
    let (mut stats, totals) = replay.finish(&cap);
    if let Some(sym) = symbolizer.as_mut() {
        stats.symbolize(|id| sym.stack(&cap.native.ips(id)));
    }
    Ok(Analysed {
        capture_bytes,
        cap,
        stats,
        totals,
        symbolizer,
    })
}

pub fn stats(path: &Path, json: bool, native_only: bool) -> Result<()> {
    let Analysed {
        capture_bytes,
        cap,
        stats,
        ..
    } = analyse(path)?;
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
            record_bytes: cap
                .record_bytes
                .iter()
                .map(|(k, (count, bytes))| {
                    (
                        k.name(),
                        RecordBytes {
                            count: *count,
                            bytes: *bytes,
                        },
                    )
                })
                .collect(),
            stack_mismatches: cap
                .mismatches
                .iter()
                .take(MISMATCHES_SHOWN)
                .map(|(w, p)| Mismatch {
                    walked: resolve(&cap, w),
                    profiled: resolve(&cap, p),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!(
            "{}",
            render_text(path, capture_bytes, &cap, &stats, native_only)
        );
    }
    Ok(())
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

fn render_text(
    path: &Path,
    capture_bytes: u64,
    cap: &Capture,
    s: &Stats,
    native_only: bool,
) -> String {
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
    if !h.hooks_bypassed.is_empty() {
        let _ = writeln!(o, "Allocator  HOOKS BYPASSED: {}", h.hooks_bypassed);
    } else if !h.allocator.is_empty() {
        let _ = writeln!(o, "Allocator  {} (the hooks forward to it)", h.allocator);
    }
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

    let tables = [
        ("Top allocation sites by bytes", &s.top_sites_by_bytes),
        ("Top allocation sites by count", &s.top_sites_by_count),
        ("Memory at peak by site", &s.peak_by_site),
        ("Leaked at exit by site", &s.leaks_by_site),
    ];
    for (title, sites) in tables {
        if sites
            .iter()
            .any(|site| !site.stack.is_empty() || !site.native.is_empty())
        {
            let _ = writeln!(o, "\n{title}");
            render_sites(&mut o, sites, native_only);
        }
    }
    if !cap.mismatches.is_empty() {
        let _ = writeln!(
            o,
            "\nStack sources disagree ({} times); first ones, innermost frame first:",
            cap.mismatches.len()
        );
        for (walked, profiled) in cap.mismatches.iter().take(3) {
            let show = |v: Vec<Location>| {
                v.iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(" < ")
            };
            let _ = writeln!(o, "  walked:   {}", show(resolve(cap, walked)));
            let _ = writeln!(o, "  profiled: {}", show(resolve(cap, profiled)));
        }
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
        let _ = writeln!(o, "\nRecords (before compression)");
        let _ = writeln!(
            o,
            "  {:<18}{:>14}{:>16}{:>10}",
            "record", "count", "bytes", "bytes/rec"
        );
        for (kind, (count, bytes)) in &cap.record_bytes {
            let per = *bytes as f64 / (*count).max(1) as f64;
            let _ = writeln!(
                o,
                "  {:<18}{:>14}{:>16}{per:>10.1}",
                kind.name(),
                thousands(*count),
                thousands(*bytes)
            );
        }
    }
    o
}

/// Frames shown per site (innermost first); native stacks are deeper.
const FRAMES_SHOWN: usize = 8;
const NATIVE_FRAMES_SHOWN: usize = 40;

fn render_sites(o: &mut String, sites: &[Site], native_only: bool) {
    for site in sites {
        let _ = writeln!(
            o,
            "  {:>12} in {:>9} allocations",
            human_bytes(site.bytes),
            thousands(site.count)
        );
        if !site.native.is_empty() {
            let lines: Vec<String> = if native_only {
                site.native.iter().map(|f| f.to_string()).collect()
            } else {
                site.hybrid.iter().map(|f| f.to_string()).collect()
            };
            for line in lines.iter().take(NATIVE_FRAMES_SHOWN) {
                let _ = writeln!(o, "      {line}");
            }
            if lines.len() > NATIVE_FRAMES_SHOWN {
                let _ = writeln!(o, "      ... {} more", lines.len() - NATIVE_FRAMES_SHOWN);
            }
            if !native_only && site.hybrid_exact == Some(false) {
                let _ = writeln!(
                    o,
                    "      (Python frames run by several evaluation loops: which loop runs which \
                     frame is a guess, their order is right)"
                );
            }
            continue;
        }
        if site.stack.is_empty() {
            let _ = writeln!(o, "      (no Python frame)");
        }
        for loc in site.stack.iter().take(FRAMES_SHOWN) {
            let _ = writeln!(o, "      {loc}");
        }
        if site.stack.len() > FRAMES_SHOWN {
            let _ = writeln!(o, "      ... {} more", site.stack.len() - FRAMES_SHOWN);
        }
    }
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
