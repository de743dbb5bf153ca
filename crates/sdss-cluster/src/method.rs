//! One interface over all methods: the [`Clusterer`] trait and the [`ClusterMethod`] enum,
//! which a command-line driver builds from a method name and `key=value` parameters.

use ndarray::ArrayView2;

use crate::affinity::AffinityPropagation;
use crate::agglomerative::{Agglomerative, Cut, LinkageMethod};
use crate::data::Element;
use crate::density::{Dbscan, Optics};
use crate::error::{ClusterError, Result};
use crate::hdbscan::Hdbscan;
use crate::kmeans::{KMeans, KMeansInit};
use crate::minibatch::MiniBatchKMeans;
use crate::result::Clustering;
use crate::scalable::Scale;

/// A validated set of clustering parameters that can be fitted to a feature matrix.
pub trait Clusterer {
    /// The method's name as it appears in [`Clustering::method`].
    fn name(&self) -> &'static str;
    /// Checks the parameters without looking at data.
    fn validate(&self) -> Result<()>;
    /// Clusters the rows of `x` (samples x features, `f32` or `f64`).
    fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering>;
}

macro_rules! impl_clusterer {
    ($t:ty, $name:literal) => {
        impl Clusterer for $t {
            fn name(&self) -> &'static str {
                $name
            }
            fn validate(&self) -> Result<()> {
                <$t>::validate(self)
            }
            fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
                <$t>::fit(self, x)
            }
        }
    };
}

impl_clusterer!(KMeans, "kmeans");
impl_clusterer!(MiniBatchKMeans, "minibatch-kmeans");
impl_clusterer!(AffinityPropagation, "affinity-propagation");
impl_clusterer!(Agglomerative, "agglomerative");
impl_clusterer!(Dbscan, "dbscan");
impl_clusterer!(Hdbscan, "hdbscan");
impl_clusterer!(Optics, "optics");

/// Any of the methods, chosen at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterMethod {
    /// k-means.
    KMeans(KMeans),
    /// Mini-batch k-means, for large N.
    MiniBatchKMeans(MiniBatchKMeans),
    /// Affinity propagation.
    AffinityPropagation(AffinityPropagation),
    /// Agglomerative (hierarchical).
    Agglomerative(Agglomerative),
    /// DBSCAN.
    Dbscan(Dbscan),
    /// HDBSCAN.
    Hdbscan(Hdbscan),
    /// OPTICS.
    Optics(Optics),
}

const KMEANS_KEYS: &str = "k (or n_clusters), n_init, max_iter, tol, seed, init (k-means++|random)";
const MINIBATCH_KEYS: &str = "k (or n_clusters), batch_size, max_iter, init_size, max_no_improvement, reassignment_ratio, seed, init (k-means++|random)";
const AP_KEYS: &str =
    "damping, max_iter, convergence_iter, preference, seed, micro_clusters (auto|exact|M), knn (K)";
const AGGLO_KEYS: &str = "k (or n_clusters), distance_threshold, linkage (ward|average|complete|single), micro_clusters (auto|exact|M, Ward only), seed";
const DBSCAN_KEYS: &str = "eps, min_samples";
const HDBSCAN_KEYS: &str =
    "min_cluster_size, min_samples, alpha, allow_single_cluster (true|false), max_samples";

fn parse<V: std::str::FromStr>(name: &'static str, value: &str) -> Result<V> {
    value
        .trim()
        .parse()
        .map_err(|_| ClusterError::InvalidParameter {
            name,
            value: value.to_string(),
            reason: format!("not a valid {}", std::any::type_name::<V>()),
        })
}

impl ClusterMethod {
    /// The method names accepted by [`ClusterMethod::from_params`].
    pub const NAMES: [&'static str; 7] = [
        "kmeans",
        "minibatch-kmeans",
        "affinity-propagation",
        "agglomerative",
        "dbscan",
        "hdbscan",
        "optics",
    ];

