//! Provides native mode (`TRACER_NATIVE=1`): the instruction pointers of the native stack at each
//! recorded allocation, interned in a per-thread trie, and the module map that lets the reader
//! symbolize them. Nothing is symbolized here (see "Native stacks" in `docs/architecture.md`).
//!
//! - [`unwind`]: the raw unwind, through libunwind's `unw_backtrace` (loaded with `dlopen` and
//!   `RTLD_LOCAL`, so its `_Unwind_*` and `backtrace` exports never interpose the program's) with
//!   its per-thread cache; glibc's `backtrace` (libgcc's unwinder) when libunwind is missing or
//!   `TRACER_UNWINDER=gcc`. A fork gate keeps `fork` from happening while any thread is inside the
//!   unwinder, whose locks a child would otherwise inherit held ([`before_fork`]).
//! - [`NativeThread`]: the thread's trie of `(parent, ip)` nodes. Ids come from one global counter,
//!   so they are unique in the capture; only new nodes are written (`native_node` records).
//! - The module map: executable `PT_LOAD` segments from `dl_iterate_phdr`, read at start and again
//!   when a new trie node has an address outside every known segment and the loader's `dlpi_adds` /
//!   `dlpi_subs` counters moved (a `dlopen` since the last look). New segments are written once
//!   (`module` records) by whichever thread finds them.
//!
//! Everything here runs inside the hooks with the re-entry guard held: allocations it makes (the
//! trie's table, libunwind's thread-local cache, `dl_iterate_phdr`'s callback) are forwarded
//! untraced. The hooks unwind only after the real allocator returned, so no malloc lock is held
//! while the unwinder takes the loader's lock.

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Acquire};
use std::sync::atomic::{Ordering::AcqRel, Ordering::Relaxed, Ordering::Release};

use libc::{c_int, c_void};
use rustc_hash::FxHashMap;
use tracer_capture::record::ModuleSegment;

use crate::counters;
use crate::sync::SpinLock;

/// Frames kept per stack (innermost first, from the tracer's hook outwards).
pub const MAX_DEPTH: usize = 128;
/// Room for the frames above the hook (the unwinder's own and the tracer's), dropped after.
const OWN_FRAMES: usize = 16;
/// Room [`unwind`] needs.
pub const BUFFER: usize = MAX_DEPTH + OWN_FRAMES;
/// Trie nodes a thread keeps before starting afresh (bounds its memory: about 40 bytes a node).
const MAX_NODES: usize = 1 << 18;
/// No `native_stack` record written in the current chunk yet.
pub const NONE_EMITTED: u32 = u32::MAX;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// The unwinder: a `backtrace`-shaped function.
static UNWINDER: AtomicUsize = AtomicUsize::new(0);
/// This library's address range: frames in it are the tracer's own.
static SELF_START: AtomicU64 = AtomicU64::new(0);
static SELF_END: AtomicU64 = AtomicU64::new(0);
/// libunwind's `unw_flush_cache` and its local address space (0 with the gcc unwinder).
static FLUSH_CACHE: AtomicUsize = AtomicUsize::new(0);
static ADDRESS_SPACE: AtomicUsize = AtomicUsize::new(0);
/// glibc's `dlclose`, found on first use.
static REAL_DLCLOSE: AtomicUsize = AtomicUsize::new(0);
/// The next trie node id (0 is the root, the empty stack).
static NEXT_NODE: AtomicU32 = AtomicU32::new(1);

type Backtrace = unsafe extern "C" fn(*mut *mut c_void, c_int) -> c_int;

