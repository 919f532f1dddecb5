//! Defines the run directory (`docs/run-format.md`) and everything written into it: `run.json`,
//! the per-configuration pyperf suites, the tracer statistics, failures and progress lines.
//! Files that are rewritten (`run.json`, `pyperf/*.json`) go through a temporary file and a rename,
//! so a killed run never leaves half a file; the JSON-lines files are only appended to.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub schema: u32,
    pub started: String,
    pub finished: Option<String>,
    pub suite: String,
    pub settings: Settings,
    pub benchmarks: Vec<BenchEntry>,
    pub configs: Vec<ConfigEntry>,
    pub baseline: String,
    pub system: Value,
    /// What `--resume` needs to continue the run exactly as asked (not read by the report).
    pub request: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub processes: u32,
    pub values: u32,
    pub warmups: u32,
    pub mode: String,
    pub timeout_s: u64,
    pub min_time: f64,
}

/// One emitted benchmark (one task of a script).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchEntry {
    pub name: String,
    pub tags: Vec<String>,
    pub micro: bool,
    pub loops: u64,
    pub task: Option<u32>,
    /// The pyperformance manifest entry the task belongs to.
    pub manifest_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub name: String,
    pub label: String,
    pub tracer: String,
    pub mode: Option<String>,
    pub stack_source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub python: PathBuf,
    pub manifest_benchmarks: Vec<String>,
    /// Manifest entries whose tasks are all calibrated (their `benchmarks` rows are final).
    pub calibrated: Vec<String>,
    pub configs: Vec<crate::configs::Config>,
    pub with_memray: bool,
    pub keep_captures: bool,
    pub tracer: Option<PathBuf>,
}

/// `failures.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub benchmark: String,
    pub config: String,
    pub process: Option<u32>,
    pub kind: String,
    pub reason: String,
    pub stderr_tail: String,
}

pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn create(root: &Path) -> Result<RunDir> {
        for sub in ["pyperf", "tracer", "work"] {
            std::fs::create_dir_all(root.join(sub))
                .with_context(|| format!("cannot create {}", root.join(sub).display()))?;
        }
        Ok(RunDir {
            root: root.to_path_buf(),
        })
    }

    pub fn open(root: &Path) -> Result<RunDir> {
        if !root.join("run.json").is_file() {
            bail!(
                "{} is not a run directory (no run.json); start a run with `harness run`",
                root.display()
            );
        }
        let dir = Self::create(root)?;
        // A run killed mid-append leaves a torn last line; end it so the next append starts
        // a line of its own (the torn one is then skipped by the readers).
        for path in [dir.progress(), dir.failures()] {
            if let Ok(bytes) = std::fs::read(&path) {
                if bytes.last().is_some_and(|b| *b != b'\n') {
                    let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
                    f.write_all(b"\n")?;
                }
            }
        }
        Ok(dir)
    }

    pub fn run_json(&self) -> PathBuf {
        self.root.join("run.json")
    }
    pub fn pyperf(&self, config: &str) -> PathBuf {
        self.root.join("pyperf").join(format!("{config}.json"))
    }
    pub fn tracer_stats(&self, config: &str, bench: &str) -> PathBuf {
        self.root
            .join("tracer")
            .join(config)
            .join(format!("{bench}.jsonl"))
    }
    pub fn failures(&self) -> PathBuf {
        self.root.join("failures.jsonl")
    }
    pub fn progress(&self) -> PathBuf {
        self.root.join("progress.jsonl")
    }
    pub fn system_txt(&self) -> PathBuf {
        self.root.join("system.txt")
    }
    pub fn captures(&self) -> PathBuf {
        self.root.join("captures")
    }
    /// Scratch space: worker outputs, bootstrap directories, captures being read. Removed when
    /// the run finishes.
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    pub fn load_info(&self) -> Result<RunInfo> {
        let path = self.run_json();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid run.json", path.display()))
    }

    pub fn save_info(&self, info: &RunInfo) -> Result<()> {
        write_atomic(&self.run_json(), &serde_json::to_vec_pretty(info)?)
    }

    pub fn append_jsonl(&self, path: &Path, value: &impl Serialize) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        f.write_all(&line)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Records a failure and drops the benchmark from that configuration's pyperf file: a
    /// (benchmark, configuration) with a failure has no result, rather than a partial one with
    /// fewer values than the other side (which pyperf's t-test cannot compare).
    pub fn record_failure(&self, f: &Failure) -> Result<()> {
        self.append_jsonl(&self.failures(), f)?;
        self.remove_benchmark(&f.config, &f.benchmark)
    }

    fn remove_benchmark(&self, config: &str, name: &str) -> Result<()> {
        let path = self.pyperf(config);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let mut suite: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let Some(benches) = suite["benchmarks"].as_array_mut() else {
            return Ok(());
        };
        let before = benches.len();
        benches.retain(|b| b["metadata"]["name"].as_str() != Some(name));
        if benches.len() != before {
            write_atomic(&path, &serde_json::to_vec(&suite)?)?;
        }
        Ok(())
    }

    pub fn record_progress(&self, benchmark: &str, config: &str, process: u32) -> Result<()> {
        self.append_jsonl(
            &self.progress(),
            &json!({"benchmark": benchmark, "config": config, "process": process}),
        )
    }

    /// (benchmark, config, process) triples already done. A torn last line (killed mid-write)
    /// is ignored: that process is simply done again.
    pub fn load_progress(&self) -> HashSet<(String, String, u32)> {
        read_jsonl(&self.progress())
            .into_iter()
            .filter_map(|v| {
                Some((
                    v.get("benchmark")?.as_str()?.to_string(),
                    v.get("config")?.as_str()?.to_string(),
                    v.get("process")?.as_u64()? as u32,
                ))
            })
            .collect()
    }

    pub fn load_failures(&self) -> Vec<Failure> {
        read_jsonl(&self.failures())
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }

    /// Merges one worker's `--output` file into `pyperf/<config>.json`. Each run keeps its full
    /// metadata (pyperf's hoisting is undone, so runs from different files merge without
    /// conflicts); the benchmark carries `name` and `tags`. A worker that emitted another
    /// benchmark than `expected` is refused before anything is written.
    pub fn merge_worker_output(
        &self,
        config: &str,
        worker_json: &Path,
        expected: &str,
        tags: &[String],
    ) -> Result<()> {
        let (name, runs) = read_worker_runs(worker_json)?;
        if name != expected {
            bail!("worker emitted benchmark {name} instead of {expected}");
        }
        let path = self.pyperf(config);
        let mut suite: Value = if path.is_file() {
            let text = std::fs::read_to_string(&path)?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
        } else {
            json!({"version": "1.0", "benchmarks": [], "metadata": {}})
        };
        let benches = suite["benchmarks"]
            .as_array_mut()
            .context("pyperf suite without a benchmarks list")?;
        let pos = benches
            .iter()
            .position(|b| b["metadata"]["name"].as_str() == Some(name.as_str()));
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
        write_atomic(&path, &serde_json::to_vec(&suite)?)
    }
}

