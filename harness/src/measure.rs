//! The measurement phase: every (benchmark, process, configuration) worker, in rounds of one process
//! per configuration whose order rotates (A B C, B C A, C A B, …: `rundir::ConfigOrder`), each result judged (did the worker succeed, is its capture valid) and merged into the run
//! directory before its progress line is written.

use crate::configs::{Config, Tracer};
use crate::environ;
use crate::progress::Progress;
use crate::runner::{Interrupted, Runner};
use crate::tracer::TracerBin;
use crate::worker::{self, Outcome, PyperfJob, WorkerSpec};
use anyhow::{Context, Result};
use rundir::{BenchmarkInfo, Failure, FailureKind, TracerLine};
use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Counts of what the measurement phase did.
#[derive(Debug, Default)]
pub struct Summary {
    pub workers: u64,
    pub failures: u64,
}

/// What one measured worker's result amounts to.
enum Verdict {
    /// The result counts; a tracing configuration's statistics line comes with it.
    Counts(Option<TracerLine>),
    /// The result does not count.
    Rejected(Rejection),
    /// Ctrl-C stopped the worker, or the reading of its capture.
    Interrupted,
}

/// Why a worker's result does not count.
pub(crate) struct Rejection {
    pub kind: FailureKind,
    pub reason: String,
    pub stderr_tail: String,
}

fn rejected(kind: FailureKind, reason: String, stderr_tail: String) -> Verdict {
    Verdict::Rejected(Rejection {
        kind,
        reason,
        stderr_tail,
    })
}

/// What reading a capture's statistics gave.
enum StatsResult {
    Ok(serde_json::Value),
    /// The capture could not be read.
    Failed(String),
    /// Reading a very large capture took longer than the worker timeout.
    TimedOut,
    Interrupted,
}

