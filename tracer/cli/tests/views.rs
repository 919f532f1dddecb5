//! The Memray-like views: `tracer tree` and `tracer summary` agree with `tracer stats` on the same
//! capture, and `tracer flamegraph`'s page, opened in headless Chromium, shows `h` under `g` under `f`
//! under `<module>` with 10.0 MiB (`--leaks` and `--native` too). On every interpreter the Python tests
//! use (see `common::pythons`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// Records `nested_bytearray.py` under `python` with `args`.
fn record(name: &str, python: &Python, args: &[&str]) -> PathBuf {
    let dir = test_dir(name);
    let cap = dir.join("cap.bin");
    expect_code(
        python
            .tracer_run()
            .arg("-o")
            .arg(&cap)
            .args(args)
            .arg(script("nested_bytearray.py")),
        0,
    );
    cap
}

/// `tracer VIEW ARGS --json CAPTURE`, run where the capture was made, parsed.
fn view_json(python: &Python, view: &str, args: &[&str], cap: &Path) -> Value {
    let out = expect_code(
        python.tracer().arg(view).args(args).arg("--json").arg(cap),
        0,
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The tree node reached by following children whose frame starts with each of `names`.
fn tree_path<'a>(root: &'a Value, names: &[&str]) -> &'a Value {
    let mut node = root;
    for name in names {
        node = node["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["frame"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{name} ("))
            })
            .unwrap_or_else(|| panic!("no {name} under {}", node["frame"]));
    }
    node
}

#[test]
fn tree_and_summary_agree_with_stats() {
    for python in &pythons() {
        for mode in [&[][..], &["--trace-python-allocators"][..]] {
            let label = format!("views-agree-{}{}", python.label(), mode.join("_"));
            let cap = record(&label, python, mode);
            let stats = python.stats_json(&cap);
            let ctx = format!("{python} {mode:?}");

            // The tree at the peak holds exactly what was live at the peak.
            let peak = view_json(python, "tree", &[], &cap);
            assert_eq!(u(&peak["bytes"]), u(&stats["peak_bytes"]), "{ctx}");
            assert_eq!(u(&peak["root"]["bytes"]), u(&stats["peak_bytes"]), "{ctx}");
            let h = tree_path(&peak["root"], &["<module>", "f", "g", "h"]);
            assert!(u(&h["bytes"]) >= 10 << 20, "{ctx}: {h}");
            // ... and its biggest path is the biggest site at the peak.
            let site = &stats["peak_by_site"][0];
            assert_eq!(site["stack"][0]["function"], "h", "{ctx}");
            assert_eq!(u(&h["bytes"]), u(&site["bytes"]), "{ctx}");
            assert_eq!(u(&h["allocations"]), u(&site["count"]), "{ctx}");

            // Every allocation, and what was never freed.
            let all = view_json(python, "tree", &["--all"], &cap);
            assert_eq!(u(&all["bytes"]), u(&stats["bytes_allocated"]), "{ctx}");
            assert_eq!(u(&all["allocations"]), u(&stats["allocations"]), "{ctx}");
            let leaks = view_json(python, "tree", &["--leaks"], &cap);
            assert_eq!(u(&leaks["bytes"]), u(&stats["leaked_bytes"]), "{ctx}");
            assert_eq!(
                u(&leaks["allocations"]),
                u(&stats["leaked_blocks"]),
                "{ctx}"
            );

            // Temporary allocations are some of all allocations (start-up makes plenty).
            let temporary = view_json(python, "tree", &["--temporary"], &cap);
            assert!(u(&temporary["allocations"]) > 0, "{ctx}");
            assert!(
                u(&temporary["allocations"]) < u(&all["allocations"]),
                "{ctx}"
            );
            assert!(u(&temporary["bytes"]) < u(&all["bytes"]), "{ctx}");

            // The summary's own columns add up to the totals; h's row is the bytearray.
            let summary = view_json(python, "summary", &[], &cap);
            let rows = summary["functions"].as_array().unwrap();
            let sum = |field: &str| rows.iter().map(|r| u(&r[field])).sum::<u64>();
            assert_eq!(sum("own_bytes"), u(&stats["bytes_allocated"]), "{ctx}");
            assert_eq!(sum("own_allocations"), u(&stats["allocations"]), "{ctx}");
            assert_eq!(u(&summary["bytes_allocated"]), u(&stats["bytes_allocated"]));
            assert_eq!(u(&summary["peak_bytes"]), u(&stats["peak_bytes"]), "{ctx}");
            let row = |function: &str| {
                rows.iter()
                    .find(|r| {
                        r["function"] == function
                            && r["file"].as_str().unwrap().ends_with("nested_bytearray.py")
                    })
                    .unwrap_or_else(|| panic!("{ctx}: no row for {function}"))
            };
            let (h, f, module) = (row("h"), row("f"), row("<module>"));
            let top = &stats["top_sites_by_bytes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["stack"][0]["function"] == "h")
                .unwrap()
                .clone();
            assert_eq!(u(&h["own_bytes"]), u(&top["bytes"]), "{ctx}");
            assert_eq!(u(&h["total_bytes"]), u(&top["bytes"]), "{ctx}");
            assert_eq!(u(&f["own_bytes"]), 0, "{ctx}: f allocates nothing itself");
            assert!(u(&f["total_bytes"]) >= u(&h["total_bytes"]), "{ctx}");
            assert!(u(&module["total_bytes"]) >= u(&f["total_bytes"]), "{ctx}");
            assert!(u(&h["live_bytes"]) >= 10 << 20, "{ctx}");
        }
    }
}

/// Headless Chromium, or None (said loudly) when it is not installed; under CI its absence fails.
fn chromium() -> Option<PathBuf> {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).is_file() {
            return Some(candidate.into());
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI needs Chromium for the flame graph test (apt-get install chromium: see .ci/run)"
        );
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPING the flame graph browser test: no /usr/bin/chromium.\n!!! Install it \
         (apt-get install -y chromium) and run the tests again.\n"
    );
    None
}

