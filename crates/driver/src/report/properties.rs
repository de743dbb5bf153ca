//! What the clusters mean physically: the distribution of catalogue properties per cluster, as the
//! original's `kmeans_correlate_cluster.ipynb` showed it (clusters ordered by their median, one
//! example galaxy per cluster above the plot, and a scatter of two properties coloured by cluster).

use std::path::Path;

use anyhow::{anyhow, Result};
use ndarray::Array3;
use plotters::prelude::*;

use super::draw::{register_font, Canvas, FONT};

/// One cluster's summary of one property. Quantiles interpolate linearly between order statistics,
/// as numpy's default (`method='linear'`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClusterProperty {
    /// Cluster label (−1: noise).
    pub label: i64,
    /// Galaxies of the cluster with a value.
    pub n: usize,
    /// Galaxies of the cluster without one (not in the catalogue, or an empty cell).
    pub missing: usize,
    /// Smallest value.
    pub min: f64,
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The q-quantile of sorted finite values (numpy's linear interpolation); NaN when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Per-cluster summaries of `values` (NaN = missing), ordered by median (clusters without any value
/// last, by label), noise included when present.
pub fn per_cluster(labels: &[i64], values: &[f64]) -> Vec<ClusterProperty> {
    let mut by_label: std::collections::BTreeMap<i64, (Vec<f64>, usize)> = Default::default();
    for (&l, &v) in labels.iter().zip(values) {
        let e = by_label.entry(l).or_default();
        if v.is_finite() {
            e.0.push(v);
        } else {
            e.1 += 1;
        }
    }
    let mut out: Vec<ClusterProperty> = by_label
        .into_iter()
        .map(|(label, (mut v, missing))| {
            v.sort_by(f64::total_cmp);
            let mean = if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            };
            ClusterProperty {
                label,
                n: v.len(),
                missing,
                min: v.first().copied().unwrap_or(f64::NAN),
                q1: quantile(&v, 0.25),
                median: quantile(&v, 0.5),
                q3: quantile(&v, 0.75),
                max: v.last().copied().unwrap_or(f64::NAN),
                mean,
            }
        })
        .collect();
    out.sort_by(|a, b| match (a.median.is_nan(), b.median.is_nan()) {
        (false, false) => a.median.total_cmp(&b.median).then(a.label.cmp(&b.label)),
        (x, y) => x.cmp(&y).then(a.label.cmp(&b.label)),
    });
    out
}

fn plot_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {}: {e}", path.display())
}

/// Categorical colours for cluster labels (Tableau 10, then repeated); grey for noise.
pub fn cluster_colour(label: i64) -> RGBColor {
    const PALETTE: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    if label < 0 {
        return RGBColor(170, 170, 170);
    }
    let (r, g, b) = PALETTE[label as usize % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Pixels of each example galaxy drawn above its box.
const EXAMPLE: u32 = 40;

/// Box plot of one property per cluster in the order given (whiskers at min and max), with each
/// cluster's example galaxy above its box.
pub fn box_plot(
    path: &Path,
    property: &str,
    stats: &[ClusterProperty],
    examples: &[Array3<f32>],
    title: &str,
) -> Result<()> {
    register_font();
    let k = stats.len().max(1);
    let slot = (EXAMPLE + 6).max(18);
    let w = (k as u32 * slot + 140).max(800);
    let h = 520u32;
    let top = 40 + EXAMPLE + 10;
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    let finite: Vec<f64> = stats
        .iter()
        .flat_map(|s| [s.min, s.max])
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        let pad = ((hi - lo) * 0.05).max(1e-9);
        (lo - pad, hi + pad)
    } else {
        (0.0, 1.0)
    };
    let mut positions = Vec::with_capacity(stats.len());
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        root.draw_text(title, &(FONT, 20).into_font().color(&BLACK), (12, 10))
            .map_err(plot_err(path))?;
        let (_, lower) = root.split_vertically(top);
        let mut chart = ChartBuilder::on(&lower)
            .margin(10)
            .x_label_area_size(56)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..k as f64 - 0.5, lo..hi)
            .map_err(plot_err(path))?;
        let labels: Vec<String> = stats.iter().map(|s| s.label.to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(k.min(60))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc("cluster, ordered by median")
            .y_desc(property)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(plot_err(path))?;
        for (i, s) in stats.iter().enumerate() {
            let x = i as f64;
            let colour = cluster_colour(s.label);
            if s.n > 0 {
                chart
                    .draw_series([
                        PathElement::new(vec![(x, s.min), (x, s.q1)], BLACK),
                        PathElement::new(vec![(x, s.q3), (x, s.max)], BLACK),
                        PathElement::new(vec![(x - 0.15, s.min), (x + 0.15, s.min)], BLACK),
                        PathElement::new(vec![(x - 0.15, s.max), (x + 0.15, s.max)], BLACK),
                    ])
                    .map_err(plot_err(path))?;
                chart
                    .draw_series([Rectangle::new(
                        [(x - 0.35, s.q1), (x + 0.35, s.q3)],
                        colour.mix(0.6).filled(),
                    )])
                    .map_err(plot_err(path))?;
                chart
                    .draw_series([PathElement::new(
                        vec![(x - 0.35, s.median), (x + 0.35, s.median)],
                        BLACK.stroke_width(2),
                    )])
                    .map_err(plot_err(path))?;
            }
            let (px, _) = chart.backend_coord(&(x, hi));
            positions.push(px);
        }
        root.present().map_err(plot_err(path))?;
    }
    for (tile, &px) in examples.iter().zip(&positions) {
        // About EXAMPLE pixels across: a thumbnail above a box needs shape, not detail.
        let step = (tile.dim().0 as u32).div_ceil(EXAMPLE).max(1) as usize;
        let small = tile.slice(ndarray::s![..;step, ..;step, ..]);
        canvas.blit(small, px as i64 - small.dim().1 as i64 / 2, 40, 1);
    }
    canvas.save_png(path)
}

