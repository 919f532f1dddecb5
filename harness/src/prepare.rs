//! Makes a selection of benchmarks and configurations ready to run (`harness setup`, and the first
//! step of every run): the venv, the manifest entries selected, their requirements, and our tracer.

use crate::configs::{Config, Tracer};
use crate::suite::{self, Benchmark, Manifest, SuiteName};
use crate::tracer::TracerBin;
use crate::venv::{self, PythonInfo, Venv};
use anyhow::Result;
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
    let (selected, excluded) = manifest.select(sel.suite, &sel.benchmarks, python.version)?;
    let install_failures = venv.install_requirements(&selected)?;
    let needs_ours = sel
        .configs
        .iter()
        .any(|c| matches!(c.tracer, Tracer::Ours { .. }));
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
    })
}
