//! Architecture configuration: filter counts, kernel sizes, pooling and dense widths.

use serde::{Deserialize, Serialize};

use crate::error::{CnnError, Result};

/// One `Conv2D` layer (stride 1, 'valid' padding, ReLU), optionally followed by `MaxPool2D` and `Dropout`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvLayerConfig {
    /// Number of output channels (Keras `filters`).
    pub filters: usize,
    /// Kernel height and width (Keras `kernel_size`).
    pub kernel_size: [usize; 2],
    /// Size (and stride) of the square `MaxPool2D` after this layer, if any ('valid' padding).
    pub max_pool: Option<usize>,
    /// Rate of the `Dropout` after the block (after its pooling, as in sdss_CNN); 0 for none. Only
    /// training uses it: dropout is the identity at inference.
    #[serde(default)]
    pub dropout: f32,
}

impl ConvLayerConfig {
    /// A block without pooling or dropout.
    pub fn new(filters: usize, kernel_size: [usize; 2]) -> Self {
        ConvLayerConfig {
            filters,
            kernel_size,
            max_pool: None,
            dropout: 0.0,
        }
    }

    /// The same block followed by a `MaxPool2D` of size `pool`.
    pub fn pooled(mut self, pool: usize) -> Self {
        self.max_pool = Some(pool);
        self
    }

    /// The same block followed by a `Dropout` of rate `rate`.
    pub fn with_dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }
}

/// Activation of the output layer (`dense_2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputActivation {
    /// Linear: a regression (sdss_CNN's λ_R).
    #[default]
    Linear,
    /// Softmax over the outputs: a classifier, one output per class.
    Softmax,
}

/// The network's architecture.
///
/// The layer sequence is fixed (the sdss_CNN shape): input → `Conv2D`+ReLU blocks (each optionally followed by
/// `MaxPool2D`) → `Flatten` → `Dense(dense_units, relu)` → `Dense(dense_1_units)` (linear) →
/// `Dense(output_units)` (linear, or softmax for a classifier). Dropout rates are recorded for training
/// (after each convolution block, after `dense` and after `dense_1`); at inference dropout is the identity.
/// [`CnnConfig::default`] is sdss_CNN itself (5,404,321 parameters); [`CnnConfig::named`] gives the other
/// architectures by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Width of the output layer (`dense_2`): 1 for the λ_R prediction, the class count for a classifier.
    pub output_units: usize,
    /// Rate of the `Dropout` after `dense` (0 for none).
    #[serde(default)]
    pub dense_dropout: f32,
    /// Rate of the `Dropout` after `dense_1` (0 for none).
    #[serde(default)]
    pub dense_1_dropout: f32,
    /// Activation of the output layer.
    #[serde(default)]
    pub output_activation: OutputActivation,
}

/// The architectures [`CnnConfig::named`] knows, by name.
pub const ARCHITECTURES: [&str; 4] = ["sdss-cnn", "sdss-cnn-43200", "baseline", "small"];

impl Default for CnnConfig {
    fn default() -> Self {
        Self::sdss_cnn()
    }
}

/// Shape of one activation map: (height, width, channels), channels-last.
pub type Hwc = (usize, usize, usize);

impl CnnConfig {
    /// The sdss_CNN architecture as its clustering repository used it (`NN/lib/sdss_model_constructors.py`
    /// after the 3×3 change): 80×80×3 input, Flatten 37,632, 5,404,321 parameters, with its dropout rates.
    pub fn sdss_cnn() -> Self {
        Self::sdss_cnn_with_fourth_kernel(3)
    }

    /// The variant the sdss_CNN author very probably trained (its model plot and printed summary): a 2×2
    /// fourth convolution, Flatten 15·15·192 = 43,200, 5,994,145 parameters.
    pub fn sdss_cnn_43200() -> Self {
        Self::sdss_cnn_with_fourth_kernel(2)
    }

    fn sdss_cnn_with_fourth_kernel(k4: usize) -> Self {
        let conv = |filters, k: usize| ConvLayerConfig::new(filters, [k, k]);
        CnnConfig {
            input_height: 80,
            input_width: 80,
            input_channels: 3,
            conv_layers: vec![
                conv(64, 6).with_dropout(0.5),
                conv(96, 5).pooled(2).with_dropout(0.25),
                conv(128, 2).pooled(2).with_dropout(0.25),
                conv(192, k4).with_dropout(0.25),
                conv(192, 2).with_dropout(0.25),
            ],
            dense_units: 128,
            dense_1_units: 64,
            output_units: 1,
            dense_dropout: 0.25,
            dense_1_dropout: 0.0,
            output_activation: OutputActivation::Linear,
        }
    }

