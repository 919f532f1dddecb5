//! Provides the HPT reliability figures of faster-cpython's bench_runner (`bench_runner/hpt.py`,
//! itself a port of PARSEC's `toolkit/hpt/hpt.sh`; Chen et al., "Statistical Performance Comparisons
//! of Computers", HPCA 2012).
//!
//! Per benchmark a rank-sum test compares the two samples ([`unibench`]); across benchmarks a signed
//! rank test over the per-benchmark median differences gives the probability that one side is
//! faster ([`crossbench`]). [`maxspeedup`] then searches, digit by digit, the largest factor by
//! which the changed side can be scaled and still be reliably faster (or slower).
//!
//! Kept from the original on purpose, so our figures equal faster-cpython's: the rank-sum bounds
//! use `qnorm(0.1) < 0`, so the "significant" test in [`unibench`] is always true and every
//! benchmark's median difference counts; differences are in raw units, not normalised.

/// Why HPT could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HptError {
    /// A benchmark whose two samples differ in size (the rank-sum split needs equal halves).
    #[error(
        "benchmark {0:?} has {1} values on one side and {2} on the other (HPT needs equal counts)"
    )]
    UnequalSizes(String, usize, usize),
    /// A benchmark with fewer than 12 values per side (the normal approximation's table starts there).
    #[error("benchmark {0:?} has {1} values per side (HPT needs at least 12)")]
    TooFewValues(String, usize),
    /// No benchmark at all.
    #[error("no benchmark to compare")]
    Empty,
}

/// Coefficients of `qnorm`'s polynomial (hpt.py).
const QNORM_B: [f64; 11] = [
    1.570796288,
    0.03706987906,
    -0.0008364353589,
    -0.0002250947176,
    6.841218299e-6,
    5.824238515e-6,
    -1.04527497e-6,
    8.360937017e-8,
    -3.231081277e-9,
    3.657763036e-11,
    6.936233982e-13,
];

/// Approximate inverse of the standard normal CDF (hpt.py `qnorm`).
pub fn qnorm(p: f64) -> f64 {
    let y = -(4.0 * p * (1.0 - p)).ln();
    let u = QNORM_B
        .iter()
        .enumerate()
        .map(|(k, b)| b * y.powi(k as i32 + 1))
        .sum::<f64>()
        .sqrt();
    if p < 0.5 {
        -u
    } else {
        u
    }
}

/// Standard normal CDF, Abramowitz–Stegun 26.2.17 (hpt.py `cdfnorm`).
pub fn cdfnorm(x: f64) -> f64 {
    let k = 1.0 / (1.0 + 0.2316419 * x.abs());
    let poly = ((((1.330274429 * k - 1.821255978) * k + 1.781477937) * k - 0.356563728) * k
        + 0.31938153)
        * k;
    let t = (-x * x / 2.0).exp() * poly / (2.0 * std::f64::consts::PI).sqrt();
    if x > 0.0 {
        1.0 - t
    } else {
        t
    }
}

/// `rank_i = 1 + #{x_j < x_i}` and `rep_i = #{x_j == x_i}` for every element.
fn ranks(x: &[f64]) -> Vec<(f64, f64)> {
    x.iter()
        .map(|xi| {
            let below = x.iter().filter(|xj| *xj < xi).count();
            let equal = x.iter().filter(|xj| *xj == xi).count();
            (1.0 + below as f64, equal as f64)
        })
        .collect()
}

/// The rank-sum acceptance bounds `(lower, upper)` for `n` values per side at `alpha`
/// (hpt.py `ranksum_table`). With `alpha = 0.1`, `lower > upper` (see the module docs).
pub fn ranksum_bounds(n: usize, alpha: f64) -> (f64, f64) {
    let n = n as f64;
    let mu = n * (2.0 * n + 1.0) / 2.0;
    let sd = ((2.0 * n + 1.0) / 3.0).sqrt() * n / 2.0;
    let q = qnorm(alpha);
    (mu - q * sd, mu + q * sd)
}

/// One benchmark (hpt.py `unibench`): `x` holds the `n` changed values, then the `n` reference
/// values. Returns `median(changed) - median(reference)` when the rank-sum statistic falls outside
/// the bounds (always, see the module docs), else `None`.
pub fn unibench(x: &[f64]) -> Option<f64> {
    let n = x.len() / 2;
    let r = ranks(x);
    let wl: f64 = r[..n]
        .iter()
        .map(|(rank, rep)| rank + ((*rep as i64 - 1).div_euclid(2)) as f64)
        .sum();
    let (lower, upper) = ranksum_bounds(n, 0.1);
    if wl <= lower || wl >= upper {
        Some(super::median(&x[..n])? - super::median(&x[n..])?)
    } else {
        None
    }
}

