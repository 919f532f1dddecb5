//! Provides [`read_capture`]: decodes a whole capture into events in global order.
//!
//! A capture cut short (the process was killed, the disk filled) reads up to its last complete
//! frame and says so in [`Capture::truncated`]; anything that is not a capture, or is damaged inside a
//! complete frame, is an error with one line of explanation.

use std::collections::BTreeMap;
use std::io::Read;

use crate::compress::{decompress_body, FRAME_COMPRESSED_CHUNK};
use crate::header::Header;
use crate::native::{NativeId, NativeTree};
use crate::record::{
    ChunkDecoder, CodeDef, Kind, ModuleSegment, Record, FORMAT_VERSION, FRAME_END,
    FRAME_PREFIX_LEN, FRAME_THREAD_CHUNK, MAGIC,
};
use crate::stacks::{StackId, StackTree};
use crate::varint::Cursor;

/// No frame the preload writes comes near this; a larger length means damage, and refusing it
/// keeps a corrupt length from making the reader allocate gigabytes.
pub const MAX_FRAME_LEN: u32 = 64 << 20;

/// A stack as recorded: (code id, instruction offset) per frame, outermost first.
pub type RawStack = Vec<(u32, u32)>;

/// One allocation, free or realloc, in global order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    /// The tracer's thread number (0 is the first thread that allocated).
    pub thread: u32,
    pub epoch: u64,
    /// The block's address (for a realloc, the new block; 0 when realloc freed without allocating).
    pub addr: u64,
    /// For a realloc, the block given back (0 for none).
    pub old_addr: u64,
    /// Bytes asked for (munmap: bytes unmapped; free: 0).
    pub size: u64,
    /// When the event happened, in nanoseconds since the capture started: the last time record before
    /// it (the writer sends one every 64 allocations, and one starts each chunk).
    pub time_ns: u64,
    /// The Python stack the event happened in (`StackTree::ROOT`: no Python frame).
    pub stack: StackId,
    /// The native stack (`--native`; `NativeTree::ROOT`: none recorded).
    pub native: NativeId,
}

/// A decoded capture.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub header: Header,
    pub events: Vec<Event>,
    /// Tracer thread number → OS thread id.
    pub threads: BTreeMap<u32, u64>,
    /// The tracer's own counters from the end-of-capture record (empty when truncated).
    pub counters: Vec<(String, u64)>,
    /// Why the capture is incomplete, if it is.
    pub truncated: Option<String>,
    pub chunks: u64,
    pub bytes: u64,
    /// Python code objects by id.
    pub codes: BTreeMap<u32, CodeDef>,
    /// Every Python stack an event happened in.
    pub stacks: StackTree,
    /// Lines sent one instruction at a time (`Line` records) while reading; folded into `codes` (and
    /// emptied) once the whole capture is read.
    pub lines: BTreeMap<(u32, u32), Option<u32>>,
    /// Records and their bytes (before compression) by kind.
    pub record_bytes: BTreeMap<Kind, (u64, u64)>,
    /// Check mode: the points where the two stack sources disagreed (walked, profiled).
    pub mismatches: Vec<(RawStack, RawStack)>,
    /// Native mode: every native stack node, and the loaded segments of the traced process's objects
    /// (in the order recorded: a later segment over the same addresses replaces an earlier one).
    pub native: NativeTree,
    pub modules: Vec<ModuleSegment>,
    /// Native mode: addresses inside the Python interpreter's evaluation loop (its exported entry, and
    /// where the loop was seen on the stack at start-up). Empty in captures made before this record.
    pub eval_loop: Vec<u64>,
}

/// Why a file could not be read as a capture.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a capture file (it does not start with the tracer's magic bytes)")]
    NotACapture,
    #[error(
        "capture format version {0} is not supported (this reader knows version {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u16),
    #[error("corrupt capture at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads up to `len` bytes; returns fewer only at the end of the input.
fn read_up_to(r: &mut impl Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(1 << 20));
    r.take(len as u64).read_to_end(&mut out)?;
    Ok(out)
}

fn corrupt(offset: u64, reason: &str) -> ReadError {
    ReadError::Corrupt {
        offset,
        reason: reason.to_string(),
    }
}

/// Decodes only a capture's header (what `tracer run` reports on); the rest is not read.
pub fn read_header(mut r: impl Read) -> Result<Header, ReadError> {
    read_header_frame(&mut r).map(|(header, _)| header)
}

/// The header and the header frame's length in bytes.
fn read_header_frame(r: &mut impl Read) -> Result<(Header, u64), ReadError> {
    let prefix = read_up_to(r, 14)?;
    if prefix.len() < MAGIC.len() || &prefix[..8] != MAGIC {
        return Err(ReadError::NotACapture);
    }
    if prefix.len() < 14 {
        return Err(corrupt(
            prefix.len() as u64,
            "the file ends inside its header",
        ));
    }
    let version = u16::from_le_bytes([prefix[8], prefix[9]]);
    if version != FORMAT_VERSION {
        return Err(ReadError::UnsupportedVersion(version));
    }
    let header_len = u32::from_le_bytes(prefix[10..14].try_into().expect("4 bytes"));
    if header_len > MAX_FRAME_LEN {
        return Err(corrupt(10, "header length out of range"));
    }
    let body = read_up_to(r, header_len as usize)?;
    if body.len() < header_len as usize {
        return Err(corrupt(
            14 + body.len() as u64,
            "the file ends inside its header",
        ));
    }
    let header =
        Header::decode_body(version, &body).ok_or_else(|| corrupt(14, "malformed header"))?;
    Ok((header, 14 + u64::from(header_len)))
}

