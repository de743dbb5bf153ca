//! The plots `train` leaves in its output folder, drawn as sdss_CNN's evaluate notebook drew them: the
//! loss curves with the learning rate below them, and the test galaxies' predictions against the truth
//! (or, for a classifier, the confusion matrix).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use sdss_train::metrics::ClassificationMetrics;
use sdss_train::EpochRecord;

use super::draw::{register_font, Canvas, FONT};

fn plot_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw {}: {e}", path.display())
}

const TRAIN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOUR: RGBColor = RGBColor(255, 127, 14);
const LR_COLOUR: RGBColor = RGBColor(44, 160, 44);
const BIN_COLOUR: RGBColor = RGBColor(200, 40, 40);

/// `lo..hi` widened by 5% on each side, or to a unit-sized interval around a single value.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi > lo {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        (lo - pad, hi + pad)
    }
}

fn min_max(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// A tick label with about three significant digits.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        // 0.0123 -> three significant digits.
        let digits = (-a.log10().floor()) as usize + 2;
        format!("{v:.digits$}")
    }
}

/// Labels only at whole epochs.
fn epoch_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 && *x >= 1.0 {
        format!("{:.0}", x)
    } else {
        String::new()
    }
}

/// Training and validation loss per epoch, and below them the learning rate on a log axis.
pub fn loss_curves(path: &Path, history: &[EpochRecord], title: &str) -> Result<()> {
    register_font();
    let (w, h) = (1000u32, 760u32);
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        let (top, bottom) = root.split_vertically(470);
        let n = history.len().max(1) as f64;
        let x_range = 0.5..n + 0.5;

        let (lo, hi) = min_max(history.iter().flat_map(|r| [r.train_loss, r.val_loss]));
        // A first epoch far above the rest would flatten every later one: then the axis is
        // logarithmic (the values are drawn as log10 and labelled as themselves).
        let log = lo > 0.0 && hi / lo > 20.0;
        let scale = move |v: f64| if log { v.log10() } else { v };
        let (lo, hi) = padded(scale(lo), scale(hi));
        let mut chart = ChartBuilder::on(&top)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.clone(), lo..hi)
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(if log { "loss (log scale)" } else { "loss" })
            .x_label_formatter(&epoch_label)
            .y_label_formatter(&|&y| tick(if log { 10f64.powf(y) } else { y }))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(plot_err(path))?;
        for (label, colour, value) in [
            (
                "training loss",
                TRAIN_COLOUR,
                (|r: &EpochRecord| r.train_loss) as fn(&EpochRecord) -> f64,
            ),
            ("validation loss", VAL_COLOUR, |r: &EpochRecord| r.val_loss),
        ] {
            let points: Vec<(f64, f64)> = history
                .iter()
                .map(|r| (r.epoch as f64, scale(value(r))))
                .filter(|(_, v)| v.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(plot_err(path))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(plot_err(path))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err(path))?;

        let (lr_lo, lr_hi) = min_max(history.iter().map(|r| r.learning_rate).filter(|&v| v > 0.0));
        let (lr_lo, lr_hi) = if lr_lo.is_finite() {
            (lr_lo / 2.0, lr_hi * 2.0)
        } else {
            (1e-5, 1e-2)
        };
        let mut chart = ChartBuilder::on(&bottom)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range, (lr_lo..lr_hi).log_scale())
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("learning rate")
            .x_label_formatter(&epoch_label)
            .y_label_formatter(&|y| format!("{y:.0e}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(plot_err(path))?;
        // A step plot: the rate holds for the whole epoch.
        let mut steps = Vec::new();
        for r in history.iter().filter(|r| r.learning_rate > 0.0) {
            let x = r.epoch as f64;
            steps.push((x - 0.5, r.learning_rate));
            steps.push((x + 0.5, r.learning_rate));
        }
        chart
            .draw_series(LineSeries::new(steps, LR_COLOUR.stroke_width(2)))
            .map_err(plot_err(path))?;
        root.present().map_err(plot_err(path))?;
    }
    canvas.save_png(path)
}

