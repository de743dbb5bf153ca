//! The sdss_CNN galaxy-spin network reimplemented in candle, loading weights converted from Keras.
pub mod candle_ref;
pub mod config;
mod engine;
pub mod error;
pub mod keras;
pub mod model;
pub mod weights;

pub use config::{CnnConfig, ConvLayerConfig, Tap};
pub use error::{CnnError, Result};
pub use model::{CnnModel, TapOutputs};
pub use weights::CnnWeights;
