//! Defines the measurement configurations: the built-in table (baseline, our tracer's modes with
//! each stack source, Memray's modes, tracemalloc, an A/A baseline) and configurations read from a
//! TOML file (`--config-file`). A configuration is data: a label, which tracer it runs, extra
//! environment, an optional `LD_PRELOAD` and optional bootstrap code run at interpreter start.

use anyhow::{bail, Context, Result};
use rundir::ConfigInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tracer_capture::header::mode_name;

/// Which tracer a configuration runs, and how it is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Tracer {
    /// Untraced (or traced only by what `env`/`ld_preload`/`bootstrap` add, for custom configs).
    None,
    /// Our tracer; its environment comes from `tracer env`.
    Ours {
        python_allocators: bool,
        native: bool,
        /// `None` leaves the tracer's default stack source.
        stack_source: Option<String>,
    },
    /// Memray's `Tracker`, started by a bootstrap `sitecustomize`.
    Memray {
        python_allocators: bool,
        native: bool,
    },
    /// `PYTHONTRACEMALLOC=1`: tracemalloc started at interpreter start with 1 frame.
    Tracemalloc,
}

impl Tracer {
    pub fn kind(&self) -> &'static str {
        match self {
            Tracer::None => "none",
            Tracer::Ours { .. } => "ours",
            Tracer::Memray { .. } => "memray",
            Tracer::Tracemalloc => "tracemalloc",
        }
    }

    /// `default`, `python-allocators`, `native` or `python-allocators+native`.
    pub fn mode(&self) -> Option<&'static str> {
        let (p, n) = match self {
            Tracer::Ours {
                python_allocators,
                native,
                ..
            }
            | Tracer::Memray {
                python_allocators,
                native,
            } => (*python_allocators, *native),
            _ => return None,
        };
        Some(mode_name(p, n))
    }
}

/// One measured configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub name: String,
    pub label: String,
    pub tracer: Tracer,
    /// Extra environment of the worker (applied after the tracer's own variables).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Prepended to `LD_PRELOAD` (custom configurations).
    #[serde(default)]
    pub ld_preload: Option<String>,
    /// Python code run from a `sitecustomize` at interpreter start (custom configurations).
    #[serde(default)]
    pub bootstrap: Option<String>,
    /// Our tracer from this `tracer` binary (and the `libtracer.so` beside it) instead of the
    /// run's: two builds side by side in one run (`harness ab`, or `binary` in a configuration file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracer_binary: Option<std::path::PathBuf>,
}

/// What `harness run` measures when `--configs` is not given.
pub const DEFAULT_CONFIGS: &[&str] = &[
    "baseline",
    // The A/A check: the machine's noise floor, drawn behind every plot (docs/statistics.md).
    "baseline-aa",
    "default",
    "python-allocators",
    "native",
    "python-allocators+native",
    "profile:default",
    "profile-noop",
];

const MODES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

fn plain(name: &str, label: &str, tracer: Tracer) -> Config {
    Config {
        name: name.to_string(),
        label: label.to_string(),
        tracer,
        env: BTreeMap::new(),
        ld_preload: None,
        bootstrap: None,
        tracer_binary: None,
    }
}

impl Config {
    /// The configuration as `run.json` describes it to the report.
    pub fn info(&self) -> ConfigInfo {
        let stack_source = match &self.tracer {
            Tracer::Ours { stack_source, .. } => {
                Some(stack_source.clone().unwrap_or_else(|| "walk".into()))
            }
            _ => None,
        };
        let custom = self.tracer == Tracer::None
            && (self.bootstrap.is_some() || self.ld_preload.is_some() || !self.env.is_empty());
        ConfigInfo {
            name: self.name.clone(),
            label: Some(self.label.clone()),
            tracer: Some(if custom { "custom" } else { self.tracer.kind() }.to_string()),
            mode: self.tracer.mode().map(str::to_string),
            stack_source,
        }
    }
}

