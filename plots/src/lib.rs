//! Provides the overhead statistics, violin plots and markdown reports that `harness report`,
//! `harness compare` and the end of `harness run` produce from a run directory
//! (`docs/run-format.md`).
//!
//! The three public functions below are the whole interface the harness uses. Everything behind
//! them is split like criterion: pure statistics (`stats`), the kernel density estimate (`kde`),
//! the plots (`plot`), the markdown pages (`report`), the analysis that ties them to a run
//! (`analysis`), and the only modules that touch files (`run` reads, through the run-directory
//! model of crate `rundir`; `fs` writes). How the numbers
//! are computed, and why: docs/statistics.md.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let run = Path::new("results/2026-11-23T04-30-00Z");
//! let report_dir = plots::write_report(run)?; // README.md, <config>.md, tracer-stats/, plots/
//! let change = plots::compare_runs(Path::new("results/A"), Path::new("results/B"))?;
//! plots::write_performance_page(run, Path::new("docs"))?; // docs/performance.md + images
//! # Ok::<(), anyhow::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod format;
mod fs;
pub mod kde;
pub mod plot;
pub use rundir::pyperf;
pub mod report;
pub mod run;
pub mod stats;

use std::path::{Path, PathBuf};

pub use stats::overhead::Estimator;

/// Writes `<run_dir>/report/`: `README.md` (the summary), one table per configuration
/// (`<config>.md`), tracer-statistics pages (`tracer-stats/<config>/`), and `plots/*.png` +
/// `plots/*.svg` (one violin plot per configuration, `all-configs` side by side). Returns the
/// report directory. Works on an unfinished run too: what is missing is listed as missing.
pub fn write_report(run_dir: &Path) -> anyhow::Result<PathBuf> {
    write_report_with(run_dir, Estimator::default())
}

/// [`write_report`] with the overhead distributions formed by `estimator` (docs/statistics.md).
pub fn write_report_with(run_dir: &Path, estimator: Estimator) -> anyhow::Result<PathBuf> {
    let run = run::load(run_dir)?;
    let analysis = analysis::analyse_with(&run, estimator);
    let dir = run_dir.join("report");

    let has_all_plot = write_plots(&analysis, &dir)?;

    let mut tracer_configs = Vec::new();
    for a in &analysis.configs {
        let title = report::config_title(a);
        let mut index = Vec::new();
        for ((config, bench), lines) in &run.tracer {
            if config != &a.config.name {
                continue;
            }
            let mut page = String::new();
            let source = format!("tracer/{config}/{bench}.jsonl");
            report::tracer_stats::write_benchmark_page(&mut page, &title, bench, &source, lines)?;
            fs::write(&dir.join(report::tracer_page_file(config, bench)), page)?;
            index.push((
                bench.clone(),
                report::link(&format!("{bench}.md")),
                lines.as_slice(),
            ));
        }
        if !index.is_empty() {
            let mut page = String::new();
            report::tracer_stats::write_index(&mut page, &title, &index)?;
            fs::write(&dir.join(report::tracer_index_file(&a.config.name)), page)?;
            tracer_configs.push(a.config.name.clone());
        }
    }

    for a in &analysis.configs {
        let has_page = |bench: &str| {
            run.tracer
                .contains_key(&(a.config.name.clone(), bench.to_string()))
        };
        let mut page = String::new();
        report::config_page::write_config_page(&mut page, &analysis, a, &has_page)?;
        fs::write(&dir.join(report::config_page_file(&a.config.name)), page)?;
    }

    let run_name = run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| run_dir.display().to_string());
    let mut readme = String::new();
    let has_stats = |config: &str| tracer_configs.iter().any(|c| c == config);
    report::summary::write_summary(
        &mut readme,
        &run_name,
        &run.info,
        &analysis,
        &has_stats,
        has_all_plot,
    )?;
    fs::write(&dir.join("README.md"), readme)?;
    Ok(dir)
}

/// Draws every configuration's plot and the side-by-side plot into `<dir>/plots/`; returns whether
/// the side-by-side plot was drawn.
fn write_plots(analysis: &analysis::RunAnalysis, dir: &Path) -> anyhow::Result<bool> {
    for a in &analysis.configs {
        if let Some(fig) = plot::config_figure(a) {
            let stem = dir.join(report::plot_stem(&a.config.name));
            write_figure(&fig, &stem)?;
        }
    }
    match plot::all_configs_figure(analysis) {
        Some(fig) => {
            write_figure(&fig, &dir.join(report::ALL_CONFIGS_PLOT))?;
            Ok(true)
        }
        None => Ok(false),
    }
}

fn write_figure(fig: &plot::Figure, stem: &Path) -> anyhow::Result<()> {
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", stem.display()));
    fs::write(&with("png"), plot::draw::png(fig)?)?;
    fs::write(&with("svg"), plot::draw::svg(fig)?)
}

/// The warnings of a run's A/A checks: one line per untraced configuration (other than the
/// baseline) with a row that pyperf's t-test calls significant.
pub fn aa_warnings(run_dir: &Path) -> anyhow::Result<Vec<String>> {
    let analysis = analysis::analyse(&run::load(run_dir)?);
    Ok(analysis
        .configs
        .iter()
        .filter(|a| a.significant_rows().next().is_some())
        .filter_map(report::aa_text)
        .collect())
}

