//! Provides chunk compression: the writer thread compresses each thread chunk with zstd before writing
//! it (off the hot path), and the reader decompresses it. Code-object definitions (names, paths, line
//! tables) and repeated stacks make chunks very compressible.
//!
//! A compressed chunk is a frame of type [`FRAME_COMPRESSED_CHUNK`] whose body is the uncompressed
//! body's length (varint) followed by a zstd frame. Each chunk is compressed alone, so a truncated or
//! damaged chunk never affects the others.

/// zstd level: 3 is zstd's default, several times cheaper than the hook work it follows.
const LEVEL: i32 = 3;

use crate::record::{FRAME_PREFIX_LEN, FRAME_THREAD_CHUNK};
use crate::varint::{push_varint, Cursor};

pub const FRAME_COMPRESSED_CHUNK: u8 = 3;

/// Compresses a whole thread-chunk frame (prefix included) into `out` as a compressed frame.
/// A chunk that does not shrink is copied as it is.
pub fn compress_frame(frame: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let body = &frame[FRAME_PREFIX_LEN..];
    out.extend_from_slice(&[FRAME_COMPRESSED_CHUNK, 0, 0, 0, 0]);
    push_varint(out, body.len() as u64);
    let start = out.len();
    out.resize(start + zstd::zstd_safe::compress_bound(body.len()), 0);
    match zstd::bulk::compress_to_buffer(body, &mut out[start..], LEVEL) {
        Ok(n) if start + n < frame.len() => {
            out.truncate(start + n);
            let len = (out.len() - FRAME_PREFIX_LEN) as u32;
            out[1..5].copy_from_slice(&len.to_le_bytes());
        }
        _ => {
            out.clear();
            out.extend_from_slice(frame);
            out[0] = FRAME_THREAD_CHUNK;
        }
    }
}

/// Decompresses a compressed frame's body into the thread chunk body it holds. The stated length is
/// bounded by `max_len`, so a corrupt length cannot make the reader allocate without limit.
pub fn decompress_body(body: &[u8], max_len: usize) -> Result<Vec<u8>, String> {
    let mut c = Cursor::new(body);
    let len = c
        .varint()
        .map_err(|_| "bad compressed chunk length".to_string())?;
    if len > max_len as u64 {
        return Err(format!("compressed chunk claims {len} bytes"));
    }
    let mut out = vec![0u8; len as usize];
    let n = zstd::bulk::decompress_to_buffer(&body[c.position()..], &mut out)
        .map_err(|e| format!("bad compressed chunk: {e}"))?;
    if n != out.len() {
        return Err("compressed chunk is shorter than it says".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{begin_chunk, finish_chunk, put_alloc, Kind};

    #[test]
    fn roundtrip_and_shrinks() {
        let mut frame = vec![0u8; 1 << 16];
        let (mut pos, mut st) = begin_chunk(&mut frame, 1, 2, 3);
        for i in 0..5000u64 {
            pos += put_alloc(
                &mut frame[pos..],
                0,
                &mut st,
                Kind::Malloc,
                2,
                0x5000_0000 + (i % 7) * 64,
                100,
            );
        }
        finish_chunk(&mut frame, pos);
        let mut out = Vec::new();
        compress_frame(&frame[..pos], &mut out);
        assert_eq!(out[0], FRAME_COMPRESSED_CHUNK);
        assert!(out.len() < pos / 4, "{} vs {pos}", out.len());
        assert_eq!(
            decompress_body(&out[FRAME_PREFIX_LEN..], 1 << 20).unwrap(),
            &frame[FRAME_PREFIX_LEN..pos]
        );
    }

    #[test]
    fn incompressible_chunks_stay_plain() {
        let mut frame = vec![FRAME_THREAD_CHUNK, 3, 0, 0, 0, 1, 2, 3];
        finish_chunk(&mut frame, 8);
        let mut out = Vec::new();
        compress_frame(&frame, &mut out);
        assert_eq!(out, frame);
    }

    #[test]
    fn corrupt_bodies_are_errors() {
        assert!(decompress_body(&[0xff, 0xff, 0xff, 0xff, 0x0f], 1 << 20).is_err());
        assert!(decompress_body(&[10, 0xf0], 1 << 20).is_err());
    }
}
