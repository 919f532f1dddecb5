//! Provides [`Stats`]: what `tracer stats` reports about a capture (totals, peak heap, leaks, counts by
//! allocator, the size histogram), computed by [`Replay`] one event at a time. Pure: it takes events
//! and a [`Capture`]'s definitions.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::native::{hybrid, HybridFrame, NativeFrame, NativeId};
use crate::reader::{Capture, Event};
use crate::record::Kind;
use crate::stacks::{Frame, Location, StackId};

/// How many sites each table lists.
pub const TOP_SITES: usize = 10;

/// Where allocations were made: a Python stack (innermost frame first), with their count and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub count: u64,
    pub bytes: u64,
    pub stack: Vec<Location>,
    /// Native mode: the site's native stack (0: none), then, once [`Stats::symbolize`] ran, its frames
    /// (innermost first) and the hybrid stack (native frames with the Python frames in place of the
    /// evaluation loop's).
    #[serde(skip_serializing_if = "is_zero")]
    pub native_stack: NativeId,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub native: Vec<NativeFrame>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hybrid: Vec<HybridFrame>,
    /// Whether the hybrid stack's split of Python frames between evaluation-loop frames is certain
    /// (see [`hybrid`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hybrid_exact: Option<bool>,
}

fn is_zero(v: &NativeId) -> bool {
    *v == 0
}

/// Counts and bytes for one allocator (record kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindTotals {
    pub count: u64,
    pub bytes: u64,
}

/// One bucket of the size histogram: sizes in `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SizeBucket {
    pub low: u64,
    pub high: u64,
    pub count: u64,
}

/// The analysis of one capture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Allocation, free and realloc records.
    pub events: u64,
    /// Blocks handed out (a realloc that returns a block counts once).
    pub allocations: u64,
    /// Blocks given back (a realloc that moves or frees a block counts once).
    pub frees: u64,
    /// Bytes asked for by all allocations.
    pub bytes_allocated: u64,
    /// Highest total of live bytes, and the event at which it was reached.
    pub peak_bytes: u64,
    pub peak_event: u64,
    /// When the buffer holding the peak event was started (ns since the capture started).
    pub peak_time_ns: u64,
    /// Blocks still live when tracing stopped.
    pub leaked_blocks: u64,
    pub leaked_bytes: u64,
    /// Frees of addresses the capture never saw allocated (allocated before tracing, or by a parent
    /// before fork).
    pub unmatched_frees: u64,
    /// Records by kind (every event, frees included).
    pub by_kind: BTreeMap<Kind, KindTotals>,
    /// Leaks by the allocator that made them.
    pub leaks_by_kind: BTreeMap<Kind, KindTotals>,
    /// Allocation sizes in power-of-two buckets.
    pub size_histogram: Vec<SizeBucket>,
    /// Size percentiles (p50, p90, p99, max).
    pub size_percentiles: BTreeMap<String, u64>,
    pub threads: usize,
    /// Allocation sites with the most bytes, and with the most allocations.
    pub top_sites_by_bytes: Vec<Site>,
    pub top_sites_by_count: Vec<Site>,
    /// What was live at the peak, by site.
    pub peak_by_site: Vec<Site>,
    /// What was live at exit, by site.
    pub leaks_by_site: Vec<Site>,
    /// Distinct Python stacks and code objects in the capture.
    pub python_stacks: usize,
    pub code_objects: usize,
}

/// Counts and bytes of some allocations.
pub type Totals = KindTotals;

/// One (Python stack, native stack) pair that allocations were made in, and what the replay counted
/// for it: the views (`tracer flamegraph`, `tree`, `summary`) are built from these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackTotals {
    pub stack: StackId,
    pub native: NativeId,
    /// Every allocation (that returned a block).
    pub allocated: Totals,
    /// Live when the heap was at its peak.
    pub at_peak: Totals,
    /// Live when tracing stopped.
    pub leaked: Totals,
    /// Freed before the thread's next [`Replay::temporary_threshold`] allocations (Memray's
    /// "temporary allocations").
    pub temporary: Totals,
}

/// A stack pair while replaying: its totals, what is live now, and when its live totals last changed
/// (to copy only what changed into `at_peak` at a new peak).
#[derive(Debug, Clone, Copy)]
struct KeyState {
    totals: StackTotals,
    live: Totals,
    stamp: u64,
}

