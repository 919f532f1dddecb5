//! Defines the records of a capture and how they are laid out, with the encoders the preload calls on
//! its hot path and the matching decoder. The byte layout is documented in `docs/capture-format.md`.
//!
//! A capture is a header followed by *frames* (`type: u8, length: u32 LE, body`). Allocation events
//! live in thread chunks: one frame per filled per-thread buffer, self-contained (its address deltas
//! and its epoch start afresh), so a damaged or missing chunk never garbles the others.
//!
//! Inside a chunk each record starts with a token byte:
//!
//! ```text
//!   bit 7   6        5 4 3 2 1 0
//!       0   E        k k k k k k      k = record kind (see `Kind`), E = a new order epoch follows
//! ```
//!
//! Event records then carry, in order: the epoch delta (only when E is set), the address as a zig-zag
//! delta from the previous address in the chunk, and (allocations only) the size. A `realloc` carries
//! the old address (delta from the previous address), the new address (delta from the old) and the
//! size. A `munmap` carries its length.

use crate::varint::{put_varint, zigzag, Cursor, CursorError};

/// The first eight bytes of every capture.
pub const MAGIC: &[u8; 8] = b"ALLOCTRC";
/// Version history:
/// - 1: first version (header, thread chunks, end record).
pub const FORMAT_VERSION: u16 = 1;

/// Frame types.
pub const FRAME_THREAD_CHUNK: u8 = 1;
pub const FRAME_END: u8 = 2;
/// Type byte plus the `u32` length.
pub const FRAME_PREFIX_LEN: usize = 5;

/// Token bit: the record carries a new order epoch (as a delta from the chunk's current one).
pub const TOKEN_NEW_EPOCH: u8 = 0x40;
const TOKEN_KIND_MASK: u8 = 0x3f;

/// Room one event record can take: token plus four varints.
pub const MAX_EVENT_RECORD_LEN: usize = 1 + 4 * crate::varint::MAX_VARINT_LEN;
/// Room a chunk's header can take: frame prefix plus three varints.
pub const MAX_CHUNK_HEADER_LEN: usize = FRAME_PREFIX_LEN + 3 * crate::varint::MAX_VARINT_LEN;

/// What a record is. Allocation kinds are also the "allocator" that `tracer stats` counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Kind {
    Malloc = 1,
    Calloc = 2,
    Realloc = 3,
    PosixMemalign = 4,
    AlignedAlloc = 5,
    Memalign = 6,
    Valloc = 7,
    Pvalloc = 8,
    Mmap = 9,
    PymallocMalloc = 10,
    PymallocCalloc = 11,
    PymallocRealloc = 12,
    Free = 16,
    Munmap = 17,
    PymallocFree = 18,
    /// The OS thread id of the chunk's thread (written once per thread).
    ThreadInfo = 32,
    /// A Python code object, defined once per capture: id, first line, name, file, line table.
    Code = 33,
    /// A Python frame entered: code id, instruction offset.
    Push = 34,
    /// Python frames left: how many.
    Pop = 35,
    /// Check mode: the two stack sources disagreed at this point (walked, then profiled stack).
    StackMismatch = 36,
    /// Native mode: a node of the thread's native stack trie, defined once: id, parent, instruction
    /// pointer (a return address).
    NativeNode = 37,
    /// Native mode: the native stack (a trie node id) of the events that follow in this chunk.
    NativeStack = 38,
    /// Native mode: a loaded segment of an ELF object: start, end, file offset, load bias, path.
    Module = 39,
    /// Native mode, Python: addresses inside the interpreter's evaluation loop, found at start-up.
    EvalLoop = 40,
    /// The line of one instruction of a code object whose line table was too large to send whole.
    Line = 51,
    /// The time (ns since the capture started) of the events that follow, written every 64 allocations.
    Time = 52,
}

