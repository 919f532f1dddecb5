//! Provides the violin figures: first computed as plain data ([`Figure`], [`ViolinRow`]: KDE outline,
//! mean, 10%/90% quantiles, colours, ticks), then drawn by `draw` with plotters into PNG or SVG.
//! Like criterion's `plotters_backend/summary.rs`, the numbers are decided here and the drawing
//! code only places them.

pub mod draw;
mod font;

use crate::analysis::{ConfigAnalysis, RunAnalysis};
use crate::format::format_factor;
use crate::kde;
use crate::stats::overhead::{summarize_sorted, Estimator};

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// matplotlib's C0 (micro-benchmarks, our tracer).
pub const BLUE: Rgb = (0x1f, 0x77, 0xb4);
/// matplotlib's C3 (macro-benchmarks).
pub const RED: Rgb = (0xd6, 0x27, 0x28);
/// matplotlib's C1 (Memray).
pub const ORANGE: Rgb = (0xff, 0x7f, 0x0e);
/// matplotlib's C2 (tracemalloc).
pub const GREEN: Rgb = (0x2c, 0xa0, 0x2c);
/// matplotlib's C4 (other tracers).
pub const PURPLE: Rgb = (0x94, 0x67, 0xbd);
/// matplotlib's C7 (the pooled ALL row).
pub const GREY: Rgb = (0x7f, 0x7f, 0x7f);

/// Points of each violin's outline (matplotlib's default).
pub const KDE_POINTS: usize = 100;
/// Half the height of the fattest violin, in rows.
pub const MAX_HALF_WIDTH: f64 = 0.4;

/// One row of a violin plot.
#[derive(Debug, Clone, PartialEq)]
pub struct ViolinRow {
    /// The label left of the row (benchmark name, `ALL`, or a configuration).
    pub label: String,
    /// Fill and line colour.
    pub color: Rgb,
    /// Outline x coordinates (overhead factors, ascending).
    pub xs: Vec<f64>,
    /// Half-height of the violin at each x, in rows (the density scaled so the peak is
    /// [`MAX_HALF_WIDTH`]).
    pub half_widths: Vec<f64>,
    /// Mean of the sample.
    pub mean: f64,
    /// 10% quantile.
    pub q10: f64,
    /// 90% quantile.
    pub q90: f64,
    /// Sample size.
    pub n: usize,
    /// The A/A 10%-90% band drawn behind the row (the machine's noise at that row), if known.
    pub aa_band: Option<(f64, f64)>,
}

impl ViolinRow {
    /// A row for a sorted, non-empty sample of ratios.
    pub fn new(label: impl Into<String>, color: Rgb, sorted: &[f64]) -> Self {
        let summary = summarize_sorted(sorted);
        let (xs, density) = kde::sweep(sorted, KDE_POINTS);
        let peak = density.iter().copied().fold(0.0, f64::max);
        let half_widths = density.iter().map(|d| MAX_HALF_WIDTH * d / peak).collect();
        ViolinRow {
            label: label.into(),
            color,
            xs,
            half_widths,
            mean: summary.mean,
            q10: summary.q10,
            q90: summary.q90,
            n: summary.n,
            aa_band: None,
        }
    }

    /// The same row with the A/A band behind it.
    pub fn with_aa_band(mut self, band: Option<(f64, f64)>) -> Self {
        self.aa_band = band;
        self
    }

    /// The same row, labelled with `n` measurements behind it (the processes of a bootstrap,
    /// whose resamples are not measurements).
    pub fn measured(mut self, n: usize) -> Self {
        self.n = n;
        self
    }

    /// The filled outline as (x, y) points for a row drawn at height `y`: the upper edge left to
    /// right, then the lower edge right to left.
    pub fn outline(&self, y: f64) -> Vec<(f64, f64)> {
        let upper = self
            .xs
            .iter()
            .zip(&self.half_widths)
            .map(|(x, w)| (*x, y + w));
        let lower = self
            .xs
            .iter()
            .zip(&self.half_widths)
            .rev()
            .map(|(x, w)| (*x, y - w));
        upper.chain(lower).collect()
    }
}

