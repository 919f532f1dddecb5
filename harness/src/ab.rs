//! `harness ab A B`: two builds of our tracer in one run. A and B are each a git revision of this
//! repository (checked out in its own worktree under `.cache/ab/<commit>` and built there, reused
//! when already built) or the path of a `tracer` binary. Every chosen mode runs as `<mode>@A` and
//! `<mode>@B` (and `<mode>@A2`, A again, with `--aa`) beside the untraced baseline, interleaved
//! process by process with the same loops; the report (`report/ab.md`) compares B with A directly.

use crate::configs::{Config, Tracer};
use crate::tracer::TracerBin;
use anyhow::{bail, Context, Result};
use plots::report::ab::AbPair;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One side, resolved to a tracer binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// As the user named it, with the commit for a revision: `HEAD~1 (3f2a9c1)`.
    pub label: String,
    /// The `tracer` binary (its `libtracer.so` beside it).
    pub tracer: PathBuf,
}

/// What `run.json` `request.ab` records, so that `harness report` writes `ab.md` again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbRequest {
    pub a: Side,
    pub b: Side,
    /// (mode, A's configuration, B's, A again's).
    pub pairs: Vec<(String, String, String, Option<String>)>,
}

impl AbRequest {
    pub fn pairs(&self) -> Vec<AbPair> {
        self.pairs
            .iter()
            .map(|(mode, a, b, aa)| AbPair {
                mode: mode.clone(),
                a: a.clone(),
                b: b.clone(),
                aa: aa.clone(),
            })
            .collect()
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A path to an existing file is a tracer binary; anything else must be a git revision.
pub fn resolve(spec: &str) -> Result<Side> {
    let path = Path::new(spec);
    if path.is_file() {
        let tracer = TracerBin::given(path)?.path;
        return Ok(Side {
            label: spec.to_string(),
            tracer,
        });
    }
    let repo = crate::venv::repo_root();
    let commit = git(
        &repo,
        &["rev-parse", "--verify", &format!("{spec}^{{commit}}")],
    )
    .with_context(|| {
        format!(
            "{spec:?} is neither a tracer binary nor a git revision of {}",
            repo.display()
        )
    })?;
    let short = &commit[..12.min(commit.len())];
    let dir = repo.join(".cache/ab").join(&commit);
    let target = dir.join("target");
    let built = target.join("release/tracer");
    let marker = dir.join(".harness-built");
    if !(built.is_file() && marker.is_file()) {
        if !dir.join("Cargo.toml").is_file() {
            eprintln!(
                "harness: checking out {spec} ({short}) in {}",
                dir.display()
            );
            let _ = git(&repo, &["worktree", "prune"]);
            git(
                &repo,
                &[
                    "worktree",
                    "add",
                    "--detach",
                    "--force",
                    &dir.to_string_lossy(),
                    &commit,
                ],
            )?;
        }
        crate::tracer::build_in(&dir, &target)?;
        std::fs::write(&marker, &commit)
            .with_context(|| format!("cannot write {}", marker.display()))?;
    }
    Ok(Side {
        label: format!("{spec} ({short})"),
        tracer: built,
    })
}

/// Configurations of the A/B run: the baseline, then per mode `<mode>@A`, `<mode>@B` and (with
/// `aa`) `<mode>@A2`, each with its side's tracer binary.
pub fn configs(
    baseline: Config,
    modes: &[Config],
    a: &Side,
    b: &Side,
    aa: bool,
) -> Result<(Vec<Config>, AbRequest)> {
    let mut out = vec![baseline];
    let mut pairs = Vec::new();
    for m in modes {
        if !matches!(m.tracer, Tracer::Ours { .. }) || m.tracer_binary.is_some() {
            bail!(
                "harness ab compares builds of our tracer: configuration {} is not one of its modes",
                m.name
            );
        }
        let side = |suffix: &str, who: &Side| Config {
            name: format!("{}@{suffix}", m.name),
            label: format!("{} @ {suffix}: {}", m.label, who.label),
            tracer_binary: Some(who.tracer.clone()),
            ..m.clone()
        };
        out.push(side("A", a));
        out.push(side("B", b));
        if aa {
            out.push(side("A2", a));
        }
        pairs.push((
            m.name.clone(),
            format!("{}@A", m.name),
            format!("{}@B", m.name),
            aa.then(|| format!("{}@A2", m.name)),
        ));
    }
    Ok((
        out,
        AbRequest {
            a: a.clone(),
            b: b.clone(),
            pairs,
        },
    ))
}

/// Writes `report/ab.md` of a run made by `harness ab`, and prints its headlines; nothing for
/// another run.
pub fn write_report(dir: &Path) -> Result<Option<Vec<String>>> {
    let info: crate::runner::RunInfo = rundir::RunDir::open(dir)?.load_info()?;
    let Some(ab) = info.request.ab else {
        return Ok(None);
    };
    let (path, headlines) = plots::write_ab_report(dir, &ab.a.label, &ab.b.label, &ab.pairs())?;
    eprintln!("harness: A/B report written to {}", path.display());
    Ok(Some(headlines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_runs_on_both_sides_with_its_own_binary() {
        let all = crate::configs::select(
            &[
                "baseline".into(),
                "default".into(),
                "python-allocators".into(),
            ],
            false,
            &[],
        )
        .unwrap();
        let a = Side {
            label: "A".into(),
            tracer: "/a/tracer".into(),
        };
        let b = Side {
            label: "B".into(),
            tracer: "/b/tracer".into(),
        };
        let (configs, req) = configs(all[0].clone(), &all[1..], &a, &b, true).unwrap();
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "baseline",
                "default@A",
                "default@B",
                "default@A2",
                "python-allocators@A",
                "python-allocators@B",
                "python-allocators@A2"
            ]
        );
        assert_eq!(
            configs[1].tracer_binary.as_deref(),
            Some(Path::new("/a/tracer"))
        );
        assert_eq!(
            configs[2].tracer_binary.as_deref(),
            Some(Path::new("/b/tracer"))
        );
        assert_eq!(configs[1].tracer, configs[2].tracer);
        assert_eq!(req.pairs().len(), 2);
        assert_eq!(req.pairs()[1].aa.as_deref(), Some("python-allocators@A2"));
        // Only our tracer's modes can be compared.
        assert!(configs_err(&all[0..1]).contains("not one of its modes"));
    }

    fn configs_err(modes: &[Config]) -> String {
        let s = Side {
            label: "x".into(),
            tracer: "/x".into(),
        };
        configs(modes[0].clone(), modes, &s, &s, false)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_side_that_is_neither_file_nor_revision_is_one_clear_error() {
        let e = resolve("no-such-revision-xyz").unwrap_err();
        assert!(
            format!("{e:#}").contains("neither a tracer binary nor a git revision"),
            "{e:#}"
        );
    }
}
