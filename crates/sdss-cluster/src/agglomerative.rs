//! Agglomerative (hierarchical) clustering through kodama, with SciPy-format linkage output.

use ndarray::{Array2, ArrayView2};

use crate::data::{checked_f64, condensed_distances, Element};
use crate::error::{ClusterError, Result};
use crate::result::{Clustering, Linkage};
use crate::scalable::{
    weighted_ward_linkage, MicroClusters, ScalableForm, Scale, DEFAULT_WARD_MICRO_CLUSTERS,
};

/// How the distance between two clusters is defined (SciPy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkageMethod {
    /// Ward's minimum variance (the original project's choice).
    #[default]
    Ward,
    /// Mean distance between members (UPGMA).
    Average,
    /// Largest distance between members.
    Complete,
    /// Smallest distance between members.
    Single,
}

impl LinkageMethod {
    /// The SciPy name (`ward`, `average`, `complete`, `single`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ward => "ward",
            Self::Average => "average",
            Self::Complete => "complete",
            Self::Single => "single",
        }
    }

    /// Parses a SciPy name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "ward" => Ok(Self::Ward),
            "average" => Ok(Self::Average),
            "complete" => Ok(Self::Complete),
            "single" => Ok(Self::Single),
            other => Err(ClusterError::InvalidParameter {
                name: "linkage",
                value: other.to_string(),
                reason: "must be one of ward, average, complete, single".into(),
            }),
        }
    }

    fn kodama(self) -> kodama::Method {
        match self {
            Self::Ward => kodama::Method::Ward,
            Self::Average => kodama::Method::Average,
            Self::Complete => kodama::Method::Complete,
            Self::Single => kodama::Method::Single,
        }
    }
}

/// Where the merge tree is cut into flat clusters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cut {
    /// Exactly this many clusters (SciPy `fcluster(criterion='maxclust')`).
    NClusters(usize),
    /// Merges at height `<=` this distance are kept (SciPy `fcluster(criterion='distance')`).
    DistanceThreshold(f64),
}

/// Agglomerative clustering parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Agglomerative {
    /// Linkage criterion.
    pub linkage: LinkageMethod,
    /// Where to cut the tree.
    pub cut: Cut,
    /// Exact, or (Ward only) on k-means micro-clusters for large n (see [`crate::scalable`]).
    /// Default [`Scale::Auto`]: exact up to [`crate::scalable::EXACT_MAX_SAMPLES`] samples that
    /// fit in memory, else Ward over [`crate::scalable::DEFAULT_WARD_MICRO_CLUSTERS`]
    /// micro-clusters. The other linkages are always exact.
    pub micro_clusters: Scale,
    /// Seed of the micro-clusters (the exact form is deterministic). Default 0.
    pub seed: u64,
}

impl Agglomerative {
    /// Ward linkage cut into `n_clusters` clusters.
    pub fn new(n_clusters: usize) -> Self {
        Self {
            linkage: LinkageMethod::Ward,
            cut: Cut::NClusters(n_clusters),
            micro_clusters: Scale::Auto,
            seed: 0,
        }
    }