impl Kind {
    pub const ALL: [Kind; 26] = [
        Kind::Malloc,
        Kind::Calloc,
        Kind::Realloc,
        Kind::PosixMemalign,
        Kind::AlignedAlloc,
        Kind::Memalign,
        Kind::Valloc,
        Kind::Pvalloc,
        Kind::Mmap,
        Kind::PymallocMalloc,
        Kind::PymallocCalloc,
        Kind::PymallocRealloc,
        Kind::Free,
        Kind::Munmap,
        Kind::PymallocFree,
        Kind::ThreadInfo,
        Kind::Code,
        Kind::Push,
        Kind::Pop,
        Kind::StackMismatch,
        Kind::NativeNode,
        Kind::NativeStack,
        Kind::Module,
        Kind::EvalLoop,
        Kind::Line,
        Kind::Time,
    ];

    pub fn from_u8(v: u8) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| *k as u8 == v)
    }

    /// The name `tracer stats` prints (the C function, or `pymalloc_*`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Malloc => "malloc",
            Kind::Calloc => "calloc",
            Kind::Realloc => "realloc",
            Kind::PosixMemalign => "posix_memalign",
            Kind::AlignedAlloc => "aligned_alloc",
            Kind::Memalign => "memalign",
            Kind::Valloc => "valloc",
            Kind::Pvalloc => "pvalloc",
            Kind::Mmap => "mmap",
            Kind::PymallocMalloc => "pymalloc_malloc",
            Kind::PymallocCalloc => "pymalloc_calloc",
            Kind::PymallocRealloc => "pymalloc_realloc",
            Kind::Free => "free",
            Kind::Munmap => "munmap",
            Kind::PymallocFree => "pymalloc_free",
            Kind::ThreadInfo => "thread_info",
            Kind::Code => "code",
            Kind::Push => "push",
            Kind::Pop => "pop",
            Kind::StackMismatch => "stack_mismatch",
            Kind::Line => "line",
            Kind::Time => "time",
            Kind::NativeNode => "native_node",
            Kind::NativeStack => "native_stack",
            Kind::Module => "module",
            Kind::EvalLoop => "eval_loop",
        }
    }

    pub fn is_free(self) -> bool {
        matches!(self, Kind::Free | Kind::Munmap | Kind::PymallocFree)
    }

    pub fn is_realloc(self) -> bool {
        matches!(self, Kind::Realloc | Kind::PymallocRealloc)
    }
}

/// Per-chunk encoder state: the previous address and the chunk's current epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkState {
    pub prev_addr: u64,
    pub epoch: u64,
}

/// Writes a chunk's frame prefix (length left as zero, patched by [`finish_chunk`]) and header.
/// Returns the position after it. `out` must hold [`MAX_CHUNK_HEADER_LEN`] bytes.
pub fn begin_chunk(out: &mut [u8], thread: u32, epoch: u64, start_ns: u64) -> (usize, ChunkState) {
    out[0] = FRAME_THREAD_CHUNK;
    out[1..5].fill(0);
    let mut pos = FRAME_PREFIX_LEN;
    pos = put_varint(out, pos, u64::from(thread));
    pos = put_varint(out, pos, epoch);
    pos = put_varint(out, pos, start_ns);
    (
        pos,
        ChunkState {
            prev_addr: 0,
            epoch,
        },
    )
}

/// Patches the frame length of a chunk that ends at `len`.
pub fn finish_chunk(out: &mut [u8], len: usize) {
    let body = (len - FRAME_PREFIX_LEN) as u32;
    out[1..5].copy_from_slice(&body.to_le_bytes());
}

#[inline(always)]
fn put_token(out: &mut [u8], pos: usize, st: &mut ChunkState, kind: Kind, epoch: u64) -> usize {
    if epoch == st.epoch {
        out[pos] = kind as u8;
        pos + 1
    } else {
        out[pos] = kind as u8 | TOKEN_NEW_EPOCH;
        let delta = epoch.wrapping_sub(st.epoch);
        st.epoch = epoch;
        put_varint(out, pos + 1, delta)
    }
}

