//! Record encoding, chunk compression and decoding (the `tracer-capture` crate).

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use tracer_capture::compress::compress_frame;
use tracer_capture::record::{
    begin_chunk, finish_chunk, put_alloc, put_free, put_pop, put_push, Kind, MAX_EVENT_RECORD_LEN,
};

const EVENTS: usize = 10_000;

/// A chunk of `EVENTS` malloc/free pairs with realistic addresses and sizes (and a stack change
/// every fourth allocation); returns its length.
fn fill_chunk(buf: &mut [u8]) -> usize {
    let (mut pos, mut st) = begin_chunk(buf, 0, 1, 0);
    let mut addr = 0x5555_0000_0000u64;
    for i in 0..EVENTS as u64 {
        if i % 4 == 0 {
            pos = put_pop(buf, pos, 1);
            pos = put_push(buf, pos, (i % 300) as u32, (i % 500) as u32 * 2);
        }
        addr = addr.wrapping_add(((i * 7919) % 4096) * 16);
        pos += put_alloc(
            &mut buf[pos..pos + MAX_EVENT_RECORD_LEN],
            0,
            &mut st,
            Kind::Malloc,
            1,
            addr,
            16 + (i % 200),
        );
        pos += put_free(
            &mut buf[pos..pos + MAX_EVENT_RECORD_LEN],
            0,
            &mut st,
            Kind::Free,
            1,
            addr,
        );
    }
    finish_chunk(buf, pos);
    pos
}

fn benches_fn(c: &mut Criterion) {
    let mut buf = vec![0u8; 1 << 20];
    let len = fill_chunk(&mut buf);
    eprintln!(
        "encoding: {:.2} bytes per record before compression",
        len as f64 / (2 * EVENTS) as f64
    );
    let mut out = Vec::new();
    compress_frame(&buf[..len], &mut out);
    eprintln!(
        "encoding: {:.2} bytes per record after compression",
        out.len() as f64 / (2 * EVENTS) as f64
    );

    let mut g = c.benchmark_group("encoding");
    g.throughput(Throughput::Elements(2 * EVENTS as u64));
    g.bench_function("records", |b| {
        b.iter(|| black_box(fill_chunk(black_box(&mut buf))))
    });
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("compress_chunk", |b| {
        b.iter(|| compress_frame(black_box(&buf[..len]), &mut out))
    });
    let capture = one_chunk_capture(&buf[..len]);
    g.throughput(Throughput::Elements(2 * EVENTS as u64));
    g.bench_function("decode", |b| {
        b.iter(|| tracer_capture::read_capture(black_box(&capture[..])).unwrap())
    });
    g.finish();
}

/// A capture holding one chunk (header, chunk, end).
fn one_chunk_capture(chunk: &[u8]) -> Vec<u8> {
    let mut out = tracer_capture::Header::default().encode();
    out.extend_from_slice(chunk);
    out.extend_from_slice(&tracer_capture::header::encode_end(&[]));
    out
}

criterion_group!(benches, benches_fn);
