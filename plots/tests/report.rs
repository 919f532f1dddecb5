//! Runs the three public functions on the fixture run and checks the pages: the files exist, the
//! summary and table pages have the seeds' layout (reference/000 and 001), the missing benchmark is
//! listed with its reason, the tracer pages show every counter present, and the comparison of a run
//! with itself finds no significant change.

use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh copy of the fixture run `run` under the test's own directory.
fn copy_of(run: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-tests")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixture(run), &dir);
    dir
}

/// A fresh copy of the pyperf-made fixture run.
fn copy_of_fixture(test: &str) -> PathBuf {
    copy_of("run", test)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn write_report_writes_every_page_and_plot() {
    let run = copy_of_fixture("all");
    let dir = plots::write_report(&run).unwrap();
    assert_eq!(dir, run.join("report"));
    for config in ["default", "python-allocators+native", "tracemalloc"] {
        assert!(dir.join(format!("{config}.md")).is_file(), "{config}.md");
        for ext in ["png", "svg"] {
            let plot = dir.join(format!("plots/{config}.{ext}"));
            assert!(
                std::fs::metadata(&plot).unwrap().len() > 1000,
                "{}",
                plot.display()
            );
        }
    }
    assert!(dir.join("plots/all-configs.png").is_file());
    assert!(dir.join("tracer-stats/default/build_dicts.md").is_file());
    assert!(dir
        .join("tracer-stats/python-allocators+native/README.md")
        .is_file());
    // tracemalloc has no tracer statistics: no index, and no link to one.
    assert!(!dir.join("tracer-stats/tracemalloc").exists());
}

#[test]
fn summary_has_the_seed_layout() {
    let run = copy_of_fixture("summary");
    let readme = read(&plots::write_report(&run).unwrap().join("README.md"));
    assert!(
        readme.starts_with("# Results\n\n- run: summary\n"),
        "{readme}"
    );
    // One section per configuration, each with the seed's bullet lines, in run.json order.
    let sections: Vec<&str> = readme.split("\n## ").skip(1).collect();
    assert_eq!(sections.len(), 3);
    assert!(sections[0].starts_with("tracer, default [default]\n"));
    assert!(sections[2].starts_with("tracemalloc [tracemalloc]\n"));
    for s in &sections {
        let bullets: Vec<&str> = s.lines().filter(|l| l.starts_with("- ")).collect();
        assert!(bullets[0].starts_with("- Geometric mean: "), "{bullets:?}");
        assert!(
            bullets[0].contains("(HPT: reliability of "),
            "{}",
            bullets[0]
        );
        assert!(bullets[0].contains(" at 99th %ile)"), "{}", bullets[0]);
        assert!(bullets.iter().any(|b| b.starts_with("- Memory usage: ")));
        assert!(bullets
            .iter()
            .any(|b| b.starts_with("- missing benchmarks: ")));
        assert!(bullets.iter().any(|b| b.starts_with("- [📄table](")));
        assert!(bullets
            .iter()
            .any(|b| b.starts_with("- [📈time plot](plots/")));
    }
    // The geometric means are pyperf's (tests/pyperf_oracle.rs checks them against pyperf).
    assert!(
        sections[0].contains("- Geometric mean: 2.18x slower"),
        "{}",
        sections[0]
    );
    // The benchmark that failed under the tracemalloc configurations is listed with its reason.
    assert!(sections[0].contains("- missing benchmarks: none\n"));
    for s in &sections[1..] {
        assert!(
            s.contains(
                "- missing benchmarks: broken (failed in process 0: worker exited with code 1)"
            ),
            "{s}"
        );
    }
    assert!(sections[1].contains("[📄table](python-allocators+native.md)"));
    assert!(sections[0].contains("[🔢tracer statistics](tracer-stats/default/README.md)"));
    assert!(!sections[2].contains("tracer statistics"));
}

#[test]
fn config_page_has_the_seed_layout() {
    let run = copy_of_fixture("config");
    let page = read(&plots::write_report(&run).unwrap().join("tracemalloc.md"));
    let lines: Vec<&str> = page.lines().collect();
    assert_eq!(
        lines[0],
        "# Results of tracemalloc [tracemalloc] vs. untraced [baseline]"
    );
    for prefix in [
        "- overall geometric mean: ",
        "- HPT reliability: ",
        "- HPT 99th percentile: ",
        "- Memory change: ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "{prefix} missing:\n{page}"
        );
    }
    // Tag sections as pyperf prints them, then all benchmarks, the hidden-rows line, the missing
    // benchmarks, the geometric mean line, the HPT and memory sections (reference/001's order).
    let order = [
        "Benchmarks with tag 'apps':",
        "Benchmark hidden because not significant (1): fib_calls",
        "Benchmarks with tag 'serialize':",
        "| Benchmark      | baseline | tracemalloc            |",
        "|----------------|:--------:|:----------------------:|",
        "All benchmarks:",
        "Missing benchmarks (1): broken (failed in process 0: worker exited with code 1)",
        "- Geometric mean (including insignificant results): 3.62x slower",
        "# Overhead distribution",
        "# HPT report",
        "- Reliability score: ",
        "- 90% likely to have a slowdown of ",
        "# Memory",
        "- memory change: ",
    ];
    let mut at = 0;
    for needle in order {
        let found = page[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not found after byte {at}:\n{page}"));
        at += found + needle.len();
    }
    assert!(page.contains("| ALL "), "the overhead table ends with ALL");
}

#[test]
fn tracer_page_renders_every_counter_present() {
    let run = copy_of_fixture("tracer");
    // Add a counter the code has never heard of to one line: it must appear without code changes.
    let jsonl = run.join("tracer/default/sort_list.jsonl");
    let text = read(&jsonl).replacen(
        "\"counters\": {",
        "\"counters\": {\"brand_new_counter\": 12345, ",
        1,
    );
    std::fs::write(&jsonl, text).unwrap();
    let page = read(
        &plots::write_report(&run)
            .unwrap()
            .join("tracer-stats/default/sort_list.md"),
    );
    assert!(page.starts_with("# Tracer statistics: sort_list\n"));
    assert!(page.contains("- processes: 6 (lines of `tracer/default/sort_list.jsonl`)"));
    for key in [
        "brand_new_counter",
        "frames_pushed",
        "frames_popped",
        "stacks_interned",
        "buffers_flushed",
        "events_malloc",
    ] {
        assert!(
            page.contains(&format!("| {key} ")),
            "{key} missing:\n{page}"
        );
    }
    assert!(page.contains("| brand_new_counter "));
    assert!(page.contains("| 12,345 "), "{page}");
    assert!(page.contains("## counters"));
    assert!(page.contains("| events "), "top-level numbers are listed");
    assert!(page.contains("capture bytes per recorded event"));
}

#[test]
fn comparing_a_run_with_itself_changes_nothing() {
    let run = copy_of_fixture("compare");
    let md = plots::compare_runs(&run, &run).unwrap();
    assert!(md.starts_with("# Tracer change: "));
    for config in ["default", "python-allocators+native", "tracemalloc"] {
        let row = md
            .lines()
            .find(|l| l.contains(&format!("[{config}]")) && l.starts_with('|'))
            .unwrap_or_else(|| panic!("{config} row missing:\n{md}"));
        assert!(row.contains("| no change "), "{row}");
        assert!(row.contains("0 smaller, 0 larger"), "{row}");
    }
}

#[test]
fn performance_page_describes_the_system_and_shows_the_plots() {
    let run = copy_of_fixture("performance");
    let docs = run.join("docs-out");
    plots::write_performance_page(&run, &docs).unwrap();
    let page = read(&docs.join("performance.md"));
    for needle in [
        "# Performance",
        "## Test system",
        "* CPU: ",
        "* Kernel: ",
        "* Python: 3.11.7",
        "* Python build flags: ",
        "* Tracer version: 0.1.0",
        "### System state",
        "## Method",
        "## Sources of the overhead",
        "## Results",
        "![overhead of tracer, default [default]](performance/default.png)",
        "![overhead of tracer, Python allocators + native [python-allocators+native]](performance/python-allocators+native.png)",
        "![ALL rows of every configuration](performance/all-configs.png)",
    ] {
        assert!(page.contains(needle), "{needle:?} missing:\n{page}");
    }
    let system = read(&run.join("system.txt"));
    let first = system.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(page.contains(first), "system.txt is quoted");
    assert!(docs.join("performance/default.png").is_file());
    assert!(docs.join("performance/all-configs.png").is_file());
}

#[test]
fn a_directory_without_run_json_is_refused_with_a_hint() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-tests/empty");
    std::fs::create_dir_all(&dir).unwrap();
    let err = plots::write_report(&dir).unwrap_err().to_string();
    assert!(err.contains("has no run.json"), "{err}");
}

