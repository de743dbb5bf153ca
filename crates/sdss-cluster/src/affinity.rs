//! Affinity propagation with scikit-learn's semantics, storing one `n x n` matrix instead of three.
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
//! The responsibility and availability matrices are not stored: with damping they unroll into
//! `S`, a few per-row and per-column scalars, and sparse per-row corrections (see `iterate`),
//! all in `f64` like scikit-learn's messages. Each row also keeps its 512 largest
//! similarities, which settle almost every row update without reading the row of `S`.
//!
//! Memory: the `f32` similarity matrix (4 n^2 bytes), 4 KiB per sample for the largest
//! similarities, and the corrections (about 3 KiB per sample on the real features): 0.25 GiB
//! peak at n = 6437, against scikit-learn's three `f64` matrices and a `f32` one (1.2 GiB).
//! The largest n that fits 24 GiB is about 70 000 (S alone is 18.3 GiB there). The corrections
//! hold the entries where a responsibility was ever positive; on data where that is most of
//! them they approach 16 n^2 bytes.

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

use crate::data::{checked_f64, row_sq_norms, Element};
use crate::error::{ClusterError, Result};
use crate::numpy_rng::LegacyRandomState;
use crate::result::Clustering;
use crate::scalable::{MicroClusters, ScalableForm, Scale, DEFAULT_AP_MICRO_CLUSTERS};

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
    /// Seed of the tie-breaking noise (`random_state` in scikit-learn), and of the micro-clusters
    /// in the scalable form. Default 0.
    pub seed: u32,
    /// Exact, or on k-means micro-clusters for large n (see [`crate::scalable`]). Default
    /// [`Scale::Auto`]: exact up to [`crate::scalable::EXACT_MAX_SAMPLES`] samples that fit in
    /// memory, else on [`crate::scalable::DEFAULT_AP_MICRO_CLUSTERS`] micro-clusters.
    pub micro_clusters: Scale,
    /// Run on the sparse graph of each sample's `k` nearest neighbours instead
    /// ([`AffinityPropagation::fit_knn`]; exact neighbours up to 20,000 samples, the inverted-file
    /// index above): memory O(n k). `None` (the default): `micro_clusters` decides.
    pub knn: Option<usize>,
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
            micro_clusters: Scale::Auto,
            knn: None,
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
        if self.micro_clusters == Scale::MicroClusters(0) {
            return Err(invalid(
                "micro_clusters",
                0,
                "must be >= 1 (or exact, or auto)",
            ));
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
    /// Above [`crate::scalable::EXACT_MAX_SAMPLES`] samples, or when the `n x n` matrix does not
    /// fit the memory there is, [`Scale::Auto`] runs on k-means micro-clusters instead (announced
    /// in the log; the result's `micro_clusters` says how many).
    ///
    /// Errors: invalid parameters, empty or non-finite input, [`ClusterError::TooLargeForMemory`]
    /// when `micro_clusters=exact` does not fit, or [`ClusterError::OutOfMemory`] when the
    /// similarity matrix cannot be allocated.
    pub fn fit<T: Element>(&self, x: ArrayView2<'_, T>) -> Result<Clustering> {
        self.validate()?;
        if let Some(k) = self.knn {
            return self.fit_on_knn_graph(x, k);
        }
        let x = checked_f64(x)?;
        let n = x.nrows();
        // The f32 similarity matrix (4 n² bytes) dominates; the sparse messages are O(n).
        match self.micro_clusters.resolve(
            &ScalableForm {
                method: "affinity propagation",
                default_m: DEFAULT_AP_MICRO_CLUSTERS,
                micro_bytes_per_pair: 4.0,
                alternative: "micro_clusters=auto or a number (affinity propagation on k-means \
                              micro-clusters), e.g. --method ap:damping=0.8,micro_clusters=5000; \
                              or --method minibatch:k=...",
            },
            n,
            crate::memory::quadratic_bytes(n, 4.0),
            crate::memory::available_bytes(),
        )? {
            None => self.fit_exact(x),
            Some(m) => self.fit_micro(&x, m),
        }
    }

    /// [`AffinityPropagation::fit_knn`] on the graph of each sample's `k` nearest neighbours,
    /// found here.
    fn fit_on_knn_graph<T: Element>(&self, x: ArrayView2<'_, T>, k: usize) -> Result<Clustering> {
        use sdss_neighbors::{ExactIndex, IvfIndex, Metric, NeighborIndex};
        let n = x.nrows();
        if k == 0 {
            return Err(invalid("knn", k, "must be at least 1 neighbour"));
        }
        let k = k.min(n.saturating_sub(1)).max(1);
        // s, r, a (f64) and the target of every edge, and the graph's lists.
        let bytes = (n as u64) * (k as u64 + 1) * 48;
        crate::memory::check_fits(
            "affinity propagation on the k-NN graph",
            bytes,
            n,
            crate::memory::available_bytes(),
            "fewer neighbours (knn=...) or micro_clusters=N",
        )?;
        // The graph is searched in f32 (as the report's neighbours are); the similarities on its
        // edges are then measured on `x` as given.
        let x32: Array2<f32> = checked_f64(x)?.mapv(|v| v as f32);
        let graph_error = |e: sdss_neighbors::NeighborError| ClusterError::InvalidParameter {
            name: "knn",
            value: k.to_string(),
            reason: e.to_string(),
        };
        let graph = if n <= crate::scalable::EXACT_MAX_SAMPLES {
            ExactIndex::new(x32.view(), Metric::Euclidean)
                .and_then(|i| i.knn_graph(k))
                .map_err(graph_error)?
        } else {
            IvfIndex::new(x32.view(), Metric::Euclidean)
                .and_then(|i| i.knn_graph(k))
                .map_err(graph_error)?
        };
        let lists: Vec<Vec<usize>> = (0..n)
            .map(|i| graph.neighbors(i).map(|nb| nb.index).collect())
            .collect();
        drop(graph);
        tracing::info!(n_samples = n, k, "affinity propagation on the {k}-NN graph");
        drop(x32);
        self.fit_knn(x, &lists)
    }

    /// Affinity propagation on `m` weighted k-means micro-clusters, every sample then taking its
    /// micro-cluster's label (see [`crate::scalable`]).
    fn fit_micro(&self, x: &Array2<f64>, m: usize) -> Result<Clustering> {
        let n = x.nrows();
        let micro = MicroClusters::fit(x.view(), m, u64::from(self.seed))?;
        let m = micro.len();
        crate::memory::check_fits(
            "affinity propagation on micro-clusters",
            crate::memory::quadratic_bytes(m, 4.0),
            m,
            crate::memory::available_bytes(),
            "fewer micro-clusters (micro_clusters=...)",
        )?;
        let preference = match self.preference {
            Some(p) => p as f32,
            None => sampled_median_similarity(x, u64::from(self.seed))?,
        };
        let mut s = alloc(m * m, m, "micro-cluster similarity matrix")?;
        similarities(&micro.centroids, &mut s);
        let degenerate = m == 1 || all_off_diagonal_equal(&s, m);
        // s'(i, k) = w_i s(c_i, c_k): the w_i samples of micro-cluster i all pay s(i, k).
        s.par_chunks_mut(m).enumerate().for_each(|(i, row)| {
            let w = micro.weights[i] as f32;
            row.iter_mut().for_each(|v| *v *= w);
            row[i] = preference;
        });
        let (micro_labels, micro_exemplars, iterations, converged) = if degenerate {
            tracing::warn!("affinity propagation: all micro-clusters coincide; one cluster");
            (vec![0; m], vec![0], 0, true)
        } else {
            add_tie_breaking_noise(&mut s, self.seed);
            let run = iterate(&s, m, self, LARGEST);
            let (labels, exemplars) = assign_labels(&s, m, &run.exemplar_mask);
            if !run.converged {
                tracing::warn!(
                    iterations = run.iterations,
                    "affinity propagation did not converge; labels may be degenerate"
                );
            }
            (labels, exemplars, run.iterations, run.converged)
        };
        drop(s);
        let exemplars = micro.nearest_members(x.view(), &micro_exemplars);
        tracing::info!(
            n_samples = n,
            micro_clusters = m,
            n_clusters = exemplars.len(),
            "affinity propagation on micro-clusters done"
        );
        Ok(Clustering {
            method: "affinity-propagation",
            n_clusters: exemplars.len(),
            labels: micro.spread(&micro_labels),
            iterations: Some(iterations),
            converged: Some(converged),
            inertia: None,
            centroids: None,
            exemplars: Some(exemplars),
            linkage: None,
            micro_clusters: Some(m),
            micro_assignment: Some(micro.assignment),
            knn_graph: None,
        })
    }

    /// Exact affinity propagation on every sample.
    fn fit_exact(&self, x: Array2<f64>) -> Result<Clustering> {
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
                micro_clusters: None,
                micro_assignment: None,
                knn_graph: None,
            });
        }

        for i in 0..n {
            s[i * n + i] = preference;
        }
        add_tie_breaking_noise(&mut s, self.seed);
        let run = iterate(&s, n, self, LARGEST);

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
            micro_clusters: None,
            micro_assignment: None,
            knn_graph: None,
        })
    }
}

