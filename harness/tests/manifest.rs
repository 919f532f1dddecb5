//! The suite as read from the installed pyperformance 1.14.0: variants inherit from their base,
//! tags and extra options come through, `requires-python` filters selections.

mod common;

use harness::suite::{Manifest, SuiteName};
use std::path::Path;

fn manifest() -> Manifest {
    let _guard = common::serial();
    let info = harness::venv::probe_python(Path::new("python3")).unwrap();
    let venv = harness::venv::Venv::ensure(&info, false).unwrap();
    Manifest::load(&harness::suite::benchmarks_dir(&venv.site_packages)).unwrap()
}

#[test]
fn variants_tags_and_options() {
    let m = manifest();
    // 110 lines in MANIFEST: 97 entries, hg_startup commented out.
    assert!(
        m.benchmarks.len() >= 90,
        "only {} benchmarks",
        m.benchmarks.len()
    );

    let pure = m.get("pickle_pure_python").expect("pickle_pure_python");
    assert_eq!(pure.extra_opts, ["--pure-python", "pickle"]);
    assert_eq!(pure.tags, ["serialize"]);
    assert!(pure.runscript.ends_with("bm_pickle/run_benchmark.py"));
    assert_eq!(m.get("pickle").unwrap().extra_opts, ["pickle"]);

    // bm_async_tree_io.toml has only name and extra_opts: tags and requires-python come from
    // bm_async_tree/pyproject.toml.
    let io = m.get("async_tree_io").unwrap();
    assert_eq!(io.extra_opts, ["io"]);
    assert_eq!(io.tags, ["asyncio"]);
    assert!(io.requires_python.is_some());

    let two = m.get("2to3").unwrap();
    assert_eq!(two.tags, ["apps"]);
    assert!(!two.micro());
    assert!(m.get("nbody").unwrap().micro());
    assert!(m.get("docutils").unwrap().needs_packages());
    assert!(!m.get("deepcopy").unwrap().needs_packages());
    // A script with three tasks is still one manifest entry.
    assert!(m.get("deepcopy_memo").is_none());
}

#[test]
fn selections() {
    let m = manifest();
    let py311 = (3, 11, 7);
    let (quick, excluded) = m.select(SuiteName::Quick, &[], py311).unwrap();
    assert_eq!(quick.len(), harness::suite::QUICK.len());
    assert!(excluded.is_empty());
    assert!(quick.iter().any(|b| !b.micro()) && quick.iter().any(|b| b.micro()));

    let (stdlib, _) = m.select(SuiteName::Stdlib, &[], py311).unwrap();
    assert!(stdlib.iter().all(|b| !b.needs_packages()));
    assert!(stdlib.iter().any(|b| b.name == "nbody"));
    assert!(!stdlib.iter().any(|b| b.name == "docutils"));

    // The eager task factory variants need 3.12: left out of `all` on 3.11 and listed as such, an
    // error with -b.
    let (all, excluded) = m.select(SuiteName::All, &[], py311).unwrap();
    assert!(!all.iter().any(|b| b.name == "async_tree_eager"));
    let eager = excluded
        .iter()
        .find(|e| e.benchmark == "async_tree_eager")
        .expect("async_tree_eager is listed as excluded");
    assert_eq!(eager.reason, "requires-python >=3.12 excludes 3.11.7");
    let (all_312, excluded_312) = m.select(SuiteName::All, &[], (3, 12, 0)).unwrap();
    assert!(all_312.len() > all.len());
    assert_eq!(
        all_312.len() + excluded_312.len(),
        all.len() + excluded.len()
    );
    let err = m
        .select(SuiteName::Custom, &["async_tree_eager".into()], py311)
        .unwrap_err();
    assert!(err.to_string().contains("requires Python >=3.12"), "{err}");
    let err = m
        .select(SuiteName::Custom, &["nbody".into(), "nope".into()], py311)
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown benchmark 'nope'"),
        "{err}"
    );
}
