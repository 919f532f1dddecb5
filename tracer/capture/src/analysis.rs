//! Provides [`Stats`]: what `tracer stats` reports about a capture (totals, peak heap, leaks, counts by
//! allocator, the size histogram). Pure: it takes a decoded [`Capture`].

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::native::{hybrid, HybridFrame, NativeFrame, NativeId};
use crate::reader::{Capture, Event};
use crate::record::Kind;
use crate::stacks::{Location, StackId};

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

#[derive(Debug, Clone, Copy)]
struct Block {
    size: u64,
    kind: Kind,
    stack: StackId,
    native: NativeId,
}

/// The live heap while replaying events: blocks by address, and mmapped ranges (which `munmap` can
/// cut into pieces).
#[derive(Default)]
struct Heap {
    blocks: HashMap<u64, Block>,
    maps: BTreeMap<u64, Block>,
    live_bytes: u64,
}

impl Heap {
    fn allocate(&mut self, addr: u64, block: Block) {
        let size = block.size;
        if block.kind == Kind::Mmap {
            self.unmap(addr, size);
            self.maps.insert(addr, block);
        } else if let Some(old) = self.blocks.insert(addr, block) {
            // A block handed out again without a free we saw: count it freed (a racing realloc
            // in another thread, see docs/architecture.md).
            self.live_bytes = self.live_bytes.wrapping_sub(old.size);
        }
        self.live_bytes = self.live_bytes.wrapping_add(size);
    }

    /// Returns whether the address was known.
    fn free(&mut self, addr: u64) -> bool {
        match self.blocks.remove(&addr) {
            Some(b) => {
                self.live_bytes = self.live_bytes.wrapping_sub(b.size);
                true
            }
            None => false,
        }
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
            self.live_bytes = self.live_bytes.wrapping_sub(b.size);
            let map_end = start.saturating_add(b.size);
            if *start < addr {
                self.maps.insert(
                    *start,
                    Block {
                        size: addr - start,
                        ..*b
                    },
                );
                self.live_bytes = self.live_bytes.wrapping_add(addr - start);
            }
            if map_end > end {
                self.maps.insert(
                    end,
                    Block {
                        size: map_end - end,
                        ..*b
                    },
                );
                self.live_bytes = self.live_bytes.wrapping_add(map_end - end);
            }
        }
        !overlapping.is_empty()
    }
}

impl Stats {
    /// Replays the events of a capture in global order.
    pub fn compute(cap: &Capture) -> Stats {
        let mut s = Stats {
            threads: cap.threads.len(),
            ..Stats::default()
        };
        let mut heap = Heap::default();
        let mut sizes =
            Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, 2).expect("valid bounds");
        for (i, e) in cap.events.iter().enumerate() {
            s.events += 1;
            let t = s.by_kind.entry(e.kind).or_default();
            t.count += 1;
            if !e.kind.is_free() {
                t.bytes = t.bytes.saturating_add(e.size);
            }
            s.apply(&mut heap, &mut sizes, e);
            if heap.live_bytes > s.peak_bytes {
                s.peak_bytes = heap.live_bytes;
                s.peak_event = i as u64;
                s.peak_time_ns = e.time_ns;
            }
        }
        for b in heap.blocks.values() {
            let t = s.leaks_by_kind.entry(b.kind).or_default();
            t.count += 1;
            t.bytes = t.bytes.saturating_add(b.size);
        }
        for b in heap.maps.values() {
            let t = s.leaks_by_kind.entry(b.kind).or_default();
            t.count += 1;
            t.bytes = t.bytes.saturating_add(b.size);
        }
        s.sites(cap, &heap);
        s.leaked_blocks = s.leaks_by_kind.values().map(|t| t.count).sum();
        s.leaked_bytes = heap.live_bytes;
        s.size_histogram = power_of_two_buckets(&sizes);
        if !sizes.is_empty() {
            for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                s.size_percentiles
                    .insert(name.into(), sizes.value_at_quantile(q));
            }
            s.size_percentiles.insert("max".into(), sizes.max());
        }
        s
    }

    fn apply(&mut self, heap: &mut Heap, sizes: &mut Histogram<u64>, e: &Event) {
        let mut allocate = |s: &mut Stats, heap: &mut Heap| {
            s.allocations += 1;
            s.bytes_allocated = s.bytes_allocated.saturating_add(e.size);
            sizes.saturating_record(e.size.max(1));
            heap.allocate(
                e.addr,
                Block {
                    size: e.size,
                    kind: e.kind,
                    stack: e.stack,
                    native: e.native,
                },
            );
        };
        match e.kind {
            Kind::Free | Kind::PymallocFree => {
                self.frees += 1;
                if !heap.free(e.addr) {
                    self.unmatched_frees += 1;
                }
            }
            Kind::Munmap => {
                self.frees += 1;
                if !heap.unmap(e.addr, e.size) {
                    self.unmatched_frees += 1;
                }
            }
            Kind::Realloc | Kind::PymallocRealloc => {
                if e.old_addr != 0 {
                    self.frees += 1;
                    if !heap.free(e.old_addr) {
                        self.unmatched_frees += 1;
                    }
                }
                if e.addr != 0 {
                    allocate(self, heap);
                }
            }
            _ => allocate(self, heap),
        }
    }
}

