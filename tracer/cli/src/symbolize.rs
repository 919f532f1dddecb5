//! Provides [`Symbolizer`]: turns the instruction pointers of a native-mode capture into functions,
//! libraries and source lines, reading the traced program's ELF objects from disk (so a capture is
//! symbolized on the machine that recorded it, with the same files).
//!
//! Each object is opened once: its DWARF through `addr2line` (which gives inlined frames and
//! file:line), and its symbol table (`.symtab`, else `.dynsym`) for objects without debug
//! information. A symbol is used only when the address lies inside its size, so a stripped object's
//! static functions show as `??` rather than as the exported function before them.

use std::collections::HashMap;
use std::path::Path;

use addr2line::gimli::{self, UnwindSection};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use tracer_capture::native::EVAL_FRAME;
use tracer_capture::record::ModuleSegment;
use tracer_capture::{NativeFrame, NativeId, NativeTree};

/// One ELF object, opened.
struct Elf {
    dwarf: Option<addr2line::Loader>,
    /// Function symbols: (start, end, name), sorted by start.
    symbols: Vec<(u64, u64, String)>,
    /// The file's bytes (for its unwind entries, read on demand).
    data: Vec<u8>,
}

impl Elf {
    fn open(path: &str) -> Option<Elf> {
        if !path.starts_with('/') || !Path::new(path).is_file() {
            return None;
        }
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let mut symbols: Vec<(u64, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                let name = addr2line::demangle_auto(name.into(), None).into_owned();
                Some((s.address(), s.address() + s.size(), name))
            })
            .collect();
        symbols.sort();
        symbols.dedup_by_key(|s| s.0);
        Some(Elf {
            dwarf: addr2line::Loader::new(path).ok(),
            symbols,
            data,
        })
    }

    /// The address range of the `.eh_frame` entry (FDE) that covers `addr` (file addresses).
    fn unwind_range(&self, addr: u64) -> Option<(u64, u64)> {
        let file = object::File::parse(&*self.data).ok()?;
        let section = file.section_by_name(".eh_frame")?;
        let eh_frame = gimli::EhFrame::new(section.data().ok()?, gimli::LittleEndian);
        let mut bases = gimli::BaseAddresses::default().set_eh_frame(section.address());
        if let Some(text) = file.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        let fde = eh_frame
            .fde_for_address(&bases, addr, gimli::EhFrame::cie_from_offset)
            .ok()?;
        Some((fde.initial_address(), fde.end_address()))
    }

    /// The symbol whose range holds `addr` (a symbol of size 0 holds only its own address).
    fn symbol(&self, addr: u64) -> Option<&str> {
        self.symbol_entry(addr).map(|s| s.2.as_str())
    }

    fn symbol_entry(&self, addr: u64) -> Option<&(u64, u64, String)> {
        let i = self.symbols.partition_point(|s| s.0 <= addr);
        let entry = self.symbols.get(i.checked_sub(1)?)?;
        (addr < entry.1 || addr == entry.0).then_some(entry)
    }
}

/// Symbolizes addresses of one capture, caching objects and results.
pub struct Symbolizer {
    modules: Vec<ModuleSegment>,
    objects: HashMap<String, Option<Elf>>,
    cache: HashMap<u64, Vec<NativeFrame>>,
    /// The evaluation loop's code: address ranges in the traced process.
    eval_loop: Vec<(u64, u64)>,
}

impl Symbolizer {
    /// A symbolizer for a capture's `modules`, `eval_loop` being its addresses inside the
    /// evaluation loop (none in older captures: the loop is then known by its symbol only).
    pub fn new(modules: Vec<ModuleSegment>, eval_loop: &[u64]) -> Self {
        let mut s = Symbolizer {
            modules,
            objects: HashMap::new(),
            cache: HashMap::new(),
            eval_loop: Vec::new(),
        };
        for &addr in eval_loop {
            if let Some(range) = s.unwind_range(addr) {
                s.eval_loop.push(range);
            }
        }
        s
    }

    /// The unwind entry's range around `addr`, in process addresses.
    fn unwind_range(&mut self, addr: u64) -> Option<(u64, u64)> {
        let seg = find_segment(&self.modules, addr)?;
        let elf = self
            .objects
            .entry(seg.path.clone())
            .or_insert_with(|| Elf::open(&seg.path))
            .as_ref()?;
        let (start, end) = elf.unwind_range(addr.wrapping_sub(seg.bias))?;
        Some((start.wrapping_add(seg.bias), end.wrapping_add(seg.bias)))
    }