/// Whether allocations carry native stacks (set once at load).
#[inline(always)]
pub fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// Sets native mode up (from the constructor, before recording starts): loads the unwinder, finds
/// this library's range and reads the module map. Native mode stays off if no unwinder is found.
pub fn init() {
    let want_gcc = std::env::var("TRACER_UNWINDER").is_ok_and(|v| v == "gcc");
    let libunwind = if want_gcc { None } else { load_libunwind() };
    let (f, name) = match libunwind {
        Some(f) => (f, 1),
        None => (glibc_backtrace as Backtrace, 2),
    };
    UNWINDER.store(f as usize, Release);
    counters::NATIVE_UNWINDER.store(name, Relaxed);
    find_self();
    let scan = scan_modules();
    merge_scan(&mut MODULES.lock(), scan);
    // The first unwind binds the unwinder's lazy symbols and loads libgcc_s for glibc's `backtrace`:
    // do it now, outside any hook.
    let mut ips = [0usize; BUFFER];
    unwind(&mut ips);
    ENABLED.store(true, Release);
}

extern "C" {
    /// glibc's `backtrace` (libgcc's `_Unwind_Backtrace` underneath).
    fn backtrace(buffer: *mut *mut c_void, size: c_int) -> c_int;
}

/// glibc's `backtrace`, as a [`Backtrace`].
///
/// # Safety
/// `buffer` has room for `size` pointers.
unsafe extern "C" fn glibc_backtrace(buffer: *mut *mut c_void, size: c_int) -> c_int {
    // SAFETY: the contract is backtrace's.
    unsafe { backtrace(buffer, size) }
}

/// `unw_backtrace` from libunwind 1.x, set to cache unwind information per thread.
fn load_libunwind() -> Option<Backtrace> {
    const UNW_CACHE_PER_THREAD: c_int = 2;
    // SAFETY: dlopen/dlsym with NUL-terminated names. The symbols have these C signatures in
    // libunwind 1.x (libunwind-x86_64.h): `unw_backtrace(void **, int)`,
    // `_ULx86_64_set_caching_policy(unw_addr_space_t, unw_caching_policy_t)`,
    // `_ULx86_64_set_cache_size(unw_addr_space_t, size_t, int)`, and `_ULx86_64_local_addr_space` is
    // an `unw_addr_space_t` variable.
    unsafe {
        let lib = libc::dlopen(
            c"libunwind.so.8".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL,
        );
        if lib.is_null() {
            return None;
        }
        let bt = libc::dlsym(lib, c"unw_backtrace".as_ptr());
        let policy = libc::dlsym(lib, c"_ULx86_64_set_caching_policy".as_ptr());
        let size = libc::dlsym(lib, c"_ULx86_64_set_cache_size".as_ptr());
        let space = libc::dlsym(lib, c"_ULx86_64_local_addr_space".as_ptr());
        if bt.is_null() {
            return None;
        }
        if !policy.is_null() && !space.is_null() {
            let space = *(space as *const *mut c_void);
            let flush = libc::dlsym(lib, c"_Ux86_64_flush_cache".as_ptr());
            ADDRESS_SPACE.store(space as usize, Relaxed);
            FLUSH_CACHE.store(flush as usize, Relaxed);
            let policy: unsafe extern "C" fn(*mut c_void, c_int) -> c_int =
                std::mem::transmute(policy);
            policy(space, UNW_CACHE_PER_THREAD);
            if !size.is_null() {
                let size: unsafe extern "C" fn(*mut c_void, usize, c_int) -> c_int =
                    std::mem::transmute(size);
                size(space, 1024, 0);
            }
        }
        Some(std::mem::transmute::<*mut c_void, Backtrace>(bt))
    }
}

extern "C" {
    // glibc's; not in the libc crate.
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
}
/// `PTHREAD_CANCEL_DISABLE` (glibc's <pthread.h>).
const PTHREAD_CANCEL_DISABLE: c_int = 1;

