//! The result type every method returns, its serialisable summary, and the SciPy-format linkage.

use std::path::Path;

use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::error::{ClusterError, Result};

/// The outcome of any clustering method: one label per sample plus the fields that apply.
///
/// Labels are `i64`, `-1` meaning noise (density methods only; affinity propagation also
/// labels every sample `-1` in the degenerate case where it finds no exemplar, as scikit-learn does).
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// The method's name (`kmeans`, `affinity-propagation`, `agglomerative`, `dbscan`, `hdbscan`, `optics`).
    pub method: &'static str,
    /// Cluster label of each sample, `0..n_clusters`, `-1` for noise.
    pub labels: Array1<i64>,
    /// Number of clusters (distinct non-negative labels).
    pub n_clusters: usize,
    /// Iterations run (k-means: of the kept restart; affinity propagation: message-passing rounds).
    pub iterations: Option<usize>,
    /// Whether the iterative method converged (k-means: before `max_iter`; affinity
    /// propagation: exemplars stable for `convergence_iter` rounds). `Some(false)` means the
    /// labels come from an unconverged run and should not be trusted blindly.
    pub converged: Option<bool>,
    /// k-means inertia: sum of squared distances of samples to their closest centroid.
    pub inertia: Option<f64>,
    /// k-means centroids, `n_clusters x n_features`.
    pub centroids: Option<Array2<f64>>,
    /// Affinity propagation exemplars: sample index of each cluster's exemplar, cluster `c` at position `c`.
    pub exemplars: Option<Vec<usize>>,
    /// Agglomerative merge tree in SciPy's format. In the scalable form its leaves are the
    /// micro-clusters, not the samples.
    pub linkage: Option<Linkage>,
    /// `Some(m)` when the method ran in its scalable form on `m` k-means micro-clusters
    /// (affinity propagation, Ward; see [`crate::scalable`]), `None` when it ran on every sample.
    pub micro_clusters: Option<usize>,
    /// In the scalable form, the micro-cluster of each sample (the leaves of `linkage`).
    pub micro_assignment: Option<Vec<usize>>,
    /// `Some(k)` when affinity propagation ran on the sparse k-nearest-neighbour graph
    /// ([`crate::AffinityPropagation::knn`]).
    pub knn_graph: Option<usize>,
}

impl Clustering {
    /// A result that has only labels (clusters numbered `0..`, noise `-1`); the number of
    /// clusters is one more than the largest label.
    pub(crate) fn from_labels(method: &'static str, labels: Array1<i64>) -> Self {
        let n_clusters = labels
            .iter()
            .copied()
            .max()
            .map_or(0, |m| (m + 1).max(0) as usize);
        Self {
            method,
            labels,
            n_clusters,
            iterations: None,
            converged: None,
            inertia: None,
            centroids: None,
            exemplars: None,
            linkage: None,
            micro_clusters: None,
            micro_assignment: None,
            knn_graph: None,
        }
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.labels.len()
    }

    /// Number of samples labelled noise (`-1`).
    pub fn n_noise(&self) -> usize {
        self.labels.iter().filter(|&&l| l < 0).count()
    }

    /// Size of each cluster, indexed by label.
    pub fn cluster_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0usize; self.n_clusters];
        for &l in &self.labels {
            if l >= 0 {
                if let Some(s) = sizes.get_mut(l as usize) {
                    *s += 1;
                }
            }
        }
        sizes
    }

    /// A small, serialisable description of the result (no per-sample arrays).
    pub fn summary(&self) -> ClusteringSummary {
        ClusteringSummary {
            method: self.method,
            n_samples: self.n_samples(),
            n_clusters: self.n_clusters,
            n_noise: self.n_noise(),
            cluster_sizes: self.cluster_sizes(),
            iterations: self.iterations,
            converged: self.converged,
            inertia: self.inertia,
            exemplars: self.exemplars.clone(),
            micro_clusters: self.micro_clusters,
            knn_graph: self.knn_graph,
        }
    }
}

/// Serialisable summary of a [`Clustering`] (for logs and JSON reports).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusteringSummary {
    /// The method's name.
    pub method: &'static str,
    /// Number of samples.
    pub n_samples: usize,
    /// Number of clusters.
    pub n_clusters: usize,
    /// Number of noise samples.
    pub n_noise: usize,
    /// Size of each cluster, indexed by label.
    pub cluster_sizes: Vec<usize>,
    /// Iterations run, where the method iterates.
    pub iterations: Option<usize>,
    /// Convergence, where the method iterates.
    pub converged: Option<bool>,
    /// k-means inertia.
    pub inertia: Option<f64>,
    /// Affinity propagation exemplar indices.
    pub exemplars: Option<Vec<usize>>,
    /// Micro-clusters the scalable form ran on; absent (`null`) for the exact form.
    pub micro_clusters: Option<usize>,
    /// Neighbours per sample of the k-NN graph affinity propagation ran on, if it did.
    pub knn_graph: Option<usize>,
}

