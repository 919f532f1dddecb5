//! Python stacks: both stack sources, the Python-allocator mode, on every interpreter (the host's
//! 3.11s and Debian sid's 3.13, 3.14 and 3.15: see `common::pythons`).

mod common;

use common::*;
use serde_json::Value;

/// Runs a test script under the tracer and returns `tracer stats --json` of its capture.
fn trace(name: &str, python: &Python, args: &[&str], script_name: &str) -> Value {
    let dir = test_dir(name);
    let cap = dir.join("cap.bin");
    expect_code(
        python
            .tracer_run()
            .arg("-o")
            .arg(&cap)
            .args(args)
            .arg(script(script_name)),
        0,
    );
    let s = python.stats_json(&cap);
    assert_eq!(s["truncated"], false, "{name}");
    s
}

/// The frames of a site as `function:line`, innermost first.
fn frames(site: &Value) -> Vec<String> {
    site["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{}:{}", l["function"].as_str().unwrap(), l["line"]))
        .collect()
}

/// The first site in `table` whose innermost frame is `function`.
fn site_in<'a>(s: &'a Value, table: &str, function: &str) -> &'a Value {
    s[table]
        .as_array()
        .unwrap()
        .iter()
        .find(|site| site["stack"][0]["function"] == function)
        .unwrap_or_else(|| panic!("no site in {function} among {table}: {}", s[table]))
}

fn slug(python: &Python, args: &[&str]) -> String {
    format!("{}{}", python.label(), args.join("_"))
}

#[test]
fn nested_bytearray_is_attributed_to_h_under_g_under_f() {
    for python in &pythons() {
        for source in ["walk", "profile"] {
            for mode in [&[][..], &["--trace-python-allocators"][..]] {
                let mut args = vec!["--stack-source", source];
                args.extend_from_slice(mode);
                let s = trace(
                    &format!("nested-{}", slug(python, &args)),
                    python,
                    &args,
                    "nested_bytearray.py",
                );
                let top = site_in(&s, "top_sites_by_bytes", "h");
                assert!(
                    top["bytes"].as_u64().unwrap() >= 10 << 20,
                    "{python} {args:?}: {top}"
                );
                let f = frames(top);
                assert_eq!(
                    &f[..4],
                    ["h:3", "g:7", "f:11", "<module>:14"],
                    "{python} {args:?}"
                );
                assert!(top["stack"][0]["file"]
                    .as_str()
                    .unwrap()
                    .ends_with("nested_bytearray.py"));
            }
        }
    }
}

#[test]
fn a_thread_started_later_is_attributed_to_its_function() {
    for python in &pythons() {
        for source in ["walk", "profile"] {
            let args = ["--stack-source", source];
            let s = trace(
                &format!("thread-{}", slug(python, &args)),
                python,
                &args,
                "thread_worker.py",
            );
            let site = site_in(&s, "top_sites_by_bytes", "worker");
            assert!(
                site["bytes"].as_u64().unwrap() >= 2 << 20,
                "{python} {source}: {site}"
            );
            let f = frames(site);
            assert_eq!(f[0], "worker:6", "{python} {source}: {f:?}");
            assert!(f.iter().any(|fr| fr.starts_with("Thread.run")), "{f:?}");
        }
    }
}

#[test]
fn pymalloc_allocations_appear_only_with_python_allocators() {
    for python in &pythons() {
        let with = trace(
            &format!("tuples-pyalloc-{}", slug(python, &[])),
            python,
            &["--trace-python-allocators"],
            "small_tuples.py",
        );
        let pymalloc = with["by_kind"]["pymalloc_malloc"]["count"]
            .as_u64()
            .unwrap_or(0);
        assert!(pymalloc >= 100_000, "{python}: {pymalloc}");
        // The tuples and the ints in them, both made on line 3.
        let top = &with["top_sites_by_count"][0];
        assert!(top["count"].as_u64().unwrap() >= 100_000, "{python}: {top}");
        if python.version < (3, 12) {
            assert_eq!(frames(top)[0], "k.<locals>.<listcomp>:3", "{python}");
            assert_eq!(frames(top)[1], "k:3", "{python}");
        } else {
            // 3.12 inlines comprehensions into their function (PEP 709).
            assert_eq!(frames(top)[..2], ["k:3", "<module>:6"], "{python}");
        }

        let without = trace(
            &format!("tuples-default-{}", slug(python, &[])),
            python,
            &[],
            "small_tuples.py",
        );
        assert_eq!(
            without["by_kind"]["pymalloc_malloc"]["count"]
                .as_u64()
                .unwrap_or(0),
            0
        );
        // The tuples live in pymalloc arenas: far fewer malloc calls than tuples.
        assert!(
            without["allocations"].as_u64().unwrap() < 50_000,
            "{python}: {}",
            without["allocations"]
        );
    }
}

#[test]
fn walk_and_profile_agree_on_every_allocation() {
    for python in &pythons() {
        for mode in [&[][..], &["--trace-python-allocators"][..]] {
            let mut args = vec!["--stack-source", "check"];
            args.extend_from_slice(mode);
            let s = trace(
                &format!("check-{}", slug(python, &args)),
                python,
                &args,
                "cross_check.py",
            );
            let c = &s["counters"];
            assert_eq!(
                c["stack_mismatches"], 0,
                "{python} {args:?}: {}",
                s["stack_mismatches"]
            );
            let compared = c["stack_checks"].as_u64().unwrap();
            assert!(
                compared > 1000,
                "{python} {args:?}: only {compared} compared"
            );
            // The walk's fast way (the frames below the last stack recorded) gave the whole walk's
            // stack every time it applied, and it applied to most allocations.
            assert_eq!(c["fast_walk_mismatches"], 0, "{python} {args:?}: {c}");
            assert!(
                c["fast_walk_checks"].as_u64().unwrap() > compared / 2,
                "{python} {args:?}: {c}"
            );
            // Skips are only the frame being entered or left; they stay a minority.
            assert!(
                c["stack_checks_skipped"].as_u64().unwrap() < compared / 2,
                "{c}"
            );
        }
    }
}

#[test]
fn an_existing_sitecustomize_still_runs() {
    // An existing sitecustomize on PYTHONPATH still runs after the tracer's bootstrap.
    let dir = test_dir("chain");
    std::fs::write(
        dir.join("sitecustomize.py"),
        "import builtins\nbuiltins.CHAINED = 42\n",
    )
    .unwrap();
    let script = dir.join("probe.py");
    std::fs::write(&script, "print(CHAINED)\n").unwrap();
    let cap = dir.join("cap.bin");
    let out = expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg(&script)
            .env("PYTHONPATH", &dir),
        0,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    assert!(
        stats_json(&cap)["code_objects"].as_u64().unwrap() > 0,
        "the tracer's bootstrap ran too"
    );
}
