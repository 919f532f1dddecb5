//! Provides our tracer as the harness sees it: the `tracer` binary (built with cargo or given with
//! `--tracer`), `tracer env` (the worker's environment for one capture) and `tracer stats --json`.
//! The harness never knows where the preload library or the bootstrap live: `tracer env` says.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct TracerBin {
    pub path: PathBuf,
}

/// Builds `tracer-cli` and `tracer-preload` in release mode and returns `target/release/tracer`
/// (honouring `CARGO_TARGET_DIR`).
pub fn build() -> Result<TracerBin> {
    let root = crate::venv::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    build_in(&root, &target)
}

/// Builds the tracer of the workspace at `root` into `target` (a checkout of another revision,
/// for `harness ab`).
pub fn build_in(root: &Path, target: &Path) -> Result<TracerBin> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "harness: cargo build --release -p tracer-cli -p tracer-preload (in {})",
        root.display()
    );
    let status = Command::new(&cargo)
        .env("CARGO_TARGET_DIR", target)
        .args([
            "build",
            "--release",
            "-p",
            "tracer-cli",
            "-p",
            "tracer-preload",
        ])
        .current_dir(root)
        .status()
        .context("cannot run cargo to build the tracer")?;
    if !status.success() {
        bail!("building the tracer failed ({status}); see cargo's output above");
    }
    let path = target.join("release/tracer");
    if !path.is_file() {
        bail!(
            "cargo built the tracer but {} does not exist",
            path.display()
        );
    }
    Ok(TracerBin { path })
}

/// Options of one traced process, as `tracer env` flags.
#[derive(Debug, Clone)]
pub struct TraceOptions<'a> {
    pub capture: &'a Path,
    pub python_allocators: bool,
    pub native: bool,
    pub stack_source: Option<&'a str>,
}

impl TracerBin {
    pub fn given(path: &Path) -> Result<TracerBin> {
        if !path.is_file() {
            bail!("--tracer {}: no such file", path.display());
        }
        // Workers run in the run's work directory: a relative path would name nothing there.
        let path = std::path::absolute(path)
            .with_context(|| format!("cannot make {} absolute", path.display()))?;
        Ok(TracerBin { path })
    }

    /// A digest of this build: the `tracer` binary and the `libtracer.so` beside it (xxHash64 of
    /// both), so that `harness merge` can tell shards of one build from shards of two.
    pub fn build_id(&self) -> Option<String> {
        use std::hash::Hasher;
        let mut h = twox_hash::XxHash64::with_seed(0);
        h.write(&std::fs::read(&self.path).ok()?);
        if let Ok(lib) = std::fs::read(self.path.with_file_name("libtracer.so")) {
            h.write(&lib);
        }
        Some(format!("{:016x}", h.finish()))
    }

    pub fn version(&self) -> Option<String> {
        let out = Command::new(&self.path).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace().last().map(str::to_string)
    }

    /// Runs `tracer env` and returns its `KEY=VALUE` lines. It runs with an empty `PYTHONPATH`
    /// so that what it prints for `PYTHONPATH` is only the tracer's bootstrap directory.
    pub fn env(&self, opts: &TraceOptions) -> Result<Vec<(String, String)>> {
        let mut cmd = Command::new(&self.path);
        cmd.arg("env").arg("-o").arg(opts.capture);
        if opts.python_allocators {
            cmd.arg("--trace-python-allocators");
        }
        if opts.native {
            cmd.arg("--native");
        }
        if let Some(s) = opts.stack_source {
            cmd.args(["--stack-source", s]);
        }
        cmd.env_remove("PYTHONPATH").env_remove("LD_PRELOAD");
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {} env", self.path.display()))?;
        if !out.status.success() {
            bail!(
                "`tracer env` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let vars = parse_env_lines(&String::from_utf8_lossy(&out.stdout))?;
        if !vars.iter().any(|(k, _)| k == "LD_PRELOAD") {
            bail!("`tracer env` printed no LD_PRELOAD line");
        }
        Ok(vars)
    }
}

/// Arguments of `tracer stats --json FILE` (the runner runs it with a timeout, like a worker).
pub fn stats_args(capture: &Path) -> Vec<String> {
    vec![
        "stats".into(),
        "--json".into(),
        capture.to_string_lossy().into_owned(),
    ]
}

/// Parses what `tracer stats --json` printed.
pub fn parse_stats(stdout: &[u8]) -> Result<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_slice(stdout).context("`tracer stats --json` printed invalid JSON")?;
    if !v.is_object() {
        bail!("`tracer stats --json` printed {v}, not an object");
    }
    Ok(v)
}

/// Why a capture's statistics (`tracer stats --json`) make the result invalid, if they do: the
/// capture is truncated, or the process did not call the tracer's hooks (another `malloc` came first
/// in its lookup order, so the capture misses those calls: a cheap run, not a traced one).
pub fn capture_problem(stats: &serde_json::Value) -> Option<String> {
    if stats["truncated"] == serde_json::Value::Bool(true) {
        return Some("capture truncated (no end-of-capture record)".into());
    }
    stats["header"]["hooks_bypassed"]
        .as_str()
        .filter(|reason| !reason.is_empty())
        .map(|reason| format!("hooks bypassed: {reason}"))
}

fn parse_env_lines(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            bail!("`tracer env` printed {line:?}, expected KEY=VALUE");
        };
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_bypassed_captures_are_problems() {
        let stats = |truncated: bool, bypassed: Option<&str>| {
            let mut header = serde_json::json!({"pid": 1});
            if let Some(b) = bypassed {
                header["hooks_bypassed"] = b.into();
            }
            serde_json::json!({"truncated": truncated, "header": header})
        };
        // A capture from a tracer that predates the field, and one whose hooks were in use.
        assert_eq!(capture_problem(&stats(false, None)), None);
        assert_eq!(capture_problem(&stats(false, Some(""))), None);
        assert!(capture_problem(&stats(true, Some("")))
            .unwrap()
            .contains("truncated"));
        assert_eq!(
            capture_problem(&stats(false, Some("malloc resolves to libjemalloc.so.2"))).unwrap(),
            "hooks bypassed: malloc resolves to libjemalloc.so.2"
        );
    }

    #[test]
    fn env_lines() {
        let v = parse_env_lines("LD_PRELOAD=/a/libtracer.so\nTRACER_OUTPUT=/x=y.bin\n\n").unwrap();
        assert_eq!(v[1], ("TRACER_OUTPUT".into(), "/x=y.bin".into()));
        assert!(parse_env_lines("garbage").is_err());
    }
}
