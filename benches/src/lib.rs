//! criterion benches of the tracer (see docs/benchmarks.md).
