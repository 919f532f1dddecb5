//! Provides what native mode adds to a capture: [`NativeTree`] (the interned native stacks, as
//! instruction pointers), the module map, the [`NativeFrame`] a symbolizer turns an instruction
//! pointer into, and [`hybrid`], which merges a native stack with the Python stack it ran.
//!
//! Symbolization itself reads files (the traced program's ELF objects) and so lives in the CLI; this
//! module stays pure.

use std::collections::HashMap;

use serde::Serialize;

use crate::stacks::Location;

/// A native stack: a node of the capture's native trie (0: none recorded).
pub type NativeId = u32;

/// Deepest native stack followed when reading (the preload caps its unwind far below this).
const MAX_DEPTH: usize = 4096;

/// Every native stack the capture defines. The preload keeps a trie per thread, so one stack seen on
/// two threads has two ids in the file; the tree maps each file id to one id per distinct stack, so
/// that equal stacks are one site whatever thread ran them.
#[derive(Debug, Clone, Default)]
pub struct NativeTree {
    /// Stack id → (parent, instruction pointer).
    nodes: HashMap<NativeId, (NativeId, u64)>,
    by_frame: HashMap<(NativeId, u64), NativeId>,
    /// File id → stack id.
    ids: HashMap<NativeId, NativeId>,
}

impl NativeTree {
    pub const ROOT: NativeId = 0;

    /// Adds the file's node `id` (its parent must come first, as the preload writes them).
    pub fn insert(&mut self, id: NativeId, parent: NativeId, ip: u64) {
        if id == Self::ROOT {
            return;
        }
        let canonical = self.intern(self.id(parent), ip);
        self.ids.insert(id, canonical);
    }

    /// The stack of `parent` with `ip` as its innermost frame (made if the capture has no such stack).
    pub fn intern(&mut self, parent: NativeId, ip: u64) -> NativeId {
        let next = self.nodes.len() as NativeId + 1;
        let nodes = &mut self.nodes;
        *self.by_frame.entry((parent, ip)).or_insert_with(|| {
            nodes.insert(next, (parent, ip));
            next
        })
    }

    /// The innermost frame of a stack and the stack around it.
    pub fn node(&self, id: NativeId) -> Option<(NativeId, u64)> {
        self.nodes.get(&id).copied()
    }

    /// The stack id of the file's node `id` (0 for an id the capture never defined).
    pub fn id(&self, file_id: NativeId) -> NativeId {
        self.ids.get(&file_id).copied().unwrap_or(Self::ROOT)
    }

    /// The instruction pointers of a stack, innermost first (return addresses, except that the
    /// innermost one is the tracer's hook: see `docs/capture-format.md`).
    pub fn ips(&self, mut id: NativeId) -> Vec<u64> {
        let mut out = Vec::new();
        while id != Self::ROOT && out.len() < MAX_DEPTH {
            let Some(&(parent, ip)) = self.nodes.get(&id) else {
                break;
            };
            out.push(ip);
            id = parent;
        }
        out
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// A native frame as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeFrame {
    /// The instruction pointer as recorded.
    pub ip: u64,
    /// Demangled function name, or `??` when unknown.
    pub function: String,
    /// File name of the object (`libc.so.6`), or `?` when the address is in no known module.
    pub library: String,
    /// Source file and line, where debug information has them.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The frame was inlined into the one after it (same instruction pointer).
    pub inlined: bool,
}

impl std::fmt::Display for NativeFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}", self.function, self.library)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, ", {file}:{line})"),
            (Some(file), None) => write!(f, ", {file})"),
            _ => write!(f, ")"),
        }
    }
}

/// The CPython function that evaluates Python frames (3.11–3.13).
pub const EVAL_FRAME: &str = "_PyEval_EvalFrameDefault";

/// One frame of a hybrid stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HybridFrame {
    Native(NativeFrame),
    Python(Location),
}

impl std::fmt::Display for HybridFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HybridFrame::Native(n) => write!(f, "{n}"),
            HybridFrame::Python(p) => write!(f, "{p} [py]"),
        }
    }
}

