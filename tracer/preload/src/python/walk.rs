//! Provides the frame walk: reads the calling thread's interpreter frames (code object and
//! instruction offset of each) straight from CPython's structures, as `tracemalloc` does in-tree,
//! without creating frame objects or calling into Python. Also reads a code object's name, file and
//! line table for its definition record.
//!
//! Only the calling thread's own frames are read: no other thread changes them while it runs here,
//! so no lock is needed. Reads go through [`Memory`]: plain loads on the hot path, and checked loads
//! (`process_vm_readv`, which fails instead of faulting) for the start-up self-check, so a wrong layout
//! is detected without crashing the program.

use super::layout::{CurrentFrame, InstrPointer, Layout};

/// The deepest stack recorded; deeper frames (the outermost ones) are left out.
pub const MAX_DEPTH: usize = 1024;

/// A frame as walked: the code object's address and the instruction's byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    pub code: usize,
    pub offset: u32,
}

pub trait Memory {
    fn word(&self, addr: usize) -> Option<usize>;
    fn byte(&self, addr: usize) -> Option<u8>;
    fn int(&self, addr: usize) -> Option<i32>;
}

/// Plain loads, for addresses the layout guarantees.
pub struct Direct;

impl Memory for Direct {
    #[inline(always)]
    fn word(&self, addr: usize) -> Option<usize> {
        // SAFETY: callers pass addresses of fields of live CPython objects of this thread (the
        // layout was verified at start-up by `Checked`).
        Some(unsafe { (addr as *const usize).read() })
    }
    #[inline(always)]
    fn byte(&self, addr: usize) -> Option<u8> {
        // SAFETY: as in `word`.
        Some(unsafe { (addr as *const u8).read() })
    }
    #[inline(always)]
    fn int(&self, addr: usize) -> Option<i32> {
        // SAFETY: as in `word`.
        Some(unsafe { (addr as *const i32).read() })
    }
}

/// Loads through `process_vm_readv` on our own process: an unmapped address is an error, not a crash.
pub struct Checked;

impl Checked {
    fn read<const N: usize>(&self, addr: usize) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: N,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: N,
        };
        // SAFETY: `local` describes `buf`; the kernel checks `remote` and fails on a bad address.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        (n == N as isize).then_some(buf)
    }
}

impl Memory for Checked {
    fn word(&self, addr: usize) -> Option<usize> {
        self.read::<8>(addr).map(usize::from_ne_bytes)
    }
    fn byte(&self, addr: usize) -> Option<u8> {
        self.read::<1>(addr).map(|b| b[0])
    }
    fn int(&self, addr: usize) -> Option<i32> {
        self.read::<4>(addr).map(i32::from_ne_bytes)
    }
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

/// Walks the frames of `tstate` into `out`, outermost first. Frames that have not started running
/// their code (CPython calls them incomplete) and C-stack shim frames are skipped, as CPython's own
/// tracebacks do. Stops at anything that is not a code object (`code_type` is `PyCode_Type`).
/// Returns false if a read failed (only `Checked` reads fail).
pub fn walk(
    m: &impl Memory,
    l: &Layout,
    code_type: usize,
    tstate: usize,
    out: &mut Vec<RawFrame>,
) -> bool {
    out.clear();
    let Some(mut frame) = current_frame(m, l, tstate) else {
        return false;
    };
    while frame != 0 && out.len() < MAX_DEPTH {
        let Some(code) = m.word(frame + l.frame_code) else {
            return false;
        };
        let Some(owner) = m.byte(frame + l.frame_owner) else {
            return false;
        };
        if l.owned_by_cstack != Some(owner) {
            if code == 0 || m.word(code + 8) != Some(code_type) {
                break;
            }
            let start = code + l.code_adaptive;
            let Some(first_traceable) = m.int(code + l.code_first_traceable) else {
                return false;
            };
            let (instr, incomplete) = match l.frame_instr {
                InstrPointer::Previous(off) => {
                    let Some(prev) = m.word(frame + off) else {
                        return false;
                    };
                    (
                        prev,
                        owner != l.owned_by_generator
                            && prev < start + 2 * first_traceable as usize,
                    )
                }
                InstrPointer::Current(off) => {
                    let Some(cur) = m.word(frame + off) else {
                        return false;
                    };
                    (
                        cur,
                        owner != l.owned_by_generator && cur < start + 2 * first_traceable as usize,
                    )
                }
            };
            if !incomplete {
                out.push(RawFrame {
                    code,
                    offset: instr.saturating_sub(start) as u32,
                });
            }
        }
        let Some(previous) = m.word(frame + l.frame_previous) else {
            return false;
        };
        frame = previous;
    }
    out.reverse();
    true
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

/// Reads a `str` object (compact strings, which code names and file names are).
fn read_str(l: &Layout, obj: usize) -> String {
    if obj == 0 {
        return String::new();
    }
    // SAFETY: `obj` is a str object referenced by a live code object of this thread; the fields read
    // are its header and its inline data, `length` characters of `kind` bytes.
    unsafe {
        let len = ((obj + 16) as *const isize)
            .read()
            .clamp(0, MAX_NAME as isize) as usize;
        let state = ((obj + 32) as *const u32).read();
        let kind = (state >> 2) & 7;
        let compact = state & (1 << 5) != 0;
        let ascii = state & (1 << 6) != 0;
        if !compact {
            return "?".into();
        }
        if ascii {
            let bytes = std::slice::from_raw_parts((obj + l.ascii_size) as *const u8, len);
            return String::from_utf8_lossy(bytes).into_owned();
        }
        let data = obj + l.compact_size;
        (0..len)
            .map(|i| {
                let c = match kind {
                    1 => u32::from(((data + i) as *const u8).read()),
                    2 => u32::from(((data + 2 * i) as *const u16).read()),
                    _ => ((data + 4 * i) as *const u32).read(),
                };
                char::from_u32(c).unwrap_or('?')
            })
            .collect()
    }
}

/// A code object's line table, in place.
///
/// # Safety
/// `code` must be a live code object; the slice is valid while it is.
pub unsafe fn linetable<'a>(l: &Layout, code: usize) -> &'a [u8] {
    let obj = ((code + l.code_linetable) as *const usize).read();
    if obj == 0 {
        return &[];
    }
    let len = ((obj + 16) as *const isize).read().max(0) as usize;
    std::slice::from_raw_parts((obj + 32) as *const u8, len)
}

/// Reads what a code object's definition needs (name, file, first line, line table).
///
/// # Safety
/// `code` must be a live code object (it is: it was found in a running frame of this thread).
pub unsafe fn code_info(l: &Layout, code: usize) -> CodeInfo {
    let linetable_obj = ((code + l.code_linetable) as *const usize).read();
    let linetable = if linetable_obj == 0 {
        Vec::new()
    } else {
        let len = ((linetable_obj + 16) as *const isize)
            .read()
            .clamp(0, MAX_LINETABLE as isize) as usize;
        std::slice::from_raw_parts((linetable_obj + 32) as *const u8, len).to_vec()
    };
    CodeInfo {
        first_line: ((code + l.code_first_line) as *const i32).read().max(0) as u32,
        name: read_str(l, ((code + l.code_qualname) as *const usize).read()),
        filename: read_str(l, ((code + l.code_filename) as *const usize).read()),
        linetable,
    }
}