/// One bin of the predicted-against-true plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    /// Centre of the bin on the true axis.
    pub centre: f64,
    /// Mean prediction of the galaxies in the bin.
    pub mean: f64,
    /// Standard deviation of their predictions (population).
    pub std: f64,
    /// Galaxies in the bin.
    pub count: usize,
}

/// Mean and spread of the predictions in `bins` equal-width bins of the true values (empty bins are
/// left out).
pub fn binned_means(truth: &[f64], pred: &[f64], bins: usize) -> Vec<Bin> {
    let (lo, hi) = min_max(truth.iter().copied());
    if !lo.is_finite() || bins == 0 {
        return Vec::new();
    }
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut sums = vec![(0usize, 0.0f64, 0.0f64); bins];
    for (&t, &p) in truth.iter().zip(pred) {
        if !(t.is_finite() && p.is_finite()) {
            continue;
        }
        let b = (((t - lo) / width) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += p;
    }
    let means: Vec<f64> = sums
        .iter()
        .map(|&(n, s, _)| if n > 0 { s / n as f64 } else { 0.0 })
        .collect();
    for (&t, &p) in truth.iter().zip(pred) {
        if !(t.is_finite() && p.is_finite()) {
            continue;
        }
        let b = (((t - lo) / width) as usize).min(bins - 1);
        sums[b].2 += (p - means[b]).powi(2);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(b, &(n, _, sq))| Bin {
            centre: lo + (b as f64 + 0.5) * width,
            mean: means[b],
            std: (sq / n as f64).sqrt(),
            count: n,
        })
        .collect()
}

/// Predicted against true values of the test galaxies: the points (translucent), the 1:1 line
/// (dashed), and the mean prediction in 10 bins of the true value with ±1 standard deviation bars.
pub fn predicted_vs_true(
    path: &Path,
    truth: &[f64],
    pred: &[f64],
    target: &str,
    title: &str,
) -> Result<()> {
    register_font();
    let (w, h) = (820u32, 800u32);
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        let (lo, hi) = min_max(truth.iter().chain(pred).copied());
        let (lo, hi) = padded(lo, hi);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .x_desc(format!("true {target}"))
            .y_desc(format!("predicted {target}"))
            .x_label_formatter(&|&v| tick(v))
            .y_label_formatter(&|&v| tick(v))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(plot_err(path))?;

        // The 1:1 line, dashed.
        let dashes = 60;
        let step = (hi - lo) / dashes as f64;
        chart
            .draw_series((0..dashes).step_by(2).map(|i| {
                let a = lo + i as f64 * step;
                PathElement::new(vec![(a, a), (a + step, a + step)], BLACK.stroke_width(1))
            }))
            .map_err(plot_err(path))?
            .label("1:1")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 6, y)], BLACK.stroke_width(1)));

        chart
            .draw_series(
                truth
                    .iter()
                    .zip(pred)
                    .filter(|(t, p)| t.is_finite() && p.is_finite())
                    .map(|(&t, &p)| Circle::new((t, p), 3, TRAIN_COLOUR.mix(0.35).filled())),
            )
            .map_err(plot_err(path))?
            .label(format!("test galaxies ({})", truth.len()))
            .legend(|(x, y)| Circle::new((x + 6, y), 3, TRAIN_COLOUR.mix(0.6).filled()));

        let bins = binned_means(truth, pred, 10);
        let cap = (hi - lo) / 120.0;
        let bar = BIN_COLOUR.stroke_width(2);
        chart
            .draw_series(bins.iter().flat_map(|b| {
                let (x, y0, y1) = (b.centre, b.mean - b.std, b.mean + b.std);
                [
                    PathElement::new(vec![(x, y0), (x, y1)], bar),
                    PathElement::new(vec![(x - cap, y0), (x + cap, y0)], bar),
                    PathElement::new(vec![(x - cap, y1), (x + cap, y1)], bar),
                ]
            }))
            .map_err(plot_err(path))?;
        chart
            .draw_series(
                bins.iter()
                    .map(|b| Circle::new((b.centre, b.mean), 5, BIN_COLOUR.filled())),
            )
            .map_err(plot_err(path))?
            .label("binned mean ± std")
            .legend(|(x, y)| Circle::new((x + 6, y), 5, BIN_COLOUR.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err(path))?;
        root.present().map_err(plot_err(path))?;
    }
    canvas.save_png(path)
}