/// Samples the default preference is estimated on in the scalable form: the median of their
/// 16 million pairwise similarities (64 MB) is within a fraction of a percent of the median
/// over all pairs.
const PREFERENCE_SAMPLE: usize = 4_000;

/// The median similarity between samples (scikit-learn's default preference), computed exactly
/// for up to [`PREFERENCE_SAMPLE`] samples and on a seeded sample of that many above.
pub(crate) fn sampled_median_similarity(x: &Array2<f64>, seed: u64) -> Result<f32> {
    let idx = crate::scalable::sample_indices(x.nrows(), PREFERENCE_SAMPLE, seed);
    let sample = x.select(ndarray::Axis(0), &idx);
    let k = sample.nrows();
    let mut s = alloc(k * k, k, "preference sample similarities")?;
    similarities(&sample, &mut s);
    median(&s, k)
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

/// `numpy.median` of all `n^2` entries (including the diagonal), in `f32` like NumPy on a
/// `float32` array.
///
/// Selection by histogram rather than on a copy: one parallel pass counts the entries per
/// 16-bit prefix of their order-preserving bit pattern, a second gathers the one bin that
/// holds the wanted rank, which is then selected exactly. No `n x n` copy is made.
fn median(s: &[f32], n: usize) -> Result<f32> {
    let len = s.len();
    let mid = len / 2;
    let upper = select_rank(s, mid, n)?;
    if len % 2 == 1 {
        return Ok(upper);
    }
    let lower = select_rank(s, mid - 1, n)?;
    Ok((lower + upper) / 2.0)
}

/// Maps `f32` to `u32` so that integer order is `f32::total_cmp` order.
#[inline]
fn order_key(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// The value of rank `rank` (0-based, ascending in `total_cmp` order) among `s`.
fn select_rank(s: &[f32], rank: usize, n: usize) -> Result<f32> {
    const BINS: usize = 1 << 16;
    let chunk = s
        .len()
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(1 << 16);
    let counts = s
        .par_chunks(chunk)
        .map(|c| {
            let mut h = vec![0usize; BINS];
            for &x in c {
                h[(order_key(x) >> 16) as usize] += 1;
            }
            h
        })
        .reduce(
            || vec![0usize; BINS],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut below = 0;
    let mut bin = 0;
    for (b, &count) in counts.iter().enumerate() {
        if below + count > rank {
            bin = b as u32;
            break;
        }
        below += count;
    }
    let mut members: Vec<f32> = Vec::new();
    members
        .try_reserve_exact(counts[bin as usize])
        .map_err(|_| ClusterError::OutOfMemory {
            what: "median buffer",
            bytes: counts[bin as usize] * 4,
            n_samples: n,
        })?;
    members.par_extend(s.par_iter().copied().filter(|&x| order_key(x) >> 16 == bin));
    let (_, &mut value, _) = members.select_nth_unstable_by(rank - below, f32::total_cmp);
    Ok(value)
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
    let tiny100 = f32::MIN_POSITIVE * 100.0;
    let total = s.len();
    LegacyRandomState::new(seed).standard_normals_chunked(total, |at, normals| {
        for (v, &z) in s[at..at + normals.len()].iter_mut().zip(normals) {
            let coef = f32::EPSILON * *v + tiny100;
            *v = (f64::from(*v) + f64::from(coef) * z) as f32;
        }
    });
}

struct Run {
    iterations: usize,
    converged: bool,
    exemplar_mask: Vec<bool>,
}

/// Rows per parallel task.
fn block_rows(n: usize) -> usize {
    n.div_ceil(64).max(1)
}

/// A sparse entry of a row: column `k`, a value, and the similarity `s(i,k)`, kept with it so
/// that an update never reads the row of `S` at random.
#[derive(Clone, Copy, Debug)]
struct Entry {
    k: u32,
    s: f32,
    v: f64,
}

/// The sparse corrections and per-row scalars that, with `S`, stand for row `i` of the
/// responsibility and availability matrices (see [`iterate`]).
#[derive(Default, Clone)]
struct RowState {
    /// `P(i)`: the damped history of the row maxima of `A + S`.
    p: f64,
    /// `s(i,i)`, the preference plus noise.
    s_ii: f32,
    /// `E(i,k)`: the damped history of `max1 - max2` at the columns that were the row's
    /// argmax in some round (a handful per row).
    e: Vec<Entry>,
    /// `D(i,k)`, never the diagonal: the damped history of the availability's departure from
    /// its column baseline, at the columns where `r(i,k)` was positive in some round.
    d: Vec<Entry>,
    /// The off-diagonal `r(i,k) > 0` of the current round.
    positive: Vec<Entry>,
}

/// The message passing of scikit-learn, without storing the responsibility and availability
/// matrices.
///
/// With `A` and `R` starting at zero and damping `d`, the responsibilities unroll to
/// `r(i,k) = c_t s(i,k) - P(i) + E(i,k)` with `c_t = 1 - d^t`, a per-row scalar `P` (the
/// damped row maxima of `A + S`) and a correction `E` that is non-zero only at columns that
/// were the row's argmax in some round. The availabilities off the diagonal are
/// `a(i,k) = B(k) + D(i,k)`: a per-column baseline `B` (the damped `min(0, colsum(k))`) and a
/// correction `D <= 0` that is non-zero only where `r(i,k)` was positive in some round. Both
/// corrections are sparse (about 130 and 5 entries per row on the real features), so a round
/// need not read and write two `n x n` matrices; everything but `S` is kept in `f64`.
///
/// Per round and row: the largest and second-largest `a + s` (ties to the first index, like
/// `numpy.argmax`), then the columns with positive `r`, whose values make the column sums;
/// after the round, the column sums update `B`, the diagonal of `A`, and `D` at the positive
/// entries. Both searches first try the row's [`Largest`] similarities, which settle them
/// when `s + max(B)` (or `c_t s - P`) of the list's floor is provably out of the race, and
/// fall back to a vectorised scan of the whole row otherwise.
fn iterate(s: &[f32], n: usize, p: &AffinityPropagation, largest: usize) -> Run {
    let damping = p.damping;
    let keep = 1.0 - damping;
    let conv = p.convergence_iter;
    let bs = block_rows(n);

    let mut rows: Vec<RowState> = (0..n)
        .map(|i| RowState {
            s_ii: s[i * n + i],
            ..RowState::default()
        })
        .collect();
    let mut baseline = vec![0.0f64; n]; // B(k)
    let mut baseline32 = vec![0.0f32; n];
    let mut a_diag = vec![0.0f64; n];
    let mut r_diag = vec![0.0f64; n];
    let mut colsum = vec![0.0f64; n];
    let mut c = 0.0f64; // c_t = 1 - damping^t
                        // Ring buffer of the last `convergence_iter` exemplar sets, per sample.
    let mut history = vec![false; n * conv];
    let mut mask = vec![false; n];
    let mut converged = false;
    let mut iterations = 0;
    let largest = Largest::new(s, n, largest);

    for it in 0..p.max_iter {
        iterations = it + 1;
        c = c * damping + keep;
        let first = it == 0;
        let shared = Shared {
            baseline: &baseline,
            baseline32: &baseline32,
            baseline_max: baseline.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            prev_colsum: &colsum,
            c,
            damping,
            keep,
        };
        s.par_chunks(bs * n)
            .zip(rows.par_chunks_mut(bs))
            .zip(r_diag.par_chunks_mut(bs))
            .enumerate()
            .for_each(|(b, ((sb, rb), rdb))| {
                let mut scratch = Scratch::new(n);
                for (ri, ((srow, row), rd)) in sb
                    .chunks(n)
                    .zip(rb.iter_mut())
                    .zip(rdb.iter_mut())
                    .enumerate()
                {
                    let i = b * bs + ri;
                    let stamp = scratch.mark(&row.d);
                    if !first {
                        shared.finish_availability_row(row, &mut scratch, stamp);
                    }
                    let msg = RowView {
                        srow,
                        top_vals: largest.values(i),
                        top_cols: largest.columns(i),
                        floor: largest.floor[i],
                        a_ii: a_diag[i],
                        i,
                    };
                    *rd = shared.update_responsibility_row(&msg, row, &mut scratch, stamp);
                }
            });
        // Column sums of max(0, r) with the diagonal unclipped, in row order (deterministic).
        colsum.iter_mut().for_each(|v| *v = 0.0);
        for (i, row) in rows.iter().enumerate() {
            for e in &row.positive {
                colsum[e.k as usize] += e.v;
            }
            colsum[i] += r_diag[i];
        }
        for k in 0..n {
            baseline[k] = baseline[k] * damping + keep * colsum[k].min(0.0);
            baseline32[k] = baseline[k] as f32;
            a_diag[k] = a_diag[k] * damping + keep * (colsum[k] - r_diag[k]);
        }

        let slot = it % conv;
        let mut k = 0;
        for j in 0..n {
            let e = a_diag[j] + r_diag[j] > 0.0;
            mask[j] = e;
            history[j * conv + slot] = e;
            k += usize::from(e);
        }
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

/// How many of each row's largest similarities are kept: enough that on the real features
/// fewer than 1% of the row updates need the full row.
const LARGEST: usize = 512;

/// Each row's `m` largest off-diagonal similarities, descending (ties by column), and the
/// largest similarity left out.
///
/// A round mostly needs only a row's top candidates: the two largest `a + s` and the positive
/// responsibilities. When bounds prove the rest of the row cannot matter, the row of `S` is
/// not read at all.
struct Largest {
    m: usize,
    values: Vec<f32>,
    columns: Vec<u32>,
    /// Largest off-diagonal similarity not in the list (`-inf` when the list holds the row).
    floor: Vec<f32>,
}

impl Largest {
    fn new(s: &[f32], n: usize, m: usize) -> Self {
        let m = m.min(n - 1);
        let mut values = vec![0.0f32; n * m];
        let mut columns = vec![0u32; n * m];
        let mut floor = vec![f32::NEG_INFINITY; n];
        let order = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        values
            .par_chunks_mut(m.max(1))
            .zip(columns.par_chunks_mut(m.max(1)))
            .zip(floor.par_iter_mut())
            .enumerate()
            .for_each_init(Vec::new, |pairs: &mut Vec<(f32, u32)>, (i, ((v, c), f))| {
                let row = &s[i * n..(i + 1) * n];
                pairs.clear();
                pairs.extend(
                    row.iter()
                        .enumerate()
                        .filter(|&(k, _)| k != i)
                        .map(|(k, &x)| (x, k as u32)),
                );
                if pairs.len() > m {
                    pairs.select_nth_unstable_by(m, order);
                    *f = pairs[m].0;
                }
                let top = &mut pairs[..m];
                top.sort_unstable_by(order);
                for ((vv, cc), &(x, k)) in v.iter_mut().zip(c.iter_mut()).zip(top.iter()) {
                    *vv = x;
                    *cc = k;
                }
            });
        Self {
            m,
            values,
            columns,
            floor,
        }
    }

    fn values(&self, i: usize) -> &[f32] {
        &self.values[i * self.m..(i + 1) * self.m]
    }

    fn columns(&self, i: usize) -> &[u32] {
        &self.columns[i * self.m..(i + 1) * self.m]
    }
}

/// What every row update of a round reads.
struct Shared<'a> {
    baseline: &'a [f64],
    baseline32: &'a [f32],
    /// The largest column baseline `B(k)`.
    baseline_max: f64,
    /// The column sums of the previous round.
    prev_colsum: &'a [f64],
    c: f64,
    damping: f64,
    keep: f64,
}

/// One row's slice of `S`, its largest similarities and its diagonal availability.
struct RowView<'a> {
    srow: &'a [f32],
    /// The row's largest off-diagonal similarities, descending, and their columns.
    top_vals: &'a [f32],
    top_cols: &'a [u32],
    /// No off-diagonal similarity outside `top_vals` exceeds this.
    floor: f32,
    a_ii: f64,
    i: usize,
}

/// Per-thread buffers of the row updates.
struct Scratch {
    values: Vec<f32>,
    /// `mark[k] == stamp` flags the corrected columns of the current row, `slot[k]` their
    /// place in `RowState::d`.
    mark: Vec<u32>,
    slot: Vec<u32>,
    stamp: u32,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self {
            values: vec![0.0; n],
            mark: vec![0; n],
            slot: vec![0; n],
            stamp: 0,
        }
    }

    /// Flags the columns of `d` under a fresh stamp, which it returns.
    fn mark(&mut self, d: &[Entry]) -> u32 {
        if self.stamp == u32::MAX {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.stamp = 0;
        }
        self.stamp += 1;
        for (j, e) in d.iter().enumerate() {
            self.mark[e.k as usize] = self.stamp;
            self.slot[e.k as usize] = j as u32;
        }
        self.stamp
    }
}

impl Shared<'_> {
    /// The availability corrections of a row after the round whose column sums are
    /// `prev_colsum`: `D` decays, and where `r(i,k)` was positive the new availability
    /// `min(0, colsum(k) - r(i,k))` departs from the baseline `min(0, colsum(k))`.
    fn finish_availability_row(&self, row: &mut RowState, scratch: &mut Scratch, stamp: u32) {
        for e in row.d.iter_mut() {
            e.v *= self.damping;
        }
        for p in &row.positive {
            let k = p.k as usize;
            let cs = self.prev_colsum[k];
            let delta = self.keep * ((cs - p.v).min(0.0) - cs.min(0.0));
            if delta == 0.0 {
                continue;
            }
            if scratch.mark[k] == stamp {
                row.d[scratch.slot[k] as usize].v += delta;
            } else {
                scratch.mark[k] = stamp;
                scratch.slot[k] = row.d.len() as u32;
                row.d.push(Entry { v: delta, ..*p });
            }
        }
    }

    /// Updates a row's responsibilities (`P`, `E`, the positive entries) and returns `r(i,i)`.
    fn update_responsibility_row(
        &self,
        view: &RowView<'_>,
        row: &mut RowState,
        scratch: &mut Scratch,
        stamp: u32,
    ) -> f64 {
        let (damping, keep, i) = (self.damping, self.keep, view.i);

        // Largest and second-largest a + s.
        let mut ranked = Ranked::new();
        for e in &row.d {
            ranked.offer(f64::from(e.s) + self.baseline[e.k as usize] + e.v, e.k, e.s);
        }
        ranked.offer(f64::from(row.s_ii) + view.a_ii, i as u32, row.s_ii);
        let known = ranked;
        if !self.top2_from_largest(view, &mut ranked, scratch, stamp) {
            // Start again from the corrected columns: `Ranked` must see each column once.
            ranked = known;
            self.top2_from_row(view, &row.d, &mut ranked, &mut scratch.values);
        }
        let (y1, best_k, best_s) = ranked.best;
        let y2 = ranked.second;

        // r(i,k) = c s(i,k) - P + E(i,k).
        row.p = row.p * damping + keep * y1;
        for e in row.e.iter_mut() {
            e.v *= damping;
        }
        let gap = keep * (y1 - y2);
        match row.e.iter_mut().find(|e| e.k == best_k) {
            Some(e) => e.v += gap,
            None => row.e.push(Entry {
                k: best_k,
                s: best_s,
                v: gap,
            }),
        }

        // Positive responsibilities: the uncorrected columns where c s - P > 0, then the
        // corrected ones.
        let (c, pp) = (self.c, row.p);
        let corrected = |e: &[Entry], k: u32| e.iter().any(|x| x.k == k);
        row.positive.clear();
        if c * f64::from(view.floor) - pp <= 0.0 {
            // No similarity outside the row's largest gives r > 0: scan those, descending.
            for (&sv, &k) in view.top_vals.iter().zip(view.top_cols) {
                let r = c * f64::from(sv) - pp;
                if r <= 0.0 {
                    break;
                }
                if !corrected(&row.e, k) {
                    row.positive.push(Entry { k, s: sv, v: r });
                }
            }
        } else {
            let threshold = f32_at_most(pp / c);
            for (chunk_index, chunk) in view.srow.chunks(16).enumerate() {
                if !chunk.iter().fold(false, |any, &v| any | (v > threshold)) {
                    continue;
                }
                for (j, &sv) in chunk.iter().enumerate() {
                    let k = (chunk_index * 16 + j) as u32;
                    if sv <= threshold || k as usize == i || corrected(&row.e, k) {
                        continue;
                    }
                    let r = c * f64::from(sv) - pp;
                    if r > 0.0 {
                        row.positive.push(Entry { k, s: sv, v: r });
                    }
                }
            }
        }
        let mut r_ii = c * f64::from(row.s_ii) - pp;
        for e in &row.e {
            let r = c * f64::from(e.s) - pp + e.v;
            if e.k as usize == i {
                r_ii = r;
            } else if r > 0.0 {
                row.positive.push(Entry { v: r, ..*e });
            }
        }
        r_ii
    }

    /// Offers the uncorrected columns among the row's largest similarities, descending, until
    /// none left can reach the second place; returns whether that settles the top two, i.e.
    /// no column outside the list can reach the second place either.
    fn top2_from_largest(
        &self,
        view: &RowView<'_>,
        ranked: &mut Ranked,
        scratch: &Scratch,
        stamp: u32,
    ) -> bool {
        for (&sv, &k) in view.top_vals.iter().zip(view.top_cols) {
            let s64 = f64::from(sv);
            if s64 + self.baseline_max < ranked.second {
                return true;
            }
            if scratch.mark[k as usize] != stamp {
                ranked.offer(s64 + self.baseline[k as usize], k, sv);
            }
        }
        f64::from(view.floor) + self.baseline_max < ranked.second
    }

    /// The uncorrected columns of the whole row: a vectorised `f32` scan of `s + B` with the
    /// corrected columns and the diagonal masked out, its two winners recomputed in `f64`.
    fn top2_from_row(
        &self,
        view: &RowView<'_>,
        d: &[Entry],
        ranked: &mut Ranked,
        scratch: &mut [f32],
    ) {
        for ((v, &sv), &bv) in scratch.iter_mut().zip(view.srow).zip(self.baseline32) {
            *v = sv + bv;
        }
        for e in d {
            scratch[e.k as usize] = f32::NEG_INFINITY;
        }
        scratch[view.i] = f32::NEG_INFINITY;
        let (v1, v2) = top2(scratch);
        let mut offer = |k: usize| {
            let sv = view.srow[k];
            ranked.offer(f64::from(sv) + self.baseline[k], k as u32, sv);
        };
        if v1 > f32::NEG_INFINITY {
            if let Some(k1) = position(scratch, v1, None) {
                offer(k1);
                if v2 > f32::NEG_INFINITY {
                    if let Some(k2) = position(scratch, v2, Some(k1)) {
                        offer(k2);
                    }
                }
            }
        }
    }
}

const LANES: usize = 8;

/// Lane-wise largest and second-largest of `v`; returns the two largest values overall
/// (equal when the maximum occurs twice).
fn top2(v: &[f32]) -> (f32, f32) {
    let mut first = [f32::NEG_INFINITY; LANES];
    let mut second = [f32::NEG_INFINITY; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            // Branch-free max/min (no NaN here) so the loop vectorises.
            let lo = if c[l] < first[l] { c[l] } else { first[l] };
            second[l] = if lo > second[l] { lo } else { second[l] };
            first[l] = if c[l] > first[l] { c[l] } else { first[l] };
        }
    }
    for &x in chunks.remainder() {
        if x > first[0] {
            second[0] = first[0];
            first[0] = x;
        } else if x > second[0] {
            second[0] = x;
        }
    }
    let mut all = [f32::NEG_INFINITY; 2 * LANES];
    all[..LANES].copy_from_slice(&first);
    all[LANES..].copy_from_slice(&second);
    all.sort_unstable_by(|a, b| b.total_cmp(a));
    (all[0], all[1])
}

