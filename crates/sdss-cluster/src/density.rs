//! Density-based clustering through petal-clustering: DBSCAN, HDBSCAN and OPTICS (noise = -1).
//!
//! petal-clustering returns a map from cluster id to member indices plus a noise list; here
//! that becomes one label per sample, clusters renumbered in order of first appearance
//! (sample order) so the labels do not depend on hash-map iteration order.

use std::collections::HashMap;

use ndarray::{Array1, ArrayView2};
use petal_clustering::{
    Dbscan as PetalDbscan, Fit, HDbscan as PetalHdbscan, Optics as PetalOptics,
};
use petal_neighbors::distance::Euclidean;

use crate::data::{checked_f64, relabel_first_appearance, Element};
use crate::error::{ClusterError, Result};
use crate::result::Clustering;

fn invalid(name: &'static str, value: impl ToString, reason: &str) -> ClusterError {
    ClusterError::InvalidParameter {
        name,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn check_eps(eps: f64) -> Result<()> {
    if eps > 0.0 && eps.is_finite() {
        Ok(())
    } else {
        Err(invalid("eps", eps, "must be a finite number > 0"))
    }
}

fn check_min_samples(m: usize) -> Result<()> {
    if m >= 1 {
        Ok(())
    } else {
        Err(invalid("min_samples", m, "must be >= 1"))
    }
}

/// Turns petal's (clusters, noise) into a labelled result.
fn to_clustering(
    method: &'static str,
    n: usize,
    clusters: HashMap<usize, Vec<usize>>,
) -> Clustering {
    let mut labels = vec![-1i64; n];
    for (id, members) in clusters {
        for i in members {
            if let Some(l) = labels.get_mut(i) {
                *l = id as i64;
            }
        }
    }
    let n_clusters = relabel_first_appearance(&mut labels);
    Clustering {
        method,
        labels: Array1::from(labels),
        n_clusters,
        iterations: None,
        converged: None,
        inertia: None,
        centroids: None,
        exemplars: None,
        linkage: None,
    }
}

/// DBSCAN parameters (scikit-learn's defaults: `eps` 0.5, `min_samples` 5, Euclidean).
#[derive(Debug, Clone, PartialEq)]
pub struct Dbscan {
    /// Neighbourhood radius (> 0).
    pub eps: f64,
    /// Neighbours (including the point itself) that make a core point (>= 1).
    pub min_samples: usize,
}

impl Default for Dbscan {
    fn default() -> Self {
        Self {
            eps: 0.5,
            min_samples: 5,
        }
    }
}

impl Dbscan {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        check_eps(self.eps)?;
        check_min_samples(self.min_samples)
    }

    /// Clusters the rows of `x`; samples in no dense region are labelled `-1`.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        let x = checked_f64(x)?;
        let (clusters, _noise) =
            PetalDbscan::new(self.eps, self.min_samples, Euclidean::default()).fit(&x, None);
        Ok(to_clustering("dbscan", x.nrows(), clusters))
    }
}

/// HDBSCAN parameters (scikit-learn's defaults: `min_cluster_size` 5, `min_samples` = `min_cluster_size`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hdbscan {
    /// Smallest group that counts as a cluster (>= 2).
    pub min_cluster_size: usize,
    /// Neighbours used for the core distance (>= 1); `None` means `min_cluster_size`.
    pub min_samples: Option<usize>,
    /// Distance scaling of the mutual-reachability graph (> 0). Default 1.
    pub alpha: f64,
    /// Build the minimum spanning tree with Boruvka's algorithm on a ball tree (faster) instead of Prim's.
    pub boruvka: bool,
}

impl Default for Hdbscan {
    fn default() -> Self {
        Self {
            min_cluster_size: 5,
            min_samples: None,
            alpha: 1.0,
            boruvka: true,
        }
    }
}

