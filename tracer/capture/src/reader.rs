//! Provides [`read_capture`] (decodes a whole capture into events in global order) and
//! [`open_capture`] (the same events, streamed in two passes, for captures too large to hold).
//!
//! A capture cut short (the process was killed, the disk filled) reads up to its last complete
//! frame and says so in [`Capture::truncated`]; anything that is not a capture, or is damaged inside a
//! complete frame, is an error with one line of explanation.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{Read, Seek, SeekFrom};

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

/// Decodes a capture from `r`, every event in memory (see [`open_capture`] for a capture too large for
/// that).
pub fn read_capture(r: impl Read) -> Result<Capture, ReadError> {
    let (mut cap, _) = scan(r, true)?;
    // Within an epoch all events come from one thread, in file order; the stable sort keeps that.
    cap.events.sort_by_key(|e| e.epoch);
    Ok(cap)
}

/// Where one thread chunk with events lies in the file, and the lowest epoch of its events.
#[derive(Debug, Clone, Copy)]
struct ChunkEntry {
    /// The frame's body: where it starts in the file, its length, whether it is compressed.
    body_offset: u64,
    len: u32,
    compressed: bool,
    /// The chunk's place among the file's chunks (ties between equal epochs go to the earlier one).
    index: u32,
    first_epoch: u64,
    events: u32,
}

/// An event's place in the global order: (epoch, chunk, place in the chunk).
type RunKey = (u64, u32, u32);

/// A run of a chunk's events whose epochs never decrease (a chunk the preload wrote is one run: its
/// epoch only grows by deltas; a delta that wraps around starts another).
struct OpenChunk {
    events: Vec<Event>,
    next: usize,
    index: u32,
    /// Where the run starts in its chunk.
    base: u32,
}

impl OpenChunk {
    /// Events are ordered by (epoch, chunk, place in the chunk): the stable sort's order.
    fn key(&self) -> RunKey {
        (
            self.events[self.next].epoch,
            self.index,
            self.base + self.next as u32,
        )
    }
}

/// A capture read without its events: [`StreamedCapture::events`] replays them, in global order,
/// holding only the chunks whose epochs overlap the current one.
pub struct StreamedCapture<R> {
    /// Everything but the events (`events` is empty): header, counters, code objects, stacks, native
    /// definitions, record sizes, whether it is truncated.
    pub capture: Capture,
    /// Events in the capture (every chunk that `events` will replay).
    pub event_count: u64,
    chunks: Vec<ChunkEntry>,
    source: R,
}

/// Reads a capture's definitions and indexes its chunks (pass 1); the events are read again, in order,
/// by [`StreamedCapture::events`] (pass 2). Memory is bounded by the definitions (code objects,
/// stacks) and the chunk index, not by the number of events. The same errors as [`read_capture`].
pub fn open_capture<R: Read + Seek>(mut source: R) -> Result<StreamedCapture<R>, ReadError> {
    let start = source.stream_position()?;
    let (cap, mut chunks) = scan(&mut source, false)?;
    for c in &mut chunks {
        c.body_offset += start;
    }
    let event_count = chunks.iter().map(|c| u64::from(c.events)).sum();
    // Sorted by the first event each chunk can give: pass 2 opens them in this order.
    chunks.sort_by_key(|c| (c.first_epoch, c.index));
    Ok(StreamedCapture {
        capture: cap,
        event_count,
        chunks,
        source,
    })
}

