//! Registers the embedded DejaVu Sans (from the `dejavu` crate) as plotters' `sans-serif`, so text
//! renders the same with or without system fonts (plotters is built with `ab_glyph`, not `ttf`).

use std::sync::OnceLock;

/// The family name the drawing code asks for.
pub const FAMILY: &str = "sans-serif";

/// Registers the fonts once per process; later calls return the first call's outcome.
pub fn register() -> Result<(), &'static str> {
    static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        use plotters::style::{register_font, FontStyle};
        register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded DejaVu Sans is not a valid font")?;
        register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold())
            .map_err(|_| "the embedded DejaVu Sans Bold is not a valid font")
    })
}
