//! End-to-end runs of the real pyperformance benchmarks through pyperf workers: results that
//! `pyperf compare_to` reads, loops shared by all configurations, non-empty captures, resuming a
//! killed run, and a configuration under which a benchmark fails.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// `(benchmark name -> runs)` of one pyperf file.
fn runs_by_bench(path: &Path) -> BTreeMap<String, Vec<Value>> {
    let suite = read_json(path);
    assert_eq!(suite["version"], "1.0");
    suite["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["metadata"]["name"].as_str().unwrap().to_string(),
                b["runs"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

#[test]
fn baseline_tracer_and_tracemalloc() {
    let _guard = serial();
    let dir = test_dir("e2e");
    let mut cmd = harness();
    cmd.args([
        "run",
        "-b",
        "nbody,deepcopy",
        "--configs",
        "baseline,default,tracemalloc",
    ])
    .args(["--processes", "2", "--keep-captures", "--results"])
    .arg(&dir)
    .args(SHORT);
    let out = expect_code(&mut cmd, 0);
    let run = run_dir_of(&out);
    let info = read_json(&run.join("run.json"));
    assert!(info["finished"].is_string());

    // deepcopy's script runs three tasks, each calibrated and measured as its own benchmark.
    let benches: BTreeMap<String, (u64, Value)> = info["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                (b["loops"].as_u64().unwrap(), b["task"].clone()),
            )
        })
        .collect();
    let names: Vec<&str> = benches.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["deepcopy", "deepcopy_memo", "deepcopy_reduce", "nbody"]
    );
    assert_eq!(benches["nbody"].1, Value::Null);
    assert_eq!(benches["deepcopy_memo"].1, 2);

    for config in ["baseline", "default", "tracemalloc"] {
        let runs = runs_by_bench(&run.join("pyperf").join(format!("{config}.json")));
        assert_eq!(runs.len(), 4, "{config}");
        for (name, runs) in &runs {
            assert_eq!(runs.len(), 2, "{config} {name}: one run per process");
            for r in runs {
                // Loops were calibrated once on the baseline and used everywhere.
                assert_eq!(
                    r["metadata"]["loops"].as_u64(),
                    Some(benches[name].0),
                    "{config} {name}"
                );
                assert_eq!(r["values"].as_array().unwrap().len(), 2);
                assert!(r["metadata"]["mem_max_rss"].as_u64().unwrap() > 0);
            }
        }
    }
    let nbody = &read_json(&run.join("pyperf/baseline.json"))["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["metadata"]["name"] == "nbody")
        .unwrap()
        .clone();
    assert_eq!(nbody["metadata"]["tags"], serde_json::json!(["math"]));

    // pyperf itself reads the files.
    let python = venv_python();
    for config in ["default", "tracemalloc"] {
        let mut cmp = std::process::Command::new(&python);
        cmp.args(["-m", "pyperf", "compare_to", "--table"])
            .arg(run.join("pyperf/baseline.json"))
            .arg(run.join(format!("pyperf/{config}.json")));
        let out = expect_code(&mut cmp, 0);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("deepcopy_reduce"), "{text}");
    }

    // Every traced process left a non-empty capture and a statistics line.
    for name in benches.keys() {
        for k in 0..2 {
            let cap = run.join(format!("captures/default/{name}-{k}.bin"));
            let len = std::fs::metadata(&cap).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0, "{} is missing or empty", cap.display());
        }
        let lines = read_jsonl(&run.join(format!("tracer/default/{name}.jsonl")));
        assert_eq!(lines.len(), 2, "{name}");
        for l in lines {
            assert!(l["capture_bytes"].as_u64().unwrap() > 0);
            assert!(l["stats"]["events"].as_u64().unwrap() > 0, "{l}");
        }
    }
    assert!(!run.join("failures.jsonl").exists());
    assert_eq!(read_jsonl(&run.join("progress.jsonl")).len(), 4 * 3 * 2);
    let system = std::fs::read_to_string(run.join("system.txt")).unwrap();
    assert!(system.contains("| tracemalloc |"), "{system}");
}

