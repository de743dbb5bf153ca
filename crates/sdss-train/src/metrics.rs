//! Evaluation metrics, in `f64`, matching scikit-learn and SciPy.
//!
//! - [`mean_squared_error`], [`mean_absolute_error`], [`r2_score`]: as `sklearn.metrics`;
//! - [`pearson`]: as `scipy.stats.pearsonr` (its statistic), [`spearman`]: as
//!   `scipy.stats.spearmanr` (Pearson of average ranks, so ties are handled as SciPy does);
//! - [`classification_metrics`]: accuracy, balanced accuracy, confusion matrix and per-class recall
//!   as `sklearn.metrics`.
//!
//! Sums are compensated (Neumaier) and deviations are taken from the mean before anything is
//! squared, so nearly constant vectors do not lose their digits. `fixtures/train/metrics.json`
//! (from `fixtures/train/make_metrics_fixture.py`) holds scikit-learn's and SciPy's values for a
//! few vectors; the tests require agreement within 1e-12 relative.
//!
//! # Degenerate inputs
//!
//! Nothing here panics on degenerate values: a correlation that is undefined (fewer than two
//! values, a constant vector, a NaN or infinite value) is `None`, which serialises as `null`. An
//! empty input gives NaN errors (serialised as `null`). Only mismatched lengths or out-of-range
//! labels, which are bugs in the caller, panic.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::TrainDataError;

/// Regression quality on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Number of galaxies.
    pub n: usize,
    /// Mean squared error (NaN, serialised as `null`, if `n == 0`).
    #[serde(deserialize_with = "f64_or_nan")]
    pub mse: f64,
    /// Square root of the MSE.
    #[serde(deserialize_with = "f64_or_nan")]
    pub rmse: f64,
    /// Mean absolute error.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mae: f64,
    /// Coefficient of determination as [`r2_score`]; `None` if `n < 2` or a value is NaN.
    pub r2: Option<f64>,
    /// Pearson correlation of truth and prediction ([`pearson`]).
    pub pearson: Option<f64>,
    /// Spearman rank correlation of truth and prediction ([`spearman`]).
    pub spearman: Option<f64>,
}

impl fmt::Display for RegressionMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<f64>| v.map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"));
        write!(
            f,
            "n {}: MSE {:.6}, RMSE {:.6}, MAE {:.6}, R² {}, Pearson {}, Spearman {}",
            self.n,
            self.mse,
            self.rmse,
            self.mae,
            opt(self.r2),
            opt(self.pearson),
            opt(self.spearman)
        )
    }
}

/// Classification quality on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Number of galaxies.
    pub n: usize,
    /// Share of galaxies whose predicted class is right (`None` if `n == 0`).
    pub accuracy: Option<f64>,
    /// Share of the most common true class: the accuracy of always predicting it, the baseline to
    /// beat (`None` if `n == 0`).
    pub majority_rate: Option<f64>,
    /// Mean of the recalls of the classes present in the truth, as scikit-learn's
    /// `balanced_accuracy_score` (`None` if `n == 0`).
    pub balanced_accuracy: Option<f64>,
    /// Class names, indexed by label.
    pub class_names: Vec<String>,
    /// `confusion[t][p]`: galaxies of true class `t` predicted as `p`.
    pub confusion: Vec<Vec<usize>>,
    /// Galaxies of each true class.
    pub support: Vec<usize>,
    /// Share of each class's galaxies predicted right (`None` for a class absent from the truth).
    pub per_class_recall: Vec<Option<f64>>,
}

impl fmt::Display for ClassificationMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<f64>| v.map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"));
        write!(
            f,
            "n {}: accuracy {} (majority class {}), balanced accuracy {}",
            self.n,
            opt(self.accuracy),
            opt(self.majority_rate),
            opt(self.balanced_accuracy)
        )
    }
}

/// All regression metrics of `y_pred` against `y_true`.
///
/// An error if the lengths differ.
pub fn regression_metrics(
    y_true: &[f64],
    y_pred: &[f64],
) -> Result<RegressionMetrics, TrainDataError> {
    check_lengths(y_true, y_pred)?;
    let mse = mean_squared_error_unchecked(y_true, y_pred);
    let r2 = r2_score_unchecked(y_true, y_pred);
    Ok(RegressionMetrics {
        n: y_true.len(),
        mse,
        rmse: mse.sqrt(),
        mae: mean_absolute_error_unchecked(y_true, y_pred),
        r2: (!r2.is_nan()).then_some(r2),
        pearson: pearson_unchecked(y_true, y_pred),
        spearman: spearman_unchecked(y_true, y_pred),
    })
}

