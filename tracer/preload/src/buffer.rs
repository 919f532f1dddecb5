//! Provides [`ThreadBuffer`]: a thread's chunk under construction. The owning thread appends records
//! without any lock; a full chunk goes to the writer (`writer::submit`) in exchange for an empty one.
//!
//! The exit flush may read a live buffer from another thread (`writer::finish`), so the buffer is split
//! in two: [`LiveChunk`], read by that flush (atomics only), and [`Local`], touched only by the owner.
//! The owner writes only at or past `committed` and into the frame prefix, which the flush never reads.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed, Ordering::Release};

use tracer_capture::record::{
    self, ChunkState, Kind, MAX_CHUNK_HEADER_LEN, MAX_EVENT_RECORD_LEN, MAX_NATIVE_NODE_LEN,
    MAX_NATIVE_STACK_LEN,
};
use tracer_capture::varint::MAX_VARINT_LEN;

use crate::counters::{self, ThreadCounters};
use crate::native::{self, NativeThread};
use crate::python::{self, PyThread};
use crate::writer::{self, LiveChunk};
use crate::{clock, order};

/// Allocations between two time records.
const TIME_EVERY: u32 = 64;

/// The owner's state.
pub struct Local {
    chunk: Vec<u8>,
    pos: usize,
    st: ChunkState,
    owner: u64,
    counters: ThreadCounters,
    /// Counts the chunks this thread started (see [`Sink::chunk`]).
    serial: u64,
    /// Native mode's trie (empty otherwise).
    native: NativeThread,
    /// Allocations since the last time record.
    since_time: u32,
}

pub struct ThreadBuffer {
    shared: LiveChunk,
    local: Local,
    /// The thread's Python state, which the Python side keeps here and writes through [`Out`].
    py: PyThread,
}

/// The chunk as the record writers see it: the owner's state and what the exit flush reads.
struct Out<'a> {
    shared: &'a LiveChunk,
    local: &'a mut Local,
}

impl ThreadBuffer {
    /// A buffer for tracer thread `thread`, starting with the thread's OS id.
    pub fn new(thread: u32, os_tid: u64) -> Box<ThreadBuffer> {
        let chunk = writer::take_empty_chunk();
        let mut tb = Box::new(ThreadBuffer {
            shared: LiveChunk {
                data: AtomicPtr::new(std::ptr::null_mut()),
                committed: AtomicUsize::new(0),
                records_start: AtomicUsize::new(0),
                thread,
            },
            local: Local {
                chunk: Vec::new(),
                pos: 0,
                st: ChunkState::default(),
                owner: order::owner_of(thread),
                counters: ThreadCounters::default(),
                serial: 0,
                native: NativeThread::default(),
                since_time: 0,
            },
            py: PyThread::default(),
        });
        let epoch = order::epoch(tb.local.owner);
        let mut out = tb.out();
        out.start_chunk(chunk, epoch);
        let n = record::put_thread_info(out.window(MAX_EVENT_RECORD_LEN).0, 0, os_tid);
        out.commit(n);
        tb
    }

