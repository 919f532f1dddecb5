//! Provides code-object interning: each code object gets a small id, and its definition (name, file,
//! first line, line table) is written once per capture by the thread that first meets it.
//!
//! Code objects die and their addresses are reused, so an entry remembers the address of the code's
//! name, file and line table objects and its first line: a different code object at a reused address
//! fails that check and gets a new id.

use std::sync::atomic::Ordering::Relaxed;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::layout::Layout;

/// What tells two code objects at one address apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    qualname: usize,
    filename: usize,
    linetable: usize,
    first_line: i32,
}

/// Line tables larger than this are not sent whole: the lines of the instructions used are sent
/// instead (one `Line` record each). Module bodies and long functions have tables of up to 15 KiB, of
/// which a handful of entries are ever needed; this keeps them from dominating the capture.
pub const INLINE_TABLE_MAX: usize = 128;

/// What the capture knows of a code object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interned {
    pub id: u32,
    /// First time this capture meets it: the caller writes its definition.
    pub new: bool,
    /// Its line table is sent one line at a time.
    pub lines_one_by_one: bool,
}

static CODES: Mutex<Option<FxHashMap<usize, (Interned, Fingerprint)>>> = Mutex::new(None);

pub fn fingerprint(l: &Layout, code: usize) -> Fingerprint {
    // SAFETY: `code` is a live code object found in a running frame; these are pointer and int fields.
    unsafe {
        Fingerprint {
            qualname: ((code + l.code_qualname) as *const usize).read(),
            filename: ((code + l.code_filename) as *const usize).read(),
            linetable: ((code + l.code_linetable) as *const usize).read(),
            first_line: ((code + l.code_first_line) as *const i32).read(),
        }
    }
}

/// The id of `code`, whether it is new, and how its lines are sent.
pub fn intern(l: &Layout, code: usize) -> Interned {
    let fp = fingerprint(l, code);
    let mut guard = crate::sync::lock(&CODES);
    let table = guard.get_or_insert_with(FxHashMap::default);
    if let Some((known, known_fp)) = table.get(&code) {
        if *known_fp == fp {
            return Interned {
                new: false,
                ..*known
            };
        }
    }
    let id = crate::counters::CODES_INTERNED.fetch_add(1, Relaxed) as u32;
    let table_len = if fp.linetable == 0 {
        0
    } else {
        // SAFETY: as in `fingerprint`; the line table is a bytes object.
        unsafe { ((fp.linetable + l.bytes_size) as *const isize).read() }
    };
    let interned = Interned {
        id,
        new: true,
        lines_one_by_one: table_len > INLINE_TABLE_MAX as isize,
    };
    table.insert(code, (interned, fp));
    interned
}

/// Forgets every id (a fork child starts a new capture, which must define its codes again).
pub fn reset() {
    if let Some(t) = crate::sync::lock(&CODES).as_mut() {
        t.clear();
    }
}
