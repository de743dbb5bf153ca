//! Training the sdss_CNN network (and smaller variants) on CPU.
#![warn(missing_docs)]

pub mod augment;
pub mod catalog;
pub mod checkpoint;
mod conv;
pub mod device;
pub mod error;
pub mod head;
pub mod loss;
pub mod metrics;
pub mod network;
pub mod optim;
pub mod real;
pub mod split;
pub mod ssl;
mod ssl_loss;
pub mod trainer;

pub use device::{Depth, DeviceForward, DeviceStep};
pub use error::{Result, TrainError};
pub use network::{BatchTargets, DropoutMasks, Loss, Network, StepRandomness, Tensors};
pub use optim::{Adam, ReduceLrOnPlateau};
pub use real::Real;
pub use trainer::{
    BatchProgress, Dataset, EpochRecord, Observer, Quiet, TrainOptions, TrainTargets, Trainer,
};
