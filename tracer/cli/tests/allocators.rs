//! The program's own allocator (Debian's jemalloc, tcmalloc and mimalloc, installed by `.ci/run`):
//! preloaded after the tracer (as `tracer run` puts it), the program runs on it, as its own
//! introspection confirms, and every call is recorded; preloaded before the tracer, or linked into
//! the program, the hooks are bypassed and `tracer run` and `tracer stats` say so.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const ALLOCATORS: [(&str, &str); 3] = [
    ("jemalloc", "libjemalloc.so.2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4"),
    ("mimalloc", "libmimalloc.so.2"),
];

fn allocator_library(file: &str) -> PathBuf {
    let path = Path::new("/usr/lib/x86_64-linux-gnu").join(file);
    assert!(
        path.is_file(),
        "{} missing: .ci/run installs it (libjemalloc2, libtcmalloc-minimal4, libmimalloc2.0)",
        path.display()
    );
    path
}

/// The probe's line, e.g. `allocator=jemalloc owned=4/4 usable_agree=4/4 allocated=289840`.
struct Probe {
    allocator: String,
    owned: String,
    usable_agree: String,
    allocated: u64,
}

fn probe_line(stdout: &[u8]) -> Probe {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("allocator="))
        .unwrap_or_else(|| panic!("no probe line in {text:?}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            .to_string()
    };
    Probe {
        allocator: field("allocator"),
        owned: field("owned"),
        usable_agree: field("usable_agree"),
        allocated: field("allocated").parse().unwrap(),
    }
}

/// `known_sequence.c` with the probe linked in.
fn probed_sequence(dir: &Path) -> PathBuf {
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/allocator_probe.c");
    compile(
        dir,
        "known_sequence",
        &["-DALLOCATOR_PROBE", probe.to_str().unwrap()],
    )
}

#[test]
fn each_allocator_after_the_tracer_runs_the_known_sequence_and_all_of_it_is_recorded() {
    for (name, file) in ALLOCATORS {
        for mode in [None, Some("--native")] {
            let dir = test_dir(&format!("allocator_c_{name}{}", mode.unwrap_or("")));
            let exe = probed_sequence(&dir);
            let cap = dir.join("cap.bin");
            // The user's LD_PRELOAD names the allocator: `tracer run` puts the tracer before it.
            let out = expect_code(
                tracer()
                    .env("LD_PRELOAD", allocator_library(file))
                    .args(["run", "-o"])
                    .arg(&cap)
                    .args(mode)
                    .arg("--exec")
                    .arg(&exe),
                0,
            );
            let probe = probe_line(&out.stdout);
            assert_eq!(probe.allocator, name);
            assert_eq!(
                probe.owned, "4/4",
                "{name}: the live blocks are the allocator's"
            );
            assert_eq!(
                probe.usable_agree, "4/4",
                "{name}: malloc_usable_size is its own"
            );
            if name == "jemalloc" {
                // Bytes this thread got from jemalloc: at least the whole sequence.
                let sequence = 123_000 + 1000 + 16 + 256 + 4096 + 65536 + 200 + 8192;
                assert!(probe.allocated >= sequence, "{}", probe.allocated);
            }
            let s = stats_json(&cap);
            assert_known_sequence(&s);
            // The mappings the allocator makes for its own heap are not the program's.
            assert_eq!(kind_count(&s, "mmap"), 0, "{name}");
            assert!(
                s["header"]["allocator"].as_str().unwrap().ends_with(file),
                "{}",
                s["header"]
            );
            assert_eq!(s["header"]["hooks_bypassed"], "");
        }
    }
}

