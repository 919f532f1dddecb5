//! Spawns one pyperf worker process (`run_benchmark.py ... --worker --output FILE`) with an exact
//! environment, waits for it with a timeout, and keeps the tail of its stderr. The worker runs in
//! its own process group (so Ctrl-C reaches only the harness, which then stops it) and dies with
//! the harness (`PR_SET_PDEATHSIG`), so a killed run leaves no stray benchmark behind.

use crate::suite::Benchmark;
use anyhow::{Context, Result};
use rustix::process::{Pid, Signal};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Everything needed to start one worker.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub python: PathBuf,
    pub args: Vec<String>,
    /// The complete environment: nothing is inherited from the harness.
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub timeout: Duration,
    /// Where stdout goes (discarded when `None`).
    pub stdout: Option<PathBuf>,
}

#[derive(Debug)]
pub enum Outcome {
    Exited {
        status: ExitStatus,
        stderr_tail: String,
    },
    TimedOut {
        stderr_tail: String,
    },
    /// The harness was interrupted while the worker ran; the worker was killed.
    Interrupted,
}

const TAIL_LINES: usize = 20;

/// What a pyperf worker is asked to do.
#[derive(Debug, Clone)]
pub enum PyperfJob {
    /// `--calibrate-loops`: find the loops that make one value last at least `min_time` seconds.
    CalibrateLoops { min_time: f64, warmups: u32 },
    /// `values` values of `loops` loops each, after `warmups` warmups.
    Measure {
        loops: u64,
        values: u32,
        warmups: u32,
    },
}

/// The script that runs a benchmark's `run_benchmark.py` with pyperf's clock replaced by the
/// process's CPU time (`--timer cpu`): pyperf's runner reads `time.perf_counter` at every timing,
/// and the benchmarks that time themselves call `pyperf.perf_counter`, so both are pointed at
/// `time.process_time`; the benchmark's own `time` module is left alone.
pub const CPU_TIMER_SHIM: &str = r#"# Written by the harness (--timer cpu): pyperf's clock is the process's CPU time.
import os, runpy, sys, time
import pyperf, pyperf._runner

class _CpuClock:
    perf_counter = staticmethod(time.process_time)
    def __getattr__(self, name):
        return getattr(time, name)

pyperf._runner.time = _CpuClock()
pyperf.perf_counter = time.process_time
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(script))
runpy.run_path(script, run_name="__main__")
"#;

/// Where [`CPU_TIMER_SHIM`] is written in a run's work directory.
pub fn cpu_timer_shim(work: &Path) -> PathBuf {
    work.join("cpu_timer.py")
}

/// Why `--timer cpu` cannot measure a benchmark: its script waits (sleeps, sockets, child
/// processes, whose time is not the worker's CPU time) or times itself with `time.perf_counter`.
pub fn cpu_timer_refusal(bench: &Benchmark) -> Option<String> {
    let source = std::fs::read_to_string(&bench.runscript).ok()?;
    const WAITS: [(&str, &str); 6] = [
        ("bench_command", "it times a child command"),
        ("subprocess", "it runs child processes"),
        ("sleep(", "it sleeps"),
        ("socket", "it waits on sockets"),
        ("start_server", "it waits on a server"),
        (
            "time.perf_counter",
            "it times itself with time.perf_counter",
        ),
    ];
    WAITS
        .iter()
        .find(|(needle, _)| source.contains(needle))
        .map(|(_, why)| format!("not measurable with --timer cpu: {why}"))
}