/// Across benchmarks (hpt.py `crossbench`): a Wilcoxon signed-rank statistic over the per-benchmark
/// differences (NaN for a benchmark without a difference: counted in N, in no sum). Returns `(cdf, wp, wn)`: the normal CDF of the positive sum's z score, and the
/// positive and negative rank sums.
pub fn crossbench(d: &[f64]) -> (f64, f64, f64) {
    let abs: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    let r = ranks(&abs);
    let (mut wz, mut wp, mut wn) = (0.0, 0.0, 0.0);
    for (v, (rank, rep)) in d.iter().zip(&r) {
        // A benchmark whose rank-sum test did not reject (NaN, unreachable with the inverted
        // bounds) has no sign: hpt.py counts it in N but in none of the sums.
        if v.is_nan() {
            continue;
        }
        if *v == 0.0 {
            wz += rank / 2.0 + rep / 4.0 - 0.25;
        } else if *v > 0.0 {
            wp += rank + rep / 2.0 - 0.5;
        } else {
            wn += rank + rep / 2.0 - 0.5;
        }
    }
    wp += wz;
    wn += wz;
    let n = d.len() as f64;
    let z = (wp - n * (n + 1.0) / 4.0) / (n * (n + 1.0) * (2.0 * n + 1.0) / 24.0).sqrt();
    (cdfnorm(z), wp, wn)
}

/// One benchmark's two samples: `changed` (hpt.py's `a`, the head) and `reference` (`b`).
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    /// Benchmark name, for error messages.
    pub name: &'a str,
    /// The changed side's values (the traced configuration).
    pub changed: &'a [f64],
    /// The reference side's values (the baseline).
    pub reference: &'a [f64],
}

fn check(pairs: &[Pair]) -> Result<(), HptError> {
    if pairs.is_empty() {
        return Err(HptError::Empty);
    }
    for p in pairs {
        if p.changed.len() != p.reference.len() {
            return Err(HptError::UnequalSizes(
                p.name.to_string(),
                p.changed.len(),
                p.reference.len(),
            ));
        }
        if p.changed.len() < 12 {
            return Err(HptError::TooFewValues(p.name.to_string(), p.changed.len()));
        }
    }
    Ok(())
}

/// hpt.py `hpt_basic(a, b, multi)`: every benchmark's changed values scaled by `multi`.
fn hpt_basic(pairs: &[Pair], multi: f64) -> (f64, f64, f64) {
    let d: Vec<f64> = pairs
        .iter()
        .map(|p| {
            let x: Vec<f64> = p
                .changed
                .iter()
                .map(|v| v * multi)
                .chain(p.reference.iter().copied())
                .collect();
            unibench(&x).unwrap_or(f64::NAN)
        })
        .collect();
    crossbench(&d)
}

/// The HPT report of one comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HptReport {
    /// Probability that the changed side is faster (if `faster`) or slower (otherwise).
    pub reliability: f64,
    /// Whether the changed side is faster (`wp < wn`).
    pub faster: bool,
    /// The speedup (if `faster`) or slowdown reached with 90%, 95% and 99% reliability; `None`
    /// where the search overflowed (more than 10x) or found no factor (hpt.py prints nothing then).
    pub at_90: Option<f64>,
    /// See `at_90`.
    pub at_95: Option<f64>,
    /// See `at_90`; the headline "HPT 99th percentile".
    pub at_99: Option<f64>,
}

/// hpt.py `maxspeedup`: the largest factor, to two decimals, by which the changed side can be
/// made slower (if `faster`) or faster (otherwise) and still be `reli`-reliably faster (slower).
/// `None` when it exceeds 10 (hpt.py returns -1) or is 0.
pub fn maxspeedup(pairs: &[Pair], reli: f64, faster: bool) -> Option<f64> {
    let still_holds = |su: f64| {
        if faster {
            hpt_basic(pairs, su).0 < 1.0 - reli
        } else {
            hpt_basic(pairs, 1.0 / su).0 > reli
        }
    };
    if still_holds(10.0) {
        return None;
    }
    let (mut step, mut scale, mut lo, mut hi, mut base) = (-1, 1.0, 1u32, 10u32, 0.0);
    while step < 2 {
        let mid = (hi - lo) / 2 + lo;
        let su = base + scale * mid as f64;
        if still_holds(su) {
            lo = mid;
        } else {
            hi = mid;
        }
        if lo == hi - 1 {
            base += lo as f64 * scale;
            scale /= 10.0;
            step += 1;
            lo = 0;
            hi = 10;
        }
    }
    (base > 0.0).then_some(base)
}

