//! The records of a run directory: `run.json` ([`RunInfo`]), the lines of `tracer/<config>/<benchmark>.jsonl`
//! ([`TracerLine`]), of `failures.jsonl` ([`Failure`]) and of `progress.jsonl` ([`Progress`]).
//!
//! The harness fills in every field it writes; the fields a hand-made or older run directory may
//! lack are `Option`s or have a default, so that the report reads what is there and says what is not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `run.json`. `Request` is what the harness needs to resume the run (its own business: the report
/// reads it as an opaque JSON value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo<Request = Value> {
    /// Format version (1).
    pub schema: u32,
    /// UTC start, e.g. `2026-11-23T04:30:00Z`.
    #[serde(default)]
    pub started: Option<String>,
    /// UTC end; `None` while running or after an interruption.
    #[serde(default)]
    pub finished: Option<String>,
    /// The suite that was run (`quick`, `custom`, ...).
    #[serde(default)]
    pub suite: Option<String>,
    /// pyperf settings.
    #[serde(default)]
    pub settings: Settings,
    /// The benchmarks (one per task of a script), in the order they are measured.
    #[serde(default)]
    pub benchmarks: Vec<BenchmarkInfo>,
    /// The configurations, the baseline among them.
    pub configs: Vec<ConfigInfo>,
    /// Name of the baseline configuration.
    pub baseline: String,
    /// What is known about the machine.
    #[serde(default)]
    pub system: SystemInfo,
    /// Benchmarks of the suite that this Python cannot run (their `requires-python`), not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<Excluded>,
    /// What `harness run --resume` needs to continue the run exactly as asked.
    #[serde(default)]
    pub request: Request,
}

/// A benchmark of the selected suite that was not run because the Python cannot run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// Manifest name.
    pub benchmark: String,
    /// One line, e.g. `requires-python >=3.12 excludes 3.11.7`.
    pub reason: String,
}

/// `run.json` `settings`. A run directory without them reads as 0 processes and values (which the
/// harness never writes: [`Settings::known`] says whether they were recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Worker processes per benchmark and configuration.
    #[serde(default)]
    pub processes: u32,
    /// Values per process.
    #[serde(default)]
    pub values: u32,
    /// Warmups per process.
    #[serde(default)]
    pub warmups: u32,
    /// `fast`, `normal` or `rigorous`.
    #[serde(default)]
    pub mode: String,
    /// A worker running longer than this is killed (seconds).
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// Minimum duration of one value when calibrating loops (seconds).
    #[serde(default = "default_min_time")]
    pub min_time: f64,
    /// The order of the configurations within each round of worker processes.
    #[serde(default)]
    pub order: ConfigOrder,
    /// The clock of pyperf's workers.
    #[serde(default)]
    pub timer: Timer,
}

/// The clock pyperf's workers time the benchmark with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timer {
    /// `time.perf_counter`: wall time (pyperf's own).
    #[default]
    Wall,
    /// `time.process_time`: the worker process's CPU time, all its threads (the tracer's writer
    /// thread included), not the time it waits.
    Cpu,
}

/// The order in which the configurations run within a round (one process of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigOrder {
    /// The same order every round (what runs before `order` was recorded did).
    #[default]
    Fixed,
    /// Round k starts with configuration k (mod n) and goes on in run.json order, wrapping: a
    /// cyclic Latin square, so over n rounds every configuration runs once in every position.
    Rotate,
}

impl ConfigOrder {
    /// The indices of `n` configurations in the order they run in round `round`.
    pub fn round(self, n: usize, round: u32) -> impl Iterator<Item = usize> {
        let shift = match self {
            ConfigOrder::Fixed => 0,
            ConfigOrder::Rotate if n > 0 => round as usize % n,
            ConfigOrder::Rotate => 0,
        };
        (0..n).map(move |i| (i + shift) % n)
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            processes: 0,
            values: 0,
            warmups: 0,
            mode: String::new(),
            timeout_s: default_timeout(),
            min_time: default_min_time(),
            order: ConfigOrder::Fixed,
            timer: Timer::Wall,
        }
    }
}

impl Settings {
    /// Whether `run.json` recorded the processes and values (the harness always does).
    pub fn known(&self) -> bool {
        self.processes > 0 && self.values > 0
    }
}

fn default_timeout() -> u64 {
    600
}

fn default_min_time() -> f64 {
    0.1
}

/// One entry of `run.json` `benchmarks`: one benchmark as it appears in the pyperf files (one task
/// of a pyperformance script).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkInfo {
    /// Name as it appears in the pyperf files.
    pub name: String,
    /// pyperformance tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// True when the tags do not include `apps`.
    #[serde(default)]
    pub micro: Option<bool>,
    /// Loops calibrated on the baseline, used by every configuration.
    #[serde(default)]
    pub loops: Option<u64>,
    /// The `--worker-task` index, for scripts that run several tasks.
    #[serde(default)]
    pub task: Option<u32>,
    /// The pyperformance manifest entry the task belongs to (`deepcopy` for `deepcopy_memo`).
    #[serde(default)]
    pub manifest_name: Option<String>,
}