impl<R: Read + Seek + Send> StreamedCapture<R> {
    /// Calls `f` with each event in global order: sorted by epoch, in file order within an epoch
    /// (exactly [`read_capture`]'s order), with the capture's native tree (which `f` may add stacks
    /// to). Chunks are merged by epoch: a chunk is decoded when its first event could be the next one,
    /// so only chunks whose epoch ranges overlap are in memory at once. A second thread reads and
    /// decodes the chunks (in the order they are opened, a few ahead) while this one merges.
    pub fn events(&mut self, mut f: impl FnMut(&Event, &mut NativeTree)) -> Result<(), ReadError> {
        /// Chunks decoded ahead of the merge (each at most a chunk's events: ~1 MiB).
        const AHEAD: usize = 8;
        let mut stacks = std::mem::take(&mut self.capture.stacks);
        // The decoder maps the file's native ids (which `f` never changes: it only adds stacks).
        let native_ids = self.capture.native.clone();
        let chunks = &self.chunks;
        let source = &mut self.source;
        let native = &mut self.capture.native;
        let (decoded_tx, decoded) =
            std::sync::mpsc::sync_channel::<Result<Vec<Event>, ReadError>>(AHEAD);
        let (spare_tx, spare) = std::sync::mpsc::channel::<Vec<Event>>();
        let (stacks_mut, native_ids) = (&mut stacks, &native_ids);
        let result = std::thread::scope(|scope| {
            let decoder = scope.spawn(move || {
                let mut loader = Loader::default();
                for entry in chunks {
                    let mut events = spare.try_recv().unwrap_or_default();
                    events.clear();
                    let r = loader
                        .load(source, entry, stacks_mut, native_ids, &mut events)
                        .map(|()| events);
                    let failed = r.is_err();
                    if decoded_tx.send(r).is_err() || failed {
                        break;
                    }
                }
                drop(decoded_tx);
            });
            let r = merge(chunks, &decoded, &spare_tx, |e| f(e, native));
            // On an error the decoder stops at its next send.
            drop(decoded);
            decoder.join().expect("the chunk decoder does not panic");
            r
        });
        self.capture.stacks = stacks;
        result
    }
}

/// The merge of pass 2: opens chunks in `chunks`' order (their decoded events come from `decoded`)
/// and gives every event in global order.
fn merge(
    chunks: &[ChunkEntry],
    decoded: &std::sync::mpsc::Receiver<Result<Vec<Event>, ReadError>>,
    spare: &std::sync::mpsc::Sender<Vec<Event>>,
    mut f: impl FnMut(&Event),
) -> Result<(), ReadError> {
    // Open runs by their next event's key, with their slot in `open`.
    let mut heap: BinaryHeap<Reverse<(RunKey, usize)>> = BinaryHeap::new();
    let mut open: Vec<Option<OpenChunk>> = Vec::new();
    let mut free_slots: Vec<usize> = Vec::new();
    let mut next_chunk = 0;
    loop {
        // Open every chunk whose first event comes before the earliest open event.
        while let Some(&entry) = chunks.get(next_chunk) {
            let first = (entry.first_epoch, entry.index, 0);
            if heap.peek().is_some_and(|Reverse((key, _))| *key < first) {
                break;
            }
            next_chunk += 1;
            let events = decoded
                .recv()
                .map_err(|_| corrupt(entry.body_offset, "the chunk decoder stopped"))??;
            for run in split_runs(events, entry.index) {
                let key = run.key();
                let slot = match free_slots.pop() {
                    Some(slot) => {
                        open[slot] = Some(run);
                        slot
                    }
                    None => {
                        open.push(Some(run));
                        open.len() - 1
                    }
                };
                heap.push(Reverse((key, slot)));
            }
        }
        let Some(Reverse((_, slot))) = heap.pop() else {
            break;
        };
        let chunk = open[slot].as_mut().expect("an open chunk");
        // Give this chunk's events while they stay first (the usual case: one thread at a time).
        let limit = heap.peek().map(|Reverse((key, _))| *key);
        let unopened = chunks.get(next_chunk).map(|c| (c.first_epoch, c.index, 0));
        loop {
            f(&chunk.events[chunk.next]);
            chunk.next += 1;
            if chunk.next == chunk.events.len() {
                break;
            }
            let key = chunk.key();
            if limit.is_some_and(|l| l < key) || unopened.is_some_and(|u| u < key) {
                break;
            }
        }
        if chunk.next == chunk.events.len() {
            let done = open[slot].take().expect("an open chunk");
            // The decoder may be gone already (it stops after the last chunk).
            let _ = spare.send(done.events);
            free_slots.push(slot);
        } else {
            heap.push(Reverse((chunk.key(), slot)));
        }
    }
    Ok(())
}

/// Reads chunks again in pass 2, keeping its buffers and where the source is.
#[derive(Default)]
struct Loader {
    position: Option<u64>,
    body: Vec<u8>,
    plain: Vec<u8>,
}

