//! Writes docs/performance.md (and its images) from a run directory:
//!
//! ```text
//! cargo run -p plots --example performance_page -- results/<run-id> docs
//! ```

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run_dir, out] = args.as_slice() else {
        anyhow::bail!("usage: performance_page <run-dir> <docs-dir>  (e.g. results/2026-11-23T04-30-00Z docs)");
    };
    plots::write_performance_page(run_dir.as_ref(), out.as_ref())?;
    println!("wrote {out}/performance.md");
    Ok(())
}