/// Multiplies every value of `pyperf/<config>.json` in `run` by `factor`.
fn scale_values(run: &Path, config: &str, factor: f64) {
    let path = run.join(format!("pyperf/{config}.json"));
    let mut suite: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    for bench in suite["benchmarks"].as_array_mut().unwrap() {
        for r in bench["runs"].as_array_mut().unwrap() {
            if let Some(values) = r.get_mut("values").and_then(|v| v.as_array_mut()) {
                for v in values {
                    *v = serde_json::json!(v.as_f64().unwrap() * factor);
                }
            }
        }
    }
    std::fs::write(&path, serde_json::to_string(&suite).unwrap()).unwrap();
}

#[test]
fn comparing_runs_finds_a_halved_overhead() {
    let before = copy_of_fixture("compare-before");
    let after = copy_of_fixture("compare-after");
    scale_values(&after, "default", 0.5);
    let md = plots::compare_runs(&before, &after).unwrap();
    let row = |config: &str| {
        md.lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("[{config}]")))
            .unwrap_or_else(|| panic!("{config} row missing:\n{md}"))
            .to_string()
    };
    let default = row("default");
    assert!(default.contains("| 2.00x smaller "), "{default}");
    // Every benchmark's ratios halved: all significant, all smaller.
    assert!(
        default.contains("5 smaller, 0 larger, 0 not significant"),
        "{default}"
    );
    assert!(default.contains("likely smaller"), "{default}");
    assert!(row("tracemalloc").contains("| no change "));
    // The section of the configuration lists the benchmarks with their overheads before and after.
    let section = md.split("## tracer, default [default]").nth(1).unwrap();
    assert!(section.contains("| fib_calls "), "{section}");
    assert!(section.contains("2.00x smaller"), "{section}");
}

