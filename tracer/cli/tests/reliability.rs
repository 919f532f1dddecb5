//! Issue 8: the traced program never suffers, the reader never panics. Each fault runs the program
//! untraced and traced (in every mode that applies) and requires the same exit code and output, then
//! reads the capture. `docs/reliability.md` lists the faults and what each one showed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// Modes for C programs.
const C_MODES: [&[&str]; 2] = [&[], &["--native"]];
/// Modes for Python programs: both stack sources, with and without the pymalloc hooks.
const PY_MODES: [&[&str]; 4] = [
    &["--stack-source", "walk"],
    &["--stack-source", "profile"],
    &["--stack-source", "walk", "--trace-python-allocators"],
    &["--stack-source", "profile", "--trace-python-allocators"],
];

fn slug(mode: &[&str]) -> String {
    if mode.is_empty() {
        "default".into()
    } else {
        mode.join("_").replace("--", "")
    }
}

/// The traced run's stderr without the lines `tracer run` itself prints at the end.
fn program_stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("tracer: wrote ") && !l.starts_with("tracer: no capture"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `out` without the warning CPython 3.12+ gives when a process with more than one OS thread forks
/// (its message and the source line after it). A traced process always has one: the tracer's writer
/// thread, so a single-threaded program that forks gets this warning only when traced (a known
/// difference, in docs/reliability.md).
fn without_fork_warning(mut out: Output) -> Output {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut kept = String::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains("DeprecationWarning: This process (pid=") && l.contains("is multi-threaded") {
            lines.next();
            continue;
        }
        kept.push_str(l);
        kept.push('\n');
    }
    out.stderr = kept.into_bytes();
    out
}

/// The traced run behaved as the untraced one: same exit code, same stdout, same stderr.
fn assert_same(what: &str, untraced: &Output, traced: &Output) {
    assert_eq!(
        traced.status.code(),
        untraced.status.code(),
        "{what}: exit code\ntraced stderr:\n{}",
        String::from_utf8_lossy(&traced.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&traced.stdout),
        String::from_utf8_lossy(&untraced.stdout),
        "{what}: stdout"
    );
    assert_eq!(
        program_stderr(traced),
        String::from_utf8_lossy(&untraced.stderr),
        "{what}: stderr"
    );
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// `tracer run -o <dir>/cap.bin MODE --exec PROGRAM ARGS`.
fn trace_exec(dir: &Path, mode: &[&str], program: &Path, args: &[&str]) -> (Output, PathBuf) {
    let cap = dir.join("cap.bin");
    let out = output(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .args(mode)
            .arg("--exec")
            .arg(program)
            .args(args)
            .current_dir(dir),
    );
    (out, cap)
}

/// `tracer run --python PY -o <dir>/cap.bin MODE SCRIPT ARGS`.
fn trace_script(
    py: &Python,
    dir: &Path,
    mode: &[&str],
    script: &Path,
    args: &[&str],
) -> (Output, PathBuf) {
    let cap = dir.join("cap.bin");
    let out = output(
        py.tracer_run()
            .arg("-o")
            .arg(&cap)
            .args(mode)
            .arg(script)
            .args(args)
            .current_dir(dir),
    );
    (out, cap)
}

fn untraced_script(py: &Python, dir: &Path, script: &Path, args: &[&str]) -> Output {
    output(py.python().arg(script).args(args).current_dir(dir))
}

/// Compiles `tests/programs/<name>.c` as a shared library `lib<name>.so` in `dir`.
fn compile_shared(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(format!("{name}.c"));
    let lib = dir.join(format!("lib{name}.so"));
    let out = Command::new("cc")
        .args([
            "-O0",
            "-fno-builtin",
            "-g",
            "-pthread",
            "-shared",
            "-fPIC",
            "-o",
        ])
        .arg(&lib)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// The captures of children: files in `dir` named `cap.bin.*`.
fn child_captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("cap.bin.")
        })
        .collect();
    v.sort();
    v
}

fn complete(cap: &Path) -> Value {
    let s = stats_json(cap);
    assert_eq!(s["truncated"], false, "{}", cap.display());
    s
}