#[test]
fn python_on_each_allocator_is_recorded_with_its_stacks() {
    for (name, file) in ALLOCATORS {
        for mode in [None, Some("--native")] {
            let dir = test_dir(&format!("allocator_py_{name}{}", mode.unwrap_or("")));
            let cap = dir.join("cap.bin");
            let out = expect_code(
                tracer()
                    .env("LD_PRELOAD", allocator_library(file))
                    .args(["run", "-o"])
                    .arg(&cap)
                    .args(mode)
                    .arg(script("allocator_probe.py")),
                0,
            );
            let probe = probe_line(&out.stdout);
            assert_eq!(probe.allocator, name);
            assert_eq!(
                probe.owned, "100/100",
                "{name}: the bytearrays are the allocator's"
            );
            assert_eq!(probe.usable_agree, "100/100", "{name}");
            if name != "mimalloc" {
                assert!(
                    probe.allocated >= 100 * 100_000,
                    "{name}: {}",
                    probe.allocated
                );
            }
            let s = stats_json(&cap);
            assert_eq!(s["truncated"], false);
            let site = s["top_sites_by_bytes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|site| site["stack"][0]["function"] == "allocate")
                .unwrap_or_else(|| {
                    panic!("{name}: no site in allocate: {}", s["top_sites_by_bytes"])
                });
            // bytearray(100_000) asks for one byte more, for its NUL.
            assert_eq!(site["count"], 100, "{name} {site}");
            assert_eq!(site["bytes"], 100 * 100_001, "{name} {site}");
            assert_eq!(site["stack"][0]["line"], 10, "{site}");
            if mode.is_some() {
                assert!(!site["native"].as_array().unwrap().is_empty(), "{site}");
            }
        }
    }
}

/// The lines of `text` that mention the bypass.
fn bypass_lines(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("bypassed"))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_allocator_preloaded_before_the_tracer_is_reported_in_one_line() {
    for (name, file) in ALLOCATORS {
        let dir = test_dir(&format!("allocator_first_{name}"));
        let exe = probed_sequence(&dir);
        let cap = dir.join("cap.bin");
        // `tracer env`'s variables with the user's allocator put in front of the tracer.
        let out = expect_code(
            std::process::Command::new(&exe)
                .env(
                    "LD_PRELOAD",
                    format!(
                        "{}:{}",
                        allocator_library(file).display(),
                        library().display()
                    ),
                )
                .env("TRACER_OUTPUT", &cap),
            0,
        );
        let warned = bypass_lines(&out.stderr);
        assert_eq!(warned.len(), 1, "{name}: {warned:?}");
        assert!(
            warned[0].starts_with("tracer: hooks bypassed: malloc, free"),
            "{warned:?}"
        );
        assert!(warned[0].contains(file), "{warned:?}");
        assert_eq!(probe_line(&out.stdout).allocator, name);
        let s = stats_json(&cap);
        assert_eq!(s["allocations"], 0, "{name}: nothing reached the hooks");
        assert!(s["header"]["allocator"].as_str().unwrap().ends_with(file));
        let reason = s["header"]["hooks_bypassed"].as_str().unwrap();
        assert!(
            reason.contains(file) && reason.contains("LD_PRELOAD"),
            "{reason}"
        );
        let text = expect_code(tracer().arg("stats").arg(&cap), 0);
        let shown = bypass_lines(&text.stdout);
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].starts_with("Allocator  HOOKS BYPASSED: malloc"),
            "{shown:?}"
        );
    }
}

#[test]
fn a_program_with_its_own_malloc_is_reported_by_tracer_run() {
    let dir = test_dir("allocator_own_malloc");
    let exe = compile(&dir, "own_malloc", &[]);
    let cap = dir.join("cap.bin");
    let out = expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(&exe),
        0,
    );
    let lines = bypass_lines(&out.stderr);
    // The process's own line at start-up, and `tracer run`'s last line.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("malloc, free, calloc, realloc resolve to the program itself"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("tracer: wrote "), "{lines:?}");
    let s = stats_json(&cap);
    assert_eq!(s["allocations"], 0);
    assert!(s["header"]["hooks_bypassed"]
        .as_str()
        .unwrap()
        .contains("links its allocator in statically"));
}

#[test]
fn a_statically_linked_program_is_named_when_no_capture_appears() {
    let dir = test_dir("allocator_static");
    let exe = compile(&dir, "known_sequence", &["-static"]);
    let cap = dir.join("cap.bin");
    let out = expect_code(
        tracer()
            .args(["run", "-o"])
            .arg(&cap)
            .arg("--exec")
            .arg(&exe),
        0,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is statically linked: LD_PRELOAD cannot load the tracer into it"),
        "{err}"
    );
    assert!(!cap.exists());
}

