//! Provides the analysis of a loaded run: for every configuration but the baseline, the per-benchmark
//! comparison (pyperf's normalized mean and t-test, the overhead distribution), the ALL row, the
//! geometric mean, HPT, memory change, capture bytes per event, and the missing benchmarks with their
//! reasons. Pure: it works on [`RunDir`] data and does no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::pyperf::Benchmark;
use crate::run::{ConfigInfo, RunDir, TracerLine};
use crate::stats::hpt::{self, HptError, HptReport};
use crate::stats::memory::{self, MemoryEntry, MemoryPair};
use crate::stats::overhead::{self, Distribution, Estimator, Summary};
use crate::stats::ttest::{significance, Significance};
use crate::stats::{geometric_mean, mean};

/// One benchmark under one configuration, compared with the baseline.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// Benchmark name.
    pub name: String,
    /// pyperformance tags (from the baseline's pyperf metadata, else run.json).
    pub tags: Vec<String>,
    /// Micro-benchmark (true) or macro-benchmark (`apps` tag).
    pub micro: bool,
    /// pyperf unit (`second` for timings).
    pub unit: String,
    /// Mean of the baseline's values.
    pub baseline_mean: f64,
    /// Mean of the configuration's values.
    pub traced_mean: f64,
    /// traced mean / baseline mean: pyperf's `norm_mean`.
    pub norm_mean: f64,
    /// pyperf's t-test of baseline against traced values.
    pub significance: Significance,
    /// The overhead distribution, formed by the analysis's estimator.
    pub overhead: Distribution,
    /// Its mean and quantiles.
    pub summary: Summary,
    /// The value-by-value ratios (one per measured value): what `harness compare` tests between
    /// two runs, whatever the estimator.
    pub value_ratios: Distribution,
}

/// A benchmark without a result for a configuration, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Benchmark name.
    pub name: String,
    /// Why: the failures.jsonl reason(s), or the missing file/entry.
    pub reason: String,
}

/// Capture size per recorded event, from `tracer/<config>/*.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaptureCost {
    /// Sum of `capture_bytes`.
    pub bytes: u64,
    /// Sum of `stats.events`.
    pub events: u64,
}

impl CaptureCost {
    /// Bytes per recorded event (allocation or free), `None` without events.
    pub fn bytes_per_event(&self) -> Option<f64> {
        (self.events > 0).then(|| self.bytes as f64 / self.events as f64)
    }
}

/// Everything the report says about one configuration.
#[derive(Debug, Clone)]
pub struct ConfigAnalysis {
    /// The configuration.
    pub config: ConfigInfo,
    /// An A/A check: untraced, like the baseline, so every row should read 1.00x.
    pub aa: bool,
    /// How the overhead distributions were formed.
    pub estimator: Estimator,
    /// Benchmarks compared, in run.json order.
    pub rows: Vec<BenchRow>,
    /// Benchmarks without a comparison.
    pub missing: Vec<Missing>,
    /// Every row's ratios pooled, sorted (the ALL row).
    pub all: Vec<f64>,
    /// Mean and quantiles of `all`, `None` when no benchmark was compared.
    pub all_summary: Option<Summary>,
    /// Geometric mean of the rows' `norm_mean` (pyperf's "Geometric mean", all rows, significant
    /// or not), `None` without rows.
    pub geometric_mean: Option<f64>,
    /// HPT over the compared benchmarks.
    pub hpt: Result<HptReport, HptError>,
    /// Per-benchmark memory comparison (benchmarks whose peak-RSS counts match).
    pub memory: Vec<MemoryEntry>,
    /// faster-cpython's memory change, `None` when unknown.
    pub memory_change: Option<f64>,
    /// Capture bytes per event, per benchmark with tracer statistics.
    pub capture: BTreeMap<String, CaptureCost>,
    /// The machine's noise floor: the run's A/A configuration's spread, when it has one (`None`
    /// for the A/A configuration itself).
    pub noise: Option<Noise>,
}

