//! Runs a benchmark run: calibrates loops once per task on the baseline, then runs every
//! (benchmark, process, configuration) worker interleaved A B C … A B C …, merging results into the
//! run directory as it goes so that `--resume` can continue after an interruption.

use crate::configs::Config;
use crate::environ::{self, EnvContext};
use crate::progress::Progress;
use crate::results::{BenchEntry, Failure, RunDir, RunInfo};
use crate::suite::Benchmark;
use crate::tracer::TracerBin;
use crate::worker::{self, Outcome, WorkerSpec};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Raised (through anyhow) when Ctrl-C stopped the run; the caller prints how to resume.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Free space below which a run refuses to start another benchmark (captures can be large).
const MIN_FREE_BYTES: u64 = 512 << 20;

/// Everything a run needs, resolved.
pub struct Runner<'a> {
    pub dir: &'a RunDir,
    pub info: RunInfo,
    pub manifest: Vec<Benchmark>,
    pub configs: Vec<Config>,
    pub python: PathBuf,
    pub tracer: Option<TracerBin>,
    pub base_env: BTreeMap<String, String>,
    /// `dir.work()`, kept for `EnvContext`.
    pub work: PathBuf,
    pub interrupted: &'a AtomicBool,
}

/// Counts of what the measurement phase did.
#[derive(Debug, Default)]
pub struct Summary {
    pub workers: u64,
    pub failures: u64,
}

