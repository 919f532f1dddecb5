//! Provides LEB128 varints and protobuf zig-zag signed varints
//! (<https://protobuf.dev/programming-guides/encoding/#varints>), the building blocks of every record.

/// The most bytes a `u64` varint takes.
pub const MAX_VARINT_LEN: usize = 10;

/// Writes `value` as a LEB128 varint at `out[pos..]` and returns the new position.
///
/// The caller guarantees `out.len() >= pos + MAX_VARINT_LEN` (the preload reserves room per record).
#[inline(always)]
pub fn put_varint(out: &mut [u8], mut pos: usize, mut value: u64) -> usize {
    while value >= 0x80 {
        out[pos] = (value as u8) | 0x80;
        value >>= 7;
        pos += 1;
    }
    out[pos] = value as u8;
    pos + 1
}

/// Zig-zag maps a signed value so that small magnitudes of either sign encode in few bytes.
#[inline(always)]
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline(always)]
pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Appends a varint to a growable buffer (for the rare records: header, strings, tables).
pub fn push_varint(out: &mut Vec<u8>, value: u64) {
    let mut tmp = [0u8; MAX_VARINT_LEN];
    let len = put_varint(&mut tmp, 0, value);
    out.extend_from_slice(&tmp[..len]);
}

/// Appends a length-prefixed UTF-8 string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    push_bytes(out, s.as_bytes());
}

/// Appends length-prefixed bytes.
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over a byte slice that decodes varints and fails cleanly at the end of the data.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

/// The data ended in the middle of a value, or a varint was longer than 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    Eof,
    Overlong,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> Result<u8, CursorError> {
        let b = *self.data.get(self.pos).ok_or(CursorError::Eof)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self) -> Result<u64, CursorError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CursorError::Overlong);
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CursorError::Overlong)
    }

    pub fn signed(&mut self) -> Result<i64, CursorError> {
        self.varint().map(unzigzag)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], CursorError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| CursorError::Eof)?;
        let end = self.pos.checked_add(len).ok_or(CursorError::Eof)?;
        let out = self.data.get(self.pos..end).ok_or(CursorError::Eof)?;
        self.pos = end;
        Ok(out)
    }

    pub fn string(&mut self) -> Result<String, CursorError> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_roundtrip(v: u64) {
            let mut buf = [0u8; MAX_VARINT_LEN];
            let len = put_varint(&mut buf, 0, v);
            let mut c = Cursor::new(&buf[..len]);
            prop_assert_eq!(c.varint().unwrap(), v);
            prop_assert!(c.is_empty());
        }

        #[test]
        fn zigzag_roundtrip(v: i64) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn small_values_are_one_byte() {
        let mut buf = [0u8; MAX_VARINT_LEN];
        assert_eq!(put_varint(&mut buf, 0, 127), 1);
        assert_eq!(put_varint(&mut buf, 0, 128), 2);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn truncated_and_overlong_varints_fail() {
        assert_eq!(Cursor::new(&[0x80]).varint(), Err(CursorError::Eof));
        assert_eq!(
            Cursor::new(&[0xff; 11]).varint(),
            Err(CursorError::Overlong)
        );
    }
}
