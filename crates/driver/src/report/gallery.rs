//! Image grids: one PNG per cluster with its number and size in the title, like the original's
//! `cluster_K_of_N.pdf`.

use std::path::Path;

use anyhow::{anyhow, Result};
use ndarray::Array3;
use plotters::prelude::*;

use super::draw::{register_font, Canvas, FONT};

/// Galaxies shown per cluster grid (the first ones in file order, exemplar first).
pub const MAX_TILES: usize = 100;
const COLUMNS: usize = 10;
const GAP: u32 = 4;
const TITLE: u32 = 40;

/// Draws `tiles` (each (H, W, 3) in [0, 1]) in a grid under `title`. With `highlight_first` the first
/// tile (an affinity-propagation exemplar) gets an orange frame.
pub fn grid(path: &Path, title: &str, tiles: &[Array3<f32>], highlight_first: bool) -> Result<()> {
    register_font();
    let (th, tw) = tiles
        .first()
        .map(|t| (t.dim().0 as u32, t.dim().1 as u32))
        .unwrap_or((80, 80));
    let columns = tiles.len().clamp(1, COLUMNS) as u32;
    let rows = tiles.len().div_ceil(COLUMNS).max(1) as u32;
    let width = (columns * (tw + GAP) + GAP).max(420);
    let height = TITLE + rows * (th + GAP) + GAP;
    let mut canvas = Canvas::new(width, height, [24, 24, 28]);
    {
        let root =
            BitMapBackend::with_buffer(&mut canvas.pixels, (width, height)).into_drawing_area();
        root.draw_text(
            title,
            &(FONT, 20).into_font().color(&WHITE),
            (GAP as i32 + 2, 10),
        )
        .map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))?;
    }
    for (i, tile) in tiles.iter().enumerate() {
        let (r, c) = ((i / COLUMNS) as u32, (i % COLUMNS) as u32);
        let x = (GAP + c * (tw + GAP)) as i64;
        let y = (TITLE + r * (th + GAP)) as i64;
        canvas.blit(tile.view(), x, y, 1);
        if highlight_first && i == 0 {
            canvas.outline(x, y, tw, th, 2, [255, 150, 30]);
        }
    }
    canvas.save_png(path)
}

/// Tiles per row of a [`captioned`] gallery.
const CAPTIONED_COLUMNS: usize = 7;
/// Caption lines under each tile of a [`captioned`] gallery.
const CAPTION: u32 = 36;

/// Draws `tiles` (each (H, W, 3) in [0, 1]) enlarged `zoom` times, each with a caption of up to two
/// lines under it (e.g. the galaxy id and its distance), under `title`. The first tile (the query of a
/// similarity search) gets an orange frame.
pub fn captioned(
    path: &Path,
    title: &str,
    tiles: &[(Array3<f32>, [String; 2])],
    zoom: u32,
) -> Result<()> {
    register_font();
    let zoom = zoom.max(1);
    let (th, tw) = tiles
        .first()
        .map(|(t, _)| (t.dim().0 as u32 * zoom, t.dim().1 as u32 * zoom))
        .unwrap_or((80 * zoom, 80 * zoom));
    let gap = GAP * 2;
    let columns = tiles.len().clamp(1, CAPTIONED_COLUMNS) as u32;
    let rows = tiles.len().div_ceil(CAPTIONED_COLUMNS).max(1) as u32;
    let width = (columns * (tw + gap) + gap).max(420);
    let height = TITLE + rows * (th + CAPTION + gap) + gap;
    let mut canvas = Canvas::new(width, height, [24, 24, 28]);
    let origin = |i: usize| {
        let (r, c) = (
            (i / CAPTIONED_COLUMNS) as u32,
            (i % CAPTIONED_COLUMNS) as u32,
        );
        (
            (gap + c * (tw + gap)) as i64,
            (TITLE + r * (th + CAPTION + gap)) as i64,
        )
    };
    for (i, (tile, _)) in tiles.iter().enumerate() {
        let (x, y) = origin(i);
        canvas.blit(tile.view(), x, y, zoom);
        if i == 0 {
            canvas.outline(x, y, tw, th, 3, [255, 150, 30]);
        }
    }
    {
        let root =
            BitMapBackend::with_buffer(&mut canvas.pixels, (width, height)).into_drawing_area();
        let err = |e| anyhow!("cannot draw {}: {e}", path.display());
        root.draw_text(
            title,
            &(FONT, 20).into_font().color(&WHITE),
            (gap as i32 + 2, 10),
        )
        .map_err(err)?;
        let style = (FONT, 14).into_font().color(&WHITE);
        for (i, (_, caption)) in tiles.iter().enumerate() {
            let (x, y) = origin(i);
            for (line, text) in caption.iter().enumerate() {
                // Long ids are cut rather than drawn over the neighbouring tile.
                let max_chars = (tw / 8).max(4) as usize;
                let shown: String = text.chars().take(max_chars).collect();
                root.draw_text(
                    &shown,
                    &style,
                    (x as i32, (y as u32 + th + 3 + 16 * line as u32) as i32),
                )
                .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    canvas.save_png(path)
}
