//! Provides the report across Python versions (`harness versions DIR...`): one run per Python, the
//! same configurations in each; a table of every configuration's cost on every version (geometric
//! mean, and the pooled ALL row's mean and 10%/90% quantiles), one table per configuration with a
//! row per benchmark, and the plot of every (configuration, version) ALL row. Like the
//! faster-cpython comparison pages, each version is a column, read against its own baseline: what
//! changes from column to column is the tracer's cost on that interpreter, not the interpreter's speed.

use std::fmt::{self, Write};

use super::table::MarkdownTable;
use super::{aa_text, config_title, settings_text};
use crate::format::{format_factor, format_normalized_mean};
use crate::plot::VersionRun;
use crate::run::RunInfo;

/// One run of the comparison: its label, its directory's name and what it recorded.
pub struct VersionPage<'a> {
    /// The run's analysis and label.
    pub run: VersionRun<'a>,
    /// The run directory, as given.
    pub dir: String,
    /// Its `run.json`.
    pub info: &'a RunInfo,
}

/// `1.52x slower (ALL: 1.49x, 10%: 1.05x, 90%: 2.10x)`, or `–` when the run lacks it.
fn cell(run: &VersionRun, config: &str) -> String {
    let Some(a) = run
        .analysis
        .configs
        .iter()
        .find(|a| a.config.name == config)
    else {
        return "–".to_string();
    };
    let gm = a
        .geometric_mean
        .map(format_normalized_mean)
        .unwrap_or_else(|| "no benchmark compared".to_string());
    match &a.all_summary {
        Some(s) => format!(
            "{gm} (ALL: {}, 10%: {}, 90%: {})",
            format_factor(s.mean),
            format_factor(s.q10),
            format_factor(s.q90)
        ),
        None => gm,
    }
}

/// The build line cut to a table cell's width (configure flags can run to hundreds of characters).
fn short(build: &str) -> String {
    const MAX: usize = 60;
    match build.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &build[..i]),
        None => build.to_string(),
    }
}

/// Configuration names in the order of the first run that has them.
fn config_names<'a>(pages: &'a [VersionPage]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for p in pages {
        for a in &p.run.analysis.configs {
            if !names.contains(&a.config.name.as_str()) {
                names.push(&a.config.name);
            }
        }
    }
    names
}

/// Writes the whole page; `plot` is the relative path stem of the ALL-rows plot, when drawn.
pub fn write_versions(
    out: &mut impl Write,
    pages: &[VersionPage],
    plot: Option<&str>,
) -> fmt::Result {
    writeln!(out, "# Overhead across Python versions\n")?;
    writeln!(
        out,
        "Each column is one run on one Python, each traced configuration against that run's own \
         untraced baseline (geometric mean of the per-benchmark mean ratios, as pyperf \
         `compare_to` computes it, then the pooled ALL row's mean and 10%/90% quantiles).\n"
    )?;
    let mut runs = MarkdownTable::new(["Python", "build", "run", "settings", "tracer", "A/A"]);
    for p in pages {
        let sys = &p.info.system;
        let aa: Vec<String> = p.run.analysis.configs.iter().filter_map(aa_text).collect();
        runs.push([
            p.run.label.clone(),
            short(sys.python_build.as_deref().unwrap_or("?")),
            p.dir.clone(),
            settings_text(&p.info.settings),
            sys.tracer_version.clone().unwrap_or_else(|| "?".into()),
            if aa.is_empty() {
                "not run".to_string()
            } else {
                aa.join("; ")
            },
        ]);
    }
    runs.render(out)?;

    let names = config_names(pages);
    writeln!(out, "\n## Every configuration on every version\n")?;
    let mut headers = vec!["configuration".to_string()];
    headers.extend(pages.iter().map(|p| format!("Python {}", p.run.label)));
    let mut table = MarkdownTable::new(headers);
    for name in &names {
        let title = pages
            .iter()
            .flat_map(|p| &p.run.analysis.configs)
            .find(|a| a.config.name == *name)
            .map(config_title)
            .unwrap_or_else(|| name.to_string());
        let mut row = vec![title];
        row.extend(pages.iter().map(|p| cell(&p.run, name)));
        table.push(row);
    }
    table.render(out)?;
    if let Some(stem) = plot {
        writeln!(
            out,
            "\n![ALL rows of every configuration on every version]({stem}.png)\n\n[svg]({stem}.svg)"
        )?;
    }

    for name in &names {
        writeln!(out, "\n## {name}: per benchmark\n")?;
        let mut benches: Vec<&str> = Vec::new();
        for p in pages {
            if let Some(a) = p
                .run
                .analysis
                .configs
                .iter()
                .find(|a| a.config.name == *name)
            {
                for r in &a.rows {
                    if !benches.contains(&r.name.as_str()) {
                        benches.push(&r.name);
                    }
                }
            }
        }
        let mut headers = vec!["benchmark".to_string()];
        headers.extend(pages.iter().map(|p| format!("Python {}", p.run.label)));
        let mut table = MarkdownTable::new(headers);
        for bench in benches {
            let mut row = vec![bench.to_string()];
            for p in pages {
                let r = p
                    .run
                    .analysis
                    .configs
                    .iter()
                    .find(|a| a.config.name == *name)
                    .and_then(|a| a.rows.iter().find(|r| r.name == bench));
                row.push(match r {
                    Some(r) => {
                        let sig = if r.significance.shown_as_significant() {
                            ""
                        } else {
                            " (not significant)"
                        };
                        format!("{}{sig}", format_normalized_mean(r.norm_mean))
                    }
                    None => "–".to_string(),
                });
            }
            table.push(row);
        }
        table.render(out)?;
    }
    let excluded: Vec<String> = pages
        .iter()
        .filter(|p| !p.info.excluded.is_empty())
        .map(|p| {
            let list: Vec<&str> = p
                .info
                .excluded
                .iter()
                .map(|e| e.benchmark.as_str())
                .collect();
            format!("- Python {}: {}", p.run.label, list.join(", "))
        })
        .collect();
    if !excluded.is_empty() {
        writeln!(
            out,
            "\n## Not run (their `requires-python` excludes that version)\n\n{}",
            excluded.join("\n")
        )?;
    }
    Ok(())
}