/// [`complete`] for a capture made with `py` (read on its side of the chroot).
fn complete_py(py: &Python, cap: &Path) -> Value {
    let s = py.stats_json(cap);
    assert_eq!(s["truncated"], false, "{py}: {}", cap.display());
    s
}

#[test]
fn sixty_four_threads_free_each_others_blocks() {
    let dir = test_dir("rel-threads64");
    let exe = compile(&dir, "rel_threads64", &[]);
    let untraced = output(&mut Command::new(&exe));
    assert_eq!(String::from_utf8_lossy(&untraced.stdout), "64000 blocks\n");
    for mode in C_MODES {
        let d = dir.join(slug(mode));
        std::fs::create_dir_all(&d).unwrap();
        let (out, cap) = trace_exec(&d, mode, &exe, &[]);
        assert_same(&slug(mode), &untraced, &out);
        let s = complete(&cap);
        // Every one of the 64 000 blocks of 9000..9063 bytes, and nothing else of that size.
        assert_eq!(bucket(&s, 8192), 64_000, "{mode:?}");
        assert!(s["threads"].as_u64().unwrap() >= 65, "{}", s["threads"]);
        // Each block was freed by the neighbouring thread, and every free found its allocation:
        // no block of that size is left, and no free is unmatched (before the fix in `writer::lock`,
        // threads that had waited on a tracer lock each left one unmatched free at exit).
        assert!(s["leaked_bytes"].as_u64().unwrap() < 9000, "{mode:?}");
        if mode.is_empty() {
            assert_eq!(s["unmatched_frees"], 0, "{mode:?}");
        } else {
            // Known: with --native, blocks that libunwind allocates inside the tracer (not recorded)
            // and frees at thread exit outside it (recorded) are unmatched frees, about one per
            // thread. Its cache mappings no longer count (`inner_maps`); tracking every block made
            // inside the tracer would put a shared lookup on every free.
            let unmatched = s["unmatched_frees"].as_u64().unwrap();
            assert!(unmatched <= 2 * 64, "{mode:?}: {unmatched}");
        }
    }
}

#[test]
fn fork_in_a_threaded_program_gives_the_child_its_own_capture() {
    let dir = test_dir("rel-fork-threads");
    let exe = compile(&dir, "rel_fork_threads", &[]);
    let untraced = output(&mut Command::new(&exe));
    assert_eq!(
        String::from_utf8_lossy(&untraced.stdout),
        "child done\nchild exited with 7\n"
    );
    // The crash this found (a fork child notifying the parent's parked writer thread) struck about one
    // run in four: a few rounds make it show.
    for round in 0..3 {
        for mode in C_MODES {
            let d = dir.join(format!("{}-{round}", slug(mode)));
            std::fs::create_dir_all(&d).unwrap();
            let (out, cap) = trace_exec(&d, mode, &exe, &[]);
            assert_same(&slug(mode), &untraced, &out);
            let parent = complete(&cap);
            assert_eq!(bucket(&parent, 16384), 0, "the child's blocks are its own");
            let children = child_captures(&d);
            assert_eq!(children.len(), 1, "{children:?}");
            let child = complete(&children[0]);
            assert_eq!(bucket(&child, 16384), 3, "{mode:?}");
            assert_eq!(bucket(&child, 32768), 2, "the child's own thread");
            assert_eq!(child["header"]["forked_from"], parent["header"]["pid"]);
            let pid = child["header"]["pid"].as_u64().unwrap();
            assert!(children[0].to_string_lossy().ends_with(&format!(".{pid}")));
        }
    }
}

