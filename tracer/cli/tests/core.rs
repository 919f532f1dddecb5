//! The tracer core, end to end: programs run under `tracer run`, their captures read by `tracer stats`.

mod common;

use common::*;

#[test]
fn known_sequence_is_recorded_exactly() {
    let dir = test_dir("known_sequence");
    let exe = compile(&dir, "known_sequence", &[]);
    let cap = trace_exec(&dir, &exe, 0);
    let s = stats_json(&cap);
    assert_known_sequence(&s);
    assert_eq!(s["header"]["command_line"][0], exe.to_str().unwrap());
}

#[test]
fn eight_threads_lose_no_event() {
    let dir = test_dir("threads");
    let exe = compile(&dir, "threads", &[]);
    let cap = trace_exec(&dir, &exe, 0);
    let s = stats_json(&cap);
    assert_eq!(s["truncated"], false);
    // Every one of the 80 000 allocations of 5000..5007 bytes, and nothing else of that size.
    assert_eq!(bucket(&s, 4096), 80_000);
    assert!(s["threads"].as_u64().unwrap() >= 9, "{}", s["threads"]);
    // Each block was freed, the last one of each thread by the main thread: no leak of that size,
    // and every free matched its allocation across threads.
    assert!(
        s["leaked_bytes"].as_u64().unwrap() < 5000,
        "{}",
        s["leaked_bytes"]
    );
    assert_eq!(s["unmatched_frees"], 0);
}

#[test]
fn fork_child_writes_its_own_capture() {
    let dir = test_dir("fork");
    let exe = compile(&dir, "fork", &[]);
    let cap = dir.join("cap.bin");
    // The parent leaves through _exit(5): the capture must still be complete.
    expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(&exe),
        5,
    );
    let parent = stats_json(&cap);
    assert_eq!(parent["truncated"], false);
    assert_eq!(bucket(&parent, 8192), 1); // 11111
    assert_eq!(bucket(&parent, 32768), 1); // 33333
    assert_eq!(
        bucket(&parent, 16384),
        0,
        "the child's allocations are not in the parent's capture"
    );
    let children: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("cap.bin.")
        })
        .collect();
    assert_eq!(children.len(), 1, "{children:?}");
    let child = stats_json(&children[0]);
    assert_eq!(child["truncated"], false);
    assert_eq!(bucket(&child, 16384), 3); // 3 x 22222
    assert_eq!(bucket(&child, 8192), 0);
    assert_eq!(child["header"]["forked_from"], parent["header"]["pid"]);
    let child_pid = child["header"]["pid"].as_u64().unwrap();
    assert!(children[0]
        .to_str()
        .unwrap()
        .ends_with(&format!(".{child_pid}")));
}

#[test]
fn truncated_capture_reads_up_to_the_cut() {
    let dir = test_dir("truncated");
    let exe = compile(&dir, "known_sequence", &[]);
    let cap = trace_exec(&dir, &exe, 0);
    let bytes = std::fs::read(&cap).unwrap();
    // Cut inside the end record: all events are still there.
    let cut = dir.join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let s = stats_json(&cut);
    assert_eq!(s["truncated"], true);
    assert_eq!(s["allocations"], 1007);
    let out = expect_code(tracer().arg("stats").arg(&cut), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("TRUNCATED"));
    // Cut inside the header: an error, one line.
    std::fs::write(&cut, &bytes[..12]).unwrap();
    let out = expect_code(tracer().arg("stats").arg(&cut), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ends inside its header"), "{err}");
}

#[test]
fn killed_process_leaves_a_readable_capture() {
    let dir = test_dir("killed");
    let exe = compile(&dir, "killed", &[]);
    let cap = trace_exec(&dir, &exe, 128 + 9);
    let s = stats_json(&cap);
    assert_eq!(s["truncated"], true);
    let allocations = s["allocations"].as_u64().unwrap();
    assert!(
        allocations > 10_000 && allocations <= 100_000,
        "{allocations}"
    );
}

#[test]
fn garbage_is_one_clear_error() {
    let dir = test_dir("garbage");
    let file = dir.join("garbage.bin");
    std::fs::write(&file, b"this is not a capture, just some text\n").unwrap();
    let out = expect_code(tracer().arg("stats").arg(&file), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a capture file"), "{err}");
    let out = expect_code(tracer().arg("stats").arg(dir.join("missing.bin")), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
}

/// The program's output and exit code when the capture cannot be created or written.
fn run_with_output(
    exe: &std::path::Path,
    output: &std::path::Path,
    shell_prefix: &str,
) -> std::process::Output {
    // The variables go on the program itself, not on the shell that sets the limits.
    let cmd = format!(
        "{shell_prefix} exec env LD_PRELOAD={} TRACER_OUTPUT={} {}",
        library().display(),
        output.display(),
        exe.display()
    );
    std::process::Command::new("sh")
        .args(["-c", &cmd])
        .output()
        .unwrap()
}

#[test]
fn unwritable_capture_leaves_the_program_alone() {
    let dir = test_dir("unwritable");
    let exe = compile(&dir, "exit_code", &[]);
    let cases = [
        ("missing directory", dir.join("no/such/dir/cap.bin"), ""),
        (
            "existing file (never overwritten)",
            std::path::PathBuf::from("/dev/full"),
            "",
        ),
        // Writes past 512 bytes fail (EFBIG): the header fits, the first (compressed) chunk does not.
        (
            "write fails mid-run",
            dir.join("small.bin"),
            "ulimit -f 1; trap '' XFSZ;",
        ),
    ];
    for (what, output, prefix) in cases {
        let out = run_with_output(&exe, &output, prefix);
        assert_eq!(out.status.code(), Some(42), "{what}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "still here\n",
            "{what}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("tracer: cannot "), "{what}: {err}");
    }
}

#[test]
fn run_refuses_to_overwrite_and_reports_bad_options() {
    let dir = test_dir("options");
    let cap = dir.join("cap.bin");
    std::fs::write(&cap, b"precious").unwrap();
    let out = expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .args(["--exec", "true"]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&cap).unwrap(), b"precious");
    expect_code(tracer().args(["run", "--no-such-option", "x.py"]), 2);
    expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .args(["--force", "--exec", "true"]),
        0,
    );
    assert_eq!(stats_json(&cap)["truncated"], false);
}

#[test]
fn both_pythons_are_traced() {
    for python in ["python3", "/usr/bin/python3.11"] {
        let dir = test_dir(&format!("python-{}", python.replace('/', "_")));
        let cap = dir.join("cap.bin");
        let out = expect_code(
            tracer()
                .args(["run", "--python", python, "-o"])
                .arg(&cap)
                .arg(script("nested_bytearray.py")),
            0,
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "10485760\n");
        let s = stats_json(&cap);
        assert_eq!(s["truncated"], false);
        assert!(
            s["header"]["python_version"]
                .as_str()
                .unwrap()
                .starts_with("3.11"),
            "{python}: {}",
            s["header"]
        );
        // The 10 MiB bytearray is one allocation in the [8 MiB, 16 MiB) bucket.
        assert_eq!(bucket(&s, 8 << 20), 1, "{python}");
        assert!(
            s["allocations"].as_u64().unwrap() > 1000,
            "{python}: the interpreter's own allocations are traced"
        );
    }
}
