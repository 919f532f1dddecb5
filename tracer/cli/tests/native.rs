//! Native mode end to end: programs run under `tracer run --native`, their stacks unwound in the
//! process and symbolized by `tracer stats` (functions, libraries, file:line, Python frames merged in).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Runs `cmd` and panics if it has not exited with 0 after a minute (a deadlock in the unwinder
/// would hang the traced program).
fn run_with_timeout(cmd: &mut Command) {
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{cmd:?}: {status}");
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn trace_exec(dir: &Path, exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let cap = dir.join("cap.bin");
    let mut cmd = tracer();
    cmd.args(["run", "--native", "-o"])
        .arg(&cap)
        .arg("--exec")
        .arg(exe)
        .args(args)
        .envs(env.iter().copied());
    run_with_timeout(&mut cmd);
    stats_json(&cap)
}

/// Runs a script under `tracer run --native` with `python` (the host's 3.11s: pyenv's with debug
/// information, Debian's static and stripped; Debian sid's 3.13+, static and stripped, where GCC split
/// most of the evaluation loop off its exported symbol).
fn trace_python(dir: &Path, python: &Python, script_name: &str, extra: &[&str]) -> Value {
    let cap = dir.join("cap.bin");
    let mut cmd = python.tracer_run();
    cmd.args(["--native", "-o"])
        .arg(&cap)
        .args(extra)
        .arg(script(script_name));
    run_with_timeout(&mut cmd);
    python.stats_json(&cap)
}

/// The site of the top-by-bytes table made by `hook` (the native entry point: `malloc`, ...) with
/// `bytes` to `bytes + 64` bytes (a bytearray asks for one byte more than its length; from 3.15 its
/// buffer is a bytes object, 33 bytes more).
fn site<'a>(s: &'a Value, hook: &str, bytes: u64) -> &'a Value {
    site_in(s, "top_sites_by_bytes", hook, bytes)
}

fn site_in<'a>(s: &'a Value, table: &str, hook: &str, bytes: u64) -> &'a Value {
    s[table]
        .as_array()
        .unwrap()
        .iter()
        .find(|site| {
            let b = site["bytes"].as_u64().unwrap();
            (bytes..bytes + 64).contains(&b)
                && site["native"][0]["function"].as_str().unwrap_or("") == hook
        })
        .unwrap_or_else(|| panic!("no site of {bytes} bytes from {hook} in {:#}", s[table]))
}

/// A site's native frames as `function (library)`, innermost first.
fn native(site: &Value) -> Vec<String> {
    site["native"]
        .as_array()
        .unwrap_or_else(|| panic!("site without native frames: {site:#}"))
        .iter()
        .map(|f| {
            format!(
                "{} ({})",
                f["function"].as_str().unwrap(),
                f["library"].as_str().unwrap()
            )
        })
        .collect()
}