    /// The sdss_CNN author's smaller baseline network (`build_baseline_CNN`: filters 32/64/128/128/128,
    /// Flatten 21,632, 3,160,161 parameters), which predicted λ_R as well as the tuned one.
    pub fn baseline() -> Self {
        let conv = |filters, k: usize| ConvLayerConfig::new(filters, [k, k]);
        CnnConfig {
            input_height: 80,
            input_width: 80,
            input_channels: 3,
            conv_layers: vec![
                conv(32, 6).with_dropout(0.5),
                conv(64, 5).pooled(2).with_dropout(0.25),
                conv(128, 2).pooled(2).with_dropout(0.25),
                conv(128, 3).with_dropout(0.25),
                conv(128, 3).with_dropout(0.25),
            ],
            dense_units: 128,
            dense_1_units: 64,
            output_units: 1,
            dense_dropout: 0.25,
            dense_1_dropout: 0.25,
            output_activation: OutputActivation::Linear,
        }
    }

    /// A fast encoder for CPUs and tests (this project's design): four 3×3 convolutions of 8, 16, 32 and 32
    /// filters, the first three each followed by 2×2 max-pooling, Flatten 6·6·32 = 1,152, then the same
    /// 128 → 64 → 1 head as sdss_CNN, no dropout. 171,185 parameters and 9.1 MFLOPs per image up to
    /// `dense` (sdss_CNN: 1.9 GFLOPs, 208× more).
    pub fn small() -> Self {
        let conv = |filters| ConvLayerConfig::new(filters, [3, 3]);
        CnnConfig {
            input_height: 80,
            input_width: 80,
            input_channels: 3,
            conv_layers: vec![
                conv(8).pooled(2),
                conv(16).pooled(2),
                conv(32).pooled(2),
                conv(32),
            ],
            dense_units: 128,
            dense_1_units: 64,
            output_units: 1,
            dense_dropout: 0.0,
            dense_1_dropout: 0.0,
            output_activation: OutputActivation::Linear,
        }
    }

    /// The architecture called `name` (one of [`ARCHITECTURES`]).
    pub fn named(name: &str) -> Result<Self> {
        match name {
            "sdss-cnn" => Ok(Self::sdss_cnn()),
            "sdss-cnn-43200" => Ok(Self::sdss_cnn_43200()),
            "baseline" => Ok(Self::baseline()),
            "small" => Ok(Self::small()),
            other => Err(CnnError::InvalidConfig(format!(
                "unknown architecture `{other}` (expected one of {})",
                ARCHITECTURES.join(", ")
            ))),
        }
    }

    /// The same network with its output layer replaced: `units` outputs with `activation` (a classifier
    /// over `units` classes with [`OutputActivation::Softmax`]).
    pub fn with_output(mut self, units: usize, activation: OutputActivation) -> Self {
        self.output_units = units;
        self.output_activation = activation;
        self
    }

    /// Whether `other` has the same layers and weight shapes (input, filters, kernels, pools, widths and
    /// output activation); dropout rates, which do not change the weights, are not compared.
    pub fn same_layers(&self, other: &CnnConfig) -> bool {
        let strip = |c: &CnnConfig| {
            let mut c = c.clone();
            c.conv_layers.iter_mut().for_each(|l| l.dropout = 0.0);
            c.dense_dropout = 0.0;
            c.dense_1_dropout = 0.0;
            c
        };
        strip(self) == strip(other)
    }

