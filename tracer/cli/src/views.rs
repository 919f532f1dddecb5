//! Provides the Memray-like views of a capture: `tracer flamegraph` (a self-contained HTML flame graph,
//! drawn by the `inferno` crate), `tracer tree` (the biggest allocation paths as an indented tree) and
//! `tracer summary` (per function: total, own and live bytes, allocation counts). All three are built
//! from the per-stack totals that the streaming reader's replay keeps (see `report::analyse`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use tracer_capture::analysis::Totals;
use tracer_capture::native::{hybrid, HybridFrame};
use tracer_capture::text::thousands;
use tracer_capture::{Location, NativeTree, StackTotals};

use crate::report::{analyse, human_bytes, Analysed};

/// Which allocations a view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// Memory live when the heap was at its peak (Memray's "high watermark").
    Peak,
    /// Every allocation, freed or not.
    All,
    /// What was never freed (live when tracing stopped).
    Leaks,
    /// Allocations freed before their thread's next allocation (Memray's "temporary allocations").
    Temporary,
}

impl Which {
    pub fn from_flags(all: bool, leaks: bool, temporary: bool) -> Which {
        if all {
            Which::All
        } else if leaks {
            Which::Leaks
        } else if temporary {
            Which::Temporary
        } else {
            Which::Peak
        }
    }

    fn pick(self, t: &StackTotals) -> Totals {
        match self {
            Which::Peak => t.at_peak,
            Which::All => t.allocated,
            Which::Leaks => t.leaked,
            Which::Temporary => t.temporary,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Which::Peak => "memory live at the peak",
            Which::All => "all allocations",
            Which::Leaks => "memory never freed (live at exit)",
            Which::Temporary => "temporary allocations (freed before the thread's next allocation)",
        }
    }
}

/// One frame of a view: a Python function or a native one, outermost first in a stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ViewFrame {
    function: String,
    /// The source file (Python; native with debug information), else the library.
    location: String,
    line: Option<u32>,
    native: bool,
}

impl ViewFrame {
    fn python(l: &Location) -> ViewFrame {
        ViewFrame {
            function: l.function.clone(),
            location: l.file.clone(),
            line: l.line,
            native: false,
        }
    }

    fn pseudo(name: &str) -> ViewFrame {
        ViewFrame {
            function: name.into(),
            location: String::new(),
            line: None,
            native: false,
        }
    }

    /// `function (file:line)`.
    fn label(&self) -> String {
        match (self.location.is_empty(), self.line) {
            (true, _) => self.function.clone(),
            (false, Some(line)) => format!("{} ({}:{line})", self.function, self.location),
            (false, None) => format!("{} ({})", self.function, self.location),
        }
    }
}

/// The frames (outermost first) and the totals of every stack pair with something to show.
fn stacks(a: &mut Analysed, which: Which, native: bool) -> Result<Vec<(Vec<ViewFrame>, Totals)>> {
    if native && a.cap.native.is_empty() {
        bail!("this capture has no native stacks: record it with `tracer run --native`");
    }
    let mut out = Vec::new();
    for t in &a.totals {
        let totals = which.pick(t);
        if totals.count == 0 {
            continue;
        }
        let python: Vec<Location> = a
            .cap
            .stacks
            .frames(t.stack)
            .into_iter()
            .map(|f| Location::resolve(&a.cap.codes, f))
            .collect();
        let mut frames: Vec<ViewFrame> = if native && t.native != NativeTree::ROOT {
            let sym = a
                .symbolizer
                .as_mut()
                .expect("a native capture has a symbolizer");
            let native_frames = sym.stack(&a.cap.native.ips(t.native));
            let (h, _) = hybrid(&native_frames, &python);
            h.iter()
                .map(|f| match f {
                    HybridFrame::Python(l) => ViewFrame::python(l),
                    HybridFrame::Native(n) => ViewFrame {
                        function: n.function.clone(),
                        location: n.file.clone().unwrap_or_else(|| n.library.clone()),
                        line: if n.file.is_some() { n.line } else { None },
                        native: true,
                    },
                })
                .collect()
        } else {
            python.iter().map(ViewFrame::python).collect()
        };
        if frames.is_empty() {
            frames.push(ViewFrame::pseudo(if native {
                "(no native stack)"
            } else {
                "(no Python frame)"
            }));
        }
        frames.reverse();
        out.push((frames, totals));
    }
    Ok(out)
}

/// A node of the call tree: a path from the outermost frame.
#[derive(Debug, Default)]
struct Node {
    label: String,
    totals: Totals,
    children: Vec<Node>,
    index: HashMap<String, usize>,
}

