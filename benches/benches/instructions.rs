//! `cargo bench -p benches --bench instructions`: the hot paths' instruction counts under callgrind,
//! per operation, deterministic where criterion's timings are noisy (see docs/benchmarks.md).
//!
//! Each bench's count is one iteration of its program's loop (the operation, the loop and the hook),
//! on the program's thread, from runs with N and 2N iterations; how, and what is left out, is in
//! `benches/src/callgrind.rs`. Runs repeat to within [`TOLERANCE`].
//!
//! Options (the same names as criterion's, so one `cargo bench -p benches -- …` serves both targets):
//!   FILTER                  run the benches whose name contains FILTER
//!   --list                  list the benches
//!   --save-baseline NAME    store the counts as NAME (default: `base`)
//!   --baseline NAME         compare with NAME and store nothing
//! Without `--baseline`, a run is compared with the stored one it replaces. Counts are stored in
//! `target/instructions/NAME.json`. criterion's other options are ignored here.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use benches::callgrind::Callgrind;
use benches::{compile, python, script, work_dir, Tracing};
use serde::{Deserialize, Serialize};

/// A change of at most this many instructions per iteration is reported as unchanged: runs repeat
/// to within it (docs/benchmarks.md shows two runs). One instruction more in a hook is seen.
const TOLERANCE: f64 = 0.2;

#[derive(Clone, Copy)]
enum Program {
    /// `malloc_loop time N`: malloc(64)/free pairs.
    MallocLoop,
    /// `python_calls.py MODE DEPTH N`.
    Python { mode: &'static str, depth: u32 },
    /// `native_depth DEPTH N`: malloc(64)/free pairs DEPTH C calls deep.
    NativeDepth { depth: u32 },
}

struct Bench {
    group: &'static str,
    variant: &'static str,
    /// The stack depth, for the groups that have several.
    depth: Option<u32>,
    program: Program,
    tracing: Tracing,
    /// N: the short run's iterations (the long run does 2N).
    iterations: u64,
}

impl Bench {
    /// `group/variant[/depth]`, as criterion names the same bench.
    fn name(&self) -> String {
        self.name_of(self.variant)
    }

    /// The name of the same group's bench with another variant (`untraced`, the reference).
    fn name_of(&self, variant: &str) -> String {
        match self.depth {
            Some(d) => format!("{}/{variant}/{d}", self.group),
            None => format!("{}/{variant}", self.group),
        }
    }
}

const UNTRACED: &str = "untraced";

fn benches() -> Vec<Bench> {
    let mut all = Vec::new();
    let malloc_free_pair = [
        (UNTRACED, Tracing::Off),
        ("preload_not_recording", Tracing::Loaded),
        ("traced_default", Tracing::DEFAULT),
    ];
    for (variant, tracing) in malloc_free_pair {
        all.push(Bench {
            group: "malloc_free_pair",
            variant,
            depth: None,
            program: Program::MallocLoop,
            tracing,
            iterations: 100_000,
        });
    }
    for depth in [10, 50] {
        for (variant, tracing) in [(UNTRACED, Tracing::Off), ("walk", Tracing::DEFAULT)] {
            all.push(Bench {
                group: "python_alloc_at_depth",
                variant,
                depth: Some(depth),
                program: Program::Python {
                    mode: "alloc",
                    depth,
                },
                tracing,
                iterations: 10_000,
            });
        }
    }
    let pymalloc = [
        (UNTRACED, Tracing::Off),
        ("default", Tracing::DEFAULT),
        ("python_allocators", Tracing::python("walk", true)),
    ];
    for (variant, tracing) in pymalloc {
        all.push(Bench {
            group: "pymalloc",
            variant,
            depth: None,
            program: Program::Python {
                mode: "small",
                depth: 10,
            },
            tracing,
            iterations: 20_000,
        });
    }
    let native_unwind = [
        (UNTRACED, Tracing::Off),
        ("traced_default", Tracing::DEFAULT),
        ("native", Tracing::NATIVE),
    ];
    for (variant, tracing) in native_unwind {
        all.push(Bench {
            group: "native_unwind",
            variant,
            depth: Some(40),
            program: Program::NativeDepth { depth: 40 },
            tracing,
            iterations: 10_000,
        });
    }
    all
}

/// One bench's result, as stored in a baseline.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Counts {
    /// Instructions per iteration on the program's thread.
    per_op: f64,
    iterations: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Baseline {
    valgrind: String,
    benches: BTreeMap<String, Counts>,
}

struct Options {
    filter: Option<String>,
    list: bool,
    save: String,
    compare_with: Option<String>,
}

/// criterion's options that take a value (skipped with it when both targets get the same options).
const CRITERION_VALUE_OPTIONS: &[&str] = &[
    "--warm-up-time",
    "--measurement-time",
    "--sample-size",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--profile-time",
    "--load-baseline",
    "--color",
    "--output-format",
    "--plotting-backend",
    "--format",
];

fn options() -> Options {
    let mut opts = Options {
        filter: None,
        list: false,
        save: "base".into(),
        compare_with: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--save-baseline" => opts.save = args.next().expect("--save-baseline NAME"),
            "--baseline" => opts.compare_with = Some(args.next().expect("--baseline NAME")),
            "--list" => opts.list = true,
            a if CRITERION_VALUE_OPTIONS.contains(&a) => {
                args.next();
            }
            a if a.starts_with('-') => {} // `--bench` (from cargo) and criterion's flags
            _ => opts.filter = Some(arg),
        }
    }
    opts
}

