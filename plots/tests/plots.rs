//! Renders the fixture run's violin plots and checks what a person would see: PNG pixels in the
//! violins' colours on every row (not a blank image), SVG text naming every benchmark and ALL, the
//! same output without any system font (`FONTCONFIG_FILE=/dev/null` in a child process).

use std::path::{Path, PathBuf};
use std::process::Command;

use plots::analysis::{analyse_with, RunAnalysis};
use plots::plot::{self, draw, Figure};

fn fixture_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run")
}

/// The value-by-value ratios: the widest violins, so that every row's body is large enough to count
/// its pixels (the default bootstrap draws fib_calls 0.2x wide on an axis of 6x).
fn analysis() -> RunAnalysis {
    analyse_with(
        &plots::run::load(&fixture_run()).unwrap(),
        plots::Estimator::ValueByValue,
    )
}

fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("plots-tests")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pixels within `tol` of `c` in every channel.
fn count_near(pixels: &[u8], c: (i32, i32, i32), tol: i32) -> usize {
    pixels
        .chunks(3)
        .filter(|p| {
            (p[0] as i32 - c.0).abs() <= tol
                && (p[1] as i32 - c.1).abs() <= tol
                && (p[2] as i32 - c.2).abs() <= tol
        })
        .count()
}

/// The violin fill: the row colour at 30% over white.
fn fill_of(c: plot::Rgb) -> (i32, i32, i32) {
    let f = |v: u8| (0.3 * v as f64 + 0.7 * 255.0).round() as i32;
    (f(c.0), f(c.1), f(c.2))
}

/// The contents of every `<text>` element of an SVG, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

fn config_figures(a: &RunAnalysis) -> Vec<Figure> {
    a.configs.iter().filter_map(plot::config_figure).collect()
}

#[test]
fn png_shows_a_violin_in_every_row() {
    let a = analysis();
    let fig = plot::config_figure(&a.configs[0]).unwrap();
    let (w, h) = fig.size();
    let pixels = draw::rgb_pixels(&fig).unwrap();
    assert_eq!(pixels.len(), (w * h * 3) as usize);
    // Every row's band of pixels holds that row's colour: the violins are drawn where the rows are.
    let rows = fig.rows.len();
    let band = |i: usize| -> &[u8] {
        // Rows span the plotting area between the caption (~50 px) and the x axis (48 px + 34 px margin).
        let top = 50.0;
        let bottom = h as f64 - 48.0 - 34.0;
        let row_h = (bottom - top) / rows as f64;
        let y_center = bottom - row_h * (i as f64 + 0.5);
        let (y0, y1) = (
            (y_center - row_h * 0.3) as usize,
            (y_center + row_h * 0.3) as usize,
        );
        &pixels[y0 * w as usize * 3..y1 * w as usize * 3]
    };
    for (i, row) in fig.rows.iter().enumerate() {
        // The filled body (not only the outline and the mean line) is there.
        let filled = count_near(band(i), fill_of(row.color), 3);
        assert!(
            filled > 400,
            "row {i} ({}) has {filled} fill pixels",
            row.label
        );
        let c = (row.color.0 as i32, row.color.1 as i32, row.color.2 as i32);
        let lines = count_near(band(i), c, 10);
        assert!(
            lines > 20,
            "row {i} ({}) has {lines} line pixels",
            row.label
        );
    }
    let png = draw::png(&fig).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(decoded.dimensions(), (w, h));
    assert_eq!(decoded.as_raw(), &pixels);
    std::fs::write(out_dir("png").join("default.png"), png).unwrap();
}

#[test]
fn svg_names_every_benchmark_and_all() {
    let a = analysis();
    for (config, fig) in a.configs.iter().zip(config_figures(&a)) {
        let svg = draw::svg(&fig).unwrap();
        std::fs::write(
            out_dir("svg").join(format!("{}.svg", config.config.name)),
            &svg,
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        let texts = svg_texts(&svg);
        for row in &config.rows {
            assert!(
                texts.contains(&row.name),
                "{} missing from {texts:?}",
                row.name
            );
        }
        assert!(texts.iter().any(|t| t == "ALL"));
        assert!(
            texts.iter().any(|t| t.ends_with(".00x")),
            "x axis labelled like 1.00x: {texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains(&format!("[{}]", config.config.name))),
            "the title names the configuration"
        );
        std::fs::write(
            out_dir("svg").join(format!("{}.svg", config.config.name)),
            svg,
        )
        .unwrap();
    }
    let all = plot::all_configs_figure(&a).unwrap();
    let svg = draw::svg(&all).unwrap();
    let texts = svg_texts(&svg);
    for config in &a.configs {
        let label = format!("{} [{}]", config.config.display(), config.config.name);
        assert!(texts.contains(&label), "{label} missing from {texts:?}");
    }
    std::fs::write(out_dir("svg").join("all.svg"), &svg).unwrap();
    std::fs::write(out_dir("png").join("all.png"), draw::png(&all).unwrap()).unwrap();
}

/// Run by `renders_without_system_fonts` in a child process whose FONTCONFIG_FILE is /dev/null.
#[test]
#[ignore = "run by renders_without_system_fonts in a child process"]
fn render_in_child() {
    let a = analysis();
    let fig = plot::config_figure(&a.configs[0]).unwrap();
    let png = draw::png(&fig).unwrap();
    let out = std::env::var("PLOTS_CHILD_OUT").unwrap();
    std::fs::write(out, png).unwrap();
}

#[test]
fn renders_without_system_fonts() {
    let out = out_dir("nofonts").join("child.png");
    let _ = std::fs::remove_file(&out);
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "render_in_child",
            "--test-threads=1",
        ])
        .env("FONTCONFIG_FILE", "/dev/null")
        .env("FONTCONFIG_PATH", "/nonexistent")
        .env("PLOTS_CHILD_OUT", &out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let child = std::fs::read(&out).unwrap();
    let a = analysis();
    let here = draw::png(&plot::config_figure(&a.configs[0]).unwrap()).unwrap();
    assert_eq!(
        child, here,
        "the text renders the same without system fonts"
    );
}