/// The x axis: linear, or logarithmic when the data spans more than a factor of [`LOG_ABOVE`].
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Lower end (a factor).
    pub min: f64,
    /// Upper end.
    pub max: f64,
    /// Logarithmic scale.
    pub log: bool,
    /// Tick positions (factors), each labelled like `1.50x`.
    pub ticks: Vec<f64>,
}

/// Ratio of the largest to the smallest value above which the x axis is logarithmic.
pub const LOG_ABOVE: f64 = 4.0;

impl Axis {
    /// An axis covering `[lo, hi]` and 1.0, with 4% margins.
    pub fn covering(lo: f64, hi: f64) -> Self {
        let (lo, hi) = (lo.min(1.0), hi.max(1.0));
        let log = hi / lo > LOG_ABOVE;
        if log {
            let (l, h) = (lo.ln(), hi.ln());
            let pad = (h - l) * 0.04;
            let (min, max) = ((l - pad).exp(), (h + pad).exp());
            let ticks = log_ticks(min, max);
            Axis {
                min,
                max,
                log,
                ticks,
            }
        } else {
            let pad = ((hi - lo) * 0.04).max(0.01);
            let (min, max) = (lo - pad, hi + pad);
            Axis {
                min,
                max,
                log,
                ticks: linear_ticks(min, max),
            }
        }
    }

    /// Where `x` lies on the drawing's linear coordinate (ln x on a log axis).
    pub fn to_coord(&self, x: f64) -> f64 {
        if self.log {
            x.ln()
        } else {
            x
        }
    }

    /// Inverse of [`Axis::to_coord`].
    pub fn from_coord(&self, c: f64) -> f64 {
        if self.log {
            c.exp()
        } else {
            c
        }
    }
}

