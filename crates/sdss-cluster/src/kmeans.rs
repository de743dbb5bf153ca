//! k-means: k-means++ seeding, Lloyd iterations, `n_init` restarts keeping the lowest inertia.
//!
//! Follows scikit-learn's `KMeans(algorithm="lloyd")`: greedy k-means++ with
//! `2 + ln k` local trials, tolerance relative to the mean feature variance, strict
//! convergence when labels stop changing, empty clusters relocated to the samples farthest
//! from their centroids, and a final assignment step so labels match the returned centroids.
//!
//! The Lloyd iterations use Hamerly's (2010) bounds: a sample whose distance bounds prove it
//! cannot have changed cluster skips the k distance computations, and the per-cluster sums are
//! updated only for the samples that moved. The labels are exactly Lloyd's; on the 6437 SDSS
//! images (PCA 250, k = 10) most samples skip after the first few iterations.

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
        let x_norms: Vec<f64> = x.outer_iter().map(|r| r.dot(&r)).collect();

        // Restarts run in parallel; each has its own random stream so the result does not
        // depend on the number of threads.
        let runs: Vec<Run> = (0..self.n_init)
            .into_par_iter()
            .map(|run| {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(run as u64);
                let centers = match self.init {
                    KMeansInit::KMeansPlusPlus => {
                        kmeans_plusplus(&x, &x_norms, self.n_clusters, &mut rng)
                    }
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
            micro_clusters: None,
            micro_assignment: None,
            knn_graph: None,
        })
    }
}

