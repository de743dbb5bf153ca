//! A 2-D map of every galaxy: UMAP (McInnes, Healy & Melville 2018) on the features' k-nearest-
//! neighbour graph, started from the first two principal components.
//!
//! The steps follow umap-learn (`umap_.py`, `layouts.py`): per-point bandwidths from the
//! neighbour distances (`smooth_knn_dist`), a fuzzy graph symmetrised by fuzzy union, and
//! stochastic gradient descent with negative sampling on the curve `1 / (1 + a d^{2b})`, with
//! umap-learn's `a`, `b` for `min_dist = 0.1`, `spread = 1`.
//!
//! Why this and not a crate: `umap-rs` draws from an unseeded thread-local RNG in parallel
//! (Hogwild) updates, so the same run gives a different map every time, and it pulls sprs, dashmap
//! and a second serde stack. This implementation runs the optimisation on one thread from a ChaCha
//! seed, so a map is reproducible bit for bit; the k-NN graph (sdss-neighbors) is the expensive part
//! and is already parallel. Measured quality and speed against the PCA start are in README.md.
//!
//! ```
//! use ndarray::Array2;
//! use sdss_embed::Umap;
//!
//! // Two well-separated groups in 5-D stay separated on the map.
//! let x = Array2::from_shape_fn((60, 5), |(i, j)| if i < 30 { (i + j) as f32 * 0.01 } else { 5.0 + (i * j) as f32 * 0.001 });
//! let map = Umap::new().random_state(0).fit(x.view()).unwrap();
//! assert_eq!(map.dim(), (60, 2));
//! ```

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sdss_neighbors::{ExactIndex, IvfIndex, KnnGraph, Metric, NeighborIndex};

/// Why no map could be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EmbedError {
    /// A parameter outside its range.
    #[error("{name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter, as umap-learn names it.
        name: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        reason: &'static str,
    },
    /// Fewer than two rows, or no columns.
    #[error("a map needs at least 2 rows and 1 feature, got {rows} x {columns}")]
    TooSmall {
        /// Rows given.
        rows: usize,
        /// Columns given.
        columns: usize,
    },
    /// A NaN or infinite feature.
    #[error("row {row}, feature {column}: {value} is not a finite number")]
    NonFinite {
        /// Row (0-based).
        row: usize,
        /// Column (0-based).
        column: usize,
        /// The value.
        value: f32,
    },
    /// The graph given does not describe these rows.
    #[error("the k-NN graph has {graph} rows, the features {rows}")]
    GraphMismatch {
        /// Rows of the graph.
        graph: usize,
        /// Rows of the features.
        rows: usize,
    },
    /// The neighbour search failed.
    #[error("nearest neighbours: {0}")]
    Neighbors(String),
}

/// umap-learn's curve parameters for `min_dist = 0.1`, `spread = 1` (`find_ab_params`).
const A: f64 = 1.576_943_460_405_378;
const B: f64 = 0.895_060_878_123_136_6;
/// Up to this many rows the neighbour graph is exact; above, approximate.
pub const EXACT_MAX_ROWS: usize = 20_000;

/// UMAP settings, with umap-learn's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Umap {
    n_neighbors: usize,
    n_epochs: Option<usize>,
    negative_sample_rate: usize,
    learning_rate: f64,
    random_state: u64,
}

impl Default for Umap {
    fn default() -> Self {
        Self::new()
    }
}

impl Umap {
    /// 15 neighbours, 500 epochs up to 10,000 rows and 200 above, 5 negative samples, rate 1.
    pub fn new() -> Self {
        Umap {
            n_neighbors: 15,
            n_epochs: None,
            negative_sample_rate: 5,
            learning_rate: 1.0,
            random_state: 0,
        }
    }

    /// Neighbours per point in the fuzzy graph (reduced to n − 1 for tiny inputs).
    pub fn n_neighbors(mut self, k: usize) -> Self {
        self.n_neighbors = k;
        self
    }

    /// Epochs of gradient descent.
    pub fn n_epochs(mut self, n: usize) -> Self {
        self.n_epochs = Some(n);
        self
    }

    /// Seed of the negative sampling and of the start's jitter.
    pub fn random_state(mut self, seed: u64) -> Self {
        self.random_state = seed;
        self
    }

