//! Affinity propagation with scikit-learn's semantics, in `f32` with in-place updates.
//!
//! Matches `sklearn.cluster.AffinityPropagation(affinity="euclidean")`: similarity is the
//! negative squared Euclidean distance (Gram trick in `f64`, stored as `f32` like scikit-learn
//! does for `float32` input), preference defaults to the median similarity, the diagonal gets
//! the preference, and tie-breaking noise
//! `S += (eps * S + tiny * 100) * RandomState(seed).standard_normal((n, n))`
//! is drawn from the same MT19937 stream as NumPy's, so ties break identically. The update
//! order, the convergence test (exemplar set unchanged for `convergence_iter` rounds) and the
//! final exemplar refinement are scikit-learn's.
//!
//! Memory: three `n x n` `f32` matrices (similarity, responsibility, availability) updated in
//! place, 12 n^2 bytes in all: 0.46 GiB at n = 6437 (scikit-learn keeps three `f64` matrices
//! and a `f32` one, about 1.2 GiB). The largest n that fits 24 GiB is about 44 000 (12 n^2 =
//! 21.6 GiB, leaving room for the rest of the process and the system). Messages are kept in
//! `f32` (scikit-learn: `f64`) but every update is computed in `f64` before rounding.

use ndarray::{s, ArrayView2};
use rayon::prelude::*;

use crate::data::{checked_f64, row_sq_norms, Element};
use crate::error::{ClusterError, Result};
use crate::numpy_rng::LegacyRandomState;
use crate::result::Clustering;

/// Affinity propagation parameters. Build with [`AffinityPropagation::new`] (scikit-learn's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityPropagation {
    /// Damping factor in `[0.5, 1)`: how much of the previous message is kept. Default 0.5.
    pub damping: f64,
    /// Maximum message-passing rounds (>= 1). Default 200.
    pub max_iter: usize,
    /// Rounds with an unchanged exemplar set that count as convergence (>= 1). Default 15.
    pub convergence_iter: usize,
    /// Self-similarity of every sample; `None` uses the median similarity. Larger gives more clusters.
    pub preference: Option<f64>,
    /// Seed of the tie-breaking noise (`random_state` in scikit-learn). Default 0.
    pub seed: u32,
}

impl Default for AffinityPropagation {
    fn default() -> Self {
        Self::new()
    }
}

impl AffinityPropagation {
    /// scikit-learn's defaults: damping 0.5, `max_iter` 200, `convergence_iter` 15, median preference, seed 0.
    pub fn new() -> Self {
        Self {
            damping: 0.5,
            max_iter: 200,
            convergence_iter: 15,
            preference: None,
            seed: 0,
        }
    }

