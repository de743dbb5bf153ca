//! The trainable network: sdss-cnn's layer sequence with its parameters as flat tensors, a forward pass that
//! keeps what the backward pass needs, and the backward pass itself.
//!
//! Convolution blocks run per image (spread over rayon's threads in fixed chunks of [`CHUNK`] images, so
//! the order of every floating-point sum, and with it the result, does not depend on the thread count or on
//! scheduling); the three Dense layers run on the whole batch as GEMMs.

use gemm::Parallelism;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sdss_cnn::config::Hwc;
use sdss_cnn::{CnnConfig, CnnWeights, OutputActivation};

use crate::conv::{self, ConvScratch, ConvShape};
use crate::error::{Result, TrainError};
use crate::real::{as_f32, gemm, Mat, Real};
use sdss_cnn::fast::Winograd5x5;

/// Images per unit of parallel work. Fixed, so that gradients are summed in the same order whatever the
/// number of threads.
pub const CHUNK: usize = 4;

/// Parameters (or gradients, or optimiser moments) of a network: one flat tensor per weight, in the order
/// of [`CnnConfig::tensor_specs`] (`conv2d.kernel`, `conv2d.bias`, …, `dense_2.bias`), Keras layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensors<T> {
    /// The tensors' values, row-major.
    pub data: Vec<Vec<T>>,
}

impl<T: Real> Tensors<T> {
    /// Zeros shaped like `other`.
    pub fn zeros_like(other: &Tensors<T>) -> Self {
        Tensors {
            data: other.data.iter().map(|t| vec![T::ZERO; t.len()]).collect(),
        }
    }

    /// `self += other`, element by element.
    pub fn add_assign(&mut self, other: &Tensors<T>) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += *y;
            }
        }
    }

    /// Total number of values.
    pub fn len(&self) -> usize {
        self.data.iter().map(Vec::len).sum()
    }

    /// Whether there are no values at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The loss a network is trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean squared error over the batch and the outputs (Keras `mse`).
    MeanSquaredError,
    /// Cross-entropy of the softmax of the outputs against integer class labels (Keras
    /// `sparse_categorical_crossentropy` on a softmax output).
    SoftmaxCrossEntropy,
}

/// Targets of one batch.
#[derive(Clone, Copy, Debug)]
pub enum BatchTargets<'a, T> {
    /// `(batch, outputs)` values, row-major.
    Values(&'a [T]),
    /// One class label per image.
    Classes(&'a [usize]),
}

/// Random choices of one training step: the dropout masks are drawn from `seed` per image, so a batch
/// gives the same masks whatever the thread count.
#[derive(Clone, Copy, Debug)]
pub struct StepRandomness {
    /// Seed of this step's dropout masks.
    pub seed: u64,
    /// Whether dropout is active (training); `false` makes dropout the identity.
    pub dropout: bool,
}

/// A network being trained: its architecture and parameters.
#[derive(Clone, Debug)]
pub struct Network<T> {
    config: CnnConfig,
    shapes: Vec<(Hwc, Hwc, Hwc)>,
    /// The parameters.
    pub params: Tensors<T>,
    winograd: bool,
}

/// What the forward pass of one image keeps for the backward pass, per convolution block.
#[derive(Default)]
struct BlockCache<T> {
    /// ReLU output of the convolution (before pooling).
    act: Vec<T>,
    /// Index into `act` of each pooled output's maximum.
    argmax: Vec<u32>,
    /// Dropout scale per output value (0 or 1/(1−rate)); empty without dropout.
    drop: Vec<T>,
    /// The block's output (after pooling and dropout): the next block's input.
    out: Vec<T>,
}

/// What the forward pass of a batch keeps for the backward pass.
pub struct ForwardCache<T> {
    images: Vec<Vec<BlockCache<T>>>,
    /// `(batch, flatten)`: the last block's output.
    flat: Vec<T>,
    /// `dense` after ReLU, and its dropout scale.
    h1: Vec<T>,
    drop1: Vec<T>,
    /// `dense` after dropout: the input of `dense_1`.
    h1d: Vec<T>,
    drop2: Vec<T>,
    /// `dense_1` after dropout: the input of `dense_2`.
    h2d: Vec<T>,
    /// The network's output `(batch, outputs)`: before any softmax.
    pub logits: Vec<T>,
    batch: usize,
}

impl<T> ForwardCache<T> {
    /// The `dense` layer's output after its ReLU and dropout, `(batch, dense_units)`: the features a
    /// trained network gives at the `dense` tap, seen during training.
    pub fn dense_after_dropout(&self) -> &[T] {
        &self.h1d
    }

    /// Number of images in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// The dropout masks of one training step, as [`Network::forward`] draws them: each is 0 or
/// 1/(1 − rate) per value, channels-last, `None` where a layer has no dropout (or dropout is off).
#[derive(Clone, Debug, PartialEq)]
pub struct DropoutMasks<T> {
    /// Per convolution block: `(batch, height, width, filters)` of the block's output.
    pub conv: Vec<Option<Vec<T>>>,
    /// `(batch, dense_units)`, after `dense`'s ReLU.
    pub dense: Option<Vec<T>>,
    /// `(batch, dense_1_units)`, after `dense_1`.
    pub dense_1: Option<Vec<T>>,
}

fn dropout_mask<T: Real>(rng: &mut ChaCha8Rng, n: usize, rate: f32) -> Vec<T> {
    // Keras keeps a unit when a uniform draw is ≥ rate and scales it by 1/(1 − rate). A uniform f32 draw
    // is (u >> 8)·2⁻²⁴ for a random u32 u, so the test is an integer comparison with ⌈rate·2²⁴⌉, done on
    // words drawn in bulk.
    let scale = T::from_f64(1.0 / (1.0 - rate as f64));
    let threshold = (rate as f64 * (1u64 << 24) as f64).ceil() as u32;
    let mut words = vec![0u32; n];
    rng.fill(&mut words[..]);
    words
        .iter()
        .map(|&u| {
            if (u >> 8) >= threshold {
                scale
            } else {
                T::ZERO
            }
        })
        .collect()
}

/// A seed for stream `stream` of step `seed` (SplitMix64), so that per-image and per-layer streams differ.
pub(crate) fn sub_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn col_sums<T: Real>(x: &[T], cols: usize, out: &mut [T]) {
    for row in x.chunks_exact(cols) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += *v;
        }
    }
}