#[inline(always)]
fn put_addr(out: &mut [u8], pos: usize, st: &mut ChunkState, addr: u64) -> usize {
    let delta = addr.wrapping_sub(st.prev_addr) as i64;
    st.prev_addr = addr;
    put_varint(out, pos, zigzag(delta))
}

/// Encodes an allocation (any kind but realloc and the frees). `out` must hold
/// [`MAX_EVENT_RECORD_LEN`] bytes from `pos`.
#[inline(always)]
pub fn put_alloc(
    out: &mut [u8],
    pos: usize,
    st: &mut ChunkState,
    kind: Kind,
    epoch: u64,
    addr: u64,
    size: u64,
) -> usize {
    let pos = put_token(out, pos, st, kind, epoch);
    let pos = put_addr(out, pos, st, addr);
    put_varint(out, pos, size)
}

/// Encodes a free (`free`, `pymalloc_free`).
#[inline(always)]
pub fn put_free(
    out: &mut [u8],
    pos: usize,
    st: &mut ChunkState,
    kind: Kind,
    epoch: u64,
    addr: u64,
) -> usize {
    let pos = put_token(out, pos, st, kind, epoch);
    put_addr(out, pos, st, addr)
}

/// Encodes a `munmap` of `len` bytes at `addr`.
pub fn put_munmap(
    out: &mut [u8],
    pos: usize,
    st: &mut ChunkState,
    epoch: u64,
    addr: u64,
    len: u64,
) -> usize {
    let pos = put_free(out, pos, st, Kind::Munmap, epoch, addr);
    put_varint(out, pos, len)
}

/// Encodes a realloc from `old` (0: none) to `new` (0: the block was freed) of `size` bytes.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // like the other encoders: plain values, no struct to build per call
pub fn put_realloc(
    out: &mut [u8],
    pos: usize,
    st: &mut ChunkState,
    kind: Kind,
    epoch: u64,
    old: u64,
    new: u64,
    size: u64,
) -> usize {
    let pos = put_token(out, pos, st, kind, epoch);
    let pos = put_addr(out, pos, st, old);
    let pos = put_addr(out, pos, st, new);
    put_varint(out, pos, size)
}

/// Encodes the chunk thread's OS thread id.
pub fn put_thread_info(out: &mut [u8], pos: usize, os_tid: u64) -> usize {
    out[pos] = Kind::ThreadInfo as u8;
    put_varint(out, pos + 1, os_tid)
}

/// A Python code object as the capture defines it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeDef {
    pub id: u32,
    pub first_line: u32,
    pub name: String,
    pub filename: String,
    /// CPython's location table (`co_linetable`, 3.11+ format), to map offsets to lines when reading.
    /// Empty when the table was too large to send: then `lines` holds the offsets that were used.
    pub linetable: Vec<u8>,
    /// Lines by instruction offset, from `Line` records (`None`: the instruction has no line).
    pub lines: std::collections::BTreeMap<u32, Option<u32>>,
}

/// Bytes a code record takes.
pub fn code_len(name: &[u8], filename: &[u8], linetable: &[u8]) -> usize {
    1 + 4 * crate::varint::MAX_VARINT_LEN + name.len() + filename.len() + linetable.len()
}

/// Encodes a code object definition. `out` must hold [`code_len`] bytes from `pos`.
pub fn put_code(
    out: &mut [u8],
    pos: usize,
    id: u32,
    first_line: u32,
    name: &[u8],
    filename: &[u8],
    linetable: &[u8],
) -> usize {
    out[pos] = Kind::Code as u8;
    let mut pos = put_varint(out, pos + 1, u64::from(id));
    pos = put_varint(out, pos, u64::from(first_line));
    for bytes in [name, filename, linetable] {
        pos = put_varint(out, pos, bytes.len() as u64);
        out[pos..pos + bytes.len()].copy_from_slice(bytes);
        pos += bytes.len();
    }
    pos
}