/// Fills `ips` with the calling thread's return addresses, innermost first (starting inside the
/// unwinder or its caller), and returns how many. Never symbolizes, never locks anything but what
/// the unwinder takes on a cache miss (the loader's `dl_iterate_phdr` lock), and waits only while a
/// `fork` holds the fork gate closed ([`ForkGate`]). Public so that a bench can time it.
#[inline(never)]
pub fn unwind(ips: &mut [usize; BUFFER]) -> usize {
    let f = UNWINDER.load(Acquire);
    if f == 0 {
        return 0;
    }
    // libunwind reaches cancellation points (it validates addresses with system calls that glibc
    // wraps as such): with a cancel request pending, the thread would be cancelled inside `malloc`,
    // which it never is untraced. Cancellation is held off for the unwind and restored after it.
    let mut cancel_state = 0;
    let _inside = Gate::enter();
    // SAFETY: `f` is a `Backtrace` stored by `init`; `ips` has room for `BUFFER` entries;
    // pthread_setcancelstate with a valid out-pointer, the old state put back.
    let n = unsafe {
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut cancel_state);
        let f: Backtrace = std::mem::transmute(f);
        let n = f(ips.as_mut_ptr().cast(), BUFFER as c_int);
        pthread_setcancelstate(cancel_state, &mut cancel_state);
        n
    };
    (n.max(0) as usize).min(BUFFER)
}

/// The fork gate around the unwinders. Both take locks of their own inside (libunwind: its memory
/// pools, its global cache, its one-time set-up; libgcc: its registered-objects mutex), which a fork
/// child inherits locked, for good, if another thread held one at the moment of `fork`: the child's
/// next unwind then hangs. So the word counts the threads inside an unwinder, and the fork prepare
/// handler closes the gate ([`GATE_CLOSED`]), which holds new unwinds back, and waits until the count
/// is zero: the child gets every unwinder lock free. The hot path pays one atomic add on entry and
/// one subtraction on exit (alone on its cache line).
#[repr(align(64))]
struct ForkGate(AtomicU32);

static GATE: ForkGate = ForkGate(AtomicU32::new(0));
/// Set in `GATE` from the fork prepare handler to the parent and child handlers.
const GATE_CLOSED: u32 = 1 << 31;
/// How long the prepare handler waits for the unwinders to empty. A thread leaves one in
/// microseconds; the bound is only for the pathological cases (the forking thread itself inside the
/// unwinder, from a signal handler; a thread stopped inside it): then the fork goes on and the child
/// unwinds nothing (see [`after_fork_in_child`]) rather than risking the hang.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Whether the last prepare handler saw the unwinders empty.
static GATE_DRAINED: AtomicBool = AtomicBool::new(true);

/// A thread inside an unwinder, from [`Gate::enter`] to the drop.
struct Gate;

impl Gate {
    #[inline(always)]
    fn enter() -> Gate {
        if GATE.0.fetch_add(1, Acquire) & GATE_CLOSED != 0 {
            Gate::wait_for_open();
        }
        Gate
    }

    /// A fork is under way: steps out again and waits (never parking) until the gate opens.
    #[cold]
    #[inline(never)]
    fn wait_for_open() {
        loop {
            GATE.0.fetch_sub(1, Release);
            let mut spins = 0u32;
            while GATE.0.load(Relaxed) & GATE_CLOSED != 0 {
                if spins < 64 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
            }
            if GATE.0.fetch_add(1, Acquire) & GATE_CLOSED == 0 {
                return;
            }
        }
    }
}

impl Drop for Gate {
    #[inline(always)]
    fn drop(&mut self) {
        GATE.0.fetch_sub(1, Release);
    }
}

