//! The order of the configurations within a round, tested with a fake pyperf worker (a Python script
//! that writes pyperf JSON): one whose time depends on its position in the round (a simulated order
//! effect: the first process of a round is 10% slower), one whose time drifts up by 2% per worker.
//! With the rotated order, two identical untraced configurations (an A/A check) read exactly 1.00x;
//! in the same order every round they would not, which the test shows too.

mod common;

use common::test_dir;
use harness::configs::{self, Config};
use harness::runner::{Request, RunInfo, Runner};
use harness::suite::Benchmark;
use rundir::{BenchmarkInfo, ConfigOrder, RunDir, Settings};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

const PROCESSES: u32 = 6;

/// The fake worker: `fake.py STATE EFFECT CONFIGS <pyperf worker options>`. STATE counts the
/// workers started so far, so the worker knows its position in the round (count mod CONFIGS) and
/// its place in time (count).
const FAKE_WORKER: &str = r#"
import json, sys
state, effect, configs = sys.argv[1], sys.argv[2], int(sys.argv[3])
opts = dict(a[2:].split("=", 1) for a in sys.argv[4:] if a.startswith("--") and "=" in a)
output = sys.argv[sys.argv.index("--output") + 1]
try:
    count = int(open(state).read())
except FileNotFoundError:
    count = 0
open(state, "w").write(str(count + 1))
if effect == "position":
    value = 0.010 * (1.10 if count % configs == 0 else 1.0)
else:
    value = 0.010 * (1 + 0.02 * count)
suite = {"version": "1.0",
         "metadata": {"name": "fake", "unit": "second", "loops": int(opts["loops"])},
         "benchmarks": [{"runs": [{"metadata": {"mem_max_rss": 1000},
                                   "warmups": [[1, value]],
                                   "values": [value] * int(opts["values"])}]}]}
json.dump(suite, open(output, "w"))
"#;

/// Runs the measurement phase of baseline and baseline-aa with the fake worker; returns the run
/// directory.
fn run_fake(name: &str, effect: &str, order: ConfigOrder) -> PathBuf {
    let dir = test_dir(&format!("order-{name}"));
    let script = dir.join("fake.py");
    std::fs::write(&script, FAKE_WORKER).unwrap();
    let configs: Vec<Config> =
        configs::select(&["baseline".into(), "baseline-aa".into()], false, &[]).unwrap();
    let manifest = vec![Benchmark {
        name: "fake".into(),
        tags: Vec::new(),
        extra_opts: vec![
            dir.join("count").to_string_lossy().into_owned(),
            effect.into(),
            configs.len().to_string(),
        ],
        requires_python: None,
        runscript: script,
        requirements: None,
    }];
    let root = dir.join("run");
    let run_dir = RunDir::create(&root).unwrap();
    let info = RunInfo {
        schema: 1,
        started: None,
        finished: None,
        suite: Some("custom".into()),
        settings: Settings {
            processes: PROCESSES,
            values: 3,
            warmups: 1,
            mode: "normal".into(),
            timeout_s: 60,
            min_time: 0.1,
            order,
            timer: Default::default(),
        },
        benchmarks: vec![BenchmarkInfo {
            name: "fake".into(),
            tags: Vec::new(),
            micro: Some(true),
            loops: Some(1),
            task: None,
            manifest_name: Some("fake".into()),
        }],
        configs: configs.iter().map(Config::info).collect(),
        baseline: "baseline".into(),
        system: Default::default(),
        excluded: Vec::new(),
        request: Request {
            configs: configs.clone(),
            ..Default::default()
        },
    };
    run_dir.save_info(&info).unwrap();
    let interrupted = AtomicBool::new(false);
    let runner = Runner {
        work: run_dir.work(),
        dir: run_dir,
        info,
        manifest,
        configs,
        python: "python3".into(),
        tracer: None,
        base_env: harness::environ::base_env(),
        interrupted: &interrupted,
    };
    let summary = runner.measure_all().unwrap();
    assert_eq!(summary.failures, 0);
    assert_eq!(summary.workers, 2 * PROCESSES as u64);
    root
}

/// The A/A analysis (baseline-aa against baseline).
fn aa(root: &Path) -> plots::analysis::ConfigAnalysis {
    let mut analysis = plots::analysis::analyse(&rundir::load(root).unwrap());
    assert_eq!(analysis.configs.len(), 1);
    let a = analysis.configs.remove(0);
    assert_eq!(a.config.name, "baseline-aa");
    assert!(a.aa);
    a
}

/// The configurations of each round, in the order they ran (from progress.jsonl).
fn rounds(root: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(root.join("progress.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines
        .chunks(2)
        .map(|round| {
            assert_eq!(round[0]["process"], round[1]["process"]);
            round
                .iter()
                .map(|l| l["config"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn assert_reads_one(a: &plots::analysis::ConfigAnalysis) {
    let row = &a.rows[0];
    assert!((row.norm_mean - 1.0).abs() < 1e-12, "{}", row.norm_mean);
    assert!((a.geometric_mean.unwrap() - 1.0).abs() < 1e-12);
    assert!(
        !row.significance.shown_as_significant(),
        "{:?}",
        row.significance
    );
    assert_eq!(plots::format::format_factor(row.summary.mean), "1.00x");
    let line = plots::report::aa_text(a).unwrap();
    assert!(
        line.contains("geometric mean 1.00x, no significant row"),
        "{line}"
    );
}

#[test]
fn rotation_puts_each_configuration_first_equally_often() {
    let root = run_fake("rounds", "position", ConfigOrder::Rotate);
    let rounds = rounds(&root);
    assert_eq!(rounds.len(), PROCESSES as usize);
    let first_baseline = rounds.iter().filter(|r| r[0] == "baseline").count();
    assert_eq!(first_baseline, PROCESSES as usize / 2, "{rounds:?}");
    assert_eq!(rounds[0], ["baseline", "baseline-aa"]);
    assert_eq!(rounds[1], ["baseline-aa", "baseline"]);
}

#[test]
fn an_order_effect_cancels_after_rotation() {
    assert_reads_one(&aa(&run_fake("position", "position", ConfigOrder::Rotate)));
    // The same order every round puts the slow first position on the baseline alone.
    let fixed = aa(&run_fake("position-fixed", "position", ConfigOrder::Fixed));
    assert!((fixed.rows[0].norm_mean - 1.0 / 1.1).abs() < 1e-12);
    assert!(fixed.rows[0].significance.shown_as_significant());
    assert!(plots::report::aa_text(&fixed).unwrap().starts_with("⚠"));
}

#[test]
fn a_drift_over_time_cancels_after_rotation() {
    assert_reads_one(&aa(&run_fake("drift", "drift", ConfigOrder::Rotate)));
    // In a fixed order the configuration that always runs second is always 2% later.
    let fixed = aa(&run_fake("drift-fixed", "drift", ConfigOrder::Fixed));
    assert_eq!(
        plots::format::format_factor(fixed.rows[0].norm_mean),
        "1.02x"
    );
}
