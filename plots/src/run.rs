//! Provides the loading of a run directory (`docs/run-format.md`): `run.json`, `pyperf/<config>.json`,
//! `tracer/<config>/<benchmark>.jsonl`, `failures.jsonl` and `system.txt`, into plain data
//! ([`RunDir`]). This is the only module of the crate that reads files; every error names the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;

use crate::pyperf::{parse_suite, Suite};

/// `run.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunInfo {
    /// Format version (1).
    pub schema: u32,
    /// UTC start, e.g. `2026-11-23T04:30:00Z`.
    #[serde(default)]
    pub started: Option<String>,
    /// UTC end; `None` while running or after an interruption.
    #[serde(default)]
    pub finished: Option<String>,
    /// The suite that was run (`quick`, `default`, ...).
    #[serde(default)]
    pub suite: Option<String>,
    /// pyperf settings.
    #[serde(default)]
    pub settings: Settings,
    /// The benchmarks asked for.
    #[serde(default)]
    pub benchmarks: Vec<BenchmarkInfo>,
    /// The configurations, the baseline among them.
    pub configs: Vec<ConfigInfo>,
    /// Name of the baseline configuration.
    pub baseline: String,
    /// What is known about the machine.
    #[serde(default)]
    pub system: SystemInfo,
}

/// `run.json` `settings`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    /// Worker processes per benchmark and configuration.
    pub processes: Option<u64>,
    /// Values per process.
    pub values: Option<u64>,
    /// Warmups per process.
    pub warmups: Option<u64>,
    /// `fast`, `normal` or `rigorous`.
    pub mode: Option<String>,
}

/// One entry of `run.json` `benchmarks`.
#[derive(Debug, Clone, Deserialize)]
pub struct BenchmarkInfo {
    /// Name as it appears in the pyperf files.
    pub name: String,
    /// pyperformance tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// True when the tags do not include `apps`.
    #[serde(default)]
    pub micro: Option<bool>,
    /// Loops calibrated on the baseline.
    #[serde(default)]
    pub loops: Option<u64>,
}

/// One entry of `run.json` `configs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConfigInfo {
    /// File-name key (`default`, `memray:native`, `python-allocators+native`).
    pub name: String,
    /// Human label for titles and legends.
    #[serde(default)]
    pub label: Option<String>,
    /// `none`, `ours`, `memray`, `tracemalloc`, ...
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
#[derive(Debug, Clone, Default, Deserialize)]
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

/// One line of `tracer/<config>/<benchmark>.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct TracerLine {
    /// Worker process index.
    #[serde(default)]
    pub process: Option<u64>,
    /// Size of the capture file.
    #[serde(default)]
    pub capture_bytes: Option<u64>,
    /// `tracer stats --json` (or `memray stats --json`) output, as it is.
    #[serde(default)]
    pub stats: Option<Value>,
}

/// One line of `failures.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    /// Benchmark name.
    pub benchmark: String,
    /// Configuration name.
    pub config: String,
    /// Worker process index.
    #[serde(default)]
    pub process: Option<u64>,
    /// `failed`, `timeout` or `invalid`.
    #[serde(default)]
    pub kind: Option<String>,
    /// One line.
    #[serde(default)]
    pub reason: Option<String>,
    /// The last lines of the worker's stderr.
    #[serde(default)]
    pub stderr_tail: Option<String>,
}

/// Everything a run directory holds that the report uses.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
    /// `run.json`.
    pub info: RunInfo,
    /// `pyperf/<config>.json` per configuration; a configuration without a file is absent.
    pub suites: BTreeMap<String, Suite>,
    /// `tracer/<config>/<benchmark>.jsonl`, keyed by (config, benchmark).
    pub tracer: BTreeMap<(String, String), Vec<TracerLine>>,
    /// `failures.jsonl` (empty when the file does not exist).
    pub failures: Vec<Failure>,
    /// `system.txt`, if present.
    pub system_txt: Option<String>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = read(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a valid line", path.display(), i + 1))
        })
        .collect()
}

/// Loads the run directory `dir`.
pub fn load(dir: &Path) -> anyhow::Result<RunDir> {
    let run_json = dir.join("run.json");
    if !run_json.is_file() {
        bail!(
            "{} is not a run directory: it has no run.json (`harness run` writes one)",
            dir.display()
        );
    }
    let info: RunInfo = serde_json::from_str(&read(&run_json)?)
        .with_context(|| format!("{} is not a valid run.json", run_json.display()))?;
    if info.schema != 1 {
        bail!(
            "{}: schema {} is not supported (this report reads schema 1)",
            run_json.display(),
            info.schema
        );
    }
    if !info.configs.iter().any(|c| c.name == info.baseline) {
        bail!(
            "{}: the baseline {:?} is not among the configurations",
            run_json.display(),
            info.baseline
        );
    }

    let mut suites = BTreeMap::new();
    for config in &info.configs {
        let path = dir.join("pyperf").join(format!("{}.json", config.name));
        if path.is_file() {
            let suite = parse_suite(&read(&path)?)
                .with_context(|| format!("failed to read pyperf results {}", path.display()))?;
            suites.insert(config.name.clone(), suite);
        }
    }

    let mut tracer = BTreeMap::new();
    for config in &info.configs {
        let config_dir = dir.join("tracer").join(&config.name);
        let Ok(entries) = std::fs::read_dir(&config_dir) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("failed to list {}", config_dir.display()))?
                .path();
            let Some(bench) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jsonl"))
            else {
                continue;
            };
            let lines = read_jsonl(&path)?;
            tracer.insert((config.name.clone(), bench.to_string()), lines);
        }
    }

    let failures_path = dir.join("failures.jsonl");
    let failures = if failures_path.is_file() {
        read_jsonl(&failures_path)?
    } else {
        Vec::new()
    };
    let system_path = dir.join("system.txt");
    let system_txt = if system_path.is_file() {
        Some(read(&system_path)?)
    } else {
        None
    };

    Ok(RunDir {
        path: dir.to_path_buf(),
        info,
        suites,
        tracer,
        failures,
        system_txt,
    })
}