/// Merges a native stack with the Python stack it ran (both innermost first): each run of consecutive
/// `_PyEval_EvalFrameDefault` frames is replaced by Python frames. Returns the stack and whether the
/// split was certain.
///
/// On 3.11+ one evaluation-loop invocation runs several Python frames (Python-to-Python calls do not
/// recurse in C), and the capture does not record where each invocation starts (CPython's entry
/// frames). So with `E` runs and `P` Python frames, the innermost `E - 1` runs get one Python frame
/// each and the outermost run gets the rest: exact when `E == 1` or `P == E`, otherwise a guess about
/// which run the surplus frames belong to (the frames themselves and their order are always right).
/// Without Python frames, the native stack is returned unchanged; Python frames left over (more runs
/// than frames cannot happen with a complete Python stack) are dropped into the outermost run.
pub fn hybrid(native: &[NativeFrame], python: &[Location]) -> (Vec<HybridFrame>, bool) {
    let is_eval = |f: &NativeFrame| f.function == EVAL_FRAME;
    let runs = native
        .iter()
        .enumerate()
        .filter(|(i, f)| is_eval(f) && (*i == 0 || !is_eval(&native[i - 1])))
        .count();
    if python.is_empty() || runs == 0 {
        let out = native.iter().cloned().map(HybridFrame::Native).collect();
        return (out, python.is_empty());
    }
    let exact = runs == 1 || python.len() == runs;
    let mut py = python.iter();
    let mut run = 0;
    let mut out = Vec::with_capacity(native.len() + python.len());
    for (i, f) in native.iter().enumerate() {
        if !is_eval(f) {
            out.push(HybridFrame::Native(f.clone()));
            continue;
        }
        if i > 0 && is_eval(&native[i - 1]) {
            continue;
        }
        run += 1;
        let take = if run == runs {
            usize::MAX
        } else {
            usize::from(py.len() > runs - run)
        };
        out.extend(py.by_ref().take(take).cloned().map(HybridFrame::Python));
    }
    (out, exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(function: &str) -> NativeFrame {
        NativeFrame {
            ip: 0,
            function: function.into(),
            library: "x".into(),
            file: None,
            line: None,
            inlined: false,
        }
    }

    fn p(function: &str) -> Location {
        Location {
            function: function.into(),
            file: "x.py".into(),
            line: Some(1),
        }
    }

    fn names(v: &[HybridFrame]) -> Vec<String> {
        v.iter()
            .map(|f| match f {
                HybridFrame::Native(n) => n.function.clone(),
                HybridFrame::Python(p) => format!("py:{}", p.function),
            })
            .collect()
    }

    #[test]
    fn tree_ips_innermost_first() {
        let mut t = NativeTree::default();
        t.insert(1, 0, 0x10);
        t.insert(2, 1, 0x20);
        t.insert(3, 2, 0x30);
        assert_eq!(t.ips(t.id(3)), vec![0x30, 0x20, 0x10]);
        assert_eq!(t.ips(0), Vec::<u64>::new());
        assert_eq!(t.ips(99), Vec::<u64>::new());
    }

    #[test]
    fn equal_stacks_from_two_threads_are_one() {
        let mut t = NativeTree::default();
        t.insert(1, 0, 0x10);
        t.insert(2, 1, 0x20);
        t.insert(7, 0, 0x10);
        t.insert(8, 7, 0x20);
        t.insert(9, 7, 0x30);
        assert_eq!(t.id(2), t.id(8));
        assert_ne!(t.id(2), t.id(9));
        assert_eq!(t.ips(t.id(9)), vec![0x30, 0x10]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn one_eval_run_takes_every_python_frame() {
        let native = [
            n("malloc"),
            n("PyByteArray_Resize"),
            n(EVAL_FRAME),
            n(EVAL_FRAME),
            n("PyEval_EvalCode"),
            n("main"),
        ];
        let (h, exact) = hybrid(&native, &[p("h"), p("g"), p("<module>")]);
        assert!(exact);
        assert_eq!(
            names(&h),
            [
                "malloc",
                "PyByteArray_Resize",
                "py:h",
                "py:g",
                "py:<module>",
                "PyEval_EvalCode",
                "main"
            ]
        );
    }

    #[test]
    fn several_runs_split_inner_one_each() {
        let native = [
            n("malloc"),
            n(EVAL_FRAME),
            n("map_next"),
            n(EVAL_FRAME),
            n("main"),
        ];
        let (h, exact) = hybrid(&native, &[p("f"), p("a"), p("<module>")]);
        assert!(!exact);
        assert_eq!(
            names(&h),
            ["malloc", "py:f", "map_next", "py:a", "py:<module>", "main"]
        );
        let (h, exact) = hybrid(&native, &[p("f"), p("<module>")]);
        assert!(exact);
        assert_eq!(
            names(&h),
            ["malloc", "py:f", "map_next", "py:<module>", "main"]
        );
    }

    #[test]
    fn no_python_frames_keeps_the_native_stack() {
        let native = [n("malloc"), n(EVAL_FRAME), n("main")];
        let (h, _) = hybrid(&native, &[]);
        assert_eq!(names(&h), ["malloc", EVAL_FRAME, "main"]);
    }
}
