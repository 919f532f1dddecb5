//! `harness`: runs the real pyperformance suite untraced and under each tracer configuration
//! (`setup`, `run`, `report`, `compare`). See docs/harness.md and docs/run-format.md.

use clap::Parser;
use harness::cli;
use std::process::ExitCode;

/// One exit point: 0 all good, 1 a run finished with failures recorded, 2 an error (one line),
/// 130 interrupted (resumable).
fn main() -> ExitCode {
    match cli::main(cli::Cli::parse()) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("harness: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