/// Scatter of two properties, one colour per cluster, each cluster's median marked by a large
/// outlined disc with its label: the original's λ_Re against ellipticity figure.
pub fn scatter(
    path: &Path,
    names: (&str, &str),
    x: &[f64],
    y: &[f64],
    labels: &[i64],
    title: &str,
) -> Result<()> {
    register_font();
    let (w, h) = (900u32, 760u32);
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    let points: Vec<(f64, f64, i64)> = x
        .iter()
        .zip(y)
        .zip(labels)
        .filter(|((a, b), _)| a.is_finite() && b.is_finite())
        .map(|((&a, &b), &l)| (a, b, l))
        .collect();
    let range = |vals: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if lo.is_finite() {
            let pad = ((hi - lo) * 0.05).max(1e-9);
            (lo - pad, hi + pad)
        } else {
            (0.0, 1.0)
        }
    };
    let (x0, x1) = range(&mut points.iter().map(|p| p.0));
    let (y0, y1) = range(&mut points.iter().map(|p| p.1));
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .x_desc(names.0)
            .y_desc(names.1)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(plot_err(path))?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(a, b, l)| Circle::new((a, b), 3, cluster_colour(l).mix(0.85).filled())),
            )
            .map_err(plot_err(path))?;
        let mut distinct: Vec<i64> = points.iter().map(|p| p.2).collect();
        distinct.sort_unstable();
        distinct.dedup();
        for l in distinct {
            let mut xs: Vec<f64> = points.iter().filter(|p| p.2 == l).map(|p| p.0).collect();
            let mut ys: Vec<f64> = points.iter().filter(|p| p.2 == l).map(|p| p.1).collect();
            xs.sort_by(f64::total_cmp);
            ys.sort_by(f64::total_cmp);
            let m = (quantile(&xs, 0.5), quantile(&ys, 0.5));
            chart
                .draw_series([
                    Circle::new(m, 8, cluster_colour(l).filled()),
                    Circle::new(m, 8, BLACK.stroke_width(2)),
                ])
                .map_err(plot_err(path))?;
            chart
                .draw_series([Text::new(
                    l.to_string(),
                    (m.0, m.1),
                    (FONT, 13).into_font().color(&BLACK),
                )])
                .map_err(plot_err(path))?;
        }
        root.present().map_err(plot_err(path))?;
    }
    canvas.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_numpy_linear() {
        // numpy.quantile([1, 2, 4, 10], [0.25, 0.5, 0.75]) = [1.75, 3.0, 5.5]
        let v = [1.0, 2.0, 4.0, 10.0];
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.75), 5.5);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
    }

    #[test]
    fn clusters_are_ordered_by_median_with_missing_counted() {
        let labels = [0, 0, 0, 1, 1, 2, -1];
        let values = [5.0, 6.0, f64::NAN, 1.0, 2.0, f64::NAN, 3.0];
        let s = per_cluster(&labels, &values);
        let order: Vec<i64> = s.iter().map(|c| c.label).collect();
        assert_eq!(order, vec![1, -1, 0, 2]);
        assert_eq!((s[2].n, s[2].missing, s[2].median), (2, 1, 5.5));
        assert_eq!((s[3].n, s[3].missing), (0, 1));
        assert!(s[3].median.is_nan());
    }
}
