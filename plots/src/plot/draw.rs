//! Provides the drawing of a [`Figure`] with plotters, into PNG bytes or SVG text. plotters has no
//! violin: each row is a filled polygon of its KDE outline, with a solid mean line, dotted 10% and
//! 90% lines and its mean written beside it; a vertical line marks 1.00x.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{font, Figure, Rgb};

/// A drawing error (plotters' errors are generic over the backend; they are flattened to text).
#[derive(Debug, thiserror::Error)]
#[error("failed to draw the plot: {0}")]
pub struct DrawError(String);

fn err(e: impl std::fmt::Display) -> DrawError {
    DrawError(e.to_string())
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Fill of the A/A bands: a light grey that the violins' fills stay readable over.
const AA_BAND: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);

/// Height in rows of a dash and of a gap in the dotted quantile lines.
const DOT: f64 = 0.045;
/// Half-height of the mean and quantile lines, in rows.
const LINE_HALF: f64 = 0.36;

/// Dash segments of a vertical dotted line at `x` from `y0` to `y1`.
fn dots(x: f64, y0: f64, y1: f64) -> Vec<[(f64, f64); 2]> {
    let mut segments = Vec::new();
    let mut y = y0;
    while y < y1 {
        segments.push([(x, y), (x, (y + DOT).min(y1))]);
        y += 2.0 * DOT;
    }
    segments
}

