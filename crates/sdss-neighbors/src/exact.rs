//! Exact (brute-force) search through matrix products.
//!
//! Distances are first estimated for whole blocks of queries and rows at once by the Gram trick
//! (`|q - x|^2 = |q|^2 + |x|^2 - 2 q.x`, one `f32` matrix product per block), with a rigorous bound
//! on that estimate's rounding error. Every row whose lower bound could still beat the k-th best upper
//! bound is kept as a candidate, and the candidates' distances are recomputed directly in `f64`. The
//! result is therefore the exact k nearest neighbours with exact distances, not the Gram trick's
//! approximation of them (which loses digits when distances are small next to the norms, e.g. for
//! near-duplicates).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::common::{
    check_k, check_matrix, check_query, drop_self, exact_distance, KnnGraph, Metric, Neighbor,
    NeighborIndex,
};
use crate::error::{NeighborError, Result};

/// Queries handled per matrix product.
const QUERY_BLOCK: usize = 64;
/// Indexed rows handled per matrix product: a 64 x 1024 block of `f32` (256 KiB) stays in L2.
const ROW_TILE: usize = 1024;

/// Exact nearest-neighbour search by brute force: scikit-learn's
/// `NearestNeighbors(algorithm="brute")`, parallel over blocks of queries (or, for few queries, over
/// blocks of rows).
#[derive(Debug, Clone)]
pub struct ExactIndex {
    metric: Metric,
    n: usize,
    d: usize,
    /// The rows as given, row-major, for the exact recomputation.
    data: Vec<f32>,
    /// Centred rows (Euclidean) or unit rows (cosine), row-major: what the matrix products see.
    prepared: Vec<f32>,
    /// Squared norms of the prepared rows.
    sq_norms: Vec<f32>,
    /// Column means subtracted for the Euclidean metric (centring shrinks the norms, and with them
    /// the Gram trick's rounding error, without changing any distance).
    mean: Vec<f64>,
    /// Relative rounding-error bound of one estimated distance (see [`ExactIndex::bounds`]).
    slack: f32,
}

