//! Provides the Python stack records: code interning (a code's definition the first time the capture
//! meets it), line records (for codes whose lines go one by one), stack deltas (pops and pushes from
//! the stack last recorded) and check mode's comparison. They are written through a [`Sink`], which
//! the thread's buffer provides; nothing here knows chunks.

use std::sync::atomic::Ordering::Relaxed;

use tracer_capture::record::{self, MAX_EVENT_RECORD_LEN, MAX_NATIVE_STACK_LEN, MAX_PUSH_LEN};
use tracer_capture::varint::MAX_VARINT_LEN;

use super::layout::Layout;
use super::walk::RawFrame;
use super::{codes, shadow, walk, PyThread, Source};
use crate::counters;

/// Where the records go: a thread's chunk under construction.
pub trait Sink {
    /// Makes room for `n` more bytes. True when that started a new chunk.
    fn reserve(&mut self, n: usize) -> bool;
    /// Writes one record of at most `max` bytes (after [`reserve`](Self::reserve)): `put` fills the
    /// window it is given and returns the bytes written.
    fn put(&mut self, max: usize, put: impl FnOnce(&mut [u8]) -> usize);
    /// The current chunk's serial number: a new chunk has none of the stack last recorded.
    fn chunk(&self) -> u64;
    /// Adds to the thread's frame counters (walked, pushed, popped).
    fn count_frames(&mut self, walked: u64, pushed: u64, popped: u64);
}

/// Where the calling thread's Python stack comes from, if allocations carry one now: the check a
/// recorder makes before it calls [`python_stack`] (so that, on the hot path, it builds no sink when
/// there is no stack to record).
#[inline(always)]
pub fn stack_source() -> Option<Source> {
    let source = super::source();
    (!matches!(source, Source::Off | Source::Noop)).then_some(source)
}

/// Records the calling thread's Python stack from `source` (as [`stack_source`] gave it), as the
/// difference from the one last recorded. The caller's event record (and a native stack id) fits in
/// the room reserved with it.
pub fn python_stack(sink: &mut impl Sink, py: &mut PyThread, source: Source) {
    let Some(layout) = super::layout() else {
        return;
    };
    if py.emitted_chunk != sink.chunk() {
        py.emitted.clear();
    }
    // The stack is `emitted[..base]` (found unchanged) followed by `py.scratch` (`fresh`), outermost
    // first; the slow way finds nothing unchanged.
    let fast = match source {
        Source::Walk => fresh_frames(py, layout),
        Source::Check => {
            check_fresh_frames(py, layout);
            None
        }
        _ => None,
    };
    let base = fast.unwrap_or_else(|| {
        super::current_stack(source, py);
        0
    });
    let walked = (base + py.scratch.len()) as u64;
    if source == Source::Check {
        check_stack(sink, py, layout);
    }
    let fresh = std::mem::take(&mut py.scratch);
    let mut ids = std::mem::take(&mut py.ids);
    ids.clear();
    let mut common = base
        + py.emitted[base..]
            .iter()
            .zip(&fresh)
            .take_while(|(e, f)| e.code == f.code && e.offset == f.offset)
            .count();
    // Ids below `common` come from what was recorded; looking up the others may write code
    // definitions, which may start a new chunk.
    for (i, f) in fresh.iter().enumerate() {
        let id = match py.emitted.get(base + i) {
            Some(e) if base + i < common => (e.id, e.one_by_one),
            // The same code object as last sent at this depth (usually the innermost frame, moved
            // on): its id is known, no lookup in the shared table.
            Some(e) if e.code == f.code && e.fingerprint == codes::fingerprint(layout, f.code) => {
                frame_code_id(sink, py, layout, *f, Some((e.id, e.one_by_one)))
            }
            _ => frame_code_id(sink, py, layout, *f, None),
        };
        ids.push(id);
    }
    // Room for the whole stack: a new chunk re-sends all of it.
    let depth = base + fresh.len();
    let need =
        1 + MAX_VARINT_LEN + depth * MAX_PUSH_LEN + MAX_NATIVE_STACK_LEN + MAX_EVENT_RECORD_LEN;
    let new_chunk = sink.reserve(need) || py.emitted_chunk != sink.chunk();
    // In a new chunk nothing is popped and every frame is pushed: the unchanged ones from `emitted`.
    let (pops, resent) = if new_chunk {
        (0, base.min(common))
    } else {
        (py.emitted.len() - common, 0)
    };
    let from = if new_chunk { 0 } else { common - base };
    let emitted = &py.emitted;
    sink.put(need, |w| {
        let mut n = 0;
        if pops > 0 {
            n = record::put_pop(w, n, pops as u32);
        }
        for e in &emitted[..resent] {
            n = record::put_push(w, n, e.id, e.offset);
        }
        for (f, (id, _)) in fresh[from..].iter().zip(&ids[from..]) {
            n = record::put_push(w, n, *id, f.offset);
        }
        n
    });
    let pushed = if new_chunk { depth } else { depth - common };
    sink.count_frames(walked, pushed as u64, pops as u64);
    if new_chunk {
        common = base.min(common);
    }
    py.emitted_chunk = sink.chunk();
    py.emitted.truncate(common);
    // The words of `fresh[i]` when they were walked; zero words match no frame.
    let words = &py.words;
    let words_of = |i: usize| words.get(i).copied().unwrap_or_default();
    for (i, e) in py.emitted.iter_mut().enumerate().skip(base) {
        e.words = words_of(i - base);
    }
    let kept = common - base.min(common);
    py.emitted
        .extend(fresh[kept..].iter().zip(&ids[kept..]).enumerate().map(
            |(i, (f, (id, one_by_one)))| super::Emitted {
                code: f.code,
                id: *id,
                offset: f.offset,
                one_by_one: *one_by_one,
                fingerprint: codes::fingerprint(layout, f.code),
                words: words_of(kept + i),
            },
        ));
    py.scratch = fresh;
    py.ids = ids;
}

