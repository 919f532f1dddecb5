//! `harness`: runs the real pyperformance suite untraced and under each tracer configuration
//! (`setup`, `run`, `report`, `compare`). See docs/run-format.md for what a run writes.

mod cli;
mod configs;
mod environ;
mod progress;
mod results;
mod runner;
mod suite;
mod system;
mod tracer;
mod venv;
mod worker;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::main(cli::Cli::parse()) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("harness: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