/// Whether `exe` is a non-PIE executable (ELF type `ET_EXEC`).
fn is_non_pie(exe: &Path) -> bool {
    let bytes = std::fs::read(exe).unwrap();
    bytes.len() > 18 && bytes[..4] == *b"\x7fELF" && u16::from_le_bytes([bytes[16], bytes[17]]) == 2
}

/// Whether `exe`'s dynamic symbol `malloc` is undefined with a value: its PLT entry is the
/// function's canonical address (`readelf --dyn-syms`: `UND` with a non-zero address).
fn malloc_has_canonical_plt_entry(exe: &Path) -> bool {
    let out = std::process::Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(exe)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 8
            && f[7].split('@').next() == Some("malloc")
            && f[6] == "UND"
            && u64::from_str_radix(f[1], 16).is_ok_and(|v| v != 0)
    })
}

/// A non-PIE program's calls go through its PLT entry for `malloc`, which is also the address the
/// dynamic linker gives for the name (its canonical address): the check looks past that entry, to the
/// definition the lookup order reaches. Debian's `python3.11` and a C program built `-no-pie`, with
/// jemalloc before the tracer (bypassed, said once) and after it (in use, nothing said).
#[test]
fn a_non_pie_program_is_checked_past_its_plt_entries() {
    let (name, file) = ALLOCATORS[0];
    let dir = test_dir("allocator_non_pie");
    let programs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
    let c = compile(
        &dir,
        "known_sequence",
        &[
            "-no-pie",
            "-DALLOCATOR_PROBE",
            programs.join("allocator_probe.c").to_str().unwrap(),
            programs.join("malloc_address.c").to_str().unwrap(),
        ],
    );
    let python = PathBuf::from("/usr/bin/python3.11");
    assert!(
        python.is_file(),
        "Debian's python3.11 missing (apt-get install python3.11)"
    );
    let probe_script = script("allocator_probe.py");
    for (exe, args) in [(c, vec![]), (python, vec![probe_script.as_os_str()])] {
        let is_c = args.is_empty();
        assert!(is_non_pie(&exe), "{} is a PIE", exe.display());
        assert!(
            malloc_has_canonical_plt_entry(&exe),
            "{}: malloc has no canonical PLT entry",
            exe.display()
        );
        for jemalloc_first in [true, false] {
            let what = format!("{} with jemalloc first: {jemalloc_first}", exe.display());
            let cap = dir.join(format!("cap-{}-{jemalloc_first}.bin", is_c));
            let (allocator, tracer) = (allocator_library(file), library());
            let (a, b) = if jemalloc_first {
                (&allocator, &tracer)
            } else {
                (&tracer, &allocator)
            };
            let out = expect_code(
                std::process::Command::new(&exe)
                    .args(&args)
                    .env("LD_PRELOAD", format!("{}:{}", a.display(), b.display()))
                    .env("TRACER_OUTPUT", &cap),
                0,
            );
            assert_eq!(probe_line(&out.stdout).allocator, name, "{what}");
            let warned = bypass_lines(&out.stderr);
            let s = stats_json(&cap);
            let bypassed = s["header"]["hooks_bypassed"].as_str().unwrap();
            if jemalloc_first {
                assert_eq!(warned.len(), 1, "{what}: {warned:?}");
                assert!(
                    warned[0].starts_with("tracer: hooks bypassed: malloc, free")
                        && warned[0].contains(file),
                    "{what}: {warned:?}"
                );
                assert!(bypassed.contains(file), "{what}: {bypassed}");
                if is_c {
                    assert_eq!(s["allocations"], 0, "{what}: nothing reached the hooks");
                }
            } else {
                assert!(warned.is_empty(), "{what}: {warned:?}");
                assert_eq!(bypassed, "", "{what}");
                assert!(
                    s["header"]["allocator"].as_str().unwrap().ends_with(file),
                    "{what}: {}",
                    s["header"]
                );
                if is_c {
                    assert_known_sequence(&s);
                } else {
                    assert!(s["allocations"].as_u64().unwrap() >= 100, "{what}: {s}");
                }
            }
        }
    }
}
