//! The reader against damaged input: random bytes, every truncation and bit flips of a real capture.
//! It must return a capture or an error, never panic; errors are one line.

use proptest::prelude::*;
use tracer_capture::compress::compress_frame;
use tracer_capture::header::{encode_end, Header};
use tracer_capture::record::*;
use tracer_capture::{open_capture, read_capture, Event, Replay, Stats};

/// A small but complete capture: two threads, Python stacks, code records, a compressed chunk.
fn sample_capture() -> Vec<u8> {
    let mut out = Header {
        pid: 7,
        python_version: "3.11.7".into(),
        ..Header::default()
    }
    .encode();
    for thread in 0..2u32 {
        let mut buf = vec![0u8; 1 << 16];
        let (mut pos, mut st) = begin_chunk(&mut buf, thread, u64::from(thread), 10);
        pos = put_thread_info(&mut buf, pos, 100 + u64::from(thread));
        pos = put_code(
            &mut buf,
            pos,
            thread,
            1,
            b"f",
            b"x.py",
            b"\x80\x00\xd8\x08\t",
        );
        for i in 0..50u64 {
            pos = put_push(&mut buf, pos, thread, (i % 5) as u32 * 2);
            pos += put_alloc(
                &mut buf[pos..],
                0,
                &mut st,
                Kind::Malloc,
                u64::from(thread),
                0x1000 + i * 64,
                32 + i,
            );
            pos = put_pop(&mut buf, pos, 1);
            pos += put_free(
                &mut buf[pos..],
                0,
                &mut st,
                Kind::Free,
                u64::from(thread) + 2,
                0x1000 + i * 64,
            );
        }
        finish_chunk(&mut buf, pos);
        if thread == 0 {
            let mut c = Vec::new();
            compress_frame(&buf[..pos], &mut c);
            out.extend_from_slice(&c);
        } else {
            out.extend_from_slice(&buf[..pos]);
        }
    }
    out.extend_from_slice(&encode_end(&[("chunks_written", 2)]));
    out
}

/// Three threads, eight chunks each, their epochs interleaved (thread t owns epochs ≡ t mod 3, and
/// every chunk of one thread spans epochs other threads' chunks use), frees of other threads' blocks.
fn interleaved_capture() -> Vec<u8> {
    let mut out = Header::default().encode();
    for round in 0..8u64 {
        for thread in 0..3u32 {
            let mut buf = vec![0u8; 1 << 16];
            let base = round * 300 + u64::from(thread);
            let (mut pos, mut st) = begin_chunk(&mut buf, thread, base, round);
            pos = put_push(&mut buf, pos, thread, round as u32);
            for i in 0..100u64 {
                let epoch = base + 3 * i;
                let addr = 0x10_0000 * (u64::from(thread) + 1) + (round * 100 + i) * 64;
                pos += put_alloc(
                    &mut buf[pos..],
                    0,
                    &mut st,
                    Kind::Malloc,
                    epoch,
                    addr,
                    16 + i,
                );
                if i % 3 == 1 {
                    // A block of the previous thread, allocated at an earlier epoch.
                    let other = (u64::from(thread) + 2) % 3;
                    let old = 0x10_0000 * (other + 1) + (round * 100 + i - 1) * 64;
                    pos += put_free(&mut buf[pos..], 0, &mut st, Kind::Free, epoch, old);
                }
            }
            finish_chunk(&mut buf, pos);
            if (round + u64::from(thread)) % 2 == 0 {
                let mut c = Vec::new();
                compress_frame(&buf[..pos], &mut c);
                out.extend_from_slice(&c);
            } else {
                out.extend_from_slice(&buf[..pos]);
            }
        }
    }
    out.extend_from_slice(&encode_end(&[("chunks_written", 24)]));
    out
}

/// The streaming reader's events, in its order.
fn streamed_events(bytes: &[u8]) -> Result<Vec<Event>, String> {
    let mut s = open_capture(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.events(|e, _| out.push(*e)).map_err(|e| e.to_string())?;
    assert_eq!(out.len() as u64, s.event_count);
    Ok(out)
}

/// Reading must not panic; an error's message is one line; the streaming reader reads the same
/// events in the same order, or fails with the same error.
fn read_ok_or_one_line(bytes: &[u8]) {
    match read_capture(bytes) {
        Ok(cap) => {
            let _ = Stats::compute(&cap);
            assert_eq!(streamed_events(bytes).as_deref(), Ok(&cap.events[..]));
        }
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            assert_eq!(streamed_events(bytes).err(), Some(e.to_string()));
        }
    }
}

#[test]
fn streaming_merges_interleaved_threads_as_the_sort_does() {
    let data = interleaved_capture();
    let cap = read_capture(&data[..]).unwrap();
    assert_eq!(cap.events.len(), 24 * 133);
    let streamed = streamed_events(&data).unwrap();
    assert_eq!(streamed, cap.events);
    // The stats of the stream equal those of the capture in memory.
    let mut r = Replay::new();
    for e in &streamed {
        r.event(e);
    }
    let (s, _) = r.finish(&cap);
    let m = Stats::compute(&cap);
    assert_eq!(serde_json_like(&s), serde_json_like(&m));
    assert!(
        m.unmatched_frees == 0,
        "every free follows its allocation in the merged order"
    );
    for len in (0..data.len()).step_by(97) {
        read_ok_or_one_line(&data[..len]);
    }
}

fn serde_json_like(s: &Stats) -> String {
    format!("{s:?}")
}

#[test]
fn sample_capture_reads_back() {
    let cap = read_capture(&sample_capture()[..]).unwrap();
    assert!(cap.truncated.is_none());
    assert_eq!(cap.events.len(), 200);
    assert_eq!(Stats::compute(&cap).leaked_blocks, 0);
}

#[test]
fn every_truncation_reads_or_fails_cleanly() {
    let full = sample_capture();
    for len in 0..full.len() {
        read_ok_or_one_line(&full[..len]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_ok_or_one_line(&bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_header(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut data = Header::default().encode();
        data.extend_from_slice(&bytes);
        read_ok_or_one_line(&data);
    }

    #[test]
    fn bit_flips(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8)) {
        let mut data = sample_capture();
        for (at, bit) in flips {
            let i = at.index(data.len());
            data[i] ^= 1 << bit;
        }
        read_ok_or_one_line(&data);
    }
}
