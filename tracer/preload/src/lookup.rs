//! Finds which loaded objects *define* a symbol, in the order the dynamic linker searches them: the
//! program, then the `LD_PRELOAD` libraries, then their dependencies and the program's, as loaded at
//! start-up (the global scope; `dl_iterate_phdr` lists those objects in that order, and objects
//! opened later come after them all). A symbol counts as defined by an object when its dynamic symbol
//! table has it with a section (not `SHN_UNDEF`) and a global or weak binding, read through the
//! object's GNU or SysV hash table.
//!
//! This is what the program's calls end in, which `dlsym(RTLD_DEFAULT)` does not always say: for a
//! non-PIE program that calls `malloc` (Debian's `python3.11`, say), the program's PLT entry is the
//! function's canonical address, so `dlsym` returns that entry (an undefined symbol of the program's),
//! whatever definition the entry jumps to. `forward::bypass` reads the lookup order from here.

use std::ffi::{c_int, c_void, CStr};

/// An object that defines the symbol looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Where the definition is.
    pub address: usize,
    /// The object's path (`dlpi_name`), empty for the program itself.
    pub path: String,
    /// The object holds `marker` (an address of the caller's, to find its own object).
    pub holds_marker: bool,
}

/// Every definition of `name`, in lookup order. `marker` is any address inside the caller's own
/// object (its [`Definition::holds_marker`] is then true).
pub fn definitions(name: &CStr, marker: usize) -> Vec<Definition> {
    struct Search<'a> {
        name: &'a [u8],
        marker: usize,
        found: Vec<Definition>,
    }
    /// # Safety
    /// Called by `dl_iterate_phdr`: `info` describes a loaded object, `data` is the `Search` below.
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: the contract: `data` is the `Search` passed below, `info` the loader's.
        let (search, info) = unsafe { (&mut *(data as *mut Search), &*info) };
        // SAFETY: `info` is a loaded object's, with `dlpi_phnum` program headers.
        if let Some(address) = unsafe { defines(info, search.name) } {
            // SAFETY: as above.
            let holds_marker = unsafe { contains(info, search.marker) };
            let path = if info.dlpi_name.is_null() {
                String::new()
            } else {
                // SAFETY: a non-null `dlpi_name` is a NUL-terminated string.
                unsafe { CStr::from_ptr(info.dlpi_name) }
                    .to_string_lossy()
                    .into_owned()
            };
            search.found.push(Definition {
                address,
                path,
                holds_marker,
            });
        }
        0
    }
    let mut search = Search {
        name: name.to_bytes(),
        marker,
        found: Vec::new(),
    };
    // SAFETY: the callback matches dl_iterate_phdr's and writes only through `data`, a live local.
    unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut search).cast()) };
    search.found
}

/// The program headers of a loaded object.
///
/// # Safety
/// `info` describes a loaded object (from `dl_iterate_phdr`).
unsafe fn headers(info: &libc::dl_phdr_info) -> &[libc::Elf64_Phdr] {
    if info.dlpi_phdr.is_null() {
        return &[];
    }
    // SAFETY: `dlpi_phdr` has `dlpi_phnum` entries, mapped as long as the object is.
    unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
}

/// Whether `address` is inside one of the object's loaded segments.
///
/// # Safety
/// As [`headers`].
unsafe fn contains(info: &libc::dl_phdr_info, address: usize) -> bool {
    // SAFETY: the contract.
    unsafe { headers(info) }.iter().any(|ph| {
        let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
        ph.p_type == libc::PT_LOAD
            && (start..start.wrapping_add(ph.p_memsz as usize)).contains(&address)
    })
}

const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const SHN_UNDEF: u16 = 0;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;

/// `Elf64_Dyn`.
#[repr(C)]
struct Dyn {
    tag: i64,
    value: u64,
}