/// Hashes block addresses: they are aligned (low bits zero) and clustered, so every bit of the
/// address is mixed into the low bits the table indexes by (splitmix64's finaliser).
#[derive(Default, Clone, Copy)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(*b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        let mut z = x ^ self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }
}

type AddrMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<AddrHasher>>;

#[derive(Debug, Clone, Copy)]
struct Block {
    size: u64,
    kind: Kind,
    /// Index of the block's stack pair in `Heap::keys`.
    key: u32,
}

/// The live heap while replaying events: blocks by address, and mmapped ranges (which `munmap` can
/// cut into pieces); and, per stack pair, what is live now and what was live at the peak.
struct Heap {
    blocks: AddrMap<Block>,
    maps: BTreeMap<u64, Block>,
    live_bytes: u64,
    keys: Vec<KeyState>,
    /// Stack pairs whose live totals changed since the last peak, and the current peak's number.
    dirty: Vec<u32>,
    generation: u64,
}

impl Default for Heap {
    fn default() -> Self {
        Heap {
            blocks: AddrMap::default(),
            maps: BTreeMap::new(),
            live_bytes: 0,
            keys: Vec::new(),
            dirty: Vec::new(),
            generation: 1,
        }
    }
}

impl Heap {
    fn add(&mut self, b: &Block) {
        self.live_bytes = self.live_bytes.wrapping_add(b.size);
        let k = &mut self.keys[b.key as usize];
        k.live.count += 1;
        k.live.bytes = k.live.bytes.wrapping_add(b.size);
        if k.stamp != self.generation {
            k.stamp = self.generation;
            self.dirty.push(b.key);
        }
    }

    fn sub(&mut self, b: &Block) {
        self.live_bytes = self.live_bytes.wrapping_sub(b.size);
        let k = &mut self.keys[b.key as usize];
        k.live.count -= 1;
        k.live.bytes = k.live.bytes.wrapping_sub(b.size);
        if k.stamp != self.generation {
            k.stamp = self.generation;
            self.dirty.push(b.key);
        }
    }

    /// The heap is at a new peak: copies what changed since the last one into `at_peak`.
    fn mark_peak(&mut self) {
        for key in self.dirty.drain(..) {
            let k = &mut self.keys[key as usize];
            k.totals.at_peak = k.live;
        }
        self.generation += 1;
    }

    fn allocate(&mut self, addr: u64, block: Block) {
        if block.kind == Kind::Mmap {
            self.unmap(addr, block.size);
            self.maps.insert(addr, block);
        } else if let Some(old) = self.blocks.insert(addr, block) {
            // A block handed out again without a free we saw: count it freed (a racing realloc
            // in another thread, see docs/architecture.md).
            self.sub(&old);
        }
        self.add(&block);
    }

    /// Returns the block freed, if the address was known.
    fn free(&mut self, addr: u64) -> Option<Block> {
        let b = self.blocks.remove(&addr)?;
        self.sub(&b);
        Some(b)
    }

    /// Removes `[addr, addr + len)` from the mapped ranges; returns whether any was mapped.
    fn unmap(&mut self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        let overlapping: Vec<(u64, Block)> = self
            .maps
            .range(..end)
            .rev()
            .take_while(|(start, b)| start.saturating_add(b.size) > addr)
            .map(|(s, b)| (*s, *b))
            .collect();
        for (start, b) in &overlapping {
            self.maps.remove(start);
            self.sub(b);
            let map_end = start.saturating_add(b.size);
            if *start < addr {
                let piece = Block {
                    size: addr - start,
                    ..*b
                };
                self.maps.insert(*start, piece);
                self.add(&piece);
            }
            if map_end > end {
                let piece = Block {
                    size: map_end - end,
                    ..*b
                };
                self.maps.insert(end, piece);
                self.add(&piece);
            }
        }
        !overlapping.is_empty()
    }
}

/// Replays events one at a time, in global order, keeping only the live blocks and one entry per
/// stack pair: what [`Stats::compute`] and the streaming reader share. Memory is bounded by the live
/// blocks and the distinct stacks, never by the number of events.
pub struct Replay {
    s: Stats,
    /// `Stats::by_kind` while replaying, by the kind's number.
    by_kind: [KindTotals; 64],
    heap: Heap,
    sizes: Histogram<u64>,
    key_of: FxHashMap<(StackId, NativeId), u32>,
    last_key: Option<((StackId, NativeId), u32)>,
    /// Per thread, its last allocations (address, stack pair, size), newest last.
    recent: FxHashMap<u32, VecDeque<(u64, u32, u64)>>,
    temporary_threshold: usize,
}

