//! Defines where CPython keeps what the frame walk reads. Two sources:
//!
//! - 3.13 and later publish the offsets that out-of-process profilers need in `_PyRuntime.debug_offsets`
//!   (`_Py_DebugOffsets`, starting with the cookie `xdebugpy`): the layout is read from there at
//!   start-up ([`from_debug_offsets`]). Where that struct's sub-tables sit changes between minor
//!   versions; [`DEBUG_TABLES`] says where, for 3.13, 3.14 and 3.15 (printed with `offsetof` from each
//!   version's `Include/internal/pycore_debug_offsets.h`, or `pycore_runtime.h` for 3.13). A newer
//!   version is read with the newest known positions: the start-up self-check then decides.
//! - 3.11 and 3.12 have no such table: [`PY_3_11`] (measured with a C probe against the 3.11.7 headers)
//!   and [`PY_3_12`] (written from the 3.12 headers; untested: no 3.12 interpreter could be installed
//!   here).
//!
//! Whatever the source, `start` checks the layout against `sys._getframe()` before using it (see
//! `self_check` in `mod.rs`). Every offset is in bytes, on x86_64, for default (not free-threaded)
//! builds.

use super::memory::Memory;

/// How to find a thread's innermost interpreter frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentFrame {
    /// `tstate->cframe->current_frame` (3.11, 3.12).
    ViaCFrame { cframe: usize, current_frame: usize },
    /// `tstate->current_frame` (3.13 and later).
    Direct { current_frame: usize },
}

/// Where a layout came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A table in this file; `tested` says whether it was ever run against its interpreter.
    Table { tested: bool },
    /// The interpreter's `_Py_DebugOffsets`, read with the positions of `positions_of` (the same
    /// version, or an older one for a version newer than any known).
    DebugOffsets { positions_of: (u32, u32) },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub version: (u32, u32),
    pub origin: Origin,
    pub current_frame: CurrentFrame,
    // _PyInterpreterFrame
    /// `f_code` (3.11, 3.12) or `f_executable` (3.13 and later).
    pub frame_code: usize,
    /// Low bits of `frame_code` that are tags, not address: 3.14 stores the executable as a
    /// `_PyStackRef`, whose low bits say how the reference is counted.
    pub code_tag_bits: usize,
    pub frame_previous: usize,
    /// `prev_instr` (3.11, 3.12: the code unit last started) or `instr_ptr` (3.13 and later: the
    /// instruction running or about to run). Either way, the instruction of an allocation's call.
    pub frame_instr: usize,
    pub frame_owner: usize,
    /// `owner` of a frame that belongs to a generator (never "incomplete").
    pub owned_by_generator: u8,
    /// `owner` values from this one up are frames that run no Python code: the C-stack shims of 3.12
    /// and 3.13 (`FRAME_OWNED_BY_CSTACK` = 3), and from 3.14 the interpreter's own frames
    /// (`FRAME_OWNED_BY_INTERPRETER` = 3, `FRAME_OWNED_BY_CSTACK` = 4). 3.11 has no such owner.
    pub first_shim_owner: u8,
    // PyObject, PyVarObject
    pub ob_type: usize,
    pub var_size: usize,
    // PyCodeObject
    pub code_first_line: usize,
    pub code_filename: usize,
    pub code_qualname: usize,
    pub code_linetable: usize,
    pub code_first_traceable: usize,
    pub code_adaptive: usize,
    // str objects: the length and state fields, and the sizes of PyASCIIObject and
    // PyCompactUnicodeObject (the characters follow them).
    pub str_length: usize,
    pub str_state: usize,
    pub ascii_size: usize,
    pub compact_size: usize,
    // bytes objects (line tables)
    pub bytes_size: usize,
    pub bytes_data: usize,
}

impl Layout {
    /// Whether this layout was ever checked against a real interpreter of its version, as this
    /// project's tests do (a table-based layout that never was says so when it fails).
    pub fn tested(&self) -> bool {
        match self.origin {
            Origin::Table { tested } => tested,
            Origin::DebugOffsets { .. } => true,
        }
    }
}

