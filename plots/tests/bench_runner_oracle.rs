//! Checks HPT and the memory change against faster-cpython's bench_runner itself: for the fixture
//! run, our reliability, 90/95/99% figures and memory change must equal what bench_runner 2.0.8's
//! `hpt.make_report` and memory-change code print for the same pyperf files, kept in
//! tests/fixtures/golden/bench_runner/ (made by tests/fixtures/make_golden_bench_runner.py).

use std::path::Path;

use plots::analysis::analyse;

fn golden(config: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden/bench_runner")
        .join(format!("{config}.md"));
    std::fs::read_to_string(path).unwrap()
}

/// The value after `prefix` on the line that starts with it, up to the first space.
fn field<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|rest| rest.split(' ').next().unwrap())
}

#[test]
fn hpt_and_memory_equal_bench_runner() {
    let run = plots::run::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run"))
        .unwrap();
    let analysis = analyse(&run);
    for a in &analysis.configs {
        let theirs = golden(&a.config.name);
        let h = a.hpt.as_ref().unwrap();
        let name = &a.config.name;
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
        let ours = a
            .memory_change
            .map_or("unknown".to_string(), |m| format!("{m:.2}x"));
        assert_eq!(
            ours,
            field(&theirs, "- memory change: ").unwrap(),
            "{name} memory"
        );
    }
}
