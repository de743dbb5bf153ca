//! Conversion of Keras model files to this crate's safetensors format.
//!
//! Three Keras formats are read, told apart by their content rather than their extension:
//! - the legacy HDF5 file that Keras 2 (`tf.keras` / `tf_keras`) `model.save("x.h5")` writes, which is what
//!   sdss_CNN saved (datasets like `model_weights/conv2d/conv2d/kernel:0`);
//! - the legacy HDF5 file of Keras 3 (`model_weights/conv2d/sequential/conv2d/kernel`);
//! - the Keras 3 `.keras` zip (`config.json` + `model.weights.h5` with `layers/conv2d/vars/0`).
//!
//! The architecture is read from the file's model configuration (JSON) and must be the sdss_CNN layer
//! sequence (any filter counts, kernel sizes, pools, dropout rates and dense widths; a linear or softmax
//! output), so that a file with either of sdss_CNN's variants (Flatten 37,632 or 43,200) or a classifier
//! is converted as what it is, never as an assumed architecture. In the HDF5 files the weights are
//! found by walking the `layer_names` / `weight_names` attributes, not by guessing paths. Tensors keep
//! Keras's layout (HWIO convolution kernels, `(in, out)` Dense kernels with the first Dense layer's rows in
//! Keras's channels-last flatten order), which is also the layout the engine computes in.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use hdf5_reader::Hdf5File;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{CnnConfig, ConvLayerConfig, OutputActivation, TensorSpec};
use crate::error::{CnnError, Result};
use crate::weights::{self, CnnWeights, NamedTensor};

/// Which Keras file format a model came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KerasFormat {
    /// Legacy HDF5 written by Keras 2 (`tf.keras`, `tf_keras`): sdss_CNN's own format.
    Keras2Hdf5,
    /// Legacy HDF5 written by Keras 3.
    Keras3Hdf5,
    /// Keras 3 `.keras` zip archive.
    KerasZip,
    /// Not from Keras: trained by `sdss-clustering train` (the manifest's `training` says how).
    Trained,
}

/// A Keras model read and checked against its own architecture.
#[derive(Clone, Debug)]
pub struct KerasModel {
    /// The architecture found in the file.
    pub config: CnnConfig,
    /// The weights, Keras layout.
    pub weights: CnnWeights,
    /// The file's format.
    pub format: KerasFormat,
    /// The `keras_version` the file records, if any.
    pub keras_version: Option<String>,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub source_sha256: String,
}

/// The JSON manifest written next to a converted `.safetensors` file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `sdss-cnn-weights`.
    pub format: String,
    /// Manifest layout version (1).
    pub version: u32,
    /// The architecture.
    pub config: CnnConfig,
    /// Total number of parameters.
    pub parameters: usize,
    /// Where the weights came from.
    pub source: ManifestSource,
    /// SHA-256 of the written `.safetensors` file, lowercase hex.
    pub safetensors_sha256: String,
    /// Every tensor in the safetensors file, in network order.
    pub tensors: Vec<ManifestTensor>,
    /// For weights trained by `sdss-clustering train`: the recipe, data and result summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Value>,
}

/// Provenance of converted weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestSource {
    /// The path or URL the Keras file was read from.
    pub location: String,
    /// Its format.
    pub format: KerasFormat,
    /// The Keras version it records.
    pub keras_version: Option<String>,
    /// SHA-256 of the Keras file, lowercase hex.
    pub sha256: String,
}

/// One tensor listed in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestTensor {
    /// Name in the safetensors file (`conv2d.kernel`, ...).
    pub name: String,
    /// Shape (Keras layout).
    pub shape: Vec<usize>,
    /// Element type (always `F32`).
    pub dtype: String,
}

const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a Keras model file (any of the three formats).
pub fn read_keras_model(path: impl AsRef<Path>) -> Result<KerasModel> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| CnnError::io(path, e))?;
    read_keras_bytes(bytes, path)
}

