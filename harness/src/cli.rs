//! Defines the command line (`setup`, `run`, `report`, `compare`) and turns it into a run: what the
//! user typed (`Cli`) is validated into a `Request`, which `setup` and `run` carry out.

use crate::configs::{self, Config, Tracer};
use crate::results::{Request, RunDir, RunInfo, Settings};
use crate::runner::{Interrupted, Runner};
use crate::suite::{self, Benchmark, Manifest, SuiteName};
use crate::tracer::TracerBin;
use crate::venv::{self, PythonInfo, Venv};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "Runs pyperformance untraced and under each tracer configuration"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make (or reuse) the venv, install the selected benchmarks' requirements, build the tracer.
    Setup(SetupArgs),
    /// Run the suite under every configuration and write a run directory (then its report).
    Run(RunArgs),
    /// Write the report of a run directory (DIR/report/).
    Report { dir: PathBuf },
    /// Compare two run directories (A the reference, B the change) and print markdown.
    Compare { a: PathBuf, b: PathBuf },
}

#[derive(Args, Debug, Clone)]
pub struct SetupArgs {
    /// The Python to benchmark (CPython >= 3.9); the venv is made from it.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Which benchmarks: quick (default), stdlib or all.
    #[arg(long, value_enum, default_value = "quick")]
    pub suite: SuiteName,
    /// Run only these benchmarks (manifest names, comma-separated); overrides --suite.
    #[arg(short = 'b', long = "benchmarks", value_delimiter = ',')]
    pub benchmarks: Vec<String>,
    /// Also install Memray and offer its four configurations.
    #[arg(long)]
    pub with_memray: bool,
    /// Configurations to run, comma-separated (default: baseline, our four modes, profile:default, profile-noop).
    #[arg(long, value_delimiter = ',')]
    pub configs: Vec<String>,
    /// A TOML file of extra configurations ([[config]] tables).
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// Use this tracer binary instead of building one with cargo.
    #[arg(long)]
    pub tracer: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub setup: SetupArgs,
    /// Worker processes per benchmark and configuration (default 6; --fast 3, --rigorous 12).
    #[arg(short, long)]
    pub processes: Option<u32>,
    /// Values per worker process (default 3; --fast 2).
    #[arg(short = 'n', long)]
    pub values: Option<u32>,
    /// Warmup values per worker process.
    #[arg(short, long, default_value_t = 1)]
    pub warmups: u32,
    /// Fewer processes and values, like pyperf's --fast.
    #[arg(long, conflicts_with = "rigorous")]
    pub fast: bool,
    /// More processes, like pyperf's --rigorous.
    #[arg(long)]
    pub rigorous: bool,
    /// Minimum duration of one value when calibrating loops (pyperf's --min-time), in seconds.
    #[arg(long, default_value_t = 0.1)]
    pub min_time: f64,
    /// Kill a worker that runs longer than this many seconds (recorded as a timeout).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Keep the capture files in DIR/captures/.
    #[arg(long)]
    pub keep_captures: bool,
    /// Where run directories are made (default <repo>/results).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Continue an interrupted run; every other selection option is taken from DIR/run.json.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Don't write the report at the end.
    #[arg(long)]
    pub no_report: bool,
}

impl RunArgs {
    fn settings(&self) -> Result<Settings> {
        let (mode, processes, values) = if self.fast {
            ("fast", 3, 2)
        } else if self.rigorous {
            ("rigorous", 12, 3)
        } else {
            ("normal", 6, 3)
        };
        let s = Settings {
            processes: self.processes.unwrap_or(processes),
            values: self.values.unwrap_or(values),
            warmups: self.warmups,
            mode: mode.to_string(),
            timeout_s: self.timeout,
            min_time: self.min_time,
        };
        if s.processes == 0 || s.values == 0 {
            bail!("--processes and --values must be at least 1");
        }
        if s.min_time.is_nan() || s.min_time <= 0.0 {
            bail!("--min-time must be positive");
        }
        Ok(s)
    }
}

/// The result of `setup`: everything a run needs.
pub struct Prepared {
    pub python: PythonInfo,
    pub venv: Venv,
    pub manifest: Vec<Benchmark>,
    pub configs: Vec<Config>,
    pub tracer: Option<TracerBin>,
    /// Benchmarks whose requirements failed to install, with pip's reason.
    pub install_failures: Vec<(String, String)>,
}

fn suite_of(args: &SetupArgs) -> SuiteName {
    if args.benchmarks.is_empty() {
        args.suite
    } else {
        SuiteName::Custom
    }
}

/// Resolves the configurations asked for (before anything slow happens, so a typo fails fast).
fn resolve_configs(args: &SetupArgs) -> Result<Vec<Config>> {
    let from_file = match &args.config_file {
        Some(p) => configs::load_file(p)?,
        None => Vec::new(),
    };
    let names: Vec<String> = if args.configs.is_empty() {
        configs::DEFAULT_CONFIGS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.configs.clone()
    };
    configs::select(&names, args.with_memray, &from_file)
}

