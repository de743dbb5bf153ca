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