/// How many of the innermost frames the walk source reads before it finds one of the stack last
/// recorded; past that it walks the slow way.
const FRESH_MAX: usize = 8;

/// The walk source's fast way: reads the frames' words (not their code objects) from the innermost
/// outwards until one is a frame of the stack last recorded (`py.emitted`, with the same words), then
/// checks that every frame outside it is as recorded. Returns how many recorded frames are unchanged,
/// and puts the frames inside them in `py.scratch` (their words in `py.words`). None when the stack
/// must be walked the slow way: no thread state, a change deeper than [`FRESH_MAX`] frames or outside
/// the frame found, or a frame the stack leaves out (not started yet).
fn fresh_frames(py: &mut PyThread, layout: &Layout) -> Option<usize> {
    let mut frames = walk::python_frames(layout, super::this_thread_state()?);
    let emitted = &py.emitted;
    let words = &mut py.words;
    words.clear();
    let mut base = 0;
    while let Some(w) = frames.next() {
        let top = emitted.len().saturating_sub(FRESH_MAX)..emitted.len();
        if let Some(j) = top.rev().find(|&j| emitted[j].words == w) {
            // Found: the frames outside it must be those recorded, and no more.
            let unchanged = emitted[..j]
                .iter()
                .rev()
                .all(|e| frames.next() == Some(e.words));
            if !unchanged || frames.next().is_some() {
                return None;
            }
            base = j + 1;
            break;
        }
        if words.len() == FRESH_MAX {
            return None;
        }
        words.push(w);
    }
    if base + words.len() > walk::MAX_DEPTH {
        return None;
    }
    words.reverse();
    let code_type = super::code_type();
    py.scratch.clear();
    for w in words.iter() {
        py.scratch.push(walk::frame_of(layout, code_type, *w)?);
    }
    Some(base)
}

/// Check mode: compares the walk's fast way ([`fresh_frames`]), where it applies, with the whole walk
/// (which check mode then records).
fn check_fresh_frames(py: &mut PyThread, layout: &Layout) {
    let Some(base) = fresh_frames(py, layout) else {
        return;
    };
    let mut fast = std::mem::take(&mut py.other);
    fast.clear();
    fast.extend(py.emitted[..base].iter().map(|e| RawFrame {
        code: e.code,
        offset: e.offset,
    }));
    fast.extend_from_slice(&py.scratch);
    super::current_stack(Source::Walk, py);
    counters::FAST_WALK_CHECKS.fetch_add(1, Relaxed);
    if fast != py.scratch {
        counters::FAST_WALK_MISMATCHES.fetch_add(1, Relaxed);
    }
    py.other = fast;
}