/// Reads a Keras model from bytes already in memory; `path` only names the source in errors.
pub fn read_keras_bytes(bytes: Vec<u8>, path: &Path) -> Result<KerasModel> {
    let source_sha256 = sha256_hex(&bytes);
    if bytes.starts_with(ZIP_MAGIC) {
        let mut m = read_keras_zip(&bytes, path)?;
        m.source_sha256 = source_sha256;
        return Ok(m);
    }
    // HDF5 files may start with a user block of 512, 1024, 2048, ... bytes before the signature.
    let is_hdf5 = std::iter::once(0)
        .chain((9..).map(|p| 1usize << p))
        .take_while(|&off| off + 8 <= bytes.len())
        .any(|off| &bytes[off..off + 8] == HDF5_MAGIC);
    if !is_hdf5 {
        return Err(CnnError::BadWeightsFile {
            file: path.to_path_buf(),
            format: "Keras (.h5 or .keras)",
            reason: "neither an HDF5 file nor a zip archive".into(),
        });
    }
    let mut m = read_keras_hdf5(bytes, path)?;
    m.source_sha256 = source_sha256;
    Ok(m)
}

fn h5_err(path: &Path, what: impl std::fmt::Display) -> CnnError {
    CnnError::BadWeightsFile {
        file: path.to_path_buf(),
        format: "Keras HDF5",
        reason: what.to_string(),
    }
}

/// Reads a string-list attribute; Keras writes an empty list as an empty float64 array.
fn string_list(attr: &hdf5_reader::Attribute) -> std::result::Result<Vec<String>, String> {
    if attr.shape.iter().product::<u64>() == 0 && !attr.shape.is_empty() {
        return Ok(Vec::new());
    }
    attr.read_strings().map_err(|e| e.to_string())
}

/// Largest `config.json` or `metadata.json` read from a `.keras` archive: 16 MiB (sdss_CNN's is 6 KB).
pub const MAX_KERAS_JSON_BYTES: u64 = 16 << 20;

/// Room an HDF5 file needs besides its float32 weights (headers, attributes, the model's JSON): 1 MiB.
const HDF5_OVERHEAD_BYTES: usize = 1 << 20;

/// Refuses an architecture whose weights could not be in a file of `file_len` bytes.
///
/// Keras writes weights into HDF5 uncompressed, 4 bytes per parameter, so a file declaring more
/// parameters than it has room for is crafted or cut short; refusing it here keeps a few-byte file from
/// making the reader allocate gigabytes for datasets it merely claims.
fn check_room_for_weights(config: &CnnConfig, file_len: usize, path: &Path) -> Result<usize> {
    let parameters = config.parameter_count()?;
    if parameters.saturating_mul(4) > file_len.saturating_add(HDF5_OVERHEAD_BYTES) {
        return Err(h5_err(
            path,
            format!(
                "the architecture has {parameters} parameters ({} bytes of float32 weights), \
                 more than this {file_len}-byte file can hold",
                parameters.saturating_mul(4)
            ),
        ));
    }
    Ok(parameters)
}

fn read_keras_hdf5(bytes: Vec<u8>, path: &Path) -> Result<KerasModel> {
    let file_len = bytes.len();
    let file = Hdf5File::from_vec(bytes).map_err(|e| h5_err(path, e))?;
    let root = file.root_group().map_err(|e| h5_err(path, e))?;
    let root_attr = |name: &str| -> Option<String> {
        root.attribute(name).ok().and_then(|a| a.read_string().ok())
    };
    let keras_version = root_attr("keras_version");
    let model_config = root_attr("model_config").ok_or_else(|| {
        h5_err(
            path,
            "no `model_config` attribute (a weights-only file? save the whole model with model.save)",
        )
    })?;
    let json: Value = serde_json::from_str(&model_config)
        .map_err(|e| h5_err(path, format!("`model_config` is not JSON: {e}")))?;
    let arch = parse_architecture(&json, path)?;
    let parameters = check_room_for_weights(&arch.config, file_len, path)?;

    // `model.save` puts the weights under /model_weights; `save_weights` at the root.
    let (weights_root, group) = match file.group("model_weights") {
        Ok(g) => ("model_weights/", g),
        Err(_) => ("", root.clone()),
    };
    let layer_names = group
        .attribute("layer_names")
        .map_err(|_| {
            h5_err(
                path,
                format!("/{weights_root} has no `layer_names` attribute"),
            )
        })
        .and_then(|a| string_list(&a).map_err(|e| h5_err(path, format!("`layer_names`: {e}"))))?;
    let mut tensors = HashMap::new();
    for (file_name, spec_layer) in arch.weight_layers() {
        if !layer_names.iter().any(|n| n == file_name) {
            return Err(CnnError::MissingTensor {
                file: path.to_path_buf(),
                layer: spec_layer.to_string(),
                tensor: format!("(layer group `{file_name}` is not in `layer_names`)"),
            });
        }
        let layer_group = file
            .group(&format!("{weights_root}{file_name}"))
            .map_err(|e| h5_err(path, format!("layer `{file_name}`: {e}")))?;
        let weight_names = layer_group
            .attribute("weight_names")
            .map_err(|e| h5_err(path, format!("layer `{file_name}`: `weight_names`: {e}")))
            .and_then(|a| {
                string_list(&a)
                    .map_err(|e| h5_err(path, format!("layer `{file_name}`: `weight_names`: {e}")))
            })?;
        for wn in &weight_names {
            // `conv2d/kernel:0` (Keras 2) or `sequential/conv2d/kernel` (Keras 3) -> `kernel`.
            let last = wn.rsplit('/').next().unwrap_or(wn);
            let kind = last.split(':').next().unwrap_or(last);
            let ds_path = format!("{weights_root}{file_name}/{wn}");
            let t = read_dataset(&file, &ds_path, path, parameters)?;
            tensors.insert(format!("{spec_layer}.{kind}"), t);
        }
    }
    let weights = CnnWeights::from_tensors(&arch.config, &tensors, path)?;
    let format = match keras_version.as_deref() {
        Some(v) if v.starts_with('3') => KerasFormat::Keras3Hdf5,
        _ => KerasFormat::Keras2Hdf5,
    };
    Ok(KerasModel {
        config: arch.config,
        weights,
        format,
        keras_version,
        source_sha256: String::new(),
    })
}

