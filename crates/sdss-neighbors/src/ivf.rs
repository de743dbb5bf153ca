//! Approximate search with an inverted-file index (FAISS's `IndexIVFFlat`): k-means cells, and a query
//! scans only the rows of the cells nearest to it.
//!
//! How many cells a query scans (`n_probe`) is calibrated when the index is built: the exact
//! neighbours of a sample of rows are computed and `n_probe` is set to the smallest value whose
//! estimated recall@k reaches the target (0.97 by default). Data with clear structure (galaxy features,
//! PCA scores) needs few cells; unstructured, high-dimensional data gets more cells scanned, and is
//! slower rather than silently wrong.

use std::collections::BinaryHeap;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::common::{
    check_k, check_matrix, check_query, drop_self, exact_distance, KnnGraph, Metric, Neighbor,
    NeighborIndex,
};
use crate::error::{NeighborError, Result};
use crate::exact::{ExactIndex, Key};

/// Build settings of an [`IvfIndex`].
#[derive(Debug, Clone, PartialEq)]
pub struct IvfParams {
    /// Number of k-means cells; `None`: `round(sqrt(n))`.
    pub n_lists: Option<usize>,
    /// Cells scanned per query; `None`: calibrated to reach `target_recall`.
    pub n_probe: Option<usize>,
    /// Recall@`calibration_k` that the calibrated `n_probe` must reach on the calibration sample.
    pub target_recall: f32,
    /// Neighbours per query in the calibration (10: recall@10).
    pub calibration_k: usize,
    /// Rows whose exact neighbours calibrate `n_probe`.
    pub calibration_queries: usize,
    /// k-means (Lloyd) iterations.
    pub kmeans_iterations: usize,
    /// Seed of the k-means initialisation and of the samples: the same seed gives the same index.
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams {
            n_lists: None,
            n_probe: None,
            target_recall: 0.97,
            calibration_k: 10,
            calibration_queries: 256,
            kmeans_iterations: 12,
            seed: 0,
        }
    }
}

/// Approximate nearest-neighbour index: an inverted file over k-means cells with a calibrated number
/// of cells scanned per query. Returned distances are exact (recomputed in `f64`); only the choice of
/// neighbours is approximate.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    metric: Metric,
    n: usize,
    d: usize,
    /// Rows as given, kept only for the cosine metric (whose scans run on unit rows); with the
    /// Euclidean metric the rows in cell order are the rows as given, and `slot` finds them.
    raw: Option<Vec<f32>>,
    /// Cell centres (in the prepared space: rows as given, or unit rows for cosine).
    centroids: Vec<f32>,
    /// Rows of cell `c` are `list_rows[offsets[c]..offsets[c + 1]]`.
    offsets: Vec<usize>,
    list_rows: Vec<u32>,
    /// Where row `i` sits in `list_data`.
    slot: Vec<u32>,
    /// Prepared rows in cell order, so a cell is one contiguous scan.
    list_data: Vec<f32>,
    n_probe: usize,
    estimated_recall: Option<f32>,
}

impl IvfIndex {
    /// Builds the index with default settings.
    pub fn new(features: ArrayView2<'_, f32>, metric: Metric) -> Result<Self> {
        Self::with_params(features, metric, &IvfParams::default())
    }

