//! Defines the benchmark suite: the installed pyperformance `MANIFEST`, each benchmark's
//! `[tool.pyperformance]` table (name, tags, `extra_opts`, `requires-python`), and the selections
//! (`quick`, `stdlib`, `all`, `-b a,b`).
//!
//! A manifest entry names one *script invocation* (`bm_pickle/run_benchmark.py --pure-python pickle`);
//! a script may run several tasks (`--worker-task=K`) whose emitted benchmark names differ from the
//! manifest name. Tasks are discovered at calibration time (see `runner`), not here.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One manifest entry, resolved against its metafile (and the base `pyproject.toml` for variants).
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// Manifest name, e.g. `pickle_pure_python`.
    pub name: String,
    /// pyperformance tags, e.g. `["serialize"]`; empty for most benchmarks.
    pub tags: Vec<String>,
    /// Arguments given to `run_benchmark.py` before pyperf's own options.
    pub extra_opts: Vec<String>,
    /// PEP 440 specifier such as `>=3.8`.
    pub requires_python: Option<String>,
    pub runscript: PathBuf,
    /// `requirements.txt` of the benchmark, when it needs third-party packages.
    pub requirements: Option<PathBuf>,
}

impl Benchmark {
    /// Macro-benchmarks are pyperformance's `apps`; the report colours the two apart.
    pub fn micro(&self) -> bool {
        !self.tags.iter().any(|t| t == "apps")
    }

    pub fn needs_packages(&self) -> bool {
        self.requirements.is_some()
    }
}

#[derive(Debug)]
pub struct Manifest {
    pub benchmarks: Vec<Benchmark>,
}

/// The default selection: micro- and macro-benchmarks (2to3 and html5lib are `apps`), small enough
/// that the default run (7 configurations) takes about 15 minutes on the 2-core dev machine.
/// docutils was tried and left out: one worker takes 10-15 s untraced, a third of the run.
pub const QUICK: &[&str] = &[
    "richards",
    "nbody",
    "float",
    "go",
    "chaos",
    "deltablue",
    "json_loads",
    "pickle_pure_python",
    "regex_v8",
    "deepcopy",
    "2to3",
    "html5lib",
];

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SuiteName {
    /// About a dozen benchmarks, micro and macro.
    Quick,
    /// Every benchmark that needs no third-party package.
    Stdlib,
    /// Every benchmark that runs on this Python.
    All,
    /// The benchmarks named with `-b`.
    Custom,
}

impl SuiteName {
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteName::Quick => "quick",
            SuiteName::Stdlib => "stdlib",
            SuiteName::All => "all",
            SuiteName::Custom => "custom",
        }
    }
}

/// The pyperformance benchmarks directory inside a venv's site-packages.
pub fn benchmarks_dir(site_packages: &Path) -> PathBuf {
    site_packages.join("pyperformance/data-files/benchmarks")
}