/// The page's DOM after its scripts ran, as Chromium serialises it.
fn dump_dom(browser: &Path, page: &Path) -> String {
    let profile = page.with_file_name("chromium-profile");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One frame of the flame graph as the browser holds it.
#[derive(Debug, Clone)]
struct DomFrame {
    title: String,
    /// Sample range and row (inferno's `fg:x`, `fg:w` and `y`).
    x: u64,
    w: u64,
    y: i64,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(tag[i..i + tag[i..].find('"')?].to_string())
}

fn dom_frames(dom: &str) -> Vec<DomFrame> {
    let mut out = Vec::new();
    for part in dom.split("<g><title>").skip(1) {
        let Some((title, rest)) = part.split_once("</title>") else {
            continue;
        };
        let Some(rect) = rest.split("<rect").nth(1).and_then(|r| r.split('>').next()) else {
            continue;
        };
        let num = |n: &str| attribute(rect, n).and_then(|v| v.parse::<i64>().ok());
        if let (Some(x), Some(w), Some(y)) = (num("fg:x"), num("fg:w"), num("y")) {
            out.push(DomFrame {
                title: unescape(title),
                x: x as u64,
                w: w as u64,
                y,
            });
        }
    }
    out
}

/// The frames from the root to `frame`: each one row below, covering it.
fn ancestors(frames: &[DomFrame], frame: &DomFrame) -> Vec<String> {
    let mut rows: Vec<i64> = frames.iter().map(|f| f.y).collect();
    rows.sort_unstable();
    rows.dedup();
    let mut out = vec![frame.title.clone()];
    let mut current = frame.clone();
    // The root is drawn lowest (largest y); the parent is the next row down, covering the frame.
    while let Some(parent) = rows.iter().find(|&&y| y > current.y).and_then(|&below| {
        frames
            .iter()
            .find(|p| p.y == below && p.x <= current.x && current.x < p.x + p.w)
    }) {
        out.push(parent.title.clone());
        current = parent.clone();
    }
    out
}

/// Writes the flame graph of `cap` with `args`, opens it in Chromium and returns its frames.
fn flamegraph_in_browser(
    browser: &Path,
    python: &Python,
    cap: &Path,
    args: &[&str],
) -> Vec<DomFrame> {
    let page = cap.with_file_name(format!("flame{}.html", args.join("")));
    expect_code(
        python
            .tracer()
            .arg("flamegraph")
            .arg(cap)
            .arg("-o")
            .arg(&page)
            .args(args),
        0,
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the page must not fetch anything"
    );
    let dom = dump_dom(browser, &page);
    // The page's own script ran after inferno's and counted the frames it laid out.
    let counted = dom
        .split("data-tracer-frames=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| {
            panic!(
                "the page's script did not run: {}",
                &dom[..dom.len().min(2000)]
            )
        });
    let frames = dom_frames(&dom);
    assert!(
        counted > 0 && counted == frames.len(),
        "{counted} vs {}",
        frames.len()
    );
    frames
}

