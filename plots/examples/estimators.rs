//! Compares the overhead estimators on run directories (docs/statistics.md): per configuration and
//! benchmark, the mean and 10%/90% quantiles of each estimator's distribution, with pyperf's
//! normalized mean and t-test beside them; then, per estimator, the widest band and the largest
//! distance of a mean from the normalized mean over all rows.
//!
//! ```sh
//! cargo run --release -p plots --example estimators -- results/A results/B ...
//! ```

use plots::analysis::analyse_with;
use plots::format::format_factor;
use plots::Estimator;
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        anyhow::bail!("usage: estimators RUN_DIR...");
    }
    // Per estimator: the widest half band (max of mean-q10, q90-mean) and the largest |mean - norm_mean|.
    let mut widest = [0.0f64; 3];
    let mut off = [0.0f64; 3];
    for dir in &dirs {
        let run = plots::run::load(Path::new(dir))?;
        let analyses: Vec<_> = Estimator::ALL
            .iter()
            .map(|e| analyse_with(&run, *e))
            .collect();
        println!("## {dir}\n");
        print!("| configuration | benchmark | norm. mean | t-test |");
        for e in Estimator::ALL {
            print!(" {} mean [10%, 90%] |", e.name());
        }
        println!("\n|---|---|---:|---|{}", "---:|".repeat(3));
        for (ci, a) in analyses[0].configs.iter().enumerate() {
            for (ri, row) in a.rows.iter().enumerate() {
                let sig = if row.significance.shown_as_significant() {
                    "significant"
                } else {
                    "not significant"
                };
                print!(
                    "| {} | {} | {} | {sig} |",
                    a.config.name,
                    row.name,
                    format_factor(row.norm_mean)
                );
                for (ei, an) in analyses.iter().enumerate() {
                    let s = an.configs[ci].rows[ri].summary;
                    print!(
                        " {} [{}, {}] |",
                        format_factor(s.mean),
                        format_factor(s.q10),
                        format_factor(s.q90)
                    );
                    widest[ei] = widest[ei].max((s.mean - s.q10).max(s.q90 - s.mean));
                    off[ei] = off[ei].max((s.mean - row.norm_mean).abs());
                }
                println!();
            }
            print!(
                "| {} | geometric mean | {} | |",
                a.config.name,
                a.geometric_mean.map_or("-".into(), format_factor)
            );
            for an in &analyses {
                let s = an.configs[ci].all_summary;
                print!(
                    " ALL {} |",
                    s.map_or("-".into(), |s| format!(
                        "{} [{}, {}]",
                        format_factor(s.mean),
                        format_factor(s.q10),
                        format_factor(s.q90)
                    ))
                );
            }
            println!();
        }
        println!();
    }
    println!(
        "| estimator | widest half band (max of mean-10%, 90%-mean) | largest mean - norm. mean |"
    );
    println!("|---|---:|---:|");
    for (ei, e) in Estimator::ALL.iter().enumerate() {
        println!(
            "| {} | {:.1}% | {:+.1}% |",
            e.name(),
            widest[ei] * 100.0,
            off[ei] * 100.0
        );
    }
    Ok(())
}