/// `pthread_atfork` prepare, before any other handler of the tracer takes a lock (a thread inside
/// the unwinder may `mmap`, which takes `inner_maps`' lock): closes the gate and waits, spinning then
/// yielding, at most [`DRAIN_LIMIT`], for the threads inside an unwinder to leave.
pub fn before_fork() {
    GATE.0.fetch_or(GATE_CLOSED, AcqRel);
    let start = std::time::Instant::now();
    let mut spins = 0u32;
    let drained = loop {
        if GATE.0.load(Acquire) == GATE_CLOSED {
            break true;
        }
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else if start.elapsed() > DRAIN_LIMIT {
            break false;
        } else {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
    };
    GATE_DRAINED.store(drained, Relaxed);
}

/// `pthread_atfork` parent: opens the gate again.
pub fn after_fork_in_parent() {
    GATE.0.fetch_and(!GATE_CLOSED, Release);
}

/// The slice of `ips` that belongs to the program: from the outermost of the leading tracer frames
/// (the hook the program called: `malloc`, a pymalloc wrapper) outwards, at most `MAX_DEPTH`.
pub fn program_frames(ips: &[usize]) -> &[usize] {
    let (lo, hi) = (SELF_START.load(Relaxed), SELF_END.load(Relaxed));
    let own = |ip: usize| (ip as u64) >= lo && (ip as u64) < hi;
    let mut i = 0;
    while i < ips.len() && i < OWN_FRAMES && !own(ips[i]) {
        i += 1; // the unwinder's own frames
    }
    let first_own = i;
    while i < ips.len() && own(ips[i]) {
        i += 1;
    }
    let start = if i > first_own { i - 1 } else { 0 };
    let end = ips.len().min(start + MAX_DEPTH);
    &ips[start..end]
}

/// A thread's native stacks: the trie and the stack last interned.
pub struct NativeThread {
    ips: [usize; BUFFER],
    trie: FxHashMap<(u32, u64), u32>,
    /// The last stack, outermost first, and its node ids.
    path: Vec<u64>,
    ids: Vec<u32>,
    /// Nodes made by the last [`capture`](Self::capture), to be written: (id, parent, ip).
    pub new_nodes: Vec<(u32, u32, u64)>,
    /// The stack of the last capture.
    pub current: u32,
    /// The stack the current chunk last recorded (`NONE_EMITTED` after a chunk starts).
    pub emitted: u32,
    pub unwinds: u64,
    pub frames: u64,
}

impl Default for NativeThread {
    fn default() -> Self {
        NativeThread {
            ips: [0; BUFFER],
            trie: FxHashMap::default(),
            path: Vec::new(),
            ids: Vec::new(),
            new_nodes: Vec::new(),
            current: 0,
            emitted: NONE_EMITTED,
            unwinds: 0,
            frames: 0,
        }
    }
}

impl NativeThread {
    /// Unwinds the calling thread and interns its stack: sets `current`, and lists in `new_nodes`
    /// the trie nodes the capture has not seen.
    pub fn capture(&mut self) {
        if self.trie.len() > MAX_NODES {
            self.forget();
        }
        let n = unwind(&mut self.ips);
        let frames = program_frames(&self.ips[..n]);
        self.unwinds += 1;
        self.frames += frames.len() as u64;
        self.new_nodes.clear();
        // The outermost frames usually match the last stack's: start below what they share.
        let depth = frames.len();
        let common = self
            .path
            .iter()
            .zip(frames.iter().rev())
            .take_while(|(a, b)| **a == **b as u64)
            .count();
        self.path.truncate(common);
        self.ids.truncate(common);
        let mut id = self.ids.last().copied().unwrap_or(0);
        for &ip in frames[..depth - common].iter().rev() {
            let ip = ip as u64;
            let new_nodes = &mut self.new_nodes;
            id = *self.trie.entry((id, ip)).or_insert_with(|| {
                let node = NEXT_NODE.fetch_add(1, Relaxed);
                new_nodes.push((node, id, ip));
                node
            });
            self.path.push(ip);
            self.ids.push(id);
        }
        self.current = id;
    }

    /// Forgets every node (a fork child writes a new capture; a full trie starts afresh): the next
    /// stacks get new nodes, written again.
    pub fn forget(&mut self) {
        self.trie.clear();
        self.path.clear();
        self.ids.clear();
        self.emitted = NONE_EMITTED;
    }
}

/// The module map: what the process has loaded, and how much of it the capture has.
#[derive(Default)]
struct Modules {
    /// Every executable segment seen, in the order found.
    all: Vec<ModuleSegment>,
    /// How many of `all` the capture has.
    written: usize,
    /// Currently loaded executable ranges, sorted.
    loaded: Vec<(u64, u64)>,
    adds: u64,
    subs: u64,
}

static MODULES: SpinLock<Modules> = SpinLock::new(Modules {
    all: Vec::new(),
    written: 0,
    loaded: Vec::new(),
    adds: 0,
    subs: 0,
});
/// Some segments of `MODULES` are not in the capture yet (checked without the lock).
static MODULES_PENDING: AtomicBool = AtomicBool::new(false);

/// After new trie nodes: makes sure every segment their addresses fall in is known, and moves the
/// segments the capture does not have yet into `out`.
pub fn modules_to_write(new_nodes: &[(u32, u32, u64)], out: &mut Vec<ModuleSegment>) {
    if !new_nodes.is_empty() {
        let (unknown, none_loaded, counts) = {
            let m = MODULES.lock();
            let unknown = new_nodes.iter().any(|&(_, _, ip)| !m.contains(ip));
            (unknown, m.loaded.is_empty(), (m.adds, m.subs))
        };
        // `MODULES` is never held across `dl_iterate_phdr`: a thread inside it (holding the loader's
        // lock) may run a callback that allocates and so comes here.
        if unknown && (none_loaded || loader_counts() != counts) {
            let scan = scan_modules();
            merge_scan(&mut MODULES.lock(), scan);
        }
    }
    if MODULES_PENDING.load(Acquire) {
        let mut m = MODULES.lock();
        let from = m.written;
        out.extend_from_slice(&m.all[from..]);
        m.written = m.all.len();
        MODULES_PENDING.store(false, Release);
    }
}

impl Modules {
    fn contains(&self, ip: u64) -> bool {
        let i = self.loaded.partition_point(|&(start, _)| start <= ip);
        i > 0 && ip < self.loaded[i - 1].1
    }
}

/// The loader's counts of objects loaded and unloaded so far.
fn loader_counts() -> (u64, u64) {
    /// # Safety
    /// Called by `dl_iterate_phdr`: `info` is valid for `size` bytes, `data` is the counts below.
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut c_void,
    ) -> c_int {
        if size >= std::mem::size_of::<libc::dl_phdr_info>() {
            // SAFETY: `info` holds the counts (it is as large as the struct), `data` is the live local
            // `counts` (the contract).
            unsafe { *(data as *mut (u64, u64)) = ((*info).dlpi_adds, (*info).dlpi_subs) };
        }
        1
    }
    let mut counts = (u64::MAX, u64::MAX);
    // SAFETY: the callback matches dl_iterate_phdr's and writes only through `data`, a live local.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut counts as *mut (u64, u64)).cast()) };
    counts
}

