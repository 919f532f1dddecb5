//! Runs a benchmark run from start to end: makes the run directory (or reopens one to resume it),
//! writes the configurations' bootstraps, measures each configuration's start-up cost, calibrates
//! loops once per task on the baseline (`calibrate`), drops what an interrupted run wrote after its
//! last progress line, and measures every (benchmark, process, configuration) worker (`measure`),
//! merging results into the run directory as it goes so that `--resume` can continue after an
//! interruption. Then the report.

use crate::configs::Config;
use crate::environ::EnvContext;
use crate::prepare::{self, Prepared, Selection};
use crate::suite::{Benchmark, SuiteName};
use crate::tracer::TracerBin;
use crate::venv;
use anyhow::{bail, Context, Result};
use rundir::{Failure, FailureKind, RunDir, Settings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `run.json` as the harness reads and writes it.
pub type RunInfo = rundir::RunInfo<Request>;

/// `run.json` `request`: what `--resume` needs to continue the run exactly as asked (not read by
/// the report).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    pub python: PathBuf,
    pub manifest_benchmarks: Vec<String>,
    /// Manifest entries whose tasks are all calibrated (their `benchmarks` rows are final).
    pub calibrated: Vec<String>,
    pub configs: Vec<Config>,
    pub with_memray: bool,
    pub keep_captures: bool,
    pub tracer: Option<PathBuf>,
    /// `--root`: the run's Python is inside this root file system (as the host names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// `--shard K/N`: this run is one part of a whole that `harness merge` puts together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// `harness ab`: the two builds and the configurations that compare them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab: Option<crate::ab::AbRequest>,
    /// `harness merge`: the shard run directories this one was merged from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<PathBuf>,
}

/// The root file system a run directory's run was made in (`--root`), to resume it there.
pub fn root_of(dir: &Path) -> Result<Option<PathBuf>> {
    let info: RunInfo = RunDir::open(dir)?.load_info()?;
    Ok(info.request.root)
}

/// A new run, as the command line asked for it.
pub struct NewRun {
    pub selection: Selection,
    pub settings: Settings,
    /// Where run directories are made (default `<repo>/results`).
    pub results: Option<PathBuf>,
    /// Keep the capture files in `DIR/captures/`.
    pub keep_captures: bool,
    /// `harness ab`: what the A/B report compares.
    pub ab: Option<crate::ab::AbRequest>,
}

/// How a run starts.
pub enum Start {
    New(Box<NewRun>),
    /// Continue the unfinished run in this directory; everything is taken from its `run.json`.
    Resume(PathBuf),
}

/// How a run ended (an error is the third way).
pub enum Ended {
    /// Every worker ran; `failures` were recorded in all (this session and before).
    Finished { dir: PathBuf, failures: usize },
    /// Ctrl-C stopped it; it can be resumed.
    Interrupted,
}