impl Runner<'_> {
    fn ctx(&self) -> EnvContext<'_> {
        EnvContext {
            base: &self.base_env,
            tracer: self.tracer.as_ref(),
            work: &self.work,
        }
    }

    pub(crate) fn check_disk(&self) -> Result<()> {
        if let Some(free) = crate::system::free_bytes(&self.dir.root) {
            if free < MIN_FREE_BYTES {
                bail!(
                    "no disk space: {} MiB free in {}, need at least {} MiB (the run can be resumed with --resume once space is freed)",
                    free >> 20,
                    self.dir.root.display(),
                    MIN_FREE_BYTES >> 20
                );
            }
        }
        Ok(())
    }

    pub(crate) fn check_interrupt(&self) -> Result<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.info.settings.timeout_s)
    }

    /// Records a failure of a whole benchmark (before any worker ran) in every configuration.
    pub(crate) fn fail_everywhere(
        &self,
        bench: &str,
        kind: &str,
        reason: &str,
        tail: &str,
    ) -> Result<()> {
        for c in &self.configs {
            self.dir.record_failure(&Failure {
                benchmark: bench.to_string(),
                config: c.name.clone(),
                process: None,
                kind: kind.to_string(),
                reason: reason.to_string(),
                stderr_tail: tail.to_string(),
            })?;
        }
        Ok(())
    }

    /// Removes what an interrupted run wrote after its last progress line: pyperf runs and
    /// tracer lines of processes that are neither in progress.jsonl nor failed.
    pub fn reconcile(&self) -> Result<()> {
        let done = self.dir.load_progress();
        let failed: HashSet<(String, String, Option<u32>)> = self
            .dir
            .load_failures()
            .into_iter()
            .map(|f| (f.benchmark, f.config, f.process))
            .collect();
        for c in &self.configs {
            let path = self.dir.pyperf(&c.name);
            if path.is_file() {
                let text = std::fs::read_to_string(&path)?;
                let mut suite: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not valid JSON", path.display()))?;
                let mut changed = false;
                for b in suite["benchmarks"].as_array_mut().into_iter().flatten() {
                    let name = b["metadata"]["name"].as_str().unwrap_or("").to_string();
                    let n = done
                        .iter()
                        .filter(|(bn, cn, _)| *bn == name && *cn == c.name)
                        .count();
                    if let Some(runs) = b["runs"].as_array_mut() {
                        if runs.len() > n {
                            runs.truncate(n);
                            changed = true;
                        }
                    }
                }
                if changed {
                    crate::results::write_atomic(&path, &serde_json::to_vec(&suite)?)?;
                }
            }
            for b in &self.info.benchmarks {
                let path = self.dir.tracer_stats(&c.name, &b.name);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let kept: Vec<&str> = text
                    .lines()
                    .filter(|l| {
                        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                            return false;
                        };
                        let k = v["process"].as_u64().unwrap_or(u64::MAX) as u32;
                        done.contains(&(b.name.clone(), c.name.clone(), k))
                            || failed.contains(&(b.name.clone(), c.name.clone(), Some(k)))
                    })
                    .collect();
                let body: String = kept.iter().map(|l| format!("{l}\n")).collect();
                if body != text {
                    std::fs::write(&path, body)?;
                }
            }
        }
        Ok(())
    }

    /// The measurement phase: for each benchmark, for each process, each configuration.
    pub fn measure_all(&self) -> Result<Summary> {
        let s = &self.info.settings;
        let done = self.dir.load_progress();
        let failed_before: HashSet<(String, String)> = self
            .dir
            .load_failures()
            .into_iter()
            .map(|f| (f.benchmark, f.config))
            .collect();
        let mut failed = failed_before.clone();
        let total = (self.info.benchmarks.len() * self.configs.len()) as u64 * s.processes as u64;
        // Work finished before a resume starts the bar where it was, so the ETA is not fooled.
        let skipped_before = |b: &str, c: &str, k: u32| {
            failed_before.contains(&(b.to_string(), c.to_string()))
                || done.contains(&(b.to_string(), c.to_string(), k))
        };
        let already = self
            .info
            .benchmarks
            .iter()
            .flat_map(|b| {
                (0..s.processes).flat_map(move |k| self.configs.iter().map(move |c| (b, c, k)))
            })
            .filter(|(b, c, k)| skipped_before(&b.name, &c.name, *k))
            .count() as u64;
        let mut progress = Progress::new(total, already);
        let mut summary = Summary::default();
        for bench in &self.info.benchmarks {
            self.check_disk()?;
            for k in 0..s.processes {
                for config in &self.configs {
                    let key = (bench.name.clone(), config.name.clone());
                    if skipped_before(&key.0, &key.1, k) {
                        continue;
                    }
                    if failed.contains(&key) {
                        progress.skip(1);
                        continue;
                    }
                    self.check_interrupt()?;
                    progress.start(&bench.name, &config.name, k, s.processes);
                    match self.measure_one(bench, config, k)? {
                        None => summary.workers += 1,
                        Some(f) => {
                            progress.println(&format!(
                                "harness: {} under {} {}: {}",
                                f.benchmark, f.config, f.kind, f.reason
                            ));
                            self.dir.record_failure(&f)?;
                            failed.insert(key);
                            summary.failures += 1;
                        }
                    }
                    progress.finish_one();
                }
            }
        }
        progress.finish();
        Ok(summary)
    }

    fn capture_path(&self, config: &Config, bench: &str, k: u32) -> PathBuf {
        let root = if self.info.request.keep_captures {
            self.dir.captures()
        } else {
            self.dir.work().join("captures")
        };
        root.join(&config.name).join(format!("{bench}-{k}.bin"))
    }

    /// Runs one worker; returns the failure to record, if any.
    fn measure_one(&self, bench: &BenchEntry, config: &Config, k: u32) -> Result<Option<Failure>> {
        let s = &self.info.settings;
        let manifest = self
            .manifest
            .iter()
            .find(|b| b.name == bench.manifest_name)
            .with_context(|| format!("{} is not in the manifest", bench.manifest_name))?;
        let capture = self.capture_path(config, &bench.name, k);
        let fail = |kind: &str, reason: String, tail: String| Failure {
            benchmark: bench.name.clone(),
            config: config.name.clone(),
            process: Some(k),
            kind: kind.to_string(),
            reason,
            stderr_tail: tail,
        };
        let penv = match environ::build(&self.ctx(), config, &capture) {
            Ok(e) => e,
            Err(e) => return Ok(Some(fail("failed", format!("{e:#}"), String::new()))),
        };
        if penv.capture.is_some() {
            std::fs::create_dir_all(capture.parent().expect("capture has a parent"))?;
            // A capture left by an interrupted attempt must not be mistaken for this one's.
            crate::system::remove_capture(&capture)?;
        }
        let out = self
            .dir
            .work()
            .join(format!("worker-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let mut args = script_args(manifest);
        args.extend([
            "--worker".to_string(),
            format!("--worker-task={}", bench.task.unwrap_or(0)),
            format!("--loops={}", bench.loops),
            format!("--values={}", s.values),
            format!("--warmups={}", s.warmups),
            "--output".to_string(),
            out.to_string_lossy().into_owned(),
        ]);
        let spec = WorkerSpec {
            python: self.python.clone(),
            args,
            env: penv.env,
            cwd: self.dir.work(),
            timeout: self.timeout(),
            stdout: None,
        };
        let kind = config.tracer.kind();
        let result = self.judge(
            worker::run(&spec, self.interrupted)?,
            &out,
            &penv.capture,
            penv.expect_capture,
            kind,
        );
        let outcome = match result {
            Err(e) if e.is::<Interrupted>() => {
                crate::system::remove_capture(&capture)?;
                return Err(e);
            }
            other => other,
        };
        let stats_line = match &outcome {
            Ok(line) => line.clone(),
            Err(_) => None,
        };
        if let Some(mut line) = stats_line {
            line["process"] = json!(k);
            self.dir
                .append_jsonl(&self.dir.tracer_stats(&config.name, &bench.name), &line)?;
        }
        let failure = match outcome {
            Ok(_) => {
                match self
                    .dir
                    .merge_worker_output(&config.name, &out, &bench.name, &bench.tags)
                {
                    Ok(()) => {
                        self.dir.record_progress(&bench.name, &config.name, k)?;
                        None
                    }
                    Err(e) => Some(fail("failed", format!("{e:#}"), String::new())),
                }
            }
            Err(e) => {
                let j = e.downcast::<Judged>()?;
                Some(fail(j.kind, j.reason, j.tail))
            }
        };
        let _ = std::fs::remove_file(&out);
        if !self.info.request.keep_captures {
            crate::system::remove_capture(&capture)?;
        }
        Ok(failure)
    }

    /// Decides whether a finished worker's result counts. Ok carries the tracer line to record
    /// (for tracing configurations); a `Judged` error says why the result does not count.
    fn judge(
        &self,
        outcome: Outcome,
        out: &Path,
        capture: &Option<PathBuf>,
        expect_capture: bool,
        tracer_kind: &str,
    ) -> Result<Option<serde_json::Value>> {
        let tail = match outcome {
            Outcome::Interrupted => return Err(Interrupted.into()),
            Outcome::TimedOut { stderr_tail } => {
                return Err(judged(
                    "timeout",
                    format!(
                        "worker timed out after {} s and was killed",
                        self.timeout().as_secs()
                    ),
                    stderr_tail,
                ))
            }
            Outcome::Exited {
                status,
                stderr_tail,
                ..
            } if !status.success() => {
                let last = stderr_tail.lines().last().unwrap_or("").to_string();
                return Err(judged(
                    "failed",
                    format!("worker failed ({status}): {last}"),
                    stderr_tail,
                ));
            }
            Outcome::Exited { stderr_tail, .. } => stderr_tail,
        };
        if !out.is_file() {
            return Err(judged(
                "failed",
                "pyperf worker process didn't produce JSON result".into(),
                tail,
            ));
        }
        let Some(capture) = capture else {
            return Ok(None);
        };
        let bytes = std::fs::metadata(capture).map(|m| m.len()).unwrap_or(0);
        if bytes == 0 {
            if expect_capture {
                let what = if capture.exists() { "empty" } else { "missing" };
                return Err(judged(
                    "invalid",
                    format!("capture {what}: {}", capture.display()),
                    tail,
                ));
            }
            return Ok(Some(json!({"capture_bytes": 0, "stats": null})));
        }
        let stats = match (&self.tracer, tracer_kind) {
            // Memray's own summary is informative only: a failure to read it leaves stats null.
            (_, "memray") => self
                .memray_stats(capture)
                .unwrap_or(serde_json::Value::Null),
            (Some(t), "ours") => match self.tracer_stats(t, capture)? {
                StatsResult::TimedOut => {
                    json!({"error": format!("tracer stats did not finish in {} s", self.timeout().as_secs())})
                }
                StatsResult::Failed(e) => return Err(judged("invalid", e, tail)),
                StatsResult::Ok(s) => {
                    if let Some(problem) = crate::tracer::capture_problem(&s) {
                        return Err(judged("invalid", problem, tail));
                    }
                    s
                }
            },
            _ => serde_json::Value::Null,
        };
        Ok(Some(json!({"capture_bytes": bytes, "stats": stats})))
    }
}

enum StatsResult {
    Ok(serde_json::Value),
    /// The capture could not be read: the result is invalid.
    Failed(String),
    /// Reading a very large capture took longer than the worker timeout: recorded, not held
    /// against the result.
    TimedOut,
}

impl Runner<'_> {
    /// `tracer stats --json`, killed after the worker timeout and on Ctrl-C like a worker.
    fn tracer_stats(&self, t: &TracerBin, capture: &Path) -> Result<StatsResult> {
        let out = self.work.join("tracer-stats.json");
        let spec = WorkerSpec {
            python: t.path.clone(),
            args: crate::tracer::stats_args(capture),
            env: self.base_env.clone(),
            cwd: self.work.clone(),
            timeout: self.timeout(),
            stdout: Some(out.clone()),
        };
        let result = match worker::run(&spec, self.interrupted)? {
            Outcome::Interrupted => return Err(Interrupted.into()),
            Outcome::TimedOut { .. } => StatsResult::TimedOut,
            Outcome::Exited {
                status,
                stderr_tail,
            } if !status.success() => StatsResult::Failed(format!(
                "`tracer stats --json` failed ({status}): {}",
                stderr_tail.lines().last().unwrap_or("")
            )),
            Outcome::Exited { .. } => match crate::tracer::parse_stats(&std::fs::read(&out)?) {
                Ok(v) => StatsResult::Ok(v),
                Err(e) => StatsResult::Failed(format!("{e:#}")),
            },
        };
        let _ = std::fs::remove_file(&out);
        Ok(result)
    }

    /// `python -m memray stats --json` of a Memray capture, through the venv's Memray.
    fn memray_stats(&self, capture: &Path) -> Result<serde_json::Value> {
        let out = self.work.join("memray-stats.json");
        let _ = std::fs::remove_file(&out);
        let spec = WorkerSpec {
            python: self.python.clone(),
            args: vec![
                "-m".into(),
                "memray".into(),
                "stats".into(),
                "--json".into(),
                "-f".into(),
                "-o".into(),
                out.to_string_lossy().into_owned(),
                capture.to_string_lossy().into_owned(),
            ],
            env: self.base_env.clone(),
            cwd: self.work.clone(),
            timeout: self.timeout(),
            stdout: None,
        };
        match worker::run(&spec, self.interrupted)? {
            Outcome::Exited { status, .. } if status.success() => {}
            Outcome::Interrupted => return Err(Interrupted.into()),
            _ => bail!("memray stats failed"),
        }
        let text = std::fs::read_to_string(&out)?;
        let _ = std::fs::remove_file(&out);
        Ok(serde_json::from_str(&text)?)
    }
}

/// Why a worker's result does not count.
#[derive(Debug)]
struct Judged {
    kind: &'static str,
    reason: String,
    tail: String,
}

fn judged(kind: &'static str, reason: String, tail: String) -> anyhow::Error {
    Judged { kind, reason, tail }.into()
}

impl std::fmt::Display for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

impl std::error::Error for Judged {}

/// `-u run_benchmark.py <extra_opts>`: the script and its own options, before pyperf's.
pub(crate) fn script_args(bench: &Benchmark) -> Vec<String> {
    let mut args = vec![
        "-u".to_string(),
        bench.runscript.to_string_lossy().into_owned(),
    ];
    args.extend(bench.extra_opts.iter().cloned());
    args
}