/// Where the object's definition of `name` is, if it has one.
///
/// # Safety
/// `info` describes a loaded object (from `dl_iterate_phdr`), whose dynamic section, symbol,
/// string and hash tables are mapped as the ELF format lays them out.
unsafe fn defines(info: &libc::dl_phdr_info, name: &[u8]) -> Option<usize> {
    let base = info.dlpi_addr as usize;
    // SAFETY: the contract.
    let dynamic = unsafe { headers(info) }
        .iter()
        .find(|ph| ph.p_type == libc::PT_DYNAMIC)?;
    // The loader relocates these entries in place, except in a read-only dynamic section (the
    // vDSO's): an address below the object's base is still relative.
    let at = |value: u64| {
        let value = value as usize;
        if value < base {
            base.wrapping_add(value)
        } else {
            value
        }
    };
    let (mut strtab, mut symtab, mut hash, mut gnu_hash) = (0, 0, 0, 0);
    let mut entry = base.wrapping_add(dynamic.p_vaddr as usize) as *const Dyn;
    loop {
        // SAFETY: the dynamic section is an array of `Elf64_Dyn` ended by DT_NULL.
        let d = unsafe { &*entry };
        match d.tag {
            DT_NULL => break,
            DT_STRTAB => strtab = at(d.value),
            DT_SYMTAB => symtab = at(d.value),
            DT_HASH => hash = at(d.value),
            DT_GNU_HASH => gnu_hash = at(d.value),
            _ => {}
        }
        // SAFETY: not past DT_NULL.
        entry = unsafe { entry.add(1) };
    }
    if strtab == 0 || symtab == 0 {
        return None;
    }
    let symbols = symtab as *const libc::Elf64_Sym;
    // The symbol at `index`, if it is a definition of `name`.
    let matching = |index: usize| -> Option<usize> {
        // SAFETY: `index` comes from the object's hash table, so it is inside its symbol table;
        // `st_name` is an offset into its string table, at a NUL-terminated name.
        let (sym, sym_name) = unsafe {
            let sym = &*symbols.add(index);
            let sym_name = CStr::from_ptr((strtab + sym.st_name as usize) as *const libc::c_char);
            (sym, sym_name)
        };
        let binding = sym.st_info >> 4;
        (sym_name.to_bytes() == name
            && sym.st_shndx != SHN_UNDEF
            && sym.st_value != 0
            && matches!(binding, STB_GLOBAL | STB_WEAK))
        .then(|| base.wrapping_add(sym.st_value as usize))
    };
    if gnu_hash != 0 {
        // SAFETY: DT_GNU_HASH points at the object's GNU hash table.
        unsafe { gnu_lookup(gnu_hash, name, matching) }
    } else if hash != 0 {
        // SAFETY: DT_HASH points at the object's SysV hash table.
        unsafe { sysv_lookup(hash, name, matching) }
    } else {
        None
    }
}

/// Looks `name` up in a GNU hash table (which holds only the defined symbols; `matching` still
/// checks each candidate).
///
/// # Safety
/// `table` is a loaded object's DT_GNU_HASH table (64-bit).
unsafe fn gnu_lookup(
    table: usize,
    name: &[u8],
    matching: impl Fn(usize) -> Option<usize>,
) -> Option<usize> {
    let hash = name.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    });
    let words = table as *const u32;
    // SAFETY: the table's header (nbuckets, symoffset, bloom words, bloom shift), then the bloom
    // filter (64-bit words), the buckets and the chain, as the format lays them out.
    unsafe {
        let (nbuckets, symoffset, bloom_size) = (*words, *words.add(1), *words.add(2));
        if nbuckets == 0 {
            return None;
        }
        let buckets = words.add(4 + 2 * bloom_size as usize);
        let chain = buckets.add(nbuckets as usize);
        let mut index = *buckets.add((hash % nbuckets) as usize);
        if index < symoffset {
            return None;
        }
        loop {
            let h = *chain.add((index - symoffset) as usize);
            if h | 1 == hash | 1 {
                if let Some(address) = matching(index as usize) {
                    return Some(address);
                }
            }
            if h & 1 != 0 {
                return None;
            }
            index += 1;
        }
    }
}

/// Looks `name` up in a SysV hash table (which holds every symbol, undefined ones too).
///
/// # Safety
/// `table` is a loaded object's DT_HASH table.
unsafe fn sysv_lookup(
    table: usize,
    name: &[u8],
    matching: impl Fn(usize) -> Option<usize>,
) -> Option<usize> {
    let hash = name.iter().fold(0u32, |h, &c| {
        let h = (h << 4).wrapping_add(u32::from(c));
        let g = h & 0xf000_0000;
        (h ^ (g >> 24)) & !g
    });
    let words = table as *const u32;
    // SAFETY: the table's header (nbucket, nchain), then the buckets and the chain.
    unsafe {
        let (nbucket, nchain) = (*words, *words.add(1));
        if nbucket == 0 {
            return None;
        }
        let buckets = words.add(2);
        let chain = buckets.add(nbucket as usize);
        let mut index = *buckets.add((hash % nbucket) as usize);
        let mut steps = 0;
        while index != 0 && index < nchain && steps < nchain {
            if let Some(address) = matching(index as usize) {
                return Some(address);
            }
            index = *chain.add(index as usize);
            steps += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function of this object's, for the marker.
    fn here() {}

    #[test]
    fn the_test_programs_own_malloc_comes_first_then_glibcs() {
        // The test program is this crate linked as an executable: its `malloc` (the hook) is
        // exported (libc refers to malloc), and comes first in the lookup order.
        let defs = definitions(c"malloc", here as fn() as usize);
        assert!(defs.len() >= 2, "{defs:?}");
        assert!(defs[0].holds_marker && defs[0].path.is_empty(), "{defs:?}");
        // SAFETY: NUL-terminated names.
        let (first, next) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()),
                libc::dlsym(libc::RTLD_NEXT, c"malloc".as_ptr()),
            )
        };
        assert_eq!(defs[0].address, first as usize, "{defs:?}");
        let libc = defs
            .iter()
            .find(|d| d.path.contains("libc.so"))
            .unwrap_or_else(|| panic!("{defs:?}"));
        assert!(!libc.holds_marker);
        assert_eq!(libc.address, next as usize, "{defs:?}");
    }

    #[test]
    fn a_name_nothing_defines_has_no_definition() {
        assert!(definitions(c"no_such_symbol_anywhere", 0).is_empty());
    }
}