impl Node {
    fn add(&mut self, path: &[String], t: Totals) {
        self.totals.count += t.count;
        self.totals.bytes = self.totals.bytes.saturating_add(t.bytes);
        if let Some((first, rest)) = path.split_first() {
            let i = match self.index.get(first) {
                Some(i) => *i,
                None => {
                    self.children.push(Node {
                        label: first.clone(),
                        ..Node::default()
                    });
                    self.index.insert(first.clone(), self.children.len() - 1);
                    self.children.len() - 1
                }
            };
            self.children[i].add(rest, t);
        }
    }

    fn sort(&mut self) {
        self.children.sort_by(|a, b| {
            b.totals
                .bytes
                .cmp(&a.totals.bytes)
                .then(b.totals.count.cmp(&a.totals.count))
                .then(a.label.cmp(&b.label))
        });
        self.index.clear();
        for c in &mut self.children {
            c.sort();
        }
    }

    fn find(&self, path: &[&str]) -> Option<&Node> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => self.children.iter().find(|c| c.label == *first)?.find(rest),
        }
    }
}

fn build_tree(stacks: &[(Vec<ViewFrame>, Totals)]) -> Node {
    let mut root = Node {
        label: "<root>".into(),
        ..Node::default()
    };
    for (frames, t) in stacks {
        let path: Vec<String> = frames.iter().map(ViewFrame::label).collect();
        root.add(&path, *t);
    }
    root.sort();
    root
}

