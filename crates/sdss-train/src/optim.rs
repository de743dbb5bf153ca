//! The optimiser and the learning-rate schedule of sdss_CNN's recipe, with Keras's exact semantics.

use serde::{Deserialize, Serialize};

use crate::network::Tensors;
use crate::real::Real;

/// Adam as tf_keras 2 computes it (`tf_keras.optimizers.Adam.update_step`):
///
/// ```text
/// t      = iterations + 1
/// α      = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
/// m     += (g − m) · (1 − β₁)
/// v     += (g² − v) · (1 − β₂)
/// θ     −= α · m / (√v + ε)
/// ```
///
/// with Keras's defaults β₁ = 0.9, β₂ = 0.999, ε = 1e-7 (not PyTorch's 1e-8).
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<T> {
    /// β₁.
    pub beta_1: f64,
    /// β₂.
    pub beta_2: f64,
    /// ε.
    pub epsilon: f64,
    /// Steps taken so far (Keras `iterations`).
    pub iterations: u64,
    /// First moments, shaped like the parameters.
    pub m: Tensors<T>,
    /// Second moments, shaped like the parameters.
    pub v: Tensors<T>,
}

impl<T: Real> Adam<T> {
    /// A fresh optimiser for parameters shaped like `params`, with Keras's default hyper-parameters.
    pub fn new(params: &Tensors<T>) -> Self {
        Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            iterations: 0,
            m: Tensors::zeros_like(params),
            v: Tensors::zeros_like(params),
        }
    }

    /// One update of `params` by `grads` at learning rate `lr`.
    pub fn step(&mut self, params: &mut Tensors<T>, grads: &Tensors<T>, lr: f64) {
        self.iterations += 1;
        let t = self.iterations as i32;
        // Keras computes the powers and α in float32 for float32 variables; in f64 they differ by ~1e-8
        // relative, far below the parity tolerance.
        let alpha =
            T::from_f64(lr * (1.0 - self.beta_2.powi(t)).sqrt() / (1.0 - self.beta_1.powi(t)));
        let (one_b1, one_b2) = (
            T::from_f64(1.0 - self.beta_1),
            T::from_f64(1.0 - self.beta_2),
        );
        let eps = T::from_f64(self.epsilon);
        for (((p, g), m), v) in params
            .data
            .iter_mut()
            .zip(&grads.data)
            .zip(&mut self.m.data)
            .zip(&mut self.v.data)
        {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m += (g - *m) * one_b1;
                *v += (g * g - *v) * one_b2;
                *p -= *m * alpha / (v.sqrt() + eps);
            }
        }
    }
}

/// Keras's `ReduceLROnPlateau` in mode `min` (monitoring the validation loss): when the loss has not
/// improved by more than `min_delta` for `patience` epochs, the learning rate is multiplied by `factor`,
/// never below `min_lr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    /// Factor the rate is multiplied by (sdss_CNN: 0.2).
    pub factor: f64,
    /// Epochs without improvement before a reduction (sdss_CNN: 5).
    pub patience: u32,
    /// Smallest rate (sdss_CNN: 1e-5).
    pub min_lr: f64,
    /// Improvement smaller than this does not count (Keras default 1e-4).
    pub min_delta: f64,
    /// Epochs to wait after a reduction before counting again (Keras default 0).
    pub cooldown: u32,
    /// Best loss so far (infinite before the first epoch; JSON has no infinity, so it is written as null).
    #[serde(with = "finite_or_null")]
    pub best: f64,
    /// Epochs since the best.
    pub wait: u32,
    /// Cool-down epochs left.
    pub cooldown_counter: u32,
}

impl ReduceLrOnPlateau {
    /// sdss_CNN's schedule: factor 0.2, patience 5, min_lr 1e-5 (Keras defaults otherwise).
    pub fn sdss_cnn() -> Self {
        ReduceLrOnPlateau {
            factor: 0.2,
            patience: 5,
            min_lr: 1e-5,
            min_delta: 1e-4,
            cooldown: 0,
            best: f64::INFINITY,
            wait: 0,
            cooldown_counter: 0,
        }
    }

    /// Called at the end of an epoch with its validation loss and the rate it used; returns the rate for
    /// the next epoch. Mirrors `ReduceLROnPlateau.on_epoch_end` line by line.
    pub fn on_epoch_end(&mut self, val_loss: f64, lr: f64) -> f64 {
        let in_cooldown = |c: u32| c > 0;
        if in_cooldown(self.cooldown_counter) {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if val_loss < self.best - self.min_delta {
            self.best = val_loss;
            self.wait = 0;
        } else if !in_cooldown(self.cooldown_counter) {
            self.wait += 1;
            // Keras compares the float32 rate with float32(min_lr).
            if self.wait >= self.patience && (lr as f32) > (self.min_lr as f32) {
                self.cooldown_counter = self.cooldown;
                self.wait = 0;
                return (lr * self.factor).max(self.min_lr);
            }
        }
        lr
    }
}

/// Serialises a float that may be infinite as a JSON number, or null when it is not finite.
mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_each_weight_by_about_lr() {
        let mut p = Tensors {
            data: vec![vec![1.0f64, -2.0]],
        };
        let g = Tensors {
            data: vec![vec![0.5, -3.0]],
        };
        let mut adam = Adam::new(&p);
        adam.step(&mut p, &g, 0.001);
        // After one step m/√v = sign(g)·(1−β₁)/√(1−β₂), and α undoes both factors (ε shifts it by
        // ~ε/√v·lr, 6e-9 here).
        assert!((p.data[0][0] - (1.0 - 0.001)).abs() < 1e-8, "{:?}", p.data);
        assert!((p.data[0][1] - (-2.0 + 0.001)).abs() < 1e-8, "{:?}", p.data);
    }

    #[test]
    fn plateau_reduces_after_patience_and_stops_at_min_lr() {
        let mut s = ReduceLrOnPlateau::sdss_cnn();
        let mut lr = 1e-3;
        lr = s.on_epoch_end(1.0, lr);
        for _ in 0..4 {
            lr = s.on_epoch_end(1.0, lr);
            assert_eq!(lr, 1e-3);
        }
        lr = s.on_epoch_end(0.99995, lr); // not better by more than min_delta
        assert!((lr - 2e-4).abs() < 1e-12);
        for _ in 0..20 {
            lr = s.on_epoch_end(1.0, lr);
        }
        assert_eq!(lr, 1e-5);
        // An improvement resets the count.
        let mut s = ReduceLrOnPlateau::sdss_cnn();
        for v in [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5] {
            assert_eq!(s.on_epoch_end(v, 1e-3), 1e-3);
        }
    }
}
