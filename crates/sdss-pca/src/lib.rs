//! Principal component analysis with scikit-learn semantics, on faer.
mod error;
mod float;
mod io;
mod linalg;
mod pca;

pub use error::PcaError;
pub use float::PcaFloat;
pub use io::MODEL_JSON;
pub use pca::{
    default_oversamples, FittedPca, IteratedPower, NComponents, Pca, SvdSolver,
    DEFAULT_POWER_ITERATIONS,
};