pub const PY_3_11: Layout = Layout {
    version: (3, 11),
    origin: Origin::Table { tested: true },
    current_frame: CurrentFrame::ViaCFrame {
        cframe: 56,
        current_frame: 8,
    },
    frame_code: 32,
    code_tag_bits: 0,
    frame_previous: 48,
    frame_instr: 56,
    frame_owner: 69,
    owned_by_generator: 1,
    first_shim_owner: 3,
    ob_type: 8,
    var_size: 16,
    code_first_line: 72,
    code_filename: 112,
    code_qualname: 128,
    code_linetable: 136,
    code_first_traceable: 168,
    code_adaptive: 184,
    str_length: 16,
    str_state: 32,
    ascii_size: 48,
    compact_size: 72,
    bytes_size: 16,
    bytes_data: 32,
};

/// Untested: from CPython 3.12's `Include/cpython/pystate.h`, `Include/internal/pycore_frame.h`,
/// `Include/cpython/code.h` and `Include/cpython/unicodeobject.h` (and agreeing with the struct
/// layouts bindgen generated from the 3.12.0 headers for py-spy).
pub const PY_3_12: Layout = Layout {
    version: (3, 12),
    origin: Origin::Table { tested: false },
    current_frame: CurrentFrame::ViaCFrame {
        cframe: 56,
        current_frame: 0,
    },
    frame_code: 0,
    code_tag_bits: 0,
    frame_previous: 8,
    frame_instr: 56,
    frame_owner: 70,
    owned_by_generator: 1,
    first_shim_owner: 3,
    ob_type: 8,
    var_size: 16,
    code_first_line: 68,
    code_filename: 112,
    code_qualname: 128,
    code_linetable: 136,
    code_first_traceable: 176,
    code_adaptive: 192,
    str_length: 16,
    str_state: 32,
    ascii_size: 40,
    compact_size: 56,
    bytes_size: 16,
    bytes_data: 32,
};

/// Where the sub-tables of `_Py_DebugOffsets` start, in bytes from its beginning. Each sub-table
/// starts with the size of its struct, and the fields read here keep their place inside it from 3.13
/// to 3.15 (see [`from_debug_offsets`]).
#[derive(Debug, Clone, Copy)]
pub struct DebugTables {
    pub version: (u32, u32),
    pub thread_state: usize,
    pub interpreter_frame: usize,
    pub code_object: usize,
    pub pyobject: usize,
    pub bytes_object: usize,
    pub unicode_object: usize,
    /// 3.15 adds `compactunicodeobject_size` to the unicode table; before, it is the ASCII size plus
    /// two words (`utf8_length`, `utf8`).
    pub has_compact_size: bool,
}

pub const DEBUG_TABLES: [DebugTables; 3] = [
    DebugTables {
        version: (3, 13),
        thread_state: 152,
        interpreter_frame: 224,
        code_object: 272,
        pyobject: 352,
        bytes_object: 512,
        unicode_object: 536,
        has_compact_size: false,
    },
    DebugTables {
        version: (3, 14),
        thread_state: 176,
        interpreter_frame: 248,
        code_object: 312,
        pyobject: 400,
        bytes_object: 592,
        unicode_object: 616,
        has_compact_size: false,
    },
    DebugTables {
        version: (3, 15),
        thread_state: 176,
        interpreter_frame: 312,
        code_object: 376,
        pyobject: 464,
        bytes_object: 688,
        unicode_object: 712,
        has_compact_size: true,
    },
];

/// The cookie `_Py_DebugOffsets` starts with.
pub const DEBUG_COOKIE: &[u8; 8] = b"xdebugpy";

/// `major.minor` of a `Py_GetVersion()` string.
pub fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The hard-coded layout of a version without an offsets table (3.11, 3.12).
pub fn table_for(version: (u32, u32)) -> Option<&'static Layout> {
    [&PY_3_11, &PY_3_12]
        .into_iter()
        .find(|l| l.version == version)
}