impl Manifest {
    /// Reads `<dir>/MANIFEST` and every metafile it names.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join("MANIFEST");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read the pyperformance manifest {}", path.display())
        })?;
        let mut benchmarks = Vec::new();
        for (name, metafile) in parse_manifest_entries(&text)
            .with_context(|| format!("bad manifest {}", path.display()))?
        {
            let bench = load_benchmark(dir, &name, &metafile)
                .with_context(|| format!("benchmark {name} in {}", path.display()))?;
            benchmarks.push(bench);
        }
        Ok(Manifest { benchmarks })
    }

    pub fn get(&self, name: &str) -> Option<&Benchmark> {
        self.benchmarks.iter().find(|b| b.name == name)
    }

    /// Resolves a selection. Named benchmarks (`-b`) must exist and run on this Python; the
    /// named suites leave out what this Python cannot run, and return those with the reason
    /// (`requires-python`), for the run to list.
    pub fn select(
        &self,
        suite: SuiteName,
        names: &[String],
        python: (u32, u32, u32),
    ) -> Result<(Vec<Benchmark>, Vec<rundir::Excluded>)> {
        let runs_here = |b: &Benchmark| {
            b.requires_python
                .as_deref()
                .is_none_or(|spec| python_satisfies(spec, python))
        };
        let wanted: Vec<&Benchmark> = match suite {
            SuiteName::Custom => {
                let mut out = Vec::new();
                for name in names {
                    let Some(b) = self.get(name) else {
                        bail!(
                            "unknown benchmark '{name}' (not in the pyperformance 1.14.0 manifest)"
                        );
                    };
                    if !runs_here(b) {
                        bail!(
                            "benchmark '{name}' requires Python {} (this is {}.{}.{})",
                            b.requires_python.as_deref().unwrap_or("?"),
                            python.0,
                            python.1,
                            python.2
                        );
                    }
                    out.push(b);
                }
                out
            }
            SuiteName::Quick => QUICK
                .iter()
                .map(|n| {
                    self.get(n)
                        .with_context(|| format!("quick suite names unknown benchmark {n}"))
                })
                .collect::<Result<Vec<_>>>()?,
            SuiteName::Stdlib => self
                .benchmarks
                .iter()
                .filter(|b| !b.needs_packages())
                .collect(),
            SuiteName::All => self.benchmarks.iter().collect(),
        };
        let (picked, excluded): (Vec<&Benchmark>, Vec<&Benchmark>) =
            wanted.into_iter().partition(|b| runs_here(b));
        let excluded = excluded
            .into_iter()
            .map(|b| rundir::Excluded {
                benchmark: b.name.clone(),
                reason: format!(
                    "requires-python {} excludes {}.{}.{}",
                    b.requires_python.as_deref().unwrap_or("?"),
                    python.0,
                    python.1,
                    python.2
                ),
            })
            .collect();
        Ok((picked.into_iter().cloned().collect(), excluded))
    }
}

/// Parses the `[benchmarks]` section: a `name<TAB>metafile` header, then one entry a line.
/// `[group ...]` sections follow; groups are not used for selection here.
fn parse_manifest_entries(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut section = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = Some(line[1..line.len() - 1].trim().to_string());
            continue;
        }
        if section.as_deref() != Some("benchmarks") {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(name), Some(meta)) = (fields.next(), fields.next()) else {
            bail!("line {}: expected 'name<TAB>metafile', got {raw:?}", i + 1);
        };
        if name == "name" && meta == "metafile" {
            continue;
        }
        out.push((name.to_string(), meta.to_string()));
    }
    if out.is_empty() {
        bail!("no [benchmarks] entries");
    }
    Ok(out)
}

/// Metafile fields we read, before merging with the base.
#[derive(Default, Debug)]
struct Meta {
    name: Option<String>,
    tags: Option<Vec<String>>,
    extra_opts: Option<Vec<String>>,
    requires_python: Option<String>,
}

