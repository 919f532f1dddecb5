//! Runs a bench program under valgrind's callgrind and reads back the instructions each of its threads
//! executed (`--separate-threads=yes`: one count per thread, the program's own thread first).
//!
//! callgrind's tool binary is started directly, as valgrind's launcher would start it, rather than
//! through the launcher: the launcher is itself a dynamically linked program, so with the preload in
//! its environment it would be traced and, as the tracer does for every program that execs, drop the
//! preload from what it hands on: the measured program would run untraced.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where callgrind's tool is.
#[derive(Debug, Clone)]
pub struct Callgrind {
    /// The tool binary the launcher would exec (`…/callgrind-amd64-linux`).
    tool: PathBuf,
    /// The launcher, which the tool insists on being told about (`VALGRIND_LAUNCHER`).
    launcher: PathBuf,
    /// `valgrind --version`, e.g. `valgrind-3.19.0`.
    pub version: String,
}

impl Callgrind {
    /// Asks `valgrind` (on `PATH`) which tool binary it would launch.
    pub fn find() -> Result<Callgrind, String> {
        let out = Command::new("valgrind")
            .args(["-d", "--tool=callgrind", "--version"])
            .output()
            .map_err(|e| {
                format!("cannot run valgrind ({e}): install it (apt-get install valgrind)")
            })?;
        let log = String::from_utf8_lossy(&out.stderr);
        let tool = log
            .lines()
            .find_map(|l| {
                l.split_once("launcher launching ")
                    .map(|(_, path)| path.trim())
            })
            .ok_or_else(|| format!("`valgrind -d` did not say which tool it launches:\n{log}"))?;
        let launcher = which("valgrind").ok_or("valgrind is not on PATH")?;
        Ok(Callgrind {
            tool: PathBuf::from(tool),
            launcher,
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        })
    }

    /// A command that runs `program` under callgrind, writing its profiles to `profile`-01, -02, …
    /// (one per thread) and counting nothing inside the functions named in `not_counted` (demangled
    /// names, callgrind's `--toggle-collect`); the caller adds the program's arguments and environment.
    pub fn command(&self, profile: &Path, program: &Path, not_counted: &[&str]) -> Command {
        let mut cmd = Command::new(&self.tool);
        cmd.env("VALGRIND_LAUNCHER", &self.launcher)
            .arg("--tool=callgrind")
            .arg("--separate-threads=yes")
            .arg(format!("--callgrind-out-file={}", profile.display()));
        for function in not_counted {
            cmd.arg(format!("--toggle-collect={function}"));
        }
        // Given a toggle, callgrind would otherwise start with counting off.
        cmd.arg("--collect-atstart=yes").arg(program);
        cmd
    }
}

/// One thread's profile.
pub struct ThreadProfile {
    /// The instructions it executed (while counting was on).
    pub instructions: u64,
    /// callgrind's profile file, as written.
    pub text: String,
}

/// Runs `cmd` (from [`Callgrind::command`]) and returns each thread's profile, in thread order, read
/// from the `profile`-NN files, which are then deleted. Panics, with valgrind's log, if the program
/// fails.
pub fn run(cmd: &mut Command, profile: &Path) -> Vec<ThreadProfile> {
    let out = cmd.output().expect("run callgrind");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut threads = Vec::new();
    for thread in 1.. {
        let file = PathBuf::from(format!("{}-{thread:02}", profile.display()));
        let Ok(text) = std::fs::read_to_string(&file) else {
            break;
        };
        let _ = std::fs::remove_file(&file);
        let instructions = text
            .lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `totals:` line in {}", file.display()));
        threads.push(ThreadProfile { instructions, text });
    }
    let _ = std::fs::remove_file(profile);
    assert!(
        !threads.is_empty(),
        "callgrind wrote no {}-01",
        profile.display()
    );
    threads
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
