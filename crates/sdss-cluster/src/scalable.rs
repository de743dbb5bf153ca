//! Scalable forms of the two O(n²) methods, over k-means micro-clusters.
//!
//! Exact affinity propagation keeps an `n x n` similarity matrix and exact Ward the condensed
//! `n (n - 1) / 2` distances: 70,000 and 50,000 galaxies fill 24 GiB. Above
//! [`EXACT_MAX_SAMPLES`] (or when the exact form does not fit the memory there is, or on request)
//! both run on `m` micro-clusters instead: a mini-batch k-means with `m` centres, each centre
//! weighted by the galaxies it holds, and every galaxy then takes its micro-cluster's label.
//!
//! - **Ward** over weighted centres is exact Ward started from the micro-clusters instead of from
//!   single galaxies: the merge cost of two clusters depends only on their sizes and centroids
//!   (`d(A, B)² = 2 n_A n_B / (n_A + n_B) |c_A − c_B|²`, SciPy's Ward distance), so the nearest-
//!   neighbour chain needs `O(m d)` memory and no distance matrix.
//! - **Affinity propagation** over weighted centres maximises the same net similarity as on the
//!   galaxies when each micro-cluster's galaxies move together: a micro-cluster of `w_i` galaxies
//!   that joins exemplar `k` pays `w_i s(i, k)`, and an exemplar pays the preference once. So the
//!   similarities are `s'(i, k) = w_i s(c_i, c_k)`, the preference is the median similarity
//!   between galaxies (estimated on a seeded sample of them), and each cluster's exemplar galaxy
//!   is the member nearest the centre of the exemplar micro-cluster.
//!
//! This is the "leveraged" idea of apcluster (Bodenhofer et al. 2011) and of BIRCH-style
//! pre-clustering: the expensive method sees a summary small enough for it.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{ClusterError, Result};
use crate::minibatch::MiniBatchKMeans;
use crate::result::Linkage;

/// Above this many samples `Scale::Auto` runs affinity propagation and Ward on micro-clusters:
/// exact affinity propagation takes about 20 s and 1.6 GB here, and exact Ward 3.2 GB of
/// condensed distances; both grow as n².
pub const EXACT_MAX_SAMPLES: usize = 20_000;

/// Micro-clusters Ward uses by default in its scalable form (the nearest-neighbour chain costs
/// `O(m² d)` time, a few seconds at 10,000).
pub const DEFAULT_WARD_MICRO_CLUSTERS: usize = 10_000;

/// Micro-clusters affinity propagation uses by default in its scalable form (its similarity
/// matrix over them is `4 m²` bytes: 100 MB at 5,000, the size of exact runs on 6,437 galaxies).
pub const DEFAULT_AP_MICRO_CLUSTERS: usize = 5_000;

/// Whether a quadratic method runs exactly or on micro-clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Exact up to [`EXACT_MAX_SAMPLES`] when it fits the memory there is, micro-clusters above.
    #[default]
    Auto,
    /// Always exact; refused with [`ClusterError::TooLargeForMemory`] when it does not fit.
    Exact,
    /// Always on this many k-means micro-clusters (at most one per sample).
    MicroClusters(usize),
}

impl Scale {
    /// Parses `auto`, `exact` (or `0`) or a number of micro-clusters.
    pub fn parse(value: &str) -> Result<Self> {
        match value.trim() {
            "auto" => Ok(Self::Auto),
            "exact" | "0" => Ok(Self::Exact),
            other => match other.parse::<usize>() {
                Ok(m) => Ok(Self::MicroClusters(m)),
                Err(_) => Err(ClusterError::InvalidParameter {
                    name: "micro_clusters",
                    value: other.to_string(),
                    reason: "must be auto, exact or a number of micro-clusters".into(),
                }),
            },
        }
    }

