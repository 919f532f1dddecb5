//! Where everything of a run directory lives, and the harness's writes into it. Files that are
//! rewritten (`run.json`, `pyperf/*.json`) go through a temporary file and a rename, so a killed run
//! never leaves half a file; the JSON-lines files are only appended to.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::pyperf;
use crate::records::{Failure, Progress, RunInfo};

/// A run directory: its paths, and the writes of a run in progress.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// The run directory at `root`, as it is (nothing is read or written).
    pub fn at(root: &Path) -> RunDir {
        RunDir {
            root: root.to_path_buf(),
        }
    }

    /// Makes a new run directory (and its `pyperf/`, `tracer/` and `work/`).
    pub fn create(root: &Path) -> Result<RunDir> {
        let dir = RunDir::at(root);
        for sub in [dir.root.join("pyperf"), dir.root.join("tracer"), dir.work()] {
            std::fs::create_dir_all(&sub)
                .with_context(|| format!("cannot create {}", sub.display()))?;
        }
        Ok(dir)
    }

    /// Opens an existing run directory to continue writing it.
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

    /// `run.json`.
    pub fn run_json(&self) -> PathBuf {
        self.root.join("run.json")
    }
    /// `pyperf/<config>.json`.
    pub fn pyperf(&self, config: &str) -> PathBuf {
        self.root.join("pyperf").join(format!("{config}.json"))
    }
    /// `tracer/<config>/`.
    pub fn tracer_dir(&self, config: &str) -> PathBuf {
        self.root.join("tracer").join(config)
    }
    /// `tracer/<config>/<benchmark>.jsonl`.
    pub fn tracer_stats(&self, config: &str, bench: &str) -> PathBuf {
        self.tracer_dir(config).join(format!("{bench}.jsonl"))
    }
    /// `failures.jsonl`.
    pub fn failures(&self) -> PathBuf {
        self.root.join("failures.jsonl")
    }
    /// `progress.jsonl`.
    pub fn progress(&self) -> PathBuf {
        self.root.join("progress.jsonl")
    }
    /// `system.txt`.
    pub fn system_txt(&self) -> PathBuf {
        self.root.join("system.txt")
    }
    /// `captures/` (with `--keep-captures`).
    pub fn captures(&self) -> PathBuf {
        self.root.join("captures")
    }
    /// Scratch space: worker outputs, bootstrap directories, captures being read. Removed when
    /// the run finishes.
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }
    /// `report/`, written by `harness report`.
    pub fn report(&self) -> PathBuf {
        self.root.join("report")
    }

    /// Reads `run.json`.
    pub fn load_info<R: DeserializeOwned + Default>(&self) -> Result<RunInfo<R>> {
        let path = self.run_json();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid run.json", path.display()))
    }

    /// Rewrites `run.json`.
    pub fn save_info<R: Serialize>(&self, info: &RunInfo<R>) -> Result<()> {
        write_atomic(&self.run_json(), &serde_json::to_vec_pretty(info)?)
    }

    /// Appends one line to a JSON-lines file, creating it and its directory.
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
        self.edit_suite(&f.config, Missing::Skip, |suite| {
            Ok(pyperf::remove_benchmark(suite, &f.benchmark))
        })
    }

    /// Records that a worker's result is merged (after the merge: a crash in between redoes it).
    pub fn record_progress(&self, benchmark: &str, config: &str, process: u32) -> Result<()> {
        self.append_jsonl(
            &self.progress(),
            &Progress {
                benchmark: benchmark.to_string(),
                config: config.to_string(),
                process,
            },
        )
    }

    /// Appends a traced process's statistics line to `tracer/<config>/<benchmark>.jsonl`.
    pub fn record_tracer_line(
        &self,
        config: &str,
        bench: &str,
        line: &crate::TracerLine,
    ) -> Result<()> {
        self.append_jsonl(&self.tracer_stats(config, bench), line)
    }

    /// The worker processes already done. A torn last line (killed mid-write) is ignored: that
    /// process is simply done again.
    pub fn load_progress(&self) -> HashSet<Progress> {
        read_jsonl_lenient(&self.progress())
    }

    /// `failures.jsonl`, without lines that do not parse (a torn last line).
    pub fn load_failures(&self) -> Vec<Failure> {
        read_jsonl_lenient(&self.failures())
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
        let (name, runs) = pyperf::read_worker_runs(worker_json)?;
        if name != expected {
            bail!("worker emitted benchmark {name} instead of {expected}");
        }
        self.edit_suite(config, Missing::StartEmpty, |suite| {
            pyperf::merge_runs(suite, &name, tags, runs)?;
            Ok(true)
        })
    }

    /// Removes what an interrupted run wrote after its last progress line: pyperf runs and tracer
    /// lines of processes that are neither in `progress.jsonl` nor failed.
    pub fn drop_unrecorded(&self, configs: &[&str], benchmarks: &[&str]) -> Result<()> {
        let done = self.load_progress();
        let failed: HashSet<(String, String, Option<u32>)> = self
            .load_failures()
            .into_iter()
            .map(|f| (f.benchmark, f.config, f.process))
            .collect();
        let is_done = |bench: &str, config: &str, process: u32| {
            done.contains(&Progress {
                benchmark: bench.to_string(),
                config: config.to_string(),
                process,
            })
        };
        for &config in configs {
            self.edit_suite(config, Missing::Skip, |suite| {
                Ok(pyperf::truncate_runs(suite, |bench| {
                    done.iter()
                        .filter(|p| p.benchmark == bench && p.config == config)
                        .count()
                }))
            })?;
            for &bench in benchmarks {
                let path = self.tracer_stats(config, bench);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let kept: String = text
                    .lines()
                    .filter(|l| {
                        let Ok(v) = serde_json::from_str::<Value>(l) else {
                            return false;
                        };
                        let k = v["process"].as_u64().unwrap_or(u64::MAX) as u32;
                        is_done(bench, config, k)
                            || failed.contains(&(bench.to_string(), config.to_string(), Some(k)))
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                if kept != text {
                    std::fs::write(&path, kept)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
        }
        Ok(())
    }

    /// Applies `edit` to `pyperf/<config>.json`, and rewrites the file when `edit` says it changed
    /// something.
    fn edit_suite(
        &self,
        config: &str,
        missing: Missing,
        edit: impl FnOnce(&mut Value) -> Result<bool>,
    ) -> Result<()> {
        let path = self.pyperf(config);
        let mut suite: Value = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?,
            Err(_) if missing == Missing::StartEmpty => pyperf::empty_suite(),
            Err(_) => return Ok(()),
        };
        if edit(&mut suite)? {
            write_atomic(&path, &serde_json::to_vec(&suite)?)?;
        }
        Ok(())
    }
}

/// What [`RunDir::edit_suite`] does when the configuration has no pyperf file yet.
#[derive(PartialEq)]
enum Missing {
    /// Nothing: there is nothing to edit.
    Skip,
    /// Starts from an empty suite.
    StartEmpty,
}

/// The lines of a JSON-lines file that parse as `T` (none when the file does not exist).
fn read_jsonl_lenient<T: DeserializeOwned, C: FromIterator<T>>(path: &Path) -> C {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            kind: Some("timeout".into()),
            reason: Some("r".into()),
            stderr_tail: Some(String::new()),
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
        let p = |config: &str| Progress {
            benchmark: "a".into(),
            config: config.into(),
            process: 0,
        };
        assert_eq!(done.len(), 2);
        assert!(done.contains(&p("default")));
        assert!(done.contains(&p("baseline")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
