//! Defines the capture header: what was traced, how, and when.
//!
//! Layout: `MAGIC` (8 bytes), format version (`u16` LE), body length (`u32` LE), body. The body is a
//! sequence of varints and length-prefixed strings in the order of the fields of [`Header`].

use crate::record::{FORMAT_VERSION, MAGIC};
use crate::varint::{push_str, push_varint, Cursor};

/// Mode flag: pymalloc allocations are recorded.
pub const MODE_PYTHON_ALLOCATORS: u64 = 1;
/// Mode flag: native stacks are recorded.
pub const MODE_NATIVE: u64 = 2;

/// What the capture's header says.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Header {
    pub format_version: u16,
    pub pid: u32,
    /// The process this one was forked from, if it is a fork child's capture (else 0).
    pub forked_from: u32,
    /// Wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// `MODE_*` flags.
    pub mode: u64,
    /// Stack source asked for (`walk`, `profile`, `noop`, or empty for a non-Python program).
    pub stack_source: String,
    /// `Py_GetVersion()` of the traced interpreter, empty when not Python.
    pub python_version: String,
    pub executable: String,
    pub command_line: Vec<String>,
    /// The object whose `malloc` the program's calls end in (glibc's, jemalloc's, ...), seen at
    /// start-up; empty in captures written before it was recorded.
    pub allocator: String,
    /// Why the tracer's hooks are not the functions the process calls (another `malloc` comes first
    /// in the lookup order), or empty when they are: a capture with this set misses those calls.
    pub hooks_bypassed: String,
}

impl Header {
    /// Encodes magic, version, length and body.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(256);
        push_varint(&mut body, u64::from(self.pid));
        push_varint(&mut body, u64::from(self.forked_from));
        push_varint(&mut body, self.start_unix_ns);
        push_varint(&mut body, self.mode);
        push_str(&mut body, &self.stack_source);
        push_str(&mut body, &self.python_version);
        push_str(&mut body, &self.executable);
        push_varint(&mut body, self.command_line.len() as u64);
        for arg in &self.command_line {
            push_str(&mut body, arg);
        }
        push_str(&mut body, &self.allocator);
        push_str(&mut body, &self.hooks_bypassed);
        let mut out = Vec::with_capacity(body.len() + 14);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a header body (after magic, version and length).
    pub fn decode_body(format_version: u16, body: &[u8]) -> Option<Header> {
        let mut c = Cursor::new(body);
        let mut h = Header {
            format_version,
            pid: u32::try_from(c.varint().ok()?).ok()?,
            forked_from: u32::try_from(c.varint().ok()?).ok()?,
            start_unix_ns: c.varint().ok()?,
            mode: c.varint().ok()?,
            stack_source: c.string().ok()?,
            python_version: c.string().ok()?,
            executable: c.string().ok()?,
            command_line: Vec::new(),
            allocator: String::new(),
            hooks_bypassed: String::new(),
        };
        let argc = c.varint().ok()?;
        for _ in 0..argc {
            h.command_line.push(c.string().ok()?);
        }
        // Added later at the end of the body: older captures stop before them.
        if !c.is_empty() {
            h.allocator = c.string().ok()?;
            h.hooks_bypassed = c.string().ok()?;
        }
        Some(h)
    }

    pub fn python_allocators(&self) -> bool {
        self.mode & MODE_PYTHON_ALLOCATORS != 0
    }

    pub fn native(&self) -> bool {
        self.mode & MODE_NATIVE != 0
    }

    /// The mode's name as the CLI spells it.
    pub fn mode_name(&self) -> &'static str {
        match (self.python_allocators(), self.native()) {
            (false, false) => "default",
            (true, false) => "python-allocators",
            (false, true) => "native",
            (true, true) => "python-allocators+native",
        }
    }
}

/// Encodes the end-of-capture frame: the tracer's own counters, by name.
pub fn encode_end(counters: &[(&str, u64)]) -> Vec<u8> {
    let mut body = Vec::new();
    push_varint(&mut body, counters.len() as u64);
    for (name, value) in counters {
        push_str(&mut body, name);
        push_varint(&mut body, *value);
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(crate::record::FRAME_END);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let h = Header {
            format_version: FORMAT_VERSION,
            pid: 1234,
            forked_from: 0,
            start_unix_ns: 1_700_000_000_000_000_000,
            mode: MODE_NATIVE,
            stack_source: "walk".into(),
            python_version: "3.11.7 (main)".into(),
            executable: "/usr/bin/python3.11".into(),
            command_line: vec!["python3".into(), "x.py".into()],
            allocator: "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2".into(),
            hooks_bypassed: String::new(),
        };
        let bytes = h.encode();
        assert_eq!(&bytes[..8], MAGIC);
        let len = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
        assert_eq!(
            Header::decode_body(FORMAT_VERSION, &bytes[14..14 + len]),
            Some(h.clone())
        );
        assert_eq!(h.mode_name(), "native");
    }

    #[test]
    fn header_without_the_allocator_fields_still_reads() {
        let h = Header {
            format_version: FORMAT_VERSION,
            pid: 7,
            command_line: vec!["prog".into()],
            allocator: "x".into(),
            hooks_bypassed: "y".into(),
            ..Header::default()
        };
        let bytes = h.encode();
        let body = &bytes[14..];
        // An older tracer's header: the same body without the two strings (one length byte each
        // plus one byte of content).
        let old = &body[..body.len() - 4];
        let read = Header::decode_body(FORMAT_VERSION, old).unwrap();
        assert_eq!(read.allocator, "");
        assert_eq!(read.hooks_bypassed, "");
        assert_eq!(read.command_line, ["prog"]);
    }
}