impl Default for Replay {
    fn default() -> Self {
        Self::new()
    }
}

impl Replay {
    /// An allocation is "temporary" when it is freed before its thread's next this many allocations
    /// (Memray's default: 1).
    pub const DEFAULT_TEMPORARY_THRESHOLD: usize = 1;

    pub fn new() -> Self {
        Self::with_temporary_threshold(Self::DEFAULT_TEMPORARY_THRESHOLD)
    }

    pub fn with_temporary_threshold(threshold: usize) -> Self {
        Replay {
            s: Stats::default(),
            by_kind: [KindTotals::default(); 64],
            heap: Heap::default(),
            sizes: Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, 2).expect("valid bounds"),
            key_of: FxHashMap::default(),
            last_key: None,
            recent: FxHashMap::default(),
            temporary_threshold: threshold.max(1),
        }
    }

    fn key(&mut self, stack: StackId, native: NativeId) -> u32 {
        if let Some((k, id)) = self.last_key {
            if k == (stack, native) {
                return id;
            }
        }
        let keys = &mut self.heap.keys;
        let id = *self.key_of.entry((stack, native)).or_insert_with(|| {
            keys.push(KeyState {
                totals: StackTotals {
                    stack,
                    native,
                    ..StackTotals::default()
                },
                live: Totals::default(),
                stamp: 0,
            });
            (keys.len() - 1) as u32
        });
        self.last_key = Some(((stack, native), id));
        id
    }

    /// A block given back: counts it temporary when it is among its thread's last allocations.
    fn freed(&mut self, thread: u32, addr: u64) {
        if let Some(recent) = self.recent.get_mut(&thread) {
            if let Some(i) = recent.iter().rposition(|r| r.0 == addr) {
                let (_, key, size) = recent.remove(i).expect("in range");
                let t = &mut self.heap.keys[key as usize].totals.temporary;
                t.count += 1;
                t.bytes = t.bytes.saturating_add(size);
            }
        }
    }

    fn allocate(&mut self, e: &Event) {
        self.s.allocations += 1;
        self.s.bytes_allocated = self.s.bytes_allocated.saturating_add(e.size);
        self.sizes.saturating_record(e.size.max(1));
        let key = self.key(e.stack, e.native);
        if e.addr != 0 {
            let t = &mut self.heap.keys[key as usize].totals.allocated;
            t.count += 1;
            t.bytes = t.bytes.saturating_add(e.size);
            if e.kind != Kind::Mmap {
                let recent = self.recent.entry(e.thread).or_default();
                if recent.len() == self.temporary_threshold {
                    recent.pop_front();
                }
                recent.push_back((e.addr, key, e.size));
            }
        }
        self.heap.allocate(
            e.addr,
            Block {
                size: e.size,
                kind: e.kind,
                key,
            },
        );
    }

    /// Replays one event (events must come in global order).
    pub fn event(&mut self, e: &Event) {
        self.s.events += 1;
        let t = &mut self.by_kind[e.kind as usize & 63];
        t.count += 1;
        if !e.kind.is_free() {
            t.bytes = t.bytes.saturating_add(e.size);
        }
        match e.kind {
            Kind::Free | Kind::PymallocFree => {
                self.s.frees += 1;
                if self.heap.free(e.addr).is_none() {
                    self.s.unmatched_frees += 1;
                } else {
                    self.freed(e.thread, e.addr);
                }
            }
            Kind::Munmap => {
                self.s.frees += 1;
                if !self.heap.unmap(e.addr, e.size) {
                    self.s.unmatched_frees += 1;
                }
            }
            Kind::Realloc | Kind::PymallocRealloc => {
                if e.old_addr != 0 {
                    self.s.frees += 1;
                    if self.heap.free(e.old_addr).is_none() {
                        self.s.unmatched_frees += 1;
                    } else {
                        self.freed(e.thread, e.old_addr);
                    }
                }
                if e.addr != 0 {
                    self.allocate(e);
                }
            }
            _ => self.allocate(e),
        }
        if self.heap.live_bytes > self.s.peak_bytes {
            self.s.peak_bytes = self.heap.live_bytes;
            self.s.peak_event = self.s.events - 1;
            self.s.peak_time_ns = e.time_ns;
            self.heap.mark_peak();
        }
    }

    /// The analysis, once every event was replayed, and the totals of every stack pair (in the order
    /// each was first allocated in). `cap` gives the stacks' frames (its events are not read).
    pub fn finish(mut self, cap: &Capture) -> (Stats, Vec<StackTotals>) {
        let mut s = std::mem::take(&mut self.s);
        s.threads = cap.threads.len();
        for (i, t) in self.by_kind.iter().enumerate() {
            if let (true, Some(kind)) = (t.count > 0, Kind::from_u8(i as u8)) {
                s.by_kind.insert(kind, *t);
            }
        }
        let heap = &mut self.heap;
        for b in heap.blocks.values().chain(heap.maps.values()) {
            let t = s.leaks_by_kind.entry(b.kind).or_default();
            t.count += 1;
            t.bytes = t.bytes.saturating_add(b.size);
        }
        for k in &mut heap.keys {
            k.totals.leaked = k.live;
            if s.peak_bytes == 0 {
                k.totals.at_peak = Totals::default();
            }
        }
        let totals: Vec<StackTotals> = heap.keys.iter().map(|k| k.totals).collect();
        s.sites(cap, &totals);
        s.leaked_blocks = s.leaks_by_kind.values().map(|t| t.count).sum();
        s.leaked_bytes = heap.live_bytes;
        s.size_histogram = power_of_two_buckets(&self.sizes);
        if !self.sizes.is_empty() {
            for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                s.size_percentiles
                    .insert(name.into(), self.sizes.value_at_quantile(q));
            }
            s.size_percentiles.insert("max".into(), self.sizes.max());
        }
        (s, totals)
    }
}

