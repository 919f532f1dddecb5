//! Compares the overhead estimators on run directories (docs/statistics.md): per configuration and
//! benchmark, the mean and 10%/90% quantiles of each estimator's distribution, with pyperf's
//! normalized mean and t-test beside them; then, per estimator over all rows, the half width of the
//! 10%-90% band (median and largest) and how far the distribution's mean lies from the normalized
//! mean (average and largest): the bias that noise gives a mean of ratios.
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
    // Per estimator and row: the half band (q90 - q10) / 2, and mean - norm_mean.
    let mut bands: [Vec<f64>; 3] = Default::default();
    let mut offsets: [Vec<f64>; 3] = Default::default();
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
                    bands[ei].push((s.q90 - s.q10) / 2.0);
                    offsets[ei].push(s.mean - row.norm_mean);
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
        "| estimator | rows | half band (90% - 10%) / 2: median | largest | mean - norm. mean: average | largest |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (ei, e) in Estimator::ALL.iter().enumerate() {
        let (b, o) = (&bands[ei], &offsets[ei]);
        let largest = |v: &[f64]| v.iter().copied().fold(0.0f64, |m, x| m.max(x.abs()));
        println!(
            "| {} | {} | {:.1}% | {:.1}% | {:+.2}% | {:.1}% |",
            e.name(),
            b.len(),
            plots::stats::median(b).unwrap_or(f64::NAN) * 100.0,
            largest(b) * 100.0,
            plots::stats::mean(o).unwrap_or(f64::NAN) * 100.0,
            largest(o) * 100.0
        );
    }
    Ok(())
}
