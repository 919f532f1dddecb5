//! Provides the writer: full chunks queue up here and a background thread streams them to the capture
//! file with large `write`s. Also the end of a capture (`finish`: the exit flush and the end record) and
//! what `fork` needs (locks held across it, a fresh file in the child).
//!
//! Locks are always taken in the order `SINK` then `QUEUE`. Producers take only `QUEUE`, once per
//! chunk (about every few thousand events). If the writer falls behind by `MAX_BACKLOG` chunks, the
//! producing thread writes the backlog itself: memory stays bounded and no event is dropped.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;
use tracer_capture::compress::compress_frame;
use tracer_capture::header::{encode_end, Header};
use tracer_capture::record::{self, FRAME_PREFIX_LEN, FRAME_THREAD_CHUNK};

use crate::capture_fd;
use crate::counters;
use crate::state::{self, State};
use crate::sync::lock;
use crate::tls;

/// Chunks allowed to wait for the writer thread (4 MiB).
const MAX_BACKLOG: usize = 64;

/// The open capture file.
struct Sink {
    fd: libc::c_int,
    path: PathBuf,
    /// Where chunks are compressed before writing (reused).
    compressed: Vec<u8>,
}

struct Pending {
    data: Vec<u8>,
    len: usize,
}

/// Bytes per chunk: large enough that handing chunks over costs nothing per event, small enough that
/// a process with many threads keeps little memory.
pub const CHUNK_CAPACITY: usize = 64 << 10;

/// The part of a thread's chunk under construction that the exit flush reads (atomics only): the
/// owner writes only at or past `committed` and into the frame prefix, which the flush never reads.
pub struct LiveChunk {
    pub data: AtomicPtr<u8>,
    /// End of the last complete record.
    pub committed: AtomicUsize,
    /// End of the chunk header (records start here).
    pub records_start: AtomicUsize,
    pub thread: u32,
}

/// A registered thread's live chunk (only dereferenced under the `QUEUE` lock, see `finish`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct BufferPtr(*const LiveChunk);
// SAFETY: the pointer is only used under the QUEUE lock, and only to read the chunk's atomics.
unsafe impl Send for BufferPtr {}

struct Queue {
    pending: VecDeque<Pending>,
    pool: Vec<Vec<u8>>,
    registry: Vec<BufferPtr>,
    closed: bool,
    writer_running: bool,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);
static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    pending: VecDeque::new(),
    pool: Vec::new(),
    registry: Vec::new(),
    closed: false,
    writer_running: false,
});
/// Bumped (then a futex wake) whenever the writer thread has work. A futex word rather than a
/// parking_lot `Condvar`: a fork child inherits parking_lot's queue of parked threads, and notifying a
/// condvar the parent's writer thread was waiting on made the child touch that thread's gone
/// `ThreadData` and crash at exit. Nothing in the tracer parks through parking_lot (see [`lock`]).
static WAKE: AtomicU32 = AtomicU32::new(0);

fn wake_writer() {
    WAKE.fetch_add(1, std::sync::atomic::Ordering::Release);
    // SAFETY: a futex wake on a static word; with no waiter it does nothing.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            WAKE.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

/// Sleeps until `WAKE` no longer holds `seen` (returns at once if it already changed).
fn wait_for_work(seen: u32) {
    // SAFETY: a futex wait on a static word, no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            WAKE.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Creates the capture exclusively (never through a symlink, never over an existing file, mode 0600)
/// and writes its header.
pub fn open(path: &Path, header: &Header) -> Result<(), String> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| "path contains a NUL byte".to_string())?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let fd = capture_fd::open_high(c_path.as_ptr(), flags);
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let sink = Sink {
        fd,
        path: path.to_path_buf(),
        compressed: Vec::new(),
    };
    if let Err(err) = write_all(&sink, &header.encode()) {
        capture_fd::close_own(fd);
        return Err(err.to_string());
    }
    capture_fd::set_capture_fd(fd);
    *lock(&SINK) = Some(sink);
    lock(&QUEUE).closed = false;
    Ok(())
}

fn write_all(sink: &Sink, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid slice; `fd` is the capture's descriptor. The system call rather
        // than glibc's `write`, which is a cancellation point: a thread draining the queue from inside
        // a hook must never be cancelled there (`pthread_cancel` of a thread inside `malloc`).
        let n = unsafe {
            libc::syscall(libc::SYS_write, sink.fd, bytes.as_ptr(), bytes.len()) as isize
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "write returned 0",
            ));
        }
        counters::BYTES_WRITTEN.fetch_add(n as u64, Relaxed);
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// Writes `bytes`; on failure says so once on stderr, stops tracing and closes the file.
fn write_or_stop(sink: &mut Option<Sink>, bytes: &[u8]) {
    let Some(s) = sink.as_ref() else { return };
    if let Err(err) = write_all(s, bytes) {
        let msg = format!(
            "tracer: cannot write capture {}: {err}; tracing stopped, the program continues\n",
            s.path.display()
        );
        state::stderr_line(&msg);
        state::set(State::Failed);
        close_sink(s);
        *sink = None;
    }
}

