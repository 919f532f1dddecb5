//! `--timer cpu`: the shim really replaces pyperf's clock by the process's CPU time (a benchmark
//! that sleeps reads about 0 s through it and its sleep without it), the run records the timer, and
//! benchmarks whose time is spent waiting are refused (recorded as failed, the run goes on).

mod common;

use common::*;
use std::process::Command;

const SLEEPY: &str = "import pyperf, time\nrunner = pyperf.Runner()\nrunner.bench_func('sleepy', time.sleep, 0.05)\n";

/// The one value a pyperf worker of `sleepy.py` measured, with or without the shim.
fn sleepy_value(shim: bool) -> f64 {
    let dir = test_dir(if shim { "timer-cpu" } else { "timer-wall" });
    std::fs::write(dir.join("sleepy.py"), SLEEPY).unwrap();
    std::fs::write(dir.join("cpu_timer.py"), harness::worker::CPU_TIMER_SHIM).unwrap();
    let mut cmd = Command::new(venv_python());
    cmd.arg("-u");
    if shim {
        cmd.arg(dir.join("cpu_timer.py"));
    }
    cmd.arg(dir.join("sleepy.py"))
        .args([
            "--worker",
            "--loops=1",
            "--values=1",
            "--warmups=0",
            "--output",
        ])
        .arg(dir.join("out.json"));
    expect_code(&mut cmd, 0);
    let out = read_json(&dir.join("out.json"));
    out["benchmarks"][0]["runs"][0]["values"][0]
        .as_f64()
        .unwrap()
}

#[test]
fn the_cpu_clock_does_not_count_waiting() {
    let _guard = serial();
    let wall = sleepy_value(false);
    let cpu = sleepy_value(true);
    assert!(wall >= 0.05, "wall {wall}");
    assert!(cpu < 0.01, "cpu {cpu} (wall {wall})");
}

#[test]
fn a_cpu_timed_run_records_its_timer_and_refuses_what_waits() {
    let _guard = serial();
    let dir = test_dir("timer-run");
    let mut cmd = harness();
    cmd.args([
        "run",
        "-b",
        "nbody,python_startup",
        "--configs",
        "baseline,baseline-aa",
    ])
    .args(["--timer", "cpu", "--processes", "1", "--results"])
    .arg(&dir)
    .args(SHORT);
    // python_startup times a child command: refused, so the run ends with a failure recorded.
    let out = expect_code(&mut cmd, 1);
    let run = run_dir_of(&out);
    let info = read_json(&run.join("run.json"));
    assert_eq!(info["settings"]["timer"], "cpu");
    let failures = read_jsonl(&run.join("failures.jsonl"));
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().all(|f| f["benchmark"] == "python_startup"
        && f["reason"]
            .as_str()
            .unwrap()
            .contains("not measurable with --timer cpu")));
    let suite = read_json(&run.join("pyperf/baseline.json"));
    let benches = suite["benchmarks"].as_array().unwrap();
    assert_eq!(benches.len(), 1);
    assert_eq!(benches[0]["metadata"]["name"], "nbody");
}
