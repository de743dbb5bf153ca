//! Mini-batch k-means (Sculley 2010), after scikit-learn's `MiniBatchKMeans`.
//!
//! For data too large for Lloyd's full passes to be cheap: each step draws `batch_size` samples
//! (with replacement), assigns them to their nearest centre and moves each centre towards its new
//! members with a per-centre learning rate of 1 / (samples it has seen). As in scikit-learn:
//! k-means++ on a random `init_size` sample, `max_iter` passes' worth of steps, centres that have
//! seen under `reassignment_ratio` of the busiest centre's samples are moved to random batch
//! samples, and the run stops early once the smoothed batch inertia has not improved for
//! `max_no_improvement` steps. The labels and inertia returned are those of the final centres
//! over all samples.
//!
//! The random streams are ChaCha, not NumPy's, so the centres differ from scikit-learn's run for
//! run; what is compared is the inertia (`tests/parity.rs`: within 1% of scikit-learn's mean over
//! five seeds).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::{checked_f64, Element};
use crate::error::{ClusterError, Result};
use crate::kmeans::{invalid, kmeans_plusplus, nearest_two, random_init, CentersT, KMeansInit};
use crate::result::Clustering;

/// Mini-batch k-means parameters. Build with [`MiniBatchKMeans::new`] and adjust the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct MiniBatchKMeans {
    /// Number of clusters `k` (>= 1, <= number of samples).
    pub n_clusters: usize,
    /// Samples per step (>= 1). Default 1024, scikit-learn's.
    pub batch_size: usize,
    /// Passes over the data, counted in steps of `batch_size` (>= 1). Default 100.
    pub max_iter: usize,
    /// Samples the k-means++ initialisation runs on; default `3 * batch_size` (at least
    /// `3 * n_clusters`, at most N).
    pub init_size: Option<usize>,
    /// Stop after this many steps without an improvement of the smoothed batch inertia
    /// (>= 1). Default 10.
    pub max_no_improvement: usize,
    /// Centres that have seen fewer than this fraction of the busiest centre's samples are
    /// moved to random samples of the batch (>= 0). Default 0.01.
    pub reassignment_ratio: f64,
    /// Seed; the same seed gives the same result on any thread count.
    pub seed: u64,
    /// k-means++ (default, scikit-learn's) or `k` distinct random samples of the init sample
    /// (scikit-learn's `init="random"`; much cheaper for thousands of centres).
    pub init: KMeansInit,
}

impl MiniBatchKMeans {
    /// Mini-batch k-means with scikit-learn's defaults.
    pub fn new(n_clusters: usize) -> Self {
        Self {
            n_clusters,
            batch_size: 1024,
            max_iter: 100,
            init_size: None,
            max_no_improvement: 10,
            reassignment_ratio: 0.01,
            seed: 0,
            init: KMeansInit::KMeansPlusPlus,
        }
    }