    /// Resolves the choice for `n` samples: `None` for exact, `Some(m)` for `m` micro-clusters.
    ///
    /// `exact_bytes` is the exact form's working memory, checked against `available`. An
    /// automatic switch is announced in the log.
    pub(crate) fn resolve(
        self,
        form: &ScalableForm,
        n: usize,
        exact_bytes: u64,
        available: Option<u64>,
    ) -> Result<Option<usize>> {
        let ScalableForm {
            method,
            default_m,
            micro_bytes_per_pair,
            alternative,
        } = *form;
        match self {
            Self::MicroClusters(m) => Ok(Some(m.min(n))),
            Self::Exact => {
                crate::memory::check_fits(method, exact_bytes, n, available, alternative)?;
                Ok(None)
            }
            Self::Auto => {
                let fits = available.is_none_or(|a| exact_bytes <= a);
                if n <= EXACT_MAX_SAMPLES && fits {
                    return Ok(None);
                }
                // At most half the samples (a summary must summarise), and for a method that is
                // quadratic in the micro-clusters, few enough to fit in half the memory there is.
                let mut m = default_m.min(n.div_ceil(2)).max(1);
                if let (Some(avail), true) = (available, micro_bytes_per_pair > 0.0) {
                    let fit = ((avail as f64 / 2.0) / micro_bytes_per_pair).sqrt() as usize;
                    m = m.min(fit.max(1));
                }
                tracing::info!(
                    method,
                    n_samples = n,
                    micro_clusters = m,
                    exact_bytes,
                    available_bytes = available,
                    "switching to the scalable form: {method} on {m} k-means micro-clusters \
                     (exact is for at most {EXACT_MAX_SAMPLES} samples that fit in memory; \
                     micro_clusters=exact forces it)"
                );
                Ok(Some(m))
            }
        }
    }
}

/// What a method's scalable form needs to know to be chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScalableForm {
    /// The method, for the log and errors.
    pub method: &'static str,
    /// Micro-clusters by default.
    pub default_m: usize,
    /// Bytes per pair of micro-clusters the scalable form keeps (0 when it is linear in them).
    pub micro_bytes_per_pair: f64,
    /// What the memory error of the exact form proposes.
    pub alternative: &'static str,
}

/// `m` weighted micro-clusters of a sample set: the summary the scalable methods work on.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroClusters {
    /// The centre of each micro-cluster, `m x n_features`.
    pub centroids: Array2<f64>,
    /// The number of samples in each micro-cluster (every one is at least 1).
    pub weights: Vec<f64>,
    /// The micro-cluster of each sample.
    pub assignment: Vec<usize>,
}

impl MicroClusters {
    /// Summarises the rows of `x` by a seeded mini-batch k-means with `m` centres, dropping any
    /// centre no sample ended nearest to. With `m >= n` every sample is its own micro-cluster.
    pub fn fit(x: ArrayView2<'_, f64>, m: usize, seed: u64) -> Result<Self> {
        let n = x.nrows();
        if m == 0 {
            return Err(ClusterError::InvalidParameter {
                name: "micro_clusters",
                value: "0 micro-clusters".into(),
                reason: "must be >= 1".into(),
            });
        }
        if m >= n {
            return Ok(Self {
                centroids: x.to_owned(),
                weights: vec![1.0; n],
                assignment: (0..n).collect(),
            });
        }
        let mut km = MiniBatchKMeans::new(m);
        // Random initial centres: k-means++ costs O(init_size · m · log m · d), a minute for
        // 10,000 centres, and a summary does not need well-spread seeds. Batches of 4096 keep a
        // step cheap; the final assignment of every sample is one O(n m d) pass.
        km.init = crate::kmeans::KMeansInit::Random;
        km.batch_size = 4096;
        km.seed = seed;
        let fitted = km.fit(x)?;
        // Mini-batch k-means always returns its centroids; the fallback is never taken.
        let centres = fitted
            .centroids
            .unwrap_or_else(|| Array2::zeros((m, x.ncols())));
        let mut counts = vec![0usize; m];
        for &l in &fitted.labels {
            counts[l as usize] += 1;
        }
        // Renumber the non-empty centres 0.. in order.
        let mut new_id = vec![usize::MAX; m];
        let mut kept = Vec::new();
        for (c, &count) in counts.iter().enumerate() {
            if count > 0 {
                new_id[c] = kept.len();
                kept.push(c);
            }
        }
        Ok(Self {
            centroids: centres.select(Axis(0), &kept),
            weights: kept.iter().map(|&c| counts[c] as f64).collect(),
            assignment: fitted.labels.iter().map(|&l| new_id[l as usize]).collect(),
        })
    }

    /// Number of micro-clusters.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are none (never, for a fitted summary).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Labels of the samples from labels of the micro-clusters.
    pub fn spread(&self, micro_labels: &[i64]) -> Array1<i64> {
        self.assignment.iter().map(|&m| micro_labels[m]).collect()
    }

