//! Provides the Gaussian kernel density estimate behind the violins, with Scott's bandwidth, as
//! matplotlib's `violinplot` computes it (`mlab.GaussianKDE`, `cbook.violin_stats`): `h = sd (ddof 1)
//! * n^(-1/5)`, density evaluated at 100 evenly spaced points from the sample's minimum to maximum.

/// A Gaussian KDE over one sample.
#[derive(Debug, Clone)]
pub struct Kde<'a> {
    sample: &'a [f64],
    bandwidth: f64,
}

/// Scott's rule: `sd(ddof = 1) * n^(-1/5)`. `None` for fewer than two values or zero spread.
pub fn scott_bandwidth(sample: &[f64]) -> Option<f64> {
    let sd = crate::stats::std_dev(sample, 1)?;
    (sd > 0.0).then(|| sd * (sample.len() as f64).powf(-0.2))
}

impl<'a> Kde<'a> {
    /// A KDE over `sample` with the given bandwidth (> 0).
    pub fn new(sample: &'a [f64], bandwidth: f64) -> Self {
        assert!(bandwidth > 0.0, "a KDE needs a positive bandwidth");
        Kde { sample, bandwidth }
    }

    /// The density at `x`: `sum exp(-(x - x_i)^2 / 2h^2) / (n h sqrt(2 pi))`.
    pub fn estimate(&self, x: f64) -> f64 {
        let h = self.bandwidth;
        let sum: f64 = self
            .sample
            .iter()
            .map(|xi| (-(x - xi) * (x - xi) / (2.0 * h * h)).exp())
            .sum();
        sum / (self.sample.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt())
    }
}

/// `(xs, densities)` at `points` evenly spaced coordinates from the sample's minimum to its maximum
/// (matplotlib's violin coordinates). A sample without spread (one value, or all equal) has no
/// bandwidth: it gets one point of density 1, as matplotlib's `(coords == x0)` special case.
pub fn sweep(sample: &[f64], points: usize) -> (Vec<f64>, Vec<f64>) {
    let lo = sample.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = sample.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let Some(h) = scott_bandwidth(sample) else {
        return if sample.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (vec![lo], vec![1.0])
        };
    };
    let kde = Kde::new(sample, h);
    let step = (hi - lo) / (points.max(2) - 1) as f64;
    let xs: Vec<f64> = (0..points.max(2)).map(|i| lo + step * i as f64).collect();
    let ys = xs.iter().map(|&x| kde.estimate(x)).collect();
    (xs, ys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_worked_by_hand() {
        // Sample 0, 2 with h = 1: at x = 1 both kernels are exp(-1/2) = 0.60653;
        // density = 2 * 0.60653 / (2 * sqrt(2 pi)) = 0.24197.
        let kde = Kde::new(&[0.0, 2.0], 1.0);
        assert!((kde.estimate(1.0) - 0.241_970_7).abs() < 1e-6);
        // At x = 0: (1 + exp(-2)) / (2 sqrt(2 pi)) = 1.135335 / 5.013257 = 0.226466.
        assert!((kde.estimate(0.0) - 0.226_466).abs() < 1e-6);
    }

    #[test]
    fn scott_bandwidth_worked_by_hand() {
        // 1, 2, 3, 4: sample sd = sqrt(5/3) = 1.290994; 4^(-1/5) = 0.757858 -> h = 0.978390.
        assert!((scott_bandwidth(&[1.0, 2.0, 3.0, 4.0]).unwrap() - 0.978_390).abs() < 1e-6);
        assert_eq!(scott_bandwidth(&[1.0]), None);
        assert_eq!(scott_bandwidth(&[2.0, 2.0]), None);
    }

    #[test]
    fn sweep_spans_the_sample_and_integrates_to_about_one() {
        let sample: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
        let (xs, ys) = sweep(&sample, 100);
        assert_eq!(xs.len(), 100);
        assert_eq!(xs[0], 0.0);
        assert!((xs[99] - 10.0).abs() < 1e-12);
        // Over a wide grid the density integrates to 1 (criterion's KDE property).
        let kde = Kde::new(&sample, scott_bandwidth(&sample).unwrap());
        let dx = 0.01;
        let integral: f64 = (0..3000)
            .map(|i| kde.estimate(-10.0 + i as f64 * dx) * dx)
            .sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        assert!(ys.iter().all(|y| *y > 0.0));
        assert_eq!(sweep(&[1.5, 1.5], 100), (vec![1.5], vec![1.0]));
    }
}