/// Bytes a push record can take.
pub const MAX_PUSH_LEN: usize = 1 + 2 * crate::varint::MAX_VARINT_LEN;

/// Encodes entering a Python frame running code `code` at byte offset `offset`.
#[inline(always)]
pub fn put_push(out: &mut [u8], pos: usize, code: u32, offset: u32) -> usize {
    out[pos] = Kind::Push as u8;
    let pos = put_varint(out, pos + 1, u64::from(code));
    put_varint(out, pos, u64::from(offset))
}

/// Encodes leaving `count` Python frames.
#[inline(always)]
pub fn put_pop(out: &mut [u8], pos: usize, count: u32) -> usize {
    out[pos] = Kind::Pop as u8;
    put_varint(out, pos + 1, u64::from(count))
}

/// Bytes a line record can take.
pub const MAX_LINE_LEN: usize = 1 + 3 * crate::varint::MAX_VARINT_LEN;

/// Encodes the line of instruction `offset` of code `code` (`None`: no line).
pub fn put_line(out: &mut [u8], pos: usize, code: u32, offset: u32, line: Option<u32>) -> usize {
    out[pos] = Kind::Line as u8;
    let pos = put_varint(out, pos + 1, u64::from(code));
    let pos = put_varint(out, pos, u64::from(offset));
    put_varint(out, pos, line.map_or(0, |l| u64::from(l) + 1))
}

/// Encodes a time record (ns since the capture started).
pub fn put_time(out: &mut [u8], pos: usize, ns: u64) -> usize {
    out[pos] = Kind::Time as u8;
    put_varint(out, pos + 1, ns)
}

/// Bytes a mismatch record takes for stacks of these depths.
pub fn mismatch_len(walked: usize, profiled: usize) -> usize {
    1 + (2 + 2 * (walked + profiled)) * crate::varint::MAX_VARINT_LEN
}

/// Encodes a disagreement between the stack sources (check mode): both stacks, outermost first.
pub fn put_mismatch(
    out: &mut [u8],
    pos: usize,
    walked: &[(u32, u32)],
    profiled: &[(u32, u32)],
) -> usize {
    out[pos] = Kind::StackMismatch as u8;
    let mut pos = pos + 1;
    for stack in [walked, profiled] {
        pos = put_varint(out, pos, stack.len() as u64);
        for (code, offset) in stack {
            pos = put_varint(out, pos, u64::from(*code));
            pos = put_varint(out, pos, u64::from(*offset));
        }
    }
    pos
}

/// Bytes a native node record can take.
pub const MAX_NATIVE_NODE_LEN: usize = 1 + 3 * crate::varint::MAX_VARINT_LEN;
/// Bytes a native stack record can take.
pub const MAX_NATIVE_STACK_LEN: usize = 1 + crate::varint::MAX_VARINT_LEN;

/// Encodes a native trie node: `id` (unique in the capture, above its parent's), `parent` (0: the
/// root, the empty stack) and the frame's instruction pointer. The parent is stored as `id - parent`,
/// usually one byte.
#[inline(always)]
pub fn put_native_node(out: &mut [u8], pos: usize, id: u32, parent: u32, ip: u64) -> usize {
    out[pos] = Kind::NativeNode as u8;
    let pos = put_varint(out, pos + 1, u64::from(id));
    let pos = put_varint(out, pos, u64::from(id.wrapping_sub(parent)));
    put_varint(out, pos, ip)
}

/// Encodes the native stack (trie node `id`, 0 for none) of the events that follow.
#[inline(always)]
pub fn put_native_stack(out: &mut [u8], pos: usize, id: u32) -> usize {
    out[pos] = Kind::NativeStack as u8;
    put_varint(out, pos + 1, u64::from(id))
}