impl Loader {
    /// Reads and decodes one chunk's events again.
    fn load<S: Read + Seek>(
        &mut self,
        source: &mut S,
        entry: &ChunkEntry,
        stacks: &mut StackTree,
        native: &NativeTree,
        events: &mut Vec<Event>,
    ) -> Result<(), ReadError> {
        if self.position != Some(entry.body_offset) {
            source.seek(SeekFrom::Start(entry.body_offset))?;
        }
        self.body.clear();
        self.body.resize(entry.len as usize, 0);
        source.read_exact(&mut self.body).map_err(|e| {
            corrupt(
                entry.body_offset,
                &format!("the file changed while it was read ({e})"),
            )
        })?;
        self.position = Some(entry.body_offset + u64::from(entry.len));
        let decoded = if entry.compressed {
            self.plain = decompress_body(&self.body, MAX_FRAME_LEN as usize)
                .map_err(|reason| corrupt(entry.body_offset, &reason))?;
            &self.plain[..]
        } else {
            &self.body[..]
        };
        replay_chunk(stacks, native, decoded, events)
            .map_err(|(at, reason)| corrupt(entry.body_offset + at as u64, &reason))?;
        if events.len() != entry.events as usize {
            return Err(corrupt(
                entry.body_offset,
                "the file changed while it was read",
            ));
        }
        Ok(())
    }
}

/// Pass 2's decoding of a chunk: only what gives events their stacks and times (the definitions were
/// read in pass 1; `stacks` has every stack already, so a push finds its node).
fn replay_chunk(
    stacks: &mut StackTree,
    natives: &NativeTree,
    body: &[u8],
    events: &mut Vec<Event>,
) -> Result<(), (usize, String)> {
    let mut dec = ChunkDecoder::new(body).map_err(|e| (0, format!("bad thread chunk: {e}")))?;
    let (thread, mut time_ns) = (dec.header.thread, dec.header.start_ns);
    let mut stack = StackTree::ROOT;
    let mut native = NativeTree::ROOT;
    let mut at = dec.position();
    while let Some(rec) = dec.next() {
        let rec = rec.map_err(|e| (at, format!("bad record in thread chunk: {e}")))?;
        at = dec.position();
        match rec {
            Record::Event {
                kind,
                epoch,
                addr,
                old_addr,
                size,
            } => events.push(Event {
                kind,
                thread,
                epoch,
                addr,
                old_addr,
                size,
                time_ns,
                stack,
                native,
            }),
            Record::Push { code, offset } => stack = stacks.push(stack, code, offset),
            Record::Pop { count } => stack = stacks.pop(stack, count),
            Record::Time { ns } => time_ns = ns,
            Record::NativeStack { id } => native = natives.id(id),
            _ => {}
        }
    }
    Ok(())
}

/// A chunk's events as runs of non-decreasing epochs (one run, without copying, in every capture the
/// preload writes).
fn split_runs(mut events: Vec<Event>, index: u32) -> Vec<OpenChunk> {
    let mut cuts: Vec<usize> = (1..events.len())
        .filter(|&i| events[i].epoch < events[i - 1].epoch)
        .collect();
    let mut runs = Vec::with_capacity(cuts.len() + 1);
    while let Some(cut) = cuts.pop() {
        runs.push(OpenChunk {
            events: events.split_off(cut),
            next: 0,
            index,
            base: cut as u32,
        });
    }
    if !events.is_empty() {
        runs.push(OpenChunk {
            events,
            next: 0,
            index,
            base: 0,
        });
    }
    runs
}