impl<T: Real> Network<T> {
    /// A network with the given parameters (checked against the configuration's tensor shapes).
    pub fn new(config: CnnConfig, params: Tensors<T>) -> Result<Self> {
        let shapes = config.layer_shapes()?;
        let specs = config.tensor_specs()?;
        if specs.len() != params.data.len() {
            return Err(TrainError::Invalid(format!(
                "the architecture has {} weight tensors, {} were given",
                specs.len(),
                params.data.len()
            )));
        }
        for (s, t) in specs.iter().zip(&params.data) {
            let n: usize = s.shape.iter().product();
            if n != t.len() {
                return Err(TrainError::Invalid(format!(
                    "tensor `{}` has {} values, its shape {:?} needs {n}",
                    s.key(),
                    t.len(),
                    s.shape
                )));
            }
        }
        Ok(Network {
            config,
            shapes,
            params,
            winograd: true,
        })
    }

    /// Switches the Winograd path of 5×5 layers (F(4×4, 5×5) for the forward pass and the input gradient,
    /// F(5×5, 4×4) for the weight gradient; f32 only) on (the default) or off (plain GEMMs; results agree
    /// to ~1e-6 relative).
    pub fn with_winograd(mut self, enabled: bool) -> Self {
        self.winograd = enabled;
        self
    }

    /// Winograd kernels of the 5×5 layers for `kernel_of(l)` (the forward kernels, or the flipped ones of
    /// the input gradient), when the network computes in f32.
    fn winograd_kernels(
        &self,
        kernel_of: impl Fn(usize) -> Option<(Vec<T>, usize, usize)>,
    ) -> Vec<Option<Winograd5x5>> {
        (0..self.shapes.len())
            .map(|l| {
                let layer = &self.config.conv_layers[l];
                if !self.winograd || layer.kernel_size != [5, 5] {
                    return None;
                }
                let (kernel, c, f) = kernel_of(l)?;
                let kernel = as_f32(&kernel)?;
                Winograd5x5::new(kernel, c, f, &vec![0.0; f])
            })
            .collect()
    }

    /// A network with the weights of an sdss-cnn model.
    pub fn from_weights(config: CnnConfig, weights: &CnnWeights) -> Result<Self> {
        let tensors = weights.to_tensors(&config)?;
        let data = tensors
            .into_iter()
            .map(|(_, t)| t.data.iter().map(|&v| T::from_f64(v as f64)).collect())
            .collect();
        Self::new(config, Tensors { data })
    }

