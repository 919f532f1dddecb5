//! Counts the instructions one iteration of a bench program's loop executes, under valgrind's
//! callgrind (the deterministic benches, `benches/benches/instructions.rs`; see docs/benchmarks.md).
//!
//! - The program runs twice, for N and 2N iterations (its last argument); the count is
//!   (count(2N) - count(N)) / N, so start-up and exit cancel.
//! - Only the program's own thread is counted (`--separate-threads=yes`), and on it not the chunk
//!   hand-off to the preload's writer ([`NOT_COUNTED`]): which thread compresses a chunk depends on
//!   how valgrind happens to schedule the two (it runs one at a time), which would move the counts
//!   by up to 0.4% from run to run.
//! - callgrind's tool binary is started directly, as valgrind's launcher would start it: the
//!   launcher is itself a dynamically linked program, so with the preload in its environment it
//!   would be traced and, as the tracer does for every program that execs, drop the preload from
//!   what it hands on: the measured program would run untraced.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{capture_path, work_dir, Tracing};

/// The chunk hand-off: the preload's functions between the hot path and the writer (demangled names,
/// for callgrind's `--toggle-collect`). `rotate` runs once per 64 KiB chunk, `finish` at exit.
pub const NOT_COUNTED: [&str; 2] = [
    "tracer::buffer::ThreadBuffer::rotate",
    "tracer::writer::finish",
];

/// Where callgrind's tool is.
#[derive(Debug, Clone)]
pub struct Callgrind {
    /// The tool binary the launcher would exec (`…/callgrind-amd64-linux`).
    tool: PathBuf,
    /// The launcher, which the tool insists on being told about (`VALGRIND_LAUNCHER`).
    launcher: PathBuf,
    /// `valgrind --version`, e.g. `valgrind-3.19.0`.
    pub version: String,
}

impl Callgrind {
    /// Asks `valgrind` (on `PATH`) which tool binary it would launch.
    pub fn find() -> Result<Callgrind, String> {
        let out = Command::new("valgrind")
            .args(["-d", "--tool=callgrind", "--version"])
            .output()
            .map_err(|e| {
                format!("cannot run valgrind ({e}): install it (apt-get install valgrind)")
            })?;
        let log = String::from_utf8_lossy(&out.stderr);
        let tool = log
            .lines()
            .find_map(|l| {
                l.split_once("launcher launching ")
                    .map(|(_, path)| path.trim())
            })
            .ok_or_else(|| format!("`valgrind -d` did not say which tool it launches:\n{log}"))?;
        let launcher = which("valgrind").ok_or("valgrind is not on PATH")?;
        Ok(Callgrind {
            tool: PathBuf::from(tool),
            launcher,
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        })
    }

    /// Instructions per iteration of `program args… N` under `tracing`, on the program's thread,
    /// from runs with N and 2N iterations.
    pub fn per_iteration(
        &self,
        tracing: Tracing,
        program: &Path,
        args: &[OsString],
        n: u64,
    ) -> f64 {
        let short = self.program_thread(tracing, program, args, n);
        let long = self.program_thread(tracing, program, args, 2 * n);
        (long as f64 - short as f64) / n as f64
    }

    /// Runs `program args… n` under callgrind: the instructions its own thread executed.
    fn program_thread(&self, tracing: Tracing, program: &Path, args: &[OsString], n: u64) -> u64 {
        let profile = work_dir().join(format!("callgrind-{}", std::process::id()));
        let capture = capture_path();
        let mut cmd = Command::new(&self.tool);
        cmd.env("VALGRIND_LAUNCHER", &self.launcher)
            // The same hash seed in both runs, or a Python's start-up work differs and does not cancel.
            .env("PYTHONHASHSEED", "0")
            .arg("--tool=callgrind")
            .arg("--separate-threads=yes")
            .arg(format!("--callgrind-out-file={}", profile.display()));
        for function in NOT_COUNTED {
            cmd.arg(format!("--toggle-collect={function}"));
        }
        // Given a toggle, callgrind would otherwise start with counting off.
        cmd.arg("--collect-atstart=yes")
            .arg(program)
            .args(args)
            .arg(n.to_string());
        tracing.apply(&mut cmd, &capture);
        let threads = run(&mut cmd, &profile);
        let _ = std::fs::remove_file(&capture);
        // The exit flush always compresses the last chunk on this thread: had that been counted, the
        // names in NOT_COUNTED no longer match the preload's functions.
        assert!(
            !threads[0].contains("ZSTD_"),
            "{cmd:?}: the program's thread was charged for compressing chunks: update NOT_COUNTED \
             in benches/src/callgrind.rs to the preload's current function names"
        );
        total(&threads[0]).unwrap_or_else(|| panic!("{cmd:?}: no `totals:` line in its profile"))
    }
}

/// Runs `cmd` and returns each thread's profile (`profile`-01, -02, …, deleted after), in thread
/// order. Panics, with valgrind's log, if the program fails.
fn run(cmd: &mut Command, profile: &Path) -> Vec<String> {
    let out = cmd.output().expect("run callgrind");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut threads = Vec::new();
    for thread in 1.. {
        let file = PathBuf::from(format!("{}-{thread:02}", profile.display()));
        let Ok(text) = std::fs::read_to_string(&file) else {
            break;
        };
        let _ = std::fs::remove_file(&file);
        threads.push(text);
    }
    let _ = std::fs::remove_file(profile);
    assert!(
        !threads.is_empty(),
        "callgrind wrote no {}-01",
        profile.display()
    );
    threads
}

/// The instructions a callgrind profile counts.
fn total(profile: &str) -> Option<u64> {
    profile
        .lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|n| n.trim().parse().ok())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
