//! Weight tensors in Keras layout, their validation against a [`CnnConfig`], random initialisation, and the
//! safetensors file format this crate reads.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use safetensors::{Dtype, SafeTensors};

use crate::config::{CnnConfig, TensorSpec};
use crate::error::{CnnError, Result};

/// safetensors metadata key holding the architecture as JSON.
pub const CONFIG_METADATA_KEY: &str = "sdss_cnn_config";

/// One convolution layer: kernel in Keras HWIO layout `(kh, kw, in, out)`, flattened row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvWeights {
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (filters).
    pub filters: usize,
    /// `kh·kw·in·out` values, HWIO row-major.
    pub kernel: Vec<f32>,
    /// `out` values.
    pub bias: Vec<f32>,
}

/// One Dense layer: kernel `(in, out)` row-major, as Keras stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseWeights {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// `in·out` values, row-major.
    pub kernel: Vec<f32>,
    /// `out` values.
    pub bias: Vec<f32>,
}

/// All weights of the network, already checked against the configuration they were built for.
#[derive(Clone, Debug, PartialEq)]
pub struct CnnWeights {
    /// Convolution layers in order (`conv2d`, `conv2d_1`, ...).
    pub conv: Vec<ConvWeights>,
    /// `dense` (flatten → dense_units, ReLU).
    pub dense: DenseWeights,
    /// `dense_1` (dense_units → dense_1_units, linear).
    pub dense_1: DenseWeights,
    /// `dense_2`, the output layer (dense_1_units → output_units, linear).
    pub output: DenseWeights,
}

/// A named float32 tensor with its shape, as read from a weights file.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl CnnWeights {
    /// Builds the weights from tensors keyed `<layer>.<kernel|bias>` (Keras layout), checking every shape
    /// against `cfg`. `file` only names the source in errors.
    pub fn from_tensors(
        cfg: &CnnConfig,
        tensors: &HashMap<String, NamedTensor>,
        file: &Path,
    ) -> Result<Self> {
        let specs = cfg.tensor_specs()?;
        let take = |spec: &TensorSpec| -> Result<Vec<f32>> {
            let t = tensors
                .get(&spec.key())
                .ok_or_else(|| CnnError::MissingTensor {
                    file: file.to_path_buf(),
                    layer: spec.layer.clone(),
                    tensor: spec.tensor.to_string(),
                })?;
            if t.shape != spec.shape || t.data.len() != spec.shape.iter().product::<usize>() {
                return Err(CnnError::ShapeMismatch {
                    file: file.to_path_buf(),
                    layer: spec.layer.clone(),
                    tensor: spec.tensor.to_string(),
                    expected: spec.shape.clone(),
                    found: t.shape.clone(),
                });
            }
            Ok(t.data.clone())
        };
        let mut it = specs.iter();
        // `tensor_specs` lists kernel then bias for every conv layer, then the three dense layers, so the
        // iterator cannot run dry below.
        let mut next = || {
            it.next()
                .ok_or_else(|| CnnError::InvalidConfig("tensor list".into()))
        };
        let mut conv = Vec::with_capacity(cfg.conv_layers.len());
        for layer in &cfg.conv_layers {
            let ks = next()?;
            let kernel = take(ks)?;
            let bias = take(next()?)?;
            conv.push(ConvWeights {
                kernel_size: layer.kernel_size,
                in_channels: ks.shape[2],
                filters: layer.filters,
                kernel,
                bias,
            });
        }
        let mut dense = || -> Result<DenseWeights> {
            let ks = next()?;
            let kernel = take(ks)?;
            let bias = take(next()?)?;
            Ok(DenseWeights {
                inputs: ks.shape[0],
                outputs: ks.shape[1],
                kernel,
                bias,
            })
        };
        let d0 = dense()?;
        let d1 = dense()?;
        let d2 = dense()?;
        Ok(CnnWeights {
            conv,
            dense: d0,
            dense_1: d1,
            output: d2,
        })
    }

    /// Keras-style random weights (Glorot-uniform kernels, zero biases) from a seeded generator: for timing
    /// and tests, not for science.
    pub fn random(cfg: &CnnConfig, seed: u64) -> Result<Self> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut tensors = HashMap::new();
        for spec in cfg.tensor_specs()? {
            let n: usize = spec.shape.iter().product();
            let data = if spec.tensor == "bias" {
                vec![0.0; n]
            } else {
                // Glorot: fan_in / fan_out include the receptive field for convolutions.
                let (fan_in, fan_out) = match spec.shape.as_slice() {
                    [kh, kw, i, o] => (kh * kw * i, kh * kw * o),
                    [i, o] => (*i, *o),
                    _ => (n, n),
                };
                let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                (0..n).map(|_| rng.random_range(-limit..limit)).collect()
            };
            tensors.insert(
                spec.key(),
                NamedTensor {
                    shape: spec.shape.clone(),
                    data,
                },
            );
        }
        Self::from_tensors(cfg, &tensors, Path::new("<random>"))
    }

    /// The tensors keyed `<layer>.<kernel|bias>` in Keras layout, in network order.
    pub fn to_tensors(&self, cfg: &CnnConfig) -> Result<Vec<(String, NamedTensor)>> {
        let mut data: Vec<&Vec<f32>> = Vec::new();
        for c in &self.conv {
            data.push(&c.kernel);
            data.push(&c.bias);
        }
        for d in [&self.dense, &self.dense_1, &self.output] {
            data.push(&d.kernel);
            data.push(&d.bias);
        }
        let specs = cfg.tensor_specs()?;
        if specs.len() != data.len() {
            return Err(CnnError::InvalidConfig(format!(
                "configuration has {} tensors, weights have {}",
                specs.len(),
                data.len()
            )));
        }
        Ok(specs
            .into_iter()
            .zip(data)
            .map(|(s, d)| {
                (
                    s.key(),
                    NamedTensor {
                        shape: s.shape,
                        data: d.clone(),
                    },
                )
            })
            .collect())
    }
}