#[test]
fn resume_after_kill_redoes_nothing() {
    let _guard = serial();
    let dir = test_dir("resume");
    let mut cmd = harness();
    cmd.args([
        "run",
        "-b",
        "richards,float",
        "--configs",
        "baseline,tracemalloc",
    ])
    .args(["--processes", "4", "--results"])
    .arg(&dir)
    .args(SHORT)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Wait for a few finished workers, then kill -9 the harness mid-run.
    let start = Instant::now();
    let run = loop {
        let found = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| read_jsonl(&p.join("progress.jsonl")).len() >= 3);
        if let Some(run) = found {
            break run;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(start.elapsed() < Duration::from_secs(240), "no progress");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let before = read_jsonl(&run.join("progress.jsonl"));
    assert!(before.len() < 16, "killed too late to test resuming");
    assert!(read_json(&run.join("run.json"))["finished"].is_null());

    // Resumed, and killed again after a little more work: a second interruption loses nothing either.
    let mut resume = harness();
    resume
        .args(["run", "--no-report", "--resume"])
        .arg(&run)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = resume.spawn().unwrap();
    let start = Instant::now();
    while read_jsonl(&run.join("progress.jsonl")).len() < before.len() + 2
        && child.try_wait().unwrap().is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "no progress after resuming"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let middle = read_jsonl(&run.join("progress.jsonl"));
    assert_eq!(&middle[..before.len()], &before[..]);

    let mut resume = harness();
    resume.args(["run", "--no-report", "--resume"]).arg(&run);
    expect_code(&mut resume, 0);
    let after = read_jsonl(&run.join("progress.jsonl"));
    assert_eq!(&after[..middle.len()], &middle[..]);
    // Finished work is kept as it was and not done again: no triple twice, all 16 there.
    assert_eq!(&after[..before.len()], &before[..]);
    let unique: HashSet<String> = after.iter().map(|v| v.to_string()).collect();
    assert_eq!(unique.len(), after.len(), "a process was run twice");
    assert_eq!(after.len(), 2 * 2 * 4);
    for config in ["baseline", "tracemalloc"] {
        for (name, runs) in runs_by_bench(&run.join(format!("pyperf/{config}.json"))) {
            assert_eq!(runs.len(), 4, "{config} {name}");
        }
    }
    assert!(read_json(&run.join("run.json"))["finished"].is_string());
}

#[test]
fn failing_configuration_is_recorded_and_the_run_goes_on() {
    let _guard = serial();
    let dir = test_dir("failing");
    let cfg = dir.join("configs.toml");
    std::fs::write(
        &cfg,
        r#"
[[config]]
name = "raises-at-start"
label = "bootstrap that raises"
bootstrap = '''
raise RuntimeError("bootstrap says no")
'''

[[config]]
name = "bad-env"
env = { PYTHONHOME = "/nonexistent" }

[[config]]
name = "hangs"
bootstrap = "import time; time.sleep(600)"

[[config]]
name = "segfaults"
bootstrap = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
"#,
    )
    .unwrap();
    let mut cmd = harness();
    cmd.args([
        "run",
        "-b",
        "richards",
        "--configs",
        "baseline,raises-at-start,bad-env,hangs,segfaults",
    ])
    .arg("--config-file")
    .arg(&cfg)
    .args(["--processes", "2", "--timeout", "3", "--results"])
    .arg(&dir)
    .args(SHORT);
    let start = Instant::now();
    let out = expect_code(&mut cmd, 1);
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "a hung worker was waited for"
    );
    let run = run_dir_of(&out);
    let failures = read_jsonl(&run.join("failures.jsonl"));
    // One failure per failing configuration: after the first, its other processes are skipped.
    assert_eq!(failures.len(), 4, "{failures:?}");
    let exits = failures
        .iter()
        .find(|f| f["config"] == "raises-at-start")
        .unwrap();
    assert_eq!(exits["kind"], "failed");
    assert_eq!(exits["benchmark"], "richards");
    assert_eq!(exits["process"], 0);
    assert!(
        exits["reason"]
            .as_str()
            .unwrap()
            .contains("exit status: 70"),
        "{exits}"
    );
    assert!(exits["stderr_tail"]
        .as_str()
        .unwrap()
        .contains("RuntimeError: bootstrap says no"));
    assert!(failures.iter().any(|f| f["config"] == "bad-env"));
    let hung = failures.iter().find(|f| f["config"] == "hangs").unwrap();
    assert_eq!(hung["kind"], "timeout", "{hung}");
    let crashed = failures
        .iter()
        .find(|f| f["config"] == "segfaults")
        .unwrap();
    assert_eq!(crashed["kind"], "failed", "{crashed}");
    assert!(
        crashed["reason"].as_str().unwrap().contains("SIGSEGV"),
        "{crashed}"
    );
    let system = std::fs::read_to_string(run.join("system.txt")).unwrap();
    assert!(
        system.contains("| hangs | failed or took over 3 s |"),
        "{system}"
    );
    // The baseline is complete.
    let runs = runs_by_bench(&run.join("pyperf/baseline.json"));
    assert_eq!(runs["richards"].len(), 2);
    assert!(!run.join("pyperf/raises-at-start.json").exists());
}

