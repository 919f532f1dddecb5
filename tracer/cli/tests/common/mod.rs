//! Shared helpers for the tracer's integration tests: a directory per test, C programs compiled with
//! `cc`, the `tracer` binary, and its JSON statistics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A fresh directory for one test: `target/test-runs/<name>`.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("test-runs")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn tracer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracer"))
}

/// The `libtracer.so` the tests use (cargo builds it as a dev-dependency).
pub fn library() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tracer"));
    let lib = exe.with_file_name("deps").join("libtracer.so");
    assert!(lib.is_file(), "{} missing", lib.display());
    lib
}

/// Compiles `tests/programs/<name>.c` into `dir` and returns the executable (`-O0 -fno-builtin`:
/// the compiler would otherwise drop allocations whose blocks are never used).
pub fn compile(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(format!("{name}.c"));
    let exe = dir.join(name);
    let out = Command::new("cc")
        .args(["-O0", "-fno-builtin", "-g", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
}

/// Runs a command and panics with its output if it does not exit with `code`.
pub fn expect_code(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `exe` under `tracer run --exec` writing `<dir>/cap.bin`, expects exit `code`, returns the
/// capture's path.
pub fn trace_exec(dir: &Path, exe: &Path, code: i32) -> PathBuf {
    let cap = dir.join("cap.bin");
    expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(exe),
        code,
    );
    cap
}

/// `tracer stats --json FILE`, parsed.
pub fn stats_json(capture: &Path) -> Value {
    let out = expect_code(tracer().arg("stats").arg("--json").arg(capture), 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The count in the histogram bucket that starts at `low`, or 0.
pub fn bucket(stats: &Value, low: u64) -> u64 {
    stats["size_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["low"] == low)
        .map(|b| b["count"].as_u64().unwrap())
        .unwrap_or(0)
}

pub fn kind_count(stats: &Value, kind: &str) -> u64 {
    stats["by_kind"][kind]["count"].as_u64().unwrap_or(0)
}

/// An interpreter the Python tests run on: one of the host's 3.11s, or one of Debian sid's (3.13,
/// 3.14, 3.15) in the root that `scripts/sid-pythons.sh` makes, run through `chroot` with this
/// build (the repository is bind-mounted there at the same path, so every path is the same inside).
#[derive(Debug, Clone)]
pub struct Python {
    /// What `--python` gets (a path or name inside the root for a sid interpreter).
    pub exe: String,
    /// The root it lives in, or None for the host's.
    pub root: Option<PathBuf>,
    pub version: (u32, u32),
}

/// The host's interpreters: pyenv's 3.11 (shared libpython with debug information) and Debian's
/// static, stripped `/usr/bin/python3.11`.
pub const HOST_PYTHONS: [&str; 2] = ["python3", "/usr/bin/python3.11"];
/// The interpreters expected in the sid root.
pub const SID_PYTHONS: [&str; 3] = ["python3.13", "python3.14", "python3.15"];

impl Python {
    fn host(exe: &str) -> Python {
        Python {
            exe: exe.to_string(),
            root: None,
            version: (3, 11),
        }
    }

    /// A name for test directories and messages.
    pub fn label(&self) -> String {
        match self.root {
            Some(_) => format!("sid-{}", self.exe),
            None => self.exe.replace('/', "_"),
        }
    }

    pub fn is_sid(&self) -> bool {
        self.root.is_some()
    }

    /// A command running `program` where this interpreter lives (through `chroot` for a sid one).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.root {
            Some(root) => {
                let mut c = Command::new("chroot");
                c.arg(root).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// The interpreter itself, untraced.
    pub fn python(&self) -> Command {
        self.command(&self.exe)
    }

    /// `tracer` where this interpreter lives.
    pub fn tracer(&self) -> Command {
        self.command(env!("CARGO_BIN_EXE_tracer"))
    }

    /// `tracer run --python PY` followed by `args`.
    pub fn tracer_run(&self) -> Command {
        let mut c = self.tracer();
        c.args(["run", "--python", &self.exe]);
        c
    }

    /// `tracer stats --json FILE` read where the capture was made (native stacks are symbolized from
    /// the objects on that side of the chroot), parsed.
    pub fn stats_json(&self, capture: &Path) -> Value {
        let out = expect_code(self.tracer().arg("stats").arg("--json").arg(capture), 0);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl std::fmt::Display for Python {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}.{})",
            self.label(),
            self.version.0,
            self.version.1
        )
    }
}

/// Every interpreter the Python tests run on: the host's, then the sid root's when it is there.
pub fn pythons() -> Vec<Python> {
    let mut all: Vec<Python> = HOST_PYTHONS.iter().map(|p| Python::host(p)).collect();
    all.extend(sid_pythons());
    all
}

/// The sid root's interpreters, or none, said loudly (on the terminal, past the test harness's
/// capture) when the root is missing; under CI (`CI=true`) a missing root fails the test instead.
pub fn sid_pythons() -> Vec<Python> {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(find_sid_root);
    match found {
        Ok(root) => SID_PYTHONS
            .iter()
            .map(|exe| Python {
                exe: exe.to_string(),
                root: Some(root.clone()),
                version: (3, exe["python3.".len()..].parse().unwrap()),
            })
            .collect(),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI needs the Debian sid Pythons: {why}")
        }
        Err(why) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPING Python 3.13/3.14/3.15 in {}: {why}.\n!!! Run scripts/sid-pythons.sh \
                 (as root) to make them, then run the tests again.\n",
                env!("CARGO_CRATE_NAME")
            );
            Vec::new()
        }
    }
}

/// Where `scripts/sid-pythons.sh` puts the root: `$TRACER_SID_ROOT`, else `<repository>/.cache/sid-root`.
fn find_sid_root() -> Result<PathBuf, String> {
    let root = match std::env::var_os("TRACER_SID_ROOT") {
        Some(r) => PathBuf::from(r),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/sid-root"),
    };
    let root = root
        .canonicalize()
        .map_err(|_| format!("no sid root at {}", root.display()))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("chroot needs root".into());
    }
    for exe in SID_PYTHONS {
        if !root.join("usr/bin").join(exe).is_file() {
            return Err(format!("{} has no /usr/bin/{exe}", root.display()));
        }
    }
    let tracer = env!("CARGO_BIN_EXE_tracer").trim_start_matches('/');
    if !root.join(tracer).is_file() {
        return Err(format!(
            "this build is not visible in {} (the repository is not bind-mounted there)",
            root.display()
        ));
    }
    if !root.join("proc/self").exists() {
        return Err(format!("{}/proc is not mounted", root.display()));
    }
    Ok(root)
}

