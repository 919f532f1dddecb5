//! Checks the overhead distributions, their mean and 10%/90% quantiles and the KDE outline of every
//! violin against matplotlib: tests/fixtures/golden/<run>/violin/ holds what
//! `matplotlib.cbook.violin_stats` with `mlab.GaussianKDE` (what `Axes.violinplot` draws) computes
//! for distributions formed independently in Python (tests/fixtures/make_golden_violin.py): the
//! value-by-value ratios, and the default estimator's bootstrap of the ratio of means.

use std::path::Path;

use plots::analysis::{analyse, analyse_with, BenchRow};
use plots::Estimator;
use serde_json::Value;

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12),
        "{what}: ours {a}, matplotlib {b}"
    );
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Compares a row's distribution (summary and KDE) with a golden violin.
fn check_violin(row: &BenchRow, g: &Value, what: &str) {
    close(
        row.summary.mean,
        g["mean"].as_f64().unwrap(),
        &format!("{what} mean"),
    );
    let q = floats(&g["quantiles"]);
    close(row.summary.q10, q[0], &format!("{what} q10"));
    close(row.summary.q90, q[1], &format!("{what} q90"));
    let (xs, ys) = plots::kde::sweep(&row.overhead.ratios, 100);
    for (x, y) in xs.iter().zip(floats(&g["coords"])) {
        close(*x, y, &format!("{what} coord"));
    }
    for (x, y) in ys.iter().zip(floats(&g["vals"])) {
        close(*x, y, &format!("{what} density"));
    }
}

#[test]
fn violins_equal_matplotlib() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for run in ["run", "harness-run", "harness-run-memray"] {
        let loaded = plots::run::load(&fixtures.join(run)).unwrap();
        let by_value = analyse_with(&loaded, Estimator::ValueByValue);
        let by_default = analyse(&loaded);
        assert_eq!(by_default.estimator, Estimator::Bootstrap);
        for (a, d) in by_value.configs.iter().zip(&by_default.configs) {
            let path = fixtures
                .join("golden")
                .join(run)
                .join("violin")
                .join(format!("{}.json", a.config.name));
            let golden: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            for (row, boot) in a.rows.iter().zip(&d.rows) {
                let g = &golden[&row.name];
                let what = format!("{run} {} {}", a.config.name, row.name);
                let ratios = floats(&g["ratios"]);
                assert_eq!(row.overhead.ratios.len(), ratios.len(), "{what}");
                for (x, y) in row.overhead.ratios.iter().zip(&ratios) {
                    close(*x, *y, &format!("{what} ratio"));
                }
                check_violin(row, g, &what);

                let gb = &g["bootstrap"];
                let what = format!("{what} bootstrap");
                let r = &boot.overhead.ratios;
                assert_eq!(r.len() as u64, gb["n"].as_u64().unwrap(), "{what}");
                close(r[0], gb["min"].as_f64().unwrap(), &format!("{what} min"));
                close(
                    r[r.len() - 1],
                    gb["max"].as_f64().unwrap(),
                    &format!("{what} max"),
                );
                check_violin(boot, gb, &what);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 + 4 + 4 + 3 * 3 + 4 * 2);
}