/// Mean of the squared differences (NaN if empty), as `sklearn.metrics.mean_squared_error`.
///
/// An error if the lengths differ.
pub fn mean_squared_error(y_true: &[f64], y_pred: &[f64]) -> Result<f64, TrainDataError> {
    check_lengths(y_true, y_pred)?;
    Ok(mean_squared_error_unchecked(y_true, y_pred))
}

fn mean_squared_error_unchecked(y_true: &[f64], y_pred: &[f64]) -> f64 {
    mean(
        y_true.iter().zip(y_pred).map(|(t, p)| (t - p) * (t - p)),
        y_true.len(),
    )
}

/// Mean of the absolute differences (NaN if empty), as `sklearn.metrics.mean_absolute_error`.
///
/// An error if the lengths differ.
pub fn mean_absolute_error(y_true: &[f64], y_pred: &[f64]) -> Result<f64, TrainDataError> {
    check_lengths(y_true, y_pred)?;
    Ok(mean_absolute_error_unchecked(y_true, y_pred))
}

fn mean_absolute_error_unchecked(y_true: &[f64], y_pred: &[f64]) -> f64 {
    mean(
        y_true.iter().zip(y_pred).map(|(t, p)| (t - p).abs()),
        y_true.len(),
    )
}

/// Coefficient of determination `1 − Σ(t − p)² / Σ(t − mean t)²`, as `sklearn.metrics.r2_score`.
///
/// As scikit-learn (`force_finite=True`): exact predictions give 1.0, also for a constant `y_true`;
/// a constant `y_true` with any error gives 0.0; fewer than two values give NaN. A NaN in the
/// input gives NaN.
///
/// An error if the lengths differ.
pub fn r2_score(y_true: &[f64], y_pred: &[f64]) -> Result<f64, TrainDataError> {
    check_lengths(y_true, y_pred)?;
    Ok(r2_score_unchecked(y_true, y_pred))
}

fn r2_score_unchecked(y_true: &[f64], y_pred: &[f64]) -> f64 {
    if y_true.len() < 2 {
        return f64::NAN;
    }
    let numerator = sum(y_true.iter().zip(y_pred).map(|(t, p)| (t - p) * (t - p)));
    let denominator = if is_constant(y_true) {
        0.0
    } else {
        let m = mean(y_true.iter().copied(), y_true.len());
        sum(y_true.iter().map(|t| (t - m) * (t - m)))
    };
    if numerator.is_nan() || denominator.is_nan() {
        f64::NAN
    } else if numerator == 0.0 {
        1.0
    } else if denominator == 0.0 {
        0.0
    } else {
        1.0 - numerator / denominator
    }
}

/// Pearson's correlation coefficient, as the statistic of `scipy.stats.pearsonr`, clipped to
/// [−1, 1]. `None` when it is undefined: fewer than two values, a constant vector, a NaN or an
/// infinite value.
///
/// An error if the lengths differ.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Option<f64>, TrainDataError> {
    check_lengths(x, y)?;
    Ok(pearson_unchecked(x, y))
}

fn pearson_unchecked(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() < 2 || x.iter().chain(y).any(|v| !v.is_finite()) || is_constant(x) || is_constant(y)
    {
        return None;
    }
    let dx = scaled_deviations(x)?;
    let dy = scaled_deviations(y)?;
    let r = sum(dx.iter().zip(&dy).map(|(a, b)| a * b));
    Some(r.clamp(-1.0, 1.0))
}

/// Spearman's rank correlation: Pearson's of the [`average_ranks`], as the statistic of
/// `scipy.stats.spearmanr`. `None` when undefined (see [`pearson`]).
///
/// An error if the lengths differ.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Option<f64>, TrainDataError> {
    check_lengths(x, y)?;
    Ok(spearman_unchecked(x, y))
}

fn spearman_unchecked(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    pearson_unchecked(&average_ranks(x), &average_ranks(y))
}