/// Reads a float32 dataset of at most `max_elements` elements (no tensor of the network is larger
/// than the whole network); the claimed shape is checked before anything is allocated for it.
fn read_dataset(
    file: &Hdf5File,
    ds_path: &str,
    path: &Path,
    max_elements: usize,
) -> Result<NamedTensor> {
    let ds = file
        .dataset(ds_path)
        .map_err(|e| h5_err(path, format!("dataset `{ds_path}`: {e}")))?;
    let claimed = ds
        .shape()
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= max_elements as u64);
    if claimed.is_none() {
        return Err(h5_err(
            path,
            format!(
                "dataset `{ds_path}` claims shape {:?}, larger than the whole {max_elements}-parameter network",
                ds.shape()
            ),
        ));
    }
    let is_f32 = matches!(
        ds.dtype(),
        hdf5_reader::messages::datatype::Datatype::FloatingPoint { size: 4, .. }
    );
    if !is_f32 {
        return Err(CnnError::WrongDtype {
            file: path.to_path_buf(),
            tensor: ds_path.to_string(),
            dtype: format!("{:?}", ds.dtype()),
        });
    }
    let arr = ds
        .read_array::<f32>()
        .map_err(|e| h5_err(path, format!("dataset `{ds_path}`: {e}")))?;
    Ok(NamedTensor {
        shape: arr.shape().to_vec(),
        data: arr.iter().copied().collect(),
    })
}