/// Compares two run directories for a tracer change (`a` is the reference, `b` the change) and
/// returns markdown: per configuration, whether its overhead got smaller or larger, by how much,
/// and whether the difference is significant.
pub fn compare_runs(a: &Path, b: &Path) -> anyhow::Result<String> {
    let (run_a, run_b) = (run::load(a)?, run::load(b)?);
    let (before, after) = (analysis::analyse(&run_a), analysis::analyse(&run_b));
    let mut out = String::new();
    report::compare::write_comparison(
        &mut out,
        &a.display().to_string(),
        &before,
        &b.display().to_string(),
        &after,
    )?;
    Ok(out)
}

/// Writes the report across Python versions into `out`: `README.md` (a table of every configuration
/// on every version, and one per configuration with a row per benchmark) and `versions.png`/`.svg`
/// (the ALL row of every configuration on every version). One run directory per Python; runs are
/// ordered by Python version. Returns `out/README.md`.
pub fn write_versions_report(run_dirs: &[PathBuf], out: &Path) -> anyhow::Result<PathBuf> {
    if run_dirs.len() < 2 {
        anyhow::bail!("a report across versions needs at least two run directories");
    }
    let runs = run_dirs
        .iter()
        .map(|d| run::load(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let analyses: Vec<analysis::RunAnalysis> = runs.iter().map(analysis::analyse).collect();
    let version_of = |r: &run::RunDir| r.info.system.python.clone().unwrap_or_else(|| "?".into());
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| {
        version_of(&runs[i])
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    let mut pages = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        let version = version_of(&runs[i]);
        let shared = order
            .iter()
            .filter(|&&j| version_of(&runs[j]) == version)
            .count()
            > 1;
        let label = if shared {
            format!("{version} (run {})", pos + 1)
        } else {
            version
        };
        pages.push(report::versions::VersionPage {
            run: plot::VersionRun {
                label,
                analysis: &analyses[i],
            },
            dir: run_dirs[i].display().to_string(),
            info: &runs[i].info,
        });
    }
    let version_runs: Vec<plot::VersionRun> = pages
        .iter()
        .map(|p| plot::VersionRun {
            label: p.run.label.clone(),
            analysis: p.run.analysis,
        })
        .collect();
    let plot = match plot::versions_figure(&version_runs) {
        Some(fig) => {
            write_figure(&fig, &out.join("versions"))?;
            Some("versions")
        }
        None => None,
    };
    let mut page = String::new();
    report::versions::write_versions(&mut page, &pages, plot)?;
    let readme = out.join("README.md");
    fs::write(&readme, page)?;
    Ok(readme)
}

/// Writes `<run_dir>/report/ab.md`, the A/B report of a `harness ab` run (two tracer builds in one
/// run): per pair, B against A, the A/A band when the pair has one, and each side's overhead.
/// Returns the page's path and its headlines (one per pair).
pub fn write_ab_report(
    run_dir: &Path,
    a: &str,
    b: &str,
    pairs: &[report::ab::AbPair],
) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let run = run::load(run_dir)?;
    let overhead = analysis::analyse(&run);
    // Each comparison is the run's analysis with A's configuration as the reference.
    let against_a =
        |pair: &report::ab::AbPair, other: &str| -> anyhow::Result<analysis::ConfigAnalysis> {
            let mut sub = run.clone();
            sub.info.baseline = pair.a.clone();
            sub.info
                .configs
                .retain(|c| c.name == pair.a || c.name == other);
            if sub.info.configs.len() != 2 {
                anyhow::bail!(
                    "{}: the run has no configurations {} and {other}",
                    run_dir.display(),
                    pair.a
                );
            }
            Ok(analysis::analyse(&sub).configs.remove(0))
        };
    let mut analysed = Vec::new();
    for p in pairs {
        let b_vs_a = against_a(p, &p.b)?;
        let aa = p.aa.as_deref().map(|n| against_a(p, n)).transpose()?;
        analysed.push((b_vs_a, aa));
    }
    let modes: Vec<report::ab::AbMode> = pairs
        .iter()
        .zip(&analysed)
        .map(|(pair, (b_vs_a, aa))| report::ab::AbMode {
            pair,
            b_vs_a,
            aa: aa.as_ref(),
            overhead: &overhead,
        })
        .collect();
    let mut page = String::new();
    report::ab::write_ab(&mut page, a, b, &modes)?;
    let path = run_dir.join("report").join("ab.md");
    fs::write(&path, page)?;
    Ok((path, modes.iter().map(report::ab::headline).collect()))
}

/// Writes `<out>/performance.md` from a run (test system, method, sources of overhead, the violin
/// plots), in the manner of Memray's performance page. The plots go to
/// `<out>/performance/<config>.png` and `<out>/performance/all-configs.png`.
pub fn write_performance_page(run_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let run = run::load(run_dir)?;
    let analysis = analysis::analyse(&run);
    let mut images = Vec::new();
    for a in &analysis.configs {
        if let Some(fig) = plot::config_figure(a) {
            let rel = format!("performance/{}.png", a.config.name);
            fs::write(&out.join(&rel), plot::draw::png(&fig)?)?;
            images.push((a.config.name.clone(), rel));
        }
    }
    let all_image = match plot::all_configs_figure(&analysis) {
        Some(fig) => {
            let rel = "performance/all-configs.png".to_string();
            fs::write(&out.join(&rel), plot::draw::png(&fig)?)?;
            Some(rel)
        }
        None => None,
    };
    let image = |config: &str| {
        images
            .iter()
            .find(|(c, _)| c == config)
            .map(|(_, rel)| rel.clone())
    };
    let mut page = String::new();
    report::performance::write_performance(
        &mut page,
        &run.info,
        run.system_txt.as_deref(),
        &analysis,
        &image,
        all_image.as_deref(),
    )?;
    fs::write(&out.join("performance.md"), page)
}
