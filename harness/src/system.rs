//! Describes the machine and software of a run (`run.json` "system", `system.txt`): CPU, cores,
//! kernel, the Python build, package and tracer versions, `python -m pyperf system show`, and the
//! start-up cost of each configuration's bootstrap (`python -c pass` with and without it).

use crate::configs::Config;
use crate::environ::{self, EnvContext};
use crate::worker::{self, Outcome, WorkerSpec};
use anyhow::{bail, Result};
use rundir::SystemInfo;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn describe(
    python: &crate::venv::PythonInfo,
    tracer_version: Option<String>,
    memray: Option<&str>,
) -> SystemInfo {
    SystemInfo {
        cpu: Some(cpu_model()),
        cores: Some(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1) as u64,
        ),
        kernel: Some(format!(
            "{} {}",
            read_trim("/proc/sys/kernel/ostype"),
            read_trim("/proc/sys/kernel/osrelease")
        )),
        python: Some(python.version_string()),
        python_build: Some(python.build.clone()),
        tracer_version,
        other: BTreeMap::from([
            ("python_executable".into(), json!(python.executable)),
            ("pyperf".into(), json!(crate::venv::PYPERF)),
            ("pyperformance".into(), json!(crate::venv::PYPERFORMANCE)),
            ("memray".into(), json!(memray)),
            ("harness_version".into(), json!(env!("CARGO_PKG_VERSION"))),
        ]),
    }
}

/// Wall time of one `python -c pass` in the given environment; `None` if it failed or did not
/// finish within `timeout`.
fn startup_once(
    python: &Path,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    timeout: Duration,
) -> Option<Duration> {
    let spec = WorkerSpec {
        python: python.to_path_buf(),
        args: vec!["-c".into(), "pass".into()],
        env: env.clone(),
        cwd: cwd.to_path_buf(),
        timeout,
        stdout: None,
    };
    let t = Instant::now();
    match worker::run(&spec, &AtomicBool::new(false)).ok()? {
        Outcome::Exited { status, .. } if status.success() => Some(t.elapsed()),
        _ => None,
    }
}

/// (configuration, its environment or why it has none, the capture its probe may write)
type Probe = (String, Result<BTreeMap<String, String>, String>, PathBuf);

/// Measures each configuration's start-up cost against the plain interpreter: `python -c pass`,
/// one warm-up each, then `ROUNDS` rounds (median reported) interleaving the plain interpreter and every
/// configuration (so drift falls on all alike). Captures written by the probes are removed.
pub fn bootstrap_costs(
    python: &Path,
    ctx: &EnvContext,
    configs: &[Config],
    timeout: Duration,
) -> String {
    const ROUNDS: u32 = 20;
    let mut envs: Vec<Probe> = vec![(
        "(plain interpreter)".into(),
        Ok(ctx.base.clone()),
        PathBuf::new(),
    )];
    for c in configs {
        let capture = ctx.work.join(format!(
            "startup-probe-{}.bin",
            c.name.replace(['/', ':', '+'], "_")
        ));
        let env = environ::build(ctx, c, &capture)
            .map(|pe| pe.env)
            .map_err(|e| format!("{e:#}"));
        envs.push((c.name.clone(), env, capture));
    }
    // Per configuration the times measured so far; `None` once a probe failed or hung.
    let mut times: Vec<Option<Vec<f64>>> = vec![Some(Vec::new()); envs.len()];
    for round in 0..=ROUNDS {
        for (i, (_, env, capture)) in envs.iter().enumerate() {
            let Ok(env) = env else { continue };
            let Some(list) = &mut times[i] else {
                continue; // failed or hung once: not probed again
            };
            let t = startup_once(python, env, ctx.work, timeout);
            let _ = remove_capture(capture);
            match t {
                None => times[i] = None,
                Some(_) if round == 0 => {} // warm-up
                Some(t) => list.push(t.as_secs_f64() * 1e3),
            }
        }
    }
    // The median: a machine busy with other work makes a few runs very slow.
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let plain = times[0].as_ref().map(median);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Start-up cost of each configuration: median wall time of `python -c pass` over {ROUNDS} interleaved runs.\n"
    );
    let _ = writeln!(out, "| configuration | start-up | added |\n|---|---:|---:|");
    for (i, (name, env, _)) in envs.iter().enumerate() {
        let line = match (env, times[i].as_ref().map(median), plain) {
            (Err(e), _, _) => format!("| {name} | not measured: {e} | |"),
            (Ok(_), Some(t), Some(p)) => format!("| {name} | {t:.1} ms | {:+.1} ms |", t - p),
            _ => format!("| {name} | failed or took over {} s | |", timeout.as_secs()),
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Removes a capture and any per-process siblings the tracer wrote next to it (`<capture>.<pid>`
/// after a fork, for instance).
pub fn remove_capture(capture: &Path) -> Result<()> {
    let (Some(dir), Some(stem)) = (capture.parent(), capture.file_name()) else {
        return Ok(());
    };
    let stem = stem.to_string_lossy().into_owned();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The text of `system.txt`.
pub fn system_txt(venv_python: &Path, info: &SystemInfo, costs: &str) -> String {
    let show = Command::new(venv_python)
        .args(["-m", "pyperf", "system", "show"])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_else(|e| format!("cannot run pyperf system show: {e}"));
    let mut out = String::new();
    let _ = writeln!(out, "# Machine and software\n");
    if let Some(obj) = serde_json::to_value(info)
        .ok()
        .as_ref()
        .and_then(|v| v.as_object())
    {
        for (k, v) in obj {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    let _ = writeln!(out, "\n# python -m pyperf system show\n\n{show}");
    let _ = writeln!(out, "# Bootstrap cost\n\n{costs}");
    out
}

/// Free bytes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Free space below which a run does not start, nor go on to its next benchmark (captures can be
/// large; a stopped run continues with `--resume` once space is freed).
pub const MIN_FREE_BYTES: u64 = 1 << 30;

/// Fails with one line when the file system holding `dir` has less than [`MIN_FREE_BYTES`] free.
pub fn ensure_free_space(dir: &Path) -> Result<()> {
    if let Some(free) = free_bytes(dir) {
        if free < MIN_FREE_BYTES {
            bail!(
                "no disk space: {} MiB free in {}, a run needs at least {} MiB",
                free >> 20,
                dir.display(),
                MIN_FREE_BYTES >> 20
            );
        }
    }
    Ok(())
}