/// Checks the statistics of `programs/known_sequence.c`: every call, size, peak and leak.
pub fn assert_known_sequence(s: &Value) {
    assert_eq!(s["truncated"], false);
    assert_eq!(kind_count(s, "malloc"), 1000);
    assert_eq!(s["by_kind"]["malloc"]["bytes"], 123_000);
    assert_eq!(kind_count(s, "calloc"), 1);
    assert_eq!(s["by_kind"]["calloc"]["bytes"], 1000);
    assert_eq!(kind_count(s, "realloc"), 4);
    assert_eq!(s["by_kind"]["realloc"]["bytes"], 16 + 256 + 4096 + 65536);
    assert_eq!(kind_count(s, "posix_memalign"), 1);
    assert_eq!(kind_count(s, "aligned_alloc"), 1);
    assert_eq!(kind_count(s, "free"), 997);
    assert_eq!(s["allocations"], 1007);
    // 997 frees plus the 3 reallocs that gave a block back.
    assert_eq!(s["frees"], 1000);
    assert_eq!(
        s["bytes_allocated"],
        123_000 + 1000 + 16 + 256 + 4096 + 65536 + 200 + 8192
    );
    // Everything is live just after aligned_alloc.
    assert_eq!(s["peak_bytes"], 123_000 + 1000 + 65536 + 200 + 8192);
    assert_eq!(s["leaked_blocks"], 7);
    assert_eq!(s["leaked_bytes"], 5 * 123 + 200 + 8192);
    assert_eq!(s["unmatched_frees"], 0);
}
