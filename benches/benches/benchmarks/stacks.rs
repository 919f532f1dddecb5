//! Stack deltas as the reader applies them (the `StackTree`), at depths 10 and 50: the common case (the
//! innermost frame moved) and a whole stack sent again (each chunk starts with one).

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion};
use tracer_capture::StackTree;

fn benches_fn(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack_deltas");
    for depth in [10u32, 50] {
        let mut tree = StackTree::default();
        let mut base = StackTree::ROOT;
        for d in 0..depth - 1 {
            base = tree.push(base, d, d * 2);
        }
        g.bench_with_input(
            BenchmarkId::new("innermost_moved", depth),
            &depth,
            |b, _| {
                let mut offset = 0;
                b.iter(|| {
                    offset = (offset + 2) % 400;
                    let top = tree.push(black_box(base), 999, offset);
                    black_box(tree.pop(top, 1))
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("whole_stack", depth),
            &depth,
            |b, &depth| {
                b.iter(|| {
                    let mut id = StackTree::ROOT;
                    for d in 0..depth {
                        id = tree.push(id, d, d * 2);
                    }
                    black_box(id)
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, benches_fn);
