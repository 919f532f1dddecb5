//! The pyperf JSON 1.0 suites of a run directory (`pyperf/<config>.json`, and the `--output` file of
//! each worker): the subset the report reads ([`parse_suite`]: benchmarks, their runs' values and the
//! metadata the statistics need, `name`, `tags`, `unit`, `mem_max_rss`), and the edits the harness
//! makes to them ([`read_worker_runs`], [`merge_runs`], [`remove_benchmark`], [`truncate_runs`]).
//!
//! pyperf hoists metadata shared by every run into the benchmark, and metadata shared by every
//! benchmark into the suite (`pyperf/_bench.py`), so a one-benchmark file keeps `name` at the top.
//! [`parse_suite`] merges suite → benchmark → run, the later level winning, so every [`Run`] here
//! carries what applies to it. Parsing is pure: it takes the text, not a path.

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::Path;

/// One pyperf benchmark suite (one `pyperf/<config>.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// Benchmarks in file order.
    pub benchmarks: Vec<Benchmark>,
}

/// One benchmark of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Benchmark {
    /// The `name` metadata.
    pub name: String,
    /// The `tags` metadata pyperformance adds (empty when absent).
    pub tags: Vec<String>,
    /// The `unit` metadata: `second` (the default), `byte` or `integer`.
    pub unit: String,
    /// Every run, in file order, calibration runs (no values) included.
    pub runs: Vec<Run>,
}

/// One worker process's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The measured values (warmups excluded); empty for a calibration run.
    pub values: Vec<f64>,
    /// Peak RSS in bytes: `command_max_rss` for benchmarks that time a child command, else the
    /// worker's `mem_max_rss`.
    pub max_rss: Option<f64>,
}

/// Why a pyperf file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PyperfError {
    /// Not JSON, or not shaped like a pyperf suite.
    #[error("not a pyperf JSON suite: {0}")]
    Json(#[from] serde_json::Error),
    /// A version other than the 1.0 this reader knows.
    #[error("unsupported pyperf JSON version {0:?} (expected \"1.0\")")]
    Version(String),
    /// A benchmark without a `name` at any level.
    #[error("benchmark #{0} has no `name` metadata")]
    NoName(usize),
    /// A value pyperf itself would have refused.
    #[error("benchmark {name:?}: value {value} is not a positive finite number")]
    BadValue {
        /// The benchmark.
        name: String,
        /// The value.
        value: f64,
    },
}

#[derive(Deserialize)]
struct RawSuite {
    version: String,
    benchmarks: Vec<RawBenchmark>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawBenchmark {
    runs: Vec<RawRun>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawRun {
    #[serde(default)]
    values: Vec<f64>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

impl Benchmark {
    /// All values of all runs, in order: what pyperf's `Benchmark.get_values()` returns.
    pub fn values(&self) -> Vec<f64> {
        self.runs
            .iter()
            .flat_map(|r| r.values.iter().copied())
            .collect()
    }

    /// The runs that have values (calibration runs left out), in order.
    pub fn value_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| !r.values.is_empty())
    }

    /// The mean of [`Benchmark::values`], or `None` without values.
    pub fn mean(&self) -> Option<f64> {
        let values = self.values();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

impl Suite {
    /// The benchmark called `name`, if the suite has it.
    pub fn get(&self, name: &str) -> Option<&Benchmark> {
        self.benchmarks.iter().find(|b| b.name == name)
    }
}

/// Parses the text of a pyperf JSON 1.0 suite (not gzip-compressed).
pub fn parse_suite(text: &str) -> Result<Suite, PyperfError> {
    let raw: RawSuite = serde_json::from_str(text)?;
    if raw.version != "1.0" {
        return Err(PyperfError::Version(raw.version));
    }
    let mut benchmarks = Vec::with_capacity(raw.benchmarks.len());
    for (index, bench) in raw.benchmarks.into_iter().enumerate() {
        let mut meta = raw.metadata.clone();
        meta.extend(bench.metadata);
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .ok_or(PyperfError::NoName(index))?
            .to_string();
        let tags = match meta.get("tags") {
            Some(Value::Array(tags)) => tags
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let unit = meta
            .get("unit")
            .and_then(Value::as_str)
            .unwrap_or("second")
            .to_string();
        let mut runs = Vec::with_capacity(bench.runs.len());
        for run in bench.runs {
            if let Some(&value) = run.values.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(PyperfError::BadValue { name, value });
            }
            let rss = |key: &str| {
                run.metadata
                    .get(key)
                    .or_else(|| meta.get(key))
                    .and_then(Value::as_f64)
            };
            // bench_runner's order: a benchmark that times a child command reports the child's.
            let max_rss = rss("command_max_rss").or_else(|| rss("mem_max_rss"));
            runs.push(Run {
                values: run.values,
                max_rss,
            });
        }
        benchmarks.push(Benchmark {
            name,
            tags,
            unit,
            runs,
        });
    }
    Ok(Suite { benchmarks })
}

/// Reads a worker's `--output` file: exactly one benchmark; returns its name and its runs with
/// suite, benchmark and run metadata merged into each run (later levels win, as pyperf loads), so
/// that runs from different files merge without conflicts.
pub fn read_worker_runs(path: &Path) -> anyhow::Result<(String, Vec<Value>)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "pyperf worker process didn't produce JSON result ({})",
            path.display()
        )
    })?;
    let suite: Value = serde_json::from_str(&text)
        .with_context(|| format!("pyperf worker wrote invalid JSON ({})", path.display()))?;
    if suite["version"] != "1.0" {
        bail!(
            "pyperf worker wrote JSON version {}, expected 1.0",
            suite["version"]
        );
    }
    let benches = suite["benchmarks"]
        .as_array()
        .context("no benchmarks list")?;
    if benches.len() != 1 {
        bail!("worker produced {} benchmarks instead of 1", benches.len());
    }
    let suite_md = suite["metadata"].as_object().cloned().unwrap_or_default();
    let bench_md = benches[0]["metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut common: Map<String, Value> = suite_md;
    common.extend(bench_md);
    let name = common
        .get("name")
        .and_then(Value::as_str)
        .context("worker result has no benchmark name")?
        .to_string();
    let mut runs = Vec::new();
    for run in benches[0]["runs"].as_array().context("no runs")? {
        let mut md = common.clone();
        if let Some(own) = run["metadata"].as_object() {
            md.extend(own.clone());
        }
        let mut run = run.clone();
        run["metadata"] = Value::Object(md);
        runs.push(run);
    }
    Ok((name, runs))
}

