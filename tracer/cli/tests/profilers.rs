//! Issue 19: the program's own profilers and the tracer's profile stack source share the one profile
//! function slot of a thread. In every stack source the program's output (and so what its profiler
//! found) is the same as untraced, the allocation made after its profiler stopped is attributed to
//! `later < outer < <module>`, and `check` finds no mismatch.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const SOURCES: [&str; 4] = ["walk", "profile", "check", "noop"];

/// The real tools, pinned (cProfile comes with Python).
const TOOLS: [(&str, &str); 3] = [
    ("pyinstrument", "pyinstrument==5.1.3"),
    ("coverage", "coverage==7.17.3"),
    ("line_profiler", "line_profiler==5.1.0"),
];

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
fn check_every_source(name: &str, python: &Python, script: &Path, args: &[&str], outermost: &str) {
    let name = format!("{name}-{}", python.label().replace('/', "_"));
    let dir = test_dir(&name);
    let untraced = python.python().arg(script).args(args).output().unwrap();
    assert_eq!(untraced.status.code(), Some(0), "{python}: {untraced:?}");
    for source in SOURCES {
        let cap = dir.join(format!("{source}.bin"));
        let traced = expect_code(
            python
                .tracer_run()
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
        let s = python.stats_json(&cap);
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
    for python in pythons() {
        check_every_source(
            "profilers-own",
            &python,
            &script("own_profiler.py"),
            &[],
            "<module>",
        );
    }
}

#[test]
fn a_program_that_profiles_its_threads() {
    // threading.setprofile: the program's function sees its threads' events from the first one on
    // (printed), threading.getprofile() returns it, and the thread's block is `later < outer < run`.
    for python in pythons() {
        let script = script("own_thread_profiler.py");
        check_every_source("profilers-threads", &python, &script, &[], "Worker.run");
    }
}

/// A venv of `python`'s with the real tools that install there (made once under the target
/// directory, which the sid root sees at the same path), as an interpreter of its own, and the tools
/// it has.
fn tools_venv(python: &Python) -> (Python, Vec<&'static str>) {
    let venv =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("profiler-tools-{}", python.label()));
    let bin = venv.join("bin/python");
    let venv_python = Python {
        exe: bin.to_string_lossy().into_owned(),
        ..python.clone()
    };
    if !bin.exists() {
        expect_code(python.python().args(["-m", "venv"]).arg(&venv), 0);
    }
    let mut tools = vec!["cprofile"];
    for (tool, pin) in TOOLS {
        let has = |p: &Python| {
            p.python()
                .args(["-c", &format!("import {tool}")])
                .status()
                .unwrap()
                .success()
        };
        if !has(&venv_python) {
            let out = venv_python
                .python()
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    pin,
                ])
                .output()
                .unwrap();
            if !out.status.success() {
                // A release too new for the tool's wheels (pyinstrument on 3.15, with no compiler in
                // the root): said loudly, past the harness's capture.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!! SKIPPING {tool} on {python}: `pip install {pin}` failed: {}\n",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
                continue;
            }
        }
        tools.push(tool);
    }
    (venv_python, tools)
}

#[test]
fn real_profilers_run_inside_a_traced_program() {
    // cProfile and pyinstrument set the profile function through the C API (before, pyinstrument
    // under the profile source crashed the program with SIGSEGV on 3.11, and cProfile's run left the
    // later block at `<module>` and 5 check mismatches); coverage and line_profiler set the trace
    // function or use sys.monitoring, whose callbacks run Python frames that no profile function
    // sees (check skips those).
    for python in pythons() {
        let (venv, tools) = tools_venv(&python);
        for tool in tools {
            let name = format!("profilers-{tool}");
            check_every_source(&name, &venv, &script("own_tools.py"), &[tool], "<module>");
        }
    }
}
