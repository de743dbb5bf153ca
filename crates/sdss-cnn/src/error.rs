//! Typed errors of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading, converting or running the network.
#[derive(Debug, thiserror::Error)]
pub enum CnnError {
    /// The architecture configuration itself is inconsistent (for example a kernel larger than its input).
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),

    /// A weight tensor is missing from a weights file.
    #[error("{file}: layer `{layer}` has no tensor `{tensor}`")]
    MissingTensor {
        /// The weights file.
        file: PathBuf,
        /// Keras layer name, such as `conv2d_1`.
        layer: String,
        /// Tensor within the layer: `kernel` or `bias`.
        tensor: String,
    },

    /// A weight tensor has a shape that the configuration does not allow.
    #[error("{file}: layer `{layer}` tensor `{tensor}` has shape {found:?}, the configuration needs {expected:?}")]
    ShapeMismatch {
        /// The weights file.
        file: PathBuf,
        /// Keras layer name, such as `dense`.
        layer: String,
        /// Tensor within the layer: `kernel` or `bias`.
        tensor: String,
        /// Shape required by the configuration.
        expected: Vec<usize>,
        /// Shape found in the file.
        found: Vec<usize>,
    },

    /// A weight tensor is stored with an element type other than 32-bit float.
    #[error("{file}: tensor `{tensor}` has element type {dtype}, expected float32")]
    WrongDtype {
        /// The weights file.
        file: PathBuf,
        /// Tensor name.
        tensor: String,
        /// What was found.
        dtype: String,
    },

    /// A weights file could not be parsed (truncated, not the format it claims, or from another program).
    #[error("{file}: not a usable {format} weights file: {reason}")]
    BadWeightsFile {
        /// The file.
        file: PathBuf,
        /// Format that was expected (`safetensors`, `Keras HDF5`, `.keras zip`).
        format: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// A Keras model uses a layer or setting this reimplementation does not have.
    #[error("{file}: unsupported Keras model: {reason}")]
    UnsupportedModel {
        /// The model file.
        file: PathBuf,
        /// What is unsupported.
        reason: String,
    },

    /// Images passed to the network do not have the shape the configuration expects.
    #[error("images have shape {found:?}, the network expects (N, {height}, {width}, {channels})")]
    BadImageShape {
        /// Shape of the array that was passed.
        found: Vec<usize>,
        /// Expected height.
        height: usize,
        /// Expected width.
        width: usize,
        /// Expected channel count.
        channels: usize,
    },

    /// An unknown feature tap name.
    #[error("unknown feature tap `{0}` (expected flatten, dense, dense_1 or output)")]
    UnknownTap(String),

    /// A batch size of zero was requested.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// An error from an image source feeding [`crate::CnnModel::features_stream`].
    #[error("image source failed: {0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),

    /// An error inside candle (the candle forward pass, on the CPU or a GPU).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),

    /// A `--device` that is not `cpu`, `cuda` or `cuda:N`.
    #[error("unknown compute device `{0}` (expected cpu, cuda or cuda:N)")]
    UnknownDevice(String),

    /// The device was asked for but cannot be used here.
    #[error("compute device {device} is not available: {reason}")]
    DeviceUnavailable {
        /// The device, as the user wrote it (`cuda:0`).
        device: String,
        /// Why: not compiled in, no driver, no such GPU.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = CnnError> = std::result::Result<T, E>;

impl CnnError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CnnError::Io {
            path: path.into(),
            source,
        }
    }
}
