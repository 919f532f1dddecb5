//! Defines where CPython keeps what the frame walk reads, per minor version. 3.11 was measured here
//! (offsets printed by a C probe compiled against the 3.11.7 headers, and checked at every start
//! against `sys._getframe()`); 3.12 and 3.13 are written from their headers and are untested.
//!
//! Every offset is in bytes, on x86_64.

/// How to find a thread's innermost interpreter frame.
#[derive(Debug, Clone, Copy)]
pub enum CurrentFrame {
    /// `tstate->cframe->current_frame` (3.11, 3.12).
    ViaCFrame { cframe: usize, current_frame: usize },
    /// `tstate->current_frame` (3.13).
    Direct { current_frame: usize },
}

/// How an interpreter frame says where it is.
#[derive(Debug, Clone, Copy)]
pub enum InstrPointer {
    /// `prev_instr`: the last code unit started (3.11, 3.12).
    Previous(usize),
    /// `instr_ptr`: the instruction running or about to run (3.13).
    Current(usize),
}

#[derive(Debug)]
pub struct Layout {
    pub version: (u32, u32),
    pub tested: bool,
    pub current_frame: CurrentFrame,
    // _PyInterpreterFrame
    pub frame_code: usize,
    pub frame_previous: usize,
    pub frame_instr: InstrPointer,
    pub frame_owner: usize,
    /// `owner` values: the frame belongs to a generator (never "incomplete"), or is a C-stack shim.
    pub owned_by_generator: u8,
    pub owned_by_cstack: Option<u8>,
    // PyCodeObject
    pub code_first_line: usize,
    pub code_filename: usize,
    pub code_qualname: usize,
    pub code_linetable: usize,
    pub code_first_traceable: usize,
    pub code_adaptive: usize,
    // str objects: size of PyASCIIObject and PyCompactUnicodeObject (data follows them).
    pub ascii_size: usize,
    pub compact_size: usize,
}

pub const PY_3_11: Layout = Layout {
    version: (3, 11),
    tested: true,
    current_frame: CurrentFrame::ViaCFrame {
        cframe: 56,
        current_frame: 8,
    },
    frame_code: 32,
    frame_previous: 48,
    frame_instr: InstrPointer::Previous(56),
    frame_owner: 69,
    owned_by_generator: 1,
    owned_by_cstack: None,
    code_first_line: 72,
    code_filename: 112,
    code_qualname: 128,
    code_linetable: 136,
    code_first_traceable: 168,
    code_adaptive: 184,
    ascii_size: 48,
    compact_size: 72,
};

/// Untested: from CPython 3.12's `Include/cpython/pystate.h`, `Include/internal/pycore_frame.h`,
/// `Include/cpython/code.h` and `Include/cpython/unicodeobject.h`.
pub const PY_3_12: Layout = Layout {
    version: (3, 12),
    tested: false,
    current_frame: CurrentFrame::ViaCFrame {
        cframe: 56,
        current_frame: 0,
    },
    frame_code: 0,
    frame_previous: 8,
    frame_instr: InstrPointer::Previous(56),
    frame_owner: 70,
    owned_by_generator: 1,
    owned_by_cstack: Some(3),
    code_first_line: 68,
    code_filename: 112,
    code_qualname: 128,
    code_linetable: 136,
    code_first_traceable: 176,
    code_adaptive: 192,
    ascii_size: 40,
    compact_size: 56,
};

/// Untested: from CPython 3.13's headers (see 3.12). `f_executable` holds the code object.
pub const PY_3_13: Layout = Layout {
    version: (3, 13),
    tested: false,
    current_frame: CurrentFrame::Direct { current_frame: 72 },
    frame_code: 0,
    frame_previous: 8,
    frame_instr: InstrPointer::Current(56),
    frame_owner: 70,
    owned_by_generator: 1,
    owned_by_cstack: Some(3),
    code_first_line: 68,
    code_filename: 112,
    code_qualname: 128,
    code_linetable: 136,
    code_first_traceable: 176,
    code_adaptive: 200,
    ascii_size: 40,
    compact_size: 56,
};

/// The layout for a `Py_GetVersion()` string, if we have one.
pub fn for_version(version: &str) -> Option<&'static Layout> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    [&PY_3_11, &PY_3_12, &PY_3_13]
        .into_iter()
        .find(|l| l.version == (major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            for_version("3.11.7 (main, Jan  1 2024) [GCC]")
                .unwrap()
                .version,
            (3, 11)
        );
        assert!(for_version("3.12.1").is_some());
        assert!(for_version("3.10.4").is_none());
        assert!(for_version("").is_none());
    }
}