/// What one `dl_iterate_phdr` pass found.
struct Scan {
    found: Vec<ModuleSegment>,
    counts: (u64, u64),
    exe: String,
}

/// Reads every executable segment of every loaded object.
fn scan_modules() -> Scan {
    /// # Safety
    /// Called by `dl_iterate_phdr`: `info` is a live `dl_phdr_info` (its counts only when `size`
    /// covers them), `data` the `Scan` below.
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the contract: `data` is the `Scan` passed below, `info` the loader's.
        let (scan, info) = unsafe { (&mut *(data as *mut Scan), &*info) };
        if size >= std::mem::size_of::<libc::dl_phdr_info>() {
            scan.counts = (info.dlpi_adds, info.dlpi_subs);
        }
        let name = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null `dlpi_name` is a NUL-terminated string.
            unsafe { CStr::from_ptr(info.dlpi_name) }
                .to_string_lossy()
                .into_owned()
        };
        let path = if name.is_empty() {
            scan.exe.clone()
        } else {
            name
        };
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phdr` has `dlpi_phnum` entries.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 {
                let start = info.dlpi_addr.wrapping_add(ph.p_vaddr);
                scan.found.push(ModuleSegment {
                    start,
                    end: start.wrapping_add(ph.p_memsz),
                    file_offset: ph.p_offset,
                    bias: info.dlpi_addr,
                    path: path.clone(),
                });
            }
        }
        0
    }
    counters::NATIVE_MODULE_SCANS.fetch_add(1, Relaxed);
    let mut scan = Scan {
        found: Vec::new(),
        counts: (0, 0),
        exe: exe_path(),
    };
    // SAFETY: the callback matches dl_iterate_phdr's; `info` and its program headers are valid during
    // each call; `data` points to `scan`, alive for the whole call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut scan as *mut Scan).cast()) };
    scan
}

/// Makes a scan the current module map, adding what the capture has not seen.
fn merge_scan(m: &mut Modules, scan: Scan) {
    (m.adds, m.subs) = scan.counts;
    m.loaded = scan.found.iter().map(|s| (s.start, s.end)).collect();
    m.loaded.sort_unstable();
    for seg in scan.found {
        if !m.all.contains(&seg) {
            m.all.push(seg);
        }
    }
    if m.written < m.all.len() {
        MODULES_PENDING.store(true, Release);
    }
}

/// The main program's path (`dl_iterate_phdr` gives it no name).
fn exe_path() -> String {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Finds the address range of this library (all its loaded segments).
fn find_self() {
    struct Range {
        target: u64,
        lo: u64,
        hi: u64,
    }
    /// # Safety
    /// Called by `dl_iterate_phdr`: `info` is a live `dl_phdr_info`, `data` the `Range` below.
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: the contract: `data` is the `Range` passed below, `info` the loader's.
        let (r, info) = unsafe { (&mut *(data as *mut Range), &*info) };
        let (mut lo, mut hi, mut hit) = (u64::MAX, 0, false);
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phdr` has `dlpi_phnum` entries.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type == libc::PT_LOAD {
                let start = info.dlpi_addr.wrapping_add(ph.p_vaddr);
                let end = start.wrapping_add(ph.p_memsz);
                lo = lo.min(start);
                hi = hi.max(end);
                hit |= (start..end).contains(&r.target);
            }
        }
        if hit {
            (r.lo, r.hi) = (lo, hi);
        }
        c_int::from(hit)
    }
    let mut r = Range {
        target: find_self as fn() as usize as u64,
        lo: u64::MAX,
        hi: 0,
    };
    // SAFETY: as in `scan_modules`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut r as *mut Range).cast()) };
    if r.lo != u64::MAX {
        SELF_START.store(r.lo, Relaxed);
        SELF_END.store(r.hi, Relaxed);
    }
}

