//! The harness library behind the `harness` binary: runs the real pyperformance suite untraced and
//! under each tracer configuration and writes a run directory (`docs/run-format.md`, defined once in
//! crate `rundir`).
//!
//! Split like pyperf: the suite (`suite`, the manifest), the configurations (`configs`) and the
//! environment each worker gets (`environ`), spawning workers and their command lines (`worker`),
//! making a selection ready (`prepare`: venv, requirements, tracer), the run itself (`runner`: start
//! or resume, then `calibrate` and `measure`, with `progress` on screen), the machine description
//! (`system`), setup helpers (`venv`, `tracer`) and the command line (`cli`), which only parses and
//! hands on.

#![deny(unsafe_code)] // one exception: the pre-exec hook of `worker::run`

pub mod ab;
pub mod calibrate;
pub mod cli;
pub mod configs;
pub mod environ;
pub mod measure;
pub mod merge;
pub mod prepare;
pub mod progress;
pub mod root;
pub mod runner;
pub mod shard;
pub mod suite;
pub mod system;
pub mod tracer;
pub mod venv;
pub mod worker;
