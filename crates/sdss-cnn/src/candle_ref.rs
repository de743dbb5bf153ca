//! A second, straightforward forward pass written with candle's own layers (`candle_nn::Conv2d`, `Linear`,
//! `max_pool2d`) in candle's native NCHW layout. It is slow (about 20 images/s for sdss_CNN on 2 cores) and
//! exists as an independent cross-check of the fast engine, and for callers who want candle tensors.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear};
use ndarray::{Array2, ArrayView4};

use crate::config::Tap;
use crate::error::{CnnError, Result};
use crate::model::{CnnModel, TapOutputs};
use crate::weights::DenseWeights;

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

impl CnnModel {
    /// Outputs at every tap computed with candle's layers (NCHW) instead of the fast engine.
    pub fn all_taps_candle(&self, images: ArrayView4<f32>) -> Result<TapOutputs> {
        let cfg = self.config();
        let s = images.shape();
        if s[1] != cfg.input_height || s[2] != cfg.input_width || s[3] != cfg.input_channels {
            return Err(CnnError::BadImageShape {
                found: s.to_vec(),
                height: cfg.input_height,
                width: cfg.input_width,
                channels: cfg.input_channels,
            });
        }
        let dev = Device::Cpu;
        let images = images.as_standard_layout();
        let pixels = images.as_slice().unwrap_or(&[]);
        let mut x = Tensor::from_slice(pixels, (s[0], s[1], s[2], s[3]), &dev)?
            .permute((0, 3, 1, 2))?
            .contiguous()?;
        for (layer, w) in cfg.conv_layers.iter().zip(&self.weights().conv) {
            let [kh, kw] = w.kernel_size;
            // HWIO (Keras) -> OIHW (candle).
            let k = Tensor::from_slice(&w.kernel, (kh, kw, w.in_channels, w.filters), &dev)?
                .permute((3, 2, 0, 1))?
                .contiguous()?;
            let b = Tensor::from_slice(&w.bias, w.filters, &dev)?;
            let conv = Conv2d::new(k, Some(b), Conv2dConfig::default());
            x = conv.forward(&x)?.relu()?;
            if let Some(p) = layer.max_pool {
                x = x.max_pool2d(p)?;
            }
        }
        // Keras flattens channels-last: back to NHWC before flattening.
        let flatten = x.permute((0, 2, 3, 1))?.contiguous()?.flatten_from(1)?;
        let dense = linear(&self.weights().dense, &dev)?
            .forward(&flatten)?
            .relu()?;
        let dense_1 = linear(&self.weights().dense_1, &dev)?.forward(&dense)?;
        let mut output = linear(&self.weights().output, &dev)?.forward(&dense_1)?;
        if self.config().output_activation == crate::config::OutputActivation::Softmax {
            output = candle_nn::ops::softmax_last_dim(&output)?;
        }
        debug_assert_eq!(flatten.dtype(), DType::F32);
        Ok(TapOutputs {
            flatten: to_array2(&flatten)?,
            dense: to_array2(&dense)?,
            dense_1: to_array2(&dense_1)?,
            output: to_array2(&output)?,
        })
    }

    /// Features at `tap` computed with candle's layers; see [`CnnModel::all_taps_candle`].
    pub fn features_candle(&self, images: ArrayView4<f32>, tap: Tap) -> Result<Array2<f32>> {
        Ok(self.all_taps_candle(images)?.get(tap).clone())
    }
}