pub(crate) fn invalid(name: &'static str, value: impl ToString, reason: &str) -> ClusterError {
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

/// Squared Euclidean distance between two equally long slices.
///
/// Summed in sixteen independent lanes so the loop vectorises (one running sum is a single
/// long chain of dependent additions).
#[inline]
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    const LANES: usize = 16;
    let mut acc = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += (x - y) * (x - y);
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

/// scikit-learn's greedy k-means++ (`_kmeans_plusplus`).
///
/// As in scikit-learn, the distances from all samples to the candidate centres come from the
/// Gram trick (`|x|^2 + |c|^2 - 2 x.c`, one matrix product for all candidates of a round,
/// clipped at zero): the seeding only needs them to weigh the next draw.
pub(crate) fn kmeans_plusplus(
    x: &Array2<f64>,
    x_norms: &[f64],
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Array2<f64> {
    let (n, d) = x.dim();
    let mut centers = Array2::zeros((k, d));
    let n_local_trials = 2 + (k as f64).ln() as usize;
    // Squared distances from every sample to each of `cands` (n x cands.len(), row-major).
    let dists_to = |cands: &[usize]| -> Array2<f64> {
        let c = x.select(Axis(0), cands);
        let mut g = x.dot(&c.t());
        for (i, mut row) in g.outer_iter_mut().enumerate() {
            for (t, v) in row.iter_mut().enumerate() {
                *v = (x_norms[i] + x_norms[cands[t]] - 2.0 * *v).max(0.0);
            }
        }
        g
    };
    let first = rng.random_range(0..n);
    centers.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = dists_to(&[first]).column(0).to_vec();
    let mut pot: f64 = closest.iter().sum();
    let mut cumsum = Vec::with_capacity(n);
    for c in 1..k {
        cumsum.clear();
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
        let cand_dists = dists_to(&candidates);
        let mut best: Option<(f64, usize)> = None;
        for t in 0..candidates.len() {
            let p: f64 = cand_dists
                .column(t)
                .iter()
                .zip(&closest)
                .map(|(&a, &b)| a.min(b))
                .sum();
            if best.is_none_or(|b| p < b.0) {
                best = Some((p, t));
            }
        }
        if let Some((p, t)) = best {
            pot = p;
            for (cl, &v) in closest.iter_mut().zip(cand_dists.column(t)) {
                *cl = cl.min(v);
            }
            centers.row_mut(c).assign(&x.row(candidates[t]));
        }
    }
    centers
}

/// `k` distinct samples chosen uniformly (partial Fisher-Yates).
pub(crate) fn random_init(x: &Array2<f64>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let n = x.nrows();
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    x.select(Axis(0), &idx[..k])
}

/// Samples per parallel chunk in the assignment step.
const CHUNK: usize = 512;

/// Per-sample state of Hamerly's algorithm: the assigned centre, an upper bound on the distance
/// to it and a lower bound on the distance to every other centre (Euclidean, not squared).
#[derive(Clone, Copy)]
struct Bounds {
    label: usize,
    upper: f64,
    lower: f64,
}

/// Per-cluster sums of the samples (k x d) and counts, kept in step with the labels.
struct ClusterSums {
    sums: Array2<f64>,
    counts: Vec<usize>,
}

impl ClusterSums {
    /// Sums and counts of the labelled samples, from scratch.
    fn of(x: &Array2<f64>, state: &[Bounds], k: usize) -> Self {
        let mut sums = Array2::zeros((k, x.ncols()));
        let mut counts = vec![0usize; k];
        for (row, b) in x.outer_iter().zip(state) {
            let mut s = sums.row_mut(b.label);
            s += &row;
            counts[b.label] += 1;
        }
        Self { sums, counts }
    }

    /// Applies the moves of one assignment step, in sample order (deterministic): far cheaper
    /// than re-summing every sample once few samples change cluster.
    fn apply(&mut self, x: &Array2<f64>, moves: &[(usize, usize, usize)]) {
        for &(i, from, to) in moves {
            let row = x.row(i);
            let mut s = self.sums.row_mut(from);
            s -= &row;
            let mut s = self.sums.row_mut(to);
            s += &row;
            self.counts[from] -= 1;
            self.counts[to] += 1;
        }
    }
}

/// Centres feature-major (`t[f * padded + j]`), padded to whole 8-centre blocks, so one
/// sample's distances to all centres vectorise across centres.
pub(crate) struct CentersT {
    t: Vec<f64>,
    padded: usize,
    k: usize,
}

const CENTER_LANES: usize = 8;

impl CentersT {
    pub(crate) fn new(cs: &[f64], k: usize, d: usize) -> Self {
        let padded = k.div_ceil(CENTER_LANES) * CENTER_LANES;
        let mut t = vec![0.0; padded * d];
        for (j, c) in cs.chunks_exact(d.max(1)).enumerate() {
            for (f, &v) in c.iter().enumerate() {
                t[f * padded + j] = v;
            }
        }
        Self { t, padded, k }
    }
}

/// Exact nearest and second-nearest centre of `xi`: `(label, nearest, second)` distances.
/// Ties go to the lowest centre index, as in a plain argmin.
pub(crate) fn nearest_two(xi: &[f64], ct: &CentersT) -> (usize, f64, f64) {
    let (mut best, mut first, mut second) = (0usize, f64::INFINITY, f64::INFINITY);
    for block in (0..ct.padded).step_by(CENTER_LANES) {
        let mut acc = [0.0f64; CENTER_LANES];
        for (f, &xf) in xi.iter().enumerate() {
            let row = &ct.t[f * ct.padded + block..f * ct.padded + block + CENTER_LANES];
            for l in 0..CENTER_LANES {
                let t = xf - row[l];
                acc[l] += t * t;
            }
        }
        for (l, &dist) in acc.iter().enumerate().take(ct.k - block.min(ct.k)) {
            if dist < first {
                second = first;
                first = dist;
                best = block + l;
            } else if dist < second {
                second = dist;
            }
        }
    }
    (best, first.sqrt(), second.sqrt())
}

/// One assignment step of Hamerly's algorithm over all samples, in fixed parallel chunks;
/// returns the samples that changed cluster, in sample order.
///
/// A sample whose upper bound is below both its lower bound and half the distance from its
/// centre to the nearest other centre cannot have changed cluster, so most samples skip the
/// k distance computations after the first few iterations; the labels are exactly Lloyd's.
/// With `exact`, every sample is compared with every centre and the bounds are reset.
fn assign(
    x: &Array2<f64>,
    centers: &Array2<f64>,
    half_gap: &[f64],
    state: &mut [Bounds],
    exact: bool,
) -> Vec<(usize, usize, usize)> {
    let d = x.ncols();
    let xs = x.as_slice().unwrap_or(&[]); // standard layout, see `checked_f64`
    let cs = centers.as_standard_layout();
    let cs = cs.as_slice().unwrap_or(&[]); // just made standard layout
    let ct = CentersT::new(cs, centers.nrows(), d);

    // Per chunk, the samples that changed cluster as `(sample, from, to)`.
    let parts: Vec<Vec<(usize, usize, usize)>> = state
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut moves = Vec::new();
            for (off, b) in chunk.iter_mut().enumerate() {
                let i = c * CHUNK + off;
                let xi = &xs[i * d..(i + 1) * d];
                let old = b.label;
                if exact {
                    let (label, up, low) = nearest_two(xi, &ct);
                    *b = Bounds {
                        label,
                        upper: up,
                        lower: low,
                    };
                } else {
                    let bound = half_gap[old].max(b.lower);
                    if b.upper > bound {
                        b.upper = sq_dist(xi, &cs[old * d..(old + 1) * d]).sqrt();
                        if b.upper > bound {
                            let (label, up, low) = nearest_two(xi, &ct);
                            *b = Bounds {
                                label,
                                upper: up,
                                lower: low,
                            };
                        }
                    }
                }
                if b.label != old {
                    moves.push((i, old, b.label));
                }
            }
            moves
        })
        .collect();
    parts.concat()
}

