//! Provides pyperf's significance test (`pyperf/_utils.py is_significant`): Student's two-sample,
//! two-tailed, equal-variance t-test at 95%, with pyperf's table of critical values.
//!
//! pyperf's `is_significant_benchs` turns every failure of the test (unequal sample sizes, zero
//! variance) into "significant". Here a failure is an [`Untestable`] value instead, and each caller
//! says what it shows for it.

/// pyperf's `_T_DIST_95_CONF_LEVELS`, indexed by degrees of freedom (0 to 30).
const T_DIST_95: [f64; 31] = [
    0.0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
    2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060,
    2.056, 2.052, 2.048, 2.045, 2.042,
];

/// The outcome of the test on two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Significance {
    /// `|t| >= critical value`.
    Significant {
        /// The t score.
        t: f64,
    },
    /// `|t| < critical value`.
    NotSignificant {
        /// The t score.
        t: f64,
    },
    /// Both samples hold one value: pyperf calls that significant without a t score.
    SingleValues,
    /// The test could not be computed.
    Untestable(Untestable),
}

/// Why the t-test could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Untestable {
    /// pyperf's `tscore` refuses samples of different sizes.
    #[error("the samples have different sizes ({0} and {1})")]
    UnequalSizes(usize, usize),
    /// Fewer than two values in all: no degrees of freedom.
    #[error("too few values")]
    TooFewValues,
    /// Every value of both samples equals its sample's mean: the t score divides by zero.
    #[error("both samples have zero variance")]
    ZeroVariance,
}

impl Significance {
    /// Whether pyperf's `compare_to` shows the result as significant: a failed test counts as
    /// significant there (`is_significant_benchs` catches the error).
    pub fn shown_as_significant(&self) -> bool {
        !matches!(self, Significance::NotSignificant { .. })
    }

    /// Whether the test itself says significant (a failed test does not).
    pub fn is_significant(&self) -> bool {
        matches!(
            self,
            Significance::Significant { .. } | Significance::SingleValues
        )
    }
}

/// pyperf's `tdist95conf_level(df)`.
pub fn critical_value(df: usize) -> f64 {
    match df {
        200.. => 1.960,
        100.. => 1.984,
        80.. => 1.990,
        60.. => 2.000,
        50.. => 2.009,
        40.. => 2.021,
        31.. => T_DIST_95[30],
        _ => T_DIST_95[df],
    }
}

/// pyperf's `tscore(sample1, sample2)`: `(mean1 - mean2) / sqrt(2 pooled / n)`.
pub fn t_score(a: &[f64], b: &[f64]) -> Result<f64, Untestable> {
    if a.len() != b.len() {
        return Err(Untestable::UnequalSizes(a.len(), b.len()));
    }
    if a.len() < 2 {
        return Err(Untestable::TooFewValues);
    }
    let df = (a.len() + b.len() - 2) as f64;
    let (mean_a, mean_b) = (super::mean(a).unwrap(), super::mean(b).unwrap());
    let squares = |v: &[f64], m: f64| v.iter().map(|x| (x - m) * (x - m)).sum::<f64>();
    let pooled = (squares(a, mean_a) + squares(b, mean_b)) / df;
    if pooled == 0.0 {
        return Err(Untestable::ZeroVariance);
    }
    Ok((mean_a - mean_b) / (2.0 * pooled / a.len() as f64).sqrt())
}

/// pyperf's `is_significant_benchs(ref, changed)` without its catch-all: both samples of one value
/// are [`Significance::SingleValues`], a failed t score is [`Significance::Untestable`].
pub fn significance(reference: &[f64], changed: &[f64]) -> Significance {
    if reference.len() == 1 && changed.len() == 1 {
        return Significance::SingleValues;
    }
    match t_score(reference, changed) {
        Ok(t) => {
            let critical = critical_value(reference.len() + changed.len() - 2);
            if t.abs() >= critical {
                Significance::Significant { t }
            } else {
                Significance::NotSignificant { t }
            }
        }
        Err(e) => Significance::Untestable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_values_follow_pyperf_table() {
        assert_eq!(critical_value(1), 12.706);
        assert_eq!(critical_value(10), 2.228);
        assert_eq!(critical_value(30), 2.042);
        assert_eq!(critical_value(34), 2.042);
        assert_eq!(critical_value(40), 2.021);
        assert_eq!(critical_value(99), 1.990);
        assert_eq!(critical_value(250), 1.960);
    }

    #[test]
    fn t_score_worked_by_hand() {
        // a = 1, 2, 3 (mean 2, squares 2), b = 4, 5, 6 (mean 5, squares 2): pooled = 4 / 4 = 1,
        // t = (2 - 5) / sqrt(2 / 3) = -3.674; df 4, critical 2.776 -> significant.
        let t = t_score(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((t - (-3.0 / (2.0f64 / 3.0).sqrt())).abs() < 1e-12);
        assert!(matches!(
            significance(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]),
            Significance::Significant { .. }
        ));
        // b = 2, 3, 4: t = -1 / sqrt(2/3) = -1.22 -> not significant.
        assert!(matches!(
            significance(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]),
            Significance::NotSignificant { .. }
        ));
    }

    #[test]
    fn failures_are_reported_not_hidden() {
        let s = significance(&[1.0, 2.0], &[1.0, 2.0, 3.0]);
        assert_eq!(s, Significance::Untestable(Untestable::UnequalSizes(2, 3)));
        assert!(s.shown_as_significant() && !s.is_significant());
        let z = significance(&[1.0, 1.0], &[2.0, 2.0]);
        assert_eq!(z, Significance::Untestable(Untestable::ZeroVariance));
        assert_eq!(significance(&[1.0], &[2.0]), Significance::SingleValues);
    }
}