/// One loaded segment of an ELF object (a `PT_LOAD` of `dl_iterate_phdr`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ModuleSegment {
    /// Address range in the traced process.
    pub start: u64,
    pub end: u64,
    /// The segment's offset in the file.
    pub file_offset: u64,
    /// The object's load bias: an address minus the bias is the address in the ELF file.
    pub bias: u64,
    pub path: String,
}

/// Bytes a module record takes.
pub fn module_len(path: &[u8]) -> usize {
    1 + 5 * crate::varint::MAX_VARINT_LEN + path.len()
}

/// Encodes a module segment. `out` must hold [`module_len`] bytes from `pos`.
pub fn put_module(
    out: &mut [u8],
    pos: usize,
    start: u64,
    end: u64,
    file_offset: u64,
    bias: u64,
    path: &[u8],
) -> usize {
    out[pos] = Kind::Module as u8;
    let mut pos = put_varint(out, pos + 1, start);
    pos = put_varint(out, pos, end.wrapping_sub(start));
    pos = put_varint(out, pos, file_offset);
    pos = put_varint(out, pos, bias);
    pos = put_varint(out, pos, path.len() as u64);
    out[pos..pos + path.len()].copy_from_slice(path);
    pos + path.len()
}

/// Most addresses an eval-loop record carries.
pub const MAX_EVAL_LOOP_ADDRESSES: usize = 64;

/// Bytes an eval-loop record of `n` addresses takes.
pub fn eval_loop_len(n: usize) -> usize {
    1 + (n + 1) * crate::varint::MAX_VARINT_LEN
}

/// Encodes addresses inside the evaluation loop's code. `out` must hold [`eval_loop_len`] bytes
/// from `pos`.
pub fn put_eval_loop(out: &mut [u8], pos: usize, addresses: &[u64]) -> usize {
    out[pos] = Kind::EvalLoop as u8;
    let mut pos = put_varint(out, pos + 1, addresses.len() as u64);
    for &a in addresses {
        pos = put_varint(out, pos, a);
    }
    pos
}

/// One decoded record of a thread chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An allocation, free or realloc. For frees `size` is 0 (munmap: the length); for reallocs
    /// `old_addr` is the block given back (0 for none).
    Event {
        kind: Kind,
        epoch: u64,
        addr: u64,
        old_addr: u64,
        size: u64,
    },
    ThreadInfo {
        os_tid: u64,
    },
    Code(CodeDef),
    Push {
        code: u32,
        offset: u32,
    },
    Pop {
        count: u32,
    },
    Line {
        code: u32,
        offset: u32,
        line: Option<u32>,
    },
    Time {
        ns: u64,
    },
    StackMismatch {
        walked: Vec<(u32, u32)>,
        profiled: Vec<(u32, u32)>,
    },
    NativeNode {
        id: u32,
        parent: u32,
        ip: u64,
    },
    NativeStack {
        id: u32,
    },
    Module(ModuleSegment),
    EvalLoop {
        addresses: Vec<u64>,
    },
}

impl Record {
    pub fn kind(&self) -> Kind {
        match self {
            Record::Event { kind, .. } => *kind,
            Record::ThreadInfo { .. } => Kind::ThreadInfo,
            Record::Code(_) => Kind::Code,
            Record::Push { .. } => Kind::Push,
            Record::Pop { .. } => Kind::Pop,
            Record::Line { .. } => Kind::Line,
            Record::Time { .. } => Kind::Time,
            Record::StackMismatch { .. } => Kind::StackMismatch,
            Record::NativeNode { .. } => Kind::NativeNode,
            Record::NativeStack { .. } => Kind::NativeStack,
            Record::Module(_) => Kind::Module,
            Record::EvalLoop { .. } => Kind::EvalLoop,
        }
    }
}

/// Why a chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("record ends past the end of its chunk")]
    Eof,
    #[error("varint longer than 64 bits")]
    Overlong,
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
}