impl BenchmarkInfo {
    /// The manifest entry whose script runs this benchmark (its own name when not recorded).
    pub fn manifest_entry(&self) -> &str {
        self.manifest_name.as_deref().unwrap_or(&self.name)
    }
}

/// One entry of `run.json` `configs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigInfo {
    /// File-name key (`default`, `memray:native`, `python-allocators+native`).
    pub name: String,
    /// Human label for titles and legends.
    #[serde(default)]
    pub label: Option<String>,
    /// `none`, `ours`, `memray`, `tracemalloc` or `custom`.
    #[serde(default)]
    pub tracer: Option<String>,
    /// Tracer mode, if any.
    #[serde(default)]
    pub mode: Option<String>,
    /// Stack source of our tracer (`walk`, `profile`, `noop`).
    #[serde(default)]
    pub stack_source: Option<String>,
}

impl ConfigInfo {
    /// The label, or the name when there is none.
    pub fn display(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// The tracer, `none` when not given.
    pub fn tracer(&self) -> &str {
        self.tracer.as_deref().unwrap_or("none")
    }
}

/// `run.json` `system`: the known keys, plus any others (kept for the performance page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// CPU model.
    pub cpu: Option<String>,
    /// Logical CPUs.
    pub cores: Option<u64>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Python version.
    pub python: Option<String>,
    /// Python's configure flags.
    pub python_build: Option<String>,
    /// Our tracer's version.
    pub tracer_version: Option<String>,
    /// Other keys (`pyperf`, `pyperformance`, `memray`, ...), with their JSON values.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One line of `tracer/<config>/<benchmark>.jsonl`: one traced worker process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerLine {
    /// Worker process index.
    #[serde(default)]
    pub process: Option<u32>,
    /// Size of the capture file.
    #[serde(default)]
    pub capture_bytes: Option<u64>,
    /// `tracer stats --json` (or `memray stats --json`) output, as it is.
    #[serde(default)]
    pub stats: Option<Value>,
}

/// Why a worker's result does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The worker (or its requirements, or its calibration) failed.
    Failed,
    /// The worker ran longer than the timeout and was killed.
    Timeout,
    /// The worker ran, but its capture was missing, empty, truncated or unreadable.
    Invalid,
}

impl FailureKind {
    /// `failed`, `timeout` or `invalid`, as `failures.jsonl` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Failed => "failed",
            FailureKind::Timeout => "timeout",
            FailureKind::Invalid => "invalid",
        }
    }
}

/// One line of `failures.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Benchmark name.
    pub benchmark: String,
    /// Configuration name.
    pub config: String,
    /// Worker process index; `None` for a failure before any measured process.
    #[serde(default)]
    pub process: Option<u32>,
    /// `failed`, `timeout` or `invalid` ([`FailureKind`]).
    #[serde(default)]
    pub kind: Option<String>,
    /// One line.
    #[serde(default)]
    pub reason: Option<String>,
    /// The last lines of the worker's stderr.
    #[serde(default)]
    pub stderr_tail: Option<String>,
}

impl Failure {
    /// A failure as the harness records it, every field filled in.
    pub fn new(
        benchmark: &str,
        config: &str,
        process: Option<u32>,
        kind: FailureKind,
        reason: &str,
        stderr_tail: &str,
    ) -> Failure {
        Failure {
            benchmark: benchmark.to_string(),
            config: config.to_string(),
            process,
            kind: Some(kind.as_str().to_string()),
            reason: Some(reason.to_string()),
            stderr_tail: Some(stderr_tail.to_string()),
        }
    }
}

/// One line of `progress.jsonl`: a worker process whose result is merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Progress {
    /// Benchmark name.
    pub benchmark: String,
    /// Configuration name.
    pub config: String,
    /// Worker process index.
    pub process: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_puts_every_configuration_in_every_position() {
        let rounds: Vec<Vec<usize>> = (0..6)
            .map(|k| ConfigOrder::Rotate.round(3, k).collect())
            .collect();
        assert_eq!(rounds[0], [0, 1, 2]);
        assert_eq!(rounds[1], [1, 2, 0]);
        assert_eq!(rounds[2], [2, 0, 1]);
        assert_eq!(rounds[3], [0, 1, 2]);
        for config in 0..3 {
            for position in 0..3 {
                let times = rounds.iter().filter(|r| r[position] == config).count();
                assert_eq!(times, 2, "configuration {config} in position {position}");
            }
        }
        let fixed: Vec<usize> = ConfigOrder::Fixed.round(3, 4).collect();
        assert_eq!(fixed, [0, 1, 2]);
        assert_eq!(ConfigOrder::Rotate.round(0, 3).count(), 0);
    }

    #[test]
    fn runs_without_an_order_were_fixed() {
        let s: Settings = serde_json::from_str(
            r#"{"processes": 6, "values": 3, "warmups": 1, "mode": "normal"}"#,
        )
        .unwrap();
        assert_eq!(s.order, ConfigOrder::Fixed);
        let s: Settings = serde_json::from_str(
            r#"{"processes": 6, "values": 3, "warmups": 1, "mode": "normal", "order": "rotate"}"#,
        )
        .unwrap();
        assert_eq!(s.order, ConfigOrder::Rotate);
    }
}
