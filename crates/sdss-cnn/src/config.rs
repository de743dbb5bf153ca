//! Architecture configuration: filter counts, kernel sizes, pooling and dense widths.

use serde::{Deserialize, Serialize};

use crate::error::{CnnError, Result};

/// One `Conv2D` layer (stride 1, 'valid' padding, ReLU), optionally followed by `MaxPool2D`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayerConfig {
    /// Number of output channels (Keras `filters`).
    pub filters: usize,
    /// Kernel height and width (Keras `kernel_size`).
    pub kernel_size: [usize; 2],
    /// Size (and stride) of the square `MaxPool2D` after this layer, if any ('valid' padding).
    pub max_pool: Option<usize>,
}

/// The network's architecture.
///
/// The layer sequence is fixed (the sdss_CNN shape): input → `Conv2D`+ReLU blocks (each optionally followed by
/// `MaxPool2D`) → `Flatten` → `Dense(dense_units, relu)` → `Dense(dense_1_units)` (linear) →
/// `Dense(output_units)` (linear). Dropout layers are the identity at inference and do not appear here.
/// [`CnnConfig::default`] is sdss_CNN itself (5,404,321 parameters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnnConfig {
    /// Image height in pixels.
    pub input_height: usize,
    /// Image width in pixels.
    pub input_width: usize,
    /// Colour channels (3 for RGB).
    pub input_channels: usize,
    /// Convolution blocks in order; Keras names them `conv2d`, `conv2d_1`, ...
    pub conv_layers: Vec<ConvLayerConfig>,
    /// Width of the first Dense layer (`dense`, ReLU): the original's 128 features.
    pub dense_units: usize,
    /// Width of the second Dense layer (`dense_1`, linear).
    pub dense_1_units: usize,
    /// Width of the output layer (`dense_2`, linear): 1 for the λ_R prediction.
    pub output_units: usize,
}

impl Default for CnnConfig {
    fn default() -> Self {
        Self::sdss_cnn()
    }
}

/// Shape of one activation map: (height, width, channels), channels-last.
pub type Hwc = (usize, usize, usize);

impl CnnConfig {
    /// The sdss_CNN architecture: 80×80×3 input, 5,404,321 parameters.
    pub fn sdss_cnn() -> Self {
        let conv = |filters, k: usize, max_pool| ConvLayerConfig {
            filters,
            kernel_size: [k, k],
            max_pool,
        };
        CnnConfig {
            input_height: 80,
            input_width: 80,
            input_channels: 3,
            conv_layers: vec![
                conv(64, 6, None),
                conv(96, 5, Some(2)),
                conv(128, 2, Some(2)),
                conv(192, 3, None),
                conv(192, 2, None),
            ],
            dense_units: 128,
            dense_1_units: 64,
            output_units: 1,
        }
    }

    /// Checks that every size is positive and every kernel and pool fits its input.
    pub fn validate(&self) -> Result<()> {
        self.layer_shapes().map(|_| ())
    }

    /// Shapes through the convolution stack: for each conv layer, (input, conv output, output after pooling).
    pub fn layer_shapes(&self) -> Result<Vec<(Hwc, Hwc, Hwc)>> {
        let bad = |msg: String| Err(CnnError::InvalidConfig(msg));
        if self.input_height == 0 || self.input_width == 0 || self.input_channels == 0 {
            return bad(format!(
                "input shape {}x{}x{} has a zero dimension",
                self.input_height, self.input_width, self.input_channels
            ));
        }
        if self.dense_units == 0 || self.dense_1_units == 0 || self.output_units == 0 {
            return bad("dense layer widths must be at least 1".into());
        }
        let mut shape = (self.input_height, self.input_width, self.input_channels);
        let mut out = Vec::with_capacity(self.conv_layers.len());
        for (i, layer) in self.conv_layers.iter().enumerate() {
            let name = conv_layer_name(i);
            let [kh, kw] = layer.kernel_size;
            if layer.filters == 0 || kh == 0 || kw == 0 {
                return bad(format!(
                    "layer `{name}`: filters and kernel size must be at least 1"
                ));
            }
            if kh > shape.0 || kw > shape.1 {
                return bad(format!(
                    "layer `{name}`: kernel {kh}x{kw} is larger than its {}x{} input",
                    shape.0, shape.1
                ));
            }
            let conv = (shape.0 - kh + 1, shape.1 - kw + 1, layer.filters);
            let pooled = match layer.max_pool {
                None => conv,
                Some(0) => return bad(format!("layer `{name}`: pool size must be at least 1")),
                Some(p) if p > conv.0 || p > conv.1 => {
                    return bad(format!(
                        "layer `{name}`: pool size {p} is larger than its {}x{} input",
                        conv.0, conv.1
                    ))
                }
                Some(p) => (conv.0 / p, conv.1 / p, conv.2),
            };
            out.push((shape, conv, pooled));
            shape = pooled;
        }
        Ok(out)
    }

    /// Shape of the last convolution block's output (what `Flatten` sees).
    pub fn flatten_shape(&self) -> Result<Hwc> {
        Ok(self.layer_shapes()?.last().map(|s| s.2).unwrap_or((
            self.input_height,
            self.input_width,
            self.input_channels,
        )))
    }

    /// Length of the `flatten` feature vector (37,632 for sdss_CNN).
    pub fn flatten_len(&self) -> Result<usize> {
        let (h, w, c) = self.flatten_shape()?;
        Ok(h * w * c)
    }

