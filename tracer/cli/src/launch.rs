//! Provides `tracer run` and `tracer env`: the environment that loads the preload library into a
//! program, and running the program under it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::{EnvArgs, ModeArgs, RunArgs};

/// `libtracer.so`: `$TRACER_LIBRARY`, or the newer of the copies next to this executable (where `cargo
/// build` puts both) and in its `deps/` folder (where `cargo test` puts it, as a dev-dependency).
pub fn find_library() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TRACER_LIBRARY") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("TRACER_LIBRARY={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("cannot find the tracer executable")?;
    let lib = exe.with_file_name("libtracer.so");
    let in_deps = exe.with_file_name("deps").join("libtracer.so");
    // Both exist after a `cargo build` and a later `cargo test`: the newer one is the current code.
    let modified = |p: &PathBuf| p.metadata().and_then(|m| m.modified()).ok();
    let newest = [lib.clone(), in_deps]
        .into_iter()
        .filter(|p| p.is_file())
        .max_by_key(modified);
    if let Some(found) = newest {
        return Ok(found);
    }
    bail!(
        "cannot find {} (build it with `cargo build -p tracer-preload`, or set TRACER_LIBRARY)",
        lib.display()
    )
}

/// The bootstrap that starts the tracer inside Python (see `tracer/preload/python/`).
const SITECUSTOMIZE: &str = include_str!("../../preload/python/sitecustomize.py");

/// Makes the bootstrap directory next to the library: `sitecustomize.py`, and `_alloc_tracer.so`, a
/// symlink to the library itself (importing it hands back the copy `LD_PRELOAD` loaded). Rewritten
/// only when its content differs, so concurrent runs do not race on it.
pub fn bootstrap_dir(lib: &Path) -> Result<PathBuf> {
    let dir = lib.with_file_name("tracer-bootstrap");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let site = dir.join("sitecustomize.py");
    if std::fs::read_to_string(&site).ok().as_deref() != Some(SITECUSTOMIZE) {
        let tmp = dir.join(format!(".sitecustomize.{}", std::process::id()));
        std::fs::write(&tmp, SITECUSTOMIZE)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &site)?;
    }
    let module = dir.join("_alloc_tracer.so");
    if std::fs::read_link(&module).ok().as_deref() != Some(lib) {
        let tmp = dir.join(format!(".alloc_tracer.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(lib, &tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        std::fs::rename(&tmp, &module)?;
    }
    Ok(dir)
}

/// The variables that trace a process writing `output` in the given mode.
pub fn tracer_env(output: &Path, mode: &ModeArgs) -> Result<Vec<(String, OsString)>> {
    let lib = find_library()?
        .canonicalize()
        .context("cannot resolve the library path")?;
    let bootstrap = bootstrap_dir(&lib)?;
    let output = std::path::absolute(output).context("cannot make the capture path absolute")?;
    let mut pythonpath = bootstrap.into_os_string();
    if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|v| !v.is_empty()) {
        pythonpath.push(":");
        pythonpath.push(existing);
    }
    let mut preload = lib.into_os_string();
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(existing);
    }
    let mut env = vec![
        ("LD_PRELOAD".to_string(), preload),
        ("TRACER_OUTPUT".to_string(), output.into_os_string()),
        (
            "TRACER_STACK_SOURCE".to_string(),
            mode.stack_source.as_str().into(),
        ),
    ];
    let flag = |on: bool| OsString::from(if on { "1" } else { "0" });
    env.push((
        "TRACER_PYTHON_ALLOCATORS".into(),
        flag(mode.trace_python_allocators),
    ));
    env.push(("TRACER_NATIVE".into(), flag(mode.native)));
    env.push(("TRACER_FOLLOW_EXEC".into(), flag(mode.follow_exec)));
    env.push(("PYTHONPATH".into(), pythonpath));
    Ok(env)
}

pub fn print_env(args: EnvArgs) -> Result<()> {
    for (key, value) in tracer_env(&args.output, &args.mode)? {
        println!("{key}={}", value.to_string_lossy());
    }
    Ok(())
}

fn default_output(args: &RunArgs) -> PathBuf {
    let name = if let Some(m) = &args.module {
        m.clone()
    } else {
        args.args
            .first()
            .map(|a| {
                Path::new(a)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    };
    PathBuf::from(format!("tracer-{name}.{}.bin", std::process::id()))
}

/// The interpreter's real executable (`sys.executable`): `python3` is often a launcher script (pyenv
/// shims are bash), and the preload must load into Python itself, not into the launcher.
fn resolve_python(python: &str) -> Result<String> {
    let out = Command::new(python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .with_context(|| format!("cannot run Python interpreter {python:?}"))?;
    if !out.status.success() {
        bail!(
            "{python:?} is not a working Python: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(if exe.is_empty() {
        python.to_string()
    } else {
        exe
    })
}

/// The line `tracer run` ends with: where the capture is, or why it says little or nothing.
fn report_capture(output: &Path, program: &str) {
    let shown = output.display();
    if !output.is_file() {
        let why = find_program(program)
            .filter(|p| is_static(p))
            .map(|p| {
                format!(
                    " ({} is statically linked: LD_PRELOAD cannot load the tracer into it)",
                    p.display()
                )
            })
            .unwrap_or_default();
        eprintln!("tracer: no capture was written to {shown}{why}");
        return;
    }
    let header = std::fs::File::open(output)
        .ok()
        .and_then(|f| tracer_capture::read_header(std::io::BufReader::new(f)).ok());
    match header {
        Some(h) if !h.hooks_bypassed.is_empty() => eprintln!(
            "tracer: wrote {shown}, but the hooks were bypassed: {}",
            h.hooks_bypassed
        ),
        _ => eprintln!("tracer: wrote {shown}; read it with `tracer stats {shown}`"),
    }
}

/// `program` as `Command` would find it: a path, or the first match on `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether `path` is an ELF executable without a program interpreter: the dynamic linker never
/// runs, so nothing is preloaded.
fn is_static(path: &Path) -> bool {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    let Ok(elf) = ElfFile64::<object::Endianness>::parse(&*data) else {
        return false;
    };
    let endian = elf.endian();
    !elf.elf_program_headers()
        .iter()
        .any(|ph| ph.p_type(endian) == object::elf::PT_INTERP)
}

extern "C" fn ignore_signal(_: libc::c_int) {}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    if args.module.is_none() && args.args.is_empty() {
        bail!("nothing to run: give a script, -m MODULE, or --exec PROGRAM");
    }
    let output = args.output.clone().unwrap_or_else(|| default_output(&args));
    if output.symlink_metadata().is_ok() {
        if !args.force {
            bail!(
                "{} already exists (use --force to overwrite it)",
                output.display()
            );
        }
        std::fs::remove_file(&output)
            .with_context(|| format!("cannot remove {}", output.display()))?;
    }
    let program = if args.exec {
        args.args[0].clone()
    } else {
        resolve_python(&args.python)?
    };
    let mut cmd = if args.exec {
        let mut c = Command::new(&program);
        c.args(&args.args[1..]);
        c
    } else {
        let mut c = Command::new(&program);
        if let Some(m) = &args.module {
            c.arg("-m").arg(m);
        }
        c.args(&args.args);
        c
    };
    cmd.envs(tracer_env(&output, &args.mode)?);
    // Ctrl-C reaches the traced program through the terminal; this process waits to report. A handler
    // (unlike SIG_IGN) is reset in the child by exec, so the program keeps its default behaviour.
    // SAFETY: installing a handler that does nothing is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            ignore_signal as *const () as libc::sighandler_t,
        )
    };
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    report_capture(&output, &program);
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(code as u8))
}
