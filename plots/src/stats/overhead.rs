//! Provides the overhead distribution of one benchmark under one configuration (traced time over
//! baseline time), its summary (mean, 10% and 90% quantiles) and the pooled ALL distribution, with
//! three estimators ([`Estimator`]); docs/statistics.md compares them on A/A runs and explains the
//! default.
//!
//! The harness runs the processes in rounds (one process of every configuration, in an order that
//! rotates from round to round), so process *k* of the configuration and process *k* of the baseline
//! ran side by side. Every estimator pairs them: slow drift of the machine (frequency, other load,
//! thermal state) cancels instead of widening the distribution. When the pairing does not hold
//! (different numbers of processes or of values, e.g. a run directory assembled by hand), traced
//! values are divided by the baseline's mean instead, and the result says so
//! ([`Pairing::AgainstBaselineMean`]).

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

/// How a benchmark's overhead distribution is formed from the two sides' processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Estimator {
    /// The ratio of means (all traced values over all baseline values), bootstrapped over rounds:
    /// [`BOOTSTRAP_RESAMPLES`] times, as many rounds as were measured are drawn with replacement
    /// and the mean of their traced values is divided by the mean of their baseline values. The
    /// distribution is that of the overhead estimate: its spread is what the measurement leaves
    /// uncertain, and it narrows with more processes.
    #[default]
    Bootstrap,
    /// The mean of each traced process over the mean of the baseline process of the same round:
    /// one ratio per round.
    ProcessMeans,
    /// Value *j* of traced process *k* over value *j* of baseline process *k*: one ratio per value
    /// (what the report drew before the estimators were compared).
    ValueByValue,
}

/// Resamples of [`Estimator::Bootstrap`].
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// The seed of the bootstrap's SplitMix64 generator: the same for every row, so a report is
/// reproducible (tests/fixtures/make_golden_violin.py draws the same rounds).
pub const BOOTSTRAP_SEED: u64 = 0x005E_ED0F_0E57;

impl Estimator {
    /// Every estimator, the default first.
    pub const ALL: [Estimator; 3] = [
        Estimator::Bootstrap,
        Estimator::ProcessMeans,
        Estimator::ValueByValue,
    ];

    /// The name on the command line (`harness report --estimator NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Bootstrap => "bootstrap",
            Estimator::ProcessMeans => "process-means",
            Estimator::ValueByValue => "value-by-value",
        }
    }

    /// The estimator called `name`, if any.
    pub fn from_name(name: &str) -> Option<Estimator> {
        Estimator::ALL.into_iter().find(|e| e.name() == name)
    }

    /// What one sample of the distribution is, for tables and captions.
    pub fn describe(self) -> &'static str {
        match self {
            Estimator::Bootstrap => "bootstrap of the ratio of means over rounds",
            Estimator::ProcessMeans => "process mean over the baseline process of its round",
            Estimator::ValueByValue => "value over the baseline value of its round",
        }
    }
}

/// How a distribution's ratios were formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Process *k* against baseline process *k* (the same round).
    Pairwise,
    /// Against the baseline's mean (the processes could not be paired).
    AgainstBaselineMean,
}

/// The overhead ratios of one benchmark under one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// traced / baseline, sorted ascending; > 1 means the tracer made it slower.
    pub ratios: Vec<f64>,
    /// How they were paired.
    pub pairing: Pairing,
    /// How they were formed.
    pub estimator: Estimator,
    /// Traced processes behind them.
    pub processes: usize,
}

/// Mean and 10%/90% quantiles of a distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of ratios.
    pub n: usize,
    /// Arithmetic mean of the ratios.
    pub mean: f64,
    /// 10% quantile (linear interpolation, as numpy and pyperf).
    pub q10: f64,
    /// 90% quantile.
    pub q90: f64,
}

/// The ratios of `traced` over `baseline` with the default estimator, each side given as its runs'
/// values (calibration runs left out). `None` when either side has no value.
pub fn distribution(traced: &[&[f64]], baseline: &[&[f64]]) -> Option<Distribution> {
    estimate(Estimator::default(), traced, baseline)
}