/// Calls glibc's `dlclose` (the hook's forward).
///
/// # Safety
/// As `dlclose`: `handle` comes from `dlopen`.
pub unsafe fn real_dlclose(handle: *mut c_void) -> c_int {
    type Dlclose = unsafe extern "C" fn(*mut c_void) -> c_int;
    let mut f = REAL_DLCLOSE.load(Acquire);
    if f == 0 {
        // SAFETY: a NUL-terminated name.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"dlclose".as_ptr()) } as usize;
        if f == 0 {
            return -1;
        }
        REAL_DLCLOSE.store(f, Release);
    }
    // SAFETY: `f` is the next `dlclose`, with its C signature; the handle is the caller's (the
    // contract is dlclose's).
    unsafe {
        let f: Dlclose = std::mem::transmute(f);
        f(handle)
    }
}

/// After a `dlclose`: flushes libunwind's caches (it bumps a generation that every thread's cache
/// checks) and marks every range unknown, so the next new stack node rereads the module map.
pub fn after_dlclose() {
    if !enabled() {
        return;
    }
    // Held so that a signal handler's malloc cannot reach `MODULES` while this thread holds it.
    let Some(_guard) = crate::tls::Guard::acquire() else {
        return;
    };
    let (flush, space) = (FLUSH_CACHE.load(Relaxed), ADDRESS_SPACE.load(Relaxed));
    if flush != 0 {
        // SAFETY: `_Ux86_64_flush_cache(unw_addr_space_t, unw_word_t lo, unw_word_t hi)` from the
        // libunwind loaded in `load_libunwind`, with its local address space; 0..0 flushes all.
        unsafe {
            let flush: unsafe extern "C" fn(usize, usize, usize) = std::mem::transmute(flush);
            flush(space, 0, 0);
        }
    }
    MODULES.lock().loaded.clear();
}

/// Addresses inside the Python evaluation loop's code (see [`set_eval_loop`]), and whether the
/// capture still lacks their record.
static EVAL_LOOP: SpinLock<Vec<u64>> = SpinLock::new(Vec::new());
static EVAL_LOOP_PENDING: AtomicBool = AtomicBool::new(false);

