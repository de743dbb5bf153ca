//! Bar plots: the PCA explained-variance plot and the cluster-size count plot.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::draw::{register_font, Canvas, FONT};

fn plot_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {}: {e}", path.display())
}

/// Bars of the explained variance ratio per component and a line of the cumulative ratio, as the
/// original project's PCA plot.
pub fn pca_variance(path: &Path, ratios: &[f64], title: &str) -> Result<()> {
    register_font();
    let (w, h) = (1000u32, 520u32);
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        let n = ratios.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n as f64 + 1.0, 0f64..1.0)
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .x_desc("principal component")
            .y_desc("explained variance ratio")
            .x_label_formatter(&|x| format!("{:.0}", x))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .disable_x_mesh()
            .draw()
            .map_err(plot_err(path))?;
        chart
            .draw_series(ratios.iter().enumerate().map(|(i, &r)| {
                let x = i as f64 + 1.0;
                Rectangle::new(
                    [(x - 0.4, 0.0), (x + 0.4, r)],
                    RGBColor(70, 110, 180).filled(),
                )
            }))
            .map_err(plot_err(path))?
            .label("per component")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 12, y + 5)],
                    RGBColor(70, 110, 180).filled(),
                )
            });
        let mut total = 0.0;
        let cumulative: Vec<(f64, f64)> = ratios
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                total += r;
                (i as f64 + 1.0, total)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(
                cumulative,
                RGBColor(200, 80, 40).stroke_width(2),
            ))
            .map_err(plot_err(path))?
            .label("cumulative")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 14, y)],
                    RGBColor(200, 80, 40).stroke_width(2),
                )
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err(path))?;
        root.present().map_err(plot_err(path))?;
    }
    canvas.save_png(path)
}

/// Number of galaxies per cluster (noise, label −1, shown first in grey when present).
pub fn cluster_sizes(path: &Path, sizes: &[usize], n_noise: usize, title: &str) -> Result<()> {
    register_font();
    let (w, h) = (1000u32, 420u32);
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        let max = sizes
            .iter()
            .copied()
            .chain([n_noise])
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let offset = if n_noise > 0 { 1.0 } else { 0.0 };
        let n = sizes.len() as f64 + offset;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5 - offset..n - offset - 0.5, 0f64..max * 1.08)
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .x_desc(if n_noise > 0 {
                "cluster (−1: noise)"
            } else {
                "cluster"
            })
            .y_desc("galaxies")
            .y_label_formatter(&|y| format!("{:.0}", y))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .disable_x_mesh()
            .x_label_formatter(&|x| format!("{:.0}", x))
            .draw()
            .map_err(plot_err(path))?;
        if n_noise > 0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(-1.4, 0.0), (-0.6, n_noise as f64)],
                    RGBColor(150, 150, 150).filled(),
                )))
                .map_err(plot_err(path))?;
        }
        chart
            .draw_series(sizes.iter().enumerate().map(|(i, &s)| {
                let x = i as f64;
                Rectangle::new(
                    [(x - 0.4, 0.0), (x + 0.4, s as f64)],
                    RGBColor(70, 140, 90).filled(),
                )
            }))
            .map_err(plot_err(path))?;
        root.present().map_err(plot_err(path))?;
    }
    canvas.save_png(path)
}