fn read_keras_zip(bytes: &[u8], path: &Path) -> Result<KerasModel> {
    let zerr = |what: String| CnnError::BadWeightsFile {
        file: path.to_path_buf(),
        format: ".keras zip",
        reason: what,
    };
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| zerr(e.to_string()))?;
    // Members are read with a limit checked against both the size the archive declares and the bytes
    // actually inflated, since a crafted archive can declare one size and inflate to another.
    let mut member = |name: &str, limit: u64| -> Result<Vec<u8>> {
        let f = zip
            .by_name(name)
            .map_err(|e| zerr(format!("member `{name}`: {e}")))?;
        let too_big = || {
            zerr(format!(
                "member `{name}` is larger than {limit} bytes, the most it can need"
            ))
        };
        if f.size() > limit {
            return Err(too_big());
        }
        let mut v = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut v)
            .map_err(|e| zerr(format!("member `{name}`: {e}")))?;
        if v.len() as u64 > limit {
            return Err(too_big());
        }
        Ok(v)
    };
    let config = member("config.json", MAX_KERAS_JSON_BYTES)?;
    let json: Value = serde_json::from_slice(&config)
        .map_err(|e| zerr(format!("config.json is not JSON: {e}")))?;
    let arch = parse_architecture(&json, path)?;
    // The weights file holds the float32 weights the architecture declares, plus HDF5's overhead.
    let parameters = arch.config.parameter_count()?;
    let weights_limit = (parameters as u64)
        .saturating_mul(4)
        .saturating_add(HDF5_OVERHEAD_BYTES as u64);
    let weights_h5 = member("model.weights.h5", weights_limit)?;
    let metadata = member("metadata.json", MAX_KERAS_JSON_BYTES).ok();
    let keras_version = metadata
        .and_then(|m| serde_json::from_slice::<Value>(&m).ok())
        .and_then(|m| {
            m.get("keras_version")
                .and_then(Value::as_str)
                .map(String::from)
        });

    let inner = path.join("model.weights.h5");
    check_room_for_weights(&arch.config, weights_h5.len(), &inner)?;
    let file = Hdf5File::from_vec(weights_h5).map_err(|e| h5_err(&inner, e))?;
    let mut tensors = HashMap::new();
    for (file_name, spec_layer) in arch.weight_layers() {
        // Keras 3 stores a layer's variables in creation order: kernel, then bias.
        for (i, kind) in ["kernel", "bias"].iter().enumerate() {
            let ds_path = format!("layers/{file_name}/vars/{i}");
            let t = match read_dataset(&file, &ds_path, &inner, parameters) {
                Ok(t) => t,
                Err(CnnError::BadWeightsFile { .. }) => {
                    return Err(CnnError::MissingTensor {
                        file: inner.clone(),
                        layer: spec_layer.to_string(),
                        tensor: format!("{kind} (`{ds_path}`)"),
                    })
                }
                Err(e) => return Err(e),
            };
            tensors.insert(format!("{spec_layer}.{kind}"), t);
        }
    }
    let weights = CnnWeights::from_tensors(&arch.config, &tensors, path)?;
    Ok(KerasModel {
        config: arch.config,
        weights,
        format: KerasFormat::KerasZip,
        keras_version,
        source_sha256: String::new(),
    })
}

/// The architecture read from a Keras model configuration, with the layer names the file uses.
struct Architecture {
    config: CnnConfig,
    /// File layer names of the conv layers, then the three dense layers.
    file_names: Vec<String>,
    /// This crate's names for the same layers.
    spec_names: Vec<String>,
}

impl Architecture {
    fn weight_layers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.file_names
            .iter()
            .map(String::as_str)
            .zip(self.spec_names.iter().map(String::as_str))
    }
}

fn pair(v: Option<&Value>) -> Option<[usize; 2]> {
    match v? {
        Value::Number(n) => n.as_u64().map(|n| [n as usize, n as usize]),
        Value::Array(a) if a.len() == 2 => Some([a[0].as_u64()? as usize, a[1].as_u64()? as usize]),
        _ => None,
    }
}

fn input_shape(c: &Value, layer: &Value) -> Option<[usize; 3]> {
    let s = c
        .get("batch_shape")
        .or_else(|| c.get("batch_input_shape"))
        .or_else(|| layer.get("build_config").and_then(|b| b.get("input_shape")))?
        .as_array()?;
    if s.len() != 4 {
        return None;
    }
    Some([
        s[1].as_u64()? as usize,
        s[2].as_u64()? as usize,
        s[3].as_u64()? as usize,
    ])
}

