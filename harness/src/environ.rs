//! Builds the exact environment of one worker process for one configuration: a small base (what
//! pyperf's own manager passes to its workers), then the configuration's tracer variables (from
//! `tracer env` for ours), its bootstrap directory and extra variables. `PYTHONPATH` entries are
//! merged, never replaced.

use crate::configs::{Config, Tracer};
use crate::tracer::{TraceOptions, TracerBin};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The variables a pyperf worker gets from pyperf's manager (`_utils.create_environ`), taken from
/// the harness's own environment.
pub fn base_env() -> BTreeMap<String, String> {
    let keep = ["PATH", "HOME", "TMPDIR", "TEMP", "LANG", "PYTHON_CPU_COUNT"];
    std::env::vars()
        .filter(|(k, _)| keep.contains(&k.as_str()) || k.starts_with("LC_"))
        .collect()
}

/// One worker's environment and what it is expected to write.
#[derive(Debug)]
pub struct ProcessEnv {
    pub env: BTreeMap<String, String>,
    /// The capture file the tracer (ours or Memray) writes, if any.
    pub capture: Option<PathBuf>,
    /// A missing or empty capture makes the result invalid.
    pub expect_capture: bool,
}

/// Where bootstraps are written (`<run>/work/bootstrap/<config>/sitecustomize.py`).
pub fn bootstrap_dir(work: &Path, config: &str) -> PathBuf {
    let safe: String = config
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    work.join("bootstrap").join(safe)
}

/// The code run at interpreter start for this configuration, if any.
pub fn bootstrap_code(config: &Config) -> Option<String> {
    match &config.tracer {
        Tracer::Memray {
            python_allocators,
            native,
        } => Some(crate::configs::memray_bootstrap(
            *python_allocators,
            *native,
        )),
        _ => config.bootstrap.clone(),
    }
}

