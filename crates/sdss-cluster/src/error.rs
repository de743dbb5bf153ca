//! The one error type of this crate.

/// Everything that can go wrong validating parameters, checking input or fitting a clustering.
///
/// Each variant names the parameter or the input at fault so a user can fix the call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The feature matrix has no rows or no columns.
    #[error("empty feature matrix: {rows} samples x {cols} features (need at least one of each)")]
    EmptyInput {
        /// Number of samples (rows).
        rows: usize,
        /// Number of features (columns).
        cols: usize,
    },
    /// A NaN or infinite value in the features.
    #[error("non-finite value {value} in the features at sample {row}, feature {col}")]
    NonFinite {
        /// Sample (row) index.
        row: usize,
        /// Feature (column) index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name, as in [`crate::ClusterMethod::from_params`].
        name: &'static str,
        /// The value given.
        value: String,
        /// What the valid range is.
        reason: String,
    },
    /// More clusters asked for than there are samples.
    #[error("n_clusters = {n_clusters} exceeds the number of samples ({n_samples})")]
    TooManyClusters {
        /// The number of clusters asked for.
        n_clusters: usize,
        /// The number of samples.
        n_samples: usize,
    },
    /// A method name that [`crate::ClusterMethod::from_params`] does not know.
    #[error("unknown clustering method {0:?} (expected one of: kmeans, minibatch-kmeans, affinity-propagation, agglomerative, dbscan, hdbscan, optics)")]
    UnknownMethod(String),
    /// A `key=value` parameter that the chosen method does not take.
    #[error("unknown parameter {key:?} for method {method}; it takes: {expected}")]
    UnknownParameter {
        /// The method.
        method: &'static str,
        /// The key given.
        key: String,
        /// The keys this method accepts.
        expected: &'static str,
    },
    /// Two arrays that must have one entry per sample have different lengths.
    #[error("length mismatch: {what} has {found} entries, expected {expected}")]
    LengthMismatch {
        /// Which array.
        what: &'static str,
        /// Its length.
        found: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A metric that is undefined for this number of distinct labels.
    #[error("{metric} needs 2 <= number of labels <= n_samples - 1, got {n_labels} labels for {n_samples} samples")]
    InvalidLabelCount {
        /// The metric's name.
        metric: &'static str,
        /// Number of distinct labels.
        n_labels: usize,
        /// Number of samples.
        n_samples: usize,
    },
    /// Not enough memory for a method's working matrices (affinity propagation needs one n x n).
    #[error("cannot allocate {bytes} bytes for {what} (n = {n_samples}); affinity propagation needs 4 n^2 bytes for its similarity matrix")]
    OutOfMemory {
        /// What was being allocated.
        what: &'static str,
        /// How many bytes.
        bytes: usize,
        /// Number of samples.
        n_samples: usize,
    },
    /// A method's O(n²) working memory is more than this process may use (see
    /// [`crate::memory::available_bytes`]); checked before allocating.
    #[error("{method} on {n_samples} samples needs about {} of working memory (it grows with n²), more than the {} this process may use; use {alternative} instead, or reduce the sample (the limit is the smallest of MemAvailable, the cgroup's memory.max and SDSS_CLUSTERING_MEMORY_LIMIT)", human(*bytes), human(*available))]
    TooLargeForMemory {
        /// The method.
        method: &'static str,
        /// Bytes it would need.
        bytes: u64,
        /// Bytes there are.
        available: u64,
        /// Number of samples.
        n_samples: usize,
        /// The scalable alternative, in the driver's words.
        alternative: &'static str,
    },
    /// More samples than a method's time limit allows (its time grows as n²); checked first.
    #[error("{method} on {n_samples} samples would run for hours (its time grows with n²; the limit is {limit} samples, `max_samples=` raises it); use {alternative} instead, or run it on a sample")]
    TooManySamples {
        /// The method.
        method: &'static str,
        /// Number of samples.
        n_samples: usize,
        /// The limit.
        limit: usize,
        /// What scales, in the driver's words.
        alternative: &'static str,
    },
    /// Writing an output (e.g. a linkage matrix `.npy`) failed.
    #[error(transparent)]
    Io(#[from] sdss_io::IoError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ClusterError>;

/// Bytes in binary units for error messages (`18.3 GiB`).
fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
