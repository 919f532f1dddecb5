//! The `tracer` command: runs a program under the allocation tracer (`run`), prints the environment
//! that does so (`env`, for the harness), and reads captures (`stats`).

mod launch;
mod report;
mod symbolize;

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
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tracer: {err:#}");
            ExitCode::from(2)
        }
    }
}