/// Compresses a chunk frame (zstd, see `tracer_capture::compress`) and writes it.
fn write_chunk(sink: &mut Option<Sink>, frame: &[u8]) {
    let Some(s) = sink.as_mut() else { return };
    let mut out = std::mem::take(&mut s.compressed);
    compress_frame(frame, &mut out);
    write_or_stop(sink, &out);
    counters::CHUNKS_WRITTEN.fetch_add(1, Relaxed);
    counters::UNCOMPRESSED_BYTES.fetch_add(frame.len() as u64, Relaxed);
    if let Some(s) = sink.as_mut() {
        s.compressed = out;
    }
}

/// An empty chunk, from the pool when one is there.
pub fn take_empty_chunk() -> Vec<u8> {
    lock(&QUEUE)
        .pool
        .pop()
        .unwrap_or_else(|| vec![0u8; CHUNK_CAPACITY])
}

/// Returns an unused chunk to the pool.
pub fn give_back(chunk: Vec<u8>) {
    lock(&QUEUE).pool.push(chunk);
}

/// Queues a full chunk (the first `len` bytes of `data`) and returns an empty one.
pub fn submit(mut data: Vec<u8>, len: usize, has_records: bool) -> Vec<u8> {
    let mut q = lock(&QUEUE);
    if !has_records || q.closed {
        return data;
    }
    record::finish_chunk(&mut data, len);
    q.pending.push_back(Pending { data, len });
    let direct = !q.writer_running || q.pending.len() > MAX_BACKLOG;
    let empty = q.pool.pop();
    drop(q);
    if direct {
        counters::DIRECT_DRAINS.fetch_add(1, Relaxed);
        drain();
    } else {
        wake_writer();
    }
    empty.unwrap_or_else(|| vec![0u8; CHUNK_CAPACITY])
}

/// Writes every queued chunk.
fn drain() {
    let mut sink = lock(&SINK);
    let batch: Vec<Pending> = lock(&QUEUE).pending.drain(..).collect();
    let mut done = Vec::with_capacity(batch.len());
    for p in batch {
        write_chunk(&mut sink, &p.data[..p.len]);
        done.push(p.data);
    }
    drop(sink);
    lock(&QUEUE).pool.extend(done);
}

/// Starts the background writer thread. It is created with `pthread_create` rather than
/// `std::thread`, so that its guard is set before anything on it allocates (std's thread start-up
/// allocates, and those blocks are the tracer's own, never the program's).
pub fn start_writer_thread() {
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `writer_main` has the start-routine signature and ignores its argument.
    let rc = unsafe {
        libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            writer_main,
            std::ptr::null_mut(),
        )
    };
    if rc == 0 {
        // SAFETY: a thread we just created; detaching it means nobody joins it.
        unsafe { libc::pthread_detach(thread) };
        lock(&QUEUE).writer_running = true;
    }
}

extern "C" fn writer_main(_: *mut libc::c_void) -> *mut libc::c_void {
    tls::guard_forever();
    loop {
        let seen = WAKE.load(std::sync::atomic::Ordering::Acquire);
        let q = lock(&QUEUE);
        if q.closed {
            return std::ptr::null_mut();
        }
        let idle = q.pending.is_empty();
        drop(q);
        if idle {
            wait_for_work(seen);
        } else {
            drain();
        }
    }
}

/// Makes a thread's live chunk visible to the exit flush, until [`unregister`]. The chunk must stay
/// where it is until then.
pub fn register(chunk: *const LiveChunk) {
    lock(&QUEUE).registry.push(BufferPtr(chunk));
    counters::THREADS.fetch_add(1, Relaxed);
}

pub fn unregister(chunk: *const LiveChunk) {
    lock(&QUEUE).registry.retain(|b| b.0 != chunk);
}

/// Ends the capture: writes every queued chunk, what every live thread buffer holds, and the end
/// record. Runs once, at exit (or `_exit`); events after it are not recorded.
pub fn finish() {
    if !state::stop() {
        return;
    }
    let mut sink = lock(&SINK);
    let mut q = lock(&QUEUE);
    let pending: Vec<Pending> = q.pending.drain(..).collect();
    for p in &pending {
        write_chunk(&mut sink, &p.data[..p.len]);
    }
    for b in q.registry.clone() {
        // SAFETY: registered buffers stay alive until they unregister, which needs the QUEUE lock we
        // hold; their owners only write at or past `committed` and into the frame prefix, which are not
        // read here, and cannot start a new chunk (that needs the QUEUE lock too).
        let frame = unsafe { live_chunk(&*b.0) };
        if let Some(frame) = frame {
            write_chunk(&mut sink, &frame);
        }
    }
    let counters = counters::snapshot();
    write_or_stop(&mut sink, &encode_end(&counters));
    q.closed = true;
    wake_writer();
    if let Some(s) = sink.take() {
        close_sink(&s);
    }
}