#[test]
fn python_fork_with_threads_running() {
    for py in &pythons() {
        let dir = test_dir(&format!("rel-pyfork-{}", py.label()));
        let script = script("rel_pyfork.py");
        let untraced = untraced_script(py, &dir, &script, &[]);
        assert_eq!(
            String::from_utf8_lossy(&untraced.stdout),
            "child 6291456\nparent 3145728 child exit 5\n"
        );
        let mut modes: Vec<Vec<&str>> = PY_MODES.iter().map(|m| m.to_vec()).collect();
        modes.push(vec!["--stack-source", "check"]);
        for mode in &modes {
            let d = dir.join(slug(mode));
            std::fs::create_dir_all(&d).unwrap();
            let (out, cap) = trace_script(py, &d, mode, &script, &[]);
            assert_same(&format!("{py} {}", slug(mode)), &untraced, &out);
            let parent = complete_py(py, &cap);
            assert_eq!(bucket(&parent, 2 << 20), 1, "{py} {mode:?}");
            assert_eq!(bucket(&parent, 4 << 20), 0, "{py} {mode:?}");
            let children = child_captures(&d);
            assert_eq!(children.len(), 1, "{children:?}");
            let child = complete_py(py, &children[0]);
            assert_eq!(bucket(&child, 4 << 20), 1, "{py} {mode:?}");
            assert_eq!(bucket(&child, 2 << 20), 0, "{py} {mode:?}");
            assert_eq!(child["header"]["forked_from"], parent["header"]["pid"]);
            for s in [&parent, &child] {
                assert_eq!(s["counters"]["stack_mismatches"], 0, "{py} {mode:?}");
            }
        }
    }
}

#[test]
fn exec_children_are_traced_only_when_asked() {
    let dir = test_dir("rel-fork-exec");
    let exe = compile(&dir, "rel_fork_exec", &[]);
    let untraced = output(&mut Command::new(&exe));
    assert_eq!(
        String::from_utf8_lossy(&untraced.stdout),
        "child running\nchild exited with 3\n"
    );
    for mode in C_MODES {
        // By default the exec'ed child runs untraced: the only child capture is the forked copy's,
        // from fork to exec, without the child's 5 x 44444 bytes.
        let d = dir.join(slug(mode));
        std::fs::create_dir_all(&d).unwrap();
        let (out, cap) = trace_exec(&d, mode, &exe, &[]);
        assert_same(&slug(mode), &untraced, &out);
        assert_eq!(bucket(&complete(&cap), 2048), 7);
        let children = child_captures(&d);
        assert_eq!(children.len(), 1, "{children:?}");
        assert_eq!(bucket(&complete(&children[0]), 32768), 0);

        // --follow-exec: the exec'ed image writes `cap.bin.<pid>`; the forked copy's capture, which
        // had that name until the exec, is moved to `cap.bin.<pid>.pre-exec` (before the fix the
        // exec'ed image found its name taken and ran untraced).
        let mut follow = mode.to_vec();
        follow.push("--follow-exec");
        let d = dir.join(slug(&follow));
        std::fs::create_dir_all(&d).unwrap();
        let (out, _) = trace_exec(&d, &follow, &exe, &[]);
        assert_same(&slug(&follow), &untraced, &out);
        let children = child_captures(&d);
        assert_eq!(children.len(), 2, "{children:?}");
        let exec_child = complete(&children[0]);
        let pid = exec_child["header"]["pid"].as_u64().unwrap();
        assert!(children[0].to_string_lossy().ends_with(&format!(".{pid}")));
        assert_eq!(exec_child["header"]["command_line"][1], "child");
        assert_eq!(bucket(&exec_child, 32768), 5);
        assert!(children[1]
            .to_string_lossy()
            .ends_with(&format!(".{pid}.pre-exec")));
        assert_eq!(complete(&children[1])["header"]["pid"], pid);
    }
}

