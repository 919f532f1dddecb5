//! Makes a selection of benchmarks and configurations ready to run (`harness setup`, and the first
//! step of every run): the venv, the manifest entries selected, their requirements, and our tracer.

use crate::configs::{Config, Tracer};
use crate::shard::{Shard, ShardSpec};
use crate::suite::{self, Benchmark, Manifest, SuiteName};
use crate::tracer::TracerBin;
use crate::venv::{self, PythonInfo, Venv};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to run, resolved from the command line (or, for `--resume`, from `run.json`).
#[derive(Debug, Clone)]
pub struct Selection {
    /// The Python to benchmark; the venv is made from it.
    pub python: PathBuf,
    /// Which benchmarks (`Custom`: exactly `benchmarks`).
    pub suite: SuiteName,
    /// Manifest names, for `SuiteName::Custom`.
    pub benchmarks: Vec<String>,
    /// Install Memray too.
    pub with_memray: bool,
    /// The configurations, the baseline first when there is no `baseline`.
    pub configs: Vec<Config>,
    /// A given tracer binary (else one is built when a configuration needs it).
    pub tracer: Option<PathBuf>,
    /// The root file system this harness runs in (`--root`), as the host names it.
    pub root: Option<PathBuf>,
    /// `--shard K/N`, with the entries' costs from `--shard-costs` (empty: balance by count).
    pub shard: Option<(ShardSpec, BTreeMap<String, f64>)>,
}

/// The result of `setup`: everything a run needs.
pub struct Prepared {
    pub python: PythonInfo,
    pub venv: Venv,
    pub manifest: Vec<Benchmark>,
    pub configs: Vec<Config>,
    pub tracer: Option<TracerBin>,
    /// Benchmarks whose requirements failed to install, with pip's reason.
    pub install_failures: Vec<(String, String)>,
    /// Benchmarks of the suite that this Python cannot run (`requires-python`).
    pub excluded: Vec<rundir::Excluded>,
    /// This run's part of the whole, with `--shard`.
    pub shard: Option<Shard>,
}

impl Prepared {
    /// The manifest without the benchmarks whose requirements did not install (they are recorded
    /// as failed, not run).
    pub fn drop_uninstalled(&mut self) {
        let failed = &self.install_failures;
        self.manifest
            .retain(|b| !failed.iter().any(|(n, _)| n == &b.name));
    }
}

/// The venv, the requirements and the tracer.
pub fn prepare(sel: &Selection) -> Result<Prepared> {
    let python = venv::probe_python(&sel.python)?;
    let venv = Venv::ensure(&python, sel.with_memray)?;
    let manifest = Manifest::load(&suite::benchmarks_dir(&venv.site_packages))?;
    let (mut selected, excluded) = manifest.select(sel.suite, &sel.benchmarks, python.version)?;
    // Split before installing anything, so every shard sees the same whole and installs only its part.
    let shard = sel.shard.as_ref().map(|(spec, costs)| {
        let names: Vec<String> = selected.iter().map(|b| b.name.clone()).collect();
        let shard = crate::shard::shard_of(&names, costs, *spec);
        selected.retain(|b| shard.entries.contains(&b.name));
        eprintln!(
            "harness: shard {spec}: {} of {} manifest entries ({})",
            shard.entries.len(),
            names.len(),
            shard.entries.join(", ")
        );
        shard
    });
    let install_failures = venv.install_requirements(&selected)?;
    let needs_ours = sel
        .configs
        .iter()
        .any(|c| matches!(c.tracer, Tracer::Ours { .. }) && c.tracer_binary.is_none());
    let tracer = match (&sel.tracer, needs_ours) {
        (Some(p), _) => Some(TracerBin::given(p)?),
        (None, true) => Some(crate::tracer::build()?),
        (None, false) => None,
    };
    Ok(Prepared {
        python,
        venv,
        manifest: selected,
        configs: sel.configs.clone(),
        tracer,
        install_failures,
        excluded,
        shard,
    })
}