    /// Maps the rows of `x` (ideally PCA coordinates, whose first two columns are the start) to
    /// 2-D, building the neighbour graph itself.
    pub fn fit(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>, EmbedError> {
        check(x)?;
        let k = self.k_for(x.nrows())?;
        if k == 0 {
            return Ok(start(x, self.random_state));
        }
        let err = |e: sdss_neighbors::NeighborError| EmbedError::Neighbors(e.to_string());
        let graph = if x.nrows() <= EXACT_MAX_ROWS {
            ExactIndex::new(x, Metric::Euclidean)
                .map_err(err)?
                .knn_graph(k)
                .map_err(err)?
        } else {
            IvfIndex::new(x, Metric::Euclidean)
                .map_err(err)?
                .knn_graph(k)
                .map_err(err)?
        };
        self.fit_graph(x, &graph)
    }

    fn k_for(&self, n: usize) -> Result<usize, EmbedError> {
        if self.n_neighbors < 2 {
            return Err(EmbedError::InvalidParameter {
                name: "n_neighbors",
                value: self.n_neighbors.to_string(),
                reason: "needs at least 2",
            });
        }
        if self.n_epochs == Some(0) {
            return Err(EmbedError::InvalidParameter {
                name: "n_epochs",
                value: "0".into(),
                reason: "needs at least 1",
            });
        }
        // Two points have nothing to lay out beyond their start.
        Ok(if n < 3 {
            0
        } else {
            self.n_neighbors.min(n - 1)
        })
    }

    /// [`Umap::fit`] on a k-NN graph already built from `x` (Euclidean distances, self excluded).
    pub fn fit_graph(
        &self,
        x: ArrayView2<'_, f32>,
        graph: &KnnGraph,
    ) -> Result<Array2<f32>, EmbedError> {
        check(x)?;
        let n = x.nrows();
        if graph.len() != n {
            return Err(EmbedError::GraphMismatch {
                graph: graph.len(),
                rows: n,
            });
        }
        if self.k_for(n)? == 0 || graph.k() == 0 {
            return Ok(start(x, self.random_state));
        }
        let edges = fuzzy_graph(graph);
        let n_epochs = self.n_epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 });
        let mut embedding = start(x, self.random_state);
        optimize(
            &mut embedding,
            &edges,
            n_epochs,
            self.negative_sample_rate,
            self.learning_rate,
            self.random_state,
        );
        Ok(embedding)
    }
}

fn check(x: ArrayView2<'_, f32>) -> Result<(), EmbedError> {
    if x.nrows() < 2 || x.ncols() == 0 {
        return Err(EmbedError::TooSmall {
            rows: x.nrows(),
            columns: x.ncols(),
        });
    }
    for ((row, column), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return Err(EmbedError::NonFinite { row, column, value });
        }
    }
    Ok(())
}

/// The start: the first two columns (the leading principal components when `x` is PCA output;
/// zeros for a missing second column), each scaled to [0, 10] as umap-learn scales its
/// initialisations, plus a 1e-4 jitter so identical rows can separate.
fn start(x: ArrayView2<'_, f32>, seed: u64) -> Array2<f32> {
    let n = x.nrows();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Array2::<f32>::zeros((n, 2));
    for c in 0..2.min(x.ncols()) {
        let col = x.column(c);
        let (lo, hi) = col
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        for i in 0..n {
            out[[i, c]] = 10.0 * (col[i] - lo) / span;
        }
    }
    for v in out.iter_mut() {
        *v += rng.random_range(-1e-4f32..1e-4);
    }
    out
}

/// An edge of the symmetric fuzzy graph, with its membership strength.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Edge {
    head: u32,
    tail: u32,
    weight: f64,
}

