//! k-means: k-means++ seeding, Lloyd iterations, `n_init` restarts keeping the lowest inertia.
//!
//! Follows scikit-learn's `KMeans(algorithm="lloyd")`: greedy k-means++ with
//! `2 + ln k` local trials, tolerance relative to the mean feature variance, strict
//! convergence when labels stop changing, empty clusters relocated to the samples farthest
//! from their centroids, and a final assignment step so labels match the returned centroids.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::{checked_f64, Element};
use crate::error::{ClusterError, Result};
use crate::result::Clustering;

/// How k-means chooses its initial centroids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KMeansInit {
    /// Greedy k-means++ (scikit-learn's default).
    #[default]
    KMeansPlusPlus,
    /// `n_clusters` distinct samples drawn uniformly at random.
    Random,
}

/// k-means parameters. Build with [`KMeans::new`] and adjust the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// Number of clusters `k` (>= 1, <= number of samples).
    pub n_clusters: usize,
    /// Independent restarts; the one with the lowest inertia is kept (>= 1). Default 10.
    pub n_init: usize,
    /// Maximum Lloyd iterations per restart (>= 1). Default 300.
    pub max_iter: usize,
    /// Convergence tolerance on the squared centroid shift, relative to the mean feature
    /// variance (>= 0). Default 1e-4.
    pub tol: f64,
    /// Seed of the random initialisation; the same seed gives the same result on any thread count.
    pub seed: u64,
    /// Initialisation scheme.
    pub init: KMeansInit,
}

impl KMeans {
    /// k-means with `n_clusters` clusters and scikit-learn's other defaults (`n_init` 10, `max_iter` 300, `tol` 1e-4, seed 0).
    pub fn new(n_clusters: usize) -> Self {
        Self {
            n_clusters,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
            init: KMeansInit::KMeansPlusPlus,
        }
    }

    /// Checks the parameters that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        if self.n_clusters == 0 {
            return Err(invalid("n_clusters", self.n_clusters, "must be >= 1"));
        }
        if self.n_init == 0 {
            return Err(invalid("n_init", self.n_init, "must be >= 1"));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", self.max_iter, "must be >= 1"));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(invalid("tol", self.tol, "must be a finite number >= 0"));
        }
        Ok(())
    }

    /// Clusters the rows of `x` (samples x features).
    ///
    /// Errors: invalid parameters, empty or non-finite input, `n_clusters` > samples. With
    /// fewer distinct points than `n_clusters` (e.g. duplicates) some clusters stay empty and
    /// `n_clusters` in the result counts only the non-empty ones.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        let mut x = checked_f64(x)?;
        let (n, _d) = x.dim();
        if self.n_clusters > n {
            return Err(ClusterError::TooManyClusters {
                n_clusters: self.n_clusters,
                n_samples: n,
            });
        }
        // Centre the data as scikit-learn does: better precision for the squared distances.
        let mean = x
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(x.ncols())); // n >= 1, so never None
        x -= &mean;
        let tol = self.tol * x.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);

        // Restarts run in parallel; each has its own random stream so the result does not
        // depend on the number of threads.
        let runs: Vec<Run> = (0..self.n_init)
            .into_par_iter()
            .map(|run| {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(run as u64);
                let centers = match self.init {
                    KMeansInit::KMeansPlusPlus => kmeans_plusplus(&x, self.n_clusters, &mut rng),
                    KMeansInit::Random => random_init(&x, self.n_clusters, &mut rng),
                };
                lloyd(&x, centers, self.max_iter, tol)
            })
            .collect();
        // Lowest inertia wins; ties go to the earliest restart (deterministic).
        let best = runs
            .into_iter()
            .reduce(|a, b| if b.inertia < a.inertia { b } else { a })
            .ok_or_else(|| invalid("n_init", self.n_init, "must be >= 1"))?;

        let mut centroids = best.centers;
        centroids += &mean;
        let mut counts = vec![0usize; self.n_clusters];
        for &l in &best.labels {
            counts[l] += 1;
        }
        let n_clusters = counts.iter().filter(|&&c| c > 0).count();
        Ok(Clustering {
            method: "kmeans",
            labels: best.labels.iter().map(|&l| l as i64).collect(),
            n_clusters,
            iterations: Some(best.iterations),
            converged: Some(best.converged),
            inertia: Some(best.inertia),
            centroids: Some(centroids),
            exemplars: None,
            linkage: None,
        })
    }
}

