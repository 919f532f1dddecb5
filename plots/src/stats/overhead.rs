//! Provides the overhead distribution of one benchmark under one configuration (traced time divided
//! by baseline time), its summary (mean, 10% and 90% quantiles) and the pooled ALL distribution.
//!
//! Ratios are **pairwise**: value *j* of process *k* of the traced configuration divided by value *j*
//! of process *k* of the baseline. The harness interleaves processes across configurations, so the
//! two were measured seconds apart, and slow drift of the machine (frequency, other load, thermal
//! state) cancels in each ratio instead of widening the distribution. The spread of the pairwise
//! ratios is the spread of the overhead itself plus the noise of both sides, which is what a user of
//! the tracer sees run to run. When the pairing does not hold (different numbers of processes or of
//! values, e.g. a run directory assembled by hand), every traced value is divided by the baseline's
//! mean instead, and the result says so ([`Pairing::AgainstBaselineMean`]).

/// How a distribution's ratios were formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Value *j* of process *k* over value *j* of baseline process *k*.
    Pairwise,
    /// Every traced value over the baseline's mean (the processes could not be paired).
    AgainstBaselineMean,
}

/// The overhead ratios of one benchmark under one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// traced / baseline, sorted ascending; > 1 means the tracer made it slower.
    pub ratios: Vec<f64>,
    /// How they were paired.
    pub pairing: Pairing,
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

/// The ratios of `traced` over `baseline`, each given as its runs' values (calibration runs left
/// out). `None` when either side has no value.
pub fn distribution(traced: &[&[f64]], baseline: &[&[f64]]) -> Option<Distribution> {
    let paired = traced.len() == baseline.len()
        && traced.iter().zip(baseline).all(|(t, b)| t.len() == b.len());
    let (mut ratios, pairing): (Vec<f64>, _) = if paired {
        let ratios = traced
            .iter()
            .zip(baseline)
            .flat_map(|(t, b)| t.iter().zip(b.iter()).map(|(t, b)| t / b))
            .collect();
        (ratios, Pairing::Pairwise)
    } else {
        let all: Vec<f64> = baseline.iter().flat_map(|b| b.iter().copied()).collect();
        let mean = super::mean(&all)?;
        let ratios = traced
            .iter()
            .flat_map(|t| t.iter().map(|v| v / mean))
            .collect();
        (ratios, Pairing::AgainstBaselineMean)
    };
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(Distribution { ratios, pairing })
}

impl Distribution {
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

/// The ALL row: every ratio of every benchmark in one sorted sample. Benchmarks with more values
/// weigh more, as in Memray's and bench_runner's plots.
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
        // Pairwise ratios are all 1.5; against the baseline mean (1.5) they would be 1.0 and 2.0.
        let base: [&[f64]; 2] = [&[1.0, 1.0], &[2.0, 2.0]];
        let traced: [&[f64]; 2] = [&[1.5, 1.5], &[3.0, 3.0]];
        let d = distribution(&traced, &base).unwrap();
        assert_eq!(d.pairing, Pairing::Pairwise);
        assert_eq!(d.ratios, vec![1.5; 4]);
        let s = d.summary();
        assert_eq!((s.n, s.mean, s.q10, s.q90), (4, 1.5, 1.5, 1.5));
    }

    #[test]
    fn falls_back_to_the_baseline_mean_and_says_so() {
        let base: [&[f64]; 2] = [&[1.0, 1.0], &[2.0, 2.0]];
        let traced: [&[f64]; 1] = [&[3.0, 1.5]];
        let d = distribution(&traced, &base).unwrap();
        assert_eq!(d.pairing, Pairing::AgainstBaselineMean);
        assert_eq!(d.ratios, vec![1.0, 2.0]);
        assert!(distribution(&[], &base).is_none());
    }

    #[test]
    fn quantiles_worked_by_hand_and_pool() {
        // Ratios 1..=11 (over 1.0): mean 6, q10 at k = 1.0 -> 2, q90 at k = 9.0 -> 10.
        let values: Vec<f64> = (1..=11).map(f64::from).collect();
        let d = distribution(&[&values], &[&[1.0; 11]]).unwrap();
        let s = d.summary();
        assert_eq!((s.mean, s.q10, s.q90), (6.0, 2.0, 10.0));
        let e = distribution(&[&[0.5]], &[&[1.0]]).unwrap();
        let all = pool([&d, &e]);
        assert_eq!(all.len(), 12);
        assert_eq!(all[0], 0.5);
    }
}