fn allocations(n: u64) -> String {
    if n == 1 {
        "1 allocation".into()
    } else {
        format!("{} allocations", thousands(n))
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

// --- tracer tree -------------------------------------------------------------------------------

#[derive(Serialize)]
struct TreeJson {
    file: String,
    view: Which,
    bytes: u64,
    allocations: u64,
    root: TreeNodeJson,
}

#[derive(Serialize)]
struct TreeNodeJson {
    frame: String,
    bytes: u64,
    allocations: u64,
    /// Children left out (`--max-children`, `--min-percent`), and what they held.
    #[serde(skip_serializing_if = "Option::is_none")]
    elided: Option<Elided>,
    children: Vec<TreeNodeJson>,
}

#[derive(Serialize, Clone, Copy)]
struct Elided {
    paths: u64,
    bytes: u64,
    allocations: u64,
}

/// Options of `tracer tree`.
pub struct TreeOptions {
    pub which: Which,
    pub native: bool,
    pub json: bool,
    pub max_children: usize,
    pub min_percent: f64,
}

/// Children shown under a node, and what the others hold.
fn shown<'a>(n: &'a Node, total: u64, o: &TreeOptions) -> (Vec<&'a Node>, Option<Elided>) {
    let mut shown = Vec::new();
    let mut elided = Elided {
        paths: 0,
        bytes: 0,
        allocations: 0,
    };
    for c in &n.children {
        if shown.len() < o.max_children && percent(c.totals.bytes, total) >= o.min_percent {
            shown.push(c);
        } else {
            elided.paths += 1;
            elided.bytes += c.totals.bytes;
            elided.allocations += c.totals.count;
        }
    }
    (shown, (elided.paths > 0).then_some(elided))
}

fn tree_json(n: &Node, total: u64, o: &TreeOptions) -> TreeNodeJson {
    let (children, elided) = shown(n, total, o);
    TreeNodeJson {
        frame: n.label.clone(),
        bytes: n.totals.bytes,
        allocations: n.totals.count,
        elided,
        children: children.iter().map(|c| tree_json(c, total, o)).collect(),
    }
}

fn tree_text(o_text: &mut String, n: &Node, total: u64, prefix: &str, last: bool, o: &TreeOptions) {
    let (branch, indent) = if prefix.is_empty() && n.label == "<root>" {
        ("", "")
    } else if last {
        ("└── ", "    ")
    } else {
        ("├── ", "│   ")
    };
    let _ = writeln!(
        o_text,
        "{prefix}{branch}{} ({:.1}%, {}) {}",
        human_bytes(n.totals.bytes),
        percent(n.totals.bytes, total),
        allocations(n.totals.count),
        n.label
    );
    let child_prefix = format!("{prefix}{indent}");
    let (children, elided) = shown(n, total, o);
    for (i, c) in children.iter().enumerate() {
        let last = i + 1 == children.len() && elided.is_none();
        tree_text(o_text, c, total, &child_prefix, last, o);
    }
    if let Some(e) = elided {
        let _ = writeln!(
            o_text,
            "{child_prefix}└── … {} more {} ({}, {})",
            e.paths,
            if e.paths == 1 { "path" } else { "paths" },
            human_bytes(e.bytes),
            allocations(e.allocations)
        );
    }
}

pub fn tree(path: &Path, o: &TreeOptions) -> Result<()> {
    let mut a = analyse(path)?;
    let stacks = stacks(&mut a, o.which, o.native)?;
    let root = build_tree(&stacks);
    let total = root.totals.bytes;
    if o.json {
        let out = TreeJson {
            file: path.display().to_string(),
            view: o.which,
            bytes: total,
            allocations: root.totals.count,
            root: tree_json(&root, total, o),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = format!(
            "{}: {} in {} ({})\n\n",
            path.display(),
            human_bytes(total),
            allocations(root.totals.count),
            o.which.describe()
        );
        tree_text(&mut text, &root, total, "", true, o);
        print!("{text}");
    }
    Ok(())
}

// --- tracer summary ----------------------------------------------------------------------------

/// One function's row of `tracer summary`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FunctionRow {
    pub function: String,
    /// Python source file; for native frames the source file or the library.
    pub file: String,
    pub native: bool,
    /// Bytes and allocations made in the function or anything it called.
    pub total_bytes: u64,
    pub allocations: u64,
    /// Made in the function itself (its frame innermost).
    pub own_bytes: u64,
    pub own_allocations: u64,
    /// Live at the peak, in the function or anything it called.
    pub live_bytes: u64,
    pub live_allocations: u64,
}

#[derive(Serialize)]
struct SummaryJson {
    file: String,
    bytes_allocated: u64,
    allocations: u64,
    peak_bytes: u64,
    functions: Vec<FunctionRow>,
}

pub fn summary(path: &Path, native: bool, json: bool, limit: usize) -> Result<()> {
    let mut a = analyse(path)?;
    let all = stacks(&mut a, Which::All, native)?;
    let peak = stacks(&mut a, Which::Peak, native)?;
    let mut rows: HashMap<(String, String, bool), FunctionRow> = HashMap::new();
    let mut add = |frames: &[ViewFrame], t: &Totals, live: bool| {
        let mut seen = std::collections::HashSet::new();
        for (i, f) in frames.iter().enumerate() {
            let key = (f.function.clone(), f.location.clone(), f.native);
            // A recursive function counts once per stack.
            let first = seen.insert(key.clone());
            let row = rows.entry(key).or_insert_with(|| FunctionRow {
                function: f.function.clone(),
                file: f.location.clone(),
                native: f.native,
                ..FunctionRow::default()
            });
            let innermost = i + 1 == frames.len();
            if live {
                if first {
                    row.live_bytes += t.bytes;
                    row.live_allocations += t.count;
                }
            } else {
                if first {
                    row.total_bytes += t.bytes;
                    row.allocations += t.count;
                }
                if innermost {
                    row.own_bytes += t.bytes;
                    row.own_allocations += t.count;
                }
            }
        }
    };
    for (frames, t) in &all {
        add(frames, t, false);
    }
    for (frames, t) in &peak {
        add(frames, t, true);
    }
    let mut rows: Vec<FunctionRow> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        b.total_bytes
            .cmp(&a.total_bytes)
            .then(b.own_bytes.cmp(&a.own_bytes))
            .then(a.function.cmp(&b.function))
            .then(a.file.cmp(&b.file))
    });
    let bytes_allocated: u64 = all.iter().map(|(_, t)| t.bytes).sum();
    let count: u64 = all.iter().map(|(_, t)| t.count).sum();
    let peak_bytes: u64 = peak.iter().map(|(_, t)| t.bytes).sum();
    if json {
        let out = SummaryJson {
            file: path.display().to_string(),
            bytes_allocated,
            allocations: count,
            peak_bytes,
            functions: rows,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} allocated in {}; {} live at the peak\n",
        path.display(),
        human_bytes(bytes_allocated),
        allocations(count),
        human_bytes(peak_bytes)
    );
    let _ = writeln!(
        o,
        "{:>11} {:>6} {:>11} {:>11} {:>6} {:>12} {:>12}  function (file)",
        "total", "%", "own", "live@peak", "%", "allocations", "own allocs"
    );
    for r in rows.iter().take(limit) {
        let frame = ViewFrame {
            function: r.function.clone(),
            location: r.file.clone(),
            line: None,
            native: r.native,
        };
        let _ = writeln!(
            o,
            "{:>11} {:>5.1}% {:>11} {:>11} {:>5.1}% {:>12} {:>12}  {}",
            human_bytes(r.total_bytes),
            percent(r.total_bytes, bytes_allocated),
            human_bytes(r.own_bytes),
            human_bytes(r.live_bytes),
            percent(r.live_bytes, peak_bytes),
            thousands(r.allocations),
            thousands(r.own_allocations),
            frame.label()
        );
    }
    if rows.len() > limit {
        let _ = writeln!(o, "… {} more functions (--limit)", rows.len() - limit);
    }
    print!("{o}");
    Ok(())
}

