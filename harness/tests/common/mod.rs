//! Helpers shared by the end-to-end tests: one directory per test, the harness binary, and a
//! lock so that tests which may create the venv or build the tracer don't race each other.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests that run pyperformance take turns: the venv is made once and the 2 cores are not
/// shared between two timed runs.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `$TMP/harness-tests/<pid>/<name>`, emptied (the pid keeps two checkouts' tests apart).
pub fn test_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join("harness-tests")
        .join(std::process::id().to_string())
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The harness binary, with the tracer built into a target directory of its own: `cargo test`
/// holds the lock of the workspace's target directory while tests run.
pub fn harness() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.env("CARGO_TARGET_DIR", repo().join("target/harness-tests"));
    cmd
}

pub fn show(cmd: &Command, out: &Output) -> String {
    format!(
        "command: {cmd:?}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs and returns the output, panicking with everything if the exit code is not `code`.
pub fn expect_code(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("cannot run the harness");
    assert_eq!(out.status.code(), Some(code), "{}", show(cmd, &out));
    out
}

/// The run directory a finished `harness run` printed on stdout.
pub fn run_dir_of(out: &Output) -> PathBuf {
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap(),
    )
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The venv's Python (made by `harness setup` if needed).
pub fn venv_python() -> PathBuf {
    let info = harness::venv::probe_python(Path::new("python3")).unwrap();
    harness::venv::Venv::ensure(&info, false).unwrap().python
}

/// Options that keep a test run short: one value per process, short calibration.
pub const SHORT: &[&str] = &[
    "--values",
    "2",
    "--warmups",
    "1",
    "--min-time",
    "0.01",
    "--no-report",
];