fn find<'a>(frames: &'a [DomFrame], prefix: &str) -> &'a DomFrame {
    frames
        .iter()
        .find(|f| f.title.starts_with(prefix))
        .unwrap_or_else(|| {
            let titles: Vec<&str> = frames.iter().map(|f| f.title.as_str()).collect();
            panic!("no frame {prefix:?} among {titles:#?}")
        })
}

fn names(path: &[String]) -> Vec<String> {
    path.iter()
        .map(|t| t.split(" (").next().unwrap().to_string())
        .collect()
}

#[test]
fn flamegraph_in_chromium_shows_h_under_g_under_f() {
    let Some(browser) = chromium() else {
        return;
    };
    for python in &pythons() {
        let cap = record(&format!("views-flame-{}", python.label()), python, &[]);
        let stats = python.stats_json(&cap);
        let ctx = python.to_string();

        // At the peak (the default): h under g under f under <module>, 10.0 MiB.
        let frames = flamegraph_in_browser(&browser, python, &cap, &[]);
        let h = find(&frames, "h (");
        assert!(
            h.title.contains("nested_bytearray.py:3) (10.0 MiB"),
            "{ctx}: {}",
            h.title
        );
        assert!(h.title.contains("1 allocation"), "{ctx}: {}", h.title);
        assert_eq!(
            names(&ancestors(&frames, h)),
            ["h", "g", "f", "<module>", "all"],
            "{ctx}"
        );
        let all = find(&frames, "all (");
        let peak = tracer_capture::text::thousands(u(&stats["peak_bytes"]));
        assert!(
            all.title.contains(&format!(" {peak} bytes")),
            "{ctx}: {}",
            all.title
        );

        // --leaks: what was never freed, as stats counts it. The bytearray is freed when the
        // interpreter clears the module at exit, before tracing stops: h is not among the leaks.
        let frames = flamegraph_in_browser(&browser, python, &cap, &["--leaks"]);
        let all = find(&frames, "all (");
        let leaked = tracer_capture::text::thousands(u(&stats["leaked_bytes"]));
        assert!(
            all.title.contains(&format!(" {leaked} bytes")),
            "{ctx}: {}",
            all.title
        );
        let h_leaks = stats["leaks_by_site"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["stack"][0]["function"] == "h");
        assert_eq!(
            frames.iter().any(|f| f.title.starts_with("h (")),
            h_leaks,
            "{ctx}"
        );
        let blocks = u(&stats["leaked_blocks"]);
        let count = if blocks == 1 {
            "1 allocation".to_string()
        } else {
            format!("{} allocations", tracer_capture::text::thousands(blocks))
        };
        assert!(all.title.contains(&count), "{ctx}: {} ({count})", all.title);
    }
}

#[test]
fn native_flamegraph_puts_the_allocator_under_h() {
    let Some(browser) = chromium() else {
        return;
    };
    // pyenv's 3.11 has debug information: its native frames have names and lines.
    let python = &pythons()[0];
    let cap = record("views-flame-native", python, &["--native"]);
    let frames = flamegraph_in_browser(&browser, python, &cap, &["--native"]);
    let alloc = frames
        .iter()
        .filter(|f| f.title.starts_with("malloc ("))
        .find(|f| f.title.contains("(10.0 MiB"))
        .unwrap_or_else(|| panic!("no 10 MiB malloc frame"));
    let path = names(&ancestors(&frames, alloc));
    let at = |n: &str| {
        path.iter()
            .position(|p| p == n)
            .unwrap_or_else(|| panic!("{n} not in {path:?}"))
    };
    // Innermost first: malloc, ... PyByteArray_Resize ..., h, g, f, <module>, ... main ..., all.
    assert!(at("PyByteArray_Resize") < at("h"), "{path:?}");
    assert!(
        at("h") < at("g") && at("g") < at("f") && at("f") < at("<module>"),
        "{path:?}"
    );
    assert_eq!(path.last().map(String::as_str), Some("all"));
    // Without --native, the same capture shows Python frames only.
    let frames = flamegraph_in_browser(&browser, python, &cap, &[]);
    assert!(!frames
        .iter()
        .any(|f| f.title.starts_with("PyByteArray_Resize")));
    find(&frames, "h (");
}
