//! The network: configuration plus weights, and batched feature extraction.

use std::cell::RefCell;
use std::path::Path;

use gemm::Parallelism;
use ndarray::{Array2, Array4, ArrayView4};
use rayon::prelude::*;

use crate::config::{CnnConfig, Hwc, OutputActivation, Tap};
use crate::engine::{self, Scratch};
use crate::error::{CnnError, Result};
use crate::weights::{self, CnnWeights};
use crate::winograd::WinogradKernel;

thread_local! {
    // Per-thread activation buffers (a few MB for sdss_CNN), reused across images and batches.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The sdss_CNN network (or a variant of it) with its weights, ready to extract features.
#[derive(Clone, Debug)]
pub struct CnnModel {
    config: CnnConfig,
    weights: CnnWeights,
    shapes: Vec<(Hwc, Hwc, Hwc)>,
    /// Winograd-transformed kernels of the 5×5 layers (empty when Winograd is switched off).
    winograd: Vec<Option<WinogradKernel>>,
}

fn winograd_kernels(w: &CnnWeights) -> Vec<Option<WinogradKernel>> {
    w.conv.iter().map(WinogradKernel::new).collect()
}

/// Replaces each row by its softmax (computed stably, from the row's maximum).
pub fn softmax_rows(x: &mut Array2<f32>) {
    for mut row in x.rows_mut() {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
}

/// Outputs of one batch at every tap, each `(n_images, width)`.
#[derive(Clone, Debug)]
pub struct TapOutputs {
    /// `flatten`: the last convolution block, flattened in Keras's channels-last order.
    pub flatten: Array2<f32>,
    /// `dense`, after its ReLU.
    pub dense: Array2<f32>,
    /// `dense_1`.
    pub dense_1: Array2<f32>,
    /// `output` (`dense_2`): the λ_R prediction, or a classifier's class probabilities.
    pub output: Array2<f32>,
}

impl TapOutputs {
    /// The output at `tap`.
    pub fn get(&self, tap: Tap) -> &Array2<f32> {
        match tap {
            Tap::Flatten => &self.flatten,
            Tap::Dense => &self.dense,
            Tap::Dense1 => &self.dense_1,
            Tap::Output => &self.output,
        }
    }
}

impl CnnModel {
    /// Pairs a configuration with weights, checking that every tensor fits the configuration.
    pub fn new(config: CnnConfig, weights: CnnWeights) -> Result<Self> {
        let shapes = config.layer_shapes()?;
        // Re-validate through the tensor map so hand-built `CnnWeights` get the same named errors as files.
        let tensors = weights.to_tensors(&config)?.into_iter().collect();
        let checked = CnnWeights::from_tensors(&config, &tensors, Path::new("<in memory>"))?;
        if checked != weights {
            return Err(CnnError::InvalidConfig(
                "weights do not match the configuration's layer sizes".into(),
            ));
        }
        Ok(CnnModel {
            config,
            winograd: winograd_kernels(&weights),
            weights,
            shapes,
        })
    }

    /// A model with Keras-style random weights (Glorot-uniform, zero bias) from `seed`: for timing and tests.
    pub fn random(config: CnnConfig, seed: u64) -> Result<Self> {
        let weights = CnnWeights::random(&config, seed)?;
        let shapes = config.layer_shapes()?;
        Ok(CnnModel {
            config,
            winograd: winograd_kernels(&weights),
            weights,
            shapes,
        })
    }

    /// Loads a `.safetensors` file written by `cargo xtask fetch-weights` (or [`CnnModel::save`]); the
    /// architecture comes from the file's metadata.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (config, weights) = weights::read_safetensors(path)?;
        let shapes = config.layer_shapes()?;
        tracing::info!(
            path = %path.display(),
            parameters = config.parameter_count()?,
            "loaded sdss-cnn weights"
        );
        Ok(CnnModel {
            config,
            winograd: winograd_kernels(&weights),
            weights,
            shapes,
        })
    }

    /// Writes the model as safetensors (atomically), with the configuration in the metadata.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = weights::to_safetensors_bytes(&self.config, &self.weights, Default::default())?;
        weights::write_atomic(path.as_ref(), &bytes)
    }

    /// Switches the Winograd F(4×4, 5×5) convolution for 5×5 layers on (the default) or off (plain
    /// implicit GEMM, about 3× slower for sdss_CNN; results agree to ~1e-6 relative).
    pub fn with_winograd(mut self, enabled: bool) -> Self {
        self.winograd = if enabled {
            winograd_kernels(&self.weights)
        } else {
            Vec::new()
        };
        self
    }

    /// The architecture.
    pub fn config(&self) -> &CnnConfig {
        &self.config
    }

    /// The weights (Keras layout).
    pub fn weights(&self) -> &CnnWeights {
        &self.weights
    }

    /// Checks that `images` is `(n, height, width, channels)` for this network.
    fn check_images(&self, images: &ArrayView4<f32>) -> Result<()> {
        let c = &self.config;
        let s = images.shape();
        if s[1] != c.input_height || s[2] != c.input_width || s[3] != c.input_channels {
            return Err(CnnError::BadImageShape {
                found: s.to_vec(),
                height: c.input_height,
                width: c.input_width,
                channels: c.input_channels,
            });
        }
        Ok(())
    }

    /// Convolution stack for a batch: `(n, flatten_len)`, images spread over rayon's threads.
    fn flatten_batch(&self, images: &ArrayView4<f32>) -> Result<Array2<f32>> {
        self.check_images(images)?;
        let n = images.shape()[0];
        let len = self.config.flatten_len()?;
        let images = images.as_standard_layout();
        // `as_standard_layout` is contiguous, so `as_slice` always succeeds.
        let pixels = images.as_slice().unwrap_or(&[]);
        let per_image =
            self.config.input_height * self.config.input_width * self.config.input_channels;
        let mut flat = vec![0.0f32; n * len];
        let run = |(img, out): (&[f32], &mut [f32]), par| {
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                engine::conv_stack(
                    &self.config,
                    &self.shapes,
                    &self.weights,
                    &self.winograd,
                    img,
                    out,
                    &mut s,
                    par,
                    None,
                );
            })
        };
        if n >= rayon::current_num_threads() {
            // One image per task: each GEMM single-threaded, no synchronisation inside an image.
            pixels
                .par_chunks_exact(per_image)
                .zip(flat.par_chunks_exact_mut(len))
                .for_each(|pair| run(pair, Parallelism::None));
        } else {
            // Too few images to keep every core busy: parallelise inside each GEMM instead.
            for pair in pixels
                .chunks_exact(per_image)
                .zip(flat.chunks_exact_mut(len))
            {
                run(pair, Parallelism::Rayon(0));
            }
        }
        Array2::from_shape_vec((n, len), flat)
            .map_err(|e| CnnError::InvalidConfig(format!("flatten buffer: {e}")))
    }

    fn dense_layer(
        &self,
        x: &Array2<f32>,
        w: &crate::weights::DenseWeights,
        relu: bool,
    ) -> Result<Array2<f32>> {
        let n = x.nrows();
        let x = x.as_standard_layout();
        let y = engine::dense(
            x.as_slice().unwrap_or(&[]),
            n,
            w,
            relu,
            Parallelism::Rayon(0),
        );
        Array2::from_shape_vec((n, w.outputs), y)
            .map_err(|e| CnnError::InvalidConfig(format!("dense buffer: {e}")))
    }

    /// Features of one batch of images `(n, height, width, channels)` (values in [0, 1] as sdss_CNN was
    /// trained) at `tap`: an `(n, tap width)` array. Uses all of rayon's threads.
    pub fn features(&self, images: ArrayView4<f32>, tap: Tap) -> Result<Array2<f32>> {
        let flat = self.flatten_batch(&images)?;
        if tap == Tap::Flatten {
            return Ok(flat);
        }
        let dense = self.dense_layer(&flat, &self.weights.dense, true)?;
        if tap == Tap::Dense {
            return Ok(dense);
        }
        let dense_1 = self.dense_layer(&dense, &self.weights.dense_1, false)?;
        if tap == Tap::Dense1 {
            return Ok(dense_1);
        }
        self.output_layer(&dense_1)
    }

    /// `dense_2`, with the softmax of a classifier applied.
    fn output_layer(&self, dense_1: &Array2<f32>) -> Result<Array2<f32>> {
        let mut out = self.dense_layer(dense_1, &self.weights.output, false)?;
        if self.config.output_activation == OutputActivation::Softmax {
            softmax_rows(&mut out);
        }
        Ok(out)
    }

    /// Per-layer timing on one thread, for benchmarks: runs `images` one by one through the network and
    /// returns (layer name, seconds, floating-point operations) for each convolution block and `dense`.
    #[doc(hidden)]
    pub fn layer_timings(&self, images: ArrayView4<f32>) -> Result<Vec<(String, f64, f64)>> {
        self.check_images(&images)?;
        let n = images.shape()[0];
        let images = images.as_standard_layout();
        let pixels = images.as_slice().unwrap_or(&[]);
        let per_image =
            self.config.input_height * self.config.input_width * self.config.input_channels;
        let len = self.config.flatten_len()?;
        let mut times = vec![0.0; self.shapes.len()];
        let mut flat = vec![0.0f32; n * len];
        let mut scratch = Scratch::default();
        for (img, out) in pixels
            .chunks_exact(per_image)
            .zip(flat.chunks_exact_mut(len))
        {
            engine::conv_stack(
                &self.config,
                &self.shapes,
                &self.weights,
                &self.winograd,
                img,
                out,
                &mut scratch,
                Parallelism::None,
                Some(&mut times),
            );
        }
        let t0 = std::time::Instant::now();
        let _ = engine::dense(&flat, n, &self.weights.dense, true, Parallelism::None);
        let dense_s = t0.elapsed().as_secs_f64();
        let mut out = Vec::new();
        for (i, ((layer, (input, conv, _)), t)) in self
            .config
            .conv_layers
            .iter()
            .zip(&self.shapes)
            .zip(times)
            .enumerate()
        {
            let [kh, kw] = layer.kernel_size;
            let flops = 2.0 * n as f64 * (conv.0 * conv.1 * conv.2 * kh * kw * input.2) as f64;
            out.push((crate::config::conv_layer_name(i), t, flops));
        }
        let flops = 2.0 * n as f64 * (len * self.config.dense_units) as f64;
        out.push(("dense".to_string(), dense_s, flops));
        Ok(out)
    }

    /// Outputs at every tap for one batch.
    pub fn all_taps(&self, images: ArrayView4<f32>) -> Result<TapOutputs> {
        let flatten = self.flatten_batch(&images)?;
        let dense = self.dense_layer(&flatten, &self.weights.dense, true)?;
        let dense_1 = self.dense_layer(&dense, &self.weights.dense_1, false)?;
        let output = self.output_layer(&dense_1)?;
        Ok(TapOutputs {
            flatten,
            dense,
            dense_1,
            output,
        })
    }

    /// Features of many images at `tap`, `batch_size` images at a time (bounds the working memory to one
    /// batch of activations plus the result).
    pub fn features_batched(
        &self,
        images: ArrayView4<f32>,
        tap: Tap,
        batch_size: usize,
    ) -> Result<Array2<f32>> {
        if batch_size == 0 {
            return Err(CnnError::ZeroBatchSize);
        }
        self.check_images(&images)?;
        let batches = images
            .axis_chunks_iter(ndarray::Axis(0), batch_size)
            .map(|b| Ok::<_, CnnError>(b.to_owned()));
        self.features_stream(batches, tap, |_| {})
    }

    /// Features at `tap` of a stream of image batches, each `(n_i, height, width, channels)`; only one batch
    /// is held at a time besides the growing `(total, tap width)` result. After each batch `progress` gets
    /// the number of images done so far (the driver feeds a progress bar from it); progress is also logged
    /// with `tracing` at debug level.
    pub fn features_stream<I, E>(
        &self,
        batches: I,
        tap: Tap,
        mut progress: impl FnMut(usize),
    ) -> Result<Array2<f32>>
    where
        I: IntoIterator<Item = std::result::Result<Array4<f32>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let width = self.config.tap_width(tap)?;
        let mut out: Vec<f32> = Vec::new();
        let mut done = 0usize;
        for batch in batches {
            let batch = batch.map_err(|e| CnnError::Source(e.into()))?;
            let f = self.features(batch.view(), tap)?;
            out.extend(f.iter());
            done += f.nrows();
            tracing::debug!(images = done, %tap, "cnn features");
            progress(done);
        }
        Array2::from_shape_vec((done, width), out)
            .map_err(|e| CnnError::InvalidConfig(format!("feature buffer: {e}")))
    }
}