/// The built-in table. Memray's rows are present only with `--with-memray` (it must be installed).
pub fn builtin(with_memray: bool) -> Vec<Config> {
    let mut out = vec![plain("baseline", "untraced", Tracer::None)];
    for (p, n) in MODES {
        let mode = mode_name(p, n);
        out.push(plain(
            mode,
            &format!("tracer, {mode}"),
            Tracer::Ours {
                python_allocators: p,
                native: n,
                stack_source: None,
            },
        ));
    }
    for (p, n) in MODES {
        let mode = mode_name(p, n);
        out.push(plain(
            &format!("profile:{mode}"),
            &format!("tracer, {mode}, profile hook"),
            Tracer::Ours {
                python_allocators: p,
                native: n,
                stack_source: Some("profile".into()),
            },
        ));
    }
    out.push(plain(
        "profile-noop",
        "profile hook doing nothing, allocations without stacks",
        Tracer::Ours {
            python_allocators: false,
            native: false,
            stack_source: Some("noop".into()),
        },
    ));
    if with_memray {
        for (p, n) in MODES {
            let mode = mode_name(p, n);
            out.push(plain(
                &format!("memray:{mode}"),
                &format!("Memray, {mode}"),
                Tracer::Memray {
                    python_allocators: p,
                    native: n,
                },
            ));
        }
    }
    out.push(plain(
        "tracemalloc",
        "tracemalloc, 1 frame",
        Tracer::Tracemalloc,
    ));
    out.push(plain(
        "baseline-aa",
        "untraced again (A/A check)",
        Tracer::None,
    ));
    out
}

/// A `[[config]]` table of a configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: toml::Spanned<String>,
    label: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    ld_preload: Option<String>,
    bootstrap: Option<String>,
    /// Run our tracer with these options (as `tracer env` flags) in addition.
    tracer: Option<FileTracer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTracer {
    #[serde(default)]
    python_allocators: bool,
    #[serde(default)]
    native: bool,
    stack_source: Option<String>,
    /// A `tracer` binary of its own (relative paths are from the configuration file's directory).
    binary: Option<std::path::PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    config: Vec<FileConfig>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads a configuration file. Errors name the file and line: `configs.toml:3: ...`.
pub fn load_file(path: &Path) -> Result<Vec<Config>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    let file: ConfigFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(1);
            bail!("{}:{}: {}", path.display(), line, e.message());
        }
    };
    let mut out: Vec<Config> = Vec::new();
    for c in file.config {
        let line = line_of(&text, c.name.span().start);
        let name = c.name.into_inner();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_:+.".contains(ch));
        if !valid {
            bail!(
                "{}:{line}: configuration name {name:?} must be non-empty and use only letters, digits and - _ : + .",
                path.display()
            );
        }
        if out.iter().any(|o| o.name == name) {
            bail!(
                "{}:{line}: configuration {name:?} is defined twice",
                path.display()
            );
        }
        let mut tracer_binary = None;
        let tracer = match c.tracer {
            None => Tracer::None,
            Some(t) => {
                if let Some(b) = &t.binary {
                    let b = path.parent().unwrap_or(Path::new(".")).join(b);
                    if !b.is_file() {
                        bail!(
                            "{}:{line}: tracer binary {} does not exist",
                            path.display(),
                            b.display()
                        );
                    }
                    tracer_binary = Some(std::path::absolute(&b)?);
                }
                if let Some(s) = &t.stack_source {
                    if !["walk", "profile", "noop"].contains(&s.as_str()) {
                        bail!(
                            "{}:{line}: stack_source must be walk, profile or noop, not {s:?}",
                            path.display()
                        );
                    }
                }
                Tracer::Ours {
                    python_allocators: t.python_allocators,
                    native: t.native,
                    stack_source: t.stack_source,
                }
            }
        };
        out.push(Config {
            label: c.label.unwrap_or_else(|| name.clone()),
            name,
            tracer,
            env: c.env,
            ld_preload: c.ld_preload,
            bootstrap: c.bootstrap,
            tracer_binary,
        });
    }
    if out.is_empty() {
        bail!("{}:1: no [[config]] tables", path.display());
    }
    Ok(out)
}

/// Picks the named configurations from the built-in table plus the file's (a file's configuration
/// replaces a built-in one of the same name). Unknown names are one clear error.
pub fn select(names: &[String], with_memray: bool, from_file: &[Config]) -> Result<Vec<Config>> {
    let mut all = builtin(with_memray);
    for c in from_file {
        all.retain(|b| b.name != c.name);
        all.push(c.clone());
    }
    let mut out: Vec<Config> = Vec::new();
    for name in names {
        let Some(c) = all.iter().find(|c| &c.name == name) else {
            let hint = if name.starts_with("memray:") && !with_memray {
                " (Memray's configurations need --with-memray)"
            } else {
                ""
            };
            let known: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
            bail!(
                "unknown configuration '{name}'{hint}; known: {}",
                known.join(", ")
            );
        };
        if out.iter().any(|o| o.name == c.name) {
            bail!("configuration '{name}' is given twice");
        }
        out.push(c.clone());
    }
    if out.is_empty() {
        bail!("no configuration selected");
    }
    Ok(out)
}