/// The sub-table positions to read `_Py_DebugOffsets` of `version` with: its own, or the newest
/// known for a newer version. None before 3.13.
pub fn debug_tables_for(version: (u32, u32)) -> Option<&'static DebugTables> {
    if version < (3, 13) {
        return None;
    }
    DEBUG_TABLES.iter().rev().find(|t| t.version <= version)
}

/// Reads the layout of a 3.13+ interpreter from its `_Py_DebugOffsets` at `runtime` (the address of
/// `_PyRuntime`, whose first field it is), through `m` (checked loads: a wrong guess fails instead of
/// crashing). Fails, saying why, on a missing cookie, another version, a free-threaded build, or an
/// offset outside its struct.
pub fn from_debug_offsets(
    m: &impl Memory,
    runtime: usize,
    version: (u32, u32),
) -> Result<Layout, String> {
    let tables = debug_tables_for(version)
        .ok_or_else(|| format!("Python {}.{} has no offsets table", version.0, version.1))?;
    let word = |off: usize| {
        m.word(runtime + off)
            .ok_or_else(|| "_PyRuntime.debug_offsets is unreadable".to_string())
    };
    let cookie = word(0)?.to_ne_bytes();
    if &cookie != DEBUG_COOKIE {
        return Err("_PyRuntime.debug_offsets has no xdebugpy cookie".into());
    }
    let hex = word(8)?;
    let table_version = ((hex >> 24) as u32 & 0xff, (hex >> 16) as u32 & 0xff);
    if table_version != version {
        return Err(format!(
            "_PyRuntime.debug_offsets is for {}.{}",
            table_version.0, table_version.1
        ));
    }
    if word(16)? != 0 {
        return Err("a free-threaded build (its frames are not walked)".into());
    }
    // `field(table, n)`: the n-th u64 after a sub-table's size, checked to lie inside that struct.
    let field = |table: usize, n: usize| -> Result<usize, String> {
        let size = word(table)?;
        let value = word(table + 8 * n)?;
        if value >= size || size > 1 << 16 {
            return Err(format!(
                "_PyRuntime.debug_offsets: offset {value} outside a struct of {size} bytes"
            ));
        }
        Ok(value)
    };
    let (frame, code, unicode, bytes) = (
        tables.interpreter_frame,
        tables.code_object,
        tables.unicode_object,
        tables.bytes_object,
    );
    let ascii_size = word(unicode + 24)?;
    let compact_size = if tables.has_compact_size {
        word(unicode + 32)?
    } else {
        ascii_size + 16
    };
    let code_adaptive = field(code, 9)?;
    Ok(Layout {
        version,
        origin: Origin::DebugOffsets {
            positions_of: tables.version,
        },
        current_frame: CurrentFrame::Direct {
            current_frame: field(tables.thread_state, 4)?,
        },
        frame_code: field(frame, 2)?,
        code_tag_bits: if version >= (3, 14) { 3 } else { 0 },
        frame_previous: field(frame, 1)?,
        frame_instr: field(frame, 3)?,
        frame_owner: field(frame, 5)?,
        owned_by_generator: 1,
        first_shim_owner: 3,
        ob_type: field(tables.pyobject, 1)?,
        var_size: field(bytes, 1)?,
        code_first_line: field(code, 5)?,
        code_filename: field(code, 1)?,
        code_qualname: field(code, 3)?,
        code_linetable: field(code, 4)?,
        // Not in the table: `int _co_firsttraceable` then `void *co_extra` come right before
        // `co_code_adaptive` in 3.12 to 3.15 (cpython/code.h). The self-check bounds what it reads.
        code_first_traceable: code_adaptive - 16,
        code_adaptive,
        str_length: field(unicode, 2)?,
        str_state: field(unicode, 1)?,
        ascii_size,
        compact_size,
        bytes_size: field(bytes, 1)?,
        bytes_data: field(bytes, 2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("3.11.7 (main, Jan  1 2024) [GCC]"),
            Some((3, 11))
        );
        assert_eq!(parse_version(""), None);
        assert_eq!(table_for((3, 11)).unwrap().version, (3, 11));
        assert!(table_for((3, 12)).is_some());
        assert!(table_for((3, 10)).is_none());
        assert!(table_for((3, 13)).is_none());
        assert!(debug_tables_for((3, 12)).is_none());
        assert_eq!(debug_tables_for((3, 14)).unwrap().version, (3, 14));
        // A version newer than any known is tried with the newest positions.
        assert_eq!(debug_tables_for((3, 17)).unwrap().version, (3, 15));
    }

    /// A fake `_Py_DebugOffsets` in a buffer, read through a `Memory` over it.
    struct Buffer(Vec<u8>);

    impl Memory for Buffer {
        fn word(&self, addr: usize) -> Option<usize> {
            let b = self.0.get(addr..addr + 8)?;
            Some(usize::from_ne_bytes(b.try_into().unwrap()))
        }
        fn byte(&self, addr: usize) -> Option<u8> {
            self.0.get(addr).copied()
        }
        fn int(&self, addr: usize) -> Option<i32> {
            let b = self.0.get(addr..addr + 4)?;
            Some(i32::from_ne_bytes(b.try_into().unwrap()))
        }
    }

    /// A 3.14 table with the values of the 3.14 headers (those the test interpreters hold).
    fn table_3_14() -> Buffer {
        let mut b = vec![0u8; 1024];
        let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        let t = &DEBUG_TABLES[1];
        put(8, 0x030e0af0);
        put(t.thread_state, 1000);
        put(t.thread_state + 32, 72);
        put(t.interpreter_frame, 88);
        for (n, v) in [(1, 8), (2, 0), (3, 56), (5, 74)] {
            put(t.interpreter_frame + 8 * n, v);
        }
        put(t.code_object, 216);
        for (n, v) in [(1, 112), (3, 128), (4, 136), (5, 68), (9, 208)] {
            put(t.code_object + 8 * n, v);
        }
        put(t.pyobject, 16);
        put(t.pyobject + 8, 8);
        put(t.bytes_object, 40);
        put(t.bytes_object + 8, 16);
        put(t.bytes_object + 16, 32);
        put(t.unicode_object, 48);
        for (n, v) in [(1, 32), (2, 16), (3, 40)] {
            put(t.unicode_object + 8 * n, v);
        }
        b[..8].copy_from_slice(DEBUG_COOKIE);
        Buffer(b)
    }

    #[test]
    fn reads_a_debug_offsets_table() {
        let l = from_debug_offsets(&table_3_14(), 0, (3, 14)).unwrap();
        assert_eq!(l.current_frame, CurrentFrame::Direct { current_frame: 72 });
        assert_eq!(
            (l.frame_code, l.frame_previous, l.frame_instr, l.frame_owner),
            (0, 8, 56, 74)
        );
        assert_eq!(l.code_tag_bits, 3);
        assert_eq!(
            (l.code_first_line, l.code_filename, l.code_qualname),
            (68, 112, 128)
        );
        assert_eq!((l.code_first_traceable, l.code_adaptive), (192, 208));
        assert_eq!((l.ascii_size, l.compact_size), (40, 56));
        assert_eq!((l.bytes_size, l.bytes_data), (16, 32));
    }

    #[test]
    fn refuses_a_wrong_debug_offsets_table() {
        let wrong_version = from_debug_offsets(&table_3_14(), 0, (3, 13)).unwrap_err();
        assert!(wrong_version.contains("for 3.14"), "{wrong_version}");
        let mut no_cookie = table_3_14();
        no_cookie.0[0] = b'y';
        assert!(from_debug_offsets(&no_cookie, 0, (3, 14))
            .unwrap_err()
            .contains("cookie"));
        let mut free_threaded = table_3_14();
        free_threaded.0[16] = 1;
        assert!(from_debug_offsets(&free_threaded, 0, (3, 14))
            .unwrap_err()
            .contains("free-threaded"));
        let mut outside = table_3_14();
        let at = DEBUG_TABLES[1].interpreter_frame + 8 * 5;
        outside.0[at] = 200;
        assert!(from_debug_offsets(&outside, 0, (3, 14))
            .unwrap_err()
            .contains("outside"));
        assert!(from_debug_offsets(&Buffer(vec![0; 16]), 0, (3, 14)).is_err());
    }
}
