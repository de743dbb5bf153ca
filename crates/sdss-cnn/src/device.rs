//! Where the network runs: this crate's fast CPU engine, or candle's own layers on a candle device,
//! which is how it runs on an NVIDIA GPU (build with the `cuda` feature).
//!
//! [`CandleNetwork`] is a straightforward forward pass with `candle_nn::Conv2d`, `Linear` and
//! `max_pool2d` in candle's NCHW layout, its weights uploaded to the device once. On the CPU it is
//! slow (about 20 images/s for sdss_CNN on 2 cores) and serves as an independent cross-check of the
//! fast engine; on a GPU the same code is the fast path. [`CnnModel::on_device`] picks one for a
//! [`ComputeDevice`].
//!
//! ```
//! use ndarray::Array4;
//! use sdss_cnn::{CnnConfig, CnnModel, ComputeDevice, ConvLayerConfig, Tap};
//!
//! let mut cfg = CnnConfig::default();
//! cfg.input_height = 16;
//! cfg.input_width = 16;
//! cfg.conv_layers = vec![ConvLayerConfig::new(4, [3, 3]).pooled(2)];
//! let model = CnnModel::random(cfg, 1)?;
//! let images = Array4::<f32>::from_elem((3, 16, 16, 3), 0.5);
//!
//! let device: ComputeDevice = "cpu".parse()?;
//! let features = model.on_device(device)?.features(images.view(), Tap::Dense)?;
//! assert_eq!(features.dim(), (3, 128));
//!
//! // A GPU that this build or machine cannot use is a typed error naming it.
//! # #[cfg(not(feature = "cuda"))]
//! assert!(model.on_device("cuda:0".parse()?).is_err());
//! # Ok::<(), sdss_cnn::CnnError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use candle_core::{Device, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear};
use ndarray::{Array2, ArrayView4};

use crate::config::{OutputActivation, Tap};
use crate::error::{CnnError, Result};
use crate::model::{CnnModel, TapOutputs};
use crate::weights::DenseWeights;

/// The hardware a network runs on, as a user names it: `cpu` or `cuda[:N]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ComputeDevice {
    /// This crate's own CPU engine (channels-last GEMMs on all cores).
    #[default]
    Cpu,
    /// NVIDIA GPU number `N` through candle's CUDA backend (needs the `cuda` feature).
    Cuda(usize),
}

impl FromStr for ComputeDevice {
    type Err = CnnError;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" => Ok(ComputeDevice::Cpu),
            "cuda" | "gpu" => Ok(ComputeDevice::Cuda(0)),
            _ => t
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(ComputeDevice::Cuda)
                .ok_or_else(|| CnnError::UnknownDevice(s.to_string())),
        }
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeDevice::Cpu => write!(f, "cpu"),
            ComputeDevice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl ComputeDevice {
    /// Whether this build can drive the device at all (the CPU always; CUDA with the `cuda`
    /// feature). A `true` does not promise a GPU is present: [`ComputeDevice::candle_device`] says.
    pub fn is_compiled_in(&self) -> bool {
        match self {
            ComputeDevice::Cpu => true,
            ComputeDevice::Cuda(_) => cfg!(feature = "cuda"),
        }
    }

    /// The candle device, opened (for CUDA: the driver loaded and the GPU's context made).
    pub fn candle_device(&self) -> Result<Device> {
        match *self {
            ComputeDevice::Cpu => Ok(Device::Cpu),
            ComputeDevice::Cuda(ordinal) => {
                let unavailable = |reason: String| CnnError::DeviceUnavailable {
                    device: self.to_string(),
                    reason,
                };
                if !self.is_compiled_in() {
                    return Err(unavailable(
                        "this build has no CUDA support (rebuild with `--features cuda`, which needs the CUDA toolkit's nvcc)".into(),
                    ));
                }
                Device::new_cuda(ordinal).map_err(|e| unavailable(e.to_string()))
            }
        }
    }
}

fn to_array2(t: &Tensor) -> Result<Array2<f32>> {
    let (n, w) = t.dims2()?;
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    Array2::from_shape_vec((n, w), v).map_err(|e| CnnError::InvalidConfig(e.to_string()))
}

fn linear(w: &DenseWeights, dev: &Device) -> Result<Linear> {
    // Keras stores (in, out); candle's Linear wants (out, in).
    let k = Tensor::from_slice(&w.kernel, (w.inputs, w.outputs), dev)?
        .t()?
        .contiguous()?;
    let b = Tensor::from_slice(&w.bias, w.outputs, dev)?;
    Ok(Linear::new(k, Some(b)))
}