/// Closes the capture's descriptor (once: the sink is dropped right after).
fn close_sink(sink: &Sink) {
    capture_fd::set_capture_fd(-1);
    capture_fd::close_own(sink.fd);
}

/// The program is about to `dup2` onto the capture's descriptor number: move the capture to another
/// number first, under the `SINK` lock, so that no chunk is written into the program's file. If no
/// descriptor is left for it, tracing stops (said once on stderr).
pub fn move_capture_fd() {
    let mut sink = lock(&SINK);
    let Some(s) = sink.as_mut() else { return };
    // SAFETY: fcntl on our own descriptor.
    let moved = unsafe { libc::fcntl(s.fd, libc::F_DUPFD_CLOEXEC, 3) };
    if moved < 0 {
        state::stderr_line(&format!(
            "tracer: cannot move capture {} out of the program's way: {}; tracing stopped, the program continues\n",
            s.path.display(),
            std::io::Error::last_os_error()
        ));
        state::set(State::Failed);
        close_sink(s);
        *sink = None;
        return;
    }
    let moved = capture_fd::place_high(moved);
    capture_fd::close_own(s.fd);
    s.fd = moved;
    capture_fd::set_capture_fd(moved);
}

/// The path of the open capture, if any.
pub fn capture_path() -> Option<PathBuf> {
    lock(&SINK).as_ref().map(|s| s.path.clone())
}

/// Renames the finished capture `path` to `path` + `suffix`, never over an existing file; says so on
/// stderr if it cannot.
pub fn move_aside(path: &Path, suffix: &str) {
    let mut to = path.as_os_str().to_owned();
    to.push(suffix);
    let (Ok(from_c), Ok(to_c)) = (
        CString::new(path.as_os_str().as_bytes()),
        CString::new(to.as_bytes()),
    ) else {
        return;
    };
    // SAFETY: two valid NUL-terminated paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc != 0 {
        state::stderr_line(&format!(
            "tracer: cannot rename {} before exec: {}\n",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
}

/// The complete records of a live buffer as a chunk frame.
///
/// # Safety
/// `shared` must belong to a registered buffer and the caller must hold the QUEUE lock.
unsafe fn live_chunk(shared: &LiveChunk) -> Option<Vec<u8>> {
    let data = shared.data.load(std::sync::atomic::Ordering::Acquire);
    let start = shared
        .records_start
        .load(std::sync::atomic::Ordering::Acquire);
    let end = shared.committed.load(std::sync::atomic::Ordering::Acquire);
    if data.is_null() || end <= start {
        return None;
    }
    // SAFETY: the buffer is registered and the QUEUE lock held (the contract), so `data` is its live
    // chunk, whose first `committed` bytes are written and stay valid while the lock is held.
    let body =
        unsafe { std::slice::from_raw_parts(data.add(FRAME_PREFIX_LEN), end - FRAME_PREFIX_LEN) };
    let mut frame = Vec::with_capacity(end);
    frame.push(FRAME_THREAD_CHUNK);
    frame.extend_from_slice(&((end - FRAME_PREFIX_LEN) as u32).to_le_bytes());
    frame.extend_from_slice(body);
    Some(frame)
}

/// `pthread_atfork` prepare: hold both locks across `fork` so the child gets them in a known state.
pub fn before_fork() {
    std::mem::forget(lock(&SINK));
    std::mem::forget(lock(&QUEUE));
}

/// `pthread_atfork` parent.
pub fn after_fork_in_parent() {
    // SAFETY: `before_fork` locked both and forgot the guards; this thread still owns them.
    unsafe {
        QUEUE.force_unlock();
        SINK.force_unlock();
    }
}

/// `pthread_atfork` child: forget the parent's queue and other threads (the parent writes them), and
/// open the child's own capture, `<name>.<pid>`. The writer thread did not survive the fork, so the
/// child writes its chunks itself.
pub fn after_fork_in_child(current: Option<*const LiveChunk>, header: &Header) {
    // SAFETY: as in `after_fork_in_parent`: the forking thread is the only one in the child.
    unsafe {
        QUEUE.force_unlock();
        SINK.force_unlock();
    }
    let parent_sink = lock(&SINK).take();
    {
        let mut q = lock(&QUEUE);
        let pending: Vec<Pending> = q.pending.drain(..).collect();
        q.pool.extend(pending.into_iter().map(|p| p.data));
        q.registry.retain(|b| Some(b.0) == current);
        q.writer_running = false;
    }
    let Some(parent) = parent_sink else { return };
    close_sink(&parent);
    let mut name = parent.path.into_os_string();
    name.push(format!(".{}", header.pid));
    if let Err(err) = open(Path::new(&name), header) {
        state::stderr_line(&format!(
            "tracer: cannot create capture {} for forked child: {err}; the child runs untraced\n",
            Path::new(&name).display()
        ));
        state::set(State::Failed);
    }
}
