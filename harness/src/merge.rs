//! `harness merge DIR... -o OUT`: puts the run directories of `harness run --shard K/N` back into one
//! run directory, the same as an unsharded run's: `run.json` (benchmarks in the whole run's order),
//! `pyperf/<config>.json`, `tracer/`, `failures.jsonl`, `progress.jsonl`, `system.txt` and
//! `captures/`. Shards that do not belong together are refused, with what differs.

use crate::runner::RunInfo;
use anyhow::{bail, Context, Result};
use rundir::RunDir;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One shard as read from its directory.
struct Part {
    dir: PathBuf,
    info: RunInfo,
}

/// `what` must be the same in every shard: names the first shard that differs.
fn same<T: PartialEq + std::fmt::Debug>(
    parts: &[Part],
    what: &str,
    get: impl Fn(&RunInfo) -> T,
) -> Result<()> {
    let first = get(&parts[0].info);
    for p in &parts[1..] {
        let v = get(&p.info);
        if v != first {
            bail!(
                "{} and {} are not shards of one run: their {what} differ ({first:?} vs. {v:?})",
                parts[0].dir.display(),
                p.dir.display()
            );
        }
    }
    Ok(())
}

/// Checks that `dirs` are all the shards of one finished run; returns them in shard order.
fn read_parts(dirs: &[PathBuf]) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for d in dirs {
        let info: RunInfo = RunDir::open(d)?.load_info()?;
        if info.request.shard.is_none() {
            bail!(
                "{} is not a shard (it was not run with --shard K/N)",
                d.display()
            );
        }
        if info.finished.is_none() {
            bail!(
                "{} is an unfinished shard; finish it first: harness run --resume {}",
                d.display(),
                d.display()
            );
        }
        parts.push(Part {
            dir: d.clone(),
            info,
        });
    }
    let shard = |i: &RunInfo| i.request.shard.clone().expect("checked above");
    same(&parts, "shard counts", |i| shard(i).spec.count)?;
    same(&parts, "benchmark selections", |i| shard(i).all_entries)?;
    same(&parts, "suites", |i| i.suite.clone())?;
    same(&parts, "settings", |i| i.settings.clone())?;
    same(&parts, "configurations", |i| i.configs.clone())?;
    same(&parts, "baselines", |i| i.baseline.clone())?;
    same(&parts, "Python versions", |i| i.system.python.clone())?;
    same(&parts, "Python builds", |i| i.system.python_build.clone())?;
    same(&parts, "tracer versions", |i| {
        i.system.tracer_version.clone()
    })?;
    same(&parts, "tracer builds", |i| {
        i.system.other.get("tracer_build").cloned()
    })?;
    for key in ["pyperf", "pyperformance", "memray"] {
        same(&parts, &format!("{key} versions"), |i| {
            i.system.other.get(key).cloned()
        })?;
    }
    parts.sort_by_key(|p| shard(&p.info).spec.index);
    let count = shard(&parts[0].info).spec.count;
    for w in parts.windows(2) {
        if shard(&w[0].info).spec.index == shard(&w[1].info).spec.index {
            bail!(
                "shard {} is given twice: {} and {}",
                shard(&w[0].info).spec,
                w[0].dir.display(),
                w[1].dir.display()
            );
        }
    }
    let have: BTreeSet<u32> = parts.iter().map(|p| shard(&p.info).spec.index).collect();
    let missing: Vec<String> = (1..=count)
        .filter(|k| !have.contains(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!("shards missing: {} (of {count})", missing.join(", "));
    }
    // Every manifest entry in exactly one shard.
    let all = shard(&parts[0].info).all_entries;
    let mut owner: std::collections::BTreeMap<&str, &Path> = Default::default();
    for p in &parts {
        for e in &p.info.request.manifest_benchmarks {
            if let Some(other) = owner.insert(e, &p.dir) {
                bail!(
                    "benchmark {e} is in two shards: {} and {}",
                    other.display(),
                    p.dir.display()
                );
            }
        }
    }
    let absent: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|e| !owner.contains_key(e))
        .collect();
    if !absent.is_empty() {
        bail!("no shard ran: {}", absent.join(", "));
    }
    Ok(parts)
}

