//! Typed errors of this crate.

use std::path::PathBuf;

/// What can go wrong while preparing data for, running, checkpointing or resuming training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An argument or an internal size is inconsistent; the message names it.
    #[error("{0}")]
    Invalid(String),

    /// The network's architecture or weights were rejected by sdss-cnn.
    #[error(transparent)]
    Cnn(Box<sdss_cnn::CnnError>),

    /// Reading or writing images, arrays or CSV files failed.
    #[error(transparent)]
    Io(Box<sdss_io::IoError>),

    /// The catalogue, the join with the images or the split is unusable.
    #[error(transparent)]
    Data(Box<crate::catalog::TrainDataError>),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A checkpoint is unreadable or belongs to another run.
    #[error("{path}: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The loss became NaN or infinite.
    #[error("the training loss became {loss} at epoch {epoch}, step {step} (try a lower --lr)")]
    Diverged {
        /// The loss value.
        loss: f64,
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
    },

    /// Training was interrupted (Ctrl-C); the last complete checkpoint is kept for `--resume`.
    #[error(
        "training interrupted at epoch {epoch}; `--resume` continues from the last checkpoint"
    )]
    Interrupted {
        /// 1-based epoch that was running.
        epoch: usize,
    },
}

// Boxed: the wrapped errors are large, and `Result<_, TrainError>` is returned on every step.
// Errors of the candle training step (`crate::device`) are candle errors, as in sdss-cnn.
impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        TrainError::Cnn(Box::new(sdss_cnn::CnnError::Candle(e)))
    }
}

impl From<sdss_cnn::CnnError> for TrainError {
    fn from(e: sdss_cnn::CnnError) -> Self {
        TrainError::Cnn(Box::new(e))
    }
}

impl From<sdss_io::IoError> for TrainError {
    fn from(e: sdss_io::IoError) -> Self {
        TrainError::Io(Box::new(e))
    }
}

impl From<crate::catalog::TrainDataError> for TrainError {
    fn from(e: crate::catalog::TrainDataError) -> Self {
        TrainError::Data(Box::new(e))
    }
}

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