/// The loops a calibration worker (`--calibrate-loops`) settled on, and the benchmark name it emitted.
pub fn read_calibration(path: &Path) -> anyhow::Result<(String, u64)> {
    let (name, runs) = read_worker_runs(path)?;
    let md = &runs.first().context("calibration produced no run")?["metadata"];
    let loops = md["calibrate_loops"]
        .as_u64()
        .or_else(|| md["loops"].as_u64())
        .context("calibration run has no calibrate_loops")?;
    Ok((name, loops))
}

/// An empty suite, as the first merged worker starts it.
pub fn empty_suite() -> Value {
    json!({"version": "1.0", "benchmarks": [], "metadata": {}})
}

/// Appends `runs` (from [`read_worker_runs`]) to benchmark `name` of `suite`, adding the benchmark
/// when it is new; the benchmark and each run carry `tags`.
pub fn merge_runs(
    suite: &mut Value,
    name: &str,
    tags: &[String],
    runs: Vec<Value>,
) -> anyhow::Result<()> {
    let benches = suite["benchmarks"]
        .as_array_mut()
        .context("pyperf suite without a benchmarks list")?;
    let pos = benches
        .iter()
        .position(|b| b["metadata"]["name"].as_str() == Some(name));
    let bench = match pos {
        Some(i) => &mut benches[i],
        None => {
            benches.push(json!({"metadata": {"name": name, "tags": tags}, "runs": []}));
            benches.last_mut().expect("just pushed")
        }
    };
    let list = bench["runs"]
        .as_array_mut()
        .context("benchmark without runs")?;
    for mut run in runs {
        run["metadata"]["tags"] = json!(tags);
        list.push(run);
    }
    Ok(())
}

/// Removes benchmark `name` from `suite`; returns whether it was there.
pub fn remove_benchmark(suite: &mut Value, name: &str) -> bool {
    let Some(benches) = suite["benchmarks"].as_array_mut() else {
        return false;
    };
    let before = benches.len();
    benches.retain(|b| b["metadata"]["name"].as_str() != Some(name));
    benches.len() != before
}

/// Keeps at most `keep(name)` runs of every benchmark of `suite` (the first ones); returns whether
/// anything was dropped.
pub fn truncate_runs(suite: &mut Value, keep: impl Fn(&str) -> usize) -> bool {
    let mut changed = false;
    for b in suite["benchmarks"].as_array_mut().into_iter().flatten() {
        let n = keep(b["metadata"]["name"].as_str().unwrap_or(""));
        if let Some(runs) = b["runs"].as_array_mut() {
            if runs.len() > n {
                runs.truncate(n);
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hoisted_metadata_reaches_every_run() {
        // One benchmark: pyperf hoists name, unit, tags and a shared mem_max_rss to the top level.
        let text = r#"{"version": "1.0",
            "metadata": {"name": "nbody", "unit": "second", "tags": ["math"], "mem_max_rss": 100},
            "benchmarks": [{"runs": [
                {"warmups": [[1, 0.5]], "metadata": {"calibrate_loops": 1}},
                {"values": [0.1, 0.2], "warmups": [[1, 0.3]]},
                {"values": [0.3], "metadata": {"mem_max_rss": 200}}]}]}"#;
        let suite = parse_suite(text).unwrap();
        let bench = &suite.benchmarks[0];
        assert_eq!(bench.name, "nbody");
        assert_eq!(bench.tags, vec!["math".to_string()]);
        assert_eq!(bench.values(), vec![0.1, 0.2, 0.3]);
        assert_eq!(bench.value_runs().count(), 2);
        let rss: Vec<_> = bench.runs.iter().map(|r| r.max_rss).collect();
        assert_eq!(rss, vec![Some(100.0), Some(100.0), Some(200.0)]);
    }

    #[test]
    fn refuses_other_versions_missing_names_and_bad_values() {
        let v = parse_suite(r#"{"version": "0.9", "benchmarks": []}"#);
        assert!(matches!(v, Err(PyperfError::Version(_))));
        let n = parse_suite(r#"{"version": "1.0", "benchmarks": [{"runs": []}]}"#);
        assert!(matches!(n, Err(PyperfError::NoName(0))));
        let b = parse_suite(
            r#"{"version": "1.0", "benchmarks": [{"metadata": {"name": "x"}, "runs": [{"values": [0.0]}]}]}"#,
        );
        assert!(matches!(b, Err(PyperfError::BadValue { .. })));
    }
}