#[test]
fn python_children_are_traced_only_when_asked() {
    for py in &pythons() {
        let dir = test_dir(&format!("rel-subprocess-{}", py.label()));
        let script = script("rel_subprocess.py");
        let untraced = untraced_script(py, &dir, &script, &[]);
        let expected = "subprocess: child 5242880 False\nchild 5242880 False\nos.system: 0\n\
                        child 5242880 False\nfork+exec: 0\n";
        assert_eq!(String::from_utf8_lossy(&untraced.stdout), expected);
        for mode in [PY_MODES[0], PY_MODES[3]] {
            let d = dir.join(slug(mode));
            std::fs::create_dir_all(&d).unwrap();
            let (out, cap) = trace_script(py, &d, mode, &script, &[]);
            let out = without_fork_warning(out);
            // The children do not see LD_PRELOAD: the library removed itself from the environment.
            assert_same(&format!("{py} {}", slug(mode)), &untraced, &out);
            assert_eq!(bucket(&complete_py(py, &cap), 4 << 20), 0);
            for child in child_captures(&d) {
                // Only the os.fork child, up to its exec.
                assert_eq!(
                    bucket(&complete_py(py, &child), 4 << 20),
                    0,
                    "{}",
                    child.display()
                );
            }

            let mut follow = mode.to_vec();
            follow.push("--follow-exec");
            let d = dir.join(slug(&follow));
            std::fs::create_dir_all(&d).unwrap();
            let (out, cap) = trace_script(py, &d, &follow, &script, &[]);
            assert_eq!(out.status.code(), Some(0));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                expected.replace("False", "True")
            );
            assert_eq!(bucket(&complete_py(py, &cap), 4 << 20), 0);
            // The three Python children each have their 5 MiB block; the shell of os.system and the
            // os.fork child up to its exec have captures too.
            let with_block = child_captures(&d)
                .iter()
                .filter(|c| bucket(&complete_py(py, c), 4 << 20) == 1)
                .count();
            assert_eq!(with_block, 3, "{:?}", child_captures(&d));
        }
    }
}

/// Check mode's disagreements, if any, are all of one kind: Python code (a signal handler, a
/// `__del__` run by the collector) running while a frame is being entered, before the profile
/// function has heard of that frame. CPython 3.11 (ceval.c, DO_TRACING) handles pending signals at a
/// frame's RESUME before the profile call event, and builds the frame object for that event (which
/// can start a collection) before calling the profile function. The shadow stack then lacks the frame
/// being entered; the walk has it. So: the innermost walked frame is one of `handlers`, and the
/// profiled stack is the walked one with frames left out.
fn assert_only_entry_mismatches(s: &Value, handlers: &[&str], what: &str) {
    for m in s["stack_mismatches"].as_array().unwrap() {
        let names = |k: &str| -> Vec<String> {
            m[k].as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{}:{}", f["function"].as_str().unwrap(), f["line"]))
                .collect()
        };
        let (walked, profiled) = (names("walked"), names("profiled"));
        assert!(
            walked
                .iter()
                .any(|f| handlers.iter().any(|h| f.starts_with(h))),
            "{what}: {m}"
        );
        let mut rest = walked.iter();
        assert!(
            profiled.len() < walked.len() && profiled.iter().all(|f| rest.any(|w| w == f)),
            "{what}: {m}"
        );
    }
}

#[test]
fn a_signal_handler_that_allocates() {
    for py in &pythons() {
        let dir = test_dir(&format!("rel-signals-{}", py.label()));
        let script = script("rel_signals.py");
        let untraced = untraced_script(py, &dir, &script, &[]);
        assert_eq!(
            String::from_utf8_lossy(&untraced.stdout),
            "handler ran: True total: 19\n"
        );
        let mut modes: Vec<Vec<&str>> = PY_MODES.iter().map(|m| m.to_vec()).collect();
        modes.push(vec!["--stack-source", "check", "--trace-python-allocators"]);
        for mode in &modes {
            let d = dir.join(slug(mode));
            std::fs::create_dir_all(&d).unwrap();
            let (out, cap) = trace_script(py, &d, mode, &script, &[]);
            assert_same(&format!("{py} {}", slug(mode)), &untraced, &out);
            let s = complete_py(py, &cap);
            assert_only_entry_mismatches(&s, &["on_alarm"], &format!("{py} {mode:?}"));
            // The handler's blocks (7256 bytes) are there, attributed to the handler.
            assert!(bucket(&s, 4096) >= 60, "{py} {mode:?}");
        }
    }
}

#[test]
fn signals_interrupting_allocations_and_the_tracers_system_calls() {
    let dir = test_dir("rel-sigprof");
    let exe = compile(&dir, "rel_sigprof", &[]);
    let untraced = output(&mut Command::new(&exe));
    assert_eq!(String::from_utf8_lossy(&untraced.stdout), "done\n");
    for mode in C_MODES {
        let d = dir.join(slug(mode));
        std::fs::create_dir_all(&d).unwrap();
        let (out, cap) = trace_exec(&d, mode, &exe, &[]);
        assert_same(&slug(mode), &untraced, &out);
        let s = complete(&cap);
        assert_eq!(bucket(&s, 2048), 2000, "{mode:?}");
        assert!(kind_count(&s, "malloc") >= 400_000, "{mode:?}");
    }
}