impl Stats {
    /// Replays the events of a capture held in memory (see [`Replay`] for a stream of them).
    pub fn compute(cap: &Capture) -> Stats {
        let mut r = Replay::new();
        for e in &cap.events {
            r.event(e);
        }
        r.finish(cap).0
    }

    /// The site tables, from the stack pairs' totals.
    fn sites(&mut self, cap: &Capture, totals: &[StackTotals]) {
        let mut sites = SiteIndex::default();
        let mut by_site: HashMap<usize, (u64, u64)> = HashMap::new();
        let mut leaks: HashMap<usize, (u64, u64)> = HashMap::new();
        let mut at_peak: HashMap<usize, (u64, u64)> = HashMap::new();
        let add = |m: &mut HashMap<usize, (u64, u64)>, site: usize, t: &Totals| {
            if t.count > 0 {
                let e = m.entry(site).or_default();
                e.0 += t.count;
                e.1 = e.1.saturating_add(t.bytes);
            }
        };
        for t in totals {
            let site = sites.of(cap, t.stack, t.native);
            add(&mut by_site, site, &t.allocated);
            add(&mut leaks, site, &t.leaked);
            add(&mut at_peak, site, &t.at_peak);
        }
        self.top_sites_by_bytes = sites.top(&by_site, |(_, b)| *b);
        self.top_sites_by_count = sites.top(&by_site, |(c, _)| *c);
        self.leaks_by_site = sites.top(&leaks, |(_, b)| *b);
        if self.peak_bytes > 0 {
            self.peak_by_site = sites.top(&at_peak, |(_, b)| *b);
        }
        self.python_stacks = cap.stacks.len();
        self.code_objects = cap.codes.len();
    }
}

impl Stats {
    /// Native mode: fills each site's native frames and hybrid stack, `frames` giving the symbolized
    /// frames of a native stack (the symbolizer reads files, so it lives outside this crate).
    pub fn symbolize(&mut self, mut frames: impl FnMut(NativeId) -> Vec<NativeFrame>) {
        for table in [
            &mut self.top_sites_by_bytes,
            &mut self.top_sites_by_count,
            &mut self.peak_by_site,
            &mut self.leaks_by_site,
        ] {
            for site in table.iter_mut().filter(|s| s.native_stack != 0) {
                site.native = frames(site.native_stack);
                let (h, exact) = hybrid(&site.native, &site.stack);
                site.hybrid = h;
                site.hybrid_exact = Some(exact);
            }
        }
    }
}