    /// Builds and validates a method from its name and `key=value` parameters; parameters not
    /// given keep scikit-learn's defaults (`kmeans` and `agglomerative` require `k`).
    ///
    /// Names: `kmeans`, `minibatch-kmeans`, `affinity-propagation` (alias `ap`), `agglomerative` (aliases `ward`,
    /// `hierarchical`), `dbscan`, `hdbscan`, `optics`; `_` and `-` are interchangeable.
    /// Keys:
    /// - kmeans: `k`/`n_clusters`, `n_init`, `max_iter`, `tol`, `seed`, `init` (`k-means++`|`random`)
    /// - minibatch-kmeans (alias `minibatch`): `k`/`n_clusters`, `batch_size`, `max_iter`,
    ///   `init_size`, `max_no_improvement`, `reassignment_ratio`, `seed`
    /// - affinity-propagation: `damping`, `max_iter`, `convergence_iter`, `preference`, `seed`,
    ///   `micro_clusters` (`auto`|`exact`|a number: the scalable form, see [`crate::scalable`])
    /// - agglomerative: `k`/`n_clusters` or `distance_threshold`, `linkage` (`ward`|`average`|`complete`|`single`),
    ///   `micro_clusters` (Ward only) and `seed` (of the micro-clusters)
    /// - dbscan, optics: `eps`, `min_samples`
    /// - hdbscan: `min_cluster_size`, `min_samples`, `alpha`, `allow_single_cluster`
    ///
    /// ```
    /// use sdss_cluster::ClusterMethod;
    /// let m = ClusterMethod::from_params("kmeans", &[("k", "10"), ("seed", "3")]).unwrap();
    /// assert_eq!(m.name(), "kmeans");
    /// assert!(ClusterMethod::from_params("kmeans", &[("k", "0")]).is_err());
    /// ```
    pub fn from_params<K: AsRef<str>, V: AsRef<str>>(
        name: &str,
        params: &[(K, V)],
    ) -> Result<Self> {
        let canonical = name.trim().to_ascii_lowercase().replace('_', "-");
        let method = match canonical.as_str() {
            "kmeans" | "k-means" => {
                let mut k: Option<usize> = None;
                let mut m = KMeans::new(1);
                for (key, v) in params {
                    let v = v.as_ref();
                    match key.as_ref() {
                        "k" | "n_clusters" => k = Some(parse("n_clusters", v)?),
                        "n_init" => m.n_init = parse("n_init", v)?,
                        "max_iter" => m.max_iter = parse("max_iter", v)?,
                        "tol" => m.tol = parse("tol", v)?,
                        "seed" | "random_state" => m.seed = parse("seed", v)?,
                        "init" => m.init = parse_init(v)?,
                        other => return Err(unknown("kmeans", other, KMEANS_KEYS)),
                    }
                }
                m.n_clusters = k.ok_or_else(|| missing("n_clusters"))?;
                Self::KMeans(m)
            }
            "minibatch-kmeans" | "minibatch" | "mini-batch-kmeans" => {
                let mut k: Option<usize> = None;
                let mut m = MiniBatchKMeans::new(1);
                for (key, v) in params {
                    let v = v.as_ref();
                    match key.as_ref() {
                        "k" | "n_clusters" => k = Some(parse("n_clusters", v)?),
                        "batch_size" => m.batch_size = parse("batch_size", v)?,
                        "max_iter" => m.max_iter = parse("max_iter", v)?,
                        "init_size" => m.init_size = Some(parse("init_size", v)?),
                        "max_no_improvement" => {
                            m.max_no_improvement = parse("max_no_improvement", v)?
                        }
                        "reassignment_ratio" => {
                            m.reassignment_ratio = parse("reassignment_ratio", v)?
                        }
                        "seed" | "random_state" => m.seed = parse("seed", v)?,
                        "init" => m.init = parse_init(v)?,
                        other => return Err(unknown("minibatch-kmeans", other, MINIBATCH_KEYS)),
                    }
                }
                m.n_clusters = k.ok_or_else(|| missing("n_clusters"))?;
                Self::MiniBatchKMeans(m)
            }
            "affinity-propagation" | "ap" | "affinitypropagation" => {
                let mut m = AffinityPropagation::new();
                for (key, v) in params {
                    let v = v.as_ref();
                    match key.as_ref() {
                        "damping" => m.damping = parse("damping", v)?,
                        "max_iter" => m.max_iter = parse("max_iter", v)?,
                        "convergence_iter" => m.convergence_iter = parse("convergence_iter", v)?,
                        "preference" => m.preference = Some(parse("preference", v)?),
                        "seed" | "random_state" => m.seed = parse("seed", v)?,
                        "micro_clusters" => m.micro_clusters = Scale::parse(v)?,
                        "knn" => m.knn = Some(parse("knn", v)?),
                        other => return Err(unknown("affinity-propagation", other, AP_KEYS)),
                    }
                }
                Self::AffinityPropagation(m)
            }
            "agglomerative" | "ward" | "hierarchical" => {
                let mut linkage = LinkageMethod::Ward;
                let mut cut: Option<Cut> = None;
                let mut m = Agglomerative::new(1);
                for (key, v) in params {
                    let v = v.as_ref();
                    match key.as_ref() {
                        "k" | "n_clusters" => cut = Some(Cut::NClusters(parse("n_clusters", v)?)),
                        "distance_threshold" | "threshold" => {
                            cut = Some(Cut::DistanceThreshold(parse("distance_threshold", v)?))
                        }
                        "linkage" | "method" => linkage = LinkageMethod::from_name(v.trim())?,
                        "micro_clusters" => m.micro_clusters = Scale::parse(v)?,
                        "seed" | "random_state" => m.seed = parse("seed", v)?,
                        other => return Err(unknown("agglomerative", other, AGGLO_KEYS)),
                    }
                }
                Self::Agglomerative(Agglomerative {
                    linkage,
                    cut: cut.ok_or_else(|| missing("n_clusters"))?,
                    ..m
                })
            }
            "dbscan" | "optics" => {
                let (mut eps, mut min_samples) = (0.5, 5);
                for (key, v) in params {
                    let v = v.as_ref();
                    match key.as_ref() {
                        "eps" => eps = parse("eps", v)?,
                        "min_samples" => min_samples = parse("min_samples", v)?,
                        other => {
                            let method = if canonical == "dbscan" {
                                "dbscan"
                            } else {
                                "optics"
                            };
                            return Err(unknown(method, other, DBSCAN_KEYS));
                        }
                    }
                }
                if canonical == "dbscan" {
                    Self::Dbscan(Dbscan { eps, min_samples })
                } else {
                    Self::Optics(Optics { eps, min_samples })
                }
            }
            "hdbscan" => {
                let mut m = Hdbscan::default();
                for (key, v) in params {
                    let v = v.as_ref();
                    match key.as_ref() {
                        "min_cluster_size" => m.min_cluster_size = parse("min_cluster_size", v)?,
                        "min_samples" => m.min_samples = Some(parse("min_samples", v)?),
                        "alpha" => m.alpha = parse("alpha", v)?,
                        "allow_single_cluster" => {
                            m.allow_single_cluster = parse("allow_single_cluster", v)?
                        }
                        "max_samples" => m.max_samples = parse("max_samples", v)?,
                        other => return Err(unknown("hdbscan", other, HDBSCAN_KEYS)),
                    }
                }
                Self::Hdbscan(m)
            }
            _ => return Err(ClusterError::UnknownMethod(name.to_string())),
        };
        Clusterer::validate(&method)?;
        Ok(method)
    }

