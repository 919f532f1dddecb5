//! Provides code-object interning: each code object gets a small id, and its definition (name, file,
//! first line, line table) is written once per capture by the thread that first meets it.
//!
//! Code objects die and their addresses are reused, so an entry remembers the address of the code's
//! name, file and line table objects and its first line: a different code object at a reused address
//! fails that check and gets a new id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use super::layout::Layout;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    qualname: usize,
    filename: usize,
    linetable: usize,
    first_line: i32,
}

static CODES: Mutex<Option<HashMap<usize, (u32, Fingerprint)>>> = Mutex::new(None);
pub static INTERNED: AtomicU64 = AtomicU64::new(0);

fn fingerprint(l: &Layout, code: usize) -> Fingerprint {
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

/// The id of `code`, and whether it is new (the caller then writes its definition).
pub fn intern(l: &Layout, code: usize) -> (u32, bool) {
    let fp = fingerprint(l, code);
    let mut guard = CODES.lock();
    let table = guard.get_or_insert_with(HashMap::new);
    if let Some((id, known)) = table.get(&code) {
        if *known == fp {
            return (*id, false);
        }
    }
    let id = INTERNED.fetch_add(1, Relaxed) as u32;
    table.insert(code, (id, fp));
    (id, true)
}

/// Forgets every id (a fork child starts a new capture, which must define its codes again).
pub fn reset() {
    if let Some(t) = CODES.lock().as_mut() {
        t.clear();
    }
}