/// Sites are stacks of source locations: two instructions on one line are one site to a reader,
/// so stacks that differ only in instruction offsets are merged.
/// Locations are interned (a stack of them is a list of numbers), so that the index holds each
/// function and file name once however many stacks pass through it.
#[derive(Default)]
struct SiteIndex {
    by_stack: HashMap<(StackId, NativeId), usize>,
    by_locations: HashMap<(Vec<u32>, NativeId), usize>,
    locations: Vec<(Vec<u32>, NativeId)>,
    /// Interned locations, and the location of each frame met.
    location_ids: HashMap<Location, u32>,
    location_list: Vec<Location>,
    by_frame: FxHashMap<Frame, u32>,
}

impl SiteIndex {
    fn location(&mut self, cap: &Capture, frame: Frame) -> u32 {
        if let Some(id) = self.by_frame.get(&frame) {
            return *id;
        }
        let loc = Location::resolve(&cap.codes, frame);
        let next = self.location_list.len() as u32;
        let id = match self.location_ids.get(&loc) {
            Some(id) => *id,
            None => {
                self.location_ids.insert(loc.clone(), next);
                self.location_list.push(loc);
                next
            }
        };
        self.by_frame.insert(frame, id);
        id
    }

    fn of(&mut self, cap: &Capture, stack: StackId, native: NativeId) -> usize {
        if let Some(site) = self.by_stack.get(&(stack, native)) {
            return *site;
        }
        let locs: Vec<u32> = cap
            .stacks
            .frames(stack)
            .into_iter()
            .map(|f| self.location(cap, f))
            .collect();
        let next = self.locations.len();
        let key = (locs, native);
        let site = match self.by_locations.get(&key) {
            Some(site) => *site,
            None => {
                self.by_locations.insert(key.clone(), next);
                self.locations.push(key);
                next
            }
        };
        self.by_stack.insert((stack, native), site);
        site
    }