    /// The network as an sdss-cnn model (its fast inference engine), weights rounded to f32.
    pub fn to_model(&self) -> Result<sdss_cnn::CnnModel> {
        Ok(sdss_cnn::CnnModel::new(
            self.config.clone(),
            self.to_weights()?,
        )?)
    }

    /// The weights as sdss-cnn's [`CnnWeights`] (rounded to f32), for inference and for saving.
    pub fn to_weights(&self) -> Result<CnnWeights> {
        let mut map = std::collections::HashMap::new();
        for (spec, t) in self
            .config
            .tensor_specs()?
            .into_iter()
            .zip(&self.params.data)
        {
            map.insert(
                spec.key(),
                sdss_cnn::weights::NamedTensor {
                    shape: spec.shape.clone(),
                    data: t.iter().map(|v| v.to_f64() as f32).collect(),
                },
            );
        }
        Ok(CnnWeights::from_tensors(
            &self.config,
            &map,
            std::path::Path::new("<training>"),
        )?)
    }

    /// The architecture.
    pub fn config(&self) -> &CnnConfig {
        &self.config
    }

    fn conv_shape(&self, l: usize) -> ConvShape {
        let layer = &self.config.conv_layers[l];
        ConvShape {
            input: self.shapes[l].0,
            kh: layer.kernel_size[0],
            kw: layer.kernel_size[1],
            filters: layer.filters,
        }
    }

    fn image_len(&self) -> usize {
        self.config.input_height * self.config.input_width * self.config.input_channels
    }

    fn dense_index(&self) -> usize {
        2 * self.config.conv_layers.len()
    }

    /// The forward pass of one image through the convolution blocks.
    fn forward_image(
        &self,
        image: &[T],
        rng: Option<&mut ChaCha8Rng>,
        fast: &[Option<Winograd5x5>],
        scratch: &mut ConvScratch<T>,
    ) -> Vec<BlockCache<T>> {
        let mut rng = rng;
        let mut blocks: Vec<BlockCache<T>> = Vec::with_capacity(self.shapes.len());
        for (l, &(_, conv_shape, out_shape)) in self.shapes.iter().enumerate() {
            let layer = &self.config.conv_layers[l];
            let s = self.conv_shape(l);
            let input = if l == 0 { image } else { &blocks[l - 1].out };
            let (oh, ow, f) = conv_shape;
            let mut act = vec![T::ZERO; oh * ow * f];
            let bias = &self.params.data[2 * l + 1];
            conv::conv_forward_fast(
                input,
                &s,
                &self.params.data[2 * l],
                Some(bias),
                fast[l].as_ref(),
                &mut act,
                scratch,
            );
            if fast[l].is_some() {
                // The Winograd kernel carries no bias.
                act.chunks_exact_mut(f)
                    .for_each(|px| px.iter_mut().zip(bias).for_each(|(a, b)| *a += *b));
            }
            conv::relu(&mut act);
            let out_len = out_shape.0 * out_shape.1 * out_shape.2;
            let (mut out, argmax) = match layer.max_pool {
                Some(p) => {
                    let mut out = vec![T::ZERO; out_len];
                    let mut argmax = vec![0u32; out_len];
                    conv::maxpool_forward(&act, conv_shape, p, &mut out, &mut argmax);
                    (out, argmax)
                }
                None => (act.clone(), Vec::new()),
            };
            let drop = match rng.as_deref_mut() {
                Some(r) if layer.dropout > 0.0 => {
                    let d = dropout_mask(r, out_len, layer.dropout);
                    out.iter_mut().zip(&d).for_each(|(o, s)| *o *= *s);
                    d
                }
                _ => Vec::new(),
            };
            blocks.push(BlockCache {
                act,
                argmax,
                drop,
                out,
            });
        }
        blocks
    }

    /// `y (n × out) = x (n × in) · W + b`.
    fn dense(&self, x: &[T], n: usize, index: usize) -> Vec<T> {
        let (w, b) = (&self.params.data[index], &self.params.data[index + 1]);
        let n_out = b.len();
        let n_in = w.len() / n_out;
        let mut y = Vec::with_capacity(n * n_out);
        for _ in 0..n {
            y.extend_from_slice(b);
        }
        gemm(
            n,
            n_out,
            n_in,
            &mut y,
            n_out,
            true,
            Mat::rows(x, n_in),
            Mat::rows(w, n_out),
            Parallelism::Rayon(0),
        );
        y
    }

