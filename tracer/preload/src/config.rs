//! Provides [`Config`]: the `TRACER_*` environment variables, read once when the library loads
//! (the variables are listed in `docs/architecture.md`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};

use tracer_capture::header::{MODE_NATIVE, MODE_PYTHON_ALLOCATORS};

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the capture goes; `None` disables the tracer.
    pub output: Option<PathBuf>,
    pub python_allocators: bool,
    pub native: bool,
    pub stack_source: StackSource,
    /// Keep `LD_PRELOAD` for exec'ed children.
    pub follow_exec: bool,
    /// Set in an exec'ed child of a traced process: the capture name gets `.<pid>` appended.
    pub exec_child: bool,
}

/// Where Python stacks come from (`TRACER_STACK_SOURCE`; an unknown value means `walk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StackSource {
    Walk = 0,
    Profile = 1,
    Noop = 2,
    Check = 3,
}

impl StackSource {
    fn parse(value: Option<&str>) -> StackSource {
        match value {
            Some("profile") => StackSource::Profile,
            Some("noop") => StackSource::Noop,
            Some("check") => StackSource::Check,
            _ => StackSource::Walk,
        }
    }

    /// The name the capture header records.
    pub fn name(self) -> &'static str {
        match self {
            StackSource::Walk => "walk",
            StackSource::Profile => "profile",
            StackSource::Noop => "noop",
            StackSource::Check => "check",
        }
    }
}

static STACK_SOURCE: AtomicU8 = AtomicU8::new(StackSource::Walk as u8);

/// The configured stack source (set once at load).
pub fn stack_source() -> StackSource {
    match STACK_SOURCE.load(Relaxed) {
        1 => StackSource::Profile,
        2 => StackSource::Noop,
        3 => StackSource::Check,
        _ => StackSource::Walk,
    }
}

static PYTHON_ALLOCATORS: AtomicBool = AtomicBool::new(false);
static FOLLOW_EXEC: AtomicBool = AtomicBool::new(false);

/// Whether exec'ed children are traced (set once at load).
pub fn follow_exec() -> bool {
    FOLLOW_EXEC.load(Relaxed)
}

/// Whether pymalloc is to be traced (set once at load).
pub fn python_allocators() -> bool {
    PYTHON_ALLOCATORS.load(Relaxed)
}

fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

impl Config {
    pub fn from_env() -> Config {
        Config {
            output: std::env::var_os("TRACER_OUTPUT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            python_allocators: flag("TRACER_PYTHON_ALLOCATORS"),
            native: flag("TRACER_NATIVE"),
            stack_source: StackSource::parse(std::env::var("TRACER_STACK_SOURCE").as_deref().ok()),
            follow_exec: flag("TRACER_FOLLOW_EXEC"),
            exec_child: flag("TRACER_EXEC_CHILD"),
        }
    }

    /// Makes the settings that later code reads globally available.
    pub fn publish(&self) {
        PYTHON_ALLOCATORS.store(self.python_allocators, Relaxed);
        FOLLOW_EXEC.store(self.follow_exec, Relaxed);
        STACK_SOURCE.store(self.stack_source as u8, Relaxed);
    }

    pub fn mode_flags(&self) -> u64 {
        (if self.python_allocators {
            MODE_PYTHON_ALLOCATORS
        } else {
            0
        }) | (if self.native { MODE_NATIVE } else { 0 })
    }
}

/// Removes this library from `LD_PRELOAD` so that exec'ed children run untraced (or, when children are
/// followed, marks them as children so they write their own capture). Runs before `main`, so the
/// program's copy of the environment (Python's `os.environ`) already sees the change.
pub fn adjust_child_environment(cfg: &Config) {
    if cfg.follow_exec {
        std::env::set_var("TRACER_EXEC_CHILD", "1");
        return;
    }
    let Some(preload) = std::env::var_os("LD_PRELOAD") else {
        return;
    };
    let kept: Vec<&str> = preload
        .to_str()
        .unwrap_or("")
        .split([':', ' '])
        .filter(|entry| !entry.is_empty() && !entry.ends_with("libtracer.so"))
        .collect();
    if kept.is_empty() {
        std::env::remove_var("LD_PRELOAD");
    } else {
        std::env::set_var("LD_PRELOAD", OsString::from(kept.join(":")));
    }
    std::env::remove_var("TRACER_OUTPUT");
}
