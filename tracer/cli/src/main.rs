//! The `tracer` command: runs a program under the allocation tracer (`run`), prints the environment
//! that does so (`env`, for the harness), and reads captures (`stats`, and the Memray-like views
//! `flamegraph`, `tree`, `summary`).

mod launch;
mod report;
mod symbolize;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "tracer", version, about = "CPython allocation tracer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Python script or module (or any program with --exec) under the tracer.
    Run(RunArgs),
    /// Print the environment (KEY=VALUE lines) that traces a process, as `run` would set it.
    Env(EnvArgs),
    /// Summarise a capture: totals, peak heap, leaks, allocators, sizes, the tracer's counters.
    Stats(StatsArgs),
    /// Write a flame graph of a capture as a self-contained HTML file (memory live at the peak by
    /// default).
    Flamegraph(FlamegraphArgs),
    /// Print the biggest allocation paths as an indented tree (memory live at the peak by default).
    Tree(TreeArgs),
    /// Print per function: total, own and live-at-peak bytes, and allocation counts.
    Summary(SummaryArgs),
}

/// Which allocations a view shows (default: those live at the peak).
#[derive(Args, Clone, Copy)]
pub struct ViewArgs {
    /// Every allocation, freed or not.
    #[arg(long, conflicts_with_all = ["leaks", "temporary"])]
    all: bool,
    /// What was never freed (live when tracing stopped).
    #[arg(long, conflicts_with = "temporary")]
    leaks: bool,
    /// Allocations freed before their thread's next allocation (Memray's temporary allocations).
    #[arg(long)]
    temporary: bool,
    /// Native-mode captures: show native frames, with the Python frames in place of the
    /// interpreter's evaluation loop.
    #[arg(long)]
    native: bool,
}

impl ViewArgs {
    fn which(&self) -> views::Which {
        views::Which::from_flags(self.all, self.leaks, self.temporary)
    }
}

#[derive(Args)]
pub struct FlamegraphArgs {
    /// The capture to read.
    file: PathBuf,
    /// The HTML file to write (default: the capture's name with `.html`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    view: ViewArgs,
}

#[derive(Args)]
pub struct TreeArgs {
    /// The capture to read.
    file: PathBuf,
    #[command(flatten)]
    view: ViewArgs,
    /// Children shown under each frame (the biggest; the rest are summed in one line).
    #[arg(long, default_value_t = 10)]
    max_children: usize,
    /// Hide paths holding less than this percentage of the total.
    #[arg(long, default_value_t = 0.0)]
    min_percent: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SummaryArgs {
    /// The capture to read.
    file: PathBuf,
    /// Native-mode captures: native functions too.
    #[arg(long)]
    native: bool,
    /// Functions shown in text (JSON lists every one).
    #[arg(long, default_value_t = 30)]
    limit: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Which Python stack source the tracer uses.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum StackSource {
    /// Walk the interpreter's frames at each allocation (no per-call cost).
    Walk,
    /// A native profile function keeping a shadow stack.
    Profile,
    /// The profile function installed but doing nothing; allocations carry no Python stack (shows
    /// what CPython's profiling machinery costs by itself).
    Noop,
    /// Both sources: records the walked stack and counts where the profiled one disagrees (a test).
    Check,
}

impl StackSource {
    fn as_str(self) -> &'static str {
        match self {
            StackSource::Walk => "walk",
            StackSource::Profile => "profile",
            StackSource::Noop => "noop",
            StackSource::Check => "check",
        }
    }
}

#[derive(Args, Clone)]
pub struct ModeArgs {
    /// Also record pymalloc allocations (PyMem_SetAllocator on the MEM and OBJ domains).
    #[arg(long)]
    trace_python_allocators: bool,
    /// Also record the native stack of every allocation.
    #[arg(long)]
    native: bool,
    /// Where Python stacks come from.
    #[arg(long, value_enum, default_value = "walk")]
    stack_source: StackSource,
    /// Trace exec'ed child processes too (each writes <capture>.<pid>).
    #[arg(long)]
    follow_exec: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// Capture file (default: tracer-<name>.<pid>.bin in the current directory).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Overwrite the capture file if it exists.
    #[arg(short, long)]
    force: bool,
    #[command(flatten)]
    mode: ModeArgs,
    /// The Python interpreter to run.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Run a library module as a script, like `python -m`.
    #[arg(short = 'm', value_name = "MODULE", conflicts_with = "exec")]
    module: Option<String>,
    /// Run PROGRAM (the first argument) directly instead of a Python script.
    #[arg(long)]
    exec: bool,
    /// The script (or, with --exec, the program) and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args)]
pub struct EnvArgs {
    /// Capture file the traced process writes.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    mode: ModeArgs,
}

#[derive(Args)]
pub struct StatsArgs {
    /// The capture to read.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Native-mode captures: show sites' raw native stacks (symbolized), without Python frames
    /// merged in.
    #[arg(long)]
    native_only: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => launch::run(args),
        Command::Env(args) => launch::print_env(args).map(|()| ExitCode::SUCCESS),
        Command::Stats(args) => {
            report::stats(&args.file, args.json, args.native_only).map(|()| ExitCode::SUCCESS)
        }
        Command::Flamegraph(args) => {
            let output = args
                .output
                .clone()
                .unwrap_or_else(|| args.file.with_extension("html"));
            views::flamegraph(&args.file, &output, args.view.which(), args.view.native)
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Tree(args) => views::tree(
            &args.file,
            &views::TreeOptions {
                which: args.view.which(),
                native: args.view.native,
                json: args.json,
                max_children: args.max_children.max(1),
                min_percent: args.min_percent,
            },
        )
        .map(|()| ExitCode::SUCCESS),
        Command::Summary(args) => views::summary(&args.file, args.native, args.json, args.limit)
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tracer: {err:#}");
            ExitCode::from(2)
        }
    }
}
