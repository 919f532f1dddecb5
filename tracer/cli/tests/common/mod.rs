//! Shared helpers for the tracer's integration tests: a directory per test, C programs compiled with
//! `cc`, the `tracer` binary, and its JSON statistics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A fresh directory for one test: `target/test-runs/<name>`.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("test-runs")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn tracer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracer"))
}

/// The `libtracer.so` the tests use (cargo builds it as a dev-dependency).
pub fn library() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tracer"));
    let lib = exe.with_file_name("deps").join("libtracer.so");
    assert!(lib.is_file(), "{} missing", lib.display());
    lib
}

/// Compiles `tests/programs/<name>.c` into `dir` and returns the executable (`-O0 -fno-builtin`:
/// the compiler would otherwise drop allocations whose blocks are never used).
pub fn compile(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(format!("{name}.c"));
    let exe = dir.join(name);
    let out = Command::new("cc")
        .args(["-O0", "-fno-builtin", "-g", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
}

/// Runs a command and panics with its output if it does not exit with `code`.
pub fn expect_code(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `exe` under `tracer run --exec` writing `<dir>/cap.bin`, expects exit `code`, returns the
/// capture's path.
pub fn trace_exec(dir: &Path, exe: &Path, code: i32) -> PathBuf {
    let cap = dir.join("cap.bin");
    expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(exe),
        code,
    );
    cap
}

/// `tracer stats --json FILE`, parsed.
pub fn stats_json(capture: &Path) -> Value {
    let out = expect_code(tracer().arg("stats").arg("--json").arg(capture), 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The count in the histogram bucket that starts at `low`, or 0.
pub fn bucket(stats: &Value, low: u64) -> u64 {
    stats["size_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["low"] == low)
        .map(|b| b["count"].as_u64().unwrap())
        .unwrap_or(0)
}

pub fn kind_count(stats: &Value, kind: &str) -> u64 {
    stats["by_kind"][kind]["count"].as_u64().unwrap_or(0)
}

/// Checks the statistics of `programs/known_sequence.c`: every call, size, peak and leak.
pub fn assert_known_sequence(s: &Value) {
    assert_eq!(s["truncated"], false);
    assert_eq!(kind_count(s, "malloc"), 1000);
    assert_eq!(s["by_kind"]["malloc"]["bytes"], 123_000);
    assert_eq!(kind_count(s, "calloc"), 1);
    assert_eq!(s["by_kind"]["calloc"]["bytes"], 1000);
    assert_eq!(kind_count(s, "realloc"), 4);
    assert_eq!(s["by_kind"]["realloc"]["bytes"], 16 + 256 + 4096 + 65536);
    assert_eq!(kind_count(s, "posix_memalign"), 1);
    assert_eq!(kind_count(s, "aligned_alloc"), 1);
    assert_eq!(kind_count(s, "free"), 997);
    assert_eq!(s["allocations"], 1007);
    // 997 frees plus the 3 reallocs that gave a block back.
    assert_eq!(s["frees"], 1000);
    assert_eq!(
        s["bytes_allocated"],
        123_000 + 1000 + 16 + 256 + 4096 + 65536 + 200 + 8192
    );
    // Everything is live just after aligned_alloc.
    assert_eq!(s["peak_bytes"], 123_000 + 1000 + 65536 + 200 + 8192);
    assert_eq!(s["leaked_blocks"], 7);
    assert_eq!(s["leaked_bytes"], 5 * 123 + 200 + 8192);
    assert_eq!(s["unmatched_frees"], 0);
}
