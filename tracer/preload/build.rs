// Compiles the one C file of the preload: the thread-local state with the initial-exec TLS model, which
// stable Rust cannot ask for (a Rust `thread_local!` in a cdylib goes through `__tls_get_addr`).
fn main() {
    println!("cargo:rerun-if-changed=src/tls.c");
    cc::Build::new()
        .file("src/tls.c")
        .opt_level(2)
        .flag("-fPIC")
        .compile("tracer_tls");
}