fn invalid(name: &'static str, value: impl ToString, reason: &str) -> ClusterError {
    ClusterError::InvalidParameter {
        name,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

struct Run {
    labels: Vec<usize>,
    centers: Array2<f64>,
    inertia: f64,
    iterations: usize,
    converged: bool,
}

#[inline]
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// scikit-learn's greedy k-means++ (`_kmeans_plusplus`).
fn kmeans_plusplus(x: &Array2<f64>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let (n, d) = x.dim();
    let xs = x.as_slice().unwrap_or(&[]); // `checked_f64` returns a standard-layout array
    let row = |i: usize| &xs[i * d..(i + 1) * d];
    let mut centers = Array2::zeros((k, d));
    let n_local_trials = 2 + (k as f64).ln() as usize;
    let first = rng.random_range(0..n);
    centers.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = (0..n).map(|i| sq_dist(row(i), row(first))).collect();
    let mut pot: f64 = closest.iter().sum();
    for c in 1..k {
        let mut cumsum = Vec::with_capacity(n);
        let mut acc = 0.0;
        for &v in &closest {
            acc += v;
            cumsum.push(acc);
        }
        let candidates: Vec<usize> = (0..n_local_trials)
            .map(|_| {
                let r = rng.random::<f64>() * pot;
                cumsum.partition_point(|&v| v < r).min(n - 1)
            })
            .collect();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for &cand in &candidates {
            let dist: Vec<f64> = (0..n)
                .map(|i| sq_dist(row(i), row(cand)).min(closest[i]))
                .collect();
            let p: f64 = dist.iter().sum();
            if best.as_ref().is_none_or(|b| p < b.0) {
                best = Some((p, cand, dist));
            }
        }
        if let Some((p, cand, dist)) = best {
            pot = p;
            closest = dist;
            centers.row_mut(c).assign(&x.row(cand));
        }
    }
    centers
}

/// `k` distinct samples chosen uniformly (partial Fisher-Yates).
fn random_init(x: &Array2<f64>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let n = x.nrows();
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    x.select(Axis(0), &idx[..k])
}

/// Samples per parallel chunk in the assignment step.
const CHUNK: usize = 1024;

/// Nearest-centre assignment of every sample, with per-cluster sums and counts.
struct Assignment {
    labels: Vec<usize>,
    dists: Vec<f64>,
    sums: Array2<f64>,
    counts: Vec<usize>,
}

/// One chunk's share of an [`Assignment`] (sums flattened).
struct Partial {
    labels: Vec<usize>,
    dists: Vec<f64>,
    sums: Vec<f64>,
    counts: Vec<usize>,
}

/// Assigns each sample to its nearest centre (squared Euclidean distance).
fn assign(x: &Array2<f64>, centers: &Array2<f64>) -> Assignment {
    let (n, d) = x.dim();
    let k = centers.nrows();
    let xs = x.as_slice().unwrap_or(&[]); // standard layout, see `checked_f64`
    let cs = centers.as_standard_layout();
    let cs = cs.as_slice().unwrap_or(&[]); // just made standard layout
                                           // Fixed chunks reduced in order: the sums do not depend on the thread schedule.
    let parts: Vec<Partial> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let lo = c * CHUNK;
            let hi = (lo + CHUNK).min(n);
            let mut labels = Vec::with_capacity(hi - lo);
            let mut dists = Vec::with_capacity(hi - lo);
            let mut sums = vec![0.0; k * d];
            let mut counts = vec![0usize; k];
            for i in lo..hi {
                let xi = &xs[i * d..(i + 1) * d];
                let mut best = (f64::INFINITY, 0usize);
                for j in 0..k {
                    let dist = sq_dist(xi, &cs[j * d..(j + 1) * d]);
                    if dist < best.0 {
                        best = (dist, j);
                    }
                }
                labels.push(best.1);
                dists.push(best.0);
                counts[best.1] += 1;
                for (s, v) in sums[best.1 * d..(best.1 + 1) * d].iter_mut().zip(xi) {
                    *s += v;
                }
            }
            Partial {
                labels,
                dists,
                sums,
                counts,
            }
        })
        .collect();
    let mut labels = Vec::with_capacity(n);
    let mut dists = Vec::with_capacity(n);
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    for part in parts {
        labels.extend(part.labels);
        dists.extend(part.dists);
        for (a, b) in sums.iter_mut().zip(part.sums) {
            *a += b;
        }
        for (a, b) in counts.iter_mut().zip(part.counts) {
            *a += b;
        }
    }
    let sums = Array2::from_shape_vec((k, d), sums).unwrap_or_else(|_| Array2::zeros((k, d))); // k*d elements by construction
    Assignment {
        labels,
        dists,
        sums,
        counts,
    }
}