/// A traced worker whose `malloc` is not the tracer's (an allocator preloaded before it) writes a
/// complete but empty capture: the result is invalid, not a cheap success.
#[test]
fn bypassed_hooks_make_the_result_invalid() {
    let _guard = serial();
    let dir = test_dir("bypassed");
    let cfg = dir.join("configs.toml");
    // `ld_preload` goes before the tracer's library: jemalloc's malloc comes first.
    std::fs::write(
        &cfg,
        r#"
[[config]]
name = "jemalloc-first"
ld_preload = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
tracer = {}
"#,
    )
    .unwrap();
    let mut cmd = harness();
    cmd.args([
        "run",
        "-b",
        "richards",
        "--configs",
        "baseline,jemalloc-first",
    ])
    .arg("--config-file")
    .arg(&cfg)
    .args(["--processes", "1", "--results"])
    .arg(&dir)
    .args(SHORT);
    let out = expect_code(&mut cmd, 1);
    let run = run_dir_of(&out);
    let failures = read_jsonl(&run.join("failures.jsonl"));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["config"], "jemalloc-first");
    assert_eq!(failures[0]["kind"], "invalid", "{}", failures[0]);
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("hooks bypassed: malloc, free") && reason.contains("libjemalloc"),
        "{reason}"
    );
    assert!(!run.join("pyperf/jemalloc-first.json").exists());
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = test_dir("bad-input");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["run".into(), "--configs".into(), "baseline,nope".into()],
            "unknown configuration 'nope'",
        ),
        (
            vec!["run".into(), "--configs".into(), "memray:native".into()],
            "--with-memray",
        ),
        (
            vec!["report".into(), dir.to_string_lossy().into()],
            "is not a run directory",
        ),
    ];
    for (args, want) in cases {
        let mut cmd = harness();
        cmd.args(&args);
        let out = expect_code(&mut cmd, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{}", show(&cmd, &out));
        assert!(err.contains(want), "{}", show(&cmd, &out));
    }

    // A config file error names file and line.
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[[config]]\nname = \"x\"\nlabel = 3\n").unwrap();
    let mut cmd = harness();
    cmd.args(["run", "--configs", "x", "--config-file"])
        .arg(&cfg);
    let out = expect_code(&mut cmd, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.toml:3:"),
        "{}",
        show(&cmd, &out)
    );

    // Something that answers like PyPy is refused before any venv is made.
    let fake = dir.join("fakepython");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho PyPy; echo /x; echo 3.10.0; echo fake\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let mut cmd = harness();
    cmd.args(["setup", "--configs", "baseline", "--python"])
        .arg(&fake);
    let out = expect_code(&mut cmd, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not CPython"),
        "{}",
        show(&cmd, &out)
    );
}

#[test]
fn memray_bootstrap_leaves_pickle_pure_python_runnable() {
    // `import memray` imports pickle with its C accelerator; pickle_pure_python refuses to run
    // when it finds that, so the bootstrap must undo it.
    let _guard = serial();
    let dir = test_dir("memray");
    let mut cmd = harness();
    cmd.args(["run", "--with-memray", "-b", "pickle_pure_python"])
        .args(["--configs", "baseline,memray:default"])
        .args(["--processes", "1", "--results"])
        .arg(&dir)
        .args(SHORT);
    let out = expect_code(&mut cmd, 0);
    let run = run_dir_of(&out);
    let runs = runs_by_bench(&run.join("pyperf/memray:default.json"));
    assert_eq!(runs["pickle_pure_python"].len(), 1);
    let lines = read_jsonl(&run.join("tracer/memray:default/pickle_pure_python.jsonl"));
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0]["capture_bytes"].as_u64().unwrap() > 0,
        "{}",
        lines[0]
    );
    assert!(
        lines[0]["stats"]["total_num_allocations"].as_u64().unwrap() > 0,
        "{}",
        lines[0]
    );
}

#[test]
fn relative_results_directory() {
    // Workers run inside the run directory: paths handed to them must not be relative.
    let _guard = serial();
    let dir = test_dir("relative");
    let mut cmd = harness();
    cmd.current_dir(&dir)
        .args(["run", "-b", "richards", "--configs", "baseline"])
        .args(["--processes", "1", "--results", "rel"])
        .args(SHORT);
    let out = expect_code(&mut cmd, 0);
    let run = run_dir_of(&out);
    assert!(
        run.is_absolute() && run.starts_with(&dir),
        "{}",
        run.display()
    );
    assert_eq!(
        runs_by_bench(&run.join("pyperf/baseline.json"))["richards"].len(),
        1
    );
}
