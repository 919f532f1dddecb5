//! The harness library behind the `harness` binary: runs the real pyperformance suite untraced and
//! under each tracer configuration and writes a run directory (`docs/run-format.md`).
//!
//! Split like pyperf: the suite (`suite`, the manifest), the configurations (`configs`) and the
//! environment each worker gets (`environ`), spawning workers (`worker`), the run directory
//! (`results`), the orchestration (`calibrate`, `runner`, `progress`), the machine description (`system`),
//! setup (`venv`, `tracer`) and the command line (`cli`).

pub mod calibrate;
pub mod cli;
pub mod configs;
pub mod environ;
pub mod progress;
pub mod results;
pub mod runner;
pub mod suite;
pub mod system;
pub mod tracer;
pub mod venv;
pub mod worker;
