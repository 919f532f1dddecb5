//! The allocation tracer's `LD_PRELOAD` library (`libtracer.so`).
//!
//! Loaded into a program, it interposes the malloc family and `mmap`/`munmap`, and records every call
//! made while tracing is on into per-thread buffers that a background thread streams to the capture
//! file (`TRACER_OUTPUT`). The format lives in the `tracer-capture` crate; the configuration and the
//! contract with `tracer run` are in `docs/architecture.md`.
//!
//! Modules, in layers (each uses only the layers below it; `tests/layers.rs` checks it, and
//! `docs/architecture.md` explains it):
//! - entry points: `hooks` (the exported malloc family, mmap, exec, dlclose), `descriptors` (the
//!   close/dup2 hooks that keep the capture's descriptor out of the program's way), `lifecycle`
//!   (constructor, destructor, fork handlers), and in `python`: `module` (`_alloc_tracer`), `pymem`
//!   (pymalloc wrappers), `profile` (the profile function);
//! - the recorder: `track` (the funnel and thread lifecycle), `buffer` (a thread's chunk),
//!   `python::records` (Python stack records), `python` (stack source, per-thread state) with `shadow`
//!   (the profile source's shadow stack, as the recorder reads it), `codes`, `walk`, `layout`, `capi`,
//!   `memory`, then `native` (native stacks: unwinding, the trie, the module
//!   map), `order` (cross-thread order), `inner_maps` (mmaps made inside the allocator);
//! - the writer: `writer` (queue, file, exit, fork), `capture_fd` (the capture's descriptor);
//! - shared: `state`, `config`, `counters` (the end record's counters), `sync` (locks),
//!   `libc_alloc` (the library's own allocator: glibc's), `forward` (the allocator the hooks forward
//!   to, and whether the hooks are in use at all), `lookup` (which objects define a symbol, in the
//!   dynamic linker's order), `arena` (memory while that allocator is looked up),
//!   `tls` (per-thread state), `clock`.

#![deny(unsafe_op_in_unsafe_fn)]

mod arena;
mod buffer;
mod capture_fd;
mod clock;
mod config;
mod counters;
mod descriptors;
mod forward;
mod hooks;
mod inner_maps;
mod libc_alloc;
mod lifecycle;
mod lookup;
pub mod native;
mod order;
mod python;
mod state;
mod sync;
mod tls;
mod track;
mod writer;

pub use python::module::PyInit__alloc_tracer;

/// Every symbol the library exports.
/// The descriptor hooks that keep the capture's file out of the program's way.
pub use descriptors::{close, close_range, closefrom, dup2, dup3};
pub use hooks::{
    _Exit, _exit, aligned_alloc, calloc, dlclose, execv, execve, execvp, execvpe, free, malloc,
    memalign, mmap, mmap64, mremap, munmap, posix_memalign, pvalloc, realloc, reallocarray, valloc,
};

#[global_allocator]
static ALLOCATOR: libc_alloc::LibcAllocator = libc_alloc::LibcAllocator;