#[test]
fn an_unfinished_run_reports_what_it_has() {
    let run = copy_of_fixture("unfinished");
    std::fs::remove_file(run.join("pyperf/tracemalloc.json")).unwrap();
    let dir = plots::write_report(&run).unwrap();
    let readme = read(&dir.join("README.md"));
    let section = readme.split("## tracemalloc [tracemalloc]").nth(1).unwrap();
    assert!(
        section.contains("sort_list (no pyperf/tracemalloc.json)"),
        "{section}"
    );
    assert!(section.contains("Geometric mean: unknown"), "{section}");
    assert!(!dir.join("plots/tracemalloc.png").exists());
    assert!(read(&dir.join("tracemalloc.md")).contains("No benchmark was compared."));
}

#[test]
fn report_of_a_real_harness_run() {
    // tests/fixtures/harness-run: `harness run` with our tracer and tracemalloc (see its README).
    let run = copy_of("harness-run", "harness-run");
    let dir = plots::write_report(&run).unwrap();
    let readme = read(&dir.join("README.md"));
    assert_eq!(readme.matches("\n## ").count(), 3, "{readme}");
    assert!(readme.contains("## tracemalloc, 1 frame [tracemalloc]"));
    assert!(
        readme.contains("- Capture: "),
        "bytes per event from the real tracer statistics"
    );
    for bench in ["richards", "nbody", "json_loads"] {
        let page = read(&dir.join(format!("tracer-stats/python-allocators/{bench}.md")));
        for needle in [
            "## by_kind",
            "| malloc ",
            "## counters",
            "| bytes_written ",
            "## header",
        ] {
            assert!(
                page.contains(needle),
                "{bench}: {needle:?} missing:\n{page}"
            );
        }
    }
    for config in ["default", "python-allocators", "tracemalloc"] {
        assert!(dir.join(format!("plots/{config}.png")).is_file());
    }
}

#[test]
fn report_of_a_real_harness_run_with_memray() {
    // tests/fixtures/harness-run-memray: configuration names with ':' and Memray's statistics.
    let run = copy_of("harness-run-memray", "harness-run-memray");
    let dir = plots::write_report(&run).unwrap();
    let readme = read(&dir.join("README.md"));
    assert!(
        readme.contains("## Memray, native [memray:native]"),
        "{readme}"
    );
    assert!(
        readme.contains("[📄table](memray%3Anative.md)"),
        "links escape ':'"
    );
    assert!(dir.join("memray:native.md").is_file());
    assert!(dir.join("plots/memray:native.svg").is_file());
    let page = read(&dir.join("tracer-stats/memray:default/richards.md"));
    for needle in [
        "| total_num_allocations ",
        "## allocator_type_distribution",
        "| MALLOC ",
        "## metadata",
        "capture bytes per recorded event",
    ] {
        assert!(page.contains(needle), "{needle:?} missing:\n{page}");
    }
    let svg = read(&dir.join("plots/all-configs.svg"));
    assert!(svg.contains("Memray, native [memray:native]"));
    assert!(svg.contains("Memray") && svg.contains("tracemalloc") && svg.contains("our tracer"));
}