fn read_meta(path: &Path) -> Result<Meta> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
    let tool = doc
        .get("tool")
        .and_then(|t| t.get("pyperformance"))
        .and_then(|t| t.as_table());
    let project = doc.get("project").and_then(|t| t.as_table());
    let string_list = |v: &toml::Value| -> Option<Vec<String>> {
        match v {
            // pyperformance writes tags as one string ("serialize"), several separated by
            // commas or spaces; lists are accepted too.
            toml::Value::String(s) => Some(
                s.split([',', ' '])
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            toml::Value::Array(a) => Some(
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        }
    };
    let mut meta = Meta::default();
    if let Some(tool) = tool {
        meta.name = tool
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        meta.tags = tool.get("tags").and_then(string_list);
        meta.extra_opts = tool.get("extra_opts").and_then(|v| match v {
            toml::Value::Array(a) => Some(
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        });
        meta.requires_python = tool
            .get("python")
            .and_then(|v| v.as_str())
            .map(str::to_string);
    }
    if meta.requires_python.is_none() {
        meta.requires_python = project
            .and_then(|p| p.get("requires-python"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
    }
    Ok(meta)
}

/// `<local>` is `bm_<name>/pyproject.toml`; `<local:base>` is `bm_<base>/bm_<name>.toml`, which
/// inherits what it leaves out from `bm_<base>/pyproject.toml`.
fn load_benchmark(root: &Path, name: &str, metafile: &str) -> Result<Benchmark> {
    let (dir, meta) = if metafile == "<local>" {
        let dir = root.join(format!("bm_{name}"));
        let meta = read_meta(&dir.join("pyproject.toml"))?;
        (dir, meta)
    } else if let Some(base) = metafile
        .strip_prefix("<local:")
        .and_then(|s| s.strip_suffix('>'))
    {
        let dir = root.join(format!("bm_{base}"));
        let own = read_meta(&dir.join(format!("bm_{name}.toml")))?;
        let base = read_meta(&dir.join("pyproject.toml"))?;
        let merged = Meta {
            name: own.name.or(base.name),
            tags: own.tags.or(base.tags),
            extra_opts: own.extra_opts.or(base.extra_opts),
            requires_python: own.requires_python.or(base.requires_python),
        };
        (dir, merged)
    } else {
        bail!("unsupported metafile {metafile:?} (only <local> and <local:base> are used by pyperformance 1.14)");
    };
    let runscript = dir.join("run_benchmark.py");
    if !runscript.is_file() {
        bail!("missing {}", runscript.display());
    }
    let requirements = Some(dir.join("requirements.txt")).filter(|p| {
        std::fs::read_to_string(p)
            .map(|t| {
                t.lines()
                    .any(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
            })
            .unwrap_or(false)
    });
    Ok(Benchmark {
        name: meta.name.unwrap_or_else(|| name.to_string()),
        tags: meta.tags.unwrap_or_default(),
        extra_opts: meta.extra_opts.unwrap_or_default(),
        requires_python: meta.requires_python,
        runscript,
        requirements,
    })
}

/// Evaluates a comma-separated list of `>=`, `>`, `<=`, `<`, `==`, `!=` clauses against a version.
/// Enough for `requires-python` (pyperformance only uses `>=X.Y`).
pub fn python_satisfies(spec: &str, v: (u32, u32, u32)) -> bool {
    spec.split(',').all(|clause| {
        let clause = clause.trim();
        if clause.is_empty() {
            return true;
        }
        let ops = [">=", "<=", "==", "!=", ">", "<", "~="];
        let Some(op) = ops.iter().find(|op| clause.starts_with(**op)) else {
            return true;
        };
        let want = parse_version(clause[op.len()..].trim());
        let have = [v.0, v.1, v.2];
        // Compare only as many components as the clause gives (">=3.8" ignores the patch level).
        let n = want.len().clamp(1, 3);
        let have = &have[..n];
        let want = &want[..n.min(want.len())];
        match *op {
            ">=" | "~=" => have >= want,
            "<=" => have <= want,
            ">" => have > want,
            "<" => have < want,
            "==" => have == want,
            "!=" => have != want,
            _ => true,
        }
    })
}

fn parse_version(s: &str) -> Vec<u32> {
    s.split('.')
        .map_while(|p| p.trim_end_matches('*').parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_python_clauses() {
        assert!(python_satisfies(">=3.8", (3, 11, 7)));
        assert!(!python_satisfies(">=3.12", (3, 11, 7)));
        assert!(python_satisfies(">=3.11", (3, 11, 0)));
        assert!(!python_satisfies(">=3.9, <3.11", (3, 11, 7)));
        assert!(python_satisfies("==3.11", (3, 11, 7)));
    }

    #[test]
    fn manifest_entries_skip_header_groups_and_comments() {
        let text = "[benchmarks]\n\nname\tmetafile\n2to3\t<local>\n#hg_startup\t<local>\npickle_list\t<local:pickle>\n\n[group apps]\n2to3\n";
        let entries = parse_manifest_entries(text).unwrap();
        assert_eq!(
            entries,
            vec![
                ("2to3".to_string(), "<local>".to_string()),
                ("pickle_list".to_string(), "<local:pickle>".to_string())
            ]
        );
    }
}