/// Pass 1: every frame in order; events kept in `cap.events` (`keep_events`) or only indexed.
fn scan(mut r: impl Read, keep_events: bool) -> Result<(Capture, Vec<ChunkEntry>), ReadError> {
    let (header, header_bytes) = read_header_frame(&mut r)?;
    let mut cap = Capture {
        header,
        ..Capture::default()
    };
    let mut index = Vec::new();
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
        let mut entry = ChunkEntry {
            body_offset,
            len,
            compressed: prefix[0] == FRAME_COMPRESSED_CHUNK,
            index: cap.chunks as u32,
            first_epoch: 0,
            events: 0,
        };
        let sink = if keep_events {
            Sink::Keep
        } else {
            Sink::Index(&mut entry)
        };
        match prefix[0] {
            FRAME_THREAD_CHUNK => decode_chunk(&mut cap, &body, sink)
                .map_err(|(at, reason)| corrupt(body_offset + at as u64, &reason))?,
            FRAME_COMPRESSED_CHUNK => {
                let plain = decompress_body(&body, MAX_FRAME_LEN as usize)
                    .map_err(|reason| corrupt(body_offset, &reason))?;
                decode_chunk(&mut cap, &plain, sink)
                    .map_err(|(_, reason)| corrupt(body_offset, &reason))?
            }
            FRAME_END => {
                cap.counters = decode_end(&body)
                    .ok_or_else(|| corrupt(body_offset, "malformed end-of-capture record"))?;
                ended = true;
            }
            other => return Err(corrupt(offset, &format!("unknown record type {other}"))),
        }
        if entry.events > 0 {
            index.push(entry);
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
    Ok((cap, index))
}

/// What [`decode_chunk`] does with a chunk's events.
enum Sink<'a> {
    /// Pass 1 of [`read_capture`]: definitions read, events appended to `cap.events`.
    Keep,
    /// Pass 1 of [`open_capture`]: definitions read, events counted.
    Index(&'a mut ChunkEntry),
}

fn decode_chunk(cap: &mut Capture, body: &[u8], mut sink: Sink) -> Result<(), (usize, String)> {
    let mut dec = ChunkDecoder::new(body).map_err(|e| (0, format!("bad thread chunk: {e}")))?;
    let (thread, mut time_ns) = (dec.header.thread, dec.header.start_ns);
    cap.chunks += 1;
    // Every chunk starts with an empty Python stack (the writer re-sends the whole stack).
    let mut stack = StackTree::ROOT;
    // Likewise no native stack (the writer re-sends it after a chunk starts).
    let mut native = NativeTree::ROOT;
    // Records and bytes by kind, added to `cap.record_bytes` at the end of the chunk.
    let mut record_bytes = [(0u64, 0u64); 64];
    let mut at = dec.position();
    while let Some(rec) = dec.next() {
        let rec = rec.map_err(|e| (at, format!("bad record in thread chunk: {e}")))?;
        let t = &mut record_bytes[rec.kind() as usize & 63];
        t.0 += 1;
        t.1 += (dec.position() - at) as u64;
        at = dec.position();
        match rec {
            Record::Event {
                kind,
                epoch,
                addr,
                old_addr,
                size,
            } => {
                let event = Event {
                    kind,
                    thread,
                    epoch,
                    addr,
                    old_addr,
                    size,
                    time_ns,
                    stack,
                    native,
                };
                match &mut sink {
                    Sink::Keep => cap.events.push(event),
                    Sink::Index(entry) => {
                        if entry.events == 0 || epoch < entry.first_epoch {
                            entry.first_epoch = epoch;
                        }
                        entry.events += 1;
                    }
                }
            }
            Record::Push { code, offset } => stack = cap.stacks.push(stack, code, offset),
            Record::Pop { count } => stack = cap.stacks.pop(stack, count),
            Record::Time { ns } => time_ns = ns,
            Record::NativeStack { id } => native = cap.native.id(id),
            Record::ThreadInfo { os_tid } => {
                cap.threads.insert(thread, os_tid);
            }
            Record::Code(def) => {
                cap.codes.insert(def.id, def);
            }
            Record::Line { code, offset, line } => {
                cap.lines.insert((code, offset), line);
            }
            Record::StackMismatch { walked, profiled } => cap.mismatches.push((walked, profiled)),
            Record::NativeNode { id, parent, ip } => cap.native.insert(id, parent, ip),
            Record::Module(m) => cap.modules.push(m),
            Record::EvalLoop { addresses } => cap.eval_loop.extend(addresses),
        }
    }
    for (i, (count, bytes)) in record_bytes.into_iter().enumerate() {
        if let (true, Some(kind)) = (count > 0, Kind::from_u8(i as u8)) {
            let t = cap.record_bytes.entry(kind).or_default();
            t.0 += count;
            t.1 += bytes;
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
