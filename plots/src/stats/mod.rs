//! Provides the pure statistics of the report: summary numbers of one sample (this module), pyperf's
//! significance test (`ttest`), the overhead distributions and their summaries (`overhead`),
//! faster-cpython's memory change (`memory`) and its HPT reliability figures (`hpt`).
//!
//! Nothing here reads files; every function takes slices and returns numbers. Where a statistic
//! copies another tool's definition (pyperf, bench_runner, numpy), the doc comment names it, so a
//! result can be checked against that tool. docs/statistics.md explains the choices.

pub mod hpt;
pub mod memory;
pub mod overhead;
pub mod ttest;

/// Arithmetic mean, `None` for an empty sample.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Standard deviation with `ddof` degrees of freedom removed (`numpy.std(v, ddof=…)`): 0 for the
/// population deviation, 1 for the sample deviation. `None` when `len <= ddof`.
pub fn std_dev(values: &[f64], ddof: usize) -> Option<f64> {
    if values.len() <= ddof {
        return None;
    }
    let m = mean(values)?;
    let squares: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((squares / (values.len() - ddof) as f64).sqrt())
}

/// The `p` quantile (`0 <= p <= 1`) with linear interpolation between the closest ranks: pyperf's
/// `_utils.percentile` and numpy's default `np.percentile(v, 100 p)`. `None` for an empty sample
/// or a `p` outside `[0, 1]`.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(percentile_of_sorted(&sorted, p))
}

/// [`percentile`] of an already sorted, non-empty sample.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    let k = (sorted.len() - 1) as f64 * p;
    let (f, c) = (k.floor(), k.ceil());
    if f == c {
        sorted[k as usize]
    } else {
        sorted[f as usize] * (c - k) + sorted[c as usize] * (k - f)
    }
}

/// The median (`numpy.median`: the mean of the two middle values of an even-sized sample).
pub fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 0.5)
}

/// Geometric mean of positive numbers, as Python's `statistics.geometric_mean`
/// (`exp(mean(ln x))`), which pyperf uses for its "Geometric mean" row. `None` for an empty
/// sample or any value that is not positive and finite.
pub fn geometric_mean(values: &[f64]) -> Option<f64> {
    if values.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
    mean(&logs).map(f64::exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        // Worked by hand: 4 values, p = 0.1 -> k = 0.3 -> 1 * 0.7 + 2 * 0.3 = 1.3;
        // p = 0.9 -> k = 2.7 -> 3 * 0.3 + 10 * 0.7 = 7.9.
        let v = [10.0, 1.0, 3.0, 2.0];
        assert!((percentile(&v, 0.1).unwrap() - 1.3).abs() < 1e-12);
        assert!((percentile(&v, 0.9).unwrap() - 7.9).abs() < 1e-12);
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(10.0));
        assert_eq!(median(&v), Some(2.5));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&v, 1.5), None);
    }

    #[test]
    fn geometric_mean_and_deviations() {
        // 2 and 8: sqrt(16) = 4; 1, 10, 100: 10.
        assert!((geometric_mean(&[2.0, 8.0]).unwrap() - 4.0).abs() < 1e-12);
        assert!((geometric_mean(&[1.0, 10.0, 100.0]).unwrap() - 10.0).abs() < 1e-12);
        assert_eq!(geometric_mean(&[1.0, 0.0]), None);
        assert_eq!(geometric_mean(&[]), None);
        // 2, 4, 4, 4, 5, 5, 7, 9: population sd 2, sample sd sqrt(32/7).
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!((std_dev(&v, 0).unwrap() - 2.0).abs() < 1e-12);
        assert!((std_dev(&v, 1).unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(std_dev(&[1.0], 1), None);
    }
}