#[test]
fn versions_report_puts_each_python_in_a_column_ordered_by_version() {
    // The same fixture run twice, the second relabelled as a newer Python with one benchmark that
    // its requires-python excluded; given newest first, the report orders them oldest first.
    let old = copy_of_fixture("versions-old");
    let new = copy_of_fixture("versions-new");
    let run_json = new.join("run.json");
    let mut info: serde_json::Value = serde_json::from_str(&read(&run_json)).unwrap();
    info["system"]["python"] = "3.14.10".into();
    info["excluded"] = serde_json::json!([
        {"benchmark": "asyncio_tcp", "reason": "requires-python >=3.99 excludes 3.14.10"}
    ]);
    std::fs::write(&run_json, info.to_string()).unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-tests/versions-out");
    let _ = std::fs::remove_dir_all(&out);

    let readme = plots::write_versions_report(&[new.clone(), old.clone()], &out).unwrap();
    let page = read(&readme);
    let header = page
        .lines()
        .find(|l| l.starts_with("| configuration"))
        .expect("the table of every configuration");
    let (i311, i314) = (
        header.find("Python 3.11.7").expect("3.11 column"),
        header.find("Python 3.14.10").expect("3.14 column"),
    );
    assert!(i311 < i314, "oldest Python first: {header}");
    // Both columns are the same run: every configuration reads the same in both.
    let row = page
        .lines()
        .find(|l| l.starts_with("| tracer, default [default]"))
        .expect("a row for the default configuration");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[2], cells[3], "{row}");
    assert!(
        cells[2].contains("ALL: ") && cells[2].contains("10%: "),
        "{row}"
    );
    assert!(page.contains("## default: per benchmark"));
    assert!(page.contains("- Python 3.14.10: asyncio_tcp"), "{page}");
    for ext in ["png", "svg"] {
        assert!(
            std::fs::metadata(out.join(format!("versions.{ext}")))
                .unwrap()
                .len()
                > 1000
        );
    }
    // One run is not a comparison.
    assert!(plots::write_versions_report(&[old], &out).is_err());
}

#[test]
fn the_aa_band_is_behind_every_violin_and_in_every_summary_line() {
    // The fixture run with tracemalloc's results relabelled as an untraced configuration: an A/A
    // check with a wide band (so its benchmarks are flagged as unreliable).
    let run = copy_of_fixture("noise");
    let run_json = run.join("run.json");
    let mut info: serde_json::Value = serde_json::from_str(&read(&run_json)).unwrap();
    for c in info["configs"].as_array_mut().unwrap() {
        if c["name"] == "tracemalloc" {
            c["name"] = "baseline-aa".into();
            c["label"] = "untraced again (A/A check)".into();
            c["tracer"] = "none".into();
        }
    }
    std::fs::write(&run_json, info.to_string()).unwrap();
    std::fs::rename(
        run.join("pyperf/tracemalloc.json"),
        run.join("pyperf/baseline-aa.json"),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(run.join("tracer/tracemalloc"));

    let loaded = plots::run::load(&run).unwrap();
    let analysis = plots::analysis::analyse(&loaded);
    let aa = analysis.configs.iter().find(|a| a.aa).unwrap();
    assert!(
        aa.noise.is_none(),
        "the A/A configuration is the noise itself"
    );
    let traced = analysis
        .configs
        .iter()
        .find(|a| a.config.name == "default")
        .unwrap();
    let noise = traced
        .noise
        .as_ref()
        .expect("noise beside a traced configuration");
    let pooled = aa.all_summary.as_ref().unwrap();
    assert_eq!(noise.pooled, (pooled.q10, pooled.q90));
    let fig = plots::plot::config_figure(traced).unwrap();
    let all = fig.rows.last().unwrap();
    assert_eq!(
        (all.label.as_str(), all.aa_band),
        ("ALL", Some(noise.pooled))
    );
    for row in &fig.rows[..fig.rows.len() - 1] {
        assert_eq!(
            row.aa_band,
            noise.per_bench.get(&row.label).copied(),
            "{}",
            row.label
        );
    }
    assert!(fig.axis.min <= noise.pooled.0 && fig.axis.max >= noise.pooled.1);

    let dir = plots::write_report(&run).unwrap();
    let summary = read(&dir.join("README.md"));
    let line = summary
        .lines()
        .find(|l| l.starts_with("- Noise floor (A/A [baseline-aa], 10%-90%): "))
        .expect("a noise line");
    assert!(line.contains("unreliable on this machine"), "{line}");
    assert_eq!(
        summary.matches("- Noise floor (A/A").count(),
        analysis.configs.len() - 1,
        "every configuration but the A/A one"
    );
}