/// The ratios of `traced` over `baseline` formed by `estimator`. `None` when either side has no
/// value.
pub fn estimate(
    estimator: Estimator,
    traced: &[&[f64]],
    baseline: &[&[f64]],
) -> Option<Distribution> {
    let traced: Vec<&[f64]> = traced.iter().copied().filter(|r| !r.is_empty()).collect();
    let baseline: Vec<&[f64]> = baseline.iter().copied().filter(|r| !r.is_empty()).collect();
    let paired = traced.len() == baseline.len()
        && traced
            .iter()
            .zip(&baseline)
            .all(|(t, b)| t.len() == b.len());
    let base_all: Vec<f64> = baseline.iter().flat_map(|b| b.iter().copied()).collect();
    let base_mean = super::mean(&base_all)?;
    let process_mean = |r: &[f64]| super::mean(r).expect("empty runs are left out");
    let mut ratios: Vec<f64> = match (estimator, paired) {
        (Estimator::ValueByValue, true) => traced
            .iter()
            .zip(&baseline)
            .flat_map(|(t, b)| t.iter().zip(b.iter()).map(|(t, b)| t / b))
            .collect(),
        (Estimator::ValueByValue, false) => traced
            .iter()
            .flat_map(|t| t.iter().map(|v| v / base_mean))
            .collect(),
        (Estimator::ProcessMeans, true) => traced
            .iter()
            .zip(&baseline)
            .map(|(t, b)| process_mean(t) / process_mean(b))
            .collect(),
        (Estimator::ProcessMeans, false) => {
            traced.iter().map(|t| process_mean(t) / base_mean).collect()
        }
        (Estimator::Bootstrap, true) => {
            let sums = |runs: &[&[f64]]| -> Vec<f64> {
                runs.iter().map(|r| r.iter().sum::<f64>()).collect()
            };
            bootstrap_ratio_of_sums(&sums(&traced), &sums(&baseline))
        }
        (Estimator::Bootstrap, false) => {
            // Unpaired: traced processes resampled, over the baseline's mean.
            let sums: Vec<f64> = traced.iter().map(|r| r.iter().sum::<f64>()).collect();
            let counts: Vec<f64> = traced.iter().map(|r| r.len() as f64 * base_mean).collect();
            bootstrap_ratio_of_sums(&sums, &counts)
        }
    };
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(Distribution {
        ratios,
        pairing: if paired {
            Pairing::Pairwise
        } else {
            Pairing::AgainstBaselineMean
        },
        estimator,
        processes: traced.len(),
    })
}

/// [`BOOTSTRAP_RESAMPLES`] times: draws `top.len()` indices with replacement (SplitMix64 seeded
/// with [`BOOTSTRAP_SEED`], index = next value modulo the count) and returns sum(top) / sum(bottom)
/// over the drawn indices. Empty when there is nothing to draw.
fn bootstrap_ratio_of_sums(top: &[f64], bottom: &[f64]) -> Vec<f64> {
    let n = top.len();
    if n == 0 || bottom.len() != n {
        return Vec::new();
    }
    let mut rng = SplitMix64::from_seed(BOOTSTRAP_SEED.to_le_bytes());
    (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let (mut t, mut b) = (0.0, 0.0);
            for _ in 0..n {
                let i = (rng.next_u64() % n as u64) as usize;
                t += top[i];
                b += bottom[i];
            }
            t / b
        })
        .collect()
}

impl Distribution {
    /// The measurements behind the distribution: its ratios, or for the bootstrap the traced
    /// processes that were resampled.
    pub fn measured(&self) -> usize {
        match self.estimator {
            Estimator::Bootstrap => self.processes,
            Estimator::ProcessMeans | Estimator::ValueByValue => self.ratios.len(),
        }
    }

    /// Mean and quantiles.
    pub fn summary(&self) -> Summary {
        summarize_sorted(&self.ratios)
    }
}

/// Mean and quantiles of a sorted, non-empty sample.
pub fn summarize_sorted(sorted: &[f64]) -> Summary {
    Summary {
        n: sorted.len(),
        mean: super::mean(sorted).expect("a distribution is never empty"),
        q10: super::percentile_of_sorted(sorted, 0.1),
        q90: super::percentile_of_sorted(sorted, 0.9),
    }
}

