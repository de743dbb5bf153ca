//! Nearest-neighbour search over galaxy features: "show me galaxies like this one", k-nearest-neighbour
//! graphs for browsing a sample, and groups of (near-)duplicate galaxies.
//!
//! Works on any `(n, d)` `f32` feature matrix: CNN features, PCA scores or raw pixels.
//!
//! - [`ExactIndex`]: brute force through blocked matrix products (the Gram trick, parallel), with a
//!   rounding-error bound that decides which candidates to recompute directly in `f64`, so results
//!   equal scikit-learn's `NearestNeighbors(algorithm="brute")`: same neighbours, exact distances.
//! - [`IvfIndex`]: approximate, for large sets. An inverted file over k-means cells (FAISS's
//!   `IndexIVFFlat`) whose number of cells scanned per query is calibrated at build time to reach a
//!   target recall@10 (0.97 by default). Distances of the neighbours it returns are exact.
//! - [`NeighborIndex`]: what both offer: [`query`](NeighborIndex::query) a feature vector,
//!   [`query_row`](NeighborIndex::query_row) an indexed galaxy (itself excluded) and
//!   [`knn_graph`](NeighborIndex::knn_graph) for every galaxy at once.
//! - [`duplicates`]: groups of identical rows (`threshold = 0`, compared bit for bit) or rows within a
//!   Euclidean distance of each other.
//! - [`IdIndex`]: galaxy ids paired with rows, so that an unknown id is a typed error.
//!
//! Both metrics of scikit-learn's names are supported: [`Metric::Euclidean`] and [`Metric::Cosine`]
//! (`1 - cos`). Bad input (empty matrices, NaN, `k` larger than the set, mismatched lengths, unknown
//! ids) is a [`NeighborError`], never a panic.
//!
//! # Example
//!
//! ```
//! use ndarray::array;
//! use sdss_neighbors::{duplicates, ExactIndex, IdIndex, Metric, NeighborIndex};
//!
//! let features = array![
//!     [0.0f32, 0.0],
//!     [1.0, 0.0],
//!     [0.0, 3.0],
//!     [1.0, 0.0], // a repeat of row 1
//!     [5.0, 5.0],
//! ];
//! let ids = IdIndex::new(vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()], 5)?;
//! let index = ExactIndex::new(features.view(), Metric::Euclidean)?;
//!
//! // The two galaxies most like "a" (itself excluded).
//! let like_a = index.query_row(ids.row("a")?, 2)?;
//! assert_eq!(like_a[0].index, 1);
//! assert_eq!(like_a[0].distance, 1.0);
//! assert_eq!(like_a[1].index, 3);
//!
//! // Every galaxy's nearest neighbour at once.
//! let graph = index.knn_graph(1)?;
//! assert_eq!(graph.indices[[1, 0]], 3);
//!
//! // The repeat is found; an unknown id is an error, not a panic.
//! assert_eq!(duplicates(features.view(), 0.0)?, vec![vec![1, 3]]);
//! assert!(ids.row("zz").is_err());
//! # Ok::<(), sdss_neighbors::NeighborError>(())
//! ```
#![warn(missing_docs)]

mod common;
mod duplicates;
mod error;
mod exact;
mod ivf;
mod synthetic;

pub use common::{IdIndex, KnnGraph, Metric, Neighbor, NeighborIndex};
pub use duplicates::{duplicates, UnionFind};
pub use error::{NeighborError, Result};
pub use exact::ExactIndex;
pub use ivf::{IvfIndex, IvfParams};
pub use synthetic::make_blobs;