impl Stats {
    /// The site tables: needs the totals (for the peak event) and the heap at exit.
    fn sites(&mut self, cap: &Capture, heap_at_exit: &Heap) {
        let mut sites = SiteIndex::default();
        let mut by_site: HashMap<usize, (u64, u64)> = HashMap::new();
        for e in &cap.events {
            if !e.kind.is_free() && e.addr != 0 {
                let t = by_site.entry(sites.of(cap, e.stack, e.native)).or_default();
                t.0 += 1;
                t.1 = t.1.saturating_add(e.size);
            }
        }
        self.top_sites_by_bytes = sites.top(&by_site, |(_, b)| *b);
        self.top_sites_by_count = sites.top(&by_site, |(c, _)| *c);
        let leaks = sites.live(cap, heap_at_exit);
        self.leaks_by_site = sites.top(&leaks, |(_, b)| *b);
        if self.peak_bytes > 0 {
            let mut heap = Heap::default();
            let mut scratch = Stats::default();
            let mut sizes = Histogram::<u64>::new(1).expect("valid");
            for e in &cap.events[..=self.peak_event as usize] {
                scratch.apply(&mut heap, &mut sizes, e);
            }
            let at_peak = sites.live(cap, &heap);
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
#[derive(Default)]
struct SiteIndex {
    by_stack: HashMap<(StackId, NativeId), usize>,
    by_locations: HashMap<(Vec<Location>, NativeId), usize>,
    locations: Vec<(Vec<Location>, NativeId)>,
}

impl SiteIndex {
    fn of(&mut self, cap: &Capture, stack: StackId, native: NativeId) -> usize {
        if let Some(site) = self.by_stack.get(&(stack, native)) {
            return *site;
        }
        let locs: Vec<Location> = cap
            .stacks
            .frames(stack)
            .into_iter()
            .map(|f| Location::resolve(&cap.codes, f))
            .collect();
        let next = self.locations.len();
        let key = (locs, native);
        let site = *self.by_locations.entry(key.clone()).or_insert(next);
        if site == next {
            self.locations.push(key);
        }
        self.by_stack.insert((stack, native), site);
        site
    }

    fn live(&mut self, cap: &Capture, heap: &Heap) -> HashMap<usize, (u64, u64)> {
        let mut out: HashMap<usize, (u64, u64)> = HashMap::new();
        for b in heap.blocks.values().chain(heap.maps.values()) {
            let t = out.entry(self.of(cap, b.stack, b.native)).or_default();
            t.0 += 1;
            t.1 = t.1.saturating_add(b.size);
        }
        out
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
                stack: self.locations[*site].0.clone(),
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