/// Lloyd iterations from `centers` until labels stop changing, the squared centre shift is
/// `<= tol`, or `max_iter`.
fn lloyd(x: &Array2<f64>, mut centers: Array2<f64>, max_iter: usize, tol: f64) -> Run {
    let k = centers.nrows();
    let mut labels_old: Vec<usize> = Vec::new();
    let mut converged = false;
    let mut iterations = 0;
    for it in 0..max_iter {
        iterations = it + 1;
        let Assignment {
            labels,
            dists,
            sums,
            mut counts,
        } = assign(x, &centers);
        let mut new_centers = sums;
        // Empty clusters take the samples farthest from their centres (as scikit-learn).
        let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
        if !empty.is_empty() {
            let mut order: Vec<usize> = (0..x.nrows()).collect();
            order.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]));
            for (&j, &far) in empty.iter().zip(order.iter()) {
                let old = labels[far];
                if counts[old] > 1 {
                    counts[old] -= 1;
                    let xr = x.row(far).to_owned();
                    let mut r = new_centers.row_mut(old);
                    r -= &xr;
                    new_centers.row_mut(j).assign(&xr);
                    counts[j] = 1;
                }
            }
        }
        for (j, &count) in counts.iter().enumerate() {
            if count > 0 {
                let c = count as f64;
                new_centers.row_mut(j).mapv_inplace(|v| v / c);
            } else {
                new_centers.row_mut(j).assign(&centers.row(j));
            }
        }
        let shift: f64 = (&new_centers - &centers).mapv(|v| v * v).sum();
        centers = new_centers;
        if labels == labels_old {
            // Strict convergence: the assignment is a fixed point.
            converged = true;
            break;
        }
        if shift <= tol {
            converged = true;
            break;
        }
        labels_old = labels;
    }
    // Final assignment so labels and inertia match the returned centres.
    let Assignment { labels, dists, .. } = assign(x, &centers);
    Run {
        labels,
        inertia: dists.iter().sum(),
        centers,
        iterations,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn blobs() -> Array2<f64> {
        let mut v = Vec::new();
        for (cx, cy) in [(0.0, 0.0), (10.0, 10.0), (-10.0, 8.0)] {
            for i in 0..20 {
                let t = i as f64;
                v.push(cx + (t * 0.37).sin());
                v.push(cy + (t * 0.91).cos());
            }
        }
        Array2::from_shape_vec((60, 2), v).unwrap()
    }

    #[test]
    fn finds_three_blobs_deterministically() {
        let x = blobs();
        let km = KMeans::new(3);
        let a = km.fit(x.view()).unwrap();
        let b = km.fit(x.view()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.n_clusters, 3);
        assert_eq!(a.converged, Some(true));
        for c in 0..3 {
            let l = a.labels[c * 20];
            assert!((c * 20..c * 20 + 20).all(|i| a.labels[i] == l));
        }
        // Inertia is the sum of squared distances to the returned centroids.
        let cent = a.centroids.as_ref().unwrap();
        let inertia: f64 = (0..60)
            .map(|i| {
                let c = cent.row(a.labels[i] as usize);
                sq_dist(x.row(i).as_slice().unwrap(), c.to_vec().as_slice())
            })
            .sum();
        assert!((inertia - a.inertia.unwrap()).abs() < 1e-9);
    }

    #[test]
    fn bad_parameters_and_input() {
        let x = blobs();
        assert!(matches!(
            KMeans::new(0).fit(x.view()),
            Err(ClusterError::InvalidParameter {
                name: "n_clusters",
                ..
            })
        ));
        assert!(matches!(
            KMeans::new(61).fit(x.view()),
            Err(ClusterError::TooManyClusters {
                n_clusters: 61,
                n_samples: 60
            })
        ));
        let mut nan = x.clone();
        nan[[3, 1]] = f64::NAN;
        assert!(matches!(
            KMeans::new(2).fit(nan.view()),
            Err(ClusterError::NonFinite { row: 3, col: 1, .. })
        ));
        let empty = Array2::<f32>::zeros((0, 2));
        assert!(matches!(
            KMeans::new(1).fit(empty.view()),
            Err(ClusterError::EmptyInput { .. })
        ));
        let mut km = KMeans::new(2);
        km.tol = -1.0;
        assert!(km.fit(x.view()).is_err());
    }

    #[test]
    fn identical_points_give_one_cluster_and_zero_inertia() {
        let x = array![[1.0f32, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0]];
        let r = KMeans::new(3).fit(x.view()).unwrap();
        assert_eq!(r.inertia, Some(0.0));
        assert!(r.n_clusters >= 1);
        assert!(r.labels.iter().all(|&l| (0..3).contains(&l)));
    }
}
