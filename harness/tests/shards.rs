//! A run split into three shards (`harness run --shard K/3`, run one after the other as separate
//! processes, as a CI matrix or a Slurm array would) and merged (`harness merge`) is the unsharded
//! run: the same benchmarks in the same order, the same configurations, loops and number of values;
//! `pyperf compare_to` reads the merged files and the report renders. Shards that do not belong
//! together are refused with what is wrong.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Benchmarks whose one loop takes more than `--min-time`, so that every run calibrates 1 loop
/// and the sharded and unsharded runs can be compared exactly.
const BENCHMARKS: &str = "nbody,richards,float,json_dumps";

fn run(results: &Path, extra: &[&str]) -> PathBuf {
    let mut cmd = harness();
    cmd.args(["run", "-b", BENCHMARKS, "--configs", "baseline,baseline-aa"])
        .args(["--processes", "1", "--values", "1", "--warmups", "0"])
        .args(["--min-time", "0.001", "--no-report", "--results"])
        .arg(results)
        .args(extra);
    run_dir_of(&expect_code(&mut cmd, 0))
}

/// (benchmark, loops) in run.json order, and each pyperf file's (benchmark, values) in file order.
/// What must be the same in a merged and an unsharded run.
type Shape = (Vec<(String, u64)>, Vec<Vec<(String, usize)>>);

fn shape(run: &Path) -> Shape {
    let info = read_json(&run.join("run.json"));
    let benches = info["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["loops"].as_u64().unwrap(),
            )
        })
        .collect();
    let files = ["baseline", "baseline-aa"]
        .iter()
        .map(|c| {
            let suite = read_json(&run.join(format!("pyperf/{c}.json")));
            suite["benchmarks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    let values: usize = b["runs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["values"].as_array().map_or(0, Vec::len))
                        .sum();
                    (b["metadata"]["name"].as_str().unwrap().to_string(), values)
                })
                .collect()
        })
        .collect();
    (benches, files)
}

fn merge(dirs: &[&PathBuf], out: &Path) -> std::process::Output {
    let mut cmd = harness();
    cmd.arg("merge").args(dirs).arg("-o").arg(out);
    cmd.output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of run directory `from` at `to` with its run.json edited by `edit`.
fn edited(from: &Path, to: &Path, edit: impl Fn(&mut Value)) -> PathBuf {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to.join("pyperf")).unwrap();
    for c in ["baseline", "baseline-aa"] {
        let f = format!("pyperf/{c}.json");
        std::fs::copy(from.join(&f), to.join(&f)).unwrap();
    }
    let mut info = read_json(&from.join("run.json"));
    edit(&mut info);
    std::fs::write(to.join("run.json"), info.to_string()).unwrap();
    to.to_path_buf()
}

#[test]
fn three_shards_merge_into_the_unsharded_run_and_strangers_are_refused() {
    let _guard = serial();
    let dir = test_dir("shards");
    let whole = run(&dir.join("whole"), &[]);
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| {
            run(
                &dir.join(format!("shard-{k}")),
                &["--shard", &format!("{k}/3")],
            )
        })
        .collect();
    // Every shard ran a part; together they ran each benchmark once.
    let mut ran: Vec<String> = Vec::new();
    for s in &shards {
        let info = read_json(&s.join("run.json"));
        let shard = &info["request"]["shard"];
        assert_eq!(shard["count"], 3);
        assert_eq!(shard["all_entries"].as_array().unwrap().len(), 4);
        ran.extend(shape(s).0.into_iter().map(|(b, _)| b));
    }
    ran.sort();
    assert_eq!(ran, ["float", "json_dumps", "nbody", "richards"]);

    let merged = dir.join("merged");
    // Given in any order.
    let out = merge(&[&shards[2], &shards[0], &shards[1]], &merged);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(shape(&merged), shape(&whole));
    let info = read_json(&merged.join("run.json"));
    assert!(info["request"].get("shard").is_none());
    assert_eq!(info["request"]["merged_from"].as_array().unwrap().len(), 3);
    assert_eq!(read_jsonl(&merged.join("progress.jsonl")).len(), 8);
    assert!(std::fs::read_to_string(merged.join("system.txt"))
        .unwrap()
        .contains("# ===== shard 3/3 ====="));

    // pyperf reads the merged files; the report renders.
    let mut cmp = std::process::Command::new(venv_python());
    cmp.args(["-m", "pyperf", "compare_to", "--table"])
        .arg(merged.join("pyperf/baseline.json"))
        .arg(merged.join("pyperf/baseline-aa.json"));
    let out = expect_code(&mut cmp, 0);
    let table = String::from_utf8_lossy(&out.stdout);
    for b in ["nbody", "richards", "float", "json_dumps"] {
        assert!(table.contains(b), "{table}");
    }
    let mut report = harness();
    report.arg("report").arg(&merged);
    expect_code(&mut report, 0);
    assert!(merged.join("report/README.md").is_file());

    // Refusals, each naming what is wrong.
    let refused = |dirs: &[&PathBuf], want: &str| {
        let out_dir = dir.join("refused");
        let _ = std::fs::remove_dir_all(&out_dir);
        let out = merge(dirs, &out_dir);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(want),
            "want {want:?}: {}",
            stderr(&out)
        );
        assert!(!out_dir.exists(), "nothing written when refused");
    };
    refused(&[&shards[0], &shards[1]], "shards missing: 3/3 (of 3)");
    refused(
        &[&shards[0], &shards[0], &shards[1], &shards[2]],
        "shard 1/3 is given twice",
    );
    refused(&[&whole, &shards[1]], "is not a shard");
    let other_python = edited(&shards[2], &dir.join("other-python"), |i| {
        i["system"]["python"] = "3.14.10".into()
    });
    refused(
        &[&shards[0], &shards[1], &other_python],
        "their Python versions differ",
    );
    let other_run = edited(&shards[2], &dir.join("other-run"), |i| {
        i["request"]["shard"]["all_entries"] = serde_json::json!(["nbody", "go"]);
    });
    refused(
        &[&shards[0], &shards[1], &other_run],
        "their benchmark selections differ",
    );
    let unfinished = edited(&shards[2], &dir.join("unfinished"), |i| {
        i["finished"] = Value::Null;
    });
    refused(
        &[&shards[0], &shards[1], &unfinished],
        "harness run --resume",
    );
    let out = merge(&[&shards[0], &shards[1], &shards[2]], &merged);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
}