    /// Number of features produced at `tap`.
    pub fn tap_width(&self, tap: Tap) -> Result<usize> {
        Ok(match tap {
            Tap::Flatten => self.flatten_len()?,
            Tap::Dense => self.dense_units,
            Tap::Dense1 => self.dense_1_units,
            Tap::Output => self.output_units,
        })
    }

    /// Every weight tensor as (Keras layer name, `kernel`/`bias`, shape in Keras layout).
    ///
    /// Convolution kernels are HWIO `(kh, kw, in, out)`; Dense kernels are `(in, out)` with the rows of
    /// `dense` in Keras's channels-last flatten order.
    pub fn tensor_specs(&self) -> Result<Vec<TensorSpec>> {
        let shapes = self.layer_shapes()?;
        let mut specs = Vec::new();
        for (i, (layer, (input, _, _))) in self.conv_layers.iter().zip(&shapes).enumerate() {
            let name = conv_layer_name(i);
            let [kh, kw] = layer.kernel_size;
            specs.push(TensorSpec::new(
                &name,
                "kernel",
                vec![kh, kw, input.2, layer.filters],
            ));
            specs.push(TensorSpec::new(&name, "bias", vec![layer.filters]));
        }
        let dense = [
            ("dense", self.flatten_len()?, self.dense_units),
            ("dense_1", self.dense_units, self.dense_1_units),
            ("dense_2", self.dense_1_units, self.output_units),
        ];
        for (name, n_in, n_out) in dense {
            specs.push(TensorSpec::new(name, "kernel", vec![n_in, n_out]));
            specs.push(TensorSpec::new(name, "bias", vec![n_out]));
        }
        Ok(specs)
    }

    /// Total number of trainable parameters (5,404,321 for sdss_CNN).
    pub fn parameter_count(&self) -> Result<usize> {
        Ok(self
            .tensor_specs()?
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum())
    }

    /// Floating-point operations (a multiply-add counts as 2) for one image up to the `dense` tap.
    pub fn flops_to_dense(&self) -> Result<f64> {
        let mut flops = 0.0;
        for (layer, (input, conv, _)) in self.conv_layers.iter().zip(self.layer_shapes()?) {
            let [kh, kw] = layer.kernel_size;
            flops += 2.0 * (conv.0 * conv.1 * conv.2) as f64 * (kh * kw * input.2) as f64;
        }
        flops += 2.0 * self.flatten_len()? as f64 * self.dense_units as f64;
        Ok(flops)
    }
}

/// Keras's default name of the `i`-th `Conv2D` layer: `conv2d`, `conv2d_1`, ...
pub fn conv_layer_name(i: usize) -> String {
    if i == 0 {
        "conv2d".to_string()
    } else {
        format!("conv2d_{i}")
    }
}

/// One weight tensor the configuration requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Keras layer name (`conv2d_1`, `dense`, ...).
    pub layer: String,
    /// `kernel` or `bias`.
    pub tensor: &'static str,
    /// Shape in Keras layout.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    fn new(layer: &str, tensor: &'static str, shape: Vec<usize>) -> Self {
        TensorSpec {
            layer: layer.to_string(),
            tensor,
            shape,
        }
    }

    /// Name in the safetensors file: `<layer>.<kernel|bias>`.
    pub fn key(&self) -> String {
        format!("{}.{}", self.layer, self.tensor)
    }
}

/// Where to read features from the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tap {
    /// The flattened output of the last convolution block (37,632 values, Keras channels-last order).
    Flatten,
    /// The first Dense layer after its ReLU (128 values): the features sdss_clustering used.
    Dense,
    /// The second Dense layer (64 values, linear).
    #[serde(rename = "dense_1")]
    Dense1,
    /// The network's prediction (λ_R).
    Output,
}

impl Tap {
    /// Every tap, in network order.
    pub const ALL: [Tap; 4] = [Tap::Flatten, Tap::Dense, Tap::Dense1, Tap::Output];

    /// The tap's name as Keras calls the layer (`output` for the final layer).
    pub fn name(self) -> &'static str {
        match self {
            Tap::Flatten => "flatten",
            Tap::Dense => "dense",
            Tap::Dense1 => "dense_1",
            Tap::Output => "output",
        }
    }
}

impl std::fmt::Display for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Tap {
    type Err = CnnError;

    fn from_str(s: &str) -> Result<Self> {
        Tap::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| CnnError::UnknownTap(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shapes_match_keras_summary() {
        let cfg = CnnConfig::default();
        let shapes = cfg.layer_shapes().unwrap();
        let conv: Vec<Hwc> = shapes.iter().map(|s| s.1).collect();
        let pooled: Vec<Hwc> = shapes.iter().map(|s| s.2).collect();
        assert_eq!(
            conv,
            [
                (75, 75, 64),
                (71, 71, 96),
                (34, 34, 128),
                (15, 15, 192),
                (14, 14, 192)
            ]
        );
        assert_eq!(pooled[1], (35, 35, 96));
        assert_eq!(pooled[2], (17, 17, 128));
        assert_eq!(cfg.flatten_len().unwrap(), 37632);
    }

    #[test]
    fn flops_are_about_1_9_gflop() {
        let f = CnnConfig::default().flops_to_dense().unwrap();
        assert!((1.85e9..1.95e9).contains(&f), "{f}");
    }

    #[test]
    fn kernel_too_large_is_rejected_with_layer_name() {
        let cfg = CnnConfig {
            input_height: 20,
            ..CnnConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("conv2d_"), "{err}");
    }

    #[test]
    fn tap_names_round_trip() {
        for t in Tap::ALL {
            assert_eq!(t.name().parse::<Tap>().unwrap(), t);
        }
        assert!("dense_2".parse::<Tap>().is_err());
    }
}
