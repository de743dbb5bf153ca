//! Density-based clustering through petal-clustering: DBSCAN and OPTICS (noise = -1).
//! HDBSCAN has its own module, at scikit-learn parity.
//!
//! petal-clustering returns a map from cluster id to member indices plus a noise list; here
//! that becomes one label per sample, clusters renumbered in order of first appearance
//! (sample order) so the labels do not depend on hash-map iteration order.

use std::collections::HashMap;

use ndarray::{Array1, ArrayView2};
use petal_clustering::{Dbscan as PetalDbscan, Fit, Optics as PetalOptics};
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
    relabel_first_appearance(&mut labels);
    Clustering::from_labels(method, Array1::from(labels))
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
    }
}