/// The Memray bootstrap (`sitecustomize.py`). It starts the Tracker writing to the file named by
/// `HARNESS_MEMRAY_OUTPUT` (removed from the environment, so child processes are not traced into
/// the same file), then forgets the pure-Python modules that `import memray` pulled in (about 130,
/// among them `pickle` imported with its C accelerator): the benchmark then imports its own, as
/// it does untraced, and `pickle_pure_python` still runs.
pub fn memray_bootstrap(python_allocators: bool, native: bool) -> String {
    let py = |b: bool| if b { "True" } else { "False" };
    format!(
        r#"# Written by the harness: start Memray at interpreter start.
def _harness_start_memray():
    import os, sys
    path = os.environ.pop("HARNESS_MEMRAY_OUTPUT", None)
    if not path:
        return
    before = set(sys.modules)
    import memray
    tracker = memray.Tracker(path, native_traces={native}, trace_python_allocators={pyalloc})
    tracker.__enter__()
    import atexit
    atexit.register(tracker.__exit__, None, None, None)
    # Keep memray itself, extension modules (re-importing them returns the cached copy) and the
    # threading machinery (two copies of it would break shutdown).
    keep = ("threading", "_threading_local", "weakref", "_weakrefset", "atexit")
    for name in set(sys.modules) - before:
        mod = sys.modules.get(name)
        f = getattr(mod, "__file__", None) or ""
        if name == "memray" or name.startswith("memray.") or name in keep:
            continue
        if not f.endswith(".py"):
            continue
        del sys.modules[name]

_harness_start_memray()
del _harness_start_memray
"#,
        native = py(native),
        pyalloc = py(python_allocators),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_are_unique_and_defaults_exist() {
        let all = builtin(true);
        let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        for d in DEFAULT_CONFIGS {
            assert!(names.contains(d), "{d} missing");
        }
        assert!(names.contains(&"memray:python-allocators+native"));
        assert!(!builtin(false).iter().any(|c| c.name.starts_with("memray")));
    }

    #[test]
    fn unknown_config_is_an_error() {
        let err = select(&["nope".into()], false, &[]).unwrap_err();
        assert!(err.to_string().contains("unknown configuration 'nope'"));
        let err = select(&["memray:native".into()], false, &[]).unwrap_err();
        assert!(err.to_string().contains("--with-memray"));
    }

    #[test]
    fn config_file_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("harness-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[[config]]\nname = \"a\"\nenv = { X = 1 }\n").unwrap();
        let err = load_file(&path).unwrap_err().to_string();
        assert!(err.contains("c.toml:3:"), "{err}");
        std::fs::write(
            &path,
            "[[config]]\nname = \"a\"\n\n[[config]]\nname = \"a\"\n",
        )
        .unwrap();
        let err = load_file(&path).unwrap_err().to_string();
        assert!(err.contains("c.toml:5:") && err.contains("twice"), "{err}");
        std::fs::write(
            &path,
            "[[config]]\nname = \"jemalloc\"\nld_preload = \"/x.so\"\nbootstrap = \"import sys\"\n[config.env]\nA = \"1\"\n",
        )
        .unwrap();
        let c = load_file(&path).unwrap();
        assert_eq!(c[0].name, "jemalloc");
        assert_eq!(c[0].env["A"], "1");
        assert_eq!(c[0].ld_preload.as_deref(), Some("/x.so"));
        // A configuration may name its own tracer build, relative to the file.
        std::fs::write(dir.join("tracer"), "").unwrap();
        std::fs::write(
            &path,
            "[[config]]\nname = \"new\"\n[config.tracer]\nbinary = \"tracer\"\n",
        )
        .unwrap();
        let c = load_file(&path).unwrap();
        assert_eq!(
            c[0].tracer_binary.as_deref(),
            Some(dir.join("tracer").as_path())
        );
        std::fs::write(
            &path,
            "[[config]]\nname = \"new\"\n[config.tracer]\nbinary = \"nope\"\n",
        )
        .unwrap();
        let err = load_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("c.toml:2:") && err.contains("does not exist"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