/// `harness setup`: the venv, the requirements and the tracer. Also the first step of `run`.
pub fn setup(args: &SetupArgs, configs: Vec<Config>) -> Result<Prepared> {
    let python = venv::probe_python(&args.python)?;
    let venv = Venv::ensure(&python, args.with_memray)?;
    let manifest = Manifest::load(&suite::benchmarks_dir(&venv.site_packages))?;
    let selected = manifest.select(suite_of(args), &args.benchmarks, python.version)?;
    let install_failures = venv.install_requirements(&selected)?;
    let needs_ours = configs
        .iter()
        .any(|c| matches!(c.tracer, Tracer::Ours { .. }));
    let tracer = match (&args.tracer, needs_ours) {
        (Some(p), _) => Some(TracerBin::given(p)?),
        (None, true) => Some(crate::tracer::build()?),
        (None, false) => None,
    };
    Ok(Prepared {
        python,
        venv,
        manifest: selected,
        configs,
        tracer,
        install_failures,
    })
}

pub fn main(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Setup(args) => {
            let configs = resolve_configs(&args)?;
            let p = setup(&args, configs)?;
            eprintln!(
                "harness: venv {} ready ({} benchmarks selected{})",
                p.venv.dir.display(),
                p.manifest.len(),
                p.tracer
                    .as_ref()
                    .map(|t| format!(", tracer {}", t.path.display()))
                    .unwrap_or_default()
            );
            for (b, why) in &p.install_failures {
                eprintln!("harness: {b}: {why}");
            }
            Ok(if p.install_failures.is_empty() { 0 } else { 1 })
        }
        Command::Run(args) => run(&args),
        Command::Report { dir } => {
            RunDir::open(&dir)?;
            let out = plots::write_report(&dir)?;
            println!("{}", out.display());
            Ok(0)
        }
        Command::Compare { a, b } => {
            RunDir::open(&a)?;
            RunDir::open(&b)?;
            print!("{}", plots::compare_runs(&a, &b)?);
            Ok(0)
        }
    }
}