    /// The frames of a stack of return addresses (innermost first): one or more per address (inlined
    /// functions first, then the function they were inlined into).
    pub fn stack(&mut self, ips: &[u64]) -> Vec<NativeFrame> {
        let mut out = Vec::with_capacity(ips.len());
        for (i, &ip) in ips.iter().enumerate() {
            // The innermost address is in the tracer's hook: the tracer's functions inlined into it
            // are noise, the hook (`malloc`, ...) is the allocation's entry point.
            let frames = self.frames(ip).iter().filter(|f| i > 0 || !f.inlined);
            out.extend(frames.cloned());
        }
        out
    }

    /// The frames of one return address.
    pub fn frames(&mut self, ip: u64) -> &[NativeFrame] {
        if !self.cache.contains_key(&ip) {
            let frames = self.resolve(ip);
            self.cache.insert(ip, frames);
        }
        &self.cache[&ip]
    }

    /// Where the function holding return address `ip` starts, in the traced process (from the
    /// symbol table), if known.
    pub fn function_start(&mut self, ip: u64) -> Option<u64> {
        let seg = find_segment(&self.modules, ip)?;
        let elf = self
            .objects
            .entry(seg.path.clone())
            .or_insert_with(|| Elf::open(&seg.path))
            .as_ref()?;
        let probe = ip.wrapping_sub(seg.bias).wrapping_sub(1);
        elf.symbol_entry(probe).map(|s| s.0.wrapping_add(seg.bias))
    }

    /// Makes an event's innermost native frame (the tracer's hook) its function's entry, so that
    /// stacks differing only in the path taken inside the hook (a thread's first event goes through
    /// its set-up) are one site. `merged` caches the answer per stack; call it for every event, in
    /// order (new stacks get their ids as they are first met).
    pub fn merge_hook_frame(
        &mut self,
        merged: &mut HashMap<NativeId, NativeId>,
        native: &mut NativeTree,
        id: NativeId,
    ) -> NativeId {
        if id == NativeTree::ROOT {
            return id;
        }
        if let Some(m) = merged.get(&id) {
            return *m;
        }
        let m = match native.node(id) {
            Some((parent, ip)) => match self.function_start(ip) {
                // +1: the symbolizer takes every address for a return address.
                Some(start) => native.intern(parent, start + 1),
                None => id,
            },
            None => id,
        };
        merged.insert(id, m);
        m
    }

    fn resolve(&mut self, ip: u64) -> Vec<NativeFrame> {
        let unknown = |library: &str| NativeFrame {
            ip,
            function: "??".into(),
            library: library.into(),
            file: None,
            line: None,
            inlined: false,
        };
        let Some(seg) = find_segment(&self.modules, ip) else {
            return vec![unknown("?")];
        };
        let library = Path::new(&seg.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| seg.path.clone());
        let elf = self
            .objects
            .entry(seg.path.clone())
            .or_insert_with(|| Elf::open(&seg.path));
        let Some(elf) = elf else {
            return vec![unknown(&library)];
        };
        // A return address is the instruction after the call: look up the call itself.
        let probe = ip.wrapping_sub(seg.bias).wrapping_sub(1);
        let mut out = Vec::new();
        if let Some(dwarf) = &elf.dwarf {
            if let Ok(mut frames) = dwarf.find_frames(probe) {
                while let Ok(Some(f)) = frames.next() {
                    let function = f
                        .function
                        .as_ref()
                        .and_then(|n| n.demangle().ok().map(|s| s.into_owned()));
                    let (file, line) = match &f.location {
                        Some(l) => (l.file.map(str::to_string), l.line),
                        None => (None, None),
                    };
                    out.push(NativeFrame {
                        ip,
                        function: function.unwrap_or_default(),
                        library: library.clone(),
                        file,
                        line,
                        inlined: true,
                    });
                }
            }
        }
        if let Some(last) = out.last_mut() {
            last.inlined = false;
        }
        let symbol = elf.symbol(probe);
        for f in &mut out {
            if f.function.is_empty() {
                f.function = symbol.unwrap_or("??").to_string();
            }
        }
        if out.is_empty() {
            let mut f = unknown(&library);
            if let Some(name) = symbol {
                f.function = name.to_string();
            }
            out.push(f);
        }
        let call = ip.wrapping_sub(1);
        if self.eval_loop.iter().any(|r| (r.0..r.1).contains(&call)) {
            if let Some(outer) = out.last_mut() {
                outer.function = EVAL_FRAME.to_string();
            }
        }
        out
    }
}

/// The segment holding `ip` (the last recorded over it: a later dlopen at the same place).
fn find_segment(modules: &[ModuleSegment], ip: u64) -> Option<&ModuleSegment> {
    modules
        .iter()
        .rev()
        .find(|m| (m.start..m.end).contains(&ip))
}