impl Hdbscan {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if self.min_cluster_size < 2 {
            return Err(invalid(
                "min_cluster_size",
                self.min_cluster_size,
                "must be >= 2",
            ));
        }
        if let Some(m) = self.min_samples {
            check_min_samples(m)?;
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return Err(invalid("alpha", self.alpha, "must be a finite number > 0"));
        }
        Ok(())
    }

    /// Clusters the rows of `x`; samples outside every stable cluster are labelled `-1`.
    ///
    /// `min_samples` larger than the number of samples is clamped to it (the core distance
    /// then is the distance to the farthest sample).
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        let x = checked_f64(x)?;
        let n = x.nrows();
        let min_samples = self.min_samples.unwrap_or(self.min_cluster_size).min(n);
        let mut model = PetalHdbscan {
            alpha: self.alpha,
            min_samples,
            min_cluster_size: self.min_cluster_size,
            metric: Euclidean::default(),
            boruvka: self.boruvka,
        };
        let (clusters, _noise, _scores) = model.fit(&x, None);
        Ok(to_clustering("hdbscan", n, clusters))
    }
}

/// OPTICS parameters; clusters are extracted DBSCAN-style at `eps` (petal-clustering's extraction).
#[derive(Debug, Clone, PartialEq)]
pub struct Optics {
    /// Maximum neighbourhood radius (> 0).
    pub eps: f64,
    /// Neighbours (including the point itself) that make a core point (>= 1).
    pub min_samples: usize,
}

impl Default for Optics {
    fn default() -> Self {
        Self {
            eps: 0.5,
            min_samples: 5,
        }
    }
}

impl Optics {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        check_eps(self.eps)?;
        check_min_samples(self.min_samples)
    }

    /// Clusters the rows of `x`; unreachable samples are labelled `-1`.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        let x = checked_f64(x)?;
        let (clusters, _noise) =
            PetalOptics::new(self.eps, self.min_samples, Euclidean::default()).fit(&x, None);
        Ok(to_clustering("optics", x.nrows(), clusters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn data() -> ndarray::Array2<f64> {
        array![
            [0.0, 0.0],
            [0.1, 0.0],
            [0.0, 0.1],
            [0.1, 0.1],
            [5.0, 5.0],
            [5.1, 5.0],
            [5.0, 5.1],
            [5.1, 5.1],
            [50.0, -50.0]
        ]
    }

    #[test]
    fn dbscan_and_optics_label_noise_minus_one() {
        let x = data();
        for r in [
            Dbscan {
                eps: 0.5,
                min_samples: 3,
            }
            .fit(x.view())
            .unwrap(),
            Optics {
                eps: 0.5,
                min_samples: 3,
            }
            .fit(x.view())
            .unwrap(),
        ] {
            assert_eq!(
                r.labels.to_vec(),
                vec![0, 0, 0, 0, 1, 1, 1, 1, -1],
                "{}",
                r.method
            );
            assert_eq!((r.n_clusters, r.n_noise()), (2, 1));
        }
    }

    #[test]
    fn hdbscan_two_groups() {
        let x = data();
        let h = Hdbscan {
            min_cluster_size: 3,
            min_samples: Some(2),
            ..Default::default()
        };
        let r = h.fit(x.view()).unwrap();
        assert_eq!(r.n_clusters, 2);
        assert_eq!(&r.labels.to_vec()[..8], &[0, 0, 0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn bad_parameters() {
        let x = data();
        assert!(Dbscan {
            eps: 0.0,
            min_samples: 3
        }
        .fit(x.view())
        .is_err());
        assert!(Dbscan {
            eps: f64::NAN,
            min_samples: 3
        }
        .fit(x.view())
        .is_err());
        assert!(Optics {
            eps: 1.0,
            min_samples: 0
        }
        .fit(x.view())
        .is_err());
        assert!(Hdbscan {
            min_cluster_size: 1,
            ..Default::default()
        }
        .fit(x.view())
        .is_err());
    }
}