/// Appends `from` (if it exists) to `to`.
fn append(from: &Path, to: &Path) -> Result<()> {
    let Ok(bytes) = std::fs::read(from) else {
        return Ok(());
    };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)
        .with_context(|| format!("cannot write {}", to.display()))?;
    f.write_all(&bytes)?;
    if bytes.last().is_some_and(|b| *b != b'\n') {
        f.write_all(b"\n")?;
    }
    Ok(())
}

/// Copies the directory tree `from` into `to` (hard links where the file system allows).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if target.exists() {
            append(&entry.path(), &target)?;
        } else if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Merges the shards in `dirs` into the new run directory `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<()> {
    if out.exists() {
        bail!(
            "{} exists; harness merge writes a new directory",
            out.display()
        );
    }
    let parts = read_parts(dirs)?;
    let all = parts[0]
        .info
        .request
        .shard
        .clone()
        .expect("checked")
        .all_entries;
    let position = |entry: &str| all.iter().position(|e| e == entry).unwrap_or(usize::MAX);

    let mut info = parts[0].info.clone();
    info.started = parts.iter().filter_map(|p| p.info.started.clone()).min();
    info.finished = parts.iter().filter_map(|p| p.info.finished.clone()).max();
    info.benchmarks = parts
        .iter()
        .flat_map(|p| p.info.benchmarks.iter().cloned())
        .collect();
    // Stable: tasks of one entry keep their order.
    info.benchmarks
        .sort_by_key(|b| position(b.manifest_entry()));
    info.request.manifest_benchmarks = all.clone();
    info.request.calibrated = parts
        .iter()
        .flat_map(|p| p.info.request.calibrated.iter().cloned())
        .collect();
    info.request.calibrated.sort_by_key(|e| position(e));
    info.request.shard = None;
    info.request.merged_from = parts
        .iter()
        .map(|p| std::path::absolute(&p.dir).unwrap_or_else(|_| p.dir.clone()))
        .collect();

    let dir = RunDir::create(out)?;
    let order: Vec<&str> = info.benchmarks.iter().map(|b| b.name.as_str()).collect();
    for c in &info.configs {
        let mut merged = rundir::pyperf::empty_suite();
        let mut first = true;
        for p in &parts {
            let path = RunDir::at(&p.dir).pyperf(&c.name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let suite: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a pyperf JSON file", path.display()))?;
            if first {
                merged["metadata"] = suite["metadata"].clone();
                merged["version"] = suite["version"].clone();
                first = false;
            }
            let benches = merged["benchmarks"]
                .as_array_mut()
                .expect("empty_suite has a list");
            benches.extend(
                suite["benchmarks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        if first {
            continue; // no shard has this configuration's file (nothing ran under it)
        }
        let pos = |b: &serde_json::Value| {
            let name = b["metadata"]["name"].as_str().unwrap_or("");
            order.iter().position(|o| *o == name).unwrap_or(usize::MAX)
        };
        merged["benchmarks"]
            .as_array_mut()
            .expect("a list")
            .sort_by_key(pos);
        rundir::write_atomic(&dir.pyperf(&c.name), &serde_json::to_vec(&merged)?)?;
    }
    let mut system = format!("# Merged by harness merge from {} shards\n", parts.len());
    for p in &parts {
        let shard = p.info.request.shard.as_ref().expect("checked");
        system.push_str(&format!("#   {}: {}\n", shard.spec, p.dir.display()));
    }
    for p in &parts {
        let from = RunDir::at(&p.dir);
        copy_tree(&from.root.join("tracer"), &dir.root.join("tracer"))?;
        copy_tree(&from.captures(), &dir.captures())?;
        append(&from.failures(), &dir.failures())?;
        append(&from.progress(), &dir.progress())?;
        if let Ok(text) = std::fs::read_to_string(from.system_txt()) {
            let shard = p.info.request.shard.as_ref().expect("checked");
            system.push_str(&format!("\n# ===== shard {} =====\n{text}", shard.spec));
        }
    }
    std::fs::write(dir.system_txt(), system)
        .with_context(|| format!("cannot write {}", dir.system_txt().display()))?;
    let _ = std::fs::remove_dir_all(dir.work());
    dir.save_info(&info)?;
    eprintln!(
        "harness: merged {} shards ({} benchmarks) into {}",
        parts.len(),
        info.benchmarks.len(),
        out.display()
    );
    Ok(())
}