impl From<CursorError> for ChunkError {
    fn from(e: CursorError) -> Self {
        match e {
            CursorError::Eof => ChunkError::Eof,
            CursorError::Overlong => ChunkError::Overlong,
        }
    }
}

/// The header of a chunk, as [`begin_chunk`] wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub thread: u32,
    pub epoch: u64,
    pub start_ns: u64,
}

/// Decodes the records of one chunk body (the bytes after the frame prefix).
pub struct ChunkDecoder<'a> {
    cur: Cursor<'a>,
    st: ChunkState,
    pub header: ChunkHeader,
}

impl<'a> ChunkDecoder<'a> {
    pub fn new(body: &'a [u8]) -> Result<Self, ChunkError> {
        let mut cur = Cursor::new(body);
        let thread = u32::try_from(cur.varint()?).map_err(|_| ChunkError::Overlong)?;
        let epoch = cur.varint()?;
        let start_ns = cur.varint()?;
        Ok(ChunkDecoder {
            cur,
            st: ChunkState {
                prev_addr: 0,
                epoch,
            },
            header: ChunkHeader {
                thread,
                epoch,
                start_ns,
            },
        })
    }

    fn addr(&mut self) -> Result<u64, ChunkError> {
        let delta = self.cur.signed()?;
        self.st.prev_addr = self.st.prev_addr.wrapping_add(delta as u64);
        Ok(self.st.prev_addr)
    }

    /// Bytes of the chunk body read so far.
    pub fn position(&self) -> usize {
        self.cur.position()
    }

    fn u32(&mut self) -> Result<u32, ChunkError> {
        u32::try_from(self.cur.varint()?).map_err(|_| ChunkError::Overlong)
    }

    fn stack(&mut self) -> Result<Vec<(u32, u32)>, ChunkError> {
        let n = self.cur.varint()?;
        let mut out = Vec::new();
        for _ in 0..n {
            // Each frame takes at least two bytes: a bad count ends at the end of the data.
            out.push((self.u32()?, self.u32()?));
        }
        Ok(out)
    }

    fn next_record(&mut self) -> Result<Record, ChunkError> {
        let token = self.cur.u8()?;
        let kind = Kind::from_u8(token & TOKEN_KIND_MASK).ok_or(ChunkError::UnknownKind(token))?;
        if token & !(TOKEN_KIND_MASK | TOKEN_NEW_EPOCH) != 0 {
            return Err(ChunkError::UnknownKind(token));
        }
        match kind {
            Kind::ThreadInfo => {
                return Ok(Record::ThreadInfo {
                    os_tid: self.cur.varint()?,
                })
            }
            Kind::Code => {
                let id = self.u32()?;
                let first_line = self.u32()?;
                let name = self.cur.string()?;
                let filename = self.cur.string()?;
                let linetable = self.cur.bytes()?.to_vec();
                return Ok(Record::Code(CodeDef {
                    id,
                    first_line,
                    name,
                    filename,
                    linetable,
                    lines: Default::default(),
                }));
            }
            Kind::Push => {
                return Ok(Record::Push {
                    code: self.u32()?,
                    offset: self.u32()?,
                })
            }
            Kind::Pop => return Ok(Record::Pop { count: self.u32()? }),
            Kind::Time => {
                return Ok(Record::Time {
                    ns: self.cur.varint()?,
                })
            }
            Kind::Line => {
                let (code, offset, line) = (self.u32()?, self.u32()?, self.u32()?);
                return Ok(Record::Line {
                    code,
                    offset,
                    line: line.checked_sub(1),
                });
            }
            Kind::StackMismatch => {
                let walked = self.stack()?;
                let profiled = self.stack()?;
                return Ok(Record::StackMismatch { walked, profiled });
            }
            Kind::NativeNode => {
                let id = self.u32()?;
                let parent = id.wrapping_sub(self.u32()?);
                return Ok(Record::NativeNode {
                    id,
                    parent,
                    ip: self.cur.varint()?,
                });
            }
            Kind::NativeStack => return Ok(Record::NativeStack { id: self.u32()? }),
            Kind::Module => {
                let start = self.cur.varint()?;
                let end = start.wrapping_add(self.cur.varint()?);
                let file_offset = self.cur.varint()?;
                let bias = self.cur.varint()?;
                let path = self.cur.string()?;
                return Ok(Record::Module(ModuleSegment {
                    start,
                    end,
                    file_offset,
                    bias,
                    path,
                }));
            }
            Kind::EvalLoop => {
                // A count past the chunk's end fails at the chunk's end (nothing is reserved for it).
                let n = self.cur.varint()?;
                let addresses = (0..n)
                    .map(|_| self.cur.varint())
                    .collect::<Result<_, _>>()?;
                return Ok(Record::EvalLoop { addresses });
            }
            _ => {}
        }
        if token & TOKEN_NEW_EPOCH != 0 {
            self.st.epoch = self.st.epoch.wrapping_add(self.cur.varint()?);
        }
        let epoch = self.st.epoch;
        let (addr, old_addr, size) = if kind.is_realloc() {
            let old = self.addr()?;
            let new = self.addr()?;
            (new, old, self.cur.varint()?)
        } else if kind == Kind::Munmap {
            (self.addr()?, 0, self.cur.varint()?)
        } else if kind.is_free() {
            (self.addr()?, 0, 0)
        } else {
            (self.addr()?, 0, self.cur.varint()?)
        };
        Ok(Record::Event {
            kind,
            epoch,
            addr,
            old_addr,
            size,
        })
    }
}