/// Ticks at a "nice" step (1, 2, 2.5 or 5 times a power of ten) giving 4 to 10 ticks.
fn linear_ticks(min: f64, max: f64) -> Vec<f64> {
    let span = max - min;
    let magnitude = 10f64.powf((span / 6.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| span / s <= 8.0)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Ticks at 1, 1.5, 2, 3, 5, 7 times powers of ten inside the range (fewer if crowded).
fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let mantissas: &[f64] = if max / min > 30.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]
    };
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(min.log10().floor());
    while decade <= max {
        for m in mantissas {
            let t = m * decade;
            if t >= min && t <= max {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A whole violin plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Title line.
    pub title: String,
    /// x axis caption.
    pub x_caption: String,
    /// Rows from the bottom (y = 0) to the top.
    pub rows: Vec<ViolinRow>,
    /// Rows below this index are separated from the rest by a line (the ALL rows sit above it).
    pub separator_below: Option<usize>,
    /// Legend entries.
    pub legend: Vec<(String, Rgb)>,
    /// The x axis.
    pub axis: Axis,
}

impl Figure {
    /// A figure of these rows, with an axis covering every outline and quantile.
    pub fn new(
        title: String,
        x_caption: String,
        rows: Vec<ViolinRow>,
        separator_below: Option<usize>,
        legend: Vec<(String, Rgb)>,
    ) -> Self {
        let band = |r: &ViolinRow| r.aa_band.map(|(a, b)| [a, b]).into_iter().flatten();
        let lo = rows
            .iter()
            .flat_map(|r| r.xs.iter().copied().chain([r.q10, r.mean]).chain(band(r)))
            .fold(f64::INFINITY, f64::min);
        let hi = rows
            .iter()
            .flat_map(|r| r.xs.iter().copied().chain([r.q90, r.mean]).chain(band(r)))
            .fold(f64::NEG_INFINITY, f64::max);
        let axis = if lo.is_finite() && hi.is_finite() {
            Axis::covering(lo, hi)
        } else {
            Axis::covering(1.0, 1.0)
        };
        Figure {
            title,
            x_caption,
            rows,
            separator_below,
            legend,
            axis,
        }
    }

    /// Pixel size: 1100 wide, 180 + 42 per row high (criterion grows its violins the same way).
    pub fn size(&self) -> (u32, u32) {
        (1100, 180 + 42 * self.rows.len().max(1) as u32)
    }
}

/// Colour of a tracer in the plot that puts configurations side by side.
pub fn tracer_color(tracer: &str) -> Rgb {
    match tracer {
        "ours" => BLUE,
        "memray" => ORANGE,
        "tracemalloc" => GREEN,
        _ => PURPLE,
    }
}

/// Display name of a tracer.
pub fn tracer_name(tracer: &str) -> &str {
    match tracer {
        "ours" => "our tracer",
        "memray" => "Memray",
        "tracemalloc" => "tracemalloc",
        "none" => "untraced",
        other => other,
    }
}

/// The x caption of every plot: what one sample of the violins is.
pub fn x_caption(estimator: Estimator) -> String {
    format!(
        "time traced / time untraced ({}; 1.00x = no overhead)",
        estimator.describe()
    )
}

/// One configuration: a row per benchmark (sorted by mean overhead, the largest at the top) and the
/// ALL row on top; micro- and macro-benchmarks in two colours. `None` without compared benchmarks.
pub fn config_figure(a: &ConfigAnalysis) -> Option<Figure> {
    if a.rows.is_empty() {
        return None;
    }
    let mut rows: Vec<ViolinRow> = a
        .rows
        .iter()
        .map(|r| {
            let color = if r.micro { BLUE } else { RED };
            let band = a
                .noise
                .as_ref()
                .and_then(|n| n.per_bench.get(&r.name).copied());
            ViolinRow::new(&r.name, color, &r.overhead.ratios)
                .measured(r.overhead.measured())
                .with_aa_band(band)
        })
        .collect();
    rows.sort_by(|x, y| x.mean.total_cmp(&y.mean));
    let separator = rows.len();
    rows.push(
        ViolinRow::new("ALL", GREY, &a.all)
            .measured(a.measured())
            .with_aa_band(a.noise.as_ref().map(|n| n.pooled)),
    );
    let mut legend = Vec::new();
    if a.rows.iter().any(|r| r.micro) {
        legend.push(("micro-benchmark".to_string(), BLUE));
    }
    if a.rows.iter().any(|r| !r.micro) {
        legend.push(("macro-benchmark (apps)".to_string(), RED));
    }
    legend.push(("ALL (every benchmark pooled)".to_string(), GREY));
    let title = format!(
        "Overhead of {}: {} [{}]",
        tracer_name(a.config.tracer()),
        a.config.display(),
        a.config.name
    );
    Some(Figure::new(
        title,
        x_caption(a.estimator),
        rows,
        Some(separator),
        legend,
    ))
}

/// Every configuration's ALL row side by side (ours, and Memray's and tracemalloc's when they were
/// run), coloured by tracer, the first configuration at the top. `None` without any.
pub fn all_configs_figure(run: &RunAnalysis) -> Option<Figure> {
    let mut rows: Vec<ViolinRow> = run
        .configs
        .iter()
        .filter(|a| !a.all.is_empty())
        .map(|a| {
            let label = format!("{} [{}]", a.config.display(), a.config.name);
            ViolinRow::new(label, tracer_color(a.config.tracer()), &a.all)
                .measured(a.measured())
                .with_aa_band(a.noise.as_ref().map(|n| n.pooled))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    rows.reverse();
    let mut legend: Vec<(String, Rgb)> = Vec::new();
    for a in &run.configs {
        let entry = (
            tracer_name(a.config.tracer()).to_string(),
            tracer_color(a.config.tracer()),
        );
        if !legend.contains(&entry) {
            legend.push(entry);
        }
    }
    Some(Figure::new(
        "Overhead of every configuration: ALL benchmarks pooled".to_string(),
        x_caption(run.estimator),
        rows,
        None,
        legend,
    ))
}

/// One run's analysis in a comparison across Python versions, labelled by its Python.
pub struct VersionRun<'a> {
    /// `3.14.0`, or `3.11.7 (run 2)` when two runs share a version.
    pub label: String,
    /// The run's analysis.
    pub analysis: &'a RunAnalysis,
}

/// Colours of the Python versions in [`versions_figure`], in order.
const VERSION_COLORS: [Rgb; 6] = [BLUE, ORANGE, GREEN, PURPLE, RED, GREY];

/// The ALL row of every (configuration, Python version): configurations in the order of the first
/// run that has them, the top one first; within one, a row per run in the order given (oldest
/// Python first), coloured by version. `None` without any ALL row.
pub fn versions_figure(runs: &[VersionRun]) -> Option<Figure> {
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        for a in &r.analysis.configs {
            if !names.contains(&a.config.name.as_str()) {
                names.push(&a.config.name);
            }
        }
    }
    let mut rows = Vec::new();
    for name in &names {
        for (i, r) in runs.iter().enumerate() {
            let Some(a) = r.analysis.configs.iter().find(|a| a.config.name == *name) else {
                continue;
            };
            if a.all.is_empty() {
                continue;
            }
            let label = format!("{} [{}] · Python {}", a.config.display(), name, r.label);
            let color = VERSION_COLORS[i % VERSION_COLORS.len()];
            rows.push(ViolinRow::new(label, color, &a.all).measured(a.measured()));
        }
    }
    if rows.is_empty() {
        return None;
    }
    rows.reverse();
    let legend = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                format!("Python {}", r.label),
                VERSION_COLORS[i % VERSION_COLORS.len()],
            )
        })
        .collect();
    Some(Figure::new(
        "Overhead across Python versions: ALL benchmarks pooled".to_string(),
        x_caption(runs[0].analysis.estimator),
        rows,
        None,
        legend,
    ))
}

