//! Defines the command line (`setup`, `run`, `report`, `compare`), checks what the user typed and
//! hands it on: a [`Selection`] to `prepare`, a [`runner::Start`] to the runner, a directory to the
//! report. Nothing here runs anything itself.

use crate::configs::{self, Config};
use crate::prepare::{self, Selection};
use crate::runner::{self, Ended, NewRun, Start};
use crate::suite::SuiteName;
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use plots::Estimator;
use rundir::{ConfigOrder, RunDir, Settings};
use std::path::PathBuf;

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
    Report {
        dir: PathBuf,
        /// How each benchmark's overhead distribution is formed (docs/statistics.md).
        #[arg(long, default_value = "bootstrap", value_parser = ["bootstrap", "process-means", "value-by-value"])]
        estimator: String,
    },
    /// Compare two run directories (A the reference, B the change) and print markdown.
    Compare { a: PathBuf, b: PathBuf },
    /// Measure two builds of our tracer in one run (each a git revision or a tracer binary) and
    /// report B against A (DIR/report/ab.md). --configs names the modes (default: our four).
    Ab(AbArgs),
    /// Merge the run directories of `harness run --shard K/N` (all N of one run) into one.
    Merge {
        /// The shards' run directories, in any order.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged run directory (must not exist).
        #[arg(short, long)]
        output: PathBuf,
        /// Don't write the merged run's report.
        #[arg(long)]
        no_report: bool,
    },
    /// Write one report across Python versions from runs made on different Pythons
    /// (OUTPUT/README.md and OUTPUT/versions.png).
    Versions {
        /// Run directories, one per Python (at least two).
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// Where the report goes.
        #[arg(short, long)]
        output: PathBuf,
    },
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
    /// Configurations to run, comma-separated (default: baseline, baseline-aa, our four modes, profile:default, profile-noop).
    #[arg(long, value_delimiter = ',')]
    pub configs: Vec<String>,
    /// A TOML file of extra configurations ([[config]] tables).
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// Use this tracer binary instead of building one with cargo.
    #[arg(long)]
    pub tracer: Option<PathBuf>,
    /// Run inside this root file system with chroot (e.g. the Debian sid root of
    /// scripts/sid-pythons.sh, for Python 3.13-3.15); --python is then a path inside it.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct AbArgs {
    /// The reference: a git revision of this repository (built under .cache/ab/) or a tracer binary.
    pub a: String,
    /// The change, the same way.
    pub b: String,
    /// Also run A a second time (<mode>@A2): the A/A band, what "no difference" looks like here.
    #[arg(long)]
    pub aa: bool,
    #[command(flatten)]
    pub run: RunArgs,
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
    /// The workers' clock: wall (pyperf's perf_counter) or cpu (the process's CPU time, all its
    /// threads; benchmarks that sleep, wait on I/O or run child processes are refused).
    #[arg(long, default_value = "wall", value_parser = ["wall", "cpu"])]
    pub timer: String,
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
    /// Run only the K-th of N balanced parts of the selection (each a complete run directory;
    /// `harness merge` puts them together). Every configuration of a benchmark is in its shard.
    #[arg(long, value_name = "K/N", conflicts_with = "resume")]
    pub shard: Option<crate::shard::ShardSpec>,
    /// Balance the shards by each benchmark's wall time in this earlier run directory (default:
    /// by benchmark count).
    #[arg(long, value_name = "DIR", requires = "shard")]
    pub shard_costs: Option<PathBuf>,
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
            order: ConfigOrder::Rotate,
            timer: if self.timer == "cpu" {
                rundir::Timer::Cpu
            } else {
                rundir::Timer::Wall
            },
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

/// What `setup` and a new run prepare.
fn selection(args: &SetupArgs) -> Result<Selection> {
    Ok(Selection {
        python: args.python.clone(),
        suite: suite_of(args),
        benchmarks: args.benchmarks.clone(),
        with_memray: args.with_memray,
        configs: resolve_configs(args)?,
        // Absolute, so that `--resume` from another directory finds it too.
        tracer: args
            .tracer
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        root: crate::root::entered(),
        shard: None,
    })
}

/// On the host, for `--root DIR`: builds the tracer when a configuration needs it and none was
/// given (there is no cargo inside the root), then runs the same command inside the root.
fn run_inside(root: &std::path::Path, args: &SetupArgs) -> Result<i32> {
    let needs_ours = resolve_configs(args)?
        .iter()
        .any(|c| matches!(c.tracer, configs::Tracer::Ours { .. }) && c.tracer_binary.is_none());
    let mut extra = Vec::new();
    if needs_ours && args.tracer.is_none() {
        let built = crate::tracer::build()?;
        extra.push("--tracer".into());
        extra.push(built.path.into_os_string());
    }
    crate::root::reenter(root, &extra)
}

