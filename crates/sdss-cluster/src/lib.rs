//! Clustering of galaxy features at scikit-learn / SciPy parity: k-means, affinity
//! propagation, agglomerative (Ward, average, complete, single), DBSCAN, HDBSCAN and OPTICS,
//! plus the metrics that judge a clustering.
//!
//! Every method is a parameter struct with a `fit` over an [`ndarray::ArrayView2`] of `f32` or
//! `f64` features (samples x features) returning the common [`Clustering`] result: one `i64`
//! label per sample (`-1` = noise) and, where they apply, iterations, convergence, inertia,
//! centroids, exemplars and a SciPy-format [`Linkage`]. [`ClusterMethod`] picks a method at run
//! time from a name and `key=value` parameters. Bad input (empty, NaN, `k = 0`, `k > n`,
//! damping outside `[0.5, 1)`, ...) is a typed [`ClusterError`], never a panic.
//!
//! ```
//! use ndarray::array;
//! use sdss_cluster::{adjusted_rand_score, silhouette_score, ClusterMethod, KMeans};
//!
//! let x = array![[0.0f32, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]];
//! let km = KMeans::new(2).fit(x.view()).unwrap();
//! assert_eq!(km.n_clusters, 2);
//! assert_eq!(km.converged, Some(true));
//!
//! let ap = ClusterMethod::from_params("affinity-propagation", &[("damping", "0.8")])
//!     .unwrap()
//!     .fit(x.view())
//!     .unwrap();
//! assert_eq!(adjusted_rand_score(km.labels.view(), ap.labels.view()).unwrap(), 1.0);
//! assert!(silhouette_score(x.view(), km.labels.view()).unwrap() > 0.9);
//! println!("{}", serde_json::to_string(&ap.summary()).unwrap());
//! ```

mod affinity;
mod agglomerative;
mod data;
mod density;
mod error;
mod hdbscan;
mod kmeans;
pub mod memory;
mod method;
pub mod metrics;
mod minibatch;
mod numpy_rng;
mod result;
pub mod scalable;
mod sparse_affinity;

pub use affinity::AffinityPropagation;
pub use agglomerative::{Agglomerative, Cut, LinkageMethod};
pub use data::Element;
pub use density::{Dbscan, Optics};
pub use error::{ClusterError, Result};
pub use hdbscan::Hdbscan;
pub use kmeans::{KMeans, KMeansInit};
pub use method::{ClusterMethod, Clusterer};
pub use metrics::{
    adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score,
    normalized_mutual_info_score, silhouette_samples, silhouette_score,
};
pub use minibatch::MiniBatchKMeans;
pub use result::{Clustering, ClusteringSummary, Linkage};
pub use scalable::{MicroClusters, Scale};