/// Shortens a class name to `max` characters for an axis.
fn short(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The test galaxies' confusion matrix as a heat map: rows are the true classes, columns the predicted
/// ones; each cell shows its count and is shaded by the share of its row (so the diagonal reads as
/// each class's recall, whatever the class sizes).
pub fn confusion_matrix(path: &Path, m: &ClassificationMetrics, title: &str) -> Result<()> {
    register_font();
    let k = m.class_names.len().max(1);
    let cell = (560 / k as u32).clamp(24, 90);
    let (left, top, right, bottom) = (190u32, 70u32, 110u32, 120u32);
    let (w, h) = (
        left + cell * k as u32 + right,
        top + cell * k as u32 + bottom,
    );
    let (w, h) = (w.max(520), h.max(360));
    let mut canvas = Canvas::new(w, h, [255, 255, 255]);
    {
        let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
        let text = |size: u32, colour: RGBColor, h: HPos, v: VPos| TextStyle {
            font: (FONT, size).into_font(),
            color: colour.to_backend_color(),
            pos: Pos::new(h, v),
        };
        root.draw(&Text::new(
            title.to_owned(),
            ((w / 2) as i32, 24),
            text(20, BLACK, HPos::Center, VPos::Center),
        ))
        .map_err(plot_err(path))?;
        let name_len = 22;
        let number_size = (cell / 3).clamp(10, 18);
        for (t, row) in m.confusion.iter().enumerate() {
            let support: usize = row.iter().sum();
            for (p, &count) in row.iter().enumerate() {
                let share = if support > 0 {
                    count as f64 / support as f64
                } else {
                    0.0
                };
                // White to a deep blue by share of the row.
                let mix = |a: f64, b: f64| (a + (b - a) * share).round() as u8;
                let colour = RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0));
                let x0 = (left + p as u32 * cell) as i32;
                let y0 = (top + t as u32 * cell) as i32;
                let x1 = x0 + cell as i32;
                let y1 = y0 + cell as i32;
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], colour.filled()))
                    .map_err(plot_err(path))?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x1, y1)],
                    RGBColor(200, 200, 200).stroke_width(1),
                ))
                .map_err(plot_err(path))?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    count.to_string(),
                    ((x0 + x1) / 2, (y0 + y1) / 2),
                    text(number_size, ink, HPos::Center, VPos::Center),
                ))
                .map_err(plot_err(path))?;
            }
        }
        for (i, name) in m.class_names.iter().enumerate() {
            let centre = (i as u32 * cell + cell / 2) as i32;
            root.draw(&Text::new(
                short(name, name_len),
                (left as i32 - 8, top as i32 + centre),
                text(14, BLACK, HPos::Right, VPos::Center),
            ))
            .map_err(plot_err(path))?;
            // Column names, rotated so long names fit.
            root.draw(&Text::new(
                short(name, name_len / 2),
                (left as i32 + centre, (top + k as u32 * cell) as i32 + 8),
                TextStyle {
                    font: (FONT, 14).into_font().transform(FontTransform::Rotate90),
                    color: BLACK.to_backend_color(),
                    pos: Pos::new(HPos::Left, VPos::Center),
                },
            ))
            .map_err(plot_err(path))?;
            let recall = m
                .per_class_recall
                .get(i)
                .copied()
                .flatten()
                .map_or_else(|| "–".to_owned(), |r| format!("{:.0}%", 100.0 * r));
            root.draw(&Text::new(
                recall,
                ((left + k as u32 * cell) as i32 + 10, top as i32 + centre),
                text(14, BLACK, HPos::Left, VPos::Center),
            ))
            .map_err(plot_err(path))?;
        }
        root.draw(&Text::new(
            "recall".to_owned(),
            ((left + k as u32 * cell) as i32 + 10, top as i32 - 12),
            text(14, BLACK, HPos::Left, VPos::Center),
        ))
        .map_err(plot_err(path))?;
        root.draw(&Text::new(
            "true class".to_owned(),
            (12, top as i32 - 12),
            text(15, BLACK, HPos::Left, VPos::Center),
        ))
        .map_err(plot_err(path))?;
        root.draw(&Text::new(
            "predicted class".to_owned(),
            ((left + k as u32 * cell / 2) as i32, h as i32 - 14),
            text(15, BLACK, HPos::Center, VPos::Center),
        ))
        .map_err(plot_err(path))?;
        root.present().map_err(plot_err(path))?;
    }
    canvas.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(n: usize) -> Vec<EpochRecord> {
        (1..=n)
            .map(|e| EpochRecord {
                epoch: e,
                train_loss: 1.0 / e as f64,
                val_loss: 1.2 / e as f64 + 0.05,
                learning_rate: if e > 5 { 2e-4 } else { 1e-3 },
                seconds: 1.5,
                embedding_std: None,
            })
            .collect()
    }

    fn png_size(path: &Path) -> (u32, u32) {
        let img = image::open(path).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn loss_curves_draw_for_one_and_many_epochs() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0, 1, 2, 35] {
            let path = dir.path().join(format!("loss{n}.png"));
            loss_curves(&path, &history(n), "loss").unwrap();
            assert_eq!(png_size(&path), (1000, 760));
        }
    }

    #[test]
    fn predicted_vs_true_draws_even_degenerate_predictions() {
        let dir = tempfile::tempdir().unwrap();
        let truth: Vec<f64> = (0..40).map(|i| i as f64 / 40.0).collect();
        let good: Vec<f64> = truth.iter().map(|t| t + 0.05 * (t * 31.0).sin()).collect();
        let constant = vec![0.3; truth.len()];
        for (name, pred) in [("good", &good), ("constant", &constant)] {
            let path = dir.path().join(format!("{name}.png"));
            predicted_vs_true(&path, &truth, pred, "ellipticity", name).unwrap();
            assert_eq!(png_size(&path), (820, 800));
        }
        let path = dir.path().join("one.png");
        predicted_vs_true(&path, &[0.5], &[0.5], "y", "one").unwrap();
    }

    #[test]
    fn ticks_have_about_three_digits() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.0123), "0.0123");
        assert_eq!(tick(0.5), "0.500");
        assert_eq!(tick(2.5), "2.50");
        assert_eq!(tick(2500.0), "2500");
        assert_eq!(tick(2.5e-5), "2.5e-5");
    }

    #[test]
    fn binned_means_cover_every_point() {
        let truth: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let pred: Vec<f64> = truth.iter().map(|t| 2.0 * t).collect();
        let bins = binned_means(&truth, &pred, 10);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 100);
        // The first bin holds 0..=9 (predictions 0..=18): mean 9.
        assert!((bins[0].mean - 9.0).abs() < 1e-12, "{:?}", bins[0]);
        assert!(bins[0].std > 0.0);
        let same = binned_means(&[1.0, 1.0], &[2.0, 4.0], 10);
        assert_eq!(same.len(), 1);
        assert!((same[0].mean - 3.0).abs() < 1e-12 && (same[0].std - 1.0).abs() < 1e-12);
        assert!(binned_means(&[], &[], 10).is_empty());
    }

    #[test]
    fn confusion_matrix_draws_for_few_and_many_classes() {
        let dir = tempfile::tempdir().unwrap();
        for k in [2usize, 4, 12] {
            let names: Vec<String> = (0..k)
                .map(|i| format!("class with a long name {i}"))
                .collect();
            let truth: Vec<usize> = (0..60).map(|i| i % k).collect();
            let pred: Vec<usize> = (0..60).map(|i| (i / 2) % k).collect();
            let m = sdss_train::metrics::classification_metrics(&truth, &pred, &names).unwrap();
            let path = dir.path().join(format!("confusion{k}.png"));
            confusion_matrix(&path, &m, "confusion").unwrap();
            let (w, h) = png_size(&path);
            assert!(w >= 520 && h >= 360);
        }
    }
}