    /// The differences between the layers of `self` and `other`, one phrase each ("conv2d_3 kernel 3x3 vs
    /// 2x2"), for error messages; empty when [`CnnConfig::same_layers`] holds.
    pub fn layer_differences(&self, other: &CnnConfig) -> Vec<String> {
        let mut d = Vec::new();
        let (a, b) = (self, other);
        if (a.input_height, a.input_width, a.input_channels)
            != (b.input_height, b.input_width, b.input_channels)
        {
            d.push(format!(
                "input {}x{}x{} vs {}x{}x{}",
                a.input_height,
                a.input_width,
                a.input_channels,
                b.input_height,
                b.input_width,
                b.input_channels
            ));
        }
        if a.conv_layers.len() != b.conv_layers.len() {
            d.push(format!(
                "{} vs {} convolution layers",
                a.conv_layers.len(),
                b.conv_layers.len()
            ));
        }
        for (i, (x, y)) in a.conv_layers.iter().zip(&b.conv_layers).enumerate() {
            let name = conv_layer_name(i);
            if x.filters != y.filters {
                d.push(format!("{name} filters {} vs {}", x.filters, y.filters));
            }
            if x.kernel_size != y.kernel_size {
                d.push(format!(
                    "{name} kernel {}x{} vs {}x{}",
                    x.kernel_size[0], x.kernel_size[1], y.kernel_size[0], y.kernel_size[1]
                ));
            }
            if x.max_pool != y.max_pool {
                d.push(format!(
                    "{name} pooling {:?} vs {:?}",
                    x.max_pool, y.max_pool
                ));
            }
        }
        for (name, x, y) in [
            ("dense", a.dense_units, b.dense_units),
            ("dense_1", a.dense_1_units, b.dense_1_units),
            ("dense_2", a.output_units, b.output_units),
        ] {
            if x != y {
                d.push(format!("{name} units {x} vs {y}"));
            }
        }
        if a.output_activation != b.output_activation {
            d.push(format!(
                "output activation {:?} vs {:?}",
                a.output_activation, b.output_activation
            ));
        }
        d
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
        let rates = self
            .conv_layers
            .iter()
            .enumerate()
            .map(|(i, l)| (conv_layer_name(i), l.dropout))
            .chain([
                ("dense".to_string(), self.dense_dropout),
                ("dense_1".to_string(), self.dense_1_dropout),
            ]);
        for (name, rate) in rates {
            if !(0.0..1.0).contains(&rate) {
                return bad(format!(
                    "layer `{name}`: dropout rate {rate} must lie in [0, 1)"
                ));
            }
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
        self.check_size(&out)?;
        Ok(out)
    }

    /// Refuses a network whose parameter count overflows or exceeds [`MAX_PARAMETERS`], so that a
    /// configuration read from a stranger's file cannot make the sizes computed from it wrap around,
    /// nor ask for weights larger than any galaxy network.
    fn check_size(&self, shapes: &[(Hwc, Hwc, Hwc)]) -> Result<()> {
        let too_big = || {
            CnnError::InvalidConfig(format!(
                "the network has more than {MAX_PARAMETERS} parameters (the limit; sdss_CNN has 5,404,321)"
            ))
        };
        let mul = |a: usize, b: usize| a.checked_mul(b).ok_or_else(too_big);
        let mut total = 0usize;
        let mut add = |n: usize| -> Result<()> {
            total = total
                .checked_add(n)
                .filter(|&t| t <= MAX_PARAMETERS)
                .ok_or_else(too_big)?;
            Ok(())
        };
        let mut flat = (self.input_height, self.input_width, self.input_channels);
        for (layer, (input, _, pooled)) in self.conv_layers.iter().zip(shapes) {
            let [kh, kw] = layer.kernel_size;
            add(mul(mul(mul(kh, kw)?, input.2)?, layer.filters)?)?;
            add(layer.filters)?;
            flat = *pooled;
        }
        let flatten = mul(mul(flat.0, flat.1)?, flat.2)?;
        for (n_in, n_out) in [
            (flatten, self.dense_units),
            (self.dense_units, self.dense_1_units),
            (self.dense_1_units, self.output_units),
        ] {
            add(mul(n_in, n_out)?)?;
            add(n_out)?;
        }
        Ok(())
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

/// Largest network accepted, in parameters: 2³⁰ (4 GiB of float32 weights), 200 times sdss_CNN.
pub const MAX_PARAMETERS: usize = 1 << 30;

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
    fn named_architectures_have_the_documented_sizes() {
        let count = |n: &str| CnnConfig::named(n).unwrap().parameter_count().unwrap();
        assert_eq!(count("sdss-cnn"), 5_404_321);
        assert_eq!(count("sdss-cnn-43200"), 5_994_145);
        assert_eq!(count("baseline"), 3_160_161);
        assert_eq!(count("small"), 171_185);
        assert_eq!(CnnConfig::sdss_cnn_43200().flatten_len().unwrap(), 43_200);
        assert_eq!(CnnConfig::baseline().flatten_len().unwrap(), 21_632);
        assert_eq!(CnnConfig::small().flatten_len().unwrap(), 1_152);
        let small = CnnConfig::small().flops_to_dense().unwrap();
        assert!((9.0e6..9.2e6).contains(&small), "{small}");
        assert!(CnnConfig::named("tiny")
            .unwrap_err()
            .to_string()
            .contains("small"));
    }

    #[test]
    fn layer_differences_name_the_layer() {
        let a = CnnConfig::sdss_cnn();
        let b = CnnConfig::sdss_cnn_43200();
        assert!(!a.same_layers(&b));
        assert_eq!(a.layer_differences(&b), ["conv2d_3 kernel 3x3 vs 2x2"]);
        let mut c = a.clone();
        c.dense_dropout = 0.0;
        assert!(a.same_layers(&c));
        assert!(a.layer_differences(&c).is_empty());
    }

    #[test]
    fn dropout_rate_out_of_range_is_rejected() {
        let mut cfg = CnnConfig::small();
        cfg.dense_1_dropout = 1.0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("dense_1") && err.contains("dropout"), "{err}");
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