    #[inline(always)]
    fn out(&mut self) -> Out<'_> {
        Out {
            shared: &self.shared,
            local: &mut self.local,
        }
    }

    /// Records the calling thread's Python stack (see `python::records`). The sink is made only when
    /// there is a stack to record, out of line: on the hot path nothing is put on the stack for it.
    #[inline(always)]
    fn python_stack(&mut self) {
        if let Some(source) = python::records::stack_source() {
            self.emit_python_stack(source);
        }
    }

    #[inline(never)]
    fn emit_python_stack(&mut self, source: python::Source) {
        let mut out = Out {
            shared: &self.shared,
            local: &mut self.local,
        };
        python::records::python_stack(&mut out, &mut self.py, source);
    }

    /// Room for `n` more bytes (see [`Out::reserve`]); the chunk is handed over out of line, so the
    /// hot path tests the room and builds no `Out`.
    #[inline(always)]
    fn reserve(&mut self, n: usize) -> bool {
        if self.local.pos + n > self.local.chunk.len() {
            self.rotate();
            return true;
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn rotate(&mut self) {
        self.out().rotate();
    }

    #[inline(always)]
    fn window(&mut self, n: usize) -> (&mut [u8], &mut ChunkState) {
        let l = &mut self.local;
        assert!(l.pos + n <= l.chunk.len());
        // SAFETY: in bounds (checked above), and nobody else writes to or reads from bytes at or past
        // `committed == pos`.
        let w = unsafe { std::slice::from_raw_parts_mut(l.chunk.as_mut_ptr().add(l.pos), n) };
        (w, &mut l.st)
    }

    #[inline(always)]
    fn commit(&mut self, written: usize) {
        self.out().commit(written);
    }
}

impl Out<'_> {
    fn start_chunk(&mut self, mut chunk: Vec<u8>, epoch: u64) {
        let (pos, st) = record::begin_chunk(
            &mut chunk[..MAX_CHUNK_HEADER_LEN],
            self.shared.thread,
            epoch,
            clock::since_start_ns(),
        );
        self.local.pos = pos;
        self.local.st = st;
        self.shared.data.store(chunk.as_mut_ptr(), Release);
        self.shared.records_start.store(pos, Release);
        self.shared.committed.store(pos, Release);
        self.local.chunk = chunk;
        self.local.serial += 1;
    }

    /// Room for `n` more bytes, handing the chunk over when it is full. Returns whether a new chunk
    /// was started (a new serial: the stacks last recorded are re-sent in it).
    #[inline(always)]
    fn reserve(&mut self, n: usize) -> bool {
        if self.local.pos + n > self.local.chunk.len() {
            self.rotate();
            return true;
        }
        false
    }

    /// Sends the current chunk to the writer and starts an empty one.
    #[cold]
    fn rotate(&mut self) {
        let epoch = self.local.st.epoch;
        let full = std::mem::take(&mut self.local.chunk);
        let has_records = self.local.pos > self.shared.records_start.load(Relaxed);
        self.publish_counters();
        let empty = writer::submit(full, self.local.pos, has_records);
        self.start_chunk(empty, epoch);
        self.local.native.emitted = native::NONE_EMITTED;
    }

    fn publish_counters(&mut self) {
        let (c, n) = (&mut self.local.counters, &mut self.local.native);
        c.native_unwinds += std::mem::take(&mut n.unwinds);
        c.native_frames += std::mem::take(&mut n.frames);
        c.publish();
    }

    /// The `n` bytes the next record may take. Only this window is borrowed mutably: the exit flush
    /// may be reading the records before it (`Vec::as_mut_ptr` creates no reference to the whole chunk).
    #[inline(always)]
    fn window(&mut self, n: usize) -> (&mut [u8], &mut ChunkState) {
        let l = &mut self.local;
        assert!(l.pos + n <= l.chunk.len());
        // SAFETY: in bounds (checked above), and nobody else writes to or reads from bytes at or past
        // `committed == pos`.
        let w = unsafe { std::slice::from_raw_parts_mut(l.chunk.as_mut_ptr().add(l.pos), n) };
        (w, &mut l.st)
    }

    #[inline(always)]
    fn commit(&mut self, written: usize) {
        self.local.pos += written;
        self.shared.committed.store(self.local.pos, Release);
    }
}

impl python::records::Sink for Out<'_> {
    #[inline(always)]
    fn reserve(&mut self, n: usize) -> bool {
        Out::reserve(self, n)
    }

    #[inline(always)]
    fn put(&mut self, max: usize, put: impl FnOnce(&mut [u8]) -> usize) {
        let n = put(self.window(max).0);
        self.commit(n);
    }

    fn chunk(&self) -> u64 {
        self.local.serial
    }

    fn count_frames(&mut self, walked: u64, pushed: u64, popped: u64) {
        let c = &mut self.local.counters;
        c.frames_walked += walked;
        c.frames_pushed += pushed;
        c.frames_popped += popped;
    }
}

impl ThreadBuffer {
    /// What the exit flush reads (see `writer::register`).
    pub fn live_chunk(&self) -> *const LiveChunk {
        &self.shared
    }

    /// The order epoch this thread's next event carries.
    #[inline(always)]
    pub fn epoch(&self) -> u64 {
        order::epoch(self.local.owner)
    }

    /// The thread's Python state (the profile source keeps its shadow stack here).
    pub fn python(&mut self) -> &mut PyThread {
        &mut self.py
    }

    #[inline(always)]
    pub fn allocation(&mut self, kind: Kind, addr: u64, size: u64) {
        self.tick();
        if native::enabled() {
            return self.native_allocation(kind, self.epoch(), 0, addr, size);
        }
        self.python_stack();
        self.reserve(MAX_EVENT_RECORD_LEN);
        let epoch = self.epoch();
        let (w, st) = self.window(MAX_EVENT_RECORD_LEN);
        let n = record::put_alloc(w, 0, st, kind, epoch, addr, size);
        self.commit(n);
    }

    /// Every `TIME_EVERY` allocations, a time record (one vDSO clock read), so that the reader can
    /// say when the peak happened.
    #[inline(always)]
    fn tick(&mut self) {
        self.local.since_time += 1;
        if self.local.since_time >= TIME_EVERY {
            self.write_time();
        }
    }

    #[cold]
    fn write_time(&mut self) {
        self.local.since_time = 0;
        let len = 1 + MAX_VARINT_LEN;
        self.reserve(len);
        let (w, _) = self.window(len);
        let n = record::put_time(w, 0, clock::since_start_ns());
        self.commit(n);
    }