/// hpt.py `make_report`: reliability and the 90/95/99% figures for `pairs`. Each pair needs equal
/// counts of at least 12 values per side.
pub fn report(pairs: &[Pair]) -> Result<HptReport, HptError> {
    check(pairs)?;
    let (cdf, wp, wn) = hpt_basic(pairs, 1.0);
    let faster = wp < wn;
    let reliability = if faster { 1.0 - cdf } else { cdf };
    Ok(HptReport {
        reliability,
        faster,
        at_90: maxspeedup(pairs, 0.90, faster),
        at_95: maxspeedup(pairs, 0.95, faster),
        at_99: maxspeedup(pairs, 0.99, faster),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qnorm_and_cdfnorm_agree_with_normal_tables() {
        // Normal table: Phi^-1(0.1) = -1.2816, Phi^-1(0.975) = 1.9600, Phi(1) = 0.8413.
        assert!((qnorm(0.1) + 1.2816).abs() < 1e-3);
        assert!((qnorm(0.975) - 1.96).abs() < 1e-3);
        assert!((cdfnorm(1.0) - 0.8413).abs() < 1e-4);
        assert!((cdfnorm(-1.0) - 0.1587).abs() < 1e-4);
        assert!((cdfnorm(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn ranksum_bounds_are_inverted_as_in_the_original() {
        // research notes: n = 30 gives lower 1001.7 and upper 828.3.
        let (lower, upper) = ranksum_bounds(30, 0.1);
        assert!((lower - 1001.7).abs() < 0.1, "{lower}");
        assert!((upper - 828.3).abs() < 0.1, "{upper}");
    }

    #[test]
    fn unibench_is_the_median_difference() {
        // changed 1..=12, reference 11..=22: medians 6.5 and 16.5.
        let x: Vec<f64> = (1..=12).chain(11..=22).map(f64::from).collect();
        assert_eq!(unibench(&x), Some(-10.0));
    }

    #[test]
    fn crossbench_worked_by_hand() {
        // d = [1, -2, 3, 0]: |d| ranks 2, 3, 4, 1 (no ties, rep 1).
        // wz = 1/2 + 1/4 - 1/4 = 0.5; wp = (2 + 0) + (4 + 0) + 0.5 = 6.5; wn = 3 + 0.5 = 3.5.
        // z = (6.5 - 5) / sqrt(4 * 5 * 9 / 24) = 1.5 / sqrt(7.5) = 0.5477; Phi(0.5477) = 0.7081.
        let (cdf, wp, wn) = crossbench(&[1.0, -2.0, 3.0, 0.0]);
        assert_eq!((wp, wn), (6.5, 3.5));
        assert!((cdf - 0.7081).abs() < 1e-3, "{cdf}");
        // Ties: d = [1, 1, -1]: ranks 1, 1, 1, reps 3: wp = 2 * (1 + 1.5 - 0.5) = 4, wn = 2.
        let (_, wp, wn) = crossbench(&[1.0, 1.0, -1.0]);
        assert_eq!((wp, wn), (4.0, 2.0));
        // NaN: in N (z = (3 - 3) / sqrt(3 * 4 * 7 / 24) with wp = 1 + 2 = 3 -> 0 -> 0.5), in no sum.
        let (cdf, wp, wn) = crossbench(&[1.0, 2.0, f64::NAN]);
        assert_eq!((wp, wn), (3.0, 0.0));
        assert!((cdf - 0.5).abs() < 1e-7, "{cdf}");
    }

    fn sample(center: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| center * (1.0 + 0.001 * (i as f64 - n as f64 / 2.0)))
            .collect()
    }

    #[test]
    fn report_finds_a_uniform_slowdown() {
        // Ten benchmarks, each changed side 1.503x the reference (spread +-0.6%): every median
        // difference is positive, so wp = 55, wn = 0, z = 27.5 / sqrt(96.25) = 2.803, reliability
        // 99.75%. Scaled down by 1.50 the changed side is still slower everywhere (99.75% > 99%),
        // by 1.51 it is faster everywhere: digit by digit the search stops at 1.50.
        let refs: Vec<Vec<f64>> = (1..=10).map(|i| sample(i as f64, 12)).collect();
        let changed: Vec<Vec<f64>> = refs
            .iter()
            .map(|r| r.iter().map(|v| v * 1.503).collect())
            .collect();
        let names: Vec<String> = (1..=10).map(|i| format!("b{i}")).collect();
        let pairs: Vec<Pair> = (0..10)
            .map(|i| Pair {
                name: &names[i],
                changed: &changed[i],
                reference: &refs[i],
            })
            .collect();
        let r = report(&pairs).unwrap();
        assert!(!r.faster);
        assert!(
            (r.reliability - cdfnorm(27.5 / (10.0 * 11.0 * 21.0 / 24.0f64).sqrt())).abs() < 1e-12
        );
        assert!(r.reliability > 0.997);
        assert_eq!(r.at_99, Some(1.5));
        assert_eq!(r.at_90, Some(1.5));
    }

    #[test]
    fn report_refuses_what_hpt_py_refuses() {
        let a = sample(1.0, 11);
        let b = sample(1.0, 12);
        let short = [Pair {
            name: "x",
            changed: &a,
            reference: &a,
        }];
        assert_eq!(report(&short), Err(HptError::TooFewValues("x".into(), 11)));
        let uneven = [Pair {
            name: "y",
            changed: &a,
            reference: &b,
        }];
        assert_eq!(
            report(&uneven),
            Err(HptError::UnequalSizes("y".into(), 11, 12))
        );
        assert_eq!(report(&[]), Err(HptError::Empty));
    }
}