/// The network with its weights uploaded to a candle device, run with candle's layers (NCHW).
pub struct CandleNetwork {
    device: Device,
    input: [usize; 3],
    convs: Vec<(Conv2d, Option<usize>)>,
    dense: Linear,
    dense_1: Linear,
    output: Linear,
    softmax: bool,
}

impl fmt::Debug for CandleNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CandleNetwork")
            .field("device", &self.device)
            .field("input", &self.input)
            .field("conv_layers", &self.convs.len())
            .finish_non_exhaustive()
    }
}

impl CandleNetwork {
    /// Uploads `model`'s weights to `device` (once; each batch then only moves its images and the
    /// features asked for).
    pub fn new(model: &CnnModel, device: &Device) -> Result<Self> {
        let cfg = model.config();
        let mut convs = Vec::with_capacity(cfg.conv_layers.len());
        for (layer, w) in cfg.conv_layers.iter().zip(&model.weights().conv) {
            let [kh, kw] = w.kernel_size;
            // HWIO (Keras) -> OIHW (candle).
            let k = Tensor::from_slice(&w.kernel, (kh, kw, w.in_channels, w.filters), device)?
                .permute((3, 2, 0, 1))?
                .contiguous()?;
            let b = Tensor::from_slice(&w.bias, w.filters, device)?;
            convs.push((
                Conv2d::new(k, Some(b), Conv2dConfig::default()),
                layer.max_pool,
            ));
        }
        Ok(CandleNetwork {
            device: device.clone(),
            input: [cfg.input_height, cfg.input_width, cfg.input_channels],
            convs,
            dense: linear(&model.weights().dense, device)?,
            dense_1: linear(&model.weights().dense_1, device)?,
            output: linear(&model.weights().output, device)?,
            softmax: cfg.output_activation == OutputActivation::Softmax,
        })
    }

    /// The candle device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs a batch `(n, height, width, channels)` up to `last`, returning every tap on the way
    /// (taps after `last` are `None`).
    fn forward(&self, images: &ArrayView4<f32>, last: Tap) -> Result<[Option<Tensor>; 4]> {
        let s = images.shape();
        let [h, w, c] = self.input;
        if s[1] != h || s[2] != w || s[3] != c {
            return Err(CnnError::BadImageShape {
                found: s.to_vec(),
                height: h,
                width: w,
                channels: c,
            });
        }
        let images = images.as_standard_layout();
        // `as_standard_layout` is contiguous, so `as_slice` always succeeds.
        let pixels = images.as_slice().unwrap_or(&[]);
        let mut x = Tensor::from_slice(pixels, (s[0], h, w, c), &self.device)?
            .permute((0, 3, 1, 2))?
            .contiguous()?;
        for (conv, pool) in &self.convs {
            x = conv.forward(&x)?.relu()?;
            if let Some(p) = pool {
                x = x.max_pool2d(*p)?;
            }
        }
        // Keras flattens channels-last: back to NHWC before flattening.
        let flatten = x.permute((0, 2, 3, 1))?.contiguous()?.flatten_from(1)?;
        let mut taps: [Option<Tensor>; 4] = [Some(flatten), None, None, None];
        let order = [Tap::Flatten, Tap::Dense, Tap::Dense1, Tap::Output];
        for i in 1..4 {
            if order[i - 1] == last {
                break;
            }
            let prev = taps[i - 1].as_ref().ok_or_else(|| {
                CnnError::InvalidConfig("candle forward pass lost a layer".into())
            })?;
            let next = match order[i] {
                Tap::Dense => self.dense.forward(prev)?.relu()?,
                Tap::Dense1 => self.dense_1.forward(prev)?,
                _ => {
                    let y = self.output.forward(prev)?;
                    if self.softmax {
                        candle_nn::ops::softmax_last_dim(&y)?
                    } else {
                        y
                    }
                }
            };
            taps[i] = Some(next);
        }
        Ok(taps)
    }

    /// Outputs of one batch at every tap.
    pub fn all_taps(&self, images: ArrayView4<f32>) -> Result<TapOutputs> {
        let taps = self.forward(&images, Tap::Output)?;
        let get = |i: usize| -> Result<Array2<f32>> {
            to_array2(taps[i].as_ref().ok_or_else(|| {
                CnnError::InvalidConfig("candle forward pass stopped early".into())
            })?)
        };
        Ok(TapOutputs {
            flatten: get(0)?,
            dense: get(1)?,
            dense_1: get(2)?,
            output: get(3)?,
        })
    }