    /// Builds the index with `params`.
    pub fn with_params(
        features: ArrayView2<'_, f32>,
        metric: Metric,
        params: &IvfParams,
    ) -> Result<Self> {
        check_matrix(features, "feature matrix")?;
        if !(params.target_recall > 0.0 && params.target_recall <= 1.0) {
            return Err(NeighborError::InvalidParameter {
                name: "target_recall",
                reason: format!("{}: must be in (0, 1]", params.target_recall),
            });
        }
        let (n, d) = features.dim();
        let n_lists = params
            .n_lists
            .unwrap_or_else(|| (n as f64).sqrt().round() as usize)
            .clamp(1, n);
        if params.n_lists == Some(0) {
            return Err(NeighborError::InvalidParameter {
                name: "n_lists",
                reason: "must be at least 1".into(),
            });
        }
        if params.n_probe == Some(0) {
            return Err(NeighborError::InvalidParameter {
                name: "n_probe",
                reason: "must be at least 1".into(),
            });
        }
        if u32::try_from(n).is_err() {
            return Err(NeighborError::InvalidParameter {
                name: "feature matrix",
                reason: format!("{n} rows: at most {} fit one index", u32::MAX),
            });
        }
        // The index holds the data once (in cell order) plus 8 bytes per row: the Euclidean
        // scans run on the rows as given, so no other copy is made; cosine scans unit rows and
        // keeps the rows as given for the exact distances.
        let given: std::borrow::Cow<'_, [f32]> = match features.as_slice() {
            Some(rows) => std::borrow::Cow::Borrowed(rows),
            None => std::borrow::Cow::Owned(features.iter().copied().collect()),
        };
        let (prepared, raw): (std::borrow::Cow<'_, [f32]>, Option<Vec<f32>>) = match metric {
            Metric::Euclidean => (given, None),
            Metric::Cosine => {
                let mut unit = vec![0.0f32; n * d];
                unit.par_chunks_mut(d)
                    .zip(given.par_chunks(d))
                    .for_each(|(out, row)| prepare(metric, row, out));
                (std::borrow::Cow::Owned(unit), Some(given.into_owned()))
            }
        };
        let mut rng = SplitMix(params.seed);
        // k-means on a sample of up to 64 rows per cell, as FAISS does: enough for the centres.
        let sample = rng.sample(n, (64 * n_lists).min(n));
        let sample_rows: Vec<f32> = sample
            .iter()
            .flat_map(|&i| prepared[i * d..(i + 1) * d].iter().copied())
            .collect();
        let centroids = kmeans(&sample_rows, d, n_lists, params.kmeans_iterations, &mut rng);
        let assign: Vec<u32> = nearest_cell(&prepared, d, &centroids);
        let mut offsets = vec![0usize; n_lists + 1];
        for &c in &assign {
            offsets[c as usize + 1] += 1;
        }
        for c in 0..n_lists {
            offsets[c + 1] += offsets[c];
        }
        let mut fill = offsets.clone();
        // `n` fits u32 (checked above), so the row and slot numbers do.
        let mut list_rows = vec![0u32; n];
        let mut slot = vec![0u32; n];
        for (i, &c) in assign.iter().enumerate() {
            let c = c as usize;
            list_rows[fill[c]] = i as u32;
            slot[i] = fill[c] as u32;
            fill[c] += 1;
        }
        let mut list_data = vec![0.0f32; n * d];
        list_data
            .par_chunks_mut(d)
            .zip(list_rows.par_iter())
            .for_each(|(out, &i)| {
                let i = i as usize;
                out.copy_from_slice(&prepared[i * d..(i + 1) * d])
            });
        drop(prepared);