    /// For each micro-cluster in `which`, the sample nearest its centre.
    pub fn nearest_members(&self, x: ArrayView2<'_, f64>, which: &[usize]) -> Vec<usize> {
        let mut best = vec![(f64::INFINITY, usize::MAX); self.len()];
        let wanted: std::collections::HashSet<usize> = which.iter().copied().collect();
        for (i, &m) in self.assignment.iter().enumerate() {
            if !wanted.contains(&m) {
                continue;
            }
            let d: f64 = x
                .row(i)
                .iter()
                .zip(self.centroids.row(m))
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            if d < best[m].0 {
                best[m] = (d, i);
            }
        }
        which.iter().map(|&m| best[m].1).collect()
    }
}

/// SciPy's Ward linkage of weighted points (`weights[i]` samples at `centroids[i]`), by the
/// nearest-neighbour chain with distances computed from centroids and sizes (no matrix).
///
/// With unit weights this is `scipy.cluster.hierarchy.linkage(x, "ward")` (up to the order of
/// tied merges). Rows are sorted by height and renumbered as SciPy does; the count column holds
/// the samples under each merge (the sum of the weights), not the leaves.
pub fn weighted_ward_linkage(centroids: ArrayView2<'_, f64>, weights: &[f64]) -> Result<Linkage> {
    let (m, d) = centroids.dim();
    if m == 0 || weights.len() != m {
        return Err(ClusterError::LengthMismatch {
            what: "micro-cluster weights",
            found: weights.len(),
            expected: m,
        });
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(ClusterError::InvalidParameter {
            name: "weights",
            value: w.to_string(),
            reason: "every micro-cluster weight must be a positive number".into(),
        });
    }
    if let Some(((row, col), &value)) = centroids.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(ClusterError::NonFinite { row, col, value });
    }
    let mut cent: Vec<f64> = centroids.iter().copied().collect();
    let mut size: Vec<f64> = weights.to_vec();
    let mut active = vec![true; m];
    let mut merges: Vec<(usize, usize, f64, f64)> = Vec::with_capacity(m.saturating_sub(1));
    let mut chain: Vec<usize> = Vec::new();
    let ward = |cent: &[f64], size: &[f64], a: usize, b: usize| -> f64 {
        let (ca, cb) = (&cent[a * d..(a + 1) * d], &cent[b * d..(b + 1) * d]);
        let sq: f64 = ca.iter().zip(cb).map(|(p, q)| (p - q) * (p - q)).sum();
        (2.0 * size[a] * size[b] / (size[a] + size[b]) * sq).sqrt()
    };
    let mut next_start = 0usize;
    while merges.len() + 1 < m {
        if chain.is_empty() {
            while !active[next_start] {
                next_start += 1;
            }
            chain.push(next_start);
        }
        let (x, y, dist) = loop {
            let x = chain[chain.len() - 1];
            let prev = (chain.len() >= 2).then(|| chain[chain.len() - 2]);
            let (mut y, mut current) = match prev {
                Some(p) => (p, ward(&cent, &size, x, p)),
                None => (usize::MAX, f64::INFINITY),
            };
            // The first index at the smallest distance, as SciPy's sequential scan finds it.
            let found = (0..m)
                .into_par_iter()
                .with_min_len(1024)
                .filter(|&j| j != x && active[j])
                .map(|j| (ward(&cent, &size, x, j), j))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if let Some((dj, j)) = found {
                if dj < current {
                    current = dj;
                    y = j;
                }
            }
            if prev == Some(y) {
                chain.pop();
                chain.pop();
                break (x, y, current);
            }
            chain.push(y);
        };
        let (x, y) = (x.min(y), x.max(y));
        let total = size[x] + size[y];
        for k in 0..d {
            cent[y * d + k] = (size[x] * cent[x * d + k] + size[y] * cent[y * d + k]) / total;
        }
        merges.push((x, y, dist, total));
        size[y] = total;
        active[x] = false;
    }
    // Sort by height (stable, like SciPy's mergesort) and renumber by union-find.
    let mut order: Vec<usize> = (0..merges.len()).collect();
    order.sort_by(|&a, &b| merges[a].2.total_cmp(&merges[b].2));
    let mut parent: Vec<usize> = (0..2 * m - 1).collect();
    fn find(parent: &mut [usize], mut v: usize) -> usize {
        while parent[v] != v {
            parent[v] = parent[parent[v]];
            v = parent[v];
        }
        v
    }
    let mut z = Array2::zeros((m - 1, 4));
    for (row, &i) in order.iter().enumerate() {
        let (a, b, dist, count) = merges[i];
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        z[[row, 0]] = ra.min(rb) as f64;
        z[[row, 1]] = ra.max(rb) as f64;
        z[[row, 2]] = dist;
        z[[row, 3]] = count;
        parent[ra] = m + row;
        parent[rb] = m + row;
    }
    Linkage::from_matrix(z)
}

