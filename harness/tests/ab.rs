//! `harness ab P P`: the same tracer binary on both sides of an A/B run reads as no difference (an
//! A/A comparison through the A/B machinery), and the report has the headline, the A/A band and
//! each side's overhead.

mod common;

use common::*;

#[test]
fn the_same_binary_on_both_sides_reads_no_difference() {
    let _guard = serial();
    let dir = test_dir("ab");
    // The tracer, built where the other end-to-end tests build it.
    let mut setup = harness();
    setup.args(["setup", "-b", "nbody", "--configs", "baseline,default"]);
    expect_code(&mut setup, 0);
    let tracer = repo().join("target/harness-tests/release/tracer");
    assert!(tracer.is_file(), "{}", tracer.display());

    let mut cmd = harness();
    cmd.arg("ab")
        .arg(&tracer)
        .arg(&tracer)
        .args(["-b", "nbody", "--configs", "default", "--aa"])
        .args(["--processes", "6", "--results"])
        .arg(&dir)
        .args(SHORT);
    let out = expect_code(&mut cmd, 0);
    let run = run_dir_of(&out);
    // (SHORT has --no-report: `harness report` writes the A/B report of an A/B run.)
    let mut report = harness();
    report.arg("report").arg(&run);
    let out = expect_code(&mut report, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let headline = stderr
        .lines()
        .find(|l| l.starts_with("harness: default: B is"))
        .unwrap_or_else(|| panic!("no headline in:\n{stderr}"));
    assert!(
        headline.contains("significant in 0 of 1 benchmarks"),
        "{headline}"
    );
    assert!(headline.contains("(A/A 10%-90%: "), "{headline}");
    // The ratio itself: near 1 (loosely: on this shared 2-core machine an A/A band of a few
    // processes spans tens of per cent, see docs/statistics.md).
    let info = read_json(&run.join("run.json"));
    assert_eq!(info["request"]["ab"]["pairs"][0][1], "default@A");
    let page = std::fs::read_to_string(run.join("report/ab.md")).unwrap();
    assert!(
        page.contains("- overhead against the untraced baseline: A "),
        "{page}"
    );
    let pooled = page
        .lines()
        .find(|l| l.starts_with("- B/A, all benchmarks pooled: mean "))
        .expect("pooled line");
    let mean: f64 = pooled["- B/A, all benchmarks pooled: mean ".len()..]
        .split('x')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.8..1.25).contains(&mean), "{pooled}");
}