/// The ALL row: every ratio of every benchmark in one sorted sample. With the value-by-value and
/// process-means estimators, benchmarks with more values weigh more, as in Memray's and
/// bench_runner's plots; the bootstrap gives every benchmark the same number of resamples.
pub fn pool<'a>(distributions: impl IntoIterator<Item = &'a Distribution>) -> Vec<f64> {
    let mut all: Vec<f64> = distributions
        .into_iter()
        .flat_map(|d| d.ratios.iter().copied())
        .collect();
    all.sort_by(f64::total_cmp);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_process_by_process() {
        // Baseline drifts from 1.0 to 2.0 between processes; the tracer adds exactly 50% each time.
        // Paired ratios are all 1.5; against the baseline mean (1.5) they would be 1.0 and 2.0.
        let base: [&[f64]; 2] = [&[1.0, 1.0], &[2.0, 2.0]];
        let traced: [&[f64]; 2] = [&[1.5, 1.5], &[3.0, 3.0]];
        for estimator in Estimator::ALL {
            let d = estimate(estimator, &traced, &base).unwrap();
            assert_eq!(d.pairing, Pairing::Pairwise);
            assert_eq!(d.processes, 2);
            let s = d.summary();
            assert!((s.mean - 1.5).abs() < 1e-12, "{estimator:?}: {s:?}");
            assert!((s.q10 - 1.5).abs() < 1e-12 && (s.q90 - 1.5).abs() < 1e-12);
        }
        let d = estimate(Estimator::ValueByValue, &traced, &base).unwrap();
        assert_eq!(d.ratios, vec![1.5; 4]);
        assert_eq!(
            estimate(Estimator::ProcessMeans, &traced, &base)
                .unwrap()
                .ratios
                .len(),
            2
        );
        let d = distribution(&traced, &base).unwrap();
        assert_eq!(d.estimator, Estimator::Bootstrap);
        assert_eq!(d.ratios.len(), BOOTSTRAP_RESAMPLES);
    }

    #[test]
    fn falls_back_to_the_baseline_mean_and_says_so() {
        let base: [&[f64]; 2] = [&[1.0, 1.0], &[2.0, 2.0]];
        let traced: [&[f64]; 1] = [&[3.0, 1.5]];
        let d = estimate(Estimator::ValueByValue, &traced, &base).unwrap();
        assert_eq!(d.pairing, Pairing::AgainstBaselineMean);
        assert_eq!(d.ratios, vec![1.0, 2.0]);
        let d = estimate(Estimator::ProcessMeans, &traced, &base).unwrap();
        assert_eq!(d.ratios, vec![1.5]);
        // One traced process: every resample draws it, 2.25 / 1.5.
        let d = estimate(Estimator::Bootstrap, &traced, &base).unwrap();
        assert_eq!(d.pairing, Pairing::AgainstBaselineMean);
        assert!(d.ratios.iter().all(|r| (r - 1.5).abs() < 1e-12));
        assert!(distribution(&[], &base).is_none());
    }

    #[test]
    fn the_bootstrap_draws_rounds_of_both_sides_together() {
        // Round 0 ran slow on both sides, round 1 fast: the ratio is 2 in every round, so every
        // resample reads 2 however the rounds are drawn; value by value it is 2 too.
        let base: [&[f64]; 2] = [&[10.0, 10.0], &[1.0, 1.0]];
        let traced: [&[f64]; 2] = [&[20.0, 20.0], &[2.0, 2.0]];
        let d = estimate(Estimator::Bootstrap, &traced, &base).unwrap();
        assert!(d.ratios.iter().all(|r| (r - 2.0).abs() < 1e-12));
        // Ratios of 1 and 3 in two rounds of equal weight: resamples of both rounds read 2,
        // of one round 1 or 3; the quantiles stay within [1, 3] and the mean near 2.
        let base: [&[f64]; 2] = [&[1.0], &[1.0]];
        let traced: [&[f64]; 2] = [&[1.0], &[3.0]];
        let s = estimate(Estimator::Bootstrap, &traced, &base)
            .unwrap()
            .summary();
        assert!(s.q10 >= 1.0 && s.q90 <= 3.0, "{s:?}");
        assert!((s.mean - 2.0).abs() < 0.1, "{s:?}");
        assert_eq!(
            Estimator::from_name("process-means"),
            Some(Estimator::ProcessMeans)
        );
        assert_eq!(Estimator::from_name("nope"), None);
    }

    #[test]
    fn splitmix64_is_the_reference_generator() {
        // The first outputs of splitmix64.c (Vigna) from state 0: the fixture's Python oracle
        // reimplements it, so the bootstrap's draws can be checked outside Rust.
        let mut rng = SplitMix64::from_seed(0u64.to_le_bytes());
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn quantiles_worked_by_hand_and_pool() {
        // Ratios 1..=11 (over 1.0): mean 6, q10 at k = 1.0 -> 2, q90 at k = 9.0 -> 10.
        let values: Vec<f64> = (1..=11).map(f64::from).collect();
        let d = estimate(Estimator::ValueByValue, &[&values], &[&[1.0; 11]]).unwrap();
        let s = d.summary();
        assert_eq!((s.mean, s.q10, s.q90), (6.0, 2.0, 10.0));
        let e = estimate(Estimator::ValueByValue, &[&[0.5]], &[&[1.0]]).unwrap();
        let all = pool([&d, &e]);
        assert_eq!(all.len(), 12);
        assert_eq!(all[0], 0.5);
    }
}
