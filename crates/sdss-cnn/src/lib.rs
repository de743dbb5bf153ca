//! The sdss_CNN galaxy-spin network reimplemented in Rust, loading weights converted from Keras.
//!
//! sdss_CNN is a Keras Sequential model trained to predict galaxy spin (λ_R) from 80×80×3 SDSS images;
//! sdss_clustering used the output of its 128-unit Dense layer as features. This crate runs that network
//! (or a variant with other filter counts, kernel sizes and widths: [`CnnConfig`]) and reads features at four
//! taps ([`Tap`]): `flatten`, `dense`, `dense_1` and `output`. Dropout is the identity at inference.
//!
//! - [`CnnModel`]: configuration + weights. [`CnnModel::load`] reads the `.safetensors` written by
//!   `cargo xtask fetch-weights` ([`keras`] does the conversion from Keras 2 `.h5`, Keras 3 `.h5` and
//!   `.keras`); [`CnnModel::random`] makes Keras-style random weights for timing.
//! - [`CnnModel::features`] on one batch, [`CnnModel::features_batched`] / [`CnnModel::features_stream`]
//!   over many images with bounded memory; all cores are used through rayon.
//! - The fast path computes in channels-last f32 with convolutions as (implicit) GEMMs on the `gemm` crate,
//!   the CPU matrix-multiply library candle uses. [`CandleNetwork`] is an independent candle
//!   (`candle_nn::Conv2d`, NCHW) forward pass: a cross-check on the CPU, and the path on an NVIDIA GPU
//!   ([`CnnModel::on_device`] with [`ComputeDevice::Cuda`], built with the `cuda` feature).
//!
//! Both are tested against Keras outputs on committed fixtures at every tap (max relative error ≤ 1e-4).
//!
//! ```
//! use ndarray::Array4;
//! use sdss_cnn::{CnnConfig, CnnModel, ConvLayerConfig, Tap};
//!
//! // A small variant of the architecture (the default is sdss_CNN itself, 80×80×3).
//! let mut cfg = CnnConfig::default();
//! cfg.input_height = 24;
//! cfg.input_width = 24;
//! cfg.conv_layers = vec![
//!     ConvLayerConfig::new(8, [3, 3]).pooled(2),
//!     ConvLayerConfig::new(8, [2, 2]),
//! ];
//! let model = CnnModel::random(cfg, 42)?;
//! let images = Array4::<f32>::from_elem((5, 24, 24, 3), 0.1);
//! let features = model.features_batched(images.view(), Tap::Dense, 2)?;
//! assert_eq!(features.dim(), (5, 128));
//!
//! // Images of the wrong size are a typed error, not a panic.
//! let wrong = Array4::<f32>::zeros((1, 80, 80, 3));
//! assert!(model.features(wrong.view(), Tap::Dense).is_err());
//! # Ok::<(), sdss_cnn::CnnError>(())
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod device;
mod engine;
pub mod error;
#[doc(hidden)]
pub mod fast;
pub mod keras;
pub mod model;
pub mod pretrained;
pub mod weights;
mod winograd;

pub use config::{CnnConfig, ConvLayerConfig, OutputActivation, Tap, ARCHITECTURES};
pub use device::{CandleNetwork, ComputeDevice, PlacedModel};
pub use error::{CnnError, Result};
pub use model::{softmax_rows, CnnModel, TapOutputs};
pub use weights::CnnWeights;