/// 1-based ranks, tied values sharing the mean of their ranks, as `scipy.stats.rankdata` with
/// `method="average"`. NaNs rank last.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let v = x[order[start]];
        let mut end = start + 1;
        // `==` so that 0.0 and -0.0 tie; NaNs (never equal) each get their own rank.
        while end < order.len() && x[order[end]] == v {
            end += 1;
        }
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Accuracy, balanced accuracy, confusion matrix and per-class recall of `pred_labels` against
/// `true_labels`, for classes indexing `class_names`.
///
/// An error if the lengths differ or a label is not below `class_names.len()`.
pub fn classification_metrics(
    true_labels: &[usize],
    pred_labels: &[usize],
    class_names: &[String],
) -> Result<ClassificationMetrics, TrainDataError> {
    if true_labels.len() != pred_labels.len() {
        return Err(TrainDataError::LengthMismatch {
            what: "predicted class labels",
            found: pred_labels.len(),
            expected: true_labels.len(),
        });
    }
    let k = class_names.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&t, &p) in true_labels.iter().zip(pred_labels) {
        if t >= k || p >= k {
            return Err(TrainDataError::LengthMismatch {
                what: "classes (a label is out of range)",
                found: t.max(p) + 1,
                expected: k,
            });
        }
        confusion[t][p] += 1;
    }
    let n = true_labels.len();
    let support: Vec<usize> = confusion.iter().map(|row| row.iter().sum()).collect();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let per_class_recall: Vec<Option<f64>> = (0..k)
        .map(|c| (support[c] > 0).then(|| confusion[c][c] as f64 / support[c] as f64))
        .collect();
    let defined: Vec<f64> = per_class_recall.iter().flatten().copied().collect();
    let share = |count: usize| (n > 0).then(|| count as f64 / n as f64);
    Ok(ClassificationMetrics {
        n,
        accuracy: share(correct),
        majority_rate: share(support.iter().copied().max().unwrap_or(0)),
        balanced_accuracy: (!defined.is_empty())
            .then(|| sum(defined.iter().copied()) / defined.len() as f64),
        class_names: class_names.to_vec(),
        confusion,
        support,
        per_class_recall,
    })
}

fn check_lengths(a: &[f64], b: &[f64]) -> Result<(), TrainDataError> {
    if a.len() != b.len() {
        return Err(TrainDataError::LengthMismatch {
            what: "predictions",
            found: b.len(),
            expected: a.len(),
        });
    }
    Ok(())
}

fn is_constant(x: &[f64]) -> bool {
    x.iter().all(|&v| v == x[0])
}

/// Deviations from the mean, scaled by the largest (against overflow), then to unit norm
/// (as SciPy's `pearsonr`). `None` if they are all zero.
fn scaled_deviations(x: &[f64]) -> Option<Vec<f64>> {
    let m = mean(x.iter().copied(), x.len());
    let mut d: Vec<f64> = x.iter().map(|v| v - m).collect();
    let max = d.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        return None;
    }
    d.iter_mut().for_each(|v| *v /= max);
    let norm = sum(d.iter().map(|v| v * v)).sqrt();
    d.iter_mut().for_each(|v| *v /= norm);
    Some(d)
}

fn mean(values: impl Iterator<Item = f64>, n: usize) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    sum(values) / n as f64
}

/// Neumaier's compensated sum (plain sum once it is not finite).
fn sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = s + v;
        c += if s.abs() >= v.abs() {
            (s - t) + v
        } else {
            (v - t) + s
        };
        s = t;
    }
    if s.is_finite() {
        s + c
    } else {
        s
    }
}

fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            [4.0, 1.0, 4.0, 2.0, 4.0]
        );
        assert_eq!(average_ranks(&[0.0, -0.0]), [1.5, 1.5]);
        assert!(average_ranks(&[]).is_empty());
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let m = regression_metrics(&[], &[]).unwrap();
        assert_eq!(m.n, 0);
        assert!(m.mse.is_nan() && m.r2.is_none() && m.pearson.is_none());
        let m = regression_metrics(&[1.0], &[2.0]).unwrap();
        assert_eq!(m.mse, 1.0);
        assert!(m.r2.is_none() && m.pearson.is_none() && m.spearman.is_none());
        // Constant truth: sklearn's force_finite convention.
        assert_eq!(r2_score(&[0.1; 10], &[0.1; 10]).unwrap(), 1.0);
        assert_eq!(r2_score(&[0.1; 10], &[0.2; 10]).unwrap(), 0.0);
        assert_eq!(pearson(&[0.1; 10], &[0.2; 10]).unwrap(), None);
        // NaN predictions (a diverged network).
        let m = regression_metrics(&[1.0, 2.0, 3.0], &[f64::NAN, 2.0, 3.0]).unwrap();
        assert!(m.mse.is_nan() && m.r2.is_none() && m.pearson.is_none() && m.spearman.is_none());
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"mse\":null"), "{json}");
        let back: RegressionMetrics = serde_json::from_str(&json).unwrap();
        assert!(back.mse.is_nan());
        // Infinite predictions: MSE infinite, correlations undefined, Spearman still defined.
        let m = regression_metrics(&[1.0, 2.0, 3.0], &[f64::INFINITY, 2.0, 3.0]).unwrap();
        assert_eq!(m.mse, f64::INFINITY);
        assert_eq!(m.pearson, None);
        assert!((m.spearman.unwrap() + 0.5).abs() < 1e-15);
        let c = classification_metrics(&[], &[], &["a".into(), "b".into()]).unwrap();
        assert_eq!((c.accuracy, c.balanced_accuracy), (None, None));
    }

    #[test]
    fn compensated_sum_keeps_small_terms() {
        assert_eq!(sum([1e16, 1.0, -1e16].into_iter()), 1.0);
        assert_eq!(sum([f64::INFINITY, 1.0].into_iter()), f64::INFINITY);
    }

    #[test]
    fn classification_basics() {
        let names: Vec<String> = ["E", "S", "Irr"].iter().map(|s| s.to_string()).collect();
        let c = classification_metrics(&[0, 0, 1, 1, 1, 0], &[0, 1, 1, 1, 0, 0], &names).unwrap();
        assert_eq!(c.confusion, [vec![2, 1, 0], vec![1, 2, 0], vec![0, 0, 0]]);
        assert_eq!(c.accuracy, Some(4.0 / 6.0));
        assert_eq!(c.majority_rate, Some(0.5));
        assert_eq!(c.per_class_recall, [Some(2.0 / 3.0), Some(2.0 / 3.0), None]);
        assert_eq!(c.support, [3, 3, 0]);
    }

    #[derive(Deserialize)]
    struct Fixture {
        regression: Vec<RegressionCase>,
        classification: Vec<ClassificationCase>,
    }

    #[derive(Deserialize)]
    struct RegressionCase {
        name: String,
        /// IEEE-754 bit patterns, so the inputs are exactly Python's.
        y_true_bits: Vec<u64>,
        y_pred_bits: Vec<u64>,
        mse: f64,
        mae: f64,
        r2: Option<f64>,
        pearson: Option<f64>,
        spearman: Option<f64>,
    }

    #[derive(Deserialize)]
    struct ClassificationCase {
        name: String,
        class_names: Vec<String>,
        y_true: Vec<usize>,
        y_pred: Vec<usize>,
        accuracy: f64,
        balanced_accuracy: f64,
        confusion: Vec<Vec<usize>>,
        recall: Vec<Option<f64>>,
    }

    fn close(name: &str, what: &str, got: f64, want: f64) {
        let tol = 1e-12 * want.abs().max(got.abs());
        assert!(
            (got - want).abs() <= tol,
            "{name}: {what} = {got:e}, sklearn/scipy {want:e} (diff {:e})",
            (got - want).abs()
        );
    }

    fn close_opt(name: &str, what: &str, got: Option<f64>, want: Option<f64>) {
        match (got, want) {
            (Some(g), Some(w)) => close(name, what, g, w),
            (None, None) => {}
            _ => panic!("{name}: {what} = {got:?}, sklearn/scipy {want:?}"),
        }
    }

    #[test]
    fn parity_with_sklearn_and_scipy() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/train/metrics.json"
        ))
        .expect(
            "fixtures/train/metrics.json (make it with fixtures/train/make_metrics_fixture.py)",
        );
        let fixture: Fixture = serde_json::from_str(&text).unwrap();
        assert!(fixture.regression.len() >= 5);
        for case in &fixture.regression {
            let t: Vec<f64> = case
                .y_true_bits
                .iter()
                .map(|&b| f64::from_bits(b))
                .collect();
            let p: Vec<f64> = case
                .y_pred_bits
                .iter()
                .map(|&b| f64::from_bits(b))
                .collect();
            let m = regression_metrics(&t, &p).unwrap();
            let name = &case.name;
            close(name, "mse", m.mse, case.mse);
            close(name, "rmse", m.rmse, case.mse.sqrt());
            close(name, "mae", m.mae, case.mae);
            close_opt(name, "r2", m.r2, case.r2);
            close_opt(name, "pearson", m.pearson, case.pearson);
            close_opt(name, "spearman", m.spearman, case.spearman);
        }
        for case in &fixture.classification {
            let c = classification_metrics(&case.y_true, &case.y_pred, &case.class_names).unwrap();
            let name = &case.name;
            close(name, "accuracy", c.accuracy.unwrap(), case.accuracy);
            close(
                name,
                "balanced_accuracy",
                c.balanced_accuracy.unwrap(),
                case.balanced_accuracy,
            );
            assert_eq!(c.confusion, case.confusion, "{name}");
            for (got, want) in c.per_class_recall.iter().zip(&case.recall) {
                close_opt(name, "recall", *got, *want);
            }
        }
    }
}