#[test]
fn exits_from_a_thread_finish_the_capture() {
    for py in &pythons() {
        let dir = test_dir(&format!("rel-exit-thread-{}", py.label()));
        let script = script("rel_exit_thread.py");
        for (how, code, stdout) in [
            ("os_exit", 3, "thread leaving\n"),
            ("sys_exit", 4, "thread leaving\nmain leaving\n"),
        ] {
            let untraced = untraced_script(py, &dir, &script, &[how]);
            assert_eq!(untraced.status.code(), Some(code));
            assert_eq!(String::from_utf8_lossy(&untraced.stdout), stdout);
            for mode in PY_MODES {
                let d = dir.join(format!("{how}-{}", slug(mode)));
                std::fs::create_dir_all(&d).unwrap();
                let (out, cap) = trace_script(py, &d, mode, &script, &[how]);
                assert_same(&format!("{py} {how} {mode:?}"), &untraced, &out);
                let s = complete_py(py, &cap);
                assert_eq!(
                    bucket(&s, 2 << 20),
                    1,
                    "{py} {how} {mode:?}: the thread's 3 MiB"
                );
            }
        }
    }
}

#[test]
fn dlopen_dlclose_churn() {
    let dir = test_dir("rel-dlopen");
    let exe = compile(&dir, "rel_dlopen", &["-ldl"]);
    let plugin = compile_shared(&dir, "rel_plugin");
    let plugin = plugin.to_str().unwrap();
    let untraced = output(Command::new(&exe).arg(plugin));
    assert_eq!(String::from_utf8_lossy(&untraced.stdout), "1000\n");
    for mode in C_MODES {
        let d = dir.join(slug(mode));
        std::fs::create_dir_all(&d).unwrap();
        let (out, cap) = trace_exec(&d, mode, &exe, &[plugin]);
        assert_same(&slug(mode), &untraced, &out);
        let s = complete(&cap);
        assert_eq!(bucket(&s, 32768), 1000, "{mode:?}");
        // The first dlopen frees two blocks ld.so allocated before the library's constructor ran
        // (`_dl_find_object_update`): unmatched, and nothing else is.
        assert!(s["unmatched_frees"].as_u64().unwrap() <= 2, "{mode:?}");
        assert!(s["leaked_bytes"].as_u64().unwrap() < 32768, "{mode:?}");
    }
}

#[test]
fn aligned_allocations_through_ctypes() {
    for py in &pythons() {
        let dir = test_dir(&format!("rel-aligned-{}", py.label()));
        let script = script("rel_aligned.py");
        let untraced = untraced_script(py, &dir, &script, &[]);
        assert_eq!(
            String::from_utf8_lossy(&untraced.stdout),
            "posix_memalign(24): 22\nmisaligned or failed: 0\n"
        );
        for mode in PY_MODES {
            let d = dir.join(slug(mode));
            std::fs::create_dir_all(&d).unwrap();
            let (out, cap) = trace_script(py, &d, mode, &script, &[]);
            assert_same(&format!("{py} {}", slug(mode)), &untraced, &out);
            let s = complete_py(py, &cap);
            assert!(kind_count(&s, "posix_memalign") >= 100, "{py} {mode:?}");
            assert!(kind_count(&s, "aligned_alloc") >= 100, "{py} {mode:?}");
            assert!(kind_count(&s, "memalign") >= 100, "{py} {mode:?}");
            assert!(
                s["by_kind"]["posix_memalign"]["bytes"].as_u64().unwrap() >= 100 * 12345,
                "{py} {mode:?}"
            );
            assert!(
                s["by_kind"]["aligned_alloc"]["bytes"].as_u64().unwrap() >= 100 * 8192,
                "{py} {mode:?}"
            );
            if !mode.contains(&"--trace-python-allocators") {
                // (With pymalloc traced, objects made before the bootstrap hooked it are freed unmatched.)
                assert_eq!(s["unmatched_frees"], 0, "{py} {mode:?}");
            }
        }
    }
}

