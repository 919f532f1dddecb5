//! Provides [`ThreadBuffer`]: a thread's chunk under construction. The owning thread appends records
//! without any lock; a full chunk goes to the writer (`writer::submit`) in exchange for an empty one.
//!
//! The exit flush may read a live buffer from another thread (`writer::finish`), so the buffer is split
//! in two: [`Shared`], read by that flush (atomics only), and [`Local`], touched only by the owner.
//! The owner writes only at or past `committed` and into the frame prefix, which the flush never reads.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed, Ordering::Release};

use tracer_capture::record::{self, ChunkState, Kind, MAX_CHUNK_HEADER_LEN, MAX_EVENT_RECORD_LEN};

use crate::{clock, order, writer};

/// Bytes per chunk: large enough that handing chunks over costs nothing per event, small enough that
/// a process with many threads keeps little memory.
pub const CHUNK_CAPACITY: usize = 64 << 10;

/// What the exit flush may read.
pub struct Shared {
    pub data: AtomicPtr<u8>,
    /// End of the last complete record.
    pub committed: AtomicUsize,
    /// End of the chunk header (records start here).
    pub records_start: AtomicUsize,
    pub thread: u32,
}

/// The owner's state.
pub struct Local {
    chunk: Vec<u8>,
    pos: usize,
    st: ChunkState,
    owner: u64,
}

pub struct ThreadBuffer {
    pub shared: Shared,
    local: Local,
}

impl ThreadBuffer {
    /// A buffer for tracer thread `thread`, starting with the thread's OS id.
    pub fn new(thread: u32, os_tid: u64) -> Box<ThreadBuffer> {
        let chunk = writer::take_empty_chunk();
        let mut tb = Box::new(ThreadBuffer {
            shared: Shared {
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
            },
        });
        let epoch = order::epoch(tb.local.owner);
        tb.start_chunk(chunk, epoch);
        let n = record::put_thread_info(tb.window().0, 0, os_tid);
        tb.commit(n);
        tb
    }

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
    }

    /// Room for one more record, handing the chunk over when it is full.
    #[inline(always)]
    fn reserve(&mut self) {
        if self.local.pos + MAX_EVENT_RECORD_LEN > self.local.chunk.len() {
            self.rotate();
        }
    }

    /// Sends the current chunk to the writer and starts an empty one.
    #[cold]
    pub fn rotate(&mut self) {
        let epoch = self.local.st.epoch;
        let full = std::mem::take(&mut self.local.chunk);
        let has_records = self.local.pos > self.shared.records_start.load(Relaxed);
        let empty = writer::submit(full, self.local.pos, has_records);
        self.start_chunk(empty, epoch);
    }

    /// The bytes the next record may take. Only this window is borrowed mutably: the exit flush may be
    /// reading the records before it (`Vec::as_mut_ptr` creates no reference to the whole chunk).
    #[inline(always)]
    fn window(&mut self) -> (&mut [u8], &mut ChunkState) {
        let l = &mut self.local;
        // SAFETY: `reserve` ensured `pos + MAX_EVENT_RECORD_LEN <= chunk.len()`, and nobody else writes
        // to or reads from bytes at or past `committed == pos`.
        let w = unsafe {
            std::slice::from_raw_parts_mut(l.chunk.as_mut_ptr().add(l.pos), MAX_EVENT_RECORD_LEN)
        };
        (w, &mut l.st)
    }

    #[inline(always)]
    fn commit(&mut self, written: usize) {
        self.local.pos += written;
        self.shared.committed.store(self.local.pos, Release);
    }

    /// The order epoch this thread's next event carries.
    #[inline(always)]
    pub fn epoch(&self) -> u64 {
        order::epoch(self.local.owner)
    }

    #[inline(always)]
    pub fn allocation(&mut self, kind: Kind, addr: u64, size: u64) {
        self.reserve();
        let epoch = self.epoch();
        let (w, st) = self.window();
        let n = record::put_alloc(w, 0, st, kind, epoch, addr, size);
        self.commit(n);
    }

    #[inline(always)]
    pub fn free(&mut self, kind: Kind, addr: u64) {
        self.reserve();
        let epoch = self.epoch();
        let (w, st) = self.window();
        let n = record::put_free(w, 0, st, kind, epoch, addr);
        self.commit(n);
    }

    pub fn munmap(&mut self, addr: u64, len: u64) {
        self.reserve();
        let epoch = self.epoch();
        let (w, st) = self.window();
        let n = record::put_munmap(w, 0, st, epoch, addr, len);
        self.commit(n);
    }

    /// A realloc whose epoch was taken before the real call (see `hooks::realloc`).
    #[inline(always)]
    pub fn realloc(&mut self, kind: Kind, epoch: u64, old: u64, new: u64, size: u64) {
        self.reserve();
        let (w, st) = self.window();
        let n = record::put_realloc(w, 0, st, kind, epoch, old, new, size);
        self.commit(n);
    }

    /// Drops what the buffer holds without writing it (a fork child: the parent writes it).
    pub fn discard(&mut self) {
        let epoch = self.local.st.epoch;
        let chunk = std::mem::take(&mut self.local.chunk);
        self.start_chunk(chunk, epoch);
    }

    /// Hands the last chunk over and gives the buffer back (the thread is exiting).
    pub fn close(mut self: Box<Self>) {
        let has_records = self.local.pos > *self.shared.records_start.get_mut();
        let full = std::mem::take(&mut self.local.chunk);
        writer::give_back(writer::submit(full, self.local.pos, has_records));
    }
}