    /// Features of one batch at `tap` (only that tap is copied back from the device).
    pub fn features(&self, images: ArrayView4<f32>, tap: Tap) -> Result<Array2<f32>> {
        let index = match tap {
            Tap::Flatten => 0,
            Tap::Dense => 1,
            Tap::Dense1 => 2,
            Tap::Output => 3,
        };
        let taps = self.forward(&images, tap)?;
        to_array2(
            taps[index].as_ref().ok_or_else(|| {
                CnnError::InvalidConfig("candle forward pass stopped early".into())
            })?,
        )
    }
}

/// A network placed on a [`ComputeDevice`], ready to give features a batch at a time.
#[derive(Debug)]
pub enum PlacedModel<'a> {
    /// The fast CPU engine.
    Cpu(&'a CnnModel),
    /// Candle's layers on a GPU.
    Candle(ComputeDevice, CandleNetwork),
}

impl PlacedModel<'_> {
    /// Features of one batch `(n, height, width, channels)` at `tap`.
    pub fn features(&self, images: ArrayView4<f32>, tap: Tap) -> Result<Array2<f32>> {
        match self {
            PlacedModel::Cpu(model) => model.features(images, tap),
            PlacedModel::Candle(_, net) => net.features(images, tap),
        }
    }

    /// The device it runs on.
    pub fn device(&self) -> ComputeDevice {
        match self {
            PlacedModel::Cpu(_) => ComputeDevice::Cpu,
            PlacedModel::Candle(d, _) => *d,
        }
    }
}

impl CnnModel {
    /// This network on `device`: the fast engine for the CPU, candle's layers with the weights
    /// uploaded for a GPU. A device this build or machine cannot use is
    /// [`CnnError::DeviceUnavailable`].
    pub fn on_device(&self, device: ComputeDevice) -> Result<PlacedModel<'_>> {
        match device {
            ComputeDevice::Cpu => Ok(PlacedModel::Cpu(self)),
            ComputeDevice::Cuda(_) => {
                let net = CandleNetwork::new(self, &device.candle_device()?)?;
                tracing::info!(%device, "sdss-cnn: weights uploaded, running on candle's CUDA backend");
                Ok(PlacedModel::Candle(device, net))
            }
        }
    }

    /// Outputs at every tap computed with candle's layers on the CPU instead of the fast engine.
    pub fn all_taps_candle(&self, images: ArrayView4<f32>) -> Result<TapOutputs> {
        CandleNetwork::new(self, &Device::Cpu)?.all_taps(images)
    }

    /// Features at `tap` computed with candle's layers on the CPU; see [`CnnModel::all_taps_candle`].
    pub fn features_candle(&self, images: ArrayView4<f32>, tap: Tap) -> Result<Array2<f32>> {
        CandleNetwork::new(self, &Device::Cpu)?.features(images, tap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CnnConfig, ConvLayerConfig};
    use ndarray::Array4;

    #[test]
    fn devices_parse_and_print() {
        for (text, device) in [
            ("cpu", ComputeDevice::Cpu),
            ("CPU", ComputeDevice::Cpu),
            ("cuda", ComputeDevice::Cuda(0)),
            ("cuda:3", ComputeDevice::Cuda(3)),
        ] {
            assert_eq!(text.parse::<ComputeDevice>().unwrap(), device, "{text}");
        }
        assert_eq!(ComputeDevice::Cuda(2).to_string(), "cuda:2");
        for bad in ["", "tpu", "cuda:", "cuda:x", "cuda:-1"] {
            let err = bad.parse::<ComputeDevice>().unwrap_err();
            assert!(err.to_string().contains("unknown compute device"), "{err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        let err = ComputeDevice::Cuda(0).candle_device().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cuda:0") && text.contains("--features cuda"),
            "{text}"
        );
    }

    #[test]
    fn each_tap_alone_equals_the_full_pass() {
        let cfg = CnnConfig {
            input_height: 12,
            input_width: 12,
            conv_layers: vec![ConvLayerConfig::new(3, [3, 3]).pooled(2)],
            ..CnnConfig::default()
        };
        let model = CnnModel::random(cfg, 5).unwrap();
        let images = Array4::from_shape_fn((2, 12, 12, 3), |(n, y, x, c)| {
            ((n * 7 + y * 3 + x + c) % 11) as f32 / 11.0
        });
        let net = CandleNetwork::new(&model, &Device::Cpu).unwrap();
        let all = net.all_taps(images.view()).unwrap();
        for tap in [Tap::Flatten, Tap::Dense, Tap::Dense1, Tap::Output] {
            assert_eq!(
                net.features(images.view(), tap).unwrap(),
                *all.get(tap),
                "{tap}"
            );
        }
        let wrong = Array4::<f32>::zeros((1, 10, 12, 3));
        assert!(matches!(
            net.features(wrong.view(), Tap::Dense),
            Err(CnnError::BadImageShape { .. })
        ));
    }
}