/// Half the distance from each centre to its nearest other centre (`s(j)` in Hamerly's paper).
fn half_gaps(centers: &Array2<f64>) -> Vec<f64> {
    let k = centers.nrows();
    let rows: Vec<Vec<f64>> = centers.outer_iter().map(|r| r.to_vec()).collect();
    (0..k)
        .map(|j| {
            let nearest = (0..k)
                .filter(|&o| o != j)
                .map(|o| sq_dist(&rows[j], &rows[o]))
                .fold(f64::INFINITY, f64::min);
            0.5 * nearest.sqrt()
        })
        .collect()
}

/// Lloyd iterations from `centers` until labels stop changing, the squared centre shift is
/// `<= tol`, or `max_iter`; the assignment steps use Hamerly's bounds (same result, fewer
/// distances).
fn lloyd(x: &Array2<f64>, mut centers: Array2<f64>, max_iter: usize, tol: f64) -> Run {
    let (n, d) = x.dim();
    let k = centers.nrows();
    let mut state = vec![
        Bounds {
            label: 0,
            upper: 0.0,
            lower: 0.0,
        };
        n
    ];
    let mut half_gap = half_gaps(&centers);
    // The first step compares every sample with every centre and sums from scratch.
    assign(x, &centers, &half_gap, &mut state, true);
    let mut cluster_sums = ClusterSums::of(x, &state, k);
    let mut converged = false;
    let mut iterations = 0;
    for it in 0..max_iter {
        iterations = it + 1;
        let mut changed = 0;
        if it > 0 {
            let moves = assign(x, &centers, &half_gap, &mut state, false);
            changed = moves.len();
            cluster_sums.apply(x, &moves);
        }
        let mut new_centers = cluster_sums.sums.clone();
        let mut counts = cluster_sums.counts.clone();
        // Empty clusters take the samples farthest from their centres (as scikit-learn).
        let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
        if !empty.is_empty() {
            let xs = x.as_slice().unwrap_or(&[]); // standard layout
            let dists: Vec<f64> = state
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let c = centers.row(b.label);
                    let c = c.as_slice().unwrap_or(&[]); // rows of a standard-layout array
                    sq_dist(&xs[i * d..(i + 1) * d], c)
                })
                .collect();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]));
            for (&j, &far) in empty.iter().zip(order.iter()) {
                let old = state[far].label;
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
        // How far each centre moved: the bounds follow by the triangle inequality.
        let moved: Vec<f64> = new_centers
            .outer_iter()
            .zip(centers.outer_iter())
            .map(|(a, b)| {
                a.iter()
                    .zip(b.iter())
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f64>()
            })
            .collect();
        let shift: f64 = moved.iter().sum();
        let moved: Vec<f64> = moved.into_iter().map(f64::sqrt).collect();
        centers = new_centers;
        // Lloyd's labels-unchanged test: nothing moved in this step (the first step has no
        // previous labels to compare with).
        if it > 0 && changed == 0 {
            converged = true;
            break;
        }
        if shift <= tol {
            converged = true;
            break;
        }
        let (mut top, mut top_j, mut runner_up) = (0.0f64, usize::MAX, 0.0f64);
        for (j, &m) in moved.iter().enumerate() {
            if m > top {
                runner_up = top;
                top = m;
                top_j = j;
            } else if m > runner_up {
                runner_up = m;
            }
        }
        for b in state.iter_mut() {
            b.upper += moved[b.label];
            b.lower -= if b.label == top_j { runner_up } else { top };
        }
        half_gap = half_gaps(&centers);
    }
    // Final assignment so labels and inertia match the returned centres (exact: every sample
    // against every centre, no bounds).
    assign(x, &centers, &half_gap, &mut state, true);
    let xs = x.as_slice().unwrap_or(&[]); // standard layout
    let cs = centers.as_standard_layout();
    let cs = cs.as_slice().unwrap_or(&[]); // just made standard layout
    let inertia: f64 = state
        .iter()
        .enumerate()
        .map(|(i, b)| sq_dist(&xs[i * d..(i + 1) * d], &cs[b.label * d..(b.label + 1) * d]))
        .sum();
    Run {
        labels: state.iter().map(|b| b.label).collect(),
        inertia,
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

    /// Plain Lloyd (every distance every iteration), the reference for Hamerly's bounds.
    /// `iters` assignment + update steps, then the final assignment.
    fn plain_lloyd(x: &Array2<f64>, mut centers: Array2<f64>, iters: usize) -> Vec<usize> {
        let nearest = |centers: &Array2<f64>, i: usize| {
            let xi = x.row(i).to_vec();
            (0..centers.nrows())
                .map(|j| (sq_dist(&xi, &centers.row(j).to_vec()), j))
                .fold((f64::INFINITY, 0), |a, b| if b.0 < a.0 { b } else { a })
                .1
        };
        let mut labels = vec![0; x.nrows()];
        for _ in 0..iters {
            for (i, l) in labels.iter_mut().enumerate() {
                *l = nearest(&centers, i);
            }
            for j in 0..centers.nrows() {
                let members: Vec<usize> = (0..x.nrows()).filter(|&i| labels[i] == j).collect();
                if !members.is_empty() {
                    let mean = x.select(Axis(0), &members).mean_axis(Axis(0)).unwrap();
                    centers.row_mut(j).assign(&mean);
                }
            }
        }
        (0..x.nrows()).map(|i| nearest(&centers, i)).collect()
    }

    #[test]
    fn hamerly_bounds_give_lloyds_labels() {
        // Overlapping clouds in 7-d: many samples change cluster over the iterations, so
        // the bounds are exercised; every iteration must agree with plain Lloyd's.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 1500;
        let x = Array2::from_shape_fn((n, 7), |(i, c)| {
            (i % 5) as f64 * 0.6 * ((c % 3) as f64 - 1.0) + rng.random::<f64>() * 2.0
        });
        for k in [1, 2, 8, 25] {
            let init = x.select(Axis(0), &(0..k).map(|j| j * 37).collect::<Vec<_>>());
            for iters in [1, 2, 5, 30] {
                let run = lloyd(&x, init.clone(), iters, 0.0);
                let want = plain_lloyd(&x, init.clone(), run.iterations);
                assert_eq!(run.labels, want, "k = {k}, {iters} iterations");
            }
        }
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
