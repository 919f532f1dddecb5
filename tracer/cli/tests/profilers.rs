//! Issue 19: the program's own profilers and the tracer's profile stack source share the one profile
//! function slot of a thread. In every stack source the program's output (and so what its profiler
//! found) is the same as untraced, the allocation made after its profiler stopped is attributed to
//! `later < outer < <module>`, and `check` finds no mismatch.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const SOURCES: [&str; 4] = ["walk", "profile", "check", "noop"];

/// Pinned versions of the real tools (cProfile comes with Python).
const TOOLS: &str = "pyinstrument==5.1.1 coverage==7.6.10 line_profiler==4.2.0";

/// The innermost frames' function names of the site that holds the 5 MiB block.
fn five_mib_stack(s: &Value) -> Vec<String> {
    let site = s["top_sites_by_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|site| site["bytes"].as_u64().unwrap() >= 5 << 20 && site["count"] == 1)
        .unwrap_or_else(|| panic!("no 5 MiB site: {}", s["top_sites_by_bytes"]));
    site["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `python script args` untraced and under each stack source, and checks what the module doc
/// says.
fn check_every_source(name: &str, python: &Path, script: &Path, args: &[&str], outermost: &str) {
    let dir = test_dir(name);
    let untraced = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(untraced.status.code(), Some(0), "{untraced:?}");
    for source in SOURCES {
        let cap = dir.join(format!("{source}.bin"));
        let traced = expect_code(
            tracer()
                .args(["run", "--python"])
                .arg(python)
                .args(["--stack-source", source, "-o"])
                .arg(&cap)
                .arg(script)
                .args(args),
            0,
        );
        assert_eq!(
            String::from_utf8_lossy(&traced.stdout),
            String::from_utf8_lossy(&untraced.stdout),
            "{name} {source}: the program's (and its profiler's) output"
        );
        let s = stats_json(&cap);
        assert_eq!(s["truncated"], false);
        if source != "noop" {
            assert_eq!(
                &five_mib_stack(&s)[..3],
                ["later", "outer", outermost],
                "{name} {source}"
            );
        }
        assert_eq!(s["counters"]["stack_mismatches"], 0, "{name} {source}");
        if source == "check" {
            assert!(
                s["counters"]["stack_checks"].as_u64().unwrap() > 50,
                "{name}"
            );
        }
    }
}

#[test]
fn a_program_that_profiles_itself_for_a_while() {
    // The program: sys.setprofile(prof) for ten calls, then sys.setprofile(None). Before, the
    // profile source lost every frame after it (the 5 MiB block was `<module>` alone) and the
    // program's profiler saw one event more than untraced (it prints them all).
    check_every_source(
        "profilers-own",
        Path::new("python3"),
        &script("own_profiler.py"),
        &[],
        "<module>",
    );
}

#[test]
fn a_program_that_profiles_its_threads() {
    // threading.setprofile: the program's function sees its threads' events from the first one on
    // (printed), threading.getprofile() returns it, and the thread's block is `later < outer < run`.
    check_every_source(
        "profilers-threads",
        Path::new("python3"),
        &script("own_thread_profiler.py"),
        &[],
        "Worker.run",
    );
}

/// A venv with the real tools for `python`, made once under the target directory.
fn tools_venv(python: &Path) -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("profiler-tools-venv");
    let bin = venv.join("bin/python");
    if bin.exists()
        && Command::new(&bin)
            .args(["-c", "import pyinstrument, coverage, line_profiler"])
            .status()
            .unwrap()
            .success()
    {
        return bin;
    }
    let _ = std::fs::remove_dir_all(&venv);
    expect_code(Command::new(python).args(["-m", "venv"]).arg(&venv), 0);
    expect_code(
        Command::new(&bin)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(TOOLS.split(' ')),
        0,
    );
    bin
}

#[test]
fn real_profilers_run_inside_a_traced_program() {
    // cProfile and pyinstrument set the profile function through the C API (before, pyinstrument
    // under the profile source crashed the program with SIGSEGV, and cProfile's run left the later
    // block at `<module>` and 5 check mismatches); coverage and line_profiler set the trace function,
    // whose callbacks run Python frames that no profile function sees (check skips those).
    let python = tools_venv(Path::new("python3"));
    for tool in ["cprofile", "pyinstrument", "coverage", "line_profiler"] {
        check_every_source(
            &format!("profilers-{tool}"),
            &python,
            &script("own_tools.py"),
            &[tool],
            "<module>",
        );
    }
}
