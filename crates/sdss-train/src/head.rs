//! Multi-layer perceptrons on top of the network's embedding: the projection head (and SimSiam's
//! predictor) of self-supervised training. They exist only during training and are dropped at the end.
//!
//! Dense layers with a ReLU between consecutive layers and none after the last, the layout of Keras
//! `Dense` kernels (`in × out`, row-major) and Glorot-uniform initialisation with zero biases (Keras's
//! defaults).

use gemm::Parallelism;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::network::Tensors;
use crate::real::{gemm, Mat, Real};

/// The shape of a perceptron: its input width, then each layer's width.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpShape {
    /// Width of the input.
    pub input: usize,
    /// Width of each layer, in order; the last is the output.
    pub layers: Vec<usize>,
}

impl MlpShape {
    /// Checks that there is at least one layer and no width is zero.
    pub fn validate(&self, what: &str) -> Result<()> {
        if self.layers.is_empty() || self.input == 0 || self.layers.contains(&0) {
            return Err(TrainError::Invalid(format!(
                "the {what} needs at least one layer and no zero width (got {} -> {:?})",
                self.input, self.layers
            )));
        }
        Ok(())
    }

    /// Width of the output.
    pub fn output(&self) -> usize {
        *self.layers.last().unwrap_or(&self.input)
    }

    /// `(in, out)` of each layer.
    fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        std::iter::once(self.input)
            .chain(self.layers.iter().copied())
            .zip(self.layers.iter().copied())
    }

    /// Number of tensors (a kernel and a bias per layer).
    pub fn tensor_count(&self) -> usize {
        2 * self.layers.len()
    }

    /// Glorot-uniform kernels and zero biases from `seed`.
    pub fn init<T: Real>(&self, seed: u64) -> Tensors<T> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(self.tensor_count());
        for (i, o) in self.pairs() {
            let limit = (6.0 / (i + o) as f64).sqrt();
            data.push(
                (0..i * o)
                    .map(|_| T::from_f64(rng.random_range(-limit..limit)))
                    .collect(),
            );
            data.push(vec![T::ZERO; o]);
        }
        Tensors { data }
    }

    /// Checks that `params` are shaped like this perceptron.
    pub fn check(&self, params: &[Vec<impl Sized>]) -> Result<()> {
        let ok = params.len() == self.tensor_count()
            && self
                .pairs()
                .enumerate()
                .all(|(l, (i, o))| params[2 * l].len() == i * o && params[2 * l + 1].len() == o);
        if ok {
            Ok(())
        } else {
            Err(TrainError::Invalid(format!(
                "the head's tensors do not match its shape {} -> {:?}",
                self.input, self.layers
            )))
        }
    }
}

/// What the forward pass keeps for the backward pass: each layer's input, and the output.
pub struct MlpCache<T> {
    inputs: Vec<Vec<T>>,
    /// The output `(n, output)`.
    pub output: Vec<T>,
    n: usize,
}

/// The forward pass of `x (n × input)` through the perceptron with parameters `params`.
pub fn forward<T: Real>(shape: &MlpShape, params: &[Vec<T>], x: &[T]) -> Result<MlpCache<T>> {
    shape.check(params)?;
    if !x.len().is_multiple_of(shape.input) {
        return Err(TrainError::Invalid(format!(
            "{} head inputs are not rows of {}",
            x.len(),
            shape.input
        )));
    }
    let n = x.len() / shape.input;
    let layers = shape.layers.len();
    let mut inputs = Vec::with_capacity(layers);
    let mut h = x.to_vec();
    for (l, (i, o)) in shape.pairs().enumerate() {
        let mut y = Vec::with_capacity(n * o);
        for _ in 0..n {
            y.extend_from_slice(&params[2 * l + 1]);
        }
        gemm(
            n,
            o,
            i,
            &mut y,
            o,
            true,
            Mat::rows(&h, i),
            Mat::rows(&params[2 * l], o),
            Parallelism::None,
        );
        if l + 1 < layers {
            y.iter_mut().for_each(|v| {
                if *v < T::ZERO {
                    *v = T::ZERO
                }
            });
        }
        inputs.push(std::mem::replace(&mut h, y));
    }
    Ok(MlpCache {
        inputs,
        output: h,
        n,
    })
}

/// The backward pass: the parameters' gradients and the gradient with respect to the input, given the
/// gradient `dy (n × output)` with respect to the output.
pub fn backward<T: Real>(
    shape: &MlpShape,
    params: &[Vec<T>],
    cache: &MlpCache<T>,
    dy: &[T],
) -> Result<(Vec<Vec<T>>, Vec<T>)> {
    let n = cache.n;
    if dy.len() != n * shape.output() {
        return Err(TrainError::Invalid(format!(
            "the head's output gradient has {} values, expected {}",
            dy.len(),
            n * shape.output()
        )));
    }
    let pairs: Vec<(usize, usize)> = shape.pairs().collect();
    let mut grads: Vec<Vec<T>> = params.iter().map(|t| vec![T::ZERO; t.len()]).collect();
    let mut g = dy.to_vec();
    for l in (0..pairs.len()).rev() {
        let (i, o) = pairs[l];
        let x = &cache.inputs[l];
        gemm(
            i,
            o,
            n,
            &mut grads[2 * l],
            o,
            false,
            Mat::transposed(x, i),
            Mat::rows(&g, o),
            Parallelism::None,
        );
        for row in g.chunks_exact(o) {
            for (b, v) in grads[2 * l + 1].iter_mut().zip(row) {
                *b += *v;
            }
        }
        let mut dx = vec![T::ZERO; n * i];
        gemm(
            n,
            i,
            o,
            &mut dx,
            i,
            false,
            Mat::rows(&g, o),
            Mat::transposed(&params[2 * l], o),
            Parallelism::None,
        );
        if l > 0 {
            // The input of layer l is the ReLU output of layer l − 1.
            dx.iter_mut().zip(x).for_each(|(d, v)| {
                if *v <= T::ZERO {
                    *d = T::ZERO
                }
            });
        }
        g = dx;
    }
    Ok((grads, g))
}