/// Memberships `exp(−(d − ρᵢ)/σᵢ)` with ρᵢ the nearest non-zero distance and σᵢ chosen so that the
/// memberships of i's neighbours sum to log2(k) (umap-learn's `smooth_knn_dist`), then the fuzzy
/// union `w + wᵀ − w∘wᵀ`, both directions listed.
fn fuzzy_graph(graph: &KnnGraph) -> Vec<Edge> {
    let n = graph.len();
    let k = graph.k();
    let target = (k as f64).log2();
    let mean_all: f64 = graph.distances.iter().map(|&d| f64::from(d)).sum::<f64>() / (n * k) as f64;
    let mut directed: Vec<(u32, u32, f64)> = Vec::with_capacity(n * k);
    for i in 0..n {
        let d: Vec<f64> = graph
            .distances
            .row(i)
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let rho = d.iter().copied().find(|&v| v > 0.0).unwrap_or(0.0);
        let (mut lo, mut hi, mut sigma) = (0.0, f64::INFINITY, 1.0);
        for _ in 0..64 {
            let psum: f64 = d.iter().map(|&v| (-(v - rho).max(0.0) / sigma).exp()).sum();
            if (psum - target).abs() < 1e-5 {
                break;
            }
            if psum > target {
                hi = sigma;
                sigma = (lo + hi) / 2.0;
            } else {
                lo = sigma;
                sigma = if hi.is_infinite() {
                    sigma * 2.0
                } else {
                    (lo + hi) / 2.0
                };
            }
        }
        // umap-learn's floor (MIN_K_DIST_SCALE): no bandwidth below 1e-3 of the mean distance.
        let mean_i = d.iter().sum::<f64>() / k as f64;
        let floor = 1e-3 * if rho > 0.0 { mean_i } else { mean_all };
        let sigma = sigma.max(floor).max(f64::MIN_POSITIVE);
        for (j, &nb) in graph.indices.row(i).iter().enumerate() {
            if nb == i {
                continue;
            }
            let w = (-(d[j] - rho).max(0.0) / sigma).exp();
            directed.push((i as u32, nb as u32, w));
        }
    }
    // Fuzzy union: each unordered pair once, combining the two directions.
    let mut pairs: Vec<((u32, u32), f64, bool)> = directed
        .into_iter()
        .map(|(i, j, w)| {
            if i < j {
                ((i, j), w, true)
            } else {
                ((j, i), w, false)
            }
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
    let mut edges = Vec::with_capacity(pairs.len() * 2);
    let mut p = 0;
    while p < pairs.len() {
        let key = pairs[p].0;
        let (mut forward, mut backward) = (0.0, 0.0);
        while p < pairs.len() && pairs[p].0 == key {
            if pairs[p].2 {
                forward = pairs[p].1;
            } else {
                backward = pairs[p].1;
            }
            p += 1;
        }
        let w = forward + backward - forward * backward;
        if w > 0.0 {
            edges.push(Edge {
                head: key.0,
                tail: key.1,
                weight: w,
            });
            edges.push(Edge {
                head: key.1,
                tail: key.0,
                weight: w,
            });
        }
    }
    edges
}

/// umap-learn's `optimize_layout_euclidean`, on one thread: each edge is sampled in proportion
/// to its weight, pulls its ends together, and pushes its head from `negative_sample_rate` random
/// points; the rate decays linearly to 0; gradients are clipped to ±4.
fn optimize(
    embedding: &mut Array2<f32>,
    edges: &[Edge],
    n_epochs: usize,
    negative_sample_rate: usize,
    learning_rate: f64,
    seed: u64,
) {
    let n = embedding.nrows();
    let max_w = edges.iter().map(|e| e.weight).fold(0.0, f64::max);
    // Edges too weak to be sampled even once are dropped, as umap-learn does.
    let kept: Vec<&Edge> = edges
        .iter()
        .filter(|e| e.weight >= max_w / n_epochs as f64)
        .collect();
    let epochs_per_sample: Vec<f64> = kept.iter().map(|e| max_w / e.weight).collect();
    let epochs_per_negative: Vec<f64> = epochs_per_sample
        .iter()
        .map(|e| e / negative_sample_rate as f64)
        .collect();
    let mut next_sample = epochs_per_sample.clone();
    let mut next_negative = epochs_per_negative.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    let emb = embedding
        .as_slice_mut()
        // Cannot fire: `start` builds a fresh standard-layout array.
        .expect("a new Array2 is contiguous");
    let clip = |g: f64| g.clamp(-4.0, 4.0);
    for epoch in 0..n_epochs {
        let alpha = learning_rate * (1.0 - epoch as f64 / n_epochs as f64);
        let e = epoch as f64;
        for (idx, edge) in kept.iter().enumerate() {
            if next_sample[idx] > e {
                continue;
            }
            let (j, k) = (edge.head as usize, edge.tail as usize);
            let (dx, dy) = (
                f64::from(emb[2 * j] - emb[2 * k]),
                f64::from(emb[2 * j + 1] - emb[2 * k + 1]),
            );
            let d2 = dx * dx + dy * dy;
            if d2 > 0.0 {
                let coeff = -2.0 * A * B * d2.powf(B - 1.0) / (A * d2.powf(B) + 1.0);
                let (gx, gy) = (clip(coeff * dx) * alpha, clip(coeff * dy) * alpha);
                emb[2 * j] += gx as f32;
                emb[2 * j + 1] += gy as f32;
                emb[2 * k] -= gx as f32;
                emb[2 * k + 1] -= gy as f32;
            }
            next_sample[idx] += epochs_per_sample[idx];
            let n_neg = ((e - next_negative[idx]) / epochs_per_negative[idx]).max(0.0) as usize;
            for _ in 0..n_neg {
                let other = rng.random_range(0..n);
                if other == j {
                    continue;
                }
                let (dx, dy) = (
                    f64::from(emb[2 * j] - emb[2 * other]),
                    f64::from(emb[2 * j + 1] - emb[2 * other + 1]),
                );
                let d2 = dx * dx + dy * dy;
                let (gx, gy) = if d2 > 0.0 {
                    let coeff = 2.0 * B / ((0.001 + d2) * (A * d2.powf(B) + 1.0));
                    (clip(coeff * dx), clip(coeff * dy))
                } else {
                    (4.0, 4.0)
                };
                emb[2 * j] += (gx * alpha) as f32;
                emb[2 * j + 1] += (gy * alpha) as f32;
            }
            next_negative[idx] += n_neg as f64 * epochs_per_negative[idx];
        }
    }
}

/// The fraction of each point's `k` nearest neighbours in `x` that are also among its `k` nearest
/// on the map, averaged over points: how well the map keeps local neighbourhoods (1 is perfect).
pub fn neighbourhood_preservation(
    x: ArrayView2<'_, f32>,
    map: ArrayView2<'_, f32>,
    k: usize,
) -> Result<f64, EmbedError> {
    let err = |e: sdss_neighbors::NeighborError| EmbedError::Neighbors(e.to_string());
    let high = ExactIndex::new(x, Metric::Euclidean)
        .map_err(err)?
        .knn_graph(k)
        .map_err(err)?;
    let low = ExactIndex::new(map, Metric::Euclidean)
        .map_err(err)?
        .knn_graph(k)
        .map_err(err)?;
    let mut total = 0.0;
    for i in 0..x.nrows() {
        let a: std::collections::HashSet<usize> = high.indices.row(i).iter().copied().collect();
        total += low.indices.row(i).iter().filter(|j| a.contains(j)).count() as f64 / k as f64;
    }
    Ok(total / x.nrows() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_and_identical_inputs_never_fail() {
        for n in [2, 3, 5, 20] {
            let x = Array2::<f32>::ones((n, 3));
            let m = Umap::new().fit(x.view()).unwrap();
            assert_eq!(m.dim(), (n, 2));
            assert!(m.iter().all(|v| v.is_finite()), "{n}");
        }
        assert!(matches!(
            Umap::new().fit(Array2::<f32>::zeros((1, 3)).view()),
            Err(EmbedError::TooSmall { .. })
        ));
        let e = Umap::new()
            .n_neighbors(1)
            .fit(Array2::<f32>::zeros((5, 3)).view())
            .unwrap_err();
        assert!(e.to_string().starts_with("n_neighbors = 1"), "{e}");
        let mut bad = Array2::<f32>::zeros((5, 2));
        bad[[3, 1]] = f32::NAN;
        assert!(matches!(
            Umap::new().fit(bad.view()),
            Err(EmbedError::NonFinite {
                row: 3,
                column: 1,
                ..
            })
        ));
    }

    #[test]
    fn the_same_seed_gives_the_same_map() {
        let x = Array2::from_shape_fn((80, 4), |(i, j)| {
            ((i * 7 + j * 3) % 11) as f32 + (i / 40) as f32 * 10.0
        });
        let a = Umap::new().random_state(3).fit(x.view()).unwrap();
        let b = Umap::new().random_state(3).fit(x.view()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, Umap::new().random_state(4).fit(x.view()).unwrap());
    }
}
