//! Provides faster-cpython's memory change (bench_runner `result.py`: `get_memory_data`,
//! `_get_combined_data`, the `memory change` line): per benchmark the traced / baseline ratio of the
//! workers' peak RSS (`mem_max_rss`), then the arithmetic mean over the significant benchmarks.

use super::ttest::{significance, Significance};

/// One benchmark's peak-RSS samples, one value per worker process.
#[derive(Debug, Clone, Copy)]
pub struct MemoryPair<'a> {
    /// Benchmark name.
    pub name: &'a str,
    /// Traced configuration (bench_runner's head).
    pub traced: &'a [f64],
    /// Baseline (ref).
    pub baseline: &'a [f64],
}

/// One benchmark's memory comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEntry {
    /// Benchmark name.
    pub name: String,
    /// Mean of the ratios, `None` when the t-test says not significant.
    pub mean_ratio: Option<f64>,
}

/// Values within two population standard deviations of the mean (strict `<`, as bench_runner).
fn without_outliers(values: &[f64]) -> Vec<f64> {
    let (Some(m), Some(sd)) = (super::mean(values), super::std_dev(values, 0)) else {
        return Vec::new();
    };
    let kept: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| (v - m).abs() < 2.0 * sd)
        .collect();
    // With zero spread nothing is strictly closer than 0: keep the values (bench_runner would get
    // an empty array and a NaN mean here).
    if kept.is_empty() {
        values.to_vec()
    } else {
        kept
    }
}

/// bench_runner's `_get_combined_data(head, ref)` for one benchmark: `None` when the two sides have
/// different counts (bench_runner skips those); when both sides have more than three values, not
/// significant if pyperf's t-test says so, else outliers are dropped on each side; then the mean of
/// all traced / baseline ratios (`outer(head, 1/ref)`).
pub fn compare(pair: &MemoryPair) -> Option<MemoryEntry> {
    if pair.traced.len() != pair.baseline.len() || pair.traced.is_empty() {
        return None;
    }
    let name = pair.name.to_string();
    let (mut traced, mut baseline) = (pair.traced.to_vec(), pair.baseline.to_vec());
    if pair.traced.len() > 3 {
        let s = significance(pair.traced, pair.baseline);
        let not_significant = match s {
            Significance::NotSignificant { .. } => true,
            // Zero variance on both sides: the samples differ exactly when their means do.
            Significance::Untestable(_) => super::mean(pair.traced) == super::mean(pair.baseline),
            _ => false,
        };
        if not_significant {
            return Some(MemoryEntry {
                name,
                mean_ratio: None,
            });
        }
        // Outliers are dropped only here, with the t-test (bench_runner's `calculate_diffs`).
        traced = without_outliers(&traced);
        baseline = without_outliers(&baseline);
    }
    let ratios: Vec<f64> = traced
        .iter()
        .flat_map(|t| baseline.iter().map(move |b| t / b))
        .collect();
    Some(MemoryEntry {
        name,
        mean_ratio: super::mean(&ratios),
    })
}

/// The `memory change` figure: arithmetic mean of the significant entries' mean ratios, `None`
/// ("unknown") when no entry is significant.
pub fn memory_change(entries: &[MemoryEntry]) -> Option<f64> {
    let means: Vec<f64> = entries.iter().filter_map(|e| e.mean_ratio).collect();
    super::mean(&means)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_peaks_worked_by_hand() {
        // Traced 110, 120 / baseline 100, 100 (two values each: no t-test below four).
        // Ratios 1.1, 1.1, 1.2, 1.2 -> mean 1.15.
        let e = compare(&MemoryPair {
            name: "a",
            traced: &[110.0, 120.0],
            baseline: &[100.0, 100.0],
        })
        .unwrap();
        assert!((e.mean_ratio.unwrap() - 1.15).abs() < 1e-12);
    }

    #[test]
    fn insignificant_entries_do_not_count() {
        let same = compare(&MemoryPair {
            name: "same",
            traced: &[100.0, 101.0, 99.0, 100.0],
            baseline: &[100.0, 99.0, 101.0, 100.0],
        })
        .unwrap();
        assert_eq!(same.mean_ratio, None);
        let double = compare(&MemoryPair {
            name: "double",
            traced: &[200.0, 200.0, 200.0, 200.0],
            baseline: &[100.0, 100.0, 100.0, 100.0],
        })
        .unwrap();
        assert_eq!(double.mean_ratio, Some(2.0));
        assert_eq!(memory_change(&[same.clone(), double]), Some(2.0));
        assert_eq!(memory_change(&[same]), None);
        assert!(compare(&MemoryPair {
            name: "x",
            traced: &[1.0],
            baseline: &[1.0, 2.0]
        })
        .is_none());
    }

    #[test]
    fn outliers_beyond_two_sigma_are_dropped() {
        // 100 x 9 and 1000: mean 190, population sd 270; 1000 is 810 away (> 540): dropped.
        let mut v = vec![100.0; 9];
        v.push(1000.0);
        assert_eq!(without_outliers(&v), vec![100.0; 9]);
    }
}