/// Raised (through anyhow) when Ctrl-C stopped the run; [`run`] turns it into [`Ended::Interrupted`].
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// `harness run`: a fresh run, or `--resume DIR`; writes the report at the end when asked.
pub fn run(start: Start, write_report: bool) -> Result<Ended> {
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let (dir, mut info, prepared) = match start {
        Start::New(new) => start_new(*new)?,
        Start::Resume(d) => resume(&d)?,
    };
    let base_env = crate::environ::base_env();
    for c in &prepared.configs {
        crate::environ::write_bootstrap(&dir.work(), c)?;
    }
    if info.settings.timer == rundir::Timer::Cpu {
        let shim = crate::worker::cpu_timer_shim(&dir.work());
        std::fs::write(&shim, crate::worker::CPU_TIMER_SHIM)
            .with_context(|| format!("cannot write {}", shim.display()))?;
    }
    if !dir.system_txt().is_file() {
        write_system_txt(&dir, &info, &prepared, &base_env)?;
    }
    info.finished = None;
    dir.save_info(&info)?;
    let mut runner = Runner {
        work: dir.work(),
        dir,
        info,
        manifest: prepared.manifest,
        configs: prepared.configs,
        python: prepared.venv.python.clone(),
        tracer: prepared.tracer,
        base_env,
        interrupted: &interrupted,
    };
    let outcome = runner
        .calibrate_all()
        .and_then(|_| runner.drop_unrecorded())
        .and_then(|_| runner.measure_all());
    let dir = &runner.dir;
    let summary = match outcome {
        Ok(s) => s,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!(
                "harness: interrupted; continue with: harness run --resume {}",
                dir.root.display()
            );
            return Ok(Ended::Interrupted);
        }
        Err(e) => {
            return Err(e.context(format!(
                "run stopped; continue with: harness run --resume {}",
                dir.root.display()
            )))
        }
    };
    runner.info.finished = Some(now());
    dir.save_info(&runner.info)?;
    let _ = std::fs::remove_dir_all(dir.work());
    let failures = dir.load_failures().len();
    eprintln!(
        "harness: run finished: {} ({} workers this session, {} failures in total{})",
        dir.root.display(),
        summary.workers,
        failures,
        if failures > 0 {
            ", see failures.jsonl"
        } else {
            ""
        }
    );
    if write_report {
        match plots::write_report(&dir.root) {
            Ok(p) => eprintln!("harness: report written to {}", p.display()),
            Err(e) => eprintln!("harness: warning: no report: {e:#}"),
        }
        match crate::ab::write_report(&dir.root) {
            Ok(Some(headlines)) => {
                for h in headlines {
                    eprintln!("harness: {h}");
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("harness: warning: no A/B report: {e:#}"),
        }
    }
    // An A/A check that fails says the whole run's small differences are not to be trusted.
    for line in plots::aa_warnings(&dir.root).unwrap_or_default() {
        eprintln!("harness: warning: {}", line.trim_start_matches("⚠ "));
    }
    Ok(Ended::Finished {
        dir: dir.root.clone(),
        failures,
    })
}

/// `system.txt`: the machine, `pyperf system show`, and each configuration's start-up cost.
fn write_system_txt(
    dir: &RunDir,
    info: &RunInfo,
    prepared: &Prepared,
    base_env: &BTreeMap<String, String>,
) -> Result<()> {
    eprintln!("harness: measuring start-up cost of each configuration");
    let work = dir.work();
    let ctx = EnvContext {
        base: base_env,
        tracer: prepared.tracer.as_ref(),
        work: &work,
    };
    // A bootstrap that hangs must not hang the run here: the worker timeout, at most 10 s.
    let timeout = Duration::from_secs(info.settings.timeout_s.min(10));
    let costs =
        crate::system::bootstrap_costs(&prepared.venv.python, &ctx, &prepared.configs, timeout);
    let text = crate::system::system_txt(&prepared.venv.python, &info.system, &costs);
    std::fs::write(dir.system_txt(), text)
        .with_context(|| format!("cannot write {}", dir.system_txt().display()))
}

fn run_id() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-")
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn start_new(new: NewRun) -> Result<(RunDir, RunInfo, Prepared)> {
    let mut prepared = prepare::prepare(&new.selection)?;
    let root = new
        .results
        .clone()
        .unwrap_or_else(|| venv::repo_root().join("results"));
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    // Workers run in DIR/work and are handed paths: they must be absolute.
    let root = std::path::absolute(&root)
        .with_context(|| format!("cannot make {} absolute", root.display()))?;
    crate::system::ensure_free_space(&root)?;
    let dir = RunDir::create(&root.join(run_id()))?;
    let memray = prepared.venv.has_memray.then_some(venv::MEMRAY);
    let mut system = crate::system::describe(
        &prepared.python,
        prepared.tracer.as_ref().and_then(|t| t.version()),
        memray,
    );
    if let Some(id) = prepared.tracer.as_ref().and_then(|t| t.build_id()) {
        system
            .other
            .insert("tracer_build".into(), serde_json::json!(id));
    }
    if let Some(root) = &new.selection.root {
        system
            .other
            .insert("root".into(), serde_json::json!(root.display().to_string()));
    }
    let sel = &new.selection;
    let info = RunInfo {
        schema: 1,
        started: Some(now()),
        finished: None,
        suite: Some(sel.suite.as_str().to_string()),
        settings: new.settings,
        benchmarks: Vec::new(),
        configs: prepared.configs.iter().map(Config::info).collect(),
        // The report's reference: `baseline` when selected, else the first configuration.
        baseline: prepared
            .configs
            .iter()
            .find(|c| c.name == "baseline")
            .unwrap_or(&prepared.configs[0])
            .name
            .clone(),
        system,
        excluded: prepared.excluded.clone(),
        request: Request {
            python: sel.python.clone(),
            manifest_benchmarks: prepared.manifest.iter().map(|b| b.name.clone()).collect(),
            calibrated: Vec::new(),
            configs: prepared.configs.clone(),
            with_memray: sel.with_memray,
            keep_captures: new.keep_captures,
            tracer: sel.tracer.clone(),
            root: sel.root.clone(),
            shard: prepared.shard.clone(),
            ab: new.ab.clone(),
            merged_from: Vec::new(),
        },
    };
    dir.save_info(&info)?;
    // Benchmarks whose requirements could not be installed are recorded, not run.
    for (b, why) in &prepared.install_failures {
        for c in &prepared.configs {
            dir.record_failure(&Failure::new(
                b,
                &c.name,
                None,
                FailureKind::Failed,
                why,
                "",
            ))?;
        }
    }
    prepared.drop_uninstalled();
    if info.settings.timer == rundir::Timer::Cpu {
        refuse_for_cpu_timer(&dir, &mut prepared)?;
    }
    let n = prepared.configs.len() as u32;
    if info.settings.order == rundir::ConfigOrder::Rotate
        && !info.settings.processes.is_multiple_of(n)
    {
        eprintln!(
            "harness: warning: {} processes is not a multiple of the {n} configurations: the rotated \
             order does not put every configuration in every position equally often (use -p {})",
            info.settings.processes,
            info.settings.processes.div_ceil(n) * n
        );
    }
    eprintln!("harness: run directory {}", dir.root.display());
    Ok((dir, info, prepared))
}

/// Records the benchmarks that `--timer cpu` cannot measure as failed (in every configuration) and
/// leaves them out.
fn refuse_for_cpu_timer(dir: &RunDir, prepared: &mut Prepared) -> Result<()> {
    let mut keep = Vec::new();
    for b in std::mem::take(&mut prepared.manifest) {
        match crate::worker::cpu_timer_refusal(&b) {
            Some(why) => {
                eprintln!("harness: {}: {why}", b.name);
                for c in &prepared.configs {
                    dir.record_failure(&Failure::new(
                        &b.name,
                        &c.name,
                        None,
                        FailureKind::Failed,
                        &why,
                        "",
                    ))?;
                }
            }
            None => keep.push(b),
        }
    }
    prepared.manifest = keep;
    Ok(())
}

fn resume(d: &Path) -> Result<(RunDir, RunInfo, Prepared)> {
    let d =
        &std::path::absolute(d).with_context(|| format!("cannot make {} absolute", d.display()))?;
    let dir = RunDir::open(d)?;
    let info: RunInfo = dir.load_info()?;
    if info.finished.is_some() {
        bail!("{} is a finished run; nothing to resume", d.display());
    }
    let r = &info.request;
    if r.configs.is_empty() {
        bail!(
            "{}: run.json has no request (it was not written by `harness run`); nothing to resume",
            d.display()
        );
    }
    let selection = Selection {
        python: r.python.clone(),
        suite: SuiteName::Custom,
        benchmarks: r.manifest_benchmarks.clone(),
        with_memray: r.with_memray,
        configs: r.configs.clone(),
        tracer: r.tracer.clone(),
        root: r.root.clone(),
        // The request's benchmarks are already this shard's.
        shard: None,
    };
    crate::system::ensure_free_space(&dir.root)?;
    let mut prepared = prepare::prepare(&selection)?;
    prepared.drop_uninstalled();
    if info.settings.timer == rundir::Timer::Cpu {
        // Recorded as failed when the run started.
        prepared
            .manifest
            .retain(|b| crate::worker::cpu_timer_refusal(b).is_none());
    }
    eprintln!("harness: resuming {}", dir.root.display());
    Ok((dir, info, prepared))
}

/// Everything the calibration and measurement phases need, resolved.
pub struct Runner<'a> {
    pub dir: RunDir,
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

impl Runner<'_> {
    pub(crate) fn ctx(&self) -> EnvContext<'_> {
        EnvContext {
            base: &self.base_env,
            tracer: self.tracer.as_ref(),
            work: &self.work,
        }
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
        kind: FailureKind,
        reason: &str,
        tail: &str,
    ) -> Result<()> {
        for c in &self.configs {
            self.dir
                .record_failure(&Failure::new(bench, &c.name, None, kind, reason, tail))?;
        }
        Ok(())
    }

    /// Removes what an interrupted run wrote after its last progress line.
    fn drop_unrecorded(&self) -> Result<()> {
        let configs: Vec<&str> = self.configs.iter().map(|c| c.name.as_str()).collect();
        let benchmarks: Vec<&str> = self
            .info
            .benchmarks
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        self.dir.drop_unrecorded(&configs, &benchmarks)
    }
}