impl Iterator for ChunkDecoder<'_> {
    type Item = Result<Record, ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.cur.is_empty() {
            return None;
        }
        let r = self.next_record();
        if r.is_err() {
            // One error ends the chunk: nothing after it can be trusted.
            self.cur = Cursor::new(&[]);
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_roundtrip() {
        let mut buf = vec![0u8; 4096];
        let (mut pos, mut st) = begin_chunk(&mut buf, 3, 7, 1000);
        pos = put_thread_info(&mut buf, pos, 4242);
        pos = put_alloc(
            &mut buf,
            pos,
            &mut st,
            Kind::Malloc,
            7,
            0x7f00_0000_1000,
            123,
        );
        pos = put_alloc(
            &mut buf,
            pos,
            &mut st,
            Kind::Calloc,
            9,
            0x7f00_0000_0800,
            64,
        );
        pos = put_realloc(
            &mut buf,
            pos,
            &mut st,
            Kind::Realloc,
            9,
            0x7f00_0000_1000,
            0x5555_0000,
            4000,
        );
        pos = put_free(&mut buf, pos, &mut st, Kind::Free, 12, 0x5555_0000);
        pos = put_munmap(&mut buf, pos, &mut st, 12, 0x7f12_3456_0000, 1 << 20);
        finish_chunk(&mut buf, pos);
        assert_eq!(buf[0], FRAME_THREAD_CHUNK);
        let len = u32::from_le_bytes(buf[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, pos - FRAME_PREFIX_LEN);
        let mut dec = ChunkDecoder::new(&buf[FRAME_PREFIX_LEN..pos]).unwrap();
        assert_eq!(
            dec.header,
            ChunkHeader {
                thread: 3,
                epoch: 7,
                start_ns: 1000
            }
        );
        let recs: Vec<Record> = dec.by_ref().map(|r| r.unwrap()).collect();
        let ev = |kind, epoch, addr, old_addr, size| Record::Event {
            kind,
            epoch,
            addr,
            old_addr,
            size,
        };
        assert_eq!(
            recs,
            vec![
                Record::ThreadInfo { os_tid: 4242 },
                ev(Kind::Malloc, 7, 0x7f00_0000_1000, 0, 123),
                ev(Kind::Calloc, 9, 0x7f00_0000_0800, 0, 64),
                ev(Kind::Realloc, 9, 0x5555_0000, 0x7f00_0000_1000, 4000),
                ev(Kind::Free, 12, 0x5555_0000, 0, 0),
                ev(Kind::Munmap, 12, 0x7f12_3456_0000, 0, 1 << 20),
            ]
        );
    }

    #[test]
    fn python_records_roundtrip() {
        let mut buf = vec![0u8; 4096];
        let (mut pos, _) = begin_chunk(&mut buf, 0, 0, 0);
        pos = put_code(&mut buf, pos, 7, 12, b"f", b"x.py", &[0x80, 0x01]);
        pos = put_push(&mut buf, pos, 7, 24);
        pos = put_pop(&mut buf, pos, 2);
        pos = put_mismatch(&mut buf, pos, &[(7, 24)], &[]);
        let recs: Vec<Record> = ChunkDecoder::new(&buf[FRAME_PREFIX_LEN..pos])
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            recs,
            vec![
                Record::Code(CodeDef {
                    id: 7,
                    first_line: 12,
                    name: "f".into(),
                    filename: "x.py".into(),
                    linetable: vec![0x80, 0x01],
                    lines: Default::default(),
                }),
                Record::Push {
                    code: 7,
                    offset: 24
                },
                Record::Pop { count: 2 },
                Record::StackMismatch {
                    walked: vec![(7, 24)],
                    profiled: vec![]
                },
            ]
        );
    }

    #[test]
    fn native_records_roundtrip() {
        let mut buf = vec![0u8; 4096];
        let (mut pos, _) = begin_chunk(&mut buf, 0, 0, 0);
        pos = put_module(
            &mut buf,
            pos,
            0x5555_0000,
            0x5556_0000,
            0x1000,
            0x5554_f000,
            b"/bin/x",
        );
        pos = put_native_node(&mut buf, pos, 1, 0, 0x5555_1234);
        pos = put_native_node(&mut buf, pos, 300, 1, 0x7fff_0000_1234);
        pos = put_native_stack(&mut buf, pos, 300);
        pos = put_eval_loop(&mut buf, pos, &[0x43_d73e, 0x5b_fab0]);
        let recs: Vec<Record> = ChunkDecoder::new(&buf[FRAME_PREFIX_LEN..pos])
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            recs,
            vec![
                Record::Module(ModuleSegment {
                    start: 0x5555_0000,
                    end: 0x5556_0000,
                    file_offset: 0x1000,
                    bias: 0x5554_f000,
                    path: "/bin/x".into()
                }),
                Record::NativeNode {
                    id: 1,
                    parent: 0,
                    ip: 0x5555_1234
                },
                Record::NativeNode {
                    id: 300,
                    parent: 1,
                    ip: 0x7fff_0000_1234
                },
                Record::NativeStack { id: 300 },
                Record::EvalLoop {
                    addresses: vec![0x43_d73e, 0x5b_fab0]
                },
            ]
        );
    }

    #[test]
    fn unknown_kind_is_an_error_and_ends_the_chunk() {
        let body = [1u8, 0, 0, 0x3e, 0x01];
        let mut dec = ChunkDecoder::new(&body).unwrap();
        assert_eq!(dec.next(), Some(Err(ChunkError::UnknownKind(0x3e))));
        assert_eq!(dec.next(), None);
    }

    #[test]
    fn repeated_small_allocations_take_few_bytes() {
        let mut buf = vec![0u8; 1 << 16];
        let (start, mut st) = begin_chunk(&mut buf, 0, 0, 0);
        let mut pos = start;
        for i in 0..1000u64 {
            pos = put_alloc(
                &mut buf,
                pos,
                &mut st,
                Kind::Malloc,
                0,
                0x5000_0000 + i * 128,
                123,
            );
        }
        // The first address is a 5-byte delta from 0; then token + 2-byte delta + 1-byte size.
        assert_eq!(pos - start, 7 + 999 * 4);
    }
}