pub fn main(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Setup(args) if args.root.is_some() && crate::root::entered().is_none() => {
            run_inside(args.root.as_deref().expect("checked"), &args)
        }
        Command::Run(args)
            if args.setup.root.is_some()
                && args.resume.is_none()
                && crate::root::entered().is_none() =>
        {
            run_inside(args.setup.root.as_deref().expect("checked"), &args.setup)
        }
        Command::Run(RunArgs {
            resume: Some(ref dir),
            ..
        }) if crate::root::entered().is_none() && runner::root_of(dir)?.is_some() => {
            crate::root::reenter(&runner::root_of(dir)?.expect("checked"), &[])
        }
        Command::Setup(args) => {
            let p = prepare::prepare(&selection(&args)?)?;
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
        Command::Run(args) => {
            let start = match &args.resume {
                Some(dir) => {
                    let s = &args.setup;
                    if !s.benchmarks.is_empty() || !s.configs.is_empty() || s.config_file.is_some()
                    {
                        eprintln!("harness: --resume continues the run as it was asked; -b, --configs and --config-file are ignored");
                    }
                    Start::Resume(dir.clone())
                }
                None => Start::New(Box::new(NewRun {
                    settings: args.settings()?,
                    selection: Selection {
                        shard: match (&args.shard, &args.shard_costs) {
                            (Some(s), Some(d)) => Some((*s, crate::shard::costs_from_run(d)?)),
                            (Some(s), None) => Some((*s, Default::default())),
                            (None, _) => None,
                        },
                        ..selection(&args.setup)?
                    },
                    results: args.results.clone(),
                    keep_captures: args.keep_captures,
                    ab: None,
                })),
            };
            match runner::run(start, !args.no_report)? {
                Ended::Finished { dir, failures } => {
                    println!("{}", dir.display());
                    Ok(if failures > 0 { 1 } else { 0 })
                }
                Ended::Interrupted => Ok(130),
            }
        }
        Command::Report { dir, estimator } => {
            RunDir::open(&dir)?;
            let estimator = Estimator::from_name(&estimator).expect("clap checked the name");
            let out = plots::write_report_with(&dir, estimator)?;
            for h in crate::ab::write_report(&dir)?.unwrap_or_default() {
                eprintln!("harness: {h}");
            }
            println!("{}", out.display());
            Ok(0)
        }
        Command::Ab(args) => ab(args),
        Command::Compare { a, b } => {
            RunDir::open(&a)?;
            RunDir::open(&b)?;
            print!("{}", plots::compare_runs(&a, &b)?);
            Ok(0)
        }
        Command::Merge {
            dirs,
            output,
            no_report,
        } => {
            crate::merge::merge(&dirs, &output)?;
            if !no_report {
                let report = plots::write_report(&output)?;
                eprintln!("harness: report written to {}", report.display());
            }
            println!("{}", output.display());
            Ok(0)
        }
        Command::Versions { dirs, output } => {
            for d in &dirs {
                RunDir::open(d)?;
            }
            println!(
                "{}",
                plots::write_versions_report(&dirs, &output)?.display()
            );
            Ok(0)
        }
    }
}

/// `harness ab A B`: resolves (builds) both sides, then a new run of the baseline and each mode on
/// both sides.
fn ab(args: AbArgs) -> Result<i32> {
    let run = &args.run;
    if run.resume.is_some() || run.shard.is_some() || run.setup.tracer.is_some() {
        bail!("harness ab takes neither --resume, --shard nor --tracer (continue an A/B run with harness run --resume DIR)");
    }
    if run.setup.root.is_some() {
        bail!("harness ab does not run inside a root yet; run it on the host");
    }
    let mut setup = run.setup.clone();
    if setup.configs.is_empty() {
        setup.configs = [
            "default",
            "python-allocators",
            "native",
            "python-allocators+native",
        ]
        .map(String::from)
        .to_vec();
    }
    let modes = resolve_configs(&setup)?;
    let baseline = configs::select(&["baseline".into()], false, &[])?.remove(0);
    let a = crate::ab::resolve(&args.a)?;
    let b = crate::ab::resolve(&args.b)?;
    let (configs, request) = crate::ab::configs(baseline, &modes, &a, &b, args.aa)?;
    let mut settings = run.settings()?;
    // The rotation puts every configuration in every position only over a multiple of their
    // number of rounds: an A/B run is rounded up to one, so position effects cannot favour a side.
    let n = configs.len() as u32;
    if !settings.processes.is_multiple_of(n) {
        let up = settings.processes.div_ceil(n) * n;
        eprintln!(
            "harness: {} processes rounded up to {up}, a multiple of the {n} configurations (balanced rotation)",
            settings.processes
        );
        settings.processes = up;
    }
    let start = Start::New(Box::new(NewRun {
        settings,
        selection: Selection {
            configs,
            ..selection(&setup)?
        },
        results: run.results.clone(),
        keep_captures: run.keep_captures,
        ab: Some(request),
    }));
    match runner::run(start, !run.no_report)? {
        Ended::Finished { dir, failures } => {
            println!("{}", dir.display());
            Ok(if failures > 0 { 1 } else { 0 })
        }
        Ended::Interrupted => Ok(130),
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