/// Writes the configuration's `sitecustomize.py`; it chains to the next `sitecustomize` on the
/// path (if the interpreter has one) so that ours does not hide it.
pub fn write_bootstrap(work: &Path, config: &Config) -> Result<Option<PathBuf>> {
    let Some(code) = bootstrap_code(config) else {
        return Ok(None);
    };
    let dir = bootstrap_dir(work, &config.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let chain = r#"
def _harness_chain():
    import sys, os
    here = os.path.dirname(os.path.abspath(__file__))
    from importlib.machinery import PathFinder
    spec = PathFinder.find_spec("sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != here])
    if spec is not None and spec.loader is not None:
        mod = type(sys)("sitecustomize")
        mod.__file__ = spec.origin
        spec.loader.exec_module(mod)
_harness_chain()
del _harness_chain
"#;
    let text = format!("{}\n{chain}", wrap_bootstrap(&config.name, &code));
    std::fs::write(dir.join("sitecustomize.py"), text)
        .with_context(|| format!("cannot write the bootstrap in {}", dir.display()))?;
    Ok(Some(dir))
}

/// Runs the bootstrap so that an exception in it kills the worker (exit status 70) with its
/// traceback: Python itself only prints "Error in sitecustomize" and runs on, which would measure
/// an untraced interpreter under the configuration's name.
fn wrap_bootstrap(name: &str, code: &str) -> String {
    let literal = serde_json::to_string(code).expect("a string serialises");
    let filename = serde_json::to_string(&format!("<harness bootstrap {name}>")).expect("string");
    format!(
        r#"# Written by the harness for configuration {name:?}.
try:
    exec(compile({literal}, {filename}, "exec"), {{"__name__": "__harness_bootstrap__"}})
except BaseException:
    import sys, os, traceback
    traceback.print_exc()
    sys.stderr.write("harness: the bootstrap of configuration {name} failed\n")
    sys.stderr.flush()
    os._exit(70)
"#
    )
}

fn prepend_path(env: &mut BTreeMap<String, String>, key: &str, front: &str) {
    let mut parts: Vec<String> = front
        .split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(old) = env.get(key) {
        for p in old.split(':').filter(|p| !p.is_empty()) {
            if !parts.iter().any(|q| q == p) {
                parts.push(p.to_string());
            }
        }
    }
    env.insert(key.to_string(), parts.join(":"));
}

/// Context shared by all processes of a run.
pub struct EnvContext<'a> {
    pub base: &'a BTreeMap<String, String>,
    pub tracer: Option<&'a TracerBin>,
    pub work: &'a Path,
}

/// Builds the environment of one process. `capture` is where a tracing configuration writes.
pub fn build(ctx: &EnvContext, config: &Config, capture: &Path) -> Result<ProcessEnv> {
    let mut env = ctx.base.clone();
    let mut out_capture = None;
    let mut expect_capture = false;
    match &config.tracer {
        Tracer::None => {}
        Tracer::Tracemalloc => {
            env.insert("PYTHONTRACEMALLOC".into(), "1".into());
        }
        Tracer::Ours {
            python_allocators,
            native,
            stack_source,
        } => {
            let own;
            let tracer = match &config.tracer_binary {
                Some(path) => {
                    own = TracerBin::given(path)?;
                    &own
                }
                None => match ctx.tracer {
                    Some(t) => t,
                    None => bail!(
                        "configuration {} needs our tracer, but it was not built",
                        config.name
                    ),
                },
            };
            let vars = tracer.env(&TraceOptions {
                capture,
                python_allocators: *python_allocators,
                native: *native,
                stack_source: stack_source.as_deref(),
            })?;
            for (k, v) in vars {
                if k == "PYTHONPATH" || k == "LD_PRELOAD" {
                    prepend_path(&mut env, &k, &v);
                } else {
                    env.insert(k, v);
                }
            }
            out_capture = Some(capture.to_path_buf());
            // The no-op stack source measures the profile hook's floor; whether it writes a
            // capture is the tracer's business, so its absence is not held against it.
            expect_capture = stack_source.as_deref() != Some("noop");
        }
        Tracer::Memray { .. } => {
            env.insert(
                "HARNESS_MEMRAY_OUTPUT".into(),
                capture.to_string_lossy().into_owned(),
            );
            out_capture = Some(capture.to_path_buf());
            expect_capture = true;
        }
    }
    if let Some(dir) = bootstrap_code(config).map(|_| bootstrap_dir(ctx.work, &config.name)) {
        prepend_path(&mut env, "PYTHONPATH", &dir.to_string_lossy());
    }
    if let Some(pre) = &config.ld_preload {
        prepend_path(&mut env, "LD_PRELOAD", pre);
    }
    for (k, v) in &config.env {
        env.insert(k.clone(), v.clone());
    }
    Ok(ProcessEnv {
        env,
        capture: out_capture,
        expect_capture,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pythonpath_is_merged_not_replaced() {
        let mut env = BTreeMap::from([("PYTHONPATH".to_string(), "/user:/b".to_string())]);
        prepend_path(&mut env, "PYTHONPATH", "/boot:/b");
        assert_eq!(env["PYTHONPATH"], "/boot:/b:/user");
    }

    #[test]
    fn memray_and_custom_configs_get_a_bootstrap_dir() {
        let base = BTreeMap::from([("PATH".to_string(), "/usr/bin".to_string())]);
        let work = std::env::temp_dir().join(format!("harness-env-{}", std::process::id()));
        let ctx = EnvContext {
            base: &base,
            tracer: None,
            work: &work,
        };
        let all = crate::configs::builtin(true);
        let memray = all.iter().find(|c| c.name == "memray:native").unwrap();
        let e = build(&ctx, memray, Path::new("/tmp/cap.bin")).unwrap();
        assert!(e.expect_capture);
        assert_eq!(e.env["HARNESS_MEMRAY_OUTPUT"], "/tmp/cap.bin");
        assert!(e.env["PYTHONPATH"].ends_with("bootstrap/memray_native"));
        let ours = all.iter().find(|c| c.name == "default").unwrap();
        assert!(
            build(&ctx, ours, Path::new("/tmp/c")).is_err(),
            "needs a tracer"
        );
        let tm = all.iter().find(|c| c.name == "tracemalloc").unwrap();
        let e = build(&ctx, tm, Path::new("/tmp/c")).unwrap();
        assert_eq!(e.env["PYTHONTRACEMALLOC"], "1");
        assert!(e.capture.is_none());
    }

    #[test]
    fn the_aa_configuration_differs_from_the_baseline_in_its_name_only() {
        let base = base_env();
        let work = std::env::temp_dir().join(format!("harness-aa-{}", std::process::id()));
        let ctx = EnvContext {
            base: &base,
            tracer: None,
            work: &work,
        };
        let all = crate::configs::builtin(false);
        let get = |name: &str| all.iter().find(|c| c.name == name).unwrap();
        let (a, aa) = (get("baseline"), get("baseline-aa"));
        assert_eq!(a.tracer, aa.tracer);
        assert!(bootstrap_code(a).is_none() && bootstrap_code(aa).is_none());
        let capture = Path::new("/tmp/unused.bin");
        let (ea, eaa) = (
            build(&ctx, a, capture).unwrap(),
            build(&ctx, aa, capture).unwrap(),
        );
        // The same variables with the same values: nothing of the name reaches the worker.
        assert_eq!(ea.env, eaa.env);
        assert_eq!(ea.env, base);
        assert!(ea.capture.is_none() && eaa.capture.is_none());
    }
}