fn draw_on<DB: DrawingBackend>(fig: &Figure, root: DrawingArea<DB, Shift>) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    font::register().map_err(err)?;
    root.fill(&WHITE).map_err(err)?;
    let axis = &fig.axis;
    let n = fig.rows.len() as f64;
    let name_font = TextStyle::from((font::FAMILY, 15).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    let mut label_width = 60;
    for row in &fig.rows {
        let (w, _) = root
            .estimate_text_size(&row.label, &name_font)
            .map_err(err)?;
        label_width = label_width.max(w + 24);
    }
    let label_width = label_width.min(fig.size().0 / 2);
    let (x0, x1) = (axis.to_coord(axis.min), axis.to_coord(axis.max));
    let ticks: Vec<f64> = axis.ticks.iter().map(|t| axis.to_coord(*t)).collect();

    let mut chart = ChartBuilder::on(&root)
        .caption(
            &fig.title,
            (font::FAMILY, 20).into_font().style(FontStyle::Bold),
        )
        .margin(14)
        .margin_right(120)
        .margin_bottom(34)
        .x_label_area_size(48)
        .y_label_area_size(label_width)
        .build_cartesian_2d(x0..x1, -0.6..n - 0.4)
        .map_err(err)?;
    // The mesh draws only the axes and the caption; ticks are ours (a log axis is drawn as ln x on a
    // linear coordinate, so plotters' own tick positions would not be round factors).
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc(&fig.x_caption)
        .axis_desc_style((font::FAMILY, 14))
        .draw()
        .map_err(err)?;
    let tick_style = TextStyle::from((font::FAMILY, 14).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (tick, c) in axis.ticks.iter().zip(&ticks) {
        chart
            .draw_series([PathElement::new(
                vec![(*c, -0.6), (*c, n - 0.4)],
                RGBColor(0xdd, 0xdd, 0xdd).stroke_width(1),
            )])
            .map_err(err)?;
        let (px, py) = chart.backend_coord(&(*c, -0.6));
        root.draw(&PathElement::new(
            vec![(px, py), (px, py + 5)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            super::tick_label(*tick),
            (px, py + 8),
            tick_style.clone(),
        ))
        .map_err(err)?;
    }

    if let Some(below) = fig.separator_below {
        let y = below as f64 - 0.5;
        chart
            .draw_series([PathElement::new(
                vec![(x0, y), (x1, y)],
                RGBColor(0x99, 0x99, 0x99).stroke_width(1),
            )])
            .map_err(err)?;
    }
    let one = axis.to_coord(1.0);
    chart
        .draw_series([PathElement::new(
            vec![(one, -0.6), (one, n - 0.4)],
            BLACK.stroke_width(2),
        )])
        .map_err(err)?;

    // The A/A bands first, behind everything of their row.
    for (i, row) in fig.rows.iter().enumerate() {
        if let Some((lo, hi)) = row.aa_band {
            let y = i as f64;
            chart
                .draw_series([Rectangle::new(
                    [(axis.to_coord(lo), y - 0.46), (axis.to_coord(hi), y + 0.46)],
                    AA_BAND.filled(),
                )])
                .map_err(err)?;
        }
    }

    for (i, row) in fig.rows.iter().enumerate() {
        let y = i as f64;
        let color = rgb(row.color);
        let outline: Vec<(f64, f64)> = row
            .outline(y)
            .into_iter()
            .map(|(x, y)| (axis.to_coord(x), y))
            .collect();
        if outline.len() > 2 {
            chart
                .draw_series([Polygon::new(outline.clone(), color.mix(0.3).filled())])
                .map_err(err)?;
            let mut closed = outline;
            closed.push(closed[0]);
            chart
                .draw_series([PathElement::new(closed, color.stroke_width(1))])
                .map_err(err)?;
        }
        let mean = axis.to_coord(row.mean);
        chart
            .draw_series([PathElement::new(
                vec![(mean, y - LINE_HALF), (mean, y + LINE_HALF)],
                color.stroke_width(2),
            )])
            .map_err(err)?;
        for q in [row.q10, row.q90] {
            let segments = dots(axis.to_coord(q), y - LINE_HALF, y + LINE_HALF);
            chart
                .draw_series(
                    segments
                        .into_iter()
                        .map(|s| PathElement::new(s.to_vec(), color.stroke_width(2))),
                )
                .map_err(err)?;
        }
        // Labels are placed in pixels: the benchmark name right-aligned left of the plot, the mean
        // right of the violin.
        let (px, py) = chart.backend_coord(&(x0, y));
        root.draw(&Text::new(
            row.label.clone(),
            (px - 8, py),
            name_font.clone(),
        ))
        .map_err(err)?;
        let right = row.xs.last().copied().unwrap_or(row.mean).max(row.q90);
        let (rx, ry) = chart.backend_coord(&(axis.to_coord(right), y));
        let mean_style = TextStyle::from((font::FAMILY, 13).into_font())
            .color(&RGBColor(0x33, 0x33, 0x33))
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(
            format!("{} (n={})", super::tick_label(row.mean), row.n),
            (rx + 6, ry),
            mean_style,
        ))
        .map_err(err)?;
    }

    // Legend: one line under the x axis caption: a coloured square and name per entry, then the key
    // to the lines.
    let (_, h) = fig.size();
    let legend_style = TextStyle::from((font::FAMILY, 13).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let band = fig
        .rows
        .iter()
        .any(|r| r.aa_band.is_some())
        .then(|| ("grey: A/A 10%-90%".to_string(), Some((0xe4, 0xe4, 0xe4))));
    let entries: Vec<(String, Option<Rgb>)> = fig
        .legend
        .iter()
        .map(|(name, c)| (name.clone(), Some(*c)))
        .chain(band)
        .chain([(
            "solid line: mean, dotted lines: 10% and 90% quantiles".to_string(),
            None,
        )])
        .collect();
    let (mut x, y) = (label_width as i32 / 2, h as i32 - 18);
    for (name, color) in entries {
        if let Some(c) = color {
            root.draw(&Rectangle::new(
                [(x, y - 6), (x + 12, y + 6)],
                rgb(c).mix(0.6).filled(),
            ))
            .map_err(err)?;
            x += 18;
        }
        let (text_w, _) = root.estimate_text_size(&name, &legend_style).map_err(err)?;
        root.draw(&Text::new(name, (x, y), legend_style.clone()))
            .map_err(err)?;
        x += text_w as i32 + 24;
    }
    root.present().map_err(err)
}

/// The figure as SVG text.
pub fn svg(fig: &Figure) -> Result<String, DrawError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, fig.size()).into_drawing_area();
        draw_on(fig, root)?;
    }
    Ok(out)
}

/// The figure as raw RGB pixels (width × height × 3 bytes).
pub fn rgb_pixels(fig: &Figure) -> Result<Vec<u8>, DrawError> {
    let (w, h) = fig.size();
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw_on(fig, root)?;
    }
    Ok(buf)
}

/// The figure as PNG bytes.
pub fn png(fig: &Figure) -> Result<Vec<u8>, DrawError> {
    let (w, h) = fig.size();
    let pixels = rgb_pixels(fig)?;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, w, h, image::ColorType::Rgb8)
        .map_err(err)?;
    Ok(out)
}

use image::ImageEncoder;