impl Runner<'_> {
    /// The measurement phase: for each benchmark, for each process, each configuration.
    pub fn measure_all(&self) -> Result<Summary> {
        let s = &self.info.settings;
        let done: HashSet<(String, String, u32)> = self
            .dir
            .load_progress()
            .into_iter()
            .map(|p| (p.benchmark, p.config, p.process))
            .collect();
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
            crate::system::ensure_free_space(&self.dir.root)?;
            for k in 0..s.processes {
                for config in s
                    .order
                    .round(self.configs.len(), k)
                    .map(|i| &self.configs[i])
                {
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
                                f.benchmark,
                                f.config,
                                f.kind.as_deref().unwrap_or_default(),
                                f.reason.as_deref().unwrap_or_default()
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
    fn measure_one(
        &self,
        bench: &BenchmarkInfo,
        config: &Config,
        k: u32,
    ) -> Result<Option<Failure>> {
        let s = &self.info.settings;
        let manifest = self
            .manifest
            .iter()
            .find(|b| b.name == bench.manifest_entry())
            .with_context(|| format!("{} is not in the manifest", bench.manifest_entry()))?;
        let loops = bench
            .loops
            .with_context(|| format!("{} has no calibrated loops in run.json", bench.name))?;
        let capture = self.capture_path(config, &bench.name, k);
        let fail = |r: Rejection| {
            Failure::new(
                &bench.name,
                &config.name,
                Some(k),
                r.kind,
                &r.reason,
                &r.stderr_tail,
            )
        };
        let penv = match environ::build(&self.ctx(), config, &capture) {
            Ok(e) => e,
            Err(e) => {
                return Ok(Some(fail(Rejection {
                    kind: FailureKind::Failed,
                    reason: format!("{e:#}"),
                    stderr_tail: String::new(),
                })))
            }
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
        let job = PyperfJob::Measure {
            loops,
            values: s.values,
            warmups: s.warmups,
        };
        let spec = WorkerSpec {
            python: self.python.clone(),
            args: worker::pyperf_args(
                manifest,
                bench.task.unwrap_or(0),
                &job,
                &out,
                s.timer,
                &self.work,
            ),
            env: penv.env,
            cwd: self.dir.work(),
            timeout: self.timeout(),
            stdout: None,
        };
        let verdict = self.judge(
            worker::run(&spec, self.interrupted)?,
            &out,
            &penv.capture,
            penv.expect_capture,
            config,
        )?;
        let failure = match verdict {
            Verdict::Interrupted => {
                crate::system::remove_capture(&capture)?;
                return Err(Interrupted.into());
            }
            Verdict::Rejected(r) => Some(fail(r)),
            Verdict::Counts(line) => {
                if let Some(mut line) = line {
                    line.process = Some(k);
                    self.dir
                        .record_tracer_line(&config.name, &bench.name, &line)?;
                }
                match self
                    .dir
                    .merge_worker_output(&config.name, &out, &bench.name, &bench.tags)
                {
                    Ok(()) => {
                        self.dir.record_progress(&bench.name, &config.name, k)?;
                        None
                    }
                    Err(e) => Some(fail(Rejection {
                        kind: FailureKind::Failed,
                        reason: format!("{e:#}"),
                        stderr_tail: String::new(),
                    })),
                }
            }
        };
        let _ = std::fs::remove_file(&out);
        if !self.info.request.keep_captures {
            crate::system::remove_capture(&capture)?;
        }
        Ok(failure)
    }

    /// Decides whether a finished worker's result counts, and reads the statistics of its capture
    /// (for tracing configurations).
    fn judge(
        &self,
        outcome: Outcome,
        out: &Path,
        capture: &Option<PathBuf>,
        expect_capture: bool,
        config: &Config,
    ) -> Result<Verdict> {
        let tracer = &config.tracer;
        let tail = match outcome {
            Outcome::Interrupted => return Ok(Verdict::Interrupted),
            Outcome::TimedOut { stderr_tail } => {
                return Ok(rejected(
                    FailureKind::Timeout,
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
                return Ok(rejected(
                    FailureKind::Failed,
                    format!("worker failed ({status}): {last}"),
                    stderr_tail,
                ));
            }
            Outcome::Exited { stderr_tail, .. } => stderr_tail,
        };
        if !out.is_file() {
            return Ok(rejected(
                FailureKind::Failed,
                "pyperf worker process didn't produce JSON result".into(),
                tail,
            ));
        }
        let Some(capture) = capture else {
            return Ok(Verdict::Counts(None));
        };
        let bytes = std::fs::metadata(capture).map(|m| m.len()).unwrap_or(0);
        if bytes == 0 {
            if expect_capture {
                let what = if capture.exists() { "empty" } else { "missing" };
                return Ok(rejected(
                    FailureKind::Invalid,
                    format!("capture {what}: {}", capture.display()),
                    tail,
                ));
            }
            return Ok(Verdict::Counts(Some(TracerLine {
                process: None,
                capture_bytes: Some(0),
                stats: None,
            })));
        }
        // A configuration with a tracer build of its own reads its captures with that build.
        let own = match &config.tracer_binary {
            Some(p) => Some(TracerBin::given(p)?),
            None => None,
        };
        let stats = match (own.as_ref().or(self.tracer.as_ref()), tracer) {
            // Memray's own summary is informative only: a failure to read it leaves stats null.
            (_, Tracer::Memray { .. }) => match self.memray_stats(capture)? {
                StatsResult::Ok(s) => s,
                StatsResult::Interrupted => return Ok(Verdict::Interrupted),
                StatsResult::Failed(_) | StatsResult::TimedOut => serde_json::Value::Null,
            },
            (Some(t), Tracer::Ours { .. }) => match self.tracer_stats(t, capture)? {
                StatsResult::Interrupted => return Ok(Verdict::Interrupted),
                // Reading a very large capture took longer than the worker timeout: recorded,
                // not held against the result.
                StatsResult::TimedOut => {
                    json!({"error": format!("tracer stats did not finish in {} s", self.timeout().as_secs())})
                }
                StatsResult::Failed(e) => return Ok(rejected(FailureKind::Invalid, e, tail)),
                StatsResult::Ok(s) => {
                    if let Some(problem) = crate::tracer::capture_problem(&s) {
                        return Ok(rejected(FailureKind::Invalid, problem, tail));
                    }
                    s
                }
            },
            _ => serde_json::Value::Null,
        };
        Ok(Verdict::Counts(Some(TracerLine {
            process: None,
            capture_bytes: Some(bytes),
            stats: Some(stats),
        })))
    }

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
            Outcome::Interrupted => StatsResult::Interrupted,
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
    fn memray_stats(&self, capture: &Path) -> Result<StatsResult> {
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
        let result = match worker::run(&spec, self.interrupted)? {
            Outcome::Interrupted => StatsResult::Interrupted,
            Outcome::TimedOut { .. } => StatsResult::TimedOut,
            Outcome::Exited { status, .. } if !status.success() => {
                StatsResult::Failed("memray stats failed".into())
            }
            Outcome::Exited { .. } => match std::fs::read_to_string(&out)
                .map_err(anyhow::Error::from)
                .and_then(|text| Ok(serde_json::from_str(&text)?))
            {
                Ok(v) => StatsResult::Ok(v),
                Err(e) => StatsResult::Failed(format!("{e:#}")),
            },
        };
        let _ = std::fs::remove_file(&out);
        Ok(result)
    }
}
