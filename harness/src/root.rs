//! Runs the harness inside another root file system (`--root DIR`), for Pythons that only run there:
//! Debian sid's 3.13, 3.14 and 3.15 in the root that `scripts/sid-pythons.sh` makes. The harness
//! builds what it needs on the host (the tracer), then runs itself again with `chroot DIR`, with
//! the same arguments; the repository is mounted at the same path inside (the script does that), so
//! the binaries, the venvs under `.cache/` and the run directories under `results/` are the same
//! files on both sides.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the harness that runs inside the root, to the root as seen from the host.
pub const ENTERED: &str = "HARNESS_ROOT";

/// The root this process runs in (as the host names it), when it was started by [`reenter`].
pub fn entered() -> Option<PathBuf> {
    std::env::var_os(ENTERED).map(PathBuf::from)
}

/// `path` (absolute, on the host) as it is found from the host inside `root`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Checks that `root` can run this harness: a directory with the repository mounted at the same
/// path, and this binary in the repository.
fn check(root: &Path, exe: &Path) -> Result<()> {
    if !root.join("bin/sh").exists() && !root.join("usr/bin/sh").exists() {
        bail!(
            "--root {}: not a root file system (no /bin/sh in it)",
            root.display()
        );
    }
    let repo = crate::venv::repo_root();
    if !inside(root, &repo).join("Cargo.toml").is_file() {
        bail!(
            "--root {}: the repository {} is not mounted inside it; run \
             `TRACER_SID_ROOT={} scripts/sid-pythons.sh` first",
            root.display(),
            repo.display(),
            root.display()
        );
    }
    if !exe.starts_with(&repo) {
        bail!(
            "--root: this harness ({}) is not in the repository {}, so it cannot be run inside the \
             root; run the repository's build (cargo run --release -p harness -- ...)",
            exe.display(),
            repo.display()
        );
    }
    Ok(())
}

/// Runs this harness again inside `root` with the same arguments, plus `extra` (e.g. the tracer
/// the host built), and returns its exit code. Ctrl-C reaches the inner harness (it is in the same
/// process group), which stops resumably; this one waits for it.
pub fn reenter(root: &Path, extra: &[OsString]) -> Result<i32> {
    let root = std::path::absolute(root)
        .with_context(|| format!("cannot make {} absolute", root.display()))?;
    let exe = std::env::current_exe().context("cannot find this harness binary")?;
    check(&root, &exe)?;
    // The inner harness handles Ctrl-C; this one must outlive it to pass on its exit code.
    ctrlc::set_handler(|| {}).context("cannot install the Ctrl-C handler")?;
    let args: Vec<OsString> = std::env::args_os()
        .skip(1)
        .chain(extra.iter().cloned())
        .collect();
    // chroot(1) starts in the root's `/`: go back to this directory (so relative paths in the
    // arguments mean the same), or to the repository when this directory is not seen inside.
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let cwd = if inside(&root, &cwd).is_dir() {
        cwd
    } else {
        crate::venv::repo_root()
    };
    eprintln!("harness: running inside {} (chroot)", root.display());
    let status = Command::new("chroot")
        .arg(&root)
        .args(["/bin/sh", "-c", "cd \"$0\" && exec \"$@\""])
        .arg(&cwd)
        .arg(&exe)
        .args(&args)
        .env(ENTERED, &root)
        .status()
        .context("cannot run chroot (it needs root privileges)")?;
    Ok(status.code().unwrap_or(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_without_the_repository_is_refused_with_the_way_out() {
        let dir = std::env::temp_dir().join(format!("harness-root-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/sh"), "").unwrap();
        let exe = crate::venv::repo_root().join("target/release/harness");
        let e = check(&dir, &exe).unwrap_err().to_string();
        assert!(e.contains("not mounted inside it"), "{e}");
        assert!(e.contains("scripts/sid-pythons.sh"), "{e}");
        let e = check(&dir.join("nothing"), &exe).unwrap_err().to_string();
        assert!(e.contains("not a root file system"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
