//! Provides what the tracer's benches share: the preload library that `cargo bench` built, the
//! benchmark programs (compiled on first use), and running them under the preload, timed from inside
//! (criterion's external-process pattern: the child reads an iteration count and prints nanoseconds,
//! so process start-up is never measured). See `docs/benchmarks.md`.

pub mod callgrind;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a child process is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracing {
    /// No preload.
    Off,
    /// The preload loaded but not recording (no `TRACER_OUTPUT`): the cost of interposing alone.
    Loaded,
    /// Recording to a capture file, with these `TRACER_*` settings.
    On {
        stack_source: &'static str,
        python_allocators: bool,
        native: bool,
    },
}

impl Tracing {
    pub const DEFAULT: Tracing = Tracing::python("walk", false);
    pub const NATIVE: Tracing = Tracing::On {
        stack_source: "walk",
        python_allocators: false,
        native: true,
    };

    /// Recording Python stacks from `stack_source`, pymalloc traced or not.
    pub const fn python(stack_source: &'static str, python_allocators: bool) -> Tracing {
        Tracing::On {
            stack_source,
            python_allocators,
            native: false,
        }
    }

    /// Sets `cmd`'s environment for this mode; a recording goes to `capture`.
    pub fn apply(self, cmd: &mut Command, capture: &Path) {
        self.apply_with(cmd, capture, &library())
    }

    /// `apply` with the preload library `lib` (another build, for a side-by-side comparison).
    pub fn apply_with(self, cmd: &mut Command, capture: &Path, lib: &Path) {
        let flag = |on: bool| if on { "1" } else { "0" };
        match self {
            Tracing::Off => {}
            Tracing::Loaded => {
                cmd.env("LD_PRELOAD", lib);
            }
            Tracing::On {
                stack_source,
                python_allocators,
                native,
            } => {
                cmd.env("LD_PRELOAD", lib)
                    .env("TRACER_OUTPUT", capture)
                    .env("TRACER_STACK_SOURCE", stack_source)
                    .env("TRACER_PYTHON_ALLOCATORS", flag(python_allocators))
                    .env("TRACER_NATIVE", flag(native))
                    .env("PYTHONPATH", bootstrap());
            }
        }
    }
}

/// The directory benches write to: `target/bench-runs`.
pub fn work_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    let dir = target.join("bench-runs");
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

/// `libtracer.so`, built by `cargo bench` next to the bench executable (a dev-dependency).
pub fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let lib = exe.with_file_name("libtracer.so");
    assert!(
        lib.is_file(),
        "{} missing: run through `cargo bench`",
        lib.display()
    );
    lib
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

/// Compiles `programs/<name>.c` with `-O2 -fno-builtin` (so allocations are not elided).
pub fn compile(name: &str) -> PathBuf {
    let exe = work_dir().join(name);
    let src = source_dir().join(format!("{name}.c"));
    let status = Command::new("cc")
        .args(["-O2", "-fno-builtin", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(status.success(), "cc {} failed", src.display());
    exe
}

/// `programs/<name>.py`.
pub fn script(name: &str) -> PathBuf {
    source_dir().join(format!("{name}.py"))
}

/// The bootstrap directory `tracer run` would use (sitecustomize plus the module symlink).
fn bootstrap() -> PathBuf {
    let dir = work_dir().join("bootstrap");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("sitecustomize.py"),
        include_str!("../../tracer/preload/python/sitecustomize.py"),
    )
    .unwrap();
    let link = dir.join("_alloc_tracer.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(library(), &link).unwrap();
    dir
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Another build of `libtracer.so` to bench side by side with this one (`BENCH_BASELINE_LIBRARY`,
/// e.g. one built from `main`), so that a change is measured in the same run.
pub fn baseline_library() -> Option<PathBuf> {
    let lib = PathBuf::from(std::env::var_os("BENCH_BASELINE_LIBRARY")?);
    assert!(
        lib.is_file(),
        "BENCH_BASELINE_LIBRARY={} is not a file",
        lib.display()
    );
    Some(lib)
}

/// Runs `program args` under `tracing` and returns its stdout; the capture (if any) is deleted.
pub fn run(tracing: Tracing, program: &Path, args: &[String]) -> String {
    run_with(&library(), tracing, program, args)
}

/// `run` with the preload library `lib`.
pub fn run_with(lib: &Path, tracing: Tracing, program: &Path, args: &[String]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let capture = capture_path();
    tracing.apply_with(&mut cmd, &capture, lib);
    let out = cmd.output().expect("run bench program");
    let _ = std::fs::remove_file(&capture);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A fresh capture file name under [`work_dir`] (the caller deletes the file).
pub fn capture_path() -> PathBuf {
    work_dir().join(format!(
        "capture-{}-{}.bin",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs a program that prints the nanoseconds its `iters` iterations took.
pub fn timed(tracing: Tracing, program: &Path, args: &[String]) -> Duration {
    timed_with(&library(), tracing, program, args)
}

/// `timed` with the preload library `lib`.
pub fn timed_with(lib: &Path, tracing: Tracing, program: &Path, args: &[String]) -> Duration {
    let out = run_with(lib, tracing, program, args);
    Duration::from_nanos(out.trim().parse().expect("nanoseconds"))
}

/// The Python benches' interpreter.
pub fn python() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