/// Maps a Keras Sequential configuration onto [`CnnConfig`], refusing anything the engine does not compute
/// exactly (other paddings, strides, activations, layer types).
fn parse_architecture(json: &Value, path: &Path) -> Result<Architecture> {
    let unsupported = |reason: String| CnnError::UnsupportedModel {
        file: path.to_path_buf(),
        reason,
    };
    let class = json.get("class_name").and_then(Value::as_str).unwrap_or("");
    if class != "Sequential" {
        return Err(unsupported(format!(
            "model class is `{class}`, expected `Sequential`"
        )));
    }
    let cfg = json.get("config");
    let layers = cfg
        .and_then(|c| c.get("layers"))
        .or(cfg)
        .and_then(Value::as_array)
        .ok_or_else(|| unsupported("model configuration has no layer list".into()))?;

    let mut input: Option<[usize; 3]> = None;
    let mut convs: Vec<ConvLayerConfig> = Vec::new();
    let mut file_names = Vec::new();
    let mut flattened = false;
    let mut dense: Vec<(String, usize, String)> = Vec::new();
    let mut dense_dropout = [0.0f32; 2];
    for layer in layers {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let c = layer.get("config").unwrap_or(&Value::Null);
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        if input.is_none() {
            input = input_shape(c, layer);
        }
        let s = |k: &str| c.get(k).and_then(Value::as_str);
        let check = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(unsupported(format!("layer `{name}` ({class}): {what}")))
            }
        };
        match class {
            "InputLayer" => {}
            "Dropout" => {
                let rate = c.get("rate").and_then(Value::as_f64).unwrap_or(0.0) as f32;
                check((0.0..1.0).contains(&rate), "rate must lie in [0, 1)")?;
                // Two dropouts in a row keep a unit with probability (1-a)(1-b): one of that rate.
                let merge = |old: f32| 1.0 - (1.0 - old) * (1.0 - rate);
                match (dense.len(), convs.last_mut()) {
                    // Before any Dense layer: the last convolution block's output (Flatten only reshapes).
                    (0, Some(conv)) => conv.dropout = merge(conv.dropout),
                    (0, None) => check(false, "dropout on the input image is not supported")?,
                    (1, _) => dense_dropout[0] = merge(dense_dropout[0]),
                    (2, _) => dense_dropout[1] = merge(dense_dropout[1]),
                    _ => check(false, "dropout after the output layer is not supported")?,
                }
            }
            "Conv2D" => {
                check(!flattened, "convolution after Flatten")?;
                check(s("padding") == Some("valid"), "padding must be 'valid'")?;
                check(
                    pair(c.get("strides")).unwrap_or([1, 1]) == [1, 1],
                    "strides must be 1",
                )?;
                check(
                    pair(c.get("dilation_rate")).unwrap_or([1, 1]) == [1, 1],
                    "dilation must be 1",
                )?;
                check(
                    c.get("groups").and_then(Value::as_u64).unwrap_or(1) == 1,
                    "groups must be 1",
                )?;
                check(
                    matches!(s("data_format"), None | Some("channels_last")),
                    "data_format must be channels_last",
                )?;
                check(s("activation") == Some("relu"), "activation must be relu")?;
                check(
                    c.get("use_bias").and_then(Value::as_bool).unwrap_or(true),
                    "use_bias must be true",
                )?;
                let filters = c.get("filters").and_then(Value::as_u64);
                let kernel = pair(c.get("kernel_size"));
                let (Some(filters), Some(kernel_size)) = (filters, kernel) else {
                    return Err(unsupported(format!(
                        "layer `{name}`: no filters / kernel_size"
                    )));
                };
                convs.push(ConvLayerConfig::new(filters as usize, kernel_size));
                file_names.push(name.clone());
            }
            "MaxPooling2D" | "MaxPool2D" => {
                let p = pair(c.get("pool_size")).unwrap_or([2, 2]);
                check(p[0] == p[1], "pool must be square")?;
                let strides = pair(c.get("strides")).unwrap_or(p);
                check(strides == p, "strides must equal the pool size")?;
                check(
                    matches!(s("padding"), None | Some("valid")),
                    "padding must be 'valid'",
                )?;
                check(
                    matches!(s("data_format"), None | Some("channels_last")),
                    "data_format must be channels_last",
                )?;
                match convs.last_mut() {
                    // Dropout before the pooling is accepted too: the same network at inference; training
                    // applies a block's dropout after its pooling, as sdss_CNN does.
                    Some(conv) if conv.max_pool.is_none() && !flattened => {
                        conv.max_pool = Some(p[0])
                    }
                    _ => check(false, "pooling must directly follow a convolution")?,
                }
            }
            "Flatten" => {
                check(!flattened, "second Flatten")?;
                check(
                    matches!(s("data_format"), None | Some("channels_last")),
                    "data_format must be channels_last",
                )?;
                flattened = true;
            }
            "Dense" => {
                check(flattened, "Dense before Flatten")?;
                check(
                    c.get("use_bias").and_then(Value::as_bool).unwrap_or(true),
                    "use_bias must be true",
                )?;
                let units = c
                    .get("units")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| unsupported(format!("layer `{name}`: no units")))?;
                let act = s("activation").unwrap_or("linear").to_string();
                dense.push((name.clone(), units as usize, act));
            }
            other => {
                return Err(unsupported(format!(
                    "layer `{name}` has unsupported type {other}"
                )))
            }
        }
    }
    let [h, w, ch] =
        input.ok_or_else(|| unsupported("no input shape in the model configuration".into()))?;
    let acts: Vec<&str> = dense.iter().map(|d| d.2.as_str()).collect();
    let output_activation = match acts.as_slice() {
        ["relu", "linear", "linear"] => OutputActivation::Linear,
        ["relu", "linear", "softmax"] => OutputActivation::Softmax,
        _ => {
            return Err(unsupported(format!(
                "expected Dense layers with activations relu, linear, linear (or softmax) after Flatten, \
                 found {acts:?}"
            )))
        }
    };
    let config = CnnConfig {
        input_height: h,
        input_width: w,
        input_channels: ch,
        conv_layers: convs,
        dense_units: dense[0].1,
        dense_1_units: dense[1].1,
        output_units: dense[2].1,
        dense_dropout: dense_dropout[0],
        dense_1_dropout: dense_dropout[1],
        output_activation,
    };
    config.validate()?;
    file_names.extend(dense.iter().map(|d| d.0.clone()));
    let spec_names: Vec<String> = {
        let mut seen = Vec::new();
        for s in config.tensor_specs()? {
            if seen.last() != Some(&s.layer) {
                seen.push(s.layer);
            }
        }
        seen
    };
    Ok(Architecture {
        config,
        file_names,
        spec_names,
    })
}

