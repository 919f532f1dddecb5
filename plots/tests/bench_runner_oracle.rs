//! Checks HPT and the memory change against faster-cpython's bench_runner itself: for each fixture
//! run, our reliability, 90/95/99% figures and memory change must equal what bench_runner 2.0.8's
//! `hpt.make_report` and memory-change code print for the same pyperf files, kept in
//! tests/fixtures/golden/<run>/bench_runner/ (made by tests/fixtures/make_golden_bench_runner.py).

use std::path::Path;

use plots::analysis::analyse;

fn golden(run: &str, config: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(run)
        .join("bench_runner")
        .join(format!("{config}.md"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value after `prefix` on the line that starts with it, up to the first space.
fn field<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|rest| rest.split(' ').next().unwrap())
}

#[test]
fn hpt_and_memory_equal_bench_runner() {
    for run in ["run", "harness-run", "harness-run-memray"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(run);
        for a in &analyse(&plots::run::load(&dir).unwrap()).configs {
            check(run, a);
        }
    }
}

fn check(run: &str, a: &plots::analysis::ConfigAnalysis) {
    let theirs = golden(run, &a.config.name);
    let name = format!("{run} {}", a.config.name);
    let ours = a
        .memory_change
        .map_or("unknown".to_string(), |m| format!("{m:.2}x"));
    assert_eq!(
        ours,
        field(&theirs, "- memory change: ").unwrap(),
        "{name} memory"
    );
    if theirs.contains("ValueError: Fewer than 12 samples") {
        // bench_runner refuses; so do we, saying why.
        assert!(
            matches!(a.hpt, Err(plots::stats::hpt::HptError::TooFewValues(..))),
            "{name}: {:?}",
            a.hpt
        );
        return;
    }
    let h = a.hpt.as_ref().unwrap();
    assert_eq!(
        format!("{:.2}%", h.reliability * 100.0),
        field(&theirs, "- Reliability score: ").unwrap(),
        "{name}"
    );
    let direction = if h.faster { "faster" } else { "slow" };
    assert!(
        theirs.contains(&format!("likely to be {direction}")),
        "{name}"
    );
    let effect = if h.faster { "speedup" } else { "slowdown" };
    for (p, ours) in [(90, h.at_90), (95, h.at_95), (99, h.at_99)] {
        let prefix = format!("- {p}% likely to have a {effect} of ");
        let theirs = field(&theirs, &prefix);
        assert_eq!(
            ours.map(|v| format!("{v:.2}x")).as_deref(),
            theirs,
            "{name} {p}%"
        );
    }
}