fn baseline_path(name: &str) -> PathBuf {
    let dir = work_dir()
        .parent()
        .expect("target dir")
        .join("instructions");
    std::fs::create_dir_all(&dir).expect("baseline dir");
    dir.join(format!("{name}.json"))
}

fn load(path: &Path) -> Option<Baseline> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("instructions: ignoring {}: {e}", path.display());
            None
        }
    }
}

fn measure(cg: &Callgrind, bench: &Bench, programs: &Programs) -> Counts {
    let (program, args): (&Path, Vec<OsString>) = match bench.program {
        Program::MallocLoop => (&programs.malloc_loop, vec!["time".into()]),
        Program::Python { mode, depth } => (
            &programs.python,
            vec![
                programs.python_calls.clone().into(),
                mode.into(),
                depth.to_string().into(),
            ],
        ),
        Program::NativeDepth { depth } => (&programs.native_depth, vec![depth.to_string().into()]),
    };
    Counts {
        per_op: cg.per_iteration(bench.tracing, program, &args, bench.iterations),
        iterations: bench.iterations,
    }
}

struct Programs {
    malloc_loop: PathBuf,
    native_depth: PathBuf,
    python: PathBuf,
    python_calls: PathBuf,
}

fn change(new: f64, old: f64) -> String {
    let delta = new - old;
    let pct = delta / old * 100.0;
    if delta.abs() <= TOLERANCE {
        format!("{delta:+.2} ({pct:+.3}%) unchanged")
    } else {
        format!("{delta:+.2} ({pct:+.3}%)")
    }
}

fn main() {
    let opts = options();
    let selected: Vec<Bench> = benches()
        .into_iter()
        .filter(|b| opts.filter.as_ref().is_none_or(|f| b.name().contains(f)))
        .collect();
    if opts.list {
        for bench in &selected {
            println!("{}: bench", bench.name());
        }
        return;
    }
    let cg = Callgrind::find().unwrap_or_else(|e| {
        eprintln!("instructions: {e}");
        std::process::exit(1);
    });
    let programs = Programs {
        malloc_loop: compile("malloc_loop"),
        native_depth: compile("native_depth"),
        python: python(),
        python_calls: script("python_calls"),
    };
    let save_path = baseline_path(&opts.save);
    let compare_path = opts
        .compare_with
        .as_deref()
        .map(baseline_path)
        .unwrap_or_else(|| save_path.clone());
    let old = load(&compare_path);
    if old.is_none() && opts.compare_with.is_some() {
        eprintln!(
            "instructions: no baseline {}: store one with --save-baseline",
            compare_path.display()
        );
        std::process::exit(1);
    }
    if let Some(old) = old.as_ref().filter(|o| o.valgrind != cg.version) {
        eprintln!(
            "instructions: {} was measured with {}, this run uses {}",
            compare_path.display(),
            old.valgrind,
            cg.version
        );
    }

    println!(
        "{:<40} {:>12} {:>14}  {}",
        "bench (instructions per iteration)",
        "count",
        "over untraced",
        match &old {
            Some(_) => format!("change against {}", compare_path.display()),
            None => String::new(),
        }
    );
    let mut new = Baseline {
        valgrind: cg.version.clone(),
        benches: BTreeMap::new(),
    };
    for bench in selected {
        let name = bench.name();
        let counts = measure(&cg, &bench, &programs);
        // Against the group's untraced bench, when this run measured it.
        let over = match new.benches.get(&bench.name_of(UNTRACED)) {
            Some(untraced) if bench.variant != UNTRACED => {
                format!("{:+.1}", counts.per_op - untraced.per_op)
            }
            _ => String::new(),
        };
        let compared = old
            .as_ref()
            .and_then(|o| o.benches.get(&name))
            .map(|o| change(counts.per_op, o.per_op))
            .unwrap_or_default();
        println!("{name:<40} {:>12.2} {over:>14}  {compared}", counts.per_op);
        new.benches.insert(name, counts);
    }

    if opts.compare_with.is_none() {
        // Benches left out by the filter keep their stored counts.
        let mut stored = load(&save_path).unwrap_or_default();
        stored.valgrind = new.valgrind;
        stored.benches.extend(new.benches);
        let json = serde_json::to_string_pretty(&stored).expect("json");
        std::fs::write(&save_path, json + "\n").expect("write baseline");
        println!("stored in {}", save_path.display());
    }
}