fn run_id() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-")
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// `harness run`: a fresh run, or `--resume DIR`.
fn run(args: &RunArgs) -> Result<i32> {
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let (dir, mut info, prepared) = match &args.resume {
        Some(d) => {
            let s = &args.setup;
            if !s.benchmarks.is_empty() || !s.configs.is_empty() || s.config_file.is_some() {
                eprintln!("harness: --resume continues the run as it was asked; -b, --configs and --config-file are ignored");
            }
            resume_run(d)?
        }
        None => start_run(args)?,
    };
    let base_env = crate::environ::base_env();
    for c in &prepared.configs {
        crate::environ::write_bootstrap(&dir.work(), c)?;
    }
    if !dir.system_txt().is_file() {
        eprintln!("harness: measuring start-up cost of each configuration");
        let ctx = crate::environ::EnvContext {
            base: &base_env,
            tracer: prepared.tracer.as_ref(),
            work: &dir.work(),
        };
        // A bootstrap that hangs must not hang the run here: the worker timeout, at most 10 s.
        let timeout = std::time::Duration::from_secs(info.settings.timeout_s.min(10));
        let costs =
            crate::system::bootstrap_costs(&prepared.venv.python, &ctx, &prepared.configs, timeout);
        let text = crate::system::system_txt(&prepared.venv.python, &info.system, &costs);
        std::fs::write(dir.system_txt(), text)?;
    }
    info.finished = None;
    dir.save_info(&info)?;
    let mut runner = Runner {
        dir: &dir,
        info,
        manifest: prepared.manifest,
        configs: prepared.configs,
        python: prepared.venv.python.clone(),
        tracer: prepared.tracer,
        base_env,
        work: dir.work(),
        interrupted: &interrupted,
    };
    let outcome = runner
        .calibrate_all()
        .and_then(|_| runner.reconcile())
        .and_then(|_| runner.measure_all());
    let summary = match outcome {
        Ok(s) => s,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!(
                "harness: interrupted; continue with: harness run --resume {}",
                dir.root.display()
            );
            return Ok(130);
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
    if !args.no_report {
        match plots::write_report(&dir.root) {
            Ok(p) => eprintln!("harness: report written to {}", p.display()),
            Err(e) => eprintln!("harness: warning: no report: {e:#}"),
        }
    }
    println!("{}", dir.root.display());
    Ok(if failures > 0 { 1 } else { 0 })
}

fn start_run(args: &RunArgs) -> Result<(RunDir, RunInfo, Prepared)> {
    let settings = args.settings()?;
    let configs = resolve_configs(&args.setup)?;
    let prepared = setup(&args.setup, configs)?;
    let root = args
        .results
        .clone()
        .unwrap_or_else(|| venv::repo_root().join("results"));
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    // Workers run in DIR/work and are handed paths: they must be absolute.
    let root = std::path::absolute(&root)
        .with_context(|| format!("cannot make {} absolute", root.display()))?;
    check_space(&root)?;
    let dir = RunDir::create(&root.join(run_id()))?;
    let memray = prepared.venv.has_memray.then_some(venv::MEMRAY);
    let system = crate::system::describe(
        &prepared.python,
        prepared.tracer.as_ref().and_then(|t| t.version()),
        memray,
    );
    let info = RunInfo {
        schema: 1,
        started: now(),
        finished: None,
        suite: suite_of(&args.setup).as_str().to_string(),
        settings,
        benchmarks: Vec::new(),
        configs: prepared.configs.iter().map(config_entry).collect(),
        // The report's reference: `baseline` when selected, else the first configuration.
        baseline: prepared
            .configs
            .iter()
            .find(|c| c.name == "baseline")
            .unwrap_or(&prepared.configs[0])
            .name
            .clone(),
        system,
        request: Request {
            python: args.setup.python.clone(),
            manifest_benchmarks: prepared.manifest.iter().map(|b| b.name.clone()).collect(),
            calibrated: Vec::new(),
            configs: prepared.configs.clone(),
            with_memray: args.setup.with_memray,
            keep_captures: args.keep_captures,
            tracer: args.setup.tracer.clone(),
        },
    };
    dir.save_info(&info)?;
    // Benchmarks whose requirements could not be installed are recorded, not run.
    for (b, why) in &prepared.install_failures {
        for c in &prepared.configs {
            dir.record_failure(&crate::results::Failure {
                benchmark: b.clone(),
                config: c.name.clone(),
                process: None,
                kind: "failed".into(),
                reason: why.clone(),
                stderr_tail: String::new(),
            })?;
        }
    }
    let mut prepared = prepared;
    prepared
        .manifest
        .retain(|b| !prepared.install_failures.iter().any(|(n, _)| n == &b.name));
    eprintln!("harness: run directory {}", dir.root.display());
    Ok((dir, info, prepared))
}

fn resume_run(d: &Path) -> Result<(RunDir, RunInfo, Prepared)> {
    let d =
        &std::path::absolute(d).with_context(|| format!("cannot make {} absolute", d.display()))?;
    let dir = RunDir::open(d)?;
    let info = dir.load_info()?;
    if info.finished.is_some() {
        bail!("{} is a finished run; nothing to resume", d.display());
    }
    let r = &info.request;
    let args = SetupArgs {
        python: r.python.clone(),
        suite: SuiteName::Custom,
        benchmarks: r.manifest_benchmarks.clone(),
        with_memray: r.with_memray,
        configs: Vec::new(),
        config_file: None,
        tracer: r.tracer.clone(),
    };
    check_space(&dir.root)?;
    let mut prepared = setup(&args, r.configs.clone())?;
    prepared
        .manifest
        .retain(|b| !prepared.install_failures.iter().any(|(n, _)| n == &b.name));
    eprintln!("harness: resuming {}", dir.root.display());
    Ok((dir, info, prepared))
}

fn check_space(dir: &Path) -> Result<()> {
    if let Some(free) = crate::system::free_bytes(dir) {
        if free < (1 << 30) {
            bail!(
                "no disk space: {} MiB free in {}, a run needs at least 1024 MiB",
                free >> 20,
                dir.display()
            );
        }
    }
    Ok(())
}

fn config_entry(c: &Config) -> crate::results::ConfigEntry {
    let stack_source = match &c.tracer {
        Tracer::Ours { stack_source, .. } => {
            Some(stack_source.clone().unwrap_or_else(|| "walk".into()))
        }
        _ => None,
    };
    crate::results::ConfigEntry {
        name: c.name.clone(),
        label: c.label.clone(),
        tracer: if c.tracer == Tracer::None
            && (c.bootstrap.is_some() || c.ld_preload.is_some() || !c.env.is_empty())
        {
            "custom".to_string()
        } else {
            c.tracer.kind().to_string()
        },
        mode: c.tracer.mode().map(str::to_string),
        stack_source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_rigorous_like_pyperf() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["harness", "run"];
            argv.extend(extra);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Run(a) => a.settings().unwrap(),
                _ => unreachable!(),
            }
        };
        let n = parse(&[]);
        assert_eq!((n.processes, n.values, n.mode.as_str()), (6, 3, "normal"));
        let f = parse(&["--fast"]);
        assert_eq!((f.processes, f.values), (3, 2));
        let r = parse(&["--rigorous", "-p", "5"]);
        assert_eq!((r.processes, r.mode.as_str()), (5, "rigorous"));
        assert!(Cli::try_parse_from(["harness", "run", "--fast", "--rigorous"]).is_err());
    }

    #[test]
    fn benchmarks_and_configs_split_on_commas() {
        let Command::Run(a) = Cli::try_parse_from([
            "harness",
            "run",
            "-b",
            "nbody,float",
            "--configs",
            "baseline,tracemalloc",
        ])
        .unwrap()
        .command
        else {
            unreachable!()
        };
        assert_eq!(a.setup.benchmarks, ["nbody", "float"]);
        assert_eq!(suite_of(&a.setup), SuiteName::Custom);
        assert_eq!(resolve_configs(&a.setup).unwrap().len(), 2);
    }
}
