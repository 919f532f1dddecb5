//! Reads a whole run directory into plain data ([`Run`]), for the report. Unlike the harness's own
//! reads (which skip a torn last line and carry on), every file here must parse, and every error
//! names the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;

use crate::pyperf::{parse_suite, Suite};
use crate::records::{Failure, RunInfo, TracerLine};
use crate::RunDir;

/// Everything a run directory holds that the report uses.
#[derive(Debug, Clone)]
pub struct Run {
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

fn read_jsonl<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
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
pub fn load(dir: &Path) -> anyhow::Result<Run> {
    let paths = RunDir::at(dir);
    let run_json = paths.run_json();
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
        let path = paths.pyperf(&config.name);
        if path.is_file() {
            let suite = parse_suite(&read(&path)?)
                .with_context(|| format!("failed to read pyperf results {}", path.display()))?;
            suites.insert(config.name.clone(), suite);
        }
    }

    let mut tracer = BTreeMap::new();
    for config in &info.configs {
        let config_dir = paths.tracer_dir(&config.name);
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

    let failures_path = paths.failures();
    let failures = if failures_path.is_file() {
        read_jsonl(&failures_path)?
    } else {
        Vec::new()
    };
    let system_path = paths.system_txt();
    let system_txt = if system_path.is_file() {
        Some(read(&system_path)?)
    } else {
        None
    };

    Ok(Run {
        path: dir.to_path_buf(),
        info,
        suites,
        tracer,
        failures,
        system_txt,
    })
}