    /// Checks the parameters that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        if !(self.damping >= 0.5 && self.damping < 1.0) {
            return Err(invalid("damping", self.damping, "must be in [0.5, 1)"));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", self.max_iter, "must be >= 1"));
        }
        if self.convergence_iter == 0 {
            return Err(invalid(
                "convergence_iter",
                self.convergence_iter,
                "must be >= 1",
            ));
        }
        if let Some(p) = self.preference {
            if !p.is_finite() {
                return Err(invalid("preference", p, "must be finite"));
            }
        }
        Ok(())
    }

    /// Clusters the rows of `x` (samples x features).
    ///
    /// The result has `exemplars` (sample index per cluster, ascending), `iterations` and
    /// `converged`. An unconverged run is reported with `converged: Some(false)` (and a
    /// warning in the log); if it found no exemplar at all every label is `-1` and
    /// `n_clusters` is 0, as in scikit-learn.
    ///
    /// When all samples are identical (all similarities equal, preference equal), scikit-learn's
    /// rule applies: if the preference exceeds the similarity every sample is its own cluster,
    /// otherwise one cluster with exemplar 0; `iterations` is 0 and `converged` true.
    ///
    /// Errors: invalid parameters, empty or non-finite input, or [`ClusterError::OutOfMemory`]
    /// when the three `n x n` matrices cannot be allocated.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        let x = checked_f64(x)?;
        let n = x.nrows();
        let nn = n.checked_mul(n).ok_or(ClusterError::OutOfMemory {
            what: "similarity matrix",
            bytes: usize::MAX,
            n_samples: n,
        })?;

        let mut s = alloc(nn, n, "similarity matrix")?;
        similarities(&x, &mut s);
        drop(x);

        let preference = match self.preference {
            Some(p) => p as f32,
            None => median(&s, n)?,
        };

        if n == 1 || all_off_diagonal_equal(&s, n) {
            // scikit-learn compares the preference with S.flat[n - 1] (S[0, n-1], or S[0, 0] when n = 1).
            let each_own = preference > s[n - 1];
            let (labels, exemplars): (Vec<i64>, Vec<usize>) = if each_own {
                ((0..n as i64).collect(), (0..n).collect())
            } else {
                (vec![0; n], vec![0])
            };
            tracing::warn!("affinity propagation: all samples have equal similarities; returning arbitrary exemplars");
            return Ok(Clustering {
                method: "affinity-propagation",
                n_clusters: exemplars.len(),
                labels: labels.into(),
                iterations: Some(0),
                converged: Some(true),
                inertia: None,
                centroids: None,
                exemplars: Some(exemplars),
                linkage: None,
            });
        }

        for i in 0..n {
            s[i * n + i] = preference;
        }
        add_tie_breaking_noise(&mut s, self.seed);

        let mut a = alloc(nn, n, "availability matrix")?;
        let mut r = alloc(nn, n, "responsibility matrix")?;
        let run = iterate(&s, &mut a, &mut r, n, self);
        drop(a);
        drop(r);

        let (labels, exemplars) = assign_labels(&s, n, &run.exemplar_mask);
        if !run.converged {
            tracing::warn!(
                iterations = run.iterations,
                "affinity propagation did not converge; labels may be degenerate"
            );
        }
        Ok(Clustering {
            method: "affinity-propagation",
            n_clusters: exemplars.len(),
            labels: labels.into(),
            iterations: Some(run.iterations),
            converged: Some(run.converged),
            inertia: None,
            centroids: None,
            exemplars: Some(exemplars),
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

/// A zeroed `f32` buffer of `len` elements, or a typed error instead of an abort.
fn alloc(len: usize, n: usize, what: &'static str) -> Result<Vec<f32>> {
    let bytes = len.saturating_mul(4);
    let mut v: Vec<f32> = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| ClusterError::OutOfMemory {
            what,
            bytes,
            n_samples: n,
        })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// `S = -max(0, |x_i|^2 + |x_j|^2 - 2 x_i.x_j)` computed in `f64` blocks and stored as `f32`,
/// in scikit-learn's operation order (`(-2 g + |x_i|^2) + |x_j|^2`), with a zero diagonal.
fn similarities(x: &ndarray::Array2<f64>, s: &mut [f32]) {
    let n = x.nrows();
    let norms = row_sq_norms(x);
    const BLOCK: usize = 64;
    s.par_chunks_mut(BLOCK * n)
        .enumerate()
        .for_each(|(b, chunk)| {
            let start = b * BLOCK;
            let end = (start + BLOCK).min(n);
            let g = x.slice(s![start..end, ..]).dot(&x.t());
            for (bi, row) in chunk.chunks_mut(n).enumerate() {
                let i = start + bi;
                let gi = g.row(bi);
                for (j, out) in row.iter_mut().enumerate() {
                    let d = ((-2.0 * gi[j] + norms[i]) + norms[j]) as f32;
                    *out = -d.max(0.0);
                }
                row[i] = 0.0;
            }
        });
}

/// `numpy.median` of all `n^2` entries (including the diagonal), in `f32` like NumPy on a `float32` array.
fn median(s: &[f32], n: usize) -> Result<f32> {
    let mut copy = Vec::new();
    copy.try_reserve_exact(s.len())
        .map_err(|_| ClusterError::OutOfMemory {
            what: "median buffer",
            bytes: s.len() * 4,
            n_samples: n,
        })?;
    copy.extend_from_slice(s);
    let len = copy.len();
    let mid = len / 2;
    let (_, &mut upper, _) = copy.select_nth_unstable_by(mid, f32::total_cmp);
    if len % 2 == 1 {
        return Ok(upper);
    }
    // Even count: mean of the two middle values; the lower one is the maximum of the left part.
    let lower = copy[..mid]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    Ok((lower + upper) / 2.0)
}

fn all_off_diagonal_equal(s: &[f32], n: usize) -> bool {
    let first = s[1]; // n >= 2 here
    s.par_chunks(n)
        .enumerate()
        .all(|(i, row)| row.iter().enumerate().all(|(j, &v)| j == i || v == first))
}

/// scikit-learn's `S += (eps * S + tiny * 100) * random_state.standard_normal((n, n))` on a
/// `float32` S: the coefficient in `f32`, the product and sum in `f64`, rounded back to `f32`.
fn add_tie_breaking_noise(s: &mut [f32], seed: u32) {
    let mut rng = LegacyRandomState::new(seed);
    let tiny100 = f32::MIN_POSITIVE * 100.0;
    for v in s.iter_mut() {
        let coef = f32::EPSILON * *v + tiny100;
        *v = (f64::from(*v) + f64::from(coef) * rng.standard_normal()) as f32;
    }
}

struct Run {
    iterations: usize,
    converged: bool,
    exemplar_mask: Vec<bool>,
}

/// Rows per block: the blocks are fixed so that the column sums, reduced in block order, do
/// not depend on the number of threads.
fn block_rows(n: usize) -> usize {
    n.div_ceil(64).max(1)
}

/// The message passing, fused into one sweep over the rows per round: the availability row
/// of the previous round is finished from the previous column sums, then the responsibility
/// row is updated and its contribution to the new column sums accumulated.
fn iterate(s: &[f32], a: &mut [f32], r: &mut [f32], n: usize, p: &AffinityPropagation) -> Run {
    let damping = p.damping;
    let keep = 1.0 - damping;
    let conv = p.convergence_iter;
    let bs = block_rows(n);
    let mut colsum: Option<Vec<f64>> = None;
    // Ring buffer of the last `convergence_iter` exemplar sets, per sample.
    let mut history = vec![false; n * conv];
    let mut mask = vec![false; n];
    let mut converged = false;
    let mut iterations = 0;

    for it in 0..p.max_iter {
        iterations = it + 1;
        let prev = colsum.as_deref();
        let partials: Vec<Vec<f64>> = s
            .par_chunks(bs * n)
            .zip(a.par_chunks_mut(bs * n))
            .zip(r.par_chunks_mut(bs * n))
            .enumerate()
            .map(|(b, ((sb, ab), rb))| {
                let mut part = vec![0.0f64; n];
                for (ri, ((srow, arow), rrow)) in sb
                    .chunks(n)
                    .zip(ab.chunks_mut(n))
                    .zip(rb.chunks_mut(n))
                    .enumerate()
                {
                    let i = b * bs + ri;
                    if let Some(cs) = prev {
                        update_availability_row(arow, rrow, cs, i, damping, keep);
                    }
                    update_responsibility_row(srow, arow, rrow, i, damping, keep, &mut part);
                }
                part
            })
            .collect();
        let mut cs = vec![0.0f64; n];
        for part in &partials {
            for (c, v) in cs.iter_mut().zip(part) {
                *c += v;
            }
        }
        // Exemplars of this round: diag(A_new) + diag(R_new) > 0, with A_new's diagonal
        // computed exactly as the next sweep will store it.
        let slot = it % conv;
        let mut k = 0;
        for j in 0..n {
            let rjj = r[j * n + j];
            let ajj = availability(a[j * n + j], rjj, cs[j], true, damping, keep);
            let e = f64::from(ajj) + f64::from(rjj) > 0.0;
            mask[j] = e;
            history[j * conv + slot] = e;
            k += usize::from(e);
        }
        colsum = Some(cs);
        if it >= conv {
            let stable = (0..n).all(|j| {
                let h = &history[j * conv..(j + 1) * conv];
                h.iter().all(|&v| v) || h.iter().all(|&v| !v)
            });
            if stable && k > 0 {
                converged = true;
                break;
            }
        }
    }
    Run {
        iterations,
        converged,
        exemplar_mask: mask,
    }
}

/// New availability `a(i,k)` from the old one, `r(i,k)` and the column sum of positive
/// responsibilities (diagonal kept as is): `min(0, colsum - r+)` off the diagonal,
/// `colsum - r(k,k)` on it; damped.
#[inline]
fn availability(a: f32, r: f32, colsum: f64, diag: bool, damping: f64, keep: f64) -> f32 {
    let rp = if diag {
        f64::from(r)
    } else {
        f64::from(r.max(0.0))
    };
    let t = rp - colsum;
    let t = if diag { t } else { t.max(0.0) };
    (f64::from(a) * damping - t * keep) as f32
}

#[inline]
fn update_availability_row(
    arow: &mut [f32],
    rrow: &[f32],
    cs: &[f64],
    i: usize,
    damping: f64,
    keep: f64,
) {
    // Off-diagonal entries in two branch-free (vectorisable) runs, then the diagonal.
    let off = |a: &mut [f32], r: &[f32], c: &[f64]| {
        for ((av, &rv), &cv) in a.iter_mut().zip(r).zip(c) {
            *av = availability(*av, rv, cv, false, damping, keep);
        }
    };
    off(&mut arow[..i], &rrow[..i], &cs[..i]);
    off(&mut arow[i + 1..], &rrow[i + 1..], &cs[i + 1..]);
    arow[i] = availability(arow[i], rrow[i], cs[i], true, damping, keep);
}

#[inline]
fn update_responsibility_row(
    srow: &[f32],
    arow: &[f32],
    rrow: &mut [f32],
    i: usize,
    damping: f64,
    keep: f64,
    part: &mut [f64],
) {
    // Largest and second-largest a + s; ties keep the first index (numpy's argmax).
    let mut best = f64::NEG_INFINITY;
    let mut second = f64::NEG_INFINITY;
    let mut best_k = 0;
    for (k, (&sv, &av)) in srow.iter().zip(arow).enumerate() {
        let v = f64::from(av) + f64::from(sv);
        if v > best {
            second = best;
            best = v;
            best_k = k;
        } else if v > second {
            second = v;
        }
    }
    // Every entry against the best value, in branch-free runs around `best_k`, whose entry
    // uses the second best; positive parts go to the column sums, the diagonal's fixed after.
    let run = |r: &mut [f32], s: &[f32], p: &mut [f64]| {
        for ((rv, &sv), pv) in r.iter_mut().zip(s).zip(p.iter_mut()) {
            let new = (f64::from(*rv) * damping + (f64::from(sv) - best) * keep) as f32;
            *rv = new;
            *pv += f64::from(new.max(0.0));
        }
    };
    run(&mut rrow[..best_k], &srow[..best_k], &mut part[..best_k]);
    run(
        &mut rrow[best_k + 1..],
        &srow[best_k + 1..],
        &mut part[best_k + 1..],
    );
    let new =
        (f64::from(rrow[best_k]) * damping + (f64::from(srow[best_k]) - second) * keep) as f32;
    rrow[best_k] = new;
    part[best_k] += f64::from(new.max(0.0));
    // The diagonal enters the column sum unclipped: add back the clipped-off negative part
    // (exact: either nothing was clipped, or 0 was added and the value is added now).
    let rii = rrow[i];
    if rii < 0.0 {
        part[i] += f64::from(rii);
    }
}

/// scikit-learn's label assignment: nearest exemplar by similarity, then each cluster's
/// exemplar refined to the member with the largest summed similarity to the others, then
/// reassignment; clusters numbered by ascending exemplar index.
fn assign_labels(s: &[f32], n: usize, mask: &[bool]) -> (Vec<i64>, Vec<usize>) {
    let mut ex: Vec<usize> = (0..n).filter(|&k| mask[k]).collect();
    if ex.is_empty() {
        return (vec![-1; n], Vec::new());
    }
    let nearest = |ex: &[usize]| -> Vec<usize> {
        let mut c: Vec<usize> = (0..n)
            .into_par_iter()
            .map(|i| {
                let row = &s[i * n..(i + 1) * n];
                let mut best = (f32::NEG_INFINITY, 0usize);
                for (j, &e) in ex.iter().enumerate() {
                    if row[e] > best.0 {
                        best = (row[e], j);
                    }
                }
                best.1
            })
            .collect();
        for (j, &e) in ex.iter().enumerate() {
            c[e] = j;
        }
        c
    };
    let c = nearest(&ex);
    let k = ex.len();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &ci) in c.iter().enumerate() {
        members[ci].push(i);
    }
    let refined: Vec<usize> = members
        .par_iter()
        .map(|ii| {
            let mut sums = vec![0.0f64; ii.len()];
            for &row_i in ii {
                let row = &s[row_i * n..(row_i + 1) * n];
                for (acc, &col) in sums.iter_mut().zip(ii) {
                    *acc += f64::from(row[col]);
                }
            }
            let mut best = (f64::NEG_INFINITY, 0usize);
            for (j, &v) in sums.iter().enumerate() {
                if v > best.0 {
                    best = (v, j);
                }
            }
            ii[best.1]
        })
        .collect();
    ex = refined;
    let c = nearest(&ex);
    let labels_idx: Vec<usize> = c.iter().map(|&ci| ex[ci]).collect();
    let mut centers = labels_idx.clone();
    centers.sort_unstable();
    centers.dedup();
    let labels = labels_idx
        .iter()
        .map(|e| centers.binary_search(e).unwrap_or(0) as i64) // every label is in `centers`
        .collect();
    (labels, centers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn three_groups() {
        let x = array![
            [0.0, 0.0],
            [0.1, 0.0],
            [0.0, 0.1],
            [5.0, 5.0],
            [5.1, 5.0],
            [5.0, 5.1],
            [-5.0, 5.0],
            [-5.1, 5.0],
            [-5.0, 5.1]
        ];
        let r = AffinityPropagation::new().fit(x.view()).unwrap();
        assert_eq!(r.converged, Some(true));
        assert_eq!(r.n_clusters, 3);
        assert_eq!(r.labels.to_vec(), vec![0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!(r.exemplars.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn damping_out_of_range_is_an_error() {
        let x = array![[0.0f32, 1.0], [1.0, 0.0]];
        for d in [0.49, 1.0, f64::NAN] {
            let mut ap = AffinityPropagation::new();
            ap.damping = d;
            assert!(matches!(
                ap.fit(x.view()),
                Err(ClusterError::InvalidParameter {
                    name: "damping",
                    ..
                })
            ));
        }
    }

    #[test]
    fn identical_points_follow_scikit_learn() {
        let x = Array2::<f32>::ones((5, 3));
        let r = AffinityPropagation::new().fit(x.view()).unwrap();
        assert_eq!(r.labels.to_vec(), vec![0; 5]);
        assert_eq!(r.exemplars, Some(vec![0]));
        let mut ap = AffinityPropagation::new();
        ap.preference = Some(1.0);
        let r = ap.fit(x.view()).unwrap();
        assert_eq!(r.labels.to_vec(), vec![0, 1, 2, 3, 4]);
        let one = Array2::<f64>::zeros((1, 2));
        let r = AffinityPropagation::new().fit(one.view()).unwrap();
        assert_eq!((r.n_clusters, r.labels.to_vec()), (1, vec![0]));
    }

    #[test]
    fn unconverged_run_says_so() {
        let x = array![[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [9.0, 1.0]];
        let mut ap = AffinityPropagation::new();
        ap.max_iter = 3;
        let r = ap.fit(x.view()).unwrap();
        assert_eq!(r.converged, Some(false));
        assert_eq!(r.iterations, Some(3));
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0, 4.0], 2).unwrap(), 2.5);
        assert_eq!(
            median(&[-3.0, 0.0, -1.0, -2.0, 0.0, -5.0, -4.0, 0.0, -6.0], 3).unwrap(),
            -2.0
        );
    }
}