/// Reads a worker's pyperf file: exactly one benchmark; returns its name and its runs with
/// suite, benchmark and run metadata merged into each run (later levels win, as pyperf loads).
pub fn read_worker_runs(path: &Path) -> Result<(String, Vec<Value>)> {
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

/// The loops a calibration worker settled on, and the benchmark name it emitted.
pub fn read_calibration(path: &Path) -> Result<(String, u64)> {
    let (name, runs) = read_worker_runs(path)?;
    let md = &runs.first().context("calibration produced no run")?["metadata"];
    let loops = md["calibrate_loops"]
        .as_u64()
        .or_else(|| md["loops"].as_u64())
        .context("calibration run has no calibrate_loops")?;
    Ok((name, loops))
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_metadata_is_flattened_into_runs() {
        let dir = std::env::temp_dir().join(format!("harness-res-{}", std::process::id()));
        let run = RunDir::create(&dir).unwrap();
        let worker = dir.join("w.json");
        std::fs::write(
            &worker,
            r#"{"version":"1.0","metadata":{"name":"nbody","loops":4,"unit":"second"},
               "benchmarks":[{"runs":[{"metadata":{"mem_max_rss":100},"warmups":[[4,0.1]],"values":[0.1,0.2]}]}]}"#,
        )
        .unwrap();
        for _ in 0..2 {
            run.merge_worker_output("baseline", &worker, "nbody", &["math".into()])
                .unwrap();
        }
        let err = run
            .merge_worker_output("baseline", &worker, "float", &[])
            .unwrap_err();
        assert!(err.to_string().contains("instead of float"), "{err}");
        let suite: Value =
            serde_json::from_str(&std::fs::read_to_string(run.pyperf("baseline")).unwrap())
                .unwrap();
        let b = &suite["benchmarks"][0];
        assert_eq!(b["metadata"]["tags"], json!(["math"]));
        assert_eq!(b["runs"].as_array().unwrap().len(), 2);
        assert_eq!(b["runs"][1]["metadata"]["loops"], 4);
        assert_eq!(b["runs"][1]["metadata"]["mem_max_rss"], 100);
        // A later failure of nbody under baseline removes its partial result.
        run.record_failure(&Failure {
            benchmark: "nbody".into(),
            config: "baseline".into(),
            process: Some(2),
            kind: "timeout".into(),
            reason: "r".into(),
            stderr_tail: String::new(),
        })
        .unwrap();
        let suite: Value =
            serde_json::from_str(&std::fs::read_to_string(run.pyperf("baseline")).unwrap())
                .unwrap();
        assert_eq!(suite["benchmarks"], json!([]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_progress_line_is_ignored() {
        let dir = std::env::temp_dir().join(format!("harness-prog-{}", std::process::id()));
        let run = RunDir::create(&dir).unwrap();
        run.record_progress("a", "baseline", 0).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(run.progress())
            .unwrap();
        f.write_all(b"{\"benchmark\":\"a\",\"con").unwrap();
        std::fs::write(run.run_json(), "{}").unwrap();
        let run = RunDir::open(&dir).unwrap();
        run.record_progress("a", "default", 0).unwrap();
        let done = run.load_progress();
        assert_eq!(done.len(), 2);
        assert!(done.contains(&("a".into(), "default".into(), 0)));
        assert!(done.contains(&("a".into(), "baseline".into(), 0)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