/// Interns a code object, writing its definition the first time the capture meets it (without the
/// line table when that is sent line by line, see `codes::INLINE_TABLE_MAX`).
fn intern_code(sink: &mut impl Sink, layout: &Layout, code: usize) -> codes::Interned {
    let interned = codes::intern(layout, code);
    if interned.new {
        // SAFETY: `code` belongs to a frame running on this thread, so it is alive.
        let info = unsafe { walk::code_info(layout, code) };
        let table = if interned.lines_one_by_one {
            &[][..]
        } else {
            &info.linetable[..]
        };
        let (name, file) = (info.name.as_bytes(), info.filename.as_bytes());
        let len = record::code_len(name, file, table);
        sink.reserve(len);
        sink.put(len, |w| {
            record::put_code(w, 0, interned.id, info.first_line, name, file, table)
        });
    }
    interned
}

/// The id of a frame's code, sending the line of its instruction first if the code's lines go
/// one by one and this thread has not sent that one yet.
fn frame_code_id(
    sink: &mut impl Sink,
    py: &mut PyThread,
    layout: &Layout,
    frame: RawFrame,
    known: Option<(u32, bool)>,
) -> (u32, bool) {
    let (id, one_by_one) = known.unwrap_or_else(|| {
        let interned = intern_code(sink, layout, frame.code);
        (interned.id, interned.lines_one_by_one)
    });
    if one_by_one && py.lines_sent.insert((id, frame.offset)) {
        // SAFETY: the frame is running on this thread, so its code object is alive.
        let (table, first_line) = unsafe {
            (
                walk::linetable(layout, frame.code),
                walk::first_line(layout, frame.code),
            )
        };
        let line = tracer_capture::linetable::line_for_offset(table, first_line, frame.offset);
        sink.reserve(record::MAX_LINE_LEN);
        sink.put(record::MAX_LINE_LEN, |w| {
            record::put_line(w, 0, id, frame.offset, line)
        });
    }
    (id, one_by_one)
}

/// Check mode: compares the walked stack (in `scratch`) with the profile source's. Not compared:
/// a walked stack with one more frame on top (a call or return the profile function has not been
/// told of yet), threads where the profile function is not installed yet, a shadow stack waiting
/// to be rebuilt, and allocations made by the program's own profile or trace function (CPython
/// sends no profile events while one runs).
fn check_stack(sink: &mut impl Sink, py: &mut PyThread, layout: &Layout) {
    if !py.shadow.profiling
        || !shadow::shadow_is_current(&mut py.shadow)
        || py.shadow.in_chained
        || shadow::inside_a_trace_function()
    {
        counters::STACK_CHECKS_SKIPPED.fetch_add(1, Relaxed);
        return;
    }
    let mut profiled = std::mem::take(&mut py.other);
    shadow::stack(&py.shadow.frames, &mut profiled);
    let walked = &py.scratch;
    if *walked == profiled {
        counters::STACK_CHECKS.fetch_add(1, Relaxed);
    } else if walked.len() == profiled.len() + 1 && walked[..profiled.len()] == profiled[..] {
        counters::STACK_CHECKS_SKIPPED.fetch_add(1, Relaxed);
    } else {
        counters::STACK_MISMATCHES.fetch_add(1, Relaxed);
        let mut ids = |s: &[RawFrame]| -> Vec<(u32, u32)> {
            s.iter()
                .map(|f| (intern_code(sink, layout, f.code).id, f.offset))
                .collect()
        };
        let (w_ids, p_ids) = (ids(walked), ids(&profiled));
        let len = record::mismatch_len(w_ids.len(), p_ids.len());
        sink.reserve(len);
        sink.put(len, |w| record::put_mismatch(w, 0, &w_ids, &p_ids));
    }
    py.other = profiled;
}