/// Peak RSS in KiB of `rel_long N`, traced or not, and the traced run's capture.
fn long_run(dir: &Path, exe: &Path, n: u64, traced: bool) -> (u64, Option<Value>) {
    let tag = format!("{n}-{traced}");
    let d = dir.join(&tag);
    std::fs::create_dir_all(&d).unwrap();
    let rss = d.join("rss");
    let args = [n.to_string(), rss.to_str().unwrap().to_string()];
    let (out, cap) = if traced {
        let (out, cap) = trace_exec(
            &d,
            &[],
            exe,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        (out, Some(cap))
    } else {
        (output(Command::new(exe).args(&args)), None)
    };
    assert_eq!(out.status.code(), Some(0), "{tag}");
    let rss = std::fs::read_to_string(&rss)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (rss, cap.map(|c| complete(&c)))
}

#[test]
fn a_long_run_keeps_the_tracer_memory_bounded() {
    let dir = test_dir("rel-long");
    let exe = compile(&dir, "rel_long", &[]);
    let (plain, _) = long_run(&dir, &exe, 2_000_000, false);
    let (short, s_short) = long_run(&dir, &exe, 200_000, true);
    let (long, s_long) = long_run(&dir, &exe, 2_000_000, true);
    let (s_short, s_long) = (s_short.unwrap(), s_long.unwrap());
    assert!(kind_count(&s_long, "malloc") >= 2_000_000);
    assert_eq!(s_long["leaked_blocks"], s_short["leaked_blocks"]);
    // Ten times the events, the same memory: the tracer holds buffers and tables, never events. The
    // bound is the writer's backlog (64 chunks of 64 KiB) plus slack.
    assert!(
        long <= short + 6 * 1024,
        "traced peak RSS grew from {short} KiB to {long} KiB (untraced {plain} KiB)"
    );
    assert!(
        long <= plain + 16 * 1024,
        "traced {long} KiB, untraced {plain} KiB"
    );
}

#[test]
fn the_frame_walk_never_misreads() {
    let dir = test_dir("rel-frames");
    let lib = compile_shared(&dir, "rel_cthread");
    let lib = lib.to_str().unwrap();
    let script = script("rel_frames.py");
    let expected = "gc: True\nc thread: 200\ngenerators: 498000\ncoroutines: 2000\n\
                    recursion: 5011\nno gil: True\natexit ran\n";
    for py in &pythons() {
        let untraced = output(py.python().arg(&script).arg(lib));
        assert_eq!(String::from_utf8_lossy(&untraced.stdout), expected);
        let modes: [&[&str]; 4] = [
            &["--stack-source", "check"],
            &["--stack-source", "check", "--trace-python-allocators"],
            &["--stack-source", "walk", "--native"],
            &["--stack-source", "profile"],
        ];
        for mode in modes {
            let d = dir.join(format!("{}-{}", py.label(), slug(mode)));
            std::fs::create_dir_all(&d).unwrap();
            let (out, cap) = trace_script(py, &d, mode, &script, &[lib]);
            assert_same(&format!("{py} {mode:?}"), &untraced, &out);
            let s = complete_py(py, &cap);
            // The C thread's 200 blocks of 3000000 bytes, made with no Python thread state.
            assert_eq!(bucket(&s, 2 << 20), 200, "{py} {mode:?}");
            let c = &s["counters"];
            if mode[1] == "check" {
                // The walk never misreads; the profile source lacks a frame being entered when the
                // collector runs a __del__ from its call event (see assert_only_entry_mismatches).
                assert_only_entry_mismatches(
                    &s,
                    &["Noisy.__del__", "Teardown.__del__"],
                    &format!("{py} {mode:?}"),
                );
                assert!(c["stack_checks"].as_u64().unwrap() > 1000, "{c}");
            }
        }
    }
}

/// Runs `exe` with the preload writing to `output`, after the shell prefix (limits, umask).
fn run_preloaded(exe: &Path, output: &Path, shell_prefix: &str) -> Output {
    let cmd = format!(
        "{shell_prefix} exec env LD_PRELOAD={} TRACER_OUTPUT={} {}",
        library().display(),
        output.display(),
        exe.display()
    );
    output_of_sh(&cmd)
}

fn output_of_sh(cmd: &str) -> Output {
    Command::new("sh").args(["-c", cmd]).output().unwrap()
}

/// `exit_code` ran as it does untraced, and the tracer said one line starting with `prefix`.
fn assert_untouched(what: &str, out: &Output, prefix: &str) {
    assert_eq!(out.status.code(), Some(42), "{what}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "still here\n",
        "{what}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with(prefix), "{what}: {err}");
}

/// A tmpfs mounted on `dir` with `options`, unmounted on drop; `None` where mounting is not allowed.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

#[test]
fn places_even_root_cannot_write() {
    // Tests run as root, for whom permission bits mean nothing: these fail for root too.
    let dir = test_dir("rel-unwritable");
    let exe = compile(&dir, "exit_code", &[]);
    for (what, path) in [
        ("a path under /proc", PathBuf::from("/proc/self/cap.bin")),
        ("a path under /sys", PathBuf::from("/sys/cap.bin")),
    ] {
        let out = run_preloaded(&exe, &path, "");
        assert_untouched(what, &out, "tracer: cannot create capture");
    }
    // A read-only file system, and a full one (the header fits in 4 KiB, the chunks do not), where
    // this process may mount (in a container without CAP_SYS_ADMIN the two cases are skipped).
    if let Some(_ro) = Mount::tmpfs(&dir.join("ro"), "ro,size=1m") {
        let out = run_preloaded(&exe, &dir.join("ro/cap.bin"), "");
        assert_untouched("read-only tmpfs", &out, "tracer: cannot create capture");
    } else {
        eprintln!("mount not permitted: read-only file system case skipped");
    }
    let long = compile(&dir, "rel_long", &[]);
    if let Some(_full) = Mount::tmpfs(&dir.join("full"), "size=4k") {
        let cmd = format!(
            "exec env LD_PRELOAD={} TRACER_OUTPUT={} {} 1000000",
            library().display(),
            dir.join("full/cap.bin").display(),
            long.display()
        );
        let out = output_of_sh(&cmd);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "127493856\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("tracer: cannot write capture") && err.contains("No space left"),
            "{err}"
        );
        // What was written before the disk filled is still a readable (truncated) capture.
        assert_eq!(stats_json(&dir.join("full/cap.bin"))["truncated"], true);
    }
}

#[test]
fn a_capture_unlinked_mid_run() {
    let dir = test_dir("rel-unlink");
    let exe = compile(&dir, "rel_unlink", &[]);
    let cap = dir.join("cap.bin");
    let report = dir.join("report");
    let args = [cap.to_str().unwrap(), report.to_str().unwrap()];
    let untraced = output(Command::new(&exe).args(args));
    assert_eq!(untraced.status.code(), Some(0));
    assert!(!report.exists());
    let out = output(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(&exe)
            .args(args),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, untraced.stdout);
    // Writes go on into the unlinked file, silently: no error, the capture is simply gone.
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "grew\n");
    assert!(!cap.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no capture was written"));
}

#[test]
fn the_capture_is_created_exclusively_and_privately() {
    let dir = test_dir("rel-create");
    let exe = compile(&dir, "exit_code", &[]);
    // A symlink planted at the path, to a file the attacker wants overwritten: not followed.
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.join("link.bin");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = run_preloaded(&exe, &link, "");
    assert_untouched("symlink to a file", &out, "tracer: cannot create capture");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // A dangling symlink: the file it names is not created.
    let target = dir.join("created-through-link");
    let dangling = dir.join("dangling.bin");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    let out = run_preloaded(&exe, &dangling, "");
    assert_untouched("dangling symlink", &out, "tracer: cannot create capture");
    assert!(!target.exists());
    // An existing file is never overwritten.
    let existing = dir.join("existing.bin");
    std::fs::write(&existing, b"keep me").unwrap();
    let out = run_preloaded(&exe, &existing, "");
    assert_untouched("existing file", &out, "tracer: cannot create capture");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    // Mode 0600 even with a umask that would allow everything.
    let cap = dir.join("cap.bin");
    let out = run_preloaded(&exe, &cap, "umask 000;");
    assert_eq!(out.status.code(), Some(42));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cap).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn the_bootstrap_imports_nothing_from_the_script_or_the_cwd() {
    let dir = test_dir("rel-hostile");
    let scripts = dir.join("scripts");
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let marker = dir.join("hostile-code-ran");
    for place in [&scripts, &cwd] {
        for module in ["_alloc_tracer", "threading", "sitecustomize", "site"] {
            std::fs::write(
                place.join(format!("{module}.py")),
                format!(
                    "open({:?}, 'a').write('{module} from {}\\n')\nprint('HOSTILE')\n",
                    marker.to_str().unwrap(),
                    place.display()
                ),
            )
            .unwrap();
        }
    }
    std::fs::copy(script("rel_clean.py"), scripts.join("clean.py")).unwrap();
    std::fs::copy(script("rel_clean.py"), cwd.join("clean_mod.py")).unwrap();
    for source in ["walk", "profile"] {
        for module in [false, true] {
            let cap = dir.join(format!("cap-{source}-{module}.bin"));
            let mut cmd = tracer();
            cmd.args(["run", "--stack-source", source, "-o"]).arg(&cap);
            if module {
                cmd.args(["-m", "clean_mod"]);
            } else {
                cmd.arg(scripts.join("clean.py"));
            }
            let out = output(cmd.current_dir(&cwd).env_remove("PYTHONPATH"));
            assert_eq!(out.status.code(), Some(0), "{source} {module}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "clean\n",
                "{source} -m:{module}"
            );
            assert!(
                !marker.exists(),
                "{}",
                std::fs::read_to_string(&marker).unwrap()
            );
            assert!(
                stats_json(&cap)["code_objects"].as_u64().unwrap() > 0,
                "the bootstrap ran"
            );
        }
    }
}

/// Runs `cmd` (its own process group) and returns its output, or kills the group and panics once
/// `limit` has passed: a hang fails the test instead of blocking the run.
fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both pipes drained as the program runs, so that a full pipe cannot stall it.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v).unwrap_or_default()
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v).unwrap_or_default()
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kill(2) on the process group this test started; no memory is involved.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}: killed (a hang)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// The fork gate: a fork while other threads are inside the unwinder must not leave the child one
/// of its locks held (it did: the child's first unwind hung in libunwind). 200 forks, each while
/// fresh threads make their first unwinds; the program counts a child still running after 10 s as
/// hung, and the whole run is killed (failing the test) if it outlasts four minutes. Both unwinders.
#[test]
fn forks_while_threads_unwind_never_hang_the_child() {
    const FORKS: usize = 200;
    let dir = test_dir("rel-fork-gate");
    let exe = compile(&dir, "rel_fork_gate", &[]);
    let n = FORKS.to_string();
    let untraced = output(Command::new(&exe).arg(&n));
    assert_eq!(
        String::from_utf8_lossy(&untraced.stdout),
        format!("forks {FORKS} hung 0 failed 0\n")
    );
    for unwinder in ["libunwind", "gcc"] {
        let d = dir.join(unwinder);
        std::fs::create_dir_all(&d).unwrap();
        let cap = d.join("cap.bin");
        let mut cmd = tracer();
        cmd.args(["run", "-o"])
            .arg(&cap)
            .args(["--native", "--exec"])
            .arg(&exe)
            .arg(&n)
            .current_dir(&d);
        if unwinder == "gcc" {
            cmd.env("TRACER_UNWINDER", "gcc");
        }
        let out = output_within(&mut cmd, std::time::Duration::from_secs(240));
        assert_same(unwinder, &untraced, &out);
        let parent = complete(&cap);
        assert!(parent["counters"]["native_unwinds"].as_u64().unwrap() > 0);
        let children = child_captures(&d);
        assert_eq!(children.len(), FORKS, "{unwinder}");
        // Every child recorded its block of 12345 bytes with a native stack (a few read: each read
        // is a process).
        for c in children.iter().step_by(40) {
            let s = complete(c);
            assert_eq!(bucket(&s, 8192), 1, "{unwinder}: {}", c.display());
            assert!(
                s["counters"]["native_unwinds"].as_u64().unwrap() > 0,
                "{unwinder}"
            );
            assert_eq!(s["header"]["forked_from"], parent["header"]["pid"]);
        }
    }
}