    /// The `TOP_SITES` sites with the largest `key`.
    fn top(
        &self,
        sites: &HashMap<usize, (u64, u64)>,
        key: impl Fn(&(u64, u64)) -> u64,
    ) -> Vec<Site> {
        let mut v: Vec<(&usize, &(u64, u64))> = sites.iter().collect();
        v.sort_by(|a, b| key(b.1).cmp(&key(a.1)).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(TOP_SITES)
            .map(|(site, (count, bytes))| Site {
                count: *count,
                bytes: *bytes,
                stack: self.locations[*site]
                    .0
                    .iter()
                    .map(|l| self.location_list[*l as usize].clone())
                    .collect(),
                native_stack: self.locations[*site].1,
                native: Vec::new(),
                hybrid: Vec::new(),
                hybrid_exact: None,
            })
            .collect()
    }
}

fn power_of_two_buckets(h: &Histogram<u64>) -> Vec<SizeBucket> {
    let mut out = Vec::new();
    if h.is_empty() {
        return out;
    }
    let mut low = 1u64;
    while low <= h.max() {
        let high = low.saturating_mul(2) - 1;
        let count = h.count_between(low, high);
        if count > 0 {
            out.push(SizeBucket { low, high, count });
        }
        if low > u64::MAX / 4 {
            break;
        }
        low *= 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, epoch: u64, addr: u64, old_addr: u64, size: u64) -> Event {
        Event {
            kind,
            thread: 0,
            epoch,
            addr,
            old_addr,
            size,
            time_ns: 0,
            stack: 0,
            native: 0,
        }
    }

    fn stats(events: Vec<Event>) -> Stats {
        Stats::compute(&Capture {
            events,
            ..Capture::default()
        })
    }

    #[test]
    fn peak_leaks_and_realloc() {
        let s = stats(vec![
            ev(Kind::Malloc, 0, 0x1000, 0, 100),
            ev(Kind::Calloc, 0, 0x2000, 0, 50),
            ev(Kind::Realloc, 0, 0x3000, 0x1000, 300), // 350 live
            ev(Kind::Free, 0, 0x2000, 0, 0),           // 300 live
            ev(Kind::Free, 0, 0x9999, 0, 0),           // unknown
        ]);
        assert_eq!(s.allocations, 3);
        assert_eq!(s.frees, 3);
        assert_eq!(s.bytes_allocated, 450);
        assert_eq!(s.peak_bytes, 350);
        assert_eq!(s.peak_event, 2);
        assert_eq!(s.leaked_blocks, 1);
        assert_eq!(s.leaked_bytes, 300);
        assert_eq!(s.unmatched_frees, 1);
        assert_eq!(
            s.leaks_by_kind[&Kind::Realloc],
            KindTotals {
                count: 1,
                bytes: 300
            }
        );
    }

    fn replay(events: &[Event]) -> (Stats, Vec<StackTotals>) {
        let mut r = Replay::new();
        for e in events {
            r.event(e);
        }
        r.finish(&Capture::default())
    }

    fn on(stack: StackId, e: Event) -> Event {
        Event { stack, ..e }
    }

    #[test]
    fn the_live_set_at_the_peak_is_the_peaks_not_the_last() {
        let (s, t) = replay(&[
            on(1, ev(Kind::Malloc, 0, 0x1000, 0, 100)),
            on(2, ev(Kind::Malloc, 0, 0x2000, 0, 200)), // peak: 300 (100 on 1, 200 on 2)
            ev(Kind::Free, 0, 0x2000, 0, 0),
            on(1, ev(Kind::Malloc, 0, 0x3000, 0, 150)), // 250: not a peak
            ev(Kind::Free, 0, 0x1000, 0, 0),
        ]);
        assert_eq!(s.peak_bytes, 300);
        let by = |stack| t.iter().find(|k| k.stack == stack).unwrap();
        assert_eq!(
            by(1).at_peak,
            Totals {
                count: 1,
                bytes: 100
            }
        );
        assert_eq!(
            by(2).at_peak,
            Totals {
                count: 1,
                bytes: 200
            }
        );
        assert_eq!(
            by(1).allocated,
            Totals {
                count: 2,
                bytes: 250
            }
        );
        assert_eq!(
            by(1).leaked,
            Totals {
                count: 1,
                bytes: 150
            }
        );
        assert_eq!(by(2).leaked, Totals::default());
    }

    #[test]
    fn temporary_means_freed_before_the_threads_next_allocation() {
        let (_, t) = replay(&[
            on(1, ev(Kind::Malloc, 0, 0x1000, 0, 10)),
            ev(Kind::Free, 0, 0x1000, 0, 0), // temporary
            on(2, ev(Kind::Malloc, 0, 0x2000, 0, 20)),
            on(2, ev(Kind::Malloc, 0, 0x3000, 0, 30)),
            ev(Kind::Free, 0, 0x2000, 0, 0), // not: another allocation came between
            on(3, ev(Kind::PymallocMalloc, 0, 0x4000, 0, 40)),
            on(3, ev(Kind::PymallocRealloc, 0, 0x5000, 0x4000, 50)), // the realloc frees it: temporary
        ]);
        let by = |stack| t.iter().find(|k| k.stack == stack).unwrap().temporary;
        assert_eq!(
            by(1),
            Totals {
                count: 1,
                bytes: 10
            }
        );
        assert_eq!(by(2), Totals::default());
        assert_eq!(
            by(3),
            Totals {
                count: 1,
                bytes: 40
            }
        );
    }

    #[test]
    fn partial_munmap_splits_a_mapping() {
        let s = stats(vec![
            ev(Kind::Mmap, 0, 0x10000, 0, 0x4000),
            ev(Kind::Munmap, 0, 0x11000, 0, 0x1000), // hole in the middle
        ]);
        assert_eq!(s.peak_bytes, 0x4000);
        assert_eq!(s.leaked_bytes, 0x3000);
        assert_eq!(s.leaked_blocks, 2);
    }

    #[test]
    fn size_histogram_buckets() {
        let s = stats(vec![
            ev(Kind::Malloc, 0, 0x1000, 0, 123),
            ev(Kind::Malloc, 0, 0x2000, 0, 100),
            ev(Kind::Malloc, 0, 0x3000, 0, 5000),
        ]);
        assert_eq!(
            s.size_histogram,
            vec![
                SizeBucket {
                    low: 64,
                    high: 127,
                    count: 2
                },
                SizeBucket {
                    low: 4096,
                    high: 8191,
                    count: 1
                }
            ]
        );
    }
}
