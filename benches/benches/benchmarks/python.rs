//! The Python-side paths, in a real interpreter under the preload (`programs/python_calls.py`):
//! - `alloc_at_depth`: an allocation that reaches malloc at stack depth 10 and 50, with the walk and
//!   the profile stack sources (stack walking, frame interning and stack deltas together);
//! - `calls`: Python calls and returns, untraced, with the profile hook doing nothing (`noop`) and
//!   keeping the shadow stack (`profile`): the push/pop path;
//! - `pymalloc`: small objects with and without `--trace-python-allocators` (the allocator wrappers).

use criterion::{criterion_group, BenchmarkId, Criterion};

use benches::{python, script, timed, Tracing};

fn benches_fn(c: &mut Criterion) {
    let py = python();
    let calls = script("python_calls");
    let run = |tracing: Tracing, mode: &str, depth: u32, iters: u64| {
        let args = vec![
            calls.display().to_string(),
            mode.into(),
            depth.to_string(),
            iters.to_string(),
        ];
        timed(tracing, &py, &args)
    };

    let mut g = c.benchmark_group("python_alloc_at_depth");
    for depth in [10, 50] {
        for (name, tracing) in [
            ("untraced", Tracing::Off),
            ("walk", Tracing::python("walk", false)),
            ("profile", Tracing::python("profile", false)),
        ] {
            g.bench_with_input(BenchmarkId::new(name, depth), &depth, |b, &d| {
                b.iter_custom(|n| run(tracing, "alloc", d, n))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("python_calls");
    for (name, tracing) in [
        ("untraced", Tracing::Off),
        ("noop", Tracing::python("noop", false)),
        ("profile", Tracing::python("profile", false)),
    ] {
        g.bench_function(name, |b| b.iter_custom(|n| run(tracing, "calls", 10, n)));
    }
    g.finish();

    let mut g = c.benchmark_group("pymalloc");
    for (name, tracing) in [
        ("untraced", Tracing::Off),
        ("default", Tracing::python("walk", false)),
        ("python_allocators", Tracing::python("walk", true)),
    ] {
        g.bench_function(name, |b| b.iter_custom(|n| run(tracing, "small", 10, n)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = benches_fn
}
