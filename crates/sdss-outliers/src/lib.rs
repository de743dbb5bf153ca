//! Anomaly scores: which galaxies look like no others.
//!
//! * [`IsolationForest`] follows scikit-learn's `IsolationForest` (Liu, Ting & Zhou 2008): random
//!   trees cut a subsample with random axis-aligned splits; an unusual point is isolated after few
//!   cuts. `score_samples` has scikit-learn's sign and scale: `−2^(−E[h(x)]/c(ψ))`, about −0.5 for
//!   ordinary points and towards −1 for anomalies.
//! * [`knn_distance_score`] is the mean distance to the k nearest neighbours: high where a galaxy
//!   has no look-alikes, whatever the shape of the crowd.
//!
//! ```
//! use ndarray::array;
//! use sdss_outliers::IsolationForest;
//!
//! let x = array![[0.0f32, 0.1], [0.1, 0.0], [0.05, 0.05], [0.0, 0.0], [5.0, 5.0]];
//! let forest = IsolationForest::new().random_state(0).fit(x.view()).unwrap();
//! let scores = forest.score_samples(x.view()).unwrap();
//! let most_unusual = (0..5).min_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
//! assert_eq!(most_unusual, 4);
//! ```
//!
//! Random numbers come from ChaCha8 seeded per tree from `random_state` and the tree's index, so the
//! forest is the same for a seed on any number of threads; it is not numpy's random stream, so the
//! scores agree with scikit-learn's in rank (Spearman ≥ 0.9 on the fixture), not digit for digit.

mod forest;

pub use forest::{Contamination, FittedIsolationForest, IsolationForest, MaxSamples};

use ndarray::{Array1, ArrayView2};
use sdss_neighbors::{ExactIndex, IvfIndex, KnnGraph, Metric, NeighborIndex};

/// Why scores could not be computed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OutlierError {
    /// A parameter outside its range.
    #[error("{name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter, as scikit-learn names it.
        name: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        reason: &'static str,
    },
    /// No rows, or no columns.
    #[error("no data: {rows} rows of {columns} features")]
    Empty {
        /// Rows given.
        rows: usize,
        /// Columns given.
        columns: usize,
    },
    /// A NaN or infinite value.
    #[error("row {row}, feature {column}: {value} is not a finite number")]
    NonFinite {
        /// Row (0-based).
        row: usize,
        /// Column (0-based).
        column: usize,
        /// The value.
        value: f32,
    },
    /// Data to score with a different number of features than the forest was fitted on.
    #[error("{found} features where the forest was fitted on {expected}")]
    FeatureCount {
        /// Features of the fit.
        expected: usize,
        /// Features given.
        found: usize,
    },
    /// The neighbour search failed.
    #[error("nearest neighbours: {0}")]
    Neighbors(String),
}

/// Checks that `x` is non-empty and finite.
pub(crate) fn check(x: ArrayView2<'_, f32>) -> Result<(), OutlierError> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(OutlierError::Empty {
            rows: x.nrows(),
            columns: x.ncols(),
        });
    }
    for ((row, column), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return Err(OutlierError::NonFinite { row, column, value });
        }
    }
    Ok(())
}

/// Up to this many rows the k-NN score searches exactly; above, with the approximate index.
pub const EXACT_MAX_ROWS: usize = 20_000;

/// Mean Euclidean distance from each row of `x` to its `k` nearest other rows (exact up to
/// [`EXACT_MAX_ROWS`] rows, the approximate inverted-file index above). Duplicates score 0.
pub fn knn_distance_score(x: ArrayView2<'_, f32>, k: usize) -> Result<Array1<f64>, OutlierError> {
    check(x)?;
    if k == 0 || k >= x.nrows() {
        return Err(OutlierError::InvalidParameter {
            name: "k",
            value: k.to_string(),
            reason: "needs 1 <= k < number of rows",
        });
    }
    let err = |e: sdss_neighbors::NeighborError| OutlierError::Neighbors(e.to_string());
    let graph = if x.nrows() <= EXACT_MAX_ROWS {
        ExactIndex::new(x, Metric::Euclidean)
            .map_err(err)?
            .knn_graph(k)
            .map_err(err)?
    } else {
        IvfIndex::new(x, Metric::Euclidean)
            .map_err(err)?
            .knn_graph(k)
            .map_err(err)?
    };
    knn_distance_score_from_graph(&graph)
}

/// [`knn_distance_score`] from a k-NN graph already built (Euclidean distances).
pub fn knn_distance_score_from_graph(graph: &KnnGraph) -> Result<Array1<f64>, OutlierError> {
    if graph.k() == 0 {
        return Err(OutlierError::InvalidParameter {
            name: "k",
            value: "0".into(),
            reason: "the graph has no neighbours",
        });
    }
    Ok(graph
        .distances
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&d| f64::from(d)).sum::<f64>() / r.len() as f64)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn knn_score_is_high_for_the_isolated_point_and_zero_for_duplicates() {
        let x = array![[0.0f32, 0.0], [0.0, 0.0], [0.0, 0.0], [10.0, 0.0]];
        let s = knn_distance_score(x.view(), 2).unwrap();
        assert_eq!(s[0], 0.0);
        assert_eq!(s[3], 10.0);
        assert!(knn_distance_score(x.view(), 4).is_err());
        assert!(knn_distance_score(array![[f32::NAN]].view(), 1).is_err());
    }
}
