//! Provides the frame walk: reads the calling thread's interpreter frames (code object and
//! instruction offset of each) straight from CPython's structures, as `tracemalloc` does in-tree,
//! without creating frame objects or calling into Python. Also reads a code object's name, file and
//! line table for its definition record.
//!
//! Only the calling thread's own frames are read: no other thread changes them while it runs here,
//! so no lock is needed. Reads go through `memory::Memory`: plain loads on the hot path, and checked loads
//! (`process_vm_readv`, which fails instead of faulting) for the start-up self-check, so a wrong layout
//! is detected without crashing the program.

use super::layout::{CurrentFrame, Layout};
pub use super::memory::{Checked, Direct, Memory};

/// The deepest stack recorded; deeper frames (the outermost ones) are left out.
pub const MAX_DEPTH: usize = 1024;

/// A frame as walked: the code object's address and the instruction's byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    pub code: usize,
    pub offset: u32,
}

/// The innermost interpreter frame of a thread state.
fn current_frame(m: &impl Memory, l: &Layout, tstate: usize) -> Option<usize> {
    match l.current_frame {
        CurrentFrame::ViaCFrame {
            cframe,
            current_frame,
        } => {
            let cf = m.word(tstate + cframe)?;
            if cf == 0 {
                return Some(0);
            }
            m.word(cf + current_frame)
        }
        CurrentFrame::Direct { current_frame } => m.word(tstate + current_frame),
    }
}

/// What a frame holds, as read without touching its code object: the words a walk compares with the
/// stack last recorded (see `records::python_stack`). Equal words give an equal [`RawFrame`]: the
/// frame's code is alive while the frame is, and the offset is the instruction pointer's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameWords {
    pub frame: usize,
    /// The code word as stored (tag bits kept).
    pub code: usize,
    pub instr: usize,
    pub owner: u8,
}

/// What a frame that runs Python code gives the stack.
enum Classified {
    Frame(RawFrame),
    /// Not started running its code yet (CPython calls it incomplete): left out, as tracebacks do.
    Incomplete,
    /// Not a code object (`code_type` is `PyCode_Type`): the walk stops.
    NotCode,
}

/// Classifies a frame from its words, reading its code object. None if a read failed.
fn classify(m: &impl Memory, l: &Layout, code_type: usize, w: FrameWords) -> Option<Classified> {
    let code = w.code & !l.code_tag_bits;
    if code == 0 || m.word(code + l.ob_type) != Some(code_type) {
        return Some(Classified::NotCode);
    }
    let start = code + l.code_adaptive;
    let first_traceable = m.int(code + l.code_first_traceable)?;
    if w.owner != l.owned_by_generator && w.instr < start + 2 * first_traceable as usize {
        return Some(Classified::Incomplete);
    }
    Some(Classified::Frame(RawFrame {
        code,
        offset: w.instr.saturating_sub(start) as u32,
    }))
}

/// Reads the words of the frame at `frame` (`owner` already read). None if a read failed.
fn frame_words_at(m: &impl Memory, l: &Layout, frame: usize, owner: u8) -> Option<FrameWords> {
    Some(FrameWords {
        frame,
        code: m.word(frame + l.frame_code)?,
        instr: m.word(frame + l.frame_instr)?,
        owner,
    })
}

/// Walks the frames of `tstate` into `out`, outermost first, and each recorded frame's words into
/// `words` (aligned with `out`). Frames that have not started running their code (CPython calls them
/// incomplete) and frames that run no Python code (the C-stack and interpreter shims) are skipped, as
/// CPython's own tracebacks do. Stops at anything that is not a code object. Returns false if a read
/// failed (only `Checked` reads fail).
pub fn walk(
    m: &impl Memory,
    l: &Layout,
    code_type: usize,
    tstate: usize,
    out: &mut Vec<RawFrame>,
    words: &mut Vec<FrameWords>,
) -> bool {
    out.clear();
    words.clear();
    let Some(mut frame) = current_frame(m, l, tstate) else {
        return false;
    };
    while frame != 0 && out.len() < MAX_DEPTH {
        let Some(owner) = m.byte(frame + l.frame_owner) else {
            return false;
        };
        if owner < l.first_shim_owner {
            let Some(w) = frame_words_at(m, l, frame, owner) else {
                return false;
            };
            match classify(m, l, code_type, w) {
                None => return false,
                Some(Classified::NotCode) => break,
                Some(Classified::Incomplete) => {}
                Some(Classified::Frame(f)) => {
                    out.push(f);
                    words.push(w);
                }
            }
        }
        let Some(previous) = m.word(frame + l.frame_previous) else {
            return false;
        };
        frame = previous;
    }
    out.reverse();
    words.reverse();
    true
}

/// The words of the frames of a thread that run Python code, innermost first, read from the frames
/// alone (plain loads: the calling thread's own frames). The cheap pass of a walk.
pub struct PythonFrames<'a> {
    l: &'a Layout,
    frame: usize,
}

/// The calling thread's frames from `tstate`'s innermost one outwards.
pub fn python_frames(l: &Layout, tstate: usize) -> PythonFrames<'_> {
    PythonFrames {
        l,
        frame: current_frame(&Direct, l, tstate).unwrap_or(0),
    }
}