/// Remembers addresses inside the evaluation loop, for the next native event to write (the reader
/// takes the functions holding them for the loop, whatever their symbols say).
pub fn set_eval_loop(addresses: Vec<u64>) {
    let mut known = EVAL_LOOP.lock();
    *known = addresses;
    EVAL_LOOP_PENDING.store(!known.is_empty(), Release);
}

/// The eval-loop addresses if the capture lacks their record (once: the caller writes it).
#[inline(always)]
pub fn eval_loop_to_write() -> Option<Vec<u64>> {
    if !EVAL_LOOP_PENDING.load(Relaxed) || !EVAL_LOOP_PENDING.swap(false, Acquire) {
        return None;
    }
    Some(EVAL_LOOP.lock().clone())
}

/// The calling thread's frames as (address, stack bottom), innermost first, from libgcc's unwinder:
/// the address is where the frame is (a return address, except for the innermost), the bottom what
/// `_Unwind_GetCFA` reports with it, which is the canonical frame address of the frame it called
/// (its stack pointer at that call). So frame `k`'s own stack lies between its bottom and frame
/// `k + 1`'s. For start-up work only: it is slower than [`unwind`].
pub fn frames_with_cfa(max: usize) -> Vec<(usize, usize)> {
    type Context = c_void;
    extern "C" {
        fn _Unwind_Backtrace(
            trace: unsafe extern "C" fn(*mut Context, *mut c_void) -> c_int,
            arg: *mut c_void,
        ) -> c_int;
        fn _Unwind_GetIP(ctx: *mut Context) -> usize;
        fn _Unwind_GetCFA(ctx: *mut Context) -> usize;
    }
    const URC_NO_REASON: c_int = 0;
    const URC_END_OF_STACK: c_int = 5;
    struct Out {
        frames: Vec<(usize, usize)>,
        max: usize,
    }
    /// # Safety
    /// Called by `_Unwind_Backtrace`: `ctx` is its context for the frame, `arg` the `Out` below.
    unsafe extern "C" fn each(ctx: *mut Context, arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the `Out` passed below, alive for the whole walk; `ctx` is libgcc's.
        let out = unsafe { &mut *(arg as *mut Out) };
        // SAFETY: as above.
        out.frames
            .push(unsafe { (_Unwind_GetIP(ctx), _Unwind_GetCFA(ctx)) });
        if out.frames.len() >= out.max {
            URC_END_OF_STACK
        } else {
            URC_NO_REASON
        }
    }
    let mut out = Out {
        frames: Vec::new(),
        max,
    };
    let inside = Gate::enter();
    // SAFETY: libgcc_s's unwinder (linked by this library) with a callback of the right signature.
    unsafe { _Unwind_Backtrace(each, std::ptr::addr_of_mut!(out).cast()) };
    drop(inside);
    out.frames
}

/// In a fork child: the new capture has none of the module map yet, and the lock may have been held
/// by a thread that is not in the child. The fork gate opens; if the prepare handler gave up waiting
/// for it, an unwinder lock may be held for good, so the child unwinds no more.
pub fn after_fork_in_child() {
    // The threads counted in the gate are not in the child.
    GATE.0.store(0, Release);
    if !GATE_DRAINED.load(Relaxed) && UNWINDER.swap(0, AcqRel) != 0 {
        crate::state::stderr_line(
            "tracer: fork: a thread was still inside the unwinder; the child records no native stacks\n",
        );
    }
    // SAFETY: a fork child, before any other thread runs; no guard is alive here.
    unsafe { EVAL_LOOP.reset_in_fork_child() };
    if !EVAL_LOOP.lock().is_empty() {
        EVAL_LOOP_PENDING.store(true, Release);
    }
    // SAFETY: as above.
    unsafe { MODULES.reset_in_fork_child() };
    let mut m = MODULES.lock();
    m.written = 0;
    if !m.all.is_empty() {
        MODULES_PENDING.store(true, Release);
    }
}