/// Decodes a capture from `r`.
pub fn read_capture(mut r: impl Read) -> Result<Capture, ReadError> {
    let (header, header_bytes) = read_header_frame(&mut r)?;
    let mut cap = Capture {
        header,
        ..Capture::default()
    };
    let mut offset = header_bytes;
    let mut ended = false;
    loop {
        let prefix = read_up_to(&mut r, FRAME_PREFIX_LEN)?;
        if prefix.is_empty() {
            break;
        }
        if ended {
            return Err(corrupt(offset, "data after the end-of-capture record"));
        }
        if prefix.len() < FRAME_PREFIX_LEN {
            cap.truncated = Some(format!("the file ends inside a record at byte {offset}"));
            break;
        }
        let len = u32::from_le_bytes(prefix[1..5].try_into().expect("4 bytes"));
        if len > MAX_FRAME_LEN {
            return Err(corrupt(
                offset,
                &format!("record length {len} out of range"),
            ));
        }
        let body = read_up_to(&mut r, len as usize)?;
        if body.len() < len as usize {
            cap.truncated = Some(format!("the file ends inside a record at byte {offset}"));
            break;
        }
        let body_offset = offset + FRAME_PREFIX_LEN as u64;
        match prefix[0] {
            FRAME_THREAD_CHUNK => decode_chunk(&mut cap, &body)
                .map_err(|(at, reason)| corrupt(body_offset + at as u64, &reason))?,
            FRAME_COMPRESSED_CHUNK => {
                let plain = decompress_body(&body, MAX_FRAME_LEN as usize)
                    .map_err(|reason| corrupt(body_offset, &reason))?;
                decode_chunk(&mut cap, &plain)
                    .map_err(|(_, reason)| corrupt(body_offset, &reason))?
            }
            FRAME_END => {
                cap.counters = decode_end(&body)
                    .ok_or_else(|| corrupt(body_offset, "malformed end-of-capture record"))?;
                ended = true;
            }
            other => return Err(corrupt(offset, &format!("unknown record type {other}"))),
        }
        offset = body_offset + u64::from(len);
    }
    if !ended && cap.truncated.is_none() {
        cap.truncated =
            Some("no end-of-capture record: the process was killed or is still running".into());
    }
    cap.bytes = offset;
    // A line record may come before its code's definition (another thread's chunk, later in the file).
    for ((code, offset), line) in std::mem::take(&mut cap.lines) {
        if let Some(def) = cap.codes.get_mut(&code) {
            def.lines.insert(offset, line);
        }
    }
    // Within an epoch all events come from one thread, in file order; the stable sort keeps that.
    cap.events.sort_by_key(|e| e.epoch);
    Ok(cap)
}

fn decode_chunk(cap: &mut Capture, body: &[u8]) -> Result<(), (usize, String)> {
    let mut dec = ChunkDecoder::new(body).map_err(|e| (0, format!("bad thread chunk: {e}")))?;
    let (thread, mut time_ns) = (dec.header.thread, dec.header.start_ns);
    cap.chunks += 1;
    // Every chunk starts with an empty Python stack (the writer re-sends the whole stack).
    let mut stack = StackTree::ROOT;
    // Likewise no native stack (the writer re-sends it after a chunk starts).
    let mut native = NativeTree::ROOT;
    let mut at = dec.position();
    while let Some(rec) = dec.next() {
        let rec = rec.map_err(|e| (at, format!("bad record in thread chunk: {e}")))?;
        let t = cap.record_bytes.entry(rec.kind()).or_default();
        t.0 += 1;
        t.1 += (dec.position() - at) as u64;
        at = dec.position();
        match rec {
            Record::ThreadInfo { os_tid } => {
                cap.threads.insert(thread, os_tid);
            }
            Record::Event {
                kind,
                epoch,
                addr,
                old_addr,
                size,
            } => {
                cap.events.push(Event {
                    kind,
                    thread,
                    epoch,
                    addr,
                    old_addr,
                    size,
                    time_ns,
                    stack,
                    native,
                });
            }
            Record::Code(def) => {
                cap.codes.insert(def.id, def);
            }
            Record::Push { code, offset } => stack = cap.stacks.push(stack, code, offset),
            Record::Pop { count } => stack = cap.stacks.pop(stack, count),
            Record::Time { ns } => time_ns = ns,
            Record::Line { code, offset, line } => {
                cap.lines.insert((code, offset), line);
            }
            Record::StackMismatch { walked, profiled } => cap.mismatches.push((walked, profiled)),
            Record::NativeNode { id, parent, ip } => cap.native.insert(id, parent, ip),
            Record::NativeStack { id } => native = cap.native.id(id),
            Record::Module(m) => cap.modules.push(m),
            Record::EvalLoop { addresses } => cap.eval_loop.extend(addresses),
        }
    }
    Ok(())
}

fn decode_end(body: &[u8]) -> Option<Vec<(String, u64)>> {
    let mut c = Cursor::new(body);
    let n = c.varint().ok()?;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push((c.string().ok()?, c.varint().ok()?));
    }
    Some(out)
}