        let mut index = IvfIndex {
            metric,
            n,
            d,
            raw,
            centroids,
            offsets,
            list_rows,
            slot,
            list_data,
            n_probe: params.n_probe.unwrap_or(1).min(n_lists),
            estimated_recall: None,
        };
        if params.n_probe.is_none() && n_lists > 1 && n > 1 {
            index.calibrate(features, &assign, params, &mut rng)?;
        }
        Ok(index)
    }

    /// Sets `n_probe` from the exact neighbours of a sample of rows.
    fn calibrate(
        &mut self,
        features: ArrayView2<'_, f32>,
        assign: &[u32],
        params: &IvfParams,
        rng: &mut SplitMix,
    ) -> Result<()> {
        let k = params.calibration_k.clamp(1, self.n - 1);
        let queries = rng.sample(self.n, params.calibration_queries.clamp(1, self.n));
        let exact = ExactIndex::new(features, self.metric)?;
        let n_lists = self.n_lists();
        // For each true neighbour: the rank of its cell among the query's cells, nearest first.
        let ranks: Vec<usize> = queries
            .par_iter()
            .map(|&q| -> Result<Vec<usize>> {
                let truth = exact.query_row(q, k)?;
                let mut qp = vec![0.0f32; self.d];
                prepare(self.metric, self.raw_row(q), &mut qp);
                let order = self.cell_order(&qp, n_lists);
                let mut rank_of = vec![0usize; n_lists];
                for (r, &c) in order.iter().enumerate() {
                    rank_of[c] = r;
                }
                Ok(truth
                    .iter()
                    .map(|t| rank_of[assign[t.index] as usize])
                    .collect())
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let mut counts = vec![0usize; n_lists + 1];
        for &r in &ranks {
            counts[r + 1] += 1;
        }
        let total = ranks.len().max(1) as f32;
        let mut covered = 0usize;
        for (p, &count) in counts.iter().enumerate().skip(1) {
            covered += count;
            let recall = covered as f32 / total;
            if recall >= params.target_recall || p == n_lists {
                self.n_probe = p;
                self.estimated_recall = Some(recall);
                break;
            }
        }
        Ok(())
    }

    /// Number of k-means cells.
    pub fn n_lists(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Cells scanned per query.
    pub fn n_probe(&self) -> usize {
        self.n_probe
    }

    /// Changes the cells scanned per query (clamped to `1..=n_lists`): more is slower and more exact.
    pub fn set_n_probe(&mut self, n_probe: usize) {
        self.n_probe = n_probe.clamp(1, self.n_lists());
        self.estimated_recall = None;
    }

    /// Recall@k estimated by the calibration that chose `n_probe` (`None` when `n_probe` was set by
    /// hand).
    pub fn estimated_recall(&self) -> Option<f32> {
        self.estimated_recall
    }

    fn raw_row(&self, i: usize) -> &[f32] {
        let d = self.d;
        match &self.raw {
            Some(raw) => &raw[i * d..(i + 1) * d],
            None => {
                let s = self.slot[i] as usize;
                &self.list_data[s * d..(s + 1) * d]
            }
        }
    }

    /// Bytes the index holds: the rows once (twice for cosine), the centres and 8 bytes per row.
    pub fn memory_bytes(&self) -> usize {
        4 * (self.list_data.len()
            + self.raw.as_ref().map_or(0, Vec::len)
            + self.centroids.len()
            + self.list_rows.len()
            + self.slot.len())
            + 8 * self.offsets.len()
    }

    /// The first `p` cells nearest to prepared query `q`, nearest first.
    fn cell_order(&self, q: &[f32], p: usize) -> Vec<usize> {
        let mut dist: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(self.d)
            .map(|c| sq_l2(q, c))
            .zip(0..)
            .collect();
        let p = p.min(dist.len());
        if p < dist.len() {
            dist.select_nth_unstable_by(p, |a, b| a.0.total_cmp(&b.0));
            dist.truncate(p);
        }
        dist.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        dist.iter().map(|&(_, c)| c).collect()
    }

    /// The k nearest rows of a raw query, scanning at least `n_probe` cells and as many more as
    /// needed to see `k` candidates.
    fn search(&self, raw: &[f32], k: usize, exclude: Option<usize>) -> Vec<Neighbor> {
        let mut q = vec![0.0f32; self.d];
        prepare(self.metric, raw, &mut q);
        // Keep twice k by the fast f32 distance, then rank those exactly.
        let keep = 2 * k + 2;
        let mut heap: BinaryHeap<(Key, usize)> = BinaryHeap::with_capacity(keep + 1);
        let needed = k + usize::from(exclude.is_some());
        let mut seen = 0usize;
        let all = self.cell_order(&q, self.n_lists());
        for (probed, &c) in all.iter().enumerate() {
            if probed >= self.n_probe && seen >= needed {
                break;
            }
            let (a, b) = (self.offsets[c], self.offsets[c + 1]);
            seen += b - a;
            for (pos, row) in self.list_data[a * self.d..b * self.d]
                .chunks_exact(self.d)
                .enumerate()
            {
                let i = self.list_rows[a + pos] as usize;
                if Some(i) == exclude {
                    continue;
                }
                let dist = sq_l2(&q, row);
                if heap.len() < keep {
                    heap.push((Key(dist), i));
                } else if heap.peek().is_some_and(|top| dist < top.0 .0) {
                    heap.pop();
                    heap.push((Key(dist), i));
                }
            }
        }
        let mut found: Vec<(f64, usize)> = heap
            .into_iter()
            .map(|(_, i)| (exact_distance(self.metric, raw, self.raw_row(i)), i))
            .collect();
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        found.truncate(k);
        found
            .iter()
            .map(|&(dist, index)| Neighbor {
                index,
                distance: dist as f32,
            })
            .collect()
    }
}

impl NeighborIndex for IvfIndex {
    fn len(&self) -> usize {
        self.n
    }

    fn dim(&self) -> usize {
        self.d
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn query(&self, point: ArrayView1<'_, f32>, k: usize) -> Result<Vec<Neighbor>> {
        check_k(k, self.n, "galaxies in the index")?;
        check_query(point, self.d)?;
        let raw: Vec<f32> = point.iter().copied().collect();
        Ok(self.search(&raw, k, None))
    }

    fn query_row(&self, row: usize, k: usize) -> Result<Vec<Neighbor>> {
        if row >= self.n {
            return Err(NeighborError::RowOutOfRange { row, len: self.n });
        }
        check_k(k, self.n - 1, "other galaxies in the index")?;
        Ok(drop_self(
            self.search(self.raw_row(row), k, Some(row)),
            row,
            k,
        ))
    }

    fn knn_graph(&self, k: usize) -> Result<KnnGraph> {
        check_k(k, self.n - 1, "other galaxies in the index")?;
        let lists: Vec<Vec<Neighbor>> = (0..self.n)
            .into_par_iter()
            .map(|i| self.search(self.raw_row(i), k, Some(i)))
            .collect();
        Ok(KnnGraph::from_lists(lists, k))
    }
}

/// Rows as given (Euclidean) or scaled to unit length (cosine: on unit vectors the squared Euclidean
/// distance is twice the cosine distance, so the cells and scans are ordered alike).
fn prepare(metric: Metric, row: &[f32], out: &mut [f32]) {
    match metric {
        Metric::Euclidean => out.copy_from_slice(row),
        Metric::Cosine => {
            let norm = row
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            for (o, &v) in out.iter_mut().zip(row) {
                *o = (f64::from(v) * scale) as f32;
            }
        }
    }
}

/// Squared Euclidean distance, eight lanes at a time so that the compiler vectorises it.
#[inline]
pub(crate) fn sq_l2(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

/// Lloyd's k-means on row-major `rows`, from `k` distinct sampled rows; an emptied cell restarts at
/// a random row.
fn kmeans(rows: &[f32], d: usize, k: usize, iterations: usize, rng: &mut SplitMix) -> Vec<f32> {
    let m = rows.len() / d;
    let mut centroids: Vec<f32> = rng
        .sample(m, k.min(m))
        .iter()
        .flat_map(|&i| rows[i * d..(i + 1) * d].iter().copied())
        .collect();
    // Fewer rows than cells cannot happen (k <= n and the sample holds >= k rows), but stay total.
    while centroids.len() < k * d {
        centroids.extend_from_slice(&rows[..d]);
    }
    for _ in 0..iterations {
        let assign = nearest_cells(rows, d, &centroids, 1);
        let mut sums = vec![0.0f64; k * d];
        let mut counts = vec![0usize; k];
        for (row, c) in rows.chunks_exact(d).zip(&assign) {
            let c = c[0];
            counts[c] += 1;
            for (s, &v) in sums[c * d..(c + 1) * d].iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        for c in 0..k {
            let centre = &mut centroids[c * d..(c + 1) * d];
            if counts[c] == 0 {
                let r = rng.below(m);
                centre.copy_from_slice(&rows[r * d..(r + 1) * d]);
            } else {
                for (x, &s) in centre.iter_mut().zip(&sums[c * d..(c + 1) * d]) {
                    *x = (s / counts[c] as f64) as f32;
                }
            }
        }
    }
    centroids
}

/// The `p` nearest centroids of every row (nearest first), by blocked matrix products:
/// `|x - c|^2 = |x|^2 - 2 x.c + |c|^2`, and `|x|^2` does not change the order.
fn nearest_cells(rows: &[f32], d: usize, centroids: &[f32], p: usize) -> Vec<Vec<usize>> {
    let k = centroids.len() / d;
    let cn: Vec<f32> = centroids
        .chunks_exact(d)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    let cmat = MatRef::from_row_major_slice(centroids, k, d).transpose();
    rows.par_chunks(256 * d)
        .flat_map_iter(|block| {
            let b = block.len() / d;
            let mut g = vec![0.0f32; b * k];
            let lhs = MatRef::from_row_major_slice(block, b, d);
            let dst = MatMut::from_row_major_slice_mut(&mut g, b, k);
            matmul(dst, Accum::Replace, lhs, cmat, 1.0f32, Par::Seq);
            let cn = &cn;
            (0..b)
                .map(move |r| {
                    let mut s: Vec<(f32, usize)> = g[r * k..(r + 1) * k]
                        .iter()
                        .zip(cn)
                        .map(|(&x, &n)| n - 2.0 * x)
                        .zip(0..)
                        .collect();
                    if p < s.len() {
                        s.select_nth_unstable_by(p, |a, b| a.0.total_cmp(&b.0));
                        s.truncate(p);
                    }
                    s.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    // By reference: collecting `into_iter()` would reuse (and keep) the k-long buffer
                    // of every row, 1.4 GiB for 200 000 rows.
                    s.iter().map(|&(_, c)| c).collect()
                })
                .collect::<Vec<_>>()
                .into_iter()
        })
        .collect()
}

/// The nearest centroid of every row, as [`nearest_cells`] with `p = 1` but without a list per
/// row (which would cost more than the rows themselves for a million galaxies of 20 values).
fn nearest_cell(rows: &[f32], d: usize, centroids: &[f32]) -> Vec<u32> {
    let k = centroids.len() / d;
    let cn: Vec<f32> = centroids
        .chunks_exact(d)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    let cmat = MatRef::from_row_major_slice(centroids, k, d).transpose();
    let mut out = vec![0u32; rows.len() / d];
    out.par_chunks_mut(256)
        .zip(rows.par_chunks(256 * d))
        .for_each(|(cells, block)| {
            let b = block.len() / d;
            let mut g = vec![0.0f32; b * k];
            let lhs = MatRef::from_row_major_slice(block, b, d);
            let dst = MatMut::from_row_major_slice_mut(&mut g, b, k);
            matmul(dst, Accum::Replace, lhs, cmat, 1.0f32, Par::Seq);
            for (r, cell) in cells.iter_mut().enumerate() {
                let mut best = (f32::INFINITY, 0usize);
                for (c, (&x, &n)) in g[r * k..(r + 1) * k].iter().zip(&cn).enumerate() {
                    let dist = n - 2.0 * x;
                    // Ties to the lower cell, as the sorted list of `nearest_cells` has it.
                    if dist < best.0 {
                        best = (dist, c);
                    }
                }
                // k <= n fits u32.
                *cell = best.1 as u32;
            }
        });
    out
}

/// SplitMix64: a small, seeded, portable generator for the samples (no dependency needed).
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform(); // in (0, 1]: the log is finite
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// `m` distinct indices of `0..n`, in ascending order (partial Fisher–Yates).
    fn sample(&mut self, n: usize, m: usize) -> Vec<usize> {
        let m = m.min(n);
        if m == n {
            return (0..n).collect();
        }
        let mut pool: Vec<usize> = (0..n).collect();
        for i in 0..m {
            let j = i + self.below(n - i);
            pool.swap(i, j);
        }
        pool.truncate(m);
        pool.sort_unstable();
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn blobs(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut r = SplitMix(seed);
        let mut u = move || (r.next() >> 40) as f32 / (1u64 << 24) as f32;
        let centres: Vec<Vec<f32>> = (0..8)
            .map(|_| (0..d).map(|_| 20.0 * u()).collect())
            .collect();
        Array2::from_shape_fn((n, d), |(i, j)| centres[i % 8][j] + u())
    }

    #[test]
    fn calibrated_recall_and_exact_distances() {
        let x = blobs(3000, 16, 3);
        for metric in [Metric::Euclidean, Metric::Cosine] {
            let ivf = IvfIndex::new(x.view(), metric).unwrap();
            assert!(ivf.estimated_recall().unwrap() >= 0.97);
            let exact = ExactIndex::new(x.view(), metric).unwrap();
            let (a, e) = (ivf.knn_graph(10).unwrap(), exact.knn_graph(10).unwrap());
            let mut hits = 0;
            for i in 0..x.nrows() {
                let truth: Vec<usize> = e.neighbors(i).map(|n| n.index).collect();
                for nb in a.neighbors(i) {
                    assert_ne!(nb.index, i);
                    let want = exact_distance(
                        metric,
                        x.row(i).as_slice().unwrap(),
                        x.row(nb.index).as_slice().unwrap(),
                    );
                    assert_eq!(nb.distance, want as f32);
                    hits += usize::from(truth.contains(&nb.index));
                }
            }
            let recall = hits as f64 / (10 * x.nrows()) as f64;
            assert!(recall >= 0.95, "{metric}: recall {recall}");
        }
    }

    #[test]
    fn scanning_every_cell_is_exact_and_large_k_is_served() {
        let x = blobs(500, 5, 9);
        let mut ivf = IvfIndex::new(x.view(), Metric::Euclidean).unwrap();
        ivf.set_n_probe(usize::MAX);
        assert_eq!(ivf.n_probe(), ivf.n_lists());
        let exact = ExactIndex::new(x.view(), Metric::Euclidean).unwrap();
        assert_eq!(ivf.knn_graph(7).unwrap(), exact.knn_graph(7).unwrap());
        ivf.set_n_probe(1);
        assert_eq!(ivf.query_row(3, 499).unwrap().len(), 499);
        assert_eq!(ivf.query(x.row(3), 500).unwrap().len(), 500);
    }
}
