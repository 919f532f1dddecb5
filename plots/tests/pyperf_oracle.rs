//! Checks the statistics against pyperf itself: for each fixture run (`run`, made with real pyperf
//! workers by tests/fixtures/make_run.py; `harness-run` and `harness-run-memray`, real `harness run`s
//! with our tracer, Memray and tracemalloc), our
//! compare_to tables, hidden rows and geometric means must equal what `python -m pyperf compare_to`
//! (pyperf 2.10.0) printed for the same JSON files, kept in tests/fixtures/golden/<run>/compare_to/
//! (made by tests/fixtures/make_golden.sh).

use std::path::{Path, PathBuf};

use plots::analysis::analyse;
use plots::format::format_normalized_mean;
use plots::report::compare_to::write_compare_to;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture runs that have golden files.
const RUNS: [&str; 3] = ["run", "harness-run", "harness-run-memray"];

fn golden(run: &str, name: &str) -> String {
    let path = fixtures()
        .join("golden")
        .join(run)
        .join("compare_to")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(run: &str) -> plots::run::RunDir {
    plots::run::load(&fixtures().join(run)).unwrap()
}

/// Every configuration of every fixture run, with its run's name.
fn all_configs() -> Vec<(&'static str, plots::analysis::ConfigAnalysis)> {
    RUNS.iter()
        .flat_map(|run| {
            analyse(&load(run))
                .configs
                .into_iter()
                .map(move |c| (*run, c))
        })
        .collect()
}

/// pyperf's output without its "Ignored benchmarks" lines (we list missing benchmarks ourselves).
fn without_ignored(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("Ignored benchmarks"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn tables_equal_pyperf_compare_to() {
    for run in RUNS {
        let analysis = analyse(&load(run));
        assert!(analysis.configs.len() >= 3, "{run}");
        for config in &analysis.configs {
            let mut ours = String::new();
            write_compare_to(&mut ours, "baseline", config).unwrap();
            let name = format!("{}.table.md", config.config.name);
            let theirs = without_ignored(&golden(run, &name));
            assert_eq!(
                ours, theirs,
                "{run} config {}:\n--- ours\n{ours}\n--- pyperf\n{theirs}",
                config.config.name
            );
        }
    }
}

#[test]
fn geometric_means_equal_pyperf_compare_to() {
    for (run, config) in all_configs() {
        let list = golden(run, &format!("{}.list.txt", config.config.name));
        // The last "Geometric mean:" line is the one of "All benchmarks".
        let theirs = list
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Geometric mean: "))
            .unwrap();
        let ours = format_normalized_mean(config.geometric_mean.unwrap());
        assert_eq!(ours, theirs, "{run} config {}", config.config.name);
    }
}

#[test]
fn significance_equals_pyperf_compare_to() {
    for (run, config) in all_configs() {
        let list = golden(run, &format!("{}.list.txt", config.config.name));
        let all = list.split("All benchmarks:").last().unwrap();
        let hidden: Vec<&str> = all
            .lines()
            .find_map(|l| l.split_once("not significant (").map(|(_, rest)| rest))
            .map(|rest| rest.split_once("): ").unwrap().1.split(", ").collect())
            .unwrap_or_default();
        for row in &config.rows {
            assert_eq!(
                !row.significance.shown_as_significant(),
                hidden.contains(&row.name.as_str()),
                "{run} config {} benchmark {}: {:?}",
                config.config.name,
                row.name,
                row.significance
            );
        }
    }
}