/// Serialises `cfg` and `weights` as safetensors bytes (little-endian float32, config JSON in the metadata).
pub fn to_safetensors_bytes(
    cfg: &CnnConfig,
    weights: &CnnWeights,
    extra_metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let tensors = weights.to_tensors(cfg)?;
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(k, t)| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (k, t.shape, b)
        })
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (k, shape, b) in &bytes {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)
            .map_err(|e| CnnError::InvalidConfig(format!("tensor `{k}`: {e}")))?;
        views.push((k.clone(), view));
    }
    let mut meta = extra_metadata;
    meta.insert(
        CONFIG_METADATA_KEY.to_string(),
        serde_json::to_string(cfg).map_err(|e| CnnError::InvalidConfig(e.to_string()))?,
    );
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| CnnError::InvalidConfig(format!("safetensors serialisation: {e}")))?;
    canonical_safetensors(bytes)
}

/// The same safetensors file with its JSON header's keys sorted. `safetensors::serialize` writes the
/// metadata in `HashMap` order, which changes from run to run; sorted, the same weights always give the
/// same bytes (and the same SHA-256 in the manifest).
pub fn canonical_safetensors(bytes: Vec<u8>) -> Result<Vec<u8>> {
    use std::collections::BTreeMap;
    let bad = |e: String| CnnError::InvalidConfig(format!("safetensors header: {e}"));
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as usize)
        .ok_or_else(|| bad("too short".into()))?;
    let header = bytes.get(8..8 + n).ok_or_else(|| bad("truncated".into()))?;
    let value: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let b: BTreeMap<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::to_value(b).unwrap_or(serde_json::Value::Null)
            }
            other => other,
        }
    }
    let map: BTreeMap<String, serde_json::Value> = match sorted(value) {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => return Err(bad("not a JSON object".into())),
    };
    let mut json = serde_json::to_vec(&map).map_err(|e| bad(e.to_string()))?;
    // The data section starts 8-byte aligned, as safetensors pads it.
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename, so a crash never
/// leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| CnnError::io(path, e))?;
    tmp.write_all(bytes).map_err(|e| CnnError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| CnnError::io(path, e))?;
    // Temporary files are created owner-only; weights are ordinary readable outputs.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| CnnError::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| CnnError::io(path, e.error))?;
    Ok(())
}

/// Reads a safetensors file written by [`to_safetensors_bytes`]: the configuration from its metadata and
/// the weights checked against it.
pub fn read_safetensors(path: &Path) -> Result<(CnnConfig, CnnWeights)> {
    let bytes = std::fs::read(path).map_err(|e| CnnError::io(path, e))?;
    read_safetensors_bytes(&bytes, path)
}