    fn inner(&self) -> &dyn DynValidate {
        match self {
            Self::KMeans(m) => m,
            Self::MiniBatchKMeans(m) => m,
            Self::AffinityPropagation(m) => m,
            Self::Agglomerative(m) => m,
            Self::Dbscan(m) => m,
            Self::Hdbscan(m) => m,
            Self::Optics(m) => m,
        }
    }
}

/// Object-safe part of [`Clusterer`], for dispatch in [`ClusterMethod`].
trait DynValidate {
    fn name(&self) -> &'static str;
    fn validate(&self) -> Result<()>;
}

impl<C: Clusterer> DynValidate for C {
    fn name(&self) -> &'static str {
        Clusterer::name(self)
    }
    fn validate(&self) -> Result<()> {
        Clusterer::validate(self)
    }
}

impl Clusterer for ClusterMethod {
    fn name(&self) -> &'static str {
        self.inner().name()
    }
    fn validate(&self) -> Result<()> {
        self.inner().validate()
    }
    fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        match self {
            Self::KMeans(m) => m.fit(x),
            Self::MiniBatchKMeans(m) => m.fit(x),
            Self::AffinityPropagation(m) => m.fit(x),
            Self::Agglomerative(m) => m.fit(x),
            Self::Dbscan(m) => m.fit(x),
            Self::Hdbscan(m) => m.fit(x),
            Self::Optics(m) => m.fit(x),
        }
    }
}