    /// Checks the parameters that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        match self.cut {
            Cut::NClusters(0) => Err(ClusterError::InvalidParameter {
                name: "n_clusters",
                value: "0".into(),
                reason: "must be >= 1".into(),
            }),
            Cut::DistanceThreshold(t) if !(t >= 0.0 && t.is_finite()) => {
                Err(ClusterError::InvalidParameter {
                    name: "distance_threshold",
                    value: t.to_string(),
                    reason: "must be a finite number >= 0".into(),
                })
            }
            _ if self.micro_clusters == Scale::MicroClusters(0) => {
                Err(ClusterError::InvalidParameter {
                    name: "micro_clusters",
                    value: "0".into(),
                    reason: "must be >= 1 (or exact, or auto)".into(),
                })
            }
            _ if self.linkage != LinkageMethod::Ward
                && matches!(self.micro_clusters, Scale::MicroClusters(_)) =>
            {
                Err(ClusterError::InvalidParameter {
                    name: "micro_clusters",
                    value: self.linkage.name().into(),
                    reason:
                        "the scalable form is Ward's only (merge costs from sizes and centroids)"
                            .into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Builds the full merge tree of the rows of `x` (Euclidean distances by the Gram trick,
    /// condensed in SciPy's `pdist` order, merged by kodama) without cutting it.
    pub fn linkage<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Linkage> {
        let x = checked_f64(x)?;
        linkage_matrix(&x, self.linkage)
    }

    /// Clusters the rows of `x`: the result carries `labels` and the SciPy-format `linkage`.
    ///
    /// Duplicate points merge first at distance 0; all points identical gives a tree of
    /// zero heights, cut like any other. Errors: invalid parameters, empty or non-finite
    /// input, `n_clusters` > samples.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        let x = checked_f64(x)?;
        let n = x.nrows();
        if let Cut::NClusters(k) = self.cut {
            if k > n {
                return Err(ClusterError::TooManyClusters {
                    n_clusters: k,
                    n_samples: n,
                });
            }
        }
        // The other linkages have no scalable form: always exact, and memory-checked.
        let scale = match self.linkage {
            LinkageMethod::Ward => self.micro_clusters,
            _ => Scale::Exact,
        };
        let micro = scale.resolve(
            &ScalableForm {
                method: "agglomerative clustering",
                default_m: DEFAULT_WARD_MICRO_CLUSTERS,
                micro_bytes_per_pair: 0.0,
                alternative: ALTERNATIVE,
            },
            n,
            crate::memory::quadratic_bytes(n, 4.0),
            crate::memory::available_bytes(),
        )?;
        let Some(m) = micro else {
            let linkage = linkage_matrix(&x, self.linkage)?;
            let labels = self.cut_tree(&linkage)?;
            return Ok(Clustering {
                linkage: Some(linkage),
                ..Clustering::from_labels("agglomerative", labels)
            });
        };
        let micro = MicroClusters::fit(x.view(), m, self.seed)?;
        drop(x);
        if let Cut::NClusters(k) = self.cut {
            if k > micro.len() {
                return Err(ClusterError::TooManyClusters {
                    n_clusters: k,
                    n_samples: micro.len(),
                });
            }
        }
        let linkage = weighted_ward_linkage(micro.centroids.view(), &micro.weights)?;
        let micro_labels = self.cut_tree(&linkage)?;
        let mut labels = micro.spread(&micro_labels.to_vec()).to_vec();
        crate::data::relabel_first_appearance(&mut labels);
        tracing::info!(
            n_samples = n,
            micro_clusters = micro.len(),
            "Ward over micro-clusters done"
        );
        Ok(Clustering {
            linkage: Some(linkage),
            micro_clusters: Some(micro.len()),
            micro_assignment: Some(micro.assignment),
            knn_graph: None,
            ..Clustering::from_labels("agglomerative", labels.into())
        })
    }

    fn cut_tree(&self, linkage: &Linkage) -> Result<ndarray::Array1<i64>> {
        match self.cut {
            Cut::NClusters(k) => linkage.cut_n_clusters(k),
            Cut::DistanceThreshold(t) => linkage.cut_distance(t),
        }
    }
}

/// What the memory error of exact agglomerative clustering proposes.
const ALTERNATIVE: &str = "--method ward:k=...,micro_clusters=10000 (Ward over k-means \
     micro-clusters; micro_clusters=auto switches by itself), or --method minibatch:k=...";

fn linkage_matrix(x: &Array2<f64>, method: LinkageMethod) -> Result<Linkage> {
    let n = x.nrows();
    // The condensed f64 distances: n (n - 1) / 2 × 8 bytes.
    crate::memory::check_fits(
        "agglomerative clustering",
        crate::memory::quadratic_bytes(n, 4.0),
        n,
        crate::memory::available_bytes(),
        ALTERNATIVE,
    )?;
    let mut condensed = condensed_distances(x);
    let dendrogram = kodama::linkage(&mut condensed, n, method.kodama());
    drop(condensed);
    let mut z = Array2::zeros((n - 1, 4)); // n >= 1 after `checked_f64`
    for (mut row, step) in z.outer_iter_mut().zip(dendrogram.steps()) {
        row[0] = step.cluster1 as f64;
        row[1] = step.cluster2 as f64;
        row[2] = step.dissimilarity;
        row[3] = step.size as f64;
    }
    Linkage::from_matrix(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ward_on_a_line() {
        let x = array![[0.0], [1.0], [10.0], [11.0], [30.0]];
        let r = Agglomerative::new(3).fit(x.view()).unwrap();
        assert_eq!(r.labels.to_vec(), vec![0, 0, 1, 1, 2]);
        let z = r.linkage.as_ref().unwrap().matrix().clone();
        assert_eq!(z.dim(), (4, 4));
        assert_eq!(z.row(0).to_vec(), vec![0.0, 1.0, 1.0, 2.0]);
        assert_eq!(z[[3, 3]], 5.0);
    }

    #[test]
    fn methods_thresholds_and_errors() {
        let x = array![[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.5]];
        for m in ["ward", "average", "complete", "single"] {
            let a = Agglomerative {
                linkage: LinkageMethod::from_name(m).unwrap(),
                cut: Cut::DistanceThreshold(1.2),
                ..Agglomerative::new(1)
            };
            let r = a.fit(x.view()).unwrap();
            assert_eq!(r.labels.to_vec(), vec![0, 0, 1, 2], "{m}");
        }
        assert!(LinkageMethod::from_name("centroid").is_err());
        assert!(matches!(
            Agglomerative::new(5).fit(x.view()),
            Err(ClusterError::TooManyClusters { .. })
        ));
        assert!(Agglomerative::new(0).fit(x.view()).is_err());
        let same = Array2::<f32>::ones((4, 2));
        let r = Agglomerative::new(2).fit(same.view()).unwrap();
        assert_eq!(r.n_clusters, 2);
        assert!(r
            .linkage
            .unwrap()
            .matrix()
            .column(2)
            .iter()
            .all(|&d| d == 0.0));
    }
}