// --- tracer flamegraph -------------------------------------------------------------------------

/// A frame name as the folded format allows it (`;` separates frames).
fn folded_name(label: &str) -> String {
    label.replace(';', ":")
}

pub fn flamegraph(path: &Path, output: &Path, which: Which, native: bool) -> Result<()> {
    let mut a = analyse(path)?;
    let stacks = stacks(&mut a, which, native)?;
    let mut tree = Node {
        label: "all".into(),
        ..Node::default()
    };
    let mut lines = Vec::with_capacity(stacks.len());
    for (frames, t) in &stacks {
        let names: Vec<String> = frames.iter().map(|f| folded_name(&f.label())).collect();
        tree.add(&names, *t);
        // A frame of 0 bytes (malloc(0)) still shows, one byte wide, so its count can be read.
        lines.push(format!("{} {}", names.join(";"), t.bytes.max(1)));
    }
    let total = tree.totals;
    let command = a.cap.header.command_line.join(" ");
    let title = format!(
        "{}: {} in {}",
        which.describe(),
        human_bytes(total.bytes),
        allocations(total.count)
    );
    let mut svg = Vec::new();
    if lines.is_empty() {
        // inferno draws nothing without samples: say so in the page instead.
        svg.extend_from_slice(
            format!(
                "<p class=\"empty\">No allocations to show ({}).</p>",
                which.describe()
            )
            .as_bytes(),
        );
    } else {
        let mut opts = inferno::flamegraph::Options::default();
        opts.title = title.clone();
        opts.subtitle = Some(format!(
            "{} ({}) · hover a frame for its bytes and allocations, click to zoom",
            if command.is_empty() {
                "?"
            } else {
                command.as_str()
            },
            path.display()
        ));
        opts.count_name = "bytes".into();
        opts.name_type = "Frame:".into();
        opts.colors =
            inferno::flamegraph::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
        opts.hash = true;
        opts.deterministic = true;
        inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut svg)
            .context("drawing the flame graph")?;
    }
    let svg = String::from_utf8(svg).context("the flame graph is not UTF-8")?;
    let svg = annotate_titles(&svg, &tree);
    let html = page(&title, &svg);
    std::fs::write(output, html).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "tracer: wrote {} ({}: {} in {})",
        output.display(),
        which.describe(),
        human_bytes(total.bytes),
        allocations(total.count)
    );
    Ok(())
}

/// The HTML page around the SVG (inline: no file or network fetch when opened).
fn page(title: &str, svg: &str) -> String {
    // The SVG's own prolog and doctype do not belong inside HTML.
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ margin: 0; font-family: sans-serif; background: #fff; }}
svg {{ display: block; width: 100%; }}
p.empty {{ margin: 2em; }}
</style>
</head>
<body>
{body}
<script>
// inferno's script starts from the SVG's load event; in an HTML page that event may come before
// this point or not at all, so start it here when it did not run.
window.addEventListener("load", function () {{
  var svg = document.querySelector("svg");
  if (svg && typeof init === "function" && typeof details === "undefined") {{ init({{target: svg}}); }}
  document.body.setAttribute("data-tracer-frames", String(document.querySelectorAll("#frames > g").length));
}});
</script>
</body>
</html>
"##,
        title = html_escape(title),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let end = tag[i..].find('"')?;
    Some(&tag[i..i + end])
}

