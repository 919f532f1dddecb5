//! Provides the Python side of `harness setup`: checks the interpreter (CPython ≥ 3.9), makes and
//! reuses the venv `<repo>/.cache/venv-<version>` with pinned pyperf and pyperformance (and Memray
//! on request), and installs the selected benchmarks' requirements into it.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PYPERF: &str = "2.10.0";
pub const PYPERFORMANCE: &str = "1.14.0";
pub const MEMRAY: &str = "1.20.0";

/// The repository root (the workspace), found at build time.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .to_path_buf()
}

/// What we know of an interpreter after asking it.
#[derive(Debug, Clone)]
pub struct PythonInfo {
    pub executable: PathBuf,
    pub version: (u32, u32, u32),
    /// `sys.version` (compiler and build date).
    pub build: String,
}

impl PythonInfo {
    pub fn version_string(&self) -> String {
        format!("{}.{}.{}", self.version.0, self.version.1, self.version.2)
    }
}

const PROBE: &str = "import sys, platform\nprint(platform.python_implementation())\nprint(sys.executable)\nprint('%d.%d.%d' % sys.version_info[:3])\nprint(sys.version.replace('\\n', ' '))";

/// Asks `python` what it is; refuses anything but CPython ≥ 3.9.
pub fn probe_python(python: &Path) -> Result<PythonInfo> {
    let out = Command::new(python)
        .args(["-c", PROBE])
        .output()
        .with_context(|| format!("cannot run Python interpreter {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} is not a working Python interpreter: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 4 {
        bail!(
            "{} did not answer like a Python interpreter",
            python.display()
        );
    }
    if lines[0] != "CPython" {
        bail!(
            "{} is {}, not CPython (the tracer and the harness need CPython >= 3.9)",
            python.display(),
            lines[0]
        );
    }
    let parts: Vec<u32> = lines[2].split('.').filter_map(|p| p.parse().ok()).collect();
    let version = match parts[..] {
        [a, b, c] => (a, b, c),
        _ => bail!("cannot parse the Python version {:?}", lines[2]),
    };
    if version < (3, 9, 0) {
        bail!(
            "{} is CPython {}, but the harness needs CPython >= 3.9",
            python.display(),
            lines[2]
        );
    }
    Ok(PythonInfo {
        executable: PathBuf::from(lines[1]),
        version,
        build: lines[3].to_string(),
    })
}

/// A venv made by `harness setup`.
#[derive(Debug, Clone)]
pub struct Venv {
    pub dir: PathBuf,
    pub python: PathBuf,
    pub site_packages: PathBuf,
    pub has_memray: bool,
}

impl Venv {
    pub fn path_for(base: &PythonInfo) -> PathBuf {
        repo_root()
            .join(".cache")
            .join(format!("venv-{}", base.version_string()))
    }

    /// Makes the venv if it is missing and installs the pinned packages if they are missing or
    /// differ. Progress goes to stderr, one line per step.
    pub fn ensure(base: &PythonInfo, with_memray: bool) -> Result<Venv> {
        let dir = Self::path_for(base);
        let python = dir.join("bin/python");
        if !python.is_file() {
            eprintln!("harness: creating venv {}", dir.display());
            run_checked(
                Command::new(&base.executable)
                    .args(["-m", "venv"])
                    .arg(&dir),
                "python -m venv",
            )?;
        }
        let installed = installed_versions(&python)?;
        let mut wanted = vec![("pyperf", PYPERF), ("pyperformance", PYPERFORMANCE)];
        if with_memray {
            wanted.push(("memray", MEMRAY));
        }
        let missing: Vec<String> = wanted
            .iter()
            .filter(|(name, v)| installed.iter().all(|(n, iv)| n != name || iv != v))
            .map(|(name, v)| format!("{name}=={v}"))
            .collect();
        if !missing.is_empty() {
            eprintln!("harness: pip install {}", missing.join(" "));
            run_checked(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(&missing),
                "pip install of the pinned packages",
            )?;
        }
        let site_packages = site_packages(&python)?;
        let has_memray = with_memray || installed.iter().any(|(n, v)| n == "memray" && v == MEMRAY);
        Ok(Venv {
            dir,
            python,
            site_packages,
            has_memray,
        })
    }

    fn installed_marker(&self) -> PathBuf {
        self.dir.join("harness-requirements.txt")
    }

    /// Installs each benchmark's `requirements.txt` (one pip call per file, as pyperformance does,
    /// so one benchmark's pins cannot break another's). Files already installed into this venv are
    /// remembered in a marker file. Returns the benchmarks whose install failed, with pip's reason.
    pub fn install_requirements(
        &self,
        benchmarks: &[crate::suite::Benchmark],
    ) -> Result<Vec<(String, String)>> {
        let marker = self.installed_marker();
        let mut done: BTreeSet<String> = std::fs::read_to_string(&marker)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let mut failed = Vec::new();
        for b in benchmarks {
            let Some(req) = &b.requirements else { continue };
            let text = std::fs::read_to_string(req)
                .with_context(|| format!("cannot read {}", req.display()))?;
            // Key by content, so a changed pin installs again.
            let key = format!(
                "{}:{}",
                b.name,
                text.split_whitespace().collect::<Vec<_>>().join(",")
            );
            if done.contains(&key) {
                continue;
            }
            eprintln!("harness: pip install -r {}", req.display());
            let out = Command::new(&self.python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(req)
                .output()
                .context("cannot run pip")?;
            if out.status.success() {
                done.insert(key);
                let body: Vec<&str> = done.iter().map(String::as_str).collect();
                std::fs::write(&marker, body.join("\n") + "\n")
                    .with_context(|| format!("cannot write {}", marker.display()))?;
            } else {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                failed.push((
                    b.name.clone(),
                    format!("pip install -r requirements.txt failed: {last}"),
                ));
            }
        }
        Ok(failed)
    }
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "{what} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

/// (name, version) of what matters to us in the venv, asked through importlib.metadata.
fn installed_versions(python: &Path) -> Result<Vec<(String, String)>> {
    let code = "import importlib.metadata as m\nfor n in ('pyperf', 'pyperformance', 'memray'):\n    try:\n        print(n, m.version(n))\n    except m.PackageNotFoundError:\n        pass";
    let out = Command::new(python)
        .args(["-c", code])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the venv's Python {} does not work: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect())
}

fn site_packages(python: &Path) -> Result<PathBuf> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .context("cannot ask the venv for its site-packages")?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
