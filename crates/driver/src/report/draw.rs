//! Drawing helpers shared by the plots and galleries: the embedded font, RGB canvases, galaxy tiles and
//! atomic PNG output.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result};
use ndarray::ArrayView3;
use plotters::style::FontStyle;

/// The font every figure uses. It is embedded (Hack, from the `epaint_default_fonts` crate) so that
/// figures look the same on every machine and need no system font library.
pub const FONT: &str = "sans-serif";

static REGISTER: Once = Once::new();

/// Registers the embedded font with plotters (once per process).
pub fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font shipped inside a published crate; if plotters ever refused
        // them, text would be missing from figures but nothing else would break.
        if plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::HACK_REGULAR,
        )
        .is_err()
        {
            tracing::warn!("could not register the embedded font; figures will have no text");
        }
    });
}

/// An RGB8 pixel buffer.
pub struct Canvas {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major RGB bytes.
    pub pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: [u8; 3]) -> Self {
        let mut pixels = Vec::with_capacity((width * height * 3) as usize);
        for _ in 0..width * height {
            pixels.extend_from_slice(&background);
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    /// Copies an (H, W, 3) image of values in [0, 1] with its top-left corner at (x, y), clipped to the
    /// canvas, scaled by an integer `zoom` (nearest neighbour, so pixels stay honest).
    pub fn blit(&mut self, image: ArrayView3<'_, f32>, x: i64, y: i64, zoom: u32) {
        let (h, w, _) = image.dim();
        let zoom = zoom.max(1) as i64;
        for row in 0..(h as i64 * zoom) {
            let cy = y + row;
            if cy < 0 || cy >= self.height as i64 {
                continue;
            }
            for col in 0..(w as i64 * zoom) {
                let cx = x + col;
                if cx < 0 || cx >= self.width as i64 {
                    continue;
                }
                let (sr, sc) = ((row / zoom) as usize, (col / zoom) as usize);
                let at = ((cy as u32 * self.width + cx as u32) * 3) as usize;
                for ch in 0..3 {
                    let v = image[[sr, sc, ch]].clamp(0.0, 1.0);
                    self.pixels[at + ch] = (v * 255.0).round() as u8;
                }
            }
        }
    }

    /// Draws a `thickness`-pixel rectangle outline.
    pub fn outline(&mut self, x: i64, y: i64, w: u32, h: u32, thickness: u32, color: [u8; 3]) {
        let t = thickness as i64;
        for yy in y - t..y + h as i64 + t {
            for xx in x - t..x + w as i64 + t {
                let inside = yy >= y && yy < y + h as i64 && xx >= x && xx < x + w as i64;
                if inside || yy < 0 || xx < 0 || yy >= self.height as i64 || xx >= self.width as i64
                {
                    continue;
                }
                let at = ((yy as u32 * self.width + xx as u32) * 3) as usize;
                self.pixels[at..at + 3].copy_from_slice(&color);
            }
        }
    }

    /// Writes the canvas as a PNG, atomically.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        save_rgb_png(path, self.width, self.height, &self.pixels)
    }
}

/// Writes RGB8 bytes as a PNG, atomically.
pub fn save_rgb_png(path: &Path, width: u32, height: u32, pixels: &[u8]) -> Result<()> {
    use image::ImageEncoder;
    let mut encoded = Vec::new();
    image::codecs::png::PngEncoder::new(&mut encoded)
        .write_image(pixels, width, height, image::ExtendedColorType::Rgb8)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    sdss_io::atomic::write_bytes_atomic(path, &encoded)?;
    Ok(())
}
