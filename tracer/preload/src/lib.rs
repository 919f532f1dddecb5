//! The allocation tracer's `LD_PRELOAD` library (`libtracer.so`).
//!
//! Loaded into a program, it interposes the malloc family and `mmap`/`munmap`, and records every call
//! made while tracing is on into per-thread buffers that a background thread streams to the capture
//! file (`TRACER_OUTPUT`). The format lives in the `tracer-capture` crate; the configuration and the
//! contract with `tracer run` are in `docs/architecture.md`.
//!
//! Modules: `hooks` (the exported entry points), `track` (the funnel and thread lifecycle), `buffer`
//! (a thread's chunk), `order` (cross-thread order), `writer` (queue, file, exit, fork), `lifecycle`
//! (constructor, destructor, fork handlers), `native` (native stacks: unwinding, the trie, the module
//! map), `tls` (per-thread state), `forward` (the allocator the hooks forward to, and whether the hooks
//! are in use at all), `arena` (memory while that allocator is looked up), `libc_alloc` (the library's
//! own allocator: glibc's), `config`, `state`, `clock`.

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