impl ExactIndex {
    /// Indexes the rows of `features` (`n` galaxies by `d` features); rejects empty input and NaN or
    /// infinite values.
    pub fn new(features: ArrayView2<'_, f32>, metric: Metric) -> Result<Self> {
        check_matrix(features, "feature matrix")?;
        let (n, d) = features.dim();
        let data: Vec<f32> = features.iter().copied().collect();
        let mut mean = vec![0.0f64; d];
        if metric == Metric::Euclidean {
            for row in data.chunks_exact(d) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += f64::from(v);
                }
            }
            for m in &mut mean {
                *m /= n as f64;
            }
        }
        let mut prepared = vec![0.0f32; n * d];
        prepared
            .par_chunks_mut(d)
            .zip(data.par_chunks(d))
            .for_each(|(out, row)| prepare_row(metric, &mean, row, out));
        let sq_norms = prepared.par_chunks(d).map(sq_norm).collect();
        // Any summation order of a d-term dot product errs by at most d * u * sum|q_i x_i| (u the unit
        // roundoff, half of EPSILON); the sums, the centring or normalisation and the final
        // subtraction add a few u more. EPSILON = 2u gives a further factor of two of margin.
        let slack = (d as f32 + 16.0) * f32::EPSILON;
        Ok(ExactIndex {
            metric,
            n,
            d,
            data,
            prepared,
            sq_norms,
            mean,
            slack,
        })
    }

    /// The indexed row `i` as given.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.n).then(|| &self.data[i * self.d..(i + 1) * self.d])
    }

    /// The `k` nearest indexed rows of each row of `queries`: scikit-learn's
    /// `kneighbors(queries, k)`.
    pub fn kneighbors(&self, queries: ArrayView2<'_, f32>, k: usize) -> Result<Vec<Vec<Neighbor>>> {
        check_k(k, self.n, "galaxies in the index")?;
        if queries.ncols() != self.d {
            return Err(NeighborError::DimensionMismatch {
                expected: self.d,
                found: queries.ncols(),
            });
        }
        if queries.nrows() == 0 {
            return Ok(Vec::new());
        }
        check_matrix(queries, "queries")?;
        let raw: Vec<f32> = queries.iter().copied().collect();
        Ok(self.search(&raw, None, k))
    }

    /// All pairs of indexed rows `(i, j)`, `i < j`, at distance `<= radius`, with that distance;
    /// sorted by `(i, j)`.
    pub fn pairs_within(&self, radius: f32) -> Result<Vec<(usize, usize, f32)>> {
        if !radius.is_finite() || radius < 0.0 {
            return Err(NeighborError::InvalidParameter {
                name: "radius",
                reason: format!("{radius}: must be finite and >= 0"),
            });
        }
        let radius = f64::from(radius);
        let limit = match self.metric {
            Metric::Euclidean => (radius * radius) as f32,
            Metric::Cosine => radius as f32,
        };
        let blocks: Vec<Range<usize>> = blocks(self.n, QUERY_BLOCK);
        let mut pairs: Vec<(usize, usize, f32)> = blocks
            .into_par_iter()
            .flat_map_iter(|qb| {
                let mut found = Vec::new();
                let mut gram = Vec::new();
                // Only rows after the block's first row can pair with it as j > i.
                for tile in blocks_from(qb.start, self.n, ROW_TILE) {
                    self.gram(qb.clone(), &tile, &mut gram);
                    let t = tile.len();
                    for (bi, i) in qb.clone().enumerate() {
                        let g = &gram[bi * t..(bi + 1) * t];
                        for (jj, j) in tile.clone().enumerate() {
                            if j <= i {
                                continue;
                            }
                            let (lo, _) = self.bounds(self.sq_norms[i], j, g[jj]);
                            if lo <= limit {
                                let exact =
                                    exact_distance(self.metric, self.raw_row(i), self.raw_row(j));
                                if exact <= radius {
                                    found.push((i, j, exact as f32));
                                }
                            }
                        }
                    }
                }
                found.into_iter()
            })
            .collect();
        pairs.sort_by_key(|&(i, j, _)| (i, j));
        Ok(pairs)
    }

    fn raw_row(&self, i: usize) -> &[f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// Lower and upper bounds of the true (squared, for Euclidean) distance from a prepared query
    /// of squared norm `qn` to row `j`, given their `f32` dot product `g`.
    #[inline(always)]
    fn bounds(&self, qn: f32, j: usize, g: f32) -> (f32, f32) {
        match self.metric {
            Metric::Euclidean => {
                let xn = self.sq_norms[j];
                let approx = (qn + xn) - 2.0 * g;
                let err = self.slack * (qn + xn);
                (approx - err, approx + err)
            }
            Metric::Cosine => {
                // Unit (or zero) rows: |g| <= 1 up to rounding; zero rows are at distance exactly 1.
                let approx = 1.0 - g;
                let err = 2.0 * self.slack;
                (approx - err, approx + err)
            }
        }
    }

    /// `out = prepared[rows] . prepared[tile]^T`, row-major `rows.len() x tile.len()`.
    fn gram(&self, rows: Range<usize>, tile: &Range<usize>, out: &mut Vec<f32>) {
        let q = &self.prepared[rows.start * self.d..rows.end * self.d];
        self.gram_with(q, rows.len(), tile, out);
    }

    fn gram_with(&self, q: &[f32], nq: usize, tile: &Range<usize>, out: &mut Vec<f32>) {
        let d = self.d;
        out.clear();
        out.resize(nq * tile.len(), 0.0);
        let lhs = MatRef::from_row_major_slice(q, nq, d);
        let rhs = MatRef::from_row_major_slice(
            &self.prepared[tile.start * d..tile.end * d],
            tile.len(),
            d,
        )
        .transpose();
        let dst = MatMut::from_row_major_slice_mut(out.as_mut_slice(), nq, tile.len());
        matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
    }

    /// The k nearest rows of each raw query (row-major, `d` wide). `exclude[i]` is a row that query
    /// `i` must not return (itself, for the k-NN graph).
    fn search(&self, raw: &[f32], exclude: Option<&[usize]>, k: usize) -> Vec<Vec<Neighbor>> {
        let d = self.d;
        let nq = raw.len() / d;
        let mut prepared = vec![0.0f32; raw.len()];
        prepared
            .par_chunks_mut(d)
            .zip(raw.par_chunks(d))
            .for_each(|(out, row)| prepare_row(self.metric, &self.mean, row, out));
        let qblocks = blocks(nq, QUERY_BLOCK);
        let threads = rayon::current_num_threads().max(1);
        // Few query blocks (e.g. one galaxy): split the indexed rows across threads instead.
        let row_chunks: Vec<Range<usize>> = if qblocks.len() >= 2 * threads {
            std::iter::once(0..self.n).collect()
        } else {
            blocks(self.n, self.n.div_ceil(4 * threads).max(ROW_TILE))
        };
        qblocks
            .into_par_iter()
            .flat_map_iter(|qb| {
                let q = &prepared[qb.start * d..qb.end * d];
                let qn: Vec<f32> = q.chunks_exact(d).map(sq_norm).collect();
                let ex: Vec<Option<usize>> = qb
                    .clone()
                    .map(|i| exclude.and_then(|e| e.get(i).copied()))
                    .collect();
                let selectors = row_chunks
                    .par_iter()
                    .map(|rows| self.scan(q, &qn, &ex, rows.clone(), k))
                    .reduce_with(|mut a, b| {
                        for (sa, sb) in a.iter_mut().zip(b) {
                            sa.merge(sb);
                        }
                        a
                    })
                    .unwrap_or_default();
                let raw_block = &raw[qb.start * d..qb.end * d];
                selectors
                    .into_iter()
                    .zip(raw_block.chunks_exact(d))
                    .map(|(s, qraw)| {
                        s.finish(|j| exact_distance(self.metric, qraw, self.raw_row(j)))
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
            })
            .collect()
    }

    /// Candidates of each query of a block among `rows`.
    fn scan(
        &self,
        q: &[f32],
        qn: &[f32],
        exclude: &[Option<usize>],
        rows: Range<usize>,
        k: usize,
    ) -> Vec<Selector> {
        let nq = qn.len();
        let mut sel: Vec<Selector> = (0..nq).map(|_| Selector::new(k)).collect();
        let mut gram = Vec::new();
        for tile in blocks_from(rows.start, rows.end, ROW_TILE) {
            self.gram_with(q, nq, &tile, &mut gram);
            let t = tile.len();
            let xn = &self.sq_norms[tile.clone()];
            for (bi, s) in sel.iter_mut().enumerate() {
                let g = &gram[bi * t..(bi + 1) * t];
                let skip = exclude[bi].and_then(|e| e.checked_sub(tile.start));
                // The bounds of `bounds()`, written out per metric so that the loop stays branch-light:
                // almost every row fails the first comparison once k good rows have been seen.
                match self.metric {
                    Metric::Euclidean => {
                        let (a, b) = (1.0 - self.slack, 1.0 + self.slack);
                        let qv = qn[bi];
                        for (jj, (&gv, &xv)) in g.iter().zip(xn).enumerate() {
                            let base = qv + xv;
                            let lo = a * base - 2.0 * gv;
                            if lo <= s.bound && skip != Some(jj) {
                                s.push(lo, b * base - 2.0 * gv, tile.start + jj);
                            }
                        }
                    }
                    Metric::Cosine => {
                        let err = 2.0 * self.slack;
                        for (jj, &gv) in g.iter().enumerate() {
                            let lo = (1.0 - gv) - err;
                            if lo <= s.bound && skip != Some(jj) {
                                s.push(lo, (1.0 - gv) + err, tile.start + jj);
                            }
                        }
                    }
                }
            }
        }
        sel
    }
}

impl NeighborIndex for ExactIndex {
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
        Ok(self.search(&raw, None, k).pop().unwrap_or_default())
    }

    fn query_row(&self, row: usize, k: usize) -> Result<Vec<Neighbor>> {
        if row >= self.n {
            return Err(NeighborError::RowOutOfRange { row, len: self.n });
        }
        check_k(k, self.n - 1, "other galaxies in the index")?;
        let raw = self.raw_row(row).to_vec();
        let found = self.search(&raw, Some(&[row]), k).pop().unwrap_or_default();
        Ok(drop_self(found, row, k))
    }

    fn knn_graph(&self, k: usize) -> Result<KnnGraph> {
        check_k(k, self.n - 1, "other galaxies in the index")?;
        let exclude: Vec<usize> = (0..self.n).collect();
        let lists = self.search(&self.data, Some(&exclude), k);
        Ok(KnnGraph::from_lists(lists, k))
    }
}

/// Centres (Euclidean) or normalises (cosine) one row, in `f64` before rounding.
fn prepare_row(metric: Metric, mean: &[f64], row: &[f32], out: &mut [f32]) {
    match metric {
        Metric::Euclidean => {
            for ((o, &v), &m) in out.iter_mut().zip(row).zip(mean) {
                *o = (f64::from(v) - m) as f32;
            }
        }
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

fn sq_norm(row: &[f32]) -> f32 {
    row.iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>() as f32
}

/// `0..n` in consecutive ranges of `size`.
fn blocks(n: usize, size: usize) -> Vec<Range<usize>> {
    blocks_from(0, n, size).collect()
}

fn blocks_from(start: usize, end: usize, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    (start..end)
        .step_by(size)
        .map(move |s| s..(s + size).min(end))
}

/// An `f32` ordered by `total_cmp`, for the heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Key(pub(crate) f32);

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Keeps every row that may still be among a query's k nearest: those whose lower bound is at most
/// the k-th smallest upper bound seen so far.
#[derive(Debug, Clone, Default)]
struct Selector {
    k: usize,
    /// The k smallest upper bounds (a max-heap).
    upper: BinaryHeap<Key>,
    /// The k-th smallest upper bound, or infinity before k rows were seen.
    bound: f32,
    /// (lower bound, upper bound, row).
    candidates: Vec<(f32, f32, usize)>,
}

impl Selector {
    fn new(k: usize) -> Self {
        Selector {
            k,
            upper: BinaryHeap::with_capacity(k + 1),
            bound: f32::INFINITY,
            candidates: Vec::with_capacity(4 * k + 64),
        }
    }

    #[inline]
    fn push(&mut self, lo: f32, hi: f32, j: usize) {
        if self.upper.len() < self.k {
            self.upper.push(Key(hi));
            if self.upper.len() == self.k {
                self.bound = self.upper.peek().map_or(f32::INFINITY, |k| k.0);
            }
        } else if hi < self.bound {
            self.upper.pop();
            self.upper.push(Key(hi));
            self.bound = self.upper.peek().map_or(f32::INFINITY, |k| k.0);
        }
        if lo <= self.bound {
            self.candidates.push((lo, hi, j));
            if self.candidates.len() >= 8 * self.k + 256 {
                self.prune();
            }
        }
    }

    fn prune(&mut self) {
        let bound = self.bound;
        self.candidates.retain(|c| c.0 <= bound);
    }

    /// Folds another selector's candidates (over other rows) into this one. A row the other one
    /// dropped had a lower bound above its k-th upper bound, which is at least the merged one, so
    /// nothing that can win is lost.
    fn merge(&mut self, other: Selector) {
        for (lo, hi, j) in other.candidates {
            self.push(lo, hi, j);
        }
    }

    /// Recomputes the surviving candidates' distances exactly and keeps the k nearest.
    fn finish(mut self, distance: impl Fn(usize) -> f64) -> Vec<Neighbor> {
        self.prune();
        let mut exact: Vec<(f64, usize)> = self
            .candidates
            .iter()
            .map(|&(_, _, j)| (distance(j), j))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        exact.truncate(self.k);
        // By reference, so the candidates' buffer is not kept alive inside the result.
        exact
            .iter()
            .map(|&(dist, index)| Neighbor {
                index,
                distance: dist as f32,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn brute(x: &Array2<f32>, q: &[f32], metric: Metric, skip: Option<usize>) -> Vec<(f64, usize)> {
        let mut all: Vec<(f64, usize)> = (0..x.nrows())
            .filter(|&j| Some(j) != skip)
            .map(|j| (exact_distance(metric, q, x.row(j).as_slice().unwrap()), j))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all
    }

    fn pseudo_random(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut s = seed | 1;
        Array2::from_shape_fn((n, d), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Large offset: norms dwarf the distances, the hard case for the Gram trick.
            1000.0 + (s >> 40) as f32 / (1u64 << 24) as f32
        })
    }

    #[test]
    fn matches_direct_search_even_with_large_norms() {
        let x = pseudo_random(700, 13, 7);
        for metric in [Metric::Euclidean, Metric::Cosine] {
            let index = ExactIndex::new(x.view(), metric).unwrap();
            let g = index.knn_graph(5).unwrap();
            for i in (0..700).step_by(37) {
                let want = brute(&x, x.row(i).as_slice().unwrap(), metric, Some(i));
                let got: Vec<usize> = g.neighbors(i).map(|n| n.index).collect();
                let want_idx: Vec<usize> = want.iter().take(5).map(|w| w.1).collect();
                assert_eq!(got, want_idx, "{metric} row {i}");
                for (n, w) in g.neighbors(i).zip(&want) {
                    assert_eq!(n.distance, w.0 as f32);
                }
                let single = index.query_row(i, 5).unwrap();
                assert_eq!(single, g.neighbors(i).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn duplicates_are_at_zero_and_self_is_excluded() {
        let x = array![[1.0f32, 2.0], [1.0, 2.0], [5.0, 5.0], [1.0, 2.5]];
        let index = ExactIndex::new(x.view(), Metric::Euclidean).unwrap();
        let g = index.knn_graph(2).unwrap();
        assert_eq!(g.indices.row(0).to_vec(), vec![1, 3]);
        assert_eq!(g.distances[[0, 0]], 0.0);
        assert_eq!(g.indices.row(1).to_vec(), vec![0, 3]);
        let q = index.query(x.row(2), 1).unwrap();
        assert_eq!(
            q,
            vec![Neighbor {
                index: 2,
                distance: 0.0
            }]
        );
        assert_eq!(index.pairs_within(0.0).unwrap(), vec![(0, 1, 0.0)]);
        assert_eq!(
            index.pairs_within(0.5).unwrap(),
            vec![(0, 1, 0.0), (0, 3, 0.5), (1, 3, 0.5)]
        );
    }

    #[test]
    fn cosine_zero_rows_are_at_distance_one() {
        let x = array![[0.0f32, 0.0], [1.0, 0.0], [0.0, 2.0]];
        let index = ExactIndex::new(x.view(), Metric::Cosine).unwrap();
        let q = index.query_row(0, 2).unwrap();
        assert!(q.iter().all(|n| n.distance == 1.0));
        let q = index.query_row(1, 2).unwrap();
        assert_eq!(
            q[0],
            Neighbor {
                index: 0,
                distance: 1.0
            }
        );
        assert_eq!(
            q[1],
            Neighbor {
                index: 2,
                distance: 1.0
            }
        );
    }
}