/// The 10%-90% spread of the run's A/A configuration (an untraced configuration identical to the
/// baseline): what "no difference" looks like on this machine, drawn behind every violin.
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    /// The A/A configuration.
    pub config: String,
    /// 10% and 90% quantiles of its pooled ALL row.
    pub pooled: (f64, f64),
    /// 10% and 90% quantiles per benchmark.
    pub per_bench: BTreeMap<String, (f64, f64)>,
}

/// A benchmark whose A/A 10%-90% band is wider than this (half its width, relative) is flagged as
/// unreliable on the machine: its overhead cannot be told from noise at that scale.
pub const UNRELIABLE_HALF_WIDTH: f64 = 0.10;

impl Noise {
    fn of(aa: &ConfigAnalysis) -> Option<Noise> {
        let s = aa.all_summary.as_ref()?;
        Some(Noise {
            config: aa.config.name.clone(),
            pooled: (s.q10, s.q90),
            per_bench: aa
                .rows
                .iter()
                .map(|r| (r.name.clone(), (r.summary.q10, r.summary.q90)))
                .collect(),
        })
    }

    /// Benchmarks whose A/A band is wider than ±[`UNRELIABLE_HALF_WIDTH`], in name order.
    pub fn unreliable(&self) -> Vec<&str> {
        self.per_bench
            .iter()
            .filter(|(_, (lo, hi))| (hi - lo) / 2.0 > UNRELIABLE_HALF_WIDTH)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

impl ConfigAnalysis {
    /// The rows the tables show as significant (pyperf's t-test; a test that cannot be computed
    /// counts, as in `compare_to`).
    pub fn significant_rows(&self) -> impl Iterator<Item = &BenchRow> {
        self.rows
            .iter()
            .filter(|r| r.significance.shown_as_significant())
    }

    /// The measurements behind the ALL row (see [`Distribution::measured`]).
    pub fn measured(&self) -> usize {
        self.rows.iter().map(|r| r.overhead.measured()).sum()
    }

    /// Capture bytes and events over all benchmarks.
    pub fn capture_total(&self) -> Option<CaptureCost> {
        if self.capture.is_empty() {
            return None;
        }
        Some(self.capture.values().fold(
            CaptureCost {
                bytes: 0,
                events: 0,
            },
            |acc, c| CaptureCost {
                bytes: acc.bytes + c.bytes,
                events: acc.events + c.events,
            },
        ))
    }
}

/// The analysis of a whole run.
#[derive(Debug, Clone)]
pub struct RunAnalysis {
    /// How the overhead distributions were formed.
    pub estimator: Estimator,
    /// The baseline configuration.
    pub baseline: ConfigInfo,
    /// Every other configuration, in run.json order.
    pub configs: Vec<ConfigAnalysis>,
}

/// Analyses every configuration of `run` against its baseline, with the default estimator.
pub fn analyse(run: &RunDir) -> RunAnalysis {
    analyse_with(run, Estimator::default())
}

/// Analyses every configuration of `run` against its baseline, forming the overhead distributions
/// with `estimator`.
pub fn analyse_with(run: &RunDir, estimator: Estimator) -> RunAnalysis {
    let baseline = run
        .info
        .configs
        .iter()
        .find(|c| c.name == run.info.baseline)
        .expect("run::load checks that the baseline is a configuration")
        .clone();
    let mut configs: Vec<ConfigAnalysis> = run
        .info
        .configs
        .iter()
        .filter(|c| c.name != baseline.name)
        .map(|c| analyse_config(run, c, &baseline, estimator))
        .collect();
    // The first A/A configuration is the run's noise floor, shown beside every other one.
    if let Some(noise) = configs.iter().find(|a| a.aa).and_then(Noise::of) {
        for a in configs.iter_mut().filter(|a| a.config.name != noise.config) {
            a.noise = Some(noise.clone());
        }
    }
    RunAnalysis {
        estimator,
        baseline,
        configs,
    }
}

/// Benchmark names in run.json order, then any others found in the pyperf files or in
/// failures.jsonl (a benchmark that failed to install or calibrate is only there), sorted.
fn benchmark_names(run: &RunDir) -> Vec<String> {
    let mut names: Vec<String> = run.info.benchmarks.iter().map(|b| b.name.clone()).collect();
    let known: BTreeSet<String> = names.iter().cloned().collect();
    let extra: BTreeSet<String> = run
        .suites
        .values()
        .flat_map(|s| s.benchmarks.iter().map(|b| b.name.clone()))
        .chain(run.failures.iter().map(|f| f.benchmark.clone()))
        .filter(|n| !known.contains(n))
        .collect();
    names.extend(extra);
    names
}

/// The failures.jsonl lines of (benchmark, config) in one string.
fn failure_reason(run: &RunDir, bench: &str, config: &str) -> Option<String> {
    let reasons: Vec<String> = run
        .failures
        .iter()
        .filter(|f| f.benchmark == bench && f.config == config)
        .map(|f| {
            let kind = f.kind.as_deref().unwrap_or("failed");
            let reason = f.reason.as_deref().unwrap_or("no reason given");
            match f.process {
                Some(k) => format!("{kind} in process {k}: {reason}"),
                None => format!("{kind}: {reason}"),
            }
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn analyse_config(
    run: &RunDir,
    config: &ConfigInfo,
    baseline: &ConfigInfo,
    estimator: Estimator,
) -> ConfigAnalysis {
    let base_name = &run.info.baseline;
    let base_suite = run.suites.get(base_name);
    let suite = run.suites.get(&config.name);
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for name in benchmark_names(run) {
        let lookup =
            |suite: Option<&crate::pyperf::Suite>, cfg: &str| -> Result<Benchmark, String> {
                if let Some(reason) = failure_reason(run, &name, cfg) {
                    let prefix = if cfg == config.name { "" } else { "baseline " };
                    return Err(format!("{prefix}{reason}"));
                }
                let Some(suite) = suite else {
                    return Err(format!("no pyperf/{cfg}.json"));
                };
                match suite.get(&name) {
                    Some(b) if b.value_runs().next().is_some() => Ok(b.clone()),
                    Some(_) => Err(format!("no values in pyperf/{cfg}.json")),
                    None => Err(format!("not in pyperf/{cfg}.json")),
                }
            };
        let pair =
            lookup(suite, &config.name).and_then(|t| Ok((t, lookup(base_suite, base_name)?)));
        match pair {
            Ok((traced, base)) => rows.push(compare_benchmark(run, &base, &traced, estimator)),
            Err(reason) => missing.push(Missing { name, reason }),
        }
    }

    let all = overhead::pool(rows.iter().map(|r| &r.overhead));
    let all_summary = (!all.is_empty()).then(|| overhead::summarize_sorted(&all));
    let norm_means: Vec<f64> = rows.iter().map(|r| r.norm_mean).collect();
    let geometric_mean = geometric_mean(&norm_means);

    let values: Vec<(Vec<f64>, Vec<f64>)> = rows
        .iter()
        .map(|r| {
            let get = |cfg: &str| {
                run.suites[cfg]
                    .get(&r.name)
                    .map(|b| b.values())
                    .unwrap_or_default()
            };
            (get(&config.name), get(base_name))
        })
        .collect();
    let pairs: Vec<hpt::Pair> = rows
        .iter()
        .zip(&values)
        .map(|(r, (t, b))| hpt::Pair {
            name: &r.name,
            changed: t,
            reference: b,
        })
        .collect();
    let hpt = hpt::report(&pairs);

    let memory: Vec<MemoryEntry> = rows
        .iter()
        .filter_map(|r| {
            let rss = |cfg: &str| -> Vec<f64> {
                run.suites[cfg]
                    .get(&r.name)
                    .map(|b| b.value_runs().filter_map(|run| run.max_rss).collect())
                    .unwrap_or_default()
            };
            let (traced, baseline) = (rss(&config.name), rss(base_name));
            memory::compare(&MemoryPair {
                name: &r.name,
                traced: &traced,
                baseline: &baseline,
            })
        })
        .collect();
    let memory_change = memory::memory_change(&memory);

    let capture = rows
        .iter()
        .filter_map(|r| {
            let lines = run.tracer.get(&(config.name.clone(), r.name.clone()))?;
            Some((r.name.clone(), capture_cost(lines)?))
        })
        .collect();

    ConfigAnalysis {
        config: config.clone(),
        aa: config.tracer() == "none" && baseline.tracer() == "none",
        estimator,
        rows,
        missing,
        all,
        all_summary,
        geometric_mean,
        hpt,
        memory,
        memory_change,
        capture,
        noise: None,
    }
}

/// Sums `capture_bytes` and `stats.events` over the lines that have both. For Memray's statistics,
/// which have no `events`, its `total_num_allocations` stands in (bytes per recorded allocation).
pub fn capture_cost(lines: &[TracerLine]) -> Option<CaptureCost> {
    let mut cost = CaptureCost {
        bytes: 0,
        events: 0,
    };
    let mut any = false;
    for line in lines {
        let events = line
            .stats
            .as_ref()
            .and_then(|s| s.get("events").or_else(|| s.get("total_num_allocations")))
            .and_then(Value::as_u64);
        let bytes = line.capture_bytes.or_else(|| {
            line.stats
                .as_ref()
                .and_then(|s| s.get("capture_bytes"))
                .and_then(Value::as_u64)
        });
        if let (Some(bytes), Some(events)) = (bytes, events) {
            cost.bytes += bytes;
            cost.events += events;
            any = true;
        }
    }
    any.then_some(cost)
}

fn compare_benchmark(
    run: &RunDir,
    base: &Benchmark,
    traced: &Benchmark,
    estimator: Estimator,
) -> BenchRow {
    let info = run.info.benchmarks.iter().find(|b| b.name == base.name);
    let tags = if base.tags.is_empty() {
        info.map(|i| i.tags.clone()).unwrap_or_default()
    } else {
        base.tags.clone()
    };
    let micro = info
        .and_then(|i| i.micro)
        .unwrap_or_else(|| !tags.iter().any(|t| t == "apps"));
    let (base_values, traced_values) = (base.values(), traced.values());
    let baseline_mean = mean(&base_values).expect("checked: the baseline has values");
    let traced_mean = mean(&traced_values).expect("checked: the configuration has values");
    let base_runs: Vec<&[f64]> = base.value_runs().map(|r| r.values.as_slice()).collect();
    let traced_runs: Vec<&[f64]> = traced.value_runs().map(|r| r.values.as_slice()).collect();
    let ratios = |e| {
        overhead::estimate(e, &traced_runs, &base_runs).expect("checked: both sides have values")
    };
    let overhead = ratios(estimator);
    BenchRow {
        name: base.name.clone(),
        tags,
        micro,
        unit: base.unit.clone(),
        baseline_mean,
        traced_mean,
        norm_mean: traced_mean / baseline_mean,
        significance: significance(&base_values, &traced_values),
        summary: overhead.summary(),
        overhead,
        value_ratios: ratios(Estimator::ValueByValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyperf::parse_suite;
    use crate::run::{Failure, RunInfo};

    fn suite(benches: &[(&str, &[&[f64]])]) -> crate::pyperf::Suite {
        let benchmarks: Vec<String> = benches
            .iter()
            .map(|(name, runs)| {
                let runs: Vec<String> = runs
                    .iter()
                    .map(|v| format!(r#"{{"values": {v:?}, "metadata": {{"mem_max_rss": 1000}}}}"#))
                    .collect();
                format!(
                    r#"{{"metadata": {{"name": "{name}"}}, "runs": [{}]}}"#,
                    runs.join(",")
                )
            })
            .collect();
        parse_suite(&format!(
            r#"{{"version": "1.0", "benchmarks": [{}]}}"#,
            benchmarks.join(",")
        ))
        .unwrap()
    }

    fn run_dir() -> RunDir {
        let info: RunInfo = serde_json::from_str(
            r#"{"schema": 1, "baseline": "base", "benchmarks": [
                  {"name": "a", "tags": ["apps"], "micro": false}, {"name": "b"}, {"name": "c"}],
                "configs": [{"name": "base"}, {"name": "memray:native", "tracer": "memray"}]}"#,
        )
        .unwrap();
        let mut suites = BTreeMap::new();
        suites.insert(
            "base".to_string(),
            suite(&[
                ("a", &[&[1.0, 1.0], &[2.0, 2.0]]),
                ("b", &[&[1.0]]),
                ("c", &[&[1.0]]),
            ]),
        );
        suites.insert(
            "memray:native".to_string(),
            suite(&[("a", &[&[1.5, 1.5], &[3.0, 3.0]]), ("b", &[&[2.0]])]),
        );
        let failure = |bench: &str, config: &str, process| Failure {
            benchmark: bench.to_string(),
            config: config.to_string(),
            process,
            kind: Some("failed".to_string()),
            reason: Some("requirements did not install".to_string()),
            stderr_tail: None,
        };
        let mut tracer = BTreeMap::new();
        let line: TracerLine = serde_json::from_str(
            r#"{"process": 0, "capture_bytes": 900, "stats": {"total_num_allocations": 100}}"#,
        )
        .unwrap();
        tracer.insert(("memray:native".to_string(), "a".to_string()), vec![line]);
        RunDir {
            path: "/nonexistent".into(),
            info,
            suites,
            tracer,
            failures: vec![
                failure("b", "memray:native", Some(2)),
                failure("d", "base", None),
                failure("d", "memray:native", None),
            ],
            system_txt: None,
        }
    }

    #[test]
    fn every_benchmark_is_compared_or_listed_missing_with_its_reason() {
        let analysis = analyse(&run_dir());
        assert_eq!(analysis.baseline.name, "base");
        let a = &analysis.configs[0];
        assert_eq!(a.rows.len(), 1);
        let row = &a.rows[0];
        assert_eq!(row.name, "a");
        assert!(!row.micro);
        assert_eq!(row.value_ratios.ratios, vec![1.5; 4]);
        assert_eq!(row.summary.mean, 1.5);
        assert_eq!(row.norm_mean, 1.5);
        let missing: Vec<(&str, &str)> = a
            .missing
            .iter()
            .map(|m| (m.name.as_str(), m.reason.as_str()))
            .collect();
        assert_eq!(
            missing,
            vec![
                // Present in the pyperf file but failed in a process: missing all the same.
                ("b", "failed in process 2: requirements did not install"),
                ("c", "not in pyperf/memray:native.json"),
                // Only in failures.jsonl (failed before run.json listed it).
                ("d", "failed: requirements did not install"),
            ]
        );
        assert!(a.all.iter().all(|r| *r == 1.5));
        assert!(!a.aa, "Memray is not an A/A check");
        assert_eq!(a.geometric_mean, Some(1.5));
        assert!(a.hpt.is_err(), "2 values per side are too few for HPT");
        // Memray's statistics count allocations: 900 bytes / 100 allocations.
        assert_eq!(a.capture["a"].bytes_per_event(), Some(9.0));
    }

    #[test]
    fn a_failed_baseline_is_named_as_such() {
        let mut run = run_dir();
        run.failures = vec![Failure {
            benchmark: "c".to_string(),
            config: "base".to_string(),
            process: Some(0),
            kind: Some("timeout".to_string()),
            reason: Some("exceeded 600 s".to_string()),
            stderr_tail: None,
        }];
        let a = &analyse(&run).configs[0];
        let c = a.missing.iter().find(|m| m.name == "c").unwrap();
        // The traced side has no result either, which is found first.
        assert_eq!(c.reason, "not in pyperf/memray:native.json");
        run.suites
            .get_mut("memray:native")
            .unwrap()
            .benchmarks
            .push(suite(&[("c", &[&[1.0]])]).benchmarks.remove(0));
        let a = &analyse(&run).configs[0];
        let c = a.missing.iter().find(|m| m.name == "c").unwrap();
        assert_eq!(c.reason, "baseline timeout in process 0: exceeded 600 s");
    }
}