impl Iterator for PythonFrames<'_> {
    type Item = FrameWords;

    #[inline]
    fn next(&mut self) -> Option<FrameWords> {
        let (m, l) = (&Direct, self.l);
        while self.frame != 0 {
            let frame = self.frame;
            let owner = m.byte(frame + l.frame_owner)?;
            self.frame = m.word(frame + l.frame_previous)?;
            if owner < l.first_shim_owner {
                return frame_words_at(m, l, frame, owner);
            }
        }
        None
    }
}

/// The stack frame of `words` (as [`python_frames`] read them), from its code object. None when the
/// frame would not be a plain frame of the stack (not started, or not a code object): the caller
/// walks the slow way, which knows what to leave out. `words` must come from a frame of the calling
/// thread that is still running (so its code object is alive).
pub fn frame_of(l: &Layout, code_type: usize, words: FrameWords) -> Option<RawFrame> {
    match classify(&Direct, l, code_type, words)? {
        Classified::Frame(f) => Some(f),
        Classified::Incomplete | Classified::NotCode => None,
    }
}

/// The addresses of the frames of `tstate` that run no Python code (owner from
/// `first_shim_owner` up), innermost first: from 3.12 on, the evaluation loop keeps one such frame in
/// its own C stack frame for each time it is entered. Reads through `m`; None if a read failed.
pub fn shim_frames(m: &impl Memory, l: &Layout, tstate: usize) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    let mut frame = current_frame(m, l, tstate)?;
    for _ in 0..MAX_DEPTH {
        if frame == 0 {
            break;
        }
        if m.byte(frame + l.frame_owner)? >= l.first_shim_owner {
            out.push(frame);
        }
        frame = m.word(frame + l.frame_previous)?;
    }
    Some(out)
}

/// What a code object's definition record holds.
pub struct CodeInfo {
    pub first_line: u32,
    pub name: String,
    pub filename: String,
    pub linetable: Vec<u8>,
}

/// Longest line table kept (a longer one is cut: lines past it read as unknown).
const MAX_LINETABLE: usize = 16 << 10;
const MAX_NAME: usize = 1024;

/// Reads a `str` object (compact strings, which code names and file names are; a legacy string reads
/// as `?`). None only if a read failed.
pub fn read_str(m: &impl Memory, l: &Layout, obj: usize) -> Option<String> {
    if obj == 0 {
        return Some(String::new());
    }
    let len = (m.word(obj + l.str_length)? as isize).clamp(0, MAX_NAME as isize) as usize;
    let state = m.int(obj + l.str_state)? as u32;
    let kind = ((state >> 2) & 7) as usize;
    let compact = state & (1 << 5) != 0;
    let ascii = state & (1 << 6) != 0;
    if !compact || !matches!(kind, 1 | 2 | 4) {
        return Some("?".into());
    }
    if ascii {
        let bytes = m.bytes(obj + l.ascii_size, len)?;
        return Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    let data = m.bytes(obj + l.compact_size, len * kind)?;
    Some(
        data.chunks_exact(kind)
            .map(|c| {
                let mut unit = [0u8; 4];
                unit[..kind].copy_from_slice(c);
                char::from_u32(u32::from_le_bytes(unit)).unwrap_or('?')
            })
            .collect(),
    )
}

/// A code object's line table, copied (cut at `max` bytes). None only if a read failed.
pub fn read_linetable(m: &impl Memory, l: &Layout, code: usize, max: usize) -> Option<Vec<u8>> {
    let obj = m.word(code + l.code_linetable)?;
    if obj == 0 {
        return Some(Vec::new());
    }
    let len = (m.word(obj + l.bytes_size)? as isize).clamp(0, max as isize) as usize;
    m.bytes(obj + l.bytes_data, len)
}

/// A code object's line table, in place.
///
/// # Safety
/// `code` must be a live code object; the slice is valid while it is.
pub unsafe fn linetable<'a>(l: &Layout, code: usize) -> &'a [u8] {
    // SAFETY: `code` is a live code object (the contract), whose line table field holds a bytes
    // object (or null) that it keeps alive; the layout gives the fields' offsets.
    unsafe {
        let obj = ((code + l.code_linetable) as *const usize).read();
        if obj == 0 {
            return &[];
        }
        let len = ((obj + l.bytes_size) as *const isize).read().max(0) as usize;
        std::slice::from_raw_parts((obj + l.bytes_data) as *const u8, len)
    }
}

/// A code object's first line.
///
/// # Safety
/// `code` must be a live code object.
pub unsafe fn first_line(l: &Layout, code: usize) -> u32 {
    // SAFETY: the caller guarantees `code` is alive; the field is an int.
    unsafe { ((code + l.code_first_line) as *const i32).read() }.max(0) as u32
}

/// Reads what a code object's definition needs (name, file, first line, line table).
///
/// # Safety
/// `code` must be a live code object (it is: it was found in a running frame of this thread).
pub unsafe fn code_info(l: &Layout, code: usize) -> CodeInfo {
    let m = &Direct;
    CodeInfo {
        first_line: m.int(code + l.code_first_line).unwrap_or(0).max(0) as u32,
        name: m
            .word(code + l.code_qualname)
            .and_then(|q| read_str(m, l, q))
            .unwrap_or_default(),
        filename: m
            .word(code + l.code_filename)
            .and_then(|f| read_str(m, l, f))
            .unwrap_or_default(),
        linetable: read_linetable(m, l, code, MAX_LINETABLE).unwrap_or_default(),
    }
}