impl ClusterMethod {
    /// The method's name (same as [`Clusterer::name`], callable without importing the trait).
    pub fn name(&self) -> &'static str {
        self.inner().name()
    }

    /// Clusters the rows of `x` (same as [`Clusterer::fit`], callable without importing the trait).
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        Clusterer::fit(self, x)
    }
}

fn parse_init(v: &str) -> Result<KMeansInit> {
    match v {
        "k-means++" | "kmeans++" => Ok(KMeansInit::KMeansPlusPlus),
        "random" => Ok(KMeansInit::Random),
        other => Err(ClusterError::InvalidParameter {
            name: "init",
            value: other.into(),
            reason: "must be k-means++ or random".into(),
        }),
    }
}

fn unknown(method: &'static str, key: &str, expected: &'static str) -> ClusterError {
    ClusterError::UnknownParameter {
        method,
        key: key.to_string(),
        expected,
    }
}

fn missing(name: &'static str) -> ClusterError {
    ClusterError::InvalidParameter {
        name,
        value: "(missing)".into(),
        reason: "required for this method (k=...)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn builds_every_method_from_names() {
        let x = array![
            [0.0f32, 0.0],
            [0.0, 0.1],
            [3.0, 3.0],
            [3.0, 3.1],
            [3.1, 3.0]
        ];
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("kmeans", vec![("k", "2"), ("n_init", "3")]),
            ("minibatch", vec![("k", "2"), ("batch_size", "4")]),
            ("ap", vec![("damping", "0.8"), ("preference", "-5")]),
            ("ward", vec![("k", "2")]),
            (
                "agglomerative",
                vec![("distance_threshold", "1.0"), ("linkage", "single")],
            ),
            ("dbscan", vec![("eps", "0.5"), ("min_samples", "2")]),
            ("optics", vec![("eps", "0.5"), ("min_samples", "2")]),
            (
                "hdbscan",
                vec![("min_cluster_size", "2"), ("min_samples", "1")],
            ),
        ];
        for (name, params) in cases {
            let m = ClusterMethod::from_params(name, &params).unwrap();
            let r = m.fit(x.view()).unwrap();
            assert_eq!(r.method, m.name());
            assert_eq!(r.n_clusters, 2, "{name}");
            assert_eq!(r.labels[0], r.labels[1], "{name}");
            assert_ne!(r.labels[0], r.labels[2], "{name}");
        }
    }

    #[test]
    fn rejects_bad_names_keys_and_values() {
        assert!(matches!(
            ClusterMethod::from_params::<&str, &str>("spectral", &[]),
            Err(ClusterError::UnknownMethod(_))
        ));
        assert!(matches!(
            ClusterMethod::from_params("kmeans", &[("k", "3"), ("foo", "1")]),
            Err(ClusterError::UnknownParameter { .. })
        ));
        assert!(matches!(
            ClusterMethod::from_params("ap", &[("damping", "1.0")]),
            Err(ClusterError::InvalidParameter {
                name: "damping",
                ..
            })
        ));
        assert!(ClusterMethod::from_params("kmeans", &[("k", "x")]).is_err());
        assert!(ClusterMethod::from_params::<&str, &str>("kmeans", &[]).is_err());
    }
}