/// First index (other than `skip`) where `v` equals `target`; chunked so it vectorises.
fn position(v: &[f32], target: f32, skip: Option<usize>) -> Option<usize> {
    for (ci, c) in v.chunks(16).enumerate() {
        if c.iter().fold(false, |any, &x| any | (x == target)) {
            let base = ci * 16;
            if let Some(j) = (0..c.len()).find(|&j| c[j] == target && Some(base + j) != skip) {
                return Some(base + j);
            }
        }
    }
    None
}

/// The largest and second-largest value offered, with `numpy.argmax`'s first-index tie rule;
/// the winner keeps its column and similarity. Each column may be offered once.
#[derive(Clone, Copy)]
struct Ranked {
    best: (f64, u32, f32),
    second: f64,
}

impl Ranked {
    fn new() -> Self {
        Self {
            best: (f64::NEG_INFINITY, u32::MAX, 0.0),
            second: f64::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, v: f64, k: u32, s: f32) {
        if v > self.best.0 || (v == self.best.0 && k < self.best.1) {
            self.second = self.second.max(self.best.0);
            self.best = (v, k, s);
        } else {
            self.second = self.second.max(v);
        }
    }
}

/// The largest `f32` not above `x`, so an `f32` comparison `s > t` never misses an `s > x`.
fn f32_at_most(x: f64) -> f32 {
    let t = x as f32;
    if f64::from(t) > x {
        f32::from_bits(if t > 0.0 {
            t.to_bits() - 1
        } else if t == 0.0 {
            0x8000_0001
        } else {
            t.to_bits() + 1
        })
    } else {
        t
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

    /// scikit-learn's update loop transliterated over dense `f64` matrices.
    fn dense_reference(s: &[f32], n: usize, p: &AffinityPropagation) -> Run {
        let (d, keep, conv) = (p.damping, 1.0 - p.damping, p.convergence_iter);
        let mut a = vec![0.0f64; n * n];
        let mut r = vec![0.0f64; n * n];
        let mut history = vec![false; n * conv];
        let mut mask = vec![false; n];
        for it in 0..p.max_iter {
            for i in 0..n {
                let row = |k: usize| a[i * n + k] + f64::from(s[i * n + k]);
                let best = (0..n).fold(0, |b, k| if row(k) > row(b) { k } else { b });
                let y2 = (0..n)
                    .filter(|&k| k != best)
                    .map(row)
                    .fold(f64::NEG_INFINITY, f64::max);
                let y = row(best);
                for k in 0..n {
                    let new = f64::from(s[i * n + k]) - if k == best { y2 } else { y };
                    r[i * n + k] = r[i * n + k] * d + new * keep;
                }
            }
            for k in 0..n {
                let colsum: f64 = (0..n)
                    .map(|i| {
                        if i == k {
                            r[k * n + k]
                        } else {
                            r[i * n + k].max(0.0)
                        }
                    })
                    .sum();
                for i in 0..n {
                    let new = if i == k {
                        colsum - r[k * n + k]
                    } else {
                        (colsum - r[i * n + k].max(0.0)).min(0.0)
                    };
                    a[i * n + k] = a[i * n + k] * d + new * keep;
                }
            }
            let slot = it % conv;
            for j in 0..n {
                mask[j] = a[j * n + j] + r[j * n + j] > 0.0;
                history[j * conv + slot] = mask[j];
            }
            if it >= conv
                && mask.iter().any(|&e| e)
                && (0..n).all(|j| {
                    let h = &history[j * conv..(j + 1) * conv];
                    h.iter().all(|&v| v) || h.iter().all(|&v| !v)
                })
            {
                return Run {
                    iterations: it + 1,
                    converged: true,
                    exemplar_mask: mask,
                };
            }
        }
        Run {
            iterations: p.max_iter,
            converged: false,
            exemplar_mask: mask,
        }
    }

    /// The sparse message passing equals the dense one, also when the largest-similarity lists
    /// are short enough that most row updates fall back to the full row.
    #[test]
    fn sparse_messages_match_dense_reference() {
        let mut rng = LegacyRandomState::new(3);
        for (trial, &(n, damping, preference)) in [
            (60, 0.5, None),
            (80, 0.8, None),
            (50, 0.9, Some(-2.0)),
            (70, 0.7, Some(-40.0)),
        ]
        .iter()
        .enumerate()
        {
            // Blobs in 3-d around 5 centres.
            let x = Array2::from_shape_fn((n, 3), |(i, j)| {
                let centre = ((i % 5) * 7 + j * 3) % 11;
                centre as f64 + rng.standard_normal()
            });
            let mut ap = AffinityPropagation::new();
            ap.damping = damping;
            ap.preference = preference;
            let mut s = vec![0.0f32; n * n];
            similarities(&x, &mut s);
            let pref = preference.map_or_else(|| median(&s, n).unwrap(), |p| p as f32);
            for i in 0..n {
                s[i * n + i] = pref;
            }
            add_tie_breaking_noise(&mut s, 0);
            let expected = dense_reference(&s, n, &ap);
            assert!(expected.converged, "trial {trial}");
            for largest in [1, 4, 16, n - 1, LARGEST] {
                let got = iterate(&s, n, &ap, largest);
                assert_eq!(
                    got.iterations, expected.iterations,
                    "trial {trial}, m {largest}"
                );
                assert_eq!(got.converged, expected.converged);
                assert_eq!(
                    got.exemplar_mask, expected.exemplar_mask,
                    "trial {trial}, m {largest}"
                );
            }
        }
    }

    #[test]
    fn histogram_median_equals_sorting() {
        let mut rng = LegacyRandomState::new(11);
        for len in [1usize, 2, 7, 100, 70_001, 140_000] {
            // Many ties and both signs, as in a similarity matrix with a zero diagonal.
            let v: Vec<f32> = (0..len)
                .map(|i| {
                    if i % 9 == 0 {
                        0.0
                    } else {
                        -(rng.standard_normal().abs() * 10.0).round() as f32 / 4.0
                    }
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f32::total_cmp);
            let expected = if len % 2 == 1 {
                sorted[len / 2]
            } else {
                (sorted[len / 2 - 1] + sorted[len / 2]) / 2.0
            };
            assert_eq!(median(&v, 1).unwrap(), expected, "len {len}");
        }
    }
}