/// A site's hybrid stack: native frames as `function`, Python frames as `py:function`.
fn hybrid(site: &Value) -> Vec<String> {
    site["hybrid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["type"].as_str().unwrap() {
            "python" => format!("py:{}", f["function"].as_str().unwrap()),
            _ => f["function"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn position(frames: &[String], pred: impl Fn(&str) -> bool) -> usize {
    frames
        .iter()
        .position(|f| pred(f))
        .unwrap_or_else(|| panic!("frame not found in {frames:#?}"))
}

fn abc_stack(name: &str, flags: &[&str], env: &[(&str, &str)]) {
    let dir = test_dir(name);
    let exe = compile(&dir, "native_abc", flags);
    let s = trace_exec(&dir, &exe, &[], env);
    assert_eq!(s["truncated"], false);
    // 1: libunwind (installed by .ci/run), 2: glibc's backtrace.
    let gcc = env
        .iter()
        .any(|(k, v)| *k == "TRACER_UNWINDER" && *v == "gcc");
    assert_eq!(s["counters"]["native_unwinder"], if gcc { 2 } else { 1 });
    let site = site(&s, "malloc", 424242);
    let frames = native(site);
    let names: Vec<&str> = frames
        .iter()
        .map(|f| f.split(' ').next().unwrap())
        .collect();
    // The hook the program called, then the program's functions in order.
    assert_eq!(names[0], "malloc", "{frames:#?}");
    assert!(frames[0].ends_with("(libtracer.so)"), "{frames:#?}");
    assert_eq!(&names[1..5], ["c", "b", "a", "main"], "{frames:#?}");
    // The test program is built with -g: file and line are there.
    let c = &site["native"][1];
    assert!(
        c["file"].as_str().unwrap().ends_with("native_abc.c"),
        "{c:#}"
    );
    assert_eq!(c["line"], 6, "{c:#}");
}

#[test]
fn c_stack_with_frame_pointers() {
    abc_stack("native_abc_fp", &["-fno-omit-frame-pointer"], &[]);
}

#[test]
fn c_stack_without_frame_pointers() {
    abc_stack("native_abc_nofp", &["-fomit-frame-pointer"], &[]);
}

#[test]
fn c_stack_with_the_gcc_unwinder() {
    abc_stack(
        "native_abc_gcc",
        &["-fomit-frame-pointer"],
        &[("TRACER_UNWINDER", "gcc")],
    );
}

/// Functions without unwind information (and without frame pointers): the unwinder must stop or
/// guess, never crash, and the allocation is still recorded with its hook frame.
#[test]
fn frames_without_unwind_info_do_not_crash() {
    for unwinder in ["libunwind", "gcc"] {
        let dir = test_dir(&format!("native_no_unwind_info_{unwinder}"));
        let exe = compile(
            &dir,
            "native_abc",
            &[
                "-fomit-frame-pointer",
                "-fno-asynchronous-unwind-tables",
                "-fno-unwind-tables",
            ],
        );
        let s = trace_exec(&dir, &exe, &[], &[("TRACER_UNWINDER", unwinder)]);
        assert_eq!(s["truncated"], false);
        let frames = native(site(&s, "malloc", 424242));
        assert!(frames[0].starts_with("malloc "), "{frames:#?}");
        assert!(frames.len() <= 129, "{frames:#?}");
    }
}

#[test]
fn four_threads_and_a_library_loaded_later() {
    let dir = test_dir("native_threads_dlopen");
    let lib = compile(&dir, "native_dl_lib", &["-shared", "-fPIC"]);
    let exe = compile(&dir, "native_threads_dlopen", &["-ldl"]);
    let s = trace_exec(&dir, &exe, &[lib.to_str().unwrap()], &[]);
    assert_eq!(s["truncated"], false);
    // The library's function, symbolized from the module map recorded after the dlopen; twice
    // (loaded, closed, loaded again: one site, or two if the second load went elsewhere).
    let lib_sites: Vec<&Value> = s["top_sites_by_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|site| site["native"][1]["function"] == "lib_alloc")
        .collect();
    let bytes: u64 = lib_sites.iter().map(|t| t["bytes"].as_u64().unwrap()).sum();
    assert_eq!(bytes, 2 * 777777, "{lib_sites:#?}");
    for site in lib_sites {
        let frames = native(site);
        assert_eq!(frames[0], "malloc (libtracer.so)", "{frames:#?}");
        assert_eq!(frames[1], "lib_alloc (native_dl_lib)", "{frames:#?}");
        assert!(frames[2].starts_with("main "), "{frames:#?}");
        assert_eq!(site["native"][1]["line"], 10);
    }
    // Its constructor allocated while the loader held its lock.
    let ctor = s["top_sites_by_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|site| site["native"][1]["function"] == "on_load")
        .unwrap_or_else(|| panic!("no site in the constructor: {:#}", s["top_sites_by_bytes"]));
    assert_eq!(ctor["bytes"], 2 * 31337);
    assert!(
        native(ctor).iter().any(|f| f.starts_with("dlopen")),
        "{ctor:#}"
    );
    // 4 threads x 1000 allocations of 55555 bytes, from thread_leaf on each thread's stack.
    let threads: Vec<&Value> = s["top_sites_by_count"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|site| site["native"][1]["function"] == "thread_leaf")
        .collect();
    let total: u64 = threads.iter().map(|t| t["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 4000, "{threads:#?}");
    for t in &threads {
        let frames = native(t);
        assert!(frames[2].starts_with("thread_main "), "{frames:#?}");
        assert!(
            frames
                .iter()
                .any(|f| f.starts_with("start_thread ") || f.contains("libc.so")),
            "{frames:#?}"
        );
    }
    assert!(s["counters"]["native_module_scans"].as_u64().unwrap() >= 2);
}

#[test]
fn ctypes_malloc_shows_ffi_and_the_python_caller() {
    for python in &pythons() {
        let dir = test_dir(&format!("native_ctypes_{}", python.label()));
        let s = trace_python(&dir, python, "native_ctypes.py", &[]);
        let site = site(&s, "malloc", 1 << 20);
        let frames = hybrid(site);
        assert_eq!(frames[0], "malloc", "{frames:#?}");
        let ffi = position(&frames, |f| f == "ffi_call");
        let p = position(&frames, |f| f == "py:p");
        let module = position(&frames, |f| f == "py:<module>");
        assert!(ffi < p && p < module, "{python}: {frames:#?}");
        assert!(native(site)[ffi].contains("libffi"), "{:#?}", native(site));
    }
}

#[test]
fn bytearray_shows_the_cpython_function_that_allocated() {
    for python in &pythons() {
        let dir = test_dir(&format!("native_bytearray_{}", python.label()));
        let s = trace_python(&dir, python, "nested_bytearray.py", &[]);
        let site = site(&s, "malloc", 10 << 20);
        let frames = hybrid(site);
        let h = position(&frames, |f| f == "py:h");
        assert_eq!(
            &frames[h..h + 4],
            ["py:h", "py:g", "py:f", "py:<module>"],
            "{python}"
        );
        // The evaluation loop's frames are all replaced, the part without a symbol too.
        assert!(!frames.iter().any(|f| f == "_PyEval_EvalFrameDefault"));
        assert!(
            position(&frames, |f| f == "PyEval_EvalCode") > h + 3,
            "{python}: {frames:#?}"
        );
        if python.version <= (3, 13) {
            // (Debian's 3.14 and 3.15 inline it into static functions, which have no name.)
            let resize = position(&frames, |f| f == "PyByteArray_Resize");
            assert!(resize < h, "{frames:#?}");
        }
        if python.exe == "python3" {
            // pyenv's libpython has debug information: static functions and lines too.
            assert!(
                frames.iter().any(|f| f.starts_with("bytearray___init__")),
                "{frames:#?}"
            );
            let resize = position(&frames, |f| f == "PyByteArray_Resize");
            let resize = &site["hybrid"][resize];
            assert!(resize["file"]
                .as_str()
                .unwrap()
                .ends_with("bytearrayobject.c"));
            assert!(resize["line"].as_u64().is_some());
        }
    }
}

#[test]
fn pymalloc_events_carry_native_stacks() {
    for python in &pythons() {
        let dir = test_dir(&format!("native_pymalloc_{}", python.label()));
        let s = trace_python(
            &dir,
            python,
            "nested_bytearray.py",
            &["--trace-python-allocators"],
        );
        assert!(kind_count(&s, "pymalloc_malloc") > 0, "{python}");
        // The bytearray's buffer: a realloc up to 3.14; 3.15 keeps it in a bytes object (a malloc of
        // 33 bytes more).
        let site = s["top_sites_by_bytes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|site| {
                let hook = site["native"][0]["function"].as_str().unwrap_or("");
                let bytes = site["bytes"].as_u64().unwrap();
                hook.starts_with("tracer::python::pymem::wrapped_")
                    && ((10 << 20)..(10 << 20) + 64).contains(&bytes)
            })
            .unwrap_or_else(|| panic!("{python}: no 10 MiB pymalloc site"));
        let frames = hybrid(site);
        // The pymalloc wrapper is the entry point, then CPython's callers, then the Python frames.
        assert!(frames[0].contains("wrapped_"), "{frames:#?}");
        let h = position(&frames, |f| f == "py:h");
        assert_eq!(
            &frames[h..h + 4],
            ["py:h", "py:g", "py:f", "py:<module>"],
            "{python}"
        );
        if python.version <= (3, 13) {
            assert!(position(&frames, |f| f == "PyByteArray_Resize") < h);
        }
    }
}

#[test]
fn default_mode_records_no_native_stack() {
    let dir = test_dir("native_off");
    let exe = compile(&dir, "native_abc", &[]);
    let cap = dir.join("cap.bin");
    expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(&exe),
        0,
    );
    let s = stats_json(&cap);
    for table in ["top_sites_by_bytes", "top_sites_by_count", "leaks_by_site"] {
        for site in s[table].as_array().unwrap() {
            assert!(site.get("native").is_none(), "{site:#}");
        }
    }
    assert_eq!(s["counters"]["native_nodes"], 0);
}

#[test]
fn native_only_prints_the_raw_stack() {
    for python in &pythons() {
        let dir = test_dir(&format!("native_only_text_{}", python.label()));
        let cap = dir.join("cap.bin");
        let mut cmd = python.tracer_run();
        cmd.args(["--native", "-o"])
            .arg(&cap)
            .arg(script("nested_bytearray.py"));
        run_with_timeout(&mut cmd);
        let text = |extra: &[&str]| {
            let out = expect_code(python.tracer().arg("stats").args(extra).arg(&cap), 0);
            String::from_utf8(out.stdout).unwrap()
        };
        let hybrid = text(&[]);
        assert!(
            hybrid.contains("h (") && hybrid.contains("[py]"),
            "{python}: {hybrid}"
        );
        let raw = text(&["--native-only"]);
        // Named by address where the interpreter is stripped (the capture says where the loop is).
        let library = match python.exe.as_str() {
            "python3" => "libpython".to_string(),
            exe => Path::new(exe)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        };
        assert!(
            raw.contains(&format!("_PyEval_EvalFrameDefault ({library}")),
            "{python}: {raw}"
        );
        assert!(!raw.contains("[py]"), "{raw}");
    }
}

/// The cost of an allocation with and without native stacks (see "Native stacks" in
/// docs/architecture.md). Not a pass/fail test: `cargo test -p tracer-cli --test native --
/// --ignored --nocapture native_unwind_cost` prints the numbers.
#[test]
#[ignore]
fn native_unwind_cost() {
    let dir = test_dir("native_cost");
    let exe = compile(&dir, "native_cost", &["-O2"]);
    let configs: [(&str, &[&str], &str); 4] = [
        ("untraced", &[], ""),
        ("default mode", &["run"], ""),
        ("--native (libunwind)", &["run", "--native"], "libunwind"),
        ("--native (gcc)", &["run", "--native"], "gcc"),
    ];
    println!(
        "{:<24}{:>22}{:>24}",
        "configuration", "warm ns/malloc+free", "cold ns/first malloc"
    );
    for (name, args, unwinder) in configs {
        let cap = dir.join("cap.bin");
        let _ = std::fs::remove_file(&cap);
        let mut cmd = if args.is_empty() {
            Command::new(&exe)
        } else {
            let mut c = tracer();
            c.args(args).arg("-o").arg(&cap).arg("--exec").arg(&exe);
            c
        };
        cmd.env("TRACER_UNWINDER", unwinder);
        let out = expect_code(&mut cmd, 0);
        let text = String::from_utf8(out.stdout).unwrap();
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        println!("{name:<24}{:>22}{:>24}", value("warm_ns"), value("cold_ns"));
    }
}

/// A fork child writes its own capture: it must carry the module map and the trie nodes again (the
/// parent's are in the parent's file).
#[test]
fn fork_child_capture_has_its_own_native_stacks() {
    let dir = test_dir("native_fork");
    let exe = compile(&dir, "fork", &[]);
    let cap = dir.join("cap.bin");
    expect_code(
        tracer()
            .args(["run", "--native", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(&exe),
        5,
    );
    let parent = stats_json(&cap);
    assert_eq!(native(site(&parent, "malloc", 11111))[1], "main (fork)");
    let child_path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().contains("cap.bin."))
        .expect("the child's capture");
    let child = stats_json(&child_path);
    let frames = native(site(&child, "malloc", 3 * 22222));
    // Library names need the module map; the frames outside main need the parent's trie nodes.
    assert_eq!(frames[1], "main (fork)", "{frames:#?}");
    assert!(
        frames.iter().any(|f| f == "__libc_start_main (libc.so.6)"),
        "{frames:#?}"
    );
}