    /// Frees carry no stack: nothing reads one.
    #[inline(always)]
    pub fn free(&mut self, kind: Kind, addr: u64) {
        self.reserve(MAX_EVENT_RECORD_LEN);
        let epoch = self.epoch();
        let (w, st) = self.window(MAX_EVENT_RECORD_LEN);
        let n = record::put_free(w, 0, st, kind, epoch, addr);
        self.commit(n);
    }

    pub fn munmap(&mut self, addr: u64, len: u64) {
        self.reserve(MAX_EVENT_RECORD_LEN);
        let epoch = self.epoch();
        let (w, st) = self.window(MAX_EVENT_RECORD_LEN);
        let n = record::put_munmap(w, 0, st, epoch, addr, len);
        self.commit(n);
    }

    /// A realloc whose epoch was taken before the real call (see `hooks::realloc`).
    #[inline(always)]
    pub fn realloc(&mut self, kind: Kind, epoch: u64, old: u64, new: u64, size: u64) {
        self.tick();
        if native::enabled() {
            return self.native_allocation(kind, epoch, old, new, size);
        }
        self.python_stack();
        self.reserve(MAX_EVENT_RECORD_LEN);
        let (w, st) = self.window(MAX_EVENT_RECORD_LEN);
        let n = record::put_realloc(w, 0, st, kind, epoch, old, new, size);
        self.commit(n);
    }

    /// An allocation or realloc in native mode: the native stack is unwound and interned (its new trie
    /// nodes and module segments written), then the Python stack as usual, then the native stack id
    /// if it changed. The Python stack reserves room for that record and the event, so both land in
    /// the chunk its deltas went to.
    #[inline(never)]
    fn native_allocation(&mut self, kind: Kind, epoch: u64, old: u64, addr: u64, size: u64) {
        self.local.native.capture();
        self.write_native_definitions();
        self.python_stack();
        self.reserve(MAX_NATIVE_STACK_LEN + MAX_EVENT_RECORD_LEN);
        let current = self.local.native.current;
        if current != self.local.native.emitted {
            let (w, _) = self.window(MAX_NATIVE_STACK_LEN);
            let n = record::put_native_stack(w, 0, current);
            self.commit(n);
            self.local.native.emitted = current;
        }
        let (w, st) = self.window(MAX_EVENT_RECORD_LEN);
        let n = if kind.is_realloc() {
            record::put_realloc(w, 0, st, kind, epoch, old, addr, size)
        } else {
            record::put_alloc(w, 0, st, kind, epoch, addr, size)
        };
        self.commit(n);
    }

    /// Writes the trie nodes the last capture made, and module segments the capture lacks.
    fn write_native_definitions(&mut self) {
        if let Some(addresses) = native::eval_loop_to_write() {
            let addresses = &addresses[..addresses.len().min(record::MAX_EVAL_LOOP_ADDRESSES)];
            let len = record::eval_loop_len(addresses.len());
            self.reserve(len);
            let (w, _) = self.window(len);
            let n = record::put_eval_loop(w, 0, addresses);
            self.commit(n);
        }
        let nodes = std::mem::take(&mut self.local.native.new_nodes);
        let mut modules = Vec::new();
        native::modules_to_write(&nodes, &mut modules);
        for m in &modules {
            let len = record::module_len(m.path.as_bytes());
            self.reserve(len);
            let (w, _) = self.window(len);
            let n = record::put_module(
                w,
                0,
                m.start,
                m.end,
                m.file_offset,
                m.bias,
                m.path.as_bytes(),
            );
            self.commit(n);
        }
        for &(id, parent, ip) in &nodes {
            self.reserve(MAX_NATIVE_NODE_LEN);
            let (w, _) = self.window(MAX_NATIVE_NODE_LEN);
            let n = record::put_native_node(w, 0, id, parent, ip);
            self.commit(n);
        }
        counters::NATIVE_NODES.fetch_add(nodes.len() as u64, Relaxed);
        self.local.native.new_nodes = nodes;
    }

    /// Drops what the buffer holds without writing it (a fork child: the parent writes it).
    pub fn discard(&mut self) {
        let epoch = self.local.st.epoch;
        let chunk = std::mem::take(&mut self.local.chunk);
        self.out().start_chunk(chunk, epoch);
        // The child's capture has none of the parent's trie nodes.
        self.local.native.forget();
    }

    /// Hands the last chunk over and gives the buffer back (the thread is exiting).
    pub fn close(mut self: Box<Self>) {
        self.out().publish_counters();
        let has_records = self.local.pos > *self.shared.records_start.get_mut();
        let full = std::mem::take(&mut self.local.chunk);
        writer::give_back(writer::submit(full, self.local.pos, has_records));
    }
}
