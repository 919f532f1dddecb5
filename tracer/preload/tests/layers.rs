//! The preload's layers: each module may reference (`crate::…`, `super::…`, `use` lists) only the
//! modules below it in [`ORDER`]. The check reads the sources, so a new upward reference (an import
//! circle in the making) fails `cargo test`. `docs/architecture.md` explains the layers.

use std::collections::BTreeSet;
use std::path::Path;

/// Every module, top layer first. A module may use only modules listed after it.
const ORDER: &[&str] = &[
    // Entry points: what the program or the interpreter calls.
    "hooks",
    "descriptors",
    "lifecycle",
    "python/module",
    "python/pymem",
    "python/profile",
    // The recorder: the thread's buffer and what it writes (stacks).
    "track",
    "buffer",
    "python/records",
    "python",
    "python/shadow",
    "python/codes",
    "python/walk",
    "python/layout",
    "python/capi",
    "python/memory",
    "native",
    "order",
    "inner_maps",
    // The writer: queue, capture file, exit flush.
    "writer",
    "capture_fd",
    // Shared pieces below them all.
    "state",
    "config",
    "counters",
    "sync",
    "libc_alloc",
    "forward",
    "lookup",
    "arena",
    "tls",
    "clock",
];

fn rank(module: &str) -> usize {
    ORDER
        .iter()
        .position(|m| *m == module)
        .unwrap_or_else(|| panic!("module {module} is not in the layer order: add it to ORDER"))
}

/// The module a path names, from the module `from` (`crate::a::b` or `super::b`).
fn resolve(from: &str, root: &str, rest: &str) -> Option<String> {
    let first: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let parent = match root {
        "crate" => String::new(),
        // `super` in python/x.rs is `python`; in a top-level file it only appears in test modules.
        _ if from.starts_with("python/") => "python".into(),
        _ => return None,
    };
    let base = if parent.is_empty() {
        first.clone()
    } else {
        format!("{parent}/{first}")
    };
    if first.is_empty() || first == "self" {
        return (!parent.is_empty()).then_some(parent);
    }
    if ORDER.contains(&base.as_str()) {
        // `crate::python::records` names the submodule.
        let after = &rest[first.len()..];
        if base == "python" {
            if let Some(sub) = after.strip_prefix("::") {
                let sub: String = sub
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if ORDER.contains(&format!("python/{sub}").as_str()) {
                    return Some(format!("python/{sub}"));
                }
            }
        }
        return Some(base);
    }
    // An item of the parent module (`super::PyThread`, `crate::ALLOCATOR`).
    (!parent.is_empty()).then_some(parent)
}

/// The modules `source` (of module `from`) references.
fn references(from: &str, source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") || code.contains("use super::*") {
            continue;
        }
        if from == "python" {
            // python/mod.rs names its submodules without a prefix (`profile::stack`).
            for sub in ORDER.iter().filter_map(|m| m.strip_prefix("python/")) {
                let needle = format!("{sub}::");
                let names_it = code.match_indices(&needle).any(|(i, _)| {
                    let before = code[..i].chars().last();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if names_it {
                    out.insert(format!("python/{sub}"));
                }
            }
        }
        for root in ["crate", "super"] {
            let needle = format!("{root}::");
            let mut rest = code;
            while let Some(i) = rest.find(&needle) {
                let before = rest[..i].chars().last();
                rest = &rest[i + needle.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                if let Some(group) = rest.strip_prefix('{') {
                    // `use crate::{a, b::c}`: every item of the group.
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        out.extend(resolve(from, root, item.trim()));
                    }
                } else {
                    out.extend(resolve(from, root, rest));
                }
            }
        }
    }
    out.remove(from);
    out
}

fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap().with_extension("");
    let name = rel.to_str().unwrap().to_string();
    name.strip_suffix("/mod").unwrap_or(&name).to_string()
}

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in [src.clone(), src.join("python")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut upward = Vec::new();
    for path in &files {
        let module = module_of(path, &src);
        if module == "lib" {
            continue; // declares the modules and re-exports the entry points
        }
        let source = std::fs::read_to_string(path).unwrap();
        for used in references(&module, &source) {
            if rank(&used) > rank(&module) {
                continue;
            }
            upward.push(format!("{module} uses {used}, a module above it"));
        }
    }
    assert!(
        upward.is_empty(),
        "upward references:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_reference() {
    let refs = references(
        "writer",
        "use crate::buffer::ThreadBuffer;\nuse crate::{sync, tls::Guard};",
    );
    assert_eq!(
        refs,
        ["buffer", "sync", "tls"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert!(rank("buffer") < rank("writer"));
    let refs = references(
        "python",
        "    profile::install(api);\n    let x = crate::python::walk::f();",
    );
    assert_eq!(
        refs,
        ["python/profile", "python/walk"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let refs = references("python/records", "use super::{codes, walk, PyThread};");
    assert_eq!(
        refs,
        ["python", "python/codes", "python/walk"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}
