//! Provides [`StackTree`]: every Python stack seen in a capture, as a tree of frames, so that an event's
//! stack is one number and a push or pop is one step.

use rustc_hash::FxHashMap;

use crate::linetable::line_for_offset;
use crate::record::CodeDef;

/// A node of the tree: a stack, identified by its innermost frame.
pub type StackId = u32;

/// One frame: the code object's id and the instruction's byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    pub code: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, Default)]
pub struct StackTree {
    /// `(parent, frame)` per node; node 0 is the empty stack.
    nodes: Vec<(StackId, Frame)>,
    children: FxHashMap<(StackId, Frame), StackId>,
}

impl StackTree {
    pub const ROOT: StackId = 0;

    fn ensure_root(&mut self) {
        if self.nodes.is_empty() {
            self.nodes.push((
                0,
                Frame {
                    code: u32::MAX,
                    offset: 0,
                },
            ));
        }
    }

    pub fn push(&mut self, parent: StackId, code: u32, offset: u32) -> StackId {
        self.ensure_root();
        let frame = Frame { code, offset };
        let next = self.nodes.len() as StackId;
        let nodes = &mut self.nodes;
        *self.children.entry((parent, frame)).or_insert_with(|| {
            nodes.push((parent, frame));
            next
        })
    }

    /// Leaves `count` frames; popping past the outermost frame stops at the empty stack.
    pub fn pop(&self, mut id: StackId, count: u32) -> StackId {
        for _ in 0..count {
            if id == Self::ROOT {
                break;
            }
            id = self.nodes[id as usize].0;
        }
        id
    }

    /// The frames of a stack, innermost first.
    pub fn frames(&self, mut id: StackId) -> Vec<Frame> {
        let mut out = Vec::new();
        while id != Self::ROOT && (id as usize) < self.nodes.len() {
            let (parent, frame) = self.nodes[id as usize];
            out.push(frame);
            id = parent;
        }
        out
    }

    pub fn len(&self) -> usize {
        self.nodes.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A frame as people read it: function, file and line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    pub function: String,
    pub file: String,
    /// `None` when the code has no line for the instruction.
    pub line: Option<u32>,
}

impl Location {
    pub fn resolve(codes: &std::collections::BTreeMap<u32, CodeDef>, frame: Frame) -> Location {
        match codes.get(&frame.code) {
            Some(c) => Location {
                function: c.name.clone(),
                file: c.filename.clone(),
                line: match c.lines.get(&frame.offset) {
                    Some(line) => *line,
                    None => line_for_offset(&c.linetable, c.first_line, frame.offset),
                },
            },
            None => Location {
                function: format!("<code {}>", frame.code),
                file: "?".into(),
                line: None,
            },
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} ({}:{line})", self.function, self.file),
            None => write!(f, "{} ({})", self.function, self.file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_and_frames() {
        let mut t = StackTree::default();
        let a = t.push(StackTree::ROOT, 1, 10);
        let b = t.push(a, 2, 20);
        assert_eq!(t.push(a, 2, 20), b, "the same stack is the same node");
        assert_eq!(
            t.frames(b),
            vec![
                Frame {
                    code: 2,
                    offset: 20
                },
                Frame {
                    code: 1,
                    offset: 10
                }
            ]
        );
        assert_eq!(t.pop(b, 1), a);
        assert_eq!(t.pop(b, 5), StackTree::ROOT);
        assert_eq!(t.len(), 2);
    }
}