/// Rewrites each frame's tooltip (`<title>`) from inferno's "name (N bytes, P%)" to one with the size
/// in binary units and the allocation count. A frame is found in `tree` by its path: its parent is
/// the frame one level down whose sample range covers it (inferno writes `fg:x`, `fg:w` and `y`).
fn annotate_titles(svg: &str, tree: &Node) -> String {
    struct Frame {
        title: (usize, usize),
        name: String,
        x: u64,
        w: u64,
        y: i64,
    }
    let mut frames = Vec::new();
    let mut pos = 0;
    while let Some(start) = svg[pos..]
        .find("<g><title>")
        .map(|i| pos + i + "<g><title>".len())
    {
        let Some(end) = svg[start..].find("</title>").map(|i| start + i) else {
            break;
        };
        let rect_start = end + svg[end..].find("<rect").unwrap_or(0);
        let rect_end = rect_start + svg[rect_start..].find("/>").unwrap_or(0);
        let rect = &svg[rect_start..rect_end];
        let parse = |n: &str| attr(rect, n).and_then(|v| v.parse::<i64>().ok());
        let title = xml_unescape(&svg[start..end]);
        // Strip inferno's " (N bytes, P%)".
        let name = match title.rfind(" (") {
            Some(i) if title.ends_with("%)") => title[..i].to_string(),
            _ => title.clone(),
        };
        if let (Some(x), Some(w), Some(y)) = (parse("fg:x"), parse("fg:w"), parse("y")) {
            frames.push(Frame {
                title: (start, end),
                name,
                x: x as u64,
                w: w as u64,
                y,
            });
        }
        pos = end;
    }
    // Depth from the rows' y (the root at the bottom).
    let mut ys: Vec<i64> = frames.iter().map(|f| f.y).collect();
    ys.sort_unstable_by(|a, b| b.cmp(a));
    ys.dedup();
    let depth_of: HashMap<i64, usize> = ys.iter().enumerate().map(|(d, y)| (*y, d)).collect();
    let mut by_depth: Vec<Vec<usize>> = vec![Vec::new(); ys.len()];
    for (i, f) in frames.iter().enumerate() {
        by_depth[depth_of[&f.y]].push(i);
    }
    let mut paths: Vec<Option<Vec<String>>> = vec![None; frames.len()];
    for depth in 0..by_depth.len() {
        for &i in &by_depth[depth] {
            let path = if depth == 0 {
                Some(Vec::new())
            } else {
                by_depth[depth - 1]
                    .iter()
                    .find(|&&p| {
                        frames[p].x <= frames[i].x && frames[i].x < frames[p].x + frames[p].w
                    })
                    .and_then(|&p| paths[p].clone())
                    .map(|mut v| {
                        v.push(frames[i].name.clone());
                        v
                    })
            };
            paths[i] = path;
        }
    }
    let total = tree.totals.bytes;
    let mut out = String::with_capacity(svg.len() + frames.len() * 32);
    let mut last = 0;
    for (f, path) in frames.iter().zip(&paths) {
        let Some(path) = path else { continue };
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let Some(node) = tree.find(&refs) else {
            continue;
        };
        let text = format!(
            "{} ({}, {} bytes, {}, {:.2}%)",
            f.name,
            human_bytes(node.totals.bytes),
            thousands(node.totals.bytes),
            allocations(node.totals.count),
            percent(node.totals.bytes, total)
        );
        out.push_str(&svg[last..f.title.0]);
        out.push_str(&html_escape(&text));
        last = f.title.1;
    }
    out.push_str(&svg[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(count: u64, bytes: u64) -> Totals {
        Totals { count, bytes }
    }

    #[test]
    fn tree_merges_paths_and_sorts_biggest_first() {
        let f = |n: &str| ViewFrame::pseudo(n);
        let stacks = vec![
            (vec![f("m"), f("a")], t(1, 10)),
            (vec![f("m"), f("b")], t(2, 30)),
            (vec![f("m"), f("a"), f("c")], t(1, 5)),
        ];
        let root = build_tree(&stacks);
        assert_eq!(root.totals, t(4, 45));
        let m = &root.children[0];
        assert_eq!(m.label, "m");
        assert_eq!(m.children[0].label, "b");
        assert_eq!(m.children[1].totals, t(2, 15));
        assert_eq!(root.find(&["m", "a", "c"]).unwrap().totals, t(1, 5));
    }

    #[test]
    fn titles_get_sizes_and_counts() {
        let mut tree = Node {
            label: "all".into(),
            ..Node::default()
        };
        tree.add(
            &["<module> (x.py:1)".into(), "f (x.py:2)".into()],
            t(3, 2048),
        );
        let mut opts = inferno::flamegraph::Options::default();
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut opts, ["<module> (x.py:1);f (x.py:2) 2048"], &mut svg)
            .unwrap();
        let svg = annotate_titles(&String::from_utf8(svg).unwrap(), &tree);
        assert!(
            svg.contains("f (x.py:2) (2.0 KiB, 2,048 bytes, 3 allocations, 100.00%)"),
            "{svg}"
        );
        assert!(svg.contains("&lt;module&gt; (x.py:1) (2.0 KiB"), "{svg}");
    }
}