    /// The forward pass of a batch `(n, h, w, c)` (flattened, channels-last), keeping what
    /// [`Network::backward`] needs. Dropout is applied when `randomness.dropout` is set.
    pub fn forward(&self, images: &[T], randomness: StepRandomness) -> Result<ForwardCache<T>> {
        let per = self.image_len();
        if per == 0 || !images.len().is_multiple_of(per) || images.is_empty() {
            return Err(TrainError::Invalid(format!(
                "a batch of {} values is not a whole number of {}x{}x{} images",
                images.len(),
                self.config.input_height,
                self.config.input_width,
                self.config.input_channels
            )));
        }
        let n = images.len() / per;
        let flat_len = self.config.flatten_len()?;
        let fast = self.winograd_kernels(|l| {
            let s = self.conv_shape(l);
            Some((self.params.data[2 * l].clone(), s.input.2, s.filters))
        });
        let per_image: Vec<Vec<BlockCache<T>>> = images
            .par_chunks(per * CHUNK)
            .enumerate()
            .flat_map_iter(|(chunk, imgs)| {
                let mut scratch = ConvScratch::default();
                imgs.chunks_exact(per)
                    .enumerate()
                    .map(|(i, img)| {
                        let index = (chunk * CHUNK + i) as u64;
                        let mut rng = ChaCha8Rng::seed_from_u64(sub_seed(randomness.seed, index));
                        let rng = randomness.dropout.then_some(&mut rng);
                        self.forward_image(img, rng, &fast, &mut scratch)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let flat = if self.shapes.is_empty() {
            images.to_vec()
        } else {
            let mut flat = Vec::with_capacity(n * flat_len);
            for b in per_image.iter().filter_map(|blocks| blocks.last()) {
                flat.extend_from_slice(&b.out);
            }
            flat
        };
        // Dense layers; their dropout masks come from a stream of their own.
        let mut rng = ChaCha8Rng::seed_from_u64(sub_seed(randomness.seed, u64::MAX));
        let d = self.dense_index();
        let mut h1 = self.dense(&flat, n, d);
        conv::relu(&mut h1);
        let drop1 = if randomness.dropout && self.config.dense_dropout > 0.0 {
            dropout_mask(&mut rng, h1.len(), self.config.dense_dropout)
        } else {
            Vec::new()
        };
        let h1d: Vec<T> = if drop1.is_empty() {
            h1.clone()
        } else {
            h1.iter().zip(&drop1).map(|(a, b)| *a * *b).collect()
        };
        let mut h2d = self.dense(&h1d, n, d + 2);
        let drop2 = if randomness.dropout && self.config.dense_1_dropout > 0.0 {
            dropout_mask(&mut rng, h2d.len(), self.config.dense_1_dropout)
        } else {
            Vec::new()
        };
        if !drop2.is_empty() {
            h2d.iter_mut().zip(&drop2).for_each(|(a, b)| *a *= *b);
        }
        let logits = self.dense(&h2d, n, d + 4);
        Ok(ForwardCache {
            images: per_image,
            flat,
            h1,
            drop1,
            h1d,
            drop2,
            h2d,
            logits,
            batch: n,
        })
    }

    /// The dropout masks [`Network::forward`] applies to a batch of `n` images with `randomness`,
    /// drawn from the same streams in the same order, for a forward pass computed elsewhere (on a
    /// GPU: [`crate::device::DeviceStep`]) to drop the same units.
    pub fn dropout_masks(&self, n: usize, randomness: StepRandomness) -> DropoutMasks<T> {
        let layers = &self.config.conv_layers;
        let out_len = |l: usize| {
            let o = self.shapes[l].2;
            o.0 * o.1 * o.2
        };
        let mut conv: Vec<Option<Vec<T>>> = layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                (randomness.dropout && layer.dropout > 0.0)
                    .then(|| Vec::with_capacity(n * out_len(l)))
            })
            .collect();
        if randomness.dropout {
            for index in 0..n as u64 {
                // One stream per image, its blocks drawn in order, as in `forward_image`.
                let mut rng = ChaCha8Rng::seed_from_u64(sub_seed(randomness.seed, index));
                for (l, layer) in layers.iter().enumerate() {
                    if let Some(mask) = conv[l].as_mut() {
                        mask.extend(dropout_mask::<T>(&mut rng, out_len(l), layer.dropout));
                    }
                }
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(sub_seed(randomness.seed, u64::MAX));
        let dense = (randomness.dropout && self.config.dense_dropout > 0.0).then(|| {
            dropout_mask(
                &mut rng,
                n * self.config.dense_units,
                self.config.dense_dropout,
            )
        });
        let dense_1 = (randomness.dropout && self.config.dense_1_dropout > 0.0).then(|| {
            dropout_mask(
                &mut rng,
                n * self.config.dense_1_units,
                self.config.dense_1_dropout,
            )
        });
        DropoutMasks {
            conv,
            dense,
            dense_1,
        }
    }

    /// The loss of a batch from its forward pass, and its gradient with respect to the outputs (logits).
    pub fn loss(
        &self,
        cache: &ForwardCache<T>,
        loss: Loss,
        targets: BatchTargets<'_, T>,
    ) -> Result<(f64, Vec<T>)> {
        let n = cache.batch;
        let outs = self.config.output_units;
        crate::loss::loss_and_gradient(&cache.logits, n, outs, loss, targets)
    }

    /// The backward pass: the gradient of the loss with respect to every parameter, given the gradient
    /// `grad_logits (batch, outputs)` with respect to the outputs.
    pub fn backward(
        &self,
        images: &[T],
        cache: &ForwardCache<T>,
        grad_logits: &[T],
    ) -> Result<Tensors<T>> {
        let n = cache.batch;
        let d = self.dense_index();
        let mut grads = Tensors::zeros_like(&self.params);
        // dense_2, then dense_1 (no activation between them).
        let dense_grads = |g: &mut Tensors<T>, index: usize, x: &[T], dy: &[T]| {
            self.dense_backward(g, index, x, dy, n)
        };
        let mut dh2 = dense_grads(&mut grads, d + 4, &cache.h2d, grad_logits);
        if !cache.drop2.is_empty() {
            dh2.iter_mut().zip(&cache.drop2).for_each(|(g, s)| *g *= *s);
        }
        let dh1 = dense_grads(&mut grads, d + 2, &cache.h1d, &dh2);
        self.backward_below_dense(images, cache, dh1, grads)
    }

    /// The backward pass from the embedding: the gradient of a loss with respect to the parameters of
    /// the layers up to `dense` (the rest stay zero), given its gradient `grad_dense (batch, dense_units)`
    /// with respect to [`ForwardCache::dense_after_dropout`]. Self-supervised training uses it, its head
    /// being separate from the network's own `dense_1` and output layers.
    pub fn backward_from_dense(
        &self,
        images: &[T],
        cache: &ForwardCache<T>,
        grad_dense: &[T],
    ) -> Result<Tensors<T>> {
        if grad_dense.len() != cache.h1d.len() {
            return Err(TrainError::Invalid(format!(
                "the embedding gradient has {} values, the batch's embeddings {}",
                grad_dense.len(),
                cache.h1d.len()
            )));
        }
        let grads = Tensors::zeros_like(&self.params);
        self.backward_below_dense(images, cache, grad_dense.to_vec(), grads)
    }

    /// Back-propagates `dh1`, the gradient with respect to `dense`'s output after dropout, through `dense`
    /// and the convolution blocks, adding into `grads`.
    fn backward_below_dense(
        &self,
        images: &[T],
        cache: &ForwardCache<T>,
        mut dh1: Vec<T>,
        mut grads: Tensors<T>,
    ) -> Result<Tensors<T>> {
        let n = cache.batch;
        let d = self.dense_index();
        if !cache.drop1.is_empty() {
            dh1.iter_mut().zip(&cache.drop1).for_each(|(g, s)| *g *= *s);
        }
        dh1.iter_mut().zip(&cache.h1).for_each(|(g, h)| {
            if *h <= T::ZERO {
                *g = T::ZERO
            }
        });
        let dflat = self.dense_backward(&mut grads, d, &cache.flat, &dh1, n);
        if self.shapes.is_empty() {
            return Ok(grads);
        }

        // Convolution blocks: per image in fixed chunks, each chunk summing into its own gradients, then
        // the chunks summed in order.
        let per = self.image_len();
        let flat_len = dflat.len() / n;
        let flipped: Vec<Vec<T>> = (0..self.shapes.len())
            .map(|l| {
                let s = self.conv_shape(l);
                if l == 0 {
                    Vec::new()
                } else {
                    conv::flipped_kernel(&self.params.data[2 * l], s.kh, s.kw, s.input.2, s.filters)
                }
            })
            .collect();
        let fast = self.winograd_kernels(|l| {
            let s = self.conv_shape(l);
            // The input gradient's kernel maps the layer's f filters back to its c channels.
            (l > 0).then(|| (flipped[l].clone(), s.filters, s.input.2))
        });
        let conv_params = 2 * self.shapes.len();
        let partials: Vec<Vec<Vec<T>>> = cache
            .images
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(chunk, blocks_of)| {
                let mut g: Vec<Vec<T>> = self.params.data[..conv_params]
                    .iter()
                    .map(|t| vec![T::ZERO; t.len()])
                    .collect();
                let mut scratch = ConvScratch::default();
                for (i, blocks) in blocks_of.iter().enumerate() {
                    let index = chunk * CHUNK + i;
                    let image = &images[index * per..(index + 1) * per];
                    let grad_out = &dflat[index * flat_len..(index + 1) * flat_len];
                    self.backward_image(
                        image,
                        blocks,
                        grad_out,
                        (&flipped, &fast),
                        &mut g,
                        &mut scratch,
                    );
                }
                g
            })
            .collect();
        for part in partials {
            for (dst, src) in grads.data.iter_mut().zip(part) {
                for (a, b) in dst.iter_mut().zip(src) {
                    *a += b;
                }
            }
        }
        Ok(grads)
    }

    /// Adds the gradient of the Dense layer at `index` (weights `x (n × in)` → `dy (n × out)`) into
    /// `grads`, and returns `∂L/∂x = dy · Wᵀ`.
    fn dense_backward(
        &self,
        grads: &mut Tensors<T>,
        index: usize,
        x: &[T],
        dy: &[T],
        n: usize,
    ) -> Vec<T> {
        let n_out = self.params.data[index + 1].len();
        let n_in = self.params.data[index].len() / n_out;
        gemm(
            n_in,
            n_out,
            n,
            &mut grads.data[index],
            n_out,
            false,
            Mat::transposed(x, n_in),
            Mat::rows(dy, n_out),
            Parallelism::Rayon(0),
        );
        col_sums(dy, n_out, &mut grads.data[index + 1]);
        let mut dx = vec![T::ZERO; n * n_in];
        gemm(
            n,
            n_in,
            n_out,
            &mut dx,
            n_in,
            false,
            Mat::rows(dy, n_out),
            Mat::transposed(&self.params.data[index], n_out),
            Parallelism::Rayon(0),
        );
        dx
    }

    fn backward_image(
        &self,
        image: &[T],
        blocks: &[BlockCache<T>],
        grad_flat: &[T],
        (flipped, fast): (&[Vec<T>], &[Option<Winograd5x5>]),
        grads: &mut [Vec<T>],
        scratch: &mut ConvScratch<T>,
    ) {
        let mut g = grad_flat.to_vec();
        for l in (0..self.shapes.len()).rev() {
            let b = &blocks[l];
            let s = self.conv_shape(l);
            if !b.drop.is_empty() {
                g.iter_mut().zip(&b.drop).for_each(|(v, d)| *v *= *d);
            }
            let mut ga = if b.argmax.is_empty() {
                g
            } else {
                let mut ga = vec![T::ZERO; b.act.len()];
                conv::maxpool_backward(&g, &b.argmax, &mut ga);
                ga
            };
            ga.iter_mut().zip(&b.act).for_each(|(v, a)| {
                if *a <= T::ZERO {
                    *v = T::ZERO
                }
            });
            let input = if l == 0 { image } else { &blocks[l - 1].out };
            let (dk, rest) = grads[2 * l..].split_at_mut(1);
            conv::conv_weight_grad_fast(
                input,
                &s,
                &ga,
                &mut dk[0],
                &mut rest[0],
                self.winograd,
                scratch,
            );
            if l == 0 {
                break;
            }
            let (h, w, c) = s.input;
            let mut gi = vec![T::ZERO; h * w * c];
            conv::conv_input_grad(&ga, &s, &flipped[l], fast[l].as_ref(), &mut gi, scratch);
            g = gi;
        }
    }

    /// The network's predictions for a batch, without dropout: `(batch, outputs)`, after the softmax of
    /// a classifier.
    pub fn predict(&self, images: &[T]) -> Result<Vec<T>> {
        let cache = self.forward(
            images,
            StepRandomness {
                seed: 0,
                dropout: false,
            },
        )?;
        let mut out = cache.logits;
        if self.config.output_activation == OutputActivation::Softmax {
            crate::loss::softmax_in_place(&mut out, self.config.output_units);
        }
        Ok(out)
    }
}
