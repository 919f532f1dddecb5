//! Issue 19: hostile process tricks. Each one (`tests/programs/tricks.c`, one argument per trick) runs
//! untraced and traced in default and `--native` mode with the same exit code and output, and its
//! capture (and its children's) reads back complete with the allocations the trick made.
//! `docs/reliability.md` says what each one did before the fixes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const C_MODES: [&[&str]; 2] = [&[], &["--native"]];

/// The traced run's stderr without the line `tracer run` prints at the end.
fn program_stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("tracer: wrote "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `tricks TRICK` untraced in `dir/untraced`, then traced in each mode in `dir/<mode>`, checks
/// that every traced run behaved as the untraced one, and returns each mode's directory.
fn run_trick(name: &str, trick: &str) -> Vec<PathBuf> {
    let dir = test_dir(name);
    let exe = compile(&dir, "tricks", &[]);
    let untraced_dir = dir.join("untraced");
    std::fs::create_dir_all(&untraced_dir).unwrap();
    let untraced = Command::new(&exe)
        .arg(trick)
        .current_dir(&untraced_dir)
        .output()
        .unwrap();
    assert_eq!(untraced.status.code(), Some(0), "{untraced:?}");
    let mut dirs = Vec::new();
    for mode in C_MODES {
        let d = dir.join(if mode.is_empty() { "default" } else { "native" });
        std::fs::create_dir_all(&d).unwrap();
        let traced = tracer()
            .args(["run", "-o"])
            .arg(d.join("cap.bin"))
            .args(mode)
            .arg("--exec")
            .arg(&exe)
            .arg(trick)
            .current_dir(&d)
            .output()
            .unwrap();
        assert_eq!(
            traced.status.code(),
            untraced.status.code(),
            "{mode:?}: {traced:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&traced.stdout),
            String::from_utf8_lossy(&untraced.stdout),
            "{mode:?}: stdout"
        );
        assert_eq!(
            program_stderr(&traced),
            String::from_utf8_lossy(&untraced.stderr),
            "{mode:?}: stderr"
        );
        dirs.push(d);
    }
    dirs
}

fn complete(cap: &Path) -> Value {
    let s = stats_json(cap);
    assert_eq!(s["truncated"], false, "{}", cap.display());
    s
}

/// Captures in `dir` other than `cap.bin` itself, sorted.
fn child_captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("cap.bin.")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn closing_every_descriptor_spares_the_capture() {
    for d in run_trick("tricks-close-range", "close_range") {
        let s = complete(&d.join("cap.bin"));
        assert_eq!(bucket(&s, 2048), 50, "{}", d.display());
        assert_eq!(bucket(&s, 16384), 70, "after close_range: {}", d.display());
        // Every block was freed, those allocated before the close_range too: what is left is
        // stdout's 4 KiB buffer, which glibc never frees.
        assert!(
            s["leaked_bytes"].as_u64().unwrap() <= 4096,
            "{}",
            s["leaked_bytes"]
        );
    }
}

#[test]
fn python_closerange_spares_the_capture() {
    let dir = test_dir("tricks-py-closerange");
    let script = script("rel_closerange.py");
    let untraced = Command::new("python3").arg(&script).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&untraced.stdout),
        "closed, then 5242880\n"
    );
    for (i, mode) in [
        &["--stack-source", "walk"][..],
        &["--trace-python-allocators"][..],
    ]
    .iter()
    .enumerate()
    {
        let cap = dir.join(format!("cap{i}.bin"));
        let out = expect_code(
            tracer()
                .args(["run", "-o"])
                .arg(&cap)
                .args(*mode)
                .arg(&script),
            0,
        );
        assert_eq!(out.stdout, untraced.stdout, "{mode:?}");
        assert_eq!(program_stderr(&out), "", "{mode:?}");
        let s = complete(&cap);
        assert_eq!(bucket(&s, 4 << 20), 1, "{mode:?}");
    }
}

#[test]
fn dup2_over_the_capture_moves_it_first() {
    // The program writes its own line through the descriptor it dup2'ed over the capture's number
    // and prints what its file holds: only that line (stdout is compared), and the capture is whole.
    for d in run_trick("tricks-dup2", "dup2") {
        let s = complete(&d.join("cap.bin"));
        assert_eq!(bucket(&s, 16384), 140, "{}", d.display());
    }
}