/// Indices of `min(n, size)` distinct samples drawn with a seeded generator (all of them, in
/// order, when `size >= n`).
pub(crate) fn sample_indices(n: usize, size: usize, seed: u64) -> Vec<usize> {
    if size >= n {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Partial Fisher–Yates over an index vector: O(n) memory, fine for the sizes here.
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..size {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    idx.truncate(size);
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agglomerative::Agglomerative;
    use ndarray::array;

    #[test]
    fn unit_weights_give_exact_ward() {
        let x = array![
            [0.0, 0.0],
            [0.0, 1.0],
            [4.0, 0.0],
            [4.5, 0.5],
            [10.0, 10.0],
            [9.0, 9.5],
            [3.0, 7.0]
        ];
        let exact = Agglomerative::new(2).linkage(x.view()).unwrap();
        let chain = weighted_ward_linkage(x.view(), &[1.0; 7]).unwrap();
        for (a, b) in exact.matrix().iter().zip(chain.matrix().iter()) {
            assert!(
                (a - b).abs() < 1e-12,
                "{} vs {}",
                exact.matrix(),
                chain.matrix()
            );
        }
    }

    #[test]
    fn a_weighted_point_is_the_points_it_stands_for() {
        // Two points at the same place merged first at height 0 give the same later merges as
        // one point of weight 2.
        let dup = array![[0.0, 0.0], [0.0, 0.0], [3.0, 0.0], [7.0, 1.0]];
        let exact = Agglomerative::new(2).linkage(dup.view()).unwrap();
        let merged = array![[0.0, 0.0], [3.0, 0.0], [7.0, 1.0]];
        let weighted = weighted_ward_linkage(merged.view(), &[2.0, 1.0, 1.0]).unwrap();
        let e = exact.matrix();
        let w = weighted.matrix();
        assert_eq!(e[[0, 2]], 0.0);
        assert!(weighted_ward_linkage(merged.view(), &[2.0, 0.0, 1.0]).is_err());
        assert!(weighted_ward_linkage(merged.view(), &[2.0, 1.0]).is_err());
        for r in 0..2 {
            assert!((e[[r + 1, 2]] - w[[r, 2]]).abs() < 1e-12, "{e} vs {w}");
            assert_eq!(e[[r + 1, 3]], w[[r, 3]]);
        }
    }

    const W: ScalableForm = ScalableForm {
        method: "w",
        default_m: 50,
        micro_bytes_per_pair: 0.0,
        alternative: "x",
    };

    #[test]
    fn scale_parses_and_resolves() {
        assert_eq!(Scale::parse("auto").unwrap(), Scale::Auto);
        assert_eq!(Scale::parse("exact").unwrap(), Scale::Exact);
        assert_eq!(Scale::parse("500").unwrap(), Scale::MicroClusters(500));
        assert!(Scale::parse("many").is_err());
        assert_eq!(Scale::Auto.resolve(&W, 100, 10, Some(100)).unwrap(), None);
        assert_eq!(
            Scale::Auto.resolve(&W, 100, 1000, Some(100)).unwrap(),
            Some(50)
        );
        assert_eq!(
            Scale::Auto
                .resolve(&W, EXACT_MAX_SAMPLES + 1, 1, None)
                .unwrap(),
            Some(50)
        );
        assert!(Scale::Exact.resolve(&W, 100, 1000, Some(100)).is_err());
        assert_eq!(
            Scale::MicroClusters(500).resolve(&W, 100, 1, None).unwrap(),
            Some(100)
        );
    }

    #[test]
    fn micro_clusters_cover_every_sample() {
        let x = Array2::from_shape_fn((500, 3), |(i, j)| ((i * 7 + j * 13) % 31) as f64);
        let mc = MicroClusters::fit(x.view(), 40, 1).unwrap();
        assert!(mc.len() <= 40 && !mc.is_empty());
        assert_eq!(mc.assignment.len(), 500);
        assert_eq!(mc.weights.iter().sum::<f64>(), 500.0);
        assert!(mc.weights.iter().all(|&w| w >= 1.0));
        let all = MicroClusters::fit(x.view(), 500, 1).unwrap();
        assert_eq!(all.len(), 500);
        assert_eq!(sample_indices(10, 20, 0), (0..10).collect::<Vec<_>>());
        let s = sample_indices(1000, 10, 3);
        assert_eq!(s.len(), 10);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }
}
