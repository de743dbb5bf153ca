//! Typed errors of this crate.

use std::path::PathBuf;

/// Everything that can go wrong when fitting, applying, saving or loading a PCA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcaError {
    /// The data hold a NaN or an infinite value.
    #[error("input `{what}` holds a non-finite value ({value}) at row {row}, column {col}")]
    NonFinite {
        /// Which input (`"X"` for the data being fitted or transformed).
        what: &'static str,
        /// Row (sample) index of the first offending value.
        row: usize,
        /// Column (feature) index of the first offending value.
        col: usize,
        /// The offending value, as `f64`.
        value: f64,
    },
    /// Finite values so large that their variance overflows `f64`.
    #[error("input `X` is too large in magnitude: its variance overflows f64")]
    Overflow,
    /// Fewer than two samples: the sample variance is undefined.
    #[error("PCA needs at least 2 samples, got {n_samples}")]
    TooFewSamples {
        /// Number of rows given.
        n_samples: usize,
    },
    /// The data have no features (zero columns).
    #[error("PCA needs at least 1 feature, got 0")]
    NoFeatures,
    /// `n_components` is zero or larger than `min(n_samples, n_features)`.
    #[error("n_components={n_components} must be between 1 and min(n_samples, n_features)={max}")]
    InvalidNComponents {
        /// The requested count.
        n_components: usize,
        /// `min(n_samples, n_features)` of the data.
        max: usize,
    },
    /// A variance fraction outside (0, 1] (or NaN).
    #[error("n_components as a variance fraction must be in (0, 1], got {fraction}")]
    InvalidVarianceFraction {
        /// The requested fraction.
        fraction: f64,
    },
    /// A variance fraction was asked of the randomized solver, which cannot know the total
    /// spectrum (scikit-learn refuses this too).
    #[error(
        "n_components as a variance fraction ({fraction}) needs an exact solver \
         (svd_solver=full, covariance_eigh or auto), not randomized"
    )]
    FractionNeedsExactSolver {
        /// The requested fraction.
        fraction: f64,
    },
    /// A solver parameter is out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name, as scikit-learn spells it.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The matrix given to `transform` / `inverse_transform` has the wrong number of columns.
    #[error("`{method}` expects {expected} columns, got {found}")]
    ShapeMismatch {
        /// `"transform"` or `"inverse_transform"`.
        method: &'static str,
        /// Columns the fitted model expects.
        expected: usize,
        /// Columns given.
        found: usize,
    },
    /// A dense decomposition did not converge.
    #[error("{what} did not converge")]
    NoConvergence {
        /// Which decomposition (`"thin SVD"`, `"symmetric eigendecomposition"`).
        what: &'static str,
    },
    /// Reading or writing a saved model failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing one of a saved model's `.npy` files failed (the error names the file).
    #[error(transparent)]
    Storage(Box<sdss_io::IoError>),
    /// A saved model is malformed or inconsistent.
    #[error("invalid saved PCA model {}: {reason}", path.display())]
    InvalidModel {
        /// The file or folder involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