#[test]
fn a_cancel_request_never_cancels_a_thread_inside_the_allocator() {
    // Cancellation is deferred: the busy thread calls only malloc and free, so it runs to its end
    // untraced (stdout says so, and is compared). Before the fix, --native unwinding reached a
    // cancellation point inside libunwind and the thread was cancelled inside malloc in most runs.
    for round in 0..3 {
        for d in run_trick(&format!("tricks-cancel-{round}"), "cancel") {
            let s = complete(&d.join("cap.bin"));
            assert_eq!(bucket(&s, 16384), 10, "{}", d.display());
            assert!(
                s["allocations"].as_u64().unwrap() >= 2_000_000,
                "{}",
                d.display()
            );
        }
    }
}

#[test]
fn fork_inside_a_signal_handler() {
    for d in run_trick("tricks-signal-fork", "signal_fork") {
        let parent = complete(&d.join("cap.bin"));
        assert_eq!(bucket(&parent, 8192), 5, "the parent's 5 x 12000 B");
        let children = child_captures(&d);
        assert_eq!(children.len(), 5, "{children:?}");
        for c in &children {
            let child = complete(c);
            assert_eq!(bucket(&child, 8192), 3, "{}", c.display());
            assert_eq!(child["header"]["forked_from"], parent["header"]["pid"]);
        }
    }
}

#[test]
fn out_of_address_space() {
    for d in run_trick("tricks-rlimit-as", "rlimit_as") {
        let s = complete(&d.join("cap.bin"));
        assert!(bucket(&s, 1 << 20) >= 1, "{}", d.display());
        assert_eq!(bucket(&s, 2048), 10, "after malloc failed: {}", d.display());
        assert!(
            s["leaked_bytes"].as_u64().unwrap() < 1 << 20,
            "every 1 MiB block was freed"
        );
    }
}

#[test]
fn descriptor_limit_at_its_minimum() {
    // The program sees EMFILE as untraced (compared stdout) and its forked child is still traced:
    // the child's capture is opened with the soft limit raised for that one open.
    for d in run_trick("tricks-rlimit-nofile", "rlimit_nofile") {
        let parent = complete(&d.join("cap.bin"));
        assert_eq!(bucket(&parent, 2048), 10);
        let children = child_captures(&d);
        assert_eq!(children.len(), 1, "{children:?}");
        assert_eq!(bucket(&complete(&children[0]), 8192), 3);
    }
}

/// Waits (up to 10 s) until `path` exists and, for a capture, reads back complete.
fn wait_for(path: &Path, capture: bool) -> Option<Value> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if path.exists() {
            if !capture {
                return Some(Value::Null);
            }
            let out = tracer()
                .arg("stats")
                .arg("--json")
                .arg(path)
                .output()
                .unwrap();
            if out.status.success() {
                let s: Value = serde_json::from_slice(&out.stdout).unwrap();
                if s["truncated"] == false {
                    return Some(s);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn daemon_double_fork_and_setsid() {
    for d in run_trick("tricks-daemon", "daemon") {
        // The grandchild outlives `tracer run`: wait for its output, then for its capture.
        assert!(
            wait_for(&d.join("daemon.out"), false).is_some(),
            "{}",
            d.display()
        );
        assert_eq!(
            std::fs::read_to_string(d.join("daemon.out")).unwrap(),
            "daemon 1\n"
        );
        assert_eq!(bucket(&complete(&d.join("cap.bin")), 2048), 10);
        let grandchild = child_captures(&d)
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .matches('.')
                    .count()
                    == 3
            })
            .unwrap_or_else(|| panic!("no cap.bin.<pid>.<pid> in {}", d.display()));
        let s = wait_for(&grandchild, true).expect("the grandchild's capture completes");
        assert_eq!(bucket(&s, 8192), 4, "{}", grandchild.display());
    }
}

#[test]
fn posix_spawn_and_vfork_exec() {
    for trick in ["posix_spawn", "vfork"] {
        for d in run_trick(&format!("tricks-{trick}"), trick) {
            // The parent records on after the child's exec (a vfork child shares its memory: its
            // exec must not finish the parent's capture), and the exec'ed child is not traced.
            let s = complete(&d.join("cap.bin"));
            assert_eq!(bucket(&s, 2048), 10, "{trick}: {}", d.display());
            assert_eq!(child_captures(&d), Vec::<PathBuf>::new(), "{trick}");
        }
    }
}