    /// Checks the parameters that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        if self.n_clusters == 0 {
            return Err(invalid("n_clusters", self.n_clusters, "must be >= 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", self.batch_size, "must be >= 1"));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", self.max_iter, "must be >= 1"));
        }
        if self.max_no_improvement == 0 {
            return Err(invalid(
                "max_no_improvement",
                self.max_no_improvement,
                "must be >= 1",
            ));
        }
        if self.init_size == Some(0) {
            return Err(invalid("init_size", 0, "must be >= 1"));
        }
        if !(self.reassignment_ratio >= 0.0 && self.reassignment_ratio.is_finite()) {
            return Err(invalid(
                "reassignment_ratio",
                self.reassignment_ratio,
                "must be a finite number >= 0",
            ));
        }
        Ok(())
    }

    /// Clusters the rows of `x` (samples x features).
    ///
    /// Errors: invalid parameters, empty or non-finite input, `n_clusters` > samples.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        let mut x = checked_f64(x)?;
        let (n, d) = x.dim();
        let k = self.n_clusters;
        if k > n {
            return Err(ClusterError::TooManyClusters {
                n_clusters: k,
                n_samples: n,
            });
        }
        // Centred, as in [`crate::KMeans`], for precise squared distances.
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d)); // n >= 1, so never None
        x -= &mean;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // `x` (from `checked_f64`) and `centers` (from `kmeans_plusplus`) are fresh owned arrays in
        // standard layout, so `as_slice()` on them and on their rows always succeeds; the
        // `unwrap_or(&[])` below cannot fire.

        let batch = self.batch_size.min(n);
        let init_size = self.init_size.unwrap_or(3 * batch).max(3 * k).min(n).max(k);
        let init_idx: Vec<usize> = (0..init_size).map(|_| rng.random_range(0..n)).collect();
        let sample = x.select(Axis(0), &init_idx);
        let mut centers = match self.init {
            KMeansInit::KMeansPlusPlus => {
                let norms: Vec<f64> = sample.outer_iter().map(|r| r.dot(&r)).collect();
                kmeans_plusplus(&sample, &norms, k, &mut rng)
            }
            KMeansInit::Random => random_init(&sample, k, &mut rng),
        };

        let mut weight_sums = vec![0.0f64; k];
        let n_steps = (self.max_iter * n).div_ceil(batch);
        let alpha = (2.0 * batch as f64 / (n as f64 + 1.0)).min(1.0);
        let (mut ewa, mut ewa_min, mut no_improvement) = (None::<f64>, f64::INFINITY, 0usize);
        let mut since_reassign = 0usize;
        let mut steps = 0usize;
        let mut converged = false;
        let mut idx = vec![0usize; batch];
        let mut labels = vec![0usize; batch];
        let mut sums = Array2::<f64>::zeros((k, d));
        let mut counts = vec![0usize; k];
        for step in 0..n_steps {
            steps = step + 1;
            for i in idx.iter_mut() {
                *i = rng.random_range(0..n);
            }
            let ct = CentersT::new(centers.as_slice().unwrap_or(&[]), k, d);
            // The batch is assigned to the centres from before the update, as scikit-learn does.
            let dists: Vec<(usize, f64)> = idx
                .par_iter()
                .map(|&i| {
                    let row = x.row(i);
                    let xi = row.as_slice().unwrap_or(&[]);
                    let (label, nearest, _) = nearest_two(xi, &ct);
                    (label, nearest * nearest)
                })
                .collect();
            sums.fill(0.0);
            counts.fill(0);
            let mut batch_inertia = 0.0;
            for (j, (&i, &(label, dist))) in idx.iter().zip(&dists).enumerate() {
                labels[j] = label;
                batch_inertia += dist;
                counts[label] += 1;
                let mut s = sums.row_mut(label);
                s += &x.row(i);
            }
            for c in 0..k {
                if counts[c] == 0 {
                    continue;
                }
                let seen = weight_sums[c];
                let total = seen + counts[c] as f64;
                let mut centre = centers.row_mut(c);
                centre.mapv_inplace(|v| v * seen);
                centre += &sums.row(c);
                centre.mapv_inplace(|v| v / total);
                weight_sums[c] = total;
            }
            // Centres that see almost nothing are moved to random batch samples, no more often
            // than once per (10 k) samples, as in scikit-learn.
            since_reassign += batch;
            if self.reassignment_ratio > 0.0 && since_reassign >= 10 * k {
                since_reassign = 0;
                self.reassign(&x, &idx, &mut centers, &mut weight_sums, &mut rng);
            }
            // Early stopping on the exponentially weighted batch inertia; the first step is
            // skipped, its centres being the initial ones.
            if step == 0 {
                continue;
            }
            let per_sample = batch_inertia / batch as f64;
            let smoothed = match ewa {
                None => per_sample,
                Some(prev) => prev * (1.0 - alpha) + per_sample * alpha,
            };
            ewa = Some(smoothed);
            if smoothed < ewa_min {
                ewa_min = smoothed;
                no_improvement = 0;
            } else {
                no_improvement += 1;
            }
            if no_improvement >= self.max_no_improvement {
                converged = true;
                break;
            }
        }

        // Final labels and inertia over every sample.
        let ct = CentersT::new(centers.as_slice().unwrap_or(&[]), k, d);
        let assigned: Vec<(usize, f64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let row = x.row(i);
                let (label, nearest, _) = nearest_two(row.as_slice().unwrap_or(&[]), &ct);
                (label, nearest * nearest)
            })
            .collect();
        let inertia = assigned.iter().map(|a| a.1).sum();
        let mut sizes = vec![0usize; k];
        for a in &assigned {
            sizes[a.0] += 1;
        }
        centers += &mean;
        Ok(Clustering {
            method: "minibatch-kmeans",
            labels: assigned.iter().map(|a| a.0 as i64).collect(),
            n_clusters: sizes.iter().filter(|&&c| c > 0).count(),
            iterations: Some(steps),
            converged: Some(converged),
            inertia: Some(inertia),
            centroids: Some(centers),
            exemplars: None,
            linkage: None,
            micro_clusters: None,
            micro_assignment: None,
            knn_graph: None,
        })
    }

    /// scikit-learn's random reassignment: centres whose seen-sample count is below
    /// `reassignment_ratio` times the largest move to distinct random batch samples (at most
    /// half a batch of them, the least-seen first), and take the smallest count among the others.
    fn reassign(
        &self,
        x: &Array2<f64>,
        batch: &[usize],
        centers: &mut Array2<f64>,
        weight_sums: &mut [f64],
        rng: &mut ChaCha8Rng,
    ) {
        let max = weight_sums.iter().cloned().fold(0.0, f64::max);
        let limit = self.reassignment_ratio * max;
        let mut low: Vec<usize> = (0..weight_sums.len())
            .filter(|&c| weight_sums[c] < limit)
            .collect();
        if low.is_empty() {
            return;
        }
        let most = (batch.len() / 2).max(1);
        if low.len() > most {
            low.sort_by(|&a, &b| weight_sums[a].total_cmp(&weight_sums[b]).then(a.cmp(&b)));
            low.truncate(most);
        }
        // Distinct batch positions by a partial Fisher-Yates shuffle.
        let mut pos: Vec<usize> = (0..batch.len()).collect();
        for j in 0..low.len().min(pos.len()) {
            let r = rng.random_range(j..pos.len());
            pos.swap(j, r);
        }
        let floor = (0..weight_sums.len())
            .filter(|c| !low.contains(c))
            .map(|c| weight_sums[c])
            .fold(f64::INFINITY, f64::min);
        for (&c, &p) in low.iter().zip(&pos) {
            centers.row_mut(c).assign(&x.row(batch[p]));
            weight_sums[c] = if floor.is_finite() { floor } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n_per: usize) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let centres = [[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]];
        let mut x = Array2::zeros((3 * n_per, 2));
        for (i, mut row) in x.outer_iter_mut().enumerate() {
            let c = centres[i % 3];
            row[0] = c[0] + rng.random::<f64>() - 0.5;
            row[1] = c[1] + rng.random::<f64>() - 0.5;
        }
        x
    }

    #[test]
    fn finds_three_blobs_and_is_deterministic() {
        let x = blobs(2000);
        let mut m = MiniBatchKMeans::new(3);
        m.batch_size = 256;
        let a = m.fit(x.view()).unwrap();
        let b = m.fit(x.view()).unwrap();
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.n_clusters, 3);
        for i in 0..x.nrows() {
            assert_eq!(a.labels[i], a.labels[i % 3], "sample {i}");
        }
        // Uniform noise of width 1 in 2-D: variance 1/12 per axis.
        let per_sample = a.inertia.unwrap() / x.nrows() as f64;
        assert!((per_sample - 2.0 / 12.0).abs() < 0.01, "{per_sample}");
    }

    #[test]
    fn bad_parameters_and_input() {
        let x = blobs(10);
        for (m, name) in [
            (MiniBatchKMeans::new(0), "n_clusters"),
            (
                MiniBatchKMeans {
                    batch_size: 0,
                    ..MiniBatchKMeans::new(2)
                },
                "batch_size",
            ),
            (
                MiniBatchKMeans {
                    reassignment_ratio: f64::NAN,
                    ..MiniBatchKMeans::new(2)
                },
                "reassignment_ratio",
            ),
        ] {
            let err = m.fit(x.view()).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        assert!(matches!(
            MiniBatchKMeans::new(31).fit(x.view()),
            Err(ClusterError::TooManyClusters { .. })
        ));
    }

    #[test]
    fn identical_points_are_one_cluster() {
        let x = Array2::from_elem((50, 3), 1.5);
        let r = MiniBatchKMeans::new(2).fit(x.view()).unwrap();
        assert_eq!(r.inertia, Some(0.0));
        assert!(r.labels.iter().all(|&l| l == r.labels[0]));
    }
}
