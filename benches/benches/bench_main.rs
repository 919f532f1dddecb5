//! `cargo bench`: every group of the tracer's benches (see docs/benchmarks.md).

mod benchmarks;

criterion::criterion_main!(
    benchmarks::encoding::benches,
    benchmarks::stacks::benches,
    benchmarks::hooks::benches,
    benchmarks::python::benches,
);