/// A hierarchical clustering as SciPy's linkage matrix: `n - 1` rows of
/// `[cluster a, cluster b, distance, size]`, clusters `0..n` being the samples and `n + i` the
/// cluster formed at row `i`; rows sorted by distance. `scipy.cluster.hierarchy.dendrogram`
/// draws it directly once written with [`Linkage::write_npy`].
#[derive(Debug, Clone, PartialEq)]
pub struct Linkage {
    matrix: Array2<f64>,
    n_samples: usize,
}

impl Linkage {
    /// Wraps a SciPy-format matrix, checking its shape and that every row merges existing clusters.
    pub fn from_matrix(matrix: Array2<f64>) -> Result<Self> {
        let rows = matrix.nrows();
        if matrix.ncols() != 4 {
            return Err(ClusterError::LengthMismatch {
                what: "linkage matrix columns",
                found: matrix.ncols(),
                expected: 4,
            });
        }
        let n_samples = rows + 1;
        for (i, row) in matrix.outer_iter().enumerate() {
            for &c in [row[0], row[1]].iter() {
                if !(c >= 0.0 && c < (n_samples + i) as f64 && c.fract() == 0.0) {
                    return Err(ClusterError::InvalidParameter {
                        name: "linkage",
                        value: format!("row {i}: {row}"),
                        reason: format!("cluster ids must be integers below {}", n_samples + i),
                    });
                }
            }
        }
        Ok(Self { matrix, n_samples })
    }

    /// The `(n - 1) x 4` matrix.
    pub fn matrix(&self) -> &Array2<f64> {
        &self.matrix
    }

    /// Number of samples clustered.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Writes the matrix as a `float64` `.npy` file (atomically), ready for
    /// `scipy.cluster.hierarchy.dendrogram(np.load(path))`.
    pub fn write_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        sdss_io::npy::write_npy(path, &self.matrix.view())?;
        Ok(())
    }

    /// Labels from cutting the tree into exactly `n_clusters` clusters (the partition before
    /// the last `n_clusters - 1` merges), numbered in order of first appearance.
    ///
    /// This equals SciPy's `fcluster(Z, n_clusters, criterion='maxclust')` up to label
    /// numbering, except where several merges tie at the cut height (SciPy then may return fewer).
    pub fn cut_n_clusters(&self, n_clusters: usize) -> Result<Array1<i64>> {
        if n_clusters == 0 || n_clusters > self.n_samples {
            return Err(ClusterError::InvalidParameter {
                name: "n_clusters",
                value: n_clusters.to_string(),
                reason: format!("must be in 1..={}", self.n_samples),
            });
        }
        Ok(self.labels_after(self.n_samples - n_clusters))
    }

    /// Labels from cutting the tree at a distance: samples joined by merges at height
    /// `<= threshold` share a cluster (SciPy's `fcluster(Z, t, criterion='distance')` for the
    /// monotone linkages built here), numbered in order of first appearance.
    pub fn cut_distance(&self, threshold: f64) -> Result<Array1<i64>> {
        if threshold.is_nan() {
            return Err(ClusterError::InvalidParameter {
                name: "distance_threshold",
                value: threshold.to_string(),
                reason: "must be a number".into(),
            });
        }
        let merges = self
            .matrix
            .outer_iter()
            .take_while(|r| r[2] <= threshold)
            .count();
        Ok(self.labels_after(merges))
    }

    /// Flat labels after applying the first `merges` rows.
    fn labels_after(&self, merges: usize) -> Array1<i64> {
        let n = self.n_samples;
        let mut parent: Vec<usize> = (0..(2 * n).saturating_sub(1)).collect();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for (i, row) in self.matrix.outer_iter().take(merges).enumerate() {
            let new = n + i;
            // Ids were checked in `from_matrix`/built by us: integral and below `new`.
            for c in [row[0] as usize, row[1] as usize] {
                let r = find(&mut parent, c);
                parent[r] = new;
            }
        }
        let mut labels: Vec<i64> = (0..n).map(|i| find(&mut parent, i) as i64).collect();
        crate::data::relabel_first_appearance(&mut labels);
        Array1::from(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn cuts_follow_merge_order() {
        // 4 samples: (0,1) at 1, (2,3) at 2, then all at 5.
        let z = array![[0., 1., 1., 2.], [2., 3., 2., 2.], [4., 5., 5., 4.]];
        let l = Linkage::from_matrix(z).unwrap();
        assert_eq!(l.cut_n_clusters(2).unwrap().to_vec(), vec![0, 0, 1, 1]);
        assert_eq!(l.cut_n_clusters(3).unwrap().to_vec(), vec![0, 0, 1, 2]);
        assert_eq!(l.cut_n_clusters(1).unwrap().to_vec(), vec![0, 0, 0, 0]);
        assert_eq!(l.cut_n_clusters(4).unwrap().to_vec(), vec![0, 1, 2, 3]);
        assert_eq!(l.cut_distance(1.5).unwrap().to_vec(), vec![0, 0, 1, 2]);
        assert_eq!(l.cut_distance(0.5).unwrap().to_vec(), vec![0, 1, 2, 3]);
        assert!(l.cut_n_clusters(0).is_err());
        assert!(l.cut_n_clusters(5).is_err());
        assert!(Linkage::from_matrix(array![[0., 7., 1., 2.]]).is_err());
    }
}