/// The tick label of an overhead factor: `1.50x`.
pub fn tick_label(x: f64) -> String {
    format_factor(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violin_row_scales_the_density_peak_and_keeps_the_summary() {
        let sample: Vec<f64> = (0..50).map(|i| 1.0 + (i as f64) / 100.0).collect();
        let row = ViolinRow::new("x", BLUE, &sample);
        assert_eq!(row.xs.len(), KDE_POINTS);
        let peak = row.half_widths.iter().copied().fold(0.0, f64::max);
        assert!((peak - MAX_HALF_WIDTH).abs() < 1e-12);
        assert!((row.mean - 1.245).abs() < 1e-12);
        // q10: k = 4.9 -> 1.049; q90: k = 44.1 -> 1.441.
        assert!((row.q10 - 1.049).abs() < 1e-9 && (row.q90 - 1.441).abs() < 1e-9);
        let outline = row.outline(3.0);
        assert_eq!(outline.len(), 2 * KDE_POINTS);
        assert!(outline[..KDE_POINTS].iter().all(|(_, y)| *y >= 3.0));
        assert!(outline[KDE_POINTS..].iter().all(|(_, y)| *y <= 3.0));
    }

    #[test]
    fn axis_is_linear_for_small_spans_and_logarithmic_for_large() {
        let lin = Axis::covering(1.02, 1.6);
        assert!(!lin.log && lin.min < 1.0 && lin.max > 1.6);
        assert!(lin.ticks.contains(&1.0) || lin.ticks.iter().any(|t| (t - 1.0).abs() < 1e-9));
        assert!(
            lin.ticks.len() >= 4 && lin.ticks.len() <= 10,
            "{:?}",
            lin.ticks
        );
        let log = Axis::covering(1.1, 14.0);
        assert!(log.log);
        assert_eq!(log.ticks, vec![1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0]);
        assert!((log.from_coord(log.to_coord(3.0)) - 3.0).abs() < 1e-12);
        assert_eq!(tick_label(1.5), "1.50x");
    }
}
