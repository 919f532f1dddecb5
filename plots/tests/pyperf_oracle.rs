//! Checks the statistics against pyperf itself: for the fixture run (made with real pyperf workers,
//! tests/fixtures/make_run.py), our compare_to tables, hidden rows and geometric means must equal
//! what `python -m pyperf compare_to` (pyperf 2.10.0) printed for the same JSON files, kept in
//! tests/fixtures/golden/compare_to/ (made by tests/fixtures/make_golden.sh).

use std::path::{Path, PathBuf};

use plots::analysis::analyse;
use plots::format::format_normalized_mean;
use plots::report::compare_to::write_compare_to;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(fixtures().join("golden/compare_to").join(name)).unwrap()
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
    let run = plots::run::load(&fixtures().join("run")).unwrap();
    let analysis = analyse(&run);
    assert_eq!(analysis.configs.len(), 3);
    for config in &analysis.configs {
        let mut ours = String::new();
        write_compare_to(&mut ours, "baseline", config).unwrap();
        let theirs = without_ignored(&golden(&format!("{}.table.md", config.config.name)));
        assert_eq!(
            ours, theirs,
            "config {}:\n--- ours\n{ours}\n--- pyperf\n{theirs}",
            config.config.name
        );
    }
}

#[test]
fn geometric_means_equal_pyperf_compare_to() {
    let run = plots::run::load(&fixtures().join("run")).unwrap();
    for config in &analyse(&run).configs {
        let list = golden(&format!("{}.list.txt", config.config.name));
        // The last "Geometric mean:" line is the one of "All benchmarks".
        let theirs = list
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Geometric mean: "))
            .unwrap();
        let ours = format_normalized_mean(config.geometric_mean.unwrap());
        assert_eq!(ours, theirs, "config {}", config.config.name);
    }
}

#[test]
fn significance_equals_pyperf_compare_to() {
    let run = plots::run::load(&fixtures().join("run")).unwrap();
    for config in &analyse(&run).configs {
        let list = golden(&format!("{}.list.txt", config.config.name));
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
                "config {} benchmark {}: {:?}",
                config.config.name,
                row.name,
                row.significance
            );
        }
    }
}