/// The arguments (after the interpreter) of one pyperf worker of `bench`:
/// `-u run_benchmark.py <extra_opts> --worker --worker-task=K <job> --output FILE` (with `--timer
/// cpu`, the script is run through the CPU-clock shim in `work`).
pub fn pyperf_args(
    bench: &Benchmark,
    task: u32,
    job: &PyperfJob,
    output: &Path,
    timer: rundir::Timer,
    work: &Path,
) -> Vec<String> {
    let mut args = vec!["-u".to_string()];
    if timer == rundir::Timer::Cpu {
        args.push(cpu_timer_shim(work).to_string_lossy().into_owned());
    }
    args.push(bench.runscript.to_string_lossy().into_owned());
    args.extend(bench.extra_opts.iter().cloned());
    args.extend(["--worker".to_string(), format!("--worker-task={task}")]);
    match job {
        PyperfJob::CalibrateLoops { min_time, warmups } => args.extend([
            "--calibrate-loops".to_string(),
            format!("--min-time={min_time}"),
            format!("--warmups={warmups}"),
        ]),
        PyperfJob::Measure {
            loops,
            values,
            warmups,
        } => args.extend([
            format!("--loops={loops}"),
            format!("--values={values}"),
            format!("--warmups={warmups}"),
        ]),
    }
    args.extend([
        "--output".to_string(),
        output.to_string_lossy().into_owned(),
    ]);
    args
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn run(spec: &WorkerSpec, interrupted: &AtomicBool) -> Result<Outcome> {
    let mut cmd = Command::new(&spec.python);
    cmd.args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(match &spec.stdout {
            Some(p) => Stdio::from(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            ),
            None => Stdio::null(),
        })
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the closure runs between fork and exec, where only async-signal-safe calls are
    // allowed: it makes one prctl(PR_SET_PDEATHSIG) system call, which allocates nothing and
    // touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", spec.python.display()))?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // A thread drains stderr so a chatty worker never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let outcome = loop {
        if let Some(status) = child.try_wait().context("waiting for a worker")? {
            let text = reader.join().unwrap_or_default();
            break Outcome::Exited {
                status,
                stderr_tail: tail(&text, TAIL_LINES),
            };
        }
        if interrupted.load(Ordering::Relaxed) {
            kill_group(&mut child);
            let _ = reader.join();
            break Outcome::Interrupted;
        }
        if start.elapsed() > spec.timeout {
            kill_group(&mut child);
            let text = reader.join().unwrap_or_default();
            break Outcome::TimedOut {
                stderr_tail: tail(&text, TAIL_LINES),
            };
        }
        // Poll finely at first, so short processes (the start-up probes) are timed to the ms.
        let nap = if start.elapsed() < Duration::from_millis(300) {
            1
        } else {
            10
        };
        std::thread::sleep(Duration::from_millis(nap));
    };
    Ok(outcome)
}

/// Kills the worker and anything it started (python_startup and concurrent_imap start children).
fn kill_group(child: &mut std::process::Child) {
    // The worker leads the process group made for it (`process_group(0)`).
    let _ = rustix::process::kill_process_group(Pid::from_child(child), Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_kills_and_reports() {
        let spec = WorkerSpec {
            python: "/bin/sh".into(),
            args: vec!["-c".into(), "echo started >&2; sleep 30".into()],
            env: BTreeMap::new(),
            cwd: std::env::temp_dir(),
            timeout: Duration::from_millis(300),
            stdout: None,
        };
        let t = Instant::now();
        match run(&spec, &AtomicBool::new(false)).unwrap() {
            Outcome::TimedOut { stderr_tail } => assert_eq!(stderr_tail, "started"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn exit_status_and_tail() {
        let spec = WorkerSpec {
            python: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "for i in $(seq 1 30); do echo line$i >&2; done; exit 3".into(),
            ],
            env: BTreeMap::new(),
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(10),
            stdout: None,
        };
        match run(&spec, &AtomicBool::new(false)).unwrap() {
            Outcome::Exited {
                status,
                stderr_tail,
                ..
            } => {
                assert_eq!(status.code(), Some(3));
                assert!(stderr_tail.starts_with("line11\n") && stderr_tail.ends_with("line30"));
            }
            other => panic!("{other:?}"),
        }
    }
}
