//! Losses and their gradients with respect to the network's outputs, as Keras defines them.

use crate::error::{Result, TrainError};
use crate::network::{BatchTargets, Loss};
use crate::real::Real;

/// Replaces each row of `x (rows × cols)` by its softmax, computed from the row's maximum.
pub fn softmax_in_place<T: Real>(x: &mut [T], cols: usize) {
    for row in x.chunks_exact_mut(cols) {
        let max = row.iter().fold(row[0], |m, &v| m.max(v));
        let mut sum = T::ZERO;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = T::ONE / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// The loss of `outputs (n × cols)` against `targets` and its gradient with respect to the outputs.
///
/// - Mean squared error: Keras `mse`, the mean over the outputs then over the batch:
///   `L = Σ (y − t)² / (n·cols)`, `∂L/∂y = 2 (y − t) / (n·cols)`.
/// - Softmax cross-entropy: Keras `sparse_categorical_crossentropy` on a softmax layer, which works on the
///   logits: `L = mean(−log softmax(z)_t)`, `∂L/∂z = (softmax(z) − onehot(t)) / n`.
///
/// The loss is accumulated in f64.
pub fn loss_and_gradient<T: Real>(
    outputs: &[T],
    n: usize,
    cols: usize,
    loss: Loss,
    targets: BatchTargets<'_, T>,
) -> Result<(f64, Vec<T>)> {
    match (loss, targets) {
        (Loss::MeanSquaredError, BatchTargets::Values(t)) => {
            if t.len() != n * cols {
                return Err(TrainError::Invalid(format!(
                    "{} target values for {n} images of {cols} outputs",
                    t.len()
                )));
            }
            let scale = T::from_f64(2.0 / (n * cols) as f64);
            let mut sum = 0.0;
            let grad = outputs
                .iter()
                .zip(t)
                .map(|(&y, &t)| {
                    let d = y - t;
                    sum += d.to_f64() * d.to_f64();
                    d * scale
                })
                .collect();
            Ok((sum / (n * cols) as f64, grad))
        }
        (Loss::SoftmaxCrossEntropy, BatchTargets::Classes(labels)) => {
            if labels.len() != n {
                return Err(TrainError::Invalid(format!(
                    "{} class labels for {n} images",
                    labels.len()
                )));
            }
            if let Some(&bad) = labels.iter().find(|&&l| l >= cols) {
                return Err(TrainError::Invalid(format!(
                    "class label {bad} for a network with {cols} outputs"
                )));
            }
            let mut p = outputs.to_vec();
            softmax_in_place(&mut p, cols);
            let inv_n = T::from_f64(1.0 / n as f64);
            let mut sum = 0.0;
            for ((row, z), &label) in p
                .chunks_exact_mut(cols)
                .zip(outputs.chunks_exact(cols))
                .zip(labels)
            {
                // −log softmax from the logits (log-sum-exp), so a tiny probability does not round to log 0.
                let max = z.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.to_f64()));
                let lse: f64 = z.iter().map(|v| (v.to_f64() - max).exp()).sum::<f64>().ln();
                sum += lse - (z[label].to_f64() - max);
                row[label] -= T::ONE;
                row.iter_mut().for_each(|v| *v *= inv_n);
            }
            Ok((sum / n as f64, p))
        }
        (loss, _) => Err(TrainError::Invalid(format!(
            "loss {loss:?} needs {} targets",
            match loss {
                Loss::MeanSquaredError => "numeric",
                Loss::SoftmaxCrossEntropy => "class",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mse_matches_the_definition() {
        let (l, g) = loss_and_gradient(
            &[1.0f64, 2.0],
            2,
            1,
            Loss::MeanSquaredError,
            BatchTargets::Values(&[0.0, 4.0]),
        )
        .unwrap();
        assert_eq!(l, (1.0 + 4.0) / 2.0);
        assert_eq!(g, [1.0, -2.0]);
    }

    #[test]
    fn cross_entropy_gradient_sums_to_zero_per_row() {
        let z = [0.5f64, -1.0, 2.0, 0.0, 0.0, 0.0];
        let (l, g) = loss_and_gradient(
            &z,
            2,
            3,
            Loss::SoftmaxCrossEntropy,
            BatchTargets::Classes(&[2, 0]),
        )
        .unwrap();
        let want = (-(2.0f64.exp() / (0.5f64.exp() + (-1.0f64).exp() + 2.0f64.exp())).ln()
            + 3.0f64.ln())
            / 2.0;
        assert!((l - want).abs() < 1e-12, "{l} {want}");
        for row in g.chunks(3) {
            assert!(row.iter().sum::<f64>().abs() < 1e-12);
        }
    }

    #[test]
    fn wrong_targets_are_errors() {
        assert!(loss_and_gradient(
            &[1.0f64],
            1,
            1,
            Loss::MeanSquaredError,
            BatchTargets::Classes(&[0])
        )
        .is_err());
        assert!(loss_and_gradient(
            &[1.0f64, 0.0],
            1,
            2,
            Loss::SoftmaxCrossEntropy,
            BatchTargets::Classes(&[2])
        )
        .is_err());
    }
}
