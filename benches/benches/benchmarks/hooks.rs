//! The allocation hook: a `malloc(64)`/`free` pair through the preload with tracing on, against the same
//! pair with no preload and with the preload loaded but not recording. Also the hook's tail latency,
//! each pair timed alone (hdrhistogram, printed), and the same pair 40 C calls deep with native
//! unwinding (`--native`). With `BENCH_BASELINE_LIBRARY` set to another build of `libtracer.so`, the
//! hook pair's two preload cases run with it too (`*_baseline`), side by side in the same group.

use criterion::{criterion_group, BenchmarkId, Criterion};
use hdrhistogram::Histogram;

use benches::{baseline_library, compile, library, run, timed, timed_with, Tracing};

const CASES: [(&str, Tracing); 3] = [
    ("untraced", Tracing::Off),
    ("preload_not_recording", Tracing::Loaded),
    ("traced_default", Tracing::DEFAULT),
];

fn latency(program: &std::path::Path) {
    for (name, tracing) in [
        ("untraced", Tracing::Off),
        ("traced_default", Tracing::DEFAULT),
    ] {
        let out = run(tracing, program, &["latency".into(), "1000000".into()]);
        let mut h = Histogram::<u64>::new(3).unwrap();
        for line in out.lines() {
            h.saturating_record(line.parse().unwrap());
        }
        eprintln!(
            "malloc_free_pair latency {name:>15}: p50 {} ns, p99 {} ns, p99.9 {} ns, p99.99 {} ns, max {} ns ({} pairs, each timed with two clock_gettime calls)",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max(),
            h.len()
        );
    }
}

fn benches_fn(c: &mut Criterion) {
    let program = compile("malloc_loop");
    latency(&program);
    let mut g = c.benchmark_group("malloc_free_pair");
    let this = library();
    let baseline = baseline_library();
    for (name, tracing) in CASES {
        let mut libraries = vec![(name.to_string(), &this)];
        if let Some(lib) = baseline.as_ref().filter(|_| tracing != Tracing::Off) {
            libraries.push((format!("{name}_baseline"), lib));
        }
        for (name, lib) in libraries {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    timed_with(lib, tracing, &program, &["time".into(), iters.to_string()])
                })
            });
        }
    }
    g.finish();

    let program = compile("native_depth");
    let mut g = c.benchmark_group("native_unwind");
    for (name, tracing) in [
        ("untraced", Tracing::Off),
        ("traced_default", Tracing::DEFAULT),
        ("native", Tracing::NATIVE),
    ] {
        g.bench_with_input(BenchmarkId::new(name, 40), &40, |b, depth| {
            b.iter_custom(|iters| timed(tracing, &program, &[depth.to_string(), iters.to_string()]))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = benches_fn
}