/// Like [`read_safetensors`] on bytes already in memory; `path` only names the source in errors.
pub fn read_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<(CnnConfig, CnnWeights)> {
    let bad = |reason: String| CnnError::BadWeightsFile {
        file: path.to_path_buf(),
        format: "safetensors",
        reason,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let cfg_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CONFIG_METADATA_KEY))
        .ok_or_else(|| {
            bad(format!(
                "no `{CONFIG_METADATA_KEY}` metadata (convert with `cargo xtask fetch-weights`)"
            ))
        })?;
    let cfg: CnnConfig = serde_json::from_str(cfg_json)
        .map_err(|e| bad(format!("bad configuration metadata: {e}")))?;
    cfg.validate()?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(CnnError::WrongDtype {
                file: path.to_path_buf(),
                tensor: name,
                dtype: format!("{:?}", view.dtype()),
            });
        }
        let data = view
            .data()
            .chunks_exact(4)
            // chunks_exact(4) yields 4-byte slices, so the conversion cannot fail.
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(
            name,
            NamedTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    let weights = CnnWeights::from_tensors(&cfg, &tensors, path)?;
    Ok((cfg, weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> CnnConfig {
        let mut cfg = CnnConfig::sdss_cnn();
        cfg.input_height = 20;
        cfg.input_width = 18;
        for l in &mut cfg.conv_layers {
            l.filters = 4;
            l.kernel_size = [2, 2];
        }
        cfg
    }

    #[test]
    fn safetensors_round_trip() {
        let cfg = small();
        let w = CnnWeights::random(&cfg, 7).unwrap();
        let bytes = to_safetensors_bytes(&cfg, &w, HashMap::new()).unwrap();
        let (cfg2, w2) = read_safetensors_bytes(&bytes, Path::new("x")).unwrap();
        assert_eq!(cfg, cfg2);
        assert_eq!(w, w2);
    }

    #[test]
    fn the_same_weights_always_give_the_same_bytes() {
        let cfg = small();
        let w = CnnWeights::random(&cfg, 7).unwrap();
        let meta = || {
            (0..8)
                .map(|i| (format!("key{i}"), format!("value{i}")))
                .collect::<HashMap<_, _>>()
        };
        let a = to_safetensors_bytes(&cfg, &w, meta()).unwrap();
        for _ in 0..5 {
            assert_eq!(to_safetensors_bytes(&cfg, &w, meta()).unwrap(), a);
        }
        let (cfg2, w2) = read_safetensors_bytes(&a, Path::new("x")).unwrap();
        assert_eq!((cfg2, w2), (cfg, w));
    }

    #[test]
    fn wrong_shape_names_layer() {
        let cfg = small();
        let w = CnnWeights::random(&cfg, 7).unwrap();
        let mut t: HashMap<_, _> = w.to_tensors(&cfg).unwrap().into_iter().collect();
        t.get_mut("conv2d_2.kernel").unwrap().shape = vec![3, 2, 4, 4];
        let err = CnnWeights::from_tensors(&cfg, &t, Path::new("f.safetensors")).unwrap_err();
        assert!(
            matches!(err, CnnError::ShapeMismatch { ref layer, .. } if layer == "conv2d_2"),
            "{err}"
        );
        t.remove("dense_1.bias");
        t.get_mut("conv2d_2.kernel").unwrap().shape = vec![2, 2, 4, 4];
        let err = CnnWeights::from_tensors(&cfg, &t, Path::new("f.safetensors")).unwrap_err();
        assert!(
            matches!(err, CnnError::MissingTensor { ref layer, .. } if layer == "dense_1"),
            "{err}"
        );
    }

    #[test]
    fn truncated_file_is_a_typed_error() {
        let cfg = small();
        let w = CnnWeights::random(&cfg, 7).unwrap();
        let bytes = to_safetensors_bytes(&cfg, &w, HashMap::new()).unwrap();
        let err = read_safetensors_bytes(&bytes[..bytes.len() - 10], Path::new("t")).unwrap_err();
        assert!(matches!(err, CnnError::BadWeightsFile { .. }), "{err}");
        let err = read_safetensors_bytes(b"not a file", Path::new("t")).unwrap_err();
        assert!(matches!(err, CnnError::BadWeightsFile { .. }), "{err}");
    }
}