/// Default output path for a converted model: the source's file stem with `.safetensors`, in `dir`.
pub fn default_output_path(source_name: &str, dir: &Path) -> PathBuf {
    let stem = Path::new(source_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("sdss_cnn");
    dir.join(format!("{stem}.safetensors"))
}

/// The manifest path belonging to a `.safetensors` path: same name with `.json`.
pub fn manifest_path(safetensors_path: &Path) -> PathBuf {
    safetensors_path.with_extension("json")
}

/// Writes `model` as safetensors at `out` and its manifest next to it (both atomically); `location` is the
/// path or URL recorded as the source. This is what `cargo xtask fetch-weights` does after reading a file.
pub fn write_converted(model: &KerasModel, location: &str, out: &Path) -> Result<Manifest> {
    let source = ManifestSource {
        location: location.to_string(),
        format: model.format,
        keras_version: model.keras_version.clone(),
        sha256: model.source_sha256.clone(),
    };
    write_with_manifest(&model.config, &model.weights, source, None, out)
}

/// Writes weights as safetensors at `out` and the manifest `fetch-weights` writes next to it (both
/// atomically), with `source` as their provenance and, for trained weights, `training` (the recipe and
/// its result). `features --weights`, `run --weights` and `similar` read the result unchanged.
pub fn write_with_manifest(
    config: &CnnConfig,
    weights: &CnnWeights,
    source: ManifestSource,
    training: Option<Value>,
    out: &Path,
) -> Result<Manifest> {
    let mut meta = HashMap::new();
    meta.insert("source_sha256".to_string(), source.sha256.clone());
    meta.insert("source".to_string(), source.location.clone());
    let bytes = weights::to_safetensors_bytes(config, weights, meta)?;
    let tensors = config
        .tensor_specs()?
        .into_iter()
        .map(|s: TensorSpec| ManifestTensor {
            name: s.key(),
            shape: s.shape,
            dtype: "F32".into(),
        })
        .collect();
    let manifest = Manifest {
        format: "sdss-cnn-weights".into(),
        version: 1,
        config: config.clone(),
        parameters: config.parameter_count()?,
        source,
        safetensors_sha256: sha256_hex(&bytes),
        tensors,
        training,
    };
    weights::write_atomic(out, &bytes)?;
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| CnnError::InvalidConfig(format!("manifest: {e}")))?;
    weights::write_atomic(&manifest_path(out), &json)?;
    tracing::info!(out = %out.display(), parameters = manifest.parameters, "wrote weights");
    Ok(manifest)
}

/// Reads a Keras file and writes the converted safetensors + manifest: [`read_keras_model`] followed by
/// [`write_converted`].
pub fn convert_file(source: &Path, out: &Path) -> Result<Manifest> {
    let model = read_keras_model(source)?;
    write_converted(&model, &source.display().to_string(), out)
}
