//! Provides the progress display: an indicatif bar over all worker processes of a run, showing
//! the current benchmark, configuration, process number and the ETA. When stderr is not a
//! terminal, one plain line per benchmark is printed instead.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: ProgressBar,
    plain: bool,
    last_bench: String,
}

impl Progress {
    /// A bar over `total` workers of which `done` were finished before (a resumed run).
    pub fn new(total: u64, done: u64) -> Progress {
        let plain = !std::io::stderr().is_terminal();
        let bar = if plain {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
        } else {
            ProgressBar::new(total)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} workers, ETA {eta}  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_position(done);
        Progress {
            bar,
            plain,
            last_bench: String::new(),
        }
    }

    /// Shows which worker runs now (and, without a terminal, a line per new benchmark).
    pub fn start(&mut self, bench: &str, config: &str, process: u32, processes: u32) {
        self.bar.set_message(format!(
            "{bench} · {config} · process {}/{processes}",
            process + 1
        ));
        if self.plain && bench != self.last_bench {
            eprintln!(
                "harness: {bench} ({}/{} workers done)",
                self.bar.position(),
                self.bar.length().unwrap_or(0)
            );
        }
        self.last_bench = bench.to_string();
    }

    pub fn finish_one(&self) {
        self.bar.inc(1);
    }

    /// Counts workers that will not run (their configuration failed earlier in this session).
    pub fn skip(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        if self.plain {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
